/*
 * libFuzzer harness: the VMBus server's control plane (src/vmbus) driven by
 * a hostile guest. The input is read as a sequence of operations against a
 * server on a fake host (tests/unit/test_vmbus_fake.h, paged mode so every
 * guest page is its own allocation): raw channel messages of any type and
 * length on any connection, well-formed INITIATE_CONTACT / GPADL / OPEN
 * messages with fuzzed fields (to get past the early checks), channel
 * signals, device-side sends and receives, offers, rescinds and resets.
 * The fake host aborts on any malformed host-to-guest message; the
 * sanitizers catch the rest.
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

#define NDEV 4

struct dev {
	struct fake_dev d;
	struct vmbus_channel *ch; /* NULL: never offered or rescinded */
};

static struct dev devs[NDEV];

/* Device callbacks that do what real devices do: send from open/notify. */
static uint32_t dev_open(void *o, struct vmbus_channel *ch)
{
	struct dev *d = o;
	d->d.opens++;
	uint8_t hello[24] = { 1 };
	vmbus_channel_send(ch, 6, 1, 7, NULL, 0, hello, sizeof(hello));
	return d->d.open_status;
}

static void dev_close(void *o, struct vmbus_channel *ch)
{
	(void)ch;
	((struct dev *)o)->d.closes++;
}

static void dev_notify(void *o, struct vmbus_channel *ch)
{
	struct dev *d = o;
	d->d.notifies++;
	uint8_t buf[256];
	struct vmbus_packet_info info;
	for (int i = 0; i < 4 && vmbus_channel_recv(ch, buf, sizeof(buf), &info) >= 0; i++)
		vmbus_channel_send(ch, 11, 0, info.trans_id, NULL, 0, buf, 8);
}

static const struct vmbus_device_ops dev_ops = {
	.open = dev_open, .close = dev_close, .notify = dev_notify,
};

static void offer(struct fake *f, unsigned i)
{
	struct vmbus_offer o = { 0 };
	memset(o.if_type.b, 0x30 + (int)i, 16);
	memset(o.if_instance.b, 0x60 + (int)i, 16);
	devs[i].ch = NULL;
	vmbus_offer(f->srv, &o, &dev_ops, &devs[i], &devs[i].ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t versions[] = { 0x50003, 0x50002, 0x50001, 0x50000, 0x40001,
					     0x40000, 0x30000, 0x20004, 0x10001, 0xD };
	log_level = LOG_ERROR;
	struct in in = { data, size };
	struct fake *f = fake_new_mode(versions[u8(&in) % 10], 1 + u8(&in) % 4, true);
	memset(devs, 0, sizeof(devs));
	for (unsigned i = 0; i < NDEV; i++) {
		devs[i].d.open_status = u8(&in) < 32;
		if (i < 3)
			offer(f, i);
	}
	for (unsigned ops = 0; in.n && ops < 2000; ops++) {
		uint8_t op = u8(&in);
		struct dev *d = &devs[op >> 4 & 3];
		switch (op % 10) {
		case 0: { /* a raw message, any type and length */
			uint8_t m[256] = { 0 };
			uint32_t conn = (op & 0x80) ? 1 : 4;
			size_t len = u8(&in);
			for (size_t i = 0; i < len && i < sizeof(m); i++)
				m[i] = u8(&in);
			vmbus_server_post_message(f->srv, conn, 1 + (op >> 6 == 3), m, len);
			break;
		}
		case 1: /* INITIATE_CONTACT */
			guest_contact(f, u8(&in) & 1 ? 4 : 1, versions[u8(&in) % 10], u8(&in) % 6);
			break;
		case 2: { /* a GPADL of 1..40 pages, PFNs partly beyond RAM */
			uint32_t relid = u8(&in) % 6, id = u8(&in) % 8, n = 1 + u8(&in) % 40;
			uint64_t pfns[40];
			for (uint32_t i = 0; i < n; i++)
				pfns[i] = (u8(&in) | (uint32_t)u8(&in) << 8) % 530;
			guest_gpadl(f, relid, id, pfns, n);
			break;
		}
		case 3: /* OPENCHANNEL */
			guest_open(f, u8(&in) % 6, u8(&in) % 8, u8(&in) % 6, u32(&in) % 48);
			break;
		case 4: /* a short fixed-layout message */
			guest_simple(f, u8(&in) % 26, u8(&in) % 6, u8(&in) % 8);
			break;
		case 5:
			vmbus_server_signal_event(f->srv, 0x10000 + u8(&in) % 8);
			break;
		case 6: /* device side traffic */
			if (d->ch) {
				uint8_t buf[512] = { 0 };
				struct vmbus_packet_info info;
				if (u8(&in) & 1)
					vmbus_channel_send(d->ch, 6, 0, u32(&in), buf, 8 * (u8(&in) % 3),
							   buf, u8(&in) % 512);
				else
					vmbus_channel_recv(d->ch, buf, u8(&in) * 2u, &info);
				vmbus_channel_send_space(d->ch);
				uint64_t len;
				uint32_t id = u8(&in) % 8;
				if (vmbus_channel_gpadl_len(d->ch, id, &len) == 0)
					vmbus_channel_gpadl_read(d->ch, id, u32(&in) % (len + 64), buf,
								 u8(&in));
			}
			break;
		case 7: /* the host rescinds, offers again, or resets */
			if (op & 0x80) {
				if (d->ch) {
					vmbus_rescind(d->ch);
					d->ch = NULL; /* may be freed now or later */
				}
			} else if (op & 0x40) {
				if (!d->ch && d == &devs[3])
					offer(f, 3);
			} else if ((op & 0x30) == 0x30) {
				vmbus_server_reset(f->srv);
			}
			break;
		case 8: /* the host's message queue fills up, or drains */
			f->post_full = op & 0x80;
			break;
		case 9: { /* guest scribbles on a ring page */
			uint8_t *pg = fake_page(f, u8(&in) % 530);
			if (pg) {
				uint32_t off = (u8(&in) * 16u) % 4096;
				uint32_t v = u32(&in);
				memcpy(pg + (off & ~3u), &v, 4);
			}
			break;
		}
		}
		f->nmsg = f->next = 0;
		if (f->lock_error)
			abort(); /* a host callback ran without, or with a doubled, lock */
	}
	fake_free(f);
	return 0;
}
