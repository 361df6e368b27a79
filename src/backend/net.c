/*
 * Network backends (see net.h): opening by kind, the calls that dispatch to
 * a backend's vtable, and `none`, a NIC with nothing behind it.
 */
#include "backend/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/net_impl.h"

static void none_send(struct net_backend *b, const void *frame, size_t len)
{
	(void)b;
	(void)frame;
	(void)len;
}

static int none_poll_fill(struct net_backend *b, struct pollfd *fds, unsigned *nfds,
			  unsigned max, int *timeout_ms, bool rx_room)
{
	(void)b;
	(void)fds;
	(void)nfds;
	(void)max;
	(void)timeout_ms;
	(void)rx_room;
	return 0;
}

static void none_poll_done(struct net_backend *b, const struct pollfd *fds, unsigned nfds,
			   bool error)
{
	(void)b;
	(void)fds;
	(void)nfds;
	(void)error;
}

static void none_close(struct net_backend *b)
{
	free(b);
}

static const struct net_backend_ops none_ops = {
	.send = none_send, .poll_fill = none_poll_fill, .poll_done = none_poll_done,
	.close = none_close,
};

int net_backend_open(const struct net_backend_spec *spec, unsigned queues,
		     const uint8_t mac[6], net_rx_fn rx, void *opaque,
		     struct net_backend **out, char *err, size_t errlen)
{
	struct net_backend *b = NULL;
	int ret;
	switch (spec->kind) {
	case NET_BACKEND_NONE:
		b = calloc(1, sizeof(*b));
		if (!b) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		b->ops = &none_ops;
		snprintf(b->desc, sizeof(b->desc), "none");
		ret = 0;
		break;
	case NET_BACKEND_CONSOMME:
		ret = net_consomme_open(spec, mac, &b, err, errlen);
		break;
	case NET_BACKEND_TAP:
		ret = net_tap_open(spec, queues ? queues : 1, &b, err, errlen);
		break;
	default:
		snprintf(err, errlen, "unknown network backend");
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	b->rx = rx;
	b->opaque = opaque;
	*out = b;
	return 0;
}

void net_backend_close(struct net_backend *b)
{
	if (b)
		b->ops->close(b);
}

const char *net_backend_describe(const struct net_backend *b)
{
	return b->desc;
}

void net_backend_send(struct net_backend *b, const void *frame, size_t len)
{
	b->ops->send(b, frame, len);
}

int net_backend_poll_fill(struct net_backend *b, struct pollfd *fds, unsigned *nfds,
			  unsigned max, int *timeout_ms, bool rx_room)
{
	return b->ops->poll_fill(b, fds, nfds, max, timeout_ms, rx_room);
}

void net_backend_poll_done(struct net_backend *b, const struct pollfd *fds, unsigned nfds,
			   bool error)
{
	b->ops->poll_done(b, fds, nfds, error);
}
