/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (virtio 1.2 §5.1): the device model — features, configuration
 * space, lifecycle, dispatch of notifications to transmit (net_tx.c),
 * receive (net_rx.c) and control (net_ctrl.c), snapshots.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/devices/net.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#include "../snapshot.h"
#include "net_internal.h"

#define FB(bit) (1ull << (bit))

/* The offloads the device can offer, if the backend carries them. */
#define NET_OFFLOADS                                                           \
	(FB(VIRTIO_NET_F_CSUM) | FB(VIRTIO_NET_F_GUEST_CSUM) |                 \
	 FB(VIRTIO_NET_F_HOST_TSO4) | FB(VIRTIO_NET_F_HOST_TSO6) |             \
	 FB(VIRTIO_NET_F_HOST_ECN) | FB(VIRTIO_NET_F_GUEST_TSO4) |             \
	 FB(VIRTIO_NET_F_GUEST_TSO6) | FB(VIRTIO_NET_F_GUEST_ECN))

/* Size of the configuration space: mac, status, max_virtqueue_pairs, mtu
 * (speed/duplex and RSS fields belong to features not offered). */
#define NET_CONFIG_SIZE offsetof(struct virtio_net_config, speed)

static const uint8_t default_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

void net_fail(struct vdk_net *n, struct vdk_virtq *q, const char *why)
{
	if (n->broken)
		return;
	n->broken = true;
	VDK_LOG_RL(&n->log_rl, VDK_LOG_WARN, NET_MOD,
		   "%s %u stopped (%s): device needs reset", why,
		   q ? q->index : 0,
		   q && vdk_virtq_is_broken(q)
			   ? vdk_virtq_strerror(vdk_virtq_error(q))
			   : "bad buffers");
	vdk_interrupt_needs_reset(n->irq);
}

void net_update_status(struct vdk_net *n, bool notify)
{
	uint16_t old = n->status;

	n->be_link =
		n->be->ops->link_up ? n->be->ops->link_up(n->be->impl) : true;
	n->status = (uint16_t)((n->status & VIRTIO_NET_S_ANNOUNCE) |
			       (net_link_ok(n) ? VIRTIO_NET_S_LINK_UP : 0));
	if (notify && n->status != old && n->running &&
	    net_has(n, VIRTIO_NET_F_STATUS))
		vdk_interrupt_signal_config_changed(n->irq);
}

/* Offer only a GSO bit together with the checksum bit it relies on
 * (§5.1.3.1: feature dependencies). */
static uint64_t offer_offloads(uint64_t be)
{
	uint64_t f = be & NET_OFFLOADS;

	if (!(f & FB(VIRTIO_NET_F_CSUM)))
		f &= ~(FB(VIRTIO_NET_F_HOST_TSO4) | FB(VIRTIO_NET_F_HOST_TSO6) |
		       FB(VIRTIO_NET_F_HOST_ECN));
	if (!(f & FB(VIRTIO_NET_F_GUEST_CSUM)))
		f &= ~(FB(VIRTIO_NET_F_GUEST_TSO4) |
		       FB(VIRTIO_NET_F_GUEST_TSO6) |
		       FB(VIRTIO_NET_F_GUEST_ECN));
	if (!(f & (FB(VIRTIO_NET_F_HOST_TSO4) | FB(VIRTIO_NET_F_HOST_TSO6))))
		f &= ~FB(VIRTIO_NET_F_HOST_ECN);
	if (!(f & (FB(VIRTIO_NET_F_GUEST_TSO4) | FB(VIRTIO_NET_F_GUEST_TSO6))))
		f &= ~FB(VIRTIO_NET_F_GUEST_ECN);
	return f;
}

/* Serve queue @idx: passes of at most VDK_NET_BUDGET chains; after each
 * pass that left work, the rest goes to the loop (net_defer()), so the
 * other queues run in between; without a loop, pass after pass. */
