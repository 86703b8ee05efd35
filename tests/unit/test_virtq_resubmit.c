/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for resubmission and tracking in src/virtq/split.c
 * (vdk_virtq_set_resubmit(), vdk_virtq_set_track(); QEMU vhost-user.rst
 * "Inflight I/O tracking"): resubmitted heads come first, in list order,
 * walked and validated like any chain (a malformed one stops the queue),
 * counted in flight, without moving the next available index; the list is
 * checked when set and refused once the queue popped; the track hook sees
 * every chain popped and every used element before it is published; a
 * queue without either behaves as before and keeps its fast path.
 * in_flight is exact when a device stops, gives chains back and the same
 * queue restarts with them resubmitted (each counted once, not twice).
 *
 * A "previous incarnation" of the device is played by a first queue that
 * pops chains and is dropped; a second queue on the same rings takes over.
 * The same-process restart reuses one queue: deactivate, resubmit list,
 * activate.
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

#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "guest_ring.h"

#define RAM_SIZE	  0x40000ull
#define RING_GPA	  0x0ull
#define DATA_GPA	  0x10000ull
#define TABLE_GPA	  0x30000ull
#define HOLE_GPA	  0x80000000ull
#define QSIZE		  16
#define IOV_CAP		  8
#define F_INDIRECT	  (1ull << VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVENT_IDX	  (1ull << VIRTIO_RING_F_EVENT_IDX)
#define F_NOTIFY_ON_EMPTY (1ull << VIRTIO_F_NOTIFY_ON_EMPTY)
#define MAX_EVENTS	  64

/* What the track hook saw. */
struct event {
	char kind; /* 'p' popped, 'u' used */
	uint16_t head;
	uint16_t used_idx_after;
	uint16_t used_idx_in_ring; /* guest's used->idx during the call */
};

struct fx {
	struct vdk_mem *mem;
	uint8_t *ram;
	struct vdk_virtq q;
	struct guest_ring gr;
	struct iovec iov[IOV_CAP];
	struct vdk_virtq_chain chain;
	struct event ev[MAX_EVENTS];
	int nev;
	int log_calls;
};

static void count_sink(void *opaque, enum vdk_log_level level,
		       const char *module, const char *msg)
{
	struct fx *f = opaque;

	(void)level;
	(void)module;
	(void)msg;
	f->log_calls++;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int err;

	assert_non_null(f);
	f->ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(f->ram);
	memset(f->ram, 0, RAM_SIZE);
	f->mem = vdk_mem_new(&err);
	assert_non_null(f->mem);
	assert_int_equal(vdk_mem_add_host(f->mem, 0, RAM_SIZE, f->ram), 0);
	assert_int_equal(guest_ring_init(&f->gr, f->mem, QSIZE, RING_GPA), 0);
	assert_int_equal(vdk_virtq_init(&f->q, QSIZE, 0), 0);
	vdk_log_set_sink(count_sink, f, VDK_LOG_DEBUG);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vdk_log_set_sink(NULL, NULL, VDK_LOG_INFO);
	vdk_virtq_reset(&f->q); /* frees a pending resubmit list */
	vdk_mem_free(f->mem);
	free(f->ram);
	free(f);
	return 0;
}

/* Configure @q on the guest ring and activate it. */
static void start(struct fx *f, struct vdk_virtq *q, uint64_t features)
{
	assert_int_equal(vdk_virtq_set_addrs(q, f->gr.desc_gpa, f->gr.avail_gpa,
					     f->gr.used_gpa),
			 0);
	vdk_virtq_set_ready(q, true);
	assert_int_equal(vdk_virtq_activate(q, f->mem, features), 0);
}

/* Post one chain: a readable 16-byte header and a writable buffer. */
static uint16_t post(struct fx *f, unsigned k)
{
	struct guest_buf b[2] = {
		{DATA_GPA + 0x1000 * k, 16, false},
		{DATA_GPA + 0x1000 * k + 0x100, 64 + k, true},
	};
	int head = guest_ring_add_chain(&f->gr, b, 2);

	assert_true(head >= 0);
	return (uint16_t)head;
}

