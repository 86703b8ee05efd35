/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/vhost_user/{message,backend}.c: a scripted front-end
 * talks to the backend in-process over socketpair(AF_UNIX, SOCK_STREAM).
 * Covered: feature and protocol feature negotiation, a memory table from a
 * memfd, ring setup + kick → the device processes a chain and the call
 * eventfd fires, GET_VRING_BASE and the suspended state, REPLY_ACK, config
 * space, ADD/REM_MEM_REG, the rng device through the in-process adapter,
 * the epoll loop, and each malformed-front-end case (truncated header,
 * oversized payload, bad version, wrong payload size, wrong fd counts, queue
 * index out of range, rings not covered by the memory table, overlapping or
 * empty regions, SET_VRING_ENABLE without protocol features, unknown
 * requests, repeated messages), with an fd-leak check around each.
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
#define WANT_PF                                                                \
	(PF(VHOST_USER_PROTOCOL_F_MQ) | PF(VHOST_USER_PROTOCOL_F_REPLY_ACK) |  \
	 PF(VHOST_USER_PROTOCOL_F_CONFIG) |                                    \
	 PF(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |                       \
	 PF(VHOST_USER_PROTOCOL_F_RESET_DEVICE))

/* ---- an in-test device implementing the backend interface -------------- */

struct tdev {
	struct vdk_virtq *q[NQ];
	const struct vdk_mem *mem;
	struct vdk_interrupt *irq;
	int starts, stops, notifies, resets, suspends;
	uint64_t acked;
	uint8_t config[8];
};

static uint16_t td_num_queues(void *be)
{
	(void)be;
	return NQ;
}

static uint16_t td_queue_max_size(void *be, uint16_t i)
{
	(void)be;
	(void)i;
	return QSIZE;
}

static uint64_t td_features(void *be)
{
	(void)be;
	return F_VERSION_1 | (1ull << VIRTIO_RING_F_EVENT_IDX);
}

static void td_ack_features(void *be, uint64_t f)
{
	((struct tdev *)be)->acked = f;
}

static int td_read_config(void *be, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, ((struct tdev *)be)->config + off, len);
	return 0;
}

static int td_write_config(void *be, uint32_t off, const void *data,
			   uint32_t len)
{
	memcpy(((struct tdev *)be)->config + off, data, len);
	return 0;
}

static int td_start_queue(void *be, uint16_t i, struct vdk_virtq *q,
			  const struct vdk_mem *mem, struct vdk_interrupt *irq)
{
	struct tdev *t = be;

	t->q[i] = q;
	t->mem = mem;
	t->irq = irq;
	t->starts++;
	return 0;
}

static struct vdk_virtq *td_stop_queue(void *be, uint16_t i)
{
	struct tdev *t = be;
	struct vdk_virtq *q = t->q[i];

	t->q[i] = NULL;
	t->stops++;
	return q;
}

/* Fill every writable byte with 0xa5 and return the chain. */
static void td_queue_notify(void *be, uint16_t i)
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

static int td_reset(void *be)
{
	((struct tdev *)be)->resets++;
	return 0;
}

static int td_suspend(void *be)
{
	((struct tdev *)be)->suspends++;
	return 0;
}

