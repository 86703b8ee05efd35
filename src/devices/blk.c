/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk device (virtio 1.2 §5.2) over an image file or a host block
 * device, with io_uring for the I/O. See <vdk/devices/blk.h> for the model.
 *
 * This file: opening the image, the configuration space (§5.2.4), the
 * features (§5.2.3), the device ops the framework calls (activate, reset,
 * notify, sleep, wake, snapshot, restore) and the public API. Request
 * parsing and the io_uring data path are in blk_io.c; the state both share
 * is in blk_internal.h.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "../snapshot.h"
#include "blk_internal.h"

#define MOD "blk"

_Static_assert(VDK_BLK_CONFIG_SIZE == offsetof(struct virtio_blk_config,
					       max_secure_erase_sectors),
	       "config size");

static const struct vdk_device_ops blk_ops;

/* ---- queue lifecycle --------------------------------------------------- */

/* Drain a queue and stop using it (sleep/reset). */
static void queue_stop(struct blk_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	(void)vdk_blk_io_wait_idle(q);
	q->vq = NULL;
	q->starved = false;
	q->yielded = false;
	pthread_mutex_unlock(&q->lock);
}

static void queue_start(struct blk_queue *q, struct vdk_virtq *vq, bool fresh)
{
	pthread_mutex_lock(&q->lock);
	q->vq = vq;
	q->stopping = false;
	if (fresh)
		q->broken = false;
	pthread_mutex_unlock(&q->lock);
}
/* Empty the completion eventfd (non-blocking). */
static void drain_eventfd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

/* ---- device ops -------------------------------------------------------- */

static uint16_t blk_num_queues(void *dev)
{
	return ((struct vdk_blk *)dev)->num_queues;
}

static uint16_t blk_queue_max_size(void *dev, uint16_t index)
{
	(void)index;
	return ((struct vdk_blk *)dev)->queue_size;
}

static uint64_t blk_features(void *dev)
{
	return ((struct vdk_blk *)dev)->features;
}

static void blk_read_config(void *dev, uint32_t offset, void *data,
			    uint32_t len)
{
	memcpy(data, (const uint8_t *)&((struct vdk_blk *)dev)->config + offset,
	       len);
}

static int blk_activate(void *dev, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_blk *blk = dev;

	blk->mem = mem;
	blk->irq = irq;
	for (uint16_t i = 0; i < blk->num_queues; i++)
		queue_start(&blk->queues[i], queues[i], true);
	vdk_log(VDK_LOG_INFO, MOD, "%s: activated, %u queue(s)", blk->path,
		blk->num_queues);
	return 0;
}

static int blk_reset(void *dev)
{
	struct vdk_blk *blk = dev;

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		queue_stop(&blk->queues[i]);
		blk->queues[i].broken = false;
	}
	blk->mem = NULL;
	blk->irq = NULL;
	return 0;
}

static void blk_queue_notify(void *dev, uint16_t index)
{
	struct vdk_blk *blk = dev;
	struct blk_queue *q;

	if (index >= blk->num_queues)
		return;
	q = &blk->queues[index];
	pthread_mutex_lock(&q->lock);
	vdk_blk_io_kick(q);
	pthread_mutex_unlock(&q->lock);
}

/* Per-queue lifecycle (virtio 1.2 §2.6.1; vhost-user ring start/stop). */
static int blk_start_queue(void *dev, uint16_t index, struct vdk_virtq *vq)
{
	struct vdk_blk *blk = dev;

	queue_start(&blk->queues[index], vq, true);
	blk_queue_notify(blk, index); /* buffers made available before */
	return 0;
}

static struct vdk_virtq *blk_stop_queue(void *dev, uint16_t index)
{
	struct blk_queue *q = &((struct vdk_blk *)dev)->queues[index];
	struct vdk_virtq *vq = q->vq;

	queue_stop(q); /* waits for the requests in flight */
	return vq;
}

/* A queue's io_uring completion eventfd fired (on the loop's thread). */
static void on_completion(void *opaque, int fd, uint32_t events)
{
	struct blk_queue *q = opaque;

	(void)fd;
	(void)events;
	(void)vdk_blk_process_completions(q->blk, q->index);
}

