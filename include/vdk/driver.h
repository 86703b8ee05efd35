/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Driver side of virtio: what a guest (or a test standing in for one) uses
 * to drive a virtio device. Semantics of the Rust virtio-drivers crate's
 * Transport trait and VirtQueue.
 *
 *   struct vdk_driver_transport  an ops table + context: one transport
 *                                (virtio-mmio or virtio-pci).
 *   vdk_driver_begin_init() ...  transport-independent device initialisation
 *                                (virtio 1.2 §3.1.1) and configuration reads.
 *   struct vdk_driver_mmio       the virtio-mmio version 2 transport
 *                                (virtio 1.2 §4.2.2, §4.2.3).
 *   struct vdk_driver_pci        the modern virtio-pci transport
 *                                (virtio 1.2 §4.1), with MSI-X.
 *   struct vdk_driver_virtq      a split virtqueue, driver side (virtio 1.2
 *                                §2.7).
 *
 * No host dependencies: this header and src/driver/ use only freestanding C
 * headers and the kernel's uapi virtio headers, never allocate, and never
 * log, so the same code runs in a test process and in a freestanding guest.
 * Register access goes through callbacks (struct vdk_driver_mmio_access) and
 * DMA addresses through a HAL (struct vdk_driver_hal), both supplied by the
 * user.
 *
 * The device is not trusted either: every value read from the device
 * (registers, used ring) is checked before use; a device that breaks the
 * rules makes the affected call fail with -EIO, never crash the driver.
 *
 * Errors are negative errno values (Linux numbering, from the uapi
 * <asm-generic/errno.h>).
 *
 * Locking: none. One thread drives one transport and its queues at a time;
 * the device may run concurrently (ring accesses use the barriers virtio
 * 1.2 §2.7.13 asks for).
 */
#ifndef VDK_DRIVER_H
#define VDK_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The split ring's structures (struct vring_desc, vring_avail, vring_used)
 * are those of <linux/virtio_ring.h>; this header only points to them, so
 * that it compiles as C++ too (that uapi header does not). */
struct vring_desc;
struct vring_avail;
struct vring_used;

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/* ---- transport -------------------------------------------------------- */

/** InterruptStatus bit: a used buffer notification (virtio 1.2 §4.2.2). */
#define VDK_DRIVER_INT_QUEUE 0x1u
/** InterruptStatus bit: a configuration change notification. */
#define VDK_DRIVER_INT_CONFIG 0x2u

/** How many times vdk_driver_read_config_consistent() tries. */
#define VDK_DRIVER_CONFIG_RETRIES 16
/** How many status reads vdk_driver_reset() waits for a 0. */
#define VDK_DRIVER_RESET_POLLS 1000

/**
 * struct vdk_driver_transport_ops - one virtio transport, seen from the
 * driver (virtio-drivers' Transport trait). Every member is mandatory;
 * @ctx is struct vdk_driver_transport.ctx.
 */
struct vdk_driver_transport_ops {
	/** Virtio device ID (VIRTIO_ID_*, virtio 1.2 §5). */
	uint32_t (*device_type)(void *ctx);
	/** All 64 feature bits the device offers (virtio 1.2 §2.2). */
	uint64_t (*read_device_features)(void *ctx);
	/** Write the 64 feature bits the driver accepts. */
	void (*write_driver_features)(void *ctx, uint64_t features);
	/** Largest size of queue @queue; 0 if the queue does not exist. */
	uint16_t (*max_queue_size)(void *ctx, uint16_t queue);
	/** Send an available buffer notification for @queue (§2.7.13.3). */
	void (*notify)(void *ctx, uint16_t queue);
	/** The device status byte (VIRTIO_CONFIG_S_*, virtio 1.2 §2.1). */
	uint8_t (*get_status)(void *ctx);
	/** Write the device status byte; 0 resets the device. */
	void (*set_status)(void *ctx, uint8_t status);
	/**
	 * Configure queue @queue with @size entries and the guest-physical
	 * addresses of its descriptor table, driver area (available ring) and
	 * device area (used ring), then make it ready. Return 0; -ENOENT if
	 * the queue does not exist; -EBUSY if it is already ready; -EINVAL if
	 * @size exceeds its maximum.
	 */
	int (*queue_set)(void *ctx, uint16_t queue, uint16_t size,
			 uint64_t desc, uint64_t driver, uint64_t device);
	/** Forget queue @queue's configuration (best effort: a virtio-mmio
	 * device only really releases it on reset or QueueReset). */
	void (*queue_unset)(void *ctx, uint16_t queue);
	/** Whether queue @queue is configured and ready. */
	bool (*queue_used)(void *ctx, uint16_t queue);
	/** Read the pending interrupt causes (VDK_DRIVER_INT_*), acknowledge
	 * exactly those, and return them. */
	uint32_t (*ack_interrupt)(void *ctx);
	/** The configuration atomicity value (virtio 1.2 §2.5.1). */
	uint32_t (*config_generation)(void *ctx);
	/** Read @len bytes of device configuration at byte @offset into @buf
	 * (byte layout as in the device: fields are little-endian). Return 0
	 * or -ERANGE if the range wraps. */
	int (*read_config)(void *ctx, uint32_t offset, void *buf, uint32_t len);
	/** Write @len bytes of @buf to device configuration at @offset. */
	int (*write_config)(void *ctx, uint32_t offset, const void *buf,
			    uint32_t len);
};

