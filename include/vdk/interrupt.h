/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The interrupt object a device signals through (virtio 1.2 §2.3:
 * notifications from the device to the driver): used buffer and
 * configuration change notifications, and DEVICE_NEEDS_RESET. A transport
 * backs it with callbacks (virtio-mmio) or eventfds (vhost-user call fds,
 * KVM irqfds). Implemented in src/interrupt.c.
 */
#ifndef VDK_INTERRUPT_H
#define VDK_INTERRUPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Most queues one device may have. */
#define VDK_DEVICE_MAX_QUEUES 64

/**
 * struct vdk_interrupt_ops - how a transport delivers a device's
 * notifications to the driver. Every member may be NULL (then the event is
 * dropped).
 */
struct vdk_interrupt_ops {
	/** Used buffer notification for queue @queue (virtio 1.2 §2.3). */
	void (*signal_used_queue)(void *opaque, uint16_t queue);
	/** Configuration change notification (virtio 1.2 §2.3, §2.5.1). */
	void (*signal_config_changed)(void *opaque);
	/** The device hit an error it cannot recover from: the transport sets
	 * DEVICE_NEEDS_RESET and sends a configuration change notification
	 * (virtio 1.2 §2.1.2). */
	void (*set_needs_reset)(void *opaque);
};

/**
 * struct vdk_interrupt_guard - private to src/interrupt.c: the signallers
 * of one eventfd slot that may still be writing to it (see "Replacing an
 * eventfd" below). One 32-bit word, padded to 64 bytes so that workers of
 * different queues do not write to the same cache line.
 */
struct vdk_interrupt_guard {
	uint32_t word; /* bit 31 epoch; bits 0-14, 16-30: signallers of
			* epoch 0, 1 */
	uint8_t pad[60];
};

/**
 * struct vdk_interrupt - the object a device signals through. Either
 * callback-backed (vdk_interrupt_init_callback()) or eventfd-backed
 * (vdk_interrupt_init_eventfd(), as vhost-user call fds and KVM irqfds are).
 *
 * Threading: the vdk_interrupt_signal_*() and vdk_interrupt_needs_reset()
 * calls may be made from any thread, several at once (a device's workers).
 * The control thread may replace an eventfd while they do, only through
 * vdk_interrupt_set_queue_fd() / vdk_interrupt_set_config_fd().
 *
 * Replacing an eventfd (the rule for whoever owns the fds): a signaller
 * loads the slot's fd inside a guarded section (an atomic count in the
 * slot's struct vdk_interrupt_guard, taken before the load and dropped
 * after its one write()). vdk_interrupt_set_queue_fd() publishes the new fd,
 * then waits until every signaller that could have loaded the old one has
 * left (RCU-like: it flips the guard's epoch and waits for the old epoch's
 * count to drain; signallers that enter meanwhile count in the new epoch
 * and read the new fd), and only then hands the old fd back. So the old fd
 * may be closed as soon as it is handed back: no write can reach it, or
 * another file that reuses its number, afterwards. Signallers never wait.
 * An fd must not be closed while it is installed.
 */
struct vdk_interrupt {
	const struct vdk_interrupt_ops *ops; /**< NULL for eventfd backing */
	void *opaque;
	/** eventfds, -1 if none; read atomically by signallers, changed only
	 * by vdk_interrupt_set_queue_fd() once signallers may run */
	int queue_fd[VDK_DEVICE_MAX_QUEUES];
	int config_fd;	  /**< eventfd, -1 if none; same rules */
	bool needs_reset; /**< set by needs_reset() */
	/** eventfd writes that failed (other than a full counter); atomic.
	 * Only the first is logged: a front-end's fd must not flood the log. */
	uint32_t signal_errors;
	/** private: guard[q] for queue_fd[q], guard[VDK_DEVICE_MAX_QUEUES]
	 * for config_fd */
	struct vdk_interrupt_guard guard[VDK_DEVICE_MAX_QUEUES + 1];
};

/**
 * vdk_interrupt_init_callback() - back @irq with @ops / @opaque (not owned).
 * Not to be called while another thread signals through @irq.
 */
void vdk_interrupt_init_callback(struct vdk_interrupt *irq,
				 const struct vdk_interrupt_ops *ops,
				 void *opaque);

/**
 * vdk_interrupt_init_eventfd() - back @irq with eventfds.
 * @queue_fds: @n eventfds, one per queue, -1 for none (not owned; the
 *             caller closes them after the device stops, or once
 *             vdk_interrupt_set_queue_fd() handed them back).
 * @n:         at most VDK_DEVICE_MAX_QUEUES.
 * @config_fd: eventfd for configuration changes, or -1.
 *
 * Not to be called while another thread signals through @irq.
 *
 * Return: 0, or -EINVAL if @n is too large.
 */
int vdk_interrupt_init_eventfd(struct vdk_interrupt *irq, const int *queue_fds,
			       size_t n, int config_fd);

/**
 * vdk_interrupt_set_queue_fd() - replace the eventfd of queue @queue of an
 * eventfd-backed @irq while devices may be signalling through it (vhost-user
 * SET_VRING_CALL on a running ring; virtio 1.2 §2.3 notifications).
 * @fd:     the new eventfd, or -1 for none (not owned; it must stay open
 *          until it is handed back by a later call, or the device stopped).
 * @old_fd: set to the fd it replaces (-1 if none). No signaller can write
 *          to it any more: the caller may close it at once.
 *
 * Locking: waits (yielding the CPU) for the signallers that may have loaded
 * the old fd to finish their write; each is one write() of 8 bytes, so the
 * wait is short unless that write blocks (a full pipe, or an eventfd counter
 * at its maximum: only the reader of the fd can cause that). Calls for one
 * @irq must not run concurrently with each other (one control thread).
 *
 * Return: 0; -EINVAL if @queue >= VDK_DEVICE_MAX_QUEUES or @irq is
 * callback-backed (nothing is changed then).
 */
int vdk_interrupt_set_queue_fd(struct vdk_interrupt *irq, uint16_t queue,
			       int fd, int *old_fd);

/**
 * vdk_interrupt_set_config_fd() - the same for the configuration change
 * eventfd (virtio 1.2 §2.3, §2.5.1); same rules and errors (-EINVAL only
 * for a callback-backed @irq).
 */
int vdk_interrupt_set_config_fd(struct vdk_interrupt *irq, int fd, int *old_fd);

/**
 * vdk_interrupt_signal_used_queue() - send a used buffer notification for
 * @queue: the callback, or a write of 1 to the queue's eventfd (one write()
 * and two atomic operations on the queue's guard). Any thread.
 */
void vdk_interrupt_signal_used_queue(struct vdk_interrupt *irq, uint16_t queue);

/** vdk_interrupt_signal_config_changed() - configuration change. Any
 * thread. */
void vdk_interrupt_signal_config_changed(struct vdk_interrupt *irq);

/**
 * vdk_interrupt_needs_reset() - report a fatal device error: records it
 * (irq->needs_reset), then calls set_needs_reset or, for eventfd backing,
 * signals the config eventfd. Any thread.
 */
void vdk_interrupt_needs_reset(struct vdk_interrupt *irq);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_INTERRUPT_H */
