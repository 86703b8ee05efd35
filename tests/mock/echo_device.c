/* SPDX-License-Identifier: Apache-2.0 */
/*
 * echo_device: the test device described in echo_device.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#include "echo_device.h"
#include "snapshot.h"

#define MOD "echo"

static const uint8_t default_id[8] = {'v', 'd', 'k', '-', 'e', 'c', 'h', 'o'};

struct echo_device {
	struct vdk_device vdev;

	/* activation (NULL while not active, or asleep) */
	const struct vdk_mem *mem;
	struct vdk_interrupt *irq;
	struct vdk_virtq *queues[ECHO_NUM_QUEUES];
	bool running; /* active and awake: may touch queues */
	bool broken;  /* reported DEVICE_NEEDS_RESET; cleared by reset */

	uint64_t acked;
	struct echo_config config; /* host order */
	struct echo_stats stats;

	struct iovec iov[ECHO_IOV_CAP];
};

/* ---- data path -------------------------------------------------------- */

static void echo_report_error(struct echo_device *e, uint16_t index)
{
	e->stats.errors++;
	if (e->broken)
		return;
	e->broken = true;
	vdk_log(VDK_LOG_WARN, MOD, "queue %u stopped: %s", index,
		vdk_virtq_strerror(vdk_virtq_error(e->queues[index])));
	vdk_interrupt_needs_reset(e->irq);
}

/* Copy the readable part into the writable part; return bytes written. */
static uint32_t echo_chain(struct echo_device *e,
			   const struct vdk_virtq_chain *c)
{
	uint8_t buf[256];
	uint32_t total = c->readable_len < c->writable_len ? c->readable_len
							   : c->writable_len;
	uint32_t done = 0;
	bool invert = e->acked & (1ull << ECHO_F_INVERT);

	while (done < total) {
		size_t want =
			total - done < sizeof(buf) ? total - done : sizeof(buf);
		size_t got = vdk_virtq_chain_copy_from(c, done, buf, want);

		if (got == 0)
			break;
		if (invert)
			for (size_t i = 0; i < got; i++)
				buf[i] ^= 0xff;
		got = vdk_virtq_chain_copy_to(c, done, buf, got);
		if (got == 0)
			break;
		done += (uint32_t)got;
	}
	return done;
}

static void echo_process(struct echo_device *e, uint16_t index)
{
	struct vdk_virtq *q = e->queues[index];
	struct vdk_virtq_chain chain;
	bool returned = false;
	int ret;

	if (!e->running || !q || e->broken)
		return;
	for (;;) {
		chain = (struct vdk_virtq_chain){.iov = e->iov,
						 .iov_cap = ECHO_IOV_CAP};
		ret = vdk_virtq_pop(q, &chain);
		if (ret == 0)
			break;
		if (ret < 0) {
			echo_report_error(e, index);
			break;
		}
		uint32_t written = 0;
		if (index == ECHO_QUEUE_ECHO) {
			written = echo_chain(e, &chain);
			e->stats.echo_chains++;
			e->stats.echo_bytes += written;
		} else {
			e->stats.sink_chains++;
			e->stats.sink_bytes += chain.readable_len;
		}
		e->config.counter++;
		if (vdk_virtq_add_used(q, chain.head, written) < 0) {
			echo_report_error(e, index);
			break;
		}
		returned = true;
	}
	if (returned && vdk_virtq_should_notify(q))
		vdk_interrupt_signal_used_queue(e->irq, index);
}

/* ---- ops -------------------------------------------------------------- */

static uint16_t echo_num_queues(void *dev)
{
	(void)dev;
	return ECHO_NUM_QUEUES;
}

static uint16_t echo_queue_max_size(void *dev, uint16_t index)
{
	(void)dev;
	(void)index;
	return ECHO_QUEUE_MAX_SIZE;
}

static uint64_t echo_features(void *dev)
{
	(void)dev;
	return (1ull << VIRTIO_F_VERSION_1) | (1ull << ECHO_F_INVERT);
}

static void echo_ack_features(void *dev, uint64_t features)
{
	struct echo_device *e = dev;

	e->acked = features;
}

/* The configuration space as bytes, little-endian. */
static void config_bytes(const struct echo_device *e,
			 uint8_t out[ECHO_CONFIG_SIZE])
{
	for (int i = 0; i < 4; i++) {
		out[ECHO_CONFIG_COUNTER + i] =
			(uint8_t)(e->config.counter >> (8 * i));
		out[ECHO_CONFIG_SETTABLE + i] =
			(uint8_t)(e->config.settable >> (8 * i));
	}
	memcpy(out + ECHO_CONFIG_ID, e->config.id, sizeof(e->config.id));
}

static void echo_read_config(void *dev, uint32_t offset, void *data,
			     uint32_t len)
{
	uint8_t bytes[ECHO_CONFIG_SIZE];

	/* The framework checked offset + len <= ECHO_CONFIG_SIZE. */
	config_bytes(dev, bytes);
	memcpy(data, bytes + offset, len);
}

