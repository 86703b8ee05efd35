/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the stateful parts of src/vhost_user: the back-end channel
 * (SET_BACKEND_REQ_FD, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG with and without
 * REPLY_ACK, sent after the reply when raised inside a handler, timeouts),
 * device state transfer (SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE: save
 * through a full pipe without blocking the protocol socket, load, garbage,
 * a front-end that never closes its end), GET_SHMEM_CONFIG, and crosvm's
 * lifecycle with the rng device through the adapter: activate, reset,
 * re-activate, sleep, save, wake, restore into a new backend. The inflight
 * region is tested in test_vhost_user_inflight.c. The scripted front-end of
 * vu_frontend.h drives the sdev of vhost_user_env.h over a socketpair;
 * every test checks that no fd outlives it.
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
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vdk/devices/rng.h>
#include <vdk/vhost_user.h>

#include "vhost_user_env.h"
#include "vu_frontend.h"

#define BIG_STATE (1u << 20)

/* ---- back-end channel -------------------------------------------------- */

struct sender {
	struct vdk_vhost_user *vu;
	int ret;
};

static void *send_thread(void *arg)
{
	struct sender *s = arg;

	s->ret = vdk_vhost_user_send_config_change(s->vu);
	return NULL;
}

/* Read a back-end message on @chan; answer it with @status if it asks. */
static uint32_t be_take(int chan, uint32_t req, uint64_t status)
{
	struct vhost_user_header h;
	struct pollfd p = {.fd = chan, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 3000), 1);
	assert_int_equal(recv(chan, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(h.request, req);
	assert_int_equal(h.size, 0);
	assert_int_equal(h.flags & VHOST_USER_VERSION_MASK, VHOST_USER_VERSION);
	if (h.flags & VHOST_USER_NEED_REPLY_MASK) {
		struct vhost_user_msg r = {
			.hdr = {req, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK,
				8},
			.payload.u64 = status,
		};
		const size_t len = sizeof(r.hdr) + sizeof(r.payload.u64);

		assert_int_equal(send(chan, &r, len, MSG_NOSIGNAL), len);
	}
	return h.flags;
}

static void *process_thread(void *arg)
{
	struct vu_fe *fe = arg;

	return (void *)(intptr_t)vdk_vhost_user_process_message(fe->vu);
}

static void test_backend_channel(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	const uint64_t pf = PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |
			    PF(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			    PF(VHOST_USER_PROTOCOL_F_CONFIG);
	struct sender s = {.vu = fe->vu};
	pthread_t t;
	int ch[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch),
			 0);
	/* before negotiation: refused; without F_CONFIG: -EOPNOTSUPP */
	assert_int_equal(
		vu_fe_req_fd(fe, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, ch[1]),
		-EOPNOTSUPP);
	assert_int_equal(vdk_vhost_user_send_config_change(fe->vu),
			 -EOPNOTSUPP);
	assert_int_equal(vu_fe_setup(fe, pf) & pf, pf);
	assert_int_equal(
		vu_fe_req_fd(fe, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, -1),
		-EINVAL);
	assert_int_equal(
		vu_fe_req_fd(fe, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, ch[1]),
		1);
	close(ch[1]); /* the backend holds its own copy */

	/* REPLY_ACK: NEED_REPLY set, the ack is waited for */
	assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
	assert_int_equal(
		be_take(ch[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 0),
		VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK);
	pthread_join(t, NULL);
	assert_int_equal(s.ret, 0);
	/* the front-end reports failure */
	assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
	be_take(ch[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 1);
	pthread_join(t, NULL);
	assert_int_equal(s.ret, -EIO);

	/* from inside a handler: after the handler's reply */
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	assert_non_null(f->sd.irq);
	struct vhost_user_config c = {.offset = 0, .size = 2};
	memcpy(c.region, "zz", 2);
	vu_fe_send(fe, VHOST_USER_SET_CONFIG, VHOST_USER_NEED_REPLY_MASK, &c,
		   VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0);
	struct sender p = {.vu = fe->vu};
	assert_int_equal(pthread_create(&t, NULL, send_thread, &p), 0);
	pthread_join(t, NULL); /* a worker-thread send works meanwhile */
	assert_int_equal(p.ret, -ETIMEDOUT); /* ...but nobody answered it */
	assert_int_equal(vdk_vhost_user_send_config_change(fe->vu), -ENOTCONN);

	/* a fresh channel, the in-handler case proper */
	int ch2[2];
	uint64_t status = 9;
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch2), 0);
	close(ch[0]);
	assert_int_equal(vdk_vhost_user_process_message(fe->vu),
			 1); /* SET_CONFIG */
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_SET_CONFIG, &status, 8, NULL), 8);
	assert_int_equal(status, 0);
	assert_memory_equal(f->sd.config, "zz", 2);
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_BACKEND_REQ_FD, NULL,
				      0, ch2[1]),
			 1);
	close(ch2[1]);
	vu_fe_send(fe, VHOST_USER_SET_CONFIG, VHOST_USER_NEED_REPLY_MASK, &c,
		   VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0);
	/* process_message waits for the ack after its reply: run it aside */
	assert_int_equal(pthread_create(&t, NULL, process_thread, fe), 0);
	be_take(ch2[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 0);
	/* the SET_CONFIG ack went out before the back-end message */
	assert_true(vu_fe_readable(fe->sock));
	pthread_join(t, NULL);
	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_SET_CONFIG, &status, 8, NULL), 8);
	assert_int_equal(status, 0);

	/* without REPLY_ACK: no NEED_REPLY, nothing waited for */
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES,
				       PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |
					       PF(VHOST_USER_PROTOCOL_F_CONFIG),
				       -1),
			 1);
	assert_int_equal(vdk_vhost_user_send_config_change(fe->vu), 0);
	assert_int_equal(
		be_take(ch2[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 0),
		VHOST_USER_VERSION);
	/* the front-end closed its end */
	close(ch2[0]);
	assert_true(vdk_vhost_user_send_config_change(fe->vu) < 0);
	assert_false(vdk_vhost_user_is_broken(fe->vu));
	/* F_CONFIG not negotiated (QEMU's vhost-user-net): never sent */
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES,
				       PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ),
				       -1),
			 1);
	assert_int_equal(vdk_vhost_user_send_config_change(fe->vu),
			 -EOPNOTSUPP);
}

