/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost-user backend: serve a virtio device to another process (the
 * front-end, normally QEMU) over a Unix domain socket, following QEMU's
 * docs/interop/vhost-user.rst ("the vhost-user spec" below).
 *
 * The wire format (message header, payloads, request ids, feature bits) is
 * in <vdk/spec/vhost_user.h>, included here. Two parts, over the one device
 * interface of <vdk/device.h> and the loop of <vdk/loop.h>:
 *   - struct vdk_vhost_user: one connection serving one struct vdk_device.
 *     It registers its socket and the rings' kick fds on the struct
 *     vdk_loop it is given, and the caller runs the loop; the device
 *     registers its own fds there (vdk_device_attach_loop()).
 *   - struct vdk_vhost_user_server: listens on a Unix socket path or uses an
 *     inherited socket (systemd's LISTEN_FDS included), serves one front-end
 *     at a time and, when it disconnects, resets the device and waits for
 *     the next (QEMU's reconnect, a VM restart).
 *
 * How a ring maps onto the device (spec "Ring states"): the first ring to
 * run activates the device (vdk_device_activate(), with the acked features
 * and that queue alone); later rings start and stop with
 * vdk_device_start_queue() / vdk_device_stop_queue() while the others run;
 * a kick is vdk_device_queue_notify(); when every ring has stopped the
 * device is suspended (asleep, holding no memory map: the front-end may
 * change it) and the next ring wakes it; SET_FEATURES that changes the
 * features of an activated device (a new driver: firmware, then the OS)
 * resets it; the end of the connection resets it. A device without the
 * per-queue ops is put to sleep and woken with the new queue set instead. So a driver may use any subset of the queues (Linux uses
 * min(num-queues, vCPUs); SeaBIOS only queue 0).
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
 * device's queue starts when a ring is started, enabled and guest memory is
 * known, and stops when any of the three stops being true.
 *
 * Also served: the back-end channel (SET_BACKEND_REQ_FD; a device's
 * configuration change becomes VHOST_USER_BACKEND_CONFIG_CHANGE_MSG), the
 * inflight region (GET/SET_INFLIGHT_FD, spec "Inflight I/O tracking"; kept
 * for every backend through the queues' track hook, and on a restart the
 * chains left in flight are handed out again by vdk_virtq_pop() before new
 * available ones, see src/vhost_user/inflight.c), device state transfer
 * (SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE, the device's snapshot moved
 * by a worker thread) and GET_SHMEM_CONFIG (no regions).
 *
 * Threading: one connection is used by one thread, the loop's (its
 * callbacks, and process_message/handle_kick/run if the caller drives it).
 * The device may run its own workers between starting and stopping a
 * queue; they may signal used buffers and configuration changes through
 * the struct vdk_interrupt they were given, from any thread, for any queue,
 * at any time until the connection is freed.
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
 *     vdk_interrupt_set_queue_fd() in <vdk/interrupt.h>), and only then closes
 *     the old fd. A notification therefore goes to the old or the new call
 *     fd, never to a closed fd or to another file that reuses its number.
 *     Workers never wait; a notification costs one eventfd write.
 *   - kick fd (SET_VRING_KICK) and error fd (SET_VRING_ERR): used only on
 *     the connection's thread (vdk_vhost_user_handle_kick()), so they are
 *     replaced between two uses, never during one. A kick fd is removed
 *     from the loop (vdk_loop_remove(): its callback cannot run any more)
 *     before it is closed.
 */
#ifndef VDK_VHOST_USER_H
#define VDK_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/device.h>
#include <vdk/loop.h>
#include <vdk/mem.h>
#include <vdk/spec/vhost_user.h>
#include <vdk/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* ---- library limits ---------------------------------------------------- */

/**
 * Largest payload the library reads (header size field). Anything larger
 * breaks the connection; the largest payload of a known request is 268
 * bytes (GET_CONFIG).
 */
#define VDK_VHOST_USER_MAX_PAYLOAD 4096u

