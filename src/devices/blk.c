/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk device (virtio 1.2 §5.2) over an image file or a host block
 * device, with io_uring for the I/O. See <vdk/devices/blk.h> for the model.
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
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <liburing.h>

#include <vdk/devices/blk.h>
#include <vdk/log.h>

#define MOD	     "blk"
#define SECTOR_SHIFT 9
#define SECTOR_SIZE  512u
#define OUTHDR_SIZE  16u /* sizeof(struct virtio_blk_outhdr) */
#define SEG_SIZE     16u /* sizeof(struct virtio_blk_discard_write_zeroes) */
#define BATCH	     16	 /* chains popped per io_uring_submit() */
#define MAX_SEGS     32	 /* >= both *_SEG limits in the header */
#define ZERO_CHUNK   65536u
#define ZERO_IOVS    (VDK_BLK_MAX_WRITE_ZEROES_SECTORS * SECTOR_SIZE / ZERO_CHUNK)

_Static_assert(VDK_BLK_MAX_DISCARD_SEG <= MAX_SEGS, "segment table");
_Static_assert(VDK_BLK_MAX_WRITE_ZEROES_SEG <= MAX_SEGS, "segment table");
_Static_assert(ZERO_IOVS <= IOV_MAX, "write-zeroes fallback iovecs");
_Static_assert(VDK_BLK_CONFIG_SIZE == offsetof(struct virtio_blk_config,
					       max_secure_erase_sectors),
	       "config size");

/* What an SQE is for; the low byte of its user_data. */
enum sqe_kind {
	SQE_RW,	       /* readv/writev of the request's data */
	SQE_FLUSH,     /* fsync(DATASYNC) */
	SQE_FALLOC,    /* fallocate of one segment */
	SQE_ZERO_FULL, /* writev of zeroes, whole ZERO_CHUNKs of a segment */
	SQE_ZERO_TAIL, /* write of zeroes, the rest of the segment */
};

/* How a discard/write-zeroes segment is being carried out. */
enum seg_step {
	STEP_PUNCH,	 /* FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE */
	STEP_ZERO_RANGE, /* FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE */
	STEP_WRITE,	 /* plain writes of zeroes */
};

struct blk_seg {
	uint64_t offset; /* bytes into the image */
	uint64_t len;	 /* bytes, > 0 */
	enum seg_step step;
};

/* One in-flight request (one popped descriptor chain). */
struct blk_req {
	bool busy;
	uint16_t head;	 /* descriptor id for vdk_virtq_add_used() */
	uint32_t type;	 /* VIRTIO_BLK_T_* */
	uint8_t *status; /* host address of the status byte (guest RAM) */
	uint8_t status_val;
	uint32_t used_len; /* len for the used ring element */
	uint32_t pending;  /* SQEs submitted and not yet completed */
	uint64_t expected; /* bytes the SQE_RW must transfer */
	uint32_t nsegs;
	struct blk_seg segs[MAX_SEGS];
};

struct blk_queue {
	pthread_mutex_t lock; /* everything below */
	struct vdk_blk *blk;
	uint16_t index;
	struct vdk_virtq *vq; /* NULL unless active, awake and ready */
	bool broken;	      /* pop failed: ignored until reset */
	bool starved;	      /* chains wait for a free request slot */
	bool stopping;	      /* draining for sleep/reset: pop nothing */
	bool need_notify;     /* used elements added since the last check */
	bool ring_ok;
	struct io_uring ring;
	int efd;
	struct blk_req *reqs; /* queue_size slots */
	uint16_t *free_ids;
	uint32_t nfree;
	uint32_t in_flight;
	struct iovec *iov_pool; /* BATCH arrays of iov_cap entries */
	uint32_t iov_cap;
	struct vdk_blk_stats stats;
	struct vdk_ratelimit rl;
};

struct vdk_blk {
	struct vdk_device dev;
	int fd;
	char *path;
	bool read_only;
	uint64_t capacity; /* 512-byte sectors */
	uint32_t blk_size;
	uint16_t num_queues;
	uint16_t queue_size;
	uint8_t serial[VIRTIO_BLK_ID_BYTES];
	uint64_t features;
	struct virtio_blk_config config; /* little-endian, as the driver sees */
	/* Learned at run time (any queue thread): the image refuses these
	 * fallocate modes, so write-zeroes skips them. */
	bool no_punch;
	bool no_zero_range;
	uint8_t *zero_buf;		  /* ZERO_CHUNK zero bytes */
	struct iovec zero_iov[ZERO_IOVS]; /* all point at zero_buf */
	const struct vdk_mem *mem;
	struct vdk_interrupt *irq;
	struct blk_queue queues[];
};

