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
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <vdk/devices/net.h>

#include "common.h"

#define PROG "vdk-vhost-user-net"

/* The program's options are the device's settings (<vdk/devices/net.h>):
 * --tap, --tap-fd, --loopback, --mac, ... The strings in @cfg are its
 * copies (vdk_net_config_fini() once the device exists). */
static struct vdk_net_config cfg;

static int set(const char *key, const char *value, char *msg, size_t len)
{
	return vdk_net_config_set(&cfg, key, value, msg, len);
}

static int check(void)
{
	char msg[VDK_CONFIG_MSG_LEN];

	if (cfg.backend_type == VDK_NET_BACKEND_NONE) {
		vdk_tool_msg("want one of --tap, --tap-fd, --loopback (see "
			     "--help)");
		return -EINVAL;
	}
	if (vdk_net_config_check(&cfg, msg, sizeof(msg)) < 0) {
		vdk_tool_msg("--%s", msg);
		return -EINVAL;
	}
	return 0;
}

static struct vdk_device *create(struct vdk_tool *t, int *err)
{
	struct vdk_net *net = vdk_net_new(&cfg, err); /* opens the backend */

	/* The device copied what it keeps (the interface's name); on the
	 * paths that never get here the process ends with the copy. */
	vdk_net_config_fini(&cfg);
	t->stats_opaque = net;
	return net ? vdk_net_device(net) : NULL;
}

int main(int argc, char **argv)
{
	static const struct vdk_tool_program prog = {
		.name = PROG,
		.synopsis = "(--tap=IFNAME | --tap-fd=N | --loopback) "
			    "[--mac=MAC] [--queue-pairs=N] [--mtu=N] "
			    "[--busy-poll=USEC]",
		.help = "Serve a virtio-net device to one vhost-user "
			"front-end, e.g. QEMU's\n-netdev vhost-user.\n\n"
			"The device's settings, as options (one of --tap, "
			"--tap-fd, --loopback):\n",
		.type = &vdk_tool_net_type,
		.set = set,
		.check = check,
		.create = create,
	};

	return vdk_tool_main(&prog, argc, argv);
}
