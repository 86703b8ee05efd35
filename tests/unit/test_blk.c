/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/devices/blk.c: virtio-blk (virtio 1.2 §5.2) over an
 * image file in /dev/shm (tmpfs) or /tmp, with guest memory from vdk_mem and
 * requests written by the mock driver (guest_ring), driven through the
 * device framework. The request tests run in both I/O modes: synchronous
 * (what VDK_BLK_IO_AUTO picks on tmpfs) and io_uring, and some with
 * O_DIRECT. Each request test checks the status byte, the used
 * length and the bytes on the host image; the error tests check that bad
 * requests never touch the image and never stop the queue. The device
 * conformance suite runs at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <vdk/device.h>
#include <vdk/devices/blk.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "conformance.h"
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

static unsigned warn_logs;

static void quiet_sink(void *opaque, enum vdk_log_level level,
		       const char *module, const char *msg)
{
	(void)opaque;
	(void)module;
	(void)msg;
	if (level <= VDK_LOG_WARN)
		warn_logs++;
}

static void count_used(void *opaque, uint16_t queue)
{
	struct t *t = opaque;

	assert_true(queue < 2);
	t->used_signals[queue]++;
}

static void count_needs_reset(void *opaque)
{
	((struct t *)opaque)->needs_reset++;
}

static const struct vdk_interrupt_ops irq_ops = {
	.signal_used_queue = count_used,
	.set_needs_reset = count_needs_reset,
};

/* Byte @off of the host image as the tests first write it. */
static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + off / 512 + 1);
}

static int make_image(const char *dir, uint64_t size, char *path,
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

static void queue_up(struct t *t, uint16_t i)
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
static bool direct_ok(const char *dir)
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

static int setup(void **state)
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
	assert_int_equal(vdk_blk_new(&t->blk, &cfg), 0);
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

static int teardown(void **state)
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

static void put_hdr(struct t *t, uint64_t gpa, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = {.type = htole32(type),
				      .sector = htole64(sector)};

	assert_int_equal(vdk_mem_write(t->mem, gpa, &h, sizeof(h)), 0);
}

static void set_status(struct t *t, uint64_t gpa)
{
	uint8_t s = NOT_WRITTEN;

	assert_int_equal(vdk_mem_write(t->mem, gpa, &s, 1), 0);
}

static uint8_t get_status(struct t *t, uint64_t gpa)
{
	uint8_t s;

	assert_int_equal(vdk_mem_read(t->mem, gpa, &s, 1), 0);
	return s;
}

/* Put a chain on queue @q, notify, wait for the device; return used len. */
static uint32_t run(struct t *t, uint16_t q, const struct guest_buf *b,
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
static uint8_t rw(struct t *t, uint16_t q, uint32_t type, uint64_t sector,
		  uint32_t len, uint32_t *used)
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

static void fill_guest(struct t *t, uint64_t gpa, uint32_t len, uint8_t seed)
{
	uint8_t *p = vdk_mem_translate(t->mem, gpa, len);

	assert_non_null(p);
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13 + i / 97);
}

static void assert_image(struct t *t, uint64_t off, const void *want,
			 size_t len)
{
	uint8_t *got = malloc(len);

	assert_non_null(got);
	assert_int_equal(pread(t->img_fd, got, len, (off_t)off), (ssize_t)len);
	assert_memory_equal(got, want, len);
	free(got);
}

static void assert_image_pattern(struct t *t, uint64_t off, size_t len)
{
	uint8_t *want = malloc(len);

	assert_non_null(want);
	for (size_t i = 0; i < len; i++)
		want[i] = pattern(off + i);
	assert_image(t, off, want, len);
	free(want);
}

static void assert_image_zero(struct t *t, uint64_t off, size_t len)
{
	uint8_t *zero = calloc(1, len);

	assert_non_null(zero);
	assert_image(t, off, zero, len);
	free(zero);
}

static void assert_guest_pattern(struct t *t, uint64_t gpa, uint64_t off,
				 uint32_t len)
{
	const uint8_t *p = vdk_mem_translate(t->mem, gpa, len);

	assert_non_null(p);
	for (uint32_t i = 0; i < len; i++)
		assert_int_equal(p[i], pattern(off + i));
}

struct seg {
	uint64_t sector;
	uint32_t num;
	uint32_t flags;
};

static uint8_t dwz(struct t *t, uint32_t type, const struct seg *s, uint32_t n,
		   uint32_t extra_bytes);

/* ---- IN / OUT ----------------------------------------------------------- */

static void test_read_pattern(void **state)
{
	struct t *t = *state;
	uint32_t used;

	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 10, 2048, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 2048 + 1);
	assert_guest_pattern(t, DATA_GPA, 10 * 512, 2048);
	/* the last sector */
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 512, NULL),
			 VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, IMG_SIZE - 512, 512);
	assert_int_equal(vdk_blk_stats(t->blk).reads, 2);
	assert_int_equal(vdk_blk_stats(t->blk).bytes_read, 2048 + 512);
	assert_int_equal(t->used_signals[0], 2);
}

static void test_write_verify(void **state)
{
	struct t *t = *state;
	const uint8_t *src;
	uint32_t used;

	fill_guest(t, DATA_GPA, 4096, 0x5a);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, 100, 4096, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	src = vdk_mem_translate(t->mem, DATA_GPA, 4096);
	assert_image(t, 100 * 512, src, 4096);
	/* neighbours untouched */
	assert_image_pattern(t, 99 * 512, 512);
	assert_image_pattern(t, 108 * 512, 512);
	assert_int_equal(vdk_blk_stats(t->blk).bytes_written, 4096);
}

static void test_zero_length_rw(void **state)
{
	struct t *t = *state;
	uint32_t used;

	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 5, 0, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, IMG_SECTORS, 0, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, IMG_SECTORS + 1, 0, &used),
			 VIRTIO_BLK_S_IOERR);
}

static void test_flush(void **state)
{
	struct t *t = *state;
	uint32_t used;

	fill_guest(t, DATA_GPA, 512, 1);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, 0, 512, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_FLUSH, 0, 0, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(vdk_blk_stats(t->blk).flushes, 1);
}

static void test_get_id(void **state)
{
	struct t *t = *state;
	uint8_t want[VIRTIO_BLK_ID_BYTES] = {0}, got[VIRTIO_BLK_ID_BYTES];
	uint32_t used;

	memcpy(want, SERIAL, strlen(SERIAL));
	fill_guest(t, DATA_GPA, 64, 0x77);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_GET_ID, 0, 20, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_int_equal(vdk_mem_read(t->mem, DATA_GPA, got, 20), 0);
	assert_memory_equal(got, want, 20);

	/* A shorter buffer gets the first bytes only. */
	fill_guest(t, DATA_GPA, 64, 0x77);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_GET_ID, 0, 8, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 9);
	assert_int_equal(vdk_mem_read(t->mem, DATA_GPA, got, 9), 0);
	assert_memory_equal(got, want, 8);
	assert_int_equal(got[8], (uint8_t)(0x77 + 8 * 13));
}

