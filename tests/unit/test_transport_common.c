/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/transport/common.c, the device status rules both
 * transports share (virtio 1.2 §2.1, §3.1.1): bits only added and in
 * order, FEATURES_OK only when the features are acceptable, DRIVER_OK
 * activates once, FAILED freezes the status, DEVICE_NEEDS_RESET blocks
 * everything but a reset, 0 resets.
 */
#include <errno.h>
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

/* The feature registers read word 0 or 1 of the 64-bit value, 0 beyond. */
static void test_features_word(void **state)
{
	(void)state;
	assert_int_equal(vdk_transport_features_word(0x1122334455667788ull, 0),
			 0x55667788u);
	assert_int_equal(vdk_transport_features_word(0x1122334455667788ull, 1),
			 0x11223344u);
	assert_int_equal(vdk_transport_features_word(~0ull, 2), 0);
	assert_int_equal(vdk_transport_features_word(~0ull, UINT32_MAX), 0);
}

/* A restored state must be one a transport could have reached. */
static void test_snap_state_ok(void **state)
{
	const uint64_t v1 = 1ull << VIRTIO_F_VERSION_1;
	struct vdk_transport c = {.device_features = v1 | 1};
	const uint8_t fok = VIRTIO_CONFIG_S_ACKNOWLEDGE |
			    VIRTIO_CONFIG_S_DRIVER |
			    VIRTIO_CONFIG_S_FEATURES_OK;

	(void)state;
	assert_true(vdk_transport_snap_state_ok(&c, 0, 0, false));
	assert_true(vdk_transport_snap_state_ok(&c, fok, v1, false));
	assert_true(vdk_transport_snap_state_ok(
		&c, fok | VIRTIO_CONFIG_S_DRIVER_OK, v1 | 1, true));
	assert_true(vdk_transport_snap_state_ok(
		&c, fok | VIRTIO_CONFIG_S_NEEDS_RESET, v1, false));
	/* a bit no driver writes */
	assert_false(vdk_transport_snap_state_ok(&c, 0x20, 0, false));
	/* features that were never offered */
	assert_false(vdk_transport_snap_state_ok(&c, fok, v1 | 2, false));
	/* FEATURES_OK without VERSION_1 */
	assert_false(vdk_transport_snap_state_ok(&c, fok, 1, false));
	/* DRIVER_OK without FEATURES_OK */
	assert_false(vdk_transport_snap_state_ok(&c, VIRTIO_CONFIG_S_DRIVER_OK,
						 0, false));
	/* active without DRIVER_OK */
	assert_false(vdk_transport_snap_state_ok(&c, fok, v1, true));
}

/* The format and version at the head of a snapshot. */
static void test_snap_header(void **state)
{
	cbor_item_t *m = cbor_new_definite_map(2);
	cbor_item_t *other = cbor_new_definite_map(2);
	cbor_item_t *arr = cbor_new_definite_array(0);

	(void)state;
	assert_true(vdk_transport_snap_put_header(m, "vdk-x", 1));
	assert_int_equal(vdk_transport_snap_header(m, "vdk-x", 1), 0);
	assert_int_equal(vdk_transport_snap_header(m, "vdk-x", 2), -EPROTO);
	assert_int_equal(vdk_transport_snap_header(m, "vdk-y", 1), -EINVAL);
	assert_int_equal(vdk_transport_snap_header(arr, "vdk-x", 1), -EINVAL);
	/* no version */
	assert_true(
		vdk_snapshot_put(other, "format", cbor_build_string("vdk-x")));
	assert_int_equal(vdk_transport_snap_header(other, "vdk-x", 1), -EINVAL);
	cbor_decref(&m);
	cbor_decref(&other);
	cbor_decref(&arr);
}

/* Each 32-bit half of a queue address changes only that half. */
static void test_queue_addr(void **state)
{
	struct vdk_virtq q;

	(void)state;
	assert_int_equal(vdk_virtq_init(&q, 256, 0), 0);
	vdk_transport_set_queue_addr(&q, 0, false, 0x1000);
	vdk_transport_set_queue_addr(&q, 0, true, 0x2);
	vdk_transport_set_queue_addr(&q, 1, false, 0x3000);
	vdk_transport_set_queue_addr(&q, 2, true, 0x4);
	vdk_transport_set_queue_addr(&q, 2, false, 0x5000);
	assert_true(q.desc_gpa == 0x200001000ull);
	assert_true(q.driver_gpa == 0x3000ull);
	assert_true(q.device_gpa == 0x400005000ull);
	vdk_transport_set_queue_addr(&q, 0, false, 0x6000);
	assert_true(q.desc_gpa == 0x200006000ull);
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
		cmocka_unit_test(test_features_word),
		cmocka_unit_test(test_snap_state_ok),
		cmocka_unit_test(test_snap_header),
		cmocka_unit_test(test_queue_addr),
	};

	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
