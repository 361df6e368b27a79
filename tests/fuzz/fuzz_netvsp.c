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
 * teardown; close and reopen; a hostile ring index; offloads: an RNDIS
 * PACKET of a TCP/UDP over IPv4 frame with bent headers and fuzzer-chosen
 * checksum, LSO and VLAN per-packet info, SETs of the offload parameters,
 * a config parameter (MAC) and the packet filter, and the offload
 * functions (netvsp_offload.c) straight on input bytes. netvsp runs after
 * each. Checks beyond the sanitizers: what netvsp sends the guest stays
 * inside its receive buffer and sections, frames to the backend are
 * Ethernet-sized, and LSO segments fit their buffer. Seeds that reach the
 * offload paths are in tests/fuzz/seeds/fuzz_netvsp.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/test_vmbus_fake.h"
#include "core/log.h"
#include "dev/netvsp.h"
#include "dev/netvsp_impl.h"

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
	/* Linux's offload parameters: TCP/UDP checksums both ways, LSO v2. */
	uint8_t off[56] = { 5, 0, 0, 0, 56, 0, 0, 0, 3, 0, 0, 0, 0x0C, 0x02, 0x01, 0xFC, 28, 0, 0, 0,
			    20, 0, 0, 0, 0, 0, 0, 0, 0x80, 3, 28, 0, 1, 4, 4, 0, 0, 0, 0, 2 };
	grndis(h, off, sizeof(off));
	run(h);
	complete_all(h);
}

/* A TCP (or UDP) over IPv4 frame of len bytes to our MAC, headers right. */
static void template_frame(uint8_t *f, uint32_t len, bool udp)
{
	static const uint8_t hdr[54] = {
		0, 0x15, 0x5d, 1, 2, 3, 0x52, 0x55, 10, 0, 2, 2, 0x08, 0x00,
		0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 2, 2, 10, 0, 2, 15,
		0, 80, 0xC0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x19, 0xFF, 0xFF, 0, 0, 0, 0,
	};
	memset(f, 0x5A, len);
	memcpy(f, hdr, len < sizeof(hdr) ? len : sizeof(hdr));
	if (len >= 54) {
		f[16] = (uint8_t)((len - 14) >> 8);
		f[17] = (uint8_t)(len - 14);
		if (udp) {
			f[23] = 17;
			f[38] = (uint8_t)((len - 34) >> 8);
			f[39] = (uint8_t)(len - 34);
		}
		uint16_t c = netvsp_csum_fold(netvsp_csum_add(0, f + 14, 20));
		f[24] = (uint8_t)(c >> 8);
		f[25] = (uint8_t)c;
	}
}

