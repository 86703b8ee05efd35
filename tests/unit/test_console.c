/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of virtio-console (src/devices/console.c, virtio 1.2 §5.3): output
 * from transmitq to a pipe (including EAGAIN), input into posted receiveq
 * buffers and buffered until they are posted, the configuration space,
 * reset, driver errors, snapshots of pending bytes, input pushed from
 * another thread; then the device conformance suite.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <cbor.h>

#include <vdk/device.h>
#include <vdk/devices/console.h>
#include <vdk/loop.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "conformance.h"
#include "guest_ring.h"

#define MEM_SIZE (1u << 20)
#define QSIZE	 32
#define RX	 VDK_CONSOLE_RECEIVEQ
#define TX	 VDK_CONSOLE_TRANSMITQ
#define F_BASE	 (1ull << VIRTIO_F_VERSION_1)
#define F_SIZE	 (1ull << VIRTIO_CONSOLE_F_SIZE)
#define F_EMERG	 (1ull << VIRTIO_CONSOLE_F_EMERG_WRITE)

static void quiet_sink(void *opaque, enum vdk_log_level level,
		       const char *module, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

struct env {
	struct vdk_mem *mem;
	struct vdk_console *con;
	struct vdk_device *dev;
	int pipe_rd, pipe_wr; /* output: device writes pipe_wr */
	struct vdk_virtq q[2];
	struct vdk_virtq *qp[2];
	struct guest_ring gr[2];
	struct vdk_interrupt irq;
	unsigned used[2], config_changes, needs_reset; /* atomic */
	uint32_t early_rx_len; /* activate(): post a receiveq buffer first */
};

static void on_used(void *o, uint16_t q)
{
	assert_true(q < 2);
	__atomic_fetch_add(&((struct env *)o)->used[q], 1, __ATOMIC_RELAXED);
}

static void on_config(void *o)
{
	((struct env *)o)->config_changes++;
}

static void on_reset(void *o)
{
	((struct env *)o)->needs_reset++;
}

static const struct vdk_interrupt_ops irq_ops = {
	.signal_used_queue = on_used,
	.signal_config_changed = on_config,
	.set_needs_reset = on_reset,
};

static unsigned used_count(struct env *t, int q)
{
	return __atomic_load_n(&t->used[q], __ATOMIC_RELAXED);
}

static int setup_cfg(void **state, struct vdk_console_config cfg, bool nonblock)
{
	struct env *t = calloc(1, sizeof(*t));
	int fds[2];

	if (!t || pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	t->pipe_rd = fds[0];
	t->pipe_wr = fds[1];
	if (!nonblock && fcntl(t->pipe_wr, F_SETFL, 0) < 0)
		return -1;
	t->mem = vdk_mem_new(NULL);
	if (!t->mem || vdk_mem_add_memfd(t->mem, 0, MEM_SIZE, "console") < 0)
		return -1;
	cfg.output_fd = t->pipe_wr;
	if (!(t->con = vdk_console_new(&cfg, NULL)))
		return -1;
	t->dev = vdk_console_device(t->con);
	vdk_interrupt_init_callback(&t->irq, &irq_ops, t);
	*state = t;
	return 0;
}

static int setup(void **state)
{
	return setup_cfg(state, (struct vdk_console_config){0}, false);
}

static int setup_sized(void **state)
{
	return setup_cfg(state,
			 (struct vdk_console_config){.cols = 80, .rows = 25},
			 false);
}

static int setup_small_input(void **state)
{
	return setup_cfg(state,
			 (struct vdk_console_config){.input_buffer_size = 16},
			 false);
}

/* Non-blocking output into a 4 KiB pipe. */
static int setup_nonblock(void **state)
{
	struct env *t;

	if (setup_cfg(state, (struct vdk_console_config){0}, true) < 0)
		return -1;
	t = *state;
	return fcntl(t->pipe_wr, F_SETPIPE_SZ, 4096) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct env *t = *state;

	vdk_console_free(t->con);
	vdk_mem_free(t->mem);
	close(t->pipe_rd);
	close(t->pipe_wr);
	free(t);
	return 0;
}

static void activate_with(struct env *t, uint64_t f)
{
	assert_int_equal(vdk_device_ack_features(t->dev, f), 0);
	for (uint16_t i = 0; i < 2; i++) {
		assert_int_equal(guest_ring_init(&t->gr[i], t->mem, QSIZE,
						 (uint64_t)i * 0x1000),
				 0);
		assert_int_equal(vdk_virtq_init(&t->q[i],
						t->dev->ops->queue_max_size(
							t->dev->impl, i),
						i),
				 0);
		assert_int_equal(vdk_virtq_set_size(&t->q[i], QSIZE), 0);
		assert_int_equal(vdk_virtq_set_addrs(
					 &t->q[i], t->gr[i].desc_gpa,
					 t->gr[i].avail_gpa, t->gr[i].used_gpa),
				 0);
		vdk_virtq_set_ready(&t->q[i], true);
		assert_int_equal(vdk_virtq_activate(&t->q[i], t->mem, f), 0);
		t->qp[i] = &t->q[i];
	}
	/* Buffers the driver posts before DRIVER_OK. */
	if (t->early_rx_len)
		assert_true(guest_ring_add_chain(
				    &t->gr[RX],
				    &(struct guest_buf){0x20000,
							t->early_rx_len, true},
				    1) >= 0);
	assert_int_equal(vdk_device_activate(t->dev, t->mem, &t->irq, t->qp),
			 0);
}

static void activate(struct env *t)
{
	activate_with(t, F_BASE);
}

static void put(struct env *t, uint64_t gpa, const void *p, size_t len)
{
	assert_int_equal(vdk_mem_write(t->mem, gpa, p, len), 0);
}

/* Put @s on transmitq as one readable buffer at @gpa. */
static int send_str(struct env *t, uint64_t gpa, const char *s)
{
	struct guest_buf b = {gpa, (uint32_t)strlen(s), false};

	put(t, gpa, s, strlen(s));
	return guest_ring_add_chain(&t->gr[TX], &b, 1);
}

/* Post one writable receiveq buffer of @len bytes at @gpa. */
static int post_rx(struct env *t, uint64_t gpa, uint32_t len)
{
	struct guest_buf b = {gpa, len, true};

	return guest_ring_add_chain(&t->gr[RX], &b, 1);
}

/* Read what the device wrote to the pipe (non-blocking). */
static size_t drain(struct env *t, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(t->pipe_rd, buf + n, cap - n);

		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap)
			break;
	}
	return n;
}

