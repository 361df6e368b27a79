/*
 * The VMBus server's control plane (vmbus.h): the channel messages a guest
 * posts with HvPostMessage (version negotiation, offer requests, GPADL
 * creation and teardown, open, close, relid release, unload, modify-channel)
 * and the replies and offers the host sends back through SynIC, as Linux's
 * drivers/hv/connection.c and channel_mgmt.c drive them. Every message is
 * length-checked before a field is read; every request the guest waits for
 * gets its reply, with an error status where the protocol has one.
 */
#include "vmbus/vmbus_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/inspect.h"
#include "core/log.h"

static void flush_locked(struct vmbus_server *srv);

static const uint32_t known_versions[] = {
	VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
	VMBUS_VERSION_WIN10_V5, VMBUS_VERSION_WIN10_RS3, VMBUS_VERSION_WIN10,
	VMBUS_VERSION_WIN8_1, VMBUS_VERSION_WIN8, VMBUS_VERSION_WIN7,
	VMBUS_VERSION_WS2008,
};

void vmbus_lock(struct vmbus_server *srv)
{
	if (srv->host.lock)
		srv->host.lock(srv->host.opaque);
}

void vmbus_unlock(struct vmbus_server *srv)
{
	if (srv->host.unlock)
		srv->host.unlock(srv->host.opaque);
}

int vmbus_server_create(const struct vmbus_host *host,
			const struct vmbus_server_config *cfg,
			struct vmbus_server **out)
{
	struct vmbus_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->host = *host;
	srv->cfg = *cfg;
	if (!srv->cfg.max_version)
		srv->cfg.max_version = VMBUS_VERSION_WIN10_V5_3;
	if (!srv->cfg.nvps)
		srv->cfg.nvps = 1;
	*out = srv;
	return 0;
}

uint32_t vmbus_server_version(struct vmbus_server *srv)
{
	vmbus_lock(srv);
	uint32_t v = srv->version;
	vmbus_unlock(srv);
	return v;
}

static void post(struct vmbus_server *srv, const uint8_t *msg, size_t len)
{
	if (srv->host.post_message(srv->host.opaque, srv->target_vp, msg, len) < 0)
		log_guest("vmbus: host message %u to VP %u dropped (SynIC queue full)",
			  vmbus_get32(msg, 0), srv->target_vp);
}

static void reply32(struct vmbus_server *srv, uint32_t type, size_t len,
		    uint32_t a, uint32_t b, uint32_t c)
{
	uint8_t m[MSG_OPENCHANNEL_RESULT] = { 0 };
	vmbus_put32(m, 0, type);
	if (len > 8)
		vmbus_put32(m, 8, a);
	if (len > 12)
		vmbus_put32(m, 12, b);
	if (len > 16)
		vmbus_put32(m, 16, c);
	post(srv, m, len);
}

static void send_offer(struct vmbus_server *srv, struct vmbus_channel *ch)
{
	uint8_t m[MSG_OFFERCHANNEL] = { 0 };
	vmbus_put32(m, 0, CHANNELMSG_OFFERCHANNEL);
	memcpy(m + 8, ch->offer.if_type.b, 16);
	memcpy(m + 24, ch->offer.if_instance.b, 16);
	vmbus_put16(m, 56, ch->offer.chn_flags);
	vmbus_put16(m, 58, ch->offer.mmio_megabytes);
	memcpy(m + 60, ch->offer.user_defined, 120);
	vmbus_put16(m, 180, ch->offer.sub_channel_index);
	vmbus_put32(m, 184, ch->relid);
	m[188] = 0;                  /* monitor id: unused */
	m[189] = 0;                  /* monitor not allocated: events via SIEF */
	vmbus_put16(m, 190, 1);      /* dedicated interrupt */
	vmbus_put32(m, 192, ch->conn_id);
	post(srv, m, sizeof(m));
	ch->offered = true;
}

static struct vmbus_channel *find_channel(struct vmbus_server *srv, uint32_t relid)
{
	for (struct vmbus_channel *ch = srv->channels; ch; ch = ch->next)
		if (ch->relid == relid)
			return ch;
	return NULL;
}

static void free_channel(struct vmbus_server *srv, struct vmbus_channel *ch);
static void withdraw_subchannels(struct vmbus_channel *primary);

