/*
 * storvsp (see storvsp.h): the vstor protocol over a VMBus channel per
 * controller and its sub-channels (CREATE_SUB_CHANNELS; each a queue over
 * the same LUNs), SCSI LUNs behind it. Portable: where and when a queue's work
 * runs is the host's business (storvsp_host.c: a thread per queue).
 * Packet layouts follow Linux's storvsc_drv.c: vstor_packet (64 bytes:
 * operation, flags, status, then a 52-byte union) and vmscsi_request
 * (length, srb/scsi status, path/target/lun, cdb length, sense length,
 * direction, transfer length, 20-byte CDB/sense union, win8 extension).
 */
#include "dev/storvsp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/disk.h"
#include "core/log.h"
#include "dev/scsi.h"
#include "vmbus/vmbus_channel.h"

/* vstor operations */
#define VSTOR_OPERATION_COMPLETE_IO 1
#define VSTOR_OPERATION_REMOVE_DEVICE 2
#define VSTOR_OPERATION_EXECUTE_SRB 3
#define VSTOR_OPERATION_RESET_LUN 4
#define VSTOR_OPERATION_RESET_ADAPTER 5
#define VSTOR_OPERATION_RESET_BUS 6
#define VSTOR_OPERATION_BEGIN_INITIALIZATION 7
#define VSTOR_OPERATION_END_INITIALIZATION 8
#define VSTOR_OPERATION_QUERY_PROTOCOL_VERSION 9
#define VSTOR_OPERATION_QUERY_PROPERTIES 10
#define VSTOR_OPERATION_ENUMERATE_BUS 11
#define VSTOR_OPERATION_FCHBA_DATA 12
#define VSTOR_OPERATION_CREATE_SUB_CHANNELS 13

#define VSTOR_PACKET 64u       /* win8+ size */
#define VSTOR_PACKET_WIN7 48u  /* without the win8 extension */
#define VSTOR_STATUS_OK 0
#define VSTOR_STATUS_FAIL 0xC0000001u                 /* STATUS_UNSUCCESSFUL */
#define VSTOR_STATUS_INVALID_PARAMETER 0xC000000Du    /* STATUS_INVALID_PARAMETER */
#define VSTOR_STATUS_INVALID_DEVICE_STATE 0xC0000184u /* STATUS_INVALID_DEVICE_STATE */
#define STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL 0x1u  /* vmstorage_channel_properties.flags */
#define VSTOR_PROTO_VERSION_WIN8 0x0501              /* first with sub-channels */

/* vmscsi_request at vstor_packet + 12 */
#define SRB 12
#define SRB_LENGTH 0
#define SRB_SRB_STATUS 2
#define SRB_SCSI_STATUS 3
#define SRB_PATH_ID 5
#define SRB_TARGET_ID 6
#define SRB_LUN 7
#define SRB_CDB_LENGTH 8
#define SRB_SENSE_LENGTH 9
#define SRB_DATA_IN 10
#define SRB_TRANSFER_LENGTH 12
#define SRB_CDB 16
#define SRB_CDB_SIZE 16
#define SRB_SENSE_SIZE 20

#define SRB_STATUS_SUCCESS 0x01
#define SRB_STATUS_ERROR 0x04
#define SRB_STATUS_INVALID_REQUEST 0x06
#define SRB_STATUS_INVALID_LUN 0x20
#define SRB_STATUS_AUTOSENSE_VALID 0x80

#define WRITE_TYPE 0
#define READ_TYPE 1

#define STORVSP_MAX_TRANSFER (512u * 1024)
#define STORVSP_DESC 16u /* vmpacket_descriptor */
#define STORVSP_POOL 128u
#define STORVSP_PKT_MAX 8192u
#define STORVSP_MAX_PAGES (STORVSP_MAX_TRANSFER / 4096 + 1)
#define STORVSP_CTL_BACKLOG 8u /* control replies waiting for ring room */

/* Protocol versions Linux asks for, newest first (major << 8 | minor). */
static const uint16_t versions[] = { 0x0602, 0x0600, 0x0501 };

struct storvsp_queue;

struct svreq {
	struct scsi_req sr;     /* first: the done callback casts back */
	struct storvsp_queue *q;
	uint64_t trans_id;
	uint8_t pkt[VSTOR_PACKET]; /* the request's vstor_packet, reused for the reply */
	bool busy;
	struct iovec iov[STORVSP_MAX_PAGES];
	struct svreq *next_done;
};

