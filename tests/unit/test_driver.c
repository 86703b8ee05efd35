/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for src/driver/: the driver side of virtio driving real vdk devices
 * in one process. Guest RAM is a memfd region of a vdk_mem map; the device
 * side is a vdk_mmio transport on an MMIO bus in front of the echo test
 * device or virtio-rng; the driver reaches its registers through
 * vdk_bus_read()/vdk_bus_write() and translates its buffers with a HAL over
 * the map's regions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include <vdk/bus.h>
#include <vdk/device.h>
#include <vdk/driver.h>
#include <vdk/mem.h>
#include <vdk/mmio.h>
#include <vdk/virtq.h>

#include <vdk/devices/rng.h>

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

static struct vdk_device *env_vdk(struct env *e)
{
	return e->wrapped ? &e->dev : echo_device_vdk(e->echo);
}

/* The echo device plus extra ring features. With EVENT_IDX the wrapper
 * also re-arms avail_event after the device drained a queue, as a device
 * supporting the feature must (virtio 1.2 §2.7.10). */
static uint64_t wrapped_features(void *impl)
{
	return echo_device_vdk(g_env->echo)->ops->features(impl) |
	       g_env->extra_features;
}

static void save_queues(struct vdk_virtq **queues)
{
	for (int i = 0; i < ECHO_NUM_QUEUES; i++)
		g_env->dev_queues[i] = queues ? queues[i] : NULL;
}

static int wrapped_activate(void *impl, const struct vdk_mem *mem,
			    struct vdk_interrupt *irq,
			    struct vdk_virtq **queues)
{
	save_queues(queues);
	return echo_device_vdk(g_env->echo)
		->ops->activate(impl, mem, irq, queues);
}

static int wrapped_wake(void *impl, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	save_queues(queues);
	return echo_device_vdk(g_env->echo)->ops->wake(impl, mem, irq, queues);
}

static void wrapped_queue_notify(void *impl, uint16_t index)
{
	struct vdk_virtq *q =
		index < ECHO_NUM_QUEUES ? g_env->dev_queues[index] : NULL;

	echo_device_vdk(g_env->echo)->ops->queue_notify(impl, index);
	if (q && q->event_idx)
		vdk_virtq_enable_notification(q, true);
}

static void on_notify(void *opaque, uint16_t queue)
{
	struct env *e = opaque;

	if (queue < ECHO_NUM_QUEUES)
		e->notifies[queue]++;
	vdk_device_queue_notify(env_vdk(e), queue);
}

static void on_irq(void *opaque, bool level)
{
	struct env *e = opaque;

	if (level && !e->irq_level)
		e->irq_raises++;
	e->irq_level = level;
}

static void new_device(struct env *e)
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

static void free_device(struct env *e)
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
static bool is_config(uint64_t addr)
{
	return addr >= MMIO_BASE + VIRTIO_MMIO_CONFIG &&
	       addr < MMIO_BASE + VDK_MMIO_WINDOW_SIZE;
}

static void maybe_change_config(struct env *e, uint64_t addr)
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

static uint32_t bus_rd(void *opaque, uint64_t addr, size_t len)
{
	struct env *e = opaque;
	uint32_t v = 0;

	if (vdk_bus_read(e->bus, addr, &v, len) < 0)
		return 0; /* nothing there: reads as 0, like open bus */
	maybe_change_config(e, addr);
	return v;
}

static void bus_wr(void *opaque, uint64_t addr, uint32_t v, size_t len)
{
	struct env *e = opaque;

	(void)vdk_bus_write(e->bus, addr, &v, len);
}

static uint8_t acc_rd8(void *o, uint64_t a)
{
	return (uint8_t)bus_rd(o, a, 1);
}
static uint16_t acc_rd16(void *o, uint64_t a)
{
	return (uint16_t)bus_rd(o, a, 2);
}
static uint32_t acc_rd32(void *o, uint64_t a)
{
	return bus_rd(o, a, 4);
}
static void acc_wr8(void *o, uint64_t a, uint8_t v)
{
	bus_wr(o, a, v, 1);
}
static void acc_wr16(void *o, uint64_t a, uint16_t v)
{
	bus_wr(o, a, v, 2);
}
static void acc_wr32(void *o, uint64_t a, uint32_t v)
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
static uint64_t hal_v2p(void *opaque, const void *addr, size_t len)
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

static void *ram_alloc(struct env *e, size_t len, size_t align)
{
	size_t off = (e->brk + align - 1) & ~(align - 1);

	assert_true(off + len <= RAM_SIZE);
	e->brk = off + len;
	return e->ram + off;
}

static uint64_t gpa_of(struct env *e, const void *p)
{
	return RAM_GPA + (uint64_t)((const uint8_t *)p - e->ram);
}

static struct env *env_new(uint64_t extra_features)
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

static void env_free(struct env *e)
{
	free_device(e);
	vdk_bus_free(e->bus);
	vdk_mem_free(e->mem);
	free(e);
	g_env = NULL;
}

static struct vdk_driver_transport *tp(struct env *e)
{
	return &e->drv.transport;
}

/* ---- driver-side queues --------------------------------------------------- */

struct dq {
	struct vdk_driver_virtq q;
	struct vdk_driver_virtq_slot slots[ECHO_QUEUE_MAX_SIZE];
	uint8_t *ring;
};

static int dq_init(struct env *e, struct dq *d, uint16_t index, uint16_t size,
		   uint64_t features, uint16_t indirect_max)
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
static uint64_t bring_up(struct env *e, uint64_t features, struct dq *q0,
			 struct dq *q1, uint16_t size, uint16_t indirect_max)
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
static uint32_t echo_once(struct dq *d, const uint8_t *src, uint32_t len,
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

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* ---- probing and initialisation ----------------------------------------- */

/* A register file the test controls, for windows vdk_mmio never shows. */
struct fake_regs {
	uint32_t magic, version, device_id;
};

static void fake_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		      size_t len)
{
	const struct fake_regs *f = opaque;
	uint32_t v = 0;

	(void)base;
	if (offset == VIRTIO_MMIO_MAGIC_VALUE)
		v = f->magic;
	else if (offset == VIRTIO_MMIO_VERSION)
		v = f->version;
	else if (offset == VIRTIO_MMIO_DEVICE_ID)
		v = f->device_id;
	memcpy(data, &v, len < 4 ? len : 4);
}

