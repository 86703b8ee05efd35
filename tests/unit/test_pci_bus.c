/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for vmm/pci_bus.c without KVM: a virtio-rng behind virtio-pci
 * plugged into the VM's PCI bus is found through ports 0xCF8/0xCFC and
 * through ECAM on the VM's buses, its BAR is placed in the window with
 * decoding on, the window routes accesses to it (and follows a BAR the
 * guest moves), and the ACPI description matches the layout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <linux/pci_regs.h>
#include <linux/virtio_pci.h>

#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mem.h>

#include "pci_bus.h"
#include "pci_host.h"

static void quiet(void *opaque, enum vdk_log_level level, const char *module,
		  const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

static void no_msi(void *opaque, uint64_t addr, uint32_t data)
{
	(void)opaque;
	(void)addr;
	(void)data;
}

static uint32_t cf8_read(struct vdk_bus *pio, unsigned int slot, uint32_t reg)
{
	uint32_t a = 0x80000000u | slot << 11 | reg, v = 0;

	assert_int_equal(vdk_bus_write(pio, VMM_PCI_CONFIG_ADDRESS, &a, 4), 0);
	assert_int_equal(vdk_bus_read(pio, VMM_PCI_CONFIG_DATA, &v, 4), 0);
	return v;
}

static void test_bus(void **state)
{
	struct vdk_bus *pio = vdk_bus_new(VDK_BUS_PIO, NULL);
	struct vdk_bus *mmio = vdk_bus_new(VDK_BUS_MMIO, NULL);
	struct vdk_mem *mem = vdk_mem_new(NULL);
	struct vdk_rng *rng;
	struct vdk_virtio_pci *t;
	struct vmm_pci_bus *b;
	struct vmm_acpi_pci acpi;
	unsigned int slot = 0;
	uint64_t bar;
	uint32_t v;
	int err = -1;

	(void)state;
	assert_non_null(pio);
	assert_non_null(mmio);
	assert_int_equal(vdk_mem_add_memfd(mem, 0, 1 << 20, "ram"), 0);
	rng = vdk_rng_new(NULL, NULL);
	assert_non_null(rng);
	struct vdk_virtio_pci_config cfg = {
		.device = vdk_rng_device(rng), .mem = mem, .msi = no_msi};
	t = vdk_virtio_pci_new(&cfg, &err);
	assert_non_null(t);
	b = vmm_pci_bus_new(NULL, pio, mmio, 256u << 20, &err);
	assert_non_null(b);
	assert_int_equal(vmm_pci_bus_add(b, t, &slot), 0);
	assert_int_equal(slot, 1);

	/* Type 1 configuration access and ECAM see the same function. */
	assert_int_equal(cf8_read(pio, slot, PCI_VENDOR_ID), 0x10441af4);
	assert_int_equal(
		vdk_bus_read(mmio,
			     VMM_PCI_ECAM_BASE + (slot << 15) + PCI_VENDOR_ID,
			     &v, 4),
		0);
	assert_int_equal(v, 0x10441af4);
	assert_int_equal(cf8_read(pio, 2, PCI_VENDOR_ID), 0xffffffff);
	/* Placed in the 64-bit window (at 4 GiB: RAM ends below), decoding,
	 * bus master on. */
	bar = cf8_read(pio, slot, PCI_BASE_ADDRESS_0) & ~0xfu;
	bar |= (uint64_t)cf8_read(pio, slot, PCI_BASE_ADDRESS_1) << 32;
	assert_int_equal(bar, 0x100000000ull);
	assert_int_equal(cf8_read(pio, slot, PCI_COMMAND) & 0xffff,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	/* The window routes to the BAR: num_queues of virtio-rng is 1. */
	uint16_t nq = 0;
	assert_int_equal(
		vdk_bus_read(mmio, bar + VIRTIO_PCI_COMMON_NUMQ, &nq, 2), 0);
	assert_int_equal(nq, 1);
	/* The guest moves the BAR into the 32-bit window (high dword first,
	 * as Linux does not, but a driver may). */
	uint32_t a = 0x80000000u | slot << 11 | PCI_BASE_ADDRESS_1;
	uint32_t nb = 0;
	vdk_bus_write(pio, VMM_PCI_CONFIG_ADDRESS, &a, 4);
	vdk_bus_write(pio, VMM_PCI_CONFIG_DATA, &nb, 4);
	a = 0x80000000u | slot << 11 | PCI_BASE_ADDRESS_0;
	nb = (uint32_t)VMM_PCI_MEM32_BASE + 0x100000;
	vdk_bus_write(pio, VMM_PCI_CONFIG_ADDRESS, &a, 4);
	vdk_bus_write(pio, VMM_PCI_CONFIG_DATA, &nb, 4);
	nq = 0;
	vdk_bus_read(mmio, nb + VIRTIO_PCI_COMMON_NUMQ, &nq, 2);
	assert_int_equal(nq, 1);
	v = 0;
	vdk_bus_read(mmio, bar + VIRTIO_PCI_COMMON_NUMQ, &v, 2);
	assert_int_equal(v, 0xffff); /* nobody decodes the old place */

	vmm_pci_bus_acpi(b, &acpi);
	assert_int_equal(acpi.ecam_base, VMM_PCI_ECAM_BASE);
	assert_int_equal(acpi.mem32_base, VMM_PCI_MEM32_BASE);
	assert_int_equal(acpi.mem32_size, VMM_PCI_MEM32_SIZE);
	assert_int_equal(acpi.mem64_base, 0x100000000ull);
	assert_int_equal(acpi.mem64_size, VMM_PCI_MEM64_SIZE);
	assert_int_equal(acpi.slot_gsi[slot], VMM_PCI_INTX_GSI_FIRST);
	assert_int_equal(acpi.slot_gsi[slot + 1], 0);
	/* INTx without KVM: bookkeeping only, bad slots ignored. */
	vmm_pci_bus_intx(b, slot, true);
	vmm_pci_bus_intx(b, slot, false);
	vmm_pci_bus_intx(b, 0, true);
	vmm_pci_bus_intx(b, 99, true);

	vmm_pci_bus_free(b);
	/* Deregistered: the ports and windows are free again. */
	assert_int_equal(vdk_bus_read(pio, VMM_PCI_CONFIG_DATA, &v, 4),
			 -ENOENT);
	vdk_virtio_pci_free(t);
	vdk_rng_free(rng);
	vdk_mem_free(mem);
	vdk_bus_free(pio);
	vdk_bus_free(mmio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bus),
	};

	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