static const struct vdk_vhost_user_backend_ops td_ops = {
	.name = "tdev",
	.num_queues = td_num_queues,
	.queue_max_size = td_queue_max_size,
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

/* ---- the scripted front-end -------------------------------------------- */

struct fx {
	int fe; /* front-end end of the socketpair */
	struct vdk_vhost_user *vu;
	struct tdev dev;
	int memfd;
	uint8_t *ram;		/* front-end mapping of the memfd */
	struct vdk_mem *fe_mem; /* the front-end's view, for guest_ring */
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

/* Send one message with @nfds fds in SCM_RIGHTS. */
static void fe_send_raw(int fe, const void *buf, size_t len, const int *fds,
			size_t nfds)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
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
	assert_int_equal(sendmsg(fe, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void fe_send(struct fx *f, uint32_t req, uint32_t flags,
		    const void *payload, uint32_t size, const int *fds,
		    size_t nfds)
{
	uint8_t buf[sizeof(struct vhost_user_header) + 512];
	struct vhost_user_header h = {req, VHOST_USER_VERSION | flags, size};

	assert_true(size <= 512);
	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), payload, size);
	fe_send_raw(f->fe, buf, sizeof(h) + size, fds, nfds);
}

/* Send and let the backend handle it; returns process_message's result. */
static int fe_req(struct fx *f, uint32_t req, uint32_t flags,
		  const void *payload, uint32_t size, const int *fds,
		  size_t nfds)
{
	fe_send(f, req, flags, payload, size, fds, nfds);
	return vdk_vhost_user_process_message(f->vu);
}

static int fe_req_u64(struct fx *f, uint32_t req, uint64_t v, int fd)
{
	return fe_req(f, req, 0, &v, sizeof(v), &fd, fd >= 0 ? 1 : 0);
}

static int fe_req_state(struct fx *f, uint32_t req, uint32_t index,
			uint32_t num)
{
	struct vhost_vring_state s = {index, num};

	return fe_req(f, req, 0, &s, sizeof(s), NULL, 0);
}

static bool fe_has_reply(struct fx *f)
{
	struct pollfd p = {.fd = f->fe, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/* Read one reply; returns its payload size. */
static uint32_t fe_reply(struct fx *f, uint32_t req, void *payload, size_t max)
{
	struct vhost_user_header h;
	struct pollfd p = {.fd = f->fe, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(recv(f->fe, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(h.request, req);
	assert_int_equal(h.flags, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
	assert_true(h.size <= max);
	if (h.size)
		assert_int_equal(recv(f->fe, payload, h.size, MSG_WAITALL),
				 (ssize_t)h.size);
	return h.size;
}

static uint64_t fe_get_u64(struct fx *f, uint32_t req)
{
	uint64_t v = 0;

	assert_int_equal(fe_req(f, req, 0, NULL, 0, NULL, 0), 1);
	assert_int_equal(fe_reply(f, req, &v, sizeof(v)), sizeof(v));
	return v;
}

static int fe_mem_table(struct fx *f, uint64_t gpa, uint64_t size,
			uint64_t offset)
{
	struct vhost_user_memory m = {.nregions = 1};

	m.regions[0] = (struct vhost_user_memory_region){gpa, size, ua(f, gpa),
							 offset};
	return fe_req(f, VHOST_USER_SET_MEM_TABLE, 0, &m,
		      8 + sizeof(m.regions[0]), &f->memfd, 1);
}

static int fe_vring_addr(struct fx *f, uint32_t q, uint64_t desc,
			 uint64_t avail, uint64_t used)
{
	struct vhost_vring_addr a = {.index = q,
				     .desc_user_addr = desc,
				     .used_user_addr = used,
				     .avail_user_addr = avail};

	return fe_req(f, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
}

/* Negotiate features (with or without protocol features). */
static void fe_negotiate(struct fx *f, bool protocol)
{
	uint64_t feat = fe_get_u64(f, VHOST_USER_GET_FEATURES);

	assert_true(feat & F_VU_PROTOCOL);
	assert_true(feat & F_VERSION_1);
	feat &= F_VERSION_1 | (protocol ? F_VU_PROTOCOL : 0);
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_FEATURES, feat, -1), 1);
	if (protocol) {
		uint64_t pf = fe_get_u64(f, VHOST_USER_GET_PROTOCOL_FEATURES);
		uint64_t must = WANT_PF & ~PF(VHOST_USER_PROTOCOL_F_CONFIG);

		assert_int_equal(pf & must, must);
		/* CONFIG only for a device with a configuration space */
		assert_int_equal(!!(pf & PF(VHOST_USER_PROTOCOL_F_CONFIG)),
				 f->vu && vdk_vhost_user_num_queues(f->vu) ==
						  NQ);
		assert_int_equal(fe_req_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES,
					    pf & WANT_PF, -1),
				 1);
	}
	assert_int_equal(fe_req(f, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0),
			 1);
}

/* Everything QEMU sends to start ring @q, in QEMU's order. */
static void fe_start_ring(struct fx *f, uint32_t q, bool protocol)
{
	struct guest_ring *gr = &f->gr[q];

	assert_int_equal(guest_ring_init(gr, f->fe_mem, QSIZE, RING_GPA(q)), 0);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_NUM, q, QSIZE),
			 1);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_BASE, q, 0), 1);
	assert_int_equal(fe_vring_addr(f, q, ua(f, gr->desc_gpa),
				       ua(f, gr->avail_gpa),
				       ua(f, gr->used_gpa)),
			 1);
	assert_int_equal(
		fe_req_u64(f, VHOST_USER_SET_VRING_KICK, q, f->kick[q]), 1);
	assert_int_equal(
		fe_req_u64(f, VHOST_USER_SET_VRING_CALL, q, f->call[q]), 1);
	if (protocol)
		assert_int_equal(
			fe_req_state(f, VHOST_USER_SET_VRING_ENABLE, q, 1), 1);
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

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_DEBUG);
	f->fds_before = count_fds();
	f->memfd = memfd_create("vu-test", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
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
	fx_connect(f, &td_ops, &f->dev);
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
	vdk_mem_free(f->fe_mem);
	munmap(f->ram, RAM_SIZE);
	close(f->memfd);
	/* Nothing received from the front-end may outlive the connection. */
	assert_int_equal(count_fds(), f->fds_before);
	free(f);
	return 0;
}

static uint64_t eventfd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Make a 64-byte writable chain available on ring @q and kick it. */
static int fe_post_and_kick(struct fx *f, uint32_t q, uint64_t gpa)
{
	struct guest_buf b = {gpa, 64, true};
	int head = guest_ring_add_chain(&f->gr[q], &b, 1);
	uint64_t one = 1;

	assert_true(head >= 0);
	assert_int_equal(write(f->kick[q], &one, sizeof(one)), sizeof(one));
	return head;
}

/* ---- tests ------------------------------------------------------------- */

static void test_negotiation(void **state)
{
	struct fx *f = *state;

	fe_negotiate(f, true);
	assert_int_equal(f->dev.acked, F_VERSION_1); /* without bit 30 */
	assert_int_equal(fe_get_u64(f, VHOST_USER_GET_QUEUE_NUM), NQ);
	assert_int_equal(fe_get_u64(f, VHOST_USER_GET_MAX_MEM_SLOTS),
			 VDK_MEM_MAX_REGIONS);
	/* unexpected feature bits are refused, and REPLY_ACK says so */
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_FEATURES, 1ull << 40, -1),
			 -EINVAL);
	uint64_t bits = 1ull << 40, status = 0;
	assert_int_equal(fe_req(f, VHOST_USER_SET_FEATURES,
				VHOST_USER_NEED_REPLY_MASK, &bits, 8, NULL, 0),
			 -EINVAL);
	assert_int_equal(fe_reply(f, VHOST_USER_SET_FEATURES, &status, 8), 8);
	assert_int_equal(status, 1);
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES,
				    PF(VHOST_USER_PROTOCOL_F_PAGEFAULT), -1),
			 -EINVAL);
	/* a second SET_OWNER is refused */
	assert_int_equal(fe_req(f, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0),
			 -EBUSY);
	assert_false(fe_has_reply(f));
	assert_false(vdk_vhost_user_is_broken(f->vu));
}

