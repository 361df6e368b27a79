/*
 * PCI bus 0 behind configuration mechanism #1 (PCI Local Bus 3.0 sections
 * 3.2.2.3.2 and 6.1-6.2: type 0 header, BAR sizing, command register,
 * capability list; 6.8.2: MSI-X table, PBA, masking). See pci.h for the
 * model, the BAR placement policy and the locking rules.
 */
#include "dev/pci.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/iobus.h"
#include "core/log.h"
#include "x86/aml.h"

struct pci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct pci_dev {
	struct pci_bus *bus;
	unsigned slot;
	struct pci_dev_config cfg;
	uint8_t space[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* writable bits outside BARs/MSI-X */
	uint64_t bar_addr[PCI_NUM_BARS];
	uint64_t bar_initial[PCI_NUM_BARS];
	unsigned msix_cap; /* offset of the capability, 0 if none */
	struct pci_msix_entry *msix;
	uint64_t *pba;     /* one bit per vector */
};

struct pci_bus {
	pthread_mutex_t lock;
	struct pci_msi_sink msi;
	uint32_t config_address;
	struct pci_dev *dev[PCI_MAX_DEVICES];
	uint64_t next_bar; /* firmware allocation cursor in the window */
	const struct io_ops *cf9_ops;
	void *cf9_opaque;
};

static uint32_t get_le(const uint8_t *p, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static bool bar_implemented(const struct pci_dev *d, unsigned i)
{
	return i < PCI_NUM_BARS && d->cfg.bars[i].size != 0;
}

/* True for the upper half of a 64-bit BAR. */
static bool bar_is_upper(const struct pci_dev *d, unsigned i)
{
	return i > 0 && bar_implemented(d, i - 1) &&
	       (d->cfg.bars[i - 1].flags & PCI_BAR_MEM64);
}

/* The 32-bit value a BAR register reads as. */
static uint32_t bar_reg_value(const struct pci_dev *d, unsigned i)
{
	if (bar_is_upper(d, i))
		return (uint32_t)(d->bar_addr[i - 1] >> 32);
	if (!bar_implemented(d, i))
		return 0;
	uint32_t v = (uint32_t)d->bar_addr[i] & ~0xFu;
	if (d->cfg.bars[i].flags & PCI_BAR_MEM64)
		v |= PCI_BASE_ADDRESS_MEM_TYPE_64;
	if (d->cfg.bars[i].flags & PCI_BAR_PREFETCH)
		v |= PCI_BASE_ADDRESS_MEM_PREFETCH;
	return v;
}

/* A write of a whole 32-bit BAR register: the size mask keeps low bits 0. */
static void bar_reg_write(struct pci_dev *d, unsigned i, uint32_t v)
{
	if (bar_is_upper(d, i)) {
		uint64_t mask = ~(d->cfg.bars[i - 1].size - 1);
		d->bar_addr[i - 1] = ((d->bar_addr[i - 1] & 0xFFFFFFFFull) |
				      ((uint64_t)v << 32)) & mask;
		return;
	}
	if (!bar_implemented(d, i))
		return;
	uint64_t mask = ~(d->cfg.bars[i].size - 1);
	uint64_t hi = d->bar_addr[i] & 0xFFFFFFFF00000000ull;
	if (!(d->cfg.bars[i].flags & PCI_BAR_MEM64))
		hi = 0;
	d->bar_addr[i] = (hi | v) & mask;
}

static void dev_init_space(struct pci_dev *d)
{
	const struct pci_dev_config *c = &d->cfg;
	memset(d->space, 0, sizeof(d->space));
	memset(d->wmask, 0, sizeof(d->wmask));
	put_le(d->space + PCI_VENDOR_ID, 2, c->vendor_id);
	put_le(d->space + PCI_DEVICE_ID, 2, c->device_id);
	d->space[PCI_REVISION_ID] = c->revision;
	d->space[PCI_CLASS_PROG] = c->prog_if;
	d->space[PCI_CLASS_DEVICE] = c->subclass;
	d->space[PCI_CLASS_DEVICE + 1] = c->class_code;
	put_le(d->space + PCI_SUBSYSTEM_VENDOR_ID, 2, c->subsys_vendor_id);
	put_le(d->space + PCI_SUBSYSTEM_ID, 2, c->subsys_id);
	put_le(d->wmask + PCI_COMMAND, 2,
	       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
	       PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xFF;
	d->wmask[PCI_LATENCY_TIMER] = 0xFF;
	d->wmask[PCI_INTERRUPT_LINE] = 0xFF;
	if (d->msix_cap) {
		unsigned cap = d->msix_cap;
		put_le(d->space + PCI_STATUS, 2, PCI_STATUS_CAP_LIST);
		d->space[PCI_CAPABILITY_LIST] = (uint8_t)cap;
		d->space[cap] = PCI_CAP_ID_MSIX;
		d->space[cap + 1] = 0; /* end of the list */
		put_le(d->space + cap + PCI_MSIX_FLAGS, 2, (c->msix_vectors - 1) &
		       PCI_MSIX_FLAGS_QSIZE);
		put_le(d->space + cap + PCI_MSIX_TABLE, 4, c->msix_table_off | c->msix_bar);
		put_le(d->space + cap + PCI_MSIX_PBA, 4, c->msix_pba_off | c->msix_bar);
		put_le(d->wmask + cap + PCI_MSIX_FLAGS, 2,
		       PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE);
		for (unsigned v = 0; v < c->msix_vectors; v++)
			d->msix[v] = (struct pci_msix_entry){ .ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT };
		memset(d->pba, 0, ((c->msix_vectors + 63) / 64) * sizeof(uint64_t));
	}
	memcpy(d->bar_addr, d->bar_initial, sizeof(d->bar_addr));
}

static uint16_t cmd(const struct pci_dev *d)
{
	return (uint16_t)get_le(d->space + PCI_COMMAND, 2);
}

static uint16_t msix_flags(const struct pci_dev *d)
{
	return d->msix_cap ? (uint16_t)get_le(d->space + d->msix_cap + PCI_MSIX_FLAGS, 2) : 0;
}

/* Sends one vector's message. Bus lock held. */
static void msix_send(struct pci_dev *d, unsigned v)
{
	const struct pci_msix_entry *e = &d->msix[v];
	uint64_t addr = (uint64_t)e->addr_hi << 32 | e->addr_lo;
	if (d->bus->msi.signal)
		d->bus->msi.signal(d->bus->msi.opaque, addr, e->data);
}

/* Delivers pending vectors that are no longer masked. Bus lock held. */
static void msix_flush_pending(struct pci_dev *d)
{
	uint16_t f = msix_flags(d);
	if (!(f & PCI_MSIX_FLAGS_ENABLE) || (f & PCI_MSIX_FLAGS_MASKALL))
		return;
	for (unsigned v = 0; v < d->cfg.msix_vectors; v++) {
		uint64_t bit = 1ull << (v % 64);
		if ((d->pba[v / 64] & bit) && !(d->msix[v].ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT)) {
			d->pba[v / 64] &= ~bit;
			msix_send(d, v);
		}
	}
}

void pci_msix_notify(struct pci_dev *d, unsigned v)
{
	if (!d || v >= d->cfg.msix_vectors)
		return;
	pthread_mutex_lock(&d->bus->lock);
	uint16_t f = msix_flags(d);
	if (f & PCI_MSIX_FLAGS_ENABLE) {
		if ((f & PCI_MSIX_FLAGS_MASKALL) || (d->msix[v].ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT))
			d->pba[v / 64] |= 1ull << (v % 64);
		else
			msix_send(d, v);
	}
	pthread_mutex_unlock(&d->bus->lock);
}

/* ---- configuration space ------------------------------------------------ */

static struct pci_dev *dev_at(struct pci_bus *bus, unsigned devfn)
{
	if ((devfn & 7) != 0 || (devfn >> 3) >= PCI_MAX_DEVICES)
		return NULL; /* only function 0 of each device exists */
	return bus->dev[devfn >> 3];
}

static uint32_t cfg_read_locked(struct pci_bus *bus, unsigned devfn, unsigned reg,
				unsigned size)
{
	struct pci_dev *d = dev_at(bus, devfn);
	if (!d)
		return size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
	uint8_t buf[4];
	unsigned base = reg & ~3u;
	if (base >= PCI_BASE_ADDRESS_0 && base < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS)
		put_le(buf, 4, bar_reg_value(d, (base - PCI_BASE_ADDRESS_0) / 4));
	else
		memcpy(buf, d->space + base, 4);
	return get_le(buf + (reg & 3), size);
}

static void cfg_write_locked(struct pci_bus *bus, unsigned devfn, unsigned reg,
			     unsigned size, uint32_t val)
{
	struct pci_dev *d = dev_at(bus, devfn);
	if (!d)
		return;
	unsigned base = reg & ~3u;
	if (base >= PCI_BASE_ADDRESS_0 && base < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS) {
		unsigned i = (base - PCI_BASE_ADDRESS_0) / 4;
		uint8_t buf[4];
		/* Merge a partial write into what the register holds now. */
		put_le(buf, 4, bar_reg_value(d, i));
		put_le(buf + (reg & 3), size, val);
		bar_reg_write(d, i, get_le(buf, 4));
		return;
	}
	uint16_t old_flags = msix_flags(d);
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = d->wmask[reg + i];
		uint8_t b = (uint8_t)(val >> (8 * i));
		d->space[reg + i] = (uint8_t)((d->space[reg + i] & ~m) | (b & m));
	}
	if (d->msix_cap && msix_flags(d) != old_flags)
		msix_flush_pending(d);
}

uint32_t pci_config_read(struct pci_bus *bus, unsigned devfn, unsigned reg,
			 unsigned size)
{
	if ((size != 1 && size != 2 && size != 4) || reg >= PCI_CFG_SIZE || (reg & (size - 1)))
		return 0xFFFFFFFFu;
	pthread_mutex_lock(&bus->lock);
	uint32_t v = cfg_read_locked(bus, devfn, reg, size);
	pthread_mutex_unlock(&bus->lock);
	return v;
}

void pci_config_write(struct pci_bus *bus, unsigned devfn, unsigned reg,
		      unsigned size, uint32_t val)
{
	if ((size != 1 && size != 2 && size != 4) || reg >= PCI_CFG_SIZE || (reg & (size - 1)))
		return;
	pthread_mutex_lock(&bus->lock);
	cfg_write_locked(bus, devfn, reg, size, val);
	pthread_mutex_unlock(&bus->lock);
}

/* Ports 0xCF8-0xCFF. off 0-3 is CONFIG_ADDRESS (dword only), 4-7 data. */
static void config_io_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct pci_bus *bus = opaque;
	uint32_t v = 0xFFFFFFFFu;
	if (off == 1 && size == 1 && bus->cf9_ops && bus->cf9_ops->read) {
		bus->cf9_ops->read(bus->cf9_opaque, 0, data, 1);
		return;
	}
	pthread_mutex_lock(&bus->lock);
	if (off == 0 && size == 4) {
		v = bus->config_address;
	} else if (off >= 4 && off + size <= 8 && ((off - 4) & (size - 1)) == 0) {
		uint32_t a = bus->config_address;
		unsigned busno = (a >> 16) & 0xFF;
		if ((a & PCI_CONFIG_ENABLE) && busno == 0)
			v = cfg_read_locked(bus, (a >> 8) & 0xFF, (a & 0xFC) + (unsigned)(off - 4), size);
	}
	pthread_mutex_unlock(&bus->lock);
	put_le(data, size > 4 ? 4 : size, v);
	if (size > 4)
		memset((uint8_t *)data + 4, 0xFF, size - 4);
}

static void config_io_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct pci_bus *bus = opaque;
	if (off == 1 && size == 1 && bus->cf9_ops && bus->cf9_ops->write) {
		bus->cf9_ops->write(bus->cf9_opaque, 0, data, 1);
		return;
	}
	if (size > 4)
		return;
	uint32_t v = get_le(data, size);
	pthread_mutex_lock(&bus->lock);
	if (off == 0 && size == 4) {
		/* Bits 30:24 are reserved and 1:0 select type 0/1: read as 0. */
		bus->config_address = v & 0x80FFFFFCu;
	} else if (off >= 4 && off + size <= 8 && ((off - 4) & (size - 1)) == 0) {
		uint32_t a = bus->config_address;
		if ((a & PCI_CONFIG_ENABLE) && ((a >> 16) & 0xFF) == 0)
			cfg_write_locked(bus, (a >> 8) & 0xFF, (a & 0xFC) + (unsigned)(off - 4), size, v);
	}
	pthread_mutex_unlock(&bus->lock);
}

