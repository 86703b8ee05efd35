/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event loop a device, a vhost-user connection and a program register
 * their file descriptors with: a small interface (struct vdk_loop_ops: add,
 * modify, remove an fd with a callback; optionally defer a call), so that a
 * VMM with a loop of its own (glib, libvirt, its own epoll) can host vdk
 * devices, and one reference implementation over epoll.
 *
 * The library never starts a thread the program did not ask for: whoever
 * owns the loop runs it (vdk_loop_epoll_run() or its own dispatcher), and
 * every callback runs on that thread. A multiqueue device may be given one
 * loop per queue group by a program that runs several.
 *
 * Who registers what (Firecracker's MutEventSubscriber::init, rust-vmm's
 * register_listener): a device adds its own fds (io_uring completion
 * eventfds, output readiness, timers) from its attach_loop op
 * (<vdk/device.h>); a vhost-user connection adds its socket and kick fds
 * (<vdk/vhost_user.h>); a program adds its signals and input. Nobody adds
 * another party's private fds.
 */
#ifndef VDK_LOOP_H
#define VDK_LOOP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* Event bits; equal in value to EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP (a static
 * assert in src/loop.c checks it), so that this header need not include
 * <sys/epoll.h>. ERR and HUP are always reported, asked for or not. */
#define VDK_LOOP_IN  0x001u /**< readable */
#define VDK_LOOP_OUT 0x004u /**< writable */
#define VDK_LOOP_ERR 0x008u /**< error condition */
#define VDK_LOOP_HUP 0x010u /**< hang-up */

/**
 * vdk_loop_fn - a callback: @fd is ready with @events (VDK_LOOP_* bits), or,
 * for a deferred call, @fd is -1 and @events 0. Runs on the loop's thread.
 * It may add, modify and remove any fd (its own included) and defer calls.
 */
typedef void vdk_loop_fn(void *opaque, int fd, uint32_t events);

/**
 * struct vdk_loop_ops - the loop interface; anyone can implement it.
 * @impl is struct vdk_loop.impl. Every member but @defer is mandatory.
 * The rules an implementation keeps (the epoll one does):
 *   - one callback per fd; @add of an fd already added fails with -EEXIST;
 *   - @add/@modify/@remove may be called from any thread;
 *   - when @remove returns, the fd's callback is not running and will never
 *     run again: from another thread it waits for a dispatch in progress,
 *     from inside a callback on the loop's thread it is immediate (other
 *     events of the same round for that fd are dropped).
 */
struct vdk_loop_ops {
	/** Watch @fd for @events; call @fn(@opaque, fd, events) when ready.
	 * Return 0, -EEXIST, -EINVAL, or -errno of the mechanism. */
	int (*add)(void *impl, int fd, uint32_t events, vdk_loop_fn *fn,
		   void *opaque);
	/** Change the events of an added @fd (0 pauses it). 0, -ENOENT. */
	int (*modify)(void *impl, int fd, uint32_t events);
	/** Stop watching @fd (see the rule above). 0, -ENOENT. */
	int (*remove)(void *impl, int fd);
	/** Optional: run @fn(@opaque, -1, 0) once on the loop's thread soon.
	 * Any thread. 0 or -ENOMEM. */
	int (*defer)(void *impl, vdk_loop_fn *fn, void *opaque);
};

/** struct vdk_loop - a loop: its ops and their first argument. */
struct vdk_loop {
	const struct vdk_loop_ops *ops;
	void *impl;
};

/**
 * vdk_loop_add() - watch @fd (not owned: the caller closes it, after
 * vdk_loop_remove()) for @events; @fn(@opaque, @fd, events) runs on the
 * loop's thread when it is ready. Level-triggered: a callback must consume
 * what made the fd ready, or pause it with vdk_loop_modify().
 *
 * Return: 0; -EINVAL for a NULL @loop or @fn or a negative @fd; -EEXIST if
 * @fd is already added; -errno of the implementation (-EPERM for a regular
 * file with epoll: it cannot be polled).
 */
