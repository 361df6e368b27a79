/*
 * --vtl2: VTL0's accesses that VTL2 intercepts (TLFS "Virtual Secure Mode",
 * intercepts; ../shared/docs/igvm-and-vsm.md C.8). Port I/O, MSRs, unknown
 * SynIC connections and memory (protected pages, VTL2's range, unmapped
 * GPAs): the exit is finished or undone so that VTL0 stands at the
 * instruction's start, the TLFS intercept message (header, registers,
 * instruction bytes) goes to VTL2 (vsm_deliver_intercept) and VTL2 advances
 * VTL0's RIP itself. Also VTL0's EOIs of level-triggered interrupts (APIC
 * EOI intercepts: HV_X64_APIC_EOI_MESSAGE, nothing to undo). Contracts in
 * vtl.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/vm.h"
#include "core/vtl.h"
#include "core/vtl_impl.h"
#include "hv/hv.h"
#include "hv/vsm.h"

/* An IN/OUT/INS/OUTS instruction's prefixes and opcode (io_decode). */
struct io_insn {
	unsigned len;       /* 0: not one */
	uint8_t op;         /* E4-E7, EC-EF, 6C-6F */
	bool rep, opsize, addrsize;
};

static bool io_is_string(uint8_t op)
{
	return op >= 0x6C && op <= 0x6F;
}

static bool io_is_write(uint8_t op)
{
	return op & 2;   /* E6/E7, EE/EF, 6E/6F */
}

/* Decodes insn[0..n) (at most 15 bytes); d->len 0 when it is not port I/O. */
static void io_decode(const uint8_t *insn, unsigned n, struct io_insn *d)
{
	memset(d, 0, sizeof(*d));
	for (unsigned i = 0; i < n && i < 15; i++) {
		uint8_t b = insn[i];
		if (b == 0xF3 || b == 0xF2) {
			d->rep = true;
			continue;
		}
		if (b == 0x66 || b == 0x67) {
			*(b == 0x66 ? &d->opsize : &d->addrsize) = true;
			continue;
		}
		if (b == 0x2E || b == 0x36 || b == 0x3E || b == 0x26 || b == 0x64 || b == 0x65 ||
		    (b >= 0x40 && b <= 0x4F))
			continue;
		d->op = b;
		if (b >= 0xE4 && b <= 0xE7) /* IN/OUT with an imm8 port */
			d->len = i + 2 <= 15 ? i + 2 : 0;
		else if ((b >= 0xEC && b <= 0xEF) || io_is_string(b)) /* DX; INS/OUTS */
			d->len = i + 1;
		return;
	}
}

unsigned vtl_io_insn_len(const uint8_t *insn, unsigned n, bool *string, bool *rep)
{
	struct io_insn d;
	io_decode(insn, n, &d);
	*string = d.len && io_is_string(d.op);
	*rep = d.len && d.rep;
	return d.len;
}

unsigned vtl_io_insn_back(const uint8_t b[16], uint16_t port, uint8_t size)
{
	unsigned n = 0;
	if (port < 256 && (b[14] == 0xE6 || b[14] == 0xE7) && b[15] == port)
		n = 2;   /* OUT imm8 */
	else if (b[15] == 0xEE || b[15] == 0xEF || b[15] == 0x6E || b[15] == 0x6F)
		n = 1;   /* OUT DX / OUTS */
	else
		return 0;
	if (size == 2 && b[15 - n] == 0x66)
		n++;
	if ((b[15] == 0x6E || b[15] == 0x6F) && b[15 - n] == 0xF3)
		n++;
	return n;
}

/* n bytes of VTL0's virtual memory at gva (page tables of r): 0 or -1. */
static int read_gva(struct vtl *t, const struct vsm_regs *r, uint64_t gva, uint8_t *b, unsigned n)
{
	while (n) {
		uint64_t gpa;
		unsigned chunk = 0x1000 - (unsigned)(gva & 0xfff);
		if (chunk > n)
			chunk = n;
		if (vsm_translate_gva(&t->ops, r, gva, 0, &gpa) != HV_TRANSLATE_GVA_SUCCESS ||
		    gmem_read(&t->vm->mem, gpa, b, chunk) < 0)
			return -1;
		gva += chunk, b += chunk, n -= chunk;
	}
	return 0;
}

