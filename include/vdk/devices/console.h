/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-console (virtio 1.2 §5.3) with a single port, port 0: no
 * VIRTIO_CONSOLE_F_MULTIPORT, so two queues (§5.3.2):
 *
 *   receiveq  (queue 0)  port 0 input, device → driver: the driver posts
 *                        device-writable buffers; the device fills them
 *                        with host input (vdk_console_push_input()).
 *   transmitq (queue 1)  port 0 output, driver → device: the device writes
 *                        each chain's device-readable part to the output
 *                        fd and returns the chain with 0 bytes written.
 *
 * Features offered: VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC,
 * VIRTIO_RING_F_EVENT_IDX, VIRTIO_CONSOLE_F_EMERG_WRITE (a byte written to
 * emerg_wr goes to the output, §5.3.4), and VIRTIO_CONSOLE_F_SIZE when the
 * configuration gives a console size (cols and rows, changed later with
 * vdk_console_set_size(), which sends a configuration change notification,
 * §5.3.6).
 *
 * Output: written with write(2), retried on EINTR and short writes. When
 * the fd says EAGAIN the chain being written is kept (not returned to the
 * driver, not dropped) and transmitq processing stops; the program polls
 * the fd for POLLOUT while vdk_console_output_blocked() is true and calls
 * vdk_console_flush_output(). With an output fd, processing also stops
 * that way after queue_max_size chains in one call (a per-wake-up budget,
 * so a driver refilling transmitq cannot hold the calling thread); the fd
 * is then writable at once and the program's flush goes on. Any other write error (EPIPE, EIO, ...)
 * means the output is gone: the bytes are counted in output_dropped and
 * the chain is returned. At sleep, the unwritten rest of a kept chain is
 * copied into a host buffer (part of the snapshot) and the chain returned,
 * so no chain is in flight while asleep.
 *
 * Input: vdk_console_push_input() copies bytes into the writable buffers
 * the driver has posted on receiveq, in order, one chain per buffer-full;
 * what does not fit waits in a host buffer of input_buffer_size bytes
 * (default VDK_CONSOLE_DEFAULT_INPUT_BUFFER) and is delivered when the
 * driver posts buffers (a receiveq notification), at activation and at
 * wake. Buffered input survives a device reset.
 *
 * Threading: vdk_console_push_input(), vdk_console_set_size(),
 * vdk_console_flush_output() and vdk_console_stats() may be called from
 * any thread, concurrently with each other and with the vdk_device_*()
 * calls of the transport's thread. Two mutexes, receive side and transmit
 * side, are taken inside; the interrupt callbacks run with one of them
 * held and must not call back into the console.
 *
 * A driver error in a queue (vdk_virtq_pop() -EIO) makes the device report
 * DEVICE_NEEDS_RESET (vdk_interrupt_needs_reset()) and stop using that
 * queue until reset.
 *
 * Snapshot: {"input": buffered input bytes, "output": buffered output
 * bytes, "cols", "rows", and the counters of struct vdk_console_stats}.
 */
#ifndef VDK_DEVICES_CONSOLE_H
#define VDK_DEVICES_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_console.h>

#include <vdk/device.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Queue indices of port 0 (virtio 1.2 §5.3.2). */
#define VDK_CONSOLE_RECEIVEQ  0
#define VDK_CONSOLE_TRANSMITQ 1
/** Default largest queue size. */
#define VDK_CONSOLE_DEFAULT_QUEUE_SIZE 256
/** Default and largest host input buffer, bytes. */
#define VDK_CONSOLE_DEFAULT_INPUT_BUFFER 4096u
#define VDK_CONSOLE_MAX_INPUT_BUFFER	 (1u << 20)
/** Largest host output buffer (output accepted while the fd blocks: the
 * rest of a chain at sleep, emergency writes), bytes. */
#define VDK_CONSOLE_MAX_OUTPUT_BUFFER (1u << 20)
/** Bytes of configuration space: struct virtio_console_config. */
#define VDK_CONSOLE_CONFIG_SIZE 12u

