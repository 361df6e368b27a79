/*
 * Unit tests for storvsp (src/dev/storvsp.c) on the real VMBus server with
 * the fake host (test_vmbus_fake.h), playing Linux's hv_storvsc on the
 * guest side of the rings: the init handshake (protocol versions accepted
 * and refused, properties), INQUIRY and REPORT LUNS, READ/WRITE through
 * GPA-direct ranges against a mem: disk (data checked both ways), a missing
 * LUN (peripheral qualifier 3 for INQUIRY, INVALID_LUN otherwise), and
 * hostile requests: PFNs outside RAM, several ranges, bad CDB lengths,
 * short packets, unknown operations; sub-channels (max_channel_cnt and the
 * multi-channel flag, CREATE_SUB_CHANNELS counts and states, a READ on a
 * sub-channel's own ring, the primary's close tearing them down).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_vmbus_fake.h"
#include "backend/disk.h"
#include "dev/storvsp.h"

#define RING_PAGES 16
#define RQST_INIT 0xFFFFFFFFFFFFFFFDull
#define BUF_PFN 200 /* guest data buffers from here */

struct t {
	struct fake *f;
	struct disk *disk;
	struct storvsp *sv;
	struct gring out, in;       /* the channel the test talks on now */
	struct gring pout, pin;     /* the primary's */
	uint32_t relid;
};

static void *map(void *o, uint64_t gpa, uint64_t len)
{
	struct fake *f = o;
	return fake_map(f, gpa, len);
}

/* The guest's view of a ring GPADL of RING_PAGES pages from pfn0, downstream at half. */
static void rings_at(struct t *t, uint64_t pfn0, struct gring *out, struct gring *in)
{
	out->hdr = t->f->ram + pfn0 * 4096;
	in->hdr = t->f->ram + (pfn0 + RING_PAGES / 2) * 4096;
	for (unsigned i = 0; i < RING_PAGES / 2 - 1; i++) {
		out->data[i] = t->f->ram + (pfn0 + 1 + i) * 4096;
		in->data[i] = t->f->ram + (pfn0 + 1 + RING_PAGES / 2 + i) * 4096;
	}
	out->size = in->size = (RING_PAGES / 2 - 1) * 4096;
}

/* The guest opens relid on a ring GPADL from pfn0; returns the open status. */
static uint32_t open_rings(struct t *t, uint32_t relid, uint32_t gpadl, uint64_t pfn0)
{
	uint64_t pfns[RING_PAGES];
	for (unsigned i = 0; i < RING_PAGES; i++)
		pfns[i] = pfn0 + i;
	memset(t->f->ram + pfn0 * 4096, 0, RING_PAGES * 4096);
	guest_gpadl(t->f, relid, gpadl, pfns, RING_PAGES);
	struct fake_msg *m = fake_next(t->f);
	assert_int_equal(m32(m, 0), 10);
	assert_int_equal(m32(m, 16), 0);
	guest_open(t->f, relid, gpadl, 0, RING_PAGES / 2);
	m = fake_next(t->f);
	assert_int_equal(m32(m, 0), 6);
	return m32(m, 16);
}

static struct t *setup_subs(unsigned sub_channels)
{
	struct t *t = calloc(1, sizeof(*t));
	t->f = fake_new(0, 1);
	struct disk_kind_spec k = { .kind = DISK_KIND_MEM, .mem_size = 1 << 20 };
	char err[128];
	assert_int_equal(disk_open(&k, false, &t->disk, err, sizeof(err)), 0);
	uint8_t pat[4096];
	for (unsigned i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(disk_pwrite(t->disk, pat, sizeof(pat), 0), 0);
	struct storvsp_lun_config lun = { .disk = t->disk, .lun = 0 };
	struct storvsp_config cfg = { .luns = &lun, .nluns = 1, .map = map,
				      .map_opaque = t->f, .sub_channels = sub_channels };
	assert_int_equal(storvsp_create(t->f->srv, &cfg, &t->sv), 0);
	assert_int_equal(guest_contact(t->f, 4, VMBUS_VERSION_WIN10_V5_2, 0), 0);
	fake_next(t->f); /* VERSION_RESPONSE */
	guest_simple(t->f, 3, 0, 0);
	struct fake_msg *m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 1); /* OFFERCHANNEL: the SCSI class */
	assert_int_equal(m->b[8], 0xd9);
	t->relid = m32(m, 184);
	fake_next(t->f); /* ALLOFFERS_DELIVERED */
	assert_int_equal(open_rings(t, t->relid, 0x100, 32), 0);
	rings_at(t, 32, &t->out, &t->in);
	t->pout = t->out;
	t->pin = t->in;
	return t;
}

