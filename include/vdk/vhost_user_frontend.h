/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost-user front-end: the side of the protocol QEMU (or libblkio) plays,
 * so that a plain process can drive any vhost-user back-end (QEMU's
 * docs/interop/vhost-user.rst, "the vhost-user spec" below).
 *
 * Two layers:
 *   - struct vdk_vhost_user_frontend: one connection to a back-end and one
 *     function per request (GET_FEATURES, SET_MEM_TABLE, SET_VRING_ADDR,
 *     ...). Requests that have no reply of their own carry NEED_REPLY once
 *     VHOST_USER_PROTOCOL_F_REPLY_ACK is negotiated, and the call then
 *     returns the back-end's verdict.
 *   - struct vdk_vhost_user_driver: a struct vdk_driver_transport on top of
 *     a front-end, so the driver-side code of <vdk/driver.h> (device
 *     initialisation, split virtqueues) runs unchanged against a vhost-user
 *     back-end. Guest memory is memory the caller shares with the back-end
 *     (a memfd); device status and feature negotiation map onto vhost-user
 *     requests, an available buffer notification is a write to the ring's
 *     kick eventfd, and used buffer notifications arrive on its call eventfd.
 *
 * The back-end is not trusted: every reply is checked (request id, REPLY
 * flag, exact payload size, queue index) before a field of it is used, and
 * a reply that breaks the framing, or no reply within the timeout, breaks
 * the connection (every later call returns -EIO).
 *
 * The wire format is <vdk/spec/vhost_user.h>; the back-end API
 * (<vdk/vhost_user.h>) is not needed. Hosted (sockets, eventfds,
 * allocation). Locking: none; one thread uses a front-end and its driver
 * transport at a time.
 */
#ifndef VDK_VHOST_USER_FRONTEND_H
#define VDK_VHOST_USER_FRONTEND_H

#include <stdbool.h>
#include <stdint.h>

#include <vdk/device.h>
#include <vdk/driver.h>
#include <vdk/spec/vhost_user.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* ---- front-end connection ---------------------------------------------- */

/** How long a reply may take by default (milliseconds). */
#define VDK_VHOST_USER_FRONTEND_TIMEOUT_MS 5000

/** struct vdk_vhost_user_frontend - one connection to a back-end; opaque. */
struct vdk_vhost_user_frontend;

/**
 * struct vdk_vhost_user_frontend_region - one guest memory region for
 * SET_MEM_TABLE (spec "Memory regions description").
 */
struct vdk_vhost_user_frontend_region {
	uint64_t gpa;	    /**< guest-physical base address */
	uint64_t size;	    /**< bytes */
	void *addr;	    /**< where this process has the region mapped */
	int fd;		    /**< file (memfd) the back-end maps; not owned */
	uint64_t fd_offset; /**< offset of the region in @fd, bytes */
};

/**
 * vdk_vhost_user_frontend_new() - wrap a connected socket.
 * @sock_fd: a connected AF_UNIX SOCK_STREAM socket to the back-end; owned
 *           by the front-end on success (closed by _free()), left to the
 *           caller on failure.
 * @err:     set to 0, -EINVAL (negative fd) or -ENOMEM.
 *
 * Return: the front-end, or NULL.
 */
struct vdk_vhost_user_frontend *vdk_vhost_user_frontend_new(int sock_fd,
							    int *err);

/**
 * vdk_vhost_user_frontend_connect() - connect to the back-end listening on
 * the Unix socket @path (spec "Communication") and wrap the connection.
 * @out: set to the front-end (owned by the caller, _free()) on success.
 *
 * Return: 0; -ENAMETOOLONG if @path does not fit a sockaddr_un; -ENOMEM;
 * -errno from socket() or connect() (-ENOENT, -ECONNREFUSED, ...).
 */
int vdk_vhost_user_frontend_connect(const char *path,
				    struct vdk_vhost_user_frontend **out);

