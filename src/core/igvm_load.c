/*
 * IGVM loader (`hvmm --igvm FILE`), after the loading contract of
 * ../shared/docs/igvm-and-vsm.md parts A and B (OpenVMM's vm/loader and
 * openvmm_core's igvm.rs, read for facts only). The NATIVE platform is
 * loaded (and, for the coming --vtl2, VSM_ISOLATION with its VTL 2 VBS
 * register list decoded): PAGE_DATA, PARAMETER_AREA + parameter usages + PARAMETER_INSERT,
 * REQUIRED_MEMORY and the BSP's native x64 VP context. Parameters filled:
 * VP_COUNT (u32), MEMORY_MAP (B.4: hvmm's e820 RAM ranges plus auto='s
 * VTL2 range as 24-byte IGVM_VHS_MEMORY_MAP_ENTRY records, sorted, the
 * parts in VTL2-protectable RAM -- with --vtl2 the file's VTL2-protectable
 * REQUIRED_MEMORY, relocated, and auto='s range; none with vtl2= -- typed
 * VTL2_PROTECTABLE, the rest MEMORY; a zero entry after them when the area
 * has room), MMIO_RANGES (the
 * 32-bit hole; no high range), COMMAND_LINE (NUL-terminated; appended after
 * any text the file put in the area), MADT/SRAT (copied from hvmm's own ACPI
 * tables when present), ENVIRONMENT_INFO (0: memory not shared), DEVICE_TREE
 * (igvm_fdt.c: cpus, the MEMORY_MAP's typed RAM, VMBus, bootargs, /openhcl
 * with vtl2='s allocation mode). SLIT and PPTT are left zero.
 * Relocation (B.3; --vtl2 with absolute=ADDR, or auto= into VTL2 RAM of its
 * own above VTL0's RAM and MMIO, added with gmem_add_vtl2_region): the one VTL 2
 * RELOCATABLE_REGION and its PAGE_TABLE_RELOCATION_REGION move by a positive
 * offset: page data, inserts and REQUIRED_MEMORY in them are placed at
 * gpa + offset, the page-table pages are held back, rebuilt
 * (igvm_pt_relocate) and written at their gpa + offset, and the VTL 2
 * context's RIP/GDTR (per the region's flags) and CR3 move too. With
 * relocation disabled the headers only describe VTL2's range. Every GPA and
 * size in the file is checked against guest RAM; errors are one line naming
 * the header index (or the relocation rule).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/igvm_load.h"
#include "core/vtl_mem.h"
#include "igvm/igvm.h"
#include "x86/linux_boot.h"

#define MAX_AREAS 4096 /* parameter areas in one file */
/* Capacities of the typed memory description (MEMORY_MAP, DEVICE_TREE). */
#define MAX_RAM (E820_MAX_ENTRIES + GMEM_MAX_REGIONS)
#define MAX_PROT 64            /* VTL2-protectable ranges */
#define MAX_TYPED (2 * MAX_PROT + MAX_RAM)

struct area {
	uint32_t index;
	uint64_t size;
	uint8_t *buf;
	bool inserted;
};

/* The relocation of VTL2's image (B.3); off == 0 when not relocating. */
struct reloc {
	bool on;                      /* a VTL 2 relocatable region exists */
	bool moving;                  /* absolute=: pages are moved by off */
	struct igvm_hdr region, pt;   /* the two headers (pt.type 0: none) */
	uint64_t off;
	uint8_t *ptbuf;               /* the page table region's pages, held back */
	uint64_t lo, hi;              /* VTL2's range so far (relocated) */
};

struct loader {
	struct gmem *m;
	struct reloc r;
	const struct igvm_load_config *c;
	struct area *areas;
	size_t nareas;
	uint64_t area_bytes;
	/* VTL2-protectable RAM (B.4), pages, sorted and disjoint (prot_plan). */
	struct igvm_dt_mem prot[MAX_PROT];
	unsigned nprot;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct loader *l, const struct igvm_hdr *h, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (h)
		snprintf(l->err, l->errlen, "IGVM header %u (%s): %s", h->index,
			 igvm_type_name(h->type), msg);
	else
		snprintf(l->err, l->errlen, "IGVM file: %s", msg);
	return -EINVAL;
}

static struct area *find_area(struct loader *l, uint32_t index)
{
	for (size_t i = 0; i < l->nareas; i++)
		if (l->areas[i].index == index)
			return &l->areas[i];
	return NULL;
}

static bool in(uint64_t gpa, uint64_t base, uint64_t size)
{
	return gpa >= base && gpa - base < size;
}

/*
 * Where [gpa, gpa+len) of the file goes: moved by the offset when it starts
 * in the relocatable or page-table region (it must then end there too).
 * 0 and *out, or fail().
 */
static int place(struct loader *l, const struct igvm_hdr *h, uint64_t gpa, uint64_t len,
		 uint64_t *out)
{
	*out = gpa;
	if (!l->r.moving)
		return 0;
	const struct igvm_hdr *rg[2] = { &l->r.region, &l->r.pt };
	for (int i = 0; i < 2; i++) {
		uint64_t base = i ? rg[i]->u.pt_reloc.gpa : rg[i]->u.reloc.gpa;
		uint64_t size = i ? rg[i]->u.pt_reloc.size : rg[i]->u.reloc.size;
		if (!in(gpa, base, size))
			continue;
		if (len > size - (gpa - base))
			return fail(l, h, "0x%llx-0x%llx crosses the end of the %s region 0x%llx-0x%llx",
				    (unsigned long long)gpa, (unsigned long long)(gpa + len - 1),
				    i ? "page table" : "relocatable", (unsigned long long)base,
				    (unsigned long long)(base + size - 1));
		*out = gpa + l->r.off;
		return 0;
	}
	return 0;
}

