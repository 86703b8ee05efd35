// SPDX-License-Identifier: Apache-2.0
/*
 * Back-end device state transfer (QEMU docs/interop/vhost-user.rst,
 * VHOST_USER_SET_DEVICE_STATE_FD / VHOST_USER_CHECK_DEVICE_STATE,
 * VHOST_USER_PROTOCOL_F_DEVICE_STATE; "Migrating back-end state"), and the
 * GET_SHMEM_CONFIG answer.
 *
 * The state is the backend's snapshot (struct vdk_vhost_user_backend_ops
 * snapshot / restore) as CBOR bytes. Only the "stopped" phase exists: every
 * ring is stopped. SET_DEVICE_STATE_FD takes the front-end's fd:
 *   - save: the snapshot is taken at once on the control thread, and a
 *     worker thread writes it into the fd, then closes the fd (end of
 *     state for the front-end's reader);
 *   - load: a worker reads the fd until end of file (at most
 *     VDK_VHOST_USER_MAX_STATE bytes).
 * The worker never touches the backend, so a front-end that does not read
 * (or write) its end cannot block the protocol socket: only the worker
 * waits. CHECK_DEVICE_STATE waits (bounded) for the worker, then for a load
 * decodes the bytes and calls restore() on the control thread, and answers
 * 0 or 1. A worker still running at RESET_DEVICE, a new SET_DEVICE_STATE_FD
 * or the end of the connection is cancelled through an eventfd and joined:
 * the worker waits only in poll() (xfer_io() never lets a read or write
 * wait), so the join is bounded by one chunk's copy. The loaded bytes are
 * decoded by the bounded vdk_snapshot_load(); CHECK_DEVICE_STATE of a load
 * is refused (-EBUSY) while a ring is started.
 *
 * The back-end never offers an fd of its own (reply bit 8 set).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../snapshot.h"
#include "internal.h"

/* Bytes moved per write; a pipe takes PIPE_BUF once poll says POLLOUT. */
#define XFER_CHUNK 4096u
/* How long CHECK_DEVICE_STATE waits for the worker. */
#define CHECK_TIMEOUT_S 5

