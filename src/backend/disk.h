/*
 * Disk backends: the host side of a virtual disk, behind one small
 * interface that storage devices (storvsp, NVMe) use. Kinds follow
 * OpenVMM's disk string (openvmm_entry cli_args.rs `DiskCliKind`):
 *
 *   file:PATH[;direct][;create=SIZE]   a raw image or block device, I/O
 *                                      through io_uring (liburing);
 *                                      `direct` opens it O_DIRECT
 *   PATH                               same as file:PATH
 *   mem:SIZE                           zero-filled RAM
 *   memdiff:KIND                       copy-on-write in RAM over KIND,
 *                                      which is never written
 *
 * I/O goes through queues: a device makes one struct disk_queue per
 * hardware queue (NVMe I/O queue pair, VMBus channel), submits requests
 * and later runs completions on the thread that owns the queue, woken by
 * the queue's eventfd. No allocation per request; requests point at the
 * device's own memory (guest pages mapped through gmem) with iovecs.
 *
 * Data is never lost: DISK_FLUSH completes only after every write that
 * completed before it was submitted is on stable storage (fdatasync);
 * a write with `fua` completes only once it is stable itself (RWF_DSYNC).
 */
#ifndef HVMM_BACKEND_DISK_H
#define HVMM_BACKEND_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DISK_SECTOR_SIZE 512u
#define DISK_PATH_MAX 4096
#define DISK_MAX_NESTING 4   /* memdiff:memdiff:... depth */
#define DISK_MAX_IOV 256     /* iovecs in one request */

enum disk_kind { DISK_KIND_FILE, DISK_KIND_MEM, DISK_KIND_MEMDIFF };

/* A parsed disk kind; memdiff points at its base (owned). */
struct disk_kind_spec {
	enum disk_kind kind;
	char path[DISK_PATH_MAX];  /* file */
	bool direct;               /* file: O_DIRECT */
	uint64_t create_size;      /* file: create=SIZE (0 = do not create) */
	uint64_t mem_size;         /* mem */
	struct disk_kind_spec *base; /* memdiff */
};

/* A parsed --disk value: the kind plus OpenVMM's flags and options. */
struct disk_cli_spec {
	struct disk_kind_spec kind;
	bool ro, dvd, uh, uh_nvme, vtl2;
	char on[64];        /* on=CTRL ("" = default controller) */
	int64_t lun;        /* lun=N, -1 = next free */
	int64_t nsid;       /* nsid=N, -1 = next free */
	char pcie_port[64]; /* pcie_port=P */
};

/*
 * Parses a --disk value. 0, or -EINVAL with a one-line message in err
 * naming the problem. Files are not opened here. Free with
 * disk_cli_spec_free().
 */
int disk_cli_spec_parse(const char *s, struct disk_cli_spec *out, char *err,
			size_t errlen);
/* Parses a KIND alone (the part before the first comma). */
int disk_kind_spec_parse(const char *s, struct disk_kind_spec *out, char *err,
			 size_t errlen);
void disk_kind_spec_free(struct disk_kind_spec *k);
void disk_cli_spec_free(struct disk_cli_spec *s);

struct disk;
struct disk_queue;

/*
 * Opens a backend. read_only forces it read-only (file opened O_RDONLY).
 * The size must be a non-zero multiple of DISK_SECTOR_SIZE. 0, or -errno
 * with a one-line message in err (missing file, bad size, ...).
 */
int disk_open(const struct disk_kind_spec *spec, bool read_only,
	      struct disk **out, char *err, size_t errlen);
void disk_close(struct disk *d);

uint64_t disk_size(const struct disk *d);       /* bytes */
bool disk_is_read_only(const struct disk *d);
bool disk_can_discard(const struct disk *d);
/* A short description for logs, e.g. "file:/x.img (direct)". */
const char *disk_describe(const struct disk *d);

enum disk_op {
	DISK_READ,
	DISK_WRITE,
	DISK_FLUSH,
	DISK_DISCARD,      /* contents of the range become zero */
	DISK_WRITE_ZEROES,
};

/* Requests submitted through queues since the disk was opened. */
struct disk_stats {
	uint64_t reads, writes, flushes, discards, write_zeroes;
	uint64_t bytes_read, bytes_written;
};
void disk_get_stats(const struct disk *d, struct disk_stats *st);

struct disk_req;
typedef void (*disk_done_fn)(struct disk_req *req, int result);

/*
 * One request. The caller owns it (and the buffers) until done() runs.
 * offset and len are bytes and must be sector multiples; for READ/WRITE the
 * iovecs must hold exactly len bytes.
 */
struct disk_req {
	enum disk_op op;
	uint64_t offset;
	uint64_t len;
	const struct iovec *iov;
	unsigned iovcnt;
	bool fua;            /* WRITE: stable before completion */
	disk_done_fn done;   /* result: 0 or -errno (-EIO, -EROFS, ...) */
	void *opaque;
	/* Private to the backend. */
	struct disk_req *next_;
	int result_;
};

/*
 * A submission/completion queue of up to depth requests in flight. One
 * thread at a time may use a queue. 0 or -errno.
 */
int disk_queue_create(struct disk *d, unsigned depth, struct disk_queue **out);
void disk_queue_destroy(struct disk_queue *q); /* waits for in-flight I/O */

/*
 * Starts a request. 0, or an immediate error without calling done():
 * -EAGAIN (depth requests in flight), -EINVAL (range beyond the disk,
 * unaligned, bad iovecs), -EROFS (write to a read-only disk),
 * -EOPNOTSUPP (discard unsupported).
 */
int disk_queue_submit(struct disk_queue *q, struct disk_req *req);

/* Readable when completions are ready; never closed by the caller. */
int disk_queue_eventfd(struct disk_queue *q);

/*
 * Runs done() for every finished request (on the calling thread) and
 * clears the eventfd. Returns the number completed.
 */
unsigned disk_queue_complete(struct disk_queue *q);

/* Requests submitted and not yet completed. */
unsigned disk_queue_inflight(const struct disk_queue *q);

/*
 * Synchronous I/O for backends stacked on another (memdiff) and for tests.
 * 0 or -errno.
 */
int disk_pread(struct disk *d, void *buf, uint64_t len, uint64_t offset);
int disk_pwrite(struct disk *d, const void *buf, uint64_t len, uint64_t offset);

#endif
