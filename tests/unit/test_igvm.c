/*
 * Unit tests for the IGVM parser/validator (src/igvm): files are built in
 * memory with the writer (igvm_write.c), a valid file with one of each header
 * type parses, iterates and re-serialises byte for byte, and every validation
 * rule has a file that breaks it; the one-line error must name the header
 * index and the rule. Truncation at every length and random corruption must
 * fail cleanly (run under ASan/UBSan by tests/run.sh).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "igvm/igvm.h"

#define PG 4096u

/* Test files override designated initializers of a base header on purpose. */
#pragma GCC diagnostic ignored "-Woverride-init"
#define HDR(w, type, ...) do { __typeof__(__VA_ARGS__) p_ = __VA_ARGS__; \
	igvm_writer_header(w, type, &p_, sizeof(p_)); } while (0)
#define HDR_DATA(w, type, field, data, len, ...) do { __typeof__(__VA_ARGS__) p_ = __VA_ARGS__; \
	igvm_writer_header_data(w, type, &p_, sizeof(p_), offsetof(__typeof__(p_), field), data, len); } while (0)

static uint8_t page_a[PG], page_b[PG];

static void plat(struct igvm_writer *w, uint32_t mask, uint8_t type, uint8_t vtl)
{
	HDR(w, IGVM_VHT_SUPPORTED_PLATFORM, (struct igvm_vhs_supported_platform){
		.compatibility_mask = mask, .highest_vtl = vtl, .platform_type = type, .platform_version = 1 });
}

static void page(struct igvm_writer *w, uint64_t gpa, uint32_t mask, const void *data)
{
	struct igvm_vhs_page_data p = { .gpa = gpa, .compatibility_mask = mask };
	if (data)
		igvm_writer_header_data(w, IGVM_VHT_PAGE_DATA, &p, sizeof(p),
					offsetof(struct igvm_vhs_page_data, file_offset), data, PG);
	else
		igvm_writer_header(w, IGVM_VHT_PAGE_DATA, &p, sizeof(p));
}

/* A VBS register list: n registers named names[], all VTL vtl. */
static size_t vbs_blob(uint8_t *buf, uint8_t vtl, const uint32_t *names, uint32_t n)
{
	memcpy(buf, &n, 4);
	for (uint32_t i = 0; i < n; i++) {
		struct igvm_vbs_vp_context_register r = { .vtl = vtl, .register_name = names[i] };
		memset(r.register_value, (int)i + 1, 8);
		memcpy(buf + 4 + 32 * i, &r, 32);
	}
	return 4 + 32 * (size_t)n;
}

static const uint32_t regs4[] = { 0x20010 /* Rip */, 0x20004 /* Rsp */, 0x40000 /* Cr0 */, 0x70001 /* Gdtr */ };

static void vbs_ctx(struct igvm_writer *w, uint32_t mask, uint8_t vtl, const uint32_t *names, uint32_t n,
		    uint16_t vp)
{
	uint8_t blob[4 + 32 * 8];
	size_t len = vbs_blob(blob, vtl, names, n);
	HDR_DATA(w, IGVM_VHT_VP_CONTEXT, file_offset, blob, len,
		 (struct igvm_vhs_vp_context){ .compatibility_mask = mask, .vp_index = vp });
}

static uint8_t *finish(struct igvm_writer *w, size_t *len)
{
	uint8_t *buf;
	assert_int_equal(igvm_writer_finish(w, &buf, len), 0);
	igvm_writer_free(w);
	return buf;
}

/* Minimal valid file: VSM platform, one page of data, a BSP context. */
static void minimal_headers(struct igvm_writer *w)
{
	plat(w, 1, IGVM_PLATFORM_VSM_ISOLATION, 2);
	page(w, 0x100000, 1, page_a);
	vbs_ctx(w, 1, 2, regs4, 4, 0);
}

/* One of each x64 header type (CCA ones are in an AArch64 file below). */
static uint8_t *full_file(uint32_t version, size_t *len)
{
	struct igvm_writer w;
	igvm_writer_init(&w, version, IGVM_ARCH_X64);
	plat(&w, 1, IGVM_PLATFORM_VSM_ISOLATION, 2);                                  /* 0 */
	plat(&w, 2, IGVM_PLATFORM_NATIVE, 0);                                         /* 1 */
	HDR(&w, IGVM_VHT_SUPPORTED_PLATFORM, (struct igvm_vhs_supported_platform){    /* 2 */
		.compatibility_mask = 4, .platform_type = IGVM_PLATFORM_SEV_SNP, .platform_version = 1,
		.shared_gpa_boundary = 1ull << 46 });
	HDR(&w, IGVM_VHT_GUEST_POLICY, (struct igvm_vhs_guest_policy){ .policy = 0x30000, .compatibility_mask = 4 });
	HDR(&w, IGVM_VHT_RELOCATABLE_REGION, (struct igvm_vhs_relocatable_region){    /* 4 */
		.compatibility_mask = 1, .vtl = 2, .flags = 3, .relocation_alignment = 0x200000,
		.relocation_region_gpa = 0x200000, .relocation_region_size = 0x200000,
		.minimum_relocation_gpa = 0x200000, .maximum_relocation_gpa = 0x40000000 });
	HDR(&w, IGVM_VHT_PAGE_TABLE_RELOCATION_REGION, (struct igvm_vhs_page_table_relocation){
		.compatibility_mask = 1, .vtl = 2, .gpa = 0x400000, .size = 0x10000, .used_size = 0x3000 });
	HDR_DATA(&w, IGVM_VHT_CORIM_DOCUMENT, file_offset, "corim-doc", 9,                /* 6 */
		 (struct igvm_vhs_corim_data){ .compatibility_mask = 4, .size_bytes = 9 });
	HDR_DATA(&w, IGVM_VHT_CORIM_SIGNATURE, file_offset, "sig", 3,
		 (struct igvm_vhs_corim_data){ .compatibility_mask = 4, .size_bytes = 3 });
	HDR(&w, IGVM_VHT_PARAMETER_AREA, (struct igvm_vhs_parameter_area){ .number_of_bytes = PG }); /* 8 */
	static const uint32_t usages[] = { IGVM_VHT_VP_COUNT_PARAMETER, IGVM_VHT_SRAT, IGVM_VHT_MADT,
		IGVM_VHT_MMIO_RANGES, IGVM_VHT_MEMORY_MAP, IGVM_VHT_SLIT, IGVM_VHT_PPTT,
		IGVM_VHT_DEVICE_TREE, IGVM_VHT_ENVIRONMENT_INFO_PARAMETER };                /* 9..17 */
	for (unsigned i = 0; i < 9; i++)
		HDR(&w, usages[i], (struct igvm_vhs_parameter){ .byte_offset = 64 * i });
	HDR(&w, IGVM_VHT_PARAMETER_INSERT, (struct igvm_vhs_parameter_insert){          /* 18 */
		.gpa = 0x500000, .compatibility_mask = 1 });
	HDR_DATA(&w, IGVM_VHT_PARAMETER_AREA, file_offset, page_b, PG,                  /* 19 */
		 (struct igvm_vhs_parameter_area){ .number_of_bytes = PG, .parameter_area_index = 7 });
	HDR(&w, IGVM_VHT_COMMAND_LINE, (struct igvm_vhs_parameter){ .parameter_area_index = 7 });
	HDR(&w, IGVM_VHT_PARAMETER_INSERT, (struct igvm_vhs_parameter_insert){          /* 21 */
		.gpa = 0x600000, .compatibility_mask = 3, .parameter_area_index = 7 });
	page(&w, 0x200000, 1, page_a);                                                  /* 22 */
	page(&w, 0x200000, 2, page_b); /* same GPA, other platform: fine */
	page(&w, 0x201000, 3, NULL);   /* zero page */
	HDR_DATA(&w, IGVM_VHT_PAGE_DATA, file_offset, page_b, PG, (struct igvm_vhs_page_data){ /* 25 */
		.gpa = 0x400000, .compatibility_mask = 1, .flags = IGVM_PAGE_DATA_FLAG_UNMEASURED,
		.data_type = IGVM_PAGE_DATA_TYPE_SECRETS });
	vbs_ctx(&w, 1, 2, regs4, 4, 0);                                                 /* 26 */
	uint8_t nat[PG] = { 0 };
	struct igvm_native_vp_context_x64 c = { .rip = 0xfff0, .rsp = 0x8000, .cr0 = 0x60000010,
		.code_selector = 8, .gdtr_limit = 0x27 };
	memcpy(nat, &c, sizeof(c));
	HDR_DATA(&w, IGVM_VHT_VP_CONTEXT, file_offset, nat, PG,                         /* 27 */
		 (struct igvm_vhs_vp_context){ .compatibility_mask = 2 });
	HDR_DATA(&w, IGVM_VHT_VP_CONTEXT, file_offset, page_a, PG,                      /* 28 */
		 (struct igvm_vhs_vp_context){ .gpa = 0x7000000, .compatibility_mask = 4 });
	HDR(&w, IGVM_VHT_REQUIRED_MEMORY, (struct igvm_vhs_required_memory){            /* 29 */
		.gpa = 0x800000, .compatibility_mask = 1, .number_of_bytes = 0x100000,
		.flags = IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE });
	HDR(&w, IGVM_VHT_SNP_ID_BLOCK, (struct igvm_vhs_snp_id_block){ .compatibility_mask = 4, .version = 1 });
	HDR(&w, IGVM_VHT_ERROR_RANGE, (struct igvm_vhs_error_range){                    /* 31 */
		.gpa = 0x9000000, .compatibility_mask = 4, .size_bytes = PG });
	HDR(&w, IGVM_VHT_VBS_MEASUREMENT, (struct igvm_vhs_vbs_measurement){            /* 32 */
		.compatibility_mask = 1, .version = 1, .boot_digest_algo = 1, .signing_algo = 1 });
	return finish(&w, len);
}

