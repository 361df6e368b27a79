/*
 * Unit tests for the ttrpc framing and envelopes (src/diag/ttrpc.c): the
 * 10-byte header's byte order, a request's exact protobuf bytes (field
 * numbers as OpenVMM's mesh_rpc and OpenHCL's diag_proto use them), the
 * incremental decoder fed a byte at a time, several frames per read,
 * oversized frames skipped without buffering, responses with status or
 * payload, and EOF inside / between frames on a real socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "diag/diag.pb-c.h"
#include "diag/ttrpc.h"
#include "diag/ttrpc.pb-c.h"

static void test_header(void **state)
{
	(void)state;
	struct ttrpc_hdr h = { .length = 0x01020304, .stream_id = 0x0a0b0c0d, .type = 2,
			       .flags = 0x80 };
	uint8_t b[TTRPC_HDR_SIZE];
	const uint8_t want[] = { 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 2, 0x80 };
	ttrpc_hdr_encode(b, &h);
	assert_memory_equal(b, want, sizeof(want));
	struct ttrpc_hdr d;
	ttrpc_hdr_decode(want, &d);
	assert_int_equal(d.length, 0x01020304);
	assert_int_equal(d.stream_id, 0x0a0b0c0d);
	assert_int_equal(d.type, 2);
	assert_int_equal(d.flags, 0x80);
}

/* Request{service=1, method=2, payload=3{KmsgRequest follow=1, conn=2}}:
 * the bytes OpenHCL's server expects for `ohcldiag-dev kmsg`. */
static void test_request_wire_bytes(void **state)
{
	(void)state;
	Diag__KmsgRequest k = DIAG__KMSG_REQUEST__INIT;
	k.follow = true;
	k.conn = 5;
	uint8_t *f;
	size_t len;
	assert_int_equal(ttrpc_frame_request(7, "diag.UnderhillDiag", "Kmsg", &k.base, 0, &f, &len),
			 0);
	static const uint8_t want[] = {
		0, 0, 0, 32, 0, 0, 0, 7, TTRPC_MSG_REQUEST, 0,
		0x0a, 18, 'd', 'i', 'a', 'g', '.', 'U', 'n', 'd', 'e', 'r', 'h', 'i', 'l', 'l',
		'D', 'i', 'a', 'g',
		0x12, 4, 'K', 'm', 's', 'g',
		0x1a, 4, 0x08, 1, 0x10, 5,
	};
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(f, want, sizeof(want));
	free(f);

	/* ExecRequest's fields: command 1, args 2, tty 3, stdin..stderr 4..6,
	 * env 8 (EnvPair name 1, value 2). */
	Diag__ExecRequest e = DIAG__EXEC_REQUEST__INIT;
	Diag__EnvPair ep = DIAG__ENV_PAIR__INIT;
	Diag__EnvPair *eps[1] = { &ep };
	char *args[1] = { "x" };
	e.command = "sh";
	e.args = args;
	e.n_args = 1;
	e.tty = true;
	e.stdin = 1;
	e.stdout = 2;
	e.stderr = 3;
	ep.name = "T";
	ep.value_present_case = DIAG__ENV_PAIR__VALUE_PRESENT_VALUE;
	ep.value = "";
	e.env = eps;
	e.n_env = 1;
	uint8_t buf[64];
	size_t n = diag__exec_request__pack(&e, buf);
	static const uint8_t ewant[] = { 0x0a, 2, 's', 'h', 0x12, 1, 'x', 0x18, 1, 0x20, 1,
					 0x28, 2, 0x30, 3, 0x42, 5, 0x0a, 1, 'T', 0x12, 0 };
	assert_int_equal(n, sizeof(ewant));
	assert_memory_equal(buf, ewant, sizeof(ewant));
}

