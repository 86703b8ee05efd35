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
 *   sleep/wake from any of the three: sleep → asleep (an ACTIVE device hands
 *   its queues back), wake → awake (an ACTIVE device takes them back).
 *   Sleeping while asleep or waking while awake: -EBUSY.
 *   snapshot and restore: only while asleep.
 *
 * Snapshots are CBOR (libcbor): the framework wraps the device's own item in
 * an envelope { "format": "vdk-device", "version": 1, "device_type": N,
 * "state": "new"|"active"|"reset", "acked_features": F, "device": <item> } and
 * refuses to restore an envelope of another device type or version.
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

#include <cbor.h>

#include <vdk/mem.h>
#include <vdk/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most queues one device may have. */
#define VDK_DEVICE_MAX_QUEUES 64

/** Version of the snapshot envelope this library writes and reads. */
#define VDK_DEVICE_SNAPSHOT_VERSION 1

/* ---- interrupt ------------------------------------------------------- */

/**
 * struct vdk_interrupt_ops - how a transport delivers a device's
 * notifications to the driver. Every member may be NULL (then the event is
 * dropped).
 */
struct vdk_interrupt_ops {
	/** Used buffer notification for queue @queue (virtio 1.2 §2.3). */
	void (*signal_used_queue)(void *opaque, uint16_t queue);
	/** Configuration change notification (virtio 1.2 §2.3, §2.5.1). */
	void (*signal_config_changed)(void *opaque);
	/** The device hit an error it cannot recover from: the transport sets
	 * DEVICE_NEEDS_RESET and sends a configuration change notification
	 * (virtio 1.2 §2.1.2). */
	void (*set_needs_reset)(void *opaque);
};

/**
 * struct vdk_interrupt_guard - private to src/interrupt.c: the signallers
 * of one eventfd slot that may still be writing to it (see "Replacing an
 * eventfd" below). One 32-bit word, padded to 64 bytes so that workers of
 * different queues do not write to the same cache line.
 */
struct vdk_interrupt_guard {
	uint32_t word; /* bit 31 epoch; bits 0-14, 16-30: signallers of
			* epoch 0, 1 */
	uint8_t pad[60];
};

/**
 * struct vdk_interrupt - the object a device signals through. Either
 * callback-backed (vdk_interrupt_init_callback()) or eventfd-backed
 * (vdk_interrupt_init_eventfd(), as vhost-user call fds and KVM irqfds are).
 *
 * Threading: the vdk_interrupt_signal_*() and vdk_interrupt_needs_reset()
 * calls may be made from any thread, several at once (a device's workers).
 * The control thread may replace an eventfd while they do, only through
 * vdk_interrupt_set_queue_fd() / vdk_interrupt_set_config_fd().
 *
 * Replacing an eventfd (the rule for whoever owns the fds): a signaller
 * loads the slot's fd inside a guarded section (an atomic count in the
 * slot's struct vdk_interrupt_guard, taken before the load and dropped
 * after its one write()). vdk_interrupt_set_queue_fd() publishes the new fd,
 * then waits until every signaller that could have loaded the old one has
 * left (RCU-like: it flips the guard's epoch and waits for the old epoch's
 * count to drain; signallers that enter meanwhile count in the new epoch
 * and read the new fd), and only then hands the old fd back. So the old fd
 * may be closed as soon as it is handed back: no write can reach it, or
 * another file that reuses its number, afterwards. Signallers never wait.
 * An fd must not be closed while it is installed.
 */
struct vdk_interrupt {
	const struct vdk_interrupt_ops *ops; /**< NULL for eventfd backing */
	void *opaque;
	/** eventfds, -1 if none; read atomically by signallers, changed only
	 * by vdk_interrupt_set_queue_fd() once signallers may run */
	int queue_fd[VDK_DEVICE_MAX_QUEUES];
	int config_fd;	  /**< eventfd, -1 if none; same rules */
	bool needs_reset; /**< set by needs_reset() */
	/** eventfd writes that failed (other than a full counter); atomic.
	 * Only the first is logged: a front-end's fd must not flood the log. */
	uint32_t signal_errors;
	/** private: guard[q] for queue_fd[q], guard[VDK_DEVICE_MAX_QUEUES]
	 * for config_fd */
	struct vdk_interrupt_guard guard[VDK_DEVICE_MAX_QUEUES + 1];
};

/**
 * vdk_interrupt_init_callback() - back @irq with @ops / @opaque (not owned).
 * Not to be called while another thread signals through @irq.
 */
void vdk_interrupt_init_callback(struct vdk_interrupt *irq,
				 const struct vdk_interrupt_ops *ops,
				 void *opaque);