static const struct vdk_bus_device_ops fake_ops = {.read = fake_read};

static void test_probe(void **state)
{
	struct env *e = env_new(0);
	struct fake_regs f = {0x74726976, 2, 0};
	struct vdk_driver_mmio m;

	(void)state;
	assert_int_equal(e->drv.device_id, ECHO_DEVICE_ID);
	assert_int_equal(vdk_driver_mmio_ops.device_type(&e->drv),
			 ECHO_DEVICE_ID);
	/* Nothing mapped there: reads as 0, not a virtio-mmio device. */
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 -ENXIO);
	assert_int_equal(
		vdk_bus_register(e->bus,
				 (struct vdk_bus_range){FAKE_BASE, 0x200},
				 (struct vdk_bus_device){&fake_ops, &f}),
		0);
	/* Placeholder window: magic and version fine, no device. */
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 -ENODEV);
	/* Legacy (version 1) interface: refused. */
	f.version = 1;
	f.device_id = VIRTIO_ID_RNG;
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 -EPROTONOSUPPORT);
	f.magic = 0x12345678;
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 -ENXIO);
	f.magic = 0x74726976;
	f.version = 2;
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 0);
	assert_int_equal(m.device_id, VIRTIO_ID_RNG);
	assert_int_equal(vdk_bus_deregister(e->bus, FAKE_BASE, NULL), 0);
	env_free(e);
}

static void test_negotiation(void **state)
{
	struct env *e = env_new(0);
	uint64_t neg = 0;
	uint8_t st;

	(void)state;
	/* Bit 5 is not offered: it must not be accepted. */
	assert_int_equal(vdk_driver_begin_init(
				 tp(e), V1 | F(ECHO_F_INVERT) | F(5), &neg),
			 0);
	assert_int_equal(neg, V1 | F(ECHO_F_INVERT));
	st = vdk_mmio_status(e->mmio);
	assert_int_equal(st, VIRTIO_CONFIG_S_ACKNOWLEDGE |
				     VIRTIO_CONFIG_S_DRIVER |
				     VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);
	assert_true(vdk_mmio_status(e->mmio) & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(echo_device_inverting(e->echo));
	assert_false(vdk_driver_needs_reset(tp(e)));

	/* Renegotiating resets first, and without INVERT it is off. */
	assert_int_equal(vdk_driver_begin_init(tp(e), V1, &neg), 0);
	assert_int_equal(neg, V1);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);
	assert_false(echo_device_inverting(e->echo));

	/* A driver without VERSION_1 gives up cleanly: FAILED, nothing
	 * accepted, and the device is not live. */
	neg = 0xdead;
	assert_int_equal(vdk_driver_begin_init(tp(e), F(ECHO_F_INVERT), &neg),
			 -EOPNOTSUPP);
	assert_int_equal(neg, 0xdead);
	st = vdk_mmio_status(e->mmio);
	assert_true(st & VIRTIO_CONFIG_S_FAILED);
	assert_false(st & VIRTIO_CONFIG_S_FEATURES_OK);
	assert_false(st & VIRTIO_CONFIG_S_DRIVER_OK);

	/* Reset recovers from FAILED. */
	assert_int_equal(vdk_driver_reset(tp(e)), 0);
	assert_int_equal(vdk_mmio_status(e->mmio), 0);
	env_free(e);
}

/* A transport that claims a feature the device does not have, so the
 * driver accepts it and the device must refuse FEATURES_OK. */
static uint64_t lying_features(void *ctx)
{
	return vdk_driver_mmio_ops.read_device_features(ctx) | F(20);
}

static void test_features_refused(void **state)
{
	struct env *e = env_new(0);
	struct vdk_driver_transport_ops ops = vdk_driver_mmio_ops;
	struct vdk_driver_transport t = {&ops, &e->drv};

	(void)state;
	ops.read_device_features = lying_features;
	assert_int_equal(vdk_driver_begin_init(&t, V1 | F(20), NULL), -EIO);
	assert_true(vdk_mmio_status(e->mmio) & VIRTIO_CONFIG_S_FAILED);
	assert_false(vdk_mmio_status(e->mmio) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* The honest transport still initialises the device. */
	assert_int_equal(vdk_driver_begin_init(tp(e), V1 | F(20), NULL), 0);
	env_free(e);
}

/* ---- configuration space ----------------------------------------------- */

static void test_config(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t cfg[ECHO_CONFIG_SIZE], id[8];
	uint8_t val[4] = {0x78, 0x56, 0x34, 0x12};
	uint32_t gen;

	(void)state;
	bring_up(e, V1, &q0, NULL, 8, 0);
	assert_int_equal(
		vdk_driver_read_config_consistent(tp(e), 0, cfg, sizeof(cfg)),
		0);
	assert_memory_equal(cfg + ECHO_CONFIG_ID, "vdk-echo", 8);
	assert_int_equal(cfg[ECHO_CONFIG_COUNTER], 0);

	/* settable round-trips with any access width; id is read-only. */
	assert_int_equal(tp(e)->ops->write_config(tp(e)->ctx,
						  ECHO_CONFIG_SETTABLE, val, 4),
			 0);
	assert_int_equal(echo_device_config(e->echo).settable, 0x12345678);
	assert_int_equal(tp(e)->ops->write_config(tp(e)->ctx,
						  ECHO_CONFIG_SETTABLE + 1,
						  "\xaa", 1),
			 0);
	assert_int_equal(echo_device_config(e->echo).settable, 0x1234aa78);
	assert_int_equal(
		tp(e)->ops->write_config(tp(e)->ctx, ECHO_CONFIG_ID, "XXXX", 4),
		0);
	assert_int_equal(tp(e)->ops->read_config(
				 tp(e)->ctx, ECHO_CONFIG_SETTABLE + 1, cfg, 11),
			 0);
	assert_memory_equal(cfg, "\xaa\x34\x12vdk-echo", 11);

	/* The counter follows the device's work. */
	uint8_t *src = ram_alloc(e, 8, 8), *dst = ram_alloc(e, 8, 8);
	echo_once(&q0, src, 8, dst, 8);
	echo_once(&q0, src, 8, dst, 8);
	assert_int_equal(tp(e)->ops->read_config(tp(e)->ctx,
						 ECHO_CONFIG_COUNTER, cfg, 4),
			 0);
	assert_int_equal(cfg[0], 2);

	/* A device-side change bumps the generation and raises a
	 * configuration change interrupt. */
	gen = tp(e)->ops->config_generation(tp(e)->ctx);
	tp(e)->ops->ack_interrupt(tp(e)->ctx);
	memcpy(id, "newid-01", 8);
	echo_device_set_id(e->echo, id);
	assert_int_not_equal(tp(e)->ops->config_generation(tp(e)->ctx), gen);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_CONFIG);
	assert_int_equal(
		vdk_driver_read_config_consistent(tp(e), ECHO_CONFIG_ID, id, 8),
		0);
	assert_memory_equal(id, "newid-01", 8);
	env_free(e);
}

