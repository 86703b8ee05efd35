/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/transport/mmio.c, part 2: the transport's state as a
 * whole. QueueReset (virtio 1.2 §2.6.1, §4.2.2) against a device offering
 * VIRTIO_F_RING_RESET, and sleep, snapshot, restore and wake into a fresh
 * transport, with snapshots checked field by field for what restore must
 * refuse. Registers and the data path are in test_mmio.c; the environment
 * is mmio_env.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <vdk/mmio.h>

#include "echo_device.h"
#include "guest_ring.h"
#include "mmio_env.h"

/* ---- tests: QueueReset (virtio 1.2 §2.6.1, §4.2.2) -------------------- */

/* A device that offers VIRTIO_F_RING_RESET and records what it runs on. */
struct rr_dev {
	struct vdk_device vdev;
	struct vdk_virtq *queues[2];
	int sleeps, wakes;
};

static uint16_t rr_num_queues(void *d)
{
	(void)d;
	return 2;
}

static uint16_t rr_queue_max_size(void *d, uint16_t i)
{
	(void)d;
	(void)i;
	return ECHO_QUEUE_MAX_SIZE;
}

static uint64_t rr_features(void *d)
{
	(void)d;
	return F_VERSION_1 | (1ull << VIRTIO_F_RING_RESET);
}

static int rr_activate(void *d, const struct vdk_mem *mem,
		       struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct rr_dev *r = d;

	(void)mem;
	(void)irq;
	memcpy(r->queues, queues, sizeof(r->queues));
	return 0;
}

static int rr_reset(void *d)
{
	struct rr_dev *r = d;

	memset(r->queues, 0, sizeof(r->queues));
	return 0;
}

static int rr_sleep(void *d)
{
	struct rr_dev *r = d;

	r->sleeps++;
	memset(r->queues, 0, sizeof(r->queues));
	return 0;
}

static int rr_wake(void *d, const struct vdk_mem *mem,
		   struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct rr_dev *r = d;

	(void)irq;
	r->wakes++;
	if (mem)
		memcpy(r->queues, queues, sizeof(r->queues));
	return 0;
}

static const struct vdk_device_ops rr_ops = {
	.device_type = 0xfff0,
	.name = "rr",
	.num_queues = rr_num_queues,
	.queue_max_size = rr_queue_max_size,
	.features = rr_features,
	.activate = rr_activate,
	.reset = rr_reset,
	.sleep = rr_sleep,
	.wake = rr_wake,
};

static void test_queue_reset_needs_feature(void **state)
{
	struct fix *f = *state;
	struct vdk_virtq *q0 = vdk_mmio_queue(f->t, 0);

	full_init(f, F_VERSION_1);
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_RESET, 1);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_RESET), 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_true(q0->active);
	assert_int_equal(q0->size, QSIZE);
	/* Writing 0 to QueueReady does not stop a running queue either. */
	wr(f->t, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_true(q0->active);
}

static void test_queue_reset(void **state)
{
	struct fix *f = *state;
	struct rr_dev rr = {0};
	struct vdk_mmio *t;
	struct vdk_virtq *q0, *q1;
	const uint64_t features = F_VERSION_1 | (1ull << VIRTIO_F_RING_RESET);

	assert_int_equal(vdk_device_init(&rr.vdev, &rr_ops, &rr), 0);
	t = new_transport(f, &rr.vdev, false, 0);
	q0 = vdk_mmio_queue(t, 0);
	q1 = vdk_mmio_queue(t, 1);

	/* Before DRIVER_OK: the queue's configuration is forgotten. */
	assert_true(negotiate(t, features) & VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(f, t, 0, RING0_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_RESET, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_RESET), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(q0->size, ECHO_QUEUE_MAX_SIZE);
	assert_int_equal(q0->desc_gpa, 0);

	/* While running: the device sleeps, loses the queue, wakes. */
	setup_queue(f, t, 0, RING0_GPA);
	setup_queue(f, t, 1, RING1_GPA);
	driver_ok(t);
	assert_int_equal(rr.vdev.state, VDK_DEVICE_ACTIVE);
	assert_ptr_equal(rr.queues[0], q0);
	assert_ptr_equal(rr.queues[1], q1);
	assert_true(post_echo(f, 0, 8, 1) >= 0);
	assert_int_equal(vdk_virtq_set_next_avail(q0, 0), -EBUSY);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(t, VIRTIO_MMIO_QUEUE_RESET, 2); /* only 1 resets */
	assert_true(q0->active);
	wr(t, VIRTIO_MMIO_QUEUE_RESET, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_RESET), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(q0->active);
	assert_int_equal(q0->size, ECHO_QUEUE_MAX_SIZE);
	assert_null(rr.queues[0]);
	assert_ptr_equal(rr.queues[1], q1);
	assert_true(q1->active);
	assert_int_equal(rr.sleeps, 1);
	assert_int_equal(rr.wakes, 1);
	assert_false(rr.vdev.asleep);
	assert_int_equal(rr.vdev.state, VDK_DEVICE_ACTIVE);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS), 0xf);

	/* Re-enabling (§2.6.1.2) hands the queue back, from index 0. */
	setup_queue(f, t, 0, RING0_GPA + 0x10000);
	assert_true(q0->active);
	assert_ptr_equal(rr.queues[0], q0);
	assert_int_equal(q0->desc_gpa, RING0_GPA + 0x10000);
	assert_int_equal(vdk_virtq_next_avail(q0), 0);
	assert_int_equal(rr.wakes, 2);

	/* Re-enabling with an area outside memory: DEVICE_NEEDS_RESET. */
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(t, VIRTIO_MMIO_QUEUE_RESET, 1);
	assert_null(rr.queues[1]);
	set_queue_addrs(t, OUTSIDE_GPA, OUTSIDE_GPA, OUTSIDE_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_null(rr.queues[1]);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);

	vdk_mmio_free(t);
	assert_int_not_equal(rr.vdev.state, VDK_DEVICE_ACTIVE);
	vdk_device_fini(&rr.vdev);
}