static void test_reply_ack(void **state)
{
	struct fx *f = *state;
	struct vhost_vring_state s = {0, 8};
	uint64_t status = 99;

	/* not negotiated: NEED_REPLY brings no reply */
	fe_negotiate(f, false);
	assert_int_equal(fe_req(f, VHOST_USER_SET_VRING_NUM,
				VHOST_USER_NEED_REPLY_MASK, &s, sizeof(s), NULL,
				0),
			 1);
	assert_false(fe_has_reply(f));
	/* negotiated: 0 on success, 1 on failure */
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES,
				    PF(VHOST_USER_PROTOCOL_F_REPLY_ACK), -1),
			 1);
	assert_int_equal(fe_req(f, VHOST_USER_SET_VRING_NUM,
				VHOST_USER_NEED_REPLY_MASK, &s, sizeof(s), NULL,
				0),
			 1);
	assert_int_equal(fe_reply(f, VHOST_USER_SET_VRING_NUM, &status, 8), 8);
	assert_int_equal(status, 0);
	s.num = 3; /* not a power of two */
	assert_int_equal(fe_req(f, VHOST_USER_SET_VRING_NUM,
				VHOST_USER_NEED_REPLY_MASK, &s, sizeof(s), NULL,
				0),
			 -EINVAL);
	assert_int_equal(fe_reply(f, VHOST_USER_SET_VRING_NUM, &status, 8), 8);
	assert_int_equal(status, 1);
	/* a request that answers anyway gets its own reply, not an ack */
	assert_int_equal(fe_req(f, VHOST_USER_GET_QUEUE_NUM,
				VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0),
			 1);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_QUEUE_NUM, &status, 8), 8);
	assert_int_equal(status, NQ);
	assert_false(fe_has_reply(f));
}

static void test_ring_kick_call(void **state)
{
	struct fx *f = *state;
	uint32_t id, len;
	uint8_t data[64];

	fe_negotiate(f, true);
	assert_int_equal(fe_mem_table(f, GPA_BASE, RAM_SIZE, 0), 1);
	for (uint32_t q = 0; q < NQ; q++)
		fe_start_ring(f, q, true);
	assert_int_equal(f->dev.starts, NQ);
	assert_non_null(f->dev.q[0]);

	int head = fe_post_and_kick(f, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_kick_fd(f->vu, 0) >= 0, true);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 64);
	memcpy(data, f->ram + (DATA_GPA - GPA_BASE), sizeof(data));
	for (size_t i = 0; i < sizeof(data); i++)
		assert_int_equal(data[i], 0xa5);
	assert_int_equal(eventfd_take(f->call[0]), 1);
	/* the kick was consumed */
	assert_int_equal(eventfd_take(f->kick[0]), 0);

	/* a new call fd replaces the old one while the ring runs */
	int call2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_VRING_CALL, 0, call2), 1);
	fe_post_and_kick(f, 0, DATA_GPA + 0x100);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(eventfd_take(call2), 1);
	assert_int_equal(eventfd_take(f->call[0]), 0);
	close(call2);
}