static void close_one(struct vmbus_channel *ch)
{
	if (!ch->open)
		return;
	ch->open = false;
	ch->ops->close(ch->dev, ch);
	vmbus_rings_detach(ch);
	/* A request made during this open dies with it (the device's worker
	 * has stopped: close() returned). */
	atomic_store(&ch->sub_request, 0u);
}

/*
 * Closes a channel for its device. A primary's sub-channels close first
 * (Linux closes them before their primary too) and are then withdrawn.
 * Lock held.
 */
static void close_channel(struct vmbus_channel *ch)
{
	if (!ch->sub) {
		for (struct vmbus_channel *c = ch->srv->channels; c; c = c->next)
			if (c->sub && c->primary == ch)
				close_one(c);
	}
	close_one(ch);
	if (!ch->sub)
		withdraw_subchannels(ch);
}

/* Tells the channel's device, if it asked, that g goes away. Lock held. */
static void gpadl_gone(struct vmbus_server *srv, struct vmbus_gpadl *g)
{
	if (!g->complete || !g->pages)
		return;
	for (struct vmbus_channel *ch = srv->channels; ch; ch = ch->next) {
		if (ch->relid == g->relid) {
			if (ch->ops->gpadl_torndown)
				ch->ops->gpadl_torndown(ch->dev, ch, g->id);
			return;
		}
	}
}

static void free_gpadl(struct vmbus_server *srv, struct vmbus_gpadl *g)
{
	gpadl_gone(srv, g);
	for (struct vmbus_gpadl **pp = &srv->gpadls; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	srv->ngpadls--;
	srv->gpadl_pages -= g->npages;
	free(g->pfns);
	free(g->pages);
	free(g);
}

static void release_relid(struct vmbus_server *srv, uint32_t relid)
{
	srv->relid_used[relid / 8] &= (uint8_t)~(1u << (relid % 8));
}

static void free_channel(struct vmbus_server *srv, struct vmbus_channel *ch)
{
	for (struct vmbus_channel *c = srv->channels; c; c = c->next)
		if (c->primary == ch)
			c->primary = NULL; /* never dangles (it is being withdrawn) */
	for (struct vmbus_channel **pp = &srv->channels; *pp; pp = &(*pp)->next) {
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	}
	release_relid(srv, ch->relid);
	free(ch);
}

/* Forgets the guest's connection: channels closed, GPADLs gone. Lock held. */
static void disconnect(struct vmbus_server *srv)
{
	/* No messages from here: withdrawn sub-channels are freed, not rescinded. */
	srv->version = 0;
	for (struct vmbus_channel *ch = srv->channels; ch; ch = ch->next)
		close_channel(ch); /* frees sub-channels, never ch itself */
	while (srv->gpadls)
		free_gpadl(srv, srv->gpadls);
	struct vmbus_channel **pp = &srv->channels;
	while (*pp) {
		struct vmbus_channel *ch = *pp;
		ch->offered = false;
		if (ch->rescinded || ch->sub) {
			*pp = ch->next;
			release_relid(srv, ch->relid);
			free(ch);
			continue;
		}
		pp = &ch->next;
	}
}

void vmbus_server_reset(struct vmbus_server *srv)
{
	vmbus_lock(srv);
	disconnect(srv);
	vmbus_unlock(srv);
}

void vmbus_server_destroy(struct vmbus_server *srv)
{
	if (!srv)
		return;
	vmbus_lock(srv);
	disconnect(srv);
	while (srv->channels)
		free_channel(srv, srv->channels);
	vmbus_unlock(srv);
	free(srv);
}

/* ---- guest messages ------------------------------------------------------ */

static bool version_supported(const struct vmbus_server *srv, uint32_t v)
{
	if (v > srv->cfg.max_version)
		return false;
	for (size_t i = 0; i < sizeof(known_versions) / sizeof(known_versions[0]); i++)
		if (known_versions[i] == v)
			return true;
	return false;
}

static void on_initiate_contact(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_INITIATE_CONTACT - 16) { /* pre-5.0 guests may omit monitor pages */
		log_guest("vmbus: INITIATE_CONTACT of %zu bytes ignored", len);
		return;
	}
	uint32_t version = vmbus_get32(m, 8);
	uint32_t vp = vmbus_get32(m, 12);
	if (srv->version)
		disconnect(srv); /* a new connection (kexec'd guest) */
	if (vp >= srv->cfg.nvps) {
		log_guest("vmbus: INITIATE_CONTACT names VP %u of %u; using VP 0", vp,
			  srv->cfg.nvps);
		vp = 0;
	}
	srv->target_vp = vp;
	uint8_t r[MSG_VERSION_RESPONSE] = { 0 };
	vmbus_put32(r, 0, CHANNELMSG_VERSION_RESPONSE);
	if (version_supported(srv, version)) {
		srv->version = version;
		r[8] = 1;                              /* version_supported */
		vmbus_put32(r, 12, VMBUS_MESSAGE_CONNECTION_ID); /* msg_conn_id */
		log_debug("vmbus: guest connected with version %u.%u", version >> 16,
			  version & 0xFFFF);
	}
	post(srv, r, sizeof(r));
}

