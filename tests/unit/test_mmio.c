/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/transport/mmio.c: every register of the virtio-mmio
 * version 2 layout (virtio 1.2 §4.2.2), driven the way a driver would
 * (through vdk_mmio_read/write and through an MMIO bus), against the echo
 * test device with queues built in guest memory by guest_ring; status and
 * feature negotiation rules, interrupts, queue reset, and sleep / snapshot /
 * restore / wake into a fresh transport.
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

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <vdk/bus.h>
#include <vdk/mmio.h>

#include "echo_device.h"
#include "guest_ring.h"

#define MEM_SIZE    (1ull << 20)
#define RING0_GPA   0x0ull     /* queue 0 areas */
#define RING1_GPA   0x8000ull  /* queue 1 areas */
#define BUF_GPA	    0x40000ull /* data buffers */
#define OUTSIDE_GPA (MEM_SIZE + 0x100000ull)
#define QSIZE	    64
#define F_VERSION_1 (1ull << VIRTIO_F_VERSION_1)
#define F_INVERT    (1ull << ECHO_F_INVERT)

/* ---- fixture ---------------------------------------------------------- */

struct fix {
	struct vdk_mem *mem;
	struct echo_device *echo;
	struct vdk_device *dev;
	struct vdk_mmio *t;
	struct guest_ring gr[2];
	int irq_calls;
	bool irq_level;
	int notify_calls;
	uint16_t notified;
};

static void on_irq(void *opaque, bool level)
{
	struct fix *f = opaque;

	f->irq_calls++;
	f->irq_level = level;
}

static void on_notify(void *opaque, uint16_t queue)
{
	struct fix *f = opaque;

	f->notify_calls++;
	f->notified = queue;
}

static struct vdk_mmio *new_transport(struct fix *f, struct vdk_device *dev,
				      bool with_notify, uint32_t vendor)
{
	struct vdk_mmio_config cfg = {
		.device = dev,
		.mem = f->mem,
		.notify = with_notify ? on_notify : NULL,
		.notify_opaque = f,
		.irq = on_irq,
		.irq_opaque = f,
		.vendor_id = vendor,
	};
	int err = -1;
	struct vdk_mmio *t = vdk_mmio_new(&cfg, &err);

	assert_non_null(t);
	assert_int_equal(err, 0);
	return t;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	int err = -1;

	assert_non_null(f);
	f->mem = vdk_mem_new(&err);
	assert_non_null(f->mem);
	assert_int_equal(vdk_mem_add_memfd(f->mem, 0, MEM_SIZE, "mmio"), 0);
	f->echo = echo_device_new(&err);
	assert_non_null(f->echo);
	f->dev = echo_device_vdk(f->echo);
	f->t = new_transport(f, f->dev, false, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	vdk_mmio_free(f->t);
	echo_device_free(f->echo);
	vdk_mem_free(f->mem);
	free(f);
	return 0;
}

/* ---- driver-side helpers ---------------------------------------------- */

static uint32_t rd(struct vdk_mmio *t, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	vdk_mmio_read(t, off, &v, 4);
	return v; /* little-endian host */
}

static void wr(struct vdk_mmio *t, uint64_t off, uint32_t v)
{
	vdk_mmio_write(t, off, &v, 4);
}

static void set_features(struct vdk_mmio *t, uint64_t features)
{
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
}

/* virtio 1.2 §3.1.1 steps 1-6; returns the status read back. */
static uint32_t negotiate(struct vdk_mmio *t, uint64_t features)
{
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(t, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	set_features(t, features);
	wr(t, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	return rd(t, VIRTIO_MMIO_STATUS);
}

static void set_queue_addrs(struct vdk_mmio *t, uint64_t desc, uint64_t drv,
			    uint64_t devarea)
{
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)drv);
	wr(t, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(drv >> 32));
	wr(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)devarea);
	wr(t, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(devarea >> 32));
}

