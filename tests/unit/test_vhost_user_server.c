/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for the vhost-user server and a connection on a loop
 * (src/vhost_user/server.c, connection_loop.c), through the public API only:
 * vdk's blk device with io_uring (VDK_BLK_IO_ASYNC, so that every request
 * completes through the device's completion eventfd, which the device puts
 * on the loop itself) served by vdk_vhost_user_server_new() on an epoll loop
 * run by a thread; the library's own front-end and driver transport
 * (<vdk/vhost_user_frontend.h>) connect to the socket path twice in a row and
 * write and read the disk. Also: a live socket is refused and a stale one
 * replaced, an inherited connected socket ends the server when it closes.
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include <vdk/devices/blk.h>
#include <vdk/driver.h>
#include <vdk/log.h>
#include <vdk/loop.h>
#include <vdk/vhost_user.h>
#include <vdk/vhost_user_frontend.h>

#define PF(bit)	    (1ull << (bit))
#define IMG_SECTORS 2048u /* 1 MiB image */
#define RAM_SIZE    (1u << 20)
#define RAM_GPA	    0x40000000ull
#define QSIZE	    16u

struct server_env {
	char dir[64], img[96], sock[96];
	struct vdk_loop *loop;
	struct vdk_blk *blk;
	struct vdk_vhost_user_server *srv;
	pthread_t th;
	atomic_int connected, disconnected, done, errors;
};

static void on_event(void *opaque, enum vdk_vhost_user_server_event ev, int err)
{
	struct server_env *s = opaque;

	if (err)
		atomic_fetch_add(&s->errors, 1);
	if (ev == VDK_VHOST_USER_SERVER_CONNECTED)
		atomic_fetch_add(&s->connected, 1);
	else if (ev == VDK_VHOST_USER_SERVER_DISCONNECTED)
		atomic_fetch_add(&s->disconnected, 1);
	else
		atomic_fetch_add(&s->done, 1);
}

static void *loop_main(void *arg)
{
	struct server_env *s = arg;

	assert_int_equal(vdk_loop_epoll_run(s->loop), 0);
	return NULL;
}

static void wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 5000 && atomic_load(v) < want; i++)
		usleep(1000);
	assert_int_equal(atomic_load(v), want);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* ---- a driver over the library's front-end ------------------------------- */

struct drv {
	struct vdk_vhost_user_frontend *fe;
	struct vdk_vhost_user_driver d;
	struct vdk_driver_virtq q;
	struct vdk_driver_virtq_slot slots[64];
	uint8_t *ram;
	int memfd;
	size_t bump;
	uint64_t features;
};

static void *ram_alloc(struct drv *e, size_t len, size_t align)
{
	void *p;

	e->bump = (e->bump + align - 1) & ~(align - 1);
	assert_true(e->bump + len <= RAM_SIZE);
	p = e->ram + e->bump;
	e->bump += len;
	return p;
}

