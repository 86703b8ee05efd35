/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/vhost_user/{message,backend}.c with a well-behaved
 * front-end: the scripted front-end of vu_frontend.h talks to the tdev of
 * vhost_user_env.h in-process over socketpair(AF_UNIX, SOCK_STREAM).
 * Covered: feature and protocol feature negotiation, a memory table from a
 * memfd, ring setup + kick → the device processes a chain and the call
 * eventfd fires, GET_VRING_BASE and the suspended state, REPLY_ACK, config
 * space, ADD/REM_MEM_REG, rings enabled with and without protocol features,
 * the rng device through the in-process adapter, and the epoll loop, with
 * an fd-leak check around each. Malformed front-ends are in
 * test_vhost_user_hostile.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vdk/devices/rng.h>
#include <vdk/vhost_user.h>

#include "guest_ring.h"
#include "vhost_user_env.h"
#include "vu_frontend.h"

static uint64_t eventfd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Everything QEMU sends to start ring @q, in QEMU's order. */
static void fe_start_ring(struct vu_fe *fe, uint16_t q, bool protocol)
{
	vu_fe_start_ring(fe, q, 0,
			 VU_FE_RING_INIT | VU_FE_RING_KICK_FIRST |
				 (protocol ? VU_FE_RING_ENABLE : 0));
}

/* ---- tests ------------------------------------------------------------- */

static void test_negotiation(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;

	fe_negotiate(fe, true);
	assert_int_equal(f->td.acked, F_VERSION_1); /* without bit 30 */
	assert_int_equal(vu_fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM), NQ);
	assert_int_equal(vu_fe_get_u64(fe, VHOST_USER_GET_MAX_MEM_SLOTS),
			 VDK_MEM_MAX_REGIONS);
	/* unexpected feature bits are refused, and REPLY_ACK says so */
	assert_int_equal(
		vu_fe_req_u64(fe, VHOST_USER_SET_FEATURES, 1ull << 40, -1),
		-EINVAL);
	uint64_t bits = 1ull << 40, status = 0;
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_FEATURES,
				   VHOST_USER_NEED_REPLY_MASK, &bits, 8, NULL,
				   0),
			 -EINVAL);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_SET_FEATURES, &status, 8, NULL), 8);
	assert_int_equal(status, 1);
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES,
				       PF(VHOST_USER_PROTOCOL_F_PAGEFAULT), -1),
			 -EINVAL);
	/* a second SET_OWNER is refused */
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0),
		-EBUSY);
	assert_false(vu_fe_readable(fe->sock));
	assert_false(vdk_vhost_user_is_broken(fe->vu));
}

static void test_reply_ack(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_vring_state s = {0, 8};
	uint64_t status = 99;

	/* not negotiated: NEED_REPLY brings no reply */
	fe_negotiate(fe, false);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_VRING_NUM,
				   VHOST_USER_NEED_REPLY_MASK, &s, sizeof(s),
				   NULL, 0),
			 1);
	assert_false(vu_fe_readable(fe->sock));
	/* negotiated: 0 on success, 1 on failure */
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES,
				       PF(VHOST_USER_PROTOCOL_F_REPLY_ACK), -1),
			 1);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_VRING_NUM,
				   VHOST_USER_NEED_REPLY_MASK, &s, sizeof(s),
				   NULL, 0),
			 1);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_SET_VRING_NUM, &status, 8, NULL), 8);
	assert_int_equal(status, 0);
	s.num = 3; /* not a power of two */
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_VRING_NUM,
				   VHOST_USER_NEED_REPLY_MASK, &s, sizeof(s),
				   NULL, 0),
			 -EINVAL);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_SET_VRING_NUM, &status, 8, NULL), 8);
	assert_int_equal(status, 1);
	/* a request that answers anyway gets its own reply, not an ack */
	assert_int_equal(vu_fe_req(fe, VHOST_USER_GET_QUEUE_NUM,
				   VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL,
				   0),
			 1);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_GET_QUEUE_NUM, &status, 8, NULL), 8);
	assert_int_equal(status, NQ);
	assert_false(vu_fe_readable(fe->sock));
}

