/*
 * Unit tests: the Linux loader against fake guest memory. Builds synthetic
 * ELF and bzImage kernels (payload compressed in each supported format) and
 * initrds, loads them, and checks the zero page, e820 map, command line,
 * initrd placement and contents, entry point and page tables; then feeds it
 * malformed images.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "compress_util.h"
#include "x86/linux_boot.h"

#define RAM (64u << 20)
#define KBASE 0x1000000u

static uint8_t *ram;
static struct gmem mem;

static int setup(void **state)
{
	(void)state;
	ram = calloc(1, RAM);
	gmem_init_fake(&mem, ram, RAM);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(ram);
	return 0;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* An ELF with two PT_LOAD segments (text with data, and bss). */
static uint8_t *make_elf(size_t *len, uint64_t entry)
{
	size_t text = 8192;
	size_t total = 4096 + text;
	uint8_t *p = calloc(1, total);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)p;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_machine = EM_X86_64;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 2;
	Elf64_Phdr *ph = (Elf64_Phdr *)(p + sizeof(*eh));
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 4096,
			      .p_vaddr = 0xffffffff81000000ULL, .p_paddr = KBASE,
			      .p_filesz = text, .p_memsz = text };
	ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 4096,
			      .p_vaddr = 0xffffffff81100000ULL, .p_paddr = KBASE + 0x100000,
			      .p_filesz = 0, .p_memsz = 0x10000 };
	for (size_t i = 0; i < text; i++)
		p[4096 + i] = (uint8_t)(i * 7);
	*len = total;
	return p;
}

/* A bzImage around a (compressed) ELF payload. */
static uint8_t *make_bzimage(enum decomp_format f, size_t *len)
{
	size_t elf_len;
	uint8_t *elf = make_elf(&elf_len, KBASE + 0x200);
	size_t plen;
	uint8_t *payload;
	if (f == DECOMP_NONE) {
		payload = elf;
		plen = elf_len;
	} else {
		payload = test_compress(f, elf, elf_len, &plen);
		assert_non_null(payload);
		payload = realloc(payload, plen + 4);
		uint32_t sz = (uint32_t)elf_len;
		memcpy(payload + plen, &sz, 4); /* the build's size_append */
		plen += 4;
	}
	unsigned setup_sects = 4;
	size_t setup = (setup_sects + 1) * 512;
	size_t total = setup + 0x100 + plen;
	uint8_t *p = calloc(1, total);
	p[0x1f1] = (uint8_t)setup_sects;
	p[0x1fe] = 0x55;
	p[0x1ff] = 0xaa;
	p[0x200] = 0xeb;
	p[0x201] = 0x66; /* header up to 0x268 */
	memcpy(p + 0x202, "HdrS", 4);
	p[0x206] = 0x0f; p[0x207] = 0x02; /* protocol 2.15 */
	uint32_t v = 0x7fffffff;
	memcpy(p + 0x22c, &v, 4); /* initrd_addr_max */
	v = 2048;
	memcpy(p + 0x238, &v, 4); /* cmdline_size */
	v = 0x100;
	memcpy(p + 0x248, &v, 4); /* payload_offset */
	v = (uint32_t)plen;
	memcpy(p + 0x24c, &v, 4);
	v = 0x200000;
	memcpy(p + 0x260, &v, 4); /* init_size */
	memcpy(p + setup + 0x100, payload, plen);
	if (payload != elf)
		free(payload);
	free(elf);
	*len = total;
	return p;
}

/* A newc cpio archive holding one file. */
static uint8_t *make_cpio(size_t *len, const char *name, const char *data)
{
	uint8_t *p = calloc(1, 4096);
	size_t pos = 0;
	const char *names[2] = { name, "TRAILER!!!" };
	const char *datas[2] = { data, "" };
	for (int i = 0; i < 2; i++) {
		size_t nlen = strlen(names[i]) + 1, dlen = strlen(datas[i]);
		pos += (size_t)sprintf((char *)p + pos,
			"070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X",
			i + 1, i ? 0 : 0100644, 0, 0, 1, 0, dlen, 0, 0, 0, 0, nlen, 0);
		memcpy(p + pos, names[i], nlen);
		pos = (pos + nlen + 3) & ~(size_t)3;
		memcpy(p + pos, datas[i], dlen);
		pos = (pos + dlen + 3) & ~(size_t)3;
	}
	*len = pos;
	return p;
}

