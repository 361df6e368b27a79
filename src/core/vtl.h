/*
 * --vtl2 wiring (phases 1-3): the IGVM file's VTL2 runs beneath VTL0 on KVM
 * (TLFS "Virtual Secure Mode"; design in docs/ARCHITECTURE.md "Virtual Trust
 * Levels"). One accel partition per VTL over the same guest RAM; each VP has
 * one accel vCPU per VTL on its own thread, and vm_vcpu.av always names the
 * vCPU of the VTL the VP runs (so vm.c's exit handlers act on the right one).
 * src/hv/vsm* keeps the VTL state and the VSM hypercalls; this file is its
 * struct vsm_ops over the accel API, and the hooks vm.c calls.
 *
 * Limits: APs start only through StartVirtualProcessor (an AP's thread
 * does not run its VTL0 vCPU before; VTL0's INIT/SIPI are latched by its
 * in-kernel APIC and dropped at the start; no SIPI intercept message);
 * VTL0's memory protections (ModifyVtlProtectionMask: no-access and
 * read-only; execute bits are ignored, KVM slots cannot express them) and
 * VTL2's hidden range are KVM slots of VTL0's partition (vtl_mem.h), at most
 * VTL_MEM_MAX_SLOTS of them; a violating access that KVM's emulator reports
 * is delivered for loads and simple MOV stores (other stores keep RIP after
 * the instruction); VTL2-only RAM above VTL0's is a vtl2_only gmem region
 * (gmem_add_vtl2_region, for relocation auto=);
 * Get/SetVpRegisters move struct x86_regs/x86_sregs, and the private MSRs
 * (PAT, STAR/LSTAR/CSTAR/SFMASK, SYSENTER, KERNEL_GS_BASE, TSC_AUX) and
 * DR0-3/DR6/DR7 only when one of theirs is named; DR0-3 and XCR0, shared
 * by the TLFS, are not carried across a switch (a KVM ioctl each per
 * switch). Phase 2: intercepts of VTL0 port writes and reads (IN/OUT and
 * INS/OUTS with or without REP: VTL0 put back at the instruction with
 * RSI/RDI/RCX as before it, an INS's destination restored; a REP OUTS at
 * RIP with RCX not 0 is taken for the exiting one) and RDMSR/WRMSR of MSRs
 * hv does not own, in VTL2's VP assist page (intercept_page) or its SIMP
 * slot 0 (SINT0, vsm's SynIC), and VTL0 HvPostMessage/HvSignalEvent to
 * connections hv does not know and HvRetargetDeviceInterrupt (hvmm has no
 * such device: every id is unknown) as hypercall intercepts; APIC EOI
 * intercepts are refused (FEATURE_UNAVAILABLE: KVM's
 * in-kernel LAPIC retires VTL0's EOIs). Interrupts:
 * AssertVirtualInterrupt, PostMessageDirect/SignalEventDirect and the SINT0
 * message reach the target VTL's in-kernel APIC (MSI); one VTL2's APIC
 * requests preempts VTL0 at the VP's next run; VINA is raised for those
 * and, while armed, for any interrupt VTL0's APIC requests (hvmm's own
 * injections kick VTL2 at once, vtl_lower_interrupt; another VP's IPI is
 * seen at VTL2's next exit). VTL2 has its own STIMER0-3 (vsm_stimer.c,
 * polled by a vtl2-stimer thread) and reference TSC page. The XSAVE image
 * (x87, MXCSR, XMM, YMM, ...) is carried across a switch (one GET per
 * switch, the SET only when it changed), fast VSM hypercalls use the real
 * XMM0-5, the shared GPRs travel through KVM's sync-regs area; VTL2's CPUID
 * has AccessVsm/AccessVpRegisters.
 */
#ifndef HVMM_CORE_VTL_H
#define HVMM_CORE_VTL_H

#include <stdbool.h>
#include <stdint.h>

#include "accel/accel.h"

struct vm;
struct vm_vcpu;
struct vtl;

/*
 * After the VTL0 partition exists with RAM mapped and vm->igvm holds the
 * file's VTL2 registers: creates VTL2's partition over the same RAM and
 * the VSM state with VTL2 enabled and running on the BSP. 0 or -errno
 * (logged).
 */
