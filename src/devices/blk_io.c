/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk device, the data path: request parsing (virtio 1.2 §5.2.6) and
 * the io_uring submission and completion of each request. Setup,
 * configuration and the device ops are in blk.c.
 *
 * Do not assume that anything the driver wrote is sensible: the request
 * header and every discard/write-zeroes segment are copied out of guest
 * memory once, checked (sizes, sector ranges with overflow checks, limits),
 * and only the checked copies are used.
 *
 * Per queue: one io_uring, one eventfd registered with it, and a fixed table
 * of queue_size request slots (head id, status byte pointer, expected
 * length, SQEs outstanding). Chains are popped in batches into a pool of
 * iovec arrays; the iovecs are handed to readv/writev directly (they point
 * into guest memory) and the batch is submitted before the pool is reused.
 * That is safe because the ring must have IORING_FEAT_SUBMIT_STABLE: the
 * kernel has copied what it needs from an SQE and its iovec array by the
 * time io_uring_submit() returns.
 *
 * Where the image has no non-blocking reads (blk->sync_rw, see
 * choose_mode() in blk.c), IN and OUT are done with preadv/pwritev while
 * the chain is handled, and the used ring is updated and the driver
 * notified after each batch; io_uring would only have passed them to a
 * worker thread. With O_DIRECT, a transfer that breaks the alignment goes
 * to the buffered descriptor (dio_aligned()).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/virtio_blk.h>

#include "blk_internal.h"

#define MOD "blk"

/* ---- request completion ------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Count @r's pop-to-used latency in its histogram bucket (blk.h): from
 * the start of the pop batch that took it to the reap that completed it,
 * or to now for a request completed inline. */
static void count_latency(struct blk_queue *q, const struct blk_req *r)
{
	uint64_t end = q->reaping ? q->reap_ns : now_ns();
	uint64_t us = (end - r->start_ns) / 1000u;
	unsigned int i = us ? 64u - (unsigned int)__builtin_clzll(us) : 0u;

	if (i >= VDK_BLK_LATENCY_BUCKETS)
		i = VDK_BLK_LATENCY_BUCKETS - 1;
	q->latency[i]++;
}

static void count_done(struct blk_queue *q, const struct blk_req *r)
{
	struct vdk_blk_stats *s = &q->stats;

	if (r->status_val == VIRTIO_BLK_S_IOERR) {
		s->io_errors++;
		return;
	}
	if (r->status_val == VIRTIO_BLK_S_UNSUPP) {
		s->unsupported++;
		return;
	}
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		s->reads++;
		s->bytes_read += r->expected;
		break;
	case VIRTIO_BLK_T_OUT:
		s->writes++;
		s->bytes_written += r->expected;
		break;
	case VIRTIO_BLK_T_FLUSH:
		s->flushes++;
		break;
	case VIRTIO_BLK_T_GET_ID:
		s->get_ids++;
		break;
	case VIRTIO_BLK_T_DISCARD:
		s->discards++;
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		s->write_zeroes++;
		break;
	}
}

/* Write the status byte, return the chain (virtio 1.2 §5.2.6, §2.7.8) and
 * free the slot. */
static void req_complete(struct blk_queue *q, struct blk_req *r)
{
	uint32_t id = (uint32_t)(r - q->reqs);

	*r->status = r->status_val;
	count_done(q, r);
	count_latency(q, r);
	/* add_used publishes the used index with release order, so the
	 * driver sees the status byte and data before the element. It fails
	 * only on a queue already stopped by a driver error. */
	if (q->vq)
		(void)vdk_virtq_add_used(q->vq, r->head, r->used_len);
	q->need_notify = true;
	r->busy = false;
	q->in_flight--;
	q->free_ids[q->nfree++] = (uint16_t)id;
}

static void req_finish(struct blk_queue *q, struct blk_req *r, uint8_t status)
{
	r->status_val = status;
	req_complete(q, r);
}

static void flush_notify(struct blk_queue *q)
{
	if (!q->need_notify || !q->vq)
		return;
	q->need_notify = false;
	if (vdk_virtq_should_notify(q->vq))
		vdk_interrupt_signal_used_queue(q->blk->irq, q->index);
}

/* ---- SQE submission ---------------------------------------------------- */

