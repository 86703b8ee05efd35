// SPDX-License-Identifier: Apache-2.0
/*
 * vhost-user backend state and request handlers (QEMU docs/interop/
 * vhost-user.rst, "Front-end message types", "Ring states", "Memory
 * access" is memory.c), the kick path and the connection. Semantics of
 * crosvm's DeviceRequestHandler and QEMU's libvhost-user.
 *
 * Handlers run only after message.c checked the payload size, the fds and
 * the queue index; each copies its payload fields to locals, validates what
 * is particular to it and returns 0 or -errno. A handler keeps a received fd
 * by setting msg->fds[i] to -1; the dispatcher closes the others.
 *
 * A ring runs (the backend's start_queue()) while it is started (kick set),
 * enabled and guest memory is mapped. Ring addresses are kept as front-end
 * virtual addresses and translated to guest-physical each time the ring
 * starts, so a new memory table moves them with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define PF(bit) (1ull << (bit))

/* ---- helpers ----------------------------------------------------------- */

static uint64_t vu_offered_features(const struct vdk_vhost_user *vu)
{
	return vu->ops->features(vu->be) |
	       (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
}

static uint64_t vu_offered_protocol_features(const struct vdk_vhost_user *vu)
{
	uint64_t pf = vu_supported_protocol_features();

	if (vu->ops->protocol_features)
		pf &= vu->ops->protocol_features(vu->be);
	if (!vu->ops->config_size || !vu->ops->read_config)
		pf &= ~PF(VHOST_USER_PROTOCOL_F_CONFIG);
	/* INFLIGHT_SHMFD for every backend: the queues' track hook keeps the
	 * region, whoever pops (inflight.c). */
	if (!vu->ops->snapshot || !vu->ops->restore)
		pf &= ~PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE);
	return pf;
}

/* Front-end virtual addresses of the ring → guest-physical, for the ring's
 * current size (spec "Memory access": ring addresses are user addresses). */
static int ring_translate(const struct vdk_vhost_user *vu,
			  const struct vu_ring *r, uint64_t desc_ua,
			  uint64_t avail_ua, uint64_t used_ua, uint64_t gpa[3])
{
	uint64_t n = r->q.size;

	if (!vu->mem)
		return -EFAULT;
	if (vdk_mem_user_to_gpa(vu->mem, desc_ua, 16 * n, &gpa[0]) < 0 ||
	    vdk_mem_user_to_gpa(vu->mem, avail_ua, 6 + 2 * n, &gpa[1]) < 0 ||
	    vdk_mem_user_to_gpa(vu->mem, used_ua, 6 + 8 * n, &gpa[2]) < 0)
		return -EFAULT;
	return 0;
}

static int ring_run(struct vdk_vhost_user *vu, uint16_t i)
{
	struct vu_ring *r = &vu->rings[i];
	uint64_t gpa[3];
	uint16_t used_idx;
	int ret;

	if (r->running)
		return 0;
	if (!r->addr_set)
		return -EINVAL;
	ret = ring_translate(vu, r, r->desc_user_addr, r->avail_user_addr,
			     r->used_user_addr, gpa);
	if (ret < 0)
		return ret;
	vdk_virtq_set_addrs(&r->q, gpa[0], gpa[1], gpa[2]);
	/* The used index lives in guest memory; resume from it as
	 * libvhost-user does (the next available index came with
	 * SET_VRING_BASE). */
	if (vdk_mem_read_le16(vu->mem, gpa[2] + 2, &used_idx) == 0)
		vdk_virtq_set_next_used(&r->q, used_idx);
	else
		used_idx = vdk_virtq_next_used(&r->q);
	/* Inflight region: resubmit list, next available index, track hook;
	 * set while the queue is not active. */
	ret = vu_inflight_ring_start(vu, i, used_idx);
	if (ret == 0) {
		vdk_virtq_set_ready(&r->q, true);
		ret = vdk_virtq_activate(&r->q, vu->mem, vu->acked_features);
	}
	if (ret < 0) {
		vu_inflight_ring_stop(vu, i);
		return ret;
	}
	ret = vu->ops->start_queue(vu->be, i, &r->q, vu->mem, &vu->irq);
	if (ret < 0) {
		vdk_virtq_deactivate(&r->q);
		vu_inflight_ring_stop(vu, i);
		return ret;
	}
	r->running = true;
	r->err_signalled = false;
	/* One used-buffer notification when a ring starts, as libvhost-user
	 * gives when the call fd is set: a driver that waited across a
	 * back-end restart looks at its used ring again (a spurious
	 * notification is always allowed, virtio 1.2 §2.7.10). */
	vdk_interrupt_signal_used_queue(&vu->calls, i);
	/* Buffers may have been made available before the ring ran. */
	if (vu->ops->queue_notify)
		vu->ops->queue_notify(vu->be, i);
	return 0;
}

