/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-pci transport, device side: the modern interface of virtio 1.2
 * §4.1 on a PCI function of <vdk/pci.h>. See <vdk/virtio_pci.h> for the
 * layout and the rules a hostile driver meets. Here: interrupts, the BAR's
 * structures, the capabilities, the PCI_CFG window and the entry points;
 * the common configuration structure and the status rules are in
 * pci_common_cfg.c, sleep/wake/snapshot/restore in pci_snapshot.c.
 *
 * Do not assume that anything the driver writes is sensible: each common
 * configuration field is accessed only at its own offset and natural width
 * (§4.1.3.1), queue_select is checked against the number of queues before
 * any queue field is touched, vectors against the MSI-X table, and the
 * status and feature rules are those of src/transport/common.c, shared with
 * virtio-mmio.
 *
 * Locking. Two mutexes, always taken in this order (and before the PCI
 * model's own interrupt lock):
 *   lock      configuration and BAR accesses, every call into the device
 *             framework. Device workers never take it.
 *   irq_lock  ISR, config_generation, DEVICE_NEEDS_RESET and the MSI-X
 *             vector numbers: what the device's vdk_interrupt ops read and
 *             change.
 * BAR accesses reach the handlers below through vdk_pci_bar_read()/write()
 * with lock held (also from the VIRTIO_PCI_CAP_PCI_CFG window, which runs
 * inside a configuration access). A notification found under lock is sent
 * once it is dropped when the transport has a notify callback.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include <vdk/log.h>
#include <vdk/virtio_pci.h>

#include "pci_internal.h"

#define MOD "virtio-pci"

/* ISR bit 0: a used buffer notification (virtio 1.2 §4.1.4.5). */
#define VIRTIO_PCI_ISR_QUEUE 0x1

#ifndef VIRTIO_F_NOTIFICATION_DATA
#define VIRTIO_F_NOTIFICATION_DATA 38 /* virtio 1.2 §6; not in old uapi */
#endif

/* Bytes of struct virtio_pci_common_cfg up to and including queue_reset
 * (virtio 1.2 §4.1.4.3). */
#define COMMON_CFG_LEN (VIRTIO_PCI_COMMON_Q_RESET + 2)
/* Most MSI-X vectors: the table fits between its offset and the PBA. */
#define MAX_VECTORS                                                            \
	((VDK_VIRTIO_PCI_MSIX_PBA - VDK_VIRTIO_PCI_MSIX_TABLE) /               \
	 VDK_PCI_MSIX_ENTRY_SIZE)
#define MAX_VECTORS_ALLOWED 256

/* ---- interrupts (any thread) ------------------------------------------- */

/* MSI-X if enabled (the vector, if any), else ISR bits and INTx
 * (virtio 1.2 §4.1.5.3, §4.1.5.4). */
static void irq_raise(struct vdk_virtio_pci *t, uint8_t isr_bit, uint16_t queue,
		      bool config_changed, bool needs_reset)
{
	uint16_t vec;

	pthread_mutex_lock(&t->c.irq_lock);
	if (config_changed)
		t->config_generation++;
	if (needs_reset)
		t->c.needs_reset = true;
	if (vdk_pci_msix_enabled(t->pci)) {
		vec = queue == UINT16_MAX ? t->config_vector
					  : t->queue_vector[queue];
		if (vec != VIRTIO_MSI_NO_VECTOR)
			(void)vdk_pci_msix_notify(t->pci, vec);
	} else {
		t->isr |= isr_bit;
		vdk_pci_set_intx(t->pci, true);
	}
	pthread_mutex_unlock(&t->c.irq_lock);
}

static void pci_signal_used_queue(void *opaque, uint16_t queue)
{
	struct vdk_virtio_pci *t = opaque;

	if (queue >= t->c.num_queues)
		return;
	irq_raise(t, VIRTIO_PCI_ISR_QUEUE, queue, false, false);
}

static void pci_signal_config_changed(void *opaque)
{
	irq_raise(opaque, VIRTIO_PCI_ISR_CONFIG, UINT16_MAX, true, false);
}

static void pci_set_needs_reset(void *opaque)
{
	/* virtio 1.2 §2.1.2: DEVICE_NEEDS_RESET and a configuration change
	 * notification. */
	irq_raise(opaque, VIRTIO_PCI_ISR_CONFIG, UINT16_MAX, false, true);
}

const struct vdk_interrupt_ops vdk_virtio_pci_irq_ops = {
	.signal_used_queue = pci_signal_used_queue,
	.signal_config_changed = pci_signal_config_changed,
	.set_needs_reset = pci_set_needs_reset,
};

/* ---- helpers (lock held) ----------------------------------------------- */

/* ---- BAR contents (lock held) ------------------------------------------- */

static void bad_access(struct vdk_virtio_pci *t, const char *what, uint64_t off,
		       size_t len)
{
	VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
		   "%s: bad %zu-byte %s access at BAR offset %#llx ignored",
		   t->c.dev->ops->name, len, what, (unsigned long long)off);
}

