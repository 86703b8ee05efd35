/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue, device side (virtio 1.2 §2.7): configuration and
 * activation, the available and used rings, notification suppression
 * (§2.7.10) and the device's ring positions. Descriptor chains are walked
 * in chain.c.
 *
 * Do not assume that anything read from the rings is sensible: the driver
 * may change any byte at any time. Ring indices are read once into locals
 * and range-checked before use.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include <linux/virtio_config.h>

#include <vdk/virtq.h>

#include "virtq_internal.h"

#define LOG_MODULE "virtq"

static bool size_ok(uint16_t size, uint16_t max)
{
	return size != 0 && size <= max && (size & (size - 1)) == 0;
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
	q->active = true;
	return 0;
}

void vdk_virtq_deactivate(struct vdk_virtq *q)
{
	q->active = false;
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

	q->error = err;
	if (!vdk_ratelimit_ok(&q->log_rl))
		return -EIO;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	vdk_log(VDK_LOG_ERROR, LOG_MODULE, "queue %u stopped: %s (%s)",
		(unsigned)q->index, vdk_virtq_strerror(err), detail);
	return -EIO;
}

/*
 * GCC's SLP vectoriser turns the four chain-field stores of the inline fast
 * path into a dozen vector shuffles; scalar stores are cheaper here.
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
int vdk_virtq_pop(struct vdk_virtq *q, struct vdk_virtq_chain *chain)
{
	const struct vring_avail *avail;
	uint32_t size, next;
	uint16_t avail_idx, pending, head;
	int r;

	if (vdk_unlikely(q->error != VDK_VIRTQ_OK || !q->active))
		return -EIO;
	avail = q->avail;
	size = q->size;
	next = q->next_avail;
	/* Acquire: the ring entry and descriptors the driver wrote before
	 * publishing avail->idx are visible to the loads below (§2.7.13.3). */
	avail_idx = vdk_le16_load_acquire(&avail->idx);
	pending = (uint16_t)(avail_idx - next);
	if (pending == 0)
		return 0;
	if (vdk_unlikely(pending > size))
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_AVAIL_IDX,
				      "avail idx %u, next avail %u, size %u",
				      avail_idx, next, size);
	head = vdk_le16_load(&avail->ring[next & (size - 1)]);
	if (vdk_unlikely(head >= size))
		return vdk_virtq_fail(q, VDK_VIRTQ_ERR_HEAD_INDEX,
				      "head %u at avail slot %u, size %u", head,
				      next, size);
	r = vdk_virtq_walk(q, head, chain);
	if (vdk_unlikely(r != 0))
		return r;
	q->next_avail++; /* from memory: keeps a register free across the walk */
	q->in_flight++;
	return 1;
}

int vdk_virtq_add_used(struct vdk_virtq *q, uint16_t head, uint32_t written)
{
	struct vring_used_elem *e;
	struct vring_used *used;
	uint32_t size = q->size, next;

	if (vdk_unlikely(q->error != VDK_VIRTQ_OK || !q->active))
		return -EIO;
	if (vdk_unlikely(head >= size || q->in_flight == 0)) {
		vdk_virtq_fail(q, VDK_VIRTQ_ERR_USED_ID,
			       "used id %u, size %u, %u in flight", head, size,
			       q->in_flight);
		return -EINVAL;
	}
	/* Locals: the stores into the ring cannot then force reloads of q. */
	used = q->used;
	next = q->next_used;
	e = &used->ring[next & (size - 1)];
	__atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
	q->next_used = (uint16_t)(next + 1);
	/* Release: the element above is visible before the index (§2.7.8). */
	vdk_le16_store_release(&used->idx, (uint16_t)(next + 1));
	q->in_flight--;
	return 0;
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
	if (q->notify_on_empty && q->in_flight == 0 &&
	    vdk_le16_load(&q->avail->idx) == q->next_avail)
		return true;
	if (q->event_idx) {
		if (!valid)
			return true;
		return vring_need_event(vdk_le16_load(q->used_event), new, old);
	}
	return (vdk_le16_load(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT) ==
	       0;
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
		uint16_t flags = vdk_le16_load(&q->used->flags);

		if (enable)
			flags &= (uint16_t)~VRING_USED_F_NO_NOTIFY;
		else
			flags |= VRING_USED_F_NO_NOTIFY;
		vdk_le16_store(&q->used->flags, flags);
		if (!enable)
			return false;
	}
	/* Full barrier: the store above must be visible before we re-read
	 * avail->idx, or a buffer added meanwhile could go unnoticed by both
	 * sides (§2.7.10). */
	atomic_thread_fence(memory_order_seq_cst);
	return vdk_le16_load_acquire(&q->avail->idx) != q->next_avail;
}

bool vdk_virtq_has_avail(const struct vdk_virtq *q)
{
	if (!q->active)
		return false;
	return vdk_le16_load_acquire(&q->avail->idx) != q->next_avail;
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
