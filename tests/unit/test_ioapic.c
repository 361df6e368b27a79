/*
 * Unit tests for the user-space I/O APIC (dev/ioapic.c): the register
 * window through an MMIO bus at the default base, the redirection entry
 * semantics (edge, level, remote IRR, EOI by call and by the EOI register,
 * delivery modes), the MSI messages sent and the route mirror, with a
 * recording fake for ioapic_ops.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/inspect.h"
#include "core/iobus.h"
#include "dev/ioapic.h"

#define BASE IOAPIC_DEFAULT_BASE
#define MAX_LOG 4096

struct msg {
	uint64_t addr;
	uint32_t data;
};

struct route {
	unsigned pin;
	uint64_t addr;
	uint32_t data;
	bool valid;
};

struct ctx {
	struct ioapic io;
	struct iobus bus;
	struct msg msgs[MAX_LOG];
	unsigned nmsgs;
	struct route routes[MAX_LOG];
	unsigned nroutes;
	atomic_int inside; /* deliver calls in progress */
	atomic_int overlaps;
	bool yield_in_deliver;
};

static void fake_deliver(void *opaque, uint64_t addr, uint32_t data)
{
	struct ctx *c = opaque;
	if (atomic_fetch_add(&c->inside, 1) != 0)
		atomic_fetch_add(&c->overlaps, 1);
	if (c->yield_in_deliver)
		sched_yield();
	if (c->nmsgs < MAX_LOG)
		c->msgs[c->nmsgs] = (struct msg){ addr, data };
	c->nmsgs++;
	atomic_fetch_sub(&c->inside, 1);
}

static void fake_route(void *opaque, unsigned pin, uint64_t addr, uint32_t data, bool valid)
{
	struct ctx *c = opaque;
	assert_true(pin < IOAPIC_NUM_PINS);
	if (c->nroutes < MAX_LOG)
		c->routes[c->nroutes] = (struct route){ pin, addr, data, valid };
	c->nroutes++;
}

static const struct ioapic_ops fake_ops = {
	.deliver = fake_deliver,
	.route = fake_route,
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	assert_int_equal(ioapic_init(&c->io, &fake_ops, c), 0);
	assert_int_equal(iobus_register(&c->bus, BASE, IOAPIC_MMIO_SIZE,
					&ioapic_mmio_ops, &c->io, "ioapic"), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	ioapic_destroy(&c->io);
	free(c);
	return 0;
}

/* Forgets what init (or earlier steps) reported. */
static void clear_log(struct ctx *c)
{
	c->nmsgs = 0;
	c->nroutes = 0;
}

static void mmio_w(struct ctx *c, uint64_t off, uint64_t v, unsigned size)
{
	assert_true(iobus_write(&c->bus, BASE + off, &v, size));
}

static uint64_t mmio_r(struct ctx *c, uint64_t off, unsigned size)
{
	uint64_t v = 0x5A5A5A5A5A5A5A5Aull; /* bytes beyond size must stay */
	assert_true(iobus_read(&c->bus, BASE + off, &v, size));
	if (size < 8)
		assert_int_equal(v >> (size * 8), 0x5A5A5A5A5A5A5A5Aull >> (size * 8));
	return size < 8 ? v & ((1ull << (size * 8)) - 1) : v;
}

static void reg_w(struct ctx *c, uint8_t index, uint32_t v)
{
	mmio_w(c, IOAPIC_IOREGSEL, index, 4);
	mmio_w(c, IOAPIC_IOWIN, v, 4);
}

static uint32_t reg_r(struct ctx *c, uint8_t index)
{
	mmio_w(c, IOAPIC_IOREGSEL, index, 4);
	return (uint32_t)mmio_r(c, IOAPIC_IOWIN, 4);
}

/* Programs an entry the way Linux does: high dword first, low last. */
static void set_entry(struct ctx *c, unsigned pin, uint64_t e)
{
	reg_w(c, (uint8_t)(IOAPIC_REG_REDTBL + 2 * pin + 1), (uint32_t)(e >> 32));
	reg_w(c, (uint8_t)(IOAPIC_REG_REDTBL + 2 * pin), (uint32_t)e);
}

static uint64_t get_entry(struct ctx *c, unsigned pin)
{
	uint64_t lo = reg_r(c, (uint8_t)(IOAPIC_REG_REDTBL + 2 * pin));
	uint64_t hi = reg_r(c, (uint8_t)(IOAPIC_REG_REDTBL + 2 * pin + 1));
	return hi << 32 | lo;
}

static uint64_t rte(uint8_t vector, unsigned dm, bool level, uint8_t dest)
{
	return vector | (uint64_t)dm << IOAPIC_RTE_DELMOD_SHIFT |
	       (level ? IOAPIC_RTE_TRIGGER : 0) | (uint64_t)dest << IOAPIC_RTE_DEST_SHIFT;
}

static void assert_msg(const struct ctx *c, unsigned i, uint64_t addr, uint32_t data)
{
	assert_true(i < c->nmsgs);
	assert_int_equal(c->msgs[i].addr, addr);
	assert_int_equal(c->msgs[i].data, data);
}

static void test_init_masks_and_routes_every_pin(void **state)
{
	struct ctx *c = *state;
	/* setup() ran init: one route per pin, all invalid, nothing sent. */
	assert_int_equal(c->nroutes, IOAPIC_NUM_PINS);
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++) {
		assert_int_equal(c->routes[i].pin, i);
		assert_false(c->routes[i].valid);
		assert_int_equal(c->routes[i].addr, 0xFEE00000ull);
		assert_int_equal(c->routes[i].data, 0x4000);
		assert_int_equal(get_entry(c, i), IOAPIC_RTE_MASK);
		assert_int_equal(ioapic_entry(&c->io, i), IOAPIC_RTE_MASK);
	}
	assert_int_equal(c->nmsgs, 0);
}