#define FULL_HEADERS 33

static void fix_crc(uint8_t *f)
{
	uint32_t fixed = f[4] == 2 ? 32 : 24, var_off, var_size, zero = 0;
	memcpy(&var_off, f + 8, 4);
	memcpy(&var_size, f + 12, 4);
	memcpy(f + 20, &zero, 4);
	uint32_t crc = igvm_crc32(igvm_crc32(0, f, fixed), f + var_off, var_size);
	memcpy(f + 20, &crc, 4);
}

/* igvm_open on an exact-size heap copy (so ASan sees any overread). */
static int open_copy(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, buf, len);
	struct igvm_file f;
	int r = igvm_open(&f, copy, len, err, errlen);
	free(copy);
	return r;
}

static void expect_ok(uint8_t *buf, size_t len)
{
	char err[256] = "";
	int r = open_copy(buf, len, err, sizeof(err));
	if (r)
		fail_msg("unexpected error: %s", err);
	free(buf);
}

/* The error must be one line starting with `prefix` and containing `what`. */
static void expect_err(uint8_t *buf, size_t len, const char *prefix, const char *what)
{
	char err[256] = "";
	assert_int_equal(open_copy(buf, len, err, sizeof(err)), -EINVAL);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, what) || strchr(err, '\n'))
		fail_msg("error '%s' lacks '%s' ... '%s'", err, prefix, what);
	free(buf);
}

/* Build a file from minimal headers plus `extra` (a writer callback). */
typedef void (*extra_fn)(struct igvm_writer *w);
static uint8_t *with(extra_fn extra, size_t *len)
{
	struct igvm_writer w;
	igvm_writer_init(&w, 1, 0);
	minimal_headers(&w);
	if (extra)
		extra(&w);
	return finish(&w, len);
}

static void test_full_file_parses(void **state)
{
	(void)state;
	for (uint32_t v = 1; v <= 2; v++) {
		size_t len;
		uint8_t *buf = full_file(v, &len);
		struct igvm_file f;
		char err[256] = "";
		int r = igvm_open(&f, buf, len, err, sizeof(err));
		if (r)
			fail_msg("v%u: %s", v, err);
		assert_int_equal(f.n_headers, FULL_HEADERS);
		assert_int_equal(f.n_platforms, 3);
		assert_int_equal(igvm_platform_mask(&f, IGVM_PLATFORM_NATIVE), 2);
		assert_int_equal(igvm_platform_mask(&f, IGVM_PLATFORM_TDX), 0);
		/* The headers a NATIVE loader would apply. */
		struct igvm_iter it2 = { 0 };
		struct igvm_hdr h2;
		uint32_t native = 0;
		while (igvm_next(&f, &it2, &h2))
			native += igvm_hdr_applies(&h2, 2);
		/* platform 1, area 8, usages 9-17, area 19 + cmdline 20, insert 21
		 * (mask 3), pages 23 and 24, native context 27 */
		assert_int_equal(native, 1 + 1 + 9 + 2 + 1 + 2 + 1);
		assert_int_equal(f.fixed_size, v == 1 ? 24 : 32);
		assert_int_equal(f.var_offset, f.fixed_size);
		struct igvm_iter it = { 0 };
		struct igvm_hdr h;
		uint32_t n = 0;
		const uint8_t *page_a_at = NULL;
		while (igvm_next(&f, &it, &h)) {
			assert_int_equal(h.index, n);
			if (n == 22)
				page_a_at = h.data;
			if (n == 28) /* same contents as header 22: stored once */
				assert_ptr_equal(h.data, page_a_at);
			switch (n) {
			case 4:
				assert_int_equal(h.type, IGVM_VHT_RELOCATABLE_REGION);
				assert_int_equal(h.u.reloc.gpa, 0x200000);
				assert_int_equal(h.u.reloc.max_gpa, 0x40000000);
				assert_int_equal(h.u.reloc.flags, 3);
				break;
			case 6:
				assert_int_equal(h.u.corim.size, 9);
				assert_memory_equal(h.data, "corim-doc", 9);
				break;
			case 19:
				assert_int_equal(h.u.area.index, 7);
				assert_ptr_not_equal(h.data, NULL);
				assert_memory_equal(h.data, page_b, PG);
				break;
			case 22:
				assert_int_equal(h.u.page.gpa, 0x200000);
				assert_memory_equal(h.data, page_a, PG);
				break;
			case 24:
				assert_ptr_equal(h.data, NULL); /* zero page */
				break;
			case 26: {
				assert_int_equal(h.u.vp.kind, IGVM_VP_VBS);
				assert_int_equal(h.u.vp.vtl, 2);
				assert_int_equal(h.u.vp.n_regs, 4);
				struct igvm_vbs_reg reg;
				igvm_vbs_reg_get(&h, 0, &reg);
				assert_int_equal(reg.name, 0x20010);
				assert_int_equal(reg.value[0], 1);
				break;
			}
			case 27: {
				assert_int_equal(h.u.vp.kind, IGVM_VP_NATIVE_X64);
				struct igvm_native_vp_context_x64 c;
				igvm_native_ctx_get(&h, &c);
				assert_int_equal(c.rip, 0xfff0);
				assert_int_equal(c.rsp, 0x8000);
				assert_int_equal(c.cr0, 0x60000010);
				assert_int_equal(c.gdtr_limit, 0x27);
				assert_int_equal(c.code_selector, 8);
				break;
			}
			case 28:
				assert_int_equal(h.u.vp.kind, IGVM_VP_SNP_VMSA);
				assert_int_equal(h.u.vp.gpa, 0x7000000);
				break;
			case 29:
				assert_int_equal(h.u.mem.size, 0x100000);
				assert_int_equal(h.u.mem.flags, 1);
				break;
			}
			n++;
		}
		assert_int_equal(n, FULL_HEADERS);
		free(buf);
	}
}

/* Re-serialise every header the iterator returns: the bytes must match. */
static void test_round_trip(void **state)
{
	(void)state;
	for (uint32_t v = 1; v <= 2; v++) {
		size_t len, len2;
		uint8_t *buf = full_file(v, &len);
		struct igvm_file f;
		assert_int_equal(igvm_open(&f, buf, len, NULL, 0), 0);
		struct igvm_writer w;
		igvm_writer_init(&w, f.format_version, f.arch);
		struct igvm_iter it = { 0 };
		struct igvm_hdr h;
		while (igvm_next(&f, &it, &h)) {
			uint32_t field = h.type == IGVM_VHT_PAGE_DATA ? 12 : h.type == IGVM_VHT_PARAMETER_AREA ? 12
				       : h.type == IGVM_VHT_VP_CONTEXT ? 12 : 4;
			if (h.data)
				igvm_writer_header_data(&w, h.type, h.payload, h.length, field, h.data, h.data_len);
			else
				igvm_writer_header(&w, h.type, h.payload, h.length);
		}
		uint8_t *buf2 = finish(&w, &len2);
		assert_int_equal(len, len2);
		assert_memory_equal(buf, buf2, len);
		free(buf);
		free(buf2);
	}
}

