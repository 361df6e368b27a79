/*
 * A fake platform for the Hyper-V unit tests: 1 MiB of guest RAM at GPA 0,
 * a guest TSC the test advances by hand (1 GHz: 100 ticks per reference
 * time unit), a record of the MSIs hv sent and of crash events.
 */
#ifndef HVMM_TEST_HV_FAKE_H
#define HVMM_TEST_HV_FAKE_H

#include <stdlib.h>
#include <string.h>

#include "hv/hv.h"

#define FAKE_RAM (1u << 20)
#define FAKE_MAX_MSI 256

struct fake {
	uint8_t *ram;
	struct gmem mem;
	uint64_t tsc;
	unsigned nmsi;
	uint64_t msi_addr[FAKE_MAX_MSI];
	uint32_t msi_data[FAKE_MAX_MSI];
	unsigned crashes;
	struct vm_event_sink events;
	struct hv *hv;
};

static inline uint64_t fake_read_tsc(void *o)
{
	return ((struct fake *)o)->tsc;
}

static inline int fake_msi(void *o, uint64_t addr, uint32_t data)
{
	struct fake *f = o;
	if (f->nmsi < FAKE_MAX_MSI) {
		f->msi_addr[f->nmsi] = addr;
		f->msi_data[f->nmsi] = data;
	}
	f->nmsi++;
	return 0;
}

static inline void fake_raise(void *o, enum vm_event ev)
{
	if (ev == VM_EVENT_CRASH)
		((struct fake *)o)->crashes++;
}

static inline struct fake *fake_new(unsigned nvps)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, FAKE_RAM);
	gmem_init_fake(&f->mem, f->ram, FAKE_RAM);
	f->tsc = 123456789;
	f->events = (struct vm_event_sink){ .raise = fake_raise, .opaque = f };
	struct hv_platform p = {
		.mem = &f->mem, .nvps = nvps, .tsc_hz = 1000000000ull,
		.read_tsc = fake_read_tsc, .signal_msi = fake_msi, .opaque = f,
		.events = &f->events,
	};
	if (hv_create(&p, &f->hv) != 0)
		abort();
	return f;
}

static inline void fake_free(struct fake *f)
{
	hv_destroy(f->hv);
	free(f->ram);
	free(f);
}

static inline uint64_t rd(struct fake *f, uint32_t vp, uint32_t msr)
{
	uint64_t v = 0xdeadbeef;
	if (hv_msr_read(f->hv, vp, msr, &v) != 0)
		abort();
	return v;
}

static inline void wr(struct fake *f, uint32_t vp, uint32_t msr, uint64_t v)
{
	if (hv_msr_write(f->hv, vp, msr, v) != 0)
		abort();
}

/* SynIC of vp on: SIMP at simp, SIEF at sief, SINTs unmasked with vector. */
static inline void fake_synic_on(struct fake *f, uint32_t vp, uint64_t simp, uint64_t sief,
			  unsigned sint, uint8_t vector)
{
	wr(f, vp, HV_X64_MSR_SIMP, simp | 1);
	wr(f, vp, HV_X64_MSR_SIEFP, sief | 1);
	wr(f, vp, HV_X64_MSR_SINT0 + sint, vector);
	wr(f, vp, HV_X64_MSR_SCONTROL, 1);
}

#endif
