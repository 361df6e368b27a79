/*
 * NVMe I/O queues (NVM Express Base 1.4c sections 4.1-4.6 and the NVM
 * command set: Read, Write with FUA, Flush, Dataset Management with
 * deallocate, Write Zeroes). A completion queue's worker runs
 * nvme_cq_run(): it reaps its disk queues, fetches new SQEs from the SQs
 * bound to the CQ (copying each 64-byte entry out of guest RAM before
 * looking at it), validates and submits them, and posts completions with
 * the phase tag, raising the CQ's MSI-X vector once per batch. A full CQ
 * holds completions back until the host's CQ head doorbell makes room.
 */
#include <errno.h>
#include <string.h>

#include "core/gmem.h"
#include "core/log.h"
#include "dev/nvme_impl.h"
#include "dev/pci.h"

#define DNR NVME_SC_DNR

bool nvme_cq_full(const struct nvme_cq *cq)
{
	return (cq->tail + 1) % cq->size == atomic_load(&cq->head);
}

bool nvme_cq_post(struct nvme_cq *cq, uint16_t sqid, uint16_t sqhead, uint16_t cid,
		  uint16_t status, uint32_t result)
{
	if (nvme_cq_full(cq))
		return false;
	uint8_t *e = cq->ring + (size_t)cq->tail * sizeof(struct nvme_cqe);
	struct nvme_cqe c = {
		.result = result, .sq_head = sqhead, .sq_id = sqid, .cid = cid,
	};
	memcpy(e, &c, 14);
	/* The phase tag publishes the entry: write it last, after a
	 * release fence pairing with the host's read of the phase. */
	atomic_thread_fence(memory_order_release);
	uint16_t st = (uint16_t)(status << 1 | (cq->phase ? 1 : 0));
	__atomic_store_n((uint16_t *)(e + 14), st, __ATOMIC_RELAXED);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase = !cq->phase;
	}
	atomic_store(&cq->tail_pub, cq->tail);
	return true;
}

void nvme_cq_irq(struct nvme_cq *cq)
{
	if (cq->ien)
		pci_msix_notify(cq->n->pci, cq->iv);
}

/* ---- request completion --------------------------------------------------- */

static void finish(struct nvme_cq *cq, struct nvme_req *r, uint16_t status)
{
	r->status = status;
	r->next = NULL;
	*cq->done_tail = r;
	cq->done_tail = &r->next;
}

static void retry_push(struct nvme_cq *cq, struct nvme_req *r)
{
	r->next = NULL;
	*cq->retry_tail = r;
	cq->retry_tail = &r->next;
}

static uint16_t errno_status(const struct nvme_req *r, int err)
{
	switch (err) {
	case -EROFS:
		return NVME_SC_NS_WRITE_PROTECTED | DNR;
	case -EINVAL:
		return NVME_SC_INVALID_FIELD | DNR;
	case -EIO:
		if (r->opcode == NVME_CMD_READ)
			return NVME_SC_READ_ERROR;
		return NVME_SC_WRITE_FAULT;
	}
	return NVME_SC_INTERNAL;
}

/*
 * DSM: sets up the disk request for the next range to deallocate. 0 when
 * dreq is ready, 1 when every range is done, or a status (as -status).
 */
static int dsm_next(struct nvme *n, struct nvme_req *r)
{
	const struct nvme_ns *ns = &n->ns[r->ns];
	while (r->dsm_next < r->dsm_count) {
		struct nvme_dsm_range rg;
		nvme_iov_to_buf(r->iov, r->niov, (uint64_t)r->dsm_next * sizeof(rg), &rg, sizeof(rg));
		r->dsm_next++;
		if (rg.slba > ns->nlba || rg.nlb > ns->nlba - rg.slba)
			return -(int)(NVME_SC_LBA_RANGE | DNR);
		if (rg.nlb == 0 || !disk_can_discard(ns->disk))
			continue; /* deallocation is advisory */
		r->dreq.op = DISK_DISCARD;
		r->dreq.offset = rg.slba << NVME_LBA_SHIFT;
		r->dreq.len = (uint64_t)rg.nlb << NVME_LBA_SHIFT;
		r->dreq.iov = NULL;
		r->dreq.iovcnt = 0;
		return 0;
	}
	return 1;
}

static void io_done(struct disk_req *dr, int result)
{
	struct nvme_req *r = (struct nvme_req *)dr; /* dreq is the first member */
	struct nvme_cq *cq = dr->opaque;
	if (result < 0 && !(r->opcode == NVME_CMD_DSM && result == -EOPNOTSUPP)) {
		log_guest("nvme: %s failed: %d", disk_describe(cq->n->ns[r->ns].disk), result);
		finish(cq, r, errno_status(r, result));
		return;
	}
	if (r->opcode == NVME_CMD_DSM) {
		int s = dsm_next(cq->n, r);
		if (s == 0) {
			retry_push(cq, r); /* submitted on this round's retry pass */
			return;
		}
		finish(cq, r, s < 0 ? (uint16_t)-s : NVME_SC_SUCCESS);
		return;
	}
	finish(cq, r, NVME_SC_SUCCESS);
}