static void ring_halt(struct vdk_vhost_user *vu, uint16_t i)
{
	struct vu_ring *r = &vu->rings[i];

	if (!r->running)
		return;
	struct vdk_virtq *q = vu->ops->stop_queue(vu->be, i);
	if (q != &r->q)
		vdk_log(VDK_LOG_ERROR, VU_LOG,
			"queue %u: backend returned another queue on stop", i);
	vdk_virtq_deactivate(&r->q);
	vu_inflight_ring_stop(vu, i);
	r->running = false;
}

/* Bring ring @i to the state its flags ask for. */
static int ring_update(struct vdk_vhost_user *vu, uint16_t i)
{
	struct vu_ring *r = &vu->rings[i];

	if (r->started && r->enabled && vu->mem)
		return ring_run(vu, i);
	ring_halt(vu, i);
	return 0;
}

static void ring_close_fds(struct vdk_vhost_user *vu, uint16_t i)
{
	struct vu_ring *r = &vu->rings[i];
	int call_fd = -1;

	vu_watch_remove(vu, r->kick_fd, i);
	vu_close_fd(&r->kick_fd);
	/* Workers of other rings may still signal this one: see
	 * vu_set_vring_call(). */
	(void)vdk_interrupt_set_queue_fd(&vu->calls, i, -1, &call_fd);
	vu_close_fd(&call_fd);
	vu_close_fd(&r->err_fd);
}

void vu_stop_all_rings(struct vdk_vhost_user *vu)
{
	for (uint16_t i = 0; i < vu->num_queues; i++)
		ring_halt(vu, i);
}

/* Memory map changes: stop the running rings, change, restart them. */
uint64_t vu_rings_pause(struct vdk_vhost_user *vu)
{
	uint64_t was = 0;

	for (uint16_t i = 0; i < vu->num_queues; i++) {
		if (vu->rings[i].running)
			was |= 1ull << i;
		ring_halt(vu, i);
	}
	return was;
}

void vu_rings_resume(struct vdk_vhost_user *vu, uint64_t was)
{
	for (uint16_t i = 0; i < vu->num_queues; i++) {
		int ret = ring_update(vu, i);
		if (ret < 0 && (was & (1ull << i)))
			vdk_log(VDK_LOG_WARN, VU_LOG,
				"queue %u stopped: not in the new memory "
				"table (%s)",
				i, strerror(-ret));
	}
}

bool vu_any_ring_started(const struct vdk_vhost_user *vu)
{
	for (uint16_t i = 0; i < vu->num_queues; i++)
		if (vu->rings[i].started)
			return true;
	return false;
}

bool vu_any_ring_running(const struct vdk_vhost_user *vu)
{
	for (uint16_t i = 0; i < vu->num_queues; i++)
		if (vu->rings[i].running)
			return true;
	return false;
}

/* ---- the interrupt devices signal through ------------------------------ */

/* Used buffers: a write to the ring's call eventfd, which vu->calls holds
 * (EAGAIN: the counter is full, the front-end has a notification pending
 * anyway). Runs on device workers, concurrently with SET_VRING_CALL on the
 * control thread: vu->calls guards the fd (see vu_set_vring_call()). */
static void vu_signal_used_queue(void *opaque, uint16_t queue)
{
	struct vdk_vhost_user *vu = opaque;

	if (queue < vu->num_queues)
		vdk_interrupt_signal_used_queue(&vu->calls, queue);
}

