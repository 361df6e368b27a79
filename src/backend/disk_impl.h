/*
 * Internal to src/backend/disk*.c: the backend vtable behind struct disk,
 * and the queue state shared by the synchronous and io_uring paths.
 */
#ifndef HVMM_BACKEND_DISK_IMPL_H
#define HVMM_BACKEND_DISK_IMPL_H

#include "backend/disk.h"

struct disk_backend_ops {
	/* Synchronous I/O on a checked, in-range request. 0 or -errno. */
	int (*pread)(struct disk *d, void *buf, uint64_t len, uint64_t off);
	int (*pwrite)(struct disk *d, const void *buf, uint64_t len, uint64_t off);
	int (*flush)(struct disk *d);
	/* Makes [off, off+len) read as zeros (discard and write-zeroes). */
	int (*zero)(struct disk *d, uint64_t off, uint64_t len, bool discard);
	/*
	 * Optional asynchronous path. Without it the queue runs each request
	 * synchronously at submit and completes it through the eventfd.
	 */
	int (*queue_init)(struct disk_queue *q);
	void (*queue_fini)(struct disk_queue *q);
	int (*queue_submit)(struct disk_queue *q, struct disk_req *r);
	/* Moves finished requests to the done list with disk_queue_finish(). */
	void (*queue_reap)(struct disk_queue *q);
	void (*close)(struct disk *d);
};

struct disk {
	const struct disk_backend_ops *ops;
	uint64_t size;
	bool read_only;
	bool can_discard;
	char desc[DISK_PATH_MAX + 32];
	void *priv;
	/* Requests accepted by disk_queue_submit (any queue; relaxed atomics). */
	uint64_t n_ops[DISK_WRITE_ZEROES + 1];
	uint64_t bytes_read, bytes_written;
};

struct disk_queue {
	struct disk *d;
	unsigned depth;
	unsigned inflight;
	int efd;                  /* completions ready */
	struct disk_req *done_head, **done_tail;
	void *priv;               /* backend (io_uring) state */
};

/* Records a finished request; done() runs at the next disk_queue_complete(). */
void disk_queue_finish(struct disk_queue *q, struct disk_req *r, int result);

/* Copies between a flat buffer and a request's iovecs, from byte `skip`. */
void disk_iov_to_buf(const struct disk_req *r, uint64_t skip, void *buf, uint64_t len);
void disk_buf_to_iov(const struct disk_req *r, uint64_t skip, const void *buf, uint64_t len);

/* Runs a request synchronously with the backend's sync ops. */
int disk_run_sync(struct disk *d, struct disk_req *r);

int disk_file_open(const struct disk_kind_spec *spec, bool read_only,
		   struct disk **out, char *err, size_t errlen);
/*
 * io_uring SQE flags for a file-backed request: IOSQE_ASYNC for buffered
 * (page-cache) reads of DISK_FILE_ASYNC_READ_MIN bytes or more, else 0.
 */
#define DISK_FILE_ASYNC_READ_MIN 65536u
unsigned disk_file_sqe_flags(enum disk_op op, uint64_t len, bool buffered);
int disk_mem_open(uint64_t size, struct disk **out, char *err, size_t errlen);
int disk_memdiff_open(struct disk *base, struct disk **out, char *err, size_t errlen);

#endif
