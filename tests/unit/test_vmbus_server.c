/*
 * Unit tests: the VMBus server's control plane (src/vmbus/vmbus_server.c)
 * against a fake host, the test playing a Linux 6.1 guest
 * (hyperv-linux-guest.md §6): version negotiation (accepted, rejected,
 * capped by max_version, connection id 4 at >= 5.0), offers, GPADL header
 * and bodies and every bad form, open (bad GPADL, offset, target VP),
 * close, teardown (the device told), GPADL pages for devices, unload,
 * modify-channel, rescind, TL_CONNECT; every
 * handler with short, oversized and garbage messages gets its reply or is
 * dropped, never crashes, and never posts a malformed message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "test_vmbus_fake.h"

#define V(maj, min) ((uint32_t)(maj) << 16 | (min))

static const uint32_t linux_versions[] = {
	V(5, 3), V(5, 2), V(5, 1), V(5, 0), V(4, 1), V(4, 0), V(3, 0), V(2, 4),
};

/* Linux's vmbus_connect loop: returns the accepted version or 0. */
static uint32_t linux_negotiate(struct fake *f, uint32_t vp)
{
	for (size_t i = 0; i < sizeof(linux_versions) / 4; i++) {
		uint32_t v = linux_versions[i];
		uint32_t conn = v >= V(5, 0) ? 4 : 1;
		assert_int_equal(guest_contact(f, conn, v, vp), 0);
		struct fake_msg *m = fake_next(f);
		assert_non_null(m);
		assert_int_equal(m32(m, 0), 15);
		assert_int_equal(m->len, 16);
		assert_int_equal(m->vp, vp);
		if (m->b[8]) {
			assert_int_equal(m32(m, 12), 1); /* msg_conn_id */
			return v;
		}
	}
	return 0;
}

static void test_negotiate_newest(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 2);
	assert_int_equal(vmbus_server_version(f->srv), 0);
	assert_int_equal(linux_negotiate(f, 1), V(5, 3));
	assert_int_equal(vmbus_server_version(f->srv), V(5, 3));
	assert_int_equal(f->total, 1);
	assert_false(f->lock_error);
	fake_free(f);
}

static void test_negotiate_capped(void **state)
{
	(void)state;
	/* --vmbus-max-version 4.1: 5.3..5.0 refused, 4.1 accepted. */
	struct fake *f = fake_new(V(4, 1), 1);
	assert_int_equal(linux_negotiate(f, 0), V(4, 1));
	assert_int_equal(f->total, 5);
	fake_free(f);
	/* A cap between known versions: the next lower known one. */
	f = fake_new(V(3, 5), 1);
	assert_int_equal(linux_negotiate(f, 0), V(3, 0));
	fake_free(f);
	f = fake_new(V(2, 4), 1);
	assert_int_equal(linux_negotiate(f, 0), V(2, 4));
	fake_free(f);
}

