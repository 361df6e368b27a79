/*
 * The VM's NICs (see network.h): the backend behind each, its netvsp, and
 * the thread that moves frames between them. struct netvsp_host is
 * implemented here: guest memory through gmem_map, a mutex as the device
 * lock, an eventfd as the kick, the backend as the frame sink.
 *
 * Lock order: the VMBus server lock, then a NIC's device lock (netvsp takes
 * it from its VMBus callbacks); this file takes no lock of its own on the
 * data path, which runs on the NIC's thread alone.
 */
#include "core/network.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/net.h"
#include "core/cli.h"
#include "core/gmem.h"
#include "core/inspect.h"
#include "core/log.h"
#include "dev/netvsp.h"

struct network_nic {
	unsigned index;
	uint8_t mac[6];
	unsigned queues;            /* --net queues=N: netvsp's channels */
	char spec[64];
	struct net_backend *be;
	struct netvsp *nv;          /* between attach and detach */
	const struct gmem *mem;
	pthread_mutex_t lock;       /* netvsp's device lock */
	int kick_fd;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	/* Frames from the backend waiting for receive room (NIC thread only). */
	uint8_t (*rxq)[NET_MAX_FRAME];
	uint16_t rxq_len[NETWORK_RXQ];
	unsigned rxq_head, rxq_count;
	uint64_t rxq_dropped;
	struct pollfd *fds;
	unsigned fds_max;
};

struct network {
	struct network_nic nics[CLI_MAX_NICS];
	unsigned n;
};

void network_mac(unsigned i, uint8_t mac[6])
{
	static const uint8_t base[6] = { 0x00, 0x15, 0x5d, 0x68, 0x76, 0x00 };
	memcpy(mac, base, 6);
	mac[5] = (uint8_t)i;
}

/* --- netvsp_host ---------------------------------------------------------- */

static void *host_map(void *opaque, uint64_t gpa, uint64_t len)
{
	struct network_nic *nic = opaque;
	return gmem_map(nic->mem, gpa, len);
}

static void host_lock(void *opaque)
{
	pthread_mutex_lock(&((struct network_nic *)opaque)->lock);
}

static void host_unlock(void *opaque)
{
	pthread_mutex_unlock(&((struct network_nic *)opaque)->lock);
}

/* Any thread, maybe under the VMBus server lock: never blocks (EFD_NONBLOCK). */
static void host_kick(void *opaque)
{
	struct network_nic *nic = opaque;
	uint64_t one = 1;
	ssize_t r = write(nic->kick_fd, &one, sizeof(one));
	(void)r; /* EAGAIN: the counter is saturated, the thread wakes anyway */
}

/* NIC thread (inside netvsp_poll, device lock released). */
static void host_tx(void *opaque, const void *frame, size_t len)
{
	struct network_nic *nic = opaque;
	net_backend_send(nic->be, frame, len);
}

/* --- receive path (NIC thread) ------------------------------------------- */

static void rxq_push(struct network_nic *nic, const void *frame, size_t len)
{
	if (nic->rxq_count == NETWORK_RXQ || len > NET_MAX_FRAME) {
		nic->rxq_dropped++;
		return;
	}
	unsigned slot = (nic->rxq_head + nic->rxq_count) % NETWORK_RXQ;
	memcpy(nic->rxq[slot], frame, len);
	nic->rxq_len[slot] = (uint16_t)len;
	nic->rxq_count++;
}

/* Gives queued frames to the guest until it has no room. */
static void rxq_drain(struct network_nic *nic)
{
	while (nic->rxq_count) {
		unsigned slot = nic->rxq_head;
		if (netvsp_rx(nic->nv, nic->rxq[slot], nic->rxq_len[slot]) == -EAGAIN)
			return;
		/* Taken, or dropped (NIC down, too big): either way it is gone. */
		nic->rxq_head = (slot + 1) % NETWORK_RXQ;
		nic->rxq_count--;
	}
}

/*
 * The backend's receive callback. Also runs inside host_tx (slirp answers
 * ARP and DHCP at once), which netvsp allows. Frames keep their order: once
 * one waits, the rest queue behind it.
 */
