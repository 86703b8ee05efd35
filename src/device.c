/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device model framework: enforces the lifecycle of <vdk/device.h> around a
 * device's ops table (the semantics of crosvm's VirtioDevice), negotiates
 * features (virtio 1.2 §2.2), bounds configuration space accesses
 * (virtio 1.2 §2.5) and wraps device snapshots in a versioned CBOR
 * envelope.
 *
 * A snapshot handed to vdk_device_restore() is untrusted input: it may be
 * truncated, corrupt, or come from another device or library version. Every
 * item's type is checked before use, and nothing is changed until the whole
 * envelope has been validated and the device has accepted its part.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/log.h>

#include "snapshot.h"

#define MOD "device"

static const char ENVELOPE_FORMAT[] = "vdk-device";

/* The envelope's keys, in serialisation order. */
enum env_key {
	ENV_FORMAT,
	ENV_VERSION,
	ENV_DEVICE_TYPE,
	ENV_STATE,
	ENV_FEATURES,
	ENV_DEVICE,
	ENV_KEYS
};
static const char *const env_keys[ENV_KEYS] = {
	[ENV_FORMAT] = "format",	   [ENV_VERSION] = "version",
	[ENV_DEVICE_TYPE] = "device_type", [ENV_STATE] = "state",
	[ENV_FEATURES] = "acked_features", [ENV_DEVICE] = "device",
};

static const char *dev_name(const struct vdk_device *dev)
{
	return dev->ops->name ? dev->ops->name : "device";
}

const char *vdk_device_state_name(enum vdk_device_state state)
{
	switch (state) {
	case VDK_DEVICE_NEW:
		return "new";
	case VDK_DEVICE_ACTIVE:
		return "active";
	case VDK_DEVICE_RESET:
		return "reset";
	}
	return "invalid";
}

/* Log a refused lifecycle transition and return @err. */
static int refuse(const struct vdk_device *dev, const char *what, int err)
{
	vdk_log(VDK_LOG_WARN, MOD, "%s: %s refused: device is %s and %s",
		dev_name(dev), what, vdk_device_state_name(dev->state),
		dev->asleep ? "asleep" : "awake");
	return err;
}

static void forget_activation(struct vdk_device *dev)
{
	dev->mem = NULL;
	dev->irq = NULL;
	memset(dev->queues, 0, sizeof(dev->queues));
}

int vdk_device_init(struct vdk_device *dev, const struct vdk_device_ops *ops,
		    void *impl)
{
	uint16_t n;

	if (!dev || !ops || !ops->num_queues || !ops->queue_max_size ||
	    !ops->features || !ops->activate || !ops->reset) {
		vdk_log(VDK_LOG_ERROR, MOD, "init: ops table lacks a member");
		return -EINVAL;
	}
	n = ops->num_queues(impl);
	if (n < 1 || n > VDK_DEVICE_MAX_QUEUES) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: %u queues (1..%d allowed)",
			ops->name ? ops->name : "device", n,
			VDK_DEVICE_MAX_QUEUES);
		return -EINVAL;
	}
	memset(dev, 0, sizeof(*dev));
	dev->ops = ops;
	dev->impl = impl;
	dev->state = VDK_DEVICE_NEW;
	dev->asleep = false;
	dev->num_queues = n;
	return 0;
}

void vdk_device_fini(struct vdk_device *dev)
{
	void (*destroy)(void *);
	void *impl;
	int ret;

	if (!dev || !dev->ops)
		return;
	if (dev->state == VDK_DEVICE_ACTIVE) {
		/* An asleep device has already stopped its work; reset makes
		 * it drop the queue, memory and interrupt pointers too. */
		ret = dev->ops->reset(dev->impl);
		if (ret < 0)
			vdk_log(VDK_LOG_ERROR, MOD, "%s: reset at fini: %s",
				dev_name(dev), strerror(-ret));
	}
	forget_activation(dev);
	dev->state = VDK_DEVICE_RESET;
	/* @dev may live inside the device's own allocation: do not touch it
	 * after destroy(). */
	destroy = dev->ops->destroy;
	impl = dev->impl;
	dev->ops = NULL;
	if (destroy)
		destroy(impl);
}