static void test_dump(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = full_file(1, &len);
	struct igvm_file f;
	assert_int_equal(igvm_open(&f, buf, len, NULL, 0), 0);
	char *text = NULL;
	size_t tlen = 0;
	FILE *out = open_memstream(&text, &tlen);
	igvm_dump(&f, out);
	fclose(out);
	/* Every header appears, in order, with its index and type name. */
	const char *at = text;
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	while (igvm_next(&f, &it, &h)) {
		char want[96];
		snprintf(want, sizeof(want), "[%u] %s", h.index, igvm_type_name(h.type));
		const char *p = strstr(at, want);
		if (!p)
			fail_msg("dump lacks '%s':\n%s", want, text);
		at = p + strlen(want);
	}
	assert_non_null(strstr(text, "VSM_ISOLATION highest_vtl 2"));
	assert_non_null(strstr(text, "gpa 0x200000 size 0x200000 alignment 0x200000"));
	assert_non_null(strstr(text, "Rip              (0x20010) = 0x00000000000000000101010101010101"));
	assert_non_null(strstr(text, "rip 0xfff0 rsp 0x8000"));
	assert_non_null(strstr(text, "(zero page)"));
	free(text);
	free(buf);
}

static void test_aarch64_cca(void **state)
{
	(void)state;
	uint8_t *buf;
	struct igvm_writer w;
	igvm_writer_init(&w, 2, IGVM_ARCH_AARCH64);
	plat(&w, 1, IGVM_PLATFORM_CCA, 0);
	plat(&w, 2, IGVM_PLATFORM_VSM_ISOLATION, 2);
	HDR(&w, IGVM_VHT_CCA_POLICY, (struct igvm_vhs_cca_policy){ .compatibility_mask = 1,
		.attributes_required_zeroes = 1, .attributes_required_ones = 2 });
	page(&w, 0, 3, page_a);
	uint8_t ctx[PG] = { 1, 2, 3 };
	HDR_DATA(&w, IGVM_VHT_VP_CONTEXT, file_offset, ctx, PG, (struct igvm_vhs_vp_context){ .compatibility_mask = 1 });
	static const uint32_t arm_regs[] = { 0x00022000, 0x00022001 }; /* any name: not checked on Arm */
	vbs_ctx(&w, 2, 0, arm_regs, 2, 0);
	size_t len;
	buf = finish(&w, &len);
	expect_ok(buf, len);
	/* CCA platform in an x64 file. */
	igvm_writer_init(&w, 2, IGVM_ARCH_X64);
	plat(&w, 1, IGVM_PLATFORM_CCA, 0);
	page(&w, 0, 1, page_a);
	buf = finish(&w, &len);
		expect_err(buf, len, "header 0 (IGVM_VHT_SUPPORTED_PLATFORM)", "not supported on architecture");
	/* CCA policy: required zeroes and ones overlap; mask not a CCA platform; reserved. */
	static const struct { uint64_t z, o; uint32_t mask, rsvd; const char *what; } cases[] = {
		{ 3, 2, 1, 0, "required both zero and one" },
		{ 0, 0, 2, 0, "not a CCA platform" },
		{ 0, 0, 1, 5, "reserved field" },
	};
	for (unsigned i = 0; i < 3; i++) {
		igvm_writer_init(&w, 2, IGVM_ARCH_AARCH64);
		plat(&w, 1, IGVM_PLATFORM_CCA, 0);
		plat(&w, 2, IGVM_PLATFORM_VSM_ISOLATION, 0);
		HDR(&w, IGVM_VHT_CCA_POLICY, (struct igvm_vhs_cca_policy){ .compatibility_mask = cases[i].mask,
			.reserved = cases[i].rsvd, .attributes_required_zeroes = cases[i].z,
			.attributes_required_ones = cases[i].o });
		page(&w, 0, 1, page_a);
		buf = finish(&w, &len);
		expect_err(buf, len, "header 2 (IGVM_VHT_CCA_POLICY)", cases[i].what);
	}
	/* CCA policy in an x64 file; CCA context with bytes after the 80-byte context. */
	igvm_writer_init(&w, 1, 0);
	minimal_headers(&w);
	HDR(&w, IGVM_VHT_CCA_POLICY, (struct igvm_vhs_cca_policy){ .compatibility_mask = 1 });
	buf = finish(&w, &len);
		expect_err(buf, len, "header 3 (IGVM_VHT_CCA_POLICY)", "CCA policy in a non-AArch64 file");
	igvm_writer_init(&w, 2, IGVM_ARCH_AARCH64);
	plat(&w, 1, IGVM_PLATFORM_CCA, 0);
	ctx[100] = 1;
	HDR_DATA(&w, IGVM_VHT_VP_CONTEXT, file_offset, ctx, PG, (struct igvm_vhs_vp_context){ .compatibility_mask = 1 });
	buf = finish(&w, &len);
		expect_err(buf, len, "header 1 (IGVM_VHT_VP_CONTEXT)", "non-zero bytes after the 80-byte");
}

static void test_fixed_header(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf;
	char err[256];
	/* Too short, at every length below the fixed header. */
	buf = with(NULL, &len);
	for (size_t n = 0; n < 24; n++) {
		assert_int_equal(open_copy(buf, n, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "fixed header: "));
	}
	free(buf);
#define MUTATE(off, val, fix, what) do { buf = with(NULL, &len); uint32_t v_ = (val); \
	memcpy(buf + (off), &v_, 4); if (fix) fix_crc(buf); expect_err(buf, len, "fixed header: ", what); } while (0)
	MUTATE(0, 0x4d564748, 0, "bad magic");
	MUTATE(4, 3, 0, "unsupported format version 3");
	MUTATE(16, (uint32_t)len + 1, 0, "total_file_size");
	MUTATE(8, 16, 1, "overlaps the fixed header");
	MUTATE(8, 28, 1, "not 8-byte aligned");
	MUTATE(12, (uint32_t)len, 0, "reaches the end of the file");
	MUTATE(12, 0x7ffffff0, 0, "reaches the end of the file");
	MUTATE(12, 12, 1, "not a multiple of 8");
	MUTATE(20, 0x12345678, 0, "does not match the CRC-32");
	/* A header byte changed without fixing the checksum. */
	buf = with(NULL, &len);
	buf[30] ^= 1;
	expect_err(buf, len, "fixed header: ", "does not match the CRC-32");
	/* An empty data section is rejected (as the reference does). */
	struct igvm_writer w;
	igvm_writer_init(&w, 1, 0);
	plat(&w, 1, IGVM_PLATFORM_VSM_ISOLATION, 0);
	buf = finish(&w, &len);
	expect_err(buf, len, "fixed header: ", "reaches the end of the file");
	/* v2: architecture and page size. */
	igvm_writer_init(&w, 2, 2);
	minimal_headers(&w);
	buf = finish(&w, &len);
		expect_err(buf, len, "fixed header: ", "unknown architecture 2");
	igvm_writer_init(&w, 2, 0);
	minimal_headers(&w);
	buf = finish(&w, &len);
	uint32_t ps = 8192;
	memcpy(buf + 28, &ps, 4);
	fix_crc(buf);
	expect_err(buf, len, "fixed header: ", "unsupported page size 8192");
	/* v2 header cut to v1 size. */
	igvm_writer_init(&w, 2, 0);
	minimal_headers(&w);
	buf = finish(&w, &len);
	assert_int_equal(open_copy(buf, 28, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "32-byte v2 fixed header"));
	free(buf);
}

/* Framing: a payload cut by the variable header's end; no platform at all. */
static void test_framing(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = with(NULL, &len);
	uint32_t var_size;
	memcpy(&var_size, buf + 12, 4);
	var_size -= 8; /* the VP_CONTEXT entry (32 bytes) now has 24 */
	memcpy(buf + 12, &var_size, 4);
	fix_crc(buf);
	expect_err(buf, len, "header 2 (IGVM_VHT_VP_CONTEXT)", "payload of 24 bytes runs past the variable header");
	struct igvm_writer w;
	igvm_writer_init(&w, 1, 0);
	page(&w, 0, 1, page_a);
	buf = finish(&w, &len);
	expect_err(buf, len, "header 0 (IGVM_VHT_PAGE_DATA)", "no IGVM_VHT_SUPPORTED_PLATFORM header before it");
	igvm_writer_init(&w, 1, 0);
	HDR(&w, IGVM_VHT_GUEST_POLICY, (struct igvm_vhs_guest_policy){ .compatibility_mask = 1 });
	HDR_DATA(&w, IGVM_VHT_CORIM_DOCUMENT, file_offset, "x", 1, (struct igvm_vhs_corim_data){ .size_bytes = 1 });
	buf = finish(&w, &len);
	expect_err(buf, len, "header 0 (IGVM_VHT_GUEST_POLICY)", "no IGVM_VHT_SUPPORTED_PLATFORM header before it");
	/* No headers at all, only data. */
	igvm_writer_init(&w, 1, 0);
	buf = finish(&w, &len);
	uint8_t *big = calloc(1, len + 8);
	memcpy(big, buf, len);
	free(buf);
	uint32_t total = (uint32_t)len + 8;
	memcpy(big + 16, &total, 4);
	fix_crc(big);
	expect_err(big, len + 8, "fixed header: ", "no IGVM_VHT_SUPPORTED_PLATFORM header");
}

