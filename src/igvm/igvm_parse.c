/*
 * IGVM parser: the fixed header (v1/v2) with its CRC-32, and one variable
 * header at a time with every rule that needs only that header, the file
 * bounds and the platform headers before it (reference: microsoft/igvm
 * igvm/src/lib.rs new_from_binary_split + validate; summary in
 * ../shared/docs/igvm-and-vsm.md A.1-A.7). Every field is read with explicit
 * little-endian loads from bounds-checked offsets; the file is hostile.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "igvm/igvm_internal.h"

uint32_t igvm_crc32(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];
	static int ready;
	if (!ready) { /* idempotent: racing initialisers write identical values */
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	const uint8_t *p = buf;
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

const char *igvm_type_name(uint32_t type)
{
	switch (type) {
	case IGVM_VHT_SUPPORTED_PLATFORM: return "IGVM_VHT_SUPPORTED_PLATFORM";
	case IGVM_VHT_GUEST_POLICY: return "IGVM_VHT_GUEST_POLICY";
	case IGVM_VHT_RELOCATABLE_REGION: return "IGVM_VHT_RELOCATABLE_REGION";
	case IGVM_VHT_PAGE_TABLE_RELOCATION_REGION: return "IGVM_VHT_PAGE_TABLE_RELOCATION_REGION";
	case IGVM_VHT_CORIM_DOCUMENT: return "IGVM_VHT_CORIM_DOCUMENT";
	case IGVM_VHT_CORIM_SIGNATURE: return "IGVM_VHT_CORIM_SIGNATURE";
	case IGVM_VHT_CCA_POLICY: return "IGVM_VHT_CCA_POLICY";
	case IGVM_VHT_PARAMETER_AREA: return "IGVM_VHT_PARAMETER_AREA";
	case IGVM_VHT_PAGE_DATA: return "IGVM_VHT_PAGE_DATA";
	case IGVM_VHT_PARAMETER_INSERT: return "IGVM_VHT_PARAMETER_INSERT";
	case IGVM_VHT_VP_CONTEXT: return "IGVM_VHT_VP_CONTEXT";
	case IGVM_VHT_REQUIRED_MEMORY: return "IGVM_VHT_REQUIRED_MEMORY";
	case IGVM_VHT_VP_COUNT_PARAMETER: return "IGVM_VHT_VP_COUNT_PARAMETER";
	case IGVM_VHT_SRAT: return "IGVM_VHT_SRAT";
	case IGVM_VHT_MADT: return "IGVM_VHT_MADT";
	case IGVM_VHT_MMIO_RANGES: return "IGVM_VHT_MMIO_RANGES";
	case IGVM_VHT_SNP_ID_BLOCK: return "IGVM_VHT_SNP_ID_BLOCK";
	case IGVM_VHT_MEMORY_MAP: return "IGVM_VHT_MEMORY_MAP";
	case IGVM_VHT_ERROR_RANGE: return "IGVM_VHT_ERROR_RANGE";
	case IGVM_VHT_COMMAND_LINE: return "IGVM_VHT_COMMAND_LINE";
	case IGVM_VHT_SLIT: return "IGVM_VHT_SLIT";
	case IGVM_VHT_PPTT: return "IGVM_VHT_PPTT";
	case IGVM_VHT_VBS_MEASUREMENT: return "IGVM_VHT_VBS_MEASUREMENT";
	case IGVM_VHT_DEVICE_TREE: return "IGVM_VHT_DEVICE_TREE";
	case IGVM_VHT_ENVIRONMENT_INFO_PARAMETER: return "IGVM_VHT_ENVIRONMENT_INFO_PARAMETER";
	default: return "unknown type";
	}
}

const char *igvm_platform_name(uint32_t t)
{
	static const char *const names[] = { "NATIVE", "VSM_ISOLATION", "SEV_SNP", "TDX",
					     "SEV", "SEV_ES", "CCA" };
	return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown platform";
}

