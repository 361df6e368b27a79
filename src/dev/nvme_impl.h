/*
 * NVMe controller internals shared by nvme.c (registers, doorbells, state
 * changes, workers), nvme_admin.c (admin commands), nvme_io.c (I/O
 * commands and completion posting) and nvme_prp.c (PRP walking). Constants
 * and structures follow NVM Express Base Specification 1.4c; status values
 * are (SCT << 8 | SC) as they sit in CQE bits 15:1, with NVME_SC_DNR.
 */
#ifndef HVMM_DEV_NVME_IMPL_H
#define HVMM_DEV_NVME_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backend/disk.h"
#include "dev/nvme.h"

/* Controller registers (section 3.1). */
#define NVME_REG_CAP 0x00
#define NVME_REG_VS 0x08
#define NVME_REG_INTMS 0x0C
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1C
#define NVME_REG_NSSR 0x20
#define NVME_REG_AQA 0x24
#define NVME_REG_ASQ 0x28
#define NVME_REG_ACQ 0x30
#define NVME_REG_DBS 0x1000

#define NVME_CC_EN 0x1u
#define NVME_CC_CSS(cc) (((cc) >> 4) & 7)
#define NVME_CC_MPS(cc) (((cc) >> 7) & 0xF)
#define NVME_CC_AMS(cc) (((cc) >> 11) & 7)
#define NVME_CC_SHN(cc) (((cc) >> 14) & 3)
#define NVME_CC_IOSQES(cc) (((cc) >> 16) & 0xF)
#define NVME_CC_IOCQES(cc) (((cc) >> 20) & 0xF)
#define NVME_CSTS_RDY 0x1u
#define NVME_CSTS_CFS 0x2u
#define NVME_CSTS_SHST_OCCUR (1u << 2)
#define NVME_CSTS_SHST_CMPLT (2u << 2)
#define NVME_CSTS_SHST_MASK (3u << 2)

#define NVME_PAGE_SIZE 4096u
#define NVME_MQES 1023u       /* CAP.MQES: queues of up to 1024 entries */
#define NVME_MDTS 6u          /* 2^6 pages = 256 KiB per command */
#define NVME_MAX_XFER (NVME_PAGE_SIZE << NVME_MDTS)
#define NVME_MAX_IOV (NVME_MAX_XFER / NVME_PAGE_SIZE + 1)
#define NVME_AERL 3u          /* zero-based: 4 outstanding AERs */
#define NVME_ACL 3u
#define NVME_LBA_SHIFT 9
#define NVME_SQES 6           /* 64-byte SQEs */
#define NVME_CQES 4           /* 16-byte CQEs */
#define NVME_NSID_BROADCAST 0xFFFFFFFFu
#define NVME_MAX_AER_EVENTS 8

/* Admin opcodes (section 5). */
#define NVME_ADM_DELETE_SQ 0x00
#define NVME_ADM_CREATE_SQ 0x01
#define NVME_ADM_GET_LOG_PAGE 0x02
#define NVME_ADM_DELETE_CQ 0x04
#define NVME_ADM_CREATE_CQ 0x05
#define NVME_ADM_IDENTIFY 0x06
#define NVME_ADM_ABORT 0x08
#define NVME_ADM_SET_FEATURES 0x09
#define NVME_ADM_GET_FEATURES 0x0A
#define NVME_ADM_ASYNC_EVENT 0x0C
#define NVME_ADM_DBBUF_CONFIG 0x7C /* NVMe 1.3 section 5.7 */
#define NVME_OACS_DBBUF (1u << 8)

/* NVM command set opcodes (NVM command set 1.0 / 1.4 section 6). */
#define NVME_CMD_FLUSH 0x00
#define NVME_CMD_WRITE 0x01
#define NVME_CMD_READ 0x02
#define NVME_CMD_WRITE_ZEROES 0x08
#define NVME_CMD_DSM 0x09

