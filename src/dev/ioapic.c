/*
 * I/O APIC model (Intel 82093AA datasheet sections 3.0-3.2: IOREGSEL,
 * IOWIN, IOAPICID/VER/ARB, the redirection table; the version 0x20 EOI
 * register as later chipsets have it). Each pin's redirection entry is
 * turned into the MSI message a local APIC accepts (Intel SDM vol. 3
 * 10.11); the entry's remote IRR is the only delivery state kept, since
 * messages leave synchronously through ops->deliver. The "effective"
 * trigger of an entry is level only for fixed and lowest-priority modes:
 * the datasheet treats NMI, INIT, SMI and ExtINT as edge whatever bit 15
 * says, and only level entries ever hold remote IRR, so an EOI can never
 * be waited for by an entry that cannot receive one.
 */
#include "dev/ioapic.h"

#include <errno.h>
#include <string.h>

#include "core/inspect.h"
#include "core/log.h"

static unsigned rte_delmod(uint64_t e)
{
	return (unsigned)((e & IOAPIC_RTE_DELMOD) >> IOAPIC_RTE_DELMOD_SHIFT);
}

static bool rte_masked(uint64_t e)
{
	return e & IOAPIC_RTE_MASK;
}

/* Level semantics (remote IRR, re-delivery on EOI) apply to this entry. */
static bool rte_level(uint64_t e)
{
	unsigned dm = rte_delmod(e);
	return (e & IOAPIC_RTE_TRIGGER) && (dm == IOAPIC_DM_FIXED || dm == IOAPIC_DM_LOWEST);
}

/* The delivery mode is one this IOAPIC sends at all. */
static bool rte_sendable(uint64_t e)
{
	switch (rte_delmod(e)) {
	case IOAPIC_DM_FIXED: case IOAPIC_DM_LOWEST:
	case IOAPIC_DM_NMI: case IOAPIC_DM_INIT:
		return true;
	default:
		return false;
	}
}

static void rte_msg(uint64_t e, uint64_t *addr, uint32_t *data)
{
	uint64_t dest = e >> IOAPIC_RTE_DEST_SHIFT;
	*addr = IOAPIC_MSI_ADDR_BASE | dest << IOAPIC_MSI_ADDR_DEST_SHIFT |
		((e & IOAPIC_RTE_DESTMOD) ? IOAPIC_MSI_ADDR_DESTMOD : 0);
	*data = (uint32_t)(e & IOAPIC_RTE_VECTOR) |
		rte_delmod(e) << IOAPIC_MSI_DATA_DELMOD_SHIFT |
		IOAPIC_MSI_DATA_ASSERT |
		(rte_level(e) ? IOAPIC_MSI_DATA_LEVEL : 0);
}

/* Tells ops->route about pin's message if it changed (or always if force). */
static void ioapic_route_update(struct ioapic *io, unsigned pin, bool force)
{
	struct ioapic_pin *p = &io->pins[pin];
	uint64_t addr;
	uint32_t data;
	rte_msg(p->entry, &addr, &data);
	bool valid = !rte_masked(p->entry) && rte_sendable(p->entry);
	if (!force && addr == p->route_addr && data == p->route_data &&
	    valid == p->route_valid)
		return;
	p->route_addr = addr;
	p->route_data = data;
	p->route_valid = valid;
	if (io->ops->route)
		io->ops->route(io->opaque, pin, addr, data, valid);
}

/* Sends pin's message now (the caller checked mask and remote IRR). */
static void ioapic_send(struct ioapic *io, unsigned pin)
{
	struct ioapic_pin *p = &io->pins[pin];
	switch (rte_delmod(p->entry)) {
	case IOAPIC_DM_EXTINT:
		log_guest("ioapic: pin %u: ExtINT delivery but there is no 8259 PIC; dropped", pin);
		return;
	case IOAPIC_DM_SMI:
		log_guest("ioapic: pin %u: SMI delivery is not supported; dropped", pin);
		return;
	default:
		if (!rte_sendable(p->entry)) {
			log_guest("ioapic: pin %u: reserved delivery mode %u; dropped",
				  pin, rte_delmod(p->entry));
			return;
		}
	}
	uint64_t addr;
	uint32_t data;
	rte_msg(p->entry, &addr, &data);
	if (rte_level(p->entry))
		p->entry |= IOAPIC_RTE_REMOTE_IRR;
	p->delivered++;
	io->ops->deliver(io->opaque, addr, data);
}

/* A level entry fires while its line is up, unmasked and not awaiting EOI. */
static void ioapic_service_level(struct ioapic *io, unsigned pin)
{
	struct ioapic_pin *p = &io->pins[pin];
	if (rte_level(p->entry) && p->level && !rte_masked(p->entry) &&
	    !(p->entry & IOAPIC_RTE_REMOTE_IRR))
		ioapic_send(io, pin);
}