/** struct vdk_driver_transport - a transport: ops plus its context. */
struct vdk_driver_transport {
	const struct vdk_driver_transport_ops *ops;
	void *ctx;
};

/**
 * vdk_driver_reset() - reset the device: write 0 to device status and wait
 * (at most VDK_DRIVER_RESET_POLLS reads) until it reads back 0 (virtio 1.2
 * §2.4, §4.2.3.1).
 *
 * Return: 0; -ETIMEDOUT if the status never read back 0.
 */
int vdk_driver_reset(struct vdk_driver_transport *t);

/**
 * vdk_driver_begin_init() - the first half of device initialisation
 * (virtio 1.2 §3.1.1 steps 1-6): reset, set ACKNOWLEDGE then DRIVER, read
 * the device's features, accept @supported & device features, set
 * FEATURES_OK and check that the device kept it.
 * @t:          the transport.
 * @supported:  feature bits this driver understands (VIRTIO_F_* and device
 *              bits, as 1ull << bit). VIRTIO_F_VERSION_1 is required: this
 *              is a virtio 1.x driver.
 * @negotiated: if not NULL, set to the accepted features on success.
 *
 * The caller then sets up its queues (vdk_driver_virtq_init()) and reads
 * configuration, and finishes with vdk_driver_finish_init().
 *
 * Return: 0; -ETIMEDOUT if the reset did not complete; -EOPNOTSUPP if the
 * device or the driver lacks VIRTIO_F_VERSION_1; -EIO if the device
 * refused the features (FEATURES_OK did not stick). On -EOPNOTSUPP and -EIO
 * the device status has FAILED set (virtio 1.2 §3.1.1 step 6).
 */
int vdk_driver_begin_init(struct vdk_driver_transport *t, uint64_t supported,
			  uint64_t *negotiated);

/**
 * vdk_driver_finish_init() - set DRIVER_OK (virtio 1.2 §3.1.1 step 8): the
 * device is live from now on.
 *
 * Return: 0; -EIO if the device then reports DEVICE_NEEDS_RESET or does not
 * show DRIVER_OK (for instance a queue it could not activate).
 */
int vdk_driver_finish_init(struct vdk_driver_transport *t);

/**
 * vdk_driver_fail() - set FAILED in device status: the driver gave up on
 * the device (virtio 1.2 §2.1). Only a reset recovers it.
 */
void vdk_driver_fail(struct vdk_driver_transport *t);

/**
 * vdk_driver_needs_reset() - whether the device set DEVICE_NEEDS_RESET
 * (virtio 1.2 §2.1.2).
 */
bool vdk_driver_needs_reset(struct vdk_driver_transport *t);

/**
 * vdk_driver_read_config_consistent() - read @len bytes of device
 * configuration at byte @offset into @buf so that they all come from one
 * configuration generation: read the generation, the bytes, the generation
 * again, and retry while it changed (virtio 1.2 §2.5.1, §4.2.2
 * ConfigGeneration).
 *
 * Return: 0; -EAGAIN if the generation still changed after
 * VDK_DRIVER_CONFIG_RETRIES attempts (@buf then holds the last, possibly
 * torn, read); the transport's read_config error.
 */
int vdk_driver_read_config_consistent(struct vdk_driver_transport *t,
				      uint32_t offset, void *buf, uint32_t len);

/* ---- virtio-mmio transport -------------------------------------------- */