static void test_read_only(void **state)
{
	struct t *t = *state;
	uint64_t f = t->dev->ops->features(t->dev->impl);
	uint32_t used;

	assert_true(f & F(VIRTIO_BLK_F_RO));
	assert_false(f & F(VIRTIO_BLK_F_DISCARD));
	assert_false(f & F(VIRTIO_BLK_F_WRITE_ZEROES));
	fill_guest(t, DATA_GPA, 1024, 3);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, 0, 1024, &used),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_image_pattern(t, 0, 1024);
	/* reads and flushes still work */
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 0, 1024, NULL),
			 VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 0, 1024);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_FLUSH, 0, 0, NULL),
			 VIRTIO_BLK_S_OK);
	/* discard and write-zeroes modify the image too */
	const struct seg s[] = {{0, 2, 0}};
	assert_int_equal(dwz(t, VIRTIO_BLK_T_DISCARD, s, 1, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(t, VIRTIO_BLK_T_WRITE_ZEROES, s, 1, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_image_pattern(t, 0, 1024);
	assert_int_equal(vdk_blk_stats(t->blk).io_errors, 3);
}

static void test_past_end(void **state)
{
	struct t *t = *state;
	struct stat st;
	uint32_t used;

	fill_guest(t, DATA_GPA, 1024, 9);
	assert_int_equal(
		rw(t, 0, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 1024, &used),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1); /* no data was written */
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, IMG_SECTORS, 512, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(
		rw(t, 0, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, 1024, NULL),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(fstat(t->img_fd, &st), 0);
	assert_int_equal(st.st_size, IMG_SIZE);
	assert_image_pattern(t, IMG_SIZE - 512, 512);
}

/* The image shrinks under the device: reads of the lost tail come back
 * short, which is an I/O error (not resubmitted). */
static void test_short_read(void **state)
{
	struct t *t = *state;
	uint32_t used;

	assert_int_equal(ftruncate(t->img_fd, IMG_SIZE - 1024), 0);
	assert_int_equal(
		rw(t, 0, VIRTIO_BLK_T_IN, IMG_SECTORS - 4, 2048, &used),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 2049);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, IMG_SECTORS - 2, 512, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, IMG_SECTORS - 3, 512, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(vdk_blk_stats(t->blk).io_errors, 2);
}

static void test_sector_overflow(void **state)
{
	struct t *t = *state;

	/* sector + count wraps */
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, UINT64_MAX, 512, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, UINT64_MAX - 1, 1024, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* sector * 512 wraps to a small offset */
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, 1ull << 55, 512, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_image_pattern(t, 0, 4096);
}

static void test_not_sector_multiple(void **state)
{
	struct t *t = *state;

	fill_guest(t, DATA_GPA, 1024, 4);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 0, 100, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, 0, 513, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_image_pattern(t, 0, 1024);
}

static void test_unknown_type(void **state)
{
	struct t *t = *state;
	const uint32_t types[] = {2, 3, VIRTIO_BLK_T_SECURE_ERASE, 0x1234,
				  0x80000000u};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		assert_int_equal(rw(t, 0, types[i], 0, 0, NULL),
				 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(vdk_blk_stats(t->blk).unsupported, 5);
}

/* ---- DISCARD / WRITE_ZEROES --------------------------------------------- */

static uint8_t dwz(struct t *t, uint32_t type, const struct seg *s, uint32_t n,
		   uint32_t extra_bytes)
{
	for (uint32_t i = 0; i < n; i++) {
		struct virtio_blk_discard_write_zeroes w = {
			.sector = htole64(s[i].sector),
			.num_sectors = htole32(s[i].num),
			.flags = htole32(s[i].flags),
		};
		assert_int_equal(
			vdk_mem_write(t->mem, SEG_GPA + 16 * i, &w, sizeof(w)),
			0);
	}
	struct guest_buf b[3] = {
		{HDR_GPA, 16, false},
		{SEG_GPA, 16 * n + extra_bytes, false},
		{STATUS_GPA, 1, true},
	};
	put_hdr(t, HDR_GPA, type, 0);
	set_status(t, STATUS_GPA);
	assert_int_equal(run(t, 0, b, 3), 1);
	return get_status(t, STATUS_GPA);
}

static void test_discard(void **state)
{
	struct t *t = *state;
	const struct seg two[] = {{8, 8, 0}, {64, 16, 0}};

	assert_int_equal(dwz(t, VIRTIO_BLK_T_DISCARD, two, 2, 0),
			 VIRTIO_BLK_S_OK);
	/* tmpfs deallocates (punches) the ranges: they read back as zero */
	assert_image_zero(t, 8 * 512, 8 * 512);
	assert_image_zero(t, 64 * 512, 16 * 512);
	assert_image_pattern(t, 0, 8 * 512);
	assert_image_pattern(t, 16 * 512, 48 * 512);
	assert_image_pattern(t, 80 * 512, 512);
	/* and through the device */
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 8, 4096, NULL),
			 VIRTIO_BLK_S_OK);
	uint8_t zero[4096] = {0};
	assert_memory_equal(vdk_mem_translate(t->mem, DATA_GPA, 4096), zero,
			    4096);
	assert_int_equal(vdk_blk_stats(t->blk).discards, 1);
}

static void test_discard_refusals(void **state)
{
	struct t *t = *state;
	struct seg s[VDK_BLK_MAX_DISCARD_SEG + 1];

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		s[i] = (struct seg){i * 2, 1, 0};
	/* UNMAP on a discard, unknown flags: UNSUPP (§5.2.6.2) */
	s[0].flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	assert_int_equal(dwz(t, VIRTIO_BLK_T_DISCARD, s, 1, 0),
			 VIRTIO_BLK_S_UNSUPP);
	s[0].flags = 0x2;
	assert_int_equal(dwz(t, VIRTIO_BLK_T_WRITE_ZEROES, s, 1, 0),
			 VIRTIO_BLK_S_UNSUPP);
	s[0].flags = 0;
	/* beyond the capacity, wrapping, above the sector limit */
	s[1] = (struct seg){IMG_SECTORS - 1, 2, 0};
	assert_int_equal(dwz(t, VIRTIO_BLK_T_DISCARD, s, 2, 0),
			 VIRTIO_BLK_S_IOERR);
	s[1] = (struct seg){UINT64_MAX, 1, 0};
	assert_int_equal(dwz(t, VIRTIO_BLK_T_WRITE_ZEROES, s, 2, 0),
			 VIRTIO_BLK_S_IOERR);
	s[1] = (struct seg){0, VDK_BLK_MAX_WRITE_ZEROES_SECTORS + 1, 0};
	assert_int_equal(dwz(t, VIRTIO_BLK_T_WRITE_ZEROES, s, 2, 0),
			 VIRTIO_BLK_S_IOERR);
	s[1] = (struct seg){2, 1, 0};
	/* too many segments, a partial segment, no segment */
	assert_int_equal(
		dwz(t, VIRTIO_BLK_T_DISCARD, s, VDK_BLK_MAX_DISCARD_SEG + 1, 0),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(t, VIRTIO_BLK_T_DISCARD, s, 1, 8),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(t, VIRTIO_BLK_T_DISCARD, s, 0, 0),
			 VIRTIO_BLK_S_IOERR);
	/* nothing was deallocated by any refused request */
	assert_image_pattern(t, 0, 8 * 512);
	assert_int_equal(vdk_blk_stats(t->blk).discards, 0);
}

static void wz_checks(struct t *t)
{
	/* 300 sectors: more than one 64 KiB chunk for the write fallback */
	const struct seg s[] = {{4, 4, 0},
				{20, 300, 0},
				{400, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP},
				{500, 0, 0}};

	assert_int_equal(dwz(t, VIRTIO_BLK_T_WRITE_ZEROES, s, 4, 0),
			 VIRTIO_BLK_S_OK);
	assert_image_pattern(t, 0, 4 * 512);
	assert_image_zero(t, 4 * 512, 4 * 512);
	assert_image_pattern(t, 8 * 512, 12 * 512);
	assert_image_zero(t, 20 * 512, 300 * 512);
	assert_image_pattern(t, 320 * 512, 80 * 512);
	assert_image_zero(t, 400 * 512, 8 * 512);
	assert_image_pattern(t, 408 * 512, 200 * 512);
	/* a second request takes the path the first one learned */
	const struct seg again[] = {{1000, 3, 0}};
	assert_int_equal(dwz(t, VIRTIO_BLK_T_WRITE_ZEROES, again, 1, 0),
			 VIRTIO_BLK_S_OK);
	assert_image_zero(t, 1000 * 512, 3 * 512);
	assert_image_pattern(t, 1003 * 512, 512);
	assert_int_equal(vdk_blk_stats(t->blk).write_zeroes, 2);
	struct stat st;
	assert_int_equal(fstat(t->img_fd, &st), 0);
	assert_int_equal(st.st_size, IMG_SIZE);
}

/* tmpfs: no FALLOC_FL_ZERO_RANGE, so zeroes are written */
static void test_write_zeroes_tmpfs(void **state)
{
	wz_checks(*state);
}

/* ext4 (/tmp here): FALLOC_FL_ZERO_RANGE and PUNCH_HOLE */
static void test_write_zeroes_tmp(void **state)
{
	wz_checks(*state);
}

/* ---- chain shapes ------------------------------------------------------- */

static void test_multi_segment(void **state)
{
	struct t *t = *state;
	uint8_t s;

	/* IN: header split 8 + 8, data 512 + 1000 + 535 + (1 byte shared
	 * with the status byte in the last descriptor). */
	struct guest_buf in[] = {
		{HDR_GPA, 8, false},
		{HDR_GPA + 8, 8, false},
		{DATA_GPA, 512, true},
		{DATA_GPA + 0x1000, 1000, true},
		{DATA_GPA + 0x2000, 535, true},
		{DATA_GPA + 0x3000, 2, true},
	};
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 3);
	assert_int_equal(run(t, 0, in, 6), 2048 + 1);
	assert_int_equal(get_status(t, DATA_GPA + 0x3001), VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 3 * 512, 512);
	assert_guest_pattern(t, DATA_GPA + 0x1000, 3 * 512 + 512, 1000);
	assert_guest_pattern(t, DATA_GPA + 0x2000, 3 * 512 + 1512, 535);
	assert_guest_pattern(t, DATA_GPA + 0x3000, 3 * 512 + 2047, 1);

	/* OUT: header and the first data bytes in one descriptor, the rest
	 * in three more. */
	fill_guest(t, DATA_GPA + 16, 1536, 0x21);
	put_hdr(t, DATA_GPA, VIRTIO_BLK_T_OUT, 40);
	struct guest_buf out[] = {
		{DATA_GPA, 16 + 100, false},
		{DATA_GPA + 116, 412, false},
		{DATA_GPA + 528, 1024, false},
		{STATUS_GPA, 1, true},
	};
	set_status(t, STATUS_GPA);
	assert_int_equal(run(t, 0, out, 4), 1);
	s = get_status(t, STATUS_GPA);
	assert_int_equal(s, VIRTIO_BLK_S_OK);
	assert_image(t, 40 * 512,
		     vdk_mem_translate(t->mem, DATA_GPA + 16, 1536), 1536);
}

static void test_region_crossing(void **state)
{
	struct t *t = *state;
	/* one 4 KiB descriptor across the RAM0/RAM1 boundary: two iovecs */
	uint64_t gpa = RAM1_GPA - 1024;
	struct guest_buf b[] = {
		{HDR_GPA, 16, false},
		{gpa, 4096, true},
		{STATUS_GPA, 1, true},
	};

	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 200);
	set_status(t, STATUS_GPA);
	assert_int_equal(run(t, 0, b, 3), 4097);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, gpa, 200 * 512, 1024);
	assert_guest_pattern(t, RAM1_GPA, 200 * 512 + 1024, 3072);

	/* and back out from there */
	b[1].writable = false;
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_OUT, 600);
	assert_int_equal(run(t, 0, b, 3), 1);
	assert_image(t, 600 * 512, vdk_mem_translate(t->mem, gpa, 1024), 1024);
	assert_image(t, 600 * 512 + 1024,
		     vdk_mem_translate(t->mem, RAM1_GPA, 3072), 3072);
}

