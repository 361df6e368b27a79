/*
 * libFuzzer harness: the hv_sock guest-packet path (src/dev/hvsock.c) and
 * the hybrid vsock request parser (src/core/vsock_relay.c). The first byte
 * picks the target. Parser: the rest is one request line; a parsed port
 * must be in range and its service GUID the vsock template. Packets: a
 * channel is offered and opened on the fake VMBus host with guest pages as
 * separate allocations (a sanitizer sees any access past a page), then the
 * input is read as operations: the guest writes inband packets whose
 * payload (pipe header and data) is fuzz data, raw bytes into its ring and
 * its ring indexes, signals; the host peeks and consumes guest data, sends
 * data and FIN. Only the documented results are acceptable, and peeked data
 * must lie inside the packet the guest wrote.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/vsock_relay.h"
#include "dev/hvsock.h"
#include "../unit/test_vmbus_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct in *in)
{
	return (uint16_t)(u8(in) | u8(in) << 8);
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
	struct vsock_request r;
	char ipath[INSPECT_PATH_MAX + 1];
	int depth;
	if (!vsock_parse_inspect((const char *)data, size, &depth, ipath, sizeof(ipath)) &&
	    (depth < -1 || depth > INSPECT_MAX_DEPTH || strlen(ipath) > INSPECT_PATH_MAX))
		abort();
	if (vsock_parse_request((const char *)data, size, &r) < 0)
		return;
	uint32_t port;
	if (r.is_port && (r.port > HVSOCK_MAX_LISTEN_PORT ||
			  !hvsock_guid_port(&r.service, &port) || port != r.port))
		abort();
}

static volatile uint8_t sink;

static void wake(void *o)
{
	(void)o;
}

static void fuzz_packets(struct in *in)
{
	struct fake *f = fake_new_mode(0, 1, true);
	guest_contact(f, 4, 0x50002, 0);
	guest_simple(f, 3, 0, 0);
	struct hvsock_params p = { .from_host = true, .wake = wake };
	hvsock_port_guid(u16(in), &p.service);
	memset(p.instance.b, 0x5A, 16);
	struct hvsock *hs;
	if (hvsock_create(f->srv, &p, &hs) < 0)
		abort();
	struct fake_msg *m, *offer = NULL;
	while ((m = fake_next(f)))
		if (m32(m, 0) == 1)
			offer = m;
	if (!offer)
		abort();
	uint32_t relid = m32(offer, 184), conn = m32(offer, 192);
	uint32_t npages = 4 + u8(in) % 9;
	uint32_t down = 2 + u8(in) % (npages - 3);
	uint64_t pfns[16];
	for (uint32_t i = 0; i < npages; i++)
		pfns[i] = 10 + 3 * i;
	guest_gpadl(f, relid, 1, pfns, npages);
	guest_open(f, relid, 1, 0, down);
	struct gring out = { 0 };
	out.hdr = fake_page(f, pfns[0]);
	for (uint32_t i = 1; i < down; i++)
		out.data[i - 1] = fake_page(f, pfns[i]);
	out.size = (down - 1) * 4096;
	static uint8_t buf[HVSOCK_MTU + 64];
	for (int ops = 0; ops < 256 && in->n; ops++) {
		switch (u8(in) % 8) {
		case 0: { /* a guest packet: pipe header and data from the input */
			uint32_t len = u16(in) % (sizeof(buf) - 8);
			if (len > in->n)
				len = (uint32_t)in->n;
			memcpy(buf, in->p, len);
			in->p += len;
			in->n -= len;
			gring_write(&out, 0, buf, len);
			break;
		}
		case 1: { /* a well-formed data packet or FIN */
			uint32_t len = u16(in) % (HVSOCK_GUEST_SEND_MAX + 1);
			p32(buf, 0, 1);
			p32(buf, 4, len);
			memset(buf + 8, 0xAB, len);
			gring_write(&out, 0, buf, 8 + len);
			break;
		}
		case 2: /* the guest's index fields, whatever it likes */
			gw32(&out, (u8(in) % 4) * 4, (uint32_t)u16(in) << (u8(in) % 16));
			break;
		case 3:
			vmbus_server_signal_event(f->srv, conn);
			break;
		case 4: { /* the host reads */
			const uint8_t *d;
			size_t n;
			int ret = hvsock_recv_peek(hs, &d, &n);
			if (ret != 0 && ret != 1 && ret != -EAGAIN && ret != -EPIPE &&
			    ret != -EPROTO)
				abort();
			if (ret == 0) {
				if (!n || n > HVSOCK_MTU)
					abort();
				for (size_t i = 0; i < n; i++)
					sink ^= d[i]; /* ASan: inside our copy */
				hvsock_recv_consume(hs, u8(in) % 2 ? n : n / 2);
			}
			break;
		}
		case 5: { /* the host sends */
			size_t len = 1 + u16(in) % (sizeof(buf) - 1);
			int ret = hvsock_send(hs, buf, len);
			if (ret <= 0 && ret != -EAGAIN && ret != -EPIPE && ret != -EPROTO &&
			    ret != -EINVAL)
				abort();
			if (ret > (int)HVSOCK_MTU)
				abort();
			break;
		}
		case 6: {
			int ret = hvsock_send_fin(hs);
			if (ret && ret != -EAGAIN && ret != -EPIPE && ret != -EPROTO)
				abort();
			break;
		}
		case 7: /* the guest closes the channel */
			if (u8(in) % 8 == 0)
				guest_simple(f, 7, relid, 0);
			break;
		}
	}
	hvsock_release(hs);
	fake_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_level = LOG_ERROR;
	if (!size)
		return 0;
	if (data[0] & 1) {
		fuzz_parse(data + 1, size - 1);
		return 0;
	}
	struct in in = { data + 1, size - 1 };
	fuzz_packets(&in);
	return 0;
}