/* Notification write at @off in the notify region (§4.1.4.4): the slot
 * names the queue; the value is the queue index (or notification data). */
static void notify_write(struct vdk_virtio_pci *t, uint64_t off,
			 const void *data, size_t len)
{
	uint64_t idx = off / VDK_VIRTIO_PCI_NOTIFY_MULTIPLIER;

	(void)data;
	if ((len != 2 && len != 4) ||
	    (off % VDK_VIRTIO_PCI_NOTIFY_MULTIPLIER)) {
		bad_access(t, "notify", off, len);
		return;
	}
	if (idx >= t->c.num_queues || !t->c.active[idx] ||
	    vdk_virtio_pci_needs_reset(t)) {
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: notification for queue %llu that is not "
			   "running dropped",
			   t->c.dev->ops->name, (unsigned long long)idx);
		return;
	}
	t->pending_notify = (int)idx;
}

static void bar_read(void *opaque, unsigned int bar, uint64_t off, void *data,
		     size_t len)
{
	struct vdk_virtio_pci *t = opaque;
	uint64_t base = off & ~(uint64_t)(VDK_VIRTIO_PCI_REGION_SIZE - 1);
	uint64_t o = off - base;
	uint32_t v;

	(void)bar;
	switch (base) {
	case VDK_VIRTIO_PCI_COMMON_OFFSET:
		if (vdk_virtio_pci_field_width(o) != len) {
			bad_access(t, "common config", off, len);
			return;
		}
		v = htole32(vdk_virtio_pci_common_read(t, o));
		memcpy(data, &v, len);
		return;
	case VDK_VIRTIO_PCI_ISR_OFFSET:
		if (o != 0 || len != 1) {
			bad_access(t, "ISR", off, len);
			return;
		}
		/* §4.1.4.5: reading clears the ISR and de-asserts INTx. */
		pthread_mutex_lock(&t->c.irq_lock);
		*(uint8_t *)data = t->isr;
		t->isr = 0;
		vdk_pci_set_intx(t->pci, false);
		pthread_mutex_unlock(&t->c.irq_lock);
		return;
	case VDK_VIRTIO_PCI_DEVICE_OFFSET:
		if ((len != 1 && len != 2 && len != 4 && len != 8) ||
		    vdk_device_read_config(t->c.dev, (uint32_t)o, data,
					   (uint32_t)len) < 0) {
			memset(data, 0, len);
			bad_access(t, "device config", off, len);
		}
		return;
	default:
		bad_access(t, "read", off, len);
		return;
	}
}

