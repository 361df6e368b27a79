/*
 * libFuzzer harness: the SCSI target (src/dev/scsi*.c) executing arbitrary
 * CDBs with arbitrary data buffers, as a guest drives it through storvsp,
 * against a small mem: disk as a writable disk, a read-only disk and a
 * DVD. Input: byte 0 picks the LUN; then records of
 *   {u8 cdb_len, u8 cdb[16], u8 dir, u16 data_len, u8 iov_piece}
 * (cdb_len bit 7: cdb[0] indexes the opcodes we implement, so most
 * records reach a command's own checks) where the data buffer (data-out contents included) is the bytes after
 * the last record, split into iovecs of iov_piece+1 bytes (so transfers
 * with many small iovecs are split). Checks: every command completes
 * exactly once, with sense exactly when CHECK CONDITION, and never moves
 * more than data_len bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/disk.h"
#include "core/log.h"
#include "dev/scsi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REC 21
#define MAX_RECS 16
#define BUF_MAX 65536
#define IOV_MAX 1024

static int calls;

static const uint8_t opcodes[] = {
	SCSI_TEST_UNIT_READY, SCSI_REQUEST_SENSE, SCSI_READ_6, SCSI_WRITE_6, SCSI_INQUIRY,
	SCSI_MODE_SELECT_6, SCSI_MODE_SENSE_6, SCSI_START_STOP_UNIT,
	SCSI_PREVENT_ALLOW_MEDIUM_REMOVAL, SCSI_READ_CAPACITY_10, SCSI_READ_10, SCSI_WRITE_10,
	SCSI_VERIFY_10, SCSI_SYNCHRONIZE_CACHE_10, SCSI_WRITE_SAME_10, SCSI_UNMAP,
	SCSI_READ_TOC_PMA_ATIP, SCSI_GET_CONFIGURATION, SCSI_GET_EVENT_STATUS_NOTIFICATION,
	SCSI_READ_DISC_INFORMATION, SCSI_READ_TRACK_INFORMATION, SCSI_MODE_SELECT_10,
	SCSI_MODE_SENSE_10, SCSI_READ_16, SCSI_WRITE_16, SCSI_VERIFY_16,
	SCSI_SYNCHRONIZE_CACHE_16, SCSI_WRITE_SAME_16, SCSI_SERVICE_ACTION_IN_16,
	SCSI_REPORT_LUNS, SCSI_READ_12, SCSI_WRITE_12, SCSI_SET_CD_SPEED, SCSI_MECHANISM_STATUS,
};

static void done(struct scsi_req *r)
{
	(void)r;
	calls++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[BUF_MAX];
	static struct iovec iov[IOV_MAX];
	static struct scsi_req req;
	if (size < 1 + REC)
		return 0;
	log_level = LOG_ERROR;
	unsigned mode = data[0] % 3; /* disk, read-only disk, dvd */
	size_t nrec = (size - 1) / REC < MAX_RECS ? (size - 1) / REC : MAX_RECS;
	const uint8_t *tail = data + 1 + nrec * REC;
	size_t tail_len = size - 1 - nrec * REC;

	struct disk_kind_spec k;
	struct disk *d;
	struct scsi_lun *lun;
	struct disk_queue *q;
	char err[128];
	if (disk_kind_spec_parse("mem:256K", &k, err, sizeof(err)) ||
	    disk_open(&k, false, &d, err, sizeof(err)))
		abort();
	struct scsi_lun_config cfg = { .dvd = mode == 2, .read_only = mode == 1, .id = 1 };
	if (scsi_lun_create(d, &cfg, &lun) || disk_queue_create(d, 4, &q))
		abort();

	for (size_t i = 0; i < nrec; i++) {
		const uint8_t *r = data + 1 + i * REC;
		memset(&req, 0, sizeof(req));
		req.cdb_len = r[0] & 0x7f;
		memcpy(req.cdb, r + 1, SCSI_CDB_MAX);
		if (r[0] & 0x80)
			req.cdb[0] = opcodes[r[1] % sizeof(opcodes)];
		req.dir = (enum scsi_dir)(r[17] % 3);
		uint32_t len = (uint32_t)r[18] << 8 | r[19];
		if (r[17] & 0x80)
			len <<= 2; /* sometimes long transfers */
		if (len > BUF_MAX)
			len = BUF_MAX;
		memset(buf, 0, len);
		memcpy(buf, tail, tail_len < len ? tail_len : len);
		size_t piece = (size_t)r[20] + 1, off = 0;
		if (r[20] == 0xff)
			piece = len ? len : 1; /* one iovec */
		unsigned n = 0;
		while (off < len && n < IOV_MAX) {
			size_t l = len - off < piece ? len - off : piece;
			iov[n++] = (struct iovec){ buf + off, l };
			off += l;
		}
		req.iov = iov;
		req.iovcnt = n;
		req.data_len = (uint32_t)off; /* what the iovecs hold */
		if (r[17] & 0x40 && req.data_len)
			req.data_len--; /* less than the iovecs hold */
		req.done = done;
		calls = 0;
		scsi_lun_execute(lun, q, &req);
		for (int spin = 0; spin < 4 && !calls; spin++)
			disk_queue_complete(q);
		if (calls != 1 || disk_queue_inflight(q) != 0)
			abort();
		if ((req.status == SAM_STAT_GOOD) != (req.sense_len == 0) ||
		    (req.status != SAM_STAT_GOOD && req.status != SAM_STAT_CHECK_CONDITION) ||
		    req.bytes_done > req.data_len)
			abort();
	}
	if (data[0] & 0x80) {
		static const uint16_t luns[] = { 0, 1, 2, 511 };
		calls = 0;
		scsi_report_luns(&req, luns, 4);
		if (calls != 1)
			abort();
	}
	disk_queue_destroy(q);
	scsi_lun_destroy(lun);
	disk_close(d);
	disk_kind_spec_free(&k);
	return 0;
}
