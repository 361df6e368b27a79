/*
 * VTL0's memory map under --vtl2 (src/core/vtl_mem.c; TLFS
 * ModifyVtlProtectionMask): protections turn into the minimal slot list
 * (no-access pages unmapped, read-only pages in read-only slots), the slot
 * cap answers INSUFFICIENT_MEMORY and leaves the map alone, vtl_mem_apply
 * changes only the slots that differ (a fake accelerator records the
 * calls), and the MOV decoder finds lengths and effective addresses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/vtl_mem.h"
#include "hv/hv.h"
#include "x86/linux_boot.h"

#define MB (1024ull * 1024)
static uint8_t ram[16 * 4096];

/* Two regions as gmem_init lays out RAM around the hole: 1 MiB low, 1 MiB at 4 GiB. */
static void two_regions(struct gmem *g)
{
	memset(g, 0, sizeof(*g));
	g->nregions = 2;
	g->regions[0] = (struct gmem_region){ 0, MB, ram, 0, false };
	g->regions[1] = (struct gmem_region){ GMEM_4G, MB, ram, MB, false };
}

static void test_flags(void **state)
{
	(void)state;
	assert_int_equal(vtl_mem_prot_from_flags(0), VTL_MEM_NONE);
	assert_int_equal(vtl_mem_prot_from_flags(0x1), VTL_MEM_RO);
	assert_int_equal(vtl_mem_prot_from_flags(0x5), VTL_MEM_RO);  /* exec ignored */
	assert_int_equal(vtl_mem_prot_from_flags(0x3), VTL_MEM_FULL);
	assert_int_equal(vtl_mem_prot_from_flags(0xf), VTL_MEM_FULL);
	assert_int_equal(vtl_mem_prot_from_flags(0xc), VTL_MEM_NONE);
}

static void test_slots(void **state)
{
	(void)state;
	struct gmem g;
	struct vtl_mem m;
	struct vtl_mem_slot s[8];
	two_regions(&g);
	assert_int_equal(vtl_mem_init(&m, &g, 8), 0);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 2);
	assert_true(s[0].gpa == 0 && s[0].size == MB && !s[0].readonly);
	assert_true(s[1].gpa == GMEM_4G && s[1].size == MB && s[1].region == 1);

	/* A read-only page in the middle: full / ro / full. */
	assert_int_equal(vtl_mem_set(&m, 16, 1, VTL_MEM_RO), HV_STATUS_SUCCESS);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 4);
	assert_true(s[0].gpa == 0 && s[0].size == 16 * 4096 && !s[0].readonly);
	assert_true(s[1].gpa == 16 * 4096 && s[1].size == 4096 && s[1].readonly);
	assert_true(s[2].gpa == 17 * 4096 && s[2].size == MB - 17 * 4096 && !s[2].readonly);
	assert_int_equal(vtl_mem_prot(&m, 16 * 4096 + 5), VTL_MEM_RO);
	assert_int_equal(vtl_mem_prot(&m, 17 * 4096), VTL_MEM_FULL);

	/* A no-access page next to it: no slot for it, ranges stay apart. */
	assert_int_equal(vtl_mem_set(&m, 17, 1, VTL_MEM_NONE), HV_STATUS_SUCCESS);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 4);
	assert_true(s[1].readonly && s[1].size == 4096);
	assert_true(s[2].gpa == 18 * 4096 && !s[2].readonly);
	assert_int_equal(vtl_mem_prot(&m, 17 * 4096), VTL_MEM_NONE);

	/* Neighbouring read-only pages merge into one slot. */
	assert_int_equal(vtl_mem_set(&m, 15, 1, VTL_MEM_RO), HV_STATUS_SUCCESS);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 4);
	assert_true(s[1].gpa == 15 * 4096 && s[1].size == 2 * 4096 && s[1].readonly);
	assert_int_equal(m.nr, 2);

	/* Back to full: the map is empty again, two slots. */
	assert_int_equal(vtl_mem_set(&m, 15, 3, VTL_MEM_FULL), HV_STATUS_SUCCESS);
	assert_int_equal(m.nr, 0);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 2);

	/* A hole punched into a larger range splits it. */
	assert_int_equal(vtl_mem_set(&m, 32, 8, VTL_MEM_NONE), HV_STATUS_SUCCESS);
	assert_int_equal(vtl_mem_set(&m, 35, 1, VTL_MEM_RO), HV_STATUS_SUCCESS);
	assert_int_equal(m.nr, 3);
	assert_int_equal(vtl_mem_prot(&m, 34 * 4096), VTL_MEM_NONE);
	assert_int_equal(vtl_mem_prot(&m, 35 * 4096), VTL_MEM_RO);
	assert_int_equal(vtl_mem_prot(&m, 36 * 4096), VTL_MEM_NONE);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 4); /* full, ro, full, high */
	/* The high region's first page, no access: its slot starts a page later. */
	assert_int_equal(vtl_mem_set(&m, GMEM_4G / 4096, 1, VTL_MEM_NONE), HV_STATUS_SUCCESS);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 4);
	assert_true(s[3].gpa == GMEM_4G + 4096 && s[3].size == MB - 4096 && s[3].region == 1);
	assert_int_equal(vtl_mem_slots(&m, s, 3), -ENOSPC);
	vtl_mem_fini(&m);
}

