/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-pci transport, device side: sleep, wake, snapshot and restore of
 * the PCI function, the common configuration, the MSI-X vector numbers and
 * the queues, with the device's own snapshot nested inside as a byte
 * string. The structures themselves are in pci.c.
 *
 * A snapshot handed to vdk_virtio_pci_restore() is untrusted input: it is
 * loaded through vdk_snapshot_load() (bounded), every field is type- and
 * range-checked into a struct snap, the state it describes must be one the
 * transport could have reached, and only then are the queues, the PCI
 * function and the device changed. If the device refuses its part, the
 * queues and PCI state are put back as they were.
 *
 * Locking as in pci.c: everything here runs under lock; irq_lock is taken
 * only around the interrupt fields.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_pci.h>

#include "../snapshot.h"
#include "pci_internal.h"

#define MOD	     "virtio-pci"

#define SNAP_FORMAT  "vdk-virtio-pci"
#define SNAP_VERSION 1

int vdk_virtio_pci_sleep(struct vdk_virtio_pci *t)
{
	return t ? vdk_transport_sleep(&t->c) : -EINVAL;
}

int vdk_virtio_pci_wake(struct vdk_virtio_pci *t)
{
	return t ? vdk_transport_wake(&t->c) : -EINVAL;
}

/* ---- snapshot -------------------------------------------------------------- */

static int snapshot_locked(struct vdk_transport *c, cbor_item_t *root)
{
	struct vdk_virtio_pci *t = c->opaque;
	cbor_item_t *queues, *dev = NULL, *pci = NULL;
	uint8_t *dbuf = NULL, *pbuf = NULL;
	size_t dlen = 0, plen = vdk_pci_state_size(t->pci);
	uint16_t cvec, qvec[VDK_DEVICE_MAX_QUEUES];
	uint8_t isr, gen;
	bool ok;
	int r;

	pthread_mutex_lock(&c->irq_lock);
	isr = t->isr;
	gen = t->config_generation;
	cvec = t->config_vector;
	memcpy(qvec, t->queue_vector, c->num_queues * sizeof(*qvec));
	pthread_mutex_unlock(&c->irq_lock);
	queues = vdk_transport_snapshot_queues(c, qvec);
	if (!queues)
		return -ENOMEM;
	r = vdk_device_snapshot(c->dev, &dbuf, &dlen);
	if (r < 0) {
		cbor_decref(&queues);
		return r;
	}
	pbuf = malloc(plen);
	if (!pbuf || vdk_pci_save_state(t->pci, pbuf, plen) < 0) {
		free(pbuf);
		free(dbuf);
		cbor_decref(&queues);
		return -ENOMEM;
	}
	dev = cbor_build_bytestring(dbuf, dlen);
	pci = cbor_build_bytestring(pbuf, plen);
	free(dbuf);
	free(pbuf);
	/* Insertion order is serialisation order. */
	ok = vdk_transport_snap_put_header(root, SNAP_FORMAT, SNAP_VERSION) &&
	     vdk_snapshot_put_uint(root, "device_type",
				   c->dev->ops->device_type) &&
	     vdk_snapshot_put_uint(root, "status",
				   vdk_transport_status_locked(c)) &&
	     vdk_snapshot_put_uint(root, "device_feature_select",
				   c->device_features_sel) &&
	     vdk_snapshot_put_uint(root, "driver_feature_select",
				   c->driver_features_sel) &&
	     vdk_snapshot_put_uint(root, "driver_features",
				   c->driver_features) &&
	     vdk_snapshot_put_uint(root, "queue_select", t->queue_select) &&
	     vdk_snapshot_put_uint(root, "config_msix_vector", cvec) &&
	     vdk_snapshot_put_uint(root, "isr", isr) &&
	     vdk_snapshot_put_uint(root, "config_generation", gen) &&
	     vdk_snapshot_put(root, "active", cbor_build_bool(c->activated));
	/* vdk_snapshot_put() consumes its item even when it fails. */
	if (!vdk_snapshot_put(root, "queues", queues))
		ok = false;
	if (!pci || !vdk_snapshot_put(root, "pci", pci))
		ok = false;
	if (!dev || !vdk_snapshot_put(root, "device", dev))
		ok = false;
	return ok ? 0 : -ENOMEM;
}

int vdk_virtio_pci_snapshot(struct vdk_virtio_pci *t, uint8_t **buf,
			    size_t *len)
{
	if (!t || !buf || !len)
		return -EINVAL;
	return vdk_transport_snapshot(&t->c, 15, snapshot_locked, buf, len);
}

/* ---- restore ----------------------------------------------------------------- */

struct snap {
	uint64_t status, dfselect, gfselect, driver_features, queue_select;
	uint64_t config_vector, isr, generation, device_type;
	bool active;
	struct vdk_transport_snap_queue q[VDK_DEVICE_MAX_QUEUES];
	const cbor_item_t *pci, *device;
};