static void on_request_offers(struct vmbus_server *srv)
{
	for (struct vmbus_channel *ch = srv->channels; ch; ch = ch->next)
		if (!ch->rescinded)
			send_offer(srv, ch);
	reply32(srv, CHANNELMSG_ALLOFFERS_DELIVERED, MSG_HDR, 0, 0, 0);
}

static void gpadl_created(struct vmbus_server *srv, struct vmbus_gpadl *g, uint32_t relid,
			  uint32_t id)
{
	uint32_t status = 0;
	if (g && !vmbus_gpadl_map(srv, g)) {
		log_guest("vmbus: GPADL %#x names pages outside guest RAM", id);
		free_gpadl(srv, g);
		status = 1;
	} else if (!g) {
		status = 1;
	}
	reply32(srv, CHANNELMSG_GPADL_CREATED, MSG_GPADL_CREATED, relid, id, status);
}

static void on_gpadl_header(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_GPADL_HEADER_MIN) {
		log_guest("vmbus: GPADL_HEADER of %zu bytes refused", len);
		if (len >= 16) /* relid and id are there: the guest waits for them */
			gpadl_created(srv, NULL, vmbus_get32(m, 8), vmbus_get32(m, 12));
		return;
	}
	uint32_t relid = vmbus_get32(m, 8), id = vmbus_get32(m, 12);
	uint16_t range_buflen = vmbus_get16(m, 16), rangecount = vmbus_get16(m, 18);
	uint32_t byte_count = vmbus_get32(m, 20), byte_offset = vmbus_get32(m, 24);
	const char *why = NULL;
	uint64_t npages = ((uint64_t)byte_offset + byte_count + VMBUS_PAGE - 1) / VMBUS_PAGE;
	if (!find_channel(srv, relid))
		why = "unknown channel";
	else if (vmbus_gpadl_find(srv, id))
		why = "GPADL id already in use";
	else if (rangecount != 1)
		why = "only one range per GPADL is supported";
	else if (byte_count == 0 || byte_offset >= VMBUS_PAGE)
		why = "bad range";
	else if (range_buflen < 8 || range_buflen % 8 || (range_buflen - 8u) / 8u != npages)
		why = "range length does not match its byte count";
	else if (npages > VMBUS_GPADL_MAX_PAGES ||
		 srv->gpadl_pages + npages > VMBUS_GPADL_MAX_TOTAL ||
		 srv->ngpadls >= VMBUS_MAX_GPADLS)
		why = "too large";
	if (why) {
		log_guest("vmbus: GPADL %#x for relid %u refused: %s", id, relid, why);
		gpadl_created(srv, NULL, relid, id);
		return;
	}
	struct vmbus_gpadl *g = calloc(1, sizeof(*g));
	uint64_t *pfns = calloc(npages, sizeof(uint64_t));
	if (!g || !pfns) {
		free(g);
		free(pfns);
		gpadl_created(srv, NULL, relid, id);
		return;
	}
	g->id = id;
	g->relid = relid;
	g->byte_count = byte_count;
	g->npages = (uint32_t)npages;
	g->pfns = pfns;
	uint32_t here = (uint32_t)((len - MSG_GPADL_HEADER_MIN) / 8);
	if (here > g->npages)
		here = g->npages;
	for (uint32_t i = 0; i < here; i++)
		g->pfns[i] = vmbus_get64(m, MSG_GPADL_HEADER_MIN + 8 * i);
	g->got = here;
	g->next = srv->gpadls;
	srv->gpadls = g;
	srv->ngpadls++;
	srv->gpadl_pages += g->npages;
	if (g->got == g->npages) {
		g->complete = true;
		gpadl_created(srv, g, relid, id);
	}
}

