/*
 * libFuzzer harness: netvsp (src/dev/netvsp.c, netvsp_rndis.c) on the real
 * VMBus server with the fake host in paged mode (every guest page its own
 * allocation, so a sanitizer sees any access that runs past a page). The
 * first input byte picks how far the Linux probe goes before the fuzzer
 * takes over (nothing, NVSP only, buffers, RNDIS up); then each step is one
 * guest action chosen by the input: a ring packet with fuzzer-made
 * descriptor, header and NVSP bytes; bytes into a send-buffer section or a
 * data page, sent from there (structured, so RNDIS parsing is reached
 * often) or named by a raw packet; NVSP messages with chosen fields;
 * completions of the host's receive packets, right or wrong; a frame from
 * the backend (netvsp_rx, also from inside tx); link changes; a GPADL
 * teardown; close and reopen; a hostile ring index. netvsp runs after
 * each. Checks beyond the sanitizers: what netvsp sends the guest stays
 * inside its receive buffer and sections, and frames to the backend are
 * Ethernet-sized.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/test_vmbus_fake.h"
#include "core/log.h"
#include "dev/netvsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RING_PAGES 16
#define RING_PFN 32
#define RBUF_PFN 100
#define RBUF_PAGES 8      /* 32 KiB: 18 sections */
#define SBUF_PFN 200
#define SBUF_PAGES 4      /* 16 KiB: 2 sections of 6144 */
#define DATA_PFN 300
#define DATA_PAGES 4
#define MAXTID 64

struct h {
	struct fake *f;
	struct netvsp *nv;
	struct gring out, in;
	uint32_t relid;
	uint64_t tids[MAXTID];
	unsigned ntids;
	bool echo;
	uint64_t next_tid;
};

static void *h_map(void *o, uint64_t gpa, uint64_t len)
{
	return fake_map(((struct h *)o)->f, gpa, len);
}

static void h_nop(void *o) { (void)o; }

static void h_tx(void *o, const void *frame, size_t len)
{
	struct h *h = o;
	if (len < 14 || len > 65535 + 4)
		abort();
	volatile uint8_t sink = ((const uint8_t *)frame)[len - 1]; /* readable to the end */
	(void)sink;
	if (h->echo)
		netvsp_rx(h->nv, frame, len);
}

static void ring_setup(struct h *h)
{
	for (unsigned i = 0; i < RING_PAGES; i++)
		memset(fake_page(h->f, RING_PFN + i), 0, 4096);
	uint64_t pfns[RING_PAGES];
	for (unsigned i = 0; i < RING_PAGES; i++)
		pfns[i] = RING_PFN + i;
	guest_gpadl(h->f, h->relid, 0x100, pfns, RING_PAGES);
	guest_open(h->f, h->relid, 0x100, 0, RING_PAGES / 2);
	memset(&h->out, 0, sizeof(h->out));
	memset(&h->in, 0, sizeof(h->in));
	h->out.hdr = fake_page(h->f, RING_PFN);
	h->in.hdr = fake_page(h->f, RING_PFN + RING_PAGES / 2);
	for (unsigned i = 0; i < RING_PAGES / 2 - 1; i++) {
		h->out.data[i] = fake_page(h->f, RING_PFN + 1 + i);
		h->in.data[i] = fake_page(h->f, RING_PFN + RING_PAGES / 2 + 1 + i);
	}
	h->out.size = h->in.size = (RING_PAGES / 2 - 1) * 4096;
}

/* One packet into the guest-to-host ring: desc, then body (len - 16 bytes). */
static void gput(struct h *h, const uint8_t *pkt, uint32_t len)
{
	if (gring_free(&h->out) <= len + 8)
		return;
	uint32_t w = gr32(&h->out, 0) % h->out.size & ~7u;
	gring_copy(&h->out, w, (void *)pkt, len, true);
	uint64_t trailer = (uint64_t)w << 32;
	gring_copy(&h->out, w + len, &trailer, 8, true);
	gw32(&h->out, 0, (w + len + 8) % h->out.size);
}

static void gnvsp(struct h *h, uint32_t type, uint32_t a, uint32_t b, uint32_t c)
{
	uint8_t pkt[56] = { 0 };
	p16(pkt, 0, 6);
	p16(pkt, 2, 2);
	p16(pkt, 4, 7);
	p16(pkt, 6, 1);
	p64(pkt, 8, ++h->next_tid);
	p32(pkt, 16, type);
	p32(pkt, 20, a);
	p32(pkt, 24, b);
	p32(pkt, 28, c);
	gput(h, pkt, sizeof(pkt));
}

/* An RNDIS message from data page 0, GPA-direct, as Linux sends control. */
static void grndis(struct h *h, const uint8_t *msg, uint32_t len)
{
	memcpy(fake_page(h->f, DATA_PFN), msg, len);
	uint8_t pkt[80] = { 0 };
	p16(pkt, 0, 9);
	p16(pkt, 2, 5);
	p16(pkt, 4, 10);
	p16(pkt, 6, 1);
	p64(pkt, 8, ++h->next_tid);
	p32(pkt, 20, 1);
	p32(pkt, 24, len);
	p64(pkt, 32, DATA_PFN);
	p32(pkt, 40, 107);
	p32(pkt, 44, 1);
	p32(pkt, 48, 0xFFFFFFFF);
	gput(h, pkt, sizeof(pkt));
}