#define NVME_ID_CNS_NS 0x00
#define NVME_ID_CNS_CTRL 0x01
#define NVME_ID_CNS_NS_ACTIVE_LIST 0x02
#define NVME_ID_CNS_NS_DESC_LIST 0x03
#define NVME_ID_CNS_CS_NS 0x05
#define NVME_ID_CNS_CS_CTRL 0x06
#define NVME_CSI_NVM 0

#define NVME_FEAT_ARBITRATION 0x01
#define NVME_FEAT_POWER_MGMT 0x02
#define NVME_FEAT_TEMP_THRESH 0x04
#define NVME_FEAT_ERR_RECOVERY 0x05
#define NVME_FEAT_VOLATILE_WC 0x06
#define NVME_FEAT_NUM_QUEUES 0x07
#define NVME_FEAT_IRQ_COALESCE 0x08
#define NVME_FEAT_IRQ_CONFIG 0x09
#define NVME_FEAT_WRITE_ATOMIC 0x0A
#define NVME_FEAT_ASYNC_EVENT 0x0B

#define NVME_LOG_ERROR 0x01
#define NVME_LOG_SMART 0x02
#define NVME_LOG_FW_SLOT 0x03

#define NVME_AER_TYPE_ERROR 0
#define NVME_AER_TYPE_SMART 1
#define NVME_AER_INFO_ERR_INVALID_DB_REG 0x00
#define NVME_AER_INFO_ERR_INVALID_DB_VALUE 0x01

/* Status codes: generic (SCT 0), command specific (1), media (2). */
#define NVME_SC_SUCCESS 0x0000
#define NVME_SC_INVALID_OPCODE 0x0001
#define NVME_SC_INVALID_FIELD 0x0002
#define NVME_SC_DATA_XFER_ERROR 0x0004
#define NVME_SC_INTERNAL 0x0006
#define NVME_SC_ABORT_REQ 0x0007
#define NVME_SC_ABORT_QUEUE 0x0008
#define NVME_SC_INVALID_NS 0x000B
#define NVME_SC_CMD_SEQ_ERROR 0x000C
#define NVME_SC_INVALID_PRP_OFFSET 0x0013
#define NVME_SC_NS_WRITE_PROTECTED 0x0020
#define NVME_SC_LBA_RANGE 0x0080
#define NVME_SC_CQ_INVALID 0x0100
#define NVME_SC_QID_INVALID 0x0101
#define NVME_SC_QUEUE_SIZE 0x0102
#define NVME_SC_ABORT_LIMIT 0x0103
#define NVME_SC_ASYNC_LIMIT 0x0105
#define NVME_SC_INVALID_VECTOR 0x0108
#define NVME_SC_INVALID_LOG_PAGE 0x0109
#define NVME_SC_INVALID_QUEUE_DELETION 0x010C
#define NVME_SC_FEATURE_NOT_SAVEABLE 0x010D
#define NVME_SC_WRITE_FAULT 0x0280
#define NVME_SC_READ_ERROR 0x0281
#define NVME_SC_DNR 0x4000

