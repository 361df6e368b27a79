/*
 * vtl2_irq: a VTL2 test payload of `hvmm --vtl2` for VTL0's interrupt
 * controllers as a paravisor sees them: APIC EOI intercepts (TLFS
 * "Virtual Secure Mode", HvInterceptTypeX64ApicEoi and
 * HV_X64_APIC_EOI_MESSAGE; ../shared/docs/igvm-and-vsm.md C.8) and the
 * IOAPIC hvmm gives VTL0's partition (a split irqchip: only the local
 * APICs are KVM's). Built into a VSM_ISOLATION IGVM file by
 * `hvmm-igvm build --vsm`, it starts in VTL2 on the BSP, runs VTL0 on its
 * own IDT (x2APIC on) with messages in its VP assist page, and checks:
 *  - InstallIntercept(ApicEoi) takes only the write mask;
 *  - a level-triggered AssertVirtualInterrupt into VTL0 (vector 0x51):
 *    VTL0 takes it, and its EOI reaches VTL2 as HV_X64_APIC_EOI_MESSAGE
 *    (VP 0, vector 0x51) with VTL0 stopped after the EOI, before its next
 *    VtlCall (on PVM hosts at VTL0's next exit, a port write before it);
 *  - the same vector edge-triggered, and another edge vector: VTL0's EOIs
 *    stay VTL0's (no message; VTL2 next sees VTL0's VtlCall);
 *  - with the intercept removed, a level-triggered vector's EOI is not
 *    reported either;
 *  - the MTRRs are shared (TLFS shared state; hvmm keeps one value in both
 *    VTLs' vCPUs): VTL0 reads the default type VTL2 set, and VTL2 reads
 *    the variable range VTL0 set;
 *  - VTL0 reads the IOAPIC's version register (0x00170020: hvmm's
 *    82093AA model, version 0x20, 24 pins, not KVM's 0x11), routes the RTC
 *    (IRQ 8) level-triggered to vector 0x58 and enables its periodic
 *    interrupt: it must take several, which needs each EOI to reach the
 *    IOAPIC (KVM's EOI exit) and clear the pin's remote IRR.
 * Then it prints "GUEST-RESULT: N passed, M failed" on COM3 and powers off.
 */
#include "guest.h"
#include "hvcall_lib.h"
#include "vtl2_rt.h"

const char guest_name[] = "vtl2_irq";
/* VTL2 logs on COM3, as OpenHCL does. */
u16 guest_console_port = COM3_BASE;

#define INTERCEPT_APIC_EOI 0x0E
#define MSG_APIC_EOI 0x80010004u
#define VEC_LEVEL 0x51
#define VEC_EDGE  0x52
#define VEC_RTC   0x58
#define IOAPIC_VER_EXPECTED 0x00170020u
#define CMD_RTC 1
#define CMD_MTRR 2
#define MTRR_DEF_TYPE 0x2FFu
#define MTRR_PHYS_BASE0 0x200u
#define MTRR_DEF_VALUE 0xC06ull     /* enabled, fixed enabled, write-back */
#define MTRR_BASE0_VALUE 0x80000006ull

/* VTL0's pages, IDT and what its code leaves for VTL2 to check. */
u8 vtl0_hcpage[4096] __attribute__((aligned(4096)));
static u8 vtl0_stack[4096] __attribute__((aligned(4096)));
static u8 vtl0_idt[256 * 16] __attribute__((aligned(16)));
volatile u32 vtl0_cmd;          /* CMD_RTC: run the RTC test before the next VtlCall */
volatile u32 vtl0_irqs;         /* interrupts VEC_LEVEL/VEC_EDGE taken */
volatile u32 vtl0_last_vector;
volatile u32 vtl0_rtc_irqs;     /* VEC_RTC taken */
volatile u32 vtl0_ioapic_ver;
volatile u32 vtl0_rtc_rte;      /* pin 8's entry after the test */
volatile u64 vtl0_mtrr_def;     /* MTRR_DEF_TYPE as VTL0 read it */
void vtl0_entry(void), vtl0_isr_level(void), vtl0_isr_edge(void), vtl0_isr_rtc(void);

