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
	int r;

	if (!t)
		return -EINVAL;
	pthread_mutex_lock(&t->c.lock);
	r = t->c.asleep ? -EBUSY : vdk_device_sleep(t->c.dev);
	if (r == 0)
		t->c.asleep = true;
	pthread_mutex_unlock(&t->c.lock);
	return r;
}

int vdk_virtio_pci_wake(struct vdk_virtio_pci *t)
{
	int r;

	if (!t)
		return -EINVAL;
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
		/* a restored ISR re-asserts INTx */
		pthread_mutex_lock(&t->c.irq_lock);
		if (t->isr)
			vdk_pci_set_intx(t->pci, true);
		pthread_mutex_unlock(&t->c.irq_lock);
	}
	pthread_mutex_unlock(&t->c.lock);
	return r;
}

/* ---- snapshot -------------------------------------------------------------- */

static cbor_item_t *snapshot_queue(const struct vdk_virtq *q, uint16_t vec)
{
	cbor_item_t *m = cbor_new_definite_map(8);

	if (!m)
		return NULL;
	if (!vdk_snapshot_put_uint(m, "size", q->size) ||
	    !vdk_snapshot_put(m, "ready", cbor_build_bool(q->ready)) ||
	    !vdk_snapshot_put_uint(m, "desc", q->desc_gpa) ||
	    !vdk_snapshot_put_uint(m, "driver", q->driver_gpa) ||
	    !vdk_snapshot_put_uint(m, "device", q->device_gpa) ||
	    !vdk_snapshot_put_uint(m, "next_avail", vdk_virtq_next_avail(q)) ||
	    !vdk_snapshot_put_uint(m, "next_used", vdk_virtq_next_used(q)) ||
	    !vdk_snapshot_put_uint(m, "msix_vector", vec))
		cbor_decref(&m);
	return m;
}

static int snapshot_locked(struct vdk_virtio_pci *t, cbor_item_t *root)
{
	cbor_item_t *queues = cbor_new_definite_array(t->c.num_queues);
	cbor_item_t *dev = NULL, *pci = NULL;
	uint8_t *dbuf = NULL, *pbuf = NULL;
	size_t dlen = 0, plen = vdk_pci_state_size(t->pci);
	uint16_t cvec, qvec[VDK_DEVICE_MAX_QUEUES];
	uint8_t isr, gen;
	bool ok;
	int r;

	pthread_mutex_lock(&t->c.irq_lock);
	isr = t->isr;
	gen = t->config_generation;
	cvec = t->config_vector;
	memcpy(qvec, t->queue_vector, t->c.num_queues * sizeof(*qvec));
	pthread_mutex_unlock(&t->c.irq_lock);
	if (!queues)
		return -ENOMEM;
	for (uint16_t i = 0; i < t->c.num_queues; i++) {
		cbor_item_t *q = snapshot_queue(&t->c.queues[i], qvec[i]);

		ok = q && cbor_array_push(queues, q);
		if (q)
			cbor_decref(&q);
		if (!ok) {
			cbor_decref(&queues);
			return -ENOMEM;
		}
	}
	r = vdk_device_snapshot(t->c.dev, &dbuf, &dlen);
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
	ok = vdk_snapshot_put(root, "format", cbor_build_string(SNAP_FORMAT)) &&
	     vdk_snapshot_put_uint(root, "version", SNAP_VERSION) &&
	     vdk_snapshot_put_uint(root, "device_type",
				   t->c.dev->ops->device_type) &&
	     vdk_snapshot_put_uint(root, "status",
				   vdk_virtio_pci_status_locked(t)) &&
	     vdk_snapshot_put_uint(root, "device_feature_select",
				   t->c.device_features_sel) &&
	     vdk_snapshot_put_uint(root, "driver_feature_select",
				   t->c.driver_features_sel) &&
	     vdk_snapshot_put_uint(root, "driver_features",
				   t->c.driver_features) &&
	     vdk_snapshot_put_uint(root, "queue_select", t->queue_select) &&
	     vdk_snapshot_put_uint(root, "config_msix_vector", cvec) &&
	     vdk_snapshot_put_uint(root, "isr", isr) &&
	     vdk_snapshot_put_uint(root, "config_generation", gen) &&
	     vdk_snapshot_put(root, "active", cbor_build_bool(t->c.activated));
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
	cbor_item_t *root;
	int r;

	if (!t || !buf || !len)
		return -EINVAL;
	pthread_mutex_lock(&t->c.lock);
	if (!t->c.asleep) {
		r = -EBUSY;
		goto out;
	}
	root = cbor_new_definite_map(15);
	r = root ? snapshot_locked(t, root) : -ENOMEM;
	if (r == 0)
		r = vdk_snapshot_serialize(root, buf, len);
	if (root)
		cbor_decref(&root);
out:
	pthread_mutex_unlock(&t->c.lock);
	return r;
}

/* ---- restore ----------------------------------------------------------------- */

struct snap_queue {
	uint64_t size, desc, driver, device, next_avail, next_used, vector;
	bool ready;
};