/* Submission queue entry (section 4.2), copied out of guest RAM. */
struct nvme_sqe {
	uint8_t opcode;
	uint8_t flags;  /* bits 1:0 FUSE, 7:6 PSDT */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2, cdw3;
	uint64_t mptr;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE is 64 bytes");

/* Completion queue entry (section 4.6). */
struct nvme_cqe {
	uint32_t result;
	uint32_t rsvd;
	uint16_t sq_head;
	uint16_t sq_id;
	uint16_t cid;
	uint16_t status; /* bit 0 phase, 15:1 status field */
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE is 16 bytes");

/* DSM range (NVM command set section 6.7). */
struct nvme_dsm_range {
	uint32_t cattr;
	uint32_t nlb;
	uint64_t slba;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_dsm_range) == 16, "DSM range is 16 bytes");

struct nvme_sq;
struct nvme_cq;

/* One in-flight command; each SQ owns one per entry. */
struct nvme_req {
	struct disk_req dreq;
	struct nvme_sq *sq;
	struct nvme_req *next;  /* free list, done list or retry list */
	uint16_t cid;
	uint16_t status;
	uint32_t result;
	uint8_t opcode;
	unsigned ns;            /* namespace index (nsid - 1) */
	uint16_t dsm_next, dsm_count; /* DSM: ranges still to run */
	unsigned niov;
	struct iovec iov[NVME_MAX_IOV];
};

struct nvme_sq {
	uint16_t qid, cqid;
	uint32_t size;
	uint64_t gpa;
	const uint8_t *ring;    /* guest RAM, size * 64 bytes */
	_Atomic uint32_t tail;  /* written by doorbells, read by the worker */
	_Atomic uint32_t head;  /* advanced by the worker, read by doorbells */
	_Atomic bool deleting;
	unsigned inflight;      /* worker only */
	struct nvme_req *slots;
	struct nvme_req *free_slots; /* worker only */
	uint32_t shadow_bad;    /* last invalid shadow tail reported (n->lock) */
};

struct nvme_cq {
	struct nvme *n;
	uint16_t qid;
	uint16_t iv;
	bool ien;
	uint32_t size;
	uint64_t gpa;
	uint8_t *ring;          /* guest RAM, size * 16 bytes */
	uint32_t tail;          /* worker only */
	_Atomic uint32_t tail_pub; /* tail as seen by doorbells */
	_Atomic uint32_t head;  /* written by doorbells */
	bool phase;
	uint32_t shadow_bad;    /* last invalid shadow head reported (n->lock) */
	int64_t spin_ns;        /* worker only: current shadow doorbell polling window */
	int wake_fd;            /* eventfd: doorbells, stop requests */
	/* Doorbells write wake_fd only when the worker may be blocked:
	 * `sleeping` (about to poll) or `want_head` (completions wait for
	 * room). Each is set by the worker before it re-checks the queue
	 * pointers and exchanged by the doorbell after it stores them, both
	 * seq_cst, so one side always sees the other. */
	_Atomic bool sleeping;
	_Atomic bool want_head;
	_Atomic bool stop;
	pthread_t thread;
	bool thread_ok;
	pthread_mutex_t lock;   /* sqs[] */
	pthread_cond_t cond;    /* a deleting SQ drained */
	struct nvme_sq *sqs[NVME_MAX_IO_QUEUES];
	unsigned nsqs;
	struct disk_queue *dq[NVME_MAX_NAMESPACES];
	struct nvme_req *done, **done_tail; /* to be posted */
	struct nvme_req *retry, **retry_tail; /* -EAGAIN from a disk queue */
};

struct nvme_ns {
	struct disk *disk;
	uint64_t nlba;
	bool ro;
};

struct nvme {
	struct gmem *mem;
	struct pci_dev *pci;
	bool manual;
	char serial[21];
	unsigned nns;
	struct nvme_ns ns[NVME_MAX_NAMESPACES];
	unsigned max_queues;    /* I/O SQs = CQs offered */
	unsigned nvectors;

	pthread_mutex_t lock;
	/* Doorbell Buffer Config (NVMe 1.3 section 5.7): the shadow doorbell
	 * page and the EventIdx page in guest RAM, indexed like the doorbell
	 * registers (SQ y tail at [2y], CQ y head at [2y + 1]; I/O queues
	 * only), or NULL. Set and cleared under lock; the workers read them
	 * under lock too. Guest memory: read once, validated like a doorbell. */
	bool dbbuf_supported;
	uint32_t *dbbuf_shadow;
	uint32_t *dbbuf_eventidx;
	_Atomic bool dbbuf_on;   /* lock-free hint for the workers */
	int64_t dbbuf_poll_ns;   /* <= 0: no polling */
	/* Registers. */
	uint32_t cc, csts, aqa;
	uint64_t asq, acq;
	bool cc_dirty;          /* CC written; the admin worker applies it */
	/* Queues: [0] is the admin pair (owned by the admin worker). */
	struct nvme_sq *sq[NVME_MAX_IO_QUEUES + 1];
	struct nvme_cq *cq[NVME_MAX_IO_QUEUES + 1];
	/* Asynchronous events. */
	uint32_t aer_events[NVME_MAX_AER_EVENTS];
	unsigned naer_events;
	uint16_t aer_cids[NVME_AERL + 1];
	unsigned naer_cids;
	unsigned aer_masked;    /* bit per event type reported, not yet read */
	uint64_t error_count;

