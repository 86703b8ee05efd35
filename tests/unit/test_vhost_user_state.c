/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the stateful parts of src/vhost_user: the back-end channel
 * (SET_BACKEND_REQ_FD, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG with and without
 * REPLY_ACK, sent after the reply when raised inside a handler, timeouts),
 * the inflight region (GET/SET_INFLIGHT_FD, marks after pop without used,
 * clearing on used, the reconnect settlement and counter order, hostile
 * region contents and fds; a back-end killed with chains in flight and a
 * new one that resubmits them, by counter, before new available ones, with
 * the test backend and with the rng device through the adapter), device
 * state transfer (SET_DEVICE_STATE_FD /
 * CHECK_DEVICE_STATE: save through a full pipe without blocking the
 * protocol socket, load, garbage, a front-end that never closes its end),
 * GET_SHMEM_CONFIG, and crosvm's lifecycle with the rng device through the
 * adapter: activate, reset, re-activate, sleep, save, wake, restore into a
 * new backend. A scripted front-end drives the backend over a socketpair;
 * every test checks that no fd outlives it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
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

#include <linux/virtio_config.h>

#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/vhost_user.h>
#include <vdk/virtq.h>

#include "guest_ring.h"

#define GPA_BASE      0x100000ull
#define RAM_SIZE      0x40000ull
#define RING_GPA(q)   (GPA_BASE + (uint64_t)(q)*0x1000)
#define DATA_GPA      (GPA_BASE + 0x10000)
#define QSIZE	      16
#define NQ	      2
#define PF(b)	      (1ull << (b))
#define F_VERSION_1   (1ull << VIRTIO_F_VERSION_1)
#define F_VU_PROTOCOL (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define BIG_STATE     (1u << 20)

/* ---- a backend that tracks inflight and has state ---------------------- */

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

static uint16_t sd_num_queues(void *be)
{
	(void)be;
	return NQ;
}

static uint16_t sd_queue_max_size(void *be, uint16_t i)
{
	(void)be;
	(void)i;
	return QSIZE;
}

static uint64_t sd_features(void *be)
{
	(void)be;
	return F_VERSION_1;
}

static int sd_read_config(void *be, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, ((struct sdev *)be)->config + off, len);
	return 0;
}

/* A write changes the configuration: the device says so at once, from
 * inside the SET_CONFIG handler. */
static int sd_write_config(void *be, uint32_t off, const void *data,
			   uint32_t len)
{
	struct sdev *t = be;

	memcpy(t->config + off, data, len);
	vdk_interrupt_signal_config_changed(t->irq);
	return 0;
}

static int sd_start_queue(void *be, uint16_t i, struct vdk_virtq *q,
			  const struct vdk_mem *mem, struct vdk_interrupt *irq)
{
	struct sdev *t = be;

	(void)mem;
	t->irq = irq;
	t->q[i] = q;
	t->running[i] = true;
	return 0;
}

static struct vdk_virtq *sd_stop_queue(void *be, uint16_t i)
{
	struct sdev *t = be;

	t->running[i] = false;
	return t->q[i];
}

static void sd_queue_notify(void *be, uint16_t i)
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

static int sd_reset(void *be)
{
	(void)be;
	return 0;
}

static int sd_snapshot(void *be, cbor_item_t **out)
{
	struct sdev *t = be;
	uint8_t *data = malloc(t->state_len);

	for (size_t i = 0; i < t->state_len; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	*out = cbor_build_bytestring(data, t->state_len);
	free(data);
	return *out ? 0 : -ENOMEM;
}

static int sd_restore(void *be, const cbor_item_t *item)
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
	.num_queues = sd_num_queues,
	.queue_max_size = sd_queue_max_size,
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

/* ---- the scripted front-end -------------------------------------------- */

struct fx {
	int fe;
	struct vdk_vhost_user *vu;
	struct sdev dev;
	int memfd;
	uint8_t *ram;
	struct vdk_mem *fe_mem;
	struct guest_ring gr[NQ];
	int kick[NQ], call[NQ];
	int fds_before;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void quiet_sink(void *opaque, enum vdk_log_level level,
		       const char *module, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

static uint64_t ua(const struct fx *f, uint64_t gpa)
{
	return (uint64_t)(uintptr_t)f->ram + (gpa - GPA_BASE);
}

static void send_with_fds(int sock, const void *buf, size_t len, const int *fds,
			  size_t nfds)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void fe_send(struct fx *f, uint32_t req, uint32_t flags,
		    const void *payload, uint32_t size, int fd)
{
	uint8_t buf[sizeof(struct vhost_user_header) + 256];
	struct vhost_user_header h = {req, VHOST_USER_VERSION | flags, size};

	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), payload, size);
	send_with_fds(f->fe, buf, sizeof(h) + size, &fd, fd >= 0 ? 1 : 0);
}

static int fe_req(struct fx *f, uint32_t req, uint32_t flags,
		  const void *payload, uint32_t size, int fd)
{
	fe_send(f, req, flags, payload, size, fd);
	return vdk_vhost_user_process_message(f->vu);
}

static int fe_req_u64(struct fx *f, uint32_t req, uint64_t v, int fd)
{
	return fe_req(f, req, 0, &v, sizeof(v), fd);
}

static int fe_req_state(struct fx *f, uint32_t req, uint32_t index,
			uint32_t num)
{
	struct vhost_vring_state s = {index, num};

	return fe_req(f, req, 0, &s, sizeof(s), -1);
}

/* Read one reply on @sock: returns its payload size; *@fd gets the fd that
 * came with it, or -1 (may be NULL if none is expected). */
static uint32_t read_reply(int sock, uint32_t req, void *payload, size_t max,
			   int *fd)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct vhost_user_header h;
	struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};
	struct pollfd p = {.fd = sock, .events = POLLIN};
	int got = -1;

	assert_int_equal(poll(&p, 1, 3000), 1);
	assert_int_equal(recvmsg(sock, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC),
			 sizeof(h));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(c), sizeof(int));
	if (fd)
		*fd = got;
	else
		assert_int_equal(got, -1);
	assert_int_equal(h.request, req);
	assert_int_equal(h.flags, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
	assert_true(h.size <= max);
	if (h.size)
		assert_int_equal(recv(sock, payload, h.size, MSG_WAITALL),
				 (ssize_t)h.size);
	return h.size;
}

