/*
 * libFuzzer harness: the port-I/O devices (16550A UART, CMOS RTC, ACPI PM
 * and reset ports) driven by an arbitrary sequence of guest accesses.
 * Input: records of {u8 op, u16 port, u8 size, u32 value}.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/iobus.h"
#include "dev/pm.h"
#include "dev/rtc.h"
#include "dev/uart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void irq_set(void *opaque, unsigned gsi, int level)
{
	(void)opaque;
	(void)gsi;
	(void)level;
}

static void ev_raise(void *opaque, enum vm_event ev)
{
	(void)opaque;
	(void)ev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iobus bus;
	static struct pm pm;
	static struct rtc rtc;
	static struct uart *uart;
	static int ready;
	if (!ready) {
		struct irq_line irq = { .set = irq_set, .gsi = 4 };
		struct vm_event_sink ev = { .raise = ev_raise };
		struct rtc_config rc = { .ram_below_4g = 64u << 20, .ncpus = 1 };
		if (pm_init(&pm, &irq, &ev) || pm_register(&pm, &bus) ||
		    rtc_init(&rtc, &rc, &irq) || rtc_register(&rtc, &bus) ||
		    uart_create(&irq, NULL, &uart) || uart_register(uart, &bus, 0x3f8))
			abort();
		ready = 1;
	}
	uart_reset(uart);
	pm_reset(&pm);
	rtc_reset(&rtc);
	for (size_t i = 0; i + 8 <= size; i += 8) {
		uint16_t port;
		uint32_t val;
		memcpy(&port, data + i + 1, 2);
		memcpy(&val, data + i + 4, 4);
		unsigned sz = 1u << (data[i + 3] & 3); /* 1, 2, 4, 8 */
		uint8_t buf[8] = { 0 };
		memcpy(buf, &val, 4);
		/* Mostly our ports, sometimes anywhere. */
		static const uint16_t bases[] = { 0x3f8, 0x70, 0x600, 0xcf9, 0x60, 0x64 };
		if (!(data[i] & 0x80))
			port = bases[port % 6] + (port >> 8) % 12;
		if (data[i] & 1)
			iobus_write(&bus, port, buf, sz);
		else
			iobus_read(&bus, port, buf, sz);
	}
	return 0;
}