/* 0 submitted, 1 queue full (retry later), or a status (as -status). */
static int submit(struct nvme_cq *cq, struct nvme_req *r)
{
	int ret = disk_queue_submit(cq->dq[r->ns], &r->dreq);
	if (ret == -EAGAIN)
		return 1;
	if (ret == -EOPNOTSUPP && r->opcode == NVME_CMD_DSM) {
		io_done(&r->dreq, ret);
		return 0;
	}
	if (ret < 0)
		return -(int)errno_status(r, ret);
	return 0;
}

/* ---- command decoding ----------------------------------------------------- */

/* Validates and starts one command; returns a status to complete with now,
 * or NVME_SC_SUCCESS with *started (submitted or parked for retry). */
static uint16_t exec_io(struct nvme_cq *cq, struct nvme_req *r, const struct nvme_sqe *c,
			bool *started)
{
	struct nvme *n = cq->n;
	*started = false;
	if (c->flags & 0xC3) /* PSDT: no SGLs; FUSE: no fused operations */
		return NVME_SC_INVALID_FIELD | DNR;
	switch (c->opcode) {
	case NVME_CMD_FLUSH: case NVME_CMD_WRITE: case NVME_CMD_READ:
	case NVME_CMD_WRITE_ZEROES: case NVME_CMD_DSM:
		break;
	default:
		log_guest("nvme: unknown I/O opcode 0x%02x", c->opcode);
		return NVME_SC_INVALID_OPCODE | DNR;
	}
	if (c->nsid == 0 || c->nsid > n->nns)
		return NVME_SC_INVALID_NS | DNR;
	r->ns = c->nsid - 1;
	const struct nvme_ns *ns = &n->ns[r->ns];
	memset(&r->dreq, 0, sizeof(r->dreq));
	r->dreq.done = io_done;
	r->dreq.opaque = cq;
	uint64_t slba = (uint64_t)c->cdw11 << 32 | c->cdw10;
	uint64_t nlb = (c->cdw12 & 0xFFFF) + 1ull;
	switch (c->opcode) {
	case NVME_CMD_FLUSH:
		r->dreq.op = DISK_FLUSH;
		break;
	case NVME_CMD_READ:
	case NVME_CMD_WRITE: {
		if (slba > ns->nlba || nlb > ns->nlba - slba)
			return NVME_SC_LBA_RANGE | DNR;
		uint64_t len = nlb << NVME_LBA_SHIFT;
		if (len > NVME_MAX_XFER)
			return NVME_SC_INVALID_FIELD | DNR;
		bool wr = c->opcode == NVME_CMD_WRITE;
		if (wr && ns->ro)
			return NVME_SC_NS_WRITE_PROTECTED | DNR;
		uint16_t st = nvme_prp_map(n->mem, c->prp1, c->prp2, len, r->iov, NVME_MAX_IOV,
					   &r->niov);
		if (st)
			return st;
		r->dreq.op = wr ? DISK_WRITE : DISK_READ;
		r->dreq.offset = slba << NVME_LBA_SHIFT;
		r->dreq.len = len;
		r->dreq.iov = r->iov;
		r->dreq.iovcnt = r->niov;
		/* FUA, or every write when the host turned the cache off. */
		r->dreq.fua = wr && ((c->cdw12 & (1u << 30)) || !atomic_load(&n->vwc));
		if (wr) {
			atomic_fetch_add_explicit(&n->sectors_written, nlb, memory_order_relaxed);
			atomic_fetch_add_explicit(&n->cmds_written, 1, memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&n->sectors_read, nlb, memory_order_relaxed);
			atomic_fetch_add_explicit(&n->cmds_read, 1, memory_order_relaxed);
		}
		break;
	}
	case NVME_CMD_WRITE_ZEROES:
		if (slba > ns->nlba || nlb > ns->nlba - slba)
			return NVME_SC_LBA_RANGE | DNR;
		if (ns->ro)
			return NVME_SC_NS_WRITE_PROTECTED | DNR;
		r->dreq.op = DISK_WRITE_ZEROES;
		r->dreq.offset = slba << NVME_LBA_SHIFT;
		r->dreq.len = nlb << NVME_LBA_SHIFT;
		break;
	case NVME_CMD_DSM: {
		unsigned nr = (c->cdw10 & 0xFF) + 1;
		if (!(c->cdw11 & 4)) /* no deallocate: attributes are hints */
			return NVME_SC_SUCCESS;
		if (ns->ro)
			return NVME_SC_NS_WRITE_PROTECTED | DNR;
		uint16_t st = nvme_prp_map(n->mem, c->prp1, c->prp2,
					   nr * sizeof(struct nvme_dsm_range), r->iov,
					   NVME_MAX_IOV, &r->niov);
		if (st)
			return st;
		r->dsm_next = 0;
		r->dsm_count = (uint16_t)nr;
		int s = dsm_next(n, r);
		if (s)
			return s < 0 ? (uint16_t)-s : NVME_SC_SUCCESS;
		break;
	}
	}
	int s = submit(cq, r);
	if (s < 0)
		return (uint16_t)-s;
	if (s == 1)
		retry_push(cq, r);
	*started = true;
	return NVME_SC_SUCCESS;
}

