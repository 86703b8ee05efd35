/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio devices and their event loop (see devices.h).
 *
 * One struct vdk_loop (the library's epoll loop) on one device thread
 * carries every event source: the queues' ioeventfds (→ vdk_mmio_notify()),
 * stdin for the console that reads it, and whatever each device registered
 * itself through vdk_device_attach_loop() (virtio-blk's io_uring completion
 * eventfds, virtio-console's output readiness). Nothing here knows a
 * device's type or its private fds.
 */
#include "devices.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <linux/virtio_mmio.h>

#include <vdk/log.h>
#include <vdk/loop.h>
#include <vdk/mmio.h>
#include <vdk/virtio_pci.h>

#define MOD "devices"

struct vdev;

/* One queue's ioeventfd on the loop. */
struct vqueue {
	struct vdev *v;
	uint16_t index;
	int fd;	      /* eventfd, or -1 */
	bool bound;   /* assigned with KVM_IOEVENTFD */
	bool on_loop; /* added to the loop */
};

/* MSI-X vectors of a virtio-pci function routed through irqfds: a config
 * vector and one per queue. */
#define VDEV_MSIX_VECS (VDK_DEVICE_MAX_QUEUES + 1)

/* One MSI-X vector as a KVM MSI route and an irqfd on its GSI. */
struct vvec {
	int fd;	       /* eventfd, or -1 */
	int gsi;       /* vmm_kvm_msi_route_alloc(), or -1 */
	uint64_t addr; /* the routed message (valid if routed) */
	uint32_t data;
	bool routed; /* the route carries addr/data */
	bool irqfd;  /* fd assigned to gsi with KVM_IRQFD */
};

/* One virtio device and its transport. */
struct vdev {
	struct vmm_devices *owner;
	struct vdk_device *dev;	    /* owned: vdk_device_fini() */
	struct vdk_mmio *transport; /* owned (virtio-mmio) */
	struct vdk_virtio_pci *pci; /* owned (virtio-pci), else NULL */
	uint64_t bar;		    /* virtio-pci: where the ioeventfds are */
	unsigned int slot;	    /* virtio-pci: device number */
	struct vmm_mmio_device_info info;
	bool on_bus;	  /* registered on the MMIO bus */
	bool irqfd_bound; /* irq_fd assigned with KVM_IRQFD */
	int irq_fd;	  /* eventfd, or -1 */
	uint16_t num_queues;
	struct vqueue q[VDK_DEVICE_MAX_QUEUES];
	/* virtio-pci MSI-X (vdev_msix_changed()); vec_lock is a leaf lock. */
	pthread_mutex_t vec_lock;
	bool vec_lock_init;
	uint16_t nvec; /* vec[0 .. nvec - 1] were ever routed */
	struct vvec vec[VDEV_MSIX_VECS];
};

/* stdin feeding a console: read into @buf, pushed as the guest takes it. */
struct stdin_feed {
	struct vdk_console *con; /* or NULL */
	bool on_loop;		 /* stdin added to the loop (else polled) */
	int timer;		 /* timerfd: retry while the input is full */
	bool timer_on_loop;
	uint8_t buf[256];
	size_t off, len;
	bool eof;
};

struct vmm_devices {
	struct vmm_kvm *kvm;
	const struct vdk_mem *mem;
	struct vdk_bus *bus;
	struct vmm_mmio_manager *mgr;
	struct vmm_pci_bus *pci_bus; /* vmm_devices_use_pci(), or NULL */
	struct vdk_loop *loop;
	pthread_t thread;
	bool running;
	struct stdin_feed in;
	atomic_uint_fast64_t notifies, msi_irqfd, msi_ioctl; /* stats */
	unsigned int direct_kick, direct_call;		     /* stats */
	size_t num;
	struct vdev devs[VMM_DEVICES_MAX];
};

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
	d->in.timer = -1;
	d->loop = vdk_loop_epoll_new(&r);
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

/* A queue's ioeventfd fired: the driver notified it (virtio 1.2 §4.2.3.3).
 * Through the transport, whose lock orders it against a reset or
 * QueueReset from a vCPU. */
static void on_notify(void *opaque, int fd, uint32_t events)
{
	struct vqueue *q = opaque;
	uint64_t v;

	(void)events;
	/* The eventfd's count is the number of notifications. */
	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		atomic_fetch_add_explicit(&q->v->owner->notifies, v,
					  memory_order_relaxed);
	if (q->v->pci)
		vdk_virtio_pci_notify(q->v->pci, q->index);
	else
		vdk_mmio_notify(q->v->transport, q->index);
}

/* Queue @q's ioeventfd, bound: a device that waits on it itself (vhost-user:
 * the back-end's kick fd) takes it; else it goes on the loop (on_notify()).
 * Return: 0, or -errno with *@errmsg set. */
static int watch_notify(struct vmm_devices *d, struct vdev *v, struct vqueue *q,
			const char **errmsg)
{
	int r;

	if (vdk_device_set_kick_fd(v->dev, q->index, q->fd) == 0) {
		d->direct_kick++;
		return 0;
	}
	r = vdk_loop_add(d->loop, q->fd, VDK_LOOP_IN, on_notify, q);
	if (r < 0) {
		*errmsg = "cannot watch the ioeventfd";
		return r;
	}
	q->on_loop = true;
	return 0;
}

void vmm_devices_stats(struct vmm_devices *d, struct vmm_devices_stats *out)
{
	out->notifies = atomic_load(&d->notifies);
	out->msi_irqfd = atomic_load(&d->msi_irqfd);
	out->msi_ioctl = atomic_load(&d->msi_ioctl);
	out->direct_kick = d->direct_kick;
	out->direct_call = d->direct_call;
}

void vmm_devices_use_pci(struct vmm_devices *d, struct vmm_pci_bus *pci)
{
	d->pci_bus = pci;
}

/* virtio-pci: an MSI-X message of the function (under its interrupt lock,
 * any thread): through the irqfd of the vector routed to this message, else
 * (not routed yet, routing failed) one KVM_SIGNAL_MSI. */
static void vdev_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct vdev *v = opaque;
	uint64_t one = 1;
	int fd = -1;

	pthread_mutex_lock(&v->vec_lock);
	for (uint16_t i = 0; i < v->nvec; i++) {
		const struct vvec *e = &v->vec[i];

		if (e->routed && e->irqfd && e->addr == addr &&
		    e->data == data) {
			fd = e->fd;
			break;
		}
	}
	pthread_mutex_unlock(&v->vec_lock);
	if (fd >= 0 && write(fd, &one, sizeof(one)) == sizeof(one)) {
		atomic_fetch_add_explicit(&v->owner->msi_irqfd, 1,
					  memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&v->owner->msi_ioctl, 1,
				  memory_order_relaxed);
	vmm_pci_bus_msi(v->owner->kvm, addr, data);
}

/* Route MSI-X vector @i as the driver programmed it: a GSI with a KVM MSI
 * route to its message and an irqfd on that GSI. A masked vector keeps its
 * old route: the PCI model holds its messages pending until unmasked. */
static void vdev_msix_update(struct vdev *v, uint16_t i)
{
	struct vdk_pci_dev *pd = vdk_virtio_pci_dev(v->pci);
	struct vmm_kvm *kvm = v->owner->kvm;
	struct vvec *e = &v->vec[i];
	uint64_t addr;
	uint32_t data;
	bool masked;
	int r;

	if (vdk_pci_msix_entry(pd, i, &addr, &data, &masked) < 0 || masked ||
	    !vdk_pci_msix_enabled(pd))
		return;
	pthread_mutex_lock(&v->vec_lock);
	if (e->fd < 0)
		e->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->fd >= 0 && e->gsi < 0)
		e->gsi = vmm_kvm_msi_route_alloc(kvm);
	if (e->fd < 0 || e->gsi < 0)
		goto out; /* KVM_SIGNAL_MSI then */
	if (!e->routed || e->addr != addr || e->data != data) {
		e->routed = false;
		r = vmm_kvm_msi_route_set(kvm, (uint32_t)e->gsi, addr, data,
					  true);
		if (r < 0) {
			vdk_log(VDK_LOG_WARN, MOD,
				"%s: MSI-X vector %u: KVM_SET_GSI_ROUTING: %s",
				v->info.id, i, strerror(-r));
			goto out;
		}
		e->addr = addr;
		e->data = data;
		e->routed = true;
	}
	if (!e->irqfd && vmm_kvm_irqfd(kvm, e->fd, (uint32_t)e->gsi, true) == 0)
		e->irqfd = true;
	if (i >= v->nvec)
		v->nvec = (uint16_t)(i + 1);
out:
	pthread_mutex_unlock(&v->vec_lock);
}

/* virtio-pci: the driver changed MSI-X vector @vector, or every vector
 * (UINT16_MAX: enable or function mask); from a vCPU's config or BAR
 * write, without the interrupt lock. */
static void vdev_msix_changed(void *opaque, uint16_t vector)
{
	struct vdev *v = opaque;

	if (vector != UINT16_MAX) {
		if (vector < VDEV_MSIX_VECS)
			vdev_msix_update(v, vector);
		return;
	}
	for (uint16_t i = 0; i < VDEV_MSIX_VECS; i++)
		vdev_msix_update(v, i);
}

/* Take down the vectors' irqfds and routes (after the transport is gone). */
static void vdev_msix_free(struct vdev *v)
{
	struct vmm_kvm *kvm = v->owner->kvm;

	for (uint16_t i = 0; i < VDEV_MSIX_VECS; i++) {
		struct vvec *e = &v->vec[i];

		if (e->irqfd)
			vmm_kvm_irqfd(kvm, e->fd, (uint32_t)e->gsi, false);
		if (e->gsi >= 0)
			vmm_kvm_msi_route_free(kvm, (uint32_t)e->gsi);
		if (e->fd >= 0)
			close(e->fd);
		*e = (struct vvec){.fd = -1, .gsi = -1};
	}
	if (v->vec_lock_init)
		pthread_mutex_destroy(&v->vec_lock);
	v->vec_lock_init = false;
}

/* virtio-pci without MSI-X: the INTA pin (under the function's interrupt
 * lock, any thread). */
static void vdev_intx(void *opaque, bool level)
{
	struct vdev *v = opaque;

	vmm_pci_bus_intx(v->owner->pci_bus, v->slot, level);
}

/* (De)assign the queues' ioeventfds at the notification addresses of a
 * BAR at @bar (virtio 1.2 §4.1.4.4; 2-byte writes of the queue index). */
static void vdev_pci_ioeventfds(struct vdev *v, uint64_t bar, bool assign)
{
	for (uint16_t i = 0; i < v->num_queues; i++) {
		struct vqueue *q = &v->q[i];
		int64_t off = vdk_virtio_pci_notify_offset(v->pci, i);

		if (q->fd < 0 || off < 0 || q->bound == assign)
			continue;
		if (vmm_kvm_ioeventfd(v->owner->kvm, q->fd, bar + (uint64_t)off,
				      2, i, assign) == 0)
			q->bound = assign;
		else
			vdk_log(VDK_LOG_WARN, MOD,
				"%s: KVM_IOEVENTFD at %#llx failed; queue %u "
				"notifications exit to the VMM",
				v->info.id,
				(unsigned long long)(bar + (uint64_t)off), i);
	}
	v->bar = bar;
}

/* virtio-pci: the function's BAR started or stopped decoding (firmware or
 * the guest placed it); the ioeventfds follow. From inside a
 * configuration write, under the transport lock. */
static void vdev_bar_map(void *opaque, unsigned int bar, uint64_t addr,
			 uint64_t size, bool mapped)
{
	struct vdev *v = opaque;

	(void)size;
	if (bar == VDK_VIRTIO_PCI_BAR)
		vdev_pci_ioeventfds(v, mapped ? addr : v->bar, mapped);
}

/* virtio-pci: the transport, eventfds on the loop, then the function on
 * the bus (which places the BAR and so binds the ioeventfds). */
static int vdev_attach_pci(struct vmm_devices *d, struct vdev *v,
			   const char *id, const char **errmsg)
{
	struct vdk_virtio_pci_config pc = {
		.device = v->dev,
		.mem = d->mem,
		.msi = vdev_msi,
		.msix_changed = vdev_msix_changed,
		.intx = vdev_intx,
		.bar_map = vdev_bar_map,
		.opaque = v,
	};
	unsigned int slot;
	int r;

	v->num_queues = v->dev->num_queues;
	snprintf(v->info.id, sizeof(v->info.id), "%s", id);
	v->info.type = v->dev->ops->device_type;
	for (uint16_t i = 0; i < v->num_queues; i++) {
		struct vqueue *q = &v->q[i];

		q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->fd < 0) {
			*errmsg = "eventfd() failed";
			return -errno;
		}
		/* Used buffer notifications stay with the transport on
		 * virtio-pci: MSI-X masking (pending bits) and the driver's
		 * queue-to-vector choices are the transport's to follow. */
		r = watch_notify(d, v, q, errmsg);
		if (r < 0)
			return r;
	}
	v->pci = vdk_virtio_pci_new(&pc, &r);
	if (!v->pci) {
		*errmsg = "cannot create the virtio-pci transport";
		return r;
	}
	r = vmm_pci_bus_add(d->pci_bus, v->pci, &slot);
	if (r < 0) {
		*errmsg = "no room on the PCI bus";
		return r;
	}
	v->slot = slot;
	vdk_log(VDK_LOG_INFO, MOD, "%s: virtio-pci at 00:%02x.0, BAR %#llx", id,
		slot, (unsigned long long)v->bar);
	return 0;
}