static void bar_write(void *opaque, unsigned int bar, uint64_t off,
		      const void *data, size_t len)
{
	struct vdk_virtio_pci *t = opaque;
	uint64_t base = off & ~(uint64_t)(VDK_VIRTIO_PCI_REGION_SIZE - 1);
	uint64_t o = off - base;
	uint32_t v = 0;

	(void)bar;
	switch (base) {
	case VDK_VIRTIO_PCI_COMMON_OFFSET:
		if (vdk_virtio_pci_field_width(o) != len) {
			bad_access(t, "common config", off, len);
			return;
		}
		memcpy(&v, data, len);
		vdk_virtio_pci_common_write(t, o, le32toh(v));
		return;
	case VDK_VIRTIO_PCI_DEVICE_OFFSET:
		if (vdk_virtio_pci_needs_reset(t) ||
		    (len != 1 && len != 2 && len != 4 && len != 8) ||
		    vdk_device_write_config(t->c.dev, (uint32_t)o, data,
					    (uint32_t)len) < 0)
			bad_access(t, "device config", off, len);
		return;
	case VDK_VIRTIO_PCI_NOTIFY_OFFSET:
		notify_write(t, o, data, len);
		return;
	default: /* the ISR is read-only */
		bad_access(t, "write", off, len);
		return;
	}
}

static const struct vdk_pci_bar_ops bar_ops = {.read = bar_read,
					       .write = bar_write};

/* ---- VIRTIO_PCI_CAP_PCI_CFG (virtio 1.2 §4.1.4.9) ----------------------- */

/* offsets in struct virtio_pci_cfg_cap */
#define CFG_CAP_BAR    4
#define CFG_CAP_OFFSET 8
#define CFG_CAP_LENGTH 12
#define CFG_CAP_DATA   16
#define CFG_CAP_SIZE   20

static uint32_t cap32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* An access to pci_cfg_data reaches cap.bar at cap.offset with
 * cap.length bytes (1, 2 or 4; offset aligned to it); others are ignored
 * (§4.1.4.9.1). */
static void cfg_cap_access(void *opaque, uint8_t *cap, uint8_t cap_len,
			   uint8_t off, size_t len, bool write)
{
	struct vdk_virtio_pci *t = opaque;
	uint32_t length = cap32(cap + CFG_CAP_LENGTH);
	uint32_t offset = cap32(cap + CFG_CAP_OFFSET);

	(void)len;
	if (cap_len < CFG_CAP_SIZE || off < CFG_CAP_DATA)
		return;
	if ((length != 1 && length != 2 && length != 4) ||
	    (offset & (length - 1))) {
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: PCI_CFG window access of %u bytes at %#x "
			   "ignored",
			   t->c.dev->ops->name, length, offset);
		if (!write)
			memset(cap + CFG_CAP_DATA, 0, 4);
		return;
	}
	if (write) {
		vdk_pci_bar_write(t->pci, cap[CFG_CAP_BAR], offset,
				  cap + CFG_CAP_DATA, length);
	} else {
		memset(cap + CFG_CAP_DATA, 0, 4);
		vdk_pci_bar_read(t->pci, cap[CFG_CAP_BAR], offset,
				 cap + CFG_CAP_DATA, length);
	}
}

/* ---- capabilities --------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A struct virtio_pci_cap (§4.1.4) after its first two bytes, plus
 * @extra_len bytes. */
static int add_vendor_cap(struct vdk_virtio_pci *t, uint8_t type,
			  uint32_t offset, uint32_t length,
			  const uint8_t *extra, uint8_t extra_len,
			  const uint8_t *wmask, vdk_pci_cap_fn *fn)
{
	uint8_t body[24] = {0};

	body[0] = (uint8_t)(16 + extra_len); /* cap_len */
	body[1] = type;			     /* cfg_type */
	body[2] = VDK_VIRTIO_PCI_BAR;	     /* bar */
	put32(body + 6, offset);
	put32(body + 10, length);
	if (extra_len)
		memcpy(body + 14, extra, extra_len);
	return vdk_pci_add_cap(t->pci, PCI_CAP_ID_VNDR, body,
			       (uint8_t)(14 + extra_len), wmask, fn, t, NULL);
}

