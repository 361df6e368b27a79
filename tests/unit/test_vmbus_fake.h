/*
 * A fake VMBus host for the server's unit tests and fuzz harnesses: guest
 * RAM in a malloc'd buffer (map refuses anything outside it), a recorded
 * queue of host-to-guest messages, recorded channel signals, a lock that
 * notices recursion, and a fake device whose open/close/notify callbacks
 * count. Helpers build the channel messages the way Linux 6.1 sends them
 * (hyperv-linux-guest.md §6) and play the guest's side of a ring.
 */
#ifndef HVMM_TESTS_VMBUS_FAKE_H
#define HVMM_TESTS_VMBUS_FAKE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmbus/vmbus.h"
#include "vmbus/vmbus_channel.h"

#define FAKE_RAM (2u << 20)
#define FAKE_MAXMSG 512

struct fake_msg {
	uint32_t vp;
	uint32_t len;
	uint8_t b[240];
};

struct fake_dev {
	unsigned opens, closes, notifies;
	uint32_t open_status;
	struct vmbus_channel *ch;
};

struct fake {
	uint8_t *ram;
	struct vmbus_server *srv;
	struct fake_msg msg[FAKE_MAXMSG];
	unsigned nmsg, next; /* recorded, and the next one the test looks at */
	unsigned total;      /* messages posted over the test */
	bool post_full;      /* post_message answers -ENOSPC */
	unsigned nsig;
	uint32_t sig_vp[64], sig_relid[64];
	int lock_depth;
	bool lock_error;     /* recursion or unlock without lock */
	/* Paged mode (fuzzers): each guest page its own allocation, so a
	 * sanitizer catches any access that runs past a page. */
	uint8_t *page[FAKE_RAM / 4096];
	bool paged;
};

static inline void *fake_map(void *o, uint64_t gpa, size_t len)
{
	struct fake *f = o;
	if (len > 4096 || gpa >= FAKE_RAM || len > FAKE_RAM - gpa ||
	    (gpa & 4095) + len > 4096)
		return NULL;
	if (f->paged) {
		uint8_t **pg = &f->page[gpa / 4096];
		if (!*pg && !(*pg = calloc(1, 4096)))
			abort();
		return *pg + (gpa & 4095);
	}
	return f->ram + gpa;
}

static inline int fake_post(void *o, uint32_t vp, const void *m, size_t len)
{
	struct fake *f = o;
	if (f->lock_depth != 1)
		f->lock_error = true;
	if (len > 240 || len < 8)
		abort(); /* the server must never post a malformed message */
	if (f->post_full)
		return -ENOSPC;
	f->total++;
	if (f->next == f->nmsg)
		f->next = f->nmsg = 0; /* all looked at: start over */
	if (f->nmsg < FAKE_MAXMSG) {
		f->msg[f->nmsg].vp = vp;
		f->msg[f->nmsg].len = (uint32_t)len;
		memcpy(f->msg[f->nmsg].b, m, len);
		f->nmsg++;
	}
	return 0;
}

static inline void fake_signal(void *o, uint32_t vp, uint32_t relid)
{
	struct fake *f = o;
	if (f->nsig < 64) {
		f->sig_vp[f->nsig] = vp;
		f->sig_relid[f->nsig] = relid;
	}
	f->nsig++;
}

static inline void fake_lock(void *o)
{
	struct fake *f = o;
	if (f->lock_depth++ != 0)
		f->lock_error = true;
}

static inline void fake_unlock(void *o)
{
	struct fake *f = o;
	if (--f->lock_depth != 0)
		f->lock_error = true;
}

static inline struct fake *fake_new_mode(uint32_t max_version, uint32_t nvps, bool paged)
{
	struct fake *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	f->paged = paged;
	f->ram = paged ? NULL : calloc(1, FAKE_RAM);
	if (!paged && !f->ram)
		abort();
	struct vmbus_host h = {
		.opaque = f, .map = fake_map, .post_message = fake_post,
		.signal_event = fake_signal, .lock = fake_lock, .unlock = fake_unlock,
	};
	struct vmbus_server_config cfg = { .max_version = max_version, .nvps = nvps };
	if (vmbus_server_create(&h, &cfg, &f->srv) < 0)
		abort();
	return f;
}

