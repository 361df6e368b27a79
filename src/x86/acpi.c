/*
 * ACPI table generation (ACPI 6.4 sections 5.2.5-5.2.12 and the DSDT
 * objects of sections 6.1, 6.2 and 7.4.2). Tables are laid out in one
 * buffer in this order: RSDP at offset 0 (for the legacy 16-byte scan),
 * FACS (64-byte aligned as required), DSDT, FADT, MADT, XSDT, RSDT; every
 * later table 16-byte aligned. Values are little-endian through packed
 * structs; the host is x86.
 */
#include "x86/acpi.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dev/pm.h"
#include "dev/rtc.h"
#include "x86/aml.h"

struct acpi_builder {
	uint8_t *buf;
	size_t len;
	size_t used;
	uint64_t gpa;
	int err;
};

static const struct {
	uint16_t port;
	uint8_t irq;
} acpi_com[ACPI_NUM_COM] = {
	{ 0x3F8, 4 }, { 0x2F8, 3 }, { 0x3E8, 4 }, { 0x2E8, 3 },
};

uint8_t acpi_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;
	while (len--)
		sum = (uint8_t)(sum + *p++);
	return sum;
}

/* Zeroed room for size bytes at the given alignment; NULL on -ENOSPC. */
static void *acpi_alloc(struct acpi_builder *b, size_t size, size_t align,
			uint64_t *gpa)
{
	size_t off = (b->used + align - 1) & ~(align - 1);
	if (b->err || off > b->len || size > b->len - off) {
		b->err = b->err ? b->err : -ENOSPC;
		return NULL;
	}
	memset(b->buf + b->used, 0, off + size - b->used);
	b->used = off + size;
	*gpa = b->gpa + off;
	return b->buf + off;
}