static bool vector_ok(const struct vdk_virtio_pci *t, uint64_t v)
{
	return v == VIRTIO_MSI_NO_VECTOR || v < t->nvec;
}

static bool is_bytes(const cbor_item_t *item)
{
	return item && cbor_isa_bytestring(item) &&
	       cbor_bytestring_is_definite(item);
}

static int parse_snapshot(struct vdk_transport *c, const cbor_item_t *root,
			  void *snap)
{
	struct vdk_virtio_pci *t = c->opaque;
	struct snap *s = snap;

	int r = vdk_transport_snap_header(root, SNAP_FORMAT, SNAP_VERSION);

	if (r < 0)
		return r;
	if (!vdk_snapshot_get_uint(root, "device_type", UINT32_MAX,
				   &s->device_type) ||
	    !vdk_snapshot_get_uint(root, "status", UINT8_MAX, &s->status) ||
	    !vdk_snapshot_get_uint(root, "device_feature_select", UINT32_MAX,
				   &s->dfselect) ||
	    !vdk_snapshot_get_uint(root, "driver_feature_select", UINT32_MAX,
				   &s->gfselect) ||
	    !vdk_snapshot_get_uint(root, "driver_features", UINT64_MAX,
				   &s->driver_features) ||
	    !vdk_snapshot_get_uint(root, "queue_select", UINT16_MAX,
				   &s->queue_select) ||
	    !vdk_snapshot_get_uint(root, "config_msix_vector", UINT16_MAX,
				   &s->config_vector) ||
	    !vdk_snapshot_get_uint(root, "isr", 3, &s->isr) ||
	    !vdk_snapshot_get_uint(root, "config_generation", UINT8_MAX,
				   &s->generation) ||
	    !vdk_snapshot_get_bool(root, "active", &s->active))
		return -EINVAL;
	/* The state must be one this transport could have reached. */
	if (s->device_type != c->dev->ops->device_type ||
	    !vector_ok(t, s->config_vector) ||
	    !vdk_transport_snap_state_ok(c, s->status, s->driver_features,
					 s->active) ||
	    vdk_transport_parse_queues(c, vdk_snapshot_map_get(root, "queues"),
				       true, s->q) < 0)
		return -EINVAL;
	for (uint16_t i = 0; i < c->num_queues; i++)
		if (!vector_ok(t, s->q[i].vector))
			return -EINVAL;
	s->pci = vdk_snapshot_map_get(root, "pci");
	s->device = vdk_snapshot_map_get(root, "device");
	if (!is_bytes(s->pci) || !is_bytes(s->device) ||
	    cbor_bytestring_length(s->pci) != vdk_pci_state_size(t->pci))
		return -EINVAL;
	return 0;
}

static int apply_snapshot(struct vdk_transport *c, const void *snap)
{
	const struct snap *s = snap;
	struct vdk_virtio_pci *t = c->opaque;
	size_t plen = vdk_pci_state_size(t->pci);
	uint8_t *old = malloc(plen);
	int r;

	if (!old)
		return -ENOMEM;
	r = vdk_pci_save_state(t->pci, old, plen);
	if (r == 0)
		r = vdk_transport_restore_queues(c, s->q, s->active,
						 s->driver_features);
	if (r == 0)
		r = vdk_pci_load_state(t->pci, cbor_bytestring_handle(s->pci),
				       plen);
	if (r < 0)
		goto fail;
	r = vdk_device_restore(c->dev, cbor_bytestring_handle(s->device),
			       cbor_bytestring_length(s->device));
	if (r == 0 && (c->dev->state == VDK_DEVICE_ACTIVE) != s->active) {
		/* The device's snapshot does not match the transport's. */
		(void)vdk_device_reset(c->dev);
		r = -EINVAL;
	}
	if (r < 0) {
		(void)vdk_pci_load_state(t->pci, old, plen);
		goto fail;
	}
	free(old);
	vdk_transport_restore_registers(c, s->status, (uint32_t)s->dfselect,
					(uint32_t)s->gfselect,
					s->driver_features, s->active);
	t->queue_select = (uint16_t)s->queue_select;
	pthread_mutex_lock(&c->irq_lock);
	t->isr = (uint8_t)s->isr;
	t->config_generation = (uint8_t)s->generation;
	t->config_vector = (uint16_t)s->config_vector;
	for (uint16_t i = 0; i < c->num_queues; i++)
		t->queue_vector[i] = (uint16_t)s->q[i].vector;
	pthread_mutex_unlock(&c->irq_lock); /* INTx follows on wake */
	return 0;
fail:
	free(old);
	vdk_transport_reset_queues(c);
	return r;
}

int vdk_virtio_pci_restore(struct vdk_virtio_pci *t, const uint8_t *buf,
			   size_t len)
{
	if (!t || !buf || !len)
		return -EINVAL;
	return vdk_transport_restore(&t->c, buf, len, sizeof(struct snap),
				     parse_snapshot, apply_snapshot);
}
