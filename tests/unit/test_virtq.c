/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/virtq/split.c and src/virtq/chain.c with a well-behaved
 * driver: configuration and activation checks, popping and returning
 * chains (direct, indirect, across regions), the region cache of the pop
 * hot path (misses, refills, region edges, zero-length buffers, the cache
 * dropped when the memory map changes), the used element layout,
 * notification suppression with and without EVENT_IDX and 16-bit index
 * wrap-around. The malformed-driver cases are in test_virtq_hostile.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "guest_ring.h"
#include "virtq_env.h"

/* ---- configuration and activation ---- */

static void test_init_and_sizes(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq q;

	(void)f;
	assert_int_equal(vdk_virtq_init(&q, 0, 0), -EINVAL);
	assert_int_equal(vdk_virtq_init(&q, 3, 0), -EINVAL);
	assert_int_equal(vdk_virtq_init(&q, 65535, 0), -EINVAL);
	assert_int_equal(vdk_virtq_init(&q, 32768, 0), 0);
	assert_int_equal(q.size, 32768);
	assert_int_equal(vdk_virtq_init(&q, 64, 1), 0);
	assert_int_equal(q.size, 64);
	assert_int_equal(vdk_virtq_set_size(&q, 0), -EINVAL);
	assert_int_equal(vdk_virtq_set_size(&q, 24), -EINVAL);
	assert_int_equal(vdk_virtq_set_size(&q, 128), -EINVAL);
	assert_int_equal(q.size, 64);
	assert_int_equal(vdk_virtq_set_size(&q, 1), 0);
	assert_int_equal(vdk_virtq_set_size(&q, 32), 0);
	assert_int_equal(q.size, 32);
	assert_false(q.ready);
	assert_false(q.active);
	assert_int_equal(vdk_virtq_pop(&q, &f->chain), -EIO);
	assert_int_equal(vdk_virtq_error(&q), VDK_VIRTQ_OK);
}

static void test_activate_checks(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	uint64_t used;

	assert_int_equal(guest_ring_init(&f->gr, f->mem, 16, RING_GPA), 0);
	used = f->gr.used_gpa;
	assert_int_equal(vdk_virtq_set_size(q, 16), 0);
	assert_int_equal(vdk_virtq_set_addrs(q, 0, 0x1000, used), 0);
	/* not ready */
	assert_int_equal(vdk_virtq_activate(q, f->mem, 0), -EINVAL);
	vdk_virtq_set_ready(q, true);
	/* misaligned descriptor table, available ring, used ring */
	assert_int_equal(vdk_virtq_set_addrs(q, 8, 0x1000, used), 0);
	assert_int_equal(vdk_virtq_activate(q, f->mem, 0), -EINVAL);
	assert_int_equal(vdk_virtq_set_addrs(q, 0, 0x1001, used), 0);
	assert_int_equal(vdk_virtq_activate(q, f->mem, 0), -EINVAL);
	assert_int_equal(vdk_virtq_set_addrs(q, 0, 0x1000, used + 2), 0);
	assert_int_equal(vdk_virtq_activate(q, f->mem, 0), -EINVAL);
	/* outside guest memory: in a hole, past the end, across regions */
	assert_int_equal(vdk_virtq_set_addrs(q, HOLE_GPA, 0x1000, used), 0);
	assert_int_equal(vdk_virtq_activate(q, f->mem, 0), -EFAULT);
	assert_int_equal(
		vdk_virtq_set_addrs(q, 0, RAM1_GPA + RAM1_SIZE - 20, used), 0);
	assert_int_equal(vdk_virtq_activate(q, f->mem, 0), -EFAULT);
	assert_int_equal(vdk_virtq_set_addrs(q, 0, 0x1000, RAM1_GPA - 8), 0);
	assert_int_equal(vdk_virtq_activate(q, f->mem, 0), -EFAULT);
	assert_int_equal(vdk_virtq_set_addrs(q, RAM1_GPA - 128, 0x1000, used),
			 0);
	assert_int_equal(vdk_virtq_activate(q, f->mem, 0), -EFAULT);
	assert_false(q->active);
	/* exactly fitting at the end of a region is fine */
	assert_int_equal(vdk_virtq_set_addrs(q, RAM1_GPA - 256, 0x1000,
					     RAM1_GPA + RAM1_SIZE - 136),
			 0);
	assert_int_equal(vdk_virtq_activate(q, f->mem, F_EVENT_IDX), 0);
	assert_true(q->active);
	assert_true(q->event_idx);
	assert_false(q->indirect);
	assert_ptr_equal(q->desc, f->ram0 + RAM1_GPA - 256);
	/* configuration is frozen while active */
	assert_int_equal(vdk_virtq_set_size(q, 8), -EBUSY);
	assert_int_equal(vdk_virtq_set_addrs(q, 0, 0, 0), -EBUSY);
	assert_int_equal(vdk_virtq_set_next_avail(q, 1), -EBUSY);
	assert_int_equal(vdk_virtq_set_next_used(q, 1), -EBUSY);
	vdk_virtq_deactivate(q);
	assert_false(q->active);
	assert_int_equal(vdk_virtq_pop(q, &f->chain), -EIO);
	assert_int_equal(vdk_virtq_set_size(q, 8), 0);
	assert_int_equal(f->log_calls, 0);
}

