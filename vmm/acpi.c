/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI tables for vdk-vmm (see acpi.h): RSDP, XSDT, FADT, MADT and an AML
 * DSDT built with aml.c. Field offsets are those of ACPI 6.4 §5.2; every
 * multi-byte field is little-endian.
 */
#include "acpi.h"
#include "aml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* System description table header, ACPI 6.4 §5.2.6 (Table 5.4). */
#define SDT_HEADER_LEN	 36
#define SDT_LENGTH	 4
#define SDT_REVISION	 8
#define SDT_CHECKSUM	 9
#define SDT_OEM_ID	 10
#define SDT_OEM_TABLE_ID 16
#define SDT_OEM_REVISION 24
#define SDT_CREATOR_ID	 28
#define SDT_CREATOR_REV	 32

#define VDK_OEM_ID	 "VDK   " /* 6 bytes */
#define VDK_CREATOR_ID	 "VDK "	  /* 4 bytes */
#define VDK_OEM_REV	 1
#define VDK_CREATOR_REV	 1

/* RSDP, ACPI 6.4 §5.2.5.3 (Table 5.3). */
#define RSDP_LEN	  36
#define RSDP_V1_LEN	  20 /* bytes covered by the first checksum */
#define RSDP_CHECKSUM	  8
#define RSDP_OEM_ID	  9
#define RSDP_REVISION	  15
#define RSDP_RSDT_ADDR	  16
#define RSDP_LENGTH	  20
#define RSDP_XSDT_ADDR	  24
#define RSDP_EXT_CHECKSUM 32

/* FADT revision 6, ACPI 6.4 §5.2.9 (Table 5.9). */
#define FADT_LEN	    276
#define FADT_REVISION	    6
#define FADT_MINOR_REVISION 0
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS	    112
#define FADT_RESET_REG	    116
#define FADT_RESET_VALUE    128
#define FADT_MINOR_VERSION  131
#define FADT_X_DSDT	    140
#define FADT_SLEEP_CONTROL  244
#define FADT_SLEEP_STATUS   256

/* IA-PC boot architecture flags, ACPI 6.4 §5.2.9.3 (Table 5.11). */
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_MSI_NOT_SUPP    (1u << 3)
#define IAPC_CMOS_RTC_ABSENT (1u << 5)

/* Fixed feature flags, ACPI 6.4 §5.2.9 (Table 5.10). */
#define FADT_F_PWR_BUTTON    (1u << 4)
#define FADT_F_SLP_BUTTON    (1u << 5)
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED    (1u << 20)

/* Generic Address Structure, ACPI 6.4 §5.2.3.2 (Table 5.1). */
#define GAS_LEN		 12
#define GAS_SPACE_MEMORY 0
#define GAS_SPACE_IO	 1
#define GAS_ACCESS_BYTE	 1

/* MADT, ACPI 6.4 §5.2.12 (Tables 5.43-5.46, 5.49). */
#define MADT_REVISION	   5
#define MADT_FIXED_LEN	   44 /* header, local APIC address, flags */
#define MADT_LAPIC	   0
#define MADT_LAPIC_LEN	   8
#define MADT_LAPIC_ENABLED 1u
#define MADT_IOAPIC	   1
#define MADT_IOAPIC_LEN	   12
#define MADT_ISO	   2
#define MADT_ISO_LEN	   10
/* MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2. */
#define MPS_POLARITY_HIGH 0x1u
#define MPS_TRIGGER_EDGE  (0x1u << 2)
#define MPS_TRIGGER_LEVEL (0x3u << 2)

/* SLEEP_CONTROL_REG fields, ACPI 6.4 §4.8.3.7. */
#define SLP_TYP_SHIFT 2
#define SLP_TYP_MASK  0x7u
#define SLP_EN	      (1u << 5)

#define XSDT_ENTRIES  3 /* FADT, MADT, MCFG (if PCI) */

