/*
 * Unit tests for the MC146818 RTC / CMOS (dev/rtc.c), through ports 0x70 and
 * 0x71 on a port bus. Host-time tests use the real clock and allow for a
 * second tick between reads; the rest use a fake clock to be exact.
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
#include "dev/rtc.h"

#define NS 1000000000ULL

struct ctx {
	struct rtc rtc;
	struct iobus bus;
	uint64_t now_ns;
	int level;
	unsigned irq_sets;
	unsigned kicks;
};

static void fake_irq_set(void *opaque, unsigned gsi, int level)
{
	struct ctx *c = opaque;
	assert_int_equal(gsi, 8);
	c->level = level;
	c->irq_sets++;
}

static void fake_kick(void *opaque)
{
	((struct ctx *)opaque)->kicks++;
}

static uint64_t fake_clock(void *opaque)
{
	return ((struct ctx *)opaque)->now_ns;
}

static int setup(void **state)
{
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	struct rtc_config cfg = {
		.ram_below_4g = 3ULL << 30,
		.ram_above_4g = 2ULL << 30,
		.ncpus = 4,
		.kick = fake_kick,
		.kick_opaque = &c,
	};
	struct irq_line irq = { fake_irq_set, &c, 8 };
	assert_int_equal(rtc_init(&c.rtc, &cfg, &irq), 0);
	assert_int_equal(rtc_register(&c.rtc, &c.bus), 0);
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	rtc_destroy(&c->rtc);
	return 0;
}

static uint8_t cmos_in(struct ctx *c, uint8_t index)
{
	uint8_t v = 0;
	assert_true(iobus_write(&c->bus, 0x70, &index, 1));
	assert_true(iobus_read(&c->bus, 0x71, &v, 1));
	return v;
}

static void cmos_out(struct ctx *c, uint8_t index, uint8_t v)
{
	assert_true(iobus_write(&c->bus, 0x70, &index, 1));
	assert_true(iobus_write(&c->bus, 0x71, &v, 1));
}

static unsigned bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0x0F);
}

static unsigned dec(bool binary, uint8_t v)
{
	return binary ? v : bcd(v);
}

static uint8_t to_bcd(unsigned v)
{
	return (uint8_t)((v / 10) << 4 | v % 10);
}

/* Reads the clock like Linux's mc146818_get_time(); returns UTC seconds. */
static time_t read_clock(struct ctx *c, struct tm *tm)
{
	uint8_t b = cmos_in(c, RTC_REG_B);
	bool binary = b & RTC_B_DM;
	uint8_t r[10] = { 0 }, cent = 0;
	bool ok = false;

	for (int tries = 0; tries < 100000 && !ok; tries++) {
		if (cmos_in(c, RTC_REG_A) & RTC_A_UIP)
			continue;
		for (int i = 0; i < 10; i++)
			r[i] = cmos_in(c, (uint8_t)i);
		cent = cmos_in(c, RTC_CENTURY);
		ok = !(cmos_in(c, RTC_REG_A) & RTC_A_UIP) &&
		     r[0] == cmos_in(c, RTC_SECONDS);
	}
	assert_true(ok);
#define DEC(x) dec(binary, (x))
	memset(tm, 0, sizeof(*tm));
	tm->tm_sec = (int)DEC(r[RTC_SECONDS]);
	tm->tm_min = (int)DEC(r[RTC_MINUTES]);
	uint8_t h = r[RTC_HOURS];
	if (b & RTC_B_24H) {
		tm->tm_hour = (int)DEC(h);
	} else {
		unsigned h12 = DEC(h & 0x7F);
		tm->tm_hour = (int)(h12 % 12 + ((h & 0x80) ? 12 : 0));
	}
	tm->tm_mday = (int)DEC(r[RTC_DAY_OF_MONTH]);
	tm->tm_mon = (int)DEC(r[RTC_MONTH]) - 1;
	tm->tm_year = (int)(DEC(cent) * 100 + DEC(r[RTC_YEAR])) - 1900;
	unsigned dow = r[RTC_DAY_OF_WEEK];
#undef DEC
	struct tm copy = *tm;
	time_t t = timegm(&copy);
	assert_int_equal(dow, (unsigned)copy.tm_wday + 1); /* 1 = Sunday */
	return t;
}

