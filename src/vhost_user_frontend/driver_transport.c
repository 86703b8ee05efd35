// SPDX-License-Identifier: Apache-2.0
/*
 * A driver-side transport (struct vdk_driver_transport, <vdk/driver.h>) on
 * top of a vhost-user front-end: the code that drives a virtio-mmio device
 * in a guest drives a vhost-user back-end from a plain process, with guest
 * memory shared through a memfd (what libblkio's virtio-blk-vhost-user
 * driver does).
 *
 * The mapping of virtio 1.2 §3.1.1 onto the vhost-user spec ("Starting and
 * stopping rings", "Ring states"):
 *   reset (status 0)      GET_VRING_BASE on each started ring (stops it)
 *   device features       GET_FEATURES, less VHOST_USER_F_PROTOCOL_FEATURES
 *   FEATURES_OK           SET_FEATURES (+ bit 30 when protocol features are
 *                         in use); if the back-end refuses (REPLY_ACK), the
 *                         bit does not stick and begin_init fails
 *   queue_set             SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE 0,
 *                         SET_VRING_CALL
 *   DRIVER_OK             SET_VRING_KICK and SET_VRING_ENABLE 1 on each
 *                         configured ring; a refusal sets NEEDS_RESET
 *   notify                write 1 to the ring's kick eventfd
 *   ack_interrupt         drain the call eventfds
 *   config                GET_CONFIG / SET_CONFIG; no generation
 *
 * Addresses: the driver hands guest-physical addresses to queue_set; they
 * are turned into this process's addresses (the spec's "user addresses")
 * through the memory regions, and the HAL does the reverse for buffers.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include <vdk/log.h>
#include <vdk/vhost_user_frontend.h>

#define MODULE	"vhost-user-driver"
#define PF(bit) (1ull << (bit))

static struct vdk_vhost_user_driver *to_d(void *ctx)
{
	return ctx;
}

/* ---- addresses ------------------------------------------------------------ */

/* This process's address of guest-physical [@gpa, @gpa + @len), or 0. */
static uint64_t gpa_to_ua(const struct vdk_vhost_user_driver *d, uint64_t gpa,
			  uint64_t len)
{
	for (uint32_t i = 0; i < d->nregions; i++) {
		const struct vdk_vhost_user_frontend_region *r = &d->regions[i];
		uint64_t off = gpa - r->gpa;

		if (gpa >= r->gpa && off < r->size && len <= r->size - off)
			return (uint64_t)(uintptr_t)r->addr + off;
	}
	return 0;
}

static uint64_t hal_virt_to_phys(void *opaque, const void *addr, size_t len)
{
	const struct vdk_vhost_user_driver *d = opaque;
	uintptr_t a = (uintptr_t)addr;

	for (uint32_t i = 0; i < d->nregions; i++) {
		const struct vdk_vhost_user_frontend_region *r = &d->regions[i];
		uintptr_t base = (uintptr_t)r->addr;
		uint64_t off = a - base;

		if (a >= base && off < r->size && len <= r->size - off)
			return r->gpa + off;
	}
	return VDK_DRIVER_BAD_GPA;
}

/* ---- rings ------------------------------------------------------------------ */

static void stop_ring(struct vdk_vhost_user_driver *d, uint16_t i)
{
	uint32_t base;
	int ret;

	if (!d->q[i].started)
		return;
	d->q[i].started = false;
	ret = vdk_vhost_user_frontend_get_vring_base(d->fe, i, &base);
	if (ret < 0)
		vdk_log(VDK_LOG_WARN, MODULE, "ring %u: GET_VRING_BASE: %s", i,
			strerror(-ret));
}

static int start_ring(struct vdk_vhost_user_driver *d, uint16_t i)
{
	int ret;

	ret = vdk_vhost_user_frontend_set_vring_kick(d->fe, i, d->q[i].kick_fd);
	if (ret == 0 && d->protocol)
		ret = vdk_vhost_user_frontend_set_vring_enable(d->fe, i, true);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MODULE, "ring %u: start: %s", i,
			strerror(-ret));
		return ret;
	}
	d->q[i].started = true;
	return 0;
}

