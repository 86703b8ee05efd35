/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-console data path (virtio 1.2 §5.3.6): transmitq chains to the
 * output fd, host input to receiveq buffers. See console_internal.h for
 * the locking and <vdk/devices/console.h> for the model.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console_internal.h"

#define MOD CONSOLE_MOD

/* A driver error stopped queue @q: report DEVICE_NEEDS_RESET once. */
static void report_error(struct vdk_console *con, struct vdk_virtq *q,
			 bool *broken, struct vdk_ratelimit *rl)
{
	if (*broken)
		return;
	*broken = true;
	VDK_LOG_RL(rl, VDK_LOG_WARN, MOD, "%s stopped: %s",
		   q == con->rxq ? "receiveq" : "transmitq",
		   vdk_virtq_strerror(vdk_virtq_error(q)));
	vdk_interrupt_needs_reset(con->irq);
}

/* ---- output (tx_lock held) --------------------------------------------- */

/*
 * Write [@p, @p + @len) to the output fd, retrying on EINTR and short
 * writes. *@written: bytes written.
 * Return: 0 all written; -EAGAIN the fd would block; -EIO the output failed
 * (the caller drops the rest).
 */
static int out_write(struct vdk_console *con, const uint8_t *p, size_t len,
		     size_t *written)
{
	size_t done = 0;

	if (con->out_fd < 0)
		done = len; /* discarded */
	while (done < len) {
		ssize_t n = write(con->out_fd, p + done, len - done);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		con->stats.output_bytes += done;
		*written = done;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -EAGAIN;
		VDK_LOG_RL(&con->tx_rl, VDK_LOG_WARN, MOD,
			   "output: write: %s; %zu bytes dropped",
			   n < 0 ? strerror(errno) : "wrote nothing",
			   len - done);
		return -EIO;
	}
	con->stats.output_bytes += done;
	*written = done;
	return 0;
}

/* Room for @len more bytes in out_buf (compacted, grown up to the limit).
 * Return: the bytes that fit, 0..@len. */
static uint32_t out_buf_reserve(struct vdk_console *con, size_t len)
{
	uint32_t room, want;

	if (con->out_off) {
		memmove(con->out_buf, con->out_buf + con->out_off,
			con->out_len - con->out_off);
		con->out_len -= con->out_off;
		con->out_off = 0;
	}
	room = VDK_CONSOLE_MAX_OUTPUT_BUFFER - con->out_len;
	want = len < room ? (uint32_t)len : room;
	if (con->out_len + want > con->out_cap) {
		uint32_t cap = con->out_cap ? con->out_cap : 256;
		uint8_t *p;

		while (cap < con->out_len + want)
			cap *= 2;
		if (cap > VDK_CONSOLE_MAX_OUTPUT_BUFFER)
			cap = VDK_CONSOLE_MAX_OUTPUT_BUFFER;
		p = realloc(con->out_buf, cap);
		if (!p)
			return 0;
		con->out_buf = p;
		con->out_cap = cap;
	}
	return want;
}

/* Keep @len bytes for later; what does not fit is dropped (counted). */
static void out_buf_append(struct vdk_console *con, const uint8_t *p,
			   size_t len)
{
	uint32_t n = out_buf_reserve(con, len);

	if (n) {
		memcpy(con->out_buf + con->out_len, p, n);
		con->out_len += n;
	}
	con->stats.output_dropped += len - n;
}

/* Return: 0 if out_buf is empty now, -EAGAIN if the fd blocks. */
static int out_buf_flush(struct vdk_console *con)
{
	size_t w = 0;
	int r;

	if (con->out_off == con->out_len)
		return 0;
	r = out_write(con, con->out_buf + con->out_off,
		      con->out_len - con->out_off, &w);
	con->out_off += (uint32_t)w;
	if (r == -EIO) {
		con->stats.output_dropped += con->out_len - con->out_off;
		con->out_off = con->out_len;
	}
	if (con->out_off == con->out_len)
		con->out_off = con->out_len = 0;
	return r == -EAGAIN ? r : 0;
}

