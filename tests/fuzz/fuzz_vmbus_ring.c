/*
 * libFuzzer harness: the VMBus ring buffer code (src/vmbus/vmbus_ring.c)
 * against rings a hostile guest controls. A channel is opened through the
 * server on a fake host whose guest pages are separate allocations (so a
 * sanitizer sees any access past a page); the input picks the ring layout
 * (pages, downstream offset) and then is read as operations: the guest
 * writes index fields, interrupt mask and pending_send_sz, fills data pages
 * with arbitrary bytes or well-formed packets, and the host receives,
 * skips and sends packets of arbitrary sizes. The only acceptable outcomes
 * are packets, -EAGAIN, -EMSGSIZE, -EPROTO and -EINVAL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "../unit/test_vmbus_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint32_t u32(struct in *in)
{
	return u8(in) | (uint32_t)u8(in) << 8 | (uint32_t)u8(in) << 16 |
	       (uint32_t)u8(in) << 24;
}

static void check(int ret)
{
	if (ret < 0 && ret != -EAGAIN && ret != -EMSGSIZE && ret != -EPROTO && ret != -EINVAL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_level = LOG_ERROR;
	struct in in = { data, size };
	struct fake *f = fake_new_mode(0, 2, true);
	struct fake_dev d = { 0 };
	struct vmbus_channel *ch = fake_offer(f, &d, 1);
	uint32_t relid = vmbus_channel_relid(ch);
	guest_contact(f, 4, 0x50003, 0);
	uint32_t npages = 4 + u8(&in) % 13;
	uint32_t down = 2 + u8(&in) % (npages - 3);
	uint64_t pfns[16];
	for (uint32_t i = 0; i < npages; i++)
		pfns[i] = 10 + 3 * i;
	guest_gpadl(f, relid, 1, pfns, npages);
	guest_open(f, relid, 1, u8(&in) & 1, down);
	if (d.opens != 1) {
		fake_free(f);
		return 0;
	}
	/* The guest's view of both rings. */
	struct gring rg[2] = { 0 };
	rg[0].hdr = fake_page(f, pfns[0]);
	for (uint32_t i = 1; i < down; i++)
		rg[0].data[i - 1] = fake_page(f, pfns[i]);
	rg[0].size = (down - 1) * 4096;
	rg[1].hdr = fake_page(f, pfns[down]);
	for (uint32_t i = down + 1; i < npages; i++)
		rg[1].data[i - down - 1] = fake_page(f, pfns[i]);
	rg[1].size = (npages - down - 1) * 4096;
	static uint8_t buf[70000];
	for (unsigned ops = 0; in.n && ops < 1000; ops++) {
		uint8_t op = u8(&in);
		struct gring *r = &rg[op >> 7];
		struct vmbus_packet_info info;
		switch (op % 8) {
		case 0: /* an index, the mask or pending_send_sz: any value */
			gw32(r, 4 * (u8(&in) % 4), u32(&in));
			break;
		case 1: /* a plausible index: aligned, maybe in range */
			gw32(r, 4 * (u8(&in) % 2), (u32(&in) % (r->size + 64)) & ~7u);
			break;
		case 2: { /* arbitrary bytes into the data area */
			uint32_t off = u32(&in) % r->size, n = u8(&in);
			uint8_t b[256];
			for (uint32_t i = 0; i < n; i++)
				b[i] = u8(&in);
			gring_copy(r, off, b, n, true);
			break;
		}
		case 3: { /* a well-formed guest packet */
			uint32_t n = u8(&in) * 4u;
			memset(buf, op, n);
			gring_write(&rg[0], u32(&in), buf, n);
			break;
		}
		case 4: {
			int ret = vmbus_channel_recv(ch, buf, u32(&in) % sizeof(buf), &info);
			check(ret);
			if (ret >= 0 && (info.len > sizeof(buf) || info.data_offset > info.len))
				abort();
			break;
		}
		case 5:
			check(vmbus_channel_skip(ch));
			break;
		case 6: {
			size_t hdrlen = 8 * (u8(&in) % 4), len = u32(&in) % 20000;
			memset(buf, 0x5A, hdrlen + len);
			check(vmbus_channel_send(ch, 6, 0, 1, buf, hdrlen, buf + hdrlen, len));
			if (vmbus_channel_send_space(ch) > rg[1].size)
				abort();
			break;
		}
		case 7: { /* the guest reads what the host sent */
			uint8_t desc[16];
			uint64_t trailer;
			gring_read(&rg[1], desc, buf, sizeof(buf), &trailer);
			break;
		}
		}
	}
	fake_free(f);
	return 0;
}
