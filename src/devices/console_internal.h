/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal: the state of a virtio-console shared by console.c (device ops,
 * snapshot, construction) and console_io.c (the data path: transmitq to the
 * output fd, host input to receiveq). Not installed.
 *
 * Locking. Two mutexes, taken in this order when both are needed (the
 * lifecycle ops):
 *   rx_lock  receiveq, the host input ring, cols/rows, the receive counters
 *   tx_lock  transmitq, the kept chain, the host output buffer, the
 *            transmit counters
 * @running, @irq, @rxq and @txq are written with both held, so either one
 * is enough to read them. Interrupts are sent with one of them held; the
 * transport's interrupt lock is a leaf, so that is safe.
 */
#ifndef VDK_CONSOLE_INTERNAL_H
#define VDK_CONSOLE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <vdk/device.h>
#include <vdk/devices/console.h>
#include <vdk/log.h>
#include <vdk/virtq.h>

#ifndef VDK_HIDDEN
#define VDK_HIDDEN __attribute__((visibility("hidden")))
#endif

#define CONSOLE_MOD "console"

/* Watch out_fd for writability exactly while output is blocked (tx_lock
 * held); console_io.c. */
VDK_HIDDEN void vdk_console_out_watch(struct vdk_console *con);

struct vdk_console {
	struct vdk_device vdev;
	uint16_t queue_max_size;
	int out_fd; /* not owned; -1 discards */
	bool has_size;
	uint64_t features;
	uint32_t iov_cap; /* entries in rx_iov and in tx_iov */

	/* both locks to write, either to read */
	bool running; /* active and awake */
	struct vdk_interrupt *irq;
	struct vdk_virtq *rxq, *txq;

	/* receive side */
	pthread_mutex_t rx_lock;
	bool rx_broken;
	bool size_acked; /* VIRTIO_CONSOLE_F_SIZE negotiated */
	uint16_t cols, rows;
	uint8_t *in_buf; /* ring of in_cap bytes */
	uint32_t in_cap, in_head, in_len;
	struct iovec *rx_iov;
	struct vdk_ratelimit rx_rl;

	/* transmit side */
	pthread_mutex_t tx_lock;
	bool tx_broken;
	bool blocked;	 /* the last write said EAGAIN */
	bool tx_pending; /* tx_chain popped, not yet fully written */
	struct vdk_virtq_chain tx_chain;
	uint32_t tx_off;  /* bytes of tx_chain written */
	uint8_t *out_buf; /* [out_off, out_len) waits for the fd */
	uint32_t out_cap, out_off, out_len;
	struct iovec *tx_iov;
	struct vdk_ratelimit tx_rl;

	struct vdk_console_stats stats; /* input_* rx_lock, the rest tx_lock */

	/* attach_loop(): out_fd is on @loop, watched for writability while
	 * output is blocked (tx_lock) */
	struct vdk_loop *loop;
	bool out_on_loop; /* out_fd added (a regular file cannot be) */
	bool out_watched; /* VDK_LOOP_OUT asked for */
};

static inline void lock_both(struct vdk_console *con)
{
	pthread_mutex_lock(&con->rx_lock);
	pthread_mutex_lock(&con->tx_lock);
}

static inline void unlock_both(struct vdk_console *con)
{
	pthread_mutex_unlock(&con->tx_lock);
	pthread_mutex_unlock(&con->rx_lock);
}

/* Deliver buffered input into available receiveq buffers (takes rx_lock). */
VDK_HIDDEN void vdk_console_rx_kick(struct vdk_console *con);
/* Write buffered output and process transmitq (takes tx_lock). */
VDK_HIDDEN void vdk_console_tx_kick(struct vdk_console *con);
/* Sleep, tx_lock held: move the unwritten rest of the kept transmitq chain
 * into the output buffer and return the chain to the driver. */
VDK_HIDDEN void vdk_console_tx_retire(struct vdk_console *con);
/* One byte written to emerg_wr (virtio 1.2 §5.3.4; takes tx_lock). */
VDK_HIDDEN void vdk_console_emerg_write(struct vdk_console *con, uint8_t byte);

#endif /* VDK_CONSOLE_INTERNAL_H */
