/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-mmio test environment shared by test_mmio.c and
 * test_mmio_state.c: 1 MiB of guest memory, the echo test device behind a
 * vdk_mmio transport whose interrupt and notify callbacks are counted
 * (struct fix), and driver-side helpers that access the registers the way
 * a driver does (virtio 1.2 §4.2.2, §4.2.3): feature negotiation, queue
 * set-up, DRIVER_OK, and echo requests built in guest memory by guest_ring.
 *
 * Header-only (every function static inline) because each unit test is
 * built from its one .c file. Include after <cmocka.h>.
 */
#ifndef VDK_TESTS_MMIO_ENV_H
#define VDK_TESTS_MMIO_ENV_H

#include <stdlib.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <vdk/mem.h>
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

static inline void on_irq(void *opaque, bool level)
{
	struct fix *f = opaque;

	f->irq_calls++;
	f->irq_level = level;
}

static inline void on_notify(void *opaque, uint16_t queue)
{
	struct fix *f = opaque;

	f->notify_calls++;
	f->notified = queue;
}

static inline struct vdk_mmio *new_transport(struct fix *f,
					     struct vdk_device *dev,
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

static inline int setup(void **state)
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

static inline int teardown(void **state)
{
	struct fix *f = *state;

	vdk_mmio_free(f->t);
	echo_device_free(f->echo);
	vdk_mem_free(f->mem);
	free(f);
	return 0;
}

/* ---- driver-side helpers ---------------------------------------------- */

static inline uint32_t rd(struct vdk_mmio *t, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	vdk_mmio_read(t, off, &v, 4);
	return v; /* little-endian host */
}

static inline void wr(struct vdk_mmio *t, uint64_t off, uint32_t v)
{
	vdk_mmio_write(t, off, &v, 4);
}

static inline void set_features(struct vdk_mmio *t, uint64_t features)
{
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
}

/* virtio 1.2 §3.1.1 steps 1-6; returns the status read back. */
static inline uint32_t negotiate(struct vdk_mmio *t, uint64_t features)
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

static inline void set_queue_addrs(struct vdk_mmio *t, uint64_t desc,
				   uint64_t drv, uint64_t devarea)
{
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)drv);
	wr(t, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(drv >> 32));
	wr(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)devarea);
	wr(t, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(devarea >> 32));
}

/* virtio 1.2 §4.2.3.2: set up queue @idx over @gr at @base. */
static inline void setup_queue(struct fix *f, struct vdk_mmio *t, uint16_t idx,
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

static inline void driver_ok(struct vdk_mmio *t)
{
	wr(t, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* The whole init sequence with both queues; the device ends up ACTIVE. */
static inline void full_init(struct fix *f, uint64_t features)
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
static inline int post_echo(struct fix *f, unsigned int slot, uint32_t n,
			    uint8_t seed)
{
	uint8_t buf[256];
	uint64_t gpa = BUF_GPA + 0x1000ull * slot;
	struct guest_buf b[2] = {{gpa, n, false}, {gpa + 0x800, n, true}};

	for (uint32_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(seed + i);
	assert_int_equal(vdk_mem_write(f->mem, gpa, buf, n), 0);
	return guest_ring_add_chain(&f->gr[0], b, 2);
}

static inline void check_echo_reply(struct fix *f, unsigned int slot,
				    uint32_t n, uint8_t seed, bool inverted)
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif /* VDK_TESTS_MMIO_ENV_H */