static void test_identity(void **state)
{
	struct env *t = *state;
	struct virtio_console_config c;
	struct vdk_console *x;
	int err = 0;

	assert_int_equal(t->dev->ops->device_type, VIRTIO_ID_CONSOLE);
	assert_int_equal(t->dev->num_queues, 2);
	assert_int_equal(t->dev->ops->features(t->dev->impl),
			 F_BASE | F_EMERG |
				 (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
				 (1ull << VIRTIO_RING_F_EVENT_IDX));
	assert_int_equal(t->dev->ops->config_size, sizeof(c));
	assert_int_equal(t->dev->ops->queue_max_size(t->dev->impl, TX),
			 VDK_CONSOLE_DEFAULT_QUEUE_SIZE);
	assert_int_equal(vdk_device_read_config(t->dev, 0, &c, sizeof(c)), 0);
	assert_int_equal(c.cols, 0);
	assert_int_equal(c.rows, 0);
	assert_int_equal(le32toh(c.max_nr_ports), 1);
	assert_int_equal(c.emerg_wr, 0);
	assert_int_equal(vdk_device_read_config(t->dev, 10, &c, 4), -ERANGE);
	/* MULTIPORT is not offered. */
	assert_int_equal(vdk_device_ack_features(
				 t->dev, 1ull << VIRTIO_CONSOLE_F_MULTIPORT),
			 -EINVAL);
	assert_int_equal(vdk_console_set_size(t->con, 100, 40), -EOPNOTSUPP);

	const struct vdk_console_config bad[] = {
		{.output_fd = -1, .queue_max_size = 100},
		{.output_fd = -1,
		 .input_buffer_size = VDK_CONSOLE_MAX_INPUT_BUFFER + 1},
		{.output_fd = -1, .cols = 80},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(vdk_console_new(&bad[i], &err));
		assert_int_equal(err, -EINVAL);
	}
	x = vdk_console_new(NULL, &err);
	assert_non_null(x);
	assert_int_equal(err, 0);
	assert_int_equal(vdk_console_push_input(x, NULL, 1), -EINVAL);
	vdk_console_free(x);
	vdk_console_free(NULL);
}

static void test_output_to_pipe(void **state)
{
	struct env *t = *state;
	/* "hello " and "world\n" in two descriptors, then a writable one the
	 * device must leave alone. */
	struct guest_buf b[3] = {
		{0x20000, 6, false},
		{0x30000, 6, false},
		{0x40000, 16, true},
	};
	char out[64], w[16];
	uint32_t id, len = 99;
	int head;

	activate(t);
	put(t, 0x20000, "hello ", 6);
	put(t, 0x30000, "world\n", 6);
	memset(w, 0x5a, sizeof(w));
	put(t, 0x40000, w, sizeof(w));
	head = guest_ring_add_chain(&t->gr[TX], b, 3);
	assert_true(head >= 0);
	assert_true(send_str(t, 0x50000, "second line\n") >= 0);
	vdk_device_queue_notify(t->dev, TX);

	assert_int_equal(drain(t, out, sizeof(out)), 24);
	assert_memory_equal(out, "hello world\nsecond line\n", 24);
	assert_int_equal(guest_ring_get_used(&t->gr[TX], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 0); /* nothing written into the chain */
	assert_int_equal(guest_ring_get_used(&t->gr[TX], NULL, &len), 1);
	assert_int_equal(guest_ring_get_used(&t->gr[TX], NULL, NULL), 0);
	assert_int_equal(used_count(t, TX), 1); /* one for the batch */
	assert_int_equal(used_count(t, RX), 0);
	char w2[16];
	assert_int_equal(vdk_mem_read(t->mem, 0x40000, w2, sizeof(w2)), 0);
	assert_memory_equal(w, w2, sizeof(w));

	struct vdk_console_stats s = vdk_console_stats(t->con);
	assert_int_equal(s.output_bytes, 24);
	assert_int_equal(s.output_chains, 2);
	assert_int_equal(s.output_dropped, 0);
	assert_false(vdk_console_output_blocked(t->con));
	/* A notification for a queue that does not exist is ignored. */
	vdk_device_queue_notify(t->dev, 2);
}

static int setup_small_queue(void **state)
{
	return setup_cfg(state,
			 (struct vdk_console_config){.queue_max_size = QSIZE},
			 true);
}

/* At most queue_max_size transmit chains per wake-up: past that the
 * device stops as if the output were blocked, and the program's next
 * vdk_console_flush_output() (the fd is writable at once) goes on. */
static void test_output_budget_per_wakeup(void **state)
{
	struct env *t = *state;
	char out[QSIZE + 8];

	activate(t);
	for (int i = 0; i < QSIZE; i++)
		assert_true(send_str(t, 0x20000 + 0x100 * (uint64_t)i, "x") >=
			    0);
	vdk_device_queue_notify(t->dev, TX);
	assert_int_equal(vdk_console_stats(t->con).output_chains, QSIZE);
	assert_true(vdk_console_output_blocked(t->con));
	/* the driver refilled meanwhile */
	for (int i = 0; i < 3; i++)
		assert_true(send_str(t, 0x20000 + 0x100 * (uint64_t)i, "y") >=
			    0);
	assert_int_equal(vdk_console_flush_output(t->con), 0);
	assert_int_equal(vdk_console_stats(t->con).output_chains, QSIZE + 3);
	assert_false(vdk_console_output_blocked(t->con));
	assert_int_equal(drain(t, out, sizeof(out)), QSIZE + 3);
}

static void test_output_eagain_keeps_chain(void **state)
{
	struct env *t = *state;
	static char big[6000], out[16384];
	char fill[4096];
	size_t filled = 0, got;
	uint32_t id, len;
	int head;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	activate(t);
	/* Fill the pipe so that the device's write says EAGAIN. */
	memset(fill, '#', sizeof(fill));
	for (;;) {
		ssize_t n = write(t->pipe_wr, fill, sizeof(fill));

		if (n <= 0)
			break;
		filled += (size_t)n;
	}
	assert_true(filled >= 4096);
	put(t, 0x20000, big, sizeof(big));
	struct guest_buf b = {0x20000, sizeof(big), false};
	head = guest_ring_add_chain(&t->gr[TX], &b, 1);
	assert_true(send_str(t, 0x30000, "after\n") >= 0);
	vdk_device_queue_notify(t->dev, TX);

	/* Kept, not returned, not dropped. */
	assert_true(vdk_console_output_blocked(t->con));
	assert_int_equal(guest_ring_used_idx(&t->gr[TX]), 0);
	assert_int_equal(vdk_console_flush_output(t->con), 1);
	/* An emergency write while blocked waits behind the output. */
	uint32_t emerg = htole32('!');
	assert_int_equal(
		vdk_device_write_config(
			t->dev,
			offsetof(struct virtio_console_config, emerg_wr),
			&emerg, 4),
		0);

	/* Make room: part of the chain goes out, still blocked. */
	got = drain(t, out, 4096);
	assert_int_equal(got, 4096);
	assert_int_equal(vdk_console_flush_output(t->con), 1);
	assert_int_equal(guest_ring_used_idx(&t->gr[TX]), 0);
	/* Drain everything; the rest follows in order. */
	size_t total = 0;
	for (int round = 0;
	     round < 10 && total < filled - 4096 + sizeof(big) + 7; round++) {
		total += drain(t, out + total, sizeof(out) - total);
		vdk_console_flush_output(t->con);
	}
	total += drain(t, out + total, sizeof(out) - total);
	assert_int_equal(total, filled - 4096 + sizeof(big) + 6 + 1);
	size_t pre = filled - 4096;
	for (size_t i = 0; i < pre; i++)
		assert_int_equal(out[i], '#');
	assert_memory_equal(out + pre, big, sizeof(big));
	/* The emergency byte went out before the chains that were still
	 * waiting in the available ring. */
	assert_int_equal(out[pre + sizeof(big)], '!');
	assert_memory_equal(out + pre + sizeof(big) + 1, "after\n", 6);
	assert_false(vdk_console_output_blocked(t->con));
	assert_int_equal(guest_ring_get_used(&t->gr[TX], &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(guest_ring_get_used(&t->gr[TX], NULL, &len), 1);
	struct vdk_console_stats s = vdk_console_stats(t->con);
	assert_int_equal(s.output_bytes, sizeof(big) + 6 + 1);
	assert_int_equal(s.emerg_bytes, 1);
	assert_int_equal(s.output_dropped, 0);
}

/* The device watches its own output fd on the loop it was given: blocked
 * output is flushed by the loop when the fd becomes writable, nobody calls
 * vdk_console_flush_output(). */
static void test_output_readiness_on_loop(void **state)
{
	struct env *t = *state;
	static char big[6000], out[16384];
	char fill[4096];
	size_t filled = 0, total = 0;
	struct vdk_loop *loop;
	int err;

	loop = vdk_loop_epoll_new(&err);
	assert_non_null(loop);
	assert_int_equal(vdk_device_attach_loop(t->dev, loop), 0);
	assert_int_equal(vdk_device_attach_loop(t->dev, loop), -EBUSY);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	activate(t);
	memset(fill, '#', sizeof(fill));
	for (;;) {
		ssize_t n = write(t->pipe_wr, fill, sizeof(fill));

		if (n <= 0)
			break;
		filled += (size_t)n;
	}
	put(t, 0x20000, big, sizeof(big));
	struct guest_buf b = {0x20000, sizeof(big), false};
	assert_true(guest_ring_add_chain(&t->gr[TX], &b, 1) >= 0);
	vdk_device_queue_notify(t->dev, TX);
	assert_true(vdk_console_output_blocked(t->con));
	/* nothing writable yet: the loop has nothing to do */
	assert_int_equal(vdk_loop_epoll_run_once(loop, 0), 0);
	for (int round = 0; round < 20 && total < filled + sizeof(big);
	     round++) {
		total += drain(t, out + total, sizeof(out) - total);
		(void)vdk_loop_epoll_run_once(loop, 100);
	}
	total += drain(t, out + total, sizeof(out) - total);
	assert_int_equal(total, filled + sizeof(big));
	assert_memory_equal(out + filled, big, sizeof(big));
	assert_false(vdk_console_output_blocked(t->con));
	assert_int_equal(guest_ring_used_idx(&t->gr[TX]), 1);
	/* output flowing: the fd is not watched, the loop stays idle */
	assert_int_equal(vdk_loop_epoll_run_once(loop, 0), 0);
	/* the device leaves the loop when it is freed (teardown) */
	vdk_console_free(t->con);
	t->con = NULL;
	vdk_loop_epoll_free(loop);
}

static void test_output_error_drops(void **state)
{
	struct env *t = *state;
	uint32_t len;

	activate(t);
	close(t->pipe_rd); /* EPIPE (SIGPIPE ignored in main) */
	t->pipe_rd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(send_str(t, 0x20000, "lost\n") >= 0);
	vdk_device_queue_notify(t->dev, TX);
	assert_int_equal(guest_ring_get_used(&t->gr[TX], NULL, &len), 1);
	assert_false(vdk_console_output_blocked(t->con));
	assert_int_equal(vdk_console_stats(t->con).output_dropped, 5);
	assert_int_equal(vdk_console_stats(t->con).output_bytes, 0);
}

static void test_input_delivered(void **state)
{
	struct env *t = *state;
	char buf[16];
	uint32_t id, len;
	int h1, h2;

	activate(t);
	h1 = post_rx(t, 0x20000, 8);
	h2 = post_rx(t, 0x30000, 8);
	vdk_device_queue_notify(t->dev, RX); /* nothing to deliver yet */
	assert_int_equal(guest_ring_used_idx(&t->gr[RX]), 0);
	assert_int_equal(vdk_console_push_input(t->con, "abcdefghij", 10), 10);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], &id, &len), 1);
	assert_int_equal(id, h1);
	assert_int_equal(len, 8);
	assert_int_equal(vdk_mem_read(t->mem, 0x20000, buf, 8), 0);
	assert_memory_equal(buf, "abcdefgh", 8);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], &id, &len), 1);
	assert_int_equal(id, h2);
	assert_int_equal(len, 2);
	assert_int_equal(vdk_mem_read(t->mem, 0x30000, buf, 2), 0);
	assert_memory_equal(buf, "ij", 2);
	assert_int_equal(used_count(t, RX), 1);
	assert_int_equal(vdk_console_input_pending(t->con), 0);
	struct vdk_console_stats s = vdk_console_stats(t->con);
	assert_int_equal(s.input_bytes, 10);
	assert_int_equal(s.input_chains, 2);
	/* A buffer split over two descriptors is filled across both. */
	struct guest_buf b[2] = {{0x40000, 3, true}, {0x50000, 5, true}};
	assert_true(guest_ring_add_chain(&t->gr[RX], b, 2) >= 0);
	assert_int_equal(vdk_console_push_input(t->con, "12345678", 8), 8);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], NULL, &len), 1);
	assert_int_equal(len, 8);
	assert_int_equal(vdk_mem_read(t->mem, 0x40000, buf, 3), 0);
	assert_int_equal(vdk_mem_read(t->mem, 0x50000, buf + 3, 5), 0);
	assert_memory_equal(buf, "12345678", 8);
	assert_int_equal(vdk_console_push_input(t->con, "", 0), 0);
}

