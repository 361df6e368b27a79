/*
 * SSE, AVX and AVX-512 integer instructions for a guest whose ring 0 runs
 * through KVM's instruction emulator (PVM), which has none of them: kvm_pvm
 * shows the host's AVX/AVX-512 CPUID bits whatever the VMM sets, so a stock
 * Linux kernel runs vector code in ring 0 (BLAKE2s for its RNG:
 * arch/x86/crypto/blake2s-core.S, SSSE3 and AVX-512VL variants). We run the
 * instructions that code needs, plus their close relatives, against the
 * vCPU's XSAVE image (KVM_GET_XSAVE2/KVM_SET_XSAVE: legacy XMM, YMM_Hi128,
 * opmask, ZMM_Hi256, Hi16_ZMM), following Intel SDM vol. 2 (each
 * instruction's operation), vol. 1 chapters 14-15 (VEX zeroing of the
 * upper bits, EVEX masking) and vol. 2 2.7 (EVEX encoding, #UD
 * conditions). Legacy SSE forms keep bits 128 and up; VEX and EVEX forms
 * zero the destination above their vector length. EVEX merge and zero
 * masking are honoured, with fault suppression on masked-off memory
 * elements; forms we do not implement (broadcast where not listed,
 * embedded rounding, other opcodes) are left unemulated, so hvmm reports
 * them instead of computing a wrong result. After one instruction we go on
 * with the ones that directly follow while they are vector instructions we
 * emulate (at most SIMD_BATCH_MAX), so a BLAKE2s round costs one exit.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm.h"
#include "core/log.h"
#include "x86/insn.h"

#define XSAVE_HDR_OFF 512
#define XSAVE_XMM_OFF 160
#define XFEATURE_MASK_SSE (1ULL << 1)
#define XFEATURE_MASK_YMM (1ULL << 2)
#define XFEATURE_MASK_OPMASK (1ULL << 5)
#define XFEATURE_MASK_ZMM_HI256 (1ULL << 6)
#define XFEATURE_MASK_HI16_ZMM (1ULL << 7)
#define XFEATURE_MASK_AVX512 \
	(XFEATURE_MASK_OPMASK | XFEATURE_MASK_ZMM_HI256 | XFEATURE_MASK_HI16_ZMM)
#define X86_CR0_EM (1ULL << 2)
#define X86_CR0_TS (1ULL << 3)
#define X86_CR4_OSFXSR (1ULL << 9)
#define X86_CR4_OSXSAVE (1ULL << 18)
#define X86_UD 6
#define X86_NM 7
#define X86_GP 13
#define X86_PF 14
#define PF_P 0x1
#define PF_W 0x2

#define SIMD_BATCH_MAX 256

struct vstate {
	uint8_t z[32][64]; /* zmm0-31; xmm/ymm are the low 16/32 bytes */
	uint64_t k[8];
	uint64_t xcr0;
	unsigned max_vl;   /* bytes: 16, 32 or 64 as XCR0 enables */
	uint8_t *kbuf;     /* KVM's image, written back with our changes */
	uint32_t off_ymm, off_k, off_zhi, off_z16;
	bool dirty;
};

#define SIMD_TLB_SIZE 8

struct tlb_entry {
	uint64_t vpage;  /* linear address >> 12 */
	uint8_t *hva;    /* the page in hvmm, NULL if the entry is empty */
	bool writable;
};

struct ctx {
	struct kvm_vcpu *v;
	struct tlb_entry tlb[SIMD_TLB_SIZE];
	unsigned tlb_next;
	struct x86_regs *r;
	struct x86_sregs s;
	struct vstate st;
	unsigned vector; /* fault to inject (STEP_FAULT) */
	bool has_err;
	uint32_t err;
	uint64_t cr2;
};

enum step { STEP_DONE, STEP_UNSUPPORTED, STEP_FAULT };

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* A component's offset if it lies inside KVM's image, else 0 (absent). */
static uint32_t comp_off(struct kvm_vcpu *v, unsigned comp, size_t len, size_t size)
{
	uint32_t off = kvm_pvm_xsave_offset(v, comp);
	return off >= 576 && off + len <= size ? off : 0;
}

