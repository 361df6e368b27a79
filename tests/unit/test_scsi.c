/*
 * Unit tests for the SCSI target (src/dev/scsi*.c) over mem:, memdiff:,
 * file: and a counting fake backend: every command's data and sense, VPD
 * pages, capacity, mode pages, UNMAP and WRITE SAME, SYNCHRONIZE CACHE
 * reaching the backend's flush, transfers split over many iovecs, backend
 * errors, unit attention and REQUEST SENSE, the CD/DVD-ROM (MMC) set, and
 * malformed CDBs (short, unknown opcode, NACA, bad fields, LBA overflow,
 * transfer longer than the buffer, wrong direction).
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
#include <unistd.h>

#include <cmocka.h>

#include "backend/disk_impl.h"
#include "dev/scsi.h"

static char err[512];

/* ---- a backend that counts flushes and fails on demand ------------------ */

struct fake_disk {
	struct disk d;
	uint8_t *buf;
	unsigned flushes, writes;
	unsigned reqs;                  /* disk requests through queue_submit */
	const struct iovec *last_iov;
	unsigned last_iovcnt;
	int fail_read, fail_write, fail_flush; /* -errno for the next one */
};

static int fake_pread(struct disk *d, void *buf, uint64_t len, uint64_t off)
{
	struct fake_disk *f = (struct fake_disk *)d;
	if (f->fail_read) {
		int e = f->fail_read;
		f->fail_read = 0;
		return e;
	}
	memcpy(buf, f->buf + off, len);
	return 0;
}

static int fake_pwrite(struct disk *d, const void *buf, uint64_t len, uint64_t off)
{
	struct fake_disk *f = (struct fake_disk *)d;
	if (f->fail_write) {
		int e = f->fail_write;
		f->fail_write = 0;
		return e;
	}
	f->writes++;
	memcpy(f->buf + off, buf, len);
	return 0;
}

static int fake_flush(struct disk *d)
{
	struct fake_disk *f = (struct fake_disk *)d;
	if (f->fail_flush) {
		int e = f->fail_flush;
		f->fail_flush = 0;
		return e;
	}
	f->flushes++;
	return 0;
}

static int fake_zero(struct disk *d, uint64_t off, uint64_t len, bool discard)
{
	(void)discard;
	memset(((struct fake_disk *)d)->buf + off, 0, len);
	return 0;
}

static void fake_close(struct disk *d)
{
	struct fake_disk *f = (struct fake_disk *)d;
	free(f->buf);
	free(f);
}

/* Counts requests and records their iovecs; completes at the next reap. */
static int fake_submit(struct disk_queue *q, struct disk_req *r)
{
	struct fake_disk *f = (struct fake_disk *)q->d;
	f->reqs++;
	f->last_iov = r->iov;
	f->last_iovcnt = r->iovcnt;
	disk_queue_finish(q, r, disk_run_sync(q->d, r));
	return 0;
}

static const struct disk_backend_ops fake_ops = {
	.pread = fake_pread, .pwrite = fake_pwrite, .flush = fake_flush,
	.zero = fake_zero, .close = fake_close, .queue_submit = fake_submit,
};

static struct fake_disk *fake_open(uint64_t size)
{
	struct fake_disk *f = calloc(1, sizeof(*f));
	f->buf = calloc(1, size);
	f->d.ops = &fake_ops;
	f->d.size = size;
	f->d.can_discard = true;
	snprintf(f->d.desc, sizeof(f->d.desc), "fake");
	return f;
}

/* ---- harness ------------------------------------------------------------ */

struct t {
	struct disk *d;
	struct scsi_lun *lun;
	struct disk_queue *q;
};

static struct scsi_req req;
static struct iovec req_iov[4096];
static int req_calls;

static void req_done(struct scsi_req *r)
{
	(void)r;
	req_calls++;
}

static void t_open_disk(struct t *t, struct disk *d, bool dvd, bool ro)
{
	t->d = d;
	struct scsi_lun_config cfg = { .dvd = dvd, .read_only = ro, .lun = 3,
				       .serial = "SER-1234", .id = 0x1122334455667788ull };
	assert_int_equal(scsi_lun_create(d, &cfg, &t->lun), 0);
	assert_int_equal(disk_queue_create(d, 8, &t->q), 0);
}

static void t_open(struct t *t, const char *spec, bool dvd, bool ro)
{
	struct disk_kind_spec k;
	struct disk *d;
	assert_int_equal(disk_kind_spec_parse(spec, &k, err, sizeof(err)), 0);
	if (disk_open(&k, false, &d, err, sizeof(err)) < 0)
		fail_msg("open %s: %s", spec, err);
	disk_kind_spec_free(&k);
	t_open_disk(t, d, dvd, ro);
}

static void t_close(struct t *t)
{
	disk_queue_destroy(t->q);
	scsi_lun_destroy(t->lun);
	disk_close(t->d);
}

/* Starts a command with the buffer split into n iovecs (the last takes the rest). */
static void start_iov(struct t *t, const uint8_t *cdb, unsigned cdb_len, enum scsi_dir dir,
		      void *buf, uint32_t len, unsigned n, size_t piece)
{
	memset(&req, 0, sizeof(req));
	memcpy(req.cdb, cdb, cdb_len < SCSI_CDB_MAX ? cdb_len : SCSI_CDB_MAX);
	req.cdb_len = (uint8_t)cdb_len;
	req.dir = dir;
	size_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t l = i + 1 == n ? len - off : piece;
		req_iov[i] = (struct iovec){ buf ? (uint8_t *)buf + off : NULL, l };
		off += l;
	}
	req.iov = buf ? req_iov : NULL;
	req.iovcnt = buf ? n : 0;
	req.data_len = len;
	req.done = req_done;
	req_calls = 0;
	scsi_lun_execute(t->lun, t->q, &req);
}

static void wait_done(struct t *t)
{
	for (int i = 0; i < 100000 && !req_calls; i++) {
		disk_queue_complete(t->q);
		if (!req_calls)
			usleep(100);
	}
	assert_int_equal(req_calls, 1);
	assert_int_equal(disk_queue_inflight(t->q), 0);
}

static struct scsi_req *run_iov(struct t *t, const uint8_t *cdb, unsigned cdb_len,
				enum scsi_dir dir, void *buf, uint32_t len, unsigned n,
				size_t piece)
{
	start_iov(t, cdb, cdb_len, dir, buf, len, n, piece);
	wait_done(t);
	return &req;
}

static struct scsi_req *run(struct t *t, const uint8_t *cdb, unsigned cdb_len,
			    enum scsi_dir dir, void *buf, uint32_t len)
{
	return run_iov(t, cdb, cdb_len, dir, buf, len, 1, len);
}

/* A data-in command with a 4 KiB buffer. */
static uint8_t in[4096];
static struct scsi_req *run_in(struct t *t, const uint8_t *cdb, unsigned cdb_len)
{
	memset(in, 0xee, sizeof(in));
	return run(t, cdb, cdb_len, SCSI_DIR_FROM_DEV, in, sizeof(in));
}

static void expect_good(const struct scsi_req *r)
{
	if (r->status != SAM_STAT_GOOD)
		fail_msg("opcode 0x%02x: status 0x%02x sense %x/%02x/%02x", r->cdb[0], r->status,
			 r->sense[2], r->sense[12], r->sense[13]);
	assert_int_equal(r->sense_len, 0);
}

static void expect_sense(const struct scsi_req *r, uint8_t key, uint16_t asc)
{
	if (r->status != SAM_STAT_CHECK_CONDITION || (r->sense[2] & 0xf) != key ||
	    r->sense[12] != asc >> 8 || r->sense[13] != (asc & 0xff))
		fail_msg("opcode 0x%02x: status 0x%02x sense %x/%02x/%02x, want %x/%04x",
			 r->cdb[0], r->status, r->sense[2], r->sense[12], r->sense[13], key, asc);
	assert_int_equal(r->sense_len, 18);
	assert_int_equal(r->sense[0] & 0x7f, 0x70);
	assert_int_equal(r->sense[7], 10);
	/* Whatever moved before the error counts (a parameter list read). */
	assert_true(r->bytes_done <= r->data_len);
}

