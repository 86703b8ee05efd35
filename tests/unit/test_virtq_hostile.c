/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/virtq/split.c and src/virtq/chain.c against a hostile
 * driver: one test per malformed-driver case (loops, bad indices, bad
 * indirect tables, buffers outside guest memory or wrapping, on the hot
 * path's cached region too, too many iovecs, lengths over 4 GiB, a device
 * returning chains it never took), each checking the exact error, that the
 * queue stays stopped, that the error is logged once and that reset clears
 * it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "guest_ring.h"
#include "virtq_env.h"

/* ---- malformed drivers: one test per rule ---- */

static void test_bad_chain_longer_than_queue(void **state)
{
	struct fx *f = *state;

	start(f, 4, 0);
	for (int i = 0; i < 4; i++)
		guest_ring_set_desc(&f->gr, i, DATA_GPA, 8, VRING_DESC_F_NEXT,
				    (i + 1) % 4);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_CHAIN_TOO_LONG);
}

static void test_bad_loop(void **state)
{
	struct fx *f = *state;

	start(f, 16, 0);
	guest_ring_set_desc(&f->gr, 3, DATA_GPA, 8, VRING_DESC_F_NEXT, 7);
	guest_ring_set_desc(&f->gr, 7, DATA_GPA, 0, VRING_DESC_F_NEXT, 7);
	guest_ring_push(&f->gr, 3);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_CHAIN_TOO_LONG);
}

static void test_bad_indirect_loop(void **state)
{
	struct fx *f = *state;

	start(f, 16, F_INDIRECT);
	guest_ring_write_desc(f->mem, TABLE_GPA, 0, DATA_GPA, 8,
			      VRING_DESC_F_NEXT, 1);
	guest_ring_write_desc(f->mem, TABLE_GPA, 1, DATA_GPA, 8,
			      VRING_DESC_F_NEXT, 0);
	guest_ring_set_desc(&f->gr, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_CHAIN_TOO_LONG);
}

static void test_bad_indirect_nested(void **state)
{
	struct fx *f = *state;

	start(f, 16, F_INDIRECT);
	guest_ring_write_desc(f->mem, TABLE_GPA, 0, DATA_GPA, 8,
			      VRING_DESC_F_NEXT, 1);
	guest_ring_write_desc(f->mem, TABLE_GPA, 1, TABLE_GPA, 32,
			      VRING_DESC_F_INDIRECT, 0);
	guest_ring_set_desc(&f->gr, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_INDIRECT_NESTED);
}

static void test_bad_indirect_len_zero(void **state)
{
	struct fx *f = *state;

	start(f, 16, F_INDIRECT);
	guest_ring_set_desc(&f->gr, 0, TABLE_GPA, 0, VRING_DESC_F_INDIRECT, 0);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_INDIRECT_LEN);
}

static void test_bad_indirect_len_not_multiple(void **state)
{
	struct fx *f = *state;

	start(f, 16, F_INDIRECT);
	guest_ring_set_desc(&f->gr, 0, TABLE_GPA, 24, VRING_DESC_F_INDIRECT, 0);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_INDIRECT_LEN);
}

static void test_bad_indirect_too_large(void **state)
{
	struct fx *f = *state;

	start(f, 16, F_INDIRECT);
	guest_ring_set_desc(&f->gr, 0, 0, 16 * (VDK_VIRTQ_MAX_SIZE + 1),
			    VRING_DESC_F_INDIRECT, 0);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_INDIRECT_LEN);
}

static void test_bad_indirect_with_next(void **state)
{
	struct fx *f = *state;

	start(f, 16, F_INDIRECT);
	guest_ring_write_desc(f->mem, TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
	guest_ring_set_desc(&f->gr, 0, TABLE_GPA, 16,
			    VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	guest_ring_set_desc(&f->gr, 1, DATA_GPA, 8, 0, 0);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_INDIRECT_NEXT);
}

static void test_bad_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, false};

	start(f, 16, 0);
	assert_int_equal(guest_ring_add_indirect(&f->gr, TABLE_GPA, &b, 1), 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_INDIRECT_FEATURE);
}

static void test_bad_indirect_addr(void **state)
{
	struct fx *f = *state;

	start(f, 16, F_INDIRECT);
	/* the table crosses from RAM1's end into the hole */
	guest_ring_set_desc(&f->gr, 0, RAM1_GPA + RAM1_SIZE - 16, 32,
			    VRING_DESC_F_INDIRECT, 0);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_INDIRECT_ADDR);
}

