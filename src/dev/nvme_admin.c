/*
 * NVMe admin command set (NVM Express Base 1.4c section 5): Identify
 * (controller, namespace, active namespace list, namespace identification
 * descriptors), Create/Delete I/O Submission/Completion Queue, Get/Set
 * Features, Get Log Page (error information, SMART / health, firmware
 * slot), Abort, Asynchronous Event Request and Doorbell Buffer Config
 * (NVMe 1.3 section 5.7, shadow doorbells), plus the controller state
 * changes CC.EN and CC.SHN (section 7.6) that the admin worker applies.
 * Every command is copied out of the admin SQ before it is parsed and
 * every field is checked before anything changes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gmem.h"
#include "core/log.h"
#include "dev/nvme_impl.h"
#include "dev/pci.h"

#define DNR NVME_SC_DNR

void nvme_admin_reset_features(struct nvme *n)
{
	n->feat_arb = 0;
	n->feat_pm = 0;
	n->feat_err_rec = 0;
	n->feat_coalesce = 0;
	n->feat_aec = 0;
	n->feat_wa = 0;
	n->temp_over = 0x157;  /* 343 K: same as WCTEMP */
	n->temp_under = 0;
	atomic_store(&n->vwc, true);
	memset(n->irq_cd, 0, sizeof(n->irq_cd));
}

/* ---- queue lifetime ---------------------------------------------------- */

static void delete_sq(struct nvme *n, unsigned qid)
{
	pthread_mutex_lock(&n->lock);
	struct nvme_sq *sq = n->sq[qid];
	n->sq[qid] = NULL; /* doorbells now see no queue */
	struct nvme_cq *cq = sq ? n->cq[sq->cqid] : NULL;
	pthread_mutex_unlock(&n->lock);
	if (!sq)
		return;
	nvme_cq_quiesce_sq(n, cq, sq);
	pthread_mutex_lock(&cq->lock);
	for (unsigned i = 0; i < cq->nsqs; i++) {
		if (cq->sqs[i] == sq) {
			cq->sqs[i] = cq->sqs[--cq->nsqs];
			break;
		}
	}
	pthread_mutex_unlock(&cq->lock);
	free(sq->slots);
	free(sq);
}

static void delete_cq(struct nvme *n, unsigned qid)
{
	pthread_mutex_lock(&n->lock);
	struct nvme_cq *cq = n->cq[qid];
	n->cq[qid] = NULL;
	pthread_mutex_unlock(&n->lock);
	if (cq)
		nvme_cq_stop(cq);
}

void nvme_delete_io_queues(struct nvme *n)
{
	for (unsigned q = 1; q <= n->max_queues; q++)
		delete_sq(n, q);
	for (unsigned q = 1; q <= n->max_queues; q++)
		delete_cq(n, q);
}

/* Controller reset (CC.EN 1 -> 0): queues gone, CSTS cleared. */
void nvme_ctrl_reset(struct nvme *n)
{
	nvme_delete_io_queues(n);
	pthread_mutex_lock(&n->lock);
	free(n->sq[0]);
	free(n->cq[0]);
	n->sq[0] = NULL;
	n->cq[0] = NULL;
	n->csts = 0;
	n->dbbuf_shadow = n->dbbuf_eventidx = NULL;
	atomic_store(&n->dbbuf_on, false);
	n->naer_events = n->naer_cids = 0;
	n->aer_masked = 0;
	pthread_mutex_unlock(&n->lock);
	nvme_admin_reset_features(n);
}