/* Configuration change: a message on the back-end channel. */
static void vu_signal_config_changed(void *opaque)
{
	int ret = vdk_vhost_user_send_config_change(opaque);

	if (ret == -EOPNOTSUPP)
		/* QEMU's vhost-user-net (up to at least 8.x) does not: it
		 * answers the guest's config reads from its own copy. */
		vdk_log(VDK_LOG_WARN, VU_LOG,
			"config change not signalled: the front-end did not "
			"negotiate VHOST_USER_PROTOCOL_F_CONFIG, so its driver "
			"does not see the device's new configuration (status)");
	else if (ret < 0 && ret != -ENOTCONN)
		vdk_log(VDK_LOG_WARN, VU_LOG, "config change not delivered: %s",
			strerror(-ret));
}

static const struct vdk_interrupt_ops vu_irq_ops = {
	.signal_used_queue = vu_signal_used_queue,
	.signal_config_changed = vu_signal_config_changed,
};

/* ---- features and ownership -------------------------------------------- */

int vu_get_features(struct vdk_vhost_user *vu, struct vu_msg *msg,
		    struct vu_reply *reply)
{
	(void)msg;
	reply->payload.u64 = vu_offered_features(vu);
	reply->size = sizeof(uint64_t);
	return 0;
}

int vu_set_features(struct vdk_vhost_user *vu, struct vu_msg *msg,
		    struct vu_reply *reply)
{
	const uint64_t pf_bit = 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
	uint64_t features = msg->payload.u64;

	(void)reply;
	if (features & ~vu_offered_features(vu))
		return -EINVAL;
	for (uint16_t i = 0; i < vu->num_queues; i++)
		if (vu->rings[i].running && features != vu->acked_features)
			return -EBUSY;
	vu->acked_features = features;
	if (vu->ops->ack_features)
		vu->ops->ack_features(vu->be, features & ~pf_bit);
	/* spec "Ring states": without protocol features rings are enabled
	 * from the start. */
	if (!(features & pf_bit)) {
		for (uint16_t i = 0; i < vu->num_queues; i++) {
			vu->rings[i].enabled = true;
			(void)ring_update(vu, i);
		}
	}
	return 0;
}

int vu_set_owner(struct vdk_vhost_user *vu, struct vu_msg *msg,
		 struct vu_reply *reply)
{
	(void)msg;
	(void)reply;
	if (vu->owner)
		return -EBUSY;
	vu->owner = true;
	return 0;
}

/* Deprecated; the spec recommends disabling every ring. */
int vu_reset_owner(struct vdk_vhost_user *vu, struct vu_msg *msg,
		   struct vu_reply *reply)
{
	(void)msg;
	(void)reply;
	for (uint16_t i = 0; i < vu->num_queues; i++) {
		vu->rings[i].enabled = false;
		ring_halt(vu, i);
	}
	vu->owner = false;
	return 0;
}

int vu_get_protocol_features(struct vdk_vhost_user *vu, struct vu_msg *msg,
			     struct vu_reply *reply)
{
	(void)msg;
	reply->payload.u64 = vu_offered_protocol_features(vu);
	reply->size = sizeof(uint64_t);
	return 0;
}

int vu_set_protocol_features(struct vdk_vhost_user *vu, struct vu_msg *msg,
			     struct vu_reply *reply)
{
	uint64_t pf = msg->payload.u64;

	(void)reply;
	if (pf & ~vu_offered_protocol_features(vu))
		return -EINVAL;
	/* read by device workers sending on the back-end channel */
	__atomic_store_n(&vu->acked_protocol_features, pf, __ATOMIC_RELAXED);
	vu->protocol_negotiated = true;
	return 0;
}

int vu_get_queue_num(struct vdk_vhost_user *vu, struct vu_msg *msg,
		     struct vu_reply *reply)
{
	(void)msg;
	reply->payload.u64 = vu->num_queues;
	reply->size = sizeof(uint64_t);
	return 0;
}

int vu_reset_device(struct vdk_vhost_user *vu, struct vu_msg *msg,
		    struct vu_reply *reply)
{
	(void)msg;
	(void)reply;
	for (uint16_t i = 0; i < vu->num_queues; i++) {
		struct vu_ring *r = &vu->rings[i];

		ring_halt(vu, i);
		ring_close_fds(vu, i);
		vdk_virtq_reset(&r->q);
		r->started = r->enabled = r->addr_set = r->stopped = false;
	}
	vu_state_xfer_stop(&vu->xfer);
	vu->acked_features = 0;
	__atomic_store_n(&vu->irq.needs_reset, false, __ATOMIC_RELEASE);
	return vu->ops->reset(vu->be);
}

/* ---- rings ------------------------------------------------------------- */

