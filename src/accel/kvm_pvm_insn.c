/*
 * General-purpose instructions that KVM's emulator lacks, emulated for a
 * guest whose ring 0 runs through it (PVM). kvm_pvm reports the host's CPUID
 * bits for these whatever the VMM sets, so a Linux guest uses them:
 *  - POPCNT r, r/m (F3 REX.W? 0F B8): bitmaps, scheduler;
 *  - LSL r, r/m16 (0F 03): the per-CPU base lookup in Linux's paranoid
 *    entry (the CPU number is the limit of GDT entry 15);
 *  - CMPXCHG16B m128 (REX.W 0F C7 /1): SLUB's lockless freelists. Done with
 *    the host's own locked cmpxchg16b on the guest page, so it stays atomic
 *    against the other vCPUs.
 * Intel SDM vol. 2 for the semantics; flags as the SDM states.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm.h"
#include "x86/insn.h"

#define RFLAGS_CF (1ULL << 0)
#define RFLAGS_PF (1ULL << 2)
#define RFLAGS_AF (1ULL << 4)
#define RFLAGS_ZF (1ULL << 6)
#define RFLAGS_SF (1ULL << 7)
#define RFLAGS_OF (1ULL << 11)
#define RFLAGS_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

static bool finish(struct kvm_vcpu *v, struct x86_regs *r, const struct x86_insn *in)
{
	r->rip += in->len;
	return kvm_vcpu_set_regs(v, r) == 0;
}

bool kvm_pvm_insn_ea(struct kvm_vcpu *v, const struct x86_regs *r,
		     const struct x86_insn *in, uint64_t *ea)
{
	uint64_t fs = 0, gs = 0;
	if (in->seg != X86_SEG_NONE) {
		struct x86_sregs s;
		if (kvm_vcpu_get_sregs(v, &s) < 0)
			return false;
		fs = s.fs.base;
		gs = s.gs.base;
	}
	*ea = x86_insn_ea(in, r, fs, gs);
	return true;
}

static bool emulate_popcnt(struct kvm_vcpu *v, struct x86_regs *r, const struct x86_insn *in)
{
	unsigned width = in->rex_w ? 8 : in->opsize ? 2 : 4;
	uint64_t src = 0;
	if (in->mem) {
		uint64_t ea, fault;
		uint32_t pferr;
		if (!kvm_pvm_insn_ea(v, r, in, &ea))
			return false;
		int ret = kvm_pvm_linear_access(v, ea, &src, width, false, &fault, &pferr);
		if (ret == -EFAULT)
			return kvm_pvm_inject(v, 14, true, pferr, fault);
		if (ret < 0)
			return false;
	} else {
		src = x86_gpr(r, x86_insn_rm_reg(in));
	}
	if (width < 8)
		src &= (1ULL << (8 * width)) - 1;
	uint64_t cnt = (uint64_t)__builtin_popcountll(src);
	int dst = x86_insn_reg(in);
	if (width == 2)
		x86_set_gpr(r, dst, (x86_gpr(r, dst) & ~0xffffULL) | cnt);
	else
		x86_set_gpr(r, dst, cnt); /* 32-bit writes zero-extend */
	r->rflags &= ~RFLAGS_ARITH;
	if (!src)
		r->rflags |= RFLAGS_ZF;
	return finish(v, r, in);
}

