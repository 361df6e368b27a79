/*
 * The hybrid vsock relay (see vsock_relay.h; OpenVMM's hvsock relay and
 * support/hybrid_vsock, Firecracker's vsock.md): a Unix listener, the
 * CONNECT request parser, one state machine per connection, and the byte
 * pumps between a Unix socket and an hv_sock channel (dev/hvsock.h).
 *
 * A connection goes REQUEST (host clients: reading the request line) ->
 * OFFERED (channel offered, waiting for the guest to open it) -> RELAY ->
 * freed. All of it runs on the event loop thread; the only things other
 * threads do are setting a connection's `kicked` flag and writing the
 * relay's eventfd (VMBus callbacks), and queueing guest connect requests
 * and in-process clients under r->lock. r->lock is also the hvsock lock
 * (lock order: VMBus server lock, then r->lock; the loop thread never holds
 * r->lock while it calls into the server).
 *
 * Flow control: guest data is written to the socket only as fast as the
 * socket takes it (EPOLLOUT when it is full; the guest's ring fills and the
 * guest's send() blocks); host data is read only when the last chunk went
 * into the ring (else the guest's signal, via pending_send_sz, restarts us).
 */
#include "core/vsock_relay.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/log.h"
#include "dev/hvsock.h"

#define VSOCK_TICK_MS 250u
#define VSOCK_TX_BUF HVSOCK_MTU
#define VSOCK_PUMP_ROUNDS 64 /* packets or chunks per turn, then yield */


enum conn_state {
	C_REQUEST, /* host client: reading the request line */
	C_WAIT,    /* host client: parsed, waiting for an offer slot */
	C_OFFERED, /* channel offered, waiting for the guest to open it */
	C_RELAY,
	C_REPLY,   /* host client: writing an INSPECT reply, then closed */
};

struct vsock_conn {
	struct vsock_conn *next;
	struct vsock_relay *r;
	enum conn_state state;
	bool from_guest;
	int fd;
	uint32_t interest;    /* epoll events registered (0: not registered) */
	struct hvsock *hs;
	atomic_bool kicked;   /* hvsock woke us */
	uint64_t deadline_ms; /* REQUEST and OFFERED end then; 0 = none */
	struct vsock_request req;
	struct vmbus_guid instance;
	char line[VSOCK_LINE_MAX + 1];
	char *reply;          /* C_REPLY: the text, written from reply_off */
	size_t reply_len, reply_off;
	unsigned linelen;
	bool h_eof;           /* the host side ended its stream */
	bool fin_sent;
	bool g_eof;           /* the guest sent FIN */
	uint32_t tx_off, tx_len;
	uint8_t tx[VSOCK_TX_BUF];
};

struct tl_request {
	struct vmbus_guid endpoint, service;
};

