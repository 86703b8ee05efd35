/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net against a hostile driver (include/vdk/devices/net.h lists
 * what the device does with each case): transmit headers that lie about
 * the packet, offloads not negotiated, malformed transmit chains, receive
 * chains too short for the header or readable, packets no buffer layout
 * can hold, control commands with bad class, command or length, queue
 * pair counts out of range. Each has its defined result, and the device
 * carries on (or stops with DEVICE_NEEDS_RESET) without forwarding
 * anything it did not check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "net_env.h"

/* A good TSO4 header for a frame of @len bytes. */
static void tso_hdr(struct virtio_net_hdr_v1 *h, uint32_t len)
{
	(void)len;
	memset(h, 0, sizeof(*h));
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h->hdr_len = htole16(54);
	h->gso_size = htole16(1448);
	h->csum_start = htole16(34);
	h->csum_offset = htole16(16);
}

/* Send @h + a 3000-byte frame; expect it dropped as a bad header, then a
 * good packet still goes through. */
static void expect_tx_drop(struct net_env *e, const struct virtio_net_hdr_v1 *h,
			   uint32_t len)
{
	struct vdk_net_stats before = vdk_net_stats(e->net), after;
	struct virtio_net_hdr_v1 *gh = ne_hdr(e), *good = ne_hdr(e);
	uint8_t *frame = ne_frame(e, len, NULL, 2);
	uint32_t got;

	memcpy(gh, h, sizeof(*h));
	ne_send(e, 0, gh, frame, len);
	assert_int_equal(ne_reap_tx(e, 0), 1);
	after = vdk_net_stats(e->net);
	assert_int_equal(after.tx_dropped_header, before.tx_dropped_header + 1);
	assert_int_equal(after.tx_packets, before.tx_packets);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	/* The queue goes on. */
	ne_send(e, 0, good, frame, 100);
	assert_int_equal(ne_reap_tx(e, 0), 1);
	assert_int_equal(vdk_driver_virtq_pop_used(&ne_rxq(e, 0)->q,
						   &(uint16_t){0}, &got),
			 0);
	assert_int_equal(got, 112);
	ne_post_rx(e, 0, 4096);
}

static struct net_env *up_with_rx(uint64_t features)
{
	struct net_env *e = ne_new(1, 0);

	ne_up(e, features);
	ne_post_rx(e, 0, 4096);
	ne_post_rx(e, 0, 4096);
	return e;
}

static void test_tx_header_lies(void **state)
{
	struct net_env *e = up_with_rx(NET_GUEST_FEATURES);
	struct virtio_net_hdr_v1 h;

	(void)state;
	/* hdr_len beyond the packet. */
	tso_hdr(&h, 3000);
	h.hdr_len = htole16(3001);
	expect_tx_drop(e, &h, 3000);
	/* gso_size 0, and not smaller than the packet. */
	tso_hdr(&h, 3000);
	h.gso_size = 0;
	expect_tx_drop(e, &h, 3000);
	tso_hdr(&h, 3000);
	h.gso_size = htole16(3000);
	expect_tx_drop(e, &h, 3000);
	/* Checksum field beyond the packet (start + offset + 2 > len), and
	 * at the 16-bit maxima (no overflow). */
	tso_hdr(&h, 3000);
	h.csum_start = htole16(2990);
	h.csum_offset = htole16(9);
	expect_tx_drop(e, &h, 3000);
	tso_hdr(&h, 3000);
	h.csum_start = htole16(0xffff);
	h.csum_offset = htole16(0xffff);
	expect_tx_drop(e, &h, 3000);
	/* GSO without NEEDS_CSUM. */
	tso_hdr(&h, 3000);
	h.flags = 0;
	expect_tx_drop(e, &h, 3000);
	/* Receive-only flags, unknown flags. */
	memset(&h, 0, sizeof(h));
	h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	expect_tx_drop(e, &h, 3000);
	h.flags = 0x80;
	expect_tx_drop(e, &h, 3000);
	/* Unknown and UFO GSO types; ECN on a non-GSO packet. */
	memset(&h, 0, sizeof(h));
	h.gso_type = 7;
	expect_tx_drop(e, &h, 3000);
	tso_hdr(&h, 3000);
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	expect_tx_drop(e, &h, 3000);
	memset(&h, 0, sizeof(h));
	h.gso_type = VIRTIO_NET_HDR_GSO_ECN;
	expect_tx_drop(e, &h, 3000);
	/* A frame shorter than an Ethernet header. */
	memset(&h, 0, sizeof(h));
	expect_tx_drop(e, &h, 10);
	ne_free(e);
}

