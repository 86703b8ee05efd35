/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/bus.c: registration errors, dispatch (offsets, range
 * ends, adjacent ranges), the I/O manager's resource lists, and a
 * concurrency test of dispatch against (de)registration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <vdk/bus.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* A test device that records its last access. */
struct tdev {
	int id;
	int reads, writes;
	uint64_t base, offset;
	size_t len;
	uint8_t wdata[8];
};

static void tdev_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		      size_t len)
{
	struct tdev *d = opaque;

	d->reads++;
	d->base = base;
	d->offset = offset;
	d->len = len;
	/* Byte i of the reply is id + offset + i. */
	for (size_t i = 0; i < len; i++)
		((uint8_t *)data)[i] = (uint8_t)(d->id + offset + i);
}

static void tdev_write(void *opaque, uint64_t base, uint64_t offset,
		       const void *data, size_t len)
{
	struct tdev *d = opaque;

	d->writes++;
	d->base = base;
	d->offset = offset;
	d->len = len;
	memcpy(d->wdata, data, len < sizeof(d->wdata) ? len : sizeof(d->wdata));
}

static const struct vdk_bus_device_ops tdev_ops = {
	.read = tdev_read,
	.write = tdev_write,
};

static const struct vdk_bus_device_ops null_ops = {0};

static struct vdk_bus_device dev_of(struct tdev *d)
{
	return (struct vdk_bus_device){.ops = &tdev_ops, .opaque = d};
}

static struct vdk_bus_range rng(uint64_t base, uint64_t size)
{
	return (struct vdk_bus_range){.base = base, .size = size};
}

static struct vdk_bus *new_bus(enum vdk_bus_kind kind)
{
	int err = -1;
	struct vdk_bus *bus = vdk_bus_new(kind, &err);

	assert_non_null(bus);
	assert_int_equal(err, 0);
	return bus;
}

static void test_register_errors(void **state)
{
	struct vdk_bus *pio = new_bus(VDK_BUS_PIO);
	struct vdk_bus *mmio = new_bus(VDK_BUS_MMIO);
	struct tdev d = {.id = 1};
	struct vdk_bus_device nodev = {.ops = NULL, .opaque = &d};

	(void)state;
	/* Empty, wrapping, NULL ops. */
	assert_int_equal(vdk_bus_register(mmio, rng(0x1000, 0), dev_of(&d)),
			 -EINVAL);
	assert_int_equal(vdk_bus_register(mmio, rng(UINT64_MAX, 2), dev_of(&d)),
			 -EINVAL);
	assert_int_equal(
		vdk_bus_register(mmio, rng(0x1000, UINT64_MAX), dev_of(&d)),
		-EINVAL);
	assert_int_equal(vdk_bus_register(mmio, rng(0x1000, 4), nodev),
			 -EINVAL);
	/* Port I/O is 16 bits. */
	assert_int_equal(vdk_bus_register(pio, rng(0xfff0, 0x11), dev_of(&d)),
			 -EINVAL);
	assert_int_equal(vdk_bus_register(pio, rng(0x10000, 1), dev_of(&d)),
			 -EINVAL);
	assert_int_equal(vdk_bus_num_devices(pio), 0);
	assert_int_equal(vdk_bus_num_devices(mmio), 0);
	/* The same ranges are fine where they fit. */
	assert_int_equal(vdk_bus_register(pio, rng(0xfff0, 0x10), dev_of(&d)),
			 0);
	assert_int_equal(vdk_bus_register(mmio, rng(0x10000, 1), dev_of(&d)),
			 0);
	/* The top byte of the MMIO space can be a range. */
	assert_int_equal(vdk_bus_register(mmio, rng(UINT64_MAX, 1), dev_of(&d)),
			 0);

	/* Overlaps on every side; touching is fine. */
	assert_int_equal(vdk_bus_register(pio, rng(0x3f8, 8), dev_of(&d)), 0);
	assert_int_equal(vdk_bus_register(pio, rng(0x3f8, 8), dev_of(&d)),
			 -EEXIST);
	assert_int_equal(vdk_bus_register(pio, rng(0x3f0, 9), dev_of(&d)),
			 -EEXIST);
	assert_int_equal(vdk_bus_register(pio, rng(0x3ff, 1), dev_of(&d)),
			 -EEXIST);
	assert_int_equal(vdk_bus_register(pio, rng(0x3fa, 1), dev_of(&d)),
			 -EEXIST);
	assert_int_equal(vdk_bus_register(pio, rng(0x300, 0x200), dev_of(&d)),
			 -EEXIST);
	assert_int_equal(vdk_bus_register(pio, rng(0x3f0, 8), dev_of(&d)), 0);
	assert_int_equal(vdk_bus_register(pio, rng(0x400, 8), dev_of(&d)), 0);
	assert_int_equal(vdk_bus_num_devices(pio), 4);
	assert_int_equal(d.reads + d.writes, 0);
	vdk_bus_free(pio);
	vdk_bus_free(mmio);
	vdk_bus_free(NULL);
}