int vdk_device_ack_features(struct vdk_device *dev, uint64_t features)
{
	uint64_t offered;

	if (dev->state == VDK_DEVICE_ACTIVE || dev->asleep)
		return refuse(dev, "ack_features", -EBUSY);
	offered = dev->ops->features(dev->impl);
	if (features & ~offered) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: driver accepted features 0x%llx that were not "
			"offered (offered 0x%llx)",
			dev_name(dev),
			(unsigned long long)(features & ~offered),
			(unsigned long long)offered);
		return -EINVAL;
	}
	dev->acked_features = features;
	if (dev->ops->ack_features)
		dev->ops->ack_features(dev->impl, features);
	return 0;
}

/* True if [offset, offset + len) lies inside the configuration space. */
static bool config_range_ok(const struct vdk_device *dev, uint32_t offset,
			    uint32_t len)
{
	uint32_t end;

	if (__builtin_add_overflow(offset, len, &end))
		return false;
	return end <= dev->ops->config_size;
}

int vdk_device_read_config(struct vdk_device *dev, uint32_t offset, void *data,
			   uint32_t len)
{
	if (len == 0)
		return 0;
	if (!data)
		return -EINVAL;
	memset(data, 0, len);
	if (!config_range_ok(dev, offset, len)) {
		VDK_DLOG(MOD, "%s: config read [%u, +%u) out of range",
			 dev_name(dev), offset, len);
		return -ERANGE;
	}
	if (dev->ops->read_config)
		dev->ops->read_config(dev->impl, offset, data, len);
	return 0;
}

int vdk_device_write_config(struct vdk_device *dev, uint32_t offset,
			    const void *data, uint32_t len)
{
	if (len == 0)
		return 0;
	if (!data)
		return -EINVAL;
	if (!config_range_ok(dev, offset, len)) {
		VDK_DLOG(MOD, "%s: config write [%u, +%u) out of range",
			 dev_name(dev), offset, len);
		return -ERANGE;
	}
	if (dev->ops->write_config)
		dev->ops->write_config(dev->impl, offset, data, len);
	return 0;
}

int vdk_device_activate(struct vdk_device *dev, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	int ret;

	if (dev->state == VDK_DEVICE_ACTIVE || dev->asleep)
		return refuse(dev, "activate", -EBUSY);
	if (!mem || !irq || !queues) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s: activate without memory, interrupt or queues",
			dev_name(dev));
		return -EINVAL;
	}
	/* The framework's copy is what the device sees and what sleep hands
	 * back, so the caller's array need not outlive this call. */
	memcpy(dev->queues, queues, dev->num_queues * sizeof(*queues));
	ret = dev->ops->activate(dev->impl, mem, irq, dev->queues);
	if (ret < 0) {
		forget_activation(dev);
		vdk_log(VDK_LOG_ERROR, MOD, "%s: activate failed: %s",
			dev_name(dev), strerror(-ret));
		return ret;
	}
	dev->mem = mem;
	dev->irq = irq;
	dev->state = VDK_DEVICE_ACTIVE;
	vdk_log(VDK_LOG_INFO, MOD, "%s: activated (features 0x%llx)",
		dev_name(dev), (unsigned long long)dev->acked_features);
	return 0;
}

