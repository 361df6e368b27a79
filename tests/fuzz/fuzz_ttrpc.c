/*
 * libFuzzer harness: the diagnostics protocol's parsers of peer input
 * (src/diag): the ttrpc frame decoder fed in fuzz-chosen chunk sizes with a
 * small size limit (so oversized frames and their skipping are reached), each
 * frame unpacked as a Request and its payload as every diag request message
 * (what hvmm-agent parses); the client's response reader (diag_client_recv,
 * what hvmm-diag parses) over a socket holding the input; and the kmsg
 * record formatter. The first byte picks the target. Invariants: frames
 * never exceed the limit, a decoded frame's payload lies in the input, the
 * client returns only its documented results.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "diag/diag.pb-c.h"
#include "diag/diag_client.h"
#include "diag/ttrpc.h"
#include "diag/ttrpc.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT 4096

static void unpack_all(const uint8_t *p, size_t n)
{
	Ttrpc__Request *req = ttrpc__request__unpack(NULL, n, p);
	if (req) {
		const ProtobufCMessageDescriptor *d[] = {
			&diag__exec_request__descriptor, &diag__wait_request__descriptor,
			&diag__kmsg_request__descriptor, &diag__file_request__descriptor,
			&diag__empty__descriptor,
		};
		for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
			ProtobufCMessage *m =
				protobuf_c_message_unpack(d[i], NULL, req->payload.len, req->payload.data);
			if (m)
				protobuf_c_message_free_unpacked(m, NULL);
		}
		ttrpc__request__free_unpacked(req, NULL);
	}
	Ttrpc__Response *resp = ttrpc__response__unpack(NULL, n, p);
	if (resp)
		ttrpc__response__free_unpacked(resp, NULL);
}

static void fuzz_decoder(const uint8_t *data, size_t size)
{
	struct ttrpc_decoder d;
	struct ttrpc_hdr h;
	const uint8_t *p;
	size_t off = 0;
	unsigned step = 0;

	ttrpc_decoder_init(&d, LIMIT);
	while (off < size) {
		/* Chunk sizes 1..64 from the data itself. */
		size_t chunk = (size_t)(data[off] & 63) + 1;
		off++;
		if (chunk > size - off)
			chunk = size - off;
		if (ttrpc_decoder_feed(&d, data + off, chunk) < 0)
			abort();
		off += chunk;
		int r;
		while ((r = ttrpc_decoder_next(&d, &h, &p)) != 0) {
			if (r == -EMSGSIZE) {
				if (h.length <= LIMIT)
					abort();
				continue;
			}
			if (r != 1 || h.length > LIMIT || p < d.buf || p + h.length > d.buf + d.len)
				abort();
			unpack_all(p, h.length);
			if (++step > 100000)
				abort();
		}
	}
	ttrpc_decoder_free(&d);
}

static int dial_fd = -1;

static int fake_dial(void *opaque, uint32_t port, char *err, size_t errlen)
{
	(void)opaque;
	(void)port;
	(void)err;
	(void)errlen;
	return dial_fd;
}

static void fuzz_client(const uint8_t *data, size_t size)
{
	int sv[2];
	struct diag_client c;
	ProtobufCMessage *m = NULL;

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return;
	int sz = 1 << 18;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (size && write(sv[0], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	close(sv[0]);
	dial_fd = sv[1];
	if (diag_client_open(&c, fake_dial, NULL) != 0)
		abort();
	int r = diag_client_recv(&c, 1, &diag__wait_response__descriptor, &m);
	if (r == 0) {
		if (!m)
			abort();
		protobuf_c_message_free_unpacked(m, NULL);
	} else if (r < 0 && r != -EPROTO && r != -ECONNRESET) {
		abort();
	}
	diag_client_close(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_decoder(data + 1, size - 1);
		break;
	case 1:
		fuzz_client(data + 1, size - 1);
		break;
	default: {
		char out[256];
		diag_kmsg_format((const char *)data + 1, size - 1, out, sizeof(out));
		if (!memchr(out, '\0', sizeof(out)))
			abort();
	}
	}
	return 0;
}
