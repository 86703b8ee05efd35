/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio devices and their event loop (see devices.h).
 *
 * epoll keys: the device index in bits 63:32, the event kind in 31:16 and
 * the queue index in 15:0, so the loop needs no lookup table.
 */
#include "devices.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>

#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mmio.h>

#define MOD "devices"

enum ev_kind {
	EV_STOP = 1,	   /* the stop eventfd */
	EV_NOTIFY = 2,	   /* a queue's ioeventfd */
	EV_COMPLETION = 3, /* a virtio-blk queue's completion eventfd, or
			      virtio-rng's resume eventfd */
	EV_OUTPUT = 4,	   /* a virtio-console's output fd is writable */
};

/* One virtio device and its transport. */
struct vdev {
	struct vmm_devices *owner;
	struct vdk_device *dev;	     /* owned through blk or rng */
	struct vdk_blk *blk;	     /* if virtio-blk */
	struct vdk_rng *rng;	     /* if virtio-rng */
	struct vdk_console *console; /* if virtio-console */
	int out_fd;		     /* its output fd (not owned), or -1 */
	bool out_in_epoll;	     /* out_fd added to the epoll set */
	struct vdk_mmio *transport;  /* owned */
	struct vmm_mmio_device_info info;
	bool on_bus;	  /* registered on the MMIO bus */
	bool irqfd_bound; /* irq_fd assigned with KVM_IRQFD */
	int irq_fd;	  /* eventfd, or -1 */
	uint16_t num_queues;
	int notify_fd[VDK_DEVICE_MAX_QUEUES]; /* eventfds, or -1 */
	bool ioeventfd_bound[VDK_DEVICE_MAX_QUEUES];
};

struct vmm_devices {
	struct vmm_kvm *kvm;
	const struct vdk_mem *mem;
	struct vdk_bus *bus;
	struct vmm_mmio_manager *mgr;
	int epoll_fd;
	int stop_fd;
	pthread_t thread;
	bool running;
	struct vdev *stdin_console; /* fed by the stdin thread, or NULL */
	pthread_t stdin_thread;
	bool stdin_running;
	size_t num;
	struct vdev devs[VMM_DEVICES_MAX];
};

static uint64_t ev_key(size_t dev, enum ev_kind kind, uint16_t queue)
{
	return (uint64_t)dev << 32 | (uint64_t)kind << 16 | queue;
}

static int epoll_add(struct vmm_devices *d, int fd, uint64_t key)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = key};

	return epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

struct vmm_devices *vmm_devices_new(struct vmm_kvm *kvm,
				    const struct vdk_mem *mem,
				    struct vdk_bus *mmio_bus,
				    struct vmm_mmio_manager *mgr, int *err)
{
	struct vmm_devices *d = calloc(1, sizeof(*d));
	int r = 0;

	if (!d) {
		r = -ENOMEM;
		goto out;
	}
	d->kvm = kvm;
	d->mem = mem;
	d->bus = mmio_bus;
	d->mgr = mgr;
	d->stop_fd = -1;
	d->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epoll_fd < 0) {
		r = -errno;
		goto out;
	}
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->stop_fd < 0) {
		r = -errno;
		goto out;
	}
	r = epoll_add(d, d->stop_fd, ev_key(0, EV_STOP, 0));
out:
	if (r < 0) {
		vmm_devices_free(d);
		d = NULL;
	}
	if (err)
		*err = r;
	return d;
}

/* Transport irq callback (under the transport's interrupt lock): a rising
 * line becomes one edge on the device's GSI through its irqfd. */
static void vdev_irq(void *opaque, bool level)
{
	struct vdev *v = opaque;
	uint64_t one = 1;

	if (level && write(v->irq_fd, &one, sizeof(one)) != sizeof(one))
		vdk_log(VDK_LOG_WARN, MOD, "%s: irqfd write failed",
			v->info.id);
}

