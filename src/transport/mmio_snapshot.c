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
	return vdk_transport_sleep(&t->c);
}

int vdk_mmio_wake(struct vdk_mmio *t)
{
	return vdk_transport_wake(&t->c);
}

/* ---- snapshot / restore ----------------------------------------------- */

#define SNAP_FORMAT  "vdk-mmio"
#define SNAP_VERSION 1

static int snapshot_locked(struct vdk_transport *c, cbor_item_t *root)
{
	struct vdk_mmio *t = c->opaque;
	cbor_item_t *queues = vdk_transport_snapshot_queues(c, NULL);
	cbor_item_t *dev = NULL;
	uint32_t isr, gen;
	bool ok;
	int r;

	if (!queues)
		return -ENOMEM;
	r = vdk_device_snapshot_item(c->dev, &dev);
	if (r < 0) {
		cbor_decref(&queues);
		return r;
	}
	pthread_mutex_lock(&c->irq_lock);
	isr = t->isr;
	gen = t->config_generation;
	pthread_mutex_unlock(&c->irq_lock);
	/* Insertion order is serialisation order. */
	ok = vdk_transport_snap_put_header(root, SNAP_FORMAT, SNAP_VERSION) &&
	     vdk_snapshot_put_uint(root, "status",
				   vdk_transport_status_locked(c)) &&
	     vdk_snapshot_put_uint(root, "device_features_sel",
				   c->device_features_sel) &&
	     vdk_snapshot_put_uint(root, "driver_features",
				   c->driver_features) &&
	     vdk_snapshot_put_uint(root, "driver_features_sel",
				   c->driver_features_sel) &&
	     vdk_snapshot_put_uint(root, "queue_sel", t->queue_sel) &&
	     vdk_snapshot_put_uint(root, "shm_sel", t->shm_sel) &&
	     vdk_snapshot_put_uint(root, "interrupt_status", isr) &&
	     vdk_snapshot_put_uint(root, "config_generation", gen) &&
	     vdk_snapshot_put(root, "active", cbor_build_bool(c->activated));
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
	if (!t || !buf || !len)
		return -EINVAL;
	return vdk_transport_snapshot(&t->c, 13, snapshot_locked, buf, len);
}

/* A snapshot as read back, every field range-checked. */
struct snap {
	uint64_t status, device_features_sel, driver_features;
	uint64_t driver_features_sel, queue_sel, shm_sel, isr, generation;
	bool active;
	struct vdk_transport_snap_queue q[VDK_DEVICE_MAX_QUEUES];
	const cbor_item_t *device;
};

static int parse_snapshot(struct vdk_transport *c, const cbor_item_t *root,
			  void *snap)
{
	struct snap *s = snap;
	uint64_t acked;
	const cbor_item_t *state;

	int r = vdk_transport_snap_header(root, SNAP_FORMAT, SNAP_VERSION);

	if (r < 0)
		return r;
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
	if (!vdk_transport_snap_state_ok(c, s->status, s->driver_features,
					 s->active) ||
	    vdk_transport_parse_queues(c, vdk_snapshot_map_get(root, "queues"),
				       false, s->q) < 0)
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

static int apply_snapshot(struct vdk_transport *c, const void *snap)
{
	const struct snap *s = snap;
	struct vdk_mmio *t = c->opaque;
	int r = vdk_transport_restore_queues(c, s->q, s->active,
					     s->driver_features);

	if (r == 0)
		r = vdk_device_restore_item(c->dev, s->device);
	if (r == 0 && (c->dev->state == VDK_DEVICE_ACTIVE) != s->active)
		r = -EINVAL; /* cannot happen after parse_snapshot() */
	if (r < 0) {
		vdk_transport_reset_queues(c);
		return r;
	}
	vdk_transport_restore_registers(c, s->status,
					(uint32_t)s->device_features_sel,
					(uint32_t)s->driver_features_sel,
					s->driver_features, s->active);
	t->queue_sel = (uint32_t)s->queue_sel;
	t->shm_sel = (uint32_t)s->shm_sel;
	pthread_mutex_lock(&c->irq_lock);
	t->isr = (uint32_t)s->isr;
	t->config_generation = (uint32_t)s->generation;
	pthread_mutex_unlock(&c->irq_lock); /* the line follows on wake */
	return 0;
}

int vdk_mmio_restore(struct vdk_mmio *t, const uint8_t *buf, size_t len)
{
	if (!t || !buf || !len)
		return -EINVAL;
	return vdk_transport_restore(&t->c, buf, len, sizeof(struct snap),
				     parse_snapshot, apply_snapshot);
}