/** struct vdk_console_config - options for vdk_console_new(). */
struct vdk_console_config {
	/** Where port 0 output goes; -1 discards it (still counted). Not
	 * owned: it must stay open until vdk_console_free(). It may be
	 * non-blocking (see EAGAIN above). Note that 0 is stdin. */
	int output_fd;
	/** Largest size of each queue: a power of two, 1..
	 * VDK_VIRTQ_MAX_SIZE; 0 means VDK_CONSOLE_DEFAULT_QUEUE_SIZE. */
	uint16_t queue_max_size;
	/** Host input buffer, bytes, 1..VDK_CONSOLE_MAX_INPUT_BUFFER; 0 means
	 * VDK_CONSOLE_DEFAULT_INPUT_BUFFER. */
	uint32_t input_buffer_size;
	/** Console size in characters; both non-zero offers
	 * VIRTIO_CONSOLE_F_SIZE, both zero does not. */
	uint16_t cols, rows;
};

/** struct vdk_console_stats - counters (also part of the snapshot). */
struct vdk_console_stats {
	uint64_t input_bytes;	 /**< bytes delivered on receiveq */
	uint64_t input_chains;	 /**< receiveq chains returned */
	uint64_t output_bytes;	 /**< bytes written to the output fd */
	uint64_t output_chains;	 /**< transmitq chains returned */
	uint64_t emerg_bytes;	 /**< bytes written to emerg_wr */
	uint64_t output_dropped; /**< bytes lost: write error, buffer full */
};

struct vdk_console;

/**
 * vdk_console_new() - create a virtio-console device (virtio 1.2 §5.3),
 * wrapped in an initialised struct vdk_device (state NEW, awake).
 * @cfg: options, not kept; NULL means output discarded and the defaults.
 * @err: set to 0 on success; may be NULL.
 *
 * Return: the device, owned by the caller (vdk_console_free()), or NULL
 * with *@err set to -EINVAL for a queue size that is not a power of two, an
 * input buffer larger than VDK_CONSOLE_MAX_INPUT_BUFFER, or only one of
 * cols and rows set; -ENOMEM.
 */
struct vdk_console *vdk_console_new(const struct vdk_console_config *cfg,
				    int *err);

/**
 * vdk_console_free() - vdk_device_fini() on the device (reset if active)
 * and free it; the output fd is not closed. NULL is accepted.
 */
void vdk_console_free(struct vdk_console *con);

/**
 * vdk_console_device() - the framework handle (VIRTIO_ID_CONSOLE) to pass
 * to a transport and the vdk_device_*() calls; owned by @con.
 */
struct vdk_device *vdk_console_device(struct vdk_console *con);

/**
 * vdk_console_push_input() - host input for port 0 (virtio 1.2 §5.3.6):
 * copy @buf into the receiveq buffers the driver has posted, in order, and
 * buffer what does not fit. Returns the chains filled to the driver with
 * the number of bytes written, and sends a used buffer notification when
 * vdk_virtq_should_notify() says so. Thread-safe.
 * @buf: @len bytes (host memory); not kept.
 *
 * Return: bytes accepted (delivered or buffered), 0..@len; less than @len
 * when the host buffer is full (the caller keeps the rest and retries
 * after the driver posts buffers). At most INT_MAX bytes are taken per
 * call. -EINVAL if @buf is NULL and @len is not 0.
 */
int vdk_console_push_input(struct vdk_console *con, const void *buf,
			   size_t len);

/** vdk_console_input_pending() - input bytes buffered for the driver. */
size_t vdk_console_input_pending(struct vdk_console *con);

/**
 * vdk_console_flush_output() - write buffered output and carry on with
 * transmitq (the chain kept after EAGAIN, then the available ones), as a
 * transmitq notification would. Thread-safe.
 *
 * Return: 1 if output is still waiting for the fd (poll it for POLLOUT and
 * call again), 0 otherwise.
 */
int vdk_console_flush_output(struct vdk_console *con);

/** vdk_console_output_blocked() - true while output waits for the fd. */
bool vdk_console_output_blocked(struct vdk_console *con);

/**
 * vdk_console_set_size() - change the console size in the configuration
 * space (cols, rows; virtio 1.2 §5.3.4) and, if the device is active and
 * the driver accepted VIRTIO_CONSOLE_F_SIZE, send a configuration change
 * notification (§5.3.6). Thread-safe.
 *
 * Return: 0; -EOPNOTSUPP if the device was created without a size (the
 * feature is not offered); -EINVAL if @cols or @rows is 0.
 */
int vdk_console_set_size(struct vdk_console *con, uint16_t cols, uint16_t rows);

/** vdk_console_stats() - copy of the counters. Thread-safe. */
struct vdk_console_stats vdk_console_stats(struct vdk_console *con);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_DEVICES_CONSOLE_H */