static void test_get_vring_base_suspends(void **state)
{
	struct fx *f = *state;
	struct vhost_vring_state s = {0, 0}, r;

	fe_negotiate(f, true);
	assert_int_equal(fe_mem_table(f, GPA_BASE, RAM_SIZE, 0), 1);
	for (uint32_t q = 0; q < NQ; q++)
		fe_start_ring(f, q, true);
	for (int i = 0; i < 3; i++) {
		fe_post_and_kick(f, 0, DATA_GPA + 0x100 * i);
		assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	}
	assert_int_equal(
		fe_req(f, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0),
		1);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_VRING_BASE, &r, sizeof(r)),
			 sizeof(r));
	assert_int_equal(r.index, 0);
	assert_int_equal(r.num, 3);
	assert_int_equal(f->dev.stops, 1);
	assert_null(f->dev.q[0]);
	assert_int_equal(f->dev.suspends, 0); /* ring 1 still runs */
	assert_int_equal(vdk_vhost_user_kick_fd(f->vu, 0), -ENOENT);
	/* a kick on a stopped ring reaches nobody */
	fe_post_and_kick(f, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 0);

	s.index = 1;
	assert_int_equal(
		fe_req(f, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0),
		1);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_VRING_BASE, &r, sizeof(r)),
			 sizeof(r));
	assert_int_equal(r.num, 0);
	assert_int_equal(f->dev.suspends, 1);

	/* restart ring 0 from index 3: the pending chain is processed */
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_BASE, 0, 3), 1);
	assert_int_equal(
		fe_req_u64(f, VHOST_USER_SET_VRING_KICK, 0, f->kick[0]), 1);
	assert_int_equal(
		fe_req_u64(f, VHOST_USER_SET_VRING_CALL, 0, f->call[0]), 1);
	assert_int_equal(f->dev.starts, NQ + 1);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 4);
}

static void test_config(void **state)
{
	struct fx *f = *state;
	struct vhost_user_config c = {.offset = 2, .size = 4};
	struct vhost_user_config r;

	fe_negotiate(f, true);
	memcpy(f->dev.config, "ABCDEFGH", 8);
	assert_int_equal(fe_req(f, VHOST_USER_GET_CONFIG, 0, &c,
				VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0),
			 1);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_CONFIG, &r, sizeof(r)),
			 VHOST_USER_CONFIG_HDR_SIZE + 4);
	assert_memory_equal(r.region, "CDEF", 4);
	/* beyond the config space: zero-length reply */
	c.offset = 6;
	assert_int_equal(fe_req(f, VHOST_USER_GET_CONFIG, 0, &c,
				VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0),
			 -EINVAL);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_CONFIG, &r, sizeof(r)), 0);
	/* size field disagreeing with the header */
	c.offset = 0;
	assert_int_equal(fe_req(f, VHOST_USER_GET_CONFIG, 0, &c,
				VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0),
			 -EINVAL);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_CONFIG, &r, sizeof(r)), 0);
	c = (struct vhost_user_config){.offset = 0, .size = 2};
	memcpy(c.region, "xy", 2);
	assert_int_equal(fe_req(f, VHOST_USER_SET_CONFIG, 0, &c,
				VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0),
			 1);
	assert_memory_equal(f->dev.config, "xyCDEFGH", 8);
	c.flags = 7;
	assert_int_equal(fe_req(f, VHOST_USER_SET_CONFIG, 0, &c,
				VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0),
			 -EINVAL);
}

static void test_mem_regions(void **state)
{
	struct fx *f = *state;
	struct vhost_user_mem_reg m = {
		.region = {GPA_BASE, 0x10000, ua(f, GPA_BASE), 0}};
	struct vhost_user_mem_reg m2 = {.region = {GPA_BASE + 0x10000, 0x10000,
						   ua(f, GPA_BASE + 0x10000),
						   0x10000}};

	/* without CONFIGURE_MEM_SLOTS negotiated */
	assert_int_equal(fe_req(f, VHOST_USER_ADD_MEM_REG, 0, &m, sizeof(m),
				&f->memfd, 1),
			 -EOPNOTSUPP);
	fe_negotiate(f, true);
	assert_int_equal(fe_req(f, VHOST_USER_ADD_MEM_REG, 0, &m, sizeof(m),
				&f->memfd, 1),
			 1);
	assert_int_equal(fe_req(f, VHOST_USER_ADD_MEM_REG, 0, &m, sizeof(m),
				&f->memfd, 1),
			 -EEXIST);
	assert_int_equal(
		fe_req(f, VHOST_USER_ADD_MEM_REG, 0, &m2, sizeof(m2), NULL, 0),
		-EINVAL); /* no fd */
	assert_int_equal(fe_req(f, VHOST_USER_ADD_MEM_REG, 0, &m2, sizeof(m2),
				&f->memfd, 1),
			 1);
	/* ring 0 at GPA_BASE is covered by the first region */
	assert_int_equal(
		guest_ring_init(&f->gr[0], f->fe_mem, QSIZE, RING_GPA(0)), 0);
	assert_int_equal(fe_vring_addr(f, 0, ua(f, f->gr[0].desc_gpa),
				       ua(f, f->gr[0].avail_gpa),
				       ua(f, f->gr[0].used_gpa)),
			 1);
	/* removal names gpa, user address and size */
	struct vhost_user_mem_reg bad = m;
	bad.region.userspace_addr += 0x1000;
	assert_int_equal(fe_req(f, VHOST_USER_REM_MEM_REG, 0, &bad, sizeof(bad),
				NULL, 0),
			 -ENOENT);
	/* a stray fd is accepted and closed (fd count checked in teardown) */
	assert_int_equal(fe_req(f, VHOST_USER_REM_MEM_REG, 0, &m, sizeof(m),
				&f->memfd, 1),
			 1);
	/* ring 0 is no longer covered */
	assert_int_equal(fe_vring_addr(f, 0, ua(f, f->gr[0].desc_gpa),
				       ua(f, f->gr[0].avail_gpa),
				       ua(f, f->gr[0].used_gpa)),
			 -EFAULT);
}