/* GSO and checksum offloads the driver did not negotiate. */
static void test_tx_offload_not_negotiated(void **state)
{
	struct net_env *e =
		up_with_rx(NET_GUEST_FEATURES & ~(F(VIRTIO_NET_F_HOST_TSO6) |
						  F(VIRTIO_NET_F_HOST_ECN)));
	struct virtio_net_hdr_v1 h;

	(void)state;
	tso_hdr(&h, 3000);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	expect_tx_drop(e, &h, 3000);
	tso_hdr(&h, 3000);
	h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
	expect_tx_drop(e, &h, 3000);
	ne_free(e);

	e = up_with_rx(NET_GUEST_FEATURES &
		       ~(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) |
			 F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_ECN)));
	memset(&h, 0, sizeof(h));
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = htole16(34);
	h.csum_offset = htole16(16);
	expect_tx_drop(e, &h, 3000);
	tso_hdr(&h, 3000);
	expect_tx_drop(e, &h, 3000);
	ne_free(e);
}

/* Transmit chains: shorter than the header, with a writable part, longer
 * than the largest packet. */
static void test_tx_bad_chains(void **state)
{
	struct net_env *e = up_with_rx(NET_GUEST_FEATURES);
	struct dq *q = ne_txq(e, 0);
	uint8_t *p = ne_alloc(e, 70000, 16), *w = ne_alloc(e, 64, 16);
	struct vdk_driver_buf r = {p, 8}, wb = {w, 64};
	struct vdk_driver_buf big[2] = {{p, 40000}, {p, 30000}};

	(void)state;
	memset(p, 0, 70000);
	assert_true(vdk_driver_virtq_add(&q->q, &r, 1, NULL, 0) >= 0);
	r.len = 100;
	assert_true(vdk_driver_virtq_add(&q->q, &r, 1, &wb, 1) >= 0);
	assert_true(vdk_driver_virtq_add(&q->q, big, 2, NULL, 0) >= 0);
	vdk_driver_virtq_kick(&q->q);
	assert_int_equal(ne_reap_tx(e, 0), 3);
	assert_int_equal(vdk_net_stats(e->net).tx_dropped_header, 3);
	assert_int_equal(vdk_net_stats(e->net).tx_packets, 0);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	assert_false(vdk_driver_needs_reset(ne_tp(e)));
	ne_free(e);
}

/* A received GSO packet for a guest that did not negotiate GUEST_TSO4 (it
 * did HOST_TSO4, so the loopback carries one): dropped, not delivered with
 * a header the guest cannot take. */
static void test_rx_offload_not_negotiated(void **state)
{
	struct net_env *e =
		up_with_rx(NET_GUEST_FEATURES & ~(F(VIRTIO_NET_F_GUEST_TSO4) |
						  F(VIRTIO_NET_F_GUEST_TSO6) |
						  F(VIRTIO_NET_F_GUEST_ECN)));
	struct virtio_net_hdr_v1 *h = ne_hdr(e);

	(void)state;
	tso_hdr(h, 3000);
	ne_send(e, 0, h, ne_frame(e, 3000, NULL, 1), 3000);
	assert_int_equal(ne_reap_tx(e, 0), 1);
	assert_int_equal(vdk_net_stats(e->net).tx_packets, 1);
	assert_int_equal(vdk_net_stats(e->net).rx_dropped_header, 1);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	ne_free(e);

	/* NEEDS_CSUM without GUEST_CSUM likewise. */
	e = up_with_rx(NET_GUEST_FEATURES & ~(F(VIRTIO_NET_F_GUEST_CSUM) |
					      F(VIRTIO_NET_F_GUEST_TSO4) |
					      F(VIRTIO_NET_F_GUEST_TSO6) |
					      F(VIRTIO_NET_F_GUEST_ECN)));
	h = ne_hdr(e);
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = htole16(34);
	h->csum_offset = htole16(16);
	ne_send(e, 0, h, ne_frame(e, 300, NULL, 1), 300);
	assert_int_equal(vdk_net_stats(e->net).rx_dropped_header, 1);
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	ne_free(e);
}

/* A receive buffer that overlaps the frame being sent (the loopback copies
 * guest memory straight into guest memory), the frame @at bytes into the
 * buffer: delivered as sent, the copy is a memmove (an overlapping memcpy
 * is undefined; fuzz_net found it). */
static void rx_overlaps_tx(size_t at)
{
	struct net_env *e = ne_new(1, 0);
	struct virtio_net_hdr_v1 *h;
	uint8_t *p, want[1000];
	uint16_t tok;
	uint32_t got;

	ne_up(e, NET_GUEST_FEATURES);
	p = ne_post_rx(e, 0, 2048);
	memcpy(want, ne_frame(e, sizeof(want), NULL, 3), sizeof(want));
	memcpy(p + at, want, sizeof(want));
	h = ne_hdr(e);
	ne_send(e, 0, h, p + at, sizeof(want));
	assert_int_equal(ne_reap_tx(e, 0), 1);
	assert_int_equal(vdk_net_stats(e->net).rx_packets, 1);
	assert_int_equal(
		vdk_driver_virtq_pop_used(&ne_rxq(e, 0)->q, &tok, &got), 0);
	assert_int_equal(got, VDK_NET_HDR_LEN + sizeof(want));
	assert_memory_equal(p + VDK_NET_HDR_LEN, want, sizeof(want));
	ne_free(e);
}