int vtl_create(struct vm *vm, const struct accel_config *ac, struct vtl **out);
void vtl_destroy(struct vtl *t);

/*
 * On v's thread, after v->av (VTL0's vCPU) exists with its CPUID: creates
 * the VP's VTL2 vCPU, programs CPUID with `cpuid` (called with v->av
 * pointing at the new vCPU), and for the BSP the file's VTL2 registers;
 * v->av then names the VTL the VP runs (VTL2 on the BSP). 0 or -errno.
 */
int vtl_vcpu_init(struct vtl *t, struct vm_vcpu *v, int (*cpuid)(struct vm_vcpu *v));
/* Destroys v's vCPUs of VTL > 0 (v->av back to VTL0's first). */
void vtl_vcpu_fini(struct vtl *t, struct vm_vcpu *v);

/*
 * On v's thread before each run: a VP started by StartVirtualProcessor runs
 * its VTL now; interrupts for VTL2 preempt VTL0, VTL0's raise VINA. False
 * (after waiting up to 50 ms) for an AP that VTL2 has not started: do not
 * run it now (VTL0's INIT/SIPI cannot start VTL0's APs; OpenVMM's rule).
 */
bool vtl_vcpu_service(struct vtl *t, struct vm_vcpu *v);

/*
 * Any thread, after hvmm raised an interrupt in VTL0's partition (an MSI at
 * msi_addr, UINT64_MAX for a GSI): the VPs it may target that run VTL2 are
 * kicked, so their threads look at VTL0's APIC and raise VINA
 * (vtl_vcpu_service). Takes no lock (callable under vsm's).
 */
void vtl_lower_interrupt(struct vtl *t, uint64_t msi_addr);

/*
 * A VTL0 port access VTL2 intercepts (InstallIntercept, per direction): the
 * HV I/O port intercept message goes to VTL2 (vsm_deliver_intercept) and v
 * runs VTL2, which advances VTL0's RIP (SetVpRegisters) and, for a read,
 * gives RAX through its VP assist page's vtl_return_rax (slow VtlReturn;
 * RAX is shared). A read (IN, INS) is finished at once by the accelerator
 * (an INS's destination bytes saved before and restored after, at most a
 * page) and VTL0's registers put back to the instruction's start; a
 * write's (OUT, OUTS) that KVM's emulator already advanced are put back
 * too (RIP, and an OUTS's RSI and REP RCX). Returns true when delivered.
 */
bool vtl_io(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e);

/*
 * An MMIO exit of VTL0 on a RAM GPA (false for anything else: devices keep
 * it). A protected page (no access, read-only written, VTL2's range): the
 * exit is finished, VTL0 put back at the instruction and the TLFS memory
 * intercept (GPA_INTERCEPT: access type, GPA, GVA when decoded,
 * instruction bytes and length) goes to VTL2, which advances VTL0's RIP.
 * An allowed access (a slot being replaced) is done on RAM. True when
 * handled.
 */
bool vtl_mmio(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e);

/*
 * A VTL0 MMIO exit no device took (not RAM, no handler): the UNMAPPED_GPA
 * intercept goes to VTL2 the same way (a paravisor emulates devices there);
 * the access is finished (a read sees zero if VTL2 does not emulate it).
 * False (nothing done) when v runs VTL2.
 */
bool vtl_mmio_unmapped(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e);

/*
 * After vtl_create: VTL2's memory [base, base + size) is removed from
 * VTL0's partition (VTL0's accesses there are intercepts for VTL2). vm.c
 * calls it with igvm_boot's vtl2_base/vtl2_size, or with the file's
 * VTL2-protectable REQUIRED_MEMORY (vtl_mem_igvm_range). 0 or -errno (logged).
 */
int vtl_hide(struct vtl *t, uint64_t base, uint64_t size);
/*
 * After hv answered a VTL0 HvPostMessage/HvSignalEvent with `result`: an
 * unknown connection (INVALID_CONNECTION_ID) while VTL2 intercepts unknown
 * SynIC connections (InstallIntercept 0x0D), or an HvRetargetDeviceInterrupt
 * of an unknown device (INVALID_DEVICE_ID) while VTL2 intercepts those
 * (RetargetUnknownDeviceId, 0x0F), goes to VTL2 as the hypercall
 * intercept message (registers; RIP at the hypercall page's `out`, length
 * 2) and v runs VTL2, which completes the call (RAX through its assist
 * page's vtl_return_rax, RIP past the instruction). True when delivered:
 * RAX must then not be written.
 */
