/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue, device side (virtio 1.2 §2.7): configuration and
 * activation, the available and used rings, notification suppression
 * (§2.7.10), the device's ring positions, and resubmission and tracking
 * for vhost-user inflight I/O (vhost-user.rst "Inflight I/O tracking").
 * Descriptor chains are walked in chain.c.
 *
 * pop and add_used test one flag, q->fast (active, no error, no track
 * hook, no resubmit list pending), and take their common path inline when
 * it is set; everything else (stopped queue, resubmission, the hook) is on
 * an out-of-line general path.
 *
 * Do not assume that anything read from the rings is sensible: the driver
 * may change any byte at any time. Ring indices are read once into locals
 * and range-checked before use.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>
#include <linux/virtio_config.h>

#include <vdk/virtq.h>

#include "virtq_internal.h"

#define LOG_MODULE "virtq"

static bool size_ok(uint16_t size, uint16_t max)
{
	return size != 0 && size <= max && (size & (size - 1)) == 0;
}

static bool resubmit_pending(const struct vdk_virtq *q)
{
	return q->resubmit_next < q->resubmit_num;
}

/* Keep q->fast in step: called by everything that changes its inputs. */
static void update_fast(struct vdk_virtq *q)
{
	q->fast = q->active && q->error == VDK_VIRTQ_OK && q->track == NULL &&
		  !resubmit_pending(q);
}

/* Forget the resubmit list (all popped, or replaced). */
static void resubmit_drop(struct vdk_virtq *q)
{
	free(q->resubmit);
	q->resubmit = NULL;
	q->resubmit_num = 0;
	q->resubmit_next = 0;
	update_fast(q);
}

int vdk_virtq_init(struct vdk_virtq *q, uint16_t max_size, uint16_t index)
{
	if (!size_ok(max_size, VDK_VIRTQ_MAX_SIZE))
		return -EINVAL;
	*q = (struct vdk_virtq){
		.max_size = max_size,
		.size = max_size,
		.index = index,
		.log_rl = VDK_RATELIMIT_INIT,
	};
	return 0;
}

void vdk_virtq_reset(struct vdk_virtq *q)
{
	/* The rate limiter survives: a driver looping on reset must not be
	 * able to flood the log. */
	struct vdk_ratelimit rl = q->log_rl;

	free(q->resubmit);
	*q = (struct vdk_virtq){
		.max_size = q->max_size,
		.size = q->max_size,
		.index = q->index,
		.log_rl = rl,
	};
}

int vdk_virtq_set_size(struct vdk_virtq *q, uint16_t size)
{
	if (q->active)
		return -EBUSY;
	if (!size_ok(size, q->max_size))
		return -EINVAL;
	q->size = size;
	return 0;
}

int vdk_virtq_set_addrs(struct vdk_virtq *q, uint64_t desc_gpa,
			uint64_t driver_gpa, uint64_t device_gpa)
{
	if (q->active)
		return -EBUSY;
	q->desc_gpa = desc_gpa;
	q->driver_gpa = driver_gpa;
	q->device_gpa = device_gpa;
	return 0;
}

void vdk_virtq_set_ready(struct vdk_virtq *q, bool ready)
{
	q->ready = ready;
}

/* Host pointer for a whole ring area, or NULL; the host address must be as
 * aligned as the guest-physical one so that ring fields can be accessed
 * atomically (a region mapped at an odd host offset is refused). */
static void *map_area(const struct vdk_mem *mem, uint64_t gpa, uint64_t len,
		      uintptr_t align)
{
	void *p = vdk_mem_translate(mem, gpa, len);

	if (p == NULL || ((uintptr_t)p & (align - 1)) != 0)
		return NULL;
	return p;
}