static uint64_t fe_get_u64(struct fx *f, uint32_t req)
{
	uint64_t v = 0;

	assert_int_equal(fe_req(f, req, 0, NULL, 0, -1), 1);
	assert_int_equal(read_reply(f->fe, req, &v, sizeof(v), NULL), 8);
	return v;
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/* Features, protocol features @pf (those offered), memory. */
static uint64_t fe_features_and_memory(struct fx *f, uint64_t pf)
{
	uint64_t feat = fe_get_u64(f, VHOST_USER_GET_FEATURES);
	uint64_t offered;
	struct vhost_user_memory m = {.nregions = 1};

	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_FEATURES,
				    feat & (F_VERSION_1 | F_VU_PROTOCOL), -1),
			 1);
	offered = fe_get_u64(f, VHOST_USER_GET_PROTOCOL_FEATURES);
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES,
				    pf & offered, -1),
			 1);
	m.regions[0] = (struct vhost_user_memory_region){GPA_BASE, RAM_SIZE,
							 ua(f, GPA_BASE), 0};
	assert_int_equal(fe_req(f, VHOST_USER_SET_MEM_TABLE, 0, &m,
				8 + sizeof(m.regions[0]), f->memfd),
			 1);
	return offered;
}

/* A new session: owner, then features and memory. */
static uint64_t fe_setup(struct fx *f, uint64_t pf)
{
	assert_int_equal(fe_req(f, VHOST_USER_SET_OWNER, 0, NULL, 0, -1), 1);
	return fe_features_and_memory(f, pf);
}

/* Start ring @q from available index @base; @init lays the ring out. */
static void fe_start_ring(struct fx *f, uint32_t q, uint32_t base, bool init)
{
	struct guest_ring *gr = &f->gr[q];
	struct vhost_vring_addr a = {.index = q};

	if (init)
		assert_int_equal(
			guest_ring_init(gr, f->fe_mem, QSIZE, RING_GPA(q)), 0);
	a.desc_user_addr = ua(f, gr->desc_gpa);
	a.avail_user_addr = ua(f, gr->avail_gpa);
	a.used_user_addr = ua(f, gr->used_gpa);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_NUM, q, QSIZE),
			 1);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_BASE, q, base),
			 1);
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), -1), 1);
	assert_int_equal(
		fe_req_u64(f, VHOST_USER_SET_VRING_CALL, q, f->call[q]), 1);
	assert_int_equal(
		fe_req_u64(f, VHOST_USER_SET_VRING_KICK, q, f->kick[q]), 1);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_ENABLE, q, 1), 1);
}

static uint32_t fe_get_vring_base(struct fx *f, uint32_t q)
{
	struct vhost_vring_state s = {q, 0};

	assert_int_equal(
		fe_req(f, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), -1), 1);
	assert_int_equal(read_reply(f->fe, VHOST_USER_GET_VRING_BASE, &s,
				    sizeof(s), NULL),
			 sizeof(s));
	return s.num;
}

static int post(struct fx *f, uint32_t q, uint64_t gpa)
{
	struct guest_buf b = {gpa, 64, true};
	int head = guest_ring_add_chain(&f->gr[q], &b, 1);

	assert_true(head >= 0);
	return head;
}

static void fx_connect(struct fx *f,
		       const struct vdk_vhost_user_backend_ops *ops, void *be)
{
	int sv[2], err;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	f->fe = sv[0];
	f->vu = vdk_vhost_user_new(sv[1], ops, be, &err);
	assert_int_equal(err, 0);
	assert_non_null(f->vu);
}

static void fx_disconnect(struct fx *f)
{
	vdk_vhost_user_free(f->vu);
	f->vu = NULL;
	close(f->fe);
	f->fe = -1;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_DEBUG);
	f->fds_before = count_fds();
	f->memfd = memfd_create("vu-state-test", MFD_CLOEXEC);
	assert_int_equal(ftruncate(f->memfd, RAM_SIZE), 0);
	f->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      f->memfd, 0);
	assert_true(f->ram != MAP_FAILED);
	f->fe_mem = vdk_mem_new(NULL);
	assert_int_equal(
		vdk_mem_add_host(f->fe_mem, GPA_BASE, RAM_SIZE, f->ram), 0);
	for (int q = 0; q < NQ; q++) {
		f->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		f->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	fx_connect(f, &sd_ops, &f->dev);
	f->dev.vu = f->vu;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vdk_vhost_user_free(f->vu);
	if (f->fe >= 0)
		close(f->fe);
	for (int q = 0; q < NQ; q++) {
		close(f->kick[q]);
		close(f->call[q]);
	}
	free(f->dev.restored);
	vdk_mem_free(f->fe_mem);
	munmap(f->ram, RAM_SIZE);
	close(f->memfd);
	assert_int_equal(count_fds(), f->fds_before);
	free(f);
	return 0;
}

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
		struct {
			struct vhost_user_header h;
			uint64_t status;
		} __attribute__((packed))
		r = {{req, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, 8},
		     status};
		assert_int_equal(send(chan, &r, sizeof(r), MSG_NOSIGNAL),
				 sizeof(r));
	}
	return h.flags;
}

