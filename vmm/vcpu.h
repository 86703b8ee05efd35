/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vCPUs of vdk-vmm: one thread per vCPU running KVM_RUN and dispatching
 * its exits (port I/O and MMIO) to the VMM's buses, and the VM-wide stop
 * request that ends the run (poweroff, reset, triple fault, error).
 *
 * Setup per vCPU (Documentation/virt/kvm/api.rst):
 *  - CPUID: KVM_GET_SUPPORTED_CPUID with this vCPU's APIC ID in leaf 1
 *    EBX[31:24] and leaves 0xb/0x1f EDX, the hypervisor bit in leaf 1
 *    ECX[31] (Intel SDM vol. 2A, CPUID), and one topology for every vCPU:
 *    one package of --cpus cores with one thread each, whatever the host's
 *    is (leaf 1 EBX[23:16] the next power of two, HTT set when more than
 *    one; leaves 0xb/0x1f, where the host has them, an SMT level of 1 and
 *    a core level of --cpus; AMD's leaf 0x80000008 ECX NC = --cpus - 1
 *    and ApicIdCoreIdSize to match), so that Linux sees what the MADT says;
 *  - LAPIC: LINT0 as ExtINT and LINT1 as NMI, as a BIOS leaves them
 *    (Intel MultiProcessor Specification §B.4);
 *  - the boot vCPU (index 0) gets the entry state of struct
 *    vmm_boot_entry: long mode with paging (bzImage) or flat 32-bit
 *    protected mode without paging (PVH), FPU defaults; the others wait in
 *    the in-kernel LAPIC for INIT/SIPI.
 *
 * Exits: KVM_EXIT_IO / KVM_EXIT_MMIO go to the PIO / MMIO bus of the
 * struct vdk_io_manager. An access no device claims is logged
 * (rate-limited) and ignored: a port read returns all ones, an MMIO read
 * zeroes. KVM_EXIT_SHUTDOWN (triple fault), KVM_EXIT_SYSTEM_EVENT,
 * KVM_EXIT_FAIL_ENTRY, KVM_EXIT_INTERNAL_ERROR and unknown exits stop the
 * VM with a reason and message; nothing the guest does crashes the VMM.
 *
 * Stopping: vmm_stop_request() records the first reason and kicks every
 * vCPU out of KVM_RUN (immediate_exit plus a signal, so no kick is lost
 * between the check and the ioctl); the threads then return.
 */
#ifndef VDK_VCPU_H
#define VDK_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/bus.h>
#include <vdk/log.h>

#include "boot_x86_64.h"
#include "kvm.h"

/** Why the VM stopped; the first request wins. */
enum vmm_stop_reason {
	VMM_STOP_NONE,	   /**< still running */
	VMM_STOP_POWEROFF, /**< guest powered off (ACPI S5) */
	VMM_STOP_RESET,	   /**< guest asked for a reboot */
	VMM_STOP_SHUTDOWN, /**< triple fault (KVM_EXIT_SHUTDOWN) */
	VMM_STOP_ERROR,	   /**< VMM or KVM error, or a signal */
	VMM_STOP_TIMEOUT,  /**< vmm_stop_wait_timeout() gave up */
};

/** Most vCPUs vdk-vmm runs (the MADT's xAPIC limit is higher). */
#define VMM_MAX_VCPUS 64u

struct vmm_vcpu;

/** struct vmm_stop - the VM-wide stop request; fields private to vcpu.c. */
struct vmm_stop {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vmm_stop_reason reason; /**< VMM_STOP_NONE while running */
	char msg[192];		     /**< why, for the user */
	struct vmm_vcpu *vcpus;	     /**< to kick; not owned */
	unsigned int num_vcpus;
};

/**
 * vmm_stop_init() - a stop request in the running state.
 * Return: 0 or -errno of pthread_mutex_init/pthread_cond_init.
 */
int vmm_stop_init(struct vmm_stop *s);

/** vmm_stop_fini() - release @s; no vCPU may use it any more. */
void vmm_stop_fini(struct vmm_stop *s);

/**
 * vmm_stop_request() - stop the VM for @reason (not VMM_STOP_NONE) with a
 * printf-formatted message; only the first request is kept. Wakes
 * vmm_stop_wait() and kicks every started vCPU. Safe from any thread
 * (not from a signal handler).
 */