int vdk_virtq_activate(struct vdk_virtq *q, const struct vdk_mem *mem,
		       uint64_t features)
{
	uint64_t n = q->size;
	void *desc, *avail, *used;

	if (!q->ready || mem == NULL || !size_ok(q->size, q->max_size))
		return -EINVAL;
	/* Alignment table, virtio 1.2 §2.7. */
	if ((q->desc_gpa & (VRING_DESC_ALIGN_SIZE - 1)) != 0 ||
	    (q->driver_gpa & (VRING_AVAIL_ALIGN_SIZE - 1)) != 0 ||
	    (q->device_gpa & (VRING_USED_ALIGN_SIZE - 1)) != 0)
		return -EINVAL;
	desc = map_area(mem, q->desc_gpa, 16 * n, VRING_DESC_ALIGN_SIZE);
	avail = map_area(mem, q->driver_gpa, 6 + 2 * n, VRING_AVAIL_ALIGN_SIZE);
	used = map_area(mem, q->device_gpa, 6 + 8 * n, VRING_USED_ALIGN_SIZE);
	if (desc == NULL || avail == NULL || used == NULL)
		return -EFAULT;

	q->mem = mem;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->used_event = &q->avail->ring[n];
	q->avail_event = (uint16_t *)&q->used->ring[n];
	q->indirect = (features >> VIRTIO_RING_F_INDIRECT_DESC) & 1;
	q->event_idx = (features >> VIRTIO_RING_F_EVENT_IDX) & 1;
	q->notify_on_empty = (features >> VIRTIO_F_NOTIFY_ON_EMPTY) & 1;
	q->signalled_used_valid = false;
	q->mask = (uint32_t)n - 1;
	/* Start with the region of the rings: guests put buffers there too. */
	vdk_mem_cache_clear(&q->bufs);
	vdk_mem_translate_fill(mem, q->desc_gpa, 16 * n, &q->bufs);
	q->avail_at_activate = q->next_avail;
	q->resubmitted = false;
	q->active = true;
	update_fast(q);
	return 0;
}

void vdk_virtq_deactivate(struct vdk_virtq *q)
{
	q->active = false;
	q->fast = false;
	vdk_mem_cache_clear(&q->bufs);
	q->mem = NULL;
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	q->used_event = NULL;
	q->avail_event = NULL;
}

int vdk_virtq_fail(struct vdk_virtq *q, enum vdk_virtq_error err,
		   const char *fmt, ...)
{
	char detail[160];
	va_list ap;
	int ret = -EIO;

	q->error = err;
	q->fast = false;
	if (vdk_ratelimit_ok(&q->log_rl)) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
		vdk_log(VDK_LOG_ERROR, LOG_MODULE, "queue %u stopped: %s (%s)",
			(unsigned)q->index, vdk_virtq_strerror(err), detail);
	}
	/* Hide the constant from the optimiser: knowing it, clang would load
	 * -EIO before the call instead of jumping to the error path, and keep
	 * a stack frame on the fast path of every caller. */
	__asm__("" : "+r"(ret));
	return ret;
}

/*
 * The error exits of vdk_virtq_pop(), out of line and with fixed arguments
 * so that the compiler can jump to them: the fast path then needs no stack
 * frame.
 */
static __attribute__((noinline)) int avail_idx_fail(struct vdk_virtq *q,
						    uint16_t avail_idx)
{
	return vdk_virtq_fail(q, VDK_VIRTQ_ERR_AVAIL_IDX,
			      "avail idx %u, next avail %u, size %u", avail_idx,
			      q->next_avail, q->size);
}

static __attribute__((noinline)) int head_fail(struct vdk_virtq *q,
					       uint16_t head)
{
	return vdk_virtq_fail(q, VDK_VIRTQ_ERR_HEAD_INDEX,
			      "head %u at avail slot %u, size %u", head,
			      q->next_avail, q->size);
}

