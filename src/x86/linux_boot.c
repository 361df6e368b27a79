/*
 * Linux direct boot, 64-bit protocol (Documentation/x86/boot.rst, "64-bit
 * boot protocol"). A bzImage's payload is decompressed here, on the host,
 * and its ELF segments are placed at their physical addresses, so the guest
 * starts at startup_64 without running the kernel's own decompressor. The
 * initramfs is likewise handed over uncompressed. Every offset and size in
 * the kernel and initrd files is checked before use: they are user input.
 */
#include "x86/linux_boot.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x86/decompress.h"
#include "x86/kcache.h"

/* struct boot_params offsets (arch/x86/include/uapi/asm/bootparam.h) */
#define BP_ACPI_RSDP_ADDR   0x070
#define BP_EXT_RAMDISK_IMG  0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES     0x1e8
#define BP_HDR              0x1f1
#define BP_SETUP_SECTS      0x1f1
#define BP_BOOT_FLAG        0x1fe
#define BP_JUMP             0x200
#define BP_HEADER           0x202
#define BP_VERSION          0x206
#define BP_TYPE_OF_LOADER   0x210
#define BP_LOADFLAGS        0x211
#define BP_RAMDISK_IMAGE    0x218
#define BP_RAMDISK_SIZE     0x21c
#define BP_HEAP_END_PTR     0x224
#define BP_CMD_LINE_PTR     0x228
#define BP_INITRD_ADDR_MAX  0x22c
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_CMDLINE_SIZE     0x238
#define BP_PAYLOAD_OFFSET   0x248
#define BP_PAYLOAD_LENGTH   0x24c
#define BP_INIT_SIZE        0x260
#define BP_E820_TABLE       0x2d0
#define BP_HDR_END          0x280  /* copy at most this much of the header */
#define BP_SIZE             0x1000

#define HDRS_MAGIC 0x53726448u /* "HdrS" */
#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

unsigned e820_build(const struct gmem *m, struct e820_entry *tab, unsigned max)
{
	unsigned n = 0;
	uint64_t low_end = gmem_low_end(m);

#define ADD(a, s, t)                                                          \
	do {                                                                  \
		if (n < max)                                                  \
			tab[n++] = (struct e820_entry){ (a), (s), (t) };      \
	} while (0)
	ADD(0, BOOT_EBDA_GPA, E820_RAM);
	ADD(BOOT_EBDA_GPA, 0xa0000 - BOOT_EBDA_GPA, E820_RESERVED);
	ADD(BOOT_BIOS_GPA, BOOT_HIGH_GPA - BOOT_BIOS_GPA, E820_RESERVED);
	if (low_end > BOOT_HIGH_GPA)
		ADD(BOOT_HIGH_GPA, low_end - BOOT_HIGH_GPA, E820_RAM);
	for (unsigned i = 1; i < m->nregions; i++)
		if (!m->regions[i].vtl2_only) /* --vtl2: VTL2's own RAM is not VTL0's */
			ADD(m->regions[i].gpa, m->regions[i].size, E820_RAM);
#undef ADD
	return n;
}

