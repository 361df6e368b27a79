/*
 * storvsp: the host side of Hyper-V's synthetic SCSI controller on VMBus
 * (the "vstor" protocol Linux's hv_storvsc speaks: drivers/scsi/
 * storvsc_drv.c; ../shared/docs/hyperv-linux-guest.md section 7.1). It
 * answers the init handshake (BEGIN_INIT, QUERY_PROTOCOL_VERSION,
 * QUERY_PROPERTIES, END_INIT), runs EXECUTE_SRB requests on SCSI LUNs
 * (dev/scsi.h) over disk backends, and completes each with the SRB and SCSI
 * status, the bytes moved and sense data.
 *
 * Threads: the VMBus notify callback (a vCPU thread) only wakes the
 * channel's worker thread; the worker drains the guest-to-host ring, maps
 * each request's GPA ranges into iovecs over guest RAM (no copies), submits
 * to the LUN's disk queue, and sends completions as the disk queues report
 * them. No allocation per request: a fixed pool per channel bounds what is
 * in flight, and a full pool simply leaves requests in the ring.
 */
#ifndef HVMM_DEV_STORVSP_H
#define HVMM_DEV_STORVSP_H

#include <stdbool.h>
#include <stdint.h>

struct disk;
struct vmbus_server;
struct storvsp;

#define STORVSP_MAX_LUNS 64

struct storvsp_lun_config {
	struct disk *disk;   /* owned by the caller; outlives the controller */
	uint16_t lun;        /* 0..STORVSP_MAX_LUNS-1, unique */
	bool dvd;
	bool read_only;
};

struct storvsp_config {
	unsigned instance;   /* controller number: part of the instance GUID */
	const struct storvsp_lun_config *luns;
	unsigned nluns;
	/* Maps guest physical [gpa, gpa+len) (within one page) or NULL. */
	void *(*map)(void *opaque, uint64_t gpa, uint64_t len);
	void *map_opaque;
	/* No worker thread: the caller runs storvsp_poll() (tests, fuzzing). */
	bool manual;
};

/* Offers the controller on srv. 0 or -errno. */
int storvsp_create(struct vmbus_server *srv, const struct storvsp_config *cfg,
		   struct storvsp **out);
/*
 * Manual mode: one round of the worker's loop (disk completions, pending
 * completion packets, the guest-to-host ring). The channel must be open.
 */
void storvsp_poll(struct storvsp *sv);

/* Call after vmbus_server_destroy() (whose close callbacks stop the workers). */
void storvsp_destroy(struct storvsp *sv);

#endif