static void test_indirect(void **state)
{
	struct t *t = *state;
	struct guest_buf b[] = {
		{HDR_GPA, 16, false},
		{DATA_GPA, 512, true},
		{DATA_GPA + 512, 512, true},
		{STATUS_GPA, 1, true},
	};
	uint32_t id, len;
	int head;

	assert_true(t->features & F(VIRTIO_RING_F_INDIRECT_DESC));
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 77);
	set_status(t, STATUS_GPA);
	head = guest_ring_add_indirect(&t->gr[0], TABLE_GPA, b, 4);
	assert_true(head >= 0);
	vdk_device_queue_notify(t->dev, 0);
	/* completed by now (synchronous) or here (io_uring) */
	assert_true(vdk_blk_wait_idle(t->blk) >= 0);
	assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
	assert_int_equal(id, (uint32_t)head);
	assert_int_equal(len, 1025);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 77 * 512, 1024);
}

static void test_malformed(void **state)
{
	struct t *t = *state;
	unsigned logs = warn_logs;

	/* header of 8 bytes: IOERR in the status byte */
	struct guest_buf short_hdr[] = {{HDR_GPA, 8, false},
					{STATUS_GPA, 1, true}};
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 0);
	set_status(t, STATUS_GPA);
	assert_int_equal(run(t, 0, short_hdr, 2), 1);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_IOERR);

	/* no readable part at all */
	struct guest_buf only_w[] = {{DATA_GPA, 513, true}};
	fill_guest(t, DATA_GPA, 513, 5);
	assert_int_equal(run(t, 0, only_w, 1), 1);
	assert_int_equal(get_status(t, DATA_GPA + 512), VIRTIO_BLK_S_IOERR);

	/* no writable part: nowhere for a status, returned with 0 bytes */
	struct guest_buf no_status[] = {{HDR_GPA, 16, false},
					{DATA_GPA, 512, false}};
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_OUT, 0);
	assert_int_equal(run(t, 0, no_status, 2), 0);
	assert_image_pattern(t, 0, 512);

	/* zero-length writable descriptor only: same */
	struct guest_buf empty_w[] = {{HDR_GPA, 16, false},
				      {STATUS_GPA, 0, true}};
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 0);
	assert_int_equal(run(t, 0, empty_w, 2), 0);

	assert_int_equal(vdk_blk_stats(t->blk).malformed, 4);
	assert_true(warn_logs > logs);
	assert_int_equal(t->needs_reset, 0);
	/* the queue still works */
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 1, 512, NULL),
			 VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 512, 512);
}

