// SPDX-License-Identifier: Apache-2.0
/*
 * vdk-blkbench's engine (blkbench.h): guest memory is a memfd shared with
 * the back-end, the virtqueues are vdk's driver-side split virtqueues
 * (<vdk/driver.h>) over the vhost-user driver transport
 * (<vdk/vhost_user_frontend.h>), and requests are virtio-blk requests
 * (virtio 1.2 §5.2.6) whose completion latencies go into a log-linear
 * histogram.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <vdk/driver.h>
#include <vdk/vhost_user_frontend.h>

#include "blkbench.h"

#define PF(bit)	 (1ull << (bit))
#define RAM_GPA	 0x40000000ull /* guest-physical base of the memfd */
#define PAGE	 4096u
#define MAX_SEGS 64u

/* Set by blkbench_on_signal(), read by blkbench_run(). */
static volatile sig_atomic_t stop_signal;

void blkbench_on_signal(int sig)
{
	(void)sig;
	stop_signal = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram (log-linear) --------------------------------------- */

static unsigned hist_index(uint64_t v)
{
	unsigned k;

	if (v < HIST_SUB)
		return (unsigned)v;
	k = 63u - (unsigned)__builtin_clzll(v); /* ≥ 6 */
	return (k - 5u) * HIST_SUB +
	       (unsigned)((v >> (k - 6u)) & (HIST_SUB - 1));
}

/* Middle of bucket @i, in ns. */
static double hist_value(unsigned i)
{
	unsigned k, sub;
	double lo, width;

	if (i < HIST_SUB)
		return i;
	k = i / HIST_SUB + 5u;
	sub = i % HIST_SUB;
	width = (double)(1ull << (k - 6u));
	lo = (double)(1ull << k) + sub * width;
	return lo + width / 2;
}

double blkbench_hist_percentile(const uint64_t *hist, uint64_t n, double p)
{
	uint64_t want = (uint64_t)(p / 100.0 * (double)n);
	uint64_t seen = 0;

	if (want >= n)
		want = n - 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen > want)
			return hist_value(i);
	}
	return 0;
}

/* ---- data pattern ----------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void pattern_fill(uint8_t *buf, uint32_t len, uint64_t seed,
			 uint64_t offset)
{
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t v = mix(seed ^ ((offset + i) >> 3));

		memcpy(buf + i, &v, 8);
	}
}

static bool pattern_check(const uint8_t *buf, uint32_t len, uint64_t seed,
			  uint64_t offset)
{
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t v = mix(seed ^ ((offset + i) >> 3)), got;

		memcpy(&got, buf + i, 8);
		if (got != v)
			return false;
	}
	return true;
}

/* ---- guest memory ------------------------------------------------------------ */

static void *ram_alloc(struct bench *b, size_t len, size_t align)
{
	size_t at = (b->bump + align - 1) & ~(align - 1);

	if (at + len > b->ram_size)
		return NULL;
	b->bump = at + len;
	return b->ram + at;
}

static uint64_t gpa_of(struct bench *b, const void *p, size_t len)
{
	return b->d.hal.virt_to_phys(b->d.hal.opaque, p, len);
}

int blkbench_ram_create(struct bench *b)
{
	const struct opts *o = &b->o;
	size_t per_q, bs = ((size_t)o->bs + PAGE - 1) & ~(size_t)(PAGE - 1);

	per_q = vdk_driver_virtq_layout_size((uint16_t)o->queue_size) + PAGE +
		(size_t)o->queue_size * (MAX_SEGS + 2) * 16 + PAGE +
		(size_t)o->iodepth * (bs + 64) + 2 * PAGE;
	b->ram_size = (per_q * o->num_queues + 0x1fffff) & ~(size_t)0x1fffff;
	/* sealed like QEMU's memory-backend-memfd: back-ends may refuse
	 * guest RAM that could shrink under them */
	b->memfd =
		memfd_create("vdk-blkbench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (b->memfd < 0 || ftruncate(b->memfd, (off_t)b->ram_size) < 0 ||
	    fcntl(b->memfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) < 0)
		return -errno;
	b->ram = mmap(NULL, b->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      b->memfd, 0);
	if (b->ram == MAP_FAILED)
		return -errno;
	return 0;
}

/* ---- device set-up ------------------------------------------------------------ */

static int read_cfg(struct bench *b, uint32_t off, void *buf, uint32_t len)
{
	return vdk_driver_read_config_consistent(&b->d.transport, off, buf,
						 len);
}