static void test_next_avail_used(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;

	assert_int_equal(vdk_virtq_set_next_avail(q, 1000), 0);
	assert_int_equal(vdk_virtq_set_next_used(q, 990), 0);
	assert_int_equal(vdk_virtq_next_avail(q), 1000);
	assert_int_equal(vdk_virtq_next_used(q), 990);
	/* kept by activation (SET_VRING_BASE before the queue starts) */
	start(f, 16, 0);
	assert_int_equal(vdk_virtq_next_avail(q), 1000);
	assert_int_equal(vdk_virtq_next_used(q), 990);
	vdk_virtq_deactivate(q);
	assert_int_equal(vdk_virtq_next_avail(q), 1000);
	vdk_virtq_reset(q);
	assert_int_equal(vdk_virtq_next_avail(q), 0);
	assert_int_equal(vdk_virtq_next_used(q), 0);
	assert_int_equal(q->size, QMAX);
	assert_int_equal(q->desc_gpa, 0);
	assert_false(q->ready);
}

/* ---- popping and returning chains ---- */

static void test_pop_readable_writable(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[3] = {
		{DATA_GPA, 16, false},
		{DATA_GPA + 0x1000, 100, true},
		{DATA_GPA + 0x2000, 28, true},
	};
	uint8_t out[16], in[128];
	uint32_t id, len;
	int head;

	start(f, 16, 0);
	memcpy(hva(f, DATA_GPA), "0123456789abcdef", 16);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 0);
	head = guest_ring_add_chain(&f->gr, b, 3);
	assert_int_equal(head, 0);
	assert_true(vdk_virtq_has_avail(&f->q));
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_false(vdk_virtq_has_avail(&f->q));
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(f->chain.num_readable, 1);
	assert_int_equal(f->chain.num_writable, 2);
	assert_int_equal(f->chain.readable_len, 16);
	assert_int_equal(f->chain.writable_len, 128);
	assert_ptr_equal(f->iov[0].iov_base, hva(f, DATA_GPA));
	assert_int_equal(f->iov[0].iov_len, 16);
	assert_ptr_equal(f->iov[1].iov_base, hva(f, DATA_GPA + 0x1000));
	assert_int_equal(f->iov[1].iov_len, 100);
	assert_ptr_equal(f->iov[2].iov_base, hva(f, DATA_GPA + 0x2000));
	assert_int_equal(f->iov[2].iov_len, 28);
	assert_int_equal(f->q.in_flight, 1);

	/* copy helpers: offsets, clamping at the end of each part */
	assert_int_equal(vdk_virtq_chain_copy_from(&f->chain, 10, out, 16), 6);
	assert_memory_equal(out, "abcdef", 6);
	memset(in, 0x5a, sizeof(in));
	assert_int_equal(vdk_virtq_chain_copy_to(&f->chain, 90, in, 128), 38);
	assert_int_equal(hva(f, DATA_GPA + 0x1000)[89], 0);
	assert_int_equal(hva(f, DATA_GPA + 0x1000)[90], 0x5a);
	assert_int_equal(hva(f, DATA_GPA + 0x2000)[27], 0x5a);
	assert_int_equal(hva(f, DATA_GPA + 0x2000)[28], 0);
	assert_int_equal(vdk_virtq_chain_copy_to(&f->chain, 128, in, 1), 0);

	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 38), 0);
	assert_int_equal(f->q.in_flight, 0);
	assert_int_equal(vdk_virtq_next_used(&f->q), 1);
	assert_int_equal(guest_ring_get_used(&f->gr, &id, &len), 1);
	assert_int_equal(id, 0);
	assert_int_equal(len, 38);
	assert_int_equal(guest_ring_get_used(&f->gr, &id, &len), 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 0);
	assert_int_equal(f->log_calls, 0);
}

static void test_pop_single_and_zero_length(void **state)
{
	struct fx *f = *state;
	struct guest_buf w = {DATA_GPA, 512, true};
	struct guest_buf z[3] = {
		{DATA_GPA, 4, false},
		{HOLE_GPA, 0, true}, /* skipped: no iovec, address unused */
		{DATA_GPA + 64, 8, true},
	};

	start(f, 16, 0);
	assert_int_equal(guest_ring_add_chain(&f->gr, &w, 1), 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.num_readable, 0);
	assert_int_equal(f->chain.num_writable, 1);
	assert_int_equal(f->chain.readable_len, 0);
	assert_int_equal(f->chain.writable_len, 512);

	assert_int_equal(guest_ring_add_chain(&f->gr, z, 3), 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.head, 1);
	assert_int_equal(f->chain.num_readable, 1);
	assert_int_equal(f->chain.num_writable, 1);
	assert_int_equal(f->chain.writable_len, 8);
	assert_ptr_equal(f->iov[1].iov_base, hva(f, DATA_GPA + 64));
	assert_int_equal(f->q.in_flight, 2);
	/* completion order is the device's choice */
	assert_int_equal(vdk_virtq_add_used(&f->q, 1, 8), 0);
	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 512), 0);
	assert_int_equal(guest_ring_used_idx(&f->gr), 2);
}

