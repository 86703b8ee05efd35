// SPDX-License-Identifier: Apache-2.0
/*
 * Inflight I/O tracking for split rings (QEMU docs/interop/vhost-user.rst,
 * "Inflight I/O tracking", VHOST_USER_GET_INFLIGHT_FD / SET_INFLIGHT_FD,
 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): a shared region, one
 * struct vhost_user_queue_region_split per queue, in which the back-end
 * marks every head it pops and clears it when the chain is used, so that a
 * back-end started after a crash knows which requests it still owes.
 *
 * GET_INFLIGHT_FD creates the region (a sealed memfd) and hands it to the
 * front-end, which keeps it across back-end restarts and gives it back with
 * SET_INFLIGHT_FD. When a ring starts, its queue region is initialised
 * (version 0) or settled (spec "When reconnecting": the last used batch is
 * cleared if used_idx lags the used ring), and the heads still marked in
 * flight are listed in counter order (vdk_vhost_user_inflight_pending())
 * and given to the queue as its resubmit list (vdk_virtq_set_resubmit()):
 * the device gets them from vdk_virtq_pop() before new available chains,
 * and runs them again. As in libvhost-user, the next available index is
 * then used_idx + the number of those heads, whatever SET_VRING_BASE said:
 * a front-end that lost its back-end cannot ask it for the index
 * (GET_VRING_BASE) and sends the used index instead.
 *
 * The region is shared with the front-end, which is not trusted: values
 * read from it are copied once and checked (heads < queue size, batch walks
 * bounded by the queue size); the file must be a regular file at least as
 * large as what is mapped.
 *
 * Marking is done by the queue's track hook (vdk_virtq_set_track()), so
 * every backend is tracked, the device adapter's included, whether it pops
 * through vdk_virtq_pop() or vdk_vhost_user_queue_pop():
 *   popped: counter, then inflight = 1 (spec "When receiving new available
 *           buffers"); a resubmitted head keeps its counter;
 *   used:   runs before the used element is published: desc[head].next =
 *           last_batch_head, last_batch_head = head (steps 2-3 of "When
 *           supplying used buffers", batches of one); inflight = 0 and
 *           used_idx (the steps after publication) are done at the next
 *           call of either hook, in vdk_vhost_user_queue_add_used(), or
 *           when the ring stops. A crash in between leaves used_idx one
 *           behind the used ring with last_batch_head on the published
 *           head: exactly what the reconnect settlement clears.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Bytes of one queue's region for @queue_size descriptors. */
static size_t queue_bytes(uint16_t queue_size)
{
	size_t n =
		sizeof(struct vhost_user_queue_region_split) +
		(size_t)queue_size * sizeof(struct vhost_user_desc_state_split);

	return (n + VU_INFLIGHT_ALIGN - 1) & ~(size_t)(VU_INFLIGHT_ALIGN - 1);
}

static struct vhost_user_queue_region_split *
queue_region(const struct vu_inflight *inf, uint16_t i)
{
	return (struct vhost_user_queue_region_split *)(inf->base +
							i * inf->queue_bytes);
}

/* Queue count and size as the front-end asks them; checked. */
static int inflight_check(const struct vdk_vhost_user *vu,
			  const struct vhost_user_inflight *in)
{
	if (in->num_queues == 0 || in->num_queues > vu->num_queues)
		return -EINVAL;
	if (in->queue_size == 0 || in->queue_size > VDK_VIRTQ_MAX_SIZE)
		return -EINVAL;
	return 0;
}

void vu_inflight_free(struct vdk_vhost_user *vu)
{
	for (uint16_t i = 0; i < vu->num_queues; i++) {
		struct vu_ring *r = &vu->rings[i];

		/* No ring runs here: the queues are not active. */
		vdk_virtq_set_track(&r->q, NULL, NULL);
		(void)vdk_virtq_set_resubmit(&r->q, NULL, 0);
		r->inflight = NULL;
		r->used_open = false;
		free(r->pending);
		r->pending = NULL;
		r->num_pending = 0;
	}
	if (vu->inflight.map)
		munmap(vu->inflight.map, vu->inflight.map_len);
	memset(&vu->inflight, 0, sizeof(vu->inflight));
}

