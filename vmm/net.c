/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-vmm's --net: parse the option, open the backend, create the device
 * (which owns the backend) and hand it to the device set in one call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdk/devices/net.h>

#include "net.h"

static int parse_u16(const char *s, unsigned min, unsigned max, uint16_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
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
	return mac[0] & 1 ? -EINVAL : 0;
}

int vmm_net_add(struct vmm_devices *d, const char *spec, const char **errmsg)
{
	struct vdk_net_config cfg = {.own_backend = true};
	struct vdk_net_tap_config tap = {.fd = -1};
	char *copy = strdup(spec), *save = NULL, *w;
	bool loopback = false, first = true;
	char ifname[64];
	struct vdk_net *net;
	int err = 0;

	*errmsg = "bad --net (tap=IFNAME[,mac=MAC][,queue-pairs=N][,mtu=N] "
		  "or loopback[,...])";
	if (!copy)
		return -ENOMEM;
	for (w = strtok_r(copy, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		if (first && !strncmp(w, "tap=", 4) && w[4]) {
			tap.ifname = spec + (w + 4 - copy);
		} else if (first && !strcmp(w, "loopback")) {
			loopback = true;
		} else if (!strncmp(w, "mac=", 4)) {
			err = parse_mac(w + 4, cfg.mac);
		} else if (!strncmp(w, "queue-pairs=", 12)) {
			err = parse_u16(w + 12, 1, VDK_NET_MAX_QUEUE_PAIRS,
					&cfg.max_queue_pairs);
		} else if (!strncmp(w, "mtu=", 4)) {
			err = parse_u16(w + 4, 68, 65535, &cfg.mtu);
		} else {
			err = -EINVAL;
		}
		if (err < 0 || (first && !tap.ifname && !loopback))
			goto bad;
		first = false;
	}
	if (!tap.ifname && !loopback)
		goto bad;
	/* The interface name ends at its comma in @spec: copy it. */
	if (tap.ifname) {
		size_t n = strcspn(tap.ifname, ",");

		if (n >= sizeof(ifname))
			goto bad;
		memcpy(ifname, tap.ifname, n);
		ifname[n] = 0;
		tap.ifname = ifname;
	}
	free(copy);
	tap.pairs = cfg.max_queue_pairs ? cfg.max_queue_pairs : 1;
	cfg.backend = loopback ? vdk_net_loopback_new(tap.pairs, 0, &err)
			       : vdk_net_tap_new(&tap, &err);
	if (!cfg.backend) {
		*errmsg = "cannot open the network backend";
		return err;
	}
	net = vdk_net_new(&cfg, &err);
	if (!net) {
		*errmsg = "cannot create the virtio-net device";
		return err;
	}
	return vmm_devices_add(d, "net0", vdk_net_device(net), errmsg);
bad:
	free(copy);
	return -EINVAL;
}
