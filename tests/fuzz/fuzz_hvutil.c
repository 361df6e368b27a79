/*
 * libFuzzer harness: the utility devices (src/dev/hvutil*.c) on the real
 * VMBus server with a hostile guest. A fresh VM-less setup per input: the
 * VMBus fake host (../unit/test_vmbus_fake.h) connects a guest, opens the
 * shutdown, heartbeat, time-sync and KVP channels, and the input is read
 * as operations: raw guest packets (any length, any transaction id),
 * mutated copies of the host's last request sent back as answers (the way
 * into NEGOTIATE, heartbeat, shutdown and KVP parsing), timer ticks with
 * the clock moving, host shutdown requests, and channel close/reopen.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/test_vmbus_fake.h"
#include "core/log.h"
#include "dev/hvutil.h"
#include "dev/hvutil_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RING_PAGES 16

struct fchan {
	uint32_t relid, conn;
	bool open;
	struct gring out, in;
	uint8_t last[HVUTIL_PKT_MAX + 64];
	uint32_t last_len;
	uint64_t last_xid;
};

struct fctx {
	struct fake *f;
	struct hvutils *u;
	void (*qfn[256])(void *);
	void *qarg[256];
	unsigned nq;
	uint64_t now_ms;
	uint32_t next_gpadl;
	struct fchan ch[HVUTIL_NSERVICES];
};

static int c_schedule(void *o, void (*fn)(void *), void *arg)
{
	struct fctx *c = o;
	if (c->nq >= 256)
		return -ENOMEM;
	c->qfn[c->nq] = fn;
	c->qarg[c->nq++] = arg;
	return 0;
}

static void c_run(struct fctx *c)
{
	for (unsigned i = 0; i < c->nq; i++)
		c->qfn[i](c->qarg[i]);
	c->nq = 0;
}

static void c_flush(void *o)
{
	c_run(o);
}

static uint64_t c_filetime(void *o)
{
	return 130000000000000000ULL + ((struct fctx *)o)->now_ms * 10000;
}

static uint64_t c_now(void *o)
{
	return ((struct fctx *)o)->now_ms;
}

static uint64_t c_ref(void *o)
{
	return ((struct fctx *)o)->now_ms * 10000;
}

static void open_chan(struct fctx *c, int s, uint32_t gpadl)
{
	struct fchan *ch = &c->ch[s];
	uint64_t base = 32 + (uint64_t)s * RING_PAGES, pfns[RING_PAGES];
	for (unsigned i = 0; i < RING_PAGES; i++)
		pfns[i] = base + i;
	memset(c->f->ram + base * 4096, 0, RING_PAGES * 4096);
	guest_gpadl(c->f, ch->relid, gpadl, pfns, RING_PAGES);
	guest_open(c->f, ch->relid, gpadl, 0, RING_PAGES / 2);
	ch->out.hdr = c->f->ram + base * 4096;
	ch->in.hdr = c->f->ram + (base + RING_PAGES / 2) * 4096;
	for (unsigned i = 0; i < RING_PAGES / 2 - 1; i++) {
		ch->out.data[i] = c->f->ram + (base + 1 + i) * 4096;
		ch->in.data[i] = c->f->ram + (base + RING_PAGES / 2 + 1 + i) * 4096;
	}
	ch->out.size = ch->in.size = (RING_PAGES / 2 - 1) * 4096;
	ch->open = true;
	c_run(c);
}

/* The guest reads whatever the host sent; keeps the last request per channel. */
static void drain(struct fctx *c)
{
	for (int s = 0; s < HVUTIL_NSERVICES; s++) {
		struct fchan *ch = &c->ch[s];
		uint8_t d[16];
		uint64_t trailer;
		int n;
		while (ch->open &&
		       (n = gring_read(&ch->in, d, ch->last, sizeof(ch->last), &trailer)) >= 0) {
			ch->last_len = (uint32_t)n;
			memcpy(&ch->last_xid, d + 8, 8);
		}
	}
}

