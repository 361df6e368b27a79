/*
 * Unit tests: VMBus channel ring buffers (src/vmbus/vmbus_ring.c; Linux
 * drivers/hv/ring_buffer.c semantics, hyperv-linux-guest.md §6.6-6.7). The
 * test opens a channel through the server on a fake host, then plays the
 * guest's side of both rings through the GPADL's scattered pages: packet
 * round trips both ways with wrap-around, a full ring and the strictly-more
 * rule, pending_send_sz in both directions, the interrupt mask, and hostile
 * indexes and descriptors (-EPROTO, never out of bounds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "test_vmbus_fake.h"

struct rig {
	struct fake *f;
	struct fake_dev d;
	struct vmbus_channel *ch;
	uint32_t relid;
	struct gring in;  /* guest-to-host (the guest writes) */
	struct gring out; /* host-to-guest (the guest reads) */
};

/*
 * A channel whose ring GPADL has `in_pages` + `out_pages` pages (headers
 * included), scattered backwards through RAM so no two neighbours are
 * adjacent in the host.
 */
static struct rig *rig_new(uint32_t in_pages, uint32_t out_pages)
{
	struct rig *r = calloc(1, sizeof(*r));
	r->f = fake_new(0, 2);
	r->ch = fake_offer(r->f, &r->d, 1);
	r->relid = vmbus_channel_relid(r->ch);
	assert_int_equal(guest_contact(r->f, 4, 0x50003, 0), 0);
	assert_non_null(fake_next(r->f));
	uint32_t n = in_pages + out_pages;
	uint64_t pfns[64];
	for (uint32_t i = 0; i < n; i++)
		pfns[i] = 300 - 2 * i;
	guest_gpadl(r->f, r->relid, 0x100, pfns, n);
	struct fake_msg *m = fake_next(r->f);
	assert_int_equal(m32(m, 16), 0);
	r->in.hdr = r->f->ram + pfns[0] * 4096;
	for (uint32_t i = 1; i < in_pages; i++)
		r->in.data[i - 1] = r->f->ram + pfns[i] * 4096;
	r->in.size = (in_pages - 1) * 4096;
	r->out.hdr = r->f->ram + pfns[in_pages] * 4096;
	for (uint32_t i = 1; i < out_pages; i++)
		r->out.data[i - 1] = r->f->ram + pfns[in_pages + i] * 4096;
	r->out.size = (out_pages - 1) * 4096;
	guest_open(r->f, r->relid, 0x100, 1, in_pages);
	m = fake_next(r->f);
	assert_int_equal(m32(m, 16), 0);
	assert_int_equal(r->d.opens, 1);
	return r;
}

static void rig_free(struct rig *r)
{
	assert_false(r->f->lock_error);
	fake_free(r->f);
	free(r);
}

static void fill(uint8_t *b, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((seed + i) * 2654435761u >> 13);
}

static void test_feature_bits(void **state)
{
	(void)state;
	struct rig *r = rig_new(2, 2);
	/* The host honours pending_send_sz in both rings (feature bit 0). */
	assert_int_equal(gr32(&r->in, 64) & 1, 1);
	assert_int_equal(gr32(&r->out, 64) & 1, 1);
	/* Empty guest-to-host ring. */
	uint8_t buf[64];
	struct vmbus_packet_info info;
	assert_int_equal(vmbus_channel_recv(r->ch, buf, sizeof(buf), &info), -EAGAIN);
	assert_int_equal(vmbus_channel_skip(r->ch), -EAGAIN);
	rig_free(r);
}

static void test_recv_round_trip(void **state)
{
	(void)state;
	/* One data page: packets wrap again and again. */
	struct rig *r = rig_new(2, 2);
	uint32_t read_before = 0;
	for (uint32_t i = 0; i < 300; i++) {
		uint8_t p[600], got[700];
		uint32_t len = 1 + (i * 37) % 600;
		fill(p, len, i);
		assert_true(gring_write(&r->in, 1000 + i, p, len));
		struct vmbus_packet_info info;
		int n = vmbus_channel_recv(r->ch, got, sizeof(got), &info);
		uint32_t pkt = (16 + len + 7) & ~7u;
		assert_int_equal(n, (int)pkt);
		assert_int_equal(info.type, 6);
		assert_int_equal(info.data_offset, 16);
		assert_int_equal(info.len, pkt);
		assert_int_equal(info.trans_id, 1000 + i);
		assert_memory_equal(got + 16, p, len);
		/* The read index moved past the packet and its trailer. */
		read_before = (read_before + pkt + 8) % r->in.size;
		assert_int_equal(gr32(&r->in, 4), read_before);
	}
	assert_int_equal(vmbus_channel_recv(r->ch, NULL, 0, &(struct vmbus_packet_info){ 0 }),
			 -EAGAIN);
	rig_free(r);
}

