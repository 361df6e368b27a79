/*
 * XSAVE-family (and LDMXCSR/STMXCSR) emulation for KVM on PVM (Intel SDM vol. 1 chapter 13,
 * "Managing State Using the XSAVE Feature Set"). kvm_pvm forces XSAVE
 * visible to the guest (its user space runs natively with the host's XCR0,
 * so the guest kernel must switch the full state), but KVM's instruction
 * emulator cannot run xsave/xrstor/xgetbv in guest ring 0. We run them
 * here against the vCPU's state through KVM_GET/SET_XSAVE, in the standard
 * (non-compacted) format; the memory operand is decoded with x86/insn.c and
 * reached through the guest's page tables (KVM_TRANSLATE), with #PF and #GP
 * injected as the CPU would.
 */
#include <cpuid.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm.h"
#include "core/log.h"
#include "x86/insn.h"

#define XSAVE_HDR_OFF 512
#define XSAVE_MAX_COMPONENTS 19
#define PF_P 0x1
#define PF_W 0x2

struct xs_layout {
	bool ready;
	uint32_t off[XSAVE_MAX_COMPONENTS], size[XSAVE_MAX_COMPONENTS];
	bool align64[XSAVE_MAX_COMPONENTS]; /* compacted: starts 64-byte aligned */
	size_t kvm_size; /* KVM_GET_XSAVE2 size, >= 4096 */
};

static struct xs_layout layout;

static void layout_init(struct kvm_vcpu *v)
{
	if (layout.ready)
		return;
	for (unsigned i = 2; i < XSAVE_MAX_COMPONENTS; i++) {
		unsigned a, b, c, d;
		__cpuid_count(0xd, i, a, b, c, d);
		layout.size[i] = a;
		layout.off[i] = b;
		layout.align64[i] = c & 2;
	}
	int sz = ioctl(v->k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	layout.kvm_size = sz > 4096 ? (size_t)sz : 4096;
	layout.ready = true;
}

/*
 * Offsets of each component in an area: the standard layout from CPUID, or
 * the compacted one (components of comp_mask packed from byte 576 in index
 * order, some 64-byte aligned). Returns the area's size.
 */
static size_t xs_offsets(bool compacted, uint64_t comp_mask, uint32_t *off)
{
	size_t end = 576, next = 576;
	for (unsigned i = 2; i < XSAVE_MAX_COMPONENTS; i++) {
		off[i] = layout.off[i];
		if (compacted) {
			if (!((comp_mask >> i) & 1) || !layout.size[i]) {
				off[i] = 0;
				continue;
			}
			if (layout.align64[i])
				next = (next + 63) & ~(size_t)63;
			off[i] = (uint32_t)next;
			next += layout.size[i];
		}
		if (((comp_mask >> i) & 1) && off[i] + layout.size[i] > end)
			end = off[i] + layout.size[i];
	}
	return end;
}

static int get_xsave(struct kvm_vcpu *v, uint8_t *buf)
{
	unsigned long req = layout.kvm_size > 4096 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
	return ioctl(v->fd, req, buf) < 0 ? -errno : 0;
}

static int set_xsave(struct kvm_vcpu *v, const uint8_t *buf)
{
	return ioctl(v->fd, KVM_SET_XSAVE, buf) < 0 ? -errno : 0;
}

static int get_xcr0(struct kvm_vcpu *v, uint64_t *xcr0)
{
	struct kvm_xcrs x;
	if (ioctl(v->fd, KVM_GET_XCRS, &x) < 0)
		return -errno;
	*xcr0 = 1;
	for (unsigned i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++)
		if (x.xcrs[i].xcr == 0)
			*xcr0 = x.xcrs[i].value;
	return 0;
}

size_t kvm_pvm_xsave_size(struct kvm_vcpu *v)
{
	layout_init(v);
	return layout.kvm_size;
}

uint32_t kvm_pvm_xsave_offset(struct kvm_vcpu *v, unsigned comp)
{
	layout_init(v);
	return comp >= 2 && comp < XSAVE_MAX_COMPONENTS ? layout.off[comp] : 0;
}

int kvm_pvm_get_xsave(struct kvm_vcpu *v, uint8_t *buf)
{
	layout_init(v);
	return get_xsave(v, buf);
}

int kvm_pvm_set_xsave(struct kvm_vcpu *v, const uint8_t *buf)
{
	return set_xsave(v, buf);
}

int kvm_pvm_get_xcr0(struct kvm_vcpu *v, uint64_t *xcr0)
{
	return get_xcr0(v, xcr0);
}

bool kvm_pvm_inject(struct kvm_vcpu *v, unsigned vector, bool has_err, uint32_t err,
		   uint64_t cr2)
{
	if (vector == 14) {
		struct x86_sregs s;
		if (kvm_vcpu_get_sregs(v, &s) < 0)
			return false;
		s.cr2 = cr2;
		if (kvm_vcpu_set_sregs(v, &s) < 0)
			return false;
	}
	struct kvm_vcpu_events ev;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return false;
	ev.exception.injected = 1;
	ev.exception.nr = (uint8_t)vector;
	ev.exception.has_error_code = has_err;
	ev.exception.error_code = err;
	ev.flags = 0;
	return ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) == 0;
}