const struct io_ops pci_config_io_ops = {
	.read = config_io_read,
	.write = config_io_write,
};

/* ---- BAR decoding --------------------------------------------------------- */

/* Finds the BAR decoding [gpa, gpa+size). Bus lock held. */
static struct pci_dev *decode(struct pci_bus *bus, uint64_t gpa, unsigned size,
			      unsigned *bar, uint64_t *off)
{
	for (unsigned s = 1; s < PCI_MAX_DEVICES; s++) {
		struct pci_dev *d = bus->dev[s];
		if (!d || !(cmd(d) & PCI_COMMAND_MEMORY))
			continue;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			if (!bar_implemented(d, i) || bar_is_upper(d, i))
				continue;
			uint64_t b = d->bar_addr[i], len = d->cfg.bars[i].size;
			if (gpa >= b && gpa - b < len && size <= len - (gpa - b)) {
				*bar = i;
				*off = gpa - b;
				return d;
			}
		}
	}
	return NULL;
}

static bool in_msix(const struct pci_dev *d, unsigned bar, uint64_t off,
		    uint32_t region_off, uint64_t region_len)
{
	return d->msix_cap && bar == d->cfg.msix_bar && off >= region_off &&
	       off - region_off < region_len;
}

static uint64_t msix_table_len(const struct pci_dev *d)
{
	return (uint64_t)d->cfg.msix_vectors * PCI_MSIX_ENTRY_SIZE;
}