static const struct vdk_device_ops blk_ops;

/* ---- request completion ------------------------------------------------ */

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

/* IN / OUT: validate and queue one readv/writev. Return a status to finish
 * the request with now, or -1 if it was submitted. */
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
	struct io_uring_sqe *sqe = get_sqe(q);
	if (!sqe)
		return VIRTIO_BLK_S_IOERR;
	if (in)
		io_uring_prep_readv(sqe, blk->fd, iov, n, offset);
	else
		io_uring_prep_writev(sqe, blk->fd, iov, n, offset);
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
 * more; false when it is empty, every request slot is taken (starved) or
 * the queue stopped on a driver error.
 */
static bool pop_batch(struct blk_queue *q)
{
	bool more = true;

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
		ret = vdk_virtq_pop(q->vq, &c);
		if (ret < 0) {
			VDK_LOG_RL(&q->rl, VDK_LOG_ERROR, MOD,
				   "queue %u stopped: %s", q->index,
				   vdk_virtq_strerror(vdk_virtq_error(q->vq)));
			q->broken = true;
			vdk_interrupt_needs_reset(q->blk->irq);
		} else if (ret > 0) {
			handle_chain(q, &c);
			continue;
		}
		more = false;
	}
	submit(q);
	return more && !q->starved;
}