static void reset(struct vdk_vhost_user_driver *d)
{
	for (uint16_t i = 0; i < d->num_queues; i++) {
		stop_ring(d, i);
		d->q[i].configured = false;
		d->q[i].size = 0;
	}
	d->driver_features = 0;
	d->status = 0;
}

/* ---- transport ops --------------------------------------------------------- */

static uint32_t vu_device_type(void *ctx)
{
	return to_d(ctx)->device_id;
}

static uint64_t vu_read_device_features(void *ctx)
{
	return to_d(ctx)->device_features;
}

static void vu_write_driver_features(void *ctx, uint64_t features)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);

	/* Only what the device offered can be accepted (§2.2). */
	d->driver_features = features & d->device_features;
}

static uint16_t vu_max_queue_size(void *ctx, uint16_t queue)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);

	return queue < d->num_queues ? d->max_queue_size : 0;
}

static void vu_notify(void *ctx, uint16_t queue)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);
	uint64_t one = 1;

	if (queue >= d->num_queues)
		return;
	/* An eventfd write only fails on counter overflow (EAGAIN), when a
	 * kick is pending anyway. */
	(void)!write(d->q[queue].kick_fd, &one, sizeof(one));
}

static uint8_t vu_get_status(void *ctx)
{
	return to_d(ctx)->status;
}

static void features_ok(struct vdk_vhost_user_driver *d, uint8_t *status)
{
	uint64_t f = d->driver_features;
	int ret;

	if (d->protocol)
		f |= PF(VHOST_USER_F_PROTOCOL_FEATURES);
	ret = vdk_vhost_user_frontend_set_features(d->fe, f);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MODULE, "SET_FEATURES %#llx: %s",
			(unsigned long long)f, strerror(-ret));
		*status &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	}
}

static void driver_ok(struct vdk_vhost_user_driver *d, uint8_t *status)
{
	for (uint16_t i = 0; i < d->num_queues; i++) {
		if (!d->q[i].configured || d->q[i].started)
			continue;
		if (start_ring(d, i) < 0) {
			*status |= VIRTIO_CONFIG_S_NEEDS_RESET;
			return;
		}
	}
}

static void vu_set_status(void *ctx, uint8_t status)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);
	uint8_t added = (uint8_t)(status & ~d->status);

	if (status == 0) {
		reset(d);
		return;
	}
	/* Bits only go away through a reset (§2.1); keep NEEDS_RESET. */
	status |= d->status & VIRTIO_CONFIG_S_NEEDS_RESET;
	if ((added & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !(d->status & VIRTIO_CONFIG_S_DRIVER_OK))
		features_ok(d, &status);
	if ((added & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    (status & VIRTIO_CONFIG_S_FEATURES_OK))
		driver_ok(d, &status);
	d->status = status;
}

static int vu_queue_set(void *ctx, uint16_t queue, uint16_t size, uint64_t desc,
			uint64_t driver, uint64_t device)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);
	uint64_t desc_ua, avail_ua, used_ua;
	int ret;

	if (queue >= d->num_queues)
		return -ENOENT;
	if (d->q[queue].configured)
		return -EBUSY;
	if (size == 0 || size > d->max_queue_size)
		return -EINVAL;
	/* Area sizes of a split ring (virtio 1.2 §2.7). */
	desc_ua = gpa_to_ua(d, desc, (uint64_t)16 * size);
	avail_ua = gpa_to_ua(d, driver, 6 + (uint64_t)2 * size);
	used_ua = gpa_to_ua(d, device, 6 + (uint64_t)8 * size);
	if (!desc_ua || !avail_ua || !used_ua)
		return -EINVAL;

	ret = vdk_vhost_user_frontend_set_vring_num(d->fe, queue, size);
	if (ret == 0)
		ret = vdk_vhost_user_frontend_set_vring_addr(
			d->fe, queue, desc_ua, avail_ua, used_ua);
	if (ret == 0)
		ret = vdk_vhost_user_frontend_set_vring_base(d->fe, queue, 0);
	if (ret == 0)
		ret = vdk_vhost_user_frontend_set_vring_call(
			d->fe, queue, d->q[queue].call_fd);
	if (ret < 0) {
		vdk_log(VDK_LOG_ERROR, MODULE, "ring %u: set up: %s", queue,
			strerror(-ret));
		return -EINVAL;
	}
	d->q[queue].size = size;
	d->q[queue].configured = true;
	if (d->status & VIRTIO_CONFIG_S_DRIVER_OK) {
		/* A queue added to a live device starts at once. */
		if (start_ring(d, queue) < 0) {
			d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
			return -EINVAL;
		}
	}
	return 0;
}