static bool enable(struct nvme *n, uint32_t cc)
{
	pthread_mutex_lock(&n->lock);
	uint32_t aqa = n->aqa;
	uint64_t asq = n->asq, acq = n->acq;
	pthread_mutex_unlock(&n->lock);
	uint32_t sqs = (aqa & 0xFFF) + 1, cqs = ((aqa >> 16) & 0xFFF) + 1;
	if (NVME_CC_MPS(cc) != 0 || NVME_CC_CSS(cc) != 0 || NVME_CC_AMS(cc) != 0 ||
	    sqs < 2 || cqs < 2) {
		log_guest("nvme: cannot enable: CC 0x%x AQA 0x%x", cc, aqa);
		return false;
	}
	void *sring = gmem_map(n->mem, asq, (uint64_t)sqs * 64);
	void *cring = gmem_map(n->mem, acq, (uint64_t)cqs * 16);
	struct nvme_sq *sq = calloc(1, sizeof(*sq));
	struct nvme_cq *cq = calloc(1, sizeof(*cq));
	if (!sring || !cring || !sq || !cq) {
		log_guest("nvme: cannot enable: admin queues at 0x%llx/0x%llx not in RAM",
			  (unsigned long long)asq, (unsigned long long)acq);
		free(sq);
		free(cq);
		return false;
	}
	sq->size = sqs;
	sq->gpa = asq;
	sq->ring = sring;
	cq->n = n;
	cq->size = cqs;
	cq->gpa = acq;
	cq->ring = cring;
	cq->phase = true;
	cq->ien = true;
	cq->wake_fd = n->admin_fd;
	pthread_mutex_lock(&n->lock);
	n->sq[0] = sq;
	n->cq[0] = cq;
	n->csts = NVME_CSTS_RDY;
	pthread_mutex_unlock(&n->lock);
	return true;
}

static void flush_done(struct disk_req *r, int result)
{
	*(int *)r->opaque = result < 0 ? result : 1;
}

