/*
 * storvsp: the host side of Hyper-V's synthetic SCSI controller on VMBus
 * (the "vstor" protocol Linux's hv_storvsc speaks: drivers/scsi/
 * storvsc_drv.c; ../shared/docs/hyperv-linux-guest.md section 7.1). It
 * answers the init handshake (BEGIN_INIT, QUERY_PROTOCOL_VERSION,
 * QUERY_PROPERTIES, END_INIT, CREATE_SUB_CHANNELS: more queues as VMBus
 * sub-channels), runs EXECUTE_SRB requests on SCSI LUNs
 * (dev/scsi.h) over disk backends, and completes each with the SRB and SCSI
 * status, the bytes moved and sense data.
 *
 * Portable core: no OS calls. The host decides where a queue's work runs
 * (struct storvsp_host; hvmm's is storvsp_thread_host, a thread per open
 * channel woken by an eventfd and the disk queues' eventfds). The VMBus
 * notify callback (a vCPU thread) only kicks the host; storvsp_queue_run()
 * drains the guest-to-host ring, maps each request's GPA ranges into iovecs
 * over guest RAM (no copies), submits to the LUN's disk queue, and sends
 * completions as the disk queues report them. No allocation per request: a
 * fixed pool per channel bounds what is in flight, and a full pool simply
 * leaves requests in the ring.
 */
#ifndef HVMM_DEV_STORVSP_H
#define HVMM_DEV_STORVSP_H

#include <stdbool.h>
#include <stdint.h>

struct disk;
struct disk_queue;
struct vmbus_server;
struct storvsp;
struct storvsp_queue;  /* one per open channel */

/*
 * Where a queue's work runs. The callbacks are called with the VMBus server
 * lock held (from the channel's open/close/notify) and must not block,
 * except stop, which waits for a running storvsp_queue_run() to return.
 */
struct storvsp_host {
	/*
	 * The channel opened: from now on run storvsp_queue_run(q) (never two
	 * at once) whenever kick() was called or one of the queue's disk
	 * queues (storvsp_queue_disks) signals, and once at the start.
	 * 0, or -errno (the guest's open fails).
	 */
	int (*start)(void *opaque, struct storvsp_queue *q);
	/* After this returns, storvsp_queue_run(q) is not running and will not run. */
	void (*stop)(void *opaque, struct storvsp_queue *q);
	/* The guest signalled. */
	void (*kick)(void *opaque, struct storvsp_queue *q);
};

/* hvmm's host: a thread per queue (storvsp_host.c); opaque unused. */
extern const struct storvsp_host storvsp_thread_host;

#define STORVSP_MAX_LUNS 64
#define STORVSP_MAX_SUB_CHANNELS 63 /* --vmbus-scsi sub_channels=K limit */

struct storvsp_lun_config {
	struct disk *disk;   /* owned by the caller; outlives the controller */
	uint16_t lun;        /* 0..STORVSP_MAX_LUNS-1, unique */
	bool dvd;
	bool read_only;
};

struct storvsp_config {
	unsigned instance;   /* controller number: part of the instance GUID */
	/*
	 * Sub-channels the guest may ask for (0..STORVSP_MAX_SUB_CHANNELS):
	 * QUERY_PROPERTIES reports it as max_channel_cnt, with the
	 * multi-channel flag when non-zero. Each sub-channel is a full I/O
	 * queue (same LUNs) with its own host worker.
	 */
	unsigned sub_channels;
	const struct storvsp_lun_config *luns;
	unsigned nluns;
	/* Maps guest physical [gpa, gpa+len) (within one page) or NULL. */
	void *(*map)(void *opaque, uint64_t gpa, uint64_t len);
	void *map_opaque;
	/* NULL: nothing runs by itself; the caller runs storvsp_poll() (tests, fuzzing). */
	const struct storvsp_host *host;
	void *host_opaque;
};

/* Offers the controller on srv. 0 or -errno. */
int storvsp_create(struct vmbus_server *srv, const struct storvsp_config *cfg,
		   struct storvsp **out);
/*
 * One round of a queue's work (disk completions, pending completion packets,
 * the guest-to-host ring). For the host, and the accessors it needs.
 */
void storvsp_queue_run(struct storvsp_queue *q);
/* The queue's disk queues (for their completion eventfds); how many. */
unsigned storvsp_queue_disks(struct storvsp_queue *q, struct disk_queue **dq, unsigned max);
unsigned storvsp_queue_instance(const struct storvsp_queue *q);
/* 0 for the primary channel's queue, 1.. for sub-channels'. */
unsigned storvsp_queue_index(const struct storvsp_queue *q);
void storvsp_queue_set_host_data(struct storvsp_queue *q, void *data);
void *storvsp_queue_host_data(const struct storvsp_queue *q);

/*
 * Without a host: one round of every open queue's work (primary and
 * sub-channels: disk completions, pending completion packets, the
 * guest-to-host ring).
 */
void storvsp_poll(struct storvsp *sv);

/* Call after vmbus_server_destroy() (whose close callbacks stop the queues). */
void storvsp_destroy(struct storvsp *sv);

#endif