/* virtio 1.2 §4.2.3.2: set up queue @idx over @gr at @base. */
static void setup_queue(struct fix *f, struct vdk_mmio *t, uint16_t idx,
			uint64_t base)
{
	assert_int_equal(guest_ring_init(&f->gr[idx], f->mem, QSIZE, base), 0);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, idx);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), ECHO_QUEUE_MAX_SIZE);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	set_queue_addrs(t, f->gr[idx].desc_gpa, f->gr[idx].avail_gpa,
			f->gr[idx].used_gpa);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 1);
}

static void driver_ok(struct vdk_mmio *t)
{
	wr(t, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* The whole init sequence with both queues; the device ends up ACTIVE. */
static void full_init(struct fix *f, uint64_t features)
{
	assert_true(negotiate(f->t, features) & VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(f, f->t, 0, RING0_GPA);
	setup_queue(f, f->t, 1, RING1_GPA);
	driver_ok(f->t);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_STATUS), 0xf);
	assert_int_equal(f->dev->state, VDK_DEVICE_ACTIVE);
}

/* Make one echo request of @n bytes (pattern @seed) available; returns the
 * head. Request at BUF_GPA + 0x1000 * @slot, reply 0x800 further. */
static int post_echo(struct fix *f, unsigned int slot, uint32_t n, uint8_t seed)
{
	uint8_t buf[256];
	uint64_t gpa = BUF_GPA + 0x1000ull * slot;
	struct guest_buf b[2] = {{gpa, n, false}, {gpa + 0x800, n, true}};

	for (uint32_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(seed + i);
	assert_int_equal(vdk_mem_write(f->mem, gpa, buf, n), 0);
	return guest_ring_add_chain(&f->gr[0], b, 2);
}

static void check_echo_reply(struct fix *f, unsigned int slot, uint32_t n,
			     uint8_t seed, bool inverted)
{
	uint8_t buf[256];

	assert_int_equal(vdk_mem_read(f->mem,
				      BUF_GPA + 0x1000ull * slot + 0x800, buf,
				      n),
			 0);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(buf[i],
				 (uint8_t)((seed + i) ^ (inverted ? 0xff : 0)));
}

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

/* ---- tests: QueueReset (virtio 1.2 §2.6.1, §4.2.2) -------------------- */

/* A device that offers VIRTIO_F_RING_RESET and records what it runs on. */
struct rr_dev {
	struct vdk_device vdev;
	struct vdk_virtq *queues[2];
	int sleeps, wakes;
};

static uint16_t rr_num_queues(void *d)
{
	(void)d;
	return 2;
}

static uint16_t rr_queue_max_size(void *d, uint16_t i)
{
	(void)d;
	(void)i;
	return ECHO_QUEUE_MAX_SIZE;
}

static uint64_t rr_features(void *d)
{
	(void)d;
	return F_VERSION_1 | (1ull << VIRTIO_F_RING_RESET);
}

static int rr_activate(void *d, const struct vdk_mem *mem,
		       struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct rr_dev *r = d;

	(void)mem;
	(void)irq;
	memcpy(r->queues, queues, sizeof(r->queues));
	return 0;
}

static int rr_reset(void *d)
{
	struct rr_dev *r = d;

	memset(r->queues, 0, sizeof(r->queues));
	return 0;
}

static int rr_sleep(void *d)
{
	struct rr_dev *r = d;

	r->sleeps++;
	memset(r->queues, 0, sizeof(r->queues));
	return 0;
}

static int rr_wake(void *d, const struct vdk_mem *mem,
		   struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct rr_dev *r = d;

	(void)irq;
	r->wakes++;
	if (mem)
		memcpy(r->queues, queues, sizeof(r->queues));
	return 0;
}

static const struct vdk_device_ops rr_ops = {
	.device_type = 0xfff0,
	.name = "rr",
	.num_queues = rr_num_queues,
	.queue_max_size = rr_queue_max_size,
	.features = rr_features,
	.activate = rr_activate,
	.reset = rr_reset,
	.sleep = rr_sleep,
	.wake = rr_wake,
};

static void test_queue_reset_needs_feature(void **state)
{
	struct fix *f = *state;
	struct vdk_virtq *q0 = vdk_mmio_queue(f->t, 0);

	full_init(f, F_VERSION_1);
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_RESET, 1);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_RESET), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_true(q0->active);
	assert_int_equal(q0->size, QSIZE);
	/* Writing 0 to QueueReady does not stop a running queue either. */
	wr(f->t, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_true(q0->active);
}

static void test_queue_reset(void **state)
{
	struct fix *f = *state;
	struct rr_dev rr = {0};
	struct vdk_mmio *t;
	struct vdk_virtq *q0, *q1;
	const uint64_t features = F_VERSION_1 | (1ull << VIRTIO_F_RING_RESET);

	assert_int_equal(vdk_device_init(&rr.vdev, &rr_ops, &rr), 0);
	t = new_transport(f, &rr.vdev, false, 0);
	q0 = vdk_mmio_queue(t, 0);
	q1 = vdk_mmio_queue(t, 1);

	/* Before DRIVER_OK: the queue's configuration is forgotten. */
	assert_true(negotiate(t, features) & VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(f, t, 0, RING0_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_RESET, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_RESET), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(q0->size, ECHO_QUEUE_MAX_SIZE);
	assert_int_equal(q0->desc_gpa, 0);

	/* While running: the device sleeps, loses the queue, wakes. */
	setup_queue(f, t, 0, RING0_GPA);
	setup_queue(f, t, 1, RING1_GPA);
	driver_ok(t);
	assert_int_equal(rr.vdev.state, VDK_DEVICE_ACTIVE);
	assert_ptr_equal(rr.queues[0], q0);
	assert_ptr_equal(rr.queues[1], q1);
	assert_true(post_echo(f, 0, 8, 1) >= 0);
	assert_int_equal(vdk_virtq_set_next_avail(q0, 0), -EBUSY);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(t, VIRTIO_MMIO_QUEUE_RESET, 2); /* only 1 resets */
	assert_true(q0->active);
	wr(t, VIRTIO_MMIO_QUEUE_RESET, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_RESET), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(q0->active);
	assert_int_equal(q0->size, ECHO_QUEUE_MAX_SIZE);
	assert_null(rr.queues[0]);
	assert_ptr_equal(rr.queues[1], q1);
	assert_true(q1->active);
	assert_int_equal(rr.sleeps, 1);
	assert_int_equal(rr.wakes, 1);
	assert_false(rr.vdev.asleep);
	assert_int_equal(rr.vdev.state, VDK_DEVICE_ACTIVE);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS), 0xf);

	/* Re-enabling (§2.6.1.2) hands the queue back, from index 0. */
	setup_queue(f, t, 0, RING0_GPA + 0x10000);
	assert_true(q0->active);
	assert_ptr_equal(rr.queues[0], q0);
	assert_int_equal(q0->desc_gpa, RING0_GPA + 0x10000);
	assert_int_equal(vdk_virtq_next_avail(q0), 0);
	assert_int_equal(rr.wakes, 2);

	/* Re-enabling with an area outside memory: DEVICE_NEEDS_RESET. */
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(t, VIRTIO_MMIO_QUEUE_RESET, 1);
	assert_null(rr.queues[1]);
	set_queue_addrs(t, OUTSIDE_GPA, OUTSIDE_GPA, OUTSIDE_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_null(rr.queues[1]);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);

	vdk_mmio_free(t);
	assert_int_not_equal(rr.vdev.state, VDK_DEVICE_ACTIVE);
	vdk_device_fini(&rr.vdev);
}

