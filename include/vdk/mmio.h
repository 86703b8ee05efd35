/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio transport, device side: the version 2 register file of
 * virtio 1.2 §4.2.2 in front of one struct vdk_device.
 *
 * The transport is a bus device (vdk_mmio_bus_ops): register it on an MMIO
 * bus with a 0x200-byte (or larger) range. Registers are 32-bit and must be
 * accessed with aligned 32-bit accesses (§4.2.2.2); other accesses outside
 * the configuration space are ignored (reads return 0) and logged once.
 * The configuration space at 0x100 is forwarded to the device with any
 * access width.
 *
 * Device status follows §2.1 and §3.1.1: FEATURES_OK sticks only if the
 * driver's features are acceptable (VIRTIO_F_VERSION_1 set, nothing that was
 * not offered); DRIVER_OK activates the device with its ready queues; 0
 * resets device and queues. A driver error (a queue that fails to activate,
 * a device that fails to start) sets DEVICE_NEEDS_RESET and raises a
 * configuration change interrupt instead of crashing.
 *
 * Notifications: a QueueNotify write calls the notify callback if one is
 * set (a VMM defers to its device thread, or uses ioeventfd and never sees
 * the write), otherwise the device's queue_notify op directly.
 * Interrupts: the device's vdk_interrupt sets InterruptStatus bits and calls
 * the irq callback with the new level (level-triggered line: true while
 * InterruptStatus is non-zero).
 *
 * Locking: one mutex serialises register accesses (and every call into the
 * device framework); a second, inner one guards InterruptStatus,
 * ConfigGeneration and DEVICE_NEEDS_RESET, which device workers update. So
 * vCPU threads and device workers may call in concurrently, and a device may
 * signal from inside any op the transport calls.
 */
#ifndef VDK_MMIO_H
#define VDK_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/bus.h>
#include <vdk/device.h>
#include <vdk/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** QueueReset register (virtio 1.2 §4.2.2); not in older uapi headers. */
#ifndef VIRTIO_MMIO_QUEUE_RESET
#define VIRTIO_MMIO_QUEUE_RESET 0x0c0
#endif

/** Bytes of register space before the configuration space. */
#define VDK_MMIO_CONFIG_OFFSET 0x100
/** Size of the window a VMM should give one device (4 KiB). */
#define VDK_MMIO_WINDOW_SIZE 0x1000
/** Default VendorID: the bytes "vdk\0" read as a little-endian u32. */
#define VDK_MMIO_VENDOR_ID 0x006b6476u

/** Called for a QueueNotify write; @queue is the value written. */
typedef void vdk_mmio_notify_fn(void *opaque, uint16_t queue);
/** Called when the interrupt line's level changes (true = asserted); never
 * twice in a row with the same level. Runs with the transport's interrupt
 * lock held, possibly on a device worker thread: it must not call back into
 * the transport. */
typedef void vdk_mmio_irq_fn(void *opaque, bool level);

/** struct vdk_mmio_config - what vdk_mmio_new() needs. */
struct vdk_mmio_config {
	struct vdk_device *device;  /**< initialised device; not owned */
	const struct vdk_mem *mem;  /**< guest memory; not owned */
	vdk_mmio_notify_fn *notify; /**< optional */
	void *notify_opaque;
	vdk_mmio_irq_fn *irq; /**< optional */
	void *irq_opaque;
	uint32_t vendor_id; /**< VendorID register; 0 means "vdk" default */
};

struct vdk_mmio;

/**
 * vdk_mmio_new() - create a transport for cfg->device.
 * @err: 0, -EINVAL (missing device or memory), -ENOMEM; may be NULL.
 * Return: the transport (vdk_mmio_free()), or NULL.
 */
struct vdk_mmio *vdk_mmio_new(const struct vdk_mmio_config *cfg, int *err);

/**
 * vdk_mmio_free() - reset the device if active and free the transport. NULL
 * is accepted.
 */
void vdk_mmio_free(struct vdk_mmio *t);

