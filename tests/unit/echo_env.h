/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The echo-device test environment shared by test_device.c and
 * test_interrupt.c: guest memory, the echo test device with its two queues
 * driven by the guest_ring mock driver, and a callback interrupt that
 * counts what the device raises (struct irq_log).
 *
 * Header-only (every function static inline) because each unit test is
 * built from its one .c file. Include after <cmocka.h>.
 */
#ifndef VDK_TESTS_ECHO_ENV_H
#define VDK_TESTS_ECHO_ENV_H

#include <stdlib.h>

#include <linux/virtio_config.h>

#include <vdk/device.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "echo_device.h"
#include "guest_ring.h"

#define VERSION_1 (1ull << VIRTIO_F_VERSION_1)
#define INVERT	  (1ull << ECHO_F_INVERT)

/* A log sink that drops everything (driver errors are expected here). */
static inline void quiet_sink(void *opaque, enum vdk_log_level level,
			      const char *module, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

/* What a callback interrupt saw, per kind (queues 0..3). */
struct irq_log {
	int used[4], config, reset;
};

static inline void log_used(void *o, uint16_t q)
{
	struct irq_log *l = o;

	if (q < 4)
		l->used[q]++;
}
static inline void log_config(void *o)
{
	((struct irq_log *)o)->config++;
}
static inline void log_reset(void *o)
{
	((struct irq_log *)o)->reset++;
}

/* ---- guest memory, the echo device and its two queues ---- */

#define MEM_SIZE (1u << 20)
#define QSIZE	 16

struct echo_env {
	struct vdk_mem *mem;
	struct echo_device *e;
	struct vdk_device *dev;
	struct vdk_virtq q[2];
	struct vdk_virtq *qp[2];
	struct guest_ring gr[2];
	struct vdk_interrupt irq;
	struct irq_log log;
};

static inline int echo_setup(void **state)
{
	static const struct vdk_interrupt_ops log_ops = {log_used, log_config,
							 log_reset};
	struct echo_env *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->mem = vdk_mem_new(NULL);
	if (!t->mem || vdk_mem_add_memfd(t->mem, 0, MEM_SIZE, "echo") < 0)
		return -1;
	t->e = echo_device_new(NULL);
	if (!t->e)
		return -1;
	t->dev = echo_device_vdk(t->e);
	vdk_interrupt_init_callback(&t->irq, &log_ops, &t->log);
	*state = t;
	return 0;
}

static inline int echo_teardown(void **state)
{
	struct echo_env *t = *state;

	echo_device_free(t->e);
	vdk_mem_free(t->mem);
	free(t);
	return 0;
}

/* Acknowledge @features, start both queues and activate the device. */
static inline void echo_activate(struct echo_env *t, uint64_t features)
{
	assert_int_equal(vdk_device_ack_features(t->dev, features), 0);
	for (uint16_t i = 0; i < 2; i++) {
		assert_int_equal(
			guest_ring_init(&t->gr[i], t->mem, QSIZE, i * 0x1000),
			0);
		assert_int_equal(
			vdk_virtq_init(&t->q[i], ECHO_QUEUE_MAX_SIZE, i), 0);
		assert_int_equal(vdk_virtq_set_size(&t->q[i], QSIZE), 0);
		assert_int_equal(vdk_virtq_set_addrs(
					 &t->q[i], t->gr[i].desc_gpa,
					 t->gr[i].avail_gpa, t->gr[i].used_gpa),
				 0);
		vdk_virtq_set_ready(&t->q[i], true);
		assert_int_equal(vdk_virtq_activate(&t->q[i], t->mem, features),
				 0);
		t->qp[i] = &t->q[i];
	}
	assert_int_equal(vdk_device_activate(t->dev, t->mem, &t->irq, t->qp),
			 0);
}

#endif /* VDK_TESTS_ECHO_ENV_H */