/* Shutdown: everything written so far reaches stable storage. */
static void shutdown_ctrl(struct nvme *n)
{
	pthread_mutex_lock(&n->lock);
	n->csts = (n->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_OCCUR;
	pthread_mutex_unlock(&n->lock);
	for (unsigned i = 0; i < n->nns; i++) {
		int state = 0;
		struct disk_req r = { .op = DISK_FLUSH, .done = flush_done, .opaque = &state };
		if (disk_queue_submit(n->admin_dq[i], &r) < 0)
			continue;
		struct pollfd pfd = { .fd = disk_queue_eventfd(n->admin_dq[i]), .events = POLLIN };
		while (!state) {
			poll(&pfd, 1, 1000);
			disk_queue_complete(n->admin_dq[i]);
		}
		if (state < 0)
			log_warn("nvme: flush at shutdown of %s failed: %s",
				 disk_describe(n->ns[i].disk), strerror(-state));
	}
	pthread_mutex_lock(&n->lock);
	n->csts = (n->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_CMPLT;
	pthread_mutex_unlock(&n->lock);
}

static bool apply_cc(struct nvme *n, uint32_t cc)
{
	pthread_mutex_lock(&n->lock);
	uint32_t csts = n->csts;
	pthread_mutex_unlock(&n->lock);
	if (!(cc & NVME_CC_EN)) {
		if (csts == 0 && !n->sq[0])
			return false;
		nvme_ctrl_reset(n);
		return true;
	}
	bool progress = false;
	if (!(csts & NVME_CSTS_RDY)) {
		if (csts & NVME_CSTS_CFS)
			return false;
		progress = enable(n, cc);
		if (!progress) {
			pthread_mutex_lock(&n->lock);
			n->csts |= NVME_CSTS_CFS;
			pthread_mutex_unlock(&n->lock);
			return true;
		}
	}
	if (NVME_CC_SHN(cc) && !(csts & NVME_CSTS_SHST_MASK)) {
		shutdown_ctrl(n);
		progress = true;
	}
	return progress;
}

/* ---- data transfer for admin commands ------------------------------------ */

static uint16_t to_host(struct nvme *n, const struct nvme_sqe *c, const void *buf, uint64_t len)
{
	struct iovec iov[NVME_MAX_IOV];
	unsigned niov;
	uint16_t st = nvme_prp_map(n->mem, c->prp1, c->prp2, len, iov, NVME_MAX_IOV, &niov);
	if (st)
		return st;
	nvme_buf_to_iov(iov, niov, buf, len);
	return NVME_SC_SUCCESS;
}

static void pad_copy(char *dst, size_t len, const char *src)
{
	memset(dst, ' ', len);
	size_t l = strlen(src);
	memcpy(dst, src, l < len ? l : len);
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void ns_nguid(const struct nvme *n, unsigned nsid, uint8_t out[16])
{
	memset(out, 0, 16);
	memcpy(out, "hvmm", 4);
	size_t l = strlen(n->serial);
	memcpy(out + 4, n->serial, l < 8 ? l : 8);
	put32(out + 12, nsid);
}

static uint16_t identify(struct nvme *n, const struct nvme_sqe *c)
{
	static uint8_t id[NVME_PAGE_SIZE]; /* admin worker only */
	memset(id, 0, sizeof(id));
	unsigned cns = c->cdw10 & 0xFF;
	uint32_t nsid = c->nsid;
	switch (cns) {
	case NVME_ID_CNS_CTRL:
		put16(id + 0, 0x1414);           /* VID */
		put16(id + 2, 0x1414);           /* SSVID */
		pad_copy((char *)id + 4, 20, n->serial);
		pad_copy((char *)id + 24, 40, "hvmm NVMe controller");
		pad_copy((char *)id + 64, 8, "1.0");
		id[72] = 6;                      /* RAB */
		id[77] = NVME_MDTS;
		put16(id + 78, 1);               /* CNTLID */
		put32(id + 80, 0x00010400);      /* VER */
		put32(id + 92, 1u << 8 | 1u << 9); /* OAES: ns attr, fw activation (none sent) */
		id[111] = 1;                     /* CNTRLTYPE: I/O controller */
		if (n->dbbuf_supported)
			put16(id + 256, NVME_OACS_DBBUF); /* OACS */
		id[258] = NVME_ACL;
		id[259] = NVME_AERL;
		id[260] = 0x03;                  /* FRMW: slot 1 read-only, 1 slot */
		id[261] = 0x04;                  /* LPA: extended data (offsets) */
		id[262] = 63;                    /* ELPE */
		id[263] = 0;                     /* NPSS: one power state */
		put16(id + 266, 0x157);          /* WCTEMP */
		put16(id + 268, 0x175);          /* CCTEMP */
		id[512] = NVME_SQES << 4 | NVME_SQES; /* SQES */
		id[513] = NVME_CQES << 4 | NVME_CQES; /* CQES */
		put32(id + 516, n->nns);         /* NN */
		put16(id + 520, 1u << 2 | 1u << 3); /* ONCS: DSM, Write Zeroes */
		id[525] = 0x01;                  /* VWC present */
		put32(id + 536, 0);              /* SGLS: none */
		snprintf((char *)id + 768, 256, "nqn.2026-01.dev.hvmm:nvme:%s", n->serial);
		put16(id + 2048, 2500);          /* PSD0.MP: 25 W */
		break;
	case NVME_ID_CNS_NS: {
		if (nsid == 0 || nsid > n->nns)
			return NVME_SC_INVALID_NS | DNR;
		const struct nvme_ns *ns = &n->ns[nsid - 1];
		put64(id + 0, ns->nlba);         /* NSZE */
		put64(id + 8, ns->nlba);         /* NCAP */
		put64(id + 16, ns->nlba);        /* NUSE */
		id[25] = 0;                      /* NLBAF: one format */
		id[26] = 0;                      /* FLBAS */
		id[99] = ns->ro ? 1 : 0;         /* NSATTR: write protected */
		ns_nguid(n, nsid, id + 104);     /* NGUID */
		put32(id + 128, NVME_LBA_SHIFT << 16); /* LBAF0: LBADS 9 */
		break;
	}
	case NVME_ID_CNS_NS_ACTIVE_LIST: {
		if (nsid >= 0xFFFFFFFEu)
			return NVME_SC_INVALID_NS | DNR;
		unsigned k = 0;
		for (uint32_t i = nsid + 1; i <= n->nns; i++)
			put32(id + 4 * k++, i);
		break;
	}
	case NVME_ID_CNS_NS_DESC_LIST:
		if (nsid == 0 || nsid > n->nns)
			return NVME_SC_INVALID_NS | DNR;
		id[0] = 2;  /* NIDT: NGUID */
		id[1] = 16; /* NIDL */
		ns_nguid(n, nsid, id + 4);
		break;
	case NVME_ID_CNS_CS_NS:
		/* NVM command set specific structures: all fields zero (no
		 * limits beyond MDTS, no extended formats). */
		if (nsid == 0 || nsid > n->nns)
			return NVME_SC_INVALID_NS | DNR;
		/* fall through */
	case NVME_ID_CNS_CS_CTRL:
		if ((c->cdw11 >> 24) != NVME_CSI_NVM)
			return NVME_SC_INVALID_FIELD | DNR;
		break;
	default:
		return NVME_SC_INVALID_FIELD | DNR;
	}
	return to_host(n, c, id, sizeof(id));
}

/* ---- queues -------------------------------------------------------------- */

static uint16_t create_cq(struct nvme *n, const struct nvme_sqe *c)
{
	unsigned qid = c->cdw10 & 0xFFFF, qsize = (c->cdw10 >> 16) + 1;
	bool pc = c->cdw11 & 1, ien = c->cdw11 & 2;
	unsigned iv = c->cdw11 >> 16;
	pthread_mutex_lock(&n->lock);
	bool exists = qid >= 1 && qid <= n->max_queues && n->cq[qid];
	uint32_t cc = n->cc;
	pthread_mutex_unlock(&n->lock);
	if (qid == 0 || qid > n->max_queues || exists)
		return NVME_SC_QID_INVALID | DNR;
	if (qsize < 2 || qsize > NVME_MQES + 1)
		return NVME_SC_QUEUE_SIZE | DNR;
	if (!pc || NVME_CC_IOCQES(cc) != NVME_CQES)
		return NVME_SC_INVALID_FIELD | DNR;
	if (iv >= n->nvectors)
		return NVME_SC_INVALID_VECTOR | DNR;
	if (c->prp1 & (NVME_PAGE_SIZE - 1))
		return NVME_SC_INVALID_PRP_OFFSET | DNR;
	void *ring = gmem_map(n->mem, c->prp1, (uint64_t)qsize * 16);
	if (!ring)
		return NVME_SC_DATA_XFER_ERROR | DNR;
	struct nvme_cq *cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NVME_SC_INTERNAL;
	cq->qid = (uint16_t)qid;
	cq->iv = (uint16_t)iv;
	cq->ien = ien;
	cq->size = qsize;
	cq->gpa = c->prp1;
	cq->ring = ring;
	cq->phase = true;
	if (nvme_cq_start(n, cq) < 0) {
		nvme_cq_stop(cq);
		return NVME_SC_INTERNAL;
	}
	pthread_mutex_lock(&n->lock);
	n->cq[qid] = cq;
	nvme_dbbuf_init_queue_locked(n, qid);
	pthread_mutex_unlock(&n->lock);
	return NVME_SC_SUCCESS;
}

static uint16_t create_sq(struct nvme *n, const struct nvme_sqe *c)
{
	unsigned qid = c->cdw10 & 0xFFFF, qsize = (c->cdw10 >> 16) + 1;
	bool pc = c->cdw11 & 1;
	unsigned cqid = c->cdw11 >> 16;
	if (qid == 0 || qid > n->max_queues)
		return NVME_SC_QID_INVALID | DNR;
	pthread_mutex_lock(&n->lock);
	bool exists = n->sq[qid] != NULL;
	struct nvme_cq *cq = cqid >= 1 && cqid <= n->max_queues ? n->cq[cqid] : NULL;
	uint32_t cc = n->cc;
	pthread_mutex_unlock(&n->lock);
	if (exists)
		return NVME_SC_QID_INVALID | DNR;
	if (!cq)
		return NVME_SC_CQ_INVALID | DNR;
	if (qsize < 2 || qsize > NVME_MQES + 1)
		return NVME_SC_QUEUE_SIZE | DNR;
	if (!pc || NVME_CC_IOSQES(cc) != NVME_SQES)
		return NVME_SC_INVALID_FIELD | DNR;
	if (c->prp1 & (NVME_PAGE_SIZE - 1))
		return NVME_SC_INVALID_PRP_OFFSET | DNR;
	const void *ring = gmem_map(n->mem, c->prp1, (uint64_t)qsize * 64);
	if (!ring)
		return NVME_SC_DATA_XFER_ERROR | DNR;
	struct nvme_sq *sq = calloc(1, sizeof(*sq));
	struct nvme_req *slots = calloc(qsize, sizeof(*slots));
	if (!sq || !slots) {
		free(sq);
		free(slots);
		return NVME_SC_INTERNAL;
	}
	sq->qid = (uint16_t)qid;
	sq->cqid = (uint16_t)cqid;
	sq->size = qsize;
	sq->gpa = c->prp1;
	sq->ring = ring;
	sq->slots = slots;
	for (unsigned i = 0; i < qsize; i++) {
		slots[i].sq = sq;
		slots[i].next = sq->free_slots;
		sq->free_slots = &slots[i];
	}
	pthread_mutex_lock(&cq->lock);
	cq->sqs[cq->nsqs++] = sq;
	pthread_mutex_unlock(&cq->lock);
	pthread_mutex_lock(&n->lock);
	n->sq[qid] = sq;
	nvme_dbbuf_init_queue_locked(n, qid);
	pthread_mutex_unlock(&n->lock);
	return NVME_SC_SUCCESS;
}

static uint16_t cmd_delete_sq(struct nvme *n, const struct nvme_sqe *c)
{
	unsigned qid = c->cdw10 & 0xFFFF;
	if (qid == 0 || qid > n->max_queues)
		return NVME_SC_QID_INVALID | DNR;
	pthread_mutex_lock(&n->lock);
	bool exists = n->sq[qid] != NULL;
	pthread_mutex_unlock(&n->lock);
	if (!exists)
		return NVME_SC_QID_INVALID | DNR;
	delete_sq(n, qid);
	return NVME_SC_SUCCESS;
}

static uint16_t cmd_delete_cq(struct nvme *n, const struct nvme_sqe *c)
{
	unsigned qid = c->cdw10 & 0xFFFF;
	if (qid == 0 || qid > n->max_queues)
		return NVME_SC_QID_INVALID | DNR;
	pthread_mutex_lock(&n->lock);
	struct nvme_cq *cq = n->cq[qid];
	pthread_mutex_unlock(&n->lock);
	if (!cq)
		return NVME_SC_QID_INVALID | DNR;
	pthread_mutex_lock(&cq->lock);
	unsigned nsqs = cq->nsqs;
	pthread_mutex_unlock(&cq->lock);
	if (nsqs)
		return NVME_SC_INVALID_QUEUE_DELETION | DNR;
	delete_cq(n, qid);
	return NVME_SC_SUCCESS;
}

/* ---- features ------------------------------------------------------------ */

static bool any_io_queue(struct nvme *n)
{
	bool any = false;
	pthread_mutex_lock(&n->lock);
	for (unsigned q = 1; q <= n->max_queues; q++)
		any |= n->sq[q] || n->cq[q];
	pthread_mutex_unlock(&n->lock);
	return any;
}

static uint16_t features(struct nvme *n, const struct nvme_sqe *c, bool set, uint32_t *res)
{
	unsigned fid = c->cdw10 & 0xFF;
	uint32_t v = c->cdw11;
	unsigned sel = (c->cdw10 >> 8) & 7;
	if (set && (c->cdw10 & (1u << 31)))
		return NVME_SC_FEATURE_NOT_SAVEABLE | DNR;
	if (!set && sel > 3)
		return NVME_SC_INVALID_FIELD | DNR;
	if (!set && sel == 3) {
		switch (fid) {
		case NVME_FEAT_ARBITRATION: case NVME_FEAT_POWER_MGMT: case NVME_FEAT_TEMP_THRESH:
		case NVME_FEAT_ERR_RECOVERY: case NVME_FEAT_VOLATILE_WC: case NVME_FEAT_NUM_QUEUES:
		case NVME_FEAT_IRQ_COALESCE: case NVME_FEAT_IRQ_CONFIG: case NVME_FEAT_WRITE_ATOMIC:
		case NVME_FEAT_ASYNC_EVENT:
			*res = 1u << 2; /* changeable, not saveable, not per namespace */
			return NVME_SC_SUCCESS;
		}
		return NVME_SC_INVALID_FIELD | DNR;
	}
	bool dflt = !set && sel != 0; /* default and saved are the defaults */
	switch (fid) {
	case NVME_FEAT_ARBITRATION:
		if (set)
			n->feat_arb = v;
		*res = dflt ? 0 : n->feat_arb;
		return NVME_SC_SUCCESS;
	case NVME_FEAT_POWER_MGMT:
		if (set) {
			if ((v & 0x1F) != 0) /* only power state 0 exists */
				return NVME_SC_INVALID_FIELD | DNR;
			n->feat_pm = v & 0xFF;
		}
		*res = dflt ? 0 : n->feat_pm;
		return NVME_SC_SUCCESS;
	case NVME_FEAT_TEMP_THRESH: {
		unsigned tmpsel = (v >> 16) & 0xF, thsel = (v >> 20) & 3;
		if (tmpsel != 0 || thsel > 1)
			return NVME_SC_INVALID_FIELD | DNR;
		uint16_t *t = thsel ? &n->temp_under : &n->temp_over;
		if (set)
			*t = v & 0xFFFF;
		*res = dflt ? (thsel ? 0 : 0x157) : *t;
		return NVME_SC_SUCCESS;
	}
	case NVME_FEAT_ERR_RECOVERY:
		if (set)
			n->feat_err_rec = v & 0xFFFF;
		*res = dflt ? 0 : n->feat_err_rec;
		return NVME_SC_SUCCESS;
	case NVME_FEAT_VOLATILE_WC:
		if (set)
			atomic_store(&n->vwc, v & 1);
		*res = dflt ? 1 : atomic_load(&n->vwc);
		return NVME_SC_SUCCESS;
	case NVME_FEAT_NUM_QUEUES:
		if (set) {
			if ((v & 0xFFFF) == 0xFFFF || (v >> 16) == 0xFFFF)
				return NVME_SC_INVALID_FIELD | DNR;
			if (any_io_queue(n))
				return NVME_SC_CMD_SEQ_ERROR | DNR;
		}
		*res = (n->max_queues - 1) << 16 | (n->max_queues - 1);
		return NVME_SC_SUCCESS;
	case NVME_FEAT_IRQ_COALESCE:
		if (set)
			n->feat_coalesce = v & 0xFFFF;
		*res = dflt ? 0 : n->feat_coalesce;
		return NVME_SC_SUCCESS;
	case NVME_FEAT_IRQ_CONFIG: {
		unsigned iv = v & 0xFFFF;
		if (iv >= n->nvectors || iv > NVME_MAX_IO_QUEUES)
			return NVME_SC_INVALID_FIELD | DNR;
		if (set)
			n->irq_cd[iv] = (v >> 16) & 1;
		*res = iv | (uint32_t)(dflt ? 0 : n->irq_cd[iv]) << 16;
		return NVME_SC_SUCCESS;
	}
	case NVME_FEAT_WRITE_ATOMIC:
		if (set)
			n->feat_wa = v & 1;
		*res = dflt ? 0 : n->feat_wa;
		return NVME_SC_SUCCESS;
	case NVME_FEAT_ASYNC_EVENT:
		if (set)
			n->feat_aec = v & 0x3FF;
		*res = dflt ? 0 : n->feat_aec;
		return NVME_SC_SUCCESS;
	}
	return NVME_SC_INVALID_FIELD | DNR;
}

/* ---- log pages ----------------------------------------------------------- */

static void put128(uint8_t *p, uint64_t v)
{
	put64(p, v);
	put64(p + 8, 0);
}

static uint16_t get_log_page(struct nvme *n, const struct nvme_sqe *c)
{
	static uint8_t log[NVME_PAGE_SIZE]; /* admin worker only */
	unsigned lid = c->cdw10 & 0xFF;
	bool rae = c->cdw10 & (1u << 15);
	uint64_t numd = ((uint64_t)(c->cdw11 & 0xFFFF) << 16 | (c->cdw10 >> 16)) + 1;
	uint64_t len = numd * 4;
	uint64_t off = (uint64_t)c->cdw13 << 32 | c->cdw12;
	uint64_t size;
	memset(log, 0, sizeof(log));
	switch (lid) {
	case NVME_LOG_ERROR:
		size = 64 * 64; /* ELPE + 1 entries */
		pthread_mutex_lock(&n->lock);
		put64(log, n->error_count); /* newest entry: only its count */
		pthread_mutex_unlock(&n->lock);
		break;
	case NVME_LOG_SMART:
		size = 512;
		put16(log + 1, 0x0137);  /* composite temperature: 311 K */
		log[3] = 100;            /* available spare */
		log[4] = 10;             /* threshold */
		put128(log + 32, (atomic_load(&n->sectors_read) + 999) / 1000);
		put128(log + 48, (atomic_load(&n->sectors_written) + 999) / 1000);
		put128(log + 64, atomic_load(&n->cmds_read));
		put128(log + 80, atomic_load(&n->cmds_written));
		put128(log + 112, 1);    /* power cycles */
		pthread_mutex_lock(&n->lock);
		put128(log + 176, n->error_count);
		pthread_mutex_unlock(&n->lock);
		break;
	case NVME_LOG_FW_SLOT:
		size = 512;
		log[0] = 1;              /* AFI: slot 1 active */
		memcpy(log + 8, "1.0     ", 8);
		break;
	default:
		return NVME_SC_INVALID_LOG_PAGE | DNR;
	}
	if ((off & 3) || off >= size)
		return NVME_SC_INVALID_FIELD | DNR;
	if (len > NVME_MAX_XFER)
		return NVME_SC_INVALID_FIELD | DNR;
	uint64_t n_copy = size - off < len ? size - off : len;
	struct iovec iov[NVME_MAX_IOV];
	unsigned niov;
	uint16_t st = nvme_prp_map(n->mem, c->prp1, c->prp2, len, iov, NVME_MAX_IOV, &niov);
	if (st)
		return st;
	nvme_buf_to_iov(iov, niov, log + off, n_copy);
	if (!rae) {
		pthread_mutex_lock(&n->lock);
		if (lid == NVME_LOG_ERROR)
			n->aer_masked &= ~(1u << NVME_AER_TYPE_ERROR);
		else if (lid == NVME_LOG_SMART)
			n->aer_masked &= ~(1u << NVME_AER_TYPE_SMART);
		pthread_mutex_unlock(&n->lock);
		nvme_wake(n->admin_fd);
	}
	return NVME_SC_SUCCESS;
}

/* ---- Doorbell Buffer Config (NVMe 1.3 section 5.7) ----------------------- */

/*
 * PRP1: the shadow doorbell page, PRP2: the EventIdx page, each one
 * page-aligned page of guest RAM (else Invalid Field). From now on the
 * I/O queues' workers read SQ tails and CQ heads from the shadow page
 * too, and publish EventIdx; the admin queue keeps its MMIO doorbells.
 * Existing I/O queues' entries are synced to the controller's pointers.
 */
static uint16_t dbbuf_config(struct nvme *n, const struct nvme_sqe *c)
{
	if (!n->dbbuf_supported)
		return NVME_SC_INVALID_OPCODE | DNR;
	if ((c->prp1 | c->prp2) & (NVME_PAGE_SIZE - 1))
		return NVME_SC_INVALID_FIELD | DNR;
	uint32_t *shadow = gmem_map(n->mem, c->prp1, NVME_PAGE_SIZE);
	uint32_t *ei = gmem_map(n->mem, c->prp2, NVME_PAGE_SIZE);
	if (!shadow || !ei) {
		log_guest("nvme: doorbell buffers at 0x%llx/0x%llx not pages of RAM",
			  (unsigned long long)c->prp1, (unsigned long long)c->prp2);
		return NVME_SC_INVALID_FIELD | DNR;
	}
	pthread_mutex_lock(&n->lock);
	n->dbbuf_shadow = shadow;
	n->dbbuf_eventidx = ei;
	for (unsigned q = 1; q <= n->max_queues; q++)
		nvme_dbbuf_init_queue_locked(n, q);
	atomic_store(&n->dbbuf_on, true);
	pthread_mutex_unlock(&n->lock);
	return NVME_SC_SUCCESS;
}

/* ---- dispatch -------------------------------------------------------------- */

/* Returns false when no completion is to be posted now (AER). */
static bool exec_admin(struct nvme *n, const struct nvme_sqe *c, uint16_t *st, uint32_t *res)
{
	*res = 0;
	if (c->flags & 0xC3) { /* PSDT (SGLs) or FUSE */
		*st = NVME_SC_INVALID_FIELD | DNR;
		return true;
	}
	switch (c->opcode) {
	case NVME_ADM_IDENTIFY: *st = identify(n, c); break;
	case NVME_ADM_CREATE_CQ: *st = create_cq(n, c); break;
	case NVME_ADM_CREATE_SQ: *st = create_sq(n, c); break;
	case NVME_ADM_DELETE_SQ: *st = cmd_delete_sq(n, c); break;
	case NVME_ADM_DELETE_CQ: *st = cmd_delete_cq(n, c); break;
	case NVME_ADM_GET_FEATURES: *st = features(n, c, false, res); break;
	case NVME_ADM_SET_FEATURES: *st = features(n, c, true, res); break;
	case NVME_ADM_GET_LOG_PAGE: *st = get_log_page(n, c); break;
	case NVME_ADM_DBBUF_CONFIG: *st = dbbuf_config(n, c); break;
	case NVME_ADM_ABORT:
		/* Commands are never held back, so none can be aborted:
		 * dword 0 bit 0 set means "not aborted". */
		*res = 1;
		*st = NVME_SC_SUCCESS;
		break;
	case NVME_ADM_ASYNC_EVENT:
		pthread_mutex_lock(&n->lock);
		if (n->naer_cids > NVME_AERL) {
			pthread_mutex_unlock(&n->lock);
			*st = NVME_SC_ASYNC_LIMIT | DNR;
			return true;
		}
		n->aer_cids[n->naer_cids++] = c->cid;
		pthread_mutex_unlock(&n->lock);
		return false;
	default:
		log_guest("nvme: unknown admin opcode 0x%02x", c->opcode);
		*st = NVME_SC_INVALID_OPCODE | DNR;
	}
	return true;
}

/* Completes AERs for events whose type is not masked. */
static bool aer_dispatch(struct nvme *n, struct nvme_cq *cq, struct nvme_sq *sq)
{
	bool posted = false;
	pthread_mutex_lock(&n->lock);
	unsigned i = 0;
	while (i < n->naer_events && n->naer_cids && !nvme_cq_full(cq)) {
		uint32_t ev = n->aer_events[i];
		unsigned type = ev & 7;
		if (n->aer_masked & (1u << type)) {
			i++;
			continue;
		}
		n->aer_masked |= 1u << type;
		uint16_t cid = n->aer_cids[0];
		memmove(n->aer_cids, n->aer_cids + 1, --n->naer_cids * sizeof(uint16_t));
		memmove(n->aer_events + i, n->aer_events + i + 1,
			(--n->naer_events - i) * sizeof(uint32_t));
		nvme_cq_post(cq, 0, (uint16_t)atomic_load(&sq->head), cid, NVME_SC_SUCCESS, ev);
		posted = true;
	}
	pthread_mutex_unlock(&n->lock);
	return posted;
}

bool nvme_admin_run(struct nvme *n)
{
	bool progress = false;
	pthread_mutex_lock(&n->lock);
	bool dirty = n->cc_dirty;
	uint32_t cc = n->cc;
	n->cc_dirty = false;
	pthread_mutex_unlock(&n->lock);
	if (dirty)
		progress |= apply_cc(n, cc);
	pthread_mutex_lock(&n->lock);
	bool ready = (n->csts & NVME_CSTS_RDY) && !(n->csts & NVME_CSTS_SHST_MASK);
	struct nvme_sq *sq = n->sq[0];
	struct nvme_cq *cq = n->cq[0];
	pthread_mutex_unlock(&n->lock);
	if (!ready || !sq || !cq)
		return progress;
	bool posted = aer_dispatch(n, cq, sq);
	/* Bounded per round; the doorbell wakes us again. */
	for (unsigned k = 0; k < sq->size && !nvme_cq_full(cq); k++) {
		uint32_t head = atomic_load(&sq->head);
		uint32_t tail = atomic_load_explicit(&sq->tail, memory_order_acquire);
		if (head == tail)
			break;
		struct nvme_sqe c;
		memcpy(&c, sq->ring + (size_t)head * 64, sizeof(c));
		atomic_store(&sq->head, (head + 1) % sq->size);
		uint16_t st;
		uint32_t res;
		if (exec_admin(n, &c, &st, &res)) {
			nvme_cq_post(cq, 0, (uint16_t)atomic_load(&sq->head), c.cid, st, res);
			posted = true;
		}
		progress = true;
		posted |= aer_dispatch(n, cq, sq);
	}
	if (posted) {
		nvme_cq_irq(cq);
		progress = true;
	}
	return progress;
}