static void test_ring_kick_call(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	uint32_t id, len;
	uint8_t data[64];

	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	for (uint32_t q = 0; q < NQ; q++)
		fe_start_ring(fe, q, true);
	assert_int_equal(f->td.starts, NQ);
	assert_non_null(f->td.q[0]);

	int head = vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_kick_fd(fe->vu, 0) >= 0, true);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_get_used(&fe->gr[0], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 64);
	memcpy(data, vu_fe_host(fe, DATA_GPA), sizeof(data));
	for (size_t i = 0; i < sizeof(data); i++)
		assert_int_equal(data[i], 0xa5);
	/* one notification when the ring started, one for the buffer */
	assert_int_equal(eventfd_take(fe->call[0]), 2);
	/* the kick was consumed */
	assert_int_equal(eventfd_take(fe->kick[0]), 0);

	/* a new call fd replaces the old one while the ring runs */
	int call2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_VRING_CALL, 0, call2),
			 1);
	vu_fe_post_kick(fe, 0, DATA_GPA + 0x100);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(eventfd_take(call2), 1);
	assert_int_equal(eventfd_take(fe->call[0]), 0);
	close(call2);
}

static void test_get_vring_base_suspends(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;

	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	for (uint32_t q = 0; q < NQ; q++)
		fe_start_ring(fe, q, true);
	for (int i = 0; i < 3; i++) {
		vu_fe_post_kick(fe, 0, DATA_GPA + 0x100 * i);
		assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	}
	assert_int_equal(vu_fe_get_vring_base(fe, 0), 3);
	assert_int_equal(f->td.stops, 1);
	assert_null(f->td.q[0]);
	assert_int_equal(f->td.suspends, 0); /* ring 1 still runs */
	assert_int_equal(vdk_vhost_user_kick_fd(fe->vu, 0), -ENOENT);
	/* a kick on a stopped ring reaches nobody */
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 0);

	assert_int_equal(vu_fe_get_vring_base(fe, 1), 0);
	assert_int_equal(f->td.suspends, 1);

	/* restart ring 0 from index 3: the pending chain is processed */
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_BASE, 0, 3),
			 1);
	assert_int_equal(
		vu_fe_req_u64(fe, VHOST_USER_SET_VRING_KICK, 0, fe->kick[0]),
		1);
	assert_int_equal(
		vu_fe_req_u64(fe, VHOST_USER_SET_VRING_CALL, 0, fe->call[0]),
		1);
	assert_int_equal(f->td.starts, NQ + 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 4);
}

static void test_config(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_config c = {.offset = 2, .size = 4};
	struct vhost_user_config r;

	fe_negotiate(fe, true);
	memcpy(f->td.config, "ABCDEFGH", 8);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_GET_CONFIG, 0, &c,
				   VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0),
			 1);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_GET_CONFIG, &r, sizeof(r), NULL),
		VHOST_USER_CONFIG_HDR_SIZE + 4);
	assert_memory_equal(r.region, "CDEF", 4);
	/* beyond the config space: zero-length reply */
	c.offset = 6;
	assert_int_equal(vu_fe_req(fe, VHOST_USER_GET_CONFIG, 0, &c,
				   VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0),
			 -EINVAL);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_GET_CONFIG, &r, sizeof(r), NULL), 0);
	/* size field disagreeing with the header */
	c.offset = 0;
	assert_int_equal(vu_fe_req(fe, VHOST_USER_GET_CONFIG, 0, &c,
				   VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0),
			 -EINVAL);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_GET_CONFIG, &r, sizeof(r), NULL), 0);
	c = (struct vhost_user_config){.offset = 0, .size = 2};
	memcpy(c.region, "xy", 2);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_CONFIG, 0, &c,
				   VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0),
			 1);
	assert_memory_equal(f->td.config, "xyCDEFGH", 8);
	c.flags = 7;
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_CONFIG, 0, &c,
				   VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0),
			 -EINVAL);
}

