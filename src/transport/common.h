/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rules every transport follows, in one place for virtio-mmio (mmio.c)
 * and virtio-pci (pci.c): device status, feature negotiation and reset
 * (virtio 1.2 §2.1, §2.2, §2.4, §3.1.1), starting and stopping one queue
 * (§2.6.1), sleep and wake, and what a snapshot of the queues holds and
 * which restored states are possible. The state both keep alike is a
 * struct vdk_transport embedded in each; their own registers (the mmio
 * register file, the PCI common configuration and MSI-X vectors) stay
 * theirs, reached through struct vdk_transport_ops. These functions
 * decide; call them with the transport's register lock held unless one
 * says that it takes it. Not installed.
 */
#ifndef VDK_TRANSPORT_COMMON_H
#define VDK_TRANSPORT_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_config.h>

#include <vdk/device.h>
#include <vdk/interrupt.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "../snapshot.h"

#ifndef VDK_HIDDEN
#define VDK_HIDDEN __attribute__((visibility("hidden")))
#endif

/* Bits a driver may set in the device status (virtio 1.2 §2.1). */
#define VDK_TRANSPORT_DRIVER_STATUS_BITS                                       \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |                \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK |             \
	 VIRTIO_CONFIG_S_FAILED)

struct vdk_transport;

/* What differs between transports in the shared rules below. */
struct vdk_transport_ops {
	/* After a device reset (lock and irq_lock held): clear the
	 * transport's own registers and interrupt state (not the
	 * configuration generation) and lower the interrupt line. */
	void (*reset_locked)(struct vdk_transport *c);
	/* On wake (irq_lock held): bring the interrupt line to the level a
	 * restored interrupt status implies. */
	void (*wake_irq_locked)(struct vdk_transport *c);
	/* The vdk_interrupt ops the device gets (opaque: the transport). */
	const struct vdk_interrupt_ops *irq_ops;
	/* Module name for log lines: "mmio", "virtio-pci". */
	const char *mod;
};

/*
 * The state every transport keeps the same way, embedded in struct
 * vdk_mmio and struct vdk_virtio_pci (member "c"; @opaque is the outer
 * struct, what the vdk_interrupt ops get).
 *
 * Locking: two mutexes, always taken in this order. lock: the register
 * state and every call into the device framework; irq_lock: a leaf around
 * the interrupt state (needs_reset here, the transport's own fields).
 */
struct vdk_transport {
	const struct vdk_transport_ops *ops;
	void *opaque;
	pthread_mutex_t lock;
	pthread_mutex_t irq_lock;
	struct vdk_device *dev;
	const struct vdk_mem *mem;
	struct vdk_virtq *queues; /* num_queues entries */
	uint16_t num_queues;
	/* what the device was activated with: &queues[i] or NULL */
	struct vdk_virtq *active[VDK_DEVICE_MAX_QUEUES];
	uint64_t device_features; /* cached ops->features() */
	struct vdk_ratelimit rl;
	struct vdk_interrupt irq;

	/* register state, under lock */
	uint8_t status; /* driver-written bits only */
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint64_t driver_features;
	bool activated;	      /* vdk_device_activate() succeeded */
	bool asleep;	      /* put to sleep by the transport's sleep call */
	bool restored_active; /* restored ACTIVE: wake passes the queues */

	/* under irq_lock */
	bool needs_reset; /* DEVICE_NEEDS_RESET (§2.1.2) */
};

/* What a transport does when the status rules decide so. */
struct vdk_transport_status_hooks {
	/* The driver wrote 0: reset the device and the transport registers
	 * (vdk_transport_reset_device(), then the transport's own). */
	void (*reset)(void *t);
	/* The driver asks for FEATURES_OK: whether it may have it
	 * (usually vdk_transport_features_ok()). */
	bool (*features_ok)(void *t);
	/* DRIVER_OK was just set: activate (vdk_transport_activate()). */
	void (*driver_ok)(void *t);
};

