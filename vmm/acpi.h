/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI tables for vdk-vmm (x86_64): how a stock Linux kernel finds the
 * vCPUs, the IO-APIC, the virtio-mmio devices, the COM1 UART and the way to
 * power off, with no firmware and no PCI.
 *
 * The platform is "hardware-reduced ACPI" (ACPI 6.4 §4.1): no PM1/GPE
 * register blocks and no SCI. Poweroff goes through the FADT's
 * SLEEP_CONTROL_REG: the guest evaluates \_S5 and writes
 * (SLP_TYP << 2) | SLP_EN to that register (§4.8.3.7); the VMM watches the
 * register (vmm_acpi_sleep_reg_action()) and stops the VM. Reboot goes
 * through the FADT's RESET_REG (same register, VMM_ACPI_RESET_VALUE).
 *
 * Guest-physical layout written by vmm_acpi_build() from @gpa (normally
 * VMM_ACPI_DEFAULT_GPA = 0xe0000, in the BIOS read-only area 0xe0000-
 * 0xfffff that Linux scans on 16-byte boundaries for "RSD PTR "):
 *
 *   gpa + 0x000  RSDP  (36 bytes, revision 2, points to the XSDT)
 *   then, each 16-byte aligned and in this order:
 *                XSDT  (FADT, MADT)
 *                FADT  (revision 6, HW_REDUCED_ACPI, X_DSDT -> DSDT)
 *                MADT  (local APICs, IO-APIC, interrupt source overrides)
 *                DSDT  (\_SB_.COM1, \_SB_.Vnnn per virtio-mmio window, \_S5)
 *
 * The tables reference one another by guest-physical address, so the buffer
 * must be copied to exactly @gpa.
 */
#ifndef VDK_ACPI_H
#define VDK_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Where the RSDP normally goes: start of the BIOS area Linux scans. */
#define VMM_ACPI_DEFAULT_GPA 0xe0000ull
/** Bytes from VMM_ACPI_DEFAULT_GPA the tables may take: the area Linux
 * scans, less its last page (0xff000-0xfffff holds the reset stub at the
 * reset vector, boot_x86_64.h). */
#define VMM_ACPI_DEFAULT_SIZE 0x1f000u

/** Local APIC registers, guest-physical (Intel SDM vol. 3 §10.4.1). */
#define VMM_ACPI_LAPIC_ADDR 0xfee00000u
/** IO-APIC registers, guest-physical; its GSI base is 0. */
#define VMM_ACPI_IOAPIC_ADDR 0xfec00000u
/** Pins of the (KVM in-kernel) IO-APIC: GSIs 0-23. */
#define VMM_ACPI_IOAPIC_PINS 24u

/** vCPUs the MADT can describe with xAPIC entries (APIC IDs 0..254). */
#define VMM_ACPI_MAX_VCPUS 255u
/** virtio-mmio devices: each needs an IO-APIC pin of its own. */
#define VMM_ACPI_MAX_DEVICES VMM_ACPI_IOAPIC_PINS

/** SLP_TYP of \_S5 and the S5 write: (5 << 2) | SLP_EN = 0x34. */
#define VMM_ACPI_S5_SLP_TYP 5u
/** Value the guest writes to RESET_REG to reboot. */
#define VMM_ACPI_RESET_VALUE 0x01u

/** The COM1 UART the DSDT describes when asked (PNP0501). */
#define VMM_ACPI_COM1_PORT 0x3f8u
#define VMM_ACPI_COM1_IRQ  4u

/** struct vmm_acpi_mmio_device - one virtio-mmio window for the DSDT. */
struct vmm_acpi_mmio_device {
	uint64_t base; /**< guest-physical; below 4 GiB (Memory32Fixed) */
	uint64_t size; /**< bytes, 1 to 4 GiB - 1 (normally 0x1000) */
	uint32_t irq;  /**< GSI, below VMM_ACPI_IOAPIC_PINS */
	bool level;    /**< level-triggered (else edge); active high */
};

/** Devices of the PCI host bridge's bus 0. */
#define VMM_ACPI_PCI_SLOTS 32u

/**
 * struct vmm_acpi_pci - a PCI host bridge (PNP0A08, bus 0 only) for the
 * DSDT, its ECAM window for the MCFG table (PCI Firmware 3.2 §4.1.2).
 */
struct vmm_acpi_pci {
	uint64_t ecam_base;  /**< 1 MiB aligned, bus 0: 1 MiB, below 4 GiB */
	uint32_t mem32_base; /**< 32-bit BAR window, or size 0 */
	uint32_t mem32_size;
	uint64_t mem64_base; /**< 64-bit BAR window, or size 0 */
	uint64_t mem64_size;
	/** INTA of device s goes to GSI slot_gsi[s] (level, active low, as
	 * PCI interrupts are); 0: no INTx for the device. */
	uint32_t slot_gsi[VMM_ACPI_PCI_SLOTS];
};