static void test_config_consistent_retry(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t id[8];

	(void)state;
	bring_up(e, V1, &q0, NULL, 8, 0);
	/* The id changes between the two 32-bit halves of an 8-byte read:
	 * a plain read is torn... */
	e->change_countdown = 1;
	e->next_id = 'x';
	assert_int_equal(
		tp(e)->ops->read_config(tp(e)->ctx, ECHO_CONFIG_ID, id, 8), 0);
	assert_memory_equal(id, "vdk-gedx", 8);
	/* ...the generation-checked one retries and is not. */
	e->change_countdown = 1;
	e->next_id = '1';
	e->config_reads = 0;
	assert_int_equal(
		vdk_driver_read_config_consistent(tp(e), ECHO_CONFIG_ID, id, 8),
		0);
	assert_memory_equal(id, "changed1", 8);
	assert_int_equal(e->config_reads, 4); /* two attempts of two reads */

	/* A device whose configuration never settles: bounded, -EAGAIN. */
	e->change_always = true;
	e->config_reads = 0;
	assert_int_equal(
		vdk_driver_read_config_consistent(tp(e), ECHO_CONFIG_ID, id, 8),
		-EAGAIN);
	assert_int_equal(e->config_reads, 2 * VDK_DRIVER_CONFIG_RETRIES);
	e->change_always = false;
	assert_int_equal(tp(e)->ops->read_config(tp(e)->ctx, UINT32_MAX, id, 2),
			 -ERANGE);
	env_free(e);
}

/* ---- data path --------------------------------------------------------- */

static void test_layout_and_queue_setup(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0}, bad = {0};
	struct vdk_driver_virtq_config cfg = {0};
	uint64_t neg;

	(void)state;
	assert_int_equal(vdk_driver_virtq_layout_size(0), 0);
	assert_int_equal(vdk_driver_virtq_layout_size(3), 0);
	assert_int_equal(vdk_driver_virtq_layout_size(1), 38);
	/* 4096 desc + 518 avail -> used at 4616, + 2054 */
	assert_int_equal(vdk_driver_virtq_layout_size(256), 6670);
	assert_int_equal(vdk_driver_virtq_layout_size(32768), 851982);

	assert_int_equal(vdk_driver_begin_init(tp(e), V1, &neg), 0);
	/* Queue 2 does not exist; 512 is above the maximum; 6 is not a
	 * power of two. */
	assert_int_equal(dq_init(e, &bad, 2, 8, neg, 0), -ENOENT);
	assert_int_equal(dq_init(e, &bad, 0, 512, neg, 0), -EINVAL);
	assert_int_equal(dq_init(e, &bad, 0, 6, neg, 0), -EINVAL);
	/* Misaligned or short ring memory. */
	cfg = (struct vdk_driver_virtq_config){
		.index = 0,
		.size = 8,
		.slots = bad.slots,
		.ring = e->ram + 8,
		.ring_gpa = RAM_GPA + 8,
		.ring_len = vdk_driver_virtq_layout_size(8)};
	assert_int_equal(vdk_driver_virtq_init(&bad.q, tp(e), &e->hal, &cfg),
			 -EINVAL);
	cfg.ring = e->ram;
	cfg.ring_gpa = RAM_GPA;
	cfg.ring_len--;
	assert_int_equal(vdk_driver_virtq_init(&bad.q, tp(e), &e->hal, &cfg),
			 -EINVAL);

	assert_int_equal(dq_init(e, &q0, 0, 8, neg, 0), 0);
	assert_true(tp(e)->ops->queue_used(tp(e)->ctx, 0));
	assert_false(tp(e)->ops->queue_used(tp(e)->ctx, 1));
	assert_int_equal(tp(e)->ops->max_queue_size(tp(e)->ctx, 1),
			 ECHO_QUEUE_MAX_SIZE);
	/* Already in use. */
	assert_int_equal(dq_init(e, &q0, 0, 8, neg, 0), -EBUSY);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 8);
	env_free(e);
}

