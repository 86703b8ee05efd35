/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vhost-user back-end as a struct vdk_device (see
 * <vdk/vhost_user_frontend.h>, vdk_vhost_user_device_new()): what QEMU's
 * vhost-user-blk and vhost-user-rng do for a VMM, behind the one device
 * interface, so virtio-mmio and virtio-pci carry it unchanged.
 *
 * The device ops run on the transport's control thread and talk to the
 * back-end synchronously through the front-end connection; each queue's
 * call eventfd and the back-end's request channel sit on the loop given by
 * attach_loop. One mutex orders the two (the front-end is single-threaded).
 */
#include <vdk/vhost_user_frontend.h>

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_net.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <vdk/log.h>
#include <vdk/virtq.h>

#define MODULE	"vhost-user-device"
#define PF(bit) (1ull << (bit))

/* VHOST_F_LOG_ALL (<linux/vhost_types.h>): dirty logging, not offered. */
#define VHOST_F_LOG_ALL_BIT 26

#define PROTOCOL_WANTED                                                        \
	(PF(VHOST_USER_PROTOCOL_F_MQ) | PF(VHOST_USER_PROTOCOL_F_REPLY_ACK) |  \
	 PF(VHOST_USER_PROTOCOL_F_CONFIG) |                                    \
	 PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |                               \
	 PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))

/* How often a lost back-end is tried again, milliseconds. */
#define RECONNECT_MS 100

struct vu_queue {
	struct vdk_vhost_user_device *d;
	uint16_t index;
	/* eventfd the back-end reads: ours (we write it on a notification),
	 * or the host's dup (set_kick_fd: a KVM ioeventfd signals it) */
	int kick_fd;
	int call_fd;	 /* eventfd the back-end writes, we read on the loop */
	int direct_call; /* set_call_fd: the host's (a KVM irqfd), or -1;
			    the back-end gets it instead of call_fd */
	bool on_loop;
	struct vdk_virtq *vq; /* started: the queue, else NULL */
};

struct vdk_vhost_user_device {
	struct vdk_device dev;
	struct vdk_device_ops ops; /* per instance: config_size, type */
	char name[16];
	struct vdk_vhost_user_device_config cfg; /* socket_path: ours */
	char *socket_path;
	/* NULL while the back-end is away (reconnecting) */
	struct vdk_vhost_user_frontend *fe;
	pthread_mutex_t lock; /* fe, irq, mem, q[].vq, config, inflight */
	int sock_fd;	      /* fe's socket, watched for HUP, or -1 */
	int timer_fd;	      /* reconnect timer (timerfd), or -1 */
	unsigned attempts;    /* reconnect attempts since the loss */
	int inflight_fd;      /* GET_INFLIGHT_FD's region, or -1 */
	bool closing;	      /* destroy() began: callbacks do nothing */
	uint64_t inflight_size, inflight_offset;
	uint64_t backend_features; /* GET_FEATURES */
	uint64_t protocol;	   /* negotiated protocol features */
	uint16_t num_queues;
	uint16_t queue_max_size;
	uint8_t config[VHOST_USER_MAX_CONFIG_SIZE];
	struct vdk_loop *loop;
	const struct vdk_mem *mem; /* while active */
	struct vdk_interrupt *irq; /* while active */
	int req_fd;		   /* our end of the back-end channel, or -1 */
	bool req_on_loop;
	struct vu_queue q[VDK_DEVICE_MAX_QUEUES];
};

static bool has_proto(const struct vdk_vhost_user_device *d, int bit)
{
	return (d->protocol & PF(bit)) != 0;
}

/* ---- device ops ----------------------------------------------------------- */

static uint16_t vu_num_queues(void *dev)
{
	return ((struct vdk_vhost_user_device *)dev)->num_queues;
}

static uint16_t vu_queue_max_size(void *dev, uint16_t index)
{
	(void)index;
	return ((struct vdk_vhost_user_device *)dev)->queue_max_size;
}

static uint64_t vu_features(void *dev)
{
	struct vdk_vhost_user_device *d = dev;

	/* Not offered: vhost-user's own bits, packed rings (vdk's queues
	 * are split), and what the transport would have to implement
	 * (notification data, 38; SR-IOV). */
	return d->backend_features &
	       ~(PF(VHOST_USER_F_PROTOCOL_FEATURES) | PF(VHOST_F_LOG_ALL_BIT) |
		 PF(VIRTIO_F_RING_PACKED) | PF(38) | PF(VIRTIO_F_SR_IOV));
}