static void on_gpadl_body(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_GPADL_BODY_MIN + 8) {
		log_guest("vmbus: GPADL_BODY of %zu bytes ignored", len);
		return;
	}
	uint32_t id = vmbus_get32(m, 12);
	struct vmbus_gpadl *g = vmbus_gpadl_find(srv, id);
	if (!g || g->complete) {
		log_guest("vmbus: GPADL_BODY for %s GPADL %#x ignored",
			  g ? "complete" : "unknown", id);
		return;
	}
	uint32_t here = (uint32_t)((len - MSG_GPADL_BODY_MIN) / 8);
	uint32_t left = g->npages - g->got;
	if (here > left)
		here = left;
	for (uint32_t i = 0; i < here; i++)
		g->pfns[g->got + i] = vmbus_get64(m, MSG_GPADL_BODY_MIN + 8 * i);
	g->got += here;
	if (g->got == g->npages) {
		g->complete = true;
		gpadl_created(srv, g, g->relid, id);
	}
}

static void on_gpadl_teardown(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_GPADL_TEARDOWN) {
		log_guest("vmbus: GPADL_TEARDOWN of %zu bytes ignored", len);
		return;
	}
	uint32_t id = vmbus_get32(m, 12);
	struct vmbus_gpadl *g = vmbus_gpadl_find(srv, id);
	if (g) {
		if (g->in_use) {
			/* The guest tears down a ring that is still open: close first. */
			for (struct vmbus_channel *ch = srv->channels; ch; ch = ch->next)
				if (ch->ring_gpadl == g)
					close_channel(ch);
		}
		free_gpadl(srv, g);
	} else {
		log_guest("vmbus: teardown of unknown GPADL %#x", id);
	}
	reply32(srv, CHANNELMSG_GPADL_TORNDOWN, MSG_GPADL_TORNDOWN, id, 0, 0);
}

static void on_open(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_OPENCHANNEL - 120) {
		log_guest("vmbus: OPENCHANNEL of %zu bytes refused", len);
		if (len >= 16) /* relid and openid are there: the guest waits */
			reply32(srv, CHANNELMSG_OPENCHANNEL_RESULT, MSG_OPENCHANNEL_RESULT,
				vmbus_get32(m, 8), vmbus_get32(m, 12), 1);
		return;
	}
	uint32_t relid = vmbus_get32(m, 8), openid = vmbus_get32(m, 12);
	uint32_t gpadl = vmbus_get32(m, 16), vp = vmbus_get32(m, 20);
	uint32_t down = vmbus_get32(m, 24);
	struct vmbus_channel *ch = find_channel(srv, relid);
	struct vmbus_gpadl *g = vmbus_gpadl_find(srv, gpadl);
	const char *why = NULL;
	if (!ch || ch->rescinded)
		why = "no such channel";
	else if (ch->open)
		why = "already open";
	else if (!g || !g->complete || g->relid != relid)
		why = "bad ring GPADL";
	else if (g->in_use)
		why = "ring GPADL already in use";
	else if (vp >= srv->cfg.nvps)
		why = "target VP out of range";
	else if (vmbus_rings_attach(ch, g, down) < 0)
		why = "bad ring layout";
	uint32_t status = why ? 1 : 0;
	if (!why) {
		ch->target_vp = vp;
		ch->open = true;
		atomic_store(&ch->sub_request, 0u);
		ch->subs_made = false;
		status = ch->ops->open(ch->dev, ch);
		if (status) {
			ch->open = false;
			vmbus_rings_detach(ch);
		}
	} else {
		log_guest("vmbus: OPENCHANNEL relid %u refused: %s", relid, why);
	}
	reply32(srv, CHANNELMSG_OPENCHANNEL_RESULT, MSG_OPENCHANNEL_RESULT, relid, openid,
		status);
}

