/*
 * VMBus ring buffers and GPADL access (Linux drivers/hv/ring_buffer.c,
 * include/linux/hyperv.h hv_ring_buffer and vmpacket_descriptor): the host
 * reads the guest-to-host ring and writes the host-to-guest ring of an open
 * channel. A ring is a 4 KiB header page (write index, read index, interrupt
 * mask, pending send size, feature bits) and data pages that the GPADL
 * names, not necessarily contiguous in the host. Packets are a 16-byte
 * descriptor, payload padded to 8 bytes, and an 8-byte trailer; they may
 * wrap. The host keeps its own copy of the index it owns and treats the
 * guest's indexes and descriptors as hostile: anything out of range marks
 * the ring broken (-EPROTO) instead of being followed.
 */
#include "vmbus/vmbus_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

struct vmbus_gpadl *vmbus_gpadl_find(struct vmbus_server *srv, uint32_t id)
{
	for (struct vmbus_gpadl *g = srv->gpadls; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

bool vmbus_gpadl_map(struct vmbus_server *srv, struct vmbus_gpadl *g)
{
	uint8_t **pages = calloc(g->npages, sizeof(*pages));
	if (!pages)
		return false;
	for (uint32_t i = 0; i < g->npages; i++) {
		uint64_t pfn = g->pfns[i];
		if (pfn >> 52) {
			free(pages);
			return false;
		}
		pages[i] = srv->host.map(srv->host.opaque, pfn << 12, VMBUS_PAGE);
		if (!pages[i]) {
			free(pages);
			return false;
		}
	}
	g->pages = pages;
	return true;
}

/* Shared ring-header fields are accessed atomically; each access says why. */
static uint32_t hdr_load(const struct vmbus_ring *r, size_t off)
{
	return atomic_load_explicit((_Atomic uint32_t *)(r->hdr + off), memory_order_acquire);
}

static void hdr_store(struct vmbus_ring *r, size_t off, uint32_t v)
{
	atomic_store_explicit((_Atomic uint32_t *)(r->hdr + off), v, memory_order_release);
}

int vmbus_rings_attach(struct vmbus_channel *ch, struct vmbus_gpadl *g,
		       uint32_t downstream)
{
	/* [guest-to-host header, data...][host-to-guest header, data...] */
	if (g->byte_count % VMBUS_PAGE || g->npages < 4 || downstream < 2 ||
	    downstream > g->npages - 2)
		return -EINVAL;
	ch->in = (struct vmbus_ring){
		.hdr = g->pages[0], .data = g->pages + 1, .npages = downstream - 1,
	};
	ch->out = (struct vmbus_ring){
		.hdr = g->pages[downstream], .data = g->pages + downstream + 1,
		.npages = g->npages - downstream - 1,
	};
	ch->in.size = ch->in.npages * VMBUS_PAGE;
	ch->out.size = ch->out.npages * VMBUS_PAGE;
	/* Our indexes start where the guest's header says (0 on a fresh ring). */
	ch->in.priv_index = hdr_load(&ch->in, RING_READ_INDEX);
	ch->out.priv_index = hdr_load(&ch->out, RING_WRITE_INDEX);
	if (ch->in.priv_index >= ch->in.size || ch->in.priv_index % 8 ||
	    ch->out.priv_index >= ch->out.size || ch->out.priv_index % 8) {
		/* Refused: the channel must not keep pointers into this GPADL. */
		vmbus_rings_detach(ch);
		return -EINVAL;
	}
	/* We honour pending_send_sz on both sides (feature bit 0). */
	hdr_store(&ch->out, RING_FEATURE_BITS, hdr_load(&ch->out, RING_FEATURE_BITS) | 1);
	hdr_store(&ch->in, RING_FEATURE_BITS, hdr_load(&ch->in, RING_FEATURE_BITS) | 1);
	g->in_use = true;
	ch->ring_gpadl = g;
	return 0;
}

void vmbus_rings_detach(struct vmbus_channel *ch)
{
	if (ch->ring_gpadl)
		ch->ring_gpadl->in_use = false;
	ch->ring_gpadl = NULL;
	memset(&ch->in, 0, sizeof(ch->in));
	memset(&ch->out, 0, sizeof(ch->out));
}

/* Copies len bytes at data offset off (wrapping) out of / into a ring. */
static void ring_read(const struct vmbus_ring *r, uint32_t off, void *dst, uint32_t len)
{
	uint8_t *d = dst;
	while (len) {
		uint32_t page = off / VMBUS_PAGE, in = off % VMBUS_PAGE;
		uint32_t n = VMBUS_PAGE - in < len ? VMBUS_PAGE - in : len;
		memcpy(d, r->data[page] + in, n);
		d += n;
		len -= n;
		off = (off + n) % r->size;
	}
}

static void ring_write(struct vmbus_ring *r, uint32_t off, const void *src, uint32_t len)
{
	const uint8_t *s = src;
	while (len) {
		uint32_t page = off / VMBUS_PAGE, in = off % VMBUS_PAGE;
		uint32_t n = VMBUS_PAGE - in < len ? VMBUS_PAGE - in : len;
		memcpy(r->data[page] + in, s, n);
		s += n;
		len -= n;
		off = (off + n) % r->size;
	}
}

static int ring_broken(struct vmbus_channel *ch, struct vmbus_ring *r, const char *what)
{
	if (!r->broken)
		log_guest("vmbus: relid %u: %s; channel stopped until reopened", ch->relid, what);
	r->broken = true;
	return -EPROTO;
}

/* Next packet's descriptor; 0, -EAGAIN (empty) or -EPROTO. */
static int peek(struct vmbus_channel *ch, struct vmbus_packet_info *info, uint32_t *total)
{
	struct vmbus_ring *r = &ch->in;
	if (!r->hdr)
		return -EPIPE;
	if (r->broken)
		return -EPROTO;
	uint32_t read = r->priv_index;
	/* Pairs with the guest's release of write_index after the packet. */
	uint32_t write = hdr_load(r, RING_WRITE_INDEX);
	if (write == read) {
		/* Empty: make sure the guest signals the next write, then look again. */
		hdr_store(r, RING_INTERRUPT_MASK, 0);
		atomic_thread_fence(memory_order_seq_cst);
		write = hdr_load(r, RING_WRITE_INDEX);
		if (write == read)
			return -EAGAIN;
	}
	if (write >= r->size || write % 8)
		return ring_broken(ch, r, "guest write index out of range");
	uint32_t avail = write >= read ? write - read : r->size - read + write;
	if (avail < VMBUS_PKT_DESC + VMBUS_PKT_TRAILER)
		return ring_broken(ch, r, "truncated packet");
	uint8_t d[VMBUS_PKT_DESC];
	ring_read(r, read, d, sizeof(d));
	info->type = vmbus_get16(d, 0);
	info->data_offset = (uint32_t)vmbus_get16(d, 2) * 8;
	info->len = (uint32_t)vmbus_get16(d, 4) * 8;
	info->flags = vmbus_get16(d, 6);
	info->trans_id = vmbus_get64(d, 8);
	if (info->len < VMBUS_PKT_DESC || info->data_offset < VMBUS_PKT_DESC ||
	    info->data_offset > info->len || info->len + VMBUS_PKT_TRAILER > avail)
		return ring_broken(ch, r, "bad packet descriptor");
	*total = info->len + VMBUS_PKT_TRAILER;
	return 0;
}

static void consume(struct vmbus_channel *ch, uint32_t total)
{
	struct vmbus_ring *r = &ch->in;
	uint32_t old = r->priv_index;
	r->priv_index = (old + total) % r->size;
	/* Release: our reads of the packet happen before the guest reuses it. */
	hdr_store(r, RING_READ_INDEX, r->priv_index);
	atomic_thread_fence(memory_order_seq_cst);
	/* A guest blocked on a full ring asked to be told when room appears. */
	uint32_t pending = hdr_load(r, RING_PENDING_SEND_SZ);
	if (pending) {
		uint32_t write = hdr_load(r, RING_WRITE_INDEX) % r->size;
		uint32_t used = write >= r->priv_index ? write - r->priv_index :
			r->size - r->priv_index + write;
		uint32_t used_before = used + total;
		/* The guest's own rule (hv_pkt_iter_close): free space crossed it. */
		if (r->size - used > pending && r->size - used_before <= pending)
			ch->srv->host.signal_event(ch->srv->host.opaque, ch->target_vp, ch->relid);
	}
}

int vmbus_channel_recv(struct vmbus_channel *ch, void *buf, size_t buflen,
		       struct vmbus_packet_info *info)
{
	uint32_t total;
	int ret = peek(ch, info, &total);
	if (ret < 0)
		return ret;
	if (info->len > buflen)
		return -EMSGSIZE;
	ring_read(&ch->in, ch->in.priv_index, buf, info->len);
	consume(ch, total);
	return (int)info->len;
}

int vmbus_channel_skip(struct vmbus_channel *ch)
{
	struct vmbus_packet_info info;
	uint32_t total;
	int ret = peek(ch, &info, &total);
	if (ret < 0)
		return ret;
	consume(ch, total);
	return 0;
}

size_t vmbus_channel_send_space(struct vmbus_channel *ch)
{
	struct vmbus_ring *r = &ch->out;
	if (!r->hdr || r->broken)
		return 0;
	uint32_t read = hdr_load(r, RING_READ_INDEX);
	if (read >= r->size || read % 8)
		return 0;
	uint32_t write = r->priv_index;
	uint32_t used = write >= read ? write - read : r->size - read + write;
	uint32_t free_bytes = r->size - used;
	/* Strictly more than the packet must be free; keep the trailer too. */
	return free_bytes > VMBUS_PKT_DESC + VMBUS_PKT_TRAILER + 8 ?
		free_bytes - VMBUS_PKT_DESC - VMBUS_PKT_TRAILER - 8 : 0;
}

int vmbus_channel_send(struct vmbus_channel *ch, uint16_t type, uint16_t flags,
		       uint64_t trans_id, const void *hdr, size_t hdrlen,
		       const void *data, size_t len)
{
	struct vmbus_ring *r = &ch->out;
	if (!r->hdr)
		return -EPIPE;
	if (r->broken)
		return -EPROTO;
	if (hdrlen % 8 || hdrlen > 4096 || len > r->size)
		return -EINVAL;
	uint32_t off = VMBUS_PKT_DESC + (uint32_t)hdrlen;
	uint32_t pkt = (off + (uint32_t)len + 7) & ~7u;
	uint32_t need = pkt + VMBUS_PKT_TRAILER;
	if (pkt / 8 > 0xFFFF || off / 8 > 0xFFFF)
		return -EINVAL;
	uint32_t write = r->priv_index;
	uint32_t read = hdr_load(r, RING_READ_INDEX);
	if (read >= r->size || read % 8)
		return ring_broken(ch, r, "guest read index out of range");
	uint32_t used = write >= read ? write - read : r->size - read + write;
	if (r->size - used <= need) {
		/* Full: ask the guest to signal once `need` bytes are free. */
		/* The guest signals once free space exceeds it (hv_pkt_iter_close). */
		hdr_store(r, RING_PENDING_SEND_SZ, need);
		atomic_thread_fence(memory_order_seq_cst);
		read = hdr_load(r, RING_READ_INDEX);
		if (read >= r->size || read % 8)
			return ring_broken(ch, r, "guest read index out of range");
		used = write >= read ? write - read : r->size - read + write;
		if (r->size - used <= need)
			return -EAGAIN;
	}
	if (hdr_load(r, RING_PENDING_SEND_SZ))
		hdr_store(r, RING_PENDING_SEND_SZ, 0);
	uint8_t d[VMBUS_PKT_DESC];
	vmbus_put16(d, 0, type);
	vmbus_put16(d, 2, (uint16_t)(off / 8));
	vmbus_put16(d, 4, (uint16_t)(pkt / 8));
	vmbus_put16(d, 6, flags);
	vmbus_put64(d, 8, trans_id);
	uint32_t w = write;
	ring_write(r, w, d, sizeof(d));
	w = (w + VMBUS_PKT_DESC) % r->size;
	if (hdrlen) {
		ring_write(r, w, hdr, (uint32_t)hdrlen);
		w = (w + (uint32_t)hdrlen) % r->size;
	}
	if (len) {
		ring_write(r, w, data, (uint32_t)len);
		w = (w + (uint32_t)len) % r->size;
	}
	static const uint8_t pad[8];
	uint32_t padlen = pkt - off - (uint32_t)len;
	if (padlen) {
		ring_write(r, w, pad, padlen);
		w = (w + padlen) % r->size;
	}
	uint8_t trailer[8];
	vmbus_put64(trailer, 0, (uint64_t)write << 32);
	ring_write(r, w, trailer, sizeof(trailer));
	w = (w + VMBUS_PKT_TRAILER) % r->size;
	r->priv_index = w;
	/* Release: the packet is complete before the guest sees the index. */
	hdr_store(r, RING_WRITE_INDEX, w);
	atomic_thread_fence(memory_order_seq_cst);
	/* Linux's rule (hv_signal_on_write): signal when the guest is not
	 * masking and had consumed everything before this packet. */
	if (!hdr_load(r, RING_INTERRUPT_MASK) && hdr_load(r, RING_READ_INDEX) == write)
		ch->srv->host.signal_event(ch->srv->host.opaque, ch->target_vp, ch->relid);
	return 0;
}

/* ---- GPADLs for devices ----------------------------------------------------- */

static struct vmbus_gpadl *chan_gpadl(struct vmbus_channel *ch, uint32_t id)
{
	struct vmbus_gpadl *g = vmbus_gpadl_find(ch->srv, id);
	return g && g->complete && g->pages && g->relid == ch->relid ? g : NULL;
}

int vmbus_channel_gpadl_len(struct vmbus_channel *ch, uint32_t gpadl_id, uint64_t *len)
{
	vmbus_lock(ch->srv);
	struct vmbus_gpadl *g = chan_gpadl(ch, gpadl_id);
	if (g)
		*len = g->byte_count;
	vmbus_unlock(ch->srv);
	return g ? 0 : -ENOENT;
}

static int gpadl_copy(struct vmbus_channel *ch, uint32_t id, uint64_t off, void *buf,
		      size_t len, bool to_guest)
{
	vmbus_lock(ch->srv);
	struct vmbus_gpadl *g = chan_gpadl(ch, id);
	int ret = 0;
	if (!g)
		ret = -ENOENT;
	else if (off > g->byte_count || len > g->byte_count - off)
		ret = -EINVAL;
	uint8_t *p = buf;
	while (ret == 0 && len) {
		uint64_t page = off / VMBUS_PAGE, in = off % VMBUS_PAGE;
		size_t n = VMBUS_PAGE - in < len ? VMBUS_PAGE - in : len;
		if (to_guest)
			memcpy(g->pages[page] + in, p, n);
		else
			memcpy(p, g->pages[page] + in, n);
		p += n;
		off += n;
		len -= n;
	}
	vmbus_unlock(ch->srv);
	return ret;
}

int vmbus_channel_gpadl_read(struct vmbus_channel *ch, uint32_t gpadl_id,
			     uint64_t off, void *dst, size_t len)
{
	return gpadl_copy(ch, gpadl_id, off, dst, len, false);
}

int vmbus_channel_gpadl_write(struct vmbus_channel *ch, uint32_t gpadl_id,
			      uint64_t off, const void *src, size_t len)
{
	return gpadl_copy(ch, gpadl_id, off, (void *)src, len, true);
}

int vmbus_channel_gpadl_map(struct vmbus_channel *ch, uint32_t gpadl_id,
			    struct vmbus_gpadl_pages *out)
{
	vmbus_lock(ch->srv);
	struct vmbus_gpadl *g = chan_gpadl(ch, gpadl_id);
	int ret = g ? 0 : -ENOENT;
	uint8_t **pages = NULL;
	if (g && !(pages = malloc(g->npages * sizeof(*pages))))
		ret = -ENOMEM;
	if (ret == 0) {
		memcpy(pages, g->pages, g->npages * sizeof(*pages));
		out->pages = pages;
		out->npages = g->npages;
		out->len = g->byte_count;
	}
	vmbus_unlock(ch->srv);
	return ret;
}