static void inflight_set(struct vdk_vhost_user *vu, void *map, size_t map_len,
			 size_t delta, const struct vhost_user_inflight *in)
{
	vu_inflight_free(vu);
	vu->inflight.map = map;
	vu->inflight.map_len = map_len;
	vu->inflight.base = (uint8_t *)map + delta;
	vu->inflight.queue_bytes = queue_bytes(in->queue_size);
	vu->inflight.num_queues = in->num_queues;
	vu->inflight.queue_size = in->queue_size;
}

int vu_get_inflight_fd(struct vdk_vhost_user *vu, struct vu_msg *msg,
		       struct vu_reply *reply)
{
	struct vhost_user_inflight in = msg->payload.inflight;
	size_t size;
	void *map;
	int fd, ret;

	ret = inflight_check(vu, &in);
	if (ret < 0)
		return ret;
	if (vu_any_ring_running(vu))
		return -EBUSY;
	size = queue_bytes(in.queue_size) * in.num_queues;
	fd = memfd_create("vdk-vhost-inflight",
			  MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* Sealed: neither side can shrink it under the other's mapping. */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) <
		    0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		ret = -errno;
		close(fd);
		return ret;
	}
	inflight_set(vu, map, size, 0, &in);
	reply->payload.inflight = (struct vhost_user_inflight){
		.mmap_size = size,
		.mmap_offset = 0,
		.num_queues = in.num_queues,
		.queue_size = in.queue_size,
	};
	reply->size = sizeof(reply->payload.inflight);
	reply->fd = fd; /* sent, then closed: the mapping stays */
	return 0;
}

int vu_set_inflight_fd(struct vdk_vhost_user *vu, struct vu_msg *msg,
		       struct vu_reply *reply)
{
	struct vhost_user_inflight in = msg->payload.inflight;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t need, end, delta, len;
	struct stat st;
	void *map;
	int ret;

	(void)reply;
	ret = inflight_check(vu, &in);
	if (ret < 0)
		return ret;
	if (vu_any_ring_running(vu))
		return -EBUSY;
	need = queue_bytes(in.queue_size) * in.num_queues;
	if (in.mmap_size < need ||
	    __builtin_add_overflow(in.mmap_offset, need, &end) ||
	    end > (uint64_t)INT64_MAX)
		return -EINVAL;
	/* Touching a page past the end of the file would raise SIGBUS. */
	if (fstat(msg->fds[0], &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < end)
		return -EINVAL;
	/* ...and so would a file shrunk after it was mapped: the front-end
	 * may keep the fd, so it must be sealed against that (the region
	 * GET_INFLIGHT_FD hands out is). */
	int seals = fcntl(msg->fds[0], F_GET_SEALS);

	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		vdk_log(VDK_LOG_ERROR, VU_LOG,
			"inflight fd refused: not sealed with F_SEAL_SHRINK");
		return -EPERM;
	}
	delta = in.mmap_offset & (uint64_t)(page - 1);
	len = need + delta;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, msg->fds[0],
		   (off_t)(in.mmap_offset - delta));
	if (map == MAP_FAILED)
		return -errno;
	/* The mapping keeps the file; the dispatcher closes the fd. */
	inflight_set(vu, map, len, delta, &in);
	return 0;
}

struct pending_head {
	uint64_t counter;
	uint16_t head;
};

static int by_counter(const void *a, const void *b)
{
	const struct pending_head *x = a, *y = b;

	return x->counter < y->counter ? -1 : x->counter > y->counter;
}

/* Spec "When reconnecting", step 1: if used_idx lags the used ring, the
 * last batch reached the driver: clear its entries. */
