/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk device (virtio 1.2 §5.2) backed by an image file or a host block
 * device, with asynchronous I/O through io_uring. One implementation serves
 * the in-process VMM (through a transport such as virtio-mmio) and the
 * vhost-user backend: both drive it through the struct vdk_device returned
 * by vdk_blk_device().
 *
 * Requests (virtio 1.2 §5.2.6): a 16-byte struct virtio_blk_outhdr in the
 * device-readable part, then data, then one status byte, the last byte of
 * the device-writable part. Supported types: VIRTIO_BLK_T_IN, _OUT, _FLUSH,
 * _GET_ID, _DISCARD, _WRITE_ZEROES; anything else completes with
 * VIRTIO_BLK_S_UNSUPP. Every field the driver wrote is copied once, checked
 * (data a multiple of 512 bytes, sector ranges inside the capacity with
 * overflow checks, segment counts and sizes within the advertised limits),
 * then used; a bad request completes with VIRTIO_BLK_S_IOERR, never touches
 * the image.
 *
 * I/O model: each queue has its own io_uring and an eventfd registered with
 * it. The device's queue_notify op pops every available descriptor chain,
 * submits the reads/writes/fsyncs/fallocates and returns without waiting.
 * The program polls vdk_blk_completion_fd() for each queue (POLLIN) and then
 * calls vdk_blk_process_completions(), which writes the status bytes,
 * returns the chains to the used ring and sends a used buffer notification
 * when vdk_virtq_should_notify() says so. Programs without an event loop
 * call vdk_blk_wait_idle() instead.
 *
 * Short transfers: a read or write that transfers fewer bytes than asked
 * (the image shrank underneath, or a device error) completes with
 * VIRTIO_BLK_S_IOERR; the remainder is not resubmitted.
 *
 * Used length (virtio 1.2 §2.7.8): the data bytes the device wrote (for a
 * read that was started, all of them, even if it failed) plus the status
 * byte; 0 for a chain with no device-writable byte, which has nowhere to
 * put a status and is returned untouched. A chain whose header is shorter
 * than 16 bytes completes with VIRTIO_BLK_S_IOERR.
 *
 * DISCARD punches holes (fallocate PUNCH_HOLE | KEEP_SIZE); where the image
 * does not support that, the discard succeeds without deallocating (§5.2.6.2
 * lets the device). WRITE_ZEROES uses ZERO_RANGE, or PUNCH_HOLE when the
 * segment has VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, and falls back to writing
 * zeroes where the file system refuses those modes (tmpfs has no
 * ZERO_RANGE). All of it runs through io_uring (IORING_OP_FALLOCATE,
 * IORING_OP_FSYNC with IORING_FSYNC_DATASYNC for FLUSH).
 *
 * Synchronous reads and writes: io_uring runs a read or write inline only
 * when the image's file system supports non-blocking I/O (FMODE_NOWAIT);
 * otherwise (tmpfs, ramfs on Linux 6.18) it hands every request to an
 * io-wq worker thread, which costs two extra thread switches per request.
 * VDK_BLK_IO_AUTO therefore probes the image at open (preadv2() with
 * RWF_NOWAIT) and, where non-blocking I/O is refused on a file system in
 * memory (tmpfs, ramfs), does IN and OUT with preadv()/pwritev() inside
 * queue_notify, completing them before it returns (as Linux AIO does for
 * such files). FLUSH, DISCARD and WRITE_ZEROES always go through io_uring.
 * A notification pops at most queue_size chains; if the driver keeps
 * adding, the completion fd is made readable and
 * vdk_blk_process_completions() goes on.
 *
 * O_DIRECT (vdk_blk_config.direct): the image is opened O_DIRECT, bypassing
 * the host page cache. Guest buffers need not be aligned: a read or write
 * whose buffer addresses, buffer lengths or offset are not multiples of the
 * file's direct-I/O alignment (statx() STATX_DIOALIGN, else the logical
 * block size) goes through a second, buffered descriptor of the same image
 * instead.
 *
 * Threading: queue_notify (transport thread) and
 * vdk_blk_process_completions() (event loop thread) may run concurrently;
 * a mutex per queue serialises them. The other vdk_device_*() calls come
 * from the one control thread, as <vdk/device.h> requires.
 */
