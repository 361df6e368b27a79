/*
 * Unit tests for the PCI bus (src/dev/pci.c): configuration mechanism #1
 * through ports 0xCF8/0xCFC (enable bit, byte/word/dword data accesses,
 * absent devices), the host bridge, BAR sizing and moving with MMIO
 * dispatch following the BAR, the command register's memory enable,
 * read-only fields, the capability chain, MSI-X masking (function and
 * vector), pending bits and delivery through a recorded MSI callback,
 * port 0xCF9 forwarding and the DSDT fragment.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/iobus.h"
#include "dev/pci.h"
#include "x86/aml.h"

struct msi_rec {
	uint64_t addr;
	uint32_t data;
};
static struct msi_rec msis[64];
static unsigned nmsi;

static void record_msi(void *opaque, uint64_t addr, uint32_t data)
{
	(void)opaque;
	if (nmsi < 64)
		msis[nmsi] = (struct msi_rec){ addr, data };
	nmsi++;
}

static uint64_t last_off;
static unsigned last_bar, nwrites;
static uint32_t last_val;

static void dev_read(void *opaque, unsigned bar, uint64_t off, void *data, unsigned size)
{
	(void)opaque;
	uint32_t v = 0xA0000000u | (bar << 16) | (uint32_t)off;
	memcpy(data, &v, size > 4 ? 4 : size);
}

static void dev_write(void *opaque, unsigned bar, uint64_t off, const void *data, unsigned size)
{
	(void)opaque;
	last_bar = bar;
	last_off = off;
	last_val = 0;
	memcpy(&last_val, data, size > 4 ? 4 : size);
	nwrites++;
}

static const struct pci_dev_ops ops = { dev_read, dev_write };

static struct iobus pio, mmio;
static struct pci_bus *bus;
static struct pci_dev *dev;

static int setup(void **state)
{
	(void)state;
	memset(&pio, 0, sizeof(pio));
	memset(&mmio, 0, sizeof(mmio));
	nmsi = 0;
	nwrites = 0;
	struct pci_msi_sink sink = { record_msi, NULL };
	assert_int_equal(pci_bus_create(&sink, &bus), 0);
	assert_int_equal(pci_bus_register(bus, &pio, &mmio), 0);
	struct pci_dev_config c = {
		.name = "test", .vendor_id = 0x1234, .device_id = 0x5678, .revision = 2,
		.class_code = 0x01, .subclass = 0x08, .prog_if = 0x02,
		.bars = { [0] = { 0x4000, PCI_BAR_MEM64 }, [2] = { 0x1000, 0 },
			  [3] = { 0x2000, PCI_BAR_PREFETCH } },
		.msix_vectors = 4, .msix_bar = 0, .msix_table_off = 0x2000,
		.msix_pba_off = 0x3000, .ops = &ops,
	};
	assert_int_equal(pci_dev_add(bus, &c, &dev), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pci_bus_destroy(bus);
	return 0;
}

static void out32(uint16_t port, uint32_t v) { iobus_write(&pio, port, &v, 4); }
static void out16(uint16_t port, uint16_t v) { iobus_write(&pio, port, &v, 2); }
static void out8(uint16_t port, uint8_t v) { iobus_write(&pio, port, &v, 1); }
static uint32_t in32(uint16_t port) { uint32_t v = 0; iobus_read(&pio, port, &v, 4); return v; }
static uint16_t in16(uint16_t port) { uint16_t v = 0; iobus_read(&pio, port, &v, 2); return v; }
static uint8_t in8(uint16_t port) { uint8_t v = 0; iobus_read(&pio, port, &v, 1); return v; }

static uint32_t cfg_addr(unsigned slot, unsigned reg)
{
	return PCI_CONFIG_ENABLE | slot << 11 | (reg & 0xFC);
}

static uint32_t cfg32(unsigned slot, unsigned reg)
{
	out32(0xCF8, cfg_addr(slot, reg));
	return in32(0xCFC);
}

static void cfg32w(unsigned slot, unsigned reg, uint32_t v)
{
	out32(0xCF8, cfg_addr(slot, reg));
	out32(0xCFC, v);
}

static void test_mechanism1(void **state)
{
	(void)state;
	/* The type-1 probe Linux does: the address latch reads back. */
	out32(0xCF8, 0x80000000u);
	assert_int_equal(in32(0xCF8), 0x80000000u);
	out32(0xCF8, 0xFFFFFFFFu);
	assert_int_equal(in32(0xCF8), 0x80FFFFFCu);
	/* Host bridge at 00.0. */
	assert_int_equal(cfg32(0, 0), PCI_HOST_BRIDGE_DEVICE << 16 | PCI_HOST_BRIDGE_VENDOR);
	assert_int_equal(cfg32(0, 8) >> 8, 0x060000);
	/* The device at 00.1 (device number 1). */
	assert_int_equal(pci_dev_slot(dev), 1);
	assert_int_equal(cfg32(1, 0), 0x56781234u);
	assert_int_equal(cfg32(1, 8), 0x01080202u);
	/* Byte and word data accesses pick the right bytes. */
	out32(0xCF8, cfg_addr(1, 0));
	assert_int_equal(in8(0xCFD), 0x12);
	assert_int_equal(in16(0xCFE), 0x5678);
	out32(0xCF8, cfg_addr(1, 8));
	assert_int_equal(in8(0xCFF), 0x01);
	/* Without the enable bit, data reads float. */
	out32(0xCF8, cfg_addr(1, 0) & ~PCI_CONFIG_ENABLE);
	assert_int_equal(in32(0xCFC), 0xFFFFFFFFu);
	/* Absent devices, functions and buses read all ones. */
	assert_int_equal(cfg32(7, 0), 0xFFFFFFFFu);
	out32(0xCF8, PCI_CONFIG_ENABLE | 1 << 11 | 1 << 8);
	assert_int_equal(in32(0xCFC), 0xFFFFFFFFu);
	out32(0xCF8, PCI_CONFIG_ENABLE | 1 << 16 | 1 << 11);
	assert_int_equal(in32(0xCFC), 0xFFFFFFFFu);
	/* Writes to absent functions do nothing (and do not crash). */
	out32(0xCFC, 0);
	/* Misaligned data access (word at 0xCFD) is ignored. */
	out32(0xCF8, cfg_addr(1, 0));
	assert_int_equal(in16(0xCFD), 0xFFFF);
}