struct storvsp_queue {
	struct storvsp *sv;
	struct vmbus_channel *ch;
	unsigned index;                /* 0: the primary channel; 1..: sub-channels */
	bool running;
	void *host_data;               /* the host's, per queue */
	struct disk_queue *dq[STORVSP_MAX_LUNS];
	struct svreq *pool;
	unsigned free;
	struct svreq *done_head, **done_tail; /* completions the ring had no room for */
	struct {                       /* control replies the ring had no room for */
		uint64_t trans_id;
		uint8_t pkt[VSTOR_PACKET];
	} ctl[STORVSP_CTL_BACKLOG];
	unsigned nctl;
	uint32_t vmscsi_delta;         /* 16 before win8 */
	/* Primary only, per open: the init handshake's state for CREATE_SUB_CHANNELS. */
	uint16_t version;              /* negotiated vstor version, 0 before */
	bool props_queried;            /* QUERY_PROPERTIES answered */
	bool subs_requested;           /* CREATE_SUB_CHANNELS accepted */
	uint8_t buf[STORVSP_PKT_MAX];
};

struct storvsp {
	struct storvsp_config cfg;
	struct storvsp_lun_config luns[STORVSP_MAX_LUNS];
	struct scsi_lun *lun[STORVSP_MAX_LUNS]; /* by LUN number */
	uint16_t lun_list[STORVSP_MAX_LUNS];
	unsigned nluns;
	struct storvsp_queue q;                  /* the primary channel */
	struct storvsp_queue *subq;              /* cfg.sub_channels, by index - 1 */
	/*
	 * The primary's negotiated version, as its worker saw it when it asked
	 * for sub-channels (before the request: the server's atomics order it
	 * before the sub-channels' open callbacks, which read it).
	 */
	uint16_t sub_version;
	uint32_t sub_vmscsi_delta;
};

static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t g32(const uint8_t *p) { return g16(p) | (uint32_t)g16(p + 2) << 16; }
static uint64_t g64(const uint8_t *p) { return g32(p) | (uint64_t)g32(p + 4) << 32; }
static void p16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void p32(uint8_t *p, uint32_t v) { p16(p, (uint16_t)v); p16(p + 2, (uint16_t)(v >> 16)); }

/* ---- sending ------------------------------------------------------------ */

static bool send_completion(struct storvsp_queue *q, uint64_t trans_id, const uint8_t *pkt)
{
	int ret = vmbus_channel_send(q->ch, VMBUS_PACKET_COMP, 0, trans_id, NULL, 0, pkt,
				     VSTOR_PACKET - q->vmscsi_delta);
	if (ret == -EAGAIN)
		return false;
	if (ret < 0)
		log_guest("storvsp: completion lost: %s", strerror(-ret));
	return true;
}

static void reply_simple(struct storvsp_queue *q, uint64_t trans_id, uint32_t status,
			 const uint8_t *payload, size_t len)
{
	uint8_t pkt[VSTOR_PACKET] = { 0 };
	p32(pkt, VSTOR_OPERATION_COMPLETE_IO);
	p32(pkt + 8, status);
	if (payload)
		memcpy(pkt + 12, payload, len < VSTOR_PACKET - 12 ? len : VSTOR_PACKET - 12);
	if (!q->nctl && send_completion(q, trans_id, pkt))
		return;
	/* Ring full: the reply waits (in order) until the guest reads. */
	if (q->nctl == STORVSP_CTL_BACKLOG) {
		log_guest("storvsp: control reply dropped (the guest does not read its ring)");
		return;
	}
	q->ctl[q->nctl].trans_id = trans_id;
	memcpy(q->ctl[q->nctl].pkt, pkt, sizeof(pkt));
	q->nctl++;
}

