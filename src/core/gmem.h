/*
 * Guest physical memory. RAM is one memfd mapped once in the host; the guest
 * sees it as up to two ranges (below the 32-bit MMIO hole and above 4 GiB).
 *
 * Guest memory is hostile: the only ways in are gmem_map(), which returns a
 * host pointer only when the whole [gpa, gpa+len) range is RAM (overflow
 * safe), and the copying gmem_read()/gmem_write(). Copy guest structures into
 * host memory before validating them; never read a guest field twice.
 */
#ifndef HVMM_CORE_GMEM_H
#define HVMM_CORE_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 4

/* Start of the 32-bit MMIO hole (IOAPIC, LAPIC, later PCI BARs). */
#define GMEM_MMIO_HOLE_START 0xC0000000ULL
#define GMEM_4G 0x100000000ULL

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;       /* host address of gpa */
	uint64_t fd_offset; /* offset of gpa in the memfd */
	/*
	 * --vtl2: RAM only VTL2 sees (gmem_add_vtl2_region), mapped on its own;
	 * not counted in gmem.size. Code describing VTL0's RAM (e820, ACPI,
	 * memory maps, VTL0's memory slots) skips these regions.
	 */
	bool vtl2_only;
};

struct gmem {
	int fd;             /* memfd backing all RAM, or -1 for fake memory */
	uint8_t *base;      /* host mapping of the whole memfd */
	uint64_t size;      /* total RAM bytes (VTL0's: without vtl2_only regions) */
	uint64_t fd_size;   /* memfd length: size plus the vtl2_only regions */
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned nregions;
};

/*
 * Creates `size` bytes of RAM (memfd, MAP_SHARED) laid out around the MMIO
 * hole. 0 or -errno.
 */
int gmem_init(struct gmem *m, uint64_t size);

/*
 * Fake RAM for unit tests: one region at gpa 0 backed by `buf` (not owned).
 */
void gmem_init_fake(struct gmem *m, void *buf, uint64_t size);

void gmem_destroy(struct gmem *m);

/* Host pointer for [gpa, gpa+len) when all of it is RAM, else NULL. */
void *gmem_map(const struct gmem *m, uint64_t gpa, uint64_t len);

/* 0, or -EFAULT when any byte is outside RAM (nothing is copied then). */
int gmem_read(const struct gmem *m, uint64_t gpa, void *dst, size_t len);
int gmem_write(const struct gmem *m, uint64_t gpa, const void *src, size_t len);

/*
 * Adds [gpa, gpa + size) (4 KiB aligned, above every region, at or above
 * 4 GiB) as a vtl2_only region: the memfd grows by size and the new part is
 * mapped separately (existing host addresses stay valid). For the IGVM
 * loader's --igvm-vtl2-relocation-type auto= placement (address from
 * vtl_mem_vtl2_ram_base). 0 or -errno (-EINVAL bad range, -ENOSPC no
 * region left).
 */
int gmem_add_vtl2_region(struct gmem *m, uint64_t gpa, uint64_t size);

/* End (exclusive) of the RAM range below 4 GiB. */
uint64_t gmem_low_end(const struct gmem *m);

#endif
