/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the device model framework (src/device.c) and the echo test
 * device: lifecycle, features and configuration, the echo data path, the
 * snapshot envelope, then the conformance suite on the echo device. The
 * interrupt object (src/interrupt.c) and the interrupts a device raises
 * are tested in test_interrupt.c.
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

#include <cbor.h>

#include <vdk/device.h>

#include "device_internal.h"
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "conformance.h"
#include "echo_device.h"
#include "echo_env.h"
#include "guest_ring.h"

/* ---- probe: a device that records the framework's calls ----------------- */

struct probe {
	struct vdk_device vdev;
	uint16_t nq;
	int activates, resets, sleeps, wakes, restores, destroys, notifies;
	uint64_t acked;
	int ack_calls;
	int fail_activate, fail_reset, fail_sleep, fail_wake, fail_restore;
	bool wake_had_mem;
	int *destroyed; /* set to 1 by destroy */
};

static uint16_t probe_nq(void *d)
{
	return ((struct probe *)d)->nq;
}
static uint16_t probe_qmax(void *d, uint16_t i)
{
	(void)d;
	(void)i;
	return 8;
}
static uint64_t probe_features(void *d)
{
	(void)d;
	return VERSION_1 | 1;
}
static void probe_ack(void *d, uint64_t f)
{
	struct probe *p = d;

	p->acked = f;
	p->ack_calls++;
}
static int probe_activate(void *d, const struct vdk_mem *m,
			  struct vdk_interrupt *i, struct vdk_virtq **q)
{
	struct probe *p = d;

	(void)m;
	(void)i;
	(void)q;
	p->activates++;
	return p->fail_activate;
}
static int probe_reset(void *d)
{
	struct probe *p = d;

	p->resets++;
	return p->fail_reset;
}
static void probe_notify(void *d, uint16_t i)
{
	(void)i;
	((struct probe *)d)->notifies++;
}
static int probe_sleep(void *d)
{
	struct probe *p = d;

	p->sleeps++;
	return p->fail_sleep;
}
static int probe_wake(void *d, const struct vdk_mem *m, struct vdk_interrupt *i,
		      struct vdk_virtq **q)
{
	struct probe *p = d;

	(void)i;
	(void)q;
	p->wakes++;
	p->wake_had_mem = m != NULL;
	return p->fail_wake;
}
static int probe_restore(void *d, const uint8_t *buf, size_t len)
{
	struct probe *p = d;

	p->restores++;
	if (buf || len) /* it has no state of its own */
		return -EINVAL;
	return p->fail_restore;
}
static void probe_destroy(void *d)
{
	struct probe *p = d;

	p->destroys++;
	if (p->destroyed)
		*p->destroyed = 1;
}

static const struct vdk_device_ops probe_ops = {
	.device_type = 99,
	.name = "probe",
	.num_queues = probe_nq,
	.queue_max_size = probe_qmax,
	.features = probe_features,
	.ack_features = probe_ack,
	.config_size = 4,
	.activate = probe_activate,
	.reset = probe_reset,
	.queue_notify = probe_notify,
	.sleep = probe_sleep,
	.wake = probe_wake,
	.restore = probe_restore,
	.destroy = probe_destroy,
};

/* Some non-NULL things to activate with; the probe never touches them. */
static struct vdk_interrupt dummy_irq;
static struct vdk_virtq *dummy_queues[VDK_DEVICE_MAX_QUEUES];
#define DUMMY_MEM ((const struct vdk_mem *)&dummy_irq)