/*
 * The front-end configures ring @i again (SET_VRING_NUM, ADDR or BASE after
 * GET_VRING_BASE): QEMU does so when the driver reset the device and set it
 * up again with the same features, with neither RESET_DEVICE nor a feature
 * change. The ring starts clean: a driver error that stopped its queue is
 * forgotten (size and indices are what the front-end sends now), and a
 * device that reported DEVICE_NEEDS_RESET is reset while every ring is
 * stopped, keeping the acked features (it activates afresh when a ring
 * starts). A plain stop and restart with no error in between changes
 * nothing.
 */
static void ring_reconfigure(struct vdk_vhost_user *vu, uint16_t i)
{
	const uint64_t pf_bit = 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
	struct vu_ring *r = &vu->rings[i];

	if (!r->stopped)
		return;
	r->stopped = false;
	if (vdk_virtq_is_broken(&r->q)) {
		uint16_t size = r->q.size;

		vdk_virtq_reset(&r->q);
		(void)vdk_virtq_set_size(&r->q, size);
		vdk_log(VDK_LOG_INFO, VU_LOG,
			"queue %u configured again: its driver error is "
			"cleared",
			i);
	}
	if (__atomic_load_n(&vu->irq.needs_reset, __ATOMIC_ACQUIRE) &&
	    !vu_any_ring_started(vu)) {
		int ret = vu->ops->reset(vu->be);

		if (ret == 0 && vu->ops->ack_features)
			vu->ops->ack_features(vu->be,
					      vu->acked_features & ~pf_bit);
		__atomic_store_n(&vu->irq.needs_reset, false, __ATOMIC_RELEASE);
		vdk_log(ret < 0 ? VDK_LOG_ERROR : VDK_LOG_INFO, VU_LOG,
			"rings configured again after a device error: "
			"device reset%s%s",
			ret < 0 ? " failed: " : "",
			ret < 0 ? strerror(-ret) : "");
	}
}

int vu_set_vring_num(struct vdk_vhost_user *vu, struct vu_msg *msg,
		     struct vu_reply *reply)
{
	struct vhost_vring_state s = msg->payload.state;
	struct vu_ring *r = &vu->rings[s.index];

	(void)reply;
	if (r->started)
		return -EBUSY;
	if (s.num > VDK_VIRTQ_MAX_SIZE)
		return -EINVAL;
	ring_reconfigure(vu, (uint16_t)s.index);
	return vdk_virtq_set_size(&r->q, (uint16_t)s.num);
}

int vu_set_vring_addr(struct vdk_vhost_user *vu, struct vu_msg *msg,
		      struct vu_reply *reply)
{
	struct vhost_vring_addr a = msg->payload.addr;
	struct vu_ring *r = &vu->rings[a.index];
	uint64_t gpa[3];
	int ret;

	(void)reply;
	if (a.flags & ~(1u << VHOST_VRING_F_LOG))
		return -EINVAL;
	if (a.flags & (1u << VHOST_VRING_F_LOG))
		return -EOPNOTSUPP; /* VHOST_F_LOG_ALL is not offered */
	ret = ring_translate(vu, r, a.desc_user_addr, a.avail_user_addr,
			     a.used_user_addr, gpa);
	if (ret < 0)
		return ret;
	if (r->running && r->desc_user_addr == a.desc_user_addr &&
	    r->avail_user_addr == a.avail_user_addr &&
	    r->used_user_addr == a.used_user_addr)
		return 0;
	ring_halt(vu, (uint16_t)a.index);
	if (!r->started)
		ring_reconfigure(vu, (uint16_t)a.index);
	r->desc_user_addr = a.desc_user_addr;
	r->avail_user_addr = a.avail_user_addr;
	r->used_user_addr = a.used_user_addr;
	r->addr_set = true;
	vdk_virtq_set_addrs(&r->q, gpa[0], gpa[1], gpa[2]);
	return ring_update(vu, (uint16_t)a.index);
}

int vu_set_vring_base(struct vdk_vhost_user *vu, struct vu_msg *msg,
		      struct vu_reply *reply)
{
	struct vhost_vring_state s = msg->payload.state;
	struct vu_ring *r = &vu->rings[s.index];