static int add_caps(struct vdk_virtio_pci *t, uint32_t config_size)
{
	uint8_t mult[4], cfg_wmask[18] = {0};
	int r;

	put32(mult, VDK_VIRTIO_PCI_NOTIFY_MULTIPLIER);
	/* bar, offset, length and pci_cfg_data are the driver's */
	cfg_wmask[2] = 0xff;
	memset(cfg_wmask + 6, 0xff, 12);
	r = add_vendor_cap(t, VIRTIO_PCI_CAP_COMMON_CFG,
			   VDK_VIRTIO_PCI_COMMON_OFFSET, COMMON_CFG_LEN, NULL,
			   0, NULL, NULL);
	if (r == 0)
		r = add_vendor_cap(t, VIRTIO_PCI_CAP_NOTIFY_CFG,
				   VDK_VIRTIO_PCI_NOTIFY_OFFSET,
				   (uint32_t)t->c.num_queues *
					   VDK_VIRTIO_PCI_NOTIFY_MULTIPLIER,
				   mult, 4, NULL, NULL);
	if (r == 0)
		r = add_vendor_cap(t, VIRTIO_PCI_CAP_ISR_CFG,
				   VDK_VIRTIO_PCI_ISR_OFFSET, 1, NULL, 0, NULL,
				   NULL);
	if (r == 0 && config_size)
		r = add_vendor_cap(t, VIRTIO_PCI_CAP_DEVICE_CFG,
				   VDK_VIRTIO_PCI_DEVICE_OFFSET, config_size,
				   NULL, 0, NULL, NULL);
	if (r == 0) {
		uint8_t zero[4] = {0};

		r = add_vendor_cap(t, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, zero, 4,
				   cfg_wmask, cfg_cap_access);
	}
	return r;
}

/* ---- public entry points --------------------------------------------------- */

/* Accesses while asleep are ignored (reads 0): the device must not move. */
static bool asleep(struct vdk_virtio_pci *t, uint64_t where)
{
	if (!t->c.asleep)
		return false;
	VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
		   "%s: access at %#llx while asleep ignored",
		   t->c.dev->ops->name, (unsigned long long)where);
	return true;
}

/* Drop the lock, then send the notification found under it. */
static void unlock_and_notify(struct vdk_virtio_pci *t)
{
	int q = t->pending_notify;

	t->pending_notify = -1;
	/* Without a notify callback, queue_notify runs under the lock so it
	 * cannot race a reset; it may signal (irq_lock only). */
	if (q >= 0 && !t->notify)
		vdk_device_queue_notify(t->c.dev, (uint16_t)q);
	pthread_mutex_unlock(&t->c.lock);
	if (q >= 0 && t->notify)
		t->notify(t->notify_opaque, (uint16_t)q);
}

void vdk_virtio_pci_config_read(struct vdk_virtio_pci *t, uint32_t offset,
				void *data, size_t len)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->c.lock);
	if (asleep(t, offset))
		memset(data, 0, len);
	else
		vdk_pci_config_read(t->pci, offset, data, len);
	unlock_and_notify(t);
}

void vdk_virtio_pci_config_write(struct vdk_virtio_pci *t, uint32_t offset,
				 const void *data, size_t len)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->c.lock);
	if (!asleep(t, offset))
		vdk_pci_config_write(t->pci, offset, data, len);
	unlock_and_notify(t);
}

void vdk_virtio_pci_bar_read(struct vdk_virtio_pci *t, unsigned int bar,
			     uint64_t offset, void *data, size_t len)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->c.lock);
	if (asleep(t, offset))
		memset(data, 0, len);
	else
		vdk_pci_bar_read(t->pci, bar, offset, data, len);
	unlock_and_notify(t);
}

