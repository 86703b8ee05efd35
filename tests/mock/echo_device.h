/* SPDX-License-Identifier: Apache-2.0 */
/*
 * echo_device: a small virtio device for tests of the device framework,
 * transports and the driver side. It is not a device the virtio spec
 * defines; its device ID is outside the registered range.
 *
 * Queues (both of max size ECHO_QUEUE_MAX_SIZE):
 *   0 "echoq": for each descriptor chain, the device copies the chain's
 *     device-readable bytes into its device-writable bytes (as many as fit;
 *     bitwise inverted if ECHO_F_INVERT was negotiated), then returns the
 *     chain with the number of bytes written and sends a used buffer
 *     notification when vdk_virtq_should_notify() says so.
 *   1 "sinkq": the device consumes each chain's device-readable bytes,
 *     counts them and returns the chain with 0 bytes written.
 *
 * Features: VIRTIO_F_VERSION_1 and ECHO_F_INVERT.
 *
 * Configuration space (struct echo_config, 16 bytes, little-endian):
 *   counter  (read-only)  chains processed on both queues since reset
 *   settable (read-write) whatever the driver last wrote; 0 after reset
 *   id       (read-only)  8 bytes, "vdk-echo" unless echo_device_set_id()
 * Writes to read-only bytes are dropped.
 *
 * Processing is synchronous: the queue_notify op drains the notified queue
 * on the caller's thread. wake() drains both queues, as a device whose
 * workers restart would. A driver error in a queue (vdk_virtq_pop()
 * returning -EIO) makes the device call vdk_interrupt_needs_reset() once
 * and ignore notifications until reset.
 *
 * Snapshot: a CBOR map of the counters and configuration fields.
 *
 * Usage:
 *   struct echo_device *e = echo_device_new(&err);
 *   struct vdk_device *dev = echo_device_vdk(e);  // give to a transport
 *   ...
 *   echo_device_free(e);  // vdk_device_fini(dev); frees e
 */
#ifndef VDK_TESTS_ECHO_DEVICE_H
#define VDK_TESTS_ECHO_DEVICE_H

#include <stdint.h>

#include <vdk/device.h>

/** Device ID reported by the echo device (not a virtio-registered ID). */
#define ECHO_DEVICE_ID 0xec0u
/** Largest size of each of the two queues. */
#define ECHO_QUEUE_MAX_SIZE 256
/** Number of queues. */
#define ECHO_NUM_QUEUES 2
/** Queue indices. */
#define ECHO_QUEUE_ECHO 0
#define ECHO_QUEUE_SINK 1
/** Device feature bit 0: echoed bytes are inverted (b ^ 0xff). */
#define ECHO_F_INVERT 0
/** Most iovecs one chain may have (a chain spanning regions takes more). */
#define ECHO_IOV_CAP 512

/** struct echo_config - the configuration space layout (16 bytes). */
struct echo_config {
	uint32_t counter;  /**< le32, read-only: chains processed */
	uint32_t settable; /**< le32, read-write */
	uint8_t id[8];	   /**< read-only identifier */
};

/** Byte offsets of the configuration fields. */
#define ECHO_CONFIG_COUNTER  0
#define ECHO_CONFIG_SETTABLE 4
#define ECHO_CONFIG_ID	     8
#define ECHO_CONFIG_SIZE     16

/** struct echo_stats - what the device has done (since creation). */
struct echo_stats {
	uint64_t echo_chains; /**< chains returned on queue 0 */
	uint64_t echo_bytes;  /**< bytes written into queue-0 chains */
	uint64_t sink_chains; /**< chains returned on queue 1 */
	uint64_t sink_bytes;  /**< readable bytes consumed on queue 1 */
	uint64_t errors;      /**< times a queue reported a driver error */
	uint64_t activations; /**< successful activate() calls */
	uint64_t resets;      /**< reset() calls while active */
};

struct echo_device;

/**
 * echo_device_new() - create an echo device, wrapped in an initialised
 * struct vdk_device (state NEW, awake).
 * @err: set to 0 or -ENOMEM; may be NULL.
 * Return: the device (free with echo_device_free()), or NULL.
 */
struct echo_device *echo_device_new(int *err);

/**
 * echo_device_free() - vdk_device_fini() on the device (reset if active)
 * and free it. NULL is accepted.
 */
void echo_device_free(struct echo_device *e);

/**
 * echo_device_vdk() - the framework handle to pass to vdk_device_*() and
 * transports. Owned by @e; vdk_device_fini() on it frees @e as well.
 */
struct vdk_device *echo_device_vdk(struct echo_device *e);

/** echo_device_from_vdk() - the echo device behind @dev (made by
 * echo_device_new()). */
struct echo_device *echo_device_from_vdk(struct vdk_device *dev);

/** echo_device_stats() - copy of the device's counters. */
struct echo_stats echo_device_stats(const struct echo_device *e);

/** echo_device_config() - copy of the configuration space, host order. */
struct echo_config echo_device_config(const struct echo_device *e);

/**
 * echo_device_set_id() - change the read-only id field, as a device would
 * on its own, and send a configuration change notification if the device is
 * active and awake (virtio 1.2 §2.5.1).
 */
void echo_device_set_id(struct echo_device *e, const uint8_t id[8]);

/** echo_device_inverting() - true if ECHO_F_INVERT was negotiated. */
bool echo_device_inverting(const struct echo_device *e);

#endif /* VDK_TESTS_ECHO_DEVICE_H */