static void test_pop_spans_regions(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {RAM1_GPA - 100, 300, true};
	uint8_t data[300];

	start(f, 16, 0);
	assert_int_equal(guest_ring_add_chain(&f->gr, &b, 1), 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.num_writable, 2);
	assert_int_equal(f->chain.writable_len, 300);
	assert_ptr_equal(f->iov[0].iov_base, f->ram0 + RAM0_SIZE - 100);
	assert_int_equal(f->iov[0].iov_len, 100);
	assert_ptr_equal(f->iov[1].iov_base, f->ram1);
	assert_int_equal(f->iov[1].iov_len, 200);
	for (int i = 0; i < 300; i++)
		data[i] = (uint8_t)i;
	assert_int_equal(vdk_virtq_chain_copy_to(&f->chain, 0, data, 300), 300);
	assert_int_equal(f->ram0[RAM0_SIZE - 1], 99);
	assert_int_equal(f->ram1[0], 100);
	assert_int_equal(f->ram1[199], (uint8_t)299);
}

static void test_pop_indirect(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[3] = {
		{DATA_GPA, 16, false},
		{DATA_GPA + 16, 32, false},
		{DATA_GPA + 0x1000, 4096, true},
	};
	const struct vdk_mem *m = f->mem;

	start(f, 16, F_INDIRECT);
	assert_int_equal(guest_ring_add_indirect(&f->gr, TABLE_GPA, b, 3), 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(f->chain.num_readable, 2);
	assert_int_equal(f->chain.num_writable, 1);
	assert_int_equal(f->chain.readable_len, 48);
	assert_int_equal(f->chain.writable_len, 4096);
	assert_ptr_equal(f->iov[1].iov_base, hva(f, DATA_GPA + 16));

	/* an unaligned table, linked out of order, after a direct
	 * descriptor; the WRITE flag on the table descriptor is ignored */
	guest_ring_write_desc(m, TABLE_GPA + 3, 0, DATA_GPA, 10,
			      VRING_DESC_F_NEXT, 2);
	guest_ring_write_desc(m, TABLE_GPA + 3, 2, DATA_GPA, 0,
			      VRING_DESC_F_NEXT, 1);
	guest_ring_write_desc(m, TABLE_GPA + 3, 1, DATA_GPA + 100, 20,
			      VRING_DESC_F_WRITE, 0);
	guest_ring_set_desc(&f->gr, 5, DATA_GPA + 200, 1, VRING_DESC_F_NEXT, 6);
	guest_ring_set_desc(&f->gr, 6, TABLE_GPA + 3, 48,
			    VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	guest_ring_push(&f->gr, 5);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.head, 5);
	assert_int_equal(f->chain.num_readable, 2);
	assert_int_equal(f->chain.readable_len, 11);
	assert_int_equal(f->chain.num_writable, 1);
	assert_int_equal(f->chain.writable_len, 20);
	assert_int_equal(vdk_virtq_add_used(&f->q, 5, 0), 0);
	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 0), 0);
	assert_int_equal(f->log_calls, 0);
}

static void test_chain_of_queue_size_ok(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (struct guest_buf){DATA_GPA + 16 * i, 16, i >= 4};
	start(f, 8, 0);
	assert_int_equal(guest_ring_add_chain(&f->gr, b, 8), 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.num_readable, 4);
	assert_int_equal(f->chain.num_writable, 4);
}

/* ---- the region cache of the pop hot path ---- */

/* The queue's region cache (white box: q->bufs) holds [gpa, gpa + size). */
static void assert_bufs(struct fx *f, uint64_t gpa, uint64_t size)
{
	assert_int_equal(f->q.bufs.gpa, gpa);
	assert_int_equal(f->q.bufs.size, size);
	assert_ptr_equal(f->q.bufs.hva, hva(f, gpa));
}

/* One descriptor per chain, alternating regions: each pop misses the
 * cache and refills it; the buffers always map to the right host bytes. */
