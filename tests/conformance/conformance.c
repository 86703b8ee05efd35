/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device conformance suite (see conformance.h). The suite acts as the
 * transport and the driver around one device at a time: it makes guest
 * memory and queues, accepts features, activates, sends notifications,
 * sleeps and wakes the device, and moves its snapshots around.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include <cbor.h>

#include "conformance.h"

/* Per-test context, created by vdk_conformance_setup(). */
struct ctx {
	const struct vdk_conformance *suite;
	struct vdk_conformance_env env;
	struct vdk_device *devs[2]; /* alive devices, freed at teardown */
};

struct snap {
	uint8_t *buf;
	size_t len;
};

/* ---- interrupt counting ------------------------------------------------ */

static void count_used(void *opaque, uint16_t queue)
{
	struct vdk_conformance_env *env = opaque;

	assert_true(queue < env->num_queues);
	env->used_signals[queue]++;
}

static void count_config(void *opaque)
{
	((struct vdk_conformance_env *)opaque)->config_signals++;
}

static void count_needs_reset(void *opaque)
{
	((struct vdk_conformance_env *)opaque)->needs_reset_signals++;
}

static const struct vdk_interrupt_ops counting_irq = {
	.signal_used_queue = count_used,
	.signal_config_changed = count_config,
	.set_needs_reset = count_needs_reset,
};

/* ---- fixture ----------------------------------------------------------- */

int vdk_conformance_setup(void **state)
{
	const struct vdk_conformance *suite = *state;
	struct ctx *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -1;
	c->suite = suite;
	c->env.mem = vdk_mem_new(&err);
	if (!c->env.mem ||
	    vdk_mem_add_memfd(c->env.mem, 0, VDK_CONFORMANCE_MEM_SIZE,
			      "vdk-conformance") < 0) {
		vdk_mem_free(c->env.mem);
		free(c);
		return -1;
	}
	vdk_interrupt_init_callback(&c->env.irq, &counting_irq, &c->env);
	c->env.data_next = VDK_CONFORMANCE_DATA_GPA;
	*state = c;
	return 0;
}

static void destroy_dev(struct ctx *c, struct vdk_device *dev)
{
	for (size_t i = 0; i < 2; i++)
		if (c->devs[i] == dev)
			c->devs[i] = NULL;
	if (c->suite->destroy)
		c->suite->destroy(dev, c->suite->opaque);
	else
		vdk_device_fini(dev);
}

int vdk_conformance_teardown(void **state)
{
	struct ctx *c = *state;

	for (size_t i = 0; i < 2; i++)
		if (c->devs[i])
			destroy_dev(c, c->devs[i]);
	vdk_mem_free(c->env.mem);
	free(c);
	return 0;
}

static struct vdk_device *create_dev(struct ctx *c)
{
	struct vdk_device *dev = c->suite->create(c->suite->opaque);

	assert_non_null(dev);
	assert_int_equal(dev->state, VDK_DEVICE_NEW);
	assert_false(dev->asleep);
	for (size_t i = 0; i < 2; i++) {
		if (!c->devs[i]) {
			c->devs[i] = dev;
			break;
		}
	}
	return dev;
}

uint64_t vdk_conformance_alloc(struct vdk_conformance_env *env, uint32_t len)
{
	uint64_t size = ((uint64_t)len + 63) & ~63ull;
	uint64_t end = VDK_CONFORMANCE_DATA_GPA + VDK_CONFORMANCE_DATA_SIZE;
	uint64_t gpa;

	assert_true(size <= VDK_CONFORMANCE_DATA_SIZE);
	if (env->data_next + size > end)
		env->data_next = VDK_CONFORMANCE_DATA_GPA;
	gpa = env->data_next;
	env->data_next += size;
	return gpa;
}

/* ---- the transport's part ----------------------------------------------- */

