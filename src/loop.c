// SPDX-License-Identifier: Apache-2.0
/*
 * The loop interface (<vdk/loop.h>) and its reference implementation over
 * epoll.
 *
 * Each added fd has a slot in a table indexed by fd number, with a
 * generation that changes when the fd is removed; epoll carries
 * (generation << 32 | fd), so an event already fetched for a removed fd (or
 * for a new file that reuses its number) is recognised as stale and
 * dropped. The table is guarded by a mutex that is never held while a
 * callback runs; the dispatching thread records which slot it is running,
 * and vdk_loop_remove() from another thread waits on a condition variable
 * until that dispatch ends (the rule in loop.h).
 *
 * Stop requests and deferred calls wake the loop through one eventfd.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <vdk/log.h>
#include <vdk/loop.h>

#define MOD "loop"

_Static_assert(VDK_LOOP_IN == EPOLLIN && VDK_LOOP_OUT == EPOLLOUT &&
		       VDK_LOOP_ERR == EPOLLERR && VDK_LOOP_HUP == EPOLLHUP,
	       "VDK_LOOP_* equal EPOLL*");

#define EVENT_MASK (VDK_LOOP_IN | VDK_LOOP_OUT | VDK_LOOP_ERR | VDK_LOOP_HUP)

/* ---- the interface ------------------------------------------------------ */

int vdk_loop_add(struct vdk_loop *loop, int fd, uint32_t events,
		 vdk_loop_fn *fn, void *opaque)
{
	if (!loop || !loop->ops || !fn || fd < 0)
		return -EINVAL;
	return loop->ops->add(loop->impl, fd, events, fn, opaque);
}

int vdk_loop_modify(struct vdk_loop *loop, int fd, uint32_t events)
{
	if (!loop || !loop->ops || fd < 0)
		return -EINVAL;
	return loop->ops->modify(loop->impl, fd, events);
}

int vdk_loop_remove(struct vdk_loop *loop, int fd)
{
	if (!loop || !loop->ops || fd < 0)
		return -EINVAL;
	return loop->ops->remove(loop->impl, fd);
}

int vdk_loop_defer(struct vdk_loop *loop, vdk_loop_fn *fn, void *opaque)
{
	if (!loop || !loop->ops || !fn)
		return -EINVAL;
	if (!loop->ops->defer)
		return -EOPNOTSUPP;
	return loop->ops->defer(loop->impl, fn, opaque);
}

/* ---- epoll -------------------------------------------------------------- */

/* epoll key of the wake eventfd (no fd has generation UINT32_MAX). */
#define WAKE_KEY UINT64_MAX

struct slot {
	vdk_loop_fn *fn;
	void *opaque;
	uint32_t events; /* asked for; 0: out of the epoll set */
	uint32_t gen;	 /* changes on remove */
	bool used;
};

struct deferred {
	vdk_loop_fn *fn;
	void *opaque;
	struct deferred *next;
};

struct epoll_loop {
	struct vdk_loop loop; /* first: the public handle */
	int epfd;
	int wake_fd;
	atomic_bool stop;
	uint64_t poll_ns;
	bool busy; /* the last round dispatched something */

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t done;  /* a dispatch ended */
	struct slot *slots;
	size_t cap;
	bool dispatching; /* a round runs on @thread */
	pthread_t thread;
	int running_fd; /* callback in progress, -1 if none */
	uint32_t running_gen;
	struct deferred *defer_head, **defer_tail;
};

static struct epoll_loop *to_el(void *impl)
{
	return impl;
}

