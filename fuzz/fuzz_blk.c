/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the virtio-blk device (src/devices/blk.c, blk_io.c;
 * virtio 1.2 §5.2) driven through the device framework by a hostile driver
 * (the mock driver tests/mock/guest_ring.c), over a memfd image, with its
 * io_uring and synchronous data paths.
 *
 * Input: four configuration bytes, then operations until the input ends
 * (missing argument bytes read as 0):
 *   [0] bit 0 read-only, 1 EVENT_IDX, 2 INDIRECT_DESC, 3-4 io_mode
 *       (AUTO, ASYNC, SYNC, ASYNC), 5 O_DIRECT (where the memfd takes it),
 *       6 single_thread, 7 a 20-byte serial (no NUL) instead of a short one
 *   [1] bits 0-1 device queue size 4 << n; bits 2-3 the driver's queue size
 *       is that >> (n % 3)
 *   [2] image size n KiB, plus 300 bytes when n is even (a tail that is not
 *       a whole sector, which the device must never touch)
 *   [3] ring indices start at 0x10000 - n (0: at 0), so they wrap
 *   op % 8: 0-1 request (a well-formed chain of any shape: header, DISCARD
 *       / WRITE_ZEROES segments, data buffers, status byte; direct or
 *       indirect), 2 notify, 3 process completions, 4 end the round,
 *       5 a raw chain (descriptors with any address, length, flags, next),
 *       6 sleep + wake, reset + reactivate, or migrate (snapshot, restore
 *       into a fresh device on the same image), 7 used_event / avail flags
 *
 * A round ends when asked, when the descriptor table, the available ring
 * or an area fills up, and at the end of the input: the harness notifies,
 * vdk_blk_wait_idle()s, consumes the used ring and checks, for every chain
 * it built: returned at most once (all of them unless the queue stopped);
 * used length <= the chain's writable length (0 when it has none, else
 * >= 1); where the request is fully determined, the status and used length
 * the header <vdk/devices/blk.h> promises; the status byte at the last
 * writable byte; GET_ID data; IN data equal to the image. At the end: the
 * image never changes size, never changes when read-only, and its tail past
 * the last whole sector never changes; nothing was written into the
 * poisoned guard pages around guest memory (io_uring writes bypass ASan);
 * every fd is closed again.
 *
 * Guest memory: two adjacent 32 KiB regions at gpa 0 and 0x8000, in host
 * memory separated by poisoned guard pages, so an iovec that runs past a
 * region trips ASan (user space) or the guard check (kernel).
 *   0x0000 rings (guest_ring_init)   0x1000 indirect tables (256 B each)
 *   0x2000 headers and segments       0x4000-0x10000 data buffers
 * Writable buffers of well-formed chains are only ever in the data area,
 * so descriptor tables and headers stay as the harness wrote them.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <vdk/device.h>
#include <vdk/devices/blk.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/virtq.h>

#include "fuzz_guest.h"
#include "guest_ring.h"

#define INDIRECT_GPA 0x1000u
#define INDIRECT_END 0x2000u
#define HDR_GPA	     0x2000u
#define HDR_END	     0x4000u
#define DATA_GPA     0x4000u
#define DATA_SIZE    (FUZZ_GUEST_SIZE - DATA_GPA)
#define MAX_BUFS     12
#define MAX_CHAINS   64
#define IMG_MAX	     (256u * 1024 + 300)
#define SERIAL_SHORT "vdk-fuzz"
#define SERIAL_LONG  "0123456789abcdefghij" /* exactly 20 bytes */
#define UNKNOWN	     0xffu
#define CHECK(c)     ((c) ? (void)0 : fail(#c, __LINE__))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* One chain the harness made available in the current round. */
struct rec {
	uint16_t head;
	bool raw;      /* a raw chain: shape unknown */
	bool returned; /* seen in the used ring */
	uint32_t type;
	uint32_t R, W;	     /* readable and writable bytes */
	uint8_t expect;	     /* status, or UNKNOWN */
	uint32_t expect_len; /* used length when expect != UNKNOWN */
	bool has_status;
	uint64_t status_gpa;
	uint64_t sector;
	uint8_t nbuf;
	struct guest_buf bufs[MAX_BUFS];
};

