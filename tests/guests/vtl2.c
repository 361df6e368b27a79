/*
 * vtl2: the VTL2 test payload of `hvmm --vtl2` (TLFS "Virtual Secure Mode";
 * ../shared/docs/igvm-and-vsm.md parts B-C). Built into a VSM_ISOLATION
 * IGVM file by `hvmm-igvm build --vsm --elf vtl2.elf`, it starts in VTL2 on
 * the BSP and, with the shared VTL2 runtime (lib/vtl2_rt: VTL0 here runs on
 * VTL2's own page tables, GDT and IDT), on COM1 with the framework's
 * PASS/FAIL lines:
 *  - enables its hypercall page and reads HvRegisterVsmCodePageOffsets
 *    (VTL call/return stubs at 0x10/0x30);
 *  - GetVpRegisters VsmCapabilities and VsmVpStatus (VTL2 active, VTL0 and
 *    VTL2 enabled), and error paths: an unknown register, a write to the
 *    read-only VsmVpStatus, a register of VTL 3;
 *  - SetVpRegisters of VTL0's control registers, segments, tables, RIP,
 *    RSP and RFLAGS (its own paging and GDT, a private stack);
 *  - VtlReturn into that VTL0 code (vtl0_entry below), which enables its
 *    own hypercall page, makes a call VTL0 may not make (GetVpRegisters of
 *    a VTL2 register: ACCESS_DENIED expected) and VtlCalls back with a value
 *    in RBX and that status in R12 (shared registers); before that, its
 *    write to port 0x5A5 is intercepted (InstallIntercept, message in the
 *    VP assist page) and VTL2 advances VTL0's RIP past it; then its read
 *    of port 0x5A6 (read-only intercept: its later write there is not
 *    intercepted), answered through the assist page's vtl_return_rax/rcx
 *    and a slow VtlReturn, and its RDMSR/WRMSR of MSR 0xABC0DE (MSR
 *    intercept), answered the same way with RDX in the shared registers;
 *  - VTL0 sets XMM3 and MXCSR before its VtlCall: VTL2 finds them (shared
 *    state carried across the switch); a fast GetVpRegisters with the
 *    register name in XMM0 returns the value in XMM1;
 *  - without intercept_page, VTL0's next intercepted out arrives in VTL2's
 *    SIMP slot 0 (SINT0) with entry reason INTERRUPT; an interrupt
 *    asserted for VTL2 (AssertVirtualInterrupt) brings the VP back to VTL2
 *    right after VtlReturn, before VTL0 runs an instruction;
 *  - VTL0's HvSignalEvent to an unknown connection reaches VTL2 as a
 *    hypercall intercept (unknown SynIC connection intercept), which
 *    completes it with its own status;
 *  - VINA: an interrupt for VTL0 while VTL2 runs sets vina_status and
 *    requests VTL2's VINA vector; so does one VTL0's APIC requests that no
 *    VSM call sent (VTL0's self-IPI), at VTL2's next exit once re-armed;
 *  - VTL2's own synthetic timers: STIMER0 in direct mode preempts VTL0
 *    (entry reason INTERRUPT, its vector requested), STIMER1 in message
 *    mode posts HvMessageTimerExpired into VTL2's SIMP slot of its SINT;
 *  - VTL2's own reference TSC page agrees with TIME_REF_COUNT;
 *  - VTL0's INIT/SIPI to APIC 2 (with -p 3) do not start VP 2, which VTL2
 *    has not started (its VTL0 RIP stays at the reset vector);
 *  - CPUID 0x40000003: VTL2 has AccessVsm, AccessVpRegisters and XMM
 *    hypercall input/output; VTL0 has PostMessages/SignalEvents only;
 *  - with more than one VP: EnableVpVtl and StartVirtualProcessor of VP 1
 *    in VTL2, which raises a flag (with one, EnableVpVtl's INVALID_VP_INDEX).
 * Then it prints "GUEST-RESULT: N passed, M failed" and powers off.
 */
#include "guest.h"
#include "hvcall_lib.h"
#include "vtl2_rt.h"

const char guest_name[] = "vtl2";
/* VTL2 logs on COM3, as OpenHCL does (the payload contract). */
u16 guest_console_port = COM3_BASE;

#define VTL0_VALUE 0x5a5a1234u
#define REG_VSM_CAPABILITIES 0x000D0006u
#define REG_VSM_VP_STATUS    0x000D0003u
#define REG_VSM_VINA         0x000D0005u
#define MSR_EOM              0x40000084u
#define MSR_TIME_REF_COUNT   0x40000020u
#define STATUS_INVALID_VP_INDEX 0x000E

/* VTL0's pages: hypercall page, input/output of its call, stack. */
u8 vtl0_hcpage[4096] __attribute__((aligned(4096)));
u8 vtl0_in[4096] __attribute__((aligned(4096)));
u8 vtl0_out[4096] __attribute__((aligned(4096)));
static u8 vtl0_stack[4096] __attribute__((aligned(4096)));
static u8 ap_stack[4096] __attribute__((aligned(4096)));
static u8 *const assist = vtl2_rt_assist;                /* VTL2's VP assist page */
static u8 simp2[4096] __attribute__((aligned(4096)));    /* VTL2's SynIC message page */
static u8 tsc2[4096] __attribute__((aligned(4096)));     /* VTL2's reference TSC page */
static u8 *const sipi_page = (u8 *)0x9f000;              /* VTL0's SIPI vector 0x9f */
volatile u32 vtl2_ap_flag, vtl0_ap_flag;
void vtl2_ap_entry(void);
void vtl0_ap_entry(void);
static u8 ap2_stack[4096] __attribute__((aligned(4096)));