/* MCFG, PCI Firmware 3.2 §4.1.2 (Tables 4-2, 4-3). */
#define MCFG_LEN    (SDT_HEADER_LEN + 8 + 16)
#define MCFG_ENTRY  (SDT_HEADER_LEN + 8)
#define TABLE_ALIGN 16u

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t vmm_acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return (uint8_t)(0x100 - sum);
}

enum vmm_acpi_sleep_action vmm_acpi_sleep_reg_action(uint8_t value)
{
	if (value == VMM_ACPI_RESET_VALUE)
		return VMM_ACPI_RESET;
	if ((value & SLP_EN) &&
	    ((value >> SLP_TYP_SHIFT) & SLP_TYP_MASK) == VMM_ACPI_S5_SLP_TYP)
		return VMM_ACPI_POWEROFF;
	return VMM_ACPI_NONE;
}

/* Header with a zero checksum; sdt_seal() fills it in at the end. */
static void sdt_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev,
		       const char table_id[8])
{
	memcpy(t, sig, 4);
	put32(t + SDT_LENGTH, len);
	t[SDT_REVISION] = rev;
	t[SDT_CHECKSUM] = 0;
	memcpy(t + SDT_OEM_ID, VDK_OEM_ID, 6);
	memcpy(t + SDT_OEM_TABLE_ID, table_id, 8);
	put32(t + SDT_OEM_REVISION, VDK_OEM_REV);
	memcpy(t + SDT_CREATOR_ID, VDK_CREATOR_ID, 4);
	put32(t + SDT_CREATOR_REV, VDK_CREATOR_REV);
}

static void sdt_seal(uint8_t *t, uint32_t len)
{
	t[SDT_CHECKSUM] = 0;
	t[SDT_CHECKSUM] = vmm_acpi_checksum(t, len);
}

/* Generic Address Structure for one byte register. */
static void put_gas(uint8_t *p, bool mmio, uint64_t addr)
{
	p[0] = mmio ? GAS_SPACE_MEMORY : GAS_SPACE_IO;
	p[1] = 8; /* register bit width */
	p[2] = 0; /* bit offset */
	p[3] = GAS_ACCESS_BYTE;
	put64(p + 4, addr);
}

static int validate(const struct vmm_acpi_config *cfg)
{
	uint32_t used = 0; /* bitmap of IO-APIC pins taken */

	if (cfg->num_vcpus == 0 || cfg->num_vcpus > VMM_ACPI_MAX_VCPUS)
		return -EINVAL;
	if (cfg->num_devices > VMM_ACPI_MAX_DEVICES ||
	    (cfg->num_devices && !cfg->devices))
		return -EINVAL;
	if (cfg->sleep_reg == 0 ||
	    (!cfg->sleep_reg_mmio && cfg->sleep_reg > 0xffff))
		return -EINVAL;
	if (cfg->pci) {
		const struct vmm_acpi_pci *p = cfg->pci;
		uint64_t end;

		if ((p->ecam_base & ((1u << 20) - 1)) ||
		    p->ecam_base > UINT32_MAX - (1u << 20) + 1 ||
		    (p->mem32_size &&
		     (uint64_t)p->mem32_base + p->mem32_size - 1 >
			     UINT32_MAX) ||
		    (p->mem64_size &&
		     __builtin_add_overflow(p->mem64_base, p->mem64_size - 1,
					    &end)))
			return -EINVAL;
		for (unsigned int s = 0; s < VMM_ACPI_PCI_SLOTS; s++)
			if (p->slot_gsi[s] >= VMM_ACPI_IOAPIC_PINS)
				return -EINVAL;
	}
	if (cfg->serial)
		used |= 1u << VMM_ACPI_COM1_IRQ;
	for (size_t i = 0; i < cfg->num_devices; i++) {
		const struct vmm_acpi_mmio_device d = cfg->devices[i];
		uint64_t end;

		if (d.size == 0 || d.base > UINT32_MAX || d.size > UINT32_MAX ||
		    __builtin_add_overflow(d.base, d.size - 1, &end) ||
		    end > UINT32_MAX)
			return -EINVAL;
		if (d.irq >= VMM_ACPI_IOAPIC_PINS || (used & (1u << d.irq)))
			return -EINVAL;
		used |= 1u << d.irq;
	}
	return 0;
}

