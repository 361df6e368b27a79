/*
 * consomme: user-mode NAT for a NIC, named after OpenVMM's backend and
 * built on libslirp (the stack QEMU's `-netdev user` uses). The guest sees
 * a router at NETWORK.1 that answers DHCP (lease NETWORK.2 onwards) and
 * leads TCP/UDP for NETWORK.1 to the host's loopback, and a DNS server at
 * the network's last host address that forwards to the host's resolvers;
 * other destinations leave through host sockets. hostfwd=
 * forwards listen on host ports and connect into the guest.
 *
 * One thread owns the Slirp instance (libslirp is not thread safe): the
 * NIC's thread, through send/poll_fill/poll_done. libslirp's timers are kept
 * in a short list polled by that thread; its sockets go in the caller's
 * pollfd array.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libslirp.h>

#include "backend/net_impl.h"
#include "core/log.h"

struct consomme_timer {
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
	struct consomme_timer *next;
};

struct net_consomme {
	struct net_backend b;
	Slirp *slirp;
	struct consomme_timer *timers;
	bool notified;
	/* The pollfd slice of the current round (fill → poll_done). */
	struct pollfd *fds;
	unsigned base, nfds, max;
	bool overflow;
	const struct pollfd *rfds;
	unsigned rnfds;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct net_consomme *c = opaque;
	c->b.rx(c->b.opaque, buf, len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	log_guest("consomme: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct net_consomme *c = opaque;
	struct consomme_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = c->timers;
	c->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct net_consomme *c = opaque;
	for (struct consomme_timer **p = &c->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	((struct consomme_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void cb_notify(void *opaque)
{
	((struct net_consomme *)opaque)->notified = true;
}

static const SlirpCb consomme_cb = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
};

static void consomme_send(struct net_backend *b, const void *frame, size_t len)
{
	struct net_consomme *c = (struct net_consomme *)b;
	if (len > INT_MAX)
		return;
	slirp_input(c->slirp, frame, (int)len);
}

static int add_poll(int fd, int events, void *opaque)
{
	struct net_consomme *c = opaque;
	if (c->base + c->nfds >= c->max) {
		c->overflow = true;
		return -1;
	}
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	c->fds[c->base + c->nfds] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)c->nfds++;
}

static int get_revents(int idx, void *opaque)
{
	struct net_consomme *c = opaque;
	if (idx < 0 || (unsigned)idx >= c->rnfds)
		return 0;
	short rev = c->rfds[idx].revents;
	int r = 0;
	if (rev & POLLIN)
		r |= SLIRP_POLL_IN;
	if (rev & POLLOUT)
		r |= SLIRP_POLL_OUT;
	if (rev & POLLPRI)
		r |= SLIRP_POLL_PRI;
	if (rev & (POLLERR | POLLNVAL))
		r |= SLIRP_POLL_ERR;
	if (rev & POLLHUP)
		r |= SLIRP_POLL_HUP;
	return r;
}

static int consomme_poll_fill(struct net_backend *b, struct pollfd *fds, unsigned *nfds,
			      unsigned max, int *timeout_ms, bool rx_room)
{
	(void)rx_room; /* slirp cannot hold back: the NIC queues or drops */
	struct net_consomme *c = (struct net_consomme *)b;
	c->fds = fds;
	c->base = *nfds;
	c->nfds = 0;
	c->max = max;
	c->overflow = false;
	uint32_t t = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
	slirp_pollfds_fill(c->slirp, &t, add_poll, c);
	if (c->overflow)
		return -ENOSPC;
	int64_t now = now_ns() / 1000000;
	for (struct consomme_timer *tm = c->timers; tm; tm = tm->next) {
		if (tm->expire_ms < 0)
			continue;
		int64_t d = tm->expire_ms - now;
		if (d < 0)
			d = 0;
		if ((uint64_t)d < t)
			t = (uint32_t)d;
	}
	if (c->notified) {
		c->notified = false;
		t = 0;
	}
	*timeout_ms = t >= INT_MAX ? -1 : (int)t;
	*nfds += c->nfds;
	return 0;
}

static void run_timers(struct net_consomme *c)
{
	int64_t now = now_ns() / 1000000;
	/* A callback may re-arm or free timers: restart the walk after each. */
	for (unsigned guard = 0; guard < 64; guard++) {
		struct consomme_timer *due = NULL;
		for (struct consomme_timer *t = c->timers; t; t = t->next)
			if (t->expire_ms >= 0 && t->expire_ms <= now)
				due = t;
		if (!due)
			return;
		due->expire_ms = -1;
		due->cb(due->cb_opaque);
	}
}

static void consomme_poll_done(struct net_backend *b, const struct pollfd *fds,
			       unsigned nfds, bool error)
{
	struct net_consomme *c = (struct net_consomme *)b;
	c->rfds = fds;
	c->rnfds = nfds;
	run_timers(c);
	slirp_pollfds_poll(c->slirp, error, get_revents, c);
	c->rfds = NULL;
	c->rnfds = 0;
}

static void consomme_close(struct net_backend *b)
{
	struct net_consomme *c = (struct net_consomme *)b;
	if (c->slirp)
		slirp_cleanup(c->slirp);
	while (c->timers) {
		struct consomme_timer *t = c->timers;
		c->timers = t->next;
		free(t);
	}
	free(c);
}

static const struct net_backend_ops consomme_ops = {
	.send = consomme_send, .poll_fill = consomme_poll_fill,
	.poll_done = consomme_poll_done, .close = consomme_close,
};

static struct in_addr addr_of(uint32_t host_order)
{
	return (struct in_addr){ htonl(host_order) };
}

int net_consomme_open(const struct net_backend_spec *spec, const uint8_t mac[6],
		      struct net_backend **out, char *err, size_t errlen)
{
	(void)mac; /* slirp learns the guest's MAC from its ARP and DHCP */
	struct net_consomme *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->b.ops = &consomme_ops;
	uint32_t mask = ~0u << (32 - spec->prefix);
	SlirpConfig cfg = {
		.version = 4,
		.restricted = 0,
		.in_enabled = true,
		.vnetwork = addr_of(spec->network),
		.vnetmask = addr_of(mask),
		.vhost = addr_of(net_consomme_gateway(spec)),
		.vdhcp_start = addr_of(net_consomme_guest(spec)),
		/* Not the gateway: slirp sends all traffic for it to the resolver. */
		.vnameserver = addr_of(net_consomme_dns(spec)),
		.in6_enabled = false,
	};
	c->slirp = slirp_new(&cfg, &consomme_cb, c);
	if (!c->slirp) {
		snprintf(err, errlen, "consomme: libslirp refused the configuration");
		free(c);
		return -EINVAL;
	}
	for (unsigned i = 0; i < spec->nfwd; i++) {
		const struct net_hostfwd *f = &spec->fwd[i];
		errno = 0;
		if (slirp_add_hostfwd(c->slirp, f->udp, (struct in_addr){ f->host_addr },
				      f->host_port, (struct in_addr){ f->guest_addr },
				      f->guest_port) < 0) {
			int e = errno ? errno : EADDRINUSE;
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &(struct in_addr){ f->host_addr }, a, sizeof(a));
			snprintf(err, errlen, "consomme: cannot forward host port %s:%s:%u: %s",
				 f->udp ? "udp" : "tcp", a, f->host_port, strerror(e));
			consomme_close(&c->b);
			return -e;
		}
	}
	char net[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &cfg.vnetwork, net, sizeof(net));
	snprintf(c->b.desc, sizeof(c->b.desc), "consomme %s/%u", net, spec->prefix);
	*out = &c->b;
	return 0;
}
