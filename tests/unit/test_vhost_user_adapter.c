/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the vhost-user device adapter (src/vhost_user/device_adapter.c)
 * with the two-queue echo device behind it and the scripted front-end of
 * tests/mock/vu_frontend.h in front:
 *   - rings run on their own (vhost-user spec "Ring states"): the device
 *     runs as soon as one ring runs, takes a second ring that starts later,
 *     and goes on with the first when the second stops;
 *   - a SET_FEATURES that changes the features between a stop and a start
 *     (firmware driver, then the OS's) resets the device and activates it
 *     with the new features; the same features only wake it.
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

#include <vdk/device.h>
#include <vdk/log.h>
#include <vdk/vhost_user.h>

#include "echo_device.h"
#include "guest_ring.h"
#include "vu_frontend.h"
/* the connection's adapter (its memory map) */
#include "vhost_user/internal.h"

#define RAM_GPA	  0x100000ull
#define RAM_SIZE  0x40000ull
#define QSIZE	  16
#define DATA_GPA  (RAM_GPA + 0x10000)
#define F_VERSION (1ull << VIRTIO_F_VERSION_1)
#define F_INVERT  (1ull << ECHO_F_INVERT)
#define F_VU_PF	  (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define RING_NEW  (VU_FE_RING_INIT | VU_FE_RING_ENABLE)

struct fx {
	struct vu_fe fe;
	struct echo_device *echo;
	struct vdk_device *dev;
};

static void fail_fn(const char *msg)
{
	fail_msg("front-end script: %s", msg);
}

static int setup(void **state)
{
	const struct vu_fe_config cfg = {RAM_GPA, RAM_SIZE, ECHO_NUM_QUEUES,
					 QSIZE};
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || vu_fe_init(&f->fe, &cfg, fail_fn) < 0)
		return -1;
	f->echo = echo_device_new(NULL);
	if (!f->echo)
		return -1;
	f->dev = echo_device_vdk(f->echo);
	if (vu_fe_connect_device(&f->fe, f->dev) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	assert_int_equal(vu_fe_fini(&f->fe), 0); /* no fd leaked */
	/* the connection's end reset the device */
	assert_int_equal(f->dev->state, VDK_DEVICE_RESET);
	echo_device_free(f->echo);
	free(f);
	return 0;
}

/* Queues the device runs with. */
static int started(const struct fx *f)
{
	int n = 0;

	for (int i = 0; i < ECHO_NUM_QUEUES; i++)
		n += f->dev->queues[i] != NULL;
	return n;
}

/* SET_FEATURES @features (with protocol features) and expect @ret. */
static void set_features(struct fx *f, uint64_t features, int ret)
{
	assert_int_equal(vu_fe_req_u64(&f->fe, VHOST_USER_SET_FEATURES,
				       features | F_VU_PF, -1),
			 ret);
}

/*
 * The driver puts 16 readable bytes and a 16-byte writable buffer on ring
 * 0 (echoq) and kicks; the back-end handles the kick. Return: the bytes
 * the device wrote back (checked to be 16) in @out.
 */
static void echo(struct fx *f, uint64_t gpa, uint8_t out[16])
{
	static const uint8_t msg[16] = "vdk adapter echo";
	struct guest_buf b[2] = {{gpa, 16, false}, {gpa + 0x100, 16, true}};
	uint32_t id, len;
	int head;

	memcpy(vu_fe_host(&f->fe, gpa), msg, sizeof(msg));
	memset(vu_fe_host(&f->fe, gpa + 0x100), 0, 16);
	head = guest_ring_add_chain(&f->fe.gr[ECHO_QUEUE_ECHO], b, 2);
	assert_true(head >= 0);
	vu_fe_kick(&f->fe, ECHO_QUEUE_ECHO);
	assert_int_equal(vdk_vhost_user_handle_kick(f->fe.vu, ECHO_QUEUE_ECHO),
			 1);
	assert_int_equal(
		guest_ring_get_used(&f->fe.gr[ECHO_QUEUE_ECHO], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 16);
	memcpy(out, vu_fe_host(&f->fe, gpa + 0x100), 16);
}

static void assert_echoed(struct fx *f, uint64_t gpa, bool inverted)
{
	static const uint8_t msg[16] = "vdk adapter echo";
	uint8_t got[16];

	echo(f, gpa, got);
	for (int i = 0; i < 16; i++)
		assert_int_equal(got[i], inverted ? msg[i] ^ 0xff : msg[i]);
}

/* A 32-byte readable buffer on ring 1 (sinkq), not kicked. */
static void sink_post(struct fx *f, uint64_t gpa)
{
	struct guest_buf b = {gpa, 32, false};

	assert_true(guest_ring_add_chain(&f->fe.gr[ECHO_QUEUE_SINK], &b, 1) >=
		    0);
}

/*
 * A driver that uses only queue 0 of two (SeaBIOS on a two-queue disk,
 * Linux with fewer vCPUs than queues) gets a running device; queue 1
 * joins when its ring starts, and leaves without stopping queue 0.
 */
static void test_queue_subset(void **state)
{
	struct fx *f = *state;
	struct echo_stats st;

	vu_fe_setup(&f->fe, 0);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_ECHO, 0, RING_NEW);
	assert_int_equal(f->dev->state, VDK_DEVICE_ACTIVE);
	assert_false(f->dev->asleep);
	assert_non_null(f->dev->queues[ECHO_QUEUE_ECHO]);
	assert_null(f->dev->queues[ECHO_QUEUE_SINK]);
	assert_int_equal(started(f), 1);
	assert_echoed(f, DATA_GPA, false);

	/* Made available before its ring starts: served when it does. */
	assert_int_equal(vu_fe_ring_init(&f->fe, ECHO_QUEUE_SINK), 0);
	sink_post(f, DATA_GPA + 0x1000);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_SINK, 0, VU_FE_RING_ENABLE);
	assert_false(f->dev->asleep);
	assert_non_null(f->dev->queues[ECHO_QUEUE_SINK]);
	st = echo_device_stats(f->echo);
	assert_int_equal(st.activations, 1); /* joined, not re-activated */
	assert_int_equal(st.resets, 0);
	assert_int_equal(st.sink_chains, 1);
	assert_int_equal(st.sink_bytes, 32);
	assert_int_equal(guest_ring_used_idx(&f->fe.gr[ECHO_QUEUE_SINK]), 1);
	/* both queues run */
	sink_post(f, DATA_GPA + 0x1100);
	vu_fe_kick(&f->fe, ECHO_QUEUE_SINK);
	assert_int_equal(vdk_vhost_user_handle_kick(f->fe.vu, ECHO_QUEUE_SINK),
			 1);
	assert_int_equal(echo_device_stats(f->echo).sink_chains, 2);
	assert_echoed(f, DATA_GPA + 0x200, false);

	/* Ring 1 stops (GET_VRING_BASE answers its next available index);
	 * ring 0 goes on. */
	assert_int_equal(vu_fe_get_vring_base(&f->fe, ECHO_QUEUE_SINK), 2);
	assert_false(f->dev->asleep);
	assert_null(f->dev->queues[ECHO_QUEUE_SINK]);
	assert_echoed(f, DATA_GPA + 0x400, false);
	sink_post(f, DATA_GPA + 0x1200);
	vu_fe_kick(&f->fe, ECHO_QUEUE_SINK);
	assert_int_equal(vdk_vhost_user_handle_kick(f->fe.vu, ECHO_QUEUE_SINK),
			 0);
	assert_int_equal(echo_device_stats(f->echo).sink_chains, 2);

	/* The last ring stops: the device is suspended (asleep, state kept);
	 * the first ring to start again wakes it. */
	assert_int_equal(vu_fe_get_vring_base(&f->fe, ECHO_QUEUE_ECHO), 3);
	assert_true(f->dev->asleep);
	assert_int_equal(f->dev->state, VDK_DEVICE_ACTIVE);
	assert_int_equal(started(f), 0);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_SINK, 2, VU_FE_RING_ENABLE);
	assert_false(f->dev->asleep);
	assert_null(f->dev->queues[ECHO_QUEUE_ECHO]);
	st = echo_device_stats(f->echo);
	assert_int_equal(st.sink_chains, 3); /* the one left on the ring */
	assert_int_equal(st.activations, 1);
	assert_int_equal(st.echo_chains, 3);
}