/* The x64 registers the reference accepts in a VBS context (registers.rs). */
static const struct { uint32_t name; const char *str; } x64_regs[] = {
	{ 0x20004, "Rsp" }, { 0x20005, "Rbp" }, { 0x20006, "Rsi" }, { 0x20008, "R8" },
	{ 0x20009, "R9" }, { 0x2000A, "R10" }, { 0x2000B, "R11" }, { 0x2000C, "R12" },
	{ 0x20010, "Rip" }, { 0x20011, "Rflags" }, { 0x40000, "Cr0" }, { 0x40002, "Cr3" },
	{ 0x40003, "Cr4" }, { 0x60000, "Es" }, { 0x60001, "Cs" }, { 0x60002, "Ss" },
	{ 0x60003, "Ds" }, { 0x60004, "Fs" }, { 0x60005, "Gs" }, { 0x60007, "Tr" },
	{ 0x70000, "Idtr" }, { 0x70001, "Gdtr" }, { 0x80001, "Efer" }, { 0x80004, "Pat" },
	{ 0x8000E, "MtrrDefType" }, { 0x80010, "MtrrPhysBase0" }, { 0x80011, "MtrrPhysBase1" },
	{ 0x80012, "MtrrPhysBase2" }, { 0x80013, "MtrrPhysBase3" }, { 0x80014, "MtrrPhysBase4" },
	{ 0x80040, "MtrrPhysMask0" }, { 0x80041, "MtrrPhysMask1" }, { 0x80042, "MtrrPhysMask2" },
	{ 0x80043, "MtrrPhysMask3" }, { 0x80044, "MtrrPhysMask4" }, { 0x80070, "MtrrFix64k00000" },
	{ 0x80071, "MtrrFix16k80000" }, { 0x80077, "MtrrFix4kE0000" }, { 0x80078, "MtrrFix4kE8000" },
	{ 0x80079, "MtrrFix4kF0000" }, { 0x8007A, "MtrrFix4kF8000" },
};
#define N_X64_REGS (sizeof(x64_regs) / sizeof(x64_regs[0]))

static int x64_reg_index(uint32_t name)
{
	for (unsigned i = 0; i < N_X64_REGS; i++)
		if (x64_regs[i].name == name)
			return (int)i;
	return -1;
}

const char *igvm_x64_reg_name(uint32_t name)
{
	int i = x64_reg_index(name);
	return i < 0 ? NULL : x64_regs[i].str;
}

int igvm_mask_platform(const struct igvm_file *f, uint32_t mask)
{
	for (uint32_t i = 0; i < f->n_platforms; i++)
		if (f->platforms[i].mask == mask)
			return f->platforms[i].type;
	return -1;
}

uint32_t igvm_platform_mask(const struct igvm_file *f, uint32_t type)
{
	for (uint32_t i = 0; i < f->n_platforms; i++)
		if (f->platforms[i].type == type)
			return f->platforms[i].mask;
	return 0;
}