/* Create the transport, place it, bind its irqfd and ioeventfds and put
 * them on the loop. */
static int vdev_attach(struct vmm_devices *d, struct vdev *v, const char *id,
		       const char **errmsg)
{
	struct vdk_mmio_config mc = {
		.device = v->dev,
		.mem = d->mem,
		.irq = vdev_irq,
		.irq_opaque = v,
	};
	bool direct_used = false;
	int r;

	r = vdk_device_attach_loop(v->dev, d->loop);
	if (r < 0) {
		*errmsg = "the device cannot use the event loop";
		return r;
	}
	if (d->pci_bus)
		return vdev_attach_pci(d, v, id, errmsg);
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
		d->mgr, v->dev->ops->device_type, id, d->bus,
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

	v->num_queues = v->dev->num_queues;
	for (uint16_t i = 0; i < v->num_queues; i++) {
		struct vqueue *q = &v->q[i];

		q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->fd < 0) {
			*errmsg = "eventfd() failed";
			return -errno;
		}
		r = vmm_kvm_ioeventfd(d->kvm, q->fd,
				      v->info.base + VIRTIO_MMIO_QUEUE_NOTIFY,
				      4, i, true);
		if (r < 0) {
			*errmsg = "KVM_IOEVENTFD failed";
			return r;
		}
		q->bound = true;
		/* Direct notifications (vhost-user): the ioeventfd is the
		 * back-end's kick fd, the device's irqfd its call fd. */
		if (vdk_device_set_call_fd(v->dev, i, v->irq_fd) == 0) {
			d->direct_call++;
			direct_used = true;
		}
		r = watch_notify(d, v, q, errmsg);
		if (r < 0)
			return r;
	}
	/* The device's own GSI, edge-triggered: InterruptStatus reports
	 * "used buffer" for the interrupts the transport does not see. */
	vdk_mmio_set_direct_used_notify(v->transport, direct_used);
	return 0;
}

