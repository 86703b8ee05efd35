/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device status, feature negotiation and reset rules every transport
 * follows (virtio 1.2 §2.1, §2.2, §2.4, §3.1.1), in one place for
 * virtio-mmio (mmio.c) and virtio-pci (pci.c). The transports keep their
 * own registers and locks; these functions decide. Call them with the
 * transport's register lock held. Not installed.
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
	/* After a device reset (lock held): clear the transport's own
	 * registers and interrupt state (taking irq_lock for the latter). */
	void (*reset_registers)(struct vdk_transport *c);
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

#endif /* VDK_TRANSPORT_COMMON_H */