static int pop(struct fx *f, struct vdk_virtq *q)
{
	f->chain = (struct vdk_virtq_chain){.iov = f->iov, .iov_cap = IOV_CAP};
	return vdk_virtq_pop(q, &f->chain);
}

/* The chain popped is the one post(f, k) made. */
static void assert_chain_is(struct fx *f, uint16_t head, unsigned k)
{
	assert_int_equal(f->chain.head, head);
	assert_int_equal(f->chain.num_readable, 1);
	assert_int_equal(f->chain.num_writable, 1);
	assert_int_equal(f->chain.readable_len, 16);
	assert_int_equal(f->chain.writable_len, 64 + k);
	assert_ptr_equal(f->iov[0].iov_base, f->ram + DATA_GPA + 0x1000 * k);
	assert_ptr_equal(f->iov[1].iov_base,
			 f->ram + DATA_GPA + 0x1000 * k + 0x100);
}

/* A previous device popped the chains of @n posts and stopped without
 * returning them; returns their heads in @heads. */
static void previous_incarnation(struct fx *f, unsigned n, uint16_t *heads)
{
	struct vdk_virtq old;

	assert_int_equal(vdk_virtq_init(&old, QSIZE, 0), 0);
	start(f, &old, 0);
	for (unsigned k = 0; k < n; k++)
		heads[k] = post(f, k);
	for (unsigned k = 0; k < n; k++) {
		assert_int_equal(pop(f, &old), 1);
		assert_chain_is(f, heads[k], k);
	}
	assert_int_equal(vdk_virtq_next_avail(&old), n);
	vdk_virtq_reset(&old);
}

/* ---- the track hook that records ---- */

static void rec_popped(void *opaque, uint16_t head)
{
	struct fx *f = opaque;

	assert_true(f->nev < MAX_EVENTS);
	f->ev[f->nev++] = (struct event){.kind = 'p', .head = head};
}

static void rec_used(void *opaque, uint16_t head, uint16_t used_idx_after)
{
	struct fx *f = opaque;

	assert_true(f->nev < MAX_EVENTS);
	f->ev[f->nev++] = (struct event){
		.kind = 'u',
		.head = head,
		.used_idx_after = used_idx_after,
		.used_idx_in_ring = guest_ring_used_idx(&f->gr),
	};
}

static const struct vdk_virtq_track_ops rec_ops = {
	.popped = rec_popped,
	.used = rec_used,
};

/* ---- tests ---- */

/* Resubmitted heads come first, in list order, then the available ring;
 * next_avail does not move for them; all go to the used ring. */
static void test_resubmit_comes_first(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	uint16_t h[5], order[3];
	uint32_t id, len;

	previous_incarnation(f, 3, h);
	/* two more made available after the crash */
	h[3] = post(f, 3);
	h[4] = post(f, 4);
	/* the new device: past the 3 taken, resubmit them by counter */
	order[0] = h[2];
	order[1] = h[0];
	order[2] = h[1];
	assert_int_equal(vdk_virtq_set_next_avail(q, 3), 0);
	assert_int_equal(vdk_virtq_set_resubmit(q, order, 3), 0);
	assert_int_equal(q->resubmit_num, 3);
	order[0] = 15; /* the list was copied */
	start(f, q, 0);
	assert_false(q->fast);
	assert_true(vdk_virtq_has_avail(q));

	const unsigned k_of[3] = {2, 0, 1};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pop(f, q), 1);
		assert_chain_is(f, h[k_of[i]], k_of[i]);
		assert_int_equal(vdk_virtq_next_avail(q), 3);
		assert_int_equal(q->in_flight, (uint32_t)i + 1);
	}
	/* the list is spent and freed: the fast path is back */
	assert_null(q->resubmit);
	assert_true(q->fast);
	assert_int_equal(pop(f, q), 1);
	assert_chain_is(f, h[3], 3);
	assert_int_equal(pop(f, q), 1);
	assert_chain_is(f, h[4], 4);
	assert_int_equal(vdk_virtq_next_avail(q), 5);
	assert_int_equal(pop(f, q), 0);
	assert_false(vdk_virtq_has_avail(q));

	/* returned like any chain */
	const unsigned done[5] = {2, 0, 1, 3, 4};
	for (int i = 0; i < 5; i++)
		assert_int_equal(vdk_virtq_add_used(q, h[done[i]], 7 + i), 0);
	assert_int_equal(q->in_flight, 0);
	assert_int_equal(vdk_virtq_add_used(q, h[0], 0), -EINVAL);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(guest_ring_get_used(&f->gr, &id, &len), 1);
		assert_int_equal(id, h[done[i]]);
		assert_int_equal(len, 7 + i);
	}
}