/* ---- device state ------------------------------------------------------ */

static int fe_set_state_fd(struct vu_fe *fe, uint32_t dir, uint32_t phase,
			   int fd, uint64_t *answer)
{
	struct vhost_user_transfer_device_state p = {dir, phase};
	int ret = vu_fe_req_fd(fe, VHOST_USER_SET_DEVICE_STATE_FD, &p,
			       sizeof(p), fd);

	assert_int_equal(vu_fe_reply(fe, VHOST_USER_SET_DEVICE_STATE_FD, answer,
				     8, NULL),
			 8);
	return ret;
}

static int fe_check_state(struct vu_fe *fe, uint64_t *answer)
{
	int ret = vu_fe_req_fd(fe, VHOST_USER_CHECK_DEVICE_STATE, NULL, 0, -1);

	assert_int_equal(
		vu_fe_reply(fe, VHOST_USER_CHECK_DEVICE_STATE, answer, 8, NULL),
		8);
	return ret;
}

/* Read @fd to its end; returns the bytes (malloc'd), *@len their count. */
static uint8_t *drain(int fd, size_t *len)
{
	size_t cap = 1 << 16;
	uint8_t *buf = malloc(cap);
	ssize_t n;

	*len = 0;
	while ((n = read(fd, buf + *len, cap - *len)) > 0) {
		*len += (size_t)n;
		if (*len == cap)
			buf = realloc(buf, cap *= 2);
	}
	assert_int_equal(n, 0);
	return buf;
}

