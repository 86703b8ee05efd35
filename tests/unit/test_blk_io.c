/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/devices/blk.c, part 2: how requests complete. The
 * io_uring completion fd and vdk_blk_process_completions(), request slots
 * running out, an event-loop thread completing while another submits,
 * sleep draining what is in flight; the I/O modes (synchronous inline
 * completion, batches ending in a FLUSH, yielding after queue_size chains,
 * AUTO's choice on tmpfs and ext4, forced modes) and O_DIRECT with aligned
 * and unaligned buffers. The device conformance suite runs at the end, once
 * per I/O mode. The environment (image, guest memory, device, request
 * helpers) is blk_env.h; the requests themselves are in test_blk.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include <vdk/device.h>
#include <vdk/devices/blk.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "blk_env.h"
#include "conformance.h"
#include "guest_ring.h"

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

	if (!(blk = vdk_blk_new(&cfg, NULL)))
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
static const struct opts ext4_opts = {.dir = "/tmp"};
static const struct opts async_opts = {.io_mode = VDK_BLK_IO_ASYNC};
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

int main(void)
{
	const struct CMUnitTest tests[] = {
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
		VDK_CONFORMANCE_TESTS(&blk_suite),
		VDK_CONFORMANCE_TESTS(&blk_async_suite),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