/** Largest device state (CBOR bytes) SET_DEVICE_STATE_FD loads. */
#define VDK_VHOST_USER_MAX_STATE (16u << 20)

/* ---- connection -------------------------------------------------------- */

/** struct vdk_vhost_user - one front-end connection; opaque. */
struct vdk_vhost_user;

/**
 * vdk_vhost_user_new() - create the backend side of a connection serving
 * device @dev.
 * @sock_fd: a connected AF_UNIX SOCK_STREAM socket; owned by the connection
 *           on success (closed by vdk_vhost_user_free()), left to the
 *           caller on failure. Its O_NONBLOCK flag does not matter: the
 *           library never blocks on it.
 * @dev:     an initialised device (vdk_device_init()), NEW or RESET, awake;
 *           not owned, it must outlive the connection. Attach it to @loop
 *           first (vdk_device_attach_loop()) if it has fds of its own
 *           (virtio-blk's io_uring completions); the server does that.
 * @loop:    the loop the connection registers its socket and kick fds on
 *           (not owned; it must outlive the connection), or NULL: then
 *           the caller drives it with vdk_vhost_user_run() or
 *           vdk_vhost_user_process_message()/vdk_vhost_user_handle_kick().
 * @err:     set to 0; -EINVAL (bad @sock_fd, @dev NULL, ACTIVE or asleep);
 *           -ENOMEM; -errno of vdk_loop_add().
 *
 * Return: the connection, or NULL.
 */
struct vdk_vhost_user *vdk_vhost_user_new(int sock_fd, struct vdk_device *dev,
					  struct vdk_loop *loop, int *err);

/**
 * vdk_vhost_user_closed_fn - the connection on @loop ended (the front-end
 * closed the socket, or a fatal protocol error, @err: 0 for a disconnect
 * between messages or a connection reset, else as
 * vdk_vhost_user_process_message()). Its fds are already off the loop; the
 * callback may free @vu (and must not use it after that).
 */
typedef void vdk_vhost_user_closed_fn(void *opaque, struct vdk_vhost_user *vu,
				      int err);

/**
 * vdk_vhost_user_on_close() - call @fn(@opaque, @vu, err) on the loop's
 * thread when a connection created with a loop ends (NULL: nothing is
 * called; the caller checks vdk_vhost_user_is_broken()).
 */
void vdk_vhost_user_on_close(struct vdk_vhost_user *vu,
			     vdk_vhost_user_closed_fn *fn, void *opaque);

/**
 * vdk_vhost_user_free() - take the connection's fds off its loop, stop every
 * running queue, reset the device, unmap guest memory, close the socket
 * and every fd received. NULL is accepted. On the loop's thread (or with
 * the loop not running).
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
 * vdk_vhost_user_run() - serve a connection created without a loop until it
 * ends, on a private epoll loop (vdk_loop_epoll_new()) that watches the
 * socket and every kick fd; a kick never waits for a slow message (messages
 * are read without blocking) and a message is never stuck behind kicks.
 * Request errors are logged and serving goes on. The device's own fds are
 * not watched (it was not attached to this loop): use a loop of your own
 * and vdk_vhost_user_new() with it for such devices.
 *
 * Return: 0 when the front-end closed the connection between messages; the
 * fatal error otherwise (see vdk_vhost_user_process_message()); -EBUSY if
 * the connection has a loop; -errno from epoll.
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
 * Return: 0 (or 0 and deferred, see above); -EOPNOTSUPP if the front-end
 * did not negotiate VHOST_USER_PROTOCOL_F_CONFIG (the spec allows the
 * message only then; QEMU's vhost-user-net does not negotiate it and keeps
 * its own copy of the configuration space); -ENOTCONN if no back-end
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

/* ---- server ------------------------------------------------------------ */

/** struct vdk_vhost_user_server - listens and serves; opaque. */
struct vdk_vhost_user_server;

