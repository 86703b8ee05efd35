// SPDX-License-Identifier: Apache-2.0
/*
 * Inflight I/O tracking for split rings (QEMU docs/interop/vhost-user.rst,
 * "Inflight I/O tracking", VHOST_USER_GET_INFLIGHT_FD / SET_INFLIGHT_FD,
 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): a shared region, one
 * struct vhost_user_inflight_queue_split per queue, in which the back-end
 * marks every head it pops and clears it when the chain is used, so that a
 * back-end started after a crash knows which requests it still owes.
 *
 * GET_INFLIGHT_FD creates the region (a sealed memfd) and hands it to the
 * front-end, which keeps it across back-end restarts and gives it back with
 * SET_INFLIGHT_FD. When a ring starts, its queue region is initialised
 * (version 0) or settled (spec "When reconnecting": the last used batch is
 * cleared if used_idx lags the used ring), and the heads still marked in
 * flight are listed in counter order (vdk_vhost_user_inflight_pending()).
 *
 * The region is shared with the front-end, which is not trusted: values
 * read from it are copied once and checked (heads < queue size, batch walks
 * bounded by the queue size); the file must be a regular file at least as
 * large as what is mapped.
 *
 * Marking happens in vdk_vhost_user_queue_pop() / _add_used(), which
 * backends with tracks_inflight use instead of vdk_virtq_pop() /
 * vdk_virtq_add_used(). Devices served through the device adapter call
 * the vdk_virtq functions themselves, so the adapter does not track.
 *
 * Not done yet: resubmitting the pending heads before new available
 * buffers. That needs the device-side queue to hand out a chain by head
 * (see the report: a vdk_virtq_pop_head() or a resubmit list in
 * <vdk/virtq.h>); until then the pending heads are only listed and logged.
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
	size_t n = sizeof(struct vhost_user_inflight_queue_split) +
		   (size_t)queue_size *
			   sizeof(struct vhost_user_inflight_desc_split);

	return (n + VHOST_USER_INFLIGHT_ALIGN - 1) &
	       ~(size_t)(VHOST_USER_INFLIGHT_ALIGN - 1);
}

static struct vhost_user_inflight_queue_split *
queue_region(const struct vu_inflight *inf, uint16_t i)
{
	return (struct vhost_user_inflight_queue_split *)(inf->base +
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

		r->inflight = NULL;
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
static void settle_last_batch(struct vhost_user_inflight_queue_split *qr,
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
 * order they were popped. Returns the next counter to hand out. */
static uint64_t list_pending(struct vu_ring *r,
			     struct vhost_user_inflight_queue_split *qr)
{
	uint16_t size = r->q.size;
	struct pending_head *p = calloc(size, sizeof(*p));
	uint64_t next_counter = 0;
	uint32_t n = 0;

	if (!p)
		return 0;
	for (uint16_t h = 0; h < size; h++) {
		if (!__atomic_load_n(&qr->desc[h].inflight, __ATOMIC_ACQUIRE))
			continue;
		p[n].counter =
			__atomic_load_n(&qr->desc[h].counter, __ATOMIC_RELAXED);
		p[n].head = h;
		if (p[n].counter >= next_counter)
			next_counter = p[n].counter + 1;
		n++;
	}
	qsort(p, n, sizeof(*p), by_counter);
	r->pending = n ? malloc(n * sizeof(*r->pending)) : NULL;
	if (r->pending) {
		for (uint32_t k = 0; k < n; k++)
			r->pending[k] = p[k].head;
		r->num_pending = n;
	}
	free(p);
	return next_counter;
}

void vu_inflight_ring_start(struct vdk_vhost_user *vu, uint16_t i,
			    uint16_t used_idx)
{
	const struct vu_inflight *inf = &vu->inflight;
	struct vu_ring *r = &vu->rings[i];
	struct vhost_user_inflight_queue_split *qr;
	uint16_t version;

	r->inflight = NULL;
	free(r->pending);
	r->pending = NULL;
	r->num_pending = 0;
	r->inflight_counter = 0;
	if (!inf->base || i >= inf->num_queues)
		return;
	if (r->q.size > inf->queue_size) {
		VDK_LOG_RL(&vu->rl, VDK_LOG_WARN, VU_LOG,
			   "queue %u: size %u exceeds the inflight region's "
			   "%u; not tracked",
			   i, r->q.size, inf->queue_size);
		return;
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
		return;
	} else {
		settle_last_batch(qr, inf->queue_size, used_idx);
		r->inflight_counter = list_pending(r, qr);
		if (r->num_pending)
			vdk_log(VDK_LOG_WARN, VU_LOG,
				"queue %u: %u requests were in flight; they "
				"are not resubmitted (no virtq hook yet)",
				i, r->num_pending);
	}
	r->inflight = qr;
}

void vu_inflight_ring_stop(struct vdk_vhost_user *vu, uint16_t i)
{
	vu->rings[i].inflight = NULL;
}

int vdk_vhost_user_queue_pop(struct vdk_vhost_user *vu, uint16_t index,
			     struct vdk_virtq_chain *chain)
{
	struct vu_ring *r;
	int ret;

	if (index >= vu->num_queues)
		return -ERANGE;
	r = &vu->rings[index];
	if (!r->running)
		return -EIO;
	ret = vdk_virtq_pop(&r->q, chain);
	if (ret == 1 && r->inflight && chain->head < r->q.size) {
		struct vhost_user_inflight_desc_split *d =
			&r->inflight->desc[chain->head];

		/* Counter first: a reader that sees inflight sees it. */
		__atomic_store_n(&d->counter, r->inflight_counter++,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&d->inflight, 1, __ATOMIC_RELEASE);
	}
	return ret;
}

int vdk_vhost_user_queue_add_used(struct vdk_vhost_user *vu, uint16_t index,
				  uint16_t head, uint32_t written)
{
	struct vhost_user_inflight_queue_split *qr;
	struct vu_ring *r;
	int ret;

	if (index >= vu->num_queues)
		return -ERANGE;
	r = &vu->rings[index];
	if (!r->running)
		return -EIO;
	qr = head < r->q.size ? r->inflight : NULL;
	if (qr) {
		/* Spec "When supplying used buffers", steps 2-3. */
		uint16_t last =
			__atomic_load_n(&qr->last_batch_head, __ATOMIC_RELAXED);
		__atomic_store_n(&qr->desc[head].next, last, __ATOMIC_RELAXED);
		__atomic_store_n(&qr->last_batch_head, head, __ATOMIC_RELEASE);
	}
	ret = vdk_virtq_add_used(&r->q, head, written);
	if (ret == 0 && qr) {
		/* The used index is published: the entry is no longer in
		 * flight, and used_idx says the batch is complete. */
		__atomic_store_n(&qr->desc[head].inflight, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&qr->used_idx, vdk_virtq_next_used(&r->q),
				 __ATOMIC_RELEASE);
	}
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
