/*
 * NVMe controller: the PCI function, the controller registers (NVM
 * Express Base 1.4c section 3.1: CAP, VS, CC, CSTS, AQA, ASQ, ACQ), the
 * doorbells (section 3.1.16/17, validated as section 4.1 requires: a write
 * to a missing queue's doorbell or of a value past the queue, or one that
 * moves a pointer backwards over entries, is ignored and reported with an
 * asynchronous event, section 5.2), controller enable, reset and shutdown
 * (section 7.6), the shadow doorbells and EventIdx of Doorbell Buffer
 * Config (NVMe 1.3 section 5.7; the virtio event-index rule: the host
 * rings the MMIO doorbell only when its new value passes EventIdx), and
 * the worker threads. See nvme.h for the threading.
 */
#include "dev/nvme.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/gmem.h"
#include "core/log.h"
#include "dev/nvme_impl.h"
#include "dev/pci.h"

#define NVME_VENDOR_ID 0x1414
#define NVME_DEVICE_ID 0xB111
#define NVME_CAP_TO 20 /* CAP.TO: 10 s in 500 ms units */

void nvme_wake(int fd)
{
	uint64_t one = 1;
	ssize_t r = write(fd, &one, sizeof(one));
	(void)r; /* EAGAIN only when the counter is saturated: still awake */
}

static void drain_fd(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
}

static uint64_t cap_value(const struct nvme *n)
{
	(void)n;
	return (uint64_t)NVME_MQES |
	       1ull << 16 |                 /* CQR: contiguous queues required */
	       (uint64_t)NVME_CAP_TO << 24 |
	       1ull << 37;                  /* CSS: NVM command set */
	/* DSTRD = 0, MPSMIN = MPSMAX = 0 (4 KiB pages), no NSSR. */
}

/* ---- asynchronous events ---------------------------------------------- */

/* Queues an event for the admin worker. n->lock held. */
void nvme_aer_post_locked(struct nvme *n, unsigned type, unsigned info, unsigned log)
{
	n->error_count += type == NVME_AER_TYPE_ERROR;
	if (n->naer_events == NVME_MAX_AER_EVENTS)
		return; /* the host is not reading them: drop */
	n->aer_events[n->naer_events++] = type | info << 8 | log << 16;
	nvme_wake(n->admin_fd);
}

/* ---- registers and doorbells ------------------------------------------ */

static void bad_doorbell(struct nvme *n, unsigned info, unsigned qid, bool cq, uint32_t v)
{
	log_guest("nvme: invalid %s doorbell write, queue %u value %u", cq ? "CQ head" : "SQ tail",
		  qid, v);
	nvme_aer_post_locked(n, NVME_AER_TYPE_ERROR, info, NVME_LOG_ERROR);
}

/* Entries from a to b going forward around a ring of size s. */
static uint32_t ring_dist(uint32_t a, uint32_t b, uint32_t s)
{
	return b >= a ? b - a : s - a + b;
}

/*
 * Applies a doorbell value, n->lock held, the controller ready: the SQ
 * tail or CQ head of queue qid. A shadow value (read from the Doorbell
 * Buffer by the queue's own worker) wakes nobody, and an invalid one is
 * reported once, not at every poll (the host's buffer keeps it). True if
 * the pointer moved.
 */