bool vtl_unknown_connection(struct vtl *t, struct vm_vcpu *v, uint64_t control, uint64_t result);
/*
 * A VTL0 RDMSR/WRMSR of an MSR hv does not own that reached user space
 * (KVM's unknown-MSR or filter exits) while VTL2 intercepts that access
 * (InstallIntercept MSR, read/write mask): finished at once, VTL0 put back
 * at the instruction, the HV MSR intercept message (RAX/RDX as VTL0 had
 * them) goes to VTL2 and v runs VTL2. True when handled here (e->msr must
 * then be left alone), false for hvmm's default.
 */
bool vtl_msr_intercept(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e);
/*
 * VTL0 of v retired `vector` (ACCEL_EXIT_EOI, split irqchip): if VTL2
 * installed an APIC EOI intercept and VTL0's APIC took the vector
 * level-triggered, HV_X64_APIC_EOI_MESSAGE goes to VTL2, v runs VTL2, and
 * the EOI is VTL2's alone (as OpenVMM's WHP VSM does): true. False: the
 * IOAPIC's (core/vm.c).
 */
bool vtl_eoi(struct vtl *t, struct vm_vcpu *v, uint8_t vector);
/*
 * MSRs both VTLs share that KVM keeps per vCPU (TLFS "Virtual Secure
 * Mode", shared state): the MTRRs (variable pairs 0-7, fixed, default
 * type). Both VTLs' partitions trap them (accel_config.trap_msr_ranges).
 */
#define VTL_SHARED_MSR_RANGES \
	{ 0x200, 0x20F }, { 0x250, 0x250 }, { 0x258, 0x259 }, { 0x268, 0x26F }, { 0x2FF, 0x2FF }
/*
 * A trapped access to a shared MSR by either VTL: a read is the running
 * VTL's vCPU's (both hold the same), a write goes to that vCPU (KVM's
 * checks: #GP when it refuses) and then to the VP's other VTL's vCPU. True
 * when e was such an MSR (e->msr answered), false otherwise.
 */
bool vtl_shared_msr(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e);
/*
 * Length of the IN/OUT/INS/OUTS instruction in insn[0..n) (prefixes
 * included), 0 if it is not one; *string for INS/OUTS, *rep for F2/F3.
 */
unsigned vtl_io_insn_len(const uint8_t *insn, unsigned n, bool *string, bool *rep);
/*
 * Length of the OUT/OUTS instruction that ends at b[15] (the 16 bytes
 * before a RIP an instruction emulator already advanced), for a write of
 * `size` bytes to `port`; 0 if none fits.
 */
unsigned vtl_io_insn_back(const uint8_t b[16], uint16_t port, uint8_t size);

/*
 * CPUID of the vCPU v->av names (setup_cpuid, after cpuid_fixup): VTL2's
 * 0x40000003 adds the partition privileges AccessVsm and AccessVpRegisters
 * (EBX bits 16, 17) and XMM hypercall input/output (EDX bits 4, 15: vsm
 * takes fast calls in XMM); VTL0 keeps hv's leaves.
 */
void vtl_cpuid_fixup(struct vtl *t, const struct vm_vcpu *v, struct accel_cpuid_entry *e,
		     size_t n);

/* The VTL v runs. */
unsigned vtl_active(struct vtl *t, const struct vm_vcpu *v);

/*
 * A hypercall exit (the page's `out`): VSM calls are handled here (result,
 * #UD, or a switch: v->av changes); false for the others, which VTL0 hands
 * to hv as before (from VTL2 they fail with INVALID_HYPERCALL_CODE here).
 */
bool vtl_hypercall(struct vtl *t, struct vm_vcpu *v);

/*
 * A synthetic MSR exit (hv_msr_owned): VTL2's go to vsm (reads vsm does
 * not keep fall back to hv, such writes #GP). VTL0's stay with hv; after
 * a VTL0 hypercall-page write the page gets vsm's VTL call/return stubs.
 * Returns true when handled here (e->msr filled).
 */
bool vtl_msr(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e);

#endif