/* A page of the page table region: kept for the rebuild, not loaded. */
static int pt_page(struct loader *l, const struct igvm_hdr *h, uint64_t size)
{
	uint64_t at = h->u.page.gpa - l->r.pt.u.pt_reloc.gpa;
	if (size != IGVM_PAGE_SIZE_4K || at >= l->r.pt.u.pt_reloc.used_size)
		return fail(l, h, "page data at 0x%llx in the page table region is a 2 MiB page or "
			    "past its used size 0x%llx", (unsigned long long)h->u.page.gpa,
			    (unsigned long long)l->r.pt.u.pt_reloc.used_size);
	memset(l->r.ptbuf + at, 0, size);
	if (h->data)
		memcpy(l->r.ptbuf + at, h->data, h->data_len < size ? h->data_len : size);
	return 0;
}

static int page_data(struct loader *l, const struct igvm_hdr *h)
{
	uint64_t size = h->u.page.flags & IGVM_PAGE_DATA_FLAG_IS_2MB_PAGE ? IGVM_PAGE_SIZE_2M
									 : IGVM_PAGE_SIZE_4K;
	uint64_t gpa;
	int ret = place(l, h, h->u.page.gpa, size, &gpa);
	if (ret)
		return ret;
	if (l->r.moving && in(h->u.page.gpa, l->r.pt.u.pt_reloc.gpa, l->r.pt.u.pt_reloc.size))
		return pt_page(l, h, size);
	uint8_t *p = gmem_map(l->m, gpa, size);
	if (!p)
		return fail(l, h, "page 0x%llx-0x%llx is not guest RAM (give more memory with -m?)",
			    (unsigned long long)gpa, (unsigned long long)(gpa + size - 1));
	if (h->data_len > size)
		return fail(l, h, "%llu bytes of data for a %llu-byte page",
			    (unsigned long long)h->data_len, (unsigned long long)size);
	uint64_t n = h->data ? h->data_len : 0;
	if (n)
		memcpy(p, h->data, n);
	memset(p + n, 0, size - n);
	return 0;
}

static int param_area(struct loader *l, const struct igvm_hdr *h)
{
	uint64_t size = h->u.area.size;
	if (l->nareas >= MAX_AREAS)
		return fail(l, h, "more than %u parameter areas", MAX_AREAS);
	if (size == 0 || size > l->m->size || l->area_bytes + size > l->m->size)
		return fail(l, h, "parameter area of %llu bytes larger than guest RAM",
			    (unsigned long long)size);
	if (find_area(l, h->u.area.index))
		return fail(l, h, "parameter area %u allocated twice", h->u.area.index);
	uint8_t *buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	if (h->data && h->data_len)
		memcpy(buf, h->data, h->data_len < size ? h->data_len : size);
	l->areas[l->nareas++] = (struct area){ h->u.area.index, size, buf, false };
	l->area_bytes += size;
	return 0;
}

