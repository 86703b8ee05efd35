// SPDX-License-Identifier: Apache-2.0
/*
 * vhost-user wire format: reading messages and their file descriptors
 * (SCM_RIGHTS) without blocking, the request table, the checks every request
 * passes before its handler runs, and replies (QEMU docs/interop/
 * vhost-user.rst, "Message Specification", "Communication", "REPLY_ACK").
 *
 * Do not assume that received fields contain sensible values: the front-end
 * is another process and may be hostile. The dispatcher checks, once for
 * every request, the header (version, size ≤ VDK_VHOST_USER_MAX_PAYLOAD),
 * the payload size against the table, the number of fds, the negotiated
 * features the request depends on and the queue index; handlers only check
 * what is particular to their payload. Every fd that arrives and is not
 * taken by a handler is closed here.
 *
 * Also here, as the other halves of the socket I/O: the back-end channel
 * (VHOST_USER_SET_BACKEND_REQ_FD: messages the back-end sends, and their
 * acks). The connection's place on an event loop is connection_loop.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define PF(bit) (1ull << (bit))

/* One row per request: id, handler, payload bytes (min, max), fds (min,
 * max), where the queue index is, then the row's flags. Requests vdk does
 * not serve (yet) have no row; logs still name them (the spec's names). */
#define REQ(id, fn, smin, smax, fmin, fmax, idx, ...)                          \
	[id] = {.handler = fn,                                                 \
		.min_size = smin,                                              \
		.max_size = smax,                                              \
		.min_fds = fmin,                                               \
		.max_fds = fmax,                                               \
		.index = idx,                                                  \
		__VA_ARGS__}

#define U64	     sizeof(uint64_t)
#define STATE	     sizeof(struct vhost_vring_state)
#define ADDR	     sizeof(struct vhost_vring_addr)
#define MEMORY_MIN   offsetof(struct vhost_user_memory, regions)
#define MEMORY	     sizeof(struct vhost_user_memory)
#define MEM_REG	     sizeof(struct vhost_user_mem_reg_msg)
#define CFG_MIN	     VHOST_USER_CONFIG_HDR_SIZE
#define CFG_MAX	     sizeof(struct vhost_user_config)
#define NONE	     VU_INDEX_NONE
#define U32	     VU_INDEX_U32
#define FILE_IDX     VU_INDEX_FILE
#define INFLIGHT_MIN VHOST_USER_INFLIGHT_SPEC_SIZE
#define INFLIGHT_MAX sizeof(struct vhost_user_inflight)
#define STATE_PARAMS sizeof(struct vhost_user_transfer_device_state)
#define REPLIES	     .replies = true
#define NEEDS(bit)   .needs_protocol = PF(VHOST_USER_PROTOCOL_F_##bit)
/* A request that must be answered even when it fails: @size bytes of
 * zeros, or the u64 @val. */
#define ERR_REPLY(size, val)                                                   \
	.error_reply = true, .error_size = size, .error_u64 = val
/* SET_DEVICE_STATE_FD failed: error code 1, no fd (bit 8) */
#define STATE_FD_FAILED (1ull | VHOST_USER_VRING_NOFD_MASK)