/* Finishes a request: fills the vmscsi_request part of its packet and sends. */
static void req_finish(struct svreq *r, uint8_t srb_status)
{
	struct storvsp_queue *q = r->q;
	uint8_t *pkt = r->pkt;
	uint8_t *srb = pkt + SRB;
	p32(pkt, VSTOR_OPERATION_COMPLETE_IO);
	p32(pkt + 4, 0);
	p32(pkt + 8, VSTOR_STATUS_OK);
	srb[SRB_SCSI_STATUS] = r->sr.status;
	memset(srb + SRB_CDB, 0, SRB_SENSE_SIZE);
	if (srb_status == SRB_STATUS_SUCCESS && r->sr.status == SAM_STAT_CHECK_CONDITION) {
		unsigned n = r->sr.sense_len < SRB_SENSE_SIZE ? r->sr.sense_len : SRB_SENSE_SIZE;
		memcpy(srb + SRB_CDB, r->sr.sense, n);
		srb[SRB_SENSE_LENGTH] = (uint8_t)n;
		srb_status = SRB_STATUS_ERROR | (n ? SRB_STATUS_AUTOSENSE_VALID : 0);
	} else if (srb_status == SRB_STATUS_SUCCESS && r->sr.status != SAM_STAT_GOOD) {
		srb_status = SRB_STATUS_ERROR;
		srb[SRB_SENSE_LENGTH] = 0;
	} else {
		srb[SRB_SENSE_LENGTH] = 0;
	}
	srb[SRB_SRB_STATUS] = srb_status;
	p32(srb + SRB_TRANSFER_LENGTH, srb_status == SRB_STATUS_SUCCESS ||
	    (srb_status & ~SRB_STATUS_AUTOSENSE_VALID) == SRB_STATUS_ERROR ? r->sr.bytes_done : 0);
	if (!send_completion(q, r->trans_id, pkt)) {
		/* Ring full: keep it; the guest signals when it has read. */
		r->next_done = NULL;
		*q->done_tail = r;
		q->done_tail = &r->next_done;
		return;
	}
	r->busy = false;
	q->free++;
}

static void flush_backlog(struct storvsp_queue *q)
{
	unsigned sent = 0;
	while (sent < q->nctl && send_completion(q, q->ctl[sent].trans_id, q->ctl[sent].pkt))
		sent++;
	if (sent) {
		memmove(q->ctl, q->ctl + sent, (q->nctl - sent) * sizeof(q->ctl[0]));
		q->nctl -= sent;
	}
	if (q->nctl)
		return;
	while (q->done_head) {
		struct svreq *r = q->done_head;
		if (!send_completion(q, r->trans_id, r->pkt))
			return;
		q->done_head = r->next_done;
		if (!q->done_head)
			q->done_tail = &q->done_head;
		r->busy = false;
		q->free++;
	}
}

static void scsi_done(struct scsi_req *sr)
{
	req_finish((struct svreq *)sr, SRB_STATUS_SUCCESS);
}

/* ---- requests ------------------------------------------------------------ */

static struct svreq *req_get(struct storvsp_queue *q)
{
	for (unsigned i = 0; i < STORVSP_POOL; i++) {
		if (!q->pool[i].busy) {
			q->pool[i].busy = true;
			q->free--;
			return &q->pool[i];
		}
	}
	return NULL;
}

/* Maps a GPA-direct range (one range: len, offset, PFNs) to iovecs. */
static int map_range(struct storvsp_queue *q, struct svreq *r, const uint8_t *p, uint32_t avail,
		     uint32_t *total)
{
	if (avail < 16 || g32(p + 4) != 1)  /* reserved, rangecount */
		return -EINVAL;
	uint32_t len = g32(p + 8), off = g32(p + 12);
	if (off >= 4096 || len == 0 || len > STORVSP_MAX_TRANSFER)
		return -EINVAL;
	uint32_t npages = (off + len + 4095) / 4096;
	if (npages > STORVSP_MAX_PAGES || 16 + 8ull * npages > avail)
		return -EINVAL;
	uint32_t left = len;
	for (uint32_t i = 0; i < npages; i++) {
		uint64_t pfn = g64(p + 16 + 8 * i);
		uint32_t in = i == 0 ? off : 0;
		uint32_t n = 4096 - in < left ? 4096 - in : left;
		if (pfn >> 52)
			return -EFAULT;
		void *h = q->sv->cfg.map(q->sv->cfg.map_opaque, (pfn << 12) + in, n);
		if (!h)
			return -EFAULT;
		r->iov[i] = (struct iovec){ h, n };
		left -= n;
	}
	*total = npages;
	return 0;
}

