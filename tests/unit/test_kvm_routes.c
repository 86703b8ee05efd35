/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-vmm's KVM MSI routes (vmm_kvm_msi_route_*(), KVM_SET_GSI_ROUTING)
 * and irqfds on them, on this host's /dev/kvm; skipped without one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvm.h"

static struct vmm_kvm k;

static int setup(void **state)
{
	(void)state;
	if (vmm_kvm_open(&k, "/dev/kvm") < 0) {
		print_message("SKIPPED: no usable /dev/kvm: %s\n", k.errmsg);
		return 0;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vmm_kvm_close(&k);
	return 0;
}

static void test_routes(void **state)
{
	int gsi, g2, fd;
	uint64_t one = 1;

	(void)state;
	if (k.vm_fd < 0)
		skip();
	gsi = vmm_kvm_msi_route_alloc(&k);
	assert_int_equal(gsi, VMM_KVM_IRQCHIP_GSIS);
	g2 = vmm_kvm_msi_route_alloc(&k);
	assert_int_equal(g2, VMM_KVM_IRQCHIP_GSIS + 1);
	/* x86 MSI: 0xfee00000 | APIC ID 0, vector 0x40, fixed, edge. */
	assert_int_equal(vmm_kvm_msi_route_set(&k, (uint32_t)gsi, 0xfee00000u,
					       0x40, true),
			 0);
	/* The same again: nothing to do; another message: rewritten. */
	assert_int_equal(vmm_kvm_msi_route_set(&k, (uint32_t)gsi, 0xfee00000u,
					       0x40, true),
			 0);
	assert_int_equal(vmm_kvm_msi_route_set(&k, (uint32_t)gsi, 0xfee00000u,
					       0x41, true),
			 0);
	assert_int_equal(k.msi[0].data, 0x41);
	/* An irqfd on the routed GSI; a write injects (no vCPU: pending). */
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(fd >= 0);
	assert_int_equal(vmm_kvm_irqfd(&k, fd, (uint32_t)gsi, true), 0);
	assert_int_equal(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	assert_int_equal(vmm_kvm_irqfd(&k, fd, (uint32_t)gsi, false), 0);
	close(fd);
	/* GSIs that are not allocated MSI GSIs. */
	assert_int_equal(vmm_kvm_msi_route_set(&k, 5, 0xfee00000u, 0x40, true),
			 -EINVAL);
	assert_int_equal(vmm_kvm_msi_route_set(&k, (uint32_t)g2 + 1,
					       0xfee00000u, 0x40, true),
			 -EINVAL);
	assert_int_equal(vmm_kvm_msi_route_set(
				 &k, VMM_KVM_IRQCHIP_GSIS + VMM_KVM_MSI_ROUTES,
				 0xfee00000u, 0x40, true),
			 -EINVAL);
	/* Freed GSIs are handed out again; the table runs out. */
	vmm_kvm_msi_route_free(&k, (uint32_t)gsi);
	vmm_kvm_msi_route_free(&k, 3); /* ignored */
	assert_false(k.msi[0].used);
	assert_int_equal(vmm_kvm_msi_route_alloc(&k), gsi);
	for (unsigned int i = 2; i < VMM_KVM_MSI_ROUTES; i++)
		assert_true(vmm_kvm_msi_route_alloc(&k) >= 0);
	assert_int_equal(vmm_kvm_msi_route_alloc(&k), -ENOSPC);
	/* The IO-APIC routes are still there: an irqfd on GSI 5 works. */
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(fd >= 0);
	assert_int_equal(vmm_kvm_irqfd(&k, fd, 5, true), 0);
	assert_int_equal(vmm_kvm_irqfd(&k, fd, 5, false), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
