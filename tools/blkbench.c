// SPDX-License-Identifier: Apache-2.0
/*
 * vdk-blkbench: drive any vhost-user-blk back-end from a plain process and
 * measure it, the way libblkio's virtio-blk-vhost-user driver does: guest
 * memory is a memfd shared with the back-end, the virtqueues are vdk's
 * driver-side split virtqueues (<vdk/driver.h>) over the vhost-user driver
 * transport (<vdk/vhost_user_frontend.h>), and requests are virtio-blk
 * requests (virtio 1.2 §5.2.6).
 *
 *   vdk-blkbench --socket-path /tmp/blk.sock --rw randread --bs 4096 \
 *                --iodepth 32 --runtime 10
 *
 * Reports IOPS, bandwidth and completion latency percentiles (p50, p90,
 * p99, p99.9) as text and as one "RESULT key=value ..." line for scripts.
 * With --pattern SEED, writes fill each block with data derived from SEED
 * and its byte offset, and reads check it (exit 1 on a mismatch), which is
 * how the integration test checks data integrity end to end.
 *
 * Exit status: 0, or 1 on an error, a failed request or a mismatch.
 */
#include <errno.h>
#include <getopt.h>
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
#include <vdk/log.h>
#include <vdk/vhost_user_frontend.h>

#define PROG	     "vdk-blkbench"
#define PF(bit)	     (1ull << (bit))
#define RAM_GPA	     0x40000000ull /* guest-physical base of the memfd */
#define PAGE	     4096u
#define MAX_SEGS     64u
#define HIST_SUB     64u /* sub-buckets per power of two (~1.6 % error) */
#define HIST_BUCKETS (64u * HIST_SUB)

enum rw { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE };

struct opts {
	const char *socket_path;
	enum rw rw;
	uint32_t bs, iodepth, num_queues, queue_size;
	double runtime;
	uint64_t size, total;
	uint64_t pattern;
	bool verify, poll;
};

/* One request slot: header, data and status live in the shared memfd. */
struct req {
	struct virtio_blk_outhdr *hdr;
	uint8_t *data;
	uint8_t *status;
	uint64_t offset; /* bytes */
	uint64_t start_ns;
};

struct queue {
	struct vdk_driver_virtq vq;
	struct vdk_driver_virtq_slot *slots;
	struct req *reqs;
	uint32_t *by_token; /* head descriptor → request index */
	uint32_t in_flight;
};