static void test_mem_regions(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_mem_reg_msg m = {
		.region = {GPA_BASE, 0x10000, vu_fe_ua(fe, GPA_BASE), 0}};
	struct vhost_user_mem_reg_msg m2 = {
		.region = {GPA_BASE + 0x10000, 0x10000,
			   vu_fe_ua(fe, GPA_BASE + 0x10000), 0x10000}};

	/* without CONFIGURE_MEM_SLOTS negotiated */
	assert_int_equal(vu_fe_req(fe, VHOST_USER_ADD_MEM_REG, 0, &m, sizeof(m),
				   &fe->memfd, 1),
			 -EOPNOTSUPP);
	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_ADD_MEM_REG, 0, &m, sizeof(m),
				   &fe->memfd, 1),
			 1);
	/* The same region again (QEMU's vhost-user-net, once per queue
	 * pair): accepted, nothing changes; one that overlaps it: refused. */
	assert_int_equal(vu_fe_req(fe, VHOST_USER_ADD_MEM_REG, 0, &m, sizeof(m),
				   &fe->memfd, 1),
			 1);
	struct vhost_user_mem_reg_msg ov = m;
	ov.region.guest_phys_addr += 0x8000;
	assert_int_equal(vu_fe_req(fe, VHOST_USER_ADD_MEM_REG, 0, &ov,
				   sizeof(ov), &fe->memfd, 1),
			 -EEXIST);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_ADD_MEM_REG, 0, &m2,
				   sizeof(m2), NULL, 0),
			 -EINVAL); /* no fd */
	assert_int_equal(vu_fe_req(fe, VHOST_USER_ADD_MEM_REG, 0, &m2,
				   sizeof(m2), &fe->memfd, 1),
			 1);
	/* ring 0 at GPA_BASE is covered by the first region */
	assert_int_equal(vu_fe_ring_init(fe, 0), 0);
	assert_int_equal(vu_fe_vring_addr(fe, 0,
					  vu_fe_ua(fe, fe->gr[0].desc_gpa),
					  vu_fe_ua(fe, fe->gr[0].avail_gpa),
					  vu_fe_ua(fe, fe->gr[0].used_gpa)),
			 1);
	/* removal names gpa, user address and size */
	struct vhost_user_mem_reg_msg bad = m;
	bad.region.userspace_addr += 0x1000;
	assert_int_equal(vu_fe_req(fe, VHOST_USER_REM_MEM_REG, 0, &bad,
				   sizeof(bad), NULL, 0),
			 -ENOENT);
	/* a stray fd is accepted and closed (fd count checked in teardown) */
	assert_int_equal(vu_fe_req(fe, VHOST_USER_REM_MEM_REG, 0, &m, sizeof(m),
				   &fe->memfd, 1),
			 1);
	/* ring 0 is no longer covered */
	assert_int_equal(vu_fe_vring_addr(fe, 0,
					  vu_fe_ua(fe, fe->gr[0].desc_gpa),
					  vu_fe_ua(fe, fe->gr[0].avail_gpa),
					  vu_fe_ua(fe, fe->gr[0].used_gpa)),
			 -EFAULT);
}

static void test_no_protocol_features_rings_enabled(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;

	fe_negotiate(fe, false);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	fe_start_ring(fe, 0, false); /* no SET_VRING_ENABLE */
	assert_int_equal(f->td.starts, 1);
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 1);

	/* a pipe is not a kick fd (the rule in <vdk/vhost_user.h>): refused,
	 * the ring keeps its eventfd */
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(
		vu_fe_req_u64(fe, VHOST_USER_SET_VRING_KICK, 0, pfd[0]),
		-EINVAL);
	close(pfd[0]);
	close(pfd[1]);
	assert_true(vdk_vhost_user_kick_fd(fe->vu, 0) >= 0);
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 2);

	/* polling mode requested by the front-end: no kick fd */
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_VRING_KICK,
				       0 | VHOST_USER_VRING_NOFD_MASK, -1),
			 1);
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 3);
}

/* QEMU's vhost-user-net order: protocol features first, SET_VRING_ENABLE,
 * then SET_FEATURES (with VHOST_USER_F_PROTOCOL_FEATURES). The enable is
 * honoured: the protocol features were negotiated. Before that it is not. */
static void test_vring_enable_before_set_features(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	uint64_t pf;

	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0), 1);
	assert_true(vu_fe_get_u64(fe, VHOST_USER_GET_FEATURES) & F_VU_PROTOCOL);
	assert_true(vu_fe_req_state(fe, VHOST_USER_SET_VRING_ENABLE, 0, 1) < 0);
	pf = vu_fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES);
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES,
				       pf & WANT_PF, -1),
			 1);
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_ENABLE, 0, 1),
			 1);
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_FEATURES,
				       F_VERSION_1 | F_VU_PROTOCOL, -1),
			 1);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	fe_start_ring(fe, 0, false);
	assert_int_equal(f->td.starts, 1);
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 1);
}

