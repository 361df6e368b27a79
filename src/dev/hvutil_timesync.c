/*
 * The time synchronisation integration service (Linux drivers/hv/hv_util.c,
 * timesync_onchannelcallback and adj_guesttime;
 * ../shared/docs/hyperv-linux-guest.md §7.3). Right after negotiation the
 * host sends a SYNC sample, which makes the guest set its clock from the
 * host's wall clock; then a SAMPLE every HVUTIL_TIMESYNC_MS. Times are
 * 100 ns units since 1601-01-01 UTC. Service version 4.0 carries
 * vmreferencetime, the partition reference time (TIME_REF_COUNT) at which
 * the wall clock was read, so the guest corrects for the delivery delay
 * (ictimesync_ref_data); 3.0 and 1.0 use ictimesync_data and the guest
 * reads its own reference counter on arrival.
 */
#include <string.h>

#include "core/log.h"
#include "dev/hvutil_impl.h"

int hvutil_timesync_send(struct ic *ic, uint8_t flags)
{
	struct hvutils *u = ic->u;
	uint8_t *body = hvutil_ic_body(ic);
	/* Read the reference time first: the guest adds (its now - ref) to the wall time. */
	uint64_t ref = u->host.ref_time(u->host.opaque);
	uint64_t wall = u->host.filetime(u->host.opaque);
	if (ic->msg.major >= 4) {
		struct ictimesync_ref_data d;
		memset(&d, 0, sizeof(d));
		d.parenttime = wall;
		d.vmreferencetime = ref;
		d.flags = flags;
		memcpy(body, &d, sizeof(d));
		return hvutil_ic_send(ic, ICMSGTYPE_TIMESYNC, sizeof(d));
	}
	struct ictimesync_data d;
	memset(&d, 0, sizeof(d));
	d.parenttime = wall;
	d.flags = flags;
	memcpy(body, &d, sizeof(d));
	return hvutil_ic_send(ic, ICMSGTYPE_TIMESYNC, sizeof(d));
}

void hvutil_timesync_negotiated(struct ic *ic)
{
	if (hvutil_timesync_send(ic, ICTIMESYNCFLAG_SYNC) < 0)
		log_warn("hvutil timesync: cannot send the initial time");
	ic->u->last_sample_ms = hvutil_now_ms(ic->u);
}

void hvutil_timesync_tick(struct ic *ic, uint64_t now)
{
	struct hvutils *u = ic->u;
	if (!ic->open || !ic->negotiated || ic->pending ||
	    now - u->last_sample_ms < HVUTIL_TIMESYNC_MS)
		return;
	u->last_sample_ms = now;
	hvutil_timesync_send(ic, ICTIMESYNCFLAG_SAMPLE);
}

void hvutil_timesync_response(struct ic *ic, const struct icmsg_hdr *h,
			      const uint8_t *body, uint32_t len)
{
	(void)ic;
	(void)body;
	(void)len;
	if (h->status != HV_S_OK)
		log_guest("hvutil timesync: the guest answered status %#x", h->status);
}
