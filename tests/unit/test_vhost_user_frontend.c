/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for src/vhost_user_frontend/: the vhost-user front-end and the
 * driver-side transport over it, in one process. The back-end is vdk's own
 * vhost-user library serving a vdk_blk device on a temporary image, run by
 * a thread over a socketpair; the driver side is the unchanged driver-side
 * library (<vdk/driver.h>) with guest memory in a memfd. Also: replies that
 * break the framing, and a back-end that never answers.
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
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include <vdk/devices/blk.h>
#include <vdk/driver.h>
#include <vdk/log.h>
#include <vdk/vhost_user.h>
#include <vdk/vhost_user_frontend.h>

#define PF(bit)	    (1ull << (bit))
#define IMG_SECTORS 2048u /* 1 MiB image */
#define RAM_SIZE    (1u << 20)
#define RAM_GPA	    0x40000000ull
#define QSIZE	    16u

/* ---- back-end thread: vdk_vhost_user + vdk_blk ------------------------- */

struct backend {
	struct vdk_blk *blk;
	struct vdk_vhost_user *vu;
	int stop_fd;
	pthread_t th;
	char path[64];
};

static void *backend_main(void *arg)
{
	struct backend *b = arg;

	for (;;) {
		struct pollfd p[4] = {
			{.fd = vdk_vhost_user_socket_fd(b->vu),
			 .events = POLLIN},
			{.fd = b->stop_fd, .events = POLLIN},
			{.fd = vdk_blk_completion_fd(b->blk, 0),
			 .events = POLLIN},
			{.fd = vdk_vhost_user_kick_fd(b->vu, 0),
			 .events = POLLIN},
		};
		nfds_t n = p[3].fd >= 0 ? 4 : 3;

		if (poll(p, n, 1000) < 0)
			continue;
		if (p[1].revents)
			break;
		if (p[0].revents) {
			int ret = vdk_vhost_user_process_message(b->vu);

			if (vdk_vhost_user_is_broken(b->vu))
				break;
			(void)ret; /* request errors go back as replies */
		}
		if (n == 4 && p[3].revents)
			vdk_vhost_user_handle_kick(b->vu, 0);
		if (p[2].revents)
			vdk_blk_process_completions(b->blk, 0);
	}
	return NULL;
}

/* Start a back-end on a fresh image; return the front-end's socket end. */
static int backend_start(struct backend *b)
{
	struct vdk_blk_config cfg = {0};
	int sv[2], fd, err;

	strcpy(b->path, "/tmp/vdk-test-fe-XXXXXX");
	fd = mkstemp(b->path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IMG_SECTORS * 512), 0);
	close(fd);
	cfg.path = b->path;
	b->blk = vdk_blk_new(&cfg, NULL);
	assert_non_null(b->blk);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	b->vu = vdk_vhost_user_new(sv[1], vdk_blk_device(b->blk), NULL, &err);
	assert_non_null(b->vu);
	b->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(b->stop_fd >= 0);
	assert_int_equal(pthread_create(&b->th, NULL, backend_main, b), 0);
	return sv[0];
}

