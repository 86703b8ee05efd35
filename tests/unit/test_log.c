/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/log.c: the sink, level filtering, the default stderr
 * format, and the burst rate limiter with its "suppressed" note.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <vdk/log.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CAPTURED 32

/* What a capturing sink has received. */
struct capture {
	int calls;
	enum vdk_log_level level[MAX_CAPTURED];
	char module[MAX_CAPTURED][32];
	char msg[MAX_CAPTURED][600];
	void *opaque_seen;
};

static void capture_sink(void *opaque, enum vdk_log_level level,
			 const char *module, const char *msg)
{
	struct capture *c = opaque;

	c->opaque_seen = opaque;
	if (c->calls < MAX_CAPTURED) {
		c->level[c->calls] = level;
		snprintf(c->module[c->calls], sizeof(c->module[0]), "%s",
			 module);
		snprintf(c->msg[c->calls], sizeof(c->msg[0]), "%s", msg);
	}
	c->calls++;
}

static int reset_sink(void **state)
{
	(void)state;
	vdk_log_set_sink(NULL, NULL, VDK_LOG_WARN);
	return 0;
}

static void test_sink_receives_level_module_msg(void **state)
{
	struct capture c = {0};

	(void)state;
	vdk_log_set_sink(capture_sink, &c, VDK_LOG_DEBUG);
	vdk_log(VDK_LOG_ERROR, "virtq", "queue %d broken: %s", 3, "bad head");
	vdk_log(VDK_LOG_DEBUG, "mmio", "status %#x", 0xf);

	assert_int_equal(c.calls, 2);
	assert_ptr_equal(c.opaque_seen, &c);
	assert_int_equal(c.level[0], VDK_LOG_ERROR);
	assert_string_equal(c.module[0], "virtq");
	assert_string_equal(c.msg[0], "queue 3 broken: bad head");
	assert_int_equal(c.level[1], VDK_LOG_DEBUG);
	assert_string_equal(c.module[1], "mmio");
	assert_string_equal(c.msg[1], "status 0xf");
}

static void test_level_filtering(void **state)
{
	struct capture c = {0};

	(void)state;
	vdk_log_set_sink(capture_sink, &c, VDK_LOG_WARN);
	assert_true(vdk_log_enabled(VDK_LOG_ERROR));
	assert_true(vdk_log_enabled(VDK_LOG_WARN));
	assert_false(vdk_log_enabled(VDK_LOG_INFO));
	assert_false(vdk_log_enabled(VDK_LOG_DEBUG));

	vdk_log(VDK_LOG_DEBUG, "t", "dropped debug");
	vdk_log(VDK_LOG_INFO, "t", "dropped info");
	vdk_log(VDK_LOG_WARN, "t", "kept warn");
	vdk_log(VDK_LOG_ERROR, "t", "kept error");
	assert_int_equal(c.calls, 2);
	assert_string_equal(c.msg[0], "kept warn");
	assert_string_equal(c.msg[1], "kept error");

	/* Raising the level lets INFO through. */
	vdk_log_set_sink(capture_sink, &c, VDK_LOG_INFO);
	assert_true(vdk_log_enabled(VDK_LOG_INFO));
	vdk_log(VDK_LOG_INFO, "t", "now kept");
	vdk_log(VDK_LOG_DEBUG, "t", "still dropped");
	assert_int_equal(c.calls, 3);
	assert_string_equal(c.msg[2], "now kept");

	/* ERROR only. */
	vdk_log_set_sink(capture_sink, &c, VDK_LOG_ERROR);
	vdk_log(VDK_LOG_WARN, "t", "dropped warn");
	assert_int_equal(c.calls, 3);
}