static int blk_attach_loop(void *dev, struct vdk_loop *loop)
{
	struct vdk_blk *blk = dev;
	int ret;

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		ret = vdk_loop_add(loop, blk->queues[i].efd, VDK_LOOP_IN,
				   on_completion, &blk->queues[i]);
		if (ret < 0) {
			while (i--)
				(void)vdk_loop_remove(loop, blk->queues[i].efd);
			return ret;
		}
	}
	blk->loop = loop;
	return 0;
}

static int blk_sleep(void *dev)
{
	struct vdk_blk *blk = dev;

	for (uint16_t i = 0; i < blk->num_queues; i++)
		queue_stop(&blk->queues[i]);
	blk->mem = NULL; /* may be freed before wake() gives the next one */
	return 0;
}

static int blk_wake(void *dev, const struct vdk_mem *mem,
		    struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_blk *blk = dev;

	if (!mem || !queues)
		return 0; /* not active: nothing to resume */
	blk->mem = mem;
	blk->irq = irq;
	for (uint16_t i = 0; i < blk->num_queues; i++) {
		queue_start(&blk->queues[i], queues[i], false);
		blk_queue_notify(blk, i); /* buffers made available meanwhile */
	}
	return 0;
}

/*
 * Snapshot (device asleep, so nothing is in flight): what the restored
 * device must agree on, and the counters. The image itself is the caller's
 * to preserve.
 */
static const char *const snap_keys[] = {
	"capacity",	 "read_only", "num_queues",   "queue_size",
	"blk_size",	 "reads",     "writes",	      "flushes",
	"get_ids",	 "discards",  "write_zeroes", "bytes_read",
	"bytes_written", "io_errors", "unsupported",  "malformed",
};
#define SNAP_KEYS  (sizeof(snap_keys) / sizeof(snap_keys[0]))
#define SNAP_STATS 5 /* index of the first counter */

static void snap_values(struct vdk_blk *blk, uint64_t v[SNAP_KEYS])
{
	struct vdk_blk_stats s = vdk_blk_stats(blk);
	const uint64_t vals[SNAP_KEYS] = {
		blk->capacity,	 blk->read_only, blk->num_queues,
		blk->queue_size, blk->blk_size,	 s.reads,
		s.writes,	 s.flushes,	 s.get_ids,
		s.discards,	 s.write_zeroes, s.bytes_read,
		s.bytes_written, s.io_errors,	 s.unsupported,
		s.malformed,
	};

	memcpy(v, vals, sizeof(vals));
}

static int blk_snapshot_item(void *dev, cbor_item_t **out)
{
	uint64_t v[SNAP_KEYS];
	cbor_item_t *map = cbor_new_definite_map(SNAP_KEYS);

	if (!map)
		return -ENOMEM;
	snap_values(dev, v);
	/* Fixed 8-byte integers: the format of version 1. */
	for (size_t i = 0; i < SNAP_KEYS; i++) {
		if (!vdk_snapshot_put(map, snap_keys[i],
				      cbor_build_uint64(v[i]))) {
			cbor_decref(&map);
			return -ENOMEM;
		}
	}
	*out = map;
	return 0;
}

