/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of virtio-rng (src/devices/rng.c, virtio 1.2 §5.4): requests,
 * limits, driver errors, the ring features it offers (event index, indirect
 * descriptors), its snapshot format; then the device conformance suite.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "conformance.h"
#include "guest_ring.h"

#define MEM_SIZE (1u << 20)
#define QSIZE	 32
#define POISON	 0x00

static void quiet_sink(void *opaque, enum vdk_log_level level,
		       const char *module, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

struct env {
	struct vdk_mem *mem;
	struct vdk_rng *rng;
	struct vdk_device *dev;
	struct vdk_virtq q;
	struct vdk_virtq *qp[1];
	struct guest_ring gr;
	struct vdk_interrupt irq;
	int used_signals, needs_reset;
};

static void on_used(void *o, uint16_t q)
{
	assert_int_equal(q, VDK_RNG_REQUESTQ);
	((struct env *)o)->used_signals++;
}

static void on_reset(void *o)
{
	((struct env *)o)->needs_reset++;
}

static const struct vdk_interrupt_ops irq_ops = {
	.signal_used_queue = on_used,
	.set_needs_reset = on_reset,
};

static int setup_cfg(void **state, const struct vdk_rng_config *cfg)
{
	struct env *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->mem = vdk_mem_new(NULL);
	if (!t->mem || vdk_mem_add_memfd(t->mem, 0, MEM_SIZE, "rng") < 0)
		return -1;
	if (!(t->rng = vdk_rng_new(cfg, NULL)))
		return -1;
	t->dev = vdk_rng_device(t->rng);
	vdk_interrupt_init_callback(&t->irq, &irq_ops, t);
	*state = t;
	return 0;
}

static int setup(void **state)
{
	return setup_cfg(state, NULL);
}

static int setup_limited(void **state)
{
	const struct vdk_rng_config cfg = {.queue_max_size = 64,
					   .max_bytes_per_request = 100};

	return setup_cfg(state, &cfg);
}

static int teardown(void **state)
{
	struct env *t = *state;

	vdk_rng_free(t->rng);
	vdk_mem_free(t->mem);
	free(t);
	return 0;
}

static void activate_with(struct env *t, uint64_t f)
{

	assert_int_equal(vdk_device_ack_features(t->dev, f), 0);
	assert_int_equal(guest_ring_init(&t->gr, t->mem, QSIZE, 0), 0);
	assert_int_equal(
		vdk_virtq_init(&t->q,
			       t->dev->ops->queue_max_size(t->dev->impl, 0), 0),
		0);
	assert_int_equal(vdk_virtq_set_size(&t->q, QSIZE), 0);
	assert_int_equal(vdk_virtq_set_addrs(&t->q, t->gr.desc_gpa,
					     t->gr.avail_gpa, t->gr.used_gpa),
			 0);
	vdk_virtq_set_ready(&t->q, true);
	assert_int_equal(vdk_virtq_activate(&t->q, t->mem, f), 0);
	t->qp[0] = &t->q;
	assert_int_equal(vdk_device_activate(t->dev, t->mem, &t->irq, t->qp),
			 0);
}

static void activate(struct env *t)
{
	activate_with(t, 1ull << VIRTIO_F_VERSION_1);
}

static void fill(struct env *t, uint64_t gpa, uint8_t v, size_t len)
{
	uint8_t buf[4096];

	assert_true(len <= sizeof(buf));
	memset(buf, v, len);
	assert_int_equal(vdk_mem_write(t->mem, gpa, buf, len), 0);
}

static size_t count_nonzero(struct env *t, uint64_t gpa, size_t len)
{
	uint8_t buf[4096];
	size_t n = 0;

	assert_true(len <= sizeof(buf));
	assert_int_equal(vdk_mem_read(t->mem, gpa, buf, len), 0);
	for (size_t i = 0; i < len; i++)
		n += buf[i] != 0;
	return n;
}

static void test_identity(void **state)
{
	struct env *t = *state;
	int err = 0;

	assert_int_equal(t->dev->ops->device_type, VIRTIO_ID_RNG);
	assert_int_equal(t->dev->num_queues, 1);
	/* No device-specific bits (§5.4.3); the virtqueue's ring features. */
	assert_int_equal(t->dev->ops->features(t->dev->impl),
			 (1ull << VIRTIO_F_VERSION_1) |
				 (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
				 (1ull << VIRTIO_RING_F_EVENT_IDX));
	assert_int_equal(t->dev->ops->config_size, 0);
	assert_int_equal(t->dev->ops->queue_max_size(t->dev->impl, 0),
			 VDK_RNG_DEFAULT_QUEUE_SIZE);
	/* No configuration space: every access is out of range. */
	uint8_t b = 0xaa;
	assert_int_equal(vdk_device_read_config(t->dev, 0, &b, 1), -ERANGE);
	assert_int_equal(b, 0);
	assert_int_equal(vdk_device_ack_features(t->dev, 1), -EINVAL);

	const struct vdk_rng_config bad = {.queue_max_size = 100};
	assert_null(vdk_rng_new(&bad, &err));
	assert_int_equal(err, -EINVAL);
	vdk_rng_free(NULL);
}

static void test_fills_writable(void **state)
{
	struct env *t = *state;
	/* 64 bytes split over two descriptors, after a readable one. */
	struct guest_buf b[3] = {
		{0x10000, 16, false},
		{0x20000, 40, true},
		{0x30000, 24, true},
	};
	uint32_t id, len;
	int head;

	activate(t);
	fill(t, 0x10000, 0xee, 16);
	fill(t, 0x20000, POISON, 40);
	fill(t, 0x30000, POISON, 24);
	head = guest_ring_add_chain(&t->gr, b, 3);
	assert_true(head >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(guest_ring_get_used(&t->gr, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 64);
	assert_int_equal(t->used_signals, 1);
	/* 64 random bytes all zero: probability 2^-512. Expect most of each
	 * buffer non-zero (each byte is zero with probability 1/256). */
	assert_true(count_nonzero(t, 0x20000, 40) >= 30);
	assert_true(count_nonzero(t, 0x30000, 24) >= 16);
	/* The readable buffer is untouched. */
	assert_int_equal(count_nonzero(t, 0x10000, 16), 16);
	/* Two requests never get the same bytes. */
	uint8_t first[40], second[40];
	assert_int_equal(vdk_mem_read(t->mem, 0x20000, first, 40), 0);
	head = guest_ring_add_chain(&t->gr, &b[1], 1);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(guest_ring_get_used(&t->gr, &id, &len), 1);
	assert_int_equal(len, 40);
	assert_int_equal(vdk_mem_read(t->mem, 0x20000, second, 40), 0);
	assert_memory_not_equal(first, second, 40);

	struct vdk_rng_stats st = vdk_rng_stats(t->rng);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.bytes, 104);
	/* the queue's own counters agree */
	struct vdk_virtq_stats qs;
	assert_true(vdk_rng_queue_stats(t->rng, &qs));
	assert_int_equal(qs.used, 2);
	assert_int_equal(qs.used_bytes, 104);
	assert_int_equal(qs.notify_sent + qs.notify_suppressed, 2);
}

static void test_readable_only_gets_zero(void **state)
{
	struct env *t = *state;
	struct guest_buf b[2] = {{0x10000, 32, false}, {0x11000, 8, false}};
	uint32_t id, len = 99;
	int head;

	activate(t);
	head = guest_ring_add_chain(&t->gr, b, 2);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(guest_ring_get_used(&t->gr, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_int_equal(vdk_rng_stats(t->rng).requests, 1);
	assert_int_equal(vdk_rng_stats(t->rng).bytes, 0);
}

static void test_large_and_batched(void **state)
{
	struct env *t = *state;
	struct guest_buf big = {0x40000, 4096, true};
	uint32_t len;

	activate(t);
	fill(t, 0x40000, POISON, 4096);
	for (int i = 0; i < 5; i++)
		assert_true(guest_ring_add_chain(&t->gr, &big, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(guest_ring_get_used(&t->gr, NULL, &len), 1);
		assert_int_equal(len, 4096);
	}
	assert_int_equal(guest_ring_get_used(&t->gr, NULL, &len), 0);
	assert_int_equal(t->used_signals, 1); /* one for the batch */
	assert_true(count_nonzero(t, 0x40000, 4096) > 4000);
}

static int setup_small(void **state)
{
	const struct vdk_rng_config cfg = {.queue_max_size = QSIZE};

	return setup_cfg(state, &cfg);
}

static bool fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* At most queue_max_size requests per notification: past that the device
 * stops with notifications off (a driver refilling the ring does not kick)
 * and makes its resume fd readable; notifying again serves the rest. */
static void test_budget_per_wakeup(void **state)
{
	struct env *t = *state;
	struct guest_buf b = {0x40000, 16, true};
	uint32_t len;
	int fd = vdk_rng_resume_fd(t->rng);

	assert_true(fd >= 0);
	activate(t);
	assert_false(fd_readable(fd));
	for (int i = 0; i < QSIZE; i++)
		assert_true(guest_ring_add_chain(&t->gr, &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	for (int i = 0; i < QSIZE; i++)
		assert_int_equal(guest_ring_get_used(&t->gr, NULL, &len), 1);
	/* the budget is spent: resume asked for, notifications still off */
	assert_true(fd_readable(fd));
	assert_true(guest_ring_used_flags(&t->gr) & VRING_USED_F_NO_NOTIFY);
	/* the driver refilled meanwhile, without a kick */
	for (int i = 0; i < 8; i++)
		assert_true(guest_ring_add_chain(&t->gr, &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	for (int i = 0; i < 8; i++)
		assert_int_equal(guest_ring_get_used(&t->gr, NULL, &len), 1);
	assert_int_equal(guest_ring_get_used(&t->gr, NULL, &len), 0);
	/* under the budget: done, notifications on, nothing to resume */
	assert_false(fd_readable(fd));
	assert_false(guest_ring_used_flags(&t->gr) & VRING_USED_F_NO_NOTIFY);
	/* a reset forgets a pending resume */
	for (int i = 0; i < QSIZE; i++)
		assert_true(guest_ring_add_chain(&t->gr, &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_true(fd_readable(fd));
	assert_int_equal(vdk_device_reset(t->dev), 0);
	assert_false(fd_readable(fd));
}

static void test_max_bytes_per_request(void **state)
{
	struct env *t = *state;
	struct guest_buf b[2] = {{0x20000, 60, true}, {0x30000, 60, true}};
	uint32_t len;

	assert_int_equal(t->dev->ops->queue_max_size(t->dev->impl, 0), 64);
	activate(t);
	fill(t, 0x30000, POISON, 60);
	assert_true(guest_ring_add_chain(&t->gr, b, 2) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(guest_ring_get_used(&t->gr, NULL, &len), 1);
	assert_int_equal(len, 100);
	/* Bytes past the limit stay as the driver left them. */
	assert_int_equal(count_nonzero(t, 0x30000 + 40, 20), 0);
}

static void test_driver_error_needs_reset(void **state)
{
	struct env *t = *state;
	struct guest_buf b = {0x20000, 8, true};

	activate(t);
	/* A descriptor chain that loops: desc 0 → 1 → 0. */
	assert_int_equal(
		guest_ring_set_desc(&t->gr, 0, 0x20000, 8,
				    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1),
		0);
	assert_int_equal(
		guest_ring_set_desc(&t->gr, 1, 0x20008, 8,
				    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0),
		0);
	assert_int_equal(guest_ring_push(&t->gr, 0), 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(t->needs_reset, 1);
	assert_true(t->irq.needs_reset);
	assert_int_equal(guest_ring_used_idx(&t->gr), 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(t->needs_reset, 1);
	/* Reset and a new activation bring it back. */
	assert_int_equal(vdk_device_reset(t->dev), 0);
	activate(t);
	assert_true(guest_ring_add_chain(&t->gr, &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(guest_ring_used_idx(&t->gr), 1);
}

/*
 * VIRTIO_RING_F_EVENT_IDX (virtio 1.2 §2.7.10): the driver kicks only when
 * its available index passes avail_event, so every drain must move
 * avail_event to the next available index, or the second request is never
 * notified.
 */
static void test_event_idx_rearms(void **state)
{
	struct env *t = *state;
	struct guest_buf b = {0x20000, 32, true};
	uint32_t len;

	activate_with(t, (1ull << VIRTIO_F_VERSION_1) |
				 (1ull << VIRTIO_RING_F_EVENT_IDX));
	assert_int_equal(guest_ring_avail_event(&t->gr), 0);
	assert_true(guest_ring_add_chain(&t->gr, &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(guest_ring_get_used(&t->gr, NULL, &len), 1);
	assert_int_equal(len, 32);
	/* Notify me when the available index passes 1. */
	assert_int_equal(guest_ring_avail_event(&t->gr), 1);
	for (int i = 0; i < 3; i++)
		assert_true(guest_ring_add_chain(&t->gr, &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	for (int i = 0; i < 3; i++)
		assert_int_equal(guest_ring_get_used(&t->gr, NULL, &len), 1);
	assert_int_equal(guest_ring_avail_event(&t->gr), 4);
	assert_int_equal(vdk_rng_stats(t->rng).requests, 4);
}

/* Without EVENT_IDX, notifications are suppressed with VRING_USED_F_NO_NOTIFY
 * only while the queue is drained (virtio 1.2 §2.7.10). */
static void test_notifications_enabled_after_drain(void **state)
{
	struct env *t = *state;
	struct guest_buf b = {0x20000, 16, true};

	activate(t);
	assert_true(guest_ring_add_chain(&t->gr, &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(guest_ring_used_idx(&t->gr), 1);
	assert_int_equal(guest_ring_used_flags(&t->gr) & VRING_USED_F_NO_NOTIFY,
			 0);
}

/* VIRTIO_RING_F_INDIRECT_DESC (virtio 1.2 §2.7.5.3): a request whose
 * buffers are in an indirect table is filled like any other. */
static void test_indirect_request(void **state)
{
	struct env *t = *state;
	struct guest_buf b[2] = {{0x20000, 24, true}, {0x30000, 40, true}};
	uint32_t id, len;
	int head;

	activate_with(t, (1ull << VIRTIO_F_VERSION_1) |
				 (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	fill(t, 0x20000, POISON, 24);
	fill(t, 0x30000, POISON, 40);
	head = guest_ring_add_indirect(&t->gr, 0x50000, b, 2);
	assert_true(head >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(guest_ring_get_used(&t->gr, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 64);
	assert_true(count_nonzero(t, 0x20000, 24) >= 16);
	assert_true(count_nonzero(t, 0x30000, 40) >= 30);
}

/* The device's part of the snapshot: {"requests": n, "bytes": n} with
 * 8-byte integers (the format of version 1), and what restore refuses. */
static void test_snapshot_format(void **state)
{
	struct env *t = *state;
	struct guest_buf b = {0x20000, 40, true};
	const struct vdk_device_ops *ops = t->dev->ops;
	static const uint8_t want[] = {
		0xa2, 0x68, 'r', 'e', 'q', 'u', 'e', 's',  't', 's', 0x1b, 0,
		0,    0,    0,	 0,   0,   0,	1,   0x65, 'b', 'y', 't',  'e',
		's',  0x1b, 0,	 0,   0,   0,	0,   0,	   0,	40,
	};
	uint8_t *buf = NULL;
	size_t len;

	activate(t);
	assert_true(guest_ring_add_chain(&t->gr, &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, VDK_RNG_REQUESTQ);
	assert_int_equal(ops->snapshot(t->dev->impl, &buf, &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	free(buf);

	/* {"requests": 7, "bytes": 9} in any order and width is accepted. */
	static const uint8_t ok[] = {0xa2, 0x65, 'b',  'y', 't', 'e',
				     's',  0x09, 0x68, 'r', 'e', 'q',
				     'u',  'e',	 's',  't', 's', 0x07};
	/* Refused: a key missing, an unknown key, a key twice, a negative
	 * count, not a map. */
	static const uint8_t missing[] = {0xa1, 0x65, 'b', 'y',
					  't',	'e',  's', 0x09};
	static const uint8_t unknown[] = {
		0xa3, 0x65, 'b', 'y', 't', 'e', 's',  0x09, 0x68, 'r', 'e',
		'q',  'u',  'e', 's', 't', 's', 0x07, 0x61, 'x',  0x00};
	static const uint8_t twice[] = {0xa2, 0x65, 'b',  'y',	't',
					'e',  's',  0x09, 0x65, 'b',
					'y',  't',  'e',  's',	0x07};
	static const uint8_t negative[] = {0xa2, 0x65, 'b',  'y', 't', 'e',
					   's',	 0x20, 0x68, 'r', 'e', 'q',
					   'u',	 'e',  's',  't', 's', 0x07};
	static const uint8_t array[] = {0x82, 0x07, 0x09};
	const struct {
		const uint8_t *b;
		size_t n;
	} bad[] = {
		{missing, sizeof(missing)}, {unknown, sizeof(unknown)},
		{twice, sizeof(twice)},	    {negative, sizeof(negative)},
		{array, sizeof(array)},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ops->restore(t->dev->impl, bad[i].b, bad[i].n),
				 -EINVAL);
		assert_int_equal(vdk_rng_stats(t->rng).requests, 1);
		assert_int_equal(vdk_rng_stats(t->rng).bytes, 40);
	}
	/* bytes that are not one CBOR item */
	assert_int_equal(ops->restore(t->dev->impl, ok, sizeof(ok) - 1),
			 -EINVAL);
	assert_int_equal(ops->restore(t->dev->impl, NULL, 0), -EINVAL);
	assert_int_equal(ops->restore(t->dev->impl, ok, sizeof(ok)), 0);
	assert_int_equal(vdk_rng_stats(t->rng).requests, 7);
	assert_int_equal(vdk_rng_stats(t->rng).bytes, 9);
}

/* ---- conformance ----------------------------------------------------- */

static struct vdk_device *conf_create(void *opaque)
{
	struct vdk_rng *r;

	(void)opaque;
	r = vdk_rng_new(NULL, NULL);
	return r ? vdk_rng_device(r) : NULL;
}

static int conf_head;
static uint32_t conf_len;
static uint64_t conf_gpa;

static int conf_submit(struct vdk_conformance_env *env, void *opaque)
{
	static const uint8_t zero[256];

	(void)opaque;
	conf_len = conf_len % 200 + 48;
	conf_gpa = vdk_conformance_alloc(env, conf_len);
	if (vdk_mem_write(env->mem, conf_gpa, zero, conf_len) < 0)
		return -EFAULT;
	struct guest_buf b = {conf_gpa, conf_len, true};
	conf_head = guest_ring_add_chain(&env->rings[VDK_RNG_REQUESTQ], &b, 1);
	return conf_head < 0 ? conf_head : VDK_RNG_REQUESTQ;
}

static int conf_check(struct vdk_conformance_env *env, void *opaque)
{
	uint8_t buf[256];
	uint32_t id, len, nonzero = 0;

	(void)opaque;
	if (guest_ring_get_used(&env->rings[VDK_RNG_REQUESTQ], &id, &len) != 1)
		return -ENOENT;
	if ((int)id != conf_head || len != conf_len)
		return -EINVAL;
	if (vdk_mem_read(env->mem, conf_gpa, buf, len) < 0)
		return -EFAULT;
	for (uint32_t i = 0; i < len; i++)
		nonzero += buf[i] != 0;
	return nonzero > len / 2 ? 0 : -EINVAL;
}

static const struct vdk_conformance rng_suite = {
	.name = "rng",
	.create = conf_create,
	.submit = conf_submit,
	.check = conf_check,
	.modify_changes_snapshot = true,
};

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fills_writable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readable_only_gets_zero,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_and_batched, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_budget_per_wakeup,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_max_bytes_per_request,
						setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_driver_error_needs_reset,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx_rearms, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_notifications_enabled_after_drain, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_indirect_request, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_format, setup,
						teardown),
		VDK_CONFORMANCE_TESTS(&rng_suite),
	};

	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