/*
 * Up to 16 instruction bytes of VTL0 at r's RIP (count in c->insn_count):
 * an instruction near a page's end gets the bytes of the next page too when
 * that page is mapped, else those up to the end of its own.
 */
static void fetch_insn(struct vtl *t, const struct vsm_regs *r, struct vsm_intercept_ctx *c)
{
	unsigned first = 0x1000 - (unsigned)(r->rip & 0xfff);
	if (first >= sizeof(c->insn))
		first = sizeof(c->insn);
	c->insn_count = 0;
	if (read_gva(t, r, r->rip, c->insn, first) < 0)
		return;
	c->insn_count = (uint8_t)first;
	if (first < sizeof(c->insn) &&
	    read_gva(t, r, r->rip + first, c->insn + first, sizeof(c->insn) - first) == 0)
		c->insn_count = sizeof(c->insn);
}

/*
 * A VTL0 IN/RDMSR/WRMSR exit VTL2 intercepts: KVM would complete it at
 * VTL0's next run (data into RAX/RDX, RIP past it) over what VTL2 sets, so
 * it is finished now and VTL0's registers put back as they were before the
 * instruction (RIP at its start; a ring-0 emulator that already moved RIP
 * is undone with `len` when the bytes there do not start the instruction).
 * *pre gets those registers. False (logged) when that cannot be done.
 */
static bool undo_exit(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e, struct x86_regs *pre,
		      bool (*starts)(const uint8_t *b, unsigned n), unsigned len)
{
	struct vm *vm = t->vm;
	struct x86_regs post;
	int ret = vm->ops->vcpu_finish_exit ? 0 : -ENOSYS;
	if (ret == 0)
		ret = vm->ops->vcpu_get_regs(v->av, pre);
	if (ret == 0)
		ret = vm->ops->vcpu_finish_exit(v->av, e);
	if (ret == 0)
		ret = vm->ops->vcpu_get_regs(v->av, &post);
	if (ret < 0) {
		log_guest("vCPU %u: VTL0 intercept: cannot finish the exit (%s)", v->index,
			  strerror(-ret));
		return false;
	}
	if (post.rip == pre->rip) {
		/* Nothing moved at completion: RIP was past the instruction already? */
		struct vsm_regs r;
		struct vsm_intercept_ctx c = { 0 };
		if (vtl_get_x86(t, v->index, 0, &r) == 0) {
			fetch_insn(t, &r, &c);
			if (!starts(c.insn, c.insn_count) && pre->rip >= len)
				pre->rip -= len;
		}
	}
	if (vm->ops->vcpu_set_regs(v->av, pre) < 0) {
		log_guest("vCPU %u: VTL0 intercept: cannot restore registers", v->index);
		return false;
	}
	return true;
}

/*
 * The up to 16 bytes of VTL0's code before `rip` into the end of b[16]
 * (across a page boundary when the previous page is mapped, else those of
 * rip's page). Returns how many (0: none).
 */
static unsigned read_before(struct vtl *t, const struct vsm_regs *r, uint64_t rip, uint8_t b[16])
{
	memset(b, 0, 16);
	if (rip >= 16 && read_gva(t, r, rip - 16, b, 16) == 0)
		return 16;
	unsigned n = (unsigned)(rip & 0xfff);
	if (n > 16)
		n = 16;
	if (!n || read_gva(t, r, rip - n, b + 16 - n, n) < 0)
		return 0;
	return n;
}

/*
 * A port write (OUT/OUTS, also the hypercall page's `out`) under KVM's
 * instruction emulator (PVM ring 0), which has moved RIP past the
 * instruction already and completes nothing later: RIP is set back to its
 * start (r->rip too), so VTL0 resumes wherever VTL2 puts RIP, as on
 * hardware. False only when the registers cannot be written.
 */
static bool rewind_out(struct vtl *t, struct vm_vcpu *v, struct vsm_regs *r, uint16_t port,
		       uint8_t size)
{
	struct vm *vm = t->vm;
	if (!vm->info.ring0_emulated || (r->cs.selector & 3) != 0)
		return true;
	/* The bytes before RIP, from the previous page too (an OUT may cross it). */
	uint8_t b[16];
	unsigned back = read_before(t, r, r->rip, b) ? vtl_io_insn_back(b, port, size) : 0;
	struct x86_regs xr;
	if (back && vm->ops->vcpu_get_regs(v->av, &xr) == 0) {
		xr.rip -= back;
		if (vm->ops->vcpu_set_regs(v->av, &xr) < 0)
			return false;
		r->rip = xr.rip;
	} else {
		log_guest("vCPU %u: intercepted port 0x%x: instruction not found before RIP",
			  v->index, port);
	}
	return true;
}