static int vstate_load(struct kvm_vcpu *v, struct vstate *st)
{
	size_t size = kvm_pvm_xsave_size(v);
	memset(st, 0, sizeof(*st));
	st->kbuf = calloc(1, size);
	if (!st->kbuf)
		return -ENOMEM;
	int ret = kvm_pvm_get_xsave(v, st->kbuf);
	if (ret == 0)
		ret = kvm_pvm_get_xcr0(v, &st->xcr0);
	if (ret < 0)
		return ret;
	st->off_ymm = comp_off(v, 2, 256, size);
	st->off_k = comp_off(v, 5, 64, size);
	st->off_zhi = comp_off(v, 6, 512, size);
	st->off_z16 = comp_off(v, 7, 1024, size);
	if (!st->off_ymm)
		st->xcr0 &= ~(XFEATURE_MASK_YMM | XFEATURE_MASK_AVX512);
	if (!st->off_k || !st->off_zhi || !st->off_z16)
		st->xcr0 &= ~XFEATURE_MASK_AVX512;
	/* A component absent from XSTATE_BV is in its initial state: zero. */
	uint64_t bv = rd64(st->kbuf + XSAVE_HDR_OFF) & (st->xcr0 | XFEATURE_MASK_SSE);
	for (unsigned i = 0; i < 16; i++) {
		if (bv & XFEATURE_MASK_SSE)
			memcpy(st->z[i], st->kbuf + XSAVE_XMM_OFF + 16 * i, 16);
		if (bv & XFEATURE_MASK_YMM)
			memcpy(st->z[i] + 16, st->kbuf + st->off_ymm + 16 * i, 16);
		if (bv & XFEATURE_MASK_ZMM_HI256)
			memcpy(st->z[i] + 32, st->kbuf + st->off_zhi + 32 * i, 32);
		if (bv & XFEATURE_MASK_HI16_ZMM)
			memcpy(st->z[16 + i], st->kbuf + st->off_z16 + 64 * i, 64);
	}
	if (bv & XFEATURE_MASK_OPMASK)
		memcpy(st->k, st->kbuf + st->off_k, 64);
	st->max_vl = (st->xcr0 & XFEATURE_MASK_AVX512) == XFEATURE_MASK_AVX512 ? 64
		     : (st->xcr0 & XFEATURE_MASK_YMM) ? 32 : 16;
	return 0;
}

static int vstate_store(struct kvm_vcpu *v, struct vstate *st)
{
	uint64_t en = st->xcr0 & (XFEATURE_MASK_YMM | XFEATURE_MASK_AVX512);
	for (unsigned i = 0; i < 16; i++) {
		memcpy(st->kbuf + XSAVE_XMM_OFF + 16 * i, st->z[i], 16);
		if (en & XFEATURE_MASK_YMM)
			memcpy(st->kbuf + st->off_ymm + 16 * i, st->z[i] + 16, 16);
		if (en & XFEATURE_MASK_ZMM_HI256)
			memcpy(st->kbuf + st->off_zhi + 32 * i, st->z[i] + 32, 32);
		if (en & XFEATURE_MASK_HI16_ZMM)
			memcpy(st->kbuf + st->off_z16 + 64 * i, st->z[16 + i], 64);
	}
	if (en & XFEATURE_MASK_OPMASK)
		memcpy(st->kbuf + st->off_k, st->k, 64);
	uint64_t bv = rd64(st->kbuf + XSAVE_HDR_OFF) | XFEATURE_MASK_SSE | en;
	memcpy(st->kbuf + XSAVE_HDR_OFF, &bv, 8);
	return kvm_pvm_set_xsave(v, st->kbuf);
}

static enum step fault(struct ctx *c, unsigned vector, bool has_err, uint32_t err,
		       uint64_t cr2)
{
	c->vector = vector;
	c->has_err = has_err;
	c->err = err;
	c->cr2 = cr2;
	return STEP_FAULT;
}

/*
 * Guest linear memory through a small cache of page translations, valid
 * for one exit (the guest cannot run meanwhile); a store empties it, in case
 * it changed a page table. Every page is checked before any byte moves, so
 * a fault leaves memory untouched. Pages that are not RAM (MMIO): not
 * emulated.
 */
static enum step lin_page(struct ctx *c, uint64_t la, bool write, uint8_t **hva)
{
	uint64_t vpage = la >> 12;
	for (unsigned i = 0; i < SIMD_TLB_SIZE; i++) {
		struct tlb_entry *e = &c->tlb[i];
		if (e->hva && e->vpage == vpage && (!write || e->writable)) {
			*hva = e->hva + (la & 0xfff);
			return STEP_DONE;
		}
	}
	struct kvm_translation tr = { .linear_address = la };
	if (ioctl(c->v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return fault(c, X86_PF, true, write ? PF_W : 0, la);
	if (write && !tr.writeable)
		return fault(c, X86_PF, true, PF_P | PF_W, la);
	uint8_t *page = kvm_gpa_to_hva(c->v->k, tr.physical_address & ~0xfffULL, 4096);
	if (!page)
		return STEP_UNSUPPORTED;
	struct tlb_entry *e = &c->tlb[c->tlb_next++ % SIMD_TLB_SIZE];
	e->vpage = vpage;
	e->hva = page;
	e->writable = tr.writeable;
	*hva = page + (la & 0xfff);
	return STEP_DONE;
}

static enum step lin_access(struct ctx *c, uint64_t la, void *buf, size_t len, bool write)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t done = 0; done < len;) {
			uint64_t a = la + done;
			size_t chunk = 4096 - (a & 0xfff);
			if (chunk > len - done)
				chunk = len - done;
			uint8_t *p;
			enum step s = lin_page(c, a, write, &p);
			if (s != STEP_DONE)
				return s;
			if (pass == 1) {
				if (write)
					memcpy(p, (const uint8_t *)buf + done, chunk);
				else
					memcpy((uint8_t *)buf + done, p, chunk);
			}
			done += chunk;
		}
	}
	if (write)
		memset(c->tlb, 0, sizeof(c->tlb));
	return STEP_DONE;
}

static enum step mem_read(struct ctx *c, uint64_t la, void *buf, size_t len)
{
	return lin_access(c, la, buf, len, false);
}

static enum step mem_write(struct ctx *c, uint64_t la, const void *buf, size_t len)
{
	return lin_access(c, la, (void *)buf, len, true);
}

