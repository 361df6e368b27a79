/*
 * Unit tests for the disk backends (src/backend/disk*.c): OpenVMM's disk
 * string (every kind, flag, option and rule, and the errors); mem:, file:
 * (io_uring, buffered and O_DIRECT with an unaligned-buffer fallback, FUA,
 * flush, discard, write-zeroes, create=, large buffered reads on io_uring's
 * workers) and memdiff: (writes stay in memory,
 * the base file is untouched, partial chunks keep the base's bytes);
 * request validation (range, alignment, iovecs, read-only) and queue depth.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/disk.h"
#include "backend/disk_impl.h"

#include <liburing.h>

static char err[512];

/* ---- the disk string ---------------------------------------------------- */

static void test_spec_kinds(void **state)
{
	(void)state;
	struct disk_cli_spec s;
	assert_int_equal(disk_cli_spec_parse("file:/tmp/a.img", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind.kind, DISK_KIND_FILE);
	assert_string_equal(s.kind.path, "/tmp/a.img");
	assert_false(s.kind.direct);
	assert_int_equal(s.lun, -1);
	disk_cli_spec_free(&s);

	assert_int_equal(disk_cli_spec_parse("/x/b.img,ro,lun=3", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind.kind, DISK_KIND_FILE);
	assert_string_equal(s.kind.path, "/x/b.img");
	assert_true(s.ro);
	assert_int_equal(s.lun, 3);
	disk_cli_spec_free(&s);

	assert_int_equal(disk_cli_spec_parse("file:c.img;direct;create=1G,on=scsi0", &s, err,
					     sizeof(err)), 0);
	assert_true(s.kind.direct);
	assert_int_equal(s.kind.create_size, 1ull << 30);
	assert_string_equal(s.on, "scsi0");
	disk_cli_spec_free(&s);

	assert_int_equal(disk_cli_spec_parse("mem:1G,uh-nvme,nsid=2", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind.kind, DISK_KIND_MEM);
	assert_int_equal(s.kind.mem_size, 1ull << 30);
	assert_true(s.uh_nvme);
	assert_int_equal(s.nsid, 2);
	disk_cli_spec_free(&s);

	assert_int_equal(disk_cli_spec_parse("memdiff:file:base.img,dvd", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind.kind, DISK_KIND_MEMDIFF);
	assert_non_null(s.kind.base);
	assert_int_equal(s.kind.base->kind, DISK_KIND_FILE);
	assert_string_equal(s.kind.base->path, "base.img");
	assert_true(s.dvd);
	assert_true(s.ro); /* dvd implies ro */
	disk_cli_spec_free(&s);

	assert_int_equal(disk_cli_spec_parse("memdiff:memdiff:mem:4K,uh", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind.base->base->kind, DISK_KIND_MEM);
	assert_true(s.uh);
	disk_cli_spec_free(&s);
}

static void expect_bad(const char *spec, const char *msg)
{
	struct disk_cli_spec s;
	err[0] = '\0';
	assert_int_equal(disk_cli_spec_parse(spec, &s, err, sizeof(err)), -EINVAL);
	if (!strstr(err, msg))
		fail_msg("'%s': error '%s' does not mention '%s'", spec, err, msg);
	assert_null(strchr(err, '\n'));
}

static void test_spec_errors(void **state)
{
	(void)state;
	expect_bad("", "empty disk kind");
	expect_bad("mem:", "mem: needs a size");
	expect_bad("mem:100", "mem: needs a size");
	expect_bad("mem:abc", "mem: needs a size");
	expect_bad("file:", "path is empty");
	expect_bad("file:a;bogus", "unknown file disk option 'bogus'");
	expect_bad("file:a;create=7", "create= needs a size");
	expect_bad("memdiff:", "empty disk kind");
	expect_bad("memdiff:memdiff:memdiff:memdiff:mem:1M", "nested too deeply");
	expect_bad("sql:x.db", "'sql' is not supported");
	expect_bad("blob:flat:http://x", "'blob' is not supported");
	expect_bad("a.img,rw", "unknown disk option 'rw'");
	expect_bad("a.img,,ro", "empty disk option");
	expect_bad("a.img,lun=255", "lun=255");
	expect_bad("a.img,lun=x", "lun=x");
	expect_bad("a.img,nsid=0", "nsid=0");
	expect_bad("a.img,uh,uh-nvme", "exclude each other");
	expect_bad("a.img,uh,vtl2", "uh is not allowed with vtl2");
	expect_bad("a.img,dvd,pcie_port=p0", "pcie_port= is not allowed");
}

/* ---- helpers ------------------------------------------------------------ */

struct waiter {
	int calls;
	int result;
};

static void done_cb(struct disk_req *r, int result)
{
	struct waiter *w = r->opaque;
	w->calls++;
	w->result = result;
}

/* Submits one request and waits for its completion through the queue. */
static int run(struct disk_queue *q, struct disk_req *r)
{
	struct waiter w = { 0, 0 };
	r->done = done_cb;
	r->opaque = &w;
	int ret = disk_queue_submit(q, r);
	if (ret < 0)
		return ret;
	for (int i = 0; i < 100000 && !w.calls; i++) {
		disk_queue_complete(q);
		if (!w.calls)
			usleep(100);
	}
	assert_int_equal(w.calls, 1);
	return w.result;
}

static int rw(struct disk_queue *q, enum disk_op op, void *buf, uint64_t len, uint64_t off,
	      bool fua)
{
	/* Split the buffer into uneven iovecs to exercise scatter/gather. */
	struct iovec iov[3];
	uint64_t a = len > 1000 ? 100 : len, b = len > 1000 ? 700 : 0;
	iov[0] = (struct iovec){ buf, a };
	iov[1] = (struct iovec){ (uint8_t *)buf + a, b };
	iov[2] = (struct iovec){ (uint8_t *)buf + a + b, len - a - b };
	struct disk_req r = { .op = op, .offset = off, .len = len, .iov = iov,
			      .iovcnt = b ? 3 : 1, .fua = fua };
	if (!b)
		iov[0].iov_len = len;
	return run(q, &r);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static char tmpdir[256];

static int setup_dir(void **state)
{
	(void)state;
	/* Not /tmp: it may be tmpfs, which has no O_DIRECT. */
	const char *b = getenv("HVMM_BUILD_ROOT");
	snprintf(tmpdir, sizeof(tmpdir), "%s/disk-test-XXXXXX", b ? b : ".");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_dir(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd);
}

static void make_file(const char *path, size_t size, unsigned seed)
{
	uint8_t *buf = malloc(size);
	fill(buf, size, seed);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static void common_io(struct disk *d)
{
	struct disk_queue *q;
	assert_int_equal(disk_queue_create(d, 8, &q), 0);
	uint64_t size = disk_size(d);
	uint8_t *w = malloc(65536), *r = malloc(65536);
	fill(w, 65536, 5);
	assert_int_equal(rw(q, DISK_WRITE, w, 65536, size - 65536, false), 0);
	memset(r, 0, 65536);
	assert_int_equal(rw(q, DISK_READ, r, 65536, size - 65536, false), 0);
	assert_memory_equal(r, w, 65536);
	assert_int_equal(rw(q, DISK_WRITE, w, 4096, 8192, true), 0); /* FUA */
	struct disk_req fl = { .op = DISK_FLUSH };
	assert_int_equal(run(q, &fl), 0);

	/* Discard and write-zeroes read back as zeros, neighbours intact. */
	assert_int_equal(rw(q, DISK_WRITE, w, 65536, 0, false), 0);
	struct disk_req z = { .op = DISK_WRITE_ZEROES, .offset = 512, .len = 1024 };
	assert_int_equal(run(q, &z), 0);
	struct disk_req dc = { .op = DISK_DISCARD, .offset = 8192, .len = 16384 };
	assert_int_equal(run(q, &dc), 0);
	assert_int_equal(rw(q, DISK_READ, r, 65536, 0, false), 0);
	uint8_t zero[16384] = { 0 };
	assert_memory_equal(r, w, 512);
	assert_memory_equal(r + 512, zero, 1024);
	assert_memory_equal(r + 1536, w + 1536, 8192 - 1536);
	assert_memory_equal(r + 8192, zero, 16384);
	assert_memory_equal(r + 24576, w + 24576, 65536 - 24576);

	/* Validation: nothing reaches the backend, done() is not called. */
	struct iovec iov = { w, 512 };
	struct disk_req bad = { .op = DISK_READ, .offset = size, .len = 512, .iov = &iov,
				.iovcnt = 1, .done = done_cb };
	assert_int_equal(disk_queue_submit(q, &bad), -EINVAL);
	bad.offset = 100;
	assert_int_equal(disk_queue_submit(q, &bad), -EINVAL);
	bad.offset = 0;
	bad.len = 1024; /* iovecs hold 512 */
	assert_int_equal(disk_queue_submit(q, &bad), -EINVAL);
	bad.len = 512;
	bad.iovcnt = 0;
	assert_int_equal(disk_queue_submit(q, &bad), -EINVAL);
	bad.iovcnt = DISK_MAX_IOV + 1;
	assert_int_equal(disk_queue_submit(q, &bad), -EINVAL);
	struct disk_req zbad = { .op = DISK_WRITE_ZEROES, .offset = size - 512, .len = 1024,
				 .done = done_cb };
	assert_int_equal(disk_queue_submit(q, &zbad), -EINVAL);
	assert_int_equal(disk_queue_inflight(q), 0);
	disk_queue_destroy(q);
	free(w);
	free(r);
}

static void test_mem(void **state)
{
	(void)state;
	struct disk_kind_spec k;
	assert_int_equal(disk_kind_spec_parse("mem:1M", &k, err, sizeof(err)), 0);
	struct disk *d;
	assert_int_equal(disk_open(&k, false, &d, err, sizeof(err)), 0);
	assert_int_equal(disk_size(d), 1 << 20);
	/* A fresh mem disk reads as zeros. */
	uint8_t buf[4096], zero[4096] = { 0 };
	assert_int_equal(disk_pread(d, buf, 4096, 12288), 0);
	assert_memory_equal(buf, zero, 4096);
	common_io(d);
	disk_close(d);
}

static void test_read_only(void **state)
{
	(void)state;
	struct disk_kind_spec k;
	assert_int_equal(disk_kind_spec_parse("mem:64K", &k, err, sizeof(err)), 0);
	struct disk *d;
	assert_int_equal(disk_open(&k, true, &d, err, sizeof(err)), 0);
	assert_true(disk_is_read_only(d));
	struct disk_queue *q;
	assert_int_equal(disk_queue_create(d, 4, &q), 0);
	uint8_t buf[512];
	struct iovec iov = { buf, 512 };
	struct disk_req r = { .op = DISK_WRITE, .len = 512, .iov = &iov, .iovcnt = 1,
			      .done = done_cb };
	assert_int_equal(disk_queue_submit(q, &r), -EROFS);
	r.op = DISK_DISCARD;
	assert_int_equal(disk_queue_submit(q, &r), -EROFS);
	r.op = DISK_WRITE_ZEROES;
	assert_int_equal(disk_queue_submit(q, &r), -EROFS);
	assert_int_equal(disk_pwrite(d, buf, 512, 0), -EROFS);
	r.op = DISK_READ;
	assert_int_equal(run(q, &r), 0);
	disk_queue_destroy(q);
	disk_close(d);
}

static void open_file(const char *spec, bool ro, struct disk **d)
{
	struct disk_kind_spec k;
	assert_int_equal(disk_kind_spec_parse(spec, &k, err, sizeof(err)), 0);
	int ret = disk_open(&k, ro, d, err, sizeof(err));
	if (ret < 0)
		fail_msg("open %s: %s", spec, err);
	disk_kind_spec_free(&k);
}

static void read_file(const char *path, uint8_t *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void test_file(void **state)
{
	(void)state;
	char path[300], spec[320];
	snprintf(path, sizeof(path), "%s/f.img", tmpdir);
	make_file(path, 1 << 20, 1);
	snprintf(spec, sizeof(spec), "file:%s", path);
	struct disk *d;
	open_file(spec, false, &d);
	assert_int_equal(disk_size(d), 1 << 20);
	/* Existing contents are read through io_uring. */
	struct disk_queue *q;
	assert_int_equal(disk_queue_create(d, 4, &q), 0);
	uint8_t got[8192], want[1 << 13];
	uint8_t *all = malloc(1 << 20);
	fill(all, 1 << 20, 1);
	memcpy(want, all + 40960, sizeof(want));
	assert_int_equal(rw(q, DISK_READ, got, sizeof(got), 40960, false), 0);
	assert_memory_equal(got, want, sizeof(got));
	disk_queue_destroy(q);
	common_io(d);
	disk_close(d);
	/* What was written is in the file, seen by an independent reader. */
	uint8_t w[65536], r[65536];
	fill(w, sizeof(w), 5);
	read_file(path, r, sizeof(r), (1 << 20) - 65536);
	assert_memory_equal(r, w, sizeof(r));
	free(all);
}

/*
 * Large buffered reads go to io_uring's workers (IOSQE_ASYNC), everything
 * else stays inline; a queue full of them in flight at once still lands
 * each read's bytes in its own scattered buffers, beside inline writes.
 */
static void test_file_async_reads(void **state)
{
	(void)state;
	assert_int_equal(disk_file_sqe_flags(DISK_READ, 131072, true), IOSQE_ASYNC);
	assert_int_equal(disk_file_sqe_flags(DISK_READ, DISK_FILE_ASYNC_READ_MIN, true),
			 IOSQE_ASYNC);
	assert_int_equal(disk_file_sqe_flags(DISK_READ, DISK_FILE_ASYNC_READ_MIN - 512, true), 0);
	assert_int_equal(disk_file_sqe_flags(DISK_READ, 4096, true), 0);
	assert_int_equal(disk_file_sqe_flags(DISK_READ, 131072, false), 0); /* O_DIRECT */
	assert_int_equal(disk_file_sqe_flags(DISK_WRITE, 131072, true), 0);
	assert_int_equal(disk_file_sqe_flags(DISK_FLUSH, 0, true), 0);
	assert_int_equal(disk_file_sqe_flags(DISK_DISCARD, 1 << 20, true), 0);

	char path[300], spec[320];
	snprintf(path, sizeof(path), "%s/a.img", tmpdir);
	enum { N = 8, LEN = 131072, SIZE = 4 << 20 };
	make_file(path, SIZE, 3);
	uint8_t *all = malloc(SIZE);
	fill(all, SIZE, 3);
	snprintf(spec, sizeof(spec), "file:%s", path);
	struct disk *d;
	open_file(spec, false, &d);
	struct disk_queue *q;
	assert_int_equal(disk_queue_create(d, N + 1, &q), 0);
	uint8_t *buf = malloc((size_t)N * LEN), *wbuf = malloc(LEN);
	memset(buf, 0, (size_t)N * LEN);
	fill(wbuf, LEN, 9);
	struct iovec iov[N][2], wiov = { wbuf, LEN };
	struct disk_req r[N + 1];
	struct waiter w[N + 1];
	memset(w, 0, sizeof(w));
	for (int i = 0; i <= N; i++) {
		if (i < N) { /* reads from the back, in two uneven iovecs */
			iov[i][0] = (struct iovec){ buf + (size_t)i * LEN, 4096 };
			iov[i][1] = (struct iovec){ buf + (size_t)i * LEN + 4096, LEN - 4096 };
			r[i] = (struct disk_req){ .op = DISK_READ, .iov = iov[i], .iovcnt = 2,
				.offset = SIZE - (uint64_t)(i + 1) * LEN - 512 * i, .len = LEN };
		} else { /* an inline write to the front, in flight with them */
			r[i] = (struct disk_req){ .op = DISK_WRITE, .iov = &wiov, .iovcnt = 1,
						  .offset = 0, .len = LEN };
		}
		r[i].done = done_cb;
		r[i].opaque = &w[i];
		assert_int_equal(disk_queue_submit(q, &r[i]), 0);
	}
	for (int i = 0; i < 100000 && disk_queue_inflight(q); i++) {
		disk_queue_complete(q);
		if (disk_queue_inflight(q))
			usleep(100);
	}
	assert_int_equal(disk_queue_inflight(q), 0);
	for (int i = 0; i <= N; i++) {
		assert_int_equal(w[i].calls, 1);
		assert_int_equal(w[i].result, 0);
	}
	for (int i = 0; i < N; i++)
		assert_memory_equal(buf + (size_t)i * LEN, all + r[i].offset, LEN);
	memset(buf, 0, LEN);
	assert_int_equal(rw(q, DISK_READ, buf, LEN, 0, false), 0);
	assert_memory_equal(buf, wbuf, LEN);
	disk_queue_destroy(q);
	disk_close(d);
	free(buf);
	free(wbuf);
	free(all);
}

static void test_file_direct(void **state)
{
	(void)state;
	char path[300], spec[320];
	snprintf(path, sizeof(path), "%s/d.img", tmpdir);
	make_file(path, 1 << 20, 2);
	snprintf(spec, sizeof(spec), "file:%s;direct", path);
	struct disk_kind_spec k;
	assert_int_equal(disk_kind_spec_parse(spec, &k, err, sizeof(err)), 0);
	struct disk *d;
	if (disk_open(&k, false, &d, err, sizeof(err)) < 0)
		skip(); /* the build directory's file system has no O_DIRECT */
	struct disk_queue *q;
	assert_int_equal(disk_queue_create(d, 4, &q), 0);
	/* Aligned buffers go O_DIRECT; an unaligned one takes the buffered fd. */
	uint8_t *al = aligned_alloc(4096, 8192), *raw = malloc(8192 + 1), *r = malloc(8192);
	fill(al, 8192, 9);
	assert_int_equal(rw(q, DISK_WRITE, al, 8192, 0, true), 0);
	fill(raw + 1, 8192, 10);
	assert_int_equal(rw(q, DISK_WRITE, raw + 1, 8192, 8192, false), 0);
	assert_int_equal(rw(q, DISK_READ, r, 8192, 0, false), 0);
	assert_memory_equal(r, al, 8192);
	assert_int_equal(rw(q, DISK_READ, al, 8192, 8192, false), 0);
	assert_memory_equal(al, raw + 1, 8192);
	disk_queue_destroy(q);
	disk_close(d);
	read_file(path, r, 8192, 8192);
	assert_memory_equal(r, raw + 1, 8192);
	free(al);
	free(raw);
	free(r);
}

static void test_file_errors_and_create(void **state)
{
	(void)state;
	char path[300], spec[340];
	struct disk *d;
	struct disk_kind_spec k;
	snprintf(spec, sizeof(spec), "file:%s/missing.img", tmpdir);
	assert_int_equal(disk_kind_spec_parse(spec, &k, err, sizeof(err)), 0);
	assert_int_equal(disk_open(&k, false, &d, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing.img"));

	snprintf(path, sizeof(path), "%s/odd.img", tmpdir);
	make_file(path, 1000, 3);
	snprintf(spec, sizeof(spec), "file:%s", path);
	assert_int_equal(disk_kind_spec_parse(spec, &k, err, sizeof(err)), 0);
	assert_int_equal(disk_open(&k, false, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "multiple of 512"));

	snprintf(path, sizeof(path), "%s/new.img", tmpdir);
	snprintf(spec, sizeof(spec), "file:%s;create=2M", path);
	open_file(spec, false, &d);
	assert_int_equal(disk_size(d), 2 << 20);
	uint8_t buf[512];
	fill(buf, 512, 4);
	assert_int_equal(disk_pwrite(d, buf, 512, 0), 0);
	disk_close(d);
	/* Same size again: opened as is, data kept. */
	open_file(spec, false, &d);
	uint8_t back[512];
	assert_int_equal(disk_pread(d, back, 512, 0), 0);
	assert_memory_equal(back, buf, 512);
	disk_close(d);
	/* A different size is refused, the file untouched. */
	snprintf(spec, sizeof(spec), "file:%s;create=4M", path);
	assert_int_equal(disk_kind_spec_parse(spec, &k, err, sizeof(err)), 0);
	assert_int_equal(disk_open(&k, false, &d, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "refusing"));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 << 20);
}

static void test_memdiff(void **state)
{
	(void)state;
	char path[300], spec[320];
	snprintf(path, sizeof(path), "%s/base.img", tmpdir);
	make_file(path, 256 * 1024, 7);
	uint8_t *orig = malloc(256 * 1024), *now = malloc(256 * 1024);
	read_file(path, orig, 256 * 1024, 0);
	snprintf(spec, sizeof(spec), "memdiff:file:%s", path);
	struct disk *d;
	open_file(spec, false, &d);
	/* A 512-byte write in the middle of a chunk keeps the base around it. */
	uint8_t w[512];
	fill(w, 512, 8);
	assert_int_equal(disk_pwrite(d, w, 512, 4096 + 1024), 0);
	uint8_t r[4096];
	assert_int_equal(disk_pread(d, r, 4096, 4096), 0);
	assert_memory_equal(r, orig + 4096, 1024);
	assert_memory_equal(r + 1024, w, 512);
	assert_memory_equal(r + 1536, orig + 4096 + 1536, 4096 - 1536);
	common_io(d);
	disk_close(d);
	read_file(path, now, 256 * 1024, 0);
	assert_memory_equal(now, orig, 256 * 1024); /* base untouched */
	free(orig);
	free(now);
}

static void test_queue_depth(void **state)
{
	(void)state;
	char path[300], spec[320];
	snprintf(path, sizeof(path), "%s/q.img", tmpdir);
	make_file(path, 1 << 20, 1);
	snprintf(spec, sizeof(spec), "file:%s", path);
	struct disk *d;
	open_file(spec, false, &d);
	struct disk_queue *q;
	assert_int_equal(disk_queue_create(d, 2, &q), 0);
	uint8_t b[3][4096];
	struct iovec iov[3];
	struct disk_req r[3];
	struct waiter w = { 0, 0 };
	for (int i = 0; i < 3; i++) {
		iov[i] = (struct iovec){ b[i], 4096 };
		r[i] = (struct disk_req){ .op = DISK_READ, .offset = 4096u * i, .len = 4096,
					  .iov = &iov[i], .iovcnt = 1, .done = done_cb,
					  .opaque = &w };
	}
	assert_int_equal(disk_queue_submit(q, &r[0]), 0);
	assert_int_equal(disk_queue_submit(q, &r[1]), 0);
	assert_int_equal(disk_queue_submit(q, &r[2]), -EAGAIN);
	assert_int_equal(disk_queue_inflight(q), 2);
	/* Destroy waits for the two in flight and completes them. */
	disk_queue_destroy(q);
	assert_int_equal(w.calls, 2);
	disk_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_kinds),
		cmocka_unit_test(test_spec_errors),
		cmocka_unit_test(test_mem),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_file_async_reads),
		cmocka_unit_test(test_file_direct),
		cmocka_unit_test(test_file_errors_and_create),
		cmocka_unit_test(test_memdiff),
		cmocka_unit_test(test_queue_depth),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