static bool doorbell_locked(struct nvme *n, unsigned qid, bool is_cq, uint32_t v, bool shadow)
{
	if (qid > n->max_queues) {
		bad_doorbell(n, NVME_AER_INFO_ERR_INVALID_DB_REG, qid, is_cq, v);
		return false;
	}
	if (is_cq) {
		struct nvme_cq *cq = n->cq[qid];
		if (!cq) {
			bad_doorbell(n, NVME_AER_INFO_ERR_INVALID_DB_REG, qid, true, v);
			return false;
		}
		uint32_t head = atomic_load(&cq->head);
		uint32_t tail = atomic_load(&cq->tail_pub);
		if (shadow && v == head)
			return false;
		/* The host may only consume entries the controller posted. */
		if (v >= cq->size || ring_dist(head, v, cq->size) > ring_dist(head, tail, cq->size)) {
			if (!shadow || cq->shadow_bad != v + 1)
				bad_doorbell(n, NVME_AER_INFO_ERR_INVALID_DB_VALUE, qid, true, v);
			if (shadow)
				cq->shadow_bad = v + 1;
			return false;
		}
		atomic_store(&cq->head, v);
		if (shadow)
			atomic_store(&cq->want_head, false);
		else if (qid == 0 || atomic_exchange(&cq->want_head, false))
			nvme_wake(cq->wake_fd);
		return true;
	}
	struct nvme_sq *sq = n->sq[qid];
	if (!sq) {
		bad_doorbell(n, NVME_AER_INFO_ERR_INVALID_DB_REG, qid, false, v);
		return false;
	}
	uint32_t head = atomic_load(&sq->head);
	uint32_t tail = atomic_load(&sq->tail);
	if (shadow && v == tail)
		return false;
	/* The tail only moves forward over entries not yet fetched. */
	if (v >= sq->size || ring_dist(head, v, sq->size) < ring_dist(head, tail, sq->size)) {
		if (!shadow || sq->shadow_bad != v + 1)
			bad_doorbell(n, NVME_AER_INFO_ERR_INVALID_DB_VALUE, qid, false, v);
		if (shadow)
			sq->shadow_bad = v + 1;
		return false;
	}
	atomic_store(&sq->tail, v);
	if (shadow)
		return true;
	if (qid == 0)
		nvme_wake(n->admin_fd);
	else if (atomic_exchange(&n->cq[sq->cqid]->sleeping, false))
		nvme_wake(n->cq[sq->cqid]->wake_fd);
	return true;
}

static void doorbell(struct nvme *n, uint64_t off, uint32_t v)
{
	unsigned idx = (unsigned)((off - NVME_REG_DBS) / 4);
	pthread_mutex_lock(&n->lock);
	if (!(n->csts & NVME_CSTS_RDY)) {
		pthread_mutex_unlock(&n->lock);
		log_guest("nvme: doorbell write while the controller is not ready");
		return;
	}
	doorbell_locked(n, idx / 2, idx & 1, v, false);
	pthread_mutex_unlock(&n->lock);
}

/* ---- shadow doorbells (Doorbell Buffer Config) ------------------------- */

