// SPDX-License-Identifier: Apache-2.0
/*
 * vhost-user guest memory: VHOST_USER_SET_MEM_TABLE (the whole table, all or
 * nothing), VHOST_USER_ADD_MEM_REG / REM_MEM_REG and GET_MAX_MEM_SLOTS
 * (VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS), QEMU docs/interop/
 * vhost-user.rst "Memory access". Regions are mapped through <vdk/mem.h>;
 * running rings are stopped around every change and restarted after it
 * (their addresses are front-end user addresses, translated again).
 *
 * The front-end is not trusted: each region is checked for a zero size,
 * wrapping ranges (guest address, user address, mmap offset), overlap with
 * the regions already mapped, and a backing file too short for it (a
 * mapping past the end of a file raises SIGBUS when touched), before
 * anything is mapped. A front-end that truncates a file after it was mapped
 * would make the next access raise SIGBUS and kill the process, so a
 * region's file must be sealed with F_SEAL_SHRINK (QEMU's
 * memory-backend-memfd is, seal=on by default) unless the program allowed
 * unsealed memory (vdk_vhost_user_set_allow_unsealed()): then it accepts
 * that risk, e.g. for memory-backend-file on hugetlbfs or /dev/shm.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static bool ranges_overlap(uint64_t a, uint64_t a_len, uint64_t b,
			   uint64_t b_len)
{
	return a < b + b_len && b < a + a_len;
}

/* Size non-zero, gpa/user ranges not wrapping, user range not overlapping
 * any region already in @mem (user addresses must translate uniquely). */
static int region_check(const struct vdk_mem *mem,
			const struct vhost_user_memory_region *reg)
{
	uint64_t end;

	if (reg->memory_size == 0 ||
	    __builtin_add_overflow(reg->guest_phys_addr, reg->memory_size,
				   &end) ||
	    __builtin_add_overflow(reg->userspace_addr, reg->memory_size,
				   &end) ||
	    __builtin_add_overflow(reg->mmap_offset, reg->memory_size, &end))
		return -EINVAL;
	for (size_t i = 0; mem && i < vdk_mem_num_regions(mem); i++) {
		const struct vdk_mem_region *r = vdk_mem_region_at(mem, i);

		if (ranges_overlap(reg->userspace_addr, reg->memory_size,
				   r->user_addr, r->size) ||
		    ranges_overlap(reg->guest_phys_addr, reg->memory_size,
				   r->gpa, r->size))
			return -EEXIST;
	}
	return 0;
}

/* The fd is a regular file (memfd, shm, hugetlbfs) holding the region,
 * sealed against shrinking unless the program allows unsealed memory. */
static int region_fd_check(const struct vdk_vhost_user *vu, int fd,
			   const struct vhost_user_memory_region *reg)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < reg->mmap_offset + reg->memory_size)
		return -EINVAL;
	seals = fcntl(fd, F_GET_SEALS);
	if ((seals < 0 || !(seals & F_SEAL_SHRINK)) && !vu->allow_unsealed) {
		vdk_log(VDK_LOG_ERROR, VU_LOG,
			"guest memory at 0x%llx refused: its file is not "
			"sealed with F_SEAL_SHRINK (a front-end could shrink "
			"it under us); use a sealed memfd (QEMU "
			"memory-backend-memfd) or allow unsealed memory",
			(unsigned long long)reg->guest_phys_addr);
		return -EPERM;
	}
	return 0;
}

int vu_set_mem_table(struct vdk_vhost_user *vu, struct vu_msg *msg,
		     struct vu_reply *reply)
{
	struct vhost_user_memory_region regs[VHOST_MEMORY_BASELINE_NREGIONS];
	uint32_t n = msg->payload.memory.nregions;
	struct vdk_mem *map;
	int ret = 0;

	(void)reply;
	if (n > VHOST_MEMORY_BASELINE_NREGIONS ||
	    msg->hdr.size != 8 + n * sizeof(regs[0]) || msg->nfds != n)
		return -EINVAL;
	memcpy(regs, msg->payload.memory.regions, n * sizeof(regs[0]));