/* clang-format off */
static const struct vu_request vu_requests[VHOST_USER_MAX] = {
	REQ(VHOST_USER_GET_FEATURES,	vu_get_features,	0, 0,		0, 0, NONE, REPLIES),
	REQ(VHOST_USER_SET_FEATURES,	vu_set_features,	U64, U64,	0, 0, NONE),
	REQ(VHOST_USER_SET_OWNER,	vu_set_owner,		0, 0,		0, 0, NONE),
	REQ(VHOST_USER_RESET_OWNER,	vu_reset_owner,		0, 0,		0, 0, NONE),
	/* fds: exactly nregions, checked by the handler against the payload */
	REQ(VHOST_USER_SET_MEM_TABLE,	vu_set_mem_table,	MEMORY_MIN, MEMORY,	0, VHOST_MEMORY_BASELINE_NREGIONS, NONE),
	REQ(VHOST_USER_SET_VRING_NUM,	vu_set_vring_num,	STATE, STATE,	0, 0, U32),
	REQ(VHOST_USER_SET_VRING_ADDR,	vu_set_vring_addr,	ADDR, ADDR,	0, 0, U32),
	REQ(VHOST_USER_SET_VRING_BASE,	vu_set_vring_base,	STATE, STATE,	0, 0, U32),
	REQ(VHOST_USER_GET_VRING_BASE,	vu_get_vring_base,	STATE, STATE,	0, 0, U32, REPLIES),
	/* kick/call/err: one fd, or none with VHOST_USER_VRING_NOFD_MASK */
	REQ(VHOST_USER_SET_VRING_KICK,	vu_set_vring_kick,	U64, U64,	0, 1, FILE_IDX),
	REQ(VHOST_USER_SET_VRING_CALL,	vu_set_vring_call,	U64, U64,	0, 1, FILE_IDX),
	REQ(VHOST_USER_SET_VRING_ERR,	vu_set_vring_err,	U64, U64,	0, 1, FILE_IDX),
	REQ(VHOST_USER_GET_PROTOCOL_FEATURES, vu_get_protocol_features, 0, 0,	0, 0, NONE, REPLIES),
	REQ(VHOST_USER_SET_PROTOCOL_FEATURES, vu_set_protocol_features, U64, U64, 0, 0, NONE),
	REQ(VHOST_USER_GET_QUEUE_NUM,	vu_get_queue_num,	0, 0,		0, 0, NONE, REPLIES),
	REQ(VHOST_USER_SET_VRING_ENABLE, vu_set_vring_enable,	STATE, STATE,	0, 0, U32, .needs_vu_protocol = true),
	REQ(VHOST_USER_SET_BACKEND_REQ_FD, vu_set_backend_req_fd, 0, 0,	1, 1, NONE, NEEDS(BACKEND_REQ)),
	/* spec: a zero-length payload reports the error */
	REQ(VHOST_USER_GET_CONFIG,	vu_get_config,		CFG_MIN, CFG_MAX, 0, 0, NONE, REPLIES, ERR_REPLY(0, 0), NEEDS(CONFIG)),
	REQ(VHOST_USER_SET_CONFIG,	vu_set_config,		CFG_MIN, CFG_MAX, 0, 0, NONE, NEEDS(CONFIG)),
	/* error: mmap_size 0, which front-ends read as "no inflight region" */
	REQ(VHOST_USER_GET_INFLIGHT_FD,	vu_get_inflight_fd,	INFLIGHT_MIN, INFLIGHT_MAX, 0, 0, NONE, REPLIES, ERR_REPLY(INFLIGHT_MAX, 0), NEEDS(INFLIGHT_SHMFD)),
	REQ(VHOST_USER_SET_INFLIGHT_FD,	vu_set_inflight_fd,	INFLIGHT_MIN, INFLIGHT_MAX, 1, 1, NONE, NEEDS(INFLIGHT_SHMFD)),
	REQ(VHOST_USER_RESET_DEVICE,	vu_reset_device,	0, 0,		0, 0, NONE, NEEDS(RESET_DEVICE)),
	REQ(VHOST_USER_GET_MAX_MEM_SLOTS, vu_get_max_mem_slots,	0, 0,		0, 0, NONE, REPLIES, NEEDS(CONFIGURE_MEM_SLOTS)),
	REQ(VHOST_USER_ADD_MEM_REG,	vu_add_mem_reg,		MEM_REG, MEM_REG, 1, 1, NONE, NEEDS(CONFIGURE_MEM_SLOTS)),
	/* the spec lets a back-end accept (and close) one stray fd here */
	REQ(VHOST_USER_REM_MEM_REG,	vu_rem_mem_reg,		MEM_REG, MEM_REG, 0, 1, NONE, NEEDS(CONFIGURE_MEM_SLOTS)),
	REQ(VHOST_USER_SET_DEVICE_STATE_FD, vu_set_device_state_fd, STATE_PARAMS, STATE_PARAMS, 1, 1, NONE, REPLIES, ERR_REPLY(U64, STATE_FD_FAILED), NEEDS(DEVICE_STATE)),
	REQ(VHOST_USER_CHECK_DEVICE_STATE, vu_check_device_state, 0, 0,	0, 0, NONE, REPLIES, ERR_REPLY(U64, 1), NEEDS(DEVICE_STATE)),
	/* answered without VHOST_USER_PROTOCOL_F_SHMEM: zero regions */
	REQ(VHOST_USER_GET_SHMEM_CONFIG, vu_get_shmem_config,	0, 0,		0, 0, NONE, REPLIES),
};
/* clang-format on */

