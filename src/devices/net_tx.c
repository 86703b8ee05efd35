/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net transmit (virtio 1.2 §5.1.6.2): each chain on a transmitq is
 * a struct virtio_net_hdr_v1 and a frame, device-readable. The header is
 * copied once, checked against the negotiated features, and it is that
 * checked copy, never the guest's memory, that goes to the backend in
 * front of the frame.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_net.h>

#include <vdk/devices/net.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#include "net_internal.h"

#define ETH_HDR_LEN 14

#define FB(bit)	    (1ull << (bit))

/* Transmit chains returned per used-index update. */
#define TX_BATCH 32

/* Check a transmitted header (copied, little-endian) against the
 * negotiated @features for a frame of @len bytes behind it; 0 or -EINVAL.
 * Inline in tx_one(), its one caller: most headers leave at the first
 * return. */
static inline int net_tx_check_header(const struct virtio_net_hdr_v1 *h,
				      uint32_t len, uint64_t features)
{
	uint32_t hdr_len = le16toh(h->hdr_len);
	uint32_t gso_size = le16toh(h->gso_size);
	uint32_t cstart = le16toh(h->csum_start);
	uint32_t coff = le16toh(h->csum_offset);
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	bool ecn = h->gso_type & VIRTIO_NET_HDR_GSO_ECN;
	bool csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;

	if (len < ETH_HDR_LEN || len > VDK_NET_MAX_PACKET)
		return -EINVAL;
	/* The common header, no checksum and no GSO: of the checks below,
	 * only hdr_len's applies to it. */
	if (h->flags == 0 && h->gso_type == 0)
		return hdr_len > len ? -EINVAL : 0;
	/* §5.1.6.2.1: DATA_VALID and RSC_INFO are for received packets. */
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return -EINVAL;
	/* §5.1.6.2: partial checksum only with VIRTIO_NET_F_CSUM, and the
	 * 16-bit checksum field inside the packet (values are 16-bit, the
	 * sum cannot overflow 32 bits). */
	if (csum &&
	    (!(features & FB(VIRTIO_NET_F_CSUM)) || cstart + coff + 2 > len))
		return -EINVAL;
	if (hdr_len > len)
		return -EINVAL;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return ecn ? -EINVAL : 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(features & FB(VIRTIO_NET_F_HOST_TSO4)))
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(features & FB(VIRTIO_NET_F_HOST_TSO6)))
			return -EINVAL;
		break;
	default: /* UDP (HOST_UFO is not offered), unknown */
		return -EINVAL;
	}
	if (ecn && !(features & FB(VIRTIO_NET_F_HOST_ECN)))
		return -EINVAL;
	/* A GSO packet has its checksum left to the device (Linux sets
	 * NEEDS_CSUM on every one) and segments smaller than itself. */
	if (!csum || gso_size == 0 || gso_size >= len)
		return -EINVAL;
	return 0;
}

/*
 * Make @c's readable iovecs (starting at @iov[1]) into header copy + frame:
 * skip the VDK_NET_HDR_LEN bytes of the guest's header and put @h in the
 * slot before the first frame byte (@nread >= 1). Return the first iovec
 * and the count.
 */
static struct iovec *tx_gather(struct iovec *iov, uint32_t nread,
			       struct virtio_net_hdr_v1 *h, int *cnt)
{
	uint32_t skip = VDK_NET_HDR_LEN, i = 1;

	if (iov[1].iov_len > VDK_NET_HDR_LEN) {
		/* The usual layout: header and frame in one descriptor. */
		iov[1].iov_base = (uint8_t *)iov[1].iov_base + VDK_NET_HDR_LEN;
		iov[1].iov_len -= VDK_NET_HDR_LEN;
		iov[0].iov_base = h;
		iov[0].iov_len = VDK_NET_HDR_LEN;
		*cnt = (int)nread + 1;
		return iov;
	}
	while (i <= nread && skip >= iov[i].iov_len) {
		skip -= (uint32_t)iov[i].iov_len;
		i++;
	}
	if (i <= nread) {
		iov[i].iov_base = (uint8_t *)iov[i].iov_base + skip;
		iov[i].iov_len -= skip;
	}
	/* i >= 1 always: iov[i - 1] is free for the header. */
	iov[i - 1].iov_base = h;
	iov[i - 1].iov_len = VDK_NET_HDR_LEN;
	*cnt = (int)(nread + 1 - (i - 1));
	return &iov[i - 1];
}

