/*
 * Internal to src/dev/scsi*.c: the LUN state and the helpers the command
 * files share (sense data, copying to and from the transport's buffer,
 * big-endian fields).
 */
#ifndef HVMM_DEV_SCSI_IMPL_H
#define HVMM_DEV_SCSI_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "dev/scsi.h"

#define SCSI_DISK_BLOCK 512u
#define SCSI_CD_BLOCK 2048u
#define SCSI_SERIAL_MAX 20

/* VPD 0xB0 limits. */
#define SCSI_MAX_UNMAP_LBA_COUNT (1u << 22)    /* 2 GiB of 512-byte blocks */
#define SCSI_MAX_WRITE_SAME_LEN (1u << 22)
#define SCSI_UNMAP_GRANULARITY 8u              /* 4 KiB */

struct scsi_lun {
	struct disk *disk;
	bool dvd, read_only, can_discard;
	uint16_t lun;
	uint32_t bs;            /* block size */
	uint64_t blocks;
	uint64_t id;
	char serial[SCSI_SERIAL_MAX + 1];
	atomic_bool prevent;    /* PREVENT ALLOW MEDIUM REMOVAL */
	atomic_bool ua_pending; /* fast check; ua_asc under ua_lock */
	pthread_mutex_t ua_lock;
	uint16_t ua_asc;
};

/* Big-endian CDB and data fields. */
static inline uint16_t scsi_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t scsi_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t scsi_get64(const uint8_t *p)
{
	return (uint64_t)scsi_get32(p) << 32 | scsi_get32(p + 4);
}

static inline void scsi_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void scsi_put32(uint8_t *p, uint32_t v)
{
	scsi_put16(p, (uint16_t)(v >> 16));
	scsi_put16(p + 2, (uint16_t)v);
}

static inline void scsi_put64(uint8_t *p, uint64_t v)
{
	scsi_put32(p, (uint32_t)(v >> 32));
	scsi_put32(p + 4, (uint32_t)v);
}

/* Completes with GOOD status (bytes_done as already set). */
void scsi_complete_good(struct scsi_req *r);
/* CHECK CONDITION with fixed-format sense. */
void scsi_fail(struct scsi_req *r, uint8_t key, uint16_t asc);
/* ILLEGAL REQUEST, INVALID FIELD IN CDB with the field pointer at byte. */
void scsi_fail_cdb(struct scsi_req *r, unsigned byte);
/* ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST at byte. */
void scsi_fail_param(struct scsi_req *r, unsigned byte);
/* Builds sense in fixed (desc false) or descriptor format; returns length. */
size_t scsi_build_sense(uint8_t *out, bool desc, uint8_t key, uint16_t asc);

/*
 * Data-in: copies min(len, alloc, buffer) bytes of buf to the transport's
 * buffer, sets bytes_done and completes GOOD.
 */
void scsi_reply(struct scsi_req *r, const void *buf, size_t len, uint32_t alloc);
/* Data-out: copies up to len bytes from the buffer; returns the count. */
size_t scsi_data_out(struct scsi_req *r, void *buf, size_t len);

/* Starts the disk side of a command (scsi.c). */
void scsi_start_rw(struct scsi_req *r, bool write, uint64_t lba, uint64_t n, bool fua);
void scsi_start_flush(struct scsi_req *r);
/* WRITE SAME over [lba, lba+n): discard, zeroes, or the pattern in scratch. */
void scsi_start_write_same(struct scsi_req *r, uint64_t lba, uint64_t n, bool unmap,
			   bool zero);
/* Runs the unmap_cnt descriptors in scratch.unmap. */
void scsi_start_unmap(struct scsi_req *r);

/* 0 if [lba, lba+n) is on the medium, else fails r and returns -1. */
int scsi_check_range(struct scsi_req *r, uint64_t lba, uint64_t n);

/* Per-kind command sets: true if the opcode was theirs (r completed or started). */
bool scsi_disk_execute(struct scsi_req *r);
bool scsi_cdrom_execute(struct scsi_req *r);
/* INQUIRY and MODE SENSE/SELECT, shared by both kinds (scsi_disk.c). */
void scsi_inquiry(struct scsi_req *r);
void scsi_mode_sense(struct scsi_req *r);
void scsi_mode_select(struct scsi_req *r);
void scsi_read_capacity(struct scsi_req *r);
/* MODE SENSE page 0x2A (scsi_cdrom.c): appends it to p, returns length. */
size_t scsi_cdrom_caps_page(const struct scsi_lun *lun, uint8_t *p, bool changeable);

#endif