static void test_errors_and_cap(void **state)
{
	(void)state;
	struct gmem g;
	struct vtl_mem m;
	struct vtl_mem_slot s[8];
	two_regions(&g);
	assert_int_equal(vtl_mem_init(&m, &g, 4), 0);
	/* Not RAM, across the hole, empty, overflowing. */
	assert_int_equal(vtl_mem_set(&m, MB / 4096, 1, VTL_MEM_RO), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vtl_mem_set(&m, MB / 4096 - 1, 2, VTL_MEM_RO), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vtl_mem_set(&m, 0, 0, VTL_MEM_RO), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vtl_mem_set(&m, UINT64_MAX - 1, 4, VTL_MEM_RO), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vtl_mem_set(&m, 1, 1, 7), HV_STATUS_INVALID_PARAMETER);
	/* Four slots: one no-access page costs one more slot, a read-only one two. */
	assert_int_equal(vtl_mem_set(&m, 10, 1, VTL_MEM_NONE), HV_STATUS_SUCCESS); /* 3 slots */
	assert_int_equal(vtl_mem_set(&m, 20, 1, VTL_MEM_RO), HV_STATUS_INSUFFICIENT_MEMORY);
	assert_int_equal(vtl_mem_prot(&m, 20 * 4096), VTL_MEM_FULL);  /* unchanged */
	assert_int_equal(m.nr, 1);
	assert_int_equal(vtl_mem_set(&m, 20, 1, VTL_MEM_NONE), HV_STATUS_SUCCESS); /* 4 slots */
	assert_int_equal(vtl_mem_slots(&m, s, 8), 4);
	/* The first page of RAM: no extra slot needed. */
	assert_int_equal(vtl_mem_set(&m, 0, 1, VTL_MEM_NONE), HV_STATUS_SUCCESS);
	assert_int_equal(vtl_mem_set(&m, 30, 1, VTL_MEM_NONE), HV_STATUS_INSUFFICIENT_MEMORY);
	vtl_mem_fini(&m);
	/* More regions than slots is refused at init. */
	assert_int_equal(vtl_mem_init(&m, &g, 1), -EINVAL);
}

static void test_hide(void **state)
{
	(void)state;
	struct gmem g;
	struct vtl_mem m;
	struct vtl_mem_slot s[8];
	two_regions(&g);
	assert_int_equal(vtl_mem_init(&m, &g, 8), 0);
	/* Rounded inward to whole pages. */
	assert_int_equal(vtl_mem_hide(&m, 0x80100, 0x3000), HV_STATUS_SUCCESS);
	assert_false(vtl_mem_hidden(&m, 0x80000));
	assert_true(vtl_mem_hidden(&m, 0x81000));
	assert_true(vtl_mem_hidden(&m, 0x82fff));
	assert_false(vtl_mem_hidden(&m, 0x83000));
	assert_int_equal(vtl_mem_prot(&m, 0x81000), VTL_MEM_NONE);
	assert_int_equal(vtl_mem_prot(&m, 0x80000), VTL_MEM_FULL);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 3);
	assert_true(s[0].size == 0x81000 && s[1].gpa == 0x83000);
	assert_int_equal(vtl_mem_hide(&m, 0x80100, 0x100), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vtl_mem_hide(&m, 3 * MB, 0x1000), HV_STATUS_INVALID_PARAMETER);
	vtl_mem_fini(&m);
}