static inline struct fake *fake_new(uint32_t max_version, uint32_t nvps)
{
	return fake_new_mode(max_version, nvps, false);
}

/* Host pointer of guest page pfn (paged or not). */
static inline uint8_t *fake_page(struct fake *f, uint64_t pfn)
{
	return fake_map(f, pfn * 4096, 4096);
}

static inline void fake_free(struct fake *f)
{
	vmbus_server_destroy(f->srv);
	for (size_t i = 0; i < FAKE_RAM / 4096; i++)
		free(f->page[i]);
	free(f->ram);
	free(f);
}

/* The next host-to-guest message not looked at yet, or NULL. */
static inline struct fake_msg *fake_next(struct fake *f)
{
	return f->next < f->nmsg ? &f->msg[f->next++] : NULL;
}

static inline uint32_t m32(const struct fake_msg *m, unsigned off)
{
	uint32_t v;
	memcpy(&v, m->b + off, 4);
	return v;
}

static inline void p32(uint8_t *b, unsigned off, uint32_t v)
{
	memcpy(b + off, &v, 4);
}

static inline void p16(uint8_t *b, unsigned off, uint16_t v)
{
	memcpy(b + off, &v, 2);
}

static inline void p64(uint8_t *b, unsigned off, uint64_t v)
{
	memcpy(b + off, &v, 8);
}

static inline uint16_t guest_post(struct fake *f, uint32_t conn, const void *m, size_t len)
{
	return vmbus_server_post_message(f->srv, conn, 1, m, len);
}

/* INITIATE_CONTACT as Linux sends it (40 bytes, msg_sint 2 at >= 5.0). */
static inline uint16_t guest_contact(struct fake *f, uint32_t conn, uint32_t version, uint32_t vp)
{
	uint8_t m[40] = { 0 };
	p32(m, 0, 14);
	p32(m, 8, version);
	p32(m, 12, vp);
	m[16] = 2;
	return guest_post(f, conn, m, sizeof(m));
}

static inline void guest_simple(struct fake *f, uint32_t type, uint32_t a, uint32_t b)
{
	uint8_t m[16] = { 0 };
	p32(m, 0, type);
	p32(m, 8, a);
	p32(m, 12, b);
	guest_post(f, 1, m, type == 3 || type == 16 ? 8 : 16);
}

/*
 * GPADL_HEADER (up to 26 PFNs) and GPADL_BODY messages (up to 28) for one
 * range of npages pages, as vmbus_establish_gpadl sends them.
 */
static inline void guest_gpadl(struct fake *f, uint32_t relid, uint32_t id, const uint64_t *pfns,
			uint32_t npages)
{
	uint8_t m[240] = { 0 };
	uint32_t here = npages < 26 ? npages : 26;
	p32(m, 0, 8);
	p32(m, 8, relid);
	p32(m, 12, id);
	p16(m, 16, (uint16_t)(8 + 8 * npages));
	p16(m, 18, 1);
	p32(m, 20, npages * 4096);
	p32(m, 24, 0);
	for (uint32_t i = 0; i < here; i++)
		p64(m, 28 + 8 * i, pfns[i]);
	guest_post(f, 1, m, 28 + 8 * here);
	for (uint32_t done = here; done < npages;) {
		uint32_t n = npages - done < 28 ? npages - done : 28;
		memset(m, 0, sizeof(m));
		p32(m, 0, 9);
		p32(m, 8, 0);
		p32(m, 12, id);
		for (uint32_t i = 0; i < n; i++)
			p64(m, 16 + 8 * i, pfns[done + i]);
		guest_post(f, 1, m, 16 + 8 * n);
		done += n;
	}
}

static inline void guest_open(struct fake *f, uint32_t relid, uint32_t gpadl, uint32_t vp,
		       uint32_t down)
{
	uint8_t m[148] = { 0 };
	p32(m, 0, 5);
	p32(m, 8, relid);
	p32(m, 12, relid);
	p32(m, 16, gpadl);
	p32(m, 20, vp);
	p32(m, 24, down);
	guest_post(f, 1, m, sizeof(m));
}

