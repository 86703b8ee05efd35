// SPDX-License-Identifier: Apache-2.0
/*
 * vdk-vhost-user-blk: a virtio-blk device (virtio 1.2 §5.2) for a vhost-user
 * front-end such as QEMU's vhost-user-blk-pci, backed by an image file or a
 * host block device through vdk's io_uring virtio-blk.
 *
 *   vdk-vhost-user-blk --socket-path=/tmp/blk.sock --disk=disk.img,serial=d0
 *   qemu-system-x86_64 ... \
 *     -object memory-backend-memfd,id=mem,size=512M,share=on \
 *     -numa node,memdev=mem \
 *     -chardev socket,id=blk0,path=/tmp/blk.sock \
 *     -device vhost-user-blk-pci,chardev=blk0
 *
 * One front-end is served, then the program exits: 0 when the front-end
 * disconnects or on SIGINT/SIGTERM, 1 on an error. Command line and
 * --print-capabilities follow the vhost-user spec's "Backend program
 * conventions" (features "read-only" and "blk-file").
 *
 * The device is served through the library's device adapter
 * (vdk_vhost_user_backend_from_device()); the serving loop (common.c) also
 * watches each queue's io_uring completion eventfd and calls
 * vdk_blk_process_completions() when it fires, so requests complete on the
 * same thread that pops them, without a thread per queue.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vdk/devices/blk.h>
#include <vdk/vhost_user.h>

#include "common.h"
#include "log.h"
#include "options.h"
#include "stats.h"

#define PROG "vdk-vhost-user-blk"

enum {
	OPT_DISK = VDK_TOOL_OPT_FIRST_PRIVATE,
	OPT_BLK_FILE,
	OPT_READ_ONLY,
	OPT_SERIAL,
	OPT_NUM_QUEUES,
	OPT_QUEUE_SIZE,
	OPT_POLL_US,
};

/* Busy-poll before sleeping, microseconds (QEMU's iothread default is 32),
 * when reads and writes are synchronous. With io_uring the loop does not
 * poll by default: its io-wq workers need the CPU a spinning loop holds
 * (bench/README.md, "vhost-user-blk"). */
#define DEFAULT_POLL_US 32
#define POLL_US_UNSET	UINT32_MAX

static const struct option long_options[] = {
	VDK_TOOL_LONG_OPTIONS,
	{"disk", required_argument, NULL, OPT_DISK},
	{"blk-file", required_argument, NULL, OPT_BLK_FILE},
	{"read-only", no_argument, NULL, OPT_READ_ONLY},
	{"serial", required_argument, NULL, OPT_SERIAL},
	{"num-queues", required_argument, NULL, OPT_NUM_QUEUES},
	{"queue-size", required_argument, NULL, OPT_QUEUE_SIZE},
	{"poll-us", required_argument, NULL, OPT_POLL_US},
	{NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " (--socket-path=PATH | --fd=FDNUM) "
		"--disk=IMAGE[,readonly][,serial=ID][,direct][,aio=MODE]\n"
		"       [--num-queues=N] [--queue-size=N] [--poll-us=N] [-v]\n"
		"       " PROG " --print-capabilities\n"
		"\n"
		"Serve a virtio-blk device backed by IMAGE (a file or a block "
		"device)\nto one vhost-user front-end, e.g. QEMU's "
		"vhost-user-blk-pci.\n"
		"\n"
		"  --disk=IMAGE[,readonly][,serial=ID]\n"
		"                         the image; 'readonly' offers "
		"VIRTIO_BLK_F_RO and\n"
		"                         opens it read-only; 'serial' is the "
		"device ID\n"
		"                         (at most 20 bytes; Linux shows it "
		"in\n"
		"                         /sys/block/vdX/serial); write a "
		"comma "
		"in IMAGE\n"
		"                         or ID as ',,'\n"
		"                         'direct' (or 'cache=none') opens it "
		"O_DIRECT;\n"
		"                         'aio=auto|sync|io_uring': reads and "
		"writes with\n"
		"                         preadv/pwritev or io_uring; auto "
		"(default) is sync\n"
		"                         on tmpfs and ramfs (no non-blocking "
		"reads there),\n"
		"                         io_uring elsewhere\n"
		"  --blk-file=IMAGE       the image (vhost-user spec "
		"spelling)\n"
		"  --read-only            as ',readonly'\n"
		"  --serial=ID            as ',serial=ID'\n"
		"  --num-queues=N         request queues, 1..%u (default 1); "
		"give QEMU\n"
		"                         the same num-queues=N\n"
		"  --queue-size=N         largest queue size, a power of two "
		"4..%u\n"
		"                         (default %u)\n"
		"  --poll-us=N            busy-poll for N microseconds before "
		"sleeping,\n"
		"                         0..1000000 (default %u with "
		"synchronous reads\n"
		"                         and writes, 0 with io_uring)\n"
		"%s",
		VDK_BLK_MAX_QUEUES, VDK_BLK_MAX_QUEUE_SIZE,
		VDK_BLK_DEFAULT_QUEUE_SIZE, DEFAULT_POLL_US,
		vdk_tool_common_help);
}