static void echo_write_config(void *dev, uint32_t offset, const void *data,
			      uint32_t len)
{
	struct echo_device *e = dev;
	uint8_t bytes[ECHO_CONFIG_SIZE];
	uint32_t v = 0;

	config_bytes(e, bytes);
	/* Only the settable field is writable; other bytes are dropped. */
	for (uint32_t i = 0; i < len; i++) {
		uint32_t at = offset + i;

		if (at >= ECHO_CONFIG_SETTABLE && at < ECHO_CONFIG_SETTABLE + 4)
			bytes[at] = ((const uint8_t *)data)[i];
	}
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)bytes[ECHO_CONFIG_SETTABLE + i] << (8 * i);
	e->config.settable = v;
}

static int echo_activate(void *dev, const struct vdk_mem *mem,
			 struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct echo_device *e = dev;

	e->mem = mem;
	e->irq = irq;
	for (int i = 0; i < ECHO_NUM_QUEUES; i++)
		e->queues[i] = queues[i];
	e->running = true;
	e->broken = false;
	e->stats.activations++;
	/* Buffers the driver made available before DRIVER_OK. */
	for (uint16_t i = 0; i < ECHO_NUM_QUEUES; i++)
		echo_process(e, i);
	return 0;
}

static int echo_reset(void *dev)
{
	struct echo_device *e = dev;

	e->running = false;
	e->broken = false;
	e->mem = NULL;
	e->irq = NULL;
	memset(e->queues, 0, sizeof(e->queues));
	e->acked = 0;
	e->config.counter = 0;
	e->config.settable = 0;
	e->stats.resets++;
	return 0;
}

static void echo_queue_notify(void *dev, uint16_t index)
{
	if (index < ECHO_NUM_QUEUES)
		echo_process(dev, index);
}

static int echo_start_queue(void *dev, uint16_t index, struct vdk_virtq *q)
{
	struct echo_device *e = dev;

	e->queues[index] = q;
	echo_process(e, index); /* buffers made available before */
	return 0;
}

static struct vdk_virtq *echo_stop_queue(void *dev, uint16_t index)
{
	struct echo_device *e = dev;
	struct vdk_virtq *q = e->queues[index];

	/* Synchronous: nothing is in flight between calls. */
	e->queues[index] = NULL;
	return q;
}

static int echo_sleep(void *dev)
{
	struct echo_device *e = dev;

	/* Synchronous device: nothing runs between calls, so stopping is
	 * dropping the queues. */
	e->running = false;
	e->mem = NULL;
	e->irq = NULL;
	memset(e->queues, 0, sizeof(e->queues));
	return 0;
}

static int echo_wake(void *dev, const struct vdk_mem *mem,
		     struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct echo_device *e = dev;

	if (!mem)
		return 0; /* not active: nothing to resume */
	e->mem = mem;
	e->irq = irq;
	for (int i = 0; i < ECHO_NUM_QUEUES; i++)
		e->queues[i] = queues[i];
	e->running = true;
	/* Notifications sent while asleep were dropped: catch up. */
	for (uint16_t i = 0; i < ECHO_NUM_QUEUES; i++)
		echo_process(e, i);
	return 0;
}

/* ---- snapshot --------------------------------------------------------- */

static const char *const snap_keys[] = {
	"counter",    "settable",    "id",	   "echo_chains",
	"echo_bytes", "sink_chains", "sink_bytes", "broken",
};
#define SNAP_KEYS (sizeof(snap_keys) / sizeof(snap_keys[0]))

static bool put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_item_t *k = value ? cbor_build_string(key) : NULL;
	bool ok = k && cbor_map_add(map, (struct cbor_pair){k, value});

	if (k)
		cbor_decref(&k);
	if (value)
		cbor_decref(&value);
	return ok;
}