/* Program queue @i as a driver would, from ring positions @avail/@used. */
static void queue_setup(struct ctx *c, struct vdk_device *dev, uint16_t i,
			uint16_t avail, uint16_t used)
{
	struct vdk_conformance_env *env = &c->env;
	uint16_t max = dev->ops->queue_max_size(dev->impl, i);
	uint16_t size = max < VDK_CONFORMANCE_QUEUE_SIZE
				? max
				: VDK_CONFORMANCE_QUEUE_SIZE;
	struct vdk_virtq *q = &env->queues[i];
	struct guest_ring *gr = &env->rings[i];

	assert_int_equal(vdk_virtq_init(q, max, i), 0);
	assert_int_equal(vdk_virtq_set_size(q, size), 0);
	assert_true(gr->size == 0 || gr->size == size);
	assert_int_equal(vdk_virtq_set_addrs(q, gr->desc_gpa, gr->avail_gpa,
					     gr->used_gpa),
			 0);
	vdk_virtq_set_ready(q, true);
	assert_int_equal(vdk_virtq_set_next_avail(q, avail), 0);
	assert_int_equal(vdk_virtq_set_next_used(q, used), 0);
	assert_int_equal(vdk_virtq_activate(q, env->mem, env->features), 0);
	env->qptrs[i] = q;
}

/* Driver initialisation (virtio 1.2 §3.1.1) up to DRIVER_OK. */
static void activate(struct ctx *c, struct vdk_device *dev)
{
	struct vdk_conformance_env *env = &c->env;
	uint64_t offered = dev->ops->features(dev->impl);

	env->num_queues = dev->num_queues;
	env->features = c->suite->features
				? c->suite->features
				: offered & ~(1ull << VIRTIO_RING_F_EVENT_IDX);
	assert_int_equal(vdk_device_ack_features(dev, env->features), 0);
	for (uint16_t i = 0; i < env->num_queues; i++) {
		uint16_t max = dev->ops->queue_max_size(dev->impl, i);
		uint16_t size = max < VDK_CONFORMANCE_QUEUE_SIZE
					? max
					: VDK_CONFORMANCE_QUEUE_SIZE;

		/* One 4 KiB slot per queue below the data area. */
		assert_int_equal(guest_ring_init(&env->rings[i], env->mem, size,
						 (uint64_t)i * 0x1000),
				 0);
		queue_setup(c, dev, i, 0, 0);
	}
	assert_int_equal(
		vdk_device_activate(dev, env->mem, &env->irq, env->qptrs), 0);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
}

/* One request through the device: submit, notify, check. */
static void request(struct ctx *c, struct vdk_device *dev)
{
	struct vdk_conformance_env *env = &c->env;
	int q = c->suite->submit(env, c->suite->opaque);
	unsigned before;

	assert_true(q >= 0 && q < env->num_queues);
	before = env->used_signals[q];
	vdk_device_queue_notify(dev, (uint16_t)q);
	assert_int_equal(c->suite->check(env, c->suite->opaque), 0);
	assert_true(env->used_signals[q] > before);
	assert_int_equal(env->needs_reset_signals, 0);
}