/* Loads the PT_LOAD segments of a 64-bit x86 ELF into guest memory. */
static int load_elf(struct gmem *m, const uint8_t *img, size_t len,
		    struct linux_boot_info *info, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	if (len < sizeof(eh))
		return fail(err, errlen, -EINVAL, "ELF image truncated");
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
		return fail(err, errlen, -EINVAL, "not a 64-bit x86 ELF image");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
	    eh.e_phnum > 64 || eh.e_phoff > len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
		return fail(err, errlen, -EINVAL, "ELF program headers out of bounds");

	uint64_t lo = UINT64_MAX, hi = 0, entry = 0;
	bool entry_found = false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > len ||
		    ph.p_filesz > len - ph.p_offset)
			return fail(err, errlen, -EINVAL,
				    "ELF segment %u exceeds the file", i);
		uint8_t *dst = gmem_map(m, ph.p_paddr, ph.p_memsz);
		if (!dst)
			return fail(err, errlen, -ENOMEM,
				    "ELF segment %u at 0x%llx+0x%llx is outside guest RAM "
				    "(give the guest more memory?)", i,
				    (unsigned long long)ph.p_paddr,
				    (unsigned long long)ph.p_memsz);
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr < lo)
			lo = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
		/* Entry: physical if inside the segment's paddr range, else by vaddr. */
		if (!entry_found && eh.e_entry >= ph.p_paddr &&
		    eh.e_entry - ph.p_paddr < ph.p_memsz) {
			entry = eh.e_entry;
			entry_found = true;
		} else if (!entry_found && eh.e_entry >= ph.p_vaddr &&
			   eh.e_entry - ph.p_vaddr < ph.p_memsz) {
			entry = ph.p_paddr + (eh.e_entry - ph.p_vaddr);
			entry_found = true;
		}
	}
	if (lo == UINT64_MAX)
		return fail(err, errlen, -EINVAL, "ELF image has no loadable segment");
	if (!entry_found)
		return fail(err, errlen, -EINVAL, "ELF entry point 0x%llx is in no segment",
			    (unsigned long long)eh.e_entry);
	if (lo < BOOT_HIGH_GPA)
		return fail(err, errlen, -EINVAL,
			    "ELF loads at 0x%llx, below 1 MiB (overlaps the boot data)",
			    (unsigned long long)lo);
	info->entry = entry;
	info->kernel_start = lo;
	info->kernel_end = hi;
	return 0;
}

/* Decompresses and loads a bzImage; hdr receives its setup header bytes. */
static int load_bzimage(struct gmem *m, const uint8_t *img, size_t len,
			uint8_t *zp, const char *cache_dir, struct linux_boot_info *info,
			char *err, size_t errlen)
{
	if (len < BP_HDR_END)
		return fail(err, errlen, -EINVAL, "bzImage truncated");
	uint16_t version = rd16(img + BP_VERSION);
	if (version < 0x0208)
		return fail(err, errlen, -EINVAL,
			    "bzImage boot protocol %u.%02u is too old (need 2.08)",
			    version >> 8, version & 0xff);
	unsigned setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
	uint64_t setup_size = (uint64_t)(setup_sects + 1) * 512;
	uint64_t poff = setup_size + rd32(img + BP_PAYLOAD_OFFSET);
	uint64_t plen = rd32(img + BP_PAYLOAD_LENGTH);
	if (poff > len || plen > len - poff || plen < 8)
		return fail(err, errlen, -EINVAL, "bzImage payload out of bounds");

	/* Copy the setup header as the boot protocol asks. */
	size_t hdr_end = 0x202 + img[BP_JUMP + 1];
	if (hdr_end > BP_HDR_END)
		hdr_end = BP_HDR_END;
	memcpy(zp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);

	const uint8_t *payload = img + poff;
	enum decomp_format f = decomp_detect(payload, plen);
	info->kernel_compression = decomp_name(f);
	info->protocol = version;
	info->bzimage = true;
	int ret;
	if (f == DECOMP_NONE) {
		ret = load_elf(m, payload, plen, info, err, errlen);
	} else {
		/* The build appends the uncompressed size (LE32) to every format. */
		size_t want = rd32(payload + plen - 4);
		uint8_t *elf;
		size_t elf_len, used;
		uint64_t key = cache_dir ? kcache_hash(payload, plen) : 0;
		if (cache_dir && kcache_load(cache_dir, key, plen, want, m->size, &elf,
					     &elf_len) == 0) {
			info->from_cache = true;
			ret = 0;
		} else {
			ret = decomp_stream(f, payload, plen, want ? want : m->size, &elf,
					    &elf_len, &used);
			if (ret == 0 && cache_dir)
				(void)kcache_store(cache_dir, key, plen, elf, elf_len);
		}
		if (ret == -ENOTSUP)
			return fail(err, errlen, ret,
				    "bzImage payload is %s-compressed, which hvmm cannot "
				    "unpack (supported: gzip, xz, lzma, lz4, zstd)",
				    decomp_name(f));
		if (ret < 0)
			return fail(err, errlen, ret,
				    "cannot decompress the %s bzImage payload: %s",
				    decomp_name(f), strerror(-ret));
		ret = load_elf(m, elf, elf_len, info, err, errlen);
		free(elf);
	}
	if (ret < 0)
		return ret;
	/* The kernel uses init_size bytes from its start (bss, brk, page tables). */
	uint32_t init_size = rd32(zp + BP_INIT_SIZE);
	if (init_size && !gmem_map(m, info->kernel_start, init_size))
		return fail(err, errlen, -ENOMEM,
			    "kernel needs 0x%x bytes at 0x%llx: not enough guest RAM",
			    init_size, (unsigned long long)info->kernel_start);
	if (init_size && info->kernel_start + init_size > info->kernel_end)
		info->kernel_end = info->kernel_start + init_size;
	return 0;
}

