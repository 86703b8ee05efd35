/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-blk test environment shared by test_blk.c and test_blk_io.c: an
 * image file in /dev/shm (tmpfs) or /tmp filled with a known pattern, guest
 * memory from vdk_mem (two adjacent regions), a vdk_blk device activated
 * through the device framework with a callback interrupt that counts what it
 * raises, and helpers that write requests with the mock driver (guest_ring),
 * run them and check the status byte, the used length, the guest buffers
 * and the bytes on the host image.
 *
 * Each test's prestate is a struct opts (directory, I/O mode, O_DIRECT,
 * queues); setup() leaves *state NULL when O_DIRECT is asked for and the
 * file system refuses it, and the test skips.
 *
 * Header-only (every function static inline) because each unit test is
 * built from its one .c file. Include after <cmocka.h>.
 */
#ifndef VDK_TESTS_BLK_ENV_H
#define VDK_TESTS_BLK_ENV_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <vdk/device.h>
#include <vdk/devices/blk.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "guest_ring.h"

/* Guest memory: RAM0 [0, 4 MiB) and RAM1 [4 MiB, 5 MiB), adjacent. */
#define RAM0_SIZE   0x400000ull
#define RAM1_GPA    RAM0_SIZE
#define RAM1_SIZE   0x100000ull
#define RING_GPA(q) ((uint64_t)(q)*0x8000)
#define TABLE_GPA   0x20000ull	/* indirect tables */
#define HDR_GPA	    0x30000ull	/* request headers */
#define STATUS_GPA  0x31000ull	/* status bytes */
#define SEG_GPA	    0x32000ull	/* discard / write-zeroes segments */
#define DATA_GPA    0x100000ull /* data buffers, up to RAM0's end */
#define IMG_SIZE    (1u << 20)
#define IMG_SECTORS (IMG_SIZE / 512)
#define SERIAL	    "vdk-serial-0123"
#define NOT_WRITTEN 0xee

#define F(bit)	    (1ull << (bit))

struct opts {
	const char *dir;
	bool read_only;
	uint16_t num_queues;
	uint16_t queue_size;
	uint64_t img_size;
	enum vdk_blk_io_mode io_mode;
	bool direct;
	bool single_thread;
};

struct t {
	struct opts o;
	char path[64];
	int img_fd;
	struct vdk_mem *mem;
	struct vdk_blk *blk;
	struct vdk_device *dev;
	struct vdk_interrupt irq;
	unsigned used_signals[2];
	unsigned needs_reset;
	struct vdk_virtq q[2];
	struct vdk_virtq *qp[2];
	struct guest_ring gr[2];
	uint64_t features;
};

/* Messages at VDK_LOG_WARN or worse, counted by quiet_sink(). */
static unsigned warn_logs;

static inline void quiet_sink(void *opaque, enum vdk_log_level level,
			      const char *module, const char *msg)
{
	(void)opaque;
	(void)module;
	(void)msg;
	if (level <= VDK_LOG_WARN)
		warn_logs++;
}

static inline void count_used(void *opaque, uint16_t queue)
{
	struct t *t = opaque;

	assert_true(queue < 2);
	t->used_signals[queue]++;
}

static inline void count_needs_reset(void *opaque)
{
	((struct t *)opaque)->needs_reset++;
}

static const struct vdk_interrupt_ops irq_ops = {
	.signal_used_queue = count_used,
	.set_needs_reset = count_needs_reset,
};

/* Byte @off of the host image as the tests first write it. */
static inline uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + off / 512 + 1);
}

static inline int make_image(const char *dir, uint64_t size, char *path,
			     size_t path_len)
{
	uint8_t *buf = malloc(size ? size : 1);
	int fd;

	assert_non_null(buf);
	snprintf(path, path_len, "%s/vdk-blk-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = pattern(i);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	free(buf);
	return fd;
}

static inline void queue_up(struct t *t, uint16_t i)
{
	uint16_t size = t->o.queue_size ? t->o.queue_size : 256;

	assert_int_equal(guest_ring_init(&t->gr[i], t->mem, size, RING_GPA(i)),
			 0);
	assert_int_equal(vdk_virtq_init(&t->q[i], size, i), 0);
	assert_int_equal(vdk_virtq_set_addrs(&t->q[i], t->gr[i].desc_gpa,
					     t->gr[i].avail_gpa,
					     t->gr[i].used_gpa),
			 0);
	vdk_virtq_set_ready(&t->q[i], true);
	assert_int_equal(vdk_virtq_activate(&t->q[i], t->mem, t->features), 0);
	t->qp[i] = &t->q[i];
}

/* Does the file system under @dir accept O_DIRECT (tmpfs: Linux >= 6.6)? */
static inline bool direct_ok(const char *dir)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s/vdk-blk-dio-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	fd = open(path, O_RDWR | O_DIRECT);
	unlink(path);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static inline int setup(void **state)
{
	const struct opts *o = *state;
	struct t *t;
	int err;

	if (o->direct && !direct_ok(o->dir ? o->dir : "/dev/shm")) {
		*state = NULL; /* the test skips */
		return 0;
	}
	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->o = *o;
	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_DEBUG);
	t->img_fd = make_image(o->dir ? o->dir : "/dev/shm",
			       o->img_size ? o->img_size : IMG_SIZE, t->path,
			       sizeof(t->path));
	t->mem = vdk_mem_new(&err);
	assert_non_null(t->mem);
	assert_int_equal(vdk_mem_add_memfd(t->mem, 0, RAM0_SIZE, "ram0"), 0);
	assert_int_equal(vdk_mem_add_memfd(t->mem, RAM1_GPA, RAM1_SIZE, "ram1"),
			 0);

	struct vdk_blk_config cfg = {
		.path = t->path,
		.read_only = o->read_only,
		.serial = SERIAL,
		.num_queues = o->num_queues,
		.queue_size = o->queue_size,
		.io_mode = o->io_mode,
		.direct = o->direct,
		.single_thread = o->single_thread,
	};
	t->blk = vdk_blk_new(&cfg, NULL);
	assert_non_null(t->blk);
	t->dev = vdk_blk_device(t->blk);
	assert_ptr_equal(vdk_blk_from_device(t->dev), t->blk);

	/* Everything offered except EVENT_IDX, so every completion is
	 * notified and can be counted. */
	t->features = t->dev->ops->features(t->dev->impl) &
		      ~F(VIRTIO_RING_F_EVENT_IDX);
	assert_int_equal(vdk_device_ack_features(t->dev, t->features), 0);
	vdk_interrupt_init_callback(&t->irq, &irq_ops, t);
	for (uint16_t i = 0; i < t->dev->num_queues; i++)
		queue_up(t, i);
	assert_int_equal(vdk_device_activate(t->dev, t->mem, &t->irq, t->qp),
			 0);
	*state = t;
	return 0;
}