/* Whether [la, la+len) is writable RAM, without writing (masked stores). */
static enum step mem_check_write(struct ctx *c, uint64_t la, size_t len)
{
	for (size_t done = 0; done < len;) {
		uint64_t a = la + done;
		size_t chunk = 4096 - (a & 0xfff);
		if (chunk > len - done)
			chunk = len - done;
		uint8_t *p;
		enum step s = lin_page(c, a, true, &p);
		if (s != STEP_DONE)
			return s;
		done += chunk;
	}
	return STEP_DONE;
}

static bool masked(const struct x86_insn *in)
{
	return in->enc == X86_ENC_EVEX && in->evex_aaa;
}

static bool mask_bit(const struct ctx *c, const struct x86_insn *in, unsigned e)
{
	return !masked(in) || ((c->st.k[in->evex_aaa] >> e) & 1);
}

/* Vector length in bytes of a VEX/EVEX instruction (legacy SSE: 16). */
static unsigned vlen(const struct x86_insn *in)
{
	return in->enc == X86_ENC_LEGACY ? 16 : 16u << in->vl;
}

/*
 * The rm operand, len bytes, into buf: a register, or memory with #GP on
 * misalignment when `align`, EVEX broadcast of one element of esize bytes
 * when bcast, and masked-off elements not read (fault suppression).
 */
static enum step rd_rm(struct ctx *c, const struct x86_insn *in, uint8_t *buf, unsigned len,
		       unsigned esize, bool align, bool bcast)
{
	memset(buf, 0, 64);
	if (!in->mem) {
		memcpy(buf, c->st.z[x86_insn_vrm(in)], len);
		return STEP_DONE;
	}
	uint64_t ea;
	if (!kvm_pvm_insn_ea(c->v, c->r, in, &ea))
		return STEP_UNSUPPORTED;
	if (in->enc == X86_ENC_EVEX && in->evex_b) {
		if (!bcast)
			return STEP_UNSUPPORTED;
		enum step s = mem_read(c, ea, buf, esize);
		for (unsigned o = esize; s == STEP_DONE && o < len; o += esize)
			memcpy(buf + o, buf, esize);
		return s;
	}
	if (align && (ea & (len - 1)))
		return fault(c, X86_GP, true, 0, 0);
	if (!masked(in))
		return mem_read(c, ea, buf, len);
	for (unsigned e = 0; e < len / esize; e++) {
		if (!mask_bit(c, in, e))
			continue;
		enum step s = mem_read(c, ea + e * esize, buf + e * esize, esize);
		if (s != STEP_DONE)
			return s;
	}
	return STEP_DONE;
}

/*
 * Writes a result to vector register d: legacy SSE keeps bits 128 and up;
 * VEX/EVEX zero above len; EVEX masking merges or zeroes per element.
 */
static void wr_reg(struct ctx *c, const struct x86_insn *in, unsigned d, const uint8_t *res,
		   unsigned len, unsigned esize)
{
	uint8_t *z = c->st.z[d & 31];
	c->st.dirty = true;
	if (in->enc == X86_ENC_LEGACY) {
		memcpy(z, res, len);
		return;
	}
	for (unsigned e = 0; e < len / esize; e++) {
		if (mask_bit(c, in, e))
			memcpy(z + e * esize, res + e * esize, esize);
		else if (in->evex_z)
			memset(z + e * esize, 0, esize);
	}
	memset(z + len, 0, 64 - len);
}

/* Stores len bytes to the rm memory operand; masked: selected elements only. */
static enum step wr_mem(struct ctx *c, const struct x86_insn *in, const uint8_t *src,
			unsigned len, unsigned esize, bool align)
{
	uint64_t ea;
	if (!kvm_pvm_insn_ea(c->v, c->r, in, &ea))
		return STEP_UNSUPPORTED;
	if (align && (ea & (len - 1)))
		return fault(c, X86_GP, true, 0, 0);
	if (!masked(in))
		return mem_write(c, ea, src, len);
	for (unsigned e = 0; e < len / esize; e++) { /* fault before any write */
		enum step s = mask_bit(c, in, e) ? mem_check_write(c, ea + e * esize, esize)
						 : STEP_DONE;
		if (s != STEP_DONE)
			return s;
	}
	for (unsigned e = 0; e < len / esize; e++) {
		if (!mask_bit(c, in, e))
			continue;
		enum step s = mem_write(c, ea + e * esize, src + e * esize, esize);
		if (s != STEP_DONE)
			return s;
	}
	return STEP_DONE;
}

static uint64_t get_el(const uint8_t *p, unsigned es)
{
	uint64_t v = 0;
	memcpy(&v, p, es);
	return v;
}

static void put_el(uint8_t *p, unsigned es, uint64_t v)
{
	memcpy(p, &v, es);
}

enum alu_op { ALU_ADD, ALU_SUB, ALU_AND, ALU_ANDN, ALU_OR, ALU_XOR };

static uint64_t alu(enum alu_op op, uint64_t a, uint64_t b)
{
	switch (op) {
	case ALU_ADD: return a + b;
	case ALU_SUB: return a - b;
	case ALU_AND: return a & b;
	case ALU_ANDN: return ~a & b;
	case ALU_OR: return a | b;
	case ALU_XOR: return a ^ b;
	}
	return 0;
}