static void test_deregister(void **state)
{
	struct vdk_bus *bus = new_bus(VDK_BUS_MMIO);
	struct tdev a = {.id = 1}, b = {.id = 2};
	struct vdk_bus_device removed = {0};
	uint8_t v;

	(void)state;
	assert_int_equal(vdk_bus_register(bus, rng(0x1000, 0x100), dev_of(&a)),
			 0);
	assert_int_equal(vdk_bus_register(bus, rng(0x2000, 0x100), dev_of(&b)),
			 0);
	/* Only a range's base names it. */
	assert_int_equal(vdk_bus_deregister(bus, 0x1001, &removed), -ENOENT);
	assert_int_equal(vdk_bus_deregister(bus, 0x3000, &removed), -ENOENT);
	assert_null(removed.opaque);

	assert_int_equal(vdk_bus_deregister(bus, 0x2000, &removed), 0);
	assert_ptr_equal(removed.opaque, &b);
	assert_ptr_equal(removed.ops, &tdev_ops);
	assert_int_equal(vdk_bus_deregister(bus, 0x2000, NULL), -ENOENT);
	assert_int_equal(vdk_bus_num_devices(bus), 1);
	assert_int_equal(vdk_bus_read(bus, 0x2000, &v, 1), -ENOENT);
	assert_int_equal(vdk_bus_read(bus, 0x1000, &v, 1), 0);
	assert_int_equal(b.reads, 0);
	/* The range is free again. */
	assert_int_equal(vdk_bus_register(bus, rng(0x2000, 0x10), dev_of(&a)),
			 0);
	assert_int_equal(vdk_bus_deregister(bus, 0x1000, NULL), 0);
	assert_int_equal(vdk_bus_deregister(bus, 0x2000, NULL), 0);
	assert_int_equal(vdk_bus_num_devices(bus), 0);
	vdk_bus_free(bus);
}

static void test_access_errors(void **state)
{
	struct vdk_bus *bus = new_bus(VDK_BUS_PIO);
	struct tdev d = {.id = 0x10};
	uint8_t buf[8];

	(void)state;
	assert_int_equal(vdk_bus_register(bus, rng(0x60, 0x10), dev_of(&d)), 0);
	memset(buf, 0xee, sizeof(buf));

	assert_int_equal(vdk_bus_read(bus, 0x60, buf, 0), -EINVAL);
	assert_int_equal(vdk_bus_write(bus, 0x60, buf, 0), -EINVAL);
	assert_int_equal(vdk_bus_read(bus, 0x5f, buf, 1), -ENOENT);
	assert_int_equal(vdk_bus_write(bus, 0x5f, buf, 2), -ENOENT);
	/* base + size: no range contains it. */
	assert_int_equal(vdk_bus_read(bus, 0x70, buf, 1), -ENOENT);
	assert_int_equal(vdk_bus_write(bus, 0x70, buf, 1), -ENOENT);
	/* base + size - 2 with 4 bytes straddles the end. */
	assert_int_equal(vdk_bus_read(bus, 0x6e, buf, 4), -ERANGE);
	assert_int_equal(vdk_bus_write(bus, 0x6e, buf, 4), -ERANGE);
	assert_int_equal(vdk_bus_read(bus, 0x60, buf, 0x11), -ERANGE);
	assert_int_equal(vdk_bus_read(bus, 0x100000, buf, 1), -ENOENT);
	assert_int_equal(vdk_bus_read(bus, UINT64_MAX, buf, 8), -ENOENT);
	/* Errors neither call the device nor touch the buffer. */
	assert_int_equal(d.reads + d.writes, 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee);

	/* The last bytes themselves are fine. */
	assert_int_equal(vdk_bus_read(bus, 0x6e, buf, 2), 0);
	assert_int_equal(d.offset, 0xe);
	assert_int_equal(vdk_bus_read(bus, 0x6f, buf, 1), 0);
	assert_int_equal(buf[0], 0x10 + 0xf);
	vdk_bus_free(bus);
}