static uint64_t key_of(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

static int ctl(struct epoll_loop *l, int op, int fd, uint32_t events,
	       uint32_t gen)
{
	struct epoll_event ev = {.events = events, .data.u64 = key_of(fd, gen)};

	return epoll_ctl(l->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

static int el_add(void *impl, int fd, uint32_t events, vdk_loop_fn *fn,
		  void *opaque)
{
	struct epoll_loop *l = to_el(impl);
	struct slot *s;
	int ret = 0;

	events &= EVENT_MASK;
	pthread_mutex_lock(&l->lock);
	if ((size_t)fd >= l->cap) {
		size_t cap = l->cap ? l->cap : 64;

		while (cap <= (size_t)fd)
			cap *= 2;
		s = realloc(l->slots, cap * sizeof(*s));
		if (!s) {
			ret = -ENOMEM;
			goto out;
		}
		memset(s + l->cap, 0, (cap - l->cap) * sizeof(*s));
		l->slots = s;
		l->cap = cap;
	}
	s = &l->slots[fd];
	if (s->used) {
		ret = -EEXIST;
		goto out;
	}
	if (events)
		ret = ctl(l, EPOLL_CTL_ADD, fd, events, s->gen);
	if (ret == 0) {
		s->fn = fn;
		s->opaque = opaque;
		s->events = events;
		s->used = true;
	}
out:
	pthread_mutex_unlock(&l->lock);
	return ret;
}

static struct slot *find(struct epoll_loop *l, int fd)
{
	if ((size_t)fd >= l->cap || !l->slots[fd].used)
		return NULL;
	return &l->slots[fd];
}

static int el_modify(void *impl, int fd, uint32_t events)
{
	struct epoll_loop *l = to_el(impl);
	struct slot *s;
	int ret = 0;

	events &= EVENT_MASK;
	pthread_mutex_lock(&l->lock);
	s = find(l, fd);
	if (!s)
		ret = -ENOENT;
	else if (!events && s->events) /* ERR/HUP would still come */
		ret = ctl(l, EPOLL_CTL_DEL, fd, 0, s->gen);
	else if (events)
		ret = ctl(l, s->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
			  events, s->gen);
	if (s && ret == 0)
		s->events = events;
	pthread_mutex_unlock(&l->lock);
	return ret;
}

static int el_remove(void *impl, int fd)
{
	struct epoll_loop *l = to_el(impl);
	struct slot *s;
	uint32_t gen;

	pthread_mutex_lock(&l->lock);
	s = find(l, fd);
	if (!s) {
		pthread_mutex_unlock(&l->lock);
		return -ENOENT;
	}
	/* EBADF/ENOENT if the caller closed the fd first: the kernel has
	 * dropped it from the set already. */
	if (s->events)
		(void)ctl(l, EPOLL_CTL_DEL, fd, 0, s->gen);
	gen = s->gen;
	s->used = false;
	s->events = 0;
	s->gen++; /* stale events of this round are dropped */
	if (!(l->dispatching && pthread_equal(l->thread, pthread_self())))
		while (l->running_fd == fd && l->running_gen == gen)
			pthread_cond_wait(&l->done, &l->lock);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static void wake(struct epoll_loop *l)
{
	uint64_t one = 1;

	/* Only fails if the counter is full, and then the loop wakes anyway */
	if (write(l->wake_fd, &one, sizeof(one)) < 0)
		return;
}

static int el_defer(void *impl, vdk_loop_fn *fn, void *opaque)
{
	struct epoll_loop *l = to_el(impl);
	struct deferred *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->fn = fn;
	d->opaque = opaque;
	d->next = NULL;
	pthread_mutex_lock(&l->lock);
	*l->defer_tail = d;
	l->defer_tail = &d->next;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	return 0;
}

static const struct vdk_loop_ops epoll_ops = {
	.add = el_add,
	.modify = el_modify,
	.remove = el_remove,
	.defer = el_defer,
};

struct vdk_loop *vdk_loop_epoll_new(int *err)
{
	struct epoll_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_KEY};
	int ret = 0;

	if (!l) {
		ret = -ENOMEM;
		goto out;
	}
	l->loop.ops = &epoll_ops;
	l->loop.impl = l;
	l->running_fd = -1;
	l->defer_tail = &l->defer_head;
	atomic_init(&l->stop, false);
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->done, NULL);
	l->wake_fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		ret = -errno;
		goto out;
	}
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0)
		ret = -errno;
out:
	if (ret < 0 && l) {
		vdk_loop_epoll_free(&l->loop);
		l = NULL;
	}
	if (err)
		*err = ret;
	return l ? &l->loop : NULL;
}

void vdk_loop_epoll_free(struct vdk_loop *loop)
{
	struct epoll_loop *l;

	if (!loop)
		return;
	l = to_el(loop->impl);
	while (l->defer_head) {
		struct deferred *d = l->defer_head;

		l->defer_head = d->next;
		free(d);
	}
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	if (l->epfd >= 0)
		close(l->epfd);
	pthread_cond_destroy(&l->done);
	pthread_mutex_destroy(&l->lock);
	free(l->slots);
	free(l);
}