static bool starts_in(const uint8_t *b, unsigned n)
{
	bool string, rep;
	return vtl_io_insn_len(b, n, &string, &rep) != 0;
}

static bool starts_msr(const uint8_t *b, unsigned n)
{
	return n >= 2 && b[0] == 0x0F && (b[1] == 0x30 || b[1] == 0x32);
}

/* The address size (2, 4, 8 bytes) of a string instruction of VTL0 (CS, 0x67). */
static unsigned addr_size(const struct vsm_regs *r, bool addrsize_prefix)
{
	unsigned sz = (r->cs.attributes & (1u << 13)) && (r->efer & (1ull << 10)) ? 8 :
		      (r->cs.attributes & (1u << 14)) ? 4 : 2;
	if (addrsize_prefix)
		sz = sz == 8 ? 4 : sz == 4 ? 2 : 4;
	return sz;
}

/* A string register written with address size `ad`, as the CPU does (32 bits zero-extend). */
static uint64_t assign_reg(uint64_t reg, uint64_t val, unsigned ad)
{
	return ad == 8 ? val : ad == 4 ? (uint32_t)val : (reg & ~0xffffull) | (val & 0xffff);
}

static uint64_t addr_mask(unsigned ad)
{
	return ad == 8 ? UINT64_MAX : ad == 4 ? 0xffffffffull : 0xffff;
}

/*
 * The OUTS that ends at b[16) (the bytes before RIP, n of them valid) for
 * a write of `size` bytes: the opcode, grown over the prefixes before it
 * (0x66 only for a 16-bit write). False if none fits.
 */
static bool outs_back(const uint8_t b[16], unsigned n, uint8_t size, struct io_insn *d)
{
	if (n == 0 || (b[15] != 0x6E && b[15] != 0x6F) || (b[15] == 0x6E) != (size == 1))
		return false;
	unsigned k = 1;
	while (k < n && k < 15) {
		uint8_t p = b[15 - k];
		bool rex = p >= 0x40 && p <= 0x4F;
		if (!(p == 0xF3 || p == 0xF2 || p == 0x67 || (p == 0x66 && size == 2) ||
		      p == 0x2E || p == 0x36 || p == 0x3E || p == 0x26 || p == 0x64 || p == 0x65 ||
		      (rex && k == 1)))
			break;
		k++;
	}
	io_decode(b + 16 - k, k, d);
	return d->len == k && (size != 2 || d->opsize);
}

/*
 * A VTL0 OUTS exit (string port write, any CPL): KVM's instruction
 * emulator handles every OUTS, one element (`count`) per exit, and has
 * already moved RSI past it (DF: back), a REP's RCX down by it, and RIP
 * past the instruction unless a REP has iterations left (then RIP stays at
 * it). Nothing is completed at the next run. VTL0's RIP, RSI and RCX (and
 * r's) are put back as before the instruction: a REP OUTS at RIP with RCX
 * not 0 is taken as the one that exited (an OUTS ending there followed by
 * a REP OUTS to the same port would be misread). *d gets the instruction.
 * 1 done, 0 not an OUTS (nothing changed), -1 registers not written.
 */
