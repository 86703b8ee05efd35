/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the virtio-blk device: what blk.c (setup, configuration,
 * features, device ops, lifecycle) and blk_io.c (request parsing, io_uring
 * submission and completion) share. Not installed.
 *
 * Locking: each struct blk_queue has its own mutex, held around everything
 * that touches the queue's fields, its io_uring and its virtqueue. The
 * vdk_blk_io_*() functions are called with it held.
 */
#ifndef VDK_BLK_INTERNAL_H
#define VDK_BLK_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <liburing.h>

#include <vdk/devices/blk.h>
#include <vdk/log.h>

#ifndef VDK_HIDDEN
#define VDK_HIDDEN __attribute__((visibility("hidden")))
#endif

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
	uint64_t start_ns; /* CLOCK_MONOTONIC when popped */
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
	bool yielded;	      /* kick stopped after queue_size chains */
	uint32_t popped;      /* chains popped by the current kick */
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
	uint64_t latency[VDK_BLK_LATENCY_BUCKETS]; /* vdk_blk_queue_stats */
	/* CLOCK_MONOTONIC read once per pop batch and once per reap, so that
	 * the latency histogram costs two clock reads per batch, not per
	 * request; reaping: completions take reap_ns as their end time */
	uint64_t batch_ns, reap_ns;
	bool reaping;
	uint64_t sync_rw;     /* IN/OUT done with preadv/pwritev */
	uint64_t async_rw;    /* IN/OUT submitted to io_uring */
	uint64_t buffered_rw; /* unaligned, through fd_buffered */
	struct vdk_ratelimit rl;
};

struct vdk_blk {
	struct vdk_device dev;
	int fd;		 /* the image, O_DIRECT if direct */
	int fd_buffered; /* direct only: the image without O_DIRECT, for
			  * requests that break the alignment; else -1 */
	char *path;
	bool read_only;
	bool direct;
	bool single_thread;	   /* vdk_blk_config.single_thread */
	bool sync_rw;		   /* IN/OUT with preadv/pwritev inline */
	uint32_t dio_mem_align;	   /* direct: buffer address/length, bytes */
	uint32_t dio_offset_align; /* direct: file offset/length, bytes */
	uint64_t capacity;	   /* 512-byte sectors */
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
	struct vdk_loop *loop; /* attach_loop(): the completion fds are on it */
	struct blk_queue queues[];
};

/*
 * vdk_blk_io_kick() - pop and start every available chain of @q (virtio 1.2
 * §5.2.6), with notifications suppressed while popping (§2.7.10), up to
 * queue_size chains: then it sets yielded, signals the completion eventfd
 * and returns with notifications still off, and vdk_blk_io_process() goes
 * on. Does nothing while the queue is stopped, stopping or broken.
 */
VDK_HIDDEN void vdk_blk_io_kick(struct blk_queue *q);

/*
 * vdk_blk_io_process() - reap the completions of @q without blocking,
 * restart chains that waited for a free request slot and notify the driver.
 * Return: the number of requests completed.
 */
VDK_HIDDEN int vdk_blk_io_process(struct blk_queue *q);

/*
 * vdk_blk_io_wait_idle() - process completions of @q until nothing is in
 * flight. Return: the number of requests completed, or -errno from
 * io_uring_submit_and_wait() (then some may still be in flight).
 */
VDK_HIDDEN int vdk_blk_io_wait_idle(struct blk_queue *q);

#endif /* VDK_BLK_INTERNAL_H */
