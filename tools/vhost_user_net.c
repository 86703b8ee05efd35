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
 * The device registers the tap fds and its link timer on the program's
 * loop itself (attach_loop); the link follows the tap interface's IFF_UP.
 * Lifecycle, exit status and signals: tools/common.h (vdk_tool_main()).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <vdk/devices/net.h>

#include "common.h"

#define PROG "vdk-vhost-user-net"

enum {
	OPT_TAP = VDK_TOOL_OPT_FIRST_PRIVATE,
	OPT_TAP_FD,
	OPT_LOOPBACK,
	OPT_MAC,
	OPT_QUEUE_PAIRS,
	OPT_MTU,
	OPT_BUSY_POLL,
};

static const struct option long_options[] = {
	{"tap", required_argument, NULL, OPT_TAP},
	{"tap-fd", required_argument, NULL, OPT_TAP_FD},
	{"loopback", no_argument, NULL, OPT_LOOPBACK},
	{"mac", required_argument, NULL, OPT_MAC},
	{"queue-pairs", required_argument, NULL, OPT_QUEUE_PAIRS},
	{"mtu", required_argument, NULL, OPT_MTU},
	{"busy-poll", required_argument, NULL, OPT_BUSY_POLL},
	{NULL, 0, NULL, 0},
};

static struct vdk_net_config cfg;
static struct vdk_net_tap_config tap = {.fd = -1};
static bool loopback;
static struct vdk_net *net;

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
	/* A device's address is unicast (§5.1.4). */
	return mac[0] & 1 ? -EINVAL : 0;
}

static int parse(int opt, const char *arg)
{
	uint32_t v;

	switch (opt) {
	case OPT_TAP:
		tap.ifname = arg;
		return 0;
	case OPT_TAP_FD:
		if (vdk_tool_parse_opt("tap-fd", arg, 0, INT32_MAX, false, &v))
			return -EINVAL;
		tap.fd = (int)v;
		return 0;
	case OPT_LOOPBACK:
		loopback = true;
		return 0;
	case OPT_MAC:
		if (parse_mac(arg, cfg.mac) < 0) {
			vdk_tool_msg("--mac: want a unicast address like "
				     "52:54:00:12:34:56");
			return -EINVAL;
		}
		return 0;
	case OPT_QUEUE_PAIRS:
		if (vdk_tool_parse_opt("queue-pairs", arg, 1,
				       VDK_NET_MAX_QUEUE_PAIRS, false, &v))
			return -EINVAL;
		cfg.max_queue_pairs = (uint16_t)v;
		return 0;
	case OPT_MTU:
		if (vdk_tool_parse_opt("mtu", arg, 68, 65535, false, &v))
			return -EINVAL;
		cfg.mtu = (uint16_t)v;
		return 0;
	case OPT_BUSY_POLL:
		if (vdk_tool_parse_opt("busy-poll", arg, 0, 1000, false, &v))
			return -EINVAL;
		cfg.busy_poll_us = (uint32_t)v;
		return 0;
	default:
		return -EINVAL;
	}
}

static struct vdk_device *create(struct vdk_tool *t)
{
	struct vdk_net_backend *be;
	int err = 0;

	(void)t;
	if ((tap.ifname != NULL) + (tap.fd >= 0) + loopback != 1) {
		vdk_tool_msg("want exactly one of --tap, --tap-fd, --loopback");
		return NULL;
	}
	if (tap.fd >= 0 && cfg.max_queue_pairs > 1) {
		vdk_tool_msg("--tap-fd carries one queue pair");
		return NULL;
	}
	tap.pairs = cfg.max_queue_pairs ? cfg.max_queue_pairs : 1;
	be = loopback ? vdk_net_loopback_new(tap.pairs, 0, &err)
		      : vdk_net_tap_new(&tap, &err);
	if (!be) {
		vdk_tool_msg("cannot open the backend: %s", strerror(-err));
		return NULL;
	}
	cfg.backend = be;
	cfg.own_backend = true;
	net = vdk_net_new(&cfg, &err);
	if (!net) {
		vdk_tool_msg("cannot create the device: %s", strerror(-err));
		return NULL;
	}
	return vdk_net_device(net);
}

static void finish(struct vdk_device *dev, bool served)
{
	struct vdk_net_stats st = vdk_net_stats(net);

	(void)dev;
	if (!served)
		goto out;
	vdk_tool_msg("tx %llu packets %llu bytes (%llu dropped), rx %llu "
		     "packets %llu bytes (%llu dropped)",
		     (unsigned long long)st.tx_packets,
		     (unsigned long long)st.tx_bytes,
		     (unsigned long long)(st.tx_dropped_header +
					  st.tx_dropped_backend),
		     (unsigned long long)st.rx_packets,
		     (unsigned long long)st.rx_bytes,
		     (unsigned long long)(st.rx_dropped_header +
					  st.rx_dropped_no_room +
					  st.rx_filtered));
	/* Per queue pair: which pairs the guest really used. */
	for (uint16_t p = 0;; p++) {
		uint64_t tx, rx;

		if (vdk_net_pair_stats(net, p, &tx, &rx) < 0)
			break;
		vdk_tool_msg("queue pair %u: tx %llu packets, rx %llu packets",
			     p, (unsigned long long)tx, (unsigned long long)rx);
	}
out:
	vdk_net_free(net);
}

int main(int argc, char **argv)
{
	static const struct vdk_tool_program prog = {
		.name = PROG,
		.synopsis = "(--tap=IFNAME | --tap-fd=N | --loopback) "
			    "[--mac=MAC] [--queue-pairs=N] [--mtu=N] "
			    "[--busy-poll=USEC]",
		.options = long_options,
		.help = "Serve a virtio-net device to one vhost-user "
			"front-end, "
			"e.g. QEMU's\n-netdev vhost-user.\n\n"
			"  --tap=IFNAME           an existing tap interface "
			"(multi_queue for N > 1)\n"
			"  --tap-fd=N             an open tap fd with "
			"IFF_VNET_HDR (one pair)\n"
			"  --loopback             send every packet back to "
			"the guest\n"
			"  --mac=MAC              the device's address "
			"(default 52:54:00:12:34:56)\n"
			"  --queue-pairs=N        receive/transmit queue "
			"pairs, "
			"1..31 (default 1)\n"
			"  --mtu=N                MTU advice, 68..65535 "
			"(default: none)\n"
			"  --busy-poll=USEC       look at an emptied transmit "
			"queue this long\n"
			"                         before sleeping, 0..1000 "
			"(default 0: off)\n",
		.type = "net",
		.parse = parse,
		.create = create,
		.finish = finish,
	};

	return vdk_tool_main(&prog, argc, argv);
}