/* The list is checked when set; refused once the queue has popped. */
static void test_resubmit_list_checks(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	const uint16_t big[] = {3, QSIZE};
	const uint16_t dup[] = {3, 5, 3};
	const uint16_t ok[] = {5, 3};
	uint16_t h[2];

	assert_int_equal(vdk_virtq_set_resubmit(q, ok, 2), 0);
	assert_int_equal(vdk_virtq_set_resubmit(q, big, 2), -EINVAL);
	assert_int_equal(vdk_virtq_set_resubmit(q, dup, 3), -EINVAL);
	assert_int_equal(vdk_virtq_set_resubmit(q, NULL, 1), -EINVAL);
	/* unchanged by the refusals */
	assert_int_equal(q->resubmit_num, 2);
	assert_int_equal(q->resubmit[0], 5);
	assert_int_equal(q->resubmit[1], 3);
	/* a smaller queue refuses what a larger one took */
	assert_int_equal(vdk_virtq_set_size(q, 4), 0);
	assert_int_equal(vdk_virtq_set_resubmit(q, ok, 2), -EINVAL);
	assert_int_equal(vdk_virtq_set_size(q, QSIZE), 0);
	/* 0 drops the list */
	assert_int_equal(vdk_virtq_set_resubmit(q, NULL, 0), 0);
	assert_int_equal(q->resubmit_num, 0);
	assert_null(q->resubmit);

	/* active, before the first pop: allowed */
	previous_incarnation(f, 2, h);
	assert_int_equal(vdk_virtq_set_next_avail(q, 2), 0);
	start(f, q, 0);
	assert_int_equal(vdk_virtq_set_resubmit(q, h, 2), 0);
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(f->chain.head, h[0]);
	/* after a pop: refused, even to drop it */
	assert_int_equal(vdk_virtq_set_resubmit(q, &h[1], 1), -EBUSY);
	assert_int_equal(vdk_virtq_set_resubmit(q, NULL, 0), -EBUSY);
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(f->chain.head, h[1]);
	/* spent: still refused until the next activation */
	assert_int_equal(vdk_virtq_set_resubmit(q, &h[1], 1), -EBUSY);
	vdk_virtq_deactivate(q);
	assert_int_equal(vdk_virtq_set_resubmit(q, &h[1], 1), 0);
	start(f, q, 0);
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(f->chain.head, h[1]);
	/* a fresh pop after activation also closes the window */
	vdk_virtq_deactivate(q);
	start(f, q, 0);
	post(f, 5);
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(vdk_virtq_set_resubmit(q, h, 1), -EBUSY);
	/* reset drops a pending list (ASan: no leak) */
	vdk_virtq_reset(q);
	assert_int_equal(vdk_virtq_set_resubmit(q, ok, 2), 0);
	vdk_virtq_reset(q);
	assert_null(q->resubmit);
	assert_int_equal(q->resubmit_num, 0);
	assert_int_equal(f->log_calls, 0);
}

/* A resubmitted head is walked like a fresh chain: bad ones stop the
 * queue. */
