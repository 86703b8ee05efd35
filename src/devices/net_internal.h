/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to src/devices/net*.c: the virtio-net device state shared by the
 * device model (net.c), transmit (net_tx.c), receive (net_rx.c) and the
 * control queue (net_ctrl.c).
 */
#ifndef VDK_NET_INTERNAL_H
#define VDK_NET_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_net.h>

#include <vdk/device.h>
#include <vdk/devices/net.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#ifndef VDK_HIDDEN
#define VDK_HIDDEN __attribute__((visibility("hidden")))
#endif

#define NET_MOD "net"

/* A packet received from the backend, on its way into the guest. */
struct net_rx_state {
	uint8_t *buf;	  /* VDK_NET_HDR_LEN + VDK_NET_MAX_PACKET bytes */
	uint32_t len;	  /* bytes in buf (header included); 0: none */
	uint32_t done;	  /* bytes already copied into chains */
	uint16_t nchains; /* chains filled so far (mergeable) */
	uint16_t *heads;  /* their heads; queue_max_size entries */
	uint32_t *lens;	  /* bytes written into each */
	/* where the first chain's header lives, for num_buffers */
	struct iovec hdr_iov[VDK_NET_HDR_LEN];
	uint32_t hdr_iovcnt;
	/* net_rx_direct(): chains filled, published by one used-index
	 * update at the end of the transmit pass (net_rx_direct_flush()) */
	uint16_t *dheads;
	uint32_t *dlens;
	uint16_t dn;
	/* non-mergeable: a popped chain kept for the next packet */
	bool spare;
	struct vdk_virtq_chain spare_chain;
	struct iovec *spare_iov; /* iov_cap entries */
};

/* A pair's backend fd on the loop (net_loop.c). */
struct net_pair_ctx {
	struct vdk_net *n;
	uint16_t pair;
	bool added;    /* in the loop */
	bool watching; /* for VDK_LOOP_IN (else events 0) */
};

struct vdk_net {
	struct vdk_device vdev;
	struct vdk_net_backend *be;
	bool own_be; /* destroy frees be */
	uint16_t max_pairs;
	uint16_t mtu;
	uint16_t qmax;
	uint32_t busy_poll_us; /* vdk_net_config */
	uint64_t offloads;     /* backend offload bits offered */

	/* driver-visible state */
	uint8_t mac[6];
	bool link_set; /* vdk_net_set_link() */
	uint16_t status;
	uint64_t features; /* negotiated */
	uint16_t cur_pairs;
	bool promisc, allmulti;
	uint32_t uni_n, multi_n;
	bool uni_overflow, multi_overflow;
	uint8_t uni[VDK_NET_MAC_TABLE_ENTRIES][6];
	uint8_t multi[VDK_NET_MAC_TABLE_ENTRIES][6];
	uint8_t vlans[4096 / 8];

	/* activation */
	const struct vdk_mem *mem;
	struct vdk_interrupt *irq;
	struct vdk_virtq *queues[VDK_DEVICE_MAX_QUEUES];
	bool running; /* active and awake */
	bool broken;  /* reported DEVICE_NEEDS_RESET */
	struct vdk_ratelimit log_rl;

	/* the loop (attach_loop) and the device's fds on it */
	struct vdk_loop *loop;
	int more_fd;	  /* eventfd: another pass, queues in @pending */
	uint64_t pending; /* bit i: queue i wants another pass */
	int link_timer;	  /* timerfd reading the backend's link, or -1 */
	struct net_pair_ctx pair_ctx[VDK_NET_MAX_QUEUE_PAIRS];

	struct net_rx_state rx[VDK_NET_MAX_QUEUE_PAIRS];
	struct iovec *iov;	 /* iov_cap entries, scratch for one chain */
	struct iovec *tx_iov;	 /* iov_cap + 1 entries, for transmit */
	struct iovec *ctrl_iov;	 /* iov_cap entries, for the control queue */
	uint8_t ctrl_buf[16384]; /* a command's readable part */
	bool be_link;		 /* backend link_up() at the last check */
	uint32_t iov_cap;
	struct vdk_net_stats stats;
	/* per queue pair (vdk_net_pair_stats()); not in the snapshot */
	uint64_t pair_tx_packets[VDK_NET_MAX_QUEUE_PAIRS];
	uint64_t pair_rx_packets[VDK_NET_MAX_QUEUE_PAIRS];
};

