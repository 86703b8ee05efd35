/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of virtio-net (src/devices/net*.c, virtio 1.2 §5.1) on the loopback
 * backend, driven through the driver-side library with EVENT_IDX: features
 * and configuration, transmit and receive with and without mergeable
 * buffers, offload headers, the control queue, receive filters, multiqueue,
 * link state; then the device conformance suite (snapshots, lifecycle).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include <linux/virtio_ids.h>

#include "conformance.h"
#include "net_env.h"

#define FRAME_LEN 1000

/* Pop one used rx buffer; check length and return it. */
static uint16_t pop_rx(struct net_env *e, uint16_t pair, uint32_t *len)
{
	uint16_t tok = 0xffff;

	assert_int_equal(
		vdk_driver_virtq_pop_used(&ne_rxq(e, pair)->q, &tok, len), 0);
	return tok;
}

static void test_identity(void **state)
{
	struct net_env *e = ne_new(2, 9000);
	uint64_t f = e->dev->ops->features(e->dev->impl);
	struct virtio_net_config c;
	struct vdk_net_config bad = {0};
	int err = 0;

	(void)state;
	assert_int_equal(e->dev->ops->device_type, VIRTIO_ID_NET);
	assert_int_equal(e->dev->num_queues, 5);
	assert_true(f & F(VIRTIO_NET_F_MQ));
	assert_true(f & F(VIRTIO_NET_F_MTU));
	assert_true(f & F(VIRTIO_NET_F_GUEST_TSO4));
	assert_false(f & F(VIRTIO_NET_F_HOST_UFO));
	assert_false(f & F(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS));
	ne_up(e, NET_GUEST_FEATURES);
	assert_int_equal(vdk_driver_read_config_consistent(
				 ne_tp(e), 0, &c,
				 offsetof(struct virtio_net_config, speed)),
			 0);
	assert_memory_equal(c.mac, net_mac, 6);
	assert_int_equal(le16toh(c.status), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(le16toh(c.max_virtqueue_pairs), 2);
	assert_int_equal(le16toh(c.mtu), 9000);
	ne_free(e);

	/* Configuration errors. */
	vdk_log_set_sink(net_quiet, NULL, VDK_LOG_DEBUG);
	assert_null(vdk_net_new(&bad, &err));
	assert_int_equal(err, -EINVAL);
	struct vdk_net_backend *be = vdk_net_loopback_new(1, 0, &err);
	bad.backend = be;
	bad.max_queue_pairs = VDK_NET_MAX_QUEUE_PAIRS + 1;
	assert_null(vdk_net_new(&bad, &err));
	bad.max_queue_pairs = 1;
	bad.queue_max_size = 100;
	assert_null(vdk_net_new(&bad, &err));
	bad.queue_max_size = 0;
	bad.mtu = 20;
	assert_null(vdk_net_new(&bad, &err));
	vdk_net_backend_free(be);
	assert_null(vdk_net_loopback_new(0, 0, &err));
	/* An owned backend goes with the device, also on failure (checked
	 * for leaks under ASan). */
	struct vdk_net_config own = {.own_backend = true};
	own.backend = vdk_net_loopback_new(1, 0, &err);
	struct vdk_net *n = vdk_net_new(&own, &err);
	assert_non_null(n);
	vdk_net_free(n);
	own.backend = vdk_net_loopback_new(1, 0, &err);
	own.mtu = 1;
	assert_null(vdk_net_new(&own, &err));
	vdk_log_set_sink(NULL, NULL, VDK_LOG_INFO);
	vdk_net_free(NULL);
	vdk_net_backend_free(NULL);
}

/* Offloads are offered only as the backend carries them. */
static uint64_t no_offloads(void *be)
{
	(void)be;
	return F(VIRTIO_NET_F_GUEST_TSO4); /* without GUEST_CSUM: useless */
}

static void test_offloads_follow_backend(void **state)
{
	struct vdk_net_backend *lb = vdk_net_loopback_new(1, 0, NULL);
	struct vdk_net_backend_ops ops = *lb->ops;
	struct vdk_net_backend be = {&ops, lb->impl};
	struct vdk_net_config cfg = {.backend = &be};
	struct vdk_net *n;
	uint64_t f;

	(void)state;
	ops.offloads = no_offloads;
	n = vdk_net_new(&cfg, NULL);
	assert_non_null(n);
	f = vdk_net_device(n)->ops->features(vdk_net_device(n)->impl);
	assert_false(f & (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_CSUM) |
			  F(VIRTIO_NET_F_GUEST_CSUM)));
	assert_false(f & F(VIRTIO_NET_F_MQ));
	assert_false(f & F(VIRTIO_NET_F_MTU));
	vdk_net_free(n);
	vdk_net_backend_free(lb);
}