static void test_init_needs_deliver(void **state)
{
	(void)state;
	struct ioapic io;
	struct ioapic_ops ops = { .route = fake_route };
	assert_int_equal(ioapic_init(&io, &ops, NULL), -EINVAL);
	assert_int_equal(ioapic_init(&io, NULL, NULL), -EINVAL);
}

static void test_version_register(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(reg_r(c, IOAPIC_REG_VER), 0x00170020);
	reg_w(c, IOAPIC_REG_VER, 0xFFFFFFFF);
	assert_int_equal(reg_r(c, IOAPIC_REG_VER), 0x00170020);
}

static void test_id_register(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(reg_r(c, IOAPIC_REG_ID), 0);
	reg_w(c, IOAPIC_REG_ID, 0xFFFFFFFF);
	assert_int_equal(reg_r(c, IOAPIC_REG_ID), 0x0F000000);
	assert_int_equal(reg_r(c, IOAPIC_REG_ARB), 0x0F000000);
	reg_w(c, IOAPIC_REG_ID, 0x05000000);
	assert_int_equal(reg_r(c, IOAPIC_REG_ID), 0x05000000);
	reg_w(c, IOAPIC_REG_ARB, 0x0A000000); /* read-only */
	assert_int_equal(reg_r(c, IOAPIC_REG_ARB), 0x05000000);
	assert_int_equal(reg_r(c, IOAPIC_REG_ID), 0x05000000);
}

static void test_ioregsel(void **state)
{
	struct ctx *c = *state;
	mmio_w(c, IOAPIC_IOREGSEL, 0x12345678, 4);
	assert_int_equal(mmio_r(c, IOAPIC_IOREGSEL, 4), 0x78);
	mmio_w(c, IOAPIC_IOREGSEL, 0x01, 1); /* byte access selects too */
	assert_int_equal(mmio_r(c, IOAPIC_IOREGSEL, 1), 0x01);
	assert_int_equal(mmio_r(c, IOAPIC_IOWIN, 4), 0x00170020);
}

