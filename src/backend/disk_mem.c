/*
 * mem: and memdiff: disks. mem:SIZE is zero-filled anonymous memory
 * (reserved lazily, so a large empty disk costs nothing until written).
 * memdiff:KIND keeps every write in memory, in 4 KiB chunks found through a
 * two-level table, over a base disk that is only ever read: the base stays
 * untouched, and the overlay is lost when hvmm exits (a scratch disk).
 */
#include "backend/disk_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- mem: --------------------------------------------------------------- */

struct mem_disk {
	struct disk d;
	uint8_t *buf;
};

static int mem_pread(struct disk *d, void *buf, uint64_t len, uint64_t off)
{
	memcpy(buf, ((struct mem_disk *)d)->buf + off, len);
	return 0;
}

static int mem_pwrite(struct disk *d, const void *buf, uint64_t len, uint64_t off)
{
	memcpy(((struct mem_disk *)d)->buf + off, buf, len);
	return 0;
}

static int mem_flush(struct disk *d)
{
	(void)d;
	return 0; /* memory is as stable as this disk gets */
}

static int mem_zero(struct disk *d, uint64_t off, uint64_t len, bool discard)
{
	uint8_t *p = ((struct mem_disk *)d)->buf;
	uint64_t page = 4096, end = off + len;
	uint64_t a = (off + page - 1) & ~(page - 1), b = end & ~(page - 1);
	if (discard && b > a) {
		/* Whole pages go back to the host and read as zeros again. */
		memset(p + off, 0, a - off);
		madvise(p + a, b - a, MADV_DONTNEED);
		memset(p + b, 0, end - b);
		return 0;
	}
	memset(p + off, 0, len);
	return 0;
}

static void mem_close(struct disk *d)
{
	struct mem_disk *m = (struct mem_disk *)d;
	munmap(m->buf, d->size);
	free(m);
}

static const struct disk_backend_ops mem_ops = {
	.pread = mem_pread, .pwrite = mem_pwrite, .flush = mem_flush,
	.zero = mem_zero, .close = mem_close,
};

int disk_mem_open(uint64_t size, struct disk **out, char *err, size_t errlen)
{
	if (size == 0 || size % DISK_SECTOR_SIZE) {
		snprintf(err, errlen, "mem: disk size %llu is not a non-zero multiple of %u",
			 (unsigned long long)size, DISK_SECTOR_SIZE);
		return -EINVAL;
	}
	struct mem_disk *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->buf == MAP_FAILED) {
		free(m);
		snprintf(err, errlen, "mem: cannot reserve %llu bytes for the disk",
			 (unsigned long long)size);
		return -ENOMEM;
	}
	m->d.ops = &mem_ops;
	m->d.size = size;
	m->d.can_discard = true;
	m->d.priv = m;
	snprintf(m->d.desc, sizeof(m->d.desc), "mem:%llu", (unsigned long long)size);
	*out = &m->d;
	return 0;
}

/* ---- memdiff: ----------------------------------------------------------- */

#define CHUNK 4096u
#define LEAF_BITS 12
#define LEAF_SIZE (1u << LEAF_BITS)

struct memdiff_disk {
	struct disk d;
	struct disk *base;
	uint8_t ***dir;    /* dir[i][j]: chunk (i << LEAF_BITS | j), or NULL */
	uint64_t ndir;
};

static struct memdiff_disk *mdisk(struct disk *d)
{
	return (struct memdiff_disk *)d;
}

static uint8_t **slot(struct memdiff_disk *m, uint64_t chunk, bool create)
{
	uint64_t i = chunk >> LEAF_BITS;
	if (i >= m->ndir)
		return NULL;
	if (!m->dir[i]) {
		if (!create)
			return NULL;
		m->dir[i] = calloc(LEAF_SIZE, sizeof(uint8_t *));
		if (!m->dir[i])
			return NULL;
	}
	return &m->dir[i][chunk & (LEAF_SIZE - 1)];
}

