/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stress tests of call fd replacement in src/vhost_user (SET_VRING_CALL while
 * the ring runs; the rule is in <vdk/vhost_user.h>, "Threading"): device
 * worker threads signal used buffers without pause through the struct
 * vdk_interrupt the backend was given, while the control thread (this one,
 * through the scripted front-end of vu_frontend.h) replaces the ring's call
 * fd thousands of times.
 *
 * What would show a write reaching a closed fd or a reused fd number:
 *   - every eventfd ever installed is read after it is replaced (the writes
 *     it got while installed), then again some replacements later: a second
 *     read that finds anything is a write after replacement;
 *   - right after each replacement, "decoy" eventfds are opened: they take
 *     the lowest free fd numbers, the back-end's just-closed copy among them,
 *     and must never be written to;
 *   - the sum of what the installed eventfds received equals the number of
 *     signals the workers sent (a write to a closed fd would be lost), and
 *     the interrupt logged no failed write.
 * Run under TSan as well (-Db_sanitize=thread), which also reports a
 * close() racing with a write() on the same fd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include <vdk/device.h>
#include <vdk/log.h>
#include <vdk/vhost_user.h>

#include "vu_frontend.h"

#define GPA_BASE 0x100000ull
#define RAM_SIZE 0x40000ull
#define QSIZE	 16
#define NQ	 2
#define PF(b)	 (1ull << (b))
/* Replacements per stress run; each waits for a new signal. */
#define ROUNDS 16000
/* Replacements an old eventfd and the decoys are watched for. */
#define WATCH  8
#define DECOYS 3

/* ---- a device whose workers signal without pause ------------------------ */

struct worker {
	pthread_t thread;
	struct vdk_virtq *q;
	struct vdk_interrupt *irq;
	uint16_t queue;
	bool running;
	bool stop;	  /* atomic */
	uint64_t signals; /* atomic: signals sent */
};

struct sigdev {
	struct worker w[NQ];
	int target[NQ]; /* the queue worker i signals, if not -1 */
	int starts, stops;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (uint64_t n = 1; !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE);
	     n++) {
		vdk_interrupt_signal_used_queue(w->irq, w->queue);
		__atomic_fetch_add(&w->signals, 1, __ATOMIC_RELEASE);
		/* leave the CPU to the control thread now and then, or on a
		 * busy machine each round waits for a time slice */
		if ((n & 63) == 0)
			sched_yield();
	}
	return NULL;
}

static uint16_t sd_num_queues(void *be)
{
	(void)be;
	return NQ;
}

static uint16_t sd_queue_max_size(void *be, uint16_t i)
{
	(void)be;
	(void)i;
	return QSIZE;
}

static uint64_t sd_features(void *be)
{
	(void)be;
	return 1ull << VIRTIO_F_VERSION_1;
}

static int sd_start_queue(void *be, uint16_t i, struct vdk_virtq *q,
			  const struct vdk_mem *mem, struct vdk_interrupt *irq)
{
	struct sigdev *d = be;
	struct worker *w = &d->w[i];

	(void)mem;
	w->q = q;
	w->irq = irq;
	w->queue = d->target[i] >= 0 ? (uint16_t)d->target[i] : i;
	w->stop = false;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -EAGAIN;
	w->running = true;
	d->starts++;
	return 0;
}

/* The worker is joined: it signals no more after this returns. */
static struct vdk_virtq *sd_stop_queue(void *be, uint16_t i)
{
	struct sigdev *d = be;
	struct worker *w = &d->w[i];

	if (!w->running)
		return NULL;
	__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
	pthread_join(w->thread, NULL);
	w->running = false;
	d->stops++;
	return w->q;
}

static int sd_reset(void *be)
{
	(void)be;
	return 0;
}

static const struct vdk_vhost_user_backend_ops sd_ops = {
	.name = "sigdev",
	.num_queues = sd_num_queues,
	.queue_max_size = sd_queue_max_size,
	.features = sd_features,
	.start_queue = sd_start_queue,
	.stop_queue = sd_stop_queue,
	.reset = sd_reset,
};

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	struct vu_fe fe;
	struct sigdev dev;
	uint32_t write_errors; /* atomic: "interrupt" errors logged */
};

static void fe_fail(const char *msg)
{
	fail_msg("vu_frontend: %s", msg);
}

/* Count what the interrupt object logs about failed writes (from any
 * thread); drop the rest (the library's notes on backend behaviour). */
static void sink(void *opaque, enum vdk_log_level level, const char *module,
		 const char *msg)
{
	struct fx *f = opaque;

	(void)msg;
	if (level == VDK_LOG_ERROR && strcmp(module, "interrupt") == 0)
		__atomic_fetch_add(&f->write_errors, 1, __ATOMIC_RELAXED);
}