/* ---- tests: sleep, snapshot, restore, wake ----------------------------- */

/* A second echo device and transport on the same guest memory. */
struct peer {
	struct echo_device *echo;
	struct vdk_device *dev;
	struct vdk_mmio *t;
};

static void peer_new(struct fix *f, struct peer *p)
{
	int err = -1;

	p->echo = echo_device_new(&err);
	assert_non_null(p->echo);
	p->dev = echo_device_vdk(p->echo);
	p->t = new_transport(f, p->dev, false, 0);
}

static void peer_free(struct peer *p)
{
	vdk_mmio_free(p->t);
	echo_device_free(p->echo);
}

/* Sleep, snapshot, and check what sleeping does to register access. */
static void take_snapshot(struct fix *f, uint8_t **buf, size_t *len)
{
	assert_int_equal(vdk_mmio_snapshot(f->t, buf, len), -EBUSY);
	assert_int_equal(vdk_mmio_sleep(f->t), 0);
	assert_int_equal(vdk_mmio_sleep(f->t), -EBUSY);
	/* Asleep: register accesses are ignored. */
	assert_int_equal(rd(f->t, VIRTIO_MMIO_MAGIC_VALUE), 0);
	wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(vdk_mmio_status(f->t), 0xf);
	assert_int_equal(vdk_mmio_snapshot(f->t, buf, len), 0);
	assert_non_null(*buf);
	assert_true(*len > 0);
}