/* First source register: VEX/EVEX.vvvv, or the destination for legacy SSE. */
static const uint8_t *src1(const struct ctx *c, const struct x86_insn *in)
{
	return c->st.z[in->enc == X86_ENC_LEGACY ? x86_insn_vreg(in) : in->vvvv];
}

/* Legacy SSE memory operands of non-move instructions must be aligned. */
static bool legacy_align(const struct x86_insn *in)
{
	return in->enc == X86_ENC_LEGACY;
}

static enum step do_alu(struct ctx *c, const struct x86_insn *in, enum alu_op op,
			unsigned esize, bool bcast)
{
	uint8_t b[64], res[64];
	unsigned len = vlen(in);
	enum step s = rd_rm(c, in, b, len, esize, legacy_align(in), bcast);
	if (s != STEP_DONE)
		return s;
	const uint8_t *a = src1(c, in);
	for (unsigned o = 0; o < len; o += esize)
		put_el(res + o, esize, alu(op, get_el(a + o, esize), get_el(b + o, esize)));
	wr_reg(c, in, (unsigned)x86_insn_vreg(in), res, len, esize);
	return STEP_DONE;
}

/* pshufb: each byte selects a byte of its own 128-bit lane, or zero. */
static enum step do_pshufb(struct ctx *c, const struct x86_insn *in)
{
	uint8_t b[64], res[64];
	unsigned len = vlen(in);
	enum step s = rd_rm(c, in, b, len, 1, legacy_align(in), false);
	if (s != STEP_DONE)
		return s;
	const uint8_t *a = src1(c, in);
	for (unsigned i = 0; i < len; i++)
		res[i] = (b[i] & 0x80) ? 0 : a[(i & ~15u) + (b[i] & 15)];
	wr_reg(c, in, (unsigned)x86_insn_vreg(in), res, len, 1);
	return STEP_DONE;
}

/* pshufd imm8: dwords of each 128-bit lane picked by 2-bit fields. */
static enum step do_pshufd(struct ctx *c, const struct x86_insn *in)
{
	uint8_t b[64], res[64];
	unsigned len = vlen(in);
	enum step s = rd_rm(c, in, b, len, 4, legacy_align(in), true);
	if (s != STEP_DONE)
		return s;
	for (unsigned lane = 0; lane < len; lane += 16)
		for (unsigned j = 0; j < 4; j++)
			memcpy(res + lane + 4 * j, b + lane + 4 * ((in->imm8 >> (2 * j)) & 3), 4);
	wr_reg(c, in, (unsigned)x86_insn_vreg(in), res, len, 4);
	return STEP_DONE;
}

/* punpck{l,h}{dq,qdq}: interleave the low or high halves of each lane. */
static enum step do_unpck(struct ctx *c, const struct x86_insn *in, unsigned esize, bool high)
{
	uint8_t b[64], res[64];
	unsigned len = vlen(in);
	enum step s = rd_rm(c, in, b, len, esize, legacy_align(in), true);
	if (s != STEP_DONE)
		return s;
	const uint8_t *a = src1(c, in);
	for (unsigned lane = 0; lane < len; lane += 16) {
		unsigned from = lane + (high ? 8 : 0);
		for (unsigned j = 0; j < 8 / esize; j++) {
			memcpy(res + lane + 2 * j * esize, a + from + j * esize, esize);
			memcpy(res + lane + (2 * j + 1) * esize, b + from + j * esize, esize);
		}
	}
	wr_reg(c, in, (unsigned)x86_insn_vreg(in), res, len, esize);
	return STEP_DONE;
}

enum shift_op { SH_SRL, SH_SRA, SH_SLL, SH_ROR, SH_ROL, SH_SRLDQ, SH_SLLDQ };

/*
 * Shift/rotate by imm8 (0F 71-73 groups): destination VEX/EVEX.vvvv, source
 * rm; legacy SSE shifts the rm register in place.
 */
static enum step do_shift(struct ctx *c, const struct x86_insn *in, enum shift_op op,
			  unsigned esize)
{
	uint8_t a[64], res[64];
	unsigned len = vlen(in), bits = 8 * esize, n = in->imm8;
	if (in->enc != X86_ENC_EVEX && in->mem)
		return STEP_UNSUPPORTED; /* memory source: EVEX forms only */
	enum step s = rd_rm(c, in, a, len, esize, false, true);
	if (s != STEP_DONE)
		return s;
	if (op == SH_SRLDQ || op == SH_SLLDQ) {
		memset(res, 0, sizeof(res));
		for (unsigned lane = 0; lane < len; lane += 16)
			for (unsigned i = 0; i < 16; i++) {
				int from = op == SH_SRLDQ ? (int)(i + n) : (int)i - (int)n;
				if (n < 16 && from >= 0 && from < 16)
					res[lane + i] = a[lane + (unsigned)from];
			}
	} else {
		for (unsigned o = 0; o < len; o += esize) {
			uint64_t x = get_el(a + o, esize), y = 0;
			uint64_t sign = (x >> (bits - 1)) & 1;
			unsigned rot = n % bits;
			switch (op) {
			case SH_SRL: y = n >= bits ? 0 : x >> n; break;
			case SH_SLL: y = n >= bits ? 0 : x << n; break;
			case SH_SRA:
				y = n >= bits ? (sign ? ~0ULL : 0) : x >> n;
				if (sign && n && n < bits)
					y |= ~0ULL << (bits - n);
				break;
			case SH_ROR: y = rot ? (x >> rot) | (x << (bits - rot)) : x; break;
			case SH_ROL: y = rot ? (x << rot) | (x >> (bits - rot)) : x; break;
			default: break;
			}
			put_el(res + o, esize, y);
		}
	}
	unsigned d = in->enc == X86_ENC_LEGACY ? (unsigned)x86_insn_vrm(in) : in->vvvv;
	wr_reg(c, in, d, res, len, esize);
	return STEP_DONE;
}