void net_service(struct vdk_net *n, uint16_t idx)
{
	uint16_t ctrl = net_ctrl_index(n);
	bool more;

	do {
		if (!n->running || n->broken)
			return;
		if (idx == ctrl && net_has(n, VIRTIO_NET_F_CTRL_VQ)) {
			more = net_ctrl_process(n);
		} else if (idx / 2 >= n->max_pairs) {
			return;
		} else if (idx & 1) {
			uint16_t pair = idx / 2;

			more = net_tx_process(n, pair);
			/* A backend without an fd (loopback) is polled. */
			if (!n->be->ops->fd ||
			    n->be->ops->fd(n->be->impl, pair) < 0)
				more |= net_rx_process(n, pair);
		} else {
			uint16_t pair = idx / 2;

			more = net_rx_process(n, pair);
			/* Loopback: the buffers just added are where the
			 * pair's next transmitted frames go, so its transmitq
			 * is served (and busy-polled) now, not after another
			 * kick: a loopback run otherwise slept and woke ~9000
			 * times a second (bench/README.md, bench_net.sh). */
			if (!n->be->ops->fd ||
			    n->be->ops->fd(n->be->impl, pair) < 0)
				more |= net_tx_process(n, pair);
		}
	} while (more && !net_defer(n, idx));
}

/* ---- ops -------------------------------------------------------------- */

static uint16_t net_num_queues(void *dev)
{
	struct vdk_net *n = dev;

	return (uint16_t)(2 * n->max_pairs + 1);
}

static uint16_t net_queue_max_size(void *dev, uint16_t index)
{
	(void)index;
	return ((struct vdk_net *)dev)->qmax;
}

static uint64_t net_features(void *dev)
{
	struct vdk_net *n = dev;
	uint64_t f = FB(VIRTIO_F_VERSION_1) | FB(VIRTIO_RING_F_INDIRECT_DESC) |
		     FB(VIRTIO_RING_F_EVENT_IDX) | FB(VIRTIO_NET_F_MAC) |
		     FB(VIRTIO_NET_F_STATUS) | FB(VIRTIO_NET_F_MRG_RXBUF) |
		     FB(VIRTIO_NET_F_CTRL_VQ) | FB(VIRTIO_NET_F_CTRL_RX) |
		     FB(VIRTIO_NET_F_CTRL_VLAN) |
		     FB(VIRTIO_NET_F_CTRL_MAC_ADDR) |
		     FB(VIRTIO_NET_F_GUEST_ANNOUNCE) | n->offloads;

	if (n->mtu)
		f |= FB(VIRTIO_NET_F_MTU);
	if (n->max_pairs > 1)
		f |= FB(VIRTIO_NET_F_MQ);
	return f;
}

static void net_ack_features(void *dev, uint64_t features)
{
	((struct vdk_net *)dev)->features = features;
}

static void net_read_config(void *dev, uint32_t offset, void *data,
			    uint32_t len)
{
	struct vdk_net *n = dev;
	struct virtio_net_config c;

	memset(&c, 0, sizeof(c));
	memcpy(c.mac, n->mac, 6);
	c.status = htole16(n->status);
	c.max_virtqueue_pairs = htole16(n->max_pairs);
	c.mtu = htole16(n->mtu);
	memcpy(data, (uint8_t *)&c + offset, len);
}

static void rx_forget(struct vdk_net *n)
{
	for (uint16_t p = 0; p < n->max_pairs; p++) {
		n->rx[p].len = n->rx[p].done = 0;
		n->rx[p].nchains = 0;
		n->rx[p].spare = false;
		n->rx[p].dn = 0;
	}
}

static int net_start(struct vdk_net *n, const struct vdk_mem *mem,
		     struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	n->mem = mem;
	n->irq = irq;
	for (uint16_t i = 0; i < n->vdev.num_queues; i++)
		n->queues[i] = queues[i];
	n->running = true;
	net_update_status(n, false);
	/* Buffers and packets that were waiting. */
	for (uint16_t i = 0; i < n->vdev.num_queues; i++)
		if (n->queues[i])
			net_service(n, i);
	return 0;
}

static int net_activate(void *dev, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_net *n = dev;
	int ret;

	if (n->be->ops->set_offloads) {
		ret = n->be->ops->set_offloads(n->be->impl, n->features);
		if (ret < 0)
			return ret;
	}
	/* §5.1.6.5.5: one pair until VQ_PAIRS_SET; without a control queue
	 * every pair the transport starts (net_pair_enabled()). */
	n->cur_pairs = 1;
	if (n->be->ops->set_queue_pairs) {
		ret = n->be->ops->set_queue_pairs(
			n->be->impl,
			net_has(n, VIRTIO_NET_F_CTRL_VQ) ? 1 : n->max_pairs);
		if (ret < 0)
			return ret;
	}
	n->broken = false;
	net_ctrl_reset(n);
	rx_forget(n);
	return net_start(n, mem, irq, queues);
}

