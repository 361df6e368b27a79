/*
 * IGVM validator: the rules that span headers (reference: microsoft/igvm
 * igvm/src/lib.rs validate_platform_headers, validate_initialization_headers,
 * validate_directive_headers; ../shared/docs/igvm-and-vsm.md A.7) plus the
 * ones the reference misses: overlapping imported ranges (page data,
 * parameter inserts, VMSA pages) per compatibility-mask bit, parameter usages
 * that do not fit their area, and duplicate platform masks. Temporary arrays
 * are sized by the number of headers, itself bounded by the file size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "igvm/igvm_internal.h"

struct range { /* a GPA range claimed by one header */
	uint64_t start, end; /* [start, end) */
	uint32_t mask, index, type;
};

struct ident { uint32_t mask, index, type; uint16_t vp; uint8_t vtl; };

struct area { uint32_t index, state, hdr; uint64_t size; }; /* state 0 free, 1 allocated, 2 inserted */

struct vstate {
	const struct igvm_file *f;
	struct range *regions, *imports, *scratch;
	size_t n_regions, n_imports;
	struct ident *idents;
	size_t n_idents;
	struct area *areas;
	size_t area_slots; /* power of two */
	uint32_t pt_masks;
	uint32_t vbs_covered[3]; /* mask bits with a VBS VP context for vp 0, per VTL */
	struct range pt[32];
	size_t n_pt;
};

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Per mask bit, sort the ranges carrying it and look for overlaps. */
static int check_overlap(struct vstate *v, struct range *r, size_t n, const char *what,
			 char *err, size_t errlen)
{
	uint32_t bits = 0;
	for (size_t i = 0; i < n; i++)
		bits |= r[i].mask;
	for (int b = 0; b < 32; b++) {
		if (!(bits >> b & 1))
			continue;
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (r[i].mask >> b & 1)
				v->scratch[m++] = r[i];
		qsort(v->scratch, m, sizeof(*v->scratch), range_cmp);
		size_t far = 0; /* the range reaching furthest so far */
		for (size_t i = 1; i < m; i++) {
			if (v->scratch[i].start < v->scratch[far].end) {
				const struct range *a = &v->scratch[far], *c = &v->scratch[i];
				const struct range *later = a->index > c->index ? a : c;
				const struct range *earlier = later == a ? c : a;
				struct igvm_hdr h = { .index = later->index, .type = later->type };
				igvm_errf(err, errlen, &h,
					  "%s 0x%llx-0x%llx overlaps header %u (0x%llx-0x%llx) for mask bit 0x%x",
					  what, (unsigned long long)later->start, (unsigned long long)later->end - 1,
					  earlier->index, (unsigned long long)earlier->start,
					  (unsigned long long)earlier->end - 1, 1u << b);
				return -EINVAL;
			}
			if (v->scratch[i].end > v->scratch[far].end)
				far = i;
		}
	}
	return 0;
}

static struct area *area_find(struct vstate *v, uint32_t index, bool insert)
{
	size_t m = v->area_slots - 1;
	for (size_t i = (index * 0x9E3779B1u) & m;; i = (i + 1) & m) {
		struct area *a = &v->areas[i];
		if (a->state == 0) {
			if (!insert)
				return NULL;
			a->index = index;
			return a;
		}
		if (a->index == index)
			return a;
	}
}

static uint32_t param_min_size(uint32_t type)
{
	switch (type) {
	case IGVM_VHT_VP_COUNT_PARAMETER:
	case IGVM_VHT_ENVIRONMENT_INFO_PARAMETER: return 4;
	case IGVM_VHT_MMIO_RANGES: return 2 * sizeof(struct igvm_vhs_memory_range);
	case IGVM_VHT_MEMORY_MAP: return sizeof(struct igvm_vhs_memory_map_entry);
	default: return 1;
	}
}

#define FAIL(...) do { igvm_errf(err, errlen, h, __VA_ARGS__); return -EINVAL; } while (0)

static int add_import(struct vstate *v, const struct igvm_hdr *h, uint64_t gpa, uint64_t size,
		      char *err, size_t errlen)
{
	if (gpa + size < gpa)
		FAIL("range 0x%llx+0x%llx wraps around", (unsigned long long)gpa, (unsigned long long)size);
	if (size)
		v->imports[v->n_imports++] = (struct range){ gpa, gpa + size, h->mask, h->index, h->type };
	return 0;
}