static int blk_restore_item(void *dev, const cbor_item_t *item)
{
	struct vdk_blk *blk = dev;
	uint64_t mine[SNAP_KEYS], got[SNAP_KEYS];
	bool seen[SNAP_KEYS] = {false};
	struct cbor_pair *pairs;

	if (!cbor_isa_map((cbor_item_t *)item) ||
	    !cbor_map_is_definite((cbor_item_t *)item))
		return -EINVAL;
	pairs = cbor_map_handle((cbor_item_t *)item);
	for (size_t i = 0; i < cbor_map_size((cbor_item_t *)item); i++) {
		cbor_item_t *k = pairs[i].key, *val = pairs[i].value;

		if (!cbor_isa_string(k) || !cbor_string_is_definite(k) ||
		    !cbor_isa_uint(val))
			return -EINVAL;
		for (size_t j = 0; j < SNAP_KEYS; j++) {
			if (vdk_snapshot_str_eq(k, snap_keys[j])) {
				got[j] = cbor_get_int(val);
				seen[j] = true;
			}
		}
	}
	snap_values(blk, mine);
	for (size_t j = 0; j < SNAP_KEYS; j++) {
		if (!seen[j])
			return -EINVAL;
		if (j < SNAP_STATS && got[j] != mine[j]) {
			vdk_log(VDK_LOG_ERROR, MOD,
				"%s: snapshot %s %llu, device has %llu",
				blk->path, snap_keys[j],
				(unsigned long long)got[j],
				(unsigned long long)mine[j]);
			return -EINVAL;
		}
	}
	/* The counters go to queue 0; the others start from zero. */
	for (uint16_t i = 0; i < blk->num_queues; i++)
		memset(&blk->queues[i].stats, 0, sizeof(blk->queues[i].stats));
	memcpy(&blk->queues[0].stats, &got[SNAP_STATS],
	       sizeof(blk->queues[0].stats));
	return 0;
}

static void blk_destroy(void *dev)
{
	struct vdk_blk *blk = dev;

	for (uint16_t i = 0; blk->loop && i < blk->num_queues; i++)
		(void)vdk_loop_remove(blk->loop, blk->queues[i].efd);
	for (uint16_t i = 0; i < blk->num_queues; i++) {
		struct blk_queue *q = &blk->queues[i];

		if (q->ring_ok) {
			/* nothing may be in flight when the ring goes away */
			pthread_mutex_lock(&q->lock);
			(void)vdk_blk_io_wait_idle(q);
			pthread_mutex_unlock(&q->lock);
			io_uring_queue_exit(&q->ring);
		}
		if (q->efd >= 0)
			close(q->efd);
		free(q->reqs);
		free(q->free_ids);
		free(q->iov_pool);
		pthread_mutex_destroy(&q->lock);
	}
	if (blk->fd >= 0)
		close(blk->fd);
	if (blk->fd_buffered >= 0)
		close(blk->fd_buffered);
	free(blk->zero_buf);
	free(blk->path);
	free(blk);
}

VDK_SNAPSHOT_BYTES_OPS(blk)

static const struct vdk_device_ops blk_ops = {
	.device_type = VIRTIO_ID_BLOCK,
	.name = "blk",
	.num_queues = blk_num_queues,
	.queue_max_size = blk_queue_max_size,
	.features = blk_features,
	.read_config = blk_read_config,
	.config_size = VDK_BLK_CONFIG_SIZE,
	.activate = blk_activate,
	.reset = blk_reset,
	.queue_notify = blk_queue_notify,
	.sleep = blk_sleep,
	.wake = blk_wake,
	.snapshot = blk_snapshot,
	.restore = blk_restore,
	.destroy = blk_destroy,
	.start_queue = blk_start_queue,
	.stop_queue = blk_stop_queue,
	.attach_loop = blk_attach_loop,
};

/* ---- construction ------------------------------------------------------ */

