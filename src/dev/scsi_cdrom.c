/*
 * The MMC-6 commands of a read-only CD/DVD-ROM LUN, as Linux's sr driver
 * (sr.c get_capabilities, sr_get_events, sr_vendor.c sr_cd_check) and
 * udev's cdrom_id send them: GET CONFIGURATION (MMC-6 6.6, with the
 * Profile List, Core, Morphing, Removable Medium, Random Readable and
 * CD/DVD Read features), READ TOC/PMA/ATIP formats 0 and 1 (6.38, also
 * the old SCSI-2 format field in byte 9), GET EVENT STATUS NOTIFICATION,
 * polled, media class (6.7), READ DISC INFORMATION (6.31), READ TRACK
 * INFORMATION (6.34), MECHANISM STATUS (6.11), SET CD SPEED (accepted, ignored), READ CAPACITY, and
 * the capabilities mode page 0x2A (MMC-3 5.5.10; sr reads it to learn
 * what the drive can do). The medium is always present: a single data
 * track in one closed session.
 */
#include "dev/scsi_impl.h"

#include <string.h>

/* A medium longer than 80 minutes of CD sectors is a DVD. */
#define CD_MAX_BLOCKS (80u * 60 * 75)
#define MMC_PROFILE_CD_ROM  0x0008
#define MMC_PROFILE_DVD_ROM 0x0010
#define TOC_CONTROL_DATA 0x14 /* ADR 1 (Q sub-channel position), data track */
#define TOC_LEAD_OUT 0xaa

static bool is_dvd(const struct scsi_lun *lun)
{
	return lun->blocks > CD_MAX_BLOCKS;
}

size_t scsi_cdrom_caps_page(const struct scsi_lun *lun, uint8_t *p, bool changeable)
{
	memset(p, 0, 22);
	p[0] = 0x2a;
	p[1] = 20;
	if (changeable)
		return 22;
	p[2] = 0x3b;        /* reads CD-R, CD-RW, DVD-ROM, DVD-R, DVD-RAM */
	p[3] = 0x00;        /* writes nothing */
	p[6] = 0x20 | 0x01; /* tray loading, can lock; no eject */
	if (atomic_load(&lun->prevent))
		p[6] |= 0x02;   /* locked */
	scsi_put16(p + 8, 8 * 176);   /* maximum speed, kB/s (sr divides by 176) */
	scsi_put16(p + 12, 512);      /* buffer, KiB */
	scsi_put16(p + 14, 8 * 176);  /* current speed */
	return 22;
}

/* ---- GET CONFIGURATION -------------------------------------------------- */

/* Writes feature `code` at p (header + data); 0 if not one of ours. */
static size_t feature(const struct scsi_lun *lun, uint16_t code, uint8_t *p, bool *current)
{
	bool dvd = is_dvd(lun);
	size_t len;
	memset(p, 0, 12);
	scsi_put16(p, code);
	*current = true;
	switch (code) {
	case 0x0000: /* Profile List, the current profile first */
		p[2] = 0x03; /* persistent, current */
		scsi_put16(p + 4, dvd ? MMC_PROFILE_DVD_ROM : MMC_PROFILE_CD_ROM);
		p[6] = 0x01; /* CurrentP */
		scsi_put16(p + 8, dvd ? MMC_PROFILE_CD_ROM : MMC_PROFILE_DVD_ROM);
		len = 8;
		break;
	case 0x0001: /* Core */
		p[2] = 0x2 << 2 | 0x03;
		scsi_put32(p + 4, 1); /* physical interface: SCSI */
		p[8] = 0x01;          /* DBE */
		len = 8;
		break;
	case 0x0002: /* Morphing */
		p[2] = 0x1 << 2 | 0x03;
		p[4] = 0x02; /* OCEvent: GET EVENT STATUS NOTIFICATION, polled */
		len = 4;
		break;
	case 0x0003: /* Removable Medium */
		p[2] = 0x03;
		p[4] = 0x20 | 0x01; /* tray, lock */
		len = 4;
		break;
	case 0x0010: /* Random Readable */
		p[2] = 0x01;
		scsi_put32(p + 4, SCSI_CD_BLOCK);
		scsi_put16(p + 8, dvd ? 16 : 1); /* blocking */
		len = 8;
		break;
	case 0x001e: /* CD Read */
		*current = !dvd;
		p[2] = (uint8_t)(0x2 << 2 | *current);
		len = 4;
		break;
	case 0x001f: /* DVD Read */
		*current = dvd;
		p[2] = (uint8_t)*current;
		len = 0;
		break;
	default:
		return 0;
	}
	p[3] = (uint8_t)len;
	return 4 + len;
}