static void test_decode_byte_at_a_time(void **state)
{
	(void)state;
	Diag__FileRequest fr = DIAG__FILE_REQUEST__INIT;
	fr.conn = 9;
	fr.file_path = "/proc/cpuinfo";
	uint8_t *f;
	size_t len;
	assert_int_equal(ttrpc_frame_request(3, "diag.UnderhillDiag", "ReadFile", &fr.base, 1000,
					     &f, &len),
			 0);
	struct ttrpc_decoder d;
	struct ttrpc_hdr h;
	const uint8_t *p;
	ttrpc_decoder_init(&d, 0);
	int frames = 0;
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(ttrpc_decoder_feed(&d, f + i, 1), 0);
		int r = ttrpc_decoder_next(&d, &h, &p);
		if (i + 1 < len) {
			assert_int_equal(r, 0);
			continue;
		}
		assert_int_equal(r, 1);
		frames++;
		assert_int_equal(h.stream_id, 3);
		assert_int_equal(h.type, TTRPC_MSG_REQUEST);
		Ttrpc__Request *req = ttrpc__request__unpack(NULL, h.length, p);
		assert_non_null(req);
		assert_string_equal(req->service, "diag.UnderhillDiag");
		assert_string_equal(req->method, "ReadFile");
		assert_int_equal(req->timeout_nano, 1000);
		Diag__FileRequest *g = diag__file_request__unpack(NULL, req->payload.len,
								 req->payload.data);
		assert_non_null(g);
		assert_int_equal(g->conn, 9);
		assert_string_equal(g->file_path, "/proc/cpuinfo");
		diag__file_request__free_unpacked(g, NULL);
		ttrpc__request__free_unpacked(req, NULL);
	}
	assert_int_equal(frames, 1);
	assert_int_equal(ttrpc_decoder_next(&d, &h, &p), 0);
	ttrpc_decoder_free(&d);
	free(f);
}

static void test_two_frames_one_feed(void **state)
{
	(void)state;
	uint8_t *a, *b;
	size_t la, lb;
	Diag__WaitResponse w = DIAG__WAIT_RESPONSE__INIT;
	w.exit_code = 42;
	assert_int_equal(ttrpc_frame_response(1, TTRPC_CODE_OK, NULL, &w.base, &a, &la), 0);
	assert_int_equal(ttrpc_frame_response(3, TTRPC_CODE_NOT_FOUND, "pid not found", NULL, &b,
					      &lb),
			 0);
	uint8_t *both = malloc(la + lb);
	memcpy(both, a, la);
	memcpy(both + la, b, lb);
	struct ttrpc_decoder d;
	struct ttrpc_hdr h;
	const uint8_t *p;
	ttrpc_decoder_init(&d, 0);
	assert_int_equal(ttrpc_decoder_feed(&d, both, la + lb), 0);

	assert_int_equal(ttrpc_decoder_next(&d, &h, &p), 1);
	assert_int_equal(h.stream_id, 1);
	assert_int_equal(h.type, TTRPC_MSG_RESPONSE);
	Ttrpc__Response *r = ttrpc__response__unpack(NULL, h.length, p);
	assert_non_null(r);
	assert_null(r->status);
	Diag__WaitResponse *wr = diag__wait_response__unpack(NULL, r->payload.len, r->payload.data);
	assert_non_null(wr);
	assert_int_equal(wr->exit_code, 42);
	diag__wait_response__free_unpacked(wr, NULL);
	ttrpc__response__free_unpacked(r, NULL);

	assert_int_equal(ttrpc_decoder_next(&d, &h, &p), 1);
	assert_int_equal(h.stream_id, 3);
	r = ttrpc__response__unpack(NULL, h.length, p);
	assert_non_null(r);
	assert_non_null(r->status);
	assert_int_equal(r->status->code, TTRPC_CODE_NOT_FOUND);
	assert_string_equal(r->status->message, "pid not found");
	ttrpc__response__free_unpacked(r, NULL);

	assert_int_equal(ttrpc_decoder_next(&d, &h, &p), 0);
	ttrpc_decoder_free(&d);
	free(both);
	free(a);
	free(b);
}

/* A frame longer than the limit is reported once and its payload dropped
 * as it arrives (never buffered); the next frame decodes. */