static void on_close(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_CLOSECHANNEL) {
		log_guest("vmbus: CLOSECHANNEL of %zu bytes ignored", len);
		return;
	}
	struct vmbus_channel *ch = find_channel(srv, vmbus_get32(m, 8));
	if (ch)
		close_channel(ch);
}

static void on_relid_released(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_RELID_RELEASED)
		return;
	struct vmbus_channel *ch = find_channel(srv, vmbus_get32(m, 8));
	if (ch && ch->rescinded) {
		close_channel(ch);
		/* The guest tears no GPADL down after a rescind: drop them here. */
		for (struct vmbus_gpadl *g = srv->gpadls, *next; g; g = next) {
			next = g->next;
			if (g->relid == ch->relid)
				free_gpadl(srv, g);
		}
		free_channel(srv, ch);
	}
}

static void on_modify(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_MODIFYCHANNEL) {
		log_guest("vmbus: MODIFYCHANNEL of %zu bytes refused", len);
		if (len >= 12 && srv->version >= VMBUS_VERSION_WIN10_V5_3)
			reply32(srv, CHANNELMSG_MODIFYCHANNEL_RESPONSE,
				MSG_MODIFYCHANNEL_RESPONSE, vmbus_get32(m, 8), 1, 0);
		return;
	}
	uint32_t relid = vmbus_get32(m, 8), vp = vmbus_get32(m, 12);
	struct vmbus_channel *ch = find_channel(srv, relid);
	uint32_t status = 0;
	if (!ch || vp >= srv->cfg.nvps) {
		log_guest("vmbus: MODIFYCHANNEL relid %u to VP %u refused", relid, vp);
		status = 1;
	} else {
		ch->target_vp = vp;
	}
	if (srv->version >= VMBUS_VERSION_WIN10_V5_3)
		reply32(srv, CHANNELMSG_MODIFYCHANNEL_RESPONSE, MSG_MODIFYCHANNEL_RESPONSE,
			relid, status, 0);
}

/*
 * hv_sock connect() from the guest: {guest endpoint GUID, host service GUID}.
 * Linux has no reply message for it (the guest's connect() times out unless
 * the host offers a channel), so without a handler it is only logged.
 */
static void on_tl_connect(struct vmbus_server *srv, const uint8_t *m, size_t len)
{
	if (len < MSG_TL_CONNECT_REQUEST) {
		log_guest("vmbus: TL_CONNECT_REQUEST of %zu bytes ignored", len);
		return;
	}
	if (!srv->tl_connect) {
		log_guest_debug("vmbus: TL_CONNECT_REQUEST ignored (no hv_sock service)");
		return;
	}
	struct vmbus_guid guest_endpoint, host_service;
	memcpy(guest_endpoint.b, m + 8, 16);
	memcpy(host_service.b, m + 24, 16);
	srv->tl_connect(srv->tl_connect_opaque, &guest_endpoint, &host_service);
}

void vmbus_set_tl_connect_handler(struct vmbus_server *srv, vmbus_tl_connect_fn fn,
				  void *opaque)
{
	vmbus_lock(srv);
	srv->tl_connect = fn;
	srv->tl_connect_opaque = opaque;
	vmbus_unlock(srv);
}