/**
 * struct vdk_driver_mmio_access - how registers are read and written. @addr
 * is the register's full address (window base + offset) in whatever space
 * the callbacks decode: a virtual address for vdk_driver_mmio_volatile, a
 * bus address for a test routing to an MMIO bus. Values are in host order
 * (the callbacks convert from the device's little-endian). All mandatory.
 */
struct vdk_driver_mmio_access {
	uint8_t (*read8)(void *opaque, uint64_t addr);
	uint16_t (*read16)(void *opaque, uint64_t addr);
	uint32_t (*read32)(void *opaque, uint64_t addr);
	void (*write8)(void *opaque, uint64_t addr, uint8_t val);
	void (*write16)(void *opaque, uint64_t addr, uint16_t val);
	void (*write32)(void *opaque, uint64_t addr, uint32_t val);
};

/**
 * vdk_driver_mmio_volatile - accessors that dereference @addr as a volatile
 * pointer of the access width (little-endian device registers), for a
 * guest with the window mapped at that virtual address. @opaque unused.
 */
extern const struct vdk_driver_mmio_access vdk_driver_mmio_volatile;

/**
 * struct vdk_driver_mmio - a virtio-mmio version 2 device seen from the
 * driver. Initialise with vdk_driver_mmio_init(); then use @transport.
 * Fields are read-only to the user.
 */
struct vdk_driver_mmio {
	struct vdk_driver_transport transport; /**< ops + ctx (this struct) */
	const struct vdk_driver_mmio_access *acc;
	void *opaque;	    /**< passed to every @acc callback */
	uint64_t base;	    /**< register window base address */
	uint32_t device_id; /**< DeviceID register (virtio 1.2 §5) */
	uint32_t vendor_id; /**< VendorID register */
};

/** The driver-side virtio-mmio transport ops (ctx: struct vdk_driver_mmio). */
extern const struct vdk_driver_transport_ops vdk_driver_mmio_ops;

/**
 * vdk_driver_mmio_init() - probe the virtio-mmio window at @base and set
 * up @m (caller's storage) as a transport (virtio 1.2 §4.2.2, §4.2.3.1.1).
 * Does not touch device status: call vdk_driver_begin_init() next.
 * @m:      storage for the transport; no fini needed.
 * @base:   address of the register window, as @acc decodes it.
 * @acc:    register accessors; not owned, must outlive @m.
 * @opaque: passed to @acc.
 *
 * Return: 0; -ENXIO if MagicValue is not "virt" (not a virtio-mmio
 * device); -EPROTONOSUPPORT if Version is not 2 (1 is the legacy
 * interface, which this driver does not speak); -ENODEV if DeviceID is 0
 * (a placeholder window with no device behind it).
 */
int vdk_driver_mmio_init(struct vdk_driver_mmio *m, uint64_t base,
			 const struct vdk_driver_mmio_access *acc,
			 void *opaque);

/* ---- virtio-pci transport (modern) ------------------------------------ */

/** Queues whose notify offsets vdk_driver_pci caches (others are read on
 * each notification). */
#define VDK_DRIVER_PCI_MAX_QUEUES 64
/** Capabilities a device may list before the driver stops walking. */
#define VDK_DRIVER_PCI_MAX_CAPS 48

/**
 * struct vdk_driver_pci_cfg_access - configuration space of the function:
 * aligned 32-bit reads and writes at byte @offset (0..255), as through
 * ports 0xCF8/0xCFC or an ECAM window. Values in host order. Mandatory.
 */
struct vdk_driver_pci_cfg_access {
	uint32_t (*read32)(void *opaque, uint16_t offset);
	void (*write32)(void *opaque, uint16_t offset, uint32_t val);
};

/**
 * struct vdk_driver_pci_window - guest-physical memory the driver may give
 * to BARs that firmware left unassigned: [@next, @end). Advanced as BARs
 * are placed (each aligned to its size).
 */
struct vdk_driver_pci_window {
	uint64_t next;
	uint64_t end;
};

/**
 * struct vdk_driver_pci - a modern virtio-pci device seen from the driver.
 * Initialise with vdk_driver_pci_init(); then use @transport. Fields are
 * read-only to the user.
 */
