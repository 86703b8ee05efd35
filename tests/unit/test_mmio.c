/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/transport/mmio.c, part 1: every register of the
 * virtio-mmio version 2 layout (virtio 1.2 §4.2.2), driven the way a driver
 * would (through vdk_mmio_read/write and through an MMIO bus), against the
 * echo test device with queues built in guest memory by guest_ring:
 * identification and plain registers, status and feature negotiation
 * rules, queue set-up and the data path, notifications and interrupts,
 * configuration space. Queue reset and sleep / snapshot / restore / wake
 * are in test_mmio_state.c; the environment is mmio_env.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <vdk/bus.h>
#include <vdk/mmio.h>

#include "echo_device.h"
#include "guest_ring.h"
#include "mmio_env.h"

/* Sleep, snapshot, read the top-level number @key back, wake. */
static uint64_t snapshot_field(struct vdk_mmio *t, const char *key)
{
	struct cbor_load_result res;
	cbor_item_t *root;
	struct cbor_pair *pairs;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t v = UINT64_MAX;

	assert_int_equal(vdk_mmio_sleep(t), 0);
	assert_int_equal(vdk_mmio_snapshot(t, &buf, &len), 0);
	assert_int_equal(vdk_mmio_wake(t), 0);
	root = cbor_load(buf, len, &res);
	assert_non_null(root);
	pairs = cbor_map_handle(root);
	for (size_t i = 0; i < cbor_map_size(root); i++)
		if (cbor_string_length(pairs[i].key) == strlen(key) &&
		    !memcmp(cbor_string_handle(pairs[i].key), key, strlen(key)))
			v = cbor_get_int(pairs[i].value);
	cbor_decref(&root);
	free(buf);
	return v;
}

/* ---- tests: identification and plain registers ------------------------ */

static void test_identification(void **state)
{
	struct fix *f = *state;
	struct vdk_mmio *t2;

	assert_int_equal(rd(f->t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_DEVICE_ID), ECHO_DEVICE_ID);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_VENDOR_ID), VDK_MMIO_VENDOR_ID);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	/* Read-only registers ignore writes. */
	wr(f->t, VIRTIO_MMIO_MAGIC_VALUE, 0);
	wr(f->t, VIRTIO_MMIO_DEVICE_ID, 7);
	wr(f->t, VIRTIO_MMIO_INTERRUPT_STATUS, 3);
	wr(f->t, VIRTIO_MMIO_CONFIG_GENERATION, 9);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_DEVICE_ID), ECHO_DEVICE_ID);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), 0);

	/* A configured VendorID replaces the default. */
	t2 = new_transport(f, f->dev, false, 0x1af4);
	assert_int_equal(rd(t2, VIRTIO_MMIO_VENDOR_ID), 0x1af4);
	vdk_mmio_free(t2);
}

static void test_device_features_windows(void **state)
{
	struct fix *f = *state;

	wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES), F_INVERT);
	wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES),
			 F_VERSION_1 >> 32);
	wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