int vdk_loop_add(struct vdk_loop *loop, int fd, uint32_t events,
		 vdk_loop_fn *fn, void *opaque);

/**
 * vdk_loop_modify() - watch added @fd for @events instead (0: none, the fd
 * stays added but its callback does not run).
 * Return: 0; -ENOENT if @fd is not added; -EINVAL; -errno.
 */
int vdk_loop_modify(struct vdk_loop *loop, int fd, uint32_t events);

/**
 * vdk_loop_remove() - stop watching @fd. When this returns, @fd's callback
 * is not running and never runs again (from another thread it waits for a
 * dispatch in progress to end, so do not call it from another thread while
 * holding a lock that callback takes).
 * Return: 0; -ENOENT if @fd is not added; -EINVAL.
 */
int vdk_loop_remove(struct vdk_loop *loop, int fd);

/**
 * vdk_loop_defer() - run @fn(@opaque, -1, 0) once on the loop's thread, soon
 * (after the current round). Any thread.
 * Return: 0; -EOPNOTSUPP if the loop has no defer op; -ENOMEM; -EINVAL.
 */
int vdk_loop_defer(struct vdk_loop *loop, vdk_loop_fn *fn, void *opaque);

/* ---- the reference implementation over epoll ---------------------------- */

/**
 * vdk_loop_epoll_new() - a new epoll loop (library-allocated).
 * @err: set to 0, -ENOMEM or -errno of epoll_create1()/eventfd(); may be
 *       NULL.
 * Return: the loop (vdk_loop_epoll_free()), or NULL.
 */
struct vdk_loop *vdk_loop_epoll_new(int *err);

/**
 * vdk_loop_epoll_free() - free @loop (NULL accepted). Must not run; fds still
 * added are forgotten (not closed), deferred calls dropped.
 */
void vdk_loop_epoll_free(struct vdk_loop *loop);

/**
 * vdk_loop_epoll_run() - dispatch on the calling thread until
 * vdk_loop_epoll_stop(). A stop requested before run() makes it return at
 * once (the request is consumed).
 * Return: 0 when stopped; -errno if epoll_wait() fails (not EINTR).
 */
int vdk_loop_epoll_run(struct vdk_loop *loop);

/**
 * vdk_loop_epoll_run_once() - one round: wait up to @timeout_ms
 * milliseconds (-1 forever, 0 not at all) and dispatch what is ready, then
 * the deferred calls.
 * Return: the number of callbacks run (deferred ones included), 0 on a
 * timeout or a stop request (which it consumes); -errno of epoll_wait()
 * (-EINTR included).
 */
int vdk_loop_epoll_run_once(struct vdk_loop *loop, int timeout_ms);

/**
 * vdk_loop_epoll_stop() - make vdk_loop_epoll_run() return after the
 * callback in progress. Any thread; async-signal-safe (one write() to an
 * eventfd).
 */
void vdk_loop_epoll_stop(struct vdk_loop *loop);

/**
 * vdk_loop_epoll_set_poll() - busy-poll: after a round that dispatched
 * something, keep checking without sleeping (epoll_wait() with a zero
 * timeout) for up to @poll_us microseconds before blocking, so that an event
 * arriving soon costs no wake-up (as QEMU's AioContext polling). 0 (the
 * default) never polls. Costs CPU time while events keep coming. Call from
 * the loop's thread or before it runs.
 */
void vdk_loop_epoll_set_poll(struct vdk_loop *loop, uint32_t poll_us);

/**
 * vdk_loop_epoll_fd() - the epoll fd, to nest this loop in another (it is
 * readable when a round would dispatch something; deferred calls and stop
 * requests included). Owned by the loop.
 */
int vdk_loop_epoll_fd(const struct vdk_loop *loop);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_LOOP_H */