static void test_echo_round_trips(void **state)
{
	static const uint32_t sizes[] = {1, 7, 64, 255, 256, 1000, 4096, 65536};
	struct env *e = env_new(0);
	struct dq q0 = {0}, q1 = {0};
	uint8_t *src = ram_alloc(e, 65536, 64), *dst = ram_alloc(e, 65536, 64);
	struct echo_stats st;

	(void)state;
	bring_up(e, V1, &q0, &q1, 16, 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill(src, sizes[i], (uint8_t)i);
		memset(dst, 0, 65536);
		assert_int_equal(echo_once(&q0, src, sizes[i], dst, 65536),
				 sizes[i]);
		assert_memory_equal(src, dst, sizes[i]);
		assert_int_equal(dst[sizes[i]], 0);
	}
	/* Less room than data: the device writes what fits, no more. */
	assert_int_equal(echo_once(&q0, src, 100, dst, 40), 40);

	/* A chain of three readable and two writable buffers. */
	struct vdk_driver_buf r[3] = {{src, 10}, {src + 10, 1}, {src + 11, 21}};
	struct vdk_driver_buf w[2] = {{dst, 5}, {dst + 100, 27}};
	uint16_t token;
	uint32_t len;
	fill(src, 32, 99);
	int head = vdk_driver_virtq_add(&q0.q, r, 3, w, 2);
	assert_true(head >= 0);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 11);
	assert_true(vdk_driver_virtq_kick(&q0.q));
	assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len), 0);
	assert_int_equal(token, head);
	assert_int_equal(len, 32);
	assert_memory_equal(dst, src, 5);
	assert_memory_equal(dst + 100, src + 5, 27);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 16);
	assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len),
			 -EAGAIN);

	/* The sink queue consumes without writing. */
	head = vdk_driver_virtq_add(&q1.q, r, 3, NULL, 0);
	assert_true(head >= 0);
	vdk_driver_virtq_kick(&q1.q);
	assert_int_equal(vdk_driver_virtq_pop_used(&q1.q, &token, &len), 0);
	assert_int_equal(len, 0);
	st = echo_device_stats(e->echo);
	assert_int_equal(st.sink_bytes, 32);
	assert_int_equal(st.echo_chains, 10);
	assert_int_equal(e->notifies[0], 10);
	assert_int_equal(e->notifies[1], 1);

	/* With ECHO_F_INVERT negotiated the bytes come back inverted. */
	bring_up(e, V1 | F(ECHO_F_INVERT), &q0, NULL, 16, 0);
	fill(src, 300, 3);
	assert_int_equal(echo_once(&q0, src, 300, dst, 300), 300);
	for (int i = 0; i < 300; i++)
		assert_int_equal(dst[i], src[i] ^ 0xff);
	env_free(e);
}

static void test_queue_full_and_bad_buffers(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t *buf = ram_alloc(e, 64, 64), stack_buf[8];
	struct vdk_driver_buf one = {buf, 8};
	struct vdk_driver_buf five[5] = {
		{buf, 1}, {buf, 1}, {buf, 1}, {buf, 1}, {buf, 1}};
	bool seen[4] = {false};
	uint16_t token;
	uint32_t len;

	(void)state;
	bring_up(e, V1, &q0, NULL, 4, 0);
	/* Longer than the queue: never fits. */
	assert_int_equal(vdk_driver_virtq_add(&q0.q, five, 5, NULL, 0),
			 -ENOSPC);
	for (int i = 0; i < 3; i++)
		assert_true(vdk_driver_virtq_add(&q0.q, &one, 1, NULL, 0) >= 0);
	/* One descriptor left: a two-buffer chain does not fit. */
	assert_int_equal(vdk_driver_virtq_add(&q0.q, &one, 1, &one, 1),
			 -ENOSPC);
	assert_true(vdk_driver_virtq_add(&q0.q, &one, 1, NULL, 0) >= 0);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 0);
	assert_int_equal(vdk_driver_virtq_add(&q0.q, &one, 1, NULL, 0),
			 -ENOSPC);

	vdk_driver_virtq_kick(&q0.q);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len),
				 0);
		assert_true(token < 4);
		assert_false(seen[token]);
		seen[token] = true;
	}
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 4);

	/* Bad buffers are refused without using descriptors. */
	struct vdk_driver_buf bad[2] = {{buf, 8}, {stack_buf, 8}};
	assert_int_equal(vdk_driver_virtq_add(&q0.q, bad, 2, NULL, 0), -EFAULT);
	assert_int_equal(vdk_driver_virtq_add(&q0.q, NULL, 0, NULL, 0),
			 -EINVAL);
	bad[1] = (struct vdk_driver_buf){buf, 0};
	assert_int_equal(vdk_driver_virtq_add(&q0.q, bad, 2, NULL, 0), -EINVAL);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 4);
	/* ...and the queue still works. */
	fill(buf, 8, 1);
	assert_int_equal(echo_once(&q0, buf, 8, buf + 32, 8), 8);
	assert_memory_equal(buf, buf + 32, 8);
	env_free(e);
}

static void test_interrupt_ack(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t *buf = ram_alloc(e, 64, 64);

	(void)state;
	bring_up(e, V1, &q0, NULL, 8, 0);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx), 0);
	assert_false(e->irq_level);
	echo_once(&q0, buf, 8, buf + 8, 8);
	assert_true(e->irq_level);
	assert_int_equal(e->irq_raises, 1);
	assert_int_equal(vdk_mmio_interrupt_status(e->mmio),
			 VDK_DRIVER_INT_QUEUE);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE);
	assert_false(e->irq_level);
	assert_int_equal(vdk_mmio_interrupt_status(e->mmio), 0);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx), 0);

	/* A queue interrupt and a config interrupt together, acked at once. */
	echo_once(&q0, buf, 8, buf + 8, 8);
	echo_device_set_id(e->echo, (const uint8_t *)"abcdefgh");
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE | VDK_DRIVER_INT_CONFIG);
	assert_false(e->irq_level);
	assert_int_equal(e->irq_raises, 2);
	env_free(e);
}

