/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the virtio-console device (src/devices/console.c,
 * console_io.c; virtio 1.2 §5.3) driven through the device framework by a
 * hostile driver (the mock driver tests/mock/guest_ring.c) and by host
 * input, with its output going to a small non-blocking pipe (EAGAIN),
 * /dev/null, nowhere (-1) or a pipe nobody reads (EPIPE).
 *
 * Input: four configuration bytes, then operations until the input ends
 * (missing argument bytes read as 0):
 *   [0] bit 0 EVENT_IDX, 1 INDIRECT_DESC, 2 offer a console size, 3 the
 *       driver accepts it, 4 the driver accepts EMERG_WRITE, 5-6 output:
 *       pipe, /dev/null, discarded, broken pipe
 *   [1] bits 0-1 largest queue size 4 << n; bits 2-3 the driver's queue
 *       size is that >> (n % 3)
 *   [2] host input buffer, bytes (0: the default)
 *   [3] ring indices start at 0x10000 - n, so they wrap
 *   op % 10: 0 post a receiveq chain, 1 post a transmitq chain (either
 *       direct or indirect, with buffers of any length, zero-length ones,
 *       readable buffers on receiveq, writable ones on transmitq),
 *       2 notify, 3 push input, 4 read the output pipe (or close its
 *       read end: EPIPE from then on), 5 flush output,
 *       6 configuration read or write (emerg_wr), 7 sleep + wake, reset +
 *       reactivate, migrate (snapshot, restore into a fresh device), or
 *       set the size, 8 a raw chain (any address, length, flags, next),
 *       9 used_event / avail flags
 *
 * After every operation the harness consumes both used rings and checks:
 * chains come back once, in order; a receiveq chain's used length is at
 * most its writable length and a transmitq chain's is 0; the bytes
 * delivered on receiveq are exactly the bytes push_input() accepted, in
 * order; what arrives in the pipe is the transmitq chains' bytes in order
 * (chain bytes are 0x00-0x7f) and, filtered apart, the emerg_wr bytes in
 * order (0x80-0xff); counters and return values agree with what happened.
 * At the end, output is flushed to the last byte, input delivered plus
 * input pending equals input accepted, nothing was written into the
 * poisoned guard pages around guest memory, and every fd is closed.
 * Raw chains may point anywhere, so they turn the ring checks off.
 *
 * Guest memory: two adjacent 32 KiB regions at gpa 0 and 0x8000, in host
 * memory separated by poisoned guard pages.
 *   0x0000 receiveq ring   0x0800 transmitq ring   0x1000 indirect tables
 *   0x2000-0x9000 receiveq buffers   0x9000-0x10000 transmitq buffers
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ring.h>

#include <vdk/device.h>
#include <vdk/devices/console.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "fuzz_guest.h"
#include "guest_ring.h"

#define RX	     VDK_CONSOLE_RECEIVEQ
#define TX	     VDK_CONSOLE_TRANSMITQ
#define TABLE_GPA    0x1000u
#define TABLE_SLOTS  8u /* per queue, 256 bytes each */
#define MAX_BUFS     6
#define MAX_OUT	     32 /* chains outstanding per queue (queue size) */
#define MAX_SEGS     8192
#define MAX_ACCEPTED (4u << 20)
#define PIPE_BYTES   4096
#define CHECK(c)     ((c) ? (void)0 : fail(#c, __LINE__))
#define F(bit)	     (1ull << (bit))

static const uint64_t area_gpa[2] = {0x2000, 0x9000};
static const uint64_t area_end[2] = {0x9000, 0x10000};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A chain the driver made available and has not had back. */
struct rec {
	uint16_t head;
	uint8_t nbuf, ndesc; /* buffers; ring descriptors they take */
	uint32_t W;
	struct guest_buf bufs[MAX_BUFS];
};

struct queue {
	struct vdk_virtq q;
	struct guest_ring gr;
	struct rec out[MAX_OUT]; /* FIFO */
	unsigned first, count, descs, tables;
	uint32_t area_off;
};