/* Write the kept chain's readable part from tx_off.
 * Return: 0 when all of it is written (or dropped), -EAGAIN if blocked. */
static int tx_write_chain(struct vdk_console *con)
{
	const struct vdk_virtq_chain *c = &con->tx_chain;
	size_t skip = con->tx_off;

	for (uint32_t i = 0; i < c->num_readable; i++) {
		const struct iovec *v = &c->iov[i];
		size_t w = 0;
		int r;

		if (skip >= v->iov_len) {
			skip -= v->iov_len;
			continue;
		}
		r = out_write(con, (const uint8_t *)v->iov_base + skip,
			      v->iov_len - skip, &w);
		con->tx_off += (uint32_t)w;
		if (r == -EAGAIN)
			return r;
		if (r == -EIO) {
			con->stats.output_dropped +=
				c->readable_len - con->tx_off;
			con->tx_off = c->readable_len;
			return 0;
		}
		skip = 0;
	}
	return 0;
}

/* Finish the kept chain: return it to the driver. */
static bool tx_complete(struct vdk_console *con, struct vdk_virtq *q)
{
	con->tx_pending = false;
	/* The device writes nothing into a transmitq buffer. */
	if (vdk_virtq_add_used(q, con->tx_chain.head, 0) < 0) {
		report_error(con, q, &con->tx_broken, &con->tx_rl);
		return false;
	}
	con->stats.output_chains++;
	return true;
}

/*
 * Write and return every available chain, at most *@budget of them (counted
 * down). Set *@returned when one went back to the driver.
 * Return: true when the available ring is empty; false when output blocked
 * (the chain is kept), the budget ran out (reported as blocked) or the
 * queue broke.
 */
static bool tx_drain(struct vdk_console *con, struct vdk_virtq *q,
		     bool *returned, uint32_t *budget)
{
	for (;; (*budget)--) {
		int r;

		/* At most a queue's worth per wake-up: a driver refilling
		 * transmitq as fast as it is served must not hold the
		 * calling thread. Stopping as if the output were blocked
		 * makes the program call vdk_console_flush_output() again
		 * once the fd is writable, which it is at once. (Output
		 * discarded, with no fd to poll, is not worth a stop.) */
		if (*budget == 0 && con->out_fd >= 0) {
			con->blocked = true;
			return false;
		}

		con->tx_chain = (struct vdk_virtq_chain){
			.iov = con->tx_iov, .iov_cap = con->iov_cap};
		r = vdk_virtq_pop(q, &con->tx_chain);
		if (r == 0)
			return true;
		if (r < 0) {
			report_error(con, q, &con->tx_broken, &con->tx_rl);
			return false;
		}
		con->tx_pending = true;
		con->tx_off = 0;
		if (tx_write_chain(con) < 0) {
			con->blocked = true; /* keep the chain */
			return false;
		}
		if (!tx_complete(con, q))
			return false;
		*returned = true;
	}
}

/*
 * The kept chain, then buffered output, then every available chain
 * (virtio 1.2 §5.3.6: transmitq). Output order: buffered output is either
 * older than any chain still in the available ring (the rest of a chain
 * retired at sleep) or younger than the kept chain (emergency writes while
 * it waited).
 *
 * Available buffer notifications are suppressed while the ring is drained
 * and asked for again once it is empty (virtio 1.2 §2.7.10: with
 * VIRTIO_RING_F_EVENT_IDX the driver kicks only when its available index
 * passes avail_event, which re-arming moves; without it Linux stops
 * notifying after the first buffer and waits for it forever). Buffers that
 * slipped in before the re-arm was seen are served first. While output is
 * blocked notifications may stay off: the host calls us again when the
 * output fd can take more (vdk_console_flush_output()).
 */