static uint64_t sqe_data(uint32_t id, uint32_t seg, enum sqe_kind kind)
{
	return ((uint64_t)id << 16) | ((uint64_t)seg << 8) | (uint64_t)kind;
}

static struct io_uring_sqe *get_sqe(struct blk_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		/* Submission ring full: hand what is there to the kernel. */
		(void)io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	return sqe;
}

static void submit(struct blk_queue *q)
{
	int ret;

	do {
		ret = io_uring_submit(&q->ring);
	} while (ret == -EINTR);
	if (ret < 0)
		VDK_LOG_RL(&q->rl, VDK_LOG_ERROR, MOD,
			   "queue %u: io_uring_submit: %s", q->index,
			   strerror(-ret));
}

/* Queue the SQEs for segment @i at its current step. Return 0, or -EAGAIN
 * if the submission ring has no room even after a submit. */
static int seg_submit(struct blk_queue *q, struct blk_req *r, uint32_t i)
{
	struct vdk_blk *blk = q->blk;
	struct blk_seg *s = &r->segs[i];
	uint32_t id = (uint32_t)(r - q->reqs);
	struct io_uring_sqe *sqe;

	if (s->step == STEP_PUNCH &&
	    __atomic_load_n(&blk->no_punch, __ATOMIC_RELAXED))
		s->step = STEP_ZERO_RANGE;
	if (s->step == STEP_ZERO_RANGE &&
	    __atomic_load_n(&blk->no_zero_range, __ATOMIC_RELAXED))
		s->step = STEP_WRITE;

	if (s->step != STEP_WRITE) {
		int mode = FALLOC_FL_KEEP_SIZE |
			   (s->step == STEP_PUNCH ? FALLOC_FL_PUNCH_HOLE
						  : FALLOC_FL_ZERO_RANGE);
		sqe = get_sqe(q);
		if (!sqe)
			return -EAGAIN;
		io_uring_prep_fallocate(sqe, blk->fd, mode, (off_t)s->offset,
					(off_t)s->len);
		io_uring_sqe_set_data64(sqe, sqe_data(id, i, SQE_FALLOC));
		r->pending++;
		return 0;
	}

	/* len <= VDK_BLK_MAX_WRITE_ZEROES_SECTORS * 512 = ZERO_IOVS chunks */
	uint64_t full = s->len / ZERO_CHUNK;
	uint64_t tail = s->len % ZERO_CHUNK;

	if (full) {
		sqe = get_sqe(q);
		if (!sqe)
			return -EAGAIN;
		io_uring_prep_writev(sqe, blk->fd, blk->zero_iov,
				     (unsigned)full, s->offset);
		io_uring_sqe_set_data64(sqe, sqe_data(id, i, SQE_ZERO_FULL));
		r->pending++;
	}
	if (tail) {
		sqe = get_sqe(q);
		if (!sqe)
			return -EAGAIN;
		io_uring_prep_write(sqe, blk->fd, blk->zero_buf, (unsigned)tail,
				    s->offset + full * ZERO_CHUNK);
		io_uring_sqe_set_data64(sqe, sqe_data(id, i, SQE_ZERO_TAIL));
		r->pending++;
	}
	return 0;
}

/* ---- request parsing (virtio 1.2 §5.2.6) ------------------------------- */

/*
 * Find the status byte, the last byte of the device-writable part, and drop
 * it from the writable iovecs (the rest is the data part of an IN or GET_ID
 * request). Return NULL if the writable part is empty.
 */
static uint8_t *take_status(struct vdk_virtq_chain *c)
{
	struct iovec *w = c->iov + c->num_readable;

	for (uint32_t n = c->num_writable; n > 0; n--) {
		struct iovec *v = &w[n - 1];

		if (v->iov_len == 0)
			continue;
		v->iov_len--;
		c->num_writable = v->iov_len ? n : n - 1;
		c->writable_len--;
		return (uint8_t *)v->iov_base + v->iov_len;
	}
	return NULL;
}

/* Drop the first @skip bytes of the readable iovecs (the header). */
static void skip_readable(struct vdk_virtq_chain *c, uint32_t skip,
			  struct iovec **iov, uint32_t *n)
{
	uint32_t i = 0;

	while (i < c->num_readable && skip >= c->iov[i].iov_len)
		skip -= (uint32_t)c->iov[i++].iov_len;
	if (i < c->num_readable) {
		c->iov[i].iov_base = (uint8_t *)c->iov[i].iov_base + skip;
		c->iov[i].iov_len -= skip;
	}
	*iov = c->iov + i;
	*n = c->num_readable - i;
}

