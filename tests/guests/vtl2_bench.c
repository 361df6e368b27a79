/*
 * vtl2_bench: the VTL2 payload that times `hvmm --vtl2`'s VTL switches end
 * to end (issue 8 item 8; TLFS "Virtual Secure Mode": VtlCall/VtlReturn,
 * InstallIntercept of an I/O port, HV_X64_IO_PORT_INTERCEPT_MESSAGE in the
 * VP assist page, SetVpRegisters of VTL0's RIP; shared/docs/igvm-and-vsm.md
 * C). Built into a VSM_ISOLATION IGVM file by `hvmm-igvm build --vsm
 * --relocatable` (bench/vtl.sh, tests/boot/guest-vtl2-bench.sh), it starts
 * in VTL2, builds VTL0's world at 8 MiB (lib/vtl2_rt) and, with RDTSC in
 * the guest, times batches of N iterations (N/4 for loops in ring 0) of:
 *  - bare:   VTL0 in ring 3 writes port 0x510, which no device claims:
 *            one KVM exit that hvmm ignores (bare_r0: the same loop in
 *            ring 0, whose 3 other instructions PVM emulates);
 *  - intercept: VTL0 in ring 3 (intercept_r0: ring 0) writes port 0x5B8,
 *            which VTL2 intercepts: VTL2's handler (asm, below) reads the
 *            message, SetVpRegisters VTL0's RIP past the `out` and
 *            VtlReturns;
 *  - intercept_rp: the same with VTL2's register page (HvX64RegisterPage):
 *            the handler writes VTL0's next RIP into the page and sets its
 *            dirty flag instead of calling SetVpRegisters, so the round
 *            trip is two exits (intercept_rp_r0: VTL0 in ring 0);
 *  - vtlcall: VTL0 in ring 0 (the TLFS requires CPL 0) VtlCalls, VTL2
 *            VtlReturns at once.
 * On a PVM host guest ring 0 is emulated instruction by instruction, ring
 * 3 is native; VTL2 always runs in ring 0. So it also times the handler's
 * own instructions (handler_ns: RDTSC at its entry, before and after its
 * SetVpRegisters and before its VtlReturn, in a second, instrumented run
 * of the intercept loop, instr_intercept_ns; setvp_ns is the
 * SetVpRegisters call), one emulated ring-0 instruction (r0_insn_ps, a
 * `dec; jnz` loop in VTL2), and the emulated ring-0 instructions of each
 * ring-0 round trip run without their exits (emu_*_ns: the same
 * instructions in VTL2, bench_dry_*), so a reader can separate hvmm's cost
 * from PVM's emulation. TSC frequency: HV_X64_MSR_TSC_FREQUENCY (0x40000022)
 * when CPUID 0x40000003 offers it, else lib/tsc.c.
 * Output on COM3, one line (integers; *_ns: medians over the batches of a
 * batch's mean; handler_ns and setvp_ns: means over all batches):
 *   VTL-BENCH bare_ns=.. bare_r0_ns=.. intercept_ns=.. intercept_r0_ns=..
 *     vtlcall_ns=.. handler_ns=.. setvp_ns=.. instr_intercept_ns=..
 *     r0_insn_ps=.. handler_insns=.. emu_bare_r0_ns=.. emu_intercept_r0_ns=..
 *     emu_vtlcall_ns=.. bare_r0_emul=.. intercept_emul=..
 *     intercept_r0_emul=.. vtlcall_emul=.. intercept_rp_ns=..
 *     intercept_rp_r0_ns=.. emu_intercept_rp_r0_ns=.. intercept_rp_emul=..
 *     intercept_rp_r0_emul=.. n=.. n_r0=.. batches=.. tsc_khz=..
 * (*_emul: the emulated ring-0 instructions of an iteration besides its
 * `out` exits; handler_insns: those handler_ns covers), then TEST lines
 * and GUEST-RESULT, and power-off. One VP (-p 1). The command line
 * (`--param cmdline@0x10000`, hvmm -c) may set vb_n=N (iterations a batch,
 * default 2000) and vb_batches=B (default 7, at most 64).
 */
#include "guest.h"
#include "hvcall_lib.h"
#include "vtl2_rt.h"

const char guest_name[] = "vtl2_bench";
/* VTL2 logs on COM3, as OpenHCL does. */
u16 guest_console_port = COM3_BASE;

/* VTL0's world, identity-mapped RAM outside VTL2's image (as vtl2_mem). */
#define AREA        0x800000ull   /* page tables (3 pages), GDT */
#define CODE        0x804000ull   /* VTL0's code; its parameters at +0x800 */
#define PARAM_N     (CODE + 0x800) /* u32: iterations a batch */
#define STACK_TOP   0x806000ull
#define HCPAGE      0x806000ull   /* VTL0's hypercall page */
#define RESULTS     0x808000ull   /* u64 TSC cycles of each batch */
#define TSS         0x810000ull   /* VTL0's TSS: 104 bytes, I/O bitmap (all allowed), 0xff */
#define TSS_LIMIT   (104 + 8192)
#define CMDLINE_GPA 0x10000ull    /* COMMAND_LINE parameter area (bench/vtl.sh) */

