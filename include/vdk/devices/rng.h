/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-rng, the entropy device (virtio 1.2 §5.4): one queue, "requestq",
 * no configuration space, no device-specific feature bits.
 *
 * The driver places device-writable buffers on requestq; the device fills
 * each with random bytes from the host kernel (getrandom(2)) and returns it
 * with the number of bytes written (§5.4.6). A chain without a writable
 * part is returned with 0 bytes written.
 *
 * Features offered: VIRTIO_F_VERSION_1 and the ring features the virtqueue
 * implements, VIRTIO_RING_F_INDIRECT_DESC (§2.7.5.3) and
 * VIRTIO_RING_F_EVENT_IDX (§2.7.10).
 *
 * Processing is synchronous: the queue_notify op drains requestq on the
 * calling thread (a VMM or vhost-user backend calls it from its own device
 * thread), at most queue_max_size requests per call (then it goes on from
 * the loop it was given, see vdk_rng_resume_fd()), with available buffer
 * notifications suppressed meanwhile and asked for again (avail_event
 * moved) before it returns. A driver error in the queue makes the device report
 * DEVICE_NEEDS_RESET (vdk_interrupt_needs_reset()) and stop until reset.
 *
 * Snapshot: the device's request counters ({"requests": n, "bytes": n}).
 */
#ifndef VDK_DEVICES_RNG_H
#define VDK_DEVICES_RNG_H

#include <stdint.h>

#include <vdk/config.h>
#include <vdk/device.h>
#include <vdk/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Index of requestq (virtio 1.2 §5.4.2). */
#define VDK_RNG_REQUESTQ 0
/** Default largest queue size. */
#define VDK_RNG_DEFAULT_QUEUE_SIZE 256

/** struct vdk_rng_config - options for vdk_rng_new(). */
struct vdk_rng_config {
	/** Largest requestq size: a power of two, 1..VDK_VIRTQ_MAX_SIZE;
	 * 0 means VDK_RNG_DEFAULT_QUEUE_SIZE. */
	uint16_t queue_max_size;
	/** Most random bytes given to one request, bytes; 0 means no limit
	 * (the whole writable part is filled). */
	uint32_t max_bytes_per_request;
};

/*
 * The settings of an rng device (<vdk/config.h>), set from strings:
 *   max-bytes=N    @max_bytes_per_request, 1..4294967295
 *   queue-size=N   @queue_max_size, a power of two 1..VDK_VIRTQ_MAX_SIZE
 * None is a string: nothing to free, no vdk_rng_config_fini().
 */

/**
 * vdk_rng_config_key() - the rng device's settings, one by one, for a
 * program's options and help (a vdk_config_key_fn).
 * @index: from 0.
 * Return: the @index-th setting (static, owned by the library), or NULL
 * past the last one.
 */
const struct vdk_config_key *vdk_rng_config_key(size_t index);

/**
 * vdk_rng_config_set() - set one setting of @cfg (the caller's) from a
 * string, as vdk_blk_config_set() does.
 * @value: the number (host string), never NULL: rng has no flags.
 * @msg:   the error message ("max-bytes: want 1..4294967295, not '0'"),
 *         @len bytes (VDK_CONFIG_MSG_LEN holds all; NULL: none); empty on
 *         success.
 * Return: 0; -EINVAL for an unknown @key, a missing value or one out of
 * range (max-bytes 0 or above UINT32_MAX, queue-size not a power of two in
 * 1..VDK_VIRTQ_MAX_SIZE). @cfg is unchanged on error.
 */
int vdk_rng_config_set(struct vdk_rng_config *cfg, const char *key,
		       const char *value, char *msg, size_t len);

/**
 * vdk_rng_config_parse() - set the settings of a spec such as
 * "max-bytes=64,queue-size=128", each with vdk_rng_config_set(); the
 * rules of vdk_blk_config_parse() (no positional field). @spec is not
 * modified or kept.
 * Return: 0; -EINVAL for an empty @spec, an empty field, a setting given
 * twice, or what vdk_rng_config_set() refuses; -ENOMEM. On error @cfg may
 * hold the settings before the bad one.
 */
int vdk_rng_config_parse(struct vdk_rng_config *cfg, const char *spec,
			 char *msg, size_t len);

/** struct vdk_rng_stats - counters (also the snapshot state). */
struct vdk_rng_stats {
	uint64_t requests; /**< chains returned to the driver */
	uint64_t bytes;	   /**< random bytes written into them */
};

struct vdk_rng;

/**
 * vdk_rng_new() - create a virtio-rng device, wrapped in an initialised
 * struct vdk_device (state NEW, awake).
 * @cfg: options; NULL for the defaults. Not kept.
 * @err: set to 0 on success; may be NULL.
 *
 * Return: the device, owned by the caller (vdk_rng_free()), or NULL with
 * *@err set to -EINVAL for a queue size that is not a power of two,
 * -ENOMEM, or -errno from eventfd().
 */
struct vdk_rng *vdk_rng_new(const struct vdk_rng_config *cfg, int *err);

/**
 * vdk_rng_free() - vdk_device_fini() on the device (reset if active) and
 * free it. Equivalent to vdk_device_fini(vdk_rng_device(rng)). NULL is
 * accepted.
 */
void vdk_rng_free(struct vdk_rng *rng);

/**
 * vdk_rng_device() - the framework handle (VIRTIO_ID_RNG) to pass to a
 * transport and the vdk_device_*() calls; owned by @rng.
 */
struct vdk_device *vdk_rng_device(struct vdk_rng *rng);

/**
 * vdk_rng_resume_fd() - an eventfd (owned by @rng) that becomes readable
 * (POLLIN) when a wake-up stopped at its budget with requests still
 * available: the device serves at most queue_max_size requests per
 * queue_notify, so that a driver refilling requestq as fast as it is served
 * cannot hold the calling thread. A device given a loop
 * (vdk_device_attach_loop()) watches it itself and serves on from the
 * loop's thread (under its own lock); a host without a loop watches it and,
 * when it is readable, calls vdk_device_queue_notify(vdk_rng_device(@rng),
 * 0) on the thread that notifies the device (which empties it). Spurious
 * calls are harmless.
 */
int vdk_rng_resume_fd(const struct vdk_rng *rng);

/** vdk_rng_stats() - copy of the device's counters. */
struct vdk_rng_stats vdk_rng_stats(const struct vdk_rng *rng);

/**
 * vdk_rng_queue_stats() - copy the running request queue's counters
 * (struct vdk_virtq_stats, <vdk/virtq.h>) into @out; zeroes when the queue
 * does not run. Call it on the thread that serves the queue (the device
 * takes no lock).
 * Return: true if the queue runs.
 */
bool vdk_rng_queue_stats(const struct vdk_rng *rng,
			 struct vdk_virtq_stats *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_DEVICES_RNG_H */
