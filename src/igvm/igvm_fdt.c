/*
 * The DEVICE_TREE parameter: a flattened device tree (Devicetree
 * Specification v0.4 chapter 5, "Flattened Devicetree (DTB) Format":
 * big-endian header, empty memory reservation block, structure block of
 * BEGIN_NODE/PROP/END_NODE tokens, strings block) describing the VM the way
 * OpenVMM's loader describes it to OpenHCL (../shared/docs/igvm-and-vsm.md
 * B.4): root #address-cells/#size-cells 2 and model "microsoft,hyperv";
 * /cpus/cpu@N (device_type, reg = APIC id, numa-node-id, status); one
 * memory@ADDR node per RAM range (device_type, reg, microsoft,igvm-type,
 * numa-node-id) in reverse order; /bus, a simple-bus holding vmbus-vtl0
 * (microsoft,vmbus, microsoft,vtl 0, message connection id 1, no MMIO) when
 * the VM has VMBus; /chosen/bootargs; /openhcl memory-allocation-mode
 * "host", or with vtl2= (B.2) "vtl2" with mmio-size (128 MiB) and
 * memory-size when given. memory@ nodes carry the MEMORY_MAP's types: 1
 * (MEMORY) or 3 (VTL2_PROTECTABLE). Our own writer: no libfdt.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "igvm/igvm.h"

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE 2u
#define FDT_PROP 3u
#define FDT_END 9u
#define FDT_HDR 40u
#define FDT_RSV 16u /* one terminating reservation entry */
#define STR_MAX 512u

struct fdtw {
	uint8_t *out;
	size_t cap, len; /* structure block, built at out + FDT_HDR + FDT_RSV */
	char str[STR_MAX];
	size_t slen;
	bool full;
};

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void emit(struct fdtw *w, const void *data, size_t n)
{
	size_t pad = (4 - n % 4) % 4, base = FDT_HDR + FDT_RSV;
	if (w->full || base + w->len + n + pad > w->cap) {
		w->full = true;
		return;
	}
	memcpy(w->out + base + w->len, data, n);
	memset(w->out + base + w->len + n, 0, pad);
	w->len += n + pad;
}

static void tok(struct fdtw *w, uint32_t t)
{
	uint8_t b[4];
	put_be32(b, t);
	emit(w, b, 4);
}

static void begin(struct fdtw *w, const char *name)
{
	tok(w, FDT_BEGIN_NODE);
	emit(w, name, strlen(name) + 1);
}

static uint32_t str_off(struct fdtw *w, const char *s)
{
	for (size_t i = 0; i < w->slen; i += strlen(w->str + i) + 1)
		if (!strcmp(w->str + i, s))
			return (uint32_t)i;
	size_t n = strlen(s) + 1;
	if (w->slen + n > STR_MAX) {
		w->full = true;
		return 0;
	}
	memcpy(w->str + w->slen, s, n);
	w->slen += n;
	return (uint32_t)(w->slen - n);
}

static void prop(struct fdtw *w, const char *name, const void *val, size_t n)
{
	uint8_t h[8];
	put_be32(h, (uint32_t)n);
	put_be32(h + 4, str_off(w, name));
	tok(w, FDT_PROP);
	emit(w, h, 8);
	if (n)
		emit(w, val, n);
}

static void prop_u32(struct fdtw *w, const char *name, uint32_t v)
{
	uint8_t b[4];
	put_be32(b, v);
	prop(w, name, b, 4);
}

static void prop_u64(struct fdtw *w, const char *name, uint64_t v)
{
	uint8_t b[8];
	put_be32(b, (uint32_t)(v >> 32));
	put_be32(b + 4, (uint32_t)v);
	prop(w, name, b, 8);
}

static void prop_str(struct fdtw *w, const char *name, const char *s)
{
	prop(w, name, s, strlen(s) + 1);
}