/* Connect to @path and bring the device to DRIVER_OK with one queue. */
static void drv_open(struct drv *e, const char *path)
{
	const struct vdk_vhost_user_frontend_region r = {
		.gpa = RAM_GPA, .size = RAM_SIZE, .addr = NULL, .fd = -1};
	struct vdk_vhost_user_frontend_region reg = r;
	struct vdk_vhost_user_driver_config cfg = {
		.device_id = VIRTIO_ID_BLOCK,
		.max_queue_size = 256,
		.regions = &reg,
		.nregions = 1,
	};
	size_t len = vdk_driver_virtq_layout_size(QSIZE);
	struct vdk_driver_virtq_config qc = {.index = 0, .size = QSIZE};
	int err, fd;

	memset(e, 0, sizeof(*e));
	e->memfd = memfd_create("test-srv", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(e->memfd >= 0);
	assert_int_equal(ftruncate(e->memfd, RAM_SIZE), 0);
	/* guest RAM must not be shrinkable under the back-end */
	assert_int_equal(fcntl(e->memfd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	e->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      e->memfd, 0);
	assert_true(e->ram != MAP_FAILED);
	reg.addr = e->ram;
	reg.fd = e->memfd;
	fd = connect_to(path);
	assert_true(fd >= 0);
	e->fe = vdk_vhost_user_frontend_new(fd, &err);
	assert_non_null(e->fe);
	assert_int_equal(vdk_vhost_user_driver_init(&e->d, e->fe, &cfg), 0);
	assert_int_equal(vdk_driver_begin_init(&e->d.transport,
					       PF(VIRTIO_F_VERSION_1) |
						       PF(VIRTIO_BLK_F_FLUSH),
					       &e->features),
			 0);
	qc.features = e->features;
	qc.ring = ram_alloc(e, len, 4096);
	qc.ring_gpa = e->d.hal.virt_to_phys(e->d.hal.opaque, qc.ring, len);
	qc.ring_len = len;
	qc.slots = e->slots;
	assert_int_equal(
		vdk_driver_virtq_init(&e->q, &e->d.transport, &e->d.hal, &qc),
		0);
	assert_int_equal(vdk_driver_finish_init(&e->d.transport), 0);
}

static void drv_close(struct drv *e)
{
	vdk_vhost_user_driver_fini(&e->d);
	vdk_vhost_user_frontend_free(e->fe);
	munmap(e->ram, RAM_SIZE);
	close(e->memfd);
}

/* One request (virtio 1.2 §5.2.6), waited for on the call fd; the status. */
static uint8_t blk_io(struct drv *e, uint32_t type, uint64_t sector, void *data,
		      uint32_t len)
{
	struct virtio_blk_outhdr *hdr = ram_alloc(e, sizeof(*hdr), 16);
	uint8_t *status = ram_alloc(e, 1, 1);
	struct vdk_driver_buf rd[2] = {{hdr, sizeof(*hdr)}, {data, len}};
	struct vdk_driver_buf wr[2] = {{data, len}, {status, 1}};
	struct pollfd p = {.fd = vdk_vhost_user_driver_call_fd(&e->d, 0),
			   .events = POLLIN};
	uint16_t token;
	uint32_t written;
	int head;

	hdr->type = type;
	hdr->ioprio = 0;
	hdr->sector = sector;
	*status = 0xff;
	if (type == VIRTIO_BLK_T_OUT)
		head = vdk_driver_virtq_add(&e->q, rd, 2, &wr[1], 1);
	else
		head = vdk_driver_virtq_add(&e->q, rd, 1, wr, 2);
	assert_true(head >= 0);
	assert_true(vdk_driver_virtq_kick(&e->q));
	while (!vdk_driver_virtq_can_pop(&e->q)) {
		assert_int_equal(poll(&p, 1, 5000), 1);
		(void)e->d.transport.ops->ack_interrupt(e->d.transport.ctx);
	}
	assert_int_equal(vdk_driver_virtq_pop_used(&e->q, &token, &written), 0);
	assert_int_equal(token, head);
	return *status;
}

/* ---- tests ------------------------------------------------------------------ */

static void server_env_init(struct server_env *s, enum vdk_blk_io_mode mode)
{
	struct vdk_blk_config cfg = {0};
	int fd, err;

	memset(s, 0, sizeof(*s));
	strcpy(s->dir, "/tmp/vdk-test-srv-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->img, sizeof(s->img), "%s/disk.img", s->dir);
	snprintf(s->sock, sizeof(s->sock), "%s/blk.sock", s->dir);
	fd = open(s->img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IMG_SECTORS * 512), 0);
	close(fd);
	cfg.path = s->img;
	cfg.io_mode = mode;
	cfg.single_thread = true;
	s->blk = vdk_blk_new(&cfg, NULL);
	assert_non_null(s->blk);
	s->loop = vdk_loop_epoll_new(&err);
	assert_non_null(s->loop);
}

static void server_env_fini(struct server_env *s)
{
	vdk_blk_free(s->blk); /* before the loop its fds are on */
	vdk_loop_epoll_free(s->loop);
	unlink(s->img);
	rmdir(s->dir);
}

/* Two front-ends one after the other; each writes and reads the disk with
 * io_uring completions that only the loop sees. Between them the device is
 * reset; at the end the socket file is removed. */
static void test_two_connections_io_uring(void **state)
{
	struct vdk_vhost_user_server_config cfg = {.fd = -1, .event = on_event};
	struct server_env s;
	struct vdk_device *dev;
	struct stat st;
	int err;

	(void)state;
	server_env_init(&s, VDK_BLK_IO_ASYNC);
	assert_int_equal(vdk_blk_io_info(s.blk).mode, VDK_BLK_IO_ASYNC);
	dev = vdk_blk_device(s.blk);
	cfg.socket_path = s.sock;
	cfg.opaque = &s;
	s.srv = vdk_vhost_user_server_new(&cfg, dev, s.loop, &err);
	assert_non_null(s.srv);
	assert_int_equal(err, 0);
	assert_ptr_equal(dev->loop, s.loop); /* attached by the server */
	assert_int_equal(stat(s.sock, &st), 0);
	assert_int_equal(pthread_create(&s.th, NULL, loop_main, &s), 0);

	for (int round = 0; round < 2; round++) {
		struct drv e;
		uint8_t *buf;

		drv_open(&e, s.sock);
		wait_for(&s.connected, round + 1);
		buf = ram_alloc(&e, 4096, 4096);
		memset(buf, 0x40 + round, 4096);
		assert_int_equal(blk_io(&e, VIRTIO_BLK_T_OUT, 8, buf, 4096),
				 VIRTIO_BLK_S_OK);
		memset(buf, 0, 4096);
		assert_int_equal(blk_io(&e, VIRTIO_BLK_T_IN, 8, buf, 4096),
				 VIRTIO_BLK_S_OK);
		for (int i = 0; i < 4096; i++)
			assert_int_equal(buf[i], 0x40 + round);
		drv_close(&e);
		wait_for(&s.disconnected, round + 1);
		assert_int_equal(dev->state, VDK_DEVICE_RESET);
	}
	assert_int_equal(atomic_load(&s.errors), 0);
	assert_int_equal(atomic_load(&s.done), 0);
	assert_int_equal(vdk_vhost_user_server_connections(s.srv), 2);
	assert_int_equal(vdk_blk_stats(s.blk).writes, 2);
	vdk_loop_epoll_stop(s.loop);
	assert_int_equal(pthread_join(s.th, NULL), 0);
	vdk_vhost_user_server_free(s.srv);
	assert_int_equal(stat(s.sock, &st), -1); /* removed */
	server_env_fini(&s);
}

/* max_connections 1: DONE comes when the front-end leaves, and the socket
 * file goes with it; a probe of the path before does not count. */
static void test_one_connection_then_done(void **state)
{
	struct vdk_vhost_user_server_config cfg = {
		.fd = -1, .max_connections = 1, .event = on_event};
	struct server_env s;
	struct stat st;
	struct drv e;
	int err;

	(void)state;
	server_env_init(&s, VDK_BLK_IO_AUTO);
	cfg.socket_path = s.sock;
	cfg.opaque = &s;
	s.srv = vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk), s.loop,
					  &err);
	assert_non_null(s.srv);
	assert_int_equal(pthread_create(&s.th, NULL, loop_main, &s), 0);
	/* Another server probing the path finds it live: refused, and the
	 * probe is no front-end here (not counted, nothing changes). */
	assert_null(vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk),
					      s.loop, &err));
	assert_int_equal(err, -EADDRINUSE);
	wait_for(&s.disconnected, 1);
	assert_int_equal(vdk_vhost_user_server_connections(s.srv), 0);
	assert_int_equal(atomic_load(&s.done), 0);
	assert_int_equal(stat(s.sock, &st), 0);

	drv_open(&e, s.sock);
	wait_for(&s.connected, 2);
	drv_close(&e);
	wait_for(&s.done, 1);
	assert_int_equal(vdk_vhost_user_server_connections(s.srv), 1);
	assert_int_equal(stat(s.sock, &st), -1); /* removed once done */
	vdk_loop_epoll_stop(s.loop);
	assert_int_equal(pthread_join(s.th, NULL), 0);
	vdk_vhost_user_server_free(s.srv);
	server_env_fini(&s);
}

