// SPDX-License-Identifier: Apache-2.0
/*
 * The device adapter: how a vhost-user connection drives a struct
 * vdk_device (device.h) — the library's private backend interface
 * (backend_ops.h) implemented once over the one device interface.
 * Semantics of crosvm's VhostUserDevice wrapper around a VirtioDevice.
 *
 * Each ring runs on its own (vhost-user spec "Ring states": a ring is
 * processed once it is started and enabled, whatever the other rings do),
 * and a driver may use fewer queues than the device has (SeaBIOS drives
 * queue 0 of a multi-queue disk, Linux uses min(num-queues, vCPUs)). So:
 *   - the first ring to start activates the device with the acked
 *     features and that queue alone (the others NULL);
 *   - another ring starting or stopping while others run is
 *     vdk_device_start_queue() / vdk_device_stop_queue() (virtio 1.2
 *     §2.6.1 semantics);
 *   - when the last ring stops the device is suspended (spec "Suspended
 *     device state"): asleep, keeping its driver-visible state and no
 *     pointer to the memory map (ad_suspend()); the next ring to start
 *     wakes it with that queue and the map of that time;
 *   - a device without per-queue ops is put to sleep and woken with the
 *     new set of queues whenever a ring starts or stops;
 *   - SET_FEATURES that changes the features of an activated device means
 *     a new driver (the firmware's first, then the OS's): the device is
 *     reset, and activated with the new features when a ring starts.
 * A kick is vdk_device_queue_notify(); snapshot/restore go through the
 * device framework's CBOR envelope.
 *
 * The adapter only sees what the connection hands it (queues, memory, the
 * interrupt); it never reads a front-end message itself. Invariant kept by
 * every op: a device that is not ACTIVE is awake.
 */
#include <errno.h>
#include <string.h>

#include "../device_internal.h"
#include "internal.h"

#define AD_LOG "vhost-user-adapter"

static struct vdk_vhost_user_device_adapter *to_ad(void *be)
{
	return be;
}

static const char *ad_name(const struct vdk_vhost_user_device_adapter *ad)
{
	return ad->ops.name ? ad->ops.name : "device";
}

static uint16_t ad_num_queues(void *be)
{
	return to_ad(be)->num_queues;
}

static uint16_t ad_queue_max_size(void *be, uint16_t index)
{
	struct vdk_device *dev = to_ad(be)->dev;

	return dev->ops->queue_max_size(dev->impl, index);
}

static uint64_t ad_features(void *be)
{
	struct vdk_device *dev = to_ad(be)->dev;

	return dev->ops->features(dev->impl);
}

/*
 * Run the device with the queues started now (at least one): activate it
 * with the acked features, or, if it is active, wake it with this set of
 * queues and memory (after putting it to sleep if it runs).
 */
static int ad_run(struct vdk_vhost_user_device_adapter *ad)
{
	struct vdk_device *dev = ad->dev;
	int ret = 0;

	if (dev->state == VDK_DEVICE_ACTIVE) {
		if (!dev->asleep)
			ret = vdk_device_sleep(dev);
		if (ret == 0)
			ret = vdk_device_wake(dev, ad->mem, ad->irq,
					      ad->queues);
	} else {
		ret = vdk_device_ack_features(dev, ad->features);
		if (ret == 0)
			ret = vdk_device_activate(dev, ad->mem, ad->irq,
						  ad->queues);
	}
	if (ret < 0)
		return ret;
	ad->dev_mem = ad->mem;
	/* Buffers may have been made available while the queue was away. */
	for (uint16_t i = 0; i < ad->num_queues; i++)
		if (ad->queues[i])
			vdk_device_queue_notify(dev, i);
	return 0;
}

/* True if ring @index can start on its own (the per-queue path). */
static bool ad_per_queue(const struct vdk_vhost_user_device_adapter *ad)
{
	const struct vdk_device *dev = ad->dev;

	return dev->state == VDK_DEVICE_ACTIVE && !dev->asleep &&
	       dev->ops->start_queue && dev->ops->stop_queue &&
	       ad->mem == ad->dev_mem;
}