static void test_snapshot_restore_wake(void **state)
{
	struct fix *f = *state;
	struct peer p;
	uint8_t *snap1 = NULL, *snap2 = NULL;
	size_t len1 = 0, len2 = 0;
	struct vdk_virtq *q, *orig = vdk_mmio_queue(f->t, 0);
	uint32_t id, len;

	full_init(f, F_VERSION_1 | F_INVERT);
	assert_true(post_echo(f, 0, 30, 1) >= 0);
	assert_true(post_echo(f, 1, 40, 2) >= 0);
	wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 2);
	echo_device_set_id(f->echo, (const uint8_t *)"migrated");
	wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	/* A request made available but not yet notified at migration. */
	assert_true(post_echo(f, 2, 50, 3) >= 0);
	take_snapshot(f, &snap1, &len1);
	assert_int_equal(vdk_virtq_next_avail(orig), 2);

	peer_new(f, &p);
	f->irq_calls = 0;
	f->irq_level = false;
	assert_int_equal(vdk_mmio_restore(p.t, snap1, len1), -EBUSY);
	assert_int_equal(vdk_mmio_sleep(p.t), 0);
	assert_int_equal(vdk_mmio_restore(p.t, snap1, len1 - 1), -EINVAL);
	assert_int_equal(vdk_mmio_restore(p.t, (const uint8_t *)"junk", 4),
			 -EINVAL);
	assert_int_equal(vdk_mmio_restore(p.t, snap1, len1), 0);
	q = vdk_mmio_queue(p.t, 0);
	assert_int_equal(vdk_virtq_next_avail(q), 2);
	assert_int_equal(vdk_virtq_next_used(q), 2);
	assert_int_equal(q->size, QSIZE);
	assert_int_equal(q->desc_gpa, f->gr[0].desc_gpa);
	assert_int_equal(q->device_gpa, f->gr[0].used_gpa);
	assert_true(q->ready);
	assert_int_equal(p.dev->state, VDK_DEVICE_ACTIVE);
	/* The restored transport snapshots to the same bytes. */
	assert_int_equal(vdk_mmio_snapshot(p.t, &snap2, &len2), 0);
	assert_int_equal(len2, len1);
	assert_memory_equal(snap2, snap1, len1);
	/* Restoring twice is refused: the transport is no longer fresh. */
	assert_int_equal(vdk_mmio_restore(p.t, snap1, len1), -EBUSY);
	assert_int_equal(f->irq_calls, 0);

	/* Wake: the line comes back up and the pending request is served,
	 * with the negotiated features (inverted echo). */
	assert_int_equal(vdk_mmio_wake(p.t), 0);
	assert_int_equal(vdk_mmio_wake(p.t), -EBUSY);
	assert_true(f->irq_level);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_STATUS), 0xf);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_QUEUE_NUM_MAX), /* QueueSel 1 */
			 ECHO_QUEUE_MAX_SIZE);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 3);
	guest_ring_set_last_used(&f->gr[0], 2);
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
	assert_int_equal(len, 50);
	check_echo_reply(f, 2, 50, 3, true);
	assert_int_equal(vdk_virtq_next_avail(q), 3);
	/* And it keeps going. */
	assert_true(post_echo(f, 3, 60, 4) >= 0);
	wr(p.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 4);
	check_echo_reply(f, 3, 60, 4, true);
	assert_int_equal(echo_device_config(p.echo).counter, 4);

	free(snap1);
	free(snap2);
	peer_free(&p);
}

static void test_snapshot_not_active(void **state)
{
	struct fix *f = *state;
	struct peer p;
	uint8_t *snap = NULL;
	size_t len = 0;

	/* Mid-initialisation: features negotiated, one queue configured. */
	assert_true(negotiate(f->t, F_VERSION_1) & VIRTIO_CONFIG_S_FEATURES_OK);
	setup_queue(f, f->t, 1, RING1_GPA);
	assert_int_equal(vdk_mmio_sleep(f->t), 0);
	assert_int_equal(vdk_mmio_snapshot(f->t, &snap, &len), 0);
	peer_new(f, &p);
	assert_int_equal(vdk_mmio_sleep(p.t), 0);
	assert_int_equal(vdk_mmio_restore(p.t, snap, len), 0);
	assert_int_equal(vdk_mmio_wake(p.t), 0);
	assert_int_equal(p.dev->acked_features, F_VERSION_1);
	assert_false(vdk_mmio_queue(p.t, 1)->active);
	assert_true(vdk_mmio_queue(p.t, 1)->ready);
	/* The driver finishes initialisation on the new transport. */
	setup_queue(f, p.t, 0, RING0_GPA);
	driver_ok(p.t);
	assert_int_equal(rd(p.t, VIRTIO_MMIO_STATUS), 0xf);
	assert_int_equal(p.dev->state, VDK_DEVICE_ACTIVE);
	assert_true(vdk_mmio_queue(p.t, 1)->active);
	free(snap);
	peer_free(&p);
}

/* Re-encode @snap with @key (in queues[0] if @in_queue) replaced. */
static void mutate(const uint8_t *snap, size_t len, bool in_queue,
		   const char *key, cbor_item_t *val, uint8_t **out,
		   size_t *out_len)
{
	struct cbor_load_result res;
	cbor_item_t *root = cbor_load(snap, len, &res);
	cbor_item_t *map = root;
	struct cbor_pair *pairs;
	size_t cap = 0;
	bool found = false;

	assert_non_null(root);
	if (in_queue) {
		pairs = cbor_map_handle(root);
		for (size_t i = 0; i < cbor_map_size(root); i++)
			if (cbor_string_length(pairs[i].key) == 6 &&
			    !memcmp(cbor_string_handle(pairs[i].key), "queues",
				    6))
				map = cbor_array_handle(pairs[i].value)[0];
	}
	pairs = cbor_map_handle(map);
	for (size_t i = 0; i < cbor_map_size(map); i++) {
		if (cbor_string_length(pairs[i].key) != strlen(key) ||
		    memcmp(cbor_string_handle(pairs[i].key), key, strlen(key)))
			continue;
		cbor_decref(&pairs[i].value);
		pairs[i].value = val;
		found = true;
	}
	assert_true(found);
	*out = NULL;
	*out_len = cbor_serialize_alloc(root, out, &cap);
	assert_true(*out_len > 0);
	cbor_decref(&root);
}

