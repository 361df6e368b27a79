/*
 * Internal to src/backend/net*.c: the vtable behind struct net_backend.
 * Each backend embeds struct net_backend first.
 */
#ifndef HVMM_BACKEND_NET_IMPL_H
#define HVMM_BACKEND_NET_IMPL_H

#include "backend/net.h"

struct net_backend_ops {
	void (*send)(struct net_backend *b, const void *frame, size_t len);
	int (*poll_fill)(struct net_backend *b, struct pollfd *fds, unsigned *nfds,
			 unsigned max, int *timeout_ms, bool rx_room);
	void (*poll_done)(struct net_backend *b, const struct pollfd *fds, unsigned nfds,
			  bool error);
	void (*close)(struct net_backend *b);
};

struct net_backend {
	const struct net_backend_ops *ops;
	net_rx_fn rx;
	void *opaque;
	char desc[96];
};

int net_consomme_open(const struct net_backend_spec *spec, const uint8_t mac[6],
		      struct net_backend **out, char *err, size_t errlen);
int net_tap_open(const struct net_backend_spec *spec, unsigned queues,
		 struct net_backend **out, char *err, size_t errlen);

#endif