/**
 * vdk_vhost_user_frontend_socket_fd() - the connection's socket, owned by
 * @fe, for the caller to watch for the back-end hanging up (POLLHUP or
 * POLLRDHUP) while it waits for something else. Do not read, write or close
 * it. Return: the fd.
 */
int vdk_vhost_user_frontend_socket_fd(const struct vdk_vhost_user_frontend *fe);

/** vdk_vhost_user_frontend_free() - close the socket and free. NULL is
 * accepted. The back-end sees the connection end (spec: it then stops
 * every ring). */
void vdk_vhost_user_frontend_free(struct vdk_vhost_user_frontend *fe);

/** vdk_vhost_user_frontend_set_timeout() - how long to wait for each
 * reply, in milliseconds (> 0); VDK_VHOST_USER_FRONTEND_TIMEOUT_MS until
 * set. */
void vdk_vhost_user_frontend_set_timeout(struct vdk_vhost_user_frontend *fe,
					 int timeout_ms);

/** vdk_vhost_user_frontend_is_broken() - whether a reply broke the
 * connection (bad framing, timeout, back-end gone). */
bool vdk_vhost_user_frontend_is_broken(
	const struct vdk_vhost_user_frontend *fe);

/**
 * vdk_vhost_user_frontend_negotiate() - the opening every front-end does
 * (spec "Starting and stopping rings", "Protocol features"): SET_OWNER,
 * GET_FEATURES, and if the back-end offers VHOST_USER_F_PROTOCOL_FEATURES,
 * GET_PROTOCOL_FEATURES then SET_PROTOCOL_FEATURES with the intersection of
 * what it offers and @protocol_wanted (VHOST_USER_PROTOCOL_F_* as 1ull <<
 * bit; only MQ, REPLY_ACK, CONFIG, BACKEND_REQ and INFLIGHT_SHMFD are
 * implemented here, other bits are dropped).
 * @features: if not NULL, set to the virtio feature bits the back-end
 *            offers (GET_FEATURES, including bit 30).
 *
 * Return: 0; -EIO if the connection broke or a reply was malformed; -errno
 * from the socket.
 */
int vdk_vhost_user_frontend_negotiate(struct vdk_vhost_user_frontend *fe,
				      uint64_t protocol_wanted,
				      uint64_t *features);

/** vdk_vhost_user_frontend_protocol_features() - the protocol features
 * negotiated by vdk_vhost_user_frontend_negotiate() (0 before, or if the
 * back-end has none). */
uint64_t vdk_vhost_user_frontend_protocol_features(
	const struct vdk_vhost_user_frontend *fe);

/*
 * One function per request. Each returns 0 (or what it says) on success;
 * -EIO if the connection is broken, the reply is malformed or late (the
 * connection is then broken), or, with REPLY_ACK, the back-end reported
 * failure; -EINVAL for a bad argument; -EOPNOTSUPP for a request whose
 * protocol feature was not negotiated; -errno from sendmsg().
 */

/** VHOST_USER_SET_OWNER: this connection owns the back-end. */
int vdk_vhost_user_frontend_set_owner(struct vdk_vhost_user_frontend *fe);

/** VHOST_USER_GET_FEATURES: virtio feature bits offered (bit 30 included). */
int vdk_vhost_user_frontend_get_features(struct vdk_vhost_user_frontend *fe,
					 uint64_t *features);

/** VHOST_USER_SET_FEATURES: the accepted virtio features. Add bit 30
 * (VHOST_USER_F_PROTOCOL_FEATURES) if protocol features are in use. */
int vdk_vhost_user_frontend_set_features(struct vdk_vhost_user_frontend *fe,
					 uint64_t features);

/** VHOST_USER_GET_QUEUE_NUM (needs VHOST_USER_PROTOCOL_F_MQ): the most
 * queues the back-end supports. */
int vdk_vhost_user_frontend_get_queue_num(struct vdk_vhost_user_frontend *fe,
					  uint64_t *num);

/**
 * VHOST_USER_SET_MEM_TABLE: describe guest memory; the region fds travel
 * with the message (SCM_RIGHTS) and stay the caller's.
 * @regions: 1..VHOST_MEMORY_BASELINE_NREGIONS regions; "userspace address"
 *           is each region's @addr.
 */