static void test_redirection_table_window(void **state)
{
	struct ctx *c = *state;
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		set_entry(c, i, IOAPIC_RTE_MASK | (uint64_t)(0xC0 + i) << 56 | (0x20 + i));
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++) {
		uint64_t want = IOAPIC_RTE_MASK | (uint64_t)(0xC0 + i) << 56 | (0x20 + i);
		assert_int_equal(get_entry(c, i), want);
		assert_int_equal(ioapic_entry(&c->io, i), want);
	}
	/* The two halves are independent. */
	reg_w(c, IOAPIC_REG_REDTBL + 2 * 5 + 1, 0xAA000000);
	assert_int_equal(get_entry(c, 5), IOAPIC_RTE_MASK | 0xAAull << 56 | 0x25);
	reg_w(c, IOAPIC_REG_REDTBL + 2 * 5, 0x0001A0FE);
	assert_int_equal(get_entry(c, 5), 0xAAull << 56 | 0x1A0FE);
	assert_int_equal(c->nmsgs, 0);
}

static void test_unknown_indexes_read_zero(void **state)
{
	struct ctx *c = *state;
	static const uint8_t idx[] = { 0x03, 0x0F, 0x40, 0x41, 0x80, 0xFF };
	for (unsigned i = 0; i < sizeof(idx); i++) {
		reg_w(c, idx[i], 0xFFFFFFFF);
		assert_int_equal(reg_r(c, idx[i]), 0);
	}
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		assert_int_equal(ioapic_entry(&c->io, i), IOAPIC_RTE_MASK);
	assert_int_equal(reg_r(c, IOAPIC_REG_ID), 0);
}

