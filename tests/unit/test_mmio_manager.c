/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for vmm/mmio_manager.c: window and IRQ allocation, IRQ
 * exhaustion ("no more IRQs are available"), address-space exhaustion,
 * lookup by (type, id), duplicate keys, registration order, the kernel
 * command line, and registration on a vdk_bus (dispatch reaches the device,
 * a bus conflict consumes nothing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mmio_manager.h"

#include <linux/virtio_ids.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE 0xd0000000ull
#define WIN  0x1000ull

static const struct vdk_bus_device no_dev;

static struct vmm_mmio_manager *mgr(uint64_t base, uint64_t win, uint32_t first,
				    uint32_t last)
{
	int err = -1;
	struct vmm_mmio_manager *m =
		vmm_mmio_manager_new(base, win, first, last, &err);

	assert_non_null(m);
	assert_int_equal(err, 0);
	return m;
}

static void test_allocation_and_exhaustion(void **state)
{
	struct vmm_mmio_manager *m = mgr(BASE, WIN, 5, 7);
	struct vmm_mmio_device_info info;
	const char *msg = NULL;
	const char *ids[] = {"rootfs", "rng", "net0"};
	const uint32_t types[] = {VIRTIO_ID_BLOCK, VIRTIO_ID_RNG,
				  VIRTIO_ID_NET};

	(void)state;
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(vmm_mmio_manager_register(m, types[i], ids[i],
							   NULL, no_dev, &info,
							   &msg),
				 0);
		assert_int_equal(info.base, BASE + i * WIN);
		assert_int_equal(info.size, WIN);
		assert_int_equal(info.irq, 5 + i);
		assert_int_equal(info.type, types[i]);
		assert_string_equal(info.id, ids[i]);
	}
	/* IRQs 5..7 are used up: the error and its exact message, twice. */
	for (int k = 0; k < 2; k++) {
		msg = NULL;
		assert_int_equal(vmm_mmio_manager_register(m, VIRTIO_ID_CONSOLE,
							   "con", NULL, no_dev,
							   NULL, &msg),
				 -ENOSPC);
		assert_string_equal(msg, "no more IRQs are available");
		assert_string_equal(msg, VMM_MMIO_MSG_NO_IRQS);
	}
	assert_int_equal(vmm_mmio_manager_count(m), 3);
	assert_null(vmm_mmio_manager_lookup(m, VIRTIO_ID_CONSOLE, "con"));
	vmm_mmio_manager_free(m);

	/* A one-IRQ range at the very top of the u32 range does not wrap. */
	m = mgr(BASE, WIN, UINT32_MAX, UINT32_MAX);
	assert_int_equal(
		vmm_mmio_manager_register(m, 1, "a", NULL, no_dev, &info, NULL),
		0);
	assert_int_equal(info.irq, UINT32_MAX);
	assert_int_equal(
		vmm_mmio_manager_register(m, 1, "b", NULL, no_dev, NULL, &msg),
		-ENOSPC);
	assert_string_equal(msg, VMM_MMIO_MSG_NO_IRQS);
	vmm_mmio_manager_free(m);
}

static void test_address_exhaustion(void **state)
{
	struct vmm_mmio_manager *m = mgr(UINT64_MAX - WIN + 1, WIN, 5, 20);
	struct vmm_mmio_device_info info;
	const char *msg = NULL;

	(void)state;
	/* The last window ends exactly at 2^64 - 1. */
	assert_int_equal(vmm_mmio_manager_register(m, 2, "last", NULL, no_dev,
						   &info, NULL),
			 0);
	assert_int_equal(info.base, UINT64_MAX - WIN + 1);
	assert_int_equal(vmm_mmio_manager_register(m, 2, "more", NULL, no_dev,
						   NULL, &msg),
			 -EOVERFLOW);
	assert_non_null(msg);
	assert_int_equal(vmm_mmio_manager_count(m), 1);
	vmm_mmio_manager_free(m);
}