static void vu_queue_unset(void *ctx, uint16_t queue)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);

	if (queue >= d->num_queues)
		return;
	stop_ring(d, queue);
	d->q[queue].configured = false;
	d->q[queue].size = 0;
}

static bool vu_queue_used(void *ctx, uint16_t queue)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);

	return queue < d->num_queues && d->q[queue].configured;
}

static uint32_t vu_ack_interrupt(void *ctx)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);
	uint32_t causes = 0;
	uint64_t v;

	for (uint16_t i = 0; i < d->num_queues; i++) {
		if (read(d->q[i].call_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
			causes |= VDK_DRIVER_INT_QUEUE;
	}
	return causes;
}

static uint32_t vu_config_generation(void *ctx)
{
	(void)ctx;
	return 0; /* vhost-user has no configuration generation */
}

static int vu_read_config(void *ctx, uint32_t offset, void *buf, uint32_t len)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);
	uint8_t tmp[VHOST_USER_MAX_CONFIG_SIZE];
	uint32_t end;
	int ret;

	if (__builtin_add_overflow(offset, len, &end))
		return -ERANGE;
	if (len == 0)
		return 0;
	if (end > sizeof(tmp))
		return -ERANGE;
	/* Read from offset 0 as QEMU does: some back-ends (QEMU's own
	 * vhost-user-blk export) ignore the offset field. */
	ret = vdk_vhost_user_frontend_get_config(d->fe, 0, tmp, end);
	if (ret < 0)
		return ret;
	memcpy(buf, tmp + offset, len);
	return 0;
}

static int vu_write_config(void *ctx, uint32_t offset, const void *buf,
			   uint32_t len)
{
	struct vdk_vhost_user_driver *d = to_d(ctx);
	uint32_t end;

	if (__builtin_add_overflow(offset, len, &end))
		return -ERANGE;
	return vdk_vhost_user_frontend_set_config(d->fe, offset, buf, len);
}

const struct vdk_driver_transport_ops vdk_vhost_user_driver_ops = {
	.device_type = vu_device_type,
	.read_device_features = vu_read_device_features,
	.write_driver_features = vu_write_driver_features,
	.max_queue_size = vu_max_queue_size,
	.notify = vu_notify,
	.get_status = vu_get_status,
	.set_status = vu_set_status,
	.queue_set = vu_queue_set,
	.queue_unset = vu_queue_unset,
	.queue_used = vu_queue_used,
	.ack_interrupt = vu_ack_interrupt,
	.config_generation = vu_config_generation,
	.read_config = vu_read_config,
	.write_config = vu_write_config,
};

/* ---- init / fini ------------------------------------------------------------ */

static void close_fds(struct vdk_vhost_user_driver *d, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++) {
		if (d->q[i].kick_fd >= 0)
			close(d->q[i].kick_fd);
		if (d->q[i].call_fd >= 0)
			close(d->q[i].call_fd);
		d->q[i].kick_fd = d->q[i].call_fd = -1;
	}
}