/* ---- tests: sleep, snapshot, restore, wake ----------------------------- */

/* A second echo device and transport on the same guest memory. */
struct peer {
	struct echo_device *echo;
	struct vdk_device *dev;
	struct vdk_mmio *t;
};

static void peer_new(struct fix *f, struct peer *p)
{
	int err = -1;

	p->echo = echo_device_new(&err);
	assert_non_null(p->echo);
	p->dev = echo_device_vdk(p->echo);
	p->t = new_transport(f, p->dev, false, 0);
}

static void peer_free(struct peer *p)
{
	vdk_mmio_free(p->t);
	echo_device_free(p->echo);
}

/* Sleep, snapshot, and check what sleeping does to register access. */
static void take_snapshot(struct fix *f, uint8_t **buf, size_t *len)
{
	assert_int_equal(vdk_mmio_snapshot(f->t, buf, len), -EBUSY);
	assert_int_equal(vdk_mmio_sleep(f->t), 0);
	assert_int_equal(vdk_mmio_sleep(f->t), -EBUSY);
	/* Asleep: register accesses are ignored. */
	assert_int_equal(rd(f->t, VIRTIO_MMIO_MAGIC_VALUE), 0);
	wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(vdk_mmio_status(f->t), 0xf);
	assert_int_equal(vdk_mmio_snapshot(f->t, buf, len), 0);
	assert_non_null(*buf);
	assert_true(*len > 0);
}

