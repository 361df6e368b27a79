/*
 * Unit tests: the hypercall dispatcher (TLFS 3; igvm-and-vsm.md §C.1) with
 * fake guest memory: CPL and mode (#UD), unknown codes, reserved control
 * bits, rep and variable-header fields on simple calls, fast vs memory
 * forms, input alignment, page crossing and inaccessible input, the
 * HvPostMessage size/type checks, routing of HvPostMessage and
 * HvSignalEvent to the connection handlers with their status passed back,
 * and HvRetargetDeviceInterrupt's input checks and INVALID_DEVICE_ID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "test_hv_fake.h"

struct calls {
	unsigned posts, signals;
	uint32_t vp, conn, mtype, len;
	uint16_t flag;
	uint8_t payload[HV_MESSAGE_PAYLOAD_MAX];
	uint16_t status; /* what the handlers answer */
};

static uint16_t on_post(void *o, uint32_t vp, uint32_t conn, uint32_t mtype,
			const void *payload, uint32_t len)
{
	struct calls *c = o;
	c->posts++;
	c->vp = vp;
	c->conn = conn;
	c->mtype = mtype;
	c->len = len;
	memcpy(c->payload, payload, len);
	return c->status;
}

static uint16_t on_signal(void *o, uint32_t vp, uint32_t conn, uint16_t flag)
{
	struct calls *c = o;
	c->signals++;
	c->vp = vp;
	c->conn = conn;
	c->flag = flag;
	return c->status;
}

#define FAST (1ull << 16)
#define IN_GPA 0x6000ull

static uint64_t call(struct fake *f, uint32_t vp, uint64_t ctl, uint64_t in, uint64_t out)
{
	struct hv_hypercall hc = { .control = ctl, .input = in, .output = out,
				   .cpl = 0, .long_mode = true };
	assert_int_equal(hv_hypercall(f->hv, vp, &hc), HV_HYPERCALL_DONE);
	return hc.result;
}

static void put_post(struct fake *f, uint64_t gpa, uint32_t conn, uint32_t type,
		     uint32_t size)
{
	uint8_t *p = f->ram + gpa;
	memset(p, 0, 256);
	memcpy(p, &conn, 4);
	memcpy(p + 8, &type, 4);
	memcpy(p + 12, &size, 4);
	for (unsigned i = 0; i < 240; i++)
		p[16 + i] = (uint8_t)(i ^ 0x5a);
}

static void test_cpl_and_mode(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	struct hv_hypercall hc = { .control = FAST | HVCALL_SIGNAL_EVENT, .cpl = 3,
				   .long_mode = true, .result = 77 };
	assert_int_equal(hv_hypercall(f->hv, 0, &hc), HV_HYPERCALL_INJECT_UD);
	assert_int_equal(hc.result, 77);
	hc.cpl = 1;
	assert_int_equal(hv_hypercall(f->hv, 0, &hc), HV_HYPERCALL_INJECT_UD);
	hc.cpl = 0;
	hc.long_mode = false;
	assert_int_equal(hv_hypercall(f->hv, 0, &hc), HV_HYPERCALL_INJECT_UD);
	hc.long_mode = true;
	assert_int_equal(hv_hypercall(f->hv, 1, &hc), HV_HYPERCALL_INJECT_UD); /* no VP 1 */
	assert_int_equal(hv_hypercall(f->hv, 0, &hc), HV_HYPERCALL_DONE);
	fake_free(f);
}