int vmm_devices_add(struct vmm_devices *d, const char *id,
		    struct vdk_device *dev, const char **errmsg)
{
	const char *msg = "too many devices";
	struct vdev *v;
	int r = -ENOSPC;

	if (d->num == VMM_DEVICES_MAX) {
		vdk_device_fini(dev);
		goto out;
	}
	v = &d->devs[d->num++];
	memset(v, 0, sizeof(*v));
	v->owner = d;
	v->dev = dev;
	v->irq_fd = -1;
	for (size_t i = 0; i < VDEV_MSIX_VECS; i++)
		v->vec[i] = (struct vvec){.fd = -1, .gsi = -1};
	pthread_mutex_init(&v->vec_lock, NULL);
	v->vec_lock_init = true;
	for (size_t i = 0; i < VDK_DEVICE_MAX_QUEUES; i++) {
		v->q[i].v = v;
		v->q[i].index = (uint16_t)i;
		v->q[i].fd = -1;
	}
	r = vdev_attach(d, v, id, &msg);
out:
	if (r < 0 && errmsg)
		*errmsg = msg;
	return r;
}

/* ---- stdin into a console ------------------------------------------------ */

static void stdin_timer(struct vmm_devices *d, bool on)
{
	struct stdin_feed *in = &d->in;
	struct itimerspec its = {0};

	if (on && !in->timer_on_loop)
		in->timer_on_loop =
			vdk_loop_modify(d->loop, in->timer, VDK_LOOP_IN) == 0;
	else if (!on && in->timer_on_loop)
		in->timer_on_loop = vdk_loop_modify(d->loop, in->timer, 0) < 0;
	if (on) {
		its.it_interval.tv_nsec = 5000000; /* 5 ms */
		its.it_value.tv_nsec = 5000000;
	}
	(void)timerfd_settime(in->timer, 0, &its, NULL);
}

