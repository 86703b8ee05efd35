// SPDX-License-Identifier: Apache-2.0
/*
 * vhost-user front-end: requests to a back-end and checked replies (QEMU
 * docs/interop/vhost-user.rst, "Message Specification", "Communication",
 * "REPLY_ACK").
 *
 * Do not assume a reply contains sensible values: the back-end is another
 * process. A reply is read whole (header, then exactly the payload size the
 * request expects) before any field is used; a reply for another request,
 * without the REPLY flag, of the wrong size or version, carrying fds, or not
 * arriving within the timeout breaks the connection, as the framing is then
 * unknown.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <vdk/log.h>
#include <vdk/vhost_user_frontend.h>

#define MODULE	"vhost-user-frontend"
#define PF(bit) (1ull << (bit))

/* Protocol features this front-end implements. */
#define IMPLEMENTED_PROTOCOL                                                   \
	(PF(VHOST_USER_PROTOCOL_F_MQ) | PF(VHOST_USER_PROTOCOL_F_REPLY_ACK) |  \
	 PF(VHOST_USER_PROTOCOL_F_CONFIG) |                                    \
	 PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |                               \
	 PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))

struct vdk_vhost_user_frontend {
	int sock;
	int timeout_ms;
	bool broken;
	uint64_t protocol_features; /* negotiated */
};

/* ---- lifetime ----------------------------------------------------------- */

struct vdk_vhost_user_frontend *vdk_vhost_user_frontend_new(int sock_fd,
							    int *err)
{
	struct vdk_vhost_user_frontend *fe;

	if (sock_fd < 0) {
		*err = -EINVAL;
		return NULL;
	}
	fe = calloc(1, sizeof(*fe));
	if (!fe) {
		*err = -ENOMEM;
		return NULL;
	}
	fe->sock = sock_fd;
	fe->timeout_ms = VDK_VHOST_USER_FRONTEND_TIMEOUT_MS;
	*err = 0;
	return fe;
}

int vdk_vhost_user_frontend_connect(const char *path,
				    struct vdk_vhost_user_frontend **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret;

	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*out = vdk_vhost_user_frontend_new(fd, &ret);
	if (!*out)
		close(fd);
	return ret;
}

void vdk_vhost_user_frontend_free(struct vdk_vhost_user_frontend *fe)
{
	if (!fe)
		return;
	close(fe->sock);
	free(fe);
}

void vdk_vhost_user_frontend_set_timeout(struct vdk_vhost_user_frontend *fe,
					 int timeout_ms)
{
	if (timeout_ms > 0)
		fe->timeout_ms = timeout_ms;
}

bool vdk_vhost_user_frontend_is_broken(const struct vdk_vhost_user_frontend *fe)
{
	return fe->broken;
}

uint64_t vdk_vhost_user_frontend_protocol_features(
	const struct vdk_vhost_user_frontend *fe)
{
	return fe->protocol_features;
}

/* ---- wire ----------------------------------------------------------------- */

/* "GET_FEATURES" etc. for messages: the spec's name without "VHOST_USER_". */
static const char *req_name(uint32_t request)
{
	const char *name = vhost_user_request_str(request);

	return name ? name + sizeof("VHOST_USER_") - 1 : "request";
}

static int fe_broken(struct vdk_vhost_user_frontend *fe, uint32_t request,
		     const char *why)
{
	if (!fe->broken)
		vdk_log(VDK_LOG_ERROR, MODULE, "%s: %s; connection broken",
			req_name(request), why);
	fe->broken = true;
	return -EIO;
}

