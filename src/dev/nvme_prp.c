/*
 * NVMe Physical Region Page walking (NVM Express Base 1.4c section 4.3):
 * PRP1 may carry a dword-aligned offset into its page; PRP2 is either the
 * second page (when the transfer ends in it) or a pointer to a PRP list,
 * whose entries are page-aligned and whose last entry, when more entries
 * follow than fit in the list page, points to the next list page. Every
 * page is resolved with gmem_map() and every list entry is copied out of
 * guest RAM once; the walk is bounded by the transfer length, which the
 * callers cap at MDTS.
 */
#include <string.h>

#include "core/gmem.h"
#include "dev/nvme_impl.h"

/* Appends [hva, hva+len) to the iovecs, merging with the previous one. */
static bool iov_add(struct iovec *iov, unsigned max, unsigned *n, void *hva, uint64_t len)
{
	if (*n && (uint8_t *)iov[*n - 1].iov_base + iov[*n - 1].iov_len == (uint8_t *)hva) {
		iov[*n - 1].iov_len += len;
		return true;
	}
	if (*n == max)
		return false;
	iov[*n].iov_base = hva;
	iov[*n].iov_len = len;
	(*n)++;
	return true;
}

static uint16_t add_page(const struct gmem *mem, uint64_t gpa, uint64_t len,
			 struct iovec *iov, unsigned max, unsigned *n)
{
	void *hva = gmem_map(mem, gpa, len);
	if (!hva)
		return NVME_SC_DATA_XFER_ERROR | NVME_SC_DNR;
	if (!iov_add(iov, max, n, hva, len))
		return NVME_SC_INVALID_FIELD | NVME_SC_DNR;
	return NVME_SC_SUCCESS;
}

uint16_t nvme_prp_map(const struct gmem *mem, uint64_t prp1, uint64_t prp2,
		      uint64_t len, struct iovec *iov, unsigned max, unsigned *niov)
{
	const uint64_t pmask = NVME_PAGE_SIZE - 1;
	*niov = 0;
	if (len == 0)
		return NVME_SC_SUCCESS;
	if (prp1 & 3)
		return NVME_SC_INVALID_PRP_OFFSET | NVME_SC_DNR;
	uint64_t first = NVME_PAGE_SIZE - (prp1 & pmask);
	if (first > len)
		first = len;
	uint16_t st = add_page(mem, prp1, first, iov, max, niov);
	if (st)
		return st;
	uint64_t rem = len - first;
	if (rem == 0)
		return NVME_SC_SUCCESS;
	if (rem <= NVME_PAGE_SIZE) {
		/* PRP2 is the second (and last) page. */
		if (prp2 & pmask)
			return NVME_SC_INVALID_PRP_OFFSET | NVME_SC_DNR;
		return add_page(mem, prp2, rem, iov, max, niov);
	}
	/* PRP2 points to a PRP list; it may start inside its page. */
	if (prp2 & 7)
		return NVME_SC_INVALID_PRP_OFFSET | NVME_SC_DNR;
	uint64_t list = prp2;
	/* The number of pages left bounds the loop; a list has >= 1 entry. */
	while (rem) {
		uint64_t in_page = (NVME_PAGE_SIZE - (list & pmask)) / 8;
		uint64_t pages = (rem + pmask) / NVME_PAGE_SIZE;
		uint64_t take = pages <= in_page ? pages : in_page;
		uint64_t ent[NVME_PAGE_SIZE / 8];
		if (gmem_read(mem, list, ent, take * 8) < 0)
			return NVME_SC_DATA_XFER_ERROR | NVME_SC_DNR;
		uint64_t data_entries = pages <= in_page ? take : take - 1;
		for (uint64_t i = 0; i < data_entries; i++) {
			if (ent[i] & pmask)
				return NVME_SC_INVALID_PRP_OFFSET | NVME_SC_DNR;
			uint64_t l = rem < NVME_PAGE_SIZE ? rem : NVME_PAGE_SIZE;
			st = add_page(mem, ent[i], l, iov, max, niov);
			if (st)
				return st;
			rem -= l;
		}
		if (rem) {
			/* The last entry chains to the next list page. */
			list = ent[take - 1];
			if (list & pmask)
				return NVME_SC_INVALID_PRP_OFFSET | NVME_SC_DNR;
		}
	}
	return NVME_SC_SUCCESS;
}

void nvme_iov_to_buf(const struct iovec *iov, unsigned niov, uint64_t skip, void *buf,
		     uint64_t len)
{
	uint8_t *out = buf;
	for (unsigned i = 0; i < niov && len; i++) {
		uint64_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		uint64_t c = l - skip < len ? l - skip : len;
		memcpy(out, (uint8_t *)iov[i].iov_base + skip, c);
		out += c;
		len -= c;
		skip = 0;
	}
}

void nvme_buf_to_iov(const struct iovec *iov, unsigned niov, const void *buf, uint64_t len)
{
	const uint8_t *in = buf;
	for (unsigned i = 0; i < niov && len; i++) {
		uint64_t c = iov[i].iov_len < len ? iov[i].iov_len : len;
		memcpy(iov[i].iov_base, in, c);
		in += c;
		len -= c;
	}
}