static void test_init_checks_ops(void **state)
{
	struct vdk_device_ops ops = probe_ops;
	struct probe p = {.nq = 2};
	struct vdk_device dev;

	(void)state;
	assert_int_equal(vdk_device_init(&dev, &probe_ops, &p), 0);
	assert_int_equal(dev.state, VDK_DEVICE_NEW);
	assert_false(dev.asleep);
	assert_int_equal(dev.num_queues, 2);
	ops.activate = NULL;
	assert_int_equal(vdk_device_init(&dev, &ops, &p), -EINVAL);
	ops = probe_ops;
	ops.features = NULL;
	assert_int_equal(vdk_device_init(&dev, &ops, &p), -EINVAL);
	assert_int_equal(vdk_device_init(&dev, NULL, &p), -EINVAL);
	p.nq = 0;
	assert_int_equal(vdk_device_init(&dev, &probe_ops, &p), -EINVAL);
	p.nq = VDK_DEVICE_MAX_QUEUES + 1;
	assert_int_equal(vdk_device_init(&dev, &probe_ops, &p), -EINVAL);
	p.nq = VDK_DEVICE_MAX_QUEUES;
	assert_int_equal(vdk_device_init(&dev, &probe_ops, &p), 0);
	assert_string_equal(vdk_device_state_name(VDK_DEVICE_RESET), "reset");
}

static void test_device_errors_leave_state(void **state)
{
	struct probe p = {.nq = 1};
	struct vdk_device *dev = &p.vdev;

	(void)state;
	assert_int_equal(vdk_device_init(dev, &probe_ops, &p), 0);
	/* A failed activate leaves the device NEW; it can try again. */
	p.fail_activate = -EIO;
	assert_int_equal(
		vdk_device_activate(dev, DUMMY_MEM, &dummy_irq, dummy_queues),
		-EIO);
	assert_int_equal(dev->state, VDK_DEVICE_NEW);
	assert_null(dev->mem);
	assert_int_equal(
		vdk_device_activate(dev, NULL, &dummy_irq, dummy_queues),
		-EINVAL);
	p.fail_activate = 0;
	assert_int_equal(
		vdk_device_activate(dev, DUMMY_MEM, &dummy_irq, dummy_queues),
		0);
	assert_int_equal(p.activates, 2);

	/* Failed sleep: still awake. Failed wake: still asleep. */
	p.fail_sleep = -EAGAIN;
	assert_int_equal(vdk_device_sleep(dev), -EAGAIN);
	assert_false(dev->asleep);
	p.fail_sleep = 0;
	assert_int_equal(vdk_device_sleep(dev), 0);
	p.fail_wake = -EIO;
	assert_int_equal(vdk_device_wake(dev, NULL, NULL, NULL), -EIO);
	assert_true(dev->asleep);
	p.fail_wake = 0;
	assert_int_equal(vdk_device_wake(dev, NULL, NULL, NULL), 0);
	assert_true(p.wake_had_mem);

	/* Failed reset: still ACTIVE, queues kept. */
	p.fail_reset = -EIO;
	assert_int_equal(vdk_device_reset(dev), -EIO);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	assert_non_null(dev->mem);
	p.fail_reset = 0;
	assert_int_equal(vdk_device_reset(dev), 0);
	assert_int_equal(dev->state, VDK_DEVICE_RESET);
	assert_null(dev->irq);
	/* Reset tells the device its features are gone. */
	assert_int_equal(p.acked, 0);
}

static void test_notify_forwarding(void **state)
{
	struct probe p = {.nq = 2};
	struct vdk_device *dev = &p.vdev;
	struct vdk_virtq q;
	struct vdk_virtq *qs[2] = {&q, NULL};

	(void)state;
	assert_int_equal(vdk_device_init(dev, &probe_ops, &p), 0);
	vdk_device_queue_notify(dev, 0); /* NEW: ignored */
	assert_int_equal(p.notifies, 0);
	assert_int_equal(vdk_device_activate(dev, DUMMY_MEM, &dummy_irq, qs),
			 0);
	vdk_device_queue_notify(dev, 0);
	assert_int_equal(p.notifies, 1);
	vdk_device_queue_notify(dev, 1);      /* not ready */
	vdk_device_queue_notify(dev, 2);      /* no such queue */
	vdk_device_queue_notify(dev, 0xffff); /* no such queue */
	assert_int_equal(p.notifies, 1);
	assert_int_equal(vdk_device_sleep(dev), 0);
	vdk_device_queue_notify(dev, 0); /* asleep */
	assert_int_equal(p.notifies, 1);
	assert_ptr_equal(vdk_device_sleep_queues(dev)[0], &q);
	assert_null(vdk_device_sleep_queues(dev)[1]);
	assert_int_equal(vdk_device_wake(dev, NULL, NULL, NULL), 0);
	vdk_device_queue_notify(dev, 0);
	assert_int_equal(p.notifies, 2);
	assert_null(vdk_device_sleep_queues(dev)); /* awake */
}