/* Descriptors of the chain at @head, as the driver linked them. */
static unsigned chain_descs(struct dq *d, uint16_t head, bool *mark)
{
	unsigned n = 0;
	uint16_t idx = head;

	for (;;) {
		const struct vring_desc *desc = &d->q.desc[idx];

		assert_true(n < d->q.size);
		assert_false(mark[idx]); /* shared with another chain */
		mark[idx] = true;
		n++;
		if (!(desc->flags & VRING_DESC_F_NEXT))
			return n;
		idx = desc->next;
	}
}

/*
 * A device may complete chains in any order (virtio 1.2 §2.7.8): the
 * driver's free list must survive it. The echo device completes in order,
 * so the test permutes each batch of used ring entries before popping some
 * of them, then checks that the chains still in flight own disjoint
 * descriptors and account for every descriptor not free.
 */
static void test_out_of_order_completion(void **state)
{
	enum { QS = 32, KEEP = 4 };
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t *src = ram_alloc(e, 64, 64), *dst = ram_alloc(e, 64, 64);
	uint16_t out[KEEP + 8];
	uint32_t expect[QS]; /* bytes the device writes, by token */
	unsigned n_out = 0;
	uint16_t token;
	uint32_t len;

	(void)state;
	bring_up(e, V1, &q0, NULL, QS, 0);
	fill(src, 64, 1);
	for (int round = 0; round < 200; round++) {
		uint16_t first = vdk_le16_load(&q0.q.used->idx), n_new = 0;
		struct vring_used_elem saved[KEEP + 8];
		bool mark[QS] = {false};
		unsigned owned = 0;

		/* Top up to KEEP + 2 chains of 2..5 descriptors. */
		while (n_out < KEEP + 2) {
			uint16_t nr = (uint16_t)(1 + (round + n_out) % 2);
			uint16_t nw = (uint16_t)(1 + (round + n_out) % 3 / 2 +
						 (round % 2));
			struct vdk_driver_buf r[2] = {{src, 8}, {src + 8, 8}};
			struct vdk_driver_buf w[3] = {
				{dst, 4}, {dst + 4, 4}, {dst + 8, 8}};
			int h = vdk_driver_virtq_add(&q0.q, r, nr, w, nw);

			assert_true(h >= 0);
			/* echo writes min(readable, writable) bytes */
			expect[h] = 8u * nr < (nw == 3 ? 16u : 4u * nw)
					    ? 8u * nr
					    : (nw == 3 ? 16u : 4u * nw);
			out[n_out++] = (uint16_t)h;
			n_new++;
		}
		vdk_driver_virtq_kick(&q0.q);
		assert_int_equal(
			(uint16_t)(vdk_le16_load(&q0.q.used->idx) - first),
			n_new);
		/* Rotate the new used entries by @round. */
		for (uint16_t i = 0; i < n_new; i++)
			saved[i] = q0.q.used->ring[(first + i) % QS];
		for (uint16_t i = 0; i < n_new; i++) {
			struct vring_used_elem *u =
				&q0.q.used->ring[(first + i) % QS];
			const struct vring_used_elem *from =
				&saved[(i + round) % n_new];

			vdk_mem_write_le32(e->mem, gpa_of(e, &u->id), from->id);
			vdk_mem_write_le32(e->mem, gpa_of(e, &u->len),
					   from->len);
		}
		/* Take back all but KEEP; the rest stay in flight. */
		while (n_out > KEEP) {
			unsigned k;

			assert_int_equal(
				vdk_driver_virtq_pop_used(&q0.q, &token, &len),
				0);
			for (k = 0; k < n_out && out[k] != token; k++)
				;
			assert_true(k < n_out);
			assert_int_equal(len, expect[token]);
			out[k] = out[--n_out];
		}
		for (unsigned k = 0; k < n_out; k++)
			owned += chain_descs(&q0, out[k], mark);
		assert_int_equal(owned + vdk_driver_virtq_num_free(&q0.q), QS);
	}
	/* Drain: every descriptor comes back. */
	while (vdk_driver_virtq_pop_used(&q0.q, &token, &len) == 0)
		;
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), QS);
	assert_false(vdk_driver_virtq_is_broken(&q0.q));
	env_free(e);
}

/* ---- notification suppression ------------------------------------------- */

static uint16_t used_event(struct dq *d)
{
	return vdk_le16_load(&d->q.avail->ring[d->q.size]);
}

static void test_event_idx_on(void **state)
{
	struct env *e = env_new(F(VIRTIO_RING_F_EVENT_IDX));
	struct dq q0 = {0};
	uint8_t *buf = ram_alloc(e, 64, 64);
	struct vdk_driver_buf r = {buf, 8}, w = {buf + 32, 8};
	uint16_t token, avail_event;
	uint32_t len;

	(void)state;
	uint64_t neg =
		bring_up(e, V1 | F(VIRTIO_RING_F_EVENT_IDX), &q0, NULL, 8, 0);
	assert_true(neg & F(VIRTIO_RING_F_EVENT_IDX));

	/* Round trips notify and interrupt every time: the device re-arms
	 * avail_event, the driver moves used_event past each pop. */
	for (int i = 0; i < 3; i++) {
		echo_once(&q0, buf, 8, buf + 32, 8);
		assert_int_equal(used_event(&q0), i + 1);
		tp(e)->ops->ack_interrupt(tp(e)->ctx);
	}
	assert_int_equal(e->notifies[0], 3);
	assert_int_equal(e->irq_raises, 3);

	/* The driver does not pop: used_event stays behind, so the device's
	 * second completion sends no interrupt. */
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1) >= 0);
	assert_true(vdk_driver_virtq_kick(&q0.q));
	assert_int_equal(e->irq_raises, 4);
	tp(e)->ops->ack_interrupt(tp(e)->ctx);
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1) >= 0);
	assert_true(vdk_driver_virtq_kick(&q0.q));
	assert_int_equal(echo_device_stats(e->echo).echo_chains, 5);
	assert_int_equal(e->irq_raises, 4);
	assert_false(e->irq_level);
	for (int i = 0; i < 2; i++)
		assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len),
				 0);
	assert_int_equal(used_event(&q0), 5);

	/* avail_event: the device asks to hear only when the available index
	 * passes avail_event. Ask for one more buffer than the next. */
	avail_event = (uint16_t)(q0.q.avail_idx + 1);
	vdk_le16_store(&q0.q.used->ring[q0.q.size], avail_event);
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1) >= 0);
	assert_false(vdk_driver_virtq_should_notify(&q0.q));
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1) >= 0);
	assert_true(vdk_driver_virtq_should_notify(&q0.q));
	/* Nothing new since: no notification. */
	assert_false(vdk_driver_virtq_should_notify(&q0.q));
	/* Two adds in one batch across the event: one notification. */
	vdk_le16_store(&q0.q.used->ring[q0.q.size], q0.q.avail_idx);
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1) >= 0);
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1) >= 0);
	assert_true(vdk_driver_virtq_kick(&q0.q));
	for (int i = 0; i < 4; i++)
		assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len),
				 0);
	assert_int_equal(echo_device_stats(e->echo).echo_chains, 9);
	env_free(e);
}

