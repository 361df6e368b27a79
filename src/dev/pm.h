/*
 * ACPI fixed hardware for a non-hardware-reduced platform (ACPI 6.4 chapter
 * 4.8, "ACPI Hardware Model"): the PM1a event block (PM1_STS/PM1_EN), the
 * PM1a control block (PM1_CNT: SCI_EN, SLP_TYP, SLP_EN) and the 32-bit
 * 3.579545 MHz power management timer, at the I/O ports the FADT built by
 * x86/acpi.c advertises. Also the legacy reset paths Linux and others use:
 * the PIIX/ICH Reset Control Register at port 0xCF9 (the FADT RESET_REG)
 * and the i8042 keyboard controller's pulse-reset command (0xFE to 0x64).
 * The i8042 part is only that: its status port reads 0 (no data waiting,
 * input buffer empty), so a guest probing for a keyboard controller finds
 * one that never answers (Linux gives up after its selftest timeout, about
 * 0.5 s) and a guest rebooting through it resets at once.
 *
 * S5 (SLP_TYP 5, matching the DSDT's \_S5 package) raises VM_EVENT_POWEROFF;
 * the reset paths raise VM_EVENT_RESET. No sleep state other than S5 exists.
 * The SCI is a level-triggered, active-high line (GSI 9 by the MADT
 * override) asserted while any PM1 status bit is set with its enable bit.
 * TMR_STS is computed when PM1_STS is read; no timer raises an SCI for the
 * PM timer's bit-31 carry (the FADT-described timer overflow event), which
 * no current OS relies on.
 *
 * All handlers take any access size and offset: unusual ones are logged
 * (rate limited) and reads return all ones. Thread safe: one mutex covers
 * the registers; the SCI line is set with it held (so level changes reach
 * the line in order) and must not call back into the device; VM events are
 * raised after it is dropped.
 */
#ifndef HVMM_DEV_PM_H
#define HVMM_DEV_PM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/irq.h"
#include "core/vmevent.h"

struct iobus;

/* I/O ports; x86/acpi.c puts these into the FADT. */
#define PM_IO_BASE 0x600
#define PM1A_EVT_BLK 0x600
#define PM1_EVT_LEN 4
#define PM1A_CNT_BLK 0x604
#define PM1_CNT_LEN 2
#define PM_TMR_BLK 0x608
#define PM_TMR_LEN 4
#define PM_IO_LEN 0x0C /* PM1a_EVT .. PM_TMR, one range */
#define PM_SCI_IRQ 9
#define PM_RESET_PORT 0xCF9
#define PM_RESET_VALUE 0x06 /* SYS_RST | RST_CPU: FADT RESET_VALUE */
#define PM_I8042_DATA_PORT 0x60
#define PM_I8042_CMD_PORT 0x64

/* PM timer frequency, Hz (ACPI 6.4 section 4.8.3.3). */
#define PM_TMR_FREQ 3579545ULL

/* PM1 Status register bits (ACPI 6.4 table 4.16). */
#define PM1_TMR_STS (1u << 0)
#define PM1_BM_STS (1u << 4)
#define PM1_GBL_STS (1u << 5)
#define PM1_PWRBTN_STS (1u << 8)
#define PM1_SLPBTN_STS (1u << 9)
#define PM1_RTC_STS (1u << 10)
#define PM1_PCIEXP_WAKE_STS (1u << 14)
#define PM1_WAK_STS (1u << 15)

/* PM1 Enable register bits (ACPI 6.4 table 4.17). */
#define PM1_TMR_EN (1u << 0)
#define PM1_GBL_EN (1u << 5)
#define PM1_PWRBTN_EN (1u << 8)
#define PM1_SLPBTN_EN (1u << 9)
#define PM1_RTC_EN (1u << 10)
#define PM1_PCIEXP_WAKE_DIS (1u << 14)

/* PM1 Control register bits (ACPI 6.4 table 4.18). */
#define PM1_SCI_EN (1u << 0)
#define PM1_BM_RLD (1u << 1)
#define PM1_GBL_RLS (1u << 2)
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_TYP_MASK (7u << PM1_SLP_TYP_SHIFT)
#define PM1_SLP_EN (1u << 13)

/* The SLP_TYP value of \_S5 in our DSDT. */
#define PM_SLP_TYP_S5 5

/* Reset Control Register (port 0xCF9) bits, Intel PIIX4/ICH. */
#define PM_RST_SYS_RST 0x02
#define PM_RST_RST_CPU 0x04
#define PM_RST_FULL_RST 0x08

/* i8042 controller commands we act on. */
#define PM_I8042_CMD_WRITE_OUTPUT 0xD1 /* next data byte is the output port */
#define PM_I8042_CMD_PULSE_RESET 0xFE /* pulse output bit 0: CPU reset */

struct pm {
	pthread_mutex_t lock;
	uint16_t pm1_sts;
	uint16_t pm1_en;
	uint16_t pm1_cnt;     /* as read, without the write-only bits */
	uint8_t reset_ctl;    /* 0xCF9, SYS_RST/FULL_RST as last written */
	bool i8042_want_output; /* 0xD1 seen, next 0x60 write is the port */
	bool sci_level;
	uint64_t tmr_base_ns; /* clock value at which the timer read 0 */
	uint64_t tmr_carry;   /* timer ticks >> 31 when last observed */
	struct irq_line sci;
	struct vm_event_sink events;
	uint64_t (*clock_ns)(void *opaque); /* NULL: CLOCK_MONOTONIC */
	void *clock_opaque;
};

/*
 * Sets up the device in its power-on state. sci (usually GSI 9) and events
 * are copied; either may be NULL for none. 0 or -errno.
 */
int pm_init(struct pm *pm, const struct irq_line *sci,
	    const struct vm_event_sink *events);
void pm_destroy(struct pm *pm);
/* Back to the power-on state (VM reset); drops the SCI. */
void pm_reset(struct pm *pm);

/*
 * Registers PM_IO_BASE..+PM_IO_LEN, PM_RESET_PORT and the two i8042 ports on
 * the port I/O bus. 0 or -errno from iobus_register(). Note for a later
 * PCI host bridge claiming 0xCF8-0xCFF: it must leave 0xCF9 to this device
 * or forward byte writes there to pm_reset_ctl_write().
 */
int pm_register(struct pm *pm, struct iobus *pio);
/* The same without PM_RESET_PORT, for a PCI host bridge that owns 0xCF8-0xCFF
 * and forwards byte accesses to 0xCF9 to pm_reset_ops (opaque: the pm). */
int pm_register_without_reset_port(struct pm *pm, struct iobus *pio);
extern const struct io_ops pm_reset_ops;

/* A write of val to the Reset Control Register (port 0xCF9). */
void pm_reset_ctl_write(struct pm *pm, uint8_t val);

/*
 * Presses the fixed-feature power button: sets PWRBTN_STS, raising the SCI
 * if the guest enabled it. The guest then shuts down in an orderly way.
 */
void pm_power_button(struct pm *pm);

/*
 * Replaces the monotonic nanosecond clock the PM timer counts (for tests;
 * NULL restores CLOCK_MONOTONIC) and restarts the timer at 0.
 */
void pm_set_clock(struct pm *pm, uint64_t (*clock_ns)(void *opaque),
		  void *opaque);

/* The 32-bit PM timer value now (what PM_TMR reads). */
uint32_t pm_timer_read(struct pm *pm);

#endif