int vdk_device_reset(struct vdk_device *dev)
{
	int ret;

	if (dev->asleep)
		return refuse(dev, "reset", -EBUSY);
	if (dev->state == VDK_DEVICE_ACTIVE) {
		ret = dev->ops->reset(dev->impl);
		if (ret < 0) {
			/* The device may still use its queues: keep them. */
			vdk_log(VDK_LOG_ERROR, MOD, "%s: reset failed: %s",
				dev_name(dev), strerror(-ret));
			return ret;
		}
		forget_activation(dev);
		dev->state = VDK_DEVICE_RESET;
		vdk_log(VDK_LOG_INFO, MOD, "%s: reset", dev_name(dev));
	}
	dev->acked_features = 0;
	if (dev->ops->ack_features)
		dev->ops->ack_features(dev->impl, 0);
	return 0;
}

void vdk_device_queue_notify(struct vdk_device *dev, uint16_t index)
{
	if (dev->state != VDK_DEVICE_ACTIVE || dev->asleep) {
		VDK_DLOG(MOD, "%s: notify of queue %u ignored (%s%s)",
			 dev_name(dev), index,
			 vdk_device_state_name(dev->state),
			 dev->asleep ? ", asleep" : "");
		return;
	}
	if (index >= dev->num_queues || !dev->queues[index]) {
		VDK_DLOG(MOD, "%s: notify of absent queue %u ignored",
			 dev_name(dev), index);
		return;
	}
	if (dev->ops->queue_notify)
		dev->ops->queue_notify(dev->impl, index);
}

int vdk_device_attach_loop(struct vdk_device *dev, struct vdk_loop *loop)
{
	int ret;

	if (!loop)
		return -EINVAL;
	if (dev->loop || dev->state == VDK_DEVICE_ACTIVE)
		return refuse(dev, "attach_loop", -EBUSY);
	if (dev->ops->attach_loop) {
		ret = dev->ops->attach_loop(dev->impl, loop);
		if (ret < 0) {
			vdk_log(VDK_LOG_ERROR, MOD, "%s: attach_loop: %s",
				dev_name(dev), strerror(-ret));
			return ret;
		}
	}
	dev->loop = loop;
	return 0;
}

/* The checks set_kick_fd and set_call_fd share. */
static int fd_op_check(struct vdk_device *dev, const char *what, uint16_t index,
		       int fd, bool has_op)
{
	if (!has_op)
		return -EOPNOTSUPP;
	if (dev->state == VDK_DEVICE_ACTIVE)
		return refuse(dev, what, -EBUSY);
	if (index >= dev->num_queues) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: %s of queue %u of %u",
			dev_name(dev), what, index, dev->num_queues);
		return -ERANGE;
	}
	return fd < 0 ? -EBADF : 0;
}

int vdk_device_set_kick_fd(struct vdk_device *dev, uint16_t index, int fd)
{
	int ret = fd_op_check(dev, "set_kick_fd", index, fd,
			      dev->ops->set_kick_fd != NULL);

	return ret < 0 ? ret : dev->ops->set_kick_fd(dev->impl, index, fd);
}

int vdk_device_set_call_fd(struct vdk_device *dev, uint16_t index, int fd)
{
	int ret = fd_op_check(dev, "set_call_fd", index, fd,
			      dev->ops->set_call_fd != NULL);

	return ret < 0 ? ret : dev->ops->set_call_fd(dev->impl, index, fd);
}

/* The checks start_queue and stop_queue share. */
static int queue_op_check(struct vdk_device *dev, const char *what,
			  uint16_t index)
{
	if (dev->state != VDK_DEVICE_ACTIVE || dev->asleep)
		return refuse(dev, what, -EBUSY);
	if (index >= dev->num_queues) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: %s of queue %u of %u",
			dev_name(dev), what, index, dev->num_queues);
		return -ERANGE;
	}
	if (!dev->ops->start_queue || !dev->ops->stop_queue)
		return -EOPNOTSUPP;
	return 0;
}

int vdk_device_start_queue(struct vdk_device *dev, uint16_t index,
			   struct vdk_virtq *q)
{
	int ret = queue_op_check(dev, "start_queue", index);

