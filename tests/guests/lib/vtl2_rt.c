/*
 * Freestanding VTL2 runtime (TLFS "Virtual Secure Mode"): VTL2's hypercall
 * page, VTL0 bring-up, VtlReturn with VTL0's registers, initial VP
 * contexts, protections, intercept messages. The contract is in vtl2_rt.h.
 */
#include "vtl2_rt.h"
#include "guest.h"

u8 vtl2_rt_hc_page[4096] __attribute__((aligned(4096)));
u8 vtl2_rt_hc_in[4096] __attribute__((aligned(4096)));
u8 vtl2_rt_hc_out[4096] __attribute__((aligned(4096)));
u8 vtl2_rt_assist[4096] __attribute__((aligned(4096)));

int vtl2_rt_hvcall_init(struct hvcall *h, u16 *vsm_status)
{
	if (hvcall_init(h, vtl2_rt_hc_page, (u64)vtl2_rt_hc_page, vtl2_rt_hc_in,
			(u64)vtl2_rt_hc_in, vtl2_rt_hc_out, (u64)vtl2_rt_hc_out,
			0x8100000000000001ull) != 0) {
		*vsm_status = 0xffff;   /* no call made */
		return -1;
	}
	*vsm_status = hvcall_vsm_init(h);
	return 0;
}

void vtl2_rt_enable_assist(void)
{
	wrmsr(HVL_MSR_VP_ASSIST_PAGE, (u64)vtl2_rt_assist | 1);
}

u16 vtl2_rt_begin(struct hvcall *h, u64 config)
{
	u16 st = 0;
	expect(vtl2_rt_hvcall_init(h, &st) == 0, "VTL2's hypercall page did not appear");
	if (!expect(st == 0 && h->vtl_return_offset, "VsmCodePageOffsets: status 0x%x", st))
		guest_abort("no VTL return stub");
	vtl2_rt_enable_assist();
	st = hvcall_set_vp_register(h, HVL_VTL_CURRENT, HVL_REG_VSM_PARTITION_CONFIG, config, 0);
	expect(st == 0, "VsmPartitionConfig 0x%lx: status 0x%x", config, st);
	return st;
}

u64 vtl2_rt_vtl0_gprs[VTL2_RT_NGPRS];
void *vtl2_rt_stub;
u64 vtl2_rt_rcx;
/* VtlReturn through `stub` (RDI) with RCX `rcx` (RSI): see vtl2_rt_return. */
void vtl2_rt_switch(void *stub, u64 rcx);