static void test_virtq_error(void **state)
{
	struct t *t = *state;
	uint16_t used = guest_ring_used_idx(&t->gr[0]);

	/* a chain whose next index is outside the table */
	assert_int_equal(guest_ring_set_desc(&t->gr[0], 0, HDR_GPA, 16,
					     VRING_DESC_F_NEXT, 999),
			 0);
	assert_int_equal(guest_ring_push(&t->gr[0], 0), 0);
	vdk_device_queue_notify(t->dev, 0);
	assert_int_equal(t->needs_reset, 1);
	assert_true(vdk_virtq_is_broken(&t->q[0]));
	/* later notifications are ignored, nothing is returned */
	guest_ring_add_chain(&t->gr[0],
			     (struct guest_buf[]){{HDR_GPA, 16, false},
						  {STATUS_GPA, 1, true}},
			     2);
	vdk_device_queue_notify(t->dev, 0);
	assert_int_equal(vdk_blk_wait_idle(t->blk), 0);
	assert_int_equal(t->needs_reset, 1);
	assert_int_equal(guest_ring_used_idx(&t->gr[0]), used);
	/* reset clears it */
	assert_int_equal(vdk_device_reset(t->dev), 0);
	assert_int_equal(t->dev->state, VDK_DEVICE_RESET);
}

/* ---- asynchronous completion ------------------------------------------- */

static void test_completion_fd(void **state)
{
	struct t *t = *state;
	int fd = vdk_blk_completion_fd(t->blk, 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint32_t id, len;
	int head, done = 0;

	assert_true(fd >= 0);
	assert_int_equal(vdk_blk_completion_fd(t->blk, 1), -EINVAL);
	assert_int_equal(vdk_blk_process_completions(t->blk, 1), -EINVAL);
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 33);
	set_status(t, STATUS_GPA);
	head = guest_ring_add_chain(&t->gr[0],
				    (struct guest_buf[]){{HDR_GPA, 16, false},
							 {DATA_GPA, 8192, true},
							 {STATUS_GPA, 1, true}},
				    3);
	vdk_device_queue_notify(t->dev, 0);
	/* submitted, not completed: nothing in the used ring yet */
	assert_int_equal(vdk_blk_in_flight(t->blk), 1);
	assert_int_equal(guest_ring_used_idx(&t->gr[0]), 0);
	assert_int_equal(get_status(t, STATUS_GPA), NOT_WRITTEN);
	assert_int_equal(t->used_signals[0], 0);
	while (!done) {
		assert_int_equal(poll(&p, 1, 5000), 1);
		done = vdk_blk_process_completions(t->blk, 0);
		assert_true(done >= 0);
	}
	assert_int_equal(done, 1);
	assert_int_equal(vdk_blk_in_flight(t->blk), 0);
	assert_int_equal(t->used_signals[0], 1);
	assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
	assert_int_equal(id, (uint32_t)head);
	assert_int_equal(len, 8193);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 33 * 512, 8192);
	/* nothing left: the fd was drained and no completion is pending */
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(vdk_blk_process_completions(t->blk, 0), 0);
}

/* More chains than request slots (a driver reusing heads still in flight):
 * the extra ones wait in the available ring and start as slots free up. */
static void test_slots_exhausted(void **state)
{
	struct t *t = *state;
	const uint16_t n = 4; /* queue size: one indirect descriptor each */
	uint32_t id, len;
	int heads[4];

	for (uint16_t i = 0; i < n; i++) {
		uint64_t st = STATUS_GPA + i;
		struct guest_buf b[] = {{HDR_GPA + 16 * i, 16, false},
					{DATA_GPA + 512 * i, 512, true},
					{st, 1, true}};

		put_hdr(t, HDR_GPA + 16 * i, VIRTIO_BLK_T_IN, i);
		set_status(t, st);
		heads[i] = guest_ring_add_indirect(&t->gr[0],
						   TABLE_GPA + 0x100 * i, b, 3);
		assert_true(heads[i] >= 0);
	}
	vdk_device_queue_notify(t->dev, 0);
	assert_int_equal(vdk_blk_in_flight(t->blk), n);
	for (uint16_t i = 0; i < n; i++)
		assert_int_equal(guest_ring_push(&t->gr[0], (uint16_t)heads[i]),
				 0);
	vdk_device_queue_notify(t->dev, 0);
	/* every slot taken: the repeats stay in the available ring */
	assert_int_equal(vdk_blk_in_flight(t->blk), n);
	assert_int_equal(vdk_blk_wait_idle(t->blk), 2 * n);
	assert_int_equal(guest_ring_used_idx(&t->gr[0]), 2 * n);
	for (uint16_t i = 0; i < 2 * n; i++) {
		assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
		assert_int_equal(id, (uint32_t)heads[i % n]);
		assert_int_equal(len, 513);
	}
	for (uint16_t i = 0; i < n; i++) {
		assert_guest_pattern(t, DATA_GPA + 512 * i, 512 * i, 512);
		assert_int_equal(get_status(t, STATUS_GPA + i),
				 VIRTIO_BLK_S_OK);
	}
}

/* An event loop thread polls the completion fd and completes requests
 * while this thread keeps submitting (the per-queue lock at work). */
struct loop {
	struct vdk_blk *blk;
	volatile bool stop;
	int completed;
};

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct pollfd p = {.fd = vdk_blk_completion_fd(l->blk, 0),
			   .events = POLLIN};

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		if (poll(&p, 1, 10) > 0)
			l->completed += vdk_blk_process_completions(l->blk, 0);
	}
	return NULL;
}

static void test_event_loop_thread(void **state)
{
	struct t *t = *state;
	struct loop l = {.blk = t->blk};
	const uint16_t per_round = 32, rounds = 20;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, loop_main, &l), 0);
	for (uint16_t r = 0; r < rounds; r++) {
		for (uint16_t i = 0; i < per_round; i++) {
			uint64_t sector = (r * per_round + i) % IMG_SECTORS;
			uint64_t hdr = HDR_GPA + 16 * i;
			struct guest_buf b[] = {
				{hdr, 16, false},
				{DATA_GPA + 0x1000 * i, 4096, true},
				{STATUS_GPA + i, 1, true}};

			put_hdr(t, hdr, VIRTIO_BLK_T_IN, sector);
			set_status(t, STATUS_GPA + i);
			assert_true(guest_ring_add_chain(&t->gr[0], b, 3) >= 0);
			if (i % 8 == 7)
				vdk_device_queue_notify(t->dev, 0);
		}
		/* wait for the loop thread to return the whole round */
		uint16_t want = (uint16_t)((r + 1) * per_round);
		for (int spin = 0; guest_ring_used_idx(&t->gr[0]) != want;
		     spin++) {
			assert_true(spin < 500000);
			usleep(10);
		}
		for (uint16_t i = 0; i < per_round; i++) {
			uint32_t id, len;

			assert_int_equal(
				guest_ring_get_used(&t->gr[0], &id, &len), 1);
			assert_int_equal(len, 4097);
			assert_int_equal(get_status(t, STATUS_GPA + i),
					 VIRTIO_BLK_S_OK);
			assert_guest_pattern(
				t, DATA_GPA + 0x1000 * i,
				((r * per_round + i) % IMG_SECTORS) * 512,
				4096);
		}
	}
	__atomic_store_n(&l.stop, true, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(l.completed, per_round * rounds);
	assert_int_equal(vdk_blk_in_flight(t->blk), 0);
}

