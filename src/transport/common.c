/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The status, feature and reset rules both transports share: see
 * common.h. Everything here runs under the calling transport's register
 * lock.
 */
#include <errno.h>

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