void vtl0_entry(void);
/*
 * VtlReturn into VTL0 with its registers as it left them
 * (vtl2_rt_vtl0_gprs): fast, or slow once a test has put VTL0's RAX/RCX
 * in the assist page (answer_slow) and until one goes back to fast.
 */
static bool return_fast = true;
static void run_vtl0(const struct hvcall *h)
{
	vtl2_rt_return(h, return_fast);
}
#define VTL0_GPR(r) vtl2_rt_vtl0_gprs[VTL2_RT_##r]
u32 vtl0_mxcsr = 0x7f80;   /* round toward zero, all exceptions masked */
/* XMM3 and MXCSR as VTL2 finds them after VTL0's VtlCall. */
static u64 read_xmm3(void)
{
	u64 v;
	__asm__ volatile("movq %%xmm3, %0" : "=r"(v));
	return v;
}
static u32 read_mxcsr(void)
{
	u32 m;
	__asm__ volatile("stmxcsr %0" : "=m"(m));
	return m;
}
/*
 * Fast GetVpRegisters of one register (TLFS fast hypercall with XMM input
 * and output): partition in RDX, VP and VTL in R8, the name in XMM0, the
 * 16-byte value back in XMM1. Returns the status; *val the low 8 bytes.
 */
static u16 fast_get_reg(const u8 *page, u8 vtl, u32 name, u64 *val)
{
	u64 ctl = 0x50 | 1ull << 16 | 1ull << 32, st, out;
	register u64 r8 __asm__("r8") = 0xFFFFFFFEull | (u64)vtl << 32;
	u64 n = name;
	__asm__ volatile("movq %[n], %%xmm0\n"
			 "xor %%eax, %%eax\n"
			 "movq %%rax, %%xmm1\n"
			 "mov $-1, %%rdx\n"
			 "call *%[page]\n"
			 "movq %%xmm1, %[out]\n"
			 : "=a"(st), [out] "=r"(out), "+c"(ctl), "+r"(r8)
			 : [n] "r"(n), [page] "r"(page)
			 : "rdx", "r9", "r10", "r11", "memory");
	*val = out;
	return (u16)st;
}

__asm__(
	".text\n"
	".globl vtl0_entry\n"
	"vtl0_entry:\n"
	VTL2_RT_VTL0_HV_INIT_ASM("vtl0_hcpage")
	/* GetVpRegisters (rep count 1) of a VTL2 register: not allowed from VTL0. */
	"	movabs $0x100000050, %rcx\n"
	"	mov $vtl0_in, %edx\n"
	"	mov $vtl0_out, %r8d\n"
	"	mov $vtl0_hcpage, %eax\n"
	"	call *%rax\n"
	"	mov %rax, %r12\n"
	"	mov $0x5a5, %edx\n"           /* a port write VTL2 intercepts (1 byte: out dx, al) */
	"	mov $0x77, %eax\n"
	"	out %al, %dx\n"
	"	mov $0x5a6, %edx\n"           /* a port read VTL2 intercepts: AL from VTL2 */
	"	mov $0x11, %eax\n"
	"	in %dx, %al\n"
	"	mov %rax, %r13\n"
	"	out %al, %dx\n"              /* VTL2 intercepts reads of 0x5A6 only */
	"	mov $" "0xabc0de" ", %ecx\n"  /* an MSR KVM does not know: rdmsr, then wrmsr */
	"	rdmsr\n"
	"	shl $32, %rdx\n"
	"	mov %eax, %eax\n"
	"	or %rdx, %rax\n"
	"	mov %rax, %r14\n"
	"	mov $" "0xabc0de" ", %ecx\n"
	"	mov $0x5a5a, %eax\n"
	"	mov $0xa5, %edx\n"
	"	wrmsr\n"
	"	mov $0x5a5, %edx\n"           /* intercepted again: now on VTL2's SINT0 */
	"	mov $0x78, %eax\n"
	"	out %al, %dx\n"
	"	movabs $0x1005d, %rcx\n"    /* fast HvSignalEvent to unknown connection 0x7777 */
	"	movabs $0x300007777, %rdx\n"  /* flag 3 */
	"	mov $vtl0_hcpage, %eax\n"
	"	call *%rax\n"
	"	mov %rax, %rbp\n"            /* its status, as VTL2 completed it */
	"	mov $0x40000003, %eax\n"     /* VTL0's Hyper-V privileges: EBX into R15 */
	"	cpuid\n"
	"	mov %rbx, %r15\n"
	"	mov $0x1b, %ecx\n"           /* x2APIC on, enabled: INIT + SIPI to APIC 2 */
	"	rdmsr\n"
	"	or $0xc00, %eax\n"
	"	wrmsr\n"
	"	mov $0x80f, %ecx\n"
	"	mov $0x1ff, %eax\n"
	"	xor %edx, %edx\n"
	"	wrmsr\n"
	"	mov $0x830, %ecx\n"          /* ICR: INIT, assert, to APIC 2 */
	"	mov $0x4500, %eax\n"
	"	mov $2, %edx\n"
	"	wrmsr\n"
	"	mov $0x469f, %eax\n"         /* ICR: SIPI, vector 0x9f */
	"	wrmsr\n"
	"	mov $0x83f, %ecx\n"          /* SELF IPI 0x62: stays requested (IF clear) */
	"	mov $0x62, %eax\n"
	"	xor %edx, %edx\n"
	"	wrmsr\n"
	"	mov $" "0x5a5a1234" ", %ebx\n"
	"	movabs $0x1122334455667788, %rax\n"  /* XMM3 and MXCSR are shared: VTL2 sees them */
	"	movq %rax, %xmm3\n"
	"	ldmxcsr vtl0_mxcsr\n"
	"	xor %ecx, %ecx\n"             /* VtlCall input 0 */
	"	mov $vtl0_hcpage + 0x10, %eax\n"
	"	call *%rax\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	".globl vtl0_ap_entry\n"
	"vtl0_ap_entry:\n"                /* VP 2 in VTL0 (StartVirtualProcessor): flag, halt */
	"	movl $0xb0b, vtl0_ap_flag\n"
	"3:	cli\n"
	"	hlt\n"
	"	jmp 3b\n"
	".globl vtl2_ap_entry\n"
	"vtl2_ap_entry:\n"                /* VP 1 in VTL2: raise the flag, halt */
	"	movl $0xa11ce, vtl2_ap_flag\n"
	"2:	cli\n"
	"	hlt\n"
	"	jmp 2b\n");

