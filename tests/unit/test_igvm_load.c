/*
 * Unit tests for the IGVM loader (src/core/igvm_load.c) against fake guest
 * RAM: a NATIVE file built with the writer loads its pages (data and zero
 * pages, nothing else touched), fills VP_COUNT, MEMORY_MAP (hvmm's e820 RAM
 * in 24-byte entries), MMIO_RANGES, COMMAND_LINE (appended to the file's
 * text) and inserts them, and hands back the BSP's native context, which
 * converts to the segment/control register state a 64-bit entry needs.
 * Every file that does not fit the VM is a one-line error naming the header
 * index: pages, inserts and required memory past RAM, a command line larger
 * than its area, VSM-only files, missing or non-BSP VP contexts. The Linux
 * payload builder's file (with the hello guest as an ELF vmlinux) loads
 * into the layout its stub and zero page expect.
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

#include "core/igvm_load.h"
#include "igvm/igvm.h"
#include "test_pt_walk.h"

#define PG 4096u
#define RAM (8u << 20)

static uint8_t *ram;
static struct gmem mem;

static int setup(void **state)
{
	(void)state;
	ram = malloc(RAM);
	memset(ram, 0xcc, RAM);
	gmem_init_fake(&mem, ram, RAM);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(ram);
	return 0;
}

#define HDR(w, type, ...) do { __typeof__(__VA_ARGS__) p_ = __VA_ARGS__; \
	igvm_writer_header(w, type, &p_, sizeof(p_)); } while (0)

static void plat(struct igvm_writer *w, uint8_t type)
{
	HDR(w, IGVM_VHT_SUPPORTED_PLATFORM, (struct igvm_vhs_supported_platform){
		.compatibility_mask = 1, .platform_type = type, .platform_version = 1,
		.highest_vtl = type == IGVM_PLATFORM_VSM_ISOLATION ? 2 : 0 });
}

static void page(struct igvm_writer *w, uint64_t gpa, const void *data)
{
	struct igvm_vhs_page_data p = { .gpa = gpa, .compatibility_mask = 1 };
	if (data)
		igvm_writer_header_data(w, IGVM_VHT_PAGE_DATA, &p, sizeof(p),
					offsetof(struct igvm_vhs_page_data, file_offset), data, PG);
	else
		igvm_writer_header(w, IGVM_VHT_PAGE_DATA, &p, sizeof(p));
}

static void vp(struct igvm_writer *w, uint16_t index)
{
	static uint8_t ctx[PG];
	struct igvm_native_vp_context_x64 c = {
		.rip = 0x123456, .rsp = 0x8000, .rsi = 0x7000, .rflags = 0,
		.gdtr_base = 0x6000, .gdtr_limit = 0x1f,
		.code_selector = 0x10, .code_attributes = 0xa09b, .code_limit = 0xffffffff,
		.data_selector = 0x18, .data_attributes = 0xc093, .data_limit = 0xffffffff,
		.gs_base = 0xabc000, .cr0 = 0x80050033, .cr3 = 0x1000, .cr4 = 0x6a0, .efer = 0x500,
	};
	memcpy(ctx, &c, sizeof(c));
	struct igvm_vhs_vp_context h = { .compatibility_mask = 1, .vp_index = index };
	igvm_writer_header_data(w, IGVM_VHT_VP_CONTEXT, &h, sizeof(h),
				offsetof(struct igvm_vhs_vp_context, file_offset), ctx, PG);
}

static int load(struct igvm_writer *w, const char *cmdline, struct igvm_boot *b, char *err,
		size_t errlen)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(igvm_writer_finish(w, &buf, &len), 0);
	igvm_writer_free(w);
	struct igvm_load_config c = { .nvcpus = 3, .cmdline = cmdline };
	err[0] = 0;
	int r = igvm_load(&mem, buf, len, &c, b, err, errlen);
	free(buf);
	if (r)
		assert_null(strchr(err, '\n'));
	return r;
}

static uint64_t rd64(uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, ram + gpa, 8);
	return v;
}

static void test_load(void **state)
{
	(void)state;
	static uint8_t data[PG];
	memset(data, 'A', PG);
	char initial[PG] = "console=ttyS0";
	struct igvm_writer w;
	igvm_writer_init(&w, IGVM_FORMAT_VERSION_1, IGVM_ARCH_X64);
	plat(&w, IGVM_PLATFORM_NATIVE);
	uint32_t types[] = { IGVM_VHT_VP_COUNT_PARAMETER, IGVM_VHT_MEMORY_MAP,
			     IGVM_VHT_COMMAND_LINE, IGVM_VHT_MMIO_RANGES };
	for (uint32_t i = 0; i < 4; i++) {
		struct igvm_vhs_parameter_area a = { .number_of_bytes = PG, .parameter_area_index = i };
		if (types[i] == IGVM_VHT_COMMAND_LINE)
			igvm_writer_header_data(&w, IGVM_VHT_PARAMETER_AREA, &a, sizeof(a),
						offsetof(struct igvm_vhs_parameter_area, file_offset),
						initial, PG);
		else
			igvm_writer_header(&w, IGVM_VHT_PARAMETER_AREA, &a, sizeof(a));
		HDR(&w, types[i], (struct igvm_vhs_parameter){ i, 0 });
		HDR(&w, IGVM_VHT_PARAMETER_INSERT, (struct igvm_vhs_parameter_insert){
			.gpa = 0x10000 + PG * i, .compatibility_mask = 1, .parameter_area_index = i });
	}
	HDR(&w, IGVM_VHT_REQUIRED_MEMORY, (struct igvm_vhs_required_memory){
		.gpa = 0, .compatibility_mask = 1, .number_of_bytes = 0x100000 });
	page(&w, 0x3000, data);
	page(&w, 0x4000, NULL);
	vp(&w, 0);
	struct igvm_boot b;
	char err[256];
	assert_int_equal(load(&w, "hello", &b, err, sizeof(err)), 0);

	uint32_t n;
	memcpy(&n, ram + 0x10000, 4);
	assert_int_equal(n, 3);
	/* e820 of 8 MiB: 0-0x9fc00 and 1 MiB-8 MiB, then the zero terminator. */
	assert_int_equal(rd64(0x11000), 0);
	assert_int_equal(rd64(0x11008), 0x9f);
	assert_int_equal(ram[0x11010], IGVM_MEMORY_MAP_ENTRY_TYPE_MEMORY);
	assert_int_equal(rd64(0x11018), 0x100);
	assert_int_equal(rd64(0x11020), 0x700);
	assert_int_equal(rd64(0x11038), 0);
	assert_string_equal((char *)ram + 0x12000, "console=ttyS0 hello");
	assert_int_equal(rd64(0x13000), 0xc0000);
	assert_int_equal(rd64(0x13008), 0x40000);
	assert_int_equal(rd64(0x13010), 0);
	for (unsigned i = 0; i < PG; i++) {
		assert_int_equal(ram[0x3000 + i], 'A');
		assert_int_equal(ram[0x4000 + i], 0);
		assert_int_equal(ram[0x5000 + i], 0xcc); /* untouched */
	}

	assert_true(b.have_ctx);
	struct x86_regs r;
	struct x86_sregs s = { .tr = { .selector = 0x28, .type = 11, .present = 1 } };
	igvm_native_to_regs(&b.ctx, &r, &s);
	assert_int_equal(r.rip, 0x123456);
	assert_int_equal(r.rsi, 0x7000);
	assert_int_equal(r.rsp, 0x8000);
	assert_int_equal(r.rflags, 0x2);
	assert_int_equal(s.cs.selector, 0x10);
	assert_int_equal(s.cs.type, 0xb);
	assert_true(s.cs.l && s.cs.s && s.cs.present && s.cs.g && !s.cs.db && !s.cs.unusable);
	assert_int_equal(s.ss.selector, 0x18);
	assert_true(s.ds.db && !s.ds.l && s.ds.present && s.ds.type == 3);
	assert_int_equal(s.gs.base, 0xabc000);
	assert_int_equal(s.fs.base, 0);
	assert_int_equal(s.gdt.base, 0x6000);
	assert_int_equal(s.gdt.limit, 0x1f);
	assert_int_equal(s.cr0, 0x80050033);
	assert_int_equal(s.cr3, 0x1000);
	assert_int_equal(s.cr4, 0x6a0);
	assert_int_equal(s.efer, 0x500);
	assert_int_equal(s.tr.selector, 0x28); /* left alone */
}