/*
 * vring_need_event() of virtio 1.2 §2.7.10 (the driver's side): notify
 * when the available index moved from @old past @event to @new.
 */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void vdk_conformance_event_idx_stream(void **state)
{
	struct ctx *c = *state;
	struct vdk_conformance_env *env = &c->env;
	struct vdk_device *dev = create_dev(c);
	uint64_t offered = dev->ops->features(dev->impl);
	const uint64_t event_idx = 1ull << VIRTIO_RING_F_EVENT_IDX;
	unsigned kicks = 0, requests;

	/* Every vdk device offers it (Linux negotiates it whenever it can);
	 * a test device (tests/mock) may not. */
	if (!(offered & event_idx)) {
		print_message("%s: no VIRTIO_RING_F_EVENT_IDX offered: "
			      "SKIPPED\n",
			      c->suite->name);
		skip();
	}
	env->num_queues = dev->num_queues;
	env->features =
		(c->suite->features ? c->suite->features : offered) | event_idx;
	assert_int_equal(vdk_device_ack_features(dev, env->features), 0);
	for (uint16_t i = 0; i < env->num_queues; i++) {
		uint16_t max = dev->ops->queue_max_size(dev->impl, i);
		uint16_t size = max < VDK_CONFORMANCE_QUEUE_SIZE
					? max
					: VDK_CONFORMANCE_QUEUE_SIZE;

		assert_int_equal(guest_ring_init(&env->rings[i], env->mem, size,
						 (uint64_t)i * 0x1000),
				 0);
		queue_setup(c, dev, i, 0, 0);
	}
	assert_int_equal(
		vdk_device_activate(dev, env->mem, &env->irq, env->qptrs), 0);
	/* More requests than any ring has entries, so that the indices wrap
	 * past avail_event/used_event several times. */
	requests = 4u * VDK_CONFORMANCE_QUEUE_SIZE + 7;
	for (unsigned k = 0; k < requests; k++) {
		uint16_t old[VDK_DEVICE_MAX_QUEUES];
		unsigned before;
		int q;

		for (uint16_t i = 0; i < env->num_queues; i++) {
			old[i] = env->rings[i].avail_idx;
			/* a used buffer notification for the next completion */
			assert_int_equal(guest_ring_set_used_event(
						 &env->rings[i],
						 env->rings[i].last_used),
					 0);
		}
		q = c->suite->submit(env, c->suite->opaque);
		assert_true(q >= 0 && q < env->num_queues);
		before = env->used_signals[q];
		/* Notify only when the device asked to be (avail_event). */
		if (need_event(guest_ring_avail_event(&env->rings[q]),
			       env->rings[q].avail_idx, old[q])) {
			vdk_device_queue_notify(dev, (uint16_t)q);
			kicks++;
		}
		if (c->suite->check(env, c->suite->opaque) != 0)
			fail_msg("%s: request %u of %u not completed: the "
				 "device did not re-arm avail_event (%u kicks "
				 "so far)",
				 c->suite->name, k + 1, requests, kicks);
		/* ... and the device honoured used_event. */
		assert_true(env->used_signals[q] > before);
		assert_int_equal(env->needs_reset_signals, 0);
	}
	assert_true(kicks >= 1 && kicks <= requests);
}

/* Sleep; the device hands its queues back and the transport stops them. */
static void transport_sleep(struct ctx *c, struct vdk_device *dev)
{
	struct vdk_virtq **qs;

	assert_int_equal(vdk_device_sleep(dev), 0);
	assert_true(dev->asleep);
	qs = vdk_device_sleep_queues(dev);
	if (dev->state != VDK_DEVICE_ACTIVE) {
		assert_null(qs);
		return;
	}
	assert_non_null(qs);
	for (uint16_t i = 0; i < c->env.num_queues; i++) {
		assert_ptr_equal(qs[i], c->env.qptrs[i]);
		vdk_virtq_deactivate(c->env.qptrs[i]);
	}
}

/* Wake with the queues the device slept with, restarted. */
static void transport_wake(struct ctx *c, struct vdk_device *dev)
{
	if (dev->state == VDK_DEVICE_ACTIVE)
		for (uint16_t i = 0; i < c->env.num_queues; i++)
			assert_int_equal(vdk_virtq_activate(c->env.qptrs[i],
							    c->env.mem,
							    c->env.features),
					 0);
	assert_int_equal(vdk_device_wake(dev, NULL, NULL, NULL), 0);
	assert_false(dev->asleep);
}

/*
 * Per-queue lifecycle (virtio 1.2 §2.6.1; vhost-user ring start/stop): each
 * queue in turn stops while the others run (a request on another queue
 * still completes), comes back with its indices intact, a request made
 * while it was stopped is not processed, and after the restart it is, on
 * exactly the next ring slot. Then the refusals.
 */