static int platform_header(struct igvm_file *f, const struct igvm_hdr *h, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < f->n_platforms; i++) {
		if (f->platforms[i].type == h->u.platform.type)
			FAIL("second platform header for %s", igvm_platform_name(h->u.platform.type));
		if (f->platforms[i].mask == h->u.platform.mask)
			FAIL("compatibility_mask 0x%x already used by %s", h->mask,
			     igvm_platform_name(f->platforms[i].type));
	}
	if (f->n_platforms == IGVM_MAX_PLATFORMS)
		FAIL("too many platform headers");
	f->platforms[f->n_platforms++] = h->u.platform;
	return 0;
}

static int init_header(struct vstate *v, const struct igvm_hdr *h, char *err, size_t errlen)
{
	uint64_t gpa, size;
	uint16_t vp;
	uint8_t vtl;
	if (h->type == IGVM_VHT_RELOCATABLE_REGION) {
		gpa = h->u.reloc.gpa, size = h->u.reloc.size, vp = h->u.reloc.vp_index, vtl = h->u.reloc.vtl;
	} else if (h->type == IGVM_VHT_PAGE_TABLE_RELOCATION_REGION) {
		gpa = h->u.pt_reloc.gpa, size = h->u.pt_reloc.size;
		vp = h->u.pt_reloc.vp_index, vtl = h->u.pt_reloc.vtl;
		if (h->mask & v->pt_masks)
			FAIL("second page table relocation region for mask bits 0x%x", h->mask & v->pt_masks);
		v->pt_masks |= h->mask;
		if (h->mask) /* disjoint non-zero masks: at most 32 */
			v->pt[v->n_pt++] = (struct range){ gpa, gpa + size, h->mask, h->index, h->type };
	} else {
		return 0;
	}
	v->regions[v->n_regions++] = (struct range){ gpa, gpa + size, h->mask, h->index, h->type };
	v->idents[v->n_idents++] = (struct ident){ h->mask, h->index, h->type, vp, vtl };
	return 0;
}

static int directive_header(struct vstate *v, const struct igvm_hdr *h, char *err, size_t errlen)
{
	struct area *a;
	switch (h->type) {
	case IGVM_VHT_PARAMETER_AREA:
		a = area_find(v, h->u.area.index, true);
		if (a->state)
			FAIL("parameter_area_index %u already declared by header %u", h->u.area.index, a->hdr);
		a->state = 1;
		a->hdr = h->index;
		a->size = h->u.area.size;
		return 0;
	case IGVM_VHT_PARAMETER_INSERT:
		a = area_find(v, h->u.insert.index, false);
		if (!a || a->state != 1)
			FAIL("parameter_area_index %u is %s", h->u.insert.index,
			     a ? "already inserted" : "not declared");
		a->state = 2;
		for (size_t i = 0; i < v->n_pt; i++)
			if ((v->pt[i].mask & h->mask) && h->u.insert.gpa >= v->pt[i].start &&
			    h->u.insert.gpa < v->pt[i].end)
				FAIL("gpa 0x%llx inside the page table relocation region of header %u",
				     (unsigned long long)h->u.insert.gpa, v->pt[i].index);
		return add_import(v, h, h->u.insert.gpa, a->size, err, errlen);
	case IGVM_VHT_PAGE_DATA:
		return add_import(v, h, h->u.page.gpa,
				  (h->u.page.flags & IGVM_PAGE_DATA_FLAG_IS_2MB_PAGE) ? IGVM_PAGE_SIZE_2M
										     : IGVM_PAGE_SIZE_4K,
				  err, errlen);
	case IGVM_VHT_VP_CONTEXT:
		if (h->u.vp.kind == IGVM_VP_VBS)
			v->vbs_covered[h->u.vp.vtl] |= h->mask;
		if (h->u.vp.kind == IGVM_VP_SNP_VMSA && h->u.vp.gpa)
			return add_import(v, h, h->u.vp.gpa, IGVM_PAGE_SIZE_4K, err, errlen);
		return 0;
	case IGVM_VHT_VP_COUNT_PARAMETER: case IGVM_VHT_SRAT: case IGVM_VHT_MADT:
	case IGVM_VHT_MMIO_RANGES: case IGVM_VHT_MEMORY_MAP: case IGVM_VHT_COMMAND_LINE:
	case IGVM_VHT_SLIT: case IGVM_VHT_PPTT: case IGVM_VHT_DEVICE_TREE:
	case IGVM_VHT_ENVIRONMENT_INFO_PARAMETER:
		a = area_find(v, h->u.param.index, false);
		if (!a || a->state != 1)
			FAIL("parameter_area_index %u is %s", h->u.param.index,
			     a ? "already inserted" : "not declared");
		if ((uint64_t)h->u.param.offset + param_min_size(h->type) > a->size)
			FAIL("byte_offset %u + %u bytes does not fit parameter area %u (%llu bytes)",
			     h->u.param.offset, param_min_size(h->type), h->u.param.index,
			     (unsigned long long)a->size);
		return 0;
	default:
		return 0;
	}
}

