/*
 * Port I/O and MMIO trap dispatch. Devices register a range with read/write
 * callbacks that receive base-relative offsets. Lookups are lock-free after
 * the VM starts: registration happens only during setup.
 */
#ifndef HVMM_CORE_IOBUS_H
#define HVMM_CORE_IOBUS_H

#include <stdbool.h>
#include <stdint.h>

struct io_ops {
	/* size is 1, 2, 4 or 8; data is little-endian, `size` bytes. */
	void (*read)(void *opaque, uint64_t off, void *data, unsigned size);
	void (*write)(void *opaque, uint64_t off, const void *data, unsigned size);
};

#define IOBUS_MAX_RANGES 64

struct io_range {
	uint64_t base, len;
	const struct io_ops *ops;
	void *opaque;
	const char *name;
};

struct iobus {
	struct io_range ranges[IOBUS_MAX_RANGES];
	unsigned n;
};

/* 0, -EEXIST on overlap, -ENOSPC when full, -EINVAL on a bad range. */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len,
		   const struct io_ops *ops, void *opaque, const char *name);

/*
 * Dispatch an access. Returns false when nothing is mapped there; reads of
 * unmapped space then return all ones in data (done by the caller's policy).
 */
bool iobus_read(struct iobus *bus, uint64_t addr, void *data, unsigned size);
bool iobus_write(struct iobus *bus, uint64_t addr, const void *data, unsigned size);

#endif
