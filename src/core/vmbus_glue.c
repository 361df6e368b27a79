/*
 * hvmm's glue to the portable VMBus server (see vmbus_glue.h): struct
 * vmbus_host on top of the Hyper-V emulation (SynIC message slot 2 and
 * event flags for SINT 2, HvPostMessage/HvSignalEvent routing) and guest
 * memory, a mutex as the server lock, and the utility devices.
 */
#include "core/vmbus_glue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/inspect.h"
#include "core/log.h"
#include "core/network.h"
#include "core/storage.h"
#include "core/vm.h"
#include "core/vsock_relay.h"
#include "dev/hvutil.h"
#include "hv/hv.h"
#include "vmbus/vmbus.h"

struct vmbus_glue {
	struct vm *vm;
	struct vmbus_server *srv;
	struct hvutils *utils;
	struct vsock_relay *vsock; /* hybrid vsock (a socket with --vmbus-vsock-path) */
	pthread_mutex_t lock;
	/* Sub-channel flushes queued on the event loop; teardown waits for 0. */
	atomic_uint flushes;
	atomic_bool dying;
};

static void *host_map(void *opaque, uint64_t gpa, size_t len)
{
	struct vmbus_glue *g = opaque;
	return gmem_map(&g->vm->mem, gpa, len);
}

static int host_post(void *opaque, uint32_t vp, const void *msg, size_t len)
{
	struct vmbus_glue *g = opaque;
	return hv_synic_post_message(g->vm->hv, vp, VMBUS_MESSAGE_SINT, 1, msg, (uint32_t)len);
}

static void host_signal(void *opaque, uint32_t vp, uint32_t relid)
{
	struct vmbus_glue *g = opaque;
	hv_synic_signal_event(g->vm->hv, vp, VMBUS_MESSAGE_SINT, relid);
}

static void host_lock(void *opaque)
{
	pthread_mutex_lock(&((struct vmbus_glue *)opaque)->lock);
}

static void host_unlock(void *opaque)
{
	pthread_mutex_unlock(&((struct vmbus_glue *)opaque)->lock);
}

/*
 * A device asked for sub-channels (from its worker, maybe while a vCPU
 * holds the server lock and waits for that worker in close()): the server
 * lock is taken later, on the event loop, which no close() waits for.
 */
static void flush_on_loop(void *opaque)
{
	struct vmbus_glue *g = opaque;
	if (!atomic_load(&g->dying))
		vmbus_server_flush(g->srv);
	atomic_fetch_sub(&g->flushes, 1u);
}

static void host_request_flush(void *opaque)
{
	struct vmbus_glue *g = opaque;
	atomic_fetch_add(&g->flushes, 1u);
	if (atomic_load(&g->dying) || !g->vm->loop ||
	    evloop_call(g->vm->loop, flush_on_loop, g) < 0)
		atomic_fetch_sub(&g->flushes, 1u); /* served at the guest's next message */
}

/*
 * hv calls these on the guest's vCPU thread with no hv lock held (the server
 * posts its reply from inside: see test_hv_hypercall), the vp and flag
 * already validated; VMBus uses flag 0 and routes by connection id only.
 */
static uint16_t on_post(void *opaque, uint32_t vp, uint32_t conn_id, uint32_t mtype,
			const void *payload, uint32_t len)
{
	(void)vp;
	struct vmbus_glue *g = opaque;
	return vmbus_server_post_message(g->srv, conn_id, mtype, payload, len);
}

static uint16_t on_signal(void *opaque, uint32_t vp, uint32_t conn_id, uint16_t flag)
{
	(void)vp;
	(void)flag;
	struct vmbus_glue *g = opaque;
	return vmbus_server_signal_event(g->srv, conn_id);
}

/*
 * Channels close (device close callbacks) before the devices go; then the
 * NICs' threads stop and their netvsps go.
 */
