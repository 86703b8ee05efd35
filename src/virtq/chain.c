/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Descriptor chains (virtio 1.2 §2.7.5, §2.7.5.3 indirect descriptors):
 * walking a chain from the descriptor table or an indirect table into host
 * iovecs, and copying to and from a walked chain.
 *
 * Do not assume a descriptor contains sensible values. Each one is copied
 * to a local once, then checked:
 *   - hops are bounded by the table size (a loop ends as CHAIN_TOO_LONG);
 *   - next < table size;
 *   - INDIRECT only if negotiated, never with NEXT, never inside an
 *     indirect table; the table a non-zero multiple of 16 bytes, at most
 *     VDK_VIRTQ_MAX_SIZE entries, inside one guest memory region;
 *   - no device-readable descriptor after a device-writable one;
 *   - each buffer inside guest memory without wrapping (a buffer crossing
 *     into an adjacent region becomes several iovecs);
 *   - readable and writable totals each <= UINT32_MAX;
 *   - no more iovecs than the caller's array holds.
 *
 * Zero-length descriptors are accepted and skipped: they produce no iovec
 * and their address is not checked (no byte of it is ever accessed), but
 * they count as hops and obey the readable-before-writable rule.
 */
#include <errno.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include <vdk/virtq.h>

#include "virtq_internal.h"

/* State of one walk, written to the chain only on success. */
struct walk {
	struct vdk_virtq *q;
	struct iovec *iov;
	uint32_t iov_cap;
	uint32_t niov;
	uint32_t num_readable;
	uint64_t readable_len;
	uint64_t writable_len;
	bool writing; /* a device-writable descriptor was seen */
};

/*
 * Copy an indirect-table descriptor once. Indirect tables need not be
 * aligned, so memcpy it; the compiler barrier stops the compiler from
 * re-reading guest memory in place of the copy.
 */
static void desc_load_unaligned(const uint8_t *p, struct vdk_desc *d)
{
	uint64_t w[2];

	memcpy(w, p, sizeof(w));
	__asm__ volatile("" : : "r"(w) : "memory");
	d->addr = le64toh(w[0]);
	w[1] = le64toh(w[1]);
	d->len = (uint32_t)w[1];
	d->flags = (uint16_t)(w[1] >> 32);
	d->next = (uint16_t)(w[1] >> 48);
}

/*
 * Append a buffer that vdk_mem_translate() refused as one piece: it wraps,
 * leaves guest memory, or spans adjacent regions (one iovec per region).
 */
static __attribute__((noinline)) int
add_buffer_split(struct walk *w, const struct vdk_desc *d, uint32_t i)
{
	struct vdk_virtq *q = w->q;
	bool writable = (d->flags & VRING_DESC_F_WRITE) != 0;
	uint64_t gpa = d->addr, left = d->len, last;

	if (__builtin_add_overflow(gpa, left - 1, &last))
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_DESC_ADDR,
				      "descriptor %u: addr 0x%llx len %u wraps",
				      i, (unsigned long long)gpa, d->len);
	while (left != 0) {
		void *hva;
		uint64_t n = vdk_mem_translate_clamped(q->mem, gpa, left, &hva);

		if (n == 0 || n > left)
			return vdk_virtq_fail(q, VDK_VIRTQ_ERR_DESC_ADDR,
					      "descriptor %u: addr 0x%llx len "
					      "%u not in guest memory",
					      i, (unsigned long long)d->addr,
					      d->len);
		if (w->niov >= w->iov_cap)
			return vdk_virtq_fail(q, VDK_VIRTQ_ERR_IOV_FULL,
					      "descriptor %u: %u iovecs", i,
					      w->iov_cap);
		w->iov[w->niov].iov_base = hva;
		w->iov[w->niov].iov_len = n;
		w->niov++;
		if (!writable)
			w->num_readable++;
		gpa += n;
		left -= n;
	}
	return 0;
}

