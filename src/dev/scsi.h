/*
 * SCSI target emulation: a logical unit that executes CDBs against a disk
 * backend (backend/disk.h), independent of the transport (storvsp carries
 * it over VMBus). Two kinds of LUN:
 *
 *   disk   SBC-3 direct-access block device, 512-byte blocks: INQUIRY
 *          (standard, VPD 0x00 0x80 0x83 0xB0 0xB1 0xB2), READ CAPACITY
 *          10/16, READ/WRITE 6/10/12/16, VERIFY 10/16, WRITE SAME 10/16,
 *          UNMAP, SYNCHRONIZE CACHE 10/16, MODE SENSE/SELECT 6/10 (pages
 *          0x08 caching, 0x0A control), TEST UNIT READY, REQUEST SENSE,
 *          START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, REPORT LUNS.
 *   dvd    MMC-6 read-only CD/DVD-ROM, 2048-byte blocks, with the commands
 *          Linux's sr driver and udev's cdrom_id send: GET CONFIGURATION,
 *          READ TOC/PMA/ATIP (formats 0 and 1), GET EVENT STATUS
 *          NOTIFICATION (polled), READ DISC INFORMATION, READ TRACK
 *          INFORMATION, MECHANISM STATUS, MODE SENSE page 0x2A, READ 10/12,
 *          SET CD SPEED.
 *
 * Everything else ends in CHECK CONDITION with fixed-format sense data
 * (SPC-4 4.5.3). Every CDB field is guest-controlled and checked.
 *
 * Threading: a LUN may be used from several transport queues (storvsp
 * sub-channels) on different threads at once; each queue passes its own
 * struct disk_queue, which only that thread uses.
 */
#ifndef HVMM_DEV_SCSI_H
#define HVMM_DEV_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backend/disk.h"

/* SAM-5 status codes. */
#define SAM_STAT_GOOD            0x00
#define SAM_STAT_CHECK_CONDITION 0x02
#define SAM_STAT_BUSY            0x08
#define SAM_STAT_TASK_SET_FULL   0x28

/* SPC-4 sense keys. */
#define SCSI_SENSE_NO_SENSE        0x0
#define SCSI_SENSE_NOT_READY       0x2
#define SCSI_SENSE_MEDIUM_ERROR    0x3
#define SCSI_SENSE_HARDWARE_ERROR  0x4
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_UNIT_ATTENTION  0x6
#define SCSI_SENSE_DATA_PROTECT    0x7
#define SCSI_SENSE_ABORTED_COMMAND 0xb

/* Additional sense code and qualifier, as (ASC << 8) | ASCQ. */
#define SCSI_ASC_NO_ADDITIONAL_SENSE        0x0000
#define SCSI_ASC_WRITE_ERROR                0x0c00
#define SCSI_ASC_UNRECOVERED_READ_ERROR     0x1100
#define SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR 0x1a00
#define SCSI_ASC_INVALID_COMMAND_OPERATION_CODE 0x2000
#define SCSI_ASC_LBA_OUT_OF_RANGE           0x2100
#define SCSI_ASC_INVALID_FIELD_IN_CDB       0x2400
#define SCSI_ASC_LOGICAL_UNIT_NOT_SUPPORTED 0x2500
#define SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST 0x2600
#define SCSI_ASC_WRITE_PROTECTED            0x2700
#define SCSI_ASC_MEDIUM_CHANGED             0x2800
#define SCSI_ASC_POWER_ON_RESET             0x2900
#define SCSI_ASC_CAPACITY_DATA_HAS_CHANGED  0x2a09
#define SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED 0x3900
#define SCSI_ASC_INTERNAL_TARGET_FAILURE    0x4400
#define SCSI_ASC_MEDIUM_REMOVAL_PREVENTED   0x5302