static void test_v1_v2(void **state)
{
	(void)state;
	for (uint32_t v = 1; v <= 2; v++) {
		struct igvm_writer w;
		igvm_writer_init(&w, v, IGVM_ARCH_X64);
		minimal_headers(&w);
		size_t len;
		uint8_t *buf = finish(&w, &len);
		struct igvm_file f;
		assert_int_equal(igvm_open(&f, buf, len, NULL, 0), 0);
		assert_int_equal(f.format_version, v);
		assert_int_equal(f.arch, IGVM_ARCH_X64);
		assert_int_equal(f.data_offset, (v == 1 ? 24 : 32) + 24 + 32 + 32);
		assert_int_equal(len, f.data_offset + PG + 4 + 4 * 32);
		free(buf);
	}
}

/* Truncating the file anywhere fails cleanly, with the size fixed up too. */
static void test_truncation(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = full_file(1, &len);
	char err[256];
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(open_copy(buf, n, err, sizeof(err)), -EINVAL);
		if (n < 24)
			continue;
		/* Claim the shorter size, keep the headers' CRC valid when possible. */
		uint8_t *cut = malloc(n);
		memcpy(cut, buf, n);
		uint32_t n32 = (uint32_t)n, var_off, var_size;
		memcpy(cut + 16, &n32, 4);
		memcpy(&var_off, cut + 8, 4);
		memcpy(&var_size, cut + 12, 4);
		if ((uint64_t)var_off + var_size <= n)
			fix_crc(cut);
		struct igvm_file f;
		assert_int_equal(igvm_open(&f, cut, n, err, sizeof(err)), -EINVAL);
		free(cut);
	}
	free(buf);
}

/* Random corruption with the CRC fixed up: never a crash, always one line. */
static void test_corruption(void **state)
{
	(void)state;
	size_t len;
	uint8_t *orig = full_file(2, &len);
	uint32_t var_end;
	memcpy(&var_end, orig + 12, 4);
	var_end += 32;
	srand(7);
	for (int i = 0; i < 3000; i++) {
		uint8_t *buf = malloc(len);
		memcpy(buf, orig, len);
		int flips = 1 + rand() % 4;
		for (int k = 0; k < flips; k++)
			buf[32 + (size_t)rand() % (var_end - 32)] ^= (uint8_t)(1u << (rand() % 8));
		fix_crc(buf);
		char err[256] = "";
		struct igvm_file f;
		if (igvm_open(&f, buf, len, err, sizeof(err)) == 0) {
			FILE *out = fopen("/dev/null", "w");
			igvm_dump(&f, out);
			fclose(out);
		} else {
			assert_null(strchr(err, '\n'));
			assert_true(!strncmp(err, "header ", 7) || !strncmp(err, "fixed header", 12));
		}
		free(buf);
	}
	free(orig);
}

/* ---- one broken file per validation rule ---- */

#define CASE(name, ...) static void x_##name(struct igvm_writer *w) { __VA_ARGS__; }
/* Variable header framing and section order. */
CASE(unknown_type, HDR(w, 0x200, (uint64_t){ 0 }))
CASE(optional_type, HDR(w, 0x80000302u, (uint64_t){ 0 }))
CASE(bad_length, igvm_writer_header(w, IGVM_VHT_PAGE_DATA, page_a, 16))
CASE(bad_padding, { uint8_t p[24] = { 0 }; p[20] = 1; igvm_writer_header(w, IGVM_VHT_VP_CONTEXT, p, 24);
	/* rewrite the length field to 20 so only the padding is wrong */
	uint32_t l = 20; memcpy(w->hdrs + w->hdrs_len - 28, &l, 4); })
CASE(platform_late, plat(w, 2, IGVM_PLATFORM_NATIVE, 0))
CASE(init_late, HDR(w, IGVM_VHT_GUEST_POLICY, (struct igvm_vhs_guest_policy){ .compatibility_mask = 1 }))
/* Platform. */
CASE(dup_type, plat(w, 2, IGVM_PLATFORM_VSM_ISOLATION, 0))
CASE(dup_mask, plat(w, 1, IGVM_PLATFORM_NATIVE, 0))
CASE(mask_two_bits, plat(w, 6, IGVM_PLATFORM_NATIVE, 0))
CASE(mask_zero, plat(w, 0, IGVM_PLATFORM_NATIVE, 0))
CASE(vtl1, plat(w, 2, IGVM_PLATFORM_NATIVE, 1))
CASE(plat_type, plat(w, 2, 9, 0))
CASE(plat_version, HDR(w, IGVM_VHT_SUPPORTED_PLATFORM, (struct igvm_vhs_supported_platform){
	.compatibility_mask = 2, .platform_type = IGVM_PLATFORM_TDX, .platform_version = 2 }))
CASE(boundary, HDR(w, IGVM_VHT_SUPPORTED_PLATFORM, (struct igvm_vhs_supported_platform){
	.compatibility_mask = 2, .platform_type = IGVM_PLATFORM_NATIVE, .platform_version = 1,
	.shared_gpa_boundary = 1ull << 40 }))
/* Initialization headers. */
CASE(policy_rsvd, HDR(w, IGVM_VHT_GUEST_POLICY, (struct igvm_vhs_guest_policy){ .compatibility_mask = 1, .reserved = 1 }))
#define RELOC(...) HDR(w, IGVM_VHT_RELOCATABLE_REGION, (struct igvm_vhs_relocatable_region){ \
	.compatibility_mask = 1, .vtl = 2, .relocation_alignment = PG, .relocation_region_gpa = 0x10000, \
	.relocation_region_size = 0x10000, __VA_ARGS__ })
CASE(reloc_size, RELOC(.relocation_region_size = 0x1800))
CASE(reloc_size0, RELOC(.relocation_region_size = 0))
CASE(reloc_align, RELOC(.relocation_alignment = 0x1800))
CASE(reloc_align0, RELOC(.relocation_alignment = 0))
CASE(reloc_gpa, RELOC(.relocation_alignment = 0x200000))
CASE(reloc_max, RELOC(.relocation_alignment = 0x10000, .maximum_relocation_gpa = 0x11001000))
CASE(reloc_wrap, RELOC(.relocation_region_gpa = 0xfffffffffff00000ull, .relocation_region_size = 0x200000))
CASE(reloc_vtl, RELOC(.vtl = 3))
CASE(reloc_no_ctx, RELOC(.vtl = 0))
CASE(reloc_vp1, RELOC(.vp_index = 1))
CASE(reloc_overlap, { RELOC(.relocation_region_gpa = 0x10000); RELOC(.relocation_region_gpa = 0x1f000); })
#define PTR(...) HDR(w, IGVM_VHT_PAGE_TABLE_RELOCATION_REGION, (struct igvm_vhs_page_table_relocation){ \
	.compatibility_mask = 1, .vtl = 2, .gpa = 0x40000, .size = 0x4000, .used_size = 0x1000, __VA_ARGS__ })
CASE(pt_rsvd, PTR(.reserved = 1))
CASE(pt_gpa, PTR(.gpa = 0x40800))
CASE(pt_size, PTR(.size = 0x4100))
CASE(pt_used, PTR(.used_size = 0x5000))
CASE(pt_twice, { PTR(.gpa = 0x40000); PTR(.gpa = 0x80000); })
CASE(pt_overlaps_reloc, { RELOC(.relocation_region_gpa = 0x40000); PTR(.gpa = 0x42000); })
CASE(pt_vtl, PTR(.vtl = 7))
CASE(pt_wrap, PTR(.gpa = 0xfffffffffff00000ull, .size = 0x200000))
CASE(corim_rsvd, HDR(w, IGVM_VHT_CORIM_DOCUMENT, (struct igvm_vhs_corim_data){ .compatibility_mask = 1, .reserved = 1 }))
CASE(corim_past_end, HDR(w, IGVM_VHT_CORIM_DOCUMENT, (struct igvm_vhs_corim_data){
	.compatibility_mask = 1, .file_offset = 0x100, .size_bytes = 0x100000 }))
