/*
 * The integration-component ("IC") framework under the utility devices
 * (../shared/docs/hyperv-linux-guest.md §7.3; Linux drivers/hv/hv_util.c
 * and vmbus_prep_negotiate_resp() in channel_mgmt.c): every request is one
 * inband VMBus packet, vmbuspipe_hdr + icmsg_hdr + body, and the guest
 * sends the same packet back with ICMSGHDRFLAG_RESPONSE, a status and the
 * same VMBus transaction id. The host speaks first on each channel with a
 * NEGOTIATE offering framework versions 3.0 and 1.0 and the service's
 * versions; the guest answers with one of each, or with zero counts.
 * This file offers the channels, frames and sends requests, matches
 * answers to the one request in flight per channel and hands them to the
 * service (hvutil_shutdown.c, _heartbeat.c, _timesync.c, _kvp.c).
 * Everything the guest sends is copied, then length- and field-checked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "dev/hvutil_impl.h"
#include "vmbus/vmbus_channel.h"

typedef void (*ic_response_fn)(struct ic *ic, const struct icmsg_hdr *h,
			       const uint8_t *body, uint32_t len);

struct ic_service {
	const char *name;
	const char *type_guid;     /* the device class Linux matches */
	const char *instance_guid; /* ours */
	struct ic_version versions[4]; /* offered service versions, newest first */
	unsigned nversions;
	uint16_t msgtype;
	ic_response_fn response;
};

static const struct ic_service services[HVUTIL_NSERVICES] = {
	[HVUTIL_SHUTDOWN] = { "shutdown", "0e0b6031-5213-4934-818b-38d90ced39db",
			      "b6d3e1a0-6f61-4c1f-9a8b-686d6d757401",
			      { { 3, 2 }, { 3, 1 }, { 3, 0 }, { 1, 0 } }, 4,
			      ICMSGTYPE_SHUTDOWN, hvutil_shutdown_response },
	[HVUTIL_HEARTBEAT] = { "heartbeat", "57164f39-9115-4e78-ab55-382f3bd5422d",
			       "b6d3e1a0-6f61-4c1f-9a8b-686d6d757402",
			       { { 3, 0 }, { 1, 0 } }, 2,
			       ICMSGTYPE_HEARTBEAT, hvutil_heartbeat_response },
	[HVUTIL_TIMESYNC] = { "timesync", "9527e630-d0ae-497b-adce-e80ab0175caf",
			      "b6d3e1a0-6f61-4c1f-9a8b-686d6d757403",
			      { { 4, 0 }, { 3, 0 }, { 1, 0 } }, 3,
			      ICMSGTYPE_TIMESYNC, hvutil_timesync_response },
	[HVUTIL_KVP] = { "kvp", "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6",
			 "b6d3e1a0-6f61-4c1f-9a8b-686d6d757404",
			 { { 4, 0 }, { 3, 0 }, { 1, 0 } }, 3,
			 ICMSGTYPE_KVPEXCHANGE, hvutil_kvp_response },
};

static const struct ic_version framework_versions[] = { { 3, 0 }, { 1, 0 } };
#define NFRAMEWORK (sizeof(framework_versions) / sizeof(framework_versions[0]))

/* Packets drained per work item; the rest waits for the next signal/tick. */
#define IC_DRAIN_MAX 64

void hvutil_lock(struct hvutils *u)
{
	if (u->host.lock)
		u->host.lock(u->host.opaque);
}

void hvutil_unlock(struct hvutils *u)
{
	if (u->host.unlock)
		u->host.unlock(u->host.opaque);
}

uint64_t hvutil_now_ms(struct hvutils *u)
{
	return u->host.now_ms(u->host.opaque);
}

uint8_t *hvutil_ic_body(struct ic *ic)
{
	return ic->u->buf + ICMSG_HDR;
}