void vdk_conformance_queue_stop_start(void **state)
{
	struct ctx *c = *state;
	struct vdk_conformance_env *env = &c->env;
	struct vdk_device *dev = create_dev(c);
	struct vdk_virtq *got;
	uint32_t id, len;
	int rq;

	activate(c, dev);
	if (!dev->ops->start_queue) {
		assert_int_equal(vdk_device_stop_queue(dev, 0, &got),
				 -EOPNOTSUPP);
		return;
	}
	request(c, dev);
	for (uint16_t i = 0; i < env->num_queues; i++) {
		struct vdk_virtq *q = env->qptrs[i];
		uint16_t avail = q->next_avail, used = q->next_used;
		unsigned before;

		assert_int_equal(vdk_device_stop_queue(dev, i, &got), 0);
		assert_ptr_equal(got, q);
		assert_int_equal(q->next_avail, avail);
		assert_int_equal(q->next_used, used);
		assert_int_equal(vdk_device_stop_queue(dev, i, &got), -ENOENT);
		assert_null(got);
		/* A request: processed if it went to another (running)
		 * queue, left on the ring if it went to the stopped one. */
		rq = c->suite->submit(env, c->suite->opaque);
		assert_true(rq >= 0 && rq < env->num_queues);
		before = env->used_signals[rq];
		vdk_device_queue_notify(dev, (uint16_t)rq);
		if (rq != i) {
			assert_int_equal(c->suite->check(env, c->suite->opaque),
					 0);
		} else {
			assert_int_equal(q->next_avail, avail);
			assert_int_equal(q->next_used, used);
			assert_int_equal(env->used_signals[rq], before);
			assert_int_equal(
				guest_ring_get_used(&env->rings[i], &id, &len),
				0);
		}
		/* The transport restarts the queue where it stopped. */
		vdk_virtq_deactivate(q);
		assert_int_equal(vdk_virtq_activate(q, env->mem, env->features),
				 0);
		assert_int_equal(q->next_avail, avail);
		assert_int_equal(vdk_device_start_queue(dev, i, q), 0);
		assert_int_equal(vdk_device_start_queue(dev, i, q), -EBUSY);
		if (rq == i) {
			/* start processes what waited, on the next slot */
			assert_int_equal(c->suite->check(env, c->suite->opaque),
					 0);
			assert_int_equal(q->next_used, (uint16_t)(used + 1));
			assert_true(env->used_signals[rq] > before);
		}
		request(c, dev);
	}
	assert_int_equal(env->needs_reset_signals, 0);
	/* refusals */
	assert_int_equal(vdk_device_stop_queue(dev, env->num_queues, &got),
			 -ERANGE);
	assert_int_equal(
		vdk_device_start_queue(dev, env->num_queues, env->qptrs[0]),
		-ERANGE);
	transport_sleep(c, dev);
	assert_int_equal(vdk_device_stop_queue(dev, 0, &got), -EBUSY);
	transport_wake(c, dev);
	assert_int_equal(vdk_device_reset(dev), 0);
	assert_int_equal(vdk_device_stop_queue(dev, 0, &got), -EBUSY);
	assert_int_equal(vdk_device_start_queue(dev, 0, env->qptrs[0]), -EBUSY);
}

static struct snap take_snapshot(struct vdk_device *dev)
{
	struct snap s = {0};

	assert_int_equal(vdk_device_snapshot(dev, &s.buf, &s.len), 0);
	assert_non_null(s.buf);
	assert_true(s.len > 0);
	return s;
}

static bool snap_equal(struct snap a, struct snap b)
{
	return a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0;
}

/* The envelope's "state" value, decoded independently of device.c. */
static void assert_envelope_state(struct snap s, const char *want)
{
	struct cbor_load_result res;
	cbor_item_t *item = cbor_load(s.buf, s.len, &res);
	bool found = false;

	assert_non_null(item);
	assert_true(cbor_isa_map(item));
	for (size_t i = 0; i < cbor_map_size(item); i++) {
		struct cbor_pair p = cbor_map_handle(item)[i];

		if (cbor_isa_string(p.key) && cbor_string_length(p.key) == 5 &&
		    !memcmp(cbor_string_handle(p.key), "state", 5)) {
			assert_true(cbor_isa_string(p.value));
			assert_int_equal(cbor_string_length(p.value),
					 strlen(want));
			assert_memory_equal(cbor_string_handle(p.value), want,
					    strlen(want));
			found = true;
		}
	}
	cbor_decref(&item);
	assert_true(found);
}

/* ---- tests -------------------------------------------------------------- */