static void test_mem_table_refused(void **state)
{
	struct fx *f = *state;
	struct vhost_user_memory m = {.nregions = 2};
	int fds[2] = {f->memfd, f->memfd};

	fe_negotiate(f, true);
	assert_int_equal(fe_mem_table(f, GPA_BASE, 0x1000, 0), 1);
	/* overlapping regions */
	m.regions[0] = (struct vhost_user_memory_region){GPA_BASE, 0x20000,
							 ua(f, GPA_BASE), 0};
	m.regions[1] = (struct vhost_user_memory_region){
		GPA_BASE + 0x10000, 0x20000, ua(f, GPA_BASE + 0x20000),
		0x10000};
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 64, fds, 2),
		-EEXIST);
	/* zero-size region */
	m.regions[1].guest_addr = GPA_BASE + 0x20000;
	m.regions[1].memory_size = 0;
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 64, fds, 2),
		-EINVAL);
	/* fds not matching nregions; size not matching nregions */
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 64, fds, 1),
		-EINVAL);
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 32, fds, 2),
		-EINVAL);
	m.nregions = 9;
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_MEM_TABLE, 0, &m, 8 + 64, fds, 2),
		-EINVAL);
	/* all or nothing: the 4 KiB table is still the one in use, so a ring
	 * beyond it is not covered, one inside it is */
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_NUM, 0, 4), 1);
	assert_int_equal(fe_vring_addr(f, 0, ua(f, GPA_BASE + 0x2000),
				       ua(f, GPA_BASE + 0x2100),
				       ua(f, GPA_BASE + 0x2200)),
			 -EFAULT);
	assert_int_equal(fe_vring_addr(f, 0, ua(f, GPA_BASE),
				       ua(f, GPA_BASE + 0x100),
				       ua(f, GPA_BASE + 0x200)),
			 1);
	/* a ring crossing the end of the table */
	assert_int_equal(fe_vring_addr(f, 0, ua(f, GPA_BASE + 0xfd0),
				       ua(f, GPA_BASE + 0x100),
				       ua(f, GPA_BASE + 0x200)),
			 -EFAULT);
	/* repeated tables replace each other without leaking */
	for (int i = 0; i < 20; i++)
		assert_int_equal(fe_mem_table(f, GPA_BASE, RAM_SIZE, 0), 1);
}