static int rewind_outs(struct vtl *t, struct vm_vcpu *v, struct vsm_regs *r,
		       const struct accel_exit *e, struct io_insn *d)
{
	struct vsm_intercept_ctx c = { 0 };
	uint8_t b[16];
	unsigned back = 0;
	fetch_insn(t, r, &c);
	io_decode(c.insn, c.insn_count, d);
	bool at_rip = d->len && d->op >= 0x6E && d->op <= 0x6F && d->rep &&
		      (r->gpr[1] & addr_mask(addr_size(r, d->addrsize))) != 0;
	if (!at_rip) {
		/* An OUT at RIP that KVM's fast path left there, or an OUT imm8 before it. */
		bool emulated = t->vm->info.ring0_emulated && (r->cs.selector & 3) == 0;
		if (d->len && !io_is_string(d->op) && io_is_write(d->op) && !emulated)
			return 0;
		unsigned n = read_before(t, r, r->rip, b);
		if ((n >= 2 && (b[14] == 0xE6 || b[14] == 0xE7) && b[15] == e->io.port) ||
		    !outs_back(b, n, e->io.size, d))
			return 0;
		back = d->len;
	}
	struct x86_regs xr;
	if (t->vm->ops->vcpu_get_regs(v->av, &xr) < 0)
		return -1;
	unsigned ad = addr_size(r, d->addrsize);
	uint64_t moved = (uint64_t)e->io.count * e->io.size;
	bool df = xr.rflags & (1u << 10);
	xr.rsi = assign_reg(xr.rsi, df ? xr.rsi + moved : xr.rsi - moved, ad);
	if (d->rep)
		xr.rcx = assign_reg(xr.rcx, xr.rcx + e->io.count, ad);
	xr.rip -= back;
	if (t->vm->ops->vcpu_set_regs(v->av, &xr) < 0)
		return -1;
	r->rip = xr.rip;
	r->gpr[1] = xr.rcx;
	r->gpr[6] = xr.rsi;
	return 1;
}

/* VTL0's bytes [gva, gva + n) (n <= 4096: at most two pages) as GPA pieces. */
struct gva_span {
	uint64_t gpa[2];
	unsigned len[2];
	unsigned parts;
};

static bool span_of(struct vtl *t, const struct vsm_regs *r, uint64_t gva, unsigned n,
		    struct gva_span *s)
{
	s->parts = 0;
	while (n) {
		unsigned chunk = 0x1000 - (unsigned)(gva & 0xfff);
		if (chunk > n)
			chunk = n;
		if (s->parts == 2 ||
		    vsm_translate_gva(&t->ops, r, gva, 0, &s->gpa[s->parts]) != HV_TRANSLATE_GVA_SUCCESS ||
		    !gmem_map(&t->vm->mem, s->gpa[s->parts], chunk))
			return false;
		s->len[s->parts++] = chunk;
		gva += chunk, n -= chunk;
	}
	return true;
}

/*
 * A VTL0 INS exit (KVM's emulator, any CPL): the registers are still those
 * before the instruction (*pre), and completing the exit writes the
 * elements read (count * size bytes at ES:RDI, downwards with DF) and
 * moves RDI/RCX/RIP. It is completed now (vcpu_finish_exit, with zeros;
 * further exits it makes, writes to protected pages, dropped), then the
 * destination bytes, saved first, and the registers are put back. False
 * (nothing done, logged) when the destination is not RAM VTL0 can reach or
 * larger than a page: the exit goes to the devices as without VTL2.
 */
static bool undo_ins(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e,
		     const struct vsm_regs *r, const struct io_insn *d, struct x86_regs *pre)
{
	struct vm *vm = t->vm;
	uint64_t n = (uint64_t)e->io.count * e->io.size;
	unsigned ad = addr_size(r, d->addrsize);
	uint64_t mask = addr_mask(ad), rdi = pre->rdi & mask;
	uint64_t first = pre->rflags & (1u << 10) ? rdi - (n - e->io.size) : rdi;
	uint64_t base = (r->efer & (1ull << 10)) && (r->cs.attributes & (1u << 13)) ? 0 : r->es.base;
	struct gva_span s;
	uint8_t saved[4096];
	if (!vm->ops->vcpu_finish_exit)
		return false;
	if (n == 0 || n > sizeof(saved) || ((first & mask) + n - 1 > mask) ||
	    !span_of(t, r, base + (first & mask), (unsigned)n, &s)) {
		log_guest("vCPU %u: INS from intercepted port 0x%x: destination not RAM (%" PRIu64
			  " bytes at ES:0x%" PRIx64 "), left to the devices", v->index, e->io.port, n,
			  rdi);
		return false;
	}
	for (unsigned i = 0, off = 0; i < s.parts; off += s.len[i++])
		if (gmem_read(&vm->mem, s.gpa[i], saved + off, s.len[i]) < 0)
			return false;
	memset(e->io.data, 0, (size_t)n);
	int ret = vm->ops->vcpu_finish_exit(v->av, e);
	for (unsigned i = 0; ret == -EAGAIN && i < 4096; i++)
		ret = vm->ops->vcpu_finish_exit(v->av, e); /* MMIO writes of protected pages */
	for (unsigned i = 0, off = 0; i < s.parts; off += s.len[i++])
		if (gmem_write(&vm->mem, s.gpa[i], saved + off, s.len[i]) < 0)
			ret = -EFAULT;
	if (ret < 0 || vm->ops->vcpu_set_regs(v->av, pre) < 0) {
		log_guest("vCPU %u: INS from intercepted port 0x%x: cannot put VTL0 back (%s)",
			  v->index, e->io.port, strerror(ret < 0 ? -ret : EIO));
		return false;
	}
	return true;
}

