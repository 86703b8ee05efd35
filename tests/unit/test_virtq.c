/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/virtq/split.c and src/virtq/chain.c: configuration and
 * activation checks, popping and returning chains (direct, indirect, across
 * regions), notification suppression with and without EVENT_IDX, 16-bit
 * index wrap-around, and one test per malformed-driver case, each checking
 * the exact error, that the queue stays stopped, that the error is logged
 * once and that reset clears it.
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

#include <linux/virtio_config.h>

#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "guest_ring.h"

/* Guest memory: RAM0 [0, 1 MiB) and RAM1 [1 MiB, 1 MiB + 64 KiB), two
 * adjacent regions backed by separate host buffers. */
#define RAM0_GPA	  0x0ull
#define RAM0_SIZE	  0x100000ull
#define RAM1_GPA	  (RAM0_GPA + RAM0_SIZE)
#define RAM1_SIZE	  0x10000ull
#define RING_GPA	  0x0ull
#define DATA_GPA	  0x20000ull /* buffers */
#define TABLE_GPA	  0x80000ull /* indirect tables */
#define HOLE_GPA	  0x40000000ull
#define QMAX		  256
#define IOV_CAP		  8

#define F_INDIRECT	  (1ull << VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVENT_IDX	  (1ull << VIRTIO_RING_F_EVENT_IDX)
#define F_NOTIFY_ON_EMPTY (1ull << VIRTIO_F_NOTIFY_ON_EMPTY)

struct fx {
	struct vdk_mem *mem;
	uint8_t *ram0, *ram1;
	struct vdk_virtq q;
	struct guest_ring gr;
	struct iovec iov[IOV_CAP];
	struct vdk_virtq_chain chain;
	int log_calls;
	char last_log[600];
};

static void count_sink(void *opaque, enum vdk_log_level level,
		       const char *module, const char *msg)
{
	struct fx *f = opaque;

	(void)level;
	(void)module;
	f->log_calls++;
	strncpy(f->last_log, msg, sizeof(f->last_log) - 1);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int err;

	assert_non_null(f);
	f->ram0 = aligned_alloc(4096, RAM0_SIZE);
	f->ram1 = aligned_alloc(4096, RAM1_SIZE);
	assert_non_null(f->ram0);
	assert_non_null(f->ram1);
	memset(f->ram0, 0, RAM0_SIZE);
	memset(f->ram1, 0, RAM1_SIZE);
	f->mem = vdk_mem_new(&err);
	assert_non_null(f->mem);
	assert_int_equal(vdk_mem_add_host(f->mem, RAM0_GPA, RAM0_SIZE, f->ram0),
			 0);
	assert_int_equal(vdk_mem_add_host(f->mem, RAM1_GPA, RAM1_SIZE, f->ram1),
			 0);
	assert_int_equal(vdk_virtq_init(&f->q, QMAX, 3), 0);
	f->chain.iov = f->iov;
	f->chain.iov_cap = IOV_CAP;
	vdk_log_set_sink(count_sink, f, VDK_LOG_DEBUG);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vdk_log_set_sink(NULL, NULL, VDK_LOG_WARN);
	vdk_mem_free(f->mem);
	free(f->ram0);
	free(f->ram1);
	free(f);
	return 0;
}

/* Configure and activate a queue of @size with its rings at RING_GPA. */
static void start(struct fx *f, uint16_t size, uint64_t features)
{
	assert_int_equal(guest_ring_init(&f->gr, f->mem, size, RING_GPA), 0);
	assert_int_equal(vdk_virtq_set_size(&f->q, size), 0);
	assert_int_equal(vdk_virtq_set_addrs(&f->q, f->gr.desc_gpa,
					     f->gr.avail_gpa, f->gr.used_gpa),
			 0);
	vdk_virtq_set_ready(&f->q, true);
	assert_int_equal(vdk_virtq_activate(&f->q, f->mem, features), 0);
}

static uint8_t *hva(struct fx *f, uint64_t gpa)
{
	return gpa >= RAM1_GPA ? f->ram1 + (gpa - RAM1_GPA)
			       : f->ram0 + (gpa - RAM0_GPA);
}

/*
 * The queue must be stopped with @err: this pop and the next fail with
 * -EIO, exactly one message was logged, and after a reset the queue works
 * again with a good chain.
 */
static void expect_broken(struct fx *f, int pop_ret, enum vdk_virtq_error err)
{
	struct guest_buf ok = {DATA_GPA, 8, false};

	assert_int_equal(pop_ret, -EIO);
	assert_int_equal(vdk_virtq_error(&f->q), err);
	assert_true(vdk_virtq_is_broken(&f->q));
	assert_int_equal(f->log_calls, 1);
	assert_non_null(strstr(f->last_log, "queue 3"));
	assert_non_null(strstr(f->last_log, vdk_virtq_strerror(err)));
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), -EIO);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), -EIO);
	assert_int_equal(vdk_virtq_add_used(&f->q, 0, 0), -EIO);
	assert_int_equal(f->log_calls, 1);

	vdk_virtq_reset(&f->q);
	assert_int_equal(vdk_virtq_error(&f->q), VDK_VIRTQ_OK);
	assert_false(f->q.active);
	start(f, 16, F_INDIRECT);
	assert_int_equal(guest_ring_add_chain(&f->gr, &ok, 1), 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.readable_len, 8);
}

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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

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
		T(test_event_idx_used_event),
		T(test_event_idx_avail_event),
		T(test_wraparound),
		T(test_no_interrupt_and_no_notify),
		T(test_notify_on_empty),
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
		T(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
