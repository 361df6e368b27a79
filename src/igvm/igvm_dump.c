/*
 * Human-readable dump of a validated IGVM file, one line per variable header
 * (plus one per VBS register / native context field), in the spirit of
 * OpenVMM's `igvmfilegen dump`. Field names follow igvm_defs.
 */
#include <inttypes.h>

#include "igvm/igvm_internal.h"

static const char *page_type(uint16_t t)
{
	static const char *const n[] = { "NORMAL", "SECRETS", "CPUID_DATA", "CPUID_XF" };
	return t < 4 ? n[t] : "?";
}

static void dump_vp(const struct igvm_hdr *h, FILE *out)
{
	static const char *const kinds[] = { "VBS", "native x64", "SEV-SNP VMSA", "CCA" };
	fprintf(out, " gpa 0x%" PRIx64 " vp_index %u file_offset 0x%x: %s", h->u.vp.gpa, h->u.vp.vp_index,
		h->u.vp.file_offset, kinds[h->u.vp.kind & 3]);
	if (h->u.vp.kind == IGVM_VP_VBS) {
		fprintf(out, " VTL %u, %u registers\n", h->u.vp.vtl, h->u.vp.n_regs);
		for (uint32_t i = 0; i < h->u.vp.n_regs; i++) {
			struct igvm_vbs_reg r;
			igvm_vbs_reg_get(h, i, &r);
			const char *name = igvm_x64_reg_name(r.name);
			fprintf(out, "    %-16s (0x%05x) = 0x%016" PRIx64 "%016" PRIx64 "\n", name ? name : "?",
				r.name, igvm_le64(r.value + 8), igvm_le64(r.value));
		}
	} else if (h->u.vp.kind == IGVM_VP_NATIVE_X64) {
		struct igvm_native_vp_context_x64 c;
		igvm_native_ctx_get(h, &c);
		fprintf(out, "\n    rip 0x%" PRIx64 " rsp 0x%" PRIx64 " rsi 0x%" PRIx64 " rflags 0x%" PRIx64 "\n",
			(uint64_t)c.rip, (uint64_t)c.rsp, (uint64_t)c.rsi, (uint64_t)c.rflags);
		fprintf(out, "    cr0 0x%" PRIx64 " cr3 0x%" PRIx64 " cr4 0x%" PRIx64 " efer 0x%" PRIx64 "\n",
			(uint64_t)c.cr0, (uint64_t)c.cr3, (uint64_t)c.cr4, (uint64_t)c.efer);
		fprintf(out, "    gdtr 0x%" PRIx64 "/0x%x idtr 0x%" PRIx64 "/0x%x cs 0x%x/0x%x ds 0x%x/0x%x\n",
			(uint64_t)c.gdtr_base, c.gdtr_limit, (uint64_t)c.idtr_base, c.idtr_limit,
			c.code_selector, c.code_attributes, c.data_selector, c.data_attributes);
	} else {
		fputc('\n', out);
	}
}