/*
 * Port writes: OUT under KVM's instruction emulator (rewind_out), OUTS
 * (rewind_outs). Port reads: IN is finished and VTL0 put back (undo_exit);
 * INS too, with its destination restored (undo_ins). Then the message,
 * with VTL0's registers as before the instruction.
 */
bool vtl_io(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	if (vtl_active(t, v) != 0 || !vsm_intercepts_io(t->vsm, e->io.port, e->io.write))
		return false;
	struct vsm_regs r;
	struct io_insn d;
	if (vtl_get_x86(t, v->index, 0, &r))
		return false;
	if (!e->io.write) {
		struct vsm_intercept_ctx at = { 0 };
		struct x86_regs pre;
		fetch_insn(t, &r, &at);
		io_decode(at.insn, at.insn_count, &d);
		if (d.len && io_is_string(d.op) && !io_is_write(d.op)) {
			if (t->vm->ops->vcpu_get_regs(v->av, &pre) < 0 ||
			    !undo_ins(t, v, e, &r, &d, &pre))
				return false;
		} else if (e->io.count != 1 ||
			   !undo_exit(t, v, e, &pre, starts_in, e->io.port < 256 ? 2 : 1)) {
			return false;
		}
		if (vtl_get_x86(t, v->index, 0, &r))
			return false;
	} else {
		int k = rewind_outs(t, v, &r, e, &d);
		if (k < 0 || (k == 0 && !rewind_out(t, v, &r, e->io.port, e->io.size)))
			return false;
	}
	struct vsm_intercept_ctx c = { .vp = v->index, .vtl = 0, .cpl = r.cs.selector & 3,
		.access = e->io.write ? HV_INTERCEPT_ACCESS_TYPE_WRITE : HV_INTERCEPT_ACCESS_TYPE_READ,
		.regs = &r };
	fetch_insn(t, &r, &c);
	io_decode(c.insn, c.insn_count, &d);
	c.insn_len = (uint8_t)d.len;
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_io_port(msg, &c, e->io.port, e->io.size, d.len && io_is_string(d.op),
			d.len && d.rep && io_is_string(d.op), r.gpr[0]);
	int st = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (st) {
		log_guest("vCPU %u: intercept of port 0x%x not delivered (status 0x%x)", v->index,
			  e->io.port, st);
		return false;
	}
	return true;
}

bool vtl_unknown_connection(struct vtl *t, struct vm_vcpu *v, uint64_t control, uint64_t result)
{
	uint16_t code = (uint16_t)control, st = (uint16_t)result;
	bool synic = (code == HVCALL_POST_MESSAGE || code == HVCALL_SIGNAL_EVENT) &&
		     st == HV_STATUS_INVALID_CONNECTION_ID;
	bool retarget = code == HVCALL_RETARGET_DEVICE_INTERRUPT &&
			st == HV_STATUS_INVALID_DEVICE_ID;
	if (vtl_active(t, v) != 0 || (!synic && !retarget) ||
	    !(synic ? vsm_intercepts_unknown_synic(t->vsm) :
		      vsm_intercepts_retarget_unknown_device(t->vsm)))
		return false;
	struct vsm_regs r;
	if (vtl_get_x86(t, v->index, 0, &r) || !rewind_out(t, v, &r, HV_HYPERCALL_PORT, 1))
		return false;
	struct vsm_intercept_ctx c = { .vp = v->index, .vtl = 0, .cpl = r.cs.selector & 3,
		.access = HV_INTERCEPT_ACCESS_TYPE_EXECUTE, .regs = &r };
	fetch_insn(t, &r, &c);
	bool string, rep;
	c.insn_len = (uint8_t)vtl_io_insn_len(c.insn, c.insn_count, &string, &rep);
	/* Fast calls' XMM input: a fast HvPostMessage has none beyond RDX/R8 here. */
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_hypercall(msg, &c, NULL);
	int dst = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (dst) {
		log_guest("vCPU %u: %s intercept not delivered (status 0x%x)", v->index,
			  synic ? "unknown SynIC connection" : "retarget of an unknown device", dst);
		return false;
	}
	return true;
}