static void backend_stop(struct backend *b)
{
	uint64_t one = 1;

	assert_int_equal(write(b->stop_fd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(pthread_join(b->th, NULL), 0);
	vdk_vhost_user_free(b->vu);
	vdk_blk_free(b->blk);
	close(b->stop_fd);
	unlink(b->path);
}

/* ---- driver side --------------------------------------------------------- */

struct env {
	struct backend be;
	struct vdk_vhost_user_frontend *fe;
	struct vdk_vhost_user_driver d;
	struct vdk_driver_virtq q;
	struct vdk_driver_virtq_slot slots[1024];
	uint8_t *ram;
	int memfd;
	size_t bump;
	uint64_t features;
};

static void *ram_alloc(struct env *e, size_t len, size_t align)
{
	void *p;

	e->bump = (e->bump + align - 1) & ~(align - 1);
	assert_true(e->bump + len <= RAM_SIZE);
	p = e->ram + e->bump;
	e->bump += len;
	return p;
}

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	int err;

	assert_non_null(e);
	e->memfd = memfd_create("test-fe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(e->memfd >= 0);
	assert_int_equal(ftruncate(e->memfd, RAM_SIZE), 0);
	assert_int_equal(
		fcntl(e->memfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK), 0);
	e->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      e->memfd, 0);
	assert_true(e->ram != MAP_FAILED);
	e->fe = vdk_vhost_user_frontend_new(backend_start(&e->be), &err);
	assert_non_null(e->fe);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	vdk_vhost_user_driver_fini(&e->d);
	vdk_vhost_user_frontend_free(e->fe);
	backend_stop(&e->be);
	munmap(e->ram, RAM_SIZE);
	close(e->memfd);
	free(e);
	return 0;
}

static void driver_init(struct env *e, uint16_t max_queue_size)
{
	const struct vdk_vhost_user_frontend_region r = {
		.gpa = RAM_GPA,
		.size = RAM_SIZE,
		.addr = e->ram,
		.fd = e->memfd,
	};
	const struct vdk_vhost_user_driver_config cfg = {
		.device_id = VIRTIO_ID_BLOCK,
		.max_queue_size = max_queue_size,
		.regions = &r,
		.nregions = 1,
	};

	assert_int_equal(vdk_vhost_user_driver_init(&e->d, e->fe, &cfg), 0);
	assert_int_equal(
		vdk_driver_begin_init(&e->d.transport,
				      PF(VIRTIO_F_VERSION_1) |
					      PF(VIRTIO_RING_F_EVENT_IDX) |
					      PF(VIRTIO_BLK_F_FLUSH),
				      &e->features),
		0);
}

static int queue_init(struct env *e, uint16_t size)
{
	size_t len = vdk_driver_virtq_layout_size(size);
	void *ring = ram_alloc(e, len, 4096);
	const struct vdk_driver_virtq_config qc = {
		.index = 0,
		.size = size,
		.features = e->features,
		.ring = ring,
		.ring_gpa = e->d.hal.virt_to_phys(e->d.hal.opaque, ring, len),
		.ring_len = len,
		.slots = e->slots,
	};

	return vdk_driver_virtq_init(&e->q, &e->d.transport, &e->d.hal, &qc);
}

/* One virtio-blk request (virtio 1.2 §5.2.6), waited for on the call fd.
 * Return the status byte. */
static uint8_t blk_request(struct env *e, uint32_t type, uint64_t sector,
			   void *data, uint32_t len)
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
	if (len == 0)
		head = vdk_driver_virtq_add(&e->q, rd, 1, &wr[1], 1);
	else if (type == VIRTIO_BLK_T_OUT)
		head = vdk_driver_virtq_add(&e->q, rd, 2, &wr[1], 1);
	else
		head = vdk_driver_virtq_add(&e->q, rd, 1, wr, 2);
	assert_true(head >= 0);
	assert_true(vdk_driver_virtq_kick(&e->q));
	while (!vdk_driver_virtq_can_pop(&e->q)) {
		assert_int_equal(poll(&p, 1, 5000), 1);
		assert_int_equal(
			e->d.transport.ops->ack_interrupt(e->d.transport.ctx),
			VDK_DRIVER_INT_QUEUE);
	}
	assert_int_equal(vdk_driver_virtq_pop_used(&e->q, &token, &written), 0);
	assert_int_equal(token, head);
	/* The status byte, and for a read that succeeded all its data. */
	if (*status == VIRTIO_BLK_S_OK)
		assert_int_equal(written,
				 (type == VIRTIO_BLK_T_IN ? len : 0) + 1);
	else
		assert_in_range(written, 1, len + 1);
	return *status;
}

/* ---- tests ----------------------------------------------------------------- */

/* Negotiation: protocol features, virtio features, configuration, DRIVER_OK
 * starting the ring. */