#define PORT_BARE  0x510   /* no device (pio_bench's port) */
#define PORT_ICPT  0x5b8   /* VTL2's intercept */
#define PORT_DONE  0x5b9   /* VTL2's intercept: a loop is over */
#define INTERCEPT_IO_PORT 0x00
#define MAX_BATCHES 64

/* HV_X64_INTERCEPT_MESSAGE_HEADER and HV_X64_IO_PORT_INTERCEPT_MESSAGE offsets in the assist page. */
#define MSG      112              /* HV_VP_ASSIST_INTERCEPT_MESSAGE */
#define MSG_TYPE (MSG + 0)
#define MSG_LEN  (MSG + 16 + 4)    /* instruction length: bits 0-3 */
#define MSG_RIP  (MSG + 16 + 24)
#define MSG_PORT (MSG + 16 + 40)
/* The same numbers without C suffixes, for the asm below. */
#define ASM_CONTROL_SET_VP_REGISTERS_1 0x100000051   /* SetVpRegisters, rep count 1 */
#define ASM_MSG_IO_PORT 0x80010000                     /* VTL2_RT_MSG_IO_PORT */
#define ASM_ENTRY_VTL_CALL 1                           /* VTL2_RT_ENTRY_VTL_CALL */
#define REG_REGISTER_PAGE 0x0009001Cu                  /* HvX64RegisterPage */
#define RP_RIP   136                                   /* its RIP; dirty flags at 4 */
#define RP_DIRTY 4

/*
 * Emulated ring-0 instructions an iteration executes besides its `out`
 * instructions (those are exits; the hypercall page's stubs are `endbr64;
 * out; ret` and `endbr64; mov rax, rcx; mov ecx, code; out; ret`): VTL0's
 * ring-0 port loop `mov; out; dec; jnz`; the intercept handler below in
 * VTL2 (the VtlReturn stub's `ret` at its entry, 4 to check the message,
 * 5 for the next RIP, 4 + 2 (the stub) + 2 around SetVpRegisters, 2 + 3
 * into VtlReturn); the VtlCall loop: 8 in VTL0, 8 in VTL2.
 */
#define BARE_R0_EMUL      3
#define INTERCEPT_EMUL    23
/* The register-page handler: 1 + 4 + 5 (the next RIP into the page) + 1 (dirty) + 5. */
#define INTERCEPT_RP_EMUL 16
#define VTLCALL_EMUL      16
/*
 * Instructions bench_icpt_timed's RDTSCs enclose: T1..T2 (the message
 * checks, the next RIP, the RDTSC) 11, T3..T4 (the status check, the
 * RDTSC) 4; handler_ns / HANDLER_TIMED_INSNS is one of the handler's
 * emulated instructions.
 */
#define HANDLER_TIMED_INSNS 15

/*
 * One timed loop of VTL0's (asm string): R13 batches of [0x804800] runs
 * of `body` (label 2 is its first instruction), each batch's TSC cycles
 * stored at R14 onwards, then writes to PORT_DONE (0x5b9) forever.
 */
#define VTL0_TIMED_LOOP(body)                               \
	"1:	mov 0x804800, %r12d\n"                      \
	"	rdtsc\n"                                    \
	"	shl $32, %rdx\n"                            \
	"	or %rax, %rdx\n"                            \
	"	mov %rdx, %rbp\n"                           \
	"2:\n"                                              \
	body                                                \
	"	dec %r12d\n"                                \
	"	jnz 2b\n"                                   \
	"	rdtsc\n"                                    \
	"	shl $32, %rdx\n"                            \
	"	or %rdx, %rax\n"                            \
	"	sub %rbp, %rax\n"                           \
	"	mov %rax, (%r14)\n"                         \
	"	add $8, %r14\n"                             \
	"	dec %r13d\n"                                \
	"	jnz 1b\n"                                   \
	"3:	mov $0x5b9, %edx\n"                         \
	"	out %al, (%dx)\n"                           \
	"	jmp 3b\n"

/*
 * VTL0's code, copied to CODE (absolute addresses only). vtl0_init (ring
 * 0): enables its hypercall page and VtlCalls through RBX. vtl0_port_loop
 * (ring 3 or 0; VTL2 sets the ring with SetVpRegisters of CS and SS;
 * PVM ignores RFLAGS.IOPL for ring-3 port I/O, as lib/cpu.c says, so
 * VTL0's TR is a TSS whose I/O bitmap allows every port): R13 batches of *PARAM_N `out` to port R15 (RDX is
 * reloaded each time: VTL2's handler uses RAX, RCX, RDX and R8-R11), each
 * batch's TSC cycles at R14, R14 += 8. vtl0_vtlcall_loop (ring 0): the same
 * with VtlCalls through RBX. Both end with an `out` to PORT_DONE.
 */