#ifndef VDK_DEVICES_BLK_H
#define VDK_DEVICES_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_blk.h>

#include <vdk/config.h>
#include <vdk/device.h>
#include <vdk/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Default and largest queue size (a power of two). */
#define VDK_BLK_DEFAULT_QUEUE_SIZE 256
#define VDK_BLK_MAX_QUEUE_SIZE	   1024
/** Largest number of request queues. */
#define VDK_BLK_MAX_QUEUES 16
/** Segment size limit offered in size_max (VIRTIO_BLK_F_SIZE_MAX), bytes. */
#define VDK_BLK_SIZE_MAX (1u << 20)
/** Limits offered for VIRTIO_BLK_T_DISCARD (512-byte sectors, segments). */
#define VDK_BLK_MAX_DISCARD_SECTORS (1u << 22)
#define VDK_BLK_MAX_DISCARD_SEG	    32u
/** Limits offered for VIRTIO_BLK_T_WRITE_ZEROES (sectors, segments). */
#define VDK_BLK_MAX_WRITE_ZEROES_SECTORS (1u << 17)
#define VDK_BLK_MAX_WRITE_ZEROES_SEG	 32u
/** Bytes of configuration space exposed: struct virtio_blk_config up to
 * (not including) the secure-erase fields, which are not offered. */
#define VDK_BLK_CONFIG_SIZE 60u

/**
 * enum vdk_blk_io_mode - how IN and OUT requests reach the image.
 * @VDK_BLK_IO_AUTO:  VDK_BLK_IO_SYNC if the image is on tmpfs or ramfs and
 *                    refuses non-blocking reads (preadv2(RWF_NOWAIT) fails
 *                    with EOPNOTSUPP), VDK_BLK_IO_ASYNC otherwise. The
 *                    default.
 * @VDK_BLK_IO_ASYNC: io_uring; completions through vdk_blk_completion_fd().
 * @VDK_BLK_IO_SYNC:  preadv()/pwritev() on the thread that calls
 *                    queue_notify; the request completes before it returns.
 */
enum vdk_blk_io_mode {
	VDK_BLK_IO_AUTO = 0,
	VDK_BLK_IO_ASYNC,
	VDK_BLK_IO_SYNC,
};

/**
 * struct vdk_blk_config - how to open a block device.
 */
struct vdk_blk_config {
	/** Image file or host block device; not owned, copied. */
	const char *path;
	/** Open O_RDONLY and offer VIRTIO_BLK_F_RO; writes, discards and
	 * write-zeroes complete with VIRTIO_BLK_S_IOERR. */
	bool read_only;
	/** Device ID string for VIRTIO_BLK_T_GET_ID, at most
	 * VIRTIO_BLK_ID_BYTES (20) bytes; NULL for an empty one. Copied. */
	const char *serial;
	/** Request queues, 1..VDK_BLK_MAX_QUEUES; 0 means 1. More than one
	 * offers VIRTIO_BLK_F_MQ. */
	uint16_t num_queues;
	/** Largest size of each queue: a power of two, 4..
	 * VDK_BLK_MAX_QUEUE_SIZE; 0 means VDK_BLK_DEFAULT_QUEUE_SIZE.
	 * seg_max is this minus 2 (header and status). */
	uint16_t queue_size;
	/** How reads and writes are issued; 0 (VDK_BLK_IO_AUTO) probes. */
	enum vdk_blk_io_mode io_mode;
	/** Open the image O_DIRECT (no host page cache); unaligned requests
	 * use a buffered descriptor. -EINVAL from vdk_blk_new() if the file
	 * system refuses O_DIRECT. */
	bool direct;
	/** Promise that each queue's queue_notify and
	 * vdk_blk_process_completions() run on one thread that makes system
	 * calls often (an event loop, as in vdk-vhost-user-blk): io_uring then
	 * leaves completion work for that thread's next system call
	 * (IORING_SETUP_COOP_TASKRUN, Linux >= 5.19; ignored where refused)
	 * instead of interrupting it. Leave false when queue_notify comes from
	 * vCPU threads, which may not enter the kernel for a long time. */
	bool single_thread;
	/** The copies vdk_blk_config_set() made of @path and @serial; freed
	 * by vdk_blk_config_fini(). Leave NULL when filling the struct by
	 * hand. */
	char *path_copy, *serial_copy;
};

