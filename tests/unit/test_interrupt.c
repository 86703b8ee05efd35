/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the interrupt object (src/interrupt.c): callback and eventfd
 * delivery, and the interrupts a device raises through it - DEVICE_NEEDS_RESET
 * once when a driver error stops a queue, and a configuration change
 * notification only while the device is active.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
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
		cmocka_unit_test_setup_teardown(test_echo_broken_queue,
						echo_setup, echo_teardown),
		cmocka_unit_test_setup_teardown(test_echo_config_change,
						echo_setup, echo_teardown),
	};

	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
