/*
 * SCSI block commands (SBC-3) and the data both LUN kinds describe
 * themselves with: INQUIRY (SPC-4 6.6) with the VPD pages 0x00, 0x80,
 * 0x83 (SPC-4 7.8), 0xB0 block limits, 0xB1 block device characteristics,
 * 0xB2 logical block provisioning (SBC-3 6.6); READ CAPACITY 10/16 (SBC-3
 * 5.15, 5.16); MODE SENSE/SELECT 6/10 (SPC-4 6.9-6.12) with the caching
 * (SBC-3 6.4.5) and control (SPC-4 7.5.8) pages; VERIFY, SYNCHRONIZE CACHE,
 * WRITE SAME and UNMAP (SBC-3 5.22-5.45).
 */
#include "dev/scsi_impl.h"

#include <string.h>

#include "core/log.h"

#define MS_PAGE_CACHING   0x08
#define MS_PAGE_CONTROL   0x0a
#define MS_PAGE_CD_CAPS   0x2a
#define MS_PAGE_ALL       0x3f
#define MS_PC_CHANGEABLE  1
#define MS_PC_SAVED       3

/* Microsoft's IEEE OUI, as Hyper-V's virtual disks use in their NAA names. */
#define SCSI_NAA_OUI 0x002248u

/* ---- INQUIRY ------------------------------------------------------------ */

static size_t vpd_page(const struct scsi_lun *lun, uint8_t page, uint8_t *b)
{
	size_t len;
	b[0] = lun->dvd ? 0x05 : 0x00;
	b[1] = page;
	switch (page) {
	case 0x00: {
		static const uint8_t disk[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };
		len = lun->dvd ? 3 : sizeof(disk);
		memcpy(b + 4, disk, len);
		break;
	}
	case 0x80:
		len = strlen(lun->serial);
		memcpy(b + 4, lun->serial, len);
		break;
	case 0x83: {
		uint8_t *d = b + 4;
		/* NAA 6 (IEEE registered extended): OUI, 36 bits and 64 bits of id. */
		uint64_t vsid = (lun->id * 0x9e3779b97f4a7c15ull) >> 28;
		d[0] = 0x01; /* binary */
		d[1] = 0x03; /* LU association, NAA */
		d[3] = 16;
		scsi_put64(d + 4, 6ull << 60 | (uint64_t)SCSI_NAA_OUI << 36 | (vsid & 0xfffffffffull));
		scsi_put64(d + 12, lun->id);
		d += 20;
		/* T10 vendor identification: vendor, then the serial number. */
		size_t sl = strlen(lun->serial);
		d[0] = 0x02; /* ASCII */
		d[1] = 0x01;
		d[3] = (uint8_t)(8 + sl);
		memcpy(d + 4, "Msft    ", 8);
		memcpy(d + 12, lun->serial, sl);
		len = 20 + 4 + 8 + sl;
		break;
	}
	case 0xb0:
		len = 0x3c;
		memset(b + 4, 0, len);
		b[4] = 0x01;                         /* WSNZ: WRITE SAME needs a length */
		scsi_put16(b + 6, SCSI_UNMAP_GRANULARITY); /* optimal granularity */
		scsi_put32(b + 8, SCSI_MAX_XFER_BYTES / SCSI_DISK_BLOCK);
		if (lun->can_discard) {
			scsi_put32(b + 20, SCSI_MAX_UNMAP_LBA_COUNT);
			scsi_put32(b + 24, SCSI_UNMAP_MAX_DESC);
			scsi_put32(b + 28, SCSI_UNMAP_GRANULARITY);
			scsi_put32(b + 32, 0x80000000u); /* UGAVALID, alignment 0 */
		}
		scsi_put64(b + 36, SCSI_MAX_WRITE_SAME_LEN);
		break;
	case 0xb1:
		len = 0x3c;
		memset(b + 4, 0, len);
		scsi_put16(b + 4, 1); /* non-rotating medium */
		break;
	case 0xb2:
		len = 4;
		memset(b + 4, 0, len);
		if (lun->can_discard) {
			b[5] = 0x80 | 0x40 | 0x20 | 0x04; /* LBPU LBPWS LBPWS10 LBPRZ */
			b[6] = 0x02;                      /* thin provisioned */
		}
		break;
	default:
		return 0;
	}
	scsi_put16(b + 2, (uint16_t)len);
	return 4 + len;
}

