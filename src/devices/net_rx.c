/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net receive (virtio 1.2 §5.1.6.3, §5.1.6.4). A packet is taken
 * from the backend only when the guest has given receive buffers; it goes
 * through the header check and the receive filter, then into one chain, or
 * with VIRTIO_NET_F_MRG_RXBUF into as many chains as it needs, all returned
 * with one used-index update and num_buffers set in the first header.
 *
 * A packet waits in the queue's state (struct net_rx_state) while the guest
 * has too few buffers, until the next receive notification.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_net.h>

#include <vdk/devices/net.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#include "net_internal.h"

#define FB(bit) (1ull << (bit))

int net_rx_state_init(struct net_rx_state *s, uint16_t qmax, uint32_t iov_cap)
{
	memset(s, 0, sizeof(*s));
	s->buf = malloc(VDK_NET_HDR_LEN + VDK_NET_MAX_PACKET);
	s->heads = calloc(qmax, sizeof(*s->heads));
	s->lens = calloc(qmax, sizeof(*s->lens));
	s->spare_iov = calloc(iov_cap, sizeof(*s->spare_iov));
	s->dheads = calloc(qmax, sizeof(*s->dheads));
	s->dlens = calloc(qmax, sizeof(*s->dlens));
	if (!s->buf || !s->heads || !s->lens || !s->spare_iov || !s->dheads ||
	    !s->dlens) {
		net_rx_state_fini(s);
		return -ENOMEM;
	}
	s->spare_chain.iov = s->spare_iov;
	s->spare_chain.iov_cap = iov_cap;
	return 0;
}

void net_rx_state_fini(struct net_rx_state *s)
{
	free(s->buf);
	free(s->heads);
	free(s->lens);
	free(s->spare_iov);
	free(s->dheads);
	free(s->dlens);
	memset(s, 0, sizeof(*s));
}

/*
 * Drop the packet in progress on @pair and give back every chain the device
 * holds for it with 0 bytes written (a driver drops a buffer shorter than
 * its header: Linux counts it as a length error). For reset, sleep and
 * queue stop.
 */
void net_rx_abort(struct vdk_net *n, uint16_t pair)
{
	struct net_rx_state *s = &n->rx[pair];
	struct vdk_virtq *q = n->queues[2 * pair];
	uint16_t cnt;

	net_rx_direct_flush(n, pair);
	cnt = s->nchains;
	if (s->spare && cnt < n->qmax)
		s->heads[cnt++] = s->spare_chain.head;
	if (cnt && q && !vdk_virtq_is_broken(q)) {
		memset(s->lens, 0, cnt * sizeof(*s->lens));
		if (vdk_virtq_add_used_batch(q, s->heads, s->lens, cnt) == 0 &&
		    n->irq && vdk_virtq_should_notify(q))
			vdk_interrupt_signal_used_queue(n->irq,
							(uint16_t)(2 * pair));
	}
	if (s->len)
		n->stats.rx_dropped_no_room++;
	s->len = s->done = 0;
	s->nchains = 0;
	s->spare = false;
}

/* Receive filter (§5.1.6.5.1, §5.1.6.5.2, §5.1.6.5.3): true to deliver. */
bool net_rx_filter(const struct vdk_net *n, const uint8_t *f, uint32_t len)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	if (len < 14)
		return false;
	if (net_has(n, VIRTIO_NET_F_CTRL_VLAN) && len >= 18 && f[12] == 0x81 &&
	    f[13] == 0x00) {
		uint16_t vid = (uint16_t)((f[14] << 8 | f[15]) & 0xfff);

		if (!(n->vlans[vid / 8] & (1u << (vid % 8))))
			return false;
	}
	if (!net_has(n, VIRTIO_NET_F_CTRL_RX) || n->promisc)
		return true;
	if (!memcmp(f, bcast, 6))
		return true;
	if (f[0] & 1) { /* multicast */
		if (n->allmulti || n->multi_overflow)
			return true;
		for (uint32_t i = 0; i < n->multi_n; i++)
			if (!memcmp(f, n->multi[i], 6))
				return true;
		return false;
	}
	if (!memcmp(f, n->mac, 6) || n->uni_overflow)
		return true;
	for (uint32_t i = 0; i < n->uni_n; i++)
		if (!memcmp(f, n->uni[i], 6))
			return true;
	return false;
}

