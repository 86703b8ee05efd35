/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-console, port 0 only (virtio 1.2 §5.3). See
 * <vdk/devices/console.h> for the model and console_internal.h for the
 * locking.
 *
 * This file: features (§5.3.3), the configuration space (§5.3.4), the
 * device ops the framework calls (activate, reset, notify, sleep, wake,
 * snapshot, restore) and construction. The data path is in console_io.c.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/devices/console.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#include "../snapshot.h"
#include "console_internal.h"

#define MOD CONSOLE_MOD

_Static_assert(VDK_CONSOLE_CONFIG_SIZE == sizeof(struct virtio_console_config),
	       "config size");
#define EMERG_WR_OFFSET offsetof(struct virtio_console_config, emerg_wr)

/* ---- device ops -------------------------------------------------------- */

static uint16_t con_num_queues(void *dev)
{
	(void)dev;
	return 2; /* §5.3.2: no VIRTIO_CONSOLE_F_MULTIPORT */
}

static uint16_t con_queue_max_size(void *dev, uint16_t index)
{
	(void)index;
	return ((struct vdk_console *)dev)->queue_max_size;
}

static uint64_t con_features(void *dev)
{
	return ((struct vdk_console *)dev)->features;
}

static void con_read_config(void *dev, uint32_t offset, void *data,
			    uint32_t len)
{
	struct vdk_console *con = dev;
	struct virtio_console_config c = {0};

	pthread_mutex_lock(&con->rx_lock);
	c.cols = htole16(con->cols);
	c.rows = htole16(con->rows);
	pthread_mutex_unlock(&con->rx_lock);
	c.max_nr_ports = htole32(1);
	/* emerg_wr is write-only: reads as 0 */
	memcpy(data, (const uint8_t *)&c + offset, len);
}

/* §5.3.4: a write to emerg_wr outputs its low byte; the other fields are
 * read-only for the driver. */
static void con_write_config(void *dev, uint32_t offset, const void *data,
			     uint32_t len)
{
	if (offset > EMERG_WR_OFFSET || offset + len <= EMERG_WR_OFFSET)
		return;
	vdk_console_emerg_write(
		dev, ((const uint8_t *)data)[EMERG_WR_OFFSET - offset]);
}

/* Take the queues and deliver what waits (activate, wake). */
static void con_start(struct vdk_console *con, struct vdk_interrupt *irq,
		      struct vdk_virtq **queues)
{
	lock_both(con);
	con->irq = irq;
	con->rxq = queues[VDK_CONSOLE_RECEIVEQ];
	con->txq = queues[VDK_CONSOLE_TRANSMITQ];
	con->running = true;
	con->size_acked = con->has_size && (con->vdev.acked_features &
					    (1ull << VIRTIO_CONSOLE_F_SIZE));
	unlock_both(con);
	vdk_console_rx_kick(con); /* input typed before the driver was ready */
	vdk_console_tx_kick(con); /* buffers made available meanwhile */
}

static void con_stop(struct vdk_console *con)
{
	con->running = false;
	con->irq = NULL;
	con->rxq = NULL;
	con->txq = NULL;
}

static int con_activate(void *dev, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_console *con = dev;

	(void)mem; /* reached through the queues */
	lock_both(con);
	con->rx_broken = false;
	con->tx_broken = false;
	con->tx_pending = false;
	unlock_both(con);
	con_start(con, irq, queues);
	return 0;
}

static int con_reset(void *dev)
{
	struct vdk_console *con = dev;

	lock_both(con);
	if (con->tx_pending) {
		/* The queue goes away with the rest of the chain. */
		con->stats.output_dropped +=
			con->tx_chain.readable_len - con->tx_off;
		con->tx_pending = false;
	}
	con->blocked = con->out_len > con->out_off;
	con_stop(con);
	con->rx_broken = false;
	con->tx_broken = false;
	con->size_acked = false;
	unlock_both(con);
	return 0;
}

static void con_queue_notify(void *dev, uint16_t index)
{
	if (index == VDK_CONSOLE_RECEIVEQ)
		vdk_console_rx_kick(dev);
	else if (index == VDK_CONSOLE_TRANSMITQ)
		vdk_console_tx_kick(dev);
}