void vdk_virtio_pci_bar_write(struct vdk_virtio_pci *t, unsigned int bar,
			      uint64_t offset, const void *data, size_t len)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->c.lock);
	if (!asleep(t, offset))
		vdk_pci_bar_write(t->pci, bar, offset, data, len);
	unlock_and_notify(t);
}

int vdk_virtio_pci_mmio_read(struct vdk_virtio_pci *t, uint64_t addr,
			     void *data, size_t len)
{
	uint64_t off;
	int bar;

	if (!t)
		return -ENOENT;
	pthread_mutex_lock(&t->c.lock);
	bar = vdk_pci_bar_find(t->pci, addr, &off);
	if (bar >= 0 && asleep(t, addr))
		memset(data, 0, len);
	else if (bar >= 0)
		vdk_pci_bar_read(t->pci, (unsigned int)bar, off, data, len);
	unlock_and_notify(t);
	return bar < 0 ? bar : 0;
}

int vdk_virtio_pci_mmio_write(struct vdk_virtio_pci *t, uint64_t addr,
			      const void *data, size_t len)
{
	uint64_t off;
	int bar;

	if (!t)
		return -ENOENT;
	pthread_mutex_lock(&t->c.lock);
	bar = vdk_pci_bar_find(t->pci, addr, &off);
	if (bar >= 0 && !asleep(t, addr))
		vdk_pci_bar_write(t->pci, (unsigned int)bar, off, data, len);
	unlock_and_notify(t);
	return bar < 0 ? bar : 0;
}

int64_t vdk_virtio_pci_notify_offset(struct vdk_virtio_pci *t, uint16_t queue)
{
	if (!t || queue >= t->c.num_queues)
		return -ERANGE;
	return VDK_VIRTIO_PCI_NOTIFY_OFFSET +
	       (int64_t)queue * VDK_VIRTIO_PCI_NOTIFY_MULTIPLIER;
}

void vdk_virtio_pci_notify(struct vdk_virtio_pci *t, uint16_t queue)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->c.lock);
	if (!t->c.asleep && queue < t->c.num_queues && t->c.active[queue] &&
	    !vdk_virtio_pci_needs_reset(t))
		vdk_device_queue_notify(t->c.dev, queue);
	else
		VDK_LOG_RL(&t->c.rl, VDK_LOG_WARN, MOD,
			   "%s: notification for queue %u that is not running "
			   "dropped",
			   t->c.dev->ops->name, queue);
	pthread_mutex_unlock(&t->c.lock);
}

/* A PCI class for the device type, as other VMMs give (virtio 1.2 §4.1.2
 * leaves it free). */
static uint32_t class_code(uint32_t device_type)
{
	switch (device_type) {
	case 1: /* network */
		return 0x020000;
	case 2: /* block: mass storage, other */
		return 0x018000;
	case 3: /* console: communication, other */
		return 0x078000;
	default:
		return 0xff0000;
	}
}

