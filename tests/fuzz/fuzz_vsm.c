/*
 * libFuzzer harness: the VSM layer (src/hv/vsm*.c) driven by hostile VTL0
 * and VTL2 code. The input fills 64 KiB of fake guest RAM (hypercall input
 * pages, VP assist pages with return actions, page tables) and is then read
 * as a list of operations on a 3-VP partition that may or may not have
 * booted VTL2: hypercalls with arbitrary control words (codes mostly from
 * the VSM set), RAX, RDX, R8, XMM input, CPL and mode, on any VP in whatever
 * VTL it runs; per-VTL synthetic MSR writes; intercept deliveries;
 * interrupts for any VTL (preemption, VINA, its arming); VTL2's synthetic
 * timers polled as time moves on; direct page-table walks. The fake ops abort when vsm asks for something its
 * contract rules out (a switch from a VTL the VP does not run, a SynIC
 * target out of range, an interrupt vector it should have refused).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "hv/vsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (64u << 10)
#define NVPS 3

struct ctx {
	uint8_t *ram;
	struct vsm *vsm;
	struct vsm_regs regs[NVPS][VSM_NUM_VTLS];
	int status;
	uint64_t now;   /* reference time (VTL2's synthetic timers) */
	bool lazy;      /* get_regs_part in use: register parts on demand */
};

static uint64_t ref_time(void *o)
{
	return ((struct ctx *)o)->now;
}

static int rd(void *o, uint64_t gpa, void *buf, size_t len)
{
	struct ctx *c = o;
	if (gpa > RAM_SIZE || len > RAM_SIZE - gpa)
		return -1;
	memcpy(buf, c->ram + gpa, len);
	return 0;
}

static int wr(void *o, uint64_t gpa, const void *buf, size_t len)
{
	struct ctx *c = o;
	if (gpa > RAM_SIZE || len > RAM_SIZE - gpa)
		return -1;
	memcpy(c->ram + gpa, buf, len);
	return 0;
}

static int get_regs(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *r)
{
	struct ctx *c = o;
	if (vp >= NVPS || vtl >= VSM_NUM_VTLS)
		abort();
	*r = c->regs[vp][vtl];
	r->parts = 0;
	return 0;
}

/* The optional parts on demand, as KVM's wiring does; vsm must ask only for known ones. */
static int get_regs_part(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *r, uint32_t parts)
{
	struct ctx *c = o;
	if (vp >= NVPS || vtl >= VSM_NUM_VTLS || !parts || (parts & ~VSM_REGS_ALL) ||
	    (r->parts & parts))
		abort();
	vsm_regs_copy_parts(r, &c->regs[vp][vtl], parts);
	r->parts |= parts;
	return 0;
}

static int set_regs(void *o, uint32_t vp, unsigned vtl, const struct vsm_regs *r)
{
	struct ctx *c = o;
	if (vp >= NVPS || vtl >= VSM_NUM_VTLS)
		abort();
	c->regs[vp][vtl] = *r;
	return 0;
}

static int switch_vtl(void *o, uint32_t vp, unsigned from, unsigned to)
{
	struct ctx *c = o;
	/* Ops run under vsm's lock: whether `to` is enabled is checked after the call. */
	if (vp >= NVPS || from == to || from >= VSM_NUM_VTLS || to >= VSM_NUM_VTLS)
		abort();
	vsm_regs_copy_shared(&c->regs[vp][to], &c->regs[vp][from]);
	return 0;
}

static int protect(void *o, unsigned vtl, uint64_t page, uint64_t n, uint32_t flags)
{
	(void)o;
	if (vtl == 0 || n == 0 || n > 4095 || (flags & ~0xfu) || page >> 52)
		abort();
	return page + n > RAM_SIZE / 4096 ? 5 : 0;
}

static int start_vp(void *o, uint32_t vp, unsigned vtl)
{
	struct ctx *c = o;
	if (vp >= NVPS || vtl >= VSM_NUM_VTLS)
		abort();
	return c->status;
}

static int irq(void *o, unsigned vtl, unsigned type, uint64_t dest, bool logical, bool level,
	       uint8_t vector)
{
	struct ctx *c = o;
	(void)dest;
	(void)logical;
	if (vtl >= VSM_NUM_VTLS || (type <= 1 && vector < 16) || (type > 1 && type < 4) || type > 6 ||
	    (level && type > 1))
		abort();
	return c->status;
}