void vtl0_blob(void);
void vtl0_blob_end(void);
void vtl0_init(void);
void vtl0_port_loop(void);
void vtl0_vtlcall_loop(void);
__asm__(
	".text\n"
	".globl vtl0_blob, vtl0_blob_end, vtl0_init, vtl0_port_loop, vtl0_vtlcall_loop\n"
	"vtl0_blob:\n"
	"vtl0_init:\n"
	VTL2_RT_VTL0_HV_INIT_ASM("0x806000")   /* HCPAGE */
	"	xor %ecx, %ecx\n"             /* VtlCall input 0 */
	"	call *%rbx\n"
	"1:	jmp 1b\n"
	"vtl0_port_loop:\n"
	VTL0_TIMED_LOOP("	mov %r15d, %edx\n"
			"	out %al, (%dx)\n")
	"vtl0_vtlcall_loop:\n"
	VTL0_TIMED_LOOP("	xor %ecx, %ecx\n"
			"	call *%rbx\n")
	"vtl0_blob_end:\n");

/* VTL2's stubs (plain hypercall, VtlReturn) and what the timed loop adds up. */
u64 bench_hc_plain, bench_hc_return;
u64 bench_own_cycles, bench_setvp_cycles, bench_handled, bench_errors;
/* VTL2's register page (VTL2's own memory; hvmm shows VTL0 in it at intercepts). */
u8 bench_regpage[4096] __attribute__((aligned(4096)));

/*
 * VTL2's side, in asm: switch to VTL0 with vtl2_rt_vtl0_gprs (as
 * vtl2_rt_switch), and serve VTL0's writes to PORT_ICPT until an entry
 * that is not one (PORT_DONE); then save VTL0's registers and return. A
 * failed SetVpRegisters counts in bench_errors and ends the loop.
 * bench_icpt_run: the handler alone (INTERCEPT_EMUL instructions and 2
 * `out` a round trip). bench_icpt_timed: the same with RDTSC at
 * entry (T1), before SetVpRegisters (T2), after it (T3) and before the
 * VtlReturn (T4): bench_own_cycles += T2-T1 + T4-T3, bench_setvp_cycles +=
 * T3-T2 (low 32 bits; the sums are done outside T1..T4), bench_handled
 * counts the round trips.
 * bench_icpt_rp_run: bench_icpt_run with the register page: the next RIP
 * into the page, its instruction-pointer dirty flag, VtlReturn.
 * bench_vtlcall_run: VtlReturn at once while the entry reason is VtlCall.
 */
void bench_icpt_rp_run(void);
void bench_icpt_run(void);
void bench_icpt_timed(void);
void bench_vtlcall_run(void);
#define STR_(x) #x
#define STR(x) STR_(x)
#define ASM_LOAD_VTL0                                      \
	"	push %rbx\n	push %rbp\n	push %r12\n"            \
	"	push %r13\n	push %r14\n	push %r15\n"            \
	"	mov vtl2_rt_vtl0_gprs + 0, %rbx\n"                 \
	"	mov vtl2_rt_vtl0_gprs + 8, %rdx\n"                 \
	"	mov vtl2_rt_vtl0_gprs + 16, %rsi\n"                \
	"	mov vtl2_rt_vtl0_gprs + 24, %rdi\n"                \
	"	mov vtl2_rt_vtl0_gprs + 32, %rbp\n"                \
	"	mov vtl2_rt_vtl0_gprs + 40, %r8\n"                 \
	"	mov vtl2_rt_vtl0_gprs + 48, %r9\n"                 \
	"	mov vtl2_rt_vtl0_gprs + 56, %r10\n"                \
	"	mov vtl2_rt_vtl0_gprs + 64, %r11\n"                \
	"	mov vtl2_rt_vtl0_gprs + 72, %r12\n"                \
	"	mov vtl2_rt_vtl0_gprs + 80, %r13\n"                \
	"	mov vtl2_rt_vtl0_gprs + 88, %r14\n"                \
	"	mov vtl2_rt_vtl0_gprs + 96, %r15\n"
#define ASM_SAVE_VTL0                                      \
	"	mov %rbx, vtl2_rt_vtl0_gprs + 0\n"                 \
	"	mov %rdx, vtl2_rt_vtl0_gprs + 8\n"                 \
	"	mov %rsi, vtl2_rt_vtl0_gprs + 16\n"                \
	"	mov %rdi, vtl2_rt_vtl0_gprs + 24\n"                \
	"	mov %rbp, vtl2_rt_vtl0_gprs + 32\n"                \
	"	mov %r8, vtl2_rt_vtl0_gprs + 40\n"                 \
	"	mov %r9, vtl2_rt_vtl0_gprs + 48\n"                 \
	"	mov %r10, vtl2_rt_vtl0_gprs + 56\n"                \
	"	mov %r11, vtl2_rt_vtl0_gprs + 64\n"                \
	"	mov %r12, vtl2_rt_vtl0_gprs + 72\n"                \
	"	mov %r13, vtl2_rt_vtl0_gprs + 80\n"                \
	"	mov %r14, vtl2_rt_vtl0_gprs + 88\n"                \
	"	mov %r15, vtl2_rt_vtl0_gprs + 96\n"                \
	"	pop %r15\n	pop %r14\n	pop %r13\n"             \
	"	pop %r12\n	pop %rbp\n	pop %rbx\n	ret\n"