	if (ret < 0)
		return ret;
	if (!q)
		return -EINVAL;
	if (dev->queues[index]) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: queue %u already started",
			dev_name(dev), index);
		return -EBUSY;
	}
	ret = dev->ops->start_queue(dev->impl, index, q);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: start of queue %u: %s",
			dev_name(dev), index, strerror(-ret));
		return ret;
	}
	dev->queues[index] = q;
	return 0;
}

int vdk_device_stop_queue(struct vdk_device *dev, uint16_t index,
			  struct vdk_virtq **q)
{
	struct vdk_virtq *got;
	int ret = queue_op_check(dev, "stop_queue", index);

	if (q)
		*q = NULL;
	if (ret < 0)
		return ret;
	if (!dev->queues[index])
		return -ENOENT;
	got = dev->ops->stop_queue(dev->impl, index);
	if (got != dev->queues[index])
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: stop_queue %u handed back %p, not the queue it "
			"was given",
			dev_name(dev), index, (void *)got);
	if (q)
		*q = dev->queues[index];
	dev->queues[index] = NULL;
	return 0;
}

int vdk_device_sleep(struct vdk_device *dev)
{
	int ret;

	if (dev->asleep)
		return refuse(dev, "sleep", -EBUSY);
	if (dev->ops->sleep) {
		ret = dev->ops->sleep(dev->impl);
		if (ret < 0) {
			vdk_log(VDK_LOG_ERROR, MOD, "%s: sleep failed: %s",
				dev_name(dev), strerror(-ret));
			return ret;
		}
	}
	dev->asleep = true;
	return 0;
}

struct vdk_virtq **vdk_device_sleep_queues(struct vdk_device *dev)
{
	if (!dev->asleep || dev->state != VDK_DEVICE_ACTIVE || !dev->mem)
		return NULL;
	return dev->queues;
}

int vdk_device_wake(struct vdk_device *dev, const struct vdk_mem *act_mem,
		    struct vdk_interrupt *act_irq,
		    struct vdk_virtq **act_queues)
{
	const struct vdk_mem *mem = NULL;
	struct vdk_interrupt *irq = NULL;
	struct vdk_virtq *queues[VDK_DEVICE_MAX_QUEUES] = {0};
	bool restored;
	int ret;

	if (!dev->asleep)
		return refuse(dev, "wake", -EBUSY);
	if (dev->state == VDK_DEVICE_ACTIVE) {
		/* After restore an ACTIVE device has no activation yet. */
		restored = !dev->mem;
		mem = act_mem ? act_mem : dev->mem;
		irq = act_irq ? act_irq : dev->irq;
		if (act_queues)
			memcpy(queues, act_queues,
			       dev->num_queues * sizeof(*queues));
		else if (!restored)
			memcpy(queues, dev->queues, sizeof(queues));
		if (!mem || !irq || (restored && !act_queues)) {
			vdk_log(VDK_LOG_ERROR, MOD,
				"%s: wake of an active device with nothing to "
				"resume with",
				dev_name(dev));
			return -EINVAL;
		}
		memcpy(dev->queues, queues, sizeof(queues));
		if (dev->ops->wake)
			ret = dev->ops->wake(dev->impl, mem, irq, dev->queues);
		else if (restored)
			ret = dev->ops->activate(dev->impl, mem, irq,
						 dev->queues);
		else
			ret = 0;
		if (ret < 0) {
			if (restored)
				memset(dev->queues, 0, sizeof(dev->queues));
			vdk_log(VDK_LOG_ERROR, MOD, "%s: wake failed: %s",
				dev_name(dev), strerror(-ret));
			return ret;
		}
		dev->mem = mem;
		dev->irq = irq;
	} else if (dev->ops->wake) {
		ret = dev->ops->wake(dev->impl, NULL, NULL, NULL);
		if (ret < 0) {
			vdk_log(VDK_LOG_ERROR, MOD, "%s: wake failed: %s",
				dev_name(dev), strerror(-ret));
			return ret;
		}
	}
	dev->asleep = false;
	return 0;
}

