/* ttrpc: the framing and request/response envelopes of containerd's ttrpc
 * protocol, as OpenVMM's mesh_rpc (support/mesh/mesh_rpc/src/message.rs)
 * speaks it to OpenHCL's diagnostics server. A frame is a 10-byte header
 * (u32 BE payload length, u32 BE stream id, u8 type, u8 flags) and a
 * protobuf payload: a Request{service, method, payload, timeout_nano,
 * metadata} on type 1, a Response{status | payload} on type 2. Clients use
 * odd stream ids. Everything read from a peer is hostile: lengths are capped
 * before any allocation and partial frames are kept until complete.
 */
#ifndef HVMM_DIAG_TTRPC_H
#define HVMM_DIAG_TTRPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define TTRPC_HDR_SIZE 10
#define TTRPC_MSG_REQUEST 1
#define TTRPC_MSG_RESPONSE 2
#define TTRPC_MSG_DATA 3 /* streaming ttrpc; mesh_rpc never sends it */
/* Our receive limit. ttrpc's spec says 4 MiB; mesh_rpc accepts up to
 * 0xffffff (the top byte is reserved), and so do we. */
#define TTRPC_MAX_MSG 0xffffffu

/* google.rpc.Code values used by ttrpc statuses. */
#define TTRPC_CODE_OK 0
#define TTRPC_CODE_UNKNOWN 2
#define TTRPC_CODE_INVALID_ARGUMENT 3
#define TTRPC_CODE_NOT_FOUND 5
#define TTRPC_CODE_RESOURCE_EXHAUSTED 8
#define TTRPC_CODE_UNIMPLEMENTED 12
#define TTRPC_CODE_INTERNAL 13

struct ttrpc_hdr {
	uint32_t length;
	uint32_t stream_id;
	uint8_t type;
	uint8_t flags;
};

void ttrpc_hdr_encode(uint8_t out[TTRPC_HDR_SIZE], const struct ttrpc_hdr *h);
void ttrpc_hdr_decode(const uint8_t in[TTRPC_HDR_SIZE], struct ttrpc_hdr *h);

/* An incremental frame decoder over a byte stream. Feed it whatever arrived,
 * then take complete frames with ttrpc_decoder_next. */
struct ttrpc_decoder {
	uint8_t *buf;     /* received, not yet consumed bytes */
	size_t len, cap;
	size_t max_msg;   /* payload length limit (<= TTRPC_MAX_MSG) */
	uint64_t skip;    /* payload bytes of an oversized frame still to drop */
	size_t consumed;  /* bytes of buf the last returned frame used */
};

/* max_msg 0 means TTRPC_MAX_MSG. Never fails (the buffer grows on demand). */
void ttrpc_decoder_init(struct ttrpc_decoder *d, size_t max_msg);
void ttrpc_decoder_free(struct ttrpc_decoder *d);
/* Appends n bytes. Returns 0 or -ENOMEM. Bytes of an oversized frame being
 * skipped are dropped here, never stored. */
int ttrpc_decoder_feed(struct ttrpc_decoder *d, const void *data, size_t n);
/* Takes the next frame: returns 1 with *h and *payload (valid until the next
 * feed/next call), 0 when more bytes are needed, -EMSGSIZE when a frame's
 * length exceeds max_msg (*h is filled; its payload is skipped as it
 * arrives, the stream stays usable: answer it with an error status). */
int ttrpc_decoder_next(struct ttrpc_decoder *d, struct ttrpc_hdr *h, const uint8_t **payload);

/* Builds one frame (header + packed message) in a malloc'd buffer: *out,
 * *out_len. msg may be NULL for an empty payload. Returns 0, -ENOMEM or
 * -EMSGSIZE (packed size above TTRPC_MAX_MSG). */
int ttrpc_frame_message(uint32_t stream_id, uint8_t type, const ProtobufCMessage *msg,
			uint8_t **out, size_t *out_len);
/* A request frame: service "diag.UnderhillDiag", method "Kmsg", the packed
 * argument (NULL: empty), timeout in ns (0: none). */
int ttrpc_frame_request(uint32_t stream_id, const char *service, const char *method,
			const ProtobufCMessage *arg, uint64_t timeout_ns, uint8_t **out,
			size_t *out_len);
/* A response frame: code TTRPC_CODE_OK with the packed result (NULL: empty),
 * or another code with message (no payload). */
int ttrpc_frame_response(uint32_t stream_id, int32_t code, const char *message,
			 const ProtobufCMessage *result, uint8_t **out, size_t *out_len);

/* Blocking helpers over a stream socket (EINTR retried, short writes
 * continued). write_all returns 0 or -errno; read_frame reads until one
 * complete frame is decoded: 1 with *h and *payload (owned by d), 0 on a clean
 * EOF between frames, -EPROTO on EOF inside a frame, -EMSGSIZE for an
 * oversized frame, -errno on a read error. */
int ttrpc_write_all(int fd, const void *buf, size_t len);
int ttrpc_read_frame(int fd, struct ttrpc_decoder *d, struct ttrpc_hdr *h,
		     const uint8_t **payload);

#endif
