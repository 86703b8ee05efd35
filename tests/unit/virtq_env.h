/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device-side virtqueue test environment shared by test_virtq.c and
 * test_virtq_hostile.c: two adjacent guest memory regions, one struct
 * vdk_virtq driven by the guest_ring mock driver, a log sink that counts
 * messages, and expect_broken(), which checks how a queue stops on a
 * driver error.
 *
 * Header-only (every function static inline) because each unit test is
 * built from its one .c file. Include after <cmocka.h>.
 */
#ifndef VDK_TESTS_VIRTQ_ENV_H
#define VDK_TESTS_VIRTQ_ENV_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static inline void count_sink(void *opaque, enum vdk_log_level level,
			      const char *module, const char *msg)
{
	struct fx *f = opaque;

	(void)level;
	(void)module;
	f->log_calls++;
	strncpy(f->last_log, msg, sizeof(f->last_log) - 1);
}

static inline int setup(void **state)
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

static inline int teardown(void **state)
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
static inline void start(struct fx *f, uint16_t size, uint64_t features)
{
	assert_int_equal(guest_ring_init(&f->gr, f->mem, size, RING_GPA), 0);
	assert_int_equal(vdk_virtq_set_size(&f->q, size), 0);
	assert_int_equal(vdk_virtq_set_addrs(&f->q, f->gr.desc_gpa,
					     f->gr.avail_gpa, f->gr.used_gpa),
			 0);
	vdk_virtq_set_ready(&f->q, true);
	assert_int_equal(vdk_virtq_activate(&f->q, f->mem, features), 0);
}

/* Host address of @gpa in RAM0 or RAM1. */
static inline uint8_t *hva(struct fx *f, uint64_t gpa)
{
	return gpa >= RAM1_GPA ? f->ram1 + (gpa - RAM1_GPA)
			       : f->ram0 + (gpa - RAM0_GPA);
}

/* Make a one-descriptor chain of @len bytes at @gpa available; pop it. */
static inline void pop_one(struct fx *f, uint64_t gpa, uint32_t len,
			   bool writable)
{
	struct guest_buf b = {gpa, len, writable};

	assert_true(guest_ring_add_chain(&f->gr, &b, 1) >= 0);
	assert_int_equal(vdk_virtq_pop(&f->q, &f->chain), 1);
}

/*
 * The queue must be stopped with @err: this pop and the next fail with
 * -EIO, exactly one message was logged, and after a reset the queue works
 * again with a good chain.
 */
static inline void expect_broken(struct fx *f, int pop_ret,
				 enum vdk_virtq_error err)
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif /* VDK_TESTS_VIRTQ_ENV_H */