/* An access at the very top of MMIO space must not wrap. */
static void test_access_top_of_space(void **state)
{
	struct vdk_bus *bus = new_bus(VDK_BUS_MMIO);
	struct tdev d = {.id = 1};
	uint8_t buf[4] = {0};

	(void)state;
	assert_int_equal(
		vdk_bus_register(bus, rng(UINT64_MAX - 3, 4), dev_of(&d)), 0);
	assert_int_equal(vdk_bus_read(bus, UINT64_MAX - 3, buf, 4), 0);
	assert_int_equal(vdk_bus_read(bus, UINT64_MAX, buf, 1), 0);
	assert_int_equal(d.offset, 3);
	assert_int_equal(vdk_bus_read(bus, UINT64_MAX, buf, 2), -ERANGE);
	assert_int_equal(vdk_bus_read(bus, UINT64_MAX - 1, buf, 4), -ERANGE);
	vdk_bus_free(bus);
}

static void test_dispatch_offsets(void **state)
{
	struct vdk_bus *bus = new_bus(VDK_BUS_MMIO);
	struct tdev a = {.id = 0x10}, b = {.id = 0x40};
	const uint8_t w[4] = {1, 2, 3, 4};
	uint8_t r[4] = {0};

	(void)state;
	assert_int_equal(
		vdk_bus_register(bus, rng(0xd0000000, 0x200), dev_of(&a)), 0);
	assert_int_equal(
		vdk_bus_register(bus, rng(0xd0001000, 0x200), dev_of(&b)), 0);

	assert_int_equal(vdk_bus_write(bus, 0xd0000070, w, 4), 0);
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.base, 0xd0000000);
	assert_int_equal(a.offset, 0x70);
	assert_int_equal(a.len, 4);
	assert_memory_equal(a.wdata, w, 4);
	assert_int_equal(b.writes, 0);

	assert_int_equal(vdk_bus_read(bus, 0xd00011fc, r, 4), 0);
	assert_int_equal(b.reads, 1);
	assert_int_equal(b.base, 0xd0001000);
	assert_int_equal(b.offset, 0x1fc);
	assert_int_equal(b.len, 4);
	assert_int_equal(r[0], (uint8_t)(0x40 + 0x1fc));
	assert_int_equal(r[3], (uint8_t)(0x40 + 0x1ff));
	assert_int_equal(a.reads, 0);
	/* Between the two ranges: nothing. */
	assert_int_equal(vdk_bus_read(bus, 0xd0000200, r, 4), -ENOENT);
	assert_int_equal(vdk_bus_read(bus, 0xd0000fff, r, 1), -ENOENT);
	vdk_bus_free(bus);
}