bool vtl_msr_intercept(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	bool wr = e->reason == ACCEL_EXIT_MSR_WRITE;
	if (vtl_active(t, v) != 0 || hv_msr_owned(e->msr.index) || !vsm_intercepts_msr(t->vsm, wr))
		return false;
	struct x86_regs pre;
	e->msr.error = false;
	e->msr.data = 0;
	if (!undo_exit(t, v, e, &pre, starts_msr, 2))
		return false;
	struct vsm_regs r;
	if (vtl_get_x86(t, v->index, 0, &r))
		return false;
	struct vsm_intercept_ctx c = { .vp = v->index, .vtl = 0, .cpl = r.cs.selector & 3,
		.access = wr ? HV_INTERCEPT_ACCESS_TYPE_WRITE : HV_INTERCEPT_ACCESS_TYPE_READ,
		.regs = &r, .insn_len = 2 };
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_msr(msg, &c, e->msr.index, pre.rdx, pre.rax);
	int st = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (st) {
		log_guest("vCPU %u: intercept of MSR 0x%x not delivered (status 0x%x): #GP",
			  v->index, e->msr.index, st);
		if (t->vm->ops->vcpu_inject_exception(v->av, 13, true, 0) < 0)
			log_warn("vCPU %u: cannot inject #GP", v->index);
	}
	return true;
}

bool vtl_eoi(struct vtl *t, struct vm_vcpu *v, uint8_t vector)
{
	if (vtl_active(t, v) != 0 || !vsm_intercepts_apic_eoi(t->vsm))
		return false;
	/*
	 * KVM exits for every EOI of a vector some level route names; the
	 * intercept is for level-triggered interrupts only (the APIC's TMR).
	 */
	const struct accel_ops *ops = t->vm->ops;
	int level = ops->vcpu_vector_level ? ops->vcpu_vector_level(v->av, vector) : 1;
	if (level <= 0)
		return false;
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_apic_eoi(msg, v->index, vector);
	int st = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (st) {
		log_guest("vCPU %u: APIC EOI intercept of vector 0x%x not delivered (status 0x%x)",
			  v->index, vector, st);
		return false;
	}
	t->eois_intercepted++;
	return true;
}

/* x86_regs <-> the encoding's order (RAX RCX RDX RBX RSP RBP RSI RDI R8..R15). */
static void regs_to_gpr(const struct x86_regs *x, uint64_t g[16])
{
	const uint64_t v[16] = { x->rax, x->rcx, x->rdx, x->rbx, x->rsp, x->rbp, x->rsi, x->rdi,
				 x->r8, x->r9, x->r10, x->r11, x->r12, x->r13, x->r14, x->r15 };
	memcpy(g, v, sizeof(v));
}

static void gpr_to_regs(const uint64_t g[16], struct x86_regs *x)
{
	x->rax = g[0], x->rcx = g[1], x->rdx = g[2], x->rbx = g[3];
	x->rsp = g[4], x->rbp = g[5], x->rsi = g[6], x->rdi = g[7];
	x->r8 = g[8], x->r9 = g[9], x->r10 = g[10], x->r11 = g[11];
	x->r12 = g[12], x->r13 = g[13], x->r14 = g[14], x->r15 = g[15];
}

/*
 * Whether b[0..k) is a store of `size` bytes that, with *x undone by it
 * (data written, old in memory), wrote gpa; next_rip for RIP-relative
 * forms. The undone registers in *g / *fl.
 */