/* A fake accelerator: records the slots it holds. */
static struct { uint64_t gpa, size; void *hva; bool ro, used; } fake[VTL_MEM_MAX_SLOTS];
static unsigned fake_maps, fake_unmaps;

static int fake_map(struct accel *a, unsigned slot, uint64_t gpa, uint64_t size, void *hva,
		    bool ro)
{
	(void)a;
	assert_true(slot < VTL_MEM_MAX_SLOTS);
	assert_false(fake[slot].used);
	/* KVM refuses overlapping slots. */
	for (unsigned i = 0; i < VTL_MEM_MAX_SLOTS; i++)
		assert_true(!fake[i].used || gpa + size <= fake[i].gpa ||
			    fake[i].gpa + fake[i].size <= gpa);
	fake[slot].gpa = gpa, fake[slot].size = size, fake[slot].hva = hva, fake[slot].ro = ro;
	fake[slot].used = true;
	fake_maps++;
	return 0;
}

static int fake_unmap(struct accel *a, unsigned slot)
{
	(void)a;
	assert_true(fake[slot].used);
	fake[slot].used = false;
	fake_unmaps++;
	return 0;
}

static void test_apply(void **state)
{
	(void)state;
	struct gmem g;
	struct vtl_mem m;
	struct accel_ops ops = { .map_memory = fake_map, .unmap_memory = fake_unmap };
	two_regions(&g);
	memset(fake, 0, sizeof(fake));
	/* What vm.c mapped: slot i = region i. */
	for (unsigned i = 0; i < 2; i++)
		fake[i].gpa = g.regions[i].gpa, fake[i].size = g.regions[i].size, fake[i].used = true;
	assert_int_equal(vtl_mem_init(&m, &g, 8), 0);
	assert_int_equal(vtl_mem_set(&m, 4, 2, VTL_MEM_RO), HV_STATUS_SUCCESS);
	fake_maps = fake_unmaps = 0;
	assert_int_equal(vtl_mem_apply(&m, &ops, NULL), 0);
	/* Region 0 replaced by three slots; region 1's slot untouched. */
	assert_int_equal(fake_unmaps, 1);
	assert_int_equal(fake_maps, 3);
	assert_true(fake[1].used && fake[1].gpa == GMEM_4G);
	bool seen_ro = false;
	for (unsigned i = 0; i < VTL_MEM_MAX_SLOTS; i++) {
		if (fake[i].used && fake[i].ro) {
			assert_true(fake[i].gpa == 4 * 4096 && fake[i].size == 2 * 4096);
			assert_ptr_equal(fake[i].hva, ram + 4 * 4096);
			seen_ro = true;
		}
	}
	assert_true(seen_ro);
	/* Nothing changed: nothing done. */
	fake_maps = fake_unmaps = 0;
	assert_int_equal(vtl_mem_apply(&m, &ops, NULL), 0);
	assert_int_equal(fake_maps + fake_unmaps, 0);
	/* Full again: one slot for region 0. */
	assert_int_equal(vtl_mem_set(&m, 4, 2, VTL_MEM_FULL), HV_STATUS_SUCCESS);
	assert_int_equal(vtl_mem_apply(&m, &ops, NULL), 0);
	unsigned n = 0;
	for (unsigned i = 0; i < VTL_MEM_MAX_SLOTS; i++)
		n += fake[i].used;
	assert_int_equal(n, 2);
	vtl_mem_fini(&m);
}

