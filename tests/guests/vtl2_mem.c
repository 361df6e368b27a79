/*
 * vtl2_mem: the VTL2 payload that checks VTL0's memory protections under
 * `hvmm --vtl2` (TLFS "Virtual Secure Mode": ModifyVtlProtectionMask,
 * HV_X64_MEMORY_INTERCEPT_MESSAGE in the VP assist page;
 * shared/docs/igvm-and-vsm.md B.2/B.3/C). Built into a VSM_ISOLATION IGVM
 * file by `hvmm-igvm build --vsm --relocatable` (so its image is VTL2's
 * VTL2-protectable memory, which hvmm hides from VTL0), it starts in VTL2,
 * builds VTL0's page tables, GDT, code and stack at 8 MiB (outside its own
 * range) with vtl2_rt, and on COM3 with PASS/FAIL lines:
 *  - protection errors: a page outside RAM and write-without-read flags are
 *    INVALID_PARAMETER; read-only on every other page of 128 stops at
 *    hvmm's KVM slot cap with INSUFFICIENT_MEMORY;
 *  - makes a page read-only for VTL0: VTL0 reads it (no intercept), its
 *    write is intercepted (GPA, write access, GVA, MOV length 2) and not
 *    done; VTL2 advances VTL0's RIP;
 *  - string and read-modify-write stores to it (REP STOS, LOCK ADD, XCHG)
 *    are intercepted at their start with the registers as before them;
 *  - makes it no-access: VTL0's read is intercepted (read access, length 3)
 *    and its destination register keeps its value; its LOCK ADD comes as
 *    the read (length 4), the page unchanged;
 *  - VTL0's read of VTL2's own image is intercepted;
 *  - VTL0's read of a GPA that is neither RAM nor a device comes as
 *    UNMAPPED_GPA;
 *  - from ring 3 (iretq), VTL0's read of the no-access page and then its
 *    write of the page made read-only are intercepted with CPL 3 (KVM on
 *    PVM runs ring 3 natively: the shadow-paging fault path),
 *    and VTL2 sets VTL0 back to ring 0 (CS, SS, RSP, RIP in one call);
 *  - VTL0 then VtlCalls back.
 * Then "GUEST-RESULT: N passed, M failed" and power-off. One VP (-p 1).
 */
#include "guest.h"
#include "hvcall_lib.h"
#include "vtl2_rt.h"

const char guest_name[] = "vtl2_mem";
/* VTL2 logs on COM3, as OpenHCL does (the payload contract). */
u16 guest_console_port = COM3_BASE;

/* VTL0's world, identity-mapped RAM outside VTL2's image. */
#define AREA        0x800000ull   /* page tables (3 pages), GDT */
#define CODE        0x804000ull   /* VTL0's code; its one parameter at +0x800 */
#define PARAM       (CODE + 0x800)
#define STACK_TOP   0x806000ull
#define HCPAGE      0x806000ull   /* VTL0's hypercall page */
#define TARGET      0x807000ull   /* the page VTL2 protects */
#define TARGET_VALUE 0x600dda7au
#define SPARSE      0x1000000ull  /* 16 MiB: 256 pages for the slot-cap check */

/* A word of VTL2's image VTL0 tries to read. */
static volatile u64 vtl2_secret __attribute__((aligned(4096))) = 0x5ec7e7;