static uint64_t msix_pba_len(const struct pci_dev *d)
{
	return ((d->cfg.msix_vectors + 63) / 64) * 8ull;
}

/* MSI-X table/PBA read; dword or aligned qword accesses. Bus lock held. */
static void msix_read(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size)
{
	memset(data, 0, size);
	if ((size != 4 && size != 8) || (off & (size - 1)))
		return;
	uint32_t toff = d->cfg.msix_table_off, poff = d->cfg.msix_pba_off;
	for (unsigned part = 0; part < size; part += 4) {
		uint64_t o = off + part;
		uint32_t v = 0;
		if (in_msix(d, d->cfg.msix_bar, o, toff, msix_table_len(d))) {
			const struct pci_msix_entry *e = &d->msix[(o - toff) / PCI_MSIX_ENTRY_SIZE];
			const uint32_t w[4] = { e->addr_lo, e->addr_hi, e->data, e->ctrl };
			v = w[((o - toff) % PCI_MSIX_ENTRY_SIZE) / 4];
		} else if (in_msix(d, d->cfg.msix_bar, o, poff, msix_pba_len(d))) {
			uint64_t q = d->pba[(o - poff) / 8];
			v = (uint32_t)(q >> (((o - poff) & 4) * 8));
		}
		put_le(data + part, 4, v);
	}
}

