/* The host side of the diagnostics protocol (OpenHCL's diag_client, see
 * ../shared/docs/openvmm-reference.md §4): a ttrpc client on a control
 * connection to vsock port 1 and data connections to port 2, reached
 * through a dial function: diag_hybrid_dial speaks hvmm's (and OpenVMM's)
 * hybrid vsock Unix socket ("CONNECT <port>\n" -> "OK <n>\n"); unit tests
 * dial socketpairs. Every call returns 0, or a negative errno, or a
 * positive ttrpc status code, with a one-line message in client->err.
 * Single-threaded; one client per thread.
 */
#ifndef HVMM_DIAG_CLIENT_H
#define HVMM_DIAG_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "diag/ttrpc.h"

/* Returns a connected byte stream to the guest's vsock port, or -errno with
 * a one-line reason in err. */
typedef int (*diag_dial_fn)(void *opaque, uint32_t port, char *err, size_t errlen);

/* opaque: the hybrid vsock socket's path. Errors name what went wrong:
 * no such socket, refused (VM gone), no OK (nobody listens on the port). */
int diag_hybrid_dial(void *opaque, uint32_t port, char *err, size_t errlen);

/*
 * hvmm-diag PATH inspect: asks hvmm itself (not the guest) for its inspect
 * tree at path ("" = root), depth levels deep (-1 = all), with the hybrid
 * vsock socket's hvmm extension "INSPECT <depth> [PATH]\n" (vsock_relay.h),
 * and copies the rendered text to out_fd. 0; -ENOENT with "inspect: no node
 * ..." in err when hvmm has no such node; -EOPNOTSUPP when the socket
 * closes without an answer (a CONNECT-only peer such as OpenVMM).
 */
int diag_hybrid_inspect(const char *sock, int depth, const char *path, int out_fd, char *err,
			size_t errlen);

struct diag_client {
	diag_dial_fn dial;
	void *opaque;
	int ctl; /* control connection, -1 when closed */
	struct ttrpc_decoder dec;
	uint32_t next_stream;
	char err[512];
};

/* Dials the control port. Returns 0 or -errno (message in c->err). */
int diag_client_open(struct diag_client *c, diag_dial_fn dial, void *opaque);
void diag_client_close(struct diag_client *c);

/* A new data connection: returns its fd with *id, or -errno. */
int diag_client_data(struct diag_client *c, uint64_t *id);

/* Sends a request; *stream gets its stream id. */
int diag_client_send(struct diag_client *c, const char *service, const char *method,
		     const ProtobufCMessage *arg, uint32_t *stream);
/* Reads frames until the response to stream arrives (others are dropped).
 * On success *result is the unpacked reply (free with
 * protobuf_c_message_free_unpacked) when desc is not NULL. */
int diag_client_recv(struct diag_client *c, uint32_t stream,
		     const ProtobufCMessageDescriptor *desc, ProtobufCMessage **result);
/* send + recv. */
int diag_client_call(struct diag_client *c, const char *service, const char *method,
		     const ProtobufCMessage *arg, const ProtobufCMessageDescriptor *desc,
		     ProtobufCMessage **result);

/* Formats one /dev/kmsg record ("prio,seq,usec,flags;text\n" plus optional
 * " KEY=VALUE" lines) as "[   sec.usec] text" into out (NUL-terminated,
 * truncated to outlen; control characters but tab become '?'). Returns the
 * length, or -EINVAL for a record that is not in kmsg's format (out then
 * holds it as is, control characters replaced). */
int diag_kmsg_format(const char *rec, size_t len, char *out, size_t outlen);

/* Kmsg: writes the kernel log, one formatted line per record, to out_fd;
 * follow keeps waiting for new records until the connection ends. */
int diag_client_kmsg(struct diag_client *c, bool follow, int out_fd);
/* ReadFile: copies the guest file to out_fd. */
int diag_client_read_file(struct diag_client *c, const char *path, bool follow, int out_fd);

struct diag_exec {
	const char *command;
	const char *const *args; /* n_args arguments after the command */
	size_t n_args;
	bool tty;                /* a pty: output on out_fd, no separate stderr */
	const char *term;        /* with tty: TERM for the child (NULL: none) */
	int in_fd;               /* -1: no stdin connection */
	int out_fd, err_fd;      /* where the child's output goes */
};

/* Exec + Wait: runs the command in the guest, relays stdio until the child's
 * output ends, and returns its exit status in *exit_code (255: killed). */
int diag_client_run(struct diag_client *c, const struct diag_exec *e, int *exit_code);

#endif