int hvutil_ic_send(struct ic *ic, uint16_t type, uint32_t len)
{
	struct hvutils *u = ic->u;
	if (!ic->open)
		return -EPIPE;
	if (len > HVUTIL_PKT_MAX - ICMSG_HDR)
		return -EINVAL;
	uint64_t xid = ic->next_xid + 1;
	struct vmbuspipe_hdr pipe = { .flags = 1, .msgsize = len };
	struct icmsg_hdr h;
	memset(&h, 0, sizeof(h));
	if (type == ICMSGTYPE_NEGOTIATE) {
		h.icverframe = (struct ic_version){ 1, 0 };
		h.icvermsg = (struct ic_version){ 1, 0 };
	} else {
		h.icverframe = ic->fw;
		h.icvermsg = ic->msg;
	}
	h.icmsgtype = type;
	h.icmsgsize = (uint16_t)len;
	h.ictransaction_id = (uint8_t)xid;
	h.icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_REQUEST;
	memcpy(u->buf, &pipe, sizeof(pipe));
	memcpy(u->buf + sizeof(pipe), &h, sizeof(h));
	int ret = vmbus_channel_send(ic->ch, VMBUS_PACKET_DATA_INBAND, 0, xid, NULL, 0,
				     u->buf, ICMSG_HDR + len);
	if (ret < 0)
		return ret;
	ic->next_xid = xid;
	ic->pending = true;
	ic->pending_xid = xid;
	ic->pending_type = type;
	ic->pending_len = len;
	ic->sent_ms = hvutil_now_ms(u);
	return 0;
}

static int send_negotiate(struct ic *ic)
{
	const struct ic_service *s = &services[ic->svc];
	uint8_t *body = hvutil_ic_body(ic);
	struct icmsg_negotiate neg = {
		.icframe_vercnt = NFRAMEWORK, .icmsg_vercnt = (uint16_t)s->nversions,
	};
	memcpy(body, &neg, sizeof(neg));
	uint32_t len = sizeof(neg);
	for (unsigned i = 0; i < NFRAMEWORK; i++, len += sizeof(struct ic_version))
		memcpy(body + len, &framework_versions[i], sizeof(struct ic_version));
	for (unsigned i = 0; i < s->nversions; i++, len += sizeof(struct ic_version))
		memcpy(body + len, &s->versions[i], sizeof(struct ic_version));
	return hvutil_ic_send(ic, ICMSGTYPE_NEGOTIATE, len);
}

static bool version_in(const struct ic_version *list, unsigned n, struct ic_version v)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i].major == v.major && list[i].minor == v.minor)
			return true;
	return false;
}

/* The guest's NEGOTIATE answer: exactly one framework and one service version. */
static void on_negotiate(struct ic *ic, const uint8_t *body, uint32_t len)
{
	const struct ic_service *s = &services[ic->svc];
	struct icmsg_negotiate neg;
	struct ic_version v[2];
	/* Until the channel is reopened: re-offering would ping-pong with the guest. */
	ic->nego_failed = true;
	if (len < sizeof(neg) + sizeof(v)) {
		log_guest("hvutil %s: NEGOTIATE answer of %u bytes", s->name, len);
		return;
	}
	memcpy(&neg, body, sizeof(neg));
	memcpy(v, body + sizeof(neg), sizeof(v));
	if (neg.icframe_vercnt != 1 || neg.icmsg_vercnt != 1) {
		log_guest("hvutil %s: the guest accepted none of our versions (counts %u/%u)",
			  s->name, neg.icframe_vercnt, neg.icmsg_vercnt);
		return;
	}
	if (!version_in(framework_versions, NFRAMEWORK, v[0]) ||
	    !version_in(s->versions, s->nversions, v[1])) {
		log_guest("hvutil %s: the guest chose versions we did not offer (%u.%u/%u.%u)",
			  s->name, v[0].major, v[0].minor, v[1].major, v[1].minor);
		return;
	}
	ic->fw = v[0];
	ic->msg = v[1];
	ic->negotiated = true;
	ic->nego_failed = false;
	log_info("hvutil %s: version %u.%u (framework %u.%u)", s->name, v[1].major,
		 v[1].minor, v[0].major, v[0].minor);
	if (ic->svc == HVUTIL_TIMESYNC)
		hvutil_timesync_negotiated(ic);
}

