/*
 * Unit tests for the ACPI PM device (dev/pm.c), driven through its port
 * I/O registration with a recording IRQ line and VM event sink.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/iobus.h"
#include "dev/pm.h"

struct fake {
	int level;
	unsigned sets;
	unsigned gsi;
	unsigned events[3];
	uint64_t now_ns;
};

static void fake_irq_set(void *opaque, unsigned gsi, int level)
{
	struct fake *f = opaque;
	f->level = level;
	f->gsi = gsi;
	f->sets++;
}

static void fake_raise(void *opaque, enum vm_event ev)
{
	struct fake *f = opaque;
	f->events[ev]++;
}

static uint64_t fake_clock(void *opaque)
{
	return ((struct fake *)opaque)->now_ns;
}

struct ctx {
	struct fake f;
	struct pm pm;
	struct iobus bus;
};

static int setup(void **state)
{
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	struct irq_line sci = { fake_irq_set, &c.f, 9 };
	struct vm_event_sink ev = { fake_raise, &c.f };
	assert_int_equal(pm_init(&c.pm, &sci, &ev), 0);
	assert_int_equal(pm_register(&c.pm, &c.bus), 0);
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	pm_destroy(&c->pm);
	return 0;
}

static uint32_t in(struct ctx *c, uint16_t port, unsigned size)
{
	uint32_t v = 0;
	assert_true(iobus_read(&c->bus, port, &v, size));
	return v;
}

static void out(struct ctx *c, uint16_t port, uint32_t v, unsigned size)
{
	assert_true(iobus_write(&c->bus, port, &v, size));
}

static const struct io_range *range(struct ctx *c, uint64_t base)
{
	for (unsigned i = 0; i < c->bus.n; i++)
		if (c->bus.ranges[i].base == base)
			return &c->bus.ranges[i];
	fail_msg("no range at %#llx", (unsigned long long)base);
	return NULL;
}

static void test_registration(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(range(c, 0x600)->len, 12);
	assert_int_equal(range(c, 0xCF9)->len, 1);
	assert_int_equal(range(c, 0x60)->len, 1);
	assert_int_equal(range(c, 0x64)->len, 1);
	assert_int_equal(pm_register(&c->pm, &c->bus), -EEXIST);
}

static void test_sci_en_reads_set(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(in(c, 0x604, 2) & PM1_SCI_EN, PM1_SCI_EN);
	out(c, 0x604, 0, 2);
	assert_int_equal(in(c, 0x604, 2) & PM1_SCI_EN, PM1_SCI_EN);
	assert_int_equal(in(c, 0x604, 1) & PM1_SCI_EN, PM1_SCI_EN);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 0);
}

static void test_s5_poweroff(void **state)
{
	struct ctx *c = *state;

	/* ACPICA writes SLP_TYP first, then SLP_TYP | SLP_EN. */
	out(c, 0x604, 5 << PM1_SLP_TYP_SHIFT, 2);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 0);
	assert_int_equal(in(c, 0x604, 2),
			 (5 << PM1_SLP_TYP_SHIFT) | PM1_SCI_EN); /* SLP_EN reads 0 */
	out(c, 0x604, (5 << PM1_SLP_TYP_SHIFT) | PM1_SLP_EN, 2);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 1);
	assert_int_equal(in(c, 0x604, 2) & PM1_SLP_EN, 0);

	/* The same through a byte write of the high half. */
	out(c, 0x605, (5 << 2) | (1 << 5), 1);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 2);
	/* And as part of a dword write starting at PM1_EN. */
	out(c, 0x602, (uint32_t)((5 << PM1_SLP_TYP_SHIFT) | PM1_SLP_EN) << 16, 4);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 3);
	assert_int_equal(c->f.events[VM_EVENT_RESET], 0);
}

static void test_other_sleep_types(void **state)
{
	struct ctx *c = *state;
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == 5)
			continue;
		out(c, 0x604, (typ << PM1_SLP_TYP_SHIFT) | PM1_SLP_EN, 2);
		assert_int_equal(in(c, 0x604, 2) & PM1_SLP_TYP_MASK,
				 typ << PM1_SLP_TYP_SHIFT);
	}
	/* SLP_TYP 5 without SLP_EN does nothing either. */
	out(c, 0x604, 5 << PM1_SLP_TYP_SHIFT, 2);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 0);
	assert_int_equal(c->f.events[VM_EVENT_RESET], 0);
}