static void test_snapshot_restore_wake(void **state)
{
	struct fix *f = *state;
	struct peer p;
	uint8_t *snap1 = NULL, *snap2 = NULL;
	size_t len1 = 0, len2 = 0;
	struct vdk_virtq *q, *orig = vdk_mmio_queue(f->t, 0);
	uint32_t id, len;

	full_init(f, F_VERSION_1 | F_INVERT);
	assert_true(post_echo(f, 0, 30, 1) >= 0);
	assert_true(post_echo(f, 1, 40, 2) >= 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 2);
	echo_device_set_id(f->echo, (const uint8_t *)"migrated");
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	/* A request made available but not yet notified at migration. */
	assert_true(post_echo(f, 2, 50, 3) >= 0);
	take_snapshot(f, &snap1, &len1);
	assert_int_equal(vdk_virtq_next_avail(orig), 2);

	peer_new(f, &p);
	f->irq_calls = 0;
	f->irq_level = false;
	assert_int_equal(vdk_mmio_restore(p.t, snap1, len1), -EBUSY);
	assert_int_equal(vdk_mmio_sleep(p.t), 0);
	assert_int_equal(vdk_mmio_restore(p.t, snap1, len1 - 1), -EINVAL);
	assert_int_equal(vdk_mmio_restore(p.t, (const uint8_t *)"junk", 4),
			 -EINVAL);
	assert_int_equal(vdk_mmio_restore(p.t, snap1, len1), 0);
	q = vdk_mmio_queue(p.t, 0);
	assert_int_equal(vdk_virtq_next_avail(q), 2);
	assert_int_equal(vdk_virtq_next_used(q), 2);
	assert_int_equal(q->size, QSIZE);
	assert_int_equal(q->desc_gpa, f->gr[0].desc_gpa);
	assert_int_equal(q->device_gpa, f->gr[0].used_gpa);
	assert_true(q->ready);
	assert_int_equal(p.dev->state, VDK_DEVICE_ACTIVE);
	/* The restored transport snapshots to the same bytes. */
	assert_int_equal(vdk_mmio_snapshot(p.t, &snap2, &len2), 0);
	assert_int_equal(len2, len1);
	assert_memory_equal(snap2, snap1, len1);
	/* Restoring twice is refused: the transport is no longer fresh. */
	assert_int_equal(vdk_mmio_restore(p.t, snap1, len1), -EBUSY);
	assert_int_equal(f->irq_calls, 0);

	/* Wake: the line comes back up and the pending request is served,
	 * with the negotiated features (inverted echo). */
	assert_int_equal(vdk_mmio_wake(p.t), 0);
	assert_int_equal(vdk_mmio_wake(p.t), -EBUSY);
	assert_true(f->irq_level);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_STATUS), 0xf);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_QUEUE_NUM_MAX), /* QueueSel 1 */
			 ECHO_QUEUE_MAX_SIZE);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 3);
	guest_ring_set_last_used(&f->gr[0], 2);
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
	assert_int_equal(len, 50);
	check_echo_reply(f, 2, 50, 3, true);
	assert_int_equal(vdk_virtq_next_avail(q), 3);
	/* And it keeps going. */
	assert_true(post_echo(f, 3, 60, 4) >= 0);
	wr(p.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 4);
	check_echo_reply(f, 3, 60, 4, true);
	assert_int_equal(echo_device_config(p.echo).counter, 4);

	free(snap1);
	free(snap2);
	peer_free(&p);
}