static void test_fini(void **state)
{
	struct probe p = {.nq = 1};
	int destroyed = 0;

	(void)state;
	p.destroyed = &destroyed;
	assert_int_equal(vdk_device_init(&p.vdev, &probe_ops, &p), 0);
	assert_int_equal(vdk_device_activate(&p.vdev, DUMMY_MEM, &dummy_irq,
					     dummy_queues),
			 0);
	vdk_device_fini(&p.vdev);
	assert_int_equal(p.resets, 1); /* reset because ACTIVE */
	assert_int_equal(destroyed, 1);
	vdk_device_fini(&p.vdev); /* second fini is a no-op */
	assert_int_equal(p.destroys, 1);

	/* Not active: destroy only. */
	p = (struct probe){.nq = 1};
	assert_int_equal(vdk_device_init(&p.vdev, &probe_ops, &p), 0);
	vdk_device_fini(&p.vdev);
	assert_int_equal(p.resets, 0);
	assert_int_equal(p.destroys, 1);
	vdk_device_fini(NULL);
}

/* A device with a restore op and no wake op, restored ACTIVE, is activated
 * at wake with what the transport restored. */
static void test_wake_restored_without_wake_op(void **state)
{
	struct vdk_device_ops ops = probe_ops;
	struct probe p = {.nq = 1}, p2 = {.nq = 1};
	uint8_t *buf;
	size_t len;

	(void)state;
	ops.wake = NULL;
	assert_int_equal(vdk_device_init(&p.vdev, &ops, &p), 0);
	assert_int_equal(vdk_device_activate(&p.vdev, DUMMY_MEM, &dummy_irq,
					     dummy_queues),
			 0);
	assert_int_equal(vdk_device_sleep(&p.vdev), 0);
	assert_int_equal(vdk_device_snapshot(&p.vdev, &buf, &len), 0);
	assert_int_equal(vdk_device_wake(&p.vdev, NULL, NULL, NULL), 0);
	assert_int_equal(p.activates, 1); /* plain wake: no re-activation */

	assert_int_equal(vdk_device_init(&p2.vdev, &ops, &p2), 0);
	assert_int_equal(vdk_device_sleep(&p2.vdev), 0);
	assert_int_equal(vdk_device_restore(&p2.vdev, buf, len), 0);
	assert_int_equal(p2.restores, 1);
	assert_int_equal(
		vdk_device_wake(&p2.vdev, DUMMY_MEM, &dummy_irq, dummy_queues),
		0);
	assert_int_equal(p2.activates, 1);
	assert_int_equal(p2.vdev.state, VDK_DEVICE_ACTIVE);
	free(buf);
}

/* ---- features and configuration (echo device) ------------------------- */

