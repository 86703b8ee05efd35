/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the virtio-net device (src/devices/net*.c; virtio 1.2
 * §5.1) on a loopback backend, driven through the device framework by a
 * hostile driver (the mock driver tests/mock/guest_ring.c): transmit chains
 * with any header and layout, receive buffer layouts of any shape,
 * control commands of any class, command and length, raw descriptors,
 * notifications, link changes, sleep/wake, snapshot + restore into a fresh
 * device, reset + reactivation.
 *
 * Input: two configuration bytes, then operations until the input ends
 * (missing bytes read as 0):
 *   [0] the driver's features: a mask over the offered bits (bit i of the
 *       byte keeps group i: 0 MRG_RXBUF, 1 CSUM+HOST_TSO*, 2 GUEST_CSUM +
 *       GUEST_TSO*, 3 CTRL_VQ+CTRL_*, 4 MQ, 5 EVENT_IDX, 6 INDIRECT_DESC,
 *       7 GUEST_ANNOUNCE)
 *   [1] bits 0-1: queue size 4 << n; bit 2: two queue pairs; bit 3: the
 *       backend's loops_back() is offered (transmitted packets go straight
 *       into receive buffers, net_rx_direct()), else every packet goes
 *       through send() and recv()
 *   op % 8: 0 receive chain (1..4 buffers, each readable or writable, any
 *       length in the data area), 1 transmit chain (a header from the
 *       input, a frame, split over 1..3 buffers), 2 control command (class,
 *       command, payload, ack buffer or not), 3 notify a queue, 4 raw chain
 *       on a queue (any address, length, flags, next), 5 sleep/wake,
 *       snapshot/restore into a fresh device, reset + reactivate, 6 link
 *       down/up, announce, 7 poll the backend; 5 also stops one queue and
 *       starts it again.
 *
 * Checks: the backend only ever receives packets whose header passes an
 * independent check against the negotiated features (the device never
 * forwards a header that lies); a used length never exceeds the chain's
 * writable bytes, a transmit chain's is 0, a control chain's at most 1;
 * a received packet's header has num_buffers >= 1 and, without
 * MRG_RXBUF, exactly 1; nothing written to the guard pages around guest
 * memory.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include <vdk/device.h>
#include <vdk/devices/net.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "fuzz_guest.h"
#include "guest_ring.h"

#define MAXQ	 5
#define RING_GPA 0x0000u /* queue i's ring at i * 0x800 */
#define DATA_GPA 0x3000u
#define DATA_END FUZZ_GUEST_SIZE
#define MAX_OPS	 256
#define CHECK(c) ((c) ? (void)0 : fail(#c, __LINE__))
#define FB(bit)	 (1ull << (bit))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct rig {
	const uint8_t *p;
	size_t left;
	uint64_t features;
	uint16_t pairs, qsize, nq;
	struct vdk_mem *mem;
	struct vdk_net_backend *lb; /* the loopback */
	struct vdk_net_backend_ops ops;
	struct vdk_net_backend be; /* checking wrapper around it */
	struct vdk_net *net;
	struct vdk_device *dev;
	struct vdk_interrupt irq;
	struct vdk_virtq q[MAXQ];
	struct vdk_virtq *qp[MAXQ];
	struct guest_ring gr[MAXQ];
	uint32_t wlen[MAXQ][64];    /* writable bytes of the chain at head */
	uint64_t wgpa[MAXQ][64];    /* its first buffer, if writable, else 0 */
	uint32_t wfirst[MAXQ][64];  /* that buffer's length */
	uint8_t ndesc[MAXQ][64];    /* descriptors of the chain at head */
	uint32_t outstanding[MAXQ]; /* descriptors the device holds */
	uint32_t cont[MAXQ];	    /* mergeable buffers still to come */
	bool raw[MAXQ];		    /* raw chains: lengths unknown */
	uint64_t data_next;
};

static struct rig *cur;

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz_net: invariant failed at line %d: %s\n", line,
		what);
	abort();
}

static void quiet(void *o, enum vdk_log_level l, const char *m, const char *s)
{
	(void)o;
	(void)l;
	(void)m;
	(void)s;
}