/*
 * A driver write of @val to the device status whose driver-written bits are
 * *@status (virtio 1.2 §2.1, §3.1.1): 0 resets; bits are only ever added,
 * each only after the one before it in the initialisation sequence;
 * FEATURES_OK sticks only if hooks->features_ok agrees; FAILED freezes the
 * status until a reset; nothing but a reset is accepted while
 * @needs_reset (DEVICE_NEEDS_RESET, §2.1.2). Refusals are logged through
 * @rl under @mod with @name.
 */
VDK_HIDDEN void
vdk_transport_write_status(uint8_t *status, uint32_t val, bool needs_reset,
			   const struct vdk_transport_status_hooks *hooks,
			   void *t, struct vdk_ratelimit *rl, const char *mod,
			   const char *name);

/*
 * Whether @dev can run with the features @accepted the driver wrote, of
 * @offered (virtio 1.2 §3.1.1 step 5, §6.1: a subset of the offer, with
 * VIRTIO_F_VERSION_1); asks the device last (vdk_device_ack_features()).
 */
VDK_HIDDEN bool vdk_transport_features_ok(struct vdk_device *dev,
					  uint64_t offered, uint64_t accepted,
					  struct vdk_ratelimit *rl,
					  const char *mod);

/*
 * DRIVER_OK (virtio 1.2 §3.1.1 step 8): activate every ready queue of
 * @queues[0..@n) against @mem with @features, fill @active (&queues[i] or
 * NULL) and activate @dev with them. On failure nothing stays active,
 * @active is all NULL and *@why says what failed.
 * Return: 0 or the -errno of the failed step.
 */
VDK_HIDDEN int vdk_transport_activate(struct vdk_device *dev,
				      const struct vdk_mem *mem,
				      struct vdk_interrupt *irq,
				      struct vdk_virtq *queues, uint16_t n,
				      struct vdk_virtq **active,
				      uint64_t features, const char **why);

/*
 * Device reset (virtio 1.2 §2.4): reset @dev, then every queue, and forget
 * what the device was activated with. If the device cannot reset, the
 * queues are left alone (it may still use them).
 * Return: 0 or vdk_device_reset()'s error.
 */
VDK_HIDDEN int vdk_transport_reset_device(struct vdk_device *dev,
					  struct vdk_virtq *queues, uint16_t n,
					  struct vdk_virtq **active);

/*
 * Start or stop one queue of a running device while its others run
 * (virtio 1.2 §2.6.1: queue reset, and re-enabling after it): queue @idx
 * becomes @nq (activated; NULL: stop it and reset queues[@idx]) through
 * vdk_device_start_queue()/vdk_device_stop_queue(). A device without
 * per-queue ops is put to sleep and woken with the new @active set
 * instead. @active[@idx] follows, except when the device refused the stop
 * or start, or could not sleep.
 * Return: 0, or the -errno of the failed step with *@why saying which.
 */
VDK_HIDDEN int vdk_transport_swap_queue(struct vdk_device *dev,
					const struct vdk_mem *mem,
					struct vdk_interrupt *irq,
					struct vdk_virtq *queues,
					struct vdk_virtq **active, uint16_t idx,
					struct vdk_virtq *nq, const char **why);

/* Whether feature @bit is negotiated: FEATURES_OK set in @status and the
 * bit in @features. */
