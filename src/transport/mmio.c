/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio transport, device side: the version 2 register file of
 * virtio 1.2 §4.2.2 in front of one struct vdk_device.
 *
 * Sleep, wake, snapshot and restore are in mmio_snapshot.c; the state both
 * files share is in mmio_internal.h.
 *
 * Do not assume that anything the driver writes is sensible: every register
 * write is checked here (queue index < number of queues, status bits only
 * added, features a subset of the offered ones) before it reaches the
 * device or a queue.
 *
 * Locking. Two mutexes, always taken in this order:
 *   lock      register state and every call into the device framework
 *             (activate, reset, sleep, wake, queue_notify, config access).
 *             Device workers never take it.
 *   irq_lock  InterruptStatus, ConfigGeneration, DEVICE_NEEDS_RESET and the
 *             line level: the state the device's vdk_interrupt ops change.
 *             It is a leaf: held only to update those fields and to call the
 *             irq callback.
 * So a device may signal from inside any op the transport calls (a
 * synchronous queue_notify), and a worker blocked on irq_lock never holds up
 * a reset that waits for it. The irq callback runs under irq_lock and must
 * not call back into the transport. The notify callback runs with no lock
 * held.
 *
 * Interrupt line: level-triggered. The irq callback is called on every
 * change of level (InterruptStatus going 0 -> non-zero or back), never
 * twice with the same level.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mmio_internal.h"

#define MOD "mmio"

#ifndef VIRTIO_F_NOTIFICATION_DATA
#define VIRTIO_F_NOTIFICATION_DATA 38 /* virtio 1.2 §6; not in old uapi */
#endif

/* ---- interrupts (any thread) ------------------------------------------ */

void vdk_mmio_irq_update_locked(struct vdk_mmio *t)
{
	bool level = t->isr != 0;

	if (level == t->irq_level)
		return;
	t->irq_level = level;
	if (t->irq_fn)
		t->irq_fn(t->irq_opaque, level);
}

static void irq_raise(struct vdk_mmio *t, uint32_t bits, bool config_changed,
		      bool needs_reset)
{
	pthread_mutex_lock(&t->irq_lock);
	t->isr |= bits;
	if (config_changed)
		t->config_generation++;
	if (needs_reset)
		t->needs_reset = true;
	vdk_mmio_irq_update_locked(t);
	pthread_mutex_unlock(&t->irq_lock);
}

static void mmio_signal_used_queue(void *opaque, uint16_t queue)
{
	(void)queue; /* one InterruptStatus bit for all queues (§4.2.2) */
	irq_raise(opaque, VIRTIO_MMIO_INT_VRING, false, false);
}

static void mmio_signal_config_changed(void *opaque)
{
	irq_raise(opaque, VIRTIO_MMIO_INT_CONFIG, true, false);
}

static void mmio_set_needs_reset(void *opaque)
{
	/* virtio 1.2 §2.1.2: DEVICE_NEEDS_RESET plus a configuration change
	 * notification. */
	irq_raise(opaque, VIRTIO_MMIO_INT_CONFIG, false, true);
}

const struct vdk_interrupt_ops vdk_mmio_irq_ops = {
	.signal_used_queue = mmio_signal_used_queue,
	.signal_config_changed = mmio_signal_config_changed,
	.set_needs_reset = mmio_set_needs_reset,
};

/* ---- helpers (lock held) ---------------------------------------------- */

