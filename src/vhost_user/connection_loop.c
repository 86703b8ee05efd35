// SPDX-License-Identifier: Apache-2.0
/*
 * A connection on an event loop (<vdk/loop.h>): its socket and every ring's
 * kick fd are registered on the loop with a callback each; rings running
 * without a kick fd (VHOST_USER_VRING_NOFD_MASK: polling mode) are polled
 * every millisecond from a timerfd that is on the loop only while such a
 * ring runs. When the connection breaks, its fds leave the loop and the
 * owner's closed callback runs (the server frees the connection there).
 *
 * vdk_vhost_user_run() is the same on a private epoll loop, for a
 * connection created without one.
 *
 * The back-end channel is not on the loop: the library writes to it and
 * reads each ack synchronously (with a timeout) under its lock, from
 * whatever thread signals a configuration change, so a loop callback
 * reading it would race those reads.
 */
#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"

static void on_kick(void *opaque, int fd, uint32_t events)
{
	struct vu_kick_ctx *k = opaque;

	(void)fd;
	(void)events;
	(void)vdk_vhost_user_handle_kick(k->vu, k->index);
	vu_poll_update(k->vu); /* the kick fd may have hung up */
}

static void on_poll_timer(void *opaque, int fd, uint32_t events)
{
	struct vdk_vhost_user *vu = opaque;
	uint64_t ticks;

	(void)events;
	(void)!read(fd, &ticks, sizeof(ticks));
	for (uint16_t i = 0; i < vu->num_queues && !vu->broken; i++)
		if (vu->rings[i].running && vu->rings[i].kick_fd < 0)
			(void)vdk_vhost_user_handle_kick(vu, i);
	vu_poll_update(vu);
}

static bool any_polled_ring(const struct vdk_vhost_user *vu)
{
	for (uint16_t i = 0; i < vu->num_queues; i++)
		if (vu->rings[i].running && vu->rings[i].kick_fd < 0)
			return true;
	return false;
}

void vu_poll_update(struct vdk_vhost_user *vu)
{
	bool want = vu->loop && !vu->broken && any_polled_ring(vu);
	struct itimerspec its = {0};

	if (want == vu->poll_armed)
		return;
	if (want && vu->poll_timer < 0) {
		vu->poll_timer = timerfd_create(CLOCK_MONOTONIC,
						TFD_CLOEXEC | TFD_NONBLOCK);
		if (vu->poll_timer < 0) {
			VDK_LOG_RL(&vu->rl, VDK_LOG_ERROR, VU_LOG,
				   "timerfd for polled rings: %s",
				   strerror(errno));
			return;
		}
	}
	if (want) {
		its.it_interval.tv_nsec = 1000000; /* 1 ms */
		its.it_value.tv_nsec = 1000000;
		if (vdk_loop_add(vu->loop, vu->poll_timer, VDK_LOOP_IN,
				 on_poll_timer, vu) < 0)
			return;
	} else if (vu->loop) {
		(void)vdk_loop_remove(vu->loop, vu->poll_timer);
	}
	(void)timerfd_settime(vu->poll_timer, 0, &its, NULL);
	vu->poll_armed = want;
}

/* The socket is readable (or hung up): one message, or the end. */
static void on_socket(void *opaque, int fd, uint32_t events)
{
	struct vdk_vhost_user *vu = opaque;
	vdk_vhost_user_closed_fn *closed;
	int ret;

	(void)fd;
	(void)events;
	ret = vdk_vhost_user_process_message(vu);
	if (!vu->broken) {
		vu_poll_update(vu);
		return;
	}
	/* The front-end going away, politely or not (a reset), is a
	 * disconnect; anything else is the fatal error. */
	if (ret == -ENOTCONN || ret == -ECONNRESET)
		ret = 0;
	vu_loop_detach(vu);
	closed = vu->closed_fn;
	if (closed)
		closed(vu->closed_opaque, vu, ret); /* may free @vu */
}

void vu_watch_add(struct vdk_vhost_user *vu, int fd, uint16_t i)
{
	int ret;

	if (fd < 0 || !vu->loop)
		return;
	ret = vdk_loop_add(vu->loop, fd, VDK_LOOP_IN, on_kick,
			   &vu->kick_ctx[i]);
	if (ret < 0)
		vdk_log(VDK_LOG_ERROR, VU_LOG,
			"queue %u: cannot watch kick fd: %s (the ring is "
			"served when the front-end sends a message)",
			i, strerror(-ret));
}

void vu_watch_remove(struct vdk_vhost_user *vu, int fd, uint16_t i)
{
	(void)i;
	if (fd >= 0 && vu->loop)
		(void)vdk_loop_remove(vu->loop, fd);
}

int vu_loop_attach(struct vdk_vhost_user *vu, struct vdk_loop *loop)
{
	int ret;

	if (vu->loop)
		return -EBUSY;
	ret = vdk_loop_add(loop, vu->sock, VDK_LOOP_IN, on_socket, vu);
	if (ret < 0)
		return ret;
	vu->loop = loop;
	for (uint16_t i = 0; i < vu->num_queues; i++)
		vu_watch_add(vu, vu->rings[i].kick_fd, i);
	vu_poll_update(vu);
	return 0;
}

void vu_loop_detach(struct vdk_vhost_user *vu)
{
	if (!vu->loop)
		return;
	if (vu->poll_armed) {
		(void)vdk_loop_remove(vu->loop, vu->poll_timer);
		vu->poll_armed = false;
	}
	for (uint16_t i = 0; i < vu->num_queues; i++)
		vu_watch_remove(vu, vu->rings[i].kick_fd, i);
	if (vu->sock >= 0)
		(void)vdk_loop_remove(vu->loop, vu->sock);
	vu->loop = NULL;
}

void vdk_vhost_user_on_close(struct vdk_vhost_user *vu,
			     vdk_vhost_user_closed_fn *fn, void *opaque)
{
	vu->closed_fn = fn;
	vu->closed_opaque = opaque;
}

/* vdk_vhost_user_run(): the private loop stops when the connection ends. */
struct run_ctx {
	struct vdk_loop *loop;
	int err;
	bool ended;
};

static void run_closed(void *opaque, struct vdk_vhost_user *vu, int err)
{
	struct run_ctx *r = opaque;

	(void)vu;
	r->err = err;
	r->ended = true;
	vdk_loop_epoll_stop(r->loop);
}

int vdk_vhost_user_run(struct vdk_vhost_user *vu)
{
	vdk_vhost_user_closed_fn *saved_fn = vu->closed_fn;
	void *saved_opaque = vu->closed_opaque;
	struct run_ctx r = {0};
	int ret;

	if (vu->broken)
		return -EIO;
	if (vu->loop)
		return -EBUSY;
	r.loop = vdk_loop_epoll_new(&ret);
	if (!r.loop)
		return ret;
	ret = vu_loop_attach(vu, r.loop);
	if (ret == 0) {
		vdk_vhost_user_on_close(vu, run_closed, &r);
		ret = vdk_loop_epoll_run(r.loop);
		if (ret == 0)
			ret = r.err;
	}
	vu_loop_detach(vu);
	vdk_vhost_user_on_close(vu, saved_fn, saved_opaque);
	vdk_loop_epoll_free(r.loop);
	return ret;
}