/* Create the transport, place it, and bind its irqfd and ioeventfds. */
static int vdev_attach(struct vmm_devices *d, struct vdev *v, uint32_t type,
		       const char *id, const char **errmsg)
{
	size_t index = (size_t)(v - d->devs);
	struct vdk_mmio_config mc = {
		.device = v->dev,
		.mem = d->mem,
		.irq = vdev_irq,
		.irq_opaque = v,
	};
	int r;

	v->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->irq_fd < 0) {
		*errmsg = "eventfd() failed";
		return -errno;
	}
	v->transport = vdk_mmio_new(&mc, &r);
	if (!v->transport) {
		*errmsg = "cannot create the virtio-mmio transport";
		return r;
	}
	r = vmm_mmio_manager_register(
		d->mgr, type, id, d->bus,
		(struct vdk_bus_device){&vdk_mmio_bus_ops, v->transport},
		&v->info, errmsg);
	if (r < 0)
		return r;
	v->on_bus = true;
	r = vmm_kvm_irqfd(d->kvm, v->irq_fd, v->info.irq, true);
	if (r < 0) {
		*errmsg = "KVM_IRQFD failed";
		return r;
	}
	v->irqfd_bound = true;

	v->num_queues = v->dev->ops->num_queues(v->dev->impl);
	if (v->num_queues > VDK_DEVICE_MAX_QUEUES)
		v->num_queues = VDK_DEVICE_MAX_QUEUES;
	for (uint16_t q = 0; q < v->num_queues; q++) {
		v->notify_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->notify_fd[q] < 0) {
			*errmsg = "eventfd() failed";
			return -errno;
		}
		r = vmm_kvm_ioeventfd(d->kvm, v->notify_fd[q],
				      v->info.base + VIRTIO_MMIO_QUEUE_NOTIFY,
				      4, q, true);
		if (r < 0) {
			*errmsg = "KVM_IOEVENTFD failed";
			return r;
		}
		v->ioeventfd_bound[q] = true;
		r = epoll_add(d, v->notify_fd[q], ev_key(index, EV_NOTIFY, q));
		if (r < 0) {
			*errmsg = "epoll_ctl() failed";
			return r;
		}
		if (v->blk || (v->rng && q == 0)) {
			r = epoll_add(d,
				      v->blk ? vdk_blk_completion_fd(v->blk, q)
					     : vdk_rng_resume_fd(v->rng),
				      ev_key(index, EV_COMPLETION, q));
			if (r < 0) {
				*errmsg = "epoll_ctl() failed";
				return r;
			}
		}
	}
	return 0;
}

/* The next free slot, with every fd marked absent. */
static struct vdev *vdev_alloc(struct vmm_devices *d)
{
	struct vdev *v;

	if (d->num == VMM_DEVICES_MAX)
		return NULL;
	v = &d->devs[d->num++];
	memset(v, 0, sizeof(*v));
	v->owner = d;
	v->irq_fd = -1;
	v->out_fd = -1;
	for (size_t q = 0; q < VDK_DEVICE_MAX_QUEUES; q++)
		v->notify_fd[q] = -1;
	return v;
}

int vmm_devices_add_blk(struct vmm_devices *d, const char *id,
			const struct vdk_blk_config *cfg, const char **errmsg)
{
	const char *msg = NULL;
	struct vdev *v = vdev_alloc(d);
	int r;

	if (!v) {
		msg = "too many devices";
		r = -ENOSPC;
		goto out;
	}
	r = vdk_blk_new(&v->blk, cfg);
	if (r < 0) {
		msg = "cannot open the disk image";
		goto out;
	}
	v->dev = vdk_blk_device(v->blk);
	r = vdev_attach(d, v, VIRTIO_ID_BLOCK, id, &msg);
out:
	if (r < 0 && errmsg)
		*errmsg = msg;
	return r;
}

int vmm_devices_add_rng(struct vmm_devices *d, const char *id,
			const char **errmsg)
{
	const char *msg = NULL;
	struct vdev *v = vdev_alloc(d);
	int r;

	if (!v) {
		msg = "too many devices";
		r = -ENOSPC;
		goto out;
	}
	r = vdk_rng_new(&v->rng, NULL);
	if (r < 0) {
		msg = "cannot create the virtio-rng device";
		goto out;
	}
	v->dev = vdk_rng_device(v->rng);
	r = vdev_attach(d, v, VIRTIO_ID_RNG, id, &msg);
out:
	if (r < 0 && errmsg)
		*errmsg = msg;
	return r;
}

int vmm_devices_add_console(struct vmm_devices *d, const char *id,
			    const struct vdk_console_config *cfg,
			    bool stdin_input, const char **errmsg)
{
	const char *msg = NULL;
	struct vdev *v = NULL;
	int r;

	if (stdin_input && d->stdin_console) {
		msg = "only one console can read stdin";
		r = -EBUSY;
		goto out;
	}
	v = vdev_alloc(d);
	if (!v) {
		msg = "too many devices";
		r = -ENOSPC;
		goto out;
	}
	r = vdk_console_new(&v->console, cfg);
	if (r < 0) {
		msg = "cannot create the virtio-console device";
		goto out;
	}
	v->dev = vdk_console_device(v->console);
	v->out_fd = cfg->output_fd;
	r = vdev_attach(d, v, VIRTIO_ID_CONSOLE, id, &msg);
	if (r == 0 && stdin_input)
		d->stdin_console = v;
out:
	if (r < 0 && errmsg)
		*errmsg = msg;
	return r;
}

/* ---- the console's stdin thread ---------------------------------------------- */

/* Read stdin and push it into the console, waiting (5 ms steps) while the
 * device's input buffer is full; end at EOF, a read error, or stop. */
static void *stdin_thread(void *arg)
{
	struct vmm_devices *d = arg;
	struct vdk_console *con = d->stdin_console->console;
	struct pollfd fds[2] = {
		{.fd = STDIN_FILENO, .events = POLLIN},
		{.fd = d->stop_fd, .events = POLLIN},
	};
	uint8_t buf[256];

	for (;;) {
		ssize_t n;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (fds[1].revents)
			return NULL;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return NULL; /* EOF: the guest just gets no more input */
		for (size_t off = 0; off < (size_t)n;) {
			int r = vdk_console_push_input(con, buf + off,
						       (size_t)n - off);

			if (r < 0)
				return NULL;
			off += (size_t)r;
			if (off < (size_t)n && poll(&fds[1], 1, 5) != 0)
				return NULL;
		}
	}
}