struct rig {
	const uint8_t *p;
	size_t left;
	/* configuration */
	struct vdk_blk_config cfg;
	bool ro;
	uint64_t features;
	uint16_t dev_qs, qsize, start;
	uint64_t img_size, capacity;
	const char *serial;
	/* objects */
	struct vdk_mem *mem;
	struct vdk_blk *blk;
	struct vdk_device *dev;
	struct vdk_interrupt irq;
	struct vdk_virtq q;
	struct vdk_virtq *qp[1];
	struct guest_ring gr;
	unsigned needs_reset;
	bool tainted; /* a raw buffer outside the data area: no ring checks */
	/* the round */
	struct rec recs[MAX_CHAINS];
	unsigned nrec, descs, tables;
	uint32_t hdr_off;
	bool round_raw, round_mutates;
};

static int img_fd = -1;
static char img_path[64];
static uint8_t pattern[IMG_MAX];
static uint8_t shadow[IMG_MAX]; /* image contents at the round's start */
static uint8_t filebuf[IMG_MAX];

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz_blk: invariant failed at line %d: %s\n", line,
		what);
	abort();
}

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
	CHECK(queue == 0);
}

static void on_needs_reset(void *opaque)
{
	((struct rig *)opaque)->needs_reset++;
}

static const struct vdk_interrupt_ops irq_ops = {
	.signal_used_queue = on_used,
	.set_needs_reset = on_needs_reset,
};

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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vdk_log_set_sink(quiet, NULL, VDK_LOG_ERROR);
	img_fd = memfd_create("fuzz_blk", MFD_CLOEXEC);
	fuzz_guest_init();
	if (img_fd < 0)
		abort();
	snprintf(img_path, sizeof(img_path), "/proc/self/fd/%d", img_fd);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + i / 512 + 1);
	return 0;
}

/* ---- the device and its queue ------------------------------------------ */

static int queue_up(struct rig *r)
{
	if (guest_ring_init(&r->gr, r->mem, r->qsize, 0) < 0 ||
	    vdk_virtq_init(&r->q, r->dev_qs, 0) < 0 ||
	    vdk_virtq_set_size(&r->q, r->qsize) < 0 ||
	    vdk_virtq_set_addrs(&r->q, r->gr.desc_gpa, r->gr.avail_gpa,
				r->gr.used_gpa) < 0 ||
	    vdk_virtq_set_next_avail(&r->q, r->start) < 0 ||
	    vdk_virtq_set_next_used(&r->q, r->start) < 0)
		return -1;
	/* Indices that start near the wrap: the driver's view agrees. */
	guest_ring_set_avail_idx(&r->gr, r->start);
	guest_ring_set_last_used(&r->gr, r->start);
	vdk_mem_write_le16(r->mem, r->gr.used_gpa + 2, r->start);
	vdk_virtq_set_ready(&r->q, true);
	if (vdk_virtq_activate(&r->q, r->mem, r->features) < 0 ||
	    vdk_device_ack_features(r->dev, r->features) < 0 ||
	    vdk_device_activate(r->dev, r->mem, &r->irq, r->qp) < 0)
		return -1;
	return 0;
}

static int open_device(struct rig *r, uint8_t c0)
{
	static const enum vdk_blk_io_mode modes[4] = {
		VDK_BLK_IO_AUTO, VDK_BLK_IO_ASYNC, VDK_BLK_IO_SYNC,
		VDK_BLK_IO_ASYNC};
	int ret;

	r->cfg = (struct vdk_blk_config){
		.path = img_path,
		.read_only = r->ro,
		.serial = r->serial,
		.queue_size = r->dev_qs,
		.io_mode = modes[(c0 >> 3) & 3],
		.direct = (c0 >> 5) & 1,
		.single_thread = (c0 >> 6) & 1,
	};
	r->blk = vdk_blk_new(&r->cfg, &ret);
	if (ret == -EINVAL && r->cfg.direct) {
		/* The memfd refused O_DIRECT: carry on buffered. */
		r->cfg.direct = false;
		r->blk = vdk_blk_new(&r->cfg, &ret);
	}
	if (ret < 0)
		return ret;
	r->dev = vdk_blk_device(r->blk);
	CHECK(vdk_blk_capacity(r->blk) == r->capacity);
	return 0;
}