static void test_reset_cf9(void **state)
{
	struct ctx *c = *state;

	out(c, 0xCF9, 0x02, 1); /* SYS_RST alone selects, does not reset */
	assert_int_equal(c->f.events[VM_EVENT_RESET], 0);
	assert_int_equal(in(c, 0xCF9, 1), 0x02);
	out(c, 0xCF9, 0x06, 1); /* the FADT RESET_VALUE */
	assert_int_equal(c->f.events[VM_EVENT_RESET], 1);
	out(c, 0xCF9, 0x04, 1);
	out(c, 0xCF9, 0x0E, 1);
	assert_int_equal(c->f.events[VM_EVENT_RESET], 3);
	assert_int_equal(in(c, 0xCF9, 1) & PM_RST_RST_CPU, 0); /* self-clearing */
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 0);
}

static void test_i8042(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(in(c, 0x64, 1), 0); /* OBF and IBF clear */
	out(c, 0x64, 0xAA, 1);                /* self-test: ignored */
	out(c, 0x64, 0xAD, 1);
	out(c, 0x64, 0x20, 1);
	out(c, 0x60, 0xFE, 1);                /* keyboard data, no effect */
	assert_int_equal(in(c, 0x64, 1), 0);
	assert_int_equal(c->f.events[VM_EVENT_RESET], 0);

	out(c, 0x64, 0xFE, 1);
	assert_int_equal(c->f.events[VM_EVENT_RESET], 1);

	/* Write output port with bit 0 (reset line, active low) clear. */
	out(c, 0x64, 0xD1, 1);
	out(c, 0x60, 0xFF, 1);
	assert_int_equal(c->f.events[VM_EVENT_RESET], 1);
	out(c, 0x64, 0xD1, 1);
	out(c, 0x60, 0xFE, 1);
	assert_int_equal(c->f.events[VM_EVENT_RESET], 2);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 0);
}