/* Send header + @size payload bytes with @nfds fds in one sendmsg. */
static int fe_send(struct vdk_vhost_user_frontend *fe,
		   const struct vhost_user_msg *m, const int *fds, size_t nfds)
{
	size_t len = sizeof(m->hdr) + m->hdr.size;
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)m, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > VHOST_USER_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(fe->sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return fe_broken(fe, m->hdr.request, strerror(errno));
	if ((size_t)n != len)
		return fe_broken(fe, m->hdr.request, "short send");
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly @len bytes before @deadline; any fd that arrives is closed
 * and breaks the reply (no reply of ours carries one). */
static int fe_read_full(struct vdk_vhost_user_frontend *fe, uint32_t request,
			void *buf, size_t len, int64_t deadline, int *fd_out)
{
	size_t got = 0;

	while (got < len) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = (char *)buf + got,
				    .iov_len = len - got};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		struct pollfd p = {.fd = fe->sock, .events = POLLIN};
		int64_t left = deadline - now_ms();
		bool had_fds = false;
		ssize_t n;

		if (left <= 0)
			return fe_broken(fe, request, "no reply in time");
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return fe_broken(fe, request, strerror(errno));
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recvmsg(fe->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return fe_broken(fe, request, strerror(errno));
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
		     c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fd;

			for (size_t i = 0; i < nfd; i++) {
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
				/* One fd is kept where the reply may carry
				 * one (GET_INFLIGHT_FD); others closed. */
				if (fd_out && *fd_out < 0 && nfd == 1) {
					*fd_out = fd;
					continue;
				}
				close(fd);
				had_fds = true;
			}
		}
		if (had_fds)
			return fe_broken(fe, request,
					 "reply carried unexpected fds");
		if (n == 0)
			return fe_broken(fe, request,
					 "back-end closed the "
					 "connection");
		got += (size_t)n;
	}
	return 0;
}

