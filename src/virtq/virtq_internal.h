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
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <linux/virtio_ring.h>

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
 * vdk_desc_words() - copy a descriptor of the queue's own table once, as
 * its two little-endian words in host order: @addr, and @w1 = len |
 * flags << 32 | next << 48. The table is 16-byte aligned (checked at
 * activation), so two relaxed 64-bit loads read it; being atomic, the
 * compiler cannot re-load a field from guest memory later (no double
 * fetch).
 */
static inline void vdk_desc_words(const struct vring_desc *p, uint64_t *addr,
				  uint64_t *w1)
{
	const uint64_t *w = (const uint64_t *)p;

	*addr = le64toh(__atomic_load_n(&w[0], __ATOMIC_RELAXED));
	*w1 = le64toh(__atomic_load_n(&w[1], __ATOMIC_RELAXED));
}

/* vdk_desc_load() - vdk_desc_words() into a struct vdk_desc. */
static inline void vdk_desc_load(const struct vring_desc *p, struct vdk_desc *d)
{
	uint64_t w0, w1;

	vdk_desc_words(p, &w0, &w1);
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
 * outside the cached region or spanning regions, and every error case.
 * @addr and @w1 are the head descriptor's two words (address; len |
 * flags << 32 | next << 48) in host order, already loaded once by the
 * caller from @head (< size).
 * Fills @chain.
 * Return: 0, or -EIO after vdk_virtq_fail().
 */
VDK_HIDDEN int vdk_virtq_walk_slow(struct vdk_virtq *q, uint16_t head,
				   uint64_t addr, uint64_t w1,
				   struct vdk_virtq_chain *chain);

/*
 * vdk_virtq_pop_slow() - the end of vdk_virtq_pop() for every chain that
 * vdk_virtq_walk_one() does not take: vdk_virtq_walk_slow(), then, on
 * success, vdk_virtq_pop_done(). Arguments as vdk_virtq_walk_slow().
 * Return: 1, or -EIO.
 */
VDK_HIDDEN int vdk_virtq_pop_slow(struct vdk_virtq *q, uint16_t head,
				  uint64_t addr, uint64_t w1,
				  struct vdk_virtq_chain *chain);

/* vdk_virtq_pop_done() - a chain was taken: advance past its slot. */
static inline void vdk_virtq_pop_done(struct vdk_virtq *q)
{
	q->next_avail++;
	q->in_flight++;
}

/*
 * vdk_store_u32_pair() - store the low half of @v in @lo[0] and the high
 * half in @lo[1], as one 8-byte store on a little-endian host (compilers do
 * not always merge the two stores themselves).
 */
static inline void vdk_store_u32_pair(uint32_t *lo, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(lo, &v, sizeof(v));
#else
	lo[0] = (uint32_t)v;
	lo[1] = (uint32_t)(v >> 32);
#endif
}

/*
 * vdk_virtq_walk_one() - the common case of a chain walk, inline: a single
 * descriptor (no NEXT, no INDIRECT), non-empty, whose buffer lies in the
 * region of the previous buffer (q->bufs). @addr and @w1 are the head
 * descriptor's words as for vdk_virtq_walk_slow().
 *
 * Return: true if @chain is filled in; false if the chain is not of that
 * kind, and then nothing was checked or written: the caller goes to
 * vdk_virtq_pop_slow(), which checks everything.
 */
static inline bool vdk_virtq_walk_one(struct vdk_virtq *q, uint16_t head,
				      uint64_t addr, uint64_t w1,
				      struct vdk_virtq_chain *chain)
{
	const uint64_t chained =
		VDK_DESC_W1_FLAG(VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT);
	uint32_t len = (uint32_t)w1, sh;
	struct iovec *iov;
	uint64_t n, l;

	_Static_assert(VRING_DESC_F_WRITE == 2, "WRITE is bit 33 of word 1");
	_Static_assert(offsetof(struct vdk_virtq_chain, num_writable) ==
			       offsetof(struct vdk_virtq_chain, num_readable) +
				       4,
		       "num_readable, num_writable are a pair");
	_Static_assert(offsetof(struct vdk_virtq_chain, writable_len) ==
			       offsetof(struct vdk_virtq_chain, readable_len) +
				       4,
		       "readable_len, writable_len are a pair");

	if (vdk_unlikely((w1 & chained) != 0 || chain->iov_cap == 0))
		return false;
	/* Non-empty and in the region of the last buffer (checked without
	 * overflow); zero-length buffers take the slow path. */
	if (vdk_unlikely(!vdk_mem_cache_contains(&q->bufs, addr, len)))
		return false;

	/*
	 * Branch-free: sh is 32 for a device-writable buffer (WRITE is bit 33
	 * of w1), else 0. The 64-bit values n and l hold {num_readable,
	 * num_writable} and {readable_len, writable_len} as low and high
	 * halves, each stored with one 8-byte store.
	 */
	sh = (uint32_t)(w1 >> 28) & 32;
	n = 1ull << sh;
	l = (uint64_t)len << sh;
	iov = chain->iov;
	iov[0].iov_base = vdk_mem_cache_translate(&q->bufs, addr);
	iov[0].iov_len = len;
	chain->head = head;
	vdk_store_u32_pair(&chain->num_readable, n);
	vdk_store_u32_pair(&chain->readable_len, l);
	return true;
}

#endif /* VDK_VIRTQ_INTERNAL_H */
