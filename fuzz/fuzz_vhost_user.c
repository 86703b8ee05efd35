/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the vhost-user back-end (src/vhost_user) fed a message
 * stream by a hostile front-end over a socketpair.
 *
 * Input, repeated until it runs out:
 *   u8  control: bits 0-1 number of fds (0-3), bit 2 call handle_kick
 *       after the message, bit 3 send the header flags raw (else version 1
 *       plus the input's REPLY/NEED_REPLY bits), bits 4-7 queue to kick
 *   u8  per fd: its kind, real fds of every kind a front-end can send
 *       (a non-blocking eventfd, the guest memfd, a pipe's read end
 *       holding the next bytes of input, a pipe's write end with no
 *       reader, a socket whose peer is closed, a blocking eventfd, an
 *       eventfd at its maximum count, a full pipe whose reader stays, a
 *       socket with SO_RCVLOWAT 8 and one byte queued, /dev/null, a
 *       regular file, an unsealed memfd that is shrunk to 0 right after
 *       the message is handled)
 *   u8  request (mod VHOST_USER_MAX + 2), u8 flags, u16 payload size
 *   the payload: that many bytes of input (fewer at the end: a truncated
 *   message)
 * The first input byte picks the backend: the rng device through the
 * adapter, or an in-harness backend that tracks inflight and has state.
 *
 * The front-end side is tests/mock/vu_frontend.h. Replies (and the fds
 * some carry) are read and dropped after every message. At the end the
 * connection is freed and every fd the harness and the back-end opened must
 * be closed again (vu_fe_fini()): a leak aborts.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/vhost_user.h>

#include "vu_frontend.h"

#define RAM_SIZE 0x10000
#define NQ	 2

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take8(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static size_t take(struct input *in, void *buf, size_t n)
{
	n = n < in->left ? n : in->left;
	memcpy(buf, in->p, n);
	in->p += n;
	in->left -= n;
	return n;
}

/* ---- a backend with inflight tracking and state ------------------------ */

struct fdev {
	struct vdk_vhost_user *vu;
	struct vdk_virtq *q[NQ];
	uint8_t config[16];
	int hold; /* pops not returned */
};

static uint16_t fd_num_queues(void *be)
{
	(void)be;
	return NQ;
}

static uint16_t fd_queue_max_size(void *be, uint16_t i)
{
	(void)be;
	(void)i;
	return 64;
}

static uint64_t fd_features(void *be)
{
	(void)be;
	return (1ull << 32) | (1ull << 28) | (1ull << 29); /* VERSION_1 ... */
}

static int fd_read_config(void *be, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, ((struct fdev *)be)->config + off, len);
	return 0;
}

static int fd_write_config(void *be, uint32_t off, const void *data,
			   uint32_t len)
{
	memcpy(((struct fdev *)be)->config + off, data, len);
	return 0;
}

static int fd_start_queue(void *be, uint16_t i, struct vdk_virtq *q,
			  const struct vdk_mem *mem, struct vdk_interrupt *irq)
{
	(void)mem;
	(void)irq;
	((struct fdev *)be)->q[i] = q;
	return 0;
}

static struct vdk_virtq *fd_stop_queue(void *be, uint16_t i)
{
	struct fdev *t = be;
	struct vdk_virtq *q = t->q[i];

	t->q[i] = NULL;
	return q;
}

/* Return every other chain, keep the rest in flight. */
static void fd_queue_notify(void *be, uint16_t i)
{
	struct fdev *t = be;
	struct iovec iov[8];
	struct vdk_virtq_chain c = {.iov = iov, .iov_cap = 8};
	int n = 0;

	while (t->q[i] && n++ < 256 &&
	       vdk_vhost_user_queue_pop(t->vu, i, &c) == 1) {
		if (t->hold++ & 1)
			continue;
		uint8_t zero[16] = {0};
		vdk_virtq_chain_copy_to(&c, 0, zero, sizeof(zero));
		(void)vdk_vhost_user_queue_add_used(t->vu, i, c.head, 16);
	}
}

static int fd_reset(void *be)
{
	(void)be;
	return 0;
}

static int fd_snapshot(void *be, cbor_item_t **out)
{
	*out = cbor_build_bytestring(((struct fdev *)be)->config, 16);
	return *out ? 0 : -12;
}

static int fd_restore(void *be, const cbor_item_t *item)
{
	struct fdev *t = be;

	if (!cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item) ||
	    cbor_bytestring_length(item) != 16)
		return -22;
	memcpy(t->config, cbor_bytestring_handle(item), 16);
	return 0;
}

static const struct vdk_vhost_user_backend_ops fdev_ops = {
	.name = "fuzz",
	.num_queues = fd_num_queues,
	.queue_max_size = fd_queue_max_size,
	.features = fd_features,
	.config_size = 16,
	.read_config = fd_read_config,
	.write_config = fd_write_config,
	.start_queue = fd_start_queue,
	.stop_queue = fd_stop_queue,
	.queue_notify = fd_queue_notify,
	.reset = fd_reset,
	.snapshot = fd_snapshot,
	.restore = fd_restore,
	.tracks_inflight = true,
};

/* ---- the front-end: vu_frontend.h, and fds of every kind -------------- */

/* Fds the harness keeps until the connection ends: the other end of a
 * full pipe or a socket, a memfd it shrinks after sending it. */
struct keep {
	int fd[64];
	size_t n;
	int shrink[3]; /* memfds to shrink once the message is sent */
	size_t nshrink;
};

static void keep_fd(struct keep *k, int fd)
{
	if (k->n < sizeof(k->fd) / sizeof(k->fd[0]))
		k->fd[k->n++] = fd;
	else
		close(fd);
}

