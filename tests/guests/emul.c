/*
 * emul: ring-0 instructions that a VMM on a PVM host must emulate because
 * KVM's instruction emulator cannot (see docs/ARCHITECTURE.md): xgetbv/
 * xsetbv, ldmxcsr/stmxcsr, xsave/xsaveopt/xsavec/xrstor (standard and
 * compacted), popcnt, lsl and cmpxchg16b, checked against the architectural
 * definition; and SSE/AVX/AVX-512 integer instructions (those Linux's
 * BLAKE2s runs in ring 0, and their relatives), each run in ring 0 and
 * again natively in ring 3 (user_call) on the same inputs, with the full
 * zmm/opmask/memory results compared. The same guest passes on hardware KVM
 * and under QEMU, and fails if hvmm's emulation is wrong. EVEX cases report
 * SKIP when the CPU lacks AVX-512 (F, VL, BW).
 */
#include "guest.h"

const char guest_name[] = "emul";

static u8 area[4096] __attribute__((aligned(64)));
static u8 area2[4096] __attribute__((aligned(64)));
static u64 pair[2] __attribute__((aligned(16)));

static void write_cr4(u64 v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

static u64 xgetbv(u32 idx)
{
	u32 lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(idx));
	return ((u64)hi << 32) | lo;
}

