/*
 * Build an IGVM file for the NATIVE x64 platform from a freestanding ELF64
 * payload (the start of `hvmm-igvm build`, issue 7 item 3): the PT_LOAD
 * segments become PAGE_DATA at their physical addresses, an identity map of
 * the low 4 GiB (2 MiB pages) and a GDT are generated, and a native VP
 * context enters the ELF entry point in 64-bit mode (CS 0x10, data 0x18, the
 * state the Linux 64-bit boot protocol gives a kernel). Optionally a
 * 4 KiB parameter area carrying the COMMAND_LINE parameter is inserted at a
 * GPA. With --vsm the platform is VSM_ISOLATION (highest VTL 2) and the VP
 * context the VBS register list of VTL 2 (IGVM VbsVpContextRegister records,
 * igvm-and-vsm.md A), for hvmm --vtl2. The result is checked with igvm_open
 * before it is returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "igvm/igvm_internal.h"

#define ELF_SPAN_MAX (256u << 20) /* payload pages are staged in one buffer */
#define PT_PAGES 7                /* PML4, PDPT, 4 PDs, GDT */

static int elf_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "ELF payload: %s", msg);
	return -EINVAL;
}

/* Stage every PT_LOAD segment into img[base..base+span); fills *entry. */
static int elf_stage(const struct igvm_build_opts *o, uint64_t *base, uint64_t *span, uint8_t **img,
		     uint8_t **present, uint64_t *entry, char *err, size_t errlen)
{
	const uint8_t *e = o->elf;
	size_t n = o->elf_len;
	if (n < 64 || memcmp(e, "\x7f" "ELF", 4) || e[4] != 2 || e[5] != 1 || igvm_le16(e + 18) != 62)
		return elf_err(err, errlen, "not a little-endian x86-64 ELF64 file");
	uint64_t phoff = igvm_le64(e + 32);
	uint16_t phentsize = igvm_le16(e + 54), phnum = igvm_le16(e + 56);
	if (phentsize < 56 || phnum == 0 || phnum > 256 || phoff > n || (uint64_t)phentsize * phnum > n - phoff)
		return elf_err(err, errlen, "bad program header table");
	*entry = igvm_le64(e + 24);
	uint64_t lo = UINT64_MAX, hi = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (uint16_t i = 0; i < phnum; i++) {
			const uint8_t *ph = e + phoff + (size_t)i * phentsize;
			if (igvm_le32(ph) != 1 /* PT_LOAD */)
				continue;
			uint64_t off = igvm_le64(ph + 8), pa = igvm_le64(ph + 24);
			uint64_t filesz = igvm_le64(ph + 32), memsz = igvm_le64(ph + 40);
			if (memsz == 0)
				continue;
			if (filesz > memsz || off > n || filesz > n - off || pa >= (4ull << 30) ||
			    memsz > (4ull << 30) - pa)
				return elf_err(err, errlen, "PT_LOAD segment outside the file or above 4 GiB");
			if (pass == 0) {
				lo = pa < lo ? pa : lo;
				hi = pa + memsz > hi ? pa + memsz : hi;
				continue;
			}
			memcpy(*img + (pa - *base), e + off, filesz);
			for (uint64_t p = (pa & ~0xfffull); p < pa + memsz; p += IGVM_PAGE_SIZE_4K)
				(*present)[(p - *base) / IGVM_PAGE_SIZE_4K] = 1;
		}
		if (pass == 0) {
			if (lo == UINT64_MAX)
				return elf_err(err, errlen, "no PT_LOAD segment");
			*base = lo & ~0xfffull;
			*span = ((hi + 0xfff) & ~0xfffull) - *base;
			if (*span > ELF_SPAN_MAX)
				return elf_err(err, errlen, "segments span more than 256 MiB");
			*img = calloc(1, *span);
			*present = calloc(*span / IGVM_PAGE_SIZE_4K, 1);
			if (!*img || !*present)
				return -ENOMEM;
		}
	}
	return 0;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* HV_REGISTER_NAME values of the VBS context (x64; igvm-and-vsm.md A). */
#define VBS_REGS 16