static void *process_thread(void *arg)
{
	struct fx *f = arg;

	return (void *)(intptr_t)vdk_vhost_user_process_message(f->vu);
}

static void test_backend_channel(void **state)
{
	struct fx *f = *state;
	const uint64_t pf = PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |
			    PF(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			    PF(VHOST_USER_PROTOCOL_F_CONFIG);
	struct sender s = {.vu = f->vu};
	pthread_t t;
	int ch[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch),
			 0);
	/* before negotiation: refused; no channel: -ENOTCONN */
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, ch[1]),
		-EOPNOTSUPP);
	assert_int_equal(vdk_vhost_user_send_config_change(f->vu), -ENOTCONN);
	assert_int_equal(fe_setup(f, pf) & pf, pf);
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, -1),
		-EINVAL);
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, ch[1]), 1);
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
	fe_start_ring(f, 0, 0, true);
	assert_non_null(f->dev.irq);
	struct vhost_user_config c = {.offset = 0, .size = 2};
	memcpy(c.region, "zz", 2);
	fe_send(f, VHOST_USER_SET_CONFIG, VHOST_USER_NEED_REPLY_MASK, &c,
		VHOST_USER_CONFIG_HDR_SIZE + 2, -1);
	struct sender p = {.vu = f->vu};
	assert_int_equal(pthread_create(&t, NULL, send_thread, &p), 0);
	pthread_join(t, NULL); /* a worker-thread send works meanwhile */
	assert_int_equal(p.ret, -ETIMEDOUT); /* ...but nobody answered it */
	assert_int_equal(vdk_vhost_user_send_config_change(f->vu), -ENOTCONN);

	/* a fresh channel, the in-handler case proper */
	int ch2[2];
	uint64_t status = 9;
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch2), 0);
	close(ch[0]);
	assert_int_equal(vdk_vhost_user_process_message(f->vu),
			 1); /* SET_CONFIG */
	assert_int_equal(
		read_reply(f->fe, VHOST_USER_SET_CONFIG, &status, 8, NULL), 8);
	assert_int_equal(status, 0);
	assert_memory_equal(f->dev.config, "zz", 2);
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, ch2[1]),
		1);
	close(ch2[1]);
	fe_send(f, VHOST_USER_SET_CONFIG, VHOST_USER_NEED_REPLY_MASK, &c,
		VHOST_USER_CONFIG_HDR_SIZE + 2, -1);
	/* process_message waits for the ack after its reply: run it aside */
	assert_int_equal(pthread_create(&t, NULL, process_thread, f), 0);
	be_take(ch2[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 0);
	/* the SET_CONFIG ack went out before the back-end message */
	assert_true(readable(f->fe));
	pthread_join(t, NULL);
	assert_int_equal(
		read_reply(f->fe, VHOST_USER_SET_CONFIG, &status, 8, NULL), 8);
	assert_int_equal(status, 0);

	/* without REPLY_ACK: no NEED_REPLY, nothing waited for */
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES,
				    PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |
					    PF(VHOST_USER_PROTOCOL_F_CONFIG),
				    -1),
			 1);
	assert_int_equal(vdk_vhost_user_send_config_change(f->vu), 0);
	assert_int_equal(
		be_take(ch2[0], VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, 0),
		VHOST_USER_VERSION);
	/* the front-end closed its end */
	close(ch2[0]);
	assert_true(vdk_vhost_user_send_config_change(f->vu) < 0);
	assert_false(vdk_vhost_user_is_broken(f->vu));
}

/* ---- inflight region --------------------------------------------------- */

#define QREGION(base, q, qbytes)                                               \
	((struct vhost_user_inflight_queue_split *)((uint8_t *)(base) +        \
						    (q) * (qbytes)))

/* GET_INFLIGHT_FD: returns the fd, fills *@in. */
static int fe_get_inflight(struct fx *f, uint16_t nq, uint16_t qs,
			   struct vhost_user_inflight *in, int expect)
{
	struct vhost_user_inflight req = {.num_queues = nq, .queue_size = qs};
	int fd = -1;

	assert_int_equal(
		fe_req(f, VHOST_USER_GET_INFLIGHT_FD, 0, &req, sizeof(req), -1),
		expect);
	assert_int_equal(read_reply(f->fe, VHOST_USER_GET_INFLIGHT_FD, in,
				    sizeof(*in), &fd),
			 sizeof(*in));
	return fd;
}

