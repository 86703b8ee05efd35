/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KVM VM (see kvm.h): capability checks, VM and irqchip creation,
 * memory slots, irq lines, irqfd and ioeventfd.
 */
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* CPUID.1:ECX bit 24, TSC-deadline timer (Intel SDM vol. 2A, Table 3-10). */
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)

/* Capabilities vdk-vmm cannot run without, with what each is for. */
static const struct {
	int cap;
	const char *name;
	const char *why;
} required_caps[] = {
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM"},
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC/IO-APIC/LAPIC"},
	{KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT timer"},
	{KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "virtio device interrupts"},
	{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "virtio queue notifications"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "KVM_GET_SUPPORTED_CPUID"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 TSS area"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs"},
};

static int fail(struct vmm_kvm *k, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record in @k->errmsg why a call failed; return @err. */
static int fail(struct vmm_kvm *k, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->errmsg, sizeof(k->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

int vmm_kvm_open(struct vmm_kvm *k, const char *path)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	uint64_t identity = VMM_KVM_IDENTITY_MAP_GPA;
	int r, err;

	memset(k, 0, sizeof(*k));
	k->kvm_fd = k->vm_fd = -1;
	k->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		err = -errno;
		return fail(k, err, "cannot open %s: %s%s", path,
			    strerror(-err),
			    err == -ENOENT ? " (no KVM on this host; load "
					     "kvm_intel or kvm_amd)"
					   : "");
	}
	r = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		err = fail(k, -EPROTO, "%s: KVM API version %d, need %d", path,
			   r, KVM_API_VERSION);
		goto out_close;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]);
	     i++) {
		if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
			  required_caps[i].cap) <= 0) {
			err = fail(k, -ENOTSUP, "KVM lacks %s (needed for %s)",
				   required_caps[i].name, required_caps[i].why);
			goto out_close;
		}
	}
	r = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (r <= 0)
		r = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	k->max_vcpus = r > 0 ? (unsigned int)r : 1;
	r = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run)) {
		err = fail(k, r < 0 ? -errno : -EPROTO,
			   "KVM_GET_VCPU_MMAP_SIZE failed");
		goto out_close;
	}
	k->run_size = (size_t)r;

	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		err = -errno;
		fail(k, err, "KVM_CREATE_VM: %s", strerror(-err));
		goto out_close;
	}
	/* Intel VMX needs these two areas for real mode; harmless elsewhere. */
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VMM_KVM_TSS_GPA) <
	    0) {
		err = -errno;
		fail(k, err, "KVM_SET_TSS_ADDR: %s", strerror(-err));
		goto out_close;
	}
	if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
		  KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
	    ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
		err = -errno;
		fail(k, err, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(-err));
		goto out_close;
	}
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		err = -errno;
		fail(k, err, "KVM_CREATE_IRQCHIP: %s", strerror(-err));
		goto out_close;
	}
	if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		err = -errno;
		fail(k, err, "KVM_CREATE_PIT2: %s", strerror(-err));
		goto out_close;
	}

	k->cpuid = calloc(1, sizeof(*k->cpuid) +
				     VMM_KVM_MAX_CPUID_ENTRIES *
					     sizeof(struct kvm_cpuid_entry2));
	if (!k->cpuid) {
		err = fail(k, -ENOMEM, "out of memory");
		goto out_close;
	}
	k->cpuid->nent = VMM_KVM_MAX_CPUID_ENTRIES;
	if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, k->cpuid) < 0) {
		err = -errno;
		fail(k, err, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-err));
		goto out_close;
	}
	/* The in-kernel LAPIC's TSC-deadline mode is not in the supported
	 * CPUID; userspace offers it when KVM has it (api.rst,
	 * KVM_GET_SUPPORTED_CPUID), as QEMU does. Linux then arms its timer
	 * with one MSR write and skips the LAPIC timer calibration against
	 * the PIT (100 ms of timer interrupts at boot). */
	if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) >
	    0)
		for (uint32_t i = 0; i < k->cpuid->nent; i++)
			if (k->cpuid->entries[i].function == 1)
				k->cpuid->entries[i].ecx |=
					CPUID_1_ECX_TSC_DEADLINE;
	k->errmsg[0] = '\0';
	return 0;