/* Parse "IMAGE[,readonly][,serial=ID][,direct][,aio=MODE]" into @cfg
 * (pointing into @arg, which is modified); ",," is a comma inside IMAGE or
 * ID (QEMU's escape). */
static int parse_disk(char *arg, struct vdk_blk_config *cfg)
{
	char *cur = arg;
	char *tok = vdk_tool_subopt_next(&cur);

	if (!tok || !*tok) {
		vdk_tool_msg("--disk: no image path");
		return -EINVAL;
	}
	cfg->path = tok;
	while ((tok = vdk_tool_subopt_next(&cur))) {
		if (!strcmp(tok, "readonly") || !strcmp(tok, "ro"))
			cfg->read_only = true;
		else if (!strncmp(tok, "serial=", 7))
			cfg->serial = tok + 7;
		else if (!strcmp(tok, "direct") || !strcmp(tok, "cache=none"))
			cfg->direct = true;
		else if (!strcmp(tok, "aio=auto"))
			cfg->io_mode = VDK_BLK_IO_AUTO;
		else if (!strcmp(tok, "aio=sync") ||
			 !strcmp(tok, "aio=threads"))
			cfg->io_mode = VDK_BLK_IO_SYNC;
		else if (!strcmp(tok, "aio=io_uring") ||
			 !strcmp(tok, "aio=async"))
			cfg->io_mode = VDK_BLK_IO_ASYNC;
		else {
			vdk_tool_msg("--disk: unknown option '%s' (see --help)",
				     tok);
			return -EINVAL;
		}
	}
	return 0;
}

static void on_completion(void *opaque, uint16_t queue)
{
	(void)vdk_blk_process_completions(opaque, queue);
}

static void print_stats(struct vdk_blk *blk, const char *path)
{
	struct vdk_blk_stats s = vdk_blk_stats(blk);

	vdk_tool_msg(
		"%s: %llu reads (%llu bytes), %llu writes (%llu bytes), "
		"%llu flushes, %llu get-id, %llu discards, "
		"%llu write-zeroes, %llu errors, %llu unsupported",
		path, (unsigned long long)s.reads,
		(unsigned long long)s.bytes_read, (unsigned long long)s.writes,
		(unsigned long long)s.bytes_written,
		(unsigned long long)s.flushes, (unsigned long long)s.get_ids,
		(unsigned long long)s.discards,
		(unsigned long long)s.write_zeroes,
		(unsigned long long)s.io_errors,
		(unsigned long long)s.unsupported);
}

/* Serve @blk to the front-end on @conn (taken over), with the queues'
 * completion fds in the serving loop. */
static int serve(struct vdk_blk *blk, int conn, int sigfd, uint16_t nq,
		 uint32_t poll_us, struct vdk_tool_stats *st)
{
	struct vdk_tool_fd_handler handlers[VDK_BLK_MAX_QUEUES + 2];
	size_t n = nq;

	for (uint16_t i = 0; i < nq; i++)
		handlers[i] = (struct vdk_tool_fd_handler){
			.fd = vdk_blk_completion_fd(blk, i),
			.fn = on_completion,
			.opaque = blk,
			.index = i,
		};
	n += vdk_tool_stats_handlers(st, &handlers[nq]);
	return vdk_tool_serve_device(vdk_blk_device(blk), conn, sigfd, handlers,
				     n, poll_us);
}