static uint8_t take8(struct rig *r)
{
	if (!r->left)
		return 0;
	r->left--;
	return *r->p++;
}

static uint16_t take16(struct rig *r)
{
	return (uint16_t)(take8(r) | take8(r) << 8);
}

/* The rules of include/vdk/devices/net.h, written again independently. */
static bool header_ok(const struct virtio_net_hdr_v1 *h, uint32_t len,
		      uint64_t f)
{
	uint8_t gso = h->gso_type & 0x7f;
	bool csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;

	if (len < 14 || len > VDK_NET_MAX_PACKET || (h->flags & ~1u))
		return false;
	if (csum &&
	    (!(f & FB(VIRTIO_NET_F_CSUM)) ||
	     le16toh(h->csum_start) + le16toh(h->csum_offset) + 2u > len))
		return false;
	if (le16toh(h->hdr_len) > len)
		return false;
	if (gso == 0)
		return !(h->gso_type & 0x80);
	if ((gso == 1 && !(f & FB(VIRTIO_NET_F_HOST_TSO4))) ||
	    (gso == 4 && !(f & FB(VIRTIO_NET_F_HOST_TSO6))) ||
	    (gso != 1 && gso != 4))
		return false;
	if ((h->gso_type & 0x80) && !(f & FB(VIRTIO_NET_F_HOST_ECN)))
		return false;
	return csum && h->gso_size && le16toh(h->gso_size) < len;
}

static ssize_t check_send(void *be, uint16_t pair, const struct iovec *iov,
			  int iovcnt)
{
	struct virtio_net_hdr_v1 h;
	size_t len = 0;

	CHECK(iovcnt >= 1 && iov[0].iov_len == VDK_NET_HDR_LEN);
	memcpy(&h, iov[0].iov_base, sizeof(h));
	for (int i = 1; i < iovcnt; i++)
		len += iov[i].iov_len;
	CHECK(header_ok(&h, (uint32_t)len, cur->features));
	CHECK(h.num_buffers == 0);
	return cur->lb->ops->send(be, pair, iov, iovcnt);
}

static void on_used(void *o, uint16_t q)
{
	(void)o;
	CHECK(q < MAXQ);
}

static void on_reset(void *o)
{
	(void)o;
}

static const struct vdk_interrupt_ops irq_ops = {
	.signal_used_queue = on_used,
	.signal_config_changed = on_reset,
	.set_needs_reset = on_reset,
};

static uint64_t data_alloc(struct rig *r, uint32_t len)
{
	uint64_t g;

	if (len > DATA_END - DATA_GPA)
		len = DATA_END - DATA_GPA;
	if (r->data_next + len > DATA_END)
		r->data_next = DATA_GPA;
	g = r->data_next;
	r->data_next += (len + 15) & ~15u;
	return g;
}

static bool new_device(struct rig *r)
{
	struct vdk_net_config cfg = {.backend = &r->be,
				     .max_queue_pairs = r->pairs,
				     .queue_max_size = 32,
				     .mtu = 1500};

	r->net = vdk_net_new(&cfg, NULL);
	if (!r->net)
		return false;
	r->dev = vdk_net_device(r->net);
	return true;
}

static bool activate(struct rig *r)
{
	if (vdk_device_ack_features(r->dev, r->features) < 0)
		return false;
	for (uint16_t i = 0; i < r->nq; i++) {
		struct vdk_virtq *q = &r->q[i];

		vdk_virtq_init(q, 32, i);
		guest_ring_init(&r->gr[i], r->mem, r->qsize,
				RING_GPA + i * 0x800u);
		vdk_virtq_set_size(q, r->qsize);
		vdk_virtq_set_addrs(q, r->gr[i].desc_gpa, r->gr[i].avail_gpa,
				    r->gr[i].used_gpa);
		vdk_virtq_set_ready(q, true);
		CHECK(vdk_virtq_activate(q, r->mem, r->features) == 0);
		r->qp[i] = q;
		r->raw[i] = false;
		r->outstanding[i] = 0;
		r->cont[i] = 0;
	}
	for (uint16_t i = r->nq; i < MAXQ; i++)
		r->qp[i] = NULL;
	return vdk_device_activate(r->dev, r->mem, &r->irq, r->qp) == 0;
}

