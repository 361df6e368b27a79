/*
 * Hypercall wrappers for freestanding guests and the VTL2 test payload: see
 * hvcall_lib.h (TLFS "Hypercall Interface": control word and result layout,
 * rep restart; "Virtual Secure Mode": HvRegisterVsmCodePageOffsets).
 */
#include "hvcall_lib.h"
#include "guest.h"

#define HC_FAST        (1ull << 16)
#define HC_VARHDR(n)   ((u64)(n) << 17)
#define HC_REP(n)      ((u64)(n) << 32)
#define HC_REP_START(n) ((u64)(n) << 48)
#define RES_STATUS(r)  ((u16)((r) & 0xffff))
#define RES_DONE(r)    ((u16)(((r) >> 32) & 0xfff))

int hvcall_init(struct hvcall *h, void *page, u64 page_gpa, void *in, u64 in_gpa, void *out,
		u64 out_gpa, u64 os_id)
{
	h->page = page;
	h->in = in;
	h->out = out;
	h->in_gpa = in_gpa;
	h->out_gpa = out_gpa;
	h->vtl_call_offset = h->vtl_return_offset = 0;
	if (os_id)
		wrmsr(HVL_MSR_GUEST_OS_ID, os_id);
	wrmsr(HVL_MSR_HYPERCALL, (page_gpa & ~0xfffull) | 1);
	if (!(rdmsr(HVL_MSR_HYPERCALL) & 1))
		return -1;
	return ((volatile u8 *)h->page)[0] ? 0 : -1;
}

u64 hvcall_raw(const struct hvcall *h, u64 control, u64 rdx, u64 r8)
{
	u64 status;
	register u64 r8r __asm__("r8") = r8;
	void *page = h->page;
	__asm__ volatile("call *%[pg]"
			 : "=a"(status), "+c"(control), "+d"(rdx), "+r"(r8r)
			 : [pg] "r"(page)
			 : "cc", "memory", "r9", "r10", "r11");
	return status;
}

u16 hvcall_simple(const struct hvcall *h, u16 code)
{
	return RES_STATUS(hvcall_raw(h, code, h->in_gpa, h->out_gpa));
}

u16 hvcall_fast(const struct hvcall *h, u16 code, u64 a, u64 b)
{
	return RES_STATUS(hvcall_raw(h, code | HC_FAST, a, b));
}

u16 hvcall_rep(const struct hvcall *h, u16 code, u16 count, u16 varhdr, u16 *done)
{
	u16 start = 0, st = HVL_STATUS_SUCCESS;
	for (unsigned tries = 0; tries < (unsigned)count + 16; tries++) {
		u64 r = hvcall_raw(h, code | HC_VARHDR(varhdr) | HC_REP(count) | HC_REP_START(start),
				   h->in_gpa, h->out_gpa);
		st = RES_STATUS(r);
		u16 d = RES_DONE(r);
		/* A hypervisor may stop early with success or TIMEOUT: restart there. */
		if (d > start && d <= count)
			start = d;
		if ((st != HVL_STATUS_SUCCESS && st != HVL_STATUS_TIMEOUT) || start >= count)
			break;
	}
	if (done)
		*done = start;
	return st;
}

void hvcall_regs_header(const struct hvcall *h, u8 vtl)
{
	u64 part = HVL_PARTITION_SELF;
	u32 vp = HVL_VP_SELF;
	memset(h->in, 0, 16);
	memcpy(h->in, &part, 8);
	memcpy(h->in + 8, &vp, 4);
	h->in[12] = vtl;
}

u16 hvcall_get_vp_register(const struct hvcall *h, u8 vtl, u32 name, u64 *lo, u64 *hi)
{
	hvcall_regs_header(h, vtl);
	memcpy(h->in + 16, &name, 4);
	memset(h->out, 0, 16);
	u16 st = hvcall_rep(h, HVL_CALL_GET_VP_REGISTERS, 1, 0, NULL);
	if (st == HVL_STATUS_SUCCESS) {
		memcpy(lo, h->out, 8);
		if (hi)
			memcpy(hi, h->out + 8, 8);
	}
	return st;
}

u16 hvcall_set_vp_register(const struct hvcall *h, u8 vtl, u32 name, u64 lo, u64 hi)
{
	hvcall_regs_header(h, vtl);
	memset(h->in + 16, 0, 32);
	memcpy(h->in + 16, &name, 4);
	memcpy(h->in + 32, &lo, 8);
	memcpy(h->in + 40, &hi, 8);
	return hvcall_rep(h, HVL_CALL_SET_VP_REGISTERS, 1, 0, NULL);
}

u16 hvcall_vsm_init(struct hvcall *h)
{
	u64 v = 0;
	u16 st = hvcall_get_vp_register(h, HVL_VTL_CURRENT, HVL_REG_VSM_CODE_PAGE_OFFSETS, &v, NULL);
	if (st == HVL_STATUS_SUCCESS) {
		h->vtl_call_offset = (u16)(v & 0xfff);
		h->vtl_return_offset = (u16)((v >> 12) & 0xfff);
	}
	return st;
}