/* INVALID FIELD IN CDB with the field pointer at byte. */
static void expect_bad_field(const struct scsi_req *r, unsigned byte)
{
	expect_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(r->sense[15], 0xc0); /* SKSV, C/D = CDB */
	assert_int_equal(r->sense[16] << 8 | r->sense[17], byte);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* READ/WRITE CDBs. */
static unsigned rw_cdb(uint8_t *c, uint8_t op, uint64_t lba, uint32_t n, uint8_t flags)
{
	memset(c, 0, 16);
	c[0] = op;
	switch (op) {
	case SCSI_READ_6:
	case SCSI_WRITE_6:
		c[1] = (uint8_t)(lba >> 16 & 0x1f);
		c[2] = (uint8_t)(lba >> 8);
		c[3] = (uint8_t)lba;
		c[4] = (uint8_t)n;
		return 6;
	case SCSI_READ_10: case SCSI_WRITE_10: case SCSI_VERIFY_10:
	case SCSI_SYNCHRONIZE_CACHE_10: case SCSI_WRITE_SAME_10:
		c[1] = flags;
		put32(c + 2, (uint32_t)lba);
		c[7] = (uint8_t)(n >> 8);
		c[8] = (uint8_t)n;
		return 10;
	case SCSI_READ_12:
	case SCSI_WRITE_12:
		c[1] = flags;
		put32(c + 2, (uint32_t)lba);
		put32(c + 6, n);
		return 12;
	default:
		c[1] = flags;
		put64(c + 2, lba);
		put32(c + 10, n);
		return 16;
	}
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
	const char *b = getenv("HVMM_BUILD_ROOT");
	snprintf(tmpdir, sizeof(tmpdir), "%s/scsi-test-XXXXXX", b ? b : ".");
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

/* ---- INQUIRY and VPD ---------------------------------------------------- */

static void test_inquiry(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	uint8_t c[6] = { SCSI_INQUIRY, 0, 0, 0, 255, 0 };
	struct scsi_req *r = run_in(&t, c, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 36);
	assert_int_equal(in[0], 0x00); /* direct access */
	assert_int_equal(in[1], 0x00); /* not removable */
	assert_int_equal(in[2], 0x06);
	assert_int_equal(in[3] & 0x0f, 2);
	assert_int_equal(in[4], 31);
	assert_memory_equal(in + 8, "Msft    Virtual Disk    ", 24);
	assert_int_equal(in[36], 0xee); /* nothing past the data */

	/* The allocation length truncates; the rest of the buffer is left. */
	c[4] = 5;
	r = run_in(&t, c, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 5);
	assert_int_equal(in[5], 0xee);
	c[4] = 0;
	expect_good(run_in(&t, c, 6));
	assert_int_equal(req.bytes_done, 0);
	/* A buffer smaller than the allocation length: residual reported. */
	c[4] = 255;
	r = run(&t, c, 6, SCSI_DIR_FROM_DEV, in, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 10);

	/* Page code without EVPD, CmdDt. */
	c[2] = 0x80;
	expect_bad_field(run_in(&t, c, 6), 2);
	c[1] = 0x02;
	c[2] = 0;
	expect_bad_field(run_in(&t, c, 6), 1);

	/* VPD 0x00 lists exactly the pages we have. */
	uint8_t v[6] = { SCSI_INQUIRY, 1, 0x00, 0, 255, 0 };
	r = run_in(&t, v, 6);
	expect_good(r);
	static const uint8_t pages[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };
	assert_int_equal(in[1], 0x00);
	assert_int_equal(in[3], sizeof(pages));
	assert_memory_equal(in + 4, pages, sizeof(pages));
	assert_int_equal(r->bytes_done, 4 + sizeof(pages));

	v[2] = 0x80;
	r = run_in(&t, v, 6);
	expect_good(r);
	assert_int_equal(in[1], 0x80);
	assert_int_equal(in[3], 8);
	assert_memory_equal(in + 4, "SER-1234", 8);

	v[2] = 0x83;
	r = run_in(&t, v, 6);
	expect_good(r);
	assert_int_equal(in[1], 0x83);
	assert_int_equal(in[2] << 8 | in[3], r->bytes_done - 4);
	/* NAA 6, Microsoft's OUI, the id in the extension. */
	assert_int_equal(in[4] & 0x0f, 1);
	assert_int_equal(in[5] & 0x0f, 3);
	assert_int_equal(in[7], 16);
	assert_int_equal(in[8] >> 4, 6);
	assert_int_equal((be32(in + 8) >> 4) & 0xffffff, 0x002248);
	assert_true(be64(in + 16) == 0x1122334455667788ull);
	/* T10 vendor id: "Msft    " + serial. */
	assert_int_equal(in[24] & 0x0f, 2);
	assert_int_equal(in[25] & 0x0f, 1);
	assert_int_equal(in[27], 16);
	assert_memory_equal(in + 28, "Msft    SER-1234", 16);

	v[2] = 0xb0;
	r = run_in(&t, v, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 64);
	assert_int_equal(in[4] & 1, 1); /* WSNZ */
	assert_int_equal(be32(in + 8), SCSI_MAX_XFER_BYTES / 512);
	assert_true(be32(in + 8) * 512ull <= (DISK_MAX_IOV - 1) * 4096ull);
	assert_int_equal(be32(in + 20), 1u << 22); /* max unmap LBA count */
	assert_int_equal(be32(in + 24), SCSI_UNMAP_MAX_DESC);
	assert_int_equal(be32(in + 28), 8);
	assert_true(be64(in + 36) == 1u << 22);

	v[2] = 0xb1;
	r = run_in(&t, v, 6);
	expect_good(r);
	assert_int_equal(in[4] << 8 | in[5], 1); /* non-rotating */

	v[2] = 0xb2;
	r = run_in(&t, v, 6);
	expect_good(r);
	assert_int_equal(in[5], 0xe4); /* LBPU LBPWS LBPWS10 LBPRZ */
	assert_int_equal(in[6] & 7, 2);

	v[2] = 0x89; /* ATA information: not ours */
	expect_bad_field(run_in(&t, v, 6), 2);
	t_close(&t);

	/* Read-only: no provisioning, no unmap limits. */
	t_open(&t, "mem:1M", false, true);
	v[2] = 0xb2;
	expect_good(run_in(&t, v, 6));
	assert_int_equal(in[5], 0);
	v[2] = 0xb0;
	expect_good(run_in(&t, v, 6));
	assert_int_equal(be32(in + 20), 0);
	t_close(&t);
}

/* ---- READ CAPACITY ------------------------------------------------------ */

static void test_capacity(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	uint8_t c10[10] = { SCSI_READ_CAPACITY_10 };
	struct scsi_req *r = run_in(&t, c10, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 8);
	assert_int_equal(be32(in), 2047);
	assert_int_equal(be32(in + 4), 512);
	c10[5] = 1; /* an LBA without PMI */
	expect_bad_field(run_in(&t, c10, 10), 2);

	uint8_t c16[16] = { SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16 };
	c16[13] = 32;
	r = run_in(&t, c16, 16);
	expect_good(r);
	assert_int_equal(r->bytes_done, 32);
	assert_true(be64(in) == 2047);
	assert_int_equal(be32(in + 8), 512);
	assert_int_equal(in[13] & 0xf, 3);   /* 4 KiB physical */
	assert_int_equal(in[14] & 0xc0, 0xc0); /* LBPME, LBPRZ */
	c16[13] = 12;
	expect_good(run_in(&t, c16, 16));
	assert_int_equal(req.bytes_done, 12);
	c16[1] = 0x11; /* another service action */
	expect_bad_field(run_in(&t, c16, 16), 1);
	t_close(&t);

	t_open(&t, "mem:1M", false, true);
	c16[1] = SCSI_SAI_READ_CAPACITY_16;
	c16[13] = 32;
	expect_good(run_in(&t, c16, 16));
	assert_int_equal(in[14] & 0xc0, 0); /* read-only: no provisioning */
	t_close(&t);

	/* More than 2 TiB: READ CAPACITY (10) says "use (16)". */
	struct disk_kind_spec k;
	struct disk *d;
	assert_int_equal(disk_kind_spec_parse("mem:3T", &k, err, sizeof(err)), 0);
	if (disk_open(&k, false, &d, err, sizeof(err)) < 0)
		skip();
	t_open_disk(&t, d, false, false);
	c10[5] = 0;
	expect_good(run_in(&t, c10, 10));
	assert_int_equal(be32(in), 0xffffffffu);
	expect_good(run_in(&t, c16, 16));
	assert_true(be64(in) == (3ull << 40) / 512 - 1);
	t_close(&t);
}

/* ---- READ / WRITE ------------------------------------------------------- */

static void roundtrip(struct t *t, uint8_t wop, uint8_t rop, uint64_t lba, uint32_t n,
		      uint8_t flags, unsigned seed)
{
	uint32_t blocks = n ? n : (wop == SCSI_WRITE_6 ? 256 : 0);
	size_t len = (size_t)blocks * 512;
	uint8_t *w = malloc(len + 512), *rd = malloc(len + 512), c[16];
	fill(w, len, seed);
	/* Uneven iovecs: 100 bytes, then 700-byte pieces. */
	unsigned cl = rw_cdb(c, wop, lba, n, flags);
	struct scsi_req *r = run_iov(t, c, cl, SCSI_DIR_TO_DEV, w, (uint32_t)len,
				     len > 100 ? 2 : 1, 100);
	expect_good(r);
	assert_int_equal(r->bytes_done, len);
	uint8_t *direct = malloc(len + 512);
	assert_int_equal(disk_pread(t->d, direct, len, lba * 512), 0);
	assert_memory_equal(direct, w, len);
	memset(rd, 0, len + 512);
	cl = rw_cdb(c, rop, lba, n, 0);
	r = run_iov(t, c, cl, SCSI_DIR_FROM_DEV, rd, (uint32_t)len, len > 700 ? 3 : 1, 700);
	expect_good(r);
	assert_memory_equal(rd, w, len);
	free(w);
	free(rd);
	free(direct);
}

static void rw_all(struct t *t)
{
	roundtrip(t, SCSI_WRITE_10, SCSI_READ_10, 7, 9, 0, 1);
	roundtrip(t, SCSI_WRITE_10, SCSI_READ_10, 100, 8, 0x08, 2);  /* FUA */
	roundtrip(t, SCSI_WRITE_10, SCSI_READ_10, 200, 8, 0x10, 3);  /* DPO */
	roundtrip(t, SCSI_WRITE_6, SCSI_READ_6, 300, 3, 0, 4);
	roundtrip(t, SCSI_WRITE_6, SCSI_READ_6, 400, 0, 0, 5);       /* 0 = 256 */
	roundtrip(t, SCSI_WRITE_12, SCSI_READ_12, 700, 17, 0, 6);
	roundtrip(t, SCSI_WRITE_16, SCSI_READ_16, 2047, 1, 0x08, 7); /* last block */
	roundtrip(t, SCSI_WRITE_16, SCSI_READ_10, 0, 256, 0, 8);
}

static void test_rw_mem(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	rw_all(&t);

	uint8_t c[16], buf[8192];
	/* Zero blocks: nothing moves, still GOOD. */
	unsigned cl = rw_cdb(c, SCSI_READ_10, 5, 0, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, sizeof(buf)));
	assert_int_equal(req.bytes_done, 0);
	/* A buffer longer than the transfer: the residual shows. */
	cl = rw_cdb(c, SCSI_READ_10, 5, 2, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, sizeof(buf)));
	assert_int_equal(req.bytes_done, 1024);

	/* Out of range: one past the end, count past the end, overflow. */
	cl = rw_cdb(c, SCSI_READ_10, 2048, 1, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 512), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	cl = rw_cdb(c, SCSI_WRITE_10, 2040, 9, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 9 * 512), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	cl = rw_cdb(c, SCSI_READ_16, UINT64_MAX - 1, 4, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 2048), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	cl = rw_cdb(c, SCSI_READ_16, 1, UINT32_MAX, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 2048), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	/* Transfer longer than the buffer, wrong direction, no buffer. */
	cl = rw_cdb(c, SCSI_READ_10, 0, 17, 0);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, sizeof(buf)), 7);
	cl = rw_cdb(c, SCSI_READ_12, 0, 2, 0);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 1024), 6);
	cl = rw_cdb(c, SCSI_WRITE_16, 0, 1, 0);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_TO_DEV, NULL, 512), 10);
	cl = rw_cdb(c, SCSI_WRITE_6, 0, 1, 0);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_NONE, buf, 512), 4);
	/* data_len beyond what the iovecs hold counts only the iovecs. */
	memset(&req, 0, sizeof(req));
	req.cdb_len = (uint8_t)rw_cdb(req.cdb, SCSI_READ_10, 0, 2, 0);
	req.dir = SCSI_DIR_FROM_DEV;
	req_iov[0] = (struct iovec){ buf, 512 };
	req.iov = req_iov;
	req.iovcnt = 1;
	req.data_len = 1024;
	req.done = req_done;
	req_calls = 0;
	scsi_lun_execute(t.lun, t.q, &req);
	wait_done(&t);
	expect_bad_field(&req, 7);
	/* RDPROTECT: no protection information. */
	cl = rw_cdb(c, SCSI_READ_10, 0, 1, 0x20);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 512), 1);
	t_close(&t);
}