/*
 * vpermi2d/q (index in the destination) and vpermt2d/q (index in vvvv):
 * each element picks one of the two-register table {first, rm}.
 */
static enum step do_perm2(struct ctx *c, const struct x86_insn *in, bool t2)
{
	uint8_t b[64], res[64];
	unsigned es = in->rex_w ? 8 : 4, len = vlen(in), n = len / es;
	enum step s = rd_rm(c, in, b, len, es, false, true);
	if (s != STEP_DONE)
		return s;
	unsigned d = (unsigned)x86_insn_vreg(in);
	const uint8_t *idx = t2 ? c->st.z[in->vvvv] : c->st.z[d];
	const uint8_t *tab = t2 ? c->st.z[d] : c->st.z[in->vvvv];
	for (unsigned e = 0; e < n; e++) {
		unsigned sel = (unsigned)get_el(idx + e * es, es) & (2 * n - 1);
		memcpy(res + e * es, sel < n ? tab + sel * es : b + (sel - n) * es, es);
	}
	wr_reg(c, in, d, res, len, es);
	return STEP_DONE;
}

/* vmovdq{a,u}{,8,16,32,64}, movdq{a,u}: 6F loads into reg, 7F stores reg. */
static enum step do_mov(struct ctx *c, const struct x86_insn *in, bool store, unsigned esize,
			bool align)
{
	unsigned len = vlen(in);
	uint8_t buf[64];
	if (!store) {
		enum step s = rd_rm(c, in, buf, len, esize, align, false);
		if (s == STEP_DONE)
			wr_reg(c, in, (unsigned)x86_insn_vreg(in), buf, len, esize);
		return s;
	}
	memcpy(buf, c->st.z[x86_insn_vreg(in)], len);
	if (!in->mem) {
		wr_reg(c, in, (unsigned)x86_insn_vrm(in), buf, len, esize);
		return STEP_DONE;
	}
	if (in->evex_z || in->evex_b)
		return fault(c, X86_UD, false, 0, 0);
	return wr_mem(c, in, buf, len, esize, align);
}

/* movd/movq between a GPR or memory and the low element of a register. */
static enum step do_movd(struct ctx *c, const struct x86_insn *in, bool to_vec, unsigned size)
{
	uint8_t buf[64];
	memset(buf, 0, sizeof(buf));
	if (to_vec) {
		if (in->mem) {
			uint64_t ea;
			if (!kvm_pvm_insn_ea(c->v, c->r, in, &ea))
				return STEP_UNSUPPORTED;
			enum step s = mem_read(c, ea, buf, size);
			if (s != STEP_DONE)
				return s;
		} else {
			put_el(buf, size, x86_gpr(c->r, x86_insn_rm_reg(in)));
		}
		/* Legacy movd/movq zero bits 32/64..127 too; they keep 128+. */
		wr_reg(c, in, (unsigned)x86_insn_vreg(in), buf, 16, 16);
		return STEP_DONE;
	}
	memcpy(buf, c->st.z[x86_insn_vreg(in)], size);
	if (!in->mem) {
		x86_set_gpr(c->r, x86_insn_rm_reg(in), get_el(buf, size)); /* zero-extends */
		return STEP_DONE;
	}
	uint64_t ea;
	if (!kvm_pvm_insn_ea(c->v, c->r, in, &ea))
		return STEP_UNSUPPORTED;
	return mem_write(c, ea, buf, size);
}

/* movq xmm/m64 -> xmm (F3 0F 7E) and xmm -> xmm/m64 (66 0F D6). */
static enum step do_movq(struct ctx *c, const struct x86_insn *in, bool store)
{
	uint8_t buf[64];
	memset(buf, 0, sizeof(buf));
	if (store && in->mem) {
		uint64_t ea;
		if (!kvm_pvm_insn_ea(c->v, c->r, in, &ea))
			return STEP_UNSUPPORTED;
		return mem_write(c, ea, c->st.z[x86_insn_vreg(in)], 8);
	}
	if (store) {
		memcpy(buf, c->st.z[x86_insn_vreg(in)], 8);
		wr_reg(c, in, (unsigned)x86_insn_vrm(in), buf, 16, 16);
		return STEP_DONE;
	}
	enum step s = rd_rm(c, in, buf, 8, 8, false, false);
	if (s == STEP_DONE)
		wr_reg(c, in, (unsigned)x86_insn_vreg(in), buf, 16, 16);
	return s;
}

/*
 * vextracti128 / vextracti32x4 (39) and vinserti128 / vinserti32x4 (38):
 * a 128-bit lane chosen by imm8.
 */