static void test_ack_features(void **state)
{
	struct echo_device *e = echo_device_new(NULL);
	struct vdk_device *dev = echo_device_vdk(e);

	(void)state;
	assert_non_null(e);
	assert_ptr_equal(echo_device_from_vdk(dev), e);
	assert_int_equal(dev->ops->features(dev->impl), VERSION_1 | INVERT);
	assert_int_equal(vdk_device_ack_features(dev, VERSION_1 | (1ull << 5)),
			 -EINVAL);
	assert_int_equal(vdk_device_ack_features(dev, 1ull << 63), -EINVAL);
	assert_int_equal(dev->acked_features, 0);
	assert_false(echo_device_inverting(e));
	assert_int_equal(vdk_device_ack_features(dev, VERSION_1 | INVERT), 0);
	assert_int_equal(dev->acked_features, VERSION_1 | INVERT);
	assert_true(echo_device_inverting(e));
	/* A subset is fine; a later ack replaces the earlier one. */
	assert_int_equal(vdk_device_ack_features(dev, VERSION_1), 0);
	assert_false(echo_device_inverting(e));
	assert_int_equal(vdk_device_ack_features(dev, INVERT), 0);
	assert_int_equal(vdk_device_reset(dev), 0); /* NEW: forgets features */
	assert_int_equal(dev->acked_features, 0);
	assert_false(echo_device_inverting(e));
	echo_device_free(e);
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_config_bounds(void **state)
{
	struct echo_device *e = echo_device_new(NULL);
	struct vdk_device *dev = echo_device_vdk(e);
	uint8_t cfg[ECHO_CONFIG_SIZE], big[32];
	const uint8_t val[4] = {0x78, 0x56, 0x34, 0x12};
	const uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t b;

	(void)state;
	assert_int_equal(vdk_device_read_config(dev, 0, cfg, sizeof(cfg)), 0);
	assert_int_equal(le32(cfg + ECHO_CONFIG_COUNTER), 0);
	assert_int_equal(le32(cfg + ECHO_CONFIG_SETTABLE), 0);
	assert_memory_equal(cfg + ECHO_CONFIG_ID, "vdk-echo", 8);

	/* Out of range: -ERANGE, read data zeroed, writes dropped. */
	memset(big, 0xaa, sizeof(big));
	assert_int_equal(vdk_device_read_config(dev, 12, big, 8), -ERANGE);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(big[i], 0);
	assert_int_equal(vdk_device_read_config(dev, 16, &b, 1), -ERANGE);
	assert_int_equal(vdk_device_read_config(dev, UINT32_MAX, big, 2),
			 -ERANGE);
	assert_int_equal(vdk_device_read_config(dev, 1, big, 16), -ERANGE);
	assert_int_equal(vdk_device_write_config(dev, 2, junk, 16), -ERANGE);
	assert_int_equal(vdk_device_write_config(dev, UINT32_MAX - 1, junk, 4),
			 -ERANGE);
	assert_int_equal(echo_device_config(e).settable, 0);
	assert_int_equal(vdk_device_read_config(dev, 0, big, 0), 0);

	/* The settable field takes writes of any width and alignment. */
	assert_int_equal(
		vdk_device_write_config(dev, ECHO_CONFIG_SETTABLE, val, 4), 0);
	assert_int_equal(echo_device_config(e).settable, 0x12345678);
	assert_int_equal(
		vdk_device_write_config(dev, ECHO_CONFIG_SETTABLE + 3, val, 1),
		0);
	assert_int_equal(echo_device_config(e).settable, 0x78345678);
	assert_int_equal(
		vdk_device_read_config(dev, ECHO_CONFIG_SETTABLE + 2, &b, 1),
		0);
	assert_int_equal(b, 0x34);
	/* Read-only bytes ignore writes, even when a write spans both. */
	assert_int_equal(vdk_device_write_config(dev, 0, junk, 8), 0);
	assert_int_equal(echo_device_config(e).counter, 0);
	assert_int_equal(echo_device_config(e).settable, 0x08070605);
	assert_int_equal(vdk_device_write_config(dev, ECHO_CONFIG_ID, junk, 8),
			 0);
	assert_int_equal(vdk_device_read_config(dev, ECHO_CONFIG_ID, big, 8),
			 0);
	assert_memory_equal(big, "vdk-echo", 8);
	echo_device_free(e);
}

/* ---- echo device data path -------------------------------------------- */

static void test_echo_queue(void **state)
{
	struct echo_env *t = *state;
	const char msg[] = "hello, virtio";
	struct guest_buf b[3] = {
		{0x10000, 7, false}, /* "hello, " */
		{0x10100, 7, false}, /* "virtio\0" */
		{0x20000, 64, true},
	};
	uint8_t out[64];
	uint32_t id, len;
	int head;

	echo_activate(t, VERSION_1);
	assert_int_equal(vdk_mem_write(t->mem, 0x10000, msg, 7), 0);
	assert_int_equal(vdk_mem_write(t->mem, 0x10100, msg + 7, 7), 0);
	head = guest_ring_add_chain(&t->gr[0], b, 3);
	assert_true(head >= 0);
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_ECHO);
	assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 14);
	assert_int_equal(vdk_mem_read(t->mem, 0x20000, out, 14), 0);
	assert_memory_equal(out, msg, 14);
	assert_int_equal(t->log.used[0], 1);

	/* Writable part shorter than the readable: truncated echo. */
	b[2].len = 5;
	head = guest_ring_add_chain(&t->gr[0], b, 3);
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_ECHO);
	assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 5);
	/* No writable part at all: 0 bytes. */
	head = guest_ring_add_chain(&t->gr[0], b, 2);
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_ECHO);
	assert_int_equal(guest_ring_get_used(&t->gr[0], &id, &len), 1);
	assert_int_equal(len, 0);

	/* Sink queue: counts readable bytes, writes nothing. */
	head = guest_ring_add_chain(&t->gr[1], b, 3);
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_SINK);
	assert_int_equal(guest_ring_get_used(&t->gr[1], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_int_equal(t->log.used[1], 1);

	struct echo_stats st = echo_device_stats(t->e);
	assert_int_equal(st.echo_chains, 3);
	assert_int_equal(st.echo_bytes, 19);
	assert_int_equal(st.sink_chains, 1);
	assert_int_equal(st.sink_bytes, 14);
	assert_int_equal(echo_device_config(t->e).counter, 4);
	assert_int_equal(t->log.reset, 0);

	/* Reset clears the counter and the settable field. */
	assert_int_equal(vdk_device_reset(t->dev), 0);
	assert_int_equal(echo_device_config(t->e).counter, 0);
	assert_int_equal(echo_device_stats(t->e).resets, 1);
}

static void test_echo_invert_and_batch(void **state)
{
	struct echo_env *t = *state;
	struct guest_buf b[2] = {{0x10000, 300, false}, {0x20000, 300, true}};
	uint8_t in[300], out[300];
	uint32_t len;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	assert_int_equal(vdk_mem_write(t->mem, 0x10000, in, sizeof(in)), 0);
	echo_activate(t, VERSION_1 | INVERT);
	/* Several chains, one notification for the batch. */
	for (int i = 0; i < 3; i++)
		assert_true(guest_ring_add_chain(&t->gr[0], b, 2) >= 0);
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_ECHO);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(guest_ring_get_used(&t->gr[0], NULL, &len), 1);
		assert_int_equal(len, 300);
	}
	assert_int_equal(t->log.used[0], 1);
	assert_int_equal(vdk_mem_read(t->mem, 0x20000, out, sizeof(out)), 0);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], (uint8_t)~in[i]);
}