/* One guest packet (payload p[0..len), the packet's transaction id). Lock held. */
static void on_packet(struct ic *ic, const uint8_t *p, uint32_t len, uint64_t xid)
{
	const struct ic_service *s = &services[ic->svc];
	if (len < ICMSG_HDR) {
		log_guest("hvutil %s: packet of %u bytes ignored", s->name, len);
		return;
	}
	struct icmsg_hdr h;
	memcpy(&h, p + sizeof(struct vmbuspipe_hdr), sizeof(h));
	if (!(h.icflags & ICMSGHDRFLAG_RESPONSE)) {
		log_guest("hvutil %s: request from the guest ignored (type %u, flags %#x)",
			  s->name, h.icmsgtype, h.icflags);
		return;
	}
	if (!ic->pending || xid != ic->pending_xid) {
		if (ic->late && xid == ic->late_xid) {
			/* A slow guest, not a wrong one: the request timed out here. */
			ic->late = false;
			log_guest_debug("hvutil %s: answer to a request that timed out (%llu) dropped",
					s->name, (unsigned long long)xid);
			return;
		}
		log_guest("hvutil %s: answer to a transaction we did not send (%llu) ignored",
			  s->name, (unsigned long long)xid);
		return;
	}
	if (h.icmsgtype != ic->pending_type || len - ICMSG_HDR < ic->pending_len) {
		log_guest("hvutil %s: answer of type %u, %u bytes to a request of type %u, %u bytes",
			  s->name, h.icmsgtype, len, ic->pending_type,
			  (unsigned)(ICMSG_HDR + ic->pending_len));
		return;
	}
	ic->pending = false;
	const uint8_t *body = p + ICMSG_HDR;
	uint32_t blen = ic->pending_len;
	if (h.icmsgtype == ICMSGTYPE_NEGOTIATE)
		on_negotiate(ic, body, blen);
	else
		s->response(ic, &h, body, blen);
}

/* Drains the guest-to-host ring of one channel. Lock held. */
static void ic_process(struct ic *ic)
{
	struct hvutils *u = ic->u;
	for (unsigned n = 0; n < IC_DRAIN_MAX && ic->open; n++) {
		struct vmbus_packet_info info;
		int ret = vmbus_channel_recv(ic->ch, u->buf, sizeof(u->buf), &info);
		if (ret == -EMSGSIZE) {
			log_guest("hvutil %s: oversized packet dropped", services[ic->svc].name);
			if (vmbus_channel_skip(ic->ch) < 0)
				return;
			continue;
		}
		if (ret < 0)
			return;
		/* The server checked data_offset <= len <= ret; check again, cheaply. */
		if (info.type != VMBUS_PACKET_DATA_INBAND || info.data_offset > info.len ||
		    info.len > (uint32_t)ret) {
			log_guest("hvutil %s: packet of type %u ignored", services[ic->svc].name,
				  info.type);
			continue;
		}
		uint32_t len = info.len - info.data_offset;
		memmove(u->buf, u->buf + info.data_offset, len);
		on_packet(ic, u->buf, len, info.trans_id);
	}
}

static void work_process(void *arg)
{
	struct ic *ic = arg;
	struct hvutils *u = ic->u;
	hvutil_lock(u);
	if (!u->dead && ic->open) {
		ic_process(ic);
		if (ic->open && !ic->negotiated && !ic->nego_failed && !ic->pending &&
		    send_negotiate(ic) < 0)
			log_warn("hvutil %s: cannot send NEGOTIATE", services[ic->svc].name);
	}
	hvutil_unlock(u);
}

/* ---- VMBus device callbacks (server lock held; see hvutil.h for order) ---- */

static uint32_t dev_open(void *dev, struct vmbus_channel *ch)
{
	struct ic *ic = dev;
	struct hvutils *u = ic->u;
	hvutil_lock(u);
	ic->ch = ch;
	ic->open = true;
	ic->negotiated = false;
	ic->nego_failed = false;
	ic->pending = false;
	ic->late = false;
	if (ic->svc == HVUTIL_KVP) {
		/* A new guest connection (reboot, kexec): its items start afresh. */
		u->kvp_nitems = 0;
		u->kvp_done = false;
		u->kvp_pool_idx = 0;
		u->kvp_index = 0;
	}
	hvutil_unlock(u);
	/* NEGOTIATE goes out from the worker, after OPENCHANNEL_RESULT. */
	if (u->host.schedule(u->host.opaque, work_process, ic) < 0)
		log_warn("hvutil %s: cannot schedule work", services[ic->svc].name);
	return 0;
}

static void dev_close(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	struct ic *ic = dev;
	hvutil_lock(ic->u);
	ic->open = false;
	ic->negotiated = false;
	ic->pending = false;
	ic->late = false;
	hvutil_unlock(ic->u);
}