static void test_resubmit_validated(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	struct guest_buf ind[1] = {{DATA_GPA, 32, true}};
	uint16_t head;

	/* next index out of the table */
	assert_int_equal(guest_ring_set_desc(&f->gr, 4, DATA_GPA, 16,
					     VRING_DESC_F_NEXT, QSIZE),
			 0);
	head = 4;
	assert_int_equal(vdk_virtq_set_resubmit(q, &head, 1), 0);
	start(f, q, 0);
	assert_int_equal(pop(f, q), -EIO);
	assert_int_equal(vdk_virtq_error(q), VDK_VIRTQ_ERR_NEXT_INDEX);
	assert_int_equal(vdk_virtq_next_avail(q), 0);
	assert_int_equal(q->in_flight, 0);
	assert_int_equal(pop(f, q), -EIO);
	assert_int_equal(f->log_calls, 1);

	/* buffer outside guest memory */
	vdk_virtq_reset(q);
	assert_int_equal(guest_ring_set_desc(&f->gr, 6, HOLE_GPA, 16,
					     VRING_DESC_F_WRITE, 0),
			 0);
	head = 6;
	assert_int_equal(vdk_virtq_set_resubmit(q, &head, 1), 0);
	start(f, q, 0);
	assert_int_equal(pop(f, q), -EIO);
	assert_int_equal(vdk_virtq_error(q), VDK_VIRTQ_ERR_DESC_ADDR);

	/* an indirect table: refused without the feature, taken with it */
	vdk_virtq_reset(q);
	assert_int_equal(guest_ring_init(&f->gr, f->mem, QSIZE, RING_GPA), 0);
	assert_int_equal(guest_ring_add_indirect(&f->gr, TABLE_GPA, ind, 1), 0);
	head = 0;
	assert_int_equal(vdk_virtq_set_next_avail(q, 1), 0);
	assert_int_equal(vdk_virtq_set_resubmit(q, &head, 1), 0);
	start(f, q, 0);
	assert_int_equal(pop(f, q), -EIO);
	assert_int_equal(vdk_virtq_error(q), VDK_VIRTQ_ERR_INDIRECT_FEATURE);
	vdk_virtq_reset(q);
	assert_int_equal(vdk_virtq_set_next_avail(q, 1), 0);
	assert_int_equal(vdk_virtq_set_resubmit(q, &head, 1), 0);
	start(f, q, F_INDIRECT);
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(f->chain.writable_len, 32);
	assert_int_equal(pop(f, q), 0);

	/* a head that the queue outgrew: the size shrank after the list was
	 * set, the head is checked again at pop */
	vdk_virtq_reset(q);
	head = 12;
	assert_int_equal(vdk_virtq_set_resubmit(q, &head, 1), 0);
	assert_int_equal(vdk_virtq_set_size(q, 8), 0);
	assert_int_equal(guest_ring_init(&f->gr, f->mem, 8, RING_GPA), 0);
	start(f, q, 0);
	assert_int_equal(pop(f, q), -EIO);
	assert_int_equal(vdk_virtq_error(q), VDK_VIRTQ_ERR_HEAD_INDEX);
}

/* The hook sees every pop (fresh and resubmitted) and every used element,
 * before the used index moves; nothing on failures; removable. */