/* Send one popped chain; counts what happens to it. */
static void tx_one(struct vdk_net *n, uint16_t pair,
		   const struct vdk_virtq_chain *c)
{
	struct virtio_net_hdr_v1 h;
	uint32_t len;
	struct iovec *out;
	ssize_t r;
	int cnt;

	if (c->num_writable || c->readable_len < VDK_NET_HDR_LEN) {
		n->stats.tx_dropped_header++;
		return;
	}
	/* readable_len >= VDK_NET_HDR_LEN, so num_readable >= 1. The
	 * header in the first descriptor (the usual layout): one fixed-size
	 * copy; else gathered over the descriptors. */
	if (c->iov[0].iov_len >= VDK_NET_HDR_LEN)
		memcpy(&h, c->iov[0].iov_base, VDK_NET_HDR_LEN);
	else if (vdk_virtq_chain_copy_from(c, 0, &h, VDK_NET_HDR_LEN) !=
		 VDK_NET_HDR_LEN) {
		n->stats.tx_dropped_header++;
		return;
	}
	len = c->readable_len - VDK_NET_HDR_LEN;
	if (net_tx_check_header(&h, len, n->features) < 0) {
		n->stats.tx_dropped_header++;
		VDK_LOG_RL(&n->log_rl, VDK_LOG_WARN, NET_MOD,
			   "transmitq %u: dropped a packet with a bad header "
			   "(flags %#x gso %#x hdr_len %u gso_size %u csum "
			   "%u+%u, %u bytes)",
			   pair, h.flags, h.gso_type, le16toh(h.hdr_len),
			   le16toh(h.gso_size), le16toh(h.csum_start),
			   le16toh(h.csum_offset), len);
		return;
	}
	/* num_buffers is for received packets (§5.1.6.2). */
	h.num_buffers = 0;
	if (!net_link_ok(n)) {
		n->stats.tx_dropped_backend++;
		return;
	}
	out = tx_gather(c->iov - 1, c->num_readable, &h, &cnt);
	if (n->be->ops->loops_back &&
	    n->be->ops->loops_back(n->be->impl, pair) &&
	    net_rx_direct(n, pair, &h, out + 1, cnt - 1, len)) {
		n->stats.tx_packets++;
		n->stats.tx_bytes += len;
		n->pair_tx_packets[pair]++;
		return;
	}
	r = n->be->ops->send(n->be->impl, pair, out, cnt);
	if (r == -EAGAIN) {
		/* A backend without an fd (loopback) is full until its
		 * receive side drains: deliver what the guest has room for,
		 * then try once more. */
		net_rx_process(n, pair);
		r = n->be->ops->send(n->be->impl, pair, out, cnt);
	}
	if (r < 0) {
		n->stats.tx_dropped_backend++;
		return;
	}
	n->stats.tx_packets++;
	n->stats.tx_bytes += len;
	n->pair_tx_packets[pair]++;
}

/* Return the transmit chains in @heads (@nh of them) with one used-index
 * update; false if the queue failed. */
static bool tx_return(struct vdk_net *n, struct vdk_virtq *q,
		      const uint16_t *heads, unsigned *nh)
{
	static const uint32_t zero[TX_BATCH];
	int ret = 0;

	if (*nh)
		ret = vdk_virtq_add_used_batch(q, heads, zero, (uint16_t)*nh);
	*nh = 0;
	if (ret < 0)
		net_fail(n, q, "transmitq");
	return ret == 0;
}

/* Signal what this pass returned on the transmit queue and delivered
 * straight into the receive queue (net_rx_direct()), once for each. */
static void tx_publish(struct vdk_net *n, uint16_t pair, struct vdk_virtq *q,
		       bool *returned, uint64_t *rx_before)
{
	struct vdk_virtq *rq;

	if (*returned && vdk_virtq_should_notify(q))
		vdk_interrupt_signal_used_queue(n->irq,
						(uint16_t)(2 * pair + 1));
	*returned = false;
	net_rx_direct_flush(n, pair);
	rq = n->queues[2 * pair];
	if (n->pair_rx_packets[pair] != *rx_before && rq &&
	    vdk_virtq_should_notify(rq))
		vdk_interrupt_signal_used_queue(n->irq, (uint16_t)(2 * pair));
	*rx_before = n->pair_rx_packets[pair];
}

/* Busy polling (vdk_net_config.busy_poll_us): true as soon as the driver
 * makes a chain available on @q, false after the time is up. */
static bool tx_busy_poll(const struct vdk_net *n, struct vdk_virtq *q)
{
	struct timespec now, end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_nsec += (long)n->busy_poll_us * 1000;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	do {
		for (int i = 0; i < 64; i++) {
			if (vdk_virtq_has_avail(q))
				return true;
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec ||
		 (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	return false;
}

bool net_tx_process(struct vdk_net *n, uint16_t pair)
{
	struct vdk_virtq *q = n->queues[2 * pair + 1];
	unsigned budget = VDK_NET_BUDGET, nh = 0;
	uint64_t rx_before = n->pair_rx_packets[pair];
	bool returned = false, more = false;
	struct vdk_virtq_chain c;
	uint16_t heads[TX_BATCH];
	int ret;

	if (!n->running || n->broken || !q || !net_pair_enabled(n, pair))
		return false;
	/* iov[0] stays free for the header (tx_gather()); vdk_virtq_pop()
	 * fills in the rest of @c each time. */
	c.iov = n->tx_iov + 1;
	c.iov_cap = n->iov_cap;
	for (;;) {
		vdk_virtq_enable_notification(q, false);
		while (budget) {
			ret = vdk_virtq_pop(q, &c);
			if (ret == 0)
				break;
			if (ret < 0) {
				net_fail(n, q, "transmitq");
				goto out;
			}
			budget--;
			tx_one(n, pair, &c);
			/* Taken (or dropped) even if its delivery broke the
			 * receive queue: the chain goes back, with the others
			 * of this batch in one used-index update. */
			heads[nh++] = c.head;
			returned = true;
			if (n->broken)
				goto out;
			if (nh == TX_BATCH && !tx_return(n, q, heads, &nh))
				goto out;
		}
		if (!tx_return(n, q, heads, &nh))
			goto out;
		if (!budget) {
			/* Notifications stay off: the caller comes back. */
			more = vdk_virtq_has_avail(q) ||
			       vdk_virtq_enable_notification(q, true);
			break;
		}
		if (n->busy_poll_us) {
			/* The driver sees this burst's results before we
			 * wait for its next one. */
			tx_publish(n, pair, q, &returned, &rx_before);
			if (n->broken)
				return false;
			if (tx_busy_poll(n, q))
				continue;
		}
		if (!vdk_virtq_enable_notification(q, true))
			break;
	}
out:
	if (nh)
		(void)tx_return(n, q, heads, &nh);
	tx_publish(n, pair, q, &returned, &rx_before);
	return more && !n->broken;
}