static int queue_init(struct vdk_blk *blk, uint16_t index)
{
	struct blk_queue *q = &blk->queues[index];
	struct io_uring_params p = {0};
	uint32_t qs = blk->queue_size;
	int ret;

	q->blk = blk;
	q->index = index;
	q->efd = -1;
	q->rl = (struct vdk_ratelimit)VDK_RATELIMIT_INIT;
	pthread_mutex_init(&q->lock, NULL);
	/* A chain has at most queue_size descriptors (§2.7.5.3.1); allow
	 * each to be split once at a guest memory region boundary. */
	q->iov_cap = 2 * qs + 8;
	q->reqs = calloc(qs, sizeof(*q->reqs));
	q->free_ids = calloc(qs, sizeof(*q->free_ids));
	q->iov_pool = calloc((size_t)BATCH * q->iov_cap, sizeof(struct iovec));
	if (!q->reqs || !q->free_ids || !q->iov_pool)
		return -ENOMEM;
	for (uint32_t i = 0; i < qs; i++)
		q->free_ids[i] = (uint16_t)(qs - 1 - i);
	q->nfree = qs;

	/* One thread submits and reaps, and enters the kernel often: let
	 * completions (task work, e.g. from io-wq workers) wait for its next
	 * system call instead of interrupting it. Linux >= 5.19. */
	if (blk->single_thread)
		p.flags = IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(2 * qs, &q->ring, &p);
	if (ret == -EINVAL && p.flags) {
		p = (struct io_uring_params){0};
		ret = io_uring_queue_init_params(2 * qs, &q->ring, &p);
	}
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: io_uring_queue_init: %s",
			blk->path, strerror(-ret));
		return ret;
	}
	q->ring_ok = true;
	if (!(p.features & IORING_FEAT_SUBMIT_STABLE) ||
	    !(p.features & IORING_FEAT_NODROP)) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s: io_uring lacks SUBMIT_STABLE/NODROP (kernel too "
			"old)",
			blk->path);
		return -EOPNOTSUPP;
	}
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, MOD, "%s: eventfd: %s", blk->path,
			strerror(errno));
		return ret;
	}
	ret = io_uring_register_eventfd(&q->ring, q->efd);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: io_uring_register_eventfd: %s",
			blk->path, strerror(-ret));
		return ret;
	}
	return 0;
}

/* The direct-I/O alignment of the image: statx() STATX_DIOALIGN where the
 * file system reports it, else the logical block size. */
static void dio_align(struct vdk_blk *blk)
{
	struct statx sx;

	blk->dio_mem_align = blk->blk_size;
	blk->dio_offset_align = blk->blk_size;
	if (statx(blk->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_mem_align &&
	    sx.stx_dio_offset_align) {
		blk->dio_mem_align = sx.stx_dio_mem_align;
		blk->dio_offset_align = sx.stx_dio_offset_align;
	}
	/* Offsets are whole sectors anyway, and the checks use masks. */
	if (blk->dio_offset_align < SECTOR_SIZE)
		blk->dio_offset_align = SECTOR_SIZE;
	if (blk->dio_mem_align & (blk->dio_mem_align - 1))
		blk->dio_mem_align = 4096;
	if (blk->dio_offset_align & (blk->dio_offset_align - 1))
		blk->dio_offset_align = 4096;
}

/*
 * Decide how IN/OUT are issued (enum vdk_blk_io_mode). AUTO: a read with
 * RWF_NOWAIT that fails with EOPNOTSUPP means the file has no FMODE_NOWAIT,
 * and io_uring would hand every read and write to a worker thread. If the
 * file also lives in memory (tmpfs, ramfs), where a read or write never
 * waits for a device, do them inline instead. Any other answer (data,
 * EAGAIN, end of file) means io_uring can try them inline itself; and on a
 * file system without NOWAIT that may wait (NFS, FUSE), the workers at
 * least let requests overlap.
 */
static int choose_mode(struct vdk_blk *blk, enum vdk_blk_io_mode mode)
{
	struct statfs fs;
	void *buf;
	ssize_t n;
	int err;

	if (mode == VDK_BLK_IO_ASYNC || mode == VDK_BLK_IO_SYNC) {
		blk->sync_rw = mode == VDK_BLK_IO_SYNC;
		return 0;
	}
	if (mode != VDK_BLK_IO_AUTO) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: unknown io_mode %d", blk->path,
			(int)mode);
		return -EINVAL;
	}
	/* 4096 bytes at 4096: aligned for O_DIRECT too */
	if (posix_memalign(&buf, 4096, 4096))
		return -ENOMEM;
	n = preadv2(blk->fd, &(struct iovec){buf, 4096}, 1, 0, RWF_NOWAIT);
	err = n < 0 ? errno : 0;
	free(buf);
	if (fstatfs(blk->fd, &fs) < 0)
		fs.f_type = 0;
	blk->sync_rw = err == EOPNOTSUPP &&
		       (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC);
	vdk_log(VDK_LOG_INFO, MOD,
		"%s: RWF_NOWAIT %s, file system %#llx: %s reads and writes",
		blk->path, err ? strerror(err) : "works",
		(unsigned long long)fs.f_type,
		blk->sync_rw ? "synchronous" : "io_uring");
	return 0;
}

