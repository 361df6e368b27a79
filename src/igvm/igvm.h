/*
 * IGVM file parser and validator (portable C, no OS or KVM dependency). It
 * checks a whole file once against every rule Microsoft's reference parser
 * (microsoft/igvm igvm/src/lib.rs, IgvmFile::new_from_binary) enforces plus
 * the ones it misses (overlapping imports, parameter usage bounds, file data
 * offsets pointing into the headers, VBS register sanity), then lets a loader
 * walk the headers in file order without re-parsing. Facts:
 * ../shared/docs/igvm-and-vsm.md part A.
 */
#ifndef HVMM_IGVM_H
#define HVMM_IGVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "igvm/igvm_defs.h"

#define IGVM_MAX_PLATFORMS 8 /* one per platform type (7 exist) */

/* A validated file. buf is borrowed: it must outlive the struct. */
struct igvm_file {
	const uint8_t *buf;
	size_t size;
	uint32_t format_version; /* 1 or 2 */
	uint32_t arch;           /* IGVM_ARCH_*; v1 is x64 */
	uint32_t page_size;      /* always 4096 */
	uint32_t fixed_size;     /* 24 (v1) or 32 (v2) */
	uint32_t var_offset, var_size; /* variable header section */
	uint32_t data_offset;    /* first byte of the file data section */
	uint32_t checksum;
	uint32_t n_headers;
	uint32_t n_platforms;
	struct igvm_platform {
		uint32_t mask;
		uint8_t highest_vtl, type;
		uint16_t version;
		uint64_t shared_gpa_boundary;
	} platforms[IGVM_MAX_PLATFORMS];
};

/* VP context kind, from the platform whose mask equals the header's mask. */
enum igvm_vp_kind { IGVM_VP_VBS, IGVM_VP_NATIVE_X64, IGVM_VP_SNP_VMSA, IGVM_VP_CCA };

/*
 * One decoded variable header. Multi-byte fields are host-endian copies.
 * `data` points into the file (NULL when the header has no file data or its
 * file_offset is 0, meaning zeros) and `data_len` is the length the header
 * consumes; both were bounds-checked by igvm_open.
 */
struct igvm_hdr {
	uint32_t index;   /* 0-based position in the variable header list */
	uint32_t type;    /* IGVM_VHT_* */
	uint32_t offset;  /* file offset of the payload */
	uint32_t length;  /* payload length as stored */
	uint32_t mask;    /* compatibility mask, 0 if the type has none */
	const uint8_t *payload;
	const uint8_t *data;
	uint64_t data_len;
	union {
		struct igvm_platform platform;
		struct { uint64_t policy; } policy;
		struct {
			uint16_t vp_index;
			uint8_t vtl, flags;
			uint64_t alignment, gpa, size, min_gpa, max_gpa;
		} reloc;
		struct {
			uint16_t vp_index;
			uint8_t vtl;
			uint64_t gpa, size, used_size;
		} pt_reloc;
		struct { uint32_t file_offset, size; } corim;
		struct {
			uint64_t required_zeroes, required_ones;
			uint8_t hash_algorithm, lfa_policy;
		} cca;
		struct { uint64_t size; uint32_t index, file_offset; } area;
		struct {
			uint64_t gpa;
			uint32_t file_offset, flags;
			uint16_t data_type;
		} page;
		struct { uint64_t gpa; uint32_t index; } insert;
		struct {
			uint64_t gpa;
			uint32_t file_offset;
			uint16_t vp_index;
			uint8_t kind;      /* enum igvm_vp_kind */
			uint8_t vtl;       /* VBS: the VTL all registers name */
			uint32_t n_regs;   /* VBS: register count */
		} vp;
		struct { uint64_t gpa; uint32_t size, flags; } mem;
		struct { uint32_t index, offset; } param;
		struct { uint64_t gpa; uint32_t size; } err;
	} u;
};

/* One VBS register record (IGVM VbsVpContextRegister). */
struct igvm_vbs_reg {
	uint8_t vtl;
	uint32_t name;     /* HV_X64_REGISTER_* / HvArm64Register* */
	uint8_t value[16]; /* HV_REGISTER_VALUE, little-endian */
};