static int setup_queue(struct bench *b, uint16_t i, uint16_t indirect_max)
{
	struct queue *q = &b->q[i];
	uint16_t qs = (uint16_t)b->o.queue_size;
	size_t ring_len = vdk_driver_virtq_layout_size(qs);
	size_t ind_len = (size_t)qs * indirect_max * 16;
	void *ring = ram_alloc(b, ring_len, PAGE);
	void *ind = ram_alloc(b, ind_len, PAGE);
	struct vdk_driver_virtq_config cfg = {
		.index = i,
		.size = qs,
		.features = b->features,
		.ring = ring,
		.ring_len = ring_len,
		.indirect = ind,
		.indirect_max = indirect_max,
	};

	q->slots = calloc(qs, sizeof(*q->slots));
	q->reqs = calloc(b->o.iodepth, sizeof(*q->reqs));
	q->by_token = calloc(qs, sizeof(*q->by_token));
	if (!ring || !ind || !q->slots || !q->reqs || !q->by_token)
		return -ENOMEM;
	cfg.slots = q->slots;
	cfg.ring_gpa = gpa_of(b, ring, ring_len);
	cfg.indirect_gpa = gpa_of(b, ind, ind_len);
	for (uint32_t r = 0; r < b->o.iodepth; r++) {
		struct req *rq = &q->reqs[r];
		uint8_t *small = ram_alloc(b, 64, 64);

		rq->data = ram_alloc(b, b->o.bs, PAGE);
		if (!small || !rq->data)
			return -ENOMEM;
		rq->hdr = (struct virtio_blk_outhdr *)small;
		rq->status = small + sizeof(*rq->hdr);
	}
	return vdk_driver_virtq_init(&q->vq, &b->d.transport, &b->d.hal, &cfg);
}

int blkbench_setup_device(struct bench *b)
{
	const uint64_t want =
		PF(VIRTIO_F_VERSION_1) | PF(VIRTIO_RING_F_INDIRECT_DESC) |
		PF(VIRTIO_RING_F_EVENT_IDX) | PF(VIRTIO_BLK_F_SIZE_MAX) |
		PF(VIRTIO_BLK_F_SEG_MAX) | PF(VIRTIO_BLK_F_BLK_SIZE) |
		PF(VIRTIO_BLK_F_FLUSH) | PF(VIRTIO_BLK_F_RO) |
		PF(VIRTIO_BLK_F_MQ);
	const struct vdk_vhost_user_frontend_region region = {
		.gpa = RAM_GPA,
		.size = b->ram_size,
		.addr = b->ram,
		.fd = b->memfd,
	};
	const struct vdk_vhost_user_driver_config cfg = {
		.device_id = VIRTIO_ID_BLOCK,
		.num_queues = (uint16_t)b->o.num_queues,
		.max_queue_size = (uint16_t)b->o.queue_size,
		.regions = &region,
		.nregions = 1,
	};
	uint32_t segs, indirect_max;
	uint16_t dev_queues = 1;
	int ret;

	ret = vdk_vhost_user_driver_init(&b->d, b->fe, &cfg);
	if (ret < 0)
		return fprintf(stderr, PROG ": vhost-user set-up: %s\n",
			       strerror(-ret)),
		       ret;
	ret = vdk_driver_begin_init(&b->d.transport, want, &b->features);
	if (ret < 0)
		return fprintf(stderr, PROG ": feature negotiation: %s\n",
			       strerror(-ret)),
		       ret;
	ret = read_cfg(b, offsetof(struct virtio_blk_config, capacity),
		       &b->capacity, 8);
	if (ret == 0 && (b->features & PF(VIRTIO_BLK_F_SIZE_MAX)))
		ret = read_cfg(b, offsetof(struct virtio_blk_config, size_max),
			       &b->size_max, 4);
	if (ret == 0 && (b->features & PF(VIRTIO_BLK_F_SEG_MAX)))
		ret = read_cfg(b, offsetof(struct virtio_blk_config, seg_max),
			       &b->seg_max, 4);
	if (ret == 0 && (b->features & PF(VIRTIO_BLK_F_MQ)))
		ret = read_cfg(b,
			       offsetof(struct virtio_blk_config, num_queues),
			       &dev_queues, 2);
	if (ret < 0)
		return fprintf(stderr, PROG ": configuration: %s\n",
			       strerror(-ret)),
		       ret;
	b->capacity *= 512;
	b->nq = b->d.num_queues < dev_queues ? b->d.num_queues : dev_queues;
	if (b->nq < b->o.num_queues) {
		fprintf(stderr, PROG ": the device has only %u queue(s)\n",
			b->nq);
		return -EINVAL;
	}
	b->nq = (uint16_t)b->o.num_queues;
	if ((b->features & PF(VIRTIO_BLK_F_RO)) &&
	    (b->o.rw == RW_WRITE || b->o.rw == RW_RANDWRITE)) {
		fprintf(stderr, PROG ": the device is read-only\n");
		return -EROFS;
	}
	segs = b->size_max ? (b->o.bs + b->size_max - 1) / b->size_max : 1;
	if (segs > MAX_SEGS || (b->seg_max && segs > b->seg_max)) {
		fprintf(stderr, PROG ": --bs %u needs %u segments\n", b->o.bs,
			segs);
		return -EINVAL;
	}
	indirect_max = segs + 2;
	if (!(b->features & PF(VIRTIO_RING_F_INDIRECT_DESC)) &&
	    b->o.iodepth * indirect_max > b->o.queue_size) {
		fprintf(stderr, PROG ": --iodepth too deep for --queue-size "
				     "without indirect descriptors\n");
		return -EINVAL;
	}
	for (uint16_t i = 0; i < b->nq; i++) {
		ret = setup_queue(b, i, (uint16_t)indirect_max);
		if (ret < 0)
			return fprintf(stderr, PROG ": queue %u: %s\n", i,
				       strerror(-ret)),
			       ret;
	}
	ret = vdk_driver_finish_init(&b->d.transport);
	if (ret < 0)
		return fprintf(stderr, PROG ": DRIVER_OK: %s\n",
			       strerror(-ret)),
		       ret;
	return 0;
}