/*
 * The settings of a blk device (<vdk/config.h>), set from strings:
 *   path=IMAGE         @path; in a spec the first field, without "path="
 *   readonly (ro)      @read_only
 *   serial=ID          @serial, at most 20 bytes
 *   direct (cache=none) @direct
 *   aio=auto|sync|io_uring  @io_mode (also threads = sync, async = io_uring)
 *   num-queues=N       @num_queues, 1..VDK_BLK_MAX_QUEUES
 *   queue-size=N       @queue_size, a power of two 4..VDK_BLK_MAX_QUEUE_SIZE
 * e.g. vdk_blk_config_parse(&cfg, "disk.img,readonly,serial=d0", ...).
 */

/**
 * vdk_blk_config_key() - the blk device's settings, one by one, for a
 * program's options and help (a vdk_config_key_fn).
 * @index: from 0.
 * Return: the @index-th setting (static, owned by the library), or NULL
 * past the last one.
 */
const struct vdk_config_key *vdk_blk_config_key(size_t index);

/**
 * vdk_blk_config_set() - set one setting of @cfg from a string.
 * @cfg:   the caller's config, zeroed or filled before; strings it stores
 *         (@path, @serial) are copies owned by @cfg until
 *         vdk_blk_config_fini(); setting one again frees the old copy.
 * @key:   a setting's name (or its alias: "ro", "cache" with "none").
 * @value: its value (host string, copied where needed), or NULL for a
 *         flag ("readonly").
 * @msg:   where the error message goes, "serial: at most 20 bytes, not
 *         25" (@len bytes, VDK_CONFIG_MSG_LEN holds all; NULL: none);
 *         empty on success.
 * Return: 0; -EINVAL for an unknown @key, a flag given a value, a value
 * missing, or a value out of range (a path that is empty, a serial longer
 * than VIRTIO_BLK_ID_BYTES, num-queues outside 1..VDK_BLK_MAX_QUEUES,
 * queue-size not a power of two in 4..VDK_BLK_MAX_QUEUE_SIZE, an aio mode
 * not listed); -ENOMEM copying a string. @cfg is unchanged on error.
 */
int vdk_blk_config_set(struct vdk_blk_config *cfg, const char *key,
		       const char *value, char *msg, size_t len);

/**
 * vdk_blk_config_parse() - set the settings of a spec such as
 * "disk.img,readonly,serial=d0": the first field is the image path (even
 * if it holds a '='), then NAME or NAME=VALUE fields, each set with
 * vdk_blk_config_set(); ",," is a comma inside the path or a value (QEMU's
 * escape). @spec is not modified or kept.
 * Return: 0; -EINVAL for an empty @spec, an empty field (a trailing
 * ','), a setting given twice, or what vdk_blk_config_set() refuses;
 * -ENOMEM. On error @cfg may hold the settings before the bad one: call
 * vdk_blk_config_fini() either way.
 */
int vdk_blk_config_parse(struct vdk_blk_config *cfg, const char *spec,
			 char *msg, size_t len);

/**
 * vdk_blk_config_check() - whether @cfg is complete for vdk_blk_new(): it
 * names an image (@path). Ranges are checked when set.
 * Return: 0, or -EINVAL with "path: missing (the image)" in @msg.
 */
int vdk_blk_config_check(const struct vdk_blk_config *cfg, char *msg,
			 size_t len);

