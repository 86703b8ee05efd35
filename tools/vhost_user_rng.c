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
 * Front-ends are served one after the other (--once: only one) until
 * SIGINT/SIGTERM/SIGHUP: exit 0, 1 on an error. The program is its options and the
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

/* The program's options are the device's settings (<vdk/devices/rng.h>):
 * --max-bytes, --queue-size. */
static struct vdk_rng_config cfg;

static int set(const char *key, const char *value, char *msg, size_t len)
{
	return vdk_rng_config_set(&cfg, key, value, msg, len);
}

static struct vdk_device *create(struct vdk_tool *t, int *err)
{
	struct vdk_rng *rng = vdk_rng_new(&cfg, err);

	t->stats_opaque = rng;
	return rng ? vdk_rng_device(rng) : NULL;
}

int main(int argc, char **argv)
{
	static const struct vdk_tool_program prog = {
		.name = PROG,
		.synopsis = "[--max-bytes=N] [--queue-size=N]",
		.help = "Serve a virtio-rng device to vhost-user "
			"front-ends, e.g. QEMU's\nvhost-user-rng-pci.\n\n"
			"The device's settings, as options:\n",
		.type = &vdk_tool_rng_type,
		.set = set,
		.create = create,
	};

	return vdk_tool_main(&prog, argc, argv);
}
