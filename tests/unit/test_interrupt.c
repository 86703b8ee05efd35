/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the interrupt object (src/interrupt.c): callback and eventfd
 * delivery; eventfds replaced while other threads signal (every write lands
 * on an fd installed at the time, none on a replaced fd or a reused
 * number); failed writes counted and logged once; and the interrupts a
 * device raises through it - DEVICE_NEEDS_RESET once when a driver error
 * stops a queue, and a configuration change notification only while the
 * device is active.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vdk/device.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#include "echo_device.h"
#include "echo_env.h"
#include "guest_ring.h"

/* ---- the interrupt object ------------------------------------------------ */

static void test_interrupt_callback(void **state)
{
	const struct vdk_interrupt_ops ops = {log_used, log_config, log_reset};
	const struct vdk_interrupt_ops none = {0};
	struct irq_log l = {0};
	struct vdk_interrupt irq;

	(void)state;
	vdk_interrupt_init_callback(&irq, &ops, &l);
	vdk_interrupt_signal_used_queue(&irq, 1);
	vdk_interrupt_signal_used_queue(&irq, 1);
	vdk_interrupt_signal_used_queue(&irq, 3);
	vdk_interrupt_signal_config_changed(&irq);
	assert_int_equal(l.used[1], 2);
	assert_int_equal(l.used[3], 1);
	assert_int_equal(l.used[0], 0);
	assert_int_equal(l.config, 1);
	assert_false(irq.needs_reset);
	vdk_interrupt_needs_reset(&irq);
	assert_true(irq.needs_reset);
	assert_int_equal(l.reset, 1);
	assert_int_equal(l.config, 1);

	/* NULL members drop the event. */
	vdk_interrupt_init_callback(&irq, &none, NULL);
	vdk_interrupt_signal_used_queue(&irq, 0);
	vdk_interrupt_signal_config_changed(&irq);
	vdk_interrupt_needs_reset(&irq);
	assert_true(irq.needs_reset);
	vdk_interrupt_signal_used_queue(NULL, 0);
}

static uint64_t efd_read(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0; /* EAGAIN: nothing pending */
	return v;
}