static void msix_write(struct pci_dev *d, uint64_t off, const uint8_t *data, unsigned size)
{
	if ((size != 4 && size != 8) || (off & (size - 1)))
		return;
	uint32_t toff = d->cfg.msix_table_off;
	for (unsigned part = 0; part < size; part += 4) {
		uint64_t o = off + part;
		if (!in_msix(d, d->cfg.msix_bar, o, toff, msix_table_len(d)))
			continue; /* the PBA is read-only */
		unsigned v = (unsigned)((o - toff) / PCI_MSIX_ENTRY_SIZE);
		struct pci_msix_entry *e = &d->msix[v];
		uint32_t val = get_le(data + part, 4);
		switch (((o - toff) % PCI_MSIX_ENTRY_SIZE) / 4) {
		case 0: e->addr_lo = val & ~3u; break;
		case 1: e->addr_hi = val; break;
		case 2: e->data = val; break;
		case 3:
			e->ctrl = val & PCI_MSIX_ENTRY_CTRL_MASKBIT;
			if (!e->ctrl)
				msix_flush_pending(d);
			break;
		}
	}
}

void pci_mmio_read(struct pci_bus *bus, uint64_t gpa, void *data, unsigned size)
{
	unsigned bar;
	uint64_t off;
	pthread_mutex_lock(&bus->lock);
	struct pci_dev *d = decode(bus, gpa, size, &bar, &off);
	if (!d) {
		pthread_mutex_unlock(&bus->lock);
		memset(data, 0xFF, size);
		return;
	}
	if (in_msix(d, bar, off, d->cfg.msix_table_off, msix_table_len(d)) ||
	    in_msix(d, bar, off, d->cfg.msix_pba_off, msix_pba_len(d))) {
		msix_read(d, off, data, size);
		pthread_mutex_unlock(&bus->lock);
		return;
	}
	pthread_mutex_unlock(&bus->lock);
	if (d->cfg.ops && d->cfg.ops->bar_read)
		d->cfg.ops->bar_read(d->cfg.opaque, bar, off, data, size);
	else
		memset(data, 0xFF, size);
}