void scsi_inquiry(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	const struct scsi_lun *lun = r->priv_.lun;
	uint32_t alloc = scsi_get16(c + 3);
	uint8_t b[256];
	if (c[1] & 0x02) { /* CmdDt (obsolete) */
		scsi_fail_cdb(r, 1);
		return;
	}
	if (c[1] & 0x01) {
		size_t len = 0;
		if (!lun->dvd || c[2] < 0xb0)
			len = vpd_page(lun, c[2], b);
		if (!len) {
			scsi_fail_cdb(r, 2);
			return;
		}
		scsi_reply(r, b, len, alloc);
		return;
	}
	if (c[2]) {
		scsi_fail_cdb(r, 2);
		return;
	}
	memset(b, 0, 36);
	b[0] = lun->dvd ? 0x05 : 0x00; /* CD/DVD or direct access, connected */
	b[1] = lun->dvd ? 0x80 : 0x00; /* RMB */
	b[2] = lun->dvd ? 0x05 : 0x06; /* SPC-3 / SPC-4 */
	b[3] = 0x12;                   /* HISUP, response data format 2 */
	b[4] = 36 - 5;
	b[7] = 0x02;                   /* CMDQUE */
	/* "Msft" turns on WRITE SAME in Linux's storvsc (storvsc_device_configure). */
	memcpy(b + 8, "Msft    ", 8);
	memcpy(b + 16, lun->dvd ? "Virtual DVD-ROM " : "Virtual Disk    ", 16);
	memcpy(b + 32, "1.0 ", 4);
	scsi_reply(r, b, 36, alloc);
}

/* ---- READ CAPACITY ------------------------------------------------------ */

void scsi_read_capacity(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	const struct scsi_lun *lun = r->priv_.lun;
	uint64_t last = lun->blocks - 1;
	uint8_t b[32];
	memset(b, 0, sizeof(b));
	if (c[0] == SCSI_READ_CAPACITY_10) {
		if (!(c[8] & 1) && scsi_get32(c + 2)) { /* an LBA without PMI */
			scsi_fail_cdb(r, 2);
			return;
		}
		/* SBC-3 5.15.2: all ones says "use READ CAPACITY (16)". */
		scsi_put32(b, last > 0xffffffffu ? 0xffffffffu : (uint32_t)last);
		scsi_put32(b + 4, lun->bs);
		scsi_reply(r, b, 8, 8);
		return;
	}
	if ((c[1] & 0x1f) != SCSI_SAI_READ_CAPACITY_16) {
		scsi_fail_cdb(r, 1);
		return;
	}
	scsi_put64(b, last);
	scsi_put32(b + 8, lun->bs);
	b[13] = lun->dvd ? 0 : 3; /* 4 KiB physical blocks */
	if (lun->can_discard)
		b[14] = 0x80 | 0x40; /* LBPME, LBPRZ */
	scsi_reply(r, b, 32, scsi_get32(c + 10));
}

/* ---- MODE SENSE / MODE SELECT ------------------------------------------- */

/* Appends page `page` for page control pc to p; 0 if the LUN has none. */
static size_t mode_page(const struct scsi_lun *lun, uint8_t page, uint8_t pc, uint8_t *p)
{
	bool changeable = pc == MS_PC_CHANGEABLE;
	if (lun->dvd)
		return page == MS_PAGE_CD_CAPS ? scsi_cdrom_caps_page(lun, p, changeable) : 0;
	switch (page) {
	case MS_PAGE_CACHING:
		memset(p, 0, 20);
		p[0] = MS_PAGE_CACHING;
		p[1] = 18;
		if (!changeable)
			p[2] = 0x04; /* WCE: writes are cached until SYNCHRONIZE CACHE */
		return 20;
	case MS_PAGE_CONTROL:
		memset(p, 0, 12);
		p[0] = MS_PAGE_CONTROL;
		p[1] = 10;
		if (!changeable)
			p[3] = 0x10; /* unrestricted reordering */
		return 12;
	}
	return 0;
}