/* Per-queue lifecycle (virtio 1.2 §2.6.1; vhost-user ring start/stop). */
static int con_start_queue(void *dev, uint16_t index, struct vdk_virtq *q)
{
	struct vdk_console *con = dev;

	lock_both(con);
	if (index == VDK_CONSOLE_RECEIVEQ) {
		con->rxq = q;
		con->rx_broken = false;
	} else {
		con->txq = q;
		con->tx_broken = false;
	}
	unlock_both(con);
	con_queue_notify(con, index); /* buffers made available before */
	return 0;
}

static struct vdk_virtq *con_stop_queue(void *dev, uint16_t index)
{
	struct vdk_console *con = dev;
	struct vdk_virtq *q;

	lock_both(con);
	if (index == VDK_CONSOLE_RECEIVEQ) {
		q = con->rxq;
		con->rxq = NULL;
	} else {
		/* The rest of a chain being written moves to out_buf. */
		vdk_console_tx_retire(con);
		q = con->txq;
		con->txq = NULL;
	}
	unlock_both(con);
	return q;
}

/* The output fd became writable (on the loop's thread). */
static void on_output(void *opaque, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	(void)vdk_console_flush_output(opaque);
}

static int con_attach_loop(void *dev, struct vdk_loop *loop)
{
	struct vdk_console *con = dev;
	int r;

	pthread_mutex_lock(&con->tx_lock);
	con->loop = loop;
	if (con->out_fd >= 0) {
		/* Added paused; watched while output is blocked. */
		r = vdk_loop_add(loop, con->out_fd, 0, on_output, con);
		con->out_on_loop = r == 0;
		if (r < 0)
			vdk_log(VDK_LOG_INFO, MOD,
				"output fd %d not on the loop (%s): output "
				"is retried at each transmit",
				con->out_fd, strerror(-r));
	}
	vdk_console_out_watch(con);
	pthread_mutex_unlock(&con->tx_lock);
	return 0;
}

static int con_sleep(void *dev)
{
	struct vdk_console *con = dev;

	lock_both(con);
	vdk_console_tx_retire(con);
	con_stop(con);
	unlock_both(con);
	return 0;
}

static int con_wake(void *dev, const struct vdk_mem *mem,
		    struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	if (!mem || !queues)
		return 0; /* not active */
	con_start(dev, irq, queues);
	return 0;
}

/* ---- snapshot ---------------------------------------------------------- */

static const char *const snap_keys[] = {
	"input",       "output",	 "cols",	 "rows",
	"input_bytes", "input_chains",	 "output_bytes", "output_chains",
	"emerg_bytes", "output_dropped",
};
#define SNAP_KEYS  (sizeof(snap_keys) / sizeof(snap_keys[0]))
#define SNAP_STATS 4 /* index of the first counter */

static void stats_to(const struct vdk_console_stats *s, uint64_t v[6])
{
	const uint64_t vals[6] = {s->input_bytes,  s->input_chains,
				  s->output_bytes, s->output_chains,
				  s->emerg_bytes,  s->output_dropped};

	memcpy(v, vals, sizeof(vals));
}

static int con_snapshot_item(void *dev, cbor_item_t **out)
{
	struct vdk_console *con = dev;
	cbor_item_t *map = cbor_new_definite_map(SNAP_KEYS);
	uint8_t *in = malloc(con->in_len + 1u);
	uint64_t v[6];
	bool ok;

	if (!map || !in) {
		free(in);
		if (map)
			cbor_decref(&map);
		return -ENOMEM;
	}
	lock_both(con);
	for (uint32_t i = 0; i < con->in_len; i++)
		in[i] = con->in_buf[(con->in_head + i) % con->in_cap];
	stats_to(&con->stats, v);
	ok = vdk_snapshot_put(map, "input",
			      cbor_build_bytestring(in, con->in_len)) &&
	     /* the unwritten part, [out_off, out_len) */
	     vdk_snapshot_put(
		     map, "output",
		     cbor_build_bytestring(
			     con->out_buf ? con->out_buf + con->out_off : in,
			     con->out_len - con->out_off)) &&
	     vdk_snapshot_put_uint(map, "cols", con->cols) &&
	     vdk_snapshot_put_uint(map, "rows", con->rows);
	for (size_t i = SNAP_STATS; ok && i < SNAP_KEYS; i++)
		ok = vdk_snapshot_put_uint(map, snap_keys[i],
					   v[i - SNAP_STATS]);
	unlock_both(con);
	free(in);
	if (!ok) {
		cbor_decref(&map);
		return -ENOMEM;
	}
	*out = map;
	return 0;
}