static void check_common(const struct linux_boot_info *info, const char *cmdline)
{
	const uint8_t *zp = ram + BOOT_ZERO_PAGE_GPA;
	assert_int_equal(zp[0x210], 0xff); /* type_of_loader */
	assert_true(zp[0x211] & 0x01);     /* LOADED_HIGH */
	assert_int_equal(rd32(zp + 0x202), 0x53726448);
	assert_int_equal(rd32(zp + 0x228), BOOT_CMDLINE_GPA);
	assert_string_equal((char *)ram + BOOT_CMDLINE_GPA, cmdline);
	assert_int_equal(rd64(zp + 0x070), 0xe0000);
	/* e820: RAM at 0, reserved BIOS area, RAM from 1 MiB to the end */
	unsigned n = zp[0x1e8];
	assert_int_equal(n, 4);
	struct e820_entry e[4];
	memcpy(e, zp + 0x2d0, sizeof(e));
	assert_int_equal(e[0].addr, 0);
	assert_int_equal(e[0].type, E820_RAM);
	assert_int_equal(e[2].addr, 0xe0000);
	assert_int_equal(e[2].type, E820_RESERVED);
	assert_int_equal(e[3].addr, 0x100000);
	assert_int_equal(e[3].addr + e[3].size, RAM);
	assert_int_equal(e[3].type, E820_RAM);
	/* kernel text at its physical address, bss zeroed */
	for (size_t i = 0; i < 8192; i++)
		if (ram[KBASE + i] != (uint8_t)(i * 7))
			fail_msg("kernel byte %zu wrong", i);
	assert_int_equal(info->entry, KBASE + 0x200);
}

static void test_elf(void **state)
{
	(void)state;
	memset(ram, 0xaa, RAM);
	size_t len;
	uint8_t *k = make_elf(&len, 0xffffffff81000200ULL); /* virtual entry */
	struct linux_boot_config cfg = { .kernel = k, .kernel_len = len,
					 .cmdline = "console=ttyS0 panic=-1",
					 .rsdp_gpa = 0xe0000 };
	struct linux_boot_info info;
	char err[256];
	assert_int_equal(linux_boot_load(&mem, &cfg, &info, err, sizeof(err)), 0);
	check_common(&info, "console=ttyS0 panic=-1");
	assert_false(info.bzimage);
	for (size_t i = 0; i < 0x10000; i++)
		if (ram[KBASE + 0x100000 + i])
			fail_msg("bss byte %zu not zeroed", i);
	free(k);
}

static void test_bzimage_formats(void **state)
{
	(void)state;
	const enum decomp_format fmts[] = { DECOMP_NONE, DECOMP_GZIP, DECOMP_XZ,
					    DECOMP_ZSTD, DECOMP_LZ4_LEGACY };
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(ram, 0xaa, RAM);
		size_t len;
		uint8_t *k = make_bzimage(fmts[i], &len);
		struct linux_boot_config cfg = { .kernel = k, .kernel_len = len,
						 .cmdline = "x", .rsdp_gpa = 0xe0000 };
		struct linux_boot_info info;
		char err[256] = "";
		int ret = linux_boot_load(&mem, &cfg, &info, err, sizeof(err));
		if (ret)
			fail_msg("%s: %s", decomp_name(fmts[i]), err);
		check_common(&info, "x");
		assert_true(info.bzimage);
		assert_string_equal(info.kernel_compression, decomp_name(fmts[i]));
		/* init_size extends the kernel's footprint */
		assert_int_equal(info.kernel_end, KBASE + 0x200000);
		free(k);
	}
}

static void test_initrd(void **state)
{
	(void)state;
	size_t klen, clen;
	uint8_t *k = make_elf(&klen, KBASE);
	uint8_t *cpio = make_cpio(&clen, "init", "#!/bin/sh\necho hi\n");
	const enum decomp_format fmts[] = { DECOMP_NONE, DECOMP_GZIP, DECOMP_XZ,
					    DECOMP_ZSTD, DECOMP_LZ4_LEGACY };
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		size_t ilen;
		uint8_t *img = fmts[i] == DECOMP_NONE ? cpio
			: test_compress(fmts[i], cpio, clen, &ilen);
		if (fmts[i] == DECOMP_NONE)
			ilen = clen;
		struct linux_boot_config cfg = { .kernel = k, .kernel_len = klen,
						 .initrd = img, .initrd_len = ilen,
						 .cmdline = "" };
		struct linux_boot_info info;
		char err[256] = "";
		if (linux_boot_load(&mem, &cfg, &info, err, sizeof(err)))
			fail_msg("%s: %s", decomp_name(fmts[i]), err);
		const uint8_t *zp = ram + BOOT_ZERO_PAGE_GPA;
		uint32_t at = rd32(zp + 0x218), size = rd32(zp + 0x21c);
		assert_int_equal(size, clen);
		assert_int_equal(at % 4096, 0);
		assert_true(at + size <= RAM);
		assert_true(at >= info.kernel_end);
		assert_memory_equal(ram + at, cpio, clen);
		if (img != cpio)
			free(img);
	}
	/* early cpio + compressed main archive, as Debian's initrd */
	size_t glen = 0;
	uint8_t *gz = test_compress(DECOMP_GZIP, cpio, clen, &glen);
	uint8_t *both = malloc(clen + 512 + glen);
	memcpy(both, cpio, clen);
	memset(both + clen, 0, 512);
	memcpy(both + clen + 512, gz, glen);
	struct linux_boot_config cfg = { .kernel = k, .kernel_len = klen,
					 .initrd = both, .initrd_len = clen + 512 + glen };
	struct linux_boot_info info;
	char err[256] = "";
	if (linux_boot_load(&mem, &cfg, &info, err, sizeof(err)))
		fail_msg("concatenated: %s", err);
	const uint8_t *zp = ram + BOOT_ZERO_PAGE_GPA;
	assert_int_equal(rd32(zp + 0x21c), 2 * clen);
	assert_memory_equal(ram + rd32(zp + 0x218), cpio, clen);
	assert_memory_equal(ram + rd32(zp + 0x218) + clen, cpio, clen);
	/* garbage initrd */
	cfg.initrd = (const uint8_t *)"this is not an archive";
	cfg.initrd_len = 22;
	assert_int_equal(linux_boot_load(&mem, &cfg, &info, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "initrd"));
	free(both);
	free(gz);
	free(cpio);
	free(k);
}

