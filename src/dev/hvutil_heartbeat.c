/*
 * The heartbeat integration service (Linux drivers/hv/hv_util.c,
 * heartbeat_onchannelcallback; ../shared/docs/hyperv-linux-guest.md §7.3):
 * every tick the host sends heartbeat_msg_data with a sequence number and
 * the guest answers with seq_num + 1. The guest counts as alive while such
 * an answer arrived within the last HVUTIL_ALIVE_MS.
 */
#include <string.h>

#include "core/log.h"
#include "dev/hvutil_impl.h"

void hvutil_heartbeat_tick(struct ic *ic, uint64_t now)
{
	(void)now;
	struct hvutils *u = ic->u;
	if (!ic->open || !ic->negotiated || ic->pending)
		return;
	struct heartbeat_msg_data m;
	memset(&m, 0, sizeof(m));
	m.seq_num = ++u->hb_seq;
	memcpy(hvutil_ic_body(ic), &m, sizeof(m));
	if (hvutil_ic_send(ic, ICMSGTYPE_HEARTBEAT, sizeof(m)) < 0)
		u->hb_seq--;
}

void hvutil_heartbeat_response(struct ic *ic, const struct icmsg_hdr *h,
			       const uint8_t *body, uint32_t len)
{
	(void)h;
	struct hvutils *u = ic->u;
	struct heartbeat_msg_data m;
	if (len < sizeof(m))
		return; /* hvutil_ic.c checked the length; keep the copy honest */
	memcpy(&m, body, sizeof(m));
	if (m.seq_num != u->hb_seq + 1) {
		log_guest("hvutil heartbeat: answer with sequence %llu, expected %llu",
			  (unsigned long long)m.seq_num, (unsigned long long)u->hb_seq + 1);
		return;
	}
	u->last_alive_ms = hvutil_now_ms(u);
	if (!u->ever_alive)
		log_info("guest heartbeat: alive");
	u->ever_alive = true;
}

bool hvutil_guest_alive(struct hvutils *u)
{
	hvutil_lock(u);
	bool alive = u->ever_alive && !u->dead &&
		     hvutil_now_ms(u) - u->last_alive_ms <= HVUTIL_ALIVE_MS;
	hvutil_unlock(u);
	return alive;
}
