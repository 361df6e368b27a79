/*
 * Two pure helpers of the VSM layer: the guest page-table walk behind
 * HvTranslateVirtualAddress(Ex) (x86-64 4-level paging, SDM vol. 3 §4.5, with
 * the TLFS's validate/privilege flags and HV_TRANSLATE_GVA_RESULT_CODEs), and
 * the intercept messages VTL2 receives about VTL0 (TLFS "Intercepts":
 * HV_X64_INTERCEPT_MESSAGE_HEADER, HV_X64_IO_PORT_INTERCEPT_MESSAGE,
 * HV_X64_MSR_INTERCEPT_MESSAGE, HV_X64_MEMORY_INTERCEPT_MESSAGE and the
 * hypercall intercept used for unknown SynIC connections and retargets of
 * unknown devices, and HV_X64_APIC_EOI_MESSAGE; layouts in shared/docs/igvm-and-vsm.md §C.8), each built
 * as a 256-byte HV_MESSAGE, and whether VTL2 asked for the retarget one
 * (the other intercept requests are read in vsm.c).
 */
#include "hv/vsm_impl.h"

#include <stddef.h>
#include <string.h>

/* ---- Page-table walk ---- */

#define PTE_P    (1ull << 0)
#define PTE_W    (1ull << 1)
#define PTE_U    (1ull << 2)
#define PTE_A    (1ull << 5)
#define PTE_D    (1ull << 6)
#define PTE_PS   (1ull << 7)
#define PTE_NX   (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
#define CR0_PE   (1ull << 0)
#define CR0_WP   (1ull << 16)
#define CR0_PG   (1ull << 31)
#define CR4_PAE  (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

unsigned vsm_translate_gva(const struct vsm_ops *ops, const struct vsm_regs *r,
			   uint64_t gva, uint64_t flags, uint64_t *gpa)
{
	if (!(r->cr0 & CR0_PG)) {
		*gpa = gva & 0xffffffffull;   /* paging off: physical = linear (32-bit) */
		return HV_TRANSLATE_GVA_SUCCESS;
	}
	if (!(r->efer & EFER_LMA) || !(r->cr4 & CR4_PAE) || (r->cr4 & CR4_LA57))
		return HV_TRANSLATE_GVA_INVALID_PAGE_TABLE_FLAGS;
	/* Canonical 48-bit addresses only. */
	uint64_t top = gva >> 47;
	if (top != 0 && top != 0x1ffff)
		return HV_TRANSLATE_GVA_INVALID_PAGE_TABLE_FLAGS;

	bool want_w = flags & HV_TRANSLATE_GVA_VALIDATE_WRITE;
	bool want_x = flags & HV_TRANSLATE_GVA_VALIDATE_EXECUTE;
	bool user = flags & HV_TRANSLATE_GVA_USER_ACCESS;
	bool exempt = flags & HV_TRANSLATE_GVA_PRIVILEGE_EXEMPT;
	bool set_bits = flags & HV_TRANSLATE_GVA_SET_PAGE_TABLE_BITS;
	uint64_t table = r->cr3 & PTE_ADDR;
	bool writable = true, usr = true, nx = false;
	for (int level = 3; level >= 0; level--) {
		unsigned idx = (unsigned)((gva >> (12 + 9 * level)) & 0x1ff);
		uint64_t ea = table + idx * 8ull, e;
		if (ops->read_gpa(ops->opaque, ea, &e, 8))
			return HV_TRANSLATE_GVA_GPA_UNMAPPED;
		if (!(e & PTE_P))
			return HV_TRANSLATE_GVA_PAGE_NOT_PRESENT;
		bool large = (e & PTE_PS) && (level == 1 || level == 2);
		if ((e & PTE_PS) && level == 3)
			return HV_TRANSLATE_GVA_INVALID_PAGE_TABLE_FLAGS;
		if ((e & PTE_NX) && !(r->efer & EFER_NXE))
			return HV_TRANSLATE_GVA_INVALID_PAGE_TABLE_FLAGS;
		writable = writable && (e & PTE_W);
		usr = usr && (e & PTE_U);
		nx = nx || ((e & PTE_NX) && (r->efer & EFER_NXE));
		bool leaf = level == 0 || large;
		if (set_bits) {
			uint64_t ne = e | PTE_A | (leaf && want_w ? PTE_D : 0);
			if (ne != e)
				ops->write_gpa(ops->opaque, ea, &ne, 8);
		}
		if (!leaf) {
			table = e & PTE_ADDR;
			continue;
		}
		uint64_t page_mask = (1ull << (12 + 9 * level)) - 1;
		if (large && (e & PTE_ADDR & page_mask & ~0x1000ull))
			return HV_TRANSLATE_GVA_INVALID_PAGE_TABLE_FLAGS; /* reserved bits */
		if (!exempt) {
			if (user && !usr)
				return HV_TRANSLATE_GVA_PRIVILEGE_VIOLATION;
			/* Supervisor writes ignore R/W only with CR0.WP clear. */
			if (want_w && !writable && (user || (r->cr0 & CR0_WP)))
				return HV_TRANSLATE_GVA_PRIVILEGE_VIOLATION;
			if (want_x && nx)
				return HV_TRANSLATE_GVA_PRIVILEGE_VIOLATION;
		}
		*gpa = ((e & PTE_ADDR) & ~page_mask) | (gva & page_mask);
		return HV_TRANSLATE_GVA_SUCCESS;
	}
	return HV_TRANSLATE_GVA_INVALID_PAGE_TABLE_FLAGS; /* not reached */
}

