/*
 * ACPI tables for an x86 guest without firmware (ACPI 6.4 chapter 5): RSDP
 * (revision 2), RSDT, XSDT, FADT (revision 6, full ACPI hardware model),
 * FACS, MADT and a DSDT generated with x86/aml.h. acpi_build() lays them
 * all out in one host buffer that the VM copies to guest physical memory
 * (conventionally ACPI_TABLES_GPA, in the BIOS area where the legacy RSDP
 * scan also finds it). The FADT describes the PM hardware of dev/pm.h and
 * the century register of dev/rtc.h; the MADT describes KVM's in-kernel
 * LAPICs, IOAPIC and the ISA interrupt overrides the VM programs.
 */
#ifndef HVMM_X86_ACPI_H
#define HVMM_X86_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "ACPI structures are little-endian");

struct aml;

/* Where the VM places the tables, and the room it gives them. */
#define ACPI_TABLES_GPA 0xE0000
#define ACPI_TABLES_MAX 0x20000

#define ACPI_OEM_ID "HVMM  "        /* 6 characters */
#define ACPI_OEM_TABLE_ID "HVMMACPI" /* 8 characters */
#define ACPI_CREATOR_ID "HVMM"      /* 4 characters */
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_REVISION 1

#define ACPI_LAPIC_BASE 0xFEE00000u
#define ACPI_IOAPIC_BASE 0xFEC00000u
/*
 * KVM's in-kernel IOAPIC reads ID 0 after reset; declaring the same avoids
 * guests renumbering it (QEMU does likewise).
 */
#define ACPI_IOAPIC_ID 0
/* xAPIC IDs are 8 bits and 0xFF is the broadcast ID. */
#define ACPI_MAX_CPUS 255
#define ACPI_NUM_COM 4

/* Generic Address Structure (ACPI 6.4 section 5.2.3.2). */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS size");

#define ACPI_GAS_SYSTEM_MEMORY 0
#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1
#define ACPI_GAS_ACCESS_WORD 2
#define ACPI_GAS_ACCESS_DWORD 3

/* Root System Description Pointer (section 5.2.5.3), revision 2. */
struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* over the first 20 bytes */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");

#define ACPI_RSDP_V1_LEN 20

/* System Description Table Header (section 5.2.6). */
struct acpi_table_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_table_header) == 36, "header size");

/* Fixed ACPI Description Table (section 5.2.9), revision 6. */
struct acpi_fadt {
	struct acpi_table_header hdr;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t fadt_minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_identity;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 size");

#define ACPI_FADT_REVISION 6

/* FADT Flags (table 5.10). */
#define ACPI_FADT_WBINVD (1u << 0)
#define ACPI_FADT_WBINVD_FLUSH (1u << 1)
#define ACPI_FADT_PROC_C1 (1u << 2)
#define ACPI_FADT_P_LVL2_UP (1u << 3)
#define ACPI_FADT_PWR_BUTTON (1u << 4) /* set: no fixed power button */
#define ACPI_FADT_SLP_BUTTON (1u << 5) /* set: no fixed sleep button */
#define ACPI_FADT_FIX_RTC (1u << 6)    /* set: no RTC_STS in PM1 */
#define ACPI_FADT_RTC_S4 (1u << 7)
#define ACPI_FADT_TMR_VAL_EXT (1u << 8) /* 32-bit PM timer */
#define ACPI_FADT_DCK_CAP (1u << 9)
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_SEALED_CASE (1u << 11)
#define ACPI_FADT_HEADLESS (1u << 12)
#define ACPI_FADT_CPU_SW_SLP (1u << 13)
#define ACPI_FADT_HW_REDUCED_ACPI (1u << 20)

/* IA-PC Boot Architecture Flags (table 5.11). */
#define ACPI_FADT_LEGACY_DEVICES (1u << 0)
#define ACPI_FADT_8042 (1u << 1)
#define ACPI_FADT_NO_VGA (1u << 2)
#define ACPI_FADT_NO_MSI (1u << 3)
#define ACPI_FADT_NO_ASPM (1u << 4)
#define ACPI_FADT_NO_CMOS_RTC (1u << 5)

/* Firmware ACPI Control Structure (section 5.2.10); 64-byte aligned. */
struct acpi_facs {
	char signature[4]; /* "FACS" */
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS size");

/* Multiple APIC Description Table (section 5.2.12). */
struct acpi_madt {
	struct acpi_table_header hdr;
	uint32_t local_apic_address;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT size");

#define ACPI_MADT_REVISION 5
#define ACPI_MADT_PCAT_COMPAT (1u << 0)

#define ACPI_MADT_TYPE_LOCAL_APIC 0
#define ACPI_MADT_TYPE_IO_APIC 1
#define ACPI_MADT_TYPE_INT_OVERRIDE 2
#define ACPI_MADT_TYPE_LOCAL_APIC_NMI 4

struct acpi_madt_local_apic {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_local_apic) == 8, "LAPIC entry");

#define ACPI_MADT_ENABLED (1u << 0)

struct acpi_madt_io_apic {
	uint8_t type;
	uint8_t length;
	uint8_t io_apic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_io_apic) == 12, "IOAPIC entry");

struct acpi_madt_int_override {
	uint8_t type;
	uint8_t length;
	uint8_t bus; /* 0: ISA */
	uint8_t source;
	uint32_t gsi;
	uint16_t flags; /* MPS INTI flags */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_int_override) == 10, "ISO entry");

struct acpi_madt_local_apic_nmi {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid; /* 0xFF: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_local_apic_nmi) == 6, "NMI entry");

/* MPS INTI flags (table 5.26). */
#define ACPI_MADT_POLARITY_ACTIVE_HIGH 0x1
#define ACPI_MADT_POLARITY_ACTIVE_LOW 0x3
#define ACPI_MADT_TRIGGER_EDGE (0x1 << 2)
#define ACPI_MADT_TRIGGER_LEVEL (0x3 << 2)

#define ACPI_DSDT_REVISION 2 /* 64-bit AML integers */

struct acpi_config {
	unsigned ncpus;                   /* 1..ACPI_MAX_CPUS */
	bool com_present[ACPI_NUM_COM];   /* COM1..COM4 */
	bool vmbus;                       /* \_SB.VMBS, Hyper-V's VMBus device */
	/*
	 * No 8259 PIC and no PIT (a split irqchip): the MADT says so (no
	 * PCAT_COMPAT flag, no override for the PIT's IRQ 0).
	 */
	bool no_legacy_pic;
	/*
	 * Optional: adds devices to the DSDT. Called at the root of the
	 * definition block after the built-in objects (\_S5, \_SB with CPUs,
	 * COM ports and the RTC); open "\_SB" again with aml_scope() to add
	 * devices there. Errors are left in the builder and fail the build.
	 */
	void (*dsdt_extra)(struct aml *aml, void *opaque);
	void *dsdt_extra_opaque;
};

/*
 * Lays out all tables in buf, which the caller will copy to guest physical
 * address gpa (16-byte aligned, whole range below 4 GiB); pointers between
 * tables are absolute guest physical addresses and the RSDP is at offset 0.
 * Returns the number of bytes used, -ENOSPC when len is too small, -EINVAL
 * for a bad configuration or gpa, or an error from the DSDT builder. buf
 * past the returned length is untouched.
 */
long acpi_build(const struct acpi_config *cfg, void *buf, size_t len,
		uint64_t gpa);

/* The 8-bit sum of len bytes: 0 for a table with a correct checksum. */
uint8_t acpi_checksum(const void *data, size_t len);

#endif