static void test_cache_refill_across_regions(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[4] = {
		{DATA_GPA, 8, false},
		{RAM1_GPA + 8, 8, false},
		{DATA_GPA + 16, 8, true},
		{RAM1_GPA + 24, 8, true},
	};

	start(f, 16, 0);
	assert_bufs(f, RAM0_GPA, RAM0_SIZE); /* the rings' region */
	for (int i = 0; i < 6; i++) {
		bool in1 = i % 2, w = i % 3 == 0;
		uint64_t gpa = (in1 ? RAM1_GPA : DATA_GPA) + 0x100 * i;

		pop_one(f, gpa, 64, w);
		assert_int_equal(f->chain.num_readable, !w);
		assert_int_equal(f->chain.num_writable, w);
		assert_int_equal(f->chain.readable_len, w ? 0 : 64);
		assert_int_equal(f->chain.writable_len, w ? 64 : 0);
		assert_ptr_equal(f->iov[0].iov_base, hva(f, gpa));
		assert_int_equal(f->iov[0].iov_len, 64);
		assert_bufs(f, in1 ? RAM1_GPA : RAM0_GPA,
			    in1 ? RAM1_SIZE : RAM0_SIZE);
		assert_int_equal(vdk_virtq_add_used(&f->q, f->chain.head, 0),
				 0);
	}
	/* Several descriptors alternating regions (the general walk). */
	assert_true(guest_ring_add_chain(&f->gr, b, 4) >= 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.num_readable, 2);
	assert_int_equal(f->chain.num_writable, 2);
	for (int i = 0; i < 4; i++)
		assert_ptr_equal(f->iov[i].iov_base, hva(f, b[i].gpa));
	assert_bufs(f, RAM1_GPA, RAM1_SIZE);
	assert_int_equal(f->log_calls, 0);
}

/* Buffers just below, just above and at the ends of the cached region,
 * and buffers straddling its edges in both directions. */
static void test_cache_region_edges(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[2] = {{DATA_GPA, 8, false}, {RAM1_GPA - 2, 4, true}};

	start(f, 16, 0);
	pop_one(f, RAM1_GPA + 0x40, 8, false);
	assert_bufs(f, RAM1_GPA, RAM1_SIZE);
	/* One byte below the cached region: the last byte of RAM0. */
	pop_one(f, RAM1_GPA - 1, 1, false);
	assert_int_equal(f->chain.readable_len, 1);
	assert_ptr_equal(f->iov[0].iov_base, f->ram0 + RAM0_SIZE - 1);
	assert_bufs(f, RAM0_GPA, RAM0_SIZE);
	/* The first byte above it: RAM1. */
	pop_one(f, RAM1_GPA, 1, true);
	assert_ptr_equal(f->iov[0].iov_base, f->ram1);
	assert_bufs(f, RAM1_GPA, RAM1_SIZE);
	/* The last bytes of the cached region, and all of it. */
	pop_one(f, RAM1_GPA + RAM1_SIZE - 1, 1, true);
	assert_ptr_equal(f->iov[0].iov_base, f->ram1 + RAM1_SIZE - 1);
	pop_one(f, RAM1_GPA + RAM1_SIZE - 16, 16, true);
	assert_ptr_equal(f->iov[0].iov_base, f->ram1 + RAM1_SIZE - 16);
	pop_one(f, RAM1_GPA, RAM1_SIZE, true);
	assert_int_equal(f->chain.num_writable, 1);
	assert_ptr_equal(f->iov[0].iov_base, f->ram1);
	assert_int_equal(f->iov[0].iov_len, RAM1_SIZE);
	/* Starting below the cached region, ending inside it: two iovecs. */
	pop_one(f, RAM1_GPA - 8, 16, false);
	assert_int_equal(f->chain.num_readable, 2);
	assert_int_equal(f->chain.readable_len, 16);
	assert_ptr_equal(f->iov[0].iov_base, f->ram0 + RAM0_SIZE - 8);
	assert_int_equal(f->iov[0].iov_len, 8);
	assert_ptr_equal(f->iov[1].iov_base, f->ram1);
	assert_int_equal(f->iov[1].iov_len, 8);
	/* Starting inside the cached RAM0, ending in RAM1. */
	pop_one(f, DATA_GPA, 8, false);
	assert_bufs(f, RAM0_GPA, RAM0_SIZE);
	pop_one(f, RAM1_GPA - 4, 12, true);
	assert_int_equal(f->chain.num_writable, 2);
	assert_ptr_equal(f->iov[0].iov_base, f->ram0 + RAM0_SIZE - 4);
	assert_int_equal(f->iov[0].iov_len, 4);
	assert_ptr_equal(f->iov[1].iov_base, f->ram1);
	assert_int_equal(f->iov[1].iov_len, 8);
	/* The same inside a chain of two descriptors. */
	assert_true(guest_ring_add_chain(&f->gr, b, 2) >= 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.num_readable, 1);
	assert_int_equal(f->chain.num_writable, 2);
	assert_int_equal(f->chain.writable_len, 4);
	assert_ptr_equal(f->iov[1].iov_base, f->ram0 + RAM0_SIZE - 2);
	assert_ptr_equal(f->iov[2].iov_base, f->ram1);
	assert_int_equal(f->log_calls, 0);
}

/* A chain of one zero-length descriptor: popped, with no iovec, wherever
 * its address points (inside the cached region, a hole, the top). */