static void test_restore_validation(void **state)
{
	struct fix *f = *state;
	struct peer p;
	struct rr_dev rr = {0};
	struct vdk_mmio *trr;
	uint8_t *snap = NULL, *bad = NULL;
	size_t len = 0, bad_len = 0;
	static const struct {
		bool in_queue;
		const char *key;
		uint64_t value;
		int err;
	} cases[] = {
		{false, "version", 2, -EPROTO},
		{false, "status", 0x10f, -EINVAL},
		{false, "status", 0x1f, -EINVAL},
		{false, "interrupt_status", 4, -EINVAL},
		{false, "driver_features", F_VERSION_1 | (1ull << 7), -EINVAL},
		{false, "driver_features", F_INVERT, -EINVAL},
		{false, "active", 0, -EINVAL},
		{false, "queue_sel", 1ull << 32, -EINVAL},
		{true, "size", 48, -EINVAL},
		{true, "size", 512, -EINVAL},
		{true, "next_avail", 0x10000, -EINVAL},
		{true, "desc", OUTSIDE_GPA, -EFAULT},
		{true, "desc", RING0_GPA + 8, -EINVAL},
	};

	full_init(f, F_VERSION_1);
	take_snapshot(f, &snap, &len);
	peer_new(f, &p);
	assert_int_equal(vdk_mmio_sleep(p.t), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cbor_item_t *v = !strcmp(cases[i].key, "active")
					 ? cbor_build_bool(false)
					 : cbor_build_uint64(cases[i].value);

		mutate(snap, len, cases[i].in_queue, cases[i].key, v, &bad,
		       &bad_len);
		assert_int_equal(vdk_mmio_restore(p.t, bad, bad_len),
				 cases[i].err);
		free(bad);
		/* Nothing was left behind. */
		assert_int_not_equal(p.dev->state, VDK_DEVICE_ACTIVE);
		assert_false(vdk_mmio_queue(p.t, 0)->active);
		assert_int_equal(vdk_virtq_next_avail(vdk_mmio_queue(p.t, 0)),
				 0);
	}
	/* A wrong type where a number belongs. */
	mutate(snap, len, false, "status", cbor_build_string("0xf"), &bad,
	       &bad_len);
	assert_int_equal(vdk_mmio_restore(p.t, bad, bad_len), -EINVAL);
	free(bad);
	mutate(snap, len, false, "format", cbor_build_string("vdk-pci"), &bad,
	       &bad_len);
	assert_int_equal(vdk_mmio_restore(p.t, bad, bad_len), -EINVAL);
	free(bad);
	/* A header that declares 2^36 map entries is refused before anything
	 * is allocated for it; so are bytes after the snapshot. */
	{
		static const uint8_t huge[] = {0xbb, 0, 0, 0, 0x10, 0, 0, 0, 0};
		uint8_t *longer = malloc(len + 1);

		assert_int_equal(vdk_mmio_restore(p.t, huge, sizeof(huge)),
				 -EINVAL);
		assert_non_null(longer);
		memcpy(longer, snap, len);
		longer[len] = 0;
		assert_int_equal(vdk_mmio_restore(p.t, longer, len + 1),
				 -EINVAL);
		free(longer);
	}
	/* The untouched snapshot still restores. */
	assert_int_equal(vdk_mmio_restore(p.t, snap, len), 0);
	assert_int_equal(vdk_mmio_wake(p.t), 0);
	peer_free(&p);

	/* Another device type: the framework's -ENODEV, nothing activated. */
	assert_int_equal(vdk_device_init(&rr.vdev, &rr_ops, &rr), 0);
	trr = new_transport(f, &rr.vdev, false, 0);
	assert_int_equal(vdk_mmio_sleep(trr), 0);
	assert_int_equal(vdk_mmio_restore(trr, snap, len), -ENODEV);
	assert_false(vdk_mmio_queue(trr, 0)->active);
	assert_int_equal(vdk_mmio_wake(trr), 0);
	vdk_mmio_free(trr);
	vdk_device_fini(&rr.vdev);
	free(snap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* QueueReset */
		T(test_queue_reset_needs_feature),
		T(test_queue_reset),
		/* sleep, snapshot, restore, wake */
		T(test_snapshot_restore_wake),
		T(test_snapshot_not_active),
		T(test_restore_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