/* A socket someone accepts on is refused; a stale one is replaced; any
 * other file is refused; two sources are refused. */
static void test_socket_path_rules(void **state)
{
	struct vdk_vhost_user_server_config cfg = {.fd = -1};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vdk_vhost_user_server *a, *b;
	struct server_env s;
	char other[128];
	int err, fd;

	(void)state;
	server_env_init(&s, VDK_BLK_IO_AUTO);
	cfg.socket_path = s.sock;
	a = vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk), s.loop,
				      &err);
	assert_non_null(a);
	b = vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk), s.loop,
				      &err);
	assert_null(b);
	assert_int_equal(err, -EADDRINUSE);
	vdk_vhost_user_server_free(a);

	/* stale: bound, then its process (here: its fd) went away */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, s.sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	a = vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk), s.loop,
				      &err);
	assert_non_null(a);
	vdk_vhost_user_server_free(a);

	snprintf(other, sizeof(other), "%s/file", s.dir);
	fd = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	cfg.socket_path = other;
	assert_null(vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk),
					      s.loop, &err));
	assert_int_equal(err, -EEXIST);
	unlink(other);

	cfg.fd = 0;
	assert_null(vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk),
					      s.loop, &err));
	assert_int_equal(err, -EINVAL);
	cfg.socket_path = NULL;
	cfg.fd = -1;
	unsetenv("LISTEN_FDS");
	assert_null(vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk),
					      s.loop, &err));
	assert_int_equal(err, -EINVAL);
	server_env_fini(&s);
}

/* An inherited connected socket is the only connection: its end is DONE. */
static void test_inherited_connected_socket(void **state)
{
	struct vdk_vhost_user_server_config cfg = {.event = on_event};
	struct server_env s;
	int sv[2], err;

	(void)state;
	server_env_init(&s, VDK_BLK_IO_AUTO);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	cfg.fd = sv[1];
	cfg.opaque = &s;
	s.srv = vdk_vhost_user_server_new(&cfg, vdk_blk_device(s.blk), s.loop,
					  &err);
	assert_non_null(s.srv);
	assert_int_equal(atomic_load(&s.connected), 1);
	close(sv[0]);
	for (int i = 0; i < 10 && !atomic_load(&s.done); i++)
		assert_true(vdk_loop_epoll_run_once(s.loop, 1000) >= 0);
	assert_int_equal(atomic_load(&s.disconnected), 1);
	assert_int_equal(atomic_load(&s.done), 1);
	vdk_vhost_user_server_free(s.srv);
	server_env_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_connections_io_uring),
		cmocka_unit_test(test_one_connection_then_done),
		cmocka_unit_test(test_socket_path_rules),
		cmocka_unit_test(test_inherited_connected_socket),
	};

	vdk_log_set_sink(NULL, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
