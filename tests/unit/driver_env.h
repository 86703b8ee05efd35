/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-process driver/device environment shared by test_driver.c and
 * test_driver_virtq.c. Guest RAM is a memfd region of a vdk_mem map; the
 * device side is a vdk_mmio transport on an MMIO bus in front of the echo
 * test device (optionally wrapped to offer extra ring features); the driver
 * reaches its registers through vdk_bus_read()/vdk_bus_write() and
 * translates its buffers with a HAL over the map's regions.
 *
 * Header-only (every function static inline) because each unit test is
 * built from its one .c file. Include after <cmocka.h>.
 */
#ifndef VDK_TESTS_DRIVER_ENV_H
#define VDK_TESTS_DRIVER_ENV_H

#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <vdk/bus.h>
#include <vdk/device.h>
#include <vdk/driver.h>
#include <vdk/mem.h>
#include <vdk/mmio.h>
#include <vdk/virtq.h>

#include "echo_device.h"

#define RAM_GPA	  0x40000000ull
#define RAM_SIZE  (2ull << 20)
#define MMIO_BASE 0xd0000000ull
#define FAKE_BASE 0xd0010000ull

#define F(bit)	  (1ull << (bit))
#define V1	  F(VIRTIO_F_VERSION_1)

/* ---- environment: memory, bus, device, transports ---------------------- */

struct env {
	struct vdk_mem *mem;
	struct vdk_bus *bus;
	uint8_t *ram; /* host view of RAM_GPA */
	size_t brk;   /* bump allocator offset in ram */

	struct echo_device *echo;
	bool wrapped; /* device = echo + extra features (below) */
	struct vdk_device dev;
	struct vdk_device_ops ops;
	uint64_t extra_features;
	struct vdk_virtq *dev_queues[ECHO_NUM_QUEUES]; /* while active */
	struct vdk_mmio *mmio;

	struct vdk_driver_mmio drv;
	struct vdk_driver_hal hal;

	unsigned notifies[ECHO_NUM_QUEUES];
	bool irq_level;
	unsigned irq_raises;
	int change_countdown; /* >0: change the id on that config read */
	bool change_always;   /* change the id on every config read */
	uint8_t next_id;
	unsigned config_reads;
};

static struct env *g_env; /* for the wrapped device's callbacks */

static inline struct vdk_device *env_vdk(struct env *e)
{
	return e->wrapped ? &e->dev : echo_device_vdk(e->echo);
}

/* The echo device plus extra ring features. With EVENT_IDX the wrapper
 * also re-arms avail_event after the device drained a queue, as a device
 * supporting the feature must (virtio 1.2 §2.7.10). */
static inline uint64_t wrapped_features(void *impl)
{
	return echo_device_vdk(g_env->echo)->ops->features(impl) |
	       g_env->extra_features;
}

static inline void save_queues(struct vdk_virtq **queues)
{
	for (int i = 0; i < ECHO_NUM_QUEUES; i++)
		g_env->dev_queues[i] = queues ? queues[i] : NULL;
}

static inline int wrapped_activate(void *impl, const struct vdk_mem *mem,
				   struct vdk_interrupt *irq,
				   struct vdk_virtq **queues)
{
	save_queues(queues);
	return echo_device_vdk(g_env->echo)
		->ops->activate(impl, mem, irq, queues);
}

static inline int wrapped_wake(void *impl, const struct vdk_mem *mem,
			       struct vdk_interrupt *irq,
			       struct vdk_virtq **queues)
{
	save_queues(queues);
	return echo_device_vdk(g_env->echo)->ops->wake(impl, mem, irq, queues);
}

static inline void wrapped_queue_notify(void *impl, uint16_t index)
{
	struct vdk_virtq *q =
		index < ECHO_NUM_QUEUES ? g_env->dev_queues[index] : NULL;

	echo_device_vdk(g_env->echo)->ops->queue_notify(impl, index);
	if (q && q->event_idx)
		vdk_virtq_enable_notification(q, true);
}

static inline void on_notify(void *opaque, uint16_t queue)
{
	struct env *e = opaque;

	if (queue < ECHO_NUM_QUEUES)
		e->notifies[queue]++;
	vdk_device_queue_notify(env_vdk(e), queue);
}

static inline void on_irq(void *opaque, bool level)
{
	struct env *e = opaque;

	if (level && !e->irq_level)
		e->irq_raises++;
	e->irq_level = level;
}

