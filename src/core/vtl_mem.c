/*
 * VTL0's view of guest RAM under --vtl2 (TLFS "Virtual Secure Mode",
 * ModifyVtlProtectionMask; shared/docs/igvm-and-vsm.md B.2/B.3): the
 * protection map as sorted page ranges, the minimal KVM slot list it
 * needs, applying that list to VTL0's partition, and the small MOV decoder
 * vtl.c uses to find a faulting instruction. Contract in vtl_mem.h.
 */
#include "core/vtl_mem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "hv/hv.h"
#include "igvm/igvm.h"

#define PAGE 4096ull

static uint16_t set_locked(struct vtl_mem *m, uint64_t first, uint64_t npages, unsigned prot);

int vtl_mem_init(struct vtl_mem *m, const struct gmem *g, unsigned max_slots)
{
	memset(m, 0, sizeof(*m));
	if (max_slots == 0 || max_slots > VTL_MEM_MAX_SLOTS || g->nregions > max_slots ||
	    g->nregions > GMEM_MAX_REGIONS)
		return -EINVAL;
	if (pthread_mutex_init(&m->lock, NULL))
		return -ENOMEM;
	m->nram = g->nregions;
	memcpy(m->ram, g->regions, sizeof(m->ram[0]) * g->nregions);
	m->max_slots = max_slots;
	for (unsigned i = 0; i < m->nram; i++) {
		if (m->ram[i].vtl2_only) { /* never mapped in VTL0: no access */
			uint16_t st = set_locked(m, m->ram[i].gpa / PAGE, m->ram[i].size / PAGE,
						 VTL_MEM_NONE);
			if (st) {
				vtl_mem_fini(m);
				return -ENOMEM;
			}
			continue;
		}
		m->applied[i] = (struct vtl_mem_slot){ m->ram[i].gpa, m->ram[i].size, i, false };
		m->used[i] = true;
	}
	return 0;
}

void vtl_mem_fini(struct vtl_mem *m)
{
	free(m->r);
	m->r = NULL;
	m->nr = 0;
	pthread_mutex_destroy(&m->lock);
}

unsigned vtl_mem_prot_from_flags(uint32_t f)
{
	if (!(f & 0x1u /* HV_MAP_GPA_READABLE */))
		return VTL_MEM_NONE;
	return (f & 0x2u /* HV_MAP_GPA_WRITABLE */) ? VTL_MEM_FULL : VTL_MEM_RO;
}

/* The RAM region holding pages [first, end), or -1. */
static int region_of(const struct vtl_mem *m, uint64_t first, uint64_t end)
{
	for (unsigned i = 0; i < m->nram; i++) {
		uint64_t rf = m->ram[i].gpa / PAGE, re = rf + m->ram[i].size / PAGE;
		if (first >= rf && end <= re)
			return (int)i;
	}
	return -1;
}

/* Slots for ranges r[0..nr) over the RAM: count (may exceed cap; out filled up to cap). */
static unsigned compute_slots(const struct vtl_mem *m, const struct vtl_mem_range *r, unsigned nr,
			      struct vtl_mem_slot *out, unsigned cap)
{
	unsigned n = 0;
	for (unsigned i = 0; i < m->nram; i++) {
		uint64_t cur = m->ram[i].gpa / PAGE, end = cur + m->ram[i].size / PAGE;
		for (unsigned j = 0; j < nr && cur < end; j++) {
			if (r[j].end <= cur || r[j].first >= end)
				continue;
			if (r[j].first > cur) {
				if (n < cap)
					out[n] = (struct vtl_mem_slot){ cur * PAGE,
						(r[j].first - cur) * PAGE, i, false };
				n++;
				cur = r[j].first;
			}
			uint64_t stop = r[j].end < end ? r[j].end : end;
			if (r[j].prot == VTL_MEM_RO) {
				if (n < cap)
					out[n] = (struct vtl_mem_slot){ cur * PAGE, (stop - cur) * PAGE,
									i, true };
				n++;
			}
			cur = stop;
		}
		if (cur < end) {
			if (n < cap)
				out[n] = (struct vtl_mem_slot){ cur * PAGE, (end - cur) * PAGE, i, false };
			n++;
		}
	}
	return n;
}