/* A frame sent comes back on the receive queue, num_buffers = 1. */
static void test_loopback_mergeable(void **state)
{
	struct net_env *e = ne_new(1, 0);
	struct virtio_net_hdr_v1 *h, got;
	uint8_t *buf, *frame;
	uint32_t len;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	assert_true(e->neg & F(VIRTIO_RING_F_EVENT_IDX));
	buf = ne_post_rx(e, 0, 2048);
	h = ne_hdr(e);
	frame = ne_frame(e, FRAME_LEN, NULL, 1);
	ne_send(e, 0, h, frame, FRAME_LEN);
	assert_int_equal(ne_reap_tx(e, 0), 1);
	pop_rx(e, 0, &len);
	assert_int_equal(len, VDK_NET_HDR_LEN + FRAME_LEN);
	memcpy(&got, buf, sizeof(got));
	assert_int_equal(le16toh(got.num_buffers), 1);
	assert_int_equal(got.flags, 0);
	assert_int_equal(got.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_memory_equal(buf + VDK_NET_HDR_LEN, frame, FRAME_LEN);
	struct vdk_net_stats st = vdk_net_stats(e->net);
	assert_int_equal(st.tx_packets, 1);
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, FRAME_LEN);
	assert_true(e->irq_raises > 0);
	ne_free(e);
}

/* Loopback: a receive kick also serves the pair's transmitq (its frames go
 * to those buffers), so a transmitted chain whose kick the device never saw
 * is delivered once the driver adds receive buffers. */
static void test_loopback_rx_kick_serves_tx(void **state)
{
	struct net_env *e = ne_new(1, 0);
	struct virtio_net_hdr_v1 *h;
	uint8_t *buf, *frame;
	uint32_t len;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	h = ne_hdr(e);
	frame = ne_frame(e, FRAME_LEN, NULL, 3);
	struct vdk_driver_buf r[2] = {{h, VDK_NET_HDR_LEN}, {frame, FRAME_LEN}};

	assert_true(vdk_driver_virtq_add(&ne_txq(e, 0)->q, r, 2, NULL, 0) >= 0);
	assert_int_equal(ne_reap_tx(e, 0), 0); /* not kicked: not taken */
	buf = ne_post_rx(e, 0, 2048);	       /* kicks the receiveq */
	assert_int_equal(ne_reap_tx(e, 0), 1);
	pop_rx(e, 0, &len);
	assert_int_equal(len, VDK_NET_HDR_LEN + FRAME_LEN);
	assert_memory_equal(buf + VDK_NET_HDR_LEN, frame, FRAME_LEN);
	ne_free(e);
}

/* A 30000-byte TSO packet spreads over 1536-byte buffers, all published
 * at once, num_buffers in the first header; the header survives. */
