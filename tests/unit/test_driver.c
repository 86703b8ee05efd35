/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for src/driver/: the driver side of virtio driving real vdk devices
 * in one process (environment in driver_env.h) - the transport: probing,
 * feature negotiation and initialisation, configuration space and its
 * generation, interrupt acknowledgement, reset and re-initialisation,
 * snapshot/restore under a live driver, and virtio-rng. Queue operations
 * and a hostile device are tested in test_driver_virtq.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include <vdk/bus.h>
#include <vdk/device.h>
#include <vdk/driver.h>
#include <vdk/mem.h>
#include <vdk/mmio.h>
#include <vdk/virtq.h>

#include <vdk/devices/rng.h>

#include "driver_env.h"
#include "echo_device.h"

/* ---- probing and initialisation ----------------------------------------- */

/* A register file the test controls, for windows vdk_mmio never shows. */
struct fake_regs {
	uint32_t magic, version, device_id;
};

static void fake_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		      size_t len)
{
	const struct fake_regs *f = opaque;
	uint32_t v = 0;

	(void)base;
	if (offset == VIRTIO_MMIO_MAGIC_VALUE)
		v = f->magic;
	else if (offset == VIRTIO_MMIO_VERSION)
		v = f->version;
	else if (offset == VIRTIO_MMIO_DEVICE_ID)
		v = f->device_id;
	memcpy(data, &v, len < 4 ? len : 4);
}

static const struct vdk_bus_device_ops fake_ops = {.read = fake_read};

static void test_probe(void **state)
{
	struct env *e = env_new(0);
	struct fake_regs f = {0x74726976, 2, 0};
	struct vdk_driver_mmio m;

	(void)state;
	assert_int_equal(e->drv.device_id, ECHO_DEVICE_ID);
	assert_int_equal(vdk_driver_mmio_ops.device_type(&e->drv),
			 ECHO_DEVICE_ID);
	/* Nothing mapped there: reads as 0, not a virtio-mmio device. */
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 -ENXIO);
	assert_int_equal(
		vdk_bus_register(e->bus,
				 (struct vdk_bus_range){FAKE_BASE, 0x200},
				 (struct vdk_bus_device){&fake_ops, &f}),
		0);
	/* Placeholder window: magic and version fine, no device. */
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 -ENODEV);
	/* Legacy (version 1) interface: refused. */
	f.version = 1;
	f.device_id = VIRTIO_ID_RNG;
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 -EPROTONOSUPPORT);
	f.magic = 0x12345678;
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 -ENXIO);
	f.magic = 0x74726976;
	f.version = 2;
	assert_int_equal(vdk_driver_mmio_init(&m, FAKE_BASE, &bus_access, e),
			 0);
	assert_int_equal(m.device_id, VIRTIO_ID_RNG);
	assert_int_equal(vdk_bus_deregister(e->bus, FAKE_BASE, NULL), 0);
	env_free(e);
}

static void test_negotiation(void **state)
{
	struct env *e = env_new(0);
	uint64_t neg = 0;
	uint8_t st;

	(void)state;
	/* Bit 5 is not offered: it must not be accepted. */
	assert_int_equal(vdk_driver_begin_init(
				 tp(e), V1 | F(ECHO_F_INVERT) | F(5), &neg),
			 0);
	assert_int_equal(neg, V1 | F(ECHO_F_INVERT));
	st = vdk_mmio_status(e->mmio);
	assert_int_equal(st, VIRTIO_CONFIG_S_ACKNOWLEDGE |
				     VIRTIO_CONFIG_S_DRIVER |
				     VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);
	assert_true(vdk_mmio_status(e->mmio) & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(echo_device_inverting(e->echo));
	assert_false(vdk_driver_needs_reset(tp(e)));

	/* Renegotiating resets first, and without INVERT it is off. */
	assert_int_equal(vdk_driver_begin_init(tp(e), V1, &neg), 0);
	assert_int_equal(neg, V1);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);
	assert_false(echo_device_inverting(e->echo));

	/* A driver without VERSION_1 gives up cleanly: FAILED, nothing
	 * accepted, and the device is not live. */
	neg = 0xdead;
	assert_int_equal(vdk_driver_begin_init(tp(e), F(ECHO_F_INVERT), &neg),
			 -EOPNOTSUPP);
	assert_int_equal(neg, 0xdead);
	st = vdk_mmio_status(e->mmio);
	assert_true(st & VIRTIO_CONFIG_S_FAILED);
	assert_false(st & VIRTIO_CONFIG_S_FEATURES_OK);
	assert_false(st & VIRTIO_CONFIG_S_DRIVER_OK);

	/* Reset recovers from FAILED. */
	assert_int_equal(vdk_driver_reset(tp(e)), 0);
	assert_int_equal(vdk_mmio_status(e->mmio), 0);
	env_free(e);
}