static struct t *setup_t(void)
{
	return setup_subs(0);
}

static void free_t(struct t *t)
{
	fake_free(t->f);
	storvsp_destroy(t->sv);
	disk_close(t->disk);
	free(t);
}

static uint32_t g32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* A vstor packet (64 bytes) with operation op. */
static void vstor(uint8_t pkt[64], uint32_t op)
{
	memset(pkt, 0, 64);
	p32(pkt, 0, op);
}

/* The host's answer: returns the vstor status, fills pkt; -1 if none. */
static int64_t answer(struct t *t, uint64_t want_id, uint8_t pkt[64])
{
	storvsp_poll(t->sv);
	uint8_t d[16], buf[256];
	uint64_t trailer;
	int n = gring_read(&t->in, d, buf, sizeof(buf), &trailer);
	if (n < 0)
		return -1;
	uint64_t id;
	memcpy(&id, d + 8, 8);
	assert_int_equal(d[0], 11);  /* completion */
	assert_int_equal(id, want_id);
	assert_true(n >= 64);
	memcpy(pkt, buf, 64);
	uint32_t status;
	memcpy(&status, buf + 8, 4);
	return status;
}


static void init_props(struct t *t, unsigned subs)
{
	uint8_t pkt[64], ans[64];
	vstor(pkt, 7);
	assert_true(gring_write(&t->out, RQST_INIT, pkt, 64));
	assert_int_equal(answer(t, RQST_INIT, ans), 0);
	vstor(pkt, 9);
	p16(pkt, 12, 0x0402); /* too old: refused */
	assert_true(gring_write(&t->out, RQST_INIT, pkt, 64));
	assert_true(answer(t, RQST_INIT, ans) != 0);
	p16(pkt, 12, 0x0602);
	assert_true(gring_write(&t->out, RQST_INIT, pkt, 64));
	assert_int_equal(answer(t, RQST_INIT, ans), 0);
	vstor(pkt, 10);
	assert_true(gring_write(&t->out, RQST_INIT, pkt, 64));
	assert_int_equal(answer(t, RQST_INIT, ans), 0);
	assert_int_equal(g32(ans + 12 + 12), 512 * 1024); /* max_transfer_bytes */
	assert_int_equal(g32(ans + 12 + 8) & 1, subs ? 1 : 0); /* multi-channel */
	assert_int_equal(ans[12 + 4] | ans[12 + 5] << 8, subs); /* max_channel_cnt */
	vstor(pkt, 8);
	assert_true(gring_write(&t->out, RQST_INIT, pkt, 64));
	assert_int_equal(answer(t, RQST_INIT, ans), 0);
}

static void init(struct t *t)
{
	init_props(t, 0);
}

/*
 * An EXECUTE_SRB as storvsc sends it: GPA-direct with one range over
 * `pages` pages from BUF_PFN (or inband when len is 0).
 */
static void srb(struct t *t, uint64_t id, uint8_t lun, const uint8_t *cdb, uint8_t cdb_len,
		uint8_t data_in, uint32_t len, uint32_t rangecount, uint64_t first_pfn)
{
	uint8_t pkt[64];
	vstor(pkt, 3);
	p16(pkt, 12, 52);
	pkt[12 + 7] = lun;
	pkt[12 + 8] = cdb_len;
	pkt[12 + 9] = 20;
	pkt[12 + 10] = data_in;
	p32(pkt, 12 + 12, len);
	memcpy(pkt + 12 + 16, cdb, cdb_len > 16 ? 16 : cdb_len);
	if (!len) {
		assert_true(gring_write(&t->out, id, pkt, 64));
		return;
	}
	uint32_t npfn = (len + 4095) / 4096;
	uint32_t hdr = 8 + 8 + 8 * npfn, pktlen = 16 + hdr + 64;
	uint8_t raw[512] = { 0 };
	p16(raw, 0, 9);
	p16(raw, 2, (uint16_t)((16 + hdr) / 8));
	p16(raw, 4, (uint16_t)(pktlen / 8));
	p16(raw, 6, 1);
	p64(raw, 8, id);
	p32(raw, 20, rangecount);
	p32(raw, 24, len);
	p32(raw, 28, 0);
	for (uint32_t i = 0; i < npfn; i++)
		p64(raw, 32 + 8 * i, first_pfn + i);
	memcpy(raw + 16 + hdr, pkt, 64);
	uint32_t w = gr32(&t->out, 0);
	assert_true(gring_free(&t->out) > pktlen + 8);
	gring_copy(&t->out, w, raw, pktlen, true);
	uint64_t trailer = (uint64_t)w << 32;
	gring_copy(&t->out, w + pktlen, &trailer, 8, true);
	gw32(&t->out, 0, (w + pktlen + 8) % t->out.size);
}