static void test_read_only_bits(void **state)
{
	struct ctx *c = *state;
	/* Writes of delivery status and remote IRR do not stick. */
	set_entry(c, 3, rte(0x33, IOAPIC_DM_FIXED, true, 0) | IOAPIC_RTE_DELIVS |
			       IOAPIC_RTE_REMOTE_IRR);
	assert_int_equal(get_entry(c, 3), rte(0x33, IOAPIC_DM_FIXED, true, 0));
	/* Remote IRR set by a delivery survives a guest write clearing it. */
	ioapic_set_irq(&c->io, 3, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_true(get_entry(c, 3) & IOAPIC_RTE_REMOTE_IRR);
	assert_false(get_entry(c, 3) & IOAPIC_RTE_DELIVS); /* synchronous delivery */
	reg_w(c, IOAPIC_REG_REDTBL + 2 * 3, (uint32_t)rte(0x34, IOAPIC_DM_FIXED, true, 0));
	assert_int_equal(get_entry(c, 3),
			 rte(0x34, IOAPIC_DM_FIXED, true, 0) | IOAPIC_RTE_REMOTE_IRR);
	assert_int_equal(c->nmsgs, 1);
}

static void test_edge_delivers_on_rising_edges(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 4, rte(0x30, IOAPIC_DM_FIXED, false, 1));
	clear_log(c);
	ioapic_set_irq(&c->io, 4, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_msg(c, 0, 0xFEE01000, 0x4030);
	ioapic_set_irq(&c->io, 4, 1); /* no edge */
	assert_int_equal(c->nmsgs, 1);
	ioapic_set_irq(&c->io, 4, 0);
	assert_int_equal(c->nmsgs, 1);
	ioapic_set_irq(&c->io, 4, 1);
	assert_int_equal(c->nmsgs, 2);
	assert_msg(c, 1, 0xFEE01000, 0x4030);
	/* An edge pin never holds remote IRR; EOIs do nothing. */
	assert_false(ioapic_entry(&c->io, 4) & IOAPIC_RTE_REMOTE_IRR);
	ioapic_eoi(&c->io, 0x30);
	assert_int_equal(c->nmsgs, 2);
	assert_int_equal(c->nroutes, 0);
}

static void test_edge_while_masked_is_lost(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 7, rte(0x37, IOAPIC_DM_FIXED, false, 0) | IOAPIC_RTE_MASK);
	ioapic_set_irq(&c->io, 7, 1);
	assert_int_equal(c->nmsgs, 0);
	set_entry(c, 7, rte(0x37, IOAPIC_DM_FIXED, false, 0)); /* unmask, line up */
	assert_int_equal(c->nmsgs, 0);
	ioapic_set_irq(&c->io, 7, 0);
	ioapic_set_irq(&c->io, 7, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_msg(c, 0, 0xFEE00000, 0x4037);
}

static void test_message_format(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 9, rte(0x41, IOAPIC_DM_LOWEST, true, 0xAB) | IOAPIC_RTE_DESTMOD);
	ioapic_set_irq(&c->io, 9, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_msg(c, 0, 0xFEEAB004, 0x41 | 1u << 8 | 1u << 14 | 1u << 15);
	set_entry(c, 10, rte(0xFE, IOAPIC_DM_FIXED, false, 0xFF));
	ioapic_set_irq(&c->io, 10, 1);
	assert_msg(c, 1, 0xFEEFF000, 0x40FE);
}

static void test_level_remote_irr_and_eoi(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 11, rte(0x51, IOAPIC_DM_FIXED, true, 2));
	clear_log(c);
	ioapic_set_irq(&c->io, 11, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_msg(c, 0, 0xFEE02000, 0x51 | 1u << 14 | 1u << 15);
	assert_true(ioapic_entry(&c->io, 11) & IOAPIC_RTE_REMOTE_IRR);
	/* Still asserted, remote IRR set: nothing more. */
	ioapic_set_irq(&c->io, 11, 1);
	ioapic_set_irq(&c->io, 11, 0);
	ioapic_set_irq(&c->io, 11, 1);
	assert_int_equal(c->nmsgs, 1);
	/* EOI of another vector: nothing. */
	ioapic_eoi(&c->io, 0x52);
	assert_int_equal(c->nmsgs, 1);
	assert_true(ioapic_entry(&c->io, 11) & IOAPIC_RTE_REMOTE_IRR);
	/* EOI with the line still up: delivered again, remote IRR set again. */
	ioapic_eoi(&c->io, 0x51);
	assert_int_equal(c->nmsgs, 2);
	assert_true(ioapic_entry(&c->io, 11) & IOAPIC_RTE_REMOTE_IRR);
	/* Line dropped, then EOI: remote IRR clears, nothing sent. */
	ioapic_set_irq(&c->io, 11, 0);
	ioapic_eoi(&c->io, 0x51);
	assert_int_equal(c->nmsgs, 2);
	assert_false(ioapic_entry(&c->io, 11) & IOAPIC_RTE_REMOTE_IRR);
	/* Raised again: delivered at once. */
	ioapic_set_irq(&c->io, 11, 1);
	assert_int_equal(c->nmsgs, 3);
	/* Remote IRR changes are not route changes. */
	assert_int_equal(c->nroutes, 0);
}

static void test_level_unmask_delivers(void **state)
{
	struct ctx *c = *state;
	uint64_t e = rte(0x60, IOAPIC_DM_FIXED, true, 0);
	set_entry(c, 12, e | IOAPIC_RTE_MASK);
	ioapic_set_irq(&c->io, 12, 1);
	assert_int_equal(c->nmsgs, 0);
	assert_false(ioapic_entry(&c->io, 12) & IOAPIC_RTE_REMOTE_IRR);
	set_entry(c, 12, e);
	assert_int_equal(c->nmsgs, 1);
	assert_msg(c, 0, 0xFEE00000, 0x60 | 1u << 14 | 1u << 15);
	assert_true(ioapic_entry(&c->io, 12) & IOAPIC_RTE_REMOTE_IRR);
	/* Mask and unmask with remote IRR set: no second message. */
	set_entry(c, 12, e | IOAPIC_RTE_MASK);
	set_entry(c, 12, e);
	assert_int_equal(c->nmsgs, 1);
	/* EOI while masked clears remote IRR but does not send. */
	set_entry(c, 12, e | IOAPIC_RTE_MASK);
	ioapic_eoi(&c->io, 0x60);
	assert_int_equal(c->nmsgs, 1);
	assert_false(ioapic_entry(&c->io, 12) & IOAPIC_RTE_REMOTE_IRR);
	set_entry(c, 12, e);
	assert_int_equal(c->nmsgs, 2);
}

static void test_edge_write_clears_remote_irr(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 13, rte(0x61, IOAPIC_DM_FIXED, true, 0));
	ioapic_set_irq(&c->io, 13, 1);
	assert_true(ioapic_entry(&c->io, 13) & IOAPIC_RTE_REMOTE_IRR);
	set_entry(c, 13, rte(0x61, IOAPIC_DM_FIXED, false, 0));
	assert_false(ioapic_entry(&c->io, 13) & IOAPIC_RTE_REMOTE_IRR);
	assert_int_equal(c->nmsgs, 1);
	/* Back to level with the line still up: it fires (Linux's EOI emulation). */
	set_entry(c, 13, rte(0x61, IOAPIC_DM_FIXED, true, 0));
	assert_int_equal(c->nmsgs, 2);
	assert_true(ioapic_entry(&c->io, 13) & IOAPIC_RTE_REMOTE_IRR);
}

