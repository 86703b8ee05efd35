// SPDX-License-Identifier: Apache-2.0
/*
 * vdk-vhost-user-net: a virtio-net device (virtio 1.2 §5.1) for a
 * vhost-user front-end such as QEMU's -netdev vhost-user, on a tap
 * interface (by name, or an inherited fd as QEMU's -netdev tap,fd=) or on
 * a loopback that sends every packet back to the guest (tests, benchmarks).
 *
 *   ip tuntap add dev tap0 mode tap multi_queue
 *   vdk-vhost-user-net --socket-path=/tmp/net.sock --tap=tap0 --queue-pairs=2
 *   qemu-system-x86_64 ... \
 *     -object memory-backend-memfd,id=mem,size=512M,share=on \
 *     -numa node,memdev=mem \
 *     -chardev socket,id=c0,path=/tmp/net.sock \
 *     -netdev vhost-user,id=n0,chardev=c0,queues=2 \
 *     -device virtio-net-pci,netdev=n0,mq=on
 *
 * One front-end is served, then the program exits: 0 when the front-end
 * disconnects or on SIGINT/SIGTERM, 1 on an error. The tap fds are watched
 * by the serving loop; the link follows the tap interface's IFF_UP
 * (checked every 200 ms) and the guest sees it in the status field.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <vdk/devices/net.h>
#include <vdk/vhost_user.h>

#include "common.h"

#define PROG "vdk-vhost-user-net"

enum {
	OPT_TAP = VDK_TOOL_OPT_FIRST_PRIVATE,
	OPT_TAP_FD,
	OPT_LOOPBACK,
	OPT_MAC,
	OPT_QUEUE_PAIRS,
	OPT_MTU,
};

static const struct option long_options[] = {
	VDK_TOOL_LONG_OPTIONS,
	{"tap", required_argument, NULL, OPT_TAP},
	{"tap-fd", required_argument, NULL, OPT_TAP_FD},
	{"loopback", no_argument, NULL, OPT_LOOPBACK},
	{"mac", required_argument, NULL, OPT_MAC},
	{"queue-pairs", required_argument, NULL, OPT_QUEUE_PAIRS},
	{"mtu", required_argument, NULL, OPT_MTU},
	{NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " (--socket-path=PATH | --fd=FDNUM)\n"
		"         (--tap=IFNAME | --tap-fd=N | --loopback)\n"
		"         [--mac=MAC] [--queue-pairs=N] [--mtu=N] [-v]\n"
		"       " PROG " --print-capabilities\n"
		"\n"
		"Serve a virtio-net device to one vhost-user front-end, e.g. "
		"QEMU's\n-netdev vhost-user.\n"
		"\n"
		"  --tap=IFNAME           an existing tap interface "
		"(multi_queue "
		"for N > 1)\n"
		"  --tap-fd=N             an open tap fd with IFF_VNET_HDR "
		"(1 pair)\n"
		"  --loopback             send every packet back to the guest\n"
		"  --mac=MAC              the device's MAC address "
		"(default 52:54:00:12:34:56)\n"
		"  --queue-pairs=N        receive/transmit queue pairs, 1..%u "
		"(default 1)\n"
		"  --mtu=N                MTU advice, 68..65535 (default: "
		"none)\n"
		"%s",
		VDK_NET_MAX_QUEUE_PAIRS, vdk_tool_common_help);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	/* A device address is unicast (§5.1.4: the driver uses it as is). */
	return mac[0] & 1 ? -EINVAL : 0;
}

struct net_prog {
	struct vdk_net *net;
	int timer;
};

static void on_tap(void *opaque, uint16_t index)
{
	(void)index;
	vdk_net_poll(((struct net_prog *)opaque)->net);
}

static void on_timer(void *opaque, uint16_t index)
{
	struct net_prog *p = opaque;
	uint64_t n;

	(void)index;
	if (read(p->timer, &n, sizeof(n)) == (ssize_t)sizeof(n))
		vdk_net_check_link(p->net);
}