static inline void new_device(struct env *e)
{
	int err = -1;

	e->echo = echo_device_new(&err);
	assert_non_null(e->echo);
	if (e->wrapped) {
		e->ops = *echo_device_vdk(e->echo)->ops;
		e->ops.features = wrapped_features;
		e->ops.queue_notify = wrapped_queue_notify;
		e->ops.activate = wrapped_activate;
		e->ops.wake = wrapped_wake;
		e->ops.destroy = NULL; /* echo_device_free() frees it */
		assert_int_equal(
			vdk_device_init(&e->dev, &e->ops,
					echo_device_vdk(e->echo)->impl),
			0);
	}
	struct vdk_mmio_config cfg = {
		.device = env_vdk(e),
		.mem = e->mem,
		.notify = on_notify,
		.notify_opaque = e,
		.irq = on_irq,
		.irq_opaque = e,
	};
	e->mmio = vdk_mmio_new(&cfg, &err);
	assert_non_null(e->mmio);
	assert_int_equal(vdk_mmio_register(e->mmio, e->bus, MMIO_BASE), 0);
}

static inline void free_device(struct env *e)
{
	assert_int_equal(vdk_bus_deregister(e->bus, MMIO_BASE, NULL), 0);
	vdk_mmio_free(e->mmio);
	if (e->wrapped)
		vdk_device_fini(&e->dev);
	echo_device_free(e->echo);
	e->mmio = NULL;
	e->echo = NULL;
}

/* Register accessors: the driver's MMIO accesses become bus accesses. */
static inline bool is_config(uint64_t addr)
{
	return addr >= MMIO_BASE + VIRTIO_MMIO_CONFIG &&
	       addr < MMIO_BASE + VDK_MMIO_WINDOW_SIZE;
}

static inline void maybe_change_config(struct env *e, uint64_t addr)
{
	uint8_t id[8] = {'c', 'h', 'a', 'n', 'g', 'e', 'd', 0};

	if (!is_config(addr))
		return;
	e->config_reads++;
	if (e->change_always ||
	    (e->change_countdown > 0 && --e->change_countdown == 0)) {
		id[7] = e->next_id++;
		echo_device_set_id(e->echo, id);
	}
}

static inline uint32_t bus_rd(void *opaque, uint64_t addr, size_t len)
{
	struct env *e = opaque;
	uint32_t v = 0;

	if (vdk_bus_read(e->bus, addr, &v, len) < 0)
		return 0; /* nothing there: reads as 0, like open bus */
	maybe_change_config(e, addr);
	return v;
}

static inline void bus_wr(void *opaque, uint64_t addr, uint32_t v, size_t len)
{
	struct env *e = opaque;

	(void)vdk_bus_write(e->bus, addr, &v, len);
}

static inline uint8_t acc_rd8(void *o, uint64_t a)
{
	return (uint8_t)bus_rd(o, a, 1);
}
static inline uint16_t acc_rd16(void *o, uint64_t a)
{
	return (uint16_t)bus_rd(o, a, 2);
}
static inline uint32_t acc_rd32(void *o, uint64_t a)
{
	return bus_rd(o, a, 4);
}
static inline void acc_wr8(void *o, uint64_t a, uint8_t v)
{
	bus_wr(o, a, v, 1);
}
static inline void acc_wr16(void *o, uint64_t a, uint16_t v)
{
	bus_wr(o, a, v, 2);
}
static inline void acc_wr32(void *o, uint64_t a, uint32_t v)
{
	bus_wr(o, a, v, 4);
}

static const struct vdk_driver_mmio_access bus_access = {
	.read8 = acc_rd8,
	.read16 = acc_rd16,
	.read32 = acc_rd32,
	.write8 = acc_wr8,
	.write16 = acc_wr16,
	.write32 = acc_wr32,
};

/* HAL: a pointer into a region's mapping is DMA-able at that region's gpa. */
static inline uint64_t hal_v2p(void *opaque, const void *addr, size_t len)
{
	const struct vdk_mem *mem = opaque;
	uintptr_t p = (uintptr_t)addr;

	for (size_t i = 0; i < vdk_mem_num_regions(mem); i++) {
		const struct vdk_mem_region *r = vdk_mem_region_at(mem, i);
		uintptr_t lo = (uintptr_t)r->hva;

		if (p >= lo && p - lo <= r->size && len <= r->size - (p - lo))
			return r->gpa + (p - lo);
	}
	return VDK_DRIVER_BAD_GPA;
}