/* r with [first, end) set to prot, into a new array (*out, *nout). 0 or -ENOMEM. */
static int splice(const struct vtl_mem_range *r, unsigned nr, uint64_t first, uint64_t end,
		  unsigned prot, struct vtl_mem_range **out, unsigned *nout)
{
	struct vtl_mem_range *n = malloc(sizeof(*n) * (nr + 2));
	if (!n)
		return -ENOMEM;
	unsigned k = 0;
	bool placed = false;
	for (unsigned i = 0; i <= nr; i++) {
		if (!placed && (i == nr || r[i].first >= first)) {
			if (prot != VTL_MEM_FULL)
				n[k++] = (struct vtl_mem_range){ first, end, prot };
			placed = true;
		}
		if (i == nr)
			break;
		struct vtl_mem_range a = r[i];
		if (a.end <= first || a.first >= end) {
			n[k++] = a;
			continue;
		}
		/* a overlaps [first, end): keep the parts outside it. */
		if (a.first < first)
			n[k++] = (struct vtl_mem_range){ a.first, first, a.prot };
		if (a.end > end) {
			if (!placed) {
				if (prot != VTL_MEM_FULL)
					n[k++] = (struct vtl_mem_range){ first, end, prot };
				placed = true;
			}
			n[k++] = (struct vtl_mem_range){ end, a.end, a.prot };
		}
	}
	/* Merge neighbours with the same access. */
	unsigned w = 0;
	for (unsigned i = 0; i < k; i++) {
		if (w && n[w - 1].end == n[i].first && n[w - 1].prot == n[i].prot)
			n[w - 1].end = n[i].end;
		else
			n[w++] = n[i];
	}
	*out = n;
	*nout = w;
	return 0;
}