/* Operation codes (SPC-4, SBC-3, MMC-6). */
#define SCSI_TEST_UNIT_READY      0x00
#define SCSI_REQUEST_SENSE        0x03
#define SCSI_READ_6               0x08
#define SCSI_WRITE_6              0x0a
#define SCSI_INQUIRY              0x12
#define SCSI_MODE_SELECT_6        0x15
#define SCSI_MODE_SENSE_6         0x1a
#define SCSI_START_STOP_UNIT      0x1b
#define SCSI_PREVENT_ALLOW_MEDIUM_REMOVAL 0x1e
#define SCSI_READ_CAPACITY_10     0x25
#define SCSI_READ_10              0x28
#define SCSI_WRITE_10             0x2a
#define SCSI_VERIFY_10            0x2f
#define SCSI_SYNCHRONIZE_CACHE_10 0x35
#define SCSI_WRITE_SAME_10        0x41
#define SCSI_UNMAP                0x42
#define SCSI_READ_TOC_PMA_ATIP    0x43
#define SCSI_GET_CONFIGURATION    0x46
#define SCSI_GET_EVENT_STATUS_NOTIFICATION 0x4a
#define SCSI_READ_DISC_INFORMATION 0x51
#define SCSI_READ_TRACK_INFORMATION 0x52
#define SCSI_MODE_SELECT_10       0x55
#define SCSI_MODE_SENSE_10        0x5a
#define SCSI_READ_16              0x88
#define SCSI_WRITE_16             0x8a
#define SCSI_VERIFY_16            0x8f
#define SCSI_SYNCHRONIZE_CACHE_16 0x91
#define SCSI_WRITE_SAME_16        0x93
#define SCSI_SERVICE_ACTION_IN_16 0x9e
#define SCSI_SAI_READ_CAPACITY_16 0x10
#define SCSI_REPORT_LUNS          0xa0
#define SCSI_READ_12              0xa8
#define SCSI_WRITE_12             0xaa
#define SCSI_SET_CD_SPEED         0xbb
#define SCSI_MECHANISM_STATUS     0xbd

#define SCSI_CDB_MAX 16        /* longest CDB accepted */
#define SCSI_SENSE_LEN 18      /* fixed-format sense, what we report */
#define SCSI_SLICE_IOV 64      /* iovecs of one split piece of a transfer */
#define SCSI_UNMAP_MAX_DESC 32 /* UNMAP block descriptors per command (VPD 0xB0) */
/* Longest READ/WRITE we advertise (VPD 0xB0): a page-split transfer of this
 * many bytes fits in DISK_MAX_IOV iovecs, so it goes to the disk in one go. */
#define SCSI_MAX_XFER_BYTES ((DISK_MAX_IOV - 1) * 4096u)

enum scsi_dir {
	SCSI_DIR_NONE,
	SCSI_DIR_FROM_DEV, /* data-in: the target fills the buffer (READ) */
	SCSI_DIR_TO_DEV,   /* data-out: the target reads the buffer (WRITE) */
};

struct scsi_lun;
struct scsi_req;
typedef void (*scsi_done_fn)(struct scsi_req *req);

/* Private to scsi*.c: the state of a request in flight. */
struct scsi_req_priv {
	struct scsi_lun *lun;
	struct disk_queue *q;
	struct disk_req dreq;
	int kind;               /* what the disk request is doing */
	uint64_t lba;           /* first block of the command (sense INFORMATION) */
	uint64_t off, left;     /* next disk byte offset, bytes still to do */
	uint64_t iov_sum;       /* bytes the transport's iovecs hold */
	uint32_t buf_len;       /* usable bytes: min(data_len, iov_sum) */
	unsigned iov_idx;       /* position in the transport's iovecs */
	size_t iov_off;
	unsigned unmap_idx, unmap_cnt;
	bool fua;
	struct iovec slice[SCSI_SLICE_IOV];
	union {
		struct { uint64_t lba; uint32_t n; } unmap[SCSI_UNMAP_MAX_DESC];
		uint8_t block[DISK_SECTOR_SIZE]; /* WRITE SAME pattern */
	} scratch;
};