static void test_adjacent_ranges(void **state)
{
	struct vdk_bus *bus = new_bus(VDK_BUS_PIO);
	struct tdev a = {.id = 0x10}, b = {.id = 0x80};
	uint8_t v = 0;
	uint16_t v16 = 0;

	(void)state;
	assert_int_equal(vdk_bus_register(bus, rng(0x100, 0x10), dev_of(&b)),
			 0);
	assert_int_equal(vdk_bus_register(bus, rng(0xf0, 0x10), dev_of(&a)), 0);
	assert_int_equal(vdk_bus_read(bus, 0xff, &v, 1), 0);
	assert_int_equal(v, 0x10 + 0xf);
	assert_int_equal(a.reads, 1);
	assert_int_equal(vdk_bus_read(bus, 0x100, &v, 1), 0);
	assert_int_equal(v, 0x80);
	assert_int_equal(b.reads, 1);
	assert_int_equal(b.offset, 0);
	/* An access straddling the two is refused, not split. */
	assert_int_equal(vdk_bus_read(bus, 0xff, &v16, 2), -ERANGE);
	assert_int_equal(vdk_bus_write(bus, 0xff, &v16, 2), -ERANGE);
	assert_int_equal(a.reads + b.reads, 2);
	assert_int_equal(a.writes + b.writes, 0);
	vdk_bus_free(bus);
}

/* NULL callbacks: reads return zeroes, writes are dropped. */
static void test_null_callbacks(void **state)
{
	struct vdk_bus *bus = new_bus(VDK_BUS_PIO);
	struct vdk_bus_device dev = {.ops = &null_ops, .opaque = NULL};
	uint32_t v = 0xffffffff;

	(void)state;
	assert_int_equal(vdk_bus_register(bus, rng(0x80, 4), dev), 0);
	assert_int_equal(vdk_bus_read(bus, 0x80, &v, 4), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vdk_bus_write(bus, 0x80, &v, 4), 0);
	vdk_bus_free(bus);
}

/* Many ranges, registered out of order: every lookup is right. */
static void test_many_ranges(void **state)
{
	enum { N = 1000 };
	static struct tdev devs[N];
	struct vdk_bus *bus = new_bus(VDK_BUS_MMIO);
	uint8_t v;

	(void)state;
	for (size_t k = 0; k < N; k++) {
		size_t i = (k * 37) % N; /* 37 is coprime with 1000 */

		devs[i] = (struct tdev){.id = (int)i};
		assert_int_equal(vdk_bus_register(bus, rng(0x1000 * i, 0x10),
						  dev_of(&devs[i])),
				 0);
	}
	assert_int_equal(vdk_bus_num_devices(bus), N);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(vdk_bus_read(bus, 0x1000 * i + 3, &v, 1), 0);
		assert_int_equal(devs[i].reads, 1);
		assert_int_equal(devs[i].base, 0x1000 * i);
		assert_int_equal(devs[i].offset, 3);
		assert_int_equal(vdk_bus_read(bus, 0x1000 * i + 0x10, &v, 1),
				 -ENOENT);
	}
	vdk_bus_free(bus);
}

static void test_io_manager_resources(void **state)
{
	struct vdk_io_manager mgr;
	struct tdev a = {.id = 1}, b = {.id = 2};
	const struct vdk_resource res[] = {
		{.kind = VDK_RESOURCE_PIO_RANGE, .range = {0x3f8, 8}},
		{.kind = VDK_RESOURCE_LEGACY_IRQ, .irq = 4},
		{.kind = VDK_RESOURCE_MMIO_RANGE, .range = {0xd0000000, 0x200}},
		{.kind = VDK_RESOURCE_PIO_RANGE, .range = {0x2f8, 8}},
	};
	uint8_t v = 0;

	(void)state;
	assert_int_equal(vdk_io_manager_init(&mgr), 0);
	assert_non_null(mgr.pio);
	assert_non_null(mgr.mmio);

	assert_int_equal(
		vdk_io_manager_register_resources(&mgr, res, 4, dev_of(&a)), 0);
	assert_int_equal(vdk_bus_num_devices(mgr.pio), 2);
	assert_int_equal(vdk_bus_num_devices(mgr.mmio), 1);
	/* The IRQ number was not taken as a port. */
	assert_int_equal(vdk_bus_read(mgr.pio, 4, &v, 1), -ENOENT);
	assert_int_equal(vdk_bus_read(mgr.pio, 0x3f8, &v, 1), 0);
	assert_int_equal(vdk_bus_write(mgr.mmio, 0xd0000010, &v, 1), 0);
	assert_int_equal(vdk_bus_read(mgr.pio, 0x2ff, &v, 1), 0);
	assert_int_equal(a.reads, 2);
	assert_int_equal(a.writes, 1);
	/* An MMIO address on the PIO bus and vice versa: nothing. */
	assert_int_equal(vdk_bus_read(mgr.mmio, 0x3f8, &v, 1), -ENOENT);

	/* Same resources again: the first range clashes, nothing is added. */
	assert_int_equal(
		vdk_io_manager_register_resources(&mgr, res, 4, dev_of(&b)),
		-EEXIST);
	assert_int_equal(vdk_bus_num_devices(mgr.pio), 2);
	assert_int_equal(vdk_bus_num_devices(mgr.mmio), 1);

	/* Deregister: all three ranges (IRQ not counted), then none. */
	assert_int_equal(vdk_io_manager_deregister_resources(&mgr, res, 4), 3);
	assert_int_equal(vdk_io_manager_deregister_resources(&mgr, res, 4), 0);
	assert_int_equal(vdk_bus_num_devices(mgr.pio), 0);
	assert_int_equal(vdk_bus_num_devices(mgr.mmio), 0);
	assert_int_equal(
		vdk_io_manager_register_resources(&mgr, NULL, 0, dev_of(&b)),
		0);
	vdk_io_manager_fini(&mgr);
	assert_null(mgr.pio);
	assert_null(mgr.mmio);
}

