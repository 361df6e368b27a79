/*
 * A user-space I/O APIC (Intel 82093AA datasheet, version 0x20 with the EOI
 * register; 24 pins) for KVM's split irqchip, where the local APICs stay in
 * the kernel. The model is pure logic: a pin's interrupt leaves as the MSI
 * address/data pair its redirection entry describes (ops->deliver), and
 * each entry's current message is mirrored through ops->route so the VM
 * can keep a KVM MSI route per pin (how KVM learns which vectors are
 * level-triggered and exits with KVM_EXIT_IOAPIC_EOI on their EOIs).
 *
 * Registers (offsets from the base): IOREGSEL 0x00, IOWIN 0x10, EOI 0x40;
 * indirect indexes IOAPICID 0x00 (bits 24-27 writable), IOAPICVER 0x01
 * (read-only, 0x00170020), IOAPICARB 0x02 (reads the ID, read-only) and
 * the redirection table 0x10-0x3F (entry n: low dword 0x10 + 2n, high
 * 0x11 + 2n). Unknown indexes read 0 and ignore writes.
 *
 * Policies (KVM's arch/x86/kvm/ioapic.c behaviour where the datasheet
 * leaves room): input polarity is ignored (callers give the asserted
 * level); an edge pin delivers on each rising edge while unmasked and a
 * masked edge is not latched; a level pin delivers while asserted,
 * unmasked and with remote IRR clear, sets remote IRR, and an EOI of its
 * vector clears it and delivers again if the line is still up; making an
 * entry edge-triggered clears its remote IRR. NMI and INIT are always sent
 * edge-triggered (the datasheet says they are treated as edge); ExtINT
 * (no 8259 in this configuration), SMI and the reserved modes 3 and 6 are
 * never sent (logged, rate limited). Delivery is synchronous, so the
 * delivery status bit always reads 0.
 *
 * Thread safety: one mutex covers all state; every entry point may be
 * called from any thread. ops->deliver and ops->route run with the mutex
 * held and must not call back into the IOAPIC.
 */
#ifndef HVMM_DEV_IOAPIC_H
#define HVMM_DEV_IOAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/iobus.h"
#include "x86/acpi.h"

struct inspect;

#define IOAPIC_DEFAULT_BASE ((uint64_t)ACPI_IOAPIC_BASE)
#define IOAPIC_MMIO_SIZE 0x1000
#define IOAPIC_NUM_PINS 24

/* Direct registers (MMIO offsets). */
#define IOAPIC_IOREGSEL 0x00
#define IOAPIC_IOWIN 0x10
#define IOAPIC_EOI 0x40

/* Indirect registers (IOREGSEL values). */
#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REG_ARB 0x02
#define IOAPIC_REG_REDTBL 0x10 /* entry n: 0x10 + 2n (low), 0x11 + 2n (high) */

#define IOAPIC_VERSION 0x20
#define IOAPIC_ID_SHIFT 24
#define IOAPIC_ID_MASK (0xFu << IOAPIC_ID_SHIFT)
#define IOAPIC_VER_VALUE ((uint32_t)(IOAPIC_NUM_PINS - 1) << 16 | IOAPIC_VERSION)

/* Redirection entry fields. */
#define IOAPIC_RTE_VECTOR 0xFFull
#define IOAPIC_RTE_DELMOD_SHIFT 8
#define IOAPIC_RTE_DELMOD (7ull << IOAPIC_RTE_DELMOD_SHIFT)
#define IOAPIC_RTE_DESTMOD (1ull << 11)  /* 1 = logical */
#define IOAPIC_RTE_DELIVS (1ull << 12)   /* read-only */
#define IOAPIC_RTE_INTPOL (1ull << 13)   /* 1 = active low (ignored) */
#define IOAPIC_RTE_REMOTE_IRR (1ull << 14) /* read-only */
#define IOAPIC_RTE_TRIGGER (1ull << 15)  /* 1 = level */
#define IOAPIC_RTE_MASK (1ull << 16)
#define IOAPIC_RTE_DEST_SHIFT 56
#define IOAPIC_RTE_RO (IOAPIC_RTE_DELIVS | IOAPIC_RTE_REMOTE_IRR)