/* VTL2-only RAM above VTL0's (auto= relocation): memfd grown, hidden from VTL0. */
static void test_vtl2_region(void **state)
{
	(void)state;
	struct gmem g, two;
	struct vtl_mem m;
	struct vtl_mem_slot s[8];
	two_regions(&two);
	assert_int_equal(vtl_mem_vtl2_ram_base(&two, 2 * MB), GMEM_4G + 2 * MB);
	assert_int_equal(vtl_mem_vtl2_ram_base(&two, 0), GMEM_4G + MB);
	assert_int_equal(gmem_init(&g, 4 * MB), 0);
	uint64_t base = vtl_mem_vtl2_ram_base(&g, 2 * MB);
	assert_int_equal(base, GMEM_4G);   /* above the hole even with little RAM */
	assert_int_equal(gmem_add_vtl2_region(&g, base + 1, MB), -EINVAL);
	assert_int_equal(gmem_add_vtl2_region(&g, MB, MB), -EINVAL);      /* below 4 GiB */
	assert_int_equal(gmem_add_vtl2_region(&g, base, 0), -EINVAL);
	assert_int_equal(gmem_add_vtl2_region(&g, base, 2 * MB), 0);
	assert_int_equal(gmem_add_vtl2_region(&g, base, MB), -EINVAL);     /* overlaps */
	assert_int_equal(g.size, 4 * MB);                                  /* VTL0's RAM */
	assert_int_equal(g.fd_size, 6 * MB);
	assert_int_equal(g.nregions, 2);
	assert_true(g.regions[1].vtl2_only && g.regions[1].fd_offset == 4 * MB);
	/* hvmm's e820 (VTL0's RAM) leaves it out: only the 4 MiB below. */
	struct e820_entry e[E820_MAX_ENTRIES];
	unsigned ne = e820_build(&g, e, E820_MAX_ENTRIES);
	for (unsigned i = 0; i < ne; i++)
		assert_true(e[i].addr + e[i].size <= 4 * MB);
	assert_int_equal(e[ne - 1].addr + e[ne - 1].size, 4 * MB);
	/* The loader writes VTL2's pages there; the old mapping is untouched. */
	uint32_t v = 0x12345678, back = 0;
	assert_int_equal(gmem_write(&g, base + 2 * MB - 4, &v, 4), 0);
	assert_int_equal(gmem_read(&g, base + 2 * MB - 4, &back, 4), 0);
	assert_int_equal(back, v);
	assert_int_equal(gmem_write(&g, 4 * MB - 4, &v, 4), 0);
	assert_int_equal(gmem_read(&g, base + 2 * MB, &back, 4), -EFAULT);
	/* VTL0: no access there, no slot, nothing to unmap. */
	assert_int_equal(vtl_mem_init(&m, &g, 8), 0);
	assert_int_equal(vtl_mem_prot(&m, base + 5 * 4096), VTL_MEM_NONE);
	assert_int_equal(vtl_mem_prot(&m, 5 * 4096), VTL_MEM_FULL);
	assert_int_equal(vtl_mem_slots(&m, s, 8), 1);
	assert_true(s[0].gpa == 0 && s[0].size == 4 * MB);
	struct accel_ops ops = { .map_memory = fake_map, .unmap_memory = fake_unmap };
	memset(fake, 0, sizeof(fake));
	fake[0].gpa = 0, fake[0].size = 4 * MB, fake[0].used = true;
	fake_maps = fake_unmaps = 0;
	assert_int_equal(vtl_mem_apply(&m, &ops, NULL), 0);
	assert_int_equal(fake_maps + fake_unmaps, 0);
	/* VTL2 may open it to VTL0 like any RAM. */
	assert_int_equal(vtl_mem_set(&m, base / 4096, 1, VTL_MEM_RO), HV_STATUS_SUCCESS);
	assert_int_equal(vtl_mem_apply(&m, &ops, NULL), 0);
	assert_int_equal(fake_maps, 1);
	vtl_mem_fini(&m);
	gmem_destroy(&g);
}