/* ---- the device thread ---------------------------------------------------- */

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

/* While a console's output waits for its fd, have epoll report the fd
 * writable (once); a regular file never blocks and cannot be polled. */
static void console_watch_output(struct vmm_devices *d, struct vdev *v,
				 size_t index)
{
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT,
				 .data.u64 = ev_key(index, EV_OUTPUT, 0)};

	if (v->out_fd < 0 || !vdk_console_output_blocked(v->console))
		return;
	if (epoll_ctl(d->epoll_fd,
		      v->out_in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
		      v->out_fd, &ev) < 0) {
		vdk_log(VDK_LOG_WARN, MOD, "%s: cannot poll the output: %s",
			v->info.id, strerror(errno));
		return;
	}
	v->out_in_epoll = true;
}

static void handle_event(struct vmm_devices *d, uint64_t key)
{
	size_t index = key >> 32;
	enum ev_kind kind = (enum ev_kind)((key >> 16) & 0xffff);
	uint16_t q = key & 0xffff;
	struct vdev *v;
	uint32_t le;

	if (index >= d->num)
		return;
	v = &d->devs[index];
	switch (kind) {
	case EV_NOTIFY:
		drain(v->notify_fd[q]);
		/* Through the transport: its lock orders this against a
		 * reset from a vCPU (virtio 1.2 §4.2.2, QueueNotify). */
		le = htole32(q);
		vdk_mmio_write(v->transport, VIRTIO_MMIO_QUEUE_NOTIFY, &le,
			       sizeof(le));
		break;
	case EV_COMPLETION:
		if (v->blk)
			vdk_blk_process_completions(v->blk, q);
		if (v->rng) {
			/* the device stopped at its budget: notify again */
			drain(vdk_rng_resume_fd(v->rng));
			le = htole32(q);
			vdk_mmio_write(v->transport, VIRTIO_MMIO_QUEUE_NOTIFY,
				       &le, sizeof(le));
		}
		break;
	case EV_OUTPUT:
		if (v->console)
			vdk_console_flush_output(v->console);
		break;
	default:
		break;
	}
	if (v->console)
		console_watch_output(d, v, index);
}

static void *device_thread(void *arg)
{
	struct vmm_devices *d = arg;
	struct epoll_event ev[32];

	for (;;) {
		int n = epoll_wait(d->epoll_fd, ev, 32, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			vdk_log(VDK_LOG_ERROR, MOD, "epoll_wait: %s",
				strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			if (((ev[i].data.u64 >> 16) & 0xffff) == EV_STOP)
				return NULL;
			handle_event(d, ev[i].data.u64);
		}
	}
}

int vmm_devices_start(struct vmm_devices *d)
{
	int r = pthread_create(&d->thread, NULL, device_thread, d);

	if (r)
		return -r;
	d->running = true;
	if (d->stdin_console) {
		r = pthread_create(&d->stdin_thread, NULL, stdin_thread, d);
		if (r)
			return -r;
		d->stdin_running = true;
	}
	return 0;
}

static void vdev_free(struct vmm_devices *d, struct vdev *v)
{
	for (uint16_t q = 0; q < VDK_DEVICE_MAX_QUEUES; q++) {
		if (v->ioeventfd_bound[q])
			vmm_kvm_ioeventfd(d->kvm, v->notify_fd[q],
					  v->info.base +
						  VIRTIO_MMIO_QUEUE_NOTIFY,
					  4, q, false);
		if (v->notify_fd[q] >= 0)
			close(v->notify_fd[q]);
	}
	if (v->irqfd_bound)
		vmm_kvm_irqfd(d->kvm, v->irq_fd, v->info.irq, false);
	if (v->on_bus)
		vdk_bus_deregister(d->bus, v->info.base, NULL);
	/* Resets an active device: no more interrupts after this. */
	vdk_mmio_free(v->transport);
	if (v->irq_fd >= 0)
		close(v->irq_fd);
	if (v->blk)
		vdk_blk_free(v->blk);
	if (v->rng)
		vdk_rng_free(v->rng);
	if (v->out_in_epoll)
		epoll_ctl(d->epoll_fd, EPOLL_CTL_DEL, v->out_fd, NULL);
	if (v->console)
		vdk_console_free(v->console);
}

void vmm_devices_free(struct vmm_devices *d)
{
	uint64_t one = 1;

	if (!d)
		return;
	if (d->running) {
		if (write(d->stop_fd, &one, sizeof(one)) != sizeof(one))
			vdk_log(VDK_LOG_ERROR, MOD, "cannot stop the thread");
		pthread_join(d->thread, NULL);
	}
	if (d->stdin_running) /* stop_fd stays readable: it sees it too */
		pthread_join(d->stdin_thread, NULL);
	for (size_t i = 0; i < d->num; i++)
		vdev_free(d, &d->devs[i]);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	if (d->epoll_fd >= 0)
		close(d->epoll_fd);
	free(d);
}