static void acpi_header(struct acpi_table_header *h, const char sig[4],
			size_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = (uint32_t)len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Call last, when the whole table is written. */
static void acpi_finish_table(struct acpi_table_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_checksum(h, h->length);
}

static struct acpi_gas acpi_io_gas(uint16_t port, unsigned bytes,
				   uint8_t access)
{
	return (struct acpi_gas){
		.space_id = ACPI_GAS_SYSTEM_IO,
		.bit_width = (uint8_t)(bytes * 8),
		.access_size = access,
		.address = port,
	};
}

static void acpi_dsdt_cpus(struct aml *a, unsigned ncpus)
{
	char name[16];

	/* ACPI 6 processor devices; _UID matches the MADT processor UID. */
	for (unsigned i = 0; i < ncpus; i++) {
		snprintf(name, sizeof(name), "C%03X", i);
		aml_device(a, name);
		aml_name_string(a, "_HID", "ACPI0007");
		aml_name_int(a, "_UID", i);
		aml_end(a);
	}
}

static void acpi_dsdt_com(struct aml *a, const struct acpi_config *cfg)
{
	char name[16];

	for (unsigned i = 0; i < ACPI_NUM_COM; i++) {
		if (!cfg->com_present[i])
			continue;
		snprintf(name, sizeof(name), "COM%u", i + 1);
		aml_device(a, name);
		aml_name_eisaid(a, "_HID", "PNP0501"); /* 16550A-compatible */
		aml_name_int(a, "_UID", i + 1);
		aml_sta(a, AML_STA_DEFAULT);
		aml_name(a, "_CRS");
		aml_restemplate(a);
		aml_res_io(a, acpi_com[i].port, acpi_com[i].port, 1, 8);
		aml_res_irq_noflags(a, acpi_com[i].irq);
		aml_end(a);
		aml_end(a);
	}
}

static void acpi_dsdt_rtc(struct aml *a)
{
	aml_device(a, "RTC0");
	aml_name_eisaid(a, "_HID", "PNP0B00"); /* AT real-time clock */
	aml_sta(a, AML_STA_DEFAULT);
	aml_name(a, "_CRS");
	aml_restemplate(a);
	aml_res_io(a, RTC_PORT_INDEX, RTC_PORT_INDEX, 1, 2);
	aml_res_irq_noflags(a, RTC_IRQ);
	aml_end(a);
	aml_end(a);
}

/*
 * Hyper-V's VMBus device as Linux's hv_vmbus matches it (_HID "VMBus"). It
 * must have a _CRS even without resources: hv_vmbus walks it and fails the
 * probe when it is missing. No MMIO window: hvmm offers no device that
 * allocates VMBus MMIO.
 */
static void acpi_dsdt_vmbus(struct aml *a)
{
	aml_device(a, "VMBS");
	aml_name_string(a, "_HID", "VMBus");
	aml_name_int(a, "_UID", 0);
	aml_name_string(a, "_DDN", "VMBUS");
	aml_sta(a, AML_STA_DEFAULT);
	aml_name(a, "_CRS");
	aml_restemplate(a);
	aml_end(a);
	aml_end(a);
}

/* The DSDT body; 0 or -errno. */
static int acpi_dsdt_aml(const struct acpi_config *cfg, struct aml *a)
{
	/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved (section 7.4.2). */
	aml_name(a, "\\_S5");
	aml_package(a);
	aml_int(a, PM_SLP_TYP_S5);
	aml_int(a, PM_SLP_TYP_S5);
	aml_int(a, 0);
	aml_int(a, 0);
	aml_end(a);

	aml_scope(a, "\\_SB");
	acpi_dsdt_cpus(a, cfg->ncpus);
	acpi_dsdt_com(a, cfg);
	acpi_dsdt_rtc(a);
	if (cfg->vmbus)
		acpi_dsdt_vmbus(a);
	aml_end(a);

	if (cfg->dsdt_extra)
		cfg->dsdt_extra(a, cfg->dsdt_extra_opaque);
	return aml_finish(a);
}

static void acpi_build_dsdt(struct acpi_builder *b,
			    const struct acpi_config *cfg, uint64_t *gpa)
{
	struct aml a;

	aml_init(&a);
	int r = acpi_dsdt_aml(cfg, &a);
	if (r < 0) {
		b->err = b->err ? b->err : r;
	} else {
		size_t len = sizeof(struct acpi_table_header) + a.len;
		struct acpi_table_header *h = acpi_alloc(b, len, 16, gpa);
		if (h) {
			acpi_header(h, "DSDT", len, ACPI_DSDT_REVISION);
			memcpy(h + 1, a.buf, a.len);
			acpi_finish_table(h);
		}
	}
	aml_free(&a);
}

static void acpi_build_fadt(struct acpi_builder *b, uint64_t facs,
			    uint64_t dsdt, uint64_t *gpa)
{
	struct acpi_fadt *f = acpi_alloc(b, sizeof(*f), 16, gpa);
	if (!f)
		return;
	acpi_header(&f->hdr, "FACP", sizeof(*f), ACPI_FADT_REVISION);
	/* Both pointer forms, equal, for OSes that only know the 32-bit one. */
	f->firmware_ctrl = (uint32_t)facs;
	f->dsdt = (uint32_t)dsdt;
	f->x_firmware_ctrl = facs;
	f->x_dsdt = dsdt;
	f->sci_int = PM_SCI_IRQ;
	/* SMI_CMD 0: no SMM; the OS finds ACPI mode (SCI_EN) always on. */
	f->smi_cmd = 0;
	f->pm1a_evt_blk = PM1A_EVT_BLK;
	f->pm1a_cnt_blk = PM1A_CNT_BLK;
	f->pm_tmr_blk = PM_TMR_BLK;
	f->pm1_evt_len = PM1_EVT_LEN;
	f->pm1_cnt_len = PM1_CNT_LEN;
	f->pm_tmr_len = PM_TMR_LEN;
	f->x_pm1a_evt_blk = acpi_io_gas(PM1A_EVT_BLK, PM1_EVT_LEN,
					ACPI_GAS_ACCESS_WORD);
	f->x_pm1a_cnt_blk = acpi_io_gas(PM1A_CNT_BLK, PM1_CNT_LEN,
					ACPI_GAS_ACCESS_WORD);
	f->x_pm_tmr_blk = acpi_io_gas(PM_TMR_BLK, PM_TMR_LEN,
				      ACPI_GAS_ACCESS_DWORD);
	/* Latencies above 100 / 1000 us mean "no C2 / no C3". */
	f->p_lvl2_lat = 101;
	f->p_lvl3_lat = 1001;
	f->century = RTC_CENTURY;
	f->iapc_boot_arch = ACPI_FADT_LEGACY_DEVICES | ACPI_FADT_8042;
	/*
	 * PWR_BUTTON clear: the power button is the fixed feature of dev/pm.
	 * FIX_RTC set: the RTC alarm has no PM1 status bit here.
	 */
	f->flags = ACPI_FADT_WBINVD | ACPI_FADT_PROC_C1 | ACPI_FADT_SLP_BUTTON |
		   ACPI_FADT_FIX_RTC | ACPI_FADT_TMR_VAL_EXT |
		   ACPI_FADT_RESET_REG_SUP;
	f->reset_reg = acpi_io_gas(PM_RESET_PORT, 1, ACPI_GAS_ACCESS_BYTE);
	f->reset_value = PM_RESET_VALUE;
	acpi_finish_table(&f->hdr);
}

static void acpi_build_madt(struct acpi_builder *b,
			    const struct acpi_config *cfg, uint64_t *gpa)
{
	static const struct {
		uint8_t irq;
		uint32_t gsi;
		uint16_t flags;
	} overrides[] = {
		/* The PIT is wired to IOAPIC pin 2. */
		{ 0, 2, ACPI_MADT_POLARITY_ACTIVE_HIGH | ACPI_MADT_TRIGGER_EDGE },
		/* The SCI is level-triggered, active high (dev/pm.h). */
		{ PM_SCI_IRQ, PM_SCI_IRQ,
		  ACPI_MADT_POLARITY_ACTIVE_HIGH | ACPI_MADT_TRIGGER_LEVEL },
	};
	/* Without a PIT its override (the first) goes too. */
	const size_t skip = cfg->no_legacy_pic ? 1 : 0;
	const size_t n_ovr = sizeof(overrides) / sizeof(overrides[0]) - skip;
	size_t len = sizeof(struct acpi_madt) +
		     cfg->ncpus * sizeof(struct acpi_madt_local_apic) +
		     sizeof(struct acpi_madt_io_apic) +
		     n_ovr * sizeof(struct acpi_madt_int_override) +
		     sizeof(struct acpi_madt_local_apic_nmi);

	struct acpi_madt *m = acpi_alloc(b, len, 16, gpa);
	if (!m)
		return;
	acpi_header(&m->hdr, "APIC", len, ACPI_MADT_REVISION);
	m->local_apic_address = ACPI_LAPIC_BASE;
	m->flags = cfg->no_legacy_pic ? 0 : ACPI_MADT_PCAT_COMPAT; /* dual 8259 present */

	uint8_t *p = (uint8_t *)(m + 1);
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		struct acpi_madt_local_apic *e = (void *)p;
		e->type = ACPI_MADT_TYPE_LOCAL_APIC;
		e->length = sizeof(*e);
		e->processor_uid = (uint8_t)i;
		e->apic_id = (uint8_t)i;
		e->flags = ACPI_MADT_ENABLED;
		p += sizeof(*e);
	}

	struct acpi_madt_io_apic *io = (void *)p;
	io->type = ACPI_MADT_TYPE_IO_APIC;
	io->length = sizeof(*io);
	io->io_apic_id = ACPI_IOAPIC_ID;
	io->address = ACPI_IOAPIC_BASE;
	io->gsi_base = 0;
	p += sizeof(*io);

	for (size_t i = 0; i < n_ovr; i++) {
		struct acpi_madt_int_override *o = (void *)p;
		o->type = ACPI_MADT_TYPE_INT_OVERRIDE;
		o->length = sizeof(*o);
		o->bus = 0;
		o->source = overrides[skip + i].irq;
		o->gsi = overrides[skip + i].gsi;
		o->flags = overrides[skip + i].flags;
		p += sizeof(*o);
	}

	/* LINT1 of every LAPIC is the NMI input, as on PC hardware. */
	struct acpi_madt_local_apic_nmi *nmi = (void *)p;
	nmi->type = ACPI_MADT_TYPE_LOCAL_APIC_NMI;
	nmi->length = sizeof(*nmi);
	nmi->processor_uid = 0xFF;
	nmi->flags = ACPI_MADT_POLARITY_ACTIVE_HIGH | ACPI_MADT_TRIGGER_EDGE;
	nmi->lint = 1;

	acpi_finish_table(&m->hdr);
}