/* A transport that claims a feature the device does not have, so the
 * driver accepts it and the device must refuse FEATURES_OK. */
static uint64_t lying_features(void *ctx)
{
	return vdk_driver_mmio_ops.read_device_features(ctx) | F(20);
}

static void test_features_refused(void **state)
{
	struct env *e = env_new(0);
	struct vdk_driver_transport_ops ops = vdk_driver_mmio_ops;
	struct vdk_driver_transport t = {&ops, &e->drv};

	(void)state;
	ops.read_device_features = lying_features;
	assert_int_equal(vdk_driver_begin_init(&t, V1 | F(20), NULL), -EIO);
	assert_true(vdk_mmio_status(e->mmio) & VIRTIO_CONFIG_S_FAILED);
	assert_false(vdk_mmio_status(e->mmio) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* The honest transport still initialises the device. */
	assert_int_equal(vdk_driver_begin_init(tp(e), V1 | F(20), NULL), 0);
	env_free(e);
}

/* ---- configuration space ----------------------------------------------- */

static void test_config(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t cfg[ECHO_CONFIG_SIZE], id[8];
	uint8_t val[4] = {0x78, 0x56, 0x34, 0x12};
	uint32_t gen;

	(void)state;
	bring_up(e, V1, &q0, NULL, 8, 0);
	assert_int_equal(
		vdk_driver_read_config_consistent(tp(e), 0, cfg, sizeof(cfg)),
		0);
	assert_memory_equal(cfg + ECHO_CONFIG_ID, "vdk-echo", 8);
	assert_int_equal(cfg[ECHO_CONFIG_COUNTER], 0);

	/* settable round-trips with any access width; id is read-only. */
	assert_int_equal(tp(e)->ops->write_config(tp(e)->ctx,
						  ECHO_CONFIG_SETTABLE, val, 4),
			 0);
	assert_int_equal(echo_device_config(e->echo).settable, 0x12345678);
	assert_int_equal(tp(e)->ops->write_config(tp(e)->ctx,
						  ECHO_CONFIG_SETTABLE + 1,
						  "\xaa", 1),
			 0);
	assert_int_equal(echo_device_config(e->echo).settable, 0x1234aa78);
	assert_int_equal(
		tp(e)->ops->write_config(tp(e)->ctx, ECHO_CONFIG_ID, "XXXX", 4),
		0);
	assert_int_equal(tp(e)->ops->read_config(
				 tp(e)->ctx, ECHO_CONFIG_SETTABLE + 1, cfg, 11),
			 0);
	assert_memory_equal(cfg, "\xaa\x34\x12vdk-echo", 11);

	/* The counter follows the device's work. */
	uint8_t *src = ram_alloc(e, 8, 8), *dst = ram_alloc(e, 8, 8);
	echo_once(&q0, src, 8, dst, 8);
	echo_once(&q0, src, 8, dst, 8);
	assert_int_equal(tp(e)->ops->read_config(tp(e)->ctx,
						 ECHO_CONFIG_COUNTER, cfg, 4),
			 0);
	assert_int_equal(cfg[0], 2);

	/* A device-side change bumps the generation and raises a
	 * configuration change interrupt. */
	gen = tp(e)->ops->config_generation(tp(e)->ctx);
	tp(e)->ops->ack_interrupt(tp(e)->ctx);
	memcpy(id, "newid-01", 8);
	echo_device_set_id(e->echo, id);
	assert_int_not_equal(tp(e)->ops->config_generation(tp(e)->ctx), gen);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_CONFIG);
	assert_int_equal(
		vdk_driver_read_config_consistent(tp(e), ECHO_CONFIG_ID, id, 8),
		0);
	assert_memory_equal(id, "newid-01", 8);
	env_free(e);
}