const struct vu_request *vu_request_lookup(uint32_t request)
{
	if (request >= VHOST_USER_MAX || !vu_requests[request].handler)
		return NULL;
	return &vu_requests[request];
}

const char *vdk_vhost_user_request_name(uint32_t request)
{
	const char *name = vhost_user_request_str(request);

	return name ? name : "unknown";
}

uint64_t vu_supported_protocol_features(void)
{
	return PF(VHOST_USER_PROTOCOL_F_MQ) |
	       PF(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
	       PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |
	       PF(VHOST_USER_PROTOCOL_F_CONFIG) |
	       PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
	       PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE) |
	       PF(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
	       PF(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
}

/*
 * The rule for ring notification fds (call, kick, error; see "File
 * descriptors the front-end chooses" in <vdk/vhost_user.h>): an eventfd
 * with O_NONBLOCK set. Only such a file answers a read with EAGAIN and a
 * write with EAGAIN instead of waiting: a pipe or socket can be full, a
 * socket with SO_RCVLOWAT is readable to poll() yet blocks read(), a
 * blocking eventfd waits at a full or empty counter. An eventfd cannot be
 * reopened with flags of our own (its /proc/self/fd link gives ENXIO) and
 * RWF_NOWAIT does not apply to eventfd writes (EOPNOTSUPP up to at least
 * Linux 6.18), so the flag must be the front-end's. It is named through
 * /proc/self/fd ("anon_inode:[eventfd]"); without /proc, any anonymous
 * inode (eventfd, timerfd, signalfd, ...: none blocks when non-blocking).
 */
int vu_check_notify_fd(int fd, const char *what, uint16_t queue)
{
	char path[40], link[64];
	struct stat st;
	ssize_t n;
	int fl;

	if (fstat(fd, &st) < 0 || (fl = fcntl(fd, F_GETFL)) < 0)
		return -EBADF;
	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n >= 0) {
		link[n] = '\0';
	} else {
		(void)snprintf(link, sizeof(link), "%s",
			       (st.st_mode & S_IFMT) ? "not an anonymous inode"
						     : "anon_inode:[eventfd]");
	}
	if (strcmp(link, "anon_inode:[eventfd]") != 0) {
		vdk_log(VDK_LOG_ERROR, VU_LOG,
			"queue %u: %s fd refused: %s is not an eventfd", queue,
			what, link);
		return -EINVAL;
	}
	if (!(fl & O_NONBLOCK)) {
		vdk_log(VDK_LOG_ERROR, VU_LOG,
			"queue %u: %s fd refused: a blocking eventfd (the "
			"front-end must create it with EFD_NONBLOCK)",
			queue, what);
		return -EINVAL;
	}
	return 0;
}

void vu_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void rx_discard(struct vu_rx *rx)
{
	for (size_t i = 0; i < rx->msg.nfds; i++)
		vu_close_fd(&rx->msg.fds[i]);
	rx->msg.nfds = 0;
	rx->have = 0;
	rx->fd_overflow = false;
}

static int vu_fatal(struct vdk_vhost_user *vu, int err, const char *why)
{
	if (!vu->broken)
		vdk_log(err == -ENOTCONN ? VDK_LOG_INFO : VDK_LOG_ERROR, VU_LOG,
			"connection ended: %s", why);
	vu->broken = true;
	rx_discard(&vu->rx);
	return err;
}

/*
 * A front-end that leaves right after GET_QUEUE_NUM has most likely refused
 * the device's queue count (QEMU: "The maximum number of queues supported
 * by the backend is N" when its num-queues, by default the vCPU count for
 * vhost-user-blk-pci, is larger). Say so on this side too, so that the
 * backend's log alone explains the disconnect.
 */
static void queue_num_refused(const struct vdk_vhost_user *vu)
{
	if (vu->broken || vu->last_request != VHOST_USER_GET_QUEUE_NUM)
		return;
	vdk_log(VDK_LOG_ERROR, VU_LOG,
		"the front-end disconnected right after asking the number of "
		"queues (%u): it probably wants more; configure it with at "
		"most %u (QEMU: num-queues=%u) or give the backend more "
		"queues",
		vu->num_queues, vu->num_queues, vu->num_queues);
}

/* Take the fds of every SCM_RIGHTS message; keep at most VHOST_USER_MAX_FDS
 * per vhost-user message and close the rest. */
static void rx_take_fds(struct vu_rx *rx, struct msghdr *mh)
{
	if (mh->msg_flags & MSG_CTRUNC)
		rx->fd_overflow = true; /* the kernel dropped some */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *data = CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, data + i * sizeof(int), sizeof(fd));
			if (rx->msg.nfds < VHOST_USER_MAX_FDS) {
				rx->msg.fds[rx->msg.nfds++] = fd;
			} else {
				close(fd);
				rx->fd_overflow = true;
			}
		}
	}
}