	(void)reply;
	if (r->started)
		return -EBUSY;
	if (s.num > UINT16_MAX)
		return -EINVAL;
	ring_reconfigure(vu, (uint16_t)s.index);
	vdk_virtq_set_next_avail(&r->q, (uint16_t)s.num);
	vdk_virtq_set_next_used(&r->q, (uint16_t)s.num);
	return 0;
}

/* Stops the ring and answers with the next available index; once every
 * ring is stopped the device is suspended. */
int vu_get_vring_base(struct vdk_vhost_user *vu, struct vu_msg *msg,
		      struct vu_reply *reply)
{
	uint32_t i = msg->payload.state.index;
	struct vu_ring *r = &vu->rings[i];

	ring_halt(vu, (uint16_t)i);
	r->started = false;
	r->stopped = true;
	ring_close_fds(vu, (uint16_t)i);
	reply->payload.state.index = i;
	reply->payload.state.num = vdk_virtq_next_avail(&r->q);
	reply->size = sizeof(reply->payload.state);
	if (!vu_any_ring_started(vu) && vu->ops->enter_suspended_state) {
		int ret = vu->ops->enter_suspended_state(vu->be);
		if (ret < 0)
			vdk_log(VDK_LOG_ERROR, VU_LOG,
				"backend cannot suspend: %s", strerror(-ret));
	}
	return 0;
}

int vu_set_vring_kick(struct vdk_vhost_user *vu, struct vu_msg *msg,
		      struct vu_reply *reply)
{
	uint16_t i = msg->payload.u64 & VHOST_USER_VRING_IDX_MASK;
	struct vu_ring *r = &vu->rings[i];

	(void)reply;
	if (msg->nfds && vu_check_notify_fd(msg->fds[0], "kick", i) < 0)
		return -EINVAL;
	/* Only handle_kick reads kick_fd, on this thread: not mid-read now.
	 * The caller's loop stops watching it before it is closed. */
	vu_watch_remove(vu, r->kick_fd, i);
	vu_close_fd(&r->kick_fd);
	if (msg->nfds) { /* none: the ring is polled (handle_kick) */
		r->kick_fd = msg->fds[0];
		msg->fds[0] = -1;
		vu_watch_add(vu, r->kick_fd, i);
	}
	r->started = true; /* spec "Ring states" */
	return ring_update(vu, i);
}

int vu_set_vring_call(struct vdk_vhost_user *vu, struct vu_msg *msg,
		      struct vu_reply *reply)
{
	uint16_t i = msg->payload.u64 & VHOST_USER_VRING_IDX_MASK;
	int fd = msg->nfds ? msg->fds[0] : -1, old = -1;

	(void)reply;
	if (msg->nfds && vu_check_notify_fd(fd, "call", i) < 0)
		return -EINVAL;
	if (msg->nfds)
		msg->fds[0] = -1;
	/*
	 * Device workers may be signalling this ring right now (the ring may
	 * run). The new fd is published, then the old one is handed back only
	 * once no worker can still be writing to it (vdk_interrupt_set_queue_fd
	 * waits for those in their write()), so closing it cannot make a
	 * worker write to a closed fd or to a file that reuses its number.
	 */
	(void)vdk_interrupt_set_queue_fd(&vu->calls, i, fd, &old);
	vu_close_fd(&old);
	return 0;
}

int vu_set_vring_err(struct vdk_vhost_user *vu, struct vu_msg *msg,
		     struct vu_reply *reply)
{
	uint16_t i = msg->payload.u64 & VHOST_USER_VRING_IDX_MASK;
	struct vu_ring *r = &vu->rings[i];

	(void)reply;
	if (msg->nfds && vu_check_notify_fd(msg->fds[0], "error", i) < 0)
		return -EINVAL;
	/* Only handle_kick writes err_fd, on this thread: not in use now. */
	vu_close_fd(&r->err_fd);
	if (msg->nfds) {
		r->err_fd = msg->fds[0];
		msg->fds[0] = -1;
	}
	r->err_signalled = false;
	return 0;
}

int vu_set_vring_enable(struct vdk_vhost_user *vu, struct vu_msg *msg,
			struct vu_reply *reply)
{
	struct vhost_vring_state s = msg->payload.state;

	(void)reply;
	if (s.num > 1)
		return -EINVAL;
	vu->rings[s.index].enabled = s.num == 1;
	return ring_update(vu, (uint16_t)s.index);
}

/* ---- configuration space ----------------------------------------------- */

