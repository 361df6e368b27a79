/*
 * A conventional PCI bus 0 (PCI Local Bus 3.0 chapter 6, configuration
 * space; PCI 3.0 section 6.8.2, MSI-X) reached through configuration
 * mechanism #1 (PCI 3.0 section 3.2.2.3.2: CONFIG_ADDRESS at port 0xCF8,
 * dword only, CONFIG_DATA at 0xCFC-0xCFF, byte/word/dword). There is no
 * MCFG/ECAM: functions have the 256-byte conventional space. Device 00.0 is
 * a host bridge; endpoints register a configuration template (IDs, class,
 * BARs, an optional MSI-X capability) and callbacks for their BAR accesses.
 *
 * hvmm acts as the firmware: each memory BAR is pre-assigned inside the
 * bus's MMIO window (PCI_MMIO_BASE .. +PCI_MMIO_SIZE, inside the 32-bit
 * hole) and memory decoding is left disabled until the guest sets
 * COMMAND.MSE (Linux does, after possibly moving the BAR). The bus registers
 * the whole window once on the MMIO iobus and dispatches to whichever BAR
 * decodes the address, so the guest may move BARs freely inside the window;
 * a BAR moved outside it is simply not reachable. MSI-X tables and PBAs are
 * emulated here; a device raises vector N with pci_msix_notify(), which
 * honours the function mask, per-vector masks and pending bits, and
 * delivers the message through the VM's MSI callback (KVM_SIGNAL_MSI).
 * There is no INTx: Interrupt Pin reads 0 and devices need MSI-X.
 *
 * Port 0xCF9 sits inside the CONFIG_ADDRESS dword; on PIIX/ICH chipsets it
 * is the Reset Control Register, decoded for byte accesses only. The bus
 * owns ports 0xCF8-0xCFF and forwards byte accesses to 0xCF9 to the
 * handler set with pci_bus_set_cf9().
 *
 * Threads and locks: one mutex per bus protects configuration space, BAR
 * addresses and MSI-X state. Device BAR callbacks are called WITHOUT it
 * (from vCPU threads; a device may call pci_msix_notify() from them and
 * from any other thread). The MSI callback is called with the bus lock held
 * and must not call back into the bus. Lock order: device locks -> bus lock.
 */
#ifndef HVMM_DEV_PCI_H
#define HVMM_DEV_PCI_H

#include <stdbool.h>
#include <stdint.h>

struct aml;
struct iobus;
struct io_ops;

/* Ports of configuration mechanism #1. */
#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC
#define PCI_CONFIG_PORTS_LEN 8
#define PCI_CONFIG_ENABLE 0x80000000u

/* The MMIO window the bus decodes (and reports in _CRS). */
#define PCI_MMIO_BASE 0xC0000000ULL
#define PCI_MMIO_SIZE 0x20000000ULL
/* The I/O window reported in _CRS (no I/O BARs are implemented). */
#define PCI_IO_WINDOW_BASE 0x1000
#define PCI_IO_WINDOW_END 0xFFFF

#define PCI_MAX_DEVICES 32 /* device numbers on bus 0, function 0 only */
#define PCI_NUM_BARS 6
#define PCI_CFG_SIZE 256

/* Configuration header registers (type 0), spec names. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0A
#define PCI_CACHE_LINE_SIZE 0x0C
#define PCI_LATENCY_TIMER 0x0D
#define PCI_HEADER_TYPE 0x0E
#define PCI_BASE_ADDRESS_0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2C
#define PCI_SUBSYSTEM_ID 0x2E
#define PCI_ROM_ADDRESS 0x30
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3C
#define PCI_INTERRUPT_PIN 0x3D
#define PCI_CAP_START 0x40

#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_PARITY 0x0040
#define PCI_COMMAND_SERR 0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_CAP_LIST 0x0010

#define PCI_BASE_ADDRESS_MEM_TYPE_64 0x04
#define PCI_BASE_ADDRESS_MEM_PREFETCH 0x08

#define PCI_CAP_ID_MSIX 0x11
/* MSI-X capability layout (offsets from the capability). */
#define PCI_MSIX_FLAGS 2
#define PCI_MSIX_TABLE 4
#define PCI_MSIX_PBA 8
#define PCI_MSIX_CAP_SIZE 12
#define PCI_MSIX_FLAGS_QSIZE 0x07FF
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_ENTRY_LOWER_ADDR 0
#define PCI_MSIX_ENTRY_UPPER_ADDR 4
#define PCI_MSIX_ENTRY_DATA 8
#define PCI_MSIX_ENTRY_VECTOR_CTRL 12
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 1
#define PCI_MSIX_MAX_VECTORS 2048

/* Host bridge identity: Microsoft's vendor ID, a host bridge class. */
#define PCI_HOST_BRIDGE_VENDOR 0x1414
#define PCI_HOST_BRIDGE_DEVICE 0x0001