static void test_interrupt_eventfd(void **state)
{
	int q[3], cfg;
	struct vdk_interrupt irq;
	int big[VDK_DEVICE_MAX_QUEUES + 1];
	uint64_t near_max = UINT64_MAX - 1;

	(void)state;
	for (int i = 0; i < 3; i++) {
		q[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(q[i] >= 0);
	}
	cfg = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(cfg >= 0);
	close(q[2]);
	q[2] = -1; /* queue 2 has no fd */

	assert_int_equal(vdk_interrupt_init_eventfd(&irq, q, 3, cfg), 0);
	assert_null(irq.ops);
	assert_int_equal(irq.queue_fd[3], -1);
	vdk_interrupt_signal_used_queue(&irq, 0);
	vdk_interrupt_signal_used_queue(&irq, 1);
	vdk_interrupt_signal_used_queue(&irq, 1);
	vdk_interrupt_signal_used_queue(&irq, 2);      /* no fd: dropped */
	vdk_interrupt_signal_used_queue(&irq, 0xffff); /* out of range */
	assert_int_equal(efd_read(q[0]), 1);
	assert_int_equal(efd_read(q[1]), 2);
	assert_int_equal(efd_read(q[0]), 0);
	assert_int_equal(efd_read(cfg), 0);
	vdk_interrupt_signal_config_changed(&irq);
	assert_int_equal(efd_read(cfg), 1);
	/* needs_reset: flag, and the frontend hears of it on the config fd. */
	vdk_interrupt_needs_reset(&irq);
	assert_true(irq.needs_reset);
	assert_int_equal(efd_read(cfg), 1);

	/* A full counter (EAGAIN) is not an error: the signal is pending. */
	assert_int_equal(write(q[0], &near_max, sizeof(near_max)), 8);
	vdk_interrupt_signal_used_queue(&irq, 0);
	assert_int_equal(efd_read(q[0]), near_max);

	assert_int_equal(vdk_interrupt_init_eventfd(
				 &irq, big, VDK_DEVICE_MAX_QUEUES + 1, -1),
			 -EINVAL);
	assert_int_equal(vdk_interrupt_init_eventfd(&irq, NULL, 1, -1),
			 -EINVAL);
	assert_int_equal(vdk_interrupt_init_eventfd(&irq, NULL, 0, -1), 0);
	vdk_interrupt_signal_config_changed(&irq); /* no fd: dropped */
	close(q[0]);
	close(q[1]);
	close(cfg);
}

/* ---- replacing eventfds -------------------------------------------------- */

static int efd_new(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static unsigned errors_logged;

static void count_errors(void *opaque, enum vdk_log_level level,
			 const char *module, const char *msg)
{
	(void)opaque;
	(void)msg;
	if (level == VDK_LOG_ERROR && strcmp(module, "interrupt") == 0)
		__atomic_fetch_add(&errors_logged, 1, __ATOMIC_RELAXED);
}

/* set_queue_fd / set_config_fd: the old fd comes back, signals follow the
 * new one; refused for callback backing and a bad queue. */
static void test_interrupt_set_fd(void **state)
{
	const struct vdk_interrupt_ops ops = {log_used, log_config, log_reset};
	struct irq_log l = {0};
	struct vdk_interrupt irq;
	int a = efd_new(), b = efd_new(), c = efd_new(), old = 1234;

	(void)state;
	vdk_interrupt_init_callback(&irq, &ops, &l);
	assert_int_equal(vdk_interrupt_set_queue_fd(&irq, 0, a, &old), -EINVAL);
	assert_int_equal(vdk_interrupt_set_config_fd(&irq, a, &old), -EINVAL);
	assert_int_equal(old, 1234);
	vdk_interrupt_signal_used_queue(&irq, 0); /* still the callback */
	assert_int_equal(l.used[0], 1);

	assert_int_equal(vdk_interrupt_init_eventfd(&irq, &a, 1, -1), 0);
	assert_int_equal(vdk_interrupt_set_queue_fd(&irq, VDK_DEVICE_MAX_QUEUES,
						    b, &old),
			 -EINVAL);
	assert_int_equal(old, 1234);
	assert_int_equal(irq.queue_fd[0], a);
	vdk_interrupt_signal_used_queue(&irq, 0);
	assert_int_equal(vdk_interrupt_set_queue_fd(&irq, 0, b, &old), 0);
	assert_int_equal(old, a);
	assert_int_equal(irq.queue_fd[0], b);
	vdk_interrupt_signal_used_queue(&irq, 0);
	vdk_interrupt_signal_used_queue(&irq, 0);
	assert_int_equal(efd_read(a), 1);
	assert_int_equal(efd_read(b), 2);
	/* -1 (or any negative): none; signals are dropped */
	assert_int_equal(vdk_interrupt_set_queue_fd(&irq, 0, -7, &old), 0);
	assert_int_equal(old, b);
	assert_int_equal(irq.queue_fd[0], -1);
	vdk_interrupt_signal_used_queue(&irq, 0);
	assert_int_equal(efd_read(b), 0);
	/* a queue that had none */
	assert_int_equal(vdk_interrupt_set_queue_fd(&irq, 63, b, &old), 0);
	assert_int_equal(old, -1);
	vdk_interrupt_signal_used_queue(&irq, 63);
	assert_int_equal(efd_read(b), 1);

	/* config: configuration change and needs_reset follow it */
	assert_int_equal(vdk_interrupt_set_config_fd(&irq, c, &old), 0);
	assert_int_equal(old, -1);
	vdk_interrupt_signal_config_changed(&irq);
	vdk_interrupt_needs_reset(&irq);
	assert_int_equal(efd_read(c), 2);
	assert_int_equal(vdk_interrupt_set_config_fd(&irq, -1, &old), 0);
	assert_int_equal(old, c);
	vdk_interrupt_signal_config_changed(&irq);
	assert_int_equal(efd_read(c), 0);
	assert_int_equal(irq.signal_errors, 0);
	close(a);
	close(b);
	close(c);
}

/* A write that fails (a read-only fd) is counted every time and logged
 * once; EAGAIN (a full counter) is no failure. */
static void test_interrupt_write_errors(void **state)
{
	struct vdk_interrupt irq;
	int ro = open("/dev/null", O_RDONLY | O_CLOEXEC), old;

	(void)state;
	assert_true(ro >= 0);
	errors_logged = 0;
	vdk_log_set_sink(count_errors, NULL, VDK_LOG_DEBUG);
	assert_int_equal(vdk_interrupt_init_eventfd(&irq, &ro, 1, ro), 0);
	vdk_interrupt_signal_used_queue(&irq, 0);
	vdk_interrupt_signal_used_queue(&irq, 0);
	vdk_interrupt_signal_config_changed(&irq);
	assert_int_equal(irq.signal_errors, 3);
	assert_int_equal(errors_logged, 1);
	assert_int_equal(vdk_interrupt_set_queue_fd(&irq, 0, -1, &old), 0);
	assert_int_equal(old, ro);
	vdk_interrupt_signal_used_queue(&irq, 0);
	assert_int_equal(irq.signal_errors, 3);
	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_ERROR);
	close(ro);
}

/* Signallers for the stress test: each signals queue 0 (and every 64th
 * time the config fd) until told to stop. */
struct signaller {
	pthread_t thread;
	struct vdk_interrupt *irq;
	bool stop;	  /* atomic */
	uint64_t used;	  /* atomic: used buffer notifications sent */
	uint64_t configs; /* config notifications sent (read after join) */
};

static void *signaller_main(void *arg)
{
	struct signaller *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		vdk_interrupt_signal_used_queue(s->irq, 0);
		__atomic_fetch_add(&s->used, 1, __ATOMIC_RELEASE);
		if ((s->used & 63) == 0) {
			vdk_interrupt_signal_config_changed(s->irq);
			s->configs++;
		}
		/* leave the CPU to the replacing thread now and then, or on
		 * a busy machine each round waits for a time slice */
		if ((s->used & 7) == 0)
			sched_yield();
	}
	return NULL;
}