/* End of an uncompressed newc/crc cpio archive starting at p, or 0. */
static size_t cpio_archive_len(const uint8_t *p, size_t len)
{
	size_t pos = 0;
	for (unsigned guard = 0; guard < 10000000; guard++) {
		if (len - pos < 110 || (memcmp(p + pos, "070701", 6) &&
					memcmp(p + pos, "070702", 6)))
			return 0;
		char field[9] = { 0 };
		memcpy(field, p + pos + 54, 8); /* c_filesize */
		unsigned long fsize = strtoul(field, NULL, 16);
		memcpy(field, p + pos + 94, 8); /* c_namesize */
		unsigned long nsize = strtoul(field, NULL, 16);
		if (nsize == 0 || nsize > 4096 || nsize > len - pos - 110)
			return 0;
		bool trailer = nsize == 11 && !memcmp(p + pos + 110, "TRAILER!!!", 11);
		size_t data = (pos + 110 + nsize + 3) & ~(size_t)3;
		if (data > len || fsize > len - data)
			return 0;
		pos = (data + fsize + 3) & ~(size_t)3;
		if (pos > len)
			pos = len;
		if (trailer)
			return pos;
	}
	return 0;
}

/*
 * Produces the uncompressed initramfs: a sequence of cpio archives, each
 * plain or compressed, possibly with zero padding between them (as Debian's
 * early-microcode + main image). *out is NULL when the input is already
 * uncompressed (use it as it is).
 */
static int unpack_initrd(const uint8_t *in, size_t len, size_t max_out,
			 uint8_t **out, size_t *outlen, const char **fmt_name,
			 char *err, size_t errlen)
{
	*out = NULL;
	*fmt_name = "none";
	enum decomp_format first = decomp_detect(in, len);
	if (first == DECOMP_NONE && cpio_archive_len(in, len) == len) {
		*outlen = len;
		return 0;
	}
	uint8_t *buf = NULL;
	size_t blen = 0, pos = 0;
	int ret = 0;
	while (pos < len) {
		if (in[pos] == 0) { /* padding between archives */
			pos++;
			continue;
		}
		enum decomp_format f = decomp_detect(in + pos, len - pos);
		const uint8_t *piece;
		size_t plen, used;
		uint8_t *dec = NULL;
		if (f == DECOMP_NONE) {
			used = cpio_archive_len(in + pos, len - pos);
			if (!used) {
				ret = fail(err, errlen, -EINVAL,
					   "initrd: unrecognised data at offset %zu "
					   "(not cpio or a supported compression)", pos);
				break;
			}
			piece = in + pos;
			plen = used;
		} else {
			*fmt_name = decomp_name(f);
			ret = decomp_stream(f, in + pos, len - pos, max_out - blen, &dec,
					    &plen, &used);
			if (ret < 0) {
				ret = fail(err, errlen, ret,
					   "initrd: cannot decompress %s data at offset %zu: %s",
					   decomp_name(f), pos,
					   ret == -EFBIG ? "larger than guest memory"
							 : ret == -ENOTSUP ? "format not supported"
									   : "corrupt");
				break;
			}
			piece = dec;
			if (used == 0)
				used = len - pos;
		}
		if (plen > max_out - blen) {
			free(dec);
			ret = fail(err, errlen, -EFBIG, "initrd: larger than guest memory");
			break;
		}
		uint8_t *nb = realloc(buf, blen + plen + 4);
		if (!nb) {
			free(dec);
			ret = -ENOMEM;
			break;
		}
		buf = nb;
		memcpy(buf + blen, piece, plen);
		blen += plen;
		while (blen % 4) /* archives start 4-byte aligned */
			buf[blen++] = 0;
		free(dec);
		pos += used;
	}
	if (ret < 0) {
		free(buf);
		return ret;
	}
	*out = buf;
	*outlen = blen;
	return 0;
}