/** What happened to a server (struct vdk_vhost_user_server_config.event). */
enum vdk_vhost_user_server_event {
	/** a front-end connected and is being served */
	VDK_VHOST_USER_SERVER_CONNECTED,
	/** it disconnected (err 0) or its connection failed (err -errno, as
	 * vdk_vhost_user_process_message()); the device was reset */
	VDK_VHOST_USER_SERVER_DISCONNECTED,
	/** no more front-ends will be served: max_connections reached, or
	 * the inherited connected socket closed. Typically: stop the loop. */
	VDK_VHOST_USER_SERVER_DONE,
};

/** vdk_vhost_user_server_event_fn - called on the loop's thread. */
typedef void
vdk_vhost_user_server_event_fn(void *opaque,
			       enum vdk_vhost_user_server_event event, int err);

/**
 * struct vdk_vhost_user_server_config - where the front-ends come from.
 * Exactly one of @socket_path and @fd; with neither, systemd socket
 * activation (LISTEN_PID = this process, LISTEN_FDS = 1: fd 3).
 */
struct vdk_vhost_user_server_config {
	/** Listen here. A socket file nobody answers on (left by a crashed
	 * run) is replaced; a socket a live process accepts on is refused
	 * (-EADDRINUSE), any other file too (-EEXIST). The file is removed
	 * by vdk_vhost_user_server_free(). */
	const char *socket_path;
	/** Or an inherited socket (owned by the server from then on): a
	 * listening one (SO_ACCEPTCONN) is accepted on, a connected one served
	 * as the only connection. -1 if none. */
	int fd;
	/** Front-ends to serve one after the other; 0 means no limit. A
	 * connection that closes before its first message (a liveness probe)
	 * does not count. After the last one the listening socket is closed
	 * and its file removed. */
	unsigned max_connections;
	/** vdk_vhost_user_set_allow_unsealed() for every connection. */
	bool allow_unsealed;
	vdk_vhost_user_server_event_fn *event; /**< optional */
	void *opaque;			       /**< for @event */
};

/**
 * vdk_vhost_user_server_new() - serve @dev over vhost-user on @loop: accept
 * one front-end, serve it (vdk_vhost_user_new()), and when it disconnects
 * reset the device and accept the next, until vdk_vhost_user_server_free().
 * A front-end that connects while another is served waits in the listen
 * backlog (the listening socket stays open, paused). Logs each connection and disconnection (INFO) and errors.
 * @dev:  initialised device, NEW or RESET and awake; not owned, must
 *        outlive the server. Attached to @loop here
 *        (vdk_device_attach_loop()) unless it has a loop already.
 * @loop: not owned; must outlive the server. Everything runs on its
 *        thread.
 * @err:  0; -EINVAL (no or two sources, a path too long for sun_path, @dev
 *        not NEW/RESET); -EADDRINUSE, -EEXIST (see @socket_path);
 *        -ENOTSOCK (@fd not a socket); -ENOMEM; -errno of socket calls or
 *        the loop.
 *
 * Return: the server, or NULL (an inherited @fd is then left open).
 */
struct vdk_vhost_user_server *
vdk_vhost_user_server_new(const struct vdk_vhost_user_server_config *cfg,
			  struct vdk_device *dev, struct vdk_loop *loop,
			  int *err);

/**
 * vdk_vhost_user_server_free() - end the connection (its queues stop and
 * the device is reset), stop listening, remove the socket file the server
 * created and take its fds off the loop. NULL accepted. On the loop's
 * thread, or with the loop not running.
 */
void vdk_vhost_user_server_free(struct vdk_vhost_user_server *srv);

/**
 * vdk_vhost_user_server_connections() - front-ends served to the end so far
 * (connections that sent at least one message and closed).
 */
unsigned
vdk_vhost_user_server_connections(const struct vdk_vhost_user_server *srv);

/**
 * vdk_vhost_user_request_name() - "VHOST_USER_SET_MEM_TABLE" etc., or
 * "unknown".
 */
const char *vdk_vhost_user_request_name(uint32_t request);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_VHOST_USER_H */