static void test_config_consistent_retry(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t id[8];

	(void)state;
	bring_up(e, V1, &q0, NULL, 8, 0);
	/* The id changes between the two 32-bit halves of an 8-byte read:
	 * a plain read is torn... */
	e->change_countdown = 1;
	e->next_id = 'x';
	assert_int_equal(
		tp(e)->ops->read_config(tp(e)->ctx, ECHO_CONFIG_ID, id, 8), 0);
	assert_memory_equal(id, "vdk-gedx", 8);
	/* ...the generation-checked one retries and is not. */
	e->change_countdown = 1;
	e->next_id = '1';
	e->config_reads = 0;
	assert_int_equal(
		vdk_driver_read_config_consistent(tp(e), ECHO_CONFIG_ID, id, 8),
		0);
	assert_memory_equal(id, "changed1", 8);
	assert_int_equal(e->config_reads, 4); /* two attempts of two reads */

	/* A device whose configuration never settles: bounded, -EAGAIN. */
	e->change_always = true;
	e->config_reads = 0;
	assert_int_equal(
		vdk_driver_read_config_consistent(tp(e), ECHO_CONFIG_ID, id, 8),
		-EAGAIN);
	assert_int_equal(e->config_reads, 2 * VDK_DRIVER_CONFIG_RETRIES);
	e->change_always = false;
	assert_int_equal(tp(e)->ops->read_config(tp(e)->ctx, UINT32_MAX, id, 2),
			 -ERANGE);
	env_free(e);
}

/* ---- interrupts ------------------------------------------------------------ */

static void test_interrupt_ack(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0};
	uint8_t *buf = ram_alloc(e, 64, 64);

	(void)state;
	bring_up(e, V1, &q0, NULL, 8, 0);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx), 0);
	assert_false(e->irq_level);
	echo_once(&q0, buf, 8, buf + 8, 8);
	assert_true(e->irq_level);
	assert_int_equal(e->irq_raises, 1);
	assert_int_equal(vdk_mmio_interrupt_status(e->mmio),
			 VDK_DRIVER_INT_QUEUE);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE);
	assert_false(e->irq_level);
	assert_int_equal(vdk_mmio_interrupt_status(e->mmio), 0);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx), 0);

	/* A queue interrupt and a config interrupt together, acked at once. */
	echo_once(&q0, buf, 8, buf + 8, 8);
	echo_device_set_id(e->echo, (const uint8_t *)"abcdefgh");
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE | VDK_DRIVER_INT_CONFIG);
	assert_false(e->irq_level);
	assert_int_equal(e->irq_raises, 2);
	env_free(e);
}

/* ---- lifecycle: reset, snapshot/restore ---------------------------------- */

static void test_reset_reinit(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0}, q1 = {0};
	uint8_t *buf = ram_alloc(e, 256, 64);
	struct vdk_driver_buf r = {buf, 16};

	(void)state;
	bring_up(e, V1, &q0, &q1, 8, 0);
	fill(buf, 16, 1);
	assert_int_equal(echo_once(&q0, buf, 16, buf + 64, 16), 16);
	/* Buffers left in flight when the driver resets are forgotten by
	 * both sides. */
	assert_true(vdk_driver_virtq_add(&q0.q, &r, 1, NULL, 0) >= 0);
	assert_true(vdk_driver_virtq_add(&q1.q, &r, 1, NULL, 0) >= 0);
	assert_int_equal(vdk_driver_reset(tp(e)), 0);
	assert_int_equal(vdk_mmio_status(e->mmio), 0);
	assert_false(tp(e)->ops->queue_used(tp(e)->ctx, 0));
	assert_int_equal(echo_device_config(e->echo).counter, 0);

	/* Re-initialise with another queue size on the same memory. */
	bring_up(e, V1, &q0, &q1, 4, 0);
	assert_int_equal(vdk_driver_virtq_num_free(&q0.q), 4);
	for (int i = 0; i < 6; i++) {
		fill(buf, 100, (uint8_t)(i * 3));
		assert_int_equal(echo_once(&q0, buf, 100, buf + 128, 100), 100);
		assert_memory_equal(buf, buf + 128, 100);
	}
	struct echo_stats st = echo_device_stats(e->echo);
	assert_int_equal(st.activations, 2);
	assert_int_equal(st.resets, 1);
	assert_int_equal(st.echo_chains, 7);
	env_free(e);
}