static bool negotiated(const struct vdk_mmio *t, unsigned int bit)
{
	return (t->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	       (t->driver_features & (1ull << bit));
}

/* The queue QueueSel selects, or NULL (reads 0, writes ignored). */
static struct vdk_virtq *selected_queue(struct vdk_mmio *t)
{
	if (t->queue_sel >= t->num_queues)
		return NULL;
	return &t->queues[t->queue_sel];
}

uint8_t vdk_mmio_status_locked(struct vdk_mmio *t)
{
	uint8_t s = t->status;

	pthread_mutex_lock(&t->irq_lock);
	if (t->needs_reset)
		s |= VIRTIO_CONFIG_S_NEEDS_RESET;
	pthread_mutex_unlock(&t->irq_lock);
	return s;
}

static void fail_device(struct vdk_mmio *t, const char *why, int err)
{
	vdk_log(VDK_LOG_ERROR, MOD, "%s: %s (%d); DEVICE_NEEDS_RESET",
		t->dev->ops->name, why, err);
	mmio_set_needs_reset(t);
}

/*
 * Start or stop one queue of a running device while its others run
 * (QueueReset, and re-enabling after it; virtio 1.2 §2.6.1): queue @idx
 * becomes @nq (NULL: stop and reset it). A device without per-queue ops is
 * put to sleep and woken with the new set of queues instead.
 */
static void swap_queue(struct vdk_mmio *t, uint16_t idx, struct vdk_virtq *nq)
{
	const char *why;
	int r = vdk_transport_swap_queue(t->dev, t->mem, &t->irq, t->queues,
					 t->active, idx, nq, &why);

	if (r < 0)
		fail_device(t, why, r);
}

/* ---- device status (virtio 1.2 §2.1, §3.1.1) -------------------------- */

void vdk_mmio_reset_queues(struct vdk_mmio *t)
{
	for (uint16_t i = 0; i < t->num_queues; i++) {
		vdk_virtq_reset(&t->queues[i]);
		t->active[i] = NULL;
	}
}

/* Writing 0 to Status: virtio 1.2 §2.4 device reset. */
static void device_reset(void *opaque)
{
	struct vdk_mmio *t = opaque;
	int r = vdk_transport_reset_device(t->dev, t->queues, t->num_queues,
					   t->active);

	if (r < 0) {
		/* The device may still be using the queues: leave them, and
		 * tell the driver the reset did not complete. */
		fail_device(t, "device reset failed", r);
		return;
	}
	t->status = 0;
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->driver_features = 0;
	t->queue_sel = 0;
	t->shm_sel = 0;
	t->activated = false;
	vdk_interrupt_init_callback(&t->irq, &vdk_mmio_irq_ops, t);

	pthread_mutex_lock(&t->irq_lock);
	t->isr = 0;
	t->needs_reset = false;
	vdk_mmio_irq_update_locked(t); /* config_generation is kept */
	pthread_mutex_unlock(&t->irq_lock);
}

/* FEATURES_OK: virtio 1.2 §3.1.1 step 5, §6.1 (VERSION_1 is mandatory). */
static bool features_acceptable(void *opaque)
{
	struct vdk_mmio *t = opaque;

	return vdk_transport_features_ok(t->dev, t->device_features,
					 t->driver_features, &t->rl, MOD);
}

/* DRIVER_OK: activate every ready queue, then the device (§3.1.1 step 8). */
static void driver_ok(void *opaque)
{
	struct vdk_mmio *t = opaque;
	const char *why;
	int r = vdk_transport_activate(t->dev, t->mem, &t->irq, t->queues,
				       t->num_queues, t->active,
				       t->driver_features, &why);

	if (r < 0) {
		fail_device(t, why, r);
		return;
	}
	t->activated = true;
}

static const struct vdk_transport_status_hooks status_hooks = {
	.reset = device_reset,
	.features_ok = features_acceptable,
	.driver_ok = driver_ok,
};

static void write_status(struct vdk_mmio *t, uint32_t val)
{
	bool needs_reset =
		vdk_mmio_status_locked(t) & VIRTIO_CONFIG_S_NEEDS_RESET;

	vdk_transport_write_status(&t->status, val, needs_reset, &status_hooks,
				   t, &t->rl, MOD, t->dev->ops->name);
}

/* ---- queue registers (virtio 1.2 §4.2.2, §4.2.3.2) -------------------- */

static void write_queue_ready(struct vdk_mmio *t, struct vdk_virtq *q,
			      uint32_t val)
{
	uint16_t idx = (uint16_t)t->queue_sel;
	int r;

	if (val > 1 || (t->active[idx] && val == 0)) {
		/* Stopping a running queue takes QueueReset (§2.6.1). */
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: QueueReady %u for queue %u ignored",
			   t->dev->ops->name, val, idx);
		return;
	}
	vdk_virtq_set_ready(q, val == 1);
	if (val == 0 || !t->activated || q->active)
		return;
	/* Re-enabling a queue after QueueReset while DRIVER_OK (§2.6.1.2). */
	if (!negotiated(t, VIRTIO_F_RING_RESET))
		return;
	r = vdk_virtq_activate(q, t->mem, t->driver_features);
	if (r < 0) {
		fail_device(t, "queue re-enable failed", r);
		return;
	}
	swap_queue(t, idx, q);
}

