/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_virtq: device-side split virtqueue throughput (virtio 1.2 §2.7).
 *
 * One process plays both sides over one 1 MiB guest memory region: a mock
 * driver makes a batch of chains available, the device pops each chain,
 * touches nothing and returns it with vdk_virtq_add_used(), asks
 * vdk_virtq_should_notify() once per batch, and the driver reclaims the used
 * entries. Two chain shapes:
 *   --shape 1  one device-writable descriptor (512 bytes), like virtio-rng;
 *   --shape 3  one readable (16 bytes) and two writable (512 + 1 bytes)
 *              descriptors, like a virtio-blk read request.
 *
 * Usage: bench_virtq [--iters N] [--shape 1|3] [--batch B]
 * Prints chains per second (including the mock driver's work).
 *
 * Instructions per chain in the library (the acceptance figure): count only
 * inside vdk_virtq_pop() and vdk_virtq_add_used(), and divide the total by
 * the number of chains (each batch of 64 also ends with one empty pop):
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out \
 *       --collect-atstart=no --toggle-collect=vdk_virtq_pop \
 *       --toggle-collect=vdk_virtq_add_used \
 *       bench_virtq --iters 100000 --shape 1
 *   grep summary: cg.out
 * (or run without the toggles and add the inclusive counts of the two
 * functions from callgrind_annotate --inclusive=yes). scripts/bench.sh does
 * this for both shapes; bench/README.md has the figures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "guest_ring.h"

#define RAM_SIZE (1u << 20)
#define QSIZE	 256
#define DATA_GPA 0x10000u

struct bench {
	struct vdk_mem *mem;
	uint8_t *ram;
	struct vdk_virtq q;
	struct guest_ring gr;
	uint16_t *avail_idx; /* driver's host view of avail->idx */
	uint16_t *avail_ring;
	uint16_t heads[QSIZE];
	unsigned nheads;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Write the descriptor table once: every chain of @shape descriptors at
 * its own heads, so that the loop only passes heads around. */
static int setup(struct bench *b, int shape)
{
	int err;

	b->ram = aligned_alloc(4096, RAM_SIZE);
	b->mem = vdk_mem_new(&err);
	if (b->ram == NULL || b->mem == NULL)
		return -ENOMEM;
	memset(b->ram, 0, RAM_SIZE);
	err = vdk_mem_add_host(b->mem, 0, RAM_SIZE, b->ram);
	if (err == 0)
		err = guest_ring_init(&b->gr, b->mem, QSIZE, 0);
	if (err != 0)
		return err;
	for (unsigned i = 0; i + shape <= QSIZE; i += shape) {
		uint64_t buf = DATA_GPA + 2048ull * i;

		if (shape == 1) {
			guest_ring_set_desc(&b->gr, i, buf, 512,
					    VRING_DESC_F_WRITE, 0);
		} else {
			guest_ring_set_desc(&b->gr, i, buf, 16,
					    VRING_DESC_F_NEXT, i + 1);
			guest_ring_set_desc(
				&b->gr, i + 1, buf + 512, 512,
				VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, i + 2);
			guest_ring_set_desc(&b->gr, i + 2, buf + 1536, 1,
					    VRING_DESC_F_WRITE, 0);
		}
		b->heads[b->nheads++] = (uint16_t)i;
	}
	b->avail_idx = vdk_mem_translate(b->mem, b->gr.avail_gpa + 2, 2);
	b->avail_ring =
		vdk_mem_translate(b->mem, b->gr.avail_gpa + 4, 2 * QSIZE);
	if (vdk_virtq_init(&b->q, QSIZE, 0) != 0 ||
	    vdk_virtq_set_addrs(&b->q, b->gr.desc_gpa, b->gr.avail_gpa,
				b->gr.used_gpa) != 0)
		return -EINVAL;
	vdk_virtq_set_ready(&b->q, true);
	return vdk_virtq_activate(&b->q, b->mem,
				  1ull << VIRTIO_RING_F_EVENT_IDX);
}

/* Run @iters chains in batches of @batch; return 0 or -EIO. */
static int run(struct bench *b, unsigned long iters, unsigned batch)
{
	struct iovec iov[4];
	struct vdk_virtq_chain chain = {.iov = iov, .iov_cap = 4};
	unsigned long done = 0;
	unsigned next_head = 0;

	while (done < iters) {
		unsigned n = batch;
		int r;

		if (n > iters - done)
			n = (unsigned)(iters - done);
		/* driver: make n chains available, publish once */
		for (unsigned k = 0; k < n; k++) {
			uint16_t slot = (uint16_t)(b->gr.avail_idx + k);

			b->avail_ring[slot % QSIZE] = b->heads[next_head];
			next_head = (next_head + 1) % b->nheads;
		}
		b->gr.avail_idx = (uint16_t)(b->gr.avail_idx + n);
		vdk_le16_store_release(b->avail_idx, b->gr.avail_idx);

		/* device: pop until empty, return each chain */
		while ((r = vdk_virtq_pop(&b->q, &chain)) == 1)
			vdk_virtq_add_used(&b->q, chain.head,
					   chain.writable_len);
		if (r < 0)
			return r;
		vdk_virtq_should_notify(&b->q);

		/* driver: reclaim */
		while (guest_ring_get_used(&b->gr, NULL, NULL) == 1)
			;
		done += n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long iters = 10000000;
	unsigned batch = 64;
	int shape = 1, r;
	struct bench b = {0};
	double t0, t;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
			iters = strtoul(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc)
			shape = atoi(argv[++i]);
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
			batch = (unsigned)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr,
				"usage: %s [--iters N] [--shape 1|3] [--batch "
				"B]\n",
				argv[0]);
			return 2;
		}
	}
	if ((shape != 1 && shape != 3) || batch == 0 || batch > QSIZE / 3) {
		fprintf(stderr, "bench_virtq: bad --shape or --batch\n");
		return 2;
	}
	r = setup(&b, shape);
	if (r != 0) {
		fprintf(stderr, "bench_virtq: setup failed: %s\n",
			strerror(-r));
		return 1;
	}
	t0 = now_s();
	r = run(&b, iters, batch);
	t = now_s() - t0;
	if (r != 0) {
		fprintf(stderr, "bench_virtq: queue stopped: %s\n",
			vdk_virtq_strerror(vdk_virtq_error(&b.q)));
		return 1;
	}
	printf("shape %d: %lu chains in %.3f s: %.0f chains/s (%.1f ns/chain, "
	       "incl. mock driver)\n",
	       shape, iters, t, t > 0 ? (double)iters / t : 0.0,
	       iters ? t * 1e9 / (double)iters : 0.0);
	vdk_mem_free(b.mem);
	free(b.ram);
	return 0;
}