uint16_t vmbus_server_post_message(struct vmbus_server *srv, uint32_t conn_id,
				   uint32_t mtype, const void *data, size_t len)
{
	if (conn_id != VMBUS_MESSAGE_CONNECTION_ID && conn_id != VMBUS_MESSAGE_CONNECTION_ID_4)
		return VMBUS_HV_STATUS_INVALID_CONNECTION_ID;
	if (mtype != 1 || len < MSG_HDR || len > VMBUS_MSG_MAX) {
		log_guest("vmbus: message of type %u, %zu bytes refused", mtype, len);
		return VMBUS_HV_STATUS_INVALID_PARAMETER;
	}
	/* One copy: the guest's input page may change under us. */
	uint8_t m[VMBUS_MSG_MAX];
	memcpy(m, data, len);
	uint32_t type = vmbus_get32(m, 0);
	vmbus_lock(srv);
	flush_locked(srv);
	/* UNLOAD is answered even unconnected: a crashing guest polls for it. */
	if (!srv->version && type != CHANNELMSG_INITIATE_CONTACT &&
	    type != CHANNELMSG_UNLOAD) {
		vmbus_unlock(srv);
		log_guest("vmbus: message %u before INITIATE_CONTACT ignored", type);
		return VMBUS_HV_STATUS_SUCCESS;
	}
	switch (type) {
	case CHANNELMSG_INITIATE_CONTACT:
		on_initiate_contact(srv, m, len);
		break;
	case CHANNELMSG_REQUESTOFFERS:
		on_request_offers(srv);
		break;
	case CHANNELMSG_GPADL_HEADER:
		on_gpadl_header(srv, m, len);
		break;
	case CHANNELMSG_GPADL_BODY:
		on_gpadl_body(srv, m, len);
		break;
	case CHANNELMSG_GPADL_TEARDOWN:
		on_gpadl_teardown(srv, m, len);
		break;
	case CHANNELMSG_OPENCHANNEL:
		on_open(srv, m, len);
		break;
	case CHANNELMSG_CLOSECHANNEL:
		on_close(srv, m, len);
		break;
	case CHANNELMSG_RELID_RELEASED:
		on_relid_released(srv, m, len);
		break;
	case CHANNELMSG_UNLOAD:
		disconnect(srv);
		reply32(srv, CHANNELMSG_UNLOAD_RESPONSE, MSG_HDR, 0, 0, 0);
		break;
	case CHANNELMSG_MODIFYCHANNEL:
		on_modify(srv, m, len);
		break;
	case CHANNELMSG_TL_CONNECT_REQUEST:
		on_tl_connect(srv, m, len);
		break;
	default:
		log_guest("vmbus: unknown channel message %u ignored", type);
		break;
	}
	vmbus_unlock(srv);
	return VMBUS_HV_STATUS_SUCCESS;
}

uint16_t vmbus_server_signal_event(struct vmbus_server *srv, uint32_t conn_id)
{
	uint16_t status = VMBUS_HV_STATUS_INVALID_CONNECTION_ID;
	vmbus_lock(srv);
	flush_locked(srv);
	if (conn_id > VMBUS_CONN_ID_BASE && conn_id <= VMBUS_CONN_ID_BASE + VMBUS_MAX_RELID) {
		struct vmbus_channel *ch = find_channel(srv, conn_id - VMBUS_CONN_ID_BASE);
		if (ch && ch->open) {
			ch->ops->notify(ch->dev, ch);
			status = VMBUS_HV_STATUS_SUCCESS;
		}
	}
	vmbus_unlock(srv);
	return status;
}

/* ---- offers ---------------------------------------------------------------- */

/* A new channel with the next free relid, offered if a guest is connected. Lock held. */
static int add_channel(struct vmbus_server *srv, const struct vmbus_offer *offer,
		       const struct vmbus_device_ops *ops, void *dev,
		       struct vmbus_channel **out)
{
	uint32_t relid = 0;
	for (uint32_t r = 1; r <= VMBUS_MAX_RELID; r++) {
		if (!(srv->relid_used[r / 8] & (1u << (r % 8)))) {
			relid = r;
			break;
		}
	}
	struct vmbus_channel *ch = relid ? calloc(1, sizeof(*ch)) : NULL;
	if (!ch)
		return relid ? -ENOMEM : -ENOSPC;
	srv->relid_used[relid / 8] |= (uint8_t)(1u << (relid % 8));
	ch->srv = srv;
	ch->offer = *offer;
	ch->ops = ops;
	ch->dev = dev;
	ch->relid = relid;
	ch->conn_id = VMBUS_CONN_ID_BASE + relid;
	/* Keep the list in relid order so offers go out in a stable order. */
	struct vmbus_channel **pp = &srv->channels;
	while (*pp && (*pp)->relid < relid)
		pp = &(*pp)->next;
	ch->next = *pp;
	*pp = ch;
	if (srv->version)
		send_offer(srv, ch);
	*out = ch;
	return 0;
}