static void write_queue_reset(struct vdk_mmio *t, struct vdk_virtq *q,
			      uint32_t val)
{
	uint16_t idx = (uint16_t)t->queue_sel;

	if (val != 1 || !negotiated(t, VIRTIO_F_RING_RESET)) {
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: QueueReset %u ignored (RING_RESET %s)",
			   t->dev->ops->name, val,
			   negotiated(t, VIRTIO_F_RING_RESET) ? "on" : "off");
		return;
	}
	/* Done synchronously: QueueReset reads 0 again (reset complete) and
	 * QueueReady reads 0 when this returns (§4.2.2.2). */
	if (t->active[idx])
		swap_queue(t, idx, NULL);
	else
		vdk_virtq_reset(q);
}

/* Queue{Desc,Driver,Device}{Low,High}: @slot 0..2, @high for bits 32..63. */
static void write_queue_addr(struct vdk_mmio *t, struct vdk_virtq *q,
			     unsigned int slot, bool high, uint32_t val)
{
	uint64_t a[3] = {q->desc_gpa, q->driver_gpa, q->device_gpa};

	if (q->ready) {
		/* §4.2.2.3: not while QueueReady is 1. */
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: queue %u address write while ready ignored",
			   t->dev->ops->name, t->queue_sel);
		return;
	}
	if (high)
		a[slot] = (a[slot] & 0xffffffffull) | ((uint64_t)val << 32);
	else
		a[slot] = (a[slot] & ~0xffffffffull) | val;
	(void)vdk_virtq_set_addrs(q, a[0], a[1], a[2]);
}

static void write_queue_num(struct vdk_mmio *t, struct vdk_virtq *q,
			    uint32_t val)
{
	if (q->ready || val > UINT16_MAX ||
	    vdk_virtq_set_size(q, (uint16_t)val) < 0)
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: QueueNum %u for queue %u refused",
			   t->dev->ops->name, val, t->queue_sel);
}

/* QueueNotify: the queue index, plus more with NOTIFICATION_DATA (§4.2.3.3).
 * Return: the index to notify, or -1 to ignore. */
static int notify_index(struct vdk_mmio *t, uint32_t val)
{
	if (negotiated(t, VIRTIO_F_NOTIFICATION_DATA))
		val &= 0xffff;
	if (val >= t->num_queues) {
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: QueueNotify for queue %u of %u ignored",
			   t->dev->ops->name, val, t->num_queues);
		return -1;
	}
	return (int)val;
}

/* ---- register file ---------------------------------------------------- */