static void test_bad_write_before_read(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[3] = {
		{DATA_GPA, 8, false},
		{DATA_GPA + 8, 8, true},
		{DATA_GPA + 16, 8, false},
	};

	start(f, 16, 0);
	guest_ring_add_chain(&f->gr, b, 3);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_WRITE_BEFORE_READ);
}

static void test_bad_addr_outside(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {RAM1_GPA + RAM1_SIZE - 8, 16, true};

	start(f, 16, 0);
	guest_ring_add_chain(&f->gr, &b, 1);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_DESC_ADDR);
}

static void test_bad_addr_hole_in_chain(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[2] = {{DATA_GPA, 8, false}, {HOLE_GPA, 8, true}};

	start(f, 16, 0);
	guest_ring_add_chain(&f->gr, b, 2);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_DESC_ADDR);
}

static void test_bad_addr_wraps(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[2] = {{DATA_GPA, 8, false},
				 {0xfffffffffffff000ull, 0x2000, false}};

	start(f, 16, 0);
	guest_ring_add_chain(&f->gr, b, 2);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_DESC_ADDR);
}

static void test_bad_avail_idx(void **state)
{
	struct fx *f = *state;

	start(f, 16, 0);
	guest_ring_set_avail_idx(&f->gr, 17);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_AVAIL_IDX);
}

static void test_avail_idx_exactly_size_ok(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, false};

	start(f, 4, 0);
	for (int i = 0; i < 4; i++)
		guest_ring_add_chain(&f->gr, &b, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 0);
	/* moving backwards is "more than size ahead" modulo 2^16 */
	guest_ring_set_avail_idx(&f->gr, 3);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_AVAIL_IDX);
}

static void test_bad_head_index(void **state)
{
	struct fx *f = *state;

	start(f, 16, 0);
	guest_ring_push(&f->gr, 16);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_HEAD_INDEX);
}

static void test_bad_next_index(void **state)
{
	struct fx *f = *state;

	start(f, 16, 0);
	guest_ring_set_desc(&f->gr, 2, DATA_GPA, 8, VRING_DESC_F_NEXT, 16);
	guest_ring_push(&f->gr, 2);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_NEXT_INDEX);
}

static void test_bad_indirect_next_index(void **state)
{
	struct fx *f = *state;

	start(f, 16, F_INDIRECT);
	guest_ring_write_desc(f->mem, TABLE_GPA, 0, DATA_GPA, 8,
			      VRING_DESC_F_NEXT, 2);
	guest_ring_set_desc(&f->gr, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	guest_ring_push(&f->gr, 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_NEXT_INDEX);
}

static void test_bad_iov_full(void **state)
{
	struct fx *f = *state;
	struct guest_buf b[3] = {
		{DATA_GPA, 8, false},
		{DATA_GPA + 8, 8, true},
		{DATA_GPA + 16, 8, true},
	};

	start(f, 16, 0);
	f->chain.iov_cap = 2;
	guest_ring_add_chain(&f->gr, b, 3);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_IOV_FULL);
}

static void test_bad_iov_full_split(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {RAM1_GPA - 8, 16, false};

	start(f, 16, 0);
	f->chain.iov_cap = 1; /* the buffer needs two */
	guest_ring_add_chain(&f->gr, &b, 1);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_IOV_FULL);
}

