/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-rng (virtio 1.2 §5.4): fills the device-writable buffers the
 * driver puts on requestq with bytes from getrandom(2).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/loop.h>
#include <vdk/virtq.h>

#include "../snapshot.h"

#define MOD "rng"

struct vdk_rng {
	struct vdk_device vdev;
	uint16_t queue_max_size;
	uint32_t max_bytes; /* per request; 0 = unlimited */

	/* activation; NULL while not active or asleep */
	struct vdk_interrupt *irq;
	struct vdk_virtq *requestq;
	bool running; /* active and awake */
	bool broken;  /* reported DEVICE_NEEDS_RESET; cleared by reset */
	struct vdk_ratelimit log_rl;

	struct vdk_rng_stats stats;
	struct iovec *iov; /* 2 * queue_max_size entries */
	uint32_t iov_cap;
	/* readable while a wake-up stopped at its budget (vdk_rng_resume_fd) */
	int resume_fd;
	bool yielded;
	struct vdk_loop *loop; /* resume_fd is on it (attach_loop) */
	pthread_mutex_t lock;  /* the ops and on_resume() */
};

/*
 * Fill [@p, @p + @len) from the kernel's CSPRNG. getrandom(2) returns at most
 * 32 MiB per call and may be interrupted by a signal; loop until done.
 * Return: bytes filled (less than @len only on an unexpected error).
 */
static size_t fill_random(struct vdk_rng *rng, uint8_t *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			VDK_LOG_RL(&rng->log_rl, VDK_LOG_ERROR, MOD,
				   "getrandom: %s", strerror(errno));
			break;
		}
		done += (size_t)n;
	}
	return done;
}

/* Fill the chain's writable part (up to max_bytes); return bytes written. */
static uint32_t rng_fill_chain(struct vdk_rng *rng,
			       const struct vdk_virtq_chain *c)
{
	uint32_t budget = c->writable_len, written = 0;

	if (rng->max_bytes && budget > rng->max_bytes)
		budget = rng->max_bytes;
	for (uint32_t i = 0; i < c->num_writable && written < budget; i++) {
		const struct iovec *v = &c->iov[c->num_readable + i];
		size_t want = v->iov_len;
		size_t got;

		if (want > budget - written)
			want = budget - written;
		got = fill_random(rng, v->iov_base, want);
		written += (uint32_t)got;
		if (got < want)
			break;
	}
	return written;
}

static void rng_report_error(struct vdk_rng *rng)
{
	if (rng->broken)
		return;
	rng->broken = true;
	VDK_LOG_RL(&rng->log_rl, VDK_LOG_WARN, MOD, "requestq stopped: %s",
		   vdk_virtq_strerror(vdk_virtq_error(rng->requestq)));
	vdk_interrupt_needs_reset(rng->irq);
}

/* Serve the requests available now, at most *@budget of them; false if the
 * queue broke. */
static bool rng_drain(struct vdk_rng *rng, struct vdk_virtq *q, bool *returned,
		      uint32_t *budget)
{
	struct vdk_virtq_chain chain;
	int ret;

	while (*budget > 0) {
		chain = (struct vdk_virtq_chain){.iov = rng->iov,
						 .iov_cap = rng->iov_cap};
		ret = vdk_virtq_pop(q, &chain);
		if (ret == 0)
			return true;
		if (ret < 0) {
			rng_report_error(rng);
			return false;
		}
		uint32_t written = rng_fill_chain(rng, &chain);

		if (vdk_virtq_add_used(q, chain.head, written) < 0) {
			rng_report_error(rng);
			return false;
		}
		rng->stats.requests++;
		rng->stats.bytes += written;
		*returned = true;
		(*budget)--;
	}
	return true;
}

/* Empty the resume eventfd (non-blocking, ours). */
static void rng_resume_clear(struct vdk_rng *rng)
{
	uint64_t v;

	rng->yielded = false;
	(void)!read(rng->resume_fd, &v, sizeof(v));
}