static void test_snapshot_not_active(void **state)
{
	struct fix *f = *state;
	struct peer p;
	uint8_t *snap = NULL;
	size_t len = 0;

	/* Mid-initialisation: features negotiated, one queue configured. */
	assert_true(negotiate(f->t, F_VERSION_1) & VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(f, f->t, 1, RING1_GPA);
	assert_int_equal(vdk_mmio_sleep(f->t), 0);
	assert_int_equal(vdk_mmio_snapshot(f->t, &snap, &len), 0);
	peer_new(f, &p);
	assert_int_equal(vdk_mmio_sleep(p.t), 0);
	assert_int_equal(vdk_mmio_restore(p.t, snap, len), 0);
	assert_int_equal(vdk_mmio_wake(p.t), 0);
	assert_int_equal(p.dev->acked_features, F_VERSION_1);
	assert_false(vdk_mmio_queue(p.t, 1)->active);
	assert_true(vdk_mmio_queue(p.t, 1)->ready);
	/* The driver finishes initialisation on the new transport. */
	setup_queue(f, p.t, 0, RING0_GPA);
	driver_ok(p.t);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_STATUS), 0xf);
	assert_int_equal(p.dev->state, VDK_DEVICE_ACTIVE);
	assert_true(vdk_mmio_queue(p.t, 1)->active);
	free(snap);
	peer_free(&p);
}

/* Re-encode @snap with @key (in queues[0] if @in_queue) replaced. */
static void mutate(const uint8_t *snap, size_t len, bool in_queue,
		   const char *key, cbor_item_t *val, uint8_t **out,
		   size_t *out_len)
{
	struct cbor_load_result res;
	cbor_item_t *root = cbor_load(snap, len, &res);
	cbor_item_t *map = root;
	struct cbor_pair *pairs;
	size_t cap = 0;
	bool found = false;

	assert_non_null(root);
	if (in_queue) {
		pairs = cbor_map_handle(root);
		for (size_t i = 0; i < cbor_map_size(root); i++)
			if (cbor_string_length(pairs[i].key) == 6 &&
			    !memcmp(cbor_string_handle(pairs[i].key), "queues",
				    6))
				map = cbor_array_handle(pairs[i].value)[0];
	}
	pairs = cbor_map_handle(map);
	for (size_t i = 0; i < cbor_map_size(map); i++) {
		if (cbor_string_length(pairs[i].key) != strlen(key) ||
		    memcmp(cbor_string_handle(pairs[i].key), key, strlen(key)))
			continue;
		cbor_decref(&pairs[i].value);
		pairs[i].value = val;
		found = true;
	}
	assert_true(found);
	*out = NULL;
	*out_len = cbor_serialize_alloc(root, out, &cap);
	assert_true(*out_len > 0);
	cbor_decref(&root);
}