	/* Admin worker. */
	int admin_fd;
	_Atomic bool admin_stop;
	pthread_t admin_thread;
	bool admin_thread_ok;
	pthread_mutex_t admin_run; /* held while the admin queue is run */
	struct disk_queue *admin_dq[NVME_MAX_NAMESPACES]; /* shutdown flushes */

	/* Features (admin worker only). */
	uint32_t feat_arb, feat_pm, feat_err_rec, feat_coalesce, feat_aec, feat_wa;
	uint16_t temp_over, temp_under;
	_Atomic bool vwc;       /* read by the I/O workers */
	uint8_t irq_cd[NVME_MAX_IO_QUEUES + 1];

	/* SMART counters. */
	_Atomic uint64_t sectors_read, sectors_written, cmds_read, cmds_written;
};

/* nvme.c */
void nvme_wake(int fd);
void nvme_aer_post_locked(struct nvme *n, unsigned type, unsigned info, unsigned log);
int nvme_cq_start(struct nvme *n, struct nvme_cq *cq);
void nvme_cq_stop(struct nvme_cq *cq);
void nvme_cq_quiesce_sq(struct nvme *n, struct nvme_cq *cq, struct nvme_sq *sq);
/*
 * Shadow doorbells. pull: reads the shadow SQ tails of cq's SQs and its
 * shadow CQ head and applies each changed one exactly like a doorbell
 * write (the same validation and error event); true if a pointer moved.
 * arm: publishes EventIdx (each SQ's tail; the CQ head when the worker
 * waits for room, else one behind it) so that the host rings the MMIO
 * doorbell for what follows; the caller then re-runs the queue (a host
 * that checked the old EventIdx may have skipped its doorbell). init:
 * syncs queue qid's shadow and EventIdx entries to the controller's
 * pointers (dbbuf configured or queue created), n->lock held. All no-ops
 * without a configured buffer.
 */
bool nvme_dbbuf_pull(struct nvme_cq *cq);
void nvme_dbbuf_arm(struct nvme_cq *cq);
void nvme_dbbuf_init_queue_locked(struct nvme *n, unsigned qid);

/* nvme_admin.c */
/* Applies CC changes and runs the admin queue; true on progress. */
bool nvme_admin_run(struct nvme *n);
void nvme_ctrl_reset(struct nvme *n);
void nvme_admin_reset_features(struct nvme *n);
void nvme_delete_io_queues(struct nvme *n);

/* nvme_io.c */
bool nvme_cq_run(struct nvme_cq *cq);
/* Posts one CQE; false when the CQ is full. */
bool nvme_cq_post(struct nvme_cq *cq, uint16_t sqid, uint16_t sqhead, uint16_t cid,
		  uint16_t status, uint32_t result);
bool nvme_cq_full(const struct nvme_cq *cq);
void nvme_cq_irq(struct nvme_cq *cq);

/* nvme_prp.c */
/*
 * Maps len bytes described by prp1/prp2 to at most max iovecs pointing
 * into guest RAM. NVME_SC_SUCCESS, or a status (INVALID_PRP_OFFSET,
 * DATA_XFER_ERROR, INVALID_FIELD when more iovecs would be needed).
 */
uint16_t nvme_prp_map(const struct gmem *mem, uint64_t prp1, uint64_t prp2,
		      uint64_t len, struct iovec *iov, unsigned max, unsigned *niov);
/* Copies between a host buffer and mapped iovecs (len <= their total). */
void nvme_iov_to_buf(const struct iovec *iov, unsigned niov, uint64_t skip,
		     void *buf, uint64_t len);
void nvme_buf_to_iov(const struct iovec *iov, unsigned niov, const void *buf,
		     uint64_t len);

#endif