long igvm_dt_build(const struct igvm_dt_config *c, uint8_t *out, size_t cap)
{
	struct fdtw w = { .out = out, .cap = cap };
	char name[48];
	if (cap < FDT_HDR + FDT_RSV)
		return -E2BIG;
	begin(&w, "");
	prop_u32(&w, "#address-cells", 2);
	prop_u32(&w, "#size-cells", 2);
	prop_str(&w, "model", "microsoft,hyperv");
	begin(&w, "cpus");
	prop_u32(&w, "#address-cells", 1);
	prop_u32(&w, "#size-cells", 0);
	for (unsigned i = 0; i < c->ncpus; i++) {
		snprintf(name, sizeof(name), "cpu@%x", i);
		begin(&w, name);
		prop_str(&w, "device_type", "cpu");
		prop_u32(&w, "reg", i); /* hvmm's APIC id is the VP index */
		prop_u32(&w, "numa-node-id", 0);
		prop_str(&w, "status", "okay");
		tok(&w, FDT_END_NODE);
	}
	tok(&w, FDT_END_NODE);
	for (unsigned i = c->nmem; i-- > 0;) {
		const struct igvm_dt_mem *m = &c->mem[i];
		uint8_t reg[16];
		put_be32(reg, (uint32_t)(m->gpa >> 32));
		put_be32(reg + 4, (uint32_t)m->gpa);
		put_be32(reg + 8, (uint32_t)(m->size >> 32));
		put_be32(reg + 12, (uint32_t)m->size);
		snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)m->gpa);
		begin(&w, name);
		prop_str(&w, "device_type", "memory");
		prop(&w, "reg", reg, sizeof(reg));
		prop_u32(&w, "microsoft,igvm-type", m->type);
		prop_u32(&w, "numa-node-id", 0);
		tok(&w, FDT_END_NODE);
	}
	begin(&w, "bus");
	prop_str(&w, "compatible", "simple-bus");
	prop_u32(&w, "#address-cells", 2);
	prop_u32(&w, "#size-cells", 2);
	prop(&w, "ranges", NULL, 0);
	if (c->vmbus) {
		begin(&w, "vmbus-vtl0");
		prop_u32(&w, "#address-cells", 2);
		prop_u32(&w, "#size-cells", 2);
		prop_str(&w, "compatible", "microsoft,vmbus");
		prop(&w, "ranges", NULL, 0);
		prop_u32(&w, "microsoft,vtl", 0);
		prop_u32(&w, "microsoft,message-connection-id", 1);
		tok(&w, FDT_END_NODE);
	}
	tok(&w, FDT_END_NODE);
	begin(&w, "chosen");
	prop_str(&w, "bootargs", c->bootargs ? c->bootargs : "");
	tok(&w, FDT_END_NODE);
	begin(&w, "openhcl");
	if (c->vtl2_alloc) {
		if (c->vtl2_memory_size)
			prop_u64(&w, "memory-size", c->vtl2_memory_size);
		prop_u64(&w, "mmio-size", IGVM_DT_VTL2_MMIO_SIZE);
	}
	prop_str(&w, "memory-allocation-mode", c->vtl2_alloc ? "vtl2" : "host");
	tok(&w, FDT_END_NODE);
	tok(&w, FDT_END_NODE); /* root */
	tok(&w, FDT_END);
	size_t off_struct = FDT_HDR + FDT_RSV, off_str = off_struct + w.len;
	if (w.full || off_str + w.slen > cap)
		return -E2BIG;
	memcpy(out + off_str, w.str, w.slen);
	memset(out + FDT_HDR, 0, FDT_RSV);
	uint32_t hdr[10] = {
		FDT_MAGIC, (uint32_t)(off_str + w.slen), (uint32_t)off_struct, (uint32_t)off_str,
		FDT_HDR, 17, 16, 0, (uint32_t)w.slen, (uint32_t)w.len,
	};
	for (int i = 0; i < 10; i++)
		put_be32(out + 4 * i, hdr[i]);
	return (long)(off_str + w.slen);
}