/* Bring the device to RESET from any state: it forgets the driver. */
static int ad_device_reset(struct vdk_vhost_user_device_adapter *ad)
{
	struct vdk_device *dev = ad->dev;
	struct vdk_virtq *none[VDK_DEVICE_MAX_QUEUES] = {0};
	int ret = 0;

	/* A sleeping device cannot be reset: wake it with no queues first
	 * (only an ACTIVE device sleeps between ops). With every ring
	 * stopped it holds no memory map (ad_stop_queue()): an empty one
	 * stands in, as no queue is given. */
	if (dev->asleep) {
		struct vdk_mem *empty = ad->mem ? NULL : vdk_mem_new(&ret);

		if (ad->mem || empty)
			ret = vdk_device_wake(dev, ad->mem ? ad->mem : empty,
					      ad->irq, none);
		if (ret == 0)
			ret = vdk_device_reset(dev);
		vdk_mem_free(empty); /* the reset device dropped it */
		return ret;
	}
	return vdk_device_reset(dev);
}

static void ad_ack_features(void *be, uint64_t features)
{
	struct vdk_vhost_user_device_adapter *ad = to_ad(be);
	struct vdk_device *dev = ad->dev;
	int ret;

	ad->features = features; /* given to the device when it activates */
	if (dev->state != VDK_DEVICE_ACTIVE || features == dev->acked_features)
		return;
	/* Features change only while every ring is stopped (the connection
	 * refuses it otherwise): a new driver took over the device. */
	vdk_log(VDK_LOG_INFO, AD_LOG,
		"%s: features 0x%llx replace 0x%llx: device reset for the new "
		"driver",
		ad_name(ad), (unsigned long long)features,
		(unsigned long long)dev->acked_features);
	ret = ad_device_reset(ad);
	if (ret == 0 && ad->num_started)
		ret = ad_run(ad);
	if (ret < 0)
		vdk_log(VDK_LOG_ERROR, AD_LOG, "%s: reset for new features: %s",
			ad_name(ad), strerror(-ret));
}

static int ad_read_config(void *be, uint32_t offset, void *data, uint32_t len)
{
	return vdk_device_read_config(to_ad(be)->dev, offset, data, len);
}

static int ad_write_config(void *be, uint32_t offset, const void *data,
			   uint32_t len)
{
	return vdk_device_write_config(to_ad(be)->dev, offset, data, len);
}

static int ad_start_queue(void *be, uint16_t index, struct vdk_virtq *q,
			  const struct vdk_mem *mem, struct vdk_interrupt *irq)
{
	struct vdk_vhost_user_device_adapter *ad = to_ad(be);
	struct vdk_device *dev = ad->dev;
	int ret;

	if (ad->queues[index])
		return -EBUSY;
	ad->mem = mem;
	ad->irq = irq;
	if (ad_per_queue(ad)) {
		ret = vdk_device_start_queue(dev, index, q);
		if (ret == 0) {
			ad->queues[index] = q;
			ad->num_started++;
		}
		return ret;
	}
	ad->queues[index] = q;
	ad->num_started++;
	ret = ad_run(ad);
	if (ret < 0) {
		ad->queues[index] = NULL;
		ad->num_started--;
		/* The other rings go on with the queues they had. */
		if (ad->num_started && dev->state == VDK_DEVICE_ACTIVE &&
		    dev->asleep)
			(void)vdk_device_wake(dev, ad->dev_mem, ad->irq,
					      ad->queues);
	}
	return ret;
}

/*
 * With every ring stopped the device is suspended (spec "Suspended device
 * state"): asleep, with its driver-visible state, and keeping no pointer to
 * the memory map, which the front-end may replace or shrink meanwhile
 * (SET_MEM_TABLE, REM_MEM_REG); the next start wakes it with the map of
 * that time. An ACTIVE sleeping device without a map is the state
 * restore() leaves (vdk_device_wake()).
 */
static void ad_suspend(struct vdk_vhost_user_device_adapter *ad)
{
	struct vdk_device *dev = ad->dev;
	int ret = 0;

	if (dev->state != VDK_DEVICE_ACTIVE)
		return;
	if (!dev->asleep)
		ret = vdk_device_sleep(dev);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, AD_LOG, "%s: cannot suspend: %s",
			ad_name(ad), strerror(-ret));
		return;
	}
	ad->mem = NULL;
	ad->dev_mem = NULL;
	dev->mem = NULL;
}

static struct vdk_virtq *ad_stop_queue(void *be, uint16_t index)
{
	struct vdk_vhost_user_device_adapter *ad = to_ad(be);
	struct vdk_device *dev = ad->dev;
	struct vdk_virtq *q = ad->queues[index], *got;
	int ret;