/* Pop and start every available chain (lock held). */
static void queue_kick(struct blk_queue *q)
{
	if (!q->vq || q->broken || q->stopping)
		return;
	do {
		vdk_virtq_enable_notification(q->vq, false);
		while (pop_batch(q))
			;
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

	io_uring_for_each_cqe(&q->ring, head, cqe)
	{
		handle_cqe(q, cqe->user_data, cqe->res);
		n++;
	}
	io_uring_cq_advance(&q->ring, n);
	submit(q); /* segments that fell back to another step */
	return (int)(before - q->in_flight);
}

static void drain_eventfd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

/* Process completions and restart starved chains (lock held). */
static int queue_process(struct blk_queue *q)
{
	int done = reap(q);

	if (q->starved && q->nfree > 0) {
		q->starved = false;
		queue_kick(q);
	}
	flush_notify(q);
	return done;
}

/* Wait until nothing is in flight (lock held). */
static int queue_wait_idle(struct blk_queue *q)
{
	int total = 0;

	for (;;) {
		total += queue_process(q);
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

/* Drain a queue and stop using it (sleep/reset). */
static void queue_stop(struct blk_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	(void)queue_wait_idle(q);
	q->vq = NULL;
	q->starved = false;
	pthread_mutex_unlock(&q->lock);
}

static void queue_start(struct blk_queue *q, struct vdk_virtq *vq, bool fresh)
{
	pthread_mutex_lock(&q->lock);
	q->vq = vq;
	q->stopping = false;
	if (fresh)
		q->broken = false;
	pthread_mutex_unlock(&q->lock);
}

/* ---- device ops -------------------------------------------------------- */

static uint16_t blk_num_queues(void *dev)
{
	return ((struct vdk_blk *)dev)->num_queues;
}

static uint16_t blk_queue_max_size(void *dev, uint16_t index)
{
	(void)index;
	return ((struct vdk_blk *)dev)->queue_size;
}

static uint64_t blk_features(void *dev)
{
	return ((struct vdk_blk *)dev)->features;
}

static void blk_read_config(void *dev, uint32_t offset, void *data,
			    uint32_t len)
{
	memcpy(data, (const uint8_t *)&((struct vdk_blk *)dev)->config + offset,
	       len);
}

static int blk_activate(void *dev, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_blk *blk = dev;

	blk->mem = mem;
	blk->irq = irq;
	for (uint16_t i = 0; i < blk->num_queues; i++)
		queue_start(&blk->queues[i], queues[i], true);
	vdk_log(VDK_LOG_INFO, MOD, "%s: activated, %u queue(s)", blk->path,
		blk->num_queues);
	return 0;
}

static int blk_reset(void *dev)
{
	struct vdk_blk *blk = dev;

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		queue_stop(&blk->queues[i]);
		blk->queues[i].broken = false;
	}
	blk->mem = NULL;
	blk->irq = NULL;
	return 0;
}

static void blk_queue_notify(void *dev, uint16_t index)
{
	struct vdk_blk *blk = dev;
	struct blk_queue *q;

	if (index >= blk->num_queues)
		return;
	q = &blk->queues[index];
	pthread_mutex_lock(&q->lock);
	queue_kick(q);
	pthread_mutex_unlock(&q->lock);
}

static int blk_sleep(void *dev)
{
	struct vdk_blk *blk = dev;

	for (uint16_t i = 0; i < blk->num_queues; i++)
		queue_stop(&blk->queues[i]);
	return 0;
}

static int blk_wake(void *dev, const struct vdk_mem *mem,
		    struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_blk *blk = dev;

	if (!mem || !queues)
		return 0; /* not active: nothing to resume */
	blk->mem = mem;
	blk->irq = irq;
	for (uint16_t i = 0; i < blk->num_queues; i++) {
		queue_start(&blk->queues[i], queues[i], false);
		blk_queue_notify(blk, i); /* buffers made available meanwhile */
	}
	return 0;
}

/*
 * Snapshot (device asleep, so nothing is in flight): what the restored
 * device must agree on, and the counters. The image itself is the caller's
 * to preserve.
 */
static const char *const snap_keys[] = {
	"capacity",	 "read_only", "num_queues",   "queue_size",
	"blk_size",	 "reads",     "writes",	      "flushes",
	"get_ids",	 "discards",  "write_zeroes", "bytes_read",
	"bytes_written", "io_errors", "unsupported",  "malformed",
};
#define SNAP_KEYS  (sizeof(snap_keys) / sizeof(snap_keys[0]))
#define SNAP_STATS 5 /* index of the first counter */

static void snap_values(struct vdk_blk *blk, uint64_t v[SNAP_KEYS])
{
	struct vdk_blk_stats s = vdk_blk_stats(blk);
	const uint64_t vals[SNAP_KEYS] = {
		blk->capacity,	 blk->read_only, blk->num_queues,
		blk->queue_size, blk->blk_size,	 s.reads,
		s.writes,	 s.flushes,	 s.get_ids,
		s.discards,	 s.write_zeroes, s.bytes_read,
		s.bytes_written, s.io_errors,	 s.unsupported,
		s.malformed,
	};

	memcpy(v, vals, sizeof(vals));
}

static int blk_snapshot(void *dev, cbor_item_t **out)
{
	uint64_t v[SNAP_KEYS];
	cbor_item_t *map = cbor_new_definite_map(SNAP_KEYS);

	if (!map)
		return -ENOMEM;
	snap_values(dev, v);
	for (size_t i = 0; i < SNAP_KEYS; i++) {
		cbor_item_t *k = cbor_build_string(snap_keys[i]);
		cbor_item_t *val = cbor_build_uint64(v[i]);
		bool ok = k && val &&
			  cbor_map_add(map, (struct cbor_pair){.key = k,
							       .value = val});

		if (k)
			cbor_decref(&k);
		if (val)
			cbor_decref(&val);
		if (!ok) {
			cbor_decref(&map);
			return -ENOMEM;
		}
	}
	*out = map;
	return 0;
}

static int blk_restore(void *dev, const cbor_item_t *item)
{
	struct vdk_blk *blk = dev;
	uint64_t mine[SNAP_KEYS], got[SNAP_KEYS];
	bool seen[SNAP_KEYS] = {false};
	struct cbor_pair *pairs;

	if (!cbor_isa_map((cbor_item_t *)item) ||
	    !cbor_map_is_definite((cbor_item_t *)item))
		return -EINVAL;
	pairs = cbor_map_handle((cbor_item_t *)item);
	for (size_t i = 0; i < cbor_map_size((cbor_item_t *)item); i++) {
		cbor_item_t *k = pairs[i].key, *val = pairs[i].value;

		if (!cbor_isa_string(k) || !cbor_string_is_definite(k) ||
		    !cbor_isa_uint(val))
			return -EINVAL;
		for (size_t j = 0; j < SNAP_KEYS; j++) {
			if (cbor_string_length(k) == strlen(snap_keys[j]) &&
			    !memcmp(cbor_string_handle(k), snap_keys[j],
				    strlen(snap_keys[j]))) {
				got[j] = cbor_get_int(val);
				seen[j] = true;
			}
		}
	}
	snap_values(blk, mine);
	for (size_t j = 0; j < SNAP_KEYS; j++) {
		if (!seen[j])
			return -EINVAL;
		if (j < SNAP_STATS && got[j] != mine[j]) {
			vdk_log(VDK_LOG_ERROR, MOD,
				"%s: snapshot %s %llu, device has %llu",
				blk->path, snap_keys[j],
				(unsigned long long)got[j],
				(unsigned long long)mine[j]);
			return -EINVAL;
		}
	}
	/* The counters go to queue 0; the others start from zero. */
	for (uint16_t i = 0; i < blk->num_queues; i++)
		memset(&blk->queues[i].stats, 0, sizeof(blk->queues[i].stats));
	memcpy(&blk->queues[0].stats, &got[SNAP_STATS],
	       sizeof(blk->queues[0].stats));
	return 0;
}

static void blk_destroy(void *dev)
{
	struct vdk_blk *blk = dev;

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		struct blk_queue *q = &blk->queues[i];

		if (q->ring_ok) {
			/* nothing may be in flight when the ring goes away */
			pthread_mutex_lock(&q->lock);
			(void)queue_wait_idle(q);
			pthread_mutex_unlock(&q->lock);
			io_uring_queue_exit(&q->ring);
		}
		if (q->efd >= 0)
			close(q->efd);
		free(q->reqs);
		free(q->free_ids);
		free(q->iov_pool);
		pthread_mutex_destroy(&q->lock);
	}
	if (blk->fd >= 0)
		close(blk->fd);
	free(blk->zero_buf);
	free(blk->path);
	free(blk);
}

static const struct vdk_device_ops blk_ops = {
	.device_type = VIRTIO_ID_BLOCK,
	.name = "blk",
	.num_queues = blk_num_queues,
	.queue_max_size = blk_queue_max_size,
	.features = blk_features,
	.read_config = blk_read_config,
	.config_size = VDK_BLK_CONFIG_SIZE,
	.activate = blk_activate,
	.reset = blk_reset,
	.queue_notify = blk_queue_notify,
	.sleep = blk_sleep,
	.wake = blk_wake,
	.snapshot = blk_snapshot,
	.restore = blk_restore,
	.destroy = blk_destroy,
};

/* ---- construction ------------------------------------------------------ */

static int queue_init(struct vdk_blk *blk, uint16_t index)
{
	struct blk_queue *q = &blk->queues[index];
	struct io_uring_params p = {0};
	uint32_t qs = blk->queue_size;
	int ret;

	q->blk = blk;
	q->index = index;
	q->efd = -1;
	q->rl = (struct vdk_ratelimit)VDK_RATELIMIT_INIT;
	pthread_mutex_init(&q->lock, NULL);
	/* A chain has at most queue_size descriptors (§2.7.5.3.1); allow
	 * each to be split once at a guest memory region boundary. */
	q->iov_cap = 2 * qs + 8;
	q->reqs = calloc(qs, sizeof(*q->reqs));
	q->free_ids = calloc(qs, sizeof(*q->free_ids));
	q->iov_pool = calloc((size_t)BATCH * q->iov_cap, sizeof(struct iovec));
	if (!q->reqs || !q->free_ids || !q->iov_pool)
		return -ENOMEM;
	for (uint32_t i = 0; i < qs; i++)
		q->free_ids[i] = (uint16_t)(qs - 1 - i);
	q->nfree = qs;

	ret = io_uring_queue_init_params(2 * qs, &q->ring, &p);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: io_uring_queue_init: %s",
			blk->path, strerror(-ret));
		return ret;
	}
	q->ring_ok = true;
	if (!(p.features & IORING_FEAT_SUBMIT_STABLE) ||
	    !(p.features & IORING_FEAT_NODROP)) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s: io_uring lacks SUBMIT_STABLE/NODROP (kernel too "
			"old)",
			blk->path);
		return -EOPNOTSUPP;
	}
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, MOD, "%s: eventfd: %s", blk->path,
			strerror(errno));
		return ret;
	}
	ret = io_uring_register_eventfd(&q->ring, q->efd);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: io_uring_register_eventfd: %s",
			blk->path, strerror(-ret));
		return ret;
	}
	return 0;
}