static void tx_process(struct vdk_console *con)
{
	struct vdk_virtq *q = con->txq;
	uint32_t budget = con->queue_max_size;
	bool returned = false;

	con->blocked = false;
	if (con->tx_pending) { /* implies running, q != NULL */
		if (tx_write_chain(con) < 0) {
			con->blocked = true; /* keep the chain */
			return;
		}
		if (!tx_complete(con, q))
			goto out;
		returned = true;
	}
	if (out_buf_flush(con) < 0) {
		con->blocked = true;
		goto out;
	}
	if (!con->running || !q || con->tx_broken)
		goto out;
	do {
		vdk_virtq_enable_notification(q, false);
		if (!tx_drain(con, q, &returned, &budget))
			break;
	} while (vdk_virtq_enable_notification(q, true));
out:
	if (returned && vdk_virtq_should_notify(q))
		vdk_interrupt_signal_used_queue(con->irq,
						VDK_CONSOLE_TRANSMITQ);
}

/* Sleep: move the unwritten rest of the kept chain to out_buf and return
 * the chain, so nothing is in flight while asleep. */
void vdk_console_tx_retire(struct vdk_console *con)
{
	const struct vdk_virtq_chain *c = &con->tx_chain;
	uint32_t rest, n;

	if (!con->tx_pending)
		return;
	rest = c->readable_len - con->tx_off;
	n = out_buf_reserve(con, rest);
	if (n == 0)
		goto done;
	/* In front of what is buffered: emergency writes made while the
	 * chain waited. */
	memmove(con->out_buf + n, con->out_buf, con->out_len);
	n = (uint32_t)vdk_virtq_chain_copy_from(c, con->tx_off, con->out_buf,
						n);
	con->out_len += n;
done:
	con->stats.output_dropped += rest - n;
	if (tx_complete(con, con->txq) && vdk_virtq_should_notify(con->txq))
		vdk_interrupt_signal_used_queue(con->irq,
						VDK_CONSOLE_TRANSMITQ);
}

/* ---- input (rx_lock held) ---------------------------------------------- */

/* Append up to @len bytes to the input ring. Return: bytes taken. */
static size_t in_put(struct vdk_console *con, const uint8_t *p, size_t len)
{
	size_t n = con->in_cap - con->in_len, tail, first;

	if (n > len)
		n = len;
	tail = (con->in_head + con->in_len) % con->in_cap;
	first = con->in_cap - tail < n ? con->in_cap - tail : n;
	memcpy(con->in_buf + tail, p, first);
	memcpy(con->in_buf, p + first, n - first);
	con->in_len += (uint32_t)n;
	return n;
}

/* Move buffered input into the chain's writable part. Return: bytes. */
static uint32_t rx_fill_chain(struct vdk_console *con,
			      const struct vdk_virtq_chain *c)
{
	uint32_t want =
		con->in_len < c->writable_len ? con->in_len : c->writable_len;
	uint32_t first = con->in_cap - con->in_head;
	size_t n;

	if (first > want)
		first = want;
	n = vdk_virtq_chain_copy_to(c, 0, con->in_buf + con->in_head, first);
	if (n == first && want > first)
		n += vdk_virtq_chain_copy_to(c, first, con->in_buf,
					     want - first);
	con->in_head = (uint32_t)((con->in_head + n) % con->in_cap);
	con->in_len -= (uint32_t)n;
	return (uint32_t)n;
}

/*
 * Fill available receiveq chains from the input ring (virtio 1.2 §5.3.6).
 * When input is left and the ring is empty, ask for an available buffer
 * notification (§2.7.10: re-arm avail_event under EVENT_IDX) so that the
 * driver's next buffers wake us; if some slipped in meanwhile, go on.
 * Return: chains returned to the driver.
 */
static unsigned rx_deliver(struct vdk_console *con)
{
	struct vdk_virtq *q = con->rxq;
	struct vdk_virtq_chain c;
	unsigned returned = 0;
	bool rearmed = false;

	if (!con->running || !q || con->rx_broken)
		return 0;
	while (con->in_len) {
		int r;

		c = (struct vdk_virtq_chain){.iov = con->rx_iov,
					     .iov_cap = con->iov_cap};
		r = vdk_virtq_pop(q, &c);
		if (r == 0) {
			/* at most once per empty ring: no spinning */
			if (!rearmed &&
			    vdk_virtq_enable_notification(q, true)) {
				rearmed = true;
				continue;
			}
			break;
		}
		rearmed = false;
		if (r < 0) {
			report_error(con, q, &con->rx_broken, &con->rx_rl);
			break;
		}
		if (c.writable_len == 0)
			VDK_LOG_RL(&con->rx_rl, VDK_LOG_WARN, MOD,
				   "receiveq buffer %u has no device-writable "
				   "part; returned empty",
				   c.head);
		uint32_t n = rx_fill_chain(con, &c);

		if (vdk_virtq_add_used(q, c.head, n) < 0) {
			report_error(con, q, &con->rx_broken, &con->rx_rl);
			break;
		}
		con->stats.input_bytes += n;
		con->stats.input_chains++;
		returned++;
	}
	return returned;
}