/* Make one fd of @kind for the back-end; the harness keeps no copy that
 * matters (closed right after sending) except the ones in @k. */
static int make_fd(uint8_t kind, int memfd, struct input *in, struct keep *k)
{
	const uint64_t max = 0xfffffffffffffffeull;
	int p[2], fd = -1, lowat = 8;

	switch (kind % 12) {
	case 0:
		return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	case 1:
		return dup(memfd);
	case 2: { /* read end of a pipe holding some input, writer closed */
		uint8_t buf[64];
		size_t n = take(in, buf, take8(in) % sizeof(buf));

		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		if (n)
			(void)!write(p[1], buf, n);
		close(p[1]);
		return p[0];
	}
	case 3: /* write end, no reader */
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[0]);
		return p[1];
	case 4: /* a socket whose peer is closed */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			return -1;
		close(p[1]);
		fd = p[0];
		return fd;
	case 5: /* a blocking eventfd */
		return eventfd(0, EFD_CLOEXEC);
	case 6: /* a non-blocking eventfd at its maximum count */
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd >= 0)
			(void)!write(fd, &max, sizeof(max));
		return fd;
	case 7: /* write end of a full pipe whose reader stays */
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			return -1;
		while (write(p[1], &max, sizeof(max)) > 0)
			;
		keep_fd(k, p[0]);
		return p[1];
	case 8: /* readable to poll(), read() would wait (SO_RCVLOWAT) */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			return -1;
		(void)setsockopt(p[0], SOL_SOCKET, SO_RCVLOWAT, &lowat,
				 sizeof(lowat));
		(void)!write(p[1], "\x82", 1);
		keep_fd(k, p[1]);
		return p[0];
	case 9:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case 10: { /* a regular file the size of guest RAM, holding input */
		uint8_t buf[64];
		size_t n = take(in, buf, take8(in) % sizeof(buf));

		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0 && (ftruncate(fd, RAM_SIZE) < 0 ||
				(n && pwrite(fd, buf, n, 0) < 0))) {
			close(fd);
			return -1;
		}
		return fd;
	}
	default: /* a memfd the front-end shrinks once it is sent */
		fd = memfd_create("fuzz-shrink", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, RAM_SIZE) < 0) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		if (k->nshrink < 3)
			k->shrink[k->nshrink++] = dup(fd);
		return fd;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct vu_fe_config cfg = {.ram_gpa = 0, .ram_size = RAM_SIZE};
	struct input in = {data, size};
	struct vdk_vhost_user_device_adapter ad;
	const struct vdk_vhost_user_backend_ops *ops = &fdev_ops;
	struct vdk_rng *rng = NULL;
	struct fdev dev = {0};
	void *be = &dev;
	struct vu_fe fe;
	struct keep keep = {.n = 0};

	vdk_log_set_sink(vu_fe_quiet_log, NULL, VDK_LOG_ERROR);
	if (vu_fe_init(&fe, &cfg, NULL) < 0)
		abort();
	if (take8(&in) & 1) {
		if (!(rng = vdk_rng_new(NULL, NULL)))
			abort();
		if (vu_adapter_init(&ad, vdk_rng_device(rng), &ops) < 0)
			abort();
		be = &ad;
	}
	if (vu_fe_connect(&fe, ops, be) < 0)
		abort();
	dev.vu = fe.vu;

	while (in.left && !vdk_vhost_user_is_broken(fe.vu)) {
		uint8_t ctl = take8(&in);
		int fds[3];
		size_t nfds = ctl & 3;
		uint8_t msg[sizeof(struct vhost_user_header) + 512];
		struct vhost_user_header h;
		uint16_t psize;

		for (size_t i = 0; i < nfds; i++)
			fds[i] = make_fd(take8(&in), fe.memfd, &in, &keep);
		h.request = take8(&in) % (VHOST_USER_MAX + 2);
		h.flags = take8(&in);
		if (!(ctl & 8))
			h.flags = VHOST_USER_VERSION | (h.flags & 0xc);
		take(&in, &psize, sizeof(psize));
		h.size = psize % 512;
		if (ctl & 8)
			h.size = psize; /* oversized sizes too */
		memcpy(msg, &h, sizeof(h));
		size_t n =
			take(&in, msg + sizeof(h), h.size < 512 ? h.size : 512);
		size_t valid = 0;
		for (size_t i = 0; i < nfds; i++)
			if (fds[i] >= 0)
				fds[valid++] = fds[i];
		(void)vu_fe_sendmsg(fe.sock, msg, sizeof(h) + n, fds, valid,
				    MSG_DONTWAIT);
		for (size_t i = 0; i < valid; i++)
			close(fds[i]);
		/* a SIGBUS here would be guest RAM or an inflight region that
		 * was mapped unsealed */
		(void)vdk_vhost_user_process_message(fe.vu);
		for (size_t i = 0; i < keep.nshrink; i++) {
			if (keep.shrink[i] >= 0 &&
			    ftruncate(keep.shrink[i], 0) < 0)
				abort();
			if (keep.shrink[i] >= 0)
				close(keep.shrink[i]);
		}
		keep.nshrink = 0;
		vu_fe_drain(fe.sock);
		if (ctl & 4)
			(void)vdk_vhost_user_handle_kick(fe.vu,
							 (ctl >> 4) % NQ);
	}
	/* the front-end goes away mid-session */
	close(fe.sock);
	fe.sock = -1;
	(void)vdk_vhost_user_process_message(fe.vu);
	vu_fe_disconnect(&fe);
	if (rng)
		vdk_rng_free(rng);
	for (size_t i = 0; i < keep.n; i++)
		close(keep.fd[i]);
	if (vu_fe_fini(&fe) != 0)
		abort(); /* an fd leaked */
	return 0;
}