static void expect_bad(const uint8_t *k, size_t len, const char *needle)
{
	struct linux_boot_config cfg = { .kernel = k, .kernel_len = len, .cmdline = "" };
	struct linux_boot_info info;
	char err[256] = "";
	int ret = linux_boot_load(&mem, &cfg, &info, err, sizeof(err));
	assert_true(ret < 0);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_bad((const uint8_t *)"garbage", 7, "neither a bzImage");
	size_t len;
	uint8_t *k = make_elf(&len, KBASE);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)k;
	Elf64_Phdr *ph = (Elf64_Phdr *)(k + sizeof(*eh));
	ph[0].p_filesz = 1ULL << 40;
	ph[0].p_memsz = 1ULL << 40;
	expect_bad(k, len, "exceeds the file");
	ph[0].p_filesz = 8192;
	ph[0].p_memsz = 8192;
	ph[0].p_paddr = RAM - 4096; /* runs off the end of RAM */
	expect_bad(k, len, "outside guest RAM");
	ph[0].p_paddr = UINT64_MAX - 100; /* wraps */
	expect_bad(k, len, "outside guest RAM");
	ph[0].p_paddr = KBASE;
	eh->e_phoff = len - 10;
	expect_bad(k, len, "program headers");
	eh->e_phoff = sizeof(*eh);
	eh->e_entry = 0x1234;
	expect_bad(k, len, "entry point");
	eh->e_entry = KBASE;
	expect_bad(k, 40, "truncated");
	free(k);

	k = make_bzimage(DECOMP_GZIP, &len);
	uint32_t big = 0x7fffffff;
	memcpy(k + 0x24c, &big, 4);
	expect_bad(k, len, "payload out of bounds");
	free(k);
	k = make_bzimage(DECOMP_GZIP, &len);
	k[5 * 512 + 0x100 + 20] ^= 0xff; /* corrupt the compressed stream */
	k[5 * 512 + 0x100 + 40] ^= 0xff;
	expect_bad(k, len, "decompress");
	free(k);
	k = make_bzimage(DECOMP_NONE, &len);
	k[0x206] = 0x01; /* protocol 2.01 */
	expect_bad(k, len, "too old");
	free(k);

	/* command line longer than the kernel accepts */
	k = make_bzimage(DECOMP_NONE, &len);
	char *cmd = malloc(3000);
	memset(cmd, 'a', 2999);
	cmd[2999] = 0;
	struct linux_boot_config cfg = { .kernel = k, .kernel_len = len, .cmdline = cmd };
	struct linux_boot_info info;
	char err[256];
	assert_int_equal(linux_boot_load(&mem, &cfg, &info, err, sizeof(err)), -E2BIG);
	free(cmd);
	free(k);
}

static void test_cpu_setup(void **state)
{
	(void)state;
	struct x86_regs r;
	struct x86_sregs s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(linux_boot_setup_cpu(&mem, KBASE + 0x200, &r, &s), 0);
	assert_int_equal(r.rip, KBASE + 0x200);
	assert_int_equal(r.rsi, BOOT_ZERO_PAGE_GPA);
	assert_int_equal(s.cs.selector, 0x10);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.ds.selector, 0x18);
	assert_true(s.efer & X86_EFER_LMA);
	assert_true(s.cr0 & X86_CR0_PG);
	/* identity map: walk the tables for a few addresses */
	const uint64_t addrs[] = { 0, KBASE, 0x3fffffff, 0xfee00000, 0xffffffff };
	for (size_t i = 0; i < 5; i++) {
		uint64_t va = addrs[i];
		uint64_t pml4e = rd64(ram + s.cr3 + 8 * ((va >> 39) & 511));
		uint64_t pdpte = rd64(ram + (pml4e & ~0xfffULL) + 8 * ((va >> 30) & 511));
		uint64_t pde = rd64(ram + (pdpte & ~0xfffULL) + 8 * ((va >> 21) & 511));
		assert_true(pde & 0x80);
		assert_int_equal((pde & ~0x1fffffULL & 0xffffffffffULL) | (va & 0x1fffff), va);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf),
		cmocka_unit_test(test_bzimage_formats),
		cmocka_unit_test(test_initrd),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_cpu_setup),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