void vdk_conformance_sleep_snapshot_wake_no_queues(void **state)
{
	struct ctx *c = *state;
	struct vdk_device *dev = create_dev(c);
	struct snap s;

	transport_sleep(c, dev);
	s = take_snapshot(dev);
	assert_envelope_state(s, "new");
	transport_wake(c, dev);
	assert_int_equal(dev->state, VDK_DEVICE_NEW);
	/* Still usable: it activates and serves a request after waking. */
	activate(c, dev);
	request(c, dev);
	free(s.buf);
}

void vdk_conformance_sleep_snapshot_wake_with_queues(void **state)
{
	struct ctx *c = *state;
	struct vdk_device *dev = create_dev(c);
	unsigned signals[VDK_DEVICE_MAX_QUEUES];
	uint16_t used_idx[VDK_DEVICE_MAX_QUEUES];
	struct snap s;
	int q;

	activate(c, dev);
	request(c, dev);
	transport_sleep(c, dev);
	s = take_snapshot(dev);
	assert_envelope_state(s, "active");

	/* A request while asleep is not processed... */
	for (uint16_t i = 0; i < c->env.num_queues; i++) {
		signals[i] = c->env.used_signals[i];
		used_idx[i] = guest_ring_used_idx(&c->env.rings[i]);
	}
	q = c->suite->submit(&c->env, c->suite->opaque);
	assert_true(q >= 0);
	vdk_device_queue_notify(dev, (uint16_t)q);
	for (uint16_t i = 0; i < c->env.num_queues; i++) {
		assert_int_equal(c->env.used_signals[i], signals[i]);
		assert_int_equal(guest_ring_used_idx(&c->env.rings[i]),
				 used_idx[i]);
	}
	/* ...and completes after wake (at wake, or at the next notify). */
	transport_wake(c, dev);
	vdk_device_queue_notify(dev, (uint16_t)q);
	assert_int_equal(c->suite->check(&c->env, c->suite->opaque), 0);
	request(c, dev);
	free(s.buf);
}

void vdk_conformance_snapshot_restore_fresh(void **state)
{
	struct ctx *c = *state;
	struct vdk_device *a = create_dev(c), *b;
	uint16_t avail[VDK_DEVICE_MAX_QUEUES], used[VDK_DEVICE_MAX_QUEUES];
	struct snap sa, sb, sb2;

	activate(c, a);
	request(c, a);
	request(c, a);
	transport_sleep(c, a);
	sa = take_snapshot(a);
	for (uint16_t i = 0; i < c->env.num_queues; i++) {
		avail[i] = vdk_virtq_next_avail(c->env.qptrs[i]);
		used[i] = vdk_virtq_next_used(c->env.qptrs[i]);
	}
	transport_wake(c, a);
	destroy_dev(c, a);

	b = create_dev(c);
	assert_int_equal(vdk_device_sleep(b), 0);
	assert_int_equal(vdk_device_restore(b, sa.buf, sa.len), 0);
	assert_int_equal(b->state, VDK_DEVICE_ACTIVE);
	assert_int_equal(b->acked_features, c->env.features);
	sb = take_snapshot(b);
	assert_int_equal(sb.len, sa.len);
	assert_memory_equal(sb.buf, sa.buf, sa.len);

	/* Restored ACTIVE with nothing to resume with: refused, still
	 * asleep. */
	assert_int_equal(vdk_device_wake(b, NULL, NULL, NULL), -EINVAL);
	assert_true(b->asleep);

	/* The transport restores its queues where they were; the device
	 * carries on on the same rings. */
	for (uint16_t i = 0; i < c->env.num_queues; i++)
		queue_setup(c, b, i, avail[i], used[i]);
	assert_int_equal(
		vdk_device_wake(b, c->env.mem, &c->env.irq, c->env.qptrs), 0);
	assert_false(b->asleep);
	request(c, b);
	transport_sleep(c, b);
	sb2 = take_snapshot(b);
	if (c->suite->modify_changes_snapshot)
		assert_false(snap_equal(sb2, sa));
	transport_wake(c, b);
	free(sa.buf);
	free(sb.buf);
	free(sb2.buf);
}