struct vsock_relay {
	struct evloop *loop;
	struct vmbus_server *srv;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd, efd, tfd;
	struct vsock_conn *conns; /* loop thread only */
	unsigned noffered;        /* conns in C_OFFERED (loop thread only) */
	bool stopping;            /* loop thread only */
	vsock_render_fn render;   /* INSPECT requests (NULL: refused) */
	void *render_opaque;
	atomic_uint nconns;
	pthread_mutex_t lock;
	/* Guarded by lock. */
	struct tl_request tlq[VSOCK_TL_QUEUE];
	unsigned tl_n;
	int adopt[8];             /* in-process clients' relay ends */
	unsigned nadopt;
	/* Teardown on the loop thread. */
	pthread_cond_t cond;
	bool destroyed;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- request parsing -------------------------------------------------------- */

int vsock_parse_request(const char *line, size_t len, struct vsock_request *req)
{
	static const char kw[] = "connect ";
	if (len && line[len - 1] == '\r')
		len--;
	if (len < sizeof(kw) - 1 || len >= VSOCK_REQUEST_MAX)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(kw) - 1; i++)
		if (tolower((unsigned char)line[i]) != kw[i])
			return -EINVAL;
	const char *arg = line + sizeof(kw) - 1;
	size_t alen = len - (sizeof(kw) - 1);
	if (!alen)
		return -EINVAL;
	memset(req, 0, sizeof(*req));
	if (alen == 36) {
		char g[37];
		memcpy(g, arg, 36);
		g[36] = 0;
		if (vmbus_guid_parse(g, &req->service) < 0)
			return -EINVAL;
		return 0;
	}
	if (alen > 10)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < alen; i++) {
		if (arg[i] < '0' || arg[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(arg[i] - '0');
	}
	if (v > HVSOCK_MAX_LISTEN_PORT)
		return -EINVAL;
	req->is_port = true;
	req->port = (uint32_t)v;
	hvsock_port_guid(req->port, &req->service);
	return 0;
}

int vsock_parse_inspect(const char *line, size_t len, int *depth, char *path, size_t pathlen)
{
	static const char kw[] = "inspect";
	if (len && line[len - 1] == '\r')
		len--;
	if (len < sizeof(kw) - 1)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(kw) - 1; i++)
		if (tolower((unsigned char)line[i]) != kw[i])
			return -ENOENT;
	size_t i = sizeof(kw) - 1;
	if (i >= len || line[i] != ' ')
		return -EINVAL;
	i++;
	bool neg = i < len && line[i] == '-';
	if (neg)
		i++;
	size_t d0 = i;
	int v = 0;
	while (i < len && line[i] >= '0' && line[i] <= '9' && i - d0 < 3)
		v = v * 10 + (line[i++] - '0');
	if (i == d0 || (i < len && line[i] != ' '))
		return -EINVAL;
	if (neg ? v != 1 : v > INSPECT_MAX_DEPTH)
		return -EINVAL;
	size_t plen = 0;
	if (i < len) {
		i++; /* the space */
		plen = len - i;
		if (!plen || plen > INSPECT_PATH_MAX || plen >= pathlen)
			return -EINVAL;
		for (size_t k = 0; k < plen; k++) {
			unsigned char ch = (unsigned char)line[i + k];
			if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-' && ch != '/')
				return -EINVAL;
		}
	}
	if (pathlen < 1)
		return -EINVAL;
	memcpy(path, line + i, plen);
	path[plen] = 0;
	*depth = neg ? -1 : v;
	return 0;
}