static void test_mergeable_gso(void **state)
{
	struct net_env *e = ne_new(1, 0);
	const uint32_t flen = 30000, blen = 1536;
	uint32_t total = VDK_NET_HDR_LEN + flen;
	uint32_t nbufs = (total + blen - 1) / blen;
	uint8_t *bufs[32], *frame;
	struct virtio_net_hdr_v1 *h, got;
	uint32_t off = 0, len;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	/* Fewer buffers than the packet needs: it waits. */
	for (uint32_t i = 0; i < nbufs - 3; i++)
		bufs[i] = ne_post_rx(e, 0, blen);
	h = ne_hdr(e);
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h->hdr_len = htole16(54);
	h->gso_size = htole16(1448);
	h->csum_start = htole16(34);
	h->csum_offset = htole16(16);
	frame = ne_frame(e, flen, NULL, 7);
	ne_send(e, 0, h, frame, flen);
	assert_int_equal(ne_reap_tx(e, 0), 1);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	/* The rest: delivered on the kick. */
	for (uint32_t i = nbufs - 3; i < nbufs; i++)
		bufs[i] = ne_post_rx(e, 0, blen);
	for (uint32_t i = 0; i < nbufs; i++) {
		uint16_t tok = pop_rx(e, 0, &len);

		(void)tok;
		assert_int_equal(len, i + 1 < nbufs ? blen : total - off);
		off += len;
	}
	assert_int_equal(off, total);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	memcpy(&got, bufs[0], sizeof(got));
	assert_int_equal(le16toh(got.num_buffers), nbufs);
	assert_int_equal(got.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(le16toh(got.gso_size), 1448);
	assert_int_equal(got.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	/* Contents, in order across the buffers. */
	off = 0;
	for (uint32_t i = 0; i < nbufs; i++) {
		uint32_t skip = i == 0 ? VDK_NET_HDR_LEN : 0;
		uint32_t k = (i + 1 < nbufs ? blen : total - i * blen) - skip;

		assert_memory_equal(bufs[i] + skip, frame + off, k);
		off += k;
	}
	assert_int_equal(off, flen);
	ne_free(e);
}

/* Without MRG_RXBUF: one chain per packet; a packet bigger than the chain
 * is dropped and counted, the chain serves the next packet. */
static void test_no_mergeable(void **state)
{
	struct net_env *e = ne_new(1, 0);
	struct virtio_net_hdr_v1 *h;
	uint8_t *buf, *big, *small;
	uint32_t len;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES & ~F(VIRTIO_NET_F_MRG_RXBUF));
	buf = ne_post_rx(e, 0, 1526);
	h = ne_hdr(e);
	big = ne_frame(e, 4000, NULL, 3);
	ne_send(e, 0, h, big, 4000);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	assert_int_equal(vdk_net_stats(e->net).rx_dropped_no_room, 1);
	small = ne_frame(e, 1514, NULL, 4);
	ne_send(e, 0, h, small, 1514);
	pop_rx(e, 0, &len);
	assert_int_equal(len, VDK_NET_HDR_LEN + 1514);
	assert_memory_equal(buf + VDK_NET_HDR_LEN, small, 1514);
	assert_int_equal(ne_reap_tx(e, 0), 2);
	ne_free(e);
}

/* A packet with nothing to receive it waits in the loopback; a burst
 * beyond the budget is all delivered. */
static void burst(void)
{
	struct net_env *e = ne_new(1, 0);
	struct virtio_net_hdr_v1 *h;
	uint8_t *frame;
	uint32_t len;
	unsigned got = 0, sent = 0;

	ne_up(e, NET_GUEST_FEATURES);
	h = ne_hdr(e);
	frame = ne_frame(e, 60, NULL, 9);
	for (int round = 0; round < 20; round++) {
		while (vdk_driver_virtq_num_free(&ne_txq(e, 0)->q) >= 2 &&
		       sent < 1000) {
			struct vdk_driver_buf r[2] = {{h, 12}, {frame, 60}};

			assert_true(vdk_driver_virtq_add(&ne_txq(e, 0)->q, r, 2,
							 NULL, 0) >= 0);
			sent++;
		}
		while (vdk_driver_virtq_num_free(&ne_rxq(e, 0)->q) > 0) {
			uint8_t *p = ne_alloc(e, 128, 64);
			struct vdk_driver_buf w = {p, 128};

			assert_true(vdk_driver_virtq_add(&ne_rxq(e, 0)->q, NULL,
							 0, &w, 1) >= 0);
		}
		vdk_driver_virtq_kick(&ne_rxq(e, 0)->q);
		vdk_driver_virtq_kick(&ne_txq(e, 0)->q);
		ne_reap_tx(e, 0);
		while (vdk_driver_virtq_pop_used(&ne_rxq(e, 0)->q,
						 &(uint16_t){0}, &len) == 0) {
			assert_int_equal(len, 72);
			got++;
		}
		e->brk = 1u << 20; /* reuse the data area: contents unchecked */
	}
	assert_int_equal(sent, 1000);
	assert_int_equal(got, 1000);
	ne_free(e);
}

static void test_burst(void **state)
{
	(void)state;
	burst();
}

/* The same with busy polling (vdk_net_config.busy_poll_us): every packet
 * still arrives once; more than 1000 us is refused. */
static void test_burst_busy_poll(void **state)
{
	struct vdk_net_backend *be;
	struct vdk_net_config cfg = {0};
	int err = 0;

	(void)state;
	ne_busy_poll_us = 200;
	burst();
	ne_busy_poll_us = 0;
	be = vdk_net_loopback_new(1, 0, &err);
	assert_non_null(be);
	cfg.backend = be;
	cfg.busy_poll_us = 1001;
	assert_null(vdk_net_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	vdk_net_backend_free(be);
}

static void test_ctrl_commands(void **state)
{
	struct net_env *e = ne_new(2, 0);
	uint8_t on = 1, off = 0, mac2[6] = {0x52, 0x54, 0, 1, 2, 3};
	uint16_t vid = htole16(100), big = htole16(4096), p2 = htole16(2);
	struct {
		uint32_t n1;
		uint8_t u[1][6];
		uint32_t n2;
		uint8_t m[2][6];
	} __attribute__((packed))
	tbl = {htole32(1),
	       {{0x52, 0x54, 0, 9, 9, 9}},
	       htole32(2),
	       {{0x01, 0, 0x5e, 0, 0, 1}, {0x33, 0x33, 0, 0, 0, 1}}};

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_RX,
				 VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_RX,
				 VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_TABLE_SET, &tbl,
				 sizeof(tbl)),
			 VIRTIO_NET_OK);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_ADDR_SET, mac2, 6),
			 VIRTIO_NET_OK);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_VLAN,
				 VIRTIO_NET_CTRL_VLAN_ADD, &vid, 2),
			 VIRTIO_NET_OK);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_VLAN,
				 VIRTIO_NET_CTRL_VLAN_DEL, &vid, 2),
			 VIRTIO_NET_OK);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_VLAN,
				 VIRTIO_NET_CTRL_VLAN_ADD, &big, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &p2, 2),
			 VIRTIO_NET_OK);
	/* Announce: status bit, config change, cleared by the ack. */
	ne_tp(e)->ops->ack_interrupt(ne_tp(e)->ctx);
	assert_int_equal(vdk_net_announce(e->net), 0);
	assert_true(ne_tp(e)->ops->ack_interrupt(ne_tp(e)->ctx) &
		    VDK_DRIVER_INT_CONFIG);
	assert_true(ne_status(e) & VIRTIO_NET_S_ANNOUNCE);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_ANNOUNCE,
				 VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
			 VIRTIO_NET_OK);
	assert_false(ne_status(e) & VIRTIO_NET_S_ANNOUNCE);
	assert_int_equal(vdk_net_stats(e->net).ctrl_commands, 8);
	assert_int_equal(vdk_net_stats(e->net).ctrl_errors, 1);
	ne_free(e);
}