static void dump_header(const struct igvm_hdr *h, FILE *out)
{
	fprintf(out, "[%u] %s", h->index, igvm_type_name(h->type));
	if (h->type != IGVM_VHT_PARAMETER_AREA && h->type < IGVM_VHT_VP_COUNT_PARAMETER)
		fprintf(out, " mask 0x%x", h->mask);
	switch (h->type) {
	case IGVM_VHT_SUPPORTED_PLATFORM:
		fprintf(out, " %s highest_vtl %u version %u shared_gpa_boundary 0x%" PRIx64 "\n",
			igvm_platform_name(h->u.platform.type), h->u.platform.highest_vtl,
			h->u.platform.version, h->u.platform.shared_gpa_boundary);
		break;
	case IGVM_VHT_GUEST_POLICY:
		fprintf(out, " policy 0x%" PRIx64 "\n", h->u.policy.policy);
		break;
	case IGVM_VHT_RELOCATABLE_REGION:
		fprintf(out, " gpa 0x%" PRIx64 " size 0x%" PRIx64 " alignment 0x%" PRIx64 " min 0x%" PRIx64
			" max 0x%" PRIx64 " vp %u vtl %u flags 0x%x%s%s%s\n",
			h->u.reloc.gpa, h->u.reloc.size, h->u.reloc.alignment, h->u.reloc.min_gpa,
			h->u.reloc.max_gpa, h->u.reloc.vp_index, h->u.reloc.vtl, h->u.reloc.flags,
			(h->u.reloc.flags & IGVM_VHF_RELOCATABLE_REGION_IS_VTL2) ? " is_vtl2" : "",
			(h->u.reloc.flags & IGVM_VHF_RELOCATABLE_REGION_APPLY_RIP) ? " apply_rip" : "",
			(h->u.reloc.flags & IGVM_VHF_RELOCATABLE_REGION_APPLY_GDTR) ? " apply_gdtr" : "");
		break;
	case IGVM_VHT_PAGE_TABLE_RELOCATION_REGION:
		fprintf(out, " gpa 0x%" PRIx64 " size 0x%" PRIx64 " used_size 0x%" PRIx64 " vp %u vtl %u\n",
			h->u.pt_reloc.gpa, h->u.pt_reloc.size, h->u.pt_reloc.used_size,
			h->u.pt_reloc.vp_index, h->u.pt_reloc.vtl);
		break;
	case IGVM_VHT_CORIM_DOCUMENT:
	case IGVM_VHT_CORIM_SIGNATURE:
		fprintf(out, " file_offset 0x%x size %u\n", h->u.corim.file_offset, h->u.corim.size);
		break;
	case IGVM_VHT_CCA_POLICY:
		fprintf(out, " required_zeroes 0x%" PRIx64 " required_ones 0x%" PRIx64 " hash %u lfa %u\n",
			h->u.cca.required_zeroes, h->u.cca.required_ones, h->u.cca.hash_algorithm,
			h->u.cca.lfa_policy);
		break;
	case IGVM_VHT_PARAMETER_AREA:
		fprintf(out, " index %u number_of_bytes 0x%" PRIx64 " file_offset 0x%x%s\n", h->u.area.index,
			h->u.area.size, h->u.area.file_offset, h->data ? "" : " (zeroed)");
		break;
	case IGVM_VHT_PAGE_DATA:
		fprintf(out, " gpa 0x%" PRIx64 " type %s flags 0x%x%s%s%s file_offset 0x%x%s\n", h->u.page.gpa,
			page_type(h->u.page.data_type), h->u.page.flags,
			(h->u.page.flags & IGVM_PAGE_DATA_FLAG_IS_2MB_PAGE) ? " 2mb" : "",
			(h->u.page.flags & IGVM_PAGE_DATA_FLAG_UNMEASURED) ? " unmeasured" : "",
			(h->u.page.flags & IGVM_PAGE_DATA_FLAG_SHARED) ? " shared" : "",
			h->u.page.file_offset, h->data ? "" : " (zero page)");
		break;
	case IGVM_VHT_PARAMETER_INSERT:
		fprintf(out, " gpa 0x%" PRIx64 " index %u\n", h->u.insert.gpa, h->u.insert.index);
		break;
	case IGVM_VHT_VP_CONTEXT:
		dump_vp(h, out);
		break;
	case IGVM_VHT_REQUIRED_MEMORY:
		fprintf(out, " gpa 0x%" PRIx64 " number_of_bytes 0x%x%s\n", h->u.mem.gpa, h->u.mem.size,
			(h->u.mem.flags & IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE) ? " vtl2_protectable" : "");
		break;
	case IGVM_VHT_ERROR_RANGE:
		fprintf(out, " gpa 0x%" PRIx64 " size_bytes 0x%x\n", h->u.err.gpa, h->u.err.size);
		break;
	case IGVM_VHT_SNP_ID_BLOCK:
		fprintf(out, " author_key_enabled %u version %u guest_svn %u\n", h->payload[4],
			igvm_le32(h->payload + 88), igvm_le32(h->payload + 92));
		break;
	case IGVM_VHT_VBS_MEASUREMENT:
		fprintf(out, " version %u product_id %u module_id %u svn %u policy 0x%x\n",
			igvm_le32(h->payload + 4), igvm_le32(h->payload + 8), igvm_le32(h->payload + 12),
			igvm_le32(h->payload + 16), igvm_le32(h->payload + 20));
		break;
	default:
		fprintf(out, " area %u byte_offset %u\n", h->u.param.index, h->u.param.offset);
		break;
	}
}

void igvm_dump(const struct igvm_file *f, FILE *out)
{
	fprintf(out, "IGVM format v%u, %s, page size %u, %zu bytes, checksum 0x%08x\n", f->format_version,
		f->arch == IGVM_ARCH_X64 ? "x64" : "aarch64", f->page_size, f->size, f->checksum);
	fprintf(out, "variable headers 0x%x+0x%x (%u headers), file data 0x%x+0x%zx\n", f->var_offset,
		f->var_size, f->n_headers, f->data_offset, f->size - f->data_offset);
	struct igvm_iter it = { 0 };
	struct igvm_hdr h;
	while (igvm_next(f, &it, &h))
		dump_header(&h, out);
}