/*
 * Serve the available requests (virtio 1.2 §5.4.6), at most a queue's
 * worth per wake-up: a driver that refills the ring as fast as it is
 * served must not keep the calling thread (which may also answer a
 * vhost-user socket or other devices) forever. Past the budget the device
 * stops with notifications still suppressed and makes vdk_rng_resume_fd()
 * readable; the program then calls vdk_device_queue_notify() again.
 * Otherwise available buffer notifications are asked for again before
 * returning (§2.7.10: with VIRTIO_RING_F_EVENT_IDX the driver only kicks
 * once its available index passes avail_event, which re-arming moves);
 * buffers that slipped in before the re-arm was seen are served first.
 */
static void rng_process(struct vdk_rng *rng)
{
	struct vdk_virtq *q = rng->requestq;
	uint32_t budget = rng->queue_max_size;
	bool returned = false;

	if (rng->yielded)
		rng_resume_clear(rng);
	if (!rng->running || !q || rng->broken)
		return;
	do {
		vdk_virtq_enable_notification(q, false);
		if (!rng_drain(rng, q, &returned, &budget))
			break;
		if (budget == 0) {
			const uint64_t one = 1;

			rng->yielded = true;
			(void)!write(rng->resume_fd, &one, sizeof(one));
			break;
		}
	} while (vdk_virtq_enable_notification(q, true));
	if (returned && vdk_virtq_should_notify(q))
		vdk_interrupt_signal_used_queue(rng->irq, VDK_RNG_REQUESTQ);
}

/* ---- ops -------------------------------------------------------------- */

static uint16_t rng_num_queues(void *dev)
{
	(void)dev;
	return 1;
}

static uint16_t rng_queue_max_size(void *dev, uint16_t index)
{
	(void)index;
	return ((struct vdk_rng *)dev)->queue_max_size;
}