static bool emulate_cmpxchg16b(struct kvm_vcpu *v, struct x86_regs *r,
			       const struct x86_insn *in)
{
	uint64_t la;
	if (!kvm_pvm_insn_ea(v, r, in, &la))
		return false;
	if (la & 15)
		return kvm_pvm_inject(v, 13, true, 0, 0);
	struct kvm_translation tr = { .linear_address = la };
	if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return kvm_pvm_inject(v, 14, true, 0x2, la);
	if (!tr.writeable)
		return kvm_pvm_inject(v, 14, true, 0x3, la);
	uint64_t *p = kvm_gpa_to_hva(v->k, tr.physical_address, 16);
	if (!p)
		return false;
	uint64_t lo = r->rax, hi = r->rdx;
	uint8_t zf;
	/* Locked on the shared page: atomic against other vCPUs. */
	__asm__ volatile("lock cmpxchg16b %[m]\n\tsetz %[zf]"
			 : [m] "+m"(*(volatile __int128 *)p), "+a"(lo), "+d"(hi),
			   [zf] "=q"(zf)
			 : "b"(r->rbx), "c"(r->rcx)
			 : "memory", "cc");
	if (zf) {
		r->rflags |= RFLAGS_ZF;
	} else {
		r->rflags &= ~RFLAGS_ZF;
		r->rax = lo;
		r->rdx = hi;
	}
	return finish(v, r, in);
}

static bool emulate_lsl(struct kvm_vcpu *v, struct x86_regs *r, const struct x86_insn *in)
{
	uint16_t sel;
	if (in->mem) {
		uint64_t ea, fault;
		uint32_t pferr;
		if (!kvm_pvm_insn_ea(v, r, in, &ea))
			return false;
		int ret = kvm_pvm_linear_access(v, ea, &sel, 2, false, &fault, &pferr);
		if (ret == -EFAULT)
			return kvm_pvm_inject(v, 14, true, pferr, fault);
		if (ret < 0)
			return false;
	} else {
		sel = (uint16_t)x86_gpr(r, x86_insn_rm_reg(in));
	}
	struct x86_sregs s;
	if (kvm_vcpu_get_sregs(v, &s) < 0)
		return false;
	bool valid = false;
	uint64_t desc = 0;
	unsigned idx = sel >> 3;
	/* Null selectors and the LDT (unused by 64-bit Linux) report ZF=0. */
	if (idx && !(sel & 4) && idx * 8 + 7 <= s.gdt.limit) {
		uint64_t fault;
		uint32_t pferr;
		if (kvm_pvm_linear_access(v, s.gdt.base + idx * 8, &desc, 8, false, &fault,
					  &pferr) < 0)
			return false;
		unsigned type = (desc >> 40) & 0xf, sbit = (desc >> 44) & 1;
		unsigned dpl = (desc >> 45) & 3, rpl = sel & 3;
		unsigned cpl = s.cs.dpl;
		bool present = (desc >> 47) & 1;
		if (sbit) {
			bool conforming_code = (type & 0xc) == 0xc;
			valid = present && (conforming_code ||
					    (dpl >= cpl && dpl >= rpl));
		} else {
			valid = present && (type == 1 || type == 2 || type == 3 ||
					    type == 9 || type == 11) &&
				dpl >= cpl && dpl >= rpl;
		}
	}
	if (valid) {
		uint64_t limit = (desc & 0xffff) | ((desc >> 32) & 0xf0000);
		if ((desc >> 55) & 1)
			limit = (limit << 12) | 0xfff;
		int dst = x86_insn_reg(in);
		if (in->opsize)
			x86_set_gpr(r, dst, (x86_gpr(r, dst) & ~0xffffULL) | (limit & 0xffff));
		else
			x86_set_gpr(r, dst, limit & 0xffffffffULL);
		r->rflags |= RFLAGS_ZF;
	} else {
		r->rflags &= ~RFLAGS_ZF;
	}
	return finish(v, r, in);
}

bool kvm_pvm_emulate_insn(struct kvm_vcpu *v, struct x86_regs *r,
			  const uint8_t *insn, unsigned n)
{
	struct x86_insn in;
	if (x86_insn_decode(insn, n, &in) < 0 || !in.twobyte || !in.has_modrm)
		return false;
	if (in.opcode == 0x03)
		return emulate_lsl(v, r, &in);
	if (in.opcode == 0xb8 && in.rep == 0xf3)
		return emulate_popcnt(v, r, &in);
	if (in.opcode == 0xc7 && in.reg == 1 && in.mem && in.rex_w)
		return emulate_cmpxchg16b(v, r, &in);
	return false;
}
