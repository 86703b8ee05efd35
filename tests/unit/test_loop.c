/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/loop.c: the loop interface and the epoll loop — add,
 * modify (pause), remove with its guarantee (from a callback: immediate and
 * stale events of the round dropped; from another thread: waits for the
 * callback in progress), deferred calls, stop from another thread, the
 * error codes, and busy-polling.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vdk/loop.h>

static struct vdk_loop *new_loop(void)
{
	int err = -1;
	struct vdk_loop *l = vdk_loop_epoll_new(&err);

	assert_non_null(l);
	assert_int_equal(err, 0);
	return l;
}

static int new_efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(fd >= 0);
	return fd;
}

static void kick(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

struct counter {
	int calls;
	int fd;
	uint32_t events;
	struct vdk_loop *loop;
	int remove_fd; /* removed from inside the callback, or -1 */
};

static void count_cb(void *opaque, int fd, uint32_t events)
{
	struct counter *c = opaque;

	c->calls++;
	c->fd = fd;
	c->events = events;
	if (fd >= 0)
		drain(fd);
	if (c->remove_fd >= 0) {
		assert_int_equal(vdk_loop_remove(c->loop, c->remove_fd), 0);
		c->remove_fd = -1;
	}
}

static void test_add_dispatch_remove(void **state)
{
	struct vdk_loop *l = new_loop();
	struct counter c = {.remove_fd = -1};
	int fd = new_efd();

	(void)state;
	assert_int_equal(vdk_loop_add(l, fd, VDK_LOOP_IN, count_cb, &c), 0);
	assert_int_equal(vdk_loop_add(l, fd, VDK_LOOP_IN, count_cb, &c),
			 -EEXIST);
	assert_int_equal(vdk_loop_epoll_run_once(l, 0), 0);
	kick(fd);
	assert_int_equal(vdk_loop_epoll_run_once(l, 1000), 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.fd, fd);
	assert_int_equal(c.events, VDK_LOOP_IN);
	/* paused: readable but not dispatched */
	assert_int_equal(vdk_loop_modify(l, fd, 0), 0);
	kick(fd);
	assert_int_equal(vdk_loop_epoll_run_once(l, 0), 0);
	assert_int_equal(vdk_loop_modify(l, fd, VDK_LOOP_IN), 0);
	assert_int_equal(vdk_loop_epoll_run_once(l, 1000), 1);
	assert_int_equal(c.calls, 2);
	assert_int_equal(vdk_loop_remove(l, fd), 0);
	kick(fd);
	assert_int_equal(vdk_loop_epoll_run_once(l, 0), 0);
	assert_int_equal(c.calls, 2);
	assert_int_equal(vdk_loop_remove(l, fd), -ENOENT);
	assert_int_equal(vdk_loop_modify(l, fd, VDK_LOOP_IN), -ENOENT);
	assert_int_equal(vdk_loop_add(l, -1, VDK_LOOP_IN, count_cb, &c),
			 -EINVAL);
	assert_int_equal(vdk_loop_add(l, fd, VDK_LOOP_IN, NULL, &c), -EINVAL);
	close(fd);
	vdk_loop_epoll_free(l);
	vdk_loop_epoll_free(NULL);
}

/* Two fds ready in one round; the first callback removes the second: its
 * event of this round must not be dispatched. */
static void test_remove_in_callback_drops_stale(void **state)
{
	struct vdk_loop *l = new_loop();
	struct counter a = {.remove_fd = -1}, b = {.remove_fd = -1};
	int fa = new_efd(), fb = new_efd();

	(void)state;
	a.loop = b.loop = l;
	assert_int_equal(vdk_loop_add(l, fa, VDK_LOOP_IN, count_cb, &a), 0);
	assert_int_equal(vdk_loop_add(l, fb, VDK_LOOP_IN, count_cb, &b), 0);
	a.remove_fd = fb;
	b.remove_fd = fa;
	kick(fa);
	kick(fb);
	/* whichever runs first removes the other */
	assert_int_equal(vdk_loop_epoll_run_once(l, 1000), 1);
	assert_int_equal(a.calls + b.calls, 1);
	close(fa);
	close(fb);
	vdk_loop_epoll_free(l);
}

/* A callback removing its own fd, and a new fd of the same number. */
static void test_remove_self_and_reuse(void **state)
{
	struct vdk_loop *l = new_loop();
	struct counter a = {.remove_fd = -1}, b = {.remove_fd = -1};
	int fd = new_efd();

	(void)state;
	a.loop = l;
	a.remove_fd = fd;
	assert_int_equal(vdk_loop_add(l, fd, VDK_LOOP_IN, count_cb, &a), 0);
	kick(fd);
	assert_int_equal(vdk_loop_epoll_run_once(l, 1000), 1);
	close(fd);
	fd = new_efd(); /* likely the same number */
	assert_int_equal(vdk_loop_add(l, fd, VDK_LOOP_IN, count_cb, &b), 0);
	kick(fd);
	assert_int_equal(vdk_loop_epoll_run_once(l, 1000), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(vdk_loop_remove(l, fd), 0);
	close(fd);
	vdk_loop_epoll_free(l);
}

/* remove() from another thread waits for the callback in progress. */
struct slow {
	atomic_int entered, finished;
};

static void slow_cb(void *opaque, int fd, uint32_t events)
{
	struct slow *s = opaque;

	(void)events;
	drain(fd);
	atomic_store(&s->entered, 1);
	usleep(100 * 1000);
	atomic_store(&s->finished, 1);
}

struct runner {
	struct vdk_loop *loop;
	int ret;
};

static void *run_thread(void *arg)
{
	struct runner *r = arg;

	r->ret = vdk_loop_epoll_run(r->loop);
	return NULL;
}

static void test_remove_from_other_thread_waits(void **state)
{
	struct vdk_loop *l = new_loop();
	struct runner r = {.loop = l, .ret = -1};
	struct slow s;
	pthread_t t;
	int fd = new_efd();

	(void)state;
	atomic_init(&s.entered, 0);
	atomic_init(&s.finished, 0);
	assert_int_equal(vdk_loop_add(l, fd, VDK_LOOP_IN, slow_cb, &s), 0);
	assert_int_equal(pthread_create(&t, NULL, run_thread, &r), 0);
	kick(fd);
	while (!atomic_load(&s.entered))
		usleep(1000);
	assert_int_equal(vdk_loop_remove(l, fd), 0);
	/* the guarantee: the callback has returned */
	assert_int_equal(atomic_load(&s.finished), 1);
	vdk_loop_epoll_stop(l);
	pthread_join(t, NULL);
	assert_int_equal(r.ret, 0);
	close(fd);
	vdk_loop_epoll_free(l);
}

struct deferrer {
	struct vdk_loop *loop;
	int calls;
};

static void defer_cb(void *opaque, int fd, uint32_t events)
{
	struct deferrer *d = opaque;

	assert_int_equal(fd, -1);
	assert_int_equal(events, 0);
	if (++d->calls == 3)
		vdk_loop_epoll_stop(d->loop);
	else
		assert_int_equal(vdk_loop_defer(d->loop, defer_cb, d), 0);
}

static void test_defer_and_stop(void **state)
{
	struct vdk_loop *l = new_loop();
	struct deferrer d = {.loop = l};

	(void)state;
	assert_int_equal(vdk_loop_defer(l, defer_cb, &d), 0);
	assert_int_equal(vdk_loop_epoll_run(l), 0);
	assert_int_equal(d.calls, 3);
	/* a stop requested before run() makes it return at once */
	vdk_loop_epoll_stop(l);
	assert_int_equal(vdk_loop_epoll_run(l), 0);
	/* a loop without defer */
	{
		static const struct vdk_loop_ops no_defer = {0};
		struct vdk_loop other = {.ops = &no_defer};

		assert_int_equal(vdk_loop_defer(&other, defer_cb, &d),
				 -EOPNOTSUPP);
	}
	vdk_loop_epoll_free(l);
}

static void *stopper(void *arg)
{
	usleep(20 * 1000);
	vdk_loop_epoll_stop(arg);
	return NULL;
}

static void test_stop_from_other_thread(void **state)
{
	struct vdk_loop *l = new_loop();
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, stopper, l), 0);
	assert_int_equal(vdk_loop_epoll_run(l), 0);
	pthread_join(t, NULL);
	assert_true(vdk_loop_epoll_fd(l) >= 0);
	vdk_loop_epoll_free(l);
}

