/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest: a driver virtqueue with arena memory, and a synchronous
 * "add one chain, notify, poll the used ring" helper. No interrupts: the
 * guest polls (virtio 1.2 §2.7.14 lets a driver ignore notifications).
 */
#include <asm-generic/errno.h>

#include <linux/virtio_ring.h>

#include "guest.h"

/** Largest queue the guest sets up (one request in flight is enough). */
#define GQ_MAX_SIZE 64
/** Descriptors per indirect table (blk: header, data, status). */
#define GQ_INDIRECT_MAX 4
/** Poll bound: TSC cycles (~10 s at 1 GHz) and iterations. */
#define GQ_TIMEOUT_CYCLES 10000000000ull
#define GQ_TIMEOUT_POLLS  2000000000ull

int gq_setup(struct gq *g, struct guest_dev *d, uint16_t index, uint16_t want,
	     uint64_t features)
{
	struct vdk_driver_transport *t = d->t;
	struct vdk_driver_virtq_config cfg = {0};
	uint16_t max = t->ops->max_queue_size(t->ctx, index);
	uint16_t size = want > GQ_MAX_SIZE ? GQ_MAX_SIZE : want;

	if (max == 0)
		return -ENOENT;
	while (size > max)
		size /= 2;
	if (size == 0)
		return -EINVAL;
	if (!g->ring) {
		/* Sized for GQ_MAX_SIZE so that a re-setup after a reset
		 * may pick any size. */
		g->ring = arena_alloc(vdk_driver_virtq_layout_size(GQ_MAX_SIZE),
				      4096);
		g->slots = arena_alloc(sizeof(*g->slots) * GQ_MAX_SIZE, 16);
		if (!g->ring || !g->slots)
			return -ENOMEM;
	}
	g->size = size;
	cfg.index = index;
	cfg.size = size;
	cfg.features = features;
	cfg.ring = g->ring;
	cfg.ring_gpa = (uintptr_t)g->ring;
	cfg.ring_len = vdk_driver_virtq_layout_size(GQ_MAX_SIZE);
	cfg.slots = g->slots;
	if (features & (1ull << VIRTIO_RING_F_INDIRECT_DESC)) {
		size_t bytes = (size_t)GQ_MAX_SIZE * GQ_INDIRECT_MAX * 16;

		if (!g->indirect)
			g->indirect = arena_alloc(bytes, 16);
		if (!g->indirect)
			return -ENOMEM;
		cfg.indirect = g->indirect;
		cfg.indirect_gpa = (uintptr_t)g->indirect;
		cfg.indirect_max = GQ_INDIRECT_MAX;
	}
	return vdk_driver_virtq_init(&g->q, t, &guest_hal, &cfg);
}

int gq_submit_wait(struct gq *g, const struct vdk_driver_buf *rd, uint16_t n_rd,
		   const struct vdk_driver_buf *wr, uint16_t n_wr)
{
	uint64_t start = rdtsc();
	uint32_t len;
	uint16_t token;
	int head, ret;

	head = vdk_driver_virtq_add(&g->q, rd, n_rd, wr, n_wr);
	if (head < 0)
		return head;
	vdk_driver_virtq_kick(&g->q);
	for (uint64_t i = 0; !vdk_driver_virtq_can_pop(&g->q); i++) {
		if (vdk_driver_virtq_is_broken(&g->q))
			return -EIO;
		if (i > GQ_TIMEOUT_POLLS || rdtsc() - start > GQ_TIMEOUT_CYCLES)
			return -ETIMEDOUT;
		cpu_relax();
	}
	ret = vdk_driver_virtq_pop_used(&g->q, &token, &len);
	if (ret < 0)
		return ret;
	if (token != (uint16_t)head)
		return -EIO;
	return (int)len;
}