static void test_track_hook(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	uint16_t h[4];

	previous_incarnation(f, 1, h);
	h[1] = post(f, 1);
	assert_int_equal(vdk_virtq_set_next_avail(q, 1), 0);
	assert_int_equal(vdk_virtq_set_resubmit(q, h, 1), 0);
	vdk_virtq_set_track(q, &rec_ops, f);
	start(f, q, F_EVENT_IDX);
	assert_false(q->fast);
	assert_int_equal(pop(f, q), 1); /* resubmitted */
	assert_int_equal(pop(f, q), 1); /* fresh */
	assert_int_equal(pop(f, q), 0); /* empty: no call */
	assert_int_equal(f->nev, 2);
	assert_int_equal(f->ev[0].kind, 'p');
	assert_int_equal(f->ev[0].head, h[0]);
	assert_int_equal(f->ev[1].kind, 'p');
	assert_int_equal(f->ev[1].head, h[1]);
	/* still tracked after the list is spent */
	assert_false(q->fast);

	assert_int_equal(vdk_virtq_add_used(q, h[1], 1), 0);
	assert_int_equal(vdk_virtq_add_used(q, h[0], 2), 0);
	assert_int_equal(f->nev, 4);
	for (int i = 0; i < 2; i++) {
		const struct event *e = &f->ev[2 + i];

		assert_int_equal(e->kind, 'u');
		assert_int_equal(e->head, i == 0 ? h[1] : h[0]);
		assert_int_equal(e->used_idx_after, i + 1);
		/* called before the used index was published */
		assert_int_equal(e->used_idx_in_ring, i);
	}
	assert_int_equal(guest_ring_used_idx(&f->gr), 2);
	/* refused add_used: no call */
	assert_int_equal(vdk_virtq_add_used(q, h[0], 0), -EINVAL);
	assert_int_equal(f->nev, 4);
	assert_int_equal(vdk_virtq_add_used(q, h[0], 0), -EIO);
	assert_int_equal(f->nev, 4);

	/* removed: no more calls, the fast path is back */
	vdk_virtq_reset(q);
	vdk_virtq_set_track(q, &rec_ops, f);
	vdk_virtq_set_track(q, NULL, NULL);
	assert_null(q->track);
	assert_int_equal(guest_ring_init(&f->gr, f->mem, QSIZE, RING_GPA), 0);
	start(f, q, 0);
	assert_true(q->fast);
	h[2] = post(f, 2);
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(vdk_virtq_add_used(q, h[2], 0), 0);
	assert_int_equal(f->nev, 4);
	/* a hook set while active, on the queue's thread, takes effect */
	vdk_virtq_set_track(q, &rec_ops, f);
	assert_false(q->fast);
	h[3] = post(f, 3);
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(vdk_virtq_add_used(q, h[3], 0), 0);
	assert_int_equal(f->nev, 6);
	assert_int_equal(f->ev[4].head, h[3]);
	assert_int_equal(f->ev[5].used_idx_after, 2);
	/* reset removes the hook */
	vdk_virtq_reset(q);
	assert_null(q->track);
}

/* A hook with one member NULL: that member is not called. */
static void test_track_partial_ops(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	const struct vdk_virtq_track_ops only_used = {.used = rec_used};
	uint16_t h;

	vdk_virtq_set_track(q, &only_used, f);
	start(f, q, 0);
	h = post(f, 0);
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(f->nev, 0);
	assert_int_equal(vdk_virtq_add_used(q, h, 0), 0);
	assert_int_equal(f->nev, 1);
	assert_int_equal(f->ev[0].kind, 'u');
}

/* Without hook or list: as before, on the fast path; the flag follows
 * activation, errors and the two settings. */