int vdk_vhost_user_frontend_set_mem_table(
	struct vdk_vhost_user_frontend *fe,
	const struct vdk_vhost_user_frontend_region *regions, uint32_t n);

/**
 * VHOST_USER_GET_CONFIG (needs VHOST_USER_PROTOCOL_F_CONFIG): @len bytes
 * (≤ VHOST_USER_MAX_CONFIG_SIZE) of device configuration at byte @offset
 * into @buf. -EIO also if the back-end answers with another size.
 */
int vdk_vhost_user_frontend_get_config(struct vdk_vhost_user_frontend *fe,
				       uint32_t offset, void *buf,
				       uint32_t len);

/** VHOST_USER_SET_CONFIG (needs VHOST_USER_PROTOCOL_F_CONFIG). */
int vdk_vhost_user_frontend_set_config(struct vdk_vhost_user_frontend *fe,
				       uint32_t offset, const void *buf,
				       uint32_t len);

/** VHOST_USER_SET_VRING_NUM: ring @index has @num entries. */
int vdk_vhost_user_frontend_set_vring_num(struct vdk_vhost_user_frontend *fe,
					  uint32_t index, uint32_t num);

/**
 * VHOST_USER_SET_VRING_ADDR: ring @index's descriptor table, available
 * ring and used ring, as addresses in this process (the spec's "user
 * addresses", translated by the back-end through the memory table).
 */
int vdk_vhost_user_frontend_set_vring_addr(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, uint64_t desc,
					   uint64_t avail, uint64_t used);

/** VHOST_USER_SET_VRING_BASE: the next available index to read. */
int vdk_vhost_user_frontend_set_vring_base(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, uint32_t base);

/** VHOST_USER_GET_VRING_BASE: stop ring @index (spec "Ring states");
 * @base is set to its next available index. */
int vdk_vhost_user_frontend_get_vring_base(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, uint32_t *base);

/** VHOST_USER_SET_VRING_KICK: @fd (an eventfd, stays the caller's) is ring
 * @index's kick; starts the ring. */
int vdk_vhost_user_frontend_set_vring_kick(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, int fd);

/** VHOST_USER_SET_VRING_CALL: @fd (stays the caller's) is ring @index's
 * call eventfd (used buffer notifications). */
int vdk_vhost_user_frontend_set_vring_call(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, int fd);

/** VHOST_USER_SET_VRING_ENABLE (needs protocol features): enable or
 * disable ring @index. */
int vdk_vhost_user_frontend_set_vring_enable(struct vdk_vhost_user_frontend *fe,
					     uint32_t index, bool enable);

/**
 * VHOST_USER_SET_BACKEND_REQ_FD (needs VHOST_USER_PROTOCOL_F_BACKEND_REQ):
 * @fd (one end of a socketpair, stays the caller's) becomes the back-end's
 * channel for its own requests (spec "Back-end communication"), which the
 * caller reads. -EINVAL for a negative @fd.
 */
int vdk_vhost_user_frontend_set_backend_req_fd(
	struct vdk_vhost_user_frontend *fe, int fd);

/** vdk_vhost_user_frontend_socket() - the connection's socket (owned by
 * @fe), to watch for the back-end going away (EPOLLHUP); never read or
 * write it. */
int vdk_vhost_user_frontend_socket(const struct vdk_vhost_user_frontend *fe);

/**
 * VHOST_USER_GET_INFLIGHT_FD (needs VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD):
 * ask the back-end for a shared region where it tracks in-flight
 * descriptors of @num_queues rings of up to @queue_size entries (spec
 * "Inflight I/O tracking").
 * @fd:          set to the region's fd (owned by the caller from now on).
 * @mmap_size:   set to its size, bytes (never 0 on success).
 * @mmap_offset: set to its offset in @fd, bytes.
 * -EIO also if the reply carries no fd or a size of 0 (no region).
 */