/*
 * Parse and validate buf[0..size). Returns 0 and fills *f, or -EINVAL with
 * one line in err ("header 12 (IGVM_VHT_PAGE_DATA): gpa 0x1001 not 4 KiB
 * aligned" or "fixed header: ..."). Never reads outside buf; temporary memory
 * is proportional to the number of headers (at most size / 16), freed before
 * returning. -ENOMEM if that allocation fails.
 */
int igvm_open(struct igvm_file *f, const void *buf, size_t size, char *err, size_t errlen);

/*
 * Iterate the headers of a file igvm_open accepted, in file order:
 *   struct igvm_iter it = { 0 }; struct igvm_hdr h;
 *   while (igvm_next(f, &it, &h)) ...
 * Returns false at the end. O(1) per header, no allocation.
 */
struct igvm_iter { uint32_t offset, index; };
bool igvm_next(const struct igvm_file *f, struct igvm_iter *it, struct igvm_hdr *h);

/* Register i (< h->u.vp.n_regs) of a VBS VP_CONTEXT header. */
void igvm_vbs_reg_get(const struct igvm_hdr *h, uint32_t i, struct igvm_vbs_reg *r);

/* Decode a native x64 VP context (h->u.vp.kind == IGVM_VP_NATIVE_X64). */
void igvm_native_ctx_get(const struct igvm_hdr *h, struct igvm_native_vp_context_x64 *c);

/* Names for messages and dumps ("IGVM_VHT_PAGE_DATA", "VSM_ISOLATION", "Rip"). */
const char *igvm_type_name(uint32_t type);
const char *igvm_platform_name(uint32_t platform_type);
const char *igvm_x64_reg_name(uint32_t name); /* NULL if the reference rejects it */

/* The platform type a compatibility mask names exactly, or -1. */
int igvm_mask_platform(const struct igvm_file *f, uint32_t mask);

/*
 * A loader picks one platform: igvm_platform_mask gives the mask bit of
 * platform `type` (IGVM_PLATFORM_*), 0 if the file does not support it.
 * igvm_hdr_applies says whether a header is for that platform: its mask
 * shares a bit with `mask`, or the type carries no mask (parameter areas and
 * usages), like the reference parser's isolation filter.
 */
uint32_t igvm_platform_mask(const struct igvm_file *f, uint32_t type);
static inline bool igvm_hdr_applies(const struct igvm_hdr *h, uint32_t mask)
{
	switch (h->type) {
	case IGVM_VHT_PARAMETER_AREA: case IGVM_VHT_VP_COUNT_PARAMETER: case IGVM_VHT_SRAT:
	case IGVM_VHT_MADT: case IGVM_VHT_MMIO_RANGES: case IGVM_VHT_MEMORY_MAP:
	case IGVM_VHT_COMMAND_LINE: case IGVM_VHT_SLIT: case IGVM_VHT_PPTT:
	case IGVM_VHT_DEVICE_TREE: case IGVM_VHT_ENVIRONMENT_INFO_PARAMETER:
		return true;
	default:
		return (h->mask & mask) != 0;
	}
}

/* Human-readable dump of every header (like igvmfilegen's dump). */
void igvm_dump(const struct igvm_file *f, FILE *out);

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320) continuing from crc (start at 0). */
uint32_t igvm_crc32(uint32_t crc, const void *buf, size_t len);

/*
 * Minimal writer (for tests, fuzz seeds and, later, hvmm-igvm build): append
 * headers in order, then igvm_writer_finish lays out fixed header, variable
 * headers and file data exactly as the reference serializer does (8-byte
 * padding, data right after the headers, total size and CRC patched last).
 * It does not validate. Returns 0 or -ENOMEM.
 */