/* Fetches up to one queue's worth of commands from sq. */
static bool fetch(struct nvme_cq *cq, struct nvme_sq *sq)
{
	bool progress = false;
	for (unsigned k = 0; k < sq->size && !cq->retry; k++) {
		uint32_t head = atomic_load(&sq->head);
		/* Acquire pairs with the doorbell's store of the tail, which
		 * the host wrote after the SQE. */
		uint32_t tail = atomic_load_explicit(&sq->tail, memory_order_acquire);
		if (head == tail || !sq->free_slots)
			break;
		struct nvme_sqe c;
		memcpy(&c, sq->ring + (size_t)head * sizeof(c), sizeof(c));
		atomic_store(&sq->head, (head + 1) % sq->size);
		struct nvme_req *r = sq->free_slots;
		sq->free_slots = r->next;
		sq->inflight++;
		r->cid = c.cid;
		r->opcode = c.opcode;
		r->result = 0;
		r->ns = 0;
		bool started;
		uint16_t st = exec_io(cq, r, &c, &started);
		if (!started)
			finish(cq, r, st);
		progress = true;
	}
	return progress;
}

static bool run_retries(struct nvme_cq *cq)
{
	bool progress = false;
	while (cq->retry) {
		struct nvme_req *r = cq->retry;
		cq->retry = r->next;
		if (!cq->retry)
			cq->retry_tail = &cq->retry;
		int s = submit(cq, r);
		if (s == 1) {
			/* Still full: put it back at the head. */
			r->next = cq->retry;
			cq->retry = r;
			if (!r->next)
				cq->retry_tail = &r->next;
			break;
		}
		if (s < 0)
			finish(cq, r, (uint16_t)-s);
		progress = true;
	}
	return progress;
}

/* Posts finished requests while the CQ has room; returns how many. */
static unsigned post_done(struct nvme_cq *cq)
{
	unsigned posted = 0;
	while (cq->done) {
		struct nvme_req *r = cq->done;
		struct nvme_sq *sq = r->sq;
		if (!atomic_load(&sq->deleting)) {
			if (nvme_cq_full(cq)) {
				/* Ask the CQ head doorbell to wake us, then look
				 * again in case it was rung meanwhile. */
				atomic_store(&cq->want_head, true);
				if (nvme_cq_full(cq))
					break;
				atomic_store(&cq->want_head, false);
			}
			nvme_cq_post(cq, sq->qid, (uint16_t)atomic_load(&sq->head), r->cid,
				     r->status, r->result);
			posted++;
		} /* else: implicitly aborted by Delete I/O SQ (section 5.7) */
		cq->done = r->next;
		if (!cq->done)
			cq->done_tail = &cq->done;
		r->next = sq->free_slots;
		sq->free_slots = r;
		sq->inflight--;
	}
	return posted;
}

bool nvme_cq_run(struct nvme_cq *cq)
{
	/* Shadow doorbells first (n->lock, taken before cq->lock). */
	bool progress = nvme_dbbuf_pull(cq);
	pthread_mutex_lock(&cq->lock);
	for (unsigned i = 0; i < cq->n->nns; i++)
		progress |= disk_queue_complete(cq->dq[i]) > 0;
	progress |= run_retries(cq);
	for (unsigned i = 0; i < cq->nsqs; i++)
		if (!atomic_load(&cq->sqs[i]->deleting))
			progress |= fetch(cq, cq->sqs[i]);
	unsigned posted = post_done(cq);
	if (posted) {
		nvme_cq_irq(cq);
		progress = true;
	}
	for (unsigned i = 0; i < cq->nsqs; i++)
		if (atomic_load(&cq->sqs[i]->deleting) && cq->sqs[i]->inflight == 0)
			pthread_cond_broadcast(&cq->cond);
	pthread_mutex_unlock(&cq->lock);
	return progress;
}