static uint32_t shadow_load(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void shadow_store(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

bool nvme_dbbuf_pull(struct nvme_cq *cq)
{
	struct nvme *n = cq->n;
	if (!atomic_load_explicit(&n->dbbuf_on, memory_order_relaxed))
		return false;
	bool moved = false;
	pthread_mutex_lock(&n->lock);
	if (n->dbbuf_shadow && (n->csts & NVME_CSTS_RDY) && n->cq[cq->qid] == cq) {
		for (unsigned q = 1; q <= n->max_queues; q++) {
			struct nvme_sq *sq = n->sq[q];
			if (sq && sq->cqid == cq->qid)
				moved |= doorbell_locked(n, q, false, shadow_load(&n->dbbuf_shadow[2 * q]),
							 true);
		}
		moved |= doorbell_locked(n, cq->qid, true,
					 shadow_load(&n->dbbuf_shadow[2 * cq->qid + 1]), true);
	}
	pthread_mutex_unlock(&n->lock);
	return moved;
}

void nvme_dbbuf_arm(struct nvme_cq *cq)
{
	struct nvme *n = cq->n;
	if (!atomic_load_explicit(&n->dbbuf_on, memory_order_relaxed))
		return;
	pthread_mutex_lock(&n->lock);
	if (n->dbbuf_eventidx && n->cq[cq->qid] == cq) {
		for (unsigned q = 1; q <= n->max_queues; q++) {
			struct nvme_sq *sq = n->sq[q];
			if (sq && sq->cqid == cq->qid)
				shadow_store(&n->dbbuf_eventidx[2 * q], atomic_load(&sq->tail));
		}
		/* The worker only needs the CQ head when it waits for room:
		 * otherwise one behind the head, which the host's next moves
		 * do not pass (until a wrap of its 16-bit arithmetic). */
		uint32_t head = atomic_load(&cq->head);
		shadow_store(&n->dbbuf_eventidx[2 * cq->qid + 1],
			     atomic_load(&cq->want_head) ? head : (head - 1) & 0xFFFF);
	}
	pthread_mutex_unlock(&n->lock);
	/* EventIdx stores before the caller's re-read of the shadow values
	 * (the host stores its shadow value before reading EventIdx). */
	atomic_thread_fence(memory_order_seq_cst);
}

void nvme_dbbuf_init_queue_locked(struct nvme *n, unsigned qid)
{
	if (!n->dbbuf_shadow || qid == 0 || qid > n->max_queues)
		return;
	if (n->sq[qid]) {
		uint32_t t = atomic_load(&n->sq[qid]->tail);
		shadow_store(&n->dbbuf_shadow[2 * qid], t);
		shadow_store(&n->dbbuf_eventidx[2 * qid], t);
		n->sq[qid]->shadow_bad = 0;
	}
	if (n->cq[qid]) {
		uint32_t h = atomic_load(&n->cq[qid]->head);
		shadow_store(&n->dbbuf_shadow[2 * qid + 1], h);
		shadow_store(&n->dbbuf_eventidx[2 * qid + 1], h);
		n->cq[qid]->shadow_bad = 0;
	}
}

void nvme_bar0_read(struct nvme *n, uint64_t off, void *data, unsigned size)
{
	uint64_t v = 0;
	memset(data, 0, size);
	if ((size != 4 && size != 8) || (off & (size - 1)) || off >= NVME_REG_DBS)
		return; /* doorbells are write-only; reads return 0 */
	pthread_mutex_lock(&n->lock);
	uint64_t base = off & ~7ull;
	switch (base) {
	case NVME_REG_CAP: v = cap_value(n); break;
	case NVME_REG_VS: v = 0x00010400 | (uint64_t)0 << 32; break; /* VS | INTMS */
	case NVME_REG_INTMC: v = (uint64_t)n->cc << 32; break;       /* INTMC | CC */
	case 0x18: v = (uint64_t)n->csts << 32; break;              /* rsvd | CSTS */
	case NVME_REG_NSSR: v = (uint64_t)n->aqa << 32; break;      /* NSSR | AQA */
	case NVME_REG_ASQ: v = n->asq; break;
	case NVME_REG_ACQ: v = n->acq; break;
	}
	pthread_mutex_unlock(&n->lock);
	if (size == 4)
		v >>= (off & 4) * 8;
	memcpy(data, &v, size);
}

static void set64(uint64_t *r, uint64_t off, unsigned size, uint64_t v)
{
	if (size == 8)
		*r = v;
	else if (off & 4)
		*r = (*r & 0xFFFFFFFFull) | v << 32;
	else
		*r = (*r & ~0xFFFFFFFFull) | (uint32_t)v;
}

void nvme_bar0_write(struct nvme *n, uint64_t off, const void *data, unsigned size)
{
	uint64_t v = 0;
	if ((size != 4 && size != 8) || (off & (size - 1))) {
		log_guest("nvme: %u-byte register write at 0x%llx", size, (unsigned long long)off);
		return;
	}
	memcpy(&v, data, size);
	if (off >= NVME_REG_DBS) {
		if (size != 4 || off >= NVME_REG_DBS + 8ull * (n->max_queues + 1)) {
			pthread_mutex_lock(&n->lock);
			if (n->csts & NVME_CSTS_RDY)
				bad_doorbell(n, NVME_AER_INFO_ERR_INVALID_DB_REG,
					     (unsigned)((off - NVME_REG_DBS) / 8), false, (uint32_t)v);
			pthread_mutex_unlock(&n->lock);
			return;
		}
		doorbell(n, off, (uint32_t)v);
		return;
	}
	pthread_mutex_lock(&n->lock);
	switch (off) {
	case NVME_REG_CC:
		n->cc = (uint32_t)v;
		n->cc_dirty = true;
		nvme_wake(n->admin_fd);
		break;
	case NVME_REG_AQA:
		n->aqa = (uint32_t)v & 0x0FFF0FFF;
		break;
	case NVME_REG_ASQ:
	case NVME_REG_ASQ + 4:
		set64(&n->asq, off, size, v);
		n->asq &= ~0xFFFull;
		break;
	case NVME_REG_ACQ:
	case NVME_REG_ACQ + 4:
		set64(&n->acq, off, size, v);
		n->acq &= ~0xFFFull;
		break;
	default:
		/* CAP, VS, CSTS are read-only; INTMS/INTMC do not apply to
		 * MSI-X; NSSR is not supported. */
		break;
	}
	pthread_mutex_unlock(&n->lock);
}

static void bar_read(void *opaque, unsigned bar, uint64_t off, void *data, unsigned size)
{
	if (bar != 0) {
		memset(data, 0xFF, size);
		return;
	}
	nvme_bar0_read(opaque, off, data, size);
}

static void bar_write(void *opaque, unsigned bar, uint64_t off, const void *data, unsigned size)
{
	if (bar == 0)
		nvme_bar0_write(opaque, off, data, size);
}

static const struct pci_dev_ops nvme_pci_ops = { bar_read, bar_write };

/* ---- queues' workers --------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool disk_busy(const struct nvme_cq *cq)
{
	for (unsigned i = 0; i < cq->n->nns; i++)
		if (disk_queue_inflight(cq->dq[i]))
			return true;
	return false;
}

/*
 * With shadow doorbells the host writes no MMIO doorbell while the worker
 * is awake (EventIdx lags behind), so after a batch the worker keeps
 * running the queue for a while: a host that submits again within that
 * window costs no VM exit. Only when no disk I/O is in flight: otherwise
 * the disk's completion wakes the worker anyway, and on a small host the
 * CPU is better left to the I/O (io_uring's workers copying).
 *
 * The window adapts as KVM's halt polling does: halved (down to nothing)
 * each time it passes without work, so a host that is idle, or whose vCPU
 * shares this CPU and cannot run while the worker spins, stops costing
 * spins; doubled (up to dbbuf_poll_ns) each time a doorbell wakes the
 * worker within dbbuf_poll_ns of its going to sleep. True if it found work.
 */
#define DBBUF_SPIN_MIN_NS 4000

static bool dbbuf_spin(struct nvme_cq *cq)
{
	struct nvme *n = cq->n;
	if (cq->spin_ns <= 0 || !atomic_load(&n->dbbuf_on) || disk_busy(cq))
		return false;
	uint64_t t0 = now_ns();
	do {
		if (nvme_cq_run(cq))
			return true;
		__builtin_ia32_pause();
	} while (now_ns() - t0 < (uint64_t)cq->spin_ns && !atomic_load(&cq->stop));
	cq->spin_ns /= 2;
	if (cq->spin_ns < DBBUF_SPIN_MIN_NS)
		cq->spin_ns = 0;
	return false;
}

/* After a sleep that a doorbell ended: a short one means spinning pays. */
static void dbbuf_woken(struct nvme_cq *cq, uint64_t slept_at)
{
	int64_t max = cq->n->dbbuf_poll_ns;
	if (max <= 0 || !atomic_load(&cq->n->dbbuf_on) || now_ns() - slept_at > (uint64_t)max)
		return;
	cq->spin_ns = cq->spin_ns ? cq->spin_ns * 2 : DBBUF_SPIN_MIN_NS;
	if (cq->spin_ns > max)
		cq->spin_ns = max;
}

static void *cq_thread(void *arg)
{
	struct nvme_cq *cq = arg;
	struct pollfd pfd[NVME_MAX_NAMESPACES + 1];
	unsigned nfd = 0;
	pfd[nfd++] = (struct pollfd){ .fd = cq->wake_fd, .events = POLLIN };
	for (unsigned i = 0; i < cq->n->nns; i++)
		pfd[nfd++] = (struct pollfd){ .fd = disk_queue_eventfd(cq->dq[i]), .events = POLLIN };
	while (!atomic_load(&cq->stop)) {
		drain_fd(cq->wake_fd);
		while (nvme_cq_run(cq))
			;
		if (dbbuf_spin(cq))
			continue;
		atomic_store(&cq->sleeping, true);
		nvme_dbbuf_arm(cq);
		if (nvme_cq_run(cq)) { /* a doorbell raced with going to sleep */
			atomic_store(&cq->sleeping, false);
			continue;
		}
		uint64_t slept_at = now_ns();
		if (poll(pfd, nfd, -1) < 0 && errno != EINTR)
			break;
		atomic_store(&cq->sleeping, false);
		if (pfd[0].revents & POLLIN)
			dbbuf_woken(cq, slept_at);
	}
	return NULL;
}

int nvme_cq_start(struct nvme *n, struct nvme_cq *cq)
{
	cq->n = n;
	cq->spin_ns = n->dbbuf_poll_ns > 0 ? n->dbbuf_poll_ns : 0;
	cq->done_tail = &cq->done;
	cq->retry_tail = &cq->retry;
	pthread_mutex_init(&cq->lock, NULL);
	pthread_cond_init(&cq->cond, NULL);
	cq->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cq->wake_fd < 0)
		return -errno;
	for (unsigned i = 0; i < n->nns; i++) {
		int r = disk_queue_create(n->ns[i].disk, 1024, &cq->dq[i]);
		if (r < 0)
			return r;
	}
	if (!n->manual) {
		int r = pthread_create(&cq->thread, NULL, cq_thread, cq);
		if (r)
			return -r;
		cq->thread_ok = true;
	}
	return 0;
}

/* Stops the worker, waits for in-flight I/O and frees the CQ. */
void nvme_cq_stop(struct nvme_cq *cq)
{
	atomic_store(&cq->stop, true);
	if (cq->thread_ok) {
		nvme_wake(cq->wake_fd);
		pthread_join(cq->thread, NULL);
	}
	for (unsigned i = 0; i < NVME_MAX_NAMESPACES; i++)
		disk_queue_destroy(cq->dq[i]);
	if (cq->wake_fd > 0)
		close(cq->wake_fd);
	pthread_cond_destroy(&cq->cond);
	pthread_mutex_destroy(&cq->lock);
	free(cq);
}

/* Waits until a deleting SQ has no command in flight on cq's worker. */
void nvme_cq_quiesce_sq(struct nvme *n, struct nvme_cq *cq, struct nvme_sq *sq)
{
	atomic_store(&sq->deleting, true);
	if (n->manual) {
		struct pollfd pfd[NVME_MAX_NAMESPACES];
		for (unsigned i = 0; i < n->nns; i++)
			pfd[i] = (struct pollfd){ .fd = disk_queue_eventfd(cq->dq[i]), .events = POLLIN };
		nvme_cq_run(cq);
		while (sq->inflight) {
			poll(pfd, n->nns, 100);
			nvme_cq_run(cq);
		}
		return;
	}
	pthread_mutex_lock(&cq->lock);
	nvme_wake(cq->wake_fd);
	while (sq->inflight)
		pthread_cond_wait(&cq->cond, &cq->lock);
	pthread_mutex_unlock(&cq->lock);
}

static void *admin_thread(void *arg)
{
	struct nvme *n = arg;
	struct pollfd pfd = { .fd = n->admin_fd, .events = POLLIN };
	while (!atomic_load(&n->admin_stop)) {
		drain_fd(n->admin_fd);
		pthread_mutex_lock(&n->admin_run);
		nvme_admin_run(n);
		pthread_mutex_unlock(&n->admin_run);
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			break;
	}
	return NULL;
}

/* ---- creation ---------------------------------------------------------- */

int nvme_create(struct pci_bus *bus, struct gmem *mem, struct disk **disks, unsigned ndisks,
		const struct nvme_config *cfg, struct nvme **out)
{
	struct nvme_config def = { 0 };
	if (!cfg)
		cfg = &def;
	if (ndisks == 0 || ndisks > NVME_MAX_NAMESPACES || cfg->io_queues > NVME_MAX_IO_QUEUES)
		return -EINVAL;
	for (unsigned i = 0; i < ndisks; i++)
		if (!disks[i] || disk_size(disks[i]) < DISK_SECTOR_SIZE)
			return -EINVAL;
	struct nvme *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->mem = mem;
	n->manual = cfg->manual;
	snprintf(n->serial, sizeof(n->serial), "%s", cfg->serial ? cfg->serial : "hvmm-nvme");
	n->nns = ndisks;
	for (unsigned i = 0; i < ndisks; i++) {
		n->ns[i].disk = disks[i];
		n->ns[i].nlba = disk_size(disks[i]) >> NVME_LBA_SHIFT;
		n->ns[i].ro = disk_is_read_only(disks[i]);
	}
	n->max_queues = cfg->io_queues ? cfg->io_queues : NVME_MAX_IO_QUEUES;
	n->dbbuf_supported = !cfg->no_dbbuf;
	n->dbbuf_poll_ns = cfg->dbbuf_poll_ns == 0 ? NVME_DBBUF_POLL_NS_DEFAULT : cfg->dbbuf_poll_ns;
	n->nvectors = n->max_queues + 1;
	pthread_mutex_init(&n->lock, NULL);
	pthread_mutex_init(&n->admin_run, NULL);
	nvme_admin_reset_features(n);
	int ret;
	n->admin_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->admin_fd < 0) {
		ret = -errno;
		goto fail;
	}
	for (unsigned i = 0; i < ndisks; i++) {
		ret = disk_queue_create(disks[i], 4, &n->admin_dq[i]);
		if (ret < 0)
			goto fail;
	}
	struct pci_dev_config pc = {
		.name = "nvme",
		.vendor_id = NVME_VENDOR_ID, .device_id = NVME_DEVICE_ID,
		.subsys_vendor_id = NVME_VENDOR_ID, .subsys_id = NVME_DEVICE_ID,
		.class_code = 0x01, .subclass = 0x08, .prog_if = 0x02,
		.bars = { [0] = { NVME_BAR0_SIZE, PCI_BAR_MEM64 } },
		.msix_vectors = n->nvectors, .msix_bar = 0,
		.msix_table_off = NVME_MSIX_TABLE_OFF, .msix_pba_off = NVME_MSIX_PBA_OFF,
		.ops = &nvme_pci_ops, .opaque = n,
	};
	ret = pci_dev_add(bus, &pc, &n->pci);
	if (ret < 0)
		goto fail;
	if (!n->manual) {
		ret = -pthread_create(&n->admin_thread, NULL, admin_thread, n);
		if (ret < 0)
			goto fail; /* the PCI function stays, inert */
		n->admin_thread_ok = true;
	}
	*out = n;
	return 0;
fail:
	for (unsigned i = 0; i < NVME_MAX_NAMESPACES; i++)
		disk_queue_destroy(n->admin_dq[i]);
	if (n->admin_fd > 0)
		close(n->admin_fd);
	pthread_mutex_destroy(&n->admin_run);
	pthread_mutex_destroy(&n->lock);
	free(n);
	return ret;
}