static void test_sleep_drains(void **state)
{
	struct t *t = *state;
	uint8_t *snap = NULL;
	size_t len = 0;
	uint32_t id, ulen;

	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 50);
	set_status(t, STATUS_GPA);
	guest_ring_add_chain(&t->gr[0],
			     (struct guest_buf[]){{HDR_GPA, 16, false},
						  {DATA_GPA, 65536, true},
						  {STATUS_GPA, 1, true}},
			     3);
	vdk_device_queue_notify(t->dev, 0);
	assert_int_equal(vdk_device_sleep(t->dev), 0);
	/* every request finished before sleep returned */
	assert_int_equal(vdk_blk_in_flight(t->blk), 0);
	assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &ulen), 1);
	assert_int_equal(ulen, 65537);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 50 * 512, 65536);
	assert_int_equal(vdk_device_snapshot(t->dev, &snap, &len), 0);
	assert_true(len > 0);
	free(snap);
	vdk_virtq_deactivate(&t->q[0]);
	assert_int_equal(vdk_virtq_activate(&t->q[0], t->mem, t->features), 0);
	assert_int_equal(vdk_device_wake(t->dev, NULL, NULL, NULL), 0);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 2, 512, NULL),
			 VIRTIO_BLK_S_OK);
}

/* ---- I/O modes: synchronous, io_uring, O_DIRECT ------------------------- */

/* Put a chain on queue 0 and notify, without waiting for the device. */
static int notify_chain(struct t *t, const struct guest_buf *b, uint16_t n)
{
	int head = guest_ring_add_chain(&t->gr[0], b, n);

	assert_true(head >= 0);
	vdk_device_queue_notify(t->dev, 0);
	return head;
}

/* tmpfs has no non-blocking reads: AUTO picks synchronous reads and
 * writes, and each completes inside queue_notify, before it returns. */
static void test_sync_inline(void **state)
{
	struct t *t = *state;
	struct pollfd p = {.fd = vdk_blk_completion_fd(t->blk, 0),
			   .events = POLLIN};
	struct vdk_blk_io_info info = vdk_blk_io_info(t->blk);
	uint32_t id, len;
	int head;

	assert_int_equal(info.mode, VDK_BLK_IO_SYNC);
	assert_false(info.direct);
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 21);
	set_status(t, STATUS_GPA);
	head = notify_chain(t,
			    (struct guest_buf[]){{HDR_GPA, 16, false},
						 {DATA_GPA, 4096, true},
						 {STATUS_GPA, 1, true}},
			    3);
	/* done already: no wait_idle, no completion to process */
	assert_int_equal(vdk_blk_in_flight(t->blk), 0);
	assert_int_equal(t->used_signals[0], 1);
	assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
	assert_int_equal(id, (uint32_t)head);
	assert_int_equal(len, 4097);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 21 * 512, 4096);
	assert_int_equal(poll(&p, 1, 0), 0);

	fill_guest(t, DATA_GPA, 1024, 0x31);
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_OUT, 300);
	set_status(t, STATUS_GPA);
	notify_chain(t,
		     (struct guest_buf[]){{HDR_GPA, 16, false},
					  {DATA_GPA, 1024, false},
					  {STATUS_GPA, 1, true}},
		     3);
	assert_int_equal(vdk_blk_in_flight(t->blk), 0);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_image(t, 300 * 512, vdk_mem_translate(t->mem, DATA_GPA, 1024),
		     1024);
	info = vdk_blk_io_info(t->blk);
	assert_int_equal(info.sync_rw, 2);
	assert_int_equal(info.async_rw, 0);
	assert_int_equal(vdk_blk_stats(t->blk).reads, 1);
	assert_int_equal(vdk_blk_stats(t->blk).writes, 1);
}

/* Several chains in one notification, the last a FLUSH: the writes
 * complete inline, the flush through io_uring once fdatasync is done; the
 * flush's status is written only then. */
static void test_sync_batch_flush(void **state)
{
	struct t *t = *state;
	const uint16_t n = 20; /* more than one pop batch */
	uint32_t id, len;

	for (uint16_t i = 0; i < n; i++) {
		fill_guest(t, DATA_GPA + 0x1000 * i, 512, (uint8_t)i);
		put_hdr(t, HDR_GPA + 16 * i, VIRTIO_BLK_T_OUT, 1000 + i);
		set_status(t, STATUS_GPA + i);
		assert_true(guest_ring_add_chain(
				    &t->gr[0],
				    (struct guest_buf[]){
					    {HDR_GPA + 16 * i, 16, false},
					    {DATA_GPA + 0x1000 * i, 512, false},
					    {STATUS_GPA + i, 1, true}},
				    3) >= 0);
	}
	put_hdr(t, HDR_GPA + 16 * n, VIRTIO_BLK_T_FLUSH, 0);
	set_status(t, STATUS_GPA + n);
	assert_true(guest_ring_add_chain(
			    &t->gr[0],
			    (struct guest_buf[]){{HDR_GPA + 16 * n, 16, false},
						 {STATUS_GPA + n, 1, true}},
			    2) >= 0);
	vdk_device_queue_notify(t->dev, 0);
	assert_true(vdk_blk_in_flight(t->blk) <= 1); /* only the flush */
	assert_int_equal(vdk_blk_wait_idle(t->blk) >= 0, true);
	for (uint16_t i = 0; i <= n; i++) {
		assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
		assert_int_equal(len, 1);
		assert_int_equal(get_status(t, STATUS_GPA + i),
				 VIRTIO_BLK_S_OK);
	}
	for (uint16_t i = 0; i < n; i++)
		assert_image(
			t, (1000 + i) * 512ull,
			vdk_mem_translate(t->mem, DATA_GPA + 0x1000 * i, 512),
			512);
	assert_int_equal(vdk_blk_stats(t->blk).flushes, 1);
	assert_int_equal(vdk_blk_io_info(t->blk).sync_rw, n);
}

/* Add a one-sector read as an indirect chain (one ring descriptor). */
static int add_read_indirect(struct t *t, uint16_t i, uint64_t sector)
{
	uint64_t st = STATUS_GPA + i;
	struct guest_buf b[] = {{HDR_GPA + 16 * i, 16, false},
				{DATA_GPA + 512 * i, 512, true},
				{st, 1, true}};
	int head;

	put_hdr(t, HDR_GPA + 16 * i, VIRTIO_BLK_T_IN, sector);
	set_status(t, st);
	head = guest_ring_add_indirect(&t->gr[0], TABLE_GPA + 0x100 * i, b, 3);
	assert_true(head >= 0);
	return head;
}

