/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/vhost_user/{message,backend}.c with a hostile
 * front-end: the scripted front-end of vu_frontend.h sends the tdev of
 * vhost_user_env.h each malformed case over socketpair(AF_UNIX,
 * SOCK_STREAM): truncated header or payload, oversized payload, bad version, wrong
 * payload size, wrong fd counts, queue index out of range, rings not
 * covered by the memory table, overlapping or empty regions,
 * SET_VRING_ENABLE without protocol features, unknown requests (with and
 * without REPLY_ACK), a reply that cannot be given, and the front-end
 * going away; each with an fd-leak check around it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vdk/vhost_user.h>

#include "vhost_user_env.h"
#include "vu_frontend.h"

/* ---- tests ------------------------------------------------------------- */

static void test_mem_table_refused(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_memory m = {.nregions = 2};
	int fds[2] = {fe->memfd, fe->memfd};

	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, 0x1000, 0), 1);
	/* overlapping regions */
	m.regions[0] = (struct vhost_user_memory_region){
		GPA_BASE, 0x20000, vu_fe_ua(fe, GPA_BASE), 0};
	m.regions[1] = (struct vhost_user_memory_region){
		GPA_BASE + 0x10000, 0x20000, vu_fe_ua(fe, GPA_BASE + 0x20000),
		0x10000};
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 64, fds, 2),
		-EEXIST);
	/* zero-size region */
	m.regions[1].guest_phys_addr = GPA_BASE + 0x20000;
	m.regions[1].memory_size = 0;
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 64, fds, 2),
		-EINVAL);
	/* fds not matching nregions; size not matching nregions */
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 64, fds, 1),
		-EINVAL);
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 32, fds, 2),
		-EINVAL);
	m.nregions = 9;
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 64, fds, 2),
		-EINVAL);
	/* all or nothing: the 4 KiB table is still the one in use, so a ring
	 * beyond it is not covered, one inside it is */
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_NUM, 0, 4),
			 1);
	assert_int_equal(vu_fe_vring_addr(fe, 0,
					  vu_fe_ua(fe, GPA_BASE + 0x2000),
					  vu_fe_ua(fe, GPA_BASE + 0x2100),
					  vu_fe_ua(fe, GPA_BASE + 0x2200)),
			 -EFAULT);
	assert_int_equal(vu_fe_vring_addr(fe, 0, vu_fe_ua(fe, GPA_BASE),
					  vu_fe_ua(fe, GPA_BASE + 0x100),
					  vu_fe_ua(fe, GPA_BASE + 0x200)),
			 1);
	/* a ring crossing the end of the table */
	assert_int_equal(vu_fe_vring_addr(fe, 0, vu_fe_ua(fe, GPA_BASE + 0xfd0),
					  vu_fe_ua(fe, GPA_BASE + 0x100),
					  vu_fe_ua(fe, GPA_BASE + 0x200)),
			 -EFAULT);
	/* repeated tables replace each other without leaking */
	for (int i = 0; i < 20; i++)
		assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
}

static void test_malformed_requests(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t v = 0;

	fe_negotiate(fe, false); /* no protocol features */
	/* wrong payload size: refused, the stream stays in sync */
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_FEATURES, 0, &v, 4, NULL, 0),
		-EINVAL);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_OWNER, 0, &v, 8, NULL, 0),
			 -EINVAL);
	/* an fd where none is allowed */
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_FEATURES, 0, &v, 8, &efd, 1),
		-EINVAL);
	/* kick: NOFD with an fd, no NOFD without one, unknown bits */
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_VRING_KICK,
				       0 | VHOST_USER_VRING_NOFD_MASK, efd),
			 -EINVAL);
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_VRING_CALL, 0, -1),
			 -EINVAL);
	assert_int_equal(
		vu_fe_req_u64(fe, VHOST_USER_SET_VRING_ERR, 1ull << 20, efd),
		-EINVAL);
	/* too many fds (9 > VHOST_USER_MAX_FDS) */
	int nine[9];
	for (int i = 0; i < 9; i++)
		nine[i] = efd;
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_VRING_KICK, 0, &v, 8, nine, 9),
		-EINVAL);
	/* queue index out of range */
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_NUM, NQ, 8),
			 -ERANGE);
	assert_int_equal(
		vu_fe_req_state(fe, VHOST_USER_SET_VRING_BASE, 1000, 0),
		-ERANGE);
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_VRING_KICK, 255, efd),
			 -ERANGE);
	assert_int_equal(vu_fe_vring_addr(fe, 77, 0, 0, 0), -ERANGE);
	/* ring addresses before any memory table */
	assert_int_equal(vu_fe_vring_addr(fe, 0, 0x1000, 0x2000, 0x3000),
			 -EFAULT);
	/* SET_VRING_ENABLE needs VHOST_USER_F_PROTOCOL_FEATURES */
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_SET_VRING_ENABLE, 0, 1),
			 -EOPNOTSUPP);
	/* GET_CONFIG needs VHOST_USER_PROTOCOL_F_CONFIG: the error reply */
	struct vhost_user_config c = {.size = 4};
	assert_int_equal(vu_fe_req(fe, VHOST_USER_GET_CONFIG, 0, &c,
				   VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0),
			 -EOPNOTSUPP);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_GET_CONFIG, &c, sizeof(c), NULL), 0);
	/* unknown requests, and known ones not served */
	assert_int_equal(vu_fe_req(fe, 999, 0, &v, 8, &efd, 1), -EOPNOTSUPP);
	assert_int_equal(
		vu_fe_req(fe, VHOST_USER_SET_LOG_BASE, 0, &v, 8, NULL, 0),
		-EOPNOTSUPP);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_NONE, 0, NULL, 0, NULL, 0),
			 -EOPNOTSUPP);
	/* reply bit set by the front-end */
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_OWNER,
				   VHOST_USER_REPLY_MASK, NULL, 0, NULL, 0),
			 -EINVAL);
	/* still serving */
	assert_int_equal(vu_fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM), NQ);
	assert_false(vu_fe_readable(fe->sock));
	assert_false(vdk_vhost_user_is_broken(fe->vu));
	close(efd);
}