static void test_zero_length_single(void **state)
{
	struct fx *f = *state;
	const uint64_t addrs[] = {DATA_GPA, HOLE_GPA, RAM1_GPA + RAM1_SIZE,
				  UINT64_MAX};

	start(f, 16, 0);
	for (int i = 0; i < 4; i++) {
		f->chain.num_readable = 77;
		f->chain.num_writable = 77;
		f->chain.readable_len = 77;
		f->chain.writable_len = 77;
		pop_one(f, addrs[i], 0, i % 2);
		assert_int_equal(f->chain.head, i);
		assert_int_equal(f->chain.num_readable, 0);
		assert_int_equal(f->chain.num_writable, 0);
		assert_int_equal(f->chain.readable_len, 0);
		assert_int_equal(f->chain.writable_len, 0);
		assert_int_equal(vdk_virtq_add_used(&f->q, (uint16_t)i, 0), 0);
	}
	assert_int_equal(guest_ring_used_idx(&f->gr), 4);
	assert_int_equal(f->log_calls, 0);
}

/*
 * vhost-user SET_MEM_TABLE or a memory hot-unplug: the owner deactivates
 * the queue, changes the map and activates again. The queue must not keep
 * the old region: a replaced region maps to its new host memory, a removed
 * one is outside guest memory.
 */
static void test_cache_dropped_on_deactivate(void **state)
{
	const uint64_t gpa = 0x200000, size = 0x10000;
	struct fx *f = *state;
	uint8_t *old = aligned_alloc(4096, size);
	uint8_t *fresh = aligned_alloc(4096, size);
	struct guest_buf b = {gpa + 0x40, 32, true};

	assert_non_null(old);
	assert_non_null(fresh);
	assert_int_equal(vdk_mem_add_host(f->mem, gpa, size, old), 0);
	start(f, 16, 0);
	pop_one(f, gpa + 0x40, 32, true);
	assert_ptr_equal(f->iov[0].iov_base, old + 0x40);
	assert_int_equal(f->q.bufs.gpa, gpa);
	assert_int_equal(vdk_virtq_add_used(&f->q, f->chain.head, 32), 0);

	/* Same guest-physical range, other host memory. */
	vdk_virtq_deactivate(&f->q);
	assert_int_equal(f->q.bufs.size, 0);
	assert_false(vdk_mem_cache_contains(&f->q.bufs, gpa + 0x40, 32));
	assert_int_equal(vdk_mem_remove(f->mem, gpa, size), 0);
	assert_int_equal(vdk_mem_add_host(f->mem, gpa, size, fresh), 0);
	assert_int_equal(vdk_virtq_activate(&f->q, f->mem, 0), 0);
	assert_bufs(f, RAM0_GPA, RAM0_SIZE);
	pop_one(f, gpa + 0x40, 32, true);
	assert_ptr_equal(f->iov[0].iov_base, fresh + 0x40);
	assert_int_equal(vdk_virtq_add_used(&f->q, f->chain.head, 32), 0);

	/* Removed: its addresses are a hole now. */
	vdk_virtq_deactivate(&f->q);
	assert_int_equal(vdk_mem_remove(f->mem, gpa, size), 0);
	assert_int_equal(vdk_virtq_activate(&f->q, f->mem, 0), 0);
	pop_one(f, DATA_GPA, 8, false); /* the rings' region still works */
	assert_true(guest_ring_add_chain(&f->gr, &b, 1) >= 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_DESC_ADDR);
	free(old);
	free(fresh);
}

/* ---- the used ring ---- */

/* used->ring[@slot] must be {__le32 id; __le32 len} = {@id, @len}. */
static void assert_used_elem(struct fx *f, uint16_t slot, uint32_t id,
			     uint32_t len)
{
	const uint8_t want[8] = {
		(uint8_t)id,	      (uint8_t)(id >> 8),   (uint8_t)(id >> 16),
		(uint8_t)(id >> 24),  (uint8_t)len,	    (uint8_t)(len >> 8),
		(uint8_t)(len >> 16), (uint8_t)(len >> 24),
	};

	assert_memory_equal(hva(f, f->gr.used_gpa + 4 + 8 * (uint64_t)slot),
			    want, 8);
}

/* The used element layout (virtio 1.2 §2.7.8): id, then len, both
 * little-endian, at used->ring[used idx mod size], index after; nothing
 * else in the used ring is written. */