static void test_malformed_requests(void **state)
{
	struct fx *f = *state;
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t v = 0;

	fe_negotiate(f, false); /* no protocol features */
	/* wrong payload size: refused, the stream stays in sync */
	assert_int_equal(fe_req(f, VHOST_USER_SET_FEATURES, 0, &v, 4, NULL, 0),
			 -EINVAL);
	assert_int_equal(fe_req(f, VHOST_USER_SET_OWNER, 0, &v, 8, NULL, 0),
			 -EINVAL);
	/* an fd where none is allowed */
	assert_int_equal(fe_req(f, VHOST_USER_SET_FEATURES, 0, &v, 8, &efd, 1),
			 -EINVAL);
	/* kick: NOFD with an fd, no NOFD without one, unknown bits */
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_VRING_KICK,
				    0 | VHOST_USER_VRING_NOFD_MASK, efd),
			 -EINVAL);
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_VRING_CALL, 0, -1),
			 -EINVAL);
	assert_int_equal(
		fe_req_u64(f, VHOST_USER_SET_VRING_ERR, 1ull << 20, efd),
		-EINVAL);
	/* too many fds (9 > VHOST_USER_MAX_FDS) */
	int nine[9];
	for (int i = 0; i < 9; i++)
		nine[i] = efd;
	assert_int_equal(
		fe_req(f, VHOST_USER_SET_VRING_KICK, 0, &v, 8, nine, 9),
		-EINVAL);
	/* queue index out of range */
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_NUM, NQ, 8),
			 -ERANGE);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_BASE, 1000, 0),
			 -ERANGE);
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_VRING_KICK, 255, efd),
			 -ERANGE);
	assert_int_equal(fe_vring_addr(f, 77, 0, 0, 0), -ERANGE);
	/* ring addresses before any memory table */
	assert_int_equal(fe_vring_addr(f, 0, 0x1000, 0x2000, 0x3000), -EFAULT);
	/* SET_VRING_ENABLE needs VHOST_USER_F_PROTOCOL_FEATURES */
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_ENABLE, 0, 1),
			 -EOPNOTSUPP);
	/* GET_CONFIG needs VHOST_USER_PROTOCOL_F_CONFIG: the error reply */
	struct vhost_user_config c = {.size = 4};
	assert_int_equal(fe_req(f, VHOST_USER_GET_CONFIG, 0, &c,
				VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0),
			 -EOPNOTSUPP);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_CONFIG, &c, sizeof(c)), 0);
	/* unknown requests, and known ones not served */
	assert_int_equal(fe_req(f, 999, 0, &v, 8, &efd, 1), -EOPNOTSUPP);
	assert_int_equal(fe_req(f, VHOST_USER_SET_LOG_BASE, 0, &v, 8, NULL, 0),
			 -EOPNOTSUPP);
	assert_int_equal(fe_req(f, VHOST_USER_NONE, 0, NULL, 0, NULL, 0),
			 -EOPNOTSUPP);
	/* reply bit set by the front-end */
	assert_int_equal(fe_req(f, VHOST_USER_SET_OWNER, VHOST_USER_REPLY_MASK,
				NULL, 0, NULL, 0),
			 -EINVAL);
	/* still serving */
	assert_int_equal(fe_get_u64(f, VHOST_USER_GET_QUEUE_NUM), NQ);
	assert_false(fe_has_reply(f));
	assert_false(vdk_vhost_user_is_broken(f->vu));
	close(efd);
}

static void test_unknown_with_reply_ack(void **state)
{
	struct fx *f = *state;
	uint64_t status = 0;

	fe_negotiate(f, true);
	assert_int_equal(
		fe_req(f, 999, VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0),
		-EOPNOTSUPP);
	assert_int_equal(fe_reply(f, 999, &status, 8), 8);
	assert_int_equal(status, 1);
	assert_int_equal(fe_req(f, VHOST_USER_POSTCOPY_END,
				VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0),
			 -EOPNOTSUPP);
	assert_int_equal(fe_reply(f, VHOST_USER_POSTCOPY_END, &status, 8), 8);
	assert_int_equal(status, 1);
}

static void test_truncated_header(void **state)
{
	struct fx *f = *state;
	uint8_t part[6] = {1, 0, 0, 0, 1, 0};

	fe_send_raw(f->fe, part, sizeof(part), NULL, 0);
	assert_int_equal(vdk_vhost_user_process_message(f->vu), 0);
	assert_false(vdk_vhost_user_is_broken(f->vu));
	assert_int_equal(shutdown(f->fe, SHUT_WR), 0);
	assert_int_equal(vdk_vhost_user_process_message(f->vu), -EPROTO);
	assert_true(vdk_vhost_user_is_broken(f->vu));
	assert_int_equal(vdk_vhost_user_process_message(f->vu), -EIO);
}

static void test_truncated_payload_with_fd(void **state)
{
	struct fx *f = *state;
	struct vhost_user_header h = {VHOST_USER_SET_VRING_KICK,
				      VHOST_USER_VERSION, 8};
	int efd = eventfd(0, EFD_CLOEXEC);

	/* header and fd, then half the payload, then the end */
	fe_send_raw(f->fe, &h, sizeof(h), &efd, 1);
	fe_send_raw(f->fe, "\0\0\0", 3, NULL, 0);
	assert_int_equal(vdk_vhost_user_process_message(f->vu), 0);
	close(f->fe);
	f->fe = -1;
	assert_int_equal(vdk_vhost_user_process_message(f->vu), -EPROTO);
	close(efd);
}

static void test_size_too_large(void **state)
{
	struct fx *f = *state;
	struct vhost_user_header h = {VHOST_USER_SET_MEM_TABLE,
				      VHOST_USER_VERSION, 0x100000};

	fe_send_raw(f->fe, &h, sizeof(h), &f->memfd, 1);
	assert_int_equal(vdk_vhost_user_process_message(f->vu), -EMSGSIZE);
	assert_true(vdk_vhost_user_is_broken(f->vu));
}

