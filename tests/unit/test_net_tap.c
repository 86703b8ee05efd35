/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tap backend (src/devices/net_tap.c) under virtio-net, inside a
 * network namespace the test creates (unshare(CLONE_NEWNET)): frames the
 * guest transmits leave through the tap interface (seen by an AF_PACKET
 * socket on it), frames sent on the interface reach the guest's receive
 * queue; the link follows the interface's IFF_UP; an inherited fd; multi
 * queue; refusals. SKIPPED (exit 77) where namespaces or /dev/net/tun are
 * not available.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>

#include "net_env.h"

#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental */

static void set_up(const char *ifname, bool up)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(s >= 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	if (up)
		ifr.ifr_flags |= IFF_UP;
	else
		ifr.ifr_flags &= ~IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

static int packet_socket(const char *ifname)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_ALL)};
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));

	assert_true(s >= 0);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	assert_true(sll.sll_ifindex > 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return s;
}

/* Receive on @s the next frame of our ethertype; its length, or -1. */
static ssize_t packet_recv(int s, uint8_t *buf, size_t cap)
{
	for (int i = 0; i < 100; i++) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 2000) <= 0)
			return -1;
		n = recv(s, buf, cap, 0);
		if (n >= 14 && buf[12] == ETHERTYPE_TEST >> 8 &&
		    buf[13] == (ETHERTYPE_TEST & 0xff))
			return n;
	}
	return -1;
}

static void test_frame(uint8_t *f, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seed + i * 3);
	memcpy(f, net_mac, 6);
	f[6] = 0x02;
	f[12] = ETHERTYPE_TEST >> 8;
	f[13] = ETHERTYPE_TEST & 0xff;
}

static void test_tap_both_ways(void **state)
{
	struct vdk_net_tap_config cfg = {.ifname = "vdktap0", .fd = -1};
	struct vdk_net_backend *be;
	struct net_env *e;
	struct virtio_net_hdr_v1 *h;
	uint8_t *frame, got[2048];
	int err = 0, s;
	uint64_t f;

	(void)state;
	be = vdk_net_tap_new(&cfg, &err);
	assert_non_null(be);
	set_up("vdktap0", true);
	s = packet_socket("vdktap0");
	e = ne_new_be(1, 1500, be);
	f = e->dev->ops->features(e->dev->impl);
	assert_true(f & F(VIRTIO_NET_F_CSUM));
	assert_true(f & F(VIRTIO_NET_F_GUEST_CSUM));
	assert_true(f & F(VIRTIO_NET_F_GUEST_TSO4));
	ne_up(e, NET_GUEST_FEATURES);
	assert_int_equal(ne_status(e), VIRTIO_NET_S_LINK_UP);

	/* Guest → interface. */
	h = ne_hdr(e);
	frame = ne_alloc(e, 600, 16);
	test_frame(frame, 600, 1);
	ne_send(e, 0, h, frame, 600);
	assert_int_equal(ne_reap_tx(e, 0), 1);
	assert_int_equal(packet_recv(s, got, sizeof(got)), 600);
	assert_memory_equal(got, frame, 600);

	/* Interface → guest (other frames, IPv6 neighbour discovery, may
	 * come first: look for ours). */
	uint8_t out[700];
	test_frame(out, 700, 9);
	for (int i = 0; i < 8; i++)
		ne_post_rx(e, 0, 2048);
	assert_int_equal(send(s, out, sizeof(out), 0), (ssize_t)sizeof(out));
	bool found = false;
	for (int tries = 0; tries < 200 && !found; tries++) {
		uint16_t tok;
		uint32_t len;

		vdk_net_poll(e->net);
		while (!found && vdk_driver_virtq_pop_used(&ne_rxq(e, 0)->q,
							   &tok, &len) == 0) {
			/* The buffer: found through its descriptor. */
			uint64_t gpa = le64toh(e->dq[0].q.desc[tok].addr);
			uint8_t *p = e->ram + (gpa - RAM_GPA);

			if (len == VDK_NET_HDR_LEN + sizeof(out) &&
			    !memcmp(p + VDK_NET_HDR_LEN, out, sizeof(out))) {
				struct virtio_net_hdr_v1 rh;

				memcpy(&rh, p, sizeof(rh));
				assert_int_equal(le16toh(rh.num_buffers), 1);
				found = true;
			}
			ne_post_rx(e, 0, 2048);
		}
		if (!found)
			usleep(10000);
	}
	assert_true(found);

	/* The link follows IFF_UP (read when the device refreshes it). */
	set_up("vdktap0", false);
	vdk_net_set_link(e->net, true);
	assert_int_equal(ne_status(e), 0);
	set_up("vdktap0", true);
	vdk_net_set_link(e->net, true);
	assert_int_equal(ne_status(e), VIRTIO_NET_S_LINK_UP);

	ne_free(e);
	vdk_net_backend_free(be);
	close(s);
}