/* A BAR in a template; size 0 = unused. */
#define PCI_BAR_MEM64 0x1    /* 64-bit: takes this BAR and the next */
#define PCI_BAR_PREFETCH 0x2 /* prefetchable */

struct pci_bar_desc {
	uint64_t size;  /* power of two, >= 4096; 0 = not implemented */
	unsigned flags; /* PCI_BAR_* */
};

/* BAR accesses: off is BAR-relative, size 1/2/4/8, data little-endian. */
struct pci_dev_ops {
	void (*bar_read)(void *opaque, unsigned bar, uint64_t off, void *data,
			 unsigned size);
	void (*bar_write)(void *opaque, unsigned bar, uint64_t off,
			  const void *data, unsigned size);
};

struct pci_dev_config {
	const char *name;
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint8_t revision;
	uint8_t class_code, subclass, prog_if;
	struct pci_bar_desc bars[PCI_NUM_BARS];
	/* MSI-X: 0 = no capability; else vectors (1..2048), the BAR holding
	 * the table (at msix_table_off) and the PBA (at msix_pba_off), both
	 * 8-byte aligned and inside the BAR. Accesses there never reach the
	 * device's callbacks. */
	unsigned msix_vectors;
	unsigned msix_bar;
	uint32_t msix_table_off, msix_pba_off;
	const struct pci_dev_ops *ops;
	void *opaque;
};

/* How the bus delivers an MSI: the VM's KVM_SIGNAL_MSI. */
struct pci_msi_sink {
	void (*signal)(void *opaque, uint64_t addr, uint32_t data);
	void *opaque;
};

struct pci_bus;
struct pci_dev;

/* A bus with its host bridge at 00.0. msi is copied. 0 or -errno. */
int pci_bus_create(const struct pci_msi_sink *msi, struct pci_bus **out);
/* Frees the bus and its functions (not the devices' opaque state). */
void pci_bus_destroy(struct pci_bus *bus);

/*
 * Registers ports 0xCF8-0xCFF on pio and the MMIO window on mmio. Setup
 * time only. Returns iobus_register()'s result.
 */
int pci_bus_register(struct pci_bus *bus, struct iobus *pio, struct iobus *mmio);

/* Byte accesses to port 0xCF9 go to ops (off 0) instead of being ignored. */
void pci_bus_set_cf9(struct pci_bus *bus, const struct io_ops *ops, void *opaque);

/*
 * Adds a function at the next free device number (1..31), pre-assigning its
 * BARs in the window. Setup time only. 0, -EINVAL (bad template), -ENOSPC
 * (no device number or window space left) or -ENOMEM.
 */
int pci_dev_add(struct pci_bus *bus, const struct pci_dev_config *cfg,
		struct pci_dev **out);

/* Device number on bus 0 (devfn >> 3). */
unsigned pci_dev_slot(const struct pci_dev *d);
/* Current address of a BAR (low BAR of a 64-bit pair). */
uint64_t pci_dev_bar_addr(struct pci_dev *d, unsigned bar);
/* COMMAND.BME: the device may access guest memory. */
bool pci_dev_bus_master(struct pci_dev *d);
bool pci_dev_msix_enabled(struct pci_dev *d);

/*
 * Signals MSI-X vector `vector`. Delivered now when MSI-X is enabled and
 * neither the function nor the vector is masked; set pending in the PBA
 * when masked (delivered on unmask); dropped when MSI-X is disabled or the
 * vector is out of range. Any thread.
 */
void pci_msix_notify(struct pci_dev *d, unsigned vector);

/* Bus reset: every function's command register, BARs and MSI-X state. */
void pci_bus_reset(struct pci_bus *bus);

/*
 * Direct configuration/MMIO accesses (what the port and MMIO handlers do),
 * for tests: devfn = device << 3 | function, reg any offset < 256 aligned
 * to size.
 */
uint32_t pci_config_read(struct pci_bus *bus, unsigned devfn, unsigned reg,
			 unsigned size);
void pci_config_write(struct pci_bus *bus, unsigned devfn, unsigned reg,
		      unsigned size, uint32_t val);
void pci_mmio_read(struct pci_bus *bus, uint64_t gpa, void *data, unsigned size);
void pci_mmio_write(struct pci_bus *bus, uint64_t gpa, const void *data,
		    unsigned size);
/* The port handlers at 0xCF8 (off 0..7). */
extern const struct io_ops pci_config_io_ops;

/*
 * Emits Device (\_SB.PCI0): PNP0A03, _BBN 0, _UID 0, _CRS with bus 0-0,
 * I/O 0xCF8-0xCFF (consumer), the I/O window and the MMIO window. Call at
 * the root of a definition block (it opens its own Scope).
 */
void pci_bus_build_dsdt(struct pci_bus *bus, struct aml *a);

#endif