/*
 * VTL0: x2APIC on and software-enabled, interrupts on, then a loop of
 * VtlCalls (an interrupt VTL2 asserted is taken as VTL0 resumes). The ISRs
 * count and EOI through the x2APIC EOI MSR. VTL2 restores VTL0's general
 * registers on each return (lib/vtl2_rt), RAX/RCX aside.
 */
__asm__(
	".text\n"
	".globl vtl0_entry\n"
	"vtl0_entry:\n"
	VTL2_RT_VTL0_HV_INIT_ASM("vtl0_hcpage")
	"	mov $0x1b, %ecx\n"            /* IA32_APIC_BASE: EN | EXTD */
	"	rdmsr\n"
	"	or $0xc00, %eax\n"
	"	wrmsr\n"
	"	mov $0x80f, %ecx\n"           /* SVR: enabled, spurious 0xff */
	"	mov $0x1ff, %eax\n"
	"	xor %edx, %edx\n"
	"	wrmsr\n"
	"	sti\n"
	"1:	cmpl $1, vtl0_cmd\n"
	"	jne 5f\n"
	"	call vtl0_rtc_test\n"
	"5:	cmpl $2, vtl0_cmd\n"       /* CMD_MTRR: read the default type, set range 0 */
	"	jne 2f\n"
	"	movl $0, vtl0_cmd\n"
	"	mov $0x2ff, %ecx\n"
	"	rdmsr\n"
	"	mov %eax, vtl0_mtrr_def\n"
	"	mov %edx, vtl0_mtrr_def + 4\n"
	"	mov $0x200, %ecx\n"
	"	mov $0x80000006, %eax\n"
	"	xor %edx, %edx\n"
	"	wrmsr\n"
	/*
	 * An exit to hvmm before the VtlCall: on PVM hosts KVM reports an EOI
	 * (KVM_EXIT_IOAPIC_EOI) only at the vCPU's next exit to user space,
	 * not at the EOI itself as hardware KVM does (docs/ARCHITECTURE.md).
	 */
	"2:	out %al, $0x80\n"
	"	xor %ecx, %ecx\n"             /* VtlCall input 0 */
	"	mov $vtl0_hcpage + 0x10, %eax\n"
	"	call *%rax\n"
	"	jmp 1b\n"
	/*
	 * The RTC through the IOAPIC: pin 8 level-triggered to VEC_RTC on APIC
	 * 0, periodic interrupts at 1024 Hz, wait (bounded) for 4, then stop
	 * them and mask the pin. Ring 0 here is emulated on PVM hosts:
	 * ~2 us per loop turn, so the bound is a few seconds.
	 */
	"vtl0_rtc_test:\n"
	"	movl $0, vtl0_cmd\n"
	"	mov $0xfec00000, %edi\n"     /* the IOAPIC (above 2 GiB: by register) */
	"	movl $0x01, (%rdi)\n"          /* IOREGSEL: version */
	"	mov 0x10(%rdi), %eax\n"
	"	mov %eax, vtl0_ioapic_ver\n"
	"	movl $0x21, (%rdi)\n"          /* pin 8, high: destination APIC 0 */
	"	movl $0, 0x10(%rdi)\n"
	"	movl $0x20, (%rdi)\n"          /* pin 8, low: level, fixed, unmasked */
	"	movl $0x8058, 0x10(%rdi)\n"
	"	mov $0x0a, %al\n"             /* RTC register A: divider on, rate 6 (1024 Hz) */
	"	out %al, $0x70\n"
	"	mov $0x26, %al\n"
	"	out %al, $0x71\n"
	"	mov $0x0b, %al\n"             /* register B: PIE */
	"	out %al, $0x70\n"
	"	in $0x71, %al\n"
	"	or $0x40, %al\n"
	"	mov %al, %dl\n"
	"	mov $0x0b, %al\n"
	"	out %al, $0x70\n"
	"	mov %dl, %al\n"
	"	out %al, $0x71\n"
	"	mov $2000000, %esi\n"
	"3:	cmpl $4, vtl0_rtc_irqs\n"
	"	jae 4f\n"
	"	dec %esi\n"
	"	jnz 3b\n"
	"4:	mov $0x0b, %al\n"             /* PIE off */
	"	out %al, $0x70\n"
	"	in $0x71, %al\n"
	"	and $0xbf, %al\n"
	"	mov %al, %dl\n"
	"	mov $0x0b, %al\n"
	"	out %al, $0x70\n"
	"	mov %dl, %al\n"
	"	out %al, $0x71\n"
	"	mov $0xfec00000, %edi\n"
	"	movl $0x20, (%rdi)\n"          /* mask pin 8 */
	"	movl $0x18058, 0x10(%rdi)\n"
	"	mov 0x10(%rdi), %eax\n"
	"	mov %eax, vtl0_rtc_rte\n"
	"	ret\n"
	".macro vtl0_eoi\n"
	"	mov $0x80b, %ecx\n"           /* x2APIC EOI */
	"	xor %eax, %eax\n"
	"	xor %edx, %edx\n"
	"	wrmsr\n"
	".endm\n"
	".globl vtl0_isr_level\n"
	"vtl0_isr_level:\n"
	"	push %rax\n"
	"	push %rcx\n"
	"	push %rdx\n"
	"	incl vtl0_irqs\n"
	"	movl $0x51, vtl0_last_vector\n"
	"	vtl0_eoi\n"
	"	pop %rdx\n"
	"	pop %rcx\n"
	"	pop %rax\n"
	"	iretq\n"
	".globl vtl0_isr_edge\n"
	"vtl0_isr_edge:\n"
	"	push %rax\n"
	"	push %rcx\n"
	"	push %rdx\n"
	"	incl vtl0_irqs\n"
	"	movl $0x52, vtl0_last_vector\n"
	"	vtl0_eoi\n"
	"	pop %rdx\n"
	"	pop %rcx\n"
	"	pop %rax\n"
	"	iretq\n"
	".globl vtl0_isr_rtc\n"
	"vtl0_isr_rtc:\n"
	"	push %rax\n"
	"	push %rcx\n"
	"	push %rdx\n"
	"	mov $0x0c, %al\n"             /* read RTC register C: the line drops */
	"	out %al, $0x70\n"
	"	in $0x71, %al\n"
	"	incl vtl0_rtc_irqs\n"
	"	vtl0_eoi\n"
	"	pop %rdx\n"
	"	pop %rcx\n"
	"	pop %rax\n"
	"	iretq\n");

