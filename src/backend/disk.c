/*
 * The disk interface (disk.h): opening a backend from a parsed kind, request
 * validation, and the queue that completes requests through an eventfd.
 * Backends with an asynchronous path (file: io_uring) hand requests to it;
 * the others (mem, memdiff) run them synchronously at submit.
 */
#include "backend/disk_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int disk_open(const struct disk_kind_spec *spec, bool read_only,
	      struct disk **out, char *err, size_t errlen)
{
	struct disk *base;
	int ret;
	switch (spec->kind) {
	case DISK_KIND_FILE:
		return disk_file_open(spec, read_only, out, err, errlen);
	case DISK_KIND_MEM:
		ret = disk_mem_open(spec->mem_size, out, err, errlen);
		if (ret == 0)
			(*out)->read_only = read_only;
		return ret;
	case DISK_KIND_MEMDIFF:
		if (!spec->base) {
			snprintf(err, errlen, "memdiff: no base disk");
			return -EINVAL;
		}
		/* The base is only ever read. */
		ret = disk_open(spec->base, true, &base, err, errlen);
		if (ret < 0)
			return ret;
		ret = disk_memdiff_open(base, out, err, errlen);
		if (ret < 0) {
			disk_close(base);
			return ret;
		}
		(*out)->read_only = read_only;
		return 0;
	}
	snprintf(err, errlen, "unknown disk kind");
	return -EINVAL;
}

void disk_close(struct disk *d)
{
	if (d)
		d->ops->close(d);
}

uint64_t disk_size(const struct disk *d)
{
	return d->size;
}

bool disk_is_read_only(const struct disk *d)
{
	return d->read_only;
}

bool disk_can_discard(const struct disk *d)
{
	return d->can_discard;
}

const char *disk_describe(const struct disk *d)
{
	return d->desc;
}

static bool range_ok(const struct disk *d, uint64_t off, uint64_t len)
{
	return off % DISK_SECTOR_SIZE == 0 && len % DISK_SECTOR_SIZE == 0 &&
	       off <= d->size && len <= d->size - off;
}

int disk_pread(struct disk *d, void *buf, uint64_t len, uint64_t offset)
{
	if (!range_ok(d, offset, len))
		return -EINVAL;
	return d->ops->pread(d, buf, len, offset);
}

int disk_pwrite(struct disk *d, const void *buf, uint64_t len, uint64_t offset)
{
	if (!range_ok(d, offset, len))
		return -EINVAL;
	if (d->read_only)
		return -EROFS;
	return d->ops->pwrite(d, buf, len, offset);
}

void disk_iov_to_buf(const struct disk_req *r, uint64_t skip, void *buf, uint64_t len)
{
	uint8_t *p = buf;
	for (unsigned i = 0; i < r->iovcnt && len; i++) {
		uint64_t l = r->iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		uint64_t n = l - skip < len ? l - skip : len;
		memcpy(p, (uint8_t *)r->iov[i].iov_base + skip, n);
		p += n;
		len -= n;
		skip = 0;
	}
}

void disk_buf_to_iov(const struct disk_req *r, uint64_t skip, const void *buf, uint64_t len)
{
	const uint8_t *p = buf;
	for (unsigned i = 0; i < r->iovcnt && len; i++) {
		uint64_t l = r->iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		uint64_t n = l - skip < len ? l - skip : len;
		memcpy((uint8_t *)r->iov[i].iov_base + skip, p, n);
		p += n;
		len -= n;
		skip = 0;
	}
}

/* Synchronous execution through a bounce chunk, one iovec piece at a time. */
int disk_run_sync(struct disk *d, struct disk_req *r)
{
	switch (r->op) {
	case DISK_READ:
	case DISK_WRITE: {
		uint64_t off = r->offset;
		for (unsigned i = 0; i < r->iovcnt; i++) {
			uint64_t l = r->iov[i].iov_len;
			int ret = r->op == DISK_READ ?
				d->ops->pread(d, r->iov[i].iov_base, l, off) :
				d->ops->pwrite(d, r->iov[i].iov_base, l, off);
			if (ret < 0)
				return ret;
			off += l;
		}
		if (r->op == DISK_WRITE && r->fua)
			return d->ops->flush(d);
		return 0;
	}
	case DISK_FLUSH:
		return d->ops->flush(d);
	case DISK_DISCARD:
	case DISK_WRITE_ZEROES:
		return d->ops->zero(d, r->offset, r->len, r->op == DISK_DISCARD);
	}
	return -EINVAL;
}

int disk_queue_create(struct disk *d, unsigned depth, struct disk_queue **out)
{
	if (depth == 0 || depth > 4096)
		return -EINVAL;
	struct disk_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->d = d;
	q->depth = depth;
	q->done_tail = &q->done_head;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0) {
		int e = -errno;
		free(q);
		return e;
	}
	if (d->ops->queue_init) {
		int ret = d->ops->queue_init(q);
		if (ret < 0) {
			close(q->efd);
			free(q);
			return ret;
		}
	}
	*out = q;
	return 0;
}

