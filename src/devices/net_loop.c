/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net on its event loop (<vdk/loop.h>): the device registers its own
 * event sources on the loop it is given (attach_loop):
 *  - each enabled pair's backend fd (tap) for VDK_LOOP_IN while the pair's
 *    receive queue has buffers: a packet waiting is received at once; with
 *    no buffers the fd is left out (events 0), so a level-triggered loop
 *    does not spin, and the next receive notification puts it back;
 *  - an eventfd through which a pass that used up its budget
 *    (VDK_NET_BUDGET) asks to be run again after the loop served everyone
 *    else (fairness between queues and devices);
 *  - with a backend that reports its link, a 200 ms timerfd that reads it
 *    (vdk_net_check_link()).
 * All are removed on reset (fds of pairs) and destroy (all), so no callback
 * runs on a device that is gone.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <vdk/devices/net.h>
#include <vdk/log.h>
#include <vdk/loop.h>

#include "net_internal.h"

static void on_rx_fd(void *opaque, int fd, uint32_t events)
{
	struct net_pair_ctx *c = opaque;

	(void)fd;
	(void)events;
	net_service(c->n, (uint16_t)(2 * c->pair));
}

void net_rx_watch(struct vdk_net *n, uint16_t pair, bool on)
{
	struct net_pair_ctx *c = &n->pair_ctx[pair];
	int fd, r;

	if (!n->loop || !n->be->ops->fd)
		return;
	fd = n->be->ops->fd(n->be->impl, pair);
	if (fd < 0)
		return;
	if (!c->added) {
		if (!on)
			return;
		c->n = n;
		c->pair = pair;
		r = vdk_loop_add(n->loop, fd, VDK_LOOP_IN, on_rx_fd, c);
		if (r < 0) {
			VDK_LOG_RL(&n->log_rl, VDK_LOG_ERROR, NET_MOD,
				   "pair %u: cannot watch the backend: %s",
				   pair, strerror(-r));
			return;
		}
		c->added = true;
		c->watching = true;
		return;
	}
	if (c->watching == on)
		return;
	if (vdk_loop_modify(n->loop, fd, on ? VDK_LOOP_IN : 0) == 0)
		c->watching = on;
}

void net_rx_unwatch(struct vdk_net *n, uint16_t pair)
{
	struct net_pair_ctx *c = &n->pair_ctx[pair];

	if (!c->added)
		return;
	(void)vdk_loop_remove(n->loop, n->be->ops->fd(n->be->impl, pair));
	c->added = false;
	c->watching = false;
}

static void on_more(void *opaque, int fd, uint32_t events)
{
	struct vdk_net *n = opaque;
	uint64_t v, pending = n->pending;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	n->pending = 0;
	for (uint16_t i = 0; i < VDK_DEVICE_MAX_QUEUES && pending; i++)
		if (pending & (1ull << i)) {
			pending &= ~(1ull << i);
			net_service(n, i);
		}
}

bool net_defer(struct vdk_net *n, uint16_t idx)
{
	uint64_t one = 1;

	if (n->more_fd < 0)
		return false;
	if (!n->pending && write(n->more_fd, &one, sizeof(one)) < 0)
		return false;
	n->pending |= 1ull << idx;
	return true;
}

static void on_link_timer(void *opaque, int fd, uint32_t events)
{
	struct vdk_net *n = opaque;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) && n->running)
		vdk_net_check_link(n);
}

int net_attach_loop(void *dev, struct vdk_loop *loop)
{
	struct vdk_net *n = dev;
	int r;

	n->more_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->more_fd < 0)
		return -errno;
	r = vdk_loop_add(loop, n->more_fd, VDK_LOOP_IN, on_more, n);
	if (r < 0) {
		close(n->more_fd);
		n->more_fd = -1;
		return r;
	}
	n->loop = loop;
	if (n->be->ops->link_up) {
		struct itimerspec its = {{0, 200000000}, {0, 200000000}};

		n->link_timer = timerfd_create(CLOCK_MONOTONIC,
					       TFD_CLOEXEC | TFD_NONBLOCK);
		if (n->link_timer >= 0 &&
		    (timerfd_settime(n->link_timer, 0, &its, NULL) < 0 ||
		     vdk_loop_add(loop, n->link_timer, VDK_LOOP_IN,
				  on_link_timer, n) < 0)) {
			close(n->link_timer);
			n->link_timer = -1;
		}
	}
	return 0;
}

void net_detach_loop(struct vdk_net *n)
{
	for (uint16_t p = 0; p < n->max_pairs; p++)
		net_rx_unwatch(n, p);
	if (!n->loop)
		return;
	if (n->more_fd >= 0) {
		(void)vdk_loop_remove(n->loop, n->more_fd);
		close(n->more_fd);
		n->more_fd = -1;
	}
	if (n->link_timer >= 0) {
		(void)vdk_loop_remove(n->loop, n->link_timer);
		close(n->link_timer);
		n->link_timer = -1;
	}
	n->loop = NULL;
}
