/*
 * libFuzzer harness: the user-space I/O APIC (dev/ioapic.c) driven by an
 * arbitrary sequence of guest MMIO accesses, device line changes and local
 * APIC EOIs. Input: 8-byte records {u8 op, u16 offset, u8 size, u32 value};
 * op bits 0-1 pick mmio read / mmio write / set_irq / eoi, bit 7 sends the
 * access to any offset instead of one of the three registers.
 *
 * Invariants checked (abort on violation): deliver never runs nested; each
 * message matches an unmasked entry of a mode that is sent (so a masked pin
 * never delivers); route is called only on a change and, after every step,
 * what it last said for each pin equals the entry's current message;
 * remote IRR is set only on level-triggered fixed/lowest entries and
 * delivery status always reads 0; an unmasked level entry whose line is up
 * is never left idle (remote IRR set, i.e. it was delivered); a rising edge
 * on an unmasked sendable edge entry sends exactly one message; the version
 * register never changes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "dev/ioapic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ioapic io;
static int depth;
static unsigned sent; /* messages in the current step */
static bool line[IOAPIC_NUM_PINS];
static struct {
	uint64_t addr;
	uint32_t data;
	bool valid, seen;
} routes[IOAPIC_NUM_PINS];

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static unsigned dm_of(uint64_t e)
{
	return (unsigned)(e >> 8) & 7;
}

static bool sendable(uint64_t e)
{
	unsigned dm = dm_of(e);
	return dm == 0 || dm == 1 || dm == 4 || dm == 5;
}

static bool level_eff(uint64_t e)
{
	return (e & IOAPIC_RTE_TRIGGER) && dm_of(e) <= 1;
}

/* The MSI message of an entry, written independently of ioapic.c. */
static void expect_msg(uint64_t e, uint64_t *addr, uint32_t *d)
{
	*addr = 0xFEE00000ull | (e >> 56) << 12 | ((e >> 11) & 1) << 2;
	*d = (uint32_t)(e & 0xFF) | dm_of(e) << 8 | 1u << 14 | (level_eff(e) ? 1u << 15 : 0);
}

static void deliver(void *opaque, uint64_t addr, uint32_t d)
{
	(void)opaque;
	CHECK(depth == 0);
	depth++;
	/* Lock held by the caller: read the table directly. */
	bool ok = false;
	for (unsigned i = 0; i < IOAPIC_NUM_PINS && !ok; i++) {
		uint64_t e = io.pins[i].entry, a;
		uint32_t m;
		expect_msg(e, &a, &m);
		ok = !(e & IOAPIC_RTE_MASK) && sendable(e) && a == addr && m == d;
	}
	CHECK(ok);
	sent++;
	depth--;
}

static void route(void *opaque, unsigned pin, uint64_t addr, uint32_t d, bool valid)
{
	(void)opaque;
	CHECK(depth == 0);
	CHECK(pin < IOAPIC_NUM_PINS);
	if (routes[pin].seen)
		CHECK(routes[pin].addr != addr || routes[pin].data != d ||
		      routes[pin].valid != valid);
	routes[pin].addr = addr;
	routes[pin].data = d;
	routes[pin].valid = valid;
	routes[pin].seen = true;
}

static const struct ioapic_ops ops = { .deliver = deliver, .route = route };

static void check_state(void)
{
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++) {
		uint64_t e = ioapic_entry(&io, i), a;
		uint32_t m;
		expect_msg(e, &a, &m);
		CHECK(routes[i].seen);
		CHECK(routes[i].addr == a && routes[i].data == m);
		CHECK(routes[i].valid == (!(e & IOAPIC_RTE_MASK) && sendable(e)));
		CHECK(!(e & IOAPIC_RTE_DELIVS));
		if (e & IOAPIC_RTE_REMOTE_IRR)
			CHECK(level_eff(e));
		if (level_eff(e) && line[i] && !(e & IOAPIC_RTE_MASK))
			CHECK(e & IOAPIC_RTE_REMOTE_IRR);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_level = LOG_ERROR;
	memset(line, 0, sizeof(line));
	memset(routes, 0, sizeof(routes));
	if (ioapic_init(&io, &ops, NULL))
		abort();
	for (size_t i = 0; i + 8 <= size && i < 8 * 4096; i += 8) {
		uint8_t op = data[i];
		uint16_t off;
		uint32_t val;
		memcpy(&off, data + i + 1, 2);
		memcpy(&val, data + i + 4, 4);
		unsigned sz = 1u << (data[i + 3] & 3); /* 1, 2, 4, 8 */
		static const uint16_t regs[] = { IOAPIC_IOREGSEL, IOAPIC_IOWIN, IOAPIC_EOI };
		uint64_t moff = (op & 0x80) ? off % IOAPIC_MMIO_SIZE : regs[off % 3];
		if ((op & 0x80) && moff + sz > IOAPIC_MMIO_SIZE)
			moff = IOAPIC_MMIO_SIZE - sz;
		if (!(data[i + 3] & 4))
			sz = 4; /* mostly the architected size */
		sent = 0;
		switch (op & 3) {
		case 0: {
			uint8_t buf[8];
			memset(buf, 0xA5, sizeof(buf));
			ioapic_mmio_ops.read(&io, moff, buf, sz);
			for (unsigned b = sz; b < 8; b++)
				CHECK(buf[b] == 0xA5);
			if (moff == IOAPIC_IOWIN && sz == 4 && io.ioregsel == IOAPIC_REG_VER) {
				uint32_t v;
				memcpy(&v, buf, 4);
				CHECK(v == IOAPIC_VER_VALUE);
			}
			CHECK(sent == 0);
			break;
		}
		case 1: {
			uint64_t v = val;
			/* Steer IOREGSEL writes at the table most of the time. */
			if (moff == IOAPIC_IOREGSEL && !(op & 0x40))
				v = IOAPIC_REG_REDTBL + val % (2 * IOAPIC_NUM_PINS + 4);
			ioapic_mmio_ops.write(&io, moff, &v, sz);
			CHECK(sent <= IOAPIC_NUM_PINS);
			break;
		}
		case 2: {
			unsigned pin = (op & 0x40) ? val : val % IOAPIC_NUM_PINS;
			int level = (op >> 2) & 1;
			uint64_t e = pin < IOAPIC_NUM_PINS ? ioapic_entry(&io, pin) : 0;
			bool rising = pin < IOAPIC_NUM_PINS && level && !line[pin];
			ioapic_set_irq(&io, pin, level);
			if (pin < IOAPIC_NUM_PINS) {
				line[pin] = level;
				if (rising && !level_eff(e) && !(e & IOAPIC_RTE_MASK) && sendable(e))
					CHECK(sent == 1);
				else
					CHECK(sent <= 1);
			} else {
				CHECK(sent == 0);
			}
			break;
		}
		case 3:
			ioapic_eoi(&io, (uint8_t)val);
			CHECK(sent <= IOAPIC_NUM_PINS);
			break;
		}
		check_state();
	}
	ioapic_destroy(&io);
	return 0;
}
