/*
 * Unit tests: the SynIC message and event pages (TLFS 11) against fake
 * guest memory: a message lands in the SIMP slot with an interrupt on the
 * SINT's vector; a busy slot gets msg_pending and the queued message arrives
 * after EOM; the queue is bounded; masked SINTs and a disabled SIMP or
 * SCONTROL hold messages until enabled; SIEF flags are set and interrupt
 * only when unmasked; bad arguments are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include "test_hv_fake.h"

#define SIMP 0x20000
#define SIEF 0x21000

static uint8_t *slot(struct fake *f, unsigned sint)
{
	return f->ram + SIMP + sint * 256;
}

static uint32_t slot_type(struct fake *f, unsigned sint)
{
	uint32_t t;
	memcpy(&t, slot(f, sint), 4);
	return t;
}

/* What Linux's vmbus_signal_eom does: free the slot, EOM if pending. */
static void guest_consume(struct fake *f, uint32_t vp, unsigned sint)
{
	memset(slot(f, sint), 0, 4);
	if (slot(f, sint)[5] & 1)
		wr(f, vp, HV_X64_MSR_EOM, 0);
}

static void test_post_to_free_slot(void **state)
{
	(void)state;
	struct fake *f = fake_new(2);
	fake_synic_on(f, 1, SIMP, SIEF, 2, 0xF3);
	const char msg[] = "version response";
	assert_int_equal(hv_synic_post_message(f->hv, 1, 2, 1, msg, sizeof(msg)), 0);
	assert_int_equal(slot_type(f, 2), 1);
	assert_int_equal(slot(f, 2)[4], sizeof(msg));
	assert_int_equal(slot(f, 2)[5], 0);
	assert_memory_equal(slot(f, 2) + 16, msg, sizeof(msg));
	assert_int_equal(f->nmsi, 1);
	assert_int_equal(f->msi_addr[0], 0xFEE01000ull);
	assert_int_equal(f->msi_data[0], 0xF3);
	/* Other slots untouched. */
	assert_int_equal(slot_type(f, 1), 0);
	assert_int_equal(slot_type(f, 3), 0);
	fake_free(f);
}

static void test_busy_slot_pending_eom(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	fake_synic_on(f, 0, SIMP, SIEF, 2, 0xF3);
	uint32_t a = 0xA, b = 0xB, c = 0xC;
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &a, 4), 0);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &b, 4), 0);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &c, 4), 0);
	/* Only the first is in the slot; msg_pending tells the guest to EOM. */
	assert_int_equal(f->nmsi, 1);
	assert_int_equal(slot(f, 2)[5] & 1, 1);
	uint32_t got;
	memcpy(&got, slot(f, 2) + 16, 4);
	assert_int_equal(got, 0xA);
	/* EOM while the slot is still busy delivers nothing. */
	wr(f, 0, HV_X64_MSR_EOM, 0);
	assert_int_equal(f->nmsi, 1);
	guest_consume(f, 0, 2);
	assert_int_equal(f->nmsi, 2);
	memcpy(&got, slot(f, 2) + 16, 4);
	assert_int_equal(got, 0xB);
	/* One more is queued: the delivered message carries msg_pending. */
	assert_int_equal(slot(f, 2)[5] & 1, 1);
	guest_consume(f, 0, 2);
	memcpy(&got, slot(f, 2) + 16, 4);
	assert_int_equal(got, 0xC);
	assert_int_equal(slot(f, 2)[5] & 1, 0);
	assert_int_equal(f->nmsi, 3);
	guest_consume(f, 0, 2);
	assert_int_equal(slot_type(f, 2), 0);
	assert_int_equal(f->nmsi, 3);
	fake_free(f);
}

static void test_freed_slot_without_eom(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	fake_synic_on(f, 0, SIMP, SIEF, 2, 0xF3);
	uint32_t a = 1, b = 2;
	hv_synic_post_message(f->hv, 0, 2, 1, &a, 4);
	/* The guest freed the slot before we looked: the next goes straight in. */
	memset(slot(f, 2), 0, 4);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &b, 4), 0);
	uint32_t got;
	memcpy(&got, slot(f, 2) + 16, 4);
	assert_int_equal(got, 2);
	assert_int_equal(f->nmsi, 2);
	fake_free(f);
}

static void test_queue_limit(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	fake_synic_on(f, 0, SIMP, SIEF, 2, 0xF3);
	uint32_t v = 0;
	/* One in the slot, HV_SYNIC_QUEUE_MAX waiting, then -ENOSPC. */
	for (unsigned i = 0; i <= HV_SYNIC_QUEUE_MAX; i++)
		assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &v, 4), 0);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &v, 4), -ENOSPC);
	/* Another SINT has its own queue. */
	wr(f, 0, HV_X64_MSR_SINT0 + 3, 0xF4);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 3, 1, &v, 4), 0);
	/* Draining makes room again. */
	guest_consume(f, 0, 2);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &v, 4), 0);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &v, 4), -ENOSPC);
	fake_free(f);
}

static void test_masked_sint_holds_messages(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	fake_synic_on(f, 0, SIMP, SIEF, 2, 0xF3);
	wr(f, 0, HV_X64_MSR_SINT0 + 2, (1ull << 16) | 0xF3); /* masked */
	uint32_t v = 7;
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &v, 4), 0);
	assert_int_equal(slot_type(f, 2), 0);
	assert_int_equal(f->nmsi, 0);
	wr(f, 0, HV_X64_MSR_SINT0 + 2, 0xF3); /* unmasking delivers */
	assert_int_equal(slot_type(f, 2), 1);
	assert_int_equal(f->nmsi, 1);
	fake_free(f);
}