/*
 * Check a header from the backend against what the guest negotiated
 * (§5.1.6.4.1): no offload it did not ask for. DATA_VALID without
 * GUEST_CSUM is cleared (the guest then checks the sum itself).
 * Return 0 to deliver, -EINVAL to drop.
 */
static int rx_check_offloads(struct vdk_net *n, struct virtio_net_hdr_v1 *h,
			     uint32_t len)
{
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	bool gcsum = net_has(n, VIRTIO_NET_F_GUEST_CSUM);

	if (h->flags &
	    ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
		return -EINVAL;
	if (!gcsum)
		h->flags &= (uint8_t)~VIRTIO_NET_HDR_F_DATA_VALID;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!gcsum || (uint32_t)le16toh(h->csum_start) +
					      le16toh(h->csum_offset) + 2 >
				      len)
			return -EINVAL;
	}
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !net_has(n, VIRTIO_NET_F_GUEST_ECN))
		return -EINVAL;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return net_has(n, VIRTIO_NET_F_GUEST_TSO4) ? 0 : -EINVAL;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return net_has(n, VIRTIO_NET_F_GUEST_TSO6) ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

/* rx_check_offloads() for a header that asks for any offload; the common
 * header, no checksum and no GSO, passes every check. */
static inline int rx_check_header(struct vdk_net *n,
				  struct virtio_net_hdr_v1 *h, uint32_t len)
{
	if (h->flags == 0 && h->gso_type == 0)
		return 0;
	return rx_check_offloads(n, h, len);
}

/* A receive chain that is not rx_chain_ok(): log it, stop the queue. */
static bool rx_chain_bad(struct vdk_net *n, struct vdk_virtq *q,
			 const struct vdk_virtq_chain *c)
{
	VDK_LOG_RL(&n->log_rl, VDK_LOG_WARN, NET_MOD,
		   "receiveq %u: chain %u has %u readable and %u writable "
		   "bytes (at least %u writable needed)",
		   q->index, c->head, c->readable_len, c->writable_len,
		   VDK_NET_HDR_LEN);
	net_fail(n, q, "receiveq");
	return false;
}

/* §5.1.6.3.1: receive buffers are device-writable and hold the header. */
static inline bool rx_chain_ok(struct vdk_net *n, struct vdk_virtq *q,
			       const struct vdk_virtq_chain *c)
{
	if (c->num_readable == 0 && c->writable_len >= VDK_NET_HDR_LEN)
		return true;
	return rx_chain_bad(n, q, c);
}

/* Write @len bytes at @off into @iov[0..cnt). */
static void iov_write(const struct iovec *iov, uint32_t cnt, uint32_t off,
		      const void *src, uint32_t len)
{
	const uint8_t *p = src;

	for (uint32_t i = 0; i < cnt && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= (uint32_t)iov[i].iov_len;
			continue;
		}
		uint32_t k = (uint32_t)iov[i].iov_len - off;

		if (k > len)
			k = len;
		memcpy((uint8_t *)iov[i].iov_base + off, p, k);
		p += k;
		len -= k;
		off = 0;
	}
}

static void rx_delivered(struct vdk_net *n, struct net_rx_state *s)
{
	n->stats.rx_packets++;
	n->stats.rx_bytes += s->len - VDK_NET_HDR_LEN;
	n->pair_rx_packets[s - n->rx]++; /* s is &n->rx[pair] */
	s->len = s->done = 0;
	s->nchains = 0;
}

/* Fill states: */
enum { FILL_BROKEN = -1, FILL_WAIT = 0, FILL_DONE = 1 };