/* ---- snapshot envelope --------------------------------------------------- */

static const cbor_item_t *map_get(const cbor_item_t *map, const char *key)
{
	for (size_t i = 0; i < cbor_map_size(map); i++) {
		struct cbor_pair p = cbor_map_handle(map)[i];

		if (cbor_isa_string(p.key) &&
		    cbor_string_length(p.key) == strlen(key) &&
		    !memcmp(cbor_string_handle(p.key), key, strlen(key)))
			return p.value;
	}
	return NULL;
}

static void test_snapshot_envelope(void **state)
{
	struct echo_env *t = *state;
	struct cbor_load_result res;
	const cbor_item_t *v;
	cbor_item_t *item, *d, *device_item;
	uint8_t *buf;
	size_t len;

	echo_activate(t, VERSION_1 | INVERT);
	assert_int_equal(vdk_device_sleep(t->dev), 0);
	assert_int_equal(vdk_device_snapshot(t->dev, &buf, &len), 0);
	item = cbor_load(buf, len, &res);
	assert_non_null(item);
	assert_int_equal(res.read, len);
	assert_true(cbor_isa_map(item));
	assert_int_equal(cbor_map_size(item), 6);
	v = map_get(item, "format");
	assert_non_null(v);
	assert_memory_equal(cbor_string_handle(v), "vdk-device", 10);
	v = map_get(item, "version");
	assert_true(v && cbor_isa_uint(v));
	assert_int_equal(cbor_get_int(v), VDK_DEVICE_SNAPSHOT_VERSION);
	v = map_get(item, "device_type");
	assert_int_equal(cbor_get_int(v), ECHO_DEVICE_ID);
	v = map_get(item, "state");
	assert_memory_equal(cbor_string_handle(v), "active", 6);
	v = map_get(item, "acked_features");
	assert_int_equal(cbor_get_int(v), VERSION_1 | INVERT);
	v = map_get(item, "device");
	assert_true(v && cbor_isa_bytestring(v));
	/* the echo device's own bytes: a CBOR map */
	d = cbor_load(cbor_bytestring_handle(v), cbor_bytestring_length(v),
		      &res);
	assert_true(d && cbor_isa_map(d));
	device_item = d;
	v = map_get(d, "id");
	assert_true(v && cbor_isa_bytestring(v));
	assert_memory_equal(cbor_bytestring_handle(v), "vdk-echo", 8);
	cbor_decref(&device_item);
	cbor_decref(&item);

	/* snapshot_item (internal) gives the same item. */
	assert_int_equal(vdk_device_snapshot_item(t->dev, &item), 0);
	uint8_t *buf2 = NULL;
	size_t cap = 0, len2 = cbor_serialize_alloc(item, &buf2, &cap);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);
	cbor_decref(&item);
	free(buf2);
	free(buf);
	assert_int_equal(vdk_device_wake(t->dev, NULL, NULL, NULL), 0);
}

