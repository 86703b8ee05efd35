/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for the driver side's split virtqueue (src/driver/) against real
 * vdk devices in one process (environment in driver_env.h): ring layout and
 * queue setup, echo round trips, a full queue and bad buffers, completions
 * out of order, notification suppression with and without EVENT_IDX,
 * indirect descriptors, and a hostile device writing nonsense into the
 * used ring.
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

#include "driver_env.h"
#include "echo_device.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_queue_setup),
		cmocka_unit_test(test_echo_round_trips),
		cmocka_unit_test(test_queue_full_and_bad_buffers),
		cmocka_unit_test(test_out_of_order_completion),
		cmocka_unit_test(test_event_idx_on),
		cmocka_unit_test(test_event_idx_off),
		cmocka_unit_test(test_indirect),
		cmocka_unit_test(test_hostile_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