/* More iovecs than one disk request takes, and pieces not sector-sized. */
static void test_rw_split(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:4M", false, false);
	size_t len = 600 * 512;
	uint8_t *w = malloc(len), *r = malloc(len), *direct = malloc(len), c[16];
	fill(w, len, 11);
	unsigned cl = rw_cdb(c, SCSI_WRITE_16, 10, 600, 0x08);
	expect_good(run_iov(&t, c, cl, SCSI_DIR_TO_DEV, w, (uint32_t)len, 600, 512));
	assert_int_equal(req.bytes_done, len);
	assert_int_equal(disk_pread(t.d, direct, len, 10 * 512), 0);
	assert_memory_equal(direct, w, len);
	/* 100-byte iovecs: every piece is cut inside an iovec. */
	memset(r, 0, len);
	cl = rw_cdb(c, SCSI_READ_16, 10, 600, 0);
	expect_good(run_iov(&t, c, cl, SCSI_DIR_FROM_DEV, r, (uint32_t)len, 3072, 100));
	assert_int_equal(req.bytes_done, len);
	assert_memory_equal(r, w, len);
	fill(w, len, 12);
	cl = rw_cdb(c, SCSI_WRITE_10, 1000, 600, 0);
	expect_good(run_iov(&t, c, cl, SCSI_DIR_TO_DEV, w, (uint32_t)len, 3072, 100));
	assert_int_equal(disk_pread(t.d, direct, len, 1000 * 512), 0);
	assert_memory_equal(direct, w, len);
	/* 1-byte iovecs cannot make a sector within one piece. */
	cl = rw_cdb(c, SCSI_READ_10, 0, 1, 0);
	uint8_t small[512];
	expect_sense(run_iov(&t, c, cl, SCSI_DIR_FROM_DEV, small, 512, 512, 1),
		     SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
	free(w);
	free(r);
	free(direct);
	t_close(&t);
}

/* A page-split transfer within the advertised maximum is one disk request
 * on the transport's own iovecs; a longer one goes in SCSI_SLICE_IOV pieces. */
static void test_rw_requests(void **state)
{
	(void)state;
	struct fake_disk *f = fake_open(4 << 20);
	struct t t;
	t_open_disk(&t, &f->d, false, false);
	size_t len = SCSI_MAX_XFER_BYTES;
	uint8_t *buf = malloc(700 * 4096), c[16];
	fill(buf, 700 * 4096, 61);
	/* A buffer starting 100 bytes into a page: DISK_MAX_IOV pieces. */
	memset(&req, 0, sizeof(req));
	req.cdb_len = (uint8_t)rw_cdb(req.cdb, SCSI_WRITE_10, 8, (uint32_t)(len / 512), 0);
	req.dir = SCSI_DIR_TO_DEV;
	req_iov[0] = (struct iovec){ buf, 3996 };
	for (unsigned i = 1; i < DISK_MAX_IOV; i++)
		req_iov[i] = (struct iovec){ buf + 3996 + (i - 1) * 4096ull, 4096 };
	req_iov[DISK_MAX_IOV - 1].iov_len = 100;
	req.iov = req_iov;
	req.iovcnt = DISK_MAX_IOV;
	req.data_len = (uint32_t)len;
	req.done = req_done;
	req_calls = 0;
	scsi_lun_execute(t.lun, t.q, &req);
	wait_done(&t);
	expect_good(&req);
	assert_int_equal(f->reqs, 1);
	assert_ptr_equal(f->last_iov, req_iov);
	assert_int_equal(f->last_iovcnt, DISK_MAX_IOV);
	assert_memory_equal(f->buf + 8 * 512, buf, len);
	/* 600 KiB in 600 iovecs: ceil(600 / SCSI_SLICE_IOV) requests. */
	f->reqs = 0;
	unsigned cl = rw_cdb(c, SCSI_READ_16, 8, 1200, 0);
	memset(buf, 0, 700 * 4096);
	expect_good(run_iov(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 1200 * 512, 600, 1024));
	assert_int_equal(f->reqs, (600 + SCSI_SLICE_IOV - 1) / SCSI_SLICE_IOV);
	assert_memory_equal(buf, f->buf + 8 * 512, 1200 * 512);
	free(buf);
	t_close(&t);
}

static void test_rw_file_and_memdiff(void **state)
{
	(void)state;
	char path[300], spec[340];
	snprintf(path, sizeof(path), "%s/s.img", tmpdir);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	uint8_t *base = malloc(1 << 20);
	fill(base, 1 << 20, 21);
	assert_int_equal(write(fd, base, 1 << 20), 1 << 20);
	close(fd);

	/* memdiff: the guest's writes stay in memory, the file is untouched. */
	struct t t;
	snprintf(spec, sizeof(spec), "memdiff:file:%s", path);
	t_open(&t, spec, false, false);
	uint8_t c[16], buf[4096];
	unsigned cl = rw_cdb(c, SCSI_READ_10, 8, 8, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 4096));
	assert_memory_equal(buf, base + 4096, 4096);
	rw_all(&t);
	t_close(&t);
	uint8_t *now = malloc(1 << 20);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, now, 1 << 20), 1 << 20);
	close(fd);
	assert_memory_equal(now, base, 1 << 20);

	/* file: through io_uring; what was written is in the file. */
	snprintf(spec, sizeof(spec), "file:%s", path);
	t_open(&t, spec, false, false);
	rw_all(&t);
	/* SYNCHRONIZE CACHE on the real thing completes GOOD. */
	uint8_t s10[10] = { SCSI_SYNCHRONIZE_CACHE_10 };
	expect_good(run(&t, s10, 10, SCSI_DIR_NONE, NULL, 0));
	t_close(&t);
	uint8_t w[512];
	fill(w, 512, 7);
	fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, now, 512, 2047 * 512), 512);
	close(fd);
	assert_memory_equal(now, w, 512);
	free(base);
	free(now);
}