static int walk(struct igvm_file *f, struct vstate *v, char *err, size_t errlen)
{
	enum { PLATFORM, INIT, DIRECTIVE } stage = PLATFORM;
	uint32_t cur = f->var_offset, end = f->var_offset + f->var_size, index = 0;
	struct igvm_hdr hdr, *h = &hdr;
	for (; cur < end; index++) {
		if (igvm_decode(f, &cur, index, h, true, err, errlen))
			return -EINVAL;
		int r;
		if (h->type <= IGVM_VHT_RANGE_PLATFORM_LAST) {
			if (stage != PLATFORM)
				FAIL("platform header after initialization or directive headers");
			r = platform_header(f, h, err, errlen);
		} else if (h->type <= IGVM_VHT_RANGE_INIT_LAST) {
			if (stage == DIRECTIVE)
				FAIL("initialization header after directive headers");
			if (f->n_platforms == 0)
				FAIL("no IGVM_VHT_SUPPORTED_PLATFORM header before it");
			stage = INIT;
			r = init_header(v, h, err, errlen);
		} else {
			if (f->n_platforms == 0)
				FAIL("no IGVM_VHT_SUPPORTED_PLATFORM header before it");
			stage = DIRECTIVE;
			r = directive_header(v, h, err, errlen);
		}
		if (r)
			return r;
	}
	f->n_headers = index;
	if (f->n_platforms == 0) {
		igvm_errf(err, errlen, NULL, "no IGVM_VHT_SUPPORTED_PLATFORM header");
		return -EINVAL;
	}
	for (size_t i = 0; i < v->n_idents; i++) {
		const struct ident *id = &v->idents[i];
		if (id->vp == 0 && id->vtl <= 2 && (id->mask & v->vbs_covered[id->vtl]))
			continue;
		struct igvm_hdr e = { .index = id->index, .type = id->type };
		igvm_errf(err, errlen, &e, "no VBS VP context for mask 0x%x vp %u VTL %u", id->mask, id->vp, id->vtl);
		return -EINVAL;
	}
	if (check_overlap(v, v->regions, v->n_regions, "region", err, errlen))
		return -EINVAL;
	return check_overlap(v, v->imports, v->n_imports, "import", err, errlen);
}

int igvm_open(struct igvm_file *f, const void *buf, size_t size, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	int r = igvm_parse_fixed(f, buf, size, err, errlen);
	if (r)
		return r;
	/*
	 * Size the temporary arrays by what the file holds (a framing-only
	 * pre-pass; walk() checks the framing for real): at most a few times the
	 * variable header size, never an attacker-chosen count.
	 */
	size_t n_regions = 0, n_imports = 0, n_areas = 0;
	for (uint32_t at = f->var_offset, end = f->var_offset + f->var_size; end - at >= 8;) {
		uint32_t type = igvm_le32(f->buf + at), len = igvm_le32(f->buf + at + 4);
		if (len > end - at - 8)
			break;
		at += 8 + ((len + 7) & ~7u);
		if (type == IGVM_VHT_RELOCATABLE_REGION || type == IGVM_VHT_PAGE_TABLE_RELOCATION_REGION)
			n_regions++;
		else if (type == IGVM_VHT_PAGE_DATA || type == IGVM_VHT_PARAMETER_INSERT ||
			 type == IGVM_VHT_VP_CONTEXT)
			n_imports++;
		else if (type == IGVM_VHT_PARAMETER_AREA)
			n_areas++;
		if (at < 8) /* wrapped */
			break;
	}
	size_t slots = 2;
	while (slots < 2 * n_areas)
		slots *= 2;
	size_t n_scratch = n_regions > n_imports ? n_regions : n_imports;
	struct vstate v = { .f = f, .area_slots = slots };
	v.regions = calloc(n_regions + 1, sizeof(*v.regions));
	v.imports = calloc(n_imports + 1, sizeof(*v.imports));
	v.scratch = calloc(n_scratch + 1, sizeof(*v.scratch));
	v.idents = calloc(n_regions + 1, sizeof(*v.idents));
	v.areas = calloc(slots, sizeof(*v.areas));
	if (!v.regions || !v.imports || !v.scratch || !v.idents || !v.areas) {
		igvm_errf(err, errlen, NULL, "out of memory for %zu regions and %zu imports", n_regions, n_imports);
		r = -ENOMEM;
	} else {
		r = walk(f, &v, err, errlen);
	}
	free(v.regions);
	free(v.imports);
	free(v.scratch);
	free(v.idents);
	free(v.areas);
	return r;
}