static void test_device_state_save_load(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	uint64_t answer;
	int p[2];

	/* not negotiated */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(fe,
					 VHOST_TRANSFER_STATE_DIRECTION_SAVE, 0,
					 p[1], &answer),
			 -EOPNOTSUPP);
	assert_int_equal(answer, 0x101); /* error, no fd */
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	/* nothing to check yet; a bad phase or direction; no fd */
	assert_int_equal(fe_check_state(fe, &answer), -ENOENT);
	assert_int_equal(answer, 1);
	assert_int_equal(fe_set_state_fd(fe, 0, 1, p[1], &answer), -EINVAL);
	assert_int_equal(fe_set_state_fd(fe, 2, 0, p[1], &answer), -EINVAL);
	assert_int_equal(fe_set_state_fd(fe, 0, 0, -1, &answer), -EINVAL);
	assert_int_equal(answer, 0x101);
	/* a started ring: not the stopped phase */
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	assert_int_equal(fe_set_state_fd(fe, 0, 0, p[1], &answer), -EBUSY);
	vu_fe_get_vring_base(fe, 0);

	/* save 1 MiB through a pipe nobody reads yet: the worker waits, the
	 * protocol socket does not */
	f->sd.state_len = BIG_STATE;
	assert_int_equal(fe_set_state_fd(fe,
					 VHOST_TRANSFER_STATE_DIRECTION_SAVE, 0,
					 p[1], &answer),
			 1);
	assert_int_equal(answer, VHOST_USER_VRING_NOFD_MASK);
	close(p[1]);
	assert_int_equal(vu_fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM), NQ);
	size_t len;
	uint8_t *bytes = drain(p[0], &len);
	close(p[0]);
	assert_true(len > BIG_STATE); /* a CBOR byte string of 1 MiB */
	assert_int_equal(fe_check_state(fe, &answer), 1);
	assert_int_equal(answer, 0);

	/* load it into a fresh backend */
	vu_fe_disconnect(fe);
	fx_reconnect_sdev(f);
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(fe,
					 VHOST_TRANSFER_STATE_DIRECTION_LOAD, 0,
					 p[0], &answer),
			 1);
	close(p[0]);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(p[1], bytes + off, len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	close(p[1]);
	assert_int_equal(fe_check_state(fe, &answer), 1);
	assert_int_equal(answer, 0);
	assert_int_equal(f->sd.restored_len, BIG_STATE);
	for (size_t i = 0; i < BIG_STATE; i++)
		if (f->sd.restored[i] != (uint8_t)(i * 7 + 3))
			fail_msg("restored byte %zu differs", i);
	free(bytes);

	/* garbage, and trailing bytes after a valid item */
	const uint8_t junk[][3] = {{0xff, 0xff, 0xff}, {0x41, 'a', 0x00}};
	for (int k = 0; k < 2; k++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		assert_int_equal(fe_set_state_fd(fe, 1, 0, p[0], &answer), 1);
		close(p[0]);
		assert_int_equal(write(p[1], junk[k], 3), 3);
		close(p[1]);
		assert_int_equal(fe_check_state(fe, &answer), -EINVAL);
		assert_int_equal(answer, 1);
	}
	/* the reader left: EPIPE, not SIGPIPE */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	assert_int_equal(fe_set_state_fd(fe, 0, 0, p[1], &answer), 1);
	close(p[1]);
	assert_int_equal(fe_check_state(fe, &answer), -EPIPE);
	assert_int_equal(answer, 1);
	assert_false(vdk_vhost_user_is_broken(fe->vu));
}

static void test_device_state_stuck_front_end(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	uint64_t answer;
	int p[2];

	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	/* load: the front-end never closes its end; CHECK gives up */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(fe, 1, 0, p[0], &answer), 1);
	close(p[0]);
	assert_int_equal(fe_check_state(fe, &answer), -ETIMEDOUT);
	assert_int_equal(answer, 1);
	close(p[1]);
	/* save: nobody reads, a new transfer replaces it, the connection
	 * ends with a worker still blocked: both are cancelled */
	f->sd.state_len = BIG_STATE;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		assert_int_equal(fe_set_state_fd(fe, 0, 0, p[1], &answer), 1);
		close(p[1]);
		close(p[0]); /* ...or kept: p[0] closed only after free */
	}
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(fe, 0, 0, p[1], &answer), 1);
	close(p[1]);
	vu_fe_disconnect(fe);
	close(p[0]);
}

