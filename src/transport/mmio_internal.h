/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the virtio-mmio transport: what mmio.c (register file, status,
 * queues, interrupts, lifecycle) and mmio_snapshot.c (sleep, wake, snapshot,
 * restore) share. Not installed. See mmio.c for the locking rules.
 */
#ifndef VDK_MMIO_INTERNAL_H
#define VDK_MMIO_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <vdk/log.h>
#include <vdk/mmio.h>

#ifndef VDK_HIDDEN
#define VDK_HIDDEN __attribute__((visibility("hidden")))
#endif

/* Bits a driver may set in Status (virtio 1.2 §2.1). */
#define VDK_MMIO_DRIVER_STATUS_BITS                                            \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |                \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK |             \
	 VIRTIO_CONFIG_S_FAILED)

/* InterruptStatus bits (virtio 1.2 §4.2.2). */
#define VDK_MMIO_INT_BITS (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)

struct vdk_mmio {
	pthread_mutex_t lock;
	struct vdk_device *dev;
	const struct vdk_mem *mem;
	vdk_mmio_notify_fn *notify;
	void *notify_opaque;
	uint32_t vendor_id;
	uint64_t device_features; /* cached ops->features() */
	uint16_t num_queues;
	struct vdk_virtq *queues; /* num_queues entries */
	/* what the device was activated with: &queues[i] or NULL */
	struct vdk_virtq *active[VDK_DEVICE_MAX_QUEUES];

	/* register state, under lock */
	uint8_t status; /* driver-written bits only */
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint64_t driver_features;
	uint32_t queue_sel;
	uint32_t shm_sel;
	bool activated;	      /* vdk_device_activate() succeeded */
	bool asleep;	      /* vdk_mmio_sleep() */
	bool restored_active; /* restored ACTIVE: wake passes the queues */
	bool direct_used;     /* vdk_mmio_set_direct_used_notify() */
	struct vdk_ratelimit rl;

	/* interrupt state, under irq_lock */
	pthread_mutex_t irq_lock;
	vdk_mmio_irq_fn *irq_fn;
	void *irq_opaque;
	uint32_t isr;
	uint32_t config_generation;
	bool needs_reset;
	bool irq_level;
	struct vdk_interrupt irq;
};

/* The vdk_interrupt ops the transport gives its device (opaque: the
 * transport). */
VDK_HIDDEN extern const struct vdk_interrupt_ops vdk_mmio_irq_ops;

/* Call with irq_lock held: bring the line to the level InterruptStatus
 * implies. */
VDK_HIDDEN void vdk_mmio_irq_update_locked(struct vdk_mmio *t);

/* Call with lock held: the Status register as the driver reads it
 * (DEVICE_NEEDS_RESET included). Takes irq_lock. */
VDK_HIDDEN uint8_t vdk_mmio_status_locked(struct vdk_mmio *t);

/* Call with lock held: reset every queue and forget what the device was
 * activated with. */
VDK_HIDDEN void vdk_mmio_reset_queues(struct vdk_mmio *t);

#endif /* VDK_MMIO_INTERNAL_H */