static void test_negotiate_rejects(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	/* Unknown versions get version_supported = 0. */
	const uint32_t bad[] = { V(6, 0), V(5, 4), V(4, 2), 0, 0xFFFFFFFFu };
	for (size_t i = 0; i < sizeof(bad) / 4; i++) {
		assert_int_equal(guest_contact(f, 4, bad[i], 0), 0);
		struct fake_msg *m = fake_next(f);
		assert_non_null(m);
		assert_int_equal(m32(m, 0), 15);
		assert_int_equal(m->b[8], 0);
	}
	assert_int_equal(vmbus_server_version(f->srv), 0);
	/* Connection ids other than 1 and 4: INVALID_CONNECTION_ID, no reply. */
	assert_int_equal(guest_contact(f, 2, V(5, 3), 0), VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(guest_contact(f, 0, V(5, 3), 0), VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(guest_contact(f, 0x10001, V(5, 3), 0),
			 VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	assert_null(fake_next(f));
	/* Message type other than 1, or a payload outside 8..240: refused. */
	uint8_t m[241] = { 0 };
	p32(m, 0, 14);
	p32(m, 8, V(5, 3));
	assert_int_equal(vmbus_server_post_message(f->srv, 4, 2, m, 40),
			 VMBUS_HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vmbus_server_post_message(f->srv, 4, 1, m, 7),
			 VMBUS_HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vmbus_server_post_message(f->srv, 4, 1, m, 241),
			 VMBUS_HV_STATUS_INVALID_PARAMETER);
	assert_null(fake_next(f));
	/* Too short to hold the version: dropped. */
	assert_int_equal(vmbus_server_post_message(f->srv, 4, 1, m, 12), 0);
	assert_null(fake_next(f));
	/* Oversized (all 240 bytes) is fine: extra bytes are ignored. */
	assert_int_equal(vmbus_server_post_message(f->srv, 4, 1, m, 240), 0);
	struct fake_msg *r = fake_next(f);
	assert_non_null(r);
	assert_int_equal(r->b[8], 1);
	fake_free(f);
}

static void test_target_vcpu(void **state)
{
	(void)state;
	/* Replies go to INITIATE_CONTACT's target VP; a bad one falls back to 0. */
	struct fake *f = fake_new(0, 4);
	assert_int_equal(guest_contact(f, 4, V(5, 2), 3), 0);
	assert_int_equal(fake_next(f)->vp, 3);
	guest_simple(f, 3, 0, 0);
	assert_int_equal(fake_next(f)->vp, 3);
	assert_int_equal(guest_contact(f, 4, V(5, 2), 4), 0);
	assert_int_equal(fake_next(f)->vp, 0);
	fake_free(f);
}

static void test_before_contact(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d = { 0 };
	fake_offer(f, &d, 1);
	/* No offers before the guest connected. */
	assert_int_equal(f->nmsg, 0);
	guest_simple(f, 3, 0, 0);
	guest_open(f, 1, 1, 0, 2);
	assert_int_equal(f->nmsg, 0);
	/* UNLOAD is answered regardless (a crashing guest polls for it). */
	guest_simple(f, 16, 0, 0);
	struct fake_msg *m = fake_next(f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 17);
	fake_free(f);
}

static void test_offers(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d1 = { 0 }, d2 = { 0 }, d3 = { 0 };
	struct vmbus_channel *c1 = fake_offer(f, &d1, 1), *c2 = fake_offer(f, &d2, 2);
	assert_int_not_equal(vmbus_channel_relid(c1), vmbus_channel_relid(c2));
	/* The same type and instance again: -EEXIST. */
	struct vmbus_offer o = { 0 };
	memset(o.if_type.b, 0x31, 16);
	memset(o.if_instance.b, 0x61, 16);
	struct vmbus_channel *dup = NULL;
	assert_int_equal(vmbus_offer(f->srv, &o, &fdev_ops, &d3, &dup), -EEXIST);
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	guest_simple(f, 3, 0, 0);
	struct vmbus_channel *chans[2] = { c1, c2 };
	for (int i = 0; i < 2; i++) {
		struct fake_msg *m = fake_next(f);
		assert_non_null(m);
		assert_int_equal(m32(m, 0), 1);
		assert_int_equal(m->len, 196);
		uint8_t t[16];
		memset(t, 0x31 + i, 16);
		assert_memory_equal(m->b + 8, t, 16);
		memset(t, 0x61 + i, 16);
		assert_memory_equal(m->b + 24, t, 16);
		uint32_t relid = m32(m, 184);
		assert_int_equal(relid, vmbus_channel_relid(chans[i]));
		assert_true(relid >= 1 && relid < 2048);
		assert_int_equal(m->b[189] & 1, 0);   /* monitor not allocated */
		assert_int_equal(m->b[190] & 1, 1);   /* dedicated interrupt */
		assert_int_equal(m32(m, 192), 0x10000 + relid);
	}
	struct fake_msg *m = fake_next(f);
	assert_int_equal(m32(m, 0), 4);
	/* An offer while connected goes out at once. */
	fake_offer(f, &d3, 3);
	m = fake_next(f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 1);
	assert_int_equal(m->b[8], 0x33);
	assert_false(f->lock_error);
	fake_free(f);
}

/* A connected server with one offered channel; returns its relid. */
static uint32_t setup(struct fake *f, struct fake_dev *d)
{
	d->ch = fake_offer(f, d, 1);
	assert_int_equal(linux_negotiate(f, 0) != 0, 1);
	guest_simple(f, 3, 0, 0);
	struct fake_msg *m = fake_next(f);
	uint32_t relid = m32(m, 184);
	fake_next(f); /* ALLOFFERS_DELIVERED */
	return relid;
}

/* Expects GPADL_CREATED for (relid, id); returns its status. */
static uint32_t created(struct fake *f, uint32_t relid, uint32_t id)
{
	struct fake_msg *m = fake_next(f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 10);
	assert_int_equal(m->len, 20);
	assert_int_equal(m32(m, 8), relid);
	assert_int_equal(m32(m, 12), id);
	return m32(m, 16);
}

static void test_gpadl_multi_body(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d = { 0 };
	uint32_t relid = setup(f, &d);
	/* 60 pages, scattered backwards through RAM: header + 2 bodies. */
	uint64_t pfns[60];
	for (int i = 0; i < 60; i++)
		pfns[i] = 400 - 3 * i;
	guest_gpadl(f, relid, 0xE1E10, pfns, 60);
	assert_int_equal(created(f, relid, 0xE1E10), 0);
	assert_null(fake_next(f));
	uint64_t len = 0;
	assert_int_equal(vmbus_channel_gpadl_len(d.ch, 0xE1E10, &len), 0);
	assert_int_equal(len, 60 * 4096);
	/* Each page maps to its own PFN, in the order the guest listed them. */
	for (int i = 0; i < 60; i += 29) {
		uint8_t v = (uint8_t)(0x40 + i), got = 0;
		f->ram[pfns[i] * 4096 + 17] = v;
		assert_int_equal(vmbus_channel_gpadl_read(d.ch, 0xE1E10, i * 4096ull + 17, &got, 1), 0);
		assert_int_equal(got, v);
	}
	fake_free(f);
}

static void test_gpadl_access(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d = { 0 };
	d.ch = fake_offer(f, &d, 1);
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	uint32_t relid = vmbus_channel_relid(d.ch);
	uint64_t pfns[30];
	for (int i = 0; i < 30; i++)
		pfns[i] = 300 - 2 * i;
	guest_gpadl(f, relid, 7, pfns, 30);
	assert_int_equal(created(f, relid, 7), 0);
	struct vmbus_channel *ch = d.ch;
	uint64_t len;
	assert_int_equal(vmbus_channel_gpadl_len(ch, 7, &len), 0);
	assert_int_equal(len, 30 * 4096);
	assert_int_equal(vmbus_channel_gpadl_len(ch, 8, &len), -ENOENT);
	/* A write across pages 25..26 lands in the right (scattered) pages. */
	uint8_t buf[6000];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	uint64_t off = 25 * 4096 + 100;
	assert_int_equal(vmbus_channel_gpadl_write(ch, 7, off, buf, sizeof(buf)), 0);
	assert_memory_equal(f->ram + pfns[25] * 4096 + 100, buf, 4096 - 100);
	assert_memory_equal(f->ram + pfns[26] * 4096, buf + 3996, sizeof(buf) - 3996);
	uint8_t back[6000];
	assert_int_equal(vmbus_channel_gpadl_read(ch, 7, off, back, sizeof(back)), 0);
	assert_memory_equal(back, buf, sizeof(buf));
	/* Out of range and overflowing offsets are refused. */
	assert_int_equal(vmbus_channel_gpadl_read(ch, 7, 30 * 4096 - 10, back, 11), -EINVAL);
	assert_int_equal(vmbus_channel_gpadl_read(ch, 7, UINT64_MAX - 5, back, 10), -EINVAL);
	assert_int_equal(vmbus_channel_gpadl_read(ch, 7, 30 * 4096, back, 0), 0);
	/* Teardown: GPADL_TORNDOWN, then the GPADL is gone. */
	guest_simple(f, 11, relid, 7);
	struct fake_msg *m = fake_next(f);
	assert_int_equal(m32(m, 0), 12);
	assert_int_equal(m->len, 12);
	assert_int_equal(m32(m, 8), 7);
	assert_int_equal(vmbus_channel_gpadl_len(ch, 7, &len), -ENOENT);
	/* Teardown of an unknown GPADL is still answered. */
	guest_simple(f, 11, relid, 99);
	m = fake_next(f);
	assert_int_equal(m32(m, 0), 12);
	assert_int_equal(m32(m, 8), 99);
	assert_false(f->lock_error);
	fake_free(f);
}

/* A device that wants to hear of torn-down GPADLs (netvsp does). */
struct tdev {
	struct fake_dev d;
	unsigned torndown;
	uint32_t last_id;
};

static void tdev_torndown(void *dev, struct vmbus_channel *ch, uint32_t id)
{
	(void)ch;
	struct tdev *t = dev;
	t->torndown++;
	t->last_id = id;
}

static const struct vmbus_device_ops tdev_ops = {
	.open = fdev_open, .close = fdev_close, .notify = fdev_notify,
	.gpadl_torndown = tdev_torndown,
};

static void test_gpadl_map(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct tdev t = { 0 };
	struct vmbus_offer o = { 0 };
	memset(o.if_type.b, 0x41, 16);
	memset(o.if_instance.b, 0x42, 16);
	assert_int_equal(vmbus_offer(f->srv, &o, &tdev_ops, &t, &t.d.ch), 0);
	struct fake_dev other = { 0 };
	other.ch = fake_offer(f, &other, 2);
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	uint32_t relid = vmbus_channel_relid(t.d.ch);
	uint64_t pfns[3] = { 400, 123, 77 };
	guest_gpadl(f, relid, 9, pfns, 3);
	assert_int_equal(created(f, relid, 9), 0);
	struct vmbus_gpadl_pages gp = { 0 };
	assert_int_equal(vmbus_channel_gpadl_map(t.d.ch, 9, &gp), 0);
	assert_int_equal(gp.npages, 3);
	assert_int_equal(gp.len, 3 * 4096);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(gp.pages[i], f->ram + pfns[i] * 4096);
	free(gp.pages);
	/* Unknown ids, and GPADLs of another channel, are not handed out. */
	assert_int_equal(vmbus_channel_gpadl_map(t.d.ch, 10, &gp), -ENOENT);
	assert_int_equal(vmbus_channel_gpadl_map(other.ch, 9, &gp), -ENOENT);
	/* An incomplete GPADL (bodies missing) is not handed out either. */
	uint64_t many[40];
	for (int i = 0; i < 40; i++)
		many[i] = 500 + i;
	uint8_t m[240] = { 0 };
	p32(m, 0, 8);
	p32(m, 8, relid);
	p32(m, 12, 11);
	p16(m, 16, 8 + 8 * 40);
	p16(m, 18, 1);
	p32(m, 20, 40 * 4096);
	for (int i = 0; i < 26; i++)
		p64(m, 28 + 8 * i, many[i]);
	guest_post(f, 1, m, 28 + 8 * 26);
	assert_null(fake_next(f));
	assert_int_equal(vmbus_channel_gpadl_map(t.d.ch, 11, &gp), -ENOENT);
	/* Teardown tells the device, once, with the id; other channels' not. */
	guest_simple(f, 11, relid, 9);
	assert_int_equal(m32(fake_next(f), 0), 12);
	assert_int_equal(t.torndown, 1);
	assert_int_equal(t.last_id, 9);
	assert_int_equal(vmbus_channel_gpadl_map(t.d.ch, 9, &gp), -ENOENT);
	uint32_t orelid = vmbus_channel_relid(other.ch);
	guest_gpadl(f, orelid, 12, pfns, 1);
	assert_int_equal(created(f, orelid, 12), 0);
	guest_simple(f, 11, orelid, 12);
	assert_int_equal(m32(fake_next(f), 0), 12);
	assert_int_equal(t.torndown, 1);
	/* An UNLOAD drops the rest: the device hears of its complete GPADLs. */
	guest_gpadl(f, relid, 13, pfns, 2);
	assert_int_equal(created(f, relid, 13), 0);
	guest_simple(f, 16, 0, 0);
	assert_int_equal(t.torndown, 2);
	assert_int_equal(t.last_id, 13);
	assert_false(f->lock_error);
	fake_free(f);
}

/* A GPADL_HEADER with arbitrary fields and n PFNs. */
static void raw_header(struct fake *f, uint32_t relid, uint32_t id, uint16_t buflen,
		       uint16_t count, uint32_t bytes, uint32_t offset, const uint64_t *pfns,
		       unsigned n)
{
	uint8_t m[240] = { 0 };
	p32(m, 0, 8);
	p32(m, 8, relid);
	p32(m, 12, id);
	p16(m, 16, buflen);
	p16(m, 18, count);
	p32(m, 20, bytes);
	p32(m, 24, offset);
	for (unsigned i = 0; i < n; i++)
		p64(m, 28 + 8 * i, pfns[i]);
	guest_post(f, 1, m, 28 + 8 * n);
}

static void test_gpadl_bad(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d = { 0 };
	d.ch = fake_offer(f, &d, 1);
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	uint32_t relid = vmbus_channel_relid(d.ch);
	uint64_t pfns[4] = { 10, 11, 12, 13 };
	/* Zero ranges, two ranges. */
	raw_header(f, relid, 1, 8 + 32, 0, 4 * 4096, 0, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	raw_header(f, relid, 1, 8 + 32, 2, 4 * 4096, 0, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	/* Zero bytes; offset beyond the first page. */
	raw_header(f, relid, 1, 8, 1, 0, 0, pfns, 0);
	assert_int_not_equal(created(f, relid, 1), 0);
	raw_header(f, relid, 1, 8 + 32, 1, 3 * 4096, 4096, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	/* range_buflen disagreeing with the byte count, or not 8-aligned. */
	raw_header(f, relid, 1, 8 + 24, 1, 4 * 4096, 0, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	raw_header(f, relid, 1, 8 + 32 + 4, 1, 4 * 4096, 0, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	raw_header(f, relid, 1, 4, 1, 4 * 4096, 0, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	/* Counts that overflow: byte_count + offset near 4 GiB. */
	raw_header(f, relid, 1, 0xFFF8, 1, 0xFFFFF000u, 0xFFF, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	raw_header(f, relid, 1, 0xFFF8, 1, 0xFFFFFFFFu, 0, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	/* Unknown channel. */
	raw_header(f, relid + 5, 1, 8 + 32, 1, 4 * 4096, 0, pfns, 4);
	assert_int_not_equal(created(f, relid + 5, 1), 0);
	/* A PFN beyond guest RAM (and one whose address overflows). */
	uint64_t far[4] = { 10, FAKE_RAM / 4096, 12, 13 };
	raw_header(f, relid, 1, 8 + 32, 1, 4 * 4096, 0, far, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	uint64_t huge[4] = { 10, 11, 1ull << 60, 13 };
	raw_header(f, relid, 1, 8 + 32, 1, 4 * 4096, 0, huge, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	/* None of those left a GPADL behind: id 1 works now. */
	raw_header(f, relid, 1, 8 + 32, 1, 4 * 4096, 0, pfns, 4);
	assert_int_equal(created(f, relid, 1), 0);
	/* Duplicate id: refused, the first one still works. */
	raw_header(f, relid, 1, 8 + 32, 1, 4 * 4096, 0, pfns, 4);
	assert_int_not_equal(created(f, relid, 1), 0);
	uint64_t len;
	assert_int_equal(vmbus_channel_gpadl_len(d.ch, 1, &len), 0);
	assert_int_equal(len, 4 * 4096);
	/* Bodies for unknown or complete GPADLs are dropped without a reply. */
	uint8_t b[24] = { 0 };
	p32(b, 0, 9);
	p32(b, 12, 77);
	p64(b, 16, 5);
	guest_post(f, 1, b, sizeof(b));
	p32(b, 12, 1);
	guest_post(f, 1, b, sizeof(b));
	assert_null(fake_next(f));
	/* A body with more PFNs than missing: the extra ones are ignored. */
	raw_header(f, relid, 2, 8 + 16, 1, 2 * 4096, 0, pfns, 1);
	assert_null(fake_next(f));
	uint8_t big[240] = { 0 };
	p32(big, 0, 9);
	p32(big, 12, 2);
	for (int i = 0; i < 28; i++)
		p64(big, 16 + 8 * i, 20 + i);
	guest_post(f, 1, big, sizeof(big));
	assert_int_equal(created(f, relid, 2), 0);
	/* A body whose PFN is outside RAM completes the GPADL with an error. */
	raw_header(f, relid, 3, 8 + 16, 1, 2 * 4096, 0, pfns, 1);
	p32(b, 12, 3);
	p64(b, 16, 1ull << 40);
	guest_post(f, 1, b, sizeof(b));
	assert_int_not_equal(created(f, relid, 3), 0);
	/* Short messages: a header that names relid and id is refused with a
	 * reply; shorter ones and short bodies are dropped. */
	uint8_t s[27] = { 0 };
	p32(s, 0, 8);
	p32(s, 8, relid);
	p32(s, 12, 9);
	guest_post(f, 1, s, 27);
	assert_int_not_equal(created(f, relid, 9), 0);
	guest_post(f, 1, s, 12);
	p32(s, 0, 9);
	guest_post(f, 1, s, 23);
	p32(s, 0, 11);
	guest_post(f, 1, s, 15);
	assert_null(fake_next(f));
	assert_false(f->lock_error);
	fake_free(f);
}

static void test_gpadl_caps(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d = { 0 };
	d.ch = fake_offer(f, &d, 1);
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	uint32_t relid = vmbus_channel_relid(d.ch);
	/* A GPADL larger than the per-GPADL cap (65536 pages) is refused at the
	 * header, before any allocation. range_buflen is 16 bits, so the
	 * biggest consistent header is 8190 pages; larger ones mismatch. */
	uint64_t pfn = 1;
	raw_header(f, relid, 1, 0xFFF8, 1, 8190u * 4096, 0, &pfn, 1);
	assert_null(fake_next(f)); /* in progress, waiting for bodies */
	/* Many incomplete GPADLs: the count cap refuses the excess. */
	unsigned refused = 0;
	for (uint32_t id = 2; id < 2000; id++) {
		raw_header(f, relid, id, 8 + 16, 1, 2 * 4096, 0, &pfn, 1);
		struct fake_msg *m = fake_next(f);
		if (m) {
			assert_int_equal(m32(m, 0), 10);
			assert_int_not_equal(m32(m, 16), 0);
			refused++;
		}
	}
	assert_true(refused > 0);
	assert_true(refused < 1998);
	/* UNLOAD drops them all; a new GPADL works again. */
	guest_simple(f, 16, 0, 0);
	assert_int_equal(m32(fake_next(f), 0), 17);
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	uint64_t pfns[2] = { 3, 4 };
	guest_gpadl(f, relid, 5, pfns, 2);
	assert_int_equal(created(f, relid, 5), 0);
	fake_free(f);
}

/* An opened channel: ring GPADL id 0x100 with `pages` pages, downstream at half. */
static void open_channel(struct fake *f, struct fake_dev *d, uint32_t relid, uint32_t pages,
			 uint32_t vp)
{
	uint64_t pfns[64];
	for (uint32_t i = 0; i < pages; i++)
		pfns[i] = 100 + i;
	guest_gpadl(f, relid, 0x100, pfns, pages);
	assert_int_equal(created(f, relid, 0x100), 0);
	unsigned opens = d->opens;
	guest_open(f, relid, 0x100, vp, pages / 2);
	struct fake_msg *m = fake_next(f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 6);
	assert_int_equal(m->len, 20);
	assert_int_equal(m32(m, 8), relid);
	assert_int_equal(m32(m, 12), relid);
	assert_int_equal(m32(m, 16), 0);
	assert_int_equal(d->opens, opens + 1);
}

static uint32_t open_result(struct fake *f, uint32_t relid)
{
	struct fake_msg *m = fake_next(f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 6);
	assert_int_equal(m32(m, 8), relid);
	return m32(m, 16);
}

static void test_open_close(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 2);
	struct fake_dev d = { 0 };
	uint32_t relid = setup(f, &d);
	open_channel(f, &d, relid, 8, 1);
	assert_int_equal(vmbus_channel_target_vp(d.ch), 1);
	/* Signals on its connection id reach the device. */
	assert_int_equal(vmbus_server_signal_event(f->srv, 0x10000 + relid), 0);
	assert_int_equal(d.notifies, 1);
	assert_int_equal(vmbus_server_signal_event(f->srv, 0x10000 + relid + 1),
			 VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(vmbus_server_signal_event(f->srv, 2), VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	/* Opening twice is refused. */
	guest_open(f, relid, 0x100, 0, 4);
	assert_int_not_equal(open_result(f, relid), 0);
	/* Close: the device hears it, no reply, no more notifies. */
	guest_simple(f, 7, relid, 0);
	assert_int_equal(d.closes, 1);
	assert_null(fake_next(f));
	assert_int_equal(vmbus_server_signal_event(f->srv, 0x10000 + relid),
			 VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(d.notifies, 1);
	/* Reopen on the same GPADL works; teardown of an open ring closes it. */
	guest_open(f, relid, 0x100, 0, 4);
	assert_int_equal(open_result(f, relid), 0);
	guest_simple(f, 11, relid, 0x100);
	assert_int_equal(m32(fake_next(f), 0), 12);
	assert_int_equal(d.closes, 2);
	/* A short CLOSECHANNEL and one for an unknown relid are dropped. */
	guest_simple(f, 7, relid + 9, 0);
	uint8_t s[8] = { 7 };
	guest_post(f, 1, s, 8);
	assert_null(fake_next(f));
	assert_false(f->lock_error);
	fake_free(f);
}

static void test_open_bad(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 2);
	struct fake_dev d = { 0 }, d2 = { 0 };
	uint32_t relid = setup(f, &d);
	struct vmbus_channel *c2 = fake_offer(f, &d2, 2);
	uint32_t relid2 = vmbus_channel_relid(c2);
	fake_next(f); /* its offer */
	uint64_t pfns[8] = { 50, 51, 52, 53, 54, 55, 56, 57 };
	guest_gpadl(f, relid, 0x100, pfns, 8);
	assert_int_equal(created(f, relid, 0x100), 0);
	/* Unknown GPADL, another channel's GPADL, unknown channel. */
	guest_open(f, relid, 0x101, 0, 4);
	assert_int_not_equal(open_result(f, relid), 0);
	guest_open(f, relid2, 0x100, 0, 4);
	assert_int_not_equal(open_result(f, relid2), 0);
	guest_open(f, 2000, 0x100, 0, 4);
	assert_int_not_equal(open_result(f, 2000), 0);
	/* Bad downstream offsets: no room for a header and a data page. */
	const uint32_t bad_down[] = { 0, 1, 7, 8, 9, 0xFFFFFFFFu, 0xFFFFFFFEu };
	for (size_t i = 0; i < sizeof(bad_down) / 4; i++) {
		guest_open(f, relid, 0x100, 0, bad_down[i]);
		assert_int_not_equal(open_result(f, relid), 0);
	}
	/* Target VP out of range. */
	guest_open(f, relid, 0x100, 2, 4);
	assert_int_not_equal(open_result(f, relid), 0);
	guest_open(f, relid, 0x100, 0xFFFFFFFFu, 4);
	assert_int_not_equal(open_result(f, relid), 0);
	/* Ring header with hostile indexes. */
	uint32_t bad = 4097;
	memcpy(f->ram + 50 * 4096 + 4, &bad, 4);
	guest_open(f, relid, 0x100, 0, 4);
	assert_int_not_equal(open_result(f, relid), 0);
	/* The refused open leaves the channel without rings (no stale pointers). */
	uint8_t pkt[64];
	struct vmbus_packet_info pi;
	assert_int_equal(vmbus_channel_recv(d.ch, pkt, sizeof(pkt), &pi), -EPIPE);
	assert_int_equal(vmbus_channel_send(d.ch, 6, 0, 1, pkt, 8, NULL, 0), -EPIPE);
	memset(f->ram + 50 * 4096, 0, 8);
	assert_int_equal(d.opens, 0);
	/* The device refusing: its status goes back, the channel stays closed. */
	d.open_status = 0xC0000001u;
	guest_open(f, relid, 0x100, 0, 4);
	assert_int_equal(open_result(f, relid), 0xC0000001u);
	assert_int_equal(vmbus_server_signal_event(f->srv, 0x10000 + relid),
			 VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	d.open_status = 0;
	guest_open(f, relid, 0x100, 1, 4);
	assert_int_equal(open_result(f, relid), 0);
	/* A short OPENCHANNEL naming relid and openid gets a failure reply. */
	uint8_t s[20] = { 0 };
	p32(s, 0, 5);
	p32(s, 8, relid2);
	p32(s, 12, relid2);
	guest_post(f, 1, s, 20);
	assert_int_not_equal(open_result(f, relid2), 0);
	guest_post(f, 1, s, 12);
	assert_null(fake_next(f));
	fake_free(f);
}

static void test_unload(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d = { 0 };
	uint32_t relid = setup(f, &d);
	open_channel(f, &d, relid, 4, 0);
	uint64_t pfns[2] = { 30, 31 };
	guest_gpadl(f, relid, 0x200, pfns, 2);
	assert_int_equal(created(f, relid, 0x200), 0);
	guest_simple(f, 16, 0, 0);
	struct fake_msg *m = fake_next(f);
	assert_int_equal(m32(m, 0), 17);
	assert_int_equal(d.closes, 1);
	assert_int_equal(vmbus_server_version(f->srv), 0);
	uint64_t len;
	assert_int_equal(vmbus_channel_gpadl_len(d.ch, 0x200, &len), -ENOENT);
	/* Reconnect (kexec'd guest): offers again, same relid, reopen works. */
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	guest_simple(f, 3, 0, 0);
	m = fake_next(f);
	assert_int_equal(m32(m, 0), 1);
	assert_int_equal(m32(m, 184), relid);
	fake_next(f);
	open_channel(f, &d, relid, 4, 0);
	/* A new INITIATE_CONTACT without UNLOAD also closes everything. */
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	assert_int_equal(d.closes, 2);
	/* vmbus_server_reset does the same from the host side. */
	guest_simple(f, 3, 0, 0);
	fake_next(f);
	fake_next(f);
	open_channel(f, &d, relid, 4, 0);
	vmbus_server_reset(f->srv);
	assert_int_equal(d.closes, 3);
	assert_int_equal(vmbus_server_version(f->srv), 0);
	fake_free(f);
}

static void test_modify(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 4);
	struct fake_dev d = { 0 };
	uint32_t relid = setup(f, &d);
	open_channel(f, &d, relid, 4, 0);
	guest_simple(f, 22, relid, 3);
	struct fake_msg *m = fake_next(f);
	assert_int_equal(m32(m, 0), 24);
	assert_int_equal(m->len, 16);
	assert_int_equal(m32(m, 8), relid);
	assert_int_equal(m32(m, 12), 0);
	assert_int_equal(vmbus_channel_target_vp(d.ch), 3);
	/* Out-of-range VP or unknown relid: failure status, nothing changes. */
	guest_simple(f, 22, relid, 4);
	m = fake_next(f);
	assert_int_not_equal(m32(m, 12), 0);
	guest_simple(f, 22, relid + 3, 0);
	m = fake_next(f);
	assert_int_equal(m32(m, 8), relid + 3);
	assert_int_not_equal(m32(m, 12), 0);
	assert_int_equal(vmbus_channel_target_vp(d.ch), 3);
	/* Short: answered with failure if the relid is there. */
	uint8_t s[12] = { 0 };
	p32(s, 0, 22);
	p32(s, 8, relid);
	guest_post(f, 1, s, 12);
	m = fake_next(f);
	assert_int_equal(m32(m, 0), 24);
	assert_int_not_equal(m32(m, 12), 0);
	fake_free(f);
	/* Below 5.3 the guest expects no response. */
	f = fake_new(V(5, 2), 4);
	d = (struct fake_dev){ 0 };
	relid = setup(f, &d);
	open_channel(f, &d, relid, 4, 0);
	guest_simple(f, 22, relid, 2);
	assert_null(fake_next(f));
	assert_int_equal(vmbus_channel_target_vp(d.ch), 2);
	fake_free(f);
}

static void test_rescind(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d = { 0 }, d2 = { 0 };
	uint32_t relid = setup(f, &d);
	open_channel(f, &d, relid, 4, 0);
	vmbus_rescind(d.ch);
	struct fake_msg *m = fake_next(f);
	assert_int_equal(m32(m, 0), 2);
	assert_int_equal(m->len, 12);
	assert_int_equal(m32(m, 8), relid);
	assert_int_equal(d.closes, 0); /* still open until the guest closes */
	/* The guest closes (no teardown after a rescind) and releases. */
	guest_simple(f, 7, relid, 0);
	assert_int_equal(d.closes, 1);
	/* Reopen of a rescinded channel is refused. */
	guest_open(f, relid, 0x100, 0, 2);
	assert_int_not_equal(open_result(f, relid), 0);
	guest_simple(f, 13, relid, 0);
	assert_null(fake_next(f));
	/* The relid is free again: a new offer may reuse it. */
	struct vmbus_channel *c2 = fake_offer(f, &d2, 2);
	assert_int_equal(vmbus_channel_relid(c2), relid);
	m = fake_next(f);
	assert_int_equal(m32(m, 0), 1);
	/* RELID_RELEASED for a live channel is ignored. */
	guest_simple(f, 13, relid, 0);
	guest_simple(f, 22, relid, 0); /* the channel is still there */
	assert_int_equal(m32(fake_next(f), 0), 24);
	/* Rescind of an open channel whose guest goes away (UNLOAD). */
	open_channel(f, &d2, relid, 6, 0);
	vmbus_rescind(c2);
	assert_int_equal(m32(fake_next(f), 0), 2);
	guest_simple(f, 16, 0, 0);
	assert_int_equal(m32(fake_next(f), 0), 17);
	assert_int_equal(d2.closes, 1);
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	guest_simple(f, 3, 0, 0);
	assert_int_equal(m32(fake_next(f), 0), 4); /* no channels left */
	/* Rescind before the guest connected frees at once. */
	struct fake_dev d3 = { 0 };
	vmbus_server_reset(f->srv);
	struct vmbus_channel *c3 = fake_offer(f, &d3, 3);
	vmbus_rescind(c3);
	assert_null(fake_next(f));
	assert_false(f->lock_error);
	fake_free(f);
}

static unsigned tl_calls;
static uint8_t tl_ep[16], tl_svc[16];

static void on_tl(void *o, const struct vmbus_guid *ep, const struct vmbus_guid *svc)
{
	(void)o;
	tl_calls++;
	memcpy(tl_ep, ep->b, 16);
	memcpy(tl_svc, svc->b, 16);
}

static void test_tl_connect(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct fake_dev d = { 0 };
	setup(f, &d);
	uint8_t m[40] = { 0 };
	p32(m, 0, 21);
	memset(m + 8, 0xAA, 16);
	memset(m + 24, 0xBB, 16);
	/* No hv_sock service: ignored. */
	guest_post(f, 1, m, 40);
	assert_null(fake_next(f));
	vmbus_set_tl_connect_handler(f->srv, on_tl, NULL);
	guest_post(f, 1, m, 40);
	assert_int_equal(tl_calls, 1);
	assert_int_equal(tl_ep[0], 0xAA);
	assert_int_equal(tl_svc[15], 0xBB);
	guest_post(f, 1, m, 39); /* short: dropped */
	assert_int_equal(tl_calls, 1);
	fake_free(f);
}

static void test_host_queue_full(void **state)
{
	(void)state;
	/* The host cannot take a message: logged, no crash, state consistent. */
	struct fake *f = fake_new(0, 1);
	f->post_full = true;
	assert_int_equal(guest_contact(f, 4, V(5, 3), 0), 0);
	assert_int_equal(vmbus_server_version(f->srv), V(5, 3));
	guest_simple(f, 3, 0, 0);
	f->post_full = false;
	guest_simple(f, 16, 0, 0);
	assert_int_equal(m32(fake_next(f), 0), 17);
	fake_free(f);
}

/* Minimum payload sizes Linux enforces on host messages (§6.1). */
static uint32_t min_len(uint32_t type)
{
	switch (type) {
	case 1: return 196;
	case 2: return 12;
	case 6: return 20;
	case 10: return 20;
	case 12: return 12;
	case 15: return 16;
	case 24: return 16;
	case 4: case 17: return 8;
	default: return 0xFFFF;
	}
}

static void test_garbage(void **state)
{
	(void)state;
	/* Every message type with every length and random contents, connected
	 * and not: no crash, and every reply is a known type of legal size. */
	struct fake *f = fake_new(0, 2);
	struct fake_dev d = { 0 };
	uint32_t relid = setup(f, &d);
	open_channel(f, &d, relid, 8, 0);
	uint32_t x = 12345;
	for (int round = 0; round < 3; round++) {
		for (uint32_t type = 0; type < 30; type++) {
			for (uint32_t len = 8; len <= 240; len += (len < 48 ? 1 : 13)) {
				uint8_t m[240];
				for (uint32_t i = 0; i < len; i++) {
					x = x * 1103515245u + 12345u;
					m[i] = (uint8_t)(x >> 16);
				}
				p32(m, 0, type);
				if (round == 1 && len >= 12)
					p32(m, 8, relid); /* aim at the live channel */
				if (round == 2 && len >= 16)
					p32(m, 12, 0x100);
				if ((type == 14 || type == 16) && round != 2)
					continue; /* keep it connected mostly */
				guest_post(f, (x >> 8) & 1 ? 1 : 4, m, len);
			}
		}
		while (f->next < f->nmsg) {
			struct fake_msg *r = fake_next(f);
			assert_true(r->len >= min_len(m32(r, 0)));
			assert_true(r->len <= 240);
		}
		f->nmsg = f->next = 0;
		vmbus_server_signal_event(f->srv, 0x10000 + relid);
	}
	assert_false(f->lock_error);
	/* Still a working server afterwards. */
	assert_int_equal(linux_negotiate(f, 0), V(5, 3));
	fake_free(f);
}

static void test_guid_parse(void **state)
{
	(void)state;
	struct vmbus_guid g;
	assert_int_equal(vmbus_guid_parse("0e0b6031-5213-4934-818b-38d90ced39db", &g), 0);
	const uint8_t wire[16] = { 0x31, 0x60, 0x0b, 0x0e, 0x13, 0x52, 0x34, 0x49,
				   0x81, 0x8b, 0x38, 0xd9, 0x0c, 0xed, 0x39, 0xdb };
	assert_memory_equal(g.b, wire, 16);
	assert_int_equal(vmbus_guid_parse("0e0b6031-5213-4934-818b-38d90ced39d", &g), -EINVAL);
	assert_int_equal(vmbus_guid_parse("0e0b6031-5213-4934-818b-38d90ced39dbb", &g), -EINVAL);
	assert_int_equal(vmbus_guid_parse("0e0b6031x5213-4934-818b-38d90ced39db", &g), -EINVAL);
	assert_int_equal(vmbus_guid_parse("0e0b6031-5213-4934-818b-38d90ced39dg", &g), -EINVAL);
	assert_int_equal(vmbus_guid_parse("", &g), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negotiate_newest),
		cmocka_unit_test(test_negotiate_capped),
		cmocka_unit_test(test_negotiate_rejects),
		cmocka_unit_test(test_target_vcpu),
		cmocka_unit_test(test_before_contact),
		cmocka_unit_test(test_offers),
		cmocka_unit_test(test_gpadl_multi_body),
		cmocka_unit_test(test_gpadl_access),
		cmocka_unit_test(test_gpadl_map),
		cmocka_unit_test(test_gpadl_bad),
		cmocka_unit_test(test_gpadl_caps),
		cmocka_unit_test(test_open_close),
		cmocka_unit_test(test_open_bad),
		cmocka_unit_test(test_unload),
		cmocka_unit_test(test_modify),
		cmocka_unit_test(test_rescind),
		cmocka_unit_test(test_tl_connect),
		cmocka_unit_test(test_host_queue_full),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_guid_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
