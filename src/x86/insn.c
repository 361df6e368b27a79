/*
 * x86-64 instruction decoding for emulation (Intel SDM vol. 2, chapter 2:
 * instruction format, ModRM/SIB tables 2-2 and 2-3, REX prefixes 2.2.1,
 * RIP-relative addressing 2.2.1.6, VEX 2.3.5, EVEX 2.7 with disp8*N
 * 2.7.5; opcode maps and their immediates: appendix A).
 */
#include "x86/insn.h"

#include <errno.h>
#include <string.h>

uint64_t x86_gpr(const struct x86_regs *r, int n)
{
	switch (n) {
	case 0: return r->rax;
	case 1: return r->rcx;
	case 2: return r->rdx;
	case 3: return r->rbx;
	case 4: return r->rsp;
	case 5: return r->rbp;
	case 6: return r->rsi;
	case 7: return r->rdi;
	case 8: return r->r8;
	case 9: return r->r9;
	case 10: return r->r10;
	case 11: return r->r11;
	case 12: return r->r12;
	case 13: return r->r13;
	case 14: return r->r14;
	case 15: return r->r15;
	default: return 0;
	}
}

void x86_set_gpr(struct x86_regs *r, int n, uint64_t v)
{
	uint64_t *regs[16] = {
		&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
		&r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15,
	};
	if (n >= 0 && n < 16)
		*regs[n] = v;
}

static int64_t sext8(uint8_t v) { return (int8_t)v; }
static int64_t sext32(const uint8_t *p)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		     (uint32_t)p[3] << 24;
	return (int32_t)v;
}

/* Opcodes whose operands end with an imm8 (SDM vol. 2, appendix A maps). */
static bool has_imm8(const struct x86_insn *in)
{
	uint8_t op = in->opcode;
	if (in->map == 3)
		return true;
	if (in->map != 1)
		return false;
	if ((op >= 0x70 && op <= 0x73) || op == 0xc2 || (op >= 0xc4 && op <= 0xc6))
		return true;
	return in->enc == X86_ENC_LEGACY && (op == 0xa4 || op == 0xac || op == 0xba);
}

/*
 * VEX (C4/C5, SDM 2.3.5) or EVEX (62, SDM 2.7.1) prefix at b[*i]; on
 * success *i is past the opcode byte. R, X, B, vvvv and V' are stored
 * inverted in the prefix.
 */
static int decode_vex(const uint8_t *b, size_t n, size_t *pi, struct x86_insn *in)
{
	size_t i = *pi;
	uint8_t esc = b[i++];
	unsigned r, x = 0, bb = 0, w = 0, map, vvvv, l, pp;
	if (esc == 0xc5) {
		if (n - i < 2)
			return -EINVAL;
		uint8_t p1 = b[i++];
		r = !(p1 & 0x80);
		vvvv = (~p1 >> 3) & 15;
		l = (p1 >> 2) & 1;
		pp = p1 & 3;
		map = 1;
		in->enc = X86_ENC_VEX;
	} else if (esc == 0xc4) {
		if (n - i < 3)
			return -EINVAL;
		uint8_t p1 = b[i++], p2 = b[i++];
		r = !(p1 & 0x80);
		x = !(p1 & 0x40);
		bb = !(p1 & 0x20);
		map = p1 & 0x1f;
		w = p2 >> 7;
		vvvv = (~p2 >> 3) & 15;
		l = (p2 >> 2) & 1;
		pp = p2 & 3;
		in->enc = X86_ENC_VEX;
	} else {
		if (n - i < 4)
			return -EINVAL;
		uint8_t p0 = b[i++], p1 = b[i++], p2 = b[i++];
		if ((p0 & 0x0c) || !(p1 & 0x04))
			return -EINVAL; /* reserved bits: #UD */
		r = !(p0 & 0x80);
		x = !(p0 & 0x40);
		bb = !(p0 & 0x20);
		in->evex_rr = !(p0 & 0x10);
		map = p0 & 3;
		w = p1 >> 7;
		vvvv = ((~p1 >> 3) & 15) | ((p2 & 0x08) ? 0 : 16);
		pp = p1 & 3;
		in->evex_z = p2 >> 7;
		l = (p2 >> 5) & 3;
		in->evex_b = (p2 >> 4) & 1;
		in->evex_aaa = p2 & 7;
		if (l == 3)
			return -EINVAL;
		in->enc = X86_ENC_EVEX;
	}
	if (map < 1 || map > 3)
		return -EINVAL;
	in->rex = (uint8_t)(0x40 | w << 3 | r << 2 | x << 1 | bb);
	in->rex_w = w;
	in->map = (uint8_t)map;
	in->vvvv = (uint8_t)vvvv;
	in->vl = (uint8_t)l;
	in->pp = (enum x86_insn_pp)pp;
	in->opcode = b[i++];
	*pi = i;
	return 0;
}