/*
 * Input with VIRTIO_RING_F_EVENT_IDX: the driver posts one small receiveq
 * buffer at a time and notifies only when avail_event asks for it
 * (vring_need_event(), virtio 1.2 §2.7.10), as Linux does. Pending input
 * must keep flowing: the device re-arms avail_event whenever it runs out of
 * buffers with input left (before the fix it stalled after the first).
 */
static void test_input_event_idx(void **state)
{
	struct env *t = *state;
	char in[1000], got[1000];
	size_t have = 0;
	unsigned kicks = 0;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (char)('a' + i % 26);
	activate_with(t, F_BASE | (1ull << VIRTIO_RING_F_EVENT_IDX));
	assert_int_equal(vdk_console_push_input(t->con, in, 600), 600);
	for (unsigned round = 0; have < sizeof(in) && round < 1000; round++) {
		uint16_t old = t->gr[RX].avail_idx, ev;
		uint32_t id, len;

		if (round == 20) /* more input while buffers trickle in */
			assert_int_equal(
				vdk_console_push_input(t->con, in + 600, 400),
				400);
		assert_true(post_rx(t, 0x20000, 8) >= 0);
		ev = guest_ring_avail_event(&t->gr[RX]);
		if ((uint16_t)(t->gr[RX].avail_idx - ev - 1) <
		    (uint16_t)(t->gr[RX].avail_idx - old)) {
			vdk_device_queue_notify(t->dev, RX);
			kicks++;
		}
		if (guest_ring_get_used(&t->gr[RX], &id, &len) != 1)
			fail_msg("buffer %u not filled with %zu of %zu bytes "
				 "pending (avail_event %u, %u kicks)",
				 round, sizeof(in) - have, sizeof(in), ev,
				 kicks);
		assert_true(len >= 1 && len <= 8 && have + len <= sizeof(in));
		assert_int_equal(vdk_mem_read(t->mem, 0x20000, got + have, len),
				 0);
		have += len;
	}
	assert_int_equal(have, sizeof(in));
	assert_memory_equal(got, in, sizeof(in));
	assert_int_equal(vdk_console_input_pending(t->con), 0);
}

