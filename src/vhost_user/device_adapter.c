// SPDX-License-Identifier: Apache-2.0
/*
 * The device adapter: serves an in-process struct vdk_device (device.h) as a
 * vhost-user backend (struct vdk_vhost_user_backend_ops). The device is
 * activated once every one of its queues is started and enabled, put to
 * sleep when one stops and woken when all run again; a kick is
 * vdk_device_queue_notify(); snapshot/restore go through the device
 * framework's CBOR envelope. Semantics of crosvm's VhostUserDevice wrapper
 * around a VirtioDevice.
 *
 * The adapter only sees what the connection hands it (queues, memory, the
 * interrupt); it never reads a front-end message itself.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static struct vdk_vhost_user_device_adapter *to_ad(void *be)
{
	return be;
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

static void ad_ack_features(void *be, uint64_t features)
{
	to_ad(be)->features = features; /* given to the device on activate */
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

/* Every queue runs: activate the device, or wake it if it only slept. */
static int ad_activate(struct vdk_vhost_user_device_adapter *ad)
{
	struct vdk_device *dev = ad->dev;
	int ret;

	if (dev->state == VDK_DEVICE_ACTIVE && dev->asleep) {
		ret = vdk_device_wake(dev, ad->mem, ad->irq, ad->queues);
	} else {
		ret = vdk_device_ack_features(dev, ad->features);
		if (ret == 0)
			ret = vdk_device_activate(dev, ad->mem, ad->irq,
						  ad->queues);
	}
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < ad->num_queues; i++)
		vdk_device_queue_notify(dev, i);
	return 0;
}

static int ad_start_queue(void *be, uint16_t index, struct vdk_virtq *q,
			  const struct vdk_mem *mem, struct vdk_interrupt *irq)
{
	struct vdk_vhost_user_device_adapter *ad = to_ad(be);
	int ret = 0;

	if (ad->queues[index])
		return -EBUSY;
	ad->queues[index] = q;
	ad->mem = mem;
	ad->irq = irq;
	ad->num_started++;
	if (ad->num_started == ad->num_queues)
		ret = ad_activate(ad);
	if (ret < 0) {
		ad->queues[index] = NULL;
		ad->num_started--;
	}
	return ret;
}

static struct vdk_virtq *ad_stop_queue(void *be, uint16_t index)
{
	struct vdk_vhost_user_device_adapter *ad = to_ad(be);
	struct vdk_virtq *q = ad->queues[index];

	if (!q)
		return NULL;
	/* The device hands its queues back by sleeping; it keeps its
	 * driver-visible state and is woken when every queue runs again. */
	if (ad->dev->state == VDK_DEVICE_ACTIVE && !ad->dev->asleep)
		(void)vdk_device_sleep(ad->dev);
	ad->queues[index] = NULL;
	ad->num_started--;
	return q;
}

static void ad_queue_notify(void *be, uint16_t index)
{
	vdk_device_queue_notify(to_ad(be)->dev, index);
}

static int ad_reset(void *be)
{
	struct vdk_vhost_user_device_adapter *ad = to_ad(be);
	struct vdk_device *dev = ad->dev;
	struct vdk_virtq *none[VDK_DEVICE_MAX_QUEUES] = {0};
	int ret = 0;

	/* A sleeping device cannot be reset: wake it with no queues first. */
	if (dev->asleep)
		ret = dev->state == VDK_DEVICE_ACTIVE
			      ? vdk_device_wake(dev, ad->mem, ad->irq, none)
			      : vdk_device_wake(dev, NULL, NULL, NULL);
	if (ret == 0)
		ret = vdk_device_reset(dev);
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
	int ret = 0;

	if (!dev->asleep)
		ret = vdk_device_sleep(dev);
	if (ret == 0)
		ret = vdk_device_restore_item(dev, item);
	/* An ACTIVE restored device wakes when its queues start. */
	if (dev->state != VDK_DEVICE_ACTIVE)
		(void)vdk_device_wake(dev, NULL, NULL, NULL);
	return ret;
}

int vdk_vhost_user_backend_from_device(
	struct vdk_vhost_user_device_adapter *ad, struct vdk_device *dev,
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