/* Reads what the host sent; checks transfer-page ranges; keeps their ids. */
static void drain(struct h *h)
{
	uint8_t d[16], buf[1024];
	uint64_t trailer;
	int n;
	while ((n = gring_read(&h->in, d, buf, sizeof(buf), &trailer)) >= 0) {
		uint16_t type, off8;
		memcpy(&type, d, 2);
		memcpy(&off8, d + 2, 2);
		if (type != 7)
			continue;
		uint32_t count, off;
		memcpy(&count, buf + 8, 4);
		memcpy(&off, buf + 12, 4);
		/* Inside the buffer and within one 1728-byte section. */
		if (count > 1728 || off % 1728 || off / 1728 >= RBUF_PAGES * 4096 / 1728)
			abort();
		if (h->ntids < MAXTID)
			memcpy(&h->tids[h->ntids++], d + 8, 8);
	}
}

static void complete(struct h *h, uint64_t tid, uint32_t status)
{
	uint8_t pkt[24] = { 0 };
	p16(pkt, 0, 11);
	p16(pkt, 2, 2);
	p16(pkt, 4, 3);
	p64(pkt, 8, tid);
	p32(pkt, 16, 108);
	p32(pkt, 20, status);
	gput(h, pkt, sizeof(pkt));
}

static void run(struct h *h)
{
	for (int i = 0; i < 4 && netvsp_poll(h->nv); i++)
		;
	drain(h);
}

static void complete_all(struct h *h)
{
	for (unsigned i = 0; i < h->ntids; i++)
		complete(h, h->tids[i], 1);
	h->ntids = 0;
	run(h);
}

/* The Linux probe, as far as `stage` says (0..4). */
static void probe(struct h *h, unsigned stage)
{
	if (stage < 1)
		return;
	gnvsp(h, 1, 0x60001, 0x60001, 0);
	run(h);
	if (stage < 2)
		return;
	uint64_t pfns[RBUF_PAGES];
	for (unsigned i = 0; i < RBUF_PAGES; i++)
		pfns[i] = RBUF_PFN + i;
	guest_gpadl(h->f, h->relid, 0x200, pfns, RBUF_PAGES);
	gnvsp(h, 101, 0x200, 0xCAFE, 0);
	for (unsigned i = 0; i < SBUF_PAGES; i++)
		pfns[i] = SBUF_PFN + i;
	guest_gpadl(h->f, h->relid, 0x201, pfns, SBUF_PAGES);
	gnvsp(h, 104, 0x201, 0, 0);
	run(h);
	if (stage < 3)
		return;
	uint8_t init[24] = { 2, 0, 0, 0, 24, 0, 0, 0, 1, 0, 0, 0, 1 };
	grndis(h, init, sizeof(init));
	run(h);
	complete_all(h);
	if (stage < 4)
		return;
	uint8_t set[32] = { 5, 0, 0, 0, 32, 0, 0, 0, 2, 0, 0, 0, 0x0E, 1, 1, 0, 4, 0, 0, 0,
			    20, 0, 0, 0, 0, 0, 0, 0, 0x0B };
	grndis(h, set, sizeof(set));
	run(h);
	complete_all(h);
}

