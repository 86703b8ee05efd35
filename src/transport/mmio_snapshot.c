/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio transport, device side: sleep, wake, snapshot and restore of
 * the register state and the queues, with the device's own envelope
 * (<vdk/device.h>) nested inside. The register file is in mmio.c.
 *
 * A snapshot handed to vdk_mmio_restore() is untrusted input: it is loaded
 * through vdk_snapshot_load() (bounded), every field is type- and
 * range-checked into a struct snap, the state it describes must be one this
 * transport could have reached, and only then are the queues and the device
 * changed. On failure nothing is left behind.
 *
 * Locking as in mmio.c: everything here runs under lock; irq_lock is taken
 * only around the interrupt fields.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "../device_internal.h"
#include "../snapshot.h"
#include "mmio_internal.h"

#define MOD "mmio"

int vdk_mmio_sleep(struct vdk_mmio *t)
{
	int r;

	pthread_mutex_lock(&t->c.lock);
	r = t->c.asleep ? -EBUSY : vdk_device_sleep(t->c.dev);
	if (r == 0)
		t->c.asleep = true;
	pthread_mutex_unlock(&t->c.lock);
	return r;
}

int vdk_mmio_wake(struct vdk_mmio *t)
{
	int r;

	pthread_mutex_lock(&t->c.lock);
	if (!t->c.asleep)
		r = -EBUSY;
	else if (t->c.restored_active)
		r = vdk_device_wake(t->c.dev, t->c.mem, &t->c.irq, t->c.active);
	else
		r = vdk_device_wake(t->c.dev, NULL, NULL, NULL);
	if (r == 0) {
		t->c.asleep = false;
		t->c.restored_active = false;
		/* a restored InterruptStatus re-asserts the line */
		pthread_mutex_lock(&t->c.irq_lock);
		vdk_mmio_irq_update_locked(t);
		pthread_mutex_unlock(&t->c.irq_lock);
	}
	pthread_mutex_unlock(&t->c.lock);
	return r;
}

/* ---- snapshot / restore ----------------------------------------------- */

#define SNAP_FORMAT  "vdk-mmio"
#define SNAP_VERSION 1

static cbor_item_t *snapshot_queue(const struct vdk_virtq *q)
{
	cbor_item_t *m = cbor_new_definite_map(7);

	if (!m)
		return NULL;
	if (!vdk_snapshot_put_uint(m, "size", q->size) ||
	    !vdk_snapshot_put(m, "ready", cbor_build_bool(q->ready)) ||
	    !vdk_snapshot_put_uint(m, "desc", q->desc_gpa) ||
	    !vdk_snapshot_put_uint(m, "driver", q->driver_gpa) ||
	    !vdk_snapshot_put_uint(m, "device", q->device_gpa) ||
	    !vdk_snapshot_put_uint(m, "next_avail", vdk_virtq_next_avail(q)) ||
	    !vdk_snapshot_put_uint(m, "next_used", vdk_virtq_next_used(q)))
		cbor_decref(&m);
	return m;
}

static int snapshot_locked(struct vdk_mmio *t, cbor_item_t *root)
{
	cbor_item_t *queues = cbor_new_definite_array(t->c.num_queues);
	cbor_item_t *dev = NULL;
	uint32_t isr, gen;
	bool ok;
	int r;

	if (!queues)
		return -ENOMEM;
	for (uint16_t i = 0; i < t->c.num_queues; i++) {
		cbor_item_t *q = snapshot_queue(&t->c.queues[i]);

		ok = q && cbor_array_push(queues, q);
		if (q)
			cbor_decref(&q);
		if (!ok) {
			cbor_decref(&queues);
			return -ENOMEM;
		}
	}
	r = vdk_device_snapshot_item(t->c.dev, &dev);
	if (r < 0) {
		cbor_decref(&queues);
		return r;
	}
	pthread_mutex_lock(&t->c.irq_lock);
	isr = t->isr;
	gen = t->config_generation;
	pthread_mutex_unlock(&t->c.irq_lock);
	/* Insertion order is serialisation order. */
	ok = vdk_snapshot_put(root, "format", cbor_build_string(SNAP_FORMAT)) &&
	     vdk_snapshot_put_uint(root, "version", SNAP_VERSION) &&
	     vdk_snapshot_put_uint(root, "status", vdk_mmio_status_locked(t)) &&
	     vdk_snapshot_put_uint(root, "device_features_sel",
				   t->c.device_features_sel) &&
	     vdk_snapshot_put_uint(root, "driver_features",
				   t->c.driver_features) &&
	     vdk_snapshot_put_uint(root, "driver_features_sel",
				   t->c.driver_features_sel) &&
	     vdk_snapshot_put_uint(root, "queue_sel", t->queue_sel) &&
	     vdk_snapshot_put_uint(root, "shm_sel", t->shm_sel) &&
	     vdk_snapshot_put_uint(root, "interrupt_status", isr) &&
	     vdk_snapshot_put_uint(root, "config_generation", gen) &&
	     vdk_snapshot_put(root, "active", cbor_build_bool(t->c.activated));
	/* vdk_snapshot_put() consumes its item even when it fails: hand both
	 * over whatever happened above, so that neither leaks. */
	if (!vdk_snapshot_put(root, "queues", queues))
		ok = false;
	if (!vdk_snapshot_put(root, "device", dev))
		ok = false;
	return ok ? 0 : -ENOMEM;
}