static void ioapic_route_all(struct ioapic *io, bool force)
{
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		ioapic_route_update(io, i, force);
}

static void ioapic_reset_locked(struct ioapic *io)
{
	io->id = (uint32_t)ACPI_IOAPIC_ID << IOAPIC_ID_SHIFT;
	io->ioregsel = 0;
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		io->pins[i].entry = IOAPIC_RTE_MASK;
}

int ioapic_init(struct ioapic *io, const struct ioapic_ops *ops, void *opaque)
{
	if (!ops || !ops->deliver)
		return -EINVAL;
	memset(io, 0, sizeof(*io));
	int err = pthread_mutex_init(&io->lock, NULL);
	if (err)
		return -err;
	io->ops = ops;
	io->opaque = opaque;
	pthread_mutex_lock(&io->lock);
	ioapic_reset_locked(io);
	ioapic_route_all(io, true);
	pthread_mutex_unlock(&io->lock);
	return 0;
}

void ioapic_destroy(struct ioapic *io)
{
	pthread_mutex_destroy(&io->lock);
}

void ioapic_reset(struct ioapic *io)
{
	pthread_mutex_lock(&io->lock);
	ioapic_reset_locked(io);
	ioapic_route_all(io, false);
	pthread_mutex_unlock(&io->lock);
}

static void ioapic_eoi_locked(struct ioapic *io, uint8_t vector)
{
	/*
	 * One pass, each pin sent at most once: a line that stays up fires
	 * again after every EOI, as on hardware, but never from within a
	 * deliver call.
	 */
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++) {
		struct ioapic_pin *p = &io->pins[i];
		if ((p->entry & IOAPIC_RTE_VECTOR) != vector ||
		    !(p->entry & IOAPIC_RTE_REMOTE_IRR))
			continue;
		p->entry &= ~IOAPIC_RTE_REMOTE_IRR;
		ioapic_service_level(io, i);
	}
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	pthread_mutex_lock(&io->lock);
	ioapic_eoi_locked(io, vector);
	pthread_mutex_unlock(&io->lock);
}

void ioapic_set_irq(void *opaque, unsigned pin, int level)
{
	struct ioapic *io = opaque;
	if (pin >= IOAPIC_NUM_PINS) {
		log_guest("ioapic: set_irq on pin %u, which does not exist; ignored", pin);
		return;
	}
	pthread_mutex_lock(&io->lock);
	struct ioapic_pin *p = &io->pins[pin];
	bool rising = level && !p->level;
	p->level = level != 0;
	if (rte_level(p->entry))
		ioapic_service_level(io, pin);
	else if (rising && !rte_masked(p->entry))
		ioapic_send(io, pin); /* a masked edge is lost, as on KVM */
	pthread_mutex_unlock(&io->lock);
}

uint64_t ioapic_entry(struct ioapic *io, unsigned pin)
{
	if (pin >= IOAPIC_NUM_PINS)
		return 0;
	pthread_mutex_lock(&io->lock);
	uint64_t e = io->pins[pin].entry;
	pthread_mutex_unlock(&io->lock);
	return e;
}

static uint32_t ioapic_read_indirect(struct ioapic *io, uint8_t index)
{
	switch (index) {
	case IOAPIC_REG_ID:
	case IOAPIC_REG_ARB: /* the arbitration ID is loaded from the ID */
		return io->id;
	case IOAPIC_REG_VER:
		return IOAPIC_VER_VALUE;
	}
	if (index >= IOAPIC_REG_REDTBL && index < IOAPIC_REG_REDTBL + 2 * IOAPIC_NUM_PINS) {
		uint64_t e = io->pins[(index - IOAPIC_REG_REDTBL) / 2].entry;
		return (index & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
	}
	log_guest_debug("ioapic: read of unknown register index %#x", index);
	return 0;
}

static void ioapic_write_entry(struct ioapic *io, unsigned pin, bool high, uint32_t val)
{
	struct ioapic_pin *p = &io->pins[pin];
	uint64_t e = p->entry;
	if (high)
		e = (e & 0xFFFFFFFFull) | (uint64_t)val << 32;
	else
		e = (e & ~0xFFFFFFFFull) | val;
	/* Read-only bits keep their state whatever the guest wrote. */
	e = (e & ~IOAPIC_RTE_RO) | (p->entry & IOAPIC_RTE_RO);
	/*
	 * Linux relies on an edge write clearing remote IRR (it emulates an
	 * EOI that way on IOAPICs without the EOI register).
	 */
	if (!rte_level(e))
		e &= ~IOAPIC_RTE_REMOTE_IRR;
	p->entry = e;
	ioapic_route_update(io, pin, false);
	/* Unmasked (or made level) with the line up: a level pin fires now. */
	ioapic_service_level(io, pin);
}

static void ioapic_write_indirect(struct ioapic *io, uint8_t index, uint32_t val)
{
	switch (index) {
	case IOAPIC_REG_ID:
		io->id = val & IOAPIC_ID_MASK;
		return;
	case IOAPIC_REG_VER:
	case IOAPIC_REG_ARB:
		log_guest_debug("ioapic: write of read-only register index %#x ignored", index);
		return;
	}
	if (index >= IOAPIC_REG_REDTBL && index < IOAPIC_REG_REDTBL + 2 * IOAPIC_NUM_PINS) {
		ioapic_write_entry(io, (index - IOAPIC_REG_REDTBL) / 2, index & 1, val);
		return;
	}
	log_guest("ioapic: write of unknown register index %#x ignored", index);
}

static void ioapic_mmio_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct ioapic *io = opaque;
	uint64_t v = 0;
	if (size > sizeof(v))
		size = sizeof(v);
	pthread_mutex_lock(&io->lock);
	if (off == IOAPIC_IOREGSEL)
		v = io->ioregsel;
	else if (off == IOAPIC_IOWIN && size == 4)
		v = ioapic_read_indirect(io, io->ioregsel);
	else if (off == IOAPIC_EOI && size == 4)
		v = 0; /* write-only */
	else
		log_guest("ioapic: %u-byte read at offset %#llx unsupported; reads 0",
			  size, (unsigned long long)off);
	pthread_mutex_unlock(&io->lock);
	memcpy(data, &v, size);
}

