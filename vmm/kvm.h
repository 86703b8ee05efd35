/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KVM virtual machine of vdk-vmm (x86_64): /dev/kvm, one VM with the
 * in-kernel irqchip (PIC, IO-APIC, local APICs) and PIT, guest memory
 * slots taken from a struct vdk_mem, and the eventfd plumbing devices use
 * (ioeventfd for queue notifications, irqfd for interrupts).
 *
 * Linux Documentation/virt/kvm/api.rst is the reference for every ioctl
 * named here.
 *
 * vmm_kvm_open() checks every capability the VMM needs before it creates
 * anything, and names the missing one, so that a host that lacks one
 * (some nested or paravirtual setups) fails with a clear message instead
 * of a guest that hangs.
 *
 * Threading: the ioctls used after setup (irq line, irqfd, ioeventfd) are
 * thread-safe in the kernel; struct vmm_kvm itself is written only by
 * vmm_kvm_open(), vmm_kvm_add_memory() and vmm_kvm_close().
 */
#ifndef VDK_KVM_H
#define VDK_KVM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/kvm.h>

#include <vdk/mem.h>

/** Guest-physical addresses KVM needs for itself on Intel (a 3-page TSS
 * and the identity page table of real mode), just below the 4 GiB BIOS
 * area as Firecracker places them. */
#define VMM_KVM_TSS_GPA		 0xfffbd000ull
#define VMM_KVM_IDENTITY_MAP_GPA 0xfffbc000ull

/** Most CPUID entries fetched with KVM_GET_SUPPORTED_CPUID. */
#define VMM_KVM_MAX_CPUID_ENTRIES 256u

/** GSIs of the in-kernel IO-APIC (0..23; 0..15 also on the PIC pair). */
#define VMM_KVM_IRQCHIP_GSIS 24u
/** MSI routes vmm_kvm_msi_route_*() hands out: GSIs 24 .. 24 + this - 1. */
#define VMM_KVM_MSI_ROUTES 256u

/** One MSI route (KVM_IRQ_ROUTING_MSI) of the GSI routing table. */
struct vmm_kvm_msi_route {
	uint64_t addr;
	uint32_t data;
	bool used; /**< allocated */
	bool set;  /**< in the table (addr/data valid) */
};

/** struct vmm_kvm - the KVM system and VM file descriptors. */
struct vmm_kvm {
	int kvm_fd;		/**< /dev/kvm, or -1 */
	int vm_fd;		/**< the VM, or -1 */
	size_t run_size;	/**< bytes to mmap per vCPU (struct kvm_run) */
	unsigned int slots;	/**< memory slots used */
	unsigned int max_vcpus; /**< KVM_CAP_MAX_VCPUS */
	/** KVM_GET_SUPPORTED_CPUID (malloc'd; nent entries). */
	struct kvm_cpuid2 *cpuid;
	/** The MSI part of the GSI routing table (KVM_SET_GSI_ROUTING). */
	pthread_mutex_t routes_lock;
	bool routes_lock_init;
	struct vmm_kvm_msi_route msi[VMM_KVM_MSI_ROUTES];
	/** Why the last failing call failed; "" if none. */
	char errmsg[160];
};

/**
 * vmm_kvm_open() - open @path (normally "/dev/kvm"), check the API version
 * (12) and the capabilities KVM_CAP_USER_MEMORY, KVM_CAP_IRQCHIP,
 * KVM_CAP_PIT2, KVM_CAP_IRQFD, KVM_CAP_IOEVENTFD, KVM_CAP_EXT_CPUID,
 * KVM_CAP_SET_TSS_ADDR and KVM_CAP_IMMEDIATE_EXIT; create the VM, set the
 * TSS and identity map addresses, create the in-kernel irqchip
 * (KVM_CREATE_IRQCHIP) and the PIT (KVM_CREATE_PIT2, speaker port dummy),
 * and fetch the supported CPUID (with the TSC-deadline timer bit added
 * where KVM_CAP_TSC_DEADLINE_TIMER says the in-kernel LAPIC has it).
 * @k: caller's storage; on failure it is left closed (vmm_kvm_close() is
 *     still safe) with @k->errmsg saying what failed.
 * Return: 0; -errno of open() (-ENOENT: no /dev/kvm; -EACCES); -EPROTO for
 * another API version; -ENOTSUP for a missing capability; -errno of the
 * failing ioctl; -ENOMEM.
 */
int vmm_kvm_open(struct vmm_kvm *k, const char *path);

/** vmm_kvm_close() - close the VM and /dev/kvm, free the CPUID table.
 * vCPUs must be closed first. Safe on a closed or failed @k. */
void vmm_kvm_close(struct vmm_kvm *k);