void vdk_conformance_restore_discards_changes(void **state)
{
	struct ctx *c = *state;
	struct vdk_device *dev = create_dev(c);
	struct snap s1, s2, s3;

	activate(c, dev);
	request(c, dev);
	transport_sleep(c, dev);
	s1 = take_snapshot(dev);
	transport_wake(c, dev);
	request(c, dev);
	request(c, dev);
	transport_sleep(c, dev);
	s2 = take_snapshot(dev);
	if (c->suite->modify_changes_snapshot)
		assert_false(snap_equal(s1, s2));
	transport_wake(c, dev);

	/* Only a device that is not ACTIVE takes a snapshot. */
	assert_int_equal(vdk_device_reset(dev), 0);
	assert_int_equal(dev->state, VDK_DEVICE_RESET);
	assert_int_equal(vdk_device_sleep(dev), 0);
	assert_int_equal(vdk_device_restore(dev, s1.buf, s1.len), 0);
	s3 = take_snapshot(dev);
	assert_true(snap_equal(s1, s3));
	/* Destroyed while asleep and ACTIVE (restored): fini must cope. */
	free(s1.buf);
	free(s2.buf);
	free(s3.buf);
}

void vdk_conformance_lifecycle_refusals(void **state)
{
	struct ctx *c = *state;
	struct vdk_device *dev = create_dev(c);
	uint64_t offered = dev->ops->features(dev->impl);
	uint8_t *buf = NULL;
	size_t len = 0;
	struct snap s;

	/* NEW, awake */
	assert_int_equal(vdk_device_wake(dev, NULL, NULL, NULL), -EBUSY);
	assert_int_equal(vdk_device_snapshot(dev, &buf, &len), -EBUSY);
	assert_null(buf);
	assert_int_equal(vdk_device_reset(dev), 0);
	assert_int_equal(dev->state, VDK_DEVICE_NEW);
	assert_null(vdk_device_sleep_queues(dev));

	/* NEW, asleep */
	transport_sleep(c, dev);
	assert_int_equal(vdk_device_sleep(dev), -EBUSY);
	assert_int_equal(vdk_device_reset(dev), -EBUSY);
	assert_int_equal(vdk_device_ack_features(dev, offered), -EBUSY);
	assert_int_equal(
		vdk_device_activate(dev, c->env.mem, &c->env.irq, c->env.qptrs),
		-EBUSY);
	s = take_snapshot(dev);
	transport_wake(c, dev);
	assert_int_equal(vdk_device_restore(dev, s.buf, s.len), -EBUSY);
	assert_int_equal(dev->state, VDK_DEVICE_NEW);

	/* ACTIVE, awake */
	activate(c, dev);
	assert_int_equal(
		vdk_device_activate(dev, c->env.mem, &c->env.irq, c->env.qptrs),
		-EBUSY);
	assert_int_equal(vdk_device_ack_features(dev, offered), -EBUSY);
	assert_int_equal(vdk_device_restore(dev, s.buf, s.len), -EBUSY);
	assert_int_equal(vdk_device_wake(dev, NULL, NULL, NULL), -EBUSY);
	assert_int_equal(vdk_device_snapshot(dev, &buf, &len), -EBUSY);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	request(c, dev);

	/* ACTIVE, asleep: snapshot yes, restore no */
	transport_sleep(c, dev);
	assert_int_equal(vdk_device_restore(dev, s.buf, s.len), -EBUSY);
	assert_int_equal(vdk_device_reset(dev), -EBUSY);
	assert_int_equal(vdk_device_sleep(dev), -EBUSY);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	transport_wake(c, dev);
	request(c, dev);

	/* reset → RESET, features forgotten; activates again */
	assert_int_equal(vdk_device_reset(dev), 0);
	assert_int_equal(dev->state, VDK_DEVICE_RESET);
	assert_int_equal(dev->acked_features, 0);
	assert_null(dev->mem);
	activate(c, dev);
	request(c, dev);
	free(s.buf);
}

/* Re-encode @s with envelope key @key's value replaced by @value (consumed);
 * a NULL @value removes the key. */
static struct snap mutate(struct snap s, const char *key, cbor_item_t *value)
{
	struct cbor_load_result res;
	cbor_item_t *in = cbor_load(s.buf, s.len, &res), *out;
	struct snap m = {0};
	size_t cap = 0;

