/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-pci transport, device side: the common configuration structure
 * (struct virtio_pci_common_cfg, virtio 1.2 §4.1.4.3) and the device status
 * rules it applies through common.c. The rest of the transport is in
 * pci.c; the state both share in pci_internal.h. Everything here runs
 * with the transport lock held.
 *
 * Do not assume that anything the driver writes is sensible: a field is
 * reached only at its own offset and natural width (§4.1.3.1, checked by
 * the caller with vdk_virtio_pci_field_width()), queue_select is checked
 * before any queue field, vector numbers against the MSI-X table.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "pci_internal.h"

#define MOD "virtio-pci"

/* After a device reset (virtio 1.2 §2.4), irq_lock held: the fields only
 * virtio-pci has, the MSI-X vector numbers and INTx. */
static void reset_locked(struct vdk_transport *c)
{
	struct vdk_virtio_pci *t = c->opaque;

	t->queue_select = 0;
	t->isr = 0;
	t->config_vector = VIRTIO_MSI_NO_VECTOR;
	for (uint16_t i = 0; i < c->num_queues; i++)
		t->queue_vector[i] = VIRTIO_MSI_NO_VECTOR;
	vdk_pci_set_intx(t->pci, false);
}

/* On wake, irq_lock held: a restored ISR re-asserts INTx. */
static void wake_irq_locked(struct vdk_transport *c)
{
	struct vdk_virtio_pci *t = c->opaque;

	if (t->isr)
		vdk_pci_set_intx(t->pci, true);
}

const struct vdk_transport_ops vdk_virtio_pci_transport_ops = {
	.reset_locked = reset_locked,
	.wake_irq_locked = wake_irq_locked,
	.irq_ops = &vdk_virtio_pci_irq_ops,
	.mod = MOD,
};

/* ---- common configuration (virtio 1.2 §4.1.4.3) ------------------------ */

static struct vdk_virtq *selected_queue(struct vdk_virtio_pci *t)
{
	return t->queue_select < t->c.num_queues ? &t->c.queues[t->queue_select]
						 : NULL;
}

/* The natural width of the field at @off, or 0 if none starts there. */
size_t vdk_virtio_pci_field_width(uint64_t off)
{
	switch (off) {
	case VIRTIO_PCI_COMMON_STATUS:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return 1;
	case VIRTIO_PCI_COMMON_MSIX:
	case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_Q_SELECT:
	case VIRTIO_PCI_COMMON_Q_SIZE:
	case VIRTIO_PCI_COMMON_Q_MSIX:
	case VIRTIO_PCI_COMMON_Q_ENABLE:
	case VIRTIO_PCI_COMMON_Q_NOFF:
	case VIRTIO_PCI_COMMON_Q_NDATA:
	case VIRTIO_PCI_COMMON_Q_RESET:
		return 2;
	case VIRTIO_PCI_COMMON_DFSELECT:
	case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_GFSELECT:
	case VIRTIO_PCI_COMMON_GF:
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		return 4;
	default:
		return 0;
	}
}

uint32_t vdk_virtio_pci_common_read(struct vdk_virtio_pci *t, uint64_t off)
{
	struct vdk_virtq *q = selected_queue(t);
	uint32_t v;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		return t->c.device_features_sel;
	case VIRTIO_PCI_COMMON_DF:
		return vdk_transport_features_word(t->c.device_features,
						   t->c.device_features_sel);
	case VIRTIO_PCI_COMMON_GFSELECT:
		return t->c.driver_features_sel;
	case VIRTIO_PCI_COMMON_GF:
		return vdk_transport_features_word(t->c.driver_features,
						   t->c.driver_features_sel);
	case VIRTIO_PCI_COMMON_MSIX:
		pthread_mutex_lock(&t->c.irq_lock);
		v = t->config_vector;
		pthread_mutex_unlock(&t->c.irq_lock);
		return v;
	case VIRTIO_PCI_COMMON_NUMQ:
		return t->c.num_queues;
	case VIRTIO_PCI_COMMON_STATUS:
		return vdk_transport_status_locked(&t->c);
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		pthread_mutex_lock(&t->c.irq_lock);
		v = t->config_generation;
		pthread_mutex_unlock(&t->c.irq_lock);
		return v;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		return t->queue_select;
	case VIRTIO_PCI_COMMON_Q_RESET:
		return 0; /* resets complete synchronously */
	default:
		break;
	}
	if (!q) /* §4.1.4.3.2: queue_size 0 for a queue that does not exist */
		return off == VIRTIO_PCI_COMMON_Q_MSIX ? VIRTIO_MSI_NO_VECTOR
						       : 0;
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		return q->size;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		pthread_mutex_lock(&t->c.irq_lock);
		v = t->queue_vector[t->queue_select];
		pthread_mutex_unlock(&t->c.irq_lock);
		return v;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		return q->ready;
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return t->queue_select;
	case VIRTIO_PCI_COMMON_Q_NDATA:
		/* VIRTIO_F_NOTIF_CONFIG_DATA is not offered. */
		return 0;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
		return (uint32_t)q->desc_gpa;
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		return (uint32_t)(q->desc_gpa >> 32);
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
		return (uint32_t)q->driver_gpa;
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		return (uint32_t)(q->driver_gpa >> 32);
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		return (uint32_t)q->device_gpa;
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		return (uint32_t)(q->device_gpa >> 32);
	default:
		return 0;
	}
}