static bool store_is(struct vtl *t, const struct vsm_regs *r, const uint8_t *b, unsigned k,
		     const struct x86_regs *x, uint64_t next_rip, uint64_t gpa, unsigned size,
		     uint64_t data, uint64_t old, uint64_t g[16], uint64_t *fl)
{
	struct vtl_mem_insn d;
	uint64_t ea, ea_gpa;
	if (vtl_mem_decode(b, k, &d) != k || d.size != size)
		return false;
	regs_to_gpr(x, g);
	*fl = x->rflags;
	return vtl_mem_undo(&d, g, fl, data, old) && vtl_mem_insn_ea(&d, b, g, next_rip, true, &ea) &&
	       vsm_translate_gva(&t->ops, r, ea, 0, &ea_gpa) == HV_TRANSLATE_GVA_SUCCESS &&
	       ea_gpa == gpa;
}

/*
 * The store KVM's emulator retired for VTL0's write of `size` bytes at
 * gpa (registers *x after it, page tables of r): a REP string store still
 * at RIP (RCX not 0: the iteration it did), else the instruction that ends
 * at RIP: the shortest suffix of the 15 bytes before it that decodes as a
 * store (vtl_mem_decode) of that size whose operand, with the registers
 * undone, translates to gpa, then grown over LOCK/REP prefixes before it.
 * *x becomes the state before it (vtl_mem_undo; RIP at its start); returns
 * its length, or 0 (x untouched).
 */
static unsigned store_back(struct vtl *t, const struct vsm_regs *r, struct x86_regs *x,
			   uint64_t gpa, unsigned size, uint64_t data, uint64_t old)
{
	uint8_t b[15];
	uint64_t g[16], fl;
	struct vtl_mem_insn d;
	unsigned n = sizeof(b);
	if (read_gva(t, r, x->rip, b, n) < 0) {
		n = 0x1000 - (unsigned)(x->rip & 0xfff);
		n = n < sizeof(b) && read_gva(t, r, x->rip, b, n) == 0 ? n : 0;
	}
	if (n && vtl_mem_decode(b, n, &d) && d.op == VTL_MEM_OP_STRING && d.rep &&
	    (d.addr32 ? (uint32_t)x->rcx : x->rcx) != 0 &&
	    store_is(t, r, b, d.len, x, x->rip + d.len, gpa, size, data, old, g, &fl)) {
		gpr_to_regs(g, x);
		x->rflags = fl;
		return d.len;
	}
	n = sizeof(b);
	if (x->rip < n || read_gva(t, r, x->rip - n, b, n) < 0) {
		n = (unsigned)(x->rip & 0xfff); /* the bytes before RIP on its page */
		if (n > sizeof(b))
			n = sizeof(b);
		if (!n || read_gva(t, r, x->rip - n, b + sizeof(b) - n, n) < 0)
			return 0;
	}
	const uint8_t *end = b + sizeof(b);
	for (unsigned k = 1; k <= n; k++) {
		if (!store_is(t, r, end - k, k, x, x->rip, gpa, size, data, old, g, &fl))
			continue;
		uint64_t g2[16], fl2;
		while (k < n && (end[-(int)k - 1] == 0xF0 || end[-(int)k - 1] == 0xF2 ||
				 end[-(int)k - 1] == 0xF3) &&
		       store_is(t, r, end - k - 1, k + 1, x, x->rip, gpa, size, data, old, g2, &fl2)) {
			k++;
			memcpy(g, g2, sizeof(g2));
			fl = fl2;
		}
		gpr_to_regs(g, x);
		x->rflags = fl;
		x->rip -= k;
		return k;
	}
	return 0;
}

static void deliver_memory(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e, bool unmapped);

bool vtl_mmio(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	struct vm *vm = t->vm;
	uint64_t gpa = e->mmio.gpa;
	unsigned size = e->mmio.size;
	if (vtl_active(t, v) != 0 || size == 0 || size > 8)
		return false;
	uint8_t *p = gmem_map(&vm->mem, gpa, size);
	if (!p)
		return false; /* not RAM: a device's, as without VTLs */
	unsigned prot = vtl_mem_prot(&t->mem, gpa), last = vtl_mem_prot(&t->mem, gpa + size - 1);
	if (last < prot)
		prot = last;
	if (prot >= (e->mmio.write ? VTL_MEM_FULL : VTL_MEM_RO)) {
		/* Allowed: a slot was being replaced (vtl_mem_apply). Do it on RAM. */
		if (e->mmio.write)
			memcpy(p, e->mmio.data, size);
		else
			memcpy(e->mmio.data, p, size);
		return true;
	}
	deliver_memory(t, v, e, false);
	return true;
}