/* Moves VTL0's RIP to `rip` (past an intercepted instruction): one check. */
static u16 advance_vtl0(const struct hvcall *h, u64 rip)
{
	u16 st = hvcall_set_vp_register(h, HVL_VTL(0), VTL2_RT_REG_RIP, rip, 0);
	expect(st == 0, "advancing VTL0's RIP: status 0x%x", st);
	return st;
}

/* The next VtlReturn is slow: VTL0 gets RAX and RCX from the assist page. */
static void answer_slow(u64 rax, u64 rcx)
{
	memcpy(assist + 16, &rax, 8);   /* vtl_return_rax */
	memcpy(assist + 24, &rcx, 8);   /* vtl_return_rcx */
	return_fast = false;
}

/* Frees a SIMP slot (message type 0) and signals end of message. */
static void free_slot(u8 *slot)
{
	u32 zero = 0;
	memcpy(slot, &zero, 4);
	wrmsr(MSR_EOM, 0);
}

static void clear_entry_reason(void)
{
	u32 zero = 0;
	memcpy(assist + 8, &zero, 4);
}

/*
 * EnableVpVtl / StartVirtualProcessor input in h->in: this partition, VP
 * `vp`, VTL `vtl`, then HV_INITIAL_VP_CONTEXT with VTL2's paging and GDT.
 */
static void vp_context_input(const struct hvcall *h, u32 vp, u8 vtl, u64 rip, u64 rsp)
{
	u64 self = HVL_PARTITION_SELF;
	memset(h->in, 0, 16);
	memcpy(h->in, &self, 8);
	memcpy(h->in + 8, &vp, 4);
	h->in[12] = vtl;
	vtl2_rt_vp_context(h->in + 16, rip, rsp);
}