int x86_insn_decode(const uint8_t *b, size_t n, struct x86_insn *in)
{
	size_t i = 0;
	bool lock = false;
	memset(in, 0, sizeof(*in));
	in->base = in->index = -1;
	in->scale = 1;
	if (n > 15)
		n = 15;

	/* Legacy prefixes, at most 4 groups but tolerate repeats up to 15 bytes. */
	for (; i < n; i++) {
		uint8_t p = b[i];
		if (p == 0x66)
			in->opsize = true;
		else if (p == 0x67)
			in->addr32 = true;
		else if (p == 0xf2 || p == 0xf3)
			in->rep = p;
		else if (p == 0x64)
			in->seg = X86_SEG_FS;
		else if (p == 0x65)
			in->seg = X86_SEG_GS;
		else if (p == 0xf0)
			lock = true;
		else if (p == 0x2e || p == 0x3e || p == 0x26 || p == 0x36)
			; /* null segments in 64-bit mode */
		else
			break;
	}
	if (i < n && (b[i] & 0xf0) == 0x40) {
		in->rex = b[i++];
		in->rex_w = in->rex & 8;
	}
	if (i >= n)
		return -EINVAL;
	if (b[i] == 0xc4 || b[i] == 0xc5 || b[i] == 0x62) {
		/* 64-bit mode: always VEX/EVEX; 66/F2/F3/REX/lock before it #UD. */
		if (in->rex || in->opsize || in->rep || lock)
			return -EINVAL;
		if (decode_vex(b, n, &i, in) < 0)
			return -EINVAL;
		if (in->enc == X86_ENC_VEX && in->map == 1 && in->opcode == 0x77) {
			in->len = (unsigned)i; /* vzeroupper/vzeroall: no ModRM */
			return 0;
		}
	} else if (b[i] != 0x0f) {
		in->opcode = b[i++];
		in->len = (unsigned)i;
		return 0; /* one-byte opcode; no operands decoded */
	} else {
		if (++i >= n)
			return -EINVAL;
		in->map = 1;
		if (b[i] == 0x38 || b[i] == 0x3a) {
			in->map = b[i] == 0x38 ? 2 : 3;
			if (++i >= n)
				return -EINVAL;
		}
		in->twobyte = in->map == 1;
		in->opcode = b[i++];
		/* Mandatory prefix: F2/F3 take precedence over 66. */
		in->pp = in->rep == 0xf3 ? X86_PP_F3 : in->rep == 0xf2 ? X86_PP_F2
			 : in->opsize ? X86_PP_66 : X86_PP_NONE;
	}
	if (i >= n)
		return -EINVAL;

	uint8_t modrm = b[i++];
	in->has_modrm = true;
	in->mod = modrm >> 6;
	in->reg = (modrm >> 3) & 7;
	in->rm = modrm & 7;
	if (in->mod == 3) {
		in->evex_x = in->enc == X86_ENC_EVEX && (in->rex & 2);
		goto imm;
	}
	in->mem = true;
	unsigned rex_b = (in->rex & 1) ? 8 : 0;
	unsigned rex_x = (in->rex & 2) ? 8 : 0;

	if (in->rm == 4) {
		if (i >= n)
			return -EINVAL;
		uint8_t sib = b[i++];
		unsigned ss = sib >> 6, idx = (sib >> 3) & 7, base = sib & 7;
		in->scale = 1u << ss;
		if (idx + rex_x != 4)
			in->index = (int)(idx + rex_x);
		if (base == 5 && in->mod == 0) {
			if (n - i < 4)
				return -EINVAL;
			in->disp = sext32(b + i);
			i += 4;
		} else {
			in->base = (int)(base + rex_b);
		}
	} else if (in->rm == 5 && in->mod == 0) {
		if (n - i < 4)
			return -EINVAL;
		in->rip_relative = true;
		in->disp = sext32(b + i);
		i += 4;
	} else {
		in->base = (int)(in->rm + rex_b);
	}
	if (in->mod == 1) {
		if (i >= n)
			return -EINVAL;
		in->disp = sext8(b[i++]);
		if (in->enc == X86_ENC_EVEX) {
			in->disp8 = true;
			in->disp8_raw = (int8_t)in->disp;
			x86_insn_evex_disp8n(in, in->evex_b ? (in->rex_w ? 8 : 4) : 16u << in->vl);
		}
	} else if (in->mod == 2) {
		if (n - i < 4)
			return -EINVAL;
		in->disp = sext32(b + i);
		i += 4;
	}
imm:
	if (has_imm8(in)) {
		if (i >= n)
			return -EINVAL;
		in->has_imm = true;
		in->imm8 = b[i++];
	}
	in->len = (unsigned)i;
	return 0;
}

void x86_insn_evex_disp8n(struct x86_insn *in, unsigned n)
{
	if (in->disp8)
		in->disp = (int64_t)in->disp8_raw * (int64_t)n;
}

uint64_t x86_insn_ea(const struct x86_insn *in, const struct x86_regs *r,
		     uint64_t fs_base, uint64_t gs_base)
{
	uint64_t ea = (uint64_t)in->disp;
	if (in->rip_relative)
		ea += r->rip + in->len;
	if (in->base >= 0)
		ea += x86_gpr(r, in->base);
	if (in->index >= 0)
		ea += x86_gpr(r, in->index) * in->scale;
	if (in->addr32)
		ea &= 0xffffffffULL;
	if (in->seg == X86_SEG_FS)
		ea += fs_base;
	else if (in->seg == X86_SEG_GS)
		ea += gs_base;
	return ea;
}
