/*
 * IGVM loader (`hvmm --igvm FILE`): loads a validated IGVM file into guest
 * RAM the way OpenVMM's loader does for a NATIVE platform (the contract in
 * ../shared/docs/igvm-and-vsm.md parts A and B): directives are applied in
 * file order for one platform's compatibility mask; PAGE_DATA is copied (or
 * zeroed) at its GPA, PARAMETER_AREA buffers are filled from the VM's
 * configuration by the parameter directives and copied in by
 * PARAMETER_INSERT, REQUIRED_MEMORY must be RAM, and the BSP's native x64
 * VP context becomes its initial register state (with vtl2, the
 * VSM_ISOLATION platform and its VTL 2 VBS context instead: the loader half
 * of --vtl2). With vtl2, relocation (B.3): RELOCATABLE_REGION and
 * PAGE_TABLE_RELOCATION_REGION move VTL2's image by a positive offset, page
 * tables rebuilt (igvm_pt_relocate), RIP/GDTR/CR3 moved. The file is user input:
 * every GPA and size is checked against guest RAM and errors are one line
 * naming the header index.
 */
#ifndef HVMM_CORE_IGVM_LOAD_H
#define HVMM_CORE_IGVM_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/gmem.h"
#include "igvm/igvm_defs.h"
#include "x86/regs.h"

enum igvm_personality { IGVM_PERSONALITY_LINUX_DIRECT, IGVM_PERSONALITY_UEFI };

/* --igvm-vtl2-relocation-type (igvm-and-vsm.md B.2). */
enum igvm_reloc_type {
	IGVM_RELOC_DISABLE,  /* the file's GPAs as they are (hvmm's default) */
	IGVM_RELOC_ABSOLUTE, /* VTL2's relocatable region moved to reloc_addr */
	IGVM_RELOC_AUTO,     /* VTL2 RAM of its own above VTL0's RAM and MMIO */
	IGVM_RELOC_VTL2,     /* vtl2=: the file's GPAs; VTL2 carves its RAM from VTL0's
			      * (DT /openhcl memory-allocation-mode "vtl2") */
};

struct igvm_load_config {
	unsigned nvcpus;      /* VP_COUNT */
	const char *cmdline;  /* COMMAND_LINE (NULL = empty) */
	uint64_t rsdp_gpa;    /* hvmm's ACPI tables (MADT/SRAT copied from them); 0 = none */
	bool vtl2;            /* load VSM_ISOLATION instead of NATIVE */
	enum igvm_reloc_type reloc; /* with vtl2 only */
	uint64_t reloc_addr;  /* ABSOLUTE: the new base of the relocatable region */
	uint64_t reloc_size;  /* AUTO: VTL2's size, 0 = the file's (REQUIRED_MEMORY);
			       * the loader adds that RAM (gmem_add_vtl2_region).
			       * VTL2: DT /openhcl memory-size, 0 = none (filesize) */
	bool vmbus;           /* DEVICE_TREE gets a VTL0 VMBus node */
};

/*
 * The BSP's initial state from the file's VP context: a native context
 * (NATIVE platform), or with vtl2 the VBS register list of VTL 2 decoded
 * into vbs_regs/vbs_sregs (registers the file does not name stay zero; MTRRs
 * are not kept; PAT in vbs_pat when have_pat).
 */
struct igvm_boot {
	bool have_ctx;
	struct igvm_native_vp_context_x64 ctx;
	bool have_vbs;
	uint8_t vbs_vtl;
	struct x86_regs vbs_regs;
	struct x86_sregs vbs_sregs;
	bool have_pat;
	uint64_t vbs_pat;
	/*
	 * VTL2's memory range [vtl2_base, vtl2_base + vtl2_size) after
	 * relocation (the file's own place with relocation disabled): the span
	 * of its VTL 2 RELOCATABLE_REGION, PAGE_TABLE_RELOCATION_REGION and
	 * VTL2-protectable REQUIRED_MEMORY. 0/0 when the file has no VTL 2
	 * relocatable region. --vtl2 hides this range from VTL0.
	 */
	uint64_t vtl2_base, vtl2_size;
};

/*
 * Load buf[0..len) into m. Returns 0 and fills *b, or -EINVAL (bad or
 * unsupported file, does not fit the VM) / -ENOMEM with one line in err.
 * Guest RAM outside the file's pages is not touched.
 */
int igvm_load(struct gmem *m, const uint8_t *buf, size_t len, const struct igvm_load_config *c,
	      struct igvm_boot *b, char *err, size_t errlen);

/*
 * The checks igvm_load makes before touching guest RAM (the file is valid,
 * x64, and has the platform the VM needs), for reporting errors before a VM
 * exists. 0 or -EINVAL with one line in err.
 */
int igvm_load_check(const uint8_t *buf, size_t len, bool vtl2, char *err, size_t errlen);

/*
 * Apply a native VP context to register state: general registers are
 * replaced, segments/descriptor tables/control registers/EFER overwritten in
 * *s (TR and LDT are left as the caller read them from the vCPU).
 */
void igvm_native_to_regs(const struct igvm_native_vp_context_x64 *c, struct x86_regs *r,
			 struct x86_sregs *s);

#endif
