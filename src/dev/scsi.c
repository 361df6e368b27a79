/*
 * SCSI target core (scsi.h): LUN lifetime, command dispatch with the
 * checks every CDB gets (length for its opcode group, SPC-4 4.2.5.1; NACA
 * in the CONTROL byte; pending unit attention, SAM-5 5.14), sense data
 * (SPC-4 4.5.3 fixed and 4.5.2 descriptor format), the commands common to
 * disks and CD-ROMs (TEST UNIT READY, REQUEST SENSE, REPORT LUNS, START
 * STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, READ/WRITE 6/10/12/16, SBC-3
 * 5.8-5.37), and the engine that runs a command's disk requests: a transfer
 * whose iovecs the disk cannot take in one request (more than DISK_MAX_IOV)
 * goes in sector-aligned pieces of up to SCSI_SLICE_IOV iovecs, one after
 * the other, all inside the request (no allocation per I/O).
 */
#include "dev/scsi_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum io_kind { IO_READ, IO_WRITE, IO_PATTERN, IO_ZERO, IO_DISCARD, IO_UNMAP, IO_FLUSH };

/* ---- LUN ---------------------------------------------------------------- */

int scsi_lun_create(struct disk *d, const struct scsi_lun_config *cfg,
		    struct scsi_lun **out)
{
	uint32_t bs = cfg->dvd ? SCSI_CD_BLOCK : SCSI_DISK_BLOCK;
	if (disk_size(d) < bs)
		return -EINVAL;
	struct scsi_lun *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->disk = d;
	l->dvd = cfg->dvd;
	l->read_only = cfg->dvd || cfg->read_only || disk_is_read_only(d);
	l->can_discard = !l->read_only && disk_can_discard(d);
	l->lun = cfg->lun;
	l->bs = bs;
	l->blocks = disk_size(d) / bs;
	l->id = cfg->id;
	size_t n = 0;
	for (const char *s = cfg->serial; s && *s && n < SCSI_SERIAL_MAX; s++)
		l->serial[n++] = (*s > 0x20 && *s < 0x7f) ? *s : '_';
	if (n == 0)
		snprintf(l->serial, sizeof(l->serial), "%016llx", (unsigned long long)cfg->id);
	atomic_init(&l->prevent, false);
	atomic_init(&l->ua_pending, false);
	pthread_mutex_init(&l->ua_lock, NULL);
	*out = l;
	return 0;
}

void scsi_lun_destroy(struct scsi_lun *lun)
{
	if (!lun)
		return;
	pthread_mutex_destroy(&lun->ua_lock);
	free(lun);
}

uint64_t scsi_lun_blocks(const struct scsi_lun *lun)
{
	return lun->blocks;
}

uint32_t scsi_lun_block_size(const struct scsi_lun *lun)
{
	return lun->bs;
}

void scsi_lun_set_unit_attention(struct scsi_lun *lun, uint16_t asc_ascq)
{
	pthread_mutex_lock(&lun->ua_lock);
	lun->ua_asc = asc_ascq;
	atomic_store(&lun->ua_pending, true);
	pthread_mutex_unlock(&lun->ua_lock);
}

/* Takes the pending unit attention, if any. */
static bool take_unit_attention(struct scsi_lun *lun, uint16_t *asc)
{
	if (!atomic_load(&lun->ua_pending))
		return false;
	pthread_mutex_lock(&lun->ua_lock);
	bool had = atomic_exchange(&lun->ua_pending, false);
	*asc = lun->ua_asc;
	pthread_mutex_unlock(&lun->ua_lock);
	return had;
}

/* ---- status and sense --------------------------------------------------- */

size_t scsi_build_sense(uint8_t *out, bool desc, uint8_t key, uint16_t asc)
{
	if (desc) {
		/* Descriptor format, no descriptors (SPC-4 4.5.2). */
		memset(out, 0, 8);
		out[0] = 0x72; /* current error */
		out[1] = key & 0xf;
		out[2] = (uint8_t)(asc >> 8);
		out[3] = (uint8_t)asc;
		return 8;
	}
	memset(out, 0, SCSI_SENSE_LEN);
	out[0] = 0x70;
	out[2] = key & 0xf;
	out[7] = SCSI_SENSE_LEN - 8; /* additional sense length */
	out[12] = (uint8_t)(asc >> 8);
	out[13] = (uint8_t)asc;
	return SCSI_SENSE_LEN;
}