/* A failure late in the list removes what the call registered earlier. */
static void test_io_manager_rollback(void **state)
{
	struct vdk_io_manager mgr;
	struct tdev a = {.id = 1}, b = {.id = 2};
	const struct vdk_resource taken[] = {
		{.kind = VDK_RESOURCE_MMIO_RANGE,
		 .range = {0xe0000000, 0x1000}},
	};
	const struct vdk_resource clash[] = {
		{.kind = VDK_RESOURCE_PIO_RANGE, .range = {0x60, 1}},
		{.kind = VDK_RESOURCE_LEGACY_IRQ, .irq = 1},
		{.kind = VDK_RESOURCE_MMIO_RANGE, .range = {0xd0000000, 0x100}},
		{.kind = VDK_RESOURCE_MMIO_RANGE, .range = {0xe0000800, 0x100}},
		{.kind = VDK_RESOURCE_PIO_RANGE, .range = {0x64, 1}},
	};
	const struct vdk_resource bad[] = {
		{.kind = VDK_RESOURCE_PIO_RANGE, .range = {0x60, 1}},
		{.kind = (enum vdk_resource_kind)77, .range = {0x70, 1}},
	};
	const struct vdk_resource self_overlap[] = {
		{.kind = VDK_RESOURCE_PIO_RANGE, .range = {0x60, 4}},
		{.kind = VDK_RESOURCE_PIO_RANGE, .range = {0x62, 4}},
	};
	const struct vdk_resource bad_range[] = {
		{.kind = VDK_RESOURCE_MMIO_RANGE, .range = {0x1000, 0x10}},
		{.kind = VDK_RESOURCE_PIO_RANGE, .range = {0xffff, 2}},
	};
	uint8_t v;

	(void)state;
	assert_int_equal(vdk_io_manager_init(&mgr), 0);
	assert_int_equal(
		vdk_io_manager_register_resources(&mgr, taken, 1, dev_of(&a)),
		0);
	assert_int_equal(
		vdk_io_manager_register_resources(&mgr, clash, 5, dev_of(&b)),
		-EEXIST);
	assert_int_equal(vdk_bus_num_devices(mgr.pio), 0);
	assert_int_equal(vdk_bus_num_devices(mgr.mmio), 1);
	assert_int_equal(vdk_bus_read(mgr.pio, 0x60, &v, 1), -ENOENT);
	assert_int_equal(vdk_bus_read(mgr.mmio, 0xd0000000, &v, 1), -ENOENT);
	/* The pre-existing range still belongs to a. */
	assert_int_equal(vdk_bus_read(mgr.mmio, 0xe0000800, &v, 1), 0);
	assert_int_equal(a.reads, 1);
	assert_int_equal(b.reads, 0);

	assert_int_equal(
		vdk_io_manager_register_resources(&mgr, bad, 2, dev_of(&b)),
		-EINVAL);
	assert_int_equal(vdk_io_manager_register_resources(&mgr, self_overlap,
							   2, dev_of(&b)),
			 -EEXIST);
	assert_int_equal(vdk_io_manager_register_resources(&mgr, bad_range, 2,
							   dev_of(&b)),
			 -EINVAL);
	assert_int_equal(vdk_bus_num_devices(mgr.pio), 0);
	assert_int_equal(vdk_bus_num_devices(mgr.mmio), 1);
	assert_int_equal(vdk_io_manager_deregister_resources(&mgr, clash, 5),
			 0);
	assert_int_equal(vdk_io_manager_deregister_resources(&mgr, taken, 1),
			 1);
	vdk_io_manager_fini(&mgr);
}

