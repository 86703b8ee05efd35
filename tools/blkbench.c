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
 *
 * This file holds the command line, the report and main(); the engine
 * (guest memory, device set-up, requests, histogram) is blkbench_io.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vdk/driver.h>
#include <vdk/log.h>
#include <vdk/vhost_user_frontend.h>

#include "blkbench.h"
#include "options.h"

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
		"  -V, --version      print the version and exit\n"
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
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct vdk_tool_cli cli;
	uint64_t v;
	int c;

	*o = (struct opts){.rw = RW_RANDREAD,
			   .bs = 4096,
			   .iodepth = 1,
			   .num_queues = 1,
			   .queue_size = 256,
			   .runtime = 10};
	vdk_tool_cli_init(&cli, PROG, lo);
	while ((c = vdk_tool_cli_next(&cli, argc, argv, "hV")) != -1) {
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
		case 'V':
			vdk_tool_cli_version(&cli, VDK_VERSION);
			exit(0);
		default:
			return -1; /* reported by vdk_tool_cli_next() */
		}
	}
	if (optind < argc)
		return vdk_tool_cli_error(&cli, "unexpected argument '%s'",
					  argv[optind]);
	if (!o->socket_path)
		return vdk_tool_cli_error(&cli, "--socket-path is required");
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
		p50 = blkbench_hist_percentile(b->hist, n, 50) / 1000;
		p90 = blkbench_hist_percentile(b->hist, n, 90) / 1000;
		p99 = blkbench_hist_percentile(b->hist, n, 99) / 1000;
		p999 = blkbench_hist_percentile(b->hist, n, 99.9) / 1000;
	}
	printf("%s bs=%u iodepth=%u queues=%u: %" PRIu64 " I/Os in %.2f s\n",
	       rw_name(b->o.rw), b->o.bs, b->o.iodepth, b->nq, b->done_ios,
	       secs);
	printf("  IOPS %.0f, %.1f MiB/s\n", iops, mibs);
	printf("  latency (us): p50 %.1f, p90 %.1f, p99 %.1f, p99.9 %.1f\n",
	       p50, p90, p99, p999);
	if (b->o.verify)
		printf("  pattern %" PRIu64 ": %s, %" PRIu64 " mismatches\n",
		       b->o.pattern,
		       blkbench_is_write(b) ? "written" : "checked",
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
	signal(SIGINT, blkbench_on_signal);
	signal(SIGTERM, blkbench_on_signal);
	b.rnd = 0x853c49e6748fea9bull ^ (uint64_t)getpid();
	b.memfd = -1;
	ret = blkbench_ram_create(&b);
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
	ret = blkbench_setup_device(&b);
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
		ret = blkbench_run(&b, &elapsed);
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
