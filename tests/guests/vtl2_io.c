/*
 * vtl2_io: a VTL2 test payload of `hvmm --vtl2` for the intercepts of VTL0
 * port I/O string forms, of an instruction that crosses a page, and of
 * HvRetargetDeviceInterrupt (TLFS "Virtual Secure Mode", intercepts;
 * ../shared/docs/igvm-and-vsm.md C.8: HV_X64_IO_PORT_INTERCEPT_MESSAGE,
 * HV_X64_HYPERCALL_INTERCEPT_MESSAGE). Built into a VSM_ISOLATION IGVM file
 * by `hvmm-igvm build --vsm`, it starts in VTL2 on the BSP, sets VTL0 up on
 * its own page tables (lib/vtl2_rt) and intercepts, with messages in its VP
 * assist page:
 *  - VTL0's `rep outsb` of 4 bytes to port 0x5B0: the message has the
 *    string and rep bits, RCX 4, RSI at the source, length 2 and RIP at the
 *    instruction; VTL2 reads the 4 bytes, emulates (RSI, RCX, RIP) and
 *    VTL0 finds exactly those registers; then a plain `outsb`;
 *  - VTL0's `rep insb` of 4 bytes and an `insb` from port 0x5B1: RCX/RDI
 *    as before the instruction and the destination still as it was when
 *    VTL2 looks; VTL2 writes the bytes and sets RDI/RCX/RIP, and VTL0 finds
 *    the bytes and registers VTL2 gave (nothing completed behind them);
 *  - VTL0's 2-byte `out 0x7a, al` whose E6 is the last byte of a page: the
 *    message carries both bytes (E6 7A) and length 2; VTL2's register page
 *    (HvX64RegisterPage) shows VTL0 there (valid, VTL 0, RIP, RSP, CS), and
 *    VTL2 moves VTL0 past the `out` through it (RIP and its dirty flag), not
 *    SetVpRegisters;
 *  - VTL0's HvRetargetDeviceInterrupt (0x7E) of a device hvmm does not
 *    have, with VTL2's RetargetUnknownDeviceId intercept: a hypercall
 *    intercept message with VTL0's RCX/RDX/R8, completed by VTL2 (status
 *    0); with the intercept removed the same call returns
 *    HV_STATUS_INVALID_DEVICE_ID (0x57).
 * Then it prints "GUEST-RESULT: N passed, M failed" on COM3 and powers off.
 */
#include "guest.h"
#include "hvcall_lib.h"
#include "vtl2_rt.h"

const char guest_name[] = "vtl2_io";
/* VTL2 logs on COM3, as OpenHCL does. */
u16 guest_console_port = COM3_BASE;

#define PORT_OUTS  0x5b0
#define PORT_INS   0x5b1
#define PORT_CROSS 0x7a
#define CALL_RETARGET_DEVICE_INTERRUPT 0x007E
#define STATUS_INVALID_DEVICE_ID 0x0057
#define INTERCEPT_IO_PORT  0x00
#define INTERCEPT_RETARGET 0x0F
#define IO_STRING 0x08u
#define IO_REP    0x10u

/* VTL0's pages and what its code leaves for VTL2 to check. */
u8 vtl0_hcpage[4096] __attribute__((aligned(4096)));
u8 vtl0_in[4096] __attribute__((aligned(4096)));
static u8 vtl0_stack[4096] __attribute__((aligned(4096)));
u8 vtl0_src[8] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
u8 vtl0_dst[8], vtl0_dst1[4];
/*
 * After each emulated instruction: RSI, RCX after `rep outsb`; RSI after
 * `outsb`; RDI, RCX after `rep insb`; RDI after `insb`; the two retarget
 * statuses.
 */
u64 vtl0_seen[8];
/* VTL2's register page (VTL2's memory). */
static u8 regpage[4096] __attribute__((aligned(4096)));
#define REG_REGISTER_PAGE 0x0009001Cu
void vtl0_entry(void);
extern u8 vtl0_rep_outs[], vtl0_outs[], vtl0_rep_ins[], vtl0_ins[], vtl0_cross[];

