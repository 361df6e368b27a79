/*
 * Unit tests: the x86 instruction decoder used for emulation on PVM hosts:
 * the encodings Linux actually uses (xsave/xrstor/xsavec forms, popcnt,
 * lsl, cmpxchg16b; the SSSE3, AVX and AVX-512 BLAKE2s code), SIB/RIP-relative
 * addressing, prefixes, VEX/EVEX fields, EVEX disp8*N, immediates, and
 * truncation.
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
	assert_int_equal(x86_insn_decode((const uint8_t *)"\x0f\x38\x00", 3, &in),
			 -EINVAL);
	/* imm8 missing: pshufd, EVEX vprord */
	assert_int_equal(x86_insn_decode((const uint8_t *)"\x66\x0f\x70\xc0", 4, &in),
			 -EINVAL);
	const char *vprord = "\x62\xf1\x65\x08\x72\xc3\x10";
	for (size_t n = 0; n < 7; n++)
		assert_int_equal(x86_insn_decode((const uint8_t *)vprord, n, &in), -EINVAL);
	const char *vex3 = "\xc4\x43\x7d\x39\xc0\x01";
	for (size_t n = 0; n < 6; n++)
		assert_int_equal(x86_insn_decode((const uint8_t *)vex3, n, &in), -EINVAL);
	/* 15 prefixes and nothing else */
	assert_int_equal(x86_insn_decode((const uint8_t *)"fffffffffffffff", 15, &in),
			 -EINVAL);
	struct x86_regs r = regs();
	x86_set_gpr(&r, 13, 42);
	assert_int_equal(x86_gpr(&r, 13), 42);
	x86_set_gpr(&r, 16, 1); /* ignored */
	assert_int_equal(x86_gpr(&r, 16), 0);
}

/* Legacy SSE forms: mandatory prefix as pp, 0F38/0F3A maps, imm8. */
static void test_sse(void **state)
{
	(void)state;
	struct x86_insn in;
	dec("\x66\x41\x0f\x38\x00\xdc", 6, &in); /* pshufb %xmm12,%xmm3 */
	assert_int_equal(in.enc, X86_ENC_LEGACY);
	assert_int_equal(in.map, 2);
	assert_false(in.twobyte); /* not map 0F: old callers must not match */
	assert_int_equal(in.pp, X86_PP_66);
	assert_int_equal(in.opcode, 0x00);
	assert_int_equal(x86_insn_vreg(&in), 3);
	assert_int_equal(x86_insn_vrm(&in), 12);
	assert_int_equal(in.len, 6);
	dec("\x66\x0f\x70\xd2\x39", 5, &in); /* pshufd $0x39,%xmm2,%xmm2 */
	assert_true(in.twobyte && in.has_imm);
	assert_int_equal(in.imm8, 0x39);
	assert_int_equal(in.len, 5);
	dec("\xf3\x44\x0f\x6f\x77\x20", 6, &in); /* movdqu 0x20(%rdi),%xmm14 */
	assert_int_equal(in.pp, X86_PP_F3);
	assert_int_equal(x86_insn_vreg(&in), 14);
	assert_false(in.has_imm);
	dec("\x66\x0f\x3a\x0f\xc1\x08", 6, &in); /* palignr $8,%xmm1,%xmm0 */
	assert_int_equal(in.map, 3);
	assert_int_equal(in.imm8, 8);
	dec("\x0f\xba\xe0\x05", 4, &in); /* bt $5,%eax */
	assert_int_equal(in.imm8, 5);
	assert_int_equal(in.pp, X86_PP_NONE);
	dec("\x66\xf3\x0f\x6f\x07", 5, &in); /* F3 wins over 66 */
	assert_int_equal(in.pp, X86_PP_F3);
}

