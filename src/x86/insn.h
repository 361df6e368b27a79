/*
 * A small x86-64 instruction decoder: just enough to emulate the few
 * instructions a host may fail to run for the guest (on PVM: the XSAVE
 * family). It decodes legacy/REX prefixes, a 0F-escaped opcode and a ModRM
 * memory operand (SIB, displacement, RIP-relative) and computes the
 * effective address. Input bytes are guest-controlled: every read is
 * bounds-checked against the fetched length.
 */
#ifndef HVMM_X86_INSN_H
#define HVMM_X86_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86/regs.h"

enum x86_seg_override { X86_SEG_NONE, X86_SEG_FS, X86_SEG_GS };

struct x86_insn {
	unsigned len;        /* total length in bytes */
	uint8_t rex;         /* 0 if absent */
	bool rex_w;
	bool opsize;         /* 0x66 */
	bool addr32;         /* 0x67 */
	uint8_t rep;         /* 0xf2, 0xf3 or 0 */
	enum x86_seg_override seg;
	bool twobyte;        /* 0x0f escape */
	uint8_t opcode;      /* byte after 0x0f (or the one-byte opcode) */
	bool has_modrm;
	uint8_t mod, reg, rm; /* reg and rm without REX extension */
	bool mem;            /* ModRM names memory */
	bool rip_relative;
	int base, index;     /* GPR numbers 0-15, -1 if none */
	unsigned scale;      /* 1, 2, 4, 8 */
	int64_t disp;
};

/*
 * Decodes one instruction from b[0..n). Only opcodes 0F xx with a ModRM
 * byte and one-byte opcodes without operands are understood. Returns 0, or
 * -EINVAL when truncated or not understood.
 */
int x86_insn_decode(const uint8_t *b, size_t n, struct x86_insn *in);

/*
 * Effective (linear) address of the memory operand, given the registers and
 * the FS/GS bases. rip is the address of the instruction itself.
 */
uint64_t x86_insn_ea(const struct x86_insn *in, const struct x86_regs *r,
		     uint64_t fs_base, uint64_t gs_base);

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

#endif
