/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to src/virtq: what split.c (rings) and chain.c (descriptor chain
 * walks) share. Not installed.
 *
 * Do not assume a value read from guest memory is sensible: descriptors are
 * loaded once into a struct vdk_desc, checked, and only the copy is used.
 */
#ifndef VDK_VIRTQ_INTERNAL_H
#define VDK_VIRTQ_INTERNAL_H

#include <endian.h>
#include <stdint.h>

#include <vdk/virtq.h>

#define VDK_HIDDEN	__attribute__((visibility("hidden")))
#define vdk_likely(x)	__builtin_expect(!!(x), 1)
#define vdk_unlikely(x) __builtin_expect(!!(x), 0)

/** struct vdk_desc - a host-order copy of one struct vring_desc. */
struct vdk_desc {
	uint64_t addr;	/**< guest-physical buffer address */
	uint32_t len;	/**< bytes */
	uint16_t flags; /**< VRING_DESC_F_* */
	uint16_t next;	/**< next descriptor index if F_NEXT */
};

/*
 * vdk_desc_load() - copy a descriptor of the queue's own table once.
 * The table is 16-byte aligned (checked at activation), so two relaxed
 * 64-bit loads read it; being atomic, the compiler cannot re-load a field
 * from guest memory later (no double fetch). Little-endian layout:
 * word 1 = len | flags << 32 | next << 48.
 */
static inline void vdk_desc_load(const struct vring_desc *p, struct vdk_desc *d)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t w0 = le64toh(__atomic_load_n(&w[0], __ATOMIC_RELAXED));
	uint64_t w1 = le64toh(__atomic_load_n(&w[1], __ATOMIC_RELAXED));

	d->addr = w0;
	d->len = (uint32_t)w1;
	d->flags = (uint16_t)(w1 >> 32);
	d->next = (uint16_t)(w1 >> 48);
}

/*
 * vdk_virtq_fail() - stop @q with @err (sticky until reset) and log it once,
 * rate-limited, with the queue index and a printf-style detail.
 * Return: -EIO.
 */
VDK_HIDDEN int vdk_virtq_fail(struct vdk_virtq *q, enum vdk_virtq_error err,
			      const char *fmt, ...)
	__attribute__((format(printf, 3, 4), cold));

/* Flags as they sit in the second 64-bit word of a descriptor. */
#define VDK_DESC_W1_FLAG(f) ((uint64_t)(f) << 32)

/*
 * vdk_virtq_walk_slow() - the general descriptor chain walk (chain.c):
 * several descriptors, indirect tables, zero-length descriptors, buffers
 * spanning regions, and every error case. @addr and @w1 are the head
 * descriptor's two words (address; len | flags << 32 | next << 48) in host
 * order, already loaded once by the caller from @head (< size).
 * Fills @chain.
 * Return: 0, or -EIO after vdk_virtq_fail().
 */
VDK_HIDDEN int vdk_virtq_walk_slow(struct vdk_virtq *q, uint16_t head,
				   uint64_t addr, uint64_t w1,
				   struct vdk_virtq_chain *chain);

/*
 * vdk_virtq_walk_one_slow() - finish a one-descriptor chain whose buffer
 * vdk_mem_translate() refused (it spans regions or is outside guest
 * memory). vdk_virtq_walk() left the descriptor in @chain: head, the
 * lengths, and the buffer's guest-physical address in iov[0].iov_base.
 * Return: as vdk_virtq_walk_slow().
 */
VDK_HIDDEN int vdk_virtq_walk_one_slow(struct vdk_virtq *q,
				       struct vdk_virtq_chain *chain);

/*
 * vdk_virtq_walk() - walk the chain at @head (< size) into @chain.
 *
 * The common case, a single in-region descriptor, is handled inline with one
 * vdk_mem_translate() call; everything else goes to vdk_virtq_walk_slow().
 * For that case the chain is filled in before the call, with the guest
 * address parked in iov[0].iov_base, so that only @q and @chain live across
 * the call (fewer saved registers: this is the hottest path in vdk).
 */
static inline int vdk_virtq_walk(struct vdk_virtq *q, uint16_t head,
				 struct vdk_virtq_chain *chain)
{
	const uint64_t *p = (const uint64_t *)&q->desc[head];
	uint64_t addr = le64toh(__atomic_load_n(&p[0], __ATOMIC_RELAXED));
	uint64_t w1 = le64toh(__atomic_load_n(&p[1], __ATOMIC_RELAXED));
	uint32_t len = (uint32_t)w1;
	const uint64_t chained =
		VDK_DESC_W1_FLAG(VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT);
	struct iovec *iov = chain->iov;
	uint32_t w;
	void *hva;

	_Static_assert(VRING_DESC_F_WRITE == 2, "WRITE is bit 33 of word 1");
	_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t),
		       "iov_base must hold a guest-physical address");

	if (vdk_unlikely((w1 & chained) != 0 || len == 0 ||
			 chain->iov_cap == 0))
		return vdk_virtq_walk_slow(q, head, addr, w1, chain);

	/* Branch-free: w is 1 for a device-writable buffer, else 0. */
	w = (uint32_t)(w1 >> 33) & 1;
	chain->head = head;
	chain->num_readable = w ^ 1;
	chain->num_writable = w;
	chain->writable_len = len & -w;
	chain->readable_len = len & (w - 1);
	iov[0].iov_base = (void *)(uintptr_t)addr;
	iov[0].iov_len = len;
	hva = vdk_mem_translate(q->mem, addr, len);
	if (vdk_unlikely(hva == NULL))
		return vdk_virtq_walk_one_slow(q, chain);
	chain->iov[0].iov_base = hva;
	return 0;
}

#endif /* VDK_VIRTQ_INTERNAL_H */