static void test_default_unchanged(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	uint16_t h[2], one = 9;
	uint32_t id, len;

	assert_null(q->track);
	assert_null(q->resubmit);
	assert_false(q->fast);
	start(f, q, 0);
	assert_true(q->fast);
	h[0] = post(f, 0);
	h[1] = post(f, 1);
	assert_int_equal(pop(f, q), 1);
	assert_chain_is(f, h[0], 0);
	assert_int_equal(vdk_virtq_add_used(q, h[0], 5), 0);
	assert_int_equal(guest_ring_get_used(&f->gr, &id, &len), 1);
	assert_int_equal(id, h[0]);
	assert_int_equal(len, 5);
	/* deactivated: not fast, pop refused; back on activation */
	vdk_virtq_deactivate(q);
	assert_false(q->fast);
	assert_int_equal(pop(f, q), -EIO);
	assert_int_equal(vdk_virtq_add_used(q, h[0], 0), -EIO);
	start(f, q, 0);
	assert_true(q->fast);
	/* a pending list (set while inactive) turns it off until spent */
	vdk_virtq_deactivate(q);
	assert_int_equal(vdk_virtq_set_resubmit(q, &one, 1), 0);
	assert_int_equal(guest_ring_set_desc(&f->gr, one, DATA_GPA, 8,
					     VRING_DESC_F_WRITE, 0),
			 0);
	start(f, q, 0);
	assert_false(q->fast);
	/* enable_notification says "pop again" while heads are pending */
	assert_true(vdk_virtq_enable_notification(q, true));
	assert_int_equal(pop(f, q), 1);
	assert_int_equal(f->chain.head, one);
	assert_true(q->fast);
	assert_int_equal(pop(f, q), 1);
	assert_chain_is(f, h[1], 1);
	assert_false(vdk_virtq_enable_notification(q, true));
	/* a driver error turns it off for good */
	assert_int_equal(guest_ring_push(&f->gr, QSIZE + 1), 0);
	assert_int_equal(pop(f, q), -EIO);
	assert_false(q->fast);
	assert_int_equal(vdk_virtq_error(q), VDK_VIRTQ_ERR_HEAD_INDEX);
}

/* Pop one chain and return its head (a fault unless one is popped). */
static uint16_t pop_head(struct fx *f, struct vdk_virtq *q)
{
	assert_int_equal(pop(f, q), 1);
	return f->chain.head;
}

/*
 * One queue, one process: the device pops three chains, returns one, stops
 * and gives the other two back; the queue restarts with them resubmitted
 * (as vhost-user does from its inflight region). Each is counted in flight
 * once: after all are returned in_flight is 0, a further add_used is
 * refused, and VIRTIO_F_NOTIFY_ON_EMPTY notifies on the now empty queue.
 */
static void test_in_flight_restart_same_queue(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	uint16_t h[4], again[2];

	vdk_virtq_set_track(q, &rec_ops, f); /* tracked, as vhost-user */
	start(f, q, F_NOTIFY_ON_EMPTY);
	for (unsigned k = 0; k < 3; k++)
		h[k] = post(f, k);
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(pop_head(f, q), h[k]);
	assert_int_equal(q->in_flight, 3);
	assert_int_equal(vdk_virtq_add_used(q, h[0], 1), 0);
	assert_int_equal(q->in_flight, 2);

	/* stop: h[1] and h[2] handed back; restart resubmitting them */
	vdk_virtq_deactivate(q);
	again[0] = h[2];
	again[1] = h[1];
	assert_int_equal(vdk_virtq_set_resubmit(q, again, 2), 0);
	assert_int_equal(q->in_flight, 0); /* given back */
	start(f, q, F_NOTIFY_ON_EMPTY);
	assert_int_equal(pop_head(f, q), h[2]);
	assert_int_equal(pop_head(f, q), h[1]);
	assert_int_equal(q->in_flight, 2); /* not 4 */
	h[3] = post(f, 3);
	assert_int_equal(pop_head(f, q), h[3]);
	assert_int_equal(q->in_flight, 3);
	assert_int_equal(pop(f, q), 0);

	/* the driver suppresses notifications: only "empty" overrides it */
	assert_int_equal(
		guest_ring_set_avail_flags(&f->gr, VRING_AVAIL_F_NO_INTERRUPT),
		0);
	assert_int_equal(vdk_virtq_add_used(q, h[1], 2), 0);
	assert_int_equal(vdk_virtq_add_used(q, h[3], 3), 0);
	assert_false(vdk_virtq_should_notify(q)); /* h[2] still out */
	assert_int_equal(vdk_virtq_add_used(q, h[2], 4), 0);
	assert_int_equal(q->in_flight, 0);
	assert_true(vdk_virtq_should_notify(q)); /* empty: notify */
	/* nothing is in flight: a fifth used element is a device bug */
	assert_int_equal(vdk_virtq_add_used(q, h[0], 0), -EINVAL);
	assert_int_equal(vdk_virtq_error(q), VDK_VIRTQ_ERR_USED_ID);
	assert_int_equal(guest_ring_used_idx(&f->gr), 4);
}