static bool bytes_value(const cbor_item_t *item, size_t max, size_t *len)
{
	if (!item || !cbor_isa_bytestring(item) ||
	    !cbor_bytestring_is_definite(item) ||
	    cbor_bytestring_length(item) > max)
		return false;
	*len = cbor_bytestring_length(item);
	return true;
}

static int con_restore_item(void *dev, const cbor_item_t *item)
{
	struct vdk_console *con = dev;
	const cbor_item_t *vals[SNAP_KEYS];
	uint64_t v[SNAP_KEYS] = {0};
	size_t in_len, out_len;

	if (vdk_snapshot_map_split(item, snap_keys, SNAP_KEYS, vals) < 0 ||
	    !bytes_value(vals[0], con->in_cap, &in_len) ||
	    !bytes_value(vals[1], VDK_CONSOLE_MAX_OUTPUT_BUFFER, &out_len))
		return -EINVAL;
	for (size_t i = 2; i < SNAP_KEYS; i++)
		if (!vdk_snapshot_uint_value(
			    vals[i], i < SNAP_STATS ? UINT16_MAX : UINT64_MAX,
			    &v[i]))
			return -EINVAL;
	/* A size only if this device offers one, and never half a size. */
	if ((v[2] != 0) != con->has_size || (v[3] != 0) != con->has_size) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"snapshot size %llux%llu does not fit this device (%s)",
			(unsigned long long)v[2], (unsigned long long)v[3],
			con->has_size ? "has a size" : "has no size");
		return -EINVAL;
	}
	lock_both(con);
	if (out_len > con->out_cap) {
		uint8_t *p = realloc(con->out_buf, out_len);

		if (!p) {
			unlock_both(con);
			return -ENOMEM;
		}
		con->out_buf = p;
		con->out_cap = (uint32_t)out_len;
	}
	if (out_len)
		memcpy(con->out_buf, cbor_bytestring_handle(vals[1]), out_len);
	con->out_off = 0;
	con->out_len = (uint32_t)out_len;
	if (in_len)
		memcpy(con->in_buf, cbor_bytestring_handle(vals[0]), in_len);
	con->in_head = 0;
	con->in_len = (uint32_t)in_len;
	con->cols = (uint16_t)v[2];
	con->rows = (uint16_t)v[3];
	con->stats = (struct vdk_console_stats){
		.input_bytes = v[4],
		.input_chains = v[5],
		.output_bytes = v[6],
		.output_chains = v[7],
		.emerg_bytes = v[8],
		.output_dropped = v[9],
	};
	unlock_both(con);
	return 0;
}

static void con_destroy(void *dev)
{
	struct vdk_console *con = dev;

	if (con->out_on_loop)
		(void)vdk_loop_remove(con->loop, con->out_fd);
	pthread_mutex_destroy(&con->rx_lock);
	pthread_mutex_destroy(&con->tx_lock);
	free(con->in_buf);
	free(con->out_buf);
	free(con->rx_iov);
	free(con->tx_iov);
	free(con);
}

VDK_SNAPSHOT_BYTES_OPS(con)

static const struct vdk_device_ops console_ops = {
	.device_type = VIRTIO_ID_CONSOLE,
	.name = "console",
	.num_queues = con_num_queues,
	.queue_max_size = con_queue_max_size,
	.features = con_features,
	.read_config = con_read_config,
	.write_config = con_write_config,
	.config_size = VDK_CONSOLE_CONFIG_SIZE,
	.activate = con_activate,
	.reset = con_reset,
	.queue_notify = con_queue_notify,
	.sleep = con_sleep,
	.wake = con_wake,
	.snapshot = con_snapshot,
	.restore = con_restore,
	.destroy = con_destroy,
	.start_queue = con_start_queue,
	.stop_queue = con_stop_queue,
	.attach_loop = con_attach_loop,
};