static uint8_t *vbs_reg(uint8_t *p, uint32_t name)
{
	struct igvm_vbs_vp_context_register r = { .vtl = 2, .register_name = name };
	memcpy(p, &r, sizeof(r));
	return p + offsetof(struct igvm_vbs_vp_context_register, register_value);
}

/* HV_X64_SEGMENT_REGISTER: base u64, limit u32, selector u16, attributes u16. */
static void vbs_seg(uint8_t *v, uint16_t sel, uint16_t attr, uint32_t limit)
{
	put64(v, 0);
	for (int i = 0; i < 4; i++)
		v[8 + i] = (uint8_t)(limit >> (8 * i));
	v[12] = (uint8_t)sel, v[13] = (uint8_t)(sel >> 8);
	v[14] = (uint8_t)attr, v[15] = (uint8_t)(attr >> 8);
}

/* The VTL 2 register list equivalent to the native context c; returns its size. */
static size_t vbs_context(const struct igvm_native_vp_context_x64 *c, uint8_t *out)
{
	static const struct { uint32_t name; size_t off; } gprs[] = {
		{ 0x20010, offsetof(struct igvm_native_vp_context_x64, rip) },
		{ 0x20004, offsetof(struct igvm_native_vp_context_x64, rsp) },
		{ 0x20006, offsetof(struct igvm_native_vp_context_x64, rsi) },
		{ 0x20011, offsetof(struct igvm_native_vp_context_x64, rflags) },
		{ 0x40000, offsetof(struct igvm_native_vp_context_x64, cr0) },
		{ 0x40002, offsetof(struct igvm_native_vp_context_x64, cr3) },
		{ 0x40003, offsetof(struct igvm_native_vp_context_x64, cr4) },
		{ 0x80001, offsetof(struct igvm_native_vp_context_x64, efer) },
	};
	size_t rs = sizeof(struct igvm_vbs_vp_context_register);
	uint8_t *p = out + 4;
	memset(out, 0, 4 + VBS_REGS * rs);
	for (size_t i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++, p += rs) {
		uint64_t v;
		memcpy(&v, (const uint8_t *)c + gprs[i].off, 8);
		put64(vbs_reg(p, gprs[i].name), v);
	}
	put64(vbs_reg(p, 0x80004), 0x0007040600070406ull); /* Pat: the reset value */
	p += rs;
	uint8_t *g = vbs_reg(p, 0x70001); /* Gdtr: pad u16[3], limit u16, base u64 */
	g[6] = (uint8_t)c->gdtr_limit, g[7] = (uint8_t)(c->gdtr_limit >> 8);
	put64(g + 8, c->gdtr_base);
	p += rs;
	vbs_seg(vbs_reg(p, 0x60001), c->code_selector, c->code_attributes, c->code_limit);
	p += rs;
	static const uint32_t data_regs[] = { 0x60003, 0x60000, 0x60004, 0x60005, 0x60002 };
	for (size_t i = 0; i < 5; i++, p += rs)
		vbs_seg(vbs_reg(p, data_regs[i]), c->data_selector, c->data_attributes, c->data_limit);
	size_t n = (size_t)(p - out - 4) / rs;
	out[0] = (uint8_t)n;
	return 4 + n * rs;
}

static bool page_zero(const uint8_t *p)
{
	for (unsigned i = 0; i < IGVM_PAGE_SIZE_4K; i++)
		if (p[i])
			return false;
	return true;
}

static const struct { const char *name; uint32_t type; } param_names[] = {
	{ "vp_count", IGVM_VHT_VP_COUNT_PARAMETER }, { "srat", IGVM_VHT_SRAT },
	{ "madt", IGVM_VHT_MADT }, { "mmio_ranges", IGVM_VHT_MMIO_RANGES },
	{ "memory_map", IGVM_VHT_MEMORY_MAP }, { "cmdline", IGVM_VHT_COMMAND_LINE },
	{ "slit", IGVM_VHT_SLIT }, { "pptt", IGVM_VHT_PPTT },
	{ "device_tree", IGVM_VHT_DEVICE_TREE },
	{ "environment_info", IGVM_VHT_ENVIRONMENT_INFO_PARAMETER },
};

