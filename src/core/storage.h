/*
 * The VM's disks (--disk): opened once when hvmm starts, so a bad file is
 * reported before the guest runs and the disks' contents (including mem:
 * and memdiff: overlays) survive a VM reset; and the storage controllers
 * that present them to the guest, rebuilt at every boot: VMBus SCSI
 * controllers (storvsp, a LUN per disk; the default one and --vmbus-scsi)
 * and NVMe controllers (--nvme-pci).
 */
#ifndef HVMM_CORE_STORAGE_H
#define HVMM_CORE_STORAGE_H

struct disk;
struct gmem;
struct hvmm_config;
struct storage;
struct vmbus_server;

/* Opens every --disk. 0 or -errno (one line already logged). */
int storage_open(const struct hvmm_config *cfg, struct storage **out);
void storage_close(struct storage *st);

/*
 * Offers the VMBus SCSI controllers on srv: the default one (instance 0,
 * only with disks without on=) and each --vmbus-scsi (instances 1..). 0 or
 * -errno; on failure call storage_detach_vmbus() after destroying srv.
 */
int storage_attach_vmbus(struct storage *st, struct vmbus_server *srv,
			 const struct gmem *mem);
/* After vmbus_server_destroy(): frees the controller. */
void storage_detach_vmbus(struct storage *st);

/*
 * NVMe controllers (--nvme-pci) and their namespaces' disks in nsid order.
 * storage_nvme_count() is 0 without any (st may be NULL).
 */
unsigned storage_nvme_count(const struct storage *st);
const char *storage_nvme_name(const struct storage *st, unsigned i);
unsigned storage_nvme_disks(const struct storage *st, unsigned i, struct disk ***disks);

/*
 * Inspect view: "scsi/<controller>/<lun>" and "nvme/<controller>/<nsid>",
 * each disk's backend, size and request counters. Any thread.
 */
struct inspect;
void storage_inspect(struct storage *st, struct inspect *in);

#endif
