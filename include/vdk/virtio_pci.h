/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-pci transport, device side: the modern (non-transitional)
 * interface of virtio 1.2 §4.1 in front of one struct vdk_device, on a PCI
 * function modelled by <vdk/pci.h>. Legacy and transitional interfaces are
 * not offered.
 *
 * The function: vendor 0x1af4, device 0x1040 + device type, revision 1,
 * subsystem 0x1af4:0x1100, INTA, and one 64-bit memory BAR
 * (VDK_VIRTIO_PCI_BAR, VDK_VIRTIO_PCI_BAR_SIZE bytes) holding
 *   0x0000 common configuration (struct virtio_pci_common_cfg, §4.1.4.3)
 *   0x1000 ISR status (§4.1.4.5)
 *   0x2000 device-specific configuration (§4.1.4.6)
 *   0x3000 notifications: queue i at 0x3000 + 4 * i (notify_off_multiplier
 *          4, queue_notify_off i; §4.1.4.4)
 *   0x5000 MSI-X table, 0x7000 MSI-X PBA
 * described by vendor capabilities (§4.1.4) plus VIRTIO_PCI_CAP_PCI_CFG
 * (§4.1.4.9) and the MSI-X capability. A VMM places the BAR (or lets the
 * driver), maps the notification slots to ioeventfds if it likes
 * (vdk_virtio_pci_notify_offset(), vdk_virtio_pci_notify()) and delivers
 * MSI messages (the msi callback, or KVM routes from msix_changed).
 *
 * Status, features and reset follow the same rules as virtio-mmio (one
 * implementation). Hostile driver: accesses outside a structure or of a
 * width it does not allow are ignored (reads 0); queue_select out of range
 * reads queue_size 0 and ignores writes; queue_size must be a power of two
 * no larger than the maximum; queue fields are read-only while the queue
 * is enabled; queue_enable takes 1 only, once; an MSI-X vector beyond the
 * table reads back VIRTIO_MSI_NO_VECTOR (§4.1.5.1.2); a notification for a
 * queue that is not enabled is dropped; after DEVICE_NEEDS_RESET only a
 * reset (status 0) is acted upon.
 *
 * Interrupts: with MSI-X enabled, a used buffer notification sends the
 * queue's vector and a configuration change the config vector (none if
 * VIRTIO_MSI_NO_VECTOR); otherwise the ISR bits are set and INTx is
 * asserted until the driver reads the ISR (§4.1.5.3, §4.1.5.4).
 *
 * Locking: one mutex serialises configuration and BAR accesses and every
 * call into the device framework; the interrupt state has a leaf lock, so
 * device workers may signal from any thread.
 */
#ifndef VDK_VIRTIO_PCI_H
#define VDK_VIRTIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/device.h>
#include <vdk/mem.h>
#include <vdk/pci.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** PCI vendor ID of virtio devices (virtio 1.2 §4.1.2). */
#define VDK_VIRTIO_PCI_VENDOR_ID 0x1af4
/** Device ID of a modern virtio device: this plus the device type. */
#define VDK_VIRTIO_PCI_DEVICE_ID_BASE 0x1040
/** The BAR holding every virtio structure and MSI-X. */
#define VDK_VIRTIO_PCI_BAR 0
/** Its size in bytes. */
#define VDK_VIRTIO_PCI_BAR_SIZE 0x8000
/** Offsets of the structures in the BAR. */
#define VDK_VIRTIO_PCI_COMMON_OFFSET 0x0000
#define VDK_VIRTIO_PCI_ISR_OFFSET    0x1000
#define VDK_VIRTIO_PCI_DEVICE_OFFSET 0x2000
#define VDK_VIRTIO_PCI_NOTIFY_OFFSET 0x3000
#define VDK_VIRTIO_PCI_MSIX_TABLE    0x5000
#define VDK_VIRTIO_PCI_MSIX_PBA	     0x7000
/** Bytes of each region (device config at most this). */
#define VDK_VIRTIO_PCI_REGION_SIZE 0x1000
/** notify_off_multiplier: bytes between two queues' notify addresses. */
#define VDK_VIRTIO_PCI_NOTIFY_MULTIPLIER 4

/** Called for a notification write when the transport has a notify
 * callback (a VMM defers to its device thread); @queue is enabled. */
typedef void vdk_virtio_pci_notify_fn(void *opaque, uint16_t queue);

/** struct vdk_virtio_pci_config - what vdk_virtio_pci_new() needs. */
struct vdk_virtio_pci_config {
	struct vdk_device *device; /**< initialised device; not owned */
	const struct vdk_mem *mem; /**< guest memory; not owned */
	/** optional: otherwise notifications call the device directly */
	vdk_virtio_pci_notify_fn *notify;
	void *notify_opaque;
	/** MSI-X vectors; 0 means one per queue plus one for configuration
	 * changes. At most 256 (the table must fit its region). */
	uint16_t msix_vectors;
	vdk_pci_msi_fn *msi;		       /**< required: MSI delivery */
	vdk_pci_msix_changed_fn *msix_changed; /**< optional */
	vdk_pci_intx_fn *intx;		       /**< optional: INTA level */
	vdk_pci_bar_map_fn *bar_map;	       /**< optional */
	void *opaque; /**< for msi, msix_changed, intx, bar_map */
};

struct vdk_virtio_pci;

/**
 * vdk_virtio_pci_new() - create the PCI function and transport for
 * cfg->device.
 * @err: 0; -EINVAL (missing device, memory or msi, no queues, more than
 *       256 vectors, device config larger than its region); -ENOMEM.
 * Return: the transport (vdk_virtio_pci_free()), or NULL.
 */
