/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the rule on front-end-chosen ring fds (<vdk/vhost_user.h>,
 * "File descriptors the front-end chooses"; src/vhost_user/message.c
 * vu_check_notify_fd()): SET_VRING_CALL, SET_VRING_KICK and SET_VRING_ERR
 * with an fd of every kind (blocking and non-blocking eventfd, both ends
 * of a pipe, a full pipe, an AF_UNIX socket with SO_RCVLOWAT and one byte
 * queued, a regular file, /dev/null, a memfd): only the non-blocking
 * eventfd is taken; the others are refused with -EINVAL and the ring keeps
 * its fd. Then what a front-end can still do to an accepted eventfd: fill
 * the call counter to its maximum, drain the kick counter itself, clear
 * O_NONBLOCK on the kick fd afterwards: no call ever waits (each step runs
 * under an alarm that fails the test instead of hanging it). And files
 * that could shrink under a mapping: guest RAM and the inflight region
 * must be sealed with F_SEAL_SHRINK (guest RAM unless the program allows
 * unsealed memory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vdk/vhost_user.h>

#include "vhost_user_env.h"
#include "vu_frontend.h"

/* A call that would wait forever ends the test with a message instead. */
static void on_alarm(int sig)
{
	static const char msg[] = "test_vhost_user_fds: a call blocked\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

static void guard_start(void)
{
	signal(SIGALRM, on_alarm);
	alarm(5);
}

static void guard_end(void)
{
	alarm(0);
}

enum kind {
	K_EVENTFD_BLOCKING,
	K_PIPE_READ,
	K_PIPE_WRITE_FULL,
	K_SOCKET_LOWAT,
	K_FILE,
	K_DEVNULL,
	K_MEMFD,
	K_COUNT
};

static const char *const kind_names[K_COUNT] = {
	"blocking eventfd",
	"pipe read end",
	"full pipe write end",
	"SO_RCVLOWAT socket",
	"regular file",
	"/dev/null",
	"memfd",
};

/* An fd of @k; *@keep is an fd the test keeps open meanwhile (or -1). */
static int make_kind(enum kind k, int *keep)
{
	int p[2], fd = -1, lowat = 8;
	char path[] = "/tmp/vdk-test-fds-XXXXXX";

	*keep = -1;
	switch (k) {
	case K_EVENTFD_BLOCKING:
		fd = eventfd(0, EFD_CLOEXEC);
		break;
	case K_PIPE_READ:
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		fd = p[0];
		*keep = p[1];
		break;
	case K_PIPE_WRITE_FULL:
		assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
		while (write(p[1], path, sizeof(path)) > 0)
			;
		fd = p[1];
		*keep = p[0];
		break;
	case K_SOCKET_LOWAT:
		assert_int_equal(
			socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p),
			0);
		assert_int_equal(setsockopt(p[0], SOL_SOCKET, SO_RCVLOWAT,
					    &lowat, sizeof(lowat)),
				 0);
		assert_int_equal(write(p[1], "x", 1), 1);
		fd = p[0];
		*keep = p[1];
		break;
	case K_FILE:
		fd = mkstemp(path);
		assert_true(fd >= 0);
		unlink(path);
		break;
	case K_DEVNULL:
		fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NONBLOCK);
		break;
	case K_MEMFD:
		fd = memfd_create("vdk-test", MFD_CLOEXEC);
		break;
	default:
		break;
	}
	assert_true(fd >= 0);
	return fd;
}

static void test_only_nonblocking_eventfds(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	static const uint32_t reqs[] = {VHOST_USER_SET_VRING_CALL,
					VHOST_USER_SET_VRING_KICK,
					VHOST_USER_SET_VRING_ERR};

	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	int kick_before = vdk_vhost_user_kick_fd(fe->vu, 0);
	assert_true(kick_before >= 0);
	for (size_t r = 0; r < 3; r++) {
		for (int k = 0; k < K_COUNT; k++) {
			int keep, fd = make_kind((enum kind)k, &keep);

			guard_start();
			if (vu_fe_req_u64(fe, reqs[r], 0, fd) != -EINVAL)
				fail_msg("%s accepted as %s fd", kind_names[k],
					 vdk_vhost_user_request_name(reqs[r]));
			guard_end();
			close(fd);
			if (keep >= 0)
				close(keep);
		}
	}
	/* the ring kept its fds and still runs */
	assert_int_equal(vdk_vhost_user_kick_fd(fe->vu, 0), kick_before);
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 1);
	assert_true(vu_fe_readable(fe->call[0]));

	/* a non-blocking eventfd is taken for each */
	for (size_t r = 0; r < 3; r++) {
		int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		assert_int_equal(vu_fe_req_u64(fe, reqs[r], 0, efd), 1);
		close(efd);
	}
}