struct igvm_writer {
	uint32_t version, arch;
	uint8_t *hdrs;
	size_t hdrs_len, hdrs_cap;
	uint8_t *data;
	size_t data_len, data_cap;
	struct igvm_writer_fixup { size_t pos; uint32_t rel; } *fix;
	size_t n_fix, fix_cap;
	/* Identical data blobs are stored once, as the reference does. */
	struct igvm_writer_blob { uint64_t hash; uint32_t rel, len; } *blobs;
	size_t blob_slots, n_blobs; /* open addressing, slots a power of two */
	bool oom;
};
void igvm_writer_init(struct igvm_writer *w, uint32_t version, uint32_t arch);
/* Append a header (payload copied, zero-padded to 8). */
void igvm_writer_header(struct igvm_writer *w, uint32_t type, const void *payload, uint32_t len);
/*
 * Append a header with file data: the data goes to the data section (or
 * reuses an identical blob already there, like the reference serializer's
 * FileDataSerializer) and the u32 at payload byte `offset_field` is set to
 * its absolute file offset when the file is finished (the caller's value
 * there is ignored).
 */
void igvm_writer_header_data(struct igvm_writer *w, uint32_t type, const void *payload,
			     uint32_t len, uint32_t offset_field, const void *data, size_t data_len);
/* Lay the file out into a malloc'd buffer the caller frees. */
int igvm_writer_finish(struct igvm_writer *w, uint8_t **out, size_t *out_len);
void igvm_writer_free(struct igvm_writer *w);

/*
 * Build a NATIVE-platform x64 IGVM file from a freestanding ELF64 payload:
 * PT_LOAD segments as page data at their physical addresses (below 4 GiB,
 * spanning at most 256 MiB), 7 pages at pt_gpa (default 0x1000) holding an
 * identity map of 0-4 GiB with 2 MiB pages and a GDT (code 0x10, data 0x18),
 * and a native VP context entering e_entry in long mode with rsp/rsi as
 * given. cmdline_gpa != 0 adds a 4 KiB parameter area carrying the
 * COMMAND_LINE parameter, inserted there. With vsm the platform is
 * VSM_ISOLATION and the context a VBS register list (see the field). The file is validated with
 * igvm_open; returns 0 and a malloc'd buffer, or -EINVAL/-ENOMEM with err.
 */
#define IGVM_BUILD_MAX_PARAMS 16
#define IGVM_BUILD_RELOC_ALIGN (2ull << 20)
#define IGVM_BUILD_RELOC_MAX (512ull << 30) /* PML4[0]: the rebuild's 2 spare pages suffice */
struct igvm_build_param {
	uint32_t type;        /* IGVM_VHT_VP_COUNT_PARAMETER .. ENVIRONMENT_INFO */
	uint64_t gpa;         /* where the area is inserted (4 KiB aligned) */
	uint32_t pages;       /* area size in 4 KiB pages (0 = 1) */
	const char *initial;  /* optional NUL-terminated initial text (command line) */
};
struct igvm_build_opts {
	const uint8_t *elf;
	size_t elf_len;
	uint64_t pt_gpa, cmdline_gpa, rsp, rsi;
	/* VSM_ISOLATION (highest VTL 2) instead of NATIVE: the same pages, and a
	 * VBS VP context of VTL 2 registers (Rip Rsp Rsi Rflags Cr0 Cr3 Cr4 Efer
	 * Pat Gdtr Cs Ds Es Fs Gs Ss) with the native context's values. */
	bool vsm;
	/*
	 * With vsm: a relocatable VTL 2 image as OpenHCL's (igvm-and-vsm.md B.1):
	 * RELOCATABLE_REGION over the payload and its GDT (the used range minus
	 * page tables, aligned to reloc_align, default IGVM_BUILD_RELOC_ALIGN;
	 * IS_VTL2|APPLY_RIP|APPLY_GDTR, VP 0, VTL 2, minimum reloc_min, maximum
	 * reloc_max or IGVM_BUILD_RELOC_MAX), the page tables right after it in a
	 * PAGE_TABLE_RELOCATION_REGION (6 used pages of 8), and a VTL2-protectable
	 * REQUIRED_MEMORY over both rounded up to the alignment. pt_gpa must be 0.
	 */
	bool relocatable;
	uint64_t reloc_min, reloc_max, reloc_align;
	/* Extra parameter areas: one area per entry, usage at offset 0, inserted at gpa. */
	struct igvm_build_param params[IGVM_BUILD_MAX_PARAMS];
	unsigned nparams;
};

/* "vp_count" -> IGVM_VHT_VP_COUNT_PARAMETER etc. (names as in --param); 0 if unknown. */
uint32_t igvm_param_type(const char *name);