static void test_mov(void **state)
{
	(void)state;
	static const struct { uint8_t b[15]; unsigned n, len; } cases[] = {
		{ { 0x89, 0x18 }, 2, 2 },                          /* mov %ebx,(%rax) */
		{ { 0x48, 0x89, 0x58, 0x08 }, 4, 4 },              /* mov %rbx,8(%rax) */
		{ { 0x8b, 0x04, 0x24 }, 3, 3 },                    /* mov (%rsp),%eax */
		{ { 0xc7, 0x00, 1, 2, 3, 4 }, 6, 6 },              /* movl $imm,(%rax) */
		{ { 0x66, 0xc7, 0x00, 1, 2 }, 5, 5 },              /* movw $imm,(%rax) */
		{ { 0xc6, 0x80, 0, 1, 0, 0, 7 }, 7, 7 },           /* movb $7,0x100(%rax) */
		{ { 0x8b, 0x05, 0, 0, 0, 0 }, 6, 6 },              /* mov 0(%rip),%eax */
		{ { 0x8b, 0x04, 0x25, 0, 0x10, 0, 0 }, 7, 7 },     /* mov 0x1000,%eax */
		{ { 0x89, 0xd8 }, 2, 0 },                          /* mov %ebx,%eax: no memory */
		{ { 0xc7, 0x08, 1, 2, 3, 4 }, 6, 0 },              /* C7 /1: not MOV */
		{ { 0x90 }, 1, 0 },
		{ { 0xc7, 0x00, 1, 2 }, 4, 0 },                    /* truncated */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned at;
		int64_t d;
		assert_int_equal(vtl_mem_mov_len(cases[i].b, cases[i].n, &at, &d), cases[i].len);
	}
	uint64_t gpr[16] = { 0 }, ea = 0;
	gpr[0] = 0x5000;  /* RAX */
	gpr[4] = 0x7000;  /* RSP */
	gpr[9] = 0x10;    /* R9 */
	static const uint8_t st8[] = { 0x48, 0x89, 0x58, 0xf8 };   /* mov %rbx,-8(%rax) */
	assert_true(vtl_mem_mov_ea(st8, 4, gpr, 0, &ea));
	assert_int_equal(ea, 0x4ff8);
	static const uint8_t rip[] = { 0x8b, 0x05, 0x10, 0, 0, 0 };
	assert_true(vtl_mem_mov_ea(rip, 6, gpr, 0x2000, &ea));
	assert_int_equal(ea, 0x2010);
	static const uint8_t sib[] = { 0x42, 0x89, 0x1c, 0x88 };   /* mov %ebx,(%rax,%r9,4) */
	assert_true(vtl_mem_mov_ea(sib, 4, gpr, 0, &ea));
	assert_int_equal(ea, 0x5040);
	static const uint8_t abs32[] = { 0x8b, 0x04, 0x25, 0, 0x10, 0, 0 };
	assert_true(vtl_mem_mov_ea(abs32, 7, gpr, 0, &ea));
	assert_int_equal(ea, 0x1000);
	static const uint8_t fs[] = { 0x64, 0x89, 0x18 };
	assert_false(vtl_mem_mov_ea(fs, 3, gpr, 0, &ea));
}

/*
 * The store decoder behind putting VTL0 back at an intercepted instruction
 * (string stores and read-modify-write forms, besides MOV): lengths and
 * forms, the non-stores refused, and the undo of what KVM's emulator
 * retired: REP STOS/MOVS's RDI/RSI/RCX (DF, 32-bit addresses), XCHG's and
 * XADD's register (AH too), ADC/SBB/RCL/RCR's consumed CF.
 */