static u32 stmxcsr(void)
{
	u32 v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void ldmxcsr(u32 v)
{
	__asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static u64 rd64(const u8 *p)
{
	u64 v;
	memcpy(&v, p, 8);
	return v;
}

/* ---- vector instructions: ring 0 (emulated on PVM) vs ring 3 (native) ---- */

/*
 * One case's registers and memory. The asm loads zmm0-3, zmm16-17 (ymm0-3
 * without AVX-512), k1 and rax from `in`, runs the instructions with rdi at
 * `mem`, and stores them all to `out`. Offsets are fixed in the asm below.
 */
struct vio {
	u8 in[6][64];    /* 0 */
	u8 out[6][64];   /* 384 */
	u64 k1, k1_out;  /* 768, 776 */
	u64 rax, rax_out; /* 784, 792 */
	u8 pad[32];
	u8 mem[192];     /* 832: 64-byte aligned */
} __attribute__((aligned(64)));
_Static_assert(__builtin_offsetof(struct vio, mem) == 832, "asm offsets");

static struct vio vio0, vio3;
static bool g_avx512;

#define LOAD512                                                                      \
	"vmovdqu64 0(%%rsi),%%zmm0\n\tvmovdqu64 64(%%rsi),%%zmm1\n\t"                  \
	"vmovdqu64 128(%%rsi),%%zmm2\n\tvmovdqu64 192(%%rsi),%%zmm3\n\t"               \
	"vmovdqu64 256(%%rsi),%%zmm16\n\tvmovdqu64 320(%%rsi),%%zmm17\n\t"             \
	"kmovq 768(%%rsi),%%k1\n\tmov 784(%%rsi),%%rax\n\t"
#define STORE512                                                                     \
	"\n\tvmovdqu64 %%zmm0,384(%%rsi)\n\tvmovdqu64 %%zmm1,448(%%rsi)\n\t"          \
	"vmovdqu64 %%zmm2,512(%%rsi)\n\tvmovdqu64 %%zmm3,576(%%rsi)\n\t"               \
	"vmovdqu64 %%zmm16,640(%%rsi)\n\tvmovdqu64 %%zmm17,704(%%rsi)\n\t"             \
	"kmovq %%k1,776(%%rsi)\n\tmov %%rax,792(%%rsi)"
#define LOAD256                                                                      \
	"vmovdqu 0(%%rsi),%%ymm0\n\tvmovdqu 64(%%rsi),%%ymm1\n\t"                      \
	"vmovdqu 128(%%rsi),%%ymm2\n\tvmovdqu 192(%%rsi),%%ymm3\n\t"                   \
	"mov 784(%%rsi),%%rax\n\t"
#define STORE256                                                                     \
	"\n\tvmovdqu %%ymm0,384(%%rsi)\n\tvmovdqu %%ymm1,448(%%rsi)\n\t"              \
	"vmovdqu %%ymm2,512(%%rsi)\n\tvmovdqu %%ymm3,576(%%rsi)\n\t"                   \
	"mov %%rax,792(%%rsi)"

#define VCASE(fn, insns)                                                              \
	static u64 fn(u64 arg)                                                        \
	{                                                                             \
		struct vio *io = (struct vio *)arg;                                   \
		if (g_avx512)                                                         \
			__asm__ volatile(LOAD512 insns STORE512                       \
					 : : "S"(io), "D"(io->mem) : "rax", "memory");  \
		else                                                                  \
			__asm__ volatile(LOAD256 insns STORE256                       \
					 : : "S"(io), "D"(io->mem) : "rax", "memory");  \
		return 0;                                                             \
	}

/* The AVX/AVX-512 BLAKE2s instructions, in its own register forms. */
VCASE(vc_mov, "vmovdqu (%%rdi),%%xmm0\n\tvmovdqu 0x20(%%rdi),%%ymm1\n\t"
	      "vmovdqu %%xmm2,0x40(%%rdi)\n\tvmovdqu %%ymm3,0x50(%%rdi)\n\t"
	      "vmovdqa 0x40(%%rdi),%%ymm2\n\tvmovdqa %%xmm1,%%xmm3\n\t"
	      "vmovdqa %%ymm0,0x80(%%rdi)\n\tvmovdqa %%ymm1,%%ymm0")
VCASE(vc_alu, "vpaddd %%xmm1,%%xmm0,%%xmm0\n\tvpxor %%xmm0,%%xmm3,%%xmm3\n\t"
	      "vpaddq %%xmm3,%%xmm2,%%xmm1\n\tvpaddd 0x20(%%rdi),%%ymm1,%%ymm2\n\t"
	      "vpxor (%%rdi),%%ymm3,%%ymm0\n\tvpsubd %%ymm0,%%ymm1,%%ymm3")
VCASE(vc_alu2, "vpsubq %%ymm0,%%ymm1,%%ymm2\n\tvpaddb %%xmm0,%%xmm1,%%xmm3\n\t"
	       "vpsubw %%ymm2,%%ymm3,%%ymm0\n\tvpor %%xmm0,%%xmm2,%%xmm1\n\t"
	       "vpand %%ymm1,%%ymm3,%%ymm2\n\tvpandn 0x40(%%rdi),%%ymm2,%%ymm3")
VCASE(vc_shuf, "vpshufd $0x93,%%xmm0,%%xmm0\n\tvpshufd $0x4e,(%%rdi),%%ymm1\n\t"
	       "vpshufb %%xmm1,%%xmm2,%%xmm3\n\tvpshufb 0x20(%%rdi),%%ymm2,%%ymm2")
VCASE(vc_movd, "vmovd %%eax,%%xmm0\n\tvmovq %%rax,%%xmm1\n\tvmovd (%%rdi),%%xmm2\n\t"
	       "vmovq 8(%%rdi),%%xmm3\n\tvmovq %%xmm3,0x30(%%rdi)\n\t"
	       "vmovd %%xmm2,0x48(%%rdi)\n\tvmovd %%xmm1,%%eax")
VCASE(vc_lane, "vextracti128 $1,%%ymm1,%%xmm0\n\tvextracti128 $0,%%ymm2,0x10(%%rdi)\n\t"
	       "vinserti128 $1,%%xmm3,%%ymm2,%%ymm1\n\tvinserti128 $0,0x20(%%rdi),%%ymm3,%%ymm2")
VCASE(vc_shift, "vpsrld $7,%%xmm1,%%xmm0\n\tvpslld $25,%%ymm2,%%ymm3\n\t"
		"vpsrad $3,%%ymm0,%%ymm1\n\tvpsrlq $13,%%ymm3,%%ymm2\n\t"
		"vpsllq $60,%%xmm1,%%xmm1\n\tvpsrldq $3,%%ymm2,%%ymm0\n\tvpslldq $5,%%xmm3,%%xmm3")
VCASE(vc_unpck, "vpunpckldq %%xmm1,%%xmm0,%%xmm2\n\tvpunpckhdq %%ymm1,%%ymm2,%%ymm3\n\t"
		"vpunpcklqdq (%%rdi),%%ymm3,%%ymm0\n\tvpunpckhqdq %%ymm0,%%ymm1,%%ymm1")
VCASE(vc_vzu, "vzeroupper")
/* The SSSE3 BLAKE2s instructions: legacy SSE keeps bits 128 and up. */
VCASE(vc_sse, "pxor %%xmm1,%%xmm0\n\tpaddd %%xmm2,%%xmm3\n\tpshufd $0x39,%%xmm1,%%xmm1\n\t"
	      "pshufb %%xmm2,%%xmm0\n\tpsrld $8,%%xmm3\n\tpslld $20,%%xmm2\n\tpor %%xmm3,%%xmm2\n\t"
	      "punpckldq %%xmm1,%%xmm0\n\tpunpcklqdq %%xmm3,%%xmm1\n\tpaddq %%xmm0,%%xmm3\n\t"
	      "movd %%eax,%%xmm1\n\tmovd (%%rdi),%%xmm2\n\tpaddd 0x40(%%rdi),%%xmm0\n\t"
	      "movdqa %%xmm0,%%xmm3\n\tmovq %%xmm3,%%rax")
/* AVX-512: vprord, vpermi2d, the high registers, masking, broadcast. */
VCASE(vc_evex, "vprord $0x10,%%xmm3,%%xmm3\n\tvprord $7,%%xmm1,%%xmm1\n\t"
	       "vprold $5,%%zmm2,%%zmm2\n\tvprorq $13,%%ymm0,%%ymm0\n\t"
	       "vpermi2d %%ymm1,%%ymm2,%%ymm3\n\tvpermi2d (%%rdi),%%zmm16,%%zmm17\n\t"
	       "vpermt2d %%zmm1,%%zmm16,%%zmm0\n\tvpaddd %%xmm16,%%xmm17,%%xmm16\n\t"
	       "vprord $3,0x40(%%rdi),%%zmm1")
VCASE(vc_mask, "vpaddd %%zmm1,%%zmm2,%%zmm3%{%%k1%}\n\t"
	       "vpxord %%zmm1,%%zmm2,%%zmm0%{%%k1%}%{z%}\n\t"
	       "vmovdqu32 (%%rdi),%%zmm16%{%%k1%}%{z%}\n\t"
	       "vmovdqu32 %%zmm17,0x40(%%rdi)%{%%k1%}\n\t"
	       "vpxorq 8(%%rdi)%{1to8%},%%zmm2,%%zmm2\n\t"
	       "vpermi2d %%ymm1,%%ymm0,%%ymm17%{%%k1%}\n\t"
	       "vmovdqu8 0x80(%%rdi),%%zmm1%{%%k1%}\n\t"
	       "vpaddq 0x10(%%rdi),%%xmm1,%%xmm0%{%%k1%}%{z%}\n\t"
	       "kmovw %%k1,%%eax")

struct vcase {
	const char *name;
	user_fn fn;
	bool evex;
};

static const struct vcase vcases[] = {
	{ "vec-vmovdqu-vmovdqa", vc_mov, false },
	{ "vec-vpaddd-vpxor-vpaddq", vc_alu, false },
	{ "vec-vpsub-vpand-vpor", vc_alu2, false },
	{ "vec-vpshufd-vpshufb", vc_shuf, false },
	{ "vec-vmovd-vmovq", vc_movd, false },
	{ "vec-vextracti128-vinserti128", vc_lane, false },
	{ "vec-shift-imm", vc_shift, false },
	{ "vec-vpunpck", vc_unpck, false },
	{ "vec-vzeroupper", vc_vzu, false },
	{ "vec-sse-ssse3", vc_sse, false },
	{ "vec-evex-vprord-vpermi2d", vc_evex, true },
	{ "vec-evex-masked", vc_mask, true },
};

static u64 prng_state = 0x9e3779b97f4a7c15ULL;
static u64 prng(void)
{
	prng_state ^= prng_state << 13;
	prng_state ^= prng_state >> 7;
	prng_state ^= prng_state << 17;
	return prng_state;
}

static void fill(void *p, size_t n)
{
	u8 *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (u8)(prng() >> 24);
}

/* First differing byte of two results, or -1. */
static long vio_diff(const struct vio *a, const struct vio *b)
{
	const u8 *x = (const u8 *)a, *y = (const u8 *)b;
	for (size_t i = 0; i < sizeof(*a); i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

static void vector_tests(void)
{
	u32 a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	bool avx = c & (1u << 28);
	cpuid(7, 0, &a, &b, &c, &d);
	bool avx2 = b & (1u << 5);
	bool avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31));
	cpuid(0xd, 0, &a, &b, &c, &d);
	if ((a & 0xe0) != 0xe0)
		avx512 = false;
	if (!avx || !avx2 || !(a & 4)) {
		printf("INFO no AVX2: vector tests skipped\n");
		for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++)
			printf("TEST %s SKIP: no AVX2\n", vcases[i].name);
		return;
	}
	u32 xcr0 = 7 | (avx512 ? 0xe0 : 0);
	__asm__ volatile("xsetbv" : : "a"(xcr0), "d"(0u), "c"(0u));
	TEST_BEGIN("vec-xcr0");
	expect(xgetbv(0) == xcr0, "XCR0 %llx, want %x", (unsigned long long)xgetbv(0), xcr0);
	g_avx512 = avx512;

	for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		const struct vcase *vc = &vcases[i];
		if (vc->evex && !avx512) {
			test_end();
			printf("TEST %s SKIP: no AVX-512 (F, VL, BW)\n", vc->name);
			continue;
		}
		TEST_BEGIN(vc->name);
		fill(&vio0, sizeof(vio0));
		memset(vio0.out, 0, sizeof(vio0.out));
		vio0.k1_out = vio0.rax_out = 0;
		memcpy(&vio3, &vio0, sizeof(vio3));
		vc->fn((u64)&vio0); /* ring 0: emulated by the VMM on PVM */
		struct user_result res;
		bool ok = user_call(vc->fn, (u64)&vio3, &res); /* ring 3: native */
		if (!expect(ok, "ring 3 faulted: %s at %llx", exception_name(res.vector),
			    (unsigned long long)res.rip))
			continue;
		long off = vio_diff(&vio0, &vio3);
		expect(off < 0, "ring 0 and ring 3 differ at byte %ld (ring 0 %02x, ring 3 %02x)",
		       off, off < 0 ? 0 : ((u8 *)&vio0)[off], off < 0 ? 0 : ((u8 *)&vio3)[off]);
	}
	test_end();

	/*
	 * Cost in ring 0 of vc_alu: 6 vector loads (zmm or ymm) and k1, 6
	 * instructions, 6 stores and k1, split in two runs by the scalar movs.
	 */
	u64 iters = cmdline_u64("veciters", 50);
	if (iters) {
		u64 t0 = rdtsc();
		for (u64 i = 0; i < iters; i++)
			vc_alu((u64)&vio0);
		u64 ns = tsc_to_ns(rdtsc() - t0) / iters;
		printf("BENCH ring0_vec_alu_ns=%llu vec_insns=%u iters=%llu\n",
		       (unsigned long long)ns, avx512 ? 20u : 14u, (unsigned long long)iters);
	}
}