static void get_configuration(struct scsi_req *r)
{
	static const uint16_t codes[] = { 0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001e, 0x001f };
	const uint8_t *c = r->cdb;
	const struct scsi_lun *lun = r->priv_.lun;
	uint8_t rt = c[1] & 3;
	uint16_t start = scsi_get16(c + 2);
	uint8_t b[128];
	if (rt == 3) {
		scsi_fail_cdb(r, 1);
		return;
	}
	memset(b, 0, 8);
	scsi_put16(b + 6, is_dvd(lun) ? MMC_PROFILE_DVD_ROM : MMC_PROFILE_CD_ROM);
	size_t len = 8;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		bool current;
		if (codes[i] < start || (rt == 2 && codes[i] != start))
			continue;
		size_t n = feature(lun, codes[i], b + len, &current);
		if (rt == 1 && !current)
			continue;
		len += n;
	}
	scsi_put32(b, (uint32_t)(len - 4));
	scsi_reply(r, b, len, scsi_get16(c + 7));
}

/* ---- READ TOC/PMA/ATIP -------------------------------------------------- */

static void toc_address(uint8_t *p, uint64_t lba, bool msf)
{
	if (!msf) {
		scsi_put32(p, (uint32_t)lba);
		return;
	}
	uint64_t f = lba + 150; /* MSF 00:02:00 is LBA 0 */
	p[0] = 0;
	p[1] = (uint8_t)(f / (60 * 75) > 255 ? 255 : f / (60 * 75));
	p[2] = (uint8_t)(f / 75 % 60);
	p[3] = (uint8_t)(f % 75);
}

static void read_toc(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	const struct scsi_lun *lun = r->priv_.lun;
	bool msf = c[1] & 0x02;
	uint8_t format = c[2] & 0x0f, track = c[6];
	uint8_t b[32];
	size_t len;
	if (format == 0)
		format = c[9] >> 6; /* SCSI-2 drives took it here (sr_cd_check) */
	memset(b, 0, sizeof(b));
	b[2] = 1; /* first track / session */
	b[3] = 1; /* last */
	switch (format) {
	case 0: /* TOC: track 1 and the lead-out */
		if (track > 1 && track != TOC_LEAD_OUT) {
			scsi_fail_cdb(r, 6);
			return;
		}
		len = 4;
		if (track <= 1) {
			b[len + 1] = TOC_CONTROL_DATA;
			b[len + 2] = 1;
			toc_address(b + len + 4, 0, msf);
			len += 8;
		}
		b[len + 1] = TOC_CONTROL_DATA;
		b[len + 2] = TOC_LEAD_OUT;
		toc_address(b + len + 4, lun->blocks, msf);
		len += 8;
		break;
	case 1: /* session info: the first track of the last session */
		b[5] = TOC_CONTROL_DATA;
		b[6] = 1;
		toc_address(b + 8, 0, msf);
		len = 12;
		break;
	default:
		scsi_fail_cdb(r, 2);
		return;
	}
	scsi_put16(b, (uint16_t)(len - 2));
	scsi_reply(r, b, len, scsi_get16(c + 7));
}

/* ---- the rest ----------------------------------------------------------- */