/**
 * vdk_mmio_notify() - an inbound queue notification for @queue that did not
 * come through a QueueNotify write (a KVM ioeventfd on QueueNotify fired;
 * virtio 1.2 §4.2.3.3): forwarded to the device (vdk_device_queue_notify())
 * under the transport's lock, so it is ordered against a reset or
 * QueueReset from a vCPU. Ignored (logged, rate-limited) for an index out
 * of range or while asleep. Any thread; the notify callback is not called.
 */
void vdk_mmio_notify(struct vdk_mmio *t, uint16_t queue);

/**
 * vdk_mmio_set_direct_used_notify() - the device's used buffer notifications
 * reach the driver without the transport (@on true): an irqfd on the
 * device's interrupt line written by someone else, such as a vhost-user
 * back-end given it as its call fd (vdk_device_set_call_fd()). The
 * transport cannot see those, so while the device is activated
 * (DRIVER_OK) InterruptStatus always reports bit 0, "used buffer"
 * (virtio 1.2 §4.2.2), besides what the transport raised itself: Linux's
 * vm_interrupt() then scans the queues on every interrupt and finds nothing
 * new after a configuration-change-only one. Firecracker does the same for
 * its vhost-user devices on virtio-mmio. The line must be edge-triggered
 * and not shared. Any thread.
 */
void vdk_mmio_set_direct_used_notify(struct vdk_mmio *t, bool on);

/** Bus ops: the opaque pointer is the struct vdk_mmio. */
extern const struct vdk_bus_device_ops vdk_mmio_bus_ops;

/**
 * vdk_mmio_read() / vdk_mmio_write() - one register access.
 * @offset: bytes from the window base.
 * @data:   @len bytes, little-endian.
 */
void vdk_mmio_read(struct vdk_mmio *t, uint64_t offset, void *data, size_t len);
void vdk_mmio_write(struct vdk_mmio *t, uint64_t offset, const void *data,
		    size_t len);

/**
 * vdk_mmio_register() - register @t on @bus at [@base, @base +
 * VDK_MMIO_WINDOW_SIZE).
 * Return: as vdk_bus_register().
 */
int vdk_mmio_register(struct vdk_mmio *t, struct vdk_bus *bus, uint64_t base);

/** vdk_mmio_status() - the Status register. */
uint8_t vdk_mmio_status(struct vdk_mmio *t);

/** vdk_mmio_interrupt_status() - the InterruptStatus register. */
uint32_t vdk_mmio_interrupt_status(struct vdk_mmio *t);

/** vdk_mmio_queue() - queue @index's state (NULL if out of range). */
struct vdk_virtq *vdk_mmio_queue(struct vdk_mmio *t, uint16_t index);

/**
 * vdk_mmio_sleep() / vdk_mmio_wake() - pause / resume the device
 * (vdk_device_sleep()/vdk_device_wake()); register accesses while asleep
 * are ignored.
 */
int vdk_mmio_sleep(struct vdk_mmio *t);
int vdk_mmio_wake(struct vdk_mmio *t);

/**
 * vdk_mmio_snapshot() - while asleep: registers, every queue's
 * configuration and ring positions, and the device snapshot, as CBOR
 * ({"format": "vdk-mmio", "version": 1, ...}).
 * @buf: malloc'd, caller frees. @len: bytes.
 * Return: 0; -EBUSY if awake; -ENOMEM.
 */
int vdk_mmio_snapshot(struct vdk_mmio *t, uint8_t **buf, size_t *len);

/**
 * vdk_mmio_restore() - while asleep, in a transport whose device is fresh:
 * load a vdk_mmio_snapshot(). The queues are re-activated against the
 * transport's memory and the device resumes on vdk_mmio_wake().
 * Return: 0; -EBUSY if awake; -EINVAL malformed; -ENODEV/-EPROTO as
 * vdk_device_restore(); -EFAULT if a restored queue is outside memory.
 */
int vdk_mmio_restore(struct vdk_mmio *t, const uint8_t *buf, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_MMIO_H */