static void test_pm_timer_rate(void **state)
{
	struct ctx *c = *state;
	struct timespec t0, t1, t2, t3;
	struct timespec nap = { 0, 100 * 1000 * 1000 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint32_t a = in(c, 0x608, 4);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	nanosleep(&nap, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	uint32_t b = in(c, 0x608, 4);
	clock_gettime(CLOCK_MONOTONIC, &t3);

	double lo = (t2.tv_sec - t1.tv_sec) + (t2.tv_nsec - t1.tv_nsec) / 1e9;
	double hi = (t3.tv_sec - t0.tv_sec) + (t3.tv_nsec - t0.tv_nsec) / 1e9;
	uint32_t d = b - a;
	assert_true(d + 1.0 >= lo * 3579545.0);
	assert_true(d <= hi * 3579545.0 + 1.0);
	assert_true(lo >= 0.1);
}

static void test_pm_timer_fake_clock(void **state)
{
	struct ctx *c = *state;

	c->f.now_ns = 5000;
	pm_set_clock(&c->pm, fake_clock, &c->f);
	assert_int_equal(in(c, 0x608, 4), 0);
	c->f.now_ns += 1000000000ULL;
	assert_int_equal(in(c, 0x608, 4), 3579545);
	c->f.now_ns += 1000; /* 3.58 ticks */
	assert_int_equal(in(c, 0x608, 4), 3579548);
	/* Byte and word reads see the same counter. */
	assert_int_equal(in(c, 0x608, 2), 3579548 & 0xFFFF);
	assert_int_equal(in(c, 0x60A, 1), (3579548 >> 16) & 0xFF);
	assert_int_equal(in(c, 0x600, 2) & PM1_TMR_STS, 0);

	/* Crossing bit 31 (600 s) sets TMR_STS; the counter wraps at 32 bits. */
	c->f.now_ns = 5000 + 1200ULL * 1000000000ULL;
	assert_int_equal(in(c, 0x608, 4), (uint32_t)(1200ULL * 3579545ULL));
	assert_int_equal(in(c, 0x600, 2) & PM1_TMR_STS, PM1_TMR_STS);
	out(c, 0x600, PM1_TMR_STS, 2);
	assert_int_equal(in(c, 0x600, 2) & PM1_TMR_STS, 0);
	/* Writes to the timer are ignored. */
	out(c, 0x608, 0, 4);
	assert_int_equal(in(c, 0x608, 4), (uint32_t)(1200ULL * 3579545ULL));
}

static void test_sci_power_button(void **state)
{
	struct ctx *c = *state;

	pm_power_button(&c->pm);
	assert_int_equal(in(c, 0x600, 2) & PM1_PWRBTN_STS, PM1_PWRBTN_STS);
	assert_int_equal(c->f.level, 0); /* not enabled yet */
	out(c, 0x602, PM1_PWRBTN_EN, 2);
	assert_int_equal(in(c, 0x602, 2), PM1_PWRBTN_EN);
	assert_int_equal(c->f.level, 1);
	assert_int_equal(c->f.gsi, 9);
	/* Writing 0 leaves status alone; writing 1 clears it. */
	out(c, 0x600, 0, 2);
	assert_int_equal(c->f.level, 1);
	out(c, 0x600, PM1_PWRBTN_STS, 2);
	assert_int_equal(in(c, 0x600, 2) & PM1_PWRBTN_STS, 0);
	assert_int_equal(c->f.level, 0);
	/* Pressed again while enabled: SCI at once; reset drops it. */
	pm_power_button(&c->pm);
	assert_int_equal(c->f.level, 1);
	pm_reset(&c->pm);
	assert_int_equal(c->f.level, 0);
	assert_int_equal(in(c, 0x600, 4), 0); /* STS and EN cleared */
	assert_int_equal(in(c, 0x604, 2), PM1_SCI_EN);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 0);
}

static void test_odd_accesses(void **state)
{
	struct ctx *c = *state;
	const struct io_range *r = range(c, 0x600);
	uint8_t data[16];

	/* Sizes and offsets the bus would never produce, straight to ops. */
	static const unsigned sizes[] = { 0, 3, 5, 8, 16 };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(data, 0, sizeof(data));
		r->ops->read(r->opaque, 0, data, sizes[i]);
		for (unsigned j = 0; j < sizes[i]; j++)
			assert_int_equal(data[j], 0xFF);
		memset(data, 0xFF, sizeof(data));
		r->ops->write(r->opaque, 4, data, sizes[i]);
	}
	r->ops->read(r->opaque, 11, data, 2);    /* runs past the range */
	assert_int_equal(data[0], 0xFF);
	r->ops->write(r->opaque, 11, data, 2);
	r->ops->read(r->opaque, 1ULL << 40, data, 1);
	r->ops->write(r->opaque, UINT64_MAX, data, 4);

	static const uint64_t small[] = { 0xCF9, 0x60, 0x64 };
	for (unsigned i = 0; i < 3; i++) {
		const struct io_range *s = range(c, small[i]);
		memset(data, 0x00, sizeof(data));
		s->ops->read(s->opaque, 0, data, 2);
		assert_int_equal(data[0], 0xFF);
		s->ops->read(s->opaque, 5, data, 1);
		memset(data, 0xFE, sizeof(data));
		s->ops->write(s->opaque, 0, data, 2); /* 0xFEFE, wrong size */
		s->ops->write(s->opaque, 3, data, 1);
	}
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 0);
	assert_int_equal(c->f.events[VM_EVENT_RESET], 0);

	/* Accesses the bus does allow: 8 bytes, and across registers. */
	uint64_t q = 0;
	assert_true(iobus_read(&c->bus, 0x600, &q, 8));
	assert_int_equal(q, UINT64_MAX);
	out(c, 0x602, PM1_PWRBTN_EN, 2);
	uint16_t w = 0;
	assert_true(iobus_read(&c->bus, 0x603, &w, 2)); /* EN high, CNT low */
	assert_int_equal(w, (PM1_PWRBTN_EN >> 8) | (PM1_SCI_EN << 8));
	/* Gap at 0x606-0x607 reads ones, writes vanish. */
	assert_int_equal(in(c, 0x606, 2), 0xFFFF);
	out(c, 0x606, 0, 2);
	assert_int_equal(c->f.events[VM_EVENT_POWEROFF], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sci_en_reads_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_s5_poweroff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_sleep_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_cf9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_i8042, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm_timer_rate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm_timer_fake_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sci_power_button, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_accesses, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
