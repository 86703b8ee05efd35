/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tap packet backend (Linux Documentation/networking/tuntap.rst): one
 * non-blocking tap fd per queue pair, with IFF_VNET_HDR and a 12-byte
 * vnet header (struct virtio_net_hdr_v1, what the device speaks), so a
 * packet and its offload header go through readv/writev unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include <vdk/devices/net.h>
#include <vdk/log.h>

#define MOD	"net-tap"
#define FB(bit) (1ull << (bit))

struct tap {
	uint16_t pairs;
	int fds[VDK_NET_MAX_QUEUE_PAIRS];
	char ifname[IFNAMSIZ];
	bool multi_queue;
	uint64_t offloads;
};

static ssize_t tap_send(void *be, uint16_t pair, const struct iovec *iov,
			int iovcnt)
{
	struct tap *t = be;
	ssize_t r;

	if (pair >= t->pairs)
		return -EINVAL;
	do
		r = writev(t->fds[pair], iov, iovcnt);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static ssize_t tap_recv(void *be, uint16_t pair, const struct iovec *iov,
			int iovcnt)
{
	struct tap *t = be;
	ssize_t r;

	if (pair >= t->pairs)
		return -EINVAL;
	do
		r = readv(t->fds[pair], iov, iovcnt);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return r;
}

static int tap_fd(void *be, uint16_t pair)
{
	struct tap *t = be;

	return pair < t->pairs ? t->fds[pair] : -1;
}

static uint64_t tap_offloads(void *be)
{
	return ((struct tap *)be)->offloads;
}

/* The guest offloads it negotiated, as TUNSETOFFLOAD flags: what the
 * kernel may hand us (and so the guest) in received packets. */
static int tap_set_offloads(void *be, uint64_t f)
{
	struct tap *t = be;
	unsigned long fl = 0;

	if (f & FB(VIRTIO_NET_F_GUEST_CSUM)) {
		fl |= TUN_F_CSUM;
		if (f & FB(VIRTIO_NET_F_GUEST_TSO4))
			fl |= TUN_F_TSO4;
		if (f & FB(VIRTIO_NET_F_GUEST_TSO6))
			fl |= TUN_F_TSO6;
		if ((f & FB(VIRTIO_NET_F_GUEST_ECN)) &&
		    (fl & (TUN_F_TSO4 | TUN_F_TSO6)))
			fl |= TUN_F_TSO_ECN;
	}
	for (uint16_t p = 0; p < t->pairs; p++)
		if (ioctl(t->fds[p], TUNSETOFFLOAD, fl) < 0) {
			int e = errno;

			vdk_log(VDK_LOG_ERROR, MOD, "TUNSETOFFLOAD %#lx: %s",
				fl, strerror(e));
			return -e;
		}
	return 0;
}

static int tap_set_queue_pairs(void *be, uint16_t pairs)
{
	struct tap *t = be;

	if (pairs < 1 || pairs > t->pairs)
		return -EINVAL;
	if (!t->multi_queue)
		return 0;
	for (uint16_t p = 0; p < t->pairs; p++) {
		struct ifreq ifr = {0};

		ifr.ifr_flags = p < pairs ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
		/* EINVAL: already in that state. */
		if (ioctl(t->fds[p], TUNSETQUEUE, &ifr) < 0 && errno != EINVAL)
			return -errno;
	}
	return 0;
}

static bool tap_link_up(void *be)
{
	struct tap *t = be;
	struct ifreq ifr = {0};
	bool up = true;
	int s;

	if (!t->ifname[0])
		return true;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return true;
	memcpy(ifr.ifr_name, t->ifname, IFNAMSIZ);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0)
		up = ifr.ifr_flags & IFF_UP;
	close(s);
	return up;
}

static void tap_destroy(void *be)
{
	struct tap *t = be;

	for (uint16_t p = 0; p < VDK_NET_MAX_QUEUE_PAIRS; p++)
		if (t->fds[p] >= 0)
			close(t->fds[p]);
	free(t);
}

static const struct vdk_net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.fd = tap_fd,
	.offloads = tap_offloads,
	.set_offloads = tap_set_offloads,
	.set_queue_pairs = tap_set_queue_pairs,
	.link_up = tap_link_up,
	.destroy = tap_destroy,
};