	assert_non_null(in);
	out = cbor_new_indefinite_map();
	assert_non_null(out);
	for (size_t i = 0; i < cbor_map_size(in); i++) {
		struct cbor_pair p = cbor_map_handle(in)[i];
		bool match =
			cbor_string_length(p.key) == strlen(key) &&
			!memcmp(cbor_string_handle(p.key), key, strlen(key));

		if (match && !value)
			continue;
		if (match)
			p.value = value;
		assert_true(cbor_map_add(out, p));
	}
	m.len = cbor_serialize_alloc(out, &m.buf, &cap);
	assert_true(m.len > 0);
	if (value)
		cbor_decref(&value);
	cbor_decref(&out);
	cbor_decref(&in);
	return m;
}

static void expect_refused(struct vdk_device *dev, struct snap orig,
			   struct snap bad, int err)
{
	struct snap now;

	assert_int_equal(vdk_device_restore(dev, bad.buf, bad.len), err);
	/* A refused restore changes nothing. */
	now = take_snapshot(dev);
	assert_true(snap_equal(now, orig));
	free(now.buf);
	free(bad.buf);
}

void vdk_conformance_restore_refusals(void **state)
{
	struct ctx *c = *state;
	struct vdk_device *a = create_dev(c), *dev;
	uint64_t offered = a->ops->features(a->impl);
	const uint8_t garbage[] = {0xff, 0x00, 0x13, 0x37};
	struct snap s, s0, bad;
	int unoffered = -1;

	/* @s: an ACTIVE device with state; @dev: a fresh one, asleep. */
	activate(c, a);
	request(c, a);
	transport_sleep(c, a);
	s = take_snapshot(a);
	dev = create_dev(c);
	assert_int_equal(vdk_device_sleep(dev), 0);
	s0 = take_snapshot(dev);

	expect_refused(dev, s0,
		       mutate(s, "device_type",
			      cbor_build_uint64(dev->ops->device_type + 1)),
		       -ENODEV);
	expect_refused(
		dev, s0,
		mutate(s, "version",
		       cbor_build_uint64(VDK_DEVICE_SNAPSHOT_VERSION + 1)),
		-EPROTO);
	expect_refused(dev, s0, mutate(s, "version", cbor_build_negint8(0)),
		       -EINVAL);
	expect_refused(dev, s0, mutate(s, "format", cbor_build_string("vdk")),
		       -EINVAL);
	expect_refused(dev, s0, mutate(s, "state", cbor_build_string("asleep")),
		       -EINVAL);
	expect_refused(dev, s0, mutate(s, "state", NULL), -EINVAL);
	expect_refused(dev, s0,
		       mutate(s, "device", cbor_build_string("not a device")),
		       -EINVAL);
	for (int bit = 63; bit >= 0; bit--)
		if (!(offered & (1ull << bit))) {
			unoffered = bit;
			break;
		}
	if (unoffered >= 0)
		expect_refused(dev, s0,
			       mutate(s, "acked_features",
				      cbor_build_uint64(1ull << unoffered)),
			       -EINVAL);

	/* Truncated, extended, garbage. */
	bad = (struct snap){malloc(s.len), s.len - 1};
	assert_non_null(bad.buf);
	memcpy(bad.buf, s.buf, bad.len);
	expect_refused(dev, s0, bad, -EINVAL);
	bad = (struct snap){malloc(s.len + 1), s.len + 1};
	assert_non_null(bad.buf);
	memcpy(bad.buf, s.buf, s.len);
	bad.buf[s.len] = 0;
	expect_refused(dev, s0, bad, -EINVAL);
	bad = (struct snap){malloc(sizeof(garbage)), sizeof(garbage)};
	assert_non_null(bad.buf);
	memcpy(bad.buf, garbage, sizeof(garbage));
	expect_refused(dev, s0, bad, -EINVAL);

	/* The unmodified snapshot is accepted. */
	assert_int_equal(vdk_device_restore(dev, s.buf, s.len), 0);
	bad = take_snapshot(dev);
	assert_true(snap_equal(bad, s));
	free(bad.buf);
	free(s.buf);
	free(s0.buf);
}
