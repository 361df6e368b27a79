/*
 * libFuzzer harness: storvsp's packet path (src/dev/storvsp.c) on the real
 * VMBus server with the fake host. The input is a sequence of guest
 * packets written into the guest-to-host ring as the guest would (the
 * fuzzer picks the descriptor's type, offsets and flags, the GPA-direct
 * range and the vstor/SRB bytes); after each, storvsp runs and its answers
 * are read and dropped. A controlling byte may also corrupt the ring's
 * write index. Two LUNs over mem: disks, one read-only. The controller
 * allows two sub-channels: when the fuzzer's CREATE_SUB_CHANNELS gets them
 * offered, the guest opens sub-channel 1, and a control bit sends the next
 * packet there; another control value closes the primary (which tears the
 * sub-channels down).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/test_vmbus_fake.h"
#include "backend/disk.h"
#include "core/log.h"
#include "dev/storvsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RING_PAGES 16

static void *map(void *o, uint64_t gpa, uint64_t len)
{
	return fake_map(o, gpa, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_level = LOG_ERROR;
	struct fake *f = fake_new(0, 1);
	struct disk_kind_spec k = { .kind = DISK_KIND_MEM, .mem_size = 256 * 1024 };
	struct disk *d0, *d1;
	char err[128];
	if (disk_open(&k, false, &d0, err, sizeof(err)) < 0 ||
	    disk_open(&k, true, &d1, err, sizeof(err)) < 0)
		abort();
	struct storvsp_lun_config luns[2] = { { .disk = d0, .lun = 0 },
					      { .disk = d1, .lun = 1, .read_only = true } };
	struct storvsp_config cfg = { .luns = luns, .nluns = 2, .map = map, .map_opaque = f,
				      .sub_channels = 2 };
	struct storvsp *sv;
	if (storvsp_create(f->srv, &cfg, &sv) < 0)
		abort();
	guest_contact(f, 4, VMBUS_VERSION_WIN10_V5_2, 0);
	guest_simple(f, 3, 0, 0);
	uint64_t pfns[RING_PAGES];
	for (unsigned i = 0; i < RING_PAGES; i++)
		pfns[i] = 32 + i;
	guest_gpadl(f, 1, 0x100, pfns, RING_PAGES);
	guest_open(f, 1, 0x100, 0, RING_PAGES / 2);
	struct gring out = { 0 }, in = { 0 };
	out.hdr = f->ram + 32 * 4096;
	in.hdr = f->ram + (32 + RING_PAGES / 2) * 4096;
	for (unsigned i = 0; i < RING_PAGES / 2 - 1; i++) {
		out.data[i] = f->ram + (33 + i) * 4096;
		in.data[i] = f->ram + (33 + RING_PAGES / 2 + i) * 4096;
	}
	out.size = in.size = (RING_PAGES / 2 - 1) * 4096;
	struct gring sout = { 0 }, sin = { 0 };
	sout.hdr = f->ram + 64 * 4096;
	sin.hdr = f->ram + (64 + RING_PAGES / 2) * 4096;
	for (unsigned i = 0; i < RING_PAGES / 2 - 1; i++) {
		sout.data[i] = f->ram + (65 + i) * 4096;
		sin.data[i] = f->ram + (65 + RING_PAGES / 2 + i) * 4096;
	}
	sout.size = sin.size = (RING_PAGES / 2 - 1) * 4096;
	bool sub_open = false;
	f->next = f->nmsg;

	size_t pos = 0;
	for (unsigned n = 0; n < 64 && pos + 2 <= size; n++) {
		uint8_t ctl = data[pos];
		uint32_t len = (uint32_t)(data[pos + 1] % 64 + 2) * 8; /* 16..528, 8-aligned */
		pos += 2;
		uint8_t pkt[528] = { 0 };
		size_t take = size - pos < len ? size - pos : len;
		memcpy(pkt, data + pos, take);
		pos += take;
		struct gring *o = sub_open && (ctl & 0x08) ? &sout : &out;
		if ((ctl & 0xF0) == 0xF0) {
			/* A hostile write index. */
			gw32(o, 0, (uint32_t)ctl * 0x01010101u);
		} else if (ctl == 0xE0) {
			guest_simple(f, 7, 1, 0); /* CLOSECHANNEL of the primary */
		} else if (gring_free(o) > len + 8) {
			uint32_t w = gr32(o, 0) % o->size & ~7u;
			/* The descriptor's total length is ours; the rest the fuzzer's. */
			p16(pkt, 4, (uint16_t)(len / 8));
			gring_copy(o, w, pkt, len, true);
			uint64_t trailer = (uint64_t)w << 32;
			gring_copy(o, w + len, &trailer, 8, true);
			gw32(o, 0, (w + len + 8) % o->size);
		}
		storvsp_poll(sv);
		/* Sub-channel offers the fuzzer's requests produced: open index 1. */
		vmbus_server_flush(f->srv);
		for (struct fake_msg *m; (m = fake_next(f));) {
			if (m32(m, 0) == 1 && m->b[180] == 1 && !sub_open) {
				uint32_t relid = m32(m, 184);
				for (unsigned i = 0; i < RING_PAGES; i++)
					pfns[i] = 64 + i;
				memset(f->ram + 64 * 4096, 0, RING_PAGES * 4096);
				guest_gpadl(f, relid, 0x200, pfns, RING_PAGES);
				guest_open(f, relid, 0x200, 0, RING_PAGES / 2);
				sub_open = true;
			}
		}
		f->next = f->nmsg;
		storvsp_poll(sv);
		uint8_t dsc[16], buf[1024];
		uint64_t trailer;
		while (gring_read(&in, dsc, buf, sizeof(buf), &trailer) >= 0)
			;
		while (sub_open && gring_read(&sin, dsc, buf, sizeof(buf), &trailer) >= 0)
			;
	}
	fake_free(f);
	storvsp_destroy(sv);
	disk_close(d0);
	disk_close(d1);
	return 0;
}