static void test_lookup_and_duplicates(void **state)
{
	struct vmm_mmio_manager *m = mgr(BASE, WIN, 5, 20);
	const struct vmm_mmio_device_info *d;
	struct vmm_mmio_device_info info;
	const char *msg = NULL;

	(void)state;
	assert_int_equal(vmm_mmio_manager_register(m, VIRTIO_ID_BLOCK, "disk",
						   NULL, no_dev, NULL, NULL),
			 0);
	/* Same id, other type: a different key. */
	assert_int_equal(vmm_mmio_manager_register(m, VIRTIO_ID_NET, "disk",
						   NULL, no_dev, NULL, NULL),
			 0);
	/* Same key again: refused, and nothing consumed. */
	assert_int_equal(vmm_mmio_manager_register(m, VIRTIO_ID_BLOCK, "disk",
						   NULL, no_dev, NULL, &msg),
			 -EEXIST);
	assert_non_null(msg);
	assert_int_equal(vmm_mmio_manager_register(m, VIRTIO_ID_RNG, "rng",
						   NULL, no_dev, &info, NULL),
			 0);
	assert_int_equal(info.base, BASE + 2 * WIN);
	assert_int_equal(info.irq, 7);

	d = vmm_mmio_manager_lookup(m, VIRTIO_ID_NET, "disk");
	assert_non_null(d);
	assert_int_equal(d->base, BASE + WIN);
	assert_int_equal(d->irq, 6);
	d = vmm_mmio_manager_lookup(m, VIRTIO_ID_BLOCK, "disk");
	assert_non_null(d);
	assert_int_equal(d->irq, 5);
	assert_null(vmm_mmio_manager_lookup(m, VIRTIO_ID_RNG, "disk"));
	assert_null(vmm_mmio_manager_lookup(m, VIRTIO_ID_BLOCK, "dis"));
	assert_null(vmm_mmio_manager_lookup(m, VIRTIO_ID_BLOCK, NULL));

	/* Iteration follows registration order. */
	assert_int_equal(vmm_mmio_manager_count(m), 3);
	for (size_t i = 0; i < 3; i++) {
		d = vmm_mmio_manager_at(m, i);
		assert_non_null(d);
		assert_int_equal(d->base, BASE + i * WIN);
	}
	assert_null(vmm_mmio_manager_at(m, 3));
	assert_null(vmm_mmio_manager_at(m, SIZE_MAX));

	/* Many devices: the array grows, every entry stays right. */
	vmm_mmio_manager_free(m);
	m = mgr(BASE, WIN, 0, 999);
	for (unsigned int i = 0; i < 100; i++) {
		char id[16];

		snprintf(id, sizeof(id), "dev%u", i);
		assert_int_equal(vmm_mmio_manager_register(m, 1, id, NULL,
							   no_dev, NULL, NULL),
				 0);
	}
	d = vmm_mmio_manager_lookup(m, 1, "dev77");
	assert_non_null(d);
	assert_int_equal(d->irq, 77);
	assert_int_equal(d->base, BASE + 77 * WIN);
	vmm_mmio_manager_free(m);
}

