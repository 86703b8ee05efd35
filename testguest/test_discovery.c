/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host-side tests of vdk-testguest's device discovery: the ACPI scanner
 * (acpi.c) against the tables vdk-vmm builds (vmm/acpi.c), and the
 * command line parser (cmdline.c). The guest reads tables at their
 * guest-physical addresses, so the tables are built into memory mapped
 * below 4 GiB (MAP_32BIT) with gpa = that address; the BIOS-area scan is
 * tested at 0xe0000 itself when the host lets us map there.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "acpi.h" /* vmm/ */
#include "guest.h"

#define MAP_LEN 0x20000u

static const struct vmm_acpi_mmio_device vmm_devs[3] = {
	{.base = 0xd0000000, .size = 0x1000, .irq = 5, .level = true},
	{.base = 0xd0001000, .size = 0x1000, .irq = 6, .level = false},
	{.base = 0xd0002000, .size = 0x200, .irq = 17, .level = true},
};

static struct vmm_acpi_config vmm_config(bool mmio_sleep)
{
	return (struct vmm_acpi_config){
		.num_vcpus = 2,
		.devices = vmm_devs,
		.num_devices = 3,
		.serial = true,
		.sleep_reg = mmio_sleep ? 0xfed00000 : 0x600,
		.sleep_reg_mmio = mmio_sleep,
	};
}

static uint8_t *map_low(void *want)
{
	void *p = mmap(want, MAP_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS |
			       (want ? MAP_FIXED_NOREPLACE : MAP_32BIT),
		       -1, 0);

	if (p == MAP_FAILED || (want && p != want))
		return NULL;
	return p;
}

static void assert_vmm_tables_found(const struct acpi_info *ai, bool mmio)
{
	assert_int_equal(ai->num_windows, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(ai->windows[i].base, vmm_devs[i].base);
		assert_int_equal(ai->windows[i].size, vmm_devs[i].size);
		assert_int_equal(ai->windows[i].irq, vmm_devs[i].irq);
	}
	assert_true(ai->hw_reduced);
	assert_int_equal(ai->sleep_ctl.space, mmio ? 0 : 1);
	assert_int_equal(ai->sleep_ctl.address, mmio ? 0xfed00000 : 0x600);
	assert_true(ai->have_s5);
	assert_int_equal(ai->s5_slp_typ, VMM_ACPI_S5_SLP_TYP);
}

static void test_vmm_tables_by_hint(void **state)
{
	uint8_t *m = map_low(NULL);
	struct vmm_acpi_layout l;
	struct acpi_info ai;

	(void)state;
	assert_non_null(m);
	for (int mmio = 0; mmio < 2; mmio++) {
		struct vmm_acpi_config c = vmm_config(mmio);

		memset(m, 0, MAP_LEN);
		assert_int_equal(
			vmm_acpi_build(&c, m, MAP_LEN, (uintptr_t)m, &l), 0);
		assert_int_equal(acpi_scan(l.rsdp, &ai), 0);
		assert_int_equal(ai.rsdp, l.rsdp);
		assert_vmm_tables_found(&ai, mmio);
	}
	munmap(m, MAP_LEN);
}

static void test_vmm_tables_bios_scan(void **state)
{
	uint8_t *m = map_low((void *)0xe0000);
	struct vmm_acpi_config c = vmm_config(false);
	struct vmm_acpi_layout l;
	struct acpi_info ai;

	(void)state;
	if (!m)
		skip(); /* vm.mmap_min_addr or something already there */
	/* Not at the start of the area: the scan must walk to it. */
	assert_int_equal(
		vmm_acpi_build(&c, m + 0x4000, MAP_LEN - 0x4000, 0xe4000, &l),
		0);
	assert_int_equal(acpi_scan(0, &ai), 0);
	assert_int_equal(ai.rsdp, 0xe4000);
	assert_vmm_tables_found(&ai, false);
	/* A hint that is no RSDP falls back to the scan. */
	assert_int_equal(acpi_scan(0xe0010, &ai), 0);
	assert_int_equal(ai.rsdp, 0xe4000);
	/* An RSDP with a wrong checksum is no RSDP. */
	m[0x4000 + 8] ^= 1;
	assert_int_equal(acpi_scan(0, &ai), -ENOENT);
	assert_int_equal(ai.num_windows, 0);
	munmap(m, MAP_LEN);
}