/* ---- flush, FUA, backend errors ----------------------------------------- */

static void test_flush_and_errors(void **state)
{
	(void)state;
	struct fake_disk *f = fake_open(1 << 20);
	struct t t;
	t_open_disk(&t, &f->d, false, false);
	uint8_t s10[10] = { SCSI_SYNCHRONIZE_CACHE_10 };
	expect_good(run(&t, s10, 10, SCSI_DIR_NONE, NULL, 0));
	assert_int_equal(f->flushes, 1);
	uint8_t s16[16] = { SCSI_SYNCHRONIZE_CACHE_16, 0x02 /* IMMED */ };
	put64(s16 + 2, 100);
	put32(s16 + 10, 10);
	expect_good(run(&t, s16, 16, SCSI_DIR_NONE, NULL, 0));
	assert_int_equal(f->flushes, 2);
	put64(s16 + 2, 2048); /* out of range: no flush */
	expect_sense(run(&t, s16, 16, SCSI_DIR_NONE, NULL, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	assert_int_equal(f->flushes, 2);

	/* FUA reaches the disk as FUA (the sync path flushes after it). */
	uint8_t c[16], buf[1024] = { 1 };
	unsigned cl = rw_cdb(c, SCSI_WRITE_10, 0, 2, 0x08);
	expect_good(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 1024));
	assert_int_equal(f->flushes, 3);
	cl = rw_cdb(c, SCSI_WRITE_10, 0, 2, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 1024));
	assert_int_equal(f->flushes, 3);

	/* Backend errors become MEDIUM ERROR with the LBA, or HARDWARE ERROR. */
	f->fail_read = -EIO;
	cl = rw_cdb(c, SCSI_READ_10, 33, 2, 0);
	struct scsi_req *r = run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 1024);
	expect_sense(r, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR);
	assert_int_equal(r->bytes_done, 0);
	assert_int_equal(r->sense[0], 0xf0); /* VALID */
	assert_int_equal(be32(r->sense + 3), 33);
	f->fail_write = -EIO;
	cl = rw_cdb(c, SCSI_WRITE_12, 44, 2, 0);
	r = run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 1024);
	expect_sense(r, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	assert_int_equal(be32(r->sense + 3), 44);
	f->fail_write = -ENOMEM;
	cl = rw_cdb(c, SCSI_WRITE_10, 0, 1, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 512), SCSI_SENSE_HARDWARE_ERROR,
		     SCSI_ASC_INTERNAL_TARGET_FAILURE);
	f->fail_write = -ENOSPC;
	expect_sense(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 512), SCSI_SENSE_DATA_PROTECT, 0x2707);
	f->fail_flush = -EIO;
	expect_sense(run(&t, s10, 10, SCSI_DIR_NONE, NULL, 0), SCSI_SENSE_MEDIUM_ERROR,
		     SCSI_ASC_WRITE_ERROR);
	/* And the next command is fine again. */
	expect_good(run(&t, s10, 10, SCSI_DIR_NONE, NULL, 0));

	/* A full disk queue: TASK SET FULL, no sense. */
	disk_queue_destroy(t.q);
	assert_int_equal(disk_queue_create(t.d, 1, &t.q), 0);
	static struct scsi_req first;
	static struct iovec fiov;
	fiov = (struct iovec){ buf, 512 };
	first = (struct scsi_req){ .cdb_len = 10, .dir = SCSI_DIR_FROM_DEV, .iov = &fiov,
				   .iovcnt = 1, .data_len = 512, .done = req_done };
	rw_cdb(first.cdb, SCSI_READ_10, 0, 1, 0);
	req_calls = 0;
	scsi_lun_execute(t.lun, t.q, &first); /* done, but not reaped yet */
	cl = rw_cdb(c, SCSI_READ_10, 0, 1, 0);
	start_iov(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 512, 1, 512);
	assert_int_equal(req_calls, 1);
	assert_int_equal(req.status, SAM_STAT_TASK_SET_FULL);
	assert_int_equal(req.sense_len, 0);
	disk_queue_complete(t.q);
	assert_int_equal(req_calls, 2);
	assert_int_equal(first.status, SAM_STAT_GOOD);
	t_close(&t);
}

/* ---- read-only ---------------------------------------------------------- */

static void test_read_only(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, true);
	uint8_t c[16], buf[1024] = { 0 };
	static const uint8_t wops[] = { SCSI_WRITE_6, SCSI_WRITE_10, SCSI_WRITE_12, SCSI_WRITE_16 };
	for (size_t i = 0; i < sizeof(wops); i++) {
		unsigned cl = rw_cdb(c, wops[i], 1, 1, 0);
		expect_sense(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 512), SCSI_SENSE_DATA_PROTECT,
			     SCSI_ASC_WRITE_PROTECTED);
	}
	unsigned cl = rw_cdb(c, SCSI_WRITE_SAME_16, 1, 1, 0x08);
	expect_sense(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 512), SCSI_SENSE_DATA_PROTECT,
		     SCSI_ASC_WRITE_PROTECTED);
	uint8_t u[10] = { SCSI_UNMAP, 0, 0, 0, 0, 0, 0, 0, 24, 0 };
	expect_sense(run(&t, u, 10, SCSI_DIR_TO_DEV, buf, 24), SCSI_SENSE_DATA_PROTECT,
		     SCSI_ASC_WRITE_PROTECTED);
	cl = rw_cdb(c, SCSI_READ_10, 1, 1, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 512));
	/* WP in the mode parameter header. */
	uint8_t ms[6] = { SCSI_MODE_SENSE_6, 0x08, 0x08, 0, 255, 0 };
	expect_good(run_in(&t, ms, 6));
	assert_int_equal(in[2] & 0x80, 0x80);
	t_close(&t);

	/* A read-only backend makes a read-only LUN whatever the config says. */
	struct disk_kind_spec k;
	struct disk *d;
	assert_int_equal(disk_kind_spec_parse("mem:64K", &k, err, sizeof(err)), 0);
	assert_int_equal(disk_open(&k, true, &d, err, sizeof(err)), 0);
	t_open_disk(&t, d, false, false);
	cl = rw_cdb(c, SCSI_WRITE_10, 1, 1, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 512), SCSI_SENSE_DATA_PROTECT,
		     SCSI_ASC_WRITE_PROTECTED);
	t_close(&t);
}

/* ---- MODE SENSE / MODE SELECT ------------------------------------------- */