static void test_decode_undo(void **state)
{
	(void)state;
	static const struct { uint8_t b[15]; unsigned n, len, op, size; } cases[] = {
		{ { 0xf3, 0xab }, 2, 2, VTL_MEM_OP_STRING, 4 },              /* rep stos %eax */
		{ { 0xf3, 0x48, 0xab }, 3, 3, VTL_MEM_OP_STRING, 8 },        /* rep stos %rax */
		{ { 0xa4 }, 1, 1, VTL_MEM_OP_STRING, 1 },                    /* movsb */
		{ { 0x66, 0xab }, 2, 2, VTL_MEM_OP_STRING, 2 },              /* stosw */
		{ { 0xf0, 0x83, 0x06, 0x01 }, 4, 4, VTL_MEM_OP_RMW, 4 },     /* lock addl $1,(%rsi) */
		{ { 0x87, 0x3e }, 2, 2, VTL_MEM_OP_RMW, 4 },                 /* xchg %edi,(%rsi) */
		{ { 0x48, 0x87, 0x3e }, 3, 3, VTL_MEM_OP_RMW, 8 },           /* xchg %rdi,(%rsi) */
		{ { 0xf0, 0x0f, 0xc1, 0x06 }, 4, 4, VTL_MEM_OP_RMW, 4 },     /* lock xadd %eax,(%rsi) */
		{ { 0x0f, 0xb1, 0x0e }, 3, 3, VTL_MEM_OP_RMW, 4 },           /* cmpxchg %ecx,(%rsi) */
		{ { 0xf7, 0x1e }, 2, 2, VTL_MEM_OP_RMW, 4 },                 /* negl (%rsi) */
		{ { 0xfe, 0x06 }, 2, 2, VTL_MEM_OP_RMW, 1 },                 /* incb (%rsi) */
		{ { 0xd1, 0x26 }, 2, 2, VTL_MEM_OP_RMW, 4 },                 /* shll (%rsi) */
		{ { 0xc1, 0x26, 0x05 }, 3, 3, VTL_MEM_OP_RMW, 4 },           /* shll $5,(%rsi) */
		{ { 0x0f, 0x94, 0x06 }, 3, 3, VTL_MEM_OP_MOV, 1 },           /* sete (%rsi) */
		{ { 0x0f, 0xba, 0x2e, 0x03 }, 4, 4, VTL_MEM_OP_RMW, 4 },     /* btsl $3,(%rsi) */
		{ { 0x81, 0x46, 0x08, 1, 2, 3, 4 }, 7, 7, VTL_MEM_OP_RMW, 4 }, /* addl $imm32,8(%rsi) */
		{ { 0x66, 0x81, 0x06, 1, 2 }, 5, 5, VTL_MEM_OP_RMW, 2 },     /* addw $imm16,(%rsi) */
		{ { 0x89, 0x3e }, 2, 2, VTL_MEM_OP_MOV, 4 },                 /* mov %edi,(%rsi) */
		{ { 0x83, 0x3e, 0x01 }, 3, 0, 0, 0 },                        /* cmpl: no store */
		{ { 0x39, 0x06 }, 2, 0, 0, 0 },                              /* cmp: no store */
		{ { 0xf7, 0x06, 1, 0, 0, 0 }, 6, 0, 0, 0 },                  /* test: no store */
		{ { 0x0f, 0xba, 0x26, 0x03 }, 4, 0, 0, 0 },                  /* bt: no store */
		{ { 0x01, 0xc0 }, 2, 0, 0, 0 },                              /* add %eax,%eax */
		{ { 0xf0, 0x83, 0x06 }, 3, 0, 0, 0 },                        /* truncated */
		{ { 0x90 }, 1, 0, 0, 0 },
		{ { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
		    0x66, 0xab }, 15, 15, VTL_MEM_OP_STRING, 2 },            /* 15 bytes: the limit */
	};
	struct vtl_mem_insn d;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned len = vtl_mem_decode(cases[i].b, cases[i].n, &d);
		if (len != cases[i].len || (len && (d.op != cases[i].op || d.size != cases[i].size)))
			fail_msg("case %zu: length %u op %u size %u", i, len, d.op, d.size);
	}
	assert_int_equal(vtl_mem_decode((const uint8_t *)"\x81\x46\x08\xfc\xff\xff\xff", 7, &d), 7);
	assert_int_equal(d.imm, (uint64_t)-4);   /* imm32 sign-extended */
	assert_int_equal(d.disp, 8);

	uint64_t g[16] = { 0 }, fl = 2;
	/* rep stos %eax: one iteration retired, RCX 2 -> 1, RDI +4: both back. */
	vtl_mem_decode((const uint8_t *)"\xf3\xab", 2, &d);
	g[1] = 1, g[7] = 0x807004;
	assert_true(vtl_mem_undo(&d, g, &fl, 0, 0));
	assert_true(g[1] == 2 && g[7] == 0x807000);
	uint64_t ea;
	assert_true(vtl_mem_insn_ea(&d, NULL, g, 0, true, &ea) && ea == 0x807000);
	fl = 2 | 1 << 10; /* DF: downwards */
	g[7] = 0x806ffc;
	assert_true(vtl_mem_undo(&d, g, &fl, 0, 0));
	assert_int_equal(g[7], 0x807000);
	/* movsb (no REP): RSI and RDI, RCX untouched; the read side is RSI. */
	vtl_mem_decode((const uint8_t *)"\xa4", 1, &d);
	fl = 2, g[1] = 9, g[6] = 0x2001, g[7] = 0x3001;
	assert_true(vtl_mem_undo(&d, g, &fl, 0, 0));
	assert_true(g[1] == 9 && g[6] == 0x2000 && g[7] == 0x3000);
	assert_true(vtl_mem_insn_ea(&d, NULL, g, 0, false, &ea) && ea == 0x2000);
	/* addr32 rep stos: EDI wrapped to 0 and back, zero-extended. */
	vtl_mem_decode((const uint8_t *)"\x67\xf3\xab", 3, &d);
	g[7] = 0, g[1] = 0;
	assert_true(vtl_mem_undo(&d, g, &fl, 0, 0));
	assert_true(g[7] == 0xfffffffc && g[1] == 1);
	/* xchg %edi,(%rsi): EDI got the memory's value; it held what was written. */
	vtl_mem_decode((const uint8_t *)"\x87\x3e", 2, &d);
	g[7] = 0x600dda7a, g[6] = 0x807000;
	assert_true(vtl_mem_undo(&d, g, &fl, 0x5a5a5a5a, 0x600dda7a));
	assert_int_equal(g[7], 0x5a5a5a5a);
	assert_true(vtl_mem_insn_ea(&d, (const uint8_t *)"\x87\x3e", g, 0, true, &ea) &&
		    ea == 0x807000);
	/* xchg %ah,(%rsi): AH, the rest of RAX kept. */
	vtl_mem_decode((const uint8_t *)"\x86\x26", 2, &d);
	g[0] = 0x11223344;
	assert_true(vtl_mem_undo(&d, g, &fl, 0x99, 0x33));
	assert_int_equal(g[0], 0x11229944);
	/* lock xadd %eax,(%rsi): EAX got old 10, 15 was written: EAX was 5. */
	vtl_mem_decode((const uint8_t *)"\xf0\x0f\xc1\x06", 4, &d);
	g[0] = 10;
	assert_true(vtl_mem_undo(&d, g, &fl, 15, 10));
	assert_int_equal(g[0], 5);
	/* adc %eax,(%rsi): 5 + 3 + CF 1 = 9: CF back to 1; sbb 5 - 3 - 1 = 1. */
	vtl_mem_decode((const uint8_t *)"\x11\x06", 2, &d);
	g[0] = 3, fl = 2;
	assert_true(vtl_mem_undo(&d, g, &fl, 9, 5));
	assert_int_equal(fl, 3);
	assert_false(vtl_mem_undo(&d, g, &fl, 20, 5)); /* not an ADC of these */
	vtl_mem_decode((const uint8_t *)"\x19\x06", 2, &d);
	fl = 2;
	assert_true(vtl_mem_undo(&d, g, &fl, 1, 5));
	assert_int_equal(fl, 3);
	fl = 3;
	assert_true(vtl_mem_undo(&d, g, &fl, 2, 5));
	assert_int_equal(fl, 2);
	/* rcl (%rsi): CF went into bit 0; rcr: into bit 31. */
	vtl_mem_decode((const uint8_t *)"\xd1\x16", 2, &d);
	fl = 2;
	assert_true(vtl_mem_undo(&d, g, &fl, 1, 0x80000000));
	assert_int_equal(fl, 3);
	vtl_mem_decode((const uint8_t *)"\xd1\x1e", 2, &d);
	fl = 3;
	assert_true(vtl_mem_undo(&d, g, &fl, 0x00000000, 1));
	assert_int_equal(fl, 2);
	/* lock addl $1: nothing to undo in the registers. */
	vtl_mem_decode((const uint8_t *)"\xf0\x83\x06\x01", 4, &d);
	memset(g, 0x5a, sizeof(g));
	fl = 0x246;
	assert_true(vtl_mem_undo(&d, g, &fl, 2, 1));
	assert_true(g[0] == 0x5a5a5a5a5a5a5a5aull && fl == 0x246);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_errors_and_cap),
		cmocka_unit_test(test_hide),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_vtl2_region),
		cmocka_unit_test(test_mov),
		cmocka_unit_test(test_decode_undo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