struct vdk_driver_pci {
	struct vdk_driver_transport transport; /**< ops + ctx (this struct) */
	const struct vdk_driver_pci_cfg_access *cfg;
	void *cfg_opaque;
	const struct vdk_driver_mmio_access *acc; /**< BAR memory accesses */
	void *opaque;
	uint32_t device_type;  /**< PCI device ID - 0x1040 */
	uint64_t bar_addr[6];  /**< guest-physical BAR addresses */
	uint64_t bar_size[6];  /**< 0: no BAR */
	uint64_t common;       /**< address of the common configuration */
	uint64_t isr;	       /**< address of the ISR status byte */
	uint64_t device;       /**< address of the device configuration */
	uint32_t device_len;   /**< its length in bytes (0: none) */
	uint64_t notify;       /**< base of the notification region */
	uint32_t notify_len;   /**< its length in bytes */
	uint32_t notify_mult;  /**< notify_off_multiplier */
	uint8_t msix_cap;      /**< MSI-X capability offset, 0 none */
	uint16_t msix_vectors; /**< MSI-X table size */
	uint64_t msix_table;   /**< address of the MSI-X table */
	bool msix_enabled;     /**< vdk_driver_pci_enable_msix() done */
	uint16_t notify_off[VDK_DRIVER_PCI_MAX_QUEUES]; /**< cached */
};

/** The driver-side virtio-pci transport ops (ctx: struct vdk_driver_pci). */
extern const struct vdk_driver_transport_ops vdk_driver_pci_ops;

/**
 * vdk_driver_pci_init() - probe a modern virtio-pci function (virtio 1.2
 * §4.1.2, §4.1.4): check vendor 0x1af4 and a device ID of 0x1040 or more,
 * size the BARs, place the unassigned ones the capabilities use in
 * @window (may be NULL), enable memory decoding and bus mastering, and
 * find the common, notification, ISR and device configuration structures
 * and the MSI-X capability. Every capability is bounds-checked against its
 * BAR; the list walk stops after VDK_DRIVER_PCI_MAX_CAPS entries.
 * @cfg, @cfg_opaque: configuration space access.
 * @acc, @opaque:     BAR accesses, at guest-physical addresses.
 * Return: 0; -ENXIO not a virtio device; -EPROTONOSUPPORT a legacy
 * (transitional) device ID; -ENODEV a required capability is missing;
 * -EIO a capability or BAR is malformed; -ENOSPC @window is too small.
 */
int vdk_driver_pci_init(struct vdk_driver_pci *p,
			const struct vdk_driver_pci_cfg_access *cfg,
			void *cfg_opaque,
			const struct vdk_driver_mmio_access *acc, void *opaque,
			struct vdk_driver_pci_window *window);

/**
 * vdk_driver_pci_enable_msix() - program MSI-X table entries 0..@n-1 with
 * @addr[i] / @data[i], unmask them and enable MSI-X (PCI 3.0 §6.8). From
 * then on config changes go to vector 0 and queue q to vector q + 1 when
 * it exists (set by queue_set; VIRTIO_MSI_NO_VECTOR otherwise), one vector
 * per queue as Linux does. Call after vdk_driver_begin_init() and before
 * setting up queues.
 * Return: 0; -ENODEV no MSI-X capability; -EINVAL @n is 0 or larger than
 * the table; -EIO the device refused the config vector (read back
 * VIRTIO_MSI_NO_VECTOR).
 */
int vdk_driver_pci_enable_msix(struct vdk_driver_pci *p, const uint64_t *addr,
			       const uint32_t *data, uint16_t n);

/**
 * vdk_driver_pci_queue_vector() - the MSI-X vector the device reports for
 * queue @queue (VIRTIO_MSI_NO_VECTOR, 0xffff, if none).
 */
uint16_t vdk_driver_pci_queue_vector(struct vdk_driver_pci *p, uint16_t queue);

/**
 * vdk_driver_pci_queue_reset() - reset queue @queue alone (virtio 1.2
 * §2.6.1, VIRTIO_F_RING_RESET negotiated): write queue_reset and wait
 * until it and queue_enable read 0.
 * Return: 0; -ETIMEDOUT after VDK_DRIVER_RESET_POLLS reads.
 */
int vdk_driver_pci_queue_reset(struct vdk_driver_pci *p, uint16_t queue);

/* ---- split virtqueue, driver side ------------------------------------- */

/** vdk_driver_hal's answer for memory the device cannot reach. */
#define VDK_DRIVER_BAD_GPA UINT64_MAX

/**
 * struct vdk_driver_hal - how the driver turns its pointers into the
 * guest-physical addresses the device sees.
 */