/* Open the image and find its size in bytes and logical block size. */
static int open_image(struct vdk_blk *blk, uint64_t *size)
{
	struct stat st;
	int ret;

	blk->fd = open(blk->path,
		       (blk->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (blk->fd < 0) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, MOD, "%s: open: %s", blk->path,
			strerror(errno));
		return ret;
	}
	if (fstat(blk->fd, &st) < 0) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, MOD, "%s: fstat: %s", blk->path,
			strerror(errno));
		return ret;
	}
	blk->blk_size = SECTOR_SIZE;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (!S_ISBLK(st.st_mode)) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s: neither a regular file nor a block device",
			blk->path);
		return -ENOTBLK;
	}
	int lbs = 0;
	if (ioctl(blk->fd, BLKGETSIZE64, size) < 0 ||
	    ioctl(blk->fd, BLKSSZGET, &lbs) < 0) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, MOD, "%s: block device ioctl: %s",
			blk->path, strerror(errno));
		return ret;
	}
	if (lbs >= (int)SECTOR_SIZE && lbs <= 65536 && !(lbs & (lbs - 1)))
		blk->blk_size = (uint32_t)lbs;
	return 0;
}

static void fill_config(struct vdk_blk *blk)
{
	struct virtio_blk_config *c = &blk->config;

	blk->features = (1ull << VIRTIO_F_VERSION_1) |
			(1ull << VIRTIO_RING_F_INDIRECT_DESC) |
			(1ull << VIRTIO_RING_F_EVENT_IDX) |
			(1ull << VIRTIO_BLK_F_SIZE_MAX) |
			(1ull << VIRTIO_BLK_F_SEG_MAX) |
			(1ull << VIRTIO_BLK_F_BLK_SIZE) |
			(1ull << VIRTIO_BLK_F_FLUSH);
	if (blk->num_queues > 1)
		blk->features |= 1ull << VIRTIO_BLK_F_MQ;
	if (blk->read_only)
		blk->features |= 1ull << VIRTIO_BLK_F_RO;
	else
		blk->features |= (1ull << VIRTIO_BLK_F_DISCARD) |
				 (1ull << VIRTIO_BLK_F_WRITE_ZEROES);

	memset(c, 0, sizeof(*c));
	c->capacity = htole64(blk->capacity);
	c->size_max = htole32(VDK_BLK_SIZE_MAX);
	c->seg_max = htole32(blk->queue_size - 2u);
	c->blk_size = htole32(blk->blk_size);
	c->num_queues = htole16(blk->num_queues);
	if (!blk->read_only) {
		c->max_discard_sectors = htole32(VDK_BLK_MAX_DISCARD_SECTORS);
		c->max_discard_seg = htole32(VDK_BLK_MAX_DISCARD_SEG);
		c->discard_sector_alignment =
			htole32(blk->blk_size >> SECTOR_SHIFT);
		c->max_write_zeroes_sectors =
			htole32(VDK_BLK_MAX_WRITE_ZEROES_SECTORS);
		c->max_write_zeroes_seg = htole32(VDK_BLK_MAX_WRITE_ZEROES_SEG);
		c->write_zeroes_may_unmap = 1;
	}
}

