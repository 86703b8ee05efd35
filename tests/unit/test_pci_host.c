/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for vmm/pci_host.c: configuration mechanism #1 (the 0xCF8
 * latch, its enable bit, byte lanes of 0xCFC-0xCFF), ECAM decoding, absent
 * buses/devices/functions reading all-ones, and the BAR allocator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "pci_host.h"

struct fn {
	int reads, writes;
	uint32_t off;
	size_t len;
	uint32_t wval;
};

static void fn_rd(void *opaque, uint32_t off, void *data, size_t len)
{
	struct fn *f = opaque;

	f->reads++;
	f->off = off;
	f->len = len;
	for (size_t i = 0; i < len; i++)
		((uint8_t *)data)[i] = (uint8_t)(off + i);
}

static void fn_wr(void *opaque, uint32_t off, const void *data, size_t len)
{
	struct fn *f = opaque;

	f->writes++;
	f->off = off;
	f->len = len;
	f->wval = 0;
	memcpy(&f->wval, data, len);
}

static uint32_t cf8(uint32_t dev, uint32_t fn, uint32_t reg)
{
	return 0x80000000u | dev << 11 | fn << 8 | reg;
}

static void test_cf8_cfc(void **state)
{
	struct vmm_pci_host *h =
		vmm_pci_host_new(0xe0000000ull, 1ull << 28, 0, 0, NULL);
	struct fn f = {0};
	unsigned int slot = 99;
	uint32_t a, v;
	uint16_t w;

	(void)state;
	assert_non_null(h);
	assert_int_equal(vmm_pci_host_add(h, fn_rd, fn_wr, &f, &slot), 0);
	assert_int_equal(slot, 1);
	/* Dword read of register 0x10. */
	a = cf8(1, 0, 0x10);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &a, 4, true);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &v, 4, false);
	assert_int_equal(v, a);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_DATA, &v, 4, false);
	assert_int_equal(f.off, 0x10);
	assert_int_equal(v, 0x13121110);
	/* A word at 0xCFE is register 0x12. */
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_DATA + 2, &w, 2, false);
	assert_int_equal(f.off, 0x12);
	assert_int_equal(f.len, 2);
	/* A write reaches the function. */
	v = 0xabcd;
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_DATA + 1, &v, 1, true);
	assert_int_equal(f.writes, 1);
	assert_int_equal(f.off, 0x11);
	/* Enable bit clear, other function, other bus, empty slot: ones. */
	int reads = f.reads;
	a = cf8(1, 0, 0x10) & 0x7fffffff;
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &a, 4, true);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_DATA, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	a = cf8(1, 1, 0);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &a, 4, true);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_DATA, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	a = cf8(1, 0, 0) | 1u << 16;
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &a, 4, true);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_DATA, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	a = cf8(2, 0, 0);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &a, 4, true);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_DATA, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_DATA, &v, 4, true);
	assert_int_equal(f.reads, reads);
	assert_int_equal(f.writes, 1);
	/* The latch keeps only defined bits; a byte write to 0xCF8 is not a
	 * latch write. */
	a = 0xffffffff;
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &a, 4, true);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &v, 4, false);
	assert_int_equal(v, 0x80fffffc);
	uint8_t b = 0;
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &b, 1, true);
	vmm_pci_host_pio(h, VMM_PCI_CONFIG_ADDRESS, &v, 4, false);
	assert_int_equal(v, 0x80fffffc);
	vmm_pci_host_free(h);
}