__asm__(
	".text\n"
	".globl vtl0_entry\n"
	"vtl0_entry:\n"
	VTL2_RT_VTL0_HV_INIT_ASM("vtl0_hcpage")
	"	cld\n"
	"	mov $vtl0_src, %esi\n"
	"	mov $4, %ecx\n"
	"	mov $0x5b0, %edx\n"
	"	mov $0xa0a0, %eax\n"
	".globl vtl0_rep_outs\n"
	"vtl0_rep_outs:\n"
	"	rep outsb\n"
	"	mov %rsi, vtl0_seen\n"
	"	mov %rcx, vtl0_seen + 8\n"
	".globl vtl0_outs\n"
	"vtl0_outs:\n"
	"	outsb\n"
	"	mov %rsi, vtl0_seen + 16\n"
	"	mov $vtl0_dst, %edi\n"
	"	mov $4, %ecx\n"
	"	mov $0x5b1, %edx\n"
	".globl vtl0_rep_ins\n"
	"vtl0_rep_ins:\n"
	"	rep insb\n"
	"	mov %rdi, vtl0_seen + 24\n"
	"	mov %rcx, vtl0_seen + 32\n"
	"	mov $vtl0_dst1, %edi\n"
	".globl vtl0_ins\n"
	"vtl0_ins:\n"
	"	insb\n"
	"	mov %rdi, vtl0_seen + 40\n"
	"	mov $0x3c, %eax\n"
	"	jmp vtl0_cross\n"
	"vtl0_cross_back:\n"
	"	mov $0x7e, %ecx\n"            /* HvRetargetDeviceInterrupt, slow: intercepted */
	"	mov $vtl0_in, %edx\n"
	"	xor %r8d, %r8d\n"
	"	mov $vtl0_hcpage, %eax\n"
	"	call *%rax\n"
	"	mov %rax, vtl0_seen + 48\n"
	"	mov $0x7e, %ecx\n"            /* again, the intercept removed: hv's answer */
	"	mov $vtl0_in, %edx\n"
	"	xor %r8d, %r8d\n"
	"	mov $vtl0_hcpage, %eax\n"
	"	call *%rax\n"
	"	mov %rax, vtl0_seen + 56\n"
	"	xor %ecx, %ecx\n"             /* VtlCall input 0 */
	"	mov $vtl0_hcpage + 0x10, %eax\n"
	"	call *%rax\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	/* `out 0x7a, al` with its E6 at the last byte of a page. */
	"	.balign 4096\n"
	"	.skip 4095, 0xcc\n"
	".globl vtl0_cross\n"
	"vtl0_cross:\n"
	"	out %al, $0x7a\n"
	"	jmp vtl0_cross_back\n");

static bool return_fast = true;
static void run_vtl0(const struct hvcall *h)
{
	vtl2_rt_return(h, return_fast);
	return_fast = true;
}

/* The next VtlReturn is slow: VTL0 gets RAX and RCX from the assist page. */
static void answer_slow(u64 rax, u64 rcx)
{
	memcpy(vtl2_rt_assist + 16, &rax, 8);   /* vtl_return_rax */
	memcpy(vtl2_rt_assist + 24, &rcx, 8);   /* vtl_return_rcx */
	return_fast = false;
}

/*
 * The I/O intercept VTL0's next run brings: a string access of `port`
 * (write or read) with `rep`, at `rip`, RCX `rcx`, RSI/RDI `rsi`/`rdi`
 * (0: not checked), length `len`. One check; true when it matched.
 */
static bool expect_string_io(struct vtl2_rt_intercept *m, const char *what, bool write,
			     u16 port, bool rep, const u8 *rip, u64 rcx, u64 rsi, u64 rdi,
			     unsigned len)
{
	vtl2_rt_read_intercept(vtl2_rt_assist, m);
	u8 want_info = (u8)(1u | IO_STRING | (rep ? IO_REP : 0));
	printf("%s: entry %u message 0x%x access %u port 0x%x info 0x%x rcx %lu rsi 0x%lx "
	       "rdi 0x%lx rip 0x%lx+%u bytes %u [%x %x]\n", what, m->entry_reason, m->type, m->access,
	       m->port, m->io_info, m->rcx, m->rsi, m->rdi, m->rip, m->insn_len, m->insn_count,
	       m->insn[0], m->insn[1]);
	bool ok = m->entry_reason == VTL2_RT_ENTRY_INTERCEPT && m->type == VTL2_RT_MSG_IO_PORT &&
		  m->access == (write ? 1 : 0) && m->port == port && m->io_info == want_info &&
		  m->rip == (u64)rip && m->insn_len == len && m->insn_count >= len &&
		  m->rcx == rcx && (!rsi || m->rsi == rsi) && (!rdi || m->rdi == rdi);
	expect(ok, "%s: entry %u message 0x%x access %u port 0x%x info 0x%x (want 0x%x) rip 0x%lx "
	       "(want 0x%lx) length %u rcx %lu rsi 0x%lx rdi 0x%lx", what, m->entry_reason, m->type,
	       m->access, m->port, m->io_info, want_info, m->rip, (u64)rip, m->insn_len, m->rcx,
	       m->rsi, m->rdi);
	return ok;
}