static inline uint16_t net_ctrl_index(const struct vdk_net *n)
{
	return (n->features & (1ull << VIRTIO_NET_F_MQ)) ? 2 * n->max_pairs : 2;
}

static inline bool net_has(const struct vdk_net *n, unsigned bit)
{
	return (n->features >> bit) & 1;
}

/*
 * Whether queue pair @pair carries packets: with a control queue, the
 * first cur_pairs (§5.1.6.5.5 VQ_PAIRS_SET); without one (a vhost-user
 * front-end keeps the control queue and enables rings itself), every pair
 * whose queues the transport gave.
 */
static inline bool net_pair_enabled(const struct vdk_net *n, uint16_t pair)
{
	if (pair >= n->max_pairs)
		return false;
	if (net_has(n, VIRTIO_NET_F_CTRL_VQ))
		return pair < n->cur_pairs;
	return true;
}

/* Whether packets flow: the link is up as set by the device's owner and
 * as the backend reports it. */
static inline bool net_link_ok(const struct vdk_net *n)
{
	return n->link_set && n->be_link;
}

/* net.c */
VDK_HIDDEN void net_service(struct vdk_net *n, uint16_t idx);
VDK_HIDDEN void net_fail(struct vdk_net *n, struct vdk_virtq *q,
			 const char *why);
VDK_HIDDEN void net_update_status(struct vdk_net *n, bool notify);

/* net_tx.c: process transmitq of @pair; true if the budget ran out */
VDK_HIDDEN bool net_tx_process(struct vdk_net *n, uint16_t pair);

/* net_rx.c */
VDK_HIDDEN bool net_rx_process(struct vdk_net *n, uint16_t pair);
VDK_HIDDEN void net_rx_abort(struct vdk_net *n, uint16_t pair);
VDK_HIDDEN int net_rx_state_init(struct net_rx_state *s, uint16_t qmax,
				 uint32_t iov_cap);
VDK_HIDDEN void net_rx_state_fini(struct net_rx_state *s);
/*
 * A packet transmitted on @pair, when the backend loops_back(): its checked
 * header @hdr and frame (@iov, @cnt entries, @len bytes) go straight into
 * a receive buffer of @pair, with rx_take()'s header check and the receive
 * filter. Return 1 when the packet is done with (delivered, dropped and
 * counted, or the queue failed), 0 when it must go through the backend
 * (no buffer now, a packet before it in progress, or it needs more than
 * one mergeable buffer). The caller notifies the receive queue.
 */
VDK_HIDDEN int net_rx_direct(struct vdk_net *n, uint16_t pair,
			     const struct virtio_net_hdr_v1 *hdr,
			     const struct iovec *iov, int cnt, uint32_t len);
/* Publish what net_rx_direct() filled on @pair (one used-index update). */
VDK_HIDDEN void net_rx_direct_flush(struct vdk_net *n, uint16_t pair);
VDK_HIDDEN bool net_rx_filter(const struct vdk_net *n, const uint8_t *frame,
			      uint32_t len);

/* net_loop.c: the device's fds on its loop (no-ops without a loop) */
VDK_HIDDEN int net_attach_loop(void *dev, struct vdk_loop *loop);
VDK_HIDDEN void net_detach_loop(struct vdk_net *n);
VDK_HIDDEN void net_rx_watch(struct vdk_net *n, uint16_t pair, bool on);
VDK_HIDDEN void net_rx_unwatch(struct vdk_net *n, uint16_t pair);
/* Ask the loop for another pass over queue @idx; false without a loop. */
VDK_HIDDEN bool net_defer(struct vdk_net *n, uint16_t idx);

/* net_ctrl.c */
VDK_HIDDEN bool net_ctrl_process(struct vdk_net *n);
VDK_HIDDEN void net_ctrl_reset(struct vdk_net *n);

#endif /* VDK_NET_INTERNAL_H */