static void test_write_only_legacy_and_shm(void **state)
{
	struct fix *f = *state;
	static const uint32_t write_only[] = {
		VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DRIVER_FEATURES,
		VIRTIO_MMIO_DRIVER_FEATURES_SEL, VIRTIO_MMIO_QUEUE_SEL,
		VIRTIO_MMIO_QUEUE_NUM,		 VIRTIO_MMIO_QUEUE_NOTIFY,
		VIRTIO_MMIO_INTERRUPT_ACK,	 VIRTIO_MMIO_QUEUE_DESC_LOW,
		VIRTIO_MMIO_QUEUE_DESC_HIGH,	 VIRTIO_MMIO_QUEUE_AVAIL_LOW,
		VIRTIO_MMIO_QUEUE_AVAIL_HIGH,	 VIRTIO_MMIO_QUEUE_USED_LOW,
		VIRTIO_MMIO_QUEUE_USED_HIGH,	 VIRTIO_MMIO_SHM_SEL,
	};

	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	for (size_t i = 0; i < sizeof(write_only) / sizeof(write_only[0]); i++)
		assert_int_equal(rd(f->t, write_only[i]), 0);
	/* Legacy (version 1) registers: ignored, read 0. */
	wr(f->t, VIRTIO_MMIO_GUEST_PAGE_SIZE, 4096);
	wr(f->t, VIRTIO_MMIO_QUEUE_ALIGN, 4096);
	wr(f->t, VIRTIO_MMIO_QUEUE_PFN, 0x10);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_GUEST_PAGE_SIZE), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_ALIGN), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_PFN), 0);
	assert_int_equal(vdk_mmio_queue(f->t, 1)->desc_gpa, 0);
	/* No shared memory regions: length and base read as -1. */
	for (uint32_t sel = 0; sel < 3; sel++) {
		wr(f->t, VIRTIO_MMIO_SHM_SEL, sel);
		assert_int_equal(rd(f->t, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
		assert_int_equal(rd(f->t, VIRTIO_MMIO_SHM_LEN_HIGH),
				 0xffffffff);
		assert_int_equal(rd(f->t, VIRTIO_MMIO_SHM_BASE_LOW),
				 0xffffffff);
		assert_int_equal(rd(f->t, VIRTIO_MMIO_SHM_BASE_HIGH),
				 0xffffffff);
	}
}

static void test_misaligned_and_unknown(void **state)
{
	struct fix *f = *state;
	uint64_t v64 = 0x1234;
	uint16_t v16 = 0x1234;
	uint8_t v8 = 0x12;
	uint32_t v32 = 0x1234;

	/* Reads that are not aligned 32-bit read 0. */
	vdk_mmio_read(f->t, VIRTIO_MMIO_MAGIC_VALUE, &v16, 2);
	assert_int_equal(v16, 0);
	vdk_mmio_read(f->t, VIRTIO_MMIO_MAGIC_VALUE, &v64, 8);
	assert_int_equal(v64, 0);
	vdk_mmio_read(f->t, VIRTIO_MMIO_MAGIC_VALUE + 1, &v8, 1);
	assert_int_equal(v8, 0);
	vdk_mmio_read(f->t, VIRTIO_MMIO_VERSION + 2, &v32, 4);
	assert_int_equal(v32, 0);
	/* Such writes are ignored. */
	v8 = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	vdk_mmio_write(f->t, VIRTIO_MMIO_STATUS, &v8, 1);
	v32 = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	vdk_mmio_write(f->t, VIRTIO_MMIO_STATUS + 2, &v32, 4);
	v16 = 2;
	vdk_mmio_write(f->t, VIRTIO_MMIO_QUEUE_NUM, &v16, 2);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(vdk_mmio_queue(f->t, 0)->size, ECHO_QUEUE_MAX_SIZE);
	/* Unknown offsets: read 0, writes ignored. */
	assert_int_equal(rd(f->t, 0x0f0), 0);
	assert_int_equal(rd(f->t, 0x018), 0);
	wr(f->t, 0x0f0, 1);
	assert_int_equal(rd(f->t, 0x0f0), 0);
	/* Degenerate calls do not crash. */
	vdk_mmio_read(f->t, 0, NULL, 4);
	vdk_mmio_write(f->t, 0, NULL, 4);
	vdk_mmio_read(NULL, 0, &v32, 4);
}

static void test_bus_dispatch(void **state)
{
	struct fix *f = *state;
	const uint64_t base = 0xd0000000;
	struct vdk_bus *bus = vdk_bus_new(VDK_BUS_MMIO, NULL);
	uint32_t v = 0;
	uint8_t id[8];

	assert_non_null(bus);
	assert_int_equal(vdk_mmio_register(f->t, bus, base), 0);
	assert_int_equal(vdk_mmio_register(f->t, bus, base + 0x800), -EEXIST);
	assert_int_equal(
		vdk_bus_read(bus, base + VIRTIO_MMIO_MAGIC_VALUE, &v, 4), 0);
	assert_int_equal(v, 0x74726976);
	v = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	assert_int_equal(vdk_bus_write(bus, base + VIRTIO_MMIO_STATUS, &v, 4),
			 0);
	assert_int_equal(vdk_mmio_status(f->t), VIRTIO_CONFIG_S_ACKNOWLEDGE);
	assert_int_equal(
		vdk_bus_read(bus, base + VIRTIO_MMIO_CONFIG + ECHO_CONFIG_ID,
			     id, 8),
		0);
	assert_memory_equal(id, "vdk-echo", 8);
	/* The window ends at VDK_MMIO_WINDOW_SIZE. */
	assert_int_equal(vdk_bus_read(bus, base + VDK_MMIO_WINDOW_SIZE, &v, 4),
			 -ENOENT);
	vdk_bus_free(bus);
}

/* ---- tests: status and features (virtio 1.2 §2.1, §2.2, §3.1.1) ------ */

static void test_feature_negotiation(void **state)
{
	struct fix *f = *state;
	const uint32_t drv =
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	/* DriverFeatures is ignored before DRIVER. */
	wr(f->t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	set_features(f->t, F_VERSION_1);
	wr(f->t, VIRTIO_MMIO_STATUS, drv);
	wr(f->t, VIRTIO_MMIO_STATUS, drv | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), drv);

	/* Without VIRTIO_F_VERSION_1, FEATURES_OK does not stick. */
	assert_int_equal(negotiate(f->t, F_INVERT), drv);
	/* Nor with a bit the device did not offer. */
	assert_int_equal(negotiate(f->t, F_VERSION_1 | (1ull << 5)), drv);
	assert_int_equal(negotiate(f->t, F_VERSION_1 | (1ull << 63)), drv);
	assert_int_equal(f->dev->acked_features, 0);

	/* Offered features are accepted and acked to the device. */
	assert_int_equal(negotiate(f->t, F_VERSION_1 | F_INVERT),
			 drv | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(f->dev->acked_features, F_VERSION_1 | F_INVERT);
	/* After FEATURES_OK, DriverFeatures is read-only. */
	set_features(f->t, F_VERSION_1);
	assert_int_equal(snapshot_field(f->t, "driver_features"),
			 F_VERSION_1 | F_INVERT);
	driver_ok(f->t);
	assert_true(echo_device_inverting(f->echo));
	assert_int_equal(f->dev->acked_features, F_VERSION_1 | F_INVERT);

	/* A DriverFeaturesSel above 1 selects nothing. */
	wr(f->t, VIRTIO_MMIO_STATUS, 0);
	wr(f->t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(f->t, VIRTIO_MMIO_STATUS, drv);
	wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES, F_VERSION_1 >> 32);
	wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
	wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
	wr(f->t, VIRTIO_MMIO_STATUS, drv | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS),
			 drv | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(f->dev->acked_features, F_VERSION_1);
}

static void test_status_rules(void **state)
{
	struct fix *f = *state;
	const uint32_t ack = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	const uint32_t drv = ack | VIRTIO_CONFIG_S_DRIVER;

	/* DRIVER needs ACKNOWLEDGE; DRIVER_OK needs FEATURES_OK. */
	wr(f->t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_DRIVER);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), 0);
	wr(f->t, VIRTIO_MMIO_STATUS, drv);
	wr(f->t, VIRTIO_MMIO_STATUS, drv | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), drv);
	assert_int_equal(f->dev->state, VDK_DEVICE_NEW);
	/* Bits cannot be cleared except by writing 0. */
	wr(f->t, VIRTIO_MMIO_STATUS, ack);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), drv);
	/* DEVICE_NEEDS_RESET is the device's to set. */
	wr(f->t, VIRTIO_MMIO_STATUS, drv | VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), drv);
	/* FAILED sticks, and nothing but a reset follows it. */
	wr(f->t, VIRTIO_MMIO_STATUS, drv | VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS),
			 drv | VIRTIO_CONFIG_S_FAILED);
	set_features(f->t, F_VERSION_1);
	wr(f->t, VIRTIO_MMIO_STATUS,
	   drv | VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS),
			 drv | VIRTIO_CONFIG_S_FAILED);
	wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), 0);
}

