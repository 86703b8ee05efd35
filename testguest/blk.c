/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest: virtio-blk checks (virtio 1.2 §5.2), one request at a
 * time on request queue 0.
 *
 *   blk.<role>.init              negotiation, queue, DRIVER_OK, capacity
 *   blk.<role>.read0             sector 0 holds the host-written pattern
 *   blk.<role>.read-beyond-end   a read at sector = capacity gets IOERR
 *   blk.<role>.get-id            GET_ID; compared to vdk.serial= (rw disk)
 *   blk.rw.write / .readback     TESTGUEST_WRITE_SECTOR written, read back
 *   blk.rw.flush                 FLUSH (VIRTIO_BLK_F_FLUSH) completes OK
 *   blk.rw.reset-reinit          reset, initialise again, read both again
 *   blk.ro.write-refused         with VIRTIO_BLK_F_RO a write gets IOERR
 *                                and the sector is unchanged
 *
 * blk_read0_again() reads sector 0 once more for hostile.c.
 *
 * <role> is "rw", or "ro" when the device offers VIRTIO_BLK_F_RO.
 */
#include <asm-generic/errno.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "guest.h"

#define SECTOR 512u

struct blk {
	struct guest_dev *d;
	struct gq vq;
	uint64_t features;
	uint64_t capacity; /* sectors */
	const char *role;
	struct virtio_blk_outhdr *hdr;
	uint8_t *data;	 /* one sector */
	uint8_t *status; /* one byte */
};