	/* All or nothing: build the new map aside, swap only if complete. */
	map = vdk_mem_new(&ret);
	if (!map)
		return ret;
	for (uint32_t i = 0; i < n; i++) {
		ret = region_check(map, &regs[i]);
		if (ret == 0)
			ret = region_fd_check(vu, msg->fds[i], &regs[i]);
		if (ret == 0)
			ret = vdk_mem_add_fd(map, regs[i].guest_phys_addr,
					     regs[i].memory_size, msg->fds[i],
					     regs[i].mmap_offset,
					     regs[i].userspace_addr);
		if (ret < 0) {
			vdk_mem_free(map); /* closes the fds it took */
			return ret;
		}
		msg->fds[i] = -1; /* owned by the map now */
	}

	uint64_t was = vu_rings_pause(vu);
	vdk_mem_free(vu->mem);
	vu->mem = map;
	vu_rings_resume(vu, was);
	return 0;
}

int vu_get_max_mem_slots(struct vdk_vhost_user *vu, struct vu_msg *msg,
			 struct vu_reply *reply)
{
	(void)vu;
	(void)msg;
	reply->payload.u64 = VDK_MEM_MAX_REGIONS;
	reply->size = sizeof(uint64_t);
	return 0;
}

int vu_add_mem_reg(struct vdk_vhost_user *vu, struct vu_msg *msg,
		   struct vu_reply *reply)
{
	struct vhost_user_memory_region reg = msg->payload.mem_reg.region;
	int ret = 0;

	(void)reply;
	if (!vu->mem) {
		vu->mem = vdk_mem_new(&ret);
		if (!vu->mem)
			return ret;
	}
	/* The very region again: QEMU's vhost-user-net adds the table once
	 * per queue pair on one connection. Nothing changes (its fd is
	 * closed by the dispatcher). */
	for (size_t i = 0; i < vdk_mem_num_regions(vu->mem); i++) {
		const struct vdk_mem_region *r = vdk_mem_region_at(vu->mem, i);

		if (r->gpa == reg.guest_phys_addr &&
		    r->size == reg.memory_size &&
		    r->user_addr == reg.userspace_addr)
			return 0;
	}
	ret = region_check(vu->mem, &reg);
	if (ret == 0)
		ret = region_fd_check(vu, msg->fds[0], &reg);
	if (ret < 0)
		return ret;
	uint64_t was = vu_rings_pause(vu);
	ret = vdk_mem_add_fd(vu->mem, reg.guest_phys_addr, reg.memory_size,
			     msg->fds[0], reg.mmap_offset, reg.userspace_addr);
	if (ret == 0)
		msg->fds[0] = -1;
	vu_rings_resume(vu, was);
	return ret;
}

/* The region is named by guest address, user address and size; the mmap
 * offset is ignored (spec, VHOST_USER_REM_MEM_REG). */
int vu_rem_mem_reg(struct vdk_vhost_user *vu, struct vu_msg *msg,
		   struct vu_reply *reply)
{
	struct vhost_user_memory_region reg = msg->payload.mem_reg.region;
	const struct vdk_mem_region *found = NULL;

	(void)reply;
	for (size_t i = 0; vu->mem && i < vdk_mem_num_regions(vu->mem); i++) {
		const struct vdk_mem_region *r = vdk_mem_region_at(vu->mem, i);

		if (r->gpa == reg.guest_phys_addr &&
		    r->size == reg.memory_size &&
		    r->user_addr == reg.userspace_addr)
			found = r;
	}
	if (!found)
		return -ENOENT;
	uint64_t was = vu_rings_pause(vu);
	int ret = vdk_mem_remove(vu->mem, reg.guest_phys_addr, reg.memory_size);
	vu_rings_resume(vu, was);
	return ret;
}

void vdk_vhost_user_set_allow_unsealed(struct vdk_vhost_user *vu, bool allow)
{
	vu->allow_unsealed = allow;
}