/* ---- I/O ------------------------------------------------------------------------ */

bool blkbench_is_write(const struct bench *b)
{
	return b->o.rw == RW_WRITE || b->o.rw == RW_RANDWRITE;
}

static uint64_t next_offset(struct bench *b)
{
	uint64_t blk;

	if (b->o.rw == RW_READ || b->o.rw == RW_WRITE) {
		blk = b->seq_next;
		b->seq_next = (b->seq_next + 1) % b->nblocks;
	} else {
		/* xorshift64* */
		b->rnd ^= b->rnd >> 12;
		b->rnd ^= b->rnd << 25;
		b->rnd ^= b->rnd >> 27;
		blk = (b->rnd * 0x2545f4914f6cdd1dull) % b->nblocks;
	}
	return blk * b->o.bs;
}

/* Build request @r of queue @q as a descriptor chain and make it available. */
static int submit(struct bench *b, struct queue *q, uint32_t r)
{
	struct req *rq = &q->reqs[r];
	struct vdk_driver_buf rd[MAX_SEGS + 1], wr[MAX_SEGS + 1];
	uint16_t nr = 0, nw = 0;
	uint32_t seg = b->size_max ? b->size_max : b->o.bs;
	bool w = blkbench_is_write(b);
	int head;

	rq->offset = next_offset(b);
	rq->hdr->type = w ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	rq->hdr->ioprio = 0;
	rq->hdr->sector = rq->offset / 512;
	*rq->status = 0xff;
	if (w && b->o.verify)
		pattern_fill(rq->data, b->o.bs, b->o.pattern, rq->offset);
	rd[nr++] = (struct vdk_driver_buf){rq->hdr, sizeof(*rq->hdr)};
	for (uint32_t off = 0; off < b->o.bs; off += seg) {
		uint32_t len = b->o.bs - off < seg ? b->o.bs - off : seg;
		struct vdk_driver_buf buf = {rq->data + off, len};

		if (w)
			rd[nr++] = buf;
		else
			wr[nw++] = buf;
	}
	wr[nw++] = (struct vdk_driver_buf){rq->status, 1};
	rq->start_ns = now_ns();
	head = vdk_driver_virtq_add(&q->vq, rd, nr, wr, nw);
	if (head < 0)
		return head;
	q->by_token[head] = r;
	q->in_flight++;
	b->submitted_bytes += b->o.bs;
	return 0;
}

static void complete(struct bench *b, struct req *rq, uint64_t now)
{
	uint64_t lat = now - rq->start_ns;

	b->hist[hist_index(lat)]++;
	if (*rq->status != VIRTIO_BLK_S_OK) {
		if (b->errors++ < 5)
			fprintf(stderr,
				PROG ": request at %" PRIu64
				     " failed with status %u\n",
				rq->offset, *rq->status);
		return;
	}
	if (!blkbench_is_write(b) && b->o.verify &&
	    !pattern_check(rq->data, b->o.bs, b->o.pattern, rq->offset)) {
		if (b->mismatches++ < 5)
			fprintf(stderr,
				PROG ": data mismatch at offset %" PRIu64 "\n",
				rq->offset);
	}
	b->done_ios++;
	b->done_bytes += b->o.bs;
}