static void test_unknown_with_reply_ack(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	uint64_t status = 0;

	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_req(fe, 999, VHOST_USER_NEED_REPLY_MASK, NULL, 0,
				   NULL, 0),
			 -EOPNOTSUPP);
	assert_int_equal(vu_fe_reply(fe, 999, &status, 8, NULL), 8);
	assert_int_equal(status, 1);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_POSTCOPY_END,
				   VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL,
				   0),
			 -EOPNOTSUPP);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_POSTCOPY_END, &status, 8, NULL), 8);
	assert_int_equal(status, 1);
}

static void test_truncated_header(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	uint8_t part[6] = {1, 0, 0, 0, 1, 0};

	vu_fe_send_raw(fe, part, sizeof(part), NULL, 0);
	assert_int_equal(vdk_vhost_user_process_message(fe->vu), 0);
	assert_false(vdk_vhost_user_is_broken(fe->vu));
	assert_int_equal(shutdown(fe->sock, SHUT_WR), 0);
	assert_int_equal(vdk_vhost_user_process_message(fe->vu), -EPROTO);
	assert_true(vdk_vhost_user_is_broken(fe->vu));
	assert_int_equal(vdk_vhost_user_process_message(fe->vu), -EIO);
}

static void test_truncated_payload_with_fd(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_header h = {VHOST_USER_SET_VRING_KICK,
				      VHOST_USER_VERSION, 8};
	int efd = eventfd(0, EFD_CLOEXEC);

	/* header and fd, then half the payload, then the end */
	vu_fe_send_raw(fe, &h, sizeof(h), &efd, 1);
	vu_fe_send_raw(fe, "\0\0\0", 3, NULL, 0);
	assert_int_equal(vdk_vhost_user_process_message(fe->vu), 0);
	close(fe->sock);
	fe->sock = -1;
	assert_int_equal(vdk_vhost_user_process_message(fe->vu), -EPROTO);
	close(efd);
}

static void test_size_too_large(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_header h = {VHOST_USER_SET_MEM_TABLE,
				      VHOST_USER_VERSION, 0x100000};

	vu_fe_send_raw(fe, &h, sizeof(h), &fe->memfd, 1);
	assert_int_equal(vdk_vhost_user_process_message(fe->vu), -EMSGSIZE);
	assert_true(vdk_vhost_user_is_broken(fe->vu));
}

static void test_bad_version(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_header h = {VHOST_USER_GET_FEATURES, 0x2, 0};

	vu_fe_send_raw(fe, &h, sizeof(h), NULL, 0);
	assert_int_equal(vdk_vhost_user_process_message(fe->vu),
			 -EPROTONOSUPPORT);
}

static void test_reply_needed_failure_breaks(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;

	/* GET_VRING_BASE for a queue that does not exist: no answer can be
	 * given, the connection ends */
	assert_int_equal(vu_fe_req_state(fe, VHOST_USER_GET_VRING_BASE, NQ, 0),
			 -EIO);
	assert_true(vdk_vhost_user_is_broken(fe->vu));
}

static void test_orderly_disconnect(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;

	fe_negotiate(fe, true);
	close(fe->sock);
	fe->sock = -1;
	assert_int_equal(vdk_vhost_user_process_message(fe->vu), -ENOTCONN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mem_table_refused,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_requests,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_with_reply_ack,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_truncated_header,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_truncated_payload_with_fd,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_size_too_large,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_version, fx_setup_tdev,
						fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_reply_needed_failure_breaks, fx_setup_tdev,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_orderly_disconnect,
						fx_setup_tdev, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