/* ---- tests: queues ----------------------------------------------------- */

static void test_queue_registers(void **state)
{
	struct fix *f = *state;
	struct vdk_virtq *q1 = vdk_mmio_queue(f->t, 1);

	assert_null(vdk_mmio_queue(f->t, ECHO_NUM_QUEUES));
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX),
			 ECHO_QUEUE_MAX_SIZE);
	wr(f->t, VIRTIO_MMIO_QUEUE_NUM, 32);
	assert_int_equal(q1->size, 32);
	/* Not a power of two, or above the maximum: refused. */
	wr(f->t, VIRTIO_MMIO_QUEUE_NUM, 48);
	wr(f->t, VIRTIO_MMIO_QUEUE_NUM, ECHO_QUEUE_MAX_SIZE * 2);
	wr(f->t, VIRTIO_MMIO_QUEUE_NUM, 0x10020);
	assert_int_equal(q1->size, 32);
	set_queue_addrs(f->t, 0x1122334455667780ull, 0x99aabbccddeeff00ull,
			0x0102030405060708ull);
	assert_int_equal(q1->desc_gpa, 0x1122334455667780ull);
	assert_int_equal(q1->driver_gpa, 0x99aabbccddeeff00ull);
	assert_int_equal(q1->device_gpa, 0x0102030405060708ull);
	/* Only the selected queue changed. */
	assert_int_equal(vdk_mmio_queue(f->t, 0)->desc_gpa, 0);
	assert_int_equal(vdk_mmio_queue(f->t, 0)->size, ECHO_QUEUE_MAX_SIZE);

	/* While ready, size and addresses are fixed (§4.2.2.3). */
	wr(f->t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	set_queue_addrs(f->t, 0x1000, 0x2000, 0x3000);
	wr(f->t, VIRTIO_MMIO_QUEUE_NUM, 16);
	assert_int_equal(q1->desc_gpa, 0x1122334455667780ull);
	assert_int_equal(q1->device_gpa, 0x0102030405060708ull);
	assert_int_equal(q1->size, 32);
	/* QueueReady only takes 0 and 1. */
	wr(f->t, VIRTIO_MMIO_QUEUE_READY, 2);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(f->t, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);
	set_queue_addrs(f->t, 0x1000, 0x2000, 0x3000);
	assert_int_equal(q1->desc_gpa, 0x1000);

	/* A QueueSel past the last queue selects nothing. */
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, ECHO_NUM_QUEUES);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(f->t, VIRTIO_MMIO_QUEUE_READY, 1);
	set_queue_addrs(f->t, 0x5000, 0x6000, 0x7000);
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 0xffffffff);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	for (uint16_t i = 0; i < ECHO_NUM_QUEUES; i++) {
		assert_false(vdk_mmio_queue(f->t, i)->ready);
		assert_int_not_equal(vdk_mmio_queue(f->t, i)->desc_gpa, 0x5000);
	}
}