/* Read the reply to @request: exactly @size payload bytes into @payload. */
static int fe_recv_reply_fd(struct vdk_vhost_user_frontend *fe,
			    uint32_t request, void *payload, uint32_t size,
			    int *fd_out)
{
	int64_t deadline = now_ms() + fe->timeout_ms;
	struct vhost_user_header hdr;
	int ret;

	ret = fe_read_full(fe, request, &hdr, sizeof(hdr), deadline, fd_out);
	if (ret < 0)
		return ret;
	/* Copy checked: the header is a local; check every field. */
	if ((hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
		return fe_broken(fe, request, "reply with a bad version");
	if (!(hdr.flags & VHOST_USER_REPLY_MASK))
		return fe_broken(fe, request, "reply without the REPLY flag");
	if (hdr.request != request)
		return fe_broken(fe, request, "reply to another request");
	if (hdr.size != size)
		return fe_broken(fe, request, "reply of the wrong size");
	return fe_read_full(fe, request, payload, size, deadline, fd_out);
}

static int fe_recv_reply(struct vdk_vhost_user_frontend *fe, uint32_t request,
			 void *payload, uint32_t size)
{
	return fe_recv_reply_fd(fe, request, payload, size, NULL);
}

/*
 * Send @request with @size payload bytes of @m (header filled here) and
 * @nfds fds. Requests with a reply of their own read it into @m->payload
 * (@reply_size bytes). Others get NEED_REPLY with REPLY_ACK, and the
 * back-end's u64 verdict (0: success) decides the result (spec
 * "REPLY_ACK").
 */
static int fe_request(struct vdk_vhost_user_frontend *fe, uint32_t request,
		      struct vhost_user_msg *m, uint32_t size, const int *fds,
		      size_t nfds, bool has_reply, uint32_t reply_size)
{
	bool ack = !has_reply && (fe->protocol_features &
				  PF(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	uint64_t verdict;
	int ret;

	if (fe->broken)
		return -EIO;
	m->hdr.request = request;
	m->hdr.flags =
		VHOST_USER_VERSION | (ack ? VHOST_USER_NEED_REPLY_MASK : 0);
	m->hdr.size = size;
	ret = fe_send(fe, m, fds, nfds);
	if (ret < 0)
		return ret;
	if (has_reply)
		return fe_recv_reply(fe, request, &m->payload, reply_size);
	if (!ack)
		return 0;
	ret = fe_recv_reply(fe, request, &verdict, sizeof(verdict));
	if (ret < 0)
		return ret;
	if (verdict != 0) {
		vdk_log(VDK_LOG_WARN, MODULE, "%s: back-end reported failure",
			req_name(request));
		return -EIO;
	}
	return 0;
}

static int fe_u64(struct vdk_vhost_user_frontend *fe, uint32_t request,
		  uint64_t value, const int *fds, size_t nfds)
{
	struct vhost_user_msg m = {.payload.u64 = value};

	return fe_request(fe, request, &m, sizeof(uint64_t), fds, nfds, false,
			  0);
}

static int fe_get_u64(struct vdk_vhost_user_frontend *fe, uint32_t request,
		      uint64_t *out)
{
	struct vhost_user_msg m = {0};
	int ret =
		fe_request(fe, request, &m, 0, NULL, 0, true, sizeof(uint64_t));

	if (ret == 0)
		*out = m.payload.u64;
	return ret;
}

static int fe_state(struct vdk_vhost_user_frontend *fe, uint32_t request,
		    uint32_t index, uint32_t num)
{
	struct vhost_user_msg m = {
		.payload.state = {.index = index, .num = num}};

	if (index > VHOST_USER_VRING_IDX_MASK)
		return -EINVAL;
	return fe_request(fe, request, &m, sizeof(struct vhost_vring_state),
			  NULL, 0, false, 0);
}

static bool has_protocol(const struct vdk_vhost_user_frontend *fe, int bit)
{
	return (fe->protocol_features & PF(bit)) != 0;
}

/* ---- requests ------------------------------------------------------------ */

int vdk_vhost_user_frontend_set_owner(struct vdk_vhost_user_frontend *fe)
{
	struct vhost_user_msg m = {0};

	return fe_request(fe, VHOST_USER_SET_OWNER, &m, 0, NULL, 0, false, 0);
}

int vdk_vhost_user_frontend_get_features(struct vdk_vhost_user_frontend *fe,
					 uint64_t *features)
{
	return fe_get_u64(fe, VHOST_USER_GET_FEATURES, features);
}

int vdk_vhost_user_frontend_set_features(struct vdk_vhost_user_frontend *fe,
					 uint64_t features)
{
	return fe_u64(fe, VHOST_USER_SET_FEATURES, features, NULL, 0);
}

int vdk_vhost_user_frontend_get_queue_num(struct vdk_vhost_user_frontend *fe,
					  uint64_t *num)
{
	if (!has_protocol(fe, VHOST_USER_PROTOCOL_F_MQ))
		return -EOPNOTSUPP;
	return fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM, num);
}

int vdk_vhost_user_frontend_negotiate(struct vdk_vhost_user_frontend *fe,
				      uint64_t protocol_wanted,
				      uint64_t *features)
{
	uint64_t offered, proto;
	int ret;

	ret = vdk_vhost_user_frontend_set_owner(fe);
	if (ret < 0)
		return ret;
	ret = vdk_vhost_user_frontend_get_features(fe, &offered);
	if (ret < 0)
		return ret;
	if (offered & PF(VHOST_USER_F_PROTOCOL_FEATURES)) {
		ret = fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &proto);
		if (ret < 0)
			return ret;
		proto &= protocol_wanted & IMPLEMENTED_PROTOCOL;
		/* Sent before REPLY_ACK is in force: no NEED_REPLY here. */
		ret = fe_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, proto, NULL,
			     0);
		if (ret < 0)
			return ret;
		fe->protocol_features = proto;
	}
	if (features)
		*features = offered;
	return 0;
}

int vdk_vhost_user_frontend_set_mem_table(
	struct vdk_vhost_user_frontend *fe,
	const struct vdk_vhost_user_frontend_region *regions, uint32_t n)
{
	struct vhost_user_msg m = {0};
	int fds[VHOST_MEMORY_BASELINE_NREGIONS];

	if (n == 0 || n > VHOST_MEMORY_BASELINE_NREGIONS || !regions)
		return -EINVAL;
	m.payload.memory.nregions = n;
	for (uint32_t i = 0; i < n; i++) {
		if (regions[i].fd < 0 || regions[i].size == 0)
			return -EINVAL;
		m.payload.memory.regions[i] = (struct vhost_user_memory_region){
			.guest_phys_addr = regions[i].gpa,
			.memory_size = regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)regions[i].addr,
			.mmap_offset = regions[i].fd_offset,
		};
		fds[i] = regions[i].fd;
	}
	/* As QEMU sends it: nregions, padding, then only the used regions. */
	return fe_request(
		fe, VHOST_USER_SET_MEM_TABLE, &m,
		(uint32_t)offsetof(struct vhost_user_memory, regions) +
			n * (uint32_t)sizeof(struct vhost_user_memory_region),
		fds, n, false, 0);
}

