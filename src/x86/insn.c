/*
 * x86-64 instruction decoding for emulation (Intel SDM vol. 2, chapter 2:
 * instruction format, ModRM/SIB tables 2-2 and 2-3, REX prefixes 2.2.1,
 * RIP-relative addressing 2.2.1.6).
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

int x86_insn_decode(const uint8_t *b, size_t n, struct x86_insn *in)
{
	size_t i = 0;
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
		else if (p == 0x2e || p == 0x3e || p == 0x26 || p == 0x36 || p == 0xf0)
			; /* null segments in 64-bit mode; lock */
		else
			break;
	}
	if (i < n && (b[i] & 0xf0) == 0x40) {
		in->rex = b[i++];
		in->rex_w = in->rex & 8;
	}
	if (i >= n)
		return -EINVAL;
	if (b[i] != 0x0f) {
		in->opcode = b[i++];
		in->len = (unsigned)i;
		return 0; /* one-byte opcode; no operands decoded */
	}
	in->twobyte = true;
	if (++i >= n)
		return -EINVAL;
	in->opcode = b[i++];
	if (in->opcode == 0x38 || in->opcode == 0x3a)
		return -EINVAL; /* three-byte maps: not needed */
	if (i >= n)
		return -EINVAL;

	uint8_t modrm = b[i++];
	in->has_modrm = true;
	in->mod = modrm >> 6;
	in->reg = (modrm >> 3) & 7;
	in->rm = modrm & 7;
	if (in->mod == 3) {
		in->len = (unsigned)i;
		return 0;
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
	} else if (in->mod == 2) {
		if (n - i < 4)
			return -EINVAL;
		in->disp = sext32(b + i);
		i += 4;
	}
	in->len = (unsigned)i;
	return 0;
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