static void test_restore_validation(void **state)
{
	struct fix *f = *state;
	struct peer p;
	struct rr_dev rr = {0};
	struct vdk_mmio *trr;
	uint8_t *snap = NULL, *bad = NULL;
	size_t len = 0, bad_len = 0;
	static const struct {
		bool in_queue;
		const char *key;
		uint64_t value;
		int err;
	} cases[] = {
		{false, "version", 2, -EPROTO},
		{false, "status", 0x10f, -EINVAL},
		{false, "status", 0x1f, -EINVAL},
		{false, "interrupt_status", 4, -EINVAL},
		{false, "driver_features", F_VERSION_1 | (1ull << 7), -EINVAL},
		{false, "driver_features", F_INVERT, -EINVAL},
		{false, "active", 0, -EINVAL},
		{false, "queue_sel", 1ull << 32, -EINVAL},
		{true, "size", 48, -EINVAL},
		{true, "size", 512, -EINVAL},
		{true, "next_avail", 0x10000, -EINVAL},
		{true, "desc", OUTSIDE_GPA, -EFAULT},
		{true, "desc", RING0_GPA + 8, -EINVAL},
	};

	full_init(f, F_VERSION_1);
	take_snapshot(f, &snap, &len);
	peer_new(f, &p);
	assert_int_equal(vdk_mmio_sleep(p.t), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cbor_item_t *v = !strcmp(cases[i].key, "active")
					 ? cbor_build_bool(false)
					 : cbor_build_uint64(cases[i].value);

		mutate(snap, len, cases[i].in_queue, cases[i].key, v, &bad,
		       &bad_len);
		assert_int_equal(vdk_mmio_restore(p.t, bad, bad_len),
				 cases[i].err);
		free(bad);
		/* Nothing was left behind. */
		assert_int_not_equal(p.dev->state, VDK_DEVICE_ACTIVE);
		assert_false(vdk_mmio_queue(p.t, 0)->active);
		assert_int_equal(vdk_virtq_next_avail(vdk_mmio_queue(p.t, 0)),
				 0);
	}
	/* A wrong type where a number belongs. */
	mutate(snap, len, false, "status", cbor_build_string("0xf"), &bad,
	       &bad_len);
	assert_int_equal(vdk_mmio_restore(p.t, bad, bad_len), -EINVAL);
	free(bad);
	mutate(snap, len, false, "format", cbor_build_string("vdk-pci"), &bad,
	       &bad_len);
	assert_int_equal(vdk_mmio_restore(p.t, bad, bad_len), -EINVAL);
	free(bad);
	/* A header that declares 2^36 map entries is refused before anything
	 * is allocated for it; so are bytes after the snapshot. */
	{
		static const uint8_t huge[] = {0xbb, 0, 0, 0, 0x10, 0, 0, 0, 0};
		uint8_t *longer = malloc(len + 1);

		assert_int_equal(vdk_mmio_restore(p.t, huge, sizeof(huge)),
				 -EINVAL);
		assert_non_null(longer);
		memcpy(longer, snap, len);
		longer[len] = 0;
		assert_int_equal(vdk_mmio_restore(p.t, longer, len + 1),
				 -EINVAL);
		free(longer);
	}
	/* The untouched snapshot still restores. */
	assert_int_equal(vdk_mmio_restore(p.t, snap, len), 0);
	assert_int_equal(vdk_mmio_wake(p.t), 0);
	peer_free(&p);

	/* Another device type: the framework's -ENODEV, nothing activated. */
	assert_int_equal(vdk_device_init(&rr.vdev, &rr_ops, &rr), 0);
	trr = new_transport(f, &rr.vdev, false, 0);
	assert_int_equal(vdk_mmio_sleep(trr), 0);
	assert_int_equal(vdk_mmio_restore(trr, snap, len), -ENODEV);
	assert_false(vdk_mmio_queue(trr, 0)->active);
	assert_int_equal(vdk_mmio_wake(trr), 0);
	vdk_mmio_free(trr);
	vdk_device_fini(&rr.vdev);
	free(snap);
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
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
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
		T(test_queue_reset_needs_feature),
		T(test_queue_reset),
		T(test_snapshot_restore_wake),
		T(test_snapshot_not_active),
		T(test_restore_validation),
		T(test_concurrent_interrupts),
		T(test_new_errors),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