static void test_init_and_inquiry(void **state)
{
	(void)state;
	struct t *t = setup_t();
	init(t);
	uint8_t cdb[6] = { 0x12, 0, 0, 0, 96, 0 }, ans[64];
	memset(fake_page(t->f, BUF_PFN), 0xEE, 4096);
	srb(t, 5, 0, cdb, 6, 1, 96, 1, BUF_PFN);
	assert_int_equal(answer(t, 5, ans), 0);
	assert_int_equal(ans[12 + 2], 1);  /* SRB_STATUS_SUCCESS */
	assert_int_equal(ans[12 + 3], 0);  /* GOOD */
	uint8_t *inq = fake_page(t->f, BUF_PFN);
	assert_int_equal(inq[0], 0x00);    /* a disk, connected */
	assert_memory_equal(inq + 8, "Msft", 4);
	assert_true(g32(ans + 12 + 12) >= 36);

	/* A missing LUN: INQUIRY answers "no device here", others INVALID_LUN. */
	srb(t, 6, 5, cdb, 6, 1, 96, 1, BUF_PFN);
	assert_int_equal(answer(t, 6, ans), 0);
	assert_int_equal(ans[12 + 2], 1);
	assert_int_equal(fake_page(t->f, BUF_PFN)[0], 0x7f);
	uint8_t tur[6] = { 0 };
	srb(t, 7, 5, tur, 6, 2, 0, 1, 0);
	assert_int_equal(answer(t, 7, ans), 0);
	assert_int_equal(ans[12 + 2], 0x20);

	/* REPORT LUNS lists LUN 0 only. */
	uint8_t rl[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
	srb(t, 8, 0, rl, 12, 1, 64, 1, BUF_PFN);
	assert_int_equal(answer(t, 8, ans), 0);
	assert_int_equal(ans[12 + 2], 1);
	assert_int_equal(fake_page(t->f, BUF_PFN)[3], 8); /* list length: one LUN */
	free_t(t);
}

static void test_read_write(void **state)
{
	(void)state;
	struct t *t = setup_t();
	init(t);
	uint8_t ans[64];
	/* READ(10) LBA 0, 8 blocks into two guest pages' first half. */
	uint8_t rd[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0 };
	srb(t, 9, 0, rd, 10, 1, 4096, 1, BUF_PFN);
	assert_int_equal(answer(t, 9, ans), 0);
	assert_int_equal(ans[12 + 2], 1);
	assert_int_equal(g32(ans + 12 + 12), 4096);
	uint8_t *b = fake_page(t->f, BUF_PFN);
	for (unsigned i = 0; i < 4096; i++)
		if (b[i] != (uint8_t)(i * 7 + 3))
			fail_msg("byte %u read wrong", i);
	/* WRITE(10) LBA 16, 16 blocks from two pages, then check the disk. */
	memset(fake_page(t->f, BUF_PFN + 1), 0xA5, 4096);
	memset(fake_page(t->f, BUF_PFN + 2), 0x5A, 4096);
	uint8_t wr[10] = { 0x2a, 0, 0, 0, 0, 16, 0, 0, 16, 0 };
	srb(t, 10, 0, wr, 10, 0, 8192, 1, BUF_PFN + 1);
	assert_int_equal(answer(t, 10, ans), 0);
	assert_int_equal(ans[12 + 2], 1);
	uint8_t got[8192];
	assert_int_equal(disk_pread(t->disk, got, sizeof(got), 16 * 512), 0);
	assert_memory_equal(got, fake_page(t->f, BUF_PFN + 1), 4096);
	assert_memory_equal(got + 4096, fake_page(t->f, BUF_PFN + 2), 4096);
	/* Out of range: CHECK CONDITION with sense, srb ERROR|AUTOSENSE. */
	uint8_t oor[10] = { 0x28, 0, 0, 0x10, 0, 0, 0, 0, 1, 0 };
	srb(t, 11, 0, oor, 10, 1, 512, 1, BUF_PFN);
	assert_int_equal(answer(t, 11, ans), 0);
	assert_int_equal(ans[12 + 2], 0x84);
	assert_int_equal(ans[12 + 3], 2);
	assert_true(ans[12 + 9] > 0);            /* sense length */
	assert_int_equal(ans[12 + 16 + 2] & 0xf, 5); /* ILLEGAL REQUEST */
	assert_int_equal(ans[12 + 16 + 12], 0x21);   /* LBA OUT OF RANGE */
	free_t(t);
}

/*
 * Control replies when the host-to-guest ring is full: none is lost, they
 * arrive in order once the guest reads, and the host stops taking requests
 * meanwhile (they wait in the guest-to-host ring).
 */
static void test_control_backlog(void **state)
{
	(void)state;
	struct t *t = setup_t();
	uint8_t pkt[64], buf[256], d[16];
	uint64_t trailer, next = 1, sent = 0;
	vstor(pkt, 7); /* BEGIN_INITIALIZATION, answered with a plain completion */
	for (int round = 0; round < 3; round++) {
		while (sent < 300u * (round + 1) && gring_write(&t->out, sent + 1, pkt, 64))
			sent++;
		storvsp_poll(t->sv);
	}
	assert_true(sent > 400); /* more than the guest's ring holds */
	/* The guest reads everything there is, polling the host as it goes. */
	for (int spins = 0; next <= sent && spins < 100000; spins++) {
		int n = gring_read(&t->in, d, buf, sizeof(buf), &trailer);
		if (n < 0) {
			storvsp_poll(t->sv);
			continue;
		}
		uint64_t id;
		memcpy(&id, d + 8, 8);
		assert_int_equal(id, next);
		assert_int_equal(g32(buf + 8), 0);
		next++;
	}
	assert_int_equal(next, sent + 1);
	free_t(t);
}

static void test_hostile(void **state)
{
	(void)state;
	struct t *t = setup_t();
	init(t);
	uint8_t ans[64];
	uint8_t rd[16] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	/* PFN beyond guest RAM */
	srb(t, 20, 0, rd, 10, 1, 512, 1, (FAKE_RAM / 4096) + 5);
	assert_int_equal(answer(t, 20, ans), 0);
	assert_int_equal(ans[12 + 2], 0x06);
	/* two ranges */
	srb(t, 21, 0, rd, 10, 1, 512, 2, BUF_PFN);
	assert_int_equal(answer(t, 21, ans), 0);
	assert_int_equal(ans[12 + 2], 0x06);
	/* CDB length 0 and 17 */
	srb(t, 22, 0, rd, 0, 1, 512, 1, BUF_PFN);
	assert_int_equal(answer(t, 22, ans), 0);
	assert_int_equal(ans[12 + 2], 0x06);
	srb(t, 23, 0, rd, 17, 1, 512, 1, BUF_PFN);
	assert_int_equal(answer(t, 23, ans), 0);
	assert_int_equal(ans[12 + 2], 0x06);
	/* A short packet is dropped; the next request still works. */
	uint8_t shortp[16] = { 3 };
	assert_true(gring_write(&t->out, 24, shortp, sizeof(shortp)));
	assert_int_equal(answer(t, 24, ans), -1);
	/* Unknown operation: answered with a failure status. */
	uint8_t pkt[64];
	vstor(pkt, 99);
	assert_true(gring_write(&t->out, 25, pkt, 64));
	assert_true(answer(t, 25, ans) != 0);
	/* Still serving. */
	srb(t, 26, 0, rd, 10, 1, 512, 1, BUF_PFN);
	assert_int_equal(answer(t, 26, ans), 0);
	assert_int_equal(ans[12 + 2], 1);
	free_t(t);
}

/* CREATE_SUB_CHANNELS {count}: returns the vstor status of the answer. */
static int64_t create_subs(struct t *t, uint16_t count)
{
	uint8_t pkt[64], ans[64];
	vstor(pkt, 13);
	p16(pkt, 12, count);
	assert_true(gring_write(&t->out, RQST_INIT, pkt, 64));
	return answer(t, RQST_INIT, ans);
}

/* Expects n sub-channel offers of the SCSI controller; fills relids[1..n]. */
static void sub_offers(struct t *t, unsigned n, uint32_t *relids)
{
	vmbus_server_flush(t->f->srv);
	for (unsigned i = 1; i <= n; i++) {
		struct fake_msg *m = fake_next(t->f);
		assert_non_null(m);
		assert_int_equal(m32(m, 0), 1);
		assert_int_equal(m->b[8], 0xd9);
		assert_int_equal(m->b[180], i);
		relids[i] = m32(m, 184);
	}
	assert_null(fake_next(t->f));
}

static void test_sub_channels(void **state)
{
	(void)state;
	struct t *t = setup_subs(3);
	/* Before the handshake's QUERY_PROPERTIES: wrong state. */
	assert_int_equal(create_subs(t, 1), 0xC0000184);
	init_props(t, 3);
	/* 0 and more than max_channel_cnt: invalid parameter. */
	assert_int_equal(create_subs(t, 0), 0xC000000D);
	assert_int_equal(create_subs(t, 4), 0xC000000D);
	assert_int_equal(create_subs(t, 2), 0);
	uint32_t sub[3];
	sub_offers(t, 2, sub);
	/* A second request: wrong state. */
	assert_int_equal(create_subs(t, 1), 0xC0000184);
	/* Sub-channel 2 opens on its own rings and is a full queue. */
	assert_int_equal(open_rings(t, sub[2], 0x200, 64), 0);
	rings_at(t, 64, &t->out, &t->in);
	uint8_t ans[64];
	memset(fake_page(t->f, BUF_PFN), 0, 4096);
	uint8_t rd[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0 };
	srb(t, 40, 0, rd, 10, 1, 4096, 1, BUF_PFN);
	assert_int_equal(answer(t, 40, ans), 0);
	assert_int_equal(ans[12 + 2], 1);
	assert_int_equal(g32(ans + 12 + 12), 4096);
	uint8_t *b = fake_page(t->f, BUF_PFN);
	for (unsigned i = 0; i < 4096; i++)
		if (b[i] != (uint8_t)(i * 7 + 3))
			fail_msg("byte %u read wrong on the sub-channel", i);
	/* Nothing went to the primary's ring. */
	uint8_t d[16], buf[256];
	uint64_t trailer;
	assert_int_equal(gring_read(&t->pin, d, buf, sizeof(buf), &trailer), -EAGAIN);
	/* CREATE_SUB_CHANNELS on a sub-channel: wrong state. */
	assert_int_equal(create_subs(t, 1), 0xC0000184);
	/* The primary still works meanwhile. */
	t->out = t->pout;
	t->in = t->pin;
	srb(t, 41, 0, rd, 10, 1, 4096, 1, BUF_PFN);
	assert_int_equal(answer(t, 41, ans), 0);
	assert_int_equal(ans[12 + 2], 1);
	/* The primary closes: the sub-channel's queue stops, both are rescinded. */
	guest_simple(t->f, 7, t->relid, 0);
	assert_int_equal(m32(fake_next(t->f), 0), 2);
	assert_int_equal(m32(fake_next(t->f), 0), 2);
	rings_at(t, 64, &t->out, &t->in);
	srb(t, 42, 0, rd, 10, 1, 4096, 1, BUF_PFN);
	assert_int_equal(answer(t, 42, ans), -1);
	/* Reopen of the primary: a new handshake may ask again. */
	guest_simple(t->f, 13, sub[1], 0);
	guest_simple(t->f, 13, sub[2], 0);
	memset(t->f->ram + 32 * 4096, 0, RING_PAGES * 4096); /* fresh rings */
	guest_open(t->f, t->relid, 0x100, 0, RING_PAGES / 2);
	assert_int_equal(m32(fake_next(t->f), 16), 0);
	t->out = t->pout;
	t->in = t->pin;
	init_props(t, 3);
	assert_int_equal(create_subs(t, 3), 0);
	uint32_t again[4];
	sub_offers(t, 3, again);
	free_t(t);
}

/* Without sub_channels the controller offers none (properties say 0). */
static void test_no_sub_channels(void **state)
{
	(void)state;
	struct t *t = setup_t();
	init(t);
	assert_int_equal(create_subs(t, 1), 0xC000000D);
	vmbus_server_flush(t->f->srv);
	assert_null(fake_next(t->f));
	free_t(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_and_inquiry),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_control_backlog),
		cmocka_unit_test(test_sub_channels),
		cmocka_unit_test(test_no_sub_channels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