static inline uint32_t fdev_open(void *dev, struct vmbus_channel *ch)
{
	struct fake_dev *d = dev;
	d->opens++;
	d->ch = ch;
	return d->open_status;
}

static inline void fdev_close(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	((struct fake_dev *)dev)->closes++;
}

static inline void fdev_notify(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	((struct fake_dev *)dev)->notifies++;
}

static const struct vmbus_device_ops fdev_ops = {
	.open = fdev_open, .close = fdev_close, .notify = fdev_notify,
};

static inline struct vmbus_channel *fake_offer(struct fake *f, struct fake_dev *d, uint8_t tag)
{
	struct vmbus_offer o = { 0 };
	memset(o.if_type.b, 0x30 + tag, 16);
	memset(o.if_instance.b, 0x60 + tag, 16);
	struct vmbus_channel *ch = NULL;
	if (vmbus_offer(f->srv, &o, &fdev_ops, d, &ch) < 0)
		abort();
	return ch;
}

/* ---- the guest's side of a ring (Linux ring_buffer.c semantics) ---------- */

struct gring {
	uint8_t *hdr;
	uint8_t *data[64];
	uint32_t size;
};

static inline uint32_t gr32(const struct gring *r, unsigned off)
{
	uint32_t v;
	memcpy(&v, r->hdr + off, 4);
	return v;
}

static inline void gw32(struct gring *r, unsigned off, uint32_t v)
{
	memcpy(r->hdr + off, &v, 4);
}

static inline void gring_copy(struct gring *r, uint32_t off, void *buf, uint32_t len, bool out)
{
	uint8_t *b = buf;
	for (uint32_t i = 0; i < len; i++) {
		uint32_t o = (off + i) % r->size;
		if (out)
			r->data[o / 4096][o % 4096] = b[i];
		else
			b[i] = r->data[o / 4096][o % 4096];
	}
}

static inline uint32_t gring_free(const struct gring *r)
{
	uint32_t w = gr32(r, 0), rd = gr32(r, 4);
	return w >= rd ? r->size - (w - rd) : rd - w;
}

/* The guest writes an inband packet; false if it does not fit (strictly). */
static inline bool gring_write(struct gring *r, uint64_t trans_id, const void *payload, uint32_t len)
{
	uint32_t pkt = (16 + len + 7) & ~7u, total = pkt + 8;
	if (gring_free(r) <= total)
		return false;
	uint8_t d[16] = { 0 };
	p16(d, 0, 6);
	p16(d, 2, 2);
	p16(d, 4, (uint16_t)(pkt / 8));
	p64(d, 8, trans_id);
	uint32_t w = gr32(r, 0);
	gring_copy(r, w, d, 16, true);
	gring_copy(r, w + 16, (void *)payload, len, true);
	uint8_t pad[8] = { 0 };
	gring_copy(r, w + 16 + len, pad, pkt - 16 - len, true);
	uint64_t trailer = (uint64_t)w << 32;
	gring_copy(r, w + pkt, &trailer, 8, true);
	gw32(r, 0, (w + total) % r->size);
	return true;
}

/* The guest reads one packet: descriptor into d, payload (len8*8-16) into buf. */
static inline int gring_read(struct gring *r, uint8_t d[16], void *buf, uint32_t buflen,
		      uint64_t *trailer)
{
	uint32_t rd = gr32(r, 4), w = gr32(r, 0);
	if (rd == w)
		return -EAGAIN;
	gring_copy(r, rd, d, 16, false);
	uint16_t len8;
	memcpy(&len8, d + 4, 2);
	uint32_t len = len8 * 8u;
	if (len < 16 || len - 16 > buflen)
		return -EMSGSIZE;
	gring_copy(r, rd + 16, buf, len - 16, false);
	gring_copy(r, rd + len, trailer, 8, false);
	gw32(r, 4, (rd + len + 8) % r->size);
	return (int)(len - 16);
}

#endif