/* Is this entry VTL0's write to PORT_ICPT? Else to label 9. */
#define ASM_CHECK_ICPT                                                         \
	"	cmpl $" STR(ASM_MSG_IO_PORT) ", vtl2_rt_assist + " STR(MSG_TYPE) "\n" \
	"	jne 9f\n"                                                          \
	"	cmpw $" STR(PORT_ICPT) ", vtl2_rt_assist + " STR(MSG_PORT) "\n"
/*
 * An intercept loop's end: another PORT_ICPT write goes back to label 1;
 * label 8 (SetVpRegisters failed) counts an error; anything else (label
 * 9) saves VTL0's registers and returns.
 */
#define ASM_ICPT_LOOP_END                                                      \
	ASM_CHECK_ICPT                                                         \
	"	je 1b\n"                                                           \
	"	jmp 9f\n"                                                          \
	"8:	incq bench_errors\n"                                               \
	"9:\n"                                                                 \
	ASM_SAVE_VTL0
/* The SetVpRegisters input's value: the message's RIP + instruction length. */
#define ASM_NEXT_RIP                                                           \
	"	mov vtl2_rt_assist + " STR(MSG_RIP) ", %rcx\n"                     \
	"	movzbl vtl2_rt_assist + " STR(MSG_LEN) ", %eax\n"                  \
	"	and $0xf, %eax\n"                                                  \
	"	add %rax, %rcx\n"                                                  \
	"	mov %rcx, vtl2_rt_hc_in + 32\n"
#define ASM_SET_VP_REGISTERS                                                   \
	"	movabs $" STR(ASM_CONTROL_SET_VP_REGISTERS_1) ", %rcx\n"               \
	"	mov $vtl2_rt_hc_in, %edx\n"                                        \
	"	mov $vtl2_rt_hc_out, %r8d\n"                                       \
	"	call *bench_hc_plain\n"
__asm__(
	".text\n"
	".globl bench_icpt_run, bench_icpt_timed, bench_vtlcall_run, bench_icpt_rp_run\n"
	"bench_icpt_rp_run:\n"
	ASM_LOAD_VTL0
	"	jmp 2f\n"
	"1:	mov vtl2_rt_assist + " STR(MSG_RIP) ", %rcx\n"
	"	movzbl vtl2_rt_assist + " STR(MSG_LEN) ", %eax\n"
	"	and $0xf, %eax\n"
	"	add %rax, %rcx\n"
	"	mov %rcx, bench_regpage + " STR(RP_RIP) "\n"
	"	orl $2, bench_regpage + " STR(RP_DIRTY) "\n"   /* instruction pointer */
	"2:	mov $1, %ecx\n"
	"	call *bench_hc_return\n"
	ASM_ICPT_LOOP_END

	"bench_icpt_run:\n"
	ASM_LOAD_VTL0
	"	jmp 2f\n"
	"1:\n"
	ASM_NEXT_RIP
	ASM_SET_VP_REGISTERS
	"	test %ax, %ax\n"
	"	jnz 8f\n"
	"2:	mov $1, %ecx\n"               /* fast VtlReturn */
	"	call *bench_hc_return\n"
	ASM_ICPT_LOOP_END

	"bench_icpt_timed:\n"
	ASM_LOAD_VTL0
	"	jmp 2f\n"
	"1:\n"
	ASM_NEXT_RIP
	"	rdtsc\n"
	"	mov %eax, %r10d\n"            /* T2 */
	ASM_SET_VP_REGISTERS
	"	mov %rax, %rcx\n"
	"	rdtsc\n"
	"	mov %eax, %r11d\n"            /* T3 */
	"	test %cx, %cx\n"
	"	jnz 8f\n"
	"	rdtsc\n"                      /* T4 */
	"	sub %r11d, %eax\n"
	"	add %rax, bench_own_cycles\n"
	"	mov %r10d, %eax\n"
	"	sub %r9d, %eax\n"
	"	add %rax, bench_own_cycles\n"
	"	mov %r11d, %eax\n"
	"	sub %r10d, %eax\n"
	"	add %rax, bench_setvp_cycles\n"
	"	incq bench_handled\n"
	"2:	mov $1, %ecx\n"
	"	call *bench_hc_return\n"
	"	rdtsc\n"
	"	mov %eax, %r9d\n"             /* T1 */
	ASM_ICPT_LOOP_END

	"bench_vtlcall_run:\n"
	ASM_LOAD_VTL0
	"2:	mov $1, %ecx\n"
	"	call *bench_hc_return\n"
	"	cmpl $" STR(ASM_ENTRY_VTL_CALL) ", vtl2_rt_assist + 8\n"
	"	je 2b\n"
	ASM_SAVE_VTL0);