static enum step do_lane(struct ctx *c, const struct x86_insn *in, bool insert)
{
	unsigned len = vlen(in), lane = (in->imm8 & (len / 16 - 1)) * 16;
	uint8_t buf[64];
	if (insert) {
		uint8_t b[64];
		enum step s = rd_rm(c, in, b, 16, 4, false, false);
		if (s != STEP_DONE)
			return s;
		memcpy(buf, c->st.z[in->vvvv], len);
		memcpy(buf + lane, b, 16);
		wr_reg(c, in, (unsigned)x86_insn_vreg(in), buf, len, 4);
		return STEP_DONE;
	}
	memset(buf, 0, sizeof(buf));
	memcpy(buf, c->st.z[x86_insn_vreg(in)] + lane, 16);
	if (!in->mem) {
		wr_reg(c, in, (unsigned)x86_insn_vrm(in), buf, 16, 4);
		return STEP_DONE;
	}
	if (in->evex_z)
		return fault(c, X86_UD, false, 0, 0);
	return wr_mem(c, in, buf, 16, 4, false);
}

/* vzeroupper / vzeroall: registers 0-15 only in 64-bit mode. */
static enum step do_vzero(struct ctx *c, bool all)
{
	for (unsigned i = 0; i < 16; i++)
		memset(c->st.z[i] + (all ? 0 : 16), 0, all ? 64 : 48);
	c->st.dirty = true;
	return STEP_DONE;
}

/* kmov{b,w,d,q} (VEX 0F 90-93). size in bytes from pp and W. */
static enum step do_kmov(struct ctx *c, const struct x86_insn *in)
{
	static const unsigned sz90[4][2] = { { 2, 8 }, { 1, 4 }, { 0, 0 }, { 0, 0 } };
	static const unsigned sz92[4][2] = { { 2, 0 }, { 1, 0 }, { 0, 0 }, { 4, 8 } };
	uint8_t op = in->opcode;
	unsigned size = (op <= 0x91 ? sz90 : sz92)[in->pp][in->rex_w];
	if (!size || in->vl || in->vvvv)
		return STEP_UNSUPPORTED;
	uint64_t mask = size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
	unsigned kreg = in->reg, krm = in->rm;
	uint64_t val = 0;
	switch (op) {
	case 0x90: /* k <- k/m */
		if (in->mem) {
			uint64_t ea;
			if (!kvm_pvm_insn_ea(c->v, c->r, in, &ea))
				return STEP_UNSUPPORTED;
			enum step s = mem_read(c, ea, &val, size);
			if (s != STEP_DONE)
				return s;
		} else {
			val = c->st.k[krm];
		}
		c->st.k[kreg] = val & mask;
		break;
	case 0x91: /* m <- k */
		if (!in->mem)
			return STEP_UNSUPPORTED;
		{
			uint64_t ea;
			val = c->st.k[kreg] & mask;
			if (!kvm_pvm_insn_ea(c->v, c->r, in, &ea))
				return STEP_UNSUPPORTED;
			return mem_write(c, ea, &val, size);
		}
	case 0x92: /* k <- r */
		if (in->mem)
			return STEP_UNSUPPORTED;
		c->st.k[kreg] = x86_gpr(c->r, x86_insn_rm_reg(in)) & mask;
		break;
	case 0x93: /* r <- k */
		if (in->mem)
			return STEP_UNSUPPORTED;
		x86_set_gpr(c->r, x86_insn_reg(in), c->st.k[krm] & mask);
		return STEP_DONE;
	}
	c->st.dirty = true;
	return STEP_DONE;
}

/* 0F 71/72/73 group members by ModRM.reg; esize 0 if not emulated. */
static enum shift_op shift_kind(const struct x86_insn *in, unsigned *esize)
{
	bool evex = in->enc == X86_ENC_EVEX;
	unsigned q = in->rex_w ? 8 : 4;
	*esize = 0;
	switch (in->opcode) {
	case 0x72:
		switch (in->reg) {
		case 0: if (evex) *esize = q; return SH_ROR;
		case 1: if (evex) *esize = q; return SH_ROL;
		case 2: *esize = evex ? (in->rex_w ? 0 : 4) : 4; return SH_SRL;
		case 4: *esize = evex ? q : 4; return SH_SRA;
		case 6: *esize = evex ? (in->rex_w ? 0 : 4) : 4; return SH_SLL;
		}
		break;
	case 0x73:
		if (evex && in->evex_aaa)
			break; /* byte shifts and masking: not emulated */
		switch (in->reg) {
		case 2: *esize = 8; return SH_SRL;
		case 3: *esize = 16; return SH_SRLDQ;
		case 6: *esize = 8; return SH_SLL;
		case 7: *esize = 16; return SH_SLLDQ;
		}
		break;
	}
	return SH_SRL;
}

/*
 * Which instruction this is, with its #UD checks; STEP_UNSUPPORTED for
 * anything not emulated (then nothing has changed).
 */
static enum step exec_one(struct ctx *c, struct x86_insn *in)
{
	bool leg = in->enc == X86_ENC_LEGACY, vex = in->enc == X86_ENC_VEX;
	bool evex = in->enc == X86_ENC_EVEX;
	uint8_t op = in->opcode;