/*
 * GCC's SLP vectoriser turns the chain-field stores of the inline fast
 * path into vector shuffles; scalar stores are cheaper here.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_SLP __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define NO_SLP
#endif

/* The available-ring part of vdk_virtq_pop(), for a usable queue. */
static inline __attribute__((always_inline)) NO_SLP int
pop_avail(struct vdk_virtq *q, struct vdk_virtq_chain *chain)
{
	const struct vring_avail *avail = q->avail;
	uint16_t avail_idx, pending, head, next = q->next_avail;
	uint64_t addr, w1;

	/* Acquire: the ring entry and descriptors the driver wrote before
	 * publishing avail->idx are visible to the loads below (§2.7.13.3). */
	avail_idx = vdk_le16_load_acquire(&avail->idx);
	pending = (uint16_t)(avail_idx - next);
	if (pending == 0)
		return 0;
	if (vdk_unlikely(pending > q->size))
		return avail_idx_fail(q, avail_idx);
	head = vdk_le16_load(&avail->ring[(size_t)(next & q->mask)]);
	if (vdk_unlikely(head >= q->size))
		return head_fail(q, head);
	/* The head descriptor, copied once (no double fetch). */
	vdk_desc_words(&q->desc[head], &addr, &w1);
	if (vdk_unlikely(!vdk_virtq_walk_one(q, head, addr, w1, chain)))
		return vdk_virtq_pop_slow(q, head, addr, w1, chain);
	vdk_virtq_pop_done(q);
	return 1;
}

/*
 * The next head of the resubmit list, walked like a fresh chain (the queue
 * size may have changed since the list was checked, so the head is checked
 * again). It is counted in flight; next_avail stays.
 */
static int pop_resubmit(struct vdk_virtq *q, struct vdk_virtq_chain *chain)
{
	uint16_t head = q->resubmit[q->resubmit_next];
	uint64_t addr, w1;
	int r;

	if (head >= q->size)
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_HEAD_INDEX,
				      "resubmitted head %u, size %u", head,
				      q->size);
	vdk_desc_words(&q->desc[head], &addr, &w1);
	r = vdk_virtq_walk_slow(q, head, addr, w1, chain);
	if (r != 0)
		return r;
	q->in_flight++;
	q->resubmitted = true;
	if (++q->resubmit_next == q->resubmit_num)
		resubmit_drop(q);
	return 1;
}

/* vdk_virtq_pop() when q->fast is clear: stopped, resubmitting, tracked. */
static __attribute__((noinline)) NO_SLP int
pop_general(struct vdk_virtq *q, struct vdk_virtq_chain *chain)
{
	int r;

	if (!q->active || q->error != VDK_VIRTQ_OK)
		return -EIO;
	if (resubmit_pending(q))
		r = pop_resubmit(q, chain);
	else
		r = pop_avail(q, chain);
	if (r == 1 && q->track && q->track->popped)
		q->track->popped(q->track_opaque, chain->head);
	return r;
}

NO_SLP int vdk_virtq_pop(struct vdk_virtq *q, struct vdk_virtq_chain *chain)
{
	/* One test for the uncommon cases: stopped, resubmitting, tracked. */
	if (vdk_unlikely(!q->fast))
		return pop_general(q, chain);
	return pop_avail(q, chain);
}

/* vdk_virtq_add_used() of a chain the device never took: a device bug. */
static __attribute__((noinline)) int used_id_fail(struct vdk_virtq *q,
						  uint16_t head)
{
	vdk_virtq_fail(q, VDK_VIRTQ_ERR_USED_ID,
		       "used id %u, size %u, %u in flight", head, q->size,
		       q->in_flight);
	return -EINVAL;
}

/* Write the used element for @head and publish it (checks done). */
static inline __attribute__((always_inline)) void
used_publish(struct vdk_virtq *q, uint16_t head, uint32_t written)
{
	/* Locals: the stores into the ring cannot then force reloads of q. */
	struct vring_used *used = q->used;
	uint16_t next = q->next_used;
	uint64_t elem;

	/* struct vring_used_elem {__le32 id; __le32 len;} as one 8-byte
	 * store; the ring is only 4-byte aligned, hence memcpy. */
	elem = htole64((uint64_t)written << 32 | head);
	memcpy(&used->ring[next & q->mask], &elem, sizeof(elem));
	q->next_used = (uint16_t)(next + 1);
	q->in_flight--;
	q->stats.used++;
	q->stats.used_bytes += written;
	/* Release: the element above is visible before the index (§2.7.8). */
	vdk_le16_store_release(&used->idx, (uint16_t)(next + 1));
}