/* Take every used buffer of @q; resubmit while @more. Return completions
 * or -errno. */
static int reap(struct bench *b, struct queue *q, bool more)
{
	int n = 0, ret;

	for (;;) {
		uint16_t token;
		uint32_t len;

		ret = vdk_driver_virtq_pop_used(&q->vq, &token, &len);
		if (ret == -EAGAIN)
			break;
		if (ret < 0)
			return ret;
		/* Per completion: a request resubmitted in this loop may
		 * complete in it too. */
		n++;
		q->in_flight--;
		complete(b, &q->reqs[q->by_token[token]], now_ns());
		if (more && (!b->o.total || b->submitted_bytes < b->o.total)) {
			ret = submit(b, q, q->by_token[token]);
			if (ret < 0)
				return ret;
		}
	}
	if (n)
		vdk_driver_virtq_kick(&q->vq);
	return n;
}

/* Sleep until a call eventfd fires (or 100 ms pass) and acknowledge it.
 * The back-end's socket is watched too: if it hangs up (the back-end died
 * or closed the connection) no request will ever complete, so say so at
 * once. Return: 0, or -ECONNRESET on a hang-up. */
static int wait_calls(struct bench *b)
{
	struct pollfd p[VDK_VHOST_USER_DRIVER_MAX_QUEUES + 1];
	uint16_t n = b->nq;
	uint64_t v;

	for (uint16_t i = 0; i < b->nq; i++)
		p[i] = (struct pollfd){
			.fd = vdk_vhost_user_driver_call_fd(&b->d, i),
			.events = POLLIN};
	/* No POLLIN: the back-end sends nothing unasked on this socket. */
	p[n] = (struct pollfd){.fd = vdk_vhost_user_frontend_socket_fd(b->fe),
			       .events = POLLRDHUP};
	if (poll(p, n + 1u, 100) <= 0)
		return 0;
	if (p[n].revents & (POLLHUP | POLLRDHUP | POLLERR)) {
		fprintf(stderr, PROG ": the back-end closed the connection\n");
		return -ECONNRESET;
	}
	for (uint16_t i = 0; i < b->nq; i++)
		if (p[i].revents & POLLIN)
			(void)!read(p[i].fd, &v, sizeof(v));
	return 0;
}

/* --poll: whether the back-end hung up, without waiting. */
static bool backend_gone(struct bench *b)
{
	struct pollfd p = {.fd = vdk_vhost_user_frontend_socket_fd(b->fe),
			   .events = POLLRDHUP};

	return poll(&p, 1, 0) > 0 &&
	       (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

int blkbench_run(struct bench *b, uint64_t *elapsed_ns)
{
	uint32_t idle = 0;
	uint64_t start = now_ns(), deadline;
	uint64_t in_flight = 0;
	bool more = true;
	int ret;

	deadline = start + (uint64_t)(b->o.runtime * 1e9);
	for (uint16_t i = 0; i < b->nq; i++) {
		for (uint32_t r = 0; r < b->o.iodepth; r++) {
			if (b->o.total && b->submitted_bytes >= b->o.total)
				break;
			ret = submit(b, &b->q[i], r);
			if (ret < 0)
				return ret;
		}
		vdk_driver_virtq_kick(&b->q[i].vq);
	}
	for (;;) {
		int got = 0;

		in_flight = 0;
		for (uint16_t i = 0; i < b->nq; i++) {
			ret = reap(b, &b->q[i], more);
			if (ret < 0)
				return ret;
			got += ret;
			in_flight += b->q[i].in_flight;
		}
		if (more && (stop_signal || now_ns() >= deadline ||
			     (b->o.total && b->submitted_bytes >= b->o.total)))
			more = false;
		if (!more && in_flight == 0)
			break;
		if (!got && !b->o.poll) {
			ret = wait_calls(b);
			if (ret < 0)
				return ret;
		} else if (!got && ++idle % 4096 == 0 && backend_gone(b)) {
			fprintf(stderr,
				PROG ": the back-end closed the connection\n");
			return -ECONNRESET;
		}
		if (!more && now_ns() > deadline + 10ull * 1000000000u) {
			fprintf(stderr,
				PROG ": %" PRIu64 " requests never "
				     "completed\n",
				in_flight);
			return -ETIMEDOUT;
		}
	}
	*elapsed_ns = now_ns() - start;
	return 0;
}