/* vCPU thread: never touches the ring here, only schedules. */
static void dev_notify(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	struct ic *ic = dev;
	if (ic->u->host.schedule(ic->u->host.opaque, work_process, ic) < 0)
		log_warn("hvutil %s: cannot schedule work", services[ic->svc].name);
}

static const struct vmbus_device_ops ic_ops = {
	.open = dev_open, .close = dev_close, .notify = dev_notify,
};

/* ---- public ---------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Our constant GUID strings into wire order (guid_t: LE, LE, LE, then bytes). */
static void guid_from_string(const char *s, struct vmbus_guid *g)
{
	static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					   8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t bytes[16];
	unsigned n = 0;
	for (const char *c = s; *c && n < 32; c++) {
		if (*c == '-')
			continue;
		int v = hexval(*c);
		if (n % 2 == 0)
			bytes[n / 2] = (uint8_t)(v << 4);
		else
			bytes[n / 2] |= (uint8_t)v;
		n++;
	}
	for (unsigned i = 0; i < 16; i++)
		g->b[i] = bytes[order[i]];
}

int hvutil_create(struct vmbus_server *srv, const struct hvutil_host *host,
		  struct hvutils **out)
{
	struct hvutils *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->kvp_items = calloc(HVUTIL_KVP_MAX_ITEMS, sizeof(*u->kvp_items));
	if (!u->kvp_items) {
		free(u);
		return -ENOMEM;
	}
	u->host = *host;
	u->srv = srv;
	u->shutdown_status = -1;
	for (unsigned i = 0; i < HVUTIL_NSERVICES; i++) {
		struct ic *ic = &u->ic[i];
		ic->u = u;
		ic->svc = (enum hvutil_service)i;
		struct vmbus_offer offer;
		memset(&offer, 0, sizeof(offer));
		guid_from_string(services[i].type_guid, &offer.if_type);
		guid_from_string(services[i].instance_guid, &offer.if_instance);
		int ret = vmbus_offer(srv, &offer, &ic_ops, ic, &ic->ch);
		if (ret < 0) {
			/* Not offered to a guest yet (we run before it connects). */
			for (unsigned j = 0; j < i; j++)
				vmbus_rescind(u->ic[j].ch);
			free(u->kvp_items);
			free(u);
			return ret;
		}
	}
	*out = u;
	return 0;
}

void hvutil_destroy(struct hvutils *u)
{
	if (!u)
		return;
	hvutil_lock(u);
	u->dead = true;
	hvutil_unlock(u);
	u->host.flush(u->host.opaque);
	free(u->kvp_items);
	free(u);
}

const struct hvutil_host *hvutil_host_of(const struct hvutils *u)
{
	return &u->host;
}

void hvutil_tick(struct hvutils *u)
{
	hvutil_lock(u);
	if (u->dead) {
		hvutil_unlock(u);
		return;
	}
	uint64_t now = hvutil_now_ms(u);
	for (unsigned i = 0; i < HVUTIL_NSERVICES; i++) {
		struct ic *ic = &u->ic[i];
		/*
		 * A request the guest never answered stops blocking the channel.
		 * Not NEGOTIATE: Linux's KVP driver leaves it unread until
		 * hv_kvp_daemon registers, which may be any time (hv_kvp.c).
		 */
		if (ic->pending && ic->pending_type != ICMSGTYPE_NEGOTIATE &&
		    now - ic->sent_ms > HVUTIL_REQUEST_TIMEOUT_MS) {
			log_guest("hvutil %s: no answer from the guest in %u s", services[i].name,
				  HVUTIL_REQUEST_TIMEOUT_MS / 1000);
			ic->pending = false;
			ic->late = true;
			ic->late_xid = ic->pending_xid;
		}
	}
	hvutil_heartbeat_tick(&u->ic[HVUTIL_HEARTBEAT], now);
	hvutil_timesync_tick(&u->ic[HVUTIL_TIMESYNC], now);
	hvutil_kvp_tick(&u->ic[HVUTIL_KVP], now);
	hvutil_unlock(u);
}

uint32_t hvutil_version(struct hvutils *u, enum hvutil_service s)
{
	if ((unsigned)s >= HVUTIL_NSERVICES)
		return 0;
	hvutil_lock(u);
	struct ic *ic = &u->ic[s];
	uint32_t v = ic->negotiated ? (uint32_t)ic->msg.major << 16 | ic->msg.minor : 0;
	hvutil_unlock(u);
	return v;
}
