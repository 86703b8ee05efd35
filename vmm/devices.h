/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio devices of vdk-vmm (virtio 1.2 §4.2, or §4.1 with
 * vmm_devices_use_pci()): each libvdk device
 * (any struct vdk_device) behind a struct vdk_mmio transport, placed by the
 * MMIO device manager (a 4 KiB window and a GSI each), and served by one
 * device thread running one event loop (<vdk/loop.h>):
 *
 *  - queue notifications: a KVM ioeventfd per queue on the QueueNotify
 *    register (datamatch = queue index), so a driver's notification costs
 *    no exit to userspace; the loop hands it to the transport
 *    (vdk_mmio_notify(), which serialises it against resets under the
 *    transport lock and ends in vdk_device_queue_notify());
 *  - the devices' own event sources (virtio-blk's io_uring completions,
 *    virtio-console's output readiness): each device registers them on the
 *    loop it is given (vdk_device_attach_loop()); nothing here knows them;
 *  - stdin for one console (vmm_devices_feed_stdin());
 *  - interrupts: the transport's irq callback writes an eventfd bound to
 *    the device's GSI with KVM_IRQFD when the line rises; the ACPI tables
 *    describe the line as edge-triggered, active high. (The virtio-mmio
 *    driver acknowledges InterruptStatus before it looks at the rings, so
 *    one edge per rise loses nothing.)
 *
 * Lifecycle: vmm_devices_new(), vmm_devices_add() while the VM is set up
 * (before vCPUs run), vmm_devices_start(), and vmm_devices_free() after the
 * vCPUs have stopped.
 */
#ifndef VDK_VMM_DEVICES_H
#define VDK_VMM_DEVICES_H

#include <stdbool.h>

#include <vdk/bus.h>
#include <vdk/devices/console.h>
#include <vdk/mem.h>

#include "kvm.h"
#include "mmio_manager.h"
#include "pci_bus.h"

/** Most virtio devices one VM gets (IRQs 5..23 without 4). */
#define VMM_DEVICES_MAX 24u

struct vmm_devices;

/**
 * vmm_devices_new() - an empty device set.
 * @kvm: the VM (irqfd, ioeventfd); @mem: guest memory; @mmio_bus: where
 * transports are registered; @mgr: gives out windows and IRQs. None owned;
 * all outlive the set.
 * @err: 0, -ENOMEM or -errno of epoll_create1()/eventfd(); may be NULL.
 * Return: the set (vmm_devices_free()), or NULL.
 */
struct vmm_devices *vmm_devices_new(struct vmm_kvm *kvm,
				    const struct vdk_mem *mem,
				    struct vdk_bus *mmio_bus,
				    struct vmm_mmio_manager *mgr, int *err);

/**
 * vmm_devices_add() - add a virtio device (any struct vdk_device: blk, rng,
 * console, ...) behind a virtio-mmio transport: a window and a GSI from the
 * manager, an irqfd, an ioeventfd per queue; the device gets the event loop
 * (vdk_device_attach_loop()) and registers its own fds there.
 * @id:  manager key, e.g. "disk0"; copied.
 * @dev: an initialised device, NEW; owned from now on (even on failure),
 *       freed by vdk_device_fini() in vmm_devices_free().
 * @errmsg: if not NULL, set on failure to a static reason.
 * Return: 0; -ENOSPC if VMM_DEVICES_MAX devices exist or IRQs ran out;
 * vmm_mmio_manager_register()'s error; -errno of eventfd(), the loop or
 * the KVM irqfd/ioeventfd ioctls. A failed device stays in the set, inert,
 * until vmm_devices_free().
 */
int vmm_devices_add(struct vmm_devices *d, const char *id,
		    struct vdk_device *dev, const char **errmsg);

/**
 * vmm_devices_use_pci() - attach the devices added from now on through
 * virtio-pci (virtio 1.2 §4.1) on @pci instead of virtio-mmio: a function
 * on the bus with its BAR placed in the 64-bit window, each MSI-X vector
 * the driver unmasks routed through its own irqfd on a KVM MSI route
 * (KVM_SET_GSI_ROUTING, updated when the driver reprograms the vector;
 * KVM_SIGNAL_MSI only when that fails), and an ioeventfd per queue on its notification
 * address (2-byte writes of the queue index, as Linux's virtio-pci
 * writes), moved with the BAR when the guest moves it. Without MSI-X the
 * function's INTA drives a shared level GSI (vmm_pci_bus_intx()). @pci is
 * not owned; free it after vmm_devices_free().
 */
void vmm_devices_use_pci(struct vmm_devices *d, struct vmm_pci_bus *pci);

/**
 * vmm_devices_feed_stdin() - feed @con (added with vmm_devices_add()) from
 * stdin on the device thread's loop: bytes go to vdk_console_push_input();
 * while the device's input buffer is full (the guest has not posted
 * receive buffers) stdin is paused and the rest retried every 5 ms; EOF
 * ends it. A stdin that cannot be polled (a regular file) is read every
 * 5 ms.
 * Return: 0; -EBUSY for a second console; -errno of timerfd or the loop.
 */
int vmm_devices_feed_stdin(struct vmm_devices *d, struct vdk_console *con);

/** struct vmm_devices_stats - counts since vmm_devices_new(). */
struct vmm_devices_stats {
	uint64_t notifies;  /**< queue notifications (ioeventfd counts) */
	uint64_t msi_irqfd; /**< MSI-X messages through a routed irqfd */
	uint64_t msi_ioctl; /**< MSI-X messages through KVM_SIGNAL_MSI */
	/** queues whose ioeventfd the device took (vdk_device_set_kick_fd():
	 * a vhost-user back-end reads it; not in @notifies) */
	unsigned int direct_kick;
	/** queues whose used buffer notifications go straight to the
	 * device's irqfd (vdk_device_set_call_fd()) */
	unsigned int direct_call;
};

/** vmm_devices_stats() - the counters of @d into @out. Any thread. */
void vmm_devices_stats(struct vmm_devices *d, struct vmm_devices_stats *out);

/**
 * vmm_devices_start() - start the device thread, which runs the loop.
 * Return: 0 or -errno of pthread_create.
 */
int vmm_devices_start(struct vmm_devices *d);

/**
 * vmm_devices_free() - stop the device thread, unbind the eventfds from
 * KVM, deregister and free every transport (which resets its device) and
 * device. Call after the vCPUs have stopped. NULL is fine.
 */
void vmm_devices_free(struct vmm_devices *d);

#endif /* VDK_VMM_DEVICES_H */