struct bench {
	struct opts o;
	struct vdk_vhost_user_frontend *fe;
	struct vdk_vhost_user_driver d;
	uint8_t *ram;
	size_t ram_size, bump;
	int memfd;
	uint64_t features;
	uint64_t capacity; /* bytes */
	uint32_t size_max, seg_max;
	struct queue q[VDK_VHOST_USER_DRIVER_MAX_QUEUES];
	uint16_t nq;
	/* workload state */
	uint64_t seq_next, rnd, nblocks;
	uint64_t submitted_bytes, done_ios, done_bytes, errors, mismatches;
	uint64_t hist[HIST_BUCKETS];
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
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

static double hist_percentile(const uint64_t *hist, uint64_t n, double p)
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

static int ram_create(struct bench *b)
{
	const struct opts *o = &b->o;
	size_t per_q, bs = ((size_t)o->bs + PAGE - 1) & ~(size_t)(PAGE - 1);

	per_q = vdk_driver_virtq_layout_size((uint16_t)o->queue_size) + PAGE +
		(size_t)o->queue_size * (MAX_SEGS + 2) * 16 + PAGE +
		(size_t)o->iodepth * (bs + 64) + 2 * PAGE;
	b->ram_size = (per_q * o->num_queues + 0x1fffff) & ~(size_t)0x1fffff;
	b->memfd = memfd_create("vdk-blkbench", MFD_CLOEXEC);
	if (b->memfd < 0 || ftruncate(b->memfd, (off_t)b->ram_size) < 0)
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

static int setup_device(struct bench *b)
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

static bool is_write(const struct bench *b)
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
	bool w = is_write(b);
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
	if (!is_write(b) && b->o.verify &&
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

/* Sleep until a call eventfd fires (or 100 ms pass) and acknowledge it. */
static void wait_calls(struct bench *b)
{
	struct pollfd p[VDK_VHOST_USER_DRIVER_MAX_QUEUES];
	uint64_t v;

	for (uint16_t i = 0; i < b->nq; i++)
		p[i] = (struct pollfd){
			.fd = vdk_vhost_user_driver_call_fd(&b->d, i),
			.events = POLLIN};
	if (poll(p, b->nq, 100) <= 0)
		return;
	for (uint16_t i = 0; i < b->nq; i++)
		if (p[i].revents & POLLIN)
			(void)!read(p[i].fd, &v, sizeof(v));
}

static int run(struct bench *b, uint64_t *elapsed_ns)
{
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
		if (!got && !b->o.poll)
			wait_calls(b);
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

/* ---- command line -------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --socket-path PATH [--rw MODE] [--bs BYTES] "
		"[--iodepth N]\n"
		"       [--runtime SECONDS] [--num-queues N] [--queue-size N] "
		"[--size BYTES]\n"
		"       [--total BYTES] [--pattern SEED] [--poll]\n"
		"\n"
		"Drive a vhost-user-blk back-end listening on PATH (e.g. "
		"vdk-vhost-user-blk or\n"
		"qemu-storage-daemon --export type=vhost-user-blk) with "
		"virtio-blk requests\nfrom this process and report IOPS, "
		"bandwidth and latency percentiles.\n"
		"\n"
		"  --rw MODE          read, write, randread or randwrite "
		"(default randread)\n"
		"  --bs BYTES         request size, a multiple of 512; k/m "
		"suffixes (default 4k)\n"
		"  --iodepth N        requests in flight per queue (default "
		"1)\n"
		"  --runtime SECONDS  how long to run (default 10)\n"
		"  --num-queues N     request queues to use (default 1)\n"
		"  --queue-size N     virtqueue size, a power of two (default "
		"256)\n"
		"  --size BYTES       use only the first BYTES of the disk "
		"(default all)\n"
		"  --total BYTES      stop after submitting BYTES (default: "
		"runtime only)\n"
		"  --pattern SEED     writes write data derived from SEED and "
		"the offset;\n"
		"                     reads check it and fail on a mismatch\n"
		"  --poll             busy-poll the used rings instead of "
		"waiting on the\n"
		"                     call eventfds\n"
		"  -h, --help         this text\n"
		"\n"
		"Output: a summary, then 'RESULT rw=.. bs=.. iodepth=.. "
		"iops=.. mibs=..\n"
		"p50_us=.. p90_us=.. p99_us=.. p999_us=..'. Exit status 0, or "
		"1 on an error,\na failed request or a data mismatch.\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"socket-path", required_argument, NULL, 's'},
		{"rw", required_argument, NULL, 'r'},
		{"bs", required_argument, NULL, 'b'},
		{"iodepth", required_argument, NULL, 'd'},
		{"runtime", required_argument, NULL, 't'},
		{"num-queues", required_argument, NULL, 'q'},
		{"queue-size", required_argument, NULL, 'Q'},
		{"size", required_argument, NULL, 'S'},
		{"total", required_argument, NULL, 'T'},
		{"pattern", required_argument, NULL, 'p'},
		{"poll", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	*o = (struct opts){.rw = RW_RANDREAD,
			   .bs = 4096,
			   .iodepth = 1,
			   .num_queues = 1,
			   .queue_size = 256,
			   .runtime = 10};
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'r':
			if (!strcmp(optarg, "read"))
				o->rw = RW_READ;
			else if (!strcmp(optarg, "write"))
				o->rw = RW_WRITE;
			else if (!strcmp(optarg, "randread"))
				o->rw = RW_RANDREAD;
			else if (!strcmp(optarg, "randwrite"))
				o->rw = RW_RANDWRITE;
			else
				return fprintf(stderr, PROG ": --rw: %s?\n",
					       optarg),
				       -1;
			break;
		case 'b':
			if (parse_size(optarg, &v) || !v || v % 512 ||
			    v > (64u << 20))
				return fprintf(stderr,
					       PROG ": --bs: a multiple of 512 "
						    "up to 64m\n"),
				       -1;
			o->bs = (uint32_t)v;
			break;
		case 'd':
			if (parse_size(optarg, &v) || !v || v > 4096)
				return fprintf(stderr,
					       PROG ": --iodepth: 1..4096\n"),
				       -1;
			o->iodepth = (uint32_t)v;
			break;
		case 't':
			o->runtime = strtod(optarg, NULL);
			if (!(o->runtime > 0))
				return fprintf(stderr, PROG
					       ": --runtime: seconds > 0\n"),
				       -1;
			break;
		case 'q':
			if (parse_size(optarg, &v) || !v ||
			    v > VDK_VHOST_USER_DRIVER_MAX_QUEUES)
				return fprintf(stderr,
					       PROG ": --num-queues: 1..%u\n",
					       VDK_VHOST_USER_DRIVER_MAX_QUEUES),
				       -1;
			o->num_queues = (uint32_t)v;
			break;
		case 'Q':
			if (parse_size(optarg, &v) || !v || v > 32768 ||
			    (v & (v - 1)))
				return fprintf(stderr, PROG ": --queue-size: a "
							    "power of two\n"),
				       -1;
			o->queue_size = (uint32_t)v;
			break;
		case 'S':
			if (parse_size(optarg, &o->size))
				return fprintf(stderr, PROG ": --size?\n"), -1;
			break;
		case 'T':
			if (parse_size(optarg, &o->total))
				return fprintf(stderr, PROG ": --total?\n"), -1;
			break;
		case 'p':
			if (parse_size(optarg, &o->pattern))
				return fprintf(stderr,
					       PROG ": --pattern: a number\n"),
				       -1;
			o->verify = true;
			break;
		case 'P':
			o->poll = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc || !o->socket_path) {
		fprintf(stderr,
			PROG ": --socket-path is required (see --help)\n");
		return -1;
	}
	if (o->iodepth > o->queue_size) {
		fprintf(stderr, PROG ": --iodepth above --queue-size\n");
		return -1;
	}
	return 0;
}

static const char *rw_name(enum rw rw)
{
	static const char *const n[] = {"read", "write", "randread",
					"randwrite"};
	return n[rw];
}

static void report(const struct bench *b, uint64_t elapsed_ns)
{
	double secs = (double)elapsed_ns / 1e9;
	double iops = (double)b->done_ios / secs;
	double mibs = (double)b->done_bytes / secs / (1 << 20);
	uint64_t n = b->done_ios + b->errors;
	double p50 = 0, p90 = 0, p99 = 0, p999 = 0;

	if (n) {
		p50 = hist_percentile(b->hist, n, 50) / 1000;
		p90 = hist_percentile(b->hist, n, 90) / 1000;
		p99 = hist_percentile(b->hist, n, 99) / 1000;
		p999 = hist_percentile(b->hist, n, 99.9) / 1000;
	}
	printf("%s bs=%u iodepth=%u queues=%u: %" PRIu64 " I/Os in %.2f s\n",
	       rw_name(b->o.rw), b->o.bs, b->o.iodepth, b->nq, b->done_ios,
	       secs);
	printf("  IOPS %.0f, %.1f MiB/s\n", iops, mibs);
	printf("  latency (us): p50 %.1f, p90 %.1f, p99 %.1f, p99.9 %.1f\n",
	       p50, p90, p99, p999);
	if (b->o.verify)
		printf("  pattern %" PRIu64 ": %s, %" PRIu64 " mismatches\n",
		       b->o.pattern, is_write(b) ? "written" : "checked",
		       b->mismatches);
	printf("RESULT rw=%s bs=%u iodepth=%u queues=%u ios=%" PRIu64
	       " errors=%" PRIu64 " mismatches=%" PRIu64
	       " iops=%.0f mibs=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
	       "p999_us=%.1f\n",
	       rw_name(b->o.rw), b->o.bs, b->o.iodepth, b->nq, b->done_ios,
	       b->errors, b->mismatches, iops, mibs, p50, p90, p99, p999);
}

static void quiet_info(void *opaque, enum vdk_log_level level,
		       const char *module, const char *msg)
{
	(void)opaque;
	(void)level;
	fprintf(stderr, PROG ": %s: %s\n", module, msg);
}

int main(int argc, char **argv)
{
	static struct bench b; /* large histogram: not on the stack */
	uint64_t elapsed = 0;
	int ret;

	if (parse_opts(argc, argv, &b.o) < 0)
		return 1;
	vdk_log_set_sink(quiet_info, NULL, VDK_LOG_WARN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	b.rnd = 0x853c49e6748fea9bull ^ (uint64_t)getpid();
	b.memfd = -1;
	ret = ram_create(&b);
	if (ret < 0) {
		fprintf(stderr, PROG ": guest memory: %s\n", strerror(-ret));
		return 1;
	}
	ret = vdk_vhost_user_frontend_connect(b.o.socket_path, &b.fe);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: %s\n", b.o.socket_path,
			strerror(-ret));
		return 1;
	}
	ret = setup_device(&b);
	if (ret == 0) {
		uint64_t size = b.o.size && b.o.size < b.capacity ? b.o.size
								  : b.capacity;

		b.nblocks = size / b.o.bs;
		if (b.nblocks == 0) {
			fprintf(stderr,
				PROG ": the disk is smaller than --bs\n");
			ret = -EINVAL;
		}
	}
	if (ret == 0) {
		ret = run(&b, &elapsed);
		if (ret < 0)
			fprintf(stderr, PROG ": %s\n", strerror(-ret));
		else
			report(&b, elapsed);
	}
	/* Reset: GET_VRING_BASE stops every ring before we go. */
	if (b.d.fe) {
		(void)vdk_driver_reset(&b.d.transport);
		vdk_vhost_user_driver_fini(&b.d);
	}
	vdk_vhost_user_frontend_free(b.fe);
	for (uint16_t i = 0; i < VDK_VHOST_USER_DRIVER_MAX_QUEUES; i++) {
		free(b.q[i].slots);
		free(b.q[i].reqs);
		free(b.q[i].by_token);
	}
	munmap(b.ram, b.ram_size);
	close(b.memfd);
	return ret < 0 || b.errors || b.mismatches ? 1 : 0;
}
