/*
 * `hvmm-igvm build --kernel bzImage [--initrd FILE] [--cmdline STR]`: a
 * NATIVE x64 IGVM file that boots Linux the way hvmm's own direct boot does
 * (x86 64-bit boot protocol, Documentation/arch/x86/boot.rst). The layout is
 * made by src/x86/linux_boot.c itself against a buffer standing in for guest
 * RAM (kernel payload decompressed on the host, initrd at the top, zero page,
 * identity page tables, GDT); its non-zero pages become PAGE_DATA. What the
 * build cannot know comes from the loader through parameter areas: the
 * command line (COMMAND_LINE at IGVM_LINUX_CMDLINE_GPA, after the text given
 * here; the zero page points at it) and the RAM layout (MEMORY_MAP at
 * IGVM_LINUX_MMAP_GPA). A 107-byte stub at IGVM_LINUX_STUB_GPA, the VP
 * context's RIP, turns that memory map into the zero page's e820 table and
 * jumps to the kernel's 64-bit entry with RSI = zero page. REQUIRED_MEMORY
 * covers the RAM the layout uses, so a VM that is too small gets one clear
 * error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "igvm/igvm_internal.h"
#include "x86/linux_boot.h"

#define FIRST_PASS_RAM (1ull << 30) /* enough for any layout; only touched pages cost */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_CMD_LINE_PTR 0x228

/*
 * The stub (x86-64, entered with RSI = zero page):
 *   lea 0x2d0(%rsi),%rdi        e820 table
 *   mov $MMAP,%ebx              IGVM memory map (patched at offset 8)
 *   xor %ecx,%ecx
 * 1: cmp $128,%ecx; jae 2f      at most 128 e820 entries
 *   mov 8(%rbx),%rax; test; jz 2f   number_of_pages 0 ends the map
 *   mov (%rbx),%rdx; shl $12; mov %rdx,(%rdi)      addr
 *   shl $12,%rax; mov %rax,8(%rdi)                 size
 *   movzwl 16(%rbx),%eax; mov $1,%edx; mov $2,%r9d
 *   test %eax,%eax; cmovne %r9d,%edx; mov %edx,16(%rdi)   MEMORY -> RAM, else reserved
 *   add $20,%rdi; add $24,%rbx; inc %ecx; jmp 1b
 * 2: test %ecx,%ecx; jz 3f; mov %cl,0x1e8(%rsi)    e820_entries (kept if the map is empty)
 * 3: movabs $ENTRY,%rax; jmp *%rax                 (patched at offset 0x61)
 */
static const uint8_t stub[] = {
	0x48, 0x8d, 0xbe, 0xd0, 0x02, 0x00, 0x00, 0xbb, 0, 0, 0, 0, 0x31, 0xc9,
	0x81, 0xf9, 0x80, 0x00, 0x00, 0x00, 0x73, 0x3f, 0x48, 0x8b, 0x43, 0x08,
	0x48, 0x85, 0xc0, 0x74, 0x36, 0x48, 0x8b, 0x13, 0x48, 0xc1, 0xe2, 0x0c,
	0x48, 0x89, 0x17, 0x48, 0xc1, 0xe0, 0x0c, 0x48, 0x89, 0x47, 0x08, 0x0f,
	0xb7, 0x43, 0x10, 0xba, 0x01, 0x00, 0x00, 0x00, 0x41, 0xb9, 0x02, 0x00,
	0x00, 0x00, 0x85, 0xc0, 0x41, 0x0f, 0x45, 0xd1, 0x89, 0x57, 0x10, 0x48,
	0x83, 0xc7, 0x14, 0x48, 0x83, 0xc3, 0x18, 0xff, 0xc1, 0xeb, 0xb9, 0x85,
	0xc9, 0x74, 0x06, 0x88, 0x8e, 0xe8, 0x01, 0x00, 0x00, 0x48, 0xb8, 0, 0,
	0, 0, 0, 0, 0, 0, 0xff, 0xe0,
};
#define STUB_MMAP_OFF 8
#define STUB_ENTRY_OFF 0x61
_Static_assert(sizeof(stub) == 0x6b, "stub length");

static void put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t seg_attr(const struct x86_segment *s)
{
	return (uint16_t)((s->type & 0xf) | (s->s & 1) << 4 | (s->dpl & 3) << 5 |
			  (s->present & 1) << 7 | (s->avl & 1) << 12 | (s->l & 1) << 13 |
			  (s->db & 1) << 14 | (s->g & 1) << 15);
}

/* linux_boot_load + setup_cpu into ram[0..size); 0 or -errno with err. */
static int layout(const struct igvm_linux_opts *o, uint8_t *ram, uint64_t size,
		  struct linux_boot_info *bi, struct x86_regs *r, struct x86_sregs *s,
		  char *err, size_t errlen)
{
	struct gmem m;
	gmem_init_fake(&m, ram, size);
	struct linux_boot_config bc = {
		.kernel = o->kernel, .kernel_len = o->kernel_len,
		.initrd = o->initrd, .initrd_len = o->initrd_len, .cmdline = "",
	};
	int ret = linux_boot_load(&m, &bc, bi, err, errlen);
	if (ret)
		return ret;
	memset(s, 0, sizeof(*s));
	ret = linux_boot_setup_cpu(&m, bi->entry, r, s);
	if (ret)
		snprintf(err, errlen, "no room for the page tables");
	return ret;
}