/* Receive filters: unicast to another MAC is filtered once promiscuous
 * mode is off; ours, broadcast and table entries pass; VLAN filter. */
static void test_rx_filter(void **state)
{
	struct net_env *e = ne_new(1, 0);
	static const uint8_t other[6] = {0x52, 0x54, 0, 0, 0, 0x77};
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0, 0, 0xfb};
	struct virtio_net_hdr_v1 *h;
	uint8_t off = 0, *f;
	uint16_t vid = htole16(5);
	uint32_t len;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	h = ne_hdr(e);
	for (int i = 0; i < 8; i++)
		ne_post_rx(e, 0, 2048);
	/* Default: promiscuous. */
	ne_send(e, 0, h, ne_frame(e, 100, other, 1), 100);
	pop_rx(e, 0, &len);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_RX,
				 VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
			 VIRTIO_NET_OK);
	ne_send(e, 0, h, ne_frame(e, 100, other, 1), 100);
	ne_send(e, 0, h, ne_frame(e, 100, mcast, 1), 100);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	assert_int_equal(vdk_net_stats(e->net).rx_filtered, 2);
	ne_send(e, 0, h, ne_frame(e, 100, NULL, 1), 100);
	pop_rx(e, 0, &len);
	ne_send(e, 0, h, ne_frame(e, 100, bcast, 1), 100);
	pop_rx(e, 0, &len);
	/* VLAN 5 tagged: filtered until added. */
	f = ne_frame(e, 100, NULL, 1);
	f[12] = 0x81;
	f[13] = 0x00;
	f[14] = 0;
	f[15] = 5;
	ne_send(e, 0, h, f, 100);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_VLAN,
				 VIRTIO_NET_CTRL_VLAN_ADD, &vid, 2),
			 VIRTIO_NET_OK);
	ne_send(e, 0, h, f, 100);
	pop_rx(e, 0, &len);
	assert_int_equal(vdk_net_stats(e->net).rx_filtered, 3);
	ne_free(e);
}