static void test_disabled_simp_and_scontrol(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	uint32_t v = 9;
	/* Reset state: everything off, SINTs masked. */
	assert_int_equal(rd(f, 0, HV_X64_MSR_SINT0 + 2), 1ull << 16);
	wr(f, 0, HV_X64_MSR_SINT0 + 2, 0xF3);
	wr(f, 0, HV_X64_MSR_SCONTROL, 1);
	wr(f, 0, HV_X64_MSR_SIMP, SIMP); /* page set, not enabled */
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &v, 4), 0);
	assert_int_equal(slot_type(f, 2), 0);
	wr(f, 0, HV_X64_MSR_SIMP, SIMP | 1);
	assert_int_equal(slot_type(f, 2), 1);
	assert_int_equal(f->nmsi, 1);
	guest_consume(f, 0, 2);
	/* SCONTROL off holds them too. */
	wr(f, 0, HV_X64_MSR_SCONTROL, 0);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &v, 4), 0);
	assert_int_equal(slot_type(f, 2), 0);
	wr(f, 0, HV_X64_MSR_SCONTROL, 1);
	assert_int_equal(slot_type(f, 2), 1);
	assert_int_equal(f->nmsi, 2);
	/* A SIMP outside RAM: nothing written, nothing crashes. */
	wr(f, 0, HV_X64_MSR_SIMP, 0x7fff0000000ull | 1);
	guest_consume(f, 0, 2);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, &v, 4), 0);
	fake_free(f);
}

static void test_sint_vector_checks(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	assert_int_equal(hv_msr_write(f->hv, 0, HV_X64_MSR_SINT0 + 5, 0x0F), -EINVAL);
	assert_int_equal(hv_msr_write(f->hv, 0, HV_X64_MSR_SINT0 + 5, (1ull << 16) | 0x0F), 0);
	assert_int_equal(hv_msr_write(f->hv, 0, HV_X64_MSR_SINT0 + 5, 0x10), 0);
	/* Reserved bits are dropped. */
	wr(f, 0, HV_X64_MSR_SINT0 + 6, 0xFFFF0000000000F3ull);
	assert_int_equal(rd(f, 0, HV_X64_MSR_SINT0 + 6), 0xF3);
	fake_free(f);
}

static void test_signal_event(void **state)
{
	(void)state;
	struct fake *f = fake_new(2);
	fake_synic_on(f, 1, SIMP, SIEF, 2, 0xF3);
	hv_synic_signal_event(f->hv, 1, 2, 13);
	assert_int_equal(f->ram[SIEF + 512 + 1], 1u << 5);
	assert_int_equal(f->nmsi, 1);
	assert_int_equal(f->msi_addr[0], 0xFEE01000ull);
	/* Setting is an OR: other bits stay. */
	hv_synic_signal_event(f->hv, 1, 2, 8);
	assert_int_equal(f->ram[SIEF + 512 + 1], (1u << 5) | 1u);
	hv_synic_signal_event(f->hv, 1, 2, 2047);
	assert_int_equal(f->ram[SIEF + 512 + 255], 0x80);
	/* Out of range flag, SINT or VP: ignored. */
	unsigned n = f->nmsi;
	hv_synic_signal_event(f->hv, 1, 2, 2048);
	hv_synic_signal_event(f->hv, 1, 16, 1);
	hv_synic_signal_event(f->hv, 2, 2, 1);
	assert_int_equal(f->nmsi, n);
	assert_int_equal(f->ram[SIEF + 768], 0);
	/* Masked SINT: the flag is set, no interrupt. */
	wr(f, 1, HV_X64_MSR_SINT0 + 2, (1ull << 16) | 0xF3);
	hv_synic_signal_event(f->hv, 1, 2, 3);
	assert_int_equal(f->ram[SIEF + 512] & 8, 8);
	assert_int_equal(f->nmsi, n);
	/* Disabled SIEF page: nothing. */
	wr(f, 1, HV_X64_MSR_SIEFP, SIEF);
	wr(f, 1, HV_X64_MSR_SINT0 + 2, 0xF3);
	hv_synic_signal_event(f->hv, 1, 2, 4);
	assert_int_equal(f->ram[SIEF + 512] & 16, 0);
	assert_int_equal(f->nmsi, n);
	fake_free(f);
}

static void test_post_bad_args(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	uint8_t big[241] = { 0 };
	assert_int_equal(hv_synic_post_message(f->hv, 1, 2, 1, big, 4), -EINVAL);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 16, 1, big, 4), -EINVAL);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 0, big, 4), -EINVAL);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, big, 241), -EINVAL);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, NULL, 4), -EINVAL);
	assert_int_equal(hv_synic_post_message(NULL, 0, 2, 1, big, 4), -EINVAL);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, big, 240), 0);
	assert_int_equal(hv_synic_post_message(f->hv, 0, 2, 1, NULL, 0), 0);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_post_to_free_slot),
		cmocka_unit_test(test_busy_slot_pending_eom),
		cmocka_unit_test(test_freed_slot_without_eom),
		cmocka_unit_test(test_queue_limit),
		cmocka_unit_test(test_masked_sint_holds_messages),
		cmocka_unit_test(test_disabled_simp_and_scontrol),
		cmocka_unit_test(test_sint_vector_checks),
		cmocka_unit_test(test_signal_event),
		cmocka_unit_test(test_post_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