static void test_used_elem_layout(void **state)
{
	struct fx *f = *state;
	const uint16_t heads[4] = {0xc3, 0x5a, 0x01, 0xfe};
	const uint32_t lens[4] = {0x11223344, 0xa1b2c3d4, 0, 0xffffffff};
	const int order[4] = {2, 0, 3, 1};	 /* completion order */
	const uint64_t used = RING_GPA + 0x1208; /* guest_ring layout, 256 */
	uint8_t *u;

	assert_int_equal(vdk_virtq_set_next_avail(&f->q, 254), 0);
	assert_int_equal(vdk_virtq_set_next_used(&f->q, 254), 0);
	start(f, 256, 0);
	assert_int_equal(f->gr.used_gpa, used);
	u = hva(f, used);
	memset(u, 0xa5, 6 + 8 * 256); /* flags, idx, ring, avail_event */
	vdk_le16_store(u + 2, 254);
	guest_ring_set_avail_idx(&f->gr, 254);
	for (int i = 0; i < 4; i++) {
		guest_ring_set_desc(&f->gr, heads[i], DATA_GPA, 8, 0, 0);
		guest_ring_push(&f->gr, heads[i]);
		assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
		assert_int_equal(f->chain.head, heads[i]);
	}
	for (int k = 0; k < 4; k++) {
		int i = order[k];
		uint16_t slot = (uint16_t)((254 + k) % 256);

		assert_int_equal(vdk_virtq_add_used(&f->q, heads[i], lens[i]),
				 0);
		assert_used_elem(f, slot, heads[i], lens[i]);
		assert_int_equal(u[2], (uint8_t)(255 + k));
		assert_int_equal(u[3], (uint8_t)((255 + k) >> 8 & 0xff));
		/* the next slot is untouched until its turn */
		assert_int_equal(u[4 + 8 * ((slot + 1) % 256)], 0xa5);
	}
	/* Slots 254, 255, 0, 1 were written; 2..253, flags and
	 * avail_event were not. */
	assert_int_equal(u[0], 0xa5);
	assert_int_equal(u[1], 0xa5);
	for (size_t i = 4 + 8 * 2; i < 4 + 8 * 254; i++)
		assert_int_equal(u[i], 0xa5);
	assert_int_equal(u[4 + 8 * 256], 0xa5);
	assert_int_equal(u[5 + 8 * 256], 0xa5);
	assert_int_equal(vdk_virtq_next_used(&f->q), 258);
}

/* A batch: every element written, the index published once, across the
 * ring's wrap; refused without publishing anything when a head is bad or
 * more are returned than are in flight. */
static void test_used_batch(void **state)
{
	struct fx *f = *state;
	const uint16_t heads[3] = {7, 3, 250};
	const uint32_t lens[3] = {100, 0, 0xffffffff};
	const uint64_t used = RING_GPA + 0x1208;
	uint8_t *u;

	assert_int_equal(vdk_virtq_set_next_avail(&f->q, 255), 0);
	assert_int_equal(vdk_virtq_set_next_used(&f->q, 255), 0);
	start(f, 256, 0);
	u = hva(f, used);
	vdk_le16_store(u + 2, 255);
	guest_ring_set_avail_idx(&f->gr, 255);
	for (int i = 0; i < 3; i++) {
		guest_ring_set_desc(&f->gr, heads[i], DATA_GPA, 8, 0, 0);
		guest_ring_push(&f->gr, heads[i]);
		assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	}
	assert_int_equal(vdk_virtq_add_used_batch(&f->q, heads, lens, 0), 0);
	assert_int_equal(vdk_le16_load(u + 2), 255);
	assert_int_equal(vdk_virtq_add_used_batch(&f->q, heads, lens, 3), 0);
	for (int i = 0; i < 3; i++)
		assert_used_elem(f, (uint16_t)((255 + i) % 256), heads[i],
				 lens[i]);
	assert_int_equal(vdk_le16_load(u + 2), (uint16_t)258);
	assert_int_equal(vdk_virtq_next_used(&f->q), 258);
	assert_int_equal(f->q.in_flight, 0);
	/* Nothing in flight any more: refused, the queue stops. */
	assert_int_equal(vdk_virtq_add_used_batch(&f->q, heads, lens, 1),
			 -EINVAL);
	assert_int_equal(vdk_virtq_error(&f->q), VDK_VIRTQ_ERR_USED_ID);
	assert_int_equal(vdk_le16_load(u + 2), (uint16_t)258);
	assert_int_equal(vdk_virtq_add_used_batch(&f->q, heads, lens, 1), -EIO);
}

/* A batch of 7 with a head >= size at @bad (the size itself, between good
 * heads) is refused before any element is written: nothing published, the
 * queue stops. */
static void used_batch_bad_head(struct fx *f, int bad)
{
	const uint32_t lens[7] = {1, 2, 3, 4, 5, 6, 7};
	uint16_t heads[7];
	uint8_t *u, before[7 * 8];

	start(f, 256, 0);
	u = hva(f, f->gr.used_gpa);
	for (int i = 0; i < 7; i++) {
		heads[i] = (uint16_t)(5 + i);
		guest_ring_set_desc(&f->gr, heads[i], DATA_GPA, 8, 0, 0);
		guest_ring_push(&f->gr, heads[i]);
		assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	}
	heads[bad] = 256;
	memcpy(before, u + 4, sizeof(before));
	assert_int_equal(vdk_virtq_add_used_batch(&f->q, heads, lens, 7),
			 -EINVAL);
	assert_int_equal(vdk_virtq_error(&f->q), VDK_VIRTQ_ERR_USED_ID);
	assert_int_equal(vdk_le16_load(u + 2), 0);
	assert_memory_equal(u + 4, before, sizeof(before));
	assert_int_equal(vdk_virtq_add_used_batch(&f->q, heads, lens, 1), -EIO);
}