/* A NATIVE file with one bad directive after a good page, expecting `want` in err. */
enum bad { PAGE_PAST_RAM, INSERT_PAST_RAM, REQUIRED_PAST_RAM, CMDLINE_TOO_LONG, NO_VP,
	   VP_NOT_BSP, VSM_ONLY };

static void expect_bad(enum bad kind, const char *want)
{
	static char longline[PG + 10];
	memset(longline, 'x', PG + 1);
	struct igvm_writer w;
	igvm_writer_init(&w, IGVM_FORMAT_VERSION_1, IGVM_ARCH_X64);
	static const uint8_t one[PG] = { 1 };
	plat(&w, kind == VSM_ONLY ? IGVM_PLATFORM_VSM_ISOLATION : IGVM_PLATFORM_NATIVE);
	page(&w, 0x3000, one); /* a file needs some file data */
	switch (kind) {
	case PAGE_PAST_RAM:
		page(&w, RAM, NULL);
		break;
	case INSERT_PAST_RAM:
	case CMDLINE_TOO_LONG:
		HDR(&w, IGVM_VHT_PARAMETER_AREA, (struct igvm_vhs_parameter_area){ .number_of_bytes = PG });
		HDR(&w, IGVM_VHT_COMMAND_LINE, (struct igvm_vhs_parameter){ 0, 0 });
		HDR(&w, IGVM_VHT_PARAMETER_INSERT, (struct igvm_vhs_parameter_insert){
			.gpa = kind == INSERT_PAST_RAM ? RAM : 0x10000,
			.compatibility_mask = 1 });
		break;
	case REQUIRED_PAST_RAM:
		HDR(&w, IGVM_VHT_REQUIRED_MEMORY, (struct igvm_vhs_required_memory){
			.gpa = RAM - PG, .compatibility_mask = 1, .number_of_bytes = 2 * PG });
		break;
	default:
		break;
	}
	if (kind == VP_NOT_BSP)
		vp(&w, 1);
	else if (kind != NO_VP && kind != VSM_ONLY)
		vp(&w, 0);
	struct igvm_boot b;
	char err[256];
	int r = load(&w, kind == CMDLINE_TOO_LONG ? longline : "x", &b, err, sizeof(err));
	assert_int_equal(r, -EINVAL);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_errors(void **state)
{
	(void)state;
	expect_bad(PAGE_PAST_RAM, "IGVM header 2 (IGVM_VHT_PAGE_DATA): page 0x800000-0x800fff is not guest RAM");
	expect_bad(INSERT_PAST_RAM, "IGVM header 4 (IGVM_VHT_PARAMETER_INSERT): parameter area 0");
	expect_bad(REQUIRED_PAST_RAM, "IGVM header 2 (IGVM_VHT_REQUIRED_MEMORY): needs RAM at 0x7ff000-0x800fff");
	expect_bad(CMDLINE_TOO_LONG, "IGVM header 3 (IGVM_VHT_COMMAND_LINE): 4098 bytes at offset 0 do not fit");
	expect_bad(NO_VP, "no VP context for the BSP");
	expect_bad(VP_NOT_BSP, "IGVM header 2 (IGVM_VHT_VP_CONTEXT): VP context for VP 1");
	expect_bad(VSM_ONLY, "no NATIVE platform (the file has VSM_ISOLATION); VSM_ISOLATION needs --vtl2");
}

/* Truncations and byte flips of a good file never crash the loader. */
static void test_hostile(void **state)
{
	(void)state;
	struct igvm_writer w;
	igvm_writer_init(&w, IGVM_FORMAT_VERSION_1, IGVM_ARCH_X64);
	plat(&w, IGVM_PLATFORM_NATIVE);
	HDR(&w, IGVM_VHT_PARAMETER_AREA, (struct igvm_vhs_parameter_area){ .number_of_bytes = PG });
	HDR(&w, IGVM_VHT_MEMORY_MAP, (struct igvm_vhs_parameter){ 0, 0 });
	HDR(&w, IGVM_VHT_PARAMETER_INSERT, (struct igvm_vhs_parameter_insert){
		.gpa = 0x10000, .compatibility_mask = 1 });
	page(&w, 0x3000, NULL);
	vp(&w, 0);
	uint8_t *buf;
	size_t len;
	assert_int_equal(igvm_writer_finish(&w, &buf, &len), 0);
	igvm_writer_free(&w);
	struct igvm_load_config c = { .nvcpus = 1 };
	struct igvm_boot b;
	char err[256];
	assert_int_equal(igvm_load(&mem, buf, len, &c, &b, err, sizeof(err)), 0);
	for (size_t n = 0; n < len; n += 7)
		assert_int_not_equal(igvm_load(&mem, buf, n, &c, &b, err, sizeof(err)), 0);
	srand(7);
	for (int i = 0; i < 2000; i++) {
		uint8_t *m = malloc(len);
		memcpy(m, buf, len);
		m[(size_t)rand() % len] ^= (uint8_t)(1u << (rand() % 8));
		igvm_load(&mem, m, len, &c, &b, err, sizeof(err));
		free(m);
	}
	free(buf);
}

/*
 * hvmm-igvm build --kernel with the hello test guest as an ELF "vmlinux"
 * (the ELF path of linux_boot.c), loaded into fake RAM: the zero page points
 * at the COMMAND_LINE area, which holds the build's text then the VM's line,
 * the memory map is where the stub reads it, the stub jumps to e_entry, and
 * the VP context enters the stub with RSI = zero page.
 */
static void test_build_linux(void **state)
{
	(void)state;
	const char *b = getenv("HVMM_BUILD_ROOT");
	char path[4096];
	snprintf(path, sizeof(path), "%s/tests/guests/hello.elf", b ? b : ".");
	FILE *fp = fopen(path, "rb");
	if (!fp)
		skip();
	static uint8_t elf[1 << 20];
	size_t n = fread(elf, 1, sizeof(elf), fp);
	fclose(fp);
	struct igvm_linux_opts o = { .kernel = elf, .kernel_len = n, .cmdline = "built=1" };
	uint8_t *file;
	size_t len;
	char err[256];
	assert_int_equal(igvm_build_linux(&o, &file, &len, err, sizeof(err)), 0);
	/* 32 MiB of RAM here (the layout asks for at least 16). */
	uint8_t *big = calloc(1, 32u << 20), *keep = ram;
	assert_non_null(big);
	struct gmem bigmem;
	gmem_init_fake(&bigmem, big, 32u << 20);
	ram = big; /* for rd64 */
	struct igvm_load_config c = { .nvcpus = 1, .cmdline = "panic=-1 host=1" };
	struct igvm_boot bt;
	int r = igvm_load(&bigmem, file, len, &c, &bt, err, sizeof(err));
	free(file);
	if (r)
		fail_msg("%s", err);
	uint32_t cl;
	memcpy(&cl, ram + 0x7000 + 0x228, 4);
	assert_int_equal(cl, IGVM_LINUX_CMDLINE_GPA);
	assert_string_equal((char *)ram + IGVM_LINUX_CMDLINE_GPA, "built=1 panic=-1 host=1");
	assert_int_equal(rd64(IGVM_LINUX_MMAP_GPA + 8), 0x9f); /* first e820 RAM range */
	uint32_t mm;
	memcpy(&mm, ram + IGVM_LINUX_STUB_GPA + 8, 4);
	assert_int_equal(mm, IGVM_LINUX_MMAP_GPA);
	uint64_t entry;
	memcpy(&entry, elf + 24, 8);
	assert_int_equal(rd64(IGVM_LINUX_STUB_GPA + 0x61), entry);
	assert_memory_equal(ram + 0x100000, elf + 0x1000, 64); /* .text at 1 MiB */
	assert_true(bt.have_ctx);
	assert_int_equal(bt.ctx.rip, IGVM_LINUX_STUB_GPA);
	assert_int_equal(bt.ctx.rsi, 0x7000);
	assert_int_equal(bt.ctx.code_attributes, 0xa09b);
	assert_int_equal(bt.ctx.efer & 0x500, 0x500);
	ram = keep;
	free(big);
	/* Too little RAM for what the layout needs: REQUIRED_MEMORY says so. */
	struct gmem small;
	gmem_init_fake(&small, ram, 1 << 20);
	assert_int_equal(igvm_build_linux(&o, &file, &len, err, sizeof(err)), 0);
	assert_int_equal(igvm_load(&small, file, len, &c, &bt, err, sizeof(err)), -EINVAL);
	free(file);
	assert_non_null(strstr(err, "IGVM header 1 (IGVM_VHT_REQUIRED_MEMORY): needs RAM at 0x0-"));
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Walks a flattened device tree: counts nodes whose name starts with
 * `prefix` and copies the value of the first property `pname` found.
 */
static unsigned dt_walk(const uint8_t *dt, const char *prefix, const char *pname, char *val,
			size_t vlen)
{
	assert_int_equal(be32(dt), 0xd00dfeed);
	uint32_t total = be32(dt + 4), st = be32(dt + 8), strs = be32(dt + 12);
	uint32_t ssize = be32(dt + 32), tsize = be32(dt + 36);
	assert_int_equal(be32(dt + 20), 17);
	assert_true(st + tsize <= strs && strs + ssize == total);
	unsigned count = 0, depth = 0;
	for (uint32_t off = st; off < st + tsize;) {
		uint32_t t = be32(dt + off);
		off += 4;
		if (t == 1) {
			const char *name = (const char *)dt + off;
			count += !strncmp(name, prefix, strlen(prefix));
			off += ((uint32_t)strlen(name) + 4) & ~3u;
			depth++;
		} else if (t == 3) {
			uint32_t len = be32(dt + off), no = be32(dt + off + 4);
			assert_true(no < ssize);
			if (val && !strcmp((const char *)dt + strs + no, pname) && len < vlen) {
				memcpy(val, dt + off + 8, len);
				val = NULL;
			}
			off += 8 + ((len + 3) & ~3u);
		} else if (t == 2) {
			assert_true(depth-- > 0);
		} else {
			assert_int_equal(t, 9);
			assert_int_equal(depth, 0);
			assert_int_equal(off, st + tsize);
			return count;
		}
	}
	fail_msg("no FDT_END");
	return 0;
}

/* DEVICE_TREE: a well-formed blob with -p cpus, the RAM ranges, VMBus, bootargs. */
static void test_device_tree(void **state)
{
	(void)state;
	static const uint8_t one[PG] = { 1 };
	struct igvm_writer w;
	igvm_writer_init(&w, IGVM_FORMAT_VERSION_1, IGVM_ARCH_X64);
	plat(&w, IGVM_PLATFORM_NATIVE);
	HDR(&w, IGVM_VHT_PARAMETER_AREA, (struct igvm_vhs_parameter_area){ .number_of_bytes = 2 * PG });
	HDR(&w, IGVM_VHT_DEVICE_TREE, (struct igvm_vhs_parameter){ 0, 0 });
	HDR(&w, IGVM_VHT_PARAMETER_INSERT, (struct igvm_vhs_parameter_insert){
		.gpa = 0x10000, .compatibility_mask = 1 });
	page(&w, 0x3000, one);
	vp(&w, 0);
	uint8_t *buf;
	size_t len;
	assert_int_equal(igvm_writer_finish(&w, &buf, &len), 0);
	igvm_writer_free(&w);
	struct igvm_load_config c = { .nvcpus = 3, .cmdline = "console=ttyS0 dt=1", .vmbus = true };
	struct igvm_boot b;
	char err[256];
	if (igvm_load(&mem, buf, len, &c, &b, err, sizeof(err)))
		fail_msg("%s", err);
	const uint8_t *dt = ram + 0x10000;
	char v[64] = "";
	assert_int_equal(dt_walk(dt, "cpu@", "bootargs", v, sizeof(v)), 3);
	assert_string_equal(v, "console=ttyS0 dt=1");
	assert_int_equal(dt_walk(dt, "memory@", NULL, NULL, 0), 2);
	assert_int_equal(dt_walk(dt, "memory@100000", NULL, NULL, 0), 1);
	assert_int_equal(dt_walk(dt, "vmbus-vtl0", NULL, NULL, 0), 1);
	memset(v, 0, sizeof(v));
	dt_walk(dt, "", "model", v, sizeof(v));
	assert_string_equal(v, "microsoft,hyperv");
	/* 240 CPUs do not fit 64 bytes: a one-line error, not an overflow. */
	uint8_t small[64];
	struct igvm_dt_config dc = { .ncpus = 240 };
	assert_int_equal(igvm_dt_build(&dc, small, sizeof(small)), -E2BIG);
	const char *out = getenv("HVMM_IGVM_DT_OUT"); /* for dtc -I dtb by hand */
	if (out) {
		FILE *fp = fopen(out, "wb");
		if (fp) {
			fwrite(dt, 1, be32(dt + 4), fp);
			fclose(fp);
		}
	}
	free(buf);
}

/* One VBS register record: VTL vtl, name, 16-byte value. */
static void vbs_reg(uint8_t *rec, uint8_t vtl, uint32_t name, const void *val, size_t n)
{
	memset(rec, 0, 32);
	rec[0] = vtl;
	memcpy(rec + 1, &name, 4);
	memcpy(rec + 16, val, n);
}

/*
 * The loader half of --vtl2: a VSM_ISOLATION file's pages load and its
 * VTL 2 VBS registers decode (segment and table register layouts of the
 * TLFS); a native load of the same file is refused, and so is a VTL 0
 * context.
 */
static void test_vsm(void **state)
{
	(void)state;
	static const uint8_t one[PG] = { 7 };
	for (int vtl0 = 0; vtl0 < 2; vtl0++) {
		struct igvm_writer w;
		igvm_writer_init(&w, IGVM_FORMAT_VERSION_1, IGVM_ARCH_X64);
		plat(&w, IGVM_PLATFORM_VSM_ISOLATION);
		page(&w, 0x3000, one);
		uint8_t ctx[4 + 32 * 8];
		uint32_t n = 8;
		uint8_t vtl = vtl0 ? 0 : 2;
		memcpy(ctx, &n, 4);
		uint64_t rip = 0x200000, rsp = 0x1ff000, cr0 = 0x80000033, cr3 = 0x300000, efer = 0xd01;
		uint8_t cs[16] = { 0 }, gdtr[16] = { 0 };
		uint64_t base = 0;
		uint32_t limit = 0xffffffff;
		uint16_t sel = 0x8, attr = 0xa09b, glim = 0x27;
		uint64_t gbase = 0x301000;
		memcpy(cs, &base, 8);
		memcpy(cs + 8, &limit, 4);
		memcpy(cs + 12, &sel, 2);
		memcpy(cs + 14, &attr, 2);
		memcpy(gdtr + 6, &glim, 2);
		memcpy(gdtr + 8, &gbase, 8);
		vbs_reg(ctx + 4, vtl, 0x20010, &rip, 8);
		vbs_reg(ctx + 36, vtl, 0x20004, &rsp, 8);
		vbs_reg(ctx + 68, vtl, 0x40000, &cr0, 8);
		vbs_reg(ctx + 100, vtl, 0x40002, &cr3, 8);
		vbs_reg(ctx + 132, vtl, 0x80001, &efer, 8);
		vbs_reg(ctx + 164, vtl, 0x60001, cs, 16);
		vbs_reg(ctx + 196, vtl, 0x70001, gdtr, 16);
		vbs_reg(ctx + 228, vtl, 0x60007, cs, 16); /* TR: skipped */
		struct igvm_vhs_vp_context h = { .compatibility_mask = 1 };
		igvm_writer_header_data(&w, IGVM_VHT_VP_CONTEXT, &h, sizeof(h),
					offsetof(struct igvm_vhs_vp_context, file_offset), ctx, sizeof(ctx));
		uint8_t *buf;
		size_t len;
		assert_int_equal(igvm_writer_finish(&w, &buf, &len), 0);
		igvm_writer_free(&w);
		struct igvm_load_config c = { .nvcpus = 1, .vtl2 = true };
		struct igvm_boot b;
		char err[256];
		memset(ram + 0x3000, 0, PG);
		int r = igvm_load(&mem, buf, len, &c, &b, err, sizeof(err));
		if (vtl0) {
			assert_int_equal(r, -EINVAL);
			assert_non_null(strstr(err, "IGVM header 2 (IGVM_VHT_VP_CONTEXT): VBS context for VTL 0"));
			free(buf);
			continue;
		}
		if (r)
			fail_msg("%s", err);
		assert_int_equal(ram[0x3000], 7);
		assert_true(b.have_vbs && !b.have_ctx);
		assert_int_equal(b.vbs_vtl, 2);
		assert_int_equal(b.vbs_regs.rip, rip);
		assert_int_equal(b.vbs_regs.rsp, rsp);
		assert_int_equal(b.vbs_sregs.cr0, cr0);
		assert_int_equal(b.vbs_sregs.cr3, cr3);
		assert_int_equal(b.vbs_sregs.efer, efer);
		assert_int_equal(b.vbs_sregs.cs.selector, 8);
		assert_int_equal(b.vbs_sregs.cs.limit, 0xffffffff);
		assert_true(b.vbs_sregs.cs.l && b.vbs_sregs.cs.present && b.vbs_sregs.cs.type == 0xb);
		assert_int_equal(b.vbs_sregs.gdt.base, gbase);
		assert_int_equal(b.vbs_sregs.gdt.limit, glim);
		assert_int_equal(b.vbs_sregs.tr.selector, 0);
		/* The same file without --vtl2: one line naming what it has. */
		c.vtl2 = false;
		assert_int_equal(igvm_load(&mem, buf, len, &c, &b, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "no NATIVE platform (the file has VSM_ISOLATION); "
					    "VSM_ISOLATION needs --vtl2"));
		free(buf);
	}
}

/* A one-segment ELF64 payload: PT_LOAD at 0x200800 (6 KiB of data, 8 KiB bss), entry 0x200900. */
static size_t tiny_elf(uint8_t *e)
{
	memset(e, 0, 0x1000 + 6144);
	memcpy(e, "\x7f" "ELF", 4);
	e[4] = 2, e[5] = 1, e[6] = 1;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
#define PUT(off, v, var) (var = (v), memcpy(e + (off), &var, sizeof(var)))
	PUT(16, 2, u16);
	PUT(18, 62, u16);
	PUT(24, 0x200900, u64);
	PUT(32, 64, u64);
	PUT(54, 56, u16);
	PUT(56, 1, u16);
	PUT(64, 1, u32);
	PUT(64 + 8, 0x1000, u64);
	PUT(64 + 16, 0x200800, u64);
	PUT(64 + 24, 0x200800, u64);
	PUT(64 + 32, 6144, u64);
	PUT(64 + 40, 6144 + 8192, u64);
#undef PUT
	for (unsigned i = 0; i < 6144; i++)
		e[0x1000 + i] = (uint8_t)(i * 7 + 1);
	return 0x1000 + 6144;
}

struct ram_view { const uint8_t *r; uint64_t size; };

static int read_ram(void *o, uint64_t gpa, uint64_t *e)
{
	const struct ram_view *v = o;
	if (gpa + 8 > v->size)
		return -1;
	memcpy(e, v->r + gpa, 8);
	return 0;
}

/* The PA va maps to through the 4-level tables at cr3 in guest RAM r, or ~0. */
static uint64_t walk_va(const uint8_t *r, uint64_t rsize, uint64_t cr3, uint64_t va)
{
	struct ram_view v = { r, rsize };
	return test_pt_walk(read_ram, &v, cr3, va);
}

#define RRAM (32u << 20)

/* hvmm-igvm build --elf's file for o (free() it); the test fails if the build does. */
static uint8_t *build(const struct igvm_build_opts *o, size_t *len)
{
	uint8_t *f;
	char err[256];
	if (igvm_build_native_elf(o, &f, len, err, sizeof(err)))
		fail_msg("%s", err);
	return f;
}

/* --vtl2, 1 vCPU, relocation t: arg is absolute='s ADDR, or auto='s or vtl2='s SIZE. */
static struct igvm_load_config reloc_cfg(enum igvm_reloc_type t, uint64_t arg)
{
	return (struct igvm_load_config){ .nvcpus = 1, .vtl2 = true, .reloc = t,
		.reloc_addr = t == IGVM_RELOC_ABSOLUTE ? arg : 0,
		.reloc_size = t == IGVM_RELOC_AUTO || t == IGVM_RELOC_VTL2 ? arg : 0 };
}

/* Load f with relocation type t/addr into 32 MiB of fake RAM (filled 0xcc). */
static int load_reloc(uint8_t *r, const uint8_t *f, size_t len, enum igvm_reloc_type t,
		      uint64_t addr, struct igvm_boot *b, char *err, size_t errlen)
{
	struct gmem m;
	memset(r, 0xcc, RRAM);
	gmem_init_fake(&m, r, RRAM);
	struct igvm_load_config c = reloc_cfg(t, addr);
	err[0] = 0;
	int ret = igvm_load(&m, f, len, &c, b, err, errlen);
	if (ret)
		assert_null(strchr(err, '\n'));
	return ret;
}

/*
 * Loading f with c into ram_size bytes of fresh RAM is refused: -EINVAL with
 * one line that contains want, and no RAM added (auto= adds VTL2's only
 * when it loads).
 */
static void refused(const uint8_t *f, size_t len, struct igvm_load_config c, uint64_t ram_size,
		    const char *want)
{
	struct gmem m;
	assert_int_equal(gmem_init(&m, ram_size), 0);
	unsigned nregions = m.nregions;
	struct igvm_boot b;
	char err[256] = "";
	int ret = igvm_load(&m, f, len, &c, &b, err, sizeof(err));
	if (ret != -EINVAL || strchr(err, '\n') || !strstr(err, want))
		fail_msg("%d '%s', want -EINVAL and '%s'", ret, err, want);
	assert_int_equal(m.nregions, nregions);
	gmem_destroy(&m);
}

/*
 * Relocation (B.3) of hvmm-igvm build --vsm --relocatable's file against fake
 * RAM: at several bases the payload and GDT land at file GPA + offset and
 * nothing at the old place, the rebuilt tables in RAM translate RIP and the
 * GDT base (moved) to the moved pages and no longer map the old range, CR3
 * moved, and vtl2_base/size name the moved range; disabled, the file's own
 * place. Every relocation rule refused in one line.
 */
static void test_relocate(void **state)
{
	(void)state;
	static uint8_t elf[0x1000 + 6144];
	size_t elf_len = tiny_elf(elf);
	struct igvm_build_opts o = { .elf = elf, .elf_len = elf_len, .rsp = 0x204ff0, .vsm = true,
				     .relocatable = true, .reloc_max = 0x1e00000 };
	uint8_t *r = malloc(RRAM);
	size_t len;
	uint8_t *f = build(&o, &len);
	char err[256];
	struct igvm_boot b;
	/* Region 0x200000-0x3fffff (payload 0x200800.., GDT 0x204000), tables at 0x400000. */
	static const uint64_t bases[] = { 0x200000, 0x400000, 0xa00000, 0x1800000 };
	for (unsigned k = 0; k < 4; k++) {
		uint64_t off = bases[k] - 0x200000;
		if (load_reloc(r, f, len, k ? IGVM_RELOC_ABSOLUTE : IGVM_RELOC_DISABLE, bases[k], &b,
			       err, sizeof(err)))
			fail_msg("base 0x%llx: %s", (unsigned long long)bases[k], err);
		assert_int_equal(b.vtl2_base, 0x200000 + off);
		assert_int_equal(b.vtl2_size, 0x400000);
		assert_int_equal(b.vbs_regs.rip, 0x200900 + off);
		assert_int_equal(b.vbs_regs.rsp, 0x204ff0); /* not a relocated register */
		assert_int_equal(b.vbs_sregs.gdt.base, 0x204000 + off);
		assert_int_equal(b.vbs_sregs.cr3, 0x400000 + off);
		assert_int_equal(r[0x200800 + off], 1);
		assert_int_equal(r[0x200801 + off], 8);
		assert_int_equal(r[0x201fff + off], (uint8_t)(0x17ff * 7 + 1));
		if (off) /* the old place is untouched */
			assert_int_equal(r[0x200800], 0xcc);
		if (off >= 0x400000) /* and the old page tables were never written */
			assert_int_equal(r[0x400000], 0xcc);
		uint64_t code;
		memcpy(&code, r + 0x204010 + off, 8);
		assert_int_equal(code, 0x00af9b000000ffffull);
		/* The MMU's view from the new CR3. */
		uint64_t cr3 = b.vbs_sregs.cr3;
		assert_int_equal(walk_va(r, RRAM, cr3, b.vbs_regs.rip), 0x200900 + off);
		assert_int_equal(walk_va(r, RRAM, cr3, b.vbs_sregs.gdt.base + 0x10), 0x204010 + off);
		assert_int_equal(walk_va(r, RRAM, cr3, 0x3ff000 + off), 0x3ff000 + off);
		assert_int_equal(walk_va(r, RRAM, cr3, 0x100000000ull - 1), 0xffffffffull);
		if (off >= 0x200000) {
			assert_int_equal(walk_va(r, RRAM, cr3, 0x200900), ~0ull);
			assert_int_equal(walk_va(r, RRAM, cr3, 0x3ff000), ~0ull);
		}
	}
	/* The rules, each one line. */
	static const struct { uint64_t a; const char *what; } bad[] = {
		{ 0x500000, "absolute=0x500000 is not aligned to relocation_alignment 0x200000" },
		{ 0x1e00000, "the region's end 0x2000000 is above maximum_relocation_gpa 0x1e00000" },
		{ 0, "absolute=0x0 is below the file's base 0x200000: only a positive offset" },
	};
	for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		refused(f, len, reloc_cfg(IGVM_RELOC_ABSOLUTE, bad[k].a), RRAM, bad[k].what);
	free(f);
	/* A base whose tables do not fit in RAM. */
	o.reloc_max = 0;
	f = build(&o, &len);
	refused(f, len, reloc_cfg(IGVM_RELOC_ABSOLUTE, 0x1e00000), RRAM,
		"needs RAM at 0x1e00000-0x21fffff");
	free(f);
	/* Minimum. */
	o.reloc_min = 0x800000;
	f = build(&o, &len);
	refused(f, len, reloc_cfg(IGVM_RELOC_ABSOLUTE, 0x600000), RRAM,
		"absolute=0x600000 is below minimum_relocation_gpa 0x800000");
	assert_int_equal(load_reloc(r, f, len, IGVM_RELOC_ABSOLUTE, 0x800000, &b, err, sizeof(err)), 0);
	free(f);
	/* Relocation without --vtl2. */
	o.vsm = o.relocatable = false;
	o.reloc_min = 0;
	f = build(&o, &len);
	struct igvm_load_config native = reloc_cfg(IGVM_RELOC_ABSOLUTE, 0x800000);
	native.vtl2 = false;
	refused(f, len, native, RRAM, "other than disable needs --vtl2");
	free(f);
	/* A --vsm file without relocation headers: absolute= has nothing to move; disabled, 0/0. */
	o.vsm = true;
	f = build(&o, &len);
	refused(f, len, reloc_cfg(IGVM_RELOC_ABSOLUTE, 0x800000), RRAM,
		"relocation needs exactly one RELOCATABLE_REGION (the file has 0)");
	assert_int_equal(load_reloc(r, f, len, IGVM_RELOC_DISABLE, 0, &b, err, sizeof(err)), 0);
	assert_int_equal(b.vtl2_base, 0);
	assert_int_equal(b.vtl2_size, 0);
	free(f);
	free(r);
}

/*
 * Files that pass the validator but break a loader relocation rule: 0 a
 * region without IS_VTL2, 1 one for VTL 0 (with the VTL 0 context the
 * validator wants), 2 no page table region, 3 two regions, 4 page tables
 * that do not hold CR3, 6 a page table region for VTL 0, 7 page data past
 * the page table region's used size, 8 a parameter insert across the
 * region's end, 9 (auto=) VTL2-protectable memory that does not hold the
 * region. 5 breaks nothing.
 */
static uint8_t *reloc_file(int variant, size_t *len)
{
	struct igvm_writer w;
	igvm_writer_init(&w, IGVM_FORMAT_VERSION_1, IGVM_ARCH_X64);
	plat(&w, IGVM_PLATFORM_VSM_ISOLATION);
	uint8_t vtl = variant == 1 ? 0 : 2;
	uint64_t ptg = variant == 8 ? 0x600000 : 0x400000;
	HDR(&w, IGVM_VHT_RELOCATABLE_REGION, (struct igvm_vhs_relocatable_region){
		.compatibility_mask = 1, .vtl = vtl, .flags = variant == 0 ? 6 : 7,
		.relocation_alignment = 0x200000, .relocation_region_gpa = 0x200000,
		.relocation_region_size = 0x200000, .maximum_relocation_gpa = 1ull << 39 });
	if (variant == 3)
		HDR(&w, IGVM_VHT_RELOCATABLE_REGION, (struct igvm_vhs_relocatable_region){
			.compatibility_mask = 1, .vtl = 2, .flags = 7,
			.relocation_alignment = 0x200000, .relocation_region_gpa = 0x600000,
			.relocation_region_size = 0x200000, .maximum_relocation_gpa = 0x1000000 });
	if (variant != 2)
		HDR(&w, IGVM_VHT_PAGE_TABLE_RELOCATION_REGION, (struct igvm_vhs_page_table_relocation){
			.compatibility_mask = 1, .vtl = variant == 6 ? 0 : 2, .gpa = ptg, .size = 0x2000,
			.used_size = 0x1000 });
	if (variant == 9)
		HDR(&w, IGVM_VHT_REQUIRED_MEMORY, (struct igvm_vhs_required_memory){ .gpa = 0x800000,
			.compatibility_mask = 1, .number_of_bytes = 0x200000,
			.flags = IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE });
	if (variant == 8) {
		HDR(&w, IGVM_VHT_PARAMETER_AREA, (struct igvm_vhs_parameter_area){
			.number_of_bytes = 2 * PG, .parameter_area_index = 1 });
		HDR(&w, IGVM_VHT_VP_COUNT_PARAMETER, (struct igvm_vhs_parameter){ 1, 0 });
		HDR(&w, IGVM_VHT_PARAMETER_INSERT, (struct igvm_vhs_parameter_insert){
			.gpa = 0x3ff000, .compatibility_mask = 1, .parameter_area_index = 1 });
	}
	static uint8_t pml4[PG];
	page(&w, ptg, pml4);
	if (variant == 7)
		page(&w, ptg + PG, pml4);
	bool ctx0 = variant == 1 || variant == 6;
	for (int v = 0; v < (ctx0 ? 2 : 1); v++) {
		uint8_t ctx[4 + 2 * 32];
		uint32_t n = 2;
		uint64_t rip = 0x200000, cr3 = variant == 4 ? ptg + PG : ptg;
		memcpy(ctx, &n, 4);
		uint8_t cv = v ? 0 : 2;
		vbs_reg(ctx + 4, cv, 0x20010, &rip, 8);
		vbs_reg(ctx + 36, cv, 0x40002, &cr3, 8);
		struct igvm_vhs_vp_context h = { .compatibility_mask = 1 };
		igvm_writer_header_data(&w, IGVM_VHT_VP_CONTEXT, &h, sizeof(h),
					offsetof(struct igvm_vhs_vp_context, file_offset), ctx, sizeof(ctx));
	}
	uint8_t *buf;
	assert_int_equal(igvm_writer_finish(&w, &buf, len), 0);
	igvm_writer_free(&w);
	return buf;
}

static void test_relocate_rules(void **state)
{
	(void)state;
	static const char *const what[] = {
		"IGVM header 1 (IGVM_VHT_RELOCATABLE_REGION): relocation needs VTL2's region (IS_VTL2 is clear)",
		"IGVM header 1 (IGVM_VHT_RELOCATABLE_REGION): region for VP 0 VTL 0: relocation needs VP 0 VTL 2",
		"relocation needs a PAGE_TABLE_RELOCATION_REGION (the file has 0)",
		"relocation needs exactly one RELOCATABLE_REGION (the file has 2)",
		"IGVM header 2 (IGVM_VHT_PAGE_TABLE_RELOCATION_REGION): rebuilding the page tables: CR3 0x401000 is not in",
		NULL,
		"IGVM header 2 (IGVM_VHT_PAGE_TABLE_RELOCATION_REGION): region for VP 0 VTL 0: relocation needs VP 0 VTL 2",
		"IGVM header 4 (IGVM_VHT_PAGE_DATA): page data at 0x401000 in the page table region is a 2 MiB page or past its used size 0x1000",
		"IGVM header 5 (IGVM_VHT_PARAMETER_INSERT): 0x3ff000-0x400fff crosses the end of the relocatable region 0x200000-0x3fffff",
		"IGVM header 1 (IGVM_VHT_RELOCATABLE_REGION): auto=: the relocatable region is not inside the VTL2-protectable memory 0x800000-0x9fffff",
	};
	uint8_t *r = malloc(RRAM);
	for (int v = 0; v < 10; v++) {
		size_t len;
		uint8_t *f = reloc_file(v, &len);
		struct igvm_boot b;
		char err[256];
		struct igvm_file chk;
		if (igvm_open(&chk, f, len, err, sizeof(err)))
			fail_msg("variant %d is not a valid file: %s", v, err);
		if (!what[v]) { /* the control: it loads and moves */
			if (load_reloc(r, f, len, IGVM_RELOC_ABSOLUTE, 0x800000, &b, err, sizeof(err)))
				fail_msg("variant %d: %s", v, err);
			assert_int_equal(b.vbs_sregs.cr3, 0x400000 + 0x600000);
		} else {
			refused(f, len, v == 9 ? reloc_cfg(IGVM_RELOC_AUTO, 0) :
				reloc_cfg(IGVM_RELOC_ABSOLUTE, 0x800000), RRAM, what[v]);
		}
		free(f);
	}
	free(r);
}

static int read_gmem(void *o, uint64_t gpa, uint64_t *e)
{
	return gmem_read(o, gpa, e, 8);
}

/* The PA va maps to through the tables at cr3, read with gmem_read, or ~0. */
static uint64_t walk_gmem(const struct gmem *m, uint64_t cr3, uint64_t va)
{
	return test_pt_walk(read_gmem, (void *)m, cr3, va);
}

/*
 * auto= (B.2): VTL2 gets RAM of its own at 4 GiB (above 16 MiB of VTL0 RAM
 * and the 32-bit MMIO hole), as large as the file's VTL2-protectable
 * REQUIRED_MEMORY or auto=SIZE; the image moves there with new page tables
 * (a page directory from the spare pages) and VTL0's RAM is not touched.
 */
static void test_relocate_auto(void **state)
{
	(void)state;
	static uint8_t elf[0x1000 + 6144];
	size_t elf_len = tiny_elf(elf);
	struct igvm_build_opts o = { .elf = elf, .elf_len = elf_len, .rsp = 0x204ff0, .vsm = true,
				     .relocatable = true };
	size_t len;
	uint8_t *f = build(&o, &len);
	char err[256];
	static const uint64_t sizes[] = { 0, 8u << 20 };
	for (unsigned k = 0; k < 2; k++) {
		struct gmem m;
		assert_int_equal(gmem_init(&m, 16u << 20), 0);
		struct igvm_load_config c = reloc_cfg(IGVM_RELOC_AUTO, sizes[k]);
		struct igvm_boot b;
		if (igvm_load(&m, f, len, &c, &b, err, sizeof(err)))
			fail_msg("auto=%llu: %s", (unsigned long long)sizes[k], err);
		uint64_t off = GMEM_4G - 0x200000;
		assert_int_equal(b.vtl2_base, GMEM_4G);
		assert_int_equal(b.vtl2_size, sizes[k] ? sizes[k] : 0x400000);
		assert_int_equal(m.size, 16u << 20); /* VTL0's RAM is what it was */
		assert_int_equal(b.vbs_regs.rip, 0x200900 + off);
		assert_int_equal(b.vbs_sregs.cr3, 0x400000 + off);
		assert_int_equal(b.vbs_sregs.gdt.base, 0x204000 + off);
		uint8_t v = 0;
		assert_int_equal(gmem_read(&m, 0x200801 + off, &v, 1), 0);
		assert_int_equal(v, 8);
		assert_int_equal(walk_gmem(&m, b.vbs_sregs.cr3, b.vbs_regs.rip), 0x200900 + off);
		assert_int_equal(walk_gmem(&m, b.vbs_sregs.cr3, b.vbs_sregs.gdt.base), 0x204000 + off);
		assert_int_equal(walk_gmem(&m, b.vbs_sregs.cr3, 0x200900), ~0ull);
		gmem_destroy(&m);
	}
	/* auto=SIZE smaller than the file's VTL2 memory. */
	refused(f, len, reloc_cfg(IGVM_RELOC_AUTO, 2u << 20), 16u << 20,
		"auto=0x200000 is smaller than the file's VTL2 memory (0x400000 bytes)");
	free(f);
	/* A file whose maximum is below 4 GiB cannot go above VTL0's RAM. */
	o.reloc_max = 0x40000000;
	f = build(&o, &len);
	refused(f, len, reloc_cfg(IGVM_RELOC_AUTO, 0), 16u << 20,
		"auto=: base 0x100000000: the region's end 0x100200000 is above "
		"maximum_relocation_gpa 0x40000000");
	free(f);
	/* A file without REQUIRED_MEMORY. */
	f = reloc_file(5, &len);
	refused(f, len, reloc_cfg(IGVM_RELOC_AUTO, 0), 16u << 20,
		"auto= needs a VTL2-protectable REQUIRED_MEMORY");
	free(f);
}

/* The value of property pname of the node named `node` (any depth): its length, or -1. */
static int dt_prop(const uint8_t *dt, const char *node, const char *pname, uint8_t *val,
		   size_t vlen)
{
	uint32_t st = be32(dt + 8), strs = be32(dt + 12), tsize = be32(dt + 36);
	const char *cur[16] = { "" };
	unsigned depth = 0;
	for (uint32_t off = st; off < st + tsize;) {
		uint32_t t = be32(dt + off);
		off += 4;
		if (t == 1) {
			const char *name = (const char *)dt + off;
			if (depth < 15)
				cur[++depth] = name;
			off += ((uint32_t)strlen(name) + 4) & ~3u;
		} else if (t == 3) {
			uint32_t len = be32(dt + off), no = be32(dt + off + 4);
			if (!strcmp(cur[depth], node) && !strcmp((const char *)dt + strs + no, pname)) {
				if (len <= vlen)
					memcpy(val, dt + off + 8, len);
				return (int)len;
			}
			off += 8 + ((len + 3) & ~3u);
		} else if (t == 2) {
			depth--;
		} else {
			return -1;
		}
	}
	return -1;
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/*
 * B.4 with --vtl2: MEMORY_MAP is RAM (+ auto='s VTL2 range), sorted, with
 * the VTL2-protectable parts (the file's relocated VTL2-protectable
 * REQUIRED_MEMORY, auto='s range) typed 3, the rest 0 (MEMORY); the device
 * tree's memory@ nodes carry the same microsoft,igvm-type. vtl2= (B.2):
 * nothing typed 3, /openhcl says "vtl2" with mmio-size 128 MiB and
 * memory-size when given; a size larger than VTL0's RAM is refused.
 * Read back from the inserted parameter areas (16 MiB of memfd RAM).
 */
static void test_memory_map(void **state)
{
	(void)state;
	static uint8_t elf[0x1000 + 6144];
	size_t elf_len = tiny_elf(elf);
	struct igvm_build_opts o = { .elf = elf, .elf_len = elf_len, .rsp = 0x204ff0, .vsm = true,
				     .relocatable = true, .nparams = 2 };
	o.params[0] = (struct igvm_build_param){ .type = IGVM_VHT_MEMORY_MAP, .gpa = 0x10000 };
	o.params[1] = (struct igvm_build_param){ .type = IGVM_VHT_DEVICE_TREE, .gpa = 0x20000,
						 .pages = 2 };
	size_t len;
	uint8_t *f = build(&o, &len);
	char err[256];
	/* Expected entries {first page, pages, type}; RAM 0-0x9fbff, 1-16 MiB. */
	static const struct { enum igvm_reloc_type t; uint64_t arg; unsigned n; uint64_t e[5][3];
			      const char *prot_node; } cases[] = {
		{ IGVM_RELOC_DISABLE, 0, 4, { { 0, 0x9f, 0 }, { 0x100, 0x100, 0 }, { 0x200, 0x400, 3 },
					      { 0x600, 0xa00, 0 } }, "memory@200000" },
		{ IGVM_RELOC_ABSOLUTE, 0x800000, 4, { { 0, 0x9f, 0 }, { 0x100, 0x700, 0 },
						      { 0x800, 0x400, 3 }, { 0xc00, 0x400, 0 } },
		  "memory@800000" },
		{ IGVM_RELOC_AUTO, 0, 3, { { 0, 0x9f, 0 }, { 0x100, 0xf00, 0 }, { 0x100000, 0x400, 3 } },
		  "memory@100000000" },
		{ IGVM_RELOC_VTL2, 0, 2, { { 0, 0x9f, 0 }, { 0x100, 0xf00, 0 } }, NULL },
		{ IGVM_RELOC_VTL2, 8u << 20, 2, { { 0, 0x9f, 0 }, { 0x100, 0xf00, 0 } }, NULL },
	};
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct gmem m;
		assert_int_equal(gmem_init(&m, 16u << 20), 0);
		struct igvm_load_config c = reloc_cfg(cases[k].t, cases[k].arg);
		c.nvcpus = 2;
		struct igvm_boot b;
		if (igvm_load(&m, f, len, &c, &b, err, sizeof(err)))
			fail_msg("case %u: %s", k, err);
		uint8_t map[PG];
		assert_int_equal(gmem_read(&m, 0x10000, map, sizeof(map)), 0);
		for (unsigned i = 0; i <= cases[k].n; i++) {
			struct igvm_vhs_memory_map_entry e;
			memcpy(&e, map + i * sizeof(e), sizeof(e));
			uint64_t want[3] = { 0, 0, 0 };
			if (i < cases[k].n)
				memcpy(want, cases[k].e[i], sizeof(want));
			if (e.starting_gpa_page_number != want[0] || e.number_of_pages != want[1] ||
			    e.entry_type != want[2])
				fail_msg("case %u entry %u: 0x%llx+0x%llx type %u, want 0x%llx+0x%llx type %llu",
					 k, i, (unsigned long long)e.starting_gpa_page_number,
					 (unsigned long long)e.number_of_pages, e.entry_type,
					 (unsigned long long)want[0], (unsigned long long)want[1],
					 (unsigned long long)want[2]);
		}
		static uint8_t dt[2 * PG];
		assert_int_equal(gmem_read(&m, 0x20000, dt, sizeof(dt)), 0);
		uint8_t v[16];
		/* Every memory@ node of the map, with its type. */
		for (unsigned i = 0; i < cases[k].n; i++) {
			char node[48];
			snprintf(node, sizeof(node), "memory@%llx",
				 (unsigned long long)(cases[k].e[i][0] * PG));
			assert_int_equal(dt_prop(dt, node, "microsoft,igvm-type", v, sizeof(v)), 4);
			assert_int_equal(be32(v), cases[k].e[i][2]);
			assert_int_equal(dt_prop(dt, node, "reg", v, sizeof(v)), 16);
			assert_int_equal(be64(v + 8), cases[k].e[i][1] * PG);
		}
		assert_int_equal(dt_walk(dt, "memory@", NULL, NULL, 0), cases[k].n);
		if (cases[k].prot_node) {
			assert_int_equal(dt_prop(dt, cases[k].prot_node, "microsoft,igvm-type", v, 4), 4);
			assert_int_equal(be32(v), 3);
		}
		char mode[16] = "";
		assert_int_equal(dt_prop(dt, "openhcl", "memory-allocation-mode", (uint8_t *)mode,
					 sizeof(mode)), cases[k].t == IGVM_RELOC_VTL2 ? 5 : 5);
		assert_string_equal(mode, cases[k].t == IGVM_RELOC_VTL2 ? "vtl2" : "host");
		if (cases[k].t == IGVM_RELOC_VTL2) {
			assert_int_equal(dt_prop(dt, "openhcl", "mmio-size", v, sizeof(v)), 8);
			assert_int_equal(be64(v), 128u << 20);
			if (cases[k].arg) {
				assert_int_equal(dt_prop(dt, "openhcl", "memory-size", v, sizeof(v)), 8);
				assert_int_equal(be64(v), cases[k].arg);
			} else {
				assert_int_equal(dt_prop(dt, "openhcl", "memory-size", v, sizeof(v)), -1);
			}
			/* The file's GPAs, as disable: VTL2's range is the file's. */
			assert_int_equal(b.vtl2_base, 0x200000);
			assert_int_equal(b.vtl2_size, 0x400000);
			assert_int_equal(b.vbs_regs.rip, 0x200900);
		} else {
			assert_int_equal(dt_prop(dt, "openhcl", "mmio-size", v, sizeof(v)), -1);
		}
		gmem_destroy(&m);
	}
	/* vtl2=SIZE larger than the RAM VTL2 carves it from. */
	refused(f, len, reloc_cfg(IGVM_RELOC_VTL2, 64u << 20), 16u << 20,
		"vtl2=0x4000000 is larger than VTL0's RAM (0x1000000 bytes)");
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_build_linux),
		cmocka_unit_test(test_device_tree),
		cmocka_unit_test(test_vsm),
		cmocka_unit_test(test_relocate),
		cmocka_unit_test(test_relocate_rules),
		cmocka_unit_test(test_relocate_auto),
		cmocka_unit_test(test_memory_map),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
