/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The status, feature, queue, reset, sleep and snapshot rules both
 * transports share: see common.h. Everything here runs under the calling
 * transport's register lock, except the calls that take it themselves
 * (sleep, wake, snapshot, restore, fini).
 */
#include <errno.h>
#include <stdlib.h>

#include "common.h"

void vdk_transport_write_status(uint8_t *status, uint32_t val, bool needs_reset,
				const struct vdk_transport_status_hooks *hooks,
				void *t, struct vdk_ratelimit *rl,
				const char *mod, const char *name)
{
	uint8_t want, added, s = *status;

	if (val == 0) {
		hooks->reset(t);
		return;
	}
	want = (uint8_t)(val & VDK_TRANSPORT_DRIVER_STATUS_BITS);
	if (s & VIRTIO_CONFIG_S_FAILED)
		return; /* the driver gave up; only a reset helps */
	if (s & ~want) {
		VDK_LOG_RL(rl, VDK_LOG_WARN, mod,
			   "%s: status %#x -> %#x clears bits; ignored", name,
			   s, val);
		return;
	}
	added = want & ~s;
	if (added & VIRTIO_CONFIG_S_FAILED) {
		vdk_log(VDK_LOG_INFO, mod, "%s: driver set FAILED", name);
		*status = s | VIRTIO_CONFIG_S_FAILED;
		return;
	}
	if (needs_reset)
		return; /* §2.1.2: the driver must reset first */
	if (added & VIRTIO_CONFIG_S_ACKNOWLEDGE)
		s |= VIRTIO_CONFIG_S_ACKNOWLEDGE;
	if ((added & VIRTIO_CONFIG_S_DRIVER) &&
	    (s & VIRTIO_CONFIG_S_ACKNOWLEDGE))
		s |= VIRTIO_CONFIG_S_DRIVER;
	*status = s;
	if ((added & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    (s & VIRTIO_CONFIG_S_DRIVER) && hooks->features_ok(t))
		s |= VIRTIO_CONFIG_S_FEATURES_OK;
	*status = s;
	if ((added & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    (s & VIRTIO_CONFIG_S_FEATURES_OK)) {
		s |= VIRTIO_CONFIG_S_DRIVER_OK;
		*status = s;
		hooks->driver_ok(t);
	}
	if (s != want)
		VDK_LOG_RL(rl, VDK_LOG_WARN, mod,
			   "%s: status %#x refused, now %#x", name, val, s);
}

bool vdk_transport_features_ok(struct vdk_device *dev, uint64_t offered,
			       uint64_t f, struct vdk_ratelimit *rl,
			       const char *mod)
{
	int r;

	if (f & ~offered) {
		VDK_LOG_RL(rl, VDK_LOG_WARN, mod,
			   "%s: driver accepted unoffered features %#llx",
			   dev->ops->name, (unsigned long long)(f & ~offered));
		return false;
	}
	if (!(f & (1ull << VIRTIO_F_VERSION_1))) {
		VDK_LOG_RL(rl, VDK_LOG_WARN, mod,
			   "%s: driver did not accept VIRTIO_F_VERSION_1",
			   dev->ops->name);
		return false;
	}
	r = vdk_device_ack_features(dev, f);
	if (r < 0) {
		VDK_LOG_RL(rl, VDK_LOG_WARN, mod,
			   "%s: device refused features %#llx (%d)",
			   dev->ops->name, (unsigned long long)f, r);
		return false;
	}
	return true;
}

int vdk_transport_activate(struct vdk_device *dev, const struct vdk_mem *mem,
			   struct vdk_interrupt *irq, struct vdk_virtq *queues,
			   uint16_t n, struct vdk_virtq **active,
			   uint64_t features, const char **why)
{
	int r = 0;

	*why = "device activation failed";
	for (uint16_t i = 0; i < n; i++) {
		struct vdk_virtq *q = &queues[i];

		active[i] = NULL;
		if (!q->ready)
			continue;
		r = vdk_virtq_activate(q, mem, features);
		if (r < 0) {
			*why = "queue activation failed";
			goto fail;
		}
		active[i] = q;
	}
	r = vdk_device_activate(dev, mem, irq, active);
	if (r < 0)
		goto fail;
	return 0;
fail:
	for (uint16_t i = 0; i < n; i++) {
		if (active[i])
			vdk_virtq_deactivate(active[i]);
		active[i] = NULL;
	}
	return r;
}

int vdk_transport_reset_device(struct vdk_device *dev, struct vdk_virtq *queues,
			       uint16_t n, struct vdk_virtq **active)
{
	int r = vdk_device_reset(dev);

	if (r < 0)
		return r;
	for (uint16_t i = 0; i < n; i++) {
		vdk_virtq_reset(&queues[i]);
		active[i] = NULL;
	}
	return 0;
}

int vdk_transport_swap_queue(struct vdk_device *dev, const struct vdk_mem *mem,
			     struct vdk_interrupt *irq,
			     struct vdk_virtq *queues,
			     struct vdk_virtq **active, uint16_t idx,
			     struct vdk_virtq *nq, const char **why)
{
	struct vdk_virtq *old;
	int r, ret = 0;

	if (nq)
		r = vdk_device_start_queue(dev, idx, nq);
	else
		r = vdk_device_stop_queue(dev, idx, &old);
	if (r == -EOPNOTSUPP) {
		r = vdk_device_sleep(dev);
		if (r < 0) {
			*why = "sleep for queue reset failed";
			return r;
		}
		active[idx] = nq;
		ret = vdk_device_wake(dev, mem, irq, active);
		if (ret < 0)
			*why = "wake after queue reset failed";
	} else if (r < 0) {
		*why = nq ? "queue start failed" : "queue stop failed";
		return r;
	}
	active[idx] = nq;
	if (!nq)
		vdk_virtq_reset(&queues[idx]);
	return ret;
}

/* ---- the shared state (struct vdk_transport) ---------------------------- */

int vdk_transport_init(struct vdk_transport *c,
		       const struct vdk_transport_ops *ops, void *opaque,
		       struct vdk_device *dev, const struct vdk_mem *mem)
{
	struct vdk_ratelimit rl = VDK_RATELIMIT_INIT;

	if (dev->num_queues == 0 || dev->num_queues > VDK_DEVICE_MAX_QUEUES)
		return -EINVAL;
	c->queues = calloc(dev->num_queues, sizeof(*c->queues));
	if (!c->queues)
		return -ENOMEM;
	for (uint16_t i = 0; i < dev->num_queues; i++) {
		if (vdk_virtq_init(&c->queues[i],
				   dev->ops->queue_max_size(dev->impl, i),
				   i) < 0) {
			free(c->queues);
			c->queues = NULL;
			return -EINVAL;
		}
	}
	c->ops = ops;
	c->opaque = opaque;
	c->dev = dev;
	c->mem = mem;
	c->num_queues = dev->num_queues;
	c->device_features = dev->ops->features(dev->impl);
	c->rl = rl;
	vdk_interrupt_init_callback(&c->irq, ops->irq_ops, opaque);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->irq_lock, NULL);
	return 0;
}

void vdk_transport_fini(struct vdk_transport *c)
{
	if (c->asleep)
		(void)vdk_transport_wake(c);
	pthread_mutex_lock(&c->lock);
	if (c->activated && vdk_device_reset(c->dev) < 0)
		vdk_log(VDK_LOG_ERROR, c->ops->mod, "%s: reset on free failed",
			c->dev->ops->name);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->irq_lock);
	free(c->queues);
	c->queues = NULL;
}