__asm__(
	".text\n"
	".globl vtl2_rt_switch\n"
	"vtl2_rt_switch:\n"
	"	push %rbx\n"
	"	push %rbp\n"
	"	push %r12\n"
	"	push %r13\n"
	"	push %r14\n"
	"	push %r15\n"
	"	mov %rdi, vtl2_rt_stub\n"
	"	mov %rsi, vtl2_rt_rcx\n"
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
	"	mov vtl2_rt_rcx, %rcx\n"      /* 1: fast VtlReturn */
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

void vtl2_rt_return(const struct hvcall *h, bool fast)
{
	vtl2_rt_switch(h->page + h->vtl_return_offset, fast ? 1 : 0);
}

u64 vtl2_rt_seg(u32 limit, u16 sel, u16 attr)
{
	return limit | (u64)sel << 32 | (u64)attr << 48;
}

struct dt {
	u16 limit;
	u64 base;
} __attribute__((packed));

/* VTL2's descriptor tables and selectors as they are now. */
struct vtl2_world {
	struct dt gdt, idt;
	u16 cs, ss;
};
static void current_world(struct vtl2_world *w)
{
	__asm__ volatile("sgdt %0; sidt %1; mov %%cs, %2; mov %%ss, %3"
			 : "=m"(w->gdt), "=m"(w->idt), "=r"(w->cs), "=r"(w->ss));
}

/* SetVpRegisters of VTL0: long mode on cr3 and the tables given, VTL2's selectors. */
static u16 set_vtl0_world(const struct hvcall *h, const struct vtl2_world *w, u64 cr3,
			  u64 gdt_base, u64 entry, u64 stack_top)
{
	const u64 data = vtl2_rt_seg(0xffffffff, w->ss, 0xc093);
	const struct vtl2_rt_reg r[] = {
		{ VTL2_RT_REG_CR0, read_cr0(), 0 }, { VTL2_RT_REG_CR3, cr3, 0 },
		{ VTL2_RT_REG_CR4, read_cr4(), 0 }, { VTL2_RT_REG_EFER, rdmsr(0xC0000080u), 0 },
		{ VTL2_RT_REG_GDTR, (u64)w->gdt.limit << 48, gdt_base },
		{ VTL2_RT_REG_IDTR, (u64)w->idt.limit << 48, w->idt.base },
		{ VTL2_RT_REG_CS, 0, vtl2_rt_seg(0xffffffff, w->cs, 0xa09b) },
		{ VTL2_RT_REG_SS, 0, data }, { VTL2_RT_REG_DS, 0, data },
		{ VTL2_RT_REG_ES, 0, data },
		{ VTL2_RT_REG_TR, 0, vtl2_rt_seg(0x67, 0, 0x008b) },
		{ VTL2_RT_REG_RSP, stack_top, 0 }, { VTL2_RT_REG_RFLAGS, 0x2, 0 },
		{ VTL2_RT_REG_RIP, entry, 0 },
	};
	return vtl2_rt_set_vtl0(h, r, sizeof(r) / sizeof(r[0]));
}

u16 vtl2_rt_setup_vtl0(const struct hvcall *h, u64 area, u64 entry, u64 stack_top)
{
	u64 *pml4 = (u64 *)area, *pdpt = (u64 *)(area + 0x1000), *pd = (u64 *)(area + 0x2000);
	memset(pml4, 0, 0x3000);
	pml4[0] = (area + 0x1000) | 0x7;           /* present, writable, user */
	pdpt[0] = (area + 0x2000) | 0x7;
	for (u64 i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x87;              /* 2 MiB, present, writable, user */
	struct vtl2_world w;
	current_world(&w);
	u8 *g0 = (u8 *)(area + 0x3000);
	memset(g0, 0, 0x1000);
	memcpy(g0, (const void *)w.gdt.base,
	       w.gdt.limit + 1u <= 0x1000 ? w.gdt.limit + 1u : 0x1000);
	w.idt.limit = 0;                           /* no IDT */
	w.idt.base = 0;
	return set_vtl0_world(h, &w, area, area + 0x3000, entry, stack_top);
}

u16 vtl2_rt_setup_vtl0_shared(const struct hvcall *h, u64 entry, u64 stack_top)
{
	struct vtl2_world w;
	current_world(&w);
	return set_vtl0_world(h, &w, read_cr3(), w.gdt.base, entry, stack_top);
}

void vtl2_rt_vp_context(u8 *ctx, u64 rip, u64 rsp)
{
	struct vtl2_world w;
	current_world(&w);
	u64 v[3] = { rip, rsp, 2 /* RFLAGS */ }, seg[2];
	memset(ctx, 0, VTL2_RT_VP_CONTEXT_SIZE);
	memcpy(ctx, v, sizeof(v));
	/* cs ds es fs gs ss tr ldtr at 24 + 16 * i */
	const u16 sels[6] = { w.cs, w.ss, w.ss, w.ss, w.ss, w.ss };
	for (int i = 0; i < 6; i++) {
		seg[0] = 0;
		seg[1] = vtl2_rt_seg(0xffffffff, sels[i], i == 0 ? 0xa09b : 0xc093);
		memcpy(ctx + 24 + 16 * i, seg, 16);
	}
	seg[0] = 0, seg[1] = vtl2_rt_seg(0x67, 0, 0x008b);
	memcpy(ctx + 24 + 16 * 6, seg, 16);
	seg[0] = 0, seg[1] = vtl2_rt_seg(0xffff, 0, 0x0082);
	memcpy(ctx + 24 + 16 * 7, seg, 16);
	seg[0] = (u64)w.idt.limit << 48, seg[1] = w.idt.base;
	memcpy(ctx + 152, seg, 16);
	seg[0] = (u64)w.gdt.limit << 48, seg[1] = w.gdt.base;
	memcpy(ctx + 168, seg, 16);
	u64 tail[5] = { rdmsr(0xC0000080u), read_cr0(), read_cr3(), read_cr4(),
			0x0007040600070406ull /* PAT */ };
	memcpy(ctx + 184, tail, 40);
}

u16 vtl2_rt_set_vtl0(const struct hvcall *h, const struct vtl2_rt_reg *r, u16 n)
{
	u16 done = 0;
	hvcall_regs_header(h, HVL_VTL(0));
	memset(h->in + 16, 0, 32 * (size_t)n);
	for (u16 i = 0; i < n; i++) {
		u8 *e = h->in + 16 + 32 * (size_t)i;
		memcpy(e, &r[i].name, 4);
		memcpy(e + 16, &r[i].lo, 8);
		memcpy(e + 24, &r[i].hi, 8);
	}
	u16 st = hvcall_rep(h, HVL_CALL_SET_VP_REGISTERS, n, 0, &done);
	return st ? st : done == n ? 0 : HVL_STATUS_INVALID_PARAMETER;
}

u16 vtl2_rt_install_intercept(const struct hvcall *h, u32 access, u32 type, u64 param)
{
	u64 self = HVL_PARTITION_SELF;
	memset(h->in, 0, 24);
	memcpy(h->in, &self, 8);
	memcpy(h->in + 8, &access, 4);
	memcpy(h->in + 12, &type, 4);
	memcpy(h->in + 16, &param, 8);
	return hvcall_simple(h, HVL_CALL_INSTALL_INTERCEPT);
}

u16 vtl2_rt_assert_interrupt(const struct hvcall *h, u8 vtl, u32 vector, bool level)
{
	u64 self = HVL_PARTITION_SELF, ctl = level ? 1ull << 32 : 0 /* fixed */, dest = 0;
	memset(h->in, 0, 32);
	memcpy(h->in, &self, 8);
	memcpy(h->in + 8, &ctl, 8);
	memcpy(h->in + 16, &dest, 8);
	memcpy(h->in + 24, &vector, 4);
	h->in[28] = vtl;
	return hvcall_simple(h, HVL_CALL_ASSERT_VIRTUAL_INTERRUPT);
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

void vtl2_rt_decode_message(const u8 *msg, struct vtl2_rt_intercept *m)
{
	const u8 *p = msg + 16;   /* HV_MESSAGE payload: the 40-byte intercept header first */
	memset(m, 0, sizeof(*m));
	memcpy(&m->type, msg, 4);
	m->insn_len = p[4] & 0xf;
	m->access = p[5];
	m->cpl = p[6] & 3;
	memcpy(&m->cs, p + 8 + 12, 2);
	memcpy(&m->rip, p + 24, 8);
	switch (m->type) {
	case VTL2_RT_MSG_UNMAPPED_GPA:
	case VTL2_RT_MSG_GPA_INTERCEPT:   /* HV_X64_MEMORY_INTERCEPT_MESSAGE */
		m->insn_count = p[44] <= 16 ? p[44] : 16;
		m->access_info = p[45];
		memcpy(&m->gva, p + 48, 8);
		memcpy(&m->gpa, p + 56, 8);
		memcpy(m->insn, p + 64, 16);
		break;
	case VTL2_RT_MSG_IO_PORT:         /* HV_X64_IO_PORT_INTERCEPT_MESSAGE */
		memcpy(&m->port, p + 40, 2);
		m->io_info = p[42];
		m->insn_count = p[43] <= 16 ? p[43] : 16;
		memcpy(&m->rax, p + 48, 8);
		memcpy(m->insn, p + 56, 16);
		memcpy(&m->rcx, p + 104, 8);
		memcpy(&m->rsi, p + 112, 8);
		memcpy(&m->rdi, p + 120, 8);
		break;
	case VTL2_RT_MSG_MSR:             /* HV_X64_MSR_INTERCEPT_MESSAGE */
		memcpy(&m->msr, p + 40, 4);
		memcpy(&m->rdx, p + 48, 8);
		memcpy(&m->rax, p + 56, 8);
		break;
	case VTL2_RT_MSG_HYPERCALL:       /* HV_X64_HYPERCALL_INTERCEPT_MESSAGE */
		memcpy(&m->rcx, p + 56, 8);
		memcpy(&m->rdx, p + 64, 8);
		memcpy(&m->r8, p + 72, 8);
		memcpy(&m->rsi, p + 80, 8);
		memcpy(&m->rdi, p + 88, 8);
		break;
	default:
		break;
	}
}

u32 vtl2_rt_entry_reason(const u8 *assist)
{
	u32 r;
	memcpy(&r, assist + 8, 4);
	return r;
}

void vtl2_rt_read_intercept(const u8 *assist, struct vtl2_rt_intercept *m)
{
	vtl2_rt_decode_message(assist + 112, m);
	m->entry_reason = vtl2_rt_entry_reason(assist);
}