static uint64_t rng_features(void *dev)
{
	(void)dev;
	/* §5.4.3: no device-specific bits; the ring features are the
	 * virtqueue's (§2.7.5.3 indirect descriptors, §2.7.10 event index). */
	return (1ull << VIRTIO_F_VERSION_1) |
	       (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
	       (1ull << VIRTIO_RING_F_EVENT_IDX);
}

static int rng_activate_locked(void *dev, const struct vdk_mem *mem,
			       struct vdk_interrupt *irq,
			       struct vdk_virtq **queues)
{
	struct vdk_rng *rng = dev;

	(void)mem; /* reached through the queue */
	rng->irq = irq;
	rng->requestq = queues[VDK_RNG_REQUESTQ];
	rng->running = true;
	rng->broken = false;
	/* Requests queued before DRIVER_OK. */
	rng_process(rng);
	return 0;
}

static int rng_reset_locked(void *dev)
{
	struct vdk_rng *rng = dev;

	rng->running = false;
	rng->broken = false;
	rng->irq = NULL;
	rng->requestq = NULL;
	rng_resume_clear(rng);
	return 0;
}

static void rng_queue_notify_locked(void *dev, uint16_t index)
{
	if (index == VDK_RNG_REQUESTQ)
		rng_process(dev);
}

static int rng_start_queue_locked(void *dev, uint16_t index,
				  struct vdk_virtq *q)
{
	struct vdk_rng *rng = dev;

	(void)index; /* the framework checked it: 0 */
	rng->requestq = q;
	rng->broken = false; /* a fresh queue (virtio 1.2 §2.6.1) */
	rng_process(rng);    /* buffers made available before */
	return 0;
}

static struct vdk_virtq *rng_stop_queue_locked(void *dev, uint16_t index)
{
	struct vdk_rng *rng = dev;
	struct vdk_virtq *q = rng->requestq;

	(void)index;
	/* Nothing runs between calls: stopping is forgetting the queue. */
	rng->requestq = NULL;
	return q;
}

static int rng_sleep_locked(void *dev)
{
	struct vdk_rng *rng = dev;

	/* Nothing runs between calls: stopping is forgetting the queue. */
	rng->running = false;
	rng->irq = NULL;
	rng->requestq = NULL;
	rng_resume_clear(rng);
	return 0;
}

static int rng_wake_locked(void *dev, const struct vdk_mem *mem,
			   struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	struct vdk_rng *rng = dev;

	if (!mem)
		return 0; /* not active */
	rng->irq = irq;
	rng->requestq = queues[VDK_RNG_REQUESTQ];
	rng->running = true;
	/* Notifications sent while asleep were dropped: catch up. */
	rng_process(rng);
	return 0;
}

/* The ops the framework calls, under the device's lock: the resume fd's
 * callback (attach_loop) runs on the host's loop thread, while the host may
 * call these from another (vdk-vmm: a vCPU resetting the device). */
#define RNG_LOCKED(expr)                                                       \
	({                                                                     \
		struct vdk_rng *rng_ = dev;                                    \
		__typeof__(expr) r_;                                           \
		pthread_mutex_lock(&rng_->lock);                               \
		r_ = (expr);                                                   \
		pthread_mutex_unlock(&rng_->lock);                             \
		r_;                                                            \
	})

static int rng_activate(void *dev, const struct vdk_mem *mem,
			struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	return RNG_LOCKED(rng_activate_locked(dev, mem, irq, queues));
}

static int rng_reset(void *dev)
{
	return RNG_LOCKED(rng_reset_locked(dev));
}

static void rng_queue_notify(void *dev, uint16_t index)
{
	struct vdk_rng *rng = dev;

	pthread_mutex_lock(&rng->lock);
	rng_queue_notify_locked(dev, index);
	pthread_mutex_unlock(&rng->lock);
}

static int rng_start_queue(void *dev, uint16_t index, struct vdk_virtq *q)
{
	return RNG_LOCKED(rng_start_queue_locked(dev, index, q));
}

static struct vdk_virtq *rng_stop_queue(void *dev, uint16_t index)
{
	return RNG_LOCKED(rng_stop_queue_locked(dev, index));
}

static int rng_sleep(void *dev)
{
	return RNG_LOCKED(rng_sleep_locked(dev));
}

static int rng_wake(void *dev, const struct vdk_mem *mem,
		    struct vdk_interrupt *irq, struct vdk_virtq **queues)
{
	return RNG_LOCKED(rng_wake_locked(dev, mem, irq, queues));
}

/* The resume eventfd fired: a wake-up stopped at its budget with requests
 * left; serve on (the device registers this fd itself, attach_loop). */
static void on_resume(void *opaque, int fd, uint32_t events)
{
	struct vdk_rng *rng = opaque;

	(void)fd;
	(void)events;
	pthread_mutex_lock(&rng->lock);
	rng_process(rng); /* empties the eventfd */
	pthread_mutex_unlock(&rng->lock);
}

static int rng_attach_loop(void *dev, struct vdk_loop *loop)
{
	struct vdk_rng *rng = dev;
	int r = vdk_loop_add(loop, rng->resume_fd, VDK_LOOP_IN, on_resume, rng);

	if (r == 0)
		rng->loop = loop;
	return r;
}

/* Snapshot keys, in serialisation order. */
enum { SNAP_REQUESTS, SNAP_BYTES, SNAP_KEYS };
static const char *const snap_keys[SNAP_KEYS] = {
	[SNAP_REQUESTS] = "requests",
	[SNAP_BYTES] = "bytes",
};

static int rng_snapshot_item(void *dev, cbor_item_t **out)
{
	struct vdk_rng *rng = dev;
	cbor_item_t *m = cbor_new_definite_map(SNAP_KEYS);

	/* Fixed 8-byte integers: the format of version 1. */
	if (!m ||
	    !vdk_snapshot_put(m, snap_keys[SNAP_REQUESTS],
			      cbor_build_uint64(rng->stats.requests)) ||
	    !vdk_snapshot_put(m, snap_keys[SNAP_BYTES],
			      cbor_build_uint64(rng->stats.bytes))) {
		if (m)
			cbor_decref(&m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

static int rng_restore_item(void *dev, const cbor_item_t *item)
{
	struct vdk_rng *rng = dev;
	const cbor_item_t *vals[SNAP_KEYS];
	struct vdk_rng_stats st;

	/* Exactly the two counters: no other key, none twice. */
	if (vdk_snapshot_map_split(item, snap_keys, SNAP_KEYS, vals) < 0 ||
	    !vdk_snapshot_uint_value(vals[SNAP_REQUESTS], UINT64_MAX,
				     &st.requests) ||
	    !vdk_snapshot_uint_value(vals[SNAP_BYTES], UINT64_MAX, &st.bytes))
		return -EINVAL;
	rng->stats = st;
	return 0;
}

static void rng_destroy(void *dev)
{
	struct vdk_rng *rng = dev;

	if (rng->loop)
		(void)vdk_loop_remove(rng->loop, rng->resume_fd);
	if (rng->resume_fd >= 0)
		close(rng->resume_fd);
	pthread_mutex_destroy(&rng->lock);
	free(rng->iov);
	free(rng);
}

VDK_SNAPSHOT_BYTES_OPS(rng)

static const struct vdk_device_ops rng_ops = {
	.device_type = VIRTIO_ID_RNG,
	.name = "rng",
	.num_queues = rng_num_queues,
	.queue_max_size = rng_queue_max_size,
	.features = rng_features,
	.config_size = 0, /* §5.4.4: no configuration */
	.activate = rng_activate,
	.reset = rng_reset,
	.queue_notify = rng_queue_notify,
	.sleep = rng_sleep,
	.wake = rng_wake,
	.snapshot = rng_snapshot,
	.restore = rng_restore,
	.destroy = rng_destroy,
	.start_queue = rng_start_queue,
	.stop_queue = rng_stop_queue,
	.attach_loop = rng_attach_loop,
};

/* ---- public API --------------------------------------------------------- */

static int rng_create(struct vdk_rng **out, const struct vdk_rng_config *cfg)
{
	struct vdk_ratelimit rl = VDK_RATELIMIT_INIT;
	uint16_t qmax = VDK_RNG_DEFAULT_QUEUE_SIZE;
	struct vdk_rng *rng;
	int ret;

	*out = NULL;
	if (cfg && cfg->queue_max_size)
		qmax = cfg->queue_max_size;
	if (qmax & (qmax - 1)) {
		vdk_log(VDK_LOG_ERROR, MOD, "queue size %u: not a power of two",
			qmax);
		return -EINVAL;
	}
	rng = calloc(1, sizeof(*rng));
	if (!rng)
		return -ENOMEM;
	rng->queue_max_size = qmax;
	rng->max_bytes = cfg ? cfg->max_bytes_per_request : 0;
	rng->log_rl = rl;
	pthread_mutex_init(&rng->lock, NULL);
	/* A buffer that spans two memory regions takes two iovecs. */
	rng->iov_cap = 2u * qmax;
	rng->iov = calloc(rng->iov_cap, sizeof(*rng->iov));
	rng->resume_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!rng->iov || rng->resume_fd < 0) {
		ret = rng->iov ? -errno : -ENOMEM;
		rng_destroy(rng);
		return ret;
	}
	ret = vdk_device_init(&rng->vdev, &rng_ops, rng);
	if (ret < 0) {
		rng_destroy(rng);
		return ret;
	}
	*out = rng;
	return 0;
}

struct vdk_rng *vdk_rng_new(const struct vdk_rng_config *cfg, int *err)
{
	struct vdk_rng *x = NULL;
	int ret = rng_create(&x, cfg);

	if (err)
		*err = ret < 0 ? ret : 0;
	return ret < 0 ? NULL : x;
}

void vdk_rng_free(struct vdk_rng *rng)
{
	if (rng)
		vdk_device_fini(&rng->vdev); /* frees rng through destroy */
}

int vdk_rng_resume_fd(const struct vdk_rng *rng)
{
	return rng->resume_fd;
}

struct vdk_device *vdk_rng_device(struct vdk_rng *rng)
{
	return &rng->vdev;
}

struct vdk_rng_stats vdk_rng_stats(const struct vdk_rng *rng)
{
	return rng->stats;
}

bool vdk_rng_queue_stats(const struct vdk_rng *rng, struct vdk_virtq_stats *out)
{
	if (!rng->requestq) {
		*out = (struct vdk_virtq_stats){0};
		return false;
	}
	*out = rng->requestq->stats;
	return true;
}
