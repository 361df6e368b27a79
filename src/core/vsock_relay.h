/*
 * The hybrid vsock relay (--vmbus-vsock-path PATH): guest hv_sock
 * connections relayed to Unix sockets on the host, wire compatible with
 * OpenVMM and Firecracker (../shared/docs/openvmm-reference.md §3).
 *
 * Host to guest: a client connects to the Unix socket PATH and writes
 * "CONNECT <port>\n" (or "CONNECT <service GUID>\n"; the keyword in any
 * case; at most VSOCK_REQUEST_MAX bytes with the newline). The relay offers
 * an hv_sock channel for that service with a fresh random instance GUID and
 * waits VSOCK_OPEN_TIMEOUT_MS for the guest to open it (Linux does when a
 * socket listens on the port). Then it answers "OK <n>\n" (n = the first
 * 32 bits of the instance GUID, as OpenVMM; the GUID itself for a GUID
 * request) and relays bytes both ways. A bad request, no guest listener or
 * any failure just closes the client's socket.
 *
 * Guest to host: the guest's connect() arrives as TL_CONNECT_REQUEST. The
 * relay connects to PATH_<port> (for a vsock-template service) or else
 * PATH_<service GUID>; when one accepts, it offers the channel the guest
 * waits for and relays. When none does, the guest hears nothing and its
 * connect() fails with ETIMEDOUT (Linux 6.1 has no refusal message).
 *
 * hvmm extension, INSPECT (hvmm-diag PATH inspect): a client that writes
 * "INSPECT <depth> [PATH]\n" (the keyword in any case; depth a decimal
 * 0..INSPECT_MAX_DEPTH or -1 for all levels; PATH the inspect path, at most
 * INSPECT_PATH_MAX bytes of [A-Za-z0-9_.-/]) gets the rendering of hvmm's
 * inspect tree at PATH (inspect.h's text, newline-terminated, at most
 * INSPECT_OUT_MAX bytes), or one line "error: no node PATH\n" /
 * "error: bad path PATH\n" / "error: ...\n", and then end of stream. The
 * whole request line is at most VSOCK_LINE_MAX bytes. A relay made without a
 * render function (and OpenVMM, which knows only CONNECT) just closes.
 *
 * Either side's end of stream is passed on (FIN to the guest, shutdown of
 * the socket's write side to the host); when both have ended, or on any
 * error, the channel is rescinded and the socket closed.
 *
 * Threads: everything runs on the VM's event loop; VMBus callbacks (vCPU
 * threads) only queue work and write an eventfd. Memory per connection is
 * bounded (two buffers of about 16 KiB each), and so is the number of
 * connections (VSOCK_MAX_CONNS).
 */
#ifndef HVMM_CORE_VSOCK_RELAY_H
#define HVMM_CORE_VSOCK_RELAY_H

/*
 * Offers waiting for the guest at once; a burst of client requests waits its
 * turn. Each costs the guest a few VMBus messages (offer, GPADL, open)
 * through the SynIC's bounded message queue, and a guest processes the
 * opens one after another: with many outstanding, the last waits for all
 * before it, and on a slow guest (Linux on a loaded PVM host: seconds per
 * open) it ran past the open deadline. Two keep one open in progress and
 * the next offer ready.
 */
#define VSOCK_RELAY_MAX_OFFERED 2u

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/inspect.h"
#include "vmbus/vmbus_channel.h"

struct evloop;
struct vmbus_server;
struct vsock_relay;

/* "CONNECT 00000000-facb-11e6-bd58-64006a7986d3\n" */
#define VSOCK_REQUEST_MAX 45u
/* "INSPECT -1 " + a path + "\n" (the longest request line of either kind) */
#define VSOCK_LINE_MAX (11u + INSPECT_PATH_MAX + 1u)
#define VSOCK_REPLY_TIMEOUT_MS 30000u   /* for the client to read an INSPECT reply */
#define VSOCK_REQUEST_TIMEOUT_MS 10000u /* to send the request line */
#define VSOCK_OPEN_TIMEOUT_MS 30000u    /* for the guest to open the channel */
#define VSOCK_MAX_CONNS 256u
#define VSOCK_TL_QUEUE 64u              /* guest connect requests not handled yet */

/* A parsed request line. */
struct vsock_request {
	bool is_port;              /* "CONNECT <port>" (else a GUID) */
	uint32_t port;
	struct vmbus_guid service; /* always set */
};

/*
 * Parses a request line without its newline (a trailing '\r' is allowed):
 * "CONNECT" in any case, one space, then a decimal port (0 to
 * 2147483647, the ports a guest can listen on) or a GUID. 0 or -EINVAL.
 */
int vsock_parse_request(const char *line, size_t len, struct vsock_request *req);

/*
 * Parses an INSPECT line without its newline (a trailing '\r' is allowed)
 * into *depth (-1 = unlimited) and path (NUL-terminated; "" = the root;
 * pathlen >= INSPECT_PATH_MAX + 1). 0; -ENOENT when the line is not an
 * INSPECT request at all; -EINVAL when it is a malformed one.
 */
int vsock_parse_inspect(const char *line, size_t len, int *depth, char *path, size_t pathlen);

/*
 * Renders hvmm's inspect tree for an INSPECT request (see above): on
 * success *out is a malloc'd NUL-terminated text; else -ENOENT (no such
 * node), -EINVAL (malformed path) or another -errno. Runs on the loop thread.
 */
typedef int (*vsock_render_fn)(void *opaque, const char *path, int depth, char **out);

/*
 * The Unix socket path for a guest connection to service: "<base>_<port>"
 * for a vsock-template service when port_form, else "<base>_<guid>".
 * 0 or -ENAMETOOLONG (longer than a sockaddr_un path).
 */
int vsock_host_path(const char *base, const struct vmbus_guid *service, bool port_form,
		    char *out, size_t outlen);

/*
 * Binds PATH (a stale socket file there is replaced; mode 0600), registers
 * with loop and srv (the TL_CONNECT handler). 0 or -errno with one error
 * line logged (e.g. the path cannot be bound, or exists and is no socket).
 * With path NULL there is no socket and no guest-to-host relaying: only
 * vsock_relay_connect_port() (the console's `v PORT`) is served. render
 * (NULL: INSPECT requests are closed like any bad request) answers INSPECT
 * requests, called on the loop thread with render_opaque.
 */
int vsock_relay_create(struct evloop *loop, struct vmbus_server *srv, const char *path,
		       vsock_render_fn render, void *render_opaque, struct vsock_relay **out);
/*
 * Closes every connection (rescinds their channels), the listener, and
 * unlinks PATH. Call before vmbus_server_destroy(), not on the loop thread.
 */
void vsock_relay_destroy(struct vsock_relay *r);

/*
 * Connects to guest vsock port `port` as a host client would, for in-process
 * users (the console's `v PORT`, diagnostics): returns in *fd one end of a
 * Unix stream socket pair whose other end the relay serves; the request is
 * already written, so the caller reads "OK <n>\n" (connected) or end of
 * stream (refused) before the guest's bytes. Any thread. 0 or -errno.
 */
int vsock_relay_connect_port(struct vsock_relay *r, uint32_t port, int *fd);

/* Number of connections now (tests, inspect). Any thread. */
unsigned vsock_relay_nconns(struct vsock_relay *r);

#endif