static void test_input_buffered_until_posted(void **state)
{
	struct env *t = *state;
	char in[100], buf[100];
	uint32_t len;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (char)(i * 3 + 1);
	/* Typed before the driver is there: delivered at activation into
	 * the buffer posted before DRIVER_OK, with no notification. */
	assert_int_equal(vdk_console_push_input(t->con, in, 10), 10);
	assert_int_equal(vdk_console_input_pending(t->con), 10);
	t->early_rx_len = 64;
	activate(t);
	assert_int_equal(vdk_console_input_pending(t->con), 0);
	assert_int_equal(used_count(t, RX), 1);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], NULL, &len), 1);
	assert_int_equal(len, 10);
	assert_int_equal(vdk_mem_read(t->mem, 0x20000, buf, 10), 0);
	assert_memory_equal(buf, in, 10);

	/* No buffers: all 100 wait, nothing is returned. */
	assert_int_equal(vdk_console_push_input(t->con, in, 100), 100);
	assert_int_equal(vdk_console_input_pending(t->con), 100);
	assert_int_equal(guest_ring_used_idx(&t->gr[RX]), 1);
	assert_true(post_rx(t, 0x30000, 64) >= 0);
	vdk_device_queue_notify(t->dev, RX);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], NULL, &len), 1);
	assert_int_equal(len, 64);
	assert_int_equal(vdk_console_input_pending(t->con), 36);
	assert_true(post_rx(t, 0x40000, 64) >= 0);
	vdk_device_queue_notify(t->dev, RX);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], NULL, &len), 1);
	assert_int_equal(len, 36);
	assert_int_equal(vdk_mem_read(t->mem, 0x30000, buf, 64), 0);
	assert_int_equal(vdk_mem_read(t->mem, 0x40000, buf + 64, 36), 0);
	assert_memory_equal(buf, in, 100);
	assert_int_equal(vdk_console_input_pending(t->con), 0);
}