#define STRESS_ROUNDS 3000
#define STRESS_KEEP   32 /* replaced fds and decoys watched at once */
#define NSIGNALLERS   2

static uint64_t sent_used(struct signaller *s)
{
	uint64_t n = 0;

	for (int k = 0; k < NSIGNALLERS; k++)
		n += __atomic_load_n(&s[k].used, __ATOMIC_ACQUIRE);
	return n;
}

/*
 * Two threads signal queue 0 (and the config fd) without pause while this
 * one replaces queue 0's eventfd STRESS_ROUNDS times. After each
 * replacement the old eventfd is read (what it got while installed) and
 * watched, and a decoy eventfd is opened, which likely takes the number of
 * an fd just closed: neither may receive anything afterwards. In the end
 * the eventfds got exactly what was sent.
 */
static void test_interrupt_replace_under_signals(void **state)
{
	struct signaller s[NSIGNALLERS];
	struct vdk_interrupt irq;
	int watch[STRESS_KEEP], nwatch = 0, cfg = efd_new();
	int cur = efd_new(), old;
	uint64_t got = 0, got_cfg = 0, sent;

	(void)state;
	assert_int_equal(vdk_interrupt_init_eventfd(&irq, &cur, 1, cfg), 0);
	for (int k = 0; k < NSIGNALLERS; k++) {
		s[k] = (struct signaller){.irq = &irq};
		assert_int_equal(pthread_create(&s[k].thread, NULL,
						signaller_main, &s[k]),
				 0);
	}
	for (int round = 0; round < STRESS_ROUNDS; round++) {
		int next = efd_new();
		uint64_t before = sent_used(s);

		/* let the signallers use the current fd */
		while (sent_used(s) < before + 2)
			sched_yield();
		assert_int_equal(
			vdk_interrupt_set_queue_fd(&irq, 0, next, &old), 0);
		assert_int_equal(old, cur);
		got += efd_read(cur);
		close(cur); /* as a vhost-user back-end does */
		/* the decoy: probably cur's number again */
		if (nwatch == STRESS_KEEP) {
			for (int k = 0; k < nwatch; k++) {
				assert_int_equal(efd_read(watch[k]), 0);
				close(watch[k]);
			}
			nwatch = 0;
		}
		watch[nwatch++] = efd_new();
		/* the config fd is replaced now and then too */
		if (round % 100 == 0) {
			int c2 = efd_new();

			assert_int_equal(
				vdk_interrupt_set_config_fd(&irq, c2, &old), 0);
			assert_int_equal(old, cfg);
			got_cfg += efd_read(cfg);
			close(cfg);
			cfg = c2;
		}
		cur = next;
	}
	for (int k = 0; k < NSIGNALLERS; k++) {
		__atomic_store_n(&s[k].stop, true, __ATOMIC_RELEASE);
		pthread_join(s[k].thread, NULL);
	}
	got += efd_read(cur);
	got_cfg += efd_read(cfg);
	for (int k = 0; k < nwatch; k++) {
		assert_int_equal(efd_read(watch[k]), 0);
		close(watch[k]);
	}
	sent = sent_used(s);
	assert_true(sent >= 2 * STRESS_ROUNDS);
	assert_int_equal(got, sent);
	assert_int_equal(got_cfg, s[0].configs + s[1].configs);
	assert_int_equal(irq.signal_errors, 0);
	close(cur);
	close(cfg);
}

