/*
 * NVMe 1.4 controller (NVM Express Base Specification 1.4c) on the hvmm PCI
 * bus: class 01/08/02, BAR0 (64-bit, 16 KiB) holds the controller registers
 * (section 3.1), the doorbells at 0x1000 (CAP.DSTRD = 0) and the MSI-X
 * table (0x2000) and PBA (0x3000). One namespace per attached disk (nsid
 * 1..n), 512-byte LBAs. Admin: Identify, Create/Delete I/O SQ/CQ, Get/Set
 * Features, Get Log Page, Abort, Asynchronous Event Request. I/O: Read,
 * Write (FUA), Flush, Dataset Management (deallocate), Write Zeroes, with
 * PRPs (no SGLs: PSDT != 0 is rejected).
 *
 * Threads: the BAR0 MMIO handler runs on vCPU threads. It only records
 * register values and doorbells and wakes a worker through an eventfd; it
 * never touches guest memory or disks. One admin worker thread runs the
 * admin queue and every controller state change (CC.EN, CC.SHN, reset) and
 * posts asynchronous events. Each I/O completion queue has its own worker
 * thread (Linux creates one SQ/CQ pair per CPU, so that is one per pair):
 * it fetches the SQEs of the SQs bound to its CQ, maps their PRPs to iovecs
 * pointing into guest RAM (no copy, no per-I/O allocation: each SQ owns one
 * request slot per entry), submits them to its own struct disk_queue per
 * namespace, and on completion posts CQEs and raises the CQ's MSI-X vector.
 *
 * Locks: n->lock (registers, queue tables, async events) is held briefly by
 * doorbell writes and the admin worker; cq->lock guards the list of SQs a
 * CQ worker serves. Order: n->lock -> cq->lock -> PCI bus lock. Workers
 * never hold n->lock while doing I/O.
 *
 * With cfg->manual no threads are created: the caller drives everything
 * with nvme_poll() (unit tests and the fuzzer).
 */
#ifndef HVMM_DEV_NVME_H
#define HVMM_DEV_NVME_H

#include <stdbool.h>
#include <stdint.h>

struct disk;
struct gmem;
struct nvme;
struct pci_bus;
struct pci_dev;

#define NVME_MAX_NAMESPACES 16
#define NVME_MAX_IO_QUEUES 64   /* I/O SQs and CQs each */
#define NVME_BAR0_SIZE 0x4000
#define NVME_MSIX_TABLE_OFF 0x2000
#define NVME_MSIX_PBA_OFF 0x3000

struct nvme_config {
	const char *serial;   /* Identify SN, up to 20 chars; NULL = "hvmm-nvme" */
	unsigned io_queues;   /* I/O queue pairs offered; 0 = NVME_MAX_IO_QUEUES */
	bool manual;          /* no threads; run with nvme_poll() */
	bool no_dbbuf;        /* no Doorbell Buffer Config (OACS bit 8 clear) */
	/* With shadow doorbells, how long a CQ's worker polls them after a
	 * batch before it publishes EventIdx and sleeps: 0 = the default
	 * (NVME_DBBUF_POLL_NS_DEFAULT), negative = never poll. */
	int dbbuf_poll_ns;
};
#define NVME_DBBUF_POLL_NS_DEFAULT 50000

/*
 * Creates a controller on bus with one namespace per disk (disks[i] is
 * nsid i+1; 1..NVME_MAX_NAMESPACES of them; not owned, must outlive the
 * controller). mem is the guest RAM. 0 or -errno (-EINVAL for a bad
 * configuration, pci_dev_add()'s errors).
 */
int nvme_create(struct pci_bus *bus, struct gmem *mem, struct disk **disks,
		unsigned ndisks, const struct nvme_config *cfg, struct nvme **out);

/*
 * Stops the workers (waiting for in-flight disk I/O) and frees the
 * controller. The vCPUs must be stopped. The PCI function stays on the bus
 * (inert: its BAR callbacks must not be called any more).
 */
void nvme_destroy(struct nvme *n);

/* A controller reset as CC.EN 1 -> 0 does, done synchronously (VM reset). */
void nvme_reset(struct nvme *n);

/*
 * Manual mode: runs the admin queue, state changes and every I/O queue
 * until nothing more can progress. Returns true when anything happened.
 */
bool nvme_poll(struct nvme *n);

struct pci_dev *nvme_pci_dev(struct nvme *n);

/* BAR0 accesses (what the PCI bus calls), for tests. */
void nvme_bar0_read(struct nvme *n, uint64_t off, void *data, unsigned size);
void nvme_bar0_write(struct nvme *n, uint64_t off, const void *data, unsigned size);

#endif