static void vu_read_config(void *dev, uint32_t offset, void *data, uint32_t len)
{
	struct vdk_vhost_user_device *d = dev;

	/* The framework checked offset + len against config_size, which is
	 * at most sizeof(d->config). */
	pthread_mutex_lock(&d->lock);
	memcpy(data, d->config + offset, len);
	pthread_mutex_unlock(&d->lock);
}

static void vu_write_config(void *dev, uint32_t offset, const void *data,
			    uint32_t len)
{
	struct vdk_vhost_user_device *d = dev;
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = d->fe ? vdk_vhost_user_frontend_set_config(d->fe, offset, data,
							 len)
		    : -ENOTCONN;
	if (ret == 0)
		memcpy(d->config + offset, data, len);
	pthread_mutex_unlock(&d->lock);
	if (ret < 0)
		vdk_log(VDK_LOG_WARN, MODULE, "%s: SET_CONFIG: %s", d->name,
			strerror(-ret));
}

/* One region per map region; every region must be fd-backed. */
static int send_mem_table(struct vdk_vhost_user_device *d,
			  const struct vdk_mem *mem)
{
	struct vdk_vhost_user_frontend_region r[VHOST_MEMORY_BASELINE_NREGIONS];
	size_t n = vdk_mem_num_regions(mem);

	if (n == 0 || n > VHOST_MEMORY_BASELINE_NREGIONS) {
		vdk_log(VDK_LOG_ERROR, MODULE,
			"%s: guest memory has %zu regions (1..%d shareable)",
			d->name, n, VHOST_MEMORY_BASELINE_NREGIONS);
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vdk_mem_region *mr = vdk_mem_region_at(mem, i);

		if (mr->fd < 0) {
			vdk_log(VDK_LOG_ERROR, MODULE,
				"%s: guest memory at 0x%llx is not fd-backed: "
				"cannot share it with the back-end",
				d->name, (unsigned long long)mr->gpa);
			return -EINVAL;
		}
		r[i] = (struct vdk_vhost_user_frontend_region){
			.gpa = mr->gpa,
			.size = mr->size,
			.addr = mr->hva,
			.fd = mr->fd,
			.fd_offset = mr->fd_offset,
		};
	}
	return vdk_vhost_user_frontend_set_mem_table(d->fe, r, (uint32_t)n);
}

/* SET_VRING_NUM/BASE/ADDR/CALL/KICK/ENABLE for queue @i. Locked. */
static int ring_start(struct vdk_vhost_user_device *d, uint16_t i,
		      struct vdk_virtq *q)
{
	struct vu_queue *vq = &d->q[i];
	int ret;

	if (!d->fe) {
		/* Back-end away: the ring starts when it is back. */
		vq->vq = q;
		return 0;
	}
	ret = vdk_vhost_user_frontend_set_vring_num(d->fe, i, q->size);
	if (ret == 0)
		ret = vdk_vhost_user_frontend_set_vring_base(d->fe, i,
							     q->next_avail);
	if (ret == 0)
		ret = vdk_vhost_user_frontend_set_vring_addr(
			d->fe, i, (uint64_t)(uintptr_t)q->desc,
			(uint64_t)(uintptr_t)q->avail,
			(uint64_t)(uintptr_t)q->used);
	if (ret == 0)
		ret = vdk_vhost_user_frontend_set_vring_call(
			d->fe, i,
			vq->direct_call >= 0 ? vq->direct_call : vq->call_fd);
	if (ret == 0)
		ret = vdk_vhost_user_frontend_set_vring_kick(d->fe, i,
							     vq->kick_fd);
	if (ret == 0 &&
	    (d->backend_features & PF(VHOST_USER_F_PROTOCOL_FEATURES)))
		ret = vdk_vhost_user_frontend_set_vring_enable(d->fe, i, true);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MODULE, "%s: cannot start ring %u: %s",
			d->name, i, strerror(-ret));
		return ret;
	}
	vq->vq = q;
	return 0;
}

/* GET_VRING_BASE for a started queue; hand it back with its indices.
 * Locked. */
static struct vdk_virtq *ring_stop(struct vdk_vhost_user_device *d, uint16_t i)
{
	struct vdk_virtq *q = d->q[i].vq;
	uint32_t base = 0;
	uint16_t used;
	int ret;