/**
 * vdk_blk_config_fini() - free the strings vdk_blk_config_set() copied
 * into @cfg and clear @path / @serial where they pointed to them; strings
 * the caller set by hand are left alone. The other members stay. NULL is
 * accepted; calling it twice is harmless.
 */
void vdk_blk_config_fini(struct vdk_blk_config *cfg);

/**
 * struct vdk_blk_io_info - how the device does its I/O, and counters of the
 * paths taken (summed over queues, since vdk_blk_new()).
 */
struct vdk_blk_io_info {
	enum vdk_blk_io_mode mode; /**< ASYNC or SYNC, never AUTO */
	bool direct;		   /**< image opened O_DIRECT */
	uint32_t dio_mem_align;	   /**< buffer alignment for O_DIRECT, bytes */
	uint32_t dio_offset_align; /**< offset/length alignment, bytes */
	uint64_t sync_rw;	   /**< reads/writes done with preadv/pwritev */
	uint64_t async_rw;	   /**< reads/writes submitted to io_uring */
	uint64_t buffered_rw;	   /**< of those, unaligned ones that used the
				    *   buffered descriptor (direct only) */
};

/** struct vdk_blk_stats - requests completed since vdk_blk_new(). */
struct vdk_blk_stats {
	uint64_t reads;		/**< VIRTIO_BLK_T_IN completed OK */
	uint64_t writes;	/**< VIRTIO_BLK_T_OUT completed OK */
	uint64_t flushes;	/**< VIRTIO_BLK_T_FLUSH completed OK */
	uint64_t get_ids;	/**< VIRTIO_BLK_T_GET_ID completed OK */
	uint64_t discards;	/**< VIRTIO_BLK_T_DISCARD completed OK */
	uint64_t write_zeroes;	/**< VIRTIO_BLK_T_WRITE_ZEROES completed OK */
	uint64_t bytes_read;	/**< data bytes read from the image */
	uint64_t bytes_written; /**< data bytes written to the image */
	uint64_t io_errors;	/**< requests completed VIRTIO_BLK_S_IOERR */
	uint64_t unsupported;	/**< requests completed VIRTIO_BLK_S_UNSUPP */
	uint64_t malformed;	/**< chains with no room for a status byte */
};

/** Buckets of the completion latency histogram, see vdk_blk_queue_stats. */
#define VDK_BLK_LATENCY_BUCKETS 24

/**
 * struct vdk_blk_queue_stats - one request queue, as vdk_blk_queue_stats()
 * copies it.
 * @req:       this queue's request counters (vdk_blk_stats() sums them)
 * @in_flight: requests popped and not yet completed
 * @started:   the queue runs (has a virtqueue); @vq is zero otherwise
 * @vq:        the running virtqueue's counters (<vdk/virtq.h>)
 * @latency:   completion latency, from pop to used, microseconds:
 *             latency[0] counts requests under 1 us, latency[i] for
 *             1 <= i < 23 those in [2^(i-1), 2^i) us, latency[23] the
 *             rest (4.19 s and more)
 */
struct vdk_blk_queue_stats {
	struct vdk_blk_stats req;
	uint32_t in_flight;
	bool started;
	struct vdk_virtq_stats vq;
	uint64_t latency[VDK_BLK_LATENCY_BUCKETS];
};

struct vdk_blk;

/**
 * vdk_blk_new() - open the image and create a virtio-blk device
 * (virtio 1.2 §5.2), wrapped in an initialised struct vdk_device (state NEW,
 * awake).
 * @cfg: options, not kept; @cfg->path is opened O_RDWR (or O_RDONLY if read_only)
 *       with O_CLOEXEC (and O_DIRECT if direct, plus a second descriptor
 *       without it). The size comes from fstat() for a regular file or
 *       BLKGETSIZE64 for a block device, whose logical block size
 *       (BLKSSZGET) becomes blk_size; a size that is not a multiple of 512
 *       bytes is rounded down (the tail is unreachable).
 * @err: set to 0 on success; may be NULL.
 *
 * Return: the device, owned by the caller (vdk_blk_free()), or NULL with
 * *@err set to -EINVAL for a NULL @cfg or path, a serial longer than 20
 * bytes, a queue count or size out of range, an unknown io_mode, or
 * O_DIRECT refused; -ENOTBLK if @path is neither a regular file nor a block
 * device; -ENOMEM; -errno from open(), fstat(), ioctl(), eventfd() or
 * io_uring_queue_init(). Each failure is logged.
 */