static void test_protocol_features_rings_start_disabled(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;

	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	fe_start_ring(fe, 0, false);
	assert_int_equal(f->td.starts, 0);
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 0);
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_ENABLE, 0, 2),
			 -EINVAL);
	/* enabling starts the ring and processes what is pending */
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_ENABLE, 0, 1),
			 1);
	assert_int_equal(f->td.starts, 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 1);
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_ENABLE, 0, 0),
			 1);
	assert_int_equal(f->td.stops, 1);
	/* RESET_DEVICE stops everything and resets the device */
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_RESET_DEVICE, 0, NULL, 0, NULL, 0), 1);
	assert_int_equal(f->td.resets, 1);
}

/* QEMU 7.2 after the guest broke a ring rule, reset the device and set it
 * up again with the same features: GET_VRING_BASE, SET_FEATURES (same),
 * SET_MEM_TABLE, then SET_VRING_NUM/BASE/ADDR/CALL/KICK/ENABLE, with
 * neither RESET_DEVICE nor a feature change. The ring starts clean. */
static void test_ring_reconfigured_after_error(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vdk_vhost_user_device_adapter ad;
	struct vdk_rng *rng = fx_connect_rng(fe, &ad, NULL);
	struct vdk_device *dev = vdk_rng_device(rng);
	const uint64_t features = F_VERSION_1 | F_VU_PROTOCOL;

	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	rng_request(fe, rng, DATA_GPA, 1);
	/* the driver breaks a rule: a head out of range */
	assert_int_equal(guest_ring_push(&fe->gr[0], QSIZE + 3), 0);
	vu_fe_kick(fe, 0);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	uint16_t used = guest_ring_used_idx(&fe->gr[0]);
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), used); /* stopped */

	/* the guest resets and sets the device up again: QEMU's sequence */
	(void)vu_fe_get_vring_base(fe, 0);
	assert_int_equal(
		vu_fe_req_u64(fe, VHOST_USER_SET_FEATURES, features, -1), 1);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	assert_false(dev->asleep);
	rng_request(fe, rng, DATA_GPA, 2);
	rng_request(fe, rng, DATA_GPA + 0x100, 3);

	/* a plain stop and restart (no error) keeps the device as it is */
	uint32_t next = vu_fe_get_vring_base(fe, 0);
	vu_fe_start_ring(fe, 0, next, RING_RESTART);
	rng_request(fe, rng, DATA_GPA + 0x200, 4);
	vu_fe_disconnect(fe);
	vdk_rng_free(rng);
}

/* ---- the rng device through the adapter -------------------------------- */

static void test_rng_adapter(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vdk_vhost_user_device_adapter ad;
	struct vdk_rng *rng = fx_connect_rng(fe, &ad, NULL);
	uint32_t id, len;

	assert_int_equal(vdk_vhost_user_num_queues(fe->vu), 1);
	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	memset(vu_fe_host(fe, DATA_GPA), 0, 64);
	fe_start_ring(fe, 0, true);
	assert_int_equal(vdk_rng_device(rng)->state, VDK_DEVICE_ACTIVE);

	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_get_used(&fe->gr[0], &id, &len), 1);
	assert_int_equal(len, 64);
	assert_int_equal(eventfd_take(fe->call[0]), 2); /* start + used */
	assert_int_equal(vdk_rng_stats(rng).requests, 1);

	/* GET_VRING_BASE of the last ring suspends the device (asleep); the
	 * restart wakes it */
	assert_int_equal(vu_fe_get_vring_base(fe, 0), 1);
	assert_true(vdk_rng_device(rng)->asleep);
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_BASE, 0, 1),
			 1);
	assert_int_equal(
		vu_fe_req_u64(fe, VHOST_USER_SET_VRING_KICK, 0, fe->kick[0]),
		1);
	assert_false(vdk_rng_device(rng)->asleep);
	vu_fe_post_kick(fe, 0, DATA_GPA + 0x100);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(vdk_rng_stats(rng).requests, 2);

	vdk_vhost_user_free(fe->vu);
	fe->vu = NULL;
	assert_int_equal(vdk_rng_device(rng)->state, VDK_DEVICE_RESET);
	vdk_rng_free(rng);
}

/* ---- the epoll loop ---------------------------------------------------- */

static void *run_thread(void *arg)
{
	struct vu_fe *fe = arg;

	return (void *)(intptr_t)vdk_vhost_user_run(fe->vu);
}