void pci_mmio_write(struct pci_bus *bus, uint64_t gpa, const void *data, unsigned size)
{
	unsigned bar;
	uint64_t off;
	pthread_mutex_lock(&bus->lock);
	struct pci_dev *d = decode(bus, gpa, size, &bar, &off);
	if (!d) {
		pthread_mutex_unlock(&bus->lock);
		log_guest("pci: write to 0x%llx decoded by no BAR", (unsigned long long)gpa);
		return;
	}
	if (in_msix(d, bar, off, d->cfg.msix_table_off, msix_table_len(d)) ||
	    in_msix(d, bar, off, d->cfg.msix_pba_off, msix_pba_len(d))) {
		msix_write(d, off, data, size);
		pthread_mutex_unlock(&bus->lock);
		return;
	}
	pthread_mutex_unlock(&bus->lock);
	if (d->cfg.ops && d->cfg.ops->bar_write)
		d->cfg.ops->bar_write(d->cfg.opaque, bar, off, data, size);
}

static void window_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	pci_mmio_read(opaque, PCI_MMIO_BASE + off, data, size);
}

static void window_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	pci_mmio_write(opaque, PCI_MMIO_BASE + off, data, size);
}

static const struct io_ops window_ops = { .read = window_read, .write = window_write };

/* ---- setup ---------------------------------------------------------------- */

static int dev_alloc(struct pci_bus *bus, unsigned slot, const struct pci_dev_config *cfg,
		     struct pci_dev **out)
{
	struct pci_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->bus = bus;
	d->slot = slot;
	d->cfg = *cfg;
	if (cfg->msix_vectors) {
		d->msix_cap = PCI_CAP_START;
		d->msix = calloc(cfg->msix_vectors, sizeof(*d->msix));
		d->pba = calloc((cfg->msix_vectors + 63) / 64, sizeof(uint64_t));
		if (!d->msix || !d->pba) {
			free(d->msix);
			free(d->pba);
			free(d);
			return -ENOMEM;
		}
	}
	*out = d;
	return 0;
}