/* Without MRG_RXBUF: the whole packet in one chain (§5.1.6.3.1). */
static int rx_fill_one(struct vdk_net *n, struct vdk_virtq *q,
		       struct net_rx_state *s)
{
	struct vdk_virtq_chain *c = &s->spare_chain;
	uint16_t one = htole16(1);
	int ret;

	if (!s->spare) {
		c->iov = s->spare_iov;
		ret = vdk_virtq_pop(q, c);
		if (ret == 0)
			return FILL_WAIT;
		if (ret < 0 || !rx_chain_ok(n, q, c)) {
			if (ret < 0)
				net_fail(n, q, "receiveq");
			return FILL_BROKEN;
		}
		s->spare = true;
	}
	if (c->writable_len < s->len) {
		/* Too big for the buffers this driver gives: dropped; the
		 * chain serves the next packet. */
		n->stats.rx_dropped_no_room++;
		s->len = 0;
		return FILL_DONE;
	}
	memcpy(s->buf + offsetof(struct virtio_net_hdr_v1, num_buffers), &one,
	       sizeof(one));
	vdk_virtq_chain_copy_to(c, 0, s->buf, s->len);
	s->spare = false;
	if (vdk_virtq_add_used(q, c->head, s->len) < 0) {
		net_fail(n, q, "receiveq");
		return FILL_BROKEN;
	}
	rx_delivered(n, s);
	return FILL_DONE;
}

/* With MRG_RXBUF: as many chains as the packet needs (§5.1.6.4). */
static int rx_fill_mergeable(struct vdk_net *n, struct vdk_virtq *q,
			     struct net_rx_state *s)
{
	struct vdk_virtq_chain c;
	uint16_t nb;
	int ret;

	while (s->done < s->len) {
		if (s->nchains >= q->size) {
			/* The whole queue is too small for it. */
			net_rx_abort(n, (uint16_t)(q->index / 2));
			return FILL_DONE;
		}
		if (s->spare) {
			/* Kept by net_rx_direct(): checked already. */
			c = s->spare_chain;
			s->spare = false;
		} else {
			c = (struct vdk_virtq_chain){.iov = n->iov,
						     .iov_cap = n->iov_cap};
			ret = vdk_virtq_pop(q, &c);
			if (ret == 0)
				return FILL_WAIT;
			if (ret < 0 || !rx_chain_ok(n, q, &c)) {
				if (ret < 0)
					net_fail(n, q, "receiveq");
				return FILL_BROKEN;
			}
		}
		if (s->nchains == 0) {
			/* Where the header goes, to patch num_buffers: the
			 * first 12 writable bytes span at most 12 iovecs. */
			uint32_t k = 0, got = 0;

			while (got < VDK_NET_HDR_LEN && k < c.num_writable &&
			       k < VDK_NET_HDR_LEN) {
				s->hdr_iov[k] = c.iov[c.num_readable + k];
				got += (uint32_t)s->hdr_iov[k].iov_len;
				k++;
			}
			s->hdr_iovcnt = k;
		}
		uint32_t w = (uint32_t)vdk_virtq_chain_copy_to(
			&c, 0, s->buf + s->done, s->len - s->done);

		s->heads[s->nchains] = c.head;
		s->lens[s->nchains] = w;
		s->nchains++;
		s->done += w;
	}
	nb = htole16(s->nchains);
	iov_write(s->hdr_iov, s->hdr_iovcnt,
		  offsetof(struct virtio_net_hdr_v1, num_buffers), &nb,
		  sizeof(nb));
	if (vdk_virtq_add_used_batch(q, s->heads, s->lens, s->nchains) < 0) {
		net_fail(n, q, "receiveq");
		return FILL_BROKEN;
	}
	rx_delivered(n, s);
	return FILL_DONE;
}

void net_rx_direct_flush(struct vdk_net *n, uint16_t pair)
{
	struct net_rx_state *s = &n->rx[pair];
	struct vdk_virtq *q = n->queues[2 * pair];

	if (!s->dn)
		return;
	if (q && vdk_virtq_add_used_batch(q, s->dheads, s->dlens, s->dn) < 0)
		net_fail(n, q, "receiveq");
	s->dn = 0;
}