static void test_inflight_messages(void **state)
{
	struct fx *f = *state;
	struct vhost_user_inflight in;
	int pfd[2];

	/* not negotiated: the error answer, mmap_size 0 and no fd */
	assert_int_equal(fe_get_inflight(f, NQ, QSIZE, &in, -EOPNOTSUPP), -1);
	assert_int_equal(in.mmap_size, 0);
	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	/* bad queue count / size */
	assert_int_equal(fe_get_inflight(f, NQ + 1, QSIZE, &in, -EINVAL), -1);
	assert_int_equal(fe_get_inflight(f, NQ, 0, &in, -EINVAL), -1);
	assert_int_equal(fe_get_inflight(f, 0, QSIZE, &in, -EINVAL), -1);

	int fd = fe_get_inflight(f, NQ, QSIZE, &in, 1);
	assert_true(fd >= 0);
	/* 16-byte header + 16 bytes per descriptor, to 64 bytes */
	assert_int_equal(in.mmap_size, NQ * 320);
	assert_int_equal(in.mmap_offset, 0);
	assert_int_equal(in.num_queues, NQ);
	assert_int_equal(in.queue_size, QSIZE);
	/* sealed: the front-end cannot shrink it under the back-end */
	assert_true(ftruncate(fd, 64) < 0);

	/* SET_INFLIGHT_FD: too small, not a file, file too short, offset
	 * wrapping, no fd */
	struct vhost_user_inflight bad = in;
	bad.mmap_size = in.mmap_size - 1;
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &bad, sizeof(bad), fd),
		-EINVAL);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &in,
				sizeof(in), pfd[0]),
			 -EINVAL);
	bad = in;
	bad.mmap_offset = 4096;
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &bad, sizeof(bad), fd),
		-EINVAL);
	bad.mmap_offset = UINT64_MAX - 8;
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &bad, sizeof(bad), fd),
		-EINVAL);
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &in, sizeof(in), -1),
		-EINVAL);
	/* the spec's 20-byte payload is accepted too */
	assert_int_equal(fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &in,
				VHOST_USER_INFLIGHT_SPEC_SIZE, fd),
			 1);
	/* refused while a ring runs */
	fe_start_ring(f, 0, 0, true);
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &in, sizeof(in), fd),
		-EBUSY);
	close(pfd[0]);
	close(pfd[1]);
	close(fd);

	/* the rng adapter is offered it too: its queues are tracked */
	struct vdk_vhost_user_device_adapter ad;
	const struct vdk_vhost_user_backend_ops *ops;
	struct vdk_rng *rng;
	fx_disconnect(f);
	assert_int_equal(vdk_rng_new(&rng, NULL), 0);
	assert_int_equal(vdk_vhost_user_backend_from_device(
				 &ad, vdk_rng_device(rng), &ops),
			 0);
	fx_connect(f, ops, &ad);
	uint64_t offered = fe_setup(f, 0);
	assert_true(offered & PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_true(offered & PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	assert_true(offered & PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ));
	fx_disconnect(f);
	vdk_rng_free(rng);
}

