/*
 * IGVM (Independent Guest Virtual Machine) file format: on-disk constants and
 * structures, after Microsoft's igvm_defs crate (microsoft/igvm igvm_defs/src/
 * lib.rs, format version 1 and 2) as summarised in
 * ../shared/docs/igvm-and-vsm.md part A. Everything on disk is little-endian;
 * the packed structs below document the layout and let a writer emit it, the
 * parser reads fields with explicit little-endian loads at these offsets so it
 * works on any host. Sizes are checked against the reference with
 * _Static_assert.
 */
#ifndef HVMM_IGVM_DEFS_H
#define HVMM_IGVM_DEFS_H

#include <stdint.h>

#define IGVM_MAGIC_VALUE 0x4D564749u /* "IGVM" read as a little-endian u32 */
#define IGVM_FORMAT_VERSION_1 1u
#define IGVM_FORMAT_VERSION_2 2u
#define IGVM_ARCH_X64 0u
#define IGVM_ARCH_AARCH64 1u
#define IGVM_PAGE_SIZE_4K 4096u
#define IGVM_PAGE_SIZE_2M (2u * 1024 * 1024)

struct igvm_fixed_header {
	uint32_t magic;
	uint32_t format_version;
	uint32_t variable_header_offset;
	uint32_t variable_header_size;
	uint32_t total_file_size;
	uint32_t checksum;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_fixed_header) == 24, "IGVM_FIXED_HEADER");

struct igvm_fixed_header_v2 {
	struct igvm_fixed_header v1;
	uint32_t architecture;
	uint32_t page_size;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_fixed_header_v2) == 32, "IGVM_FIXED_HEADER_V2");

/* Variable header entry prefix; `length` excludes these 8 bytes. */
struct igvm_vhs_variable_header {
	uint32_t type;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_variable_header) == 8, "IGVM_VHS_VARIABLE_HEADER");

/* Variable header types (IgvmVariableHeaderType). */
#define IGVM_VHT_SUPPORTED_PLATFORM 0x001u
#define IGVM_VHT_GUEST_POLICY 0x101u
#define IGVM_VHT_RELOCATABLE_REGION 0x102u
#define IGVM_VHT_PAGE_TABLE_RELOCATION_REGION 0x103u
#define IGVM_VHT_CORIM_DOCUMENT 0x104u
#define IGVM_VHT_CORIM_SIGNATURE 0x105u
#define IGVM_VHT_CCA_POLICY 0x106u
#define IGVM_VHT_PARAMETER_AREA 0x301u
#define IGVM_VHT_PAGE_DATA 0x302u
#define IGVM_VHT_PARAMETER_INSERT 0x303u
#define IGVM_VHT_VP_CONTEXT 0x304u
#define IGVM_VHT_REQUIRED_MEMORY 0x305u
#define IGVM_VHT_RESERVED_DO_NOT_USE 0x306u
#define IGVM_VHT_VP_COUNT_PARAMETER 0x307u
#define IGVM_VHT_SRAT 0x308u
#define IGVM_VHT_MADT 0x309u
#define IGVM_VHT_MMIO_RANGES 0x30Au
#define IGVM_VHT_SNP_ID_BLOCK 0x30Bu
#define IGVM_VHT_MEMORY_MAP 0x30Cu
#define IGVM_VHT_ERROR_RANGE 0x30Du
#define IGVM_VHT_COMMAND_LINE 0x30Eu
#define IGVM_VHT_SLIT 0x30Fu
#define IGVM_VHT_PPTT 0x310u
#define IGVM_VHT_VBS_MEASUREMENT 0x311u
#define IGVM_VHT_DEVICE_TREE 0x312u
#define IGVM_VHT_ENVIRONMENT_INFO_PARAMETER 0x313u
#define IGVM_VHT_RANGE_PLATFORM_FIRST 0x001u
#define IGVM_VHT_RANGE_PLATFORM_LAST 0x100u
#define IGVM_VHT_RANGE_INIT_FIRST 0x101u
#define IGVM_VHT_RANGE_INIT_LAST 0x200u
#define IGVM_VHT_RANGE_DIRECTIVE_FIRST 0x301u
#define IGVM_VHT_RANGE_DIRECTIVE_LAST 0x400u
#define IGVM_VHT_OPTIONAL 0x80000000u /* "ignorable if unknown"; the reference still rejects it */