static void test_oversized_skipped(void **state)
{
	(void)state;
	struct ttrpc_decoder d;
	struct ttrpc_hdr h;
	const uint8_t *p;
	ttrpc_decoder_init(&d, 100);
	uint8_t hdr[TTRPC_HDR_SIZE];
	struct ttrpc_hdr big = { .length = 1000, .stream_id = 5, .type = 1 };
	ttrpc_hdr_encode(hdr, &big);
	uint8_t junk[300];
	memset(junk, 0xee, sizeof(junk));
	assert_int_equal(ttrpc_decoder_feed(&d, hdr, sizeof(hdr)), 0);
	assert_int_equal(ttrpc_decoder_feed(&d, junk, 50), 0);
	assert_int_equal(ttrpc_decoder_next(&d, &h, &p), -EMSGSIZE);
	assert_int_equal(h.stream_id, 5);
	assert_int_equal(h.length, 1000);
	for (int i = 0; i < 3; i++) { /* 900 more bytes of it */
		assert_int_equal(ttrpc_decoder_feed(&d, junk, 300), 0);
		assert_int_equal(ttrpc_decoder_next(&d, &h, &p), 0);
		assert_true(d.len <= 300);
	}
	uint8_t *f;
	size_t len;
	assert_int_equal(ttrpc_frame_request(7, "s", "m", NULL, 0, &f, &len), 0);
	/* The last 50 bytes of the big frame and the next frame together. */
	uint8_t mix[512];
	memcpy(mix, junk, 50);
	memcpy(mix + 50, f, len);
	assert_int_equal(ttrpc_decoder_feed(&d, mix, 50 + len), 0);
	assert_int_equal(ttrpc_decoder_next(&d, &h, &p), 1);
	assert_int_equal(h.stream_id, 7);
	assert_int_equal(h.length, len - TTRPC_HDR_SIZE);
	free(f);
	/* The protocol's own ceiling: 0xffffff, whatever max_msg says. */
	ttrpc_decoder_free(&d);
	ttrpc_decoder_init(&d, SIZE_MAX);
	assert_int_equal(d.max_msg, TTRPC_MAX_MSG);
	big.length = TTRPC_MAX_MSG + 1;
	ttrpc_hdr_encode(hdr, &big);
	assert_int_equal(ttrpc_decoder_feed(&d, hdr, sizeof(hdr)), 0);
	assert_int_equal(ttrpc_decoder_next(&d, &h, &p), -EMSGSIZE);
	ttrpc_decoder_free(&d);
}

static void test_read_frame_eof(void **state)
{
	(void)state;
	int sv[2];
	struct ttrpc_decoder d;
	struct ttrpc_hdr h;
	const uint8_t *p;
	uint8_t *f;
	size_t len;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ttrpc_frame_request(1, "a", "b", NULL, 0, &f, &len), 0);
	assert_int_equal(ttrpc_write_all(sv[0], f, len), 0);
	assert_int_equal(ttrpc_write_all(sv[0], f, len - 1), 0); /* cut short */
	close(sv[0]);
	ttrpc_decoder_init(&d, 0);
	assert_int_equal(ttrpc_read_frame(sv[1], &d, &h, &p), 1);
	assert_int_equal(ttrpc_read_frame(sv[1], &d, &h, &p), -EPROTO);
	ttrpc_decoder_free(&d);
	close(sv[1]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ttrpc_write_all(sv[0], f, len), 0);
	close(sv[0]);
	ttrpc_decoder_init(&d, 0);
	assert_int_equal(ttrpc_read_frame(sv[1], &d, &h, &p), 1);
	assert_int_equal(ttrpc_read_frame(sv[1], &d, &h, &p), 0); /* clean EOF */
	ttrpc_decoder_free(&d);
	close(sv[1]);
	free(f);

	/* A peer that hung up: EPIPE, not a SIGPIPE that kills the caller. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(ttrpc_write_all(sv[0], "x", 1), -EPIPE);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_request_wire_bytes),
		cmocka_unit_test(test_decode_byte_at_a_time),
		cmocka_unit_test(test_two_frames_one_feed),
		cmocka_unit_test(test_oversized_skipped),
		cmocka_unit_test(test_read_frame_eof),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