static void no_lun_inquiry(struct svreq *r)
{
	uint8_t inq[36] = { 0x7f, 0, 0x06, 0x02, 31 };
	uint32_t alloc = (uint32_t)r->sr.cdb[3] << 8 | r->sr.cdb[4];
	uint32_t n = sizeof(inq) < alloc ? sizeof(inq) : alloc;
	if (r->sr.dir != SCSI_DIR_FROM_DEV || (r->sr.cdb[1] & 1)) /* EVPD: nothing */
		n = 0;
	if (n > r->sr.data_len)
		n = r->sr.data_len;
	uint32_t done = 0;
	for (unsigned i = 0; i < r->sr.iovcnt && done < n; i++) {
		uint32_t c = r->sr.iov[i].iov_len < n - done ? (uint32_t)r->sr.iov[i].iov_len : n - done;
		memcpy(r->sr.iov[i].iov_base, inq + done, c);
		done += c;
	}
	r->sr.status = SAM_STAT_GOOD;
	r->sr.bytes_done = done;
	req_finish(r, SRB_STATUS_SUCCESS);
}

static void do_srb(struct storvsp_queue *q, const struct vmbus_packet_info *info,
		   const uint8_t *data, uint32_t dlen, struct svreq *r)
{
	const uint8_t *srb = r->pkt + SRB;
	uint8_t cdb_len = srb[SRB_CDB_LENGTH];
	uint8_t lun = srb[SRB_LUN];
	memset(&r->sr, 0, sizeof(r->sr));
	r->sr.done = scsi_done;
	unsigned niov = 0;
	if (info->type == VMBUS_PACKET_DATA_USING_GPA_DIRECT) {
		uint32_t avail = info->data_offset - STORVSP_DESC;
		if (map_range(q, r, data, avail, &niov) < 0) {
			log_guest("storvsp: bad GPA range in SRB");
			req_finish(r, SRB_STATUS_INVALID_REQUEST);
			return;
		}
	}
	(void)dlen;
	if (cdb_len == 0 || cdb_len > SRB_CDB_SIZE) {
		req_finish(r, SRB_STATUS_INVALID_REQUEST);
		return;
	}
	memcpy(r->sr.cdb, srb + SRB_CDB, cdb_len);
	r->sr.cdb_len = cdb_len;
	r->sr.iov = r->iov;
	r->sr.iovcnt = niov;
	r->sr.data_len = niov ? g32(srb + SRB_TRANSFER_LENGTH) : 0;
	r->sr.dir = !niov ? SCSI_DIR_NONE :
		    srb[SRB_DATA_IN] == READ_TYPE ? SCSI_DIR_FROM_DEV :
		    srb[SRB_DATA_IN] == WRITE_TYPE ? SCSI_DIR_TO_DEV : SCSI_DIR_NONE;
	bool target0 = srb[SRB_PATH_ID] == 0 && srb[SRB_TARGET_ID] == 0;
	if (r->sr.cdb[0] == SCSI_REPORT_LUNS) {
		/* Only target 0 has LUNs; other targets report an empty list. */
		scsi_report_luns(&r->sr, q->sv->lun_list, target0 ? q->sv->nluns : 0);
		return;
	}
	struct scsi_lun *l = target0 && lun < STORVSP_MAX_LUNS ? q->sv->lun[lun] : NULL;
	if (!l && r->sr.cdb[0] == SCSI_INQUIRY) {
		/*
		 * storvsc turns any INQUIRY completion into success, so a missing
		 * LUN must answer as SPC says: peripheral qualifier 3, type 0x1F.
		 */
		no_lun_inquiry(r);
		return;
	}
	if (!l) {
		req_finish(r, SRB_STATUS_INVALID_LUN);
		return;
	}
	scsi_lun_execute(l, q->dq[lun], &r->sr);
}

/*
 * CREATE_SUB_CHANNELS {u16 count}: on the primary, after QUERY_PROPERTIES,
 * once per open; 1..max_channel_cnt. The statuses are OpenVMM's (and
 * Windows'): a bad count is STATUS_INVALID_PARAMETER, a request at the wrong
 * time or place STATUS_INVALID_DEVICE_STATE. The offers follow from the
 * VMBus server (vmbus_channel_request_subchannels), possibly after the reply.
 */