static uint32_t read_reg(struct vdk_mmio *t, uint64_t off)
{
	struct vdk_virtq *q = selected_queue(t);
	uint32_t v = 0;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return 0x74726976; /* "virt" */
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->dev->ops->device_type;
	case VIRTIO_MMIO_VENDOR_ID:
		return t->vendor_id;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->device_features_sel > 1)
			return 0;
		return (uint32_t)(t->device_features >>
				  (32 * t->device_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? q->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		pthread_mutex_lock(&t->irq_lock);
		v = t->isr;
		pthread_mutex_unlock(&t->irq_lock);
		/* Used buffer notifications that bypass us (an irqfd the
		 * device's back-end writes): any interrupt may be one. */
		if (t->direct_used && t->activated)
			v |= VIRTIO_MMIO_INT_VRING;
		return v;
	case VIRTIO_MMIO_STATUS:
		return vdk_mmio_status_locked(t);
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		/* No shared memory regions: every SHMSel names a
		 * non-existent one, whose length and base read as -1. */
		return 0xffffffff;
	case VIRTIO_MMIO_QUEUE_RESET:
		return 0; /* resets complete synchronously */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		pthread_mutex_lock(&t->irq_lock);
		v = t->config_generation;
		pthread_mutex_unlock(&t->irq_lock);
		return v;
	case VIRTIO_MMIO_GUEST_PAGE_SIZE: /* legacy (version 1) registers */
	case VIRTIO_MMIO_QUEUE_ALIGN:
	case VIRTIO_MMIO_QUEUE_PFN:
		return 0;
	default:
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: read of write-only or unknown register %#llx",
			   t->dev->ops->name, (unsigned long long)off);
		return 0;
	}
}

/* Return: a queue index to notify once the lock is dropped, or -1. */
static int write_reg(struct vdk_mmio *t, uint64_t off, uint32_t val)
{
	struct vdk_virtq *q = selected_queue(t);
	uint32_t st = t->status;
	unsigned int shift;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = val;
		return -1;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (!(st & VIRTIO_CONFIG_S_DRIVER) ||
		    (st & VIRTIO_CONFIG_S_FEATURES_OK) ||
		    t->driver_features_sel > 1) {
			VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
				   "%s: DriverFeatures write ignored "
				   "(status %#x, sel %u)",
				   t->dev->ops->name, st,
				   t->driver_features_sel);
			return -1;
		}
		shift = 32 * t->driver_features_sel;
		t->driver_features &= ~(0xffffffffull << shift);
		t->driver_features |= (uint64_t)val << shift;
		return -1;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = val;
		return -1;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = val;
		return -1;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		return notify_index(t, val);
	case VIRTIO_MMIO_INTERRUPT_ACK:
		pthread_mutex_lock(&t->irq_lock);
		t->isr &= ~val;
		vdk_mmio_irq_update_locked(t);
		pthread_mutex_unlock(&t->irq_lock);
		return -1;
	case VIRTIO_MMIO_STATUS:
		write_status(t, val);
		return -1;
	case VIRTIO_MMIO_SHM_SEL:
		t->shm_sel = val;
		return -1;
	case VIRTIO_MMIO_GUEST_PAGE_SIZE: /* legacy (version 1) registers */
	case VIRTIO_MMIO_QUEUE_ALIGN:
	case VIRTIO_MMIO_QUEUE_PFN:
		return -1;
	default:
		break;
	}

	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_RESET:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		if (!q) {
			VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
				   "%s: write to %#llx for queue %u of %u "
				   "ignored",
				   t->dev->ops->name, (unsigned long long)off,
				   t->queue_sel, t->num_queues);
			return -1;
		}
		break;
	default:
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: write to read-only or unknown register %#llx",
			   t->dev->ops->name, (unsigned long long)off);
		return -1;
	}

	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		write_queue_num(t, q, val);
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		write_queue_ready(t, q, val);
		break;
	case VIRTIO_MMIO_QUEUE_RESET:
		write_queue_reset(t, q, val);
		break;
	default:
		/* 0x080/0x090/0x0a0 + 4 for the high half */
		write_queue_addr(t, q, (unsigned int)((off - 0x80) >> 4),
				 (off & 4) != 0, val);
		break;
	}
	return -1;
}

/* Accesses outside the configuration space must be aligned 32-bit
 * (virtio 1.2 §4.2.2.2); log the others (rate-limited). */