static inline bool vdk_transport_negotiated(uint8_t status, uint64_t features,
					    unsigned int bit)
{
	return (status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	       (features & (1ull << bit));
}

/*
 * Set up @c for @dev (state NEW) on @mem: its queues (one per device queue,
 * each at the device's maximum size), the interrupt object backed by
 * @ops->irq_ops with @opaque, the locks. @c must be zeroed.
 * Return: 0; -EINVAL if @dev has no queues or too many (or a queue size is
 * refused); -ENOMEM.
 */
VDK_HIDDEN int vdk_transport_init(struct vdk_transport *c,
				  const struct vdk_transport_ops *ops,
				  void *opaque, struct vdk_device *dev,
				  const struct vdk_mem *mem);

/* Undo vdk_transport_init(): wake @c if asleep, reset the device if it is
 * active (logged if it cannot), free the queues. Takes lock. */
VDK_HIDDEN void vdk_transport_fini(struct vdk_transport *c);

/* The device status as the driver reads it (DEVICE_NEEDS_RESET included).
 * Lock held; takes irq_lock. */
VDK_HIDDEN uint8_t vdk_transport_status_locked(struct vdk_transport *c);

/* The same, taking lock. */
VDK_HIDDEN uint8_t vdk_transport_status(struct vdk_transport *c);

/* Queue @index, or NULL if there is no such queue. */
VDK_HIDDEN struct vdk_virtq *vdk_transport_queue(struct vdk_transport *c,
						 uint16_t index);

/* Log @why (error @err) and set DEVICE_NEEDS_RESET with a configuration
 * change notification (§2.1.2). Lock held. */
VDK_HIDDEN void vdk_transport_fail(struct vdk_transport *c, const char *why,
				   int err);

/* Reset every queue and forget what the device was activated with. Lock
 * held. */
VDK_HIDDEN void vdk_transport_reset_queues(struct vdk_transport *c);

/* A driver write of @val to the device status: vdk_transport_write_status()
 * with the reset (vdk_transport_reset_device(), then the transport's
 * ops->reset_locked), FEATURES_OK (vdk_transport_features_ok()) and
 * DRIVER_OK (vdk_transport_activate()) steps every transport takes. Lock
 * held. */
VDK_HIDDEN void vdk_transport_set_status(struct vdk_transport *c, uint32_t val);

/* Word @sel (0: bits 0..31, 1: bits 32..63, else 0) of @features, as the
 * feature registers read (§4.1.4.3, §4.2.2). */
VDK_HIDDEN uint32_t vdk_transport_features_word(uint64_t features,
						uint32_t sel);

/* A driver write of @v to the driver features word driver_features_sel
 * selects: only after DRIVER and before FEATURES_OK (§3.1.1), else
 * ignored and logged naming register @reg. Lock held. */
VDK_HIDDEN void vdk_transport_write_driver_features(struct vdk_transport *c,
						    uint32_t v,
						    const char *reg);

/* The driver enabled queue @idx (< num_queues; the transport checked the
 * write): mark it ready and, when it comes back after a queue reset while
 * DRIVER_OK with VIRTIO_F_RING_RESET (§2.6.1.2), activate it and start it
 * in the running device; a failure sets DEVICE_NEEDS_RESET. Lock held. */
VDK_HIDDEN void vdk_transport_enable_queue(struct vdk_transport *c,
					   uint16_t idx);

/* A driver write of @val to the queue reset register @reg for queue @idx
 * (§2.6.1): with 1 and VIRTIO_F_RING_RESET negotiated, stop the queue (if
 * running) and reset it, synchronously; otherwise log and ignore.
 * Return: whether the queue was reset. Lock held. */
VDK_HIDDEN bool vdk_transport_reset_queue(struct vdk_transport *c, uint16_t idx,
					  uint32_t val, const char *reg);

/* Half of a queue address: @slot 0 descriptor area, 1 driver area, 2
 * device area; @high for bits 32..63 (§4.1.4.3, §4.2.2). The caller has
 * checked that the queue is not ready. */
VDK_HIDDEN void vdk_transport_set_queue_addr(struct vdk_virtq *q,
					     unsigned int slot, bool high,
					     uint32_t val);

/* Put the device to sleep (vdk_device_sleep()), or wake it with what a
 * restore left (vdk_device_wake(), then ops->wake_irq_locked). Take lock.
 * Return: 0, -EBUSY if already asleep / not asleep, or the device's
 * error. */
VDK_HIDDEN int vdk_transport_sleep(struct vdk_transport *c);
VDK_HIDDEN int vdk_transport_wake(struct vdk_transport *c);

/* One queue as a snapshot holds it, range-checked by
 * vdk_transport_parse_queues(). */
struct vdk_transport_snap_queue {
	uint64_t size, desc, driver, device, next_avail, next_used;
	uint64_t vector; /* MSI-X vector (virtio-pci), else UINT64_MAX */
	bool ready;
};

/* The queues as a CBOR array of maps (size, ready, the three addresses,
 * next_avail, next_used and, with @vectors, msix_vector = vectors[i]), or
 * NULL if out of memory. Lock held. */
VDK_HIDDEN cbor_item_t *vdk_transport_snapshot_queues(struct vdk_transport *c,
						      const uint16_t *vectors);

/* Snapshot a sleeping transport: a CBOR map of @keys entries that @fill
 * fills (lock held), serialized into *@buf (malloc'd, the caller frees)
 * and *@len. Takes lock.
 * Return: 0; -EBUSY if not asleep; -ENOMEM; @fill's error. */
VDK_HIDDEN int vdk_transport_snapshot(struct vdk_transport *c, size_t keys,
				      int (*fill)(struct vdk_transport *c,
						  cbor_item_t *root),
				      uint8_t **buf, size_t *len);

/* Add "format": @format and "version": @version to the snapshot map @root
 * (its first entries). Return: false if out of memory. */
VDK_HIDDEN bool vdk_transport_snap_put_header(cbor_item_t *root,
					      const char *format,
					      uint64_t version);

/* Check the untrusted snapshot @root: a map whose "format" is @format and
 * whose "version" is @version.
 * Return: 0; -EINVAL not such a map; -EPROTO another version. */
VDK_HIDDEN int vdk_transport_snap_header(const cbor_item_t *root,
					 const char *format, uint64_t version);

/* Read the untrusted queue array @arr of a snapshot into @out[0..
 * num_queues): one map per queue, each field type- and range-checked (size
 * up to the queue's maximum, indices 16-bit, msix_vector 16-bit if @msix).
 * Return: 0 or -EINVAL. */
VDK_HIDDEN int vdk_transport_parse_queues(struct vdk_transport *c,
					  const cbor_item_t *arr, bool msix,
					  struct vdk_transport_snap_queue *out);

/* Whether a restored @status, @driver_features and @active describe a
 * state the transport could have reached: only driver bits and
 * DEVICE_NEEDS_RESET, offered features, VERSION_1 with FEATURES_OK,
 * DRIVER_OK only after FEATURES_OK, active only with DRIVER_OK. */
VDK_HIDDEN bool vdk_transport_snap_state_ok(const struct vdk_transport *c,
					    uint64_t status,
					    uint64_t driver_features,
					    bool active);

/* Set the queues from a parsed snapshot, activating the ready ones if the
 * device was @active with @features. On failure some queues may be set:
 * the caller resets them (vdk_transport_reset_queues()).
 * Return: 0 or the -errno of the refused value. Lock held. */
VDK_HIDDEN int
vdk_transport_restore_queues(struct vdk_transport *c,
			     const struct vdk_transport_snap_queue *sq,
			     bool active, uint64_t features);

/* Set the shared registers from a parsed snapshot (the status's driver
 * bits, the feature selects and features, active) and DEVICE_NEEDS_RESET
 * from @status; the interrupt object starts afresh. Lock held; takes
 * irq_lock. */
VDK_HIDDEN void vdk_transport_restore_registers(
	struct vdk_transport *c, uint64_t status, uint32_t device_features_sel,
	uint32_t driver_features_sel, uint64_t driver_features, bool active);

/* Restore a sleeping transport whose device is not active from the
 * untrusted snapshot @buf (@len bytes): load it (vdk_snapshot_load()),
 * @parse it into a zeroed struct of @snap_size bytes, then @apply that
 * (both with lock held; apply leaves nothing behind when it fails). A
 * refusal is logged. Takes lock.
 * Return: 0; -EBUSY if awake or active; -ENOMEM; the load's, @parse's or
 * @apply's error. */
VDK_HIDDEN int
vdk_transport_restore(struct vdk_transport *c, const uint8_t *buf, size_t len,
		      size_t snap_size,
		      int (*parse)(struct vdk_transport *c,
				   const cbor_item_t *root, void *snap),
		      int (*apply)(struct vdk_transport *c, const void *snap));

#endif /* VDK_TRANSPORT_COMMON_H */