int vdk_vhost_user_frontend_get_inflight_fd(struct vdk_vhost_user_frontend *fe,
					    uint16_t num_queues,
					    uint16_t queue_size, int *fd,
					    uint64_t *mmap_size,
					    uint64_t *mmap_offset);

/**
 * VHOST_USER_SET_INFLIGHT_FD (needs VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD):
 * hand a (re)connected back-end the region vdk_vhost_user_frontend_get_
 * inflight_fd() gave, so that it resubmits what was in flight when the
 * previous back-end went away. @fd stays the caller's.
 */
int vdk_vhost_user_frontend_set_inflight_fd(struct vdk_vhost_user_frontend *fe,
					    int fd, uint64_t mmap_size,
					    uint64_t mmap_offset,
					    uint16_t num_queues,
					    uint16_t queue_size);

/* ---- driver transport over vhost-user --------------------------------- */

/** Most queues a struct vdk_vhost_user_driver drives. */
#define VDK_VHOST_USER_DRIVER_MAX_QUEUES 16

/** struct vdk_vhost_user_driver_config - what vdk_vhost_user_driver_init()
 * needs. vhost-user does not tell the device type or queue sizes, so the
 * caller does. */
struct vdk_vhost_user_driver_config {
	uint32_t device_id; /**< VIRTIO_ID_* the back-end implements */
	/** Queues to offer the driver, 1..VDK_VHOST_USER_DRIVER_MAX_QUEUES;
	 * 0: what GET_QUEUE_NUM says (1 without VHOST_USER_PROTOCOL_F_MQ),
	 * capped at the maximum. */
	uint16_t num_queues;
	/** Largest queue size reported to the driver (a power of two); the
	 * back-end may still refuse it in SET_VRING_NUM. */
	uint16_t max_queue_size;
	/** Guest memory: 1..VHOST_MEMORY_BASELINE_NREGIONS regions, copied. */
	const struct vdk_vhost_user_frontend_region *regions;
	uint32_t nregions;
};

/** Per-queue state of struct vdk_vhost_user_driver (private). */
struct vdk_vhost_user_driver_queue {
	int kick_fd;	 /**< eventfd we write, the back-end reads */
	int call_fd;	 /**< eventfd the back-end writes, we read */
	uint16_t size;	 /**< entries (SET_VRING_NUM) */
	bool configured; /**< queue_set done: NUM, ADDR, BASE, CALL sent */
	bool started;	 /**< KICK and ENABLE sent */
};

/**
 * struct vdk_vhost_user_driver - a driver-side transport over a vhost-user
 * front-end. Initialise with vdk_vhost_user_driver_init(); use @transport
 * with vdk_driver_begin_init() etc. and @hal with vdk_driver_virtq_init().
 * Fields are read-only to the user.
 *
 * Mapping (virtio 1.2 §3.1.1 onto the vhost-user spec): device features =
 * GET_FEATURES without bit 30; FEATURES_OK = SET_FEATURES (refused: the
 * bit does not stick); queue_set = SET_VRING_NUM/ADDR/BASE/CALL; DRIVER_OK
 * = SET_VRING_KICK and SET_VRING_ENABLE on every configured queue (failure:
 * DEVICE_NEEDS_RESET); status 0 = GET_VRING_BASE on every started queue;
 * configuration = GET/SET_CONFIG (the generation is constant: vhost-user
 * has none).
 */
struct vdk_vhost_user_driver {
	struct vdk_driver_transport transport; /**< ops + ctx (this struct) */
	struct vdk_driver_hal hal; /**< pointer → gpa over the regions */
	struct vdk_vhost_user_frontend *fe; /**< not owned */
	struct vdk_vhost_user_frontend_region
		regions[VHOST_MEMORY_BASELINE_NREGIONS];
	uint32_t nregions;
	uint32_t device_id;
	uint64_t device_features; /**< GET_FEATURES, bit 30 cleared */
	uint64_t driver_features; /**< written by the driver */
	bool protocol;		  /**< VHOST_USER_F_PROTOCOL_FEATURES in use */
	uint8_t status;		  /**< device status as the driver sees it */
	uint16_t num_queues;
	uint16_t max_queue_size;
	struct vdk_vhost_user_driver_queue q[VDK_VHOST_USER_DRIVER_MAX_QUEUES];
};