int vdk_vhost_user_frontend_get_config(struct vdk_vhost_user_frontend *fe,
				       uint32_t offset, void *buf, uint32_t len)
{
	struct vhost_user_msg m = {0};
	uint32_t size = VHOST_USER_CONFIG_HDR_SIZE + len;
	int ret;

	if (!has_protocol(fe, VHOST_USER_PROTOCOL_F_CONFIG))
		return -EOPNOTSUPP;
	if (len == 0 || len > VHOST_USER_MAX_CONFIG_SIZE || !buf)
		return -EINVAL;
	m.payload.config.offset = offset;
	m.payload.config.size = len;
	ret = fe_request(fe, VHOST_USER_GET_CONFIG, &m, size, NULL, 0, true,
			 size);
	if (ret < 0)
		return ret;
	/* The size field of the copy must match what we asked for; a
	 * back-end that failed answers with size 0 (QEMU does so). */
	if (m.payload.config.size != len)
		return -EIO;
	memcpy(buf, m.payload.config.region, len);
	return 0;
}

int vdk_vhost_user_frontend_set_config(struct vdk_vhost_user_frontend *fe,
				       uint32_t offset, const void *buf,
				       uint32_t len)
{
	struct vhost_user_msg m = {0};

	if (!has_protocol(fe, VHOST_USER_PROTOCOL_F_CONFIG))
		return -EOPNOTSUPP;
	if (len == 0 || len > VHOST_USER_MAX_CONFIG_SIZE || !buf)
		return -EINVAL;
	m.payload.config.offset = offset;
	m.payload.config.size = len;
	m.payload.config.flags = VHOST_USER_CONFIG_FLAGS_WRITABLE;
	memcpy(m.payload.config.region, buf, len);
	return fe_request(fe, VHOST_USER_SET_CONFIG, &m,
			  VHOST_USER_CONFIG_HDR_SIZE + len, NULL, 0, false, 0);
}

int vdk_vhost_user_frontend_set_vring_num(struct vdk_vhost_user_frontend *fe,
					  uint32_t index, uint32_t num)
{
	return fe_state(fe, VHOST_USER_SET_VRING_NUM, index, num);
}

int vdk_vhost_user_frontend_set_vring_addr(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, uint64_t desc,
					   uint64_t avail, uint64_t used)
{
	struct vhost_user_msg m = {.payload.addr = {
					   .index = index,
					   .desc_user_addr = desc,
					   .used_user_addr = used,
					   .avail_user_addr = avail,
				   }};

	if (index > VHOST_USER_VRING_IDX_MASK)
		return -EINVAL;
	return fe_request(fe, VHOST_USER_SET_VRING_ADDR, &m,
			  sizeof(struct vhost_vring_addr), NULL, 0, false, 0);
}

int vdk_vhost_user_frontend_set_vring_base(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, uint32_t base)
{
	return fe_state(fe, VHOST_USER_SET_VRING_BASE, index, base);
}

int vdk_vhost_user_frontend_get_vring_base(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, uint32_t *base)
{
	struct vhost_user_msg m = {.payload.state = {.index = index}};
	int ret;

	if (index > VHOST_USER_VRING_IDX_MASK)
		return -EINVAL;
	ret = fe_request(fe, VHOST_USER_GET_VRING_BASE, &m,
			 sizeof(struct vhost_vring_state), NULL, 0, true,
			 sizeof(struct vhost_vring_state));
	if (ret < 0)
		return ret;
	if (m.payload.state.index != index)
		return fe_broken(fe, VHOST_USER_GET_VRING_BASE,
				 "reply for another ring");
	*base = m.payload.state.num;
	return 0;
}

/* SET_VRING_KICK / SET_VRING_CALL: u64 index, the fd alongside. */
static int fe_vring_fd(struct vdk_vhost_user_frontend *fe, uint32_t request,
		       uint32_t index, int fd)
{
	if (index > VHOST_USER_VRING_IDX_MASK)
		return -EINVAL;
	if (fd < 0)
		return fe_u64(fe, request, index | VHOST_USER_VRING_NOFD_MASK,
			      NULL, 0);
	return fe_u64(fe, request, index, &fd, 1);
}

