/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue, driver side (virtio 1.2 §2.7): descriptor chains made
 * available to the device, used buffers taken back.
 *
 * The descriptor table, available ring and used ring live in memory the
 * device can write. The driver therefore keeps its own bookkeeping (free
 * list, chain lengths, writable capacity, which heads are in flight) in
 * private slots, never reads anything back from the descriptor table, and
 * checks every used ring entry before trusting it. A device that breaks
 * the rules breaks the queue (-EIO), not the driver.
 *
 * Freestanding: no libc, no allocation, no logging.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <asm-generic/errno.h>
#include <linux/virtio_ring.h>

#include <vdk/driver.h>

/** Largest split queue (virtio 1.2 §2.7). */
#define VIRTQ_MAX_SIZE 32768u

/* ---- little-endian ring fields ---------------------------------------- */

static inline uint16_t le16_to_host(uint16_t v)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	return v;
}

static inline uint32_t le32_to_host(uint32_t v)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t le64_to_host(uint64_t v)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

#define host_to_le16 le16_to_host
#define host_to_le32 le32_to_host
#define host_to_le64 le64_to_host

/* Shared fields are accessed atomically (relaxed unless said otherwise):
 * the device may read or write them at any moment. */
static inline uint16_t load16(const void *p, int order)
{
	return le16_to_host(__atomic_load_n((const uint16_t *)p, order));
}

static inline void store16(void *p, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)p, host_to_le16(v), order);
}

static inline uint32_t load32(const void *p)
{
	return le32_to_host(
		__atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED));
}

static void write_desc(struct vring_desc *d, uint64_t addr, uint32_t len,
		       uint16_t flags, uint16_t next)
{
	d->addr = host_to_le64(addr);
	d->len = host_to_le32(len);
	d->flags = host_to_le16(flags);
	d->next = host_to_le16(next);
}

/* ---- layout ------------------------------------------------------------ */

static bool valid_size(uint16_t size)
{
	return size != 0 && size <= VIRTQ_MAX_SIZE && (size & (size - 1)) == 0;
}

/* Byte offsets of the three areas (virtio 1.2 §2.7: alignment 16, 2, 4). */
static size_t avail_offset(uint16_t size)
{
	return (size_t)16 * size;
}

static size_t used_offset(uint16_t size)
{
	/* flags, idx, ring[size], used_event */
	size_t end = avail_offset(size) + 6 + (size_t)2 * size;

	return (end + 3) & ~(size_t)3;
}

size_t vdk_driver_virtq_layout_size(uint16_t size)
{
	if (!valid_size(size))
		return 0;
	/* flags, idx, ring[size] of 8 bytes, avail_event */
	return used_offset(size) + 6 + (size_t)8 * size;
}

/* ---- init --------------------------------------------------------------- */

static void zero_bytes(void *p, size_t len)
{
	/* volatile: keeps the compiler from turning this into a memset call,
	 * which a freestanding guest may not have. */
	volatile uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = 0;
}

static int check_indirect(const struct vdk_driver_virtq_config *cfg,
			  bool *enable)
{
	uint64_t bytes, end;

	*enable = false;
	if (!cfg->indirect || cfg->indirect_max < 2 ||
	    !(cfg->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC)))
		return 0;
	bytes = (uint64_t)cfg->size * cfg->indirect_max * 16;
	if (((uintptr_t)cfg->indirect & 15) || (cfg->indirect_gpa & 15) ||
	    __builtin_add_overflow(cfg->indirect_gpa, bytes, &end))
		return -EINVAL;
	*enable = true;
	return 0;
}