/* Configure one tap fd: non-blocking, 12-byte vnet header. */
static int tap_setup_fd(int fd)
{
	int hdr = VDK_NET_HDR_LEN, fl = fcntl(fd, F_GETFL);
	unsigned int feat = 0;
	struct ifreq ifr = {0};

	if (ioctl(fd, TUNGETIFF, &ifr) < 0) /* not a tap, or not attached */
		return errno == EBADFD || errno == ENOTTY || errno == EINVAL
			       ? -EINVAL
			       : -errno;
	if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR) ||
	    !(ifr.ifr_flags & IFF_NO_PI))
		return -EINVAL;
	if (ioctl(fd, TUNGETFEATURES, &feat) == 0 && !(feat & IFF_VNET_HDR))
		return -EINVAL;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		return -errno;
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int tap_open(struct tap *t, const char *ifname, uint16_t p)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	t->fds[p] = fd;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (t->multi_queue)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return -errno;
	return tap_setup_fd(fd);
}

/* Which offloads this tap carries: TUNSETOFFLOAD succeeds with them. The
 * kernel takes GSO packets from us whatever the flags. */
static uint64_t tap_probe(struct tap *t)
{
	uint64_t f = FB(VIRTIO_NET_F_CSUM) | FB(VIRTIO_NET_F_HOST_TSO4) |
		     FB(VIRTIO_NET_F_HOST_TSO6) | FB(VIRTIO_NET_F_HOST_ECN);

	if (ioctl(t->fds[0], TUNSETOFFLOAD,
		  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) == 0)
		f |= FB(VIRTIO_NET_F_GUEST_CSUM) | FB(VIRTIO_NET_F_GUEST_TSO4) |
		     FB(VIRTIO_NET_F_GUEST_TSO6) | FB(VIRTIO_NET_F_GUEST_ECN);
	else if (ioctl(t->fds[0], TUNSETOFFLOAD, TUN_F_CSUM) == 0)
		f |= FB(VIRTIO_NET_F_GUEST_CSUM);
	(void)ioctl(t->fds[0], TUNSETOFFLOAD, 0);
	return f;
}

struct vdk_net_backend *vdk_net_tap_new(const struct vdk_net_tap_config *cfg,
					int *err)
{
	struct vdk_net_backend *be = NULL;
	struct tap *t = NULL;
	int ret = -EINVAL;
	uint16_t pairs;

	if (!cfg)
		goto fail;
	pairs = cfg->pairs ? cfg->pairs : 1;
	if (pairs > VDK_NET_MAX_QUEUE_PAIRS ||
	    (!cfg->ifname) == (cfg->fd < 0) || (cfg->fd >= 0 && pairs != 1) ||
	    (cfg->ifname && strlen(cfg->ifname) >= IFNAMSIZ))
		goto fail;
	ret = -ENOMEM;
	t = calloc(1, sizeof(*t));
	be = calloc(1, sizeof(*be));
	if (t)
		for (uint16_t p = 0; p < VDK_NET_MAX_QUEUE_PAIRS; p++)
			t->fds[p] = cfg->fd >= 0 && p == 0 ? cfg->fd : -1;
	if (!t || !be)
		goto fail;
	t->pairs = pairs;
	if (cfg->fd >= 0) {
		ret = tap_setup_fd(cfg->fd);
		if (ret < 0)
			goto fail;
	} else {
		t->multi_queue = pairs > 1;
		snprintf(t->ifname, sizeof(t->ifname), "%s", cfg->ifname);
		for (uint16_t p = 0; p < pairs; p++) {
			ret = tap_open(t, cfg->ifname, p);
			if (ret < 0) {
				vdk_log(VDK_LOG_ERROR, MOD, "tap %s: %s",
					cfg->ifname, strerror(-ret));
				goto fail;
			}
		}
	}
	t->offloads = tap_probe(t);
	be->ops = &tap_ops;
	be->impl = t;
	return be;
fail:
	if (t)
		tap_destroy(t);
	else if (cfg && cfg->fd >= 0)
		close(cfg->fd);
	free(be);
	if (err)
		*err = ret;
	return NULL;
}
