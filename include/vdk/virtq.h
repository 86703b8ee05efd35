/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue, device side (virtio 1.2 §2.7).
 *
 * Lifecycle: vdk_virtq_init() → the transport sets size and the three area
 * addresses as the driver writes them → vdk_virtq_activate() checks them
 * against guest memory and caches host pointers → the device loops on
 * vdk_virtq_pop() / vdk_virtq_add_used() / vdk_virtq_should_notify() →
 * vdk_virtq_reset().
 *
 * The driver is not trusted. Every descriptor is copied once, checked, then
 * used. The first malformed value stops the queue: the call returns -EIO,
 * vdk_virtq_error() says which rule was broken, and every later pop returns
 * -EIO until the queue is reset. The device then reports DEVICE_NEEDS_RESET
 * (vdk_interrupt_needs_reset() in <vdk/device.h>).
 *
 * Resubmission and tracking (for a vhost-user back-end restarted after a
 * crash, QEMU docs/interop/vhost-user.rst "Inflight I/O tracking"): a queue
 * can be given a list of heads to hand out before new available chains
 * (vdk_virtq_set_resubmit()), and a hook told of every chain popped and
 * returned (vdk_virtq_set_track()). Neither costs the common path anything
 * while unused: both are folded into the one "usable" test of pop and
 * add_used.
 *
 * Threading: one thread uses a queue at a time (a device's worker); the
 * transport touches configuration only while the device is not active.
 */
#ifndef VDK_VIRTQ_H
#define VDK_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* The split ring's structures (struct vring_desc, vring_avail, vring_used)
 * are those of <linux/virtio_ring.h>; this header only points to them, so
 * that it compiles as C++ too (that uapi header does not). */
struct vring_desc;
struct vring_avail;
struct vring_used;

#include <vdk/log.h>
#include <vdk/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Largest split queue size (virtio 1.2 §2.7: Queue Size ≤ 32768). */
#define VDK_VIRTQ_MAX_SIZE 32768

/** Why a queue stopped; vdk_virtq_strerror() names each. */
enum vdk_virtq_error {
	VDK_VIRTQ_OK = 0,
	VDK_VIRTQ_ERR_AVAIL_IDX,      /**< avail idx ran > size ahead */
	VDK_VIRTQ_ERR_HEAD_INDEX,     /**< head index >= queue size */
	VDK_VIRTQ_ERR_NEXT_INDEX,     /**< next index >= table size */
	VDK_VIRTQ_ERR_CHAIN_TOO_LONG, /**< more hops than descriptors: a loop */
	VDK_VIRTQ_ERR_DESC_ADDR,      /**< buffer outside guest memory/wraps */
	VDK_VIRTQ_ERR_WRITE_BEFORE_READ, /**< readable desc after a writable one */
	VDK_VIRTQ_ERR_INDIRECT_FEATURE, /**< INDIRECT without the feature */
	VDK_VIRTQ_ERR_INDIRECT_NESTED, /**< INDIRECT inside an indirect table */
	VDK_VIRTQ_ERR_INDIRECT_LEN,  /**< table len 0 or not a multiple of 16 */
	VDK_VIRTQ_ERR_INDIRECT_NEXT, /**< INDIRECT together with NEXT */
	VDK_VIRTQ_ERR_INDIRECT_ADDR, /**< table outside guest memory */
	VDK_VIRTQ_ERR_TOTAL_LEN,     /**< chain length > UINT32_MAX */
	VDK_VIRTQ_ERR_IOV_FULL,	     /**< more buffers than the iov array */
	VDK_VIRTQ_ERR_USED_ID,	     /**< device pushed an id it never popped */
	VDK_VIRTQ_ERR__COUNT
};

/**
 * struct vdk_virtq_track_ops - told of every chain a queue hands out and
 * takes back, so that a vhost-user back-end can keep the shared inflight
 * region (vhost-user.rst "Inflight I/O tracking": mark a head in flight when
 * it is fetched, clear it once its used element is published). Set with
 * vdk_virtq_set_track(); a NULL member is not called. The callbacks run on
 * the thread calling vdk_virtq_pop() / vdk_virtq_add_used(), must not call
 * vdk_virtq functions on the same queue, and cannot fail.
 */
struct vdk_virtq_track_ops {
	/**
	 * A chain with head @head was popped (fresh from the available ring,
	 * or resubmitted, see vdk_virtq_set_resubmit()), after it was walked
	 * and validated, before vdk_virtq_pop() returns it.
	 */
	void (*popped)(void *opaque, uint16_t head);
	/**
	 * vdk_virtq_add_used() accepted @head (its checks passed) and is about
	 * to write its used element and publish the used index, which will
	 * then be @used_idx_after. Called before the publication, so that a
	 * tracker can record @head first (vhost-user.rst, "When supplying
	 * used buffers", steps 2-3: desc[head].next = last_batch_head,
	 * last_batch_head = head); whatever must follow the publication
	 * (inflight = 0, used_idx) is done at the next call of either member,
	 * or when the tracker stops, by which time the index is published.
	 */
	void (*used)(void *opaque, uint16_t head, uint16_t used_idx_after);
};

/**
 * struct vdk_virtq - device-side split queue. Fields are read-only outside
 * the library; use the functions below.
 */
struct vdk_virtq {
	/* configuration, as written by the driver through the transport */
	uint16_t max_size;   /**< largest size the device accepts */
	uint16_t size;	     /**< Queue Size (virtio 1.2 §2.7) */
	bool ready;	     /**< queue_ready as last written by the driver */
	uint64_t desc_gpa;   /**< Descriptor Area, guest-physical */
	uint64_t driver_gpa; /**< Driver Area (available ring) */
	uint64_t device_gpa; /**< Device Area (used ring) */

	/* set by vdk_virtq_activate() */
	bool active;
	bool event_idx;	      /**< VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	      /**< VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool notify_on_empty; /**< VIRTIO_F_NOTIFY_ON_EMPTY negotiated */
	const struct vdk_mem *mem;
	struct vring_desc *desc;   /**< host view of the descriptor table */
	struct vring_avail *avail; /**< host view of the available ring */
	struct vring_used *used;   /**< host view of the used ring */
	uint16_t *used_event;	   /**< &avail->ring[size] */
	uint16_t *avail_event;	   /**< &used->ring[size] (as __le16) */

	/* device state */
	uint16_t next_avail;	 /**< next available-ring slot to read */
	uint16_t next_used;	 /**< next used-ring slot to write */
	uint16_t signalled_used; /**< used idx at the last notification */
	bool signalled_used_valid;
	/** chains popped and not yet added used, since the last
	 * vdk_virtq_set_resubmit() (chains given back leave it) */
	uint32_t in_flight;
	enum vdk_virtq_error error; /**< sticky; VDK_VIRTQ_OK while usable */
	struct vdk_ratelimit log_rl;
	uint16_t index; /**< queue index in its device, for messages */

	/* private to src/virtq: the data path's copies, kept in step with the
	 * fields above by the functions that change those */
	bool fast;     /* active, no error, no track hook, no resubmit pending:
		    * pop and add_used may take their common path */
	uint32_t mask; /* size - 1, set by vdk_virtq_activate() */
	struct vdk_mem_cache bufs; /* region of the last buffer translated */

	/* tracking and resubmission (vdk_virtq_set_track(),
	 * vdk_virtq_set_resubmit()) */
	const struct vdk_virtq_track_ops *track; /**< NULL: not tracked */
	void *track_opaque;			 /**< passed to @track */
	uint16_t *resubmit;	/**< heads to pop first; the library's copy */
	uint16_t resubmit_num;	/**< entries in @resubmit */
	uint16_t resubmit_next; /**< next entry of @resubmit to pop */
	/* private: next_avail at activation, and whether a resubmitted head
	 * was popped since (vdk_virtq_set_resubmit() refuses then) */
	uint16_t avail_at_activate;
	bool resubmitted;
};

/**
 * struct vdk_virtq_chain - one descriptor chain as host buffers: the
 * device-readable iovecs first, then the device-writable ones.
 *
 * The caller provides @iov (capacity @iov_cap); vdk_virtq_pop() fills it.
 * A buffer that spans two guest memory regions takes two iovecs.
 */
struct vdk_virtq_chain {
	struct iovec *iov; /**< caller's array */
	uint32_t iov_cap;  /**< entries in @iov */
	uint16_t head;	   /**< descriptor id to give to vdk_virtq_add_used() */
	uint32_t
		num_readable; /**< iov[0 .. num_readable) are device-readable */
	uint32_t num_writable; /**< then num_writable device-writable ones */
	uint32_t readable_len; /**< bytes in the readable part */
	uint32_t writable_len; /**< bytes in the writable part */
};

/**
 * vdk_virtq_init() - initialise @q in the reset state.
 * @max_size: largest queue size the device supports; a power of two,
 *            1..VDK_VIRTQ_MAX_SIZE. The initial size is @max_size.
 * @index:    queue index within the device (used in log messages).
 *
 * Return: 0, or -EINVAL for a bad @max_size.
 */
int vdk_virtq_init(struct vdk_virtq *q, uint16_t max_size, uint16_t index);

/**
 * vdk_virtq_reset() - return to the state vdk_virtq_init() left: not ready,
 * size = max_size, addresses 0, indices 0, no error, no track hook, no
 * resubmit list (its copy is freed) (virtio 1.2 §2.1, §4.2.2: reset and
 * QueueReset). Nothing is written to guest memory.
 */
void vdk_virtq_reset(struct vdk_virtq *q);

/**
 * vdk_virtq_set_size() - set Queue Size as written by the driver.
 * @size: a power of two, 1..q->max_size (virtio 1.2 §2.7).
 *
 * Return: 0; -EINVAL if @size is not acceptable (the size is unchanged);
 * -EBUSY if the queue is active.
 */
int vdk_virtq_set_size(struct vdk_virtq *q, uint16_t size);

/**
 * vdk_virtq_set_addrs() - set the guest-physical addresses of the
 * Descriptor Area, Driver Area and Device Area (virtio 1.2 §2.7).
 *
 * Return: 0, or -EBUSY if the queue is active.
 */
int vdk_virtq_set_addrs(struct vdk_virtq *q, uint64_t desc_gpa,
			uint64_t driver_gpa, uint64_t device_gpa);

/** vdk_virtq_set_ready() - record the driver's queue_ready value. */
void vdk_virtq_set_ready(struct vdk_virtq *q, bool ready);

/**
 * vdk_virtq_activate() - validate the areas against guest memory and start
 * the queue.
 * @mem:      guest memory; must outlive the activation (not owned).
 * @features: the negotiated feature bits (VIRTIO_RING_F_INDIRECT_DESC,
 *            VIRTIO_RING_F_EVENT_IDX, VIRTIO_F_NOTIFY_ON_EMPTY are used).
 *
 * Checks (virtio 1.2 §2.7, alignment table in §2.7): descriptor table
 * 16-byte aligned, 16 * size bytes; available ring 2-byte aligned,
 * 6 + 2 * size bytes; used ring 4-byte aligned, 6 + 8 * size bytes; each
 * inside one guest memory region. next_avail/next_used are kept, so a
 * restored or vhost-user SET_VRING_BASE index survives activation.
 *
 * Return: 0; -EINVAL if the queue is not ready or an area is misaligned;
 * -EFAULT if an area is outside guest memory.
 */
int vdk_virtq_activate(struct vdk_virtq *q, const struct vdk_mem *mem,
		       uint64_t features);

/**
 * vdk_virtq_deactivate() - stop using guest memory (device sleep, vhost-user
 * GET_VRING_BASE); configuration and indices are kept so that
 * vdk_virtq_activate() resumes where the queue stopped.
 */
void vdk_virtq_deactivate(struct vdk_virtq *q);

/**
 * vdk_virtq_pop() - take the next available descriptor chain
 * (virtio 1.2 §2.7.13 from the device's side, §2.7.5 chaining, §2.7.5.3
 * indirect descriptors).
 * @chain: iov/iov_cap set by the caller; the rest is filled in.
 *
 * The available index is read with acquire ordering, so descriptor contents
 * written before it are visible (§2.7.13.3).
 *
 * While a resubmit list is pending (vdk_virtq_set_resubmit()), its heads
 * come first, in list order, walked and validated like any chain and
 * counted in flight, without reading the available ring or advancing the
 * next available index. A track hook (vdk_virtq_set_track()) is told of
 * every chain popped.
 *
 * Return: 1 if a chain was popped; 0 if the available ring is empty;
 * -EIO if the queue is stopped by a driver error (see vdk_virtq_error())
 * or not active.
 */
int vdk_virtq_pop(struct vdk_virtq *q, struct vdk_virtq_chain *chain);

/**
 * vdk_virtq_add_used() - return a chain to the driver (virtio 1.2 §2.7.8).
 * @head:    the chain's head id from vdk_virtq_pop().
 * @written: bytes the device wrote into the chain's writable part.
 *
 * The used element is stored before the used index, which is published with
 * release ordering (§2.7.8). A track hook's used() runs before both.
 *
 * Return: 0; -EINVAL if @head >= size or no chain is in flight (the queue is
 * then stopped with VDK_VIRTQ_ERR_USED_ID: a device bug); -EIO if stopped.
 */
int vdk_virtq_add_used(struct vdk_virtq *q, uint16_t head, uint32_t written);

/**
 * vdk_virtq_add_used_batch() - return @n chains to the driver at once: the
 * @n used elements are written, then the used index is published once
 * (virtio 1.2 §2.7.8), so the driver never sees only some of them (a
 * virtio-net packet spread over mergeable receive buffers, §5.1.6.4).
 * @heads:   @n head ids from vdk_virtq_pop().
 * @written: bytes written into each chain's writable part.
 *
 * Return: 0; -EINVAL if a head is >= size or fewer than @n chains are in
 * flight (the queue is stopped with VDK_VIRTQ_ERR_USED_ID, nothing is
 * published); -EIO if stopped.
 */
int vdk_virtq_add_used_batch(struct vdk_virtq *q, const uint16_t *heads,
			     const uint32_t *written, uint16_t n);

/**
 * vdk_virtq_should_notify() - decide whether to send a used buffer
 * notification now, and if so remember the used index it covers
 * (virtio 1.2 §2.7.10: used_event with VIRTIO_RING_F_EVENT_IDX, else
 * VIRTQ_AVAIL_F_NO_INTERRUPT; VIRTIO_F_NOTIFY_ON_EMPTY).
 *
 * Call after a batch of vdk_virtq_add_used(); a full memory barrier orders
 * the used index store before the read of used_event / flags.
 */
bool vdk_virtq_should_notify(struct vdk_virtq *q);

/**
 * vdk_virtq_enable_notification() - ask the driver for (or to suppress)
 * available buffer notifications (virtio 1.2 §2.7.10: avail_event with
 * VIRTIO_RING_F_EVENT_IDX, else VIRTQ_USED_F_NO_NOTIFY).
 * @enable: true to be notified of new buffers.
 *
 * Return: when enabling, true if buffers arrived meanwhile or resubmitted
 * heads are pending (the caller should pop again rather than sleep); false
 * otherwise.
 */
bool vdk_virtq_enable_notification(struct vdk_virtq *q, bool enable);

/**
 * vdk_virtq_set_track() - install (or, with @ops NULL, remove) the hook told
 * of every chain popped and returned (struct vdk_virtq_track_ops;
 * vhost-user.rst "Inflight I/O tracking"). Without a hook (the default) pop
 * and add_used pay nothing for it; with one they take their general path.
 * @ops:    must outlive its installation (not owned); NULL: no hook.
 * @opaque: passed to each callback (not owned).
 *
 * Call while the queue is not active, or on the thread that uses it.
 * vdk_virtq_reset() removes the hook; deactivation keeps it.
 */
void vdk_virtq_set_track(struct vdk_virtq *q,
			 const struct vdk_virtq_track_ops *ops, void *opaque);

/**
 * vdk_virtq_set_resubmit() - heads that vdk_virtq_pop() hands out before any
 * new available chain: the chains a device had taken and not returned when
 * its previous incarnation stopped (vhost-user.rst "Inflight I/O tracking",
 * "When reconnecting": resubmit the inflight descriptors in the order of
 * their counters, before new available ones).
 * @heads: descriptor heads in the order to pop them; copied (the copy is
 *         freed once the last one is popped, by vdk_virtq_reset(), or by a
 *         new call). May be NULL if @n is 0.
 * @n:     entries in @heads; 0 drops a pending list.
 *
 * Each head is popped as the driver had just made it available: its chain
 * is walked and validated like a fresh one (a malformed chain stops the
 * queue, vdk_virtq_error()), and counted in flight, so it is returned with
 * vdk_virtq_add_used() as usual. The next available index is not advanced
 * by them: it should already be past them (vhost-user: used idx + number of
 * inflight heads).
 *
 * In-flight accounting: calling this (with any @n, 0 included) says that
 * whoever popped from the queue before has stopped and given back every
 * chain it had not returned (vhost-user stop_queue()). Those chains leave
 * in_flight, which restarts at 0; a listed head is counted again when it
 * is popped. So a chain handed back and resubmitted in the same process
 * counts once, and in_flight is exact across stop and restart. A device
 * that keeps chains across deactivate/activate (sleep) must not call it.
 *
 * Call while the queue is not active, or after activation before the first
 * pop, on the thread that uses the queue.
 *
 * Return: 0; -EINVAL if @heads is NULL with @n > 0, a head is >= the queue
 * size or appears twice; -EBUSY if the queue is active and popped a chain
 * since its activation; -ENOMEM (on every error the pending list and
 * in_flight are unchanged).
 */
int vdk_virtq_set_resubmit(struct vdk_virtq *q, const uint16_t *heads,
			   uint16_t n);

/**
 * vdk_virtq_has_avail() - true if a chain is waiting: a pending resubmitted
 * head, or a new available chain (no error checks).
 */
bool vdk_virtq_has_avail(const struct vdk_virtq *q);

/** vdk_virtq_next_avail() - index of the next available slot to read. */
uint16_t vdk_virtq_next_avail(const struct vdk_virtq *q);
/** vdk_virtq_next_used() - index of the next used slot to write. */
uint16_t vdk_virtq_next_used(const struct vdk_virtq *q);

/**
 * vdk_virtq_set_next_avail() / vdk_virtq_set_next_used() - set the device's
 * ring positions (vhost-user SET_VRING_BASE, snapshot restore). Allowed
 * while not active.
 * Return: 0, or -EBUSY if active.
 */
int vdk_virtq_set_next_avail(struct vdk_virtq *q, uint16_t idx);
int vdk_virtq_set_next_used(struct vdk_virtq *q, uint16_t idx);

/** vdk_virtq_error() - why the queue stopped, or VDK_VIRTQ_OK. */
enum vdk_virtq_error vdk_virtq_error(const struct vdk_virtq *q);

/** vdk_virtq_strerror() - a short English description of @err. */
const char *vdk_virtq_strerror(enum vdk_virtq_error err);

/** vdk_virtq_is_broken() - true once a driver error stopped the queue. */
static inline bool vdk_virtq_is_broken(const struct vdk_virtq *q)
{
	return q->error != VDK_VIRTQ_OK;
}

/**
 * vdk_virtq_chain_copy_from() - copy up to @len bytes of the chain's
 * device-readable part, starting @offset bytes in, into @buf.
 * Return: bytes copied (less than @len at the end of the readable part).
 */
size_t vdk_virtq_chain_copy_from(const struct vdk_virtq_chain *chain,
				 size_t offset, void *buf, size_t len);

/**
 * vdk_virtq_chain_copy_to() - copy up to @len bytes of @buf into the chain's
 * device-writable part, starting @offset bytes in.
 * Return: bytes copied (less than @len at the end of the writable part).
 */
size_t vdk_virtq_chain_copy_to(const struct vdk_virtq_chain *chain,
			       size_t offset, const void *buf, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_VIRTQ_H */
