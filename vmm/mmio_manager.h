/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MMIO device manager for vdk-vmm, with the semantics of libkrun's
 * MMIODeviceManager (src/vmm/src/device_manager/kvm/mmio.rs): it hands each
 * virtio-mmio device the next window of the MMIO area and the next IRQ of a
 * range, remembers what it gave to whom, and tells the guest where the
 * devices are (ACPI DSDT entries, or the kernel command line).
 *
 *   windows:  base, base + window, base + 2 * window, ...
 *   IRQs:     first, first + 1, ..., last; then "no more IRQs are available"
 *
 * Devices are keyed by (device type, id string), e.g. (VIRTIO_ID_BLOCK,
 * "rootfs"); a key registers once. Registration order is preserved for
 * iteration, so the guest sees devices in the order the VMM added them.
 *
 * Not thread-safe: the VMM registers devices while it sets the VM up, from
 * one thread, before any vCPU runs. The bus it registers on is thread-safe
 * on its own (<vdk/bus.h>).
 */
#ifndef VDK_MMIO_MANAGER_H
#define VDK_MMIO_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/bus.h>

/** Longest device id string, excluding the NUL. */
#define VMM_MMIO_ID_MAX 63

/** struct vmm_mmio_device_info - what one device was given. */
struct vmm_mmio_device_info {
	uint32_t type;		      /**< VIRTIO_ID_* (<linux/virtio_ids.h>) */
	char id[VMM_MMIO_ID_MAX + 1]; /**< NUL-terminated */
	uint64_t base;		      /**< window, guest-physical */
	uint64_t size;		      /**< window, bytes */
	uint32_t irq;		      /**< GSI */
};

struct vmm_mmio_manager;

/**
 * vmm_mmio_manager_new() - create a manager.
 * @mmio_base: guest-physical address of the first window; a multiple of
 *             @window_size.
 * @window_size: bytes per device; a non-zero multiple of 1 KiB (the command
 *             line gives it in KiB), normally VDK_MMIO_WINDOW_SIZE (4 KiB).
 * @irq_first, @irq_last: inclusive range of GSIs to give out; first <= last.
 * @err:       0, -EINVAL (a constraint above is broken), -ENOMEM; may be
 *             NULL.
 * Return: the manager (free with vmm_mmio_manager_free()), or NULL.
 */
struct vmm_mmio_manager *vmm_mmio_manager_new(uint64_t mmio_base,
					      uint64_t window_size,
					      uint32_t irq_first,
					      uint32_t irq_last, int *err);

/** vmm_mmio_manager_free() - free the manager; NULL is fine. Buses keep
 * their registrations (deregister the devices first if the bus outlives
 * them). */
void vmm_mmio_manager_free(struct vmm_mmio_manager *m);

/**
 * vmm_mmio_manager_register() - give a device the next window and IRQ.
 * @type:   device type (VIRTIO_ID_*).
 * @id:     NUL-terminated, 1..VMM_MMIO_ID_MAX bytes; copied.
 * @bus:    if not NULL, an MMIO bus on which @dev is registered for the
 *          window (e.g. @dev = {&vdk_mmio_bus_ops, transport}); optional.
 * @dev:    the bus device; ignored if @bus is NULL.
 * @info:   if not NULL, set to what the device was given.
 * @errmsg: if not NULL, set on failure to a static, human-readable reason
 *          (never freed): exactly "no more IRQs are available" when the
 *          IRQ range is used up.
 *
 * On failure nothing is consumed: the next registration gets the same
 * window and IRQ.
 *
 * Return: 0; -EINVAL (bad @id, or @bus given with no @dev.ops); -EEXIST
 * (the (@type, @id) key is already registered); -ENOSPC (IRQs exhausted);
 * -EOVERFLOW (the next window would pass the end of the 64-bit address
 * space); -ENOMEM; or vdk_bus_register()'s error (e.g. -EEXIST if the
 * window overlaps another device on @bus).
 */
int vmm_mmio_manager_register(struct vmm_mmio_manager *m, uint32_t type,
			      const char *id, struct vdk_bus *bus,
			      struct vdk_bus_device dev,
			      struct vmm_mmio_device_info *info,
			      const char **errmsg);

/**
 * vmm_mmio_manager_lookup() - find the device registered as (@type, @id).
 * Return: a pointer valid until the next registration or free, or NULL.
 */
const struct vmm_mmio_device_info *
vmm_mmio_manager_lookup(const struct vmm_mmio_manager *m, uint32_t type,
			const char *id);

/** vmm_mmio_manager_count() - number of registered devices. */
size_t vmm_mmio_manager_count(const struct vmm_mmio_manager *m);

/**
 * vmm_mmio_manager_at() - the @index-th device in registration order, for
 * iteration (ACPI, command line).
 * Return: a pointer valid until the next registration or free, or NULL if
 * @index >= vmm_mmio_manager_count().
 */
const struct vmm_mmio_device_info *
vmm_mmio_manager_at(const struct vmm_mmio_manager *m, size_t index);

/**
 * vmm_mmio_manager_cmdline_append() - append one
 * "virtio_mmio.device=<size>K@0x<base>:<irq>" parameter per device to the
 * kernel command line in @buf (Linux drivers/virtio/virtio_mmio.c,
 * "virtio_mmio.device=<size>@<baseaddr>:<irq>"), each preceded by a space
 * unless @buf is empty. Example: "virtio_mmio.device=4K@0xd0000000:5".
 * @buf:  a NUL-terminated string within @size bytes.
 * @size: bytes available at @buf, including the NUL.
 *
 * Return: the new string length; -EINVAL if @buf has no NUL within @size;
 * -ENOSPC if the result (with its NUL) does not fit, in which case the
 * string in @buf is unchanged (bytes after its NUL may have been written).
 */
int vmm_mmio_manager_cmdline_append(const struct vmm_mmio_manager *m, char *buf,
				    size_t size);

/** The message for IRQ exhaustion, as libkrun words it. */
#define VMM_MMIO_MSG_NO_IRQS "no more IRQs are available"

#endif /* VDK_MMIO_MANAGER_H */