static void test_input_buffer_full(void **state)
{
	struct env *t = *state;
	char buf[40];
	uint32_t len;

	activate(t);
	/* 16-byte buffer, no receiveq buffers: 16 of 40 accepted. */
	assert_int_equal(
		vdk_console_push_input(t->con, "0123456789abcdefXYZ", 19), 16);
	assert_int_equal(vdk_console_push_input(t->con, "X", 1), 0);
	/* A posted buffer takes what waits; the freed room takes the new
	 * bytes in the same call. */
	assert_true(post_rx(t, 0x20000, 24) >= 0);
	assert_int_equal(vdk_console_push_input(t->con, "XYZ-more-input", 14),
			 14);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], NULL, &len), 1);
	assert_int_equal(len, 16);
	assert_int_equal(vdk_mem_read(t->mem, 0x20000, buf, 16), 0);
	assert_memory_equal(buf, "0123456789abcdef", 16);
	assert_int_equal(vdk_console_input_pending(t->con), 14);
	assert_true(post_rx(t, 0x30000, 24) >= 0);
	vdk_device_queue_notify(t->dev, RX);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], NULL, &len), 1);
	assert_int_equal(len, 14);
	assert_int_equal(vdk_mem_read(t->mem, 0x30000, buf, 14), 0);
	assert_memory_equal(buf, "XYZ-more-input", 14);
}

static void test_config_size(void **state)
{
	struct env *t = *state;
	struct virtio_console_config c;
	uint16_t v;

	assert_true(t->dev->ops->features(t->dev->impl) & F_SIZE);
	assert_int_equal(vdk_device_read_config(t->dev, 0, &c, sizeof(c)), 0);
	assert_int_equal(le16toh(c.cols), 80);
	assert_int_equal(le16toh(c.rows), 25);
	/* Narrow reads at any offset. */
	assert_int_equal(vdk_device_read_config(t->dev, 2, &v, 2), 0);
	assert_int_equal(le16toh(v), 25);
	/* The driver cannot change the size. */
	v = htole16(1);
	assert_int_equal(vdk_device_write_config(t->dev, 0, &v, 2), 0);
	assert_int_equal(vdk_device_read_config(t->dev, 0, &v, 2), 0);
	assert_int_equal(le16toh(v), 80);

	/* Not active: the size changes without a notification. */
	assert_int_equal(vdk_console_set_size(t->con, 100, 30), 0);
	assert_int_equal(vdk_console_set_size(t->con, 0, 30), -EINVAL);
	assert_int_equal(t->config_changes, 0);
	activate_with(t, F_BASE | F_SIZE);
	assert_int_equal(vdk_console_set_size(t->con, 132, 43), 0);
	assert_int_equal(t->config_changes, 1);
	assert_int_equal(vdk_console_set_size(t->con, 132, 43), 0);
	assert_int_equal(t->config_changes, 1); /* unchanged: none */
	assert_int_equal(vdk_device_read_config(t->dev, 0, &c, 4), 0);
	assert_int_equal(le16toh(c.cols), 132);
	assert_int_equal(le16toh(c.rows), 43);
	/* Driver without VIRTIO_CONSOLE_F_SIZE: no notification. */
	assert_int_equal(vdk_device_reset(t->dev), 0);
	activate_with(t, F_BASE);
	assert_int_equal(vdk_console_set_size(t->con, 90, 20), 0);
	assert_int_equal(t->config_changes, 1);
}

static void test_emergency_write(void **state)
{
	struct env *t = *state;
	const size_t off = offsetof(struct virtio_console_config, emerg_wr);
	uint32_t v = htole32(0x4142); /* low byte 'B' */
	uint8_t b = 'C';
	char out[8];

	/* Works before any feature negotiation (§5.3.4). */
	assert_int_equal(vdk_device_write_config(t->dev, off, &v, 4), 0);
	assert_int_equal(vdk_device_write_config(t->dev, off, &b, 1), 0);
	/* A write ending before emerg_wr or after its first byte: nothing. */
	assert_int_equal(vdk_device_write_config(t->dev, off - 2, &v, 2), 0);
	assert_int_equal(vdk_device_write_config(t->dev, off + 1, &b, 1), 0);
	assert_int_equal(drain(t, out, sizeof(out)), 2);
	assert_memory_equal(out, "BC", 2);
	assert_int_equal(vdk_console_stats(t->con).emerg_bytes, 2);
}

static void test_reset(void **state)
{
	struct env *t = *state;
	char out[64], buf[8];
	uint32_t len;

	activate(t);
	assert_true(send_str(t, 0x20000, "one\n") >= 0);
	vdk_device_queue_notify(t->dev, TX);
	assert_int_equal(drain(t, out, sizeof(out)), 4);
	assert_int_equal(vdk_device_reset(t->dev), 0);

	/* Reset: queues forgotten; notifications and input do not touch
	 * the old rings; input waits for the next activation. */
	assert_true(send_str(t, 0x20000, "two\n") >= 0);
	assert_true(post_rx(t, 0x30000, 8) >= 0);
	vdk_device_queue_notify(t->dev, TX);
	assert_int_equal(vdk_console_push_input(t->con, "in", 2), 2);
	assert_int_equal(drain(t, out, sizeof(out)), 0);
	assert_int_equal(guest_ring_used_idx(&t->gr[TX]), 1);
	assert_int_equal(guest_ring_used_idx(&t->gr[RX]), 0);
	assert_int_equal(vdk_console_input_pending(t->con), 2);

	activate(t); /* fresh rings */
	assert_int_equal(guest_ring_used_idx(&t->gr[TX]), 0);
	assert_true(send_str(t, 0x20000, "three\n") >= 0);
	vdk_device_queue_notify(t->dev, TX);
	assert_int_equal(drain(t, out, sizeof(out)), 6);
	assert_memory_equal(out, "three\n", 6);
	assert_true(post_rx(t, 0x30000, 8) >= 0);
	vdk_device_queue_notify(t->dev, RX);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], NULL, &len), 1);
	assert_int_equal(len, 2);
	assert_int_equal(vdk_mem_read(t->mem, 0x30000, buf, 2), 0);
	assert_memory_equal(buf, "in", 2);
}