int vmbus_offer(struct vmbus_server *srv, const struct vmbus_offer *offer,
		const struct vmbus_device_ops *ops, void *dev,
		struct vmbus_channel **out)
{
	vmbus_lock(srv);
	for (struct vmbus_channel *c = srv->channels; c; c = c->next) {
		if (!c->rescinded && !memcmp(&c->offer.if_type, &offer->if_type, 16) &&
		    !memcmp(&c->offer.if_instance, &offer->if_instance, 16) &&
		    c->offer.sub_channel_index == offer->sub_channel_index) {
			vmbus_unlock(srv);
			return -EEXIST;
		}
	}
	int ret = add_channel(srv, offer, ops, dev, out);
	vmbus_unlock(srv);
	return ret;
}

/* Withdraws an offer: RESCIND to a connected guest, else closed and freed. Lock held. */
static void rescind_locked(struct vmbus_server *srv, struct vmbus_channel *ch)
{
	if (srv->version && ch->offered) {
		ch->rescinded = true;
		reply32(srv, CHANNELMSG_RESCIND_CHANNELOFFER, MSG_RESCIND, ch->relid, 0, 0);
		/* Freed at RELID_RELEASED or when the connection goes away. */
	} else {
		close_channel(ch);
		free_channel(srv, ch);
	}
}

/*
 * The primary is closing or going: its sub-channels go too (closed, then
 * rescinded, or freed when no guest is connected). One at a time, from the
 * head, since freeing changes the list. Lock held.
 */
static void withdraw_subchannels(struct vmbus_channel *primary)
{
	struct vmbus_server *srv = primary->srv;
	for (unsigned guard = 0; guard <= VMBUS_MAX_RELID; guard++) {
		struct vmbus_channel *c = srv->channels;
		while (c && !(c->sub && c->primary == primary))
			c = c->next;
		if (!c)
			return;
		c->primary = NULL;
		close_one(c);
		rescind_locked(srv, c);
	}
}

void vmbus_rescind(struct vmbus_channel *ch)
{
	struct vmbus_server *srv = ch->srv;
	vmbus_lock(srv);
	if (!ch->sub)
		withdraw_subchannels(ch);
	rescind_locked(srv, ch);
	vmbus_unlock(srv);
}

/* ---- sub-channels ------------------------------------------------------------ */

int vmbus_channel_request_subchannels(struct vmbus_channel *primary, unsigned n)
{
	if (primary->sub || n == 0 || n > VMBUS_MAX_SUBCHANNELS)
		return -EINVAL;
	unsigned none = 0;
	if (!atomic_compare_exchange_strong(&primary->sub_request, &none, n))
		return -EALREADY;
	struct vmbus_server *srv = primary->srv;
	atomic_store(&srv->flush_needed, true);
	if (srv->host.request_flush)
		srv->host.request_flush(srv->host.opaque);
	return 0;
}

/* Offers the n sub-channels primary asked for. Lock held. */
static void make_subchannels(struct vmbus_server *srv, struct vmbus_channel *primary, unsigned n)
{
	struct vmbus_offer o = primary->offer;
	for (unsigned i = 1; i <= n; i++) {
		o.sub_channel_index = (uint16_t)i;
		struct vmbus_channel *c;
		int ret = add_channel(srv, &o, primary->ops, primary->dev, &c);
		if (ret < 0) {
			log_warn("vmbus: sub-channel %u of relid %u not offered: %s", i,
				 primary->relid, strerror(-ret));
			return;
		}
		c->sub = true;
		c->primary = primary;
	}
}

static void flush_locked(struct vmbus_server *srv)
{
	if (!atomic_exchange(&srv->flush_needed, false))
		return;
	/* New sub-channels enter the list as we walk it; they are skipped (sub). */
	for (struct vmbus_channel *ch = srv->channels; ch; ch = ch->next) {
		if (ch->sub || ch->subs_made)
			continue;
		unsigned n = atomic_load(&ch->sub_request);
		if (!n || !ch->open || ch->rescinded || !srv->version)
			continue;
		ch->subs_made = true;
		make_subchannels(srv, ch, n);
	}
}

void vmbus_server_flush(struct vmbus_server *srv)
{
	vmbus_lock(srv);
	flush_locked(srv);
	vmbus_unlock(srv);
}