static void test_unknown_code(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	assert_int_equal(call(f, 0, 0x0099, IN_GPA, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(call(f, 0, FAST | 0x0001, 0, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(call(f, 0, 0xFFFF, 0, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(call(f, 0, 0x8001, 0, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	fake_free(f);
}

static void test_control_word(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	struct calls c = { .status = 0 };
	hv_set_connection_handlers(f->hv, on_post, on_signal, &c);
	uint64_t sig = FAST | HVCALL_SIGNAL_EVENT;
	assert_int_equal(call(f, 0, sig, 5, 0), HV_STATUS_SUCCESS);
	assert_int_equal(c.signals, 1);
	/* Reserved bits, nested (31), rep count/start on a simple call, a
	 * variable header on a fixed-size call: all rejected before routing. */
	static const uint64_t bad[] = {
		1ull << 27, 1ull << 30, 1ull << 31, 1ull << 44, 1ull << 47,
		1ull << 60, 1ull << 63, 1ull << 32, 5ull << 32, 1ull << 48,
		1ull << 17, 0x3ffull << 17,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(call(f, 0, sig | bad[i], 5, 0),
				 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(c.signals, 1);
	/* HvPostMessage has no fast form. */
	assert_int_equal(call(f, 0, FAST | HVCALL_POST_MESSAGE, 0, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(c.posts, 0);
	fake_free(f);
}

static void test_input_block_checks(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	struct calls c = { .status = 0 };
	hv_set_connection_handlers(f->hv, on_post, on_signal, &c);
	put_post(f, IN_GPA, 1, 1, 8);
	assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, IN_GPA, 0), HV_STATUS_SUCCESS);
	/* Misaligned (any of the low 3 bits). */
	for (unsigned off = 1; off < 8; off++)
		assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, IN_GPA + off, 0),
				 HV_STATUS_INVALID_ALIGNMENT);
	/* The 256-byte input crossing a page boundary. */
	put_post(f, IN_GPA + 0xF08, 1, 1, 8);
	assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, IN_GPA + 0xF08, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Exactly at the end of the page is fine. */
	put_post(f, IN_GPA + 0xF00, 1, 1, 8);
	assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, IN_GPA + 0xF00, 0), HV_STATUS_SUCCESS);
	/* Not RAM, and wrapping addresses. */
	assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, FAKE_RAM, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, 0xFFFFFFFFFFFFF000ull, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, 0xFFFFFFFFFFFFFFF8ull, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(c.posts, 2);
	fake_free(f);
}

static void test_post_message_checks_and_routing(void **state)
{
	(void)state;
	struct fake *f = fake_new(2);
	struct calls c = { .status = HV_STATUS_SUCCESS };
	/* No handlers: unknown connection. */
	put_post(f, IN_GPA, 4, 1, 16);
	assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, IN_GPA, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	hv_set_connection_handlers(f->hv, on_post, on_signal, &c);
	put_post(f, IN_GPA, 4, 1, 241);
	assert_int_equal(call(f, 1, HVCALL_POST_MESSAGE, IN_GPA, 0),
			 HV_STATUS_INVALID_PARAMETER);
	put_post(f, IN_GPA, 4, 0, 16);
	assert_int_equal(call(f, 1, HVCALL_POST_MESSAGE, IN_GPA, 0),
			 HV_STATUS_INVALID_PARAMETER);
	put_post(f, IN_GPA, 4, 0x80000001u, 16);
	assert_int_equal(call(f, 1, HVCALL_POST_MESSAGE, IN_GPA, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(c.posts, 0);
	put_post(f, IN_GPA, 4, 1, 240);
	assert_int_equal(call(f, 1, HVCALL_POST_MESSAGE, IN_GPA, 0), HV_STATUS_SUCCESS);
	assert_int_equal(c.posts, 1);
	assert_int_equal(c.vp, 1);
	assert_int_equal(c.conn, 4);
	assert_int_equal(c.mtype, 1);
	assert_int_equal(c.len, 240);
	assert_memory_equal(c.payload, f->ram + IN_GPA + 16, 240);
	/* The handler's status comes back in RAX, reps completed 0. */
	c.status = HV_STATUS_INSUFFICIENT_BUFFERS;
	put_post(f, IN_GPA, 0x7fffffff, 0x7fffffff, 0);
	assert_int_equal(call(f, 0, HVCALL_POST_MESSAGE, IN_GPA, 0),
			 HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(c.conn, 0x7fffffff);
	assert_int_equal(c.len, 0);
	/* The handler saw a copy: changing guest memory afterwards is harmless. */
	fake_free(f);
}

static void test_signal_event_routing(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	struct calls c = { .status = HV_STATUS_INVALID_CONNECTION_ID };
	assert_int_equal(call(f, 0, FAST | HVCALL_SIGNAL_EVENT, 0x1234, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	hv_set_connection_handlers(f->hv, on_post, on_signal, &c);
	/* Fast: connection id in RDX[31:0], flag in RDX[47:32]. */
	assert_int_equal(call(f, 0, FAST | HVCALL_SIGNAL_EVENT, (7ull << 32) | 0x1234, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(c.signals, 1);
	assert_int_equal(c.conn, 0x1234);
	assert_int_equal(c.flag, 7);
	c.status = 0;
	assert_int_equal(call(f, 0, FAST | HVCALL_SIGNAL_EVENT, 0x99, 0), 0);
	assert_int_equal(c.flag, 0);
	/* Flag numbers past the 2048 of a SIEF area. */
	assert_int_equal(call(f, 0, FAST | HVCALL_SIGNAL_EVENT, (2048ull << 32) | 1, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(c.signals, 2);
	/* The memory form reads the same 8 bytes from the input page. */
	uint64_t in = (3ull << 32) | 0x55;
	memcpy(f->ram + IN_GPA, &in, 8);
	assert_int_equal(call(f, 0, HVCALL_SIGNAL_EVENT, IN_GPA, 0), 0);
	assert_int_equal(c.conn, 0x55);
	assert_int_equal(c.flag, 3);
	assert_int_equal(call(f, 0, HVCALL_SIGNAL_EVENT, IN_GPA + 4, 0),
			 HV_STATUS_INVALID_ALIGNMENT);
	fake_free(f);
}

/* A VMBus-like server answers from inside the hypercall (no hv lock held). */
static struct fake *reply_fake;

static uint16_t reply_post(void *o, uint32_t vp, uint32_t conn, uint32_t mtype,
			   const void *payload, uint32_t len)
{
	(void)o;
	(void)conn;
	assert_int_equal(hv_synic_post_message(reply_fake->hv, vp, 2, mtype, payload, len), 0);
	hv_synic_signal_event(reply_fake->hv, vp, 2, 5);
	return HV_STATUS_SUCCESS;
}

static void test_reply_from_handler(void **state)
{
	(void)state;
	struct fake *f = reply_fake = fake_new(2);
	fake_synic_on(f, 1, 0x10000, 0x11000, 2, 0xF3);
	hv_set_connection_handlers(f->hv, reply_post, NULL, NULL);
	put_post(f, IN_GPA, 1, 1, 40);
	assert_int_equal(call(f, 1, HVCALL_POST_MESSAGE, IN_GPA, 0), HV_STATUS_SUCCESS);
	uint32_t type;
	memcpy(&type, f->ram + 0x10000 + 512, 4);
	assert_int_equal(type, 1);
	assert_int_equal(f->ram[0x10000 + 512 + 4], 40);
	assert_memory_equal(f->ram + 0x10000 + 512 + 16, f->ram + IN_GPA + 16, 40);
	assert_int_equal(f->ram[0x11000 + 512], 1u << 5);
	assert_int_equal(f->nmsi, 2);
	/* No signal handler: HvSignalEvent reports an unknown connection. */
	assert_int_equal(call(f, 0, FAST | HVCALL_SIGNAL_EVENT, 1, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	fake_free(f);
}

/* HvRetargetDeviceInterrupt input at gpa: device, MSI source, target flags and mask/format. */
static void put_retarget(struct fake *f, uint64_t gpa, uint32_t source, uint32_t flags,
			 uint64_t mask_or_format)
{
	uint8_t *p = f->ram + gpa;
	uint64_t self = UINT64_MAX, dev = 0x1234abcd;
	uint32_t data[2] = { 0xfee00000u, 0x4041 }, vector = 0x41;
	memset(p, 0, 80);
	memcpy(p, &self, 8);
	memcpy(p + 8, &dev, 8);
	memcpy(p + 16, &source, 4);
	memcpy(p + 24, data, 8);
	memcpy(p + 40, &vector, 4);
	memcpy(p + 44, &flags, 4);
	memcpy(p + 48, &mask_or_format, 8);
}

static void test_retarget_device_interrupt(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	const uint64_t rt = HVCALL_RETARGET_DEVICE_INTERRUPT;
	/* hvmm has no retargetable device: every well-formed call names an unknown one. */
	put_retarget(f, IN_GPA, 1, 0, 1);
	assert_int_equal(call(f, 0, rt, IN_GPA, 0), HV_STATUS_INVALID_DEVICE_ID);
	assert_int_equal(call(f, 0, rt | FAST, IN_GPA, 0), HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* A processor set: sparse format, the valid-banks mask then one mask per bank. */
	put_retarget(f, IN_GPA, 1, 2, 0);
	uint64_t set[3] = { 0x5, 1, 2 };   /* banks 0 and 2 */
	memcpy(f->ram + IN_GPA + 56, set, sizeof(set));
	assert_int_equal(call(f, 0, rt | 3ull << 17, IN_GPA, 0), HV_STATUS_INVALID_DEVICE_ID);
	assert_int_equal(call(f, 0, rt | 2ull << 17, IN_GPA, 0), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(call(f, 0, rt, IN_GPA, 0), HV_STATUS_INVALID_PARAMETER);
	put_retarget(f, IN_GPA, 1, 2, 1);   /* not HV_GENERIC_SET_SPARSE_4K */
	memcpy(f->ram + IN_GPA + 56, set, sizeof(set));
	assert_int_equal(call(f, 0, rt | 3ull << 17, IN_GPA, 0), HV_STATUS_INVALID_PARAMETER);
	/* Reserved target flags, an IOAPIC source. */
	put_retarget(f, IN_GPA, 1, 8, 1);
	assert_int_equal(call(f, 0, rt, IN_GPA, 0), HV_STATUS_INVALID_PARAMETER);
	put_retarget(f, IN_GPA, 2, 0, 1);
	assert_int_equal(call(f, 0, rt, IN_GPA, 0), HV_STATUS_INVALID_PARAMETER);
	/* The 56-byte input must fit its page. */
	put_retarget(f, 0x7fd0, 1, 0, 1);
	assert_int_equal(call(f, 0, rt, 0x7fd0, 0), HV_STATUS_INVALID_HYPERCALL_INPUT);
	fake_free(f);
}

static void test_table(void **state)
{
	(void)state;
	bool post = false, sig = false;
	for (size_t i = 0; i < hv_hypercall_table_len; i++) {
		const struct hv_hypercall_desc *d = &hv_hypercall_table[i];
		assert_non_null(d->handler);
		assert_true(d->in_size <= 4096);
		assert_true(!d->allow_fast || d->in_size <= 16);
		if (d->code == HVCALL_POST_MESSAGE)
			post = !d->allow_fast && d->allow_slow;
		if (d->code == HVCALL_SIGNAL_EVENT)
			sig = d->allow_fast;
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(d->code, hv_hypercall_table[j].code);
	}
	assert_true(post);
	assert_true(sig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpl_and_mode),
		cmocka_unit_test(test_unknown_code),
		cmocka_unit_test(test_control_word),
		cmocka_unit_test(test_input_block_checks),
		cmocka_unit_test(test_post_message_checks_and_routing),
		cmocka_unit_test(test_signal_event_routing),
		cmocka_unit_test(test_reply_from_handler),
		cmocka_unit_test(test_retarget_device_interrupt),
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