/* A chain that loops: desc 0 → 1 → 0, on queue @q. */
static void push_loop(struct env *t, int q)
{
	uint16_t f = q == RX ? VRING_DESC_F_WRITE : 0;

	assert_int_equal(guest_ring_set_desc(&t->gr[q], 0, 0x20000, 8,
					     f | VRING_DESC_F_NEXT, 1),
			 0);
	assert_int_equal(guest_ring_set_desc(&t->gr[q], 1, 0x20008, 8,
					     f | VRING_DESC_F_NEXT, 0),
			 0);
	assert_int_equal(guest_ring_push(&t->gr[q], 0), 0);
}

static void test_driver_error_needs_reset(void **state)
{
	struct env *t = *state;
	char out[16];
	uint32_t len;

	activate(t);
	push_loop(t, TX);
	vdk_device_queue_notify(t->dev, TX);
	assert_int_equal(t->needs_reset, 1);
	assert_true(t->irq.needs_reset);
	vdk_device_queue_notify(t->dev, TX);
	assert_int_equal(t->needs_reset, 1); /* reported once */
	assert_int_equal(guest_ring_used_idx(&t->gr[TX]), 0);

	push_loop(t, RX);
	assert_int_equal(vdk_console_push_input(t->con, "abc", 3), 3);
	assert_int_equal(t->needs_reset, 2);
	assert_int_equal(vdk_console_input_pending(t->con), 3);

	/* Reset and a new activation bring it back; the input survived. */
	assert_int_equal(vdk_device_reset(t->dev), 0);
	activate(t);
	assert_true(send_str(t, 0x30000, "ok") >= 0);
	vdk_device_queue_notify(t->dev, TX);
	assert_int_equal(drain(t, out, sizeof(out)), 2);
	assert_true(post_rx(t, 0x40000, 8) >= 0);
	vdk_device_queue_notify(t->dev, RX);
	assert_int_equal(guest_ring_get_used(&t->gr[RX], NULL, &len), 1);
	assert_int_equal(len, 3);
}

/* Sleep with input waiting and an output chain blocked on the fd: the
 * chain is returned, its rest and the input travel in the snapshot. */
static void test_snapshot_pending_bytes(void **state)
{
	struct env *t = *state;
	static char big[5000], out[16384];
	struct vdk_console_config cfg = {0};
	struct vdk_console *b;
	uint8_t *snap, *snap2;
	size_t snap_len, snap2_len, filled = 0, total = 0;
	uint32_t len;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 11);
	activate(t);
	assert_int_equal(vdk_console_push_input(t->con, "pending", 7), 7);
	memset(out, '#', 4096);
	for (ssize_t n; (n = write(t->pipe_wr, out, 4096)) > 0;)
		filled += (size_t)n;
	put(t, 0x20000, big, sizeof(big));
	struct guest_buf gb = {0x20000, sizeof(big), false};
	assert_true(guest_ring_add_chain(&t->gr[TX], &gb, 1) >= 0);
	vdk_device_queue_notify(t->dev, TX);
	assert_true(vdk_console_output_blocked(t->con));
	assert_int_equal(guest_ring_used_idx(&t->gr[TX]), 0);

	assert_int_equal(vdk_device_sleep(t->dev), 0);
	assert_int_equal(guest_ring_get_used(&t->gr[TX], NULL, &len), 1);
	assert_int_equal(vdk_device_snapshot(t->dev, &snap, &snap_len), 0);

	/* A fresh device restores it; the output resumes where it stopped. */
	cfg.output_fd = t->pipe_wr;
	b = vdk_console_new(&cfg, NULL);
	assert_non_null(b);
	assert_int_equal(vdk_device_sleep(vdk_console_device(b)), 0);
	assert_int_equal(
		vdk_device_restore(vdk_console_device(b), snap, snap_len), 0);
	assert_int_equal(vdk_console_input_pending(b), 7);
	assert_int_equal(
		vdk_device_snapshot(vdk_console_device(b), &snap2, &snap2_len),
		0);
	assert_int_equal(snap2_len, snap_len);
	assert_memory_equal(snap2, snap, snap_len);
	/* The old device is done with; only @b writes from now on. */
	vdk_console_free(t->con);
	t->con = NULL;
	for (int round = 0; round < 20; round++) {
		total += drain(t, out + total, sizeof(out) - total);
		if (vdk_console_flush_output(b) == 0 &&
		    total >= filled + sizeof(big))
			break;
	}
	total += drain(t, out + total, sizeof(out) - total);
	assert_int_equal(total, filled + sizeof(big));
	assert_memory_equal(out + filled, big, sizeof(big));
	assert_int_equal(vdk_console_stats(b).output_dropped, 0);
	assert_int_equal(vdk_console_stats(b).output_chains, 1);

	free(snap);
	free(snap2);
	vdk_console_free(b);
}

/* Output buffered at sleep and then partly flushed (a write that the pipe
 * cut short) travels in the snapshot from where the flush stopped: the
 * restored device writes the rest once, nothing twice. (Found by
 * fuzz/fuzz_console: the snapshot took the buffer from its start.) */