static uint32_t create_sub_channels(struct storvsp_queue *q, uint16_t count)
{
	struct storvsp *sv = q->sv;
	unsigned max = q->version >= VSTOR_PROTO_VERSION_WIN8 ? sv->cfg.sub_channels : 0;
	if (q->index != 0 || !q->props_queried || q->subs_requested) {
		log_guest("storvsp: CREATE_SUB_CHANNELS refused (%s)",
			  q->index ? "on a sub-channel" :
			  !q->props_queried ? "before QUERY_PROPERTIES" : "asked twice");
		return VSTOR_STATUS_INVALID_DEVICE_STATE;
	}
	if (count == 0 || count > max) {
		log_guest("storvsp: CREATE_SUB_CHANNELS for %u sub-channels refused (max %u)",
			  count, max);
		return VSTOR_STATUS_INVALID_PARAMETER;
	}
	sv->sub_version = q->version;
	sv->sub_vmscsi_delta = q->vmscsi_delta;
	int ret = vmbus_channel_request_subchannels(q->ch, count);
	if (ret < 0) {
		log_guest("storvsp: CREATE_SUB_CHANNELS: %s", strerror(-ret));
		return VSTOR_STATUS_INVALID_DEVICE_STATE;
	}
	q->subs_requested = true;
	return VSTOR_STATUS_OK;
}

static void handle_packet(struct storvsp_queue *q, const struct vmbus_packet_info *info, uint32_t len)
{
	const uint8_t *p = q->buf;
	uint32_t plen = len - info->data_offset;
	const uint8_t *pkt = p + info->data_offset;
	if (plen < VSTOR_PACKET_WIN7 + 0u) {
		log_guest("storvsp: short vstor packet (%u bytes)", plen);
		return;
	}
	uint32_t op = g32(pkt);
	switch (op) {
	case VSTOR_OPERATION_EXECUTE_SRB: {
		struct svreq *r = req_get(q);
		if (!r)
			return; /* cannot happen: the caller checked q->free */
		r->trans_id = info->trans_id;
		memset(r->pkt, 0, sizeof(r->pkt));
		memcpy(r->pkt, pkt, plen < VSTOR_PACKET ? plen : VSTOR_PACKET);
		do_srb(q, info, p + STORVSP_DESC, info->data_offset, r);
		return;
	}
	case VSTOR_OPERATION_BEGIN_INITIALIZATION:
	case VSTOR_OPERATION_END_INITIALIZATION:
	case VSTOR_OPERATION_RESET_BUS:
	case VSTOR_OPERATION_RESET_ADAPTER:
	case VSTOR_OPERATION_RESET_LUN:
		reply_simple(q, info->trans_id, VSTOR_STATUS_OK, NULL, 0);
		return;
	case VSTOR_OPERATION_QUERY_PROTOCOL_VERSION: {
		uint16_t v = g16(pkt + 12);
		bool ok = false;
		for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
			ok |= versions[i] == v;
		/* Before win8 (5.1) the packet lacks the 16-byte extension. */
		if (ok) {
			q->vmscsi_delta = v >= 0x0501 ? 0 : 16;
			q->version = v;
		}
		uint8_t ver[4];
		p16(ver, v);
		p16(ver + 2, 0);
		reply_simple(q, info->trans_id, ok ? VSTOR_STATUS_OK : VSTOR_STATUS_FAIL, ver, 4);
		return;
	}
	case VSTOR_OPERATION_QUERY_PROPERTIES: {
		/* Sub-channels from win8 on, as Hyper-V offers them. */
		unsigned subs = q->version >= VSTOR_PROTO_VERSION_WIN8 ? q->sv->cfg.sub_channels : 0;
		uint8_t props[24] = { 0 };
		p16(props + 4, (uint16_t)subs);         /* max_channel_cnt */
		p32(props + 8, subs ? STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL : 0);
		p32(props + 12, STORVSP_MAX_TRANSFER);  /* max_transfer_bytes */
		if (q->index == 0)
			q->props_queried = true;
		reply_simple(q, info->trans_id, VSTOR_STATUS_OK, props, sizeof(props));
		return;
	}
	case VSTOR_OPERATION_CREATE_SUB_CHANNELS:
		reply_simple(q, info->trans_id, create_sub_channels(q, g16(pkt + 12)), NULL, 0);
		return;
	default:
		log_guest("storvsp: vstor operation %u not supported", op);
		reply_simple(q, info->trans_id, VSTOR_STATUS_FAIL, NULL, 0);
		return;
	}
}