static void test_negotiate(void **state)
{
	struct env *e = *state;
	uint64_t capacity = 0, proto;
	uint8_t status;

	driver_init(e, 256);
	proto = vdk_vhost_user_frontend_protocol_features(e->fe);
	assert_true(proto & PF(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	assert_true(proto & PF(VHOST_USER_PROTOCOL_F_CONFIG));
	assert_true(e->d.protocol);
	/* Bit 30 is vhost-user's, never shown to the driver. */
	assert_false(e->d.device_features & PF(VHOST_USER_F_PROTOCOL_FEATURES));
	assert_true(e->features & PF(VIRTIO_F_VERSION_1));
	assert_true(e->features & PF(VIRTIO_BLK_F_FLUSH));
	assert_int_equal(e->d.num_queues, 1);
	assert_int_equal(e->d.transport.ops->device_type(e->d.transport.ctx),
			 VIRTIO_ID_BLOCK);

	assert_int_equal(vdk_driver_read_config_consistent(
				 &e->d.transport,
				 offsetof(struct virtio_blk_config, capacity),
				 &capacity, sizeof(capacity)),
			 0);
	assert_int_equal(capacity, IMG_SECTORS);
	/* A range that wraps or leaves the largest config is refused. */
	assert_int_equal(e->d.transport.ops->read_config(
				 e->d.transport.ctx, UINT32_MAX, &capacity, 8),
			 -ERANGE);

	assert_int_equal(queue_init(e, QSIZE), 0);
	assert_false(e->d.q[0].started);
	assert_int_equal(vdk_driver_finish_init(&e->d.transport), 0);
	assert_true(e->d.q[0].started);
	status = e->d.transport.ops->get_status(e->d.transport.ctx);
	assert_true(status & VIRTIO_CONFIG_S_DRIVER_OK);
	/* The back-end holds the kick fd now. */
	assert_true(vdk_vhost_user_kick_fd(e->be.vu, 0) >= 0);

	/* Reset stops the ring (GET_VRING_BASE). */
	assert_int_equal(vdk_driver_reset(&e->d.transport), 0);
	assert_false(e->d.q[0].started);
	assert_false(e->d.q[0].configured);
}

/* Data written through the driver reaches the image, data in the image
 * comes back through the driver. */
static void test_read_write_round_trip(void **state)
{
	struct env *e = *state;
	uint8_t *buf, expect[4096], file[4096];
	int fd;

	driver_init(e, 256);
	assert_int_equal(queue_init(e, QSIZE), 0);
	assert_int_equal(vdk_driver_finish_init(&e->d.transport), 0);

	buf = ram_alloc(e, 4096, 4096);
	for (size_t i = 0; i < sizeof(expect); i++)
		expect[i] = (uint8_t)(i * 7 + 3);
	memcpy(buf, expect, sizeof(expect));
	assert_int_equal(blk_request(e, VIRTIO_BLK_T_OUT, 16, buf, 4096),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(blk_request(e, VIRTIO_BLK_T_FLUSH, 0, buf, 0),
			 VIRTIO_BLK_S_OK);
	fd = open(e->be.path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, file, sizeof(file), 16 * 512), 4096);
	assert_memory_equal(file, expect, sizeof(expect));
	close(fd);

	memset(buf, 0, 4096);
	assert_int_equal(blk_request(e, VIRTIO_BLK_T_IN, 16, buf, 4096),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, expect, sizeof(expect));

	/* Past the end of the disk: the device says IOERR. */
	assert_int_equal(blk_request(e, VIRTIO_BLK_T_IN, IMG_SECTORS, buf, 512),
			 VIRTIO_BLK_S_IOERR);
}

/* With REPLY_ACK, a request the back-end refuses fails: a ring larger than
 * the back-end's maximum (256 by default) is refused at SET_VRING_NUM. */
static void test_back_end_refusal(void **state)
{
	struct env *e = *state;

	driver_init(e, 1024);
	assert_int_equal(queue_init(e, 1024), -EINVAL);
	assert_false(e->d.q[0].configured);
	assert_false(vdk_vhost_user_frontend_is_broken(e->fe));
	/* The connection is still usable. */
	assert_int_equal(queue_init(e, QSIZE), 0);
	assert_int_equal(vdk_driver_finish_init(&e->d.transport), 0);
}

/* ---- malformed replies, no back-end library involved ------------------- */

static void send_reply(int sock, uint32_t request, uint32_t flags,
		       const void *payload, uint32_t size)
{
	struct vhost_user_header h = {request, flags, size};

	assert_int_equal(write(sock, &h, sizeof(h)), sizeof(h));
	if (size)
		assert_int_equal(write(sock, payload, size), size);
}

static void test_bad_replies(void **state)
{
	static const struct vhost_user_header bad[] = {
		{VHOST_USER_SET_FEATURES,
		 VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, 8},
		{VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 8},
		{VHOST_USER_GET_FEATURES, 2 | VHOST_USER_REPLY_MASK, 8},
		{VHOST_USER_GET_FEATURES,
		 VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, 4},
	};
	uint64_t v = 0x1234;
	struct vhost_user_header sent;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vdk_vhost_user_frontend *fe;
		int sv[2], err;

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		fe = vdk_vhost_user_frontend_new(sv[0], &err);
		assert_non_null(fe);
		send_reply(sv[1], bad[i].request, bad[i].flags, &v,
			   bad[i].size);
		assert_int_equal(vdk_vhost_user_frontend_get_features(fe, &v),
				 -EIO);
		assert_true(vdk_vhost_user_frontend_is_broken(fe));
		assert_int_equal(v, 0x1234); /* untouched */
		/* What went out was a well-formed GET_FEATURES. */
		assert_int_equal(read(sv[1], &sent, sizeof(sent)),
				 sizeof(sent));
		assert_int_equal(sent.request, VHOST_USER_GET_FEATURES);
		assert_int_equal(sent.flags, VHOST_USER_VERSION);
		assert_int_equal(sent.size, 0);
		/* Broken for good. */
		assert_int_equal(vdk_vhost_user_frontend_set_owner(fe), -EIO);
		vdk_vhost_user_frontend_free(fe);
		close(sv[1]);
	}
}

static void test_good_reply_and_timeout(void **state)
{
	struct vdk_vhost_user_frontend *fe;
	uint64_t v = 0, want = PF(VIRTIO_F_VERSION_1) | 5;
	int sv[2], err;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fe = vdk_vhost_user_frontend_new(sv[0], &err);
	assert_non_null(fe);
	send_reply(sv[1], VHOST_USER_GET_FEATURES,
		   VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, &want, 8);
	assert_int_equal(vdk_vhost_user_frontend_get_features(fe, &v), 0);
	assert_int_equal(v, want);
	/* Without MQ negotiated, GET_QUEUE_NUM is not sent. */
	assert_int_equal(vdk_vhost_user_frontend_get_queue_num(fe, &v),
			 -EOPNOTSUPP);
	/* No answer: broken after the timeout. */
	vdk_vhost_user_frontend_set_timeout(fe, 50);
	assert_int_equal(vdk_vhost_user_frontend_get_features(fe, &v), -EIO);
	assert_true(vdk_vhost_user_frontend_is_broken(fe));
	vdk_vhost_user_frontend_free(fe);
	close(sv[1]);
	assert_int_equal(vdk_vhost_user_frontend_new(-1, &err), NULL);
	assert_int_equal(err, -EINVAL);
	assert_int_equal(
		vdk_vhost_user_frontend_connect("/nonexistent/sock", &fe),
		-ENOENT);
}

static void quiet(void *opaque, enum vdk_log_level level, const char *module,
		  const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_negotiate, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_read_write_round_trip,
						env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_back_end_refusal,
						env_setup, env_teardown),
		cmocka_unit_test(test_bad_replies),
		cmocka_unit_test(test_good_reply_and_timeout),
	};

	if (!getenv("VDK_TEST_LOG"))
		vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