/* The bytes [off, off+len) of the area a usage names, or NULL after fail(). */
static uint8_t *param_slot(struct loader *l, const struct igvm_hdr *h, uint64_t len, int *ret)
{
	struct area *a = find_area(l, h->u.param.index);
	if (!a || a->inserted) {
		*ret = fail(l, h, "parameter area %u is not allocated", h->u.param.index);
		return NULL;
	}
	uint64_t off = h->u.param.offset;
	if (off > a->size || len > a->size - off) {
		*ret = fail(l, h, "%llu bytes at offset %llu do not fit parameter area %u (%llu bytes)",
			    (unsigned long long)len, (unsigned long long)off, a->index,
			    (unsigned long long)a->size);
		return NULL;
	}
	return a->buf + off;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * All RAM in whole pages, sorted: VTL0's (hvmm's e820 RAM ranges) and the
 * vtl2_only regions (auto='s VTL2 range), as OpenVMM's RAM + VTL2 range.
 * Returns the count.
 */
static unsigned ram_ranges(const struct gmem *m, struct igvm_dt_mem *r)
{
	struct e820_entry e[E820_MAX_ENTRIES];
	unsigned n = e820_build(m, e, E820_MAX_ENTRIES), k = 0;
	for (unsigned i = 0; i < n + m->nregions && k < MAX_RAM; i++) {
		uint64_t a, sz;
		if (i < n) {
			if (e[i].type != E820_RAM)
				continue;
			a = e[i].addr, sz = e[i].size;
		} else {
			if (!m->regions[i - n].vtl2_only)
				continue;
			a = m->regions[i - n].gpa, sz = m->regions[i - n].size;
		}
		uint64_t first = (a + IGVM_PAGE_SIZE_4K - 1) / IGVM_PAGE_SIZE_4K;
		uint64_t end = (a + sz) / IGVM_PAGE_SIZE_4K;
		if (end > first)
			r[k++] = (struct igvm_dt_mem){ first * IGVM_PAGE_SIZE_4K,
				(end - first) * IGVM_PAGE_SIZE_4K, IGVM_MEMORY_MAP_ENTRY_TYPE_MEMORY };
	}
	for (unsigned i = 1; i < k; i++) /* insertion sort by address */
		for (unsigned j = i; j > 0 && r[j].gpa < r[j - 1].gpa; j--) {
			struct igvm_dt_mem t = r[j];
			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	return k;
}

/*
 * RAM typed as B.4 says (OpenVMM's build_memory_map): every RAM range
 * split where it meets the VTL2-protectable ranges (l->prot, sorted and
 * disjoint), the parts inside typed VTL2_PROTECTABLE (3), the rest MEMORY
 * (1). Count, or -1 when more than cap entries would be needed.
 */
static int typed_ram(const struct loader *l, struct igvm_dt_mem *out, unsigned cap)
{
	struct igvm_dt_mem ram[MAX_RAM];
	unsigned nr = ram_ranges(l->m, ram), k = 0;
	for (unsigned i = 0; i < nr; i++) {
		uint64_t at = ram[i].gpa, end = ram[i].gpa + ram[i].size;
		while (at < end) {
			uint64_t next = end;
			uint32_t type = IGVM_MEMORY_MAP_ENTRY_TYPE_MEMORY;
			for (unsigned j = 0; j < l->nprot; j++) {
				const struct igvm_dt_mem *p = &l->prot[j];
				if (p->gpa + p->size <= at)
					continue;
				if (p->gpa <= at) {
					type = IGVM_MEMORY_MAP_ENTRY_TYPE_VTL2_PROTECTABLE;
					next = p->gpa + p->size < end ? p->gpa + p->size : end;
				} else if (p->gpa < end) {
					next = p->gpa;
				}
				break;
			}
			if (k >= cap)
				return -1;
			out[k++] = (struct igvm_dt_mem){ at, next - at, type };
			at = next;
		}
	}
	return (int)k;
}

static int param_device_tree(struct loader *l, const struct igvm_hdr *h)
{
	struct area *a = find_area(l, h->u.param.index);
	if (!a || a->inserted || h->u.param.offset > a->size)
		return fail(l, h, "parameter area %u is not allocated", h->u.param.index);
	struct igvm_dt_mem r[MAX_TYPED];
	int n = typed_ram(l, r, MAX_TYPED);
	if (n < 0)
		return fail(l, h, "the memory description needs more than %u ranges", MAX_TYPED);
	struct igvm_dt_config dc = { .ncpus = l->c->nvcpus, .mem = r, .nmem = (unsigned)n,
				     .bootargs = l->c->cmdline, .vmbus = l->c->vmbus,
				     .vtl2_alloc = l->c->vtl2 && l->c->reloc == IGVM_RELOC_VTL2,
				     .vtl2_memory_size = l->c->reloc_size };
	long sz = igvm_dt_build(&dc, a->buf + h->u.param.offset, a->size - h->u.param.offset);
	if (sz < 0)
		return fail(l, h, "the device tree does not fit parameter area %u (%llu bytes at "
			    "offset %u)", a->index, (unsigned long long)a->size, h->u.param.offset);
	return 0;
}

static int param_memory_map(struct loader *l, const struct igvm_hdr *h)
{
	struct igvm_dt_mem r[MAX_TYPED];
	int k = typed_ram(l, r, MAX_TYPED);
	if (k < 0)
		return fail(l, h, "the memory map needs more than %u entries", MAX_TYPED);
	size_t esz = sizeof(struct igvm_vhs_memory_map_entry);
	uint8_t rec[MAX_TYPED][sizeof(struct igvm_vhs_memory_map_entry)];
	memset(rec, 0, sizeof(rec));
	for (int i = 0; i < k; i++) {
		put_le(rec[i], r[i].gpa / IGVM_PAGE_SIZE_4K, 8);
		put_le(rec[i] + 8, r[i].size / IGVM_PAGE_SIZE_4K, 8);
		put_le(rec[i] + 16, r[i].type, 2);
	}
	/* k entries; a zero terminator after them when the area has room (B.4:
	 * OpenVMM writes none, the zero-filled area supplies it). */
	int ret = 0;
	uint8_t *p = param_slot(l, h, (uint64_t)k * esz, &ret);
	if (!p)
		return ret;
	memcpy(p, rec, (size_t)k * esz);
	struct area *a = find_area(l, h->u.param.index);
	if (h->u.param.offset + (uint64_t)(k + 1) * esz <= a->size)
		memset(p + (size_t)k * esz, 0, esz);
	return 0;
}

static int param_cmdline(struct loader *l, const struct igvm_hdr *h)
{
	const char *s = l->c->cmdline ? l->c->cmdline : "";
	struct area *a = find_area(l, h->u.param.index);
	uint64_t off = h->u.param.offset;
	/* Text the file put there comes first (hvmm-igvm build --cmdline). */
	size_t have = 0;
	if (a && !a->inserted && off < a->size) {
		const uint8_t *q = a->buf + off;
		while (have < a->size - off && q[have])
			have++;
		if (have == a->size - off)
			have = 0; /* no NUL: not a string, overwrite */
	}
	size_t sep = have && *s ? 1 : 0;
	int ret = 0;
	uint8_t *p = param_slot(l, h, have + sep + strlen(s) + 1, &ret);
	if (!p)
		return ret;
	if (sep)
		p[have] = ' ';
	memcpy(p + have + sep, s, strlen(s) + 1);
	return 0;
}

/* Copies hvmm's ACPI table `sig` (found through the RSDP's XSDT) to *out. */
static int acpi_find(struct gmem *m, uint64_t rsdp, const char sig[4], uint8_t **out,
		     uint32_t *len)
{
	uint8_t r[36];
	if (!rsdp || gmem_read(m, rsdp, r, sizeof(r)) || memcmp(r, "RSD PTR ", 8) || r[15] < 2)
		return -ENOENT;
	uint64_t xsdt = 0;
	memcpy(&xsdt, r + 24, 8);
	uint8_t hdr[36];
	if (gmem_read(m, xsdt, hdr, sizeof(hdr)) || memcmp(hdr, "XSDT", 4))
		return -ENOENT;
	uint32_t xlen;
	memcpy(&xlen, hdr + 4, 4);
	for (uint32_t off = 36; xlen <= 4096 && off + 8 <= xlen; off += 8) {
		uint64_t t = 0;
		uint8_t th[8];
		if (gmem_read(m, xsdt + off, &t, 8) || gmem_read(m, t, th, 8) || memcmp(th, sig, 4))
			continue;
		uint32_t tl;
		memcpy(&tl, th + 4, 4);
		uint8_t *p = tl >= 36 && tl <= 65536 ? gmem_map(m, t, tl) : NULL;
		if (!p)
			return -ENOENT;
		*out = p;
		*len = tl;
		return 0;
	}
	return -ENOENT;
}

static int param_acpi(struct loader *l, const struct igvm_hdr *h, const char sig[4])
{
	uint8_t *t;
	uint32_t tl;
	if (acpi_find(l->m, l->c->rsdp_gpa, sig, &t, &tl))
		return 0; /* hvmm has no such table: the parameter stays zero */
	int ret = 0;
	uint8_t *p = param_slot(l, h, tl, &ret);
	if (!p)
		return ret;
	memcpy(p, t, tl);
	return 0;
}

static int parameter(struct loader *l, const struct igvm_hdr *h)
{
	int ret = 0;
	uint8_t *p;
	switch (h->type) {
	case IGVM_VHT_VP_COUNT_PARAMETER:
		if (!(p = param_slot(l, h, 4, &ret)))
			return ret;
		put_le(p, l->c->nvcpus, 4);
		return 0;
	case IGVM_VHT_ENVIRONMENT_INFO_PARAMETER:
		if (!(p = param_slot(l, h, 4, &ret)))
			return ret;
		put_le(p, 0, 4);
		return 0;
	case IGVM_VHT_MMIO_RANGES:
		if (!(p = param_slot(l, h, 2 * sizeof(struct igvm_vhs_memory_range), &ret)))
			return ret;
		memset(p, 0, 2 * sizeof(struct igvm_vhs_memory_range));
		put_le(p, GMEM_MMIO_HOLE_START / IGVM_PAGE_SIZE_4K, 8);
		put_le(p + 8, (GMEM_4G - GMEM_MMIO_HOLE_START) / IGVM_PAGE_SIZE_4K, 8);
		return 0;
	case IGVM_VHT_MEMORY_MAP:
		return param_memory_map(l, h);
	case IGVM_VHT_COMMAND_LINE:
		return param_cmdline(l, h);
	case IGVM_VHT_MADT:
		return param_acpi(l, h, "APIC");
	case IGVM_VHT_SRAT:
		return param_acpi(l, h, "SRAT");
	case IGVM_VHT_DEVICE_TREE:
		return param_device_tree(l, h);
	default: /* SLIT, PPTT: left zero (the usage is still checked) */
		return param_slot(l, h, 0, &ret) ? 0 : ret;
	}
}

static int param_insert(struct loader *l, const struct igvm_hdr *h)
{
	struct area *a = find_area(l, h->u.insert.index);
	if (!a || a->inserted)
		return fail(l, h, "parameter area %u is not allocated", h->u.insert.index);
	uint64_t gpa;
	int ret = place(l, h, h->u.insert.gpa, a->size, &gpa);
	if (ret)
		return ret;
	uint8_t *p = gmem_map(l->m, gpa, a->size);
	if (!p)
		return fail(l, h, "parameter area %u (%llu bytes) at 0x%llx is not guest RAM",
			    a->index, (unsigned long long)a->size, (unsigned long long)gpa);
	memcpy(p, a->buf, a->size);
	a->inserted = true;
	free(a->buf);
	a->buf = NULL;
	return 0;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

/* HV_X64_SEGMENT_REGISTER: base u64, limit u32, selector u16, attributes u16. */
static struct x86_segment hv_seg(const uint8_t *v)
{
	struct x86_segment sg = { 0 };
	uint16_t attr = (uint16_t)le(v + 14, 2);
	sg.base = le(v, 8);
	sg.limit = (uint32_t)le(v + 8, 4);
	sg.selector = (uint16_t)le(v + 12, 2);
	sg.type = attr & 0xf;
	sg.s = (attr >> 4) & 1;
	sg.dpl = (attr >> 5) & 3;
	sg.present = (attr >> 7) & 1;
	sg.avl = (attr >> 12) & 1;
	sg.l = (attr >> 13) & 1;
	sg.db = (attr >> 14) & 1;
	sg.g = (attr >> 15) & 1;
	sg.unusable = !sg.present;
	return sg;
}

/* A VBS register list (validated: known names, one VTL) into b->vbs_*. */
static int vbs_context(struct loader *l, const struct igvm_hdr *h, struct igvm_boot *b)
{
	struct x86_regs *r = &b->vbs_regs;
	struct x86_sregs *s = &b->vbs_sregs;
	for (uint32_t i = 0; i < h->u.vp.n_regs; i++) {
		struct igvm_vbs_reg reg;
		igvm_vbs_reg_get(h, i, &reg);
		uint64_t v = le(reg.value, 8);
		switch (reg.name) {
		case 0x20004: r->rsp = v; break;
		case 0x20005: r->rbp = v; break;
		case 0x20006: r->rsi = v; break;
		case 0x20008: r->r8 = v; break;
		case 0x20009: r->r9 = v; break;
		case 0x2000A: r->r10 = v; break;
		case 0x2000B: r->r11 = v; break;
		case 0x2000C: r->r12 = v; break;
		case 0x20010: r->rip = v; break;
		case 0x20011: r->rflags = v | 0x2; break;
		case 0x40000: s->cr0 = v; break;
		case 0x40002: s->cr3 = v; break;
		case 0x40003: s->cr4 = v; break;
		case 0x60000: s->es = hv_seg(reg.value); break;
		case 0x60001: s->cs = hv_seg(reg.value); break;
		case 0x60002: s->ss = hv_seg(reg.value); break;
		case 0x60003: s->ds = hv_seg(reg.value); break;
		case 0x60004: s->fs = hv_seg(reg.value); break;
		case 0x60005: s->gs = hv_seg(reg.value); break;
		case 0x60007: break; /* TR: skipped, as the reference loader does */
		/* HV_X64_TABLE_REGISTER: pad u16[3], limit u16, base u64. */
		case 0x70000: s->idt = (struct x86_dtable){ le(reg.value + 8, 8),
				(uint16_t)le(reg.value + 6, 2) }; break;
		case 0x70001: s->gdt = (struct x86_dtable){ le(reg.value + 8, 8),
				(uint16_t)le(reg.value + 6, 2) }; break;
		case 0x80001: s->efer = v; break;
		case 0x80004: b->vbs_pat = v; b->have_pat = true; break;
		default: break; /* MTRRs: not kept */
		}
	}
	b->have_vbs = true;
	b->vbs_vtl = h->u.vp.vtl;
	(void)l;
	return 0;
}

static int vp_context(struct loader *l, const struct igvm_hdr *h, struct igvm_boot *b)
{
	if (l->c->vtl2 && h->u.vp.kind == IGVM_VP_VBS) {
		if (h->u.vp.vtl != 2)
			return fail(l, h, "VBS context for VTL %u: the file's registers must be VTL 2's",
				    h->u.vp.vtl);
		if (h->u.vp.vp_index != 0)
			return fail(l, h, "VP context for VP %u: only the BSP (VP 0) can be set",
				    h->u.vp.vp_index);
		if (b->have_vbs)
			return fail(l, h, "second VP context for VP 0");
		return vbs_context(l, h, b);
	}
	if (l->c->vtl2 || h->u.vp.kind != IGVM_VP_NATIVE_X64)
		return fail(l, h, "only native x64 VP contexts (NATIVE) and VBS contexts "
			    "(VSM_ISOLATION) are supported");
	if (h->u.vp.vp_index != 0)
		return fail(l, h, "VP context for VP %u: only the BSP (VP 0) can be set",
			    h->u.vp.vp_index);
	if (b->have_ctx)
		return fail(l, h, "second VP context for VP 0");
	igvm_native_ctx_get(h, &b->ctx);
	b->have_ctx = true;
	return 0;
}

static void grow(struct reloc *r, uint64_t gpa, uint64_t size);

/* Where a REQUIRED_MEMORY at gpa is after relocation. */
static uint64_t required_gpa(const struct loader *l, uint64_t gpa)
{
	if (l->r.moving && (in(gpa, l->r.region.u.reloc.gpa, l->r.region.u.reloc.size) ||
			    in(gpa, l->r.pt.u.pt_reloc.gpa, l->r.pt.u.pt_reloc.size)))
		gpa += l->r.off; /* it may span both regions and what lies between */
	return gpa;
}

/*
 * VTL2-protectable RAM for MEMORY_MAP and DEVICE_TREE (B.4, OpenVMM's
 * vtl2_protectable_ram), before any parameter is filled: the file's
 * VTL2-protectable REQUIRED_MEMORY (relocated) and the vtl2_only regions
 * (auto='s range); none with vtl2= (VTL2 carves its own RAM). Whole pages,
 * sorted and merged into l->prot.
 */
static int prot_plan(struct loader *l, const struct igvm_file *f, uint32_t mask)
{
	struct igvm_dt_mem *p = l->prot;
	unsigned n = 0;
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	while (l->c->reloc != IGVM_RELOC_VTL2 && igvm_next(f, &it, &h)) {
		if (!igvm_hdr_applies(&h, mask) || h.type != IGVM_VHT_REQUIRED_MEMORY ||
		    !(h.u.mem.flags & IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE) || !h.u.mem.size)
			continue;
		uint64_t gpa = required_gpa(l, h.u.mem.gpa), end = gpa + h.u.mem.size;
		if (end < gpa || end > UINT64_MAX - IGVM_PAGE_SIZE_4K)
			return fail(l, &h, "0x%llx bytes at 0x%llx wrap around",
				    (unsigned long long)h.u.mem.size, (unsigned long long)gpa);
		if (n >= MAX_PROT)
			return fail(l, &h, "more than %u VTL2-protectable REQUIRED_MEMORY headers",
				    MAX_PROT);
		gpa &= ~(uint64_t)(IGVM_PAGE_SIZE_4K - 1);
		end = (end + IGVM_PAGE_SIZE_4K - 1) & ~(uint64_t)(IGVM_PAGE_SIZE_4K - 1);
		p[n++] = (struct igvm_dt_mem){ gpa, end - gpa, IGVM_MEMORY_MAP_ENTRY_TYPE_VTL2_PROTECTABLE };
	}
	for (unsigned i = 0; i < l->m->nregions && n < MAX_PROT; i++)
		if (l->m->regions[i].vtl2_only)
			p[n++] = (struct igvm_dt_mem){ l->m->regions[i].gpa, l->m->regions[i].size,
				IGVM_MEMORY_MAP_ENTRY_TYPE_VTL2_PROTECTABLE };
	for (unsigned i = 1; i < n; i++) /* sort by address, then merge overlaps */
		for (unsigned j = i; j > 0 && p[j].gpa < p[j - 1].gpa; j--) {
			struct igvm_dt_mem t = p[j];
			p[j] = p[j - 1];
			p[j - 1] = t;
		}
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++) {
		if (k && p[i].gpa <= p[k - 1].gpa + p[k - 1].size) {
			uint64_t end = p[i].gpa + p[i].size;
			if (end > p[k - 1].gpa + p[k - 1].size)
				p[k - 1].size = end - p[k - 1].gpa;
			continue;
		}
		p[k++] = p[i];
	}
	l->nprot = k;
	return 0;
}

/* RAM that must exist (relocated with VTL2's image); VTL2-protectable
 * ranges in a relocatable file are part of VTL2's range. */
static int required_memory(struct loader *l, const struct igvm_hdr *h)
{
	uint64_t len = h->u.mem.size ? h->u.mem.size : 1, gpa = required_gpa(l, h->u.mem.gpa);
	if (!gmem_map(l->m, gpa, len))
		return fail(l, h, "needs RAM at 0x%llx-0x%llx (give more memory with -m)",
			    (unsigned long long)gpa, (unsigned long long)(gpa + len - 1));
	if (l->r.on && (h->u.mem.flags & IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE) &&
	    h->u.mem.size)
		grow(&l->r, gpa, len);
	return 0;
}

static int apply(struct loader *l, const struct igvm_hdr *h, struct igvm_boot *b)
{
	switch (h->type) {
	case IGVM_VHT_SUPPORTED_PLATFORM:
	case IGVM_VHT_GUEST_POLICY:
	case IGVM_VHT_SNP_ID_BLOCK:
	case IGVM_VHT_VBS_MEASUREMENT:
	case IGVM_VHT_CORIM_DOCUMENT:
	case IGVM_VHT_CORIM_SIGNATURE:
	case IGVM_VHT_ERROR_RANGE:
		return 0; /* nothing to load for a non-isolated VM */
	case IGVM_VHT_RELOCATABLE_REGION:
	case IGVM_VHT_PAGE_TABLE_RELOCATION_REGION:
		return 0; /* read by reloc_plan before the directives */
	case IGVM_VHT_PAGE_DATA:
		return page_data(l, h);
	case IGVM_VHT_PARAMETER_AREA:
		return param_area(l, h);
	case IGVM_VHT_PARAMETER_INSERT:
		return param_insert(l, h);
	case IGVM_VHT_VP_CONTEXT:
		return vp_context(l, h, b);
	case IGVM_VHT_REQUIRED_MEMORY:
		return required_memory(l, h);
	case IGVM_VHT_VP_COUNT_PARAMETER: case IGVM_VHT_SRAT: case IGVM_VHT_MADT:
	case IGVM_VHT_MMIO_RANGES: case IGVM_VHT_MEMORY_MAP: case IGVM_VHT_COMMAND_LINE:
	case IGVM_VHT_SLIT: case IGVM_VHT_PPTT: case IGVM_VHT_DEVICE_TREE:
	case IGVM_VHT_ENVIRONMENT_INFO_PARAMETER:
		return parameter(l, h);
	default:
		return fail(l, h, "not supported for the NATIVE platform");
	}
}

/* The span [lo, hi) grows by [gpa, gpa + size). */
static void grow(struct reloc *r, uint64_t gpa, uint64_t size)
{
	if (!r->hi) {
		r->lo = gpa, r->hi = gpa + size;
		return;
	}
	r->lo = gpa < r->lo ? gpa : r->lo;
	r->hi = gpa + size > r->hi ? gpa + size : r->hi;
}

/* VP 0, VTL 2 or fail(): OpenVMM relocates only the BSP's VTL2 image. */
static int vp0_vtl2(struct loader *l, const struct igvm_hdr *h, uint16_t vp, uint8_t vtl)
{
	if (vp != 0 || vtl != 2)
		return fail(l, h, "region for VP %u VTL %u: relocation needs VP 0 VTL 2", vp, vtl);
	return 0;
}

/*
 * auto= (B.2, OpenVMM's MemoryLayout placement): VTL2 gets a range of its
 * own above all of VTL0's RAM and MMIO (vtl_mem_vtl2_ram_base), as large as
 * the file's VTL2-protectable REQUIRED_MEMORY span (filesize) or
 * c->reloc_size (a multiple of 2 MiB, not smaller); the relocatable region
 * keeps its place inside that span, aligned to its relocation_alignment.
 * Fills *base (the region's new base) and the range.
 */
static int auto_place(struct loader *l, const struct igvm_file *f, uint32_t mask, uint64_t *base,
		      uint64_t *start, uint64_t *size)
{
	const struct igvm_hdr *rg = &l->r.region;
	uint64_t lo = UINT64_MAX, hi = 0;
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	while (igvm_next(f, &it, &h)) {
		if (!igvm_hdr_applies(&h, mask) || h.type != IGVM_VHT_REQUIRED_MEMORY ||
		    !(h.u.mem.flags & IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE) || !h.u.mem.size)
			continue;
		lo = h.u.mem.gpa < lo ? h.u.mem.gpa : lo;
		hi = h.u.mem.gpa + h.u.mem.size > hi ? h.u.mem.gpa + h.u.mem.size : hi;
	}
	if (!hi)
		return fail(l, NULL, "auto= needs a VTL2-protectable REQUIRED_MEMORY to size VTL2's "
			    "range (the file has none); use absolute=ADDR");
	uint64_t want = (hi - lo + 0xfff) & ~0xfffull, a = rg->u.reloc.alignment;
	if (l->c->reloc_size && l->c->reloc_size < want)
		return fail(l, NULL, "auto=0x%llx is smaller than the file's VTL2 memory (0x%llx "
			    "bytes)", (unsigned long long)l->c->reloc_size, (unsigned long long)want);
	*size = l->c->reloc_size ? l->c->reloc_size : want;
	if (rg->u.reloc.gpa < lo || rg->u.reloc.gpa - lo > *size ||
	    rg->u.reloc.size > *size - (rg->u.reloc.gpa - lo))
		return fail(l, rg, "auto=: the relocatable region is not inside the VTL2-protectable "
			    "memory 0x%llx-0x%llx", (unsigned long long)lo, (unsigned long long)(hi - 1));
	uint64_t rel = rg->u.reloc.gpa - lo, from = vtl_mem_vtl2_ram_base(l->m, a);
	if (!from || a == 0 || from + rel + a < from)
		return fail(l, rg, "auto=: no room for VTL2's range above guest RAM");
	*base = (from + rel + a - 1) / a * a;
	*start = *base - rel;
	return 0;
}

/*
 * The relocation rules of B.3 step 2, checked before anything is loaded:
 * exactly one relocatable region, IS_VTL2, a page-table region, both VP 0
 * VTL 2; the new base aligned, >= minimum, base + size <= maximum, and not
 * below the file's base (positive offsets only). Fills l->r.
 */
static int reloc_plan(struct loader *l, const struct igvm_file *f, uint32_t mask)
{
	const struct igvm_load_config *c = l->c;
	struct reloc *r = &l->r;
	unsigned nreg = 0, npt = 0;
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	while (igvm_next(f, &it, &h)) {
		if (!igvm_hdr_applies(&h, mask))
			continue;
		if (h.type == IGVM_VHT_RELOCATABLE_REGION && nreg++ == 0)
			r->region = h;
		if (h.type == IGVM_VHT_PAGE_TABLE_RELOCATION_REGION && npt++ == 0)
			r->pt = h;
	}
	const struct igvm_hdr *rg = &r->region, *pt = &r->pt;
	uint8_t flags = rg->u.reloc.flags;
	if (c->reloc == IGVM_RELOC_VTL2 && c->reloc_size > l->m->size)
		return fail(l, NULL, "vtl2=0x%llx is larger than VTL0's RAM (0x%llx bytes) it is "
			    "carved from", (unsigned long long)c->reloc_size,
			    (unsigned long long)l->m->size);
	if (c->reloc == IGVM_RELOC_DISABLE || c->reloc == IGVM_RELOC_VTL2) {
		/* The file's own place: VTL2's range, nothing moves. */
		if (nreg == 1 && (flags & IGVM_VHF_RELOCATABLE_REGION_IS_VTL2)) {
			r->on = true;
			grow(r, rg->u.reloc.gpa, rg->u.reloc.size);
			if (npt == 1)
				grow(r, pt->u.pt_reloc.gpa, pt->u.pt_reloc.size);
		}
		return 0;
	}
	if (nreg != 1)
		return fail(l, NULL, "relocation needs exactly one RELOCATABLE_REGION (the file "
			    "has %u)", nreg);
	if (!(flags & IGVM_VHF_RELOCATABLE_REGION_IS_VTL2))
		return fail(l, rg, "relocation needs VTL2's region (IS_VTL2 is clear)");
	int ret = vp0_vtl2(l, rg, rg->u.reloc.vp_index, rg->u.reloc.vtl);
	if (ret)
		return ret;
	if (npt != 1)
		return fail(l, NULL, "relocation needs a PAGE_TABLE_RELOCATION_REGION (the file "
			    "has %u)", npt);
	if ((ret = vp0_vtl2(l, pt, pt->u.pt_reloc.vp_index, pt->u.pt_reloc.vtl)))
		return ret;
	uint64_t base = c->reloc_addr, a = rg->u.reloc.alignment, size = rg->u.reloc.size;
	uint64_t vtl2_start = 0, vtl2_size = 0;
	if (c->reloc == IGVM_RELOC_AUTO &&
	    (ret = auto_place(l, f, mask, &base, &vtl2_start, &vtl2_size)))
		return ret;
	const char *how = c->reloc == IGVM_RELOC_AUTO ? "auto=: base " : "absolute=";
	unsigned long long B = base;
	if (a == 0 || base % a)
		return fail(l, rg, "%s0x%llx is not aligned to relocation_alignment 0x%llx",
			    how, B, (unsigned long long)a);
	if (base < rg->u.reloc.min_gpa)
		return fail(l, rg, "%s0x%llx is below minimum_relocation_gpa 0x%llx", how, B,
			    (unsigned long long)rg->u.reloc.min_gpa);
	if (base > rg->u.reloc.max_gpa || size > rg->u.reloc.max_gpa - base)
		return fail(l, rg, "%s0x%llx: the region's end 0x%llx is above "
			    "maximum_relocation_gpa 0x%llx", how, B, (unsigned long long)(base + size),
			    (unsigned long long)rg->u.reloc.max_gpa);
	if (base < rg->u.reloc.gpa)
		return fail(l, rg, "%s0x%llx is below the file's base 0x%llx: only a "
			    "positive offset is supported", how, B, (unsigned long long)rg->u.reloc.gpa);
	r->off = base - rg->u.reloc.gpa;
	uint64_t ptend = pt->u.pt_reloc.gpa + pt->u.pt_reloc.size;
	if (ptend + r->off < ptend || pt->u.pt_reloc.size > IGVM_PT_RELOC_MAX)
		return fail(l, pt, "page table region of 0x%llx bytes cannot move by 0x%llx",
			    (unsigned long long)pt->u.pt_reloc.size, (unsigned long long)r->off);
	r->ptbuf = calloc(1, pt->u.pt_reloc.size ? pt->u.pt_reloc.size : 1);
	if (!r->ptbuf)
		return -ENOMEM;
	if (vtl2_size) {
		/* auto=: VTL2's own RAM, above everything VTL0 has (vtl_mem.h's contract). */
		if ((ret = gmem_add_vtl2_region(l->m, vtl2_start, vtl2_size)))
			return ret == -ENOMEM ? ret : fail(l, NULL, "auto=: cannot add VTL2's RAM at "
				"0x%llx-0x%llx (%s)", (unsigned long long)vtl2_start,
				(unsigned long long)(vtl2_start + vtl2_size - 1), strerror(-ret));
		grow(r, vtl2_start, vtl2_size);
	}
	r->on = r->moving = true;
	grow(r, base, size);
	grow(r, pt->u.pt_reloc.gpa + r->off, pt->u.pt_reloc.size);
	return 0;
}

/* After the directives: the rebuilt page tables in, the context moved (B.3 4-5). */
static int reloc_finish(struct loader *l, struct igvm_boot *b)
{
	struct reloc *r = &l->r;
	const struct igvm_hdr *pt = &r->pt;
	struct igvm_reloc_range rr = { r->region.u.reloc.gpa, r->region.u.reloc.size };
	uint64_t used = 0;
	char why[200];
	int ret = igvm_pt_relocate(r->ptbuf, pt->u.pt_reloc.gpa, pt->u.pt_reloc.size,
				   pt->u.pt_reloc.used_size, b->vbs_sregs.cr3, &rr, 1, r->off, &used,
				   why, sizeof(why));
	if (ret == -ENOMEM)
		return ret;
	if (ret)
		return fail(l, pt, "rebuilding the page tables: %s", why);
	uint64_t gpa = pt->u.pt_reloc.gpa + r->off;
	uint8_t *p = gmem_map(l->m, gpa, used);
	if (!p)
		return fail(l, pt, "relocated page tables 0x%llx-0x%llx are not guest RAM",
			    (unsigned long long)gpa, (unsigned long long)(gpa + used - 1));
	memcpy(p, r->ptbuf, used);
	b->vbs_sregs.cr3 += r->off;
	if (r->region.u.reloc.flags & IGVM_VHF_RELOCATABLE_REGION_APPLY_RIP)
		b->vbs_regs.rip += r->off;
	if (r->region.u.reloc.flags & IGVM_VHF_RELOCATABLE_REGION_APPLY_GDTR)
		b->vbs_sregs.gdt.base += r->off;
	return 0;
}

/* "NATIVE, VSM_ISOLATION" */
static void platform_list(const struct igvm_file *f, char *s, size_t n)
{
	s[0] = 0;
	for (uint32_t i = 0; i < f->n_platforms; i++)
		snprintf(s + strlen(s), n - strlen(s), "%s%s", i ? ", " : "",
			 igvm_platform_name(f->platforms[i].type));
}

/* Open the file and pick the platform: 0 and *mask, or -EINVAL with err. */
static int open_pick(struct igvm_file *f, const uint8_t *buf, size_t len, bool vtl2,
		     uint32_t *mask, struct loader *l)
{
	char why[200];
	int ret = igvm_open(f, buf, len, why, sizeof(why));
	if (ret) {
		snprintf(l->err, l->errlen, "invalid IGVM file: %s", why);
		return ret;
	}
	if (f->arch != IGVM_ARCH_X64)
		return fail(l, NULL, "not an x64 file");
	char plats[128];
	platform_list(f, plats, sizeof(plats));
	if (vtl2) {
		*mask = igvm_platform_mask(f, IGVM_PLATFORM_VSM_ISOLATION);
		if (!*mask)
			return fail(l, NULL, "no VSM_ISOLATION platform for --vtl2 (the file has %s)",
				    plats);
		return 0;
	}
	*mask = igvm_platform_mask(f, IGVM_PLATFORM_NATIVE);
	if (!*mask) {
		bool vsm = igvm_platform_mask(f, IGVM_PLATFORM_VSM_ISOLATION) != 0;
		return fail(l, NULL, "no NATIVE platform (the file has %s)%s", plats,
			    vsm ? "; VSM_ISOLATION needs --vtl2" : "");
	}
	return 0;
}

int igvm_load_check(const uint8_t *buf, size_t len, bool vtl2, char *err, size_t errlen)
{
	struct igvm_file f;
	struct loader l = { .err = err, .errlen = errlen };
	uint32_t mask;
	return open_pick(&f, buf, len, vtl2, &mask, &l);
}

int igvm_load(struct gmem *m, const uint8_t *buf, size_t len, const struct igvm_load_config *c,
	      struct igvm_boot *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	struct igvm_file f;
	struct loader l = { .m = m, .c = c, .err = err, .errlen = errlen };
	uint32_t mask;
	int ret = open_pick(&f, buf, len, c->vtl2, &mask, &l);
	if (ret)
		return ret;
	if (c->reloc != IGVM_RELOC_DISABLE && !c->vtl2)
		return fail(&l, NULL, "--igvm-vtl2-relocation-type other than disable needs --vtl2");
	if (c->vtl2 && ((ret = reloc_plan(&l, &f, mask)) || (ret = prot_plan(&l, &f, mask)))) {
		free(l.r.ptbuf);
		if (ret == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		return ret;
	}
	l.areas = calloc(MAX_AREAS, sizeof(*l.areas));
	if (!l.areas) {
		free(l.r.ptbuf);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	while (igvm_next(&f, &it, &h)) {
		if (!igvm_hdr_applies(&h, mask))
			continue;
		ret = apply(&l, &h, b);
		if (ret == -ENOMEM)
			snprintf(err, errlen, "out of memory loading IGVM header %u", h.index);
		if (ret)
			break;
	}
	if (!ret && !b->have_ctx && !c->vtl2)
		ret = fail(&l, NULL, "no VP context for the BSP on the NATIVE platform");
	if (!ret && !b->have_vbs && c->vtl2)
		ret = fail(&l, NULL, "no VTL 2 VP context for the BSP on the VSM_ISOLATION platform");
	if (!ret && l.r.moving && (ret = reloc_finish(&l, b)) == -ENOMEM)
		snprintf(err, errlen, "out of memory rebuilding the page tables");
	if (!ret && l.r.on) {
		b->vtl2_base = l.r.lo;
		b->vtl2_size = l.r.hi - l.r.lo;
	}
	free(l.r.ptbuf);
	for (size_t i = 0; i < l.nareas; i++)
		free(l.areas[i].buf);
	free(l.areas);
	return ret;
}

/* Access rights as IGVM stores them (VMX layout) into hvmm's segment. */
static struct x86_segment seg(uint16_t sel, uint16_t attr, uint64_t base, uint32_t limit)
{
	return (struct x86_segment){
		.base = base, .limit = limit, .selector = sel,
		.type = attr & 0xf, .s = (attr >> 4) & 1, .dpl = (attr >> 5) & 3,
		.present = (attr >> 7) & 1, .avl = (attr >> 12) & 1, .l = (attr >> 13) & 1,
		.db = (attr >> 14) & 1, .g = (attr >> 15) & 1, .unusable = !((attr >> 7) & 1),
	};
}

void igvm_native_to_regs(const struct igvm_native_vp_context_x64 *c, struct x86_regs *r,
			 struct x86_sregs *s)
{
	*r = (struct x86_regs){
		.rax = c->rax, .rbx = c->rbx, .rcx = c->rcx, .rdx = c->rdx,
		.rsi = c->rsi, .rdi = c->rdi, .rsp = c->rsp, .rbp = c->rbp,
		.r8 = c->r8, .r9 = c->r9, .r10 = c->r10, .r11 = c->r11,
		.r12 = c->r12, .r13 = c->r13, .r14 = c->r14, .r15 = c->r15,
		.rip = c->rip, .rflags = c->rflags | 0x2, /* bit 1 is always set */
	};
	s->cs = seg(c->code_selector, c->code_attributes, c->code_base, c->code_limit);
	s->ds = s->es = s->fs = s->ss =
		seg(c->data_selector, c->data_attributes, c->data_base, c->data_limit);
	s->gs = s->ds;
	s->gs.base = c->gs_base;
	s->gdt = (struct x86_dtable){ c->gdtr_base, c->gdtr_limit };
	s->idt = (struct x86_dtable){ c->idtr_base, c->idtr_limit };
	s->cr0 = c->cr0;
	s->cr3 = c->cr3;
	s->cr4 = c->cr4;
	s->efer = c->efer;
}