/* A vector number the driver wrote: one in the table, or NO_VECTOR
 * (§4.1.5.1.2: the device answers NO_VECTOR if it cannot map it). */
static uint16_t checked_vector(struct vdk_virtio_pci *t, uint32_t v)
{
	if (v != VIRTIO_MSI_NO_VECTOR && v >= t->nvec) {
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: MSI-X vector %u beyond the table of %u",
			   t->c.dev->ops->name, v, t->nvec);
		return VIRTIO_MSI_NO_VECTOR;
	}
	return (uint16_t)v;
}

static void write_queue_enable(struct vdk_virtio_pci *t, struct vdk_virtq *q,
			       uint32_t v)
{
	if (v != 1 || q->ready) {
		/* §4.1.4.3.2: the driver MUST NOT write 0; enabling twice
		 * changes nothing. Stopping a queue takes queue_reset. */
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: queue_enable %u for queue %u (enabled %d) "
			   "ignored",
			   t->c.dev->ops->name, v, t->queue_select, q->ready);
		return;
	}
	vdk_transport_enable_queue(&t->c, t->queue_select);
}

static void write_queue_reset(struct vdk_virtio_pci *t, uint32_t v)
{
	uint16_t idx = t->queue_select;

	if (!vdk_transport_reset_queue(&t->c, idx, v, "queue_reset"))
		return;
	pthread_mutex_lock(&t->c.irq_lock);
	t->queue_vector[idx] = VIRTIO_MSI_NO_VECTOR;
	pthread_mutex_unlock(&t->c.irq_lock);
}

static void write_queue_field(struct vdk_virtio_pci *t, struct vdk_virtq *q,
			      uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		write_queue_enable(t, q, v);
		return;
	case VIRTIO_PCI_COMMON_Q_RESET:
		write_queue_reset(t, v);
		return;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		v = checked_vector(t, v);
		pthread_mutex_lock(&t->c.irq_lock);
		t->queue_vector[t->queue_select] = (uint16_t)v;
		pthread_mutex_unlock(&t->c.irq_lock);
		return;
	default:
		break;
	}
	if (q->ready) {
		/* §4.1.4.3.2: not while the queue is enabled. */
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: write at %#llx for enabled queue %u ignored",
			   t->c.dev->ops->name, (unsigned long long)off,
			   t->queue_select);
		return;
	}
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		/* A power of two, 1..maximum (vdk_virtq_set_size checks). */
		if (vdk_virtq_set_size(q, (uint16_t)v) < 0)
			VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
				   "%s: queue_size %u for queue %u refused",
				   t->c.dev->ops->name, v, t->queue_select);
		return;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		vdk_transport_set_queue_addr(
			q, (unsigned int)(off - VIRTIO_PCI_COMMON_Q_DESCLO) / 8,
			(off & 4) != 0, v);
		return;
	default: /* queue_notify_off, queue_notify_data: read-only */
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: write to read-only field %#llx ignored",
			   t->c.dev->ops->name, (unsigned long long)off);
		return;
	}
}

void vdk_virtio_pci_common_write(struct vdk_virtio_pci *t, uint64_t off,
				 uint32_t v)
{
	struct vdk_virtq *q = selected_queue(t);

	if (off == VIRTIO_PCI_COMMON_STATUS) {
		vdk_transport_set_status(&t->c, v);
		return;
	}
	if (vdk_virtio_pci_needs_reset(t)) {
		/* §2.1.2: the device waits for a reset. */
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: write at %#llx while DEVICE_NEEDS_RESET "
			   "ignored",
			   t->c.dev->ops->name, (unsigned long long)off);
		return;
	}
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		t->c.device_features_sel = v;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT:
		t->c.driver_features_sel = v;
		return;
	case VIRTIO_PCI_COMMON_GF:
		vdk_transport_write_driver_features(&t->c, v, "driver_feature");
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		v = checked_vector(t, v);
		pthread_mutex_lock(&t->c.irq_lock);
		t->config_vector = (uint16_t)v;
		pthread_mutex_unlock(&t->c.irq_lock);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		t->queue_select = (uint16_t)v;
		return;
	case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: write to read-only field %#llx ignored",
			   t->c.dev->ops->name, (unsigned long long)off);
		return;
	default:
		break;
	}
	if (!q) {
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: write at %#llx for queue %u of %u ignored",
			   t->c.dev->ops->name, (unsigned long long)off,
			   t->queue_select, t->c.num_queues);
		return;
	}
	write_queue_field(t, q, off, v);
}
