/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The interrupt object a device signals through (virtio 1.2 §2.3:
 * notifications from the device to the driver). Two backings: callbacks set
 * by a transport (virtio-mmio raises InterruptStatus bits and its line), or
 * eventfds (vhost-user call fds, KVM irqfds), where a notification is a
 * write of the 8-byte value 1.
 *
 * Eventfds can be replaced while device workers signal through them
 * (vdk_interrupt_set_queue_fd()): each slot has a guard counting the
 * signallers that may hold its fd, and a replaced fd is handed back only
 * once none can (the rule is in <vdk/interrupt.h>).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <vdk/interrupt.h>
#include <vdk/log.h>

#define MOD "interrupt"

static void interrupt_clear(struct vdk_interrupt *irq)
{
	memset(irq, 0, sizeof(*irq));
	for (size_t i = 0; i < VDK_DEVICE_MAX_QUEUES; i++)
		irq->queue_fd[i] = -1;
	irq->config_fd = -1;
}

void vdk_interrupt_init_callback(struct vdk_interrupt *irq,
				 const struct vdk_interrupt_ops *ops,
				 void *opaque)
{
	interrupt_clear(irq);
	irq->ops = ops;
	irq->opaque = opaque;
}

int vdk_interrupt_init_eventfd(struct vdk_interrupt *irq, const int *queue_fds,
			       size_t n, int config_fd)
{
	if (n > VDK_DEVICE_MAX_QUEUES || (n > 0 && !queue_fds)) {
		vdk_log(VDK_LOG_ERROR, MOD,
			"eventfd backing: %zu queue fds (at most %d)", n,
			VDK_DEVICE_MAX_QUEUES);
		return -EINVAL;
	}
	interrupt_clear(irq);
	for (size_t i = 0; i < n; i++)
		irq->queue_fd[i] = queue_fds[i] < 0 ? -1 : queue_fds[i];
	irq->config_fd = config_fd < 0 ? -1 : config_fd;
	return 0;
}

/* ---- replacing an eventfd under signallers (see <vdk/interrupt.h>) ------- */

/*
 * A guard word: bit 31 is the epoch; bits 0-14 count the signallers that
 * entered in epoch 0, bits 16-30 those of epoch 1 (at most 32767 threads
 * signal one slot at once). A signaller enters by incrementing its epoch's
 * count in one compare-and-swap (so the epoch it counts in is the one it
 * read), loads the fd, writes, and leaves. A replacement publishes the new
 * fd, flips the epoch, and waits for the old epoch's count to reach zero.
 *
 * Why that is enough (C11 orderings as written below):
 *   - a signaller whose CAS comes after the flip in the word's
 *     modification order read the flip (or a later RMW in its release
 *     sequence) with acquire: the new fd, stored before the flip, is what
 *     it loads;
 *   - one whose CAS comes before the flip counted in the old epoch, which
 *     no CAS can join after the flip; the replacement's acquire load that
 *     sees that count at zero reads from the signaller's release decrement
 *     (or a later RMW), so the signaller's write() happened before the old
 *     fd is handed back and closed.
 */
#define GUARD_EPOCH 0x80000000u

static uint32_t guard_count_mask(uint32_t epoch_bit)
{
	return epoch_bit ? 0x7fff0000u : 0x00007fffu;
}

static uint32_t guard_enter(struct vdk_interrupt_guard *g)
{
	uint32_t w = __atomic_load_n(&g->word, __ATOMIC_RELAXED), one;

	do
		one = (w & GUARD_EPOCH) ? 0x10000u : 1u;
	while (!__atomic_compare_exchange_n(&g->word, &w, w + one, true,
					    __ATOMIC_ACQUIRE,
					    __ATOMIC_RELAXED));
	return one;
}

static void guard_leave(struct vdk_interrupt_guard *g, uint32_t one)
{
	__atomic_fetch_sub(&g->word, one, __ATOMIC_RELEASE);
}

/* Publish @fd in *@slot, wait until no signaller can use the old fd any
 * more, return the old fd. */
static int guard_replace(struct vdk_interrupt_guard *g, int *slot, int fd)
{
	int old = __atomic_exchange_n(slot, fd < 0 ? -1 : fd, __ATOMIC_ACQ_REL);
	uint32_t prev =
		__atomic_fetch_xor(&g->word, GUARD_EPOCH, __ATOMIC_ACQ_REL);
	uint32_t mask = guard_count_mask(prev & GUARD_EPOCH);

	/* Each signaller left in the old epoch is inside one write(). */
	while (__atomic_load_n(&g->word, __ATOMIC_ACQUIRE) & mask)
		sched_yield();
	return old;
}

