/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost-user backend: serve a virtio device to another process (the
 * front-end, normally QEMU) over a Unix domain socket, following QEMU's
 * docs/interop/vhost-user.rst ("the vhost-user spec" below).
 *
 * The wire format (message header, payloads, request ids, feature bits) is
 * in <vdk/spec/vhost_user.h>, included here. Two parts:
 *   - struct vdk_vhost_user_backend_ops: what a device implements to be
 *     served (semantics of crosvm's VhostUserDevice / DeviceRequestHandler),
 *     plus an adapter that serves any in-process struct vdk_device;
 *   - struct vdk_vhost_user: one connection. The library owns no event loop:
 *     it exposes the socket fd and the per-ring kick fds, and the caller
 *     calls vdk_vhost_user_process_message() / vdk_vhost_user_handle_kick()
 *     when they are readable, or lets vdk_vhost_user_run() do it with epoll.
 *
 * The front-end is not trusted. Every request is checked against one table
 * (request id, payload size, file descriptors allowed, queue index) before
 * any handler runs; every received fd that no handler takes is closed; a
 * message that breaks the framing (bad version, oversized, truncated) marks
 * the connection broken.
 *
 * Ring states (spec "Ring states"): a ring is started by SET_VRING_KICK and
 * stopped by GET_VRING_BASE; it is enabled by SET_VRING_ENABLE, or from
 * SET_FEATURES on if VHOST_USER_F_PROTOCOL_FEATURES was not negotiated. The
 * backend's start_queue() runs when a ring is started, enabled and guest
 * memory is known; stop_queue() when any of the three stops being true.
 *
 * Also served: the back-end channel (SET_BACKEND_REQ_FD; a device's
 * configuration change becomes VHOST_USER_BACKEND_CONFIG_CHANGE_MSG), the
 * inflight region (GET/SET_INFLIGHT_FD, spec "Inflight I/O tracking"; kept
 * for every backend through the queues' track hook, and on a restart the
 * chains left in flight are handed out again by vdk_virtq_pop() before new
 * available ones, see src/vhost_user/inflight.c), device state transfer
 * (SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE, the backend's CBOR snapshot
 * moved by a worker thread) and GET_SHMEM_CONFIG (no regions).
 *
 * Threading: one connection is used by one thread (process_message,
 * handle_kick, run). The backend may run its own workers between
 * start_queue() and stop_queue(); they may signal used buffers and
 * configuration changes through the struct vdk_interrupt they were given,
 * from any thread, for any queue, at any time until the connection is
 * freed.
 *
 * File descriptors the front-end chooses (the rule): they may be of any
 * kind and shared with the front-end, and the library never blocks on one
 * nor changes its flags.
 *   - call, kick and error fds (SET_VRING_CALL/KICK/ERR) must be eventfds
 *     with O_NONBLOCK set (EFD_NONBLOCK; QEMU, libvhost-user front-ends,
 *     crosvm, Cloud Hypervisor and DPDK create them so). Anything else (a
 *     blocking eventfd, a pipe, a socket, a regular file, /dev/null, a
 *     memfd) is refused: the request fails with -EINVAL, the error log
 *     names the kind, and the ring keeps its previous fd. The kind is read
 *     from /proc/self/fd; without /proc any anonymous-inode fd passes.
 *     A kick is read with RWF_NOWAIT (never waits, even if the front-end
 *     drains the counter itself or clears O_NONBLOCK later); a call or
 *     error write to a full counter gives EAGAIN (a signal is pending
 *     anyway). A front-end that clears O_NONBLOCK on its own call fd
 *     after handing it over and fills the counter can still make that
 *     ring's write wait (Linux offers no non-blocking eventfd write on a
 *     blocking file: RWF_NOWAIT gives EOPNOTSUPP, /proc reopen ENXIO);
 *     the write is interrupted by any signal and never retried, so a
 *     program that stops on SIGTERM/SIGINT still does (the tools also end
 *     themselves 1 s after the signal whatever a thread waits on).
 *   - the device-state fd (SET_DEVICE_STATE_FD) may be a pipe, a socket, a
 *     regular file or any non-blocking file: the transfer worker waits in
 *     poll() with a cancel eventfd and moves bytes with RWF_NOWAIT (plain
 *     I/O only for regular files and files that are non-blocking), so a
 *     cancel or the end of the connection always joins it at once.
 *   - the inflight fd (SET_INFLIGHT_FD) must carry F_SEAL_SHRINK, and so
 *     must guest RAM (SET_MEM_TABLE, ADD_MEM_REG) unless the program
 *     allows unsealed memory: see vdk_vhost_user_set_allow_unsealed().
 *
 * Signals: a pipe whose reader went away makes a write raise SIGPIPE (the
 * state transfer writes to the front-end's pipe). A program using this
 * library must ignore SIGPIPE (the vdk-vhost-user-* tools do).
 *
 * File descriptors the front-end replaces while rings run (the rule):
 *   - call fd (SET_VRING_CALL, also dropped by GET_VRING_BASE and
 *     RESET_DEVICE): written by device workers. The library publishes the
 *     new fd, waits until every worker that may have loaded the old one has
 *     finished its write (a per-ring guard count, RCU-like; see
 *     vdk_interrupt_set_queue_fd() in <vdk/device.h>), and only then closes
 *     the old fd. A notification therefore goes to the old or the new call
 *     fd, never to a closed fd or to another file that reuses its number.
 *     Workers never wait; a notification costs one eventfd write.
 *   - kick fd (SET_VRING_KICK) and error fd (SET_VRING_ERR): used only on
 *     the connection's thread (vdk_vhost_user_handle_kick()), so they are
 *     replaced between two uses, never during one. A caller's event loop is
 *     told to stop watching a kick fd (struct vdk_vhost_user_watch_ops
 *     remove) before it is closed and must identify kicks by queue index,
 *     not by fd; it must call handle_kick on the connection's thread.
 */
#ifndef VDK_VHOST_USER_H
#define VDK_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/mem.h>
#include <vdk/spec/vhost_user.h>
#include <vdk/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- library limits ---------------------------------------------------- */

/**
 * Largest payload the library reads (header size field). Anything larger
 * breaks the connection; the largest payload of a known request is 268
 * bytes (GET_CONFIG).
 */
#define VDK_VHOST_USER_MAX_PAYLOAD 4096u

/** Largest device state (CBOR bytes) SET_DEVICE_STATE_FD loads. */
#define VDK_VHOST_USER_MAX_STATE (16u << 20)

/* ---- backend interface ------------------------------------------------- */

/**
 * struct vdk_vhost_user_backend_ops - what a device served over vhost-user
 * implements. @be is the pointer given to vdk_vhost_user_new(). Members
 * marked optional may be NULL (the default is described per member).
 */
struct vdk_vhost_user_backend_ops {
	/** Short name for messages ("rng", "blk"). */
	const char *name;
	/** Number of queues; 1..VDK_DEVICE_MAX_QUEUES (GET_QUEUE_NUM). */
	uint16_t (*num_queues)(void *be);
	/** Largest size of queue @index; a power of two ≤ 32768. */
	uint16_t (*queue_max_size)(void *be, uint16_t index);
	/** Virtio feature bits offered (GET_FEATURES); the library adds
	 * VHOST_USER_F_PROTOCOL_FEATURES. */
	uint64_t (*features)(void *be);
	/** Optional: the front-end acked @features (without bit 30). */
	void (*ack_features)(void *be, uint64_t features);
	/** Optional: protocol features the device allows; the library offers
	 * the intersection with what it implements. NULL: all of those. */
	uint64_t (*protocol_features)(void *be);
	/** Bytes of device configuration space (0: no GET/SET_CONFIG). */
	uint32_t config_size;
	/** Optional: read @len bytes of configuration at @offset; the library
	 * has checked offset + len ≤ config_size. Return 0 or -errno. */
	int (*read_config)(void *be, uint32_t offset, void *data, uint32_t len);
	/** Optional: write configuration; same checks. NULL refuses writes. */
	int (*write_config)(void *be, uint32_t offset, const void *data,
			    uint32_t len);
	/**
	 * Start processing queue @index. @q is activated (its areas checked
	 * against @mem); @irq signals used buffers through the ring's call fd
	 * (vdk_interrupt_signal_used_queue(irq, index); from any thread, and
	 * safe while the front-end replaces the call fd, see "Threading"
	 * above). @q and @mem stay valid until stop_queue(@index) returns;
	 * @irq until the connection is freed. Return 0 or -errno.
	 */
	int (*start_queue)(void *be, uint16_t index, struct vdk_virtq *q,
			   const struct vdk_mem *mem,
			   struct vdk_interrupt *irq);
	/**
	 * Stop queue @index: finish or give back in-flight chains, stop
	 * touching the queue and guest memory. Returns the queue handed to
	 * start_queue() (ownership goes back to the library), or NULL if the
	 * queue was not started. With an inflight region, chains given back
	 * (popped, never returned) are handed out again by vdk_virtq_pop()
	 * when the ring next starts, in this process or a new one. Chains
	 * given back leave the queue's in_flight count when the ring stops
	 * (vdk_virtq_set_resubmit()), and re-enter it once each when popped
	 * again, so in_flight stays exact across restarts.
	 */
	struct vdk_virtq *(*stop_queue)(void *be, uint16_t index);
	/** Optional: the front-end notified queue @index (a kick). */
	void (*queue_notify)(void *be, uint16_t index);
	/** Forget the negotiated state (RESET_DEVICE, connection end); every
	 * queue is already stopped. Return 0 or -errno. */
	int (*reset)(void *be);
	/** Optional: every ring is stopped (spec "Suspended device state");
	 * the device must not touch guest memory until a queue starts. */
	int (*enter_suspended_state)(void *be);
	/** Optional: the device's state as a new CBOR item (caller decrefs);
	 * only called while suspended. */
	int (*snapshot)(void *be, cbor_item_t **out);
	/** Optional: load state from @item (borrowed) while suspended. */
	int (*restore)(void *be, const cbor_item_t *item);
	/**
	 * Ignored; kept for source compatibility. Every backend's queues are
	 * tracked (the library installs a vdk_virtq_set_track() hook on the
	 * queue it hands to start_queue()), so
	 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD is offered to all; a backend
	 * that does not want it masks it with protocol_features().
	 */
	bool tracks_inflight;
};

/**
 * struct vdk_vhost_user_device_adapter - serves an in-process struct
 * vdk_device as a vhost-user backend (caller's storage; see
 * vdk_vhost_user_backend_from_device()). The first ring to start activates
 * the device with that queue alone (the others NULL); when another ring
 * starts or stops, the device is put to sleep and woken with the new queue
 * set; when the last ring stops it stays asleep with its state. A feature
 * change between stop and start resets it first. A kick is
 * vdk_device_queue_notify(). So a driver may use any subset of the queues
 * (Linux uses min(num-queues, vCPUs); SeaBIOS only queue 0).
 */
struct vdk_vhost_user_device_adapter {
	struct vdk_vhost_user_backend_ops ops; /**< this adapter's table */
	struct vdk_device *dev;		       /**< not owned */
	struct vdk_virtq *queues[VDK_DEVICE_MAX_QUEUES]; /**< started ones */
	const struct vdk_mem *mem;
	struct vdk_interrupt *irq;
	uint64_t features; /**< acked by the front-end */
	uint16_t num_queues;
	uint16_t num_started;
};

/**
 * vdk_vhost_user_backend_from_device() - set up @ad to serve @dev.
 * @ad:  caller's storage; must outlive the connection using it.
 * @dev: an initialised device (vdk_device_init()), NEW or RESET, awake; not
 *       owned.
 * @ops: set to the backend ops (&@ad->ops, with the device's config_size)
 *       to pass to vdk_vhost_user_new() with @ad.
 *
 * Return: 0, or -EINVAL if @dev is NULL, ACTIVE or asleep.
 */
int vdk_vhost_user_backend_from_device(
	struct vdk_vhost_user_device_adapter *ad, struct vdk_device *dev,
	const struct vdk_vhost_user_backend_ops **ops);

/* ---- connection -------------------------------------------------------- */

/** struct vdk_vhost_user - one front-end connection; opaque. */
struct vdk_vhost_user;

/**
 * struct vdk_vhost_user_watch_ops - event-loop hooks for a caller that runs
 * its own loop (libvhost-user's set_watch/remove_watch). Called when a
 * ring's kick fd appears or goes away.
 */
struct vdk_vhost_user_watch_ops {
	/** Watch @fd for readability; call vdk_vhost_user_handle_kick(@queue)
	 * when it is. Return 0 or -errno. */
	int (*add)(void *opaque, int fd, uint16_t queue);
	/** Stop watching @fd (it is closed right after the call). */
	void (*remove)(void *opaque, int fd, uint16_t queue);
};

/**
 * vdk_vhost_user_new() - create the backend side of a connection.
 * @sock_fd: a connected AF_UNIX SOCK_STREAM socket; owned by the connection
 *           on success (closed by vdk_vhost_user_free()), left to the
 *           caller on failure. Its O_NONBLOCK flag does not matter: the
 *           library never blocks on it.
 * @ops:     backend ops; must outlive the connection.
 * @be:      passed to every op; not owned.
 * @err:     set to 0, -EINVAL (bad @ops or num_queues), or -ENOMEM.
 *
 * Return: the connection, or NULL.
 */
struct vdk_vhost_user *
vdk_vhost_user_new(int sock_fd, const struct vdk_vhost_user_backend_ops *ops,
		   void *be, int *err);

/**
 * vdk_vhost_user_free() - stop every running queue, reset the backend,
 * unmap guest memory, close the socket and every fd received. NULL is
 * accepted.
 */
void vdk_vhost_user_free(struct vdk_vhost_user *vu);

/**
 * vdk_vhost_user_set_allow_unsealed() - the guest memory policy.
 *
 * Guest RAM is shared with the front-end, which keeps its fd: a file it
 * shrinks after SET_MEM_TABLE / ADD_MEM_REG would make the next access to
 * the lost pages raise SIGBUS and kill the process. By default (@allow
 * false) a region's file must therefore be sealed with F_SEAL_SHRINK
 * (fcntl(F_ADD_SEALS); QEMU's memory-backend-memfd is, seal=on being its
 * default; a hugetlbfs memfd can be); any other file is refused: the
 * request fails with -EPERM and the log says why. With @allow true any
 * regular file of the right size is mapped (QEMU memory-backend-file on
 * /dev/shm or hugetlbfs), and the program accepts that a front-end that
 * truncates it can kill it. Applies to the regions added after the call.
 * The inflight fd (SET_INFLIGHT_FD) must always be sealed (-EPERM).
 */
void vdk_vhost_user_set_allow_unsealed(struct vdk_vhost_user *vu, bool allow);

/** vdk_vhost_user_socket_fd() - the protocol socket, to poll for input. */
int vdk_vhost_user_socket_fd(const struct vdk_vhost_user *vu);

/**
 * vdk_vhost_user_process_message() - read what the socket has (without
 * blocking) and, once a whole message is in, check and handle it and send
 * its reply.
 *
 * Return: 1 if a message was handled successfully; 0 if the message is not
 * complete yet (call again when the socket is readable); a request's error
 * as -errno (-EINVAL bad size/fds/values, -ERANGE queue index out of range,
 * -EOPNOTSUPP unknown or not negotiated request, -EBUSY, -EFAULT
 * addresses not covered by guest memory, ...; the connection stays usable);
 * or a fatal error that breaks the connection (vdk_vhost_user_is_broken()
 * then true, every later call returns -EIO): -ENOTCONN the front-end closed
 * the socket between messages, -EPROTO it closed it mid-message, -EMSGSIZE
 * payload above VDK_VHOST_USER_MAX_PAYLOAD, -EPROTONOSUPPORT bad version,
 * -EIO a reply could not be sent or a request that needs a reply failed,
 * -errno from recvmsg.
 */
int vdk_vhost_user_process_message(struct vdk_vhost_user *vu);

/** vdk_vhost_user_is_broken() - true once a fatal error ended the session. */
bool vdk_vhost_user_is_broken(const struct vdk_vhost_user *vu);

/** vdk_vhost_user_num_queues() - the backend's number of queues. */
uint16_t vdk_vhost_user_num_queues(const struct vdk_vhost_user *vu);

/**
 * vdk_vhost_user_kick_fd() - ring @queue's kick eventfd (owned by the
 * connection), or -ENOENT if it has none, -ERANGE for a bad @queue.
 */
int vdk_vhost_user_kick_fd(const struct vdk_vhost_user *vu, uint16_t queue);

/**
 * vdk_vhost_user_handle_kick() - consume a pending kick on ring @queue (if
 * its kick fd is readable; never blocks) and let the backend process the
 * queue if the ring runs. Also used for rings in polling mode (kick set
 * with VHOST_USER_VRING_NOFD_MASK). If the queue broke on a driver error,
 * the ring's error fd is signalled once.
 *
 * Return: 1 if the backend was notified, 0 if the ring does not run (the
 * kick is dropped), -ERANGE for a bad @queue.
 */
int vdk_vhost_user_handle_kick(struct vdk_vhost_user *vu, uint16_t queue);

/**
 * vdk_vhost_user_set_watch() - install event-loop hooks (NULL removes
 * them). The current kick fds are reported to @ops->add at once.
 * Return: 0, or the first error of @ops->add.
 */
int vdk_vhost_user_set_watch(struct vdk_vhost_user *vu,
			     const struct vdk_vhost_user_watch_ops *ops,
			     void *opaque);

/**
 * vdk_vhost_user_run() - serve the connection with an epoll loop until it
 * ends: the socket and every kick fd are watched; a kick never waits for a
 * slow message (messages are read without blocking) and a message is never
 * stuck behind kicks. Request errors are logged and serving goes on.
 * Replaces any watch hooks while it runs.
 *
 * Return: 0 when the front-end closed the connection between messages; the
 * fatal error otherwise (see vdk_vhost_user_process_message()), or -errno
 * from epoll.
 */
int vdk_vhost_user_run(struct vdk_vhost_user *vu);

/**
 * vdk_vhost_user_send_config_change() - tell the front-end that the device
 * configuration space changed: VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on the
 * back-end channel (spec "Back-end message types"), with NEED_REPLY when
 * VHOST_USER_PROTOCOL_F_REPLY_ACK is negotiated, then waiting up to one
 * second for the ack. A device signals the same through the struct
 * vdk_interrupt it was given (vdk_interrupt_signal_config_changed()).
 * Safe from any thread; the channel is serialised by a lock. Called from a
 * request handler (the control thread inside process_message), the message
 * is sent after that request's reply, so that neither side waits on the
 * other.
 *
 * Return: 0 (or 0 and deferred, see above); -ENOTCONN if no back-end
 * channel is set; -ETIMEDOUT if the front-end did not take or answer the
 * message in time, -EPROTO if it answered with something else (the channel
 * is closed in both cases, as its framing is then unknown); -EIO if it
 * reported failure; -errno from sendmsg/recv.
 */
int vdk_vhost_user_send_config_change(struct vdk_vhost_user *vu);

/**
 * vdk_vhost_user_queue_pop() - vdk_virtq_pop() on running ring @index. The
 * queue's track hook marks the popped head in flight in the inflight region
 * if the front-end set one (spec "Inflight I/O tracking": counter, then
 * inflight = 1); after a restart, the heads left in flight come first
 * (resubmission). Calling vdk_virtq_pop() on the queue given to
 * start_queue() does the same. Between start_queue() and stop_queue() of
 * that ring, on the thread that owns the queue.
 *
 * Return: as vdk_virtq_pop(); -ERANGE for a bad @index; -EIO if the ring
 * does not run.
 */
int vdk_vhost_user_queue_pop(struct vdk_vhost_user *vu, uint16_t index,
			     struct vdk_virtq_chain *chain);

/**
 * vdk_vhost_user_queue_add_used() - vdk_virtq_add_used() on ring @index,
 * keeping the inflight region in step (last_batch_head, then the used
 * element, then inflight = 0 and used_idx). vdk_virtq_add_used() on the
 * queue does the same except that the last two steps wait for the next pop
 * or used element, or for the ring to stop (both are crash-safe, spec
 * "When reconnecting"). Same rules as vdk_vhost_user_queue_pop().
 *
 * Return: as vdk_virtq_add_used(); -ERANGE for a bad @index; -EIO if the
 * ring does not run.
 */
int vdk_vhost_user_queue_add_used(struct vdk_vhost_user *vu, uint16_t index,
				  uint16_t head, uint32_t written);

/**
 * vdk_vhost_user_inflight_pending() - heads the inflight region showed in
 * flight when ring @index last started, in the order they were popped
 * (ascending counter), after the last used batch was settled (spec
 * "Inflight I/O tracking", "When reconnecting"). These are what the ring's
 * queue hands out again (vdk_virtq_set_resubmit()) before new available
 * buffers; the ring's next available index was set to the used index plus
 * their number.
 * @heads: filled with up to @max heads.
 *
 * Return: the number of pending heads (may exceed @max), -ERANGE for a bad
 * @index.
 */
int vdk_vhost_user_inflight_pending(const struct vdk_vhost_user *vu,
				    uint16_t index, uint16_t *heads,
				    size_t max);

/**
 * vdk_vhost_user_request_name() - "VHOST_USER_SET_MEM_TABLE" etc., or
 * "unknown".
 */
const char *vdk_vhost_user_request_name(uint32_t request);

#ifdef __cplusplus
}
#endif

#endif /* VDK_VHOST_USER_H */