static void test_inflight_tracking_and_reconnect(void **state)
{
	struct fx *f = *state;
	struct vhost_user_inflight in;
	uint16_t pending[QSIZE];
	uint64_t one = 1;

	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	int fd = fe_get_inflight(f, NQ, QSIZE, &in, 1);
	uint8_t *region = mmap(NULL, in.mmap_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);
	assert_true(region != MAP_FAILED);
	struct vhost_user_inflight_queue_split *q0 = QREGION(region, 0, 320);
	struct vhost_user_inflight_queue_split *q1 = QREGION(region, 1, 320);

	/* the region is initialised when the ring starts */
	assert_int_equal(q0->version, 0);
	f->dev.hold = true;
	fe_start_ring(f, 0, 0, true);
	assert_int_equal(q0->version, VHOST_USER_INFLIGHT_VERSION);
	assert_int_equal(q0->desc_num, QSIZE);
	assert_int_equal(q1->version, 0); /* ring 1 not started */

	/* popped without used: in flight, in fetch order */
	int h[4];
	for (int i = 0; i < 3; i++)
		h[i] = post(f, 0, DATA_GPA + 0x100 * i);
	assert_int_equal(write(f->kick[0], &one, 8), 8);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(f->dev.nheld, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(q0->desc[h[i]].inflight, 1);
		assert_int_equal(q0->desc[h[i]].counter, i);
	}
	assert_int_equal(q0->desc[h[2] + 1].inflight, 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 0);

	/* used: cleared, used_idx and the batch list follow */
	assert_int_equal(vdk_vhost_user_queue_add_used(f->vu, 0, h[1], 0), 0);
	assert_int_equal(q0->desc[h[1]].inflight, 0);
	assert_int_equal(q0->used_idx, 1);
	assert_int_equal(q0->last_batch_head, h[1]);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 1);
	h[3] = post(f, 0, DATA_GPA + 0x300);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(q0->desc[h[3]].counter, 3);
	/* bad index / stopped ring */
	assert_int_equal(vdk_vhost_user_queue_add_used(f->vu, NQ, 0, 0),
			 -ERANGE);
	assert_int_equal(vdk_vhost_user_queue_add_used(f->vu, 1, 0, 0), -EIO);

	/* The back-end dies. A crash right after publishing the used index
	 * of h[0] but before clearing its entry: */
	struct vring_used *used =
		(struct vring_used *)(f->ram + (f->gr[0].used_gpa - GPA_BASE));
	fx_disconnect(f);
	used->ring[1].id = (uint32_t)h[0];
	__atomic_store_n(&used->idx, 2, __ATOMIC_RELEASE);
	q0->desc[h[0]].next = q0->last_batch_head;
	q0->last_batch_head = (uint16_t)h[0];
	/* and the front-end rearranges the counters of h[2] and h[3] */
	q0->desc[h[2]].counter = 7;
	q0->desc[h[3]].counter = 5;

	/* a new back-end gets the region back */
	memset(&f->dev, 0, sizeof(f->dev));
	fx_connect(f, &sd_ops, &f->dev);
	f->dev.vu = f->vu;
	f->dev.hold = true;
	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &in, sizeof(in), fd),
		1);
	fe_start_ring(f, 0, 4, false);
	/* the last batch (h[0]) reached the driver: settled */
	assert_int_equal(q0->desc[h[0]].inflight, 0);
	assert_int_equal(q0->used_idx, 2);
	assert_int_equal(
		vdk_vhost_user_inflight_pending(f->vu, 0, pending, QSIZE), 2);
	assert_int_equal(pending[0], h[3]); /* counter 5 */
	assert_int_equal(pending[1], h[2]); /* counter 7 */
	assert_int_equal(
		vdk_vhost_user_inflight_pending(f->vu, 1, pending, QSIZE), 0);
	assert_int_equal(
		vdk_vhost_user_inflight_pending(f->vu, NQ, pending, QSIZE),
		-ERANGE);
	/* new pops continue the counter */
	int h4 = post(f, 0, DATA_GPA + 0x400);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(q0->desc[h4].inflight, 1);
	assert_int_equal(q0->desc[h4].counter, 8);

	/* hostile region contents: a wild batch head, another version */
	fx_disconnect(f);
	q0->used_idx = 0; /* 2 behind the used ring */
	q0->last_batch_head = 0xffff;
	q1->version = 77;
	memset(&f->dev, 0, sizeof(f->dev));
	fx_connect(f, &sd_ops, &f->dev);
	f->dev.vu = f->vu;
	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &in, sizeof(in), fd),
		1);
	fe_start_ring(f, 0, 5, false);
	fe_start_ring(f, 1, 0, true);
	/* settled to 2, then h[3], h[2], h4 resubmitted by counter (5, 7, 8)
	 * and returned */
	assert_int_equal(f->dev.npopped, 3);
	assert_int_equal(f->dev.popped[0], h[3]);
	assert_int_equal(f->dev.popped[1], h[2]);
	assert_int_equal(f->dev.popped[2], h4);
	assert_int_equal(used->idx, 5);
	assert_int_equal(used->ring[2].id, h[3]);
	assert_int_equal(used->ring[3].id, h[2]);
	assert_int_equal(used->ring[4].id, h4);
	assert_int_equal(q0->used_idx, 5);
	for (int k = 0; k < QSIZE; k++)
		assert_int_equal(q0->desc[k].inflight, 0);
	assert_int_equal(q1->version, 77); /* left alone, not tracked */
	munmap(region, in.mmap_size);
	close(fd);
}

/* Kick ring @q and let the backend process it. */
static void fe_kick(struct fx *f, uint32_t q)
{
	uint64_t one = 1;

	assert_int_equal(write(f->kick[q], &one, 8), 8);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, q), 1);
}

/*
 * A back-end killed during guest I/O: four chains popped, one returned
 * straight through vdk_virtq_add_used() (its region entry settles only
 * later), then the process dies. The front-end keeps the region; after a
 * lost back-end it sends the used index as SET_VRING_BASE. The new
 * back-end runs the three chains still in flight, by counter, before the
 * chain the guest added meanwhile, and the used ring gets each once.
 */
static void test_inflight_crash_resubmit(void **state)
{
	struct fx *f = *state;
	struct vhost_user_inflight in;
	uint32_t id, len;
	int h[5];

	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	int fd = fe_get_inflight(f, NQ, QSIZE, &in, 1);
	uint8_t *region = mmap(NULL, in.mmap_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);
	assert_true(region != MAP_FAILED);
	struct vhost_user_inflight_queue_split *q0 = QREGION(region, 0, 320);
	uint8_t *at_crash = malloc(in.mmap_size);

	f->dev.hold = true;
	fe_start_ring(f, 0, 0, true);
	for (int k = 0; k < 4; k++)
		h[k] = post(f, 0, DATA_GPA + 0x100 * k);
	fe_kick(f, 0);
	assert_int_equal(f->dev.nheld, 4);
	/* the device returns h[2] itself, without the vhost-user wrapper */
	assert_int_equal(vdk_virtq_add_used(f->dev.q[0], (uint16_t)h[2], 9), 0);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 1);
	/* published, noted as the last batch, not settled yet */
	assert_int_equal(q0->last_batch_head, h[2]);
	assert_int_equal(q0->used_idx, 0);
	assert_int_equal(q0->desc[h[2]].inflight, 1);
	/* the process dies here: what the region holds at that moment */
	memcpy(at_crash, region, in.mmap_size);
	fx_disconnect(f);
	/* (an orderly stop would have settled it) */
	assert_int_equal(q0->desc[h[2]].inflight, 0);
	assert_int_equal(q0->used_idx, 1);
	memcpy(region, at_crash, in.mmap_size);
	free(at_crash);
	/* the front-end reorders by counter: h[0] was fetched last */
	q0->desc[h[0]].counter = 9;
	/* the guest adds a chain meanwhile */
	h[4] = post(f, 0, DATA_GPA + 0x400);

	memset(&f->dev, 0, sizeof(f->dev));
	fx_connect(f, &sd_ops, &f->dev);
	f->dev.vu = f->vu;
	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &in, sizeof(in), fd),
		1);
	fe_start_ring(f, 0, 1, false); /* the used index, as QEMU sends */
	/* resubmitted in counter order, then the new chain */
	assert_int_equal(f->dev.npopped, 4);
	assert_int_equal(f->dev.popped[0], h[1]);
	assert_int_equal(f->dev.popped[1], h[3]);
	assert_int_equal(f->dev.popped[2], h[0]);
	assert_int_equal(f->dev.popped[3], h[4]);
	/* the used ring: h[2] from before the crash, each of the rest once */
	const int want[5] = {h[2], h[1], h[3], h[0], h[4]};
	for (int k = 0; k < 5; k++) {
		assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
		assert_int_equal(id, want[k]);
	}
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 0);
	for (int k = 0; k < QSIZE; k++)
		assert_int_equal(q0->desc[k].inflight, 0);
	assert_int_equal(q0->used_idx, 5);
	/* the front-end's next index follows all five */
	assert_int_equal(fe_get_vring_base(f, 0), 5);
	munmap(region, in.mmap_size);
	close(fd);
}