struct rig {
	const uint8_t *p;
	size_t left;
	struct vdk_console_config cfg;
	uint64_t features;
	uint16_t qmax, qsize, start;
	int mode, pipe_rd, pipe_wr;
	struct vdk_mem *mem;
	struct vdk_console *con;
	struct vdk_device *dev;
	struct vdk_interrupt irq;
	struct queue qs[2];
	struct vdk_virtq *qp[2];
	unsigned config_changes;
	uint16_t cols, rows;
	bool tainted;	   /* a raw chain: ring and stream checks off */
	bool ever_tainted; /* counters checks off for good */
	/* receiveq stream: what push_input() accepted, and how much of it
	 * has been delivered */
	size_t n_accepted, n_delivered;
	uint64_t rx_returned, tx_returned;
	bool rx_check;
	/* transmitq stream: chain contents (segs[]) in posting order, and
	 * the read position in it */
	unsigned nsegs, seg_at;
	uint32_t seg_off, seq;
	uint64_t pipe_bytes, closed_at; /* output bytes read; when closed */
	bool tx_check;
	/* emerg_wr bytes (emerg[]) in order, and how many arrived */
	unsigned n_emerg, emerg_seen;
	bool emerg_check;
};

static int devnull = -1;
static uint8_t accepted[MAX_ACCEPTED]; /* push_input() took these */
static struct {
	uint32_t seq, len; /* chain number (tx_byte()) and readable bytes */
} segs[MAX_SEGS];
static uint8_t emerg[MAX_SEGS]; /* emerg_wr bytes written */

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz_console: invariant failed at line %d: %s\n", line,
		what);
	abort();
}

/* ---- plumbing ------------------------------------------------------------ */

static void quiet(void *opaque, enum vdk_log_level level, const char *module,
		  const char *msg)
{
	(void)opaque;
	(void)level;
	(void)module;
	(void)msg;
}

static void on_used(void *opaque, uint16_t queue)
{
	(void)opaque;
	CHECK(queue < 2);
}

static void on_config(void *opaque)
{
	((struct rig *)opaque)->config_changes++;
}

static const struct vdk_interrupt_ops irq_ops = {
	.signal_used_queue = on_used, .signal_config_changed = on_config,
	/* needs_reset is recorded in irq.needs_reset */
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	signal(SIGPIPE, SIG_IGN); /* output to a pipe nobody reads */
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0)
		abort();
	fuzz_guest_init();
	return 0;
}

static uint8_t take8(struct rig *r)
{
	if (!r->left)
		return 0;
	r->left--;
	return *r->p++;
}

static uint64_t take_le(struct rig *r, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)take8(r) << (8 * i);
	return v;
}

/* Byte @off of transmitq chain number @seq: 0x00-0x7f. */
static uint8_t tx_byte(uint32_t seq, uint32_t off)
{
	return (uint8_t)((seq * 37u + off + (off >> 7)) & 0x7f);
}

/* ---- the rings ----------------------------------------------------------- */

static int queue_up(struct rig *r, unsigned i)
{
	struct queue *q = &r->qs[i];

	memset(q, 0, sizeof(*q));
	if (guest_ring_init(&q->gr, r->mem, r->qsize, 0x800u * i) < 0 ||
	    vdk_virtq_init(&q->q, r->qmax, (uint16_t)i) < 0 ||
	    vdk_virtq_set_size(&q->q, r->qsize) < 0 ||
	    vdk_virtq_set_addrs(&q->q, q->gr.desc_gpa, q->gr.avail_gpa,
				q->gr.used_gpa) < 0 ||
	    vdk_virtq_set_next_avail(&q->q, r->start) < 0 ||
	    vdk_virtq_set_next_used(&q->q, r->start) < 0)
		return -1;
	guest_ring_set_avail_idx(&q->gr, r->start);
	guest_ring_set_last_used(&q->gr, r->start);
	vdk_mem_write_le16(r->mem, q->gr.used_gpa + 2, r->start);
	vdk_virtq_set_ready(&q->q, true);
	r->qp[i] = &q->q;
	return vdk_virtq_activate(&q->q, r->mem, r->features);
}

