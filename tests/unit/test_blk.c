/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/devices/blk.c, part 1: virtio-blk requests (virtio 1.2
 * §5.2.6) and the device's configuration. Requests are written by the mock
 * driver (guest_ring) into guest memory from vdk_mem and run against an
 * image file in /dev/shm (tmpfs) or /tmp (blk_env.h). The request tests run
 * in both I/O modes: synchronous (what VDK_BLK_IO_AUTO picks on tmpfs) and
 * io_uring. Each request test checks the status byte, the used length and
 * the bytes on the host image; the error tests check that bad requests
 * never touch the image and never stop the queue. Completion paths, I/O
 * modes, O_DIRECT and the conformance suite are in test_blk_io.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include <vdk/device.h>
#include <vdk/devices/blk.h>
#include <vdk/mem.h>

#include "blk_env.h"
#include "guest_ring.h"

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

/* Per-queue counters: requests, the virtqueue's used chains and bytes, the
 * latency histogram (one entry per completed request). */
static void test_queue_stats(void **state)
{
	struct t *t = *state;
	struct vdk_blk_queue_stats qs;
	uint64_t sum = 0;

	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, 10, 2048, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_OUT, 10, 512, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(rw(t, 0, VIRTIO_BLK_T_IN, IMG_SECTORS + 1, 512, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(vdk_blk_queue_stats(t->blk, 0, &qs), 0);
	assert_int_equal(qs.req.reads, 1);
	assert_int_equal(qs.req.writes, 1);
	assert_int_equal(qs.req.io_errors, 1);
	assert_int_equal(qs.in_flight, 0);
	assert_true(qs.started);
	assert_int_equal(qs.vq.used, 3);
	/* used lengths: data + status for the read, the status byte else */
	assert_int_equal(qs.vq.used_bytes, 2048 + 1 + 1 + 1);
	assert_int_equal(qs.vq.notify_sent, t->used_signals[0]);
	for (int i = 0; i < VDK_BLK_LATENCY_BUCKETS; i++)
		sum += qs.latency[i];
	assert_int_equal(sum, 3);
	assert_int_equal(vdk_blk_queue_stats(t->blk, 16, &qs), -ERANGE);
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
	int err = 0;

	(void)state;
	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_DEBUG);
	assert_null(vdk_blk_new(&cfg, &err));
	assert_int_equal(err, -ENOENT);
	cfg.path = NULL;
	assert_null(vdk_blk_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(vdk_blk_new(NULL, &err));
	assert_int_equal(err, -EINVAL);
	cfg.path = "/dev/null";
	assert_null(vdk_blk_new(&cfg, &err));
	assert_int_equal(err, -ENOTBLK);
	cfg.path = path;
	cfg.serial = "123456789012345678901"; /* 21 bytes */
	assert_null(vdk_blk_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg.serial = "12345678901234567890"; /* 20: fits */
	cfg.queue_size = 48;
	assert_null(vdk_blk_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg.queue_size = 2048;
	assert_null(vdk_blk_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg.queue_size = 0;
	cfg.num_queues = VDK_BLK_MAX_QUEUES + 1;
	assert_null(vdk_blk_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg.num_queues = 0;
	cfg.io_mode = (enum vdk_blk_io_mode)7;
	assert_null(vdk_blk_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg.io_mode = VDK_BLK_IO_AUTO;
	/* 1000 bytes: one whole sector */
	blk = vdk_blk_new(&cfg, &err);
	assert_non_null(blk);
	assert_int_equal(err, 0);
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

static const struct opts rw_opts = {0};
static const struct opts ro_opts = {.read_only = true};
static const struct opts mq_opts = {.num_queues = 2};
static const struct opts ext4_opts = {.dir = "/tmp"};
static const struct opts async_opts = {.io_mode = VDK_BLK_IO_ASYNC};
static const struct opts async_ro_opts = {.read_only = true,
					  .io_mode = VDK_BLK_IO_ASYNC};

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_read_pattern, rw_opts),
		T(test_queue_stats, rw_opts),
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
		T(test_config, rw_opts),
		T(test_two_queues, mq_opts),
		cmocka_unit_test(test_new_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
