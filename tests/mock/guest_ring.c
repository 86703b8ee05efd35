/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guest_ring: a mock split-virtqueue driver (virtio 1.2 §2.7) writing
 * straight into guest memory. See guest_ring.h.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "guest_ring.h"

/* Offsets inside the rings (virtio 1.2 §2.7.6, §2.7.8). */
#define AVAIL_FLAGS   0
#define AVAIL_IDX     2
#define AVAIL_RING(i) (4 + 2 * (uint64_t)(i))
#define USED_FLAGS    0
#define USED_IDX      2
#define USED_RING(i)  (4 + 8 * (uint64_t)(i))

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

uint64_t guest_ring_layout_bytes(uint16_t size)
{
	uint64_t used = align_up(
		GUEST_RING_DESC_BYTES(size) + GUEST_RING_AVAIL_BYTES(size), 4);
	return used + GUEST_RING_USED_BYTES(size);
}

void guest_ring_init_at(struct guest_ring *gr, const struct vdk_mem *mem,
			uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
			uint64_t used_gpa)
{
	memset(gr, 0, sizeof(*gr));
	gr->mem = mem;
	gr->size = size;
	gr->desc_gpa = desc_gpa;
	gr->avail_gpa = avail_gpa;
	gr->used_gpa = used_gpa;
}

int guest_ring_init(struct guest_ring *gr, const struct vdk_mem *mem,
		    uint16_t size, uint64_t base_gpa)
{
	static const uint8_t zero[4096];
	uint64_t avail = base_gpa + GUEST_RING_DESC_BYTES(size);
	uint64_t used = align_up(avail + GUEST_RING_AVAIL_BYTES(size), 4);
	uint64_t total = guest_ring_layout_bytes(size);

	guest_ring_init_at(gr, mem, size, base_gpa, avail, used);
	for (uint64_t off = 0; off < total; off += sizeof(zero)) {
		uint64_t n =
			total - off < sizeof(zero) ? total - off : sizeof(zero);
		if (vdk_mem_write(mem, base_gpa + off, zero, n) != 0)
			return -EFAULT;
	}
	return 0;
}

int guest_ring_write_desc(const struct vdk_mem *mem, uint64_t table_gpa,
			  uint32_t i, uint64_t addr, uint32_t len,
			  uint16_t flags, uint16_t next)
{
	uint64_t gpa = table_gpa + 16 * (uint64_t)i;

	if (vdk_mem_write_le64(mem, gpa, addr) != 0 ||
	    vdk_mem_write_le32(mem, gpa + 8, len) != 0 ||
	    vdk_mem_write_le16(mem, gpa + 12, flags) != 0 ||
	    vdk_mem_write_le16(mem, gpa + 14, next) != 0)
		return -EFAULT;
	return 0;
}

int guest_ring_set_desc(struct guest_ring *gr, uint16_t i, uint64_t addr,
			uint32_t len, uint16_t flags, uint16_t next)
{
	return guest_ring_write_desc(gr->mem, gr->desc_gpa, i, addr, len, flags,
				     next);
}

/* Publish a ring index the way a driver must: release order (§2.7.13.3). */
static int store_idx_release(const struct vdk_mem *mem, uint64_t gpa,
			     uint16_t v)
{
	void *p = vdk_mem_translate(mem, gpa, 2);

	if (p == NULL)
		return -EFAULT;
	if (((uintptr_t)p & 1) != 0)
		return vdk_mem_write_le16(mem, gpa, v);
	vdk_le16_store_release(p, v);
	return 0;
}

int guest_ring_set_avail_idx(struct guest_ring *gr, uint16_t idx)
{
	gr->avail_idx = idx;
	return store_idx_release(gr->mem, gr->avail_gpa + AVAIL_IDX, idx);
}

int guest_ring_set_avail_slot(struct guest_ring *gr, uint16_t slot,
			      uint16_t head)
{
	uint16_t i = gr->size ? slot % gr->size : 0;

	return vdk_mem_write_le16(gr->mem, gr->avail_gpa + AVAIL_RING(i), head);
}

int guest_ring_push(struct guest_ring *gr, uint16_t head)
{
	int r = guest_ring_set_avail_slot(gr, gr->avail_idx, head);

	if (r != 0)
		return r;
	return guest_ring_set_avail_idx(gr, (uint16_t)(gr->avail_idx + 1));
}