/**
 * vmm_kvm_add_memory() - register every region of @mem as a memory slot
 * (KVM_SET_USER_MEMORY_REGION: guest_phys_addr = region gpa, memory_size
 * = region size, userspace_addr = region hva). Call once, before vCPUs run.
 * Return: 0; -EINVAL if a region is not page-aligned; -errno of the ioctl
 * (@k->errmsg says which region).
 */
int vmm_kvm_add_memory(struct vmm_kvm *k, const struct vdk_mem *mem);

/**
 * vmm_kvm_irq_line() - set the level of input @gsi of the in-kernel
 * PIC/IO-APIC (KVM_IRQ_LINE). An edge-triggered ISA line (COM1's IRQ 4)
 * is raised with true and lowered with false.
 * Return: 0 or -errno.
 */
int vmm_kvm_irq_line(struct vmm_kvm *k, uint32_t gsi, bool level);

/**
 * vmm_kvm_irqfd() - (de)assign eventfd @fd to @gsi (KVM_IRQFD): each write
 * to @fd then injects an edge on @gsi inside the kernel, from any thread.
 * @fd is not owned; deassign before closing it.
 * Return: 0 or -errno.
 */
int vmm_kvm_irqfd(struct vmm_kvm *k, int fd, uint32_t gsi, bool assign);

/**
 * vmm_kvm_ioeventfd() - (de)assign eventfd @fd to guest writes of @len
 * bytes (1, 2, 4 or 8) at guest-physical MMIO address @addr whose value is
 * @data (KVM_IOEVENTFD with KVM_IOEVENTFD_FLAG_DATAMATCH): such a write
 * then signals @fd without a VM exit to userspace; other writes at @addr
 * still exit. @fd is not owned; deassign before closing it.
 * Return: 0 or -errno (-EEXIST if already assigned).
 */
int vmm_kvm_ioeventfd(struct vmm_kvm *k, int fd, uint64_t addr, uint32_t len,
		      uint64_t data, bool assign);

/**
 * vmm_kvm_signal_msi() - inject the MSI message @data at @addr (KVM_SIGNAL_MSI,
 * needs the in-kernel irqchip), from any thread.
 * Return: 0 delivered; 1 the guest blocked it; -errno.
 */
int vmm_kvm_signal_msi(struct vmm_kvm *k, uint64_t addr, uint32_t data);

/**
 * vmm_kvm_msi_route_alloc() - reserve a GSI for an MSI route (no route is
 * installed until vmm_kvm_msi_route_set()). Any thread.
 * Return: the GSI (VMM_KVM_IRQCHIP_GSIS or above); -ENOSPC all
 * VMM_KVM_MSI_ROUTES are taken.
 */
int vmm_kvm_msi_route_alloc(struct vmm_kvm *k);

/**
 * vmm_kvm_msi_route_set() - route @gsi (from vmm_kvm_msi_route_alloc()) to
 * the MSI message @data at @addr, or remove its route (@set false): the
 * whole table is rewritten with KVM_SET_GSI_ROUTING, keeping KVM's default
 * IO-APIC/PIC routes of GSIs 0..23. An irqfd on @gsi then injects that
 * message. Nothing is done when the route is already so. Any thread.
 * Return: 0; -EINVAL @gsi not an allocated MSI GSI; -ENOMEM; -errno of the
 * ioctl (the route is then left as it was).
 */
int vmm_kvm_msi_route_set(struct vmm_kvm *k, uint32_t gsi, uint64_t addr,
			  uint32_t data, bool set);

/**
 * vmm_kvm_msi_route_free() - remove @gsi's route and give the GSI back.
 * Deassign its irqfds first. Any thread; an unknown @gsi is ignored.
 */
void vmm_kvm_msi_route_free(struct vmm_kvm *k, uint32_t gsi);

/**
 * vmm_kvm_stats_print() - print the non-zero cumulative counters of a VM or
 * vCPU as "@who: name value, name value, ..." lines on @out, from the KVM
 * binary statistics of @fd (KVM_GET_STATS_FD on a VM or vCPU fd; KVM API
 * section 4.133): exits by cause (io_exits, mmio_exits, halt_exits,
 * irq_exits, ...), page faults handled in the kernel (pf_taken, pf_fixed),
 * and so on. Diagnostics for VDK_VMM_STATS; nothing is kept.
 * @fd:  a VM or vCPU fd (not owned).
 * @who: the line prefix ("vCPU 0", "VM").
 * Return: 0; -errno of the ioctl (-ENOTTY/-EINVAL: a kernel before 5.14) or
 * of pread; -EPROTO for a stats file that does not parse; -ENOMEM.
 */
int vmm_kvm_stats_print(int fd, const char *who, FILE *out);

#endif /* VDK_KVM_H */
