/*
 * Motorola MC146818A real-time clock and CMOS RAM as found in every PC
 * (MC146818A datasheet; PC/AT CMOS layout; ACPI 6.4 section 5.2.9 for the
 * FADT CENTURY register). Index port 0x70 (bit 7 masks NMI, stored but
 * without effect), data port 0x71. The clock follows host wall-clock time
 * (UTC) plus a guest-set offset: nothing ticks, every read computes the
 * registers from the host clock, in BCD or binary and 12- or 24-hour form as
 * register B says. UIP reads set during the last 244 us before each update,
 * as the datasheet guarantees. While register B SET is on or the divider is
 * held in reset, the clock registers are frozen and the guest may write
 * them; when it lets go, the written time becomes the new offset.
 *
 * Interrupts (IRQ 8): register C flags (UF, AF, PF, IRQF) are computed on
 * access from the elapsed time, so polling guests see them exactly. This
 * device has no thread or timer of its own: to deliver interrupts, the
 * owner arms a host timer for rtc_next_event_ns() and calls rtc_service()
 * when it fires, re-arming after each rtc_config.kick notification. Without
 * that wiring no interrupt is ever raised; flags still work.
 *
 * Thread safe: a mutex covers all state. The IRQ line is set with it held
 * and must not call back into the device; kick is called without it.
 */
#ifndef HVMM_DEV_RTC_H
#define HVMM_DEV_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/irq.h"

struct iobus;

#define RTC_PORT_INDEX 0x70
#define RTC_PORT_DATA 0x71
#define RTC_IRQ 8
#define RTC_CMOS_SIZE 128

/* Clock and control registers (MC146818A). */
#define RTC_SECONDS 0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES 0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS 0x04
#define RTC_HOURS_ALARM 0x05
#define RTC_DAY_OF_WEEK 0x06 /* 1 = Sunday */
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0A
#define RTC_REG_B 0x0B
#define RTC_REG_C 0x0C
#define RTC_REG_D 0x0D
/* PC CMOS: century (the FADT CENTURY field points here), memory sizes. */
#define RTC_CENTURY 0x32
#define RTC_CMOS_BASE_MEM 0x15  /* 0x15-0x16: KiB below 640 KiB */
#define RTC_CMOS_EXT_MEM 0x17   /* 0x17-0x18: KiB above 1 MiB, max 65535 */
#define RTC_CMOS_EXT_MEM2 0x30  /* 0x30-0x31: copy of 0x17-0x18 */
#define RTC_CMOS_MEM_16M 0x34   /* 0x34-0x35: 64 KiB units 16 MiB-4 GiB */
#define RTC_CMOS_MEM_4G 0x5B    /* 0x5b-0x5d: 64 KiB units above 4 GiB */
#define RTC_CMOS_NCPUS 0x5F     /* CPUs - 1 (QEMU/SeaBIOS convention) */

/* Register A */
#define RTC_A_UIP 0x80
#define RTC_A_DV_MASK 0x70
#define RTC_A_DV_32KHZ 0x20 /* normal operation */
#define RTC_A_RS_MASK 0x0F
/* Register B */
#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_AIE 0x20
#define RTC_B_UIE 0x10
#define RTC_B_SQWE 0x08
#define RTC_B_DM 0x04  /* 1: binary, 0: BCD */
#define RTC_B_24H 0x02 /* 1: 24-hour, 0: 12-hour with bit 7 = PM */
#define RTC_B_DSE 0x01
/* Register C */
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_C_AF 0x20
#define RTC_C_UF 0x10
/* Register D */
#define RTC_D_VRT 0x80

/* Alarm register value that matches any value ("don't care"). */
#define RTC_ALARM_DONT_CARE 0xC0

struct rtc_config {
	uint64_t ram_below_4g; /* bytes of guest RAM below 4 GiB */
	uint64_t ram_above_4g; /* bytes of guest RAM above 4 GiB */
	unsigned ncpus;        /* 0: leave RTC_CMOS_NCPUS at 0 */
	/*
	 * Optional: called (from the accessing thread, device lock not held)
	 * whenever rtc_next_event_ns() may have changed.
	 */
	void (*kick)(void *opaque);
	void *kick_opaque;
};

struct rtc {
	pthread_mutex_t lock;
	uint8_t cmos[RTC_CMOS_SIZE]; /* clock registers valid only when stopped */
	uint8_t index;
	bool nmi_masked;     /* bit 7 of the last index write; no effect */
	bool stopped;        /* SET or divider stopped: clock frozen in cmos[] */
	bool div_was_reset;  /* divider held in reset since the clock stopped */
	bool irq_level;
	int64_t off_sec;     /* guest time = host time + off_sec.off_nsec */
	int64_t off_nsec;    /* 0 .. 999999999 */
	int64_t last_sec;    /* guest time of the last register C evaluation */
	int64_t last_nsec;
	struct irq_line irq;
	void (*kick)(void *opaque);
	void *kick_opaque;
	uint64_t (*clock_ns)(void *opaque); /* NULL: CLOCK_REALTIME */
	void *clock_opaque;
};

/*
 * Power-on state: time from the host clock, register A 0x26 (32 kHz, 1024
 * Hz rate), B 0x02 (24-hour BCD), D VRT, memory sizes from cfg. irq (IRQ 8)
 * is copied; NULL for none. 0 or -errno.
 */
int rtc_init(struct rtc *rtc, const struct rtc_config *cfg,
	     const struct irq_line *irq);
void rtc_destroy(struct rtc *rtc);
/* The RESET pin: clears interrupt enables and flags; time and RAM stay. */
void rtc_reset(struct rtc *rtc);
/* Registers ports 0x70-0x71 on the port I/O bus. 0 or -errno. */
int rtc_register(struct rtc *rtc, struct iobus *pio);

/* Register/RAM access by index (0-127, higher bits ignored). */
uint8_t rtc_cmos_read(struct rtc *rtc, unsigned index);
void rtc_cmos_write(struct rtc *rtc, unsigned index, uint8_t val);

/*
 * Nanoseconds until the next event that may raise IRQ 8, or -1 when none
 * can (no interrupt enabled, or IRQF still pending until register C is
 * read).
 */
int64_t rtc_next_event_ns(struct rtc *rtc);
/* Brings the flags up to date and sets IRQ 8 accordingly. */
void rtc_service(struct rtc *rtc);

/*
 * For tests: replace the wall clock (ns since 1970, UTC; NULL restores
 * CLOCK_REALTIME). Guest time restarts equal to the new clock.
 */
void rtc_set_clock(struct rtc *rtc, uint64_t (*clock_ns)(void *opaque),
		   void *opaque);

#endif