static void net_stop(struct vdk_net *n)
{
	for (uint16_t p = 0; p < n->max_pairs; p++)
		net_rx_unwatch(n, p);
	n->pending = 0;
	n->running = false;
	n->irq = NULL;
	n->mem = NULL;
	memset(n->queues, 0, sizeof(n->queues));
}

static int net_reset(void *dev)
{
	struct vdk_net *n = dev;

	net_stop(n);
	rx_forget(n);
	n->broken = false;
	n->features = 0;
	n->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
	net_ctrl_reset(n);
	return 0;
}

static void net_queue_notify(void *dev, uint16_t index)
{
	struct vdk_net *n = dev;

	if (index < n->vdev.num_queues)
		net_service(n, index);
}

static int net_sleep(void *dev)
{
	struct vdk_net *n = dev;

	if (n->running && !n->broken)
		for (uint16_t p = 0; p < n->max_pairs; p++)
			net_rx_abort(n, p);
	net_stop(n);
	return 0;
}

static int net_wake(void *dev, const struct vdk_mem *mem,
		    struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_net *n = dev;

	if (!mem)
		return 0; /* not active */
	return net_start(n, mem, irq, queues);
}

/* Snapshot keys, in serialisation order. */
enum {
	SNAP_MAC,
	SNAP_LINK,
	SNAP_STATUS,
	SNAP_PAIRS,
	SNAP_PROMISC,
	SNAP_ALLMULTI,
	SNAP_UNI,
	SNAP_MULTI,
	SNAP_UNI_OVERFLOW,
	SNAP_MULTI_OVERFLOW,
	SNAP_VLANS,
	SNAP_STATS,
	SNAP_KEYS
};
static const char *const snap_keys[SNAP_KEYS] = {
	[SNAP_MAC] = "mac",
	[SNAP_LINK] = "link",
	[SNAP_STATUS] = "status",
	[SNAP_PAIRS] = "pairs",
	[SNAP_PROMISC] = "promisc",
	[SNAP_ALLMULTI] = "allmulti",
	[SNAP_UNI] = "uni",
	[SNAP_MULTI] = "multi",
	[SNAP_UNI_OVERFLOW] = "uni_overflow",
	[SNAP_MULTI_OVERFLOW] = "multi_overflow",
	[SNAP_VLANS] = "vlans",
	[SNAP_STATS] = "stats",
};

#define NET_NSTATS (sizeof(struct vdk_net_stats) / sizeof(uint64_t))