static size_t align_up(size_t v)
{
	return (v + TABLE_ALIGN - 1) & ~(size_t)(TABLE_ALIGN - 1);
}

static void build_rsdp(uint8_t *p, uint64_t xsdt)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + RSDP_OEM_ID, VDK_OEM_ID, 6);
	p[RSDP_REVISION] = 2;
	put32(p + RSDP_RSDT_ADDR, 0); /* no RSDT: XSDT only */
	put32(p + RSDP_LENGTH, RSDP_LEN);
	put64(p + RSDP_XSDT_ADDR, xsdt);
	p[RSDP_CHECKSUM] = 0;
	p[RSDP_EXT_CHECKSUM] = 0;
	p[RSDP_CHECKSUM] = vmm_acpi_checksum(p, RSDP_V1_LEN);
	p[RSDP_EXT_CHECKSUM] = vmm_acpi_checksum(p, RSDP_LEN);
}

static void build_xsdt(uint8_t *t, uint64_t fadt, uint64_t madt, uint64_t mcfg)
{
	uint32_t len = SDT_HEADER_LEN + 8 * (mcfg ? 3 : 2);

	sdt_header(t, "XSDT", len, 1, "VDKXSDT ");
	put64(t + SDT_HEADER_LEN, fadt);
	put64(t + SDT_HEADER_LEN + 8, madt);
	if (mcfg)
		put64(t + SDT_HEADER_LEN + 16, mcfg);
	sdt_seal(t, len);
}

/* One ECAM range: segment 0, buses 0..0. */
static void build_mcfg(uint8_t *t, const struct vmm_acpi_pci *pci)
{
	sdt_header(t, "MCFG", MCFG_LEN, 1, "VDKMCFG ");
	put64(t + MCFG_ENTRY, pci->ecam_base);
	put16(t + MCFG_ENTRY + 8, 0); /* PCI segment group */
	t[MCFG_ENTRY + 10] = 0;	      /* start bus */
	t[MCFG_ENTRY + 11] = 0;	      /* end bus */
	sdt_seal(t, MCFG_LEN);
}

static void build_fadt(uint8_t *t, const struct vmm_acpi_config *cfg,
		       uint64_t dsdt)
{
	uint16_t boot_arch = IAPC_VGA_NOT_PRESENT;

	/* MSI works only through PCI devices, which exist only with one. */
	if (!cfg->pci)
		boot_arch |= IAPC_MSI_NOT_SUPP;

	if (!cfg->cmos_rtc)
		boot_arch |= IAPC_CMOS_RTC_ABSENT;
	/* Everything not set here is zero: no PM1/GPE blocks, no SCI. */
	sdt_header(t, "FACP", FADT_LEN, FADT_REVISION, "VDKFACP ");
	put16(t + FADT_IAPC_BOOT_ARCH, boot_arch);
	put32(t + FADT_FLAGS, FADT_F_HW_REDUCED | FADT_F_RESET_REG_SUP |
				      FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON);
	put_gas(t + FADT_RESET_REG, cfg->sleep_reg_mmio, cfg->sleep_reg);
	t[FADT_RESET_VALUE] = VMM_ACPI_RESET_VALUE;
	t[FADT_MINOR_VERSION] = FADT_MINOR_REVISION;
	put64(t + FADT_X_DSDT, dsdt);
	put_gas(t + FADT_SLEEP_CONTROL, cfg->sleep_reg_mmio, cfg->sleep_reg);
	put_gas(t + FADT_SLEEP_STATUS, cfg->sleep_reg_mmio, cfg->sleep_reg);
	sdt_seal(t, FADT_LEN);
}

/* Interrupt source overrides: COM1, and device IRQs that are ISA IRQs. */
static size_t madt_overrides(const struct vmm_acpi_config *cfg)
{
	size_t n = cfg->serial ? 1 : 0;

	for (size_t i = 0; i < cfg->num_devices; i++)
		n += cfg->devices[i].irq < 16;
	return n;
}