static void on_backend_rx(void *opaque, const void *frame, size_t len)
{
	struct network_nic *nic = opaque;
	if (!nic->nv)
		return;
	if (!nic->rxq_count && netvsp_rx(nic->nv, frame, len) != -EAGAIN)
		return;
	rxq_push(nic, frame, len);
}

/* --- the NIC thread ------------------------------------------------------- */

static int grow_fds(struct network_nic *nic)
{
	unsigned n = nic->fds_max ? nic->fds_max * 2 : 16;
	struct pollfd *p = realloc(nic->fds, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	nic->fds = p;
	nic->fds_max = n;
	return 0;
}

static void *nic_thread(void *arg)
{
	struct network_nic *nic = arg;
	netvsp_set_link(nic->nv, true);
	while (!atomic_load(&nic->stop)) {
		bool more = netvsp_poll(nic->nv);
		rxq_drain(nic);
		unsigned n;
		int timeout, ret;
		do {
			nic->fds[0] = (struct pollfd){ .fd = nic->kick_fd, .events = POLLIN };
			n = 1;
			timeout = more ? 0 : -1;
			/* A waiting frame means no room now: a tap keeps the rest. */
			ret = net_backend_poll_fill(nic->be, nic->fds, &n, nic->fds_max, &timeout,
						    nic->rxq_count == 0);
		} while (ret == -ENOSPC && grow_fds(nic) == 0);
		if (ret < 0) {
			/* Out of memory for more sockets: poll the ones that fit, soon. */
			n = 1;
			timeout = 10;
		}
		int r = poll(nic->fds, n, timeout);
		if (r < 0 && errno != EINTR)
			log_warn("net%u: poll: %s", nic->index, strerror(errno));
		if (r > 0 && (nic->fds[0].revents & POLLIN)) {
			uint64_t v;
			ssize_t rd = read(nic->kick_fd, &v, sizeof(v));
			(void)rd;
		}
		if (ret == 0)
			net_backend_poll_done(nic->be, nic->fds + 1, n - 1, r < 0);
	}
	return NULL;
}

/* --- setup ---------------------------------------------------------------- */

int network_open(const struct hvmm_config *cfg, struct network **out)
{
	*out = NULL;
	if (!cfg->nnets)
		return 0;
	struct network *net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->nnets; i++) {
		struct network_nic *nic = &net->nics[i];
		nic->index = i;
		nic->kick_fd = -1;
		snprintf(nic->spec, sizeof(nic->spec), "%s", cfg->nets[i]);
		network_mac(i, nic->mac);
		struct net_cli_spec ns;
		char err[256];
		int ret = net_cli_spec_parse(cfg->nets[i], &ns, err, sizeof(err));
		if (ret < 0) {
			log_error("invalid --net '%s': %s", cfg->nets[i], err);
			network_close(net);
			return ret;
		}
		pthread_mutex_init(&nic->lock, NULL);
		net->n++;
		nic->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		nic->rxq = malloc(NETWORK_RXQ * sizeof(*nic->rxq));
		if (nic->kick_fd < 0 || !nic->rxq || grow_fds(nic) < 0) {
			ret = nic->kick_fd < 0 ? -errno : -ENOMEM;
			log_error("net%u: %s", i, strerror(-ret));
			network_close(net);
			return ret;
		}
		nic->queues = ns.queues;
		ret = net_backend_open(&ns.backend, ns.queues, nic->mac, on_backend_rx, nic,
				       &nic->be, err, sizeof(err));
		if (ret < 0) {
			log_error("--net '%s': %s", cfg->nets[i], err);
			network_close(net);
			return ret;
		}
		log_debug("net%u: %02x:%02x:%02x:%02x:%02x:%02x on %s", i, nic->mac[0],
			  nic->mac[1], nic->mac[2], nic->mac[3], nic->mac[4], nic->mac[5],
			  net_backend_describe(nic->be));
	}
	*out = net;
	return 0;
}

void network_close(struct network *net)
{
	if (!net)
		return;
	network_detach_vmbus(net);
	for (unsigned i = 0; i < net->n; i++) {
		struct network_nic *nic = &net->nics[i];
		net_backend_close(nic->be);
		if (nic->kick_fd >= 0)
			close(nic->kick_fd);
		free(nic->rxq);
		free(nic->fds);
		pthread_mutex_destroy(&nic->lock);
	}
	free(net);
}

