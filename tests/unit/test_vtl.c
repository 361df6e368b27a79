/*
 * The pure helpers of the --vtl2 wiring (src/core/vtl.c): the length of the
 * IN/OUT/INS/OUTS instruction at an intercepted port access (for the
 * intercept message's instruction length, TLFS HV_X64_INTERCEPT_MESSAGE_HEADER)
 * and, when an instruction emulator has already moved RIP past it, the
 * length of the OUT that ends there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/vtl.h"

static void test_insn_len(void **state)
{
	(void)state;
	bool s, r;
	static const struct { uint8_t b[4]; unsigned n, len; bool string, rep; } cases[] = {
		{ { 0xEE }, 1, 1, false, false },              /* out dx, al */
		{ { 0x66, 0xEF }, 2, 2, false, false },        /* out dx, ax */
		{ { 0xE6, 0x80 }, 2, 2, false, false },        /* out 0x80, al */
		{ { 0xE4, 0x71 }, 2, 2, false, false },        /* in al, 0x71 */
		{ { 0xF3, 0x6E }, 2, 2, true, true },          /* rep outsb */
		{ { 0xF3, 0x48, 0x6F }, 3, 3, true, true },    /* rep outs with REX */
		{ { 0x90 }, 1, 0, false, false },              /* not port I/O */
		{ { 0x66, 0x66 }, 2, 0, false, false },        /* prefixes only */
		{ { 0xE6 }, 1, 2, false, false },              /* imm8 form; length from the opcode */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned n = vtl_io_insn_len(cases[i].b, cases[i].n, &s, &r);
		assert_int_equal(n, cases[i].len);
		if (n) {
			assert_int_equal(s, cases[i].string);
			assert_int_equal(r, cases[i].rep);
		}
	}
	/* 15 prefixes then the opcode: past the architectural limit. */
	uint8_t many[16];
	memset(many, 0x66, sizeof(many));
	many[15] = 0xEE;
	assert_int_equal(vtl_io_insn_len(many, 16, &s, &r), 0);
	assert_int_equal(vtl_io_insn_len(many, 0, &s, &r), 0);
}

static void test_insn_back(void **state)
{
	(void)state;
	uint8_t b[16];
	memset(b, 0x90, sizeof(b));
	b[15] = 0xEE;
	assert_int_equal(vtl_io_insn_back(b, 0x5a5, 1), 1);
	b[14] = 0x66, b[15] = 0xEF;
	assert_int_equal(vtl_io_insn_back(b, 0x5a5, 2), 2);
	assert_int_equal(vtl_io_insn_back(b, 0x5a5, 4), 1); /* 0x66 is the previous instruction's */
	b[14] = 0xE6, b[15] = 0x80;
	assert_int_equal(vtl_io_insn_back(b, 0x80, 1), 2);
	assert_int_equal(vtl_io_insn_back(b, 0x81, 1), 0);   /* imm8 is another port */
	b[14] = 0xF3, b[15] = 0x6E;
	assert_int_equal(vtl_io_insn_back(b, 0x3f8, 1), 2);
	b[15] = 0xBB;
	assert_int_equal(vtl_io_insn_back(b, 0x3f8, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insn_len),
		cmocka_unit_test(test_insn_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