static void test_recv_small_buffer_and_skip(void **state)
{
	(void)state;
	struct rig *r = rig_new(3, 2);
	uint8_t p[100], got[200];
	fill(p, sizeof(p), 1);
	assert_true(gring_write(&r->in, 1, p, 100));
	assert_true(gring_write(&r->in, 2, p, 50));
	struct vmbus_packet_info info;
	/* Too small: -EMSGSIZE, the packet stays. */
	assert_int_equal(vmbus_channel_recv(r->ch, got, 64, &info), -EMSGSIZE);
	assert_int_equal(gr32(&r->in, 4), 0);
	assert_int_equal(vmbus_channel_skip(r->ch), 0);
	assert_int_equal(vmbus_channel_recv(r->ch, got, sizeof(got), &info), 16 + 56);
	assert_int_equal(info.trans_id, 2);
	assert_memory_equal(got + 16, p, 50);
	rig_free(r);
}

static void test_send_round_trip(void **state)
{
	(void)state;
	struct rig *r = rig_new(2, 2);
	for (uint32_t i = 0; i < 300; i++) {
		uint8_t p[700], hdr[16], d[16] = { 0 }, got[800];
		uint32_t len = (i * 53) % 700;
		uint32_t hlen = i % 3 == 0 ? 16 : 0;
		fill(p, len, i);
		fill(hdr, sizeof(hdr), i + 7);
		uint32_t w = gr32(&r->out, 0);
		assert_int_equal(vmbus_channel_send(r->ch, i % 3 ? 6 : 7, (uint16_t)(i & 1), i * 3,
						    hdr, hlen, p, len), 0);
		uint64_t trailer;
		int n = gring_read(&r->out, d, got, sizeof(got), &trailer);
		uint32_t pkt = (16 + hlen + len + 7) & ~7u;
		assert_int_equal(n, (int)pkt - 16);
		uint16_t type, off8, len8, flags;
		uint64_t tid;
		memcpy(&type, d, 2);
		memcpy(&off8, d + 2, 2);
		memcpy(&len8, d + 4, 2);
		memcpy(&flags, d + 6, 2);
		memcpy(&tid, d + 8, 8);
		assert_int_equal(type, i % 3 ? 6 : 7);
		assert_int_equal(off8, (16 + hlen) / 8);
		assert_int_equal(len8, pkt / 8);
		assert_int_equal(flags, i & 1);
		assert_int_equal(tid, i * 3);
		if (hlen)
			assert_memory_equal(got, hdr, hlen);
		assert_memory_equal(got + hlen, p, len);
		/* Padding is zero; the trailer holds the packet's start index. */
		for (uint32_t k = hlen + len; k < pkt - 16; k++)
			assert_int_equal(got[k], 0);
		assert_int_equal(trailer, (uint64_t)w << 32);
	}
	rig_free(r);
}

static void test_send_full_and_pending(void **state)
{
	(void)state;
	struct rig *r = rig_new(2, 2);
	uint8_t p[1000] = { 0 };
	/* 1000-byte payloads: 1016 + 8 = 1024 per packet in a 4096-byte ring.
	 * Three fit (3072 used, 1024 free); a fourth would leave 0 free, and a
	 * writer needs strictly more room than the packet: -EAGAIN. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(vmbus_channel_send(r->ch, 6, 0, (uint64_t)i, NULL, 0, p, 1000), 0);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 9, NULL, 0, p, 1000), -EAGAIN);
	assert_int_equal(vmbus_channel_send_space(r->ch), 1024 - 32);
	/* The host asked the guest to signal once the packet fits. */
	assert_int_equal(gr32(&r->out, 12), 1024);
	/* A smaller packet still fits: 1016 - 24 free after it. */
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 4, NULL, 0, p, 992 - 24 - 8), 0);
	/* The guest reads one packet: now room, and pending_send_sz is cleared
	 * by the next successful send. */
	uint8_t d[16], got[1100];
	uint64_t t;
	assert_true(gring_read(&r->out, d, got, sizeof(got), &t) > 0);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 5, NULL, 0, p, 900), 0);
	assert_int_equal(gr32(&r->out, 12), 0);
	/* Absurd sizes are refused, not truncated. */
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 5, NULL, 0, p, 5000), -EINVAL);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 5, p, 12, p, 8), -EINVAL);
	rig_free(r);
}