/*
 * The same instructions without their exits, n times in VTL2's ring 0
 * (emulated like VTL0's ring 0 on PVM): what a round trip spends in PVM's
 * instruction emulator. The dry stubs are the hypercall page's without
 * the `out` (their `ret` stands for the one the resumed VTL executes). The
 * branches fall through or jump to the next instruction: one instruction
 * either way. bench_dry_bare: VTL0's ring-0 port loop (BARE_R0_EMUL);
 * bench_dry_icpt: that plus bench_icpt_run's handler (INTERCEPT_EMUL);
 * bench_dry_vtlcall: VTL0's VtlCall loop and VTL2's VtlReturn loop
 * (VTLCALL_EMUL). Clobber RAX, RCX, RDX, RDI, R8, R9.
 */
void bench_dry_bare(u64 n);
void bench_dry_icpt(u64 n);
void bench_dry_vtlcall(u64 n);
void bench_dry_icpt_rp(u64 n);
__asm__(
	".text\n"
	".globl bench_dry_bare, bench_dry_icpt, bench_dry_vtlcall, bench_dry_icpt_rp\n"
	"bench_dry_icpt_rp:\n"
	"1:	mov %r9d, %edx\n"
	"	cmpl $" STR(ASM_MSG_IO_PORT) ", vtl2_rt_assist + " STR(MSG_TYPE) "\n"
	"	jne 2f\n"
	"2:	cmpw $" STR(PORT_ICPT) ", vtl2_rt_assist + " STR(MSG_PORT) "\n"
	"	je 3f\n"
	"3:	mov vtl2_rt_assist + " STR(MSG_RIP) ", %rcx\n"
	"	movzbl vtl2_rt_assist + " STR(MSG_LEN) ", %eax\n"
	"	and $0xf, %eax\n"
	"	add %rax, %rcx\n"
	"	mov %rcx, bench_dry_rp + " STR(RP_RIP) "\n"
	"	orl $2, bench_dry_rp + " STR(RP_DIRTY) "\n"
	"	mov $1, %ecx\n"
	"	call bench_dry_return\n"
	"	dec %rdi\n"
	"	jnz 1b\n"
	"	ret\n"
	"bench_dry_plain:\n"
	"	endbr64\n"
	"	ret\n"
	"bench_dry_return:\n"
	"	endbr64\n"
	"	mov %rcx, %rax\n"
	"	mov $0x12, %ecx\n"
	"	ret\n"
	"bench_dry_bare:\n"
	"1:	mov %r9d, %edx\n"
	"	dec %rdi\n"
	"	jnz 1b\n"
	"	ret\n"
	"bench_dry_icpt:\n"
	"1:	mov %r9d, %edx\n"
	"	cmpl $" STR(ASM_MSG_IO_PORT) ", vtl2_rt_assist + " STR(MSG_TYPE) "\n"
	"	jne 2f\n"
	"2:	cmpw $" STR(PORT_ICPT) ", vtl2_rt_assist + " STR(MSG_PORT) "\n"
	"	je 3f\n"
	"3:\n"
	ASM_NEXT_RIP
	"	movabs $" STR(ASM_CONTROL_SET_VP_REGISTERS_1) ", %rcx\n"
	"	mov $vtl2_rt_hc_in, %edx\n"
	"	mov $vtl2_rt_hc_out, %r8d\n"
	"	call bench_dry_plain\n"
	"	test %ax, %ax\n"
	"	jnz 4f\n"
	"4:	mov $1, %ecx\n"
	"	call bench_dry_return\n"
	"	dec %rdi\n"
	"	jnz 1b\n"
	"	ret\n"
	"bench_dry_vtlcall:\n"
	"1:	xor %ecx, %ecx\n"
	"	call bench_dry_return\n"
	"	cmpl $" STR(ASM_ENTRY_VTL_CALL) ", vtl2_rt_assist + 8\n"
	"	je 2f\n"
	"2:	mov $1, %ecx\n"
	"	call bench_dry_return\n"
	"	dec %rdi\n"
	"	jnz 1b\n"
	"	ret\n");

/* What bench_dry_icpt_rp writes instead of the real register page. */
u8 bench_dry_rp[512];

/* TSC cycles of fn(n). */
static u64 time_dry(void (*fn)(u64), u64 n)
{
	u64 t0 = rdtsc();
	fn(n);
	return rdtsc() - t0;
}

/* `dec; jnz` n times in this ring (VTL2's ring 0: emulated on PVM); TSC cycles. */
static u64 r0_loop(u64 n)
{
	u64 t0 = rdtsc();
	__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc");
	return rdtsc() - t0;
}

/* InstallIntercept of writes to `port` for this partition. Status. */
static u16 intercept_port(const struct hvcall *h, u16 port)
{
	return vtl2_rt_install_intercept(h, 2 /* write */, INTERCEPT_IO_PORT, port);
}

/* TSC kHz: the Hyper-V frequency MSR if offered (CPUID 0x40000003 EAX bit 11), else lib/tsc.c. */
static u64 bench_tsc_khz(const char **src)
{
	u32 a, b, c, d;
	u64 hz = 0;
	cpuid(0x40000000, 0, &a, &b, &c, &d);
	if (a >= 0x40000003) {
		cpuid(0x40000003, 0, &a, &b, &c, &d);
		if ((a & (1u << 11)) && rdmsr_safe(0x40000022, &hz) && hz >= 100000000ull) {
			*src = "hv-msr";
			return hz / 1000;
		}
	}
	*src = "lib";
	return tsc_khz();
}