int guest_ring_add_chain(struct guest_ring *gr, const struct guest_buf *bufs,
			 uint16_t n)
{
	uint16_t head = gr->free_desc;
	uint16_t i = head;

	if (n == 0 || n > gr->size)
		return -EINVAL;
	for (uint16_t k = 0; k < n; k++) {
		uint16_t next = (uint16_t)((i + 1) % gr->size);
		uint16_t flags = bufs[k].writable ? VRING_DESC_F_WRITE : 0;

		if (k + 1 < n)
			flags |= VRING_DESC_F_NEXT;
		if (guest_ring_set_desc(gr, i, bufs[k].gpa, bufs[k].len, flags,
					k + 1 < n ? next : 0) != 0)
			return -EFAULT;
		i = next;
	}
	gr->free_desc = i;
	if (guest_ring_push(gr, head) != 0)
		return -EFAULT;
	return head;
}

int guest_ring_add_indirect(struct guest_ring *gr, uint64_t table_gpa,
			    const struct guest_buf *bufs, uint16_t n)
{
	uint16_t head = gr->free_desc;

	if (n == 0)
		return -EINVAL;
	for (uint16_t k = 0; k < n; k++) {
		uint16_t flags = bufs[k].writable ? VRING_DESC_F_WRITE : 0;

		if (k + 1 < n)
			flags |= VRING_DESC_F_NEXT;
		if (guest_ring_write_desc(gr->mem, table_gpa, k, bufs[k].gpa,
					  bufs[k].len, flags,
					  k + 1 < n ? k + 1 : 0) != 0)
			return -EFAULT;
	}
	if (guest_ring_set_desc(gr, head, table_gpa, 16u * n,
				VRING_DESC_F_INDIRECT, 0) != 0)
		return -EFAULT;
	gr->free_desc = (uint16_t)((head + 1) % gr->size);
	if (guest_ring_push(gr, head) != 0)
		return -EFAULT;
	return head;
}

int guest_ring_set_avail_flags(struct guest_ring *gr, uint16_t flags)
{
	return vdk_mem_write_le16(gr->mem, gr->avail_gpa + AVAIL_FLAGS, flags);
}

int guest_ring_set_used_event(struct guest_ring *gr, uint16_t idx)
{
	return vdk_mem_write_le16(gr->mem, gr->avail_gpa + AVAIL_RING(gr->size),
				  idx);
}

uint16_t guest_ring_avail_event(const struct guest_ring *gr)
{
	uint16_t v = 0;

	vdk_mem_read_le16(gr->mem, gr->used_gpa + USED_RING(gr->size), &v);
	return v;
}

uint16_t guest_ring_used_flags(const struct guest_ring *gr)
{
	uint16_t v = 0;

	vdk_mem_read_le16(gr->mem, gr->used_gpa + USED_FLAGS, &v);
	return v;
}

uint16_t guest_ring_used_idx(const struct guest_ring *gr)
{
	const void *p = vdk_mem_translate(gr->mem, gr->used_gpa + USED_IDX, 2);
	uint16_t v = 0;

	if (p != NULL && ((uintptr_t)p & 1) == 0)
		return vdk_le16_load_acquire(p);
	vdk_mem_read_le16(gr->mem, gr->used_gpa + USED_IDX, &v);
	return v;
}

int guest_ring_get_used(struct guest_ring *gr, uint32_t *id, uint32_t *len)
{
	uint16_t slot;
	uint32_t v_id = 0, v_len = 0;

	if (guest_ring_used_idx(gr) == gr->last_used)
		return 0;
	slot = gr->size ? gr->last_used % gr->size : 0;
	vdk_mem_read_le32(gr->mem, gr->used_gpa + USED_RING(slot), &v_id);
	vdk_mem_read_le32(gr->mem, gr->used_gpa + USED_RING(slot) + 4, &v_len);
	gr->last_used++;
	if (id != NULL)
		*id = v_id;
	if (len != NULL)
		*len = v_len;
	return 1;
}

void guest_ring_set_last_used(struct guest_ring *gr, uint16_t idx)
{
	gr->last_used = idx;
}