static void test_send_signal_rules(void **state)
{
	(void)state;
	struct rig *r = rig_new(2, 3);
	uint8_t p[40] = { 1 };
	/* Empty ring, mask clear: the first packet signals target VP 1. */
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 1, NULL, 0, p, 40), 0);
	assert_int_equal(r->f->nsig, 1);
	assert_int_equal(r->f->sig_vp[0], 1);
	assert_int_equal(r->f->sig_relid[0], r->relid);
	/* Not empty before: no signal (the guest is still reading). */
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 2, NULL, 0, p, 40), 0);
	assert_int_equal(r->f->nsig, 1);
	/* The guest drains with its mask set: no signal. */
	uint8_t d[16], got[64];
	uint64_t t;
	while (gring_read(&r->out, d, got, sizeof(got), &t) > 0)
		;
	gw32(&r->out, 8, 1);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 3, NULL, 0, p, 40), 0);
	assert_int_equal(r->f->nsig, 1);
	/* Mask cleared and ring drained again: signals. */
	while (gring_read(&r->out, d, got, sizeof(got), &t) > 0)
		;
	gw32(&r->out, 8, 0);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 4, NULL, 0, p, 40), 0);
	assert_int_equal(r->f->nsig, 2);
	/* MODIFYCHANNEL moves the signal to the new VP. */
	guest_simple(r->f, 22, r->relid, 0);
	while (gring_read(&r->out, d, got, sizeof(got), &t) > 0)
		;
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 5, NULL, 0, p, 40), 0);
	assert_int_equal(r->f->nsig, 3);
	assert_int_equal(r->f->sig_vp[2], 0);
	rig_free(r);
}

static void test_recv_interrupt_mask(void **state)
{
	(void)state;
	struct rig *r = rig_new(2, 2);
	/* The guest sees the mask set; an empty recv clears it so the guest's
	 * next write (into an empty ring) signals. */
	gw32(&r->in, 8, 1);
	struct vmbus_packet_info info;
	uint8_t buf[64];
	assert_int_equal(vmbus_channel_recv(r->ch, buf, sizeof(buf), &info), -EAGAIN);
	assert_int_equal(gr32(&r->in, 8), 0);
	rig_free(r);
}

static void test_recv_pending_send_sz(void **state)
{
	(void)state;
	struct rig *r = rig_new(2, 2);
	uint8_t p[1000] = { 0 }, got[1100];
	for (int i = 0; i < 3; i++)
		assert_true(gring_write(&r->in, 1, p, 1000));
	assert_false(gring_write(&r->in, 1, p, 1000)); /* strictly more needed */
	/* The guest wants a signal once more than 1024 bytes are free. */
	gw32(&r->in, 12, 1024);
	struct vmbus_packet_info info;
	unsigned before = r->f->nsig;
	assert_int_equal(vmbus_channel_recv(r->ch, got, sizeof(got), &info), 1016);
	assert_int_equal(r->f->nsig, before + 1); /* 1024 -> 2048 free crossed it */
	assert_int_equal(vmbus_channel_recv(r->ch, got, sizeof(got), &info), 1016);
	assert_int_equal(r->f->nsig, before + 1); /* already above: no repeat */
	/* Without pending_send_sz, reading never signals. */
	gw32(&r->in, 12, 0);
	assert_true(gring_write(&r->in, 1, p, 1000));
	assert_true(gring_write(&r->in, 1, p, 1000));
	while (vmbus_channel_recv(r->ch, got, sizeof(got), &info) > 0)
		;
	assert_int_equal(r->f->nsig, before + 1);
	rig_free(r);
}

/* Writes a raw descriptor at the guest's write index and advances it. */
static void raw_desc(struct rig *r, uint16_t type, uint16_t off8, uint16_t len8,
		     uint32_t advance)
{
	uint8_t d[16] = { 0 };
	p16(d, 0, type);
	p16(d, 2, off8);
	p16(d, 4, len8);
	uint32_t w = gr32(&r->in, 0);
	gring_copy(&r->in, w, d, 16, true);
	gw32(&r->in, 0, (w + advance) % r->in.size);
}

/* A fresh channel, one hostile thing done to it, expecting -EPROTO. */
static void expect_broken(struct rig *r)
{
	uint8_t buf[8192];
	struct vmbus_packet_info info;
	assert_int_equal(vmbus_channel_recv(r->ch, buf, sizeof(buf), &info), -EPROTO);
	/* It stays broken, even if the guest repairs things. */
	gw32(&r->in, 0, gr32(&r->in, 4));
	assert_int_equal(vmbus_channel_recv(r->ch, buf, sizeof(buf), &info), -EPROTO);
	assert_int_equal(vmbus_channel_skip(r->ch), -EPROTO);
}