static void test_snapshot_partly_flushed_output(void **state)
{
	struct env *t = *state;
	static char big[10000], out[sizeof(big)];
	struct vdk_console_config cfg = {0};
	struct vdk_console *b;
	size_t total = 0;
	uint8_t *snap;
	size_t snap_len;
	uint32_t len;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 251);
	activate(t);
	/* 4096 bytes fill the pipe; the chain is kept with the rest. */
	put(t, 0x20000, big, sizeof(big));
	struct guest_buf gb = {0x20000, sizeof(big), false};
	assert_true(guest_ring_add_chain(&t->gr[TX], &gb, 1) >= 0);
	vdk_device_queue_notify(t->dev, TX);
	assert_true(vdk_console_output_blocked(t->con));
	/* Sleep moves the rest (5904 bytes) into the output buffer. */
	assert_int_equal(vdk_device_sleep(t->dev), 0);
	assert_int_equal(guest_ring_get_used(&t->gr[TX], NULL, &len), 1);
	assert_int_equal(vdk_device_wake(t->dev, NULL, NULL, NULL), 0);
	total += drain(t, out, sizeof(out));
	assert_int_equal(total, 4096);
	/* One more pipe-full of the buffer goes out: it is half flushed. */
	assert_int_equal(vdk_console_flush_output(t->con), 1);
	total += drain(t, out + total, sizeof(out) - total);
	assert_int_equal(total, 8192);

	assert_int_equal(vdk_device_sleep(t->dev), 0);
	assert_int_equal(vdk_device_snapshot(t->dev, &snap, &snap_len), 0);
	cfg.output_fd = t->pipe_wr;
	b = vdk_console_new(&cfg, NULL);
	assert_non_null(b);
	assert_int_equal(vdk_device_sleep(vdk_console_device(b)), 0);
	assert_int_equal(
		vdk_device_restore(vdk_console_device(b), snap, snap_len), 0);
	free(snap);
	vdk_console_free(t->con);
	t->con = NULL;
	for (int round = 0; round < 20 && total < sizeof(big); round++) {
		(void)vdk_console_flush_output(b);
		total += drain(t, out + total, sizeof(out) - total);
	}
	assert_int_equal(total, sizeof(big));
	assert_memory_equal(out, big, sizeof(big));
	assert_int_equal(vdk_console_flush_output(b), 0);
	assert_int_equal(drain(t, out, sizeof(out)), 0); /* nothing more */
	vdk_console_free(b);
}

/* A device state map as con_snapshot() writes it, with @input_len bytes
 * of input, @cols x @rows, and key @skip left out (NULL: none). */
static cbor_item_t *state_map(size_t input_len, uint64_t cols, uint64_t rows,
			      const char *skip)
{
	static const char *const counters[] = {
		"input_bytes",	 "input_chains", "output_bytes",
		"output_chains", "emerg_bytes",	 "output_dropped",
	};
	static uint8_t bytes[8192];
	cbor_item_t *m = cbor_new_indefinite_map();
	struct kv {
		const char *key;
		cbor_item_t *val;
	} kv[10] = {
		{"input", cbor_build_bytestring(bytes, input_len)},
		{"output", cbor_build_bytestring(bytes, 3)},
		{"cols", cbor_build_uint64(cols)},
		{"rows", cbor_build_uint64(rows)},
	};

	for (size_t i = 0; i < 6; i++)
		kv[4 + i] = (struct kv){counters[i], cbor_build_uint8(1)};
	assert_non_null(m);
	for (size_t i = 0; i < 10; i++) {
		cbor_item_t *k = cbor_build_string(kv[i].key);

		assert_non_null(kv[i].val);
		if (!skip || strcmp(skip, kv[i].key))
			assert_true(cbor_map_add(
				m, (struct cbor_pair){k, kv[i].val}));
		cbor_decref(&k);
		cbor_decref(&kv[i].val);
	}
	return m;
}

static int restore_with(struct env *t, cbor_item_t *m)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len = cbor_serialize_alloc(m, &buf, &cap);
	int r;

	assert_true(len > 0);
	r = t->dev->ops->restore(t->dev->impl, buf, len);
	free(buf);
	cbor_decref(&m);
	return r;
}

/* The device's own part of a snapshot is checked before it is used. */
static void test_restore_refuses(void **state)
{
	struct env *t = *state;
	cbor_item_t *m;

	/* More input than the 4 KiB buffer holds. */
	assert_int_equal(restore_with(t, state_map(4097, 0, 0, NULL)), -EINVAL);
	/* A size on a device that offers none; a missing key; a key twice;
	 * a wrong type. */
	assert_int_equal(restore_with(t, state_map(1, 80, 25, NULL)), -EINVAL);
	assert_int_equal(restore_with(t, state_map(1, 0, 0, "emerg_bytes")),
			 -EINVAL);
	m = state_map(1, 0, 0, NULL);
	cbor_item_t *k = cbor_build_string("cols"), *v = cbor_build_uint8(0);
	assert_true(cbor_map_add(m, (struct cbor_pair){k, v}));
	cbor_decref(&k);
	cbor_decref(&v);
	assert_int_equal(restore_with(t, m), -EINVAL);
	m = state_map(1, 0, 0, "rows");
	k = cbor_build_string("rows");
	v = cbor_build_string("25");
	assert_true(cbor_map_add(m, (struct cbor_pair){k, v}));
	cbor_decref(&k);
	cbor_decref(&v);
	assert_int_equal(restore_with(t, m), -EINVAL);
	assert_int_equal(vdk_console_input_pending(t->con), 0);
	assert_int_equal(vdk_console_stats(t->con).input_bytes, 0);
	/* The well-formed one is taken. */
	assert_int_equal(restore_with(t, state_map(4096, 0, 0, NULL)), 0);
	assert_int_equal(vdk_console_input_pending(t->con), 4096);
	assert_int_equal(vdk_console_stats(t->con).output_dropped, 1);
}