struct vdk_driver_hal {
	void *opaque;
	/**
	 * Guest-physical address of the @len bytes at host/guest-virtual
	 * @addr, which must be contiguous in guest-physical memory; or
	 * VDK_DRIVER_BAD_GPA if they are not (all) DMA-able memory.
	 */
	uint64_t (*virt_to_phys)(void *opaque, const void *addr, size_t len);
};

/** One buffer of a descriptor chain: @len bytes at @addr (driver pointer). */
struct vdk_driver_buf {
	const void *addr;
	uint32_t len;
};

/**
 * struct vdk_driver_virtq_slot - the driver's private record of one
 * descriptor (never shared with the device, so a device scribbling on the
 * descriptor table cannot corrupt the free list). The caller provides an
 * array of queue-size slots; contents are private to virtq.c.
 */
struct vdk_driver_virtq_slot {
	uint16_t next;	    /**< next descriptor of the chain / free list */
	uint16_t chain_len; /**< head only: descriptors in the chain */
	uint32_t writable;  /**< head only: device-writable bytes */
	bool in_flight;	    /**< head only: made available, not yet used */
};

/** struct vdk_driver_virtq_config - what vdk_driver_virtq_init() needs. */
struct vdk_driver_virtq_config {
	uint16_t index; /**< queue index on the device */
	uint16_t size;	/**< queue size: a power of two, 1..32768, at most
			   the device's maximum */
	/** Negotiated features: VIRTIO_RING_F_EVENT_IDX and
	 * VIRTIO_RING_F_INDIRECT_DESC (as 1ull << bit) are honoured. */
	uint64_t features;
	/** Ring memory: vdk_driver_virtq_layout_size(size) bytes, 16-byte
	 * aligned, at driver pointer @ring and guest-physical @ring_gpa.
	 * Zeroed by init; owned by the caller, must outlive the queue. */
	void *ring;
	uint64_t ring_gpa;
	size_t ring_len; /**< bytes at @ring */
	/** @size slots (caller's storage, outlives the queue). */
	struct vdk_driver_virtq_slot *slots;
	/**
	 * Optional indirect descriptor tables (virtio 1.2 §2.7.5.3): @size
	 * tables of @indirect_max descriptors each (so @size * @indirect_max
	 * * 16 bytes), 16-byte aligned, at @indirect / guest-physical
	 * @indirect_gpa. Used for chains of 2..@indirect_max buffers when
	 * VIRTIO_RING_F_INDIRECT_DESC is negotiated. NULL / 0 for none.
	 */
	void *indirect;
	uint64_t indirect_gpa;
	uint16_t indirect_max;
};

/**
 * struct vdk_driver_virtq - a split virtqueue, driver side. Fields are
 * private to virtq.c.
 */
struct vdk_driver_virtq {
	struct vdk_driver_transport *t;
	const struct vdk_driver_hal *hal;
	uint16_t index;
	uint16_t size;
	struct vring_desc *desc;   /**< descriptor table (shared) */
	struct vring_avail *avail; /**< available ring (shared) */
	struct vring_used *used;   /**< used ring (shared) */
	struct vdk_driver_virtq_slot *slots;
	struct vring_desc *indirect; /**< tables, or NULL */
	uint64_t indirect_gpa;
	uint16_t indirect_max;
	bool event_idx;
	bool broken;		/**< the device broke the rules: -EIO */
	uint16_t free_head;	/**< first free descriptor */
	uint16_t num_free;	/**< free descriptors */
	uint16_t avail_idx;	/**< next available ring index (shadow) */
	uint16_t num_added;	/**< made available since last should_notify */
	uint16_t num_in_flight; /**< chains made available, not yet used */
	uint16_t last_used;	/**< next used ring index to consume */
};

/**
 * vdk_driver_virtq_layout_size() - bytes of ring memory a split virtqueue
 * of @size entries needs: descriptor table (16 * @size, at offset 0),
 * available ring with used_event (6 + 2 * @size, 2-byte aligned), used
 * ring with avail_event (6 + 8 * @size, 4-byte aligned) (virtio 1.2 §2.7).
 *
 * Return: the size in bytes, or 0 if @size is 0, not a power of two or
 * above 32768.
 */
size_t vdk_driver_virtq_layout_size(uint16_t size);