/* VTL0 resumes after the instruction VTL2 emulated: RIP past it, RCX via the slow return. */
static void emulated(const struct hvcall *h, const struct vtl2_rt_intercept *m, u64 rcx)
{
	u16 st = hvcall_set_vp_register(h, HVL_VTL(0), VTL2_RT_REG_RIP, m->rip + m->insn_len, 0);
	expect(st == 0, "advancing VTL0's RIP: status 0x%x", st);
	answer_slow(m->rax, rcx);
}

#define VTL0_GPR(r) vtl2_rt_vtl0_gprs[VTL2_RT_##r]

int guest_main(const char *cmdline)
{
	(void)cmdline;
	struct hvcall h;
	struct vtl2_rt_intercept m;
	u16 st = 0;

	TEST_BEGIN("setup");
	st = vtl2_rt_begin(&h, 1ull << 12);   /* intercept messages in the assist page */
	u16 s1 = vtl2_rt_install_intercept(&h, 2 /* write */, INTERCEPT_IO_PORT, PORT_OUTS);
	u16 s2 = vtl2_rt_install_intercept(&h, 1 /* read */, INTERCEPT_IO_PORT, PORT_INS);
	u16 s3 = vtl2_rt_install_intercept(&h, 2, INTERCEPT_IO_PORT, PORT_CROSS);
	u16 s4 = vtl2_rt_install_intercept(&h, 1, INTERCEPT_RETARGET, 0);
	u16 s6 = hvcall_set_vp_register(&h, HVL_VTL_CURRENT, REG_REGISTER_PAGE, (u64)regpage | 1, 0);
	expect(s6 == 0, "register page: status 0x%x", s6);
	st |= s6;
	expect(!s1 && !s2 && !s3 && !s4, "InstallIntercept: 0x%x 0x%x 0x%x 0x%x", s1, s2, s3, s4);
	st |= s1 | s2 | s3 | s4;
	u16 s5 = vtl2_rt_setup_vtl0_shared(&h, (u64)vtl0_entry, (u64)vtl0_stack + sizeof(vtl0_stack));
	expect(s5 == 0, "SetVpRegisters of VTL0: status 0x%x", s5);
	st |= s5;
	memset(vtl0_dst, 0xee, sizeof(vtl0_dst));
	memset(vtl0_dst1, 0xee, sizeof(vtl0_dst1));
	/*
	 * HvRetargetDeviceInterrupt input: this partition, device 0x1234abcd,
	 * an MSI (address 0xfee00000, data 0x4041), target vector 0x41 on VP 0.
	 */
	{
		u64 self = HVL_PARTITION_SELF, dev = 0x1234abcd, mask = 1;
		u32 src = 1 /* MSI */, data[2] = { 0xfee00000u, 0x4041 }, vec = 0x41;
		memset(vtl0_in, 0, 56);
		memcpy(vtl0_in, &self, 8);
		memcpy(vtl0_in + 8, &dev, 8);
		memcpy(vtl0_in + 16, &src, 4);
		memcpy(vtl0_in + 24, data, 8);
		memcpy(vtl0_in + 40, &vec, 4);
		memcpy(vtl0_in + 48, &mask, 8);
	}
	if (st)
		guest_abort("setup failed");

	TEST_BEGIN("rep_outsb");
	/* At the instruction with RSI and RCX as before it: VTL2 moves 4 bytes. */
	run_vtl0(&h);
	if (expect_string_io(&m, "rep outsb", true, PORT_OUTS, true, vtl0_rep_outs, 4,
			     (u64)vtl0_src, 0, 2)) {
		const u8 *src = (const u8 *)m.rsi;
		expect(src[0] == 0x11 && src[3] == 0x44 && m.insn[0] == 0xf3 && m.insn[1] == 0x6e,
		       "source %x..%x, bytes %x %x", src[0], src[3], m.insn[0], m.insn[1]);
		VTL0_GPR(RSI) = m.rsi + 4;
		emulated(&h, &m, 0);
	}

	TEST_BEGIN("outsb");
	/* KVM's emulator moved RIP and RSI past it: both put back. */
	run_vtl0(&h);
	if (expect_string_io(&m, "outsb", true, PORT_OUTS, false, vtl0_outs, 0,
			     (u64)vtl0_src + 4, 0, 1)) {
		VTL0_GPR(RSI) = m.rsi + 1;
		emulated(&h, &m, m.rcx);
	}

	TEST_BEGIN("rep_insb");
	/* RDI/RCX before it and the destination untouched; VTL2 fills it. */
	run_vtl0(&h);
	if (expect_string_io(&m, "rep insb", false, PORT_INS, true, vtl0_rep_ins, 4, 0,
			     (u64)vtl0_dst, 2)) {
		u8 *dst = (u8 *)m.rdi;
		printf("rep insb: destination at the intercept %x %x %x %x\n", dst[0], dst[1], dst[2],
		       dst[3]);
		expect(dst[0] == 0xee && dst[1] == 0xee && dst[2] == 0xee && dst[3] == 0xee &&
		       dst[4] == 0xee, "destination written before VTL2 emulated: %x %x %x %x %x",
		       dst[0], dst[1], dst[2], dst[3], dst[4]);
		dst[0] = 0xa1, dst[1] = 0xa2, dst[2] = 0xa3, dst[3] = 0xa4;
		VTL0_GPR(RDI) = m.rdi + 4;
		emulated(&h, &m, 0);
	}

	TEST_BEGIN("insb");
	run_vtl0(&h);
	if (expect_string_io(&m, "insb", false, PORT_INS, false, vtl0_ins, 0, 0, (u64)vtl0_dst1,
			     1)) {
		u8 *dst = (u8 *)m.rdi;
		expect(dst[0] == 0xee, "insb destination 0x%x before VTL2 emulated", dst[0]);
		dst[0] = 0x5c;
		VTL0_GPR(RDI) = m.rdi + 1;
		emulated(&h, &m, m.rcx);
	}

	TEST_BEGIN("page_crossing_out");
	/* `out 0x7a, al` from the last byte of a page: both bytes in the message. */
	run_vtl0(&h);
	vtl2_rt_read_intercept(vtl2_rt_assist, &m);
	printf("page-crossing out: entry %u message 0x%x port 0x%x rip 0x%lx+%u bytes %u [%x %x] "
	       "rax 0x%lx\n", m.entry_reason, m.type, m.port, m.rip, m.insn_len, m.insn_count,
	       m.insn[0], m.insn[1], m.rax);
	expect(m.entry_reason == VTL2_RT_ENTRY_INTERCEPT && m.type == VTL2_RT_MSG_IO_PORT &&
	       m.port == PORT_CROSS && m.io_info == 1 && m.rip == (u64)vtl0_cross &&
	       (m.rip & 0xfff) == 0xfff && m.insn_len == 2 && m.insn_count >= 2 &&
	       m.insn[0] == 0xe6 && m.insn[1] == PORT_CROSS && m.rax == 0x3c,
	       "entry %u message 0x%x port 0x%x info 0x%x rip 0x%lx (want 0x%lx) length %u, %u bytes "
	       "%x %x", m.entry_reason, m.type, m.port, m.io_info, m.rip, (u64)vtl0_cross, m.insn_len,
	       m.insn_count, m.insn[0], m.insn[1]);
	/* The register page shows VTL0 at the `out`; VTL0 moves on through it. */
	u64 rp_rip, rp_rsp;
	u16 rp_cs;
	memcpy(&rp_rip, regpage + 136, 8);
	memcpy(&rp_rsp, regpage + 8 + 8 * 4, 8);
	memcpy(&rp_cs, regpage + 256 + 16 + 12, 2);
	printf("register page: valid %u vtl %u rip %s rsp %s cs 0x%x\n", regpage[2], regpage[3],
	       rp_rip == m.rip ? "at the out" : "elsewhere",
	       rp_rsp == (u64)vtl0_stack + sizeof(vtl0_stack) ? "VTL0's" : "elsewhere", rp_cs);
	expect(regpage[2] == 1 && regpage[3] == 0 && rp_rip == m.rip && rp_cs == m.cs &&
	       rp_rsp == (u64)vtl0_stack + sizeof(vtl0_stack),
	       "register page: valid %u vtl %u rip 0x%lx (message 0x%lx) rsp 0x%lx cs 0x%x (0x%x)",
	       regpage[2], regpage[3], rp_rip, m.rip, rp_rsp, rp_cs, m.cs);
	if (m.type == VTL2_RT_MSG_IO_PORT && m.port == PORT_CROSS) {
		rp_rip = m.rip + m.insn_len;
		memcpy(regpage + 136, &rp_rip, 8);
		regpage[4] |= 2;       /* dirty: instruction pointer */
	}

	TEST_BEGIN("retarget_intercept");
	/*
	 * HvRetargetDeviceInterrupt of an unknown device: the hypercall
	 * intercept (RIP at the hypercall page's `out`, length 2); VTL2
	 * completes it with status 0 and removes the intercept.
	 */
	run_vtl0(&h);
	vtl2_rt_read_intercept(vtl2_rt_assist, &m);
	printf("retarget: entry %u message 0x%x rcx 0x%lx rdx 0x%lx r8 0x%lx rip 0x%lx+%u\n",
	       m.entry_reason, m.type, m.rcx, m.rdx, m.r8, m.rip, m.insn_len);
	bool retarget_ok = m.entry_reason == VTL2_RT_ENTRY_INTERCEPT &&
			   m.type == VTL2_RT_MSG_HYPERCALL && m.rcx == CALL_RETARGET_DEVICE_INTERRUPT &&
			   m.rdx == (u64)vtl0_in && m.r8 == 0 && m.insn_len == 2 &&
			   m.rip == (u64)vtl0_hcpage + 4;
	expect(retarget_ok, "entry %u message 0x%x rcx 0x%lx rdx 0x%lx r8 0x%lx rip 0x%lx+%u",
	       m.entry_reason, m.type, m.rcx, m.rdx, m.r8, m.rip, m.insn_len);
	if (m.type == VTL2_RT_MSG_HYPERCALL) {
		u16 s = hvcall_set_vp_register(&h, HVL_VTL(0), VTL2_RT_REG_RIP, m.rip + m.insn_len, 0);
		expect(s == 0, "advancing VTL0's RIP: status 0x%x", s);
		answer_slow(0, m.rcx);
	}
	st = vtl2_rt_install_intercept(&h, 0, INTERCEPT_RETARGET, 0);
	expect(st == 0, "removing the retarget intercept: status 0x%x", st);

	TEST_BEGIN("vtl0_results");
	/* VTL0's second call is hv's answer; then it VtlCalls with what it saw. */
	run_vtl0(&h);
	u32 reason = vtl2_rt_entry_reason(vtl2_rt_assist);
	const u64 *s = vtl0_seen;
	printf("VTL0 saw: entry %u, rep outsb RSI +%ld RCX %lu, outsb RSI +%ld, rep insb RDI +%ld "
	       "RCX %lu, insb RDI +%ld, buffers %x %x %x %x / %x, retarget 0x%lx then 0x%lx\n",
	       reason, (long)(s[0] - (u64)vtl0_src), s[1], (long)(s[2] - (u64)vtl0_src),
	       (long)(s[3] - (u64)vtl0_dst), s[4], (long)(s[5] - (u64)vtl0_dst1), vtl0_dst[0],
	       vtl0_dst[1], vtl0_dst[2], vtl0_dst[3], vtl0_dst1[0], s[6], s[7]);
	expect(reason == VTL2_RT_ENTRY_VTL_CALL, "entry reason %u, not VtlCall", reason);
	expect(s[0] == (u64)vtl0_src + 4 && s[1] == 0 && s[2] == (u64)vtl0_src + 5,
	       "after OUTS: RSI 0x%lx RCX %lu, then RSI 0x%lx", s[0], s[1], s[2]);
	expect(s[3] == (u64)vtl0_dst + 4 && s[4] == 0 && s[5] == (u64)vtl0_dst1 + 1,
	       "after INS: RDI 0x%lx RCX %lu, then RDI 0x%lx", s[3], s[4], s[5]);
	expect(vtl0_dst[0] == 0xa1 && vtl0_dst[3] == 0xa4 && vtl0_dst[4] == 0xee &&
	       vtl0_dst1[0] == 0x5c && vtl0_dst1[1] == 0xee,
	       "buffers %x %x %x / %x %x", vtl0_dst[0], vtl0_dst[3], vtl0_dst[4], vtl0_dst1[0],
	       vtl0_dst1[1]);
	expect((s[6] & 0xffff) == 0 && (s[7] & 0xffff) == STATUS_INVALID_DEVICE_ID,
	       "retarget statuses 0x%lx (VTL2's 0) and 0x%lx (INVALID_DEVICE_ID)", s[6], s[7]);
	TEST_END();
	return 0;
}
