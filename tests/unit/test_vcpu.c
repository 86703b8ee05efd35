/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of vmm/vcpu.c that need no /dev/kvm: vmm_vcpu_setup_cpuid() gives
 * every vCPU its own APIC ID and all of them one topology, one package of
 * --cpus cores, whatever the host's CPUID said: an AMD host without leaf
 * 0xb levels (as QEMU's TCG "max" CPU in the nested harness) and an Intel
 * host with SMT.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vcpu.h"

enum { N = 8 };

/* Fill @e like KVM_GET_SUPPORTED_CPUID on a host with 2 threads per core
 * and 8 cores (Intel: leaf 0xb levels) or 2 cores (AMD: no levels). */
static void host_table(struct kvm_cpuid_entry2 *e, bool intel)
{
	memset(e, 0, N * sizeof(*e));
	e[0] = (struct kvm_cpuid_entry2){.function = 1,
					 .eax = 0x60fb1,
					 .ebx = 0x01020800, /* APIC 1, 2 IDs */
					 .ecx = 0x72f83203,
					 .edx = 0x0f8bfbfd};
	e[1] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 0, .edx = 1};
	e[2] = (struct kvm_cpuid_entry2){.function = 0x80000008,
					 .eax = 0x3928,
					 .ecx = 0x00001001}; /* 2 cores */
	if (intel) {
		e[1] = (struct kvm_cpuid_entry2){.function = 0xb,
						 .index = 0,
						 .eax = 1,
						 .ebx = 2,
						 .ecx = 0x100,
						 .edx = 3};
		e[3] = (struct kvm_cpuid_entry2){.function = 0xb,
						 .index = 1,
						 .eax = 4,
						 .ebx = 16,
						 .ecx = 0x201,
						 .edx = 3};
		e[4] = (struct kvm_cpuid_entry2){
			.function = 0xb, .index = 2, .ecx = 2, .edx = 3};
		e[2].ecx = 0;
	}
}

static void test_amd_host(void **state)
{
	struct kvm_cpuid_entry2 e[N];

	(void)state;
	for (unsigned int cpus = 1; cpus <= 5; cpus++) {
		for (unsigned int id = 0; id < cpus; id++) {
			host_table(e, false);
			vmm_vcpu_setup_cpuid(e, N, id, cpus);
			/* Leaf 1: APIC ID, a power of two >= cpus IDs, HTT
			 * with more than one, the hypervisor bit. */
			assert_int_equal(e[0].ebx >> 24, id);
			assert_int_equal((e[0].ebx >> 16) & 0xff,
					 cpus == 1   ? 1
					 : cpus == 2 ? 2
					 : cpus <= 4 ? 4
						     : 8);
			assert_int_equal(e[0].ebx & 0xffff, 0x0800);
			assert_true(e[0].ecx & (1u << 31));
			assert_int_equal(!!(e[0].edx & (1u << 28)), cpus > 1);
			/* No levels on this host: 0xb stays invalid, with
			 * the x2APIC ID. */
			assert_int_equal(e[1].ecx, 0);
			assert_int_equal(e[1].ebx, 0);
			assert_int_equal(e[1].edx, id);
			/* 0x80000008: NC = cpus - 1, ApicIdCoreIdSize. */
			assert_int_equal(e[2].ecx & 0xff, cpus - 1);
			assert_int_equal((e[2].ecx >> 12) & 0xf, cpus == 1   ? 0
								 : cpus == 2 ? 1
								 : cpus <= 4
									 ? 2
									 : 3);
			assert_int_equal(e[2].eax, 0x3928);
		}
	}
}

static void test_intel_host(void **state)
{
	struct kvm_cpuid_entry2 e[N];

	(void)state;
	host_table(e, true);
	vmm_vcpu_setup_cpuid(e, N, 2, 3);
	/* SMT level: one thread; core level: 3 cores in 2 bits; then none. */
	assert_int_equal(e[1].eax, 0);
	assert_int_equal(e[1].ebx, 1);
	assert_int_equal(e[1].ecx, 0x100);
	assert_int_equal(e[3].eax, 2);
	assert_int_equal(e[3].ebx, 3);
	assert_int_equal(e[3].ecx, 0x201);
	assert_int_equal(e[4].ebx, 0);
	assert_int_equal(e[4].ecx, 2);
	for (unsigned int i = 1; i <= 4; i++)
		if (e[i].function == 0xb)
			assert_int_equal(e[i].edx, 2);
	assert_int_equal(e[0].ebx >> 24, 2);
	assert_int_equal((e[0].ebx >> 16) & 0xff, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_amd_host),
		cmocka_unit_test(test_intel_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