/* Send and wait for the REPLY_ACK, so the loop has handled the request. */
static void fe_acked(struct vu_fe *fe, uint32_t req, const void *p,
		     uint32_t size, const int *fds, size_t nfds)
{
	uint64_t status = 99;

	vu_fe_send(fe, req, VHOST_USER_NEED_REPLY_MASK, p, size, fds, nfds);
	assert_int_equal(vu_fe_reply(fe, req, &status, 8, NULL), 8);
	assert_int_equal(status, 0);
}

static void test_run_loop(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	pthread_t t;
	void *ret;
	uint64_t v;

	/* negotiate in-line, then hand the connection to the loop */
	fe_negotiate(fe, true);
	assert_int_equal(pthread_create(&t, NULL, run_thread, fe), 0);
	struct vhost_user_memory m = {.nregions = 1};
	m.regions[0] = (struct vhost_user_memory_region){
		GPA_BASE, RAM_SIZE, vu_fe_ua(fe, GPA_BASE), 0};
	fe_acked(fe, VHOST_USER_SET_MEM_TABLE, &m, 8 + 32, &fe->memfd, 1);
	assert_int_equal(vu_fe_ring_init(fe, 0), 0);
	struct vhost_vring_state s = {0, QSIZE};
	fe_acked(fe, VHOST_USER_SET_VRING_NUM, &s, sizeof(s), NULL, 0);
	struct vhost_vring_addr a = {
		.index = 0,
		.desc_user_addr = vu_fe_ua(fe, fe->gr[0].desc_gpa),
		.used_user_addr = vu_fe_ua(fe, fe->gr[0].used_gpa),
		.avail_user_addr = vu_fe_ua(fe, fe->gr[0].avail_gpa)};
	fe_acked(fe, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	v = 0;
	fe_acked(fe, VHOST_USER_SET_VRING_CALL, &v, 8, &fe->call[0], 1);
	fe_acked(fe, VHOST_USER_SET_VRING_KICK, &v, 8, &fe->kick[0], 1);
	s.num = 1;
	fe_acked(fe, VHOST_USER_SET_VRING_ENABLE, &s, sizeof(s), NULL, 0);

	/* the ring's start notification */
	struct pollfd p0 = {.fd = fe->call[0], .events = POLLIN};
	assert_int_equal(poll(&p0, 1, 2000), 1);
	assert_int_equal(eventfd_take(fe->call[0]), 1);
	/* kicks are served by the loop: wait for the call eventfd */
	for (int i = 0; i < 5; i++) {
		vu_fe_post_kick(fe, 0, DATA_GPA + 0x100 * i);
		struct pollfd p = {.fd = fe->call[0], .events = POLLIN};
		assert_int_equal(poll(&p, 1, 2000), 1);
		assert_true(eventfd_take(fe->call[0]) >= 1);
		assert_int_equal(guest_ring_used_idx(&fe->gr[0]), i + 1);
	}
	/* a half-sent message does not hold kicks up */
	struct vhost_user_header h = {VHOST_USER_GET_QUEUE_NUM,
				      VHOST_USER_VERSION, 0};
	vu_fe_send_raw(fe, &h, 4, NULL, 0);
	vu_fe_post_kick(fe, 0, DATA_GPA);
	struct pollfd p = {.fd = fe->call[0], .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	vu_fe_send_raw(fe, (uint8_t *)&h + 4, sizeof(h) - 4, NULL, 0);
	assert_int_equal(vu_fe_reply(fe, VHOST_USER_GET_QUEUE_NUM, &v, 8, NULL),
			 8);
	assert_int_equal(v, NQ);

	close(fe->sock);
	fe->sock = -1;
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_int_equal((intptr_t)ret, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_negotiation, fx_setup_tdev,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_reply_ack, fx_setup_tdev,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_ring_kick_call,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_get_vring_base_suspends,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_config, fx_setup_tdev,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_mem_regions, fx_setup_tdev,
						fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_no_protocol_features_rings_enabled, fx_setup_tdev,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_protocol_features_rings_start_disabled,
			fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_vring_enable_before_set_features, fx_setup_tdev,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_rng_adapter, fx_setup_tdev,
						fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_ring_reconfigured_after_error, fx_setup_tdev,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_run_loop, fx_setup_tdev,
						fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