/* A regular file cannot be polled; HUP is reported on a pipe whose writer
 * closed; busy-polling still dispatches. */
static void test_errors_hup_and_poll(void **state)
{
	struct vdk_loop *l = new_loop();
	struct counter c = {.remove_fd = -1};
	char path[] = "/tmp/vdk-test-loop-XXXXXX";
	int file = mkstemp(path), p[2];

	(void)state;
	assert_true(file >= 0);
	unlink(path);
	assert_int_equal(vdk_loop_add(l, file, VDK_LOOP_IN, count_cb, &c),
			 -EPERM);
	/* added paused, a regular file is accepted until watched */
	assert_int_equal(vdk_loop_add(l, file, 0, count_cb, &c), 0);
	assert_int_equal(vdk_loop_modify(l, file, VDK_LOOP_OUT), -EPERM);
	assert_int_equal(vdk_loop_remove(l, file), 0);
	close(file);

	assert_int_equal(pipe(p), 0);
	vdk_loop_epoll_set_poll(l, 50);
	assert_int_equal(vdk_loop_add(l, p[0], VDK_LOOP_IN, count_cb, &c), 0);
	close(p[1]);
	assert_int_equal(vdk_loop_epoll_run_once(l, 1000), 1);
	assert_true(c.events & VDK_LOOP_HUP);
	assert_int_equal(vdk_loop_remove(l, p[0]), 0);
	close(p[0]);
	vdk_loop_epoll_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_dispatch_remove),
		cmocka_unit_test(test_remove_in_callback_drops_stale),
		cmocka_unit_test(test_remove_self_and_reuse),
		cmocka_unit_test(test_remove_from_other_thread_waits),
		cmocka_unit_test(test_defer_and_stop),
		cmocka_unit_test(test_stop_from_other_thread),
		cmocka_unit_test(test_errors_hup_and_poll),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