/* Synchronous requests free their slot at once, so a driver refilling the
 * ring could keep queue_notify going forever: after queue_size chains it
 * stops, leaves notifications off and makes the completion fd readable;
 * vdk_blk_process_completions() goes on from there. */
static void test_sync_yield(void **state)
{
	struct t *t = *state;
	struct pollfd p = {.fd = vdk_blk_completion_fd(t->blk, 0),
			   .events = POLLIN};
	uint32_t id, len;

	for (uint16_t i = 0; i < 4; i++)
		add_read_indirect(t, i, i);
	vdk_device_queue_notify(t->dev, 0);
	assert_int_equal(guest_ring_used_idx(&t->gr[0]), 4);
	for (uint16_t i = 0; i < 4; i++)
		assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
	/* the driver adds more without a notification: none is wanted */
	assert_true(guest_ring_used_flags(&t->gr[0]) & VRING_USED_F_NO_NOTIFY);
	for (uint16_t i = 0; i < 3; i++)
		add_read_indirect(t, i, 10 + i);
	assert_int_equal(poll(&p, 1, 0), 1);
	assert_int_equal(vdk_blk_process_completions(t->blk, 0), 0);
	assert_int_equal(guest_ring_used_idx(&t->gr[0]), 7);
	for (uint16_t i = 0; i < 3; i++) {
		assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
		assert_int_equal(len, 513);
		assert_int_equal(get_status(t, STATUS_GPA + i),
				 VIRTIO_BLK_S_OK);
		assert_guest_pattern(t, DATA_GPA + 512 * i, (10 + i) * 512,
				     512);
	}
	/* caught up: notifications are back on, the fd is quiet */
	assert_false(guest_ring_used_flags(&t->gr[0]) & VRING_USED_F_NO_NOTIFY);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(vdk_blk_io_info(t->blk).sync_rw, 7);
}

/* ext4 has non-blocking buffered reads: AUTO keeps io_uring. */
static void test_auto_ext4(void **state)
{
	struct t *t = *state;
	struct vdk_blk_io_info info = vdk_blk_io_info(t->blk);

	assert_int_equal(info.mode, VDK_BLK_IO_ASYNC);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 8, 4096, NULL),
			 VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 8 * 512, 4096);
	info = vdk_blk_io_info(t->blk);
	assert_int_equal(info.async_rw, 1);
	assert_int_equal(info.sync_rw, 0);
}

/* Explicit modes override the probe. */
static void test_forced_mode(void **state)
{
	struct t *t = *state;
	struct vdk_blk_io_info info = vdk_blk_io_info(t->blk);

	assert_int_equal(info.mode, t->o.io_mode);
	fill_guest(t, DATA_GPA, 2048, 0x66);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, 500, 2048, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 499, 512, NULL),
			 VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA, 499 * 512, 512);
	info = vdk_blk_io_info(t->blk);
	assert_int_equal(t->o.io_mode == VDK_BLK_IO_SYNC ? info.sync_rw
							 : info.async_rw,
			 2);
	assert_int_equal(t->o.io_mode == VDK_BLK_IO_SYNC ? info.async_rw
							 : info.sync_rw,
			 0);
}

/*
 * O_DIRECT: aligned buffers use the O_DIRECT descriptor; buffers whose
 * address or length breaks the alignment go through the buffered one, and
 * every transfer moves the right bytes either way.
 */
static void test_direct(void **state)
{
	struct t *t = *state;
	struct vdk_blk_io_info info;
	uint32_t used;

	if (!t)
		skip(); /* no O_DIRECT on this file system */
	info = vdk_blk_io_info(t->blk);
	assert_true(info.direct);
	assert_true(info.dio_mem_align >= 1 && info.dio_mem_align <= 4096);
	assert_true(info.dio_offset_align >= 512);

	/* aligned: a 4096-byte page-aligned buffer at a 4096-byte offset */
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 16, 4096, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 4097);
	assert_guest_pattern(t, DATA_GPA, 16 * 512, 4096);
	fill_guest(t, DATA_GPA, 8192, 0x19);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, 64, 8192, NULL),
			 VIRTIO_BLK_S_OK);
	assert_image(t, 64 * 512, vdk_mem_translate(t->mem, DATA_GPA, 8192),
		     8192);
	assert_int_equal(vdk_blk_io_info(t->blk).buffered_rw, 0);

	/* buffer address off by 1 (not even 512-aligned) */
	struct guest_buf odd[] = {
		{HDR_GPA, 16, false},
		{DATA_GPA + 1, 4096, true},
		{STATUS_GPA, 1, true},
	};
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_IN, 24);
	set_status(t, STATUS_GPA);
	assert_int_equal(run(t, 0, odd, 3), 4097);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_guest_pattern(t, DATA_GPA + 1, 24 * 512, 4096);
	fill_guest(t, DATA_GPA + 1, 4096, 0x7b);
	odd[1].writable = false;
	put_hdr(t, HDR_GPA, VIRTIO_BLK_T_OUT, 128);
	assert_int_equal(run(t, 0, odd, 3), 1);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_image(t, 128 * 512,
		     vdk_mem_translate(t->mem, DATA_GPA + 1, 4096), 4096);
	/* the header and the first data bytes share a buffer: the data
	 * starts 16 bytes into it */
	fill_guest(t, DATA_GPA + 16, 512, 0x44);
	put_hdr(t, DATA_GPA, VIRTIO_BLK_T_OUT, 256);
	set_status(t, STATUS_GPA);
	assert_int_equal(run(t, 0,
			     (struct guest_buf[]){{DATA_GPA, 16 + 512, false},
						  {STATUS_GPA, 1, true}},
			     2),
			 1);
	assert_int_equal(get_status(t, STATUS_GPA), VIRTIO_BLK_S_OK);
	assert_image(t, 256 * 512,
		     vdk_mem_translate(t->mem, DATA_GPA + 16, 512), 512);
	info = vdk_blk_io_info(t->blk);
	assert_int_equal(info.buffered_rw, 3);
	assert_int_equal(info.sync_rw + info.async_rw, 5);
	/* the neighbours of what was written are untouched */
	assert_image_pattern(t, 127 * 512, 512);
	assert_image_pattern(t, 136 * 512, 512);
}

/* ---- configuration, queues, construction -------------------------------- */

static uint32_t cfg32(struct t *t, size_t off)
{
	uint32_t v;

	assert_int_equal(vdk_device_read_config(t->dev, (uint32_t)off, &v, 4),
			 0);
	return le32toh(v);
}