int net_rx_direct(struct vdk_net *n, uint16_t pair,
		  const struct virtio_net_hdr_v1 *hdr, const struct iovec *iov,
		  int cnt, uint32_t len)
{
	struct net_rx_state *s = &n->rx[pair];
	struct vdk_virtq *q = n->queues[2 * pair];
	struct virtio_net_hdr_v1 h = *hdr;
	struct vdk_virtq_chain c;
	uint8_t eth[18];
	uint32_t got = 0, off;
	int ret;

	/* Only with nothing in progress, so packets keep their order. */
	if (!q || s->len || !net_link_ok(n))
		return 0;
	/* The same checks as a packet from the backend (rx_take()). */
	if (len < 14 || rx_check_header(n, &h, len) < 0) {
		n->stats.rx_dropped_header++;
		return 1;
	}
	/* The filter can only drop with VLAN filtering or a MAC filter in
	 * use (net_rx_filter()); without them, no copy of the frame's
	 * addresses is needed. */
	if (net_has(n, VIRTIO_NET_F_CTRL_VLAN) ||
	    (net_has(n, VIRTIO_NET_F_CTRL_RX) && !n->promisc)) {
		for (int i = 0; i < cnt && got < sizeof(eth); i++) {
			uint32_t k = (uint32_t)sizeof(eth) - got;

			if (k > iov[i].iov_len)
				k = (uint32_t)iov[i].iov_len;
			memcpy(eth + got, iov[i].iov_base, k);
			got += k;
		}
		if (!net_rx_filter(n, eth, len)) {
			n->stats.rx_filtered++;
			return 1;
		}
	}
	if (s->spare) {
		c = s->spare_chain;
	} else {
		/* vdk_virtq_pop() fills in the rest. */
		c.iov = s->spare_iov;
		c.iov_cap = s->spare_chain.iov_cap;
		ret = vdk_virtq_pop(q, &c);
		if (ret == 0)
			return 0; /* no buffer: the backend keeps it */
		if (ret < 0 || !rx_chain_ok(n, q, &c)) {
			if (ret < 0)
				net_fail(n, q, "receiveq");
			return 1;
		}
	}
	if (c.writable_len < VDK_NET_HDR_LEN + len) {
		/* Kept for the next packet (rx_fill_one/_mergeable). */
		s->spare_chain = c;
		s->spare = true;
		if (net_has(n, VIRTIO_NET_F_MRG_RXBUF))
			return 0; /* through the backend, over more chains */
		n->stats.rx_dropped_no_room++;
		return 1;
	}
	s->spare = false;
	h.num_buffers = htole16(1);
	/* rx_chain_ok(): no readable part, so iov[0] is the first writable
	 * descriptor. The guest may make the receive buffer overlap the
	 * frame it sends: the frame is moved first (memmove), the header
	 * (a copy on our stack) written after, so it lands as sent. */
	if (cnt == 1 && c.iov[0].iov_len >= VDK_NET_HDR_LEN + len) {
		/* The usual layout: the frame in one transmit buffer (of
		 * @len bytes), header and frame fit the first receive
		 * buffer. */
		uint8_t *dst = c.iov[0].iov_base;

		memmove(dst + VDK_NET_HDR_LEN, iov[0].iov_base, len);
		memcpy(dst, &h, VDK_NET_HDR_LEN);
		off = VDK_NET_HDR_LEN + len;
	} else {
		off = VDK_NET_HDR_LEN;
		for (int i = 0; i < cnt; i++) {
			vdk_virtq_chain_copy_to(&c, off, iov[i].iov_base,
						iov[i].iov_len);
			off += (uint32_t)iov[i].iov_len;
		}
		/* The header in the first buffer is one fixed-size copy. */
		if (c.iov[0].iov_len >= VDK_NET_HDR_LEN)
			memcpy(c.iov[0].iov_base, &h, VDK_NET_HDR_LEN);
		else
			vdk_virtq_chain_copy_to(&c, 0, &h, VDK_NET_HDR_LEN);
	}
	/* Published with the others of this pass (net_rx_direct_flush());
	 * at most one entry per chain in flight, so dn < qmax. */
	s->dheads[s->dn] = c.head;
	s->dlens[s->dn] = off;
	s->dn++;
	n->stats.rx_packets++;
	n->stats.rx_bytes += len;
	n->pair_rx_packets[pair]++;
	return 1;
}

