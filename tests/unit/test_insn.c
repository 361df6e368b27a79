/*
 * Unit tests: the x86 instruction decoder used for emulation on PVM hosts:
 * the encodings Linux actually uses (xsave/xrstor/xsavec forms, popcnt,
 * lsl, cmpxchg16b), SIB/RIP-relative addressing, prefixes, and truncation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "x86/insn.h"

static struct x86_regs regs(void)
{
	struct x86_regs r;
	memset(&r, 0, sizeof(r));
	r.rax = 0x1000; r.rcx = 0x2000; r.rdx = 0x3000; r.rbx = 0x4000;
	r.rsp = 0x5000; r.rbp = 0x6000; r.rsi = 0x7000; r.rdi = 0x8000;
	r.r8 = 0x9000; r.r12 = 0xc000; r.r13 = 0xd000; r.r15 = 0xf000;
	r.rip = 0xffffffff81000000ULL;
	return r;
}

static void dec(const char *bytes, size_t n, struct x86_insn *in)
{
	assert_int_equal(x86_insn_decode((const uint8_t *)bytes, n, in), 0);
}

static void test_linux_forms(void **state)
{
	(void)state;
	struct x86_insn in;
	struct x86_regs r = regs();
	dec("\x48\x0f\xae\x2f", 4, &in); /* xrstor64 (%rdi) */
	assert_true(in.twobyte && in.opcode == 0xae && in.reg == 5 && in.mem);
	assert_true(in.rex_w);
	assert_int_equal(in.len, 4);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x8000);
	dec("\x48\x0f\xc7\x67\x40", 5, &in); /* xsavec64 0x40(%rdi) */
	assert_int_equal(in.reg, 4);
	assert_int_equal(in.len, 5);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x8040);
	dec("\xf3\x48\x0f\xb8\xc7", 5, &in); /* popcnt %rdi,%rax */
	assert_int_equal(in.rep, 0xf3);
	assert_false(in.mem);
	assert_int_equal(x86_insn_reg(&in), 0);
	assert_int_equal(x86_insn_rm_reg(&in), 7);
	dec("\x48\x0f\x03\xc0", 4, &in); /* lsl %rax,%rax */
	assert_int_equal(in.opcode, 0x03);
	assert_int_equal(in.len, 4);
	dec("\xf0\x49\x0f\xc7\x0c\x24", 6, &in); /* lock cmpxchg16b (%r12) */
	assert_int_equal(in.reg, 1);
	assert_int_equal(in.base, 12);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0xc000);
	dec("\x0f\x01\xd0", 3, &in); /* xgetbv */
	assert_int_equal(in.mod, 3);
	assert_int_equal(in.rm, 0);
	assert_int_equal(in.reg, 2);
}

static void test_addressing(void **state)
{
	(void)state;
	struct x86_insn in;
	struct x86_regs r = regs();
	/* xsave 0x10(%rax,%rcx,8) : modrm 01 100 100, sib 11 001 000, disp8 */
	dec("\x0f\xae\x64\xc8\x10", 5, &in);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x1000 + 0x2000 * 8 + 0x10);
	/* REX.X|REX.B: (%r13,%r8,2) with disp32 -4 : modrm 10 100 100 */
	dec("\x43\x0f\xae\xa4\x45\xfc\xff\xff\xff", 9, &in);
	assert_int_equal(in.base, 13);
	assert_int_equal(in.index, 8);
	assert_int_equal(in.len, 9);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0xd000 + 0x9000 * 2 - 4);
	/* RIP-relative: modrm 00 100 101 disp32 0x100 */
	dec("\x0f\xae\x25\x00\x01\x00\x00", 7, &in);
	assert_true(in.rip_relative);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), r.rip + 7 + 0x100);
	/* SIB without base (mod 00, base 101): disp32 + index*4 */
	dec("\x0f\xae\x24\x8d\x00\x10\x00\x00", 8, &in);
	assert_int_equal(in.base, -1);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x2000 * 4 + 0x1000);
	/* SIB index 100 without REX.X means no index: (%rsp) */
	dec("\x0f\xae\x24\x24", 4, &in);
	assert_int_equal(in.index, -1);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x5000);
	/* GS override and 32-bit addressing */
	dec("\x65\x0f\xae\x27", 4, &in);
	assert_int_equal(x86_insn_ea(&in, &r, 0x100, 0x7700000000ULL), 0x7700008000ULL);
	r.rdi = 0x1ffffffffULL;
	dec("\x67\x0f\xae\x27", 4, &in);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0xffffffffULL);
}

static void test_truncated(void **state)
{
	(void)state;
	struct x86_insn in;
	const char *full = "\x43\x0f\xae\xa4\x45\xfc\xff\xff\xff";
	for (size_t n = 0; n < 9; n++)
		assert_int_equal(x86_insn_decode((const uint8_t *)full, n, &in), -EINVAL);
	assert_int_equal(x86_insn_decode((const uint8_t *)"\x0f\x38\x00\x00", 4, &in),
			 -EINVAL);
	/* 15 prefixes and nothing else */
	assert_int_equal(x86_insn_decode((const uint8_t *)"fffffffffffffff", 15, &in),
			 -EINVAL);
	struct x86_regs r = regs();
	x86_set_gpr(&r, 13, 42);
	assert_int_equal(x86_gpr(&r, 13), 42);
	x86_set_gpr(&r, 16, 1); /* ignored */
	assert_int_equal(x86_gpr(&r, 16), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linux_forms),
		cmocka_unit_test(test_addressing),
		cmocka_unit_test(test_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