/*
 * Restarts in a row: a list of three resubmitted, one popped again before
 * the next stop; the next start lists all three again (the region still
 * marks them). Exactly three are in flight once they are popped, whatever
 * happened before.
 */
static void test_in_flight_restart_twice(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	uint16_t h[3];

	previous_incarnation(f, 3, h); /* a crashed process took three */
	assert_int_equal(vdk_virtq_set_next_avail(q, 3), 0);
	assert_int_equal(vdk_virtq_set_resubmit(q, h, 3), 0);
	start(f, q, 0);
	assert_int_equal(q->in_flight, 0);
	assert_int_equal(pop_head(f, q), h[0]);
	assert_int_equal(q->in_flight, 1);

	for (int restart = 0; restart < 3; restart++) {
		vdk_virtq_deactivate(q);
		assert_int_equal(vdk_virtq_set_resubmit(q, h, 3), 0);
		assert_int_equal(q->in_flight, 0);
		start(f, q, 0);
		for (unsigned k = 0; k < 3; k++)
			assert_int_equal(pop_head(f, q), h[k]);
		assert_int_equal(q->in_flight, 3);
		assert_int_equal(pop(f, q), 0);
		assert_int_equal(vdk_virtq_next_avail(q), 3);
	}
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(vdk_virtq_add_used(q, h[k], 0), 0);
	assert_int_equal(q->in_flight, 0);
	assert_int_equal(vdk_virtq_add_used(q, h[0], 0), -EINVAL);
}

/*
 * Without an inflight region the chains given back are not resubmitted;
 * dropping the (empty) list at the stop still takes them out of in_flight:
 * the device cannot return them after the restart. A queue only
 * deactivated and activated again (a sleeping device that keeps its chains)
 * keeps its count. A refused list changes nothing.
 */
static void test_in_flight_given_back_without_list(void **state)
{
	struct fx *f = *state;
	struct vdk_virtq *q = &f->q;
	const uint16_t dup[] = {1, 1};
	uint16_t h[4];

	start(f, q, 0);
	for (unsigned k = 0; k < 3; k++)
		h[k] = post(f, k);
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(pop_head(f, q), h[k]);
	assert_int_equal(q->in_flight, 3);

	/* sleep and wake: the device still holds them */
	vdk_virtq_deactivate(q);
	start(f, q, 0);
	assert_int_equal(q->in_flight, 3);
	assert_int_equal(vdk_virtq_add_used(q, h[0], 0), 0);
	h[3] = post(f, 3);
	assert_int_equal(pop_head(f, q), h[3]);
	assert_int_equal(q->in_flight, 3);
	/* refused lists and a refused drop: count unchanged */
	assert_int_equal(vdk_virtq_set_resubmit(q, NULL, 0), -EBUSY);
	assert_int_equal(vdk_virtq_set_resubmit(q, &h[1], 1), -EBUSY);
	vdk_virtq_deactivate(q);
	assert_int_equal(vdk_virtq_set_resubmit(q, dup, 2), -EINVAL);
	assert_int_equal(vdk_virtq_set_resubmit(q, NULL, 1), -EINVAL);
	assert_int_equal(q->in_flight, 3);

	/* stopped for good: h[1..3] given back, not resubmitted */
	assert_int_equal(vdk_virtq_set_resubmit(q, NULL, 0), 0);
	assert_int_equal(q->in_flight, 0);
	start(f, q, 0);
	assert_int_equal(pop(f, q), 0);
	assert_int_equal(vdk_virtq_add_used(q, h[1], 0), -EINVAL);
	assert_int_equal(vdk_virtq_error(q), VDK_VIRTQ_ERR_USED_ID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resubmit_comes_first,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_resubmit_list_checks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_resubmit_validated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_track_hook, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_track_partial_ops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_default_unchanged, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_in_flight_restart_same_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_flight_restart_twice,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_in_flight_given_back_without_list, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