/* Appends the parameter areas of o->params (area indexes from first_index). */
void igvm_build_params(struct igvm_writer *w, const struct igvm_build_param *p, unsigned n,
		       uint32_t first_index);
int igvm_build_native_elf(const struct igvm_build_opts *o, uint8_t **out, size_t *out_len,
			  char *err, size_t errlen);

/*
 * Rebuild x64 4-level page tables for a relocation (igvm_reloc.c; the
 * loader's half of RELOCATABLE_REGION + PAGE_TABLE_RELOCATION_REGION,
 * igvm-and-vsm.md B.3 step 5). pt holds the page table region [gpa,
 * gpa+size) as the file loads it (the first `used` bytes from its page data,
 * the rest zero); cr3 (in the used pages) is the file's. The tables move by
 * off (>= 0) as a whole: references to tables inside the region are moved,
 * references outside are kept; a leaf whose virtual range overlaps one of
 * the r[0..nr) ranges (the relocatable regions, identity mapped as OpenHCL
 * maps them) is moved to
 * VA + off mapping its PA + off, unless off is smaller than the leaf's
 * page size (then it stays: the move is inside that one mapping; an
 * identical entry already at VA + off is fine);
 * missing intermediate tables come from the spare pages after `used`. On
 * return pt is the table image for gpa + off, *new_used the bytes to load.
 * 0, or -EINVAL/-ENOMEM with one line in err (an unaligned offset for a
 * large page, a table referenced twice or past `used`, a collision, no spare
 * page). size is at most IGVM_PT_RELOC_MAX.
 */
#define IGVM_PT_RELOC_MAX (64ull << 20)
struct igvm_reloc_range { uint64_t gpa, size; };
int igvm_pt_relocate(uint8_t *pt, uint64_t gpa, uint64_t size, uint64_t used, uint64_t cr3,
		     const struct igvm_reloc_range *r, unsigned nr, uint64_t off,
		     uint64_t *new_used, char *err, size_t errlen);

/*
 * The DEVICE_TREE parameter's blob (igvm_fdt.c): cpus, memory ranges (gpa,
 * size, IGVM memory map entry type), a VTL0 VMBus node when `vmbus`, and
 * /chosen/bootargs, laid out as OpenVMM describes a VM to OpenHCL. Writes
 * at most cap bytes to out; returns the blob size or -E2BIG.
 */
struct igvm_dt_mem { uint64_t gpa, size; uint32_t type; };
struct igvm_dt_config {
	unsigned ncpus;
	const struct igvm_dt_mem *mem;
	unsigned nmem;
	const char *bootargs;
	bool vmbus;
	/* --igvm-vtl2-relocation-type vtl2=: /openhcl memory-allocation-mode
	 * "vtl2", mmio-size 128 MiB and, when not 0, memory-size (u64 each);
	 * otherwise the mode is "host". */
	bool vtl2_alloc;
	uint64_t vtl2_memory_size;
};
#define IGVM_DT_VTL2_MMIO_SIZE (128ull << 20)
long igvm_dt_build(const struct igvm_dt_config *c, uint8_t *out, size_t cap);

/*
 * A NATIVE x64 file that boots a Linux bzImage or ELF vmlinux (+ initrd) like
 * hvmm's direct boot (igvm_build_linux.c; needs src/x86/linux_boot.c, so it
 * is not part of the portable libhvmm_igvm). The loader's command line is
 * appended to `cmdline` (at most 4095 bytes) in a COMMAND_LINE area at
 * IGVM_LINUX_CMDLINE_GPA; its memory map (IGVM_LINUX_MMAP_GPA) becomes the
 * e820 table. Returns 0 and a malloc'd file, or -EINVAL/-ENOMEM with err.
 */
#define IGVM_LINUX_STUB_GPA 0x1000u
#define IGVM_LINUX_MMAP_GPA 0x2000u
#define IGVM_LINUX_CMDLINE_GPA 0x30000u
struct igvm_linux_opts {
	const uint8_t *kernel, *initrd;
	size_t kernel_len, initrd_len;
	const char *cmdline;
};
int igvm_build_linux(const struct igvm_linux_opts *o, uint8_t **out, size_t *out_len,
		     char *err, size_t errlen);

#endif
