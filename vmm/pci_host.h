/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PCI host bridge of vdk-vmm: PCI bus 0 with up to 32 devices (one
 * function each), reached through configuration mechanism #1 (ports 0xCF8
 * address / 0xCFC-0xCFF data, PCI 3.0 §3.2.2.3.2) and through an ECAM
 * window (PCI Express 4.0 §7.2.2: offset = bus << 20 | device << 15 |
 * function << 12 | register), which the ACPI MCFG table describes; and the
 * allocator that gives BARs their addresses from the bridge's 64-bit
 * memory window (the _CRS of the PNP0A08 device in the DSDT).
 *
 * Hostile guest: accesses to absent devices, functions other than 0, buses
 * other than 0, or with the 0xCF8 enable bit clear read all-ones and are
 * dropped; widths are checked by each function's model (<vdk/pci.h>).
 *
 * Locking: each slot's callbacks serialise themselves (a virtio-pci
 * transport takes its lock); the 0xCF8 address latch is one 32-bit word
 * updated atomically (a racing vCPU sees one value or the other, as on
 * hardware with a shared latch).
 */
#ifndef VDK_VMM_PCI_HOST_H
#define VDK_VMM_PCI_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Devices on bus 0. */
#define VMM_PCI_SLOTS 32
/** Bytes of ECAM for one bus. */
#define VMM_PCI_ECAM_BUS_SIZE (1u << 20)
/** The configuration mechanism #1 ports. */
#define VMM_PCI_CONFIG_ADDRESS 0xcf8
#define VMM_PCI_CONFIG_DATA    0xcfc

/** Configuration access of one function: @offset 0..4095, @len 1/2/4. */
typedef void vmm_pci_cfg_read_fn(void *opaque, uint32_t offset, void *data,
				 size_t len);
typedef void vmm_pci_cfg_write_fn(void *opaque, uint32_t offset,
				  const void *data, size_t len);

struct vmm_pci_host;

/**
 * vmm_pci_host_new() - an empty bus 0 whose 32-bit BARs come from
 * [@mem_base, @mem_base + @mem_size) below 4 GiB and whose 64-bit BARs
 * come from [@mem64_base, @mem64_base + @mem64_size) (guest-physical;
 * @mem64_size 0: 64-bit BARs share the 32-bit window).
 * @err: 0, -EINVAL (empty or wrapping window, the 32-bit one not below
 * 4 GiB), -ENOMEM; may be NULL.
 */
struct vmm_pci_host *vmm_pci_host_new(uint64_t mem_base, uint64_t mem_size,
				      uint64_t mem64_base, uint64_t mem64_size,
				      int *err);

/** vmm_pci_host_free() - NULL is fine. The functions are not owned. */
void vmm_pci_host_free(struct vmm_pci_host *h);

/**
 * vmm_pci_host_add() - plug a function into the first free slot (slot 0
 * is left free for no host-bridge function: Linux scans and finds none).
 * @slot: set to the device number.
 * Return: 0; -EINVAL NULL callbacks; -ENOSPC bus full.
 */
int vmm_pci_host_add(struct vmm_pci_host *h, vmm_pci_cfg_read_fn *rd,
		     vmm_pci_cfg_write_fn *wr, void *opaque,
		     unsigned int *slot);

/**
 * vmm_pci_host_alloc() - @size bytes (a power of two) aligned to @size
 * for a BAR, as firmware assigns them: a 64-bit BAR (@is64) from the
 * 64-bit window (the 32-bit one when there is none or it is full), a
 * 32-bit BAR from the 32-bit window.
 * Return: 0 and *@addr; -EINVAL bad size; -ENOSPC window exhausted.
 */
int vmm_pci_host_alloc(struct vmm_pci_host *h, uint64_t size, bool is64,
		       uint64_t *addr);

/** vmm_pci_host_ecam() - a read, or with @write a write of @data (which
 * is then only read), of @len (1..4) bytes at @offset in the ECAM window
 * (bytes from its base). No function there: a read gives all ones. */
void vmm_pci_host_ecam(struct vmm_pci_host *h, uint64_t offset, void *data,
		       size_t len, bool write);

/** vmm_pci_host_pio() - the same at @port, one of 0xCF8..0xCFF
 * (configuration mechanism #1). */
void vmm_pci_host_pio(struct vmm_pci_host *h, uint16_t port, void *data,
		      size_t len, bool write);

#endif /* VDK_VMM_PCI_HOST_H */
