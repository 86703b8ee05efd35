/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the library (and its tests): the backend interface a
 * vhost-user connection drives. The public API serves a struct vdk_device
 * (<vdk/vhost_user.h>, vdk_vhost_user_new()) through the device adapter of
 * device_adapter.c, which implements this interface; tests implement it
 * directly to script what the library asks of a backend.
 */
#ifndef VDK_VHOST_USER_BACKEND_OPS_H
#define VDK_VHOST_USER_BACKEND_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/loop.h>
#include <vdk/vhost_user.h>

/**
 * struct vdk_vhost_user_backend_ops - what a device served over vhost-user
 * implements. @be is the pointer given to vdk_vhost_user_new(). Members
 * marked optional may be NULL (the default is described per member).
 */
struct vdk_vhost_user_backend_ops {
	/** Short name for messages ("rng", "blk"). */
	const char *name;
	/** Number of queues; 1..VDK_DEVICE_MAX_QUEUES (GET_QUEUE_NUM). */
	uint16_t (*num_queues)(void *be);
	/** Largest size of queue @index; a power of two ≤ 32768. */
	uint16_t (*queue_max_size)(void *be, uint16_t index);
	/** Virtio feature bits offered (GET_FEATURES); the library adds
	 * VHOST_USER_F_PROTOCOL_FEATURES. */
	uint64_t (*features)(void *be);
	/** Optional: the front-end acked @features (without bit 30). */
	void (*ack_features)(void *be, uint64_t features);
	/** Optional: protocol features the device allows; the library offers
	 * the intersection with what it implements. NULL: all of those. */
	uint64_t (*protocol_features)(void *be);
	/** Bytes of device configuration space (0: no GET/SET_CONFIG). */
	uint32_t config_size;
	/** Optional: read @len bytes of configuration at @offset; the library
	 * has checked offset + len ≤ config_size. Return 0 or -errno. */
	int (*read_config)(void *be, uint32_t offset, void *data, uint32_t len);
	/** Optional: write configuration; same checks. NULL refuses writes. */
	int (*write_config)(void *be, uint32_t offset, const void *data,
			    uint32_t len);
	/**
	 * Start processing queue @index. @q is activated (its areas checked
	 * against @mem); @irq signals used buffers through the ring's call fd
	 * (vdk_interrupt_signal_used_queue(irq, index); from any thread, and
	 * safe while the front-end replaces the call fd, see "Threading"
	 * above). @q and @mem stay valid until stop_queue(@index) returns;
	 * @irq until the connection is freed. Return 0 or -errno.
	 */
	int (*start_queue)(void *be, uint16_t index, struct vdk_virtq *q,
			   const struct vdk_mem *mem,
			   struct vdk_interrupt *irq);
	/**
	 * Stop queue @index: finish or give back in-flight chains, stop
	 * touching the queue and guest memory. Returns the queue handed to
	 * start_queue() (ownership goes back to the library), or NULL if the
	 * queue was not started. With an inflight region, chains given back
	 * (popped, never returned) are handed out again by vdk_virtq_pop()
	 * when the ring next starts, in this process or a new one. Chains
	 * given back leave the queue's in_flight count when the ring stops
	 * (vdk_virtq_set_resubmit()), and re-enter it once each when popped
	 * again, so in_flight stays exact across restarts.
	 */
	struct vdk_virtq *(*stop_queue)(void *be, uint16_t index);
	/** Optional: the front-end notified queue @index (a kick). */
	void (*queue_notify)(void *be, uint16_t index);
	/** Forget the negotiated state (RESET_DEVICE, connection end); every
	 * queue is already stopped. Return 0 or -errno. */
	int (*reset)(void *be);
	/** Optional: every ring is stopped (spec "Suspended device state");
	 * the device must not touch guest memory until a queue starts. */
	int (*enter_suspended_state)(void *be);
	/** Optional: the device's state as a new CBOR item (caller decrefs);
	 * only called while suspended. */
	int (*snapshot)(void *be, cbor_item_t **out);
	/** Optional: load state from @item (borrowed) while suspended. */
	int (*restore)(void *be, const cbor_item_t *item);
	/**
	 * Ignored; kept for source compatibility. Every backend's queues are
	 * tracked (the library installs a vdk_virtq_set_track() hook on the
	 * queue it hands to start_queue()), so
	 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD is offered to all; a backend
	 * that does not want it masks it with protocol_features().
	 */
	bool tracks_inflight;
};

/**
 * struct vdk_vhost_user_device_adapter - serves a struct vdk_device as a
 * backend (device_adapter.c says how rings map onto the device).
 */
struct vdk_vhost_user_device_adapter {
	struct vdk_vhost_user_backend_ops ops; /**< this adapter's table */
	struct vdk_device *dev;		       /**< not owned */
	struct vdk_virtq *queues[VDK_DEVICE_MAX_QUEUES]; /**< started ones */
	const struct vdk_mem *mem;     /**< of the last ring started */
	const struct vdk_mem *dev_mem; /**< the device runs with */
	struct vdk_interrupt *irq;
	uint64_t features; /**< acked by the front-end */
	uint16_t num_queues;
	uint16_t num_started;
};

/**
 * vu_adapter_init() - set up @ad to serve @dev.
 * @ad:  caller's storage; must outlive the connection using it.
 * @dev: an initialised device (vdk_device_init()), NEW or RESET, awake; not
 *       owned.
 * @ops: set to the backend ops (&@ad->ops, with the device's config_size)
 *       to pass to vdk_vhost_user_new() with @ad.
 *
 * Return: 0, or -EINVAL if @dev is NULL, ACTIVE or asleep.
 */
int vu_adapter_init(struct vdk_vhost_user_device_adapter *ad,
		    struct vdk_device *dev,
		    const struct vdk_vhost_user_backend_ops **ops);

/**
 * vu_backend_new() - a connection serving backend @ops/@be (what
 * vdk_vhost_user_new() does with the device adapter).
 * @loop: where the connection registers its socket and kick fds, or NULL
 *        (then vdk_vhost_user_run(), or the caller drives it).
 * Other arguments, return and errors: as vdk_vhost_user_new().
 */
struct vdk_vhost_user *
vu_backend_new(int sock_fd, const struct vdk_vhost_user_backend_ops *ops,
	       void *be, struct vdk_loop *loop, int *err);

#endif /* VDK_VHOST_USER_BACKEND_OPS_H */