static void test_trailing_newline_and_truncation(void **state)
{
	struct capture c = {0};
	char big[1000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vdk_log_set_sink(capture_sink, &c, VDK_LOG_DEBUG);
	vdk_log(VDK_LOG_INFO, "t", "line\n");
	vdk_log(VDK_LOG_INFO, "t", "%s", big);
	assert_int_equal(c.calls, 2);
	assert_string_equal(c.msg[0], "line");
	assert_true(strlen(c.msg[1]) < 512);
	assert_true(strlen(c.msg[1]) >= 500);
}

/* The default sink: "vdk[module] level: msg" on stderr, WARN and above. */
static void test_default_sink_format(void **state)
{
	char buf[512] = {0};
	int saved, pipefd[2];
	ssize_t n;

	(void)state;
	assert_int_equal(pipe(pipefd), 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(pipefd[1], STDERR_FILENO) >= 0);

	vdk_log_set_sink(NULL, NULL, VDK_LOG_WARN);
	vdk_log(VDK_LOG_INFO, "blk", "not shown");
	vdk_log(VDK_LOG_WARN, "blk", "bad sector %u", 7u);
	vdk_log(VDK_LOG_ERROR, "mmio", "dead");
	fflush(stderr);

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(pipefd[1]);
	n = read(pipefd[0], buf, sizeof(buf) - 1);
	close(pipefd[0]);
	assert_true(n > 0);
	assert_string_equal(buf, "vdk[blk] warn: bad sector 7\n"
				 "vdk[mmio] error: dead\n");
}

static void test_ratelimit_burst_and_suppression(void **state)
{
	struct vdk_ratelimit rl = {.interval_ns = 3600ull * 1000000000ull,
				   .burst = 3};
	struct capture c = {0};
	int ok = 0;

	(void)state;
	vdk_log_set_sink(capture_sink, &c, VDK_LOG_DEBUG);
	for (int i = 0; i < 10; i++)
		if (vdk_ratelimit_ok(&rl))
			ok++;
	assert_int_equal(ok, 3);
	assert_int_equal(rl.count, 3);
	assert_int_equal(rl.missed, 7);
	assert_int_equal(c.calls, 0); /* no note inside the window */

	/* Pretend the window has elapsed. */
	rl.window_start_ns -= rl.interval_ns;
	assert_true(vdk_ratelimit_ok(&rl));
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.level[0], VDK_LOG_WARN);
	assert_string_equal(c.msg[0], "7 messages suppressed");
	assert_int_equal(rl.missed, 0);
	assert_int_equal(rl.count, 1);

	/* A new burst of 3 in total, then suppression again. */
	assert_true(vdk_ratelimit_ok(&rl));
	assert_true(vdk_ratelimit_ok(&rl));
	assert_false(vdk_ratelimit_ok(&rl));

	/* The next window reports the 1 missed above... */
	rl.window_start_ns -= rl.interval_ns;
	c.calls = 0;
	assert_true(vdk_ratelimit_ok(&rl));
	assert_int_equal(c.calls, 1);
	assert_string_equal(c.msg[0], "1 messages suppressed");
	/* ...and a window without suppressions emits no note. */
	rl.window_start_ns -= rl.interval_ns;
	assert_true(vdk_ratelimit_ok(&rl));
	assert_int_equal(c.calls, 1);
}

/* Real time: a short window really reopens after it elapses. */
static void test_ratelimit_real_clock(void **state)
{
	struct vdk_ratelimit rl = {.interval_ns = 300 * 1000000ull, .burst = 2};
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 350 * 1000000L};
	struct capture c = {0};

	(void)state;
	vdk_log_set_sink(capture_sink, &c, VDK_LOG_DEBUG);
	for (int i = 0; i < 5; i++)
		VDK_LOG_RL(&rl, VDK_LOG_WARN, "rng", "guest msg %d", i);
	assert_int_equal(c.calls, 2);
	assert_string_equal(c.msg[1], "guest msg 1");

	nanosleep(&ts, NULL);
	VDK_LOG_RL(&rl, VDK_LOG_WARN, "rng", "after window");
	assert_int_equal(c.calls, 4);
	assert_string_equal(c.msg[2], "3 messages suppressed");
	assert_string_equal(c.msg[3], "after window");
	assert_string_equal(c.module[3], "rng");
}