static uint16_t set_locked(struct vtl_mem *m, uint64_t first, uint64_t npages, unsigned prot)
{
	if (npages == 0 || prot > VTL_MEM_FULL || first + npages < first ||
	    region_of(m, first, first + npages) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	struct vtl_mem_range *n;
	unsigned nn;
	if (splice(m->r, m->nr, first, first + npages, prot, &n, &nn) < 0)
		return HV_STATUS_INSUFFICIENT_MEMORY;
	if (nn > VTL_MEM_MAX_RANGES || compute_slots(m, n, nn, NULL, 0) > m->max_slots) {
		free(n);
		return HV_STATUS_INSUFFICIENT_MEMORY;
	}
	free(m->r);
	m->r = n;
	m->nr = nn;
	return HV_STATUS_SUCCESS;
}

uint16_t vtl_mem_set(struct vtl_mem *m, uint64_t first, uint64_t npages, unsigned prot)
{
	pthread_mutex_lock(&m->lock);
	uint16_t st = set_locked(m, first, npages, prot);
	pthread_mutex_unlock(&m->lock);
	return st;
}

uint16_t vtl_mem_hide(struct vtl_mem *m, uint64_t base, uint64_t size)
{
	uint64_t first = (base + PAGE - 1) / PAGE, end = (base + size) / PAGE;
	if (size == 0 || base + size < base || end <= first)
		return HV_STATUS_INVALID_PARAMETER;
	pthread_mutex_lock(&m->lock);
	uint16_t st = set_locked(m, first, end - first, VTL_MEM_NONE);
	if (st == HV_STATUS_SUCCESS) {
		m->hidden_first = first;
		m->hidden_end = end;
	}
	pthread_mutex_unlock(&m->lock);
	return st;
}

bool vtl_mem_hidden(struct vtl_mem *m, uint64_t gpa)
{
	pthread_mutex_lock(&m->lock);
	bool h = gpa / PAGE >= m->hidden_first && gpa / PAGE < m->hidden_end;
	pthread_mutex_unlock(&m->lock);
	return h;
}

unsigned vtl_mem_prot(struct vtl_mem *m, uint64_t gpa)
{
	uint64_t p = gpa / PAGE;
	unsigned prot = VTL_MEM_FULL;
	pthread_mutex_lock(&m->lock);
	unsigned lo = 0, hi = m->nr;
	while (lo < hi) { /* first range with end > p */
		unsigned mid = lo + (hi - lo) / 2;
		if (m->r[mid].end <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->nr && m->r[lo].first <= p)
		prot = m->r[lo].prot;
	pthread_mutex_unlock(&m->lock);
	return prot;
}

int vtl_mem_slots(struct vtl_mem *m, struct vtl_mem_slot *out, unsigned cap)
{
	pthread_mutex_lock(&m->lock);
	unsigned n = compute_slots(m, m->r, m->nr, out, cap);
	pthread_mutex_unlock(&m->lock);
	return n > cap ? -ENOSPC : (int)n;
}

static bool same_slot(const struct vtl_mem_slot *a, const struct vtl_mem_slot *b)
{
	return a->gpa == b->gpa && a->size == b->size && a->readonly == b->readonly &&
	       a->region == b->region;
}

int vtl_mem_apply(struct vtl_mem *m, const struct accel_ops *ops, struct accel *a)
{
	struct vtl_mem_slot want[VTL_MEM_MAX_SLOTS];
	bool kept[VTL_MEM_MAX_SLOTS] = { false };
	int ret = 0;
	pthread_mutex_lock(&m->lock);
	unsigned n = compute_slots(m, m->r, m->nr, want, m->max_slots);
	if (n > m->max_slots) {
		ret = -ENOSPC; /* vtl_mem_set keeps this from happening */
		goto out;
	}
	/* Unmap what is not wanted as it is. */
	for (unsigned s = 0; s < m->max_slots; s++) {
		if (!m->used[s])
			continue;
		bool keep = false;
		for (unsigned i = 0; i < n && !keep; i++)
			if (!kept[i] && same_slot(&m->applied[s], &want[i]))
				keep = kept[i] = true;
		if (keep)
			continue;
		ret = ops->unmap_memory(a, s);
		if (ret < 0) {
			log_error("vtl: cannot remove VTL0 memory slot %u: %s", s, strerror(-ret));
			goto out;
		}
		m->used[s] = false;
	}
	/* Map the new ones into free ids. */
	unsigned s = 0;
	for (unsigned i = 0; i < n; i++) {
		if (kept[i])
			continue;
		while (s < m->max_slots && m->used[s])
			s++;
		if (s == m->max_slots) {
			ret = -ENOSPC;
			goto out;
		}
		const struct gmem_region *r = &m->ram[want[i].region];
		ret = ops->map_memory(a, s, want[i].gpa, want[i].size,
				      r->hva + (want[i].gpa - r->gpa), want[i].readonly);
		if (ret < 0) {
			log_error("vtl: cannot map VTL0 memory 0x%" PRIx64 "+0x%" PRIx64 "%s: %s",
				  want[i].gpa, want[i].size, want[i].readonly ? " read-only" : "",
				  strerror(-ret));
			goto out;
		}
		m->applied[s] = want[i];
		m->used[s] = true;
	}
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

unsigned vtl_mem_mov_len(const uint8_t *b, unsigned n, unsigned *modrm_at, int64_t *disp)
{
	unsigned i = 0;
	bool opsize = false;
	while (i < n && i < 14 && (b[i] == 0x66 || b[i] == 0x67 || b[i] == 0x2E || b[i] == 0x36 ||
				   b[i] == 0x3E || b[i] == 0x26 || b[i] == 0x64 || b[i] == 0x65)) {
		opsize |= b[i] == 0x66;
		i++;
	}
	bool rexw = false;
	if (i < n && (b[i] & 0xF0) == 0x40) {
		rexw = b[i] & 8;
		i++;
	}
	if (i >= n)
		return 0;
	uint8_t op = b[i++];
	unsigned imm;
	switch (op) {
	case 0x88: case 0x89: case 0x8A: case 0x8B:
		imm = 0;
		break;
	case 0xC6:
		imm = 1;
		break;
	case 0xC7:
		imm = opsize && !rexw ? 2 : 4;
		break;
	default:
		return 0;
	}
	if (i >= n)
		return 0;
	*modrm_at = i;
	uint8_t modrm = b[i++];
	unsigned mod = modrm >> 6, rm = modrm & 7;
	if (mod == 3 || ((op == 0xC6 || op == 0xC7) && ((modrm >> 3) & 7)))
		return 0;   /* register operand, or not MOV */
	unsigned dlen = mod == 1 ? 1 : mod == 2 ? 4 : 0;
	if (rm == 4) {
		if (i >= n)
			return 0;
		uint8_t sib = b[i++];
		if (mod == 0 && (sib & 7) == 5)
			dlen = 4;
	} else if (mod == 0 && rm == 5) {
		dlen = 4;   /* RIP-relative */
	}
	if (i + dlen + imm > n || i + dlen + imm > 15)
		return 0;
	*disp = 0;
	if (dlen == 1) {
		*disp = (int8_t)b[i];
	} else if (dlen == 4) {
		int32_t d;
		memcpy(&d, b + i, 4);
		*disp = d;
	}
	return i + dlen + imm;
}

bool vtl_mem_mov_ea(const uint8_t *b, unsigned len, const uint64_t gpr[16], uint64_t next_rip,
		    uint64_t *ea)
{
	unsigned at;
	int64_t disp;
	if (vtl_mem_mov_len(b, len, &at, &disp) != len)
		return false;
	uint8_t rex = 0;
	bool addr32 = false;
	for (unsigned i = 0; i < at - 1; i++) {
		if (b[i] == 0x64 || b[i] == 0x65)
			return false;   /* FS/GS base: not known here */
		addr32 |= b[i] == 0x67;
		if ((b[i] & 0xF0) == 0x40)
			rex = b[i];
	}
	uint8_t modrm = b[at];
	unsigned mod = modrm >> 6, rm = modrm & 7;
	uint64_t a;
	if (rm == 4) {
		uint8_t sib = b[at + 1];
		unsigned base = (sib & 7) | ((rex & 1) << 3);
		unsigned index = ((sib >> 3) & 7) | ((rex & 2) << 2);
		a = (mod == 0 && (sib & 7) == 5) ? 0 : gpr[base];
		if (index != 4)
			a += gpr[index] << (sib >> 6);
	} else if (mod == 0 && rm == 5) {
		a = next_rip;
	} else {
		a = gpr[rm | ((rex & 1) << 3)];
	}
	a += (uint64_t)disp;
	*ea = addr32 ? (uint32_t)a : a;
	return true;
}

int vtl_mem_igvm_range(const uint8_t *buf, size_t len, uint64_t *base, uint64_t *size)
{
	struct igvm_file f;
	char err[160];
	*base = *size = 0;
	if (igvm_open(&f, buf, len, err, sizeof(err)) < 0)
		return -EINVAL;
	uint32_t mask = igvm_platform_mask(&f, IGVM_PLATFORM_VSM_ISOLATION);
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	uint64_t lo = UINT64_MAX, hi = 0;
	while (mask && igvm_next(&f, &it, &h)) {
		if (h.type != IGVM_VHT_REQUIRED_MEMORY || !igvm_hdr_applies(&h, mask) ||
		    !(h.u.mem.flags & IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE) || !h.u.mem.size ||
		    h.u.mem.gpa + h.u.mem.size < h.u.mem.gpa)
			continue;
		if (h.u.mem.gpa < lo)
			lo = h.u.mem.gpa;
		if (h.u.mem.gpa + h.u.mem.size > hi)
			hi = h.u.mem.gpa + h.u.mem.size;
	}
	if (hi > lo) {
		*base = lo;
		*size = hi - lo;
	}
	return 0;
}

uint64_t vtl_mem_vtl2_ram_base(const struct gmem *g, uint64_t align)
{
	uint64_t end = GMEM_4G;
	for (unsigned i = 0; i < g->nregions; i++)
		if (g->regions[i].gpa + g->regions[i].size > end)
			end = g->regions[i].gpa + g->regions[i].size;
	if (align < PAGE || (align & (align - 1)))
		align = PAGE;
	if (end + align - 1 < end)
		return 0;
	return (end + align - 1) & ~(align - 1);
}
