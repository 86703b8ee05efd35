/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the inflight region of src/vhost_user (spec "Inflight I/O
 * tracking"): GET/SET_INFLIGHT_FD, marks after pop without used, clearing
 * on used, the reconnect settlement and counter order, hostile region
 * contents and fds; a back-end killed with chains in flight and a new one
 * that resubmits them, by counter, before new available ones, with the
 * sdev of vhost_user_env.h and with the rng device through the adapter. The
 * scripted front-end of vu_frontend.h drives the backend over a socketpair;
 * every test checks that no fd outlives it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vdk/devices/rng.h>
#include <vdk/vhost_user.h>
#include <vdk/virtq.h>

#include "guest_ring.h"
#include "vhost_user_env.h"
#include "vu_frontend.h"

/* ---- inflight region --------------------------------------------------- */

#define QREGION(base, q, qbytes)                                               \
	((struct vhost_user_queue_region_split *)((uint8_t *)(base) +          \
						  (q) * (qbytes)))

/* GET_INFLIGHT_FD: returns the fd, fills *@in. */
static int fe_get_inflight(struct vu_fe *fe, uint16_t nq, uint16_t qs,
			   struct vhost_user_inflight *in, int expect)
{
	struct vhost_user_inflight req = {.num_queues = nq, .queue_size = qs};
	int fd = -1;

	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_GET_INFLIGHT_FD, &req,
				      sizeof(req), -1),
			 expect);
	assert_int_equal(vu_fe_reply(fe, VHOST_USER_GET_INFLIGHT_FD, in,
				     sizeof(*in), &fd),
			 sizeof(*in));
	return fd;
}

/* GET_INFLIGHT_FD for @nq queues of QSIZE: our mapping of the region, *@fd
 * its fd, *@in the answer. */
static uint8_t *fe_map_inflight(struct vu_fe *fe, uint16_t nq,
				struct vhost_user_inflight *in, int *fd)
{
	uint8_t *region;

	*fd = fe_get_inflight(fe, nq, QSIZE, in, 1);
	region = mmap(NULL, in->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      *fd, 0);
	assert_true(region != MAP_FAILED);
	return region;
}

/* Kick ring @q and let the backend process it. */
static void fe_kick(struct vu_fe *fe, uint16_t q)
{
	vu_fe_kick(fe, q);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, q), 1);
}

static void test_inflight_messages(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_inflight in;
	int pfd[2];

	/* not negotiated: the error answer, mmap_size 0 and no fd */
	assert_int_equal(fe_get_inflight(fe, NQ, QSIZE, &in, -EOPNOTSUPP), -1);
	assert_int_equal(in.mmap_size, 0);
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	/* bad queue count / size */
	assert_int_equal(fe_get_inflight(fe, NQ + 1, QSIZE, &in, -EINVAL), -1);
	assert_int_equal(fe_get_inflight(fe, NQ, 0, &in, -EINVAL), -1);
	assert_int_equal(fe_get_inflight(fe, 0, QSIZE, &in, -EINVAL), -1);

	int fd = fe_get_inflight(fe, NQ, QSIZE, &in, 1);
	assert_true(fd >= 0);
	/* 16-byte header + 16 bytes per descriptor, to 64 bytes */
	assert_int_equal(in.mmap_size, NQ * 320);
	assert_int_equal(in.mmap_offset, 0);
	assert_int_equal(in.num_queues, NQ);
	assert_int_equal(in.queue_size, QSIZE);
	/* sealed: the front-end cannot shrink it under the back-end */
	assert_true(ftruncate(fd, 64) < 0);

	/* SET_INFLIGHT_FD: too small, not a file, file too short, offset
	 * wrapping, no fd */
	struct vhost_user_inflight bad = in;
	bad.mmap_size = in.mmap_size - 1;
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &bad,
				      sizeof(bad), fd),
			 -EINVAL);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), pfd[0]),
			 -EINVAL);
	bad = in;
	bad.mmap_offset = 4096;
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &bad,
				      sizeof(bad), fd),
			 -EINVAL);
	bad.mmap_offset = UINT64_MAX - 8;
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &bad,
				      sizeof(bad), fd),
			 -EINVAL);
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), -1),
			 -EINVAL);
	/* the spec's 20-byte payload is accepted too */
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      VHOST_USER_INFLIGHT_SPEC_SIZE, fd),
			 1);
	/* refused while a ring runs */
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), fd),
			 -EBUSY);
	close(pfd[0]);
	close(pfd[1]);
	close(fd);

	/* the rng adapter is offered it too: its queues are tracked */
	struct vdk_vhost_user_device_adapter ad;
	struct vdk_rng *rng = fx_connect_rng(fe, &ad, NULL);
	uint64_t offered = vu_fe_setup(fe, 0);
	assert_true(offered & PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_true(offered & PF(VHOST_USER_PROTOCOL_F_DEVICE_STATE));
	assert_true(offered & PF(VHOST_USER_PROTOCOL_F_BACKEND_REQ));
	vu_fe_disconnect(fe);
	vdk_rng_free(rng);
}