void disk_queue_destroy(struct disk_queue *q)
{
	if (!q)
		return;
	if (q->d->ops->queue_fini)
		q->d->ops->queue_fini(q); /* waits for in-flight I/O */
	close(q->efd);
	free(q);
}

int disk_queue_eventfd(struct disk_queue *q)
{
	return q->efd;
}

unsigned disk_queue_inflight(const struct disk_queue *q)
{
	return q->inflight;
}

void disk_queue_finish(struct disk_queue *q, struct disk_req *r, int result)
{
	r->result_ = result;
	r->next_ = NULL;
	*q->done_tail = r;
	q->done_tail = &r->next_;
}

static void kick(struct disk_queue *q)
{
	uint64_t one = 1;
	ssize_t n = write(q->efd, &one, sizeof(one));
	(void)n; /* the counter cannot overflow with depth <= 4096 */
}

static int validate(const struct disk *d, const struct disk_req *r)
{
	switch (r->op) {
	case DISK_READ:
	case DISK_WRITE: {
		if (r->iovcnt == 0 || r->iovcnt > DISK_MAX_IOV || !r->iov)
			return -EINVAL;
		uint64_t total = 0;
		for (unsigned i = 0; i < r->iovcnt; i++) {
			if (r->iov[i].iov_len > r->len - total)
				return -EINVAL;
			total += r->iov[i].iov_len;
		}
		if (total != r->len || !range_ok(d, r->offset, r->len))
			return -EINVAL;
		if (r->op == DISK_WRITE && d->read_only)
			return -EROFS;
		return 0;
	}
	case DISK_FLUSH:
		return 0;
	case DISK_DISCARD:
	case DISK_WRITE_ZEROES:
		if (!range_ok(d, r->offset, r->len))
			return -EINVAL;
		if (d->read_only)
			return -EROFS;
		if (r->op == DISK_DISCARD && !d->can_discard)
			return -EOPNOTSUPP;
		return 0;
	}
	return -EINVAL;
}

static void count(struct disk *d, const struct disk_req *r)
{
	__atomic_fetch_add(&d->n_ops[r->op], 1, __ATOMIC_RELAXED);
	if (r->op == DISK_READ)
		__atomic_fetch_add(&d->bytes_read, r->len, __ATOMIC_RELAXED);
	else if (r->op == DISK_WRITE)
		__atomic_fetch_add(&d->bytes_written, r->len, __ATOMIC_RELAXED);
}

void disk_get_stats(const struct disk *d, struct disk_stats *st)
{
	st->reads = __atomic_load_n(&d->n_ops[DISK_READ], __ATOMIC_RELAXED);
	st->writes = __atomic_load_n(&d->n_ops[DISK_WRITE], __ATOMIC_RELAXED);
	st->flushes = __atomic_load_n(&d->n_ops[DISK_FLUSH], __ATOMIC_RELAXED);
	st->discards = __atomic_load_n(&d->n_ops[DISK_DISCARD], __ATOMIC_RELAXED);
	st->write_zeroes = __atomic_load_n(&d->n_ops[DISK_WRITE_ZEROES], __ATOMIC_RELAXED);
	st->bytes_read = __atomic_load_n(&d->bytes_read, __ATOMIC_RELAXED);
	st->bytes_written = __atomic_load_n(&d->bytes_written, __ATOMIC_RELAXED);
}

int disk_queue_submit(struct disk_queue *q, struct disk_req *req)
{
	int ret = validate(q->d, req);
	if (ret < 0)
		return ret;
	if (q->inflight >= q->depth)
		return -EAGAIN;
	count(q->d, req);
	if (q->d->ops->queue_submit) {
		ret = q->d->ops->queue_submit(q, req);
		if (ret < 0)
			return ret;
		q->inflight++;
		return 0;
	}
	q->inflight++;
	disk_queue_finish(q, req, disk_run_sync(q->d, req));
	kick(q);
	return 0;
}

unsigned disk_queue_complete(struct disk_queue *q)
{
	uint64_t v;
	ssize_t n = read(q->efd, &v, sizeof(v));
	(void)n; /* EAGAIN when nothing was signalled: still reap */
	if (q->d->ops->queue_reap)
		q->d->ops->queue_reap(q);
	unsigned count = 0;
	while (q->done_head) {
		struct disk_req *r = q->done_head;
		q->done_head = r->next_;
		if (!q->done_head)
			q->done_tail = &q->done_head;
		q->inflight--;
		count++;
		r->done(r, r->result_);
	}
	return count;
}