uint8_t vdk_transport_status_locked(struct vdk_transport *c)
{
	uint8_t s = c->status;

	pthread_mutex_lock(&c->irq_lock);
	if (c->needs_reset)
		s |= VIRTIO_CONFIG_S_NEEDS_RESET;
	pthread_mutex_unlock(&c->irq_lock);
	return s;
}

uint8_t vdk_transport_status(struct vdk_transport *c)
{
	uint8_t s;

	pthread_mutex_lock(&c->lock);
	s = vdk_transport_status_locked(c);
	pthread_mutex_unlock(&c->lock);
	return s;
}

struct vdk_virtq *vdk_transport_queue(struct vdk_transport *c, uint16_t index)
{
	return index < c->num_queues ? &c->queues[index] : NULL;
}

void vdk_transport_fail(struct vdk_transport *c, const char *why, int err)
{
	vdk_log(VDK_LOG_ERROR, c->ops->mod, "%s: %s (%d); DEVICE_NEEDS_RESET",
		c->dev->ops->name, why, err);
	c->ops->irq_ops->set_needs_reset(c->opaque);
}

void vdk_transport_reset_queues(struct vdk_transport *c)
{
	for (uint16_t i = 0; i < c->num_queues; i++) {
		vdk_virtq_reset(&c->queues[i]);
		c->active[i] = NULL;
	}
}

/* ---- device status -------------------------------------------------------- */

