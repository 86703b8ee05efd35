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
 * One front-end is served, then the program exits: 0 when the front-end
 * disconnects or on SIGINT/SIGTERM, 1 on an error. The device runs through
 * the library's device adapter; requests are filled synchronously on the
 * serving thread when the ring is kicked.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <vdk/devices/rng.h>
#include <vdk/vhost_user.h>

#include "common.h"
#include "log.h"
#include "options.h"
#include "stats.h"

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

static int print_capabilities(void)
{
	/* vhost-user.json: "rng" has no feature list */
	printf("{\n  \"type\": \"rng\"\n}\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct vdk_tool_opts o = {.fd = -1};
	struct vdk_tool_cli cli;
	struct vdk_rng_config cfg = {0};
	struct vdk_rng_stats rs;
	struct vdk_rng *rng;
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
	vdk_tool_log_open(PROG, o.log_target);
	vdk_tool_log_init(PROG, o.verbosity);
	vdk_tool_log_set_device("rng");
	sigfd = vdk_tool_signals();
	if (sigfd < 0) {
		vdk_tool_msg("signals: %s", strerror(-sigfd));
		return 1;
	}
	ret = vdk_rng_new(&rng, &cfg);
	if (ret < 0) {
		vdk_tool_msg("cannot create the device: %s", strerror(-ret));
		close(sigfd);
		return 1;
	}
	struct vdk_tool_stats st = {.fn = vdk_tool_stats_rng, .opaque = rng};
	struct vdk_tool_fd_handler handlers[2];

	vdk_tool_stats_init(&st.info, PROG, VDK_VERSION, "rng", "rng");
	if (vdk_tool_stats_start(&st, o.stats_socket) < 0) {
		vdk_rng_free(rng);
		close(sigfd);
		return 1;
	}
	ret = vdk_tool_accept(&o, sigfd, &conn);
	if (ret == 0) {
		ret = vdk_tool_serve_device(
			vdk_rng_device(rng), conn, sigfd, handlers,
			vdk_tool_stats_handlers(&st, handlers), 0);
		rs = vdk_rng_stats(rng);
		vdk_tool_msg("%llu requests, %llu random bytes",
			     (unsigned long long)rs.requests,
			     (unsigned long long)rs.bytes);
	} else if (ret == 1) {
		ret = 0; /* a signal before any front-end came */
	}
	if (ret < 0)
		vdk_tool_msg("error: %s", strerror(-ret));
	vdk_tool_stats_stop(&st);
	vdk_rng_free(rng);
	close(sigfd);
	return ret < 0 ? 1 : 0;
}