/* vdk_virtq_add_used() when q->fast is clear. */
static __attribute__((noinline)) int
add_used_general(struct vdk_virtq *q, uint16_t head, uint32_t written)
{
	if (!q->active || q->error != VDK_VIRTQ_OK)
		return -EIO;
	if (head >= q->size || q->in_flight == 0)
		return used_id_fail(q, head);
	/* Before the element is published: see struct vdk_virtq_track_ops. */
	if (q->track && q->track->used)
		q->track->used(q->track_opaque, head,
			       (uint16_t)(q->next_used + 1));
	used_publish(q, head, written);
	return 0;
}

int vdk_virtq_add_used(struct vdk_virtq *q, uint16_t head, uint32_t written)
{
	if (vdk_unlikely(!q->fast))
		return add_used_general(q, head, written);
	if (vdk_unlikely(head >= q->size || q->in_flight == 0))
		return used_id_fail(q, head);
	used_publish(q, head, written);
	return 0;
}

/* vdk_virtq_add_used_batch() with a head >= size among @heads: fail with
 * the first. */
static __attribute__((noinline)) int
used_ids_fail(struct vdk_virtq *q, const uint16_t *heads, uint16_t n)
{
	uint16_t i = 0;

	while (i < n - 1 && heads[i] < q->size)
		i++;
	return used_id_fail(q, heads[i]);
}

int vdk_virtq_add_used_batch(struct vdk_virtq *q, const uint16_t *heads,
			     const uint32_t *written, uint16_t n)
{
	struct vring_used *used = q->used;
	uint32_t next = q->next_used, mask = q->mask;
	uint32_t any = 0, i;
	uint64_t any4 = 0;

	if (!q->active || q->error != VDK_VIRTQ_OK)
		return -EIO;
	if (n == 0)
		return 0;
	if (q->in_flight < n)
		return used_id_fail(q, heads[0]);
	/* The size is a power of two (mask = size - 1): every head is below
	 * it if no head has a bit outside the mask, one test for all @n. The
	 * OR is taken four heads (8 bytes) at a time, then folded. */
	for (i = 0; i + 4 <= n; i += 4) {
		uint64_t w;

		memcpy(&w, &heads[i], sizeof(w));
		any4 |= w;
	}
	for (; i < n; i++)
		any |= heads[i];
	any |= (uint32_t)(any4 | any4 >> 16 | any4 >> 32 | any4 >> 48) & 0xffff;
	if (vdk_unlikely(any & ~mask))
		return used_ids_fail(q, heads, n);
	if (vdk_unlikely(q->track && q->track->used)) {
		/* Before the elements are published: struct
		 * vdk_virtq_track_ops (each is published by the one index
		 * store below). */
		for (i = 0; i < n; i++)
			q->track->used(q->track_opaque, heads[i],
				       (uint16_t)(next + i + 1));
	}
	for (i = 0; i < n; i++) {
		/* struct vring_used_elem {__le32 id; __le32 len;} as one
		 * 8-byte store (the ring is only 4-byte aligned). */
		uint64_t elem = htole64((uint64_t)written[i] << 32 | heads[i]);

		memcpy(&used->ring[(next + i) & mask], &elem, sizeof(elem));
	}
	q->next_used = (uint16_t)(next + n);
	q->in_flight -= n;
	/* Release: every element above is visible before the index (§2.7.8),
	 * so the driver sees all @n at once. */
	vdk_le16_store_release(&used->idx, q->next_used);
	return 0;
}