static int setup(void **state)
{
	const struct vu_fe_config cfg = {GPA_BASE, RAM_SIZE, NQ, QSIZE};
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	vdk_log_set_sink(sink, f, VDK_LOG_DEBUG);
	assert_int_equal(vu_fe_init(&f->fe, &cfg, fe_fail), 0);
	assert_int_equal(vu_fe_connect(&f->fe, &sd_ops, &f->dev), 0);
	vu_fe_setup(&f->fe, 0);
	for (int i = 0; i < NQ; i++)
		f->dev.target[i] = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	/* vdk_vhost_user_free() stops the rings: every worker is joined. */
	assert_int_equal(vu_fe_fini(&f->fe), 0);
	for (int i = 0; i < NQ; i++)
		assert_false(f->dev.w[i].running);
	vdk_log_set_sink(NULL, NULL, VDK_LOG_INFO);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* Read and clear an eventfd's counter (0 if nothing was written). */
static uint64_t efd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static int new_efd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static uint64_t signals(const struct worker *w)
{
	return __atomic_load_n(&w->signals, __ATOMIC_ACQUIRE);
}

/* Wait until worker @w sent two signals after @since: the second began
 * after the first ended, so after anything done before @since was read. */
static void wait_signal(const struct worker *w, uint64_t since)
{
	while (signals(w) < since + 2)
		sched_yield();
}

/* SET_VRING_CALL of ring @q with @fd, or with no fd if @fd < 0. */
static void set_call(struct vu_fe *fe, uint16_t q, int fd)
{
	uint64_t v = q | (fd < 0 ? VHOST_USER_VRING_NOFD_MASK : 0);

	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_VRING_CALL, v, fd),
			 1);
}

/* Eventfds no longer installed (or never installed), watched for WATCH
 * rounds: none may receive anything. */
struct watch {
	int fd[WATCH * (DECOYS + 1)];
	size_t n;
};

static void watch_add(struct watch *wt, int fd)
{
	assert_true(wt->n < WATCH * (DECOYS + 1));
	wt->fd[wt->n++] = fd;
}

/* Check every watched fd is untouched; close those older than WATCH
 * rounds (all with @all). */
static void watch_check(struct watch *wt, bool all)
{
	size_t keep = all ? 0 : (WATCH - 1) * (DECOYS + 1), drop;

	for (size_t k = 0; k < wt->n; k++)
		assert_int_equal(efd_take(wt->fd[k]), 0);
	if (wt->n <= keep)
		return;
	drop = wt->n - keep;
	for (size_t k = 0; k < drop; k++)
		close(wt->fd[k]);
	memmove(wt->fd, wt->fd + drop, keep * sizeof(wt->fd[0]));
	wt->n = keep;
}

/* What churn() saw. */
struct churn {
	uint64_t got;	 /* signals the installed eventfds received */
	int installed;	 /* eventfds installed and replaced */
	int with_writes; /* of those, the ones written to while installed */
};

/* Take what the replaced eventfd @fd received while installed. */
static void churn_take(struct churn *c, int fd)
{
	uint64_t v = efd_take(fd);

	c->got += v;
	c->installed++;
	c->with_writes += v > 0;
}

/*
 * Replace ring @q's call fd ROUNDS times while its worker (and any other
 * running worker) signals; with @nofd, every other replacement installs no
 * fd. Ends with every ring stopped (all workers joined) and every fd read.
 */
static struct churn churn(struct fx *f, uint16_t q, bool nofd)
{
	struct worker *w = &f->dev.w[q];
	struct watch wt = {.n = 0};
	int cur = f->fe.call[q]; /* installed by vu_fe_start_ring() */
	struct churn c = {0, 0, 0};

	for (int round = 0; round < ROUNDS; round++) {
		bool none = nofd && (round & 1);
		int next = none ? -1 : new_efd();
		uint64_t before = signals(w);

		/* The current fd takes writes while installed. */
		if (cur >= 0)
			wait_signal(w, before);
		set_call(&f->fe, q, next);
		/* Replaced: what it got, it got while installed. */
		if (cur >= 0) {
			churn_take(&c, cur);
			if (cur != f->fe.call[q])
				watch_add(&wt, cur);
		}
		/* The back-end closed its copy of the old fd: these take the
		 * lowest free numbers, likely that one. */
		for (int k = 0; k < DECOYS; k++)
			watch_add(&wt, new_efd());
		watch_check(&wt, false);
		cur = next;
	}
	/* Back to the front-end's own call fd, then stop the ring: the
	 * worker is joined, every signal has landed. */
	if (cur >= 0)
		wait_signal(w, signals(w));
	/* replaced in the first round, not written to since */
	assert_int_equal(efd_take(f->fe.call[q]), 0);
	set_call(&f->fe, q, f->fe.call[q]);
	if (cur >= 0) {
		churn_take(&c, cur);
		watch_add(&wt, cur);
	}
	/* stop every ring, @q last: all workers are joined */
	for (uint16_t r = 0; r < NQ; r++)
		if (r != q && f->dev.w[r].running)
			(void)vu_fe_get_vring_base(&f->fe, r);
	(void)vu_fe_get_vring_base(&f->fe, q);
	c.got += efd_take(f->fe.call[q]);
	watch_check(&wt, true);
	return c;
}

