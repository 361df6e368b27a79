/*
 * Port I/O and MMIO dispatch: a small sorted-free array scanned linearly.
 * There are a handful of ranges per bus, so a scan beats anything clever.
 */
#include "core/iobus.h"

#include <errno.h>
#include <string.h>

int iobus_register(struct iobus *bus, uint64_t base, uint64_t len,
		   const struct io_ops *ops, void *opaque, const char *name)
{
	if (!len || base + len < base || !ops)
		return -EINVAL;
	for (unsigned i = 0; i < bus->n; i++) {
		const struct io_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len)
			return -EEXIST;
	}
	if (bus->n == IOBUS_MAX_RANGES)
		return -ENOSPC;
	bus->ranges[bus->n++] = (struct io_range){ base, len, ops, opaque, name };
	return 0;
}

static const struct io_range *find(const struct iobus *bus, uint64_t addr,
				   unsigned size)
{
	for (unsigned i = 0; i < bus->n; i++) {
		const struct io_range *r = &bus->ranges[i];
		if (addr >= r->base && addr - r->base < r->len &&
		    size <= r->len - (addr - r->base))
			return r;
	}
	return NULL;
}

bool iobus_read(struct iobus *bus, uint64_t addr, void *data, unsigned size)
{
	const struct io_range *r = find(bus, addr, size);
	if (!r || !r->ops->read) {
		memset(data, 0xff, size);
		return r != NULL;
	}
	r->ops->read(r->opaque, addr - r->base, data, size);
	return true;
}

bool iobus_write(struct iobus *bus, uint64_t addr, const void *data, unsigned size)
{
	const struct io_range *r = find(bus, addr, size);
	if (!r)
		return false;
	if (r->ops->write)
		r->ops->write(r->opaque, addr - r->base, data, size);
	return true;
}
