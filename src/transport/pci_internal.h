/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to the virtio-pci transport: what pci.c (structures, status,
 * queues, interrupts) and pci_snapshot.c (sleep, wake, snapshot, restore)
 * share. Not installed. See pci.c for the locking rules.
 */
#ifndef VDK_TRANSPORT_PCI_INTERNAL_H
#define VDK_TRANSPORT_PCI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <vdk/log.h>
#include <vdk/virtio_pci.h>

#include <stddef.h>

#include <linux/virtio_config.h>

#include "common.h"

struct vdk_virtio_pci {
	struct vdk_transport c; /* first: the shared state (common.h) */
	struct vdk_pci_dev *pci;
	vdk_virtio_pci_notify_fn *notify;
	void *notify_opaque;
	uint16_t nvec;

	/* common configuration, under lock */
	uint16_t queue_select;
	int pending_notify; /* queue to notify once lock is dropped, or -1 */

	/* interrupt state, under irq_lock */
	uint8_t isr;
	uint8_t config_generation;
	uint16_t config_vector;
	uint16_t *queue_vector; /* num_queues entries */
};

/* The vdk_interrupt ops the transport gives its device (opaque: the
 * transport). */
VDK_HIDDEN extern const struct vdk_interrupt_ops vdk_virtio_pci_irq_ops;

/* What virtio-pci does differently in the shared rules (pci_common_cfg.c). */
VDK_HIDDEN extern const struct vdk_transport_ops vdk_virtio_pci_transport_ops;

/* Call with lock held: DEVICE_NEEDS_RESET is set (§2.1.2). */
static inline bool vdk_virtio_pci_needs_reset(struct vdk_virtio_pci *t)
{
	return vdk_transport_status_locked(&t->c) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

/* Whether feature @bit is negotiated. */
static inline bool negotiated(const struct vdk_virtio_pci *t, unsigned int bit)
{
	return vdk_transport_negotiated(t->c.status, t->c.driver_features, bit);
}

/* pci_common_cfg.c: the natural width of the common configuration field
 * at @off (0: none starts there), and a read / write of it (lock held). */
VDK_HIDDEN size_t vdk_virtio_pci_field_width(uint64_t off);
VDK_HIDDEN uint32_t vdk_virtio_pci_common_read(struct vdk_virtio_pci *t,
					       uint64_t off);
VDK_HIDDEN void vdk_virtio_pci_common_write(struct vdk_virtio_pci *t,
					    uint64_t off, uint32_t v);

#endif /* VDK_TRANSPORT_PCI_INTERNAL_H */