/* Reads what the pool has room for. */
static void drain_ring(struct storvsp_queue *q)
{
	for (unsigned n = 0; n < 256 && q->free && !q->done_head && !q->nctl; n++) {
		struct vmbus_packet_info info;
		int ret = vmbus_channel_recv(q->ch, q->buf, sizeof(q->buf), &info);
		if (ret == -EMSGSIZE) {
			log_guest("storvsp: oversized packet dropped");
			vmbus_channel_skip(q->ch);
			continue;
		}
		if (ret < 0)
			return;
		if (info.type != VMBUS_PACKET_DATA_INBAND &&
		    info.type != VMBUS_PACKET_DATA_USING_GPA_DIRECT) {
			log_guest("storvsp: packet type %u ignored", info.type);
			continue;
		}
		handle_packet(q, &info, (uint32_t)ret);
	}
}

/* ---- one round of a queue's work ------------------------------------------ */

static void complete_all(struct storvsp_queue *q)
{
	for (unsigned i = 0; i < STORVSP_MAX_LUNS; i++)
		if (q->dq[i])
			disk_queue_complete(q->dq[i]);
}

void storvsp_queue_run(struct storvsp_queue *q)
{
	complete_all(q);
	flush_backlog(q);
	drain_ring(q);
	/* Requests the backend finished at submit (mem:) complete at once. */
	complete_all(q);
}

unsigned storvsp_queue_disks(struct storvsp_queue *q, struct disk_queue **dq, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < STORVSP_MAX_LUNS && n < max; i++)
		if (q->dq[i])
			dq[n++] = q->dq[i];
	return n;
}

unsigned storvsp_queue_instance(const struct storvsp_queue *q)
{
	return q->sv->cfg.instance;
}

void storvsp_queue_set_host_data(struct storvsp_queue *q, void *data)
{
	q->host_data = data;
}

void *storvsp_queue_host_data(const struct storvsp_queue *q)
{
	return q->host_data;
}

void storvsp_poll(struct storvsp *sv)
{
	if (sv->q.running)
		storvsp_queue_run(&sv->q);
	for (unsigned i = 0; i < sv->cfg.sub_channels; i++)
		if (sv->subq[i].running)
			storvsp_queue_run(&sv->subq[i]);
}

unsigned storvsp_queue_index(const struct storvsp_queue *q)
{
	return q->index;
}

static void destroy_disk_queues(struct storvsp_queue *q)
{
	for (unsigned i = 0; i < STORVSP_MAX_LUNS; i++) {
		disk_queue_destroy(q->dq[i]);
		q->dq[i] = NULL;
	}
}

static void stop_queue(struct storvsp_queue *q)
{
	if (!q->running)
		return;
	if (q->sv->cfg.host)
		q->sv->cfg.host->stop(q->sv->cfg.host_opaque, q);
	/* Waits for I/O in flight; its completions go out while the ring is still mapped. */
	destroy_disk_queues(q);
	q->running = false;
}

/* ---- VMBus callbacks (server lock held) ------------------------------------ */

/* The queue of channel ch (primary or sub-channel), or NULL. */
static struct storvsp_queue *queue_of(struct storvsp *sv, struct vmbus_channel *ch)
{
	unsigned i = vmbus_channel_subchannel_index(ch);
	if (i == 0)
		return &sv->q;
	return i <= sv->cfg.sub_channels ? &sv->subq[i - 1] : NULL;
}

static uint32_t sv_open(void *dev, struct vmbus_channel *ch)
{
	struct storvsp *sv = dev;
	struct storvsp_queue *q = queue_of(sv, ch);
	if (!q || q->running)
		return 1;
	q->ch = ch;
	/* A sub-channel speaks the version its primary negotiated. */
	q->vmscsi_delta = q->index ? sv->sub_vmscsi_delta : 0;
	q->version = q->index ? sv->sub_version : 0;
	q->props_queried = false;
	q->subs_requested = false;
	q->done_head = NULL;
	q->done_tail = &q->done_head;
	q->nctl = 0;
	memset(q->pool, 0, sizeof(*q->pool) * STORVSP_POOL);
	for (unsigned i = 0; i < STORVSP_POOL; i++)
		q->pool[i].q = q;
	q->free = STORVSP_POOL;
	for (unsigned i = 0; i < sv->nluns; i++) {
		uint16_t l = sv->lun_list[i];
		if (disk_queue_create(sv->luns[l].disk, STORVSP_POOL, &q->dq[l]) < 0) {
			destroy_disk_queues(q);
			return 1;
		}
	}
	q->running = true;
	if (sv->cfg.host && sv->cfg.host->start(sv->cfg.host_opaque, q) < 0) {
		q->running = false;
		destroy_disk_queues(q);
		return 1;
	}
	return 0;
}