/* One non-blocking read of up to @len bytes at @buf. Return bytes read, 0 at
 * end of stream, -EAGAIN, or -errno. */
static ssize_t rx_read(struct vu_rx *rx, int sock, void *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;

	do {
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	rx_take_fds(rx, &mh);
	return n;
}

static int vu_send_reply(struct vdk_vhost_user *vu, uint32_t request,
			 const void *payload, uint32_t size, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct vhost_user_header hdr = {
		.request = request,
		.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK,
		.size = size,
	};
	struct iovec iov[2] = {
		{.iov_base = &hdr, .iov_len = sizeof(hdr)},
		{.iov_base = (void *)payload, .iov_len = size},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = size ? 2 : 1};
	ssize_t n;

	if (vdk_log_enabled(VDK_LOG_DEBUG)) { /* the message trace */
		char detail[40] = "";
		uint64_t v;

		if (size == sizeof(v)) {
			memcpy(&v, payload, sizeof(v));
			snprintf(detail, sizeof(detail), " 0x%016llx",
				 (unsigned long long)v);
		}
		vdk_log(VDK_LOG_DEBUG, VU_LOG, "-> %s reply, size %u%s",
			vdk_vhost_user_request_name(request), size, detail);
	}

	if (fd >= 0) {
		/* zeroed: the cmsg padding goes to the peer too */
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/* A reply is a few hundred bytes; a front-end that does not read its
	 * replies gets a broken connection rather than a blocked back-end. */
	do {
		n = sendmsg(vu->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(sizeof(hdr) + size))
		return -EIO;
	return 0;
}

/* A ring index beyond the device's queues: the front-end was configured
 * with more queues than the device has. Say so plainly, once. */
static int too_many_queues(struct vdk_vhost_user *vu, uint32_t index)
{
	VDK_LOG_RL(&vu->rl, VDK_LOG_ERROR, VU_LOG,
		   "the front-end uses queue %u but the device has %u "
		   "queue(s): configure the front-end with at most %u "
		   "(QEMU: num-queues=%u) or give the device more",
		   index, vu->num_queues, vu->num_queues, vu->num_queues);
	return -ERANGE;
}

/* The checks every request passes before its handler runs. */
static int vu_check(struct vdk_vhost_user *vu, const struct vu_request *row,
		    const struct vu_msg *msg, const struct vu_rx *rx)
{
	uint32_t size = msg->hdr.size;

	if (msg->hdr.flags &
	    ~(VHOST_USER_VERSION_MASK | VHOST_USER_NEED_REPLY_MASK))
		return -EINVAL;
	if (size < row->min_size || size > row->max_size)
		return -EINVAL;
	if (rx->fd_overflow || msg->nfds < row->min_fds ||
	    msg->nfds > row->max_fds)
		return -EINVAL;
	/* Negotiated: offered in GET_FEATURES and the protocol features
	 * set; QEMU sends SET_VRING_ENABLE before its SET_FEATURES. */
	if (row->needs_vu_protocol && !vu->protocol_negotiated &&
	    !(vu->acked_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		return -EOPNOTSUPP;
	if ((vu->acked_protocol_features & row->needs_protocol) !=
	    row->needs_protocol)
		return -EOPNOTSUPP;

	switch (row->index) {
	case VU_INDEX_NONE:
		break;
	case VU_INDEX_U32:
		if (msg->payload.state.index >= vu->num_queues)
			return too_many_queues(vu, msg->payload.state.index);
		break;
	case VU_INDEX_FILE: {
		uint64_t v = msg->payload.u64;
		bool nofd = v & VHOST_USER_VRING_NOFD_MASK;

		if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK |
				    VHOST_USER_VRING_NOFD_MASK))
			return -EINVAL;
		if ((v & VHOST_USER_VRING_IDX_MASK) >= vu->num_queues)
			return too_many_queues(
				vu, (uint32_t)(v & VHOST_USER_VRING_IDX_MASK));
		if (msg->nfds != (nofd ? 0u : 1u))
			return -EINVAL;
		break;
	}
	}
	return 0;
}

/* The message trace (debug level, so a front-end mismatch can be diagnosed
 * from the backend's log alone): the request's name, its queue index and
 * the value it carries, as checked by vu_check(). Control path only. */
static void vu_trace(const struct vu_request *row, const struct vu_msg *msg,
		     const char *name)
{
	char detail[80] = "";

	if (!vdk_log_enabled(VDK_LOG_DEBUG))
		return;
	if (row && row->index == VU_INDEX_U32 &&
	    msg->hdr.size >= sizeof(msg->payload.state))
		snprintf(detail, sizeof(detail), " queue %u num %u",
			 msg->payload.state.index, msg->payload.state.num);
	else if (row && row->index == VU_INDEX_FILE)
		snprintf(detail, sizeof(detail), " queue %u%s",
			 (unsigned)(msg->payload.u64 &
				    VHOST_USER_VRING_IDX_MASK),
			 msg->payload.u64 & VHOST_USER_VRING_NOFD_MASK
				 ? " no fd"
				 : "");
	else if ((msg->hdr.request == VHOST_USER_SET_FEATURES ||
		  msg->hdr.request == VHOST_USER_SET_PROTOCOL_FEATURES) &&
		 msg->hdr.size >= sizeof(uint64_t))
		snprintf(detail, sizeof(detail), " 0x%016llx",
			 (unsigned long long)msg->payload.u64);
	vdk_log(VDK_LOG_DEBUG, VU_LOG, "<- %s (%u) size %u, %zu fd(s)%s", name,
		msg->hdr.request, msg->hdr.size, msg->nfds, detail);
}

/* Check and handle one complete message, send its reply, close the fds no
 * handler took. */
static int vu_dispatch(struct vdk_vhost_user *vu)
{
	struct vu_msg *msg = &vu->rx.msg;
	const struct vu_request *row = vu_request_lookup(msg->hdr.request);
	const char *name = vdk_vhost_user_request_name(msg->hdr.request);
	bool ack = (msg->hdr.flags & VHOST_USER_NEED_REPLY_MASK) &&
		   (vu->acked_protocol_features &
		    PF(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	struct vu_reply reply = {.size = 0, .fd = -1};

	vu->messages++;
	vu->last_request = msg->hdr.request;
	int ret, sent;

	/* Handlers see zeros, never an earlier message, past the payload. */
	if (msg->hdr.size < sizeof(struct vhost_user_config))
		memset(msg->payload.bytes + msg->hdr.size, 0,
		       sizeof(struct vhost_user_config) - msg->hdr.size);
	vu_trace(row, msg, name);
	if (!row)
		ret = -EOPNOTSUPP;
	else
		ret = vu_check(vu, row, msg, &vu->rx);
	if (ret == 0) {
		/* A device signalling a config change from inside the handler
		 * is answered after the reply (see send_config_change). */
		vu->dispatch_thread = pthread_self();
		__atomic_store_n(&vu->in_dispatch, true, __ATOMIC_RELEASE);
		ret = row->handler(vu, msg, &reply);
		__atomic_store_n(&vu->in_dispatch, false, __ATOMIC_RELEASE);
	}
	if (ret < 0)
		VDK_LOG_RL(&vu->rl, VDK_LOG_WARN, VU_LOG,
			   "%s (%u, size %u, %zu fds) refused: %s", name,
			   msg->hdr.request, msg->hdr.size, msg->nfds,
			   strerror(-ret));

	/* Close every fd no handler kept (handlers set theirs to -1). */
	rx_discard(&vu->rx);

	if (row && row->replies) {
		if (ret < 0 && row->error_reply) {
			vu_close_fd(&reply.fd);
			memset(&reply.payload, 0, sizeof(reply.payload));
			reply.payload.u64 = row->error_u64;
			reply.size = row->error_size;
		} else if (ret < 0) {
			/* The front-end waits for an answer we cannot give. */
			return vu_fatal(vu, -EIO,
					"request needing a reply failed");
		}
		sent = vu_send_reply(vu, msg->hdr.request, &reply.payload,
				     reply.size, reply.fd);
		vu_close_fd(&reply.fd);
	} else if (ack) {
		uint64_t status = ret < 0 ? 1 : 0;

		sent = vu_send_reply(vu, msg->hdr.request, &status,
				     sizeof(status), -1);
	} else {
		sent = 0;
	}
	if (sent < 0)
		return vu_fatal(vu, -EIO, "cannot send reply");
	if (vu->config_change_pending) {
		vu->config_change_pending = false;
		(void)vdk_vhost_user_send_config_change(vu);
	}
	return ret < 0 ? ret : 1;
}

int vdk_vhost_user_process_message(struct vdk_vhost_user *vu)
{
	const size_t hdr_size = sizeof(struct vhost_user_header);
	struct vu_rx *rx = &vu->rx;

	if (vu->broken)
		return -EIO;
	for (;;) {
		uint8_t *buf;
		size_t want;

		if (rx->have < hdr_size) {
			buf = (uint8_t *)&rx->msg.hdr + rx->have;
			want = hdr_size - rx->have;
		} else {
			size_t got = rx->have - hdr_size;

			if (got == rx->msg.hdr.size)
				return vu_dispatch(vu);
			buf = rx->msg.payload.bytes + got;
			want = rx->msg.hdr.size - got;
		}

		ssize_t n = rx_read(rx, vu->sock, buf, want);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return vu_fatal(vu, (int)n, "socket error");
		if (n == 0) {
			if (rx->have == 0 && rx->msg.nfds == 0) {
				queue_num_refused(vu);
				return vu_fatal(vu, -ENOTCONN,
						"front-end disconnected");
			}
			return vu_fatal(vu, -EPROTO, "truncated message");
		}
		rx->have += (size_t)n;

		if (rx->have == hdr_size) {
			/* The header decides the framing: refuse it before
			 * reading a payload we could not trust. */
			const struct vhost_user_header *h = &rx->msg.hdr;

			if ((h->flags & VHOST_USER_VERSION_MASK) !=
			    VHOST_USER_VERSION)
				return vu_fatal(vu, -EPROTONOSUPPORT,
						"bad protocol version");
			if (h->size > VDK_VHOST_USER_MAX_PAYLOAD)
				return vu_fatal(vu, -EMSGSIZE,
						"payload size too large");
		}
	}
}

/* ---- back-end channel (spec "Back-end communication") ------------------ */

/* How long the back-end waits for the front-end to take a back-end message
 * and to answer it. */
#define BACKEND_TIMEOUT_MS 1000

static int ms_left(const struct timespec *deadline)
{
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000 +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

/* Wait for @events on @fd until @deadline. Return 0, -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, ms_left(deadline));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

/* Send all of @buf (@len bytes) without ever blocking past @deadline. */
static int backend_write(int fd, const uint8_t *buf, size_t len,
			 const struct timespec *deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n < 0) {
			int ret = wait_fd(fd, POLLOUT, deadline);
			if (ret < 0)
				return ret;
			continue;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly @len bytes before @deadline. */
static int backend_read(int fd, uint8_t *buf, size_t len,
			const struct timespec *deadline)
{
	while (len) {
		int ret = wait_fd(fd, POLLIN, deadline);
		if (ret < 0)
			return ret;
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPROTO; /* the front-end closed the channel */
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int vu_backend_send(struct vdk_vhost_user *vu, uint32_t request,
		    const void *payload, uint32_t size)
{
	bool ack = __atomic_load_n(&vu->acked_protocol_features,
				   __ATOMIC_RELAXED) &
		   PF(VHOST_USER_PROTOCOL_F_REPLY_ACK);
	uint8_t buf[sizeof(struct vhost_user_header) + 64];
	struct vhost_user_header hdr = {
		.request = request,
		.flags = VHOST_USER_VERSION |
			 (ack ? VHOST_USER_NEED_REPLY_MASK : 0),
		.size = size,
	};
	struct timespec deadline;
	int ret;

	if (size > sizeof(buf) - sizeof(hdr))
		return -EINVAL;
	memcpy(buf, &hdr, sizeof(hdr));
	if (size)
		memcpy(buf + sizeof(hdr), payload, size);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += BACKEND_TIMEOUT_MS / 1000;

	pthread_mutex_lock(&vu->backend_lock);
	if (vu->backend_fd < 0) {
		pthread_mutex_unlock(&vu->backend_lock);
		return -ENOTCONN;
	}
	ret = backend_write(vu->backend_fd, buf, sizeof(hdr) + size, &deadline);
	if (ret == 0 && ack) {
		/* the ack: a header and a u64 status (spec "REPLY_ACK") */
		struct vhost_user_msg r;

		ret = backend_read(vu->backend_fd, (uint8_t *)&r,
				   sizeof(r.hdr) + sizeof(r.payload.u64),
				   &deadline);
		if (ret == 0 && (r.hdr.request != request || r.hdr.size != 8 ||
				 r.hdr.flags != (VHOST_USER_VERSION |
						 VHOST_USER_REPLY_MASK)))
			ret = -EPROTO;
		else if (ret == 0 && r.payload.u64 != 0)
			ret = -EIO;
	}
	if (ret < 0 && ret != -EIO) {
		/* Part of a message may be on the wire, or an answer may
		 * still come: the framing is lost, give the channel up. */
		vdk_log(VDK_LOG_ERROR, VU_LOG,
			"back-end channel: %s: %s; closing it",
			ret == -ETIMEDOUT ? "no answer" : "broken",
			strerror(-ret));
		vu_close_fd(&vu->backend_fd);
	}
	pthread_mutex_unlock(&vu->backend_lock);
	return ret;
}

void vu_backend_close(struct vdk_vhost_user *vu)
{
	pthread_mutex_lock(&vu->backend_lock);
	vu_close_fd(&vu->backend_fd);
	pthread_mutex_unlock(&vu->backend_lock);
}

int vu_set_backend_req_fd(struct vdk_vhost_user *vu, struct vu_msg *msg,
			  struct vu_reply *reply)
{
	(void)reply;
	pthread_mutex_lock(&vu->backend_lock);
	vu_close_fd(&vu->backend_fd);
	vu->backend_fd = msg->fds[0];
	msg->fds[0] = -1;
	pthread_mutex_unlock(&vu->backend_lock);
	return 0;
}

int vdk_vhost_user_send_config_change(struct vdk_vhost_user *vu)
{
	/* Spec "Back-end message types": only with F_CONFIG negotiated. */
	if (!(__atomic_load_n(&vu->acked_protocol_features, __ATOMIC_RELAXED) &
	      PF(VHOST_USER_PROTOCOL_F_CONFIG)))
		return -EOPNOTSUPP;
	if (__atomic_load_n(&vu->in_dispatch, __ATOMIC_ACQUIRE) &&
	    pthread_equal(pthread_self(), vu->dispatch_thread)) {
		vu->config_change_pending = true;
		return 0;
	}
	return vu_backend_send(vu, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, NULL,
			       0);
}