static void ioapic_mmio_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct ioapic *io = opaque;
	uint64_t v = 0;
	memcpy(&v, data, size < sizeof(v) ? size : sizeof(v));
	pthread_mutex_lock(&io->lock);
	if (off == IOAPIC_IOREGSEL)
		io->ioregsel = (uint8_t)v;
	else if (off == IOAPIC_IOWIN && size == 4)
		ioapic_write_indirect(io, io->ioregsel, (uint32_t)v);
	else if (off == IOAPIC_EOI && size == 4)
		ioapic_eoi_locked(io, (uint8_t)v);
	else
		log_guest("ioapic: %u-byte write at offset %#llx unsupported; ignored",
			  size, (unsigned long long)off);
	pthread_mutex_unlock(&io->lock);
}

const struct io_ops ioapic_mmio_ops = {
	.read = ioapic_mmio_read,
	.write = ioapic_mmio_write,
};

/* Inspect: a snapshot taken under the lock, then rendered without it. */
struct ioapic_snap {
	uint32_t id;
	uint8_t ioregsel;
	struct ioapic_pin pins[IOAPIC_NUM_PINS];
};

static const char *const ioapic_delmod_names[8] = {
	"fixed", "lowest", "smi", "reserved3", "nmi", "init", "reserved6", "extint",
};

static void ioapic_inspect_pin(struct inspect *in, void *opaque)
{
	const struct ioapic_pin *p = opaque;
	uint64_t e = p->entry;
	inspect_hex(in, "entry", e);
	inspect_u64(in, "vector", e & IOAPIC_RTE_VECTOR);
	inspect_str(in, "delivery_mode", ioapic_delmod_names[rte_delmod(e)]);
	inspect_u64(in, "dest", e >> IOAPIC_RTE_DEST_SHIFT);
	inspect_bool(in, "logical", e & IOAPIC_RTE_DESTMOD);
	inspect_bool(in, "level_triggered", e & IOAPIC_RTE_TRIGGER);
	inspect_bool(in, "active_low", e & IOAPIC_RTE_INTPOL);
	inspect_bool(in, "masked", e & IOAPIC_RTE_MASK);
	inspect_bool(in, "remote_irr", e & IOAPIC_RTE_REMOTE_IRR);
	inspect_bool(in, "line", p->level);
	inspect_u64(in, "delivered", p->delivered);
}

static void ioapic_inspect_pins(struct inspect *in, void *opaque)
{
	struct ioapic_snap *s = opaque;
	for (unsigned i = 0; i < IOAPIC_NUM_PINS; i++)
		inspect_child_index(in, i, ioapic_inspect_pin, &s->pins[i]);
}

void ioapic_inspect(struct inspect *in, void *opaque)
{
	struct ioapic *io = opaque;
	struct ioapic_snap s;
	pthread_mutex_lock(&io->lock);
	s.id = io->id;
	s.ioregsel = io->ioregsel;
	memcpy(s.pins, io->pins, sizeof(s.pins));
	pthread_mutex_unlock(&io->lock);
	inspect_u64(in, "id", s.id >> IOAPIC_ID_SHIFT);
	inspect_hex(in, "ioregsel", s.ioregsel);
	inspect_child(in, "pins", ioapic_inspect_pins, &s);
}