static inline void *ram_alloc(struct env *e, size_t len, size_t align)
{
	size_t off = (e->brk + align - 1) & ~(align - 1);

	assert_true(off + len <= RAM_SIZE);
	e->brk = off + len;
	return e->ram + off;
}

static inline uint64_t gpa_of(struct env *e, const void *p)
{
	return RAM_GPA + (uint64_t)((const uint8_t *)p - e->ram);
}

static inline struct env *env_new(uint64_t extra_features)
{
	struct env *e = calloc(1, sizeof(*e));
	int err = -1;

	assert_non_null(e);
	g_env = e;
	e->mem = vdk_mem_new(&err);
	assert_non_null(e->mem);
	assert_int_equal(vdk_mem_add_memfd(e->mem, RAM_GPA, RAM_SIZE, "ram"),
			 0);
	e->ram = vdk_mem_find(e->mem, RAM_GPA)->hva;
	e->bus = vdk_bus_new(VDK_BUS_MMIO, &err);
	assert_non_null(e->bus);
	e->wrapped = extra_features != 0;
	e->extra_features = extra_features;
	new_device(e);
	e->hal = (struct vdk_driver_hal){.opaque = e->mem,
					 .virt_to_phys = hal_v2p};
	assert_int_equal(
		vdk_driver_mmio_init(&e->drv, MMIO_BASE, &bus_access, e), 0);
	return e;
}

static inline void env_free(struct env *e)
{
	free_device(e);
	vdk_bus_free(e->bus);
	vdk_mem_free(e->mem);
	free(e);
	g_env = NULL;
}

static inline struct vdk_driver_transport *tp(struct env *e)
{
	return &e->drv.transport;
}

/* ---- driver-side queues --------------------------------------------------- */

struct dq {
	struct vdk_driver_virtq q;
	struct vdk_driver_virtq_slot slots[ECHO_QUEUE_MAX_SIZE];
	uint8_t *ring;
};

static inline int dq_init(struct env *e, struct dq *d, uint16_t index,
			  uint16_t size, uint64_t features,
			  uint16_t indirect_max)
{
	size_t len = vdk_driver_virtq_layout_size(size);
	struct vdk_driver_virtq_config cfg = {
		.index = index,
		.size = size,
		.features = features,
		.slots = d->slots,
		.ring_len = len,
	};

	if (!d->ring)
		d->ring = ram_alloc(e, len, 4096);
	cfg.ring = d->ring;
	cfg.ring_gpa = gpa_of(e, d->ring);
	if (indirect_max) {
		cfg.indirect =
			ram_alloc(e, (size_t)size * indirect_max * 16, 16);
		cfg.indirect_gpa = gpa_of(e, cfg.indirect);
		cfg.indirect_max = indirect_max;
	}
	return vdk_driver_virtq_init(&d->q, tp(e), &e->hal, &cfg);
}

/* Initialise the device with @features and queue 0 (and 1) of @size. */
static inline uint64_t bring_up(struct env *e, uint64_t features, struct dq *q0,
				struct dq *q1, uint16_t size,
				uint16_t indirect_max)
{
	uint64_t neg = 0;

	assert_int_equal(vdk_driver_begin_init(tp(e), features, &neg), 0);
	assert_int_equal(
		dq_init(e, q0, ECHO_QUEUE_ECHO, size, neg, indirect_max), 0);
	if (q1)
		assert_int_equal(dq_init(e, q1, ECHO_QUEUE_SINK, size, neg, 0),
				 0);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);
	return neg;
}

/* One echo: @len bytes out, @cap bytes back; returns bytes written. */
static inline uint32_t echo_once(struct dq *d, const uint8_t *src, uint32_t len,
				 uint8_t *dst, uint32_t cap)
{
	struct vdk_driver_buf r = {src, len}, w = {dst, cap};
	uint16_t token = 0xffff;
	uint32_t got = 0;
	int head;

	head = vdk_driver_virtq_add(&d->q, &r, 1, &w, 1);
	assert_true(head >= 0);
	vdk_driver_virtq_kick(&d->q);
	assert_true(vdk_driver_virtq_can_pop(&d->q));
	assert_int_equal(vdk_driver_virtq_pop_used(&d->q, &token, &got), 0);
	assert_int_equal(token, head);
	return got;
}

static inline void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

#endif /* VDK_TESTS_DRIVER_ENV_H */