/* ---- snapshot envelope ------------------------------------------------ */

int vdk_device_snapshot_item(struct vdk_device *dev, cbor_item_t **out)
{
	cbor_item_t *map, *inner = NULL;
	uint8_t *bytes = NULL;
	size_t nbytes = 0;
	bool ok;
	int ret;

	*out = NULL;
	if (!dev->asleep)
		return refuse(dev, "snapshot", -EBUSY);
	if (dev->ops->snapshot) {
		ret = dev->ops->snapshot(dev->impl, &bytes, &nbytes);
		if (ret < 0) {
			vdk_log(VDK_LOG_ERROR, MOD, "%s: snapshot failed: %s",
				dev_name(dev), strerror(-ret));
			return ret;
		}
		/* The device's bytes travel as one byte string. */
		inner = cbor_build_bytestring(bytes ? bytes : (uint8_t *)"",
					      nbytes);
		free(bytes);
	} else {
		inner = cbor_new_null();
	}
	if (!inner)
		return -ENOMEM;
	map = cbor_new_definite_map(ENV_KEYS);
	/* Insertion order is serialisation order: equal devices give equal
	 * bytes. vdk_snapshot_put() consumes the reference it is given, so
	 * @inner gets an extra one and is released below whatever happens.
	 * The integers keep their 8-byte encoding (format of version 1). */
	ok = map &&
	     vdk_snapshot_put(map, env_keys[ENV_FORMAT],
			      cbor_build_string(ENVELOPE_FORMAT)) &&
	     vdk_snapshot_put(map, env_keys[ENV_VERSION],
			      cbor_build_uint64(VDK_DEVICE_SNAPSHOT_VERSION)) &&
	     vdk_snapshot_put(map, env_keys[ENV_DEVICE_TYPE],
			      cbor_build_uint64(dev->ops->device_type)) &&
	     vdk_snapshot_put(
		     map, env_keys[ENV_STATE],
		     cbor_build_string(vdk_device_state_name(dev->state))) &&
	     vdk_snapshot_put(map, env_keys[ENV_FEATURES],
			      cbor_build_uint64(dev->acked_features)) &&
	     vdk_snapshot_put(map, env_keys[ENV_DEVICE], cbor_incref(inner));
	cbor_decref(&inner);
	if (!ok) {
		if (map)
			cbor_decref(&map);
		return -ENOMEM;
	}
	*out = map;
	return 0;
}

int vdk_device_snapshot(struct vdk_device *dev, uint8_t **buf, size_t *len)
{
	cbor_item_t *item;
	int ret;

	*buf = NULL;
	*len = 0;
	ret = vdk_device_snapshot_item(dev, &item);
	if (ret < 0)
		return ret;
	ret = vdk_snapshot_serialize(item, buf, len);
	cbor_decref(&item);
	return ret;
}

/* ---- restore ---------------------------------------------------------- */