static int check_config(const struct vdk_blk_config *cfg, uint16_t nq,
			uint16_t qs)
{
	if (!cfg || !cfg->path) {
		vdk_log(VDK_LOG_ERROR, MOD, "no image path");
		return -EINVAL;
	}
	if (cfg->serial && strlen(cfg->serial) > VIRTIO_BLK_ID_BYTES) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: serial longer than %d bytes",
			cfg->path, VIRTIO_BLK_ID_BYTES);
		return -EINVAL;
	}
	if (nq > VDK_BLK_MAX_QUEUES || qs < 4 || qs > VDK_BLK_MAX_QUEUE_SIZE ||
	    (qs & (qs - 1))) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s: %u queues of size %u (1..%d queues, size a power "
			"of two 4..%d)",
			cfg->path, nq, qs, VDK_BLK_MAX_QUEUES,
			VDK_BLK_MAX_QUEUE_SIZE);
		return -EINVAL;
	}
	return 0;
}

int vdk_blk_new(struct vdk_blk **out, const struct vdk_blk_config *cfg)
{
	uint16_t nq = cfg && cfg->num_queues ? cfg->num_queues : 1;
	uint16_t qs = cfg && cfg->queue_size ? cfg->queue_size
					     : VDK_BLK_DEFAULT_QUEUE_SIZE;
	struct vdk_blk *blk;
	uint64_t size = 0;
	int ret;

	ret = check_config(cfg, nq, qs);
	if (ret < 0)
		return ret;
	blk = calloc(1, sizeof(*blk) + nq * sizeof(struct blk_queue));
	if (!blk)
		return -ENOMEM;
	blk->fd = -1;
	blk->num_queues = nq;
	blk->queue_size = qs;
	blk->read_only = cfg->read_only;
	if (cfg->serial)
		memcpy(blk->serial, cfg->serial, strlen(cfg->serial));
	for (uint16_t i = 0; i < nq; i++)
		blk->queues[i].efd = -1;
	blk->path = strdup(cfg->path);
	blk->zero_buf = calloc(1, ZERO_CHUNK);
	if (!blk->path || !blk->zero_buf) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < ZERO_IOVS; i++)
		blk->zero_iov[i] = (struct iovec){blk->zero_buf, ZERO_CHUNK};

	ret = open_image(blk, &size);
	if (ret < 0)
		goto fail;
	if (size % SECTOR_SIZE)
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: size %llu is not a multiple of 512; the last %llu "
			"bytes are not reachable",
			blk->path, (unsigned long long)size,
			(unsigned long long)(size % SECTOR_SIZE));
	blk->capacity = size >> SECTOR_SHIFT;
	for (uint16_t i = 0; i < nq; i++) {
		ret = queue_init(blk, i);
		if (ret < 0)
			goto fail;
	}
	fill_config(blk);
	ret = vdk_device_init(&blk->dev, &blk_ops, blk);
	if (ret < 0)
		goto fail;
	vdk_log(VDK_LOG_INFO, MOD,
		"%s: %llu sectors, block size %u, %u queue(s) of %u%s",
		blk->path, (unsigned long long)blk->capacity, blk->blk_size, nq,
		qs, blk->read_only ? ", read-only" : "");
	*out = blk;
	return 0;