/* Bytes of chunk `c` that lie inside the disk (the last one may be short). */
static uint64_t chunk_len(const struct memdiff_disk *m, uint64_t c)
{
	uint64_t start = c * CHUNK;
	return m->d.size - start < CHUNK ? m->d.size - start : CHUNK;
}

static int memdiff_pread(struct disk *d, void *buf, uint64_t len, uint64_t off)
{
	struct memdiff_disk *m = mdisk(d);
	uint8_t *p = buf;
	while (len) {
		uint64_t c = off / CHUNK, in = off % CHUNK;
		uint64_t n = CHUNK - in < len ? CHUNK - in : len;
		uint8_t **s = slot(m, c, false);
		if (s && *s) {
			memcpy(p, *s + in, n);
		} else {
			int ret = m->base->ops->pread(m->base, p, n, off);
			if (ret < 0)
				return ret;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* The overlay copy of chunk c, made from the base on first write. */
static uint8_t *chunk_for_write(struct memdiff_disk *m, uint64_t c, bool whole)
{
	uint8_t **s = slot(m, c, true);
	if (!s)
		return NULL;
	if (!*s) {
		uint8_t *copy = calloc(1, CHUNK);
		if (!copy)
			return NULL;
		if (!whole && m->base->ops->pread(m->base, copy, chunk_len(m, c), c * CHUNK) < 0) {
			free(copy);
			return NULL;
		}
		*s = copy;
	}
	return *s;
}

static int memdiff_pwrite(struct disk *d, const void *buf, uint64_t len, uint64_t off)
{
	struct memdiff_disk *m = mdisk(d);
	const uint8_t *p = buf;
	while (len) {
		uint64_t c = off / CHUNK, in = off % CHUNK;
		uint64_t n = CHUNK - in < len ? CHUNK - in : len;
		uint8_t *chunk = chunk_for_write(m, c, in == 0 && n == chunk_len(m, c));
		if (!chunk)
			return -ENOMEM;
		memcpy(chunk + in, p, n);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int memdiff_flush(struct disk *d)
{
	(void)d;
	return 0;
}

static int memdiff_zero(struct disk *d, uint64_t off, uint64_t len, bool discard)
{
	(void)discard;
	struct memdiff_disk *m = mdisk(d);
	while (len) {
		uint64_t c = off / CHUNK, in = off % CHUNK;
		uint64_t n = CHUNK - in < len ? CHUNK - in : len;
		uint8_t *chunk = chunk_for_write(m, c, in == 0 && n == chunk_len(m, c));
		if (!chunk)
			return -ENOMEM;
		memset(chunk + in, 0, n);
		off += n;
		len -= n;
	}
	return 0;
}

static void memdiff_close(struct disk *d)
{
	struct memdiff_disk *m = mdisk(d);
	for (uint64_t i = 0; i < m->ndir; i++) {
		if (!m->dir[i])
			continue;
		for (unsigned j = 0; j < LEAF_SIZE; j++)
			free(m->dir[i][j]);
		free(m->dir[i]);
	}
	free(m->dir);
	disk_close(m->base);
	free(m);
}

static const struct disk_backend_ops memdiff_ops = {
	.pread = memdiff_pread, .pwrite = memdiff_pwrite, .flush = memdiff_flush,
	.zero = memdiff_zero, .close = memdiff_close,
};

int disk_memdiff_open(struct disk *base, struct disk **out, char *err, size_t errlen)
{
	struct memdiff_disk *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	uint64_t chunks = (disk_size(base) + CHUNK - 1) / CHUNK;
	m->ndir = (chunks + LEAF_SIZE - 1) / LEAF_SIZE;
	m->dir = calloc(m->ndir, sizeof(*m->dir));
	if (!m->dir) {
		free(m);
		snprintf(err, errlen, "memdiff: out of memory");
		return -ENOMEM;
	}
	m->base = base;
	m->d.ops = &memdiff_ops;
	m->d.size = disk_size(base);
	m->d.can_discard = true;
	m->d.priv = m;
	snprintf(m->d.desc, sizeof(m->d.desc), "memdiff:%s", disk_describe(base));
	*out = &m->d;
	return 0;
}