void scsi_complete_good(struct scsi_req *r)
{
	r->status = SAM_STAT_GOOD;
	r->sense_len = 0;
	r->done(r);
}

static void fail_full(struct scsi_req *r, uint8_t key, uint16_t asc, bool info_valid,
		      uint32_t info, int field)
{
	r->status = SAM_STAT_CHECK_CONDITION;
	r->sense_len = (uint8_t)scsi_build_sense(r->sense, false, key, asc);
	if (info_valid) {
		r->sense[0] |= 0x80; /* VALID: INFORMATION holds the failing LBA */
		scsi_put32(r->sense + 3, info);
	}
	if (field >= 0) {
		/* Sense-key specific: SKSV, C/D (bit 6: in the CDB), field pointer. */
		r->sense[15] = 0x80 | (uint8_t)((field >> 16) & 0x40);
		scsi_put16(r->sense + 16, (uint16_t)field);
	}
	r->done(r);
}

void scsi_fail(struct scsi_req *r, uint8_t key, uint16_t asc)
{
	fail_full(r, key, asc, false, 0, -1);
}

void scsi_req_fail(struct scsi_req *r, uint8_t key, uint16_t asc_ascq)
{
	r->bytes_done = 0;
	scsi_fail(r, key, asc_ascq);
}

void scsi_fail_cdb(struct scsi_req *r, unsigned byte)
{
	fail_full(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, false, 0,
		  (int)(0x400000 | (byte & 0xffff)));
}

void scsi_fail_param(struct scsi_req *r, unsigned byte)
{
	fail_full(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST,
		  false, 0, (int)(byte & 0xffff));
}

int scsi_check_range(struct scsi_req *r, uint64_t lba, uint64_t n)
{
	uint64_t blocks = r->priv_.lun->blocks;
	if (n > blocks || lba > blocks - n) {
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return -1;
	}
	return 0;
}

/* ---- the transport's buffer --------------------------------------------- */

void scsi_reply(struct scsi_req *r, const void *buf, size_t len, uint32_t alloc)
{
	uint64_t room = r->dir == SCSI_DIR_FROM_DEV ? r->priv_.buf_len : 0;
	uint64_t n = len;
	if (n > alloc)
		n = alloc;
	if (n > room)
		n = room;
	const uint8_t *p = buf;
	uint64_t left = n;
	for (unsigned i = 0; i < r->iovcnt && left; i++) {
		size_t c = r->iov[i].iov_len < left ? r->iov[i].iov_len : left;
		memcpy(r->iov[i].iov_base, p, c);
		p += c;
		left -= c;
	}
	r->bytes_done = (uint32_t)n;
	scsi_complete_good(r);
}

size_t scsi_data_out(struct scsi_req *r, void *buf, size_t len)
{
	uint64_t room = r->dir == SCSI_DIR_TO_DEV ? r->priv_.buf_len : 0;
	size_t n = len < room ? len : room;
	uint8_t *p = buf;
	size_t left = n;
	for (unsigned i = 0; i < r->iovcnt && left; i++) {
		size_t c = r->iov[i].iov_len < left ? r->iov[i].iov_len : left;
		memcpy(p, r->iov[i].iov_base, c);
		p += c;
		left -= c;
	}
	r->bytes_done = (uint32_t)n;
	return n;
}

/* ---- the disk engine ----------------------------------------------------- */

static void io_submit_next(struct scsi_req *r);