/* A ring disabled by SET_VRING_ENABLE 0 leaves the device as a stopped
 * ring would; enabling it again brings the queue back. */
static void test_ring_disable_enable(void **state)
{
	struct fx *f = *state;

	vu_fe_setup(&f->fe, 0);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_ECHO, 0, RING_NEW);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_SINK, 0, RING_NEW);
	assert_int_equal(started(f), 2);
	assert_int_equal(vu_fe_req_state(&f->fe, VHOST_USER_SET_VRING_ENABLE,
					 ECHO_QUEUE_ECHO, 0),
			 1);
	assert_int_equal(started(f), 1);
	assert_false(f->dev->asleep);
	assert_null(f->dev->queues[ECHO_QUEUE_ECHO]);
	sink_post(f, DATA_GPA + 0x1000);
	vu_fe_kick(&f->fe, ECHO_QUEUE_SINK);
	assert_int_equal(vdk_vhost_user_handle_kick(f->fe.vu, ECHO_QUEUE_SINK),
			 1);
	assert_int_equal(echo_device_stats(f->echo).sink_chains, 1);
	assert_int_equal(vu_fe_req_state(&f->fe, VHOST_USER_SET_VRING_ENABLE,
					 ECHO_QUEUE_ECHO, 1),
			 1);
	assert_non_null(f->dev->queues[ECHO_QUEUE_ECHO]);
	assert_echoed(f, DATA_GPA, false);
	assert_int_equal(echo_device_stats(f->echo).activations, 1);
}

/*
 * Features negotiated again while every ring is stopped: the same features
 * wake the sleeping device; new ones (a new driver) reset it, and the next
 * ring start activates it with them.
 */