int main(int argc, char **argv)
{
	struct vdk_tool_opts o = {.fd = -1};
	struct vdk_net_config cfg = {0};
	struct vdk_net_tap_config tap = {.fd = -1};
	struct vdk_tool_fd_handler extra[VDK_NET_MAX_QUEUE_PAIRS + 1];
	struct net_prog prog = {.timer = -1};
	struct vdk_net_backend *be = NULL;
	bool loopback = false;
	uint32_t v;
	size_t nextra = 0;
	int opt, ret, sigfd, conn = -1, err = 0;

	vdk_tool_log_init(PROG, 0);
	while ((opt = getopt_long(argc, argv, "vh", long_options, NULL)) !=
	       -1) {
		ret = vdk_tool_parse_common(&o, opt, optarg);
		if (ret < 0)
			return 1;
		if (ret > 0)
			continue;
		switch (opt) {
		case OPT_TAP:
			tap.ifname = optarg;
			break;
		case OPT_TAP_FD:
			if (vdk_tool_parse_u32(optarg, 0, INT32_MAX, &v) < 0) {
				vdk_tool_msg("--tap-fd: want an fd number");
				return 1;
			}
			tap.fd = (int)v;
			break;
		case OPT_LOOPBACK:
			loopback = true;
			break;
		case OPT_MAC:
			if (parse_mac(optarg, cfg.mac) < 0) {
				vdk_tool_msg("--mac: want a unicast address "
					     "like 52:54:00:12:34:56");
				return 1;
			}
			break;
		case OPT_QUEUE_PAIRS:
			if (vdk_tool_parse_u32(optarg, 1,
					       VDK_NET_MAX_QUEUE_PAIRS,
					       &v) < 0) {
				vdk_tool_msg("--queue-pairs: want 1..%u",
					     VDK_NET_MAX_QUEUE_PAIRS);
				return 1;
			}
			cfg.max_queue_pairs = (uint16_t)v;
			break;
		case OPT_MTU:
			if (vdk_tool_parse_u32(optarg, 68, 65535, &v) < 0) {
				vdk_tool_msg("--mtu: want 68..65535");
				return 1;
			}
			cfg.mtu = (uint16_t)v;
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
		/* vhost-user.json: "net" has no feature list */
		printf("{\n  \"type\": \"net\"\n}\n");
		return 0;
	}
	if (optind < argc) {
		vdk_tool_msg("unexpected argument '%s'", argv[optind]);
		return 1;
	}
	if ((tap.ifname != NULL) + (tap.fd >= 0) + loopback != 1) {
		vdk_tool_msg("want exactly one of --tap, --tap-fd, --loopback");
		return 1;
	}
	if (tap.fd >= 0 && cfg.max_queue_pairs > 1) {
		vdk_tool_msg("--tap-fd carries one queue pair");
		return 1;
	}
	if (vdk_tool_check_common(&o) < 0)
		return 1;
	vdk_tool_log_init(PROG, o.verbosity);
	sigfd = vdk_tool_signals();
	if (sigfd < 0) {
		vdk_tool_msg("signals: %s", strerror(-sigfd));
		return 1;
	}
	tap.pairs = cfg.max_queue_pairs ? cfg.max_queue_pairs : 1;
	be = loopback ? vdk_net_loopback_new(tap.pairs, 0, &err)
		      : vdk_net_tap_new(&tap, &err);
	if (!be) {
		vdk_tool_msg("cannot open the backend: %s", strerror(-err));
		close(sigfd);
		return 1;
	}
	cfg.backend = be;
	prog.net = vdk_net_new(&cfg, &err);
	if (!prog.net) {
		vdk_tool_msg("cannot create the device: %s", strerror(-err));
		vdk_net_backend_free(be);
		close(sigfd);
		return 1;
	}
	for (uint16_t p = 0; be->ops->fd && p < tap.pairs; p++)
		extra[nextra++] = (struct vdk_tool_fd_handler){
			be->ops->fd(be->impl, p), on_tap, &prog, p};
	if (!loopback) {
		struct itimerspec its = {{0, 200000000}, {0, 200000000}};

		prog.timer = timerfd_create(CLOCK_MONOTONIC,
					    TFD_CLOEXEC | TFD_NONBLOCK);
		if (prog.timer >= 0 &&
		    timerfd_settime(prog.timer, 0, &its, NULL) == 0)
			extra[nextra++] = (struct vdk_tool_fd_handler){
				prog.timer, on_timer, &prog, 0};
	}
	ret = vdk_tool_accept(&o, sigfd, &conn);
	if (ret == 0) {
		struct vdk_net_stats st;

		ret = vdk_tool_serve_device(vdk_net_device(prog.net), conn,
					    sigfd, extra, nextra, 0);
		st = vdk_net_stats(prog.net);
		vdk_tool_msg("tx %llu packets %llu bytes (%llu dropped), "
			     "rx %llu packets %llu bytes (%llu dropped)",
			     (unsigned long long)st.tx_packets,
			     (unsigned long long)st.tx_bytes,
			     (unsigned long long)(st.tx_dropped_header +
						  st.tx_dropped_backend),
			     (unsigned long long)st.rx_packets,
			     (unsigned long long)st.rx_bytes,
			     (unsigned long long)(st.rx_dropped_header +
						  st.rx_dropped_no_room +
						  st.rx_filtered));
	} else if (ret == 1) {
		ret = 0;
	}
	if (ret < 0)
		vdk_tool_msg("error: %s", strerror(-ret));
	vdk_net_free(prog.net);
	vdk_net_backend_free(be);
	if (prog.timer >= 0)
		close(prog.timer);
	close(sigfd);
	return ret < 0 ? 1 : 0;
}