static void test_config(void **state)
{
	struct t *t = *state;
	uint64_t f = t->dev->ops->features(t->dev->impl);
	uint64_t cap;
	uint16_t nq;
	uint8_t b;

	assert_int_equal(t->dev->ops->device_type, VIRTIO_ID_BLOCK);
	assert_int_equal(t->dev->ops->config_size, VDK_BLK_CONFIG_SIZE);
	assert_int_equal(vdk_device_read_config(t->dev, 0, &cap, 8), 0);
	assert_int_equal(le64toh(cap), IMG_SECTORS);
	assert_int_equal(vdk_blk_capacity(t->blk), IMG_SECTORS);
	assert_int_equal(cfg32(t, offsetof(struct virtio_blk_config, size_max)),
			 VDK_BLK_SIZE_MAX);
	assert_int_equal(cfg32(t, offsetof(struct virtio_blk_config, seg_max)),
			 256 - 2);
	assert_int_equal(cfg32(t, offsetof(struct virtio_blk_config, blk_size)),
			 512);
	assert_int_equal(vdk_device_read_config(
				 t->dev,
				 offsetof(struct virtio_blk_config, num_queues),
				 &nq, 2),
			 0);
	assert_int_equal(le16toh(nq), 1);
	assert_int_equal(cfg32(t, offsetof(struct virtio_blk_config,
					   max_discard_sectors)),
			 VDK_BLK_MAX_DISCARD_SECTORS);
	assert_int_equal(
		cfg32(t, offsetof(struct virtio_blk_config, max_discard_seg)),
		VDK_BLK_MAX_DISCARD_SEG);
	assert_int_equal(cfg32(t, offsetof(struct virtio_blk_config,
					   discard_sector_alignment)),
			 1);
	assert_int_equal(cfg32(t, offsetof(struct virtio_blk_config,
					   max_write_zeroes_sectors)),
			 VDK_BLK_MAX_WRITE_ZEROES_SECTORS);
	assert_int_equal(cfg32(t, offsetof(struct virtio_blk_config,
					   max_write_zeroes_seg)),
			 VDK_BLK_MAX_WRITE_ZEROES_SEG);
	assert_int_equal(
		vdk_device_read_config(t->dev,
				       offsetof(struct virtio_blk_config,
						write_zeroes_may_unmap),
				       &b, 1),
		0);
	assert_int_equal(b, 1);
	/* the config space ends before the secure-erase fields */
	assert_int_equal(vdk_device_read_config(t->dev, VDK_BLK_CONFIG_SIZE - 4,
						&cap, 8),
			 -ERANGE);

	const uint64_t want =
		F(VIRTIO_F_VERSION_1) | F(VIRTIO_RING_F_INDIRECT_DESC) |
		F(VIRTIO_RING_F_EVENT_IDX) | F(VIRTIO_BLK_F_SIZE_MAX) |
		F(VIRTIO_BLK_F_SEG_MAX) | F(VIRTIO_BLK_F_BLK_SIZE) |
		F(VIRTIO_BLK_F_FLUSH) | F(VIRTIO_BLK_F_DISCARD) |
		F(VIRTIO_BLK_F_WRITE_ZEROES);
	assert_int_equal(f, want);
}

