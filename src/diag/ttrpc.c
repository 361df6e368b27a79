/* ttrpc framing and envelopes (containerd's ttrpc protocol as OpenVMM's
 * mesh_rpc speaks it; see ttrpc.h). The decoder never trusts a length: it
 * checks it against max_msg before buffering, and drops the payload of an
 * oversized frame as it arrives instead of storing it.
 */
#include "diag/ttrpc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "diag/ttrpc.pb-c.h"

void ttrpc_hdr_encode(uint8_t out[TTRPC_HDR_SIZE], const struct ttrpc_hdr *h)
{
	out[0] = (uint8_t)(h->length >> 24);
	out[1] = (uint8_t)(h->length >> 16);
	out[2] = (uint8_t)(h->length >> 8);
	out[3] = (uint8_t)h->length;
	out[4] = (uint8_t)(h->stream_id >> 24);
	out[5] = (uint8_t)(h->stream_id >> 16);
	out[6] = (uint8_t)(h->stream_id >> 8);
	out[7] = (uint8_t)h->stream_id;
	out[8] = h->type;
	out[9] = h->flags;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void ttrpc_hdr_decode(const uint8_t in[TTRPC_HDR_SIZE], struct ttrpc_hdr *h)
{
	h->length = be32(in);
	h->stream_id = be32(in + 4);
	h->type = in[8];
	h->flags = in[9];
}

void ttrpc_decoder_init(struct ttrpc_decoder *d, size_t max_msg)
{
	memset(d, 0, sizeof(*d));
	d->max_msg = (max_msg == 0 || max_msg > TTRPC_MAX_MSG) ? TTRPC_MAX_MSG : max_msg;
}

void ttrpc_decoder_free(struct ttrpc_decoder *d)
{
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

/* Drops the bytes the frame returned last used. */
static void decoder_compact(struct ttrpc_decoder *d)
{
	if (d->consumed == 0)
		return;
	memmove(d->buf, d->buf + d->consumed, d->len - d->consumed);
	d->len -= d->consumed;
	d->consumed = 0;
}

int ttrpc_decoder_feed(struct ttrpc_decoder *d, const void *data, size_t n)
{
	const uint8_t *p = data;

	decoder_compact(d);
	if (d->skip > 0 && d->len == 0) {
		size_t drop = d->skip < n ? (size_t)d->skip : n;
		d->skip -= drop;
		p += drop;
		n -= drop;
	}
	if (n == 0)
		return 0;
	if (d->len + n > d->cap) {
		/* Never more than one maximal frame plus what this call adds:
		 * the caller reads at most a few KiB at a time. */
		size_t cap = d->cap ? d->cap : 4096;
		while (cap < d->len + n)
			cap *= 2;
		uint8_t *nb = realloc(d->buf, cap);
		if (!nb)
			return -ENOMEM;
		d->buf = nb;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
	return 0;
}

int ttrpc_decoder_next(struct ttrpc_decoder *d, struct ttrpc_hdr *h, const uint8_t **payload)
{
	decoder_compact(d);
	if (d->skip > 0) {
		/* Bytes fed while an oversized frame's tail was buffered. */
		size_t drop = d->skip < d->len ? (size_t)d->skip : d->len;
		d->skip -= drop;
		d->consumed = drop;
		decoder_compact(d);
		if (d->skip > 0)
			return 0;
	}
	if (d->len < TTRPC_HDR_SIZE)
		return 0;
	ttrpc_hdr_decode(d->buf, h);
	if (h->length > d->max_msg) {
		size_t have = d->len - TTRPC_HDR_SIZE;
		d->consumed = TTRPC_HDR_SIZE;
		if (have >= h->length) {
			d->consumed += h->length;
		} else {
			d->consumed += have;
			d->skip = h->length - have;
		}
		*payload = NULL;
		return -EMSGSIZE;
	}
	if (d->len - TTRPC_HDR_SIZE < h->length)
		return 0;
	*payload = d->buf + TTRPC_HDR_SIZE;
	d->consumed = TTRPC_HDR_SIZE + (size_t)h->length;
	return 1;
}

int ttrpc_frame_message(uint32_t stream_id, uint8_t type, const ProtobufCMessage *msg,
			uint8_t **out, size_t *out_len)
{
	size_t n = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	if (n > TTRPC_MAX_MSG)
		return -EMSGSIZE;
	uint8_t *buf = malloc(TTRPC_HDR_SIZE + n + 1);
	if (!buf)
		return -ENOMEM;
	struct ttrpc_hdr h = { .length = (uint32_t)n, .stream_id = stream_id, .type = type };
	ttrpc_hdr_encode(buf, &h);
	if (msg)
		protobuf_c_message_pack(msg, buf + TTRPC_HDR_SIZE);
	*out = buf;
	*out_len = TTRPC_HDR_SIZE + n;
	return 0;
}

/* Packs msg into a malloc'd buffer (NULL msg: empty). */
static int pack(const ProtobufCMessage *msg, ProtobufCBinaryData *bd)
{
	bd->len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	bd->data = malloc(bd->len + 1);
	if (!bd->data)
		return -ENOMEM;
	if (msg)
		protobuf_c_message_pack(msg, bd->data);
	return 0;
}

int ttrpc_frame_request(uint32_t stream_id, const char *service, const char *method,
			const ProtobufCMessage *arg, uint64_t timeout_ns, uint8_t **out,
			size_t *out_len)
{
	Ttrpc__Request req = TTRPC__REQUEST__INIT;
	req.service = (char *)service;
	req.method = (char *)method;
	req.timeout_nano = (int64_t)timeout_ns;
	int r = pack(arg, &req.payload);
	if (r < 0)
		return r;
	r = ttrpc_frame_message(stream_id, TTRPC_MSG_REQUEST, &req.base, out, out_len);
	free(req.payload.data);
	return r;
}

int ttrpc_frame_response(uint32_t stream_id, int32_t code, const char *message,
			 const ProtobufCMessage *result, uint8_t **out, size_t *out_len)
{
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	Ttrpc__Status status = TTRPC__STATUS__INIT;
	int r;

	if (code != TTRPC_CODE_OK) {
		status.code = code;
		status.message = (char *)(message ? message : "");
		resp.status = &status;
		return ttrpc_frame_message(stream_id, TTRPC_MSG_RESPONSE, &resp.base, out, out_len);
	}
	r = pack(result, &resp.payload);
	if (r < 0)
		return r;
	r = ttrpc_frame_message(stream_id, TTRPC_MSG_RESPONSE, &resp.base, out, out_len);
	free(resp.payload.data);
	return r;
}

int ttrpc_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	bool sock = true;
	while (len > 0) {
		/* send: a peer that hung up is EPIPE, not SIGPIPE. */
		ssize_t n = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
		if (n < 0) {
			if (errno == ENOTSOCK && sock) {
				sock = false;
				continue;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ttrpc_read_frame(int fd, struct ttrpc_decoder *d, struct ttrpc_hdr *h,
		     const uint8_t **payload)
{
	uint8_t chunk[16384];
	for (;;) {
		int r = ttrpc_decoder_next(d, h, payload);
		if (r != 0)
			return r;
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return (d->len - d->consumed) == 0 && d->skip == 0 ? 0 : -EPROTO;
		r = ttrpc_decoder_feed(d, chunk, (size_t)n);
		if (r < 0)
			return r;
	}
}
