/*
 * tap:NAME: an existing tap device (Linux tun/tap, Documentation/networking/
 * tuntap.rst). Frames go as they are (IFF_NO_PI, no virtio-net header);
 * queues=N attaches N queues (IFF_MULTI_QUEUE), all read, the first written.
 * Sending never blocks: a frame the device has no room for is dropped (TCP
 * retransmits).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend/net_impl.h"
#include "core/log.h"

#define TAP_RX_BUDGET 64 /* frames read from one queue per poll round */

struct net_tap {
	struct net_backend b;
	unsigned nq;
	int fd[NET_MAX_QUEUES];
	uint8_t buf[65536]; /* the largest frame a tap can hand over */
};

static void tap_send(struct net_backend *b, const void *frame, size_t len)
{
	struct net_tap *t = (struct net_tap *)b;
	ssize_t n = write(t->fd[0], frame, len);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		log_guest_debug("%s: write: %s", t->b.desc, strerror(errno));
}

static int tap_poll_fill(struct net_backend *b, struct pollfd *fds, unsigned *nfds,
			 unsigned max, int *timeout_ms, bool rx_room)
{
	(void)timeout_ms;
	struct net_tap *t = (struct net_tap *)b;
	if (max - *nfds < t->nq)
		return -ENOSPC;
	/* Without room the frames wait in the tap's own queue (flow control). */
	for (unsigned i = 0; i < t->nq; i++)
		fds[(*nfds)++] = (struct pollfd){ .fd = t->fd[i], .events = rx_room ? POLLIN : 0 };
	return 0;
}

static void tap_poll_done(struct net_backend *b, const struct pollfd *fds, unsigned nfds,
			  bool error)
{
	struct net_tap *t = (struct net_tap *)b;
	if (error)
		return;
	for (unsigned i = 0; i < nfds && i < t->nq; i++) {
		if (!(fds[i].revents & POLLIN))
			continue;
		for (unsigned k = 0; k < TAP_RX_BUDGET; k++) {
			ssize_t n = read(t->fd[i], t->buf, sizeof(t->buf));
			if (n <= 0)
				break;
			t->b.rx(t->b.opaque, t->buf, (size_t)n);
		}
	}
}

static void tap_close(struct net_backend *b)
{
	struct net_tap *t = (struct net_tap *)b;
	for (unsigned i = 0; i < t->nq; i++)
		close(t->fd[i]);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send, .poll_fill = tap_poll_fill, .poll_done = tap_poll_done,
	.close = tap_close,
};

int net_tap_open(const struct net_backend_spec *spec, unsigned queues,
		 struct net_backend **out, char *err, size_t errlen)
{
	if (queues > NET_MAX_QUEUES) {
		snprintf(err, errlen, "tap:%s: at most %d queues", spec->tap, NET_MAX_QUEUES);
		return -EINVAL;
	}
	if (!if_nametoindex(spec->tap)) {
		snprintf(err, errlen, "tap:%s: no such interface (create it first, e.g. "
			 "ip tuntap add %s mode tap%s user $USER)", spec->tap, spec->tap,
			 queues > 1 ? " multi_queue" : "");
		return -ENODEV;
	}
	struct net_tap *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->b.ops = &tap_ops;
	for (; t->nq < queues; t->nq++) {
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			snprintf(err, errlen, "tap:%s: cannot open /dev/net/tun: %s", spec->tap,
				 strerror(e));
			tap_close(&t->b);
			return -e;
		}
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0);
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", spec->tap);
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			int e = errno;
			snprintf(err, errlen, "tap:%s: cannot attach%s: %s", spec->tap,
				 e == EINVAL ? " (not a tap device, or its multi-queue setting "
				 "differs from queues=)" : "", strerror(e));
			close(fd);
			tap_close(&t->b);
			return -e;
		}
		t->fd[t->nq] = fd;
	}
	snprintf(t->b.desc, sizeof(t->b.desc), "tap:%s", spec->tap);
	if (queues > 1)
		snprintf(t->b.desc + strlen(t->b.desc), sizeof(t->b.desc) - strlen(t->b.desc),
			 " (%u queues)", queues);
	*out = &t->b;
	return 0;
}