	if (!q)
		return NULL;
	ret = d->fe ? vdk_vhost_user_frontend_get_vring_base(d->fe, i, &base)
		    : -ENOTCONN;
	used = le16toh(__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE));
	if (ret < 0) {
		/* Back-end gone: what it completed is in the used ring;
		 * the rest is taken again from there (QEMU does the same). */
		vdk_log(VDK_LOG_WARN, MODULE,
			"%s: ring %u: GET_VRING_BASE: %s; resuming at the used "
			"index",
			d->name, i, strerror(-ret));
		base = used;
	}
	q->next_avail = (uint16_t)base;
	q->next_used = used;
	d->q[i].vq = NULL;
	return q;
}

/* The inflight region (spec "Inflight I/O tracking"): asked for once per
 * activation, handed to every back-end after a reconnect. Locked. */
static int inflight_setup(struct vdk_vhost_user_device *d)
{
	if (!has_proto(d, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
		return 0;
	if (d->inflight_fd < 0)
		return vdk_vhost_user_frontend_get_inflight_fd(
			d->fe, d->num_queues, d->queue_max_size,
			&d->inflight_fd, &d->inflight_size,
			&d->inflight_offset);
	return vdk_vhost_user_frontend_set_inflight_fd(
		d->fe, d->inflight_fd, d->inflight_size, d->inflight_offset,
		d->num_queues, d->queue_max_size);
}

/* Bring a connected back-end to the device's state: features, memory,
 * inflight region, every started ring. Locked; d->mem set. */
static int backend_setup(struct vdk_vhost_user_device *d)
{
	uint64_t features = d->dev.acked_features;
	int ret;

	if (d->backend_features & PF(VHOST_USER_F_PROTOCOL_FEATURES))
		features |= PF(VHOST_USER_F_PROTOCOL_FEATURES);
	ret = vdk_vhost_user_frontend_set_features(d->fe, features);
	if (ret == 0)
		ret = send_mem_table(d, d->mem);
	if (ret == 0)
		ret = inflight_setup(d);
	for (uint16_t i = 0; ret == 0 && i < d->num_queues; i++)
		if (d->q[i].vq)
			ret = ring_start(d, i, d->q[i].vq);
	return ret;
}

static int vu_activate(void *dev, const struct vdk_mem *mem,
		       struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_vhost_user_device *d = dev;
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	d->mem = mem;
	d->irq = irq;
	for (uint16_t i = 0; i < d->num_queues; i++)
		d->q[i].vq = queues[i];
	if (d->fe)
		ret = backend_setup(d);
	if (ret < 0) {
		for (uint16_t i = 0; i < d->num_queues; i++)
			ring_stop(d, i);
		d->mem = NULL;
		d->irq = NULL;
		vdk_log(VDK_LOG_ERROR, MODULE, "%s: activate: %s", d->name,
			strerror(-ret));
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static int vu_reset(void *dev)
{
	struct vdk_vhost_user_device *d = dev;

	pthread_mutex_lock(&d->lock);
	for (uint16_t i = 0; i < d->num_queues; i++)
		ring_stop(d, i);
	d->mem = NULL;
	d->irq = NULL;
	/* A fresh device: nothing in flight; a new region next time. */
	if (d->inflight_fd >= 0)
		close(d->inflight_fd);
	d->inflight_fd = -1;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int vu_start_queue(void *dev, uint16_t index, struct vdk_virtq *q)
{
	struct vdk_vhost_user_device *d = dev;
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = ring_start(d, index, q);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static struct vdk_virtq *vu_stop_queue(void *dev, uint16_t index)
{
	struct vdk_vhost_user_device *d = dev;
	struct vdk_virtq *q;

	pthread_mutex_lock(&d->lock);
	q = ring_stop(d, index);
	pthread_mutex_unlock(&d->lock);
	return q;
}

static void vu_queue_notify(void *dev, uint16_t index)
{
	struct vdk_vhost_user_device *d = dev;
	uint64_t one = 1;

	/* The kick eventfd is non-blocking; a full counter (EAGAIN) means a
	 * kick is already pending. */
	if (index < d->num_queues &&
	    write(d->q[index].kick_fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		vdk_log(VDK_LOG_WARN, MODULE, "%s: kick %u: %s", d->name, index,
			strerror(errno));
}

/* Loop: the back-end signalled queue @q->index's call eventfd. */
static void on_call(void *opaque, int fd, uint32_t events)
{
	struct vu_queue *vq = opaque;
	struct vdk_vhost_user_device *d = vq->d;
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&d->lock);
	if (d->irq && vq->vq)
		vdk_interrupt_signal_used_queue(d->irq, vq->index);
	pthread_mutex_unlock(&d->lock);
}

/* Loop: one request from the back-end on its channel (spec "Back-end
 * message types"). Only CONFIG_CHANGE_MSG is acted on; others are
 * answered "unsupported" if they ask for a reply. */
static void on_backend_req(void *opaque, int fd, uint32_t events)
{
	struct vdk_vhost_user_device *d = opaque;
	struct vhost_user_msg m = {0};
	char cbuf[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = {&m.hdr, sizeof(m.hdr)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	const char *why = NULL;
	bool changed = false, config;
	ssize_t n;

	(void)events;
	pthread_mutex_lock(&d->lock);
	if (d->closing || fd != d->req_fd || !d->req_on_loop)
		goto out;
	/* The header (and any fds) first, then exactly its payload. */
	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		goto out;
	/* Close any fd the back-end sent: none of ours takes one. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0;
			     i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			     i++) {
				int f;

				memcpy(&f, CMSG_DATA(c) + i * sizeof(int),
				       sizeof(f));
				close(f);
			}
	if (n <= 0)
		why = "closed";
	else if ((size_t)n != sizeof(m.hdr) ||
		 (m.hdr.flags & VHOST_USER_VERSION_MASK) !=
			 VHOST_USER_VERSION ||
		 m.hdr.size > sizeof(m.payload))
		why = "sent a malformed header";
	else if (m.hdr.size && recv(fd, &m.payload, m.hdr.size, MSG_DONTWAIT) !=
				       (ssize_t)m.hdr.size)
		why = "sent a short message";
	if (why) {
		/* Closed, or a message we cannot frame: drop the channel
		 * (immediate: we are its callback). */
		vdk_log(VDK_LOG_WARN, MODULE,
			"%s: back-end channel %s; closing it", d->name, why);
		vdk_loop_remove(d->loop, fd);
		d->req_on_loop = false;
		goto out;
	}
	config = m.hdr.request == VHOST_USER_BACKEND_CONFIG_CHANGE_MSG &&
		 d->ops.config_size && d->fe;
	/* The ack first: a back-end that sent the message from its own
	 * loop waits for it there, and would not answer the GET_CONFIG
	 * below until it came (vdk's net link timer does so). */
	if (m.hdr.flags & VHOST_USER_NEED_REPLY_MASK) {
		m.hdr.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
		m.hdr.size = sizeof(uint64_t);
		m.payload.u64 = config ? 0 : 1;
		if (send(fd, &m, sizeof(m.hdr) + sizeof(uint64_t),
			 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			vdk_log(VDK_LOG_WARN, MODULE,
				"%s: back-end channel reply: %s", d->name,
				strerror(errno));
	}
	if (config) {
		if (vdk_vhost_user_frontend_get_config(
			    d->fe, 0, d->config, d->ops.config_size) == 0) {
			changed = d->irq != NULL;
			if (changed)
				vdk_interrupt_signal_config_changed(d->irq);
		}
		vdk_log(VDK_LOG_INFO, MODULE, "%s: configuration changed%s",
			d->name, changed ? "" : " (driver not told: inactive)");
	}
out:
	pthread_mutex_unlock(&d->lock);
}

/* ---- reconnection ------------------------------------------------------- */

static void on_sock(void *opaque, int fd, uint32_t events);

/* Put the connection's socket (HUP) and back-end channel on the loop. */
static int watch_backend(struct vdk_vhost_user_device *d)
{
	int ret;

	d->sock_fd = vdk_vhost_user_frontend_socket(d->fe);
	ret = vdk_loop_add(d->loop, d->sock_fd, VDK_LOOP_HUP | VDK_LOOP_ERR,
			   on_sock, d);
	if (ret < 0) {
		d->sock_fd = -1;
		return ret;
	}
	if (d->req_fd >= 0) {
		ret = vdk_loop_add(d->loop, d->req_fd, VDK_LOOP_IN,
				   on_backend_req, d);
		if (ret < 0)
			return ret;
		d->req_on_loop = true;
	}
	return 0;
}

/* Forget the connection (its socket, its channel). Locked; on the loop's
 * thread or in destroy. */
static void drop_backend(struct vdk_vhost_user_device *d)
{
	if (d->sock_fd >= 0 && d->loop)
		vdk_loop_remove(d->loop, d->sock_fd);
	d->sock_fd = -1;
	if (d->req_on_loop)
		vdk_loop_remove(d->loop, d->req_fd);
	d->req_on_loop = false;
	if (d->req_fd >= 0)
		close(d->req_fd);
	d->req_fd = -1;
	vdk_vhost_user_frontend_free(d->fe);
	d->fe = NULL;
}

static void arm_timer(struct vdk_vhost_user_device *d, bool on)
{
	struct itimerspec its = {0};

	if (on) {
		its.it_value.tv_nsec = RECONNECT_MS * 1000000L;
		its.it_interval.tv_nsec = RECONNECT_MS * 1000000L;
	}
	if (d->timer_fd >= 0)
		(void)timerfd_settime(d->timer_fd, 0, &its, NULL);
}

static int handshake(struct vdk_vhost_user_device *d, bool again);

/* Loop: the back-end closed the connection (it exited or was killed).
 * The guest keeps its rings; they resume on the next back-end, which
 * resubmits what was in flight (inflight region). */
static void on_sock(void *opaque, int fd, uint32_t events)
{
	struct vdk_vhost_user_device *d = opaque;

	(void)events;
	pthread_mutex_lock(&d->lock);
	if (!d->closing && d->fe && fd == d->sock_fd) {
		vdk_log(VDK_LOG_WARN, MODULE,
			"%s: back-end %s went away; reconnecting every %d ms",
			d->name, d->socket_path, RECONNECT_MS);
		drop_backend(d);
		d->attempts = 0;
		arm_timer(d, true);
	}
	pthread_mutex_unlock(&d->lock);
}

/* Loop: try the socket again; on success, bring the new back-end to the
 * device's state (as QEMU's vhost-user-blk does on reconnect). */
static void on_timer(void *opaque, int fd, uint32_t events)
{
	struct vdk_vhost_user_device *d = opaque;
	uint64_t n;
	int ret;

	(void)events;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&d->lock);
	if (d->closing)
		goto out;
	if (d->fe) {
		arm_timer(d, false);
		goto out;
	}
	d->attempts++;
	ret = vdk_vhost_user_frontend_connect(d->socket_path, &d->fe);
	if (ret < 0)
		goto out; /* not back yet */
	ret = handshake(d, true);
	if (ret == 0 && d->mem) {
		/* The lost back-end cannot say where it stopped: resume at
		 * the used index; the inflight region covers the rest. */
		for (uint16_t i = 0; i < d->num_queues; i++) {
			struct vdk_virtq *q = d->q[i].vq;

			if (q)
				q->next_avail = le16toh(__atomic_load_n(
					&q->used->idx, __ATOMIC_ACQUIRE));
		}
		ret = backend_setup(d);
	}
	if (ret == 0)
		ret = watch_backend(d);
	if (ret < 0) {
		vdk_log(VDK_LOG_WARN, MODULE,
			"%s: reconnecting to %s: %s; trying again", d->name,
			d->socket_path, strerror(-ret));
		drop_backend(d);
		goto out;
	}
	arm_timer(d, false);
	vdk_log(VDK_LOG_WARN, MODULE, "%s: back-end %s is back (%u attempts)",
		d->name, d->socket_path, d->attempts);
	for (uint16_t i = 0; i < d->num_queues; i++)
		if (d->q[i].vq)
			vu_queue_notify(d, i);
out:
	pthread_mutex_unlock(&d->lock);
}

static int vu_attach_loop(void *dev, struct vdk_loop *loop)
{
	struct vdk_vhost_user_device *d = dev;
	int ret;

	d->loop = loop;
	for (uint16_t i = 0; i < d->num_queues; i++) {
		ret = vdk_loop_add(loop, d->q[i].call_fd, VDK_LOOP_IN, on_call,
				   &d->q[i]);
		if (ret < 0)
			return ret;
		d->q[i].on_loop = true;
	}
	d->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->timer_fd < 0)
		return -errno;
	ret = vdk_loop_add(loop, d->timer_fd, VDK_LOOP_IN, on_timer, d);
	if (ret < 0) {
		close(d->timer_fd);
		d->timer_fd = -1;
		return ret;
	}
	pthread_mutex_lock(&d->lock);
	ret = d->fe ? watch_backend(d) : 0;
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static void vu_destroy(void *dev)
{
	struct vdk_vhost_user_device *d = dev;

	int sock = -1, req = -1;

	/* Off the loop first: once removed, no callback runs. Callbacks that
	 * are running finish (they see closing and do nothing more). */
	if (d->timer_fd >= 0) {
		if (d->loop)
			vdk_loop_remove(d->loop, d->timer_fd);
		close(d->timer_fd);
	}
	pthread_mutex_lock(&d->lock);
	d->closing = true;
	if (d->loop) {
		sock = d->sock_fd;
		req = d->req_on_loop ? d->req_fd : -1;
	}
	d->sock_fd = -1;
	d->req_on_loop = false;
	pthread_mutex_unlock(&d->lock);
	if (sock >= 0)
		vdk_loop_remove(d->loop, sock);
	if (req >= 0)
		vdk_loop_remove(d->loop, req);
	drop_backend(d);
	for (uint16_t i = 0; i < d->num_queues; i++) {
		if (d->q[i].on_loop)
			vdk_loop_remove(d->loop, d->q[i].call_fd);
		if (d->q[i].kick_fd >= 0)
			close(d->q[i].kick_fd);
		if (d->q[i].call_fd >= 0)
			close(d->q[i].call_fd);
		if (d->q[i].direct_call >= 0)
			close(d->q[i].direct_call);
	}
	if (d->inflight_fd >= 0)
		close(d->inflight_fd);
	free(d->socket_path);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* Keep a dup of the host's eventfd @fd in *@slot (closing what was there). */
static int take_fd(int *slot, int fd)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (dup_fd < 0)
		return -errno;
	if (*slot >= 0)
		close(*slot);
	*slot = dup_fd;
	return 0;
}

/* The host's ioeventfd becomes the back-end's kick fd: the guest's
 * notifications reach the back-end without a hop through the host's loop.
 * vu_queue_notify() (reconnects) writes the same eventfd. */
static int vu_set_kick_fd(void *dev, uint16_t index, int fd)
{
	struct vdk_vhost_user_device *d = dev;
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = take_fd(&d->q[index].kick_fd, fd);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

/* The host's irqfd becomes the back-end's call fd: its used buffer
 * notifications reach the guest without a hop through the host's loop. */
static int vu_set_call_fd(void *dev, uint16_t index, int fd)
{
	struct vdk_vhost_user_device *d = dev;
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = take_fd(&d->q[index].direct_call, fd);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static const struct vdk_device_ops vu_ops_template = {
	.num_queues = vu_num_queues,
	.queue_max_size = vu_queue_max_size,
	.features = vu_features,
	.read_config = vu_read_config,
	.write_config = vu_write_config,
	.activate = vu_activate,
	.reset = vu_reset,
	.queue_notify = vu_queue_notify,
	.start_queue = vu_start_queue,
	.stop_queue = vu_stop_queue,
	.attach_loop = vu_attach_loop,
	.set_kick_fd = vu_set_kick_fd,
	.set_call_fd = vu_set_call_fd,
	.destroy = vu_destroy,
};

/* ---- construction --------------------------------------------------------- */

static uint32_t default_config_size(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK:
		/* up to the write-zeroes fields, as QEMU asks for with
		 * discard and write-zeroes (and vdk's blk serves) */
		return offsetof(struct virtio_blk_config,
				max_secure_erase_sectors);
	case VIRTIO_ID_NET:
		/* mac, status, max_virtqueue_pairs, mtu (§5.1.4): status
		 * changes (link) reach the driver through GET_CONFIG after
		 * the back-end's CONFIG_CHANGE_MSG */
		return offsetof(struct virtio_net_config, speed);
	default:
		return 0;
	}
}

static const char *type_name(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK:
		return "vhost-user-blk";
	case VIRTIO_ID_RNG:
		return "vhost-user-rng";
	case VIRTIO_ID_NET:
		return "vhost-user-net";
	default:
		return "vhost-user";
	}
}

/* Negotiate, size the device, read its configuration, open the channel.
 * @again (a reconnect): the new back-end must offer what the driver
 * accepted and as many queues. */
static int handshake(struct vdk_vhost_user_device *d, bool again)
{
	const struct vdk_vhost_user_device_config *cfg = &d->cfg;
	uint64_t qnum = 1, offered;
	int sv[2], ret;

	ret = vdk_vhost_user_frontend_negotiate(d->fe, PROTOCOL_WANTED,
						&offered);
	if (ret < 0)
		return ret;
	if (again &&
	    ((offered & d->dev.acked_features) != d->dev.acked_features ||
	     (offered ^ d->backend_features) &
		     PF(VHOST_USER_F_PROTOCOL_FEATURES)))
		return -EPROTO;
	d->backend_features = offered;
	d->protocol = vdk_vhost_user_frontend_protocol_features(d->fe);
	if (has_proto(d, VHOST_USER_PROTOCOL_F_MQ)) {
		ret = vdk_vhost_user_frontend_get_queue_num(d->fe, &qnum);
		if (ret < 0)
			return ret;
	}
	if (qnum == 0)
		return -ENODEV;
	if (again) {
		if (qnum < d->num_queues)
			return -ERANGE;
	} else {
		if (cfg->num_queues > qnum)
			return -ERANGE;
		d->num_queues = cfg->num_queues ? cfg->num_queues
				: qnum > VDK_DEVICE_MAX_QUEUES
					? VDK_DEVICE_MAX_QUEUES
					: (uint16_t)qnum;
	}
	if (d->ops.config_size) {
		if (!has_proto(d, VHOST_USER_PROTOCOL_F_CONFIG))
			return -EOPNOTSUPP;
		ret = vdk_vhost_user_frontend_get_config(d->fe, 0, d->config,
							 d->ops.config_size);
		if (ret < 0)
			return ret;
	}
	if (has_proto(d, VHOST_USER_PROTOCOL_F_BACKEND_REQ)) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		ret = vdk_vhost_user_frontend_set_backend_req_fd(d->fe, sv[1]);
		close(sv[1]);
		if (ret < 0) {
			close(sv[0]);
			return ret;
		}
		d->req_fd = sv[0];
	}
	return 0;
}

struct vdk_vhost_user_device *
vdk_vhost_user_device_new(const struct vdk_vhost_user_device_config *cfg,
			  int *err)
{
	struct vdk_vhost_user_device *d;
	uint32_t csize;
	int ret;

	if (!cfg || !cfg->socket_path || cfg->device_id == 0 ||
	    cfg->num_queues > VDK_DEVICE_MAX_QUEUES ||
	    (cfg->queue_max_size &&
	     (cfg->queue_max_size & (cfg->queue_max_size - 1))) ||
	    cfg->config_size > VHOST_USER_MAX_CONFIG_SIZE) {
		*err = -EINVAL;
		return NULL;
	}
	csize = cfg->config_size ? cfg->config_size
				 : default_config_size(cfg->device_id);
	d = calloc(1, sizeof(*d));
	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->req_fd = -1;
	d->sock_fd = -1;
	d->timer_fd = -1;
	d->inflight_fd = -1;
	d->cfg = *cfg;
	d->socket_path = strdup(cfg->socket_path);
	for (size_t i = 0; i < VDK_DEVICE_MAX_QUEUES; i++)
		d->q[i] = (struct vu_queue){.d = d,
					    .index = (uint16_t)i,
					    .kick_fd = -1,
					    .call_fd = -1,
					    .direct_call = -1};
	d->ops = vu_ops_template;
	d->ops.device_type = cfg->device_id;
	d->ops.config_size = csize;
	d->ops.name = type_name(cfg->device_id);
	snprintf(d->name, sizeof(d->name), "%s", d->ops.name);
	d->queue_max_size = cfg->queue_max_size ? cfg->queue_max_size : 256;

	ret = d->socket_path
		      ? vdk_vhost_user_frontend_connect(d->socket_path, &d->fe)
		      : -ENOMEM;
	if (ret == 0)
		ret = handshake(d, false);
	for (uint16_t i = 0; ret == 0 && i < d->num_queues; i++) {
		d->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		d->q[i].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->q[i].kick_fd < 0 || d->q[i].call_fd < 0)
			ret = -errno;
	}
	if (ret == 0)
		ret = vdk_device_init(&d->dev, &d->ops, d);
	if (ret < 0) {
		vu_destroy(d);
		*err = ret;
		return NULL;
	}
	*err = 0;
	return d;
}

struct vdk_device *vdk_vhost_user_device_vdk(struct vdk_vhost_user_device *d)
{
	return &d->dev;
}

void vdk_vhost_user_device_free(struct vdk_vhost_user_device *d)
{
	if (d)
		vdk_device_fini(&d->dev);
}