/* ---- Intercept messages ---- */

struct hv_io_port_intercept {
	struct hv_x64_intercept_header h;
	uint16_t port;
	uint8_t access_info;          /* bits 0-2 size in bytes, 3 string, 4 rep */
	uint8_t instruction_byte_count;
	uint32_t reserved;
	uint64_t rax;
	uint8_t instruction_bytes[16];
	struct hv_x64_segment ds, es;
	uint64_t rcx, rsi, rdi;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_io_port_intercept) == 128, "HV_X64_IO_PORT_INTERCEPT_MESSAGE");

struct hv_msr_intercept {
	struct hv_x64_intercept_header h;
	uint32_t msr;
	uint32_t reserved;
	uint64_t rdx, rax;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_msr_intercept) == 64, "HV_X64_MSR_INTERCEPT_MESSAGE");

struct hv_memory_intercept {
	struct hv_x64_intercept_header h;
	uint32_t cache_type;
	uint8_t instruction_byte_count;
	uint8_t access_info;          /* gva_valid 0, gva_gpa_valid 1 */
	uint8_t tpr_priority;
	uint8_t reserved;
	uint64_t gva, gpa;
	uint8_t instruction_bytes[16];
} __attribute__((packed));
_Static_assert(sizeof(struct hv_memory_intercept) == 80, "HV_X64_MEMORY_INTERCEPT_MESSAGE");

struct hv_hypercall_intercept {
	struct hv_x64_intercept_header h;
	uint64_t rax, rbx, rcx, rdx, r8, rsi, rdi;
	uint64_t xmm[12];      /* XMM0-5, 16-byte aligned at 96 */
	uint32_t flags;        /* bit 0: is_isolated */
	uint32_t reserved[3];  /* pads to the 16-byte alignment of the XMM values */
} __attribute__((packed));
_Static_assert(sizeof(struct hv_hypercall_intercept) == 208, "HV_X64_HYPERCALL_INTERCEPT_MESSAGE");
_Static_assert(offsetof(struct hv_hypercall_intercept, xmm) == 96, "XMM0");

static void header(struct hv_x64_intercept_header *h, const struct vsm_intercept_ctx *c)
{
	const struct vsm_regs *r = c->regs;
	memset(h, 0, sizeof(*h));
	h->vp_index = c->vp;
	h->instruction_length_cr8 = (uint8_t)((c->insn_len & 0xf) | (r->cr8 & 0xf) << 4);
	h->intercept_access_type = c->access;
	uint16_t es = (uint16_t)(c->cpl & 3);
	es |= (r->cr0 & CR0_PE) ? 1u << 2 : 0;
	es |= (r->cr0 & (1ull << 18)) ? 1u << 3 : 0;   /* CR0.AM */
	es |= (r->efer & EFER_LMA) ? 1u << 4 : 0;
	es |= (r->dr7 & 0xff) ? 1u << 5 : 0;           /* debug active */
	es |= c->interruption_pending ? 1u << 6 : 0;
	es |= (uint16_t)((c->vtl & 0xf) << 7);
	es |= c->interrupt_shadow ? 1u << 12 : 0;
	h->execution_state = es;
	h->cs = r->cs;
	h->rip = r->rip;
	h->rflags = r->rflags;
}