static int activate(struct rig *r)
{
	r->tainted = false;
	if (queue_up(r, RX) < 0 || queue_up(r, TX) < 0 ||
	    vdk_device_ack_features(r->dev, r->features) < 0 ||
	    vdk_device_activate(r->dev, r->mem, &r->irq, r->qp) < 0)
		return -1;
	return 0;
}

/* Check @n pipe bytes against the two streams. */
static void check_output(struct rig *r, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] & 0x80) {
			if (!r->emerg_check)
				continue;
			CHECK(r->emerg_seen < r->n_emerg);
			CHECK(buf[i] == emerg[r->emerg_seen++]);
			continue;
		}
		if (!r->tx_check)
			continue;
		while (r->seg_at < r->nsegs &&
		       r->seg_off == segs[r->seg_at].len) {
			r->seg_at++;
			r->seg_off = 0;
		}
		CHECK(r->seg_at < r->nsegs);
		CHECK(buf[i] == tx_byte(segs[r->seg_at].seq, r->seg_off++));
	}
}

/* Read up to @max bytes of output (all of it if @max is 0). */
static void drain(struct rig *r, size_t max)
{
	uint8_t buf[4096];

	if (r->mode != 0)
		return;
	for (size_t got = 0; !max || got < max;) {
		size_t want = max && max - got < sizeof(buf) ? max - got
							     : sizeof(buf);
		ssize_t n = read(r->pipe_rd, buf, want);

		if (n <= 0)
			break;
		check_output(r, buf, (size_t)n);
		r->pipe_bytes += (size_t)n;
		got += (size_t)n;
	}
}

/* The driver takes back what the device returned: in order, once. */
static void consume(struct rig *r)
{
	if (r->tainted)
		return;
	for (unsigned i = 0; i < 2; i++) {
		struct queue *q = &r->qs[i];
		uint32_t id, len;

		while (guest_ring_get_used(&q->gr, &id, &len) == 1) {
			CHECK(q->count > 0);
			struct rec *c = &q->out[q->first];

			CHECK(id == c->head);
			q->first = (q->first + 1) % MAX_OUT;
			q->count--;
			q->descs -= c->ndesc;
			if (i == TX) {
				r->tx_returned++;
				CHECK(len == 0);
				continue;
			}
			r->rx_returned++;
			CHECK(len <= c->W);
			if (r->rx_check)
				CHECK(r->n_delivered + len <= r->n_accepted);
			/* The delivered bytes continue the accepted ones. */
			uint32_t done = 0;
			for (unsigned k = 0; k < c->nbuf && done < len; k++) {
				const struct guest_buf *b = &c->bufs[k];
				uint32_t n = b->len < len - done ? b->len
								 : len - done;

				if (!b->writable)
					continue;
				for (uint32_t j = 0; r->rx_check && j < n; j++)
					CHECK(*fuzz_guest_ptr(b->gpa + j) ==
					      accepted[r->n_delivered + done +
						       j]);
				done += n;
			}
			r->n_delivered += len;
		}
		if (q->count == 0) {
			q->area_off = 0;
			q->tables = 0;
		}
	}
}

/* ---- operations ---------------------------------------------------------- */

/* Post a chain on queue @i: a readable buffer first (receiveq) or a
 * writable one last (transmitq) as the driver should not, zero-length
 * buffers, direct or indirect. */