/* A 64-bit interrupt gate in VTL0's IDT: `handler` on VTL2's code selector. */
static void vtl0_gate(unsigned vec, void (*handler)(void), u16 cs)
{
	u64 a = (u64)handler;
	u8 *g = vtl0_idt + 16 * vec;
	u16 lo = (u16)a, mid = (u16)(a >> 16), sel = cs;
	u32 hi = (u32)(a >> 32);
	memset(g, 0, 16);
	memcpy(g, &lo, 2);
	memcpy(g + 2, &sel, 2);
	g[5] = 0x8e;    /* present, DPL 0, 64-bit interrupt gate */
	memcpy(g + 6, &mid, 2);
	memcpy(g + 8, &hi, 4);
}

static u16 read_cs(void)
{
	u16 cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs;
}

/* Runs VTL0 until it enters VTL2 again; the entry reason and, for an intercept, the message. */
static u32 run_vtl0(const struct hvcall *h, struct vtl2_rt_intercept *m, u32 *vp, u32 *vector)
{
	memset(vtl2_rt_assist + 112, 0, 24);
	vtl2_rt_return(h, true);
	u32 reason = vtl2_rt_entry_reason(vtl2_rt_assist);
	vtl2_rt_read_intercept(vtl2_rt_assist, m);
	memcpy(vp, vtl2_rt_assist + 112 + 16, 4);       /* HV_X64_APIC_EOI_MESSAGE */
	memcpy(vector, vtl2_rt_assist + 112 + 20, 4);
	return reason;
}