static void test_inflight_tracking_and_reconnect(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_inflight in;
	uint16_t pending[QSIZE];

	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	int fd;
	uint8_t *region = fe_map_inflight(fe, NQ, &in, &fd);
	struct vhost_user_queue_region_split *q0 = QREGION(region, 0, 320);
	struct vhost_user_queue_region_split *q1 = QREGION(region, 1, 320);

	/* the region is initialised when the ring starts */
	assert_int_equal(q0->version, 0);
	f->sd.hold = true;
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	assert_int_equal(q0->version, VHOST_USER_INFLIGHT_VERSION);
	assert_int_equal(q0->desc_num, QSIZE);
	assert_int_equal(q1->version, 0); /* ring 1 not started */

	/* popped without used: in flight, in fetch order */
	int h[4];
	for (int i = 0; i < 3; i++)
		h[i] = vu_fe_post(fe, 0, DATA_GPA + 0x100 * i);
	fe_kick(fe, 0);
	assert_int_equal(f->sd.nheld, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(q0->desc[h[i]].inflight, 1);
		assert_int_equal(q0->desc[h[i]].counter, i);
	}
	assert_int_equal(q0->desc[h[2] + 1].inflight, 0);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 0);

	/* used: cleared, used_idx and the batch list follow */
	assert_int_equal(vdk_vhost_user_queue_add_used(fe->vu, 0, h[1], 0), 0);
	assert_int_equal(q0->desc[h[1]].inflight, 0);
	assert_int_equal(q0->used_idx, 1);
	assert_int_equal(q0->last_batch_head, h[1]);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 1);
	h[3] = vu_fe_post(fe, 0, DATA_GPA + 0x300);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(q0->desc[h[3]].counter, 3);
	/* bad index / stopped ring */
	assert_int_equal(vdk_vhost_user_queue_add_used(fe->vu, NQ, 0, 0),
			 -ERANGE);
	assert_int_equal(vdk_vhost_user_queue_add_used(fe->vu, 1, 0, 0), -EIO);

	/* The back-end dies. A crash right after publishing the used index
	 * of h[0] but before clearing its entry: */
	struct vring_used *used = vu_fe_host(fe, fe->gr[0].used_gpa);
	vu_fe_disconnect(fe);
	used->ring[1].id = (uint32_t)h[0];
	__atomic_store_n(&used->idx, 2, __ATOMIC_RELEASE);
	q0->desc[h[0]].next = q0->last_batch_head;
	q0->last_batch_head = (uint16_t)h[0];
	/* and the front-end rearranges the counters of h[2] and h[3] */
	q0->desc[h[2]].counter = 7;
	q0->desc[h[3]].counter = 5;

	/* a new back-end gets the region back */
	fx_reconnect_sdev(f);
	f->sd.hold = true;
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), fd),
			 1);
	vu_fe_start_ring(fe, 0, 4, RING_RESTART);
	/* the last batch (h[0]) reached the driver: settled */
	assert_int_equal(q0->desc[h[0]].inflight, 0);
	assert_int_equal(q0->used_idx, 2);
	assert_int_equal(
		vdk_vhost_user_inflight_pending(fe->vu, 0, pending, QSIZE), 2);
	assert_int_equal(pending[0], h[3]); /* counter 5 */
	assert_int_equal(pending[1], h[2]); /* counter 7 */
	assert_int_equal(
		vdk_vhost_user_inflight_pending(fe->vu, 1, pending, QSIZE), 0);
	assert_int_equal(
		vdk_vhost_user_inflight_pending(fe->vu, NQ, pending, QSIZE),
		-ERANGE);
	/* new pops continue the counter */
	int h4 = vu_fe_post(fe, 0, DATA_GPA + 0x400);
	assert_int_equal(vdk_vhost_user_handle_kick(fe->vu, 0), 1);
	assert_int_equal(q0->desc[h4].inflight, 1);
	assert_int_equal(q0->desc[h4].counter, 8);

	/* hostile region contents: a wild batch head, another version */
	vu_fe_disconnect(fe);
	q0->used_idx = 0; /* 2 behind the used ring */
	q0->last_batch_head = 0xffff;
	q1->version = 77;
	fx_reconnect_sdev(f);
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), fd),
			 1);
	vu_fe_start_ring(fe, 0, 5, RING_RESTART);
	vu_fe_start_ring(fe, 1, 0, RING_NEW);
	/* settled to 2, then h[3], h[2], h4 resubmitted by counter (5, 7, 8)
	 * and returned */
	assert_int_equal(f->sd.npopped, 3);
	assert_int_equal(f->sd.popped[0], h[3]);
	assert_int_equal(f->sd.popped[1], h[2]);
	assert_int_equal(f->sd.popped[2], h4);
	assert_int_equal(used->idx, 5);
	assert_int_equal(used->ring[2].id, h[3]);
	assert_int_equal(used->ring[3].id, h[2]);
	assert_int_equal(used->ring[4].id, h4);
	assert_int_equal(q0->used_idx, 5);
	for (int k = 0; k < QSIZE; k++)
		assert_int_equal(q0->desc[k].inflight, 0);
	assert_int_equal(q1->version, 77); /* left alone, not tracked */
	munmap(region, in.mmap_size);
	close(fd);
}