CASE(cca_x64, HDR(w, IGVM_VHT_CCA_POLICY, (struct igvm_vhs_cca_policy){ .compatibility_mask = 1 }))
/* Directives. */
#define AREA(idx, size) HDR(w, IGVM_VHT_PARAMETER_AREA, (struct igvm_vhs_parameter_area){ \
	.number_of_bytes = (size), .parameter_area_index = (idx) })
#define USE(type, idx, off) HDR(w, type, (struct igvm_vhs_parameter){ (idx), (off) })
#define INSERT(gpa_, idx) HDR(w, IGVM_VHT_PARAMETER_INSERT, (struct igvm_vhs_parameter_insert){ \
	.gpa = (gpa_), .compatibility_mask = 1, .parameter_area_index = (idx) })
CASE(area_size, AREA(0, 100))
CASE(area_dup, { AREA(3, PG); AREA(3, PG); })
CASE(area_past_end, HDR(w, IGVM_VHT_PARAMETER_AREA, (struct igvm_vhs_parameter_area){
	.number_of_bytes = 0x100000, .file_offset = 0x100 }))
CASE(use_undeclared, USE(IGVM_VHT_VP_COUNT_PARAMETER, 5, 0))
CASE(use_after_insert, { AREA(0, PG); INSERT(0x300000, 0); USE(IGVM_VHT_MADT, 0, 0); })
CASE(use_bounds, { AREA(0, PG); USE(IGVM_VHT_VP_COUNT_PARAMETER, 0, PG - 2); })
CASE(use_bounds_mmio, { AREA(0, PG); USE(IGVM_VHT_MMIO_RANGES, 0, PG - 16); })
CASE(use_bounds_huge, { AREA(0, PG); USE(IGVM_VHT_COMMAND_LINE, 0, 0xffffffffu); })
CASE(insert_gpa, { AREA(0, PG); INSERT(0x300010, 0); })
CASE(insert_undeclared, INSERT(0x300000, 4))
CASE(insert_twice, { AREA(0, PG); INSERT(0x300000, 0); INSERT(0x400000, 0); })
CASE(insert_overlaps_page, { AREA(0, 2 * PG); INSERT(0xff000, 0); })
CASE(insert_wrap, { AREA(0, 0xfffffffffff00000ull); INSERT(0x200000, 0); })
#define PAGE(...) HDR(w, IGVM_VHT_PAGE_DATA, (struct igvm_vhs_page_data){ .compatibility_mask = 1, __VA_ARGS__ })
CASE(page_gpa, PAGE(.gpa = 0x1001))
CASE(page_type, PAGE(.gpa = 0x1000, .data_type = 4))
CASE(page_rsvd, PAGE(.gpa = 0x1000, .reserved = 1))
CASE(page_into_headers, PAGE(.gpa = 0x1000, .file_offset = 24))
CASE(page_past_end, PAGE(.gpa = 0x1000, .file_offset = 0x100000))
CASE(page_tail_past_end, PAGE(.gpa = 0x1000, .file_offset = 0x140))
CASE(page_overlap, PAGE(.gpa = 0x100000))
CASE(page_overlap_2mb, PAGE(.gpa = 0x0, .flags = IGVM_PAGE_DATA_FLAG_IS_2MB_PAGE))
CASE(page_wrap, PAGE(.gpa = 0xfffffffffff00000ull, .flags = IGVM_PAGE_DATA_FLAG_IS_2MB_PAGE))
CASE(page_in_pt, { PTR(.gpa = 0x40000); AREA(0, PG); INSERT(0x41000, 0); })
CASE(mem_rsvd, HDR(w, IGVM_VHT_REQUIRED_MEMORY, (struct igvm_vhs_required_memory){ .compatibility_mask = 1, .reserved = 1 }))
CASE(mem_size, HDR(w, IGVM_VHT_REQUIRED_MEMORY, (struct igvm_vhs_required_memory){ .compatibility_mask = 1, .number_of_bytes = 100 }))
CASE(mem_gpa, HDR(w, IGVM_VHT_REQUIRED_MEMORY, (struct igvm_vhs_required_memory){ .compatibility_mask = 1, .gpa = 0x10, .number_of_bytes = PG }))
CASE(err_gpa, HDR(w, IGVM_VHT_ERROR_RANGE, (struct igvm_vhs_error_range){ .compatibility_mask = 1, .gpa = 0x10 }))
/* VP contexts. */
CASE(vp_no_platform, vbs_ctx(w, 2, 0, regs4, 1, 0))
CASE(vp_two_platform_bits, vbs_ctx(w, 3, 0, regs4, 1, 0))
CASE(vp_offset0, HDR(w, IGVM_VHT_VP_CONTEXT, (struct igvm_vhs_vp_context){ .compatibility_mask = 1 }))
CASE(vp_no_regs, vbs_ctx(w, 1, 0, regs4, 0, 0))
CASE(vp_index1, vbs_ctx(w, 1, 0, regs4, 1, 1))
CASE(vp_vtl3, vbs_ctx(w, 1, 3, regs4, 1, 0))
CASE(vp_mixed_vtl, { uint8_t b[4 + 64]; vbs_blob(b, 0, regs4, 2); b[4 + 32] = 2;
	HDR_DATA(w, IGVM_VHT_VP_CONTEXT, file_offset, b, sizeof(b), (struct igvm_vhs_vp_context){ .compatibility_mask = 1 }); })
CASE(vp_bad_reg, { static const uint32_t r[] = { 0x20000 /* Rax */ }; vbs_ctx(w, 1, 0, r, 1, 0); })
CASE(vp_dup_reg, { static const uint32_t r[] = { 0x20010, 0x40000, 0x20010 }; vbs_ctx(w, 1, 0, r, 3, 0); })
CASE(vp_count_past_end, { uint8_t b[4 + 32]; vbs_blob(b, 0, regs4, 1); uint32_t n = 0x10000000; memcpy(b, &n, 4);
	HDR_DATA(w, IGVM_VHT_VP_CONTEXT, file_offset, b, sizeof(b), (struct igvm_vhs_vp_context){ .compatibility_mask = 1 }); })
CASE(vp_native_tail, { plat(w, 2, IGVM_PLATFORM_NATIVE, 0); })
CASE(vp_snp_gpa, { plat(w, 2, IGVM_PLATFORM_SEV_SNP, 0); })

struct rule { const char *name; extra_fn fn; bool before_minimal; const char *prefix, *what; };

/* Files where the extra headers go first (platform section tests). */
static uint8_t *build_rule(const struct rule *r, size_t *len)
{
	struct igvm_writer w;
	igvm_writer_init(&w, 1, 0);
	if (r->fn == x_vp_native_tail || r->fn == x_vp_snp_gpa) {
		minimal_headers(&w);
		/* a second platform must come first: rebuild in order */
		igvm_writer_free(&w);
		igvm_writer_init(&w, 1, 0);
		plat(&w, 1, IGVM_PLATFORM_VSM_ISOLATION, 2);
		r->fn(&w);
		page(&w, 0x100000, 1, page_a);
		uint8_t ctx[PG] = { 0 };
		if (r->fn == x_vp_native_tail) {
			ctx[300] = 1;
			HDR_DATA(&w, IGVM_VHT_VP_CONTEXT, file_offset, ctx, PG, (struct igvm_vhs_vp_context){ .compatibility_mask = 2 });
		} else {
			HDR_DATA(&w, IGVM_VHT_VP_CONTEXT, file_offset, ctx, PG,
				 (struct igvm_vhs_vp_context){ .gpa = 0x1234, .compatibility_mask = 2 });
		}
		return finish(&w, len);
	}
	if (r->before_minimal) {
		plat(&w, 1, IGVM_PLATFORM_VSM_ISOLATION, 2);
		r->fn(&w);
		page(&w, 0x100000, 1, page_a);
		vbs_ctx(&w, 1, 2, regs4, 4, 0);
		return finish(&w, len);
	}
	minimal_headers(&w);
	r->fn(&w);
	return finish(&w, len);
}