/** The transport ops (ctx: struct vdk_vhost_user_driver). */
extern const struct vdk_driver_transport_ops vdk_vhost_user_driver_ops;

/**
 * vdk_vhost_user_driver_init() - negotiate with the back-end behind @fe
 * (vdk_vhost_user_frontend_negotiate() asking for MQ, REPLY_ACK and
 * CONFIG), send the memory table, and create each queue's kick and call
 * eventfds (non-blocking). The device status starts at 0: continue with
 * vdk_driver_begin_init().
 * @d:   caller's storage; vdk_vhost_user_driver_fini() releases it.
 * @fe:  a connected front-end, not negotiated yet; not owned, outlives @d.
 * @cfg: options; copied.
 *
 * Return: 0; -EINVAL for a bad @cfg (no or too many regions, queue count,
 * queue size not a power of two); -ENODEV if the back-end offers no queue;
 * the front-end's errors; -errno from eventfd(). On failure nothing is
 * left to release.
 */
int vdk_vhost_user_driver_init(struct vdk_vhost_user_driver *d,
			       struct vdk_vhost_user_frontend *fe,
			       const struct vdk_vhost_user_driver_config *cfg);

/**
 * vdk_vhost_user_driver_fini() - stop every started ring (GET_VRING_BASE,
 * best effort) and close the eventfds. The front-end stays open.
 */
void vdk_vhost_user_driver_fini(struct vdk_vhost_user_driver *d);

/**
 * vdk_vhost_user_driver_call_fd() - queue @queue's call eventfd (owned by
 * @d), to poll for used buffer notifications; read it (8 bytes) to
 * acknowledge. -ERANGE for a bad @queue.
 */
int vdk_vhost_user_driver_call_fd(const struct vdk_vhost_user_driver *d,
				  uint16_t queue);

/* ---- a vhost-user back-end as a struct vdk_device --------------------- */

/**
 * struct vdk_vhost_user_device_config - what vdk_vhost_user_device_new()
 * needs. vhost-user does not tell the device type, the queue sizes or the
 * configuration size, so the caller does.
 */
struct vdk_vhost_user_device_config {
	const char *socket_path; /**< the back-end's Unix socket */
	uint32_t device_id;	 /**< VIRTIO_ID_* the back-end implements */
	/** Queues, 1..VDK_DEVICE_MAX_QUEUES; 0: what GET_QUEUE_NUM says (1
	 * without VHOST_USER_PROTOCOL_F_MQ), capped at the maximum. More
	 * than GET_QUEUE_NUM is refused. */
	uint16_t num_queues;
	/** Largest queue size offered to the driver (a power of two); 0:
	 * 256. */
	uint16_t queue_max_size;
	/** Bytes of configuration space read with GET_CONFIG, ≤
	 * VHOST_USER_MAX_CONFIG_SIZE; 0: the size of the device type's
	 * config struct (virtio-blk: struct virtio_blk_config; rng: none). */
	uint32_t config_size;
};

/** struct vdk_vhost_user_device - a back-end seen as a device; opaque. */
struct vdk_vhost_user_device;