/**
 * vdk_interrupt_init_eventfd() - back @irq with eventfds.
 * @queue_fds: @n eventfds, one per queue, -1 for none (not owned; the
 *             caller closes them after the device stops, or once
 *             vdk_interrupt_set_queue_fd() handed them back).
 * @n:         at most VDK_DEVICE_MAX_QUEUES.
 * @config_fd: eventfd for configuration changes, or -1.
 *
 * Not to be called while another thread signals through @irq.
 *
 * Return: 0, or -EINVAL if @n is too large.
 */
int vdk_interrupt_init_eventfd(struct vdk_interrupt *irq, const int *queue_fds,
			       size_t n, int config_fd);

/**
 * vdk_interrupt_set_queue_fd() - replace the eventfd of queue @queue of an
 * eventfd-backed @irq while devices may be signalling through it (vhost-user
 * SET_VRING_CALL on a running ring; virtio 1.2 §2.3 notifications).
 * @fd:     the new eventfd, or -1 for none (not owned; it must stay open
 *          until it is handed back by a later call, or the device stopped).
 * @old_fd: set to the fd it replaces (-1 if none). No signaller can write
 *          to it any more: the caller may close it at once.
 *
 * Locking: waits (yielding the CPU) for the signallers that may have loaded
 * the old fd to finish their write; each is one write() of 8 bytes, so the
 * wait is short unless that write blocks (a full pipe, or an eventfd counter
 * at its maximum: only the reader of the fd can cause that). Calls for one
 * @irq must not run concurrently with each other (one control thread).
 *
 * Return: 0; -EINVAL if @queue >= VDK_DEVICE_MAX_QUEUES or @irq is
 * callback-backed (nothing is changed then).
 */
int vdk_interrupt_set_queue_fd(struct vdk_interrupt *irq, uint16_t queue,
			       int fd, int *old_fd);

/**
 * vdk_interrupt_set_config_fd() - the same for the configuration change
 * eventfd (virtio 1.2 §2.3, §2.5.1); same rules and errors (-EINVAL only
 * for a callback-backed @irq).
 */
int vdk_interrupt_set_config_fd(struct vdk_interrupt *irq, int fd, int *old_fd);

/**
 * vdk_interrupt_signal_used_queue() - send a used buffer notification for
 * @queue: the callback, or a write of 1 to the queue's eventfd (one write()
 * and two atomic operations on the queue's guard). Any thread.
 */
void vdk_interrupt_signal_used_queue(struct vdk_interrupt *irq, uint16_t queue);

/** vdk_interrupt_signal_config_changed() - configuration change. Any
 * thread. */
void vdk_interrupt_signal_config_changed(struct vdk_interrupt *irq);

/**
 * vdk_interrupt_needs_reset() - report a fatal device error: records it
 * (irq->needs_reset), then calls set_needs_reset or, for eventfd backing,
 * signals the config eventfd. Any thread.
 */
void vdk_interrupt_needs_reset(struct vdk_interrupt *irq);

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
	/** Optional: the device's state as a new CBOR item (caller decrefs).
	 * NULL means the device has no state beyond the envelope. */
	int (*snapshot)(void *dev, cbor_item_t **out);
	/** Optional: load state from @item (borrowed). Return -EINVAL if it is
	 * malformed. */
	int (*restore)(void *dev, const cbor_item_t *item);
	/** Optional: free the device (vdk_device_fini()). */
	void (*destroy)(void *dev);
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
	const struct vdk_mem *mem;			 /**< while ACTIVE */
	struct vdk_interrupt *irq;			 /**< while ACTIVE */
	struct vdk_virtq *queues[VDK_DEVICE_MAX_QUEUES]; /**< while ACTIVE */
	uint16_t num_queues;
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
 * vdk_device_snapshot_item() - the same as a CBOR item (for embedding in a
 * transport's snapshot); the caller decrefs it.
 */
int vdk_device_snapshot_item(struct vdk_device *dev, cbor_item_t **out);

/**
 * vdk_device_restore() - load a snapshot into a sleeping device.
 * Return: 0; -EBUSY if awake or ACTIVE (a device is restored fresh, NEW or
 * RESET); -EINVAL if @buf is not a vdk device snapshot, is of another
 * device type (-ENODEV) or version (-EPROTO); the device's error.
 */
int vdk_device_restore(struct vdk_device *dev, const uint8_t *buf, size_t len);

/** vdk_device_restore_item() - the same from a CBOR item (borrowed). */
int vdk_device_restore_item(struct vdk_device *dev, const cbor_item_t *item);

/** vdk_device_state_name() - "new", "active" or "reset". */
const char *vdk_device_state_name(enum vdk_device_state state);

#ifdef __cplusplus
}
#endif

#endif /* VDK_DEVICE_H */