int vdk_driver_virtq_init(struct vdk_driver_virtq *q,
			  struct vdk_driver_transport *t,
			  const struct vdk_driver_hal *hal,
			  const struct vdk_driver_virtq_config *cfg)
{
	size_t layout = vdk_driver_virtq_layout_size(cfg->size);
	uint16_t size = cfg->size;
	uint8_t *ring = cfg->ring;
	uint64_t end;
	uint16_t max;
	bool indirect;
	int ret;

	if (layout == 0 || !ring || !cfg->slots || !hal || !hal->virt_to_phys)
		return -EINVAL;
	if (cfg->ring_len < layout || ((uintptr_t)ring & 15) ||
	    (cfg->ring_gpa & 15) ||
	    __builtin_add_overflow(cfg->ring_gpa, (uint64_t)layout, &end))
		return -EINVAL;
	ret = check_indirect(cfg, &indirect);
	if (ret < 0)
		return ret;

	max = t->ops->max_queue_size(t->ctx, cfg->index);
	if (max == 0)
		return -ENOENT;
	if (size > max)
		return -EINVAL;
	if (t->ops->queue_used(t->ctx, cfg->index))
		return -EBUSY;

	q->t = t;
	q->hal = hal;
	q->index = cfg->index;
	q->size = size;
	q->desc = (struct vring_desc *)ring;
	q->avail = (struct vring_avail *)(ring + avail_offset(size));
	q->used = (struct vring_used *)(ring + used_offset(size));
	q->slots = cfg->slots;
	q->indirect = indirect ? cfg->indirect : NULL;
	q->indirect_gpa = indirect ? cfg->indirect_gpa : 0;
	q->indirect_max = indirect ? cfg->indirect_max : 0;
	q->event_idx = (cfg->features & (1ull << VIRTIO_RING_F_EVENT_IDX)) != 0;
	q->broken = false;
	q->free_head = 0;
	q->num_free = size;
	q->avail_idx = 0;
	q->num_added = 0;
	q->num_in_flight = 0;
	q->last_used = 0;

	/* Fresh rings: idx 0, flags 0, used_event 0 (interrupt on the first
	 * used buffer). */
	zero_bytes(ring, layout);
	for (uint32_t i = 0; i < size; i++) {
		q->slots[i].next = (uint16_t)((i + 1) & (size - 1u));
		q->slots[i].chain_len = 0;
		q->slots[i].writable = 0;
		q->slots[i].in_flight = false;
	}

	/* The ring contents must be visible before the device learns the
	 * addresses (the register writes). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return t->ops->queue_set(t->ctx, cfg->index, size, cfg->ring_gpa,
				 cfg->ring_gpa + avail_offset(size),
				 cfg->ring_gpa + used_offset(size));
}

/* ---- add ---------------------------------------------------------------- */

/* Buffer @i of the chain: readable ones first, then writable ones. */
static const struct vdk_driver_buf *
chain_buf(const struct vdk_driver_buf *readable, uint16_t n_readable,
	  const struct vdk_driver_buf *writable, uint32_t i)
{
	return i < n_readable ? &readable[i] : &writable[i - n_readable];
}

/*
 * Check the buffers: at least one, none empty, writable total within
 * uint32_t. On success *writable_total is the device-writable capacity.
 */
static int check_bufs(const struct vdk_driver_buf *readable,
		      uint16_t n_readable,
		      const struct vdk_driver_buf *writable,
		      uint16_t n_writable, uint32_t *writable_total)
{
	uint32_t total = 0;

	if ((n_readable && !readable) || (n_writable && !writable) ||
	    n_readable + n_writable == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < n_readable; i++) {
		if (readable[i].len == 0 || !readable[i].addr)
			return -EINVAL;
	}
	for (uint32_t i = 0; i < n_writable; i++) {
		if (writable[i].len == 0 || !writable[i].addr ||
		    __builtin_add_overflow(total, writable[i].len, &total))
			return -EINVAL;
	}
	*writable_total = total;
	return 0;
}

/* Translate @b for the device, or VDK_DRIVER_BAD_GPA. */
static uint64_t buf_gpa(const struct vdk_driver_virtq *q,
			const struct vdk_driver_buf *b)
{
	return q->hal->virt_to_phys(q->hal->opaque, b->addr, b->len);
}

/* Fill head's indirect table with the chain (virtio 1.2 §2.7.5.3). */
static int add_indirect(struct vdk_driver_virtq *q, uint16_t head,
			const struct vdk_driver_buf *readable,
			uint16_t n_readable,
			const struct vdk_driver_buf *writable, uint32_t total)
{
	struct vring_desc *table = q->indirect + (size_t)head * q->indirect_max;
	uint64_t table_gpa =
		q->indirect_gpa + (uint64_t)head * q->indirect_max * 16;

	for (uint32_t i = 0; i < total; i++) {
		const struct vdk_driver_buf *b =
			chain_buf(readable, n_readable, writable, i);
		uint64_t gpa = buf_gpa(q, b);
		uint16_t flags = i >= n_readable ? VRING_DESC_F_WRITE : 0;

		if (gpa == VDK_DRIVER_BAD_GPA)
			return -EFAULT;
		if (i + 1 < total)
			flags |= VRING_DESC_F_NEXT;
		write_desc(&table[i], gpa, b->len, flags,
			   (uint16_t)(i + 1 < total ? i + 1 : 0));
	}
	/* §2.7.5.3.1: the table descriptor itself is not writable and has
	 * no NEXT. */
	write_desc(&q->desc[head], table_gpa, total * 16, VRING_DESC_F_INDIRECT,
		   0);
	return 1;
}

/* Write the chain into free descriptors from @head along the free list. */
static int add_direct(struct vdk_driver_virtq *q, uint16_t head,
		      const struct vdk_driver_buf *readable,
		      uint16_t n_readable,
		      const struct vdk_driver_buf *writable, uint32_t total)
{
	uint16_t idx = head;

	for (uint32_t i = 0; i < total; i++) {
		const struct vdk_driver_buf *b =
			chain_buf(readable, n_readable, writable, i);
		uint64_t gpa = buf_gpa(q, b);
		uint16_t flags = i >= n_readable ? VRING_DESC_F_WRITE : 0;
		uint16_t next = q->slots[idx].next;

		if (gpa == VDK_DRIVER_BAD_GPA)
			return -EFAULT;
		if (i + 1 < total)
			flags |= VRING_DESC_F_NEXT;
		write_desc(&q->desc[idx], gpa, b->len, flags,
			   i + 1 < total ? next : 0);
		idx = next;
	}
	return (int)total;
}

int vdk_driver_virtq_add(struct vdk_driver_virtq *q,
			 const struct vdk_driver_buf *readable,
			 uint16_t n_readable,
			 const struct vdk_driver_buf *writable,
			 uint16_t n_writable)
{
	uint32_t total = (uint32_t)n_readable + n_writable;
	uint32_t writable_total;
	uint16_t head, next_free;
	int used, ret;

	if (q->broken)
		return -EIO;
	ret = check_bufs(readable, n_readable, writable, n_writable,
			 &writable_total);
	if (ret < 0)
		return ret;

	/* Nothing below changes the free list until the chain is complete:
	 * on an error the descriptors written so far are still free. */
	head = q->free_head;
	if (q->indirect && total >= 2 && total <= q->indirect_max &&
	    q->num_free >= 1) {
		used = add_indirect(q, head, readable, n_readable, writable,
				    total);
	} else {
		if (total > q->num_free)
			return -ENOSPC;
		used = add_direct(q, head, readable, n_readable, writable,
				  total);
	}
	if (used < 0)
		return used;

	/* Commit: take the descriptors off the free list. */
	next_free = head;
	for (int i = 0; i < used; i++)
		next_free = q->slots[next_free].next;
	q->free_head = next_free;
	q->num_free = (uint16_t)(q->num_free - used);
	q->slots[head].chain_len = (uint16_t)used;
	q->slots[head].writable = writable_total;
	q->slots[head].in_flight = true;
	q->num_in_flight++;

	/* §2.7.13.1-3: ring entry first, then the index with release order,
	 * so the device never sees the index before the descriptors and the
	 * entry it covers. */
	store16(&q->avail->ring[q->avail_idx & (q->size - 1u)], head,
		__ATOMIC_RELAXED);
	q->avail_idx++;
	store16(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	/* Saturate rather than wrap: vring_need_event() over a window of
	 * 65535 indexes then asks for a notification, which is safe. */
	if (q->num_added != UINT16_MAX)
		q->num_added++;
	return head;
}

/* ---- notifications ------------------------------------------------------- */

bool vdk_driver_virtq_should_notify(struct vdk_driver_virtq *q)
{
	uint16_t added = q->num_added;
	bool need;

	q->num_added = 0;
	if (q->broken || added == 0)
		return false;
	/* §2.7.13.4: the new available index must be visible to the device
	 * before we read its suppression state (full barrier: store, then
	 * load). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		/* avail_event sits after the used ring's entries (§2.7.10). */
		uint16_t event =
			load16(&q->used->ring[q->size], __ATOMIC_RELAXED);

		need = vring_need_event(event, q->avail_idx,
					(uint16_t)(q->avail_idx - added));
	} else {
		need = !(load16(&q->used->flags, __ATOMIC_RELAXED) &
			 VRING_USED_F_NO_NOTIFY);
	}
	return need;
}

void vdk_driver_virtq_notify(struct vdk_driver_virtq *q)
{
	q->t->ops->notify(q->t->ctx, q->index);
}

bool vdk_driver_virtq_kick(struct vdk_driver_virtq *q)
{
	if (!vdk_driver_virtq_should_notify(q))
		return false;
	vdk_driver_virtq_notify(q);
	return true;
}

/* ---- used buffers -------------------------------------------------------- */

bool vdk_driver_virtq_can_pop(struct vdk_driver_virtq *q)
{
	if (q->broken)
		return false;
	return load16(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used;
}

static int broken(struct vdk_driver_virtq *q)
{
	q->broken = true;
	return -EIO;
}

int vdk_driver_virtq_pop_used(struct vdk_driver_virtq *q, uint16_t *token,
			      uint32_t *len)
{
	const struct vring_used_elem *elem;
	uint16_t used_idx, pending, tail;
	uint32_t id, written;

	if (q->broken)
		return -EIO;
	/* §2.7.8 / §2.7.13: acquire pairs with the device's release of idx,
	 * so the entry below is read after it was written. */
	used_idx = load16(&q->used->idx, __ATOMIC_ACQUIRE);
	if (used_idx == q->last_used)
		return -EAGAIN;
	pending = (uint16_t)(used_idx - q->last_used);
	if (pending > q->num_in_flight)
		return broken(q);

	/* Copy the entry once; check the copy; use only the copy. */
	elem = &q->used->ring[q->last_used & (q->size - 1u)];
	id = load32(&elem->id);
	written = load32(&elem->len);
	if (id >= q->size || !q->slots[id].in_flight ||
	    written > q->slots[id].writable)
		return broken(q);

	/* Give the chain back: walk our private links to its tail. */
	tail = (uint16_t)id;
	for (uint16_t i = 1; i < q->slots[id].chain_len; i++)
		tail = q->slots[tail].next;
	q->slots[tail].next = q->free_head;
	q->free_head = (uint16_t)id;
	q->num_free = (uint16_t)(q->num_free + q->slots[id].chain_len);
	q->slots[id].in_flight = false;
	q->slots[id].chain_len = 0;
	q->num_in_flight--;
	q->last_used++;

	if (q->event_idx) {
		/* §2.7.10: used_event (after the available ring's entries)
		 * asks for an interrupt once the device uses the next entry.
		 * Full barrier: the store must be visible before the next
		 * read of the used index, or an interrupt can be missed. */
		store16(&q->avail->ring[q->size], q->last_used,
			__ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}

	*token = (uint16_t)id;
	*len = written;
	return 0;
}

uint16_t vdk_driver_virtq_num_free(const struct vdk_driver_virtq *q)
{
	return q->num_free;
}

bool vdk_driver_virtq_is_broken(const struct vdk_driver_virtq *q)
{
	return q->broken;
}