/* ---- concurrency ------------------------------------------------------ */

#define N_STABLE      4
#define N_DYN	      4
#define N_READERS     4
#define WRITER_CYCLES 3000

/* A device for the concurrency test; every field is atomic. */
struct cdev {
	int id;
	uint64_t base;
	atomic_bool live;  /* set before register, cleared after deregister */
	atomic_int inside; /* threads currently in a callback */
	atomic_long calls;
	atomic_long wrong; /* calls with the wrong base or while not live */
};

static struct cdev g_stable[N_STABLE], g_dyn[N_DYN];
static atomic_bool g_stop;
static atomic_long g_bad_dispatch, g_dispatches, g_dyn_hits;

static void cdev_enter(struct cdev *d, uint64_t base, uint64_t offset)
{
	atomic_fetch_add(&d->inside, 1);
	atomic_fetch_add(&d->calls, 1);
	if (base != d->base || offset >= 0x100 || !atomic_load(&d->live))
		atomic_fetch_add(&d->wrong, 1);
}

static void cdev_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		      size_t len)
{
	struct cdev *d = opaque;
	uint32_t v = (uint32_t)d->id;

	cdev_enter(d, base, offset);
	memcpy(data, &v, len < 4 ? len : 4);
	atomic_fetch_sub(&d->inside, 1);
}

static void cdev_write(void *opaque, uint64_t base, uint64_t offset,
		       const void *data, size_t len)
{
	struct cdev *d = opaque;
	uint32_t v = 0;

	cdev_enter(d, base, offset);
	memcpy(&v, data, len < 4 ? len : 4);
	/* Writers send the id of the device they meant to reach. */
	if (v != (uint32_t)d->id)
		atomic_fetch_add(&d->wrong, 1);
	atomic_fetch_sub(&d->inside, 1);
}

static const struct vdk_bus_device_ops cdev_ops = {
	.read = cdev_read,
	.write = cdev_write,
};

static void *dispatcher(void *arg)
{
	struct vdk_bus *bus = arg;
	unsigned int seed = 12345;

	while (!atomic_load(&g_stop)) {
		for (int k = 0; k < 64; k++) {
			unsigned int r = (seed = seed * 1103515245u + 12345u);
			struct cdev *d = (r >> 8) & 1 ? &g_stable[(r >> 9) % 4]
						      : &g_dyn[(r >> 9) % 4];
			uint64_t addr = d->base + ((r >> 16) & 0xfc);
			uint32_t v = (uint32_t)d->id;
			int ret;

			if ((r >> 12) & 1) {
				ret = vdk_bus_write(bus, addr, &v, 4);
			} else {
				v = 0xffffffff;
				ret = vdk_bus_read(bus, addr, &v, 4);
			}
			atomic_fetch_add(&g_dispatches, 1);
			if (d->id < N_STABLE) {
				/* Stable ranges always answer, correctly. */
				if (ret != 0 || v != (uint32_t)d->id)
					atomic_fetch_add(&g_bad_dispatch, 1);
			} else if (ret == 0) {
				atomic_fetch_add(&g_dyn_hits, 1);
				if (v != (uint32_t)d->id)
					atomic_fetch_add(&g_bad_dispatch, 1);
			} else if (ret != -ENOENT) {
				atomic_fetch_add(&g_bad_dispatch, 1);
			}
		}
		/* A vCPU runs guest code between exits. */
		sched_yield();
	}
	return NULL;
}