/* A received packet's header: num_buffers 1, or with MRG_RXBUF >= 1 and
 * the next num_buffers - 1 used entries its continuation (§5.1.6.4). */
static void check_rx(struct rig *r, uint16_t q, uint32_t id)
{
	uint16_t nb;

	memcpy(&nb, fuzz_guest_ptr(r->wgpa[q][id] + 10), 2);
	nb = le16toh(nb);
	if (r->features & FB(VIRTIO_NET_F_MRG_RXBUF)) {
		CHECK(nb >= 1 && nb <= r->qsize);
		r->cont[q] = nb - 1u;
	} else {
		CHECK(nb == 1);
	}
}

/* Consume the used rings and check each entry. */
static void reap(struct rig *r)
{
	uint16_t ctrl = r->nq - 1;
	bool has_ctrl = r->features & FB(VIRTIO_NET_F_CTRL_VQ);

	for (uint16_t i = 0; i < r->nq; i++) {
		uint32_t id, len;

		while (guest_ring_get_used(&r->gr[i], &id, &len) == 1) {
			if (r->raw[i])
				continue;
			CHECK(id < r->qsize);
			CHECK(len <= r->wlen[i][id]);
			r->outstanding[i] -= r->ndesc[i][id];
			if (has_ctrl && i == ctrl)
				CHECK(len <= 1);
			else if (i & 1)
				CHECK(len == 0);
			else if (r->cont[i])
				r->cont[i]--; /* a mergeable continuation */
			else if (len >= VDK_NET_HDR_LEN && r->wgpa[i][id] &&
				 r->wfirst[i][id] >= VDK_NET_HDR_LEN)
				check_rx(r, i, id);
			else if (len >= VDK_NET_HDR_LEN &&
				 (r->features & FB(VIRTIO_NET_F_MRG_RXBUF)))
				r->raw[i] = true; /* header split: lose track */
		}
	}
}

static void add_chain(struct rig *r, uint16_t q, struct guest_buf *b,
		      uint16_t n)
{
	uint32_t w = 0;
	int head;

	/* A driver never reuses descriptors the device holds. */
	if (!r->raw[q] && r->outstanding[q] + n > r->qsize)
		return;
	for (uint16_t i = 0; i < n; i++)
		if (b[i].writable)
			w += b[i].len;
	head = guest_ring_add_chain(&r->gr[q], b, n);
	if (head >= 0) {
		r->wlen[q][head] = w;
		r->wgpa[q][head] = b[0].writable ? b[0].gpa : 0;
		r->wfirst[q][head] = b[0].len;
		r->ndesc[q][head] = (uint8_t)n;
		r->outstanding[q] += n;
	}
}

static void op_rx(struct rig *r)
{
	struct guest_buf b[4];
	uint8_t shape = take8(r);
	uint16_t n = (uint16_t)(shape % 4 + 1);
	uint16_t q = (uint16_t)(2 * ((shape >> 2) % r->pairs));

	for (uint16_t i = 0; i < n; i++) {
		uint32_t len = take16(r) % 4096 + 1;

		b[i].gpa = data_alloc(r, len);
		b[i].len = len;
		b[i].writable = !(shape & 0x80) || i > 0;
	}
	add_chain(r, q, b, n);
}

static void op_tx(struct rig *r)
{
	struct virtio_net_hdr_v1 h;
	uint8_t shape = take8(r);
	uint16_t q = (uint16_t)(2 * ((shape >> 2) % r->pairs) + 1);
	uint32_t flen = take16(r) % 12000;
	struct guest_buf b[3];
	uint64_t g = data_alloc(r, VDK_NET_HDR_LEN + flen);
	uint16_t n = (uint16_t)(shape % 3 + 1);

	if (flen + VDK_NET_HDR_LEN > DATA_END - g)
		flen = (uint32_t)(DATA_END - g) - VDK_NET_HDR_LEN;
	for (size_t i = 0; i < sizeof(h); i++)
		((uint8_t *)&h)[i] = take8(r);
	fuzz_guest_write(g, &h, sizeof(h));
	fuzz_guest_fill(g + sizeof(h), (uint8_t)shape, flen);
	if (flen >= 6)
		fuzz_guest_fill(g + sizeof(h), 0xff, 6); /* broadcast */
	/* Split header + frame over n buffers at the input's offsets. */
	uint32_t total = VDK_NET_HDR_LEN + flen, off = 0;
	for (uint16_t i = 0; i < n; i++) {
		uint32_t len =
			i + 1 < n ? take16(r) % (total - off + 1) : total - off;

		b[i] = (struct guest_buf){g + off, len, false};
		off += len;
	}
	if (b[n - 1].len == 0)
		b[n - 1].len = 1;
	add_chain(r, q, b, n);
}