struct pci_dev *nvme_pci_dev(struct nvme *n)
{
	return n->pci;
}

bool nvme_poll(struct nvme *n)
{
	bool any = false;
	for (unsigned round = 0; round < 64; round++) {
		bool progress = false;
		drain_fd(n->admin_fd);
		pthread_mutex_lock(&n->admin_run);
		progress |= nvme_admin_run(n);
		pthread_mutex_unlock(&n->admin_run);
		for (unsigned q = 1; q <= n->max_queues; q++) {
			pthread_mutex_lock(&n->lock);
			struct nvme_cq *cq = n->cq[q];
			pthread_mutex_unlock(&n->lock);
			if (cq) {
				drain_fd(cq->wake_fd);
				progress |= nvme_cq_run(cq);
			}
		}
		if (!progress)
			break;
		any = true;
	}
	/* Idle now, as a worker going to sleep: publish EventIdx. */
	for (unsigned q = 1; q <= n->max_queues; q++) {
		pthread_mutex_lock(&n->lock);
		struct nvme_cq *cq = n->cq[q];
		pthread_mutex_unlock(&n->lock);
		if (cq)
			nvme_dbbuf_arm(cq);
	}
	return any;
}

void nvme_reset(struct nvme *n)
{
	pthread_mutex_lock(&n->admin_run);
	nvme_ctrl_reset(n);
	pthread_mutex_lock(&n->lock);
	n->cc = n->aqa = 0;
	n->asq = n->acq = 0;
	n->cc_dirty = false;
	pthread_mutex_unlock(&n->lock);
	pthread_mutex_unlock(&n->admin_run);
}

void nvme_destroy(struct nvme *n)
{
	if (!n)
		return;
	if (n->admin_thread_ok) {
		atomic_store(&n->admin_stop, true);
		nvme_wake(n->admin_fd);
		pthread_join(n->admin_thread, NULL);
	}
	nvme_reset(n);
	for (unsigned i = 0; i < NVME_MAX_NAMESPACES; i++)
		disk_queue_destroy(n->admin_dq[i]);
	close(n->admin_fd);
	pthread_mutex_destroy(&n->admin_run);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