static uint8_t host_byte(uint32_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static uint8_t guest_byte(uint32_t i)
{
	return (uint8_t)(i * 13 + 5);
}

/* Sector 0 as the test script writes it. */
static bool is_host_sector(const uint8_t *s)
{
	size_t m = strlen(TESTGUEST_HOST_MAGIC);

	if (memcmp(s, TESTGUEST_HOST_MAGIC, m) != 0)
		return false;
	for (uint32_t i = (uint32_t)m; i < SECTOR; i++) {
		if (s[i] != host_byte(i))
			return false;
	}
	return true;
}

static void fill_guest_sector(uint8_t *s)
{
	size_t m = strlen(TESTGUEST_GUEST_MAGIC);

	memcpy(s, TESTGUEST_GUEST_MAGIC, m);
	for (uint32_t i = (uint32_t)m; i < SECTOR; i++)
		s[i] = guest_byte(i);
}

static bool is_guest_sector(const uint8_t *s)
{
	uint8_t want[SECTOR];

	fill_guest_sector(want);
	return memcmp(s, want, SECTOR) == 0;
}

/*
 * One request: header, then @len bytes of data (device-readable for OUT,
 * device-writable for IN and GET_ID; none for FLUSH), then the status
 * byte. Return the status (VIRTIO_BLK_S_*) or a -errno from the queue.
 */
static int request(struct blk *b, uint32_t type, uint64_t sector, uint32_t len)
{
	struct vdk_driver_buf rd[2], wr[2];
	uint16_t nrd = 0, nwr = 0;
	int ret;

	/* virtio 1.2 §5.2.6: fields are little-endian (x86 is too). */
	b->hdr->type = type;
	b->hdr->ioprio = 0;
	b->hdr->sector = sector;
	*b->status = 0xff; /* no VIRTIO_BLK_S_* value */
	rd[nrd++] = (struct vdk_driver_buf){b->hdr, sizeof(*b->hdr)};
	if (len && type == VIRTIO_BLK_T_OUT)
		rd[nrd++] = (struct vdk_driver_buf){b->data, len};
	else if (len)
		wr[nwr++] = (struct vdk_driver_buf){b->data, len};
	wr[nwr++] = (struct vdk_driver_buf){b->status, 1};
	ret = gq_submit_wait(&b->vq, rd, nrd, wr, nwr);
	if (ret < 0)
		return ret;
	/* The status byte is the last byte the device writes (§5.2.6). */
	if (ret < 1)
		return -EIO;
	return *(volatile uint8_t *)b->status;
}

static const char *status_name(int s)
{
	switch (s) {
	case VIRTIO_BLK_S_OK:
		return "OK";
	case VIRTIO_BLK_S_IOERR:
		return "IOERR";
	case VIRTIO_BLK_S_UNSUPP:
		return "UNSUPP";
	case -ETIMEDOUT:
		return "timeout";
	case -EIO:
		return "device broke the queue";
	default:
		return "?";
	}
}

/* §3.1.1 from scratch: features, queue 0, capacity, DRIVER_OK. */
static int blk_init(struct blk *b)
{
	struct vdk_driver_transport *t = b->d->t;
	const uint64_t want = 1ull << VIRTIO_F_VERSION_1 |
			      1ull << VIRTIO_BLK_F_RO |
			      1ull << VIRTIO_BLK_F_FLUSH |
			      1ull << VIRTIO_RING_F_INDIRECT_DESC |
			      1ull << VIRTIO_RING_F_EVENT_IDX;
	int ret;

	ret = vdk_driver_begin_init(t, want, &b->features);
	if (ret < 0)
		return ret;
	ret = gq_setup(&b->vq, b->d, 0, 16, b->features);
	if (ret < 0)
		goto fail;
	ret = vdk_driver_read_config_consistent(
		t, __builtin_offsetof(struct virtio_blk_config, capacity),
		&b->capacity, sizeof(b->capacity));
	if (ret < 0)
		goto fail;
	ret = vdk_driver_finish_init(t);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	vdk_driver_fail(t);
	return ret;
}

static void check_read0(struct blk *b, const char *name)
{
	int s;

	memset(b->data, 0, SECTOR);
	s = request(b, VIRTIO_BLK_T_IN, 0, SECTOR);
	check(name, s == VIRTIO_BLK_S_OK && is_host_sector(b->data),
	      "status %s, data %s", status_name(s),
	      is_host_sector(b->data) ? "host pattern" : "WRONG");
}

static void check_get_id(struct blk *b, const char *expect, const char *nm)
{
	char id[VIRTIO_BLK_ID_BYTES + 1];
	int s;

	memset(b->data, 0, SECTOR);
	s = request(b, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
	memcpy(id, b->data, VIRTIO_BLK_ID_BYTES);
	id[VIRTIO_BLK_ID_BYTES] = '\0'; /* no NUL if all 20 bytes used */
	if (s == VIRTIO_BLK_S_OK && expect && expect[0])
		check(nm,
		      strlen(id) == strlen(expect) &&
			      memcmp(id, expect, strlen(id)) == 0,
		      "serial \"%s\", expected \"%s\"", id, expect);
	else
		check(nm, s == VIRTIO_BLK_S_OK, "status %s, serial \"%s\"",
		      status_name(s), id);
}

static void run_rw(struct blk *b, const char *serial)
{
	struct vdk_driver_transport *t = b->d->t;
	bool flush = b->features & (1ull << VIRTIO_BLK_F_FLUSH);
	int s, ret;

	check_get_id(b, serial, "blk.rw.get-id");

	fill_guest_sector(b->data);
	s = request(b, VIRTIO_BLK_T_OUT, TESTGUEST_WRITE_SECTOR, SECTOR);
	check("blk.rw.write", s == VIRTIO_BLK_S_OK, "sector %u: status %s",
	      TESTGUEST_WRITE_SECTOR, status_name(s));

	memset(b->data, 0, SECTOR);
	s = request(b, VIRTIO_BLK_T_IN, TESTGUEST_WRITE_SECTOR, SECTOR);
	check("blk.rw.readback",
	      s == VIRTIO_BLK_S_OK && is_guest_sector(b->data),
	      "status %s, data %s", status_name(s),
	      is_guest_sector(b->data) ? "as written" : "WRONG");

	if (flush) {
		s = request(b, VIRTIO_BLK_T_FLUSH, 0, 0);
		check("blk.rw.flush", s == VIRTIO_BLK_S_OK, "status %s",
		      status_name(s));
	} else {
		info("blk.rw: VIRTIO_BLK_F_FLUSH not offered; no flush");
	}

	/* Reset and initialise again (virtio 1.2 §2.4, §3.1.1): the
	 * queue starts over; what was written is still there. */
	ret = vdk_driver_reset(t);
	if (ret == 0)
		ret = blk_init(b);
	if (ret < 0) {
		check("blk.rw.reset-reinit", false, "re-initialisation: %d",
		      ret);
		return;
	}
	memset(b->data, 0, SECTOR);
	s = request(b, VIRTIO_BLK_T_IN, TESTGUEST_WRITE_SECTOR, SECTOR);
	ret = s == VIRTIO_BLK_S_OK && is_guest_sector(b->data);
	memset(b->data, 0, SECTOR);
	s = request(b, VIRTIO_BLK_T_IN, 0, SECTOR);
	check("blk.rw.reset-reinit",
	      ret && s == VIRTIO_BLK_S_OK && is_host_sector(b->data),
	      "after reset: sector %u %s, sector 0 %s", TESTGUEST_WRITE_SECTOR,
	      ret ? "ok" : "WRONG",
	      s == VIRTIO_BLK_S_OK && is_host_sector(b->data) ? "ok" : "WRONG");
}

static void run_ro(struct blk *b)
{
	bool unchanged;
	int s, s2;

	check_get_id(b, NULL, "blk.ro.get-id");
	fill_guest_sector(b->data);
	s = request(b, VIRTIO_BLK_T_OUT, TESTGUEST_WRITE_SECTOR, SECTOR);
	memset(b->data, 0, SECTOR);
	s2 = request(b, VIRTIO_BLK_T_IN, TESTGUEST_WRITE_SECTOR, SECTOR);
	unchanged = s2 == VIRTIO_BLK_S_OK && !is_guest_sector(b->data);
	check("blk.ro.write-refused", s == VIRTIO_BLK_S_IOERR && unchanged,
	      "write status %s (want IOERR), sector %s", status_name(s),
	      unchanged ? "unchanged" : "CHANGED or unreadable");
}

static struct blk blks[MAX_DEVICES];

int blk_read0_again(struct guest_dev *d, bool *host_pattern)
{
	struct blk *b = &blks[d->index];
	int s;

	*host_pattern = false;
	if (b->d != d || !b->data || !b->vq.ring)
		return -ENODEV;
	memset(b->data, 0, SECTOR);
	s = request(b, VIRTIO_BLK_T_IN, 0, SECTOR);
	*host_pattern = s == VIRTIO_BLK_S_OK && is_host_sector(b->data);
	return s;
}

void blk_run(struct guest_dev *d, const char *expect_serial)
{
	struct blk *b = &blks[d->index];
	char name[40];
	int ret, s;

	b->d = d;
	b->hdr = arena_alloc(sizeof(*b->hdr), 16);
	b->data = arena_alloc(SECTOR, SECTOR);
	b->status = arena_alloc(1, 1);
	b->role = "?";
	ret = b->hdr && b->data && b->status ? blk_init(b) : -ENOMEM;
	if (ret == 0)
		b->role =
			(b->features & (1ull << VIRTIO_BLK_F_RO)) ? "ro" : "rw";
	gsnprintf(name, sizeof(name), "blk.%s.init", b->role);
	check(name, ret == 0,
	      "device %u: %d, features 0x%lx, capacity %lu sectors", d->index,
	      ret, b->features, b->capacity);
	if (ret < 0)
		return;

	gsnprintf(name, sizeof(name), "blk.%s.read0", b->role);
	check_read0(b, name);

	gsnprintf(name, sizeof(name), "blk.%s.read-beyond-end", b->role);
	s = request(b, VIRTIO_BLK_T_IN, b->capacity, SECTOR);
	check(name, s == VIRTIO_BLK_S_IOERR, "sector %lu: status %s",
	      b->capacity, status_name(s));

	if (b->features & (1ull << VIRTIO_BLK_F_RO))
		run_ro(b);
	else
		run_rw(b, expect_serial);
}
