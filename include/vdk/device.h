/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device model: one interface every vdk virtio device implements, and the
 * framework that enforces its lifecycle. Semantics of crosvm's VirtioDevice
 * (devices/src/virtio/virtio_device.rs).
 *
 * Lifecycle (each arrow is a vdk_device_*() call; anything else is refused
 * with -EBUSY or -EINVAL and a log line, never a crash):
 *
 *            activate            reset
 *     NEW ─────────────▶ ACTIVE ─────────▶ RESET ──activate──▶ ACTIVE ...
 *
 *   While ACTIVE and awake, one queue may start or stop while the others
 *   run (vdk_device_start_queue(), vdk_device_stop_queue()): virtio-mmio
 *   QueueReset, vhost-user ring start/stop. activate/reset are for the
 *   whole device; sleep/wake/snapshot/restore for suspend and snapshots.
 *
 *   sleep/wake from any of the three: sleep → asleep (an ACTIVE device hands
 *   its queues back), wake → awake (an ACTIVE device takes them back).
 *   Sleeping while asleep or waking while awake: -EBUSY.
 *   snapshot and restore: only while asleep.
 *
 * Snapshots cross the API as bytes. The framework wraps the device's own
 * bytes (its snapshot op) in a CBOR envelope { "format": "vdk-device",
 * "version": 2, "device_type": N, "state": "new"|"active"|"reset",
 * "acked_features": F, "device": <byte string, or null> } and refuses to
 * restore an envelope of another device type or version.
 *
 * Threading: the vdk_device_*() calls are made by one control thread (the
 * transport's); the device may run its own workers between activate and
 * sleep/reset.
 */
#ifndef VDK_DEVICE_H
#define VDK_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/interrupt.h>
#include <vdk/loop.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Version of the snapshot envelope this library writes and reads (2: the
 * device's state is a byte string). */
#define VDK_DEVICE_SNAPSHOT_VERSION 2

/* ---- device ops ------------------------------------------------------- */

/**
 * struct vdk_device_ops - what a device implements. @dev is the device's
 * own pointer (struct vdk_device.impl). Optional members may be NULL.
 */
struct vdk_device_ops {
	/** Virtio device ID (VIRTIO_ID_* from <linux/virtio_ids.h>). */
	uint32_t device_type;
	/** Short name for messages ("rng", "blk"). */
	const char *name;
	/** Number of queues; 1..VDK_DEVICE_MAX_QUEUES. */
	uint16_t (*num_queues)(void *dev);
	/** Largest size of queue @index; a power of two. */
	uint16_t (*queue_max_size)(void *dev, uint16_t index);
	/** Feature bits the device offers (include VIRTIO_F_VERSION_1). */
	uint64_t (*features)(void *dev);
	/** Optional: the driver accepted @features (a subset of features()). */
	void (*ack_features)(void *dev, uint64_t features);
	/** Optional: read @len bytes of device configuration at @offset
	 * (virtio 1.2 §2.5). The framework has checked offset + len against
	 * config_size. */
	void (*read_config)(void *dev, uint32_t offset, void *data,
			    uint32_t len);
	/** Optional: driver write to configuration; same checks. */
	void (*write_config)(void *dev, uint32_t offset, const void *data,
			     uint32_t len);
	/** Bytes of device configuration space. */
	uint32_t config_size;
	/**
	 * Start the device. @queues has num_queues() entries; entry i is the
	 * activated queue i, or NULL if the driver did not make it ready. The
	 * device may use @mem, @irq and the queues until reset() or sleep()
	 * returns. Return 0 or -errno (the device stays inactive).
	 */
	int (*activate)(void *dev, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues);
	/** Stop using queues, memory and interrupt; forget driver state.
	 * Return 0 or -errno. */
	int (*reset)(void *dev);
	/** Optional: process queue @index now (driver notification). */
	void (*queue_notify)(void *dev, uint16_t index);
	/**
	 * Optional: stop all work (workers parked, no more guest access). An
	 * active device stops using its queues; the framework keeps them.
	 */
	int (*sleep)(void *dev);
	/** Optional: resume after sleep(), with the (possibly restored) mem,
	 * irq and queues when the device is active, else all NULL. */
	int (*wake)(void *dev, const struct vdk_mem *mem,
		    struct vdk_interrupt *irq, struct vdk_virtq **queues);
	/** Optional: the device's state as bytes of its own format (vdk's
	 * devices: CBOR): *@buf malloc()ed, the caller frees it; *@len bytes.
	 * Only called while asleep. NULL means the device has no state beyond
	 * the envelope. Return 0 or -errno. */
	int (*snapshot)(void *dev, uint8_t **buf, size_t *len);
	/** Optional: load state from @len bytes at @buf (borrowed; untrusted:
	 * check everything), NULL/0 if the snapshot carried none. Return
	 * -EINVAL if they are malformed. */
	int (*restore)(void *dev, const uint8_t *buf, size_t len);
	/** Optional: free the device (vdk_device_fini()). */
	void (*destroy)(void *dev);
	/**
	 * Optional (needed for per-queue reset, vhost-user, multiqueue): queue
	 * @index starts while the device is ACTIVE and awake; @q is activated
	 * (areas checked against guest memory). The device uses it until
	 * stop_queue(@index), reset() or sleep(), and processes what is
	 * already available. Return 0 or -errno (the queue is not started).
	 * virtio 1.2 §2.6.1 (queue reset), kvmtool's init_vq,
	 * libvhost-user's queue_set_started.
	 */
	int (*start_queue)(void *dev, uint16_t index, struct vdk_virtq *q);
	/**
	 * Optional (with start_queue): queue @index stops while the others
	 * run. The device finishes or gives back its in-flight chains, stops
	 * touching the queue, and returns it with next_avail/next_used intact
	 * (NULL if it was not started).
	 */
	struct vdk_virtq *(*stop_queue)(void *dev, uint16_t index);
	/**
	 * Optional: the host gives the device its event loop, once, before
	 * the first activate. The device adds and removes its own fds
	 * (io_uring completion eventfds, output readiness, timers) on @loop
	 * whenever it likes, from the control thread or from its callbacks,
	 * and removes them all in destroy(). @loop outlives the device.
	 * Return 0 or -errno.
	 */
	int (*attach_loop)(void *dev, struct vdk_loop *loop);
	/**
	 * Optional: the host's eventfd @fd is signalled for every driver
	 * notification of queue @index (available buffer notification,
	 * virtio 1.2 §2.7.23; a KVM ioeventfd on the queue's notification
	 * address). A device that returns 0 waits on @fd itself (vhost-user:
	 * the back-end's kick fd) and keeps a dup() of it; the host then no
	 * longer calls queue_notify for notifications that come through @fd
	 * and never reads it. Called while the device is not ACTIVE. Return 0
	 * or -errno (the host keeps forwarding through queue_notify).
	 */
	int (*set_kick_fd)(void *dev, uint16_t index, int fd);
	/**
	 * Optional: a write of a non-zero count to the host's eventfd @fd is
	 * a used buffer notification of queue @index (virtio 1.2 §2.7.23) that
	 * reaches the driver without the transport (a KVM irqfd on the queue's
	 * interrupt). A device that returns 0 keeps a dup() of @fd and may
	 * notify through it (vhost-user: hands it to the back-end as the call
	 * fd) instead of vdk_interrupt_signal_used_queue(); the transport must
	 * be told (vdk_mmio_set_direct_used_notify()). Called while the device
	 * is not ACTIVE. Return 0 or -errno (nothing changes).
	 */
	int (*set_call_fd)(void *dev, uint16_t index, int fd);
};

/** Lifecycle state of a device (see the diagram above). */
enum vdk_device_state {
	VDK_DEVICE_NEW,
	VDK_DEVICE_ACTIVE,
	VDK_DEVICE_RESET,
};

/**
 * struct vdk_device - the framework's handle on one device. Fields are
 * read-only outside device.c.
 */
struct vdk_device {
	const struct vdk_device_ops *ops;
	void *impl; /**< the device's own pointer, passed to every op */
	enum vdk_device_state state;
	bool asleep;
	uint64_t acked_features;
	const struct vdk_mem *mem; /**< while ACTIVE */
	struct vdk_interrupt *irq; /**< while ACTIVE */
	/** while ACTIVE: the started queues, NULL for the others */
	struct vdk_virtq *queues[VDK_DEVICE_MAX_QUEUES];
	uint16_t num_queues;
	struct vdk_loop *loop; /**< from vdk_device_attach_loop(), or NULL */
};

/**
 * vdk_device_init() - wrap device @impl with @ops in state NEW, awake.
 *
 * Return: 0, or -EINVAL if @ops lacks a mandatory member or num_queues() is
 * out of range.
 */
int vdk_device_init(struct vdk_device *dev, const struct vdk_device_ops *ops,
		    void *impl);

/** vdk_device_fini() - reset if active, then ops->destroy(impl). */
void vdk_device_fini(struct vdk_device *dev);

/**
 * vdk_device_ack_features() - record the features the driver accepted
 * (virtio 1.2 §2.2); bits the device did not offer are refused.
 * Return: 0; -EINVAL for unoffered bits; -EBUSY if ACTIVE or asleep.
 */
int vdk_device_ack_features(struct vdk_device *dev, uint64_t features);

/**
 * vdk_device_read_config() / vdk_device_write_config() - configuration
 * space access (virtio 1.2 §2.5). Out-of-range bytes read as 0 and writes
 * to them are dropped.
 * Return: 0, or -ERANGE if [offset, offset + len) leaves the config space.
 */
int vdk_device_read_config(struct vdk_device *dev, uint32_t offset, void *data,
			   uint32_t len);
int vdk_device_write_config(struct vdk_device *dev, uint32_t offset,
			    const void *data, uint32_t len);

/**
 * vdk_device_activate() - NEW/RESET → ACTIVE (driver set DRIVER_OK,
 * virtio 1.2 §3.1.1). @queues: num_queues entries, NULL for a queue that is
 * not ready; the queues must already be vdk_virtq_activate()d. Not owned;
 * they must stay valid until reset or sleep.
 *
 * Return: 0; -EBUSY if ACTIVE or asleep; the device's error otherwise.
 */
int vdk_device_activate(struct vdk_device *dev, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues);

/**
 * vdk_device_reset() - ACTIVE → RESET (driver wrote 0 to device status).
 * From NEW or RESET it only forgets acked features.
 * Return: 0; -EBUSY if asleep; the device's error otherwise.
 */
int vdk_device_reset(struct vdk_device *dev);

/** vdk_device_queue_notify() - forward a driver notification (only while
 * ACTIVE and awake; otherwise ignored). */
void vdk_device_queue_notify(struct vdk_device *dev, uint16_t index);

/**
 * vdk_device_attach_loop() - give the device the event loop it registers its
 * own fds on (struct vdk_device_ops.attach_loop), once, before the first
 * activate. A device without the op needs no loop (0). @loop is not owned
 * and must outlive the device (vdk_device_fini()).
 *
 * Return: 0; -EINVAL for a NULL @loop; -EBUSY if a loop is already attached
 * or the device is ACTIVE; the device's error.
 */
int vdk_device_attach_loop(struct vdk_device *dev, struct vdk_loop *loop);

/**
 * vdk_device_set_kick_fd() - offer the device eventfd @fd, signalled by the
 * host for every driver notification of queue @index (struct
 * vdk_device_ops.set_kick_fd). On 0 the device waits on @fd itself (with its
 * own dup) and the host must neither read @fd nor forward its notifications
 * with vdk_device_queue_notify(); otherwise nothing changed.
 * @fd: an eventfd (not owned; the device dup()s it).
 *
 * Return: 0; -EOPNOTSUPP if the device lacks the op; -EBUSY while ACTIVE;
 * -ERANGE if @index >= num_queues; -EBADF for a negative @fd; the device's
 * error.
 */
int vdk_device_set_kick_fd(struct vdk_device *dev, uint16_t index, int fd);

/**
 * vdk_device_set_call_fd() - offer the device eventfd @fd, a write to which
 * notifies the driver of used buffers in queue @index without the transport
 * (struct vdk_device_ops.set_call_fd; a KVM irqfd). On 0 the device may
 * notify through @fd (its own dup) instead of its struct vdk_interrupt,
 * and the host must tell the transport (vdk_mmio_set_direct_used_notify()
 * on virtio-mmio).
 * @fd: an eventfd (not owned; the device dup()s it).
 *
 * Return: as vdk_device_set_kick_fd().
 */
int vdk_device_set_call_fd(struct vdk_device *dev, uint16_t index, int fd);

/**
 * vdk_device_start_queue() - start queue @index of an ACTIVE, awake device
 * while its other queues run (virtio 1.2 §2.6.1 re-enabling a queue after
 * queue reset; vhost-user "Ring states": a ring started and enabled).
 * @q: activated queue (vdk_virtq_activate()); not owned, it must stay valid
 *     until vdk_device_stop_queue(), reset or sleep.
 *
 * Return: 0; -EBUSY if not ACTIVE, asleep, or the queue is already started;
 * -ERANGE if @index >= num_queues; -EINVAL for a NULL @q; -EOPNOTSUPP if
 * the device has no start_queue/stop_queue ops; the device's error.
 */
int vdk_device_start_queue(struct vdk_device *dev, uint16_t index,
			   struct vdk_virtq *q);

/**
 * vdk_device_stop_queue() - stop queue @index of an ACTIVE, awake device
 * while its others run (virtio 1.2 §2.6.1 queue reset; vhost-user
 * GET_VRING_BASE). The device finishes or gives back its in-flight chains
 * first.
 * @q: set to the queue, handed back with next_avail/next_used intact.
 *
 * Return: 0; -EBUSY if not ACTIVE or asleep; -ERANGE if @index >=
 * num_queues; -ENOENT if the queue is not started; -EOPNOTSUPP if the
 * device lacks the ops.
 */
int vdk_device_stop_queue(struct vdk_device *dev, uint16_t index,
			  struct vdk_virtq **q);

/**
 * vdk_device_sleep() - awake → asleep; an ACTIVE device hands its queues
 * back (vdk_device_sleep_queues() lists them).
 * Return: 0; -EBUSY if already asleep; the device's error.
 */
int vdk_device_sleep(struct vdk_device *dev);

/**
 * vdk_device_sleep_queues() - while asleep and ACTIVE, the queues the device
 * handed back (num_queues entries, NULL for non-ready ones), for the
 * transport to snapshot; NULL otherwise.
 */
struct vdk_virtq **vdk_device_sleep_queues(struct vdk_device *dev);

/**
 * vdk_device_wake() - asleep → awake.
 * @act_mem, @act_irq, @act_queues: for a device that is ACTIVE after
 * vdk_device_restore() into a fresh device, what to resume with; NULL to
 * resume with what it had when it slept.
 * Return: 0; -EBUSY if awake; -EINVAL if ACTIVE with nothing to resume
 * with; the device's error.
 */
int vdk_device_wake(struct vdk_device *dev, const struct vdk_mem *act_mem,
		    struct vdk_interrupt *act_irq,
		    struct vdk_virtq **act_queues);

/**
 * vdk_device_snapshot() - encode the device as CBOR (envelope above).
 * @buf: set to a malloc'd buffer the caller frees.
 * @len: set to its length, bytes.
 * Return: 0; -EBUSY if awake; -ENOMEM; the device's error.
 */
int vdk_device_snapshot(struct vdk_device *dev, uint8_t **buf, size_t *len);

/**
 * vdk_device_restore() - load a snapshot into a sleeping device.
 * Return: 0; -EBUSY if awake or ACTIVE (a device is restored fresh, NEW or
 * RESET); -EINVAL if @buf is not a vdk device snapshot, is of another
 * device type (-ENODEV) or version (-EPROTO); the device's error.
 */
int vdk_device_restore(struct vdk_device *dev, const uint8_t *buf, size_t len);

/** vdk_device_state_name() - "new", "active" or "reset". */
const char *vdk_device_state_name(enum vdk_device_state state);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_DEVICE_H */
