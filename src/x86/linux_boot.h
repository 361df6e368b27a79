/*
 * Linux direct boot (x86 64-bit boot protocol, Documentation/x86/boot.rst):
 * loads a bzImage (payload decompressed on the host) or an uncompressed ELF
 * vmlinux, an initramfs (decompressed on the host) and the command line into
 * guest memory, writes the zero page with an e820 map, and computes the
 * 64-bit entry state (identity page tables, flat GDT, RSI = zero page).
 */
#ifndef HVMM_X86_LINUX_BOOT_H
#define HVMM_X86_LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/gmem.h"
#include "x86/regs.h"

/* Fixed low-memory layout used by the loader. */
#define BOOT_GDT_GPA        0x0500ULL
#define BOOT_ZERO_PAGE_GPA  0x7000ULL
#define BOOT_STACK_TOP      0x8ff0ULL
#define BOOT_PML4_GPA       0x9000ULL
#define BOOT_PDPT_GPA       0xa000ULL
#define BOOT_PD_GPA         0xb000ULL   /* 4 pages: identity map of 4 GiB */
#define BOOT_CMDLINE_GPA    0x20000ULL
#define BOOT_CMDLINE_MAX    0x10000ULL
#define BOOT_EBDA_GPA       0x9fc00ULL
#define BOOT_BIOS_GPA       0xe0000ULL  /* ACPI tables live here */
#define BOOT_HIGH_GPA       0x100000ULL
#define BOOT_KERNEL_DEFAULT 0x1000000ULL

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
#define E820_MAX_ENTRIES 128

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct e820_entry) == 20, "e820 entry is 20 bytes");

/* Builds the guest's (VTL0's) memory map from the RAM layout, without vtl2_only
 * regions. Returns the count. */
unsigned e820_build(const struct gmem *m, struct e820_entry *tab, unsigned max);

struct linux_boot_config {
	/* Kernel image (bzImage or ELF) and optional initrd, already read. */
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd;
	size_t initrd_len;
	const char *cmdline;
	uint64_t rsdp_gpa; /* 0: none */
	/* Directory caching decompressed bzImage payloads (x86/kcache.h); NULL: none. */
	const char *cache_dir;
};

struct linux_boot_info {
	uint64_t entry;            /* 64-bit entry point (GPA) */
	uint64_t kernel_start, kernel_end;
	uint64_t initrd_gpa, initrd_size;
	bool bzimage;
	bool from_cache;           /* payload came from the kcache */
	const char *kernel_compression;   /* "none", "lz4", ... */
	const char *initrd_compression;
	uint16_t protocol;         /* boot protocol version of a bzImage */
};

/*
 * Loads everything into guest memory. Returns 0, or -errno with a one-line
 * reason in err (malformed image, does not fit, unsupported compression).
 */
int linux_boot_load(struct gmem *m, const struct linux_boot_config *cfg,
		    struct linux_boot_info *info, char *err, size_t errlen);

/*
 * Writes the GDT and identity page tables for the 64-bit entry and returns
 * the BSP's registers: RIP = entry, RSI = zero page.
 */
int linux_boot_setup_cpu(struct gmem *m, uint64_t entry, struct x86_regs *regs,
			 struct x86_sregs *sregs);

#endif