static inline int teardown(void **state)
{
	struct t *t = *state;

	if (!t)
		return 0;
	vdk_blk_free(t->blk);
	vdk_mem_free(t->mem);
	close(t->img_fd);
	unlink(t->path);
	free(t);
	vdk_log_set_sink(NULL, NULL, VDK_LOG_WARN);
	return 0;
}

/* ---- request helpers ---------------------------------------------------- */

static inline void put_hdr(struct t *t, uint64_t gpa, uint32_t type,
			   uint64_t sector)
{
	struct virtio_blk_outhdr h = {.type = htole32(type),
				      .sector = htole64(sector)};

	assert_int_equal(vdk_mem_write(t->mem, gpa, &h, sizeof(h)), 0);
}

static inline void set_status(struct t *t, uint64_t gpa)
{
	uint8_t s = NOT_WRITTEN;

	assert_int_equal(vdk_mem_write(t->mem, gpa, &s, 1), 0);
}

static inline uint8_t get_status(struct t *t, uint64_t gpa)
{
	uint8_t s;

	assert_int_equal(vdk_mem_read(t->mem, gpa, &s, 1), 0);
	return s;
}

/* Put a chain on queue @q, notify, wait for the device; return used len. */
static inline uint32_t run(struct t *t, uint16_t q, const struct guest_buf *b,
			   uint16_t n)
{
	int head = guest_ring_add_chain(&t->gr[q], b, n);
	uint32_t id, len;

	assert_true(head >= 0);
	vdk_device_queue_notify(t->dev, q);
	assert_true(vdk_blk_wait_idle(t->blk) >= 0);
	assert_int_equal(vdk_blk_in_flight(t->blk), 0);
	assert_int_equal(guest_ring_get_used(&t->gr[q], &id, &len), 1);
	assert_int_equal(id, (uint32_t)head);
	return len;
}

/* Header, one data buffer of @len bytes at DATA_GPA, status. Returns the
 * status byte; *used gets the used length. */
static inline uint8_t rw(struct t *t, uint16_t q, uint32_t type,
			 uint64_t sector, uint32_t len, uint32_t *used)
{
	bool in = type != VIRTIO_BLK_T_OUT;
	struct guest_buf b[3] = {
		{HDR_GPA, 16, false},
		{DATA_GPA, len, in},
		{STATUS_GPA, 1, true},
	};
	uint32_t u;

	put_hdr(t, HDR_GPA, type, sector);
	set_status(t, STATUS_GPA);
	if (len)
		u = run(t, q, b, 3);
	else
		u = run(t, q, (struct guest_buf[]){b[0], b[2]}, 2);
	if (used)
		*used = u;
	return get_status(t, STATUS_GPA);
}

static inline void fill_guest(struct t *t, uint64_t gpa, uint32_t len,
			      uint8_t seed)
{
	uint8_t *p = vdk_mem_translate(t->mem, gpa, len);

	assert_non_null(p);
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13 + i / 97);
}

static inline void assert_image(struct t *t, uint64_t off, const void *want,
				size_t len)
{
	uint8_t *got = malloc(len);

	assert_non_null(got);
	assert_int_equal(pread(t->img_fd, got, len, (off_t)off), (ssize_t)len);
	assert_memory_equal(got, want, len);
	free(got);
}

static inline void assert_image_pattern(struct t *t, uint64_t off, size_t len)
{
	uint8_t *want = malloc(len);

	assert_non_null(want);
	for (size_t i = 0; i < len; i++)
		want[i] = pattern(off + i);
	assert_image(t, off, want, len);
	free(want);
}

static inline void assert_image_zero(struct t *t, uint64_t off, size_t len)
{
	uint8_t *zero = calloc(1, len);

	assert_non_null(zero);
	assert_image(t, off, zero, len);
	free(zero);
}

static inline void assert_guest_pattern(struct t *t, uint64_t gpa, uint64_t off,
					uint32_t len)
{
	const uint8_t *p = vdk_mem_translate(t->mem, gpa, len);

	assert_non_null(p);
	for (uint32_t i = 0; i < len; i++)
		assert_int_equal(p[i], pattern(off + i));
}

#define T(fn, o)                                                               \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,          \
						 (void *)&(o))

#endif /* VDK_TESTS_BLK_ENV_H */
