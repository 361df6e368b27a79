/*
 * Freestanding VTL2 runtime (TLFS "Virtual Secure Mode"): VTL0 bring-up,
 * VtlReturn with VTL0's registers, protections, intercept messages. The
 * contract is in vtl2_rt.h.
 */
#include "vtl2_rt.h"
#include "guest.h"

u64 vtl2_rt_vtl0_gprs[VTL2_RT_NGPRS];
void *vtl2_rt_stub;

__asm__(
	".text\n"
	".globl vtl2_rt_return\n"
	"vtl2_rt_return:\n"
	"	push %rbx\n"
	"	push %rbp\n"
	"	push %r12\n"
	"	push %r13\n"
	"	push %r14\n"
	"	push %r15\n"
	"	mov %rdi, vtl2_rt_stub\n"
	"	mov vtl2_rt_vtl0_gprs + 0, %rbx\n"
	"	mov vtl2_rt_vtl0_gprs + 8, %rdx\n"
	"	mov vtl2_rt_vtl0_gprs + 16, %rsi\n"
	"	mov vtl2_rt_vtl0_gprs + 24, %rdi\n"
	"	mov vtl2_rt_vtl0_gprs + 32, %rbp\n"
	"	mov vtl2_rt_vtl0_gprs + 40, %r8\n"
	"	mov vtl2_rt_vtl0_gprs + 48, %r9\n"
	"	mov vtl2_rt_vtl0_gprs + 56, %r10\n"
	"	mov vtl2_rt_vtl0_gprs + 64, %r11\n"
	"	mov vtl2_rt_vtl0_gprs + 72, %r12\n"
	"	mov vtl2_rt_vtl0_gprs + 80, %r13\n"
	"	mov vtl2_rt_vtl0_gprs + 88, %r14\n"
	"	mov vtl2_rt_vtl0_gprs + 96, %r15\n"
	"	mov $1, %ecx\n"               /* fast VtlReturn */
	"	call *vtl2_rt_stub\n"
	"	mov %rbx, vtl2_rt_vtl0_gprs + 0\n"
	"	mov %rdx, vtl2_rt_vtl0_gprs + 8\n"
	"	mov %rsi, vtl2_rt_vtl0_gprs + 16\n"
	"	mov %rdi, vtl2_rt_vtl0_gprs + 24\n"
	"	mov %rbp, vtl2_rt_vtl0_gprs + 32\n"
	"	mov %r8, vtl2_rt_vtl0_gprs + 40\n"
	"	mov %r9, vtl2_rt_vtl0_gprs + 48\n"
	"	mov %r10, vtl2_rt_vtl0_gprs + 56\n"
	"	mov %r11, vtl2_rt_vtl0_gprs + 64\n"
	"	mov %r12, vtl2_rt_vtl0_gprs + 72\n"
	"	mov %r13, vtl2_rt_vtl0_gprs + 80\n"
	"	mov %r14, vtl2_rt_vtl0_gprs + 88\n"
	"	mov %r15, vtl2_rt_vtl0_gprs + 96\n"
	"	pop %r15\n"
	"	pop %r14\n"
	"	pop %r13\n"
	"	pop %r12\n"
	"	pop %rbp\n"
	"	pop %rbx\n"
	"	ret\n");

u64 vtl2_rt_seg(u32 limit, u16 sel, u16 attr)
{
	return limit | (u64)sel << 32 | (u64)attr << 48;
}

#define REG_RIP    0x00020010u
#define REG_RSP    0x00020004u
#define REG_RFLAGS 0x00020011u
#define REG_CR0    0x00040000u
#define REG_CR3    0x00040002u
#define REG_CR4    0x00040003u
#define REG_EFER   0x00080001u
#define REG_ES     0x00060000u
#define REG_CS     0x00060001u
#define REG_SS     0x00060002u
#define REG_DS     0x00060003u
#define REG_TR     0x00060007u
#define REG_IDTR   0x00070000u
#define REG_GDTR   0x00070001u

struct dt {
	u16 limit;
	u64 base;
} __attribute__((packed));