/*
 * A back-end killed during guest I/O: four chains popped, one returned
 * straight through vdk_virtq_add_used() (its region entry settles only
 * later), then the process dies. The front-end keeps the region; after a
 * lost back-end it sends the used index as SET_VRING_BASE. The new
 * back-end runs the three chains still in flight, by counter, before the
 * chain the guest added meanwhile, and the used ring gets each once.
 */
static void test_inflight_crash_resubmit(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	struct vhost_user_inflight in;
	uint32_t id, len;
	int h[5];

	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	int fd;
	uint8_t *region = fe_map_inflight(fe, NQ, &in, &fd);
	struct vhost_user_queue_region_split *q0 = QREGION(region, 0, 320);
	uint8_t *at_crash = malloc(in.mmap_size);

	f->sd.hold = true;
	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	for (int k = 0; k < 4; k++)
		h[k] = vu_fe_post(fe, 0, DATA_GPA + 0x100 * k);
	fe_kick(fe, 0);
	assert_int_equal(f->sd.nheld, 4);
	/* the device returns h[2] itself, without the vhost-user wrapper */
	assert_int_equal(vdk_virtq_add_used(f->sd.q[0], (uint16_t)h[2], 9), 0);
	assert_int_equal(guest_ring_used_idx(&fe->gr[0]), 1);
	/* published, noted as the last batch, not settled yet */
	assert_int_equal(q0->last_batch_head, h[2]);
	assert_int_equal(q0->used_idx, 0);
	assert_int_equal(q0->desc[h[2]].inflight, 1);
	/* the process dies here: what the region holds at that moment */
	memcpy(at_crash, region, in.mmap_size);
	vu_fe_disconnect(fe);
	/* (an orderly stop would have settled it) */
	assert_int_equal(q0->desc[h[2]].inflight, 0);
	assert_int_equal(q0->used_idx, 1);
	memcpy(region, at_crash, in.mmap_size);
	free(at_crash);
	/* the front-end reorders by counter: h[0] was fetched last */
	q0->desc[h[0]].counter = 9;
	/* the guest adds a chain meanwhile */
	h[4] = vu_fe_post(fe, 0, DATA_GPA + 0x400);

	fx_reconnect_sdev(f);
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), fd),
			 1);
	vu_fe_start_ring(fe, 0, 1,
			 RING_RESTART); /* the used index, as QEMU sends */
	/* resubmitted in counter order, then the new chain */
	assert_int_equal(f->sd.npopped, 4);
	assert_int_equal(f->sd.popped[0], h[1]);
	assert_int_equal(f->sd.popped[1], h[3]);
	assert_int_equal(f->sd.popped[2], h[0]);
	assert_int_equal(f->sd.popped[3], h[4]);
	/* the used ring: h[2] from before the crash, each of the rest once */
	const int want[5] = {h[2], h[1], h[3], h[0], h[4]};
	for (int k = 0; k < 5; k++) {
		assert_int_equal(guest_ring_get_used(&fe->gr[0], &id, &len), 1);
		assert_int_equal(id, want[k]);
	}
	assert_int_equal(guest_ring_get_used(&fe->gr[0], &id, &len), 0);
	for (int k = 0; k < QSIZE; k++)
		assert_int_equal(q0->desc[k].inflight, 0);
	assert_int_equal(q0->used_idx, 5);
	/* the front-end's next index follows all five */
	assert_int_equal(vu_fe_get_vring_base(fe, 0), 5);
	munmap(region, in.mmap_size);
	close(fd);
}

/*
 * The same through the device adapter: the rng device pops with
 * vdk_virtq_pop() itself, and its queue is tracked. Three chains are taken
 * from its queue (as a device worker mid-request would) when the back-end
 * dies; a new rng back-end fills them first, in counter order, then the one
 * added meanwhile.
 */