static void op_ctrl(struct rig *r)
{
	struct guest_buf b[2];
	uint8_t cmd[64];
	uint32_t len = take8(r) % sizeof(cmd);
	uint8_t shape = take8(r);

	if (!(r->features & FB(VIRTIO_NET_F_CTRL_VQ)))
		return;
	for (uint32_t i = 0; i < len; i++)
		cmd[i] = take8(r);
	if (len >= 1)
		cmd[0] %= 7; /* mostly known classes */
	b[0] = (struct guest_buf){data_alloc(r, sizeof(cmd)), len ? len : 1,
				  false};
	fuzz_guest_write(b[0].gpa, cmd, len);
	b[1] = (struct guest_buf){data_alloc(r, 4), shape % 3, true};
	add_chain(r, (uint16_t)(r->nq - 1), b, b[1].len ? 2 : 1);
}

static void op_raw(struct rig *r)
{
	uint16_t q = take8(r) % r->nq;
	uint16_t d = take8(r) % r->qsize;
	uint64_t addr = take16(r) * 2u;
	uint32_t len = take16(r);
	uint16_t flags = take8(r) & 7, next = take8(r);

	guest_ring_set_desc(&r->gr[q], d, addr, len, flags, next);
	guest_ring_push(&r->gr[q], d);
	/* A raw buffer may lie over any queue's rings (low guest memory): the
	 * device then writes a frame there because the driver asked it to, so
	 * no queue's used entries can be checked from here on. */
	for (uint16_t i = 0; i < r->nq; i++)
		r->raw[i] = true;
}

