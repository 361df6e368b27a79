/*
 * Network backends: where a virtual NIC's Ethernet frames go on the host,
 * behind one small interface the NIC's thread (core/network.c) drives.
 * Kinds follow OpenVMM's NIC string (openvmm_entry cli_args.rs
 * `NicConfigCli`, `EndpointConfigCli`):
 *
 *   [uh:][vtl2:][queues=N:][pcie_port=P:]BACKEND
 *
 *   none                      a NIC with nothing behind it (frames dropped)
 *   consomme[:CIDR][,hostfwd=tcp|udp:[ADDR]:HOSTPORT-[ADDR]:GUESTPORT]...
 *                             user-mode NAT on libslirp: DHCP, DNS
 *                             forwarding, outbound TCP/UDP through host
 *                             sockets, host-port forwards into the guest.
 *                             Default network 10.0.0.0/24 as OpenVMM's
 *                             consomme: gateway (and the host's loopback)
 *                             .1, the guest's lease .2, DNS the last host
 *                             address (.254).
 *   tap:NAME                  an existing tap device (multi-queue with
 *                             queues=N)
 *
 * Threads: a backend belongs to one thread (the NIC's): every call below,
 * and the receive callback, happen on it. The thread polls the backend's
 * fds: net_backend_poll_fill() adds them (and lowers the timeout for the
 * backend's timers), poll(2), net_backend_poll_done() then reads what is
 * ready and hands each frame to the receive callback. Sending copies the
 * frame or drops it; nothing on the data path allocates.
 */
#ifndef HVMM_BACKEND_NET_H
#define HVMM_BACKEND_NET_H

#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_MAX_HOSTFWD 16
#define NET_MAX_QUEUES 16
#define NET_MAX_FRAME 1536   /* 1500 MTU + Ethernet header + VLAN tag, rounded */

enum net_backend_kind { NET_BACKEND_NONE, NET_BACKEND_CONSOMME, NET_BACKEND_TAP };

/* hostfwd=PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT; addresses in network order. */
struct net_hostfwd {
	bool udp;
	uint32_t host_addr;   /* 0 = every host address */
	uint16_t host_port;
	uint32_t guest_addr;  /* 0 = the guest's DHCP lease */
	uint16_t guest_port;
};

struct net_backend_spec {
	enum net_backend_kind kind;
	/* consomme */
	uint32_t network;     /* host order, host bits clear */
	unsigned prefix;      /* 1..NET_CONSOMME_MAX_PREFIX */
	struct net_hostfwd fwd[NET_MAX_HOSTFWD];
	unsigned nfwd;
	/* tap */
	char tap[IFNAMSIZ];
};

/* consomme needs room for the gateway, the DHCP pool (16) and broadcast. */
#define NET_CONSOMME_MAX_PREFIX 27

/* A parsed --net value. */
struct net_cli_spec {
	bool uh, vtl2;
	unsigned queues;          /* queues=N, 1 when absent */
	bool pcie_port;           /* pcie_port=P: given */
	struct net_backend_spec backend;
};

/*
 * Parses a --net value (the NIC string above). 0, or -EINVAL with a
 * one-line message in err naming the problem. Checks grammar only: the
 * tap device and the forwarded ports are opened by net_backend_open().
 */
int net_cli_spec_parse(const char *s, struct net_cli_spec *out, char *err, size_t errlen);

/*
 * The consomme addresses of a spec, host order: gateway .1, guest .2, DNS
 * the last host address (libslirp sends every packet for its DNS address to
 * the host's resolver, so it must not be the gateway, and stays clear of
 * the 16-address DHCP pool from .2).
 */
uint32_t net_consomme_gateway(const struct net_backend_spec *spec);
uint32_t net_consomme_guest(const struct net_backend_spec *spec);
uint32_t net_consomme_dns(const struct net_backend_spec *spec);

struct net_backend;

/*
 * A frame from the host side for the guest: Ethernet header first, no FCS.
 * The buffer is the backend's until the callback returns (copy to keep it).
 */
typedef void (*net_rx_fn)(void *opaque, const void *frame, size_t len);

/*
 * Opens a backend for a NIC with `queues` queues (tap: that many queue fds)
 * and the guest MAC `mac`. rx gets every frame for the guest. 0, or -errno
 * with a one-line message in err ("tap:foo: cannot attach: Operation not
 * permitted", "consomme: cannot forward tcp:127.0.0.1:8080: ...").
 */
int net_backend_open(const struct net_backend_spec *spec, unsigned queues,
		     const uint8_t mac[6], net_rx_fn rx, void *opaque,
		     struct net_backend **out, char *err, size_t errlen);
void net_backend_close(struct net_backend *b);

/* "consomme 10.0.0.0/24", "tap:tap0 (2 queues)", "none". */
const char *net_backend_describe(const struct net_backend *b);

/*
 * One frame from the guest (Ethernet header first, no FCS). The backend
 * copies it out or drops it (a full tap queue, a frame slirp refuses); it
 * may call the receive callback from inside (slirp answers ARP and DHCP at
 * once).
 */
void net_backend_send(struct net_backend *b, const void *frame, size_t len);

/*
 * Adds the backend's fds to fds[*nfds..max) and advances *nfds; lowers
 * *timeout_ms (-1 = none) to the backend's next timer. `rx_room` false:
 * the NIC cannot take frames now, so a backend that can wait (tap) does not
 * ask for input. -ENOSPC when max is too small (grow and call again).
 */
int net_backend_poll_fill(struct net_backend *b, struct pollfd *fds, unsigned *nfds,
			  unsigned max, int *timeout_ms, bool rx_room);

/*
 * After poll() returned (error: poll failed), with the same fds the last
 * net_backend_poll_fill() added: reads what is ready and runs due timers.
 * Frames go to the receive callback.
 */
void net_backend_poll_done(struct net_backend *b, const struct pollfd *fds, unsigned nfds,
			   bool error);

#endif
