/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vhost-user test environment shared by test_vhost_user.c,
 * test_vhost_user_hostile.c (struct tdev), test_vhost_user_state.c and
 * test_vhost_user_inflight.c (struct sdev): two in-test devices that
 * implement the backend interface, and a fixture (struct fx) that puts one
 * of them behind a vdk_vhost_user connection driven by the scripted
 * front-end of tests/mock/vu_frontend.h. Teardown checks that no fd
 * outlives the test.
 *
 * Header-only (every function static inline) because each unit test is
 * built from its one .c file. Include after <cmocka.h>.
 */
#ifndef VDK_TESTS_VHOST_USER_ENV_H
#define VDK_TESTS_VHOST_USER_ENV_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>

#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/vhost_user.h>
#include <vdk/virtq.h>

#include "guest_ring.h"
#include "vu_frontend.h"

#define GPA_BASE      0x100000ull
#define RAM_SIZE      0x40000ull
#define DATA_GPA      (GPA_BASE + 0x10000)
#define QSIZE	      16
#define NQ	      2
#define PF(b)	      (1ull << (b))
#define F_VERSION_1   (1ull << VIRTIO_F_VERSION_1)
#define F_VU_PROTOCOL (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define WANT_PF                                                                \
	(PF(VHOST_USER_PROTOCOL_F_MQ) | PF(VHOST_USER_PROTOCOL_F_REPLY_ACK) |  \
	 PF(VHOST_USER_PROTOCOL_F_CONFIG) |                                    \
	 PF(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |                       \
	 PF(VHOST_USER_PROTOCOL_F_RESET_DEVICE))

/* vu_fe_start_ring() flags of the sdev tests: a new ring, or a restart that
 * keeps the driver's ring state (as QEMU does after a reconnect). */
#define RING_NEW     (VU_FE_RING_INIT | VU_FE_RING_ENABLE)
#define RING_RESTART VU_FE_RING_ENABLE

/* ---- both devices: NQ queues of QSIZE ---------------------------------- */

static inline uint16_t env_num_queues(void *be)
{
	(void)be;
	return NQ;
}

static inline uint16_t env_queue_max_size(void *be, uint16_t i)
{
	(void)be;
	(void)i;
	return QSIZE;
}

/* ---- tdev: counts what the library asks of it -------------------------- */

struct tdev {
	struct vdk_virtq *q[NQ];
	const struct vdk_mem *mem;
	struct vdk_interrupt *irq;
	int starts, stops, notifies, resets, suspends;
	uint64_t acked;
	uint8_t config[8];
};

static inline uint64_t td_features(void *be)
{
	(void)be;
	return F_VERSION_1 | (1ull << VIRTIO_RING_F_EVENT_IDX);
}

static inline void td_ack_features(void *be, uint64_t f)
{
	((struct tdev *)be)->acked = f;
}

static inline int td_read_config(void *be, uint32_t off, void *data,
				 uint32_t len)
{
	memcpy(data, ((struct tdev *)be)->config + off, len);
	return 0;
}

static inline int td_write_config(void *be, uint32_t off, const void *data,
				  uint32_t len)
{
	memcpy(((struct tdev *)be)->config + off, data, len);
	return 0;
}

static inline int td_start_queue(void *be, uint16_t i, struct vdk_virtq *q,
				 const struct vdk_mem *mem,
				 struct vdk_interrupt *irq)
{
	struct tdev *t = be;

	t->q[i] = q;
	t->mem = mem;
	t->irq = irq;
	t->starts++;
	return 0;
}

static inline struct vdk_virtq *td_stop_queue(void *be, uint16_t i)
{
	struct tdev *t = be;
	struct vdk_virtq *q = t->q[i];

	t->q[i] = NULL;
	t->stops++;
	return q;
}

/* Fill every writable byte with 0xa5 and return the chain. */
static inline void td_queue_notify(void *be, uint16_t i)
{
	struct tdev *t = be;
	struct iovec iov[8];
	struct vdk_virtq_chain c = {.iov = iov, .iov_cap = 8};
	uint8_t fill[256];
	int added = 0;

	t->notifies++;
	if (!t->q[i])
		return;
	memset(fill, 0xa5, sizeof(fill));
	while (vdk_virtq_pop(t->q[i], &c) == 1) {
		size_t n = vdk_virtq_chain_copy_to(
			&c, 0, fill,
			c.writable_len < 256 ? c.writable_len : 256);
		vdk_virtq_add_used(t->q[i], c.head, (uint32_t)n);
		added++;
	}
	if (added && vdk_virtq_should_notify(t->q[i]))
		vdk_interrupt_signal_used_queue(t->irq, i);
}

static inline int td_reset(void *be)
{
	((struct tdev *)be)->resets++;
	return 0;
}

static inline int td_suspend(void *be)
{
	((struct tdev *)be)->suspends++;
	return 0;
}

static const struct vdk_vhost_user_backend_ops td_ops = {
	.name = "tdev",
	.num_queues = env_num_queues,
	.queue_max_size = env_queue_max_size,
	.features = td_features,
	.ack_features = td_ack_features,
	.config_size = 8,
	.read_config = td_read_config,
	.write_config = td_write_config,
	.start_queue = td_start_queue,
	.stop_queue = td_stop_queue,
	.queue_notify = td_queue_notify,
	.reset = td_reset,
	.enter_suspended_state = td_suspend,
};

/* ---- sdev: holds chains in flight and has state ------------------------ */

struct sdev {
	struct vdk_vhost_user *vu;
	struct vdk_interrupt *irq;
	struct vdk_virtq *q[NQ];
	bool running[NQ];
	bool hold; /* pop without returning */
	uint16_t held[QSIZE];
	int nheld;
	uint16_t popped[4 * QSIZE]; /* every head popped, in order */
	int npopped;
	uint8_t config[8];
	size_t state_len;  /* bytes of the snapshot */
	uint8_t *restored; /* what restore() received */
	size_t restored_len;
};

static inline uint64_t sd_features(void *be)
{
	(void)be;
	return F_VERSION_1;
}

static inline int sd_read_config(void *be, uint32_t off, void *data,
				 uint32_t len)
{
	memcpy(data, ((struct sdev *)be)->config + off, len);
	return 0;
}

/* A write changes the configuration: the device says so at once, from
 * inside the SET_CONFIG handler. */
static inline int sd_write_config(void *be, uint32_t off, const void *data,
				  uint32_t len)
{
	struct sdev *t = be;

	memcpy(t->config + off, data, len);
	vdk_interrupt_signal_config_changed(t->irq);
	return 0;
}

static inline int sd_start_queue(void *be, uint16_t i, struct vdk_virtq *q,
				 const struct vdk_mem *mem,
				 struct vdk_interrupt *irq)
{
	struct sdev *t = be;

	(void)mem;
	t->irq = irq;
	t->q[i] = q;
	t->running[i] = true;
	return 0;
}

static inline struct vdk_virtq *sd_stop_queue(void *be, uint16_t i)
{
	struct sdev *t = be;

	t->running[i] = false;
	return t->q[i];
}

static inline void sd_queue_notify(void *be, uint16_t i)
{
	struct sdev *t = be;
	struct iovec iov[4];
	struct vdk_virtq_chain c = {.iov = iov, .iov_cap = 4};

	while (t->running[i] && vdk_vhost_user_queue_pop(t->vu, i, &c) == 1) {
		if (t->npopped < 4 * QSIZE)
			t->popped[t->npopped++] = c.head;
		if (t->hold)
			t->held[t->nheld++] = c.head;
		else
			assert_int_equal(vdk_vhost_user_queue_add_used(
						 t->vu, i, c.head, 0),
					 0);
	}
}

static inline int sd_reset(void *be)
{
	(void)be;
	return 0;
}

static inline int sd_snapshot(void *be, cbor_item_t **out)
{
	struct sdev *t = be;
	uint8_t *data = malloc(t->state_len);

	for (size_t i = 0; i < t->state_len; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	*out = cbor_build_bytestring(data, t->state_len);
	free(data);
	return *out ? 0 : -ENOMEM;
}

static inline int sd_restore(void *be, const cbor_item_t *item)
{
	struct sdev *t = be;

	if (!cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item))
		return -EINVAL;
	free(t->restored);
	t->restored_len = cbor_bytestring_length(item);
	t->restored = malloc(t->restored_len + 1);
	memcpy(t->restored, cbor_bytestring_handle(item), t->restored_len);
	return 0;
}

static const struct vdk_vhost_user_backend_ops sd_ops = {
	.name = "sdev",
	.num_queues = env_num_queues,
	.queue_max_size = env_queue_max_size,
	.features = sd_features,
	.config_size = 8,
	.read_config = sd_read_config,
	.write_config = sd_write_config,
	.start_queue = sd_start_queue,
	.stop_queue = sd_stop_queue,
	.queue_notify = sd_queue_notify,
	.reset = sd_reset,
	.snapshot = sd_snapshot,
	.restore = sd_restore,
	.tracks_inflight = true,
};

/* ---- the fixture ------------------------------------------------------- */

/* The front-end, and the two devices (the one in use per test file). */
struct fx {
	struct vu_fe fe;
	struct tdev td;
	struct sdev sd;
};

/* Script faults of vu_frontend fail the running test. */
static inline void fx_fail(const char *msg)
{
	fail_msg("vu_frontend: %s", msg);
}

/* RAM at GPA_BASE and NQ rings of QSIZE, not connected yet. */
static inline struct fx *fx_new(void)
{
	const struct vu_fe_config cfg = {GPA_BASE, RAM_SIZE, NQ, QSIZE};
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	vdk_log_set_sink(vu_fe_quiet_log, NULL, VDK_LOG_DEBUG);
	assert_int_equal(vu_fe_init(&f->fe, &cfg, fx_fail), 0);
	return f;
}

/* Test setup with the tdev, or with the sdev. */
static inline int fx_setup_tdev(void **state)
{
	struct fx *f = fx_new();

	assert_int_equal(vu_fe_connect(&f->fe, &td_ops, &f->td), 0);
	*state = f;
	return 0;
}

static inline int fx_setup_sdev(void **state)
{
	struct fx *f = fx_new();

	assert_int_equal(vu_fe_connect(&f->fe, &sd_ops, &f->sd), 0);
	f->sd.vu = f->fe.vu;
	*state = f;
	return 0;
}

static inline int fx_teardown(void **state)
{
	struct fx *f = *state;

	free(f->sd.restored);
	/* Nothing received from the front-end may outlive the connection. */
	assert_int_equal(vu_fe_fini(&f->fe), 0);
	free(f);
	return 0;
}

/* A new connection to a fresh sdev (the old connection must be gone). */
static inline void fx_reconnect_sdev(struct fx *f)
{
	free(f->sd.restored);
	memset(&f->sd, 0, sizeof(f->sd));
	assert_int_equal(vu_fe_connect(&f->fe, &sd_ops, &f->sd), 0);
	f->sd.vu = f->fe.vu;
}

/* Close the connection if there is one, and connect to a new rng device
 * (@cfg may be NULL) through adapter @ad instead. Return: the device. */
static inline struct vdk_rng *
fx_connect_rng(struct vu_fe *fe, struct vdk_vhost_user_device_adapter *ad,
	       const struct vdk_rng_config *cfg)
{
	const struct vdk_vhost_user_backend_ops *ops;
	struct vdk_rng *rng;

	vu_fe_disconnect(fe);
	rng = vdk_rng_new(cfg, NULL);
	assert_non_null(rng);
	assert_int_equal(vu_adapter_init(ad, vdk_rng_device(rng), &ops), 0);
	assert_int_equal(vu_fe_connect(fe, ops, ad), 0);
	return rng;
}

/* tdev tests: negotiate features (with or without protocol features), then
 * SET_OWNER. */
static inline void fe_negotiate(struct vu_fe *fe, bool protocol)
{
	uint64_t pf = vu_fe_negotiate(
		fe, F_VERSION_1 | (protocol ? F_VU_PROTOCOL : 0), WANT_PF);

	if (protocol) {
		uint64_t must = WANT_PF & ~PF(VHOST_USER_PROTOCOL_F_CONFIG);

		assert_int_equal(pf & must, must);
		/* CONFIG only for a device with a configuration space */
		assert_int_equal(!!(pf & PF(VHOST_USER_PROTOCOL_F_CONFIG)),
				 fe->vu && vdk_vhost_user_num_queues(fe->vu) ==
						   NQ);
	}
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0), 1);
}

/* sdev tests: one 64-byte request to the rng device on ring 0; @requests it has seen
 * after it. */
static inline void rng_request(struct vu_fe *fe, struct vdk_rng *rng,
			       uint64_t gpa, uint64_t requests)
{
	uint32_t id, len;

	vu_fe_post_kick(fe, 0, gpa);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_get_used(&fe->gr[0], &id, &len), 1);
	assert_int_equal(len, 64);
	assert_int_equal(vdk_rng_stats(rng).requests, requests);
}

#endif /* VDK_TESTS_VHOST_USER_ENV_H */