struct snap {
	uint64_t status, dfselect, gfselect, driver_features, queue_select;
	uint64_t config_vector, isr, generation, device_type;
	bool active;
	struct snap_queue q[VDK_DEVICE_MAX_QUEUES];
	const cbor_item_t *pci, *device;
};

static bool vector_ok(const struct vdk_virtio_pci *t, uint64_t v)
{
	return v == VIRTIO_MSI_NO_VECTOR || v < t->nvec;
}

static int parse_queues(struct vdk_virtio_pci *t, const cbor_item_t *arr,
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
					   &q->next_used) ||
		    !vdk_snapshot_get_uint(m, "msix_vector", UINT16_MAX,
					   &q->vector) ||
		    !vector_ok(t, q->vector))
			return -EINVAL;
	}
	return 0;
}

static bool is_bytes(const cbor_item_t *item)
{
	return item && cbor_isa_bytestring(item) &&
	       cbor_bytestring_is_definite(item);
}

static int parse_snapshot(struct vdk_virtio_pci *t, const cbor_item_t *root,
			  struct snap *s)
{
	const uint64_t version_1 = 1ull << VIRTIO_F_VERSION_1;
	uint64_t version;

	if (!cbor_isa_map(root) ||
	    !vdk_snapshot_str_eq(vdk_snapshot_map_get(root, "format"),
				 SNAP_FORMAT))
		return -EINVAL;
	if (!vdk_snapshot_get_uint(root, "version", UINT64_MAX, &version))
		return -EINVAL;
	if (version != SNAP_VERSION)
		return -EPROTO;
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
	if (s->device_type != t->c.dev->ops->device_type ||
	    !vector_ok(t, s->config_vector))
		return -EINVAL;
	if ((s->status & ~(uint64_t)(VDK_TRANSPORT_DRIVER_STATUS_BITS |
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
	s->pci = vdk_snapshot_map_get(root, "pci");
	s->device = vdk_snapshot_map_get(root, "device");
	if (!is_bytes(s->pci) || !is_bytes(s->device) ||
	    cbor_bytestring_length(s->pci) != vdk_pci_state_size(t->pci))
		return -EINVAL;
	return 0;
}

static void reset_queues(struct vdk_virtio_pci *t)
{
	for (uint16_t i = 0; i < t->c.num_queues; i++) {
		vdk_virtq_reset(&t->c.queues[i]);
		t->c.active[i] = NULL;
	}
}

static int apply_queues(struct vdk_virtio_pci *t, const struct snap *s)
{
	int r = 0;

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
			return r;
		vdk_virtq_set_ready(q, sq->ready);
		if (!s->active || !sq->ready)
			continue;
		r = vdk_virtq_activate(q, t->c.mem, s->driver_features);
		if (r < 0)
			return r;
		t->c.active[i] = q;
	}
	return 0;
}

static int apply_snapshot(struct vdk_virtio_pci *t, const struct snap *s)
{
	size_t plen = vdk_pci_state_size(t->pci);
	uint8_t *old = malloc(plen);
	int r;

	if (!old)
		return -ENOMEM;
	r = vdk_pci_save_state(t->pci, old, plen);
	if (r == 0)
		r = apply_queues(t, s);
	if (r == 0)
		r = vdk_pci_load_state(t->pci, cbor_bytestring_handle(s->pci),
				       plen);
	if (r < 0)
		goto fail;
	r = vdk_device_restore(t->c.dev, cbor_bytestring_handle(s->device),
			       cbor_bytestring_length(s->device));
	if (r == 0 && (t->c.dev->state == VDK_DEVICE_ACTIVE) != s->active) {
		/* The device's snapshot does not match the transport's. */
		(void)vdk_device_reset(t->c.dev);
		r = -EINVAL;
	}
	if (r < 0) {
		(void)vdk_pci_load_state(t->pci, old, plen);
		goto fail;
	}
	free(old);
	t->c.status = (uint8_t)(s->status & VDK_TRANSPORT_DRIVER_STATUS_BITS);
	t->c.device_features_sel = (uint32_t)s->dfselect;
	t->c.driver_features_sel = (uint32_t)s->gfselect;
	t->c.driver_features = s->driver_features;
	t->queue_select = (uint16_t)s->queue_select;
	t->c.activated = s->active;
	t->c.restored_active = s->active;
	vdk_interrupt_init_callback(&t->c.irq, &vdk_virtio_pci_irq_ops, t);
	t->c.irq.needs_reset = (s->status & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
	pthread_mutex_lock(&t->c.irq_lock);
	t->isr = (uint8_t)s->isr;
	t->config_generation = (uint8_t)s->generation;
	t->c.needs_reset = t->c.irq.needs_reset;
	t->config_vector = (uint16_t)s->config_vector;
	for (uint16_t i = 0; i < t->c.num_queues; i++)
		t->queue_vector[i] = (uint16_t)s->q[i].vector;
	pthread_mutex_unlock(&t->c.irq_lock); /* INTx follows on wake */
	return 0;
fail:
	free(old);
	reset_queues(t);
	return r;
}

int vdk_virtio_pci_restore(struct vdk_virtio_pci *t, const uint8_t *buf,
			   size_t len)
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