bool vtl_mmio_unmapped(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	if (vtl_active(t, v) != 0 || e->mmio.size == 0 || e->mmio.size > 8)
		return false;
	deliver_memory(t, v, e, true);
	return true;
}

/*
 * A VTL0 MMIO exit VTL2 must see: finish the exit so nothing stays pending
 * (and any further exit the same instruction makes: an RMW's write after
 * its read, REP iterations; reads as zeros, writes dropped), then put VTL0
 * back at the instruction (a read: as before it; a write, which the
 * emulator already retired: the store found before RIP, or the REP
 * iteration at RIP, undone by store_back) and deliver the GPA_INTERCEPT or
 * UNMAPPED_GPA message.
 */
static void deliver_memory(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e, bool unmapped)
{
	struct vm *vm = t->vm;
	uint64_t gpa = e->mmio.gpa, data = 0, old = 0;
	unsigned size = e->mmio.size;
	bool write = e->mmio.write;
	struct x86_regs pre, post;
	if (write)
		memcpy(&data, e->mmio.data, size);
	else
		memset(e->mmio.data, 0, 8);
	if (gmem_read(&vm->mem, gpa, &old, size) < 0)
		old = 0;
	int ret = vm->ops->vcpu_finish_exit ? vm->ops->vcpu_get_regs(v->av, &pre) : -ENOSYS;
	if (ret == 0)
		ret = vm->ops->vcpu_finish_exit(v->av, e);
	for (unsigned i = 0; ret == -EAGAIN && i < 4096; i++) {
		memset(e->mmio.data, 0, 8); /* a read gets zeros, a write is dropped */
		ret = vm->ops->vcpu_finish_exit(v->av, e);
	}
	if (ret == 0)
		ret = vm->ops->vcpu_get_regs(v->av, &post);
	if (ret < 0) {
		log_guest("vCPU %u: VTL0 access to protected 0x%" PRIx64 ": cannot finish the exit",
			  v->index, gpa);
		return;
	}
	struct vsm_regs r;
	struct vtl_mem_insn d;
	uint8_t b[15];
	unsigned len = 0;
	if (!write && post.rip != pre.rip && post.rip - pre.rip <= 15) {
		len = (unsigned)(post.rip - pre.rip);
	} else if (!write && vtl_get_x86(t, v->index, 0, &r) == 0 &&
		   read_gva(t, &r, pre.rip, b, sizeof(b)) == 0 && vtl_mem_decode(b, 15, &d)) {
		len = d.len; /* RIP did not move: a REP iteration */
	} else if (write && vtl_get_x86(t, v->index, 0, &r) == 0 &&
		   (len = store_back(t, &r, &pre, gpa, size, data, old)) != 0) {
		/* pre is the state before the store */
	} else {
		log_guest("vCPU %u: VTL0 %s of protected 0x%" PRIx64 ": instruction not found, "
			  "RIP left after it", v->index, write ? "write" : "read", gpa);
	}
	if (vm->ops->vcpu_set_regs(v->av, &pre) < 0 || vtl_get_x86(t, v->index, 0, &r)) {
		log_guest("vCPU %u: VTL0 intercept: cannot restore registers", v->index);
		return;
	}
	struct vsm_intercept_ctx c = { .vp = v->index, .vtl = 0, .cpl = r.cs.selector & 3,
		.access = write ? HV_INTERCEPT_ACCESS_TYPE_WRITE : HV_INTERCEPT_ACCESS_TYPE_READ,
		.regs = &r, .insn_len = (uint8_t)len };
	fetch_insn(t, &r, &c);
	uint64_t gva = 0;
	bool gva_valid = false;
	if (len && len <= c.insn_count && vtl_mem_decode(c.insn, len, &d) == len)
		gva_valid = vtl_mem_insn_ea(&d, c.insn, r.gpr, r.rip + len, write, &gva);
	else if (len && len <= c.insn_count)
		gva_valid = vtl_mem_mov_ea(c.insn, len, r.gpr, r.rip + len, &gva);
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_memory(msg, &c, unmapped, gpa, gva, gva_valid);
	int st = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (st)
		log_guest("vCPU %u: intercept of VTL0's access to 0x%" PRIx64 " not delivered "
			  "(status 0x%x)", v->index, gpa, st);
}