/**
 * vdk_driver_virtq_init() - set up queue cfg->index: check the ring memory,
 * zero it, build the free list, and hand the queue to the device through
 * the transport's queue_set (which also makes it ready) (virtio 1.2
 * §3.1.1 step 7, §4.2.3.2). Call between vdk_driver_begin_init() and
 * vdk_driver_finish_init().
 * @q:   caller's storage; no fini needed after a device reset.
 * @t:   the transport; not owned.
 * @hal: translates buffer pointers; not owned, outlives @q.
 * @cfg: ring memory and options; memory it points to stays the caller's.
 *
 * Return: 0; -EINVAL for a bad size, too little, misaligned or
 * untranslatable memory, or NULL slots; -ENOENT if the device has no such
 * queue; -EBUSY if the queue is already in use; -EINVAL/-ENOENT/-EBUSY as
 * the transport's queue_set.
 */
int vdk_driver_virtq_init(struct vdk_driver_virtq *q,
			  struct vdk_driver_transport *t,
			  const struct vdk_driver_hal *hal,
			  const struct vdk_driver_virtq_config *cfg);

/**
 * vdk_driver_virtq_add() - make one buffer available: a descriptor chain of
 * @n_readable device-readable buffers followed by @n_writable
 * device-writable buffers (virtio 1.2 §2.7.13). The chain goes into an
 * indirect table when one is configured, INDIRECT_DESC was negotiated and
 * the chain has 2..indirect_max buffers; otherwise it takes one descriptor
 * per buffer. The available index is published (release order) before
 * returning; the device is not notified (see vdk_driver_virtq_kick()).
 * @readable, @writable: arrays of buffers with non-zero lengths; the memory
 * stays the caller's and must not be touched until the token comes back
 * from vdk_driver_virtq_pop_used().
 *
 * Return: the token (head descriptor index, 0..size-1) on success;
 * -EINVAL if there are no buffers, one is empty or has a NULL address, an
 * array is NULL with a non-zero count, or the writable total exceeds
 * UINT32_MAX; -ENOSPC if fewer free descriptors than buffers;
 * -EFAULT if the HAL cannot translate a buffer; -EIO if the queue is
 * broken.
 */
int vdk_driver_virtq_add(struct vdk_driver_virtq *q,
			 const struct vdk_driver_buf *readable,
			 uint16_t n_readable,
			 const struct vdk_driver_buf *writable,
			 uint16_t n_writable);

/**
 * vdk_driver_virtq_should_notify() - whether the device wants an available
 * buffer notification for what was added since the last call (virtio 1.2
 * §2.7.10): with VIRTIO_RING_F_EVENT_IDX, if avail_event lies in the
 * indexes added since then (vring_need_event()); otherwise unless the
 * device set VRING_USED_F_NO_NOTIFY. Resets the "added since" count;
 * false if nothing was added since the last call, or the queue is broken.
 */
bool vdk_driver_virtq_should_notify(struct vdk_driver_virtq *q);

/** vdk_driver_virtq_notify() - send an available buffer notification. */
void vdk_driver_virtq_notify(struct vdk_driver_virtq *q);

/**
 * vdk_driver_virtq_kick() - notify if vdk_driver_virtq_should_notify().
 * Return: whether it notified.
 */
bool vdk_driver_virtq_kick(struct vdk_driver_virtq *q);

/**
 * vdk_driver_virtq_can_pop() - whether the used ring has an entry the
 * driver has not consumed (false once the queue is broken).
 */
bool vdk_driver_virtq_can_pop(struct vdk_driver_virtq *q);

/**
 * vdk_driver_virtq_pop_used() - consume the next used ring entry (virtio
 * 1.2 §2.7.8, §2.7.14): check it, free its descriptors, and with
 * VIRTIO_RING_F_EVENT_IDX ask for an interrupt at the next entry
 * (used_event).
 * @token: set to the token vdk_driver_virtq_add() returned for the chain.
 * @len:   set to the bytes the device wrote into its writable buffers.
 *
 * Return: 0; -EAGAIN if there is nothing to consume; -EIO if the device
 * broke the rules (used index ahead of what was made available, an id that
 * is out of range or not in flight, a length above the chain's writable
 * capacity); the queue is then broken and every later call fails with
 * -EIO until it is set up again.
 */
int vdk_driver_virtq_pop_used(struct vdk_driver_virtq *q, uint16_t *token,
			      uint32_t *len);

/** vdk_driver_virtq_num_free() - free descriptors. */
uint16_t vdk_driver_virtq_num_free(const struct vdk_driver_virtq *q);

/** vdk_driver_virtq_is_broken() - whether the device broke the queue. */
bool vdk_driver_virtq_is_broken(const struct vdk_driver_virtq *q);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_DRIVER_H */