static void check_host_time(struct ctx *c)
{
	struct tm tm;
	/* Not time(): glibc's reads the coarse clock, up to a tick behind the RTC's. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t before = ts.tv_sec;
	time_t t = read_clock(c, &tm);
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t after = ts.tv_sec;
	assert_true(t >= before);
	assert_true(t <= after);
}

static void test_host_time_bcd(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(cmos_in(c, RTC_REG_B), RTC_B_24H); /* BCD, 24-hour */
	check_host_time(c);
	/* Register values are BCD: no nibble above 9. */
	for (uint8_t i = 0; i < 10; i += 2)
		if (i != RTC_DAY_OF_WEEK) {
			uint8_t v = cmos_in(c, i);
			assert_true((v & 0x0F) <= 9 && (v >> 4) <= 9);
		}
}

static void test_host_time_binary_12h(void **state)
{
	struct ctx *c = *state;
	cmos_out(c, RTC_REG_B, RTC_B_DM | RTC_B_24H);
	check_host_time(c);
	cmos_out(c, RTC_REG_B, RTC_B_DM);
	check_host_time(c);
	cmos_out(c, RTC_REG_B, 0); /* BCD, 12-hour */
	check_host_time(c);
}

/* Sets the time as Linux's mc146818_set_time() does. */
static void linux_set_time(struct ctx *c, unsigned year, unsigned mon,
			   unsigned day, unsigned h, unsigned m, unsigned s)
{
	uint8_t b = cmos_in(c, RTC_REG_B), a = cmos_in(c, RTC_REG_A);
	cmos_out(c, RTC_REG_B, b | RTC_B_SET);
	cmos_out(c, RTC_REG_A, a | 0x70); /* RTC_DIV_RESET2 */
	cmos_out(c, RTC_YEAR, to_bcd(year % 100));
	cmos_out(c, RTC_MONTH, to_bcd(mon));
	cmos_out(c, RTC_DAY_OF_MONTH, to_bcd(day));
	cmos_out(c, RTC_HOURS, to_bcd(h));
	cmos_out(c, RTC_MINUTES, to_bcd(m));
	cmos_out(c, RTC_SECONDS, to_bcd(s));
	cmos_out(c, RTC_CENTURY, to_bcd(year / 100));
	cmos_out(c, RTC_REG_B, b);
	cmos_out(c, RTC_REG_A, a);
}

static void test_set_time_real_clock(void **state)
{
	struct ctx *c = *state;
	struct tm tm;

	linux_set_time(c, 2001, 2, 3, 4, 5, 6);
	time_t t = read_clock(c, &tm);
	/* 2001-02-03 04:05:06 UTC; the first update comes 0.5 s later. */
	assert_true(t == 981173106 || t == 981173107);
	assert_int_equal(tm.tm_year, 101);
}

static void test_set_time_fake_clock(void **state)
{
	struct ctx *c = *state;
	struct tm tm;

	c->now_ns = 1700000000ULL * NS + 250000000ULL;
	rtc_set_clock(&c->rtc, fake_clock, c);
	assert_int_equal(read_clock(c, &tm), 1700000000);

	/* While SET is on the registers hold still and take writes. */
	cmos_out(c, RTC_REG_B, RTC_B_24H | RTC_B_SET);
	cmos_out(c, RTC_HOURS, 0x23);
	c->now_ns += 5 * NS;
	assert_int_equal(cmos_in(c, RTC_HOURS), 0x23);
	uint8_t sec = cmos_in(c, RTC_SECONDS);
	c->now_ns += 3 * NS;
	assert_int_equal(cmos_in(c, RTC_SECONDS), sec);
	assert_int_equal(cmos_in(c, RTC_REG_A) & RTC_A_UIP, 0);
	cmos_out(c, RTC_REG_B, RTC_B_24H);

	linux_set_time(c, 2099, 12, 31, 23, 59, 58);
	assert_int_equal(read_clock(c, &tm), 4102444798);
	c->now_ns += NS / 2 - 1; /* first update 0.5 s after the divider runs */
	assert_int_equal(cmos_in(c, RTC_SECONDS), 0x58);
	c->now_ns += 1;
	assert_int_equal(cmos_in(c, RTC_SECONDS), 0x59);
	c->now_ns += 2 * NS; /* into the next century */
	assert_int_equal(read_clock(c, &tm), 4102444801);
	assert_int_equal(cmos_in(c, RTC_CENTURY), 0x21);
	assert_int_equal(cmos_in(c, RTC_YEAR), 0x00);

	/* A write to a running clock sets that field at once. */
	cmos_out(c, RTC_MINUTES, 0x30);
	assert_int_equal(cmos_in(c, RTC_MINUTES), 0x30);
	assert_int_equal(cmos_in(c, RTC_CENTURY), 0x21);
}