unsigned vmbus_channel_subchannel_index(const struct vmbus_channel *ch)
{
	return ch->offer.sub_channel_index;
}

uint32_t vmbus_channel_target_vp(const struct vmbus_channel *ch)
{
	return ch->target_vp;
}

uint32_t vmbus_channel_relid(const struct vmbus_channel *ch)
{
	return ch->relid;
}

struct vmbus_server *vmbus_channel_server(const struct vmbus_channel *ch)
{
	return ch->srv;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vmbus_guid_parse(const char *s, struct vmbus_guid *g)
{
	/* Text order of the 16 bytes; the first three fields are little-endian. */
	static const int wire[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	uint8_t text[16];
	int n = 0;
	for (int i = 0; s[i]; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		if (n >= 32)
			return -EINVAL;
		int v = hexval(s[i]);
		if (v < 0)
			return -EINVAL;
		if (n % 2 == 0)
			text[n / 2] = (uint8_t)(v << 4);
		else
			text[n / 2] |= (uint8_t)v;
		n++;
	}
	if (n != 32 || strlen(s) != 36)
		return -EINVAL;
	for (int i = 0; i < 16; i++)
		g->b[wire[i]] = text[i];
	return 0;
}

/* ---- inspect ---------------------------------------------------------------- */

void vmbus_guid_format(const struct vmbus_guid *g, char out[37])
{
	const uint8_t *b = g->b; /* wire order: the first three fields little-endian */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
}

static void inspect_ring(struct inspect *in, const struct vmbus_ring *r)
{
	inspect_u64(in, "size", r->size);
	if (!r->hdr)
		return;
	/* The guest shares these: shown as found, never trusted. */
	inspect_u64(in, "write_index", __atomic_load_n((const uint32_t *)(r->hdr + RING_WRITE_INDEX),
						     __ATOMIC_RELAXED));
	inspect_u64(in, "read_index", __atomic_load_n((const uint32_t *)(r->hdr + RING_READ_INDEX),
						    __ATOMIC_RELAXED));
	inspect_bool(in, "interrupt_mask",
		     __atomic_load_n((const uint32_t *)(r->hdr + RING_INTERRUPT_MASK),
				     __ATOMIC_RELAXED) != 0);
	inspect_bool(in, "broken", r->broken);
}

static void inspect_ring_in(struct inspect *in, void *opaque)
{
	inspect_ring(in, &((struct vmbus_channel *)opaque)->in);
}

static void inspect_ring_out(struct inspect *in, void *opaque)
{
	inspect_ring(in, &((struct vmbus_channel *)opaque)->out);
}

static void inspect_channel(struct inspect *in, void *opaque)
{
	struct vmbus_channel *ch = opaque;
	char g[37];
	vmbus_guid_format(&ch->offer.if_type, g);
	inspect_str(in, "class", g);
	vmbus_guid_format(&ch->offer.if_instance, g);
	inspect_str(in, "instance", g);
	inspect_str(in, "state", ch->rescinded ? "rescinded" : ch->open ? "open"
				 : ch->offered ? "offered" : "not offered");
	if (ch->sub)
		inspect_u64(in, "sub_channel_index", ch->offer.sub_channel_index);
	inspect_u64(in, "connection_id", ch->conn_id);
	inspect_u64(in, "target_vp", ch->target_vp);
	if (ch->open) {
		inspect_child(in, "ring_in", inspect_ring_in, ch);
		inspect_child(in, "ring_out", inspect_ring_out, ch);
	}
}

static void inspect_channels(struct inspect *in, void *opaque)
{
	struct vmbus_server *srv = opaque;
	for (struct vmbus_channel *ch = srv->channels; ch; ch = ch->next)
		inspect_child_index(in, ch->relid, inspect_channel, ch);
}

void vmbus_server_inspect(struct vmbus_server *srv, struct inspect *in)
{
	vmbus_lock(srv);
	inspect_hex(in, "version", srv->version);
	inspect_u64(in, "target_vp", srv->target_vp);
	inspect_u64(in, "gpadls", srv->ngpadls);
	inspect_u64(in, "gpadl_pages", srv->gpadl_pages);
	inspect_child(in, "channels", inspect_channels, srv);
	vmbus_unlock(srv);
}