	if (in->map == 0 || (!in->has_modrm && !(vex && op == 0x77)))
		return STEP_UNSUPPORTED;
	if (leg && in->pp != X86_PP_66 && in->pp != X86_PP_F3)
		return STEP_UNSUPPORTED; /* MMX and F2 forms */
	if (evex && ((!in->mem && in->evex_b) || (in->evex_z && !in->evex_aaa)))
		return STEP_UNSUPPORTED; /* rounding control; zeroing without mask: #UD */

	/* Availability (SDM vol. 2 2.8 exception classes): #UD, then #NM. */
	uint64_t xcr0 = c->st.xcr0;
	bool ok = leg ? !(c->s.cr0 & X86_CR0_EM) && (c->s.cr4 & X86_CR4_OSFXSR)
		      : (c->s.cr4 & X86_CR4_OSXSAVE) && (xcr0 & 6) == 6;
	if (ok && evex)
		ok = (xcr0 & XFEATURE_MASK_AVX512) == XFEATURE_MASK_AVX512;
	if (ok && vlen(in) > c->st.max_vl)
		ok = false;

	unsigned q = in->rex_w ? 8 : 4; /* EVEX d/q element size */
	bool noidx = leg || in->vvvv == 0; /* vvvv must be 1111b where unused */

#define CHECK_OK()                                                    \
	do {                                                          \
		if (!ok)                                              \
			return fault(c, X86_UD, false, 0, 0);         \
		if (c->s.cr0 & X86_CR0_TS)                            \
			return fault(c, X86_NM, false, 0, 0);         \
	} while (0)

	if (in->map == 1 && vex && op == 0x77 && in->pp == X86_PP_NONE) {
		CHECK_OK();
		return do_vzero(c, in->vl == 1);
	}
	if (in->map == 1 && vex && op >= 0x90 && op <= 0x93) {
		if ((xcr0 & XFEATURE_MASK_AVX512) != XFEATURE_MASK_AVX512)
			ok = false;
		CHECK_OK();
		return do_kmov(c, in);
	}
	if (in->map == 1 && in->pp == X86_PP_66) {
		switch (op) {
		case 0x6f: case 0x7f: /* movdqa, vmovdqa, vmovdqa32/64 */
			if (!noidx)
				return STEP_UNSUPPORTED;
			CHECK_OK();
			return do_mov(c, in, op == 0x7f, evex ? q : 16, in->mem);
		case 0x6e: case 0x7e: /* movd/movq r/m <-> xmm */
			if (!noidx || in->vl || masked(in) || in->evex_b)
				return STEP_UNSUPPORTED;
			CHECK_OK();
			x86_insn_evex_disp8n(in, in->rex_w ? 8 : 4);
			return do_movd(c, in, op == 0x6e, in->rex_w ? 8 : 4);
		case 0xd6: /* movq xmm -> xmm/m64 */
			if (!noidx || in->vl || masked(in) || in->evex_b || (evex && !in->rex_w))
				return STEP_UNSUPPORTED;
			CHECK_OK();
			x86_insn_evex_disp8n(in, 8);
			return do_movq(c, in, true);
		case 0xfe: case 0xfa: /* paddd, psubd (EVEX W0 only) */
			if (evex && in->rex_w)
				return STEP_UNSUPPORTED;
			CHECK_OK();
			return do_alu(c, in, op == 0xfe ? ALU_ADD : ALU_SUB, 4, true);
		case 0xd4: case 0xfb: /* paddq, psubq (EVEX W1 only) */
			if (evex && !in->rex_w)
				return STEP_UNSUPPORTED;
			CHECK_OK();
			return do_alu(c, in, op == 0xd4 ? ALU_ADD : ALU_SUB, 8, true);
		case 0xfc: case 0xfd: case 0xf8: case 0xf9: /* paddb/w, psubb/w */
			if (evex && in->evex_b)
				return STEP_UNSUPPORTED;
			CHECK_OK();
			return do_alu(c, in, (op & 0xfc) == 0xfc ? ALU_ADD : ALU_SUB,
				      (op & 1) ? 2 : 1, false);
		case 0xef: case 0xeb: case 0xdb: case 0xdf: /* pxor, por, pand, pandn */
			CHECK_OK();
			return do_alu(c, in, op == 0xef ? ALU_XOR : op == 0xeb ? ALU_OR
					     : op == 0xdb ? ALU_AND : ALU_ANDN,
				      evex ? q : 8, evex);
		case 0x70: /* pshufd imm8 (EVEX W0) */
			if (!noidx || (evex && in->rex_w))
				return STEP_UNSUPPORTED;
			CHECK_OK();
			return do_pshufd(c, in);
		case 0x72: case 0x73: { /* shifts and rotates by imm8 */
			unsigned es;
			enum shift_op sk = shift_kind(in, &es);
			if (!es || (op == 0x73 && in->evex_b))
				return STEP_UNSUPPORTED;
			CHECK_OK();
			return do_shift(c, in, sk, es);
		}
		case 0x62: case 0x6a: /* punpckldq, punpckhdq (EVEX W0) */
			if (evex && in->rex_w)
				return STEP_UNSUPPORTED;
			CHECK_OK();
			return do_unpck(c, in, 4, op == 0x6a);
		case 0x6c: case 0x6d: /* punpcklqdq, punpckhqdq (EVEX W1) */
			if (evex && !in->rex_w)
				return STEP_UNSUPPORTED;
			CHECK_OK();
			return do_unpck(c, in, 8, op == 0x6d);
		}
		return STEP_UNSUPPORTED;
	}
	if (in->map == 1 && (in->pp == X86_PP_F3 || in->pp == X86_PP_F2)) {
		if ((op == 0x6f || op == 0x7f) && noidx) {
			/* movdqu, vmovdqu, vmovdqu32/64 (F3), vmovdqu8/16 (F2) */
			if (in->pp == X86_PP_F2 && !evex)
				return STEP_UNSUPPORTED;
			if (in->evex_b)
				return STEP_UNSUPPORTED;
			CHECK_OK();
			unsigned es = !evex ? 16 : in->pp == X86_PP_F3 ? q : in->rex_w ? 2 : 1;
			return do_mov(c, in, op == 0x7f, es, false);
		}
		if (op == 0x7e && in->pp == X86_PP_F3 && noidx && !in->vl && !masked(in) &&
		    !in->evex_b && (!evex || in->rex_w)) {
			CHECK_OK();
			x86_insn_evex_disp8n(in, 8);
			return do_movq(c, in, false);
		}
		return STEP_UNSUPPORTED;
	}
	if (in->map == 2 && in->pp == X86_PP_66) {
		if (op == 0x00 && !in->evex_b) { /* pshufb */
			CHECK_OK();
			return do_pshufb(c, in);
		}
		if ((op == 0x76 || op == 0x7e) && evex) { /* vpermi2d/q, vpermt2d/q */
			CHECK_OK();
			return do_perm2(c, in, op == 0x7e);
		}
		return STEP_UNSUPPORTED;
	}
	if (in->map == 3 && in->pp == X86_PP_66 && (op == 0x38 || op == 0x39) && !leg &&
	    in->vl >= 1 && !in->rex_w && !in->evex_b) {
		/* vextracti128/vinserti128 (VEX.256), vextracti32x4/vinserti32x4 */
		if (op == 0x39 && !noidx)
			return STEP_UNSUPPORTED;
		CHECK_OK();
		x86_insn_evex_disp8n(in, 16);
		return do_lane(c, in, op == 0x38);
	}
#undef CHECK_OK
	return STEP_UNSUPPORTED;
}