int vdk_mmio_snapshot(struct vdk_mmio *t, uint8_t **buf, size_t *len)
{
	cbor_item_t *root;
	int r;

	if (!t || !buf || !len)
		return -EINVAL;
	pthread_mutex_lock(&t->c.lock);
	if (!t->c.asleep) {
		r = -EBUSY;
		goto out;
	}
	root = cbor_new_definite_map(13);
	r = root ? snapshot_locked(t, root) : -ENOMEM;
	if (r == 0)
		r = vdk_snapshot_serialize(root, buf, len);
	if (root)
		cbor_decref(&root);
out:
	pthread_mutex_unlock(&t->c.lock);
	return r;
}

/* A snapshot as read back, every field range-checked. */
struct snap_queue {
	uint64_t size, desc, driver, device, next_avail, next_used;
	bool ready;
};

struct snap {
	uint64_t status, device_features_sel, driver_features;
	uint64_t driver_features_sel, queue_sel, shm_sel, isr, generation;
	bool active;
	struct snap_queue q[VDK_DEVICE_MAX_QUEUES];
	const cbor_item_t *device;
};

static int parse_queues(struct vdk_mmio *t, const cbor_item_t *arr,
			struct snap *s)
{
	cbor_item_t **items;

	if (!arr || !cbor_isa_array(arr) ||
	    cbor_array_size(arr) != t->c.num_queues)
		return -EINVAL;
	items = cbor_array_handle(arr);
	for (uint16_t i = 0; i < t->c.num_queues; i++) {
		const cbor_item_t *m = items[i];
		struct snap_queue *q = &s->q[i];

		if (!vdk_snapshot_get_uint(m, "size", t->c.queues[i].max_size,
					   &q->size) ||
		    !vdk_snapshot_get_bool(m, "ready", &q->ready) ||
		    !vdk_snapshot_get_uint(m, "desc", UINT64_MAX, &q->desc) ||
		    !vdk_snapshot_get_uint(m, "driver", UINT64_MAX,
					   &q->driver) ||
		    !vdk_snapshot_get_uint(m, "device", UINT64_MAX,
					   &q->device) ||
		    !vdk_snapshot_get_uint(m, "next_avail", UINT16_MAX,
					   &q->next_avail) ||
		    !vdk_snapshot_get_uint(m, "next_used", UINT16_MAX,
					   &q->next_used))
			return -EINVAL;
	}
	return 0;
}

static int parse_snapshot(struct vdk_mmio *t, const cbor_item_t *root,
			  struct snap *s)
{
	const uint64_t version_1 = 1ull << VIRTIO_F_VERSION_1;
	uint64_t version, acked;
	const cbor_item_t *state;