static void test_bad_checksums(void **state)
{
	uint8_t *m = map_low(NULL);
	struct vmm_acpi_config c = vmm_config(false);
	struct vmm_acpi_layout l;
	struct acpi_info ai;

	(void)state;
	assert_non_null(m);
	assert_int_equal(vmm_acpi_build(&c, m, MAP_LEN, (uintptr_t)m, &l), 0);

	/* A DSDT byte changed: the DSDT is ignored (no devices, no _S5). */
	m[l.dsdt - l.rsdp + 40] ^= 1;
	assert_int_equal(acpi_scan(l.rsdp, &ai), 0);
	assert_int_equal(ai.num_windows, 0);
	assert_false(ai.have_s5);
	m[l.dsdt - l.rsdp + 40] ^= 1;

	/* An XSDT byte changed: the root table is refused. */
	m[l.xsdt - l.rsdp + 20] ^= 1;
	assert_int_equal(acpi_scan(l.rsdp, &ai), -EINVAL);
	m[l.xsdt - l.rsdp + 20] ^= 1;

	/* A DSDT length beyond 4 GiB of mapping is refused, not read. */
	memcpy(m + (l.dsdt - l.rsdp) + 4, "\xff\xff\xff\x7f", 4);
	assert_int_equal(acpi_scan(l.rsdp, &ai), 0);
	assert_int_equal(ai.num_windows, 0);
	munmap(m, MAP_LEN);
}

static void test_truncated_dsdt(void **state)
{
	uint8_t *m = map_low(NULL);
	struct vmm_acpi_config c = vmm_config(false);
	struct vmm_acpi_layout l;
	struct acpi_info ai;
	uint8_t *dsdt;
	uint32_t len;

	(void)state;
	assert_non_null(m);
	assert_int_equal(vmm_acpi_build(&c, m, MAP_LEN, (uintptr_t)m, &l), 0);
	dsdt = m + (l.dsdt - l.rsdp);
	memcpy(&len, dsdt + 4, 4);
	/* Every shorter DSDT (checksum fixed up): never a window that is not
	 * one of the real ones, never a crash (ASan watches the reads). */
	for (uint32_t cut = 36; cut < len; cut++) {
		uint8_t sum = 0;

		memcpy(dsdt + 4, &cut, 4);
		dsdt[9] = 0;
		for (uint32_t i = 0; i < cut; i++)
			sum = (uint8_t)(sum + dsdt[i]);
		dsdt[9] = (uint8_t)(0 - sum);
		assert_int_equal(acpi_scan(l.rsdp, &ai), 0);
		assert_true(ai.num_windows <= 3);
		for (size_t i = 0; i < ai.num_windows; i++)
			assert_int_equal(ai.windows[i].base, vmm_devs[i].base);
	}
	munmap(m, MAP_LEN);
}

static void test_cmdline_devices(void **state)
{
	struct mmio_window w[4];
	const char *cl = "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 "
			 "x=1 virtio_mmio.device=512@0xfeb00e00:12 "
			 "virtio_mmio.device=1M@4096 "
			 "virtio_mmio.device=bad@0x1000:1 "
			 "virtio_mmio.device=4K@0x1000:1junk "
			 "xvirtio_mmio.device=4K@0x2000:1";

	(void)state;
	assert_int_equal(cmdline_devices(cl, w, 4), 3);
	assert_int_equal(w[0].base, 0xd0000000);
	assert_int_equal(w[0].size, 4096);
	assert_int_equal(w[0].irq, 5);
	assert_int_equal(w[1].base, 0xfeb00e00);
	assert_int_equal(w[1].size, 512);
	assert_int_equal(w[1].irq, 12);
	assert_int_equal(w[2].base, 4096);
	assert_int_equal(w[2].size, 1 << 20);
	assert_int_equal(w[2].irq, 0);
	/* The caller's limit holds. */
	assert_int_equal(cmdline_devices(cl, w, 1), 1);
	/* Overflowing numbers are refused. */
	assert_int_equal(
		cmdline_devices("virtio_mmio.device=0x1ffffffffffffffffff@0x1",
				w, 4),
		0);
	assert_int_equal(
		cmdline_devices("virtio_mmio.device=0xfffffffffffffff@0x1", w,
				4),
		1);
	assert_int_equal(
		cmdline_devices("virtio_mmio.device=0xfffffffffffffffK@0x1", w,
				4),
		0);
	assert_int_equal(cmdline_devices("", w, 4), 0);
}

static void test_cmdline_value(void **state)
{
	char buf[8];

	(void)state;
	assert_int_equal(cmdline_value("a=1 vdk.serial=abc b", "vdk.serial",
				       buf, sizeof(buf)),
			 3);
	assert_string_equal(buf, "abc");
	/* Truncated to the buffer, full length returned. */
	assert_int_equal(cmdline_value("vdk.serial=0123456789", "vdk.serial",
				       buf, sizeof(buf)),
			 10);
	assert_string_equal(buf, "0123456");
	assert_int_equal(cmdline_value("vdk.serialx=1 vdk.seria=2",
				       "vdk.serial", buf, sizeof(buf)),
			 -ENOENT);
	assert_int_equal(
		cmdline_value("vdk.serial=", "vdk.serial", buf, sizeof(buf)),
		0);
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vmm_tables_by_hint),
		cmocka_unit_test(test_vmm_tables_bios_scan),
		cmocka_unit_test(test_bad_checksums),
		cmocka_unit_test(test_truncated_dsdt),
		cmocka_unit_test(test_cmdline_devices),
		cmocka_unit_test(test_cmdline_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