static void op_post(struct rig *r, unsigned i)
{
	struct queue *q = &r->qs[i];
	uint8_t shape = take8(r);
	unsigned nmain = 1 + ((shape >> 2) & 3);
	bool odd = shape & 2, indirect = shape & 1;
	struct rec c = {.nbuf = 0};
	uint32_t stream = 0;
	int head;

	if (i == TX && (r->nsegs >= MAX_SEGS))
		r->tx_check = false;
	if (odd && i == RX) /* a readable buffer on receiveq */
		c.bufs[c.nbuf++] = (struct guest_buf){area_gpa[RX], 8, false};
	for (unsigned k = 0; k < nmain; k++) {
		uint8_t lc = take8(r);
		uint32_t len = (lc & 0x80) ? (lc & 0x7fu) * 128u : lc;
		uint64_t gpa = area_gpa[i] + q->area_off;

		if (gpa + len > area_end[i])
			return; /* the area is full until the chains return */
		q->area_off += len;
		c.bufs[c.nbuf++] = (struct guest_buf){gpa, len, i == RX};
		if (i == RX) {
			c.W += len;
			continue;
		}
		for (uint32_t o = 0; o < len; o++)
			*fuzz_guest_ptr(gpa + o) = tx_byte(r->seq, stream + o);
		stream += len;
	}
	if (shape & 0x10) /* a zero-length buffer */
		c.bufs[c.nbuf++] = (struct guest_buf){0, 0, i == RX};
	if (odd && i == TX) /* a writable buffer on transmitq */
		c.bufs[c.nbuf++] = (struct guest_buf){area_gpa[TX], 4, true};
	c.ndesc = indirect ? 1 : c.nbuf;
	if (q->count >= r->qsize || q->descs + c.ndesc > r->qsize ||
	    (indirect && q->tables >= TABLE_SLOTS))
		return;
	if (indirect)
		head = guest_ring_add_indirect(
			&q->gr,
			TABLE_GPA + 256u * (i * TABLE_SLOTS + q->tables++),
			c.bufs, c.nbuf);
	else
		head = guest_ring_add_chain(&q->gr, c.bufs, c.nbuf);
	if (head < 0)
		abort(); /* the areas are always mapped */
	c.head = (uint16_t)head;
	q->descs += c.ndesc;
	q->out[(q->first + q->count++) % MAX_OUT] = c;
	if (i == TX && r->nsegs < MAX_SEGS) {
		segs[r->nsegs].seq = r->seq;
		segs[r->nsegs++].len = stream;
	}
	r->seq++;
}

/* A raw chain of 1-4 descriptors with the input's fields. */
static void op_raw(struct rig *r)
{
	uint8_t a = take8(r);
	struct queue *q = &r->qs[a & 1];
	unsigned n = 1 + ((a >> 1) & 3);
	uint16_t head = q->gr.free_desc;

	for (unsigned k = 0; k < n; k++) {
		uint64_t addr = take_le(r, 2);
		uint32_t len = (uint32_t)take_le(r, 2);
		uint16_t flags = take8(r), next = take8(r);
		uint16_t d = (uint16_t)((head + k) % r->qsize);

		if (k + 1 < n && !(a & 0x10)) {
			flags |= VRING_DESC_F_NEXT;
			next = (uint16_t)((d + 1) % r->qsize);
		}
		guest_ring_set_desc(&q->gr, d, addr, len, flags, next);
	}
	q->gr.free_desc = (uint16_t)((head + n) % r->qsize);
	guest_ring_push(&q->gr, head);
	r->tainted = r->ever_tainted = true;
	r->rx_check = r->tx_check = false;
	r->emerg_check = false; /* its bytes may have bit 7 set */
}

/* Read some output; or (0xff) close the pipe's read end: EPIPE from now
 * on, whatever is buffered is dropped. */
static void op_drain(struct rig *r)
{
	uint8_t a = take8(r);

	if (a != 0xff) {
		drain(r, 64u * (1u + a));
		return;
	}
	if (r->mode != 0)
		return;
	drain(r, 0);
	close(r->pipe_rd);
	r->pipe_rd = -1;
	r->mode = 3;
	r->closed_at = vdk_console_stats(r->con).output_bytes;
}