void scsi_mode_sense(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	const struct scsi_lun *lun = r->priv_.lun;
	bool ten = c[0] == SCSI_MODE_SENSE_10;
	bool dbd = c[1] & 0x08, llbaa = ten && (c[1] & 0x10);
	uint8_t pc = c[2] >> 6, page = c[2] & 0x3f, sub = c[3];
	uint32_t alloc = ten ? scsi_get16(c + 7) : c[4];
	uint8_t b[128];
	size_t len = ten ? 8 : 4;
	if (pc == MS_PC_SAVED) {
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
		return;
	}
	if (sub && !(page == MS_PAGE_ALL && sub == 0xff)) {
		scsi_fail_cdb(r, 3);
		return;
	}
	memset(b, 0, sizeof(b));
	if (!lun->dvd && !dbd) {
		/* Block descriptor (SBC-3 6.4.2): short, or long with LLBAA. */
		if (llbaa) {
			scsi_put64(b + len, lun->blocks);
			scsi_put32(b + len + 12, lun->bs);
			b[4] = 0x01; /* LONGLBA */
			b[7] = 16;
			len += 16;
		} else {
			uint64_t n = lun->blocks > 0xffffffffu ? 0xffffffffu : lun->blocks;
			scsi_put32(b + len, (uint32_t)n);
			scsi_put32(b + len + 4, lun->bs); /* byte 4 is reserved */
			if (ten)
				b[7] = 8;
			else
				b[3] = 8;
			len += 8;
		}
	}
	if (page == MS_PAGE_ALL) {
		static const uint8_t all[] = { MS_PAGE_CACHING, MS_PAGE_CONTROL, MS_PAGE_CD_CAPS };
		for (size_t i = 0; i < sizeof(all); i++)
			len += mode_page(lun, all[i], pc, b + len);
	} else {
		size_t n = mode_page(lun, page, pc, b + len);
		if (!n) {
			scsi_fail_cdb(r, 2);
			return;
		}
		len += n;
	}
	/* Device-specific parameter: WP, and DPOFUA for a disk (SBC-3 6.4.1). */
	uint8_t dsp = (lun->read_only ? 0x80 : 0) | (lun->dvd ? 0 : 0x10);
	if (ten) {
		scsi_put16(b, (uint16_t)(len - 2));
		b[3] = dsp;
	} else {
		b[0] = (uint8_t)(len - 1);
		b[2] = dsp;
	}
	scsi_reply(r, b, len, alloc);
}

void scsi_mode_select(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	const struct scsi_lun *lun = r->priv_.lun;
	bool ten = c[0] == SCSI_MODE_SELECT_10;
	uint32_t plen = ten ? scsi_get16(c + 7) : c[4];
	size_t hdr = ten ? 8 : 4;
	uint8_t b[256], cur[32];
	if (c[1] & 0x01) { /* SP: nothing is saved */
		scsi_fail_cdb(r, 1);
		return;
	}
	if (plen == 0) {
		scsi_complete_good(r);
		return;
	}
	if (!(c[1] & 0x10)) { /* PF = 0: vendor-specific pages */
		scsi_fail_cdb(r, 1);
		return;
	}
	if (plen > sizeof(b) || plen < hdr || scsi_data_out(r, b, plen) < plen) {
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return;
	}
	size_t bdl = ten ? scsi_get16(b + 6) : b[3];
	if (bdl > plen - hdr) {
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return;
	}
	/* A block descriptor may only restate the block size. */
	if (bdl) {
		bool lng = ten && (b[4] & 1);
		uint32_t blen = lng ? scsi_get32(b + hdr + 12) : scsi_get32(b + hdr + 4) & 0xffffff;
		if (bdl != (lng ? 16u : 8u) || blen != lun->bs) {
			scsi_fail_param(r, (unsigned)hdr);
			return;
		}
	}
	/* Pages are accepted only unchanged: nothing here is settable. */
	for (size_t pos = hdr + bdl; pos < plen;) {
		if (plen - pos < 2) {
			scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
			return;
		}
		uint8_t code = b[pos] & 0x3f, n = b[pos + 1];
		if (n > plen - pos - 2) {
			scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
			return;
		}
		size_t clen = (b[pos] & 0x40) || code == MS_PAGE_ALL ? 0 :
			      mode_page(lun, code, 0, cur);
		if (!clen) {
			log_guest_debug("scsi: MODE SELECT of page 0x%02x", b[pos]);
			scsi_fail_param(r, (unsigned)pos);
			return;
		}
		if (n != cur[1]) {
			scsi_fail_param(r, (unsigned)pos + 1);
			return;
		}
		for (size_t i = 2; i < clen; i++) {
			if (b[pos + i] != cur[i]) {
				scsi_fail_param(r, (unsigned)(pos + i));
				return;
			}
		}
		pos += clen;
	}
	scsi_complete_good(r);
}

/* ---- disk I/O commands -------------------------------------------------- */

/* LBA and block count of the 10- and 16-byte forms. */
static void lba_count(const uint8_t *c, uint64_t *lba, uint32_t *n, unsigned *lenpos)
{
	bool sixteen = c[0] >= 0x80;
	*lba = sixteen ? scsi_get64(c + 2) : scsi_get32(c + 2);
	*n = sixteen ? scsi_get32(c + 10) : scsi_get16(c + 7);
	*lenpos = sixteen ? 10 : 7;
}