static void test_echo_end_to_end(void **state)
{
	struct fix *f = *state;
	uint32_t id = 99, len = 0;
	int head;

	full_init(f, F_VERSION_1 | F_INVERT);
	assert_int_equal(f->irq_calls, 0);
	head = post_echo(f, 0, 100, 7);
	assert_true(head >= 0);
	/* Nothing happens before the notification. */
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 100);
	check_echo_reply(f, 0, 100, 7, true);

	/* Used buffer notification: bit 0 and the line goes high once. */
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING);
	assert_int_equal(vdk_mmio_interrupt_status(f->t),
			 VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->irq_calls, 1);
	assert_true(f->irq_level);
	/* A second request while the line is high does not re-assert. */
	assert_true(post_echo(f, 1, 10, 0x40) >= 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
	check_echo_reply(f, 1, 10, 0x40, true);
	assert_int_equal(f->irq_calls, 1);
	/* Acknowledging another bit keeps it; acknowledging bit 0 lowers. */
	wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING);
	assert_true(f->irq_level);
	wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(f->irq_calls, 2);
	assert_false(f->irq_level);

	/* Queue 1 (sink) is notified separately; out-of-range is ignored. */
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, ECHO_NUM_QUEUES);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0x10000);
	assert_int_equal(echo_device_stats(f->echo).echo_chains, 2);
	assert_int_equal(echo_device_config(f->echo).counter, 2);
}

static void test_notify_callback(void **state)
{
	struct fix *f = *state;

	vdk_mmio_free(f->t);
	f->t = new_transport(f, f->dev, true, 0);
	full_init(f, F_VERSION_1);
	assert_true(post_echo(f, 0, 8, 1) >= 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(f->notify_calls, 1);
	assert_int_equal(f->notified, 1);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
	assert_int_equal(f->notify_calls, 1);
	/* With a callback the transport does not process queues itself. */
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->notify_calls, 2);
	assert_int_equal(f->notified, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 0);
	vdk_device_queue_notify(f->dev, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 1);
}