/* Writing 0 to the status: virtio 1.2 §2.4 device reset. */
static void status_reset(void *opaque)
{
	struct vdk_transport *c = opaque;
	int r = vdk_transport_reset_device(c->dev, c->queues, c->num_queues,
					   c->active);

	if (r < 0) {
		/* The device may still be using the queues: leave them, and
		 * tell the driver the reset did not complete. */
		vdk_transport_fail(c, "device reset failed", r);
		return;
	}
	c->status = 0;
	c->device_features_sel = 0;
	c->driver_features_sel = 0;
	c->driver_features = 0;
	c->activated = false;
	vdk_interrupt_init_callback(&c->irq, c->ops->irq_ops, c->opaque);
	pthread_mutex_lock(&c->irq_lock);
	c->needs_reset = false;
	c->ops->reset_locked(c); /* config_generation is kept */
	pthread_mutex_unlock(&c->irq_lock);
}

/* FEATURES_OK: virtio 1.2 §3.1.1 step 5, §6.1 (VERSION_1 is mandatory). */
static bool status_features_ok(void *opaque)
{
	struct vdk_transport *c = opaque;

	return vdk_transport_features_ok(c->dev, c->device_features,
					 c->driver_features, &c->rl,
					 c->ops->mod);
}

/* DRIVER_OK: activate every ready queue, then the device (§3.1.1 step 8). */
static void status_driver_ok(void *opaque)
{
	struct vdk_transport *c = opaque;
	const char *why;
	int r = vdk_transport_activate(c->dev, c->mem, &c->irq, c->queues,
				       c->num_queues, c->active,
				       c->driver_features, &why);

	if (r < 0) {
		vdk_transport_fail(c, why, r);
		return;
	}
	c->activated = true;
}

static const struct vdk_transport_status_hooks status_hooks = {
	.reset = status_reset,
	.features_ok = status_features_ok,
	.driver_ok = status_driver_ok,
};

void vdk_transport_set_status(struct vdk_transport *c, uint32_t val)
{
	bool needs_reset =
		vdk_transport_status_locked(c) & VIRTIO_CONFIG_S_NEEDS_RESET;

	vdk_transport_write_status(&c->status, val, needs_reset, &status_hooks,
				   c, &c->rl, c->ops->mod, c->dev->ops->name);
}

/* ---- feature registers ------------------------------------------------------ */

uint32_t vdk_transport_features_word(uint64_t features, uint32_t sel)
{
	return sel > 1 ? 0 : (uint32_t)(features >> (32 * sel));
}

void vdk_transport_write_driver_features(struct vdk_transport *c, uint32_t v,
					 const char *reg)
{
	uint8_t st = c->status;
	unsigned int shift;

	if (!(st & VIRTIO_CONFIG_S_DRIVER) ||
	    (st & VIRTIO_CONFIG_S_FEATURES_OK) || c->driver_features_sel > 1) {
		VDK_LOG_RL(&c->rl, VDK_LOG_WARN, c->ops->mod,
			   "%s: %s write ignored (status %#x, select %u)",
			   c->dev->ops->name, reg, st, c->driver_features_sel);
		return;
	}
	shift = 32 * c->driver_features_sel;
	c->driver_features &= ~(0xffffffffull << shift);
	c->driver_features |= (uint64_t)v << shift;
}

/* ---- one queue -------------------------------------------------------------- */

static void swap(struct vdk_transport *c, uint16_t idx, struct vdk_virtq *nq)
{
	const char *why;
	int r = vdk_transport_swap_queue(c->dev, c->mem, &c->irq, c->queues,
					 c->active, idx, nq, &why);

	if (r < 0)
		vdk_transport_fail(c, why, r);
}

void vdk_transport_enable_queue(struct vdk_transport *c, uint16_t idx)
{
	struct vdk_virtq *q = &c->queues[idx];
	int r;

	vdk_virtq_set_ready(q, true);
	if (!c->activated || q->active)
		return;
	/* Re-enabling a queue after a queue reset while DRIVER_OK
	 * (§2.6.1.2). */
	if (!vdk_transport_negotiated(c->status, c->driver_features,
				      VIRTIO_F_RING_RESET))
		return;
	r = vdk_virtq_activate(q, c->mem, c->driver_features);
	if (r < 0) {
		vdk_transport_fail(c, "queue re-enable failed", r);
		return;
	}
	swap(c, idx, q);
}

bool vdk_transport_reset_queue(struct vdk_transport *c, uint16_t idx,
			       uint32_t val, const char *reg)
{
	bool on = vdk_transport_negotiated(c->status, c->driver_features,
					   VIRTIO_F_RING_RESET);

	if (val != 1 || !on) {
		VDK_LOG_RL(&c->rl, VDK_LOG_WARN, c->ops->mod,
			   "%s: %s %u ignored (RING_RESET %s)",
			   c->dev->ops->name, reg, val, on ? "on" : "off");
		return false;
	}
	/* Done synchronously: the register reads 0 again (reset complete)
	 * and the queue reads as not ready when this returns. */
	if (c->active[idx])
		swap(c, idx, NULL);
	else
		vdk_virtq_reset(&c->queues[idx]);
	return true;
}