/** struct vmm_acpi_config - what the tables describe. */
struct vmm_acpi_config {
	uint32_t num_vcpus; /**< 1..VMM_ACPI_MAX_VCPUS; APIC IDs 0..n-1 */
	const struct vmm_acpi_mmio_device *devices; /**< not owned */
	size_t num_devices; /**< 0..VMM_ACPI_MAX_DEVICES */
	bool serial;	    /**< describe COM1 (0x3f8, IRQ 4, edge) */
	/**
	 * Address of the byte register the guest writes to power off or
	 * reset (SLEEP_CONTROL_REG, SLEEP_STATUS_REG and RESET_REG all point
	 * there): a port if !@sleep_reg_mmio, else guest-physical. Non-zero.
	 */
	uint64_t sleep_reg;
	bool sleep_reg_mmio; /**< the register is MMIO rather than port I/O */
	bool cmos_rtc;	     /**< an RTC at ports 0x70-0x71 exists */
	/** A PCI host bridge (MCFG, PNP0A08 with _CRS and _PRT, MSI allowed
	 * in the FADT), or NULL. Not owned. */
	const struct vmm_acpi_pci *pci;
};

/** struct vmm_acpi_layout - where vmm_acpi_build() put things. */
struct vmm_acpi_layout {
	uint64_t rsdp; /**< guest-physical address of the RSDP (= @gpa) */
	uint64_t xsdt, fadt, madt, dsdt; /**< guest-physical, each table */
	uint64_t mcfg; /**< guest-physical MCFG, 0 without cfg->pci */
	size_t total;  /**< bytes written from @gpa (tables and padding) */
};

/**
 * vmm_acpi_build() - write RSDP, XSDT, FADT, MADT and DSDT into @buf.
 * @cfg:  what to describe; the device list is copied into the tables.
 * @buf:  host-virtual buffer that the caller copies (or maps) at @gpa;
 *        bytes past layout->total are left untouched.
 * @size: bytes available at @buf.
 * @gpa:  guest-physical address of @buf[0]; 16-byte aligned; @gpa + @size
 *        must not wrap (the XSDT and X_DSDT hold 64-bit pointers). Linux
 *        finds the RSDP by scanning 0xe0000-0xfffff, or at the address the
 *        VMM puts in boot_params.acpi_rsdp_addr.
 * @out:  filled on success.
 *
 * Every table carries a correct checksum (ACPI 6.4 §5.2.5.3, §5.2.6); the
 * RSDP both its 20-byte and its extended checksum.
 *
 * Return: 0; -EINVAL if an argument is out of the ranges documented above
 * (no vCPU or too many, a device window empty or not below 4 GiB, an IRQ
 * that is not an IO-APIC pin or that two devices, or a device and COM1,
 * share (the descriptors say Exclusive), a zero sleep register or a port
 * above 0xffff, @gpa unaligned or wrapping); -ENOSPC if @size is too small (nothing useful is
 * left in @buf); -ENOMEM (scratch space for the DSDT). ACPI 6.4 §5.2.5-§5.2.12.
 */
int vmm_acpi_build(const struct vmm_acpi_config *cfg, void *buf, size_t size,
		   uint64_t gpa, struct vmm_acpi_layout *out);

/** What a guest write to the sleep/reset register asks for. */
enum vmm_acpi_sleep_action {
	VMM_ACPI_NONE,	   /**< anything else (e.g. clearing WAK_STS) */
	VMM_ACPI_POWEROFF, /**< SLP_EN with SLP_TYP = VMM_ACPI_S5_SLP_TYP */
	VMM_ACPI_RESET,	   /**< VMM_ACPI_RESET_VALUE via RESET_REG */
};

/**
 * vmm_acpi_sleep_reg_action() - decode a byte the guest wrote to the
 * register at cfg->sleep_reg. SLEEP_CONTROL_REG layout (ACPI 6.4
 * §4.8.3.7): bits 4:2 SLP_TYPx, bit 5 SLP_EN; writes to SLEEP_STATUS_REG
 * (bit 7 WAK_STS, write 1 to clear) decode as VMM_ACPI_NONE.
 * Return: the action; any value is safe.
 */
enum vmm_acpi_sleep_action vmm_acpi_sleep_reg_action(uint8_t value);

/**
 * vmm_acpi_checksum() - the byte that makes @len bytes at @p sum to zero
 * (mod 256), i.e. what goes into a zeroed checksum field. ACPI 6.4 §5.2.6.
 */
uint8_t vmm_acpi_checksum(const void *p, size_t len);

#endif /* VDK_ACPI_H */