static void test_eoi_register(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 14, rte(0x70, IOAPIC_DM_FIXED, true, 0));
	ioapic_set_irq(&c->io, 14, 1);
	assert_int_equal(c->nmsgs, 1);
	mmio_w(c, IOAPIC_EOI, 0x71, 4);
	assert_int_equal(c->nmsgs, 1);
	mmio_w(c, IOAPIC_EOI, 0x70, 1); /* not a 32-bit access: ignored */
	assert_int_equal(c->nmsgs, 1);
	assert_true(ioapic_entry(&c->io, 14) & IOAPIC_RTE_REMOTE_IRR);
	mmio_w(c, IOAPIC_EOI, 0xFFFFFF70, 4); /* only bits 0-7 are the vector */
	assert_int_equal(c->nmsgs, 2);
	ioapic_set_irq(&c->io, 14, 0);
	mmio_w(c, IOAPIC_EOI, 0x70, 4);
	assert_false(ioapic_entry(&c->io, 14) & IOAPIC_RTE_REMOTE_IRR);
	assert_int_equal(c->nmsgs, 2);
	assert_int_equal(mmio_r(c, IOAPIC_EOI, 4), 0);
}

static void test_shared_vector_eoi(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 16, rte(0x80, IOAPIC_DM_FIXED, true, 0));
	set_entry(c, 17, rte(0x80, IOAPIC_DM_FIXED, true, 1));
	ioapic_set_irq(&c->io, 16, 1);
	ioapic_set_irq(&c->io, 17, 1);
	assert_int_equal(c->nmsgs, 2);
	ioapic_eoi(&c->io, 0x80);
	assert_int_equal(c->nmsgs, 4);
	assert_msg(c, 2, 0xFEE00000, 0xC080);
	assert_msg(c, 3, 0xFEE01000, 0xC080);
}

static void test_level_storm_no_recursion(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 18, rte(0x90, IOAPIC_DM_FIXED, true, 0));
	ioapic_set_irq(&c->io, 18, 1);
	for (unsigned i = 0; i < 1000; i++) {
		ioapic_eoi(&c->io, 0x90);
		assert_int_equal(c->nmsgs, i + 2); /* exactly one per EOI */
	}
	assert_int_equal(atomic_load(&c->overlaps), 0);
}

static void test_polarity_ignored(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 19, rte(0x91, IOAPIC_DM_FIXED, true, 0) | IOAPIC_RTE_INTPOL);
	ioapic_set_irq(&c->io, 19, 0);
	assert_int_equal(c->nmsgs, 0);
	ioapic_set_irq(&c->io, 19, 1);
	assert_int_equal(c->nmsgs, 1);
	set_entry(c, 20, rte(0x92, IOAPIC_DM_FIXED, false, 0) | IOAPIC_RTE_INTPOL);
	ioapic_set_irq(&c->io, 20, 1);
	assert_int_equal(c->nmsgs, 2);
	assert_msg(c, 1, 0xFEE00000, 0x4092);
}