#define R(n, before, prefix, what) { #n, x_##n, before, prefix, what }
#define H(i, t) "header " #i " (IGVM_VHT_" #t ")"
static const struct rule rules[] = {
	R(unknown_type, 0, "header 3 (unknown type)", "unknown variable header type 0x200"),
	R(optional_type, 0, "header 3 (unknown type)", "unknown variable header type 0x80000302"),
	R(bad_length, 0, H(3, PAGE_DATA), "length 16, expected 24"),
	R(bad_padding, 0, H(3, VP_CONTEXT), "non-zero padding"),
	R(platform_late, 0, H(3, SUPPORTED_PLATFORM), "platform header after"),
	R(init_late, 0, H(3, GUEST_POLICY), "initialization header after directive"),
	R(dup_type, 1, H(1, SUPPORTED_PLATFORM), "second platform header for VSM_ISOLATION"),
	R(dup_mask, 1, H(1, SUPPORTED_PLATFORM), "compatibility_mask 0x1 already used"),
	R(mask_two_bits, 1, H(1, SUPPORTED_PLATFORM), "exactly one bit"),
	R(mask_zero, 1, H(1, SUPPORTED_PLATFORM), "exactly one bit"),
	R(vtl1, 1, H(1, SUPPORTED_PLATFORM), "highest_vtl 1 must be 0 or 2"),
	R(plat_type, 1, H(1, SUPPORTED_PLATFORM), "unknown platform_type 9"),
	R(plat_version, 1, H(1, SUPPORTED_PLATFORM), "platform_version 2 for TDX"),
	R(boundary, 1, H(1, SUPPORTED_PLATFORM), "shared_gpa_boundary 0x10000000000 must be 0 for NATIVE"),
	R(policy_rsvd, 1, H(1, GUEST_POLICY), "reserved field is not zero"),
	R(reloc_size, 1, H(1, RELOCATABLE_REGION), "relocation_region_size 0x1800"),
	R(reloc_size0, 1, H(1, RELOCATABLE_REGION), "relocation_region_size 0x0"),
	R(reloc_align, 1, H(1, RELOCATABLE_REGION), "relocation_alignment 0x1800"),
	R(reloc_align0, 1, H(1, RELOCATABLE_REGION), "relocation_alignment 0x0"),
	R(reloc_gpa, 1, H(1, RELOCATABLE_REGION), "not aligned to 0x200000"),
	R(reloc_max, 1, H(1, RELOCATABLE_REGION), "maximum 0x11001000 not aligned"),
	R(reloc_wrap, 1, H(1, RELOCATABLE_REGION), "wraps around"),
	R(reloc_vtl, 1, H(1, RELOCATABLE_REGION), "vtl 3"),
	R(reloc_no_ctx, 1, H(1, RELOCATABLE_REGION), "no VBS VP context for mask 0x1 vp 0 VTL 0"),
	R(reloc_vp1, 1, H(1, RELOCATABLE_REGION), "no VBS VP context for mask 0x1 vp 1 VTL 2"),
	R(reloc_overlap, 1, H(2, RELOCATABLE_REGION), "overlaps header 1"),
	R(pt_rsvd, 1, H(1, PAGE_TABLE_RELOCATION_REGION), "reserved field is not zero"),
	R(pt_gpa, 1, H(1, PAGE_TABLE_RELOCATION_REGION), "gpa 0x40800 not 4 KiB aligned"),
	R(pt_size, 1, H(1, PAGE_TABLE_RELOCATION_REGION), "size 0x4100"),
	R(pt_used, 1, H(1, PAGE_TABLE_RELOCATION_REGION), "used_size 0x5000 larger than size 0x4000"),
	R(pt_twice, 1, H(2, PAGE_TABLE_RELOCATION_REGION), "second page table relocation region"),
	R(pt_overlaps_reloc, 1, H(2, PAGE_TABLE_RELOCATION_REGION), "overlaps header 1"),
	R(pt_vtl, 1, H(1, PAGE_TABLE_RELOCATION_REGION), "vtl 7"),
	R(pt_wrap, 1, H(1, PAGE_TABLE_RELOCATION_REGION), "region wraps around"),
	R(corim_rsvd, 1, H(1, CORIM_DOCUMENT), "reserved field is not zero"),
	R(corim_past_end, 1, H(1, CORIM_DOCUMENT), "past the end of the file"),
	R(cca_x64, 1, H(1, CCA_POLICY), "CCA policy in a non-AArch64 file"),
	R(area_size, 0, H(3, PARAMETER_AREA), "number_of_bytes 0x64 not a 4 KiB multiple"),
	R(area_dup, 0, H(4, PARAMETER_AREA), "parameter_area_index 3 already declared by header 3"),
	R(area_past_end, 0, H(3, PARAMETER_AREA), "past the end of the file"),
	R(use_undeclared, 0, H(3, VP_COUNT_PARAMETER), "parameter_area_index 5 is not declared"),
	R(use_after_insert, 0, H(5, MADT), "parameter_area_index 0 is already inserted"),
	R(use_bounds, 0, H(4, VP_COUNT_PARAMETER), "byte_offset 4094 + 4 bytes does not fit"),
	R(use_bounds_mmio, 0, H(4, MMIO_RANGES), "byte_offset 4080 + 32 bytes does not fit"),
	R(use_bounds_huge, 0, H(4, COMMAND_LINE), "does not fit"),
	R(insert_gpa, 0, H(4, PARAMETER_INSERT), "gpa 0x300010 not 4 KiB aligned"),
	R(insert_undeclared, 0, H(3, PARAMETER_INSERT), "parameter_area_index 4 is not declared"),
	R(insert_twice, 0, H(5, PARAMETER_INSERT), "parameter_area_index 0 is already inserted"),
	R(insert_wrap, 0, H(4, PARAMETER_INSERT), "range 0x200000+0xfffffffffff00000 wraps around"),
	R(insert_overlaps_page, 0, H(4, PARAMETER_INSERT), "import 0xff000-0x100fff overlaps header 1"),
	R(page_gpa, 0, H(3, PAGE_DATA), "gpa 0x1001 not 4 KiB aligned"),
	R(page_type, 0, H(3, PAGE_DATA), "unknown data_type 4"),
	R(page_rsvd, 0, H(3, PAGE_DATA), "reserved field is not zero"),
	R(page_into_headers, 0, H(3, PAGE_DATA), "file_offset 0x18 points into the headers"),
	R(page_past_end, 0, H(3, PAGE_DATA), "file data 0x100000+0x1000 runs past the end"),
	R(page_tail_past_end, 0, H(3, PAGE_DATA), "runs past the end"),
	R(page_overlap, 0, H(3, PAGE_DATA), "import 0x100000-0x100fff overlaps header 1"),
	R(page_overlap_2mb, 0, H(3, PAGE_DATA), "import 0x0-0x1fffff overlaps header 1"),
	R(page_wrap, 0, H(3, PAGE_DATA), "wraps around"),
	R(page_in_pt, 1, H(3, PARAMETER_INSERT), "gpa 0x41000 inside the page table relocation region of header 1"),
	R(mem_rsvd, 0, H(3, REQUIRED_MEMORY), "reserved field is not zero"),
	R(mem_size, 0, H(3, REQUIRED_MEMORY), "number_of_bytes 0x64 not 4 KiB aligned"),
	R(mem_gpa, 0, H(3, REQUIRED_MEMORY), "gpa 0x10"),
	R(err_gpa, 0, H(3, ERROR_RANGE), "gpa 0x10 not 4 KiB aligned"),
	R(vp_no_platform, 0, H(3, VP_CONTEXT), "compatibility_mask 0x2 names no platform"),
	R(vp_two_platform_bits, 0, H(3, VP_CONTEXT), "compatibility_mask 0x3 names no platform"),
	R(vp_offset0, 0, H(3, VP_CONTEXT), "file_offset 0: no VP context data"),
	R(vp_no_regs, 0, H(3, VP_CONTEXT), "no registers"),
	R(vp_index1, 0, H(3, VP_CONTEXT), "vp_index 1"),
	R(vp_vtl3, 0, H(3, VP_CONTEXT), "names VTL 3"),
	R(vp_mixed_vtl, 0, H(3, VP_CONTEXT), "register 1 names VTL 2, register 0 VTL 0"),
	R(vp_bad_reg, 0, H(3, VP_CONTEXT), "unsupported x64 register 0x20000"),
	R(vp_dup_reg, 0, H(3, VP_CONTEXT), "register 2: Rip set twice"),
	R(vp_count_past_end, 0, H(3, VP_CONTEXT), "runs past the end of the file"),
	R(vp_native_tail, 0, H(3, VP_CONTEXT), "non-zero bytes after the 232-byte context"),
	R(vp_snp_gpa, 0, H(3, VP_CONTEXT), "VMSA gpa 0x1234 not 4 KiB aligned"),
};

