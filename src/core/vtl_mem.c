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

/*
 * After a memory-form ModRM byte (mod != 3) at b[i - 1]: its SIB byte if
 * any and its displacement (into *disp). Returns the index after them, or
 * 0 when b[0..n) ends first.
 */
static unsigned modrm_tail(const uint8_t *b, unsigned n, unsigned i, uint8_t modrm, int64_t *disp)
{
	unsigned mod = modrm >> 6, rm = modrm & 7;
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
	if (i + dlen > n)
		return 0;
	*disp = 0;
	if (dlen == 1) {
		*disp = (int8_t)b[i];
	} else if (dlen == 4) {
		int32_t d;
		memcpy(&d, b + i, 4);
		*disp = d;
	}
	return i + dlen;
}

/* The address of the ModRM memory operand at b[at] (SIB after it), 64-bit or addr32. */
static uint64_t modrm_ea(const uint8_t *b, unsigned at, uint8_t rex, int64_t disp, bool addr32,
			 const uint64_t gpr[16], uint64_t next_rip)
{
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
	return addr32 ? (uint32_t)a : a;
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
	if ((modrm >> 6) == 3 || ((op == 0xC6 || op == 0xC7) && ((modrm >> 3) & 7)))
		return 0;   /* register operand, or not MOV */
	i = modrm_tail(b, n, i, modrm, disp);
	if (!i || i + imm > n || i + imm > 15)
		return 0;
	return i + imm;
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
	*ea = modrm_ea(b, at, rex, disp, addr32, gpr, next_rip);
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

/* Operand size from the prefixes: 66 -> 2, REX.W -> 8, else 4 (1 for byte forms). */
static unsigned osize(bool byte, bool op16, uint8_t rex)
{
	return byte ? 1 : (rex & 8) ? 8 : op16 ? 2 : 4;
}

unsigned vtl_mem_decode(const uint8_t *b, unsigned n, struct vtl_mem_insn *d)
{
	memset(d, 0, sizeof(*d));
	unsigned i = 0;
	bool op16 = false, rep = false;
	uint8_t rex = 0;
	if (n > 15)
		n = 15;
	for (; i < n; i++) {
		uint8_t p = b[i];
		if (p == 0x66 || p == 0x67 || p == 0xF0 || p == 0xF2 || p == 0xF3 || p == 0x2E ||
		    p == 0x36 || p == 0x3E || p == 0x26 || p == 0x64 || p == 0x65) {
			op16 |= p == 0x66;
			d->addr32 |= p == 0x67;
			rep |= p == 0xF2 || p == 0xF3;
			d->fs_gs |= p == 0x64 || p == 0x65;
			rex = 0; /* a REX counts only right before the opcode */
			continue;
		}
		if ((p & 0xF0) == 0x40) {
			rex = p;
			continue;
		}
		break;
	}
	if (i >= n)
		return 0;
	d->rex = rex;
	uint8_t op = b[i++];
	unsigned imm = 0;
	bool modrm = true;
	if (op == 0x0F) {
		if (i >= n)
			return 0;
		d->twobyte = true;
		op = b[i++];
	}
	d->opcode = op;
	if (d->twobyte) {
		if (op >= 0x90 && op <= 0x9F) {             /* SETcc r/m8 */
			d->op = VTL_MEM_OP_MOV, d->size = 1;
		} else if (op == 0xC3) {                    /* MOVNTI */
			d->op = VTL_MEM_OP_MOV, d->size = osize(false, false, rex);
		} else if (op == 0xC0 || op == 0xC1 || op == 0xB0 || op == 0xB1) {
			d->op = VTL_MEM_OP_RMW, d->size = osize(!(op & 1), op16, rex); /* XADD, CMPXCHG */
		} else if (op == 0xBA) {                    /* BTS/BTR/BTC r/m, imm8 (checked below) */
			d->op = VTL_MEM_OP_RMW, d->size = osize(false, op16, rex), imm = 1;
		} else {
			return 0;
		}
	} else if (op == 0x88 || op == 0x89 || op == 0x8A || op == 0x8B) {
		d->op = VTL_MEM_OP_MOV, d->size = osize(!(op & 1), op16, rex);
	} else if (op == 0xC6 || op == 0xC7) {
		d->op = VTL_MEM_OP_MOV, d->size = osize(op == 0xC6, op16, rex);
		imm = d->size > 4 ? 4 : d->size;
	} else if (op == 0xA4 || op == 0xA5 || op == 0xAA || op == 0xAB) {
		d->op = VTL_MEM_OP_STRING, d->size = osize(!(op & 1), op16, rex);
		d->rep = rep, d->movs = op < 0xA8, modrm = false;
	} else if (op < 0x40 && (op & 7) <= 1 && (op & 0x38) != 0x38) {
		d->op = VTL_MEM_OP_RMW, d->size = osize(!(op & 1), op16, rex); /* ALU r/m, reg */
	} else if (op == 0x80 || op == 0x81 || op == 0x83) {
		d->op = VTL_MEM_OP_RMW, d->size = osize(op == 0x80, op16, rex);
		imm = op == 0x81 ? (d->size > 4 ? 4 : d->size) : 1;
	} else if (op == 0x86 || op == 0x87) {
		d->op = VTL_MEM_OP_RMW, d->size = osize(op == 0x86, op16, rex); /* XCHG */
	} else if (op == 0xF6 || op == 0xF7 || op == 0xFE || op == 0xFF) {
		d->op = VTL_MEM_OP_RMW, d->size = osize(!(op & 1), op16, rex); /* checked below */
	} else if (op == 0xC0 || op == 0xC1 || (op >= 0xD0 && op <= 0xD3)) {
		d->op = VTL_MEM_OP_RMW, d->size = osize(!(op & 1), op16, rex); /* shifts, rotates */
		imm = op < 0xD0;
	} else {
		return 0;
	}
	if (modrm) {
		if (i >= n)
			return 0;
		d->modrm_at = i;
		uint8_t m = b[i++];
		unsigned mod = m >> 6, r = (m >> 3) & 7;
		d->reg = r | ((rex & 4) << 1);
		if (mod == 3)
			return 0; /* a register operand: no memory */
		if (((op == 0xC6 || op == 0xC7) && !d->twobyte && r) ||
		    (d->twobyte && op == 0xBA && r < 5) ||
		    (!d->twobyte && (op == 0x80 || op == 0x81 || op == 0x83) && r == 7) ||
		    (!d->twobyte && (op == 0xF6 || op == 0xF7) && r != 2 && r != 3) ||
		    (!d->twobyte && (op == 0xFE || op == 0xFF) && r > 1))
			return 0; /* not a store (or not this instruction) */
		i = modrm_tail(b, n, i, b[d->modrm_at], &d->disp);
		if (!i || i + imm > n)
			return 0;
	}
	if (i + imm > n)
		return 0;
	uint64_t v = 0;
	for (unsigned k = 0; k < imm; k++)
		v |= (uint64_t)b[i + k] << (8 * k);
	if (imm && imm < 8 && (v >> (8 * imm - 1)) & 1)
		v |= ~0ull << (8 * imm); /* sign-extended */
	d->imm = v;
	d->len = i + imm;
	return d->len;
}

static uint64_t mask_of(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* Register `r` as an operand of `size` bytes (AH..BH for 4-7 without REX). */
static uint64_t reg_get(const uint64_t gpr[16], unsigned r, unsigned size, uint8_t rex)
{
	if (size == 1 && !rex && r >= 4 && r < 8)
		return (gpr[r - 4] >> 8) & 0xff;
	return gpr[r & 15] & mask_of(size);
}

/* Writes it as the CPU does (32-bit writes zero the upper half). */
static void reg_set(uint64_t gpr[16], unsigned r, unsigned size, uint8_t rex, uint64_t v)
{
	if (size == 1 && !rex && r >= 4 && r < 8) {
		gpr[r - 4] = (gpr[r - 4] & ~0xff00ull) | (v & 0xff) << 8;
		return;
	}
	if (size == 4)
		gpr[r & 15] = (uint32_t)v;
	else
		gpr[r & 15] = (gpr[r & 15] & ~mask_of(size)) | (v & mask_of(size));
}

bool vtl_mem_insn_ea(const struct vtl_mem_insn *d, const uint8_t *b, const uint64_t gpr[16],
		     uint64_t next_rip, bool write, uint64_t *ea)
{
	if (d->fs_gs || !d->len)
		return false; /* FS/GS base: not known here */
	if (d->op == VTL_MEM_OP_STRING) {
		uint64_t a = d->movs && !write ? gpr[6] : gpr[7]; /* RSI source, RDI destination */
		*ea = d->addr32 ? (uint32_t)a : a;
		return true;
	}
	*ea = modrm_ea(b, d->modrm_at, d->rex, d->disp, d->addr32, gpr, next_rip);
	return true;
}

#define RFLAGS_CF 1ull
#define RFLAGS_DF (1ull << 10)

bool vtl_mem_undo(const struct vtl_mem_insn *d, uint64_t gpr[16], uint64_t *rflags, uint64_t data,
		  uint64_t old)
{
	unsigned size = d->size, bits = 8 * size;
	uint64_t m = mask_of(size);
	data &= m, old &= m;
	if (d->op == VTL_MEM_OP_MOV)
		return true;
	if (d->op == VTL_MEM_OP_STRING) {
		uint64_t step = *rflags & RFLAGS_DF ? (uint64_t)-(int64_t)size : size;
		unsigned as = d->addr32 ? 4 : 8;
		reg_set(gpr, 7, as, 0x40, gpr[7] - step);
		if (d->movs)
			reg_set(gpr, 6, as, 0x40, gpr[6] - step);
		if (d->rep)
			reg_set(gpr, 1, as, 0x40, gpr[1] + 1);
		return true;
	}
	uint8_t op = d->opcode;
	if (d->twobyte) {
		if (op == 0xC0 || op == 0xC1) /* XADD: reg got old; memory was to get old + reg */
			reg_set(gpr, d->reg, size, d->rex, data - old);
		return true; /* CMPXCHG writes only when it succeeded: RAX unchanged; BTx, SETcc */
	}
	if (op == 0x86 || op == 0x87) { /* XCHG: the value written was the register's */
		reg_set(gpr, d->reg, size, d->rex, data);
		return true;
	}
	/* ADC/SBB consume CF: it follows from the operands and the result. */
	bool alu = op < 0x40, grp1 = op == 0x80 || op == 0x81 || op == 0x83;
	unsigned kind = alu ? op >> 3 : grp1 ? d->reg & 7 : 8;
	if (kind == 2 || kind == 3) {
		uint64_t src = (alu ? reg_get(gpr, d->reg, size, d->rex) : d->imm) & m;
		uint64_t cf = (kind == 2 ? data - old - src : old - src - data) & m;
		if (cf > 1)
			return false; /* not what ADC/SBB of these operands gives */
		*rflags = (*rflags & ~RFLAGS_CF) | cf;
		return true;
	}
	/* RCL/RCR consume CF: it is in the result where the rotation put it. */
	if ((op == 0xC0 || op == 0xC1 || op >= 0xD0) && op <= 0xD3 &&
	    ((d->reg & 7) == 2 || (d->reg & 7) == 3)) {
		unsigned c = op >= 0xD2 ? (unsigned)gpr[1] & 0xff : op >= 0xD0 ? 1 : (unsigned)d->imm & 0xff;
		c &= size == 8 ? 0x3f : 0x1f;
		if (size < 4)
			c %= bits + 1;
		if (c == 0)
			return true;
		uint64_t cf = (d->reg & 7) == 2 ? data >> (c - 1) : data >> (bits - c);
		*rflags = (*rflags & ~RFLAGS_CF) | (cf & 1);
		return true;
	}
	return true; /* other RMW forms: registers unchanged, flags rewritten when re-run */
}