static void test_undeliverable_modes(void **state)
{
	struct ctx *c = *state;
	static const unsigned dm[] = { IOAPIC_DM_EXTINT, IOAPIC_DM_SMI, 3, 6 };
	for (unsigned i = 0; i < 4; i++) {
		clear_log(c);
		set_entry(c, i, rte(0x20, dm[i], false, 0));
		assert_int_equal(c->nroutes, 1);
		assert_false(c->routes[0].valid);
		ioapic_set_irq(&c->io, i, 1);
		/* Level entries of these modes neither send nor wait for EOI. */
		set_entry(c, 8 + i, rte(0x21, dm[i], true, 0));
		ioapic_set_irq(&c->io, 8 + i, 1);
		assert_false(ioapic_entry(&c->io, 8 + i) & IOAPIC_RTE_REMOTE_IRR);
		assert_int_equal(c->nmsgs, 0);
	}
}

static void test_nmi_init_sent_as_edge(void **state)
{
	struct ctx *c = *state;
	/* Trigger bit set, but NMI and INIT are edge: no remote IRR, no bit 15. */
	set_entry(c, 2, rte(0x00, IOAPIC_DM_NMI, true, 3));
	ioapic_set_irq(&c->io, 2, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_msg(c, 0, 0xFEE03000, 4u << 8 | 1u << 14);
	assert_false(ioapic_entry(&c->io, 2) & IOAPIC_RTE_REMOTE_IRR);
	ioapic_set_irq(&c->io, 2, 1);
	assert_int_equal(c->nmsgs, 1);
	set_entry(c, 5, rte(0x00, IOAPIC_DM_INIT, false, 1));
	ioapic_set_irq(&c->io, 5, 1);
	assert_int_equal(c->nmsgs, 2);
	assert_msg(c, 1, 0xFEE01000, 5u << 8 | 1u << 14);
}

static void test_bad_sizes_and_offsets(void **state)
{
	struct ctx *c = *state;
	mmio_w(c, IOAPIC_IOREGSEL, IOAPIC_REG_VER, 4);
	assert_int_equal(mmio_r(c, IOAPIC_IOWIN, 8), 0);
	assert_int_equal(mmio_r(c, IOAPIC_IOWIN, 2), 0);
	assert_int_equal(mmio_r(c, IOAPIC_IOWIN, 1), 0);
	assert_int_equal(mmio_r(c, IOAPIC_IOWIN + 1, 1), 0);
	assert_int_equal(mmio_r(c, 0x20, 4), 0);
	assert_int_equal(mmio_r(c, 0x100, 4), 0); /* no aliasing of 0x00 */
	assert_int_equal(mmio_r(c, IOAPIC_MMIO_SIZE - 4, 4), 0);
	assert_int_equal(mmio_r(c, IOAPIC_MMIO_SIZE - 1, 1), 0);
	/* Writes of the wrong size to IOWIN change nothing. */
	mmio_w(c, IOAPIC_IOREGSEL, IOAPIC_REG_REDTBL, 4);
	mmio_w(c, IOAPIC_IOWIN, 0x31, 2);
	mmio_w(c, IOAPIC_IOWIN, 0x31, 1);
	mmio_w(c, IOAPIC_IOWIN, 0x31, 8);
	mmio_w(c, IOAPIC_IOWIN + 2, 0x31, 2);
	mmio_w(c, 0x14, 0x31, 4);
	mmio_w(c, 0x110, 0x31, 4);
	assert_int_equal(ioapic_entry(&c->io, 0), IOAPIC_RTE_MASK);
	/* The select survived; the window still works at size 4. */
	assert_int_equal(mmio_r(c, IOAPIC_IOREGSEL, 4), IOAPIC_REG_REDTBL);
	mmio_w(c, IOAPIC_IOWIN, 0x31, 4);
	assert_int_equal(ioapic_entry(&c->io, 0), 0x31);
	/* An 8-byte IOREGSEL write takes the low byte. */
	mmio_w(c, IOAPIC_IOREGSEL, 0xFFFFFFFFFFFFFF01ull, 8);
	assert_int_equal(mmio_r(c, IOAPIC_IOREGSEL, 8), 0x01);
}

static void test_pins_out_of_range(void **state)
{
	struct ctx *c = *state;
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		set_entry(c, i, rte((uint8_t)(0x20 + i), IOAPIC_DM_FIXED, false, 0));
	clear_log(c);
	ioapic_set_irq(&c->io, IOAPIC_NUM_PINS, 1);
	ioapic_set_irq(&c->io, 1000, 1);
	ioapic_set_irq(&c->io, ~0u, 1);
	assert_int_equal(c->nmsgs, 0);
	assert_int_equal(ioapic_entry(&c->io, IOAPIC_NUM_PINS), 0);
	assert_int_equal(ioapic_entry(&c->io, ~0u), 0);
	ioapic_set_irq(&c->io, IOAPIC_NUM_PINS - 1, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_msg(c, 0, 0xFEE00000, 0x4000 | (0x20 + IOAPIC_NUM_PINS - 1));
}

static void test_route_on_change_only(void **state)
{
	struct ctx *c = *state;
	clear_log(c);
	uint64_t e = rte(0xA0, IOAPIC_DM_FIXED, true, 6);
	/* High dword while masked: the message changes, still invalid. */
	reg_w(c, IOAPIC_REG_REDTBL + 2 * 21 + 1, 6u << 24);
	assert_int_equal(c->nroutes, 1);
	assert_int_equal(c->routes[0].pin, 21);
	assert_int_equal(c->routes[0].addr, 0xFEE06000);
	assert_false(c->routes[0].valid);
	/* The same value again: no call. */
	reg_w(c, IOAPIC_REG_REDTBL + 2 * 21 + 1, 6u << 24);
	assert_int_equal(c->nroutes, 1);
	/* Unmask with vector and trigger: valid now. */
	reg_w(c, IOAPIC_REG_REDTBL + 2 * 21, (uint32_t)e);
	assert_int_equal(c->nroutes, 2);
	assert_int_equal(c->routes[1].pin, 21);
	assert_int_equal(c->routes[1].addr, 0xFEE06000);
	assert_int_equal(c->routes[1].data, 0xA0 | 1u << 14 | 1u << 15);
	assert_true(c->routes[1].valid);
	/* Rewrites, polarity (not part of the message), lines, EOIs: no call. */
	set_entry(c, 21, e);
	set_entry(c, 21, e | IOAPIC_RTE_INTPOL);
	ioapic_set_irq(&c->io, 21, 1);
	ioapic_eoi(&c->io, 0xA0);
	ioapic_set_irq(&c->io, 21, 0);
	ioapic_eoi(&c->io, 0xA0);
	assert_int_equal(c->nroutes, 2);
	assert_int_equal(c->nmsgs, 2);
	/* Mask: invalid, same message. */
	set_entry(c, 21, e | IOAPIC_RTE_MASK);
	assert_int_equal(c->nroutes, 3);
	assert_false(c->routes[2].valid);
	assert_int_equal(c->routes[2].data, 0xA0 | 1u << 14 | 1u << 15);
	/* Logical mode changes the address. */
	set_entry(c, 21, e | IOAPIC_RTE_DESTMOD);
	assert_int_equal(c->nroutes, 4);
	assert_int_equal(c->routes[3].addr, 0xFEE06004);
	assert_true(c->routes[3].valid);
}

static void test_route_may_be_null(void **state)
{
	(void)state;
	struct ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	static const struct ioapic_ops ops = { .deliver = fake_deliver };
	assert_int_equal(ioapic_init(&c->io, &ops, c), 0);
	assert_int_equal(iobus_register(&c->bus, BASE, IOAPIC_MMIO_SIZE,
					&ioapic_mmio_ops, &c->io, "ioapic"), 0);
	set_entry(c, 1, rte(0x31, IOAPIC_DM_FIXED, false, 0));
	ioapic_set_irq(&c->io, 1, 1);
	assert_int_equal(c->nmsgs, 1);
	assert_int_equal(c->nroutes, 0);
	ioapic_destroy(&c->io);
	free(c);
}

static void test_reset(void **state)
{
	struct ctx *c = *state;
	reg_w(c, IOAPIC_REG_ID, 0x03000000);
	set_entry(c, 0, rte(0x40, IOAPIC_DM_FIXED, true, 0));
	set_entry(c, 1, rte(0x41, IOAPIC_DM_FIXED, false, 0));
	ioapic_set_irq(&c->io, 0, 1);
	assert_int_equal(c->nmsgs, 1);
	clear_log(c);
	ioapic_reset(&c->io);
	assert_int_equal(reg_r(c, IOAPIC_REG_ID), 0);
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		assert_int_equal(ioapic_entry(&c->io, i), IOAPIC_RTE_MASK);
	/* Only the two programmed pins changed their message. */
	assert_int_equal(c->nroutes, 2);
	assert_int_equal(c->routes[0].pin, 0);
	assert_int_equal(c->routes[1].pin, 1);
	assert_false(c->routes[0].valid);
	/* The line stayed up: unmasking the level pin fires it. */
	set_entry(c, 0, rte(0x40, IOAPIC_DM_FIXED, true, 0));
	assert_int_equal(c->nmsgs, 1);
}

static void test_inspect(void **state)
{
	struct ctx *c = *state;
	reg_w(c, IOAPIC_REG_ID, 0x02000000);
	set_entry(c, 3, rte(0x33, IOAPIC_DM_LOWEST, true, 7));
	ioapic_set_irq(&c->io, 3, 1);
	char *s = NULL;
	assert_int_equal(inspect_render(ioapic_inspect, &c->io, "", 0, &s), 0);
	assert_non_null(strstr(s, "id: 2,"));
	free(s);
	assert_int_equal(inspect_render(ioapic_inspect, &c->io, "pins/3", -1, &s), 0);
	assert_non_null(strstr(s, "vector: 51,"));
	assert_non_null(strstr(s, "delivery_mode: \"lowest\""));
	assert_non_null(strstr(s, "dest: 7,"));
	assert_non_null(strstr(s, "remote_irr: true"));
	assert_non_null(strstr(s, "line: true"));
	assert_non_null(strstr(s, "masked: false"));
	assert_non_null(strstr(s, "delivered: 1,"));
	free(s);
	assert_int_equal(inspect_render(ioapic_inspect, &c->io, "pins/4", -1, &s), 0);
	assert_non_null(strstr(s, "masked: true"));
	assert_non_null(strstr(s, "line: false"));
	free(s);
}

struct toggler {
	struct ctx *c;
	unsigned pin;
};

static void *toggle_thread(void *arg)
{
	struct toggler *t = arg;
	for (unsigned i = 0; i < 5000; i++) {
		ioapic_set_irq(&t->c->io, t->pin, 1);
		ioapic_set_irq(&t->c->io, t->pin, 0);
		ioapic_eoi(&t->c->io, 0x99);
	}
	return NULL;
}

static void test_threads_serialize_delivery(void **state)
{
	struct ctx *c = *state;
	set_entry(c, 1, rte(0x91, IOAPIC_DM_FIXED, false, 0));
	set_entry(c, 2, rte(0x92, IOAPIC_DM_FIXED, false, 0));
	c->yield_in_deliver = true;
	clear_log(c);
	struct toggler t[2] = { { c, 1 }, { c, 2 } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, toggle_thread, &t[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(c->nmsgs, 10000);
	assert_int_equal(atomic_load(&c->overlaps), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_init_masks_and_routes_every_pin),
		T(test_init_needs_deliver),
		T(test_version_register),
		T(test_id_register),
		T(test_ioregsel),
		T(test_redirection_table_window),
		T(test_unknown_indexes_read_zero),
		T(test_read_only_bits),
		T(test_edge_delivers_on_rising_edges),
		T(test_edge_while_masked_is_lost),
		T(test_message_format),
		T(test_level_remote_irr_and_eoi),
		T(test_level_unmask_delivers),
		T(test_edge_write_clears_remote_irr),
		T(test_eoi_register),
		T(test_shared_vector_eoi),
		T(test_level_storm_no_recursion),
		T(test_polarity_ignored),
		T(test_undeliverable_modes),
		T(test_nmi_init_sent_as_edge),
		T(test_bad_sizes_and_offsets),
		T(test_pins_out_of_range),
		T(test_route_on_change_only),
		T(test_route_may_be_null),
		T(test_reset),
		T(test_inspect),
		T(test_threads_serialize_delivery),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