static void test_inflight_resubmit_rng_adapter(void **state)
{
	struct fx *f = *state;
	struct vu_fe *fe = &f->fe;
	const struct vdk_rng_config cfg = {.queue_max_size = QSIZE};
	struct vdk_vhost_user_device_adapter ad, ad2;
	struct vdk_rng *rng, *rng2;
	struct vhost_user_inflight in;
	uint32_t id, len;
	int h[6];

	rng = fx_connect_rng(fe, &ad, &cfg);
	assert_true(vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) &
		    PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	int fd;
	uint8_t *region = fe_map_inflight(fe, 1, &in, &fd);
	struct vhost_user_queue_region_split *q0 = QREGION(region, 0, 320);

	vu_fe_start_ring(fe, 0, 0, RING_NEW);
	/* served by the device: marked (counter 0), then returned */
	rng_request(fe, rng, DATA_GPA, 1);
	h[0] = 0;
	assert_int_equal(q0->desc[h[0]].counter, 0);
	assert_int_equal(q0->last_batch_head, h[0]);
	/* the next pop settles it */
	rng_request(fe, rng, DATA_GPA + 0x100, 2);
	h[1] = 1;
	assert_int_equal(q0->desc[h[0]].inflight, 0);
	assert_int_equal(q0->used_idx, 1);
	assert_int_equal(q0->desc[h[1]].counter, 1);
	assert_int_equal(q0->last_batch_head, h[1]);

	/* three taken from the device's queue, not returned */
	struct vdk_virtq *dq = ad.queues[0];
	struct iovec iov[2];
	struct vdk_virtq_chain c;
	assert_non_null(dq);
	for (int k = 2; k < 5; k++) {
		h[k] = vu_fe_post(fe, 0, DATA_GPA + 0x100 * k);
		c = (struct vdk_virtq_chain){.iov = iov, .iov_cap = 2};
		assert_int_equal(vdk_virtq_pop(dq, &c), 1);
		assert_int_equal(c.head, h[k]);
		assert_int_equal(q0->desc[h[k]].inflight, 1);
		assert_int_equal(q0->desc[h[k]].counter, k);
	}
	assert_int_equal(q0->desc[h[1]].inflight, 0);
	assert_int_equal(q0->used_idx, 2);
	/* the back-end dies; the guest adds a chain; the front-end reorders
	 * by counter (h[3] last) */
	vu_fe_disconnect(fe);
	vdk_rng_free(rng);
	h[5] = vu_fe_post(fe, 0, DATA_GPA + 0x500);
	q0->desc[h[3]].counter = 10;
	memset(vu_fe_host(fe, DATA_GPA + 0x200), 0, 0x400);

	rng2 = fx_connect_rng(fe, &ad2, &cfg);
	vu_fe_setup(fe, PF(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(vu_fe_req_fd(fe, VHOST_USER_SET_INFLIGHT_FD, &in,
				      sizeof(in), fd),
			 1);
	vu_fe_start_ring(fe, 0, 2, RING_RESTART); /* the used index */
	assert_int_equal(vdk_rng_device(rng2)->state, VDK_DEVICE_ACTIVE);
	assert_int_equal(vdk_rng_stats(rng2).requests, 4);
	const int want[4] = {h[2], h[4], h[3], h[5]};
	for (int k = 0; k < 4; k++) {
		assert_int_equal(guest_ring_get_used(&fe->gr[0], &id, &len), 1);
		assert_int_equal(id, want[k]);
		assert_int_equal(len, 64);
	}
	assert_int_equal(guest_ring_get_used(&fe->gr[0], &id, &len), 0);
	/* the resubmitted buffers were filled this time */
	static const uint8_t zero[64];
	for (int k = 2; k < 5; k++)
		assert_memory_not_equal(vu_fe_host(fe, DATA_GPA + 0x100 * k),
					zero, 64);
	/* stopping the ring settles the last one; nothing left in flight */
	assert_int_equal(vu_fe_get_vring_base(fe, 0), 6);
	for (int k = 0; k < QSIZE; k++)
		assert_int_equal(q0->desc[k].inflight, 0);
	assert_int_equal(q0->used_idx, 6);
	vu_fe_disconnect(fe);
	vdk_rng_free(rng2);
	munmap(region, in.mmap_size);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inflight_messages,
						fx_setup_sdev, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_inflight_tracking_and_reconnect, fx_setup_sdev,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_inflight_crash_resubmit,
						fx_setup_sdev, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_inflight_resubmit_rng_adapter, fx_setup_sdev,
			fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