/*
 * Guest linear memory [la, la+len): checks every page first (so a fault
 * leaves memory untouched), then copies. On a fault returns the faulting
 * address in *fault and the #PF error code in *pferr.
 */
int kvm_pvm_linear_access(struct kvm_vcpu *v, uint64_t la, void *buf, size_t len,
			 bool write, uint64_t *fault, uint32_t *pferr)
{
	for (int pass = 0; pass < 2; pass++) {
		size_t done = 0;
		while (done < len) {
			uint64_t a = la + done;
			size_t chunk = 4096 - (a & 0xfff);
			if (chunk > len - done)
				chunk = len - done;
			struct kvm_translation tr = { .linear_address = a };
			if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid) {
				*fault = a;
				*pferr = write ? PF_W : 0;
				return -EFAULT;
			}
			if (write && !tr.writeable) {
				*fault = a;
				*pferr = PF_P | PF_W;
				return -EFAULT;
			}
			uint8_t *p = kvm_gpa_to_hva(v->k, tr.physical_address, chunk);
			if (!p)
				return -EIO; /* MMIO or nothing: not emulated */
			if (pass == 1) {
				if (write)
					memcpy(p, (uint8_t *)buf + done, chunk);
				else
					memcpy((uint8_t *)buf + done, p, chunk);
			}
			done += chunk;
		}
	}
	return 0;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Copies the components in mask between two areas with their layouts. */
static void copy_components(uint8_t *dst, const uint32_t *doff, const uint8_t *src,
			    const uint32_t *soff, uint64_t mask)
{
	if (mask & 1) {
		memcpy(dst, src, 24);           /* FCW .. FDP */
		memcpy(dst + 32, src + 32, 128); /* ST0-7 */
	}
	if (mask & 2)
		memcpy(dst + 160, src + 160, 256); /* XMM0-15 */
	for (unsigned i = 2; i < XSAVE_MAX_COMPONENTS; i++)
		if ((mask >> i) & 1 && layout.size[i])
			memcpy(dst + doff[i], src + soff[i], layout.size[i]);
}

enum { XS_XSAVE, XS_XSAVEC, XS_XRSTOR };