/* The bad head among the first four (tested 8 bytes at a time). */
static void test_used_batch_bad_head(void **state)
{
	used_batch_bad_head(*state, 2);
}

/* The bad head in the tail after the groups of four. */
static void test_used_batch_bad_head_tail(void **state)
{
	used_batch_bad_head(*state, 5);
}

/* ---- notification suppression and index wrap-around ---- */

static void test_event_idx_used_event(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, true};

	start(f, 16, F_EVENT_IDX);
	for (int i = 0; i < 4; i++) {
		guest_ring_add_chain(&f->gr, &b, 1);
		assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	}
	/* nothing signalled yet since activation: notify */
	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 1), 0);
	assert_true(vdk_virtq_should_notify(&f->q));
	/* the driver wants a notification once used idx passes 2 */
	guest_ring_set_used_event(&f->gr, 2);
	assert_int_equal(vdk_virtq_add_used(&f->q, 1, 1), 0);
	assert_false(vdk_virtq_should_notify(&f->q));
	assert_int_equal(vdk_virtq_add_used(&f->q, 2, 1), 0);
	assert_true(vdk_virtq_should_notify(&f->q));
	/* no new used entries: no notification */
	assert_false(vdk_virtq_should_notify(&f->q));
	/* the event index was passed within a batch: notify */
	guest_ring_set_used_event(&f->gr, 3);
	assert_int_equal(vdk_virtq_add_used(&f->q, 3, 1), 0);
	assert_true(vdk_virtq_should_notify(&f->q));
	/* NO_INTERRUPT is ignored with EVENT_IDX */
	guest_ring_set_avail_flags(&f->gr, VRING_AVAIL_F_NO_INTERRUPT);
	guest_ring_add_chain(&f->gr, &b, 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	guest_ring_set_used_event(&f->gr, 4);
	assert_int_equal(vdk_virtq_add_used(&f->q, 4, 1), 0);
	assert_true(vdk_virtq_should_notify(&f->q));
}

static void test_event_idx_avail_event(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, false};

	start(f, 16, F_EVENT_IDX);
	guest_ring_add_chain(&f->gr, &b, 1);
	guest_ring_add_chain(&f->gr, &b, 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	/* one chain still waiting: enabling reports it */
	assert_true(vdk_virtq_enable_notification(&f->q, true));
	assert_int_equal(guest_ring_avail_event(&f->gr), 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_false(vdk_virtq_enable_notification(&f->q, true));
	assert_int_equal(guest_ring_avail_event(&f->gr), 2);
	/* disabling leaves avail_event and used->flags alone */
	assert_false(vdk_virtq_enable_notification(&f->q, false));
	assert_int_equal(guest_ring_avail_event(&f->gr), 2);
	assert_int_equal(guest_ring_used_flags(&f->gr), 0);
}

static void test_wraparound(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, true};
	uint32_t id, len;

	assert_int_equal(vdk_virtq_set_next_avail(&f->q, 65533), 0);
	assert_int_equal(vdk_virtq_set_next_used(&f->q, 65533), 0);
	start(f, 4, F_EVENT_IDX);
	guest_ring_set_avail_idx(&f->gr, 65533);
	guest_ring_set_last_used(&f->gr, 65533);
	/* the device's first notification after activation is unconditional;
	 * the driver wants the next one when used idx passes 65535 */
	guest_ring_set_used_event(&f->gr, 65535);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 4; i++)
			assert_true(guest_ring_add_chain(&f->gr, &b, 1) >= 0);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
			assert_int_equal(f->chain.head, i);
		}
		assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 0);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(vdk_virtq_add_used(&f->q, i, i), 0);
			if (round == 0 && i == 0)
				/* used idx 65534: first since activation */
				assert_true(vdk_virtq_should_notify(&f->q));
			else if (round == 0 && i == 1)
				/* 65535: not past 65535 yet */
				assert_false(vdk_virtq_should_notify(&f->q));
			else if (round == 0 && i == 2)
				/* 0: passed 65535 across the wrap */
				assert_true(vdk_virtq_should_notify(&f->q));
		}
		for (int i = 0; i < 4; i++) {
			assert_int_equal(guest_ring_get_used(&f->gr, &id, &len),
					 1);
			assert_int_equal(id, i);
			assert_int_equal(len, i);
		}
	}
	assert_int_equal(vdk_virtq_next_avail(&f->q), (uint16_t)(65533 + 12));
	assert_int_equal(guest_ring_used_idx(&f->gr), (uint16_t)(65533 + 12));
	/* avail_event follows next_avail through the wrap */
	assert_false(vdk_virtq_enable_notification(&f->q, true));
	assert_int_equal(guest_ring_avail_event(&f->gr), 9);
}

