// SPDX-License-Identifier: Apache-2.0
/*
 * vdk-vhost-user-rng: a virtio-rng entropy device (virtio 1.2 §5.4) for a
 * vhost-user front-end such as QEMU's vhost-user-rng-pci. Random bytes come
 * from the host kernel (getrandom(2)).
 *
 *   vdk-vhost-user-rng --socket-path=/tmp/rng.sock
 *   qemu-system-x86_64 ... \
 *     -object memory-backend-memfd,id=mem,size=512M,share=on \
 *     -numa node,memdev=mem \
 *     -chardev socket,id=rng0,path=/tmp/rng.sock \
 *     -device vhost-user-rng-pci,chardev=rng0
 *
 * One front-end is served (--keep-listening: one after the other), then
 * the program exits: 0 when the front-end disconnects or on
 * SIGINT/SIGTERM/SIGHUP, 1 on an error. The program is its options and the
 * device; serving is the library's (vdk_tool_serve()). Requests are filled
 * synchronously on the loop's thread when the ring is kicked.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <vdk/devices/rng.h>
#include <vdk/vhost_user.h>

#include "common.h"

#define PROG "vdk-vhost-user-rng"

enum {
	OPT_MAX_BYTES = VDK_TOOL_OPT_FIRST_PRIVATE,
};

static const struct option long_options[] = {
	VDK_TOOL_LONG_OPTIONS,
	{"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
	{NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " (--socket-path=PATH | --fd=FDNUM) "
		"[--max-bytes=N] [-v]\n"
		"       " PROG " --print-capabilities\n"
		"\n"
		"Serve a virtio-rng device to one vhost-user front-end, e.g. "
		"QEMU's\nvhost-user-rng-pci.\n"
		"\n"
		"  --max-bytes=N          at most N random bytes per request "
		"(default: fill\n"
		"                         the whole buffer)\n"
		"%s",
		vdk_tool_common_help);
}

int main(int argc, char **argv)
{
	struct vdk_tool_opts o = {.fd = -1};
	struct vdk_rng_config cfg = {0};
	struct vdk_rng_stats st;
	struct vdk_rng *rng;
	struct vdk_tool t;
	int opt, ret;

	vdk_tool_log_init(PROG, 0); /* names the program in messages */
	while ((opt = getopt_long(argc, argv, "vh", long_options, NULL)) !=
	       -1) {
		ret = vdk_tool_parse_common(&o, opt, optarg);
		if (ret < 0)
			return 1;
		if (ret > 0)
			continue;
		switch (opt) {
		case OPT_MAX_BYTES:
			if (vdk_tool_parse_u32(optarg, 1, UINT32_MAX,
					       &cfg.max_bytes_per_request) <
			    0) {
				vdk_tool_msg("--max-bytes: want a positive "
					     "number");
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (o.print_capabilities) {
		/* vhost-user.json: "rng" has no feature list */
		printf("{\n  \"type\": \"rng\"\n}\n");
		return 0;
	}
	if (optind < argc) {
		vdk_tool_msg("unexpected argument '%s'", argv[optind]);
		return 1;
	}
	if (vdk_tool_check_common(&o) < 0)
		return 1;
	vdk_tool_log_init(PROG, o.verbosity);
	ret = vdk_tool_start(&t);
	if (ret == 0) {
		ret = vdk_rng_new(&rng, &cfg);
		if (ret < 0)
			vdk_tool_msg("cannot create the device: %s",
				     strerror(-ret));
	}
	if (ret == 0) {
		ret = vdk_tool_serve(&t, &o, vdk_rng_device(rng));
		st = vdk_rng_stats(rng);
		vdk_tool_msg("%llu requests, %llu random bytes",
			     (unsigned long long)st.requests,
			     (unsigned long long)st.bytes);
		vdk_rng_free(rng); /* before the loop it is attached to */
	}
	vdk_tool_end(&t);
	if (ret < 0)
		vdk_tool_msg("error: %s", strerror(-ret));
	return ret < 0 ? 1 : 0;
}