static void test_hostile_recv(void **state)
{
	(void)state;
	struct rig *r;
	/* Write index beyond the data area; unaligned. */
	r = rig_new(2, 2);
	gw32(&r->in, 0, 4096);
	expect_broken(r);
	rig_free(r);
	r = rig_new(2, 2);
	gw32(&r->in, 0, 0xFFFFFFF8u);
	expect_broken(r);
	rig_free(r);
	r = rig_new(2, 2);
	gw32(&r->in, 0, 36);
	expect_broken(r);
	rig_free(r);
	/* Less than a descriptor and trailer available. */
	r = rig_new(2, 2);
	gw32(&r->in, 0, 16);
	expect_broken(r);
	rig_free(r);
	/* len8 larger than what the write index makes available. */
	r = rig_new(2, 2);
	raw_desc(r, 6, 2, 100, 64);
	expect_broken(r);
	rig_free(r);
	r = rig_new(2, 2);
	raw_desc(r, 6, 2, 0xFFFF, 4088);
	expect_broken(r);
	rig_free(r);
	/* offset8 beyond len8; len8 below a descriptor; offset8 inside it. */
	r = rig_new(2, 2);
	raw_desc(r, 6, 9, 8, 72);
	expect_broken(r);
	rig_free(r);
	r = rig_new(2, 2);
	raw_desc(r, 6, 2, 1, 72);
	expect_broken(r);
	rig_free(r);
	r = rig_new(2, 2);
	raw_desc(r, 6, 1, 8, 72);
	expect_broken(r);
	rig_free(r);
	/* A well-formed packet after a broken one is not read; reopening the
	 * channel gives a working ring again. */
	r = rig_new(2, 2);
	raw_desc(r, 6, 2, 100, 64);
	expect_broken(r);
	guest_simple(r->f, 7, r->relid, 0);
	memset(r->in.hdr, 0, 16);
	memset(r->out.hdr, 0, 16);
	guest_open(r->f, r->relid, 0x100, 0, 2);
	assert_int_equal(m32(fake_next(r->f), 16), 0);
	uint8_t p[8] = { 7 }, got[64];
	assert_true(gring_write(&r->in, 5, p, 8));
	struct vmbus_packet_info info;
	assert_int_equal(vmbus_channel_recv(r->ch, got, sizeof(got), &info), 24);
	rig_free(r);
}

static void test_hostile_send(void **state)
{
	(void)state;
	struct rig *r = rig_new(2, 2);
	uint8_t p[16] = { 0 };
	/* The guest's read index out of range or unaligned: -EPROTO. */
	gw32(&r->out, 4, 4096);
	assert_int_equal(vmbus_channel_send_space(r->ch), 0);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 1, NULL, 0, p, 16), -EPROTO);
	gw32(&r->out, 4, 0);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 1, NULL, 0, p, 16), -EPROTO);
	rig_free(r);
	r = rig_new(2, 2);
	gw32(&r->out, 4, 12);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 1, NULL, 0, p, 16), -EPROTO);
	rig_free(r);
	/* A read index that runs ahead of the write index makes the ring look
	 * nearly full, never overflows it. */
	r = rig_new(2, 2);
	gw32(&r->out, 4, 8);
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 1, NULL, 0, p, 16), -EAGAIN);
	rig_free(r);
}

static void test_closed_channel(void **state)
{
	(void)state;
	struct rig *r = rig_new(2, 2);
	guest_simple(r->f, 7, r->relid, 0);
	assert_int_equal(r->d.closes, 1);
	uint8_t p[16] = { 0 };
	struct vmbus_packet_info info;
	assert_int_equal(vmbus_channel_send(r->ch, 6, 0, 1, NULL, 0, p, 16), -EPIPE);
	assert_int_equal(vmbus_channel_recv(r->ch, p, 16, &info), -EPIPE);
	assert_int_equal(vmbus_channel_send_space(r->ch), 0);
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feature_bits),
		cmocka_unit_test(test_recv_round_trip),
		cmocka_unit_test(test_recv_small_buffer_and_skip),
		cmocka_unit_test(test_send_round_trip),
		cmocka_unit_test(test_send_full_and_pending),
		cmocka_unit_test(test_send_signal_rules),
		cmocka_unit_test(test_recv_interrupt_mask),
		cmocka_unit_test(test_recv_pending_send_sz),
		cmocka_unit_test(test_hostile_recv),
		cmocka_unit_test(test_hostile_send),
		cmocka_unit_test(test_closed_channel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