static bool emulate_xsave_rstor(struct kvm_vcpu *v, struct x86_regs *r,
				const struct x86_insn *in, int op)
{
	uint64_t xcr0, ea;
	if (get_xcr0(v, &xcr0) < 0 || !kvm_pvm_insn_ea(v, r, in, &ea))
		return false;
	uint64_t rfbm = xcr0 & ((r->rdx << 32) | (uint32_t)r->rax);
	if (ea & 63)
		return kvm_pvm_inject(v, 13, true, 0, 0);

	uint8_t hdr[64];
	uint64_t fault = 0;
	uint32_t pferr = 0;
	int ret = kvm_pvm_linear_access(v, ea + XSAVE_HDR_OFF, hdr, sizeof(hdr), false,
					&fault, &pferr);
	if (ret == -EFAULT)
		return kvm_pvm_inject(v, 14, true, pferr, fault);
	if (ret < 0)
		return false;
	uint64_t mem_bv = rd64(hdr), comp_bv = rd64(hdr + 8);
	bool compacted = op == XS_XSAVEC || (op == XS_XRSTOR && (comp_bv >> 63));
	uint64_t comp_mask = op == XS_XSAVEC ? rfbm
			   : compacted ? (comp_bv & ~(1ULL << 63)) : (rfbm | 3);

	if (op == XS_XRSTOR) { /* header checks (SDM 13.8.1): #GP(0) */
		bool bad = (mem_bv & ~xcr0) != 0;
		if (compacted)
			bad = bad || (comp_bv & ~(1ULL << 63) & ~xcr0) ||
			      (mem_bv & ~comp_bv);
		else
			bad = bad || comp_bv;
		for (unsigned i = 16; i < 64 && !bad; i++)
			bad = hdr[i] != 0;
		if (bad)
			return kvm_pvm_inject(v, 13, true, 0, 0);
	}

	uint32_t moff[XSAVE_MAX_COMPONENTS], koff[XSAVE_MAX_COMPONENTS];
	size_t len = xs_offsets(compacted, comp_mask, moff);
	xs_offsets(false, ~0ULL, koff);
	uint8_t *area = calloc(1, len);
	uint8_t *kbuf = calloc(1, layout.kvm_size);
	bool ok = false;
	if (!area || !kbuf || get_xsave(v, kbuf) < 0)
		goto out;
	ret = kvm_pvm_linear_access(v, ea, area, len, false, &fault, &pferr);
	if (ret == -EFAULT) {
		ok = kvm_pvm_inject(v, 14, true, pferr, fault);
		goto out;
	}
	if (ret < 0)
		goto out;
	uint64_t kvm_bv = rd64(kbuf + XSAVE_HDR_OFF);

	if (op == XS_XSAVE || op == XS_XSAVEC) {
		uint64_t save = op == XS_XSAVEC ? (rfbm & kvm_bv) : rfbm;
		copy_components(area, moff, kbuf, koff, save);
		if (rfbm & 6)
			memcpy(area + 24, kbuf + 24, 8); /* MXCSR, MXCSR_MASK */
		uint64_t bv = op == XS_XSAVEC ? (kvm_bv & rfbm)
					      : (mem_bv & ~rfbm) | (kvm_bv & rfbm);
		memcpy(area + XSAVE_HDR_OFF, &bv, 8);
		if (op == XS_XSAVEC) {
			uint64_t cbv = rfbm | (1ULL << 63);
			memcpy(area + XSAVE_HDR_OFF + 8, &cbv, 8);
			memset(area + XSAVE_HDR_OFF + 16, 0, 48);
		}
		ret = kvm_pvm_linear_access(v, ea, area, len, true, &fault, &pferr);
		if (ret == -EFAULT) {
			ok = kvm_pvm_inject(v, 14, true, pferr, fault);
			goto out;
		}
		if (ret < 0)
			goto out;
	} else {
		uint32_t mxcsr, mxcsr_mask;
		memcpy(&mxcsr, area + 24, 4);
		memcpy(&mxcsr_mask, kbuf + 28, 4);
		if (!mxcsr_mask)
			mxcsr_mask = 0xffbf;
		if ((rfbm & 6) && (mxcsr & ~mxcsr_mask)) {
			ok = kvm_pvm_inject(v, 13, true, 0, 0);
			goto out;
		}
		copy_components(kbuf, koff, area, moff, rfbm & mem_bv);
		/* Components in RFBM but not in XSTATE_BV go to their init state. */
		uint64_t init = rfbm & ~mem_bv;
		for (unsigned i = 2; i < XSAVE_MAX_COMPONENTS; i++)
			if ((init >> i) & 1 && layout.size[i])
				memset(kbuf + koff[i], 0, layout.size[i]);
		if (init & 1) {
			memset(kbuf, 0, 24);
			memset(kbuf + 32, 0, 128);
			kbuf[0] = 0x7f; /* FCW = 0x037f */
			kbuf[1] = 0x03;
		}
		if (init & 2)
			memset(kbuf + 160, 0, 256);
		if (rfbm & 6)
			memcpy(kbuf + 24, &mxcsr, 4);
		uint64_t bv = (kvm_bv & ~rfbm) | (rfbm & mem_bv) | (rfbm & 3);
		memcpy(kbuf + XSAVE_HDR_OFF, &bv, 8);
		if (set_xsave(v, kbuf) < 0)
			goto out;
	}
	r->rip += in->len;
	ok = kvm_vcpu_set_regs(v, r) == 0;
out:
	free(area);
	free(kbuf);
	return ok;
}