/* ---- checks at the end of a round -------------------------------------- */

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* Does [gpa, gpa + len) avoid every buffer of the round other than buffer
 * @self of chain @own (and all of @own's buffers if !@own_too)? */
static bool exclusive(const struct rig *r, const struct rec *own, int self,
		      bool own_too, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < r->nrec; i++) {
		const struct rec *c = &r->recs[i];

		if (c == own && !own_too)
			continue;
		for (int k = 0; k < c->nbuf; k++)
			if (!(c == own && k == self) &&
			    overlaps(gpa, len, c->bufs[k].gpa, c->bufs[k].len))
				return false;
	}
	return true;
}

/* Compare the chain's writable data part (without the status byte) with
 * @want; false if a buffer is shared with another one (unknowable). */
static bool data_matches(const struct rig *r, const struct rec *c,
			 const uint8_t *want, uint32_t len, bool *checked)
{
	uint32_t off = 0;

	*checked = false;
	for (int k = 0; k < c->nbuf && off < len; k++) {
		const struct guest_buf *b = &c->bufs[k];
		uint32_t n = b->len;

		if (!b->writable || !n)
			continue;
		if (!exclusive(r, c, k, true, b->gpa, b->len))
			return true;
		if (n > len - off)
			n = len - off;
		for (uint32_t i = 0; i < n; i++)
			if (*fuzz_guest_ptr(b->gpa + i) != want[off + i])
				return false;
		off += n;
	}
	*checked = true;
	return true;
}

static void check_elem(struct rig *r, uint32_t id, uint32_t len)
{
	struct rec *c = NULL;
	bool checked;

	CHECK(id < r->qsize);
	for (unsigned i = 0; i < r->nrec; i++)
		if (r->recs[i].head == id && !r->recs[i].returned)
			c = &r->recs[i];
	CHECK(c != NULL); /* every head returned at most once */
	c->returned = true;
	if (c->raw)
		return;
	CHECK(len <= c->W);
	CHECK(c->W == 0 ? len == 0 : len >= 1);
	if (c->expect != UNKNOWN)
		CHECK(len == c->expect_len);
	if (!c->has_status || r->round_raw ||
	    !exclusive(r, c, -1, false, c->status_gpa, 1))
		return;
	uint8_t st = *fuzz_guest_ptr(c->status_gpa);
	CHECK(st == VIRTIO_BLK_S_OK || st == VIRTIO_BLK_S_IOERR ||
	      st == VIRTIO_BLK_S_UNSUPP);
	if (c->expect != UNKNOWN)
		CHECK(st == c->expect);
	if (st != VIRTIO_BLK_S_OK || c->expect != VIRTIO_BLK_S_OK)
		return;
	if (c->type == VIRTIO_BLK_T_GET_ID) {
		uint8_t id_bytes[VIRTIO_BLK_ID_BYTES] = {0};

		memcpy(id_bytes, r->serial, strlen(r->serial));
		CHECK(data_matches(r, c, id_bytes, len - 1, &checked));
	} else if (c->type == VIRTIO_BLK_T_IN && !r->round_mutates &&
		   !r->round_raw) {
		CHECK(data_matches(r, c, shadow + c->sector * 512, len - 1,
				   &checked));
	}
}

static void end_round(struct rig *r)
{
	uint32_t id, len;
	int n = 0;

	if (r->dev->state == VDK_DEVICE_ACTIVE) {
		vdk_device_queue_notify(r->dev, 0);
		CHECK(vdk_blk_wait_idle(r->blk) >= 0);
		CHECK(vdk_blk_in_flight(r->blk) == 0);
	}
	while (!r->tainted && n++ <= r->qsize &&
	       guest_ring_get_used(&r->gr, &id, &len) == 1)
		check_elem(r, id, len);
	if (!r->tainted && !r->needs_reset && !vdk_virtq_is_broken(&r->q) &&
	    r->dev->state == VDK_DEVICE_ACTIVE)
		for (unsigned i = 0; i < r->nrec; i++)
			CHECK(r->recs[i].returned);
	if (!r->ro && (r->round_mutates || r->round_raw)) {
		CHECK(pread(img_fd, shadow, r->img_size, 0) ==
		      (ssize_t)r->img_size);
	}
	r->nrec = r->descs = r->tables = 0;
	r->hdr_off = 0;
	r->round_raw = r->round_mutates = false;
}

