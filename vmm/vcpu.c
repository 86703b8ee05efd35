/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vCPU threads and their exits (see vcpu.h).
 *
 * Everything in the run area after an exit was put there by KVM on behalf
 * of the guest: the port, address, size and count are checked against the
 * run area and the bus before use, and an access nobody claims is answered
 * (all ones / zeroes) rather than failed.
 */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MOD "vcpu"

/* Control register and EFER bits (Intel SDM vol. 3 §2.5, §2.2.1). */
#define CR0_PE	  0x1ull
#define CR0_ET	  0x10ull
#define CR0_PG	  0x80000000ull
#define CR4_PAE	  0x20ull
#define EFER_LME  0x100ull
#define EFER_LMA  0x400ull
#define RFLAGS_RS 0x2ull /* bit 1 always reads as 1 */

/* CPUID bits (Intel SDM vol. 2A, Table 3-8/3-10). */
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT	       (1u << 28)
/* Leaf 0xb/0x1f ECX[15:8]: level type (0: invalid, 1: SMT, 2: core). */
#define CPUID_TOPO_TYPE_MASK 0xff00u
#define CPUID_TOPO_TYPE_SMT  1u
#define CPUID_TOPO_TYPE_CORE 2u

/* Local APIC registers and LVT delivery modes (Intel SDM vol. 3 §10.5.1). */
#define APIC_LVT0	 0x350
#define APIC_LVT1	 0x360
#define APIC_MODE_MASK	 0x700u
#define APIC_MODE_EXTINT 0x700u
#define APIC_MODE_NMI	 0x400u

/* ---- stop request ------------------------------------------------------ */

int vmm_stop_init(struct vmm_stop *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	r = pthread_mutex_init(&s->lock, NULL);
	if (r)
		return -r;
	r = pthread_cond_init(&s->cond, NULL);
	if (r) {
		pthread_mutex_destroy(&s->lock);
		return -r;
	}
	return 0;
}

void vmm_stop_fini(struct vmm_stop *s)
{
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

void vmm_stop_request(struct vmm_stop *s, enum vmm_stop_reason reason,
		      const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->lock);
	if (s->reason == VMM_STOP_NONE && reason != VMM_STOP_NONE) {
		s->reason = reason;
		va_start(ap, fmt);
		vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
		va_end(ap);
		pthread_cond_broadcast(&s->cond);
	}
	/* Kick under the lock: vmm_vcpu_start() sets "started" under it. */
	for (unsigned int i = 0; i < s->num_vcpus; i++)
		vmm_vcpu_kick(&s->vcpus[i]);
	pthread_mutex_unlock(&s->lock);
}

enum vmm_stop_reason vmm_stop_wait(struct vmm_stop *s)
{
	enum vmm_stop_reason r;

	pthread_mutex_lock(&s->lock);
	while (s->reason == VMM_STOP_NONE)
		pthread_cond_wait(&s->cond, &s->lock);
	r = s->reason;
	pthread_mutex_unlock(&s->lock);
	return r;
}