/* Two pairs: the second is used only after VQ_PAIRS_SET 2; each pair
 * loops back on itself. */
static void test_multiqueue(void **state)
{
	struct net_env *e = ne_new(2, 0);
	struct virtio_net_hdr_v1 *h;
	uint16_t p2 = htole16(2), p1 = htole16(1);
	uint8_t *b1, *f1;
	uint32_t len;
	uint64_t tx, rx;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	assert_int_equal(e->nq, 5);
	h = ne_hdr(e);
	b1 = ne_post_rx(e, 1, 2048);
	f1 = ne_frame(e, 200, NULL, 5);
	ne_send(e, 1, h, f1, 200);
	/* Pair 2 not enabled: untouched. */
	assert_false(vdk_driver_virtq_can_pop(&ne_txq(e, 1)->q));
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &p2, 2),
			 VIRTIO_NET_OK);
	assert_int_equal(ne_reap_tx(e, 1), 1);
	pop_rx(e, 1, &len);
	assert_int_equal(len, 212);
	assert_memory_equal(b1 + 12, f1, 200);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	/* The per-pair counters: all on pair 1, none on pair 0. */
	assert_int_equal(vdk_net_pair_stats(e->net, 0, &tx, &rx), 0);
	assert_true(tx == 0 && rx == 0);
	assert_int_equal(vdk_net_pair_stats(e->net, 1, &tx, &rx), 0);
	assert_true(tx == 1 && rx == 1);
	assert_int_equal(vdk_net_pair_stats(e->net, 2, &tx, &rx), -EINVAL);
	/* And back to one pair. */
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &p1, 2),
			 VIRTIO_NET_OK);
	ne_send(e, 1, h, f1, 200);
	assert_false(vdk_driver_virtq_can_pop(&ne_txq(e, 1)->q));
	ne_free(e);
}