/* Copies n input bytes to guest memory at page pfn + off (within the page). */
static size_t to_page(struct h *h, uint64_t pfn, uint32_t off, const uint8_t *d, size_t n)
{
	off %= 4096;
	if (n > 4096 - off)
		n = 4096 - off;
	memcpy(fake_page(h->f, pfn) + off, d, n);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_level = LOG_ERROR;
	if (size < 1)
		return 0;
	struct h *h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	h->f = fake_new_mode(0, 1, true);
	struct netvsp_config cfg = {
		.mac = { 0, 0x15, 0x5d, 1, 2, 3 },
		.host = { .opaque = h, .map = h_map, .lock = h_nop, .unlock = h_nop,
			  .kick = h_nop, .tx = h_tx },
	};
	if (netvsp_create(h->f->srv, &cfg, &h->nv) < 0)
		abort();
	guest_contact(h->f, 4, VMBUS_VERSION_WIN10_V5_2, 0);
	guest_simple(h->f, 3, 0, 0);
	h->relid = 1;
	ring_setup(h);
	probe(h, data[0] % 5);
	h->echo = data[0] & 0x80;

	size_t pos = 1;
	for (unsigned step = 0; step < 64 && pos + 3 <= size; step++) {
		uint8_t op = data[pos], a = data[pos + 1], b = data[pos + 2];
		pos += 3;
		size_t left = size - pos, n;
		switch (op % 13) {
		case 0: case 1: {
			/* A ring packet: the fuzzer's bytes, our total length. */
			uint32_t len = (uint32_t)(a % 96 + 2) * 8;
			uint8_t pkt[784] = { 0 };
			n = left < len ? left : len;
			memcpy(pkt, data + pos, n);
			pos += n;
			p16(pkt, 4, (uint16_t)(len / 8));
			gput(h, pkt, len);
			break;
		}
		case 2: /* bytes into a send-buffer section (or past the last) */
			n = left < (size_t)b * 8 ? left : (size_t)b * 8;
			pos += to_page(h, SBUF_PFN + a % SBUF_PAGES, (uint32_t)b * 37, data + pos, n);
			break;
		case 3: /* bytes into a data page, for GPA ranges */
			n = left < (size_t)b * 8 ? left : (size_t)b * 8;
			pos += to_page(h, DATA_PFN + a % DATA_PAGES, (uint32_t)a * 16, data + pos, n);
			break;
		case 4: { /* a frame from the backend */
			uint8_t f[1600];
			n = (size_t)a * 7 % sizeof(f);
			memset(f, b, n);
			netvsp_rx(h->nv, f, n);
			netvsp_rx_ready(h->nv);
			break;
		}
		case 5: /* completions: all right, or one bent */
			if (a & 1) {
				complete_all(h);
			} else if (h->ntids) {
				complete(h, h->tids[b % h->ntids] ^ ((uint64_t)a << 24), b);
			}
			break;
		case 6:
			netvsp_set_link(h->nv, a & 1);
			break;
		case 7: /* a GPADL goes away: the buffers, or the ring */
			guest_simple(h->f, 11, h->relid, 0x200 + a % 2);
			break;
		case 8: /* close, forget the GPADLs, reopen, probe again */
			guest_simple(h->f, 7, h->relid, 0);
			guest_simple(h->f, 11, h->relid, 0x100);
			guest_simple(h->f, 11, h->relid, 0x200);
			guest_simple(h->f, 11, h->relid, 0x201);
			h->ntids = 0;
			ring_setup(h);
			probe(h, a % 5);
			break;
		case 9: /* a hostile write index */
			gw32(&h->out, 0, (uint32_t)a << 8 | b);
			break;
		case 10: /* RNDIS bytes at a section's start, sent from there */
			n = left < (size_t)b * 4 ? left : (size_t)b * 4;
			pos += to_page(h, SBUF_PFN + (a & 1) * 6144 / 4096, (a & 1) * 6144 % 4096,
				       data + pos, n);
			gnvsp(h, 107, a >> 7, a & 1, (uint32_t)n + (a >> 1 & 3));
			break;
		case 11: { /* RNDIS bytes in data pages, sent GPA-direct */
			n = left < (size_t)b * 8 ? left : (size_t)b * 8;
			uint32_t off = (uint32_t)a * 15 % 4096;
			uint8_t *tmp = malloc(n + 1);
			if (!tmp)
				abort();
			memcpy(tmp, data + pos, n);
			pos += n;
			/* Across pages: DATA_PFN + 1 onwards, contiguous. */
			for (size_t done = 0; done < n;) {
				uint64_t at = off + done;
				size_t c = to_page(h, DATA_PFN + 1 + at / 4096 % (DATA_PAGES - 1),
						   (uint32_t)(at % 4096), tmp + done, n - done);
				done += c;
			}
			free(tmp);
			uint8_t pkt[96] = { 0 };
			uint32_t np = (uint32_t)((off + n + 4095) / 4096);
			if (np == 0 || np > DATA_PAGES - 1 || n == 0)
				break;
			uint32_t hdr = 8 + 8 + 8 * np;
			hdr = (hdr + 7) & ~7u;
			p16(pkt, 0, 9);
			p16(pkt, 2, (uint16_t)((16 + hdr) / 8));
			p16(pkt, 4, (uint16_t)((16 + hdr + 40) / 8));
			p16(pkt, 6, 1);
			p64(pkt, 8, ++h->next_tid);
			p32(pkt, 20, 1);
			p32(pkt, 24, (uint32_t)n);
			p32(pkt, 28, off);
			for (uint32_t i = 0; i < np; i++)
				p64(pkt, 32 + 8 * i, DATA_PFN + 1 + i);
			p32(pkt, 16 + hdr, 107);
			p32(pkt, 16 + hdr + 4, b & 1);
			p32(pkt, 16 + hdr + 8, 0xFFFFFFFF);
			gput(h, pkt, 16 + hdr + 40);
			break;
		}
		case 12: /* an NVSP message with fuzzer-chosen fields */
			if (left >= 12) {
				uint32_t x, y, z;
				memcpy(&x, data + pos, 4);
				memcpy(&y, data + pos + 4, 4);
				memcpy(&z, data + pos + 8, 4);
				pos += 12;
				gnvsp(h, 100 + a % 35, x, y, z);
			}
			break;
		}
		run(h);
	}
	struct netvsp_stats st;
	netvsp_get_stats(h->nv, &st);
	fake_free(h->f);
	netvsp_destroy(h->nv);
	free(h);
	return 0;
}