/* Wait until *@counter is non-zero: the dispatcher threads got the CPU. Gives
 * up after 60 s (the assertions after it then fail). */
static void wait_until_dispatched(atomic_long *counter)
{
	for (int i = 0; i < 60000 && atomic_load(counter) == 0; i++)
		usleep(1000);
}

static void test_concurrent_dispatch_and_registration(void **state)
{
	struct vdk_bus *bus = new_bus(VDK_BUS_MMIO);
	pthread_t th[N_READERS];
	long late_calls = 0;

	(void)state;
	atomic_store(&g_stop, false);
	for (int i = 0; i < N_STABLE; i++) {
		struct cdev *d = &g_stable[i];

		d->id = i;
		d->base = 0x10000 + 0x1000 * (uint64_t)i;
		atomic_store(&d->live, true);
		assert_int_equal(
			vdk_bus_register(bus, rng(d->base, 0x100),
					 (struct vdk_bus_device){&cdev_ops, d}),
			0);
	}
	for (int i = 0; i < N_DYN; i++) {
		g_dyn[i].id = N_STABLE + i;
		/* Interleaved with the stable ranges. */
		g_dyn[i].base = 0x10800 + 0x1000 * (uint64_t)i;
	}
	for (int i = 0; i < N_READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, dispatcher, bus),
				 0);
	/* On a loaded machine the dispatchers may not have run yet: the
	 * registrations below must race with them, so wait for the first. */
	wait_until_dispatched(&g_dispatches);

	for (int c = 0; c < WRITER_CYCLES; c++) {
		struct cdev *d = &g_dyn[c % N_DYN];
		struct vdk_bus_device removed = {0};

		atomic_store(&d->live, true);
		assert_int_equal(
			vdk_bus_register(bus, rng(d->base, 0x100),
					 (struct vdk_bus_device){&cdev_ops, d}),
			0);
		if (c % 3 == 0)
			sched_yield();
		assert_int_equal(vdk_bus_deregister(bus, d->base, &removed), 0);
		assert_ptr_equal(removed.opaque, d);
		/* Once deregister returns, nobody is inside the device. */
		if (atomic_load(&d->inside) != 0)
			late_calls++;
		atomic_store(&d->live, false);
	}
	/* Every stable range must have answered at least once (not a
	 * matter of speed: the dispatchers run until it has). */
	for (int i = 0; i < N_STABLE; i++)
		wait_until_dispatched(&g_stable[i].calls);
	atomic_store(&g_stop, true);
	for (int i = 0; i < N_READERS; i++)
		pthread_join(th[i], NULL);

	assert_int_equal(late_calls, 0);
	assert_int_equal(atomic_load(&g_bad_dispatch), 0);
	assert_true(atomic_load(&g_dispatches) > 0);
	for (int i = 0; i < N_STABLE; i++) {
		assert_int_equal(atomic_load(&g_stable[i].wrong), 0);
		assert_true(atomic_load(&g_stable[i].calls) > 0);
	}
	for (int i = 0; i < N_DYN; i++)
		assert_int_equal(atomic_load(&g_dyn[i].wrong), 0);
	assert_int_equal(vdk_bus_num_devices(bus), N_STABLE);
	print_message("dispatches %ld, of which on dynamic ranges %ld\n",
		      atomic_load(&g_dispatches), atomic_load(&g_dyn_hits));
	vdk_bus_free(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_errors),
		cmocka_unit_test(test_deregister),
		cmocka_unit_test(test_access_errors),
		cmocka_unit_test(test_access_top_of_space),
		cmocka_unit_test(test_dispatch_offsets),
		cmocka_unit_test(test_adjacent_ranges),
		cmocka_unit_test(test_null_callbacks),
		cmocka_unit_test(test_many_ranges),
		cmocka_unit_test(test_io_manager_resources),
		cmocka_unit_test(test_io_manager_rollback),
		cmocka_unit_test(test_concurrent_dispatch_and_registration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