int guest_main(const char *cmdline)
{
	(void)cmdline;
	struct hvcall h;
	TEST_BEGIN("hypercall_page");
	u16 st = 0;
	expect(vtl2_rt_hvcall_init(&h, &st) == 0, "VTL2's hypercall page did not appear");
	expect(st == 0, "VsmCodePageOffsets: status 0x%x", st);
	expect(h.vtl_call_offset == 0x10 && h.vtl_return_offset == 0x30,
	       "VTL call/return stubs at 0x%x/0x%x", h.vtl_call_offset, h.vtl_return_offset);
	if (st || !h.vtl_return_offset)
		guest_abort("no VTL return stub");

	TEST_BEGIN("get_vp_registers");
	u64 caps = 0, status = 0;
	st = hvcall_get_vp_register(&h, HVL_VTL_CURRENT, REG_VSM_CAPABILITIES, &caps, NULL);
	expect(st == 0, "VsmCapabilities: status 0x%x", st);
	st = hvcall_get_vp_register(&h, HVL_VTL_CURRENT, REG_VSM_VP_STATUS, &status, NULL);
	expect(st == 0, "VsmVpStatus: status 0x%x", st);
	expect((status & 0xf) == 2, "VsmVpStatus active VTL %u, not 2", (unsigned)(status & 0xf));
	expect(((status >> 16) & 0x5) == 0x5, "VsmVpStatus enabled VTLs 0x%x",
	       (unsigned)((status >> 16) & 0xffff));
	printf("VsmCapabilities 0x%lx VsmVpStatus 0x%lx\n", caps, status);

	TEST_BEGIN("cpuid_privileges");
	{
		/* VTL2 has AccessVsm and AccessVpRegisters, and XMM hypercall input/output. */
		u32 a, b, c, d;
		cpuid(0x40000003u, 0, &a, &b, &c, &d);
		printf("VTL2 CPUID 0x40000003: EBX 0x%x EDX 0x%x\n", b, d);
		expect((b & 0x30000u) == 0x30000u, "EBX 0x%x: AccessVsm/AccessVpRegisters missing", b);
		expect((d & 0x8010u) == 0x8010u, "EDX 0x%x: XMM hypercall input/output missing", d);
	}

	TEST_BEGIN("register_errors");
	u64 junk;
	st = hvcall_get_vp_register(&h, HVL_VTL_CURRENT, 0x00ABCDEFu, &junk, NULL);
	expect(st != 0, "an unknown register read succeeded");
	st = hvcall_set_vp_register(&h, HVL_VTL_CURRENT, REG_VSM_VP_STATUS, 0, 0);
	expect(st != 0, "a write to the read-only VsmVpStatus succeeded");
	st = hvcall_get_vp_register(&h, HVL_VTL(3), REG_VSM_VP_STATUS, &junk, NULL);
	expect(st != 0, "a read of VTL 3's register succeeded");

	TEST_BEGIN("set_vtl0_state");
	st = vtl2_rt_setup_vtl0_shared(&h, (u64)vtl0_entry, (u64)vtl0_stack + sizeof(vtl0_stack));
	expect(st == 0, "SetVpRegisters of VTL0: status 0x%x", st);
	unsigned bad = st != 0;
	/* Read back through GetVpRegisters: VTL0's RIP and CR3 as set. */
	u64 rip = 0, cr3 = 0;
	st = hvcall_get_vp_register(&h, HVL_VTL(0), VTL2_RT_REG_RIP, &rip, NULL);
	expect(st == 0 && rip == (u64)vtl0_entry, "VTL0 RIP 0x%lx (status 0x%x)", rip, st);
	st = hvcall_get_vp_register(&h, HVL_VTL(0), VTL2_RT_REG_CR3, &cr3, NULL);
	expect(st == 0 && cr3 == read_cr3(), "VTL0 CR3 0x%lx (status 0x%x)", cr3, st);
	/* A private MSR: VTL0's LSTAR is its own, VTL2's stays. */
	u64 lstar2 = rdmsr(0xC0000082u), lstar0 = 0;
	st = hvcall_set_vp_register(&h, HVL_VTL(0), VTL2_RT_REG_LSTAR, 0xffff800012345000ull, 0);
	expect(st == 0, "SetVpRegisters VTL0 Lstar: status 0x%x", st);
	st = hvcall_get_vp_register(&h, HVL_VTL(0), VTL2_RT_REG_LSTAR, &lstar0, NULL);
	expect(st == 0 && lstar0 == 0xffff800012345000ull, "VTL0 Lstar 0x%lx (status 0x%x)", lstar0, st);
	expect(rdmsr(0xC0000082u) == lstar2, "VTL2's LSTAR changed to 0x%lx", rdmsr(0xC0000082u));
	/* VTL0's forbidden call: GetVpRegisters of (self, VTL 2) VsmVpStatus. */
	{
		const struct hvcall h0 = { .in = vtl0_in };
		u32 name = REG_VSM_VP_STATUS;
		hvcall_regs_header(&h0, HVL_VTL(2));
		memset(vtl0_in + 16, 0, 16);
		memcpy(vtl0_in + 16, &name, 4);
	}

	TEST_BEGIN("start_vp");
	/*
	 * EnableVpVtl + StartVirtualProcessor of VP 1 in VTL2 (HV_INITIAL_VP_CONTEXT
	 * with this VTL's paging and GDT); with one VP, EnableVpVtl must say
	 * INVALID_VP_INDEX.
	 */
	{
		vp_context_input(&h, 1, 2, (u64)vtl2_ap_entry, (u64)ap_stack + sizeof(ap_stack));
		st = hvcall_simple(&h, HVL_CALL_ENABLE_VP_VTL);
		if (st == STATUS_INVALID_VP_INDEX) {
			printf("one VP: EnableVpVtl of VP 1 is INVALID_VP_INDEX as it must be\n");
		} else {
			expect(st == 0, "EnableVpVtl(VP 1, VTL2): status 0x%x", st);
			st = hvcall_simple(&h, HVL_CALL_START_VIRTUAL_PROCESSOR);
			expect(st == 0, "StartVirtualProcessor(VP 1, VTL2): status 0x%x", st);
			u64 t0 = rdtsc();
			while (st == 0 && vtl2_ap_flag != 0xa11ce && rdtsc() - t0 < 20000000000ull)
				cpu_relax();
			expect(vtl2_ap_flag == 0xa11ce, "VP 1 did not run in VTL2 (flag 0x%x)",
			       vtl2_ap_flag);
			if (vtl2_ap_flag == 0xa11ce)
				printf("VP 1 started in VTL2\n");
		}
	}

	TEST_BEGIN("io_intercept");
	/*
	 * Intercept VTL0's write to port 0x5A5 (InstallIntercept) with messages
	 * in the VP assist page (VsmPartitionConfig.intercept_page); VtlReturn:
	 * VTL0 enables its hypercall page, makes its forbidden call and writes
	 * the port, which brings VTL2 back with the message; advance VTL0's RIP.
	 */
	vtl2_rt_enable_assist();
	st = hvcall_set_vp_register(&h, HVL_VTL_CURRENT, HVL_REG_VSM_PARTITION_CONFIG, 1ull << 12, 0);
	expect(st == 0, "VsmPartitionConfig intercept_page: status 0x%x", st);
	{
		st = vtl2_rt_install_intercept(&h, 2 /* write */, 0 /* X64_IO_PORT */, 0x5a5);
		expect(st == 0, "InstallIntercept(port 0x5a5): status 0x%x", st);
		/* Reads of port 0x5A6 (only) and RDMSR/WRMSR. */
		u16 st2 = vtl2_rt_install_intercept(&h, 1 /* read */, 0, 0x5a6);
		expect(st2 == 0, "InstallIntercept(read port 0x5a6): status 0x%x", st2);
		u16 st3 = vtl2_rt_install_intercept(&h, 3, 1 /* X64_MSR */, 0x5a6);
		expect(st3 == 0, "InstallIntercept(MSR): status 0x%x", st3);
		st |= st2 | st3;
	}
	struct vtl2_rt_intercept m;
	if (bad == 0 && st == 0) {
		run_vtl0(&h);
		vtl2_rt_read_intercept(assist, &m);
		u64 rip1 = 0;
		printf("intercept: entry reason %u, message 0x%x, port 0x%x, rax 0x%lx, rip 0x%lx+%u\n",
		       m.entry_reason, m.type, m.port, m.rax, m.rip, m.insn_len);
		expect(m.entry_reason == VTL2_RT_ENTRY_INTERCEPT, "VTL entry reason %u, not INTERCEPT (3)",
		       m.entry_reason);
		expect(m.type == VTL2_RT_MSG_IO_PORT, "message type 0x%x, not X64_IO_PORT_INTERCEPT",
		       m.type);
		expect(m.port == 0x5a5 && (m.rax & 0xff) == 0x77 && m.insn_len == 1,
		       "port 0x%x rax 0x%lx length %u", m.port, m.rax, m.insn_len);
		st = hvcall_get_vp_register(&h, HVL_VTL(0), VTL2_RT_REG_RIP, &rip1, NULL);
		expect(st == 0 && rip1 == m.rip, "VTL0 RIP 0x%lx, message 0x%lx", rip1, m.rip);
		st = advance_vtl0(&h, rip1 + m.insn_len);
	}

	TEST_BEGIN("io_read_intercept");
	/*
	 * VTL0's `in al, dx` from 0x5A6: the message has the read access, the
	 * port and VTL0's RAX; VTL2 advances RIP and gives the value through
	 * its assist page's vtl_return_rax/rcx (slow VtlReturn; RAX is shared).
	 */
	if (bad == 0 && st == 0) {
		run_vtl0(&h);
		vtl2_rt_read_intercept(assist, &m);
		printf("read intercept: entry reason %u, message 0x%x, access %u, port 0x%x, rax 0x%lx, "
		       "length %u\n", m.entry_reason, m.type, m.access, m.port, m.rax, m.insn_len);
		expect(m.entry_reason == VTL2_RT_ENTRY_INTERCEPT && m.type == VTL2_RT_MSG_IO_PORT &&
		       m.access == 0, "entry reason %u, message 0x%x, access %u", m.entry_reason, m.type,
		       m.access);
		expect(m.port == 0x5a6 && m.rax == 0x11 && m.insn_len == 1,
		       "port 0x%x rax 0x%lx length %u", m.port, m.rax, m.insn_len);
		st = advance_vtl0(&h, m.rip + m.insn_len);
		answer_slow(0xc3, m.rcx);
	}

	TEST_BEGIN("msr_intercept");
	/*
	 * VTL0's rdmsr of 0xABC0DE, then its wrmsr (the out to 0x5A6 between
	 * them is not intercepted: reads only); VTL2 answers the read with
	 * RDX:RAX = 0x01234567:89ABCDEF and checks the write's RDX:RAX.
	 */
	if (bad == 0 && st == 0) {
		for (int i = 0; i < 2; i++) {
			run_vtl0(&h);
			return_fast = true;
			vtl2_rt_read_intercept(assist, &m);
			printf("msr intercept: entry reason %u, message 0x%x, access %u, msr 0x%x, "
			       "rdx 0x%lx rax 0x%lx\n", m.entry_reason, m.type, m.access, m.msr, m.rdx,
			       m.rax);
			expect(m.entry_reason == VTL2_RT_ENTRY_INTERCEPT && m.type == VTL2_RT_MSG_MSR &&
			       m.access == (unsigned)i && m.msr == 0xabc0de && m.insn_len == 2,
			       "entry reason %u, message 0x%x, access %u, msr 0x%x, length %u",
			       m.entry_reason, m.type, m.access, m.msr, m.insn_len);
			if (i == 1)
				expect(m.rax == 0x5a5a && m.rdx == 0xa5, "wrmsr RDX:RAX 0x%lx:0x%lx", m.rdx,
				       m.rax);
			st = advance_vtl0(&h, m.rip + 2);
			if (i == 0) {
				answer_slow(0x89abcdef, 0xabc0de);
				VTL0_GPR(RDX) = 0x01234567;
			}
		}
	}

	TEST_BEGIN("sint0_message");
	/*
	 * Without VsmPartitionConfig.intercept_page the intercept is a message
	 * in VTL2's SIMP slot 0 (SynIC enabled, SINT0 unmasked) and the entry
	 * reason is INTERRUPT: VTL0's next out to 0x5A5.
	 */
	if (bad == 0 && st == 0) {
		wrmsr(0x40000080u, 1);                        /* SCONTROL */
		wrmsr(0x40000083u, (u64)simp2 | 1);           /* SIMP */
		wrmsr(0x40000090u, 0x50);                     /* SINT0: vector 0x50 */
		st = hvcall_set_vp_register(&h, HVL_VTL_CURRENT, HVL_REG_VSM_PARTITION_CONFIG, 0, 0);
		expect(st == 0, "VsmPartitionConfig without intercept_page: status 0x%x", st);
		clear_entry_reason();
		run_vtl0(&h);
		vtl2_rt_decode_message(simp2, &m);
		u32 reason = vtl2_rt_entry_reason(assist);
		printf("SINT0: entry reason %u, message 0x%x, port 0x%x, rax 0x%lx, length %u\n", reason,
		       m.type, m.port, m.rax, m.insn_len);
		expect(reason == VTL2_RT_ENTRY_INTERRUPT && m.type == VTL2_RT_MSG_IO_PORT &&
		       m.port == 0x5a5 && (m.rax & 0xff) == 0x78 && m.insn_len == 1,
		       "entry reason %u message 0x%x port 0x%x rax 0x%lx", reason, m.type, m.port, m.rax);
		free_slot(simp2);
		st = advance_vtl0(&h, m.rip + m.insn_len);
	}

	TEST_BEGIN("unknown_synic_intercept");
	/*
	 * VTL0's HvSignalEvent to a connection nobody owns, with the unknown
	 * SynIC connection intercept installed: a hypercall intercept message
	 * (SINT0 now) with its RCX/RDX and RIP at the hypercall page's `out`;
	 * VTL2 completes it with status 0x3c through vtl_return_rax.
	 */
	if (bad == 0 && st == 0) {
		st = vtl2_rt_install_intercept(&h, 1, 0x0D /* UNKNOWN_SYNIC_CONNECTION */, 0);
		expect(st == 0, "InstallIntercept(unknown SynIC connection): status 0x%x", st);
		run_vtl0(&h);
		vtl2_rt_decode_message(simp2, &m);
		u32 reason = vtl2_rt_entry_reason(assist);
		printf("unknown connection: entry reason %u, message 0x%x, rcx 0x%lx rdx 0x%lx, rip "
		       "0x%lx+%u\n", reason, m.type, m.rcx, m.rdx, m.rip, m.insn_len);
		expect(reason == VTL2_RT_ENTRY_INTERRUPT && m.type == VTL2_RT_MSG_HYPERCALL &&
		       m.rcx == 0x1005d && m.rdx == 0x300007777ull && m.insn_len == 2 &&
		       m.rip == (u64)vtl0_hcpage + 4,
		       "entry reason %u message 0x%x rcx 0x%lx rdx 0x%lx rip 0x%lx+%u", reason, m.type,
		       m.rcx, m.rdx, m.rip, m.insn_len);
		free_slot(simp2);
		st = advance_vtl0(&h, m.rip + m.insn_len);
		answer_slow(0x3c, m.rcx);
	}

	TEST_BEGIN("vtl2_interrupt_preempts");
	/*
	 * AssertVirtualInterrupt to VTL2 of VP 0, then VtlReturn: the pending
	 * VTL2 interrupt brings VP 0 back to VTL2 at once (entry reason
	 * INTERRUPT) before VTL0 runs an instruction (its RIP is unchanged).
	 */
	bool vtl0_called = false;   /* VTL0 already made its final VtlCall */
	if (bad == 0 && st == 0) {
		/* VTL2's APIC must accept the interrupt: x2APIC on, software-enabled. */
		wrmsr(0x1Bu, rdmsr(0x1Bu) | 3u << 10);        /* IA32_APIC_BASE: EN, EXTD */
		wrmsr(0x80Fu, 0x1ff);                         /* SVR: enabled, spurious 0xFF */
		u64 rip_before = 0, rip_after = 0;
		st = vtl2_rt_assert_interrupt(&h, 2, 0x51, false);
		expect(st == 0, "AssertVirtualInterrupt(VTL2, vector 0x51): status 0x%x", st);
		u16 st2 = hvcall_get_vp_register(&h, HVL_VTL(0), VTL2_RT_REG_RIP, &rip_before, NULL);
		clear_entry_reason();
		run_vtl0(&h);
		/*
		 * VTL0 ran no instruction: the next return gives it the same
		 * RAX/RCX again (still in the assist page; slow return).
		 */
		u32 reason = vtl2_rt_entry_reason(assist);
		vtl0_called = reason == VTL2_RT_ENTRY_VTL_CALL;
		st2 |= hvcall_get_vp_register(&h, HVL_VTL(0), VTL2_RT_REG_RIP, &rip_after, NULL);
		printf("preempted: entry reason %u, VTL0 RIP 0x%lx -> 0x%lx\n", reason, rip_before,
		       rip_after);
		expect(st2 == 0 && reason == VTL2_RT_ENTRY_INTERRUPT && rip_after == rip_before,
		       "entry reason %u, VTL0 RIP 0x%lx -> 0x%lx (status 0x%x)", reason, rip_before,
		       rip_after, st2);
	}

	TEST_BEGIN("vina");
	/*
	 * VINA: with HvRegisterVsmVina enabled (vector 0x61), an interrupt
	 * asserted for VTL0 while VTL2 runs sets the assist page's vina_status
	 * and requests VTL2's VINA vector in its APIC (x2APIC IRR).
	 */
	if (bad == 0 && st == 0) {
		u8 zero8 = 0;
		memcpy(assist + 12, &zero8, 1);
		st = hvcall_set_vp_register(&h, HVL_VTL_CURRENT, REG_VSM_VINA, 0x61 | 1u << 8, 0);
		expect(st == 0, "VsmVina: status 0x%x", st);
		st = vtl2_rt_assert_interrupt(&h, 0, 0x60, false);
		expect(st == 0, "AssertVirtualInterrupt(VTL0, vector 0x60): status 0x%x", st);
		u64 irr3 = rdmsr(0x823u);                     /* IRR vectors 0x60-0x7f */
		printf("VINA: vina_status %u, VTL2 IRR[0x60-0x7f] 0x%lx\n", assist[12], irr3);
		expect(assist[12] == 1 && (irr3 & 2), "vina_status %u, IRR 0x%lx (vector 0x61 not requested)",
		       assist[12], irr3);
	}

	TEST_BEGIN("vtl_return_call");
	/* The SIPI page: `mov byte cs:[0x100], 0x77; hlt; jmp $-1` (real mode). */
	static const u8 sipi_code[] = { 0x2e, 0xc6, 0x06, 0x00, 0x01, 0x77, 0xf4, 0xeb, 0xfd };
	memset(sipi_page, 0, 4096);
	memcpy(sipi_page, sipi_code, sizeof(sipi_code));
	if (bad == 0 && !vtl0_called)
		run_vtl0(&h);
	expect(VTL0_GPR(RBX) == VTL0_VALUE, "VTL0 called back with RBX 0x%lx, not 0x%x",
	       VTL0_GPR(RBX), VTL0_VALUE);
	expect((VTL0_GPR(R12) & 0xffff) == HVL_STATUS_ACCESS_DENIED,
	       "VTL0's GetVpRegisters of VTL2: status 0x%lx, not ACCESS_DENIED",
	       VTL0_GPR(R12) & 0xffff);
	st = hvcall_get_vp_register(&h, HVL_VTL_CURRENT, REG_VSM_VP_STATUS, &status, NULL);
	expect(st == 0 && (status & 0xf) == 2, "after VtlCall: VsmVpStatus 0x%lx (status 0x%x)",
	       status, st);
	printf("VTL0 called back: RBX 0x%lx, its forbidden call's status 0x%lx\n", VTL0_GPR(RBX),
	       VTL0_GPR(R12) & 0xffff);
	expect(VTL0_GPR(R13) == 0xc3, "VTL0's IN gave RAX 0x%lx, not 0xc3", VTL0_GPR(R13));
	expect(VTL0_GPR(R14) == 0x0123456789abcdefull, "VTL0's RDMSR gave 0x%lx", VTL0_GPR(R14));
	printf("VTL0 read port 0x5a6: 0x%lx, MSR 0xabc0de: 0x%lx\n", VTL0_GPR(R13), VTL0_GPR(R14));
	/* VTL0 sees hv's privileges: no AccessVsm/AccessVpRegisters. */
	printf("VTL0 CPUID 0x40000003 EBX 0x%lx\n", VTL0_GPR(R15));
	expect(VTL0_GPR(RBP) == 0x3c, "VTL0's HvSignalEvent returned 0x%lx, not VTL2's 0x3c",
	       VTL0_GPR(RBP));
	expect(bad == 0 && (VTL0_GPR(R15) & 0x30000u) == 0 && (VTL0_GPR(R15) & 0x30u) == 0x30,
	       "VTL0's CPUID 0x40000003 EBX 0x%lx", VTL0_GPR(R15));

	TEST_BEGIN("vina_vtl0_apic");
	/*
	 * VINA for an interrupt VTL0's APIC requests that no VSM call sent
	 * (VTL0's x2APIC self-IPI 0x62 before its VtlCall, IF clear, the way a
	 * device's MSI, a stimer or another VP's IPI arrives): with vina_status
	 * cleared again, VTL2's next exit raises VINA once more.
	 */
	expect(VTL0_GPR(RBX) == VTL0_VALUE, "VTL0 has not made its VtlCall (no self-IPI)");
	if (VTL0_GPR(RBX) == VTL0_VALUE) {
		*(volatile u8 *)(assist + 12) = 0;
		u64 vina = 0;
		u16 s2 = hvcall_get_vp_register(&h, HVL_VTL_CURRENT, REG_VSM_VINA, &vina, NULL);
		u8 vs = *(volatile u8 *)(assist + 12);
		printf("VINA for VTL0's pending self-IPI: vina_status %u\n", vs);
		expect(s2 == 0 && vs == 1, "vina_status %u after an exit with VTL0's 0x62 requested "
		       "(status 0x%x)", vs, s2);
	}

	TEST_BEGIN("shared_fpu");
	/* VTL0 set XMM3 and MXCSR before its VtlCall: the same registers here. */
	u64 x3 = read_xmm3();
	u32 mx = read_mxcsr();
	printf("after VtlCall: XMM3 0x%lx MXCSR 0x%x\n", x3, mx);
	expect(bad == 0 && x3 == 0x1122334455667788ull, "XMM3 0x%lx, not VTL0's", x3);
	expect(bad == 0 && mx == 0x7f80, "MXCSR 0x%x, not VTL0's 0x7f80", mx);
	/* A fast hypercall's input and output in the real XMM registers. */
	u64 fstatus = 0;
	st = fast_get_reg(h.page, HVL_VTL_CURRENT, REG_VSM_VP_STATUS, &fstatus);
	expect(st == 0 && fstatus == status, "fast GetVpRegisters VsmVpStatus 0x%lx (status 0x%x), "
	       "slow 0x%lx", fstatus, st, status);
	printf("fast GetVpRegisters: VsmVpStatus 0x%lx in XMM1\n", fstatus);

	TEST_BEGIN("vtl0_ap_held");
	/*
	 * VTL0 sent INIT and SIPI (vector 0x9f) to APIC 2 before its VtlCall;
	 * the SIPI page holds real-mode code that marks 0x9f100. VP 2, which
	 * VTL2 has not started, must not run it.
	 */
	{
		u64 t0 = rdtsc();
		while (rdtsc() - t0 < 200000000ull)
			cpu_relax();
		u8 mark = sipi_page[0x100];
		if (mark == 0)
			printf("VP 2 after VTL0's INIT/SIPI: not started (mark 0x%x)\n", mark);
		expect(mark == 0, "VTL0's SIPI started an AP VTL2 did not start (mark 0x%x)", mark);
	}

	TEST_BEGIN("vtl0_ap_started_by_vtl2");
	/*
	 * StartVirtualProcessor(VP 2, VTL0) runs VP 2's VTL0 at the context
	 * given, though its APIC latched VTL0's INIT/SIPI meanwhile (they must
	 * not reset it into the SIPI page).
	 */
	{
		vp_context_input(&h, 2, 0, (u64)vtl0_ap_entry, (u64)ap2_stack + sizeof(ap2_stack));
		st = hvcall_simple(&h, HVL_CALL_START_VIRTUAL_PROCESSOR);
		if (st == STATUS_INVALID_VP_INDEX) {
			printf("no VP 2: StartVirtualProcessor is INVALID_VP_INDEX\n");
		} else {
			expect(st == 0, "StartVirtualProcessor(VP 2, VTL0): status 0x%x", st);
			u64 t0 = rdtsc();
			while (st == 0 && vtl0_ap_flag != 0xb0b && rdtsc() - t0 < 20000000000ull)
				cpu_relax();
			printf("VP 2 started in VTL0 by VTL2: flag 0x%x, SIPI mark 0x%x\n", vtl0_ap_flag,
			       sipi_page[0x100]);
			expect(vtl0_ap_flag == 0xb0b && sipi_page[0x100] == 0,
			       "VP 2 in VTL0: flag 0x%x, SIPI mark 0x%x", vtl0_ap_flag, sipi_page[0x100]);
		}
	}
	TEST_BEGIN("vtl2_stimer_direct_preempts");
	/*
	 * VTL2's own STIMER0 (direct mode, vector 0x63, one-shot 2 ms ahead on
	 * TIME_REF_COUNT), then VtlReturn into VTL0, which halts: the expiry
	 * brings VP 0 back to VTL2 (entry reason INTERRUPT) with 0x63
	 * requested in VTL2's APIC, and the timer is disabled after it fired.
	 */
	{
		u64 now = rdmsr(MSR_TIME_REF_COUNT);                 /* TIME_REF_COUNT */
		wrmsr(0x400000B0u, 1u | 1u << 12 | 0x63u << 4);  /* STIMER0: enable, direct */
		wrmsr(0x400000B1u, now + 20000);
		u64 cfg = rdmsr(0x400000B0u), cnt = rdmsr(0x400000B1u);
		expect(cfg == (1u | 1u << 12 | 0x63u << 4) && cnt == now + 20000,
		       "VTL2's STIMER0 reads back 0x%lx/0x%lx", cfg, cnt);
		clear_entry_reason();
		run_vtl0(&h);
		u32 reason = vtl2_rt_entry_reason(assist);
		u64 irr3 = rdmsr(0x823u), late = rdmsr(MSR_TIME_REF_COUNT);
		cfg = rdmsr(0x400000B0u);
		printf("VTL2 STIMER0 (direct 0x63): entry reason %u, IRR[0x60-0x7f] 0x%lx, %lu us "
		       "after arming, config 0x%lx\n", reason, irr3, (late - now) / 10, cfg);
		expect(reason == VTL2_RT_ENTRY_INTERRUPT && (irr3 & 8) && late >= now + 20000 && !(cfg & 1),
		       "entry reason %u, IRR 0x%lx, after %lu us, config 0x%lx", reason, irr3,
		       (late - now) / 10, cfg);
	}

	TEST_BEGIN("vtl2_stimer_message");
	/*
	 * STIMER1 in message mode on SINT2 (vector 0x64): HvMessageTimerExpired
	 * (timer 1, its expiration time) arrives in VTL2's SIMP slot 2.
	 */
	if (bad == 0) {
		volatile u8 *slot = simp2 + 2 * 256;
		wrmsr(0x40000092u, 0x64);                     /* SINT2: vector 0x64 */
		u64 now = rdmsr(MSR_TIME_REF_COUNT), deadline = now + 10000;
		wrmsr(0x400000B2u, 1u | 2u << 16);           /* STIMER1: enable, SINT2 */
		wrmsr(0x400000B3u, deadline);
		u32 type = 0;
		while ((type = *(volatile u32 *)slot) == 0 && rdmsr(MSR_TIME_REF_COUNT) < now + 50000000ull)
			cpu_relax();
		u32 index = 0;
		u64 exp = 0, irr3 = rdmsr(0x823u);
		memcpy(&index, (const u8 *)slot + 16, 4);
		memcpy(&exp, (const u8 *)slot + 24, 8);
		printf("VTL2 STIMER1 message: type 0x%x, timer %u, expiration %s, IRR[0x60-0x7f] "
		       "0x%lx\n", type, index, exp == deadline ? "as armed" : "wrong", irr3);
		expect(type == 0x80000010u && index == 1 && exp == deadline && (irr3 & 0x10),
		       "type 0x%x, timer %u, expiration 0x%lx (armed 0x%lx), IRR 0x%lx", type, index,
		       exp, deadline, irr3);
		free_slot((u8 *)slot);
	}
	TEST_BEGIN("vtl2_reference_tsc_page");
	/*
	 * VTL2's own REFERENCE_TSC MSR fills its page with the partition's
	 * reference time: the time computed from RDTSC with its scale and
	 * offset brackets TIME_REF_COUNT read between two computations.
	 */
	{
		wrmsr(0x40000021u, (u64)tsc2 | 1);
		u64 msr = rdmsr(0x40000021u);
		volatile u32 *seq = (volatile u32 *)tsc2;
		u64 scale, t1, t2, t3;
		s64 off;
		memcpy(&scale, tsc2 + 8, 8);
		memcpy(&off, tsc2 + 16, 8);
		t1 = (u64)(((unsigned __int128)rdtsc() * scale) >> 64) + (u64)off;
		t2 = rdmsr(MSR_TIME_REF_COUNT);
		t3 = (u64)(((unsigned __int128)rdtsc() * scale) >> 64) + (u64)off;
		printf("VTL2 reference TSC page: sequence %u, page time %s TIME_REF_COUNT\n", *seq,
		       t1 <= t2 && t2 <= t3 ? "brackets" : "misses");
		expect(msr == ((u64)tsc2 | 1) && *seq != 0 && scale != 0 && t1 <= t2 && t2 <= t3,
		       "MSR 0x%lx, sequence %u, scale 0x%lx: %lu <= %lu <= %lu", msr, *seq, scale,
		       t1, t2, t3);
	}
	TEST_END();
	return 0;
}