static void test_12h_mode(void **state)
{
	struct ctx *c = *state;

	c->now_ns = 1000000000ULL * NS; /* 2001-09-09 01:46:40 UTC */
	rtc_set_clock(&c->rtc, fake_clock, c);
	cmos_out(c, RTC_REG_B, 0);
	assert_int_equal(cmos_in(c, RTC_HOURS), 0x01);
	c->now_ns += 11 * 3600 * NS; /* 12:46 PM */
	assert_int_equal(cmos_in(c, RTC_HOURS), 0x80 | 0x12);
	c->now_ns += 1 * 3600 * NS;  /* 1:46 PM */
	assert_int_equal(cmos_in(c, RTC_HOURS), 0x80 | 0x01);
	c->now_ns += 11 * 3600 * NS; /* 12:46 AM */
	assert_int_equal(cmos_in(c, RTC_HOURS), 0x12);

	/* Setting 12 PM in 12-hour mode means noon. */
	cmos_out(c, RTC_REG_B, RTC_B_SET);
	cmos_out(c, RTC_HOURS, 0x80 | 0x12);
	cmos_out(c, RTC_REG_B, 0);
	assert_int_equal(cmos_in(c, RTC_HOURS), 0x80 | 0x12);
	cmos_out(c, RTC_REG_B, RTC_B_24H);
	assert_int_equal(cmos_in(c, RTC_HOURS), 0x12);
	/* And 12 AM is midnight. */
	cmos_out(c, RTC_REG_B, RTC_B_SET);
	cmos_out(c, RTC_HOURS, 0x12);
	cmos_out(c, RTC_REG_B, 0);
	cmos_out(c, RTC_REG_B, RTC_B_24H);
	assert_int_equal(cmos_in(c, RTC_HOURS), 0x00);
}

static void test_uip(void **state)
{
	struct ctx *c = *state;

	c->now_ns = 1700000000ULL * NS + 500000000ULL;
	rtc_set_clock(&c->rtc, fake_clock, c);
	assert_int_equal(cmos_in(c, RTC_REG_A), 0x26);
	c->now_ns = 1700000001ULL * NS - 244000; /* within 244 us of the update */
	assert_int_equal(cmos_in(c, RTC_REG_A), 0x26 | RTC_A_UIP);
	assert_int_equal(cmos_in(c, RTC_SECONDS), 0x20); /* not updated yet */
	c->now_ns = 1700000001ULL * NS;          /* update done */
	assert_int_equal(cmos_in(c, RTC_REG_A), 0x26);
	assert_int_equal(cmos_in(c, RTC_SECONDS), 0x21);
	c->now_ns = 1700000001ULL * NS - 250000; /* 250 us before: clear */
	assert_int_equal(cmos_in(c, RTC_REG_A), 0x26);
	/* Writes cannot set UIP. */
	cmos_out(c, RTC_REG_A, 0xA6);
	assert_int_equal(cmos_in(c, RTC_REG_A), 0x26);
}

static void test_nmi_mask_and_index(void **state)
{
	struct ctx *c = *state;

	/* Bit 7 of the index port masks NMI; it is not part of the index. */
	assert_int_equal(cmos_in(c, 0x80 | RTC_REG_D), RTC_D_VRT);
	cmos_out(c, 0x80 | 0x40, 0x5A);
	assert_int_equal(cmos_in(c, 0x40), 0x5A);
	assert_true(c->rtc.nmi_masked == false);
	cmos_out(c, 0xFF, 0x33); /* index 0x7F */
	assert_int_equal(cmos_in(c, 0x7F), 0x33);
	assert_true(c->rtc.nmi_masked == false);
	uint8_t idx = 0x80 | 0x10;
	assert_true(iobus_write(&c->bus, 0x70, &idx, 1));
	assert_true(c->rtc.nmi_masked);
	/* Direct access masks out-of-range indexes as well. */
	assert_int_equal(rtc_cmos_read(&c->rtc, 0x17F), 0x33);
	rtc_cmos_write(&c->rtc, 0x1C0, 0x77);
	assert_int_equal(cmos_in(c, 0x40), 0x77);
	/* Register D is read-only, C too. */
	cmos_out(c, RTC_REG_D, 0);
	assert_int_equal(cmos_in(c, RTC_REG_D), RTC_D_VRT);
}