/* Append the buffer of descriptor @d (number @i, for messages). */
static inline int add_buffer(struct walk *w, const struct vdk_desc *d,
			     uint32_t i)
{
	struct vdk_virtq *q = w->q;
	bool writable = (d->flags & VRING_DESC_F_WRITE) != 0;
	uint64_t *total;
	void *hva;

	if (writable)
		w->writing = true;
	else if (vdk_unlikely(w->writing))
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_WRITE_BEFORE_READ,
				      "descriptor %u", i);
	if (d->len == 0)
		return 0;
	total = writable ? &w->writable_len : &w->readable_len;
	*total += d->len; /* stops at the first sum > UINT32_MAX: no overflow */
	if (vdk_unlikely(*total > UINT32_MAX))
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_TOTAL_LEN,
				      "descriptor %u: %s length %llu", i,
				      writable ? "writable" : "readable",
				      (unsigned long long)*total);
	/* Common case: the whole buffer in one region, one translation,
	 * usually in the region of the previous buffer. */
	if (vdk_likely(w->niov < w->iov_cap)) {
		if (vdk_likely(
			    vdk_mem_cache_contains(&q->bufs, d->addr, d->len)))
			hva = vdk_mem_cache_translate(&q->bufs, d->addr);
		else
			hva = vdk_mem_translate_fill(q->mem, d->addr, d->len,
						     &q->bufs);
		if (vdk_likely(hva != NULL)) {
			w->iov[w->niov].iov_base = hva;
			w->iov[w->niov].iov_len = d->len;
			w->niov++;
			w->num_readable += !writable;
			return 0;
		}
	}
	return add_buffer_split(w, d, i);
}

/* Walk the indirect table that descriptor @d (number @i) refers to. */
static int walk_indirect(struct walk *w, const struct vdk_desc *d, uint32_t i)
{
	struct vdk_virtq *q = w->q;
	const uint8_t *table;
	uint32_t n, idx = 0, hops = 0;
	struct vdk_desc e;

	if (!q->indirect)
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_INDIRECT_FEATURE,
				      "descriptor %u", i);
	if (d->flags & VRING_DESC_F_NEXT)
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_INDIRECT_NEXT,
				      "descriptor %u", i);
	n = d->len / 16;
	if (d->len == 0 || d->len % 16 != 0 || n > VDK_VIRTQ_MAX_SIZE)
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_INDIRECT_LEN,
				      "descriptor %u: table len %u", i, d->len);
	table = vdk_mem_translate(q->mem, d->addr, d->len);
	if (table == NULL)
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_INDIRECT_ADDR,
				      "descriptor %u: table 0x%llx len %u", i,
				      (unsigned long long)d->addr, d->len);
	for (;;) {
		int r;

		desc_load_unaligned(table + 16 * (size_t)idx, &e);
		hops++;
		if (e.flags & VRING_DESC_F_INDIRECT)
			return vdk_virtq_fail(q, VDK_VIRTQ_ERR_INDIRECT_NESTED,
					      "indirect entry %u", idx);
		r = add_buffer(w, &e, idx);
		if (r != 0)
			return r;
		if (!(e.flags & VRING_DESC_F_NEXT))
			return 0;
		if (e.next >= n)
			return vdk_virtq_fail(
				q, VDK_VIRTQ_ERR_NEXT_INDEX,
				"indirect entry %u: next %u, %u entries", idx,
				e.next, n);
		if (hops >= n)
			return vdk_virtq_fail(q, VDK_VIRTQ_ERR_CHAIN_TOO_LONG,
					      "indirect table of %u entries",
					      n);
		idx = e.next;
	}
}

