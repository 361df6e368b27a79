/*
 * ACPI PM1a event/control blocks, PM timer, 0xCF9 reset control and the
 * i8042 reset command (ACPI 6.4 sections 4.8.3.1-4.8.3.3; Intel PIIX4
 * datasheet for 0xCF9; IBM PC/AT keyboard controller for 0x60/0x64). The
 * PM registers are one 12-byte port range decoded byte by byte, so accesses
 * of any width or alignment hit the registers they overlap, as on a real
 * chipset; the timer is derived from the host monotonic clock on access.
 */
#include "dev/pm.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/iobus.h"
#include "core/log.h"

/* Offsets in the PM range. */
#define PM_OFF_STS 0
#define PM_OFF_EN 2
#define PM_OFF_CNT 4
#define PM_OFF_TMR 8

#define PM1_STS_W1C                                                       \
	(PM1_TMR_STS | PM1_BM_STS | PM1_GBL_STS | PM1_PWRBTN_STS |         \
	 PM1_SLPBTN_STS | PM1_RTC_STS | PM1_PCIEXP_WAKE_STS | PM1_WAK_STS)
#define PM1_EN_RW                                                         \
	(PM1_TMR_EN | PM1_GBL_EN | PM1_PWRBTN_EN | PM1_SLPBTN_EN |         \
	 PM1_RTC_EN | PM1_PCIEXP_WAKE_DIS)
/* Status bits whose enable bit (same position) routes them to the SCI. */
#define PM1_SCI_EVENTS                                                    \
	(PM1_TMR_STS | PM1_GBL_STS | PM1_PWRBTN_STS | PM1_SLPBTN_STS |     \
	 PM1_RTC_STS)