/* ---- device state ------------------------------------------------------ */

static int fe_set_state_fd(struct fx *f, uint32_t dir, uint32_t phase, int fd,
			   uint64_t *answer)
{
	struct vhost_user_device_state_params p = {dir, phase};
	int ret =
		fe_req(f, VHOST_USER_SET_DEVICE_STATE_FD, 0, &p, sizeof(p), fd);

	assert_int_equal(read_reply(f->fe, VHOST_USER_SET_DEVICE_STATE_FD,
				    answer, 8, NULL),
			 8);
	return ret;
}

static int fe_check_state(struct fx *f, uint64_t *answer)
{
	int ret = fe_req(f, VHOST_USER_CHECK_DEVICE_STATE, 0, NULL, 0, -1);

	assert_int_equal(read_reply(f->fe, VHOST_USER_CHECK_DEVICE_STATE,
				    answer, 8, NULL),
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
	uint64_t answer;
	int p[2];

	/* not negotiated */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(f, VHOST_TRANSFER_STATE_DIRECTION_SAVE,
					 0, p[1], &answer),
			 -EOPNOTSUPP);
	assert_int_equal(answer, 0x101); /* error, no fd */
	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	/* nothing to check yet; a bad phase or direction; no fd */
	assert_int_equal(fe_check_state(f, &answer), -ENOENT);
	assert_int_equal(answer, 1);
	assert_int_equal(fe_set_state_fd(f, 0, 1, p[1], &answer), -EINVAL);
	assert_int_equal(fe_set_state_fd(f, 2, 0, p[1], &answer), -EINVAL);
	assert_int_equal(fe_set_state_fd(f, 0, 0, -1, &answer), -EINVAL);
	assert_int_equal(answer, 0x101);
	/* a started ring: not the stopped phase */
	fe_start_ring(f, 0, 0, true);
	assert_int_equal(fe_set_state_fd(f, 0, 0, p[1], &answer), -EBUSY);
	fe_get_vring_base(f, 0);

	/* save 1 MiB through a pipe nobody reads yet: the worker waits, the
	 * protocol socket does not */
	f->dev.state_len = BIG_STATE;
	assert_int_equal(fe_set_state_fd(f, VHOST_TRANSFER_STATE_DIRECTION_SAVE,
					 0, p[1], &answer),
			 1);
	assert_int_equal(answer, VHOST_USER_VRING_NOFD_MASK);
	close(p[1]);
	assert_int_equal(fe_get_u64(f, VHOST_USER_GET_QUEUE_NUM), NQ);
	size_t len;
	uint8_t *bytes = drain(p[0], &len);
	close(p[0]);
	assert_true(len > BIG_STATE); /* a CBOR byte string of 1 MiB */
	assert_int_equal(fe_check_state(f, &answer), 1);
	assert_int_equal(answer, 0);

	/* load it into a fresh backend */
	fx_disconnect(f);
	free(f->dev.restored);
	memset(&f->dev, 0, sizeof(f->dev));
	fx_connect(f, &sd_ops, &f->dev);
	f->dev.vu = f->vu;
	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(f, VHOST_TRANSFER_STATE_DIRECTION_LOAD,
					 0, p[0], &answer),
			 1);
	close(p[0]);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(p[1], bytes + off, len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	close(p[1]);
	assert_int_equal(fe_check_state(f, &answer), 1);
	assert_int_equal(answer, 0);
	assert_int_equal(f->dev.restored_len, BIG_STATE);
	for (size_t i = 0; i < BIG_STATE; i++)
		if (f->dev.restored[i] != (uint8_t)(i * 7 + 3))
			fail_msg("restored byte %zu differs", i);
	free(bytes);

	/* garbage, and trailing bytes after a valid item */
	const uint8_t junk[][3] = {{0xff, 0xff, 0xff}, {0x41, 'a', 0x00}};
	for (int k = 0; k < 2; k++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		assert_int_equal(fe_set_state_fd(f, 1, 0, p[0], &answer), 1);
		close(p[0]);
		assert_int_equal(write(p[1], junk[k], 3), 3);
		close(p[1]);
		assert_int_equal(fe_check_state(f, &answer), -EINVAL);
		assert_int_equal(answer, 1);
	}
	/* the reader left: EPIPE, not SIGPIPE */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	assert_int_equal(fe_set_state_fd(f, 0, 0, p[1], &answer), 1);
	close(p[1]);
	assert_int_equal(fe_check_state(f, &answer), -EPIPE);
	assert_int_equal(answer, 1);
	assert_false(vdk_vhost_user_is_broken(f->vu));
}