/* Take the next packet from the backend; true if one is now pending. */
static bool rx_take(struct vdk_net *n, uint16_t pair, struct net_rx_state *s)
{
	struct iovec v = {s->buf, VDK_NET_HDR_LEN + VDK_NET_MAX_PACKET};
	struct virtio_net_hdr_v1 h;
	ssize_t r;

	/* Bounded: a backend full of bad packets cannot hold us here. */
	for (unsigned tries = 0; tries < VDK_NET_BUDGET; tries++) {
		r = n->be->ops->recv(n->be->impl, pair, &v, 1);
		if (r < 0) {
			if (r != -EAGAIN)
				VDK_LOG_RL(&n->log_rl, VDK_LOG_WARN, NET_MOD,
					   "backend receive, pair %u: %s", pair,
					   strerror((int)-r));
			return false;
		}
		if (r > (ssize_t)v.iov_len)
			r = (ssize_t)v.iov_len; /* a lying backend */
		if ((size_t)r < VDK_NET_HDR_LEN + 14) {
			n->stats.rx_dropped_header++;
			continue;
		}
		memcpy(&h, s->buf, sizeof(h));
		if (rx_check_header(n, &h, (uint32_t)r - VDK_NET_HDR_LEN) < 0) {
			n->stats.rx_dropped_header++;
			continue;
		}
		if (!net_rx_filter(n, s->buf + VDK_NET_HDR_LEN,
				   (uint32_t)r - VDK_NET_HDR_LEN)) {
			n->stats.rx_filtered++;
			continue;
		}
		h.num_buffers = 0;
		memcpy(s->buf, &h, sizeof(h));
		s->len = (uint32_t)r;
		s->done = 0;
		s->nchains = 0;
		return true;
	}
	return false;
}

bool net_rx_process(struct vdk_net *n, uint16_t pair)
{
	struct vdk_virtq *q;
	struct net_rx_state *s = &n->rx[pair];
	bool mrg = net_has(n, VIRTIO_NET_F_MRG_RXBUF);
	unsigned budget = VDK_NET_BUDGET;
	uint64_t before = n->stats.rx_packets;
	bool more = false;
	int st;

	/* Packets delivered straight from transmit go first. */
	net_rx_direct_flush(n, pair);
	if (!n->running || n->broken || !net_pair_enabled(n, pair))
		return false;
	q = n->queues[2 * pair];
	if (!q)
		return false;
	for (;;) {
		if (!s->len) {
			if (!budget) {
				more = true;
				break;
			}
			if (!net_link_ok(n))
				break;
			/* Only take a packet the guest has room for; with
			 * no room the backend's fd leaves the loop until the
			 * next receive notification. */
			if (!s->spare && !vdk_virtq_has_avail(q)) {
				if (vdk_virtq_enable_notification(q, true))
					continue;
				net_rx_watch(n, pair, false);
				break;
			}
			if (!rx_take(n, pair, s)) {
				net_rx_watch(n, pair, true); /* wait for more */
				break;
			}
			budget--;
		}
		st = mrg ? rx_fill_mergeable(n, q, s) : rx_fill_one(n, q, s);
		if (st == FILL_BROKEN)
			return false;
		if (st == FILL_WAIT) {
			/* Out of buffers mid-packet: ask for a kick. */
			if (vdk_virtq_enable_notification(q, true))
				continue;
			net_rx_watch(n, pair, false);
			break;
		}
	}
	if (n->stats.rx_packets != before && vdk_virtq_should_notify(q))
		vdk_interrupt_signal_used_queue(n->irq, (uint16_t)(2 * pair));
	return more;
}