static int print_capabilities(void)
{
	/* vhost-user.json VHostUserBackendCapabilitiesBlock */
	printf("{\n  \"type\": \"block\",\n"
	       "  \"features\": [\n    \"read-only\",\n"
	       "    \"blk-file\"\n  ]\n}\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct vdk_tool_opts o = {.fd = -1};
	struct vdk_tool_cli cli;
	struct vdk_blk_config cfg = {0};
	struct vdk_blk *blk;
	uint32_t v, poll_us = POLL_US_UNSET;
	int opt, ret, sigfd, conn = -1;

	/* The spec: --print-capabilities ignores every other option. */
	if (vdk_tool_cli_has(argc, argv, "print-capabilities"))
		return print_capabilities();
	vdk_tool_log_init(PROG, 0); /* names the program in messages */
	vdk_tool_cli_init(&cli, PROG, long_options);
	while ((opt = vdk_tool_cli_next(&cli, argc, argv,
					VDK_TOOL_SHORT_OPTIONS)) != -1) {
		ret = vdk_tool_parse_common(&o, opt, optarg);
		if (ret < 0)
			return 1;
		if (ret > 0)
			continue;
		switch (opt) {
		case OPT_DISK:
			if (cfg.path)
				return vdk_tool_cli_error(&cli, "give one of "
								"--disk and "
								"--blk-file"),
				       1;
			if (parse_disk(optarg, &cfg) < 0)
				return 1;
			break;
		case OPT_BLK_FILE:
			if (cfg.path)
				return vdk_tool_cli_error(&cli, "give one of "
								"--disk and "
								"--blk-file"),
				       1;
			cfg.path = optarg;
			break;
		case OPT_READ_ONLY:
			cfg.read_only = true;
			break;
		case OPT_SERIAL:
			cfg.serial = optarg;
			break;
		case OPT_NUM_QUEUES:
			if (vdk_tool_parse_u32(optarg, 1, VDK_BLK_MAX_QUEUES,
					       &v) < 0) {
				vdk_tool_msg("--num-queues: want 1..%u",
					     VDK_BLK_MAX_QUEUES);
				return 1;
			}
			cfg.num_queues = (uint16_t)v;
			break;
		case OPT_QUEUE_SIZE:
			if (vdk_tool_parse_u32(optarg, 4,
					       VDK_BLK_MAX_QUEUE_SIZE,
					       &v) < 0 ||
			    (v & (v - 1))) {
				vdk_tool_msg("--queue-size: want a power of "
					     "two 4..%u",
					     VDK_BLK_MAX_QUEUE_SIZE);
				return 1;
			}
			cfg.queue_size = (uint16_t)v;
			break;
		case OPT_POLL_US:
			if (vdk_tool_parse_u32(optarg, 0, 1000000, &poll_us) <
			    0) {
				vdk_tool_msg("--poll-us: want 0..1000000");
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			vdk_tool_cli_version(&cli, VDK_VERSION);
			return 0;
		default:
			return 1; /* reported by vdk_tool_cli_next() */
		}
	}
	if (o.print_capabilities) /* abbreviated: --print-cap */
		return print_capabilities();
	if (optind < argc) {
		vdk_tool_cli_error(&cli, "unexpected argument '%s'",
				   argv[optind]);
		return 1;
	}
	if (vdk_tool_check_common(&o) < 0)
		return 1;
	if (!cfg.path) {
		vdk_tool_msg("--disk (or --blk-file) is required");
		return 1;
	}
	vdk_tool_log_open(PROG, o.log_target);
	vdk_tool_log_init(PROG, o.verbosity);
	sigfd = vdk_tool_signals();
	if (sigfd < 0) {
		vdk_tool_msg("signals: %s", strerror(-sigfd));
		return 1;
	}
	/* queue_notify and completions both run on the serving loop */
	cfg.single_thread = true;
	ret = vdk_blk_new(&blk, &cfg); /* logs its own failure */
	if (ret < 0)
		return 1;
	/* The device's name in log lines and statistics: its serial, else
	 * the image's file name. */
	const char *slash = strrchr(cfg.path, '/');
	const char *name = cfg.serial && *cfg.serial ? cfg.serial
			   : slash		     ? slash + 1
						     : cfg.path;
	struct vdk_tool_stats st = {.fn = vdk_tool_stats_blk, .opaque = blk};

	vdk_tool_log_set_device(name);
	vdk_tool_stats_init(&st.info, PROG, VDK_VERSION, name, "block");
	if (vdk_tool_stats_start(&st, o.stats_socket) < 0) {
		vdk_blk_free(blk);
		close(sigfd);
		return 1;
	}
	struct vdk_blk_io_info io = vdk_blk_io_info(blk);
	if (poll_us == POLL_US_UNSET)
		poll_us = io.mode == VDK_BLK_IO_SYNC ? DEFAULT_POLL_US : 0;
	vdk_tool_msg("%s: %llu sectors%s%s%s, %u queue(s), %s reads and "
		     "writes%s, poll %u us",
		     cfg.path, (unsigned long long)vdk_blk_capacity(blk),
		     cfg.read_only ? ", read-only" : "",
		     cfg.serial ? ", serial " : "",
		     cfg.serial ? cfg.serial : "",
		     cfg.num_queues ? cfg.num_queues : 1,
		     io.mode == VDK_BLK_IO_SYNC ? "synchronous" : "io_uring",
		     io.direct ? ", O_DIRECT" : "", poll_us);
	ret = vdk_tool_accept(&o, sigfd, &conn);
	if (ret == 0) {
		ret = serve(blk, conn, sigfd,
			    cfg.num_queues ? cfg.num_queues : 1, poll_us, &st);
		print_stats(blk, cfg.path);
	} else if (ret == 1) {
		ret = 0; /* a signal before any front-end came */
	}
	if (ret < 0)
		vdk_tool_msg("error: %s", strerror(-ret));
	vdk_tool_stats_stop(&st);
	vdk_blk_free(blk);
	close(sigfd);
	return ret < 0 ? 1 : 0;
}