/* ---- interrupts raised by a device -------------------------------------- */

static void test_echo_broken_queue(void **state)
{
	struct echo_env *t = *state;
	struct guest_buf b[1] = {{0x10000, 8, false}};

	echo_activate(t, VERSION_1);
	/* A head index beyond the queue size: a driver error. */
	assert_int_equal(guest_ring_set_avail_slot(&t->gr[0], 0, QSIZE + 3), 0);
	assert_int_equal(guest_ring_set_avail_idx(&t->gr[0], 1), 0);
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_ECHO);
	assert_int_equal(t->log.reset, 1);
	assert_true(t->irq.needs_reset);
	assert_int_equal(echo_device_stats(t->e).errors, 1);
	/* Reported once; later notifications are ignored until reset. */
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_ECHO);
	assert_int_equal(t->log.reset, 1);
	/* The other queue stops too (the device needs a reset). */
	assert_true(guest_ring_add_chain(&t->gr[1], b, 1) >= 0);
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_SINK);
	assert_int_equal(guest_ring_used_idx(&t->gr[1]), 0);
	/* After reset and re-activation it works again. */
	assert_int_equal(vdk_device_reset(t->dev), 0);
	t->irq.needs_reset = false;
	echo_activate(t, VERSION_1);
	assert_true(guest_ring_add_chain(&t->gr[1], b, 1) >= 0);
	vdk_device_queue_notify(t->dev, ECHO_QUEUE_SINK);
	assert_int_equal(guest_ring_used_idx(&t->gr[1]), 1);
	assert_int_equal(t->log.reset, 1);
}

static void test_echo_config_change(void **state)
{
	struct echo_env *t = *state;
	const uint8_t id[8] = "echo-two";

	echo_device_set_id(t->e, id); /* not active: no notification */
	assert_int_equal(t->log.config, 0);
	echo_activate(t, VERSION_1);
	echo_device_set_id(t->e, id);
	assert_int_equal(t->log.config, 1);
	assert_memory_equal(echo_device_config(t->e).id, id, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interrupt_callback),
		cmocka_unit_test(test_interrupt_eventfd),
		cmocka_unit_test(test_interrupt_set_fd),
		cmocka_unit_test(test_interrupt_write_errors),
		cmocka_unit_test(test_interrupt_replace_under_signals),
		cmocka_unit_test_setup_teardown(test_echo_broken_queue,
						echo_setup, echo_teardown),
		cmocka_unit_test_setup_teardown(test_echo_config_change,
						echo_setup, echo_teardown),
	};

	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