int vdk_device_restore_item(struct vdk_device *dev, const cbor_item_t *item)
{
	static const enum vdk_device_state states[] = {
		VDK_DEVICE_NEW, VDK_DEVICE_ACTIVE, VDK_DEVICE_RESET};
	const cbor_item_t *env[ENV_KEYS];
	enum vdk_device_state state;
	uint64_t version, type, features, offered;
	size_t i;
	int ret;

	if (!dev->asleep || dev->state == VDK_DEVICE_ACTIVE)
		return refuse(dev, "restore", -EBUSY);
	/* Unknown keys, non-string keys and duplicates make the envelope
	 * malformed. */
	if (!item ||
	    vdk_snapshot_map_split(item, env_keys, ENV_KEYS, env) < 0 ||
	    !vdk_snapshot_str_eq(env[ENV_FORMAT], ENVELOPE_FORMAT)) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: restore: not a device snapshot",
			dev_name(dev));
		return -EINVAL;
	}
	/* The version decides how the rest reads, so it comes first. */
	if (!vdk_snapshot_uint_value(env[ENV_VERSION], UINT64_MAX, &version)) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: restore: no version",
			dev_name(dev));
		return -EINVAL;
	}
	if (version != VDK_DEVICE_SNAPSHOT_VERSION) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: snapshot version %llu, expected %d",
			dev_name(dev), (unsigned long long)version,
			VDK_DEVICE_SNAPSHOT_VERSION);
		return -EPROTO;
	}
	if (!vdk_snapshot_uint_value(env[ENV_DEVICE_TYPE], UINT64_MAX, &type) ||
	    !env[ENV_STATE] ||
	    !vdk_snapshot_uint_value(env[ENV_FEATURES], UINT64_MAX,
				     &features) ||
	    !env[ENV_DEVICE]) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: restore: malformed envelope",
			dev_name(dev));
		return -EINVAL;
	}
	if (type != dev->ops->device_type) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: snapshot of device type %llu, this is %u",
			dev_name(dev), (unsigned long long)type,
			dev->ops->device_type);
		return -ENODEV;
	}
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (vdk_snapshot_str_eq(env[ENV_STATE],
					vdk_device_state_name(states[i])))
			break;
	if (i == sizeof(states) / sizeof(states[0])) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: restore: unknown state",
			dev_name(dev));
		return -EINVAL;
	}
	state = states[i];
	offered = dev->ops->features(dev->impl);
	if (features & ~offered) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: features 0x%llx not offered",
			dev_name(dev),
			(unsigned long long)(features & ~offered));
		return -EINVAL;
	}
	if (!cbor_is_null(env[ENV_DEVICE]) &&
	    (!cbor_isa_bytestring(env[ENV_DEVICE]) ||
	     !cbor_bytestring_is_definite(env[ENV_DEVICE]))) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: device state is not a byte string",
			dev_name(dev));
		return -EINVAL;
	}
	if (!dev->ops->restore && !cbor_is_null(env[ENV_DEVICE])) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: snapshot has device state, device has "
			"none",
			dev_name(dev));
		return -EINVAL;
	}

	/* Features first: a device may interpret its state by them. */
	if (dev->ops->ack_features)
		dev->ops->ack_features(dev->impl, features);
	if (dev->ops->restore) {
		const cbor_item_t *d = env[ENV_DEVICE];
		bool none = cbor_is_null(d);

		ret = dev->ops->restore(
			dev->impl,
			none ? NULL : cbor_bytestring_handle((cbor_item_t *)d),
			none ? 0 : cbor_bytestring_length(d));
		if (ret < 0) {
			if (dev->ops->ack_features)
				dev->ops->ack_features(dev->impl,
						       dev->acked_features);
			vdk_log(VDK_LOG_WARN, MOD,
				"%s: restore: device refused its state: %s",
				dev_name(dev), strerror(-ret));
			return ret;
		}
	}
	dev->acked_features = features;
	dev->state = state;
	forget_activation(dev);
	vdk_log(VDK_LOG_INFO, MOD, "%s: restored (%s)", dev_name(dev),
		vdk_device_state_name(state));
	return 0;
}

int vdk_device_restore(struct vdk_device *dev, const uint8_t *buf, size_t len)
{
	cbor_item_t *item;
	int ret;

	if (!dev->asleep || dev->state == VDK_DEVICE_ACTIVE)
		return refuse(dev, "restore", -EBUSY);
	if (!buf || len == 0)
		return -EINVAL;
	ret = vdk_snapshot_load(buf, len, &item);
	if (ret < 0) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: %zu bytes are not one well-formed CBOR "
			"item: %s",
			dev_name(dev), len, strerror(-ret));
		return ret;
	}
	ret = vdk_device_restore_item(dev, item);
	cbor_decref(&item);
	return ret;
}