	if (!q)
		return NULL;
	if (dev->state == VDK_DEVICE_ACTIVE && !dev->asleep &&
	    dev->ops->start_queue && dev->ops->stop_queue) {
		/* The others run on (spec "Ring states"). */
		ret = vdk_device_stop_queue(dev, index, &got);
		if (ret < 0)
			vdk_log(VDK_LOG_ERROR, AD_LOG,
				"%s: cannot stop queue %u: %s", ad_name(ad),
				index, strerror(-ret));
		ad->queues[index] = NULL;
		if (--ad->num_started == 0)
			ad_suspend(ad);
		return q;
	}
	/* Without per-queue ops the device hands its queues back by
	 * sleeping; it keeps its driver-visible state. */
	if (dev->state == VDK_DEVICE_ACTIVE && !dev->asleep) {
		ret = vdk_device_sleep(dev);
		if (ret < 0)
			vdk_log(VDK_LOG_ERROR, AD_LOG,
				"%s: cannot stop queue %u: %s", ad_name(ad),
				index, strerror(-ret));
	}
	ad->queues[index] = NULL;
	if (--ad->num_started == 0) {
		ad_suspend(ad);
		return q;
	}
	/* The other rings go on (spec "Ring states"). */
	if (dev->state == VDK_DEVICE_ACTIVE && dev->asleep) {
		ret = vdk_device_wake(dev, ad->dev_mem, ad->irq, ad->queues);
		if (ret < 0)
			vdk_log(VDK_LOG_ERROR, AD_LOG,
				"%s: cannot resume after queue %u stopped: %s",
				ad_name(ad), index, strerror(-ret));
	}
	return q;
}

static void ad_queue_notify(void *be, uint16_t index)
{
	vdk_device_queue_notify(to_ad(be)->dev, index);
}

static int ad_reset(void *be)
{
	struct vdk_vhost_user_device_adapter *ad = to_ad(be);
	int ret = ad_device_reset(ad);

	ad->features = 0;
	return ret;
}

static int ad_snapshot(void *be, cbor_item_t **out)
{
	struct vdk_device *dev = to_ad(be)->dev;
	bool was_awake = !dev->asleep;
	int ret = 0;

	if (was_awake)
		ret = vdk_device_sleep(dev);
	if (ret == 0)
		ret = vdk_device_snapshot_item(dev, out);
	if (was_awake)
		(void)vdk_device_wake(dev, NULL, NULL, NULL);
	return ret;
}

static int ad_restore(void *be, const cbor_item_t *item)
{
	struct vdk_device *dev = to_ad(be)->dev;
	bool was_awake = !dev->asleep;
	int ret = 0;

	if (was_awake)
		ret = vdk_device_sleep(dev);
	if (ret == 0)
		ret = vdk_device_restore_item(dev, item);
	/* An ACTIVE restored device wakes when its queues start; a failed
	 * restore leaves the device as it was (awake if it was). */
	if (dev->state != VDK_DEVICE_ACTIVE || (ret < 0 && was_awake))
		(void)vdk_device_wake(dev, NULL, NULL, NULL);
	return ret;
}

int vu_adapter_init(struct vdk_vhost_user_device_adapter *ad,
		    struct vdk_device *dev,
		    const struct vdk_vhost_user_backend_ops **ops)
{
	if (!ad || !dev || !ops || dev->state == VDK_DEVICE_ACTIVE ||
	    dev->asleep)
		return -EINVAL;
	memset(ad, 0, sizeof(*ad));
	ad->dev = dev;
	ad->num_queues = dev->num_queues;
	ad->ops = (struct vdk_vhost_user_backend_ops){
		.name = dev->ops->name,
		.num_queues = ad_num_queues,
		.queue_max_size = ad_queue_max_size,
		.features = ad_features,
		.ack_features = ad_ack_features,
		.config_size = dev->ops->config_size,
		.read_config = dev->ops->config_size ? ad_read_config : NULL,
		.write_config = dev->ops->write_config ? ad_write_config : NULL,
		.start_queue = ad_start_queue,
		.stop_queue = ad_stop_queue,
		.queue_notify = ad_queue_notify,
		.reset = ad_reset,
		.snapshot = ad_snapshot,
		.restore = ad_restore,
	};
	*ops = &ad->ops;
	return 0;
}