static void io_fail(struct scsi_req *r, int err)
{
	struct scsi_req_priv *p = &r->priv_;
	uint32_t lba = (uint32_t)(p->off / p->lun->bs);
	if (err == -EAGAIN) {
		/* The transport keeps more requests in flight than q holds. */
		r->status = SAM_STAT_TASK_SET_FULL;
		r->sense_len = 0;
		r->done(r);
		return;
	}
	if (p->kind == IO_READ) {
		if (err == -EIO)
			fail_full(r, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR,
				  true, lba, -1);
		else
			scsi_fail(r, SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	switch (err) {
	case -EIO:
		fail_full(r, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR,
			  p->kind != IO_FLUSH, lba, -1);
		break;
	case -EROFS:
		scsi_fail(r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		break;
	case -ENOSPC: /* SPACE ALLOCATION FAILED WRITE PROTECT */
		scsi_fail(r, SCSI_SENSE_DATA_PROTECT, 0x2707);
		break;
	default:
		scsi_fail(r, SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
		break;
	}
	log_guest("scsi: %s: disk error %d at LBA %u", disk_describe(p->lun->disk), err, lba);
}

static void io_done(struct disk_req *dr, int result)
{
	struct scsi_req *r = dr->opaque;
	struct scsi_req_priv *p = &r->priv_;
	if (result < 0) {
		io_fail(r, result);
		return;
	}
	if (p->kind == IO_UNMAP) {
		io_submit_next(r);
		return;
	}
	p->off += dr->len;
	p->left -= dr->len;
	if (p->kind == IO_READ || p->kind == IO_WRITE)
		r->bytes_done += (uint32_t)dr->len;
	if (p->left == 0 || p->kind == IO_FLUSH) {
		scsi_complete_good(r);
		return;
	}
	io_submit_next(r);
}

/* Moves the buffer cursor forward by len bytes. */
static void cursor_advance(struct scsi_req *r, uint64_t len)
{
	struct scsi_req_priv *p = &r->priv_;
	while (len && p->iov_idx < r->iovcnt) {
		size_t avail = r->iov[p->iov_idx].iov_len - p->iov_off;
		if (len < avail) {
			p->iov_off += len;
			return;
		}
		len -= avail;
		p->iov_idx++;
		p->iov_off = 0;
	}
}

/*
 * The next piece of a READ/WRITE: the whole transfer with the transport's
 * own iovecs when the disk can take them, else up to SCSI_SLICE_IOV iovecs
 * from the cursor, cut down to whole sectors. Returns the iovec count
 * (0: the buffer is too fragmented to make even one sector).
 */
static unsigned rw_slice(struct scsi_req *r, const struct iovec **iov, uint64_t *len)
{
	struct scsi_req_priv *p = &r->priv_;
	if (p->iov_idx == 0 && p->iov_off == 0 && r->iovcnt <= DISK_MAX_IOV &&
	    p->iov_sum == p->left) {
		*iov = r->iov;
		*len = p->left;
		return r->iovcnt;
	}
	unsigned n = 0, i = p->iov_idx;
	size_t o = p->iov_off;
	uint64_t total = 0;
	while (n < SCSI_SLICE_IOV && total < p->left && i < r->iovcnt) {
		size_t avail = r->iov[i].iov_len - o;
		uint64_t take = avail < p->left - total ? avail : p->left - total;
		if (take) {
			p->slice[n].iov_base = (uint8_t *)r->iov[i].iov_base + o;
			p->slice[n].iov_len = take;
			n++;
			total += take;
		}
		i++;
		o = 0;
	}
	uint64_t tail = total % DISK_SECTOR_SIZE;
	while (tail && n) {
		struct iovec *last = &p->slice[n - 1];
		if (last->iov_len > tail) {
			last->iov_len -= tail;
			break;
		}
		tail -= last->iov_len;
		n--;
	}
	total -= total % DISK_SECTOR_SIZE;
	*iov = p->slice;
	*len = total;
	return total ? n : 0;
}

static void io_submit_next(struct scsi_req *r)
{
	struct scsi_req_priv *p = &r->priv_;
	struct disk_req *dr = &p->dreq;
	*dr = (struct disk_req){ .done = io_done, .opaque = r, .offset = p->off };
	switch (p->kind) {
	case IO_READ:
	case IO_WRITE: {
		const struct iovec *iov;
		uint64_t len;
		unsigned n = rw_slice(r, &iov, &len);
		if (!n) {
			log_guest("scsi: transfer buffer too fragmented (%u iovecs)", r->iovcnt);
			scsi_fail(r, SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
			return;
		}
		cursor_advance(r, len);
		dr->op = p->kind == IO_READ ? DISK_READ : DISK_WRITE;
		dr->iov = iov;
		dr->iovcnt = n;
		dr->len = len;
		dr->fua = p->fua;
		break;
	}
	case IO_PATTERN: {
		/* The same block, repeated: every iovec points at the pattern. */
		uint64_t blocks = p->left / DISK_SECTOR_SIZE;
		unsigned n = blocks < SCSI_SLICE_IOV ? (unsigned)blocks : SCSI_SLICE_IOV;
		for (unsigned i = 0; i < n; i++)
			p->slice[i] = (struct iovec){ p->scratch.block, DISK_SECTOR_SIZE };
		dr->op = DISK_WRITE;
		dr->iov = p->slice;
		dr->iovcnt = n;
		dr->len = (uint64_t)n * DISK_SECTOR_SIZE;
		break;
	}
	case IO_ZERO:
	case IO_DISCARD:
		dr->op = p->kind == IO_ZERO ? DISK_WRITE_ZEROES : DISK_DISCARD;
		dr->len = p->left;
		break;
	case IO_UNMAP: {
		while (p->unmap_idx < p->unmap_cnt && p->scratch.unmap[p->unmap_idx].n == 0)
			p->unmap_idx++;
		if (p->unmap_idx >= p->unmap_cnt) {
			scsi_complete_good(r);
			return;
		}
		uint64_t bs = p->lun->bs;
		dr->op = DISK_DISCARD;
		dr->offset = p->off = p->scratch.unmap[p->unmap_idx].lba * bs;
		dr->len = p->scratch.unmap[p->unmap_idx].n * bs;
		p->unmap_idx++;
		break;
	}
	case IO_FLUSH:
		dr->op = DISK_FLUSH;
		break;
	}
	int ret = disk_queue_submit(p->q, dr);
	if (ret < 0)
		io_fail(r, ret);
}

static void io_start(struct scsi_req *r, enum io_kind kind, uint64_t lba, uint64_t n)
{
	struct scsi_req_priv *p = &r->priv_;
	p->kind = kind;
	p->lba = lba;
	p->off = lba * p->lun->bs;
	p->left = n * p->lun->bs;
	p->iov_idx = 0;
	p->iov_off = 0;
	if (kind == IO_READ || kind == IO_WRITE)
		r->bytes_done = 0; /* counted per piece; others keep what they read */
	io_submit_next(r);
}

void scsi_start_rw(struct scsi_req *r, bool write, uint64_t lba, uint64_t n, bool fua)
{
	r->priv_.fua = fua;
	io_start(r, write ? IO_WRITE : IO_READ, lba, n);
}

void scsi_start_flush(struct scsi_req *r)
{
	io_start(r, IO_FLUSH, 0, 0);
}

void scsi_start_write_same(struct scsi_req *r, uint64_t lba, uint64_t n, bool unmap,
			   bool zero)
{
	/* Discarded blocks read as zeros (disk.h): discard only a zero
	 * pattern, whatever UNMAP says, and write zeros where it cannot. */
	enum io_kind k = IO_PATTERN;
	if (zero)
		k = unmap && r->priv_.lun->can_discard ? IO_DISCARD : IO_ZERO;
	r->priv_.fua = false;
	io_start(r, k, lba, n);
}

void scsi_start_unmap(struct scsi_req *r)
{
	struct scsi_req_priv *p = &r->priv_;
	p->kind = IO_UNMAP;
	p->unmap_idx = 0;
	io_submit_next(r);
}

/* ---- common commands ---------------------------------------------------- */

/* Resets the outputs and measures the transport's buffer. */
static void req_prepare(struct scsi_req *r)
{
	struct scsi_req_priv *p = &r->priv_;
	r->status = SAM_STAT_GOOD;
	r->sense_len = 0;
	r->bytes_done = 0;
	uint64_t sum = 0;
	if (!r->iov)
		r->iovcnt = 0;
	for (unsigned i = 0; i < r->iovcnt && sum <= UINT32_MAX; i++)
		sum += r->iov[i].iov_len;
	p->iov_sum = sum;
	p->buf_len = sum < r->data_len ? (uint32_t)sum : r->data_len;
}

static void request_sense(struct scsi_req *r)
{
	bool desc = r->cdb[1] & 1;
	uint8_t buf[SCSI_SENSE_LEN];
	uint16_t asc;
	size_t len;
	if (take_unit_attention(r->priv_.lun, &asc))
		len = scsi_build_sense(buf, desc, SCSI_SENSE_UNIT_ATTENTION, asc);
	else
		len = scsi_build_sense(buf, desc, SCSI_SENSE_NO_SENSE, 0);
	scsi_reply(r, buf, len, r->cdb[4]);
}

static void report_luns(struct scsi_req *r, const uint16_t *luns, unsigned n)
{
	uint8_t buf[8 + 256 * 8];
	uint8_t sel = r->cdb[2];
	uint32_t alloc = scsi_get32(r->cdb + 6);
	if (r->cdb_len < 12 || sel > 2) {
		scsi_fail_cdb(r, 2);
		return;
	}
	if (alloc < 16) {
		scsi_fail_cdb(r, 6);
		return;
	}
	if (sel == 1 || n > 256)
		n = sel == 1 ? 0 : 256; /* no well-known LUNs; at most 256 listed */
	memset(buf, 0, sizeof(buf));
	scsi_put32(buf, n * 8);
	for (unsigned i = 0; i < n; i++) {
		uint16_t l = luns[i] & 0x3fff;
		/* SAM-5 4.7.7: peripheral addressing below 256, flat above. */
		buf[8 + i * 8] = l < 256 ? 0 : (uint8_t)(0x40 | l >> 8);
		buf[9 + i * 8] = (uint8_t)l;
	}
	scsi_reply(r, buf, 8 + n * 8, alloc);
}

void scsi_report_luns(struct scsi_req *r, const uint16_t *luns, unsigned n)
{
	req_prepare(r);
	report_luns(r, luns, n);
}

static void start_stop(struct scsi_req *r)
{
	struct scsi_lun *lun = r->priv_.lun;
	bool loej = r->cdb[4] & 2, start = r->cdb[4] & 1;
	if (loej && !start && atomic_load(&lun->prevent)) {
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_MEDIUM_REMOVAL_PREVENTED);
		return;
	}
	/* Spinning and power conditions mean nothing here; the medium stays. */
	scsi_complete_good(r);
}

static void read_write(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *lun = r->priv_.lun;
	uint64_t lba;
	uint32_t n;
	unsigned lenpos;
	bool write = false;
	switch (c[0]) {
	case SCSI_WRITE_6:
		write = true;
		/* fall through */
	case SCSI_READ_6:
		lba = (uint64_t)(c[1] & 0x1f) << 16 | scsi_get16(c + 2);
		n = c[4] ? c[4] : 256; /* SBC-3 5.13: 0 means 256 blocks */
		lenpos = 4;
		break;
	case SCSI_WRITE_10:
		write = true;
		/* fall through */
	case SCSI_READ_10:
		lba = scsi_get32(c + 2);
		n = scsi_get16(c + 7);
		lenpos = 7;
		break;
	case SCSI_WRITE_12:
		write = true;
		/* fall through */
	case SCSI_READ_12:
		lba = scsi_get32(c + 2);
		n = scsi_get32(c + 6);
		lenpos = 6;
		break;
	default: /* READ_16, WRITE_16 */
		write = c[0] == SCSI_WRITE_16;
		lba = scsi_get64(c + 2);
		n = scsi_get32(c + 10);
		lenpos = 10;
		break;
	}
	bool fua = false;
	if (c[0] != SCSI_READ_6 && c[0] != SCSI_WRITE_6) {
		if (c[1] & 0xe0) { /* RDPROTECT/WRPROTECT: no protection information */
			scsi_fail_cdb(r, 1);
			return;
		}
		fua = c[1] & 0x08; /* DPO (0x10) is only a cache hint */
	}
	if (scsi_check_range(r, lba, n))
		return;
	if (write && lun->read_only) {
		scsi_fail(r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	if (n == 0) {
		scsi_complete_good(r);
		return;
	}
	uint64_t bytes = (uint64_t)n * lun->bs;
	if (r->dir != (write ? SCSI_DIR_TO_DEV : SCSI_DIR_FROM_DEV) || bytes > r->priv_.buf_len) {
		log_guest("scsi: %s of %llu bytes with a %u-byte buffer (direction %d)",
			  write ? "write" : "read", (unsigned long long)bytes, r->priv_.buf_len,
			  r->dir);
		scsi_fail_cdb(r, lenpos);
		return;
	}
	scsi_start_rw(r, write, lba, n, write && fua);
}

/* CDB length by opcode group (SPC-4 4.2.5.1); 0 = no standard length. */
static unsigned group_len(uint8_t op)
{
	static const uint8_t len[8] = { 6, 10, 10, 0, 16, 12, 0, 0 };
	return len[op >> 5];
}

void scsi_lun_execute(struct scsi_lun *lun, struct disk_queue *q, struct scsi_req *r)
{
	struct scsi_req_priv *p = &r->priv_;
	p->lun = lun;
	p->q = q;
	req_prepare(r);

	uint8_t op = r->cdb[0];
	unsigned need = group_len(op);
	if (r->cdb_len > SCSI_CDB_MAX || r->cdb_len == 0 || !need) {
		if (r->cdb_len == 0 || r->cdb_len > SCSI_CDB_MAX)
			log_guest("scsi: CDB length %u", r->cdb_len);
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
		return;
	}
	if (r->cdb_len < need) {
		log_guest("scsi: opcode 0x%02x in a %u-byte CDB", op, r->cdb_len);
		scsi_fail_cdb(r, 0);
		return;
	}
	if (r->cdb[need - 1] & 0x04) { /* NACA: not supported (SAM-5 5.9.1.2) */
		scsi_fail_cdb(r, need - 1);
		return;
	}
	uint16_t asc;
	if (op != SCSI_INQUIRY && op != SCSI_REPORT_LUNS && op != SCSI_REQUEST_SENSE &&
	    take_unit_attention(lun, &asc)) {
		scsi_fail(r, SCSI_SENSE_UNIT_ATTENTION, asc);
		return;
	}
	switch (op) {
	case SCSI_TEST_UNIT_READY:
		scsi_complete_good(r);
		return;
	case SCSI_REQUEST_SENSE:
		request_sense(r);
		return;
	case SCSI_INQUIRY:
		scsi_inquiry(r);
		return;
	case SCSI_REPORT_LUNS:
		report_luns(r, &lun->lun, 1);
		return;
	case SCSI_START_STOP_UNIT:
		start_stop(r);
		return;
	case SCSI_PREVENT_ALLOW_MEDIUM_REMOVAL:
		atomic_store(&lun->prevent, r->cdb[4] & 1);
		scsi_complete_good(r);
		return;
	case SCSI_MODE_SENSE_6:
	case SCSI_MODE_SENSE_10:
		scsi_mode_sense(r);
		return;
	case SCSI_MODE_SELECT_6:
	case SCSI_MODE_SELECT_10:
		scsi_mode_select(r);
		return;
	case SCSI_READ_6: case SCSI_READ_10: case SCSI_READ_12: case SCSI_READ_16:
	case SCSI_WRITE_6: case SCSI_WRITE_10: case SCSI_WRITE_12: case SCSI_WRITE_16:
		read_write(r);
		return;
	}
	if (lun->dvd ? scsi_cdrom_execute(r) : scsi_disk_execute(r))
		return;
	log_guest_debug("scsi: unsupported opcode 0x%02x", op);
	scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
}