/* Delivery modes (bits 8-10). */
#define IOAPIC_DM_FIXED 0
#define IOAPIC_DM_LOWEST 1
#define IOAPIC_DM_SMI 2
#define IOAPIC_DM_NMI 4
#define IOAPIC_DM_INIT 5
#define IOAPIC_DM_EXTINT 7

/* The MSI message format the pins are sent in (Intel SDM vol. 3 10.11). */
#define IOAPIC_MSI_ADDR_BASE 0xFEE00000ull
#define IOAPIC_MSI_ADDR_DEST_SHIFT 12
#define IOAPIC_MSI_ADDR_DESTMOD (1u << 2) /* logical */
#define IOAPIC_MSI_DATA_DELMOD_SHIFT 8
#define IOAPIC_MSI_DATA_ASSERT (1u << 14)
#define IOAPIC_MSI_DATA_LEVEL (1u << 15)

struct ioapic_ops {
	/*
	 * Sends the interrupt message for a pin: addr/data as a PCI MSI would
	 * write them (addr = 0xFEE00000 | dest << 12 | logical << 2; data =
	 * vector | delivery_mode << 8 | assert (bit 14, always 1) | level << 15).
	 * Called with the IOAPIC's lock held: must not call back into it.
	 */
	void (*deliver)(void *opaque, uint64_t addr, uint32_t data);
	/*
	 * A pin's message changed (and once per pin at init): the message it
	 * would send now; valid is false while the pin is masked or its
	 * delivery mode is one that is never sent (ExtINT, SMI, reserved).
	 * Called only when addr, data or valid changed for that pin. May be
	 * NULL. Same locking rule.
	 */
	void (*route)(void *opaque, unsigned pin, uint64_t addr, uint32_t data, bool valid);
};

struct ioapic_pin {
	uint64_t entry;      /* guest-visible entry, RO bits included */
	bool level;          /* input asserted */
	/* The last message given to ops->route. */
	uint64_t route_addr;
	uint32_t route_data;
	bool route_valid;
	uint64_t delivered;  /* messages sent (for inspect) */
};

/* Embeddable; fields are private to ioapic.c. */
struct ioapic {
	pthread_mutex_t lock;
	const struct ioapic_ops *ops;
	void *opaque;
	uint32_t id;       /* IOAPICID register value (bits 24-27) */
	uint8_t ioregsel;
	struct ioapic_pin pins[IOAPIC_NUM_PINS];
};

/*
 * Power-on state: ID 0, every entry masked (0x10000), lines low. Calls
 * ops->route for each pin (valid false). ops must outlive io; ops->deliver
 * is required. 0 or -errno.
 */
int ioapic_init(struct ioapic *io, const struct ioapic_ops *ops, void *opaque);
void ioapic_destroy(struct ioapic *io);
/*
 * The RESET signal: ID 0, IOREGSEL 0, every entry masked; line levels
 * (inputs driven by devices) stay. ops->route hears of the pins that change.
 */
void ioapic_reset(struct ioapic *io);

/*
 * MMIO handlers, offsets relative to the base: register with
 * iobus_register(bus, base, IOAPIC_MMIO_SIZE, &ioapic_mmio_ops, io, "ioapic").
 * IOREGSEL takes any access size (its low byte is the index); IOWIN and
 * EOI take 32-bit accesses. Anything else is logged (rate limited): reads
 * return 0, writes are ignored.
 */
extern const struct io_ops ioapic_mmio_ops;

/*
 * Sets a pin's input level (nonzero = asserted, whatever the entry's
 * polarity). Fits struct irq_line: opaque is the struct ioapic *, pin the
 * GSI. Pins >= IOAPIC_NUM_PINS are ignored and logged.
 */
void ioapic_set_irq(void *opaque, unsigned pin, int level);

/*
 * A local APIC's EOI of vector (KVM_EXIT_IOAPIC_EOI, or the EOI register):
 * each level-triggered pin with this vector and remote IRR set gets remote
 * IRR cleared and, if still asserted and unmasked, is delivered again.
 * Each pin is sent at most once per call; nothing recurses.
 */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

/* The 64-bit redirection entry of pin as the guest reads it; 0 if out of range. */
uint64_t ioapic_entry(struct ioapic *io, unsigned pin);

/*
 * An inspect_fn (core/inspect.h) with opaque = the struct ioapic *: id,
 * and a child per pin (entry, decoded fields, line level, messages sent).
 */
void ioapic_inspect(struct inspect *in, void *opaque);

#endif