struct vdk_virtio_pci *
vdk_virtio_pci_new(const struct vdk_virtio_pci_config *cfg, int *err)
{
	struct vdk_virtio_pci *t = NULL;
	struct vdk_device *dev;
	uint32_t config_size = 0;
	uint16_t nvec;
	int r = -EINVAL;

	if (!cfg || !cfg->device || !cfg->device->ops || !cfg->mem || !cfg->msi)
		goto out;
	dev = cfg->device;
	if (dev->num_queues == 0 || dev->num_queues > VDK_DEVICE_MAX_QUEUES)
		goto out;
	nvec = cfg->msix_vectors ? cfg->msix_vectors
				 : (uint16_t)(dev->num_queues + 1);
	if (nvec > MAX_VECTORS_ALLOWED || nvec > MAX_VECTORS)
		goto out;
	config_size = dev->ops->config_size;
	if (config_size > VDK_VIRTIO_PCI_REGION_SIZE)
		goto out;
	r = -ENOMEM;
	t = calloc(1, sizeof(*t));
	if (!t)
		goto out;
	t->queue_vector = calloc(dev->num_queues, sizeof(*t->queue_vector));
	if (!t->queue_vector)
		goto out;
	r = vdk_transport_init(&t->c, &vdk_virtio_pci_transport_ops, t, dev,
			       cfg->mem);
	if (r < 0)
		goto out;
	for (uint16_t i = 0; i < dev->num_queues; i++)
		t->queue_vector[i] = VIRTIO_MSI_NO_VECTOR;
	t->nvec = nvec;
	t->notify = cfg->notify;
	t->notify_opaque = cfg->notify_opaque;
	t->config_vector = VIRTIO_MSI_NO_VECTOR;
	t->pending_notify = -1;

	struct vdk_pci_config pc = {
		.id = {.vendor_id = VDK_VIRTIO_PCI_VENDOR_ID,
		       .device_id = (uint16_t)(VDK_VIRTIO_PCI_DEVICE_ID_BASE +
					       dev->ops->device_type),
		       .subsystem_vendor_id = VDK_VIRTIO_PCI_VENDOR_ID,
		       .subsystem_id = 0x1100,
		       .revision_id = 1, /* §4.1.2.1: modern-only */
		       .class_code = class_code(dev->ops->device_type),
		       .interrupt_pin = 1},
		.bar_map = cfg->bar_map,
		.intx = cfg->intx,
		.opaque = cfg->opaque,
	};
	t->pci = vdk_pci_dev_new(&pc, &r);
	if (!t->pci)
		goto out;
	r = vdk_pci_add_bar(t->pci, VDK_VIRTIO_PCI_BAR, VDK_VIRTIO_PCI_BAR_SIZE,
			    VDK_PCI_BAR_MEM64, &bar_ops, t);
	if (r == 0)
		r = add_caps(t, config_size);
	if (r == 0)
		r = vdk_pci_add_msix(t->pci, nvec, VDK_VIRTIO_PCI_BAR,
				     VDK_VIRTIO_PCI_MSIX_TABLE,
				     VDK_VIRTIO_PCI_MSIX_PBA, cfg->msi,
				     cfg->msix_changed, cfg->opaque);
out:
	if (err)
		*err = r;
	if (r < 0 && t) {
		if (t->c.queues)
			vdk_transport_fini(&t->c);
		vdk_pci_dev_free(t->pci);
		free(t->queue_vector);
		free(t);
		t = NULL;
	}
	return t;
}

void vdk_virtio_pci_free(struct vdk_virtio_pci *t)
{
	if (!t)
		return;
	vdk_transport_fini(&t->c);
	vdk_pci_dev_free(t->pci);
	free(t->queue_vector);
	free(t);
}

struct vdk_pci_dev *vdk_virtio_pci_dev(struct vdk_virtio_pci *t)
{
	return t ? t->pci : NULL;
}

uint8_t vdk_virtio_pci_status(struct vdk_virtio_pci *t)
{
	return vdk_transport_status(&t->c);
}

uint8_t vdk_virtio_pci_isr(struct vdk_virtio_pci *t)
{
	uint8_t v;

	pthread_mutex_lock(&t->c.irq_lock);
	v = t->isr;
	pthread_mutex_unlock(&t->c.irq_lock);
	return v;
}

struct vdk_virtq *vdk_virtio_pci_queue(struct vdk_virtio_pci *t, uint16_t index)
{
	return t ? vdk_transport_queue(&t->c, index) : NULL;
}

uint16_t vdk_virtio_pci_queue_vector(struct vdk_virtio_pci *t, uint16_t index)
{
	uint16_t v = VIRTIO_MSI_NO_VECTOR;

	if (!t || (index >= t->c.num_queues && index != UINT16_MAX))
		return v;
	pthread_mutex_lock(&t->c.irq_lock);
	v = index == UINT16_MAX ? t->config_vector : t->queue_vector[index];
	pthread_mutex_unlock(&t->c.irq_lock);
	return v;
}