static int echo_snapshot_item(void *dev, cbor_item_t **out)
{
	struct echo_device *e = dev;
	cbor_item_t *m = cbor_new_definite_map(SNAP_KEYS);
	bool ok;

	ok = m && put(m, "counter", cbor_build_uint32(e->config.counter)) &&
	     put(m, "settable", cbor_build_uint32(e->config.settable)) &&
	     put(m, "id", cbor_build_bytestring(e->config.id, 8)) &&
	     put(m, "echo_chains", cbor_build_uint64(e->stats.echo_chains)) &&
	     put(m, "echo_bytes", cbor_build_uint64(e->stats.echo_bytes)) &&
	     put(m, "sink_chains", cbor_build_uint64(e->stats.sink_chains)) &&
	     put(m, "sink_bytes", cbor_build_uint64(e->stats.sink_bytes)) &&
	     put(m, "broken", cbor_build_bool(e->broken));
	if (!ok) {
		if (m)
			cbor_decref(&m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

static const cbor_item_t *lookup(const cbor_item_t *map, const char *key)
{
	struct cbor_pair *p = cbor_map_handle(map);
	size_t n = cbor_map_size(map), len = strlen(key);

	for (size_t i = 0; i < n; i++)
		if (p[i].key && cbor_isa_string(p[i].key) &&
		    cbor_string_is_definite(p[i].key) &&
		    cbor_string_length(p[i].key) == len &&
		    memcmp(cbor_string_handle(p[i].key), key, len) == 0)
			return p[i].value;
	return NULL;
}

static bool get_uint(const cbor_item_t *map, const char *key, uint64_t max,
		     uint64_t *val)
{
	const cbor_item_t *it = lookup(map, key);

	if (!it || !cbor_isa_uint(it) || cbor_get_int(it) > max)
		return false;
	*val = cbor_get_int(it);
	return true;
}

static int echo_restore_item(void *dev, const cbor_item_t *item)
{
	struct echo_device *e = dev;
	uint64_t counter, settable, ec, eb, sc, sb;
	const cbor_item_t *id, *broken;

	if (!cbor_isa_map(item) || cbor_map_size(item) != SNAP_KEYS)
		return -EINVAL;
	id = lookup(item, "id");
	broken = lookup(item, "broken");
	if (!get_uint(item, "counter", UINT32_MAX, &counter) ||
	    !get_uint(item, "settable", UINT32_MAX, &settable) ||
	    !get_uint(item, "echo_chains", UINT64_MAX, &ec) ||
	    !get_uint(item, "echo_bytes", UINT64_MAX, &eb) ||
	    !get_uint(item, "sink_chains", UINT64_MAX, &sc) ||
	    !get_uint(item, "sink_bytes", UINT64_MAX, &sb) || !id ||
	    !cbor_isa_bytestring(id) || !cbor_bytestring_is_definite(id) ||
	    cbor_bytestring_length(id) != 8 || !broken ||
	    !cbor_isa_float_ctrl(broken) || !cbor_float_ctrl_is_ctrl(broken) ||
	    !cbor_is_bool(broken))
		return -EINVAL;
	e->config.counter = (uint32_t)counter;
	e->config.settable = (uint32_t)settable;
	memcpy(e->config.id, cbor_bytestring_handle(id), 8);
	e->stats.echo_chains = ec;
	e->stats.echo_bytes = eb;
	e->stats.sink_chains = sc;
	e->stats.sink_bytes = sb;
	e->broken = cbor_get_bool(broken);
	return 0;
}

static void echo_destroy(void *dev)
{
	free(dev);
}

VDK_SNAPSHOT_BYTES_OPS(echo)

static const struct vdk_device_ops echo_ops = {
	.device_type = ECHO_DEVICE_ID,
	.name = "echo",
	.num_queues = echo_num_queues,
	.queue_max_size = echo_queue_max_size,
	.features = echo_features,
	.ack_features = echo_ack_features,
	.read_config = echo_read_config,
	.write_config = echo_write_config,
	.config_size = ECHO_CONFIG_SIZE,
	.activate = echo_activate,
	.reset = echo_reset,
	.queue_notify = echo_queue_notify,
	.sleep = echo_sleep,
	.wake = echo_wake,
	.snapshot = echo_snapshot,
	.restore = echo_restore,
	.destroy = echo_destroy,
	.start_queue = echo_start_queue,
	.stop_queue = echo_stop_queue,
};

/* ---- public helpers ---------------------------------------------------- */

struct echo_device *echo_device_new(int *err)
{
	struct echo_device *e = calloc(1, sizeof(*e));
	int ret;

	if (!e) {
		if (err)
			*err = -ENOMEM;
		return NULL;
	}
	memcpy(e->config.id, default_id, sizeof(default_id));
	ret = vdk_device_init(&e->vdev, &echo_ops, e);
	if (ret < 0) {
		free(e);
		if (err)
			*err = ret;
		return NULL;
	}
	if (err)
		*err = 0;
	return e;
}

void echo_device_free(struct echo_device *e)
{
	if (e)
		vdk_device_fini(&e->vdev); /* frees e through destroy */
}

struct vdk_device *echo_device_vdk(struct echo_device *e)
{
	return &e->vdev;
}

struct echo_device *echo_device_from_vdk(struct vdk_device *dev)
{
	return dev->impl;
}

struct echo_stats echo_device_stats(const struct echo_device *e)
{
	return e->stats;
}

struct echo_config echo_device_config(const struct echo_device *e)
{
	return e->config;
}

void echo_device_set_id(struct echo_device *e, const uint8_t id[8])
{
	memcpy(e->config.id, id, sizeof(e->config.id));
	if (e->running)
		vdk_interrupt_signal_config_changed(e->irq);
}

bool echo_device_inverting(const struct echo_device *e)
{
	return e->acked & (1ull << ECHO_F_INVERT);
}
