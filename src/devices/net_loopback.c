/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loopback packet backend: what is sent on a queue pair comes back on
 * the same pair, header and all. A bounded FIFO of packets per pair; each
 * slot keeps its buffer, grown to the largest packet it held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_net.h>

#include <vdk/devices/net.h>

#define FB(bit) (1ull << (bit))

struct lb_slot {
	uint8_t *buf;
	uint32_t cap, len;
};

struct lb_fifo {
	struct lb_slot *slots;
	uint32_t head, count; /* oldest slot, packets held */
};

struct lb {
	uint16_t pairs;
	uint32_t depth;
	struct lb_fifo fifo[VDK_NET_MAX_QUEUE_PAIRS];
};

static ssize_t lb_send(void *be, uint16_t pair, const struct iovec *iov,
		       int iovcnt)
{
	struct lb *lb = be;
	struct lb_fifo *f;
	struct lb_slot *s;
	size_t len = 0, off = 0;

	if (pair >= lb->pairs)
		return -EINVAL;
	f = &lb->fifo[pair];
	if (f->count == lb->depth)
		return -EAGAIN;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > VDK_NET_HDR_LEN + VDK_NET_MAX_PACKET)
		return -EMSGSIZE;
	s = &f->slots[(f->head + f->count) % lb->depth];
	if (s->cap < len) {
		uint8_t *p = realloc(s->buf, len);

		if (!p)
			return -ENOMEM;
		s->buf = p;
		s->cap = (uint32_t)len;
	}
	for (int i = 0; i < iovcnt; i++) {
		memcpy(s->buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	s->len = (uint32_t)len;
	f->count++;
	return (ssize_t)len;
}

static ssize_t lb_recv(void *be, uint16_t pair, const struct iovec *iov,
		       int iovcnt)
{
	struct lb *lb = be;
	struct lb_fifo *f;
	struct lb_slot *s;
	size_t off = 0;

	if (pair >= lb->pairs)
		return -EINVAL;
	f = &lb->fifo[pair];
	if (!f->count)
		return -EAGAIN;
	s = &f->slots[f->head];
	for (int i = 0; i < iovcnt && off < s->len; i++) {
		size_t k = s->len - off;

		if (k > iov[i].iov_len)
			k = iov[i].iov_len;
		memcpy(iov[i].iov_base, s->buf + off, k);
		off += k;
	}
	f->head = (f->head + 1) % lb->depth;
	f->count--;
	return (ssize_t)off;
}

static bool lb_loops_back(void *be, uint16_t pair)
{
	struct lb *lb = be;

	return pair < lb->pairs && lb->fifo[pair].count == 0;
}

static uint64_t lb_offloads(void *be)
{
	(void)be;
	return FB(VIRTIO_NET_F_CSUM) | FB(VIRTIO_NET_F_GUEST_CSUM) |
	       FB(VIRTIO_NET_F_HOST_TSO4) | FB(VIRTIO_NET_F_HOST_TSO6) |
	       FB(VIRTIO_NET_F_HOST_ECN) | FB(VIRTIO_NET_F_GUEST_TSO4) |
	       FB(VIRTIO_NET_F_GUEST_TSO6) | FB(VIRTIO_NET_F_GUEST_ECN);
}

static void lb_destroy(void *be)
{
	struct lb *lb = be;

	for (uint16_t p = 0; p < lb->pairs; p++) {
		if (!lb->fifo[p].slots)
			continue;
		for (uint32_t i = 0; i < lb->depth; i++)
			free(lb->fifo[p].slots[i].buf);
		free(lb->fifo[p].slots);
	}
	free(lb);
}

static const struct vdk_net_backend_ops lb_ops = {
	.send = lb_send,
	.recv = lb_recv,
	.offloads = lb_offloads,
	.destroy = lb_destroy,
	.loops_back = lb_loops_back,
};

struct vdk_net_backend *vdk_net_loopback_new(uint16_t pairs, uint32_t depth,
					     int *err)
{
	struct vdk_net_backend *be;
	struct lb *lb;

	if (pairs < 1 || pairs > VDK_NET_MAX_QUEUE_PAIRS) {
		if (err)
			*err = -EINVAL;
		return NULL;
	}
	lb = calloc(1, sizeof(*lb));
	be = calloc(1, sizeof(*be));
	if (!lb || !be)
		goto nomem;
	lb->pairs = pairs;
	lb->depth = depth ? depth : 256;
	for (uint16_t p = 0; p < pairs; p++) {
		lb->fifo[p].slots = calloc(lb->depth, sizeof(struct lb_slot));
		if (!lb->fifo[p].slots)
			goto nomem;
	}
	be->ops = &lb_ops;
	be->impl = lb;
	return be;
nomem:
	if (lb)
		lb_destroy(lb);
	free(be);
	if (err)
		*err = -ENOMEM;
	return NULL;
}

void vdk_net_backend_free(struct vdk_net_backend *be)
{
	if (!be)
		return;
	if (be->ops && be->ops->destroy)
		be->ops->destroy(be->impl);
	free(be);
}
