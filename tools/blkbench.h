/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-blkbench's pieces, shared by blkbench.c (command line, report, main)
 * and blkbench_io.c (the engine: guest memory, device set-up over
 * vhost-user, virtio-blk requests, the latency histogram and the data
 * pattern). One program's private header: nothing here is library API.
 */
#ifndef VDK_TOOLS_BLKBENCH_H
#define VDK_TOOLS_BLKBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_blk.h>

#include <vdk/driver.h>
#include <vdk/vhost_user_frontend.h>

#define PROG	     "vdk-blkbench"
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

/**
 * blkbench_ram_create() - create the guest memory (a memfd shared with the
 * back-end, sized for b->o) and map it at b->ram.
 * Return: 0 or -errno of memfd_create, ftruncate or mmap.
 */
int blkbench_ram_create(struct bench *b);

/**
 * blkbench_setup_device() - connect the vhost-user driver transport to
 * b->fe, negotiate features, read the virtio-blk configuration (capacity in
 * bytes into b->capacity), set up b->o.num_queues queues and set DRIVER_OK
 * (virtio 1.2 §3.1.1, §5.2.5). Prints why it failed.
 * Return: 0 or -errno (-EINVAL when the device cannot serve the options,
 * -EROFS for writes to a read-only device).
 */
int blkbench_setup_device(struct bench *b);

/**
 * blkbench_run() - keep b->o.iodepth requests in flight on every queue
 * until b->o.runtime seconds pass, b->o.total bytes were submitted or a
 * signal arrives (blkbench_on_signal), then wait for what is in flight.
 * Completions go to b->hist, b->done_ios, b->errors and b->mismatches.
 * @elapsed_ns: the run's wall time in ns.
 * Return: 0 or -errno (-ETIMEDOUT if requests never complete).
 */
int blkbench_run(struct bench *b, uint64_t *elapsed_ns);

/** blkbench_on_signal() - SIGINT/SIGTERM handler: ends blkbench_run(). */
void blkbench_on_signal(int sig);

/** blkbench_is_write() - does the workload write? */
bool blkbench_is_write(const struct bench *b);

/**
 * blkbench_hist_percentile() - the @p th percentile (0..100) of the @n
 * latencies counted in @hist (HIST_BUCKETS buckets), in ns.
 */
double blkbench_hist_percentile(const uint64_t *hist, uint64_t n, double p);

#endif /* VDK_TOOLS_BLKBENCH_H */