static int config_check(const struct vdk_vhost_user *vu,
			const struct vu_msg *msg, struct vhost_user_config *c)
{
	uint32_t end;

	memcpy(c, &msg->payload.config, VHOST_USER_CONFIG_HDR_SIZE);
	if (c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    msg->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size ||
	    __builtin_add_overflow(c->offset, c->size, &end) ||
	    end > vu->ops->config_size)
		return -EINVAL;
	return 0;
}

int vu_get_config(struct vdk_vhost_user *vu, struct vu_msg *msg,
		  struct vu_reply *reply)
{
	struct vhost_user_config *c = &reply->payload.config;
	int ret = config_check(vu, msg, c);

	if (ret < 0)
		return ret;
	memset(c->region, 0, c->size);
	ret = vu->ops->read_config(vu->be, c->offset, c->region, c->size);
	if (ret < 0)
		return ret;
	reply->size = VHOST_USER_CONFIG_HDR_SIZE + c->size;
	return 0;
}

int vu_set_config(struct vdk_vhost_user *vu, struct vu_msg *msg,
		  struct vu_reply *reply)
{
	struct vhost_user_config c;
	int ret = config_check(vu, msg, &c);

	(void)reply;
	if (ret < 0)
		return ret;
	if (c.flags != VHOST_USER_CONFIG_FLAGS_WRITABLE &&
	    c.flags != VHOST_USER_CONFIG_FLAGS_MIGRATION)
		return -EINVAL;
	if (!vu->ops->write_config)
		return -EPERM;
	memcpy(c.region, msg->payload.config.region, c.size);
	return vu->ops->write_config(vu->be, c.offset, c.region, c.size);
}

/* ---- connection -------------------------------------------------------- */

struct vdk_vhost_user *vdk_vhost_user_new(int sock_fd, struct vdk_device *dev,
					  struct vdk_loop *loop, int *err)
{
	const struct vdk_vhost_user_backend_ops *ops;
	struct vdk_vhost_user_device_adapter *ad;
	struct vdk_vhost_user *vu;
	int ret;

	if (sock_fd < 0) {
		ret = -EINVAL;
		goto fail;
	}
	ad = calloc(1, sizeof(*ad));
	if (!ad) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = vu_adapter_init(ad, dev, &ops);
	if (ret == 0) {
		vu = vu_backend_new(sock_fd, ops, ad, loop, &ret);
		if (vu) {
			vu->own_adapter = ad;
			if (err)
				*err = 0;
			return vu;
		}
	}
	free(ad);
fail:
	if (err)
		*err = ret;
	return NULL;
}

struct vdk_vhost_user *
vu_backend_new(int sock_fd, const struct vdk_vhost_user_backend_ops *ops,
	       void *be, struct vdk_loop *loop, int *err)
{
	struct vdk_vhost_user *vu;
	int ret = -EINVAL;
	uint16_t nq;

	if (sock_fd < 0 || !ops || !ops->num_queues || !ops->queue_max_size ||
	    !ops->features || !ops->start_queue || !ops->stop_queue ||
	    !ops->reset)
		goto fail;
	nq = ops->num_queues(be);
	if (nq == 0 || nq > VDK_DEVICE_MAX_QUEUES)
		goto fail;
	vu = calloc(1, sizeof(*vu));
	if (!vu) {
		ret = -ENOMEM;
		goto fail;
	}
	vu->sock = sock_fd;
	vu->ops = ops;
	vu->be = be;
	vu->num_queues = nq;
	vu->rl = (struct vdk_ratelimit)VDK_RATELIMIT_INIT;
	for (uint16_t i = 0; i < nq; i++) {
		struct vu_ring *r = &vu->rings[i];

		ret = vdk_virtq_init(&r->q, ops->queue_max_size(be, i), i);
		if (ret < 0) {
			free(vu);
			goto fail;
		}
		r->kick_fd = r->err_fd = -1;
	}
	for (size_t i = 0; i < VHOST_USER_MAX_FDS; i++)
		vu->rx.msg.fds[i] = -1;
	vu->backend_fd = -1;
	ret = vu_state_xfer_init(&vu->xfer);
	if (ret < 0) {
		free(vu);
		goto fail;
	}
	pthread_mutex_init(&vu->backend_lock, NULL);
	vdk_interrupt_init_callback(&vu->irq, &vu_irq_ops, vu);
	(void)vdk_interrupt_init_eventfd(&vu->calls, NULL, 0, -1);
	vu->poll_timer = -1;
	for (uint16_t i = 0; i < nq; i++)
		vu->kick_ctx[i] = (struct vu_kick_ctx){vu, i};
	if (loop) {
		ret = vu_loop_attach(vu, loop);
		if (ret < 0) {
			vu->sock = -1; /* left to the caller */
			vdk_vhost_user_free(vu);
			goto fail;
		}
	}
	if (err)
		*err = 0;
	return vu;
fail:
	if (err)
		*err = ret;
	return NULL;
}

