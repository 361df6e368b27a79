/*
 * The VM's NICs (--nic, --net): their backends, opened once when hvmm
 * starts (a missing tap or a taken hostfwd port is reported before the
 * guest runs, and consomme's connections survive a VM reset), and the
 * VMBus NIC (netvsp) in front of each, rebuilt at every boot.
 *
 * Each NIC has one thread, started by network_attach_vmbus(): it polls the
 * NIC's kick eventfd (the guest signalled, netvsp_host.kick), the backend's
 * fds and timers; runs netvsp_poll(); hands backend frames to netvsp_rx()
 * (a bounded queue of NETWORK_RXQ frames waits for receive room, beyond it
 * frames are dropped: TCP retransmits); and sends the guest's frames to the
 * backend. Backend and netvsp data paths run on that thread only.
 */
#ifndef HVMM_CORE_NETWORK_H
#define HVMM_CORE_NETWORK_H

#include <stdint.h>

#define NETWORK_RXQ 256 /* frames waiting for the guest's receive room, per NIC */

struct gmem;
struct hvmm_config;
struct network;
struct vmbus_server;

/* Opens every NIC's backend. 0 or -errno (one line already logged). */
int network_open(const struct hvmm_config *cfg, struct network **out);
void network_close(struct network *net);

/* NIC i's MAC: 00:15:5d (Hyper-V's OUI):68:76:i. */
void network_mac(unsigned i, uint8_t mac[6]);

/*
 * Offers a netvsp per NIC on srv and starts the NICs' threads (nothing
 * without NICs; net may be NULL). 0 or -errno (logged).
 */
int network_attach_vmbus(struct network *net, struct vmbus_server *srv,
			 const struct gmem *mem);
/* After vmbus_server_destroy(): stops the threads, frees the netvsps. */
void network_detach_vmbus(struct network *net);

/*
 * Inspect view: one child per NIC with its backend, MAC and netvsp's
 * counters. Call where the NICs cannot be detached meanwhile (under
 * vm->lock while vm->vmbus is set: vmbus_glue_inspect).
 */
struct inspect;
void network_inspect(struct network *net, struct inspect *in);

#endif