/**
 * vdk_vhost_user_device_new() - connect to the vhost-user back-end at
 * @cfg->socket_path and wrap it as a struct vdk_device (state NEW) that any
 * transport (virtio-mmio, virtio-pci) can carry, as QEMU's
 * vhost-user-blk/-rng do (vhost-user spec; virtio 1.2 §3).
 *
 * Mapping: features = GET_FEATURES without VHOST_USER_F_PROTOCOL_FEATURES,
 * VHOST_F_LOG_ALL, VIRTIO_F_RING_PACKED (vdk's rings are split),
 * VIRTIO_F_NOTIFICATION_DATA and VIRTIO_F_SR_IOV;
 * configuration = GET_CONFIG at connect, kept, re-read when the back-end
 * sends VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on its channel (then a
 * configuration change notification); driver writes = SET_CONFIG;
 * activate = SET_FEATURES, SET_MEM_TABLE (every region of the guest map,
 * which must be fd-backed, e.g. vdk_mem_add_memfd(), ≤
 * VHOST_MEMORY_BASELINE_NREGIONS), then each ready queue started;
 * start_queue = SET_VRING_NUM/BASE/ADDR/CALL/KICK and SET_VRING_ENABLE;
 * stop_queue and reset = GET_VRING_BASE (the queue comes back with the
 * back-end's next available index and the used ring's index);
 * queue_notify = a write to the ring's kick eventfd; the ring's call
 * eventfd sits on the loop given by attach_loop and becomes
 * vdk_interrupt_signal_used_queue(). The device needs a loop
 * (vdk_device_attach_loop()) to deliver used buffer notifications.
 * Direct notifications (no hop through the host): set_kick_fd (a KVM
 * ioeventfd on the queue's notification address) becomes the ring's kick
 * fd, so the guest's notifications reach the back-end inside the kernel;
 * set_call_fd (a KVM irqfd) becomes the ring's call fd instead of ours, so
 * the back-end interrupts the guest itself (the transport must then be
 * told: vdk_mmio_set_direct_used_notify()). Both are kept for every later
 * back-end.
 *
 * Reconnection (as QEMU's vhost-user-blk): once a loop is attached, the
 * connection's socket is watched; when the back-end goes away (EPOLLHUP)
 * the device tries @cfg->socket_path again every 100 ms, and a new
 * back-end gets the negotiation, SET_FEATURES, SET_MEM_TABLE,
 * SET_INFLIGHT_FD with the region the first one gave (GET_INFLIGHT_FD, with
 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD; a fresh one after each device
 * reset) and every started ring, resumed at the used ring's index: the
 * back-end resubmits what was in flight. Meanwhile the guest's requests
 * wait; device ops succeed and take effect on reconnection. A new
 * back-end that lacks a feature the driver accepted, or has fewer queues,
 * is refused and tried again.
 *
 * The back-end is not trusted: replies are checked by the front-end; a
 * request that fails (bad reply, timeout) fails the op (activate,
 * start_queue) and the queue does not start; a back-end channel message
 * that cannot be framed closes the channel; nothing crashes or blocks the
 * loop beyond the reply timeout.
 *
 * Threading: the device ops may be called from the control thread while
 * the loop thread delivers notifications; a mutex orders them.
 *
 * @cfg: options; copied.
 * @err: set to 0 or: -EINVAL for a bad @cfg; -ENAMETOOLONG, -ENOENT,
 *       -ECONNREFUSED (and other connect() errors) for the socket;
 *       -EOPNOTSUPP if a configuration space is needed and the back-end
 *       lacks VHOST_USER_PROTOCOL_F_CONFIG; -ERANGE if @cfg->num_queues
 *       exceeds what the back-end supports; -ENODEV if it offers no
 *       queue; -EIO for a broken exchange; -ENOMEM; -errno of eventfd().
 *
 * Return: the device (its struct vdk_device from
 * vdk_vhost_user_device_vdk(), freed by vdk_device_fini() or
 * vdk_vhost_user_device_free()), or NULL.
 */
struct vdk_vhost_user_device *
vdk_vhost_user_device_new(const struct vdk_vhost_user_device_config *cfg,
			  int *err);

/** vdk_vhost_user_device_vdk() - the framework handle to give a transport
 * (or vdk-vmm's vmm_devices_add()). */
struct vdk_device *vdk_vhost_user_device_vdk(struct vdk_vhost_user_device *d);

/** vdk_vhost_user_device_free() - vdk_device_fini() of its handle: reset
 * (GET_VRING_BASE) if active, take its fds off the loop, close the
 * connection, free. NULL is accepted. */
void vdk_vhost_user_device_free(struct vdk_vhost_user_device *d);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_VHOST_USER_FRONTEND_H */