/* IgvmPlatformType */
#define IGVM_PLATFORM_NATIVE 0x00u
#define IGVM_PLATFORM_VSM_ISOLATION 0x01u
#define IGVM_PLATFORM_SEV_SNP 0x02u
#define IGVM_PLATFORM_TDX 0x03u
#define IGVM_PLATFORM_SEV 0x04u
#define IGVM_PLATFORM_SEV_ES 0x05u
#define IGVM_PLATFORM_CCA 0x06u
#define IGVM_PLATFORM_VERSION 1u /* every IGVM_*_PLATFORM_VERSION is 1 */

struct igvm_vhs_supported_platform {
	uint32_t compatibility_mask;
	uint8_t highest_vtl;
	uint8_t platform_type;
	uint16_t platform_version;
	uint64_t shared_gpa_boundary;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_supported_platform) == 16, "IGVM_VHS_SUPPORTED_PLATFORM");

struct igvm_vhs_guest_policy {
	uint64_t policy;
	uint32_t compatibility_mask;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_guest_policy) == 16, "IGVM_VHS_GUEST_POLICY");

#define IGVM_VHF_RELOCATABLE_REGION_IS_VTL2 0x1u
#define IGVM_VHF_RELOCATABLE_REGION_APPLY_RIP 0x2u
#define IGVM_VHF_RELOCATABLE_REGION_APPLY_GDTR 0x4u

struct igvm_vhs_relocatable_region {
	uint32_t compatibility_mask;
	uint16_t vp_index;
	uint8_t vtl;
	uint8_t flags;
	uint64_t relocation_alignment;
	uint64_t relocation_region_gpa;
	uint64_t relocation_region_size;
	uint64_t minimum_relocation_gpa;
	uint64_t maximum_relocation_gpa;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_relocatable_region) == 48, "IGVM_VHS_RELOCATABLE_REGION");

struct igvm_vhs_page_table_relocation {
	uint32_t compatibility_mask;
	uint16_t vp_index;
	uint8_t vtl;
	uint8_t reserved;
	uint64_t gpa;
	uint64_t size;
	uint64_t used_size;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_page_table_relocation) == 32, "IGVM_VHS_PAGE_TABLE_RELOCATION");

/* CORIM_DOCUMENT and CORIM_SIGNATURE (IGVM_VHS_CORIM_DATA). */
struct igvm_vhs_corim_data {
	uint32_t compatibility_mask;
	uint32_t file_offset;
	uint32_t size_bytes;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_corim_data) == 16, "IGVM_VHS_CORIM_DATA");

struct igvm_vhs_cca_policy {
	uint32_t compatibility_mask;
	uint32_t reserved;
	uint64_t attributes_required_zeroes;
	uint64_t attributes_required_ones;
	uint8_t hash_algorithm;
	uint8_t lfa_policy;
	uint8_t reserved2[6];
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_cca_policy) == 32, "IGVM_VHS_CCA_POLICY");

struct igvm_vhs_parameter_area {
	uint64_t number_of_bytes;
	uint32_t parameter_area_index;
	uint32_t file_offset; /* 0: the area starts zeroed */
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_parameter_area) == 16, "IGVM_VHS_PARAMETER_AREA");

#define IGVM_PAGE_DATA_FLAG_IS_2MB_PAGE 0x1u
#define IGVM_PAGE_DATA_FLAG_UNMEASURED 0x2u
#define IGVM_PAGE_DATA_FLAG_SHARED 0x4u
#define IGVM_PAGE_DATA_TYPE_NORMAL 0u
#define IGVM_PAGE_DATA_TYPE_SECRETS 1u
#define IGVM_PAGE_DATA_TYPE_CPUID_DATA 2u
#define IGVM_PAGE_DATA_TYPE_CPUID_XF 3u

struct igvm_vhs_page_data {
	uint64_t gpa;
	uint32_t compatibility_mask;
	uint32_t file_offset; /* 0: a zero page */
	uint32_t flags;
	uint16_t data_type;
	uint16_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_page_data) == 24, "IGVM_VHS_PAGE_DATA");

struct igvm_vhs_parameter_insert {
	uint64_t gpa;
	uint32_t compatibility_mask;
	uint32_t parameter_area_index;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_parameter_insert) == 16, "IGVM_VHS_PARAMETER_INSERT");

/* Length 20, padded to 24 in the file; gpa is an unaligned u64. */
struct igvm_vhs_vp_context {
	uint64_t gpa;
	uint32_t compatibility_mask;
	uint32_t file_offset;
	uint16_t vp_index;
	uint16_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_vp_context) == 20, "IGVM_VHS_VP_CONTEXT");