static uint64_t pm_now_ns(const struct pm *pm)
{
	struct timespec ts;

	if (pm->clock_ns)
		return pm->clock_ns(pm->clock_opaque);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Timer ticks since init, 64 bits wide (no overflow for 160,000 years). */
static uint64_t pm_ticks(const struct pm *pm)
{
	uint64_t ns = pm_now_ns(pm) - pm->tmr_base_ns;
	return ns / 1000000000ULL * PM_TMR_FREQ +
	       ns % 1000000000ULL * PM_TMR_FREQ / 1000000000ULL;
}

/* Called with the lock held: TMR_STS latches each carry out of bit 31. */
static uint32_t pm_timer_update(struct pm *pm)
{
	uint64_t t = pm_ticks(pm);
	if ((t >> 31) != pm->tmr_carry) {
		pm->tmr_carry = t >> 31;
		pm->pm1_sts |= PM1_TMR_STS;
	}
	return (uint32_t)t;
}

/* Called with the lock held. */
static void pm_update_sci(struct pm *pm)
{
	bool level = (pm->pm1_sts & pm->pm1_en & PM1_SCI_EVENTS) &&
		     (pm->pm1_cnt & PM1_SCI_EN);
	if (level != pm->sci_level) {
		pm->sci_level = level;
		irq_line_set(&pm->sci, level);
	}
}

static void pm_reset_locked(struct pm *pm)
{
	pm->pm1_sts = 0;
	pm->pm1_en = 0;
	/* SMI_CMD is 0 in the FADT: the platform is always in ACPI mode. */
	pm->pm1_cnt = PM1_SCI_EN;
	pm->reset_ctl = 0;
	pm->i8042_want_output = false;
	pm->tmr_carry = pm_ticks(pm) >> 31;
	pm_update_sci(pm);
}

int pm_init(struct pm *pm, const struct irq_line *sci,
	    const struct vm_event_sink *events)
{
	memset(pm, 0, sizeof(*pm));
	int r = pthread_mutex_init(&pm->lock, NULL);
	if (r)
		return -r;
	if (sci)
		pm->sci = *sci;
	if (events)
		pm->events = *events;
	pm->tmr_base_ns = pm_now_ns(pm);
	pm_reset_locked(pm);
	return 0;
}

void pm_destroy(struct pm *pm)
{
	pthread_mutex_destroy(&pm->lock);
}

void pm_reset(struct pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm_reset_locked(pm);
	pthread_mutex_unlock(&pm->lock);
}

void pm_set_clock(struct pm *pm, uint64_t (*clock_ns)(void *opaque),
		  void *opaque)
{
	pthread_mutex_lock(&pm->lock);
	pm->clock_ns = clock_ns;
	pm->clock_opaque = opaque;
	pm->tmr_base_ns = pm_now_ns(pm);
	pm->tmr_carry = 0;
	pthread_mutex_unlock(&pm->lock);
}

uint32_t pm_timer_read(struct pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	uint32_t v = pm_timer_update(pm);
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return v;
}

void pm_power_button(struct pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts |= PM1_PWRBTN_STS;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static bool pm_size_ok(uint64_t off, unsigned size, uint64_t len)
{
	return (size == 1 || size == 2 || size == 4) && off < len &&
	       size <= len - off;
}

static void pm_io_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct pm *pm = opaque;
	uint8_t regs[PM_IO_LEN];

	if (!pm_size_ok(off, size, PM_IO_LEN)) {
		log_guest("pm: bad read at +%#llx size %u",
			  (unsigned long long)off, size);
		memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&pm->lock);
	uint32_t tmr = pm_timer_update(pm);
	pm_update_sci(pm);
	memset(regs, 0xff, sizeof(regs)); /* 6-7: nothing there */
	regs[PM_OFF_STS] = (uint8_t)pm->pm1_sts;
	regs[PM_OFF_STS + 1] = (uint8_t)(pm->pm1_sts >> 8);
	regs[PM_OFF_EN] = (uint8_t)pm->pm1_en;
	regs[PM_OFF_EN + 1] = (uint8_t)(pm->pm1_en >> 8);
	regs[PM_OFF_CNT] = (uint8_t)pm->pm1_cnt;
	regs[PM_OFF_CNT + 1] = (uint8_t)(pm->pm1_cnt >> 8);
	for (int i = 0; i < 4; i++)
		regs[PM_OFF_TMR + i] = (uint8_t)(tmr >> (8 * i));
	pthread_mutex_unlock(&pm->lock);
	memcpy(data, regs + off, size);
}

/* Bytes of a 16-bit register at `reg` covered by this access. */
static uint16_t pm_mask16(const uint8_t *mask, unsigned reg)
{
	return (uint16_t)(mask[reg] | mask[reg + 1] << 8);
}

static uint16_t pm_val16(const uint8_t *val, unsigned reg)
{
	return (uint16_t)(val[reg] | val[reg + 1] << 8);
}

static void pm_io_write(void *opaque, uint64_t off, const void *data,
			unsigned size)
{
	struct pm *pm = opaque;
	uint8_t val[PM_IO_LEN] = { 0 }, mask[PM_IO_LEN] = { 0 };
	bool poweroff = false;
	unsigned slp_typ = 0;

	if (!pm_size_ok(off, size, PM_IO_LEN)) {
		log_guest("pm: bad write at +%#llx size %u",
			  (unsigned long long)off, size);
		return;
	}
	memcpy(val + off, data, size);
	memset(mask + off, 0xff, size);

	pthread_mutex_lock(&pm->lock);
	pm_timer_update(pm);

	uint16_t m = pm_mask16(mask, PM_OFF_STS);
	pm->pm1_sts &= (uint16_t)~(pm_val16(val, PM_OFF_STS) & m & PM1_STS_W1C);

	m = pm_mask16(mask, PM_OFF_EN) & PM1_EN_RW;
	pm->pm1_en = (uint16_t)((pm->pm1_en & ~m) | (pm_val16(val, PM_OFF_EN) & m));

	m = pm_mask16(mask, PM_OFF_CNT);
	if (m) {
		uint16_t v = pm_val16(val, PM_OFF_CNT);
		uint16_t cnt = (uint16_t)((pm->pm1_cnt & ~m) | (v & m));
		/* SLP_EN and GBL_RLS are write-only; SCI_EN is fixed at 1. */
		pm->pm1_cnt = (uint16_t)((cnt & (PM1_BM_RLD | PM1_SLP_TYP_MASK)) |
					 PM1_SCI_EN);
		if (v & m & PM1_SLP_EN) {
			slp_typ = (cnt & PM1_SLP_TYP_MASK) >> PM1_SLP_TYP_SHIFT;
			poweroff = slp_typ == PM_SLP_TYP_S5;
			if (!poweroff)
				log_guest("pm: sleep type %u requested, "
					  "only S5 is supported; ignored",
					  slp_typ);
		}
	}
	/* PM_TMR is read-only: writes to offsets 6-11 are dropped. */
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);

	if (poweroff)
		vm_event_raise(&pm->events, VM_EVENT_POWEROFF);
}

static const struct io_ops pm_io_ops = {
	.read = pm_io_read,
	.write = pm_io_write,
};

