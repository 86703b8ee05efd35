/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_bus: cost of one MMIO dispatch through vdk_bus_write().
 *
 * Registers D devices (ranges of 0x200 bytes, one every 0x1000, like
 * virtio-mmio slots), precomputes a fixed table of random registered
 * addresses, then dispatches N 4-byte writes, cycling through the table.
 * The table has the same size whatever N is, so setup costs the same for
 * every N.
 *
 *   bench_bus                          1, 64 and 1024 devices, 10M writes
 *   bench_bus --devices 64 --iters N   one configuration
 *
 * Instructions per dispatch with callgrind: run once with --iters N and once
 * with --iters 0, and divide the difference of the totals by N:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
 *       ./bench_bus --devices 64 --iters 100000
 *
 * The figure includes the loop around the call (about 5 instructions) and
 * the device callback (a counter increment).
 */
#include <vdk/bus.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MMIO_BASE     0xd0000000ull
#define SLOT_STRIDE   0x1000ull
#define SLOT_SIZE     0x200ull
#define N_ADDRS	      4096 /* power of two */
#define DEFAULT_ITERS 10000000ull

struct bench_dev {
	uint64_t writes;
};

static void bench_write(void *opaque, uint64_t base, uint64_t offset,
			const void *data, size_t len)
{
	struct bench_dev *d = opaque;

	(void)base;
	(void)offset;
	(void)data;
	(void)len;
	d->writes++;
}

static const struct vdk_bus_device_ops bench_ops = {
	.write = bench_write,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64: reproducible addresses without libc's rand() state. */
static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* The measured loop: nothing in it but the dispatch. */
static __attribute__((noinline)) int
run_writes(struct vdk_bus *bus, const uint64_t *addrs, uint64_t iters)
{
	uint32_t val = 0x12345678;
	int fail = 0;

	for (uint64_t i = 0; i < iters; i++)
		fail |= vdk_bus_write(bus, addrs[i & (N_ADDRS - 1)], &val, 4);
	return fail;
}

static int bench(size_t ndev, uint64_t iters)
{
	static uint64_t addrs[N_ADDRS];
	struct bench_dev *devs;
	struct vdk_bus *bus;
	uint64_t seed = 0x9e3779b97f4a7c15ull, t0, t1, t2, total = 0;
	int err, fail;

	t0 = now_ns();
	bus = vdk_bus_new(VDK_BUS_MMIO, &err);
	devs = calloc(ndev, sizeof(*devs));
	if (!bus || !devs) {
		fprintf(stderr, "bench_bus: out of memory\n");
		vdk_bus_free(bus);
		free(devs);
		return 1;
	}
	for (size_t i = 0; i < ndev; i++) {
		struct vdk_bus_range r = {MMIO_BASE + SLOT_STRIDE * i,
					  SLOT_SIZE};

		err = vdk_bus_register(
			bus, r, (struct vdk_bus_device){&bench_ops, &devs[i]});
		if (err) {
			fprintf(stderr, "bench_bus: register: %s\n",
				strerror(-err));
			goto out;
		}
	}
	for (size_t i = 0; i < N_ADDRS; i++) {
		uint64_t r = xorshift64(&seed);
		uint64_t slot = (r >> 32) % ndev;
		uint64_t off = (r & (SLOT_SIZE - 1)) & ~3ull;

		addrs[i] = MMIO_BASE + SLOT_STRIDE * slot + off;
	}

	t1 = now_ns();
	fail = run_writes(bus, addrs, iters);
	t2 = now_ns();

	for (size_t i = 0; i < ndev; i++)
		total += devs[i].writes;
	if (fail || total != iters) {
		fprintf(stderr,
			"bench_bus: %" PRIu64 " of %" PRIu64
			" writes reached a device\n",
			total, iters);
		err = -EIO;
		goto out;
	}
	printf("devices %5zu: setup %8.1f us, %10" PRIu64
	       " dispatches in %9.3f ms: %7.2f ns/dispatch, %6.2f M/s\n",
	       ndev, (double)(t1 - t0) / 1e3, iters, (double)(t2 - t1) / 1e6,
	       iters ? (double)(t2 - t1) / (double)iters : 0.0,
	       t2 > t1 ? (double)iters * 1e3 / (double)(t2 - t1) : 0.0);
out:
	vdk_bus_free(bus);
	free(devs);
	return err ? 1 : 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return (errno || end == s || *end) ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	uint64_t iters = DEFAULT_ITERS, ndev = 0;
	static const size_t sweep[] = {1, 64, 1024};
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--iters")) {
			if (parse_u64(argv[++i], &iters))
				goto usage;
		} else if (i + 1 < argc && !strcmp(argv[i], "--devices")) {
			if (parse_u64(argv[++i], &ndev) || ndev == 0 ||
			    ndev > 1000000)
				goto usage;
		} else {
			goto usage;
		}
	}

	if (ndev)
		return bench((size_t)ndev, iters);
	for (size_t i = 0; i < sizeof(sweep) / sizeof(sweep[0]); i++)
		ret |= bench(sweep[i], iters);
	return ret;

usage:
	fprintf(stderr, "usage: %s [--devices N] [--iters N]\n", argv[0]);
	return 2;
}