/* Link down: status cleared with a config change; nothing moves. */
static void test_link(void **state)
{
	struct net_env *e = ne_new(1, 0);
	struct virtio_net_hdr_v1 *h;
	uint32_t len;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	h = ne_hdr(e);
	ne_post_rx(e, 0, 2048);
	ne_tp(e)->ops->ack_interrupt(ne_tp(e)->ctx);
	vdk_net_set_link(e->net, false);
	assert_true(ne_tp(e)->ops->ack_interrupt(ne_tp(e)->ctx) &
		    VDK_DRIVER_INT_CONFIG);
	assert_int_equal(ne_status(e), 0);
	ne_send(e, 0, h, ne_frame(e, 100, NULL, 1), 100);
	assert_int_equal(ne_reap_tx(e, 0), 1);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	assert_int_equal(vdk_net_stats(e->net).tx_dropped_backend, 1);
	vdk_net_set_link(e->net, true);
	assert_int_equal(ne_status(e), VIRTIO_NET_S_LINK_UP);
	ne_send(e, 0, h, ne_frame(e, 100, NULL, 1), 100);
	pop_rx(e, 0, &len);
	ne_free(e);
}

/* ---- conformance ----------------------------------------------------- */

static struct {
	struct vdk_net *net;
	struct vdk_net_backend *be;
} conf_devs[4];

static struct vdk_device *conf_create(void *opaque)
{
	(void)opaque;
	for (int i = 0; i < 4; i++) {
		if (conf_devs[i].net)
			continue;
		struct vdk_net_config cfg = {.queue_max_size = 64};

		conf_devs[i].be = vdk_net_loopback_new(1, 0, NULL);
		cfg.backend = conf_devs[i].be;
		conf_devs[i].net = vdk_net_new(&cfg, NULL);
		return conf_devs[i].net ? vdk_net_device(conf_devs[i].net)
					: NULL;
	}
	return NULL;
}

static void conf_destroy(struct vdk_device *dev, void *opaque)
{
	(void)opaque;
	for (int i = 0; i < 4; i++) {
		if (conf_devs[i].net &&
		    vdk_net_device(conf_devs[i].net) == dev) {
			vdk_net_free(conf_devs[i].net);
			vdk_net_backend_free(conf_devs[i].be);
			conf_devs[i].net = NULL;
			conf_devs[i].be = NULL;
		}
	}
}

/* One packet on transmitq1 (queue 1). */
static int conf_submit(struct vdk_conformance_env *env, void *opaque)
{
	uint64_t gpa = vdk_conformance_alloc(env, 12 + 60);
	uint8_t pkt[72] = {0};
	struct guest_buf b = {gpa, sizeof(pkt), false};

	(void)opaque;
	memset(pkt + 12, 0xff, 6); /* broadcast */
	if (vdk_mem_write(env->mem, gpa, pkt, sizeof(pkt)) < 0)
		return -EFAULT;
	if (guest_ring_add_chain(&env->rings[1], &b, 1) < 0)
		return -ENOSPC;
	return 1;
}

static int conf_check(struct vdk_conformance_env *env, void *opaque)
{
	uint32_t id, len;

	(void)opaque;
	if (guest_ring_get_used(&env->rings[1], &id, &len) != 1 || len != 0)
		return -EIO;
	return 0;
}

static const struct vdk_conformance net_suite = {
	.name = "net",
	.create = conf_create,
	.destroy = conf_destroy,
	.submit = conf_submit,
	.check = conf_check,
	.modify_changes_snapshot = true,
};

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_offloads_follow_backend),
		cmocka_unit_test(test_loopback_mergeable),
		cmocka_unit_test(test_loopback_rx_kick_serves_tx),
		cmocka_unit_test(test_mergeable_gso),
		cmocka_unit_test(test_no_mergeable),
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_burst_busy_poll),
		cmocka_unit_test(test_ctrl_commands),
		cmocka_unit_test(test_rx_filter),
		cmocka_unit_test(test_multiqueue),
		cmocka_unit_test(test_link),
		VDK_CONFORMANCE_TESTS(&net_suite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