static void test_no_interrupt_and_no_notify(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, true};

	start(f, 16, 0);
	guest_ring_add_chain(&f->gr, &b, 1);
	guest_ring_add_chain(&f->gr, &b, 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 0), 0);
	assert_true(vdk_virtq_should_notify(&f->q));
	guest_ring_set_avail_flags(&f->gr, VRING_AVAIL_F_NO_INTERRUPT);
	assert_false(vdk_virtq_should_notify(&f->q));
	/* without NOTIFY_ON_EMPTY an empty ring changes nothing */
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(vdk_virtq_add_used(&f->q, 1, 0), 0);
	assert_false(vdk_virtq_should_notify(&f->q));
	guest_ring_set_avail_flags(&f->gr, 0);
	assert_true(vdk_virtq_should_notify(&f->q));

	/* available buffer notifications: VRING_USED_F_NO_NOTIFY */
	assert_false(vdk_virtq_enable_notification(&f->q, false));
	assert_int_equal(guest_ring_used_flags(&f->gr), VRING_USED_F_NO_NOTIFY);
	assert_false(vdk_virtq_enable_notification(&f->q, true));
	assert_int_equal(guest_ring_used_flags(&f->gr), 0);
	vdk_virtq_enable_notification(&f->q, false);
	guest_ring_add_chain(&f->gr, &b, 1);
	assert_true(vdk_virtq_enable_notification(&f->q, true));
	assert_int_equal(guest_ring_used_flags(&f->gr), 0);
	assert_int_equal(guest_ring_avail_event(&f->gr), 0);
}

static void test_notify_on_empty(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, true};

	start(f, 16, F_NOTIFY_ON_EMPTY | F_EVENT_IDX);
	guest_ring_set_avail_flags(&f->gr, VRING_AVAIL_F_NO_INTERRUPT);
	guest_ring_add_chain(&f->gr, &b, 1);
	guest_ring_add_chain(&f->gr, &b, 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 0), 0);
	assert_true(vdk_virtq_should_notify(&f->q)); /* first since start */
	guest_ring_set_used_event(&f->gr, 100);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	guest_ring_add_chain(&f->gr, &b, 1);
	assert_int_equal(vdk_virtq_add_used(&f->q, 1, 0), 0);
	/* a chain is still available: suppression holds */
	assert_false(vdk_virtq_should_notify(&f->q));
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	/* ring empty but a chain in flight: not out of buffers yet */
	assert_false(vdk_virtq_should_notify(&f->q));
	assert_int_equal(vdk_virtq_add_used(&f->q, 2, 0), 0);
	/* out of available buffers: notify despite used_event */
	assert_true(vdk_virtq_should_notify(&f->q));
}

/* The per-queue counters: chains and bytes returned, notifications sent
 * and suppressed; a failed add_used counts nothing. */
static void test_stats(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, true};

	start(f, 16, 0);
	assert_int_equal(f->q.stats.used, 0);
	guest_ring_add_chain(&f->gr, &b, 1);
	guest_ring_add_chain(&f->gr, &b, 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 8), 0);
	assert_true(vdk_virtq_should_notify(&f->q));
	guest_ring_set_avail_flags(&f->gr, VRING_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(vdk_virtq_add_used(&f->q, 1, 5), 0);
	assert_false(vdk_virtq_should_notify(&f->q));
	assert_int_equal(f->q.stats.used, 2);
	assert_int_equal(f->q.stats.used_bytes, 13);
	assert_int_equal(f->q.stats.notify_sent, 1);
	assert_int_equal(f->q.stats.notify_suppressed, 1);
	/* nothing in flight: a device bug, refused and not counted */
	assert_int_equal(vdk_virtq_add_used(&f->q, 1, 5), -EINVAL);
	assert_int_equal(f->q.stats.used, 2);
	assert_int_equal(f->q.stats.used_bytes, 13);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = 0; e < VDK_VIRTQ_ERR__COUNT; e++) {
		const char *s = vdk_virtq_strerror((enum vdk_virtq_error)e);

		assert_non_null(s);
		assert_string_not_equal(s, "unknown virtqueue error");
		for (int o = 0; o < e; o++)
			assert_string_not_equal(
				s, vdk_virtq_strerror((enum vdk_virtq_error)o));
	}
	assert_string_equal(vdk_virtq_strerror(VDK_VIRTQ_ERR__COUNT),
			    "unknown virtqueue error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_init_and_sizes),
		T(test_activate_checks),
		T(test_next_avail_used),
		T(test_pop_readable_writable),
		T(test_pop_single_and_zero_length),
		T(test_pop_spans_regions),
		T(test_pop_indirect),
		T(test_chain_of_queue_size_ok),
		T(test_cache_refill_across_regions),
		T(test_cache_region_edges),
		T(test_zero_length_single),
		T(test_cache_dropped_on_deactivate),
		T(test_used_elem_layout),
		T(test_used_batch),
		T(test_used_batch_bad_head),
		T(test_used_batch_bad_head_tail),
		T(test_event_idx_used_event),
		T(test_event_idx_avail_event),
		T(test_wraparound),
		T(test_no_interrupt_and_no_notify),
		T(test_notify_on_empty),
		T(test_stats),
		T(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
