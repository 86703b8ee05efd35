/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The interrupt object a device signals through (virtio 1.2 §2.3:
 * notifications from the device to the driver). Two backings: callbacks set
 * by a transport (virtio-mmio raises InterruptStatus bits and its line), or
 * eventfds (vhost-user call fds, KVM irqfds), where a notification is a
 * write of the 8-byte value 1.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <vdk/device.h>
#include <vdk/log.h>

#define MOD "interrupt"

static void interrupt_clear(struct vdk_interrupt *irq)
{
	memset(irq, 0, sizeof(*irq));
	for (size_t i = 0; i < VDK_DEVICE_MAX_QUEUES; i++)
		irq->queue_fd[i] = -1;
	irq->config_fd = -1;
}

void vdk_interrupt_init_callback(struct vdk_interrupt *irq,
				 const struct vdk_interrupt_ops *ops,
				 void *opaque)
{
	interrupt_clear(irq);
	irq->ops = ops;
	irq->opaque = opaque;
}

int vdk_interrupt_init_eventfd(struct vdk_interrupt *irq, const int *queue_fds,
			       size_t n, int config_fd)
{
	if (n > VDK_DEVICE_MAX_QUEUES || (n > 0 && !queue_fds)) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"eventfd backing: %zu queue fds (at most %d)", n,
			VDK_DEVICE_MAX_QUEUES);
		return -EINVAL;
	}
	interrupt_clear(irq);
	for (size_t i = 0; i < n; i++)
		irq->queue_fd[i] = queue_fds[i] < 0 ? -1 : queue_fds[i];
	irq->config_fd = config_fd < 0 ? -1 : config_fd;
	return 0;
}

/*
 * Add 1 to an eventfd counter. EAGAIN means the counter is at its maximum:
 * the reader has not consumed the earlier signals yet, so this one is
 * already pending and nothing is lost.
 */
static void eventfd_signal(int fd, const char *what)
{
	const uint64_t one = 1;
	ssize_t n;

	do {
		n = write(fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN)
		vdk_log(VDK_LOG_ERROR, MOD, "%s eventfd %d: write failed: %s",
			what, fd, strerror(errno));
	else if (n >= 0 && n != (ssize_t)sizeof(one))
		vdk_log(VDK_LOG_ERROR, MOD, "%s eventfd %d: short write %zd",
			what, fd, n);
}

void vdk_interrupt_signal_used_queue(struct vdk_interrupt *irq, uint16_t queue)
{
	if (!irq)
		return;
	if (irq->ops) {
		if (irq->ops->signal_used_queue)
			irq->ops->signal_used_queue(irq->opaque, queue);
		return;
	}
	if (queue < VDK_DEVICE_MAX_QUEUES && irq->queue_fd[queue] >= 0)
		eventfd_signal(irq->queue_fd[queue], "used queue");
}

void vdk_interrupt_signal_config_changed(struct vdk_interrupt *irq)
{
	if (!irq)
		return;
	if (irq->ops) {
		if (irq->ops->signal_config_changed)
			irq->ops->signal_config_changed(irq->opaque);
		return;
	}
	if (irq->config_fd >= 0)
		eventfd_signal(irq->config_fd, "config");
}

void vdk_interrupt_needs_reset(struct vdk_interrupt *irq)
{
	if (!irq)
		return;
	/* A device worker may report this while the control thread reads
	 * the flag. */
	__atomic_store_n(&irq->needs_reset, true, __ATOMIC_RELEASE);
	if (irq->ops) {
		if (irq->ops->set_needs_reset)
			irq->ops->set_needs_reset(irq->opaque);
		return;
	}
	/* eventfd backing has no status register: the frontend learns of the
	 * error from the configuration change it is sent (virtio 1.2 §2.1.2). */
	if (irq->config_fd >= 0)
		eventfd_signal(irq->config_fd, "config");
}