static int post(void *o, uint32_t vp, unsigned vtl, unsigned sint, const void *msg)
{
	struct ctx *c = o;
	(void)msg;
	if (vp >= NVPS || vtl >= VSM_NUM_VTLS || sint >= 16)
		abort();
	return c->status;
}

static int signal_event(void *o, uint32_t vp, unsigned vtl, unsigned sint, unsigned flag,
			bool *newly)
{
	struct ctx *c = o;
	if (vp >= NVPS || vtl >= VSM_NUM_VTLS || sint >= 16 || flag >= 2048)
		abort();
	*newly = flag & 1;
	return c->status;
}

static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n && *p < end; i++, (*p)++)
		v |= (uint64_t)**p << (8 * i);
	return v;
}

static const uint16_t codes[] = {
	0x02, 0x03, 0x0C, 0x0D, 0x0F, 0x11, 0x12, 0x13, 0x14, 0x4D, 0x50, 0x51, 0x52,
	0x94, 0x99, 0x9A, 0xAC, 0xC0, 0xC1,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	log_level = LOG_ERROR;
	if (!ram)
		ram = malloc(RAM_SIZE);
	const uint8_t *p = data, *end = data + size;
	size_t fill = size < RAM_SIZE ? size : RAM_SIZE;
	memset(ram, 0, RAM_SIZE);
	memcpy(ram, data, fill);
	p += fill / 2; /* the rest overlaps: hypercall inputs see the same bytes */

	static struct ctx c;
	memset(&c, 0, sizeof(c));
	c.ram = ram;
	struct vsm_config cfg = {
		.nvps = NVPS, .max_vtl = 2,
		.ops = { .read_gpa = rd, .write_gpa = wr, .get_regs = get_regs,
			 .set_regs = set_regs, .switch_vtl = switch_vtl, .protect = protect,
			 .start_vp = start_vp, .interrupt = irq, .post_message = post,
			 .signal_event = signal_event, .ref_time = ref_time, .opaque = &c },
	};
	uint8_t mode = (uint8_t)take(&p, end, 1);
	c.lazy = mode & 2;
	cfg.eoi_intercepts = mode & 4;
	if (c.lazy)
		cfg.ops.get_regs_part = get_regs_part;
	if (vsm_create(&cfg, &c.vsm))
		return 0;
	if (mode & 1)
		vsm_boot_vtl2(c.vsm);
	if ((mode & 9) == 9) {
		/*
		 * VTL2's register page on VP 0 (SetVpRegisters 0x9001C) at a GPA
		 * from the input: intercepts fill it, VtlReturns read what the
		 * input left there (dirty flags, RIP, segments).
		 */
		uint8_t in[48] = { 0 };
		uint64_t self = HV_PARTITION_ID_SELF, page = (take(&p, end, 2) << 12 | 1) % RAM_SIZE;
		uint32_t vp_self = HV_VP_INDEX_SELF, name = HV_REGISTER_REGISTER_PAGE;
		memcpy(in, &self, 8);
		memcpy(in + 8, &vp_self, 4);
		memcpy(in + 16, &name, 4);
		memcpy(in + 32, &page, 8);
		memcpy(ram + RAM_SIZE - sizeof(in), in, sizeof(in));
		struct vsm_hypercall hc = { .control = 0x51 | 1ull << 32, .rdx = RAM_SIZE - sizeof(in),
					    .r8 = 0, .long_mode = true };
		vsm_hypercall(c.vsm, 0, &hc);
	}

	for (unsigned ops = 0; p < end && ops < 256; ops++) {
		uint8_t op = (uint8_t)take(&p, end, 1);
		uint32_t vp = (op >> 5) % NVPS;
		switch (op % 7) {
		case 0: case 1: {
			struct vsm_hypercall hc = {
				.control = take(&p, end, 8), .rax = take(&p, end, 1) & 3,
				.rdx = take(&p, end, 2), .r8 = take(&p, end, 2),
				.cpl = (op & 0x18) == 0x18 ? 3 : 0, .long_mode = true,
			};
			if (!(op & 4)) {   /* mostly VSM codes with plausible fields */
				uint64_t ctl = hc.control & ~(0x1full << 27 | 0xfull << 44 |
							      0xfffull << 48 | 0xfffull << 32 |
							      0x3ffull << 17 | 0xffffull);
				ctl |= codes[(hc.control & 0xffff) % (sizeof(codes) / 2)];
				ctl |= ((hc.control >> 32) & 0xf) << 32;      /* rep count */
				ctl |= ((hc.control >> 48) & 0x3) << 48;      /* rep start */
				ctl |= ((hc.control >> 17) & 0x3) << 17;      /* var header */
				hc.control = (op & 0x80) ? (ctl & 0xffff) : ctl;
			}
			if (op & 2) {
				hc.rdx = HV_PARTITION_ID_SELF;
				hc.r8 = take(&p, end, 8);
			}
			for (unsigned i = 0; i < 12; i++)
				hc.xmm[i] = take(&p, end, 2);
			unsigned before = vsm_active_vtl(c.vsm, vp);
			enum vsm_hc_action a = vsm_hypercall(c.vsm, vp, &hc);
			unsigned after = vsm_active_vtl(c.vsm, vp);
			if (a != VSM_HC_SWITCHED && before != after)
				abort();
			if (a == VSM_HC_DONE && ((hc.result & 0xffff) > 0xff || (hc.result >> 44)))
				abort();
			if (after >= VSM_NUM_VTLS || !((vsm_vp_enabled_vtls(c.vsm, vp) >> after) & 1))
				abort();
			break;
		}
		case 2: {
			uint32_t idx = 0x40000000u + (uint32_t)take(&p, end, 1);
			uint64_t v = take(&p, end, 8);
			if (op & 0x10)
				v = (v & 0x1ffff) | (op & 1);
			vsm_msr_write(c.vsm, vp, take(&p, end, 1) % VSM_NUM_VTLS, idx, v);
			break;
		}
		case 3: {
			uint8_t m[HV_MESSAGE_SIZE];
			struct vsm_intercept_ctx ic = { .vp = vp, .regs = &c.regs[vp][0],
							.insn_count = (uint8_t)take(&p, end, 1),
							.insn_len = (uint8_t)take(&p, end, 1) };
			if (op & 8)
				vsm_msg_io_port(m, &ic, (uint16_t)take(&p, end, 2), 4, op & 16, op & 32, 0);
			else
				vsm_msg_memory(m, &ic, op & 16, take(&p, end, 8), 0, op & 32);
			vsm_deliver_intercept(c.vsm, vp, m);
			break;
		}
		case 4: {
			struct vsm_regs r = c.regs[vp][0];
			r.cr0 = 0x80000001 | (take(&p, end, 1) & 1) << 16;
			r.cr4 = 0x20;
			r.efer = 0xd00;
			r.cr3 = take(&p, end, 2) << 4;
			uint64_t gpa;
			vsm_translate_gva(&cfg.ops, &r, take(&p, end, 8), take(&p, end, 1), &gpa);
			break;
		}
		case 5: {
			uint8_t vec = 0;
			unsigned before = vsm_active_vtl(c.vsm, vp), target = (unsigned)take(&p, end, 1) % 4;
			bool armed = vsm_vina_armed(c.vsm, vp);
			int r = vsm_interrupt_pending(c.vsm, vp, target, &vec);
			unsigned after = vsm_active_vtl(c.vsm, vp);
			if ((r != 1 && before != after) || (r == 1 && after <= before) ||
			    !((vsm_vp_enabled_vtls(c.vsm, vp) >> after) & 1))
				abort();
			/* Armed VINA: a VTL0 interrupt while a higher VTL runs raises it. */
			if (armed && target == 0 && before > 0 && r != 2)
				abort();
			break;
		}
		case 6: {
			/* VTL2's synthetic timers: time moves on, due ones fire. */
			c.now += take(&p, end, 3);
			uint64_t next = vsm_stimer_poll(c.vsm, c.now);
			if (next <= c.now)
				abort();   /* a due timer must have fired and moved on */
			break;
		}
		}
		c.status = (op & 0xf0) == 0xf0 ? 0x13 : 0;
	}
	vsm_destroy(c.vsm);
	return 0;
}
