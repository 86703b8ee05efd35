/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net, the network device (virtio 1.2 §5.1), in front of a packet
 * backend (struct vdk_net_backend: tap, loopback, or the user's own).
 *
 * Queues (§5.1.2): receiveq1, transmitq1, ..., receiveqN, transmitqN, then
 * controlq. N is max_virtqueue_pairs when VIRTIO_NET_F_MQ is negotiated,
 * else 1; the device always exposes 2 * max_queue_pairs + 1 queues, and the
 * control queue is queue 2N (queue 2 without MQ).
 *
 * Features offered: VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC,
 * VIRTIO_RING_F_EVENT_IDX, VIRTIO_NET_F_MAC, STATUS, MTU (when configured),
 * MRG_RXBUF, CTRL_VQ, CTRL_RX, CTRL_VLAN, CTRL_MAC_ADDR, GUEST_ANNOUNCE,
 * MQ (when max_queue_pairs > 1), and of the offloads CSUM, GUEST_CSUM,
 * HOST_TSO4/TSO6/ECN, GUEST_TSO4/TSO6/ECN those the backend reports in its
 * offloads() (a GSO bit only together with its checksum bit).
 *
 * Every packet carries a struct virtio_net_hdr_v1 (12 bytes, §5.1.6) in
 * front of it, on the queues and to and from the backend alike.
 *
 * The guest is hostile. What the device does with what it finds:
 *  - transmit (§5.1.6.2): a chain whose readable part is shorter than the
 *    header or than an Ethernet header behind it, longer than
 *    VDK_NET_MAX_PACKET, with a writable part, with flags other than
 *    NEEDS_CSUM, with NEEDS_CSUM without VIRTIO_NET_F_CSUM or with
 *    csum_start + csum_offset + 2 beyond the packet, with a GSO type that is
 *    unknown or not negotiated (HOST_TSO4/TSO6, ECN needs HOST_ECN), with GSO
 *    but gso_size 0 or not smaller than the packet, no NEEDS_CSUM, or with
 *    hdr_len beyond the packet: the packet is dropped and counted
 *    (tx_dropped_header), its chain returned; the queue goes on.
 *  - receive (§5.1.6.3, §5.1.6.4): a receive chain with a device-readable
 *    part, or whose writable part is shorter than the 12-byte header,
 *    breaks §5.1.6.3.1: the device reports DEVICE_NEEDS_RESET
 *    (vdk_interrupt_needs_reset()) and stops every queue until reset. A
 *    packet that does not fit the buffers given (a non-mergeable chain too
 *    small, or more than the whole queue with MRG_RXBUF) is dropped and
 *    counted (rx_dropped_no_room); the buffers stay for the next packet. A
 *    packet whose header asks for an offload the guest did not negotiate
 *    (GUEST_CSUM, GUEST_TSO4/6/ECN) is dropped and counted
 *    (rx_dropped_header): the guest never sees a header that lies.
 *  - control (§5.1.6.5): a command with an unknown class or command, of a
 *    class not negotiated, with a payload of the wrong length, a VLAN id
 *    above 4095, a MAC table with more entries than its payload holds, or a
 *    queue pair count outside 1..max_virtqueue_pairs is answered
 *    VIRTIO_NET_ERR and changes nothing. A control chain without a
 *    writable byte for the ack, or shorter than the class and command, is
 *    returned with nothing written (ctrl_errors counts it).
 *
 * Fairness: each pass over a queue handles at most VDK_NET_BUDGET chains;
 * the rest of a queue is picked up on another pass, which the device asks
 * its loop for (an eventfd of its own) so that everything else on the loop
 * runs in between; without a loop it drains the queue before returning.
 *
 * Event sources (attach_loop, <vdk/loop.h>): the backend's fd of each pair
 * (tap), watched for input while the pair's receive queue has buffers and
 * left out of the loop while it has none (no spinning on a level-triggered
 * fd); the budget eventfd; with a backend that reports its link, a 200 ms
 * timer that reads it (vdk_net_check_link()). Per-queue start/stop
 * (vhost-user rings, multiqueue, queue reset): a receive queue that stops
 * gives back the buffers it held for a packet with 0 bytes written.
 *
 * Threading: one thread (the transport's, or the loop's) calls everything.
 *
 * Snapshot: MAC address, link status, receive filters (promiscuous,
 * all-multicast, MAC tables, VLAN bitmap), current queue pairs and the
 * counters. A packet half delivered into mergeable buffers when the device
 * sleeps is dropped and its buffers are returned with 0 bytes written.
 */
#ifndef VDK_DEVICES_NET_H
#define VDK_DEVICES_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <vdk/config.h>
#include <vdk/device.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Default largest queue size. */
#define VDK_NET_DEFAULT_QUEUE_SIZE 256
/** Most queue pairs a device may have ((VDK_DEVICE_MAX_QUEUES - 1) / 2). */
#define VDK_NET_MAX_QUEUE_PAIRS 31
/** Bytes of struct virtio_net_hdr_v1, in front of every packet. */
#define VDK_NET_HDR_LEN 12
/** Largest packet without its header, bytes: 64 KiB of GSO payload plus an
 * Ethernet header with a VLAN tag (as Linux's big-packet receive mode). */
#define VDK_NET_MAX_PACKET (65535u + 14u + 4u)
/** Chains handled per queue per pass (fairness between queues). */
#define VDK_NET_BUDGET 256
/** Entries of each MAC filter table (unicast, multicast). */
#define VDK_NET_MAC_TABLE_ENTRIES 64

/**
 * struct vdk_net_backend_ops - a packet backend. Each queue pair @pair
 * (0-based) is a separate packet stream; a backend with one stream ignores
 * @pair. Packets cross this interface with their 12-byte struct
 * virtio_net_hdr_v1 in front, little-endian. Optional members may be NULL.
 */
struct vdk_net_backend_ops {
	/**
	 * Send one packet (header + frame) gathered from @iov (@iovcnt
	 * entries, host buffers, valid for the call only). The header has
	 * been validated by the device against the negotiated features.
	 * Return: bytes taken (the whole packet), -EAGAIN if the backend
	 * cannot take it now, or another -errno (the packet is dropped).
	 */
	ssize_t (*send)(void *be, uint16_t pair, const struct iovec *iov,
			int iovcnt);
	/**
	 * Receive one packet (header + frame) into @iov (room for
	 * VDK_NET_HDR_LEN + VDK_NET_MAX_PACKET bytes). Never blocks.
	 * Return: bytes received, -EAGAIN if none is waiting, or -errno.
	 */
	ssize_t (*recv)(void *be, uint16_t pair, const struct iovec *iov,
			int iovcnt);
	/** Optional: fd that polls readable when recv() has a packet for
	 * @pair, or -1 (then the device polls recv() after each transmit
	 * pass and receive notification). Owned by the backend. */
	int (*fd)(void *be, uint16_t pair);
	/** Optional: the offload feature bits (VIRTIO_NET_F_CSUM,
	 * GUEST_CSUM, HOST_TSO4/6/ECN, GUEST_TSO4/6/ECN) the backend can
	 * carry; NULL means none. */
	uint64_t (*offloads)(void *be);
	/** Optional: the driver negotiated @features: deliver GUEST_*
	 * offloads only as they allow (tap: TUNSETOFFLOAD). Return 0 or
	 * -errno (the device then fails activation). */
	int (*set_offloads)(void *be, uint64_t features);
	/** Optional: use the first @pairs streams (VQ_PAIRS_SET); 0 or
	 * -errno (answered VIRTIO_NET_ERR). */
	int (*set_queue_pairs)(void *be, uint16_t pairs);
	/** Optional: false while the backend's link is down; NULL: up. */
	bool (*link_up)(void *be);
	/** Optional: free the backend (vdk_net_backend_free()). */
	void (*destroy)(void *be);
	/**
	 * Optional: true when a packet sent on @pair now would come straight
	 * back on @pair and nothing is waiting in the backend before it (a
	 * loopback with an empty queue). The device may then copy a
	 * transmitted packet straight from the transmit chain into a receive
	 * buffer (one copy instead of send() + recv()), with the same header
	 * check, receive filter and counters as a packet sent and received.
	 */
	bool (*loops_back)(void *be, uint16_t pair);
};

/** struct vdk_net_backend - a backend: its ops and its own pointer. */
struct vdk_net_backend {
	const struct vdk_net_backend_ops *ops;
	void *impl;
};

/**
 * vdk_net_backend_free() - ops->destroy(impl), then free @be (from
 * vdk_net_loopback_new() or vdk_net_tap_new()). NULL is accepted.
 */
void vdk_net_backend_free(struct vdk_net_backend *be);

/**
 * vdk_net_loopback_new() - a backend that sends back what it is given:
 * a packet sent on pair p is received on pair p, header included. Each
 * pair holds up to @depth packets (0: 256); send() beyond that is -EAGAIN.
 * It carries every offload. While a pair's queue is empty it reports
 * loops_back(), so the device copies each packet once, from the transmit
 * chain straight into a receive buffer.
 * @pairs: 1..VDK_NET_MAX_QUEUE_PAIRS.
 * Return: the backend (vdk_net_backend_free()), or NULL with *@err -EINVAL
 * or -ENOMEM.
 */
struct vdk_net_backend *vdk_net_loopback_new(uint16_t pairs, uint32_t depth,
					     int *err);

/** struct vdk_net_tap_config - options for vdk_net_tap_new(). */
struct vdk_net_tap_config {
	/** An existing tap interface to open by name (IFF_TAP | IFF_NO_PI |
	 * IFF_VNET_HDR, and IFF_MULTI_QUEUE when @pairs > 1), or NULL. */
	const char *ifname;
	/** Or an open tap fd (QEMU's -netdev tap,fd=), taken over by the
	 * backend (closed on free, even on error); -1 if @ifname is used.
	 * It must have IFF_VNET_HDR; only one pair. */
	int fd;
	/** Queue pairs: 1..VDK_NET_MAX_QUEUE_PAIRS (0 means 1). */
	uint16_t pairs;
};

/**
 * vdk_net_tap_new() - a backend on a Linux tap interface
 * (Documentation/networking/tuntap.rst): the fds are made non-blocking,
 * the vnet header size set to 12 (TUNSETVNETHDRSZ) and the guest offloads
 * mapped to TUNSETOFFLOAD when negotiated (GUEST_CSUM → TUN_F_CSUM,
 * GUEST_TSO4/6 → TUN_F_TSO4/6, GUEST_ECN → TUN_F_TSO_ECN). The link is
 * up while the interface is IFF_UP (checked through a SIOCGIFFLAGS on each
 * link_up()).
 * Return: the backend, or NULL with *@err: -EINVAL (bad config, fd not a
 * tap with IFF_VNET_HDR), or the -errno of open/ioctl (-ENOENT no
 * /dev/net/tun, -EPERM, -EBUSY interface in use).
 */
struct vdk_net_backend *vdk_net_tap_new(const struct vdk_net_tap_config *cfg,
					int *err);

/**
 * enum vdk_net_backend_type - the backend vdk_net_new() opens itself when
 * vdk_net_config.backend is NULL.
 * @VDK_NET_BACKEND_NONE:     none: vdk_net_config.backend must be given.
 * @VDK_NET_BACKEND_TAP:      vdk_net_tap_new() on vdk_net_config.tap.
 * @VDK_NET_BACKEND_LOOPBACK: vdk_net_loopback_new().
 */
enum vdk_net_backend_type {
	VDK_NET_BACKEND_NONE = 0,
	VDK_NET_BACKEND_TAP,
	VDK_NET_BACKEND_LOOPBACK,
};

/** struct vdk_net_config - options for vdk_net_new(). */
struct vdk_net_config {
	/** The backend: not owned (it must outlive the device) unless
	 * @own_backend. NULL: vdk_net_new() opens the one @backend_type
	 * names and owns it. */
	struct vdk_net_backend *backend;
	/** With @backend NULL: which backend to open (settings "tap",
	 * "tap-fd", "loopback"). */
	enum vdk_net_backend_type backend_type;
	/** For VDK_NET_BACKEND_TAP: @tap.ifname (then @tap.fd is ignored),
	 * or @tap.fd with @tap.ifname NULL (vdk_net_new() takes the fd over:
	 * the backend closes it on free, and vdk_net_new() closes it on
	 * failure). @tap.pairs is ignored: @max_queue_pairs is used. */
	struct vdk_net_tap_config tap;
	/** The device frees @backend (vdk_net_backend_free()) when it is
	 * destroyed, and on a vdk_net_new() failure. */
	bool own_backend;
	/** MAC address (VIRTIO_NET_F_MAC); all zero: 52:54:00:12:34:56. */
	uint8_t mac[6];
	/** max_virtqueue_pairs: 1..VDK_NET_MAX_QUEUE_PAIRS (0 means 1). */
	uint16_t max_queue_pairs;
	/** MTU advice (VIRTIO_NET_F_MTU), 68..65535; 0: not offered. */
	uint16_t mtu;
	/** Largest queue size: a power of two; 0: default. */
	uint16_t queue_max_size;
	/**
	 * Busy polling, microseconds (0: off; at most 1000): when a transmit
	 * queue runs empty, the device publishes what it did, then keeps
	 * looking at the queue for up to this long before asking the driver
	 * for a notification again (as Linux vhost-net's busyloop_timeout):
	 * CPU time of the loop thread traded for fewer notifications and
	 * wake-ups when a driver sends in bursts. Within the pass's budget.
	 */
	uint32_t busy_poll_us;
	/** The copy vdk_net_config_set() made of @tap.ifname; freed by
	 * vdk_net_config_fini(). Leave NULL when filling the struct by hand. */
	char *tap_ifname_copy;
};

/*
 * The settings of a net device (<vdk/config.h>), set from strings:
 *   tap=IFNAME     an existing tap interface (VDK_NET_BACKEND_TAP)
 *   tap-fd=N       an open tap fd, taken over (one queue pair)
 *   loopback       the loopback backend; give one of tap, tap-fd, loopback
 *   mac=MAC        @mac, a unicast address (52:54:00:12:34:56)
 *   queue-pairs=N  @max_queue_pairs, 1..VDK_NET_MAX_QUEUE_PAIRS
 *   mtu=N          @mtu, 68..65535
 *   busy-poll=USEC @busy_poll_us, 0..1000
 * e.g. vdk_net_config_parse(&cfg, "tap=tap0,queue-pairs=2", ...); no
 * setting is positional.
 */

/**
 * vdk_net_config_key() - the net device's settings, one by one, for a
 * program's options and help (a vdk_config_key_fn).
 * @index: from 0.
 * Return: the @index-th setting (static, owned by the library), or NULL
 * past the last one.
 */
const struct vdk_config_key *vdk_net_config_key(size_t index);

/**
 * vdk_net_config_set() - set one setting of @cfg from a string.
 * @cfg:   the caller's config, zeroed or filled before (with @backend NULL
 *         to use the backend settings); the interface name it stores is a
 *         copy owned by @cfg until vdk_net_config_fini(). "tap-fd" stores
 *         a number only: the fd is taken over by vdk_net_new(), not here.
 * @key:   a setting's name.
 * @value: its value (host string, copied where needed), or NULL for the
 *         flag "loopback".
 * @msg:   where the error message goes, "mac: want a unicast address like
 *         52:54:00:12:34:56" (@len bytes, VDK_CONFIG_MSG_LEN holds all;
 *         NULL: none); empty on success.
 * Return: 0; -EINVAL for an unknown @key, a flag given a value, a value
 * missing, a value out of range (an interface name empty or longer than 15
 * bytes, a negative or non-numeric fd, a MAC that is malformed or
 * multicast, queue-pairs outside 1..VDK_NET_MAX_QUEUE_PAIRS, mtu outside
 * 68..65535, busy-poll above 1000), or a second backend ("loopback" after
 * "tap"); -ENOMEM copying a string. @cfg is unchanged on error.
 */
int vdk_net_config_set(struct vdk_net_config *cfg, const char *key,
		       const char *value, char *msg, size_t len);

/**
 * vdk_net_config_parse() - set the settings of a spec such as
 * "tap=tap0,mac=52:54:00:00:00:01,queue-pairs=2": NAME or NAME=VALUE
 * fields, each set with vdk_net_config_set(); ",," is a comma inside a
 * value. @spec is not modified or kept.
 * Return: 0; -EINVAL for an empty @spec, an empty field, a setting given
 * twice, or what vdk_net_config_set() refuses; -ENOMEM. On error @cfg may
 * hold the settings before the bad one: call vdk_net_config_fini() either
 * way.
 */
int vdk_net_config_parse(struct vdk_net_config *cfg, const char *spec,
			 char *msg, size_t len);

/**
 * vdk_net_config_check() - whether @cfg is complete for vdk_net_new(): a
 * backend given, or one of tap, tap-fd, loopback set; tap-fd only with
 * one queue pair. Ranges are checked when set.
 * Return: 0, or -EINVAL with the reason in @msg.
 */
int vdk_net_config_check(const struct vdk_net_config *cfg, char *msg,
			 size_t len);

/**
 * vdk_net_config_fini() - free the interface name vdk_net_config_set()
 * copied into @cfg and clear @tap.ifname if it pointed to it; names the
 * caller set by hand are left alone, and a tap fd is not closed. NULL is
 * accepted; calling it twice is harmless.
 */
void vdk_net_config_fini(struct vdk_net_config *cfg);

/** struct vdk_net_stats - counters (part of the snapshot). */
struct vdk_net_stats {
	uint64_t tx_packets, tx_bytes; /**< given to the backend */
	uint64_t tx_dropped_header;    /**< bad header or chain (above) */
	uint64_t tx_dropped_backend;   /**< backend refused */
	uint64_t rx_packets, rx_bytes; /**< delivered to the guest */
	uint64_t rx_dropped_no_room;   /**< did not fit the buffers */
	uint64_t rx_dropped_header;    /**< offload not negotiated */
	uint64_t rx_filtered;	       /**< MAC / VLAN filter */
	uint64_t ctrl_commands;	       /**< answered VIRTIO_NET_OK */
	uint64_t ctrl_errors;	       /**< VIRTIO_NET_ERR or unanswerable */
};

struct vdk_net;

/**
 * vdk_net_new() - create a virtio-net device (VIRTIO_ID_NET) wrapped in an
 * initialised struct vdk_device (state NEW, awake). With
 * vdk_net_config.backend NULL it first opens the backend
 * vdk_net_config.backend_type names (and owns it).
 * Return: the device (vdk_net_free()), or NULL with *@err -EINVAL (no
 * backend or a backend without send/recv, bad pair count, queue size,
 * MTU or busy_poll_us), -ENOMEM, or the error of vdk_net_tap_new() /
 * vdk_net_loopback_new().
 */
struct vdk_net *vdk_net_new(const struct vdk_net_config *cfg, int *err);

/** vdk_net_free() - vdk_device_fini() and free. NULL is accepted. The
 * backend is not freed. */
void vdk_net_free(struct vdk_net *net);

/** vdk_net_device() - the framework handle; owned by @net. */
struct vdk_device *vdk_net_device(struct vdk_net *net);

/** vdk_net_stats() - copy of the counters. */
struct vdk_net_stats vdk_net_stats(const struct vdk_net *net);

/**
 * vdk_net_pair_stats() - packets one queue pair carried (§5.1.2: pair N is
 * receiveqN+1 and transmitqN+1): @tx_packets given to the backend from its
 * transmit queue, @rx_packets delivered to the guest on its receive queue,
 * since the device was created (they are not in the snapshot). They show
 * which pairs a multiqueue guest really uses (VIRTIO_NET_F_MQ).
 * Return: 0, or -EINVAL if @pair is not below the device's max_queue_pairs.
 */
int vdk_net_pair_stats(const struct vdk_net *net, uint16_t pair,
		       uint64_t *tx_packets, uint64_t *rx_packets);

/**
 * vdk_net_set_link() - set the link state the device reports in
 * status.VIRTIO_NET_S_LINK_UP (§5.1.4), ANDed with the backend's
 * link_up(); sends a configuration change notification when the reported
 * status changes while the device is active. While the link is down no
 * packet moves: transmitted ones are dropped (tx_dropped_backend), none is
 * received.
 */
void vdk_net_set_link(struct vdk_net *net, bool up);

/**
 * vdk_net_check_link() - read the backend's link state again (its
 * link_up(), for tap a SIOCGIFFLAGS) and report a change to the driver as
 * vdk_net_set_link() does. For a host's periodic timer.
 */
void vdk_net_check_link(struct vdk_net *net);

/**
 * vdk_net_announce() - ask the guest to announce itself (status
 * VIRTIO_NET_S_ANNOUNCE, §5.1.6.5.4), if it negotiated
 * VIRTIO_NET_F_GUEST_ANNOUNCE; the bit clears on VIRTIO_NET_CTRL_ANNOUNCE_ACK.
 * Return: 0, or -EOPNOTSUPP if not negotiated or the device is not active.
 */
int vdk_net_announce(struct vdk_net *net);

/**
 * vdk_net_poll() - receive what the backend has for the active pairs
 * (what the device's fd callbacks do when it has a loop). For hosts
 * without a loop and for tests.
 */
void vdk_net_poll(struct vdk_net *net);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_DEVICES_NET_H */