/* Check [sector, sector + nsec) against the capacity; set *offset (bytes). */
static bool range_ok(const struct vdk_blk *blk, uint64_t sector, uint64_t nsec,
		     uint64_t *offset)
{
	uint64_t end;

	if (__builtin_add_overflow(sector, nsec, &end) || end > blk->capacity)
		return false;
	return !__builtin_mul_overflow(sector, (uint64_t)SECTOR_SIZE, offset);
}

/* Direct I/O only: does this transfer meet the O_DIRECT alignment (every
 * buffer's address and length, and the offset)? */
static bool dio_aligned(const struct vdk_blk *blk, const struct iovec *iov,
			uint32_t n, uint64_t offset)
{
	uintptr_t mem_mask = blk->dio_mem_align - 1;
	uint64_t off_mask = blk->dio_offset_align - 1;

	if (offset & off_mask)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		if (((uintptr_t)iov[i].iov_base & mem_mask) ||
		    (iov[i].iov_len & mem_mask) || (iov[i].iov_len & off_mask))
			return false;
	}
	return true;
}

/*
 * preadv/pwritev of the whole request on this thread. Return the status:
 * OK when all r->expected bytes moved; IOERR on an error or a short
 * transfer (end of file: the image shrank), which is not resumed, as on the
 * io_uring path.
 */
static int rw_sync(struct blk_queue *q, struct blk_req *r, int fd,
		   const struct iovec *iov, uint32_t n, uint64_t offset)
{
	bool in = r->type == VIRTIO_BLK_T_IN;
	ssize_t got;

	do {
		got = in ? preadv(fd, iov, (int)n, (off_t)offset)
			 : pwritev(fd, iov, (int)n, (off_t)offset);
	} while (got < 0 && errno == EINTR);
	q->sync_rw++;
	if (got >= 0 && (uint64_t)got == r->expected)
		return VIRTIO_BLK_S_OK;
	VDK_LOG_RL(&q->rl, VDK_LOG_ERROR, MOD, "queue %u: %s: %s", q->index,
		   in ? "preadv" : "pwritev",
		   got < 0 ? strerror(errno) : "short transfer");
	return VIRTIO_BLK_S_IOERR;
}

/* IN / OUT: validate, then do it now (sync_rw) or queue one readv/writev.
 * Return a status to finish the request with now, or -1 if it was
 * submitted. */
static int do_rw(struct blk_queue *q, struct blk_req *r,
		 struct vdk_virtq_chain *c, uint64_t sector)
{
	struct vdk_blk *blk = q->blk;
	bool in = r->type == VIRTIO_BLK_T_IN;
	uint64_t len, offset;
	struct iovec *iov;
	uint32_t n;

	if (!in && blk->read_only) {
		VDK_LOG_RL(&q->rl, VDK_LOG_WARN, MOD,
			   "queue %u: write to a read-only device", q->index);
		return VIRTIO_BLK_S_IOERR;
	}
	if (in) {
		len = c->writable_len;
		iov = c->iov + c->num_readable;
		n = c->num_writable;
	} else {
		len = c->readable_len - OUTHDR_SIZE;
		skip_readable(c, OUTHDR_SIZE, &iov, &n);
	}
	if (len % SECTOR_SIZE ||
	    !range_ok(blk, sector, len >> SECTOR_SHIFT, &offset)) {
		VDK_LOG_RL(&q->rl, VDK_LOG_WARN, MOD,
			   "queue %u: %s of %" PRIu64
			   " bytes at sector %" PRIu64
			   " refused (capacity %" PRIu64 " sectors)",
			   q->index, in ? "read" : "write", len, sector,
			   blk->capacity);
		return VIRTIO_BLK_S_IOERR;
	}
	r->expected = len;
	if (in) /* data bytes the read may write, then the status byte */
		r->used_len = (uint32_t)len + 1;
	if (len == 0)
		return VIRTIO_BLK_S_OK;
	if (n > IOV_MAX) {
		VDK_LOG_RL(&q->rl, VDK_LOG_WARN, MOD,
			   "queue %u: %u data buffers (at most %d)", q->index,
			   n, IOV_MAX);
		return VIRTIO_BLK_S_IOERR;
	}
	int fd = blk->fd;
	if (blk->direct && !dio_aligned(blk, iov, n, offset)) {
		fd = blk->fd_buffered;
		q->buffered_rw++;
	}
	if (blk->sync_rw)
		return rw_sync(q, r, fd, iov, n, offset);
	struct io_uring_sqe *sqe = get_sqe(q);
	if (!sqe)
		return VIRTIO_BLK_S_IOERR;
	if (in)
		io_uring_prep_readv(sqe, fd, iov, n, offset);
	else
		io_uring_prep_writev(sqe, fd, iov, n, offset);
	q->async_rw++;
	io_uring_sqe_set_data64(sqe,
				sqe_data((uint32_t)(r - q->reqs), 0, SQE_RW));
	r->pending = 1;
	return -1;
}