static void test_hostile_eventfd_use(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	const uint64_t max = 0xfffffffffffffffeull;
	uint64_t v;

	fe_negotiate(fe, true);
	assert_int_equal(vu_fe_mem_table(fe, GPA_BASE, RAM_SIZE, 0), 1);
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	guard_start();

	/* call counter at its maximum: the notification is EAGAIN, nothing
	 * waits, the request is still served */
	while (read(fe->call[0], &v, sizeof(v)) == sizeof(v))
		;
	assert_int_equal(write(fe->call[0], &max, sizeof(max)), sizeof(max));
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 1);

	/* the front-end drains its own kick fd, then makes it blocking:
	 * handle_kick (as after a stale epoll wake-up) does not wait */
	vu_fe_post_kick(fe, 0, DATA_GPA);
	assert_int_equal(read(fe->kick[0], &v, sizeof(v)), sizeof(v));
	int fl = fcntl(fe->kick[0], F_GETFL);
	assert_int_equal(fcntl(fe->kick[0], F_SETFL, fl & ~O_NONBLOCK), 0);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 2);
	assert_int_equal(fcntl(fe->kick[0], F_SETFL, fl), 0);

	/* an error fd at its maximum: the broken ring's error signal does
	 * not wait either */
	int err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_int_equal(write(err, &max, sizeof(max)), sizeof(max));
	assert_int_equal(vu_fe_req_u64(fe, VHOST_USER_SET_VRING_ERR, 0, err),
			 1);
	/* a chain whose head is out of range breaks the ring */
	assert_int_equal(guest_ring_push(&fe->gr[0], QSIZE + 3), 0);
	vu_fe_kick(fe, 0);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_true(vdk_virtq_is_broken(f->td.q[0]));
	guard_end();
	close(err);
}

/* A memfd of @size bytes, sealed against shrinking if @seal. */
static int make_memfd(uint64_t size, bool seal)
{
	int fd = memfd_create("vdk-test-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (seal)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	return fd;
}

/* Guest RAM and the inflight region in files that could shrink: refused
 * (-EPERM) unless the program allows unsealed guest RAM; a sealed file
 * cannot be shrunk, so the mapping stays valid. */
static void test_shrinkable_memory(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	const uint64_t gpa = 0x100000000ull, size = 0x10000;
	struct vhost_user_memory m = {.nregions = 1};
	struct vhost_user_mem_reg_msg reg = {0};
	int fd;

	fe_negotiate(fe, true);
	m.regions[0] = (struct vhost_user_memory_region){gpa, size,
							 0x7f0000000000ull, 0};
	reg.region = m.regions[0];

	/* unsealed: refused, in both requests */
	fd = make_memfd(size, false);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m,
				   8 + sizeof(m.regions[0]), &fd, 1),
			 -EPERM);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_ADD_MEM_REG, 0, &reg,
				   sizeof(reg), &fd, 1),
			 -EPERM);
	/* sealed: taken, and the front-end cannot shrink it any more */
	int sealed = make_memfd(size, true);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m,
				   8 + sizeof(m.regions[0]), &sealed, 1),
			 1);
	assert_true(ftruncate(sealed, 0) < 0);
	assert_int_equal(errno, EPERM);
	close(sealed);
	/* allowed by the program: the unsealed file is mapped */
	vdk_vhost_user_set_allow_unsealed(fe->vu, true);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m,
				   8 + sizeof(m.regions[0]), &fd, 1),
			 1);
	vdk_vhost_user_set_allow_unsealed(fe->vu, false);
	close(fd);
	/* a file that cannot be sealed at all (not shmem) */
	char path[] = "/tmp/vdk-test-ram-XXXXXX";
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m,
				   8 + sizeof(m.regions[0]), &fd, 1),
			 -EPERM);
	close(fd);
}

static void test_shrinkable_inflight(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_inflight in = {.mmap_size = 4096,
					 .mmap_offset = 0,
					 .num_queues = NQ,
					 .queue_size = QSIZE};

	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	int fd = make_memfd(4096, false);
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), fd),
			 -EPERM);
	close(fd);
	/* a regular file cannot be sealed at all */
	char path[] = "/tmp/vdk-test-inflight-XXXXXX";
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), fd),
			 -EPERM);
	close(fd);
	fd = make_memfd(4096, true);
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), fd),
			 1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_only_nonblocking_eventfds,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_eventfd_use,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_shrinkable_memory,
						fx_setup_tdev, fx_teardown),
		cmocka_unit_test_setup_teardown(test_shrinkable_inflight,
						fx_setup_tdev, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