void vmm_stop_request(struct vmm_stop *s, enum vmm_stop_reason reason,
		      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * vmm_stop_wait() - block until a stop is requested.
 * Return: the reason; the message is in @s->msg.
 */
enum vmm_stop_reason vmm_stop_wait(struct vmm_stop *s);

/**
 * vmm_stop_wait_timeout() - vmm_stop_wait() for at most @seconds (0:
 * forever). When they pass with the VM still running, the VM is stopped
 * with VMM_STOP_TIMEOUT and the message "guest still running after N s
 * (--timeout): stopped".
 * Return: the reason the VM stopped.
 */
enum vmm_stop_reason vmm_stop_wait_timeout(struct vmm_stop *s,
					   unsigned int seconds);

/**
 * vmm_vcpu_where() - write "rip 0x... rsp 0x... rflags 0x..." of a vCPU
 * that is not running (its thread joined) into @buf, for the message about
 * a guest that stopped responding or triple-faulted (KVM_GET_REGS), then,
 * as far as KVM gives them, its code segment, control registers, EFER,
 * IDT and GDT (KVM_GET_SREGS), a pending exception or NMI
 * (KVM_GET_VCPU_EVENTS), its multiprocessing state (KVM_GET_MP_STATE),
 * and where its thread was when stopped: "in KVM_RUN for N ms" (since its
 * last exit to vdk-vmm) or "in vdk-vmm for N ms, exit reason R" (handling
 * an exit), N in milliseconds up to now.
 * On AMD, KVM puts a vCPU that triple-faulted through INIT before it
 * reports KVM_EXIT_SHUTDOWN (arch/x86/kvm/svm/svm.c,
 * shutdown_interception()), so that vCPU shows the reset state (rip
 * 0xfff0), not where it faulted; the other vCPUs show where they were.
 * Return: 0, or -errno of KVM_GET_REGS (@buf then says so).
 */
int vmm_vcpu_where(struct vmm_vcpu *v, char *buf, size_t len);

/** vmm_stop_reason() - the current reason (VMM_STOP_NONE while running). */
enum vmm_stop_reason vmm_stop_reason(struct vmm_stop *s);

/** struct vmm_vcpu - one vCPU; fields private to vcpu.c. */
struct vmm_vcpu {
	unsigned int index;  /**< 0 = boot vCPU; also the APIC ID */
	int fd;		     /**< KVM vCPU fd, or -1 */
	struct kvm_run *run; /**< mmap'd shared run area */
	size_t run_size;     /**< bytes mapped at @run */
	pthread_t thread;
	bool started;		   /**< @thread is running */
	struct vmm_kvm *kvm;	   /**< not owned */
	struct vdk_io_manager *io; /**< not owned */
	struct vmm_stop *stop;	   /**< not owned */
	struct vdk_ratelimit rl;   /**< for guest-triggered messages */
	uint64_t exits;		   /**< exits handled */
	/* CLOCK_MONOTONIC ns when @thread last entered KVM_RUN, and when
	 * KVM_RUN last returned an exit (a kick's EINTR is not one): which
	 * is later tells, after the thread stops, where it had been. */
	int64_t run_enter_ns, run_exit_ns;
	const char *failed; /**< the call vmm_vcpu_create() failed in */
};

/**
 * vmm_vcpu_create() - create vCPU @index of @num_vcpus (KVM_CREATE_VCPU),
 * map its run area, set its CPUID and LAPIC.
 * @v: caller's storage. @kvm, @io, @stop: not owned; outlive @v.
 * Return: 0; -EINVAL if @index >= @num_vcpus or @num_vcpus is 0 or above
 * VMM_MAX_VCPUS or KVM's limit; -errno of the failing ioctl or mmap, whose
 * name is left in @v->failed for the caller's one message (nothing is
 * logged here). On failure @v is left destroyed.
 */
int vmm_vcpu_create(struct vmm_vcpu *v, struct vmm_kvm *kvm, unsigned int index,
		    unsigned int num_vcpus, struct vdk_io_manager *io,
		    struct vmm_stop *stop);

/**
 * vmm_vcpu_set_boot_state() - load the boot vCPU's registers from @e:
 * segments from the GDT at VMM_BOOT_GDT_GPA, CR0/CR3/CR4/EFER for the
 * entry mode, RIP/RSP/RSI/RBX, RFLAGS = 0x2, FPU FCW 0x37f and MXCSR
 * 0x1f80. Linux boot.rst "64-bit Boot Protocol"; Xen pvh.rst.
 * Return: 0 or -errno of KVM_SET_SREGS/KVM_SET_REGS/KVM_SET_FPU.
 */
int vmm_vcpu_set_boot_state(struct vmm_vcpu *v, const struct vmm_boot_entry *e);

/**
 * vmm_vcpu_start() - start @v's thread (KVM_RUN loop). Signals that kick
 * vCPUs must be unblocked in the calling thread's mask or they are in the
 * new thread's (the thread unblocks its kick signal itself).
 * Return: 0 or -errno of pthread_create.
 */
int vmm_vcpu_start(struct vmm_vcpu *v);

/** vmm_vcpu_kick() - make @v leave KVM_RUN soon (immediate_exit and a
 * signal). Safe from any thread. */
void vmm_vcpu_kick(struct vmm_vcpu *v);

/** vmm_vcpu_join() - wait for @v's thread (after a stop request). */
void vmm_vcpu_join(struct vmm_vcpu *v);

/** vmm_vcpu_destroy() - unmap the run area and close the fd (after
 * vmm_vcpu_join()). Safe on a partly created @v. */
void vmm_vcpu_destroy(struct vmm_vcpu *v);

/**
 * vmm_vcpu_setup_cpuid() - rewrite @entries (@n of them, from
 * KVM_GET_SUPPORTED_CPUID) for vCPU @apic_id of @num_vcpus as described
 * above. Pure; exposed for tests.
 */
void vmm_vcpu_setup_cpuid(struct kvm_cpuid_entry2 *entries, size_t n,
			  unsigned int apic_id, unsigned int num_vcpus);

#endif /* VDK_VCPU_H */