/* XSDT (8-byte entries) or RSDT (4-byte entries) listing tables[]. */
static void acpi_build_sdt(struct acpi_builder *b, const char sig[4],
			   size_t entry_size, const uint64_t *tables, size_t n,
			   uint64_t *gpa)
{
	size_t len = sizeof(struct acpi_table_header) + n * entry_size;
	struct acpi_table_header *h = acpi_alloc(b, len, 16, gpa);
	if (!h)
		return;
	acpi_header(h, sig, len, 1);
	uint8_t *p = (uint8_t *)(h + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(p + i * entry_size, &tables[i], entry_size); /* LE */
	acpi_finish_table(h);
}

long acpi_build(const struct acpi_config *cfg, void *buf, size_t len,
		uint64_t gpa)
{
	struct acpi_builder b = { .buf = buf, .len = len, .gpa = gpa };
	uint64_t rsdp_gpa, facs_gpa = 0, dsdt_gpa = 0, xsdt_gpa = 0, rsdt_gpa = 0;
	uint64_t tables[2] = { 0, 0 }; /* FADT, MADT */

	if (!cfg || !buf || !cfg->ncpus || cfg->ncpus > ACPI_MAX_CPUS ||
	    (gpa & 15))
		return -EINVAL;
	/* Every pointer must fit the 32-bit fields (RSDT, FADT, RSDP). */
	if (gpa >= (1ULL << 32) || (uint64_t)len > (1ULL << 32) - gpa)
		return -EINVAL;

	struct acpi_rsdp *rsdp = acpi_alloc(&b, sizeof(*rsdp), 16, &rsdp_gpa);
	struct acpi_facs *facs = acpi_alloc(&b, sizeof(*facs), 64, &facs_gpa);
	if (facs) {
		memcpy(facs->signature, "FACS", 4);
		facs->length = sizeof(*facs);
		facs->version = 2;
	}
	acpi_build_dsdt(&b, cfg, &dsdt_gpa);
	acpi_build_fadt(&b, facs_gpa, dsdt_gpa, &tables[0]);
	acpi_build_madt(&b, cfg, &tables[1]);
	acpi_build_sdt(&b, "XSDT", 8, tables, 2, &xsdt_gpa);
	acpi_build_sdt(&b, "RSDT", 4, tables, 2, &rsdt_gpa);
	if (b.err)
		return b.err;

	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, ACPI_OEM_ID, 6);
	rsdp->revision = 2;
	rsdp->rsdt_address = (uint32_t)rsdt_gpa;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = xsdt_gpa;
	rsdp->checksum = (uint8_t)-acpi_checksum(rsdp, ACPI_RSDP_V1_LEN);
	rsdp->extended_checksum = (uint8_t)-acpi_checksum(rsdp, sizeof(*rsdp));
	return (long)b.used;
}