void vdk_virtq_set_track(struct vdk_virtq *q,
			 const struct vdk_virtq_track_ops *ops, void *opaque)
{
	q->track = ops;
	q->track_opaque = ops ? opaque : NULL;
	update_fast(q);
}

/*
 * A resubmit list is set (or dropped) when the device that popped from the
 * queue has stopped and given back the chains it had not returned: those
 * are no longer in flight. Each listed head counts again when it is popped
 * (pop_resubmit()), so a chain given back and resubmitted in the same
 * process is counted once, not twice, and in_flight stays exact: the
 * chains popped since, not returned.
 */
static void given_back(struct vdk_virtq *q)
{
	q->in_flight = 0;
}

int vdk_virtq_set_resubmit(struct vdk_virtq *q, const uint16_t *heads,
			   uint16_t n)
{
	uint64_t *seen;
	uint16_t *copy;

	if (q->active &&
	    (q->next_avail != q->avail_at_activate || q->resubmitted))
		return -EBUSY;
	if (n == 0) {
		resubmit_drop(q);
		given_back(q);
		return 0;
	}
	if (heads == NULL || n > q->size)
		return -EINVAL;
	/* One bit per descriptor: each head < size, none twice. */
	seen = calloc(((size_t)q->size + 63) / 64, sizeof(*seen));
	copy = malloc((size_t)n * sizeof(*copy));
	if (seen == NULL || copy == NULL) {
		free(seen);
		free(copy);
		return -ENOMEM;
	}
	for (uint16_t i = 0; i < n; i++) {
		uint16_t h = heads[i];

		if (h >= q->size || (seen[h / 64] >> (h % 64)) & 1) {
			free(seen);
			free(copy);
			return -EINVAL;
		}
		seen[h / 64] |= 1ull << (h % 64);
		copy[i] = h;
	}
	free(seen);
	resubmit_drop(q);
	q->resubmit = copy;
	q->resubmit_num = n;
	given_back(q);
	update_fast(q);
	return 0;
}

/* Count the decision of vdk_virtq_should_notify(). */
static inline bool count_notify(struct vdk_virtq *q, bool notify)
{
	if (notify)
		q->stats.notify_sent++;
	else
		q->stats.notify_suppressed++;
	return notify;
}

bool vdk_virtq_should_notify(struct vdk_virtq *q)
{
	uint16_t old, new;
	bool valid;

	if (!q->active)
		return false;
	/* Full barrier: our used->idx store must be globally visible before
	 * we read used_event / avail->flags, or we could miss the driver
	 * re-enabling interrupts after seeing the old index (§2.7.10). */
	atomic_thread_fence(memory_order_seq_cst);

	old = q->signalled_used;
	valid = q->signalled_used_valid;
	new = q->next_used;
	q->signalled_used = new;
	q->signalled_used_valid = true;

	/* VIRTIO_F_NOTIFY_ON_EMPTY: notify once the device has run out of
	 * available buffers (nothing available, nothing in flight), whatever
	 * the driver's suppression says. */
	if (q->notify_on_empty && q->in_flight == 0 && !resubmit_pending(q) &&
	    vdk_le16_load(&q->avail->idx) == q->next_avail)
		return count_notify(q, true);
	if (q->event_idx) {
		if (!valid)
			return count_notify(q, true);
		return count_notify(
			q, vring_need_event(vdk_le16_load(q->used_event), new,
					    old));
	}
	return count_notify(q, (vdk_le16_load(&q->avail->flags) &
				VRING_AVAIL_F_NO_INTERRUPT) == 0);
}