struct vdk_virtio_pci *
vdk_virtio_pci_new(const struct vdk_virtio_pci_config *cfg, int *err);

/**
 * vdk_virtio_pci_free() - reset the device if active and free @t. NULL is
 * accepted.
 */
void vdk_virtio_pci_free(struct vdk_virtio_pci *t);

/** vdk_virtio_pci_dev() - the PCI function (BAR placement, MSI-X state).
 * Use it only through the accessors below while the guest runs. */
struct vdk_pci_dev *vdk_virtio_pci_dev(struct vdk_virtio_pci *t);

/**
 * vdk_virtio_pci_config_read() / vdk_virtio_pci_config_write() - a
 * configuration space access (ECAM or 0xCF8/0xCFC), as
 * vdk_pci_config_read()/vdk_pci_config_write(), under the transport lock.
 */
void vdk_virtio_pci_config_read(struct vdk_virtio_pci *t, uint32_t offset,
				void *data, size_t len);
void vdk_virtio_pci_config_write(struct vdk_virtio_pci *t, uint32_t offset,
				 const void *data, size_t len);

/**
 * vdk_virtio_pci_bar_read() / vdk_virtio_pci_bar_write() - an access of
 * @len bytes (1..8, little-endian) at @offset in BAR @bar.
 */
void vdk_virtio_pci_bar_read(struct vdk_virtio_pci *t, unsigned int bar,
			     uint64_t offset, void *data, size_t len);
void vdk_virtio_pci_bar_write(struct vdk_virtio_pci *t, unsigned int bar,
			      uint64_t offset, const void *data, size_t len);

/**
 * vdk_virtio_pci_mmio_read() / vdk_virtio_pci_mmio_write() - an access at
 * guest-physical @addr, if a BAR of the function decodes it.
 * Return: 0; -ENOENT no BAR decodes @addr (nothing done).
 */
int vdk_virtio_pci_mmio_read(struct vdk_virtio_pci *t, uint64_t addr,
			     void *data, size_t len);
int vdk_virtio_pci_mmio_write(struct vdk_virtio_pci *t, uint64_t addr,
			      const void *data, size_t len);

/**
 * vdk_virtio_pci_notify_offset() - where in BAR VDK_VIRTIO_PCI_BAR the
 * driver notifies queue @queue (bytes; 2-byte writes of the queue index,
 * 4-byte with VIRTIO_F_NOTIFICATION_DATA). For an ioeventfd.
 * Return: the offset, or -ERANGE.
 */
int64_t vdk_virtio_pci_notify_offset(struct vdk_virtio_pci *t, uint16_t queue);

/**
 * vdk_virtio_pci_notify() - inbound notification for @queue (an ioeventfd
 * fired): the device's queue_notify, if the queue is enabled and the
 * device running; dropped otherwise. Any thread.
 */
void vdk_virtio_pci_notify(struct vdk_virtio_pci *t, uint16_t queue);

/** vdk_virtio_pci_status() - the device status (DEVICE_NEEDS_RESET
 * included). */
uint8_t vdk_virtio_pci_status(struct vdk_virtio_pci *t);

/** vdk_virtio_pci_isr() - the ISR status, without clearing it. */
uint8_t vdk_virtio_pci_isr(struct vdk_virtio_pci *t);

/** vdk_virtio_pci_queue() - queue @index's state (NULL if out of range). */
struct vdk_virtq *vdk_virtio_pci_queue(struct vdk_virtio_pci *t,
				       uint16_t index);

/** vdk_virtio_pci_queue_vector() - the MSI-X vector of queue @index
 * (VIRTIO_MSI_NO_VECTOR if none or out of range); @index == UINT16_MAX
 * asks for config_msix_vector. */
uint16_t vdk_virtio_pci_queue_vector(struct vdk_virtio_pci *t, uint16_t index);

/**
 * vdk_virtio_pci_sleep() / vdk_virtio_pci_wake() - pause / resume the
 * device (vdk_device_sleep()/vdk_device_wake()); configuration and BAR
 * accesses and notifications while asleep are ignored (reads 0).
 * Return: 0; -EBUSY already asleep / awake; the device's error.
 */
int vdk_virtio_pci_sleep(struct vdk_virtio_pci *t);
int vdk_virtio_pci_wake(struct vdk_virtio_pci *t);

/**
 * vdk_virtio_pci_snapshot() - while asleep: the PCI function's state
 * (configuration space, BAR addresses, MSI-X table and pending bits), the
 * common configuration, MSI-X vector numbers, ISR, every queue's
 * configuration and ring positions, and the device's snapshot, as CBOR
 * ({"format": "vdk-virtio-pci", "version": 1, ...}).
 * @buf: malloc'd, caller frees. @len: bytes.
 * Return: 0; -EINVAL NULL argument; -EBUSY awake; -ENOMEM; the device's
 * snapshot error.
 */
int vdk_virtio_pci_snapshot(struct vdk_virtio_pci *t, uint8_t **buf,
			    size_t *len);

/**
 * vdk_virtio_pci_restore() - while asleep, in a transport built for the
 * same device type whose device was never activated: load a
 * vdk_virtio_pci_snapshot(). The snapshot is untrusted: every field is
 * checked, the state must be one the transport could have reached, and
 * the PCI state must come from a function built the same way. The queues
 * are re-activated and the device resumes on vdk_virtio_pci_wake().
 * Return: 0; -EINVAL NULL argument or malformed; -EBUSY awake or already
 * activated; -EPROTO unknown version; the device's restore error; -EFAULT
 * a restored queue is outside guest memory.
 */
int vdk_virtio_pci_restore(struct vdk_virtio_pci *t, const uint8_t *buf,
			   size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_VIRTIO_PCI_H */