static void setup(struct fctx *c)
{
	c->f = fake_new(0, 1);
	c->now_ms = 1000000;
	struct hvutil_host h = {
		.opaque = c, .schedule = c_schedule, .flush = c_flush,
		.filetime = c_filetime, .ref_time = c_ref, .now_ms = c_now,
	};
	if (hvutil_create(c->f->srv, &h, &c->u) < 0)
		abort();
	guest_contact(c->f, 4, (5u << 16) | 3, 0);
	guest_simple(c->f, 3, 0, 0);
	struct fake_msg *m;
	int s = 0;
	while ((m = fake_next(c->f)))
		if (m32(m, 0) == 1 && s < HVUTIL_NSERVICES) {
			/* offers arrive in hvutil_create's order */
			c->ch[s].relid = m32(m, 184);
			c->ch[s].conn = m32(m, 192);
			s++;
		}
	if (s != HVUTIL_NSERVICES)
		abort();
	for (s = 0; s < HVUTIL_NSERVICES; s++)
		open_chan(c, s, 0x100 + (uint32_t)s);
}

static void guest_send(struct fctx *c, int s, const uint8_t *p, uint32_t len, uint64_t xid)
{
	struct fchan *ch = &c->ch[s];
	if (!ch->open || !gring_write(&ch->out, xid, p, len))
		return;
	vmbus_server_signal_event(c->f->srv, ch->conn);
	c_run(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fctx c;
	static uint8_t pkt[HVUTIL_PKT_MAX + 128];
	log_level = LOG_ERROR;
	memset(&c, 0, sizeof(c));
	setup(&c);
	size_t i = 0;
	for (unsigned ops = 0; i + 4 <= size && ops < 64; ops++) {
		drain(&c);
		uint8_t op = data[i], a = data[i + 1];
		uint16_t len;
		memcpy(&len, data + i + 2, 2);
		i += 4;
		int s = a % HVUTIL_NSERVICES;
		struct fchan *ch = &c.ch[s];
		switch (op % 6) {
		case 0: { /* a raw packet */
			uint32_t n = len % sizeof(pkt);
			size_t avail = size - i < n ? size - i : n;
			memset(pkt, 0, n);
			memcpy(pkt, data + i, avail);
			i += avail;
			guest_send(&c, s, pkt, n, a & 0x80 ? ch->last_xid : (uint64_t)len);
			break;
		}
		case 1: { /* the last request back, as an answer, with n byte edits */
			uint32_t n = ch->last_len;
			memcpy(pkt, ch->last, n);
			if (n >= ICMSG_HDR)
				pkt[sizeof(struct vmbuspipe_hdr) + 17] = ICMSGHDRFLAG_TRANSACTION |
									 ICMSGHDRFLAG_RESPONSE;
			for (unsigned e = 0; e < (len & 7u) && i + 3 <= size; e++, i += 3) {
				uint16_t off;
				memcpy(&off, data + i, 2);
				if (n)
					pkt[off % n] = data[i + 2];
			}
			if (a & 0x40)
				n = len % (n + 1); /* truncated */
			guest_send(&c, s, pkt, n, ch->last_xid);
			break;
		}
		case 2:
			c.now_ms += (uint64_t)len * 10;
			hvutil_tick(c.u);
			break;
		case 3:
			hvutil_request_shutdown(c.u, a & 1, a & 2);
			break;
		case 4: /* the guest closes the channel, maybe reopens it */
			if (ch->open) {
				guest_simple(c.f, 7, ch->relid, 0);
				ch->open = false;
				c_run(&c);
			}
			if (a & 0x80)
				open_chan(&c, s, 0x200 + c.next_gpadl++);
			break;
		case 5:
			(void)hvutil_guest_alive(c.u);
			(void)hvutil_version(c.u, (enum hvutil_service)s);
			break;
		}
		while (fake_next(c.f))
			;
	}
	FILE *null = fopen("/dev/null", "w");
	if (null) {
		hvutil_kvp_print(c.u, null);
		fclose(null);
	}
	fake_free(c.f);
	hvutil_destroy(c.u);
	return 0;
}