int guest_main(const char *cmdline)
{
	u32 a, b, c, d;
	(void)cmdline;
	cpuid(1, 0, &a, &b, &c, &d);
	bool has_xsave = c & (1u << 26);

	if (c & (1u << 23)) {
		TEST_BEGIN("popcnt");
		u64 src = 0xf0f0000000000301ULL, dst = 0;
		u8 zf;
		__asm__ volatile("popcnt %2, %0; setz %1" : "=r"(dst), "=q"(zf) : "r"(src) : "cc");
		expect(dst == 11 && !zf, "popcnt gave %llu zf=%u", (unsigned long long)dst, zf);
		src = 0;
		__asm__ volatile("popcnt %2, %0; setz %1" : "=r"(dst), "=q"(zf) : "r"(src) : "cc");
		expect(dst == 0 && zf, "popcnt(0) gave %llu zf=%u", (unsigned long long)dst, zf);
		u32 s32 = 0xffffffffu, d32 = 5;
		__asm__ volatile("popcnt %1, %0" : "=r"(d32) : "m"(s32) : "cc");
		expect(d32 == 32, "popcnt m32 gave %u", d32);
	}

	if (c & (1u << 13)) {
		TEST_BEGIN("cmpxchg16b");
		pair[0] = 1;
		pair[1] = 2;
		u64 lo = 1, hi = 2;
		u8 zf;
		__asm__ volatile("lock cmpxchg16b %1; setz %0"
				 : "=q"(zf), "+m"(pair), "+a"(lo), "+d"(hi)
				 : "b"(10ULL), "c"(20ULL) : "cc", "memory");
		expect(zf && pair[0] == 10 && pair[1] == 20, "cmpxchg16b swap");
		lo = 7;
		__asm__ volatile("lock cmpxchg16b %1; setz %0"
				 : "=q"(zf), "+m"(pair), "+a"(lo), "+d"(hi)
				 : "b"(30ULL), "c"(40ULL) : "cc", "memory");
		expect(!zf && lo == 10 && hi == 20 && pair[0] == 10, "cmpxchg16b mismatch");
	} else {
		printf("INFO cmpxchg16b hidden by CPUID: not tested\n");
	}

	TEST_BEGIN("lsl");
	{
		u64 limit = 0, sel = 0x2b; /* user data: flat, 4 GiB */
		u8 zf;
		__asm__ volatile("lsl %2, %0; setz %1" : "=r"(limit), "=q"(zf) : "r"(sel) : "cc");
		expect(zf && limit == 0xffffffffULL, "lsl 0x2b gave zf=%u limit=%llx", zf,
		       (unsigned long long)limit);
		sel = 0xfff8; /* beyond the GDT */
		limit = 0x1234;
		__asm__ volatile("lsl %2, %0; setz %1" : "+r"(limit), "=q"(zf) : "r"(sel) : "cc");
		expect(!zf && limit == 0x1234, "lsl of a bad selector set ZF");
	}

	if (!has_xsave) {
		printf("INFO no XSAVE: xsave tests skipped\n");
		return 0;
	}
	write_cr4(read_cr4() | (1u << 18) | (1u << 9)); /* OSXSAVE, OSFXSR */

	TEST_BEGIN("xgetbv-xsetbv");
	u64 xcr0 = xgetbv(0);
	expect((xcr0 & 3) == 3 || xcr0 == 1, "initial XCR0 %llx", (unsigned long long)xcr0);
	__asm__ volatile("xsetbv" : : "a"(3u), "d"(0u), "c"(0u));
	xcr0 = xgetbv(0);
	expect(xcr0 == 3, "XCR0 after xsetbv(3) = %llx", (unsigned long long)xcr0);

	TEST_BEGIN("mxcsr");
	ldmxcsr(0x1f80 | (3u << 13)); /* round toward zero */
	expect(stmxcsr() == (0x1f80 | (3u << 13)), "stmxcsr %x", stmxcsr());
	ldmxcsr(0x1f80);
	expect(stmxcsr() == 0x1f80, "stmxcsr %x", stmxcsr());

	TEST_BEGIN("xsave-xrstor");
	memset(area, 0xee, sizeof(area));
	memset(area + 512, 0, 64); /* header */
	ldmxcsr(0x1f80 | (1u << 13));
	__asm__ volatile("xsave64 %0" : "+m"(area) : "a"(3u), "d"(0u) : "memory");
	u32 saved;
	memcpy(&saved, area + 24, 4);
	expect(saved == (0x1f80 | (1u << 13)), "xsave MXCSR %x", saved);
	expect((rd64(area + 512) & ~3ULL) == 0, "XSTATE_BV %llx", (unsigned long long)rd64(area + 512));
	expect(rd64(area + 520) == 0, "xsave wrote XCOMP_BV");
	u32 want = 0x1f80 | (2u << 13);
	memcpy(area + 24, &want, 4);
	__asm__ volatile("xrstor64 %0" : : "m"(area), "a"(3u), "d"(0u) : "memory");
	expect(stmxcsr() == want, "xrstor loaded MXCSR %x, want %x", stmxcsr(), want);
	/* a reserved header byte makes xrstor #GP: not tested (fatal here) */

	TEST_BEGIN("xsaveopt");
	memset(area2, 0, sizeof(area2));
	__asm__ volatile("xsaveopt64 %0" : "+m"(area2) : "a"(3u), "d"(0u) : "memory");
	memcpy(&saved, area2 + 24, 4);
	expect(saved == want, "xsaveopt MXCSR %x", saved);

	cpuid(0xd, 1, &a, &b, &c, &d);
	if (a & 2) {
		TEST_BEGIN("xsavec-compacted");
		memset(area2, 0, sizeof(area2));
		__asm__ volatile("xsavec64 %0" : "+m"(area2) : "a"(3u), "d"(0u) : "memory");
		u64 comp = rd64(area2 + 520);
		expect(comp == ((1ULL << 63) | 3), "XCOMP_BV %llx", (unsigned long long)comp);
		ldmxcsr(0x1f80);
		/* the compacted image restores the saved MXCSR */
		memcpy(area2 + 24, &want, 4);
		u64 bv = rd64(area2 + 512) | 2;
		memcpy(area2 + 512, &bv, 8);
		__asm__ volatile("xrstor64 %0" : : "m"(area2), "a"(3u), "d"(0u) : "memory");
		expect(stmxcsr() == want, "compacted xrstor MXCSR %x", stmxcsr());
	} else {
		printf("INFO no XSAVEC: compacted form not tested\n");
	}
	ldmxcsr(0x1f80);
	vector_tests();
	return 0;
}
