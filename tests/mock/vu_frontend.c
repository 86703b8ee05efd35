/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vu_frontend: a scripted vhost-user front-end for tests and fuzzing; see
 * vu_frontend.h. Message layout per QEMU docs/interop/vhost-user.rst
 * ("Message Specification").
 */
#include "vu_frontend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#define REPLY_TIMEOUT_MS 3000

/* ---- socket helpers ---------------------------------------------------- */

int vu_fe_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -errno;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

void vu_fe_quiet_log(void *opaque, enum vdk_log_level level, const char *module,
		     const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

ssize_t vu_fe_sendmsg(int sock, const void *buf, size_t len, const int *fds,
		      size_t nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(VU_FE_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > VU_FE_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

/* Append the SCM_RIGHTS fds of @mh to @m (closing what does not fit). */
static void take_fds(struct msghdr *mh, struct vu_fe_msg *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (m && m->nfds < VU_FE_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
}

int vu_fe_recv(int sock, struct vu_fe_msg *m, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(VU_FE_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = &m->h, .iov_len = sizeof(m->h)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};
	struct pollfd p = {.fd = sock, .events = POLLIN};
	ssize_t n;

	m->nfds = 0;
	n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	n = recvmsg(sock, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	take_fds(&mh, m);
	if (n != sizeof(m->h))
		return -EPROTO;
	if (m->h.size > VU_FE_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (!m->h.size)
		return 0;
	n = recv(sock, m->payload, m->h.size, MSG_WAITALL);
	if (n < 0)
		return -errno;
	return n == (ssize_t)m->h.size ? 0 : -EPROTO;
}

size_t vu_fe_drain(int sock)
{
	size_t total = 0;

	for (;;) {
		union {
			char buf[CMSG_SPACE(VU_FE_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} control;
		uint8_t buf[4096];
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = control.buf,
				    .msg_controllen = sizeof(control.buf)};
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return total;
		take_fds(&mh, NULL);
		total += (size_t)n;
	}
}

bool vu_fe_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/* ---- a front-end ------------------------------------------------------- */

/* A fault of the script: fe->fail() (a cmocka test's does not return). */
__attribute__((format(printf, 2, 3))) static void fault(struct vu_fe *fe,
							const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fe->fail)
		fe->fail(msg);
	fprintf(stderr, "vu_frontend: %s\n", msg);
	abort();
}

int vu_fe_init(struct vu_fe *fe, const struct vu_fe_config *cfg,
	       void (*fail)(const char *msg))
{
	uint64_t rings = (uint64_t)cfg->num_queues * VU_FE_RING_STRIDE;
	int err;

	memset(fe, 0, sizeof(*fe));
	fe->cfg = *cfg;
	fe->fail = fail;
	fe->sock = -1;
	fe->memfd = -1;
	fe->ram = MAP_FAILED;
	for (int q = 0; q < VU_FE_MAX_QUEUES; q++)
		fe->kick[q] = fe->call[q] = -1;
	if (cfg->num_queues > VU_FE_MAX_QUEUES || rings > cfg->ram_size ||
	    cfg->ram_size > SIZE_MAX)
		return -EINVAL;
	fe->fds_before = vu_fe_count_fds();
	if (fe->fds_before < 0)
		return fe->fds_before;
	/* sealed as QEMU's memory-backend-memfd is (the back-end refuses
	 * guest RAM that could shrink) */
	fe->memfd =
		memfd_create("vu-frontend", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fe->memfd < 0 || ftruncate(fe->memfd, (off_t)cfg->ram_size) < 0 ||
	    fcntl(fe->memfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) < 0)
		goto fail_errno;
	fe->ram = mmap(NULL, cfg->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fe->memfd, 0);
	if (fe->ram == MAP_FAILED)
		goto fail_errno;
	fe->mem = vdk_mem_new(&err);
	if (!fe->mem)
		goto fail;
	err = vdk_mem_add_host(fe->mem, cfg->ram_gpa, cfg->ram_size, fe->ram);
	if (err < 0)
		goto fail;
	for (int q = 0; q < cfg->num_queues; q++) {
		fe->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		fe->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fe->kick[q] < 0 || fe->call[q] < 0)
			goto fail_errno;
	}
	return 0;

fail_errno:
	err = -errno;
fail:
	vu_fe_fini(fe);
	return err;
}

int vu_fe_fini(struct vu_fe *fe)
{
	vu_fe_disconnect(fe);
	for (int q = 0; q < VU_FE_MAX_QUEUES; q++) {
		if (fe->kick[q] >= 0)
			close(fe->kick[q]);
		if (fe->call[q] >= 0)
			close(fe->call[q]);
		fe->kick[q] = fe->call[q] = -1;
	}
	vdk_mem_free(fe->mem);
	fe->mem = NULL;
	if (fe->ram != MAP_FAILED)
		munmap(fe->ram, fe->cfg.ram_size);
	fe->ram = MAP_FAILED;
	if (fe->memfd >= 0)
		close(fe->memfd);
	fe->memfd = -1;
	return vu_fe_count_fds() - fe->fds_before;
}

static int fe_connect(struct vu_fe *fe,
		      const struct vdk_vhost_user_backend_ops *ops, void *be,
		      struct vdk_device *dev)
{
	int sv[2], err = 0;

	if (fe->vu || fe->sock >= 0)
		return -EBUSY;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fe->vu = dev ? vdk_vhost_user_new(sv[1], dev, NULL, &err)
		     : vu_backend_new(sv[1], ops, be, NULL, &err);
	if (!fe->vu) {
		close(sv[0]);
		close(sv[1]);
		return err < 0 ? err : -EINVAL;
	}
	fe->sock = sv[0];
	return 0;
}

int vu_fe_connect(struct vu_fe *fe,
		  const struct vdk_vhost_user_backend_ops *ops, void *be)
{
	return fe_connect(fe, ops, be, NULL);
}

int vu_fe_connect_device(struct vu_fe *fe, struct vdk_device *dev)
{
	return fe_connect(fe, NULL, NULL, dev);
}

void vu_fe_disconnect(struct vu_fe *fe)
{
	vdk_vhost_user_free(fe->vu);
	fe->vu = NULL;
	if (fe->sock >= 0)
		close(fe->sock);
	fe->sock = -1;
}

uint64_t vu_fe_ua(const struct vu_fe *fe, uint64_t gpa)
{
	return (uint64_t)(uintptr_t)fe->ram + (gpa - fe->cfg.ram_gpa);
}

void *vu_fe_host(const struct vu_fe *fe, uint64_t gpa)
{
	return fe->ram + (gpa - fe->cfg.ram_gpa);
}

int vu_fe_ring_init(struct vu_fe *fe, uint16_t q)
{
	if (q >= fe->cfg.num_queues)
		return -ERANGE;
	return guest_ring_init(&fe->gr[q], fe->mem, fe->cfg.queue_size,
			       fe->cfg.ram_gpa +
				       (uint64_t)q * VU_FE_RING_STRIDE);
}

/* ---- requests ---------------------------------------------------------- */

void vu_fe_send_raw(struct vu_fe *fe, const void *buf, size_t len,
		    const int *fds, size_t nfds)
{
	ssize_t n = vu_fe_sendmsg(fe->sock, buf, len, fds, nfds, 0);

	if (n != (ssize_t)len)
		fault(fe, "sent %zd of %zu bytes", n, len);
}

void vu_fe_send(struct vu_fe *fe, uint32_t req, uint32_t flags,
		const void *payload, uint32_t size, const int *fds, size_t nfds)
{
	uint8_t buf[sizeof(struct vhost_user_header) + VU_FE_MAX_PAYLOAD];
	struct vhost_user_header h = {req, VHOST_USER_VERSION | flags, size};

	if (size > VU_FE_MAX_PAYLOAD)
		fault(fe, "request %u: payload of %u bytes", req, size);
	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), payload, size);
	vu_fe_send_raw(fe, buf, sizeof(h) + size, fds, nfds);
}

int vu_fe_req(struct vu_fe *fe, uint32_t req, uint32_t flags,
	      const void *payload, uint32_t size, const int *fds, size_t nfds)
{
	vu_fe_send(fe, req, flags, payload, size, fds, nfds);
	return vdk_vhost_user_process_message(fe->vu);
}

int vu_fe_req_fd(struct vu_fe *fe, uint32_t req, const void *payload,
		 uint32_t size, int fd)
{
	return vu_fe_req(fe, req, 0, payload, size, &fd, fd >= 0 ? 1 : 0);
}

int vu_fe_req_u64(struct vu_fe *fe, uint32_t req, uint64_t v, int fd)
{
	return vu_fe_req_fd(fe, req, &v, sizeof(v), fd);
}

int vu_fe_req_state(struct vu_fe *fe, uint32_t req, uint32_t index,
		    uint32_t num)
{
	struct vhost_vring_state s = {index, num};

	return vu_fe_req(fe, req, 0, &s, sizeof(s), NULL, 0);
}

int vu_fe_vring_addr(struct vu_fe *fe, uint32_t q, uint64_t desc,
		     uint64_t avail, uint64_t used)
{
	struct vhost_vring_addr a = {.index = q,
				     .desc_user_addr = desc,
				     .used_user_addr = used,
				     .avail_user_addr = avail};

	return vu_fe_req(fe, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), NULL,
			 0);
}

int vu_fe_mem_table(struct vu_fe *fe, uint64_t gpa, uint64_t size,
		    uint64_t offset)
{
	struct vhost_user_memory m = {.nregions = 1};

	m.regions[0] = (struct vhost_user_memory_region){
		gpa, size, vu_fe_ua(fe, gpa), offset};
	return vu_fe_req(fe, VHOST_USER_SET_MEM_TABLE, 0, &m,
			 offsetof(struct vhost_user_memory, regions) +
				 sizeof(m.regions[0]),
			 &fe->memfd, 1);
}

uint32_t vu_fe_reply(struct vu_fe *fe, uint32_t req, void *payload, size_t max,
		     int *fd)
{
	struct vu_fe_msg m;
	int ret = vu_fe_recv(fe->sock, &m, REPLY_TIMEOUT_MS);
	const uint32_t want = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;

	for (size_t i = (fd && m.nfds) ? 1 : 0; i < m.nfds; i++)
		close(m.fds[i]);
	if (fd)
		*fd = m.nfds ? m.fds[0] : -1;
	if (ret < 0)
		fault(fe, "reply to %u: %s", req, strerror(-ret));
	if (m.h.request != req || m.h.flags != want)
		fault(fe, "reply to %u: request %u flags %#x", req, m.h.request,
		      m.h.flags);
	if (m.h.size > max)
		fault(fe, "reply to %u: %u bytes, room for %zu", req, m.h.size,
		      max);
	if (m.nfds > (fd ? 1u : 0u))
		fault(fe, "reply to %u: %zu fds", req, m.nfds);
	if (m.h.size)
		memcpy(payload, m.payload, m.h.size);
	return m.h.size;
}

uint64_t vu_fe_get_u64(struct vu_fe *fe, uint32_t req)
{
	uint64_t v = 0;
	int ret = vu_fe_req(fe, req, 0, NULL, 0, NULL, 0);

	if (ret != 1)
		fault(fe, "request %u: %d", req, ret);
	if (vu_fe_reply(fe, req, &v, sizeof(v), NULL) != sizeof(v))
		fault(fe, "request %u: short reply", req);
	return v;
}

/* A step of a sequence: a fault unless the back-end handled it. */
static void step(struct vu_fe *fe, const char *what, uint32_t q, int ret)
{
	if (ret != 1)
		fault(fe, "%s (ring %u): %d", what, q, ret);
}

uint64_t vu_fe_negotiate(struct vu_fe *fe, uint64_t features, uint64_t pf)
{
	const uint64_t must = (1ull << VIRTIO_F_VERSION_1) |
			      (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
	uint64_t offered = vu_fe_get_u64(fe, VHOST_USER_GET_FEATURES);
	uint64_t offered_pf = 0;

	if ((offered & must) != must)
		fault(fe, "features offered: %#llx",
		      (unsigned long long)offered);
	step(fe, "SET_FEATURES", 0,
	     vu_fe_req_u64(fe, VHOST_USER_SET_FEATURES, offered & features,
			   -1));
	if (!(features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		return 0;
	offered_pf = vu_fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES);
	step(fe, "SET_PROTOCOL_FEATURES", 0,
	     vu_fe_req_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES,
			   offered_pf & pf, -1));
	return offered_pf;
}

uint64_t vu_fe_features_and_memory(struct vu_fe *fe, uint64_t pf)
{
	uint64_t offered = vu_fe_negotiate(
		fe,
		(1ull << VIRTIO_F_VERSION_1) |
			(1ull << VHOST_USER_F_PROTOCOL_FEATURES),
		pf);

	step(fe, "SET_MEM_TABLE", 0,
	     vu_fe_mem_table(fe, fe->cfg.ram_gpa, fe->cfg.ram_size, 0));
	return offered;
}

uint64_t vu_fe_setup(struct vu_fe *fe, uint64_t pf)
{
	step(fe, "SET_OWNER", 0,
	     vu_fe_req(fe, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0));
	return vu_fe_features_and_memory(fe, pf);
}

void vu_fe_start_ring(struct vu_fe *fe, uint16_t q, uint32_t base,
		      unsigned flags)
{
	struct guest_ring *gr = &fe->gr[q];
	int ret;

	if (q >= fe->cfg.num_queues)
		fault(fe, "ring %u of %u", q, fe->cfg.num_queues);
	if (flags & VU_FE_RING_INIT) {
		ret = vu_fe_ring_init(fe, q);
		if (ret < 0)
			fault(fe, "ring %u layout: %d", q, ret);
	}
	step(fe, "SET_VRING_NUM", q,
	     vu_fe_req_state(fe, VHOST_USER_SET_VRING_NUM, q,
			     fe->cfg.queue_size));
	step(fe, "SET_VRING_BASE", q,
	     vu_fe_req_state(fe, VHOST_USER_SET_VRING_BASE, q, base));
	step(fe, "SET_VRING_ADDR", q,
	     vu_fe_vring_addr(fe, q, vu_fe_ua(fe, gr->desc_gpa),
			      vu_fe_ua(fe, gr->avail_gpa),
			      vu_fe_ua(fe, gr->used_gpa)));
	for (int k = 0; k < 2; k++) {
		bool kick = (k == 0) == !!(flags & VU_FE_RING_KICK_FIRST);

		step(fe, kick ? "SET_VRING_KICK" : "SET_VRING_CALL", q,
		     vu_fe_req_u64(fe,
				   kick ? VHOST_USER_SET_VRING_KICK
					: VHOST_USER_SET_VRING_CALL,
				   q, kick ? fe->kick[q] : fe->call[q]));
	}
	if (flags & VU_FE_RING_ENABLE)
		step(fe, "SET_VRING_ENABLE", q,
		     vu_fe_req_state(fe, VHOST_USER_SET_VRING_ENABLE, q, 1));
}

uint32_t vu_fe_get_vring_base(struct vu_fe *fe, uint16_t q)
{
	struct vhost_vring_state s = {q, 0};

	step(fe, "GET_VRING_BASE", q,
	     vu_fe_req(fe, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), NULL,
		       0));
	if (vu_fe_reply(fe, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL) !=
		    sizeof(s) ||
	    s.index != q)
		fault(fe, "GET_VRING_BASE (ring %u): answered for %u", q,
		      s.index);
	return s.num;
}

int vu_fe_post(struct vu_fe *fe, uint16_t q, uint64_t gpa)
{
	struct guest_buf b = {gpa, 64, true};
	int head = guest_ring_add_chain(&fe->gr[q], &b, 1);

	if (head < 0)
		fault(fe, "ring %u: chain at %#llx: %d", q,
		      (unsigned long long)gpa, head);
	return head;
}

void vu_fe_kick(struct vu_fe *fe, uint16_t q)
{
	uint64_t one = 1;

	if (write(fe->kick[q], &one, sizeof(one)) != sizeof(one))
		fault(fe, "kick ring %u: %s", q, strerror(errno));
}

int vu_fe_post_kick(struct vu_fe *fe, uint16_t q, uint64_t gpa)
{
	int head = vu_fe_post(fe, q, gpa);

	vu_fe_kick(fe, q);
	return head;
}