static void test_event_idx_off(void **state)
{
	struct env *e = env_new(F(VIRTIO_RING_F_EVENT_IDX));
	struct dq q0 = {0};
	uint8_t *buf = ram_alloc(e, 64, 64);
	struct vdk_driver_buf r = {buf, 8};
	uint16_t token;
	uint32_t len;

	(void)state;
	/* Offered but not accepted: flags-based suppression. */
	uint64_t neg = bring_up(e, V1, &q0, NULL, 8, 0);
	assert_false(neg & F(VIRTIO_RING_F_EVENT_IDX));

	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, NULL, 0) >= 0);
	vdk_le16_store(&q0.q.used->flags, VRING_USED_F_NO_NOTIFY);
	assert_false(vdk_driver_virtq_kick(&q0.q));
	assert_int_equal(e->notifies[0], 0);
	assert_false(vdk_driver_virtq_can_pop(&q0.q));
	vdk_le16_store(&q0.q.used->flags, 0);
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, NULL, 0) >= 0);
	assert_true(vdk_driver_virtq_kick(&q0.q));
	assert_int_equal(e->notifies[0], 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len),
				 0);
	/* Without EVENT_IDX the driver never writes used_event. */
	assert_int_equal(used_event(&q0), 0);
	/* Every completion interrupts (no suppression asked for). */
	assert_int_equal(e->irq_raises, 1);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE);
	echo_once(&q0, buf, 8, buf + 32, 8);
	assert_int_equal(e->irq_raises, 2);
	echo_once(&q0, buf, 8, buf + 32, 8);
	assert_int_equal(e->irq_raises, 2); /* still asserted: not acked */
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE);
	echo_once(&q0, buf, 8, buf + 32, 8);
	assert_int_equal(e->irq_raises, 3);
	env_free(e);
}

static void test_indirect(void **state)
{
	struct env *e = env_new(F(VIRTIO_RING_F_INDIRECT_DESC));
	struct dq q0 = {0};
	uint8_t *src = ram_alloc(e, 256, 64), *dst = ram_alloc(e, 1024, 64);
	int heads[4];
	uint16_t token;
	uint32_t len;

	(void)state;
	uint64_t neg = bring_up(e, V1 | F(VIRTIO_RING_F_INDIRECT_DESC), &q0,
				NULL, 4, 8);
	assert_true(neg & F(VIRTIO_RING_F_INDIRECT_DESC));
	fill(src, 256, 5);
	memset(dst, 0, 1024);
	/* Four chains of 2 readable + 2 writable buffers in a 4-entry queue:
	 * one descriptor each, thanks to the indirect tables. */
	for (int i = 0; i < 4; i++) {
		struct vdk_driver_buf r[2] = {{src + 64 * i, 30},
					      {src + 64 * i + 30, 34}};
		struct vdk_driver_buf w[2] = {{dst + 256 * i, 10},
					      {dst + 256 * i + 128, 54}};

		heads[i] = vdk_driver_virtq_add(&q0.q, r, 2, w, 2);
		assert_true(heads[i] >= 0);
		assert_int_equal(q0.q.desc[heads[i]].flags,
				 VRING_DESC_F_INDIRECT);
	}
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 0);
	assert_true(vdk_driver_virtq_kick(&q0.q));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len),
				 0);
		assert_int_equal(token, heads[i]);
		assert_int_equal(len, 64);
		assert_memory_equal(dst + 256 * i, src + 64 * i, 10);
		assert_memory_equal(dst + 256 * i + 128, src + 64 * i + 10, 54);
	}
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 4);
	/* A single buffer goes direct. */
	assert_int_equal(echo_once(&q0, src, 16, dst, 16), 16);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 4);
	env_free(e);
}

/* ---- lifecycle: reset, snapshot/restore ---------------------------------- */

static void test_reset_reinit(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0}, q1 = {0};
	uint8_t *buf = ram_alloc(e, 256, 64);
	struct vdk_driver_buf r = {buf, 16};

	(void)state;
	bring_up(e, V1, &q0, &q1, 8, 0);
	fill(buf, 16, 1);
	assert_int_equal(echo_once(&q0, buf, 16, buf + 64, 16), 16);
	/* Buffers left in flight when the driver resets are forgotten by
	 * both sides. */
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, NULL, 0) >= 0);
	assert_true(vdk_driver_virtq_add(&q1.q, &r, 1, NULL, 0) >= 0);
	assert_int_equal(vdk_driver_reset(tp(e)), 0);
	assert_int_equal(vdk_mmio_status(e->mmio), 0);
	assert_false(tp(e)->ops->queue_used(tp(e)->ctx, 0));
	assert_int_equal(echo_device_config(e->echo).counter, 0);

	/* Re-initialise with another queue size on the same memory. */
	bring_up(e, V1, &q0, &q1, 4, 0);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 4);
	for (int i = 0; i < 6; i++) {
		fill(buf, 100, (uint8_t)(i * 3));
		assert_int_equal(echo_once(&q0, buf, 100, buf + 128, 100), 100);
		assert_memory_equal(buf, buf + 128, 100);
	}
	struct echo_stats st = echo_device_stats(e->echo);
	assert_int_equal(st.activations, 2);
	assert_int_equal(st.resets, 1);
	assert_int_equal(st.echo_chains, 7);
	env_free(e);
}

