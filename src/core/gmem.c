/*
 * Guest RAM: a memfd split across the 32-bit MMIO hole. Every access from
 * device code goes through gmem_map/gmem_read/gmem_write, which check the
 * whole range with overflow-safe arithmetic (libvmmapi's vm_map_gpa model).
 */
#include "core/gmem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int gmem_init(struct gmem *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (size < (1 << 20) || size % 4096)
		return -EINVAL;
	int fd = memfd_create("hvmm-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		close(fd);
		return e;
	}
	madvise(p, size, MADV_HUGEPAGE);
	m->fd = fd;
	m->base = p;
	m->size = size;
	m->fd_size = size;
	uint64_t low = size < GMEM_MMIO_HOLE_START ? size : GMEM_MMIO_HOLE_START;
	m->regions[0] = (struct gmem_region){ 0, low, m->base, 0, false };
	m->nregions = 1;
	if (size > low) {
		m->regions[1] = (struct gmem_region){ GMEM_4G, size - low, m->base + low, low, false };
		m->nregions = 2;
	}
	return 0;
}

void gmem_init_fake(struct gmem *m, void *buf, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->base = buf;
	m->size = size;
	m->regions[0] = (struct gmem_region){ 0, size, buf, 0, false };
	m->nregions = 1;
}

void gmem_destroy(struct gmem *m)
{
	if (m->fd >= 0) {
		for (unsigned i = 0; i < m->nregions; i++)
			if (m->regions[i].vtl2_only)
				munmap(m->regions[i].hva, m->regions[i].size);
		munmap(m->base, m->size);
		close(m->fd);
	}
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

void *gmem_map(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int gmem_read(const struct gmem *m, uint64_t gpa, void *dst, size_t len)
{
	const void *p = gmem_map(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gmem_write(const struct gmem *m, uint64_t gpa, const void *src, size_t len)
{
	void *p = gmem_map(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int gmem_add_vtl2_region(struct gmem *m, uint64_t gpa, uint64_t size)
{
	if (m->fd < 0 || size == 0 || (gpa | size) % 4096 || gpa < GMEM_4G || gpa + size < gpa)
		return -EINVAL;
	for (unsigned i = 0; i < m->nregions; i++)
		if (gpa < m->regions[i].gpa + m->regions[i].size)
			return -EINVAL;
	if (m->nregions == GMEM_MAX_REGIONS)
		return -ENOSPC;
	if (ftruncate(m->fd, (off_t)(m->fd_size + size)) < 0)
		return -errno;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, m->fd,
		       (off_t)m->fd_size);
	if (p == MAP_FAILED) {
		int e = -errno;
		if (ftruncate(m->fd, (off_t)m->fd_size) < 0)
			e = -errno;
		return e;
	}
	m->regions[m->nregions++] = (struct gmem_region){ gpa, size, p, m->fd_size, true };
	m->fd_size += size;
	return 0;
}

uint64_t gmem_low_end(const struct gmem *m)
{
	return m->nregions ? m->regions[0].gpa + m->regions[0].size : 0;
}