static void settle_last_batch(struct vhost_user_queue_region_split *qr,
			      uint16_t desc_num, uint16_t used_idx)
{
	uint16_t region_used = __atomic_load_n(&qr->used_idx, __ATOMIC_ACQUIRE);
	uint16_t batch = (uint16_t)(used_idx - region_used);
	uint16_t h = __atomic_load_n(&qr->last_batch_head, __ATOMIC_RELAXED);

	if (batch == 0)
		return;
	for (uint32_t k = 0; k < batch && k < desc_num && h < desc_num; k++) {
		__atomic_store_n(&qr->desc[h].inflight, 0, __ATOMIC_RELAXED);
		h = __atomic_load_n(&qr->desc[h].next, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&qr->used_idx, used_idx, __ATOMIC_RELEASE);
}

/* Spec "When reconnecting", step 2: the heads still in flight, in the
 * order they were popped, into r->pending; *@next_counter gets the next
 * counter to hand out. Return: 0 or -ENOMEM. */
static int list_pending(struct vu_ring *r,
			struct vhost_user_queue_region_split *qr,
			uint64_t *next_counter)
{
	uint16_t size = r->q.size;
	struct pending_head *p = calloc(size, sizeof(*p));
	uint32_t n = 0;

	*next_counter = 0;
	if (!p)
		return -ENOMEM;
	for (uint16_t h = 0; h < size; h++) {
		if (!__atomic_load_n(&qr->desc[h].inflight, __ATOMIC_ACQUIRE))
			continue;
		p[n].counter =
			__atomic_load_n(&qr->desc[h].counter, __ATOMIC_RELAXED);
		p[n].head = h;
		if (p[n].counter >= *next_counter)
			*next_counter = p[n].counter + 1;
		n++;
	}
	qsort(p, n, sizeof(*p), by_counter);
	if (n) {
		r->pending = malloc(n * sizeof(*r->pending));
		if (!r->pending) {
			free(p);
			return -ENOMEM;
		}
	}
	for (uint32_t k = 0; k < n; k++)
		r->pending[k] = p[k].head;
	r->num_pending = n;
	free(p);
	return 0;
}

/* The steps after the publication of the last used element (spec "When
 * supplying used buffers": inflight = 0, then used_idx), now that it is
 * published. */
static void settle_used(struct vu_ring *r)
{
	struct vhost_user_queue_region_split *qr = r->inflight;

	if (!r->used_open || !qr)
		return;
	__atomic_store_n(&qr->desc[r->used_head].inflight, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&qr->used_idx, r->used_idx_open, __ATOMIC_RELEASE);
	r->used_open = false;
}

/* struct vdk_virtq_track_ops.popped; @head < queue size <= desc_num. */
static void track_popped(void *opaque, uint16_t head)
{
	struct vu_ring *r = opaque;
	struct vhost_user_desc_state_split *d = &r->inflight->desc[head];

	/* The last used element is published by now; settle it first, in
	 * case the driver already reuses its head. */
	settle_used(r);
	/* A resubmitted head is still marked from its first fetch: it keeps
	 * its counter, so that another restart resubmits in the same order. */
	if (__atomic_load_n(&d->inflight, __ATOMIC_RELAXED) == 1)
		return;
	/* Counter first: a reader that sees inflight sees it. */
	__atomic_store_n(&d->counter, r->inflight_counter++, __ATOMIC_RELAXED);
	__atomic_store_n(&d->inflight, 1, __ATOMIC_RELEASE);
}

/* struct vdk_virtq_track_ops.used: before the used element is written. */
static void track_used(void *opaque, uint16_t head, uint16_t used_idx_after)
{
	struct vu_ring *r = opaque;
	struct vhost_user_queue_region_split *qr = r->inflight;
	uint16_t last;

	settle_used(r);
	/* Spec "When supplying used buffers", steps 2-3. */
	last = __atomic_load_n(&qr->last_batch_head, __ATOMIC_RELAXED);
	__atomic_store_n(&qr->desc[head].next, last, __ATOMIC_RELAXED);
	__atomic_store_n(&qr->last_batch_head, head, __ATOMIC_RELEASE);
	r->used_open = true;
	r->used_head = head;
	r->used_idx_open = used_idx_after;
}

static const struct vdk_virtq_track_ops vu_track_ops = {
	.popped = track_popped,
	.used = track_used,
};

/* Resubmission (spec "When reconnecting"): the pending heads go first, and
 * the next available index follows the ones they were fetched from. */
static int resubmit(struct vdk_vhost_user *vu, uint16_t i, uint16_t used_idx)
{
	struct vu_ring *r = &vu->rings[i];
	uint16_t next = (uint16_t)(used_idx + r->num_pending);
	uint16_t base = vdk_virtq_next_avail(&r->q);
	int ret;

	if (r->num_pending || next != base)
		vdk_log(VDK_LOG_INFO, VU_LOG,
			"queue %u: resubmitting %u in-flight requests; next "
			"available index %u (SET_VRING_BASE said %u)",
			i, r->num_pending, next, base);
	ret = vdk_virtq_set_next_avail(&r->q, next);
	if (ret == 0)
		ret = vdk_virtq_set_resubmit(&r->q, r->pending,
					     (uint16_t)r->num_pending);
	return ret;
}

int vu_inflight_ring_start(struct vdk_vhost_user *vu, uint16_t i,
			   uint16_t used_idx)
{
	const struct vu_inflight *inf = &vu->inflight;
	struct vu_ring *r = &vu->rings[i];
	struct vhost_user_queue_region_split *qr;
	uint16_t version;
	int ret;

	r->inflight = NULL;
	r->used_open = false;
	free(r->pending);
	r->pending = NULL;
	r->num_pending = 0;
	r->inflight_counter = 0;
	if (!inf->base || i >= inf->num_queues)
		return 0;
	if (r->q.size > inf->queue_size) {
		VDK_LOG_RL(&vu->rl, VDK_LOG_WARN, VU_LOG,
			   "queue %u: size %u exceeds the inflight region's "
			   "%u; not tracked",
			   i, r->q.size, inf->queue_size);
		return 0;
	}
	qr = queue_region(inf, i);
	version = __atomic_load_n(&qr->version, __ATOMIC_ACQUIRE);
	if (version == 0) {
		/* A new region: nothing was in flight. */
		qr->features = 0;
		qr->desc_num = inf->queue_size;
		qr->last_batch_head = 0;
		qr->used_idx = used_idx;
		__atomic_store_n(&qr->version, VHOST_USER_INFLIGHT_VERSION,
				 __ATOMIC_RELEASE);
	} else if (version != VHOST_USER_INFLIGHT_VERSION ||
		   __atomic_load_n(&qr->desc_num, __ATOMIC_RELAXED) !=
			   inf->queue_size) {
		VDK_LOG_RL(&vu->rl, VDK_LOG_WARN, VU_LOG,
			   "queue %u: inflight region version %u / size not "
			   "understood; not tracked",
			   i, version);
		return 0;
	} else {
		settle_last_batch(qr, inf->queue_size, used_idx);
		ret = list_pending(r, qr, &r->inflight_counter);
		if (ret == 0)
			ret = resubmit(vu, i, used_idx);
		if (ret < 0)
			return ret;
	}
	r->inflight = qr;
	vdk_virtq_set_track(&r->q, &vu_track_ops, r);
	return 0;
}

void vu_inflight_ring_stop(struct vdk_vhost_user *vu, uint16_t i)
{
	struct vu_ring *r = &vu->rings[i];

	/* The backend stopped: the last used element is published. */
	settle_used(r);
	vdk_virtq_set_track(&r->q, NULL, NULL);
	/* Heads not resubmitted yet stay marked: the next start lists them
	 * again. Dropping the list also tells the queue that the backend gave
	 * back what it had not returned: those chains leave in_flight and
	 * count again when they are resubmitted (once, not twice). */
	(void)vdk_virtq_set_resubmit(&r->q, NULL, 0);
	r->inflight = NULL;
}

int vdk_vhost_user_queue_pop(struct vdk_vhost_user *vu, uint16_t index,
			     struct vdk_virtq_chain *chain)
{
	if (index >= vu->num_queues)
		return -ERANGE;
	if (!vu->rings[index].running)
		return -EIO;
	/* The queue's track hook marks the head. */
	return vdk_virtq_pop(&vu->rings[index].q, chain);
}

int vdk_vhost_user_queue_add_used(struct vdk_vhost_user *vu, uint16_t index,
				  uint16_t head, uint32_t written)
{
	struct vu_ring *r;
	int ret;

	if (index >= vu->num_queues)
		return -ERANGE;
	r = &vu->rings[index];
	if (!r->running)
		return -EIO;
	ret = vdk_virtq_add_used(&r->q, head, written);
	/* Published: settle the region at once rather than at the next
	 * pop or used element. */
	if (ret == 0)
		settle_used(r);
	return ret;
}

int vdk_vhost_user_inflight_pending(const struct vdk_vhost_user *vu,
				    uint16_t index, uint16_t *heads, size_t max)
{
	const struct vu_ring *r;

	if (index >= vu->num_queues)
		return -ERANGE;
	r = &vu->rings[index];
	for (uint32_t k = 0; k < r->num_pending && k < max; k++)
		heads[k] = r->pending[k];
	return (int)r->num_pending;
}