/* Open the image and find its size in bytes and logical block size. */
static int open_image(struct vdk_blk *blk, uint64_t *size)
{
	int flags = (blk->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int ret;

	blk->fd = open(blk->path, flags | (blk->direct ? O_DIRECT : 0));
	if (blk->fd < 0 && blk->direct && errno == EINVAL) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: O_DIRECT not supported",
			blk->path);
		return -EINVAL;
	}
	if (blk->fd >= 0 && blk->direct) {
		blk->fd_buffered = open(blk->path, flags);
		if (blk->fd_buffered < 0) {
			close(blk->fd);
			blk->fd = -1;
		}
	}
	if (blk->fd < 0) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, MOD, "%s: open: %s", blk->path,
			strerror(errno));
		return ret;
	}
	if (fstat(blk->fd, &st) < 0) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, MOD, "%s: fstat: %s", blk->path,
			strerror(errno));
		return ret;
	}
	blk->blk_size = SECTOR_SIZE;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (!S_ISBLK(st.st_mode)) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s: neither a regular file nor a block device",
			blk->path);
		return -ENOTBLK;
	}
	int lbs = 0;
	if (ioctl(blk->fd, BLKGETSIZE64, size) < 0 ||
	    ioctl(blk->fd, BLKSSZGET, &lbs) < 0) {
		ret = -errno;
		vdk_log(VDK_LOG_ERROR, MOD, "%s: block device ioctl: %s",
			blk->path, strerror(errno));
		return ret;
	}
	if (lbs >= (int)SECTOR_SIZE && lbs <= 65536 && !(lbs & (lbs - 1)))
		blk->blk_size = (uint32_t)lbs;
	return 0;
}

static void fill_config(struct vdk_blk *blk)
{
	struct virtio_blk_config *c = &blk->config;

	blk->features = (1ull << VIRTIO_F_VERSION_1) |
			(1ull << VIRTIO_RING_F_INDIRECT_DESC) |
			(1ull << VIRTIO_RING_F_EVENT_IDX) |
			(1ull << VIRTIO_BLK_F_SIZE_MAX) |
			(1ull << VIRTIO_BLK_F_SEG_MAX) |
			(1ull << VIRTIO_BLK_F_BLK_SIZE) |
			(1ull << VIRTIO_BLK_F_FLUSH);
	if (blk->num_queues > 1)
		blk->features |= 1ull << VIRTIO_BLK_F_MQ;
	if (blk->read_only)
		blk->features |= 1ull << VIRTIO_BLK_F_RO;
	else
		blk->features |= (1ull << VIRTIO_BLK_F_DISCARD) |
				 (1ull << VIRTIO_BLK_F_WRITE_ZEROES);

	memset(c, 0, sizeof(*c));
	c->capacity = htole64(blk->capacity);
	c->size_max = htole32(VDK_BLK_SIZE_MAX);
	c->seg_max = htole32(blk->queue_size - 2u);
	c->blk_size = htole32(blk->blk_size);
	c->num_queues = htole16(blk->num_queues);
	if (!blk->read_only) {
		c->max_discard_sectors = htole32(VDK_BLK_MAX_DISCARD_SECTORS);
		c->max_discard_seg = htole32(VDK_BLK_MAX_DISCARD_SEG);
		c->discard_sector_alignment =
			htole32(blk->blk_size >> SECTOR_SHIFT);
		c->max_write_zeroes_sectors =
			htole32(VDK_BLK_MAX_WRITE_ZEROES_SECTORS);
		c->max_write_zeroes_seg = htole32(VDK_BLK_MAX_WRITE_ZEROES_SEG);
		c->write_zeroes_may_unmap = 1;
	}
}