static void test_two_queues(void **state)
{
	struct t *t = *state;
	uint64_t f = t->dev->ops->features(t->dev->impl);
	uint16_t nq;

	assert_true(f & F(VIRTIO_BLK_F_MQ));
	assert_int_equal(t->dev->num_queues, 2);
	assert_int_equal(vdk_device_read_config(
				 t->dev,
				 offsetof(struct virtio_blk_config, num_queues),
				 &nq, 2),
			 0);
	assert_int_equal(le16toh(nq), 2);
	assert_int_not_equal(vdk_blk_completion_fd(t->blk, 0),
			     vdk_blk_completion_fd(t->blk, 1));

	fill_guest(t, DATA_GPA, 1024, 0x42);
	assert_int_equal(rw(t, 1, VIRTIO_BLK_T_OUT, 7, 1024, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(t->used_signals[1], 1);
	assert_int_equal(t->used_signals[0], 0);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 6, 2048, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(t->used_signals[0], 1);
	assert_guest_pattern(t, DATA_GPA, 6 * 512, 512);
	assert_guest_pattern(t, DATA_GPA + 1536, 9 * 512, 512);
	/* queue 0 read what queue 1 wrote */
	fill_guest(t, DATA_GPA + 0x10000, 1024, 0x42);
	assert_memory_equal(vdk_mem_translate(t->mem, DATA_GPA + 512, 1024),
			    vdk_mem_translate(t->mem, DATA_GPA + 0x10000, 1024),
			    1024);
}

static void test_new_errors(void **state)
{
	char path[64];
	int fd = make_image("/dev/shm", 1000, path, sizeof(path));
	struct vdk_blk *blk = NULL;
	struct vdk_blk_config cfg = {.path = "/nonexistent/vdk-blk"};

	(void)state;
	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_DEBUG);
	assert_int_equal(vdk_blk_new(&blk, &cfg), -ENOENT);
	cfg.path = NULL;
	assert_int_equal(vdk_blk_new(&blk, &cfg), -EINVAL);
	assert_int_equal(vdk_blk_new(&blk, NULL), -EINVAL);
	cfg.path = "/dev/null";
	assert_int_equal(vdk_blk_new(&blk, &cfg), -ENOTBLK);
	cfg.path = path;
	cfg.serial = "123456789012345678901"; /* 21 bytes */
	assert_int_equal(vdk_blk_new(&blk, &cfg), -EINVAL);
	cfg.serial = "12345678901234567890"; /* 20: fits */
	cfg.queue_size = 48;
	assert_int_equal(vdk_blk_new(&blk, &cfg), -EINVAL);
	cfg.queue_size = 2048;
	assert_int_equal(vdk_blk_new(&blk, &cfg), -EINVAL);
	cfg.queue_size = 0;
	cfg.num_queues = VDK_BLK_MAX_QUEUES + 1;
	assert_int_equal(vdk_blk_new(&blk, &cfg), -EINVAL);
	assert_null(blk);
	cfg.num_queues = 0;
	cfg.io_mode = (enum vdk_blk_io_mode)7;
	assert_int_equal(vdk_blk_new(&blk, &cfg), -EINVAL);
	assert_null(blk);
	cfg.io_mode = VDK_BLK_IO_AUTO;
	/* 1000 bytes: one whole sector */
	assert_int_equal(vdk_blk_new(&blk, &cfg), 0);
	assert_int_equal(vdk_blk_capacity(blk), 1);
	assert_int_equal(vdk_blk_device(blk)->num_queues, 1);
	assert_int_equal(vdk_blk_device(blk)->ops->queue_max_size(blk, 0),
			 VDK_BLK_DEFAULT_QUEUE_SIZE);
	vdk_blk_free(blk);
	vdk_blk_free(NULL);
	close(fd);
	unlink(path);
	vdk_log_set_sink(NULL, NULL, VDK_LOG_WARN);
}

/* ---- conformance suite --------------------------------------------------- */

struct conf {
	enum vdk_blk_io_mode io_mode;
	char path[64];
	int fd;
	struct vdk_blk *live[2];
	uint16_t next_q;
	/* the request submitted last */
	uint16_t q;
	int head;
	uint64_t sector, data, status;
};

static struct vdk_device *conf_create(void *opaque)
{
	struct conf *c = opaque;
	struct vdk_blk_config cfg = {
		.path = c->path, .num_queues = 2, .io_mode = c->io_mode};
	struct vdk_blk *blk;

	if (vdk_blk_new(&blk, &cfg) < 0)
		return NULL;
	for (int i = 0; i < 2; i++) {
		if (!c->live[i]) {
			c->live[i] = blk;
			break;
		}
	}
	return vdk_blk_device(blk);
}

static void conf_destroy(struct vdk_device *dev, void *opaque)
{
	struct conf *c = opaque;
	struct vdk_blk *blk = vdk_blk_from_device(dev);

	for (int i = 0; i < 2; i++)
		if (c->live[i] == blk)
			c->live[i] = NULL;
	vdk_blk_free(blk);
}

/* A one-sector read, alternating between the two queues. */
static int conf_submit(struct vdk_conformance_env *env, void *opaque)
{
	struct conf *c = opaque;
	uint64_t hdr = vdk_conformance_alloc(env, 16);
	struct virtio_blk_outhdr h;
	uint8_t nw = NOT_WRITTEN;

	c->q = c->next_q;
	c->next_q = (uint16_t)((c->next_q + 1) % env->num_queues);
	c->sector = (c->sector + 3) % IMG_SECTORS;
	c->data = vdk_conformance_alloc(env, 512);
	c->status = vdk_conformance_alloc(env, 1);
	h = (struct virtio_blk_outhdr){.type = htole32(VIRTIO_BLK_T_IN),
				       .sector = htole64(c->sector)};
	if (vdk_mem_write(env->mem, hdr, &h, sizeof(h)) < 0 ||
	    vdk_mem_write(env->mem, c->status, &nw, 1) < 0)
		return -EFAULT;
	struct guest_buf b[] = {
		{hdr, 16, false}, {c->data, 512, true}, {c->status, 1, true}};
	c->head = guest_ring_add_chain(&env->rings[c->q], b, 3);
	return c->head < 0 ? c->head : c->q;
}

static int conf_check(struct vdk_conformance_env *env, void *opaque)
{
	struct conf *c = opaque;
	uint8_t data[512], status;
	uint32_t id, len;

	for (int i = 0; i < 2; i++)
		if (c->live[i] && vdk_blk_wait_idle(c->live[i]) < 0)
			return -EIO;
	if (guest_ring_get_used(&env->rings[c->q], &id, &len) != 1 ||
	    id != (uint32_t)c->head || len != 513)
		return -EIO;
	if (vdk_mem_read(env->mem, c->status, &status, 1) < 0 ||
	    vdk_mem_read(env->mem, c->data, data, 512) < 0)
		return -EFAULT;
	if (status != VIRTIO_BLK_S_OK)
		return -EIO;
	for (uint32_t i = 0; i < 512; i++)
		if (data[i] != pattern(c->sector * 512 + i))
			return -EIO;
	return 0;
}

/* On tmpfs: synchronous reads and writes (AUTO), and io_uring. */
static struct conf conf_state, conf_state_async = {.io_mode = VDK_BLK_IO_ASYNC};
static const struct vdk_conformance blk_suite = {
	.name = "blk",
	.create = conf_create,
	.destroy = conf_destroy,
	.submit = conf_submit,
	.check = conf_check,
	.opaque = &conf_state,
	.modify_changes_snapshot = true,
};
static const struct vdk_conformance blk_async_suite = {
	.name = "blk-io_uring",
	.create = conf_create,
	.destroy = conf_destroy,
	.submit = conf_submit,
	.check = conf_check,
	.opaque = &conf_state_async,
	.modify_changes_snapshot = true,
};

static int group_setup(void **state)
{
	(void)state;
	conf_state.fd = make_image("/dev/shm", IMG_SIZE, conf_state.path,
				   sizeof(conf_state.path));
	conf_state_async.fd =
		make_image("/dev/shm", IMG_SIZE, conf_state_async.path,
			   sizeof(conf_state_async.path));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	close(conf_state.fd);
	unlink(conf_state.path);
	close(conf_state_async.fd);
	unlink(conf_state_async.path);
	return 0;
}

static const struct opts rw_opts = {0};
static const struct opts ro_opts = {.read_only = true};
static const struct opts mq_opts = {.num_queues = 2};
static const struct opts ext4_opts = {.dir = "/tmp"};
static const struct opts async_opts = {.io_mode = VDK_BLK_IO_ASYNC};
static const struct opts async_ro_opts = {.read_only = true,
					  .io_mode = VDK_BLK_IO_ASYNC};
static const struct opts sync_opts = {.io_mode = VDK_BLK_IO_SYNC};
/* slots run out only while requests are in flight: io_uring */
static const struct opts small_opts = {.queue_size = 4,
				       .io_mode = VDK_BLK_IO_ASYNC};
static const struct opts ext4_sync_opts = {.dir = "/tmp",
					   .io_mode = VDK_BLK_IO_SYNC};
static const struct opts small_sync_opts = {.queue_size = 4,
					    .io_mode = VDK_BLK_IO_SYNC};
static const struct opts async_st_opts = {.io_mode = VDK_BLK_IO_ASYNC,
					  .single_thread = true};
static const struct opts direct_opts = {.direct = true};
static const struct opts direct_async_opts = {.direct = true,
					      .io_mode = VDK_BLK_IO_ASYNC};

#define T(fn, o)                                                               \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,          \
						 (void *)&(o))

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_read_pattern, rw_opts),
		T(test_write_verify, rw_opts),
		T(test_zero_length_rw, rw_opts),
		T(test_flush, rw_opts),
		T(test_get_id, rw_opts),
		T(test_read_only, ro_opts),
		T(test_past_end, rw_opts),
		T(test_short_read, rw_opts),
		T(test_sector_overflow, rw_opts),
		T(test_not_sector_multiple, rw_opts),
		T(test_unknown_type, rw_opts),
		T(test_discard, rw_opts),
		T(test_discard_refusals, rw_opts),
		T(test_write_zeroes_tmpfs, rw_opts),
		T(test_write_zeroes_tmp, ext4_opts),
		T(test_multi_segment, rw_opts),
		T(test_region_crossing, rw_opts),
		T(test_indirect, rw_opts),
		T(test_malformed, rw_opts),
		T(test_virtq_error, rw_opts),
		/* the same requests through io_uring */
		T(test_read_pattern, async_opts),
		T(test_write_verify, async_opts),
		T(test_zero_length_rw, async_opts),
		T(test_flush, async_opts),
		T(test_read_only, async_ro_opts),
		T(test_past_end, async_opts),
		T(test_short_read, async_opts),
		T(test_multi_segment, async_opts),
		T(test_region_crossing, async_opts),
		T(test_indirect, async_opts),
		T(test_malformed, async_opts),
		/* asynchronous completion */
		T(test_completion_fd, async_opts),
		T(test_slots_exhausted, small_opts),
		T(test_event_loop_thread, async_opts),
		T(test_sleep_drains, async_opts),
		T(test_sleep_drains, rw_opts),
		/* I/O modes */
		T(test_sync_inline, rw_opts),
		T(test_sync_batch_flush, rw_opts),
		T(test_sync_yield, small_sync_opts),
		T(test_completion_fd, async_st_opts),
		T(test_auto_ext4, ext4_opts),
		T(test_forced_mode, async_opts),
		T(test_forced_mode, sync_opts),
		T(test_forced_mode, ext4_sync_opts),
		T(test_direct, direct_opts),
		T(test_direct, direct_async_opts),
		T(test_config, rw_opts),
		T(test_two_queues, mq_opts),
		cmocka_unit_test(test_new_errors),
		VDK_CONFORMANCE_TESTS(&blk_suite),
		VDK_CONFORMANCE_TESTS(&blk_async_suite),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