static void test_readonly_fields(void **state)
{
	(void)state;
	cfg32w(1, 0, 0);
	assert_int_equal(cfg32(1, 0), 0x56781234u);
	cfg32w(1, 8, 0);
	assert_int_equal(cfg32(1, 8), 0x01080202u);
	/* Command: only implemented bits stick; I/O space has no BAR. */
	out32(0xCF8, cfg_addr(1, PCI_COMMAND));
	out16(0xCFC, 0xFFFF);
	assert_int_equal(in16(0xCFC), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			 PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	assert_true(pci_dev_bus_master(dev));
	/* Status is read-only here (capability list bit set). */
	out16(0xCFE, 0);
	assert_int_equal(in16(0xCFE), PCI_STATUS_CAP_LIST);
	/* Interrupt line is scratch, pin reads 0 (no INTx). */
	cfg32w(1, PCI_INTERRUPT_LINE, 0xFFFFFFFF);
	assert_int_equal(cfg32(1, PCI_INTERRUPT_LINE), 0xFF);
	/* No expansion ROM: sizing returns 0. */
	cfg32w(1, PCI_ROM_ADDRESS, 0xFFFFFFFF);
	assert_int_equal(cfg32(1, PCI_ROM_ADDRESS), 0);
	/* Host bridge command is fixed. */
	cfg32w(0, PCI_COMMAND, 0);
	assert_int_equal(cfg32(0, PCI_COMMAND) & 0xFFFF, PCI_COMMAND_MEMORY);
}

static void test_bar_sizing(void **state)
{
	(void)state;
	uint32_t b0 = cfg32(1, 0x10), b1 = cfg32(1, 0x14);
	assert_int_equal(b0 & 0xF, PCI_BASE_ADDRESS_MEM_TYPE_64);
	uint64_t addr = ((uint64_t)b1 << 32) | (b0 & ~0xFu);
	assert_true(addr >= PCI_MMIO_BASE && addr + 0x4000 <= PCI_MMIO_BASE + PCI_MMIO_SIZE);
	assert_int_equal(addr & 0x3FFF, 0);
	assert_int_equal(addr, pci_dev_bar_addr(dev, 0));
	/* Sizing: all ones then read the mask. */
	cfg32w(1, 0x10, 0xFFFFFFFF);
	cfg32w(1, 0x14, 0xFFFFFFFF);
	assert_int_equal(cfg32(1, 0x10), 0xFFFFC000u | PCI_BASE_ADDRESS_MEM_TYPE_64);
	assert_int_equal(cfg32(1, 0x14), 0xFFFFFFFFu);
	cfg32w(1, 0x10, b0);
	cfg32w(1, 0x14, b1);
	assert_int_equal(pci_dev_bar_addr(dev, 0), addr);
	/* 32-bit BAR 2 and prefetchable BAR 3. */
	cfg32w(1, 0x18, 0xFFFFFFFF);
	assert_int_equal(cfg32(1, 0x18), 0xFFFFF000u);
	cfg32w(1, 0x1C, 0xFFFFFFFF);
	assert_int_equal(cfg32(1, 0x1C), 0xFFFFE000u | PCI_BASE_ADDRESS_MEM_PREFETCH);
	/* Unimplemented BARs read 0 even after all ones. */
	cfg32w(1, 0x20, 0xFFFFFFFF);
	assert_int_equal(cfg32(1, 0x20), 0);
	/* A byte write to a BAR merges. */
	out32(0xCF8, cfg_addr(1, 0x18));
	out32(0xCFC, 0xC8000000u);
	out8(0xCFF, 0xC9);
	assert_int_equal(in32(0xCFC), 0xC9000000u);
}

static void test_bar_decode_and_move(void **state)
{
	(void)state;
	uint64_t a = pci_dev_bar_addr(dev, 0);
	uint32_t v = 0;
	/* Memory decoding is off until COMMAND.MSE. */
	assert_true(iobus_read(&mmio, a + 0x10, &v, 4));
	assert_int_equal(v, 0xFFFFFFFFu);
	cfg32w(1, PCI_COMMAND, PCI_COMMAND_MEMORY);
	iobus_read(&mmio, a + 0x10, &v, 4);
	assert_int_equal(v, 0xA0000010u);
	uint32_t w = 0x55;
	iobus_write(&mmio, a + 0x1008, &w, 4);
	assert_int_equal(nwrites, 1);
	assert_int_equal(last_bar, 0);
	assert_int_equal(last_off, 0x1008);
	assert_int_equal(last_val, 0x55);
	/* Move BAR 0 to 0xD0000000: the old address stops decoding. */
	cfg32w(1, 0x10, 0xD0000000u | PCI_BASE_ADDRESS_MEM_TYPE_64);
	cfg32w(1, 0x14, 0);
	assert_int_equal(pci_dev_bar_addr(dev, 0), 0xD0000000ull);
	iobus_read(&mmio, a + 0x10, &v, 4);
	assert_int_equal(v, 0xFFFFFFFFu);
	iobus_read(&mmio, 0xD0000010ull, &v, 4);
	assert_int_equal(v, 0xA0000010u);
	/* BAR 2. */
	uint64_t a2 = pci_dev_bar_addr(dev, 2);
	iobus_read(&mmio, a2 + 4, &v, 4);
	assert_int_equal(v, 0xA0020004u);
	/* An access straddling the end of a BAR goes nowhere. */
	uint64_t q = 0;
	pci_mmio_read(bus, a2 + 0xFFC, &q, 8);
	assert_int_equal(q, ~0ull);
	/* Reset restores the firmware placement and disables decoding. */
	pci_bus_reset(bus);
	assert_int_equal(pci_dev_bar_addr(dev, 0), a);
	assert_int_equal(cfg32(1, PCI_COMMAND) & 0xFFFF, 0);
}

static void test_capabilities(void **state)
{
	(void)state;
	assert_true(cfg32(1, PCI_COMMAND) >> 16 & PCI_STATUS_CAP_LIST);
	unsigned p = cfg32(1, PCI_CAPABILITY_LIST) & 0xFF;
	assert_int_equal(p, PCI_CAP_START);
	uint32_t hdr = cfg32(1, p);
	assert_int_equal(hdr & 0xFF, PCI_CAP_ID_MSIX);
	assert_int_equal((hdr >> 8) & 0xFF, 0); /* last */
	assert_int_equal((hdr >> 16) & PCI_MSIX_FLAGS_QSIZE, 3); /* 4 vectors */
	assert_int_equal(cfg32(1, p + 4), 0x2000);
	assert_int_equal(cfg32(1, p + 8), 0x3000);
	/* Table size and BIR are read-only; enable/mask are writable. */
	cfg32w(1, p, 0xFFFFFFFF);
	hdr = cfg32(1, p);
	assert_int_equal(hdr >> 16, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL | 3);
	cfg32w(1, p + 4, 0xFFFFFFFF);
	assert_int_equal(cfg32(1, p + 4), 0x2000);
	assert_true(pci_dev_msix_enabled(dev));
}

static void msix_entry(uint64_t bar, unsigned v, uint64_t addr, uint32_t data, uint32_t ctrl)
{
	uint32_t w[4] = { (uint32_t)addr, (uint32_t)(addr >> 32), data, ctrl };
	for (unsigned i = 0; i < 4; i++)
		iobus_write(&mmio, bar + 0x2000 + v * 16 + i * 4, &w[i], 4);
}

static uint64_t pba(uint64_t bar)
{
	uint64_t v = 0;
	iobus_read(&mmio, bar + 0x3000, &v, 8);
	return v;
}

static void test_msix(void **state)
{
	(void)state;
	uint64_t bar = pci_dev_bar_addr(dev, 0);
	unsigned p = PCI_CAP_START;
	cfg32w(1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	/* Entries start masked; the table never reaches the device. */
	uint32_t v = 0;
	iobus_read(&mmio, bar + 0x2000 + 12, &v, 4);
	assert_int_equal(v, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	msix_entry(bar, 1, 0xFEE00000ull, 0x4041, 0);
	msix_entry(bar, 2, 0xFEE01000ull, 0x4042, 1);
	assert_int_equal(nwrites, 0);
	uint64_t q = 0;
	iobus_read(&mmio, bar + 0x2010, &q, 8);
	assert_int_equal(q, 0xFEE00000ull);
	/* MSI-X disabled: notifications are dropped, not pending. */
	pci_msix_notify(dev, 1);
	assert_int_equal(nmsi, 0);
	assert_int_equal(pba(bar), 0);
	/* Enabled with the function masked: pending. */
	cfg32w(1, p, (uint32_t)(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) << 16);
	pci_msix_notify(dev, 1);
	assert_int_equal(nmsi, 0);
	assert_int_equal(pba(bar), 2);
	/* The PBA is read-only. */
	uint64_t zero = 0;
	iobus_write(&mmio, bar + 0x3000, &zero, 8);
	assert_int_equal(pba(bar), 2);
	/* Unmask the function: the pending vector is delivered. */
	cfg32w(1, p, (uint32_t)PCI_MSIX_FLAGS_ENABLE << 16);
	assert_int_equal(nmsi, 1);
	assert_int_equal(msis[0].addr, 0xFEE00000ull);
	assert_int_equal(msis[0].data, 0x4041);
	assert_int_equal(pba(bar), 0);
	/* Direct delivery. */
	pci_msix_notify(dev, 1);
	assert_int_equal(nmsi, 2);
	/* A masked vector goes pending; unmasking it delivers. */
	pci_msix_notify(dev, 2);
	assert_int_equal(nmsi, 2);
	assert_int_equal(pba(bar), 4);
	uint32_t c0 = 0;
	iobus_write(&mmio, bar + 0x2000 + 2 * 16 + 12, &c0, 4);
	assert_int_equal(nmsi, 3);
	assert_int_equal(msis[2].data, 0x4042);
	assert_int_equal(pba(bar), 0);
	/* Out-of-range vectors are ignored. */
	pci_msix_notify(dev, 4);
	pci_msix_notify(dev, 1000);
	assert_int_equal(nmsi, 3);
	/* Table writes outside the table, or misaligned, are ignored. */
	uint32_t junk = 0x1234;
	iobus_write(&mmio, bar + 0x2000 + 2 * 16 + 9, &junk, 4);
	iobus_read(&mmio, bar + 0x2000 + 2 * 16 + 8, &v, 4);
	assert_int_equal(v, 0x4042);
}

static uint8_t cf9_val;
static void cf9_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	(void)opaque;
	(void)off;
	(void)size;
	cf9_val = *(const uint8_t *)data;
}
static void cf9_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	(void)opaque;
	(void)off;
	(void)size;
	*(uint8_t *)data = 0x42;
}

static void test_cf9(void **state)
{
	(void)state;
	static const struct io_ops o = { cf9_read, cf9_write };
	pci_bus_set_cf9(bus, &o, NULL);
	out8(0xCF9, 0x06);
	assert_int_equal(cf9_val, 0x06);
	assert_int_equal(in8(0xCF9), 0x42);
	/* A dword at 0xCF8 is still CONFIG_ADDRESS. */
	out32(0xCF8, 0x80000800u);
	assert_int_equal(in32(0xCF8), 0x80000800u);
	assert_int_equal(cf9_val, 0x06);
}

static void test_bad_templates(void **state)
{
	(void)state;
	struct pci_dev *d;
	struct pci_dev_config c = { .bars = { [0] = { 0x3000, 0 } } };
	assert_int_equal(pci_dev_add(bus, &c, &d), -EINVAL);
	c = (struct pci_dev_config){ .bars = { [5] = { 0x1000, PCI_BAR_MEM64 } } };
	assert_int_equal(pci_dev_add(bus, &c, &d), -EINVAL);
	c = (struct pci_dev_config){ .bars = { [0] = { 0x1000, 0 } }, .msix_vectors = 300,
				     .msix_table_off = 0, .msix_pba_off = 0x800 };
	assert_int_equal(pci_dev_add(bus, &c, &d), -EINVAL);
	c = (struct pci_dev_config){ .bars = { [0] = { 0x1000, 0 } } };
	for (unsigned i = 2; i < PCI_MAX_DEVICES; i++)
		assert_int_equal(pci_dev_add(bus, &c, &d), 0);
	assert_int_equal(pci_dev_add(bus, &c, &d), -ENOSPC);
}

static void test_dsdt(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	pci_bus_build_dsdt(bus, &a);
	assert_int_equal(aml_finish(&a), 0);
	uint32_t pnp0a03;
	assert_int_equal(aml_eisaid_encode("PNP0A03", &pnp0a03), 0);
	assert_non_null(memmem(a.buf, a.len, "PCI0", 4));
	assert_non_null(memmem(a.buf, a.len, &pnp0a03, 4));
	assert_non_null(memmem(a.buf, a.len, "_BBN", 4));
	/* The MMIO window's DWordMemory: min and length. */
	uint32_t base = (uint32_t)PCI_MMIO_BASE, len = (uint32_t)PCI_MMIO_SIZE;
	assert_non_null(memmem(a.buf, a.len, &base, 4));
	assert_non_null(memmem(a.buf, a.len, &len, 4));
	aml_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mechanism1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_decode_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cf9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_templates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