static void test_bad_arguments(void **state)
{
	struct vmm_mmio_manager *m;
	char long_id[VMM_MMIO_ID_MAX + 2];
	const char *msg;
	int err = 0;

	(void)state;
	assert_null(vmm_mmio_manager_new(BASE, 0, 5, 6, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(vmm_mmio_manager_new(BASE, 1000, 5, 6, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(vmm_mmio_manager_new(BASE + 0x800, WIN, 5, 6, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(vmm_mmio_manager_new(BASE, WIN, 7, 6, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(vmm_mmio_manager_new(BASE, WIN, 7, 6, NULL));

	m = mgr(BASE, WIN, 5, 6);
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(vmm_mmio_manager_register(m, 1, long_id, NULL, no_dev,
						   NULL, &msg),
			 -EINVAL);
	long_id[VMM_MMIO_ID_MAX] = '\0'; /* exactly the maximum: fine */
	assert_int_equal(vmm_mmio_manager_register(m, 1, long_id, NULL, no_dev,
						   NULL, NULL),
			 0);
	assert_non_null(vmm_mmio_manager_lookup(m, 1, long_id));
	assert_int_equal(
		vmm_mmio_manager_register(m, 1, "", NULL, no_dev, NULL, &msg),
		-EINVAL);
	assert_int_equal(
		vmm_mmio_manager_register(m, 1, NULL, NULL, no_dev, NULL, &msg),
		-EINVAL);
	assert_int_equal(vmm_mmio_manager_register(NULL, 1, "x", NULL, no_dev,
						   NULL, NULL),
			 -EINVAL);
	assert_int_equal(vmm_mmio_manager_count(NULL), 0);
	vmm_mmio_manager_free(m);
	vmm_mmio_manager_free(NULL);
}

static void test_cmdline(void **state)
{
	static const char want[] =
		"console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 "
		"virtio_mmio.device=4K@0xd0001000:6";
	struct vmm_mmio_manager *m = mgr(BASE, WIN, 5, 20);
	char buf[256];

	(void)state;
	/* No devices: nothing appended. */
	strcpy(buf, "console=ttyS0");
	assert_int_equal(vmm_mmio_manager_cmdline_append(m, buf, sizeof(buf)),
			 13);
	assert_int_equal(
		vmm_mmio_manager_register(m, 2, "a", NULL, no_dev, NULL, NULL),
		0);
	assert_int_equal(
		vmm_mmio_manager_register(m, 4, "b", NULL, no_dev, NULL, NULL),
		0);
	assert_int_equal(vmm_mmio_manager_cmdline_append(m, buf, sizeof(buf)),
			 (int)strlen(want));
	assert_string_equal(buf, want);

	/* An empty line gets no leading space. */
	buf[0] = '\0';
	assert_int_equal(vmm_mmio_manager_cmdline_append(m, buf, sizeof(buf)),
			 (int)strlen(want) - 14);
	assert_string_equal(buf, want + 14);

	/* Every size too small: -ENOSPC and the string is unchanged. */
	for (size_t size = 14; size < sizeof(want); size++) {
		char *b = malloc(size);

		memcpy(b, "console=ttyS0", 14);
		assert_int_equal(vmm_mmio_manager_cmdline_append(m, b, size),
				 -ENOSPC);
		assert_string_equal(b, "console=ttyS0");
		free(b);
	}
	char *exact = malloc(sizeof(want));

	memcpy(exact, "console=ttyS0", 14);
	assert_int_equal(
		vmm_mmio_manager_cmdline_append(m, exact, sizeof(want)),
		(int)strlen(want));
	assert_string_equal(exact, want);
	free(exact);

	/* No NUL within size, or no buffer at all. */
	memset(buf, 'x', 8);
	assert_int_equal(vmm_mmio_manager_cmdline_append(m, buf, 8), -EINVAL);
	assert_int_equal(vmm_mmio_manager_cmdline_append(m, buf, 0), -EINVAL);
	assert_int_equal(vmm_mmio_manager_cmdline_append(m, NULL, 8), -EINVAL);
	vmm_mmio_manager_free(m);

	/* Windows other than 4 KiB are given in KiB too. */
	m = mgr(0x100000000ull, 0x10000, 32, 40);
	assert_int_equal(
		vmm_mmio_manager_register(m, 2, "a", NULL, no_dev, NULL, NULL),
		0);
	buf[0] = '\0';
	assert_true(vmm_mmio_manager_cmdline_append(m, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "virtio_mmio.device=64K@0x100000000:32");
	vmm_mmio_manager_free(m);
}

/* A bus device that records the last read. */
struct tdev {
	int reads;
	uint64_t base, offset;
};

static void tdev_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		      size_t len)
{
	struct tdev *t = opaque;

	t->reads++;
	t->base = base;
	t->offset = offset;
	memset(data, 0x5a, len);
}

static const struct vdk_bus_device_ops tdev_ops = {.read = tdev_read};

static void test_bus_registration(void **state)
{
	struct vmm_mmio_manager *m = mgr(BASE, WIN, 5, 20);
	struct tdev t0 = {0}, t1 = {0}, blocker = {0};
	struct vdk_bus_device d0 = {&tdev_ops, &t0}, d1 = {&tdev_ops, &t1};
	struct vdk_bus_device db = {&tdev_ops, &blocker};
	struct vmm_mmio_device_info info;
	struct vdk_bus *bus;
	const char *msg = NULL;
	uint32_t v = 0;
	int err;

	(void)state;
	bus = vdk_bus_new(VDK_BUS_MMIO, &err);
	assert_non_null(bus);
	assert_int_equal(
		vmm_mmio_manager_register(m, 2, "a", bus, d0, &info, NULL), 0);
	assert_int_equal(vdk_bus_read(bus, BASE + 0x70, &v, 4), 0);
	assert_int_equal(t0.reads, 1);
	assert_int_equal(t0.base, BASE);
	assert_int_equal(t0.offset, 0x70);
	assert_int_equal(v, 0x5a5a5a5a);
	/* The window is exactly one 4 KiB page. */
	assert_int_equal(vdk_bus_read(bus, BASE + WIN, &v, 4), -ENOENT);

	/* Something else sits where the next window goes: nothing consumed. */
	struct vdk_bus_range r = {BASE + WIN + 0x800, 0x100};

	assert_int_equal(vdk_bus_register(bus, r, db), 0);
	assert_int_equal(
		vmm_mmio_manager_register(m, 2, "b", bus, d1, NULL, &msg),
		-EEXIST);
	assert_non_null(msg);
	assert_int_equal(vmm_mmio_manager_count(m), 1);
	assert_null(vmm_mmio_manager_lookup(m, 2, "b"));
	assert_int_equal(vdk_bus_deregister(bus, r.base, NULL), 0);
	assert_int_equal(
		vmm_mmio_manager_register(m, 2, "b", bus, d1, &info, NULL), 0);
	assert_int_equal(info.base, BASE + WIN);
	assert_int_equal(info.irq, 6);
	assert_int_equal(vdk_bus_read(bus, BASE + WIN + 4, &v, 4), 0);
	assert_int_equal(t1.reads, 1);
	assert_int_equal(t1.offset, 4);

	/* A bus but no ops: refused before anything is allocated. */
	assert_int_equal(
		vmm_mmio_manager_register(m, 2, "c", bus, no_dev, NULL, &msg),
		-EINVAL);
	assert_int_equal(vdk_bus_num_devices(bus), 2);
	vdk_bus_free(bus);
	vmm_mmio_manager_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocation_and_exhaustion),
		cmocka_unit_test(test_address_exhaustion),
		cmocka_unit_test(test_lookup_and_duplicates),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_bus_registration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
