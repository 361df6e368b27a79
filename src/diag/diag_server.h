/* The diagnostics server of hvmm-agent: OpenHCL's diag.UnderhillDiag
 * service (openhcl/diag_server; ../shared/docs/openvmm-reference.md §4) for
 * an ordinary Linux guest. Control connections (vsock port 1) carry ttrpc
 * requests; data connections (port 2) are registered under an 8-byte id
 * (native endian, from 1) that the server sends first and the client names
 * in its request. Served: Ping, Exec (raw socket stdio, or a pty with
 * tty=true), Wait, Kmsg (NUL-terminated /dev/kmsg records), ReadFile; the
 * rest answer UNIMPLEMENTED. Transport-agnostic so unit tests drive it over
 * socketpairs. Thread safe: each control connection runs on its own thread,
 * streams and waits on helper threads.
 */
#ifndef HVMM_DIAG_SERVER_H
#define HVMM_DIAG_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#define DIAG_VSOCK_CONTROL_PORT 1
#define DIAG_VSOCK_DATA_PORT 2
#define DIAG_FILE_LINE_MAX 2048 /* a kmsg record plus its NUL */
#define DIAG_MAX_DATA_CONNS 64  /* untaken data connections kept */
#define DIAG_MAX_CHILDREN 256   /* unwaited children kept */

struct diag_server_config {
	/* Opens the kernel log (default: /dev/kmsg). Returns an fd or -errno.
	 * Tests substitute a SOCK_SEQPACKET socket (one record per packet). */
	int (*open_kmsg)(void *opaque);
	void *opaque;
};

struct diag_server;

/* cfg may be NULL. Returns NULL on allocation failure. */
struct diag_server *diag_server_new(const struct diag_server_config *cfg);
/* Closes untaken data connections. Call only when no connection is served. */
void diag_server_free(struct diag_server *s);

/* Takes ownership of a freshly accepted data connection: registers it and
 * sends its id. Returns 0 or -errno (fd closed either way on error). */
int diag_server_add_data(struct diag_server *s, int fd);

/* Serves one control connection until the peer closes it or sends a
 * malformed frame; takes ownership of fd (closed when the last response
 * that refers to it is written or dropped). */
void diag_server_serve_control(struct diag_server *s, int fd);

#endif