#define IGVM_REQUIRED_MEMORY_FLAG_VTL2_PROTECTABLE 0x1u

struct igvm_vhs_required_memory {
	uint64_t gpa;
	uint32_t compatibility_mask;
	uint32_t number_of_bytes;
	uint32_t flags;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_required_memory) == 24, "IGVM_VHS_REQUIRED_MEMORY");

/* Every parameter usage directive (VP_COUNT .. ENVIRONMENT_INFO). */
struct igvm_vhs_parameter {
	uint32_t parameter_area_index;
	uint32_t byte_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_parameter) == 8, "IGVM_VHS_PARAMETER");

struct igvm_vhs_error_range {
	uint64_t gpa;
	uint32_t compatibility_mask;
	uint32_t size_bytes;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_error_range) == 16, "IGVM_VHS_ERROR_RANGE");

/*
 * IGVM_VHS_SNP_ID_BLOCK is 696 bytes: the signature and key members are the
 * 144/152-byte prefixes {r,s} and {curve,rsvd,qx,qy}; the reference keeps them
 * as fixed 72-byte component arrays, so we only describe the prefix layout.
 */
struct igvm_vhs_snp_id_block {
	uint32_t compatibility_mask;
	uint8_t author_key_enabled;
	uint8_t reserved[3];
	uint8_t ld[48];
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t version;
	uint32_t guest_svn;
	uint32_t id_key_algorithm;
	uint32_t author_key_algorithm;
	uint8_t id_key_signature[144];
	uint8_t id_public_key[152];
	uint8_t author_key_signature[144];
	uint8_t author_public_key[152];
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_snp_id_block) == 696, "IGVM_VHS_SNP_ID_BLOCK");

struct igvm_vhs_vbs_measurement {
	uint32_t compatibility_mask;
	uint32_t version;
	uint32_t product_id;
	uint32_t module_id;
	uint32_t security_version;
	uint32_t policy_flags;
	uint32_t boot_digest_algo;
	uint32_t signing_algo;
	uint8_t boot_measurement_digest[64];
	uint8_t signature[256];
	uint8_t public_key[512];
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_vbs_measurement) == 864, "IGVM_VHS_VBS_MEASUREMENT");

/* VBS VP context in the file data: u32 count, then count 32-byte records. */
struct igvm_vbs_vp_context_register {
	uint8_t vtl;
	uint32_t register_name; /* unaligned */
	uint8_t mbz[11];
	uint8_t register_value[16]; /* HV_REGISTER_VALUE */
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vbs_vp_context_register) == 32, "VbsVpContextRegister");

/* Native x64 VP context (IgvmNativeVpContextX64): one 4 KiB page, rest zero. */
struct igvm_native_vp_context_x64 {
	uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip;
	uint64_t rflags;
	uint64_t idtr_base;
	uint16_t idtr_limit;
	uint16_t reserved[2];
	uint16_t gdtr_limit;
	uint64_t gdtr_base;
	uint16_t code_selector;
	uint16_t code_attributes;
	uint32_t code_base;
	uint32_t code_limit;
	uint16_t data_selector;
	uint16_t data_attributes;
	uint32_t data_base;
	uint32_t data_limit;
	uint64_t gs_base;
	uint64_t cr0;
	uint64_t cr3;
	uint64_t cr4;
	uint64_t efer;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_native_vp_context_x64) == 232, "IgvmNativeVpContextX64");

/* Arm CCA VP context (IgvmVpContextAArch64Cca): x0..x7, pc, flags. */
#define IGVM_CCA_VP_CONTEXT_SIZE 80u

/* Parameter contents (what a loader writes into a parameter area). */
struct igvm_vhs_memory_range {
	uint64_t starting_gpa_page_number;
	uint64_t number_of_pages;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_memory_range) == 16, "IGVM_VHS_MEMORY_RANGE");

#define IGVM_MEMORY_MAP_ENTRY_TYPE_MEMORY 0u
#define IGVM_MEMORY_MAP_ENTRY_TYPE_PLATFORM_RESERVED 1u
#define IGVM_MEMORY_MAP_ENTRY_TYPE_PERSISTENT 2u
#define IGVM_MEMORY_MAP_ENTRY_TYPE_VTL2_PROTECTABLE 3u

struct igvm_vhs_memory_map_entry {
	uint64_t starting_gpa_page_number;
	uint64_t number_of_pages;
	uint16_t entry_type;
	uint16_t flags;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct igvm_vhs_memory_map_entry) == 24, "IGVM_VHS_MEMORY_MAP_ENTRY");

#endif
