/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PCI bus of a vdk-vmm VM: the host bridge of pci_host.c put on the
 * VM's buses (ports 0xCF8-0xCFF, the ECAM window, the BAR windows), virtio-pci
 * functions plugged into it with their BARs assigned as firmware would,
 * MSI messages delivered through KVM, and the description for the ACPI
 * tables (MCFG, PNP0A08).
 *
 * Guest-physical layout (below the IO-APIC, above the virtio-mmio windows):
 *   VMM_PCI_ECAM_BASE   1 MiB of ECAM for bus 0
 *   VMM_PCI_MEM32_BASE  the 32-bit BAR window, VMM_PCI_MEM32_SIZE bytes
 * and above RAM and 4 GiB the 64-bit BAR window (VMM_PCI_MEM64_SIZE bytes,
 * vmm_pci_bus_new()), where the 64-bit BARs go; both are memory windows
 * of the PNP0A08 _CRS (DWordMemory, QWordMemory).
 *
 * Each BAR window is one device on the MMIO bus that asks each function in
 * turn whether one of its BARs decodes the address: BARs move under guest
 * control, and the bus cannot be changed from inside its own dispatch.
 *
 * Lifecycle: vmm_pci_bus_new() and vmm_pci_bus_add() while the VM is set
 * up; vmm_pci_bus_free() after the vCPUs stopped, before the functions
 * are freed.
 */
#ifndef VDK_VMM_PCI_BUS_H
#define VDK_VMM_PCI_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include <vdk/bus.h>
#include <vdk/virtio_pci.h>

#include "acpi.h"
#include "kvm.h"

#define VMM_PCI_ECAM_BASE  0xe0000000ull
#define VMM_PCI_MEM32_BASE 0xe8000000ull
#define VMM_PCI_MEM32_SIZE 0x08000000ull

struct vmm_pci_bus;

/** Size of the 64-bit BAR window, placed above guest RAM (and above
 * 4 GiB) on a VMM_PCI_MEM64_ALIGN boundary. */
#define VMM_PCI_MEM64_SIZE  0x40000000ull
#define VMM_PCI_MEM64_ALIGN 0x40000000ull

/**
 * vmm_pci_bus_new() - an empty PCI bus registered on @pio and @mmio, its
 * 64-bit BAR window (VMM_PCI_MEM64_SIZE bytes) at the first
 * VMM_PCI_MEM64_ALIGN boundary at or above 4 GiB and @ram_end (the end of
 * guest RAM, guest-physical). None of the arguments is owned; all outlive
 * the bus.
 * @err: 0, -ENOMEM, -EINVAL (@ram_end too high), or vdk_bus_register()'s
 * error; may be NULL.
 */
struct vmm_pci_bus *vmm_pci_bus_new(struct vmm_kvm *kvm, struct vdk_bus *pio,
				    struct vdk_bus *mmio, uint64_t ram_end,
				    int *err);

/** vmm_pci_bus_free() - deregister from the buses and free; NULL is fine. */
void vmm_pci_bus_free(struct vmm_pci_bus *b);

/**
 * vmm_pci_bus_add() - plug @t (not owned; outlives the bus) into the next
 * slot, give its (64-bit) BAR an address in the 64-bit window and turn
 * memory decoding
 * and bus mastering on, as firmware does. Before the vCPUs run.
 * @slot: set to the device number.
 * Return: 0; -ENOSPC no slot or window space; -EINVAL.
 */
int vmm_pci_bus_add(struct vmm_pci_bus *b, struct vdk_virtio_pci *t,
		    unsigned int *slot);

/**
 * vmm_pci_bus_msi() - a vdk_pci_msi_fn that injects the message through
 * KVM (@opaque: the struct vmm_kvm). For struct vdk_virtio_pci_config.
 */
void vmm_pci_bus_msi(void *opaque, uint64_t addr, uint32_t data);

/** First GSI of the INTx pool: device s's INTA is GSI
 * VMM_PCI_INTX_GSI_FIRST + (s - 1) % VMM_PCI_INTX_GSIS (shared, level,
 * active low; the ACPI _PRT says so). */
#define VMM_PCI_INTX_GSI_FIRST 16u
#define VMM_PCI_INTX_GSIS      8u

/**
 * vmm_pci_bus_intx() - the INTA level of the function in @slot changed
 * (a vdk_pci_intx_fn's work, any thread): the GSI is asserted while any of
 * the functions sharing it asserts its pin (KVM_IRQ_LINE).
 */
void vmm_pci_bus_intx(struct vmm_pci_bus *b, unsigned int slot, bool level);

/** vmm_pci_bus_acpi() - the bus as vmm_acpi_build() describes it, with
 * the INTA route of every device in use (_PRT). */
void vmm_pci_bus_acpi(const struct vmm_pci_bus *b, struct vmm_acpi_pci *out);

#endif /* VDK_VMM_PCI_BUS_H */