/* A call that would wait forever fails the test instead of hanging it. */
static void on_alarm(int sig)
{
	static const char msg[] = "test_vhost_user_state: a call blocked\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Load from an fd whose read() would block although poll() says readable
 * (an AF_UNIX socket with SO_RCVLOWAT 8 and one byte queued), and save
 * into a socket nobody reads: a new transfer, RESET_DEVICE and the end of
 * the connection each cancel the worker at once. */
static void test_device_state_blocking_fds(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	uint64_t answer;
	int s[2], lowat = 8;

	signal(SIGALRM, on_alarm);
	alarm(10);
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE) |
				PF(VHOST_USER_PROTOCOL_F_RESET_DEVICE));
	for (int round = 0; round < 3; round++) {
		assert_int_equal(
			socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s),
			0);
		assert_int_equal(setsockopt(s[0], SOL_SOCKET, SO_RCVLOWAT,
					    &lowat, sizeof(lowat)),
				 0);
		assert_int_equal(write(s[1], "\x82", 1), 1);
		assert_int_equal(
			fe_set_state_fd(fe, VHOST_TRANSFER_STATE_DIRECTION_LOAD,
					0, s[0], &answer),
			1);
		close(s[0]);
		usleep(20000); /* let the worker reach its read */
		double t0 = now_s();
		if (round == 0) /* a new transfer replaces it */
			assert_int_equal(
				fe_set_state_fd(
					fe, VHOST_TRANSFER_STATE_DIRECTION_LOAD,
					0, s[1], &answer),
				1);
		else if (round == 1)
			assert_int_equal(vu_fe_req_fd(fe,
						      VHOST_USER_RESET_DEVICE,
						      NULL, 0, -1),
					 1);
		else
			vu_fe_disconnect(fe);
		if (now_s() - t0 > 1.0)
			fail_msg("cancel took %.2f s", now_s() - t0);
		close(s[1]);
		if (round == 1)
			vu_fe_features_and_memory(
				fe,
				PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE) |
					PF(VHOST_USER_PROTOCOL_F_RESET_DEVICE));
	}
	/* save into a socket nobody reads, with the connection ended */
	fx_reconnect_sdev(f);
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	f->sd.state_len = BIG_STATE;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s),
			 0);
	assert_int_equal(fe_set_state_fd(fe,
					 VHOST_TRANSFER_STATE_DIRECTION_SAVE, 0,
					 s[0], &answer),
			 1);
	close(s[0]);
	usleep(20000);
	vu_fe_disconnect(fe);
	close(s[1]);
	alarm(0);
}

/* A state blob whose CBOR claims more items than it has bytes is refused
 * without allocating for the claim (libcbor would allocate 2^24 and more
 * pointers up front), and the connection stays usable. */
static void test_device_state_bounded_load(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	/* array(2^24); array(2^32) of map(2^32); 2^31 nested arrays of 1 */
	static const uint8_t claims[][27] = {
		{0x9a, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
		{0x9b, 0, 0, 0, 1, 0, 0, 0, 0, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0},
		{0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81,
		 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81,
		 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81},
	};
	static const size_t lens[] = {9, 18, 27};
	struct rusage ru0, ru1;
	uint64_t answer;
	int p[2];

	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	getrusage(RUSAGE_SELF, &ru0);
	for (size_t k = 0; k < 3; k++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		assert_int_equal(
			fe_set_state_fd(fe, VHOST_TRANSFER_STATE_DIRECTION_LOAD,
					0, p[0], &answer),
			1);
		close(p[0]);
		assert_int_equal(write(p[1], claims[k], lens[k]),
				 (ssize_t)lens[k]);
		close(p[1]);
		assert_int_equal(fe_check_state(fe, &answer), -EINVAL);
		assert_int_equal(answer, 1);
	}
	getrusage(RUSAGE_SELF, &ru1);
	/* ru_maxrss in KiB: no claim was honoured */
	if (ru1.ru_maxrss - ru0.ru_maxrss > 16 * 1024)
		fail_msg("loading the claims grew RSS by %ld KiB",
			 ru1.ru_maxrss - ru0.ru_maxrss);
	assert_int_equal(vu_fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM), NQ);
}

/* CHECK_DEVICE_STATE of a load while a ring runs is refused, and the ring
 * goes on being served (the adapter's device is not left asleep). */
static void test_device_state_check_while_running(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	const uint64_t pf = PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE);
	struct vdk_vhost_user_device_adapter ad;
	struct vdk_rng *rng = fx_connect_rng(fe, &ad, NULL);
	struct vdk_device *dev = vdk_rng_device(rng);
	uint64_t answer;
	int p[2];

	vu_fe_setup(fe, pf);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(fe,
					 VHOST_TRANSFER_STATE_DIRECTION_LOAD, 0,
					 p[0], &answer),
			 1);
	close(p[0]);
	assert_int_equal(write(p[1], "\xa0", 1), 1); /* an empty map */
	close(p[1]);
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	assert_int_equal(fe_check_state(fe, &answer), -EBUSY);
	assert_int_equal(answer, 1);
	assert_false(dev->asleep);
	rng_request(fe, rng, DATA_GPA, 1);
	/* a failed restore through the adapter leaves a running device awake */
	cbor_item_t *junk = cbor_new_definite_map(0);
	assert_true(ad.ops.restore(&ad, junk) < 0);
	cbor_decref(&junk);
	assert_false(dev->asleep);
	rng_request(fe, rng, DATA_GPA + 0x100, 2);
	vu_fe_disconnect(fe);
	vdk_rng_free(rng);
}