out_close:
	vmm_kvm_close(k);
	return err;
}

void vmm_kvm_close(struct vmm_kvm *k)
{
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k->cpuid);
	k->cpuid = NULL;
	k->vm_fd = k->kvm_fd = -1;
	k->slots = 0;
}

int vmm_kvm_add_memory(struct vmm_kvm *k, const struct vdk_mem *mem)
{
	long page = sysconf(_SC_PAGESIZE);

	for (size_t i = 0; i < vdk_mem_num_regions(mem); i++) {
		const struct vdk_mem_region *r = vdk_mem_region_at(mem, i);
		struct kvm_userspace_memory_region slot = {
			.slot = k->slots,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->hva,
		};

		if ((r->gpa | r->size | slot.userspace_addr) &
		    (uint64_t)(page - 1))
			return fail(
				k, -EINVAL,
				"memory region at %#llx is not page-aligned",
				(unsigned long long)r->gpa);
		if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			int err = -errno;

			return fail(
				k, err,
				"KVM_SET_USER_MEMORY_REGION [%#llx, +%#llx): "
				"%s",
				(unsigned long long)r->gpa,
				(unsigned long long)r->size, strerror(-err));
		}
		k->slots++;
	}
	return 0;
}

int vmm_kvm_irq_line(struct vmm_kvm *k, uint32_t gsi, bool level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};

	return ioctl(k->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int vmm_kvm_irqfd(struct vmm_kvm *k, int fd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd irqfd = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(k->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int vmm_kvm_ioeventfd(struct vmm_kvm *k, int fd, uint64_t addr, uint32_t len,
		      uint64_t data, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = data,
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (len != 1 && len != 2 && len != 4 && len != 8)
		return -EINVAL;
	return ioctl(k->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int vmm_kvm_signal_msi(struct vmm_kvm *k, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};
	int r = ioctl(k->vm_fd, KVM_SIGNAL_MSI, &msi);

	if (r < 0)
		return -errno;
	return r > 0 ? 0 : 1;
}

/* Rewrite the GSI routing table: KVM's default irqchip routes (GSIs 0..15
 * on the PIC pair and the IO-APIC, 16..23 on the IO-APIC; see
 * virt/kvm/irqchip.c) and every set MSI route. Under routes_lock. */
static int routes_commit(struct vmm_kvm *k)
{
	size_t n = 16 * 2 + (VMM_KVM_IRQCHIP_GSIS - 16) + VMM_KVM_MSI_ROUTES;
	struct kvm_irq_routing *t = calloc(
		1, sizeof(*t) + n * sizeof(struct kvm_irq_routing_entry));
	struct kvm_irq_routing_entry *e;
	int r = 0;

	if (!t)
		return -ENOMEM;
	e = t->entries;
	for (uint32_t gsi = 0; gsi < VMM_KVM_IRQCHIP_GSIS; gsi++) {
		if (gsi < 16) {
			e->gsi = gsi;
			e->type = KVM_IRQ_ROUTING_IRQCHIP;
			e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
						       : KVM_IRQCHIP_PIC_SLAVE;
			e->u.irqchip.pin = gsi % 8;
			e++;
		}
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e->u.irqchip.pin = gsi;
		e++;
	}
	for (uint32_t i = 0; i < VMM_KVM_MSI_ROUTES; i++) {
		if (!k->msi[i].set)
			continue;
		e->gsi = VMM_KVM_IRQCHIP_GSIS + i;
		e->type = KVM_IRQ_ROUTING_MSI;
		e->u.msi.address_lo = (uint32_t)k->msi[i].addr;
		e->u.msi.address_hi = (uint32_t)(k->msi[i].addr >> 32);
		e->u.msi.data = k->msi[i].data;
		e++;
	}
	t->nr = (uint32_t)(e - t->entries);
	if (ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
		r = -errno;
	free(t);
	return r;
}

static void routes_lock(struct vmm_kvm *k)
{
	static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&init_lock);
	if (!k->routes_lock_init) {
		pthread_mutex_init(&k->routes_lock, NULL);
		k->routes_lock_init = true;
	}
	pthread_mutex_unlock(&init_lock);
	pthread_mutex_lock(&k->routes_lock);
}

int vmm_kvm_msi_route_alloc(struct vmm_kvm *k)
{
	int gsi = -ENOSPC;

	routes_lock(k);
	for (uint32_t i = 0; i < VMM_KVM_MSI_ROUTES; i++) {
		if (!k->msi[i].used) {
			k->msi[i] = (struct vmm_kvm_msi_route){.used = true};
			gsi = (int)(VMM_KVM_IRQCHIP_GSIS + i);
			break;
		}
	}
	pthread_mutex_unlock(&k->routes_lock);
	return gsi;
}

int vmm_kvm_msi_route_set(struct vmm_kvm *k, uint32_t gsi, uint64_t addr,
			  uint32_t data, bool set)
{
	struct vmm_kvm_msi_route *m, old;
	int r = 0;

	if (gsi < VMM_KVM_IRQCHIP_GSIS ||
	    gsi - VMM_KVM_IRQCHIP_GSIS >= VMM_KVM_MSI_ROUTES)
		return -EINVAL;
	routes_lock(k);
	m = &k->msi[gsi - VMM_KVM_IRQCHIP_GSIS];
	if (!m->used) {
		r = -EINVAL;
	} else if (m->set != set ||
		   (set && (m->addr != addr || m->data != data))) {
		old = *m;
		m->set = set;
		m->addr = set ? addr : 0;
		m->data = set ? data : 0;
		r = routes_commit(k);
		if (r < 0)
			*m = old;
	}
	pthread_mutex_unlock(&k->routes_lock);
	return r;
}

void vmm_kvm_msi_route_free(struct vmm_kvm *k, uint32_t gsi)
{
	struct vmm_kvm_msi_route *m;

	if (gsi < VMM_KVM_IRQCHIP_GSIS ||
	    gsi - VMM_KVM_IRQCHIP_GSIS >= VMM_KVM_MSI_ROUTES)
		return;
	routes_lock(k);
	m = &k->msi[gsi - VMM_KVM_IRQCHIP_GSIS];
	if (m->set) {
		m->set = false;
		(void)routes_commit(k);
	}
	m->used = false;
	pthread_mutex_unlock(&k->routes_lock);
}

int vmm_kvm_stats_print(int fd, const char *who, FILE *out)
{
	struct kvm_stats_header h;
	size_t desc_size, col = 0;
	uint8_t *descs = NULL;
	int sfd, err = 0;
	ssize_t n;

	sfd = ioctl(fd, KVM_GET_STATS_FD, NULL);
	if (sfd < 0)
		return -errno;
	n = pread(sfd, &h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h) || h.num_desc == 0 || h.num_desc > 4096 ||
	    h.name_size == 0 || h.name_size > 256) {
		err = n < 0 ? -errno : -EPROTO;
		goto out;
	}
	desc_size = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = calloc(h.num_desc, desc_size);
	if (!descs) {
		err = -ENOMEM;
		goto out;
	}
	n = pread(sfd, descs, h.num_desc * desc_size, h.desc_offset);
	if (n != (ssize_t)(h.num_desc * desc_size)) {
		err = n < 0 ? -errno : -EPROTO;
		goto out;
	}
	for (uint32_t i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d =
			(struct kvm_stats_desc *)(descs + i * desc_size);
		uint64_t v;

		d->name[h.name_size - 1] = '\0';
		if ((d->flags & KVM_STATS_TYPE_MASK) !=
			    KVM_STATS_TYPE_CUMULATIVE ||
		    d->size != 1)
			continue;
		if (pread(sfd, &v, sizeof(v),
			  (off_t)h.data_offset + d->offset) != sizeof(v)) {
			err = -EPROTO;
			break;
		}
		if (v == 0)
			continue;
		if (col == 0)
			col = (size_t)fprintf(out, "vdk-vmm: %s:", who);
		col += (size_t)fprintf(out, " %s %llu", d->name,
				       (unsigned long long)v);
		if (col > 72) {
			fputc('\n', out);
			col = 0;
		}
	}
	if (col)
		fputc('\n', out);
out:
	free(descs);
	close(sfd);
	return err;
}
