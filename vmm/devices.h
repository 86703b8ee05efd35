/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio devices of vdk-vmm (virtio 1.2 §4.2): each libvdk device
 * (virtio-blk, virtio-rng, virtio-console) behind a struct vdk_mmio transport, placed by
 * the MMIO device manager (a 4 KiB window and a GSI each), and served by
 * one device thread:
 *
 *  - queue notifications: a KVM ioeventfd per queue on the QueueNotify
 *    register (datamatch = queue index), so a driver's notification costs
 *    no exit to userspace; the device thread hands it to the device through
 *    the transport (vdk_mmio_write() of QueueNotify, which serialises it
 *    against resets under the transport lock and ends in
 *    vdk_device_queue_notify());
 *  - virtio-blk I/O completions: vdk_blk_completion_fd() of each queue,
 *    answered with vdk_blk_process_completions();
 *  - interrupts: the transport's irq callback writes an eventfd bound to
 *    the device's GSI with KVM_IRQFD when the line rises; the ACPI tables
 *    describe the line as edge-triggered, active high. (The virtio-mmio
 *    driver acknowledges InterruptStatus before it looks at the rings, so
 *    one edge per rise loses nothing.)
 *
 * Lifecycle: vmm_devices_new(), vmm_devices_add_*() while the VM is set up
 * (before vCPUs run), vmm_devices_start(), and vmm_devices_free() after the
 * vCPUs have stopped.
 */
#ifndef VDK_VMM_DEVICES_H
#define VDK_VMM_DEVICES_H

#include <stdbool.h>

#include <vdk/bus.h>
#include <vdk/devices/blk.h>
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
 * vmm_devices_add_blk() - add a virtio-blk device (virtio 1.2 §5.2).
 * @id:  manager key, e.g. "disk0"; copied.
 * @cfg: image path and options (<vdk/devices/blk.h>); not kept.
 * @errmsg: if not NULL, set on failure to a static reason.
 * Return: 0; -ENOSPC if VMM_DEVICES_MAX devices exist or IRQs ran out;
 * vdk_blk_new()'s error (e.g. -ENOENT, -EACCES for the image);
 * vmm_mmio_manager_register()'s error; -errno of eventfd() or the KVM
 * irqfd/ioeventfd ioctls. A failed device stays in the set, inert, until
 * vmm_devices_free().
 */
int vmm_devices_add_blk(struct vmm_devices *d, const char *id,
			const struct vdk_blk_config *cfg, const char **errmsg);

/**
 * vmm_devices_add_rng() - add a virtio-rng device (virtio 1.2 §5.4).
 * Return and @id, @errmsg: as vmm_devices_add_blk().
 */
int vmm_devices_add_rng(struct vmm_devices *d, const char *id,
			const char **errmsg);

/**
 * vmm_devices_add_console() - add a virtio-console device with one port,
 * port 0 (virtio 1.2 §5.3; Linux names it hvc0).
 * @cfg:   output fd (not owned: it must stay open until vmm_devices_free())
 *         and options (<vdk/devices/console.h>); not kept.
 * @stdin_input: feed port 0 from stdin: a thread started by
 *         vmm_devices_start() reads stdin and hands the bytes to
 *         vdk_console_push_input(), waiting while the device's input buffer
 *         is full (the guest has not posted receive buffers); it ends at EOF.
 *         At most one console may read stdin.
 * When the output fd would block (EAGAIN), the device thread waits for it
 * to become writable (EPOLLOUT) and calls vdk_console_flush_output().
 * Return and @id, @errmsg: as vmm_devices_add_blk(); -EBUSY for a second
 * console reading stdin.
 */
int vmm_devices_add_console(struct vmm_devices *d, const char *id,
			    const struct vdk_console_config *cfg,
			    bool stdin_input, const char **errmsg);

/**
 * vmm_devices_use_pci() - attach the devices added from now on through
 * virtio-pci (virtio 1.2 §4.1) on @pci instead of virtio-mmio: a function
 * on the bus with its BAR placed in the window, MSI-X messages injected
 * with KVM_SIGNAL_MSI, and an ioeventfd per queue on its notification
 * address (2-byte writes of the queue index, as Linux's virtio-pci
 * writes), moved with the BAR when the guest moves it. Without MSI-X the
 * function's INTA drives a shared level GSI (vmm_pci_bus_intx()). @pci is
 * not owned; free it after vmm_devices_free().
 */
void vmm_devices_use_pci(struct vmm_devices *d, struct vmm_pci_bus *pci);

/**
 * vmm_devices_start() - start the device thread (and the console's stdin
 * thread, if any).
 * Return: 0 or -errno of pthread_create.
 */
int vmm_devices_start(struct vmm_devices *d);

/**
 * vmm_devices_free() - stop the device and stdin threads, unbind the eventfds from
 * KVM, deregister and free every transport (which resets its device) and
 * device. Call after the vCPUs have stopped. NULL is fine.
 */
void vmm_devices_free(struct vmm_devices *d);

#endif /* VDK_VMM_DEVICES_H */