static void teardown(struct vm *vm, struct vmbus_glue *g)
{
	/* Queued flushes use g: wait for them (the loop runs them or drops none). */
	atomic_store(&g->dying, true);
	while (atomic_load(&g->flushes))
		usleep(1000);
	vsock_relay_destroy(g->vsock); /* rescinds its channels: before the server */
	vmbus_server_destroy(g->srv);
	hvutil_detach(g->utils);
	storage_detach_vmbus(vm->storage);
	network_detach_vmbus(vm->network);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* The hybrid vsock socket's INSPECT requests (hvmm-diag PATH inspect). */
static int render_inspect(void *opaque, const char *path, int depth, char **out)
{
	return inspect_render(vm_inspect, opaque, path, depth, out);
}

int vmbus_glue_create(struct vm *vm)
{
	struct vmbus_glue *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->vm = vm;
	pthread_mutex_init(&g->lock, NULL);
	struct vmbus_host host = {
		.opaque = g, .map = host_map, .post_message = host_post,
		.signal_event = host_signal, .lock = host_lock, .unlock = host_unlock,
		.request_flush = host_request_flush,
	};
	struct vmbus_server_config cfg = {
		.max_version = vm->cfg->vmbus_max_version,
		.nvps = vm->nvcpus,
	};
	int ret = vmbus_server_create(&host, &cfg, &g->srv);
	if (ret < 0) {
		log_error("cannot create the VMBus server: %s", strerror(-ret));
		pthread_mutex_destroy(&g->lock);
		free(g);
		return ret;
	}
	ret = hvutil_attach(vm, g->srv, &g->utils);
	if (ret < 0) {
		log_error("cannot create the VMBus utility devices: %s", strerror(-ret));
		vmbus_server_destroy(g->srv);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return ret;
	}
	ret = storage_attach_vmbus(vm->storage, g->srv, &vm->mem);
	if (ret < 0) {
		vmbus_server_destroy(g->srv);
		storage_detach_vmbus(vm->storage); /* the controllers made before the failure */
		hvutil_detach(g->utils);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return ret;
	}
	ret = network_attach_vmbus(vm->network, g->srv, &vm->mem);
	if (ret < 0) {
		teardown(vm, g);
		return ret;
	}
	/* Without --vmbus-vsock-path: in-process connections (console `v`) only. */
	if ((ret = vsock_relay_create(vm->loop, g->srv, vm->cfg->vsock_path, render_inspect, vm,
				     &g->vsock)) < 0) {
		teardown(vm, g);
		return ret;
	}
	hv_set_connection_handlers(vm->hv, on_post, on_signal, g);
	pthread_mutex_lock(&vm->lock);
	vm->vmbus = g;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vmbus_glue_destroy(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	struct vmbus_glue *g = vm->vmbus;
	vm->vmbus = NULL; /* console and signal requests see no VMBus from now */
	pthread_mutex_unlock(&vm->lock);
	if (!g)
		return;
	hv_set_connection_handlers(vm->hv, NULL, NULL, NULL);
	teardown(vm, g);
}

/*
 * The console and signal threads call these while vm_run() may be tearing
 * the VM down; vm->lock keeps vm->vmbus alive across the call.
 */
int vmbus_glue_request_shutdown(struct vm *vm, bool reboot, bool force)
{
	pthread_mutex_lock(&vm->lock);
	int ret = vm->vmbus ? hvutil_request_shutdown(vm->vmbus->utils, reboot, force) : -ENODEV;
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

bool vmbus_glue_guest_alive(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool alive = vm->vmbus && hvutil_guest_alive(vm->vmbus->utils);
	pthread_mutex_unlock(&vm->lock);
	return alive;
}

int vmbus_glue_vsock_connect(struct vm *vm, uint32_t port, int *fd)
{
	pthread_mutex_lock(&vm->lock);
	int ret = vm->vmbus && vm->vmbus->vsock ?
		vsock_relay_connect_port(vm->vmbus->vsock, port, fd) : -ENODEV;
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

void vmbus_glue_kvp_print(struct vm *vm, FILE *f)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->vmbus)
		hvutil_kvp_print(vm->vmbus->utils, f);
	pthread_mutex_unlock(&vm->lock);
}

static void inspect_vmbus(struct inspect *in, void *opaque)
{
	vmbus_server_inspect(((struct vmbus_glue *)opaque)->srv, in);
}

static void inspect_net(struct inspect *in, void *opaque)
{
	network_inspect(opaque, in);
}

static void inspect_vsock(struct inspect *in, void *opaque)
{
	struct vmbus_glue *g = opaque;
	inspect_str(in, "path", g->vm->cfg->vsock_path ? g->vm->cfg->vsock_path : "");
	inspect_u64(in, "connections", g->vsock ? vsock_relay_nconns(g->vsock) : 0);
}

void vmbus_glue_inspect(struct vm *vm, struct inspect *in)
{
	pthread_mutex_lock(&vm->lock); /* keeps vm->vmbus (and the NICs) alive */
	struct vmbus_glue *g = vm->vmbus;
	if (g) {
		inspect_child(in, "vmbus", inspect_vmbus, g);
		inspect_child(in, "net", inspect_net, vm->network);
		inspect_child(in, "vsock", inspect_vsock, g);
	}
	pthread_mutex_unlock(&vm->lock);
}
