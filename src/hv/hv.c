/*
 * The partition's Hyper-V state: creation, teardown, reference time (TLFS
 * 12.4, "Partition Reference Counter" and "Reference TSC page") and the
 * routing of HvPostMessage/HvSignalEvent to the VMBus glue.
 */
#include "hv/hv_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* scale = 2^64 * 10^7 / tsc_hz, so ((tsc * scale) >> 64) counts 100 ns. */
static uint64_t tsc_scale(uint64_t tsc_hz)
{
	__extension__ typedef unsigned __int128 u128;
	if (tsc_hz <= 10000000ull) /* at or below 10 MHz the scale does not fit */
		tsc_hz = 10000001ull;
	return (uint64_t)(((u128)10000000ull << 64) / tsc_hz);
}

uint64_t hv_ref_from_tsc(const struct hv *hv, uint64_t tsc)
{
	return hv_mul64_hi(tsc, hv->tsc_scale) + (uint64_t)hv->tsc_offset;
}

void hv_set_tsc_hz(struct hv *hv, uint64_t tsc_hz)
{
	if (!tsc_hz)
		tsc_hz = 1000000000ull;
	hv->tsc_hz = tsc_hz;
	hv->tsc_scale = tsc_scale(tsc_hz);
	uint64_t now = hv->p.read_tsc(hv->p.opaque);
	hv->tsc_offset = -(int64_t)hv_mul64_hi(now, hv->tsc_scale);
}

uint64_t hv_time_ref_count(struct hv *hv)
{
	return hv_ref_from_tsc(hv, hv->p.read_tsc(hv->p.opaque));
}

int hv_create(const struct hv_platform *p, struct hv **out)
{
	if (!p || !p->mem || !p->read_tsc || !p->signal_msi || p->nvps == 0)
		return -EINVAL;
	struct hv *hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	hv->p = *p;
	hv->vps = calloc(p->nvps, sizeof(*hv->vps));
	if (!hv->vps) {
		free(hv);
		return -ENOMEM;
	}
	pthread_mutex_init(&hv->lock, NULL);
	hv_stimer_thread_init(hv);
	for (unsigned i = 0; i < p->nvps; i++) {
		struct hv_vp *v = &hv->vps[i];
		pthread_mutex_init(&v->lock, NULL);
		for (unsigned s = 0; s < HV_SINT_COUNT; s++)
			v->sint[s] = HV_SINT_MASKED;
	}
	hv_set_tsc_hz(hv, p->tsc_hz);
	if (p->timer_thread) {
		int ret = hv_stimer_thread_start(hv);
		if (ret < 0) {
			hv_destroy(hv);
			return ret;
		}
	}
	*out = hv;
	return 0;
}

void hv_destroy(struct hv *hv)
{
	if (!hv)
		return;
	hv_stimer_thread_stop(hv);
	for (unsigned i = 0; i < hv->p.nvps; i++) {
		struct hv_vp *v = &hv->vps[i];
		for (unsigned s = 0; s < HV_SINT_COUNT; s++)
			free(v->q[s].ring);
		pthread_mutex_destroy(&v->lock);
	}
	free(hv->vps);
	pthread_mutex_destroy(&hv->lock);
	stimer_thread_fini(&hv->timer);
	free(hv);
}

void hv_set_connection_handlers(struct hv *hv, hv_post_message_fn post,
				hv_signal_event_fn signal, void *opaque)
{
	pthread_mutex_lock(&hv->lock);
	hv->post = post;
	hv->signal = signal;
	hv->conn_opaque = opaque;
	pthread_mutex_unlock(&hv->lock);
}