uint32_t igvm_param_type(const char *name)
{
	for (size_t i = 0; i < sizeof(param_names) / sizeof(param_names[0]); i++)
		if (!strcmp(name, param_names[i].name))
			return param_names[i].type;
	return 0;
}

void igvm_build_params(struct igvm_writer *w, const struct igvm_build_param *p, unsigned n,
		       uint32_t first_index)
{
	for (unsigned i = 0; i < n; i++) {
		uint32_t idx = first_index + i;
		uint64_t size = (uint64_t)(p[i].pages ? p[i].pages : 1) * IGVM_PAGE_SIZE_4K;
		struct igvm_vhs_parameter_area area = { .number_of_bytes = size,
			.parameter_area_index = idx };
		struct igvm_vhs_parameter use = { idx, 0 };
		struct igvm_vhs_parameter_insert ins = { .gpa = p[i].gpa, .compatibility_mask = 1,
			.parameter_area_index = idx };
		/* Initial contents fill the whole area in the file (the reader's rule). */
		size_t il = p[i].initial ? strlen(p[i].initial) + 1 : 0;
		uint8_t *init = il && il <= size ? calloc(1, size) : NULL;
		if (il && !init) {
			w->oom = true; /* callers check il <= size; this is calloc failing */
			continue;
		}
		if (init) {
			memcpy(init, p[i].initial, il);
			igvm_writer_header_data(w, IGVM_VHT_PARAMETER_AREA, &area, sizeof(area),
						offsetof(struct igvm_vhs_parameter_area, file_offset),
						init, size);
			free(init);
		} else
			igvm_writer_header(w, IGVM_VHT_PARAMETER_AREA, &area, sizeof(area));
		igvm_writer_header(w, p[i].type, &use, sizeof(use));
		igvm_writer_header(w, IGVM_VHT_PARAMETER_INSERT, &ins, sizeof(ins));
	}
}

/*
 * Where things go. Default: 7 pages at pt_gpa (PML4, PDPT, 4 PDs, GDT).
 * Relocatable (--vsm --relocatable), the way OpenHCL's file is laid out
 * (igvm-and-vsm.md B.1): the relocatable region is [region, region_end)
 * aligned to the relocation alignment and holds the payload and, on the page
 * after it, the GDT; the 6 page-table pages follow at region_end in a page
 * table relocation region with 2 spare pages (for tables the loader's
 * rebuild may need); REQUIRED_MEMORY (VTL2-protectable) covers both,
 * rounded up to the alignment.
 */
struct layout {
	uint64_t pt, gdt, region, region_end, align, pt_size, req_end;
};

static int layout(const struct igvm_build_opts *o, uint64_t base, uint64_t span, struct layout *L,
		  char *err, size_t errlen)
{
	if (!o->relocatable) {
		L->pt = o->pt_gpa ? o->pt_gpa : 0x1000;
		L->gdt = L->pt + 6 * IGVM_PAGE_SIZE_4K;
		if (L->pt & 0xfff || L->pt + PT_PAGES * IGVM_PAGE_SIZE_4K > (4ull << 30)) {
			snprintf(err, errlen, "page table GPA 0x%llx not 4 KiB aligned below 4 GiB",
				 (unsigned long long)L->pt);
			return -EINVAL;
		}
		return 0;
	}
	uint64_t a = o->reloc_align ? o->reloc_align : IGVM_BUILD_RELOC_ALIGN;
	if (!o->vsm || o->pt_gpa) {
		snprintf(err, errlen, "--relocatable needs --vsm and places the page tables itself "
			 "(no --pt-gpa)");
		return -EINVAL;
	}
	if (a < IGVM_PAGE_SIZE_4K || (a & (a - 1)) || a > (1ull << 30)) {
		snprintf(err, errlen, "relocation alignment 0x%llx is not a power of 2 from 4 KiB "
			 "to 1 GiB", (unsigned long long)a);
		return -EINVAL;
	}
	L->align = a;
	L->gdt = base + span; /* page-aligned: span is whole pages */
	L->region = base & ~(a - 1);
	L->region_end = (L->gdt + IGVM_PAGE_SIZE_4K + a - 1) & ~(a - 1);
	L->pt = L->region_end;
	L->pt_size = (PT_PAGES - 1 + 2) * IGVM_PAGE_SIZE_4K;
	L->req_end = (L->pt + L->pt_size + a - 1) & ~(a - 1);
	uint64_t min = o->reloc_min, max = o->reloc_max ? o->reloc_max : IGVM_BUILD_RELOC_MAX;
	if (L->req_end > (4ull << 30) || L->req_end - L->region > UINT32_MAX) {
		snprintf(err, errlen, "relocatable range 0x%llx-0x%llx does not fit below 4 GiB",
			 (unsigned long long)L->region, (unsigned long long)L->req_end - 1);
		return -EINVAL;
	}
	if (min % a || max % a || max <= min) {
		snprintf(err, errlen, "relocation minimum 0x%llx and maximum 0x%llx must be aligned "
			 "to 0x%llx, minimum below maximum", (unsigned long long)min,
			 (unsigned long long)max, (unsigned long long)a);
		return -EINVAL;
	}
	return 0;
}

