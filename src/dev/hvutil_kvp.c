/*
 * The key/value pair exchange integration service, host side (Linux
 * drivers/hv/hv_kvp.c, include/uapi/linux/hyperv.h hv_kvp_msg;
 * ../shared/docs/hyperv-linux-guest.md §7.3). The host enumerates the
 * guest's pools (KVP_OP_ENUMERATE, index 0, 1, ... until the guest fails
 * the request) and keeps what the guest answered, per pool, for the
 * console's `kvp`. The kernel driver only relays to hv_kvp_daemon: until
 * the daemon registers it leaves the host's NEGOTIATE unread (it looks
 * again ~55 s after the first signal, HV_UTIL_NEGO_TIMEOUT, in case the
 * daemon came up meanwhile), so a guest without the daemon never
 * negotiates KVP (seen with the minimal guest) and `kvp` says so; a daemon
 * that fails an exchange answers HV_E_FAIL.
 * Enumeration rounds repeat every HVUTIL_KVP_ROUND_MS; an item seen again
 * replaces the stored one, items are never invented.
 */
#include <inttypes.h>
#include <string.h>

#include "core/log.h"
#include "dev/hvutil_impl.h"

#define HVUTIL_KVP_ROUND_MS 60000u
/* Pools enumerated each round: the guest's intrinsic items, then its own. */
static const uint8_t kvp_pools[] = { KVP_POOL_AUTO, KVP_POOL_GUEST };
#define NPOOLS (sizeof(kvp_pools) / sizeof(kvp_pools[0]))

static int send_enumerate(struct ic *ic)
{
	struct hvutils *u = ic->u;
	struct hv_kvp_msg *m = (struct hv_kvp_msg *)(void *)hvutil_ic_body(ic);
	memset(m, 0, sizeof(*m));
	m->operation = KVP_OP_ENUMERATE;
	m->pool = kvp_pools[u->kvp_pool_idx];
	m->body.kvp_enum_data.index = u->kvp_index;
	return hvutil_ic_send(ic, ICMSGTYPE_KVPEXCHANGE, sizeof(*m));
}

void hvutil_kvp_tick(struct ic *ic, uint64_t now)
{
	struct hvutils *u = ic->u;
	if (!ic->open || !ic->negotiated || ic->pending)
		return;
	if (u->kvp_done) {
		if (now - u->kvp_round_ms < HVUTIL_KVP_ROUND_MS)
			return;
		u->kvp_done = false;
		u->kvp_pool_idx = 0;
		u->kvp_index = 0;
	}
	if (u->kvp_pool_idx == 0 && u->kvp_index == 0)
		u->kvp_round_ms = now;
	send_enumerate(ic);
}

/* UTF-16LE (n bytes, up to its first 0) to UTF-8, capped; '?' for what we do not print. */
static void utf16_to_utf8(char *dst, size_t dstlen, const uint8_t *src, uint32_t n)
{
	size_t o = 0;
	for (uint32_t i = 0; i + 1 < n; i += 2) {
		uint16_t c = (uint16_t)(src[i] | src[i + 1] << 8);
		if (!c)
			break;
		uint8_t b[3];
		size_t k;
		if (c < 0x20 || c == 0x7f || (c >= 0xd800 && c < 0xe000)) {
			b[0] = '?';
			k = 1;
		} else if (c < 0x80) {
			b[0] = (uint8_t)c;
			k = 1;
		} else if (c < 0x800) {
			b[0] = (uint8_t)(0xc0 | c >> 6);
			b[1] = (uint8_t)(0x80 | (c & 0x3f));
			k = 2;
		} else {
			b[0] = (uint8_t)(0xe0 | c >> 12);
			b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
			b[2] = (uint8_t)(0x80 | (c & 0x3f));
			k = 3;
		}
		if (o + k >= dstlen)
			break;
		memcpy(dst + o, b, k);
		o += k;
	}
	dst[o] = '\0';
}

static void store_item(struct hvutils *u, uint8_t pool, const struct hv_kvp_exchg_msg_value *v)
{
	struct kvp_item it;
	memset(&it, 0, sizeof(it));
	it.pool = pool;
	utf16_to_utf8(it.key, sizeof(it.key), v->key, v->key_size);
	if (v->value_type == REG_U32 && v->value_size >= 4) {
		uint32_t x;
		memcpy(&x, v->value, sizeof(x));
		snprintf(it.value, sizeof(it.value), "%" PRIu32, x);
	} else if (v->value_type == REG_U64 && v->value_size >= 8) {
		uint64_t x;
		memcpy(&x, v->value, sizeof(x));
		snprintf(it.value, sizeof(it.value), "%" PRIu64, x);
	} else {
		utf16_to_utf8(it.value, sizeof(it.value), v->value, v->value_size);
	}
	for (unsigned i = 0; i < u->kvp_nitems; i++) {
		if (u->kvp_items[i].pool == pool && !strcmp(u->kvp_items[i].key, it.key)) {
			u->kvp_items[i] = it;
			return;
		}
	}
	if (u->kvp_nitems >= HVUTIL_KVP_MAX_ITEMS) {
		log_guest("hvutil kvp: more than %u items, the rest ignored",
			  HVUTIL_KVP_MAX_ITEMS);
		return;
	}
	u->kvp_items[u->kvp_nitems++] = it;
}

/* Moves to the next pool, or ends the round. */
static void next_pool(struct hvutils *u)
{
	u->kvp_index = 0;
	if (++u->kvp_pool_idx >= NPOOLS) {
		u->kvp_pool_idx = 0;
		u->kvp_done = true;
	}
}

void hvutil_kvp_response(struct ic *ic, const struct icmsg_hdr *h,
			 const uint8_t *body, uint32_t len)
{
	struct hvutils *u = ic->u;
	struct hv_kvp_msg m;
	if (len < sizeof(m))
		return;
	memcpy(&m, body, sizeof(m));
	const struct hv_kvp_exchg_msg_value *v = &m.body.kvp_enum_data.data;
	/* The guest fails the index past its last item (and everything without a daemon). */
	if (h->status != HV_S_OK) {
		next_pool(u);
		return;
	}
	if (v->key_size < 2 || v->key_size > HV_KVP_EXCHANGE_MAX_KEY_SIZE ||
	    v->value_size > HV_KVP_EXCHANGE_MAX_VALUE_SIZE) {
		log_guest("hvutil kvp: item with key size %u, value size %u ignored",
			  v->key_size, v->value_size);
		next_pool(u);
		return;
	}
	store_item(u, kvp_pools[u->kvp_pool_idx], v);
	if (++u->kvp_index >= HVUTIL_KVP_MAX_ITEMS)
		next_pool(u);
}

void hvutil_kvp_print(struct hvutils *u, FILE *f)
{
	hvutil_lock(u);
	if (!u->kvp_nitems)
		fprintf(f, "no KVP items from the guest%s\n",
			u->ic[HVUTIL_KVP].negotiated ? "" : " (KVP not negotiated)");
	for (unsigned i = 0; i < u->kvp_nitems; i++)
		fprintf(f, "pool %u %s=%s\n", u->kvp_items[i].pool, u->kvp_items[i].key,
			u->kvp_items[i].value);
	hvutil_unlock(u);
}
