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

#define MOD "device"

static const char ENVELOPE_FORMAT[] = "vdk-device";

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

/* Add "@key": @value to @map, consuming the caller's reference to @value
 * (which may be NULL after a failed allocation). */
static bool map_put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_item_t *k;
	bool ok;

	if (!value)
		return false;
	k = cbor_build_string(key);
	ok = k &&
	     cbor_map_add(map, (struct cbor_pair){.key = k, .value = value});
	if (k)
		cbor_decref(&k);
	cbor_decref(&value);
	return ok;
}

int vdk_device_snapshot_item(struct vdk_device *dev, cbor_item_t **out)
{
	cbor_item_t *map, *inner = NULL;
	bool ok;
	int ret;

	*out = NULL;
	if (!dev->asleep)
		return refuse(dev, "snapshot", -EBUSY);
	if (dev->ops->snapshot) {
		ret = dev->ops->snapshot(dev->impl, &inner);
		if (ret < 0) {
			vdk_log(VDK_LOG_ERROR, MOD, "%s: snapshot failed: %s",
				dev_name(dev), strerror(-ret));
			return ret;
		}
	}
	if (!inner)
		inner = cbor_new_null();
	if (!inner)
		return -ENOMEM;
	map = cbor_new_definite_map(6);
	/* Insertion order is serialisation order: equal devices give equal
	 * bytes. map_put() consumes the reference it is given, so @inner
	 * gets an extra one and is released below whatever happens. */
	ok = map &&
	     map_put(map, "format", cbor_build_string(ENVELOPE_FORMAT)) &&
	     map_put(map, "version",
		     cbor_build_uint64(VDK_DEVICE_SNAPSHOT_VERSION)) &&
	     map_put(map, "device_type",
		     cbor_build_uint64(dev->ops->device_type)) &&
	     map_put(map, "state",
		     cbor_build_string(vdk_device_state_name(dev->state))) &&
	     map_put(map, "acked_features",
		     cbor_build_uint64(dev->acked_features)) &&
	     map_put(map, "device", cbor_incref(inner));
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
	unsigned char *out = NULL;
	size_t cap = 0, n;
	int ret;

	*buf = NULL;
	*len = 0;
	ret = vdk_device_snapshot_item(dev, &item);
	if (ret < 0)
		return ret;
	n = cbor_serialize_alloc(item, &out, &cap);
	cbor_decref(&item);
	if (n == 0) {
		free(out);
		return -ENOMEM;
	}
	*buf = out;
	*len = n;
	return 0;
}

/* ---- restore ---------------------------------------------------------- */

struct envelope {
	const cbor_item_t *format, *version, *device_type, *state, *features,
		*device;
};

static bool str_eq(const cbor_item_t *item, const char *s)
{
	size_t n = strlen(s);

	return cbor_isa_string(item) && cbor_string_is_definite(item) &&
	       cbor_string_length(item) == n &&
	       memcmp(cbor_string_handle(item), s, n) == 0;
}

/* Sort the envelope's pairs into @env; unknown keys, non-string keys and
 * duplicates make the envelope malformed. */
static int envelope_split(const cbor_item_t *item, struct envelope *env)
{
	static const char *const keys[] = {"format",	     "version",
					   "device_type",    "state",
					   "acked_features", "device"};
	const cbor_item_t **slots[] = {&env->format,	  &env->version,
				       &env->device_type, &env->state,
				       &env->features,	  &env->device};
	struct cbor_pair *pairs;
	size_t n, i, k;

	memset(env, 0, sizeof(*env));
	if (!cbor_isa_map(item))
		return -EINVAL;
	n = cbor_map_size(item);
	pairs = cbor_map_handle(item);
	for (i = 0; i < n; i++) {
		if (!pairs[i].key || !pairs[i].value)
			return -EINVAL;
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (str_eq(pairs[i].key, keys[k]))
				break;
		if (k == sizeof(keys) / sizeof(keys[0]) || *slots[k])
			return -EINVAL;
		*slots[k] = pairs[i].value;
	}
	return 0;
}

static bool uint_of(const cbor_item_t *item, uint64_t *val)
{
	if (!item || !cbor_isa_uint(item))
		return false;
	*val = cbor_get_int(item);
	return true;
}