int vsock_host_path(const char *base, const struct vmbus_guid *service, bool port_form,
		    char *out, size_t outlen)
{
	uint32_t port;
	int n;
	if (port_form && hvsock_guid_port(service, &port)) {
		n = snprintf(out, outlen, "%s_%u", base, port);
	} else {
		char g[37];
		hvsock_guid_format(service, g);
		n = snprintf(out, outlen, "%s_%s", base, g);
	}
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	if (n < 0 || (size_t)n >= outlen || (size_t)n >= max)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- connections ------------------------------------------------------------ */

static void relay_kick(struct vsock_relay *r)
{
	uint64_t one = 1;
	if (write(r->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("vsock: eventfd write: %s", strerror(errno));
}

/* hvsock's wake(): a VMBus callback (server lock held) or an hvsock call. */
static void conn_wake(void *opaque)
{
	struct vsock_conn *c = opaque;
	atomic_store(&c->kicked, true);
	relay_kick(c->r);
}

static void conn_fd_cb(void *opaque, int fd, uint32_t events);

static void conn_interest(struct vsock_conn *c, uint32_t ev)
{
	if (ev == c->interest)
		return;
	int ret = 0;
	if (!ev)
		evloop_del_fd(c->r->loop, c->fd);
	else if (!c->interest)
		ret = evloop_add_fd(c->r->loop, c->fd, ev, conn_fd_cb, c);
	else
		ret = evloop_mod_fd(c->r->loop, c->fd, ev);
	if (ret < 0)
		log_warn("vsock: cannot watch a connection: %s", strerror(-ret));
	else
		c->interest = ev;
}

/* Ends c: rescind, close, free. why: a debug note, or NULL. Loop thread. */
static void conn_close(struct vsock_conn *c, const char *why)
{
	struct vsock_relay *r = c->r;
	if (why) {
		char g[37];
		hvsock_guid_format(&c->req.service, g);
		log_debug("vsock: %s connection to %s closed: %s",
			  c->from_guest ? "guest" : "host", g, why);
	}
	conn_interest(c, 0);
	close(c->fd);
	free(c->reply);
	if (c->state == C_OFFERED)
		r->noffered--;
	if (c->hs)
		hvsock_release(c->hs);
	for (struct vsock_conn **pp = &r->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	atomic_fetch_sub(&r->nconns, 1);
	free(c);
}

static struct vsock_conn *conn_new(struct vsock_relay *r, int fd, bool from_guest)
{
	if (atomic_load(&r->nconns) >= VSOCK_MAX_CONNS) {
		log_warn("vsock: %u connections open; refusing another", VSOCK_MAX_CONNS);
		close(fd);
		return NULL;
	}
	struct vsock_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	c->r = r;
	c->fd = fd;
	c->from_guest = from_guest;
	atomic_init(&c->kicked, false);
	c->next = r->conns;
	r->conns = c;
	atomic_fetch_add(&r->nconns, 1);
	return c;
}

/* Offers c's channel; c->req.service and c->instance are set. */
static bool conn_offer(struct vsock_conn *c)
{
	struct hvsock_params p = {
		.service = c->req.service, .instance = c->instance,
		.from_host = !c->from_guest,
		.wake = conn_wake, .wake_opaque = c,
		/* hvsock's own lock: hs outlives the relay when the guest keeps
		 * the channel open past vsock_relay_destroy(). */
	};
	int ret = hvsock_create(c->r->srv, &p, &c->hs);
	if (ret < 0) {
		log_warn("vsock: cannot offer a channel: %s", strerror(-ret));
		conn_close(c, NULL);
		return false;
	}
	c->state = C_OFFERED;
	c->r->noffered++;
	c->deadline_ms = now_ms() + VSOCK_OPEN_TIMEOUT_MS;
	conn_interest(c, 0); /* nothing to read until the guest is there */
	return true;
}

/* One turn of both byte pumps. */
static void conn_pump(struct vsock_conn *c)
{
	bool want_in = false, want_out = false, again = false;
	int i;
	/* Guest to host. */
	for (i = 0; i < VSOCK_PUMP_ROUNDS && !c->g_eof; i++) {
		const uint8_t *p;
		size_t n;
		int ret = hvsock_recv_peek(c->hs, &p, &n);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			conn_close(c, ret == -EPROTO ? "guest protocol error" : "channel closed");
			return;
		}
		if (ret == 1) {
			c->g_eof = true;
			shutdown(c->fd, SHUT_WR);
			break;
		}
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			want_out = true;
			break;
		}
		if (w < 0) {
			conn_close(c, strerror(errno));
			return;
		}
		hvsock_recv_consume(c->hs, (size_t)w);
		if ((size_t)w < n) {
			want_out = true;
			break;
		}
	}
	/* The guest signals only into an empty ring: come back to drain it. */
	if (i == VSOCK_PUMP_ROUNDS)
		again = true;
	/* Host to guest. */
	for (i = 0; i < VSOCK_PUMP_ROUNDS; i++) {
		if (!c->tx_len && !c->h_eof) {
			ssize_t n = recv(c->fd, c->tx, sizeof(c->tx), MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				want_in = true;
				break;
			}
			if (n < 0) {
				conn_close(c, strerror(errno));
				return;
			}
			if (n == 0) {
				c->h_eof = true;
			} else {
				c->tx_off = 0;
				c->tx_len = (uint32_t)n;
			}
		}
		if (c->tx_len) {
			int s = hvsock_send(c->hs, c->tx + c->tx_off, c->tx_len);
			if (s == -EAGAIN)
				break; /* the guest signals when it has read */
			if (s < 0) {
				conn_close(c, s == -EPROTO ? "guest protocol error" : "channel closed");
				return;
			}
			c->tx_off += (uint32_t)s;
			c->tx_len -= (uint32_t)s;
			continue;
		}
		if (c->h_eof && !c->fin_sent) {
			int s = hvsock_send_fin(c->hs);
			if (s == -EAGAIN)
				break;
			if (s < 0) {
				conn_close(c, "channel closed");
				return;
			}
			c->fin_sent = true;
		}
		break;
	}
	/* Out of rounds with data still to move: neither the socket (its data
	 * may all be in our buffer) nor the guest will wake us; we do. */
	if (i == VSOCK_PUMP_ROUNDS)
		again = true;
	if (c->g_eof && c->fin_sent) {
		conn_close(c, NULL);
		return;
	}
	conn_interest(c, (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0));
	if (again) {
		atomic_store(&c->kicked, true);
		relay_kick(c->r);
	}
}

/* The guest opened c's channel. */
static void conn_connected(struct vsock_conn *c)
{
	if (!c->from_guest) {
		char ok[64];
		int n;
		uint32_t d1 = (uint32_t)c->instance.b[0] | (uint32_t)c->instance.b[1] << 8 |
			      (uint32_t)c->instance.b[2] << 16 | (uint32_t)c->instance.b[3] << 24;
		if (c->req.is_port) {
			n = snprintf(ok, sizeof(ok), "OK %u\n", d1);
		} else {
			char g[37];
			hvsock_guid_format(&c->instance, g);
			n = snprintf(ok, sizeof(ok), "OK %s\n", g);
		}
		/* The socket's buffer is empty: the line goes in whole or not at all. */
		if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
			conn_close(c, "client gone before OK");
			return;
		}
	}
	c->state = C_RELAY;
	c->r->noffered--;
	c->deadline_ms = 0;
	conn_pump(c);
}

static void conn_kicked(struct vsock_conn *c)
{
	if (c->state == C_OFFERED) {
		enum hvsock_state s = hvsock_state(c->hs);
		if (s == HVSOCK_OPEN)
			conn_connected(c);
		else if (s == HVSOCK_CLOSED)
			conn_close(c, "channel closed before use");
	} else if (c->state == C_RELAY) {
		conn_pump(c);
	}
}

static void random_guid(struct vmbus_guid *g)
{
	size_t got = 0;
	while (got < sizeof(g->b)) {
		ssize_t n = getrandom(g->b + got, sizeof(g->b) - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(g->b)) { /* no entropy source: still unique enough */
		static atomic_uint_fast64_t seq;
		uint64_t v = now_ms() ^ ((uint64_t)atomic_fetch_add(&seq, 1) << 40);
		memcpy(g->b, &v, sizeof(v));
	}
	g->b[7] = (uint8_t)((g->b[7] & 0x0F) | 0x40); /* version 4 */
	g->b[8] = (uint8_t)((g->b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
}

/* Writes what the socket takes of an INSPECT reply; closes c when done. */
static void conn_reply(struct vsock_conn *c)
{
	while (c->reply_off < c->reply_len) {
		ssize_t n = send(c->fd, c->reply + c->reply_off, c->reply_len - c->reply_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_interest(c, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			conn_close(c, "inspect reply not taken");
			return;
		}
		c->reply_off += (size_t)n;
	}
	conn_close(c, NULL);
}

/* Answers an INSPECT request (parsed into depth, path) from r->render. */
static void conn_inspect(struct vsock_conn *c, int depth, const char *path)
{
	char *text = NULL;
	int ret = c->r->render(c->r->render_opaque, path, depth, &text);
	if (ret < 0) {
		free(text);
		text = NULL;
		char buf[INSPECT_PATH_MAX + 64];
		if (ret == -ENOENT)
			snprintf(buf, sizeof(buf), "error: no node %s\n", path);
		else if (ret == -EINVAL)
			snprintf(buf, sizeof(buf), "error: bad path %s\n", path);
		else
			snprintf(buf, sizeof(buf), "error: %s\n", strerror(-ret));
		text = strdup(buf);
		if (!text) {
			conn_close(c, "out of memory");
			return;
		}
	}
	c->reply = text;
	c->reply_len = strlen(text);
	c->reply_off = 0;
	c->state = C_REPLY;
	c->deadline_ms = now_ms() + VSOCK_REPLY_TIMEOUT_MS;
	conn_interest(c, 0);
	conn_reply(c);
}

/* Reads the request line without consuming bytes past its newline. */
static void conn_read_request(struct vsock_conn *c)
{
	size_t room = VSOCK_LINE_MAX - c->linelen;
	ssize_t n = recv(c->fd, c->line + c->linelen, room, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		conn_close(c, n == 0 ? "no request" : strerror(errno));
		return;
	}
	char *nl = memchr(c->line + c->linelen, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - (c->line + c->linelen)) + 1 : (size_t)n;
	if (recv(c->fd, c->line + c->linelen, take, MSG_DONTWAIT) != (ssize_t)take) {
		conn_close(c, "request read failed");
		return;
	}
	c->linelen += (unsigned)take;
	if (!nl) {
		/* INSPECT lines may be longer than CONNECT ones. */
		unsigned max = tolower((unsigned char)c->line[0]) == 'i' ? VSOCK_LINE_MAX :
			       VSOCK_REQUEST_MAX;
		if (c->linelen >= max) {
			log_info("vsock: request without a newline in %u bytes refused", max);
			conn_close(c, "request too long");
		}
		return;
	}
	int depth;
	char ipath[INSPECT_PATH_MAX + 1];
	int iret = vsock_parse_inspect(c->line, c->linelen - 1, &depth, ipath, sizeof(ipath));
	if (iret == 0 && c->r->render) {
		conn_inspect(c, depth, ipath);
		return;
	}
	if (iret != -ENOENT || vsock_parse_request(c->line, c->linelen - 1, &c->req) < 0) {
		c->line[c->linelen - 1] = 0;
		for (unsigned i = 0; i + 1 < c->linelen; i++)
			if (!isprint((unsigned char)c->line[i]))
				c->line[i] = '?';
		log_info("vsock: bad request '%s' refused (expected CONNECT <port>)", c->line);
		conn_close(c, NULL);
		return;
	}
	random_guid(&c->instance);
	/* No deadline in line: the queue is bounded by VSOCK_MAX_CONNS, and
	 * each offer ahead ends within VSOCK_OPEN_TIMEOUT_MS. */
	c->state = C_WAIT;
	c->deadline_ms = 0;
	conn_interest(c, 0); /* the client's data waits in its socket */
}

/* Offers for waiting clients, oldest first, while there are slots. */
static void relay_start_waiting(struct vsock_relay *r)
{
	while (!r->stopping && r->noffered < VSOCK_RELAY_MAX_OFFERED) {
		struct vsock_conn *oldest = NULL;
		for (struct vsock_conn *c = r->conns; c; c = c->next)
			if (c->state == C_WAIT)
				oldest = c; /* the list is newest first */
		if (!oldest)
			return;
		conn_offer(oldest);
	}
}

static void conn_fd_cb(void *opaque, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	struct vsock_conn *c = opaque;
	struct vsock_relay *r = c->r;
	if (c->state == C_REQUEST)
		conn_read_request(c);
	else if (c->state == C_RELAY)
		conn_pump(c);
	else if (c->state == C_REPLY)
		conn_reply(c);
	relay_start_waiting(r);
}

static void relay_adopt(struct vsock_relay *r, int fd)
{
	struct vsock_conn *c = conn_new(r, fd, false);
	if (!c)
		return;
	c->state = C_REQUEST;
	c->deadline_ms = now_ms() + VSOCK_REQUEST_TIMEOUT_MS;
	conn_interest(c, EPOLLIN);
}

static void on_listen(void *opaque, int fd, uint32_t events)
{
	(void)events;
	struct vsock_relay *r = opaque;
	for (int i = 0; i < 64; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("vsock: accept on %s: %s", r->path, strerror(errno));
			return;
		}
		relay_adopt(r, cfd);
	}
}

/* Connects to the host listener for service; fd or -errno. */
static int connect_host(struct vsock_relay *r, const struct vmbus_guid *service)
{
	int err = -ENOENT;
	for (int form = 1; form >= 0; form--) {
		uint32_t port;
		if (form && !hvsock_guid_port(service, &port))
			continue;
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (vsock_host_path(r->path, service, form, sa.sun_path, sizeof(sa.sun_path)) < 0)
			continue;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		err = -errno;
		close(fd);
	}
	return err;
}

static void on_guest_connect(struct vsock_relay *r, const struct tl_request *t)
{
	char g[37];
	hvsock_guid_format(&t->service, g);
	int fd = connect_host(r, &t->service);
	if (fd < 0) {
		log_debug("vsock: guest connect to %s refused (%s_*: %s)", g, r->path,
			  strerror(-fd));
		return;
	}
	struct vsock_conn *c = conn_new(r, fd, true);
	if (!c)
		return;
	c->req.service = t->service;
	c->instance = t->endpoint;
	log_debug("vsock: guest connects to %s", g);
	conn_offer(c);
}

/* TL_CONNECT_REQUEST (server lock held, a vCPU thread): queue it. */
static void on_tl_connect(void *opaque, const struct vmbus_guid *endpoint,
			  const struct vmbus_guid *service)
{
	struct vsock_relay *r = opaque;
	pthread_mutex_lock(&r->lock);
	bool queued = r->tl_n < VSOCK_TL_QUEUE;
	if (queued)
		r->tlq[r->tl_n++] = (struct tl_request){ *endpoint, *service };
	pthread_mutex_unlock(&r->lock);
	if (queued)
		relay_kick(r);
	else
		log_guest("vsock: more than %u guest connects pending; one dropped",
			  VSOCK_TL_QUEUE);
}

static void on_event(void *opaque, int fd, uint32_t events)
{
	(void)events;
	struct vsock_relay *r = opaque;
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("vsock: eventfd read: %s", strerror(errno));
	struct tl_request tlq[VSOCK_TL_QUEUE];
	int adopt[8];
	pthread_mutex_lock(&r->lock);
	unsigned ntl = r->tl_n, nadopt = r->nadopt;
	memcpy(tlq, r->tlq, ntl * sizeof(tlq[0]));
	memcpy(adopt, r->adopt, nadopt * sizeof(adopt[0]));
	r->tl_n = 0;
	r->nadopt = 0;
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < nadopt; i++)
		relay_adopt(r, adopt[i]);
	for (unsigned i = 0; i < ntl; i++)
		on_guest_connect(r, &tlq[i]);
	for (struct vsock_conn *c = r->conns, *next; c; c = next) {
		next = c->next; /* c may be freed */
		if (atomic_exchange(&c->kicked, false))
			conn_kicked(c);
	}
	relay_start_waiting(r);
}

static void on_tick(void *opaque, int fd, uint32_t events)
{
	(void)events;
	struct vsock_relay *r = opaque;
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0)
		return;
	uint64_t now = now_ms();
	for (struct vsock_conn *c = r->conns, *next; c; c = next) {
		next = c->next;
		if (!c->deadline_ms || now < c->deadline_ms)
			continue;
		if (c->state == C_REQUEST) {
			conn_close(c, "no request in time");
		} else if (c->state == C_REPLY) {
			conn_close(c, "inspect reply not read in time");
		} else if (c->state == C_OFFERED) {
			char g[37];
			hvsock_guid_format(&c->req.service, g);
			log_debug("vsock: the guest did not open %s in %u ms (no listener?)", g,
				  VSOCK_OPEN_TIMEOUT_MS);
			conn_close(c, NULL);
		}
	}
	relay_start_waiting(r);
}

/* ---- create / destroy --------------------------------------------------------- */

static int relay_listen(struct vsock_relay *r, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("--vmbus-vsock-path '%s': longer than a Unix socket path (%zu bytes)",
			  path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("--vmbus-vsock-path '%s': exists and is not a socket", path);
			return -EEXIST;
		}
		unlink(path); /* a stale socket from an earlier run */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;
		log_error("--vmbus-vsock-path: socket: %s", strerror(err));
		return -err;
	}
	/* Created 0600: only the VM's owner may reach the guest's services. */
	mode_t old = umask(0177);
	int ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	umask(old);
	if (ret == 0 && chmod(path, 0600) < 0)
		err = errno, ret = -1;
	if (ret == 0 && listen(fd, 64) < 0)
		err = errno, ret = -1;
	if (ret < 0) {
		log_error("--vmbus-vsock-path '%s': cannot listen: %s", path, strerror(err));
		close(fd);
		return -err;
	}
	r->lfd = fd;
	return 0;
}

static void relay_free(struct vsock_relay *r)
{
	if (r->lfd >= 0)
		close(r->lfd);
	if (r->efd >= 0)
		close(r->efd);
	if (r->tfd >= 0)
		close(r->tfd);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

int vsock_relay_create(struct evloop *loop, struct vmbus_server *srv, const char *path,
		       vsock_render_fn render, void *render_opaque, struct vsock_relay **out)
{
	struct vsock_relay *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->render = render;
	r->render_opaque = render_opaque;
	r->loop = loop;
	r->srv = srv;
	r->lfd = r->efd = r->tfd = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	atomic_init(&r->nconns, 0);
	int ret = path ? relay_listen(r, path) : 0;
	if (ret < 0) {
		relay_free(r);
		return ret;
	}
	snprintf(r->path, sizeof(r->path), "%s", path ? path : "");
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	const struct timespec tick = { 0, VSOCK_TICK_MS * 1000000L };
	struct itimerspec its = { tick, tick };
	if (r->efd < 0 || r->tfd < 0 || timerfd_settime(r->tfd, 0, &its, NULL) < 0)
		ret = -errno;
	if (!ret)
		ret = evloop_add_fd(loop, r->efd, EPOLLIN, on_event, r);
	if (!ret && (ret = evloop_add_fd(loop, r->tfd, EPOLLIN, on_tick, r)) < 0)
		evloop_del_fd(loop, r->efd);
	if (!ret && r->lfd >= 0 && (ret = evloop_add_fd(loop, r->lfd, EPOLLIN, on_listen, r)) < 0) {
		evloop_del_fd(loop, r->efd);
		evloop_del_fd(loop, r->tfd);
	}
	if (ret < 0) {
		log_error("vsock relay: %s", strerror(-ret));
		if (path)
			unlink(path);
		relay_free(r);
		return ret;
	}
	if (!path) {
		log_debug("vsock: in-process connections only (no --vmbus-vsock-path)");
		*out = r;
		return 0;
	}
	vmbus_set_tl_connect_handler(srv, on_tl_connect, r);
	log_debug("vsock: relaying guest hv_sock connections at %s", path);
	*out = r;
	return 0;
}

static void relay_teardown(void *opaque)
{
	struct vsock_relay *r = opaque;
	if (r->lfd >= 0)
		evloop_del_fd(r->loop, r->lfd);
	evloop_del_fd(r->loop, r->efd);
	evloop_del_fd(r->loop, r->tfd);
	r->stopping = true;
	while (r->conns)
		conn_close(r->conns, NULL);
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->nadopt; i++)
		close(r->adopt[i]);
	r->nadopt = 0;
	r->destroyed = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void vsock_relay_destroy(struct vsock_relay *r)
{
	if (!r)
		return;
	/* No new guest requests; the handler is not running once this returns. */
	vmbus_set_tl_connect_handler(r->srv, NULL, NULL);
	/* The connections belong to the loop thread: end them there. */
	if (evloop_call(r->loop, relay_teardown, r) == 0) {
		pthread_mutex_lock(&r->lock);
		while (!r->destroyed)
			pthread_cond_wait(&r->cond, &r->lock);
		pthread_mutex_unlock(&r->lock);
	} else {
		relay_teardown(r);
	}
	if (r->path[0])
		unlink(r->path);
	relay_free(r);
}

int vsock_relay_connect_port(struct vsock_relay *r, uint32_t port, int *fd)
{
	if (port > HVSOCK_MAX_LISTEN_PORT)
		return -EINVAL;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (send(sv[0], line, (size_t)n, MSG_NOSIGNAL) != n) {
		int err = errno;
		close(sv[0]);
		close(sv[1]);
		return -err;
	}
	/* The relay's end must not block the loop. */
	int fl = fcntl(sv[1], F_GETFL);
	if (fl < 0 || fcntl(sv[1], F_SETFL, fl | O_NONBLOCK) < 0) {
		int err = errno;
		close(sv[0]);
		close(sv[1]);
		return -err;
	}
	pthread_mutex_lock(&r->lock);
	bool ok = r->nadopt < sizeof(r->adopt) / sizeof(r->adopt[0]) && !r->destroyed;
	if (ok)
		r->adopt[r->nadopt++] = sv[1];
	pthread_mutex_unlock(&r->lock);
	if (!ok) {
		close(sv[0]);
		close(sv[1]);
		return -EBUSY;
	}
	relay_kick(r);
	*fd = sv[0];
	return 0;
}

unsigned vsock_relay_nconns(struct vsock_relay *r)
{
	return atomic_load(&r->nconns);
}