static void test_features_change_between_stop_and_start(void **state)
{
	struct fx *f = *state;
	struct echo_stats st;

	vu_fe_setup(&f->fe, 0); /* VERSION_1: no ECHO_F_INVERT */
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_ECHO, 0, RING_NEW);
	assert_int_equal(f->dev->acked_features, F_VERSION);
	assert_echoed(f, DATA_GPA, false);
	/* features cannot change under a running ring */
	set_features(f, F_VERSION | F_INVERT, -EBUSY);
	assert_int_equal(f->dev->acked_features, F_VERSION);

	/* stop, same features, start: woken, not reset */
	assert_int_equal(vu_fe_get_vring_base(&f->fe, ECHO_QUEUE_ECHO), 1);
	assert_true(f->dev->asleep);
	assert_int_equal(started(f), 0);
	set_features(f, F_VERSION, 1);
	assert_int_equal(f->dev->state, VDK_DEVICE_ACTIVE);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_ECHO, 1, VU_FE_RING_ENABLE);
	st = echo_device_stats(f->echo);
	assert_int_equal(st.activations, 1);
	assert_int_equal(st.resets, 0);
	assert_echoed(f, DATA_GPA + 0x200, false);

	/* stop, new features: the device is reset at once ... */
	assert_int_equal(vu_fe_get_vring_base(&f->fe, ECHO_QUEUE_ECHO), 2);
	set_features(f, F_VERSION | F_INVERT, 1);
	assert_int_equal(f->dev->state, VDK_DEVICE_RESET);
	assert_false(f->dev->asleep);
	assert_int_equal(echo_device_stats(f->echo).resets, 1);
	/* ... and activated with them by the new driver's first ring */
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_ECHO, 0, RING_NEW);
	assert_int_equal(f->dev->state, VDK_DEVICE_ACTIVE);
	assert_int_equal(f->dev->acked_features, F_VERSION | F_INVERT);
	assert_true(echo_device_inverting(f->echo));
	assert_int_equal(echo_device_stats(f->echo).activations, 2);
	assert_echoed(f, DATA_GPA + 0x400, true);
}

/* RESET_DEVICE of a sleeping device (every ring stopped), then a new
 * session: it starts afresh with the features of that session. */
static void test_reset_device_while_asleep(void **state)
{
	struct fx *f = *state;

	vu_fe_setup(&f->fe, 1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE);
	set_features(f, F_VERSION | F_INVERT, 1);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_SINK, 0, RING_NEW);
	assert_true(echo_device_inverting(f->echo));
	assert_int_equal(vu_fe_get_vring_base(&f->fe, ECHO_QUEUE_SINK), 0);
	assert_true(f->dev->asleep);
	assert_int_equal(f->dev->state, VDK_DEVICE_ACTIVE);
	assert_int_equal(started(f), 0);
	assert_int_equal(
		vu_fe_req(&f->fe, VHOST_USER_RESET_DEVICE, 0, NULL, 0, NULL, 0),
		1);
	assert_int_equal(f->dev->state, VDK_DEVICE_RESET);
	assert_false(f->dev->asleep);
	assert_int_equal(f->dev->acked_features, 0);
	vu_fe_features_and_memory(&f->fe, 0);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_ECHO, 0, RING_NEW);
	assert_int_equal(f->dev->acked_features, F_VERSION);
	assert_echoed(f, DATA_GPA, false);
}

/* Every ring stopped: neither the adapter nor the device keeps a pointer
 * to the memory map, which the front-end may replace meanwhile (the old
 * one is freed); the next start runs on the new one. */
static void test_mem_table_replaced_while_asleep(void **state)
{
	struct fx *f = *state;

	vu_fe_setup(&f->fe, 0);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_ECHO, 0, RING_NEW);
	assert_non_null(f->dev->mem);
	assert_echoed(f, DATA_GPA, false);
	assert_int_equal(vu_fe_get_vring_base(&f->fe, ECHO_QUEUE_ECHO), 1);
	assert_true(f->dev->asleep);
	assert_null(f->dev->mem);
	assert_null(f->fe.vu->own_adapter->mem);
	/* a new table: the map the device ran with is freed */
	assert_int_equal(vu_fe_mem_table(&f->fe, RAM_GPA, RAM_SIZE, 0), 1);
	vu_fe_start_ring(&f->fe, ECHO_QUEUE_ECHO, 1, VU_FE_RING_ENABLE);
	assert_false(f->dev->asleep);
	assert_non_null(f->dev->mem);
	assert_true(f->dev->mem == f->fe.vu->own_adapter->mem);
	assert_echoed(f, DATA_GPA + 0x100, false);
	assert_int_equal(echo_device_stats(f->echo).activations, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_queue_subset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ring_disable_enable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_features_change_between_stop_and_start, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_mem_table_replaced_while_asleep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_device_while_asleep,
						setup, teardown),
	};

	vdk_log_set_sink(vu_fe_quiet_log, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