/* Read stdin if nothing waits, push what waits; pause stdin and retry from
 * the timer while the console's input buffer is full. */
static void stdin_pump(struct vmm_devices *d)
{
	struct stdin_feed *in = &d->in;
	ssize_t n;
	int r;

	if (in->off == in->len && !in->eof) {
		n = read(STDIN_FILENO, in->buf, sizeof(in->buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (n <= 0) { /* EOF or error: the guest gets no more */
			in->eof = true;
			if (in->on_loop)
				(void)vdk_loop_remove(d->loop, STDIN_FILENO);
			in->on_loop = false;
			stdin_timer(d, false);
			return;
		}
		in->off = 0;
		in->len = (size_t)n;
	}
	while (in->off < in->len) {
		r = vdk_console_push_input(in->con, in->buf + in->off,
					   in->len - in->off);
		if (r <= 0)
			break;
		in->off += (size_t)r;
	}
	if (in->on_loop)
		(void)vdk_loop_modify(d->loop, STDIN_FILENO,
				      in->off < in->len ? 0 : VDK_LOOP_IN);
	/* full: retry; a stdin that cannot be polled is read on each tick */
	stdin_timer(d, !in->eof && (in->off < in->len || !in->on_loop));
}

static void on_stdin(void *opaque, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	stdin_pump(opaque);
}

static void on_stdin_timer(void *opaque, int fd, uint32_t events)
{
	uint64_t ticks;

	(void)events;
	(void)!read(fd, &ticks, sizeof(ticks));
	stdin_pump(opaque);
}

int vmm_devices_feed_stdin(struct vmm_devices *d, struct vdk_console *con)
{
	struct stdin_feed *in = &d->in;
	int r;

	if (in->con)
		return -EBUSY;
	in->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (in->timer < 0)
		return -errno;
	r = vdk_loop_add(d->loop, in->timer, 0, on_stdin_timer, d);
	if (r < 0)
		return r;
	in->con = con;
	r = vdk_loop_add(d->loop, STDIN_FILENO, VDK_LOOP_IN, on_stdin, d);
	in->on_loop = r == 0;
	if (r == -EPERM) /* a regular file: read it on the timer */
		stdin_timer(d, true);
	else if (r < 0)
		return r;
	return 0;
}

/* ---- the device thread ---------------------------------------------------- */

static void *device_thread(void *arg)
{
	struct vmm_devices *d = arg;

	(void)vdk_loop_epoll_run(d->loop); /* logs its failure */
	return NULL;
}

int vmm_devices_start(struct vmm_devices *d)
{
	int r = pthread_create(&d->thread, NULL, device_thread, d);

	if (r)
		return -r;
	d->running = true;
	return 0;
}

static void vdev_free(struct vmm_devices *d, struct vdev *v)
{
	for (uint16_t i = 0; i < VDK_DEVICE_MAX_QUEUES; i++) {
		struct vqueue *q = &v->q[i];

		if (q->on_loop)
			(void)vdk_loop_remove(d->loop, q->fd);
		if (q->bound && v->pci)
			vmm_kvm_ioeventfd(
				d->kvm, q->fd,
				v->bar + (uint64_t)vdk_virtio_pci_notify_offset(
						 v->pci, i),
				2, i, false);
		else if (q->bound)
			vmm_kvm_ioeventfd(d->kvm, q->fd,
					  v->info.base +
						  VIRTIO_MMIO_QUEUE_NOTIFY,
					  4, i, false);
		if (q->fd >= 0)
			close(q->fd);
	}
	if (v->irqfd_bound)
		vmm_kvm_irqfd(d->kvm, v->irq_fd, v->info.irq, false);
	if (v->on_bus)
		vdk_bus_deregister(d->bus, v->info.base, NULL);
	/* Resets an active device: no more interrupts after this. */
	vdk_mmio_free(v->transport);
	vdk_virtio_pci_free(v->pci);
	vdev_msix_free(v);
	if (v->irq_fd >= 0)
		close(v->irq_fd);
	/* The device takes its own fds off the loop. */
	vdk_device_fini(v->dev);
}

void vmm_devices_free(struct vmm_devices *d)
{
	if (!d)
		return;
	if (d->running) {
		vdk_loop_epoll_stop(d->loop);
		pthread_join(d->thread, NULL);
	}
	if (d->in.on_loop)
		(void)vdk_loop_remove(d->loop, STDIN_FILENO);
	if (d->in.timer >= 0) {
		(void)vdk_loop_remove(d->loop, d->in.timer);
		close(d->in.timer);
	}
	for (size_t i = 0; i < d->num; i++)
		vdev_free(d, &d->devs[i]);
	vdk_loop_epoll_free(d->loop);
	free(d);
}