static void op_push(struct rig *r)
{
	uint8_t n = take8(r);
	size_t len = (n & 0x80) ? (n & 0x7fu) * 64u : n;
	uint8_t buf[0x7f * 64];
	int ret;

	if (n & 0x80) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(r->n_accepted + i * 13);
	} else {
		for (size_t i = 0; i < len; i++)
			buf[i] = take8(r);
	}
	if (n == 0x80)
		CHECK(vdk_console_push_input(r->con, NULL, 1) == -EINVAL);
	ret = vdk_console_push_input(r->con, len ? buf : NULL, len);
	CHECK(ret >= 0 && (size_t)ret <= len);
	if (r->rx_check && r->n_accepted + (size_t)ret <= MAX_ACCEPTED) {
		memcpy(accepted + r->n_accepted, buf, (size_t)ret);
		r->n_accepted += (size_t)ret;
	} else {
		r->rx_check = false;
	}
	CHECK(vdk_console_input_pending(r->con) <=
	      (r->cfg.input_buffer_size ? r->cfg.input_buffer_size
					: VDK_CONSOLE_DEFAULT_INPUT_BUFFER));
}

static void op_config(struct rig *r)
{
	uint8_t a = take8(r);
	uint32_t off = take8(r) % 16, len = take8(r) % 9;
	uint8_t buf[8];
	bool fits = len == 0 || off + len <= VDK_CONSOLE_CONFIG_SIZE;
	uint32_t emerg_off = offsetof(struct virtio_console_config, emerg_wr);

	if (!(a & 1)) {
		struct virtio_console_config cfg;

		CHECK(vdk_device_read_config(r->dev, off, buf, len) ==
		      (fits ? 0 : -ERANGE));
		CHECK(vdk_device_read_config(r->dev, 0, &cfg, sizeof(cfg)) ==
		      0);
		CHECK(cfg.emerg_wr == 0 && le32toh(cfg.max_nr_ports) == 1);
		CHECK(le16toh(cfg.cols) == r->cols &&
		      le16toh(cfg.rows) == r->rows);
		return;
	}
	/* Emergency bytes have bit 7 set, so they can be told apart. */
	for (uint32_t i = 0; i < len; i++)
		buf[i] = take8(r) | 0x80;
	uint64_t before = vdk_console_stats(r->con).emerg_bytes;
	CHECK(vdk_device_write_config(r->dev, off, buf, len) ==
	      (fits ? 0 : -ERANGE));
	bool hit = fits && off <= emerg_off && emerg_off < off + len;
	CHECK(vdk_console_stats(r->con).emerg_bytes == before + hit);
	if (hit && r->n_emerg < MAX_SEGS)
		emerg[r->n_emerg++] = buf[emerg_off - off];
	else if (hit)
		r->emerg_check = false;
}

/* Reset and reactivate with fresh rings. */
static void reset(struct rig *r)
{
	uint64_t dropped = vdk_console_stats(r->con).output_dropped;

	consume(r);
	CHECK(vdk_device_reset(r->dev) == 0);
	/* A chain written in part is dropped (counted); the other chains
	 * still outstanding on transmitq were never popped and are gone. */
	if (vdk_console_stats(r->con).output_dropped != dropped)
		r->tx_check = false;
	if (!r->tainted) {
		if (r->nsegs >= r->qs[TX].count)
			r->nsegs -= r->qs[TX].count;
		if (r->seg_at > r->nsegs)
			r->tx_check = false;
	}
	vdk_virtq_reset(&r->qs[RX].q);
	vdk_virtq_reset(&r->qs[TX].q);
	r->irq.needs_reset = false;
	if (activate(r) < 0)
		abort();
}

/* Sleep, snapshot, restore into a fresh device, wake it, free the old. */
static void migrate(struct rig *r)
{
	struct vdk_console *nc;
	uint8_t *snap = NULL;
	size_t len = 0;

	CHECK(vdk_device_sleep(r->dev) == 0);
	consume(r); /* the kept chain came back */
	CHECK(vdk_device_snapshot(r->dev, &snap, &len) == 0);
	CHECK((nc = vdk_console_new(&r->cfg, NULL)) != NULL);
	CHECK(vdk_device_sleep(vdk_console_device(nc)) == 0);
	CHECK(vdk_device_restore(vdk_console_device(nc), snap, len) == 0);
	free(snap);
	CHECK(vdk_device_wake(vdk_console_device(nc), r->mem, &r->irq, r->qp) ==
	      0);
	vdk_console_free(r->con);
	r->con = nc;
	r->dev = vdk_console_device(nc);
}