static void test_mode_sense(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	/* MODE SENSE (6), caching page, with the block descriptor. */
	uint8_t c6[6] = { SCSI_MODE_SENSE_6, 0, 0x08, 0, 255, 0 };
	struct scsi_req *r = run_in(&t, c6, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 32);
	assert_int_equal(in[0], 31);
	assert_int_equal(in[2], 0x10); /* DPOFUA, not WP */
	assert_int_equal(in[3], 8);
	assert_int_equal(be32(in + 4), 2048);
	assert_int_equal(be32(in + 8) & 0xffffff, 512);
	assert_int_equal(in[12], 0x08);
	assert_int_equal(in[13], 0x12);
	assert_int_equal(in[14] & 0x05, 0x04); /* WCE, not RCD */
	/* DBD: no descriptor. */
	c6[1] = 0x08;
	r = run_in(&t, c6, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 24);
	assert_int_equal(in[3], 0);
	assert_int_equal(in[4], 0x08);
	/* Allocation length truncates. */
	c6[4] = 4;
	expect_good(run_in(&t, c6, 6));
	assert_int_equal(req.bytes_done, 4);
	assert_int_equal(in[0], 23); /* the length is of all there is */
	c6[4] = 255;
	/* All pages: caching then control. */
	c6[2] = 0x3f;
	r = run_in(&t, c6, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 4 + 20 + 12);
	assert_int_equal(in[4], 0x08);
	assert_int_equal(in[24], 0x0a);
	assert_int_equal(in[25], 10);
	c6[3] = 0xff; /* all subpages */
	expect_good(run_in(&t, c6, 6));
	assert_int_equal(req.bytes_done, 36);
	/* Changeable values: nothing. */
	c6[2] = 0x40 | 0x08;
	c6[3] = 0;
	expect_good(run_in(&t, c6, 6));
	assert_int_equal(in[6], 0);
	/* Saved values, unknown page, unknown subpage. */
	c6[2] = 0xc0 | 0x08;
	expect_sense(run_in(&t, c6, 6), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
	c6[2] = 0x1c;
	expect_bad_field(run_in(&t, c6, 6), 2);
	c6[2] = 0x2a; /* a CD page on a disk */
	expect_bad_field(run_in(&t, c6, 6), 2);
	c6[2] = 0x08;
	c6[3] = 1;
	expect_bad_field(run_in(&t, c6, 6), 3);

	/* MODE SENSE (10) with LLBAA: the long descriptor. */
	uint8_t c10[10] = { SCSI_MODE_SENSE_10, 0x10, 0x0a, 0, 0, 0, 0, 1, 0, 0 };
	r = run_in(&t, c10, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 8 + 16 + 12);
	assert_int_equal(in[0] << 8 | in[1], 8 + 16 + 12 - 2);
	assert_int_equal(in[3], 0x10);
	assert_int_equal(in[4] & 1, 1);
	assert_int_equal(in[6] << 8 | in[7], 16);
	assert_true(be64(in + 8) == 2048);
	assert_int_equal(be32(in + 20), 512);
	assert_int_equal(in[24], 0x0a);
	c10[1] = 0;
	r = run_in(&t, c10, 10);
	expect_good(r);
	assert_int_equal(in[7], 8);
	assert_int_equal(r->bytes_done, 8 + 8 + 12);
	t_close(&t);
}

static struct scsi_req *mode_select(struct t *t, bool ten, uint8_t flags, uint8_t *p,
				    uint32_t plen, uint32_t buflen)
{
	uint8_t c[10] = { 0 };
	c[0] = ten ? SCSI_MODE_SELECT_10 : SCSI_MODE_SELECT_6;
	c[1] = flags;
	if (ten) {
		c[7] = (uint8_t)(plen >> 8);
		c[8] = (uint8_t)plen;
	} else {
		c[4] = (uint8_t)plen;
	}
	return run(t, c, ten ? 10 : 6, SCSI_DIR_TO_DEV, p, buflen);
}

static void expect_bad_param(const struct scsi_req *r, unsigned byte)
{
	expect_sense(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST);
	assert_int_equal(r->sense[15], 0x80); /* SKSV, C/D = data */
	assert_int_equal(r->sense[16] << 8 | r->sense[17], byte);
}

static void test_mode_select(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	/* The caching page as MODE SENSE gave it back: accepted. */
	uint8_t ms[10] = { SCSI_MODE_SENSE_10, 0x08, 0x08, 0, 0, 0, 0, 0, 255, 0 };
	expect_good(run_in(&t, ms, 10));
	uint8_t p[64];
	memcpy(p, in, 28);
	p[0] = p[1] = 0; /* mode data length is reserved in MODE SELECT */
	p[3] = 0;
	expect_good(mode_select(&t, true, 0x10, p, 28, 28));
	/* Turning WCE off is a change: refused, pointing at byte 2 of the page. */
	p[10] &= ~0x04;
	expect_bad_param(mode_select(&t, true, 0x10, p, 28, 28), 10);
	p[10] |= 0x04;
	/* A page length that differs. */
	p[9] = 0x10;
	expect_bad_param(mode_select(&t, true, 0x10, p, 28, 28), 9);
	p[9] = 0x12;
	/* A page we do not have, a subpage format page. */
	p[8] = 0x1c;
	expect_bad_param(mode_select(&t, true, 0x10, p, 28, 28), 8);
	p[8] = 0x48;
	expect_bad_param(mode_select(&t, true, 0x10, p, 28, 28), 8);
	p[8] = 0x08;
	/* A page running past the list, a list shorter than its header. */
	expect_sense(mode_select(&t, true, 0x10, p, 20, 28), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	expect_sense(mode_select(&t, true, 0x10, p, 9, 28), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	expect_sense(mode_select(&t, true, 0x10, p, 7, 28), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	/* The buffer holds less than the parameter list length says. */
	expect_sense(mode_select(&t, true, 0x10, p, 28, 20), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	/* SP (save) and PF = 0. */
	expect_bad_field(mode_select(&t, true, 0x11, p, 28, 28), 1);
	expect_bad_field(mode_select(&t, true, 0x00, p, 28, 28), 1);
	/* Nothing at all is fine. */
	expect_good(mode_select(&t, true, 0x00, p, 0, 0));

	/* MODE SELECT (6) with a block descriptor that restates 512 bytes. */
	uint8_t q[4 + 8 + 12] = { 0, 0, 0, 8 };
	q[4 + 6] = 0x02; /* block length 0x000200 */
	q[12] = 0x0a;
	q[13] = 10;
	q[15] = 0x10;
	expect_good(mode_select(&t, false, 0x10, q, sizeof(q), sizeof(q)));
	q[4 + 6] = 0x10; /* 4096 */
	expect_bad_param(mode_select(&t, false, 0x10, q, sizeof(q), sizeof(q)), 4);
	q[4 + 6] = 0x02;
	q[3] = 200; /* descriptors past the list */
	expect_sense(mode_select(&t, false, 0x10, q, sizeof(q), sizeof(q)),
		     SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	t_close(&t);
}

/* ---- UNMAP, WRITE SAME, VERIFY ------------------------------------------ */

static void unmap_list(uint8_t *p, unsigned n, const uint64_t *lba, const uint32_t *cnt)
{
	memset(p, 0, 8 + 16 * n);
	p[0] = (uint8_t)((6 + 16 * n) >> 8);
	p[1] = (uint8_t)(6 + 16 * n);
	p[2] = (uint8_t)((16 * n) >> 8);
	p[3] = (uint8_t)(16 * n);
	for (unsigned i = 0; i < n; i++) {
		put64(p + 8 + 16 * i, lba[i]);
		put32(p + 16 + 16 * i, cnt[i]);
	}
}

static struct scsi_req *unmap(struct t *t, uint8_t *p, uint32_t plen, uint32_t buflen)
{
	uint8_t c[10] = { SCSI_UNMAP };
	c[7] = (uint8_t)(plen >> 8);
	c[8] = (uint8_t)plen;
	return run(t, c, 10, SCSI_DIR_TO_DEV, p, buflen);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_unmap(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	uint8_t *pat = malloc(65536), *now = malloc(65536);
	fill(pat, 65536, 31);
	assert_int_equal(disk_pwrite(t.d, pat, 65536, 0), 0);
	uint8_t p[8 + 16 * 40];
	uint64_t lba[40];
	uint32_t cnt[40];
	lba[0] = 8;
	cnt[0] = 8;
	lba[1] = 40;
	cnt[1] = 0; /* nothing */
	lba[2] = 64;
	cnt[2] = 3;
	unmap_list(p, 3, lba, cnt);
	expect_good(unmap(&t, p, 56, 64));
	assert_int_equal(req.bytes_done, 56); /* the parameter list */
	assert_int_equal(disk_pread(t.d, now, 65536, 0), 0);
	assert_memory_equal(now, pat, 8 * 512);
	assert_true(all_zero(now + 8 * 512, 8 * 512));
	assert_memory_equal(now + 16 * 512, pat + 16 * 512, 48 * 512);
	assert_true(all_zero(now + 64 * 512, 3 * 512));
	assert_memory_equal(now + 67 * 512, pat + 67 * 512, 65536 - 67 * 512);

	/* Bad lists: nothing is unmapped. */
	assert_int_equal(disk_pwrite(t.d, pat, 65536, 0), 0);
	expect_good(unmap(&t, p, 0, 0));
	expect_sense(unmap(&t, p, 7, 7), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	expect_sense(unmap(&t, p, 40, 40), SCSI_SENSE_ILLEGAL_REQUEST, /* bdl 48 > 32 */
		     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	expect_sense(unmap(&t, p, 56, 30), SCSI_SENSE_ILLEGAL_REQUEST, /* short buffer */
		     SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	lba[2] = 2046; /* 2046 + 3 > 2048 */
	unmap_list(p, 3, lba, cnt);
	expect_sense(unmap(&t, p, 56, 56), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	lba[2] = UINT64_MAX;
	unmap_list(p, 3, lba, cnt);
	expect_sense(unmap(&t, p, 56, 56), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	for (unsigned i = 0; i < 33; i++) {
		lba[i] = i;
		cnt[i] = 1;
	}
	unmap_list(p, 33, lba, cnt);
	expect_bad_param(unmap(&t, p, 8 + 16 * 33, 8 + 16 * 33), 2);
	assert_int_equal(disk_pread(t.d, now, 65536, 0), 0);
	assert_memory_equal(now, pat, 65536);
	/* 32 descriptors is the limit and works; a partial 33rd is ignored. */
	unmap_list(p, 32, lba, cnt);
	p[3] += 8;
	expect_good(unmap(&t, p, 8 + 16 * 32 + 8, 8 + 16 * 32 + 8));
	assert_int_equal(disk_pread(t.d, now, 65536, 0), 0);
	assert_true(all_zero(now, 32 * 512));
	assert_memory_equal(now + 32 * 512, pat + 32 * 512, 512);
	/* ANCHOR. */
	uint8_t c[10] = { SCSI_UNMAP, 0x01 };
	expect_bad_field(run(&t, c, 10, SCSI_DIR_TO_DEV, p, 24), 1);
	t_close(&t);

	/* The total is capped by MAXIMUM UNMAP LBA COUNT. */
	t_open(&t, "mem:4G", false, false);
	lba[0] = 0;
	cnt[0] = 1u << 22;
	lba[1] = 1u << 22;
	cnt[1] = 1;
	unmap_list(p, 2, lba, cnt);
	expect_bad_param(unmap(&t, p, 40, 40), 32);
	unmap_list(p, 1, lba, cnt);
	expect_good(unmap(&t, p, 24, 24));
	t_close(&t);

	/* A backend that cannot discard: no UNMAP. */
	struct fake_disk *f = fake_open(1 << 20);
	f->d.can_discard = false;
	t_open_disk(&t, &f->d, false, false);
	unmap_list(p, 1, lba, cnt);
	expect_sense(unmap(&t, p, 24, 24), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
	uint8_t v[6] = { SCSI_INQUIRY, 1, 0xb2, 0, 255, 0 };
	expect_good(run_in(&t, v, 6));
	assert_int_equal(in[5], 0);
	/* WRITE SAME with UNMAP still zeroes. */
	memset(f->buf, 0x5a, 1 << 20);
	uint8_t zero[512] = { 0 }, ws[16];
	unsigned cl = rw_cdb(ws, SCSI_WRITE_SAME_16, 10, 5, 0x08);
	expect_good(run(&t, ws, cl, SCSI_DIR_TO_DEV, zero, 512));
	assert_true(all_zero(f->buf + 10 * 512, 5 * 512));
	assert_int_equal(f->buf[10 * 512 - 1], 0x5a);
	assert_int_equal(f->buf[15 * 512], 0x5a);
	t_close(&t);
	free(pat);
	free(now);
}

static void test_write_same_verify(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	uint8_t *pat = malloc(1 << 20), *now = malloc(1 << 20), blk[512], c[16];
	fill(pat, 1 << 20, 41);
	assert_int_equal(disk_pwrite(t.d, pat, 1 << 20, 0), 0);
	/* A pattern over 130 blocks (three pieces of at most 64). */
	fill(blk, 512, 42);
	unsigned cl = rw_cdb(c, SCSI_WRITE_SAME_16, 100, 130, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512));
	assert_int_equal(req.bytes_done, 512); /* one block of data-out */
	assert_int_equal(disk_pread(t.d, now, 1 << 20, 0), 0);
	for (unsigned i = 100; i < 230; i++)
		assert_memory_equal(now + i * 512, blk, 512);
	assert_memory_equal(now + 99 * 512, pat + 99 * 512, 512);
	assert_memory_equal(now + 230 * 512, pat + 230 * 512, 512);
	/* UNMAP with a non-zero pattern writes the pattern. */
	cl = rw_cdb(c, SCSI_WRITE_SAME_10, 300, 2, 0x08);
	expect_good(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512));
	assert_int_equal(disk_pread(t.d, now, 1024, 300 * 512), 0);
	assert_memory_equal(now + 512, blk, 512);
	/* Zeros, with and without UNMAP, and NDOB. */
	memset(blk, 0, 512);
	cl = rw_cdb(c, SCSI_WRITE_SAME_10, 400, 9, 0x08);
	expect_good(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512));
	cl = rw_cdb(c, SCSI_WRITE_SAME_10, 500, 9, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512));
	cl = rw_cdb(c, SCSI_WRITE_SAME_16, 600, 9, 0x01);
	expect_good(run(&t, c, cl, SCSI_DIR_NONE, NULL, 0));
	assert_int_equal(req.bytes_done, 0); /* NDOB: no data-out */
	assert_int_equal(disk_pread(t.d, now, 1 << 20, 0), 0);
	assert_true(all_zero(now + 400 * 512, 9 * 512));
	assert_true(all_zero(now + 500 * 512, 9 * 512));
	assert_true(all_zero(now + 600 * 512, 9 * 512));
	assert_memory_equal(now + 609 * 512, pat + 609 * 512, 512);
	/* Errors: zero count (WSNZ), too long, out of range, no data, ANCHOR. */
	cl = rw_cdb(c, SCSI_WRITE_SAME_10, 1, 0, 0);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512), 7);
	cl = rw_cdb(c, SCSI_WRITE_SAME_16, 1, (1u << 22) + 1, 0);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512), 10);
	cl = rw_cdb(c, SCSI_WRITE_SAME_16, 2000, 49, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	cl = rw_cdb(c, SCSI_WRITE_SAME_16, 1, 1, 0);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 511), 10);
	cl = rw_cdb(c, SCSI_WRITE_SAME_10, 1, 1, 0x10);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512), 1);

	/* VERIFY: checks the range, compares nothing. */
	cl = rw_cdb(c, SCSI_VERIFY_10, 0, 2048, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_NONE, NULL, 0));
	cl = rw_cdb(c, SCSI_VERIFY_16, 2047, 2, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_NONE, NULL, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	cl = rw_cdb(c, SCSI_VERIFY_10, 0, 1, 0x02); /* BYTCHK */
	expect_bad_field(run(&t, c, cl, SCSI_DIR_TO_DEV, blk, 512), 1);
	free(pat);
	free(now);
	t_close(&t);
}

/* ---- malformed CDBs ----------------------------------------------------- */

static void test_malformed(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	uint8_t c[16] = { 0 }, buf[512];
	/* READ (10) in 6 bytes: the opcode's group needs 10. */
	rw_cdb(c, SCSI_READ_10, 0, 1, 0);
	expect_bad_field(run(&t, c, 6, SCSI_DIR_FROM_DEV, buf, 512), 0);
	rw_cdb(c, SCSI_READ_16, 0, 1, 0);
	expect_bad_field(run(&t, c, 12, SCSI_DIR_FROM_DEV, buf, 512), 0);
	/* No CDB, too long a CDB. */
	expect_sense(run(&t, c, 0, SCSI_DIR_NONE, NULL, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
	expect_sense(run(&t, c, 17, SCSI_DIR_NONE, NULL, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
	/* A longer CDB than needed is fine. */
	rw_cdb(c, SCSI_READ_10, 0, 1, 0);
	expect_good(run(&t, c, 16, SCSI_DIR_FROM_DEV, buf, 512));
	/* Opcodes we do not have: reserved and vendor groups, MMC on a disk. */
	static const uint8_t bad[] = { 0x01, 0x04, 0x7f, 0x60, 0xc0, 0xff, 0xa3, 0x9e + 1,
				       SCSI_GET_CONFIGURATION, SCSI_READ_TOC_PMA_ATIP,
				       SCSI_MECHANISM_STATUS };
	for (size_t i = 0; i < sizeof(bad); i++) {
		memset(c, 0, 16);
		c[0] = bad[i];
		expect_sense(run(&t, c, 16, SCSI_DIR_FROM_DEV, buf, 512),
			     SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
	}
	/* NACA in the CONTROL byte. */
	memset(c, 0, 16);
	c[5] = 0x04;
	expect_bad_field(run(&t, c, 6, SCSI_DIR_NONE, NULL, 0), 5);
	rw_cdb(c, SCSI_READ_16, 0, 1, 0);
	c[15] = 0x04;
	expect_bad_field(run(&t, c, 16, SCSI_DIR_FROM_DEV, buf, 512), 15);

	/* Every opcode with random fields: one completion, a sane status. */
	srand(7);
	uint8_t *big = malloc(65536);
	for (int round = 0; round < 4; round++) {
		for (unsigned op = 0; op < 256; op++) {
			for (int i = 0; i < 16; i++)
				c[i] = (uint8_t)rand();
			c[0] = (uint8_t)op;
			if (round < 2) /* small counts, so some succeed */
				c[7] = c[8] = c[4] = c[12] = c[13] = 0;
			enum scsi_dir dir = (enum scsi_dir)(rand() % 3);
			struct scsi_req *r = run(&t, c, 6 + rand() % 11, dir, big,
						 (uint32_t)(rand() % 65537));
			assert_true(r->status == SAM_STAT_GOOD ||
				    r->status == SAM_STAT_CHECK_CONDITION);
			assert_int_equal(r->sense_len, r->status ? 18 : 0);
			assert_true(r->bytes_done <= r->data_len);
		}
	}
	free(big);
	t_close(&t);
}

/* ---- REQUEST SENSE and unit attention ----------------------------------- */

static void test_request_sense(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	uint8_t rs[6] = { SCSI_REQUEST_SENSE, 0, 0, 0, 252, 0 };
	uint8_t tur[6] = { SCSI_TEST_UNIT_READY };
	uint8_t inq[6] = { SCSI_INQUIRY, 0, 0, 0, 36, 0 };
	struct scsi_req *r = run_in(&t, rs, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 18);
	assert_int_equal(in[0], 0x70);
	assert_int_equal(in[2], SCSI_SENSE_NO_SENSE);
	assert_int_equal(in[12], 0);
	expect_good(run(&t, tur, 6, SCSI_DIR_NONE, NULL, 0));

	/* A unit attention: INQUIRY passes, the next command reports it once. */
	scsi_lun_set_unit_attention(t.lun, SCSI_ASC_POWER_ON_RESET);
	expect_good(run_in(&t, inq, 6));
	expect_sense(run(&t, tur, 6, SCSI_DIR_NONE, NULL, 0), SCSI_SENSE_UNIT_ATTENTION,
		     SCSI_ASC_POWER_ON_RESET);
	expect_good(run(&t, tur, 6, SCSI_DIR_NONE, NULL, 0));

	/* REQUEST SENSE returns it (descriptor format with DESC) and clears it. */
	scsi_lun_set_unit_attention(t.lun, SCSI_ASC_CAPACITY_DATA_HAS_CHANGED);
	rs[1] = 1;
	r = run_in(&t, rs, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 8);
	assert_int_equal(in[0], 0x72);
	assert_int_equal(in[1], SCSI_SENSE_UNIT_ATTENTION);
	assert_int_equal(in[2] << 8 | in[3], SCSI_ASC_CAPACITY_DATA_HAS_CHANGED);
	r = run_in(&t, rs, 6);
	expect_good(r);
	assert_int_equal(in[1], SCSI_SENSE_NO_SENSE);
	assert_int_equal(in[2], 0);
	/* Fixed format, truncated by the allocation length. */
	scsi_lun_set_unit_attention(t.lun, SCSI_ASC_MEDIUM_CHANGED);
	rs[1] = 0;
	rs[4] = 14;
	r = run_in(&t, rs, 6);
	expect_good(r);
	assert_int_equal(r->bytes_done, 14);
	assert_int_equal(in[2], SCSI_SENSE_UNIT_ATTENTION);
	assert_int_equal(in[12], 0x28);
	assert_int_equal(in[14], 0xee);
	expect_good(run(&t, tur, 6, SCSI_DIR_NONE, NULL, 0));
	t_close(&t);
}

static void test_report_luns(void **state)
{
	(void)state;
	struct t t;
	t_open(&t, "mem:1M", false, false);
	uint8_t c[12] = { SCSI_REPORT_LUNS };
	c[9] = 255;
	struct scsi_req *r = run_in(&t, c, 12);
	expect_good(r);
	assert_int_equal(r->bytes_done, 16);
	assert_int_equal(be32(in), 8);
	assert_int_equal(in[8], 0);
	assert_int_equal(in[9], 3); /* the LUN's own number */

	/* The bus helper. */
	static const uint16_t luns[] = { 0, 1, 300 };
	memset(&req, 0, sizeof(req));
	memcpy(req.cdb, c, 12);
	req.cdb_len = 12;
	req.dir = SCSI_DIR_FROM_DEV;
	req_iov[0] = (struct iovec){ in, sizeof(in) };
	req.iov = req_iov;
	req.iovcnt = 1;
	req.data_len = sizeof(in);
	req.done = req_done;
	req_calls = 0;
	memset(in, 0xee, 64);
	scsi_report_luns(&req, luns, 3);
	assert_int_equal(req_calls, 1);
	expect_good(&req);
	assert_int_equal(req.bytes_done, 32);
	assert_int_equal(be32(in), 24);
	assert_int_equal(be32(in + 4), 0);
	assert_int_equal(in[9], 0);
	assert_int_equal(in[17], 1);
	assert_int_equal(in[24], 0x41); /* flat space addressing */
	assert_int_equal(in[25], 0x2c);
	assert_int_equal(in[26], 0);
	/* Allocation length 16: truncated, the length still says 24. */
	req.cdb[9] = 16;
	req_calls = 0;
	scsi_report_luns(&req, luns, 3);
	assert_int_equal(req.bytes_done, 16);
	assert_int_equal(be32(in), 24);
	req.cdb[9] = 15; /* below the minimum */
	req_calls = 0;
	scsi_report_luns(&req, luns, 3);
	expect_bad_field(&req, 6);
	req.cdb[9] = 255;
	req.cdb[2] = 1; /* well-known LUNs only: none */
	req_calls = 0;
	scsi_report_luns(&req, luns, 3);
	expect_good(&req);
	assert_int_equal(be32(in), 0);
	req.cdb[2] = 3;
	req_calls = 0;
	scsi_report_luns(&req, luns, 3);
	expect_bad_field(&req, 2);
	/* The transport's own refusal. */
	req_calls = 0;
	scsi_req_fail(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LOGICAL_UNIT_NOT_SUPPORTED);
	assert_int_equal(req_calls, 1);
	expect_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LOGICAL_UNIT_NOT_SUPPORTED);
	t_close(&t);
}

/* ---- CD/DVD-ROM --------------------------------------------------------- */

static void test_dvd(void **state)
{
	(void)state;
	struct t t;
	struct disk_kind_spec k;
	struct disk *d;
	assert_int_equal(disk_kind_spec_parse("mem:4M", &k, err, sizeof(err)), 0);
	assert_int_equal(disk_open(&k, false, &d, err, sizeof(err)), 0);
	uint8_t *pat = malloc(4 << 20);
	fill(pat, 4 << 20, 51);
	assert_int_equal(disk_pwrite(d, pat, 4 << 20, 0), 0);
	t_open_disk(&t, d, true, false);
	assert_int_equal(scsi_lun_block_size(t.lun), 2048);
	assert_true(scsi_lun_blocks(t.lun) == 2048);

	uint8_t inq[6] = { SCSI_INQUIRY, 0, 0, 0, 255, 0 };
	expect_good(run_in(&t, inq, 6));
	assert_int_equal(in[0], 0x05);
	assert_int_equal(in[1], 0x80);
	assert_memory_equal(in + 16, "Virtual DVD-ROM ", 16);
	inq[1] = 1;
	expect_good(run_in(&t, inq, 6));
	assert_int_equal(in[3], 3);
	inq[2] = 0xb0;
	expect_bad_field(run_in(&t, inq, 6), 2);

	uint8_t rc[10] = { SCSI_READ_CAPACITY_10 };
	expect_good(run_in(&t, rc, 10));
	assert_int_equal(be32(in), 2047);
	assert_int_equal(be32(in + 4), 2048);

	/* READ (10) and (12) in 2048-byte blocks; writes are refused. */
	uint8_t c[16], buf[8192];
	unsigned cl = rw_cdb(c, SCSI_READ_10, 3, 2, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 4096));
	assert_int_equal(req.bytes_done, 4096);
	assert_memory_equal(buf, pat + 3 * 2048, 4096);
	cl = rw_cdb(c, SCSI_READ_12, 2047, 1, 0);
	expect_good(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 2048));
	assert_memory_equal(buf, pat + 2047 * 2048, 2048);
	cl = rw_cdb(c, SCSI_READ_12, 2047, 2, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 4096), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_LBA_OUT_OF_RANGE);
	cl = rw_cdb(c, SCSI_READ_10, 0, 2, 0);
	expect_bad_field(run(&t, c, cl, SCSI_DIR_FROM_DEV, buf, 2048), 7);
	cl = rw_cdb(c, SCSI_WRITE_10, 0, 1, 0);
	expect_sense(run(&t, c, cl, SCSI_DIR_TO_DEV, buf, 2048), SCSI_SENSE_DATA_PROTECT,
		     SCSI_ASC_WRITE_PROTECTED);
	uint8_t sc[10] = { SCSI_SYNCHRONIZE_CACHE_10 };
	expect_sense(run(&t, sc, 10, SCSI_DIR_NONE, NULL, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);

	/* MODE SENSE (10): the capabilities page, no block descriptor, WP. */
	uint8_t ms[10] = { SCSI_MODE_SENSE_10, 0, 0x2a, 0, 0, 0, 0, 0, 128, 0 };
	struct scsi_req *r = run_in(&t, ms, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 8 + 22);
	assert_int_equal(in[6] << 8 | in[7], 0);
	assert_int_equal(in[8], 0x2a);
	assert_int_equal(in[9], 20);
	assert_int_equal(in[10] & 0x08, 0x08); /* reads DVD */
	assert_int_equal(in[11], 0);           /* writes nothing */
	assert_int_equal(in[14] & 0x08, 0);    /* cannot eject */
	assert_int_equal((in[16] << 8 | in[17]) / 176, 8);
	ms[2] = 0x3f;
	expect_good(run_in(&t, ms, 10));
	assert_int_equal(req.bytes_done, 30);
	ms[2] = 0x08;
	expect_bad_field(run_in(&t, ms, 10), 2);

	/* PREVENT: eject is refused and the page shows the lock. */
	uint8_t pa[6] = { SCSI_PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1, 0 };
	uint8_t ss[6] = { SCSI_START_STOP_UNIT, 0, 0, 0, 0x02, 0 };
	expect_good(run(&t, pa, 6, SCSI_DIR_NONE, NULL, 0));
	expect_sense(run(&t, ss, 6, SCSI_DIR_NONE, NULL, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_MEDIUM_REMOVAL_PREVENTED);
	ms[2] = 0x2a;
	expect_good(run_in(&t, ms, 10));
	assert_int_equal(in[14] & 0x02, 0x02);
	pa[4] = 0;
	expect_good(run(&t, pa, 6, SCSI_DIR_NONE, NULL, 0));
	expect_good(run(&t, ss, 6, SCSI_DIR_NONE, NULL, 0));
	ss[4] = 0x01;
	expect_good(run(&t, ss, 6, SCSI_DIR_NONE, NULL, 0));

	/* GET CONFIGURATION: a CD-sized medium is a CD-ROM. */
	uint8_t gc[10] = { SCSI_GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 1, 0, 0 };
	r = run_in(&t, gc, 10);
	expect_good(r);
	assert_int_equal(be32(in), r->bytes_done - 4);
	assert_int_equal(in[6] << 8 | in[7], 0x0008);
	assert_int_equal(in[8] << 8 | in[9], 0x0000); /* Profile List first */
	assert_int_equal(in[12] << 8 | in[13], 0x0008);
	assert_int_equal(in[14] & 1, 1);
	unsigned total = r->bytes_done;
	gc[1] = 1; /* current features only: DVD Read is not */
	r = run_in(&t, gc, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, total - 4);
	gc[1] = 2; /* one feature */
	gc[3] = 0x03;
	r = run_in(&t, gc, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 8 + 8);
	assert_int_equal(in[8] << 8 | in[9], 0x0003);
	gc[3] = 0x50; /* one we do not have: the header alone */
	expect_good(run_in(&t, gc, 10));
	assert_int_equal(req.bytes_done, 8);
	gc[1] = 3;
	expect_bad_field(run_in(&t, gc, 10), 1);

	/* READ TOC format 0, LBA and MSF. */
	uint8_t toc[10] = { SCSI_READ_TOC_PMA_ATIP, 0, 0, 0, 0, 0, 0, 0, 255, 0 };
	r = run_in(&t, toc, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 20);
	assert_int_equal(in[0] << 8 | in[1], 18);
	assert_int_equal(in[2], 1);
	assert_int_equal(in[3], 1);
	assert_int_equal(in[5], 0x14);
	assert_int_equal(in[6], 1);
	assert_int_equal(be32(in + 8), 0);
	assert_int_equal(in[14], 0xaa);
	assert_int_equal(be32(in + 16), 2048);
	toc[1] = 0x02;
	expect_good(run_in(&t, toc, 10));
	assert_int_equal(be32(in + 8), 0x00000200);            /* 00:02:00 */
	assert_int_equal(be32(in + 16), 0 << 16 | 29 << 8 | 23); /* 2198 frames */
	toc[1] = 0;
	toc[6] = 0xaa; /* the lead-out alone */
	expect_good(run_in(&t, toc, 10));
	assert_int_equal(req.bytes_done, 12);
	assert_int_equal(in[6], 0xaa);
	toc[6] = 2;
	expect_bad_field(run_in(&t, toc, 10), 6);
	/* Format 1 (session info), also as sr_cd_check asks in byte 9. */
	toc[6] = 0;
	toc[2] = 1;
	expect_good(run_in(&t, toc, 10));
	assert_int_equal(req.bytes_done, 12);
	assert_int_equal(in[0] << 8 | in[1], 10);
	assert_int_equal(in[6], 1);
	assert_int_equal(be32(in + 8), 0);
	toc[2] = 0;
	toc[8] = 12;
	toc[9] = 0x40;
	expect_good(run_in(&t, toc, 10));
	assert_int_equal(in[0] << 8 | in[1], 10);
	toc[9] = 0;
	toc[2] = 2;
	expect_bad_field(run_in(&t, toc, 10), 2);

	/* GET EVENT STATUS NOTIFICATION, polled, media class. */
	uint8_t ge[10] = { SCSI_GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x10, 0, 0, 0, 8, 0 };
	r = run_in(&t, ge, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 8);
	assert_int_equal(in[0] << 8 | in[1], 4);
	assert_int_equal(in[2], 0x04);
	assert_int_equal(in[3], 0x10);
	assert_int_equal(in[4], 0);    /* no change */
	assert_int_equal(in[5], 0x02); /* present, closed */
	ge[4] = 0x02;
	expect_good(run_in(&t, ge, 10));
	assert_int_equal(req.bytes_done, 4);
	assert_int_equal(in[2] & 0x80, 0x80);
	ge[1] = 0;
	expect_bad_field(run_in(&t, ge, 10), 1);

	uint8_t di[10] = { SCSI_READ_DISC_INFORMATION, 0, 0, 0, 0, 0, 0, 0, 255, 0 };
	r = run_in(&t, di, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 34);
	assert_int_equal(in[0] << 8 | in[1], 32);
	assert_int_equal(in[2], 0x0e);
	assert_int_equal(in[6], 1);
	di[1] = 1;
	expect_bad_field(run_in(&t, di, 10), 1);

	uint8_t ti[10] = { SCSI_READ_TRACK_INFORMATION, 1, 0, 0, 0, 1, 0, 0, 255, 0 };
	r = run_in(&t, ti, 10);
	expect_good(r);
	assert_int_equal(r->bytes_done, 36);
	assert_int_equal(in[0] << 8 | in[1], 34);
	assert_int_equal(in[2], 1);
	assert_int_equal(in[5] & 0x0f, 4);
	assert_int_equal(be32(in + 24), 2048);
	ti[1] = 0; /* by LBA */
	ti[4] = 0x07;
	ti[5] = 0xff;
	expect_good(run_in(&t, ti, 10));
	ti[4] = 0x08;
	ti[5] = 0x00; /* LBA 2048: past the medium */
	expect_bad_field(run_in(&t, ti, 10), 2);
	ti[1] = 1;
	ti[4] = 0;
	ti[5] = 2; /* track 2 */
	expect_bad_field(run_in(&t, ti, 10), 2);
	ti[1] = 3;
	expect_bad_field(run_in(&t, ti, 10), 1);

	uint8_t mst[12] = { SCSI_MECHANISM_STATUS, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0 };
	expect_good(run_in(&t, mst, 12));
	assert_int_equal(req.bytes_done, 8);
	assert_true(all_zero(in, 8));
	uint8_t spd[12] = { SCSI_SET_CD_SPEED, 0, 0xff, 0xff };
	expect_good(run(&t, spd, 12, SCSI_DIR_NONE, NULL, 0));
	t_close(&t);
	free(pat);

	/* A DVD-sized medium; a medium smaller than a block is refused. */
	t_open(&t, "mem:1G", true, false);
	gc[1] = 0;
	gc[3] = 0;
	expect_good(run_in(&t, gc, 10));
	assert_int_equal(in[6] << 8 | in[7], 0x0010);
	t_close(&t);
	assert_int_equal(disk_kind_spec_parse("mem:1K", &k, err, sizeof(err)), 0);
	assert_int_equal(disk_open(&k, false, &d, err, sizeof(err)), 0);
	struct scsi_lun_config cfg = { .dvd = true };
	struct scsi_lun *lun;
	assert_int_equal(scsi_lun_create(d, &cfg, &lun), -EINVAL);
	disk_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inquiry),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_rw_mem),
		cmocka_unit_test(test_rw_split),
		cmocka_unit_test(test_rw_requests),
		cmocka_unit_test(test_rw_file_and_memdiff),
		cmocka_unit_test(test_flush_and_errors),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_mode_sense),
		cmocka_unit_test(test_mode_select),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_write_same_verify),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_request_sense),
		cmocka_unit_test(test_report_luns),
		cmocka_unit_test(test_dvd),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
