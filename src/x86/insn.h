/*
 * A small x86-64 instruction decoder: just enough to emulate the few
 * instructions a host may fail to run for the guest (on PVM: the XSAVE
 * family, a few general-purpose and vector instructions). It decodes
 * legacy/REX prefixes, the 0F, 0F38 and 0F3A opcode maps, the VEX (C4/C5)
 * and EVEX (62) prefixes of 64-bit mode, a ModRM operand (SIB,
 * displacement, RIP-relative, EVEX disp8*N) and an imm8 where the opcode
 * has one, and computes the effective address. Input bytes are
 * guest-controlled: every read is bounds-checked against the fetched length.
 */
#ifndef HVMM_X86_INSN_H
#define HVMM_X86_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86/regs.h"

enum x86_seg_override { X86_SEG_NONE, X86_SEG_FS, X86_SEG_GS };

/* How the opcode was encoded (SDM vol. 2, 2.3 VEX, 2.7 EVEX). */
enum x86_insn_enc { X86_ENC_LEGACY, X86_ENC_VEX, X86_ENC_EVEX };

/* SIMD prefix, legacy (66/F3/F2 before the opcode) or VEX/EVEX.pp. */
enum x86_insn_pp { X86_PP_NONE, X86_PP_66, X86_PP_F3, X86_PP_F2 };

struct x86_insn {
	unsigned len;        /* total length in bytes */
	uint8_t rex;         /* 0 if absent */
	bool rex_w;
	bool opsize;         /* 0x66 */
	bool addr32;         /* 0x67 */
	uint8_t rep;         /* 0xf2, 0xf3 or 0 */
	enum x86_seg_override seg;
	bool twobyte;        /* legacy encoding, map 0F (not 0F38/0F3A) */
	uint8_t opcode;      /* the opcode byte within its map */
	uint8_t map;         /* 0 one-byte, 1 = 0F, 2 = 0F38, 3 = 0F3A */
	bool has_modrm;
	uint8_t mod, reg, rm; /* reg and rm without REX extension */
	bool mem;            /* ModRM names memory */
	bool rip_relative;
	int base, index;     /* GPR numbers 0-15, -1 if none */
	unsigned scale;      /* 1, 2, 4, 8 */
	int64_t disp;
	bool has_imm;
	uint8_t imm8;

	/*
	 * VEX/EVEX. rex (above) is synthesised from their R, X, B and W bits
	 * so x86_insn_reg(), x86_insn_rm_reg() and the address work as for
	 * REX; rex_w mirrors W. Legacy SSE forms get pp from their prefixes.
	 */
	enum x86_insn_enc enc;
	enum x86_insn_pp pp;
	uint8_t vl;          /* VEX.L or EVEX.L'L: 0 = 128, 1 = 256, 2 = 512 bits */
	uint8_t vvvv;        /* extra source register, 0-15 (EVEX: 0-31 with V') */
	bool evex_rr;        /* EVEX.R' (reg += 16) */
	bool evex_x;         /* EVEX.X on a register rm (rm += 16) */
	bool evex_z;         /* zeroing (not merging) masking */
	uint8_t evex_aaa;    /* opmask register, 0 = none */
	bool evex_b;         /* broadcast / rounding control */
	bool disp8;          /* EVEX: disp is an 8-bit displacement times N */
	int8_t disp8_raw;    /* that byte, for x86_insn_evex_disp8n() */
};

/*
 * Decodes one instruction from b[0..n). Understood: one-byte opcodes
 * (prefixes and opcode only: no operands), legacy 0F, 0F38 and 0F3A
 * opcodes with a ModRM byte, and VEX/EVEX-encoded opcodes of maps 1-3
 * (VEX 0F 77, vzeroupper/vzeroall, has no ModRM). An imm8 is decoded for
 * map 3 and for 0F 70-73, A4, AC, BA, C2, C4-C6. EVEX disp8 is scaled by
 * the full-vector tuple's N (16/32/64 bytes, or the element size when
 * EVEX.b broadcasts): other tuples call x86_insn_evex_disp8n(). Returns 0,
 * or -EINVAL when truncated, reserved (EVEX L'L=3, bad fixed bits, prefixes
 * before VEX/EVEX) or not understood.
 */
int x86_insn_decode(const uint8_t *b, size_t n, struct x86_insn *in);

/*
 * Effective (linear) address of the memory operand, given the registers and
 * the FS/GS bases. rip is the address of the instruction itself.
 */
uint64_t x86_insn_ea(const struct x86_insn *in, const struct x86_regs *r,
		     uint64_t fs_base, uint64_t gs_base);

/* Rescales an EVEX disp8 for a tuple whose N is not the full vector. */
void x86_insn_evex_disp8n(struct x86_insn *in, unsigned n);

/* GPR by number (0 = rax ... 15 = r15). */
uint64_t x86_gpr(const struct x86_regs *r, int n);
void x86_set_gpr(struct x86_regs *r, int n, uint64_t v);

/* ModRM reg field and register-form rm field with their REX extensions. */
static inline int x86_insn_reg(const struct x86_insn *in)
{
	return in->reg + ((in->rex & 4) ? 8 : 0);
}
static inline int x86_insn_rm_reg(const struct x86_insn *in)
{
	return in->rm + ((in->rex & 1) ? 8 : 0);
}

/* Vector register numbers (0-31) named by ModRM.reg and a register rm. */
static inline int x86_insn_vreg(const struct x86_insn *in)
{
	return x86_insn_reg(in) + (in->evex_rr ? 16 : 0);
}
static inline int x86_insn_vrm(const struct x86_insn *in)
{
	return x86_insn_rm_reg(in) + (in->evex_x ? 16 : 0);
}

#endif
