/*
 * The shutdown integration service (Linux drivers/hv/hv_util.c,
 * shutdown_onchannelcallback; ../shared/docs/hyperv-linux-guest.md §7.3):
 * the host asks the guest to power off (flags 0) or reboot (flags 2), bit 0
 * set when forced, with a
 * shutdown_msg_data body, which makes the packet 2088 bytes, the minimum
 * the guest accepts. The guest answers HV_S_OK and then runs
 * orderly_poweroff()/orderly_reboot(), or HV_E_FAIL for what it will not do.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "dev/hvutil_impl.h"

_Static_assert(ICMSG_HDR + sizeof(struct shutdown_msg_data) == 2088,
	       "the guest drops shutdown packets under 2088 bytes");

int hvutil_request_shutdown(struct hvutils *u, bool reboot, bool force)
{
	hvutil_lock(u);
	struct ic *ic = &u->ic[HVUTIL_SHUTDOWN];
	int ret;
	if (u->dead || !ic->open || !ic->negotiated) {
		ret = -ENODEV;
	} else if (ic->pending) {
		ret = -EBUSY;
	} else {
		struct shutdown_msg_data m;
		memset(&m, 0, sizeof(m));
		m.flags = (reboot ? HVUTIL_SHUTDOWN_FLAG_REBOOT : HVUTIL_SHUTDOWN_FLAG_POWEROFF) |
			  (force ? HVUTIL_SHUTDOWN_FLAG_FORCE : 0);
		static const char text[] = "hvmm: host-initiated shutdown";
		for (size_t i = 0; i < sizeof(text) - 1; i++) /* UTF-16LE */
			m.display_message[2 * i] = (uint8_t)text[i];
		memcpy(hvutil_ic_body(ic), &m, sizeof(m));
		u->shutdown_status = -1;
		ret = hvutil_ic_send(ic, ICMSGTYPE_SHUTDOWN, sizeof(m));
		if (ret == 0)
			log_info("asked the guest to %s%s", reboot ? "reboot" : "power off",
				 force ? " (forced)" : "");
	}
	hvutil_unlock(u);
	return ret;
}

void hvutil_shutdown_response(struct ic *ic, const struct icmsg_hdr *h,
			      const uint8_t *body, uint32_t len)
{
	(void)body;
	(void)len;
	struct hvutils *u = ic->u;
	u->shutdown_status = h->status;
	if (h->status != HV_S_OK)
		log_warn("the guest refused the shutdown request (status %#x)", h->status);
	else
		log_info("the guest accepted the shutdown request");
}

int64_t hvutil_shutdown_status(struct hvutils *u)
{
	hvutil_lock(u);
	int64_t s = u->shutdown_status;
	hvutil_unlock(u);
	return s;
}