int linux_boot_load(struct gmem *m, const struct linux_boot_config *cfg,
		    struct linux_boot_info *info, char *err, size_t errlen)
{
	uint8_t zp[BP_SIZE];
	int ret;

	memset(info, 0, sizeof(*info));
	memset(zp, 0, sizeof(zp));
	info->kernel_compression = "none";
	info->initrd_compression = "none";

	const uint8_t *k = cfg->kernel;
	size_t klen = cfg->kernel_len;
	if (klen >= 4 && !memcmp(k, ELFMAG, SELFMAG)) {
		ret = load_elf(m, k, klen, info, err, errlen);
		if (ret < 0)
			return ret;
		/* Synthesise the setup header a bzImage would carry. */
		wr16(zp + BP_BOOT_FLAG, 0xaa55);
		wr32(zp + BP_HEADER, HDRS_MAGIC);
		wr16(zp + BP_VERSION, 0x020f);
		wr32(zp + BP_KERNEL_ALIGNMENT, 0x200000);
		wr32(zp + BP_INITRD_ADDR_MAX, 0x7fffffff);
		wr32(zp + BP_CMDLINE_SIZE, 2047);
	} else if (klen > BP_HEADER + 4 && rd32(k + BP_HEADER) == HDRS_MAGIC) {
		ret = load_bzimage(m, k, klen, zp, cfg->cache_dir, info, err, errlen);
		if (ret < 0)
			return ret;
	} else {
		return fail(err, errlen, -EINVAL,
			    "kernel is neither a bzImage nor a 64-bit ELF vmlinux");
	}

	zp[BP_TYPE_OF_LOADER] = 0xff;
	zp[BP_LOADFLAGS] |= LOADFLAG_LOADED_HIGH | LOADFLAG_CAN_USE_HEAP;
	wr16(zp + BP_HEAP_END_PTR, 0xfe00);

	/* Command line */
	const char *cmd = cfg->cmdline ? cfg->cmdline : "";
	size_t cmdlen = strlen(cmd);
	uint32_t cmd_max = rd32(zp + BP_CMDLINE_SIZE);
	if (rd16(zp + BP_VERSION) < 0x0206 || cmd_max == 0)
		cmd_max = 255;
	if (cmdlen > cmd_max || cmdlen >= BOOT_CMDLINE_MAX)
		return fail(err, errlen, -E2BIG,
			    "kernel command line is %zu bytes; this kernel takes at most %u",
			    cmdlen, cmd_max);
	if (gmem_write(m, BOOT_CMDLINE_GPA, cmd, cmdlen + 1) < 0)
		return fail(err, errlen, -ENOMEM, "no room for the command line");
	wr32(zp + BP_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_GPA);