static size_t madt_len(const struct vmm_acpi_config *cfg)
{
	return MADT_FIXED_LEN + MADT_LAPIC_LEN * (size_t)cfg->num_vcpus +
	       MADT_IOAPIC_LEN + MADT_ISO_LEN * madt_overrides(cfg);
}

static uint8_t *put_iso(uint8_t *p, uint32_t irq, bool level)
{
	p[0] = MADT_ISO;
	p[1] = MADT_ISO_LEN;
	p[2] = 0; /* bus: ISA */
	p[3] = (uint8_t)irq;
	put32(p + 4, irq); /* identity-mapped to the IO-APIC pin */
	put16(p + 8,
	      (uint16_t)(MPS_POLARITY_HIGH |
			 (level ? MPS_TRIGGER_LEVEL : MPS_TRIGGER_EDGE)));
	return p + MADT_ISO_LEN;
}

static void build_madt(uint8_t *t, const struct vmm_acpi_config *cfg)
{
	uint32_t len = (uint32_t)madt_len(cfg);
	uint8_t *p = t + MADT_FIXED_LEN;

	sdt_header(t, "APIC", len, MADT_REVISION, "VDKMADT ");
	put32(t + SDT_HEADER_LEN, VMM_ACPI_LAPIC_ADDR);
	/* Flags: PCAT_COMPAT clear, the guest has no 8259 to mask. */
	put32(t + SDT_HEADER_LEN + 4, 0);
	for (uint32_t cpu = 0; cpu < cfg->num_vcpus; cpu++) {
		p[0] = MADT_LAPIC;
		p[1] = MADT_LAPIC_LEN;
		p[2] = (uint8_t)cpu; /* ACPI processor UID */
		p[3] = (uint8_t)cpu; /* APIC ID */
		put32(p + 4, MADT_LAPIC_ENABLED);
		p += MADT_LAPIC_LEN;
	}
	p[0] = MADT_IOAPIC;
	p[1] = MADT_IOAPIC_LEN;
	p[2] = 0; /* IO-APIC ID */
	p[3] = 0;
	put32(p + 4, VMM_ACPI_IOAPIC_ADDR);
	put32(p + 8, 0); /* GSI base */
	p += MADT_IOAPIC_LEN;
	if (cfg->serial)
		p = put_iso(p, VMM_ACPI_COM1_IRQ, false);
	for (size_t i = 0; i < cfg->num_devices; i++)
		if (cfg->devices[i].irq < 16)
			p = put_iso(p, cfg->devices[i].irq,
				    cfg->devices[i].level);
	sdt_seal(t, len);
}

/*
 * The PCI host bridge (PCI Firmware 3.2 §4.1.1, ACPI 6.4 §6.1.5): PCI0
 * with _HID PNP0A08 (PCI Express), _CID PNP0A03, segment and bus 0, a _CRS
 * with the bus range, the 0xCF8 ports and the BAR windows, and a _PRT
 * routing each device's INTA to its GSI. The ECAM window is reserved by a
 * PNP0C02 motherboard resource, as Linux wants before it uses MMCONFIG.
 */