/* Restore of bytes that are not a snapshot: clean errors, no change. */
static void test_restore_bad_input(void **state)
{
	struct echo_env *t = *state;
	static const uint8_t huge_map[] = {0xbb, 0, 0, 0, 1, 0, 0, 0, 0};
	static const uint8_t huge_array[] = {0x9a, 0x01, 0, 0, 0};
	static const uint8_t indef_break_only[] = {0xff};
	static const uint8_t text[] = {0x63, 'a', 'b', 'c'};
	static const uint8_t reserved[] = {0x1c};
	static const uint8_t empty_map[] = {0xa0}; /* no "format" key */
	static const uint8_t float_envelope[] = {
		0xa1, 0x66, 'f',  'o',	'r', 'm',
		'a',  't',  0xf9, 0x3c, 0x00}; /* "format": 1.0 */
	uint8_t deep[200];
	uint8_t *good, *after;
	size_t good_len, after_len;

	assert_int_equal(vdk_device_sleep(t->dev), 0);
	assert_int_equal(vdk_device_snapshot(t->dev, &good, &good_len), 0);

	assert_int_equal(vdk_device_restore(t->dev, huge_map, sizeof(huge_map)),
			 -EINVAL);
	assert_int_equal(
		vdk_device_restore(t->dev, huge_array, sizeof(huge_array)),
		-EINVAL);
	assert_int_equal(vdk_device_restore(t->dev, indef_break_only, 1),
			 -EINVAL);
	assert_int_equal(vdk_device_restore(t->dev, text, sizeof(text)),
			 -EINVAL);
	assert_int_equal(vdk_device_restore(t->dev, reserved, 1), -EINVAL);
	assert_int_equal(vdk_device_restore(t->dev, empty_map, 1), -EINVAL);
	assert_int_equal(vdk_device_restore(t->dev, float_envelope,
					    sizeof(float_envelope)),
			 -EINVAL);
	assert_int_equal(vdk_device_restore(t->dev, good, 0), -EINVAL);
	assert_int_equal(vdk_device_restore(t->dev, NULL, 5), -EINVAL);
	/* Nesting deeper than any snapshot needs. */
	memset(deep, 0x81, sizeof(deep));
	deep[sizeof(deep) - 1] = 0x00;
	assert_int_equal(vdk_device_restore(t->dev, deep, sizeof(deep)),
			 -EINVAL);
	/* Every truncation of a good snapshot. */
	for (size_t n = 1; n < good_len; n++)
		assert_int_equal(vdk_device_restore(t->dev, good, n), -EINVAL);
	/* Every single-byte corruption either fails cleanly or restores
	 * something the device accepted (then it is restored back). */
	for (size_t i = 0; i < good_len; i++) {
		uint8_t *bad = malloc(good_len);
		int ret;

		assert_non_null(bad);
		memcpy(bad, good, good_len);
		bad[i] ^= 0x5a;
		ret = vdk_device_restore(t->dev, bad, good_len);
		assert_true(ret == 0 || ret == -EINVAL || ret == -ENODEV ||
			    ret == -EPROTO);
		if (ret == 0)
			assert_int_equal(
				vdk_device_restore(t->dev, good, good_len), 0);
		free(bad);
	}
	assert_int_equal(vdk_device_snapshot(t->dev, &after, &after_len), 0);
	assert_int_equal(after_len, good_len);
	assert_memory_equal(after, good, good_len);
	free(good);
	free(after);
}