	if (!cbor_isa_map(root) ||
	    !vdk_snapshot_str_eq(vdk_snapshot_map_get(root, "format"),
				 SNAP_FORMAT))
		return -EINVAL;
	if (!vdk_snapshot_get_uint(root, "version", UINT64_MAX, &version))
		return -EINVAL;
	if (version != SNAP_VERSION)
		return -EPROTO;
	if (!vdk_snapshot_get_uint(root, "status", UINT8_MAX, &s->status) ||
	    !vdk_snapshot_get_uint(root, "device_features_sel", UINT32_MAX,
				   &s->device_features_sel) ||
	    !vdk_snapshot_get_uint(root, "driver_features", UINT64_MAX,
				   &s->driver_features) ||
	    !vdk_snapshot_get_uint(root, "driver_features_sel", UINT32_MAX,
				   &s->driver_features_sel) ||
	    !vdk_snapshot_get_uint(root, "queue_sel", UINT32_MAX,
				   &s->queue_sel) ||
	    !vdk_snapshot_get_uint(root, "shm_sel", UINT32_MAX, &s->shm_sel) ||
	    !vdk_snapshot_get_uint(root, "interrupt_status", VDK_MMIO_INT_BITS,
				   &s->isr) ||
	    !vdk_snapshot_get_uint(root, "config_generation", UINT32_MAX,
				   &s->generation) ||
	    !vdk_snapshot_get_bool(root, "active", &s->active))
		return -EINVAL;
	/* The state must be one this transport could have reached. */
	if ((s->status & ~(uint64_t)(VDK_MMIO_DRIVER_STATUS_BITS |
				     VIRTIO_CONFIG_S_NEEDS_RESET)) ||
	    (s->driver_features & ~t->c.device_features))
		return -EINVAL;
	if ((s->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !(s->driver_features & version_1))
		return -EINVAL;
	if ((s->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(s->status & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EINVAL;
	if (s->active && !(s->status & VIRTIO_CONFIG_S_DRIVER_OK))
		return -EINVAL;
	if (parse_queues(t, vdk_snapshot_map_get(root, "queues"), s) < 0)
		return -EINVAL;
	/* The device envelope (<vdk/device.h>) must agree with the
	 * transport before the device is touched. */
	s->device = vdk_snapshot_map_get(root, "device");
	state = vdk_snapshot_map_get(s->device, "state");
	if (!state || vdk_snapshot_str_eq(state, "active") != s->active)
		return -EINVAL;
	if ((s->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    (!vdk_snapshot_get_uint(s->device, "acked_features", UINT64_MAX,
				    &acked) ||
	     acked != s->driver_features))
		return -EINVAL;
	return 0;
}

static int apply_snapshot(struct vdk_mmio *t, const struct snap *s)
{
	int r;

	for (uint16_t i = 0; i < t->c.num_queues; i++) {
		const struct snap_queue *sq = &s->q[i];
		struct vdk_virtq *q = &t->c.queues[i];

		vdk_virtq_reset(q);
		t->c.active[i] = NULL;
		r = vdk_virtq_set_size(q, (uint16_t)sq->size);
		if (r == 0)
			r = vdk_virtq_set_addrs(q, sq->desc, sq->driver,
						sq->device);
		if (r == 0)
			r = vdk_virtq_set_next_avail(q,
						     (uint16_t)sq->next_avail);
		if (r == 0)
			r = vdk_virtq_set_next_used(q, (uint16_t)sq->next_used);
		if (r < 0)
			goto fail;
		vdk_virtq_set_ready(q, sq->ready);
		if (!s->active || !sq->ready)
			continue;
		r = vdk_virtq_activate(q, t->c.mem, s->driver_features);
		if (r < 0)
			goto fail;
		t->c.active[i] = q;
	}
	r = vdk_device_restore_item(t->c.dev, s->device);
	if (r < 0)
		goto fail;
	if ((t->c.dev->state == VDK_DEVICE_ACTIVE) != s->active) {
		r = -EINVAL; /* cannot happen after parse_snapshot() */
		goto fail;
	}
	t->c.status = (uint8_t)(s->status & VDK_MMIO_DRIVER_STATUS_BITS);
	t->c.device_features_sel = (uint32_t)s->device_features_sel;
	t->c.driver_features = s->driver_features;
	t->c.driver_features_sel = (uint32_t)s->driver_features_sel;
	t->queue_sel = (uint32_t)s->queue_sel;
	t->shm_sel = (uint32_t)s->shm_sel;
	t->c.activated = s->active;
	t->c.restored_active = s->active;
	vdk_interrupt_init_callback(&t->c.irq, &vdk_mmio_irq_ops, t);
	t->c.irq.needs_reset = (s->status & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
	pthread_mutex_lock(&t->c.irq_lock);
	t->isr = (uint32_t)s->isr;
	t->config_generation = (uint32_t)s->generation;
	t->c.needs_reset = t->c.irq.needs_reset;
	pthread_mutex_unlock(&t->c.irq_lock); /* the line follows on wake */
	return 0;
fail:
	vdk_mmio_reset_queues(t);
	return r;
}

int vdk_mmio_restore(struct vdk_mmio *t, const uint8_t *buf, size_t len)
{
	cbor_item_t *root;
	struct snap *s;
	int r;

	if (!t || !buf || !len)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&t->c.lock);
	if (!t->c.asleep || t->c.activated) {
		r = -EBUSY;
		goto out;
	}
	r = vdk_snapshot_load(buf, len, &root);
	if (r < 0)
		goto out;
	r = parse_snapshot(t, root, s);
	if (r == 0)
		r = apply_snapshot(t, s);
	cbor_decref(&root);
out:
	pthread_mutex_unlock(&t->c.lock);
	free(s);
	if (r < 0)
		vdk_log(VDK_LOG_WARN, MOD, "%s: restore refused (%d)",
			t->c.dev->ops->name, r);
	return r;
}
