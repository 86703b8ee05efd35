/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/transport/common.c, the device status rules both
 * transports share (virtio 1.2 §2.1, §3.1.1): bits only added and in
 * order, FEATURES_OK only when the features are acceptable, DRIVER_OK
 * activates once, FAILED freezes the status, DEVICE_NEEDS_RESET blocks
 * everything but a reset, 0 resets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/virtio_config.h>

#include <vdk/log.h>

#include "../../src/transport/common.h"

#define ACK  VIRTIO_CONFIG_S_ACKNOWLEDGE
#define DRV  VIRTIO_CONFIG_S_DRIVER
#define FOK  VIRTIO_CONFIG_S_FEATURES_OK
#define DOK  VIRTIO_CONFIG_S_DRIVER_OK
#define FAIL VIRTIO_CONFIG_S_FAILED

struct t {
	uint8_t status;
	int resets, features_asked, activations;
	bool features_fine;
	struct vdk_ratelimit rl;
};

static void h_reset(void *o)
{
	struct t *t = o;

	t->resets++;
	t->status = 0;
}

static bool h_features(void *o)
{
	struct t *t = o;

	t->features_asked++;
	return t->features_fine;
}

static void h_driver_ok(void *o)
{
	((struct t *)o)->activations++;
}

static const struct vdk_transport_status_hooks hooks = {h_reset, h_features,
							h_driver_ok};

static void wr(struct t *t, uint32_t v, bool needs_reset)
{
	vdk_transport_write_status(&t->status, v, needs_reset, &hooks, t,
				   &t->rl, "test", "dev");
}

static void fresh(struct t *t)
{
	struct vdk_ratelimit rl = VDK_RATELIMIT_INIT;

	*t = (struct t){.features_fine = true, .rl = rl};
}

static void test_sequence(void **state)
{
	struct t t;

	(void)state;
	fresh(&t);
	wr(&t, ACK, false);
	wr(&t, ACK | DRV, false);
	wr(&t, ACK | DRV | FOK, false);
	assert_int_equal(t.status, ACK | DRV | FOK);
	assert_int_equal(t.features_asked, 1);
	wr(&t, ACK | DRV | FOK | DOK, false);
	assert_int_equal(t.status, ACK | DRV | FOK | DOK);
	assert_int_equal(t.activations, 1);
	/* Writing the same value again activates nothing more. */
	wr(&t, ACK | DRV | FOK | DOK, false);
	assert_int_equal(t.activations, 1);
	wr(&t, 0, false);
	assert_int_equal(t.resets, 1);
	assert_int_equal(t.status, 0);
}

static void test_out_of_order(void **state)
{
	struct t t;

	(void)state;
	fresh(&t);
	/* DRIVER without ACKNOWLEDGE; everything at once from 0. */
	wr(&t, DRV, false);
	assert_int_equal(t.status, 0);
	wr(&t, ACK | DRV | FOK | DOK, false);
	assert_int_equal(t.status, ACK | DRV | FOK | DOK);
	assert_int_equal(t.activations, 1);
	/* Clearing bits is refused. */
	wr(&t, ACK, false);
	assert_int_equal(t.status, ACK | DRV | FOK | DOK);
	/* Bits beyond the driver's (NEEDS_RESET, high bits) are dropped. */
	fresh(&t);
	wr(&t, ACK | VIRTIO_CONFIG_S_NEEDS_RESET | 0x100, false);
	assert_int_equal(t.status, ACK);
	/* DRIVER_OK without FEATURES_OK: not activated. */
	fresh(&t);
	wr(&t, ACK | DRV | DOK, false);
	assert_int_equal(t.status, ACK | DRV);
	assert_int_equal(t.activations, 0);
}

static void test_features_refused(void **state)
{
	struct t t;

	(void)state;
	fresh(&t);
	t.features_fine = false;
	wr(&t, ACK | DRV, false);
	wr(&t, ACK | DRV | FOK, false);
	assert_int_equal(t.status, ACK | DRV);
	wr(&t, ACK | DRV | FOK | DOK, false);
	assert_int_equal(t.status, ACK | DRV);
	assert_int_equal(t.activations, 0);
}

static void test_failed_and_needs_reset(void **state)
{
	struct t t;

	(void)state;
	fresh(&t);
	wr(&t, ACK | DRV, false);
	wr(&t, ACK | DRV | FAIL, false);
	assert_int_equal(t.status, ACK | DRV | FAIL);
	wr(&t, ACK | DRV | FAIL | FOK | DOK, false);
	assert_int_equal(t.status, ACK | DRV | FAIL);
	assert_int_equal(t.features_asked, 0);
	wr(&t, 0, false);
	assert_int_equal(t.status, 0);
	/* DEVICE_NEEDS_RESET: nothing but FAILED and reset. */
	wr(&t, ACK, true);
	assert_int_equal(t.status, 0);
	wr(&t, FAIL, true);
	assert_int_equal(t.status, FAIL);
	wr(&t, 0, true);
	assert_int_equal(t.resets, 2);
}

static void quiet(void *o, enum vdk_log_level l, const char *m, const char *s)
{
	(void)o;
	(void)l;
	(void)m;
	(void)s;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_features_refused),
		cmocka_unit_test(test_failed_and_needs_reset),
	};

	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