void vdk_transport_set_queue_addr(struct vdk_virtq *q, unsigned int slot,
				  bool high, uint32_t val)
{
	uint64_t a[3] = {q->desc_gpa, q->driver_gpa, q->device_gpa};

	if (high)
		a[slot] = (a[slot] & 0xffffffffull) | ((uint64_t)val << 32);
	else
		a[slot] = (a[slot] & ~0xffffffffull) | val;
	(void)vdk_virtq_set_addrs(q, a[0], a[1], a[2]);
}

/* ---- sleep and wake --------------------------------------------------------- */

int vdk_transport_sleep(struct vdk_transport *c)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = c->asleep ? -EBUSY : vdk_device_sleep(c->dev);
	if (r == 0)
		c->asleep = true;
	pthread_mutex_unlock(&c->lock);
	return r;
}

int vdk_transport_wake(struct vdk_transport *c)
{
	int r;

	pthread_mutex_lock(&c->lock);
	if (!c->asleep)
		r = -EBUSY;
	else if (c->restored_active)
		r = vdk_device_wake(c->dev, c->mem, &c->irq, c->active);
	else
		r = vdk_device_wake(c->dev, NULL, NULL, NULL);
	if (r == 0) {
		c->asleep = false;
		c->restored_active = false;
		/* a restored interrupt status re-asserts the line */
		pthread_mutex_lock(&c->irq_lock);
		c->ops->wake_irq_locked(c);
		pthread_mutex_unlock(&c->irq_lock);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* ---- snapshot and restore --------------------------------------------------- */

static cbor_item_t *snapshot_queue(const struct vdk_virtq *q,
				   const uint16_t *vector)
{
	cbor_item_t *m = cbor_new_definite_map(vector ? 8 : 7);

	if (!m)
		return NULL;
	if (!vdk_snapshot_put_uint(m, "size", q->size) ||
	    !vdk_snapshot_put(m, "ready", cbor_build_bool(q->ready)) ||
	    !vdk_snapshot_put_uint(m, "desc", q->desc_gpa) ||
	    !vdk_snapshot_put_uint(m, "driver", q->driver_gpa) ||
	    !vdk_snapshot_put_uint(m, "device", q->device_gpa) ||
	    !vdk_snapshot_put_uint(m, "next_avail", vdk_virtq_next_avail(q)) ||
	    !vdk_snapshot_put_uint(m, "next_used", vdk_virtq_next_used(q)) ||
	    (vector && !vdk_snapshot_put_uint(m, "msix_vector", *vector)))
		cbor_decref(&m);
	return m;
}

cbor_item_t *vdk_transport_snapshot_queues(struct vdk_transport *c,
					   const uint16_t *vectors)
{
	cbor_item_t *queues = cbor_new_definite_array(c->num_queues);

	for (uint16_t i = 0; queues && i < c->num_queues; i++) {
		cbor_item_t *q = snapshot_queue(&c->queues[i],
						vectors ? &vectors[i] : NULL);
		bool ok = q && cbor_array_push(queues, q);

		if (q)
			cbor_decref(&q);
		if (!ok)
			cbor_decref(&queues);
	}
	return queues;
}

int vdk_transport_snapshot(struct vdk_transport *c, size_t keys,
			   int (*fill)(struct vdk_transport *c,
				       cbor_item_t *root),
			   uint8_t **buf, size_t *len)
{
	cbor_item_t *root;
	int r = -EBUSY;

	pthread_mutex_lock(&c->lock);
	if (c->asleep) {
		root = cbor_new_definite_map(keys);
		r = root ? fill(c, root) : -ENOMEM;
		if (r == 0)
			r = vdk_snapshot_serialize(root, buf, len);
		if (root)
			cbor_decref(&root);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

bool vdk_transport_snap_put_header(cbor_item_t *root, const char *format,
				   uint64_t version)
{
	return vdk_snapshot_put(root, "format", cbor_build_string(format)) &&
	       vdk_snapshot_put_uint(root, "version", version);
}

int vdk_transport_snap_header(const cbor_item_t *root, const char *format,
			      uint64_t version)
{
	uint64_t v;

	if (!cbor_isa_map(root) ||
	    !vdk_snapshot_str_eq(vdk_snapshot_map_get(root, "format"),
				 format) ||
	    !vdk_snapshot_get_uint(root, "version", UINT64_MAX, &v))
		return -EINVAL;
	return v == version ? 0 : -EPROTO;
}

int vdk_transport_parse_queues(struct vdk_transport *c, const cbor_item_t *arr,
			       bool msix, struct vdk_transport_snap_queue *out)
{
	cbor_item_t **items;

	if (!arr || !cbor_isa_array(arr) ||
	    cbor_array_size(arr) != c->num_queues)
		return -EINVAL;
	items = cbor_array_handle(arr);
	for (uint16_t i = 0; i < c->num_queues; i++) {
		const cbor_item_t *m = items[i];
		struct vdk_transport_snap_queue *q = &out[i];

		q->vector = UINT64_MAX;
		if (!vdk_snapshot_get_uint(m, "size", c->queues[i].max_size,
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
		    (msix && !vdk_snapshot_get_uint(m, "msix_vector",
						    UINT16_MAX, &q->vector)))
			return -EINVAL;
	}
	return 0;
}

bool vdk_transport_snap_state_ok(const struct vdk_transport *c, uint64_t status,
				 uint64_t driver_features, bool active)
{
	const uint64_t version_1 = 1ull << VIRTIO_F_VERSION_1;

	if ((status & ~(uint64_t)(VDK_TRANSPORT_DRIVER_STATUS_BITS |
				  VIRTIO_CONFIG_S_NEEDS_RESET)) ||
	    (driver_features & ~c->device_features))
		return false;
	if ((status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !(driver_features & version_1))
		return false;
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(status & VIRTIO_CONFIG_S_FEATURES_OK))
		return false;
	return !active || (status & VIRTIO_CONFIG_S_DRIVER_OK);
}

int vdk_transport_restore_queues(struct vdk_transport *c,
				 const struct vdk_transport_snap_queue *sq,
				 bool active, uint64_t features)
{
	int r;

	for (uint16_t i = 0; i < c->num_queues; i++) {
		struct vdk_virtq *q = &c->queues[i];

		vdk_virtq_reset(q);
		c->active[i] = NULL;
		r = vdk_virtq_set_size(q, (uint16_t)sq[i].size);
		if (r == 0)
			r = vdk_virtq_set_addrs(q, sq[i].desc, sq[i].driver,
						sq[i].device);
		if (r == 0)
			r = vdk_virtq_set_next_avail(
				q, (uint16_t)sq[i].next_avail);
		if (r == 0)
			r = vdk_virtq_set_next_used(q,
						    (uint16_t)sq[i].next_used);
		if (r < 0)
			return r;
		vdk_virtq_set_ready(q, sq[i].ready);
		if (!active || !sq[i].ready)
			continue;
		r = vdk_virtq_activate(q, c->mem, features);
		if (r < 0)
			return r;
		c->active[i] = q;
	}
	return 0;
}

void vdk_transport_restore_registers(struct vdk_transport *c, uint64_t status,
				     uint32_t device_features_sel,
				     uint32_t driver_features_sel,
				     uint64_t driver_features, bool active)
{
	c->status = (uint8_t)(status & VDK_TRANSPORT_DRIVER_STATUS_BITS);
	c->device_features_sel = device_features_sel;
	c->driver_features_sel = driver_features_sel;
	c->driver_features = driver_features;
	c->activated = active;
	c->restored_active = active;
	vdk_interrupt_init_callback(&c->irq, c->ops->irq_ops, c->opaque);
	c->irq.needs_reset = (status & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
	pthread_mutex_lock(&c->irq_lock);
	c->needs_reset = c->irq.needs_reset;
	pthread_mutex_unlock(&c->irq_lock);
}

int vdk_transport_restore(struct vdk_transport *c, const uint8_t *buf,
			  size_t len, size_t snap_size,
			  int (*parse)(struct vdk_transport *c,
				       const cbor_item_t *root, void *snap),
			  int (*apply)(struct vdk_transport *c,
				       const void *snap))
{
	cbor_item_t *root;
	void *s = calloc(1, snap_size);
	int r = -EBUSY;

	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if (c->asleep && !c->activated) {
		r = vdk_snapshot_load(buf, len, &root);
		if (r == 0) {
			r = parse(c, root, s);
			if (r == 0)
				r = apply(c, s);
			cbor_decref(&root);
		}
	}
	pthread_mutex_unlock(&c->lock);
	free(s);
	if (r < 0)
		vdk_log(VDK_LOG_WARN, c->ops->mod, "%s: restore refused (%d)",
			c->dev->ops->name, r);
	return r;
}