/* VTL0's code, copied to CODE: absolute addresses only. */
void vtl0_blob(void);
void vtl0_blob_end(void);
void vtl0_ring0_again(void);
__asm__(
	".text\n"
	".globl vtl0_blob\n"
	".globl vtl0_blob_end\n"
	"vtl0_blob:\n"
	VTL2_RT_VTL0_HV_INIT_ASM("0x806000")   /* HCPAGE */
	"	mov $0x807000, %esi\n"
	"	mov (%rsi), %r13d\n"          /* read-only page: allowed */
	"	mov $0x5a5a5a5a, %edi\n"
	"	mov %edi, (%rsi)\n"           /* 89 3e: intercepted write */
	"	mov %esi, %edi\n"
	"	mov $2, %ecx\n"
	"	mov $0x11111111, %eax\n"
	"	rep stosl\n"                  /* f3 ab: its first iteration intercepted */
	"	lock addl $1, (%rsi)\n"       /* f0 83 06 01: read-modify-write */
	"	mov $0x5a5a5a5a, %edi\n"
	"	xchg %edi, (%rsi)\n"          /* 87 3e: EDI must keep its value */
	"	mov (%rsi), %r14d\n"          /* 44 8b 36: no access by now */
	"	lock addl $1, (%rsi)\n"       /* f0 83 06 01: its read comes first */
	"	mov 0x804800, %rdi\n"         /* VTL2's address */
	"	mov (%rdi), %r15\n"           /* 4c 8b 3f: VTL2's hidden memory */
	"	mov $0x20000000, %edi\n"      /* neither RAM nor a device */
	"	mov (%rdi), %r15\n"           /* 4c 8b 3f: unmapped GPA */
	"	mov $0x5a5a5a5a, %edi\n"
	"	push $0x2b\n"                 /* to ring 3: SS, RSP, RFLAGS, CS, RIP */
	"	push $0x805800\n"
	"	push $2\n"
	"	push $0x33\n"
	"	lea 2f(%rip), %rax\n"
	"	push %rax\n"
	"	iretq\n"
	"2:	mov (%rsi), %ebx\n"           /* 8b 1e, ring 3: no access */
	"	mov %edi, (%rsi)\n"           /* 89 3e, ring 3: read-only by now */
	"3:	jmp 3b\n"
	".globl vtl0_ring0_again\n"
	"vtl0_ring0_again:\n"
	"	xor %ecx, %ecx\n"             /* VtlCall input 0 */
	"	mov $0x806010, %eax\n"        /* VtlCall */
	"	call *%rax\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	"vtl0_blob_end:\n");

/* One intercept VTL0 must cause: checks the message, advances VTL0's RIP. */
static void check_intercept_type(const struct hvcall *h, const char *what, u32 type, u8 access,
				 u64 gpa, u8 len, u8 cpl)
{
	struct vtl2_rt_intercept m;
	vtl2_rt_read_intercept(vtl2_rt_assist, &m);
	printf("%s: entry %u message 0x%x access %u gpa 0x%lx gva 0x%lx (info %u) rip 0x%lx+%u "
	       "cpl %u cs 0x%x\n", what, m.entry_reason, m.type, m.access, m.gpa, m.gva,
	       m.access_info, m.rip, m.insn_len, m.cpl, m.cs);
	expect(m.cpl == cpl && (m.cs & 3) == cpl, "%s: CPL %u CS 0x%x, not CPL %u", what, m.cpl,
	       m.cs, cpl);
	expect(m.entry_reason == VTL2_RT_ENTRY_INTERCEPT, "%s: entry reason %u, not INTERCEPT", what,
	       m.entry_reason);
	expect(m.type == type, "%s: message 0x%x, not 0x%x", what, m.type, type);
	expect(m.access == access, "%s: access type %u, not %u", what, m.access, access);
	expect(m.gpa == gpa, "%s: GPA 0x%lx, not 0x%lx", what, m.gpa, gpa);
	expect(m.insn_len == len, "%s: instruction length %u, not %u", what, m.insn_len, len);
	expect(!(m.access_info & 1) || m.gva == gpa, "%s: GVA 0x%lx", what, m.gva);
	u64 rip = 0;
	u16 st = hvcall_get_vp_register(h, HVL_VTL(0), VTL2_RT_REG_RIP, &rip, NULL);
	expect(st == 0 && rip == m.rip && rip >= CODE && rip < CODE + 0x800,
	       "%s: VTL0 RIP 0x%lx, message 0x%lx (status 0x%x)", what, rip, m.rip, st);
	st = hvcall_set_vp_register(h, HVL_VTL(0), VTL2_RT_REG_RIP, m.rip + m.insn_len, 0);
	expect(st == 0, "%s: advancing VTL0's RIP: status 0x%x", what, st);
	vtl2_rt_assist[8] = 0;   /* entry reason, for the next check */
}

static void check_intercept(const struct hvcall *h, const char *what, u8 access, u64 gpa,
			    u8 len, u8 cpl)
{
	check_intercept_type(h, what, VTL2_RT_MSG_GPA_INTERCEPT, access, gpa, len, cpl);
}

int guest_main(const char *cmdline)
{
	(void)cmdline;
	struct hvcall h;
	TEST_BEGIN("setup");
	u16 st = 0;
	/* enable_vtl_protection, default mask RWX, intercept page */
	st = vtl2_rt_begin(&h, 0x1 | 0xf << 1 | 1ull << 12);
	memcpy((void *)CODE, (const void *)vtl0_blob, (u64)vtl0_blob_end - (u64)vtl0_blob);
	u64 secret = (u64)&vtl2_secret;
	memcpy((void *)PARAM, &secret, 8);
	*(volatile u32 *)TARGET = TARGET_VALUE;
	st = vtl2_rt_setup_vtl0(&h, AREA, CODE, STACK_TOP);
	expect(st == 0, "SetVpRegisters of VTL0: status 0x%x", st);
	unsigned bad = st != 0;

	/*
	 * VTL0's debug registers and a private MSR through Set/GetVpRegisters:
	 * hvmm moves them with their own KVM calls (DEBUGREGS, MSRS) only when
	 * one is named. No breakpoint is enabled (DR7's L/G bits clear).
	 */
	{
		static const struct { u32 name; u64 val; } regs[] = {
			{ 0x00050000u /* DR0 */, 0x123450 }, { 0x00050003u /* DR3 */, 0x7000 },
			{ 0x00050005u /* DR7 */, 0x10400 }, { 0x0008000Bu /* SFMASK */, 0x47700 },
		};
		for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
			u64 got = 0;
			u16 s1 = hvcall_set_vp_register(&h, HVL_VTL(0), regs[i].name, regs[i].val, 0);
			u16 s2 = hvcall_get_vp_register(&h, HVL_VTL(0), regs[i].name, &got, NULL);
			expect(s1 == 0 && s2 == 0 && got == regs[i].val,
			       "VTL0 register 0x%x: set 0x%lx (status 0x%x), read 0x%lx (status 0x%x)",
			       regs[i].name, regs[i].val, s1, got, s2);
		}
		u16 s3 = hvcall_set_vp_register(&h, HVL_VTL(0), 0x00050005u, 1ull << 32, 0);
		expect(s3 == 0x0050 /* INVALID_REGISTER_VALUE */, "DR7 bit 32: status 0x%x", s3);
	}

	TEST_BEGIN("protect_errors");
	st = vtl2_rt_protect(&h, 0xC0000000ull >> 12, 1, VTL2_RT_MAP_READ);
	expect(st == HVL_STATUS_INVALID_PARAMETER, "a page in the MMIO hole: status 0x%x", st);
	st = vtl2_rt_protect(&h, TARGET >> 12, 1, VTL2_RT_MAP_WRITE);
	expect(st == HVL_STATUS_INVALID_PARAMETER, "write without read: status 0x%x", st);

	TEST_BEGIN("slot_cap");
	/*
	 * Every other page of 128 read-only, in one rep call: each costs VTL0
	 * two more KVM slots, so the call stops with INSUFFICIENT_MEMORY once
	 * hvmm's cap (64 slots) would be exceeded; the pages done stay done.
	 */
	{
		u64 self = HVL_PARTITION_SELF;
		u32 flags = VTL2_RT_MAP_READ;
		u16 n = 128, done = 0;
		memset(h.in, 0, 16 + 8 * (size_t)n);
		memcpy(h.in, &self, 8);
		memcpy(h.in + 8, &flags, 4);
		for (u16 i = 0; i < n; i++) {
			u64 p = (SPARSE >> 12) + 2 * (u64)i;
			memcpy(h.in + 16 + 8 * (size_t)i, &p, 8);
		}
		st = hvcall_rep(&h, HVL_CALL_MODIFY_VTL_PROTECTION_MASK, n, 0, &done);
		printf("sparse read-only pages: status 0x%x after %u of %u\n", st, done, n);
		expect(st == 0x000B /* INSUFFICIENT_MEMORY */ && done >= 16 && done < 64,
		       "sparse protections: status 0x%x after %u of %u", st, done, n);
		/* Back to full access, consecutive pages: one slot again. */
		u16 st2 = vtl2_rt_protect(&h, SPARSE >> 12, 64, 0xf);
		u16 st3 = vtl2_rt_protect(&h, (SPARSE >> 12) + 64, 64, 0xf);
		expect(st2 == 0 && st3 == 0, "undoing them: status 0x%x 0x%x", st2, st3);
	}

	TEST_BEGIN("read_only");
	st = vtl2_rt_protect(&h, TARGET >> 12, 1, VTL2_RT_MAP_READ | VTL2_RT_MAP_KX);
	expect(st == 0, "ModifyVtlProtectionMask read-only: status 0x%x", st);
	bad |= st != 0;
	if (!bad) {
		vtl2_rt_return(&h, true);
		check_intercept(&h, "write to read-only", 1, TARGET, 2, 0);
		expect((u32)vtl2_rt_vtl0_gprs[VTL2_RT_R13] == TARGET_VALUE,
		       "VTL0 read 0x%lx from the read-only page", vtl2_rt_vtl0_gprs[VTL2_RT_R13]);
		expect(*(volatile u32 *)TARGET == TARGET_VALUE, "the page changed to 0x%x",
		       *(volatile u32 *)TARGET);
	}

	TEST_BEGIN("string_and_rmw_stores");
	/*
	 * Stores other than MOV are put back at their start too: REP STOS at
	 * its first iteration (RDI as before it; RCX, which VtlReturn
	 * overwrites, is test_vtl_mem's), LOCK ADD (length 4 with the prefix),
	 * XCHG (EDI keeps the value it was to write); the page never changes.
	 */
	if (!bad) {
		vtl2_rt_return(&h, true);
		check_intercept(&h, "rep stos to read-only", 1, TARGET, 2, 0);
		expect(vtl2_rt_vtl0_gprs[VTL2_RT_RDI] == TARGET, "REP STOS: VTL0's RDI 0x%lx",
		       vtl2_rt_vtl0_gprs[VTL2_RT_RDI]);
		vtl2_rt_return(&h, true);
		check_intercept(&h, "lock add to read-only", 1, TARGET, 4, 0);
		vtl2_rt_return(&h, true);
		check_intercept(&h, "xchg with read-only", 1, TARGET, 2, 0);
		expect((u32)vtl2_rt_vtl0_gprs[VTL2_RT_RDI] == 0x5a5a5a5a, "XCHG: VTL0's EDI 0x%lx",
		       vtl2_rt_vtl0_gprs[VTL2_RT_RDI]);
		expect(*(volatile u32 *)TARGET == TARGET_VALUE &&
		       *(volatile u32 *)(TARGET + 4) != 0x11111111, "the page changed to 0x%x 0x%x",
		       *(volatile u32 *)TARGET, *(volatile u32 *)(TARGET + 4));
	}

	TEST_BEGIN("no_access");
	st = vtl2_rt_protect(&h, TARGET >> 12, 1, 0);
	expect(st == 0, "ModifyVtlProtectionMask no access: status 0x%x", st);
	bad |= st != 0;
	if (!bad) {
		vtl2_rt_vtl0_gprs[VTL2_RT_R14] = 0x1234;
		vtl2_rt_return(&h, true);
		check_intercept(&h, "read of no-access", 0, TARGET, 3, 0);
		expect(vtl2_rt_vtl0_gprs[VTL2_RT_R14] == 0x1234, "VTL0's R14 became 0x%lx",
		       vtl2_rt_vtl0_gprs[VTL2_RT_R14]);
		/* A read-modify-write: the read is intercepted (its write, which
		 * follows once the read is finished, is dropped), length 4. */
		vtl2_rt_return(&h, true);
		check_intercept(&h, "lock add to no-access", 0, TARGET, 4, 0);
		expect(*(volatile u32 *)TARGET == TARGET_VALUE, "the page changed to 0x%x",
		       *(volatile u32 *)TARGET);
	}

	TEST_BEGIN("vtl2_memory_hidden");
	if (!bad) {
		vtl2_rt_return(&h, true);
		check_intercept(&h, "read of VTL2's memory", 0, secret, 3, 0);
	}

	TEST_BEGIN("unmapped_gpa");
	if (!bad) {
		vtl2_rt_return(&h, true);
		check_intercept_type(&h, "read of an unmapped GPA", VTL2_RT_MSG_UNMAPPED_GPA, 0, 0x20000000ull,
				     3, 0);
	}

	TEST_BEGIN("ring3_no_access");
	/* VTL0 goes to ring 3 and reads the no-access page; VTL2 puts it back in ring 0. */
	if (!bad) {
		vtl2_rt_return(&h, true);
		check_intercept(&h, "ring 3 read of no-access", 0, TARGET, 2, 3);
		st = vtl2_rt_protect(&h, TARGET >> 12, 1, VTL2_RT_MAP_READ);
		expect(st == 0, "ModifyVtlProtectionMask read-only: status 0x%x", st);
		vtl2_rt_return(&h, true);
		check_intercept(&h, "ring 3 write to read-only", 1, TARGET, 2, 3);
		expect(*(volatile u32 *)TARGET == TARGET_VALUE, "the page changed to 0x%x",
		       *(volatile u32 *)TARGET);
		const struct vtl2_rt_reg r0[] = {
			{ VTL2_RT_REG_CS, 0, vtl2_rt_seg(0xffffffff, 0x10, 0xa09b) },
			{ VTL2_RT_REG_SS, 0, vtl2_rt_seg(0xffffffff, 0x18, 0xc093) },
			{ VTL2_RT_REG_RSP, STACK_TOP - 0x100, 0 },
			{ VTL2_RT_REG_RIP, CODE + ((u64)vtl0_ring0_again - (u64)vtl0_blob), 0 },
		};
		st = vtl2_rt_set_vtl0(&h, r0, sizeof(r0) / sizeof(r0[0]));
		expect(st == 0, "VTL0 back to ring 0: status 0x%x", st);
		bad |= st != 0;
	}

	TEST_BEGIN("vtl_call_back");
	st = vtl2_rt_protect(&h, TARGET >> 12, 1, 0xf);
	expect(st == 0, "ModifyVtlProtectionMask full: status 0x%x", st);
	if (!bad) {
		vtl2_rt_return(&h, true);
		u32 reason = vtl2_rt_entry_reason(vtl2_rt_assist);
		expect(reason == VTL2_RT_ENTRY_VTL_CALL, "entry reason %u, not VTL_CALL", reason);
		printf("VTL0 called back after %s\n", reason == VTL2_RT_ENTRY_VTL_CALL ? "10 intercepts" : "?");
	}
	TEST_END();
	return 0;
}