int igvm_build_linux(const struct igvm_linux_opts *o, uint8_t **out, size_t *out_len,
		     char *err, size_t errlen)
{
	size_t cl = o->cmdline ? strlen(o->cmdline) : 0;
	if (cl + 1 > IGVM_PAGE_SIZE_4K) {
		snprintf(err, errlen, "--cmdline is %zu bytes; at most %u", cl,
			 IGVM_PAGE_SIZE_4K - 1);
		return -EINVAL;
	}
	/* Pass 1 finds how much RAM the layout needs; pass 2 lays it out in that much. */
	struct linux_boot_info bi;
	struct x86_regs r;
	struct x86_sregs s;
	uint8_t *ram = calloc(1, FIRST_PASS_RAM);
	if (!ram)
		return -ENOMEM;
	int ret = layout(o, ram, FIRST_PASS_RAM, &bi, &r, &s, err, errlen);
	free(ram);
	if (ret)
		return ret == -ENOMEM ? -EINVAL : ret;
	uint64_t need = (bi.kernel_end + bi.initrd_size + IGVM_PAGE_SIZE_2M * 2 - 1) &
			~(uint64_t)(IGVM_PAGE_SIZE_2M - 1);
	if (need < 16ull << 20)
		need = 16ull << 20;
	ram = calloc(1, need);
	if (!ram)
		return -ENOMEM;
	ret = layout(o, ram, need, &bi, &r, &s, err, errlen);
	if (ret) {
		free(ram);
		return ret == -ENOMEM ? -EINVAL : ret;
	}
	/* The zero page's command line is the COMMAND_LINE parameter area. */
	uint8_t *zp = ram + BOOT_ZERO_PAGE_GPA;
	put(zp + BP_CMD_LINE_PTR, IGVM_LINUX_CMDLINE_GPA, 4);
	put(zp + BP_EXT_CMD_LINE_PTR, 0, 4);
	uint8_t *st = ram + IGVM_LINUX_STUB_GPA;
	memcpy(st, stub, sizeof(stub));
	put(st + STUB_MMAP_OFF, IGVM_LINUX_MMAP_GPA, 4);
	put(st + STUB_ENTRY_OFF, bi.entry, 8);

	struct igvm_writer w;
	igvm_writer_init(&w, IGVM_FORMAT_VERSION_1, IGVM_ARCH_X64);
	struct igvm_vhs_supported_platform plat = { .compatibility_mask = 1,
		.platform_type = IGVM_PLATFORM_NATIVE, .platform_version = IGVM_PLATFORM_VERSION };
	igvm_writer_header(&w, IGVM_VHT_SUPPORTED_PLATFORM, &plat, sizeof(plat));
	struct igvm_vhs_required_memory req = { .gpa = 0, .compatibility_mask = 1,
		.number_of_bytes = (uint32_t)need };
	igvm_writer_header(&w, IGVM_VHT_REQUIRED_MEMORY, &req, sizeof(req));
	struct igvm_build_param params[2] = {
		{ .type = IGVM_VHT_COMMAND_LINE, .gpa = IGVM_LINUX_CMDLINE_GPA,
		  .initial = cl ? o->cmdline : NULL },
		{ .type = IGVM_VHT_MEMORY_MAP, .gpa = IGVM_LINUX_MMAP_GPA },
	};
	igvm_build_params(&w, params, 2, 0);
	size_t off_field = offsetof(struct igvm_vhs_page_data, file_offset);
	for (uint64_t gpa = 0; gpa < need; gpa += IGVM_PAGE_SIZE_4K) {
		const uint8_t *p = ram + gpa;
		bool zero = true;
		for (unsigned i = 0; i < IGVM_PAGE_SIZE_4K && zero; i++)
			zero = !p[i];
		if (zero || gpa == IGVM_LINUX_CMDLINE_GPA || gpa == IGVM_LINUX_MMAP_GPA)
			continue;
		struct igvm_vhs_page_data pd = { .gpa = gpa, .compatibility_mask = 1 };
		igvm_writer_header_data(&w, IGVM_VHT_PAGE_DATA, &pd, sizeof(pd), (uint32_t)off_field,
					p, IGVM_PAGE_SIZE_4K);
	}
	uint8_t ctx[IGVM_PAGE_SIZE_4K] = { 0 };
	struct igvm_native_vp_context_x64 c = {
		.rip = IGVM_LINUX_STUB_GPA, .rsp = r.rsp, .rsi = r.rsi, .rflags = r.rflags,
		.gdtr_base = s.gdt.base, .gdtr_limit = s.gdt.limit,
		.idtr_base = s.idt.base, .idtr_limit = s.idt.limit,
		.code_selector = s.cs.selector, .code_attributes = seg_attr(&s.cs),
		.code_base = (uint32_t)s.cs.base, .code_limit = s.cs.limit,
		.data_selector = s.ds.selector, .data_attributes = seg_attr(&s.ds),
		.data_base = (uint32_t)s.ds.base, .data_limit = s.ds.limit,
		.cr0 = s.cr0, .cr3 = s.cr3, .cr4 = s.cr4, .efer = s.efer,
	};
	memcpy(ctx, &c, sizeof(c)); /* little-endian host: the on-disk layout */
	struct igvm_vhs_vp_context vp = { .compatibility_mask = 1 };
	igvm_writer_header_data(&w, IGVM_VHT_VP_CONTEXT, &vp, sizeof(vp),
				offsetof(struct igvm_vhs_vp_context, file_offset), ctx, sizeof(ctx));
	free(ram);
	ret = igvm_writer_finish(&w, out, out_len);
	igvm_writer_free(&w);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	struct igvm_file f;
	ret = igvm_open(&f, *out, *out_len, err, errlen);
	if (ret) {
		free(*out);
		*out = NULL;
	}
	return ret;
}