static void test_snapshot_restore(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0}, q1 = {0};
	uint8_t *src = ram_alloc(e, 512, 64), *dst = ram_alloc(e, 512, 64);
	uint8_t val[4] = {0x55, 0, 0, 0}, cfg[4];
	struct vdk_driver_buf r = {src, 200}, w = {dst, 200};
	uint8_t *snap = NULL;
	size_t snap_len = 0;
	uint16_t token;
	uint32_t len;
	int head;

	(void)state;
	bring_up(e, V1 | F(ECHO_F_INVERT), &q0, &q1, 16, 0);
	for (int i = 0; i < 3; i++)
		echo_once(&q0, src, 64, dst, 64);
	tp(e)->ops->write_config(tp(e)->ctx, ECHO_CONFIG_SETTABLE, val, 4);
	tp(e)->ops->ack_interrupt(tp(e)->ctx);
	/* A chain made available but not yet seen by the device. */
	fill(src, 200, 42);
	memset(dst, 0, 512);
	head = vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1);
	assert_true(head >= 0);

	assert_int_equal(vdk_mmio_sleep(e->mmio), 0);
	assert_int_equal(vdk_mmio_snapshot(e->mmio, &snap, &snap_len), 0);
	assert_true(snap_len > 0);
	/* The old transport and device go away; fresh ones take over. */
	free_device(e);
	new_device(e);
	assert_int_equal(vdk_mmio_status(e->mmio), 0);
	assert_int_equal(vdk_mmio_sleep(e->mmio), 0);
	assert_int_equal(vdk_mmio_restore(e->mmio, snap, snap_len), 0);
	free(snap);
	assert_int_equal(vdk_mmio_wake(e->mmio), 0);

	/* The driver carries on as if nothing happened: status, features,
	 * configuration, queues and the pending chain all survived. */
	assert_true(vdk_mmio_status(e->mmio) & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(echo_device_inverting(e->echo));
	assert_int_equal(tp(e)->ops->read_config(tp(e)->ctx,
						 ECHO_CONFIG_SETTABLE, cfg, 4),
			 0);
	assert_memory_equal(cfg, val, 4);
	/* The woken device caught up with the chain it had not seen. */
	assert_true(vdk_driver_virtq_can_pop(&q0.q));
	assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len), 0);
	assert_int_equal(token, head);
	assert_int_equal(len, 200);
	for (int i = 0; i < 200; i++)
		assert_int_equal(dst[i], src[i] ^ 0xff);
	for (uint32_t n = 1; n <= 512; n *= 8) {
		fill(src, n, (uint8_t)n);
		assert_int_equal(echo_once(&q0, src, n, dst, n), n);
		assert_int_equal(dst[n - 1], src[n - 1] ^ 0xff);
	}
	assert_true(vdk_driver_virtq_add(&q1.q, &r, 1, NULL, 0) >= 0);
	vdk_driver_virtq_kick(&q1.q);
	assert_int_equal(vdk_driver_virtq_pop_used(&q1.q, &token, &len), 0);
	assert_int_equal(echo_device_stats(e->echo).sink_bytes, 200);
	/* The processed-chains counter continued from the snapshot. */
	assert_int_equal(tp(e)->ops->read_config(tp(e)->ctx,
						 ECHO_CONFIG_COUNTER, cfg, 4),
			 0);
	assert_int_equal(cfg[0], 3 + 1 + 4 + 1);
	env_free(e);
}

/* ---- a hostile device ----------------------------------------------------- */

/* Make one chain (8 readable, 8 writable bytes) available and used. */
static int used_chain(struct dq *d, uint8_t *buf)
{
	struct vdk_driver_buf r = {buf, 8}, w = {buf + 8, 8};
	int head = vdk_driver_virtq_add(&d->q, &r, 1, &w, 1);

	assert_true(head >= 0);
	vdk_driver_virtq_kick(&d->q);
	assert_true(vdk_driver_virtq_can_pop(&d->q));
	return head;
}

static struct vring_used_elem *next_used(struct dq *d)
{
	return &d->q.used->ring[d->q.last_used & (d->q.size - 1)];
}

static void assert_broken(struct env *e, struct dq *d, uint8_t *buf)
{
	struct vdk_driver_buf r = {buf, 8};
	uint16_t token = 0x1234;
	uint32_t len = 0x5678;

	assert_int_equal(vdk_driver_virtq_pop_used(&d->q, &token, &len), -EIO);
	assert_int_equal(token, 0x1234);
	assert_int_equal(len, 0x5678);
	assert_true(vdk_driver_virtq_is_broken(&d->q));
	assert_false(vdk_driver_virtq_can_pop(&d->q));
	assert_false(vdk_driver_virtq_should_notify(&d->q));
	assert_int_equal(vdk_driver_virtq_add(&d->q, &r, 1, NULL, 0), -EIO);
	assert_int_equal(vdk_driver_virtq_pop_used(&d->q, &token, &len), -EIO);
	/* A fresh initialisation recovers. */
	bring_up(e, V1, d, NULL, 8, 0);
	assert_int_equal(echo_once(d, buf, 8, buf + 8, 8), 8);
}