static void test_driver_ok_queue_outside_memory(void **state)
{
	struct fix *f = *state;

	assert_true(negotiate(f->t, F_VERSION_1) & VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(f, f->t, 0, RING0_GPA);
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(f->t, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	set_queue_addrs(f->t, OUTSIDE_GPA, OUTSIDE_GPA + 0x1000,
			OUTSIDE_GPA + 0x2000);
	wr(f->t, VIRTIO_MMIO_QUEUE_READY, 1);
	driver_ok(f->t);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS),
			 0xf | VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_not_equal(f->dev->state, VDK_DEVICE_ACTIVE);
	assert_false(vdk_mmio_queue(f->t, 0)->active);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_CONFIG);
	assert_true(f->irq_level);
	/* Notifications go nowhere. */
	assert_true(post_echo(f, 0, 8, 1) >= 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 0);
	/* Only a reset clears DEVICE_NEEDS_RESET. */
	wr(f->t, VIRTIO_MMIO_STATUS, 0xf);
	assert_true(rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_false(f->irq_level);
}

static void test_device_reports_needs_reset(void **state)
{
	struct fix *f = *state;

	full_init(f, F_VERSION_1);
	/* A head index past the queue size: the device stops the queue. */
	assert_int_equal(guest_ring_set_avail_slot(&f->gr[0], 0, QSIZE + 3), 0);
	assert_int_equal(guest_ring_set_avail_idx(&f->gr[0], 1), 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS) &
		    VIRTIO_MMIO_INT_CONFIG);
	assert_true(f->irq_level);
}

static void test_reset_clears_everything(void **state)
{
	struct fix *f = *state;
	uint32_t gen;

	full_init(f, F_VERSION_1 | F_INVERT);
	assert_true(post_echo(f, 0, 16, 3) >= 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	echo_device_set_id(f->echo, (const uint8_t *)"newid-01");
	gen = rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION);
	assert_int_equal(gen, 1);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(f->t, VIRTIO_MMIO_SHM_SEL, 5);

	wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_false(f->irq_level);
	assert_int_equal(f->dev->state, VDK_DEVICE_RESET);
	assert_int_equal(f->dev->acked_features, 0);
	assert_int_equal(echo_device_stats(f->echo).resets, 1);
	/* Config generation survives a reset. */
	assert_int_equal(rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	/* Selectors are back to 0. */
	assert_int_equal(rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES), F_INVERT);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX),
			 ECHO_QUEUE_MAX_SIZE);
	for (uint16_t i = 0; i < ECHO_NUM_QUEUES; i++) {
		struct vdk_virtq *q = vdk_mmio_queue(f->t, i);

		assert_false(q->ready);
		assert_false(q->active);
		assert_int_equal(q->size, ECHO_QUEUE_MAX_SIZE);
		assert_int_equal(q->desc_gpa, 0);
		assert_int_equal(q->driver_gpa, 0);
		assert_int_equal(q->device_gpa, 0);
		assert_int_equal(vdk_virtq_next_avail(q), 0);
	}
	/* Driver features were forgotten: FEATURES_OK needs them again. */
	wr(f->t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(f->t, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(f->t, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	assert_false(rd(f->t, VIRTIO_MMIO_STATUS) &
		     VIRTIO_CONFIG_S_FEATURES_OK);
	/* And the device works again after a second initialisation. */
	full_init(f, F_VERSION_1);
	assert_true(post_echo(f, 2, 20, 9) >= 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 1);
	check_echo_reply(f, 2, 20, 9, false);
}

/* ---- tests: configuration space --------------------------------------- */

static void test_config_space(void **state)
{
	struct fix *f = *state;
	uint8_t b = 0;
	uint16_t h = 0;
	uint32_t w = 0;
	uint64_t d = 0;
	const uint64_t cfg = VIRTIO_MMIO_CONFIG;

	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_ID, &b, 1);
	assert_int_equal(b, 'v');
	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_ID + 1, &h, 2);
	assert_memory_equal(&h, "dk", 2);
	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_ID + 3, &w, 4);
	assert_memory_equal(&w, "-ech", 4);
	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_ID, &d, 8);
	assert_memory_equal(&d, "vdk-echo", 8);

	w = 0xa1b2c3d4;
	vdk_mmio_write(f->t, cfg + ECHO_CONFIG_SETTABLE, &w, 4);
	assert_int_equal(echo_device_config(f->echo).settable, 0xa1b2c3d4);
	h = 0x5566;
	vdk_mmio_write(f->t, cfg + ECHO_CONFIG_SETTABLE + 2, &h, 2);
	b = 0x77;
	vdk_mmio_write(f->t, cfg + ECHO_CONFIG_SETTABLE, &b, 1);
	w = 0;
	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_SETTABLE, &w, 4);
	assert_int_equal(w, 0x5566c377);
	/* Read-only bytes drop writes. */
	w = 0xffffffff;
	vdk_mmio_write(f->t, cfg + ECHO_CONFIG_COUNTER, &w, 4);
	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_COUNTER, &w, 4);
	assert_int_equal(w, 0);

	/* Past the end, straddling it, or an odd width: 0, dropped. */
	w = 0x1234;
	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_SIZE, &w, 4);
	assert_int_equal(w, 0);
	d = 0x1234;
	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_SIZE - 4, &d, 8);
	assert_int_equal(d, 0);
	w = 0x1234;
	vdk_mmio_read(f->t, cfg + ECHO_CONFIG_SETTABLE, &w, 3);
	assert_int_equal(w & 0xffffff, 0);
	w = 1;
	vdk_mmio_write(f->t, cfg + ECHO_CONFIG_SETTABLE, &w, 3);
	vdk_mmio_write(f->t, cfg + 0xf00, &w, 4);
	assert_int_equal(echo_device_config(f->echo).settable, 0x5566c377);
}

