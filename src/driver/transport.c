/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Driver side, transport-independent: device initialisation and consistent
 * configuration reads (virtio 1.2 §3.1.1, §2.5.1), on top of any
 * struct vdk_driver_transport.
 *
 * Freestanding: no libc, no allocation, no logging.
 */
#include <stdbool.h>
#include <stdint.h>

#include <asm-generic/errno.h>
#include <linux/virtio_config.h>

#include <vdk/driver.h>

static uint8_t get_status(struct vdk_driver_transport *t)
{
	return t->ops->get_status(t->ctx);
}

static void set_status(struct vdk_driver_transport *t, uint8_t status)
{
	t->ops->set_status(t->ctx, status);
}

int vdk_driver_reset(struct vdk_driver_transport *t)
{
	set_status(t, 0);
	/* virtio 1.2 §4.1.4.3.2 / §2.4: the reset is complete once device
	 * status reads back 0. Bounded: a device that never gets there is
	 * not waited on forever. */
	for (int i = 0; i < VDK_DRIVER_RESET_POLLS; i++) {
		if (get_status(t) == 0)
			return 0;
	}
	return -ETIMEDOUT;
}

void vdk_driver_fail(struct vdk_driver_transport *t)
{
	set_status(t, get_status(t) | VIRTIO_CONFIG_S_FAILED);
}

bool vdk_driver_needs_reset(struct vdk_driver_transport *t)
{
	return (get_status(t) & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
}

int vdk_driver_begin_init(struct vdk_driver_transport *t, uint64_t supported,
			  uint64_t *negotiated)
{
	const uint64_t version_1 = 1ull << VIRTIO_F_VERSION_1;
	uint8_t status;
	uint64_t device, accepted;
	int ret;

	/* §3.1.1 step 1: reset the device. */
	ret = vdk_driver_reset(t);
	if (ret < 0)
		return ret;

	/* Steps 2-3: we noticed the device, and we know how to drive it. */
	status = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	set_status(t, status);
	status |= VIRTIO_CONFIG_S_DRIVER;
	set_status(t, status);

	/* Step 4: accept the subset of the device's features we understand.
	 * A virtio 1.x driver cannot drive a device (or be a driver) without
	 * VIRTIO_F_VERSION_1: there is no legacy fallback here. */
	device = t->ops->read_device_features(t->ctx);
	accepted = device & supported;
	if (!(accepted & version_1)) {
		vdk_driver_fail(t);
		return -EOPNOTSUPP;
	}
	t->ops->write_driver_features(t->ctx, accepted);

	/* Steps 5-6: FEATURES_OK, then check the device kept it; if it did
	 * not, it refused this feature subset and is unusable. */
	status |= VIRTIO_CONFIG_S_FEATURES_OK;
	set_status(t, status);
	if (!(get_status(t) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		vdk_driver_fail(t);
		return -EIO;
	}

	if (negotiated)
		*negotiated = accepted;
	return 0;
}

int vdk_driver_finish_init(struct vdk_driver_transport *t)
{
	uint8_t status;

	/* §3.1.1 step 8: the device is live once DRIVER_OK is set. */
	set_status(t, get_status(t) | VIRTIO_CONFIG_S_DRIVER_OK);
	status = get_status(t);
	if (status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return -EIO;
	if (!(status & VIRTIO_CONFIG_S_DRIVER_OK))
		return -EIO;
	return 0;
}

int vdk_driver_read_config_consistent(struct vdk_driver_transport *t,
				      uint32_t offset, void *buf, uint32_t len)
{
	/* §2.5.1 / §4.2.2 ConfigGeneration: a multi-field read is consistent
	 * only if the generation is the same before and after it. */
	for (int i = 0; i < VDK_DRIVER_CONFIG_RETRIES; i++) {
		uint32_t before = t->ops->config_generation(t->ctx);
		int ret = t->ops->read_config(t->ctx, offset, buf, len);

		if (ret < 0)
			return ret;
		if (t->ops->config_generation(t->ctx) == before)
			return 0;
	}
	return -EAGAIN;
}