static void test_cmos_memory(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(cmos_in(c, 0x15) | cmos_in(c, 0x16) << 8, 640);
	assert_int_equal(cmos_in(c, 0x17) | cmos_in(c, 0x18) << 8, 0xFFFF);
	assert_int_equal(cmos_in(c, 0x30) | cmos_in(c, 0x31) << 8, 0xFFFF);
	/* (3 GiB - 16 MiB) / 64 KiB */
	assert_int_equal(cmos_in(c, 0x34) | cmos_in(c, 0x35) << 8, 0xBF00);
	/* 2 GiB / 64 KiB */
	assert_int_equal(cmos_in(c, 0x5B) | cmos_in(c, 0x5C) << 8 |
			 cmos_in(c, 0x5D) << 16, 0x8000);
	assert_int_equal(cmos_in(c, 0x5F), 3);
	assert_int_equal(cmos_in(c, RTC_REG_A), 0x26);
	assert_int_equal(cmos_in(c, RTC_REG_B), 0x02);
	/*
	 * No interrupt is enabled, so no IRQF; PF, AF and UF follow the clock
	 * whatever the enables (PF every ~1 ms at A's rate 6), so not checked.
	 */
	assert_int_equal(cmos_in(c, RTC_REG_C) & (RTC_C_IRQF | 0x0F), 0);

	/* Small guests: the 16 MiB and 4 GiB fields are zero. */
	struct rtc r;
	struct rtc_config cfg = { .ram_below_4g = 8ULL << 20 };
	assert_int_equal(rtc_init(&r, &cfg, NULL), 0);
	assert_int_equal(rtc_cmos_read(&r, 0x17) | rtc_cmos_read(&r, 0x18) << 8,
			 7 * 1024);
	assert_int_equal(rtc_cmos_read(&r, 0x34) | rtc_cmos_read(&r, 0x35), 0);
	assert_int_equal(rtc_cmos_read(&r, 0x5B), 0);
	rtc_destroy(&r);
}

static void test_interrupt_flags(void **state)
{
	struct ctx *c = *state;

	c->now_ns = 1700000000ULL * NS + 500000000ULL; /* hh:mm:20.5 */
	rtc_set_clock(&c->rtc, fake_clock, c);
	assert_int_equal(cmos_in(c, RTC_SECONDS), 0x20);
	assert_int_equal(rtc_next_event_ns(&c->rtc), -1); /* nothing enabled */
	/* PF is set at the periodic rate whatever PIE says. */
	c->now_ns += 1000000;
	assert_int_equal(cmos_in(c, RTC_REG_C), RTC_C_PF);
	c->now_ns -= 1000000;
	rtc_set_clock(&c->rtc, fake_clock, c);
	cmos_out(c, RTC_REG_A, 0x20); /* periodic rate off for now */

	/* Update-ended: the flag appears once a second boundary passes. */
	cmos_out(c, RTC_REG_B, RTC_B_24H | RTC_B_UIE);
	assert_int_equal(rtc_next_event_ns(&c->rtc), 500000000);
	c->now_ns += 400000000;
	rtc_service(&c->rtc);
	assert_int_equal(c->level, 0);
	c->now_ns += 100000000;
	rtc_service(&c->rtc);
	assert_int_equal(c->level, 1);
	assert_int_equal(rtc_next_event_ns(&c->rtc), -1); /* until C is read */
	unsigned kicks = c->kicks;
	assert_int_equal(cmos_in(c, RTC_REG_C), RTC_C_IRQF | RTC_C_UF);
	assert_int_equal(c->level, 0);
	assert_true(c->kicks > kicks);
	assert_int_equal(cmos_in(c, RTC_REG_C), 0);

	/* Alarm at second 25 of any minute and hour. */
	cmos_out(c, RTC_REG_B, RTC_B_24H | RTC_B_AIE);
	cmos_out(c, RTC_SECONDS_ALARM, 0x25);
	cmos_out(c, RTC_MINUTES_ALARM, 0xC0);
	cmos_out(c, RTC_HOURS_ALARM, 0xFF);
	c->now_ns += 3 * NS; /* :24.0 */
	assert_int_equal(cmos_in(c, RTC_REG_C), RTC_C_UF); /* AIE only: no IRQF */
	c->now_ns += NS;     /* :25.0 */
	rtc_service(&c->rtc);
	assert_int_equal(c->level, 1);
	assert_int_equal(cmos_in(c, RTC_REG_C), RTC_C_IRQF | RTC_C_AF | RTC_C_UF);
	/* Over two days without reading C, the alarm still registers. */
	c->now_ns += 2 * 86400 * NS;
	assert_int_equal(cmos_in(c, RTC_REG_C) & RTC_C_AF, RTC_C_AF);
	/* An alarm hour that never comes (hour 0x30) never matches. */
	cmos_out(c, RTC_HOURS_ALARM, 0x30);
	c->now_ns += 2 * 86400 * NS;
	assert_int_equal(cmos_in(c, RTC_REG_C) & RTC_C_AF, 0);

	/* Periodic at 1024 Hz (RS = 6). */
	cmos_out(c, RTC_REG_A, 0x26);
	cmos_out(c, RTC_REG_B, RTC_B_24H | RTC_B_PIE);
	cmos_in(c, RTC_REG_C);
	int64_t d = rtc_next_event_ns(&c->rtc);
	assert_true(d > 0 && d <= 976563);
	c->now_ns += (uint64_t)d - 1;
	assert_int_equal(cmos_in(c, RTC_REG_C), 0);
	c->now_ns += 1;
	assert_int_equal(cmos_in(c, RTC_REG_C), RTC_C_IRQF | RTC_C_PF);
	cmos_out(c, RTC_REG_A, 0x20); /* RS = 0: no periodic */
	assert_int_equal(rtc_next_event_ns(&c->rtc), -1);
	c->now_ns += NS;
	assert_int_equal(cmos_in(c, RTC_REG_C) & RTC_C_PF, 0);

	/* Enabling an interrupt whose flag is already set raises IRQF. */
	cmos_out(c, RTC_REG_B, RTC_B_24H);
	c->now_ns += NS;
	rtc_service(&c->rtc);
	assert_int_equal(c->level, 0);
	cmos_out(c, RTC_REG_B, RTC_B_24H | RTC_B_UIE);
	assert_int_equal(c->level, 1);
	rtc_reset(&c->rtc);
	assert_int_equal(c->level, 0);
	assert_int_equal(cmos_in(c, RTC_REG_B), RTC_B_24H);
}