/*
 * One command. The transport fills the "in" fields, calls
 * scsi_lun_execute(), and must leave the request and its buffers alone
 * until done() runs; the "out" fields are valid in done().
 */
struct scsi_req {
	/* in */
	uint8_t cdb[SCSI_CDB_MAX];  /* a copy: guest memory is never read twice */
	uint8_t cdb_len;
	enum scsi_dir dir;
	const struct iovec *iov;    /* the data buffer: at least data_len bytes */
	unsigned iovcnt;
	uint32_t data_len;          /* bytes the initiator offered/expects */
	scsi_done_fn done;
	void *opaque;
	/* out */
	uint8_t status;             /* SAM_STAT_* */
	uint8_t sense_len;          /* 0, or SCSI_SENSE_LEN with CHECK CONDITION */
	uint8_t sense[SCSI_SENSE_LEN];
	uint32_t bytes_done;        /* data moved, also before an error;
				       residual = data_len - bytes_done */
	struct scsi_req_priv priv_;
};

struct scsi_lun_config {
	bool dvd;            /* read-only CD/DVD-ROM (MMC) with 2048-byte blocks */
	bool read_only;      /* write-protected (also when the disk is read-only) */
	uint16_t lun;        /* this LUN's number, for REPORT LUNS sent to it */
	const char *serial;  /* VPD 0x80: printable ASCII, truncated to 20;
				NULL = derived from id */
	uint64_t id;         /* unique per disk: the NAA designator (VPD 0x83) */
};

/*
 * Makes a LUN over d, which the caller keeps open (and closes after
 * scsi_lun_destroy()). 0, or -EINVAL (dvd over a disk smaller than one
 * 2048-byte block), -ENOMEM.
 */
int scsi_lun_create(struct disk *d, const struct scsi_lun_config *cfg,
		    struct scsi_lun **out);
void scsi_lun_destroy(struct scsi_lun *lun);

/* Blocks and block size the LUN reports. */
uint64_t scsi_lun_blocks(const struct scsi_lun *lun);
uint32_t scsi_lun_block_size(const struct scsi_lun *lun);

/*
 * Executes req->cdb. Commands without disk I/O complete before this
 * returns (done() is called from inside); READ, WRITE, WRITE SAME, UNMAP
 * and SYNCHRONIZE CACHE complete from disk_queue_complete(q), which the
 * transport runs on the thread that owns q when its eventfd fires. A
 * request uses at most one slot of q at a time: give q a depth of at least
 * the number of requests the transport keeps in flight on it, otherwise a
 * full queue completes a command with SAM_STAT_TASK_SET_FULL.
 */
void scsi_lun_execute(struct scsi_lun *lun, struct disk_queue *q,
		      struct scsi_req *req);

/*
 * Establishes a unit attention condition (e.g. SCSI_ASC_POWER_ON_RESET
 * after a bus reset, SCSI_ASC_CAPACITY_DATA_HAS_CHANGED): the next command
 * other than INQUIRY, REPORT LUNS and REQUEST SENSE ends with it in CHECK
 * CONDITION, or REQUEST SENSE returns it. Either clears it. Thread safe.
 */
void scsi_lun_set_unit_attention(struct scsi_lun *lun, uint16_t asc_ascq);

/*
 * REPORT LUNS for a bus: checks req's CDB (SPC-4 6.33), writes the list of
 * the n LUN numbers (single-level format: peripheral addressing below 256,
 * flat space up to 16383; at most 256 listed) and completes req. For a
 * transport to answer REPORT LUNS itself, whichever LUN it is addressed
 * to (a LUN executing REPORT LUNS lists only itself).
 */
void scsi_report_luns(struct scsi_req *req, const uint16_t *luns, unsigned n);

/*
 * Completes req with CHECK CONDITION and fixed sense (key, asc_ascq), no
 * data: for a transport's own refusals (e.g. SCSI_ASC_LOGICAL_UNIT_NOT_
 * SUPPORTED).
 */
void scsi_req_fail(struct scsi_req *req, uint8_t key, uint16_t asc_ascq);

#endif