static void sv_close(void *dev, struct vmbus_channel *ch)
{
	struct storvsp_queue *q = queue_of(dev, ch);
	if (q && q->ch == ch)
		stop_queue(q);
}

static void sv_notify(void *dev, struct vmbus_channel *ch)
{
	struct storvsp *sv = dev;
	struct storvsp_queue *q = queue_of(sv, ch);
	if (sv->cfg.host && q && q->running && q->ch == ch)
		sv->cfg.host->kick(sv->cfg.host_opaque, q);
}

static const struct vmbus_device_ops sv_ops = {
	.open = sv_open, .close = sv_close, .notify = sv_notify,
};

int storvsp_create(struct vmbus_server *srv, const struct storvsp_config *cfg,
		   struct storvsp **out)
{
	if (cfg->nluns > STORVSP_MAX_LUNS || !cfg->map ||
	    cfg->sub_channels > STORVSP_MAX_SUB_CHANNELS ||
	    (cfg->host && (!cfg->host->start || !cfg->host->stop || !cfg->host->kick)))
		return -EINVAL;
	struct storvsp *sv = calloc(1, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	sv->cfg = *cfg;
	sv->q.sv = sv;
	sv->q.pool = calloc(STORVSP_POOL, sizeof(*sv->q.pool));
	int ret = !sv->q.pool ? -ENOMEM : 0;
	if (ret == 0 && cfg->sub_channels) {
		sv->subq = calloc(cfg->sub_channels, sizeof(*sv->subq));
		ret = sv->subq ? 0 : -ENOMEM;
		for (unsigned i = 0; ret == 0 && i < cfg->sub_channels; i++) {
			sv->subq[i].sv = sv;
			sv->subq[i].index = i + 1;
			sv->subq[i].pool = calloc(STORVSP_POOL, sizeof(*sv->subq[i].pool));
			if (!sv->subq[i].pool)
				ret = -ENOMEM;
		}
	}
	for (unsigned i = 0; ret == 0 && i < cfg->nluns; i++) {
		const struct storvsp_lun_config *lc = &cfg->luns[i];
		if (lc->lun >= STORVSP_MAX_LUNS || sv->lun[lc->lun]) {
			ret = -EINVAL;
			break;
		}
		struct scsi_lun_config sc = {
			.dvd = lc->dvd, .read_only = lc->read_only, .lun = lc->lun,
			.id = ((uint64_t)cfg->instance << 16) | lc->lun,
		};
		ret = scsi_lun_create(lc->disk, &sc, &sv->lun[lc->lun]);
		if (ret == 0) {
			sv->luns[lc->lun] = *lc;
			sv->lun_list[sv->nluns++] = lc->lun;
		}
	}
	struct vmbus_offer offer;
	memset(&offer, 0, sizeof(offer));
	if (ret == 0) {
		char inst[40];
		snprintf(inst, sizeof(inst), "ba6163d9-04a1-4d29-b605-72e2%08x", cfg->instance);
		vmbus_guid_parse("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", &offer.if_type);
		/* Our instance: the class GUID with the controller number at the end. */
		vmbus_guid_parse(inst, &offer.if_instance);
		offer.if_instance.b[0] ^= 0x5a; /* never equal to the class GUID */
		struct vmbus_channel *ch;
		ret = vmbus_offer(srv, &offer, &sv_ops, sv, &ch);
	}
	if (ret < 0) {
		storvsp_destroy(sv);
		return ret;
	}
	*out = sv;
	return 0;
}

void storvsp_destroy(struct storvsp *sv)
{
	if (!sv)
		return;
	stop_queue(&sv->q);
	for (unsigned i = 0; sv->subq && i < sv->cfg.sub_channels; i++) {
		stop_queue(&sv->subq[i]);
		free(sv->subq[i].pool);
	}
	free(sv->subq);
	for (unsigned i = 0; i < STORVSP_MAX_LUNS; i++)
		scsi_lun_destroy(sv->lun[i]);
	free(sv->q.pool);
	free(sv);
}
