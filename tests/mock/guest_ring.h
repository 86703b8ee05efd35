/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guest_ring: a mock virtio driver for one split virtqueue (virtio 1.2 §2.7),
 * for device-side tests, fuzzing and benchmarks.
 *
 * It writes the descriptor table and the available ring straight into a
 * struct vdk_mem, and reads the used ring back. Nothing is validated: it can
 * build any chain, including malformed ones (loops, bad indices, nested
 * indirect tables), which is the point.
 *
 * Addresses are guest-physical; every access goes through <vdk/mem.h>. A
 * write to an unmapped address fails the call with -EFAULT.
 *
 * Usage:
 *   struct guest_ring gr;
 *   guest_ring_init(&gr, mem, 256, 0x0);          // areas at gpa 0..
 *   vdk_virtq_set_size(q, 256);
 *   vdk_virtq_set_addrs(q, gr.desc_gpa, gr.avail_gpa, gr.used_gpa);
 *   struct guest_buf b[] = {{0x10000, 16, false}, {0x11000, 512, true}};
 *   int head = guest_ring_add_chain(&gr, b, 2);   // device pops it
 *   ...
 *   guest_ring_get_used(&gr, &id, &len);
 */
#ifndef VDK_TESTS_GUEST_RING_H
#define VDK_TESTS_GUEST_RING_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_ring.h>

#include <vdk/mem.h>

/** struct guest_buf - one buffer of a chain built by guest_ring_add_chain. */
struct guest_buf {
	uint64_t gpa;  /**< guest-physical address */
	uint32_t len;  /**< bytes */
	bool writable; /**< VRING_DESC_F_WRITE: device-writable */
};

/** struct guest_ring - the driver's view of one split queue. */
struct guest_ring {
	const struct vdk_mem *mem;
	uint16_t size;	    /**< Queue Size */
	uint64_t desc_gpa;  /**< Descriptor Area */
	uint64_t avail_gpa; /**< Driver Area (available ring) */
	uint64_t used_gpa;  /**< Device Area (used ring) */
	uint16_t avail_idx; /**< driver's shadow of avail->idx */
	uint16_t last_used; /**< used ring entries consumed so far */
	uint16_t free_desc; /**< next descriptor add_chain allocates from */
};

/** Bytes of the descriptor table, available ring, used ring for @size. */
#define GUEST_RING_DESC_BYTES(size)  (16u * (uint64_t)(size))
#define GUEST_RING_AVAIL_BYTES(size) (6u + 2u * (uint64_t)(size))
#define GUEST_RING_USED_BYTES(size)  (6u + 8u * (uint64_t)(size))

/**
 * guest_ring_layout_bytes() - bytes guest_ring_init() lays out for @size
 * (descriptor table, available ring, used ring aligned to 4).
 */
uint64_t guest_ring_layout_bytes(uint16_t size);

/**
 * guest_ring_init() - lay the three areas out contiguously from @base_gpa
 * (which should be 16-byte aligned), zero them and reset the shadows.
 * Return: 0, or -EFAULT if the areas are not in @mem.
 */
int guest_ring_init(struct guest_ring *gr, const struct vdk_mem *mem,
		    uint16_t size, uint64_t base_gpa);

/**
 * guest_ring_init_at() - as guest_ring_init() with explicit, possibly
 * misaligned or unmapped, area addresses; nothing is zeroed.
 */
void guest_ring_init_at(struct guest_ring *gr, const struct vdk_mem *mem,
			uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
			uint64_t used_gpa);

/**
 * guest_ring_write_desc() - write one descriptor at entry @i of the table at
 * @table_gpa (the ring's table or an indirect table). No checks on @i.
 * Return: 0 or -EFAULT.
 */
int guest_ring_write_desc(const struct vdk_mem *mem, uint64_t table_gpa,
			  uint32_t i, uint64_t addr, uint32_t len,
			  uint16_t flags, uint16_t next);

/** guest_ring_set_desc() - guest_ring_write_desc() on the ring's table. */
int guest_ring_set_desc(struct guest_ring *gr, uint16_t i, uint64_t addr,
			uint32_t len, uint16_t flags, uint16_t next);

/**
 * guest_ring_push() - put @head in the next available ring slot and publish
 * it (avail->idx + 1, release order).
 * Return: 0 or -EFAULT.
 */
int guest_ring_push(struct guest_ring *gr, uint16_t head);

/**
 * guest_ring_add_chain() - write @n buffers as a chain of descriptors taken
 * round-robin from the table (entries free_desc, free_desc + 1, ... mod
 * size, linked with VRING_DESC_F_NEXT) and push its head.
 * Return: the head index, or -EINVAL (n == 0 or n > size) or -EFAULT.
 */
int guest_ring_add_chain(struct guest_ring *gr, const struct guest_buf *bufs,
			 uint16_t n);

/**
 * guest_ring_add_indirect() - write @n buffers as an indirect table at
 * @table_gpa, point one ring descriptor at it (VRING_DESC_F_INDIRECT) and
 * push it.
 * Return: the head index, or -EINVAL / -EFAULT.
 */
int guest_ring_add_indirect(struct guest_ring *gr, uint64_t table_gpa,
			    const struct guest_buf *bufs, uint16_t n);

/** guest_ring_set_avail_idx() - store avail->idx = @idx (and the shadow). */
int guest_ring_set_avail_idx(struct guest_ring *gr, uint16_t idx);

/** guest_ring_set_avail_slot() - store avail->ring[@slot % size] = @head. */
int guest_ring_set_avail_slot(struct guest_ring *gr, uint16_t slot,
			      uint16_t head);

/** guest_ring_set_avail_flags() - store avail->flags. */
int guest_ring_set_avail_flags(struct guest_ring *gr, uint16_t flags);

/** guest_ring_set_used_event() - store used_event (avail->ring[size]). */
int guest_ring_set_used_event(struct guest_ring *gr, uint16_t idx);

/** guest_ring_avail_event() - read avail_event (used->ring[size]). */
uint16_t guest_ring_avail_event(const struct guest_ring *gr);

/** guest_ring_used_flags() - read used->flags. */
uint16_t guest_ring_used_flags(const struct guest_ring *gr);

/** guest_ring_used_idx() - read used->idx (acquire order). */
uint16_t guest_ring_used_idx(const struct guest_ring *gr);

/**
 * guest_ring_get_used() - consume the next used ring entry, if any.
 * @id, @len: set from the entry; may be NULL.
 * Return: 1 if an entry was consumed, 0 if none is pending.
 */
int guest_ring_get_used(struct guest_ring *gr, uint32_t *id, uint32_t *len);

/**
 * guest_ring_set_last_used() - set the driver's used-ring position (when the
 * test starts the indices somewhere other than 0).
 */
void guest_ring_set_last_used(struct guest_ring *gr, uint16_t idx);

#endif /* VDK_TESTS_GUEST_RING_H */