void igvm_errf(char *err, size_t errlen, const struct igvm_hdr *h, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	int n = h ? snprintf(err, errlen, "header %u (%s): ", h->index, igvm_type_name(h->type))
		  : snprintf(err, errlen, "fixed header: ");
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

int igvm_parse_fixed(struct igvm_file *f, const uint8_t *buf, size_t size, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->size = size;
	if (size < sizeof(struct igvm_fixed_header)) {
		igvm_errf(err, errlen, NULL, "file is %zu bytes, shorter than the 24-byte fixed header", size);
		return -EINVAL;
	}
	if (igvm_le32(buf) != IGVM_MAGIC_VALUE) {
		igvm_errf(err, errlen, NULL, "bad magic 0x%08x (expected 0x%08x \"IGVM\")",
			  igvm_le32(buf), IGVM_MAGIC_VALUE);
		return -EINVAL;
	}
	f->format_version = igvm_le32(buf + 4);
	f->arch = IGVM_ARCH_X64;
	f->page_size = IGVM_PAGE_SIZE_4K;
	f->fixed_size = sizeof(struct igvm_fixed_header);
	if (f->format_version == IGVM_FORMAT_VERSION_2) {
		f->fixed_size = sizeof(struct igvm_fixed_header_v2);
		if (size < f->fixed_size) {
			igvm_errf(err, errlen, NULL, "file is %zu bytes, shorter than the 32-byte v2 fixed header", size);
			return -EINVAL;
		}
		f->arch = igvm_le32(buf + 24);
		f->page_size = igvm_le32(buf + 28);
		if (f->arch != IGVM_ARCH_X64 && f->arch != IGVM_ARCH_AARCH64) {
			igvm_errf(err, errlen, NULL, "unknown architecture %u", f->arch);
			return -EINVAL;
		}
		if (f->page_size != IGVM_PAGE_SIZE_4K) {
			igvm_errf(err, errlen, NULL, "unsupported page size %u (only 4096)", f->page_size);
			return -EINVAL;
		}
	} else if (f->format_version != IGVM_FORMAT_VERSION_1) {
		igvm_errf(err, errlen, NULL, "unsupported format version %u", f->format_version);
		return -EINVAL;
	}
	f->var_offset = igvm_le32(buf + 8);
	f->var_size = igvm_le32(buf + 12);
	uint32_t total = igvm_le32(buf + 16);
	f->checksum = igvm_le32(buf + 20);
	if (total != size) {
		igvm_errf(err, errlen, NULL, "total_file_size %u but the file is %zu bytes", total, size);
		return -EINVAL;
	}
	if (f->var_offset < f->fixed_size || f->var_offset % 8) {
		igvm_errf(err, errlen, NULL, "variable_header_offset %u overlaps the fixed header or is not 8-byte aligned",
			  f->var_offset);
		return -EINVAL;
	}
	uint64_t data_start = (uint64_t)f->var_offset + f->var_size;
	/* The reference rejects an empty data section as well (>=, not >). */
	if (f->var_offset >= size || data_start >= size) {
		igvm_errf(err, errlen, NULL, "variable header 0x%x+0x%x reaches the end of the file (0x%zx)",
			  f->var_offset, f->var_size, size);
		return -EINVAL;
	}
	if (f->var_size % 8) {
		igvm_errf(err, errlen, NULL, "variable_header_size %u not a multiple of 8", f->var_size);
		return -EINVAL;
	}
	f->data_offset = (uint32_t)data_start;
	uint8_t fixed[sizeof(struct igvm_fixed_header_v2)];
	memcpy(fixed, buf, f->fixed_size);
	memset(fixed + 20, 0, 4);
	uint32_t crc = igvm_crc32(0, fixed, f->fixed_size);
	crc = igvm_crc32(crc, buf + f->var_offset, f->var_size);
	if (crc != f->checksum) {
		igvm_errf(err, errlen, NULL, "checksum 0x%08x does not match the CRC-32 0x%08x of the headers",
			  f->checksum, crc);
		return -EINVAL;
	}
	return 0;
}

/* Bounds-check file data [off, off+len): absolute, inside the data section. */
static int file_data(const struct igvm_file *f, struct igvm_hdr *h, uint32_t off, uint64_t len,
		     bool check, char *err, size_t errlen)
{
	if (off == 0) {
		h->data = NULL;
		h->data_len = len;
		return 0;
	}
	if (check && off < f->data_offset) {
		igvm_errf(err, errlen, h, "file_offset 0x%x points into the headers (data starts at 0x%x)",
			  off, f->data_offset);
		return -EINVAL;
	}
	if (check && (uint64_t)off + len > f->size) {
		igvm_errf(err, errlen, h, "file data 0x%x+0x%llx runs past the end of the file (0x%zx)",
			  off, (unsigned long long)len, f->size);
		return -EINVAL;
	}
	h->data = f->buf + off;
	h->data_len = len;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static uint32_t payload_size(uint32_t type)
{
	switch (type) {
	case IGVM_VHT_SUPPORTED_PLATFORM: return sizeof(struct igvm_vhs_supported_platform);
	case IGVM_VHT_GUEST_POLICY: return sizeof(struct igvm_vhs_guest_policy);
	case IGVM_VHT_RELOCATABLE_REGION: return sizeof(struct igvm_vhs_relocatable_region);
	case IGVM_VHT_PAGE_TABLE_RELOCATION_REGION: return sizeof(struct igvm_vhs_page_table_relocation);
	case IGVM_VHT_CORIM_DOCUMENT:
	case IGVM_VHT_CORIM_SIGNATURE: return sizeof(struct igvm_vhs_corim_data);
	case IGVM_VHT_CCA_POLICY: return sizeof(struct igvm_vhs_cca_policy);
	case IGVM_VHT_PARAMETER_AREA: return sizeof(struct igvm_vhs_parameter_area);
	case IGVM_VHT_PAGE_DATA: return sizeof(struct igvm_vhs_page_data);
	case IGVM_VHT_PARAMETER_INSERT: return sizeof(struct igvm_vhs_parameter_insert);
	case IGVM_VHT_VP_CONTEXT: return sizeof(struct igvm_vhs_vp_context);
	case IGVM_VHT_REQUIRED_MEMORY: return sizeof(struct igvm_vhs_required_memory);
	case IGVM_VHT_VP_COUNT_PARAMETER: case IGVM_VHT_SRAT: case IGVM_VHT_MADT:
	case IGVM_VHT_MMIO_RANGES: case IGVM_VHT_MEMORY_MAP: case IGVM_VHT_COMMAND_LINE:
	case IGVM_VHT_SLIT: case IGVM_VHT_PPTT: case IGVM_VHT_DEVICE_TREE:
	case IGVM_VHT_ENVIRONMENT_INFO_PARAMETER: return sizeof(struct igvm_vhs_parameter);
	case IGVM_VHT_SNP_ID_BLOCK: return sizeof(struct igvm_vhs_snp_id_block);
	case IGVM_VHT_ERROR_RANGE: return sizeof(struct igvm_vhs_error_range);
	case IGVM_VHT_VBS_MEASUREMENT: return sizeof(struct igvm_vhs_vbs_measurement);
	default: return 0;
	}
}

#define FAIL(...) do { igvm_errf(err, errlen, h, __VA_ARGS__); return -EINVAL; } while (0)
#define ALIGNED(x, a) (((x) & ((uint64_t)(a) - 1)) == 0)

static int check_platform(const struct igvm_file *f, struct igvm_hdr *h, char *err, size_t errlen)
{
	const struct igvm_platform *p = &h->u.platform;
	if (__builtin_popcount(p->mask) != 1)
		FAIL("compatibility_mask 0x%x must have exactly one bit set", p->mask);
	if (p->highest_vtl != 0 && p->highest_vtl != 2)
		FAIL("highest_vtl %u must be 0 or 2", p->highest_vtl);
	if (p->type > IGVM_PLATFORM_CCA)
		FAIL("unknown platform_type %u", p->type);
	if (p->version != IGVM_PLATFORM_VERSION)
		FAIL("platform_version %u for %s (expected 1)", p->version, igvm_platform_name(p->type));
	if ((p->type == IGVM_PLATFORM_NATIVE || p->type == IGVM_PLATFORM_VSM_ISOLATION) &&
	    p->shared_gpa_boundary)
		FAIL("shared_gpa_boundary 0x%llx must be 0 for %s",
		     (unsigned long long)p->shared_gpa_boundary, igvm_platform_name(p->type));
	if (p->type == IGVM_PLATFORM_CCA ? f->arch != IGVM_ARCH_AARCH64
	    : p->type != IGVM_PLATFORM_VSM_ISOLATION && f->arch != IGVM_ARCH_X64)
		FAIL("platform %s not supported on architecture %u", igvm_platform_name(p->type), f->arch);
	return 0;
}

static int check_vp_context(const struct igvm_file *f, struct igvm_hdr *h, bool check,
			    char *err, size_t errlen)
{
	int plat = igvm_mask_platform(f, h->mask);
	switch (plat) {
	case IGVM_PLATFORM_VSM_ISOLATION: h->u.vp.kind = IGVM_VP_VBS; break;
	case IGVM_PLATFORM_SEV_SNP: case IGVM_PLATFORM_SEV_ES: h->u.vp.kind = IGVM_VP_SNP_VMSA; break;
	case IGVM_PLATFORM_NATIVE: case IGVM_PLATFORM_SEV: h->u.vp.kind = IGVM_VP_NATIVE_X64; break;
	case IGVM_PLATFORM_CCA: h->u.vp.kind = IGVM_VP_CCA; break;
	default:
		if (check)
			FAIL("compatibility_mask 0x%x names no platform with a VP context format", h->mask);
		return 0;
	}
	uint32_t off = h->u.vp.file_offset;
	if (check && off == 0)
		FAIL("file_offset 0: no VP context data");
	if (h->u.vp.kind != IGVM_VP_VBS) {
		if (file_data(f, h, off, IGVM_PAGE_SIZE_4K, check, err, errlen))
			return -EINVAL;
		if (!check)
			return 0;
		if (h->u.vp.kind == IGVM_VP_SNP_VMSA && !ALIGNED(h->u.vp.gpa, IGVM_PAGE_SIZE_4K))
			FAIL("VMSA gpa 0x%llx not 4 KiB aligned", (unsigned long long)h->u.vp.gpa);
		if (h->u.vp.kind == IGVM_VP_NATIVE_X64 && f->arch != IGVM_ARCH_X64)
			FAIL("native x64 VP context in a non-x64 file");
		if (h->u.vp.kind == IGVM_VP_CCA && f->arch != IGVM_ARCH_AARCH64)
			FAIL("CCA VP context in a non-AArch64 file");
		size_t used = h->u.vp.kind == IGVM_VP_NATIVE_X64 ? sizeof(struct igvm_native_vp_context_x64)
			    : h->u.vp.kind == IGVM_VP_CCA ? IGVM_CCA_VP_CONTEXT_SIZE : IGVM_PAGE_SIZE_4K;
		if (!all_zero(h->data + used, IGVM_PAGE_SIZE_4K - used))
			FAIL("VP context page has non-zero bytes after the %zu-byte context", used);
		return 0;
	}
	if (file_data(f, h, off, 4, check, err, errlen))
		return -EINVAL;
	uint32_t n = igvm_le32(h->data);
	if (file_data(f, h, off, 4 + 32 * (uint64_t)n, check, err, errlen))
		return -EINVAL;
	h->u.vp.n_regs = n;
	h->u.vp.vtl = n ? h->data[4] : 0;
	if (!check)
		return 0;
	if (n == 0)
		FAIL("VBS VP context has no registers");
	if (h->u.vp.vp_index != 0)
		FAIL("VBS VP context for vp_index %u (only the BSP, 0)", h->u.vp.vp_index);
	if (h->u.vp.vtl > 2)
		FAIL("VBS VP context register 0 names VTL %u", h->u.vp.vtl);
	uint64_t seen = 0;
	_Static_assert(N_X64_REGS <= 64, "seen bitmap");
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *r = h->data + 4 + 32 * (size_t)i;
		uint32_t name = igvm_le32(r + 1);
		if (r[0] != h->u.vp.vtl)
			FAIL("VBS VP context register %u names VTL %u, register 0 VTL %u", i, r[0], h->u.vp.vtl);
		if (f->arch != IGVM_ARCH_X64)
			continue; /* AArch64 register names are not checked here */
		int idx = x64_reg_index(name);
		if (idx < 0)
			FAIL("VBS VP context register %u: unsupported x64 register 0x%x", i, name);
		if (seen & (1ull << idx))
			FAIL("VBS VP context register %u: %s set twice", i, x64_regs[idx].str);
		seen |= 1ull << idx;
	}
	return 0;
}

int igvm_decode(const struct igvm_file *f, uint32_t *cursor, uint32_t index,
		struct igvm_hdr *h, bool check, char *err, size_t errlen)
{
	uint32_t end = f->var_offset + f->var_size, at = *cursor;
	memset(h, 0, sizeof(*h));
	h->index = index;
	h->offset = at + 8;
	if (end - at < 8) {
		h->type = 0;
		FAIL("truncated entry: %u bytes left in the variable header", end - at);
	}
	const uint8_t *p = f->buf + at;
	h->type = igvm_le32(p);
	h->length = igvm_le32(p + 4);
	h->payload = p + 8;
	uint32_t want = payload_size(h->type);
	if (want == 0)
		FAIL("unknown variable header type 0x%x", h->type);
	if (h->length != want)
		FAIL("length %u, expected %u", h->length, want);
	uint32_t padded = (want + 7) & ~7u;
	if (end - at - 8 < padded)
		FAIL("payload of %u bytes runs past the variable header", padded);
	if (check && !all_zero(p + 8 + want, padded - want))
		FAIL("non-zero padding after the payload");
	*cursor = at + 8 + padded;
	p += 8;
	switch (h->type) {
	case IGVM_VHT_SUPPORTED_PLATFORM:
		h->mask = h->u.platform.mask = igvm_le32(p);
		h->u.platform.highest_vtl = p[4];
		h->u.platform.type = p[5];
		h->u.platform.version = igvm_le16(p + 6);
		h->u.platform.shared_gpa_boundary = igvm_le64(p + 8);
		return check ? check_platform(f, h, err, errlen) : 0;
	case IGVM_VHT_GUEST_POLICY:
		h->u.policy.policy = igvm_le64(p);
		h->mask = igvm_le32(p + 8);
		if (check && igvm_le32(p + 12))
			FAIL("reserved field is not zero");
		return 0;
	case IGVM_VHT_RELOCATABLE_REGION: {
		h->mask = igvm_le32(p);
		h->u.reloc.vp_index = igvm_le16(p + 4);
		h->u.reloc.vtl = p[6];
		h->u.reloc.flags = p[7];
		h->u.reloc.alignment = igvm_le64(p + 8);
		h->u.reloc.gpa = igvm_le64(p + 16);
		h->u.reloc.size = igvm_le64(p + 24);
		h->u.reloc.min_gpa = igvm_le64(p + 32);
		h->u.reloc.max_gpa = igvm_le64(p + 40);
		if (!check)
			return 0;
		uint64_t a = h->u.reloc.alignment;
		if (h->u.reloc.size == 0 || !ALIGNED(h->u.reloc.size, IGVM_PAGE_SIZE_4K))
			FAIL("relocation_region_size 0x%llx not a non-zero 4 KiB multiple",
			     (unsigned long long)h->u.reloc.size);
		if (a == 0 || a % IGVM_PAGE_SIZE_4K)
			FAIL("relocation_alignment 0x%llx not a non-zero 4 KiB multiple", (unsigned long long)a);
		if (h->u.reloc.gpa % a || h->u.reloc.min_gpa % a || h->u.reloc.max_gpa % a)
			FAIL("gpa 0x%llx, minimum 0x%llx or maximum 0x%llx not aligned to 0x%llx",
			     (unsigned long long)h->u.reloc.gpa, (unsigned long long)h->u.reloc.min_gpa,
			     (unsigned long long)h->u.reloc.max_gpa, (unsigned long long)a);
		if (h->u.reloc.gpa + h->u.reloc.size < h->u.reloc.gpa)
			FAIL("region 0x%llx+0x%llx wraps around", (unsigned long long)h->u.reloc.gpa,
			     (unsigned long long)h->u.reloc.size);
		if (h->u.reloc.vtl > 2)
			FAIL("vtl %u (0..2)", h->u.reloc.vtl);
		return 0;
	}
	case IGVM_VHT_PAGE_TABLE_RELOCATION_REGION:
		h->mask = igvm_le32(p);
		h->u.pt_reloc.vp_index = igvm_le16(p + 4);
		h->u.pt_reloc.vtl = p[6];
		h->u.pt_reloc.gpa = igvm_le64(p + 8);
		h->u.pt_reloc.size = igvm_le64(p + 16);
		h->u.pt_reloc.used_size = igvm_le64(p + 24);
		if (!check)
			return 0;
		if (p[7])
			FAIL("reserved field is not zero");
		if (!ALIGNED(h->u.pt_reloc.gpa, IGVM_PAGE_SIZE_4K))
			FAIL("gpa 0x%llx not 4 KiB aligned", (unsigned long long)h->u.pt_reloc.gpa);
		if (h->u.pt_reloc.size == 0 || !ALIGNED(h->u.pt_reloc.size, IGVM_PAGE_SIZE_4K) ||
		    !ALIGNED(h->u.pt_reloc.used_size, IGVM_PAGE_SIZE_4K))
			FAIL("size 0x%llx or used_size 0x%llx not a (non-zero) 4 KiB multiple",
			     (unsigned long long)h->u.pt_reloc.size, (unsigned long long)h->u.pt_reloc.used_size);
		if (h->u.pt_reloc.used_size > h->u.pt_reloc.size)
			FAIL("used_size 0x%llx larger than size 0x%llx",
			     (unsigned long long)h->u.pt_reloc.used_size, (unsigned long long)h->u.pt_reloc.size);
		if (h->u.pt_reloc.gpa + h->u.pt_reloc.size < h->u.pt_reloc.gpa)
			FAIL("region wraps around");
		if (h->u.pt_reloc.vtl > 2)
			FAIL("vtl %u (0..2)", h->u.pt_reloc.vtl);
		return 0;
	case IGVM_VHT_CORIM_DOCUMENT:
	case IGVM_VHT_CORIM_SIGNATURE:
		h->mask = igvm_le32(p);
		h->u.corim.file_offset = igvm_le32(p + 4);
		h->u.corim.size = igvm_le32(p + 8);
		if (check && igvm_le32(p + 12))
			FAIL("reserved field is not zero");
		return file_data(f, h, h->u.corim.file_offset, h->u.corim.size, check, err, errlen);
	case IGVM_VHT_CCA_POLICY:
		h->mask = igvm_le32(p);
		h->u.cca.required_zeroes = igvm_le64(p + 8);
		h->u.cca.required_ones = igvm_le64(p + 16);
		h->u.cca.hash_algorithm = p[24];
		h->u.cca.lfa_policy = p[25];
		if (!check)
			return 0;
		if (igvm_le32(p + 4) || !all_zero(p + 26, 6))
			FAIL("reserved field is not zero");
		if (f->arch != IGVM_ARCH_AARCH64)
			FAIL("CCA policy in a non-AArch64 file");
		if (h->u.cca.required_zeroes & h->u.cca.required_ones)
			FAIL("attributes required both zero and one: 0x%llx",
			     (unsigned long long)(h->u.cca.required_zeroes & h->u.cca.required_ones));
		for (int b = 0; b < 32; b++)
			if ((h->mask >> b & 1) && igvm_mask_platform(f, 1u << b) != IGVM_PLATFORM_CCA)
				FAIL("compatibility_mask bit 0x%x is not a CCA platform", 1u << b);
		return 0;
	case IGVM_VHT_PARAMETER_AREA:
		h->u.area.size = igvm_le64(p);
		h->u.area.index = igvm_le32(p + 8);
		h->u.area.file_offset = igvm_le32(p + 12);
		if (check && !ALIGNED(h->u.area.size, IGVM_PAGE_SIZE_4K))
			FAIL("number_of_bytes 0x%llx not a 4 KiB multiple", (unsigned long long)h->u.area.size);
		return file_data(f, h, h->u.area.file_offset, h->u.area.size, check, err, errlen);
	case IGVM_VHT_PAGE_DATA:
		h->u.page.gpa = igvm_le64(p);
		h->mask = igvm_le32(p + 8);
		h->u.page.file_offset = igvm_le32(p + 12);
		h->u.page.flags = igvm_le32(p + 16);
		h->u.page.data_type = igvm_le16(p + 20);
		if (check) {
			if (!ALIGNED(h->u.page.gpa, IGVM_PAGE_SIZE_4K))
				FAIL("gpa 0x%llx not 4 KiB aligned", (unsigned long long)h->u.page.gpa);
			if (h->u.page.data_type > IGVM_PAGE_DATA_TYPE_CPUID_XF)
				FAIL("unknown data_type %u", h->u.page.data_type);
			if (igvm_le16(p + 22))
				FAIL("reserved field is not zero");
		}
		return file_data(f, h, h->u.page.file_offset, IGVM_PAGE_SIZE_4K, check, err, errlen);
	case IGVM_VHT_PARAMETER_INSERT:
		h->u.insert.gpa = igvm_le64(p);
		h->mask = igvm_le32(p + 8);
		h->u.insert.index = igvm_le32(p + 12);
		if (check && !ALIGNED(h->u.insert.gpa, IGVM_PAGE_SIZE_4K))
			FAIL("gpa 0x%llx not 4 KiB aligned", (unsigned long long)h->u.insert.gpa);
		return 0;
	case IGVM_VHT_VP_CONTEXT:
		h->u.vp.gpa = igvm_le64(p);
		h->mask = igvm_le32(p + 8);
		h->u.vp.file_offset = igvm_le32(p + 12);
		h->u.vp.vp_index = igvm_le16(p + 16);
		return check_vp_context(f, h, check, err, errlen);
	case IGVM_VHT_REQUIRED_MEMORY:
		h->u.mem.gpa = igvm_le64(p);
		h->mask = igvm_le32(p + 8);
		h->u.mem.size = igvm_le32(p + 12);
		h->u.mem.flags = igvm_le32(p + 16);
		if (!check)
			return 0;
		if (igvm_le32(p + 20))
			FAIL("reserved field is not zero");
		if (!ALIGNED(h->u.mem.gpa, IGVM_PAGE_SIZE_4K) || !ALIGNED(h->u.mem.size, IGVM_PAGE_SIZE_4K))
			FAIL("gpa 0x%llx or number_of_bytes 0x%x not 4 KiB aligned",
			     (unsigned long long)h->u.mem.gpa, h->u.mem.size);
		return 0;
	case IGVM_VHT_ERROR_RANGE:
		h->u.err.gpa = igvm_le64(p);
		h->mask = igvm_le32(p + 8);
		h->u.err.size = igvm_le32(p + 12);
		if (check && !ALIGNED(h->u.err.gpa, IGVM_PAGE_SIZE_4K))
			FAIL("gpa 0x%llx not 4 KiB aligned", (unsigned long long)h->u.err.gpa);
		return 0;
	case IGVM_VHT_SNP_ID_BLOCK:
	case IGVM_VHT_VBS_MEASUREMENT:
		h->mask = igvm_le32(p);
		return 0;
	default: /* the parameter usages */
		h->u.param.index = igvm_le32(p);
		h->u.param.offset = igvm_le32(p + 4);
		return 0;
	}
}

bool igvm_next(const struct igvm_file *f, struct igvm_iter *it, struct igvm_hdr *h)
{
	if (it->offset == 0)
		it->offset = f->var_offset;
	if (it->offset >= f->var_offset + f->var_size)
		return false;
	if (igvm_decode(f, &it->offset, it->index, h, false, NULL, 0))
		return false;
	it->index++;
	return true;
}

void igvm_vbs_reg_get(const struct igvm_hdr *h, uint32_t i, struct igvm_vbs_reg *r)
{
	const uint8_t *p = h->data + 4 + 32 * (size_t)i;
	r->vtl = p[0];
	r->name = igvm_le32(p + 1);
	memcpy(r->value, p + 16, 16);
}

void igvm_native_ctx_get(const struct igvm_hdr *h, struct igvm_native_vp_context_x64 *c)
{
	const uint8_t *p = h->data;
	for (int i = 0; i < 19; i++) { /* rax..r15, rip, rflags, idtr_base */
		uint64_t v = igvm_le64(p + 8 * i);
		memcpy((uint8_t *)c + 8 * i, &v, 8);
	}
	c->idtr_limit = igvm_le16(p + 152);
	c->reserved[0] = igvm_le16(p + 154);
	c->reserved[1] = igvm_le16(p + 156);
	c->gdtr_limit = igvm_le16(p + 158);
	c->gdtr_base = igvm_le64(p + 160);
	c->code_selector = igvm_le16(p + 168);
	c->code_attributes = igvm_le16(p + 170);
	c->code_base = igvm_le32(p + 172);
	c->code_limit = igvm_le32(p + 176);
	c->data_selector = igvm_le16(p + 180);
	c->data_attributes = igvm_le16(p + 182);
	c->data_base = igvm_le32(p + 184);
	c->data_limit = igvm_le32(p + 188);
	c->gs_base = igvm_le64(p + 192);
	c->cr0 = igvm_le64(p + 200);
	c->cr3 = igvm_le64(p + 208);
	c->cr4 = igvm_le64(p + 216);
	c->efer = igvm_le64(p + 224);
}
