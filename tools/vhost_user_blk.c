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
 * Front-ends are served one after the other (QEMU's reconnect, a VM
 * restart; --once: only one) until SIGINT/SIGTERM/SIGHUP: exit 0, 1 on an
 * error. Statistics: SIGUSR1, --stats-socket (tools/stats.h). Command line and
 * --print-capabilities follow the vhost-user spec's "Backend program
 * conventions" (features "read-only" and "blk-file").
 *
 * The program is its options and the device; serving is the library's
 * (vdk_tool_serve(): one loop, the vhost-user server). The device puts its
 * io_uring completion eventfds on that loop itself, so requests complete
 * on the same thread that pops them, without a thread per queue.
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
#include "options.h"

#define PROG "vdk-vhost-user-blk"

enum {
	OPT_DISK = VDK_TOOL_OPT_FIRST_PRIVATE,
	OPT_POLL_US,
};

/* Busy-poll before sleeping, microseconds (QEMU's iothread default is 32),
 * when reads and writes are synchronous. With io_uring the loop does not
 * poll by default: its io-wq workers need the CPU a spinning loop holds
 * (bench/README.md, "vhost-user-blk"). */
#define DEFAULT_POLL_US 32
#define POLL_US_UNSET	UINT32_MAX

/* The program's own options; the device's settings (<vdk/devices/blk.h>)
 * are options too: --blk-file, --read-only, --serial, --num-queues, ... */
static const struct option long_options[] = {
	{"disk", required_argument, NULL, OPT_DISK},
	{"poll-us", required_argument, NULL, OPT_POLL_US},
	{NULL, 0, NULL, 0},
};

/* The vhost-user spec's spellings ("Backend program conventions",
 * vhost-user-blk) of two settings. */
static const char *const renames[] = {
	"path", "blk-file", "readonly", "read-only", NULL,
};

static void usage(FILE *out)
{
	fprintf(out,
		"Serve a virtio-blk device backed by IMAGE (a file or a block "
		"device)\nto vhost-user front-ends, e.g. QEMU's "
		"vhost-user-blk-pci.\n"
		"\n"
		"  --disk=IMAGE[,SETTING]...\n"
		"                         the image and any of the settings "
		"below, e.g.\n"
		"                         --disk=disk.img,readonly,serial=d0 "
		"(readonly: ro,\n"
		"                         direct: cache=none); write a comma "
		"in IMAGE or a\n"
		"                         value as ',,'. aio=auto (the "
		"default) is sync on\n"
		"                         tmpfs and ramfs (no non-blocking "
		"reads there),\n"
		"                         io_uring elsewhere; Linux shows the "
		"serial in\n"
		"                         /sys/block/vdX/serial; give QEMU "
		"the same\n"
		"                         num-queues=N as here\n"
		"  --poll-us=N            busy-poll for N microseconds before "
		"sleeping,\n"
		"                         0..1000000 (default %u with "
		"synchronous reads\n"
		"                         and writes, 0 with "
		"io_uring)\n"
		"The device's settings, also as options:\n",
		DEFAULT_POLL_US);
}

/* The program's options (static: this is a program). The strings in @cfg
 * are its copies (vdk_blk_config_fini() at exit). */
static struct vdk_blk_config cfg;
static uint32_t poll_us = POLL_US_UNSET;

static int set(const char *key, const char *value, char *msg, size_t len)
{
	if (!strcmp(key, "path") && cfg.path) {
		vdk_tool_msg("give one of --disk and --blk-file (see --help)");
		msg[0] = '\0';
		return -EINVAL;
	}
	return vdk_blk_config_set(&cfg, key, value, msg, len);
}

static int parse(int opt, const char *arg)
{
	char msg[VDK_CONFIG_MSG_LEN];

	switch (opt) {
	case OPT_DISK:
		if (cfg.path) {
			vdk_tool_msg("give one of --disk and --blk-file (see "
				     "--help)");
			return -EINVAL;
		}
		if (vdk_blk_config_parse(&cfg, arg, msg, sizeof(msg)) < 0) {
			vdk_tool_msg("--disk: %s (see --help)", msg);
			return -EINVAL;
		}
		return 0;
	case OPT_POLL_US:
		return vdk_tool_parse_opt("poll-us", arg, 0, 1000000, false,
					  &poll_us);
	}
	return -EINVAL;
}

static int check(void)
{
	if (vdk_blk_config_check(&cfg, NULL, 0) < 0) {
		vdk_tool_msg("--disk (or --blk-file) is required (see --help)");
		return -EINVAL;
	}
	return 0;
}

static struct vdk_device *create(struct vdk_tool *t, int *err)
{
	struct vdk_blk_io_info io;
	struct vdk_blk *blk;

	/* queue_notify and completions both run on the loop's thread */
	cfg.single_thread = true;
	*err = 0;
	if (!(blk = vdk_blk_new(&cfg, NULL))) /* logs its own failure */
		return NULL;
	io = vdk_blk_io_info(blk);
	if (poll_us == POLL_US_UNSET)
		poll_us = io.mode == VDK_BLK_IO_SYNC ? DEFAULT_POLL_US : 0;
	vdk_loop_epoll_set_poll(t->loop, poll_us);
	/* The device's name in log lines and statistics: its serial, else
	 * the image's file name. */
	const char *slash = strrchr(cfg.path, '/');

	t->device_name = cfg.serial && *cfg.serial ? cfg.serial
			 : slash		   ? slash + 1
						   : cfg.path;
	t->stats_opaque = blk;
	vdk_tool_msg("%s: %llu sectors%s%s%s, %u queue(s), %s reads and "
		     "writes%s, poll %u us",
		     cfg.path, (unsigned long long)vdk_blk_capacity(blk),
		     cfg.read_only ? ", read-only" : "",
		     cfg.serial ? ", serial " : "",
		     cfg.serial ? cfg.serial : "",
		     cfg.num_queues ? cfg.num_queues : 1,
		     io.mode == VDK_BLK_IO_SYNC ? "synchronous" : "io_uring",
		     io.direct ? ", O_DIRECT" : "", poll_us);
	return vdk_blk_device(blk);
}

int main(int argc, char **argv)
{
	static const struct vdk_tool_program prog = {
		.name = PROG,
		.synopsis = "--disk=IMAGE[,readonly][,serial=ID][,direct]"
			    "[,aio=MODE]\n"
			    "       [--num-queues=N] [--queue-size=N] "
			    "[--poll-us=N]",
		.options = long_options,
		.usage = usage,
		.type = &vdk_tool_blk_type,
		.renames = renames,
		.set = set,
		.check = check,
		.parse = parse,
		.create = create,
	};
	int ret = vdk_tool_main(&prog, argc, argv);

	vdk_blk_config_fini(&cfg);
	return ret;
}
