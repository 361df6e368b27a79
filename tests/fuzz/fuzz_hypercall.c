/*
 * libFuzzer harness: the Hyper-V layer driven by a hostile guest. The input
 * fills 64 KiB of fake guest RAM and then is read as a list of operations
 * on a 2-VP partition: hypercalls with arbitrary control words, registers,
 * CPL and mode; synthetic MSR reads and writes anywhere in the trapped range
 * (hypercall, TSC, SynIC pages pointed anywhere, including outside RAM);
 * host-side message posts and event signals; and timer expiry as the fake
 * TSC advances. The connection handlers answer like a VMBus server would,
 * posting a message back from inside the hypercall.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "hv/hv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (64u << 10)

struct ctx {
	struct hv *hv;
	uint64_t tsc;
	unsigned msis;
};

static uint64_t read_tsc(void *o)
{
	return ((struct ctx *)o)->tsc;
}

static int msi(void *o, uint64_t addr, uint32_t data)
{
	struct ctx *c = o;
	if ((addr & ~0xff000ull) != 0xFEE00000ull || data > 0xff)
		abort(); /* hv must only send fixed MSIs to a VP's APIC */
	c->msis++;
	return 0;
}

static void raise_ev(void *o, enum vm_event ev)
{
	(void)o;
	(void)ev;
}

static uint16_t on_post(void *o, uint32_t vp, uint32_t conn, uint32_t mtype,
			const void *payload, uint32_t len)
{
	struct ctx *c = o;
	if (len > 240 || mtype == 0 || (mtype & 0x80000000u))
		abort(); /* validated by the dispatcher */
	if (conn & 1)
		return 18;
	hv_synic_post_message(c->hv, vp, 2, mtype, payload, len);
	return (uint16_t)(conn & 0x13);
}

static uint16_t on_signal(void *o, uint32_t vp, uint32_t conn, uint16_t flag)
{
	struct ctx *c = o;
	if (flag >= 2048)
		abort();
	hv_synic_signal_event(c->hv, vp, conn & 15, flag);
	return (conn & 2) ? 18 : 0;
}

static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n && *p < end; i++, (*p)++)
		v |= (uint64_t)**p << (8 * i);
	return v;
}

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
	p += fill / 2; /* the rest of the input overlaps: ops also see RAM bytes */

	struct gmem mem;
	gmem_init_fake(&mem, ram, RAM_SIZE);
	struct ctx c = { .tsc = take(&p, end, 4) };
	struct vm_event_sink ev = { .raise = raise_ev, .opaque = &c };
	struct hv_platform pl = {
		.mem = &mem, .nvps = 2, .tsc_hz = 1000000000ull + take(&p, end, 2) * 1000,
		.read_tsc = read_tsc, .signal_msi = msi, .opaque = &c, .events = &ev,
	};
	if (hv_create(&pl, &c.hv) < 0)
		return 0;
	hv_set_connection_handlers(c.hv, on_post, on_signal, &c);

	for (unsigned ops = 0; p < end && ops < 512; ops++) {
		uint8_t op = (uint8_t)take(&p, end, 1);
		uint32_t vp = op >> 7;
		switch (op % 7) {
		case 0: case 1: {
			struct hv_hypercall hc = {
				.control = take(&p, end, 8), .input = take(&p, end, 3),
				.output = take(&p, end, 3),
				.cpl = (op >> 3) & 3 ? ((op >> 3) & 3) - 1 : 0,
				.long_mode = !(op & 0x40),
			};
			if (op & 0x20) { /* mostly plausible codes: PostMessage, SignalEvent, RetargetDeviceInterrupt */
				static const uint16_t codes[] = { 0x5C, 0x5D, 0x7E };
				hc.control = (hc.control & ~0xffffull) | codes[take(&p, end, 1) % 3];
			}
			enum hv_hypercall_action a = hv_hypercall(c.hv, vp, &hc);
			if (a == HV_HYPERCALL_DONE && (hc.result & 0xffff) > 0xff)
				abort();
			break;
		}
		case 2: {
			uint32_t idx = 0x40000000u + (uint32_t)take(&p, end, 2) % 0x200;
			uint64_t v = take(&p, end, 8);
			if (op & 0x10) /* page registers inside (or just past) RAM */
				v = (v & 0x1fffff) | (op & 1);
			hv_msr_write(c.hv, vp, idx, v);
			break;
		}
		case 3: {
			uint64_t v;
			hv_msr_read(c.hv, vp, 0x40000000u + (uint32_t)take(&p, end, 2) % 0x200, &v);
			break;
		}
		case 4: {
			uint8_t buf[256];
			uint32_t len = (uint32_t)take(&p, end, 1);
			memset(buf, (int)op, sizeof(buf));
			hv_synic_post_message(c.hv, vp ^ (len & 2), (uint32_t)take(&p, end, 1) % 18,
					      (uint32_t)take(&p, end, 4), buf, len);
			break;
		}
		case 5:
			hv_synic_signal_event(c.hv, vp, (uint32_t)take(&p, end, 1) % 17,
					      (uint32_t)take(&p, end, 2) % 2100);
			break;
		case 6:
			c.tsc += take(&p, end, 3) << (op & 15);
			hv_stimer_poll(c.hv, hv_time_ref_count(c.hv));
			break;
		}
	}
	hv_destroy(c.hv);
	return 0;
}