int network_attach_vmbus(struct network *net, struct vmbus_server *srv,
			 const struct gmem *mem)
{
	for (unsigned i = 0; net && i < net->n; i++) {
		struct network_nic *nic = &net->nics[i];
		struct netvsp_config cfg = {
			.instance = i,
			.queues = nic->queues,
			.host = {
				.opaque = nic, .map = host_map, .lock = host_lock,
				.unlock = host_unlock, .kick = host_kick, .tx = host_tx,
			},
		};
		memcpy(cfg.mac, nic->mac, 6);
		nic->mem = mem;
		nic->rxq_head = nic->rxq_count = 0;
		atomic_store(&nic->stop, false);
		int ret = netvsp_create(srv, &cfg, &nic->nv);
		if (ret < 0) {
			log_error("net%u: cannot create the VMBus NIC: %s", i, strerror(-ret));
			nic->nv = NULL;
			return ret;
		}
		ret = -pthread_create(&nic->thread, NULL, nic_thread, nic);
		if (ret < 0) {
			log_error("net%u: cannot start its thread: %s", i, strerror(-ret));
			return ret;
		}
		nic->running = true;
	}
	return 0;
}

void network_detach_vmbus(struct network *net)
{
	for (unsigned i = 0; net && i < net->n; i++) {
		struct network_nic *nic = &net->nics[i];
		if (nic->running) {
			atomic_store(&nic->stop, true);
			host_kick(nic);
			pthread_join(nic->thread, NULL);
			nic->running = false;
		}
		if (!nic->nv)
			continue;
		struct netvsp_stats st;
		netvsp_get_stats(nic->nv, &st);
		log_debug("net%u: guest sent %" PRIu64 " frames (%" PRIu64 " bytes), received %"
			  PRIu64 " (%" PRIu64 " bytes); dropped %" PRIu64 " for lack of room, %"
			  PRIu64 " at the queue; %" PRIu64 " guest errors; offloads: %" PRIu64
			  " checksummed, %" PRIu64 " large sends, %" PRIu64 " refused; %" PRIu64
			  " filtered", i, st.tx_frames, st.tx_bytes, st.rx_frames, st.rx_bytes,
			  st.rx_dropped, nic->rxq_dropped, st.guest_errors, st.tx_csum, st.tx_lso,
			  st.tx_offload_errors, st.rx_filtered);
		netvsp_destroy(nic->nv);
		nic->nv = NULL;
		nic->rxq_count = 0;
	}
}

/* ---- inspect ---------------------------------------------------------------- */

static void inspect_nic(struct inspect *in, void *opaque)
{
	struct network_nic *nic = opaque;
	char mac[18];
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", nic->mac[0], nic->mac[1],
		 nic->mac[2], nic->mac[3], nic->mac[4], nic->mac[5]);
	inspect_str(in, "backend", nic->spec);
	inspect_str(in, "mac", mac);
	inspect_u64(in, "queues", nic->queues);
	if (!nic->nv)
		return;
	struct netvsp_stats st;
	netvsp_get_stats(nic->nv, &st);
	inspect_u64(in, "tx_frames", st.tx_frames);
	inspect_u64(in, "tx_bytes", st.tx_bytes);
	inspect_u64(in, "rx_frames", st.rx_frames);
	inspect_u64(in, "rx_bytes", st.rx_bytes);
	inspect_u64(in, "rx_dropped", st.rx_dropped);
	inspect_u64(in, "rx_filtered", st.rx_filtered);
	inspect_u64(in, "tx_checksummed", st.tx_csum);
	inspect_u64(in, "tx_lso", st.tx_lso);
	inspect_u64(in, "tx_offload_errors", st.tx_offload_errors);
	inspect_u64(in, "guest_errors", st.guest_errors);
}

void network_inspect(struct network *net, struct inspect *in)
{
	for (unsigned i = 0; net && i < net->n; i++)
		inspect_child_index(in, i, inspect_nic, &net->nics[i]);
}