static void test_hostile_device(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t *buf = ram_alloc(e, 64, 64);
	uint16_t token;
	uint32_t len;
	int a, b;

	(void)state;
	bring_up(e, V1, &q0, NULL, 8, 0);
	assert_int_equal(echo_once(&q0, buf, 8, buf + 8, 8), 8);

	/* Used id out of range. */
	used_chain(&q0, buf);
	assert_int_equal(
		vdk_mem_write_le32(e->mem, gpa_of(e, &next_used(&q0)->id), 999),
		0);
	assert_broken(e, &q0, buf);

	/* Length beyond the chain's 8 writable bytes. */
	used_chain(&q0, buf);
	vdk_mem_write_le32(e->mem, gpa_of(e, &next_used(&q0)->len), 9);
	assert_broken(e, &q0, buf);

	/* An id that is not the head of a chain in flight (the chain's
	 * second descriptor). */
	a = used_chain(&q0, buf);
	vdk_mem_write_le32(e->mem, gpa_of(e, &next_used(&q0)->id),
			   q0.slots[a].next);
	assert_broken(e, &q0, buf);

	/* The same chain returned twice. */
	a = used_chain(&q0, buf);
	b = used_chain(&q0, buf);
	assert_int_not_equal(a, b);
	assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len), 0);
	assert_int_equal(token, a);
	vdk_mem_write_le32(e->mem, gpa_of(e, &next_used(&q0)->id), (uint32_t)a);
	assert_broken(e, &q0, buf);

	/* A used index further ahead than the chains in flight. */
	used_chain(&q0, buf);
	vdk_mem_write_le16(e->mem, gpa_of(e, &q0.q.used->idx),
			   (uint16_t)(q0.q.last_used + 2));
	assert_broken(e, &q0, buf);

	/* A device scribbling over the descriptor table does not corrupt the
	 * driver's free list: the driver never reads it back. */
	a = used_chain(&q0, buf);
	for (uint64_t i = 0; i < 8 * sizeof(struct vring_desc); i++)
		vdk_mem_write(e->mem, gpa_of(e, q0.q.desc) + i, "\xff", 1);
	assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len), 0);
	assert_int_equal(token, a);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 8);
	fill(buf, 8, 9);
	assert_int_equal(echo_once(&q0, buf, 8, buf + 8, 8), 8);
	assert_memory_equal(buf, buf + 8, 8);
	env_free(e);
}

/* ---- virtio-rng ------------------------------------------------------------ */

static void test_rng(void **state)
{
	struct env *e = env_new(0);
	struct vdk_rng_config rcfg = {.max_bytes_per_request = 48};
	struct vdk_rng *rng = NULL;
	struct dq q = {0};
	uint8_t *buf = ram_alloc(e, 4 * 64, 64);
	int heads[4], err = -1;
	uint64_t neg;
	uint16_t token;
	uint32_t len;

	(void)state;
	/* Put a virtio-rng device where the echo device was. */
	free_device(e);
	assert_int_equal(vdk_rng_new(&rng, &rcfg), 0);
	struct vdk_mmio_config mcfg = {.device = vdk_rng_device(rng),
				       .mem = e->mem};
	struct vdk_mmio *mmio = vdk_mmio_new(&mcfg, &err);
	assert_non_null(mmio);
	assert_int_equal(vdk_mmio_register(mmio, e->bus, MMIO_BASE), 0);

	assert_int_equal(
		vdk_driver_mmio_init(&e->drv, MMIO_BASE, &bus_access, e), 0);
	assert_int_equal(e->drv.device_id, VIRTIO_ID_RNG);
	assert_int_equal(
		vdk_driver_begin_init(tp(e), V1 | F(ECHO_F_INVERT), &neg), 0);
	assert_int_equal(neg, V1);
	assert_int_equal(dq_init(e, &q, VDK_RNG_REQUESTQ, 8, neg, 0), 0);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);

	/* §5.4.6: device-writable buffers come back filled. */
	memset(buf, 0, 4 * 64);
	for (int i = 0; i < 4; i++) {
		struct vdk_driver_buf w = {buf + 64 * i, i == 3 ? 16 : 64};

		heads[i] = vdk_driver_virtq_add(&q.q, NULL, 0, &w, 1);
		assert_true(heads[i] >= 0);
	}
	assert_true(vdk_driver_virtq_kick(&q.q));
	for (int i = 0; i < 4; i++) {
		bool nonzero = false;

		assert_int_equal(vdk_driver_virtq_pop_used(&q.q, &token, &len),
				 0);
		assert_int_equal(token, heads[i]);
		/* At most max_bytes_per_request, at most the buffer. */
		assert_int_equal(len, i == 3 ? 16 : 48);
		for (uint32_t j = 0; j < len; j++)
			nonzero |= buf[64 * i + j] != 0;
		assert_true(nonzero);
		/* Nothing beyond what the device said it wrote. */
		for (uint32_t j = len; j < 64 && i < 3; j++)
			assert_int_equal(buf[64 * i + j], 0);
	}
	assert_memory_not_equal(buf, buf + 64, 48);
	assert_int_equal(vdk_rng_stats(rng).requests, 4);
	assert_int_equal(vdk_rng_stats(rng).bytes, 3 * 48 + 16);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE);

	assert_int_equal(vdk_bus_deregister(e->bus, MMIO_BASE, NULL), 0);
	vdk_mmio_free(mmio);
	vdk_rng_free(rng);
	vdk_bus_free(e->bus);
	vdk_mem_free(e->mem);
	free(e);
	g_env = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_features_refused),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_consistent_retry),
		cmocka_unit_test(test_layout_and_queue_setup),
		cmocka_unit_test(test_echo_round_trips),
		cmocka_unit_test(test_queue_full_and_bad_buffers),
		cmocka_unit_test(test_interrupt_ack),
		cmocka_unit_test(test_out_of_order_completion),
		cmocka_unit_test(test_event_idx_on),
		cmocka_unit_test(test_event_idx_off),
		cmocka_unit_test(test_indirect),
		cmocka_unit_test(test_reset_reinit),
		cmocka_unit_test(test_snapshot_restore),
		cmocka_unit_test(test_hostile_device),
		cmocka_unit_test(test_rng),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