static void dev_free(struct pci_dev *d)
{
	if (!d)
		return;
	free(d->msix);
	free(d->pba);
	free(d);
}

int pci_bus_create(const struct pci_msi_sink *msi, struct pci_bus **out)
{
	struct pci_bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return -ENOMEM;
	pthread_mutex_init(&bus->lock, NULL);
	if (msi)
		bus->msi = *msi;
	bus->next_bar = PCI_MMIO_BASE;
	struct pci_dev_config hb = {
		.name = "host bridge",
		.vendor_id = PCI_HOST_BRIDGE_VENDOR,
		.device_id = PCI_HOST_BRIDGE_DEVICE,
		.class_code = 0x06, .subclass = 0x00, .prog_if = 0x00,
	};
	int ret = dev_alloc(bus, 0, &hb, &bus->dev[0]);
	if (ret < 0) {
		pthread_mutex_destroy(&bus->lock);
		free(bus);
		return ret;
	}
	dev_init_space(bus->dev[0]);
	/* A host bridge decodes memory; its command register is fixed. */
	put_le(bus->dev[0]->space + PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	memset(bus->dev[0]->wmask + PCI_COMMAND, 0, 2);
	*out = bus;
	return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	if (!bus)
		return;
	for (unsigned i = 0; i < PCI_MAX_DEVICES; i++)
		dev_free(bus->dev[i]);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

int pci_bus_register(struct pci_bus *bus, struct iobus *pio, struct iobus *mmio)
{
	int ret = iobus_register(pio, PCI_CONFIG_ADDRESS, PCI_CONFIG_PORTS_LEN,
				 &pci_config_io_ops, bus, "pci-config");
	if (ret < 0)
		return ret;
	return iobus_register(mmio, PCI_MMIO_BASE, PCI_MMIO_SIZE, &window_ops, bus,
			      "pci-mmio");
}

void pci_bus_set_cf9(struct pci_bus *bus, const struct io_ops *ops, void *opaque)
{
	bus->cf9_ops = ops;
	bus->cf9_opaque = opaque;
}

static int check_template(const struct pci_dev_config *c)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t sz = c->bars[i].size;
		if (!sz)
			continue;
		if (sz < 4096 || (sz & (sz - 1)) || sz > PCI_MMIO_SIZE)
			return -EINVAL;
		if (c->bars[i].flags & PCI_BAR_MEM64) {
			if (i == PCI_NUM_BARS - 1 || c->bars[i + 1].size)
				return -EINVAL;
			i++;
		}
	}
	if (c->msix_vectors) {
		if (c->msix_vectors > PCI_MSIX_MAX_VECTORS || c->msix_bar >= PCI_NUM_BARS ||
		    !c->bars[c->msix_bar].size || (c->msix_table_off & 7) || (c->msix_pba_off & 7))
			return -EINVAL;
		uint64_t sz = c->bars[c->msix_bar].size;
		uint64_t tl = (uint64_t)c->msix_vectors * PCI_MSIX_ENTRY_SIZE;
		uint64_t pl = ((c->msix_vectors + 63) / 64) * 8ull;
		if (c->msix_table_off > sz || tl > sz - c->msix_table_off ||
		    c->msix_pba_off > sz || pl > sz - c->msix_pba_off)
			return -EINVAL;
		if (c->msix_table_off < c->msix_pba_off + pl && c->msix_pba_off < c->msix_table_off + tl)
			return -EINVAL;
	}
	return 0;
}