static void test_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		size_t len;
		uint8_t *buf = build_rule(&rules[i], &len);
		char err[256] = "";
		int r = open_copy(buf, len, err, sizeof(err));
		if (r != -EINVAL || strncmp(err, rules[i].prefix, strlen(rules[i].prefix)) ||
		    !strstr(err, rules[i].what) || strchr(err, '\n'))
			fail_msg("rule %s: got %d '%s', want '%s' ... '%s'", rules[i].name, r, err,
				 rules[i].prefix, rules[i].what);
		free(buf);
	}
}

/* Things that look odd but the reference accepts (so must we). */
static void test_accepted(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf;
	struct igvm_writer w;
	/* Same GPA for two platforms; a VP context and page data for a mask
	 * bit no platform declares in other headers; an area never inserted. */
	igvm_writer_init(&w, 1, 0);
	plat(&w, 1, IGVM_PLATFORM_VSM_ISOLATION, 2);
	plat(&w, 2, IGVM_PLATFORM_NATIVE, 0);
	HDR(&w, IGVM_VHT_GUEST_POLICY, (struct igvm_vhs_guest_policy){ .policy = 0x30000, .compatibility_mask = 8 });
	page(&w, 0x1000, 1, page_a);
	page(&w, 0x1000, 2, page_b);
	page(&w, 0x1000, 8, NULL);
	HDR(&w, IGVM_VHT_PARAMETER_AREA, (struct igvm_vhs_parameter_area){ .number_of_bytes = PG, .parameter_area_index = 9 });
	HDR(&w, IGVM_VHT_MEMORY_MAP, (struct igvm_vhs_parameter){ 9, PG - 24 });
	buf = finish(&w, &len);
	expect_ok(buf, len);
	/* Adjacent (touching) page data and regions. */
	igvm_writer_init(&w, 1, 0);
	plat(&w, 1, IGVM_PLATFORM_VSM_ISOLATION, 2);
	HDR(&w, IGVM_VHT_RELOCATABLE_REGION, (struct igvm_vhs_relocatable_region){ .compatibility_mask = 1, .vtl = 2,
		.relocation_alignment = PG, .relocation_region_gpa = 0x10000, .relocation_region_size = 0x10000 });
	HDR(&w, IGVM_VHT_PAGE_TABLE_RELOCATION_REGION, (struct igvm_vhs_page_table_relocation){
		.compatibility_mask = 1, .vtl = 2, .gpa = 0x20000, .size = 0x1000, .used_size = 0x1000 });
	page(&w, 0x1000, 1, page_a);
	page(&w, 0x2000, 1, page_a);
	vbs_ctx(&w, 1, 2, regs4, 4, 0);
	buf = finish(&w, &len);
	expect_ok(buf, len);
}

/* A tiny ELF64: one PT_LOAD of 6 KiB file data + 8 KiB bss at 0x200800. */
static size_t tiny_elf(uint8_t *e, size_t cap)
{
	assert_true(cap >= 0x1000 + 6144);
	memset(e, 0, 0x1000 + 6144);
	memcpy(e, "\x7f" "ELF", 4);
	e[4] = 2, e[5] = 1, e[6] = 1;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
#define PUT(off, v, var) (var = (v), memcpy(e + (off), &var, sizeof(var)))
	PUT(16, 2, u16);          /* ET_EXEC */
	PUT(18, 62, u16);         /* EM_X86_64 */
	PUT(24, 0x200900, u64);   /* e_entry */
	PUT(32, 64, u64);         /* e_phoff */
	PUT(54, 56, u16);         /* e_phentsize */
	PUT(56, 1, u16);          /* e_phnum */
	PUT(64, 1, u32);          /* PT_LOAD */
	PUT(64 + 8, 0x1000, u64); /* p_offset */
	PUT(64 + 16, 0x200800, u64);
	PUT(64 + 24, 0x200800, u64);
	PUT(64 + 32, 6144, u64);
	PUT(64 + 40, 6144 + 8192, u64);
#undef PUT
	for (unsigned i = 0; i < 6144; i++)
		e[0x1000 + i] = (uint8_t)(i * 7 + 1);
	return 0x1000 + 6144;
}

static void test_build_native_elf(void **state)
{
	(void)state;
	static uint8_t elf[0x1000 + 6144];
	size_t elf_len = tiny_elf(elf, sizeof(elf));
	struct igvm_build_opts o = { .elf = elf, .elf_len = elf_len, .cmdline_gpa = 0x30000,
				     .rsp = 0x90000, .rsi = 0x7000 };
	uint8_t *buf;
	size_t len;
	char err[256] = "";
	if (igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)))
		fail_msg("%s", err);
	struct igvm_file f;
	assert_int_equal(igvm_open(&f, buf, len, err, sizeof(err)), 0);
	assert_int_equal(igvm_mask_platform(&f, 1), IGVM_PLATFORM_NATIVE);
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	/* Segment 0x200800-0x203fff: pages 0x200000..0x203000, file data in the first two. */
	int pages = 0, zero_pages = 0, cmdline = 0, ctx = 0;
	while (igvm_next(&f, &it, &h)) {
		if (h.type == IGVM_VHT_COMMAND_LINE)
			cmdline++;
		if (h.type == IGVM_VHT_PARAMETER_INSERT)
			assert_int_equal(h.u.insert.gpa, 0x30000);
		if (h.type == IGVM_VHT_PAGE_DATA && h.u.page.gpa == 0x1000) { /* PML4[0] -> PDPT */
			uint64_t pml4e;
			memcpy(&pml4e, h.data, 8);
			assert_int_equal(pml4e, 0x2000 | 3);
		}
		if (h.type == IGVM_VHT_PAGE_DATA && h.u.page.gpa == 0x3000) { /* PD 0, entry 1: 2 MiB */
			uint64_t pde;
			memcpy(&pde, h.data + 8, 8);
			assert_int_equal(pde, 0x200000 | 0x83);
		}
		if (h.type == IGVM_VHT_PAGE_DATA && h.u.page.gpa >= 0x200000) {
			pages++;
			if (!h.data) {
				zero_pages++;
			} else if (h.u.page.gpa == 0x200000) {
				assert_int_equal(h.data[0x7ff], 0);
				assert_int_equal(h.data[0x800], 1);
				assert_int_equal(h.data[0x801], 8);
			}
		}
		if (h.type == IGVM_VHT_VP_CONTEXT) {
			ctx++;
			assert_int_equal(h.u.vp.kind, IGVM_VP_NATIVE_X64);
			struct igvm_native_vp_context_x64 c;
			igvm_native_ctx_get(&h, &c);
			assert_int_equal(c.rip, 0x200900);
			assert_int_equal(c.rsp, 0x90000);
			assert_int_equal(c.rsi, 0x7000);
			assert_int_equal(c.cr3, 0x1000);
			assert_int_equal(c.gdtr_base, 0x7000);
			assert_int_equal(c.code_selector, 0x10);
			assert_int_equal(c.efer & 0x500, 0x500);
		}
	}
	assert_int_equal(pages, 4);
	assert_int_equal(zero_pages, 2); /* 0x202000 and 0x203000 are bss only */
	assert_int_equal(cmdline, 1);
	assert_int_equal(ctx, 1);
	free(buf);
	/* A payload over the page tables is refused by the validator. */
	o.pt_gpa = 0x1fe000;
	assert_int_equal(igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "overlaps header"));
	/* Not an ELF; a segment past the end of the file. */
	o.pt_gpa = 0;
	o.elf_len = 10;
	assert_int_equal(igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a little-endian x86-64 ELF64"));
	o.elf_len = 0x1000 + 100;
	assert_int_equal(igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "outside the file"));
}

/* Write seed files for the fuzzer when HVMM_IGVM_SEED_DIR is set. */
static void test_write_seeds(void **state)
{
	(void)state;
	const char *dir = getenv("HVMM_IGVM_SEED_DIR");
	if (!dir)
		skip();
	size_t len;
	uint8_t *bufs[3];
	size_t lens[3];
	bufs[0] = with(NULL, &lens[0]);
	bufs[1] = full_file(1, &lens[1]);
	bufs[2] = full_file(2, &lens[2]);
	(void)len;
	static const char *const names[] = { "minimal-v1", "full-v1", "full-v2" };
	for (int i = 0; i < 3; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		FILE *fp = fopen(path, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(bufs[i], 1, lens[i], fp), lens[i]);
		fclose(fp);
		free(bufs[i]);
	}
}

/* build --vsm: VSM_ISOLATION with highest VTL 2 and a VBS context of VTL 2
 * registers carrying the native context's values (entry, stack, paging, CS). */