static bool reg_access_ok(struct vdk_mmio *t, uint64_t offset, size_t len,
			  const char *what)
{
	if (len == 4 && (offset & 3) == 0)
		return true;
	VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
		   "%s: %zu-byte %s at %#llx is not an aligned 32-bit "
		   "register access; ignored",
		   t->dev->ops->name, len, what, (unsigned long long)offset);
	return false;
}

static bool config_access_ok(uint64_t offset, size_t len, uint32_t *coff)
{
	uint64_t c = offset - VDK_MMIO_CONFIG_OFFSET;

	if (len != 1 && len != 2 && len != 4 && len != 8)
		return false;
	if (c > UINT32_MAX - 8)
		return false;
	*coff = (uint32_t)c;
	return true;
}

void vdk_mmio_read(struct vdk_mmio *t, uint64_t offset, void *data, size_t len)
{
	uint32_t coff, v;

	if (!t || !data || !len)
		return;
	memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (t->asleep) {
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: read at %#llx while asleep ignored",
			   t->dev->ops->name, (unsigned long long)offset);
	} else if (offset >= VDK_MMIO_CONFIG_OFFSET) {
		/* §4.2.2: device-specific configuration, any width */
		if (!config_access_ok(offset, len, &coff) ||
		    vdk_device_read_config(t->dev, coff, data, (uint32_t)len) <
			    0) {
			memset(data, 0, len);
			VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
				   "%s: config read of %zu bytes at %#llx "
				   "out of range",
				   t->dev->ops->name, len,
				   (unsigned long long)offset);
		}
	} else if (reg_access_ok(t, offset, len, "read")) {
		v = htole32(read_reg(t, offset));
		memcpy(data, &v, sizeof(v));
	}
	pthread_mutex_unlock(&t->lock);
}

void vdk_mmio_write(struct vdk_mmio *t, uint64_t offset, const void *data,
		    size_t len)
{
	uint32_t coff, v;
	int notify = -1;

	if (!t || !data || !len)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->asleep) {
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: write at %#llx while asleep ignored",
			   t->dev->ops->name, (unsigned long long)offset);
	} else if (offset >= VDK_MMIO_CONFIG_OFFSET) {
		if (!config_access_ok(offset, len, &coff) ||
		    vdk_device_write_config(t->dev, coff, data, (uint32_t)len) <
			    0)
			VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
				   "%s: config write of %zu bytes at %#llx "
				   "out of range",
				   t->dev->ops->name, len,
				   (unsigned long long)offset);
	} else if (reg_access_ok(t, offset, len, "write")) {
		memcpy(&v, data, sizeof(v));
		notify = write_reg(t, offset, le32toh(v));
	}
	/* Without a notify callback, queue_notify runs under the lock so it
	 * cannot race a reset; it may signal (irq_lock only). */
	if (notify >= 0 && !t->notify)
		vdk_device_queue_notify(t->dev, (uint16_t)notify);
	pthread_mutex_unlock(&t->lock);
	if (notify >= 0 && t->notify)
		t->notify(t->notify_opaque, (uint16_t)notify);
}

void vdk_mmio_notify(struct vdk_mmio *t, uint16_t queue)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	/* Under the lock, so that it cannot race a reset or QueueReset from
	 * a vCPU (virtio 1.2 §4.2.2, QueueNotify). */
	if (t->asleep)
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: notify of queue %u while asleep ignored",
			   t->dev->ops->name, queue);
	else if (queue >= t->num_queues)
		VDK_LOG_RL(&t->rl, VDK_LOG_WARN, MOD,
			   "%s: notify of queue %u of %u ignored",
			   t->dev->ops->name, queue, t->num_queues);
	else
		vdk_device_queue_notify(t->dev, queue);
	pthread_mutex_unlock(&t->lock);
}

static void bus_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		     size_t len)
{
	(void)base;
	vdk_mmio_read(opaque, offset, data, len);
}