/* ---- conformance suite on the echo device ---------------------------- */

static struct vdk_device *conf_create(void *opaque)
{
	struct echo_device *e = echo_device_new(NULL);

	(void)opaque;
	return e ? echo_device_vdk(e) : NULL;
}

static uint64_t conf_out_gpa;
static uint32_t conf_len;
static int conf_head;
static uint8_t conf_byte;

/* Echo a fresh pattern of a varying length through queue 0. */
static int conf_submit(struct vdk_conformance_env *env, void *opaque)
{
	uint8_t data[200];
	uint64_t in;

	(void)opaque;
	conf_len = 1 + (conf_byte * 37u) % sizeof(data);
	memset(data, ++conf_byte, conf_len);
	in = vdk_conformance_alloc(env, conf_len);
	conf_out_gpa = vdk_conformance_alloc(env, sizeof(data));
	if (vdk_mem_write(env->mem, in, data, conf_len) < 0)
		return -EFAULT;
	struct guest_buf b[2] = {{in, conf_len, false},
				 {conf_out_gpa, sizeof(data), true}};
	conf_head = guest_ring_add_chain(&env->rings[ECHO_QUEUE_ECHO], b, 2);
	return conf_head < 0 ? conf_head : ECHO_QUEUE_ECHO;
}

static int conf_check(struct vdk_conformance_env *env, void *opaque)
{
	/* The suite accepts every offered feature, ECHO_F_INVERT too. */
	uint8_t want = env->features & INVERT ? (uint8_t)~conf_byte : conf_byte;
	uint8_t out[200];
	uint32_t id, len;

	(void)opaque;
	if (guest_ring_get_used(&env->rings[ECHO_QUEUE_ECHO], &id, &len) != 1)
		return -ENOENT;
	if ((int)id != conf_head || len != conf_len)
		return -EINVAL;
	if (vdk_mem_read(env->mem, conf_out_gpa, out, len) < 0)
		return -EFAULT;
	for (uint32_t i = 0; i < len; i++)
		if (out[i] != want)
			return -EINVAL;
	return 0;
}

static const struct vdk_conformance echo_suite = {
	.name = "echo",
	.create = conf_create,
	.submit = conf_submit,
	.check = conf_check,
	.modify_changes_snapshot = true,
};

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_checks_ops),
		cmocka_unit_test(test_device_errors_leave_state),
		cmocka_unit_test(test_notify_forwarding),
		cmocka_unit_test(test_fini),
		cmocka_unit_test(test_wake_restored_without_wake_op),
		cmocka_unit_test(test_ack_features),
		cmocka_unit_test(test_config_bounds),
		cmocka_unit_test_setup_teardown(test_echo_queue, echo_setup,
						echo_teardown),
		cmocka_unit_test_setup_teardown(test_echo_invert_and_batch,
						echo_setup, echo_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_envelope,
						echo_setup, echo_teardown),
		cmocka_unit_test_setup_teardown(test_restore_bad_input,
						echo_setup, echo_teardown),
		VDK_CONFORMANCE_TESTS(&echo_suite),
	};

	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