/* The frame 8 bytes after where the device writes it. */
static void test_rx_overlaps_tx(void **state)
{
	(void)state;
	rx_overlaps_tx(VDK_NET_HDR_LEN + 8);
}

/* The frame 4 bytes into the buffer: the received header's place covers
 * its first 8 bytes, so the frame must be moved before the header is
 * written. */
static void test_rx_overlaps_tx_header(void **state)
{
	(void)state;
	rx_overlaps_tx(4);
}

/* Receive chains that break §5.1.6.3.1: DEVICE_NEEDS_RESET, nothing
 * written, the device does nothing more until reset; then it works. */
static void rx_bad_chain(bool readable, bool mergeable)
{
	struct net_env *e = ne_new(1, 0);
	uint64_t f = NET_GUEST_FEATURES;
	uint8_t *p, *ro;
	struct virtio_net_hdr_v1 *h;

	if (!mergeable)
		f &= ~F(VIRTIO_NET_F_MRG_RXBUF);
	ne_up(e, f);
	p = ne_alloc(e, 64, 16);
	ro = ne_alloc(e, 16, 16);
	memset(p, 0xee, 64);
	struct vdk_driver_buf w = {p, readable ? 64 : 11}, r = {ro, 16};
	assert_true(vdk_driver_virtq_add(&ne_rxq(e, 0)->q, &r, readable ? 1 : 0,
					 &w, 1) >= 0);
	vdk_driver_virtq_kick(&ne_rxq(e, 0)->q);
	h = ne_hdr(e);
	ne_send(e, 0, h, ne_frame(e, 100, NULL, 1), 100);
	assert_true(vdk_driver_needs_reset(ne_tp(e)));
	assert_false(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	for (int i = 0; i < 64; i++)
		assert_int_equal(p[i], 0xee);
	/* Stopped: the next transmit is not even taken. */
	ne_send(e, 0, h, ne_frame(e, 100, NULL, 1), 100);
	assert_int_equal(ne_reap_tx(e, 0), 1);
	/* Reset and start again: it works. */
	memset(e->dq, 0, sizeof(e->dq));
	e->brk = 0;
	ne_up(e, f);
	ne_post_rx(e, 0, 2048);
	h = ne_hdr(e);
	ne_send(e, 0, h, ne_frame(e, 100, NULL, 1), 100);
	assert_true(vdk_driver_virtq_can_pop(&ne_rxq(e, 0)->q));
	ne_free(e);
}

static void test_rx_chain_too_short(void **state)
{
	(void)state;
	rx_bad_chain(false, true);
	rx_bad_chain(false, false);
}

static void test_rx_chain_readable(void **state)
{
	(void)state;
	rx_bad_chain(true, true);
	rx_bad_chain(true, false);
}

/* Mergeable buffers too small for a packet even all together: the packet
 * is dropped and every buffer comes back with 0 bytes. */
static void test_rx_whole_queue_too_small(void **state)
{
	struct net_env *e = ne_new(1, 0);
	struct virtio_net_hdr_v1 *h;
	uint32_t len;
	unsigned back = 0;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	for (int i = 0; i < QSIZE; i++)
		ne_post_rx(e, 0, 16);
	h = ne_hdr(e);
	ne_send(e, 0, h, ne_frame(e, 3000, NULL, 1), 3000);
	while (vdk_driver_virtq_pop_used(&ne_rxq(e, 0)->q, &(uint16_t){0},
					 &len) == 0) {
		assert_int_equal(len, 0);
		back++;
	}
	assert_int_equal(back, QSIZE);
	assert_int_equal(vdk_net_stats(e->net).rx_dropped_no_room, 1);
	assert_false(vdk_driver_needs_reset(ne_tp(e)));
	ne_free(e);
}

static void test_ctrl_bad_commands(void **state)
{
	struct net_env *e = ne_new(2, 0);
	uint8_t b2[2] = {1, 1}, mac5[5] = {0};
	uint16_t p0 = htole16(0), p3 = htole16(3), p8000 = htole16(0x8000);
	struct {
		uint32_t n;
		uint8_t a[6];
	} __attribute__((packed)) lying = {htole32(1000), {0}};
	struct {
		uint32_t n1, n2;
		uint8_t extra;
	} __attribute__((packed)) trailing = {0, 0, 7};

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	/* Unknown class and command; offered-but-absent classes. */
	assert_int_equal(ne_ctrl(e, 99, 0, NULL, 0), VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_GUEST_OFFLOADS, 0, b2, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_RX, 7, b2, 1),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_RX,
				 VIRTIO_NET_CTRL_RX_NOBCAST, b2, 1),
			 VIRTIO_NET_ERR);
	/* Wrong lengths. */
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_RX,
				 VIRTIO_NET_CTRL_RX_PROMISC, b2, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_RX,
				 VIRTIO_NET_CTRL_RX_PROMISC, NULL, 0),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_ADDR_SET, mac5, 5),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_TABLE_SET, &lying,
				 sizeof(lying)),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_TABLE_SET, &trailing,
				 sizeof(trailing)),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_VLAN,
				 VIRTIO_NET_CTRL_VLAN_ADD, b2, 1),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_ANNOUNCE,
				 VIRTIO_NET_CTRL_ANNOUNCE_ACK, b2, 1),
			 VIRTIO_NET_ERR);
	/* Queue pairs out of range. */
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &p0, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &p3, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &p8000, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_RSS_CONFIG, &p3, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(vdk_net_stats(e->net).ctrl_errors, 15);
	assert_int_equal(vdk_net_stats(e->net).ctrl_commands, 0);
	assert_false(vdk_driver_needs_reset(ne_tp(e)));
	ne_free(e);
}