int vdk_interrupt_set_queue_fd(struct vdk_interrupt *irq, uint16_t queue,
			       int fd, int *old_fd)
{
	if (irq->ops || queue >= VDK_DEVICE_MAX_QUEUES)
		return -EINVAL;
	*old_fd = guard_replace(&irq->guard[queue], &irq->queue_fd[queue], fd);
	return 0;
}

int vdk_interrupt_set_config_fd(struct vdk_interrupt *irq, int fd, int *old_fd)
{
	if (irq->ops)
		return -EINVAL;
	*old_fd = guard_replace(&irq->guard[VDK_DEVICE_MAX_QUEUES],
				&irq->config_fd, fd);
	return 0;
}

/* ---- signalling ----------------------------------------------------------- */

/*
 * Add 1 to an eventfd counter. EAGAIN means the counter is at its maximum:
 * the reader has not consumed the earlier signals yet, so this one is
 * already pending and nothing is lost. Other failures are counted; the
 * first is logged (the fd may come from another process, and this runs on
 * the data path).
 *
 * The write is never retried on EINTR: a non-blocking eventfd (what the
 * vhost-user connection accepts, see <vdk/vhost_user.h>) never waits, so
 * EINTR means the file was made blocking behind our back and a signal
 * ended the wait; retrying would wait again for whoever owns it.
 */
static void eventfd_write_one(struct vdk_interrupt *irq, int fd,
			      const char *what)
{
	const uint64_t one = 1;
	ssize_t n;

	n = write(fd, &one, sizeof(one));
	if (n == (ssize_t)sizeof(one) || (n < 0 && errno == EAGAIN))
		return;
	if (__atomic_fetch_add(&irq->signal_errors, 1, __ATOMIC_RELAXED) != 0)
		return;
	if (n < 0)
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s eventfd %d: write failed: %s (further failures "
			"are not logged)",
			what, fd, strerror(errno));
	else
		vdk_log(VDK_LOG_ERROR, MOD,
			"%s eventfd %d: short write %zd (further failures "
			"are not logged)",
			what, fd, n);
}

/* Signal the eventfd in *@slot, guarded by @g. */
static void eventfd_signal(struct vdk_interrupt *irq,
			   struct vdk_interrupt_guard *g, const int *slot,
			   const char *what)
{
	uint32_t one;
	int fd;

	/* No fd: nothing to write, nothing to guard. */
	if (__atomic_load_n(slot, __ATOMIC_RELAXED) < 0)
		return;
	one = guard_enter(g);
	fd = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (fd >= 0)
		eventfd_write_one(irq, fd, what);
	guard_leave(g, one);
}

void vdk_interrupt_signal_used_queue(struct vdk_interrupt *irq, uint16_t queue)
{
	if (!irq)
		return;
	if (irq->ops) {
		if (irq->ops->signal_used_queue)
			irq->ops->signal_used_queue(irq->opaque, queue);
		return;
	}
	if (queue < VDK_DEVICE_MAX_QUEUES)
		eventfd_signal(irq, &irq->guard[queue], &irq->queue_fd[queue],
			       "used queue");
}

void vdk_interrupt_signal_config_changed(struct vdk_interrupt *irq)
{
	if (!irq)
		return;
	if (irq->ops) {
		if (irq->ops->signal_config_changed)
			irq->ops->signal_config_changed(irq->opaque);
		return;
	}
	eventfd_signal(irq, &irq->guard[VDK_DEVICE_MAX_QUEUES], &irq->config_fd,
		       "config");
}

void vdk_interrupt_needs_reset(struct vdk_interrupt *irq)
{
	if (!irq)
		return;
	/* A device worker may report this while the control thread reads
	 * the flag. */
	__atomic_store_n(&irq->needs_reset, true, __ATOMIC_RELEASE);
	if (irq->ops) {
		if (irq->ops->set_needs_reset)
			irq->ops->set_needs_reset(irq->opaque);
		return;
	}
	/* eventfd backing has no status register: the frontend learns of the
	 * error from the configuration change it is sent (virtio 1.2 §2.1.2). */
	eventfd_signal(irq, &irq->guard[VDK_DEVICE_MAX_QUEUES], &irq->config_fd,
		       "config");
}