int vdk_device_restore_item(struct vdk_device *dev, const cbor_item_t *item)
{
	static const enum vdk_device_state states[] = {
		VDK_DEVICE_NEW, VDK_DEVICE_ACTIVE, VDK_DEVICE_RESET};
	enum vdk_device_state state;
	struct envelope env;
	uint64_t version, type, features, offered;
	size_t i;
	int ret;

	if (!dev->asleep || dev->state == VDK_DEVICE_ACTIVE)
		return refuse(dev, "restore", -EBUSY);
	if (!item || envelope_split(item, &env) < 0 ||
	    !str_eq(env.format, ENVELOPE_FORMAT)) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: restore: not a device snapshot",
			dev_name(dev));
		return -EINVAL;
	}
	/* The version decides how the rest reads, so it comes first. */
	if (!uint_of(env.version, &version)) {
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
	if (!uint_of(env.device_type, &type) || !env.state ||
	    !uint_of(env.features, &features) || !env.device) {
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
		if (str_eq(env.state, vdk_device_state_name(states[i])))
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
	if (!dev->ops->restore && !cbor_is_null(env.device)) {
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
		ret = dev->ops->restore(dev->impl, env.device);
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

/*
 * Before cbor_load() builds items from a snapshot, walk it with the streaming
 * decoder and refuse what would make the builder misbehave: a definite array
 * or map that claims more elements than there are bytes left (libcbor
 * allocates the claimed size up front, so 5 bytes could ask for gigabytes),
 * nesting deeper than SCAN_MAX_DEPTH, truncation and trailing bytes.
 */
#define SCAN_MAX_DEPTH 32
#define SCAN_INDEF     UINT64_MAX

struct scan {
	size_t remaining;	       /* bytes from the current head on */
	uint64_t open[SCAN_MAX_DEPTH]; /* items each open container awaits */
	unsigned depth;
	bool done;
	bool bad;
};

/* One complete item: count it in its container, closing finished ones. */
static void scan_item(struct scan *s)
{
	while (s->depth > 0) {
		uint64_t *top = &s->open[s->depth - 1];

		if (*top == SCAN_INDEF || --*top > 0)
			return;
		s->depth--; /* the container is complete: an item itself */
	}
	s->done = true;
}

static void scan_push(struct scan *s, uint64_t items)
{
	if (s->depth == SCAN_MAX_DEPTH) {
		s->bad = true;
		return;
	}
	if (items == 0) {
		scan_item(s);
		return;
	}
	s->open[s->depth++] = items;
}

static void scan_leaf(void *ctx)
{
	scan_item(ctx);
}
static void scan_u8(void *ctx, uint8_t v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_u16(void *ctx, uint16_t v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_u32(void *ctx, uint32_t v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_u64(void *ctx, uint64_t v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_string(void *ctx, cbor_data data, size_t len)
{
	(void)data;
	(void)len;
	scan_item(ctx);
}
static void scan_float(void *ctx, float v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_double(void *ctx, double v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_bool(void *ctx, bool v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_tag(void *ctx, uint64_t v)
{
	/* A tag qualifies the item that follows; that item is counted. */
	(void)ctx;
	(void)v;
}
static void scan_array(void *ctx, size_t n)
{
	struct scan *s = ctx;

	/* Every element takes at least one byte. */
	if (n >= s->remaining)
		s->bad = true;
	else
		scan_push(s, n);
}
static void scan_map(void *ctx, size_t n)
{
	struct scan *s = ctx;

	if (n >= s->remaining / 2 + 1)
		s->bad = true;
	else
		scan_push(s, 2 * (uint64_t)n);
}
static void scan_indef(void *ctx)
{
	scan_push(ctx, SCAN_INDEF);
}
static void scan_break(void *ctx)
{
	struct scan *s = ctx;

	if (s->depth == 0 || s->open[s->depth - 1] != SCAN_INDEF) {
		s->bad = true;
		return;
	}
	s->depth--;
	scan_item(s);
}

static const struct cbor_callbacks scan_callbacks = {
	.uint8 = scan_u8,
	.uint16 = scan_u16,
	.uint32 = scan_u32,
	.uint64 = scan_u64,
	.negint8 = scan_u8,
	.negint16 = scan_u16,
	.negint32 = scan_u32,
	.negint64 = scan_u64,
	.byte_string_start = scan_indef,
	.byte_string = scan_string,
	.string = scan_string,
	.string_start = scan_indef,
	.indef_array_start = scan_indef,
	.array_start = scan_array,
	.indef_map_start = scan_indef,
	.map_start = scan_map,
	.tag = scan_tag,
	.float2 = scan_float,
	.float4 = scan_float,
	.float8 = scan_double,
	.undefined = scan_leaf,
	.null = scan_leaf,
	.boolean = scan_bool,
	.indef_break = scan_break,
};

/* True if @buf holds exactly one well-bounded CBOR item. */
static bool snapshot_scan(const uint8_t *buf, size_t len)
{
	struct scan s = {0};
	size_t off = 0;

	while (!s.done && !s.bad) {
		struct cbor_decoder_result r;

		if (off >= len)
			return false; /* truncated */
		s.remaining = len - off;
		r = cbor_stream_decode(buf + off, len - off, &scan_callbacks,
				       &s);
		if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
			return false;
		off += r.read;
	}
	return !s.bad && off == len;
}

int vdk_device_restore(struct vdk_device *dev, const uint8_t *buf, size_t len)
{
	struct cbor_load_result res;
	cbor_item_t *item;
	int ret;

	if (!dev->asleep || dev->state == VDK_DEVICE_ACTIVE)
		return refuse(dev, "restore", -EBUSY);
	if (!buf || len == 0)
		return -EINVAL;
	if (!snapshot_scan(buf, len)) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: %zu bytes are not one well-formed CBOR "
			"item",
			dev_name(dev), len);
		return -EINVAL;
	}
	item = cbor_load(buf, len, &res);
	if (!item) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: CBOR decode error %d at byte %zu",
			dev_name(dev), (int)res.error.code, res.error.position);
		return res.error.code == CBOR_ERR_MEMERROR ? -ENOMEM : -EINVAL;
	}
	if (res.read != len) {
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: restore: %zu bytes after the snapshot",
			dev_name(dev), len - res.read);
		cbor_decref(&item);
		return -EINVAL;
	}
	ret = vdk_device_restore_item(dev, item);
	cbor_decref(&item);
	return ret;
}