static void message(uint8_t msg[HV_MESSAGE_SIZE], uint32_t type, const void *payload,
		    size_t len)
{
	memset(msg, 0, HV_MESSAGE_SIZE);
	memcpy(msg, &type, 4);
	msg[4] = (uint8_t)len;
	memcpy(msg + 16, payload, len);
}

static uint8_t copy_insn(uint8_t dst[16], const struct vsm_intercept_ctx *c)
{
	uint8_t n = c->insn_count > 16 ? 16 : c->insn_count;
	memcpy(dst, c->insn, n);
	return n;
}

void vsm_msg_io_port(uint8_t msg[HV_MESSAGE_SIZE], const struct vsm_intercept_ctx *c,
		     uint16_t port, uint8_t size, bool string, bool rep, uint64_t rax)
{
	struct hv_io_port_intercept m;
	memset(&m, 0, sizeof(m));
	header(&m.h, c);
	m.port = port;
	m.access_info = (uint8_t)((size & 7) | (string ? 8 : 0) |
				  (rep ? 16 : 0));
	m.instruction_byte_count = copy_insn(m.instruction_bytes, c);
	m.rax = rax;
	m.ds = c->regs->ds;
	m.es = c->regs->es;
	m.rcx = c->regs->gpr[1];
	m.rsi = c->regs->gpr[6];
	m.rdi = c->regs->gpr[7];
	message(msg, HV_MESSAGE_TYPE_X64_IO_PORT_INTERCEPT, &m, sizeof(m));
}

void vsm_msg_msr(uint8_t msg[HV_MESSAGE_SIZE], const struct vsm_intercept_ctx *c,
		 uint32_t msr, uint64_t rdx, uint64_t rax)
{
	struct hv_msr_intercept m;
	memset(&m, 0, sizeof(m));
	header(&m.h, c);
	m.msr = msr;
	m.rdx = rdx;
	m.rax = rax;
	message(msg, HV_MESSAGE_TYPE_MSR_INTERCEPT, &m, sizeof(m));
}

void vsm_msg_memory(uint8_t msg[HV_MESSAGE_SIZE], const struct vsm_intercept_ctx *c,
		    bool unmapped, uint64_t gpa, uint64_t gva, bool gva_valid)
{
	struct hv_memory_intercept m;
	memset(&m, 0, sizeof(m));
	header(&m.h, c);
	m.cache_type = 6;   /* write-back */
	m.instruction_byte_count = copy_insn(m.instruction_bytes, c);
	m.access_info = gva_valid ? 3 : 0;
	m.tpr_priority = (uint8_t)(c->regs->cr8 & 0xf);
	m.gva = gva_valid ? gva : 0;
	m.gpa = gpa;
	message(msg, unmapped ? HV_MESSAGE_TYPE_UNMAPPED_GPA : HV_MESSAGE_TYPE_GPA_INTERCEPT, &m,
		sizeof(m));
}

void vsm_msg_hypercall(uint8_t msg[HV_MESSAGE_SIZE], const struct vsm_intercept_ctx *c,
		       const uint64_t xmm[12])
{
	struct hv_hypercall_intercept m;
	memset(&m, 0, sizeof(m));
	header(&m.h, c);
	const uint64_t *g = c->regs->gpr;
	m.rax = g[0];
	m.rcx = g[1];
	m.rdx = g[2];
	m.rbx = g[3];
	m.rsi = g[6];
	m.rdi = g[7];
	m.r8 = g[8];
	if (xmm)
		memcpy(m.xmm, xmm, sizeof(m.xmm));
	message(msg, HV_MESSAGE_TYPE_HYPERCALL_INTERCEPT, &m, sizeof(m));
}

/* HV_X64_APIC_EOI_MESSAGE (8 bytes): no intercept header. */
struct hv_apic_eoi {
	uint32_t vp_index;
	uint32_t interrupt_vector;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_apic_eoi) == 8, "HV_X64_APIC_EOI_MESSAGE");

void vsm_msg_apic_eoi(uint8_t msg[HV_MESSAGE_SIZE], uint32_t vp, uint8_t vector)
{
	struct hv_apic_eoi m = { .vp_index = vp, .interrupt_vector = vector };
	message(msg, HV_MESSAGE_TYPE_X64_APIC_EOI, &m, sizeof(m));
}