int pci_dev_add(struct pci_bus *bus, const struct pci_dev_config *cfg, struct pci_dev **out)
{
	int ret = check_template(cfg);
	if (ret < 0)
		return ret;
	unsigned slot = 1;
	while (slot < PCI_MAX_DEVICES && bus->dev[slot])
		slot++;
	if (slot == PCI_MAX_DEVICES)
		return -ENOSPC;
	/* Firmware placement: naturally aligned, upwards from the base. */
	uint64_t cur = bus->next_bar, addr[PCI_NUM_BARS] = { 0 };
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t sz = cfg->bars[i].size;
		if (!sz)
			continue;
		cur = (cur + sz - 1) & ~(sz - 1);
		if (cur + sz > PCI_MMIO_BASE + PCI_MMIO_SIZE)
			return -ENOSPC;
		addr[i] = cur;
		cur += sz;
	}
	struct pci_dev *d;
	ret = dev_alloc(bus, slot, cfg, &d);
	if (ret < 0)
		return ret;
	memcpy(d->bar_initial, addr, sizeof(addr));
	dev_init_space(d);
	pthread_mutex_lock(&bus->lock);
	bus->dev[slot] = d;
	bus->next_bar = cur;
	pthread_mutex_unlock(&bus->lock);
	log_debug("pci: 00:%02x.0 %s", slot, cfg->name ? cfg->name : "");
	*out = d;
	return 0;
}

unsigned pci_dev_slot(const struct pci_dev *d)
{
	return d->slot;
}

uint64_t pci_dev_bar_addr(struct pci_dev *d, unsigned bar)
{
	if (bar >= PCI_NUM_BARS)
		return 0;
	pthread_mutex_lock(&d->bus->lock);
	uint64_t a = d->bar_addr[bar];
	pthread_mutex_unlock(&d->bus->lock);
	return a;
}

bool pci_dev_bus_master(struct pci_dev *d)
{
	pthread_mutex_lock(&d->bus->lock);
	bool r = cmd(d) & PCI_COMMAND_MASTER;
	pthread_mutex_unlock(&d->bus->lock);
	return r;
}

bool pci_dev_msix_enabled(struct pci_dev *d)
{
	pthread_mutex_lock(&d->bus->lock);
	bool r = msix_flags(d) & PCI_MSIX_FLAGS_ENABLE;
	pthread_mutex_unlock(&d->bus->lock);
	return r;
}

void pci_bus_reset(struct pci_bus *bus)
{
	pthread_mutex_lock(&bus->lock);
	bus->config_address = 0;
	for (unsigned s = 1; s < PCI_MAX_DEVICES; s++)
		if (bus->dev[s])
			dev_init_space(bus->dev[s]);
	pthread_mutex_unlock(&bus->lock);
}

void pci_bus_build_dsdt(struct pci_bus *bus, struct aml *a)
{
	(void)bus;
	aml_scope(a, "\\_SB");
	aml_device(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A03");
	aml_name_int(a, "_ADR", 0);
	aml_name_int(a, "_BBN", 0);
	aml_name_int(a, "_UID", 0);
	aml_name(a, "_CRS");
	aml_restemplate(a);
	aml_res_word_bus_number(a, 0, 0);
	aml_res_io(a, PCI_CONFIG_ADDRESS, PCI_CONFIG_ADDRESS, 1, PCI_CONFIG_PORTS_LEN);
	struct aml_addr io = {
		.space = AML_ADDR_SPACE_IO,
		.flags = AML_ADDR_MIN_FIXED | AML_ADDR_MAX_FIXED,
		.type_flags = 3, /* entire range */
		.min = PCI_IO_WINDOW_BASE,
		.max = PCI_IO_WINDOW_END,
		.len = PCI_IO_WINDOW_END - PCI_IO_WINDOW_BASE + 1,
	};
	aml_res_address(a, 16, &io);
	aml_res_dword_memory(a, (uint32_t)PCI_MMIO_BASE, (uint32_t)PCI_MMIO_SIZE,
			     AML_MEM_RW | AML_MEM_NON_CACHEABLE);
	aml_end(a); /* ResourceTemplate */
	aml_end(a); /* Device */
	aml_end(a); /* Scope */
}