/* Classes of features the driver did not negotiate. */
static void test_ctrl_not_negotiated(void **state)
{
	struct net_env *e = ne_new(2, 0);
	uint8_t on = 1, mac[6] = {2, 0, 0, 0, 0, 1};
	uint16_t vid = htole16(1), p1 = htole16(1);

	(void)state;
	ne_up(e, NET_GUEST_FEATURES &
			 ~(F(VIRTIO_NET_F_CTRL_RX) | F(VIRTIO_NET_F_CTRL_VLAN) |
			   F(VIRTIO_NET_F_CTRL_MAC_ADDR) | F(VIRTIO_NET_F_MQ) |
			   F(VIRTIO_NET_F_GUEST_ANNOUNCE)));
	assert_int_equal(e->nq, 3);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_RX,
				 VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MAC,
				 VIRTIO_NET_CTRL_MAC_ADDR_SET, mac, 6),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_VLAN,
				 VIRTIO_NET_CTRL_VLAN_ADD, &vid, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_MQ,
				 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &p1, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ne_ctrl(e, VIRTIO_NET_CTRL_ANNOUNCE,
				 VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
			 VIRTIO_NET_ERR);
	assert_int_equal(vdk_net_announce(e->net), -EOPNOTSUPP);
	ne_free(e);
}

/* Control chains that cannot be answered: no ack byte; no command. */
static void test_ctrl_bad_chains(void **state)
{
	struct net_env *e = ne_new(1, 0);
	struct dq *q;
	uint8_t *p, *ack;
	uint16_t tok;
	uint32_t len;

	(void)state;
	ne_up(e, NET_GUEST_FEATURES);
	q = ne_ctrlq(e);
	p = ne_alloc(e, 16, 16);
	ack = ne_alloc(e, 1, 1);
	p[0] = VIRTIO_NET_CTRL_RX;
	p[1] = VIRTIO_NET_CTRL_RX_PROMISC;
	p[2] = 0;
	struct vdk_driver_buf r = {p, 3}, w = {ack, 1};
	assert_true(vdk_driver_virtq_add(&q->q, &r, 1, NULL, 0) >= 0);
	vdk_driver_virtq_kick(&q->q);
	assert_int_equal(vdk_driver_virtq_pop_used(&q->q, &tok, &len), 0);
	assert_int_equal(len, 0);
	r.len = 1;
	*ack = 0xaa;
	assert_true(vdk_driver_virtq_add(&q->q, &r, 1, &w, 1) >= 0);
	vdk_driver_virtq_kick(&q->q);
	assert_int_equal(vdk_driver_virtq_pop_used(&q->q, &tok, &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(*ack, VIRTIO_NET_ERR);
	assert_int_equal(vdk_net_stats(e->net).ctrl_errors, 2);
	ne_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_header_lies),
		cmocka_unit_test(test_tx_offload_not_negotiated),
		cmocka_unit_test(test_tx_bad_chains),
		cmocka_unit_test(test_rx_offload_not_negotiated),
		cmocka_unit_test(test_rx_overlaps_tx),
		cmocka_unit_test(test_rx_overlaps_tx_header),
		cmocka_unit_test(test_rx_chain_too_short),
		cmocka_unit_test(test_rx_chain_readable),
		cmocka_unit_test(test_rx_whole_queue_too_small),
		cmocka_unit_test(test_ctrl_bad_commands),
		cmocka_unit_test(test_ctrl_not_negotiated),
		cmocka_unit_test(test_ctrl_bad_chains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