static void dsdt_pci(struct vmm_aml_builder *b, const struct vmm_acpi_pci *pci)
{
	unsigned int n = 0;

	vmm_aml_device_open(b, "PCI0");
	vmm_aml_name_begin(b, "_HID");
	vmm_aml_eisaid(b, "PNP0A08");
	vmm_aml_name_begin(b, "_CID");
	vmm_aml_eisaid(b, "PNP0A03");
	vmm_aml_name_begin(b, "_SEG");
	vmm_aml_integer(b, 0);
	vmm_aml_name_begin(b, "_BBN");
	vmm_aml_integer(b, 0);
	vmm_aml_name_begin(b, "_UID");
	vmm_aml_integer(b, 0);
	vmm_aml_name_begin(b, "_CRS");
	vmm_aml_buffer_open(b);
	vmm_aml_res_word_bus(b, 0, 0);
	vmm_aml_res_io(b, 0xcf8, 1, 8);
	if (pci->mem32_size)
		vmm_aml_res_dword_memory(b, false, pci->mem32_base,
					 pci->mem32_size);
	if (pci->mem64_size)
		vmm_aml_res_qword_memory(b, true, pci->mem64_base,
					 pci->mem64_size);
	vmm_aml_res_end(b);
	vmm_aml_buffer_close(b);
	for (unsigned int s = 0; s < VMM_ACPI_PCI_SLOTS; s++)
		n += pci->slot_gsi[s] != 0;
	/* _PRT: {address (device << 16 | 0xffff), pin (0 = INTA), source
	 * (0: a GSI), source index (the GSI)} per device (ACPI 6.4 §6.2.13). */
	vmm_aml_name_begin(b, "_PRT");
	vmm_aml_package_open(b, n);
	for (unsigned int s = 0; s < VMM_ACPI_PCI_SLOTS; s++) {
		if (!pci->slot_gsi[s])
			continue;
		vmm_aml_package_open(b, 4);
		vmm_aml_integer(b, (uint64_t)s << 16 | 0xffff);
		vmm_aml_integer(b, 0);
		vmm_aml_integer(b, 0);
		vmm_aml_integer(b, pci->slot_gsi[s]);
		vmm_aml_close(b);
	}
	vmm_aml_close(b);
	vmm_aml_close(b);

	vmm_aml_device_open(b, "MRES");
	vmm_aml_name_begin(b, "_HID");
	vmm_aml_eisaid(b, "PNP0C02");
	vmm_aml_name_begin(b, "_UID");
	vmm_aml_integer(b, 1);
	vmm_aml_name_begin(b, "_CRS");
	vmm_aml_buffer_open(b);
	vmm_aml_res_memory32_fixed(b, true, (uint32_t)pci->ecam_base, 1u << 20);
	vmm_aml_res_end(b);
	vmm_aml_buffer_close(b);
	vmm_aml_close(b);
}

/* The AML body of the DSDT (after its header). */
static void dsdt_body(struct vmm_aml_builder *b,
		      const struct vmm_acpi_config *cfg)
{
	char name[5];

	vmm_aml_scope_open(b, "\\_SB_");
	if (cfg->serial) {
		vmm_aml_device_open(b, "COM1");
		vmm_aml_name_begin(b, "_HID");
		vmm_aml_eisaid(b, "PNP0501");
		vmm_aml_name_begin(b, "_UID");
		vmm_aml_integer(b, 1);
		vmm_aml_name_begin(b, "_CRS");
		vmm_aml_buffer_open(b);
		vmm_aml_res_io(b, VMM_ACPI_COM1_PORT, 8, 8);
		vmm_aml_res_irq_noflags(b, VMM_ACPI_COM1_IRQ);
		vmm_aml_res_end(b);
		vmm_aml_buffer_close(b);
		vmm_aml_close(b);
	}
	for (size_t i = 0; i < cfg->num_devices; i++) {
		const struct vmm_acpi_mmio_device d = cfg->devices[i];

		/* i < VMM_ACPI_MAX_DEVICES: three hex digits. */
		snprintf(name, sizeof(name), "V%03X", (unsigned int)i);
		vmm_aml_device_open(b, name);
		/* Linux drivers/virtio/virtio_mmio.c matches this _HID. */
		vmm_aml_name_begin(b, "_HID");
		vmm_aml_string(b, "LNRO0005");
		vmm_aml_name_begin(b, "_UID");
		vmm_aml_integer(b, i);
		vmm_aml_name_begin(b, "_CRS");
		vmm_aml_buffer_open(b);
		vmm_aml_res_memory32_fixed(b, true, (uint32_t)d.base,
					   (uint32_t)d.size);
		vmm_aml_res_interrupt(b, d.level, d.irq);
		vmm_aml_res_end(b);
		vmm_aml_buffer_close(b);
		vmm_aml_close(b);
	}
	if (cfg->pci)
		dsdt_pci(b, cfg->pci);
	vmm_aml_close(b);

	/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved (ACPI 6.4 §7.4.2). */
	vmm_aml_name_begin(b, "\\_S5_");
	vmm_aml_package_open(b, 4);
	vmm_aml_integer(b, VMM_ACPI_S5_SLP_TYP);
	vmm_aml_integer(b, 0);
	vmm_aml_integer(b, 0);
	vmm_aml_integer(b, 0);
	vmm_aml_close(b);
}