/* ---- public API -------------------------------------------------------- */

static int console_create(struct vdk_console **out,
			  const struct vdk_console_config *cfg)
{
	const struct vdk_console_config def = {.output_fd = -1};
	struct vdk_ratelimit rl = VDK_RATELIMIT_INIT;
	struct vdk_console *con;
	uint16_t qmax;
	uint32_t in_cap;
	int ret;

	*out = NULL;
	if (!cfg)
		cfg = &def;
	qmax = cfg->queue_max_size ? cfg->queue_max_size
				   : VDK_CONSOLE_DEFAULT_QUEUE_SIZE;
	in_cap = cfg->input_buffer_size ? cfg->input_buffer_size
					: VDK_CONSOLE_DEFAULT_INPUT_BUFFER;
	if ((qmax & (qmax - 1)) || in_cap > VDK_CONSOLE_MAX_INPUT_BUFFER ||
	    (cfg->cols == 0) != (cfg->rows == 0)) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"queue size %u (a power of two), input buffer %u "
			"(at most %u), size %ux%u (both or neither)",
			qmax, in_cap, VDK_CONSOLE_MAX_INPUT_BUFFER, cfg->cols,
			cfg->rows);
		return -EINVAL;
	}
	con = calloc(1, sizeof(*con));
	if (!con)
		return -ENOMEM;
	pthread_mutex_init(&con->rx_lock, NULL);
	pthread_mutex_init(&con->tx_lock, NULL);
	con->queue_max_size = qmax;
	con->out_fd = cfg->output_fd;
	con->has_size = cfg->cols != 0;
	con->cols = cfg->cols;
	con->rows = cfg->rows;
	con->features = (1ull << VIRTIO_F_VERSION_1) |
			(1ull << VIRTIO_RING_F_INDIRECT_DESC) |
			(1ull << VIRTIO_RING_F_EVENT_IDX) |
			(1ull << VIRTIO_CONSOLE_F_EMERG_WRITE);
	if (con->has_size)
		con->features |= 1ull << VIRTIO_CONSOLE_F_SIZE;
	con->rx_rl = rl;
	con->tx_rl = rl;
	con->in_cap = in_cap;
	/* A chain has at most Queue Size descriptors (§2.7.5.3.1); each may
	 * span two guest memory regions. */
	con->iov_cap = 2u * qmax;
	con->in_buf = malloc(in_cap);
	con->rx_iov = calloc(con->iov_cap, sizeof(struct iovec));
	con->tx_iov = calloc(con->iov_cap, sizeof(struct iovec));
	if (!con->in_buf || !con->rx_iov || !con->tx_iov) {
		con_destroy(con);
		return -ENOMEM;
	}
	ret = vdk_device_init(&con->vdev, &console_ops, con);
	if (ret < 0) {
		con_destroy(con);
		return ret;
	}
	*out = con;
	return 0;
}

struct vdk_console *vdk_console_new(const struct vdk_console_config *cfg,
				    int *err)
{
	struct vdk_console *x = NULL;
	int ret = console_create(&x, cfg);

	if (err)
		*err = ret < 0 ? ret : 0;
	return ret < 0 ? NULL : x;
}

void vdk_console_free(struct vdk_console *con)
{
	if (con)
		vdk_device_fini(&con->vdev); /* frees con through destroy */
}

struct vdk_device *vdk_console_device(struct vdk_console *con)
{
	return &con->vdev;
}

int vdk_console_set_size(struct vdk_console *con, uint16_t cols, uint16_t rows)
{
	if (!con->has_size)
		return -EOPNOTSUPP;
	if (!cols || !rows)
		return -EINVAL;
	pthread_mutex_lock(&con->rx_lock);
	if (con->cols != cols || con->rows != rows) {
		con->cols = cols;
		con->rows = rows;
		if (con->running && con->size_acked)
			vdk_interrupt_signal_config_changed(con->irq);
	}
	pthread_mutex_unlock(&con->rx_lock);
	return 0;
}

struct vdk_console_stats vdk_console_stats(struct vdk_console *con)
{
	struct vdk_console_stats s;

	lock_both(con);
	s = con->stats;
	unlock_both(con);
	return s;
}