void pm_reset_ctl_write(struct pm *pm, uint8_t val)
{
	pthread_mutex_lock(&pm->lock);
	pm->reset_ctl = val & (PM_RST_SYS_RST | PM_RST_FULL_RST);
	pthread_mutex_unlock(&pm->lock);
	/* RST_CPU self-clears; writing it set starts the reset. */
	if (val & PM_RST_RST_CPU)
		vm_event_raise(&pm->events, VM_EVENT_RESET);
}

static void pm_rstc_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct pm *pm = opaque;

	if (off != 0 || size != 1) {
		log_guest("pm: bad reset control read +%llu size %u",
			  (unsigned long long)off, size);
		memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&pm->lock);
	*(uint8_t *)data = pm->reset_ctl;
	pthread_mutex_unlock(&pm->lock);
}

static void pm_rstc_write(void *opaque, uint64_t off, const void *data,
			  unsigned size)
{
	if (off != 0 || size != 1) {
		log_guest("pm: bad reset control write +%llu size %u",
			  (unsigned long long)off, size);
		return;
	}
	pm_reset_ctl_write(opaque, *(const uint8_t *)data);
}

const struct io_ops pm_reset_ops = {
	.read = pm_rstc_read,
	.write = pm_rstc_write,
};

/*
 * i8042: both ports read 0. For the status port that means output buffer
 * empty and input buffer empty, so writers never wait and readers never
 * find data.
 */
static void pm_i8042_read(void *opaque, uint64_t off, void *data,
			  unsigned size)
{
	(void)opaque;
	if (off != 0 || size != 1) {
		log_guest("pm: bad i8042 read +%llu size %u",
			  (unsigned long long)off, size);
		memset(data, 0xff, size);
		return;
	}
	*(uint8_t *)data = 0;
}

static void pm_i8042_data_write(void *opaque, uint64_t off, const void *data,
				unsigned size)
{
	struct pm *pm = opaque;

	if (off != 0 || size != 1) {
		log_guest("pm: bad i8042 data write +%llu size %u",
			  (unsigned long long)off, size);
		return;
	}
	uint8_t v = *(const uint8_t *)data;
	pthread_mutex_lock(&pm->lock);
	bool output = pm->i8042_want_output;
	pm->i8042_want_output = false;
	pthread_mutex_unlock(&pm->lock);
	/* Output port bit 0 drives the CPU reset line, active low. */
	if (output && !(v & 0x01))
		vm_event_raise(&pm->events, VM_EVENT_RESET);
	/* Anything else was for the keyboard, and there is none. */
}

static void pm_i8042_cmd_write(void *opaque, uint64_t off, const void *data,
			       unsigned size)
{
	struct pm *pm = opaque;

	if (off != 0 || size != 1) {
		log_guest("pm: bad i8042 command write +%llu size %u",
			  (unsigned long long)off, size);
		return;
	}
	uint8_t cmd = *(const uint8_t *)data;
	pthread_mutex_lock(&pm->lock);
	pm->i8042_want_output = cmd == PM_I8042_CMD_WRITE_OUTPUT;
	pthread_mutex_unlock(&pm->lock);
	/*
	 * 0xF0-0xFF pulse the output port bits whose command bit is clear;
	 * bit 0 is the reset line (0xFE is the usual reboot command).
	 */
	if (cmd >= 0xF0 && !(cmd & 0x01))
		vm_event_raise(&pm->events, VM_EVENT_RESET);
}

static const struct io_ops pm_i8042_data_ops = {
	.read = pm_i8042_read,
	.write = pm_i8042_data_write,
};

static const struct io_ops pm_i8042_cmd_ops = {
	.read = pm_i8042_read,
	.write = pm_i8042_cmd_write,
};

static int register_ports(struct pm *pm, struct iobus *pio, bool reset_port)
{
	int r = iobus_register(pio, PM_IO_BASE, PM_IO_LEN, &pm_io_ops, pm,
			       "acpi-pm");
	if (!r && reset_port)
		r = iobus_register(pio, PM_RESET_PORT, 1, &pm_reset_ops, pm,
				   "reset-control");
	if (!r)
		r = iobus_register(pio, PM_I8042_DATA_PORT, 1,
				   &pm_i8042_data_ops, pm, "i8042-data");
	if (!r)
		r = iobus_register(pio, PM_I8042_CMD_PORT, 1, &pm_i8042_cmd_ops,
				   pm, "i8042-command");
	return r;
}

int pm_register(struct pm *pm, struct iobus *pio)
{
	return register_ports(pm, pio, true);
}

int pm_register_without_reset_port(struct pm *pm, struct iobus *pio)
{
	return register_ports(pm, pio, false);
}