static int check_config(const struct vdk_vhost_user_driver_config *cfg)
{
	uint16_t qs = cfg->max_queue_size;

	if (!cfg->regions || cfg->nregions == 0 ||
	    cfg->nregions > VHOST_MEMORY_BASELINE_NREGIONS)
		return -EINVAL;
	if (cfg->num_queues > VDK_VHOST_USER_DRIVER_MAX_QUEUES)
		return -EINVAL;
	if (qs == 0 || qs > 32768 || (qs & (qs - 1)))
		return -EINVAL;
	for (uint32_t i = 0; i < cfg->nregions; i++) {
		uint64_t end;

		if (cfg->regions[i].size == 0 || !cfg->regions[i].addr ||
		    __builtin_add_overflow(cfg->regions[i].gpa,
					   cfg->regions[i].size, &end) ||
		    __builtin_add_overflow(
			    (uint64_t)(uintptr_t)cfg->regions[i].addr,
			    cfg->regions[i].size, &end))
			return -EINVAL;
	}
	return 0;
}

/* How many queues to drive: the caller's choice within what the back-end
 * has (GET_QUEUE_NUM with MQ, otherwise one). */
static int pick_queues(struct vdk_vhost_user_driver *d,
		       const struct vdk_vhost_user_driver_config *cfg)
{
	uint64_t n = 1;
	int ret;

	if (vdk_vhost_user_frontend_protocol_features(d->fe) &
	    PF(VHOST_USER_PROTOCOL_F_MQ)) {
		ret = vdk_vhost_user_frontend_get_queue_num(d->fe, &n);
		if (ret < 0)
			return ret;
	}
	if (n == 0)
		return -ENODEV;
	if (n > VDK_VHOST_USER_DRIVER_MAX_QUEUES)
		n = VDK_VHOST_USER_DRIVER_MAX_QUEUES;
	if (cfg->num_queues && cfg->num_queues < n)
		n = cfg->num_queues;
	d->num_queues = (uint16_t)n;
	return 0;
}

int vdk_vhost_user_driver_init(struct vdk_vhost_user_driver *d,
			       struct vdk_vhost_user_frontend *fe,
			       const struct vdk_vhost_user_driver_config *cfg)
{
	uint64_t features;
	int ret;

	ret = check_config(cfg);
	if (ret < 0)
		return ret;
	memset(d, 0, sizeof(*d));
	for (uint16_t i = 0; i < VDK_VHOST_USER_DRIVER_MAX_QUEUES; i++)
		d->q[i].kick_fd = d->q[i].call_fd = -1;
	d->transport.ops = &vdk_vhost_user_driver_ops;
	d->transport.ctx = d;
	d->hal.opaque = d;
	d->hal.virt_to_phys = hal_virt_to_phys;
	d->fe = fe;
	memcpy(d->regions, cfg->regions, sizeof(*cfg->regions) * cfg->nregions);
	d->nregions = cfg->nregions;
	d->device_id = cfg->device_id;
	d->max_queue_size = cfg->max_queue_size;

	ret = vdk_vhost_user_frontend_negotiate(
		fe,
		PF(VHOST_USER_PROTOCOL_F_MQ) |
			PF(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			PF(VHOST_USER_PROTOCOL_F_CONFIG),
		&features);
	if (ret < 0)
		return ret;
	d->protocol = (features & PF(VHOST_USER_F_PROTOCOL_FEATURES)) != 0;
	d->device_features = features & ~PF(VHOST_USER_F_PROTOCOL_FEATURES);
	ret = pick_queues(d, cfg);
	if (ret < 0)
		return ret;
	ret = vdk_vhost_user_frontend_set_mem_table(fe, d->regions,
						    d->nregions);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < d->num_queues; i++) {
		d->q[i].kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		d->q[i].call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (d->q[i].kick_fd < 0 || d->q[i].call_fd < 0) {
			ret = -errno;
			close_fds(d, (uint16_t)(i + 1));
			return ret;
		}
	}
	return 0;
}

void vdk_vhost_user_driver_fini(struct vdk_vhost_user_driver *d)
{
	reset(d);
	close_fds(d, d->num_queues);
}

int vdk_vhost_user_driver_call_fd(const struct vdk_vhost_user_driver *d,
				  uint16_t queue)
{
	if (queue >= d->num_queues)
		return -ERANGE;
	return d->q[queue].call_fd;
}