static void test_snapshot_restore(void **state)
{
	struct env *e = env_new(0);
	struct dq q0 = {0}, q1 = {0};
	uint8_t *src = ram_alloc(e, 512, 64), *dst = ram_alloc(e, 512, 64);
	uint8_t val[4] = {0x55, 0, 0, 0}, cfg[4];
	struct vdk_driver_buf r = {src, 200}, w = {dst, 200};
	uint8_t *snap = NULL;
	size_t snap_len = 0;
	uint16_t token;
	uint32_t len;
	int head;

	(void)state;
	bring_up(e, V1 | F(ECHO_F_INVERT), &q0, &q1, 16, 0);
	for (int i = 0; i < 3; i++)
		echo_once(&q0, src, 64, dst, 64);
	tp(e)->ops->write_config(tp(e)->ctx, ECHO_CONFIG_SETTABLE, val, 4);
	tp(e)->ops->ack_interrupt(tp(e)->ctx);
	/* A chain made available but not yet seen by the device. */
	fill(src, 200, 42);
	memset(dst, 0, 512);
	head = vdk_driver_virtq_add(&q0.q, &r, 1, &w, 1);
	assert_true(head >= 0);

	assert_int_equal(vdk_mmio_sleep(e->mmio), 0);
	assert_int_equal(vdk_mmio_snapshot(e->mmio, &snap, &snap_len), 0);
	assert_true(snap_len > 0);
	/* The old transport and device go away; fresh ones take over. */
	free_device(e);
	new_device(e);
	assert_int_equal(vdk_mmio_status(e->mmio), 0);
	assert_int_equal(vdk_mmio_sleep(e->mmio), 0);
	assert_int_equal(vdk_mmio_restore(e->mmio, snap, snap_len), 0);
	free(snap);
	assert_int_equal(vdk_mmio_wake(e->mmio), 0);

	/* The driver carries on as if nothing happened: status, features,
	 * configuration, queues and the pending chain all survived. */
	assert_true(vdk_mmio_status(e->mmio) & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(echo_device_inverting(e->echo));
	assert_int_equal(tp(e)->ops->read_config(tp(e)->ctx,
						 ECHO_CONFIG_SETTABLE, cfg, 4),
			 0);
	assert_memory_equal(cfg, val, 4);
	/* The woken device caught up with the chain it had not seen. */
	assert_true(vdk_driver_virtq_can_pop(&q0.q));
	assert_int_equal(vdk_driver_virtq_pop_used(&q0.q, &token, &len), 0);
	assert_int_equal(token, head);
	assert_int_equal(len, 200);
	for (int i = 0; i < 200; i++)
		assert_int_equal(dst[i], src[i] ^ 0xff);
	for (uint32_t n = 1; n <= 512; n *= 8) {
		fill(src, n, (uint8_t)n);
		assert_int_equal(echo_once(&q0, src, n, dst, n), n);
		assert_int_equal(dst[n - 1], src[n - 1] ^ 0xff);
	}
	assert_true(vdk_driver_virtq_add(&q1.q, &r, 1, NULL, 0) >= 0);
	vdk_driver_virtq_kick(&q1.q);
	assert_int_equal(vdk_driver_virtq_pop_used(&q1.q, &token, &len), 0);
	assert_int_equal(echo_device_stats(e->echo).sink_bytes, 200);
	/* The processed-chains counter continued from the snapshot. */
	assert_int_equal(tp(e)->ops->read_config(tp(e)->ctx,
						 ECHO_CONFIG_COUNTER, cfg, 4),
			 0);
	assert_int_equal(cfg[0], 3 + 1 + 4 + 1);
	env_free(e);
}

/* ---- virtio-rng ------------------------------------------------------------ */

static void test_rng(void **state)
{
	struct env *e = env_new(0);
	struct vdk_rng_config rcfg = {.max_bytes_per_request = 48};
	struct vdk_rng *rng = NULL;
	struct dq q = {0};
	uint8_t *buf = ram_alloc(e, 4 * 64, 64);
	int heads[4], err = -1;
	uint64_t neg;
	uint16_t token;
	uint32_t len;

	(void)state;
	/* Put a virtio-rng device where the echo device was. */
	free_device(e);
	rng = vdk_rng_new(&rcfg, NULL);
	assert_non_null(rng);
	struct vdk_mmio_config mcfg = {.device = vdk_rng_device(rng),
				       .mem = e->mem};
	struct vdk_mmio *mmio = vdk_mmio_new(&mcfg, &err);
	assert_non_null(mmio);
	assert_int_equal(vdk_mmio_register(mmio, e->bus, MMIO_BASE), 0);

	assert_int_equal(
		vdk_driver_mmio_init(&e->drv, MMIO_BASE, &bus_access, e), 0);
	assert_int_equal(e->drv.device_id, VIRTIO_ID_RNG);
	assert_int_equal(
		vdk_driver_begin_init(tp(e), V1 | F(ECHO_F_INVERT), &neg), 0);
	assert_int_equal(neg, V1);
	assert_int_equal(dq_init(e, &q, VDK_RNG_REQUESTQ, 8, neg, 0), 0);
	assert_int_equal(vdk_driver_finish_init(tp(e)), 0);

	/* §5.4.6: device-writable buffers come back filled. */
	memset(buf, 0, 4 * 64);
	for (int i = 0; i < 4; i++) {
		struct vdk_driver_buf w = {buf + 64 * i, i == 3 ? 16 : 64};

		heads[i] = vdk_driver_virtq_add(&q.q, NULL, 0, &w, 1);
		assert_true(heads[i] >= 0);
	}
	assert_true(vdk_driver_virtq_kick(&q.q));
	for (int i = 0; i < 4; i++) {
		bool nonzero = false;

		assert_int_equal(vdk_driver_virtq_pop_used(&q.q, &token, &len),
				 0);
		assert_int_equal(token, heads[i]);
		/* At most max_bytes_per_request, at most the buffer. */
		assert_int_equal(len, i == 3 ? 16 : 48);
		for (uint32_t j = 0; j < len; j++)
			nonzero |= buf[64 * i + j] != 0;
		assert_true(nonzero);
		/* Nothing beyond what the device said it wrote. */
		for (uint32_t j = len; j < 64 && i < 3; j++)
			assert_int_equal(buf[64 * i + j], 0);
	}
	assert_memory_not_equal(buf, buf + 64, 48);
	assert_int_equal(vdk_rng_stats(rng).requests, 4);
	assert_int_equal(vdk_rng_stats(rng).bytes, 3 * 48 + 16);
	assert_int_equal(tp(e)->ops->ack_interrupt(tp(e)->ctx),
			 VDK_DRIVER_INT_QUEUE);

	assert_int_equal(vdk_bus_deregister(e->bus, MMIO_BASE, NULL), 0);
	vdk_mmio_free(mmio);
	vdk_rng_free(rng);
	vdk_bus_free(e->bus);
	vdk_mem_free(e->mem);
	free(e);
	g_env = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_features_refused),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_consistent_retry),
		cmocka_unit_test(test_interrupt_ack),
		cmocka_unit_test(test_reset_reinit),
		cmocka_unit_test(test_snapshot_restore),
		cmocka_unit_test(test_rng),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