int vdk_virtq_walk_slow(struct vdk_virtq *q, uint16_t head, uint64_t addr,
			uint64_t w1, struct vdk_virtq_chain *chain)
{
	struct walk w = {
		.q = q,
		.iov = chain->iov,
		.iov_cap = chain->iov_cap,
	};
	struct vdk_desc d = {
		.addr = addr,
		.len = (uint32_t)w1,
		.flags = (uint16_t)(w1 >> 32),
		.next = (uint16_t)(w1 >> 48),
	};
	uint32_t idx = head, hops = 1;
	int r;

	for (;;) {
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* Without NEXT (checked there), this ends the chain. */
			r = walk_indirect(&w, &d, idx);
			if (r != 0)
				return r;
			break;
		}
		r = add_buffer(&w, &d, idx);
		if (r != 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= q->size)
			return vdk_virtq_fail(q, VDK_VIRTQ_ERR_NEXT_INDEX,
					      "descriptor %u: next %u, size %u",
					      idx, d.next, q->size);
		if (hops >= q->size)
			return vdk_virtq_fail(
				q, VDK_VIRTQ_ERR_CHAIN_TOO_LONG,
				"head %u: more than %u descriptors", head,
				q->size);
		idx = d.next;
		vdk_desc_load(&q->desc[idx], &d);
		hops++;
	}

	chain->head = head;
	chain->num_readable = w.num_readable;
	chain->num_writable = w.niov - w.num_readable;
	chain->readable_len = (uint32_t)w.readable_len;
	chain->writable_len = (uint32_t)w.writable_len;
	return 0;
}

int vdk_virtq_pop_slow(struct vdk_virtq *q, uint16_t head, uint64_t addr,
		       uint64_t w1, struct vdk_virtq_chain *chain)
{
	int r = vdk_virtq_walk_slow(q, head, addr, w1, chain);

	if (r != 0)
		return r;
	vdk_virtq_pop_done(q);
	return 1;
}

/* Copy between @buf and the iovecs [first, first + count) of @chain,
 * starting @offset bytes into them. memmove, here and in the fast paths
 * below: @buf may be guest memory too (virtio-net's loopback copies one
 * chain into another) and a hostile guest can make the two overlap. */
static size_t chain_copy(const struct vdk_virtq_chain *chain, uint32_t first,
			 uint32_t count, size_t offset, void *buf, size_t len,
			 bool to_chain)
{
	uint8_t *p = buf;
	size_t done = 0;

	if (first > chain->iov_cap || count > chain->iov_cap - first)
		return 0;
	for (uint32_t i = first; i < first + count && done < len; i++) {
		const struct iovec *v = &chain->iov[i];
		size_t n;

		if (offset >= v->iov_len) {
			offset -= v->iov_len;
			continue;
		}
		n = v->iov_len - offset;
		if (n > len - done)
			n = len - done;
		if (to_chain)
			memmove((uint8_t *)v->iov_base + offset, p + done, n);
		else
			memmove(p + done, (const uint8_t *)v->iov_base + offset,
				n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t vdk_virtq_chain_copy_from(const struct vdk_virtq_chain *chain,
				 size_t offset, void *buf, size_t len)
{
	/* Fast path: all of it inside the first readable iovec (a header,
	 * a one-descriptor packet). */
	if (chain->num_readable && chain->iov_cap &&
	    offset < chain->iov[0].iov_len &&
	    len <= chain->iov[0].iov_len - offset) {
		memmove(buf, (const uint8_t *)chain->iov[0].iov_base + offset,
			len);
		return len;
	}
	return chain_copy(chain, 0, chain->num_readable, offset, buf, len,
			  false);
}

size_t vdk_virtq_chain_copy_to(const struct vdk_virtq_chain *chain,
			       size_t offset, const void *buf, size_t len)
{
	uint32_t w = chain->num_readable;

	/* Fast path: all of it inside the first writable iovec (a receive
	 * buffer of one descriptor). */
	if (chain->num_writable && w < chain->iov_cap &&
	    offset < chain->iov[w].iov_len &&
	    len <= chain->iov[w].iov_len - offset) {
		memmove((uint8_t *)chain->iov[w].iov_base + offset, buf, len);
		return len;
	}
	return chain_copy(chain, chain->num_readable, chain->num_writable,
			  offset, (void *)buf, len, true);
}