int igvm_build_native_elf(const struct igvm_build_opts *o, uint8_t **out, size_t *out_len,
			  char *err, size_t errlen)
{
	uint64_t base = 0, span = 0, entry = 0;
	struct layout L = { 0 };
	uint8_t *img = NULL, *present = NULL, *tables = calloc(PT_PAGES, IGVM_PAGE_SIZE_4K);
	int r = tables ? elf_stage(o, &base, &span, &img, &present, &entry, err, errlen) : -ENOMEM;
	if (!r)
		r = layout(o, base, span, &L, err, errlen);
	if (r)
		goto out;
	uint64_t pt = L.pt;
	/* Identity map 0-4 GiB: PML4[0] -> PDPT, PDPT[0..3] -> PDs of 2 MiB pages. */
	put64(tables, (pt + 0x1000) | 0x3);
	for (uint64_t i = 0; i < 4; i++) {
		put64(tables + 0x1000 + 8 * i, (pt + 0x2000 + 0x1000 * i) | 0x3);
		for (uint64_t j = 0; j < 512; j++)
			put64(tables + 0x2000 + 0x1000 * i + 8 * j, ((i << 30) | (j << 21)) | 0x83);
	}
	uint8_t *gdt = tables + 0x6000;
	put64(gdt + 0x10, 0x00af9b000000ffffull); /* 64-bit code */
	put64(gdt + 0x18, 0x00cf93000000ffffull); /* flat data */

	struct igvm_writer w;
	igvm_writer_init(&w, IGVM_FORMAT_VERSION_1, IGVM_ARCH_X64);
	struct igvm_vhs_supported_platform plat = { .compatibility_mask = 1,
		.highest_vtl = o->vsm ? 2 : 0,
		.platform_type = o->vsm ? IGVM_PLATFORM_VSM_ISOLATION : IGVM_PLATFORM_NATIVE,
		.platform_version = IGVM_PLATFORM_VERSION };
	igvm_writer_header(&w, IGVM_VHT_SUPPORTED_PLATFORM, &plat, sizeof(plat));
	if (o->relocatable) {
		struct igvm_vhs_relocatable_region rr = { .compatibility_mask = 1, .vtl = 2,
			.flags = IGVM_VHF_RELOCATABLE_REGION_IS_VTL2 |
				 IGVM_VHF_RELOCATABLE_REGION_APPLY_RIP |
				 IGVM_VHF_RELOCATABLE_REGION_APPLY_GDTR,
			.relocation_alignment = L.align, .relocation_region_gpa = L.region,
			.relocation_region_size = L.region_end - L.region,
			.minimum_relocation_gpa = o->reloc_min,
			.maximum_relocation_gpa = o->reloc_max ? o->reloc_max : IGVM_BUILD_RELOC_MAX };
		igvm_writer_header(&w, IGVM_VHT_RELOCATABLE_REGION, &rr, sizeof(rr));
		struct igvm_vhs_page_table_relocation ptr = { .compatibility_mask = 1, .vtl = 2,
			.gpa = L.pt, .size = L.pt_size, .used_size = 6 * IGVM_PAGE_SIZE_4K };
		igvm_writer_header(&w, IGVM_VHT_PAGE_TABLE_RELOCATION_REGION, &ptr, sizeof(ptr));
		struct igvm_vhs_required_memory rm = { .gpa = L.region, .compatibility_mask = 1,
			.number_of_bytes = (uint32_t)(L.req_end - L.region),
			.flags = IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE };
		igvm_writer_header(&w, IGVM_VHT_REQUIRED_MEMORY, &rm, sizeof(rm));
	}
	if (o->cmdline_gpa) {
		struct igvm_build_param cl = { .type = IGVM_VHT_COMMAND_LINE, .gpa = o->cmdline_gpa };
		igvm_build_params(&w, &cl, 1, 0);
	}
	igvm_build_params(&w, o->params, o->nparams < IGVM_BUILD_MAX_PARAMS ? o->nparams : 0, 1);
	size_t off_field = offsetof(struct igvm_vhs_page_data, file_offset);
	for (unsigned i = 0; i < PT_PAGES; i++) {
		uint64_t gpa = i < PT_PAGES - 1 ? pt + i * IGVM_PAGE_SIZE_4K : L.gdt;
		struct igvm_vhs_page_data pd = { .gpa = gpa, .compatibility_mask = 1 };
		igvm_writer_header_data(&w, IGVM_VHT_PAGE_DATA, &pd, sizeof(pd), (uint32_t)off_field,
					tables + i * IGVM_PAGE_SIZE_4K, IGVM_PAGE_SIZE_4K);
	}
	for (uint64_t p = 0; p < span / IGVM_PAGE_SIZE_4K; p++) {
		if (!present[p])
			continue;
		struct igvm_vhs_page_data pd = { .gpa = base + p * IGVM_PAGE_SIZE_4K, .compatibility_mask = 1 };
		const uint8_t *src = img + p * IGVM_PAGE_SIZE_4K;
		if (page_zero(src))
			igvm_writer_header(&w, IGVM_VHT_PAGE_DATA, &pd, sizeof(pd));
		else
			igvm_writer_header_data(&w, IGVM_VHT_PAGE_DATA, &pd, sizeof(pd), (uint32_t)off_field,
						src, IGVM_PAGE_SIZE_4K);
	}
	struct igvm_native_vp_context_x64 c = {
		.rip = entry, .rsp = o->rsp, .rsi = o->rsi, .rflags = 0x2,
		.gdtr_base = L.gdt, .gdtr_limit = 0x1f,
		.code_selector = 0x10, .code_attributes = 0xa09b, .code_limit = 0xffffffff,
		.data_selector = 0x18, .data_attributes = 0xc093, .data_limit = 0xffffffff,
		.cr0 = 0x80050033, .cr3 = pt, .cr4 = 0x6a0 /* PAE PGE OSFXSR OSXMMEXCPT */,
		.efer = 0x500 /* LME LMA */,
	};
	struct igvm_vhs_vp_context vp = { .compatibility_mask = 1 };
	if (o->vsm) {
		uint8_t vbs[4 + VBS_REGS * sizeof(struct igvm_vbs_vp_context_register)];
		size_t n = vbs_context(&c, vbs);
		igvm_writer_header_data(&w, IGVM_VHT_VP_CONTEXT, &vp, sizeof(vp),
					offsetof(struct igvm_vhs_vp_context, file_offset), vbs, n);
	} else {
		uint8_t ctx[IGVM_PAGE_SIZE_4K] = { 0 };
		memcpy(ctx, &c, sizeof(c)); /* little-endian host: the on-disk layout */
		igvm_writer_header_data(&w, IGVM_VHT_VP_CONTEXT, &vp, sizeof(vp),
					offsetof(struct igvm_vhs_vp_context, file_offset), ctx, sizeof(ctx));
	}
	r = igvm_writer_finish(&w, out, out_len);
	igvm_writer_free(&w);
	if (r)
		goto out;
	struct igvm_file f;
	r = igvm_open(&f, *out, *out_len, err, errlen);
	if (r) {
		free(*out);
		*out = NULL;
	}
out:
	if (r == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	free(img);
	free(present);
	free(tables);
	return r;
}