/* ---- building requests ------------------------------------------------- */

static bool range_ok(const struct rig *r, uint64_t sector, uint64_t nsec)
{
	uint64_t end;

	return !__builtin_add_overflow(sector, nsec, &end) &&
	       end <= r->capacity;
}

/* The status and used length <vdk/devices/blk.h> promises for the request
 * (header @hdr_ok, segments @segs), or UNKNOWN. */
static void predict(const struct rig *r, struct rec *c, bool known,
		    const uint8_t *segs, uint32_t nsegs)
{
	bool discard = c->type == VIRTIO_BLK_T_DISCARD;
	uint8_t st = VIRTIO_BLK_S_OK;
	uint64_t len;

	c->expect_len = 1;
	c->expect = UNKNOWN;
	if (c->W == 0) {
		c->expect = VIRTIO_BLK_S_OK;
		c->expect_len = 0;
		return;
	}
	if (c->R < 16) {
		c->expect = VIRTIO_BLK_S_IOERR;
		return;
	}
	if (!known)
		return;
	switch (c->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		len = c->type == VIRTIO_BLK_T_IN ? c->W - 1u : c->R - 16u;
		if ((c->type == VIRTIO_BLK_T_OUT && r->ro) || len % 512 ||
		    !range_ok(r, c->sector, len / 512))
			st = VIRTIO_BLK_S_IOERR;
		if (c->type == VIRTIO_BLK_T_IN && st == VIRTIO_BLK_S_OK)
			c->expect_len = c->W;
		break;
	case VIRTIO_BLK_T_FLUSH:
		break;
	case VIRTIO_BLK_T_GET_ID:
		c->expect_len = (c->W - 1u < VIRTIO_BLK_ID_BYTES
					 ? c->W - 1u
					 : VIRTIO_BLK_ID_BYTES) +
				1u;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (r->ro || (c->R - 16) % 16 || (c->R - 16) / 16 != nsegs ||
		    nsegs == 0 ||
		    nsegs > (discard ? VDK_BLK_MAX_DISCARD_SEG
				     : VDK_BLK_MAX_WRITE_ZEROES_SEG)) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		for (uint32_t i = 0; i < nsegs; i++) {
			struct virtio_blk_discard_write_zeroes w;

			uint32_t flags, num;

			memcpy(&w, segs + 16 * i, sizeof(w));
			flags = le32toh(w.flags);
			num = le32toh(w.num_sectors);
			if ((flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
			    (discard && flags)) {
				st = VIRTIO_BLK_S_UNSUPP;
				break;
			}
			if (num > (discard ? VDK_BLK_MAX_DISCARD_SECTORS
					   : VDK_BLK_MAX_WRITE_ZEROES_SECTORS) ||
			    !range_ok(r, le64toh(w.sector), num)) {
				st = VIRTIO_BLK_S_IOERR;
				break;
			}
		}
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	c->expect = st;
}

/* A data buffer: length code and offset from the input, inside the data
 * area (possibly across the region boundary). */
static struct guest_buf data_buf(struct rig *r, bool writable)
{
	uint8_t lc = take8(r);
	uint32_t len = (lc & 0x80) ? (lc & 0x7fu) * 512u : lc;
	uint32_t off = (uint32_t)take_le(r, 2);

	if (len > DATA_SIZE)
		len = DATA_SIZE;
	return (struct guest_buf){DATA_GPA + off % (DATA_SIZE - len + 1), len,
				  writable};
}

/* Space for a new chain of @ndesc ring descriptors, @table indirect table
 * and @hdr header bytes; ends the round first if the current one is full. */
static void make_room(struct rig *r, unsigned ndesc, bool table, uint32_t hdr)
{
	if (r->nrec >= MAX_CHAINS || r->nrec >= r->qsize ||
	    r->descs + ndesc > r->qsize ||
	    (table && INDIRECT_GPA + (r->tables + 1) * 256u > INDIRECT_END) ||
	    HDR_GPA + r->hdr_off + hdr > HDR_END)
		end_round(r);
}

static void op_request(struct rig *r)
{
	static const uint32_t types[6] = {
		VIRTIO_BLK_T_IN,      VIRTIO_BLK_T_OUT,
		VIRTIO_BLK_T_FLUSH,   VIRTIO_BLK_T_GET_ID,
		VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES};
	uint8_t t = take8(r), shape = take8(r), layout;
	struct rec c = {.nbuf = 0};
	uint8_t hdr[16 + 34 * 16] = {0};
	uint32_t hlen = 16, nsegs = 0, plen = 0;
	bool wide = shape & 0x20, seg_type;
	int head;

	c.type = t < 0xf0 ? types[t % 6] : (uint32_t)take_le(r, 4);
	c.sector = wide ? take_le(r, 8) : take_le(r, 2);
	seg_type = c.type == VIRTIO_BLK_T_DISCARD ||
		   c.type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint32_t type_le = htole32(c.type);
	uint64_t sector_le = htole64(c.sector);

	memcpy(hdr, &type_le, 4);
	if (shape & 0xc0)
		hdr[4] = take8(r); /* ioprio: ignored by the device */
	memcpy(hdr + 8, &sector_le, 8);
	if (shape & 0x08)
		hlen = take8(r) % 16; /* a short header */
	if (seg_type) {
		nsegs = take8(r) % 35;
		for (uint32_t i = 0; i < nsegs; i++) {
			struct virtio_blk_discard_write_zeroes w = {0};

			w.sector =
				htole64(wide ? take_le(r, 8) : take_le(r, 2));
			w.num_sectors =
				htole32((uint32_t)take_le(r, wide ? 4 : 1));
			w.flags = htole32(take8(r) & (wide ? 0xffu : 0x01u));
			memcpy(hdr + 16 + 16 * i, &w, sizeof(w));
		}
		plen = 16 * nsegs;
	}
	layout = take8(r);

	uint32_t nrd = layout & 3, nwr = (layout >> 2) & 3;
	struct guest_buf rd[3], wr[3], st;

	for (uint32_t i = 0; i < nrd; i++)
		rd[i] = data_buf(r, false);
	for (uint32_t i = 0; i < nwr; i++)
		wr[i] = data_buf(r, true);
	st = (struct guest_buf){DATA_GPA + take_le(r, 2) % DATA_SIZE, 1, true};

	/* Header (and segments) in one or two readable buffers. */
	bool indirect = shape & 1;
	unsigned ndesc = 1 + ((shape >> 1) & 1) + ((shape >> 4) & 1) + nrd +
			 nwr + !(layout & 0x20) + ((layout >> 6) & 1);

	if (ndesc > r->qsize && !indirect)
		return; /* longer than the queue: not a chain a driver makes */
	make_room(r, indirect ? 1 : ndesc, indirect, hlen + plen);
	uint64_t hgpa = HDR_GPA + r->hdr_off;
	/* a short header: the driver's bytes, then the segments */
	memmove(hdr + hlen, hdr + 16, plen);
	fuzz_guest_write(hgpa, hdr, hlen + plen);
	r->hdr_off += (hlen + plen + 15) & ~15u;
	if (shape & 2) { /* split: header and segments in two pieces */
		uint32_t cut = (hlen + plen) / 2;

		c.bufs[c.nbuf++] = (struct guest_buf){hgpa, cut, false};
		c.bufs[c.nbuf++] = (struct guest_buf){hgpa + cut,
						      hlen + plen - cut, false};
	} else {
		c.bufs[c.nbuf++] = (struct guest_buf){hgpa, hlen + plen, false};
	}
	if (shape & 0x10) /* a zero-length readable descriptor */
		c.bufs[c.nbuf++] = (struct guest_buf){0, 0, false};
	for (uint32_t i = 0; i < nrd; i++) {
		fuzz_guest_fill(rd[i].gpa, (uint8_t)(t + i), rd[i].len);
		c.bufs[c.nbuf++] = rd[i];
	}
	for (uint32_t i = 0; i < nwr; i++)
		c.bufs[c.nbuf++] = wr[i];
	if (!(layout & 0x20)) /* else: no status byte of its own */
		c.bufs[c.nbuf++] = st;
	if (layout & 0x40) /* a zero-length writable descriptor last */
		c.bufs[c.nbuf++] = (struct guest_buf){0, 0, true};

	for (int k = 0; k < c.nbuf; k++) {
		if (c.bufs[k].writable) {
			c.W += c.bufs[k].len;
			if (c.bufs[k].len) {
				c.has_status = true;
				c.status_gpa =
					c.bufs[k].gpa + c.bufs[k].len - 1;
			}
		} else {
			c.R += c.bufs[k].len;
		}
	}
	if (c.has_status)
		fuzz_guest_fill(c.status_gpa, 0xee, 1);
	/* The readable stream is header || segments only without data
	 * buffers; a short header shifts it. */
	predict(r, &c, !(shape & 0x08) && (!seg_type || nrd == 0), hdr + hlen,
		nsegs);
	if (indirect) {
		uint64_t table = INDIRECT_GPA + 256u * r->tables++;

		head = guest_ring_add_indirect(&r->gr, table, c.bufs, c.nbuf);
		r->descs++;
	} else {
		head = guest_ring_add_chain(&r->gr, c.bufs, c.nbuf);
		r->descs += c.nbuf;
	}
	if (head < 0)
		abort(); /* the areas are always mapped */
	c.head = (uint16_t)head;
	if (c.type == VIRTIO_BLK_T_OUT || seg_type)
		r->round_mutates |= c.expect != VIRTIO_BLK_S_IOERR &&
				    c.expect != VIRTIO_BLK_S_UNSUPP;
	r->recs[r->nrec++] = c;
}

/* A raw chain: n descriptors with the input's address, length, flags and
 * next, linked (or not) as the input says. */
static void op_raw(struct rig *r)
{
	unsigned n = 1 + take8(r) % 4;
	uint16_t head = r->gr.free_desc;

	make_room(r, n, false, 0);
	head = r->gr.free_desc;
	for (unsigned k = 0; k < n; k++) {
		uint8_t mode = take8(r);
		uint64_t addr = (mode & 1)
					? take_le(r, 4)
					: DATA_GPA + take_le(r, 2) % DATA_SIZE;
		uint32_t len = (uint32_t)take_le(r, (mode & 2) ? 4 : 1);
		uint16_t flags = (uint16_t)take_le(r, 1);
		uint16_t next = (uint16_t)take8(r);
		uint16_t i = (uint16_t)((head + k) % r->qsize);

		/* A writable buffer outside the data area, or an indirect
		 * table (whose entries may point anywhere), may hit the
		 * rings: no more used ring checks until a reset. */
		if ((flags & VRING_DESC_F_INDIRECT) ||
		    ((mode & 1) && (flags & VRING_DESC_F_WRITE)))
			r->tainted = true;
		if (!(mode & 4) && k + 1 < n) { /* linked in order */
			flags |= VRING_DESC_F_NEXT;
			next = (uint16_t)((i + 1) % r->qsize);
		}
		guest_ring_set_desc(&r->gr, i, addr, len, flags, next);
	}
	r->gr.free_desc = (uint16_t)((head + n) % r->qsize);
	r->descs += n;
	guest_ring_push(&r->gr, head);
	r->recs[r->nrec++] = (struct rec){.head = head, .raw = true};
	r->round_raw = true;
}

/* Sleep, snapshot, restore into a fresh device over the same image, wake
 * it with the same rings, free the old one. */
static void migrate(struct rig *r)
{
	struct vdk_blk_stats a, b;
	struct vdk_blk *nb;
	uint8_t *snap = NULL;
	size_t len = 0;

	CHECK(vdk_device_sleep(r->dev) == 0);
	CHECK(vdk_blk_in_flight(r->blk) == 0);
	CHECK(vdk_device_snapshot(r->dev, &snap, &len) == 0);
	CHECK((nb = vdk_blk_new(&r->cfg, NULL)) != NULL);
	CHECK(vdk_device_sleep(vdk_blk_device(nb)) == 0);
	CHECK(vdk_device_restore(vdk_blk_device(nb), snap, len) == 0);
	free(snap);
	a = vdk_blk_stats(r->blk);
	b = vdk_blk_stats(nb);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0); /* the counters travel */
	CHECK(vdk_device_wake(vdk_blk_device(nb), r->mem, &r->irq, r->qp) == 0);
	vdk_blk_free(r->blk);
	r->blk = nb;
	r->dev = vdk_blk_device(nb);
}

static void op_lifecycle(struct rig *r)
{
	uint8_t how = take8(r) % 3;

	if (how == 2) {
		migrate(r);
		return;
	}
	if (how == 0) {
		CHECK(vdk_device_sleep(r->dev) == 0);
		CHECK(vdk_blk_in_flight(r->blk) == 0);
		CHECK(vdk_device_wake(r->dev, NULL, NULL, NULL) == 0);
		return;
	}
	/* Reset: the device drains and forgets the rings; chains not yet
	 * popped are never returned. */
	CHECK(vdk_device_reset(r->dev) == 0);
	CHECK(vdk_blk_in_flight(r->blk) == 0);
	r->needs_reset++; /* relax "all returned" for this round */
	end_round(r);
	r->needs_reset = 0;
	vdk_virtq_reset(&r->q);
	r->tainted = false;
	if (queue_up(r) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rig rig;
	struct rig *r = &rig;
	uint8_t c0, c1, c2;
	int fd_before;

	if (size < 4)
		return 0;
	memset(r, 0, sizeof(*r));
	r->p = data;
	r->left = size;
	c0 = take8(r);
	c1 = take8(r);
	c2 = take8(r);
	r->start = (uint16_t)(0x10000u - take8(r));
	r->ro = c0 & 1;
	r->serial = (c0 & 0x80) ? SERIAL_LONG : SERIAL_SHORT;
	r->features = 1ull << VIRTIO_F_VERSION_1;
	if (c0 & 2)
		r->features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	if (c0 & 4)
		r->features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	r->dev_qs = (uint16_t)(4u << (c1 & 3));
	r->qsize = (uint16_t)(r->dev_qs >> (((c1 >> 2) & 3) % 3));
	r->img_size = (uint64_t)c2 * 1024 + ((c2 & 1) ? 0 : 300);
	r->capacity = r->img_size / 512;
	r->qp[0] = &r->q;

	fd_before = fuzz_lowest_free_fd();
	fuzz_guest_reset();
	if (ftruncate(img_fd, 0) < 0 ||
	    ftruncate(img_fd, (off_t)r->img_size) < 0 ||
	    pwrite(img_fd, pattern, r->img_size, 0) != (ssize_t)r->img_size)
		abort();
	memcpy(shadow, pattern, r->img_size);
	vdk_interrupt_init_callback(&r->irq, &irq_ops, r);
	r->mem = vdk_mem_new(NULL);
	if (!r->mem || fuzz_guest_map(r->mem) < 0 || open_device(r, c0) < 0 ||
	    queue_up(r) < 0)
		abort();

	while (r->left) {
		uint8_t op = take8(r);

		switch (op % 8) {
		case 0:
		case 1:
			op_request(r);
			break;
		case 2: {
			uint8_t a = take8(r);

			vdk_device_queue_notify(r->dev, (a & 0x80) ? a & 3 : 0);
			break;
		}
		case 3:
			CHECK(vdk_blk_process_completions(r->blk, 0) >= 0);
			CHECK(vdk_blk_process_completions(r->blk, 1) ==
			      -EINVAL);
			break;
		case 4:
			end_round(r);
			break;
		case 5:
			op_raw(r);
			break;
		case 6:
			op_lifecycle(r);
			break;
		default: {
			uint16_t ev = (uint16_t)take_le(r, 2);

			guest_ring_set_used_event(&r->gr, ev);
			guest_ring_set_avail_flags(&r->gr, ev & 1);
			break;
		}
		}
	}
	end_round(r);

	vdk_blk_free(r->blk);
	vdk_mem_free(r->mem);
	CHECK(fuzz_guest_guards_intact());
	/* The image: same size; unchanged if read-only; the tail past the
	 * last whole sector never written. */
	struct stat sb;
	CHECK(fstat(img_fd, &sb) == 0 && (uint64_t)sb.st_size == r->img_size);
	CHECK(pread(img_fd, filebuf, r->img_size, 0) == (ssize_t)r->img_size);
	if (r->ro)
		CHECK(memcmp(filebuf, pattern, r->img_size) == 0);
	CHECK(memcmp(filebuf + r->capacity * 512, pattern + r->capacity * 512,
		     r->img_size - r->capacity * 512) == 0);
	CHECK(fuzz_lowest_free_fd() == fd_before);
	return 0;
}