static void test_build_vsm_elf(void **state)
{
	(void)state;
	static uint8_t elf[0x1000 + 6144];
	size_t elf_len = tiny_elf(elf, sizeof(elf));
	struct igvm_build_opts o = { .elf = elf, .elf_len = elf_len, .rsp = 0x90000, .vsm = true };
	uint8_t *buf;
	size_t len;
	char err[256] = "";
	if (igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)))
		fail_msg("%s", err);
	struct igvm_file f;
	assert_int_equal(igvm_open(&f, buf, len, err, sizeof(err)), 0);
	assert_int_equal(igvm_mask_platform(&f, 1), IGVM_PLATFORM_VSM_ISOLATION);
	assert_int_equal(f.platforms[0].highest_vtl, 2);
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	int ctx = 0, seen = 0;
	while (igvm_next(&f, &it, &h)) {
		if (h.type != IGVM_VHT_VP_CONTEXT)
			continue;
		ctx++;
		assert_int_equal(h.u.vp.kind, IGVM_VP_VBS);
		assert_int_equal(h.u.vp.vtl, 2);
		assert_int_equal(h.u.vp.n_regs, 16);
		for (uint32_t i = 0; i < h.u.vp.n_regs; i++) {
			struct igvm_vbs_reg r;
			igvm_vbs_reg_get(&h, i, &r);
			assert_int_equal(r.vtl, 2);
			uint64_t v;
			uint16_t sel, attr;
			memcpy(&v, r.value, 8);
			memcpy(&sel, r.value + 12, 2);
			memcpy(&attr, r.value + 14, 2);
			switch (r.name) {
			case 0x20010: assert_int_equal(v, 0x200900); seen |= 1; break;
			case 0x20004: assert_int_equal(v, 0x90000); seen |= 2; break;
			case 0x40002: assert_int_equal(v, 0x1000); seen |= 4; break;
			case 0x80001: assert_int_equal(v, 0x500); seen |= 8; break;
			case 0x60001: assert_int_equal(sel, 0x10); assert_int_equal(attr, 0xa09b); seen |= 16; break;
			case 0x60002: assert_int_equal(sel, 0x18); seen |= 32; break;
			case 0x70001:
				memcpy(&v, r.value + 8, 8);
				assert_int_equal(v, 0x7000);
				memcpy(&sel, r.value + 6, 2);
				assert_int_equal(sel, 0x1f);
				seen |= 64;
				break;
			default: break;
			}
		}
	}
	assert_int_equal(ctx, 1);
	assert_int_equal(seen, 127);
	free(buf);
}

/* build --vsm --relocatable: OpenHCL's relocation headers (igvm-and-vsm.md
 * B.1) around the payload, the page tables after it, the context pointing
 * at them; they survive write -> open -> iterate and show in dump. */
static void test_build_relocatable(void **state)
{
	(void)state;
	static uint8_t elf[0x1000 + 6144];
	size_t elf_len = tiny_elf(elf, sizeof(elf));
	struct igvm_build_opts o = { .elf = elf, .elf_len = elf_len, .rsp = 0x90000, .vsm = true,
				     .relocatable = true, .reloc_min = 0x200000,
				     .reloc_max = 0x40000000 };
	uint8_t *buf;
	size_t len;
	char err[256] = "";
	if (igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)))
		fail_msg("%s", err);
	struct igvm_file f;
	assert_int_equal(igvm_open(&f, buf, len, err, sizeof(err)), 0);
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	int seen = 0;
	/* Payload 0x200800-0x203fff: region 0x200000-0x3fffff (GDT at 0x204000),
	 * page tables at 0x400000 (6 of 8 pages), required 0x200000-0x5fffff. */
	while (igvm_next(&f, &it, &h)) {
		switch (h.type) {
		case IGVM_VHT_RELOCATABLE_REGION:
			assert_int_equal(h.mask, 1);
			assert_int_equal(h.u.reloc.vp_index, 0);
			assert_int_equal(h.u.reloc.vtl, 2);
			assert_int_equal(h.u.reloc.flags, IGVM_VHF_RELOCATABLE_REGION_IS_VTL2 |
				IGVM_VHF_RELOCATABLE_REGION_APPLY_RIP | IGVM_VHF_RELOCATABLE_REGION_APPLY_GDTR);
			assert_int_equal(h.u.reloc.alignment, 0x200000);
			assert_int_equal(h.u.reloc.gpa, 0x200000);
			assert_int_equal(h.u.reloc.size, 0x200000);
			assert_int_equal(h.u.reloc.min_gpa, 0x200000);
			assert_int_equal(h.u.reloc.max_gpa, 0x40000000);
			seen |= 1;
			break;
		case IGVM_VHT_PAGE_TABLE_RELOCATION_REGION:
			assert_int_equal(h.mask, 1);
			assert_int_equal(h.u.pt_reloc.vp_index, 0);
			assert_int_equal(h.u.pt_reloc.vtl, 2);
			assert_int_equal(h.u.pt_reloc.gpa, 0x400000);
			assert_int_equal(h.u.pt_reloc.size, 0x8000);
			assert_int_equal(h.u.pt_reloc.used_size, 0x6000);
			seen |= 2;
			break;
		case IGVM_VHT_REQUIRED_MEMORY:
			assert_int_equal(h.u.mem.gpa, 0x200000);
			assert_int_equal(h.u.mem.size, 0x400000);
			assert_true(h.u.mem.flags & IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE);
			seen |= 4;
			break;
		case IGVM_VHT_PAGE_DATA:
			if (h.u.page.gpa == 0x400000) { /* PML4[0] -> PDPT in the region */
				uint64_t e;
				memcpy(&e, h.data, 8);
				assert_int_equal(e, 0x401000 | 3);
				seen |= 8;
			}
			if (h.u.page.gpa == 0x204000) { /* GDT: 64-bit code at 0x10 */
				uint64_t e;
				memcpy(&e, h.data + 0x10, 8);
				assert_int_equal(e, 0x00af9b000000ffffull);
				seen |= 16;
			}
			break;
		case IGVM_VHT_VP_CONTEXT:
			for (uint32_t i = 0; i < h.u.vp.n_regs; i++) {
				struct igvm_vbs_reg r;
				uint64_t v;
				igvm_vbs_reg_get(&h, i, &r);
				memcpy(&v, r.value, 8);
				if (r.name == 0x40002) {
					assert_int_equal(v, 0x400000);
					seen |= 32;
				}
				if (r.name == 0x70001) {
					memcpy(&v, r.value + 8, 8);
					assert_int_equal(v, 0x204000);
					seen |= 64;
				}
			}
			break;
		default:
			break;
		}
	}
	assert_int_equal(seen, 127);
	char *text = NULL;
	size_t tlen = 0;
	FILE *out = open_memstream(&text, &tlen);
	igvm_dump(&f, out);
	fclose(out);
	assert_non_null(strstr(text, "IGVM_VHT_RELOCATABLE_REGION mask 0x1 gpa 0x200000 size 0x200000 "
				     "alignment 0x200000 min 0x200000 max 0x40000000 vp 0 vtl 2 flags 0x7 "
				     "is_vtl2 apply_rip apply_gdtr"));
	assert_non_null(strstr(text, "IGVM_VHT_PAGE_TABLE_RELOCATION_REGION mask 0x1 gpa 0x400000 "
				     "size 0x8000 used_size 0x6000 vp 0 vtl 2"));
	free(text);
	free(buf);
	/* Refusals: no --vsm, a fixed page-table GPA, bad alignment, min not aligned. */
	o.vsm = false;
	assert_int_equal(igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--relocatable needs --vsm"));
	o.vsm = true;
	o.pt_gpa = 0x1000;
	assert_int_equal(igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no --pt-gpa"));
	o.pt_gpa = 0;
	o.reloc_align = 0x3000;
	assert_int_equal(igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a power of 2"));
	o.reloc_align = 0;
	o.reloc_min = 0x1000;
	assert_int_equal(igvm_build_native_elf(&o, &buf, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "must be aligned to 0x200000"));
}

int main(void)
{
	for (unsigned i = 0; i < PG; i++) {
		page_a[i] = (uint8_t)i;
		page_b[i] = (uint8_t)(0xa5 ^ i);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file_parses),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_aarch64_cca),
		cmocka_unit_test(test_fixed_header),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_v1_v2),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_corruption),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_build_native_elf),
		cmocka_unit_test(test_build_vsm_elf),
		cmocka_unit_test(test_build_relocatable),
		cmocka_unit_test(test_write_seeds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