/* DISCARD / WRITE_ZEROES: copy and check every segment, then queue them. */
static int do_discard_wz(struct blk_queue *q, struct blk_req *r,
			 const struct vdk_virtq_chain *c)
{
	struct vdk_blk *blk = q->blk;
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;
	uint32_t max_seg = discard ? VDK_BLK_MAX_DISCARD_SEG
				   : VDK_BLK_MAX_WRITE_ZEROES_SEG;
	uint32_t max_sec = discard ? VDK_BLK_MAX_DISCARD_SECTORS
				   : VDK_BLK_MAX_WRITE_ZEROES_SECTORS;
	uint32_t payload = c->readable_len - OUTHDR_SIZE;
	uint32_t nsegs = payload / SEG_SIZE;

	if (blk->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (payload % SEG_SIZE || nsegs == 0 || nsegs > max_seg) {
		VDK_LOG_RL(&q->rl, VDK_LOG_WARN, MOD,
			   "queue %u: %s payload of %u bytes refused", q->index,
			   discard ? "discard" : "write-zeroes", payload);
		return VIRTIO_BLK_S_IOERR;
	}
	r->nsegs = 0;
	for (uint32_t i = 0; i < nsegs; i++) {
		struct virtio_blk_discard_write_zeroes w;
		uint64_t sector, offset;
		uint32_t num, flags;

		vdk_virtq_chain_copy_from(c, OUTHDR_SIZE + i * SEG_SIZE, &w,
					  sizeof(w));
		sector = le64toh(w.sector);
		num = le32toh(w.num_sectors);
		flags = le32toh(w.flags);
		/* §5.2.6.2: unknown flags, and UNMAP on a discard: UNSUPP */
		if ((flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
		    (discard && flags))
			return VIRTIO_BLK_S_UNSUPP;
		if (num > max_sec || !range_ok(blk, sector, num, &offset)) {
			VDK_LOG_RL(&q->rl, VDK_LOG_WARN, MOD,
				   "queue %u: segment of %u sectors at %" PRIu64
				   " refused",
				   q->index, num, sector);
			return VIRTIO_BLK_S_IOERR;
		}
		if (num == 0)
			continue;
		r->segs[r->nsegs++] = (struct blk_seg){
			.offset = offset,
			.len = (uint64_t)num * SECTOR_SIZE,
			.step = discard || flags ? STEP_PUNCH : STEP_ZERO_RANGE,
		};
	}
	for (uint32_t i = 0; i < r->nsegs; i++) {
		if (seg_submit(q, r, i) < 0) {
			/* SQEs already queued complete later and fail it */
			r->status_val = VIRTIO_BLK_S_IOERR;
			break;
		}
	}
	return r->pending ? -1 : r->status_val;
}

/* Handle one popped chain: complete it now or leave it in flight. */
static void handle_chain(struct blk_queue *q, struct vdk_virtq_chain *c)
{
	struct vdk_blk *blk = q->blk;
	struct virtio_blk_outhdr hdr;
	uint8_t *status = take_status(c);
	struct blk_req *r;
	int st;

	if (!status) {
		/* Nowhere to report an error: return it untouched. */
		q->stats.malformed++;
		VDK_LOG_RL(&q->rl, VDK_LOG_WARN, MOD,
			   "queue %u: chain %u has no status byte", q->index,
			   c->head);
		(void)vdk_virtq_add_used(q->vq, c->head, 0);
		q->need_notify = true;
		return;
	}
	r = &q->reqs[q->free_ids[--q->nfree]];
	r->busy = true;
	r->head = c->head;
	r->type = UINT32_MAX; /* until the header is read */
	r->status = status;
	r->status_val = VIRTIO_BLK_S_OK;
	r->used_len = 1; /* the status byte */
	r->pending = 0;
	r->expected = 0;
	r->nsegs = 0;
	r->start_ns = q->batch_ns;
	q->in_flight++;

	if (c->readable_len < OUTHDR_SIZE) {
		q->stats.malformed++;
		VDK_LOG_RL(&q->rl, VDK_LOG_WARN, MOD,
			   "queue %u: chain %u: header of %u bytes", q->index,
			   c->head, c->readable_len);
		req_finish(q, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	vdk_virtq_chain_copy_from(c, 0, &hdr, sizeof(hdr));
	r->type = le32toh(hdr.type);

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		st = do_rw(q, r, c, le64toh(hdr.sector));
		break;
	case VIRTIO_BLK_T_FLUSH: {
		struct io_uring_sqe *sqe = get_sqe(q);

		st = VIRTIO_BLK_S_IOERR;
		if (sqe) {
			io_uring_prep_fsync(sqe, blk->fd,
					    IORING_FSYNC_DATASYNC);
			io_uring_sqe_set_data64(
				sqe, sqe_data((uint32_t)(r - q->reqs), 0,
					      SQE_FLUSH));
			r->pending = 1;
			st = -1;
		}
		break;
	}
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = c->writable_len < VIRTIO_BLK_ID_BYTES
				   ? c->writable_len
				   : VIRTIO_BLK_ID_BYTES;

		r->used_len = (uint32_t)vdk_virtq_chain_copy_to(
				      c, 0, blk->serial, n) +
			      1;
		st = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st = do_discard_wz(q, r, c);
		break;
	default:
		VDK_LOG_RL(&q->rl, VDK_LOG_WARN, MOD,
			   "queue %u: unsupported request type %u", q->index,
			   r->type);
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (st >= 0)
		req_finish(q, r, (uint8_t)st);
}

/*
 * Pop and start up to BATCH chains, then submit them (the iovec pool is
 * reused by the next batch). Return true if the available ring may hold
 * more (also when this kick has popped queue_size chains); false when it is
 * empty, every request slot is taken (starved) or the queue stopped on a
 * driver error.
 */
static bool pop_batch(struct blk_queue *q)
{
	bool more = true;

	q->batch_ns = now_ns();
	for (uint32_t k = 0; k < BATCH && more; k++) {
		struct vdk_virtq_chain c = {
			.iov = q->iov_pool + k * q->iov_cap,
			.iov_cap = q->iov_cap,
		};
		int ret;

		if (q->nfree == 0) {
			/* Only a driver reusing heads still in flight gets
			 * here; the rest waits for completions. */
			q->starved = true;
			break;
		}
		if (q->popped >= q->blk->queue_size)
			break; /* this kick's share: the caller yields */
		ret = vdk_virtq_pop(q->vq, &c);
		if (ret < 0) {
			VDK_LOG_RL(&q->rl, VDK_LOG_ERROR, MOD,
				   "queue %u stopped: %s", q->index,
				   vdk_virtq_strerror(vdk_virtq_error(q->vq)));
			q->broken = true;
			vdk_interrupt_needs_reset(q->blk->irq);
		} else if (ret > 0) {
			handle_chain(q, &c);
			q->popped++;
			continue;
		}
		more = false;
	}
	submit(q);
	/* Requests done inline are returned now, not after the whole ring. */
	flush_notify(q);
	return more && !q->starved;
}

/*
 * Stop popping for now: a driver that refills the ring as fast as requests
 * complete inline could otherwise keep this thread here forever, away from
 * the other queues and the transport. The completion eventfd brings the
 * event loop back to vdk_blk_io_process(), which goes on.
 */
static void yield(struct blk_queue *q)
{
	uint64_t one = 1;

	q->yielded = true;
	if (write(q->efd, &one, sizeof(one)) < 0)
		VDK_LOG_RL(&q->rl, VDK_LOG_ERROR, MOD,
			   "queue %u: eventfd write: %s", q->index,
			   strerror(errno));
}

/* Lock held. */
void vdk_blk_io_kick(struct blk_queue *q)
{
	if (!q->vq || q->broken || q->stopping)
		return;
	q->popped = 0;
	do {
		vdk_virtq_enable_notification(q->vq, false);
		while (pop_batch(q)) {
			if (q->popped >= q->blk->queue_size) {
				/* notifications stay off until we are back */
				yield(q);
				return;
			}
		}
		flush_notify(q);
		if (q->broken || q->starved)
			return;
		/* Re-enable; if buffers slipped in meanwhile, go again. */
	} while (vdk_virtq_enable_notification(q->vq, true));
}

/* ---- completions ------------------------------------------------------- */

static void handle_cqe(struct blk_queue *q, uint64_t data, int res)
{
	uint32_t id = (uint32_t)(data >> 16);
	uint32_t si = (uint32_t)(data >> 8) & 0xff;
	enum sqe_kind kind = (enum sqe_kind)(data & 0xff);
	struct blk_req *r;
	bool ok;

	if (id >= q->blk->queue_size || !q->reqs[id].busy) {
		vdk_log(VDK_LOG_ERROR, MOD, "queue %u: stray completion %#llx",
			q->index, (unsigned long long)data);
		return;
	}
	r = &q->reqs[id];
	switch (kind) {
	case SQE_RW:
		ok = res >= 0 && (uint64_t)res == r->expected;
		break;
	case SQE_FALLOC:
		ok = res == 0;
		if (res == -EOPNOTSUPP && r->type == VIRTIO_BLK_T_DISCARD) {
			/* §5.2.6.2: the device MAY deallocate; not doing it
			 * is a successful discard. */
			ok = true;
		} else if (res == -EOPNOTSUPP && si < r->nsegs) {
			struct blk_seg *s = &r->segs[si];

			__atomic_store_n(s->step == STEP_PUNCH
						 ? &q->blk->no_punch
						 : &q->blk->no_zero_range,
					 true, __ATOMIC_RELAXED);
			s->step = s->step == STEP_PUNCH ? STEP_ZERO_RANGE
							: STEP_WRITE;
			ok = seg_submit(q, r, si) == 0;
		}
		break;
	case SQE_ZERO_FULL:
	case SQE_ZERO_TAIL:
		ok = si < r->nsegs && res >= 0 &&
		     (uint64_t)res == (kind == SQE_ZERO_FULL
					       ? r->segs[si].len / ZERO_CHUNK *
							 ZERO_CHUNK
					       : r->segs[si].len % ZERO_CHUNK);
		break;
	default: /* SQE_FLUSH */
		ok = res == 0;
		break;
	}
	if (!ok) {
		VDK_LOG_RL(&q->rl, VDK_LOG_ERROR, MOD,
			   "queue %u: request type %u failed: %s", q->index,
			   r->type,
			   res < 0 ? strerror(-res) : "short transfer");
		r->status_val = VIRTIO_BLK_S_IOERR;
	}
	if (--r->pending == 0)
		req_complete(q, r);
}

/* Reap CQEs without blocking (lock held); return how many requests ended. */
static int reap(struct blk_queue *q)
{
	uint32_t before = q->in_flight;
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	q->reap_ns = now_ns();
	q->reaping = true;
	io_uring_for_each_cqe(&q->ring, head, cqe)
	{
		handle_cqe(q, cqe->user_data, cqe->res);
		n++;
	}
	q->reaping = false;
	io_uring_cq_advance(&q->ring, n);
	submit(q); /* segments that fell back to another step */
	return (int)(before - q->in_flight);
}

/* Lock held. */
int vdk_blk_io_process(struct blk_queue *q)
{
	int done = reap(q);

	if ((q->starved && q->nfree > 0) || q->yielded) {
		q->starved = false;
		q->yielded = false;
		vdk_blk_io_kick(q);
	}
	flush_notify(q);
	return done;
}

/* Lock held. */
int vdk_blk_io_wait_idle(struct blk_queue *q)
{
	int total = 0;

	for (;;) {
		total += vdk_blk_io_process(q);
		if (q->yielded)
			continue; /* chains still wait in the ring */
		if (q->in_flight == 0)
			return total;
		/* Submits anything still queued, then sleeps for a CQE. */
		int ret = io_uring_submit_and_wait(&q->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN &&
		    ret != -EBUSY) {
			vdk_log(VDK_LOG_ERROR, MOD,
				"queue %u: io_uring_submit_and_wait: %s",
				q->index, strerror(-ret));
			return ret;
		}
	}
}
