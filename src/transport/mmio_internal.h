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

#include "common.h"

#ifndef VDK_HIDDEN
#define VDK_HIDDEN __attribute__((visibility("hidden")))
#endif

/* InterruptStatus bits (virtio 1.2 §4.2.2). */
#define VDK_MMIO_INT_BITS (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)

struct vdk_mmio {
	struct vdk_transport c; /* first: the shared state (common.h) */
	vdk_mmio_notify_fn *notify;
	void *notify_opaque;
	uint32_t vendor_id;

	/* register state, under lock */
	uint32_t queue_sel;
	uint32_t shm_sel;
	bool direct_used; /* vdk_mmio_set_direct_used_notify() */

	/* interrupt state, under irq_lock */
	vdk_mmio_irq_fn *irq_fn;
	void *irq_opaque;
	uint32_t isr;
	uint32_t config_generation;
	bool irq_level;
};

/* The vdk_interrupt ops the transport gives its device (opaque: the
 * transport). */
VDK_HIDDEN extern const struct vdk_interrupt_ops vdk_mmio_irq_ops;

/* Call with irq_lock held: bring the line to the level InterruptStatus
 * implies. */
VDK_HIDDEN void vdk_mmio_irq_update_locked(struct vdk_mmio *t);

#endif /* VDK_MMIO_INTERNAL_H */