int vdk_vhost_user_frontend_set_vring_kick(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, int fd)
{
	return fe_vring_fd(fe, VHOST_USER_SET_VRING_KICK, index, fd);
}

int vdk_vhost_user_frontend_set_vring_call(struct vdk_vhost_user_frontend *fe,
					   uint32_t index, int fd)
{
	return fe_vring_fd(fe, VHOST_USER_SET_VRING_CALL, index, fd);
}

int vdk_vhost_user_frontend_set_vring_enable(struct vdk_vhost_user_frontend *fe,
					     uint32_t index, bool enable)
{
	return fe_state(fe, VHOST_USER_SET_VRING_ENABLE, index, enable ? 1 : 0);
}

int vdk_vhost_user_frontend_set_backend_req_fd(
	struct vdk_vhost_user_frontend *fe, int fd)
{
	struct vhost_user_msg m = {0};

	if (fd < 0)
		return -EINVAL;
	if (!has_protocol(fe, VHOST_USER_PROTOCOL_F_BACKEND_REQ))
		return -EOPNOTSUPP;
	/* No payload, as QEMU sends it: the fd is the message. */
	return fe_request(fe, VHOST_USER_SET_BACKEND_REQ_FD, &m, 0, &fd, 1,
			  false, 0);
}

int vdk_vhost_user_frontend_socket(const struct vdk_vhost_user_frontend *fe)
{
	return fe->sock;
}

int vdk_vhost_user_frontend_get_inflight_fd(struct vdk_vhost_user_frontend *fe,
					    uint16_t num_queues,
					    uint16_t queue_size, int *fd,
					    uint64_t *mmap_size,
					    uint64_t *mmap_offset)
{
	struct vhost_user_msg m = {
		.payload.inflight = {.num_queues = num_queues,
				     .queue_size = queue_size}};
	uint32_t size = (uint32_t)sizeof(struct vhost_user_inflight);
	int got = -1, ret;

	if (!has_protocol(fe, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
		return -EOPNOTSUPP;
	if (num_queues == 0 || queue_size == 0)
		return -EINVAL;
	if (fe->broken)
		return -EIO;
	m.hdr.request = VHOST_USER_GET_INFLIGHT_FD;
	m.hdr.flags = VHOST_USER_VERSION;
	m.hdr.size = size;
	ret = fe_send(fe, &m, NULL, 0);
	if (ret < 0)
		return ret;
	ret = fe_recv_reply_fd(fe, VHOST_USER_GET_INFLIGHT_FD, &m.payload, size,
			       &got);
	if (ret == 0 && (got < 0 || m.payload.inflight.mmap_size == 0)) {
		/* mmap_size 0: the back-end has no inflight region */
		ret = -EIO;
		vdk_log(VDK_LOG_WARN, MODULE,
			"GET_INFLIGHT_FD: back-end gave no inflight region");
	}
	if (ret < 0) {
		if (got >= 0)
			close(got);
		return ret;
	}
	*fd = got;
	*mmap_size = m.payload.inflight.mmap_size;
	*mmap_offset = m.payload.inflight.mmap_offset;
	return 0;
}

int vdk_vhost_user_frontend_set_inflight_fd(struct vdk_vhost_user_frontend *fe,
					    int fd, uint64_t mmap_size,
					    uint64_t mmap_offset,
					    uint16_t num_queues,
					    uint16_t queue_size)
{
	struct vhost_user_msg m = {
		.payload.inflight = {.mmap_size = mmap_size,
				     .mmap_offset = mmap_offset,
				     .num_queues = num_queues,
				     .queue_size = queue_size}};

	if (!has_protocol(fe, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
		return -EOPNOTSUPP;
	if (fd < 0)
		return -EINVAL;
	return fe_request(fe, VHOST_USER_SET_INFLIGHT_FD, &m,
			  (uint32_t)sizeof(struct vhost_user_inflight), &fd, 1,
			  false, 0);
}