/* "key=<number>" in the COMMAND_LINE parameter area, else def. */
static u64 param_u64(const char *key, u64 def)
{
	static char line[256];
	memcpy(line, (const void *)CMDLINE_GPA, sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	size_t kl = strlen(key);
	for (const char *p = line; *p; p++) {
		if ((p == line || p[-1] == ' ') && !strncmp(p, key, kl) && p[kl] == '=') {
			char num[24];
			size_t i = 0;
			for (const char *q = p + kl + 1; *q && *q != ' ' && i < sizeof(num) - 1; q++)
				num[i++] = *q;
			num[i] = 0;
			u64 v;
			return parse_u64(num, &v) ? v : def;
		}
	}
	return def;
}

static void sort_u64(u64 *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			u64 t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static u64 khz;
static u32 iters, batches;

/* Median over the batches of a batch's cycles / n, in ns. */
static u64 median_ns(u64 *cycles, u32 n)
{
	sort_u64(cycles, batches);
	return mul_div(cycles[batches / 2], 1000000, khz) / n;
}

enum vtl2_side { SIDE_NONE, SIDE_ICPT, SIDE_ICPT_TIMED, SIDE_VTLCALL, SIDE_ICPT_RP };

/*
 * One timed loop of VTL0's: from `entry` in ring 3 or ring 0,
 * port `port`; VTL2 serves it with `side`; it must end with VTL0's write
 * to PORT_DONE. The batches' cycles go to cycles[]. False on a failure.
 */
static bool run_loop(const struct hvcall *h, const char *what, void (*entry)(void), bool ring3,
		     u16 port, u32 n, enum vtl2_side side, u64 *cycles)
{
	*(volatile u32 *)PARAM_N = n;
	memset((void *)RESULTS, 0, 8 * MAX_BATCHES);
	const u64 rip = CODE + ((u64)entry - (u64)vtl0_blob);
	const struct vtl2_rt_reg r[] = {
		{ VTL2_RT_REG_CS, 0, ring3 ? vtl2_rt_seg(0xffffffff, USER_CS, 0xa0fb) :
					     vtl2_rt_seg(0xffffffff, GDT_KCODE, 0xa09b) },
		{ VTL2_RT_REG_SS, 0, ring3 ? vtl2_rt_seg(0xffffffff, USER_DS, 0xc0f3) :
					     vtl2_rt_seg(0xffffffff, GDT_KDATA, 0xc093) },
		{ VTL2_RT_REG_RFLAGS, 0x2, 0 },
		{ VTL2_RT_REG_RSP, STACK_TOP - 0x100, 0 },
		{ VTL2_RT_REG_RIP, rip, 0 },
	};
	u16 st = vtl2_rt_set_vtl0(h, r, sizeof(r) / sizeof(r[0]));
	if (!expect(st == 0, "%s: SetVpRegisters of VTL0: status 0x%x", what, st))
		return false;
	vtl2_rt_vtl0_gprs[VTL2_RT_RBX] = HCPAGE + h->vtl_call_offset;
	vtl2_rt_vtl0_gprs[VTL2_RT_R13] = batches;
	vtl2_rt_vtl0_gprs[VTL2_RT_R14] = RESULTS;
	vtl2_rt_vtl0_gprs[VTL2_RT_R15] = port;
	/* The SetVpRegisters input of the asm handler: VTL0's RIP, value at +32. */
	hvcall_regs_header(h, HVL_VTL(0));
	memset(h->in + 16, 0, 32);
	u32 rip_name = VTL2_RT_REG_RIP;
	memcpy(h->in + 16, &rip_name, 4);
	bench_errors = 0;
	switch (side) {
	case SIDE_NONE: vtl2_rt_return(h, true); break;
	case SIDE_ICPT: bench_icpt_run(); break;
	case SIDE_ICPT_TIMED: bench_icpt_timed(); break;
	case SIDE_VTLCALL: bench_vtlcall_run(); break;
	case SIDE_ICPT_RP: bench_icpt_rp_run(); break;
	}
	struct vtl2_rt_intercept m;
	vtl2_rt_read_intercept(vtl2_rt_assist, &m);
	bool ok = expect(!bench_errors, "%s: VTL2's SetVpRegisters failed", what) &&
		  expect(m.entry_reason == VTL2_RT_ENTRY_INTERCEPT && m.type == VTL2_RT_MSG_IO_PORT &&
			 m.port == PORT_DONE, "%s: entry %u message 0x%x port 0x%x, not the end of "
			 "the loop (port 0x%x)", what, m.entry_reason, m.type, m.port, PORT_DONE) &&
		  expect(m.cpl == (ring3 ? 3 : 0), "%s: VTL0 ran at CPL %u", what, m.cpl);
	memcpy(cycles, (const void *)RESULTS, 8 * (size_t)batches);
	for (u32 i = 0; ok && i < batches; i++)
		ok = expect(cycles[i] > 0, "%s: batch %u has no time", what, i);
	return ok;
}

int guest_main(const char *cmdline)
{
	(void)cmdline;
	struct hvcall h;
	u16 st = 0;
	static u64 bare[MAX_BATCHES], bare_r0[MAX_BATCHES], icpt[MAX_BATCHES],
		icpt_r0[MAX_BATCHES], icpt_t[MAX_BATCHES], vcall[MAX_BATCHES], r0[MAX_BATCHES],
		dry_bare[MAX_BATCHES], dry_icpt[MAX_BATCHES], dry_vcall[MAX_BATCHES],
		icpt_rp[MAX_BATCHES], icpt_rp_r0[MAX_BATCHES], dry_icpt_rp[MAX_BATCHES];

	TEST_BEGIN("setup");
	iters = (u32)param_u64("vb_n", 2000);
	batches = (u32)param_u64("vb_batches", 7);
	if (iters < 1 || iters > 1000000)
		iters = 2000;
	if (batches < 1 || batches > MAX_BATCHES)
		batches = 7;
	const char *src = "none";
	khz = bench_tsc_khz(&src);
	printf("vtl2_bench: n=%u batches=%u tsc_khz=%lu (%s)\n", iters, batches, khz, src);
	if (!expect(khz, "no TSC frequency"))
		guest_abort("no TSC frequency");
	st = vtl2_rt_begin(&h, 1ull << 12);   /* intercept messages in the assist page */
	if (!h.vtl_call_offset)
		guest_abort("no VTL call stub");
	bench_hc_plain = (u64)h.page;
	bench_hc_return = (u64)h.page + h.vtl_return_offset;
	u16 s1 = intercept_port(&h, PORT_ICPT), s2 = intercept_port(&h, PORT_DONE);
	expect(!s1 && !s2, "InstallIntercept: 0x%x 0x%x", s1, s2);
	st |= s1 | s2;
	memcpy((void *)CODE, (const void *)vtl0_blob, (u64)vtl0_blob_end - (u64)vtl0_blob);
	u16 s3 = vtl2_rt_setup_vtl0(&h, AREA, CODE, STACK_TOP);
	expect(s3 == 0, "SetVpRegisters of VTL0: status 0x%x", s3);
	st |= s3;
	memset((void *)TSS, 0, TSS_LIMIT + 1);
	*(volatile u16 *)(TSS + 102) = 104;           /* I/O map base */
	*(volatile u8 *)(TSS + TSS_LIMIT) = 0xff;
	const struct vtl2_rt_reg tr = { VTL2_RT_REG_TR, TSS, vtl2_rt_seg(TSS_LIMIT, GDT_TSS, 0x008b) };
	u16 s4 = vtl2_rt_set_vtl0(&h, &tr, 1);
	expect(s4 == 0, "VTL0's TR: status 0x%x", s4);
	st |= s4;
	if (st)
		guest_abort("setup failed");
	/* VTL0 enables its hypercall page and VtlCalls back. */
	vtl2_rt_vtl0_gprs[VTL2_RT_RBX] = HCPAGE + h.vtl_call_offset;
	vtl2_rt_return(&h, true);
	u32 reason = vtl2_rt_entry_reason(vtl2_rt_assist);
	if (!expect(reason == VTL2_RT_ENTRY_VTL_CALL, "VTL0's first entry: reason %u, not VtlCall",
		    reason))
		guest_abort("VTL0 did not start");

	TEST_BEGIN("bare_exit");
	bool ok = run_loop(&h, "bare", vtl0_port_loop, true, PORT_BARE, iters, SIDE_NONE, bare);
	TEST_BEGIN("bare_exit_ring0");
	u32 n0 = iters / 4 ? iters / 4 : 1;
	ok &= run_loop(&h, "bare ring 0", vtl0_port_loop, false, PORT_BARE, n0, SIDE_NONE, bare_r0);
	TEST_BEGIN("intercept");
	ok &= run_loop(&h, "intercept", vtl0_port_loop, true, PORT_ICPT, iters, SIDE_ICPT, icpt);
	TEST_BEGIN("intercept_ring0");
	ok &= run_loop(&h, "intercept ring 0", vtl0_port_loop, false, PORT_ICPT, n0, SIDE_ICPT,
		       icpt_r0);
	TEST_BEGIN("intercept_timed");
	bench_own_cycles = bench_setvp_cycles = bench_handled = 0;
	ok &= run_loop(&h, "intercept timed", vtl0_port_loop, true, PORT_ICPT, iters,
		       SIDE_ICPT_TIMED, icpt_t);
	/* Every write was VTL2's (not a bare exit hvmm ignored). */
	ok &= expect(bench_handled == (u64)iters * batches, "VTL2 handled %lu of %lu writes",
		     bench_handled, (u64)iters * batches);
	TEST_BEGIN("intercept_register_page");
	/* VTL2's register page on: VTL0's next RIP through it, no SetVpRegisters. */
	st = hvcall_set_vp_register(&h, HVL_VTL_CURRENT, REG_REGISTER_PAGE, (u64)bench_regpage | 1,
				    0);
	ok &= expect(st == 0, "register page: status 0x%x", st);
	ok &= st == 0 && run_loop(&h, "intercept, register page", vtl0_port_loop, true, PORT_ICPT,
				  iters, SIDE_ICPT_RP, icpt_rp);
	TEST_BEGIN("intercept_register_page_ring0");
	ok &= st == 0 && run_loop(&h, "intercept ring 0, register page", vtl0_port_loop, false,
				  PORT_ICPT, n0, SIDE_ICPT_RP, icpt_rp_r0);
	/* hvmm filled it at the last intercept (PORT_DONE): VTL0, valid, its RIP at the `out`. */
	struct vtl2_rt_intercept last;
	vtl2_rt_read_intercept(vtl2_rt_assist, &last);
	u64 rp_rip;
	memcpy(&rp_rip, bench_regpage + RP_RIP, 8);
	ok &= expect(bench_regpage[2] == 1 && bench_regpage[3] == 0 && rp_rip == last.rip,
		     "register page: valid %u vtl %u rip 0x%lx (message's 0x%lx)", bench_regpage[2],
		     bench_regpage[3], rp_rip, last.rip);
	st = hvcall_set_vp_register(&h, HVL_VTL_CURRENT, REG_REGISTER_PAGE, 0, 0);
	ok &= expect(st == 0, "register page off: status 0x%x", st);
	TEST_BEGIN("vtlcall");
	ok &= run_loop(&h, "vtlcall", vtl0_vtlcall_loop, false, 0, n0, SIDE_VTLCALL, vcall);
	TEST_BEGIN("ring0_insn");
	for (u32 i = 0; i < batches; i++) {
		r0[i] = r0_loop(n0);
		dry_bare[i] = time_dry(bench_dry_bare, n0);
		dry_icpt[i] = time_dry(bench_dry_icpt, n0);
		dry_vcall[i] = time_dry(bench_dry_vtlcall, n0);
		dry_icpt_rp[i] = time_dry(bench_dry_icpt_rp, n0);
	}
	TEST_END();
	if (!ok)
		return 1;

	u64 bare_ns = median_ns(bare, iters), icpt_ns = median_ns(icpt, iters);
	u64 icpt_t_ns = median_ns(icpt_t, iters);
	u64 total = (u64)iters * batches;
	u64 own_ns = mul_div(bench_own_cycles, 1000000, khz) / total;
	u64 setvp_ns = mul_div(bench_setvp_cycles, 1000000, khz) / total;
	u64 bare_r0_ns = median_ns(bare_r0, n0), vcall_ns = median_ns(vcall, n0);
	u64 icpt_r0_ns = median_ns(icpt_r0, n0);
	u64 emu_bare_ns = median_ns(dry_bare, n0), emu_icpt_ns = median_ns(dry_icpt, n0);
	u64 emu_vcall_ns = median_ns(dry_vcall, n0);
	u64 icpt_rp_ns = median_ns(icpt_rp, iters), icpt_rp_r0_ns = median_ns(icpt_rp_r0, n0);
	u64 emu_icpt_rp_ns = median_ns(dry_icpt_rp, n0);
	sort_u64(r0, batches);
	/* ps per emulated instruction: 2 a `dec; jnz` iteration */
	u64 r0_ps = mul_div(r0[batches / 2], 1000000000, khz) / (2ull * n0);
	/* One line, longer than printf's 256-byte buffer. */
	static char line[800];
	int len = snprintf(line, sizeof(line), "VTL-BENCH bare_ns=%lu bare_r0_ns=%lu intercept_ns=%lu intercept_r0_ns=%lu "
	       "vtlcall_ns=%lu handler_ns=%lu setvp_ns=%lu instr_intercept_ns=%lu r0_insn_ps=%lu "
	       "handler_insns=%u emu_bare_r0_ns=%lu emu_intercept_r0_ns=%lu emu_vtlcall_ns=%lu "
	       "bare_r0_emul=%u intercept_emul=%u intercept_r0_emul=%u vtlcall_emul=%u "
	       "intercept_rp_ns=%lu intercept_rp_r0_ns=%lu emu_intercept_rp_r0_ns=%lu "
	       "intercept_rp_emul=%u intercept_rp_r0_emul=%u n=%u "
	       "n_r0=%u batches=%u tsc_khz=%lu\n", bare_ns, bare_r0_ns, icpt_ns, icpt_r0_ns,
	       vcall_ns, own_ns, setvp_ns, icpt_t_ns, r0_ps, HANDLER_TIMED_INSNS, emu_bare_ns, emu_icpt_ns,
	       emu_vcall_ns, BARE_R0_EMUL, INTERCEPT_EMUL,
	       INTERCEPT_EMUL + BARE_R0_EMUL, VTLCALL_EMUL, icpt_rp_ns, icpt_rp_r0_ns,
	       emu_icpt_rp_ns, INTERCEPT_RP_EMUL, INTERCEPT_RP_EMUL + BARE_R0_EMUL, iters, n0,
	       batches, khz);
	console_write(line, len > 0 && (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
	return 0;
}