enum vmm_stop_reason vmm_stop_wait_timeout(struct vmm_stop *s,
					   unsigned int seconds)
{
	struct timespec deadline;
	int r = 0;

	if (seconds == 0)
		return vmm_stop_wait(s);
	/* The condition variable waits on CLOCK_REALTIME (its default). */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += seconds;
	pthread_mutex_lock(&s->lock);
	while (s->reason == VMM_STOP_NONE && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
	pthread_mutex_unlock(&s->lock);
	/* First request wins: a stop that raced with the deadline stays. */
	vmm_stop_request(s, VMM_STOP_TIMEOUT,
			 "guest still running after %u s (--timeout): stopped",
			 seconds);
	return vmm_stop_wait(s);
}

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int vmm_vcpu_where(struct vmm_vcpu *v, char *buf, size_t len)
{
	static const char *const mp_states[] = {
		"runnable",	 "uninitialized", "init-received", "halted",
		"sipi-received", "stopped",	  "check-stop",	   "operating",
		"load",		 "ap-reset-hold", "suspended",
	};
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int n;

	if (v->fd < 0 || ioctl(v->fd, KVM_GET_REGS, &regs) < 0) {
		int err = v->fd < 0 ? -EBADF : -errno;

		snprintf(buf, len, "registers unknown (%s)", strerror(-err));
		return err;
	}
	n = snprintf(buf, len, "rip %#llx rsp %#llx rflags %#llx",
		     (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
		     (unsigned long long)regs.rflags);
	/* The rest is best effort: what the mode and state were. */
	if (n > 0 && (size_t)n < len &&
	    ioctl(v->fd, KVM_GET_SREGS, &sregs) == 0)
		n += snprintf(
			buf + n, len - (size_t)n,
			" cs %#x base %#llx cr0 %#llx cr2 %#llx cr3 "
			"%#llx cr4 %#llx efer %#llx idt %#llx/%#x gdt "
			"%#llx/%#x",
			sregs.cs.selector, (unsigned long long)sregs.cs.base,
			(unsigned long long)sregs.cr0,
			(unsigned long long)sregs.cr2,
			(unsigned long long)sregs.cr3,
			(unsigned long long)sregs.cr4,
			(unsigned long long)sregs.efer,
			(unsigned long long)sregs.idt.base, sregs.idt.limit,
			(unsigned long long)sregs.gdt.base, sregs.gdt.limit);
	if (n > 0 && (size_t)n < len &&
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0)
		n += snprintf(
			buf + n, len - (size_t)n, " exception %s%u%s nmi %s",
			ev.exception.injected || ev.exception.pending ? ""
								      : "none/",
			ev.exception.nr,
			ev.exception.has_error_code ? " (error code)" : "",
			ev.nmi.injected || ev.nmi.pending ? "pending" : "none");
	if (n > 0 && (size_t)n < len &&
	    ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0)
		n += snprintf(buf + n, len - (size_t)n, " mp-state %s",
			      mp.mp_state < sizeof(mp_states) /
						      sizeof(mp_states[0])
				      ? mp_states[mp.mp_state]
				      : "unknown");
	if (n > 0 && (size_t)n < len && v->run_enter_ns) {
		int64_t now = monotonic_ns();

		if (v->run_enter_ns > v->run_exit_ns)
			snprintf(buf + n, len - (size_t)n,
				 " in KVM_RUN for %lld ms",
				 (long long)(now - v->run_enter_ns) / 1000000);
		else
			snprintf(buf + n, len - (size_t)n,
				 " in vdk-vmm for %lld ms, exit reason %u",
				 (long long)(now - v->run_exit_ns) / 1000000,
				 v->run->exit_reason);
	}
	return 0;
}

enum vmm_stop_reason vmm_stop_reason(struct vmm_stop *s)
{
	enum vmm_stop_reason r;

	pthread_mutex_lock(&s->lock);
	r = s->reason;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- setup -------------------------------------------------------------- */

/* Bits needed for @v distinct IDs: the smallest n with 2^n >= v. */
static unsigned int id_bits(unsigned int v)
{
	unsigned int n = 0;

	while (n < 31 && (1u << n) < v)
		n++;
	return n;
}

/* Does leaf @function sub-leaf 0 in @entries describe a topology level? */
static bool has_topology_leaf(const struct kvm_cpuid_entry2 *entries, size_t n,
			      uint32_t function)
{
	for (size_t i = 0; i < n; i++)
		if (entries[i].function == function && entries[i].index == 0)
			return (entries[i].ecx & CPUID_TOPO_TYPE_MASK) != 0;
	return false;
}

/* Leaf 0xb/0x1f sub-leaf @e->index of one package of @num_vcpus cores
 * with one thread each (Intel SDM vol. 2A, CPUID leaf 0BH). */
static void set_topology_leaf(struct kvm_cpuid_entry2 *e,
			      unsigned int num_vcpus)
{
	switch (e->index) {
	case 0: /* SMT: one thread per core */
		e->eax = 0;
		e->ebx = 1;
		e->ecx = CPUID_TOPO_TYPE_SMT << 8;
		break;
	case 1: /* core: every vCPU of the VM */
		e->eax = id_bits(num_vcpus);
		e->ebx = num_vcpus;
		e->ecx = 1 | CPUID_TOPO_TYPE_CORE << 8;
		break;
	default: /* no more levels */
		e->eax = e->ebx = 0;
		e->ecx = e->index & 0xffu;
		break;
	}
}

void vmm_vcpu_setup_cpuid(struct kvm_cpuid_entry2 *entries, size_t n,
			  unsigned int apic_id, unsigned int num_vcpus)
{
	bool topo_b = has_topology_leaf(entries, n, 0xb);
	bool topo_1f = has_topology_leaf(entries, n, 0x1f);

	for (size_t i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &entries[i];

		switch (e->function) {
		case 1:
			/* Addressable IDs per package: a power of two. */
			e->ebx = (e->ebx & 0x0000ffffu) |
				 (apic_id & 0xffu) << 24 |
				 ((1u << id_bits(num_vcpus)) & 0xffu) << 16;
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (num_vcpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 0xb:
		case 0x1f:
			/* The host's levels (its threads per core, cores
			 * per package) do not describe this VM. */
			if (e->function == 0xb ? topo_b : topo_1f)
				set_topology_leaf(e, num_vcpus);
			e->edx = apic_id; /* x2APIC ID, every sub-leaf */
			break;
		case 0x80000008:
			/* AMD: NC (cores - 1) and ApicIdCoreIdSize, one
			 * package of num_vcpus cores (AMD APM vol. 3,
			 * CPUID Fn8000_0008_ECX). Reserved on Intel. */
			e->ecx = (e->ecx & ~0xf0ffu) |
				 id_bits(num_vcpus) << 12 |
				 ((num_vcpus - 1) & 0xffu);
			break;
		default:
			break;
		}
	}
}

/* Set LINT0 to ExtINT and LINT1 to NMI in the in-kernel LAPIC. */
static int setup_lapic(struct vmm_vcpu *v)
{
	struct kvm_lapic_state la;
	uint32_t lvt;

	if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
		return -errno;
	memcpy(&lvt, &la.regs[APIC_LVT0], sizeof(lvt));
	lvt = (lvt & ~APIC_MODE_MASK) | APIC_MODE_EXTINT;
	memcpy(&la.regs[APIC_LVT0], &lvt, sizeof(lvt));
	memcpy(&lvt, &la.regs[APIC_LVT1], sizeof(lvt));
	lvt = (lvt & ~APIC_MODE_MASK) | APIC_MODE_NMI;
	memcpy(&la.regs[APIC_LVT1], &lvt, sizeof(lvt));
	return ioctl(v->fd, KVM_SET_LAPIC, &la) < 0 ? -errno : 0;
}

static int vcpu_fail(struct vmm_vcpu *v, int err, const char *what)
{
	vmm_vcpu_destroy(v);
	v->failed = what;
	return err;
}

int vmm_vcpu_create(struct vmm_vcpu *v, struct vmm_kvm *kvm, unsigned int index,
		    unsigned int num_vcpus, struct vdk_io_manager *io,
		    struct vmm_stop *stop)
{
	struct kvm_cpuid2 *cpuid;
	size_t cpuid_size;
	void *run;
	int r;

	memset(v, 0, sizeof(*v));
	v->fd = -1;
	v->index = index;
	v->kvm = kvm;
	v->io = io;
	v->stop = stop;
	v->rl = (struct vdk_ratelimit)VDK_RATELIMIT_INIT;
	if (!num_vcpus || index >= num_vcpus || num_vcpus > VMM_MAX_VCPUS ||
	    num_vcpus > kvm->max_vcpus)
		return -EINVAL;

	v->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0)
		return vcpu_fail(v, -errno, "KVM_CREATE_VCPU");
	run = mmap(NULL, kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   v->fd, 0);
	if (run == MAP_FAILED)
		return vcpu_fail(v, -errno, "mmap of kvm_run");
	v->run = run;
	v->run_size = kvm->run_size;

	/* A private copy of the supported CPUID, adjusted for this vCPU. */
	cpuid_size = sizeof(*cpuid) +
		     kvm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
	cpuid = malloc(cpuid_size);
	if (!cpuid)
		return vcpu_fail(v, -ENOMEM, "CPUID table");
	memcpy(cpuid, kvm->cpuid, cpuid_size);
	vmm_vcpu_setup_cpuid(cpuid->entries, cpuid->nent, index, num_vcpus);
	r = ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
	free(cpuid);
	if (r < 0)
		return vcpu_fail(v, r, "KVM_SET_CPUID2");
	r = setup_lapic(v);
	if (r < 0)
		return vcpu_fail(v, r, "KVM_GET/SET_LAPIC");
	return 0;
}

/* Decode GDT descriptor @d (Intel SDM vol. 3 §3.4.5) for selector @sel. */
static struct kvm_segment segment_from_gdt(uint64_t d, uint16_t sel)
{
	struct kvm_segment s = {
		.base = ((d >> 16) & 0xffffffu) | ((d >> 56) & 0xffu) << 24,
		.limit = (uint32_t)((d & 0xffffu) | ((d >> 48) & 0xfu) << 16),
		.selector = sel,
		.type = (d >> 40) & 0xf,
		.present = (d >> 47) & 1,
		.dpl = (d >> 45) & 3,
		.db = (d >> 54) & 1,
		.s = (d >> 44) & 1,
		.l = (d >> 53) & 1,
		.g = (d >> 55) & 1,
		.avl = (d >> 52) & 1,
	};

	if (s.g)
		s.limit = s.limit << 12 | 0xfffu;
	s.unusable = !s.present;
	return s;
}

int vmm_vcpu_set_boot_state(struct vmm_vcpu *v, const struct vmm_boot_entry *e)
{
	struct kvm_segment data;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.gdt.base = VMM_BOOT_GDT_GPA;
	sregs.gdt.limit = VMM_BOOT_GDT_ENTRIES * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = segment_from_gdt(vmm_boot_gdt_entry(e->cs / 8), e->cs);
	data = segment_from_gdt(vmm_boot_gdt_entry(e->ds / 8), e->ds);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = segment_from_gdt(vmm_boot_gdt_entry(e->tr / 8), e->tr);
	sregs.cr0 = CR0_PE | CR0_ET;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (e->long_mode) {
		sregs.cr3 = e->cr3;
		sregs.cr4 |= CR4_PAE;
		sregs.cr0 |= CR0_PG;
		sregs.efer |= EFER_LME | EFER_LMA;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = RFLAGS_RS;
	regs.rip = e->rip;
	regs.rsp = regs.rbp = e->rsp;
	regs.rsi = e->rsi;
	regs.rbx = e->rbx;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;    /* x87 default control word (FNINIT) */
	fpu.mxcsr = 0x1f80; /* SSE default: all exceptions masked */
	return ioctl(v->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

/* ---- exits --------------------------------------------------------------- */

static void handle_io(struct vmm_vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset, total, end;
	bool in = run->io.direction == KVM_EXIT_IO_IN;
	uint16_t port = run->io.port;
	uint8_t *data;

	/* KVM puts count accesses of size bytes at data_offset; check that
	 * they lie inside the run area before touching them. */
	if ((size != 1 && size != 2 && size != 4) ||
	    __builtin_mul_overflow(size, count, &total) ||
	    __builtin_add_overflow(off, total, &end) || end > v->run_size) {
		VDK_LOG_RL(&v->rl, VDK_LOG_WARN, MOD,
			   "vCPU %u: malformed port I/O exit (port %#x, size "
			   "%llu, count %llu) ignored",
			   v->index, port, (unsigned long long)size,
			   (unsigned long long)count);
		return;
	}
	data = (uint8_t *)run + off;
	for (uint64_t i = 0; i < count; i++, data += size) {
		int r = in ? vdk_bus_read(v->io->pio, port, data, size)
			   : vdk_bus_write(v->io->pio, port, data, size);

		if (r < 0) {
			if (in)
				memset(data, 0xff, size);
			VDK_LOG_RL(&v->rl, VDK_LOG_DEBUG, MOD,
				   "vCPU %u: %s of %llu bytes at unclaimed "
				   "port %#x %s",
				   v->index, in ? "read" : "write",
				   (unsigned long long)size, port,
				   in ? "returns all ones" : "ignored");
		}
	}
}

static void handle_mmio(struct vmm_vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t addr = run->mmio.phys_addr;
	uint32_t len = run->mmio.len;
	bool write = run->mmio.is_write;
	int r;

	if (len == 0 || len > sizeof(run->mmio.data)) {
		VDK_LOG_RL(&v->rl, VDK_LOG_WARN, MOD,
			   "vCPU %u: MMIO exit of %u bytes at %#llx ignored",
			   v->index, len, (unsigned long long)addr);
		return;
	}
	r = write ? vdk_bus_write(v->io->mmio, addr, run->mmio.data, len)
		  : vdk_bus_read(v->io->mmio, addr, run->mmio.data, len);
	if (r < 0) {
		if (!write)
			memset(run->mmio.data, 0, len);
		VDK_LOG_RL(&v->rl, VDK_LOG_WARN, MOD,
			   "vCPU %u: %s of %u bytes at unclaimed MMIO address "
			   "%#llx %s",
			   v->index, write ? "write" : "read", len,
			   (unsigned long long)addr,
			   write ? "ignored" : "returns zeroes");
	}
}

static void handle_system_event(struct vmm_vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vmm_stop_request(v->stop, VMM_STOP_POWEROFF,
				 "guest powered off (system event)");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vmm_stop_request(v->stop, VMM_STOP_RESET,
				 "guest requested a reset (system event)");
		break;
	default:
		vmm_stop_request(v->stop, VMM_STOP_ERROR,
				 "vCPU %u: system event %u (guest crash?)",
				 v->index, v->run->system_event.type);
		break;
	}
}

/* Handle one exit. Return: false when the vCPU must stop. */
static bool handle_exit(struct vmm_vcpu *v)
{
	struct kvm_run *run = v->run;

	v->exits++;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* The in-kernel LAPIC handles HLT; this exit means a halt
		 * nothing can wake. */
		vmm_stop_request(v->stop, VMM_STOP_ERROR,
				 "vCPU %u halted with nothing to wake it",
				 v->index);
		return false;
	case KVM_EXIT_SHUTDOWN:
		vmm_stop_request(v->stop, VMM_STOP_SHUTDOWN,
				 "vCPU %u: triple fault (KVM_EXIT_SHUTDOWN)",
				 v->index);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(v);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vmm_stop_request(
			v->stop, VMM_STOP_ERROR,
			"vCPU %u: VM entry failed (hardware reason %#llx)",
			v->index,
			(unsigned long long)
				run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vmm_stop_request(v->stop, VMM_STOP_ERROR,
				 "vCPU %u: KVM internal error, suberror %u",
				 v->index, run->internal.suberror);
		return false;
	default:
		vmm_stop_request(v->stop, VMM_STOP_ERROR,
				 "vCPU %u: unhandled KVM exit reason %u",
				 v->index, run->exit_reason);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vmm_vcpu *v = arg;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, SIGRTMIN);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	while (vmm_stop_reason(v->stop) == VMM_STOP_NONE) {
		v->run_enter_ns = monotonic_ns();
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			int err = errno;

			if (err == EINTR || err == EAGAIN) {
				/* Kicked: clear the request and re-check. */
				__atomic_store_n(&v->run->immediate_exit, 0,
						 __ATOMIC_RELAXED);
				continue;
			}
			vmm_stop_request(v->stop, VMM_STOP_ERROR,
					 "vCPU %u: KVM_RUN: %s", v->index,
					 strerror(err));
			break;
		}
		v->run_exit_ns = monotonic_ns();
		if (!handle_exit(v))
			break;
	}
	return NULL;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

static void install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN gets EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN, &sa, NULL);
}

int vmm_vcpu_start(struct vmm_vcpu *v)
{
	int r;

	pthread_once(&kick_once, install_kick_handler);
	pthread_mutex_lock(&v->stop->lock);
	r = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (r == 0)
		v->started = true;
	pthread_mutex_unlock(&v->stop->lock);
	return -r;
}

void vmm_vcpu_kick(struct vmm_vcpu *v)
{
	if (!v->run || !v->started)
		return;
	/* Before the signal: a thread about to enter KVM_RUN returns at once
	 * instead of sleeping through a signal it already took. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELAXED);
	pthread_kill(v->thread, SIGRTMIN);
}

void vmm_vcpu_join(struct vmm_vcpu *v)
{
	bool started;

	/* Stop kicks first (they test "started" under the lock), so no signal
	 * is sent to a thread that has been joined. */
	pthread_mutex_lock(&v->stop->lock);
	started = v->started;
	v->started = false;
	pthread_mutex_unlock(&v->stop->lock);
	if (started)
		pthread_join(v->thread, NULL);
}

void vmm_vcpu_destroy(struct vmm_vcpu *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	v->run = NULL;
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
}