int vu_state_xfer_init(struct vu_state_xfer *x)
{
	pthread_condattr_t attr;

	memset(x, 0, sizeof(*x));
	x->fd = -1;
	x->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (x->cancel_fd < 0)
		return -errno;
	pthread_mutex_init(&x->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&x->cond, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

void vu_state_xfer_stop(struct vu_state_xfer *x)
{
	uint64_t v;

	if (x->thread_running) {
		const uint64_t one = 1;

		(void)!write(x->cancel_fd, &one, sizeof(one));
		pthread_join(x->thread, NULL);
		x->thread_running = false;
		(void)!read(x->cancel_fd, &v, sizeof(v));
	}
	vu_close_fd(&x->fd);
	free(x->buf);
	x->buf = NULL;
	x->len = x->cap = 0;
	x->done = false;
	x->result = 0;
	x->active = false;
}

void vu_state_xfer_fini(struct vu_state_xfer *x)
{
	vu_state_xfer_stop(x);
	vu_close_fd(&x->cancel_fd);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
}

/* Wait until the transfer fd is ready for @events (or reports an error or
 * hang-up, which the following read/write turns into a result). */
static int xfer_wait(struct vu_state_xfer *x, short events)
{
	for (;;) {
		struct pollfd p[2] = {
			{.fd = x->fd, .events = events},
			{.fd = x->cancel_fd, .events = POLLIN},
		};
		int n = poll(p, 2, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (p[1].revents)
			return -ECANCELED;
		if (p[0].revents & POLLNVAL)
			return -EBADF;
		return 0;
	}
}

/*
 * Move bytes without ever waiting in the kernel: the fd is the front-end's
 * (its flags are not ours to change) and may be anything. RWF_NOWAIT makes
 * pipes, sockets (even with SO_RCVLOWAT), eventfd reads and /dev/null
 * answer EAGAIN instead of waiting. Where the kernel refuses the flag
 * (EOPNOTSUPP: regular files and memfds, character devices, eventfd
 * writes, and pipes before Linux 6.x):
 *   - a socket is read and written with MSG_DONTWAIT;
 *   - a pipe is reopened through /proc/self/fd with O_NONBLOCK: a new open
 *     file description of the same pipe, with flags of our own (it
 *     replaces the received fd, so closing it still ends the state);
 *   - a regular file, or a file the front-end made non-blocking, gets
 *     plain I/O;
 *   - anything else is refused (-EOPNOTSUPP).
 * So the worker only ever waits in poll(), which the cancel eventfd ends.
 */
static ssize_t xfer_io(struct vu_state_xfer *x, void *buf, size_t len,
		       bool save)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	char path[40];
	struct stat st;
	ssize_t n;
	int fl, fd;

	n = save ? pwritev2(x->fd, &iov, 1, -1, RWF_NOWAIT)
		 : preadv2(x->fd, &iov, 1, -1, RWF_NOWAIT);
	if (n >= 0 || errno != EOPNOTSUPP)
		return n;
	if (fstat(x->fd, &st) < 0 || (fl = fcntl(x->fd, F_GETFL)) < 0)
		return -1;
	if (S_ISSOCK(st.st_mode))
		return save ? send(x->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
			    : recv(x->fd, buf, len, MSG_DONTWAIT);
	if (S_ISFIFO(st.st_mode) && !(fl & O_NONBLOCK)) {
		(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", x->fd);
		fd = open(path, (save ? O_WRONLY : O_RDONLY) | O_NONBLOCK |
					O_CLOEXEC);
		if (fd < 0) {
			errno = EOPNOTSUPP;
			return -1;
		}
		close(x->fd);
		x->fd = fd;
		fl |= O_NONBLOCK;
	}
	if (!S_ISREG(st.st_mode) && !(fl & O_NONBLOCK)) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return save ? write(x->fd, buf, len) : read(x->fd, buf, len);
}

static int xfer_save(struct vu_state_xfer *x)
{
	size_t off = 0;

	while (off < x->len) {
		size_t want = x->len - off;
		int ret = xfer_wait(x, POLLOUT);

		if (ret < 0)
			return ret;
		ssize_t n =
			xfer_io(x, x->buf + off,
				want < XFER_CHUNK ? want : XFER_CHUNK, true);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		off += (size_t)n;
	}
	return 0;
}

static int xfer_load(struct vu_state_xfer *x)
{
	for (;;) {
		if (x->len == x->cap) {
			size_t cap = x->cap ? x->cap * 2 : XFER_CHUNK;
			uint8_t *buf;

			if (x->cap > VDK_VHOST_USER_MAX_STATE)
				return -EFBIG;
			buf = realloc(x->buf, cap);
			if (!buf)
				return -ENOMEM;
			x->buf = buf;
			x->cap = cap;
		}
		int ret = xfer_wait(x, POLLIN);
		if (ret < 0)
			return ret;
		ssize_t n = xfer_io(x, x->buf + x->len, x->cap - x->len, false);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0; /* end of the state */
		x->len += (size_t)n;
		if (x->len > VDK_VHOST_USER_MAX_STATE)
			return -EFBIG;
	}
}

static void *xfer_worker(void *arg)
{
	struct vu_state_xfer *x = arg;
	sigset_t pipe_set;
	int ret;

	/* Writing to a pipe whose reader left raises SIGPIPE in the writing
	 * thread: keep it pending here and take EPIPE instead. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

	ret = x->direction == VHOST_TRANSFER_STATE_DIRECTION_SAVE
		      ? xfer_save(x)
		      : xfer_load(x);
	/* Closing our end is the end of the state for a reader. */
	vu_close_fd(&x->fd);
	if (ret == -EPIPE) {
		const struct timespec none = {0, 0};

		(void)sigtimedwait(&pipe_set, NULL, &none);
	}
	pthread_mutex_lock(&x->lock);
	x->result = ret;
	x->done = true;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

int vu_set_device_state_fd(struct vdk_vhost_user *vu, struct vu_msg *msg,
			   struct vu_reply *reply)
{
	struct vhost_user_transfer_device_state p = msg->payload.transfer_state;
	struct vu_state_xfer *x = &vu->xfer;
	int ret;

	if (p.phase != VHOST_TRANSFER_STATE_PHASE_STOPPED ||
	    (p.direction != VHOST_TRANSFER_STATE_DIRECTION_SAVE &&
	     p.direction != VHOST_TRANSFER_STATE_DIRECTION_LOAD))
		return -EINVAL;
	if (!vu->ops->snapshot || !vu->ops->restore)
		return -EOPNOTSUPP;
	if (vu_any_ring_started(vu))
		return -EBUSY; /* phase "stopped": every ring stopped */
	vu_state_xfer_stop(x); /* one never checked */
	x->direction = p.direction;
	if (x->direction == VHOST_TRANSFER_STATE_DIRECTION_SAVE) {
		cbor_item_t *item = NULL;
		unsigned char *buf = NULL;
		size_t cap = 0;

		ret = vu->ops->snapshot(vu->be, &item);
		if (ret < 0)
			return ret;
		if (!item)
			return -EIO;
		x->len = cbor_serialize_alloc(item, &buf, &cap);
		cbor_decref(&item);
		if (x->len == 0) {
			free(buf);
			return -ENOMEM;
		}
		x->buf = buf;
		x->cap = cap;
	}
	x->fd = msg->fds[0];
	msg->fds[0] = -1;
	ret = -pthread_create(&x->thread, NULL, xfer_worker, x);
	if (ret < 0) {
		vu_state_xfer_stop(x);
		return ret;
	}
	x->thread_running = true;
	x->active = true;
	/* Success, and the back-end uses the front-end's fd (no fd back). */
	reply->payload.u64 = VHOST_USER_VRING_NOFD_MASK;
	reply->size = sizeof(reply->payload.u64);
	return 0;
}

/* Wait for the worker; -ETIMEDOUT if it is still busy after the timeout. */
static int xfer_finish(struct vu_state_xfer *x)
{
	struct timespec deadline;
	bool done;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += CHECK_TIMEOUT_S;
	pthread_mutex_lock(&x->lock);
	while (!x->done && ret == 0)
		ret = -pthread_cond_timedwait(&x->cond, &x->lock, &deadline);
	/* read under the lock: the worker sets it */
	done = x->done;
	if (done)
		ret = x->result;
	pthread_mutex_unlock(&x->lock);
	if (ret == 0 || done) {
		pthread_join(x->thread, NULL);
		x->thread_running = false;
	}
	return ret;
}

/* Untrusted bytes: the bounded loader (src/snapshot.h), never cbor_load(). */
static int load_state(struct vdk_vhost_user *vu, const uint8_t *buf, size_t len)
{
	cbor_item_t *item = NULL;
	int ret;

	if (len == 0)
		return -ENODATA;
	ret = vdk_snapshot_load(buf, len, &item);
	if (ret < 0)
		return ret;
	ret = vu->ops->restore(vu->be, item);
	cbor_decref(&item);
	return ret;
}

int vu_check_device_state(struct vdk_vhost_user *vu, struct vu_msg *msg,
			  struct vu_reply *reply)
{
	struct vu_state_xfer *x = &vu->xfer;
	int ret;

	(void)msg;
	if (!x->active)
		return -ENOENT; /* no transfer to check */
	/* Phase "stopped": a ring started since SET_DEVICE_STATE_FD runs the
	 * device; loading state under it would stop it. Refused; the loaded
	 * bytes wait for a check once every ring is stopped again. */
	if (x->direction == VHOST_TRANSFER_STATE_DIRECTION_LOAD &&
	    vu_any_ring_started(vu)) {
		vdk_log(VDK_LOG_ERROR, VU_LOG,
			"CHECK_DEVICE_STATE refused: a ring was started "
			"after SET_DEVICE_STATE_FD (load)");
		return -EBUSY;
	}
	ret = xfer_finish(x);
	if (ret == 0 && x->direction == VHOST_TRANSFER_STATE_DIRECTION_LOAD)
		ret = load_state(vu, x->buf, x->len);
	vu_state_xfer_stop(x);
	if (ret < 0)
		return ret;
	reply->payload.u64 = 0;
	reply->size = sizeof(reply->payload.u64);
	return 0;
}

/* VIRTIO shared memory regions: vdk devices have none. */
int vu_get_shmem_config(struct vdk_vhost_user *vu, struct vu_msg *msg,
			struct vu_reply *reply)
{
	(void)vu;
	(void)msg;
	memset(&reply->payload.shmem, 0, sizeof(reply->payload.shmem));
	reply->size = sizeof(reply->payload.shmem);
	return 0;
}