static void verify(struct scsi_req *r)
{
	uint64_t lba;
	uint32_t n;
	unsigned lenpos;
	if (r->cdb[1] & 0xe6) { /* VRPROTECT, BYTCHK: no data to compare */
		scsi_fail_cdb(r, 1);
		return;
	}
	lba_count(r->cdb, &lba, &n, &lenpos);
	if (scsi_check_range(r, lba, n) == 0)
		scsi_complete_good(r); /* the medium has no errors to find */
}

static void synchronize_cache(struct scsi_req *r)
{
	uint64_t lba;
	uint32_t n;
	unsigned lenpos;
	lba_count(r->cdb, &lba, &n, &lenpos);
	/* A zero count means "to the last block". IMMED is ignored: the
	 * command completes once everything is on stable storage. */
	if (scsi_check_range(r, lba, n) == 0)
		scsi_start_flush(r);
}

static void write_same(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *lun = r->priv_.lun;
	uint64_t lba;
	uint32_t n;
	unsigned lenpos;
	bool ndob = c[0] == SCSI_WRITE_SAME_16 && (c[1] & 0x01);
	if (c[1] & 0xf0 || (c[0] == SCSI_WRITE_SAME_10 && c[1] & 0x01)) { /* WRPROTECT, ANCHOR */
		scsi_fail_cdb(r, 1);
		return;
	}
	lba_count(c, &lba, &n, &lenpos);
	if (n == 0 || n > SCSI_MAX_WRITE_SAME_LEN) {
		scsi_fail_cdb(r, lenpos);
		return;
	}
	if (scsi_check_range(r, lba, n))
		return;
	if (lun->read_only) {
		scsi_fail(r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	uint8_t *blk = r->priv_.scratch.block;
	bool zero = true;
	if (!ndob) {
		if (scsi_data_out(r, blk, SCSI_DISK_BLOCK) < SCSI_DISK_BLOCK) {
			log_guest("scsi: WRITE SAME without a block of data");
			scsi_fail_cdb(r, lenpos);
			return;
		}
		for (unsigned i = 0; i < SCSI_DISK_BLOCK && zero; i++)
			zero = blk[i] == 0;
	}
	scsi_start_write_same(r, lba, n, c[1] & 0x08, zero);
}

static void unmap(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	struct scsi_lun *lun = r->priv_.lun;
	struct scsi_req_priv *p = &r->priv_;
	uint8_t b[8 + 16 * SCSI_UNMAP_MAX_DESC];
	if (lun->read_only) {
		scsi_fail(r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	if (!lun->can_discard) {
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_COMMAND_OPERATION_CODE);
		return;
	}
	if (c[1] & 0x01) { /* ANCHOR: not supported (ANC_SUP = 0) */
		scsi_fail_cdb(r, 1);
		return;
	}
	uint32_t plen = scsi_get16(c + 7);
	if (plen == 0) {
		scsi_complete_good(r);
		return;
	}
	uint32_t want = plen < sizeof(b) ? plen : sizeof(b);
	if (plen < 8 || scsi_data_out(r, b, want) < want) {
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return;
	}
	uint32_t bdl = scsi_get16(b + 2);
	if (bdl > plen - 8) {
		scsi_fail(r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return;
	}
	uint32_t count = bdl / 16; /* a partial last descriptor is ignored */
	if (count > SCSI_UNMAP_MAX_DESC) {
		scsi_fail_param(r, 2);
		return;
	}
	uint64_t total = 0;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *d = b + 8 + 16 * i;
		uint64_t lba = scsi_get64(d);
		uint32_t n = scsi_get32(d + 8);
		if (scsi_check_range(r, lba, n))
			return;
		total += n;
		if (total > SCSI_MAX_UNMAP_LBA_COUNT) {
			scsi_fail_param(r, 8 + 16 * i + 8);
			return;
		}
		p->scratch.unmap[i].lba = lba;
		p->scratch.unmap[i].n = n;
	}
	p->unmap_cnt = count;
	scsi_start_unmap(r);
}

bool scsi_disk_execute(struct scsi_req *r)
{
	switch (r->cdb[0]) {
	case SCSI_READ_CAPACITY_10:
	case SCSI_SERVICE_ACTION_IN_16:
		scsi_read_capacity(r);
		return true;
	case SCSI_VERIFY_10:
	case SCSI_VERIFY_16:
		verify(r);
		return true;
	case SCSI_SYNCHRONIZE_CACHE_10:
	case SCSI_SYNCHRONIZE_CACHE_16:
		synchronize_cache(r);
		return true;
	case SCSI_WRITE_SAME_10:
	case SCSI_WRITE_SAME_16:
		write_same(r);
		return true;
	case SCSI_UNMAP:
		unmap(r);
		return true;
	}
	return false;
}