u16 vtl2_rt_setup_vtl0(const struct hvcall *h, u64 area, u64 entry, u64 stack_top)
{
	u64 *pml4 = (u64 *)area, *pdpt = (u64 *)(area + 0x1000), *pd = (u64 *)(area + 0x2000);
	memset(pml4, 0, 0x3000);
	pml4[0] = (area + 0x1000) | 0x7;           /* present, writable, user */
	pdpt[0] = (area + 0x2000) | 0x7;
	for (u64 i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x87;              /* 2 MiB, present, writable, user */
	struct dt gdt, idt;
	u16 cs, ss;
	__asm__ volatile("sgdt %0; sidt %1; mov %%cs, %2; mov %%ss, %3"
			 : "=m"(gdt), "=m"(idt), "=r"(cs), "=r"(ss));
	u8 *g0 = (u8 *)(area + 0x3000);
	memset(g0, 0, 0x1000);
	memcpy(g0, (const void *)gdt.base, gdt.limit + 1u <= 0x1000 ? gdt.limit + 1u : 0x1000);
	const struct vtl2_rt_reg r[] = {
		{ REG_CR0, read_cr0(), 0 }, { REG_CR3, area, 0 }, { REG_CR4, read_cr4(), 0 },
		{ REG_EFER, rdmsr(0xC0000080u), 0 },
		{ REG_GDTR, (u64)gdt.limit << 48, area + 0x3000 }, { REG_IDTR, 0, 0 },
		{ REG_CS, 0, vtl2_rt_seg(0xffffffff, cs, 0xa09b) },
		{ REG_SS, 0, vtl2_rt_seg(0xffffffff, ss, 0xc093) },
		{ REG_DS, 0, vtl2_rt_seg(0xffffffff, ss, 0xc093) },
		{ REG_ES, 0, vtl2_rt_seg(0xffffffff, ss, 0xc093) },
		{ REG_TR, 0, vtl2_rt_seg(0x67, 0, 0x008b) },
		{ REG_RSP, stack_top, 0 }, { REG_RFLAGS, 0x2, 0 }, { REG_RIP, entry, 0 },
	};
	return vtl2_rt_set_vtl0(h, r, sizeof(r) / sizeof(r[0]));
}

u16 vtl2_rt_set_vtl0(const struct hvcall *h, const struct vtl2_rt_reg *r, u16 n)
{
	u16 done = 0;
	u64 self = HVL_PARTITION_SELF;
	u32 vp = HVL_VP_SELF;
	memset(h->in, 0, 16 + 32 * (size_t)n);
	memcpy(h->in, &self, 8);
	memcpy(h->in + 8, &vp, 4);
	h->in[12] = HVL_VTL(0);
	for (u16 i = 0; i < n; i++) {
		u8 *e = h->in + 16 + 32 * (size_t)i;
		memcpy(e, &r[i].name, 4);
		memcpy(e + 16, &r[i].lo, 8);
		memcpy(e + 24, &r[i].hi, 8);
	}
	u16 st = hvcall_rep(h, HVL_CALL_SET_VP_REGISTERS, n, 0, &done);
	return st ? st : done == n ? 0 : HVL_STATUS_INVALID_PARAMETER;
}

u16 vtl2_rt_protect(const struct hvcall *h, u64 first_page, u16 n, u32 flags)
{
	if (n == 0 || n > 64)
		return HVL_STATUS_INVALID_PARAMETER;
	u64 self = HVL_PARTITION_SELF;
	memset(h->in, 0, 16 + 8 * (size_t)n);
	memcpy(h->in, &self, 8);
	memcpy(h->in + 8, &flags, 4);
	h->in[12] = HVL_VTL_CURRENT;   /* the caller's own VTL: protections for those below */
	for (u16 i = 0; i < n; i++) {
		u64 p = first_page + i;
		memcpy(h->in + 16 + 8 * (size_t)i, &p, 8);
	}
	return hvcall_rep(h, HVL_CALL_MODIFY_VTL_PROTECTION_MASK, n, 0, NULL);
}

void vtl2_rt_read_intercept(const u8 *assist, struct vtl2_rt_intercept *m)
{
	const u8 *msg = assist + 112, *p = msg + 16;   /* HV_MESSAGE payload */
	memset(m, 0, sizeof(*m));
	memcpy(&m->entry_reason, assist + 8, 4);
	memcpy(&m->type, msg, 4);
	m->insn_len = p[4] & 0xf;
	m->cpl = p[6] & 3;
	memcpy(&m->cs, p + 8 + 12, 2);
	m->access = p[5];
	memcpy(&m->rip, p + 24, 8);
	/* HV_X64_MEMORY_INTERCEPT_MESSAGE after the 40-byte header */
	m->access_info = p[45];
	memcpy(&m->gva, p + 48, 8);
	memcpy(&m->gpa, p + 56, 8);
}