static int net_snapshot_item(void *dev, cbor_item_t **out)
{
	struct vdk_net *n = dev;
	cbor_item_t *m = cbor_new_definite_map(SNAP_KEYS);
	cbor_item_t *st = cbor_new_definite_array(NET_NSTATS);
	uint64_t sv[NET_NSTATS];
	bool ok = m && st;

	memcpy(sv, &n->stats, sizeof(sv));
	for (size_t i = 0; ok && i < NET_NSTATS; i++)
		ok = cbor_array_push(st, cbor_move(vdk_snapshot_uint(sv[i])));
	ok = ok &&
	     vdk_snapshot_put(m, snap_keys[SNAP_MAC],
			      cbor_build_bytestring(n->mac, 6)) &&
	     vdk_snapshot_put(m, snap_keys[SNAP_LINK],
			      cbor_build_bool(n->link_set)) &&
	     vdk_snapshot_put_uint(m, snap_keys[SNAP_STATUS], n->status) &&
	     vdk_snapshot_put_uint(m, snap_keys[SNAP_PAIRS], n->cur_pairs) &&
	     vdk_snapshot_put(m, snap_keys[SNAP_PROMISC],
			      cbor_build_bool(n->promisc)) &&
	     vdk_snapshot_put(m, snap_keys[SNAP_ALLMULTI],
			      cbor_build_bool(n->allmulti)) &&
	     vdk_snapshot_put(m, snap_keys[SNAP_UNI],
			      cbor_build_bytestring(n->uni[0], n->uni_n * 6)) &&
	     vdk_snapshot_put(
		     m, snap_keys[SNAP_MULTI],
		     cbor_build_bytestring(n->multi[0], n->multi_n * 6)) &&
	     vdk_snapshot_put(m, snap_keys[SNAP_UNI_OVERFLOW],
			      cbor_build_bool(n->uni_overflow)) &&
	     vdk_snapshot_put(m, snap_keys[SNAP_MULTI_OVERFLOW],
			      cbor_build_bool(n->multi_overflow)) &&
	     vdk_snapshot_put(
		     m, snap_keys[SNAP_VLANS],
		     cbor_build_bytestring(n->vlans, sizeof(n->vlans))) &&
	     vdk_snapshot_put(m, snap_keys[SNAP_STATS], cbor_incref(st));
	if (st)
		cbor_decref(&st);
	if (!ok) {
		if (m)
			cbor_decref(&m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

/* A definite byte string of @max bytes at most, a multiple of @unit. */
static bool snap_bytes(const cbor_item_t *it, size_t max, size_t unit,
		       const uint8_t **p, size_t *len)
{
	if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
		return false;
	*len = cbor_bytestring_length(it);
	*p = cbor_bytestring_handle(it);
	return *len <= max && *len % unit == 0 && (*len == 0 || *p);
}

static bool snap_bool(const cbor_item_t *it, bool *out)
{
	if (!cbor_isa_float_ctrl(it) || !cbor_is_bool(it))
		return false;
	*out = cbor_get_bool(it);
	return true;
}

static int net_restore_item(void *dev, const cbor_item_t *item)
{
	struct vdk_net *n = dev;
	const cbor_item_t *v[SNAP_KEYS];
	const uint8_t *mac, *uni, *multi, *vlans;
	size_t maclen, unilen, multilen, vlanlen;
	uint64_t status, pairs, sv[NET_NSTATS];
	bool link, promisc, allmulti, uo, mo;

	if (vdk_snapshot_map_split(item, snap_keys, SNAP_KEYS, v) < 0 ||
	    !snap_bytes(v[SNAP_MAC], 6, 6, &mac, &maclen) || maclen != 6 ||
	    !snap_bool(v[SNAP_LINK], &link) ||
	    !vdk_snapshot_uint_value(
		    v[SNAP_STATUS],
		    VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE, &status) ||
	    !vdk_snapshot_uint_value(v[SNAP_PAIRS], n->max_pairs, &pairs) ||
	    pairs < 1 || !snap_bool(v[SNAP_PROMISC], &promisc) ||
	    !snap_bool(v[SNAP_ALLMULTI], &allmulti) ||
	    !snap_bytes(v[SNAP_UNI], sizeof(n->uni), 6, &uni, &unilen) ||
	    !snap_bytes(v[SNAP_MULTI], sizeof(n->multi), 6, &multi,
			&multilen) ||
	    !snap_bool(v[SNAP_UNI_OVERFLOW], &uo) ||
	    !snap_bool(v[SNAP_MULTI_OVERFLOW], &mo) ||
	    !snap_bytes(v[SNAP_VLANS], sizeof(n->vlans), 1, &vlans, &vlanlen) ||
	    vlanlen != sizeof(n->vlans) || !cbor_isa_array(v[SNAP_STATS]) ||
	    !cbor_array_is_definite(v[SNAP_STATS]) ||
	    cbor_array_size(v[SNAP_STATS]) != NET_NSTATS)
		return -EINVAL;
	for (size_t i = 0; i < NET_NSTATS; i++) {
		cbor_item_t *e = cbor_array_get(v[SNAP_STATS], i);
		bool ok = e && vdk_snapshot_uint_value(e, UINT64_MAX, &sv[i]);

		if (e)
			cbor_decref(&e);
		if (!ok)
			return -EINVAL;
	}
	memcpy(n->mac, mac, 6);
	n->link_set = link;
	n->status = (uint16_t)status;
	n->cur_pairs = (uint16_t)pairs;
	n->promisc = promisc;
	n->allmulti = allmulti;
	memcpy(n->uni, uni, unilen);
	n->uni_n = (uint32_t)(unilen / 6);
	memcpy(n->multi, multi, multilen);
	n->multi_n = (uint32_t)(multilen / 6);
	n->uni_overflow = uo;
	n->multi_overflow = mo;
	memcpy(n->vlans, vlans, sizeof(n->vlans));
	memcpy(&n->stats, sv, sizeof(sv));
	return 0;
}

VDK_SNAPSHOT_BYTES_OPS(net)

static int net_start_queue(void *dev, uint16_t index, struct vdk_virtq *q)
{
	struct vdk_net *n = dev;

	n->queues[index] = q;
	net_service(n, index); /* buffers made available before */
	return 0;
}

static struct vdk_virtq *net_stop_queue(void *dev, uint16_t index)
{
	struct vdk_net *n = dev;
	struct vdk_virtq *q = n->queues[index];

	if (!q)
		return NULL;
	if (!(index & 1) && index / 2 < n->max_pairs &&
	    index != net_ctrl_index(n)) {
		/* Give back what is held for a half-delivered packet. */
		if (!n->broken)
			net_rx_abort(n, index / 2);
		net_rx_unwatch(n, index / 2);
	}
	n->queues[index] = NULL;
	return q;
}

static void net_destroy(void *dev)
{
	struct vdk_net *n = dev;

	net_detach_loop(n);
	for (uint16_t p = 0; p < VDK_NET_MAX_QUEUE_PAIRS; p++)
		net_rx_state_fini(&n->rx[p]);
	if (n->own_be)
		vdk_net_backend_free(n->be);
	free(n->iov);
	free(n->tx_iov);
	free(n->ctrl_iov);
	free(n);
}

static const struct vdk_device_ops net_ops = {
	.device_type = VIRTIO_ID_NET,
	.name = "net",
	.num_queues = net_num_queues,
	.queue_max_size = net_queue_max_size,
	.features = net_features,
	.ack_features = net_ack_features,
	.read_config = net_read_config,
	.config_size = NET_CONFIG_SIZE,
	.activate = net_activate,
	.reset = net_reset,
	.queue_notify = net_queue_notify,
	.sleep = net_sleep,
	.wake = net_wake,
	.snapshot = net_snapshot,
	.restore = net_restore,
	.destroy = net_destroy,
	.start_queue = net_start_queue,
	.stop_queue = net_stop_queue,
	.attach_loop = net_attach_loop,
};

/* ---- public API --------------------------------------------------------- */

static struct vdk_net *net_new(const struct vdk_net_config *cfg, int *err)
{
	static const uint8_t zero[6];
	struct vdk_ratelimit rl = VDK_RATELIMIT_INIT;
	uint16_t pairs, qmax;
	struct vdk_net *n;
	int ret = -ENOMEM;

	if (!cfg || !cfg->backend || !cfg->backend->ops ||
	    !cfg->backend->ops->send || !cfg->backend->ops->recv)
		goto bad;
	pairs = cfg->max_queue_pairs ? cfg->max_queue_pairs : 1;
	qmax = cfg->queue_max_size ? cfg->queue_max_size
				   : VDK_NET_DEFAULT_QUEUE_SIZE;
	if (pairs > VDK_NET_MAX_QUEUE_PAIRS || (qmax & (qmax - 1)) ||
	    (cfg->mtu && cfg->mtu < 68) || cfg->busy_poll_us > 1000)
		goto bad;
	n = calloc(1, sizeof(*n));
	if (!n)
		goto fail;
	n->be = cfg->backend;
	n->own_be = cfg->own_backend;
	n->more_fd = -1;
	n->link_timer = -1;
	n->max_pairs = pairs;
	n->cur_pairs = 1;
	n->mtu = cfg->mtu;
	n->qmax = qmax;
	n->busy_poll_us = cfg->busy_poll_us;
	n->log_rl = rl;
	n->link_set = true;
	n->be_link = true;
	memcpy(n->mac, memcmp(cfg->mac, zero, 6) ? cfg->mac : default_mac, 6);
	n->offloads = offer_offloads(
		n->be->ops->offloads ? n->be->ops->offloads(n->be->impl) : 0);
	/* A buffer that spans two memory regions takes two iovecs. */
	n->iov_cap = 2u * qmax;
	n->iov = calloc(n->iov_cap, sizeof(*n->iov));
	n->tx_iov = calloc(n->iov_cap + 1, sizeof(*n->tx_iov));
	n->ctrl_iov = calloc(n->iov_cap, sizeof(*n->ctrl_iov));
	if (!n->iov || !n->tx_iov || !n->ctrl_iov)
		goto free;
	for (uint16_t p = 0; p < pairs; p++)
		if (net_rx_state_init(&n->rx[p], qmax, n->iov_cap) < 0)
			goto free;
	net_ctrl_reset(n);
	net_update_status(n, false);
	ret = vdk_device_init(&n->vdev, &net_ops, n);
	if (ret < 0)
		goto free;
	return n;
free:
	net_destroy(n); /* frees an owned backend */
	goto out;
bad:
	ret = -EINVAL;
	vdk_log(VDK_LOG_ERROR, NET_MOD, "bad configuration");
	if (cfg && cfg->own_backend)
		vdk_net_backend_free(cfg->backend);
	goto out;
fail:
	if (cfg->own_backend)
		vdk_net_backend_free(cfg->backend);
out:
	if (err)
		*err = ret;
	return NULL;
}

/* cfg->backend NULL: open the backend cfg->backend_type names (settings
 * "tap", "tap-fd", "loopback"), which the device then owns. */
static struct vdk_net *net_new_with_backend(const struct vdk_net_config *cfg,
					    int *err)
{
	struct vdk_net_config c = *cfg;
	int ret = -EINVAL;

	c.tap.pairs = cfg->max_queue_pairs ? cfg->max_queue_pairs : 1;
	if (c.tap.ifname) /* a zeroed fd 0 must not be taken (and closed) */
		c.tap.fd = -1;
	if (cfg->backend_type == VDK_NET_BACKEND_TAP)
		c.backend = vdk_net_tap_new(&c.tap, &ret); /* closes tap.fd */
	else if (cfg->backend_type == VDK_NET_BACKEND_LOOPBACK)
		c.backend = vdk_net_loopback_new(c.tap.pairs, 0, &ret);
	if (!c.backend) {
		vdk_log(VDK_LOG_ERROR, NET_MOD,
			"cannot open the %s backend: %s",
			cfg->backend_type == VDK_NET_BACKEND_TAP ? "tap"
								 : "loopback",
			strerror(-ret));
		if (err)
			*err = ret;
		return NULL;
	}
	c.own_backend = true;
	return net_new(&c, err);
}

struct vdk_net *vdk_net_new(const struct vdk_net_config *cfg, int *err)
{
	if (cfg && !cfg->backend && cfg->backend_type != VDK_NET_BACKEND_NONE)
		return net_new_with_backend(cfg, err);
	return net_new(cfg, err);
}

void vdk_net_free(struct vdk_net *net)
{
	if (net)
		vdk_device_fini(&net->vdev);
}

struct vdk_device *vdk_net_device(struct vdk_net *net)
{
	return &net->vdev;
}

struct vdk_net_stats vdk_net_stats(const struct vdk_net *net)
{
	return net->stats;
}

int vdk_net_pair_stats(const struct vdk_net *net, uint16_t pair,
		       uint64_t *tx_packets, uint64_t *rx_packets)
{
	if (pair >= net->max_pairs)
		return -EINVAL;
	*tx_packets = net->pair_tx_packets[pair];
	*rx_packets = net->pair_rx_packets[pair];
	return 0;
}

void vdk_net_set_link(struct vdk_net *net, bool up)
{
	net->link_set = up;
	net_update_status(net, true);
	if (net_link_ok(net))
		vdk_net_poll(net);
}

void vdk_net_check_link(struct vdk_net *net)
{
	bool was = net_link_ok(net);

	net_update_status(net, true);
	if (!was && net_link_ok(net))
		vdk_net_poll(net);
}

int vdk_net_announce(struct vdk_net *net)
{
	if (!net->running || !net_has(net, VIRTIO_NET_F_GUEST_ANNOUNCE))
		return -EOPNOTSUPP;
	net->status |= VIRTIO_NET_S_ANNOUNCE;
	if (net_has(net, VIRTIO_NET_F_STATUS))
		vdk_interrupt_signal_config_changed(net->irq);
	return 0;
}

void vdk_net_poll(struct vdk_net *net)
{
	if (!net->running)
		return;
	for (uint16_t p = 0; p < net->max_pairs; p++)
		if (net_pair_enabled(net, p))
			net_service(net, (uint16_t)(2 * p));
}