static void test_device_state_stuck_front_end(void **state)
{
	struct fx *f = *state;
	uint64_t answer;
	int p[2];

	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	/* load: the front-end never closes its end; CHECK gives up */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(f, 1, 0, p[0], &answer), 1);
	close(p[0]);
	assert_int_equal(fe_check_state(f, &answer), -ETIMEDOUT);
	assert_int_equal(answer, 1);
	close(p[1]);
	/* save: nobody reads, a new transfer replaces it, the connection
	 * ends with a worker still blocked: both are cancelled */
	f->dev.state_len = BIG_STATE;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		assert_int_equal(fe_set_state_fd(f, 0, 0, p[1], &answer), 1);
		close(p[1]);
		close(p[0]); /* ...or kept: p[0] closed only after free */
	}
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(f, 0, 0, p[1], &answer), 1);
	close(p[1]);
	fx_disconnect(f);
	close(p[0]);
}

static void test_shmem_config(void **state)
{
	struct fx *f = *state;
	struct vhost_user_shmem_config c;

	memset(&c, 0xff, sizeof(c));
	assert_int_equal(fe_req(f, VHOST_USER_GET_SHMEM_CONFIG, 0, NULL, 0, -1),
			 1);
	assert_int_equal(read_reply(f->fe, VHOST_USER_GET_SHMEM_CONFIG, &c,
				    sizeof(c), NULL),
			 sizeof(c));
	assert_int_equal(c.nregions, 0);
	assert_int_equal(c.memory_sizes[0], 0);
}

/* ---- crosvm's lifecycle, with the rng device through the adapter ------- */

static void rng_request(struct fx *f, struct vdk_rng *rng, uint64_t gpa,
			uint64_t requests)
{
	uint64_t one = 1;
	uint32_t id, len;

	post(f, 0, gpa);
	assert_int_equal(write(f->kick[0], &one, 8), 8);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
	assert_int_equal(len, 64);
	assert_int_equal(vdk_rng_stats(rng).requests, requests);
}

static void test_lifecycle_rng(void **state)
{
	struct fx *f = *state;
	const uint64_t pf = PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE) |
			    PF(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
			    PF(VHOST_USER_PROTOCOL_F_REPLY_ACK);
	struct vdk_vhost_user_device_adapter ad, ad2;
	const struct vdk_vhost_user_backend_ops *ops;
	struct vdk_rng *rng, *rng2;
	struct vdk_device *dev, *dev2;
	uint64_t answer;
	int p[2];

	fx_disconnect(f);
	assert_int_equal(vdk_rng_new(&rng, NULL), 0);
	dev = vdk_rng_device(rng);
	assert_int_equal(vdk_vhost_user_backend_from_device(&ad, dev, &ops), 0);
	fx_connect(f, ops, &ad);

	/* SET_OWNER ... rings started: activate */
	fe_setup(f, pf);
	fe_start_ring(f, 0, 0, true);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	rng_request(f, rng, DATA_GPA, 1);
	/* reset, then activate again */
	assert_int_equal(fe_req(f, VHOST_USER_RESET_DEVICE, 0, NULL, 0, -1), 1);
	assert_int_equal(dev->state, VDK_DEVICE_RESET);
	fe_features_and_memory(f, pf);
	fe_start_ring(f, 0, 0, true);
	assert_int_equal(dev->state, VDK_DEVICE_ACTIVE);
	rng_request(f, rng, DATA_GPA, 2);
	/* sleep: GET_VRING_BASE */
	assert_int_equal(fe_get_vring_base(f, 0), 1);
	assert_true(dev->asleep);
	/* save */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(f, VHOST_TRANSFER_STATE_DIRECTION_SAVE,
					 0, p[1], &answer),
			 1);
	close(p[1]);
	size_t len;
	uint8_t *saved = drain(p[0], &len);
	close(p[0]);
	assert_int_equal(fe_check_state(f, &answer), 1);
	assert_int_equal(answer, 0);
	assert_true(dev->asleep); /* still suspended */
	/* wake: the ring restarts where it stopped */
	fe_start_ring(f, 0, 1, false);
	assert_false(dev->asleep);
	rng_request(f, rng, DATA_GPA + 0x100, 3);
	assert_int_equal(fe_get_vring_base(f, 0), 2);
	fx_disconnect(f);

	/* restore into a new backend and compare */
	assert_int_equal(vdk_rng_new(&rng2, NULL), 0);
	dev2 = vdk_rng_device(rng2);
	assert_int_equal(vdk_vhost_user_backend_from_device(&ad2, dev2, &ops),
			 0);
	fx_connect(f, ops, &ad2);
	fe_setup(f, pf);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fe_set_state_fd(f, VHOST_TRANSFER_STATE_DIRECTION_LOAD,
					 0, p[0], &answer),
			 1);
	close(p[0]);
	assert_int_equal(write(p[1], saved, len), (ssize_t)len);
	close(p[1]);
	assert_int_equal(fe_check_state(f, &answer), 1);
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
	fe_start_ring(f, 0, 2, false);
	assert_false(dev2->asleep);
	rng_request(f, rng2, DATA_GPA + 0x200, 3); /* 2 restored + 1 */
	fx_disconnect(f);
	vdk_rng_free(rng);
	vdk_rng_free(rng2);
}