static void seg_check(void *ctx, const uint8_t *frame, uint32_t len)
{
	if (len > *(uint32_t *)ctx)
		abort();
	volatile uint8_t sink = frame[len - 1];
	(void)sink;
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

/* n RNDIS bytes into data pages DATA_PFN + 1.. at off, sent GPA-direct. */
static void gpa_send(struct h *h, const uint8_t *d, size_t n, uint32_t off, uint32_t channel_type)
{
	uint32_t np = (uint32_t)((off + n + 4095) / 4096);
	if (np == 0 || np > DATA_PAGES - 1 || n == 0)
		return;
	for (size_t done = 0; done < n;) {
		uint64_t at = off + done;
		done += to_page(h, DATA_PFN + 1 + at / 4096, (uint32_t)(at % 4096), d + done,
				n - done);
	}
	uint8_t pkt[96] = { 0 };
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
	p32(pkt, 16 + hdr + 4, channel_type);
	p32(pkt, 16 + hdr + 8, 0xFFFFFFFF);
	gput(h, pkt, 16 + hdr + 40);
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
		.queues = data[0] & 0x40 ? 4 : 1, /* sub-channel requests, RSS */
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
		switch (op % 16) {
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
		case 4: { /* a frame from the backend: a TCP/UDP one, a byte bent */
			uint8_t f[1600];
			n = (size_t)a * 7 % sizeof(f);
			template_frame(f, (uint32_t)n, b & 1);
			if (n && left) {
				f[b % n] ^= data[pos];
				pos++;
			}
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
		case 11: /* RNDIS bytes in data pages, sent GPA-direct */
			n = left < (size_t)b * 8 ? left : (size_t)b * 8;
			gpa_send(h, data + pos, n, (uint32_t)a * 15 % 4096, b & 1);
			pos += n;
			break;
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
		case 13: { /* a frame with offload PPIs: csum, LSO, VLAN values from input */
			static uint8_t m[8 + 36 + 48 + 9000];
			uint32_t v[3] = { 0 };
			for (unsigned i = 0; i < 3 && left >= 4; i++, left -= 4, pos += 4)
				memcpy(&v[i], data + pos, 4);
			uint32_t flen = (uint32_t)b * 35 + 14, nppi = 0;
			uint8_t *pi = m + 8 + 36;
			for (unsigned i = 0; i < 3; i++) {
				if (!(a >> i & 1))
					continue;
				static const uint32_t type[3] = { 0, 2, 6 };
				p32(pi, 0, 16);
				p32(pi, 4, type[i]);
				p32(pi, 8, 12);
				p32(pi, 12, v[i]);
				pi += 16;
				nppi++;
			}
			uint32_t doff = 36 + 16 * nppi, len = 8 + doff + flen;
			p32(m, 0, 1);
			p32(m, 4, len);
			p32(m, 8, doff);
			p32(m, 12, flen);
			p32(m, 16, 0);
			p32(m, 20, 0);
			p32(m, 24, 0);
			p32(m, 28, nppi ? 36 : 0);
			p32(m, 32, 16 * nppi);
			template_frame(m + 8 + doff, flen, a & 8);
			if ((a & 16) && flen >= 18)
				m[8 + doff + 16] = m[8 + doff + 17] = 0; /* tot_len 0, as Linux's LSO */
			if (left) { /* bend a header byte */
				m[8 + doff + data[pos] % 64 % flen] ^= (uint8_t)(a | 1);
				pos++;
			}
			gpa_send(h, m, len, (uint32_t)a * 8 % 4096, 0);
			break;
		}
		case 14: { /* a SET: offload or RSS parameters, a config parameter, the filter */
			static const uint32_t oids[4] = { 0xFC01020C, 0x0001021B, 0x0001010E,
							  0x00010204 };
			uint8_t q[28 + 96] = { 5, 0, 0, 0 };
			n = left < (size_t)b % 97 ? left : (size_t)b % 97;
			p32(q, 4, 28 + (uint32_t)n);
			p32(q, 8, 9);
			p32(q, 12, oids[a % 4]);
			p32(q, 16, (uint32_t)n);
			p32(q, 20, 20);
			memcpy(q + 28, data + pos, n);
			pos += n;
			if (a % 4 == 0 && n >= 4 && (a & 4)) { /* a well-formed header */
				q[28] = 0x80;
				q[29] = 3;
				p16(q, 30, (uint16_t)n);
			}
			grndis(h, q, 28 + (uint32_t)n);
			break;
		}
		case 15: { /* the offload functions on raw input bytes */
			static uint8_t f[4096], seg[1518];
			n = left < (size_t)b * 16 ? left : (size_t)b * 16;
			memcpy(f, data + pos, n);
			pos += n;
			netvsp_rx_csum(f, (uint32_t)n);
			netvsp_filter_pass(a, f + 6, f, (uint32_t)n);
			netvsp_tx_csum(f, (uint32_t)n, (uint32_t)a << 1 | (b & 1) << 4 | 1);
			uint32_t segmax = 1000 + (uint32_t)b * 2;
			netvsp_lso(f, (uint32_t)n, (uint32_t)a * 8, seg, segmax, seg_check, &segmax);
			break;
		}
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