static void test_bad_version(void **state)
{
	struct fx *f = *state;
	struct vhost_user_header h = {VHOST_USER_GET_FEATURES, 0x2, 0};

	fe_send_raw(f->fe, &h, sizeof(h), NULL, 0);
	assert_int_equal(vdk_vhost_user_process_message(f->vu),
			 -EPROTONOSUPPORT);
}

static void test_reply_needed_failure_breaks(void **state)
{
	struct fx *f = *state;

	/* GET_VRING_BASE for a queue that does not exist: no answer can be
	 * given, the connection ends */
	assert_int_equal(fe_req_state(f, VHOST_USER_GET_VRING_BASE, NQ, 0),
			 -EIO);
	assert_true(vdk_vhost_user_is_broken(f->vu));
}

static void test_orderly_disconnect(void **state)
{
	struct fx *f = *state;

	fe_negotiate(f, true);
	close(f->fe);
	f->fe = -1;
	assert_int_equal(vdk_vhost_user_process_message(f->vu), -ENOTCONN);
}

static void test_no_protocol_features_rings_enabled(void **state)
{
	struct fx *f = *state;

	fe_negotiate(f, false);
	assert_int_equal(fe_mem_table(f, GPA_BASE, RAM_SIZE, 0), 1);
	fe_start_ring(f, 0, false); /* no SET_VRING_ENABLE */
	assert_int_equal(f->dev.starts, 1);
	fe_post_and_kick(f, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 1);

	/* a kick fd that hangs up is dropped, the ring is then polled */
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_VRING_KICK, 0, pfd[0]),
			 1);
	close(pfd[0]);
	close(pfd[1]);
	assert_true(vdk_vhost_user_kick_fd(f->vu, 0) >= 0);
	fe_post_and_kick(f, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(vdk_vhost_user_kick_fd(f->vu, 0), -ENOENT);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 2);

	/* polling mode requested by the front-end: no kick fd */
	assert_int_equal(fe_req_u64(f, VHOST_USER_SET_VRING_KICK,
				    0 | VHOST_USER_VRING_NOFD_MASK, -1),
			 1);
	fe_post_and_kick(f, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 3);
}

static void test_protocol_features_rings_start_disabled(void **state)
{
	struct fx *f = *state;

	fe_negotiate(f, true);
	assert_int_equal(fe_mem_table(f, GPA_BASE, RAM_SIZE, 0), 1);
	fe_start_ring(f, 0, false);
	assert_int_equal(f->dev.starts, 0);
	fe_post_and_kick(f, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 0);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_ENABLE, 0, 2),
			 -EINVAL);
	/* enabling starts the ring and processes what is pending */
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_ENABLE, 0, 1), 1);
	assert_int_equal(f->dev.starts, 1);
	assert_int_equal(guest_ring_used_idx(&f->gr[0]), 1);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_ENABLE, 0, 0), 1);
	assert_int_equal(f->dev.stops, 1);
	/* RESET_DEVICE stops everything and resets the device */
	assert_int_equal(
		fe_req(f, VHOST_USER_RESET_DEVICE, 0, NULL, 0, NULL, 0), 1);
	assert_int_equal(f->dev.resets, 1);
}

/* ---- the rng device through the adapter -------------------------------- */

static void test_rng_adapter(void **state)
{
	struct fx *f = *state;
	struct vdk_vhost_user_device_adapter ad;
	const struct vdk_vhost_user_backend_ops *ops;
	struct vdk_rng *rng;
	uint32_t id, len;
	struct vhost_vring_state s = {0, 0};

	vdk_vhost_user_free(f->vu);
	close(f->fe);
	assert_int_equal(vdk_rng_new(&rng, NULL), 0);
	assert_int_equal(vdk_vhost_user_backend_from_device(
				 &ad, vdk_rng_device(rng), &ops),
			 0);
	fx_connect(f, ops, &ad);
	assert_int_equal(vdk_vhost_user_num_queues(f->vu), 1);
	fe_negotiate(f, true);
	assert_int_equal(fe_mem_table(f, GPA_BASE, RAM_SIZE, 0), 1);
	memset(f->ram + (DATA_GPA - GPA_BASE), 0, 64);
	fe_start_ring(f, 0, true);
	assert_int_equal(vdk_rng_device(rng)->state, VDK_DEVICE_ACTIVE);

	fe_post_and_kick(f, 0, DATA_GPA);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(guest_ring_get_used(&f->gr[0], &id, &len), 1);
	assert_int_equal(len, 64);
	assert_int_equal(eventfd_take(f->call[0]), 1);
	assert_int_equal(vdk_rng_stats(rng).requests, 1);

	/* GET_VRING_BASE puts the device to sleep; restart wakes it */
	assert_int_equal(
		fe_req(f, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0),
		1);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_VRING_BASE, &s, sizeof(s)),
			 sizeof(s));
	assert_int_equal(s.num, 1);
	assert_true(vdk_rng_device(rng)->asleep);
	assert_int_equal(fe_req_state(f, VHOST_USER_SET_VRING_BASE, 0, 1), 1);
	assert_int_equal(
		fe_req_u64(f, VHOST_USER_SET_VRING_KICK, 0, f->kick[0]), 1);
	assert_false(vdk_rng_device(rng)->asleep);
	fe_post_and_kick(f, 0, DATA_GPA + 0x100);
	assert_int_equal(vdk_vhost_user_handle_kick(f->vu, 0), 1);
	assert_int_equal(vdk_rng_stats(rng).requests, 2);

	vdk_vhost_user_free(f->vu);
	f->vu = NULL;
	assert_int_equal(vdk_rng_device(rng)->state, VDK_DEVICE_RESET);
	vdk_rng_free(rng);
}