static void bus_write(void *opaque, uint64_t base, uint64_t offset,
		      const void *data, size_t len)
{
	(void)base;
	vdk_mmio_write(opaque, offset, data, len);
}

const struct vdk_bus_device_ops vdk_mmio_bus_ops = {
	.read = bus_read,
	.write = bus_write,
};

int vdk_mmio_register(struct vdk_mmio *t, struct vdk_bus *bus, uint64_t base)
{
	struct vdk_bus_range range = {.base = base,
				      .size = VDK_MMIO_WINDOW_SIZE};
	struct vdk_bus_device dev = {.ops = &vdk_mmio_bus_ops, .opaque = t};

	if (!t || !bus)
		return -EINVAL;
	return vdk_bus_register(bus, range, dev);
}

/* ---- lifecycle -------------------------------------------------------- */

struct vdk_mmio *vdk_mmio_new(const struct vdk_mmio_config *cfg, int *err)
{
	struct vdk_mmio *t = NULL;
	struct vdk_ratelimit rl = VDK_RATELIMIT_INIT;
	struct vdk_device *dev;
	int r = -EINVAL;

	if (!cfg || !cfg->device || !cfg->mem || !cfg->device->ops)
		goto out;
	dev = cfg->device;
	if (dev->num_queues == 0 || dev->num_queues > VDK_DEVICE_MAX_QUEUES)
		goto out;
	r = -ENOMEM;
	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->queues = calloc(dev->num_queues, sizeof(*t->queues));
	if (!t->queues)
		goto out;
	r = -EINVAL;
	for (uint16_t i = 0; i < dev->num_queues; i++)
		if (vdk_virtq_init(&t->queues[i],
				   dev->ops->queue_max_size(dev->impl, i),
				   i) < 0)
			goto out;
	t->dev = dev;
	t->mem = cfg->mem;
	t->num_queues = dev->num_queues;
	t->notify = cfg->notify;
	t->notify_opaque = cfg->notify_opaque;
	t->irq_fn = cfg->irq;
	t->irq_opaque = cfg->irq_opaque;
	t->vendor_id = cfg->vendor_id ? cfg->vendor_id : VDK_MMIO_VENDOR_ID;
	t->device_features = dev->ops->features(dev->impl);
	t->rl = rl;
	vdk_interrupt_init_callback(&t->irq, &vdk_mmio_irq_ops, t);
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->irq_lock, NULL);
	r = 0;
out:
	if (err)
		*err = r;
	if (r < 0 && t) {
		free(t->queues);
		free(t);
		t = NULL;
	}
	return t;
}

void vdk_mmio_free(struct vdk_mmio *t)
{
	if (!t)
		return;
	if (t->asleep)
		(void)vdk_mmio_wake(t);
	pthread_mutex_lock(&t->lock);
	if (t->activated && vdk_device_reset(t->dev) < 0)
		vdk_log(VDK_LOG_ERROR, MOD, "%s: reset on free failed",
			t->dev->ops->name);
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->irq_lock);
	free(t->queues);
	free(t);
}

uint8_t vdk_mmio_status(struct vdk_mmio *t)
{
	uint8_t s;

	pthread_mutex_lock(&t->lock);
	s = vdk_mmio_status_locked(t);
	pthread_mutex_unlock(&t->lock);
	return s;
}

void vdk_mmio_set_direct_used_notify(struct vdk_mmio *t, bool on)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->direct_used = on;
	pthread_mutex_unlock(&t->lock);
}

uint32_t vdk_mmio_interrupt_status(struct vdk_mmio *t)
{
	uint32_t v;

	pthread_mutex_lock(&t->irq_lock);
	v = t->isr;
	pthread_mutex_unlock(&t->irq_lock);
	return v;
}

struct vdk_virtq *vdk_mmio_queue(struct vdk_mmio *t, uint16_t index)
{
	if (!t || index >= t->num_queues)
		return NULL;
	return &t->queues[index];
}