	/* Initrd: uncompressed, placed as high as the kernel allows. */
	if (cfg->initrd && cfg->initrd_len) {
		uint8_t *raw;
		size_t rawlen;
		ret = unpack_initrd(cfg->initrd, cfg->initrd_len, m->size, &raw,
				    &rawlen, &info->initrd_compression, err, errlen);
		if (ret < 0)
			return ret;
		const uint8_t *src = raw ? raw : cfg->initrd;
		uint64_t max_addr = rd32(zp + BP_INITRD_ADDR_MAX);
		if (max_addr == 0)
			max_addr = 0x37ffffff;
		uint64_t top = gmem_low_end(m);
		if (top > max_addr + 1)
			top = max_addr + 1;
		uint64_t gpa = top >= rawlen ? ((top - rawlen) & ~0xfffULL) : 0;
		if (rawlen == 0 || top < rawlen || gpa < info->kernel_end ||
		    gmem_write(m, gpa, src, rawlen) < 0) {
			free(raw);
			return fail(err, errlen, -ENOMEM,
				    "initrd (%zu bytes uncompressed) does not fit in guest "
				    "RAM above the kernel; use a larger -m", rawlen);
		}
		free(raw);
		info->initrd_gpa = gpa;
		info->initrd_size = rawlen;
		wr32(zp + BP_RAMDISK_IMAGE, (uint32_t)gpa);
		wr32(zp + BP_RAMDISK_SIZE, (uint32_t)rawlen);
		wr32(zp + BP_EXT_RAMDISK_IMG, (uint32_t)(gpa >> 32));
		wr32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)rawlen >> 32));
	}

	if (cfg->rsdp_gpa)
		wr64(zp + BP_ACPI_RSDP_ADDR, cfg->rsdp_gpa);

	struct e820_entry e820[E820_MAX_ENTRIES];
	unsigned n = e820_build(m, e820, E820_MAX_ENTRIES);
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + BP_E820_TABLE, e820, n * sizeof(e820[0]));

	if (gmem_write(m, BOOT_ZERO_PAGE_GPA, zp, sizeof(zp)) < 0)
		return fail(err, errlen, -ENOMEM, "no room for the zero page");
	return 0;
}

int linux_boot_setup_cpu(struct gmem *m, uint64_t entry, struct x86_regs *regs,
			 struct x86_sregs *sregs)
{
	static const uint64_t gdt[4] = {
		0,
		0,
		0x00af9b000000ffffULL, /* 0x10: 64-bit code, DPL 0 */
		0x00cf93000000ffffULL, /* 0x18: data, DPL 0 */
	};
	if (gmem_write(m, BOOT_GDT_GPA, gdt, sizeof(gdt)) < 0)
		return -ENOMEM;

	/* Identity map of the first 4 GiB with 2 MiB pages. */
	uint64_t *pml4 = gmem_map(m, BOOT_PML4_GPA, 4096);
	uint64_t *pdpt = gmem_map(m, BOOT_PDPT_GPA, 4096);
	uint64_t *pd = gmem_map(m, BOOT_PD_GPA, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -ENOMEM;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = BOOT_PDPT_GPA | 0x3;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_GPA + i * 4096) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */

	struct x86_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct x86_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = 0x18, .type = 0x3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	sregs->cs = code;
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->gdt = (struct x86_dtable){ BOOT_GDT_GPA, sizeof(gdt) - 1 };
	sregs->idt = (struct x86_dtable){ 0, 0 };
	sregs->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP |
		     X86_CR0_PG;
	sregs->cr3 = BOOT_PML4_GPA;
	sregs->cr4 = X86_CR4_PAE;
	sregs->efer = X86_EFER_LME | X86_EFER_LMA;

	memset(regs, 0, sizeof(*regs));
	regs->rip = entry;
	regs->rsi = BOOT_ZERO_PAGE_GPA;
	regs->rsp = BOOT_STACK_TOP;
	regs->rflags = 0x2;
	return 0;
}