/* ---- the epoll loop ---------------------------------------------------- */

static void *run_thread(void *arg)
{
	struct fx *f = arg;

	return (void *)(intptr_t)vdk_vhost_user_run(f->vu);
}

/* Send and wait for the REPLY_ACK, so the loop has handled the request. */
static void fe_acked(struct fx *f, uint32_t req, const void *p, uint32_t size,
		     const int *fds, size_t nfds)
{
	uint64_t status = 99;

	fe_send(f, req, VHOST_USER_NEED_REPLY_MASK, p, size, fds, nfds);
	assert_int_equal(fe_reply(f, req, &status, 8), 8);
	assert_int_equal(status, 0);
}

static void test_run_loop(void **state)
{
	struct fx *f = *state;
	pthread_t t;
	void *ret;
	uint64_t v;

	/* negotiate in-line, then hand the connection to the loop */
	fe_negotiate(f, true);
	assert_int_equal(pthread_create(&t, NULL, run_thread, f), 0);
	struct vhost_user_memory m = {.nregions = 1};
	m.regions[0] = (struct vhost_user_memory_region){GPA_BASE, RAM_SIZE,
							 ua(f, GPA_BASE), 0};
	fe_acked(f, VHOST_USER_SET_MEM_TABLE, &m, 8 + 32, &f->memfd, 1);
	assert_int_equal(
		guest_ring_init(&f->gr[0], f->fe_mem, QSIZE, RING_GPA(0)), 0);
	struct vhost_vring_state s = {0, QSIZE};
	fe_acked(f, VHOST_USER_SET_VRING_NUM, &s, sizeof(s), NULL, 0);
	struct vhost_vring_addr a = {.index = 0,
				     .desc_user_addr = ua(f, f->gr[0].desc_gpa),
				     .used_user_addr = ua(f, f->gr[0].used_gpa),
				     .avail_user_addr =
					     ua(f, f->gr[0].avail_gpa)};
	fe_acked(f, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	v = 0;
	fe_acked(f, VHOST_USER_SET_VRING_CALL, &v, 8, &f->call[0], 1);
	fe_acked(f, VHOST_USER_SET_VRING_KICK, &v, 8, &f->kick[0], 1);
	s.num = 1;
	fe_acked(f, VHOST_USER_SET_VRING_ENABLE, &s, sizeof(s), NULL, 0);

	/* kicks are served by the loop: wait for the call eventfd */
	for (int i = 0; i < 5; i++) {
		fe_post_and_kick(f, 0, DATA_GPA + 0x100 * i);
		struct pollfd p = {.fd = f->call[0], .events = POLLIN};
		assert_int_equal(poll(&p, 1, 2000), 1);
		assert_true(eventfd_take(f->call[0]) >= 1);
		assert_int_equal(guest_ring_used_idx(&f->gr[0]), i + 1);
	}
	/* a half-sent message does not hold kicks up */
	struct vhost_user_header h = {VHOST_USER_GET_QUEUE_NUM,
				      VHOST_USER_VERSION, 0};
	fe_send_raw(f->fe, &h, 4, NULL, 0);
	fe_post_and_kick(f, 0, DATA_GPA);
	struct pollfd p = {.fd = f->call[0], .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	fe_send_raw(f->fe, (uint8_t *)&h + 4, sizeof(h) - 4, NULL, 0);
	assert_int_equal(fe_reply(f, VHOST_USER_GET_QUEUE_NUM, &v, 8), 8);
	assert_int_equal(v, NQ);

	close(f->fe);
	f->fe = -1;
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_int_equal((intptr_t)ret, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_negotiation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reply_ack, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ring_kick_call, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_get_vring_base_suspends,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mem_regions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mem_table_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unknown_with_reply_ack,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_header, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_truncated_payload_with_fd,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_too_large, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_version, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_reply_needed_failure_breaks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orderly_disconnect, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_no_protocol_features_rings_enabled, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_protocol_features_rings_start_disabled, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_rng_adapter, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_run_loop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
