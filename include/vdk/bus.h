/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bus manager: dispatches a VM exit's port-I/O or MMIO access to the device
 * that owns the address. Semantics of rust-vmm vm-device's IoManager.
 *
 * A bus is a sorted array of non-overlapping address ranges, each bound to a
 * device (an ops table plus an opaque pointer the bus does not own). Lookup
 * is a binary search: O(log n) in the number of ranges.
 *
 * Locking model: vdk_bus_read()/vdk_bus_write() may be called concurrently
 * from any number of vCPU threads; registration and deregistration may run
 * at the same time from another thread. A pthread read-write lock guards the
 * range array: dispatch holds it shared for the duration of the device call,
 * (de)registration holds it exclusive. So once vdk_bus_deregister() returns,
 * no vCPU is still inside that device's callbacks and the caller may free it.
 * A device callback must not (de)register on the bus that called it
 * (self-deadlock); the lock prefers readers, so dispatch never waits on
 * dispatch.
 */
#ifndef VDK_BUS_H
#define VDK_BUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Which address space a bus decodes. */
enum vdk_bus_kind {
	VDK_BUS_PIO,  /**< x86 port I/O: 16-bit addresses (0..0xffff) */
	VDK_BUS_MMIO, /**< memory-mapped I/O: 64-bit guest-physical addresses */
};

/** struct vdk_bus_range - [base, base + size); size > 0, no wrap. */
struct vdk_bus_range {
	uint64_t base; /**< first address (port number or guest-physical) */
	uint64_t size; /**< bytes (ports); non-zero */
};

/**
 * struct vdk_bus_device_ops - what a device on a bus implements. Both are
 * called with the range's base, the offset of the access inside the range,
 * and the data (host byte order buffer of @len bytes, as the CPU put it in
 * the exit: little-endian on x86). Either may be NULL: reads then return
 * zeroes, writes are dropped.
 */
struct vdk_bus_device_ops {
	void (*read)(void *opaque, uint64_t base, uint64_t offset, void *data,
		     size_t len);
	void (*write)(void *opaque, uint64_t base, uint64_t offset,
		      const void *data, size_t len);
};

/** struct vdk_bus_device - a device as the bus sees it; not owned. */
struct vdk_bus_device {
	const struct vdk_bus_device_ops *ops;
	void *opaque;
};

struct vdk_bus;

/**
 * vdk_bus_new() - create an empty bus of @kind.
 * @err: set to 0 or -ENOMEM; may be NULL.
 * Return: the bus (free with vdk_bus_free()), or NULL.
 */
struct vdk_bus *vdk_bus_new(enum vdk_bus_kind kind, int *err);

/** vdk_bus_free() - free the bus; devices are not touched. NULL is fine. */
void vdk_bus_free(struct vdk_bus *bus);

/**
 * vdk_bus_register() - bind @range to @dev.
 *
 * Return: 0; -EINVAL if the range is empty, wraps, or (PIO) ends above
 * 0x10000 or @dev->ops is NULL; -EEXIST ("device overlap") if it overlaps a
 * registered range; -ENOMEM.
 */
int vdk_bus_register(struct vdk_bus *bus, struct vdk_bus_range range,
		     struct vdk_bus_device dev);

/**
 * vdk_bus_deregister() - unbind the range that starts at @base.
 * @removed: if not NULL, set to the device that was bound.
 *
 * Return: 0, or -ENOENT if no range starts at @base.
 */
int vdk_bus_deregister(struct vdk_bus *bus, uint64_t base,
		       struct vdk_bus_device *removed);

/**
 * vdk_bus_read() - dispatch a read of @len bytes at @addr into @data.
 *
 * Return: 0; -ENOENT if no range contains @addr; -ERANGE if
 * [addr, addr + len) does not lie entirely inside that range (or wraps);
 * -EINVAL if @len is 0. On error @data is left untouched.
 */
int vdk_bus_read(struct vdk_bus *bus, uint64_t addr, void *data, size_t len);

/** vdk_bus_write() - dispatch a write; errors as for vdk_bus_read(). */
int vdk_bus_write(struct vdk_bus *bus, uint64_t addr, const void *data,
		  size_t len);

/** vdk_bus_num_devices() - number of registered ranges. */
size_t vdk_bus_num_devices(struct vdk_bus *bus);

/* ---- resources and the I/O manager ------------------------------------ */

/** Kinds of resource a device may be given (vm-device's Resource). */
enum vdk_resource_kind {
	VDK_RESOURCE_PIO_RANGE,
	VDK_RESOURCE_MMIO_RANGE,
	VDK_RESOURCE_LEGACY_IRQ,
};

/** struct vdk_resource - one entry of a device's resource list. */
struct vdk_resource {
	enum vdk_resource_kind kind;
	union {
		struct vdk_bus_range range; /**< PIO / MMIO ranges */
		uint32_t irq;		    /**< legacy IRQ line (GSI) */
	};
};

/** struct vdk_io_manager - a PIO bus and an MMIO bus side by side. */
struct vdk_io_manager {
	struct vdk_bus *pio;
	struct vdk_bus *mmio;
};

/**
 * vdk_io_manager_init() - create both buses.
 * Return: 0 or -ENOMEM (then nothing is left allocated).
 */
int vdk_io_manager_init(struct vdk_io_manager *mgr);

/** vdk_io_manager_fini() - free both buses. */
void vdk_io_manager_fini(struct vdk_io_manager *mgr);

/**
 * vdk_io_manager_register_resources() - register @dev on every PIO and MMIO
 * range in @res; IRQ entries are skipped. All or nothing: if one range
 * fails, the ranges registered by this call are removed again.
 *
 * Return: 0, or the first error of vdk_bus_register(); -EINVAL for an
 * unknown resource kind.
 */
int vdk_io_manager_register_resources(struct vdk_io_manager *mgr,
				      const struct vdk_resource *res, size_t n,
				      struct vdk_bus_device dev);

/**
 * vdk_io_manager_deregister_resources() - deregister every PIO and MMIO
 * range of @res (by base).
 *
 * Return: how many ranges were removed (ranges not registered are skipped).
 */
size_t vdk_io_manager_deregister_resources(struct vdk_io_manager *mgr,
					   const struct vdk_resource *res,
					   size_t n);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_BUS_H */
