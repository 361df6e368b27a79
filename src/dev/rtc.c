/*
 * MC146818A RTC and PC CMOS RAM (MC146818A datasheet: registers A-D, the
 * update cycle, alarm "don't care" codes, divider and periodic rates). Time
 * is host CLOCK_REALTIME plus a signed offset kept as seconds and
 * nanoseconds, so guests may set any year 0-9999 without overflow. Dates
 * use Howard Hinnant's days-from-civil algorithms, independent of the host
 * time zone. Register C is brought up to date lazily from the guest time of
 * the previous evaluation, so no timer is needed for correct flags.
 */
#include "dev/rtc.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/iobus.h"
#include "core/log.h"

#define NSEC 1000000000LL
#define SEC_PER_DAY 86400
/* UIP is set this long before each update: 8 cycles of 32768 Hz. */
#define RTC_UIP_NS (8 * NSEC / 32768)
/* Periodic rates are counted in 32768 Hz ticks of the divider. */
#define RTC_TICK_HZ 32768

static bool rtc_is_clock_reg(unsigned idx)
{
	switch (idx) {
	case RTC_SECONDS: case RTC_MINUTES: case RTC_HOURS:
	case RTC_DAY_OF_WEEK: case RTC_DAY_OF_MONTH: case RTC_MONTH:
	case RTC_YEAR: case RTC_CENTURY:
		return true;
	default:
		return false;
	}
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void rtc_host_now(const struct rtc *rtc, int64_t *sec, int64_t *nsec)
{
	if (rtc->clock_ns) {
		uint64_t ns = rtc->clock_ns(rtc->clock_opaque);
		*sec = (int64_t)(ns / NSEC);
		*nsec = (int64_t)(ns % NSEC);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = ts.tv_sec;
	*nsec = ts.tv_nsec;
}

static void rtc_guest_now(const struct rtc *rtc, int64_t *sec, int64_t *nsec)
{
	int64_t s, ns;
	rtc_host_now(rtc, &s, &ns);
	ns += rtc->off_nsec;
	s += rtc->off_sec + ns / NSEC;
	*sec = s;
	*nsec = ns % NSEC;
}

/* Makes the guest clock read sec.nsec now; restarts flag evaluation. */
static void rtc_set_guest_time(struct rtc *rtc, int64_t sec, int64_t nsec)
{
	int64_t hs, hns;
	rtc_host_now(rtc, &hs, &hns);
	int64_t ons = nsec - hns;
	int64_t os = sec - hs;
	if (ons < 0) {
		ons += NSEC;
		os--;
	}
	rtc->off_sec = os;
	rtc->off_nsec = ons;
	rtc->last_sec = sec;
	rtc->last_nsec = nsec;
}

static bool rtc_binary(const struct rtc *rtc)
{
	return rtc->cmos[RTC_REG_B] & RTC_B_DM;
}

static uint8_t rtc_to_reg(const struct rtc *rtc, unsigned v)
{
	v %= 100;
	return rtc_binary(rtc) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

/* Garbage BCD decodes to an out-of-range value the caller clamps. */
static unsigned rtc_from_reg(const struct rtc *rtc, uint8_t raw)
{
	return rtc_binary(rtc) ? raw : (unsigned)(raw >> 4) * 10 + (raw & 0x0F);
}

static uint8_t rtc_hour_to_reg(const struct rtc *rtc, unsigned h)
{
	if (rtc->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_to_reg(rtc, h);
	unsigned h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(rtc_to_reg(rtc, h12) | (h >= 12 ? 0x80 : 0));
}

static unsigned rtc_hour_from_reg(const struct rtc *rtc, uint8_t raw)
{
	if (rtc->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_from_reg(rtc, raw);
	unsigned h = rtc_from_reg(rtc, raw & 0x7F);
	if (h == 12)
		h = 0;
	return (raw & 0x80) ? h + 12 : h;
}

static unsigned clamp(unsigned v, unsigned lo, unsigned hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Writes the clock registers for guest time sec into cmos[]. */
static void rtc_fill_clock(struct rtc *rtc, int64_t sec)
{
	int64_t days = floor_div(sec, SEC_PER_DAY);
	unsigned tod = (unsigned)(sec - days * SEC_PER_DAY);
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	if (y < 0)
		y = 0;
	rtc->cmos[RTC_SECONDS] = rtc_to_reg(rtc, tod % 60);
	rtc->cmos[RTC_MINUTES] = rtc_to_reg(rtc, tod / 60 % 60);
	rtc->cmos[RTC_HOURS] = rtc_hour_to_reg(rtc, tod / 3600);
	/* 1970-01-01 was a Thursday; the register counts Sunday as 1. */
	rtc->cmos[RTC_DAY_OF_WEEK] =
		(uint8_t)((days % 7 + 7 + 4) % 7 + 1);
	rtc->cmos[RTC_DAY_OF_MONTH] = rtc_to_reg(rtc, d);
	rtc->cmos[RTC_MONTH] = rtc_to_reg(rtc, m);
	rtc->cmos[RTC_YEAR] = rtc_to_reg(rtc, (unsigned)(y % 100));
	rtc->cmos[RTC_CENTURY] = rtc_to_reg(rtc, (unsigned)(y / 100 % 100));
}

/* The guest time the clock registers in cmos[] say (values clamped). */
static int64_t rtc_decode_clock(const struct rtc *rtc)
{
	const uint8_t *c = rtc->cmos;
	unsigned s = clamp(rtc_from_reg(rtc, c[RTC_SECONDS]), 0, 59);
	unsigned mi = clamp(rtc_from_reg(rtc, c[RTC_MINUTES]), 0, 59);
	unsigned h = clamp(rtc_hour_from_reg(rtc, c[RTC_HOURS]), 0, 23);
	unsigned d = clamp(rtc_from_reg(rtc, c[RTC_DAY_OF_MONTH]), 1, 31);
	unsigned mo = clamp(rtc_from_reg(rtc, c[RTC_MONTH]), 1, 12);
	unsigned y = clamp(rtc_from_reg(rtc, c[RTC_YEAR]), 0, 99);
	unsigned cy = clamp(rtc_from_reg(rtc, c[RTC_CENTURY]), 0, 99);

	/* A day past the month's end rolls into the next month. */
	return days_from_civil((int64_t)cy * 100 + y, mo, d) * SEC_PER_DAY +
	       (int64_t)h * 3600 + mi * 60 + s;
}

/* Divider running at a normal rate (0x00-0x20 as on QEMU's model). */
static bool rtc_divider_running(const struct rtc *rtc)
{
	return (rtc->cmos[RTC_REG_A] & RTC_A_DV_MASK) <= RTC_A_DV_32KHZ;
}

/* Periodic interrupt period in 32 kHz ticks, 0 when off (RS = 0). */
static unsigned rtc_period_ticks(const struct rtc *rtc)
{
	unsigned rs = rtc->cmos[RTC_REG_A] & RTC_A_RS_MASK;
	if (!rs)
		return 0;
	if (rs <= 2) /* 256 Hz and 128 Hz with a 32.768 kHz time base */
		return 1u << (rs + 6);
	return 1u << (rs - 1);
}

static bool rtc_alarm_matches(const struct rtc *rtc, int64_t sec)
{
	unsigned tod = (unsigned)(sec - floor_div(sec, SEC_PER_DAY) * SEC_PER_DAY);
	const uint8_t now[3] = {
		rtc_to_reg(rtc, tod % 60),
		rtc_to_reg(rtc, tod / 60 % 60),
		rtc_hour_to_reg(rtc, tod / 3600),
	};
	const uint8_t alarm[3] = {
		rtc->cmos[RTC_SECONDS_ALARM],
		rtc->cmos[RTC_MINUTES_ALARM],
		rtc->cmos[RTC_HOURS_ALARM],
	};
	for (int i = 0; i < 3; i++)
		if ((alarm[i] & RTC_ALARM_DONT_CARE) != RTC_ALARM_DONT_CARE &&
		    alarm[i] != now[i])
			return false;
	return true;
}

static void rtc_update_irq(struct rtc *rtc)
{
	uint8_t c = rtc->cmos[RTC_REG_C];
	uint8_t en = rtc->cmos[RTC_REG_B] & (RTC_B_PIE | RTC_B_AIE | RTC_B_UIE);
	/* The enable bits in B line up with the flags in C. */
	if (c & en & (RTC_C_PF | RTC_C_AF | RTC_C_UF))
		c |= RTC_C_IRQF;
	rtc->cmos[RTC_REG_C] = c;
	bool level = c & RTC_C_IRQF;
	if (level != rtc->irq_level) {
		rtc->irq_level = level;
		irq_line_set(&rtc->irq, level);
	}
}

/* Sets the register C flags for what happened since the last evaluation. */
static void rtc_eval(struct rtc *rtc)
{
	int64_t sec, nsec, lsec = rtc->last_sec, lnsec = rtc->last_nsec;

	rtc_guest_now(rtc, &sec, &nsec);
	rtc->last_sec = sec;
	rtc->last_nsec = nsec;
	if (sec < lsec || (sec == lsec && nsec <= lnsec))
		return; /* host clock stepped back: nothing happened */
	if (!rtc_divider_running(rtc))
		return;

	unsigned p = rtc_period_ticks(rtc);
	if (p) {
		/* p divides 32768, so period boundaries align to seconds. */
		int64_t t0 = lsec * RTC_TICK_HZ + lnsec * RTC_TICK_HZ / NSEC;
		int64_t t1 = sec * RTC_TICK_HZ + nsec * RTC_TICK_HZ / NSEC;
		if (floor_div(t0, p) != floor_div(t1, p))
			rtc->cmos[RTC_REG_C] |= RTC_C_PF;
	}
	if (!rtc->stopped && sec != lsec) {
		rtc->cmos[RTC_REG_C] |= RTC_C_UF;
		/* Every alarm pattern recurs daily: one day of updates covers it. */
		int64_t from = sec - lsec > SEC_PER_DAY ? sec - SEC_PER_DAY + 1
							: lsec + 1;
		for (int64_t s = from; s <= sec; s++) {
			if (rtc_alarm_matches(rtc, s)) {
				rtc->cmos[RTC_REG_C] |= RTC_C_AF;
				break;
			}
		}
	}
	rtc_update_irq(rtc);
}

/*
 * After a change to register A or B: freeze the clock registers when
 * updates stop, and turn what the guest wrote into the new time when they
 * restart.
 */
static void rtc_update_stopped(struct rtc *rtc)
{
	bool stop = (rtc->cmos[RTC_REG_B] & RTC_B_SET) || !rtc_divider_running(rtc);
	int64_t sec, nsec;

	if (!rtc_divider_running(rtc))
		rtc->div_was_reset = true;
	if (stop == rtc->stopped)
		return;
	rtc_guest_now(rtc, &sec, &nsec);
	if (stop) {
		rtc_fill_clock(rtc, sec);
		rtc->stopped = true;
		return;
	}
	/*
	 * With only SET the divider kept counting, so the phase carries on;
	 * after a divider reset the first update comes half a second later.
	 */
	rtc_set_guest_time(rtc, rtc_decode_clock(rtc),
			   rtc->div_was_reset ? NSEC / 2 : nsec);
	rtc->stopped = false;
	rtc->div_was_reset = false;
}

static uint8_t rtc_read_locked(struct rtc *rtc, unsigned idx)
{
	int64_t sec, nsec;

	if (rtc_is_clock_reg(idx)) {
		if (!rtc->stopped) {
			rtc_guest_now(rtc, &sec, &nsec);
			rtc_fill_clock(rtc, sec);
		}
		return rtc->cmos[idx];
	}
	switch (idx) {
	case RTC_REG_A: {
		uint8_t a = rtc->cmos[RTC_REG_A] & (uint8_t)~RTC_A_UIP;
		if (!rtc->stopped) {
			rtc_guest_now(rtc, &sec, &nsec);
			if (nsec >= NSEC - RTC_UIP_NS)
				a |= RTC_A_UIP;
		}
		return a;
	}
	case RTC_REG_C: {
		rtc_eval(rtc);
		uint8_t c = rtc->cmos[RTC_REG_C];
		rtc->cmos[RTC_REG_C] = 0;
		rtc_update_irq(rtc);
		return c;
	}
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return rtc->cmos[idx];
	}
}

/* Returns true when the next-event time may have changed. */
static bool rtc_write_locked(struct rtc *rtc, unsigned idx, uint8_t val)
{
	int64_t sec, nsec;

	if (rtc_is_clock_reg(idx)) {
		if (rtc->stopped) {
			rtc->cmos[idx] = val;
			return false;
		}
		/* Writing a running clock sets the time at once (as QEMU). */
		rtc_eval(rtc);
		rtc_guest_now(rtc, &sec, &nsec);
		rtc_fill_clock(rtc, sec);
		rtc->cmos[idx] = val;
		rtc_set_guest_time(rtc, rtc_decode_clock(rtc), nsec);
		return true;
	}
	switch (idx) {
	case RTC_REG_A:
		rtc_eval(rtc); /* account for elapsed time at the old rate */
		rtc->cmos[RTC_REG_A] = val & (uint8_t)~RTC_A_UIP;
		rtc_update_stopped(rtc);
		return true;
	case RTC_REG_B:
		rtc_eval(rtc);
		if (val & RTC_B_SET)
			val &= (uint8_t)~RTC_B_UIE; /* datasheet: SET clears UIE */
		rtc->cmos[RTC_REG_B] = val;
		rtc_update_stopped(rtc);
		rtc_update_irq(rtc);
		return true;
	case RTC_REG_C:
	case RTC_REG_D:
		return false; /* read-only */
	default:
		rtc->cmos[idx] = val;
		return false;
	}
}

uint8_t rtc_cmos_read(struct rtc *rtc, unsigned index)
{
	unsigned idx = index & (RTC_CMOS_SIZE - 1);
	pthread_mutex_lock(&rtc->lock);
	uint8_t v = rtc_read_locked(rtc, idx);
	pthread_mutex_unlock(&rtc->lock);
	/* Reading C acknowledges IRQF: interrupts may be due again. */
	if (idx == RTC_REG_C && rtc->kick)
		rtc->kick(rtc->kick_opaque);
	return v;
}

void rtc_cmos_write(struct rtc *rtc, unsigned index, uint8_t val)
{
	unsigned idx = index & (RTC_CMOS_SIZE - 1);
	pthread_mutex_lock(&rtc->lock);
	bool kick = rtc_write_locked(rtc, idx, val);
	pthread_mutex_unlock(&rtc->lock);
	if (kick && rtc->kick)
		rtc->kick(rtc->kick_opaque);
}

int64_t rtc_next_event_ns(struct rtc *rtc)
{
	int64_t sec, nsec, best = -1;

	pthread_mutex_lock(&rtc->lock);
	rtc_eval(rtc);
	uint8_t b = rtc->cmos[RTC_REG_B];
	if ((rtc->cmos[RTC_REG_C] & RTC_C_IRQF) || !rtc_divider_running(rtc))
		goto out;
	rtc_guest_now(rtc, &sec, &nsec);
	unsigned p = rtc_period_ticks(rtc);
	if ((b & RTC_B_PIE) && p) {
		int64_t t = nsec * RTC_TICK_HZ / NSEC;
		int64_t next = (t / p + 1) * p; /* <= 32768 */
		int64_t at = (next * NSEC + RTC_TICK_HZ - 1) / RTC_TICK_HZ;
		best = at - nsec;
	}
	if ((b & (RTC_B_UIE | RTC_B_AIE)) && !rtc->stopped &&
	    (best < 0 || NSEC - nsec < best))
		best = NSEC - nsec;
out:
	pthread_mutex_unlock(&rtc->lock);
	return best;
}

void rtc_service(struct rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	rtc_eval(rtc);
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_io_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct rtc *rtc = opaque;
	uint8_t *d = data;

	if (off >= 2 || size > 2 - off) {
		log_guest("rtc: bad read at +%llu size %u",
			  (unsigned long long)off, size);
		memset(data, 0xff, size);
		return;
	}
	/* A wide access touches the index and data ports in turn. */
	for (unsigned i = 0; i < size; i++) {
		if (off + i == 0) {
			d[i] = 0xff; /* the index port is write-only */
			continue;
		}
		pthread_mutex_lock(&rtc->lock);
		unsigned idx = rtc->index;
		d[i] = rtc_read_locked(rtc, idx);
		pthread_mutex_unlock(&rtc->lock);
		if (idx == RTC_REG_C && rtc->kick)
			rtc->kick(rtc->kick_opaque);
	}
}

static void rtc_io_write(void *opaque, uint64_t off, const void *data,
			 unsigned size)
{
	struct rtc *rtc = opaque;
	const uint8_t *d = data;

	if (off >= 2 || size > 2 - off) {
		log_guest("rtc: bad write at +%llu size %u",
			  (unsigned long long)off, size);
		return;
	}
	for (unsigned i = 0; i < size; i++) {
		bool kick = false;
		pthread_mutex_lock(&rtc->lock);
		if (off + i == 0) {
			/* Bit 7 masks NMI on a PC; the index is 7 bits. */
			rtc->index = d[i] & (RTC_CMOS_SIZE - 1);
			rtc->nmi_masked = d[i] & 0x80;
		} else {
			kick = rtc_write_locked(rtc, rtc->index, d[i]);
		}
		pthread_mutex_unlock(&rtc->lock);
		if (kick && rtc->kick)
			rtc->kick(rtc->kick_opaque);
	}
}

static const struct io_ops rtc_io_ops = {
	.read = rtc_io_read,
	.write = rtc_io_write,
};

int rtc_register(struct rtc *rtc, struct iobus *pio)
{
	return iobus_register(pio, RTC_PORT_INDEX, 2, &rtc_io_ops, rtc, "rtc");
}

/* v capped at max, little-endian, in as many bytes as max needs. */
static void rtc_put_le(struct rtc *rtc, unsigned idx, uint64_t v, uint64_t max)
{
	if (v > max)
		v = max;
	for (unsigned i = 0; max >> (8 * i); i++)
		rtc->cmos[idx + i] = (uint8_t)(v >> (8 * i));
}

static void rtc_init_cmos(struct rtc *rtc, const struct rtc_config *cfg)
{
	const uint64_t kib = 1024, mib = 1024 * 1024;
	uint64_t low = cfg ? cfg->ram_below_4g : 0;
	uint64_t high = cfg ? cfg->ram_above_4g : 0;

	rtc_put_le(rtc, RTC_CMOS_BASE_MEM, low / kib, 640);
	uint64_t ext = low > mib ? (low - mib) / kib : 0;
	rtc_put_le(rtc, RTC_CMOS_EXT_MEM, ext, 0xFFFF);
	rtc_put_le(rtc, RTC_CMOS_EXT_MEM2, ext, 0xFFFF);
	uint64_t mem16 = low > 16 * mib ? (low - 16 * mib) / (64 * kib) : 0;
	rtc_put_le(rtc, RTC_CMOS_MEM_16M, mem16, 0xFFFF);
	rtc_put_le(rtc, RTC_CMOS_MEM_4G, high / (64 * kib), 0xFFFFFF);
	if (cfg && cfg->ncpus)
		rtc->cmos[RTC_CMOS_NCPUS] = (uint8_t)(cfg->ncpus - 1);
}

int rtc_init(struct rtc *rtc, const struct rtc_config *cfg,
	     const struct irq_line *irq)
{
	int64_t sec, nsec;

	memset(rtc, 0, sizeof(*rtc));
	int r = pthread_mutex_init(&rtc->lock, NULL);
	if (r)
		return -r;
	if (irq)
		rtc->irq = *irq;
	if (cfg) {
		rtc->kick = cfg->kick;
		rtc->kick_opaque = cfg->kick_opaque;
	}
	rtc->cmos[RTC_REG_A] = RTC_A_DV_32KHZ | 0x06; /* 1024 Hz */
	rtc->cmos[RTC_REG_B] = RTC_B_24H;
	rtc->cmos[RTC_REG_D] = RTC_D_VRT;
	rtc_init_cmos(rtc, cfg);
	rtc_guest_now(rtc, &sec, &nsec);
	rtc->last_sec = sec;
	rtc->last_nsec = nsec;
	return 0;
}

void rtc_destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}

void rtc_reset(struct rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	rtc->cmos[RTC_REG_B] &=
		(uint8_t)~(RTC_B_PIE | RTC_B_AIE | RTC_B_UIE | RTC_B_SQWE);
	rtc->cmos[RTC_REG_C] = 0;
	rtc_update_irq(rtc);
	pthread_mutex_unlock(&rtc->lock);
	if (rtc->kick)
		rtc->kick(rtc->kick_opaque);
}

void rtc_set_clock(struct rtc *rtc, uint64_t (*clock_ns)(void *opaque),
		   void *opaque)
{
	int64_t sec, nsec;

	pthread_mutex_lock(&rtc->lock);
	rtc->clock_ns = clock_ns;
	rtc->clock_opaque = opaque;
	rtc_host_now(rtc, &sec, &nsec);
	rtc_set_guest_time(rtc, sec, nsec);
	if (rtc->stopped)
		rtc_fill_clock(rtc, sec);
	pthread_mutex_unlock(&rtc->lock);
}