static void test_ratelimit_default_init(void **state)
{
	struct vdk_ratelimit rl = VDK_RATELIMIT_INIT;
	int ok = 0;

	(void)state;
	vdk_log_set_sink(NULL, NULL, VDK_LOG_ERROR);
	for (int i = 0; i < 100; i++)
		ok += vdk_ratelimit_ok(&rl);
	assert_int_equal(ok, 10);
	assert_int_equal(rl.missed, 90);
}

/*
 * Publishing is atomic: while one thread switches between two sinks, every
 * message reaches a sink with that sink's own opaque pointer and level.
 */
struct pair_sink {
	atomic_int calls;
	atomic_int mismatches;
};

static struct pair_sink g_pair[2];

static void pair_sink_fn0(void *opaque, enum vdk_log_level level,
			  const char *module, const char *msg)
{
	(void)module;
	(void)msg;
	if (opaque != &g_pair[0] || level > VDK_LOG_INFO)
		atomic_fetch_add(&g_pair[0].mismatches, 1);
	atomic_fetch_add(&g_pair[0].calls, 1);
}

static void pair_sink_fn1(void *opaque, enum vdk_log_level level,
			  const char *module, const char *msg)
{
	(void)module;
	(void)msg;
	if (opaque != &g_pair[1] || level > VDK_LOG_ERROR)
		atomic_fetch_add(&g_pair[1].mismatches, 1);
	atomic_fetch_add(&g_pair[1].calls, 1);
}

static atomic_bool g_stop;

static void *log_spammer(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_stop)) {
		vdk_log(VDK_LOG_ERROR, "t", "e");
		vdk_log(VDK_LOG_INFO, "t", "i");
	}
	return NULL;
}

static void test_set_sink_atomic(void **state)
{
	pthread_t th[2];

	(void)state;
	memset(g_pair, 0, sizeof(g_pair));
	atomic_store(&g_stop, false);
	vdk_log_set_sink(pair_sink_fn0, &g_pair[0], VDK_LOG_INFO);
	for (int i = 0; i < 2; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, log_spammer, NULL), 0);
	/* Swap until the spammers have logged enough (bounded). */
	for (long i = 0; i < 100000000L; i++) {
		if (atomic_load(&g_pair[0].calls) +
			    atomic_load(&g_pair[1].calls) >=
		    200000)
			break;
		if (i & 1)
			vdk_log_set_sink(pair_sink_fn0, &g_pair[0],
					 VDK_LOG_INFO);
		else
			vdk_log_set_sink(pair_sink_fn1, &g_pair[1],
					 VDK_LOG_ERROR);
	}
	/* Under load the swaps may all land on one sink: give each sink a
	 * turn of its own before stopping (bounded, about 10 s). */
	for (int s = 0; s < 2; s++) {
		if (s == 0)
			vdk_log_set_sink(pair_sink_fn0, &g_pair[0],
					 VDK_LOG_INFO);
		else
			vdk_log_set_sink(pair_sink_fn1, &g_pair[1],
					 VDK_LOG_ERROR);
		int before = atomic_load(&g_pair[s].calls);
		for (int w = 0; w < 10000; w++) {
			if (atomic_load(&g_pair[s].calls) > before)
				break;
			usleep(1000);
		}
	}
	atomic_store(&g_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&g_pair[0].calls) > 0);
	assert_true(atomic_load(&g_pair[1].calls) > 0);
	assert_int_equal(atomic_load(&g_pair[0].mismatches), 0);
	assert_int_equal(atomic_load(&g_pair[1].mismatches), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sink_receives_level_module_msg,
					  reset_sink),
		cmocka_unit_test_teardown(test_level_filtering, reset_sink),
		cmocka_unit_test_teardown(test_trailing_newline_and_truncation,
					  reset_sink),
		cmocka_unit_test_teardown(test_default_sink_format, reset_sink),
		cmocka_unit_test_teardown(test_ratelimit_burst_and_suppression,
					  reset_sink),
		cmocka_unit_test_teardown(test_ratelimit_real_clock,
					  reset_sink),
		cmocka_unit_test_teardown(test_ratelimit_default_init,
					  reset_sink),
		cmocka_unit_test_teardown(test_set_sink_atomic, reset_sink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