void vdk_vhost_user_free(struct vdk_vhost_user *vu)
{
	if (!vu)
		return;
	vu_loop_detach(vu);
	vu_state_xfer_fini(&vu->xfer);
	vu_stop_all_rings(vu);
	for (uint16_t i = 0; i < vu->num_queues; i++)
		ring_close_fds(vu, i);
	(void)vu->ops->reset(vu->be);
	vu_backend_close(vu);
	pthread_mutex_destroy(&vu->backend_lock);
	vu_inflight_free(vu);
	vdk_mem_free(vu->mem);
	for (size_t i = 0; i < vu->rx.msg.nfds; i++)
		vu_close_fd(&vu->rx.msg.fds[i]);
	if (vu->sock >= 0)
		close(vu->sock);
	if (vu->poll_timer >= 0)
		close(vu->poll_timer);
	free(vu->own_adapter);
	free(vu);
}

int vdk_vhost_user_socket_fd(const struct vdk_vhost_user *vu)
{
	return vu->sock;
}

bool vdk_vhost_user_is_broken(const struct vdk_vhost_user *vu)
{
	return vu->broken;
}

uint16_t vdk_vhost_user_num_queues(const struct vdk_vhost_user *vu)
{
	return vu->num_queues;
}

int vdk_vhost_user_kick_fd(const struct vdk_vhost_user *vu, uint16_t queue)
{
	if (queue >= vu->num_queues)
		return -ERANGE;
	return vu->rings[queue].kick_fd >= 0 ? vu->rings[queue].kick_fd
					     : -ENOENT;
}

/*
 * Take the kick eventfd's counter without ever waiting. The file's status
 * flags are the front-end's (it may clear O_NONBLOCK, or drain the counter
 * itself between a poll and our read), so the read asks for RWF_NOWAIT
 * (eventfd reads honour it since Linux 5.11); a kernel without it gets a
 * plain read only while the file is non-blocking.
 */
static void kick_consume(struct vdk_vhost_user *vu, struct vu_ring *r,
			 uint16_t queue)
{
	uint64_t v;
	struct iovec iov = {.iov_base = &v, .iov_len = sizeof(v)};
	ssize_t n = preadv2(r->kick_fd, &iov, 1, -1, RWF_NOWAIT);

	if (n < 0 && errno == EOPNOTSUPP) {
		int fl = fcntl(r->kick_fd, F_GETFL);

		if (fl >= 0 && (fl & O_NONBLOCK))
			n = read(r->kick_fd, &v, sizeof(v));
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EOPNOTSUPP)
		VDK_LOG_RL(&vu->rl, VDK_LOG_WARN, VU_LOG,
			   "queue %u: kick fd read: %s", queue,
			   strerror(errno));
}

int vdk_vhost_user_handle_kick(struct vdk_vhost_user *vu, uint16_t queue)
{
	struct vu_ring *r;

	if (queue >= vu->num_queues)
		return -ERANGE;
	r = &vu->rings[queue];
	if (r->kick_fd >= 0)
		kick_consume(vu, r, queue);
	if (!r->running)
		return 0;
	if (vu->ops->queue_notify)
		vu->ops->queue_notify(vu->be, queue);
	if (vdk_virtq_is_broken(&r->q) && !r->err_signalled && r->err_fd >= 0) {
		uint64_t one = 1;

		/* A non-blocking eventfd (vu_check_notify_fd()): EAGAIN means
		 * a signal is pending already. Never retried: EINTR can only
		 * come from a write that waited, on a file whose O_NONBLOCK
		 * the front-end cleared since. */
		(void)!write(r->err_fd, &one, sizeof(one));
		r->err_signalled = true;
	}
	return 1;
}