bool vdk_virtq_enable_notification(struct vdk_virtq *q, bool enable)
{
	if (!q->active)
		return false;
	if (q->event_idx) {
		/* With EVENT_IDX the driver kicks when avail->idx passes
		 * avail_event; disabling just leaves the old value (at most
		 * one more kick). */
		if (!enable)
			return false;
		vdk_le16_store(q->avail_event, q->next_avail);
	} else {
		uint16_t old = vdk_le16_load(&q->used->flags), flags = old;

		if (enable)
			flags &= (uint16_t)~VRING_USED_F_NO_NOTIFY;
		else
			flags |= VRING_USED_F_NO_NOTIFY;
		/* Only a change is stored: a store to the line the driver
		 * polls takes it away from the driver's cache. */
		if (flags != old)
			vdk_le16_store(&q->used->flags, flags);
		if (!enable)
			return false;
	}
	/* Full barrier: the store above must be visible before we re-read
	 * avail->idx, or a buffer added meanwhile could go unnoticed by both
	 * sides (§2.7.10). */
	atomic_thread_fence(memory_order_seq_cst);
	return resubmit_pending(q) ||
	       vdk_le16_load_acquire(&q->avail->idx) != q->next_avail;
}

bool vdk_virtq_has_avail(const struct vdk_virtq *q)
{
	if (!q->active)
		return false;
	return resubmit_pending(q) ||
	       vdk_le16_load_acquire(&q->avail->idx) != q->next_avail;
}

uint16_t vdk_virtq_next_avail(const struct vdk_virtq *q)
{
	return q->next_avail;
}

uint16_t vdk_virtq_next_used(const struct vdk_virtq *q)
{
	return q->next_used;
}

int vdk_virtq_set_next_avail(struct vdk_virtq *q, uint16_t idx)
{
	if (q->active)
		return -EBUSY;
	q->next_avail = idx;
	return 0;
}

int vdk_virtq_set_next_used(struct vdk_virtq *q, uint16_t idx)
{
	if (q->active)
		return -EBUSY;
	q->next_used = idx;
	q->signalled_used_valid = false;
	return 0;
}

enum vdk_virtq_error vdk_virtq_error(const struct vdk_virtq *q)
{
	return q->error;
}

const char *vdk_virtq_strerror(enum vdk_virtq_error err)
{
	static const char *const msg[VDK_VIRTQ_ERR__COUNT] = {
		[VDK_VIRTQ_OK] = "no error",
		[VDK_VIRTQ_ERR_AVAIL_IDX] =
			"available index moved more than the queue size",
		[VDK_VIRTQ_ERR_HEAD_INDEX] = "chain head index >= queue size",
		[VDK_VIRTQ_ERR_NEXT_INDEX] =
			"next descriptor index >= table size",
		[VDK_VIRTQ_ERR_CHAIN_TOO_LONG] =
			"descriptor chain longer than its table (loop)",
		[VDK_VIRTQ_ERR_DESC_ADDR] =
			"buffer outside guest memory or wrapping",
		[VDK_VIRTQ_ERR_WRITE_BEFORE_READ] =
			"device-readable descriptor after a device-writable "
			"one",
		[VDK_VIRTQ_ERR_INDIRECT_FEATURE] =
			"indirect descriptor without "
			"VIRTIO_RING_F_INDIRECT_DESC",
		[VDK_VIRTQ_ERR_INDIRECT_NESTED] =
			"indirect descriptor inside an indirect table",
		[VDK_VIRTQ_ERR_INDIRECT_LEN] =
			"indirect table length zero, too large or not a "
			"multiple of 16",
		[VDK_VIRTQ_ERR_INDIRECT_NEXT] =
			"indirect descriptor with VRING_DESC_F_NEXT",
		[VDK_VIRTQ_ERR_INDIRECT_ADDR] =
			"indirect table outside guest memory",
		[VDK_VIRTQ_ERR_TOTAL_LEN] = "chain length above 4 GiB - 1",
		[VDK_VIRTQ_ERR_IOV_FULL] = "more buffers than iovec entries",
		[VDK_VIRTQ_ERR_USED_ID] =
			"device returned a chain it did not take",
	};

	if ((unsigned)err >= VDK_VIRTQ_ERR__COUNT || msg[err] == NULL)
		return "unknown virtqueue error";
	return msg[err];
}