static void op_lifecycle(struct rig *r)
{
	uint8_t k = take8(r) % 4;
	uint8_t *buf = NULL;
	size_t blen = 0;

	if (k == 0) {
		CHECK(vdk_device_sleep(r->dev) == 0);
		CHECK(vdk_device_wake(r->dev, NULL, NULL, NULL) == 0);
	} else if (k == 1) {
		struct vdk_virtq **qs;
		struct vdk_net *old = r->net;

		CHECK(vdk_device_sleep(r->dev) == 0);
		qs = vdk_device_sleep_queues(r->dev);
		CHECK(vdk_device_snapshot(r->dev, &buf, &blen) == 0);
		vdk_net_free(old);
		if (!new_device(r))
			abort();
		CHECK(vdk_device_sleep(r->dev) == 0);
		CHECK(vdk_device_restore(r->dev, buf, blen) == 0);
		(void)qs;
		CHECK(vdk_device_wake(r->dev, r->mem, &r->irq, r->qp) == 0);
		free(buf);
	} else if (k == 2) {
		/* One queue stops and starts again while the others run
		 * (vhost-user rings, queue reset): indices survive. */
		uint16_t i = take8(r) % r->nq;
		struct vdk_virtq *q = NULL;
		uint16_t na = vdk_virtq_next_avail(&r->q[i]);

		if (vdk_device_stop_queue(r->dev, i, &q) == 0) {
			CHECK(q == &r->q[i]);
			reap(r);
			CHECK(vdk_virtq_next_avail(q) - na <= r->qsize);
			CHECK(vdk_device_start_queue(r->dev, i, q) == 0);
		}
	} else {
		CHECK(vdk_device_reset(r->dev) == 0);
		for (uint16_t i = 0; i < r->nq; i++)
			vdk_virtq_reset(&r->q[i]);
		CHECK(activate(r));
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	fuzz_guest_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t groups[8] = {
		FB(VIRTIO_NET_F_MRG_RXBUF),
		FB(VIRTIO_NET_F_CSUM) | FB(VIRTIO_NET_F_HOST_TSO4) |
			FB(VIRTIO_NET_F_HOST_TSO6) | FB(VIRTIO_NET_F_HOST_ECN),
		FB(VIRTIO_NET_F_GUEST_CSUM) | FB(VIRTIO_NET_F_GUEST_TSO4) |
			FB(VIRTIO_NET_F_GUEST_TSO6) |
			FB(VIRTIO_NET_F_GUEST_ECN),
		FB(VIRTIO_NET_F_CTRL_VQ) | FB(VIRTIO_NET_F_CTRL_RX) |
			FB(VIRTIO_NET_F_CTRL_VLAN) |
			FB(VIRTIO_NET_F_CTRL_MAC_ADDR),
		FB(VIRTIO_NET_F_MQ),
		FB(VIRTIO_RING_F_EVENT_IDX),
		FB(VIRTIO_RING_F_INDIRECT_DESC),
		FB(VIRTIO_NET_F_GUEST_ANNOUNCE),
	};
	struct rig r = {.p = data, .left = size};
	uint8_t fsel, qsel;
	int err;

	cur = &r;
	fuzz_guest_reset();
	fsel = take8(&r);
	qsel = take8(&r);
	r.qsize = (uint16_t)(4u << (qsel & 3));
	r.pairs = (qsel & 4) ? 2 : 1;
	r.data_next = DATA_GPA;
	r.mem = vdk_mem_new(&err);
	if (!r.mem || fuzz_guest_map(r.mem) < 0)
		abort();
	r.lb = vdk_net_loopback_new(r.pairs, 16, &err);
	if (!r.lb)
		abort();
	r.ops = *r.lb->ops;
	r.ops.send = check_send;
	if (!(qsel & 8))
		r.ops.loops_back = NULL;
	r.ops.destroy = NULL;
	r.be = (struct vdk_net_backend){&r.ops, r.lb->impl};
	vdk_interrupt_init_callback(&r.irq, &irq_ops, &r);
	if (!new_device(&r))
		abort();
	r.features = FB(VIRTIO_F_VERSION_1) | FB(VIRTIO_NET_F_MAC) |
		     FB(VIRTIO_NET_F_STATUS) | FB(VIRTIO_NET_F_MTU);
	for (int i = 0; i < 8; i++)
		if (fsel & (1u << i))
			r.features |= groups[i];
	r.features &= r.dev->ops->features(r.dev->impl);
	/* Dependencies a driver respects (§5.1.3.1). */
	if (!(r.features & FB(VIRTIO_NET_F_CTRL_VQ)))
		r.features &= ~(FB(VIRTIO_NET_F_MQ) |
				FB(VIRTIO_NET_F_GUEST_ANNOUNCE));
	r.nq = (uint16_t)(2 * ((r.features & FB(VIRTIO_NET_F_MQ)) ? r.pairs
								  : 1) +
			  ((r.features & FB(VIRTIO_NET_F_CTRL_VQ)) ? 1 : 0));
	if (!(r.features & FB(VIRTIO_NET_F_MQ)))
		r.pairs = 1;
	if (!activate(&r))
		goto out;
	for (int n = 0; r.left && n < MAX_OPS; n++) {
		switch (take8(&r) % 8) {
		case 0:
			op_rx(&r);
			break;
		case 1:
			op_tx(&r);
			break;
		case 2:
			op_ctrl(&r);
			break;
		case 3:
			vdk_device_queue_notify(r.dev, take8(&r) % MAXQ);
			break;
		case 4:
			op_raw(&r);
			break;
		case 5:
			op_lifecycle(&r);
			break;
		case 6:
			if (take8(&r) & 1)
				vdk_net_set_link(r.net, take8(&r) & 1);
			else
				(void)vdk_net_announce(r.net);
			break;
		default:
			vdk_net_poll(r.net);
			break;
		}
		reap(&r);
	}
out:
	vdk_net_free(r.net);
	vdk_net_backend_free(r.lb);
	vdk_mem_free(r.mem);
	CHECK(fuzz_guest_guards_intact());
	return 0;
}