static void test_shmem_config(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_shmem_config c;

	memset(&c, 0xff, sizeof(c));
	assert_int_equal(
		vu_fe_req_fd(fe, VHOST_USER_GET_SHMEM_CONFIG, NULL, 0, -1), 1);
	assert_int_equal(vu_fe_reply(fe, VHOST_USER_GET_SHMEM_CONFIG, &c,
				     sizeof(c), NULL),
			 sizeof(c));
	assert_int_equal(c.nregions, 0);
	assert_int_equal(c.memory_sizes[0], 0);
}

/* ---- crosvm's lifecycle, with the rng device through the adapter ------- */

static void test_lifecycle_rng(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	const uint64_t pf = PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE) |
			    PF(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
			    PF(VHOST_USER_PROTOCOL_F_REPLY_ACK);
	struct vdk_vhost_user_device_adapter ad, ad2;
	struct vdk_rng *rng = fx_connect_rng(fe, &ad, NULL), *rng2;
	struct vdk_device *dev = vdk_rng_device(rng), *dev2;
	uint64_t answer;
	int p[2];

	/* SET_OWNER ... rings started: activate */
	vu_fe_setup(fe, pf);
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	rng_request(fe, rng, DATA_GPA, 1);
	/* reset, then activate again */
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_RESET_DEVICE, NULL, 0, -1),
			 1);
	assert_int_equal(dev->state, VDK_DEVICE_RESET);
	vu_fe_features_and_memory(fe, pf);
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	rng_request(fe, rng, DATA_GPA, 2);
	/* suspended (spec "Suspended device state"): GET_VRING_BASE of the
	 * last ring puts the device to sleep */
	assert_int_equal(vu_fe_get_vring_base(fe, 0), 1);
	assert_true(dev->asleep);
	/* save */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(fe,
					 VHOST_TRANSFER_STATE_DIRECTION_SAVE, 0,
					 p[1], &answer),
			 1);
	close(p[1]);
	size_t len;
	uint8_t *saved = drain(p[0], &len);
	close(p[0]);
	assert_int_equal(fe_check_state(fe, &answer), 1);
	assert_int_equal(answer, 0);
	assert_true(dev->asleep); /* still suspended */
	/* wake: the ring restarts where it stopped */
	vu_fe_start_ring(fe, 0, 1, RING_RESTART);
	assert_false(dev->asleep);
	rng_request(fe, rng, DATA_GPA + 0x100, 3);
	assert_int_equal(vu_fe_get_vring_base(fe, 0), 2);
	vu_fe_disconnect(fe);

	/* restore into a new backend and compare */
	rng2 = fx_connect_rng(fe, &ad2, NULL);
	dev2 = vdk_rng_device(rng2);
	vu_fe_setup(fe, pf);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(fe,
					 VHOST_TRANSFER_STATE_DIRECTION_LOAD, 0,
					 p[0], &answer),
			 1);
	close(p[0]);
	assert_int_equal(write(p[1], saved, len), (ssize_t)len);
	close(p[1]);
	assert_int_equal(fe_check_state(fe, &answer), 1);
	assert_int_equal(answer, 0);
	assert_int_equal(dev2->state, VDK_DEVICE_ACTIVE);
	assert_int_equal(dev2->acked_features, F_VERSION_1);
	assert_true(dev2->asleep); /* until its queues run */
	uint8_t *again;
	size_t again_len;
	assert_int_equal(vdk_device_snapshot(dev2, &again, &again_len), 0);
	assert_int_equal(again_len, len);
	assert_memory_equal(again, saved, len);
	free(again);
	free(saved);
	/* the restored device serves the ring from where the guest is */
	vu_fe_start_ring(fe, 0, 2, RING_RESTART);
	assert_false(dev2->asleep);
	rng_request(fe, rng2, DATA_GPA + 0x200, 3); /* 2 restored + 1 */
	vu_fe_disconnect(fe);
	vdk_rng_free(rng);
	vdk_rng_free(rng2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_backend_channel,
						fx_setup_sdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_device_state_save_load,
						fx_setup_sdev, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_device_state_stuck_front_end, fx_setup_sdev,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_device_state_blocking_fds,
						fx_setup_sdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_device_state_bounded_load,
						fx_setup_sdev, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_device_state_check_while_running, fx_setup_sdev,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_shmem_config,
						fx_setup_sdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lifecycle_rng,
						fx_setup_sdev, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