static void rx_signal(struct vdk_console *con, unsigned returned)
{
	if (returned && vdk_virtq_should_notify(con->rxq))
		vdk_interrupt_signal_used_queue(con->irq, VDK_CONSOLE_RECEIVEQ);
}

void vdk_console_rx_kick(struct vdk_console *con)
{
	pthread_mutex_lock(&con->rx_lock);
	rx_signal(con, rx_deliver(con));
	pthread_mutex_unlock(&con->rx_lock);
}

void vdk_console_out_watch(struct vdk_console *con)
{
	bool want = con->blocked || con->out_len > con->out_off;
	int r;

	if (!con->out_on_loop || want == con->out_watched)
		return;
	r = vdk_loop_modify(con->loop, con->out_fd, want ? VDK_LOOP_OUT : 0);
	if (r < 0)
		VDK_LOG_RL(&con->tx_rl, VDK_LOG_WARN, MOD,
			   "cannot watch the output fd: %s", strerror(-r));
	else
		con->out_watched = want;
}

void vdk_console_tx_kick(struct vdk_console *con)
{
	pthread_mutex_lock(&con->tx_lock);
	tx_process(con);
	vdk_console_out_watch(con);
	pthread_mutex_unlock(&con->tx_lock);
}

void vdk_console_emerg_write(struct vdk_console *con, uint8_t byte)
{
	size_t w = 0;

	pthread_mutex_lock(&con->tx_lock);
	con->stats.emerg_bytes++;
	/* Behind output that already waits, to keep the order. */
	if (con->out_len > con->out_off || con->blocked)
		out_buf_append(con, &byte, 1);
	else if (out_write(con, &byte, 1, &w) == -EAGAIN)
		out_buf_append(con, &byte, 1);
	else if (w == 0)
		con->stats.output_dropped++;
	vdk_console_out_watch(con);
	pthread_mutex_unlock(&con->tx_lock);
}

/* ---- public API: the data path ------------------------------------------ */

int vdk_console_push_input(struct vdk_console *con, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	unsigned returned = 0;
	size_t done = 0;

	if (!buf && len)
		return -EINVAL;
	if (!len)
		return 0;
	if (len > INT_MAX)
		len = INT_MAX;
	pthread_mutex_lock(&con->rx_lock);
	/* Each round takes bytes or moves some to the driver; it stops when
	 * all are taken or the driver has no more room. */
	for (;;) {
		uint32_t before;

		done += in_put(con, p + done, len - done);
		before = con->in_len;
		returned += rx_deliver(con);
		if (done == len || con->in_len == before)
			break;
	}
	rx_signal(con, returned);
	pthread_mutex_unlock(&con->rx_lock);
	return (int)done;
}

size_t vdk_console_input_pending(struct vdk_console *con)
{
	size_t n;

	pthread_mutex_lock(&con->rx_lock);
	n = con->in_len;
	pthread_mutex_unlock(&con->rx_lock);
	return n;
}

int vdk_console_flush_output(struct vdk_console *con)
{
	bool blocked;

	pthread_mutex_lock(&con->tx_lock);
	tx_process(con);
	blocked = con->blocked;
	vdk_console_out_watch(con);
	pthread_mutex_unlock(&con->tx_lock);
	return blocked ? 1 : 0;
}

bool vdk_console_output_blocked(struct vdk_console *con)
{
	bool blocked;

	pthread_mutex_lock(&con->tx_lock);
	blocked = con->blocked;
	pthread_mutex_unlock(&con->tx_lock);
	return blocked;
}