/* ldmxcsr m32 / stmxcsr m32 (kernel_fpu_begin loads the default MXCSR). */
static bool emulate_mxcsr(struct kvm_vcpu *v, struct x86_regs *r,
			  const struct x86_insn *in, bool load)
{
	uint64_t ea, fault;
	uint32_t pferr, val;
	if (!kvm_pvm_insn_ea(v, r, in, &ea))
		return false;
	uint8_t *kbuf = calloc(1, layout.kvm_size);
	bool ok = false;
	if (!kbuf || get_xsave(v, kbuf) < 0)
		goto out;
	int ret;
	if (load) {
		ret = kvm_pvm_linear_access(v, ea, &val, 4, false, &fault, &pferr);
		if (ret == -EFAULT) {
			ok = kvm_pvm_inject(v, 14, true, pferr, fault);
			goto out;
		}
		uint32_t mask;
		memcpy(&mask, kbuf + 28, 4);
		if (!mask)
			mask = 0xffbf;
		if (ret < 0)
			goto out;
		if (val & ~mask) {
			ok = kvm_pvm_inject(v, 13, true, 0, 0);
			goto out;
		}
		memcpy(kbuf + 24, &val, 4);
		uint64_t bv = rd64(kbuf + XSAVE_HDR_OFF) | 2; /* keep MXCSR */
		memcpy(kbuf + XSAVE_HDR_OFF, &bv, 8);
		if (set_xsave(v, kbuf) < 0)
			goto out;
	} else {
		memcpy(&val, kbuf + 24, 4);
		ret = kvm_pvm_linear_access(v, ea, &val, 4, true, &fault, &pferr);
		if (ret == -EFAULT) {
			ok = kvm_pvm_inject(v, 14, true, pferr, fault);
			goto out;
		}
		if (ret < 0)
			goto out;
	}
	r->rip += in->len;
	ok = kvm_vcpu_set_regs(v, r) == 0;
out:
	free(kbuf);
	return ok;
}

/* xgetbv / xsetbv: ECX selects the XCR. */
static bool emulate_xcr(struct kvm_vcpu *v, struct x86_regs *r, bool set, unsigned len)
{
	uint32_t idx = (uint32_t)r->rcx;
	if (!set) {
		uint64_t val;
		if (idx == 0) {
			if (get_xcr0(v, &val) < 0)
				return false;
		} else if (idx == 1) { /* XINUSE */
			uint64_t xcr0;
			uint8_t *kbuf = calloc(1, layout.kvm_size);
			if (!kbuf || get_xcr0(v, &xcr0) < 0 || get_xsave(v, kbuf) < 0) {
				free(kbuf);
				return false;
			}
			val = rd64(kbuf + XSAVE_HDR_OFF) & xcr0;
			free(kbuf);
		} else {
			return kvm_pvm_inject(v, 13, true, 0, 0);
		}
		r->rax = (uint32_t)val;
		r->rdx = (uint32_t)(val >> 32);
	} else {
		struct kvm_xcrs x;
		memset(&x, 0, sizeof(x));
		x.nr_xcrs = 1;
		x.xcrs[0].xcr = idx;
		x.xcrs[0].value = (r->rdx << 32) | (uint32_t)r->rax;
		if (idx != 0 || ioctl(v->fd, KVM_SET_XCRS, &x) < 0)
			return kvm_pvm_inject(v, 13, true, 0, 0);
	}
	r->rip += len;
	return kvm_vcpu_set_regs(v, r) == 0;
}

bool kvm_pvm_emulate_xsave(struct kvm_vcpu *v, struct x86_regs *r,
			   const uint8_t *insn, unsigned n)
{
	struct x86_insn in;
	layout_init(v);
	if (x86_insn_decode(insn, n, &in) < 0 || !in.twobyte)
		return false;
	if (in.opcode == 0x01 && in.mod == 3 && in.reg == 2 && in.rm <= 1)
		return emulate_xcr(v, r, in.rm == 1, in.len);
	if (in.opcode == 0xc7 && in.mem && in.reg == 4 && !in.rep && !in.opsize)
		return emulate_xsave_rstor(v, r, &in, XS_XSAVEC);
	if (in.opcode != 0xae || !in.mem || in.rep || in.opsize)
		return false;
	switch (in.reg) {
	case 2: /* ldmxcsr */
	case 3: /* stmxcsr */
		return emulate_mxcsr(v, r, &in, in.reg == 2);
	case 4: /* xsave */
	case 6: /* xsaveopt: same architectural result */
		return emulate_xsave_rstor(v, r, &in, XS_XSAVE);
	case 5: /* xrstor */
		return emulate_xsave_rstor(v, r, &in, XS_XRSTOR);
	default:
		return false;
	}
}