static void op_lifecycle(struct rig *r)
{
	uint8_t a = take8(r);
	uint16_t cols, rows;
	int ret;
	unsigned before;

	switch (a % 4) {
	case 0:
		CHECK(vdk_device_sleep(r->dev) == 0);
		/* Nothing is in flight while asleep: a chain kept after
		 * EAGAIN has been returned, its rest buffered. */
		CHECK(r->qs[RX].q.in_flight == 0 && r->qs[TX].q.in_flight == 0);
		consume(r);
		CHECK(vdk_device_wake(r->dev, NULL, NULL, NULL) == 0);
		break;
	case 1:
		reset(r);
		break;
	case 2:
		migrate(r);
		break;
	default:
		cols = (uint16_t)take_le(r, 2);
		rows = (uint16_t)take_le(r, 2);
		before = r->config_changes;
		ret = vdk_console_set_size(r->con, cols, rows);
		if (!r->cfg.cols) {
			CHECK(ret == -EOPNOTSUPP);
		} else if (!cols || !rows) {
			CHECK(ret == -EINVAL);
		} else {
			bool changed = cols != r->cols || rows != r->rows;
			bool acked = r->features & F(VIRTIO_CONSOLE_F_SIZE);

			CHECK(ret == 0);
			CHECK(r->config_changes == before + (changed && acked));
			r->cols = cols;
			r->rows = rows;
		}
		break;
	}
}

/* ---- the input ------------------------------------------------------------ */

static void setup(struct rig *r, const uint8_t *data, size_t size)
{
	uint8_t c0, c1, c2;
	int fds[2];

	memset(r, 0, sizeof(*r));
	r->p = data;
	r->left = size;
	c0 = take8(r);
	c1 = take8(r);
	c2 = take8(r);
	r->start = (uint16_t)(0x10000u - take8(r));
	r->features = F(VIRTIO_F_VERSION_1);
	if (c0 & 1)
		r->features |= F(VIRTIO_RING_F_EVENT_IDX);
	if (c0 & 2)
		r->features |= F(VIRTIO_RING_F_INDIRECT_DESC);
	if ((c0 & 4) && (c0 & 8))
		r->features |= F(VIRTIO_CONSOLE_F_SIZE);
	if (c0 & 0x10)
		r->features |= F(VIRTIO_CONSOLE_F_EMERG_WRITE);
	r->mode = (c0 >> 5) & 3;
	r->qmax = (uint16_t)(4u << (c1 & 3));
	r->qsize = (uint16_t)(r->qmax >> (((c1 >> 2) & 3) % 3));
	r->cfg = (struct vdk_console_config){
		.queue_max_size = r->qmax,
		.input_buffer_size = c2,
		.cols = (c0 & 4) ? 80 : 0,
		.rows = (c0 & 4) ? 25 : 0,
	};
	r->cols = r->cfg.cols;
	r->rows = r->cfg.rows;
	r->pipe_rd = r->pipe_wr = -1;
	r->rx_check = r->tx_check = r->emerg_check = true;
	switch (r->mode) {
	case 0:
	case 3:
		if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0 ||
		    fcntl(fds[1], F_SETPIPE_SZ, PIPE_BYTES) < 0)
			abort();
		r->pipe_rd = fds[0];
		r->pipe_wr = fds[1];
		if (r->mode == 3) { /* nobody reads: EPIPE */
			close(r->pipe_rd);
			r->pipe_rd = -1;
		}
		r->cfg.output_fd = r->pipe_wr;
		break;
	case 1:
		r->cfg.output_fd = devnull;
		break;
	default:
		r->cfg.output_fd = -1;
		break;
	}
	fuzz_guest_reset();
	vdk_interrupt_init_callback(&r->irq, &irq_ops, r);
	r->mem = vdk_mem_new(NULL);
	if (!r->mem || fuzz_guest_map(r->mem) < 0 ||
	    !(r->con = vdk_console_new(&r->cfg, NULL)))
		abort();
	r->dev = vdk_console_device(r->con);
	if (activate(r) < 0)
		abort();
}