static int check_config(const struct vdk_blk_config *cfg, uint16_t nq,
			uint16_t qs)
{
	if (!cfg || !cfg->path) {
		vdk_log(VDK_LOG_ERROR, MOD, "no image path");
		return -EINVAL;
	}
	if (cfg->serial && strlen(cfg->serial) > VIRTIO_BLK_ID_BYTES) {
		vdk_log(VDK_LOG_ERROR, MOD, "%s: serial longer than %d bytes",
			cfg->path, VIRTIO_BLK_ID_BYTES);
		return -EINVAL;
	}
	if (nq > VDK_BLK_MAX_QUEUES || qs < 4 || qs > VDK_BLK_MAX_QUEUE_SIZE ||
	    (qs & (qs - 1))) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s: %u queues of size %u (1..%d queues, size a power "
			"of two 4..%d)",
			cfg->path, nq, qs, VDK_BLK_MAX_QUEUES,
			VDK_BLK_MAX_QUEUE_SIZE);
		return -EINVAL;
	}
	return 0;
}

static int blk_create(struct vdk_blk **out, const struct vdk_blk_config *cfg)
{
	uint16_t nq = cfg && cfg->num_queues ? cfg->num_queues : 1;
	uint16_t qs = cfg && cfg->queue_size ? cfg->queue_size
					     : VDK_BLK_DEFAULT_QUEUE_SIZE;
	struct vdk_blk *blk;
	uint64_t size = 0;
	int ret;

	ret = check_config(cfg, nq, qs);
	if (ret < 0)
		return ret;
	blk = calloc(1, sizeof(*blk) + nq * sizeof(struct blk_queue));
	if (!blk)
		return -ENOMEM;
	blk->fd = -1;
	blk->fd_buffered = -1;
	blk->direct = cfg->direct;
	blk->single_thread = cfg->single_thread;
	blk->num_queues = nq;
	blk->queue_size = qs;
	blk->read_only = cfg->read_only;
	if (cfg->serial)
		memcpy(blk->serial, cfg->serial, strlen(cfg->serial));
	for (uint16_t i = 0; i < nq; i++)
		blk->queues[i].efd = -1;
	blk->path = strdup(cfg->path);
	blk->zero_buf = calloc(1, ZERO_CHUNK);
	if (!blk->path || !blk->zero_buf) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < ZERO_IOVS; i++)
		blk->zero_iov[i] = (struct iovec){blk->zero_buf, ZERO_CHUNK};

	ret = open_image(blk, &size);
	if (ret < 0)
		goto fail;
	dio_align(blk);
	ret = choose_mode(blk, cfg->io_mode);
	if (ret < 0)
		goto fail;
	if (size % SECTOR_SIZE)
		vdk_log(VDK_LOG_WARN, MOD,
			"%s: size %llu is not a multiple of 512; the last %llu "
			"bytes are not reachable",
			blk->path, (unsigned long long)size,
			(unsigned long long)(size % SECTOR_SIZE));
	blk->capacity = size >> SECTOR_SHIFT;
	for (uint16_t i = 0; i < nq; i++) {
		ret = queue_init(blk, i);
		if (ret < 0)
			goto fail;
	}
	fill_config(blk);
	ret = vdk_device_init(&blk->dev, &blk_ops, blk);
	if (ret < 0)
		goto fail;
	vdk_log(VDK_LOG_INFO, MOD,
		"%s: %llu sectors, block size %u, %u queue(s) of %u%s%s%s",
		blk->path, (unsigned long long)blk->capacity, blk->blk_size, nq,
		qs, blk->read_only ? ", read-only" : "",
		blk->direct ? ", O_DIRECT" : "",
		blk->sync_rw ? ", synchronous reads/writes" : "");
	*out = blk;
	return 0;
fail:
	blk_destroy(blk);
	return ret;
}

struct vdk_blk *vdk_blk_new(const struct vdk_blk_config *cfg, int *err)
{
	struct vdk_blk *x = NULL;
	int ret = blk_create(&x, cfg);

	if (err)
		*err = ret < 0 ? ret : 0;
	return ret < 0 ? NULL : x;
}