/* ---- input from another thread ----------------------------------------- */

#define STREAM_BYTES 100000u
#define RX_BUF	     256u
#define RX_POSTED    16

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 8));
}

static void *pusher(void *arg)
{
	struct env *t = arg;
	uint8_t chunk[1000];
	size_t sent = 0;

	while (sent < STREAM_BYTES) {
		size_t n = STREAM_BYTES - sent < sizeof(chunk)
				   ? STREAM_BYTES - sent
				   : sizeof(chunk);
		int r;

		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern(sent + i);
		r = vdk_console_push_input(t->con, chunk, n);
		if (r < 0)
			return NULL;
		sent += (size_t)r;
		if ((size_t)r < n)
			usleep(50);
	}
	return NULL;
}

static void test_input_from_thread(void **state)
{
	struct env *t = *state;
	uint64_t gpa_of[QSIZE];
	uint8_t buf[RX_BUF];
	size_t received = 0;
	unsigned idle = 0;
	pthread_t th;

	activate(t);
	for (int i = 0; i < RX_POSTED; i++) {
		uint64_t gpa = 0x20000 + (uint64_t)i * RX_BUF;
		int h = post_rx(t, gpa, RX_BUF);

		assert_true(h >= 0);
		gpa_of[h] = gpa;
	}
	assert_int_equal(pthread_create(&th, NULL, pusher, t), 0);
	while (received < STREAM_BYTES && idle < 200000) {
		uint32_t id, len;
		int h;

		if (guest_ring_get_used(&t->gr[RX], &id, &len) != 1) {
			idle++;
			vdk_device_queue_notify(t->dev, RX);
			usleep(10);
			continue;
		}
		idle = 0;
		assert_true(id < QSIZE && len <= RX_BUF);
		assert_int_equal(vdk_mem_read(t->mem, gpa_of[id], buf, len), 0);
		for (uint32_t i = 0; i < len; i++)
			if (buf[i] != pattern(received + i))
				fail_msg("byte %zu: %02x, expected %02x",
					 received + i, buf[i],
					 pattern(received + i));
		received += len;
		h = post_rx(t, gpa_of[id], RX_BUF);
		assert_true(h >= 0);
		gpa_of[h] = gpa_of[id];
		vdk_device_queue_notify(t->dev, RX);
	}
	pthread_join(th, NULL);
	assert_int_equal(received, STREAM_BYTES);
	assert_int_equal(vdk_console_stats(t->con).input_bytes, STREAM_BYTES);
	assert_true(used_count(t, RX) > 0);
}

/* ---- conformance ----------------------------------------------------- */

static int conf_pipe[2] = {-1, -1};
static int conf_head;
static unsigned conf_seq;
static char conf_msg[32];

static struct vdk_device *conf_create(void *opaque)
{
	struct vdk_console_config cfg = {.cols = 80, .rows = 24};
	struct vdk_console *c;

	(void)opaque;
	cfg.output_fd = conf_pipe[1];
	c = vdk_console_new(&cfg, NULL);
	return c ? vdk_console_device(c) : NULL;
}

static int conf_submit(struct vdk_conformance_env *env, void *opaque)
{
	int n = snprintf(conf_msg, sizeof(conf_msg), "conformance %u\n",
			 conf_seq++);
	uint64_t gpa = vdk_conformance_alloc(env, (uint32_t)n);
	struct guest_buf b = {gpa, (uint32_t)n, false};

	(void)opaque;
	if (vdk_mem_write(env->mem, gpa, conf_msg, (size_t)n) < 0)
		return -EFAULT;
	conf_head = guest_ring_add_chain(&env->rings[TX], &b, 1);
	return conf_head < 0 ? conf_head : TX;
}

static int conf_check(struct vdk_conformance_env *env, void *opaque)
{
	char out[64];
	uint32_t id, len;
	ssize_t n;

	(void)opaque;
	if (guest_ring_get_used(&env->rings[TX], &id, &len) != 1)
		return -ENOENT;
	if ((int)id != conf_head || len != 0)
		return -EINVAL;
	n = read(conf_pipe[0], out, sizeof(out));
	if (n != (ssize_t)strlen(conf_msg) || memcmp(out, conf_msg, (size_t)n))
		return -EIO;
	return 0;
}

static const struct vdk_conformance console_suite = {
	.name = "console",
	.create = conf_create,
	.submit = conf_submit,
	.check = conf_check,
	.modify_changes_snapshot = true,
};

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_budget_per_wakeup,
						setup_small_queue, teardown),
		cmocka_unit_test_setup_teardown(test_output_to_pipe, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_output_eagain_keeps_chain,
						setup_nonblock, teardown),
		cmocka_unit_test_setup_teardown(test_output_readiness_on_loop,
						setup_nonblock, teardown),
		cmocka_unit_test_setup_teardown(test_output_error_drops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_input_event_idx, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_input_delivered, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_input_buffered_until_posted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_buffer_full,
						setup_small_input, teardown),
		cmocka_unit_test_setup_teardown(test_config_size, setup_sized,
						teardown),
		cmocka_unit_test_setup_teardown(test_emergency_write, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_driver_error_needs_reset,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_pending_bytes,
						setup_nonblock, teardown),
		cmocka_unit_test_setup_teardown(
			test_snapshot_partly_flushed_output, setup_nonblock,
			teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_input_from_thread, setup,
						teardown),
		VDK_CONFORMANCE_TESTS(&console_suite),
	};

	signal(SIGPIPE, SIG_IGN);
	if (pipe2(conf_pipe, O_CLOEXEC) < 0 ||
	    fcntl(conf_pipe[0], F_SETFL, O_NONBLOCK) < 0)
		return 1;
	vdk_log_set_sink(quiet_sink, NULL, VDK_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