static void test_config_generation(void **state)
{
	struct fix *f = *state;
	uint8_t id[8];

	full_init(f, F_VERSION_1);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	echo_device_set_id(f->echo, (const uint8_t *)"abcdefgh");
	assert_int_equal(rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_CONFIG);
	assert_true(f->irq_level);
	vdk_mmio_read(f->t, VIRTIO_MMIO_CONFIG + ECHO_CONFIG_ID, id, 8);
	assert_memory_equal(id, "abcdefgh", 8);
	echo_device_set_id(f->echo, (const uint8_t *)"ijklmnop");
	assert_int_equal(rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), 2);
	assert_int_equal(f->irq_calls, 1);
	wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	assert_false(f->irq_level);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), 2);
}

/* ---- tests: concurrency ------------------------------------------------ */

struct signaller {
	struct vdk_interrupt *irq;
	int rounds;
};

static void *signal_thread(void *arg)
{
	struct signaller *s = arg;

	for (int i = 0; i < s->rounds; i++) {
		if (i % 64 == 0)
			vdk_interrupt_signal_config_changed(s->irq);
		else
			vdk_interrupt_signal_used_queue(s->irq, 0);
	}
	return NULL;
}

/* A device worker signals while a vCPU reads and acknowledges: the line
 * level always ends up matching InterruptStatus, and every configuration
 * change is counted. */
static void test_concurrent_interrupts(void **state)
{
	struct fix *f = *state;
	struct signaller s;
	pthread_t th;
	uint32_t isr;

	full_init(f, F_VERSION_1);
	s.irq = f->dev->irq;
	s.rounds = 20000;
	assert_non_null(s.irq);
	assert_int_equal(pthread_create(&th, NULL, signal_thread, &s), 0);
	for (int i = 0; i < 20000; i++) {
		isr = rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS);
		if (isr)
			wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, isr);
		if (i % 1000 == 0)
			(void)vdk_mmio_status(f->t);
	}
	pthread_join(th, NULL);
	isr = rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS);
	assert_int_equal(f->irq_level, isr != 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION),
			 (20000 + 63) / 64);
	wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, 0xffffffff);
	assert_false(f->irq_level);
	/* Levels alternated: an odd count would mean a repeated level. */
	assert_int_equal(f->irq_calls % 2, 0);
}

static void test_new_errors(void **state)
{
	struct fix *f = *state;
	struct vdk_mmio_config cfg = {.device = f->dev, .mem = NULL};
	int err = 0;

	assert_null(vdk_mmio_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg.mem = f->mem;
	cfg.device = NULL;
	assert_null(vdk_mmio_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(vdk_mmio_new(NULL, NULL));
	vdk_mmio_free(NULL);
	assert_int_equal(vdk_mmio_register(f->t, NULL, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identification),
		T(test_device_features_windows),
		T(test_write_only_legacy_and_shm),
		T(test_misaligned_and_unknown),
		T(test_bus_dispatch),
		T(test_feature_negotiation),
		T(test_status_rules),
		T(test_queue_registers),
		T(test_echo_end_to_end),
		T(test_notify_callback),
		T(test_driver_ok_queue_outside_memory),
		T(test_device_reports_needs_reset),
		T(test_reset_clears_everything),
		T(test_config_space),
		T(test_config_generation),
		T(test_concurrent_interrupts),
		T(test_new_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