/* VEX (C5 two-byte, C4 three-byte): the AVX BLAKE2s forms. */
static void test_vex(void **state)
{
	(void)state;
	struct x86_insn in;
	struct x86_regs r = regs();
	dec("\xc5\xfa\x6f\x07", 4, &in); /* vmovdqu (%rdi),%xmm0 */
	assert_int_equal(in.enc, X86_ENC_VEX);
	assert_int_equal(in.map, 1);
	assert_int_equal(in.pp, X86_PP_F3);
	assert_int_equal(in.vl, 0);
	assert_int_equal(in.vvvv, 0);
	assert_true(in.mem);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x8000);
	assert_int_equal(in.len, 4);
	dec("\xc5\xfe\x6f\x7e\x20", 5, &in); /* vmovdqu 0x20(%rsi),%ymm7 */
	assert_int_equal(in.vl, 1);
	assert_int_equal(x86_insn_vreg(&in), 7);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x7020);
	dec("\xc5\x79\x6f\x35\x36\x8b\x25\x01", 8, &in); /* vmovdqa rip,%xmm14 */
	assert_int_equal(x86_insn_vreg(&in), 14);
	assert_int_equal(in.pp, X86_PP_66);
	assert_true(in.rip_relative);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), r.rip + 8 + 0x1258b36);
	dec("\xc4\xc1\x59\xef\xdf", 5, &in); /* vpxor %xmm15,%xmm4,%xmm3 */
	assert_int_equal(x86_insn_vreg(&in), 3);
	assert_int_equal(in.vvvv, 4);
	assert_int_equal(x86_insn_vrm(&in), 15);
	assert_false(in.rex_w);
	dec("\xc5\xf9\x70\xc0\x93", 5, &in); /* vpshufd $0x93,%xmm0,%xmm0 */
	assert_int_equal(in.imm8, 0x93);
	assert_int_equal(in.len, 5);
	dec("\xc4\x43\x7d\x39\xc0\x01", 6, &in); /* vextracti128 $1,%ymm8,%xmm8 */
	assert_int_equal(in.map, 3);
	assert_int_equal(in.vl, 1);
	assert_int_equal(x86_insn_vreg(&in), 8);
	assert_int_equal(x86_insn_vrm(&in), 8);
	assert_int_equal(in.imm8, 1);
	assert_int_equal(in.len, 6);
	dec("\xc5\xf8\x77", 3, &in); /* vzeroupper: no ModRM */
	assert_false(in.has_modrm);
	assert_int_equal(in.opcode, 0x77);
	assert_int_equal(in.len, 3);
	dec("\xc4\xe1\xf9\x6e\xc0", 5, &in); /* vmovq %rax,%xmm0: W1 */
	assert_true(in.rex_w);
	/* VEX after 66, F3, REX or lock is #UD */
	assert_int_equal(x86_insn_decode((const uint8_t *)"\x66\xc5\xfa\x6f\x07", 5, &in),
			 -EINVAL);
	assert_int_equal(x86_insn_decode((const uint8_t *)"\x48\xc5\xfa\x6f\x07", 5, &in),
			 -EINVAL);
	/* map 0 (mmmmm = 0) is reserved */
	assert_int_equal(x86_insn_decode((const uint8_t *)"\xc4\xe0\x79\x6f\xc0", 5, &in),
			 -EINVAL);
}

/* EVEX: fields, 32 registers, masking, disp8*N. */
static void test_evex(void **state)
{
	(void)state;
	struct x86_insn in;
	struct x86_regs r = regs();
	dec("\x62\x72\x4d\x28\x76\xc7", 6, &in); /* vpermi2d %ymm7,%ymm6,%ymm8 */
	assert_int_equal(in.enc, X86_ENC_EVEX);
	assert_int_equal(in.map, 2);
	assert_int_equal(in.pp, X86_PP_66);
	assert_int_equal(in.vl, 1);
	assert_int_equal(x86_insn_vreg(&in), 8);
	assert_int_equal(in.vvvv, 6);
	assert_int_equal(x86_insn_vrm(&in), 7);
	assert_int_equal(in.evex_aaa, 0);
	assert_false(in.rex_w);
	dec("\x62\xf1\x65\x08\x72\xc3\x10", 7, &in); /* vprord $16,%xmm3,%xmm3 */
	assert_int_equal(in.reg, 0);
	assert_int_equal(in.vvvv, 3);
	assert_int_equal(x86_insn_vrm(&in), 3);
	assert_int_equal(in.imm8, 0x10);
	assert_int_equal(in.len, 7);
	/* vpaddd %zmm17,%zmm18,%zmm19{%k2}{z}: R'=1 (ModRM.reg 3 + 16), V'=1, X=1 */
	dec("\x62\xa1\x6d\xc2\xfe\xd9", 6, &in);
	assert_int_equal(in.vl, 2);
	assert_int_equal(x86_insn_vreg(&in), 19);
	assert_int_equal(in.vvvv, 18);
	assert_int_equal(x86_insn_vrm(&in), 17);
	assert_true(in.evex_z);
	assert_int_equal(in.evex_aaa, 2);
	/* vmovdqu32 0x40(%rdi),%zmm1: disp8 1 * N=64 */
	dec("\x62\xf1\x7e\x48\x6f\x4f\x01", 7, &in);
	assert_true(in.disp8);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x8000 + 64);
	/* vpaddd -4(%rdi){1to4},%xmm1,%xmm2: broadcast, N = 4 */
	dec("\x62\xf1\x75\x18\xfe\x57\xff", 7, &in);
	assert_true(in.evex_b);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x8000 - 4);
	/* ymm, no broadcast: N = 32; then rescaled as a scalar tuple (N = 4) */
	dec("\x62\xf1\x75\x28\xfe\x57\x02", 7, &in);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x8000 + 64);
	x86_insn_evex_disp8n(&in, 4);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x8000 + 8);
	/* disp32 is never scaled */
	dec("\x62\xf1\x7e\x48\x6f\x8f\x01\x00\x00\x00", 10, &in);
	assert_false(in.disp8);
	assert_int_equal(x86_insn_ea(&in, &r, 0, 0), 0x8001);
	/* reserved: L'L = 3, P0 bits 3:2, P1 bit 2 clear */
	assert_int_equal(x86_insn_decode((const uint8_t *)"\x62\xf1\x7e\x68\x6f\x07", 6, &in),
			 -EINVAL);
	assert_int_equal(x86_insn_decode((const uint8_t *)"\x62\xf5\x7e\x48\x6f\x07", 6, &in),
			 -EINVAL);
	assert_int_equal(x86_insn_decode((const uint8_t *)"\x62\xf1\x7a\x48\x6f\x07", 6, &in),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linux_forms),
		cmocka_unit_test(test_addressing),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_sse),
		cmocka_unit_test(test_vex),
		cmocka_unit_test(test_evex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