int guest_main(const char *cmdline)
{
	(void)cmdline;
	struct hvcall h;
	struct vtl2_rt_intercept m;
	u16 st = 0;
	u32 reason, vp, vector;

	TEST_BEGIN("setup");
	st = vtl2_rt_begin(&h, 1ull << 12);   /* intercept messages in the assist page */
	u16 cs = read_cs();
	vtl0_gate(VEC_LEVEL, vtl0_isr_level, cs);
	vtl0_gate(VEC_EDGE, vtl0_isr_edge, cs);
	vtl0_gate(VEC_RTC, vtl0_isr_rtc, cs);
	u16 s1 = vtl2_rt_setup_vtl0_shared(&h, (u64)vtl0_entry, (u64)vtl0_stack + sizeof(vtl0_stack));
	struct vtl2_rt_reg idtr = { VTL2_RT_REG_IDTR, (u64)(sizeof(vtl0_idt) - 1) << 48,
				    (u64)vtl0_idt };
	u16 s2 = s1 ? s1 : vtl2_rt_set_vtl0(&h, &idtr, 1);
	expect(s1 == 0 && s2 == 0, "SetVpRegisters of VTL0: status 0x%x, IDTR 0x%x", s1, s2);
	if (st || s1 || s2)
		guest_abort("setup failed");
	/* VTL0 turns its APIC on and calls back. */
	reason = run_vtl0(&h, &m, &vp, &vector);
	expect(reason == VTL2_RT_ENTRY_VTL_CALL, "VTL0's first entry: reason %u", reason);

	TEST_BEGIN("install_eoi_intercept");
	/* EOIs are writes: a read mask is refused, the write mask taken. */
	u16 sr = vtl2_rt_install_intercept(&h, 1, INTERCEPT_APIC_EOI, 0);
	u16 sw = vtl2_rt_install_intercept(&h, 2, INTERCEPT_APIC_EOI, 0);
	printf("InstallIntercept ApicEoi: read 0x%x, write 0x%x\n", sr, sw);
	expect(sr == HVL_STATUS_INVALID_PARAMETER && sw == 0,
	       "ApicEoi with a read mask 0x%x (want 0x5), with the write mask 0x%x", sr, sw);

	TEST_BEGIN("level_eoi_intercepted");
	/* VTL0 takes the level-triggered 0x51; its EOI stops it and reaches VTL2. */
	st = vtl2_rt_assert_interrupt(&h, 0, VEC_LEVEL, true);
	expect(st == 0, "AssertVirtualInterrupt level 0x51: status 0x%x", st);
	reason = run_vtl0(&h, &m, &vp, &vector);
	printf("level 0x51: entry %u message 0x%x vp %u vector 0x%x, VTL0 took %u (last 0x%x)\n",
	       reason, m.type, vp, vector, vtl0_irqs, vtl0_last_vector);
	expect(reason == VTL2_RT_ENTRY_INTERCEPT && m.type == MSG_APIC_EOI && vp == 0 &&
	       vector == VEC_LEVEL && vtl0_irqs == 1,
	       "entry %u message 0x%x vp %u vector 0x%x, %u interrupts in VTL0", reason, m.type, vp,
	       vector, vtl0_irqs);
	/* VTL0 resumes after its EOI, returns from the ISR and calls back. */
	reason = run_vtl0(&h, &m, &vp, &vector);
	expect(reason == VTL2_RT_ENTRY_VTL_CALL && vtl0_irqs == 1,
	       "after the EOI intercept: entry %u, %u interrupts", reason, vtl0_irqs);

	TEST_BEGIN("edge_eoi_not_intercepted");
	/*
	 * Edge-triggered: 0x52 (never level), then 0x51 again (its route still
	 * makes KVM exit; the APIC's TMR says edge): no message either time.
	 */
	u16 e1 = vtl2_rt_assert_interrupt(&h, 0, VEC_EDGE, false);
	u32 r1 = run_vtl0(&h, &m, &vp, &vector);
	u32 after1 = vtl0_irqs, last1 = vtl0_last_vector;
	u16 e2 = vtl2_rt_assert_interrupt(&h, 0, VEC_LEVEL, false);
	u32 r2 = run_vtl0(&h, &m, &vp, &vector);
	printf("edge 0x52 then edge 0x51: entries %u %u, VTL0 took %u then %u (last 0x%x)\n", r1, r2,
	       after1, vtl0_irqs, vtl0_last_vector);
	expect(e1 == 0 && e2 == 0 && r1 == VTL2_RT_ENTRY_VTL_CALL && r2 == VTL2_RT_ENTRY_VTL_CALL &&
	       after1 == 2 && last1 == VEC_EDGE && vtl0_irqs == 3 && vtl0_last_vector == VEC_LEVEL,
	       "statuses 0x%x 0x%x, entries %u %u, interrupts %u (last 0x%x) then %u (last 0x%x)",
	       e1, e2, r1, r2, after1, last1, vtl0_irqs, vtl0_last_vector);

	TEST_BEGIN("eoi_intercept_removed");
	st = vtl2_rt_install_intercept(&h, 0, INTERCEPT_APIC_EOI, 0);
	u16 e3 = vtl2_rt_assert_interrupt(&h, 0, VEC_LEVEL, true);
	reason = run_vtl0(&h, &m, &vp, &vector);
	printf("intercept removed, level 0x51: entry %u, VTL0 took %u\n", reason, vtl0_irqs);
	expect(st == 0 && e3 == 0 && reason == VTL2_RT_ENTRY_VTL_CALL && vtl0_irqs == 4,
	       "remove 0x%x assert 0x%x, entry %u, %u interrupts", st, e3, reason, vtl0_irqs);

	TEST_BEGIN("shared_mtrrs");
	u64 def_before = rdmsr(MTRR_DEF_TYPE);
	wrmsr(MTRR_DEF_TYPE, MTRR_DEF_VALUE);
	vtl0_cmd = CMD_MTRR;
	reason = run_vtl0(&h, &m, &vp, &vector);
	u64 base0 = rdmsr(MTRR_PHYS_BASE0);
	printf("shared MTRRs: VTL0 read MTRR_DEF_TYPE 0x%lx (was 0x%lx), VTL2 reads PhysBase0 "
	       "0x%lx\n", vtl0_mtrr_def, def_before, base0);
	expect(reason == VTL2_RT_ENTRY_VTL_CALL && def_before != MTRR_DEF_VALUE &&
	       vtl0_mtrr_def == MTRR_DEF_VALUE && base0 == MTRR_BASE0_VALUE,
	       "entry %u, VTL0 read default type 0x%lx (VTL2 wrote 0x%llx over 0x%lx), VTL2 reads "
	       "PhysBase0 0x%lx (VTL0 wrote 0x%llx)", reason, vtl0_mtrr_def, MTRR_DEF_VALUE,
	       def_before, base0, MTRR_BASE0_VALUE);

	TEST_BEGIN("ioapic_rtc");
	/* VTL0 drives the IOAPIC and the RTC itself (no intercepts installed). */
	vtl0_cmd = CMD_RTC;
	reason = run_vtl0(&h, &m, &vp, &vector);
	printf("VTL0 IOAPIC: version 0x%x, RTC interrupts through pin 8 (level): %u, entry after "
	       "0x%x\n", vtl0_ioapic_ver, vtl0_rtc_irqs, vtl0_rtc_rte);
	expect(reason == VTL2_RT_ENTRY_VTL_CALL && vtl0_ioapic_ver == IOAPIC_VER_EXPECTED &&
	       vtl0_rtc_irqs >= 4 && (vtl0_rtc_rte & 0x1afff) == 0x18058,
	       "entry %u, version 0x%x, %u RTC interrupts, entry 0x%x", reason, vtl0_ioapic_ver,
	       vtl0_rtc_irqs, vtl0_rtc_rte);
	TEST_END();
	return 0;
}