fail:
	blk_destroy(blk);
	return ret;
}

void vdk_blk_free(struct vdk_blk *blk)
{
	if (blk)
		vdk_device_fini(&blk->dev);
}

struct vdk_device *vdk_blk_device(struct vdk_blk *blk)
{
	return &blk->dev;
}

struct vdk_blk *vdk_blk_from_device(struct vdk_device *dev)
{
	return dev && dev->ops == &blk_ops ? dev->impl : NULL;
}

uint64_t vdk_blk_capacity(const struct vdk_blk *blk)
{
	return blk->capacity;
}

int vdk_blk_completion_fd(const struct vdk_blk *blk, uint16_t queue)
{
	if (queue >= blk->num_queues)
		return -EINVAL;
	return blk->queues[queue].efd;
}

int vdk_blk_process_completions(struct vdk_blk *blk, uint16_t queue)
{
	struct blk_queue *q;
	int done;

	if (queue >= blk->num_queues)
		return -EINVAL;
	q = &blk->queues[queue];
	pthread_mutex_lock(&q->lock);
	/* Read the counter first: a completion arriving after this read
	 * makes the fd readable again, so none is left unnoticed. */
	drain_eventfd(q->efd);
	done = queue_process(q);
	pthread_mutex_unlock(&q->lock);
	return done;
}

int vdk_blk_wait_idle(struct vdk_blk *blk)
{
	int total = 0;

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		struct blk_queue *q = &blk->queues[i];
		int ret;

		pthread_mutex_lock(&q->lock);
		ret = queue_wait_idle(q);
		pthread_mutex_unlock(&q->lock);
		if (ret < 0)
			return ret;
		total += ret;
	}
	return total;
}

uint32_t vdk_blk_in_flight(struct vdk_blk *blk)
{
	uint32_t n = 0;

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		pthread_mutex_lock(&blk->queues[i].lock);
		n += blk->queues[i].in_flight;
		pthread_mutex_unlock(&blk->queues[i].lock);
	}
	return n;
}

struct vdk_blk_stats vdk_blk_stats(struct vdk_blk *blk)
{
	struct vdk_blk_stats sum = {0};

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		struct blk_queue *q = &blk->queues[i];

		pthread_mutex_lock(&q->lock);
		const uint64_t *src = (const uint64_t *)&q->stats;
		uint64_t *dst = (uint64_t *)&sum;
		for (size_t j = 0; j < sizeof(sum) / sizeof(uint64_t); j++)
			dst[j] += src[j];
		pthread_mutex_unlock(&q->lock);
	}
	return sum;
}