static void get_event_status(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	uint8_t b[8];
	size_t len = 4;
	if (!(c[1] & 0x01)) { /* asynchronous notification is not supported */
		scsi_fail_cdb(r, 1);
		return;
	}
	memset(b, 0, sizeof(b));
	b[3] = 0x10; /* supported classes: media */
	if (c[4] & 0x10) {
		b[2] = 0x04; /* media class */
		b[4] = 0x00; /* no change */
		b[5] = 0x02; /* media present, tray closed */
		len = 8;
	} else {
		b[2] = 0x80; /* NEA: none of the requested classes */
	}
	scsi_put16(b, (uint16_t)(len - 4));
	scsi_reply(r, b, len, scsi_get16(c + 7));
}

static void read_disc_information(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	uint8_t b[34];
	if (c[1] & 0x07) { /* only standard disc information */
		scsi_fail_cdb(r, 1);
		return;
	}
	memset(b, 0, sizeof(b));
	scsi_put16(b, sizeof(b) - 2);
	b[2] = 0x0e; /* last session complete, disc finalized */
	b[3] = 1;    /* first track */
	b[4] = 1;    /* sessions */
	b[5] = 1;    /* first track of the last session */
	b[6] = 1;    /* last track of the last session */
	scsi_put32(b + 16, 0xffffffffu); /* no next session to write */
	scsi_put32(b + 20, 0xffffffffu);
	scsi_reply(r, b, sizeof(b), scsi_get16(c + 7));
}

static void read_track_information(struct scsi_req *r)
{
	const uint8_t *c = r->cdb;
	const struct scsi_lun *lun = r->priv_.lun;
	uint32_t addr = scsi_get32(c + 2);
	uint8_t b[36];
	bool ok;
	switch (c[1] & 0x03) {
	case 0: /* the track holding LBA addr */
		ok = addr < lun->blocks;
		break;
	case 1: /* track number: only track 1 (not the lead-in, not an open one) */
	case 2: /* session number: its first track */
		ok = addr == 1;
		break;
	default:
		scsi_fail_cdb(r, 1);
		return;
	}
	if (!ok) {
		scsi_fail_cdb(r, 2);
		return;
	}
	memset(b, 0, sizeof(b));
	scsi_put16(b, sizeof(b) - 2);
	b[2] = 1;    /* track */
	b[3] = 1;    /* session */
	b[5] = 0x04; /* data track, recorded uninterrupted */
	b[6] = 0x01; /* data mode 1 */
	scsi_put32(b + 8, 0);                          /* start */
	scsi_put32(b + 24, (uint32_t)lun->blocks);     /* size */
	scsi_put32(b + 28, (uint32_t)lun->blocks - 1); /* last recorded (LRA_V = 0) */
	scsi_reply(r, b, sizeof(b), scsi_get16(c + 7));
}

static void mechanism_status(struct scsi_req *r)
{
	uint8_t b[8];
	memset(b, 0, sizeof(b)); /* idle, no changer, no slot tables */
	scsi_reply(r, b, sizeof(b), scsi_get16(r->cdb + 8));
}

bool scsi_cdrom_execute(struct scsi_req *r)
{
	switch (r->cdb[0]) {
	case SCSI_READ_CAPACITY_10:
	case SCSI_SERVICE_ACTION_IN_16:
		scsi_read_capacity(r);
		return true;
	case SCSI_GET_CONFIGURATION:
		get_configuration(r);
		return true;
	case SCSI_READ_TOC_PMA_ATIP:
		read_toc(r);
		return true;
	case SCSI_GET_EVENT_STATUS_NOTIFICATION:
		get_event_status(r);
		return true;
	case SCSI_READ_DISC_INFORMATION:
		read_disc_information(r);
		return true;
	case SCSI_READ_TRACK_INFORMATION:
		read_track_information(r);
		return true;
	case SCSI_MECHANISM_STATUS:
		mechanism_status(r);
		return true;
	case SCSI_SET_CD_SPEED:
		scsi_complete_good(r);
		return true;
	}
	return false;
}