/* Flush everything out and check the totals. */
static void finish(struct rig *r)
{
	struct vdk_console_stats st;

	for (unsigned round = 0; round < 100000; round++) {
		drain(r, 0);
		int blocked = vdk_console_flush_output(r->con);

		CHECK(blocked == vdk_console_output_blocked(r->con));
		consume(r);
		if (!blocked)
			break;
		/* only a pipe that fills blocks, or the per-wake-up budget
		 * stops a flush with an fd (then the next one goes on) */
		CHECK(r->mode != 2); /* mode 2: no output fd */
	}
	drain(r, 0);
	consume(r);
	CHECK(!vdk_console_output_blocked(r->con));
	st = vdk_console_stats(r->con);
	if (r->mode == 0) {
		CHECK(st.output_bytes == r->pipe_bytes);
		CHECK(r->emerg_seen == r->n_emerg || !r->emerg_check);
	}
	if (r->mode == 3) /* nothing written once the reader is gone */
		CHECK(st.output_bytes == r->closed_at);
	if (!r->tainted && !r->irq.needs_reset) {
		/* every available transmitq chain was written, all of it */
		CHECK(r->qs[TX].count == 0);
		while (r->seg_at < r->nsegs &&
		       r->seg_off == segs[r->seg_at].len) {
			r->seg_at++;
			r->seg_off = 0;
		}
		if (r->mode == 0 && r->tx_check)
			CHECK(r->seg_at == r->nsegs);
	}
	if (!r->ever_tainted) {
		CHECK(st.input_bytes == r->n_delivered);
		CHECK(st.output_chains == r->tx_returned);
		CHECK(st.input_chains == r->rx_returned);
	}
	if (r->rx_check && !r->tainted)
		CHECK(r->n_delivered + vdk_console_input_pending(r->con) ==
		      r->n_accepted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rig rig;
	struct rig *r = &rig;
	int fd_before;

	if (size < 4)
		return 0;
	fd_before = fuzz_lowest_free_fd();
	setup(r, data, size);
	while (r->left) {
		uint8_t op = take8(r);

		switch (op % 10) {
		case 0:
			op_post(r, RX);
			break;
		case 1:
			op_post(r, TX);
			break;
		case 2:
			vdk_device_queue_notify(r->dev, take8(r) % 3);
			break;
		case 3:
			op_push(r);
			break;
		case 4:
			op_drain(r);
			break;
		case 5:
			CHECK(vdk_console_flush_output(r->con) ==
			      vdk_console_output_blocked(r->con));
			break;
		case 6:
			op_config(r);
			break;
		case 7:
			op_lifecycle(r);
			break;
		case 8:
			op_raw(r);
			break;
		default: {
			struct queue *q = &r->qs[take8(r) & 1];
			uint16_t ev = (uint16_t)take_le(r, 2);

			guest_ring_set_used_event(&q->gr, ev);
			guest_ring_set_avail_flags(&q->gr, ev & 1);
			break;
		}
		}
		consume(r);
		if (r->mode == 0 && vdk_console_stats(r->con).output_dropped)
			r->tx_check = false;
	}
	finish(r);

	vdk_console_free(r->con);
	vdk_mem_free(r->mem);
	if (r->pipe_rd >= 0)
		close(r->pipe_rd);
	if (r->pipe_wr >= 0)
		close(r->pipe_wr);
	CHECK(fuzz_guest_guards_intact());
	CHECK(fuzz_lowest_free_fd() == fd_before);
	return 0;
}