static void test_garbage_time(void **state)
{
	struct ctx *c = *state;
	struct tm tm;

	c->now_ns = 1700000000ULL * NS; /* whole second: no tick below */
	rtc_set_clock(&c->rtc, fake_clock, c);
	cmos_out(c, RTC_REG_B, RTC_B_24H | RTC_B_SET);
	for (uint8_t i = 0; i < 10; i++)
		cmos_out(c, i, 0xFF);
	cmos_out(c, RTC_CENTURY, 0xFF);
	cmos_out(c, RTC_REG_B, RTC_B_24H);
	/* Clamped to 9999-12-31 23:59:59. */
	read_clock(c, &tm);
	assert_int_equal(tm.tm_year + 1900, 9999);
	assert_int_equal(tm.tm_mon, 11);
	assert_int_equal(tm.tm_mday, 31);
	assert_int_equal(tm.tm_hour, 23);
	assert_int_equal(tm.tm_sec, 59);

	cmos_out(c, RTC_REG_B, RTC_B_24H | RTC_B_DM | RTC_B_SET);
	for (uint8_t i = 0; i < 10; i++)
		cmos_out(c, i, 0);
	cmos_out(c, RTC_CENTURY, 0);
	cmos_out(c, RTC_REG_B, RTC_B_24H | RTC_B_DM);
	read_clock(c, &tm);
	assert_int_equal(tm.tm_year + 1900, 0); /* year 0000-01-01 */
	assert_int_equal(tm.tm_mon, 0);
	assert_int_equal(tm.tm_mday, 1);
}

static void test_odd_accesses(void **state)
{
	struct ctx *c = *state;
	const struct io_range *r = &c->bus.ranges[0];
	uint8_t data[8];

	assert_int_equal(r->base, 0x70);
	assert_int_equal(r->len, 2);
	/* A word write to 0x70 is index then data, as two byte cycles. */
	uint16_t w = 0x40 | 0x66 << 8;
	assert_true(iobus_write(&c->bus, 0x70, &w, 2));
	assert_int_equal(cmos_in(c, 0x40), 0x66);
	w = 0x40;
	assert_true(iobus_write(&c->bus, 0x70, &w, 1));
	assert_true(iobus_read(&c->bus, 0x70, &w, 2));
	assert_int_equal(w, 0xFF | 0x66 << 8);

	r->ops->read(r->opaque, 0, data, 4);
	assert_int_equal(data[0], 0xFF);
	r->ops->write(r->opaque, 1, data, 2);
	r->ops->read(r->opaque, 2, data, 1);
	r->ops->write(r->opaque, UINT64_MAX, data, 1);
	r->ops->read(r->opaque, 1, data, 0);
	assert_int_equal(cmos_in(c, 0x40), 0x66);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_time_bcd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_time_binary_12h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_time_real_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_time_fake_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_12h_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nmi_mask_and_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmos_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_accesses, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