static void test_ecam(void **state)
{
	struct vmm_pci_host *h =
		vmm_pci_host_new(0xe0000000ull, 1ull << 28, 0, 0, NULL);
	struct fn f = {0};
	unsigned int slot;
	uint32_t v;

	(void)state;
	assert_int_equal(vmm_pci_host_add(h, fn_rd, fn_wr, &f, &slot), 0);
	vmm_pci_host_ecam(h, (uint64_t)slot << 15 | 0x104, &v, 4, false);
	assert_int_equal(f.off, 0x104);
	assert_int_equal(f.reads, 1);
	vmm_pci_host_ecam(h, (uint64_t)slot << 15 | 0x40, &v, 2, true);
	assert_int_equal(f.off, 0x40);
	assert_int_equal(f.len, 2);
	/* Other bus, function, slot; beyond the window; bad length. */
	vmm_pci_host_ecam(h, 1ull << 20 | (uint64_t)slot << 15, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	vmm_pci_host_ecam(h, (uint64_t)slot << 15 | 1u << 12, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	vmm_pci_host_ecam(h, 7ull << 15, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	vmm_pci_host_ecam(h, 256ull << 20, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	uint8_t big[8];
	vmm_pci_host_ecam(h, (uint64_t)slot << 15, big, 8, false);
	assert_int_equal(f.reads, 1);
	vmm_pci_host_free(h);
}

static void test_slots_and_alloc(void **state)
{
	struct vmm_pci_host *h;
	struct fn f = {0};
	uint64_t a;
	int err = 0;

	(void)state;
	assert_null(vmm_pci_host_new(0, 0, 0, 0, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(vmm_pci_host_new(UINT64_MAX - 10, 100, 0, 0, &err));
	/* The 32-bit window must end at or below 4 GiB. */
	assert_null(vmm_pci_host_new(0xfffff000ull, 0x2000, 0, 0, &err));
	assert_null(vmm_pci_host_new(0xe0000000ull, 0x1000, UINT64_MAX - 10,
				     100, &err));
	h = vmm_pci_host_new(0xe0001000ull, 0x10000, 0x100000000ull, 0x10000,
			     &err);
	assert_non_null(h);
	for (unsigned int i = 1; i < VMM_PCI_SLOTS; i++)
		assert_int_equal(vmm_pci_host_add(h, fn_rd, fn_wr, &f, NULL),
				 0);
	assert_int_equal(vmm_pci_host_add(h, fn_rd, fn_wr, &f, NULL), -ENOSPC);
	assert_int_equal(vmm_pci_host_add(h, NULL, fn_wr, &f, NULL), -EINVAL);
	/* 32-bit BARs from the 32-bit window, aligned to the size. */
	assert_int_equal(vmm_pci_host_alloc(h, 0x8000, false, &a), 0);
	assert_int_equal(a, 0xe0008000ull);
	assert_int_equal(vmm_pci_host_alloc(h, 0x1000, false, &a), 0);
	assert_int_equal(a, 0xe0010000ull);
	assert_int_equal(vmm_pci_host_alloc(h, 0x1000, false, &a), -ENOSPC);
	assert_int_equal(vmm_pci_host_alloc(h, 0x1800, false, &a), -EINVAL);
	/* 64-bit BARs from the 64-bit window; when it is full, nowhere (the
	 * 32-bit window is full too). */
	assert_int_equal(vmm_pci_host_alloc(h, 0x8000, true, &a), 0);
	assert_int_equal(a, 0x100000000ull);
	assert_int_equal(vmm_pci_host_alloc(h, 0x8000, true, &a), 0);
	assert_int_equal(a, 0x100008000ull);
	assert_int_equal(vmm_pci_host_alloc(h, 0x8000, true, &a), -ENOSPC);
	vmm_pci_host_free(h);
	/* Without a 64-bit window, 64-bit BARs share the 32-bit one. */
	h = vmm_pci_host_new(0xe0000000ull, 0x10000, 0, 0, &err);
	assert_non_null(h);
	assert_int_equal(vmm_pci_host_alloc(h, 0x8000, true, &a), 0);
	assert_int_equal(a, 0xe0000000ull);
	vmm_pci_host_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cf8_cfc),
		cmocka_unit_test(test_ecam),
		cmocka_unit_test(test_slots_and_alloc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