struct vdk_blk *vdk_blk_new(const struct vdk_blk_config *cfg, int *err);

/**
 * vdk_blk_free() - vdk_device_fini() on the device (which resets it if
 * active, waiting for its in-flight requests), then close the image, the
 * io_urings and the eventfds and free @blk. NULL is accepted.
 */
void vdk_blk_free(struct vdk_blk *blk);

/**
 * vdk_blk_device() - the framework handle to pass to vdk_device_*() and
 * transports. Owned by @blk; vdk_device_fini() on it frees @blk too (the
 * ops' destroy), so call only one of the two.
 */
struct vdk_device *vdk_blk_device(struct vdk_blk *blk);

/** vdk_blk_from_device() - the blk device behind @dev (from vdk_blk_new()). */
struct vdk_blk *vdk_blk_from_device(struct vdk_device *dev);

/** vdk_blk_capacity() - image size in 512-byte sectors (config capacity). */
uint64_t vdk_blk_capacity(const struct vdk_blk *blk);

/**
 * vdk_blk_completion_fd() - the eventfd that becomes readable (POLLIN) when
 * queue @queue has I/O completions to process (io_uring_register_eventfd()).
 * Owned by @blk, valid until vdk_blk_free(); do not read it, call
 * vdk_blk_process_completions().
 *
 * Return: the fd, or -EINVAL if @queue >= the number of queues.
 */
int vdk_blk_completion_fd(const struct vdk_blk *blk, uint16_t queue);

/**
 * vdk_blk_process_completions() - handle every finished I/O of queue
 * @queue without blocking: write each request's status byte, return its
 * chain to the used ring (virtio 1.2 §2.7.8, §5.2.6) and send one used
 * buffer notification if vdk_virtq_should_notify() asks for it. Chains that
 * waited for a free request slot are then popped and submitted.
 *
 * Locking: takes the queue's mutex; may run on any thread.
 *
 * Return: the number of requests completed (≥ 0); -EINVAL if @queue is out
 * of range.
 */
int vdk_blk_process_completions(struct vdk_blk *blk, uint16_t queue);

/**
 * vdk_blk_wait_idle() - block until no request is in flight on any queue,
 * completing each as vdk_blk_process_completions() does. For tests and
 * programs without an event loop; sleep() and reset() use it to drain.
 *
 * Return: the number of requests completed (≥ 0), or -errno from
 * io_uring_wait_cqe() (the remaining requests stay in flight).
 */
int vdk_blk_wait_idle(struct vdk_blk *blk);

/** vdk_blk_in_flight() - requests submitted and not yet completed. */
uint32_t vdk_blk_in_flight(struct vdk_blk *blk);

/**
 * vdk_blk_queue_stats() - copy queue @queue's counters into @out, with the
 * queue's lock held (any thread; exact even while the queue runs).
 * Return: 0, or -ERANGE if @queue >= the number of queues.
 */
int vdk_blk_queue_stats(struct vdk_blk *blk, uint16_t queue,
			struct vdk_blk_queue_stats *out);

/** vdk_blk_stats() - copy of the request counters (summed over queues). */
struct vdk_blk_stats vdk_blk_stats(struct vdk_blk *blk);

/**
 * vdk_blk_io_info() - the I/O mode chosen at vdk_blk_new() (AUTO resolved),
 * the O_DIRECT alignment, and how many reads and writes took each path.
 * Locking: takes each queue's mutex in turn.
 */
struct vdk_blk_io_info vdk_blk_io_info(struct vdk_blk *blk);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_DEVICES_BLK_H */
