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
	pthread_mutex_lock(&t->c.irq_lock);
	t->isr |= bits;
	if (config_changed)
		t->config_generation++;
	if (needs_reset)
		t->c.needs_reset = true;
	vdk_mmio_irq_update_locked(t);
	pthread_mutex_unlock(&t->c.irq_lock);
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
	return vdk_transport_negotiated(t->c.status, t->c.driver_features, bit);
}

/* The queue QueueSel selects, or NULL (reads 0, writes ignored). */
static struct vdk_virtq *selected_queue(struct vdk_mmio *t)
{
	if (t->queue_sel >= t->c.num_queues)
		return NULL;
	return &t->c.queues[t->queue_sel];
}

/* After a device reset (virtio 1.2 §2.4), irq_lock held: the registers
 * only virtio-mmio has, and the line down. */
static void reset_locked(struct vdk_transport *c)
{
	struct vdk_mmio *t = c->opaque;

	t->queue_sel = 0;
	t->shm_sel = 0;
	t->isr = 0;
	vdk_mmio_irq_update_locked(t);
}

/* On wake, irq_lock held: a restored InterruptStatus re-asserts the line. */
static void wake_irq_locked(struct vdk_transport *c)
{
	vdk_mmio_irq_update_locked(c->opaque);
}

static const struct vdk_transport_ops transport_ops = {
	.reset_locked = reset_locked,
	.wake_irq_locked = wake_irq_locked,
	.irq_ops = &vdk_mmio_irq_ops,
	.mod = MOD,
};

/* ---- queue registers (virtio 1.2 §4.2.2, §4.2.3.2) -------------------- */

static void write_queue_ready(struct vdk_mmio *t, struct vdk_virtq *q,
			      uint32_t val)
{
	uint16_t idx = (uint16_t)t->queue_sel;

	if (val > 1 || (t->c.active[idx] && val == 0)) {
		/* Stopping a running queue takes QueueReset (§2.6.1). */
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: QueueReady %u for queue %u ignored",
			   t->c.dev->ops->name, val, idx);
		return;
	}
	if (val == 0)
		vdk_virtq_set_ready(q, false);
	else
		vdk_transport_enable_queue(&t->c, idx);
}

/* Queue{Desc,Driver,Device}{Low,High}: @slot 0..2, @high for bits 32..63. */
static void write_queue_addr(struct vdk_mmio *t, struct vdk_virtq *q,
			     unsigned int slot, bool high, uint32_t val)
{
	if (q->ready) {
		/* §4.2.2.3: not while QueueReady is 1. */
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: queue %u address write while ready ignored",
			   t->c.dev->ops->name, t->queue_sel);
		return;
	}
	vdk_transport_set_queue_addr(q, slot, high, val);
}

static void write_queue_num(struct vdk_mmio *t, struct vdk_virtq *q,
			    uint32_t val)
{
	if (q->ready || val > UINT16_MAX ||
	    vdk_virtq_set_size(q, (uint16_t)val) < 0)
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: QueueNum %u for queue %u refused",
			   t->c.dev->ops->name, val, t->queue_sel);
}

/* QueueNotify: the queue index, plus more with NOTIFICATION_DATA (§4.2.3.3).
 * Return: the index to notify, or -1 to ignore. */
static int notify_index(struct vdk_mmio *t, uint32_t val)
{
	if (negotiated(t, VIRTIO_F_NOTIFICATION_DATA))
		val &= 0xffff;
	if (val >= t->c.num_queues) {
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: QueueNotify for queue %u of %u ignored",
			   t->c.dev->ops->name, val, t->c.num_queues);
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
		return t->c.dev->ops->device_type;
	case VIRTIO_MMIO_VENDOR_ID:
		return t->vendor_id;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return vdk_transport_features_word(t->c.device_features,
						   t->c.device_features_sel);
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? q->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		pthread_mutex_lock(&t->c.irq_lock);
		v = t->isr;
		pthread_mutex_unlock(&t->c.irq_lock);
		/* Used buffer notifications that bypass us (an irqfd the
		 * device's back-end writes): any interrupt may be one. */
		if (t->direct_used && t->c.activated)
			v |= VIRTIO_MMIO_INT_VRING;
		return v;
	case VIRTIO_MMIO_STATUS:
		return vdk_transport_status_locked(&t->c);
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
		pthread_mutex_lock(&t->c.irq_lock);
		v = t->config_generation;
		pthread_mutex_unlock(&t->c.irq_lock);
		return v;
	case VIRTIO_MMIO_GUEST_PAGE_SIZE: /* legacy (version 1) registers */
	case VIRTIO_MMIO_QUEUE_ALIGN:
	case VIRTIO_MMIO_QUEUE_PFN:
		return 0;
	default:
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: read of write-only or unknown register %#llx",
			   t->c.dev->ops->name, (unsigned long long)off);
		return 0;
	}
}