/* Up to 15 bytes at rip, stopping at an unmapped page (no fault raised). */
static unsigned fetch(struct ctx *c, uint64_t rip, uint8_t *buf)
{
	unsigned n = 0x1000 - (unsigned)(rip & 0xfff);
	if (n > 15)
		n = 15;
	uint8_t *p;
	if (lin_page(c, rip, false, &p) != STEP_DONE)
		return 0;
	memcpy(buf, p, n);
	if (n == 15 || lin_page(c, rip + n, false, &p) != STEP_DONE)
		return n;
	memcpy(buf + n, p, 15 - n);
	return 15;
}

bool kvm_pvm_emulate_simd(struct kvm_vcpu *v, struct x86_regs *r, const uint8_t *insn,
			  unsigned n)
{
	struct x86_insn in;
	if (x86_insn_decode(insn, n, &in) < 0 || in.map == 0)
		return false;
	struct ctx c = { .v = v, .r = r };
	if (kvm_vcpu_get_sregs(v, &c.s) < 0)
		return false;
	if (vstate_load(v, &c.st) < 0) {
		free(c.st.kbuf);
		return false;
	}
	uint8_t buf[15];
	unsigned done = 0;
	enum step s = exec_one(&c, &in);
	while (s == STEP_DONE) {
		r->rip += in.len;
		/* One at a time while someone single-steps (hvmm or the guest). */
		if (++done >= SIMD_BATCH_MAX || v->stepping || (r->rflags & X86_RFLAGS_TF))
			break;
		/* The next instruction, if it is one of ours too. */
		unsigned got = fetch(&c, r->rip, buf);
		if (!got || x86_insn_decode(buf, got, &in) < 0 || in.map == 0)
			break;
		s = exec_one(&c, &in);
	}
	bool ok = true;
	if (done == 0 && s == STEP_UNSUPPORTED) {
		free(c.st.kbuf);
		return false;
	}
	v->pvm_simd_exits++;
	v->pvm_simd_insns += done;
	if ((v->pvm_simd_exits & (v->pvm_simd_exits - 1)) == 0)
		log_debug("vCPU %u: vector emulation: %llu exits, %llu instructions (rip 0x%llx)",
			  v->index, (unsigned long long)v->pvm_simd_exits,
			  (unsigned long long)v->pvm_simd_insns, (unsigned long long)r->rip);
	if (c.st.dirty && vstate_store(v, &c.st) < 0)
		ok = false;
	free(c.st.kbuf);
	if (!ok || kvm_vcpu_set_regs(v, r) < 0)
		return false;
	if (s == STEP_FAULT) {
		if (c.vector != X86_PF)
			log_guest_debug("vCPU %u: vector instruction at 0x%llx raised #%u",
					v->index, (unsigned long long)r->rip, c.vector);
		return kvm_pvm_inject(v, c.vector, c.has_err, c.err, c.cr2);
	}
	return true;
}