static int open_tap(const char *name, short flags)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0);
	ifr.ifr_flags = flags;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	return fd;
}

static void test_tap_inherited_fd(void **state)
{
	struct vdk_net_tap_config cfg = {.fd = -1};
	struct vdk_net_backend *be;
	int err = 0, p[2];

	(void)state;
	cfg.fd = open_tap("vdktap1", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	be = vdk_net_tap_new(&cfg, &err);
	assert_non_null(be);
	/* Non-blocking now, nothing to read. */
	uint8_t buf[2048];
	struct iovec v = {buf, sizeof(buf)};
	assert_int_equal(be->ops->recv(be->impl, 0, &v, 1), -EAGAIN);
	assert_int_equal(be->ops->fd(be->impl, 0), cfg.fd);
	vdk_net_backend_free(be);

	/* Refused (and closed): no vnet header; not a tap at all. */
	cfg.fd = open_tap("vdktap2", IFF_TAP | IFF_NO_PI);
	assert_null(vdk_net_tap_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	assert_int_equal(fcntl(cfg.fd, F_GETFD), -1);
	assert_int_equal(pipe(p), 0);
	cfg.fd = p[0];
	assert_null(vdk_net_tap_new(&cfg, &err));
	assert_int_equal(err, -EINVAL);
	close(p[1]);
	/* Bad configurations. */
	struct vdk_net_tap_config both = {.ifname = "x", .fd = 0};
	assert_null(vdk_net_tap_new(&both, &err));
	assert_int_equal(err, -EINVAL);
	struct vdk_net_tap_config none = {.fd = -1};
	assert_null(vdk_net_tap_new(&none, &err));
	struct vdk_net_tap_config longname = {
		.ifname = "a-name-longer-than-ifnamsiz", .fd = -1};
	assert_null(vdk_net_tap_new(&longname, &err));
	assert_null(vdk_net_tap_new(NULL, &err));
}

static void test_tap_multi_queue(void **state)
{
	struct vdk_net_tap_config cfg = {
		.ifname = "vdkmq0", .fd = -1, .pairs = 2};
	struct vdk_net_backend *be;
	int err = 0;

	(void)state;
	be = vdk_net_tap_new(&cfg, &err);
	assert_non_null(be);
	assert_true(be->ops->fd(be->impl, 0) >= 0);
	assert_true(be->ops->fd(be->impl, 1) >= 0);
	assert_int_equal(be->ops->fd(be->impl, 2), -1);
	assert_int_equal(be->ops->set_queue_pairs(be->impl, 1), 0);
	assert_int_equal(be->ops->set_queue_pairs(be->impl, 2), 0);
	assert_int_equal(be->ops->set_queue_pairs(be->impl, 3), -EINVAL);
	assert_int_equal(be->ops->set_offloads(
				 be->impl, F(VIRTIO_NET_F_GUEST_CSUM) |
						   F(VIRTIO_NET_F_GUEST_TSO4)),
			 0);
	/* A second single-queue open of a multi-queue tap is refused. */
	struct vdk_net_tap_config sq = {.ifname = "vdkmq0", .fd = -1};
	vdk_log_set_sink(net_quiet, NULL, VDK_LOG_DEBUG);
	assert_null(vdk_net_tap_new(&sq, &err));
	vdk_log_set_sink(NULL, NULL, VDK_LOG_INFO);
	assert_true(err < 0);
	vdk_net_backend_free(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tap_both_ways),
		cmocka_unit_test(test_tap_inherited_fd),
		cmocka_unit_test(test_tap_multi_queue),
	};
	int fd;

	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIPPED: cannot create a network namespace "
		       "(unshare(CLONE_NEWNET): %s)\n",
		       strerror(errno));
		return 77;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("SKIPPED: /dev/net/tun: %s\n", strerror(errno));
		return 77;
	}
	close(fd);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