void vdk_loop_epoll_stop(struct vdk_loop *loop)
{
	struct epoll_loop *l = to_el(loop->impl);

	atomic_store(&l->stop, true);
	wake(l);
}

void vdk_loop_epoll_set_poll(struct vdk_loop *loop, uint32_t poll_us)
{
	to_el(loop->impl)->poll_ns = (uint64_t)poll_us * 1000u;
}

int vdk_loop_epoll_fd(const struct vdk_loop *loop)
{
	return ((const struct epoll_loop *)loop->impl)->epfd;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait for events; after a busy round, spin first for up to poll_ns. */
static int wait_events(struct epoll_loop *l, struct epoll_event *evs, int max,
		       int timeout_ms)
{
	if (l->poll_ns && l->busy && timeout_ms != 0) {
		uint64_t end = now_ns() + l->poll_ns;

		do {
			int n = epoll_wait(l->epfd, evs, max, 0);

			if (n != 0)
				return n;
		} while (now_ns() < end);
	}
	return epoll_wait(l->epfd, evs, max, timeout_ms);
}

/* Run the callback of (fd, gen) if it is still the one added. */
static bool dispatch(struct epoll_loop *l, uint64_t key, uint32_t events)
{
	int fd = (int)(uint32_t)key;
	uint32_t gen = (uint32_t)(key >> 32);
	vdk_loop_fn *fn;
	void *opaque;
	struct slot *s;

	pthread_mutex_lock(&l->lock);
	s = find(l, fd);
	if (!s || s->gen != gen || !s->events) {
		pthread_mutex_unlock(&l->lock);
		return false;
	}
	fn = s->fn;
	opaque = s->opaque;
	l->running_fd = fd;
	l->running_gen = gen;
	pthread_mutex_unlock(&l->lock);

	fn(opaque, fd, events & EVENT_MASK);

	pthread_mutex_lock(&l->lock);
	l->running_fd = -1;
	pthread_cond_broadcast(&l->done);
	pthread_mutex_unlock(&l->lock);
	return true;
}

/* Run the calls deferred so far (not those they defer). */
static int run_deferred(struct epoll_loop *l)
{
	struct deferred *d;
	int n = 0;

	pthread_mutex_lock(&l->lock);
	d = l->defer_head;
	l->defer_head = NULL;
	l->defer_tail = &l->defer_head;
	pthread_mutex_unlock(&l->lock);
	while (d) {
		struct deferred *next = d->next;

		d->fn(d->opaque, -1, 0);
		free(d);
		d = next;
		n++;
	}
	return n;
}

/* One round; *@stopped tells whether a stop request was consumed. */
static int round_once(struct epoll_loop *l, int timeout_ms, bool *stopped)
{
	struct epoll_event evs[32];
	int n, ran = 0;

	*stopped = atomic_exchange(&l->stop, false);
	if (*stopped)
		return 0;
	n = wait_events(l, evs, 32, timeout_ms);
	if (n < 0)
		return -errno;
	pthread_mutex_lock(&l->lock);
	l->dispatching = true;
	l->thread = pthread_self();
	pthread_mutex_unlock(&l->lock);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == WAKE_KEY) {
			uint64_t v;

			/* EAGAIN: already drained this round */
			(void)!read(l->wake_fd, &v, sizeof(v));
			continue;
		}
		if (dispatch(l, evs[i].data.u64, evs[i].events))
			ran++;
		if (atomic_load(&l->stop))
			break;
	}
	ran += run_deferred(l);
	pthread_mutex_lock(&l->lock);
	l->dispatching = false;
	pthread_mutex_unlock(&l->lock);
	l->busy = ran > 0;
	*stopped = atomic_exchange(&l->stop, false);
	return ran;
}

int vdk_loop_epoll_run_once(struct vdk_loop *loop, int timeout_ms)
{
	bool stopped;

	return round_once(to_el(loop->impl), timeout_ms, &stopped);
}

int vdk_loop_epoll_run(struct vdk_loop *loop)
{
	struct epoll_loop *l = to_el(loop->impl);
	bool stopped = false;

	while (!stopped) {
		int n = round_once(l, -1, &stopped);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			vdk_log(VDK_LOG_ERROR, MOD, "epoll_wait: %s",
				strerror(-n));
			return n;
		}
	}
	return 0;
}