/* ---- tests -------------------------------------------------------------- */

/* The call fd of a running ring is replaced ROUNDS times while two workers
 * (ring 0's and ring 1's) signal it without pause: every signal reaches a
 * call fd that was installed at the time, none reaches a replaced fd or a
 * reused number, and none reaches ring 1's call fd. */
static void test_callfd_replace_under_signals(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct churn c;
	uint64_t sent;

	f->dev.target[1] = 0;
	vu_fe_start_ring(fe, 0, 0, VU_FE_RING_INIT | VU_FE_RING_ENABLE);
	vu_fe_start_ring(fe, 1, 0, VU_FE_RING_INIT | VU_FE_RING_ENABLE);
	assert_int_equal(f->dev.starts, 2);

	c = churn(f, 0, false);
	assert_int_equal(f->dev.stops, 2);
	assert_false(f->dev.w[0].running);
	assert_false(f->dev.w[1].running);
	/* exactly what the workers sent: nothing lost, nothing misdirected */
	sent = signals(&f->dev.w[0]) + signals(&f->dev.w[1]);
	assert_int_equal(c.installed, ROUNDS + 1);
	assert_true(signals(&f->dev.w[0]) >= 2 * ROUNDS);
	assert_true(signals(&f->dev.w[1]) > 0);
	/* ...plus the one each ring's start gives (ring 1's to its own) */
	assert_int_equal(c.got, sent + 1);
	assert_int_equal(efd_take(fe->call[1]), 1);
	/* and the writes really were spread over the fds as they came and
	 * went (each round waits for signals begun after its replacement) */
	assert_true(c.with_writes >= c.installed * 9 / 10);
	assert_int_equal(__atomic_load_n(&f->write_errors, __ATOMIC_RELAXED),
			 0);
}

/* Replacing with "no fd" (VHOST_USER_VRING_NOFD_MASK) and back: while no
 * call fd is installed the signals are dropped, never written anywhere;
 * replaced fds and decoys stay untouched. */
static void test_callfd_nofd_under_signals(void **state)
{
	struct fx *f = *state;
	struct churn c;

	vu_fe_start_ring(&f->fe, 0, 0, VU_FE_RING_INIT | VU_FE_RING_ENABLE);
	c = churn(f, 0, true);
	assert_int_equal(c.installed, ROUNDS / 2 + 1);
	assert_true(c.with_writes >= c.installed * 9 / 10);
	/* (the start notification is the + 1) */
	assert_true(c.got <= signals(&f->dev.w[0]) + 1);
	assert_int_equal(__atomic_load_n(&f->write_errors, __ATOMIC_RELAXED),
			 0);
}

/* Ring 0 stops and restarts over and over (GET_VRING_BASE closes its call
 * fd, the start sequence installs one again) while the worker of ring 1
 * signals queue 0 throughout: a device may signal any queue at any time.
 * Ring 0's own worker comes and goes with the ring. */
static void test_callfd_dropped_by_stop(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct worker *w = &f->dev.w[1];
	struct watch wt = {.n = 0};
	uint64_t got = 0, sent;

	f->dev.target[1] = 0;
	vu_fe_start_ring(fe, 1, 0, VU_FE_RING_INIT | VU_FE_RING_ENABLE);
	assert_true(w->running);
	assert_int_equal(w->queue, 0);
	vu_fe_start_ring(fe, 0, 0, VU_FE_RING_INIT | VU_FE_RING_ENABLE);
	for (int round = 0; round < ROUNDS / 8; round++) {
		int call = new_efd();

		set_call(fe, 0, call);
		got += efd_take(fe->call[0]);
		wait_signal(w, signals(w));
		(void)vu_fe_get_vring_base(fe, 0); /* closes its call fd */
		got += efd_take(call);
		watch_add(&wt, call);
		for (int k = 0; k < DECOYS; k++)
			watch_add(&wt, new_efd());
		watch_check(&wt, false);
		/* SET_VRING_CALL with fe->call[0], then the ring runs */
		vu_fe_start_ring(fe, 0, 0, VU_FE_RING_ENABLE);
	}
	(void)vu_fe_get_vring_base(fe, 1);
	(void)vu_fe_get_vring_base(fe, 0);
	got += efd_take(fe->call[0]);
	watch_check(&wt, true);
	/* both workers are joined; whatever they sent went to installed
	 * fds or was dropped while ring 0 had none */
	sent = signals(w) + signals(&f->dev.w[0]);
	assert_true(got > 0);
	assert_true(got <= sent + (uint64_t)f->dev.starts); /* + starts' */
	assert_int_equal(f->dev.starts, ROUNDS / 8 + 2);
	assert_int_equal(__atomic_load_n(&f->write_errors, __ATOMIC_RELAXED),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_callfd_replace_under_signals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callfd_nofd_under_signals,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_callfd_dropped_by_stop,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