static void test_bad_total_len(void **state)
{
	struct fx *f = *state;
	const uint64_t big_gpa = 0x100000000ull, big = 64ull << 20;
	struct iovec iov[80];
	void *p;

	/* 64 MiB of address space, never touched: 64 descriptors on it
	 * add up to exactly 4 GiB, one byte more than allowed */
	p = mmap(NULL, big, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(vdk_mem_add_host(f->mem, big_gpa, big, p), 0);
	start(f, 16, F_INDIRECT);
	f->chain.iov = iov;
	f->chain.iov_cap = 80;
	for (uint32_t i = 0; i < 64; i++)
		guest_ring_write_desc(f->mem, TABLE_GPA, i, big_gpa,
				      (uint32_t)big,
				      i < 63 ? VRING_DESC_F_NEXT : 0, i + 1);
	/* 63 of them are fine */
	guest_ring_set_desc(&f->gr, 0, TABLE_GPA, 63 * 16,
			    VRING_DESC_F_INDIRECT, 0);
	guest_ring_write_desc(f->mem, TABLE_GPA, 62, big_gpa, (uint32_t)big, 0,
			      0);
	guest_ring_push(&f->gr, 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.readable_len, 63 * big);
	guest_ring_write_desc(f->mem, TABLE_GPA, 62, big_gpa, (uint32_t)big,
			      VRING_DESC_F_NEXT, 63);
	guest_ring_set_desc(&f->gr, 1, TABLE_GPA, 64 * 16,
			    VRING_DESC_F_INDIRECT, 0);
	guest_ring_push(&f->gr, 1);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_TOTAL_LEN);
	f->chain.iov = f->iov;
	vdk_mem_remove(f->mem, big_gpa, big);
	munmap(p, big);
}

static void test_bad_used_id(void **state)
{
	struct fx *f = *state;

	start(f, 16, 0);
	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 0), -EINVAL);
	assert_int_equal(guest_ring_used_idx(&f->gr), 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_USED_ID);
}

static void test_bad_used_id_out_of_range(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, false};

	start(f, 16, 0);
	guest_ring_add_chain(&f->gr, &b, 1);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(vdk_virtq_add_used(&f->q, 16, 0), -EINVAL);
	assert_int_equal(guest_ring_used_idx(&f->gr), 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_USED_ID);
}

/* ---- the region cache: hostile buffers on the hot path ---- */

/* One byte past the cached region, which also ends guest memory. */
static void test_bad_addr_past_cached_region(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {RAM1_GPA + RAM1_SIZE - 7, 8, false};

	start(f, 16, 0);
	pop_one(f, RAM1_GPA + 0x100, 8, false);
	assert_int_equal(f->q.bufs.gpa, RAM1_GPA);
	assert_true(guest_ring_add_chain(&f->gr, &b, 1) >= 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_DESC_ADDR);
}

/* A one-descriptor chain whose buffer wraps the 64-bit address space and
 * ends inside the cached region (RAM0 starts at 0). */
static void test_bad_addr_wraps_into_cached_region(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {0xffffffffffffff00ull, 0x1100, true};

	start(f, 16, 0);
	assert_int_equal(f->q.bufs.gpa, RAM0_GPA);
	assert_true(guest_ring_add_chain(&f->gr, &b, 1) >= 0);
	expect_broken(f, vdk_virtq_pop(&f->q, &f->chain),
		      VDK_VIRTQ_ERR_DESC_ADDR);
}

/* No room for a single iovec: refused on the hot path too. */
static void test_bad_iov_cap_zero(void **state)
{
	struct fx *f = *state;
	struct guest_buf b = {DATA_GPA, 8, false};
	int ret;

	start(f, 16, 0);
	f->chain.iov_cap = 0;
	assert_true(guest_ring_add_chain(&f->gr, &b, 1) >= 0);
	ret = vdk_virtq_pop(&f->q, &f->chain);
	f->chain.iov_cap = IOV_CAP;
	expect_broken(f, ret, VDK_VIRTQ_ERR_IOV_FULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bad_chain_longer_than_queue),
		T(test_bad_loop),
		T(test_bad_indirect_loop),
		T(test_bad_indirect_nested),
		T(test_bad_indirect_len_zero),
		T(test_bad_indirect_len_not_multiple),
		T(test_bad_indirect_too_large),
		T(test_bad_indirect_with_next),
		T(test_bad_indirect_not_negotiated),
		T(test_bad_indirect_addr),
		T(test_bad_write_before_read),
		T(test_bad_addr_outside),
		T(test_bad_addr_hole_in_chain),
		T(test_bad_addr_wraps),
		T(test_bad_avail_idx),
		T(test_avail_idx_exactly_size_ok),
		T(test_bad_head_index),
		T(test_bad_next_index),
		T(test_bad_indirect_next_index),
		T(test_bad_iov_full),
		T(test_bad_iov_full_split),
		T(test_bad_total_len),
		T(test_bad_used_id),
		T(test_bad_used_id_out_of_range),
		T(test_bad_addr_past_cached_region),
		T(test_bad_addr_wraps_into_cached_region),
		T(test_bad_iov_cap_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