/*
 * The same through the device adapter: the rng device pops with
 * vdk_virtq_pop() itself, and its queue is tracked. Three chains are taken
 * from its queue (as a device worker mid-request would) when the back-end
 * dies; a new rng back-end fills them first, in counter order, then the one
 * added meanwhile.
 */
static void test_inflight_resubmit_rng_adapter(void **state)
{
	struct fx *f = *state;
	const struct vdk_rng_config cfg = {.queue_max_size = QSIZE};
	struct vdk_vhost_user_device_adapter ad, ad2;
	const struct vdk_vhost_user_backend_ops *ops;
	struct vdk_rng *rng, *rng2;
	struct vhost_user_inflight in;
	uint32_t id, len;
	int h[6];

	fx_disconnect(f);
	assert_int_equal(vdk_rng_new(&rng, &cfg), 0);
	assert_int_equal(vdk_vhost_user_backend_from_device(
				 &ad, vdk_rng_device(rng), &ops),
			 0);
	fx_connect(f, ops, &ad);
	assert_true(fe_setup(f, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) &
		    PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	int fd = fe_get_inflight(f, 1, QSIZE, &in, 1);
	uint8_t *region = mmap(NULL, in.mmap_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);
	assert_true(region != MAP_FAILED);
	struct vhost_user_inflight_queue_split *q0 = QREGION(region, 0, 320);

	fe_start_ring(f, 0, 0, true);
	/* served by the device: marked (counter 0), then returned */
	rng_request(f, rng, DATA_GPA, 1);
	h[0] = 0;
	assert_int_equal(q0->desc[h[0]].counter, 0);
	assert_int_equal(q0->last_batch_head, h[0]);
	/* the next pop settles it */
	rng_request(f, rng, DATA_GPA + 0x100, 2);
	h[1] = 1;
	assert_int_equal(q0->desc[h[0]].inflight, 0);
	assert_int_equal(q0->used_idx, 1);
	assert_int_equal(q0->desc[h[1]].counter, 1);
	assert_int_equal(q0->last_batch_head, h[1]);

	/* three taken from the device's queue, not returned */
	struct vdk_virtq *dq = ad.queues[0];
	struct iovec iov[2];
	struct vdk_virtq_chain c;
	assert_non_null(dq);
	for (int k = 2; k < 5; k++) {
		h[k] = post(f, 0, DATA_GPA + 0x100 * k);
		c = (struct vdk_virtq_chain){.iov = iov, .iov_cap = 2};
		assert_int_equal(vdk_virtq_pop(dq, &c), 1);
		assert_int_equal(c.head, h[k]);
		assert_int_equal(q0->desc[h[k]].inflight, 1);
		assert_int_equal(q0->desc[h[k]].counter, k);
	}
	assert_int_equal(q0->desc[h[1]].inflight, 0);
	assert_int_equal(q0->used_idx, 2);
	/* the back-end dies; the guest adds a chain; the front-end reorders
	 * by counter (h[3] last) */
	fx_disconnect(f);
	vdk_rng_free(rng);
	h[5] = post(f, 0, DATA_GPA + 0x500);
	q0->desc[h[3]].counter = 10;
	memset(f->ram + (DATA_GPA - GPA_BASE) + 0x200, 0, 0x400);

	assert_int_equal(vdk_rng_new(&rng2, &cfg), 0);
	assert_int_equal(vdk_vhost_user_backend_from_device(
				 &ad2, vdk_rng_device(rng2), &ops),
			 0);
	fx_connect(f, ops, &ad2);
	fe_setup(f, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_INFLIGHT_FD, 0, &in, sizeof(in), fd),
		1);
	fe_start_ring(f, 0, 2, false); /* the used index */
	assert_int_equal(vdk_rng_device(rng2)->state, VDK_DEVICE_ACTIVE);
	assert_int_equal(vdk_rng_stats(rng2).requests, 4);
	const int want[4] = {h[2], h[4], h[3], h[5]};
	for (int k = 0; k < 4; k++) {
		assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
		assert_int_equal(id, want[k]);
		assert_int_equal(len, 64);
	}
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 0);
	/* the resubmitted buffers were filled this time */
	static const uint8_t zero[64];
	for (int k = 2; k < 5; k++)
		assert_memory_not_equal(
			f->ram + (DATA_GPA - GPA_BASE) + 0x100 * k, zero, 64);
	/* stopping the ring settles the last one; nothing left in flight */
	assert_int_equal(fe_get_vring_base(f, 0), 6);
	for (int k = 0; k < QSIZE; k++)
		assert_int_equal(q0->desc[k].inflight, 0);
	assert_int_equal(q0->used_idx, 6);
	fx_disconnect(f);
	vdk_rng_free(rng2);
	munmap(region, in.mmap_size);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_backend_channel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_inflight_messages, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_inflight_tracking_and_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_crash_resubmit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_state_save_load,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_device_state_stuck_front_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shmem_config, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lifecycle_rng, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_inflight_resubmit_rng_adapter, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