void vdk_blk_free(struct vdk_blk *blk)
{
	if (blk)
		vdk_device_fini(&blk->dev);
}

struct vdk_device *vdk_blk_device(struct vdk_blk *blk)
{
	return &blk->dev;
}

struct vdk_blk *vdk_blk_from_device(struct vdk_device *dev)
{
	return dev && dev->ops == &blk_ops ? dev->impl : NULL;
}

uint64_t vdk_blk_capacity(const struct vdk_blk *blk)
{
	return blk->capacity;
}

int vdk_blk_completion_fd(const struct vdk_blk *blk, uint16_t queue)
{
	if (queue >= blk->num_queues)
		return -EINVAL;
	return blk->queues[queue].efd;
}

int vdk_blk_process_completions(struct vdk_blk *blk, uint16_t queue)
{
	struct blk_queue *q;
	int done;

	if (queue >= blk->num_queues)
		return -EINVAL;
	q = &blk->queues[queue];
	pthread_mutex_lock(&q->lock);
	/* Read the counter first: a completion arriving after this read
	 * makes the fd readable again, so none is left unnoticed. */
	drain_eventfd(q->efd);
	done = vdk_blk_io_process(q);
	pthread_mutex_unlock(&q->lock);
	return done;
}

int vdk_blk_wait_idle(struct vdk_blk *blk)
{
	int total = 0;

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		struct blk_queue *q = &blk->queues[i];
		int ret;

		pthread_mutex_lock(&q->lock);
		ret = vdk_blk_io_wait_idle(q);
		pthread_mutex_unlock(&q->lock);
		if (ret < 0)
			return ret;
		total += ret;
	}
	return total;
}

uint32_t vdk_blk_in_flight(struct vdk_blk *blk)
{
	uint32_t n = 0;

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		pthread_mutex_lock(&blk->queues[i].lock);
		n += blk->queues[i].in_flight;
		pthread_mutex_unlock(&blk->queues[i].lock);
	}
	return n;
}

int vdk_blk_queue_stats(struct vdk_blk *blk, uint16_t queue,
			struct vdk_blk_queue_stats *out)
{
	struct blk_queue *q;

	if (queue >= blk->num_queues)
		return -ERANGE;
	q = &blk->queues[queue];
	pthread_mutex_lock(&q->lock);
	*out = (struct vdk_blk_queue_stats){
		.req = q->stats,
		.in_flight = q->in_flight,
		.started = q->vq != NULL,
	};
	if (q->vq)
		out->vq = q->vq->stats;
	memcpy(out->latency, q->latency, sizeof(out->latency));
	pthread_mutex_unlock(&q->lock);
	return 0;
}

struct vdk_blk_stats vdk_blk_stats(struct vdk_blk *blk)
{
	struct vdk_blk_stats sum = {0};

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		struct blk_queue *q = &blk->queues[i];

		pthread_mutex_lock(&q->lock);
		const uint64_t *src = (const uint64_t *)&q->stats;
		uint64_t *dst = (uint64_t *)&sum;
		for (size_t j = 0; j < sizeof(sum) / sizeof(uint64_t); j++)
			dst[j] += src[j];
		pthread_mutex_unlock(&q->lock);
	}
	return sum;
}

struct vdk_blk_io_info vdk_blk_io_info(struct vdk_blk *blk)
{
	struct vdk_blk_io_info info = {
		.mode = blk->sync_rw ? VDK_BLK_IO_SYNC : VDK_BLK_IO_ASYNC,
		.direct = blk->direct,
		.dio_mem_align = blk->dio_mem_align,
		.dio_offset_align = blk->dio_offset_align,
	};

	for (uint16_t i = 0; i < blk->num_queues; i++) {
		struct blk_queue *q = &blk->queues[i];

		pthread_mutex_lock(&q->lock);
		info.sync_rw += q->sync_rw;
		info.async_rw += q->async_rw;
		info.buffered_rw += q->buffered_rw;
		pthread_mutex_unlock(&q->lock);
	}
	return info;
}