/*
 * Build the DSDT at @t with @cap bytes; returns its length or -errno.
 * The AML builder reserves 4 bytes for each PkgLength before it knows the
 * length (up to 3 bytes of slack per open object), so the body is built in
 * a scratch buffer and copied: @t receives exactly the table, and a
 * buffer of exactly the table's size is enough.
 */
static int build_dsdt(uint8_t *t, size_t cap, const struct vmm_acpi_config *cfg)
{
	const size_t slack = 3 * VMM_AML_MAX_DEPTH;
	struct vmm_aml_builder b;
	uint8_t *scratch;
	int body;

	if (cap < SDT_HEADER_LEN)
		return -ENOSPC;
	size_t room = cap - SDT_HEADER_LEN;

	/* The DSDT never needs more than VMM_AML_PKGLENGTH_MAX bytes. */
	if (room > VMM_AML_PKGLENGTH_MAX)
		room = VMM_AML_PKGLENGTH_MAX;
	scratch = malloc(room + slack);
	if (!scratch)
		return -ENOMEM;
	vmm_aml_init(&b, scratch, room + slack);
	dsdt_body(&b, cfg);
	body = vmm_aml_finish(&b);
	if (body >= 0 && (size_t)body > room)
		body = -ENOSPC;
	if (body < 0) {
		free(scratch);
		return body;
	}
	memcpy(t + SDT_HEADER_LEN, scratch, (size_t)body);
	free(scratch);
	uint32_t len = SDT_HEADER_LEN + (uint32_t)body;

	/* Revision 2: integers are 64 bits (ACPI 6.4 §5.2.11.1). */
	sdt_header(t, "DSDT", len, 2, "VDKDSDT ");
	sdt_seal(t, len);
	return (int)len;
}

int vmm_acpi_build(const struct vmm_acpi_config *cfg, void *buf, size_t size,
		   uint64_t gpa, struct vmm_acpi_layout *out)
{
	uint8_t *p = buf;
	uint64_t end;
	int ret;

	if (!cfg || !buf || !out)
		return -EINVAL;
	if ((gpa % TABLE_ALIGN) != 0 || __builtin_add_overflow(gpa, size, &end))
		return -EINVAL;
	ret = validate(cfg);
	if (ret)
		return ret;

	size_t rsdp = 0;
	size_t xsdt = align_up(rsdp + RSDP_LEN);
	size_t fadt = align_up(xsdt + SDT_HEADER_LEN + 8 * XSDT_ENTRIES);
	size_t madt = align_up(fadt + FADT_LEN);
	size_t mcfg = align_up(madt + madt_len(cfg));
	size_t dsdt = cfg->pci ? align_up(mcfg + MCFG_LEN) : mcfg;

	if (dsdt > size)
		return -ENOSPC;
	memset(p, 0, dsdt);
	ret = build_dsdt(p + dsdt, size - dsdt, cfg);
	if (ret < 0)
		return ret;

	out->rsdp = gpa + rsdp;
	out->xsdt = gpa + xsdt;
	out->fadt = gpa + fadt;
	out->madt = gpa + madt;
	out->dsdt = gpa + dsdt;
	out->mcfg = cfg->pci ? gpa + mcfg : 0;
	out->total = dsdt + (size_t)ret;

	build_rsdp(p + rsdp, out->xsdt);
	build_xsdt(p + xsdt, out->fadt, out->madt, out->mcfg);
	if (cfg->pci)
		build_mcfg(p + mcfg, cfg->pci);
	build_fadt(p + fadt, cfg, out->dsdt);
	build_madt(p + madt, cfg);
	return 0;
}