/* Return: a queue index to notify once the lock is dropped, or -1. */
static int write_reg(struct vdk_mmio *t, uint64_t off, uint32_t val)
{
	struct vdk_virtq *q = selected_queue(t);

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->c.device_features_sel = val;
		return -1;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		vdk_transport_write_driver_features(&t->c, val,
						    "DriverFeatures");
		return -1;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->c.driver_features_sel = val;
		return -1;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = val;
		return -1;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		return notify_index(t, val);
	case VIRTIO_MMIO_INTERRUPT_ACK:
		pthread_mutex_lock(&t->c.irq_lock);
		t->isr &= ~val;
		vdk_mmio_irq_update_locked(t);
		pthread_mutex_unlock(&t->c.irq_lock);
		return -1;
	case VIRTIO_MMIO_STATUS:
		vdk_transport_set_status(&t->c, val);
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
			VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
				   "%s: write to %#llx for queue %u of %u "
				   "ignored",
				   t->c.dev->ops->name, (unsigned long long)off,
				   t->queue_sel, t->c.num_queues);
			return -1;
		}
		break;
	default:
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: write to read-only or unknown register %#llx",
			   t->c.dev->ops->name, (unsigned long long)off);
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
		/* QueueReset reads 0 again (reset complete) and QueueReady
		 * reads 0 when this returns (§4.2.2.2). */
		(void)vdk_transport_reset_queue(&t->c, (uint16_t)t->queue_sel,
						val, "QueueReset");
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
	VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
		   "%s: %zu-byte %s at %#llx is not an aligned 32-bit "
		   "register access; ignored",
		   t->c.dev->ops->name, len, what, (unsigned long long)offset);
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
	pthread_mutex_lock(&t->c.lock);
	if (t->c.asleep) {
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: read at %#llx while asleep ignored",
			   t->c.dev->ops->name, (unsigned long long)offset);
	} else if (offset >= VDK_MMIO_CONFIG_OFFSET) {
		/* §4.2.2: device-specific configuration, any width */
		if (!config_access_ok(offset, len, &coff) ||
		    vdk_device_read_config(t->c.dev, coff, data,
					   (uint32_t)len) < 0) {
			memset(data, 0, len);
			VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
				   "%s: config read of %zu bytes at %#llx "
				   "out of range",
				   t->c.dev->ops->name, len,
				   (unsigned long long)offset);
		}
	} else if (reg_access_ok(t, offset, len, "read")) {
		v = htole32(read_reg(t, offset));
		memcpy(data, &v, sizeof(v));
	}
	pthread_mutex_unlock(&t->c.lock);
}

void vdk_mmio_write(struct vdk_mmio *t, uint64_t offset, const void *data,
		    size_t len)
{
	uint32_t coff, v;
	int notify = -1;

	if (!t || !data || !len)
		return;
	pthread_mutex_lock(&t->c.lock);
	if (t->c.asleep) {
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: write at %#llx while asleep ignored",
			   t->c.dev->ops->name, (unsigned long long)offset);
	} else if (offset >= VDK_MMIO_CONFIG_OFFSET) {
		if (!config_access_ok(offset, len, &coff) ||
		    vdk_device_write_config(t->c.dev, coff, data,
					    (uint32_t)len) < 0)
			VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
				   "%s: config write of %zu bytes at %#llx "
				   "out of range",
				   t->c.dev->ops->name, len,
				   (unsigned long long)offset);
	} else if (reg_access_ok(t, offset, len, "write")) {
		memcpy(&v, data, sizeof(v));
		notify = write_reg(t, offset, le32toh(v));
	}
	/* Without a notify callback, queue_notify runs under the lock so it
	 * cannot race a reset; it may signal (irq_lock only). */
	if (notify >= 0 && !t->notify)
		vdk_device_queue_notify(t->c.dev, (uint16_t)notify);
	pthread_mutex_unlock(&t->c.lock);
	if (notify >= 0 && t->notify)
		t->notify(t->notify_opaque, (uint16_t)notify);
}

void vdk_mmio_notify(struct vdk_mmio *t, uint16_t queue)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->c.lock);
	/* Under the lock, so that it cannot race a reset or QueueReset from
	 * a vCPU (virtio 1.2 §4.2.2, QueueNotify). */
	if (t->c.asleep)
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: notify of queue %u while asleep ignored",
			   t->c.dev->ops->name, queue);
	else if (queue >= t->c.num_queues)
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: notify of queue %u of %u ignored",
			   t->c.dev->ops->name, queue, t->c.num_queues);
	else
		vdk_device_queue_notify(t->c.dev, queue);
	pthread_mutex_unlock(&t->c.lock);
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
	int r = -EINVAL;

	if (!cfg || !cfg->device || !cfg->mem || !cfg->device->ops)
		goto out;
	r = -ENOMEM;
	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	r = vdk_transport_init(&t->c, &transport_ops, t, cfg->device, cfg->mem);
	if (r < 0) {
		free(t);
		t = NULL;
		goto out;
	}
	t->notify = cfg->notify;
	t->notify_opaque = cfg->notify_opaque;
	t->irq_fn = cfg->irq;
	t->irq_opaque = cfg->irq_opaque;
	t->vendor_id = cfg->vendor_id ? cfg->vendor_id : VDK_MMIO_VENDOR_ID;
out:
	if (err)
		*err = r;
	return t;
}

void vdk_mmio_free(struct vdk_mmio *t)
{
	if (!t)
		return;
	vdk_transport_fini(&t->c);
	free(t);
}

uint8_t vdk_mmio_status(struct vdk_mmio *t)
{
	return vdk_transport_status(&t->c);
}

void vdk_mmio_set_direct_used_notify(struct vdk_mmio *t, bool on)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->c.lock);
	t->direct_used = on;
	pthread_mutex_unlock(&t->c.lock);
}

uint32_t vdk_mmio_interrupt_status(struct vdk_mmio *t)
{
	uint32_t v;

	pthread_mutex_lock(&t->c.irq_lock);
	v = t->isr;
	pthread_mutex_unlock(&t->c.irq_lock);
	return v;
}

struct vdk_virtq *vdk_mmio_queue(struct vdk_mmio *t, uint16_t index)
{
	return t ? vdk_transport_queue(&t->c, index) : NULL;
}
