/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-vmm: a minimal KVM VMM on libvdk. Boots a Linux kernel (bzImage or
 * PVH ELF) with a 16550A console on COM1 and virtio-mmio devices described
 * by ACPI (and optionally on the kernel command line), the way Firecracker
 * and libkrun do, and exits when the guest powers off.
 *
 * Consoles: COM1 is always there and is the default console (--console:
 * stdout and stdin, or output to a file). --virtio-console adds a
 * virtio-console whose port 0 (hvc0 in Linux) writes to stdout or a file
 * and, on stdio, reads stdin; then COM1 must go to a file, so that one
 * device owns stdin and stdout.
 *
 * VDK_VMM_STATS=1 in the environment prints the guest's run time and the
 * number of vCPU exits handled in userspace, the queue notifications and
 * how MSI-X messages went (irqfd + KVM MSI route, or KVM_SIGNAL_MSI), and
 * KVM's own counters of each vCPU and the VM (exits handled in the
 * kernel, page faults, ...) where KVM has binary statistics (Linux 5.14).
 *
 * Exit status:
 *   0  the guest powered off (ACPI S5 through the FADT sleep register)
 *   1  an error before the guest started (options, files, KVM)
 *   2  the guest asked for a reboot (ACPI reset register, i8042 reset, or
 *      a jump to the reset vector: Linux's default `reboot` here)
 *   3  the guest triple-faulted or crashed
 *   4  a VMM or KVM error while the guest ran
 *   5  --timeout SECONDS expired with the guest still running (a guest
 *      that stopped responding ends with this message, not a hang)
 *   128 + n  stopped by signal n (SIGINT, SIGTERM, SIGHUP, SIGQUIT)
 *
 * Everything is checked before the first vCPU runs: the kernel is loaded
 * and parsed, the initrd and disks opened, KVM's capabilities checked, so
 * that a mistake gives a message and exit status 1, never a hung guest.
 * The command line itself is parsed and checked in options.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vdk/bus.h>
#include <vdk/devices/blk.h>
#include <vdk/devices/console.h>
#include <vdk/devices/rng.h>
#include <vdk/log.h>
#include <vdk/mem.h>
#include <vdk/mmio.h>
#include <vdk/vhost_user_frontend.h>

#include "acpi.h"
#include "boot_x86_64.h"
#include "console.h"
#include "devices.h"
#include "pci_bus.h"
#include "kvm.h"
#include "mmio_manager.h"
#include "options.h"
#include "platform.h"
#include "serial.h"
#include "vcpu.h"

/** virtio-mmio windows: above RAM, below the IO-APIC; GSIs 5..23. */
#define VMM_MMIO_BASE	   0xd0000000ull
#define VMM_MMIO_IRQ_FIRST 5u
#define VMM_MMIO_IRQ_LAST  23u

/* Read a whole file. Return: 0, or -errno (message printed). */
static int read_file(const char *what, const char *path, void **buf,
		     size_t *len)
{
	struct stat st;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0) {
		err = -errno;
		vmm_die_setup("cannot open %s %s: %s", what, path,
			      strerror(-err));
		return err;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		vmm_die_setup("%s %s: not a regular, non-empty file", what,
			      path);
		return -EINVAL;
	}
	*len = (size_t)st.st_size;
	*buf = malloc(*len);
	if (!*buf) {
		close(fd);
		vmm_die_setup("%s %s: out of memory", what, path);
		return -ENOMEM;
	}
	while (done < *len) {
		ssize_t n = read(fd, (char *)*buf + done, *len - done);

		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			close(fd);
			free(*buf);
			*buf = NULL;
			vmm_die_setup("cannot read %s %s: %s", what, path,
				      strerror(-err));
			return err;
		}
		done += (size_t)n;
	}
	close(fd);
	return 0;
}

/* Check a disk image before KVM is touched: exists, right type, access. */
static int check_disk(const struct vdk_blk_config *d)
{
	struct stat st;

	if (stat(d->path, &st) < 0)
		return vmm_die_setup("disk %s: %s", d->path, strerror(errno)),
		       -1;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return vmm_die_setup(
			       "disk %s: not a regular file or block device",
			       d->path),
		       -1;
	if (access(d->path, d->read_only ? R_OK : R_OK | W_OK) < 0)
		return vmm_die_setup("disk %s: %s%s", d->path, strerror(errno),
				     d->read_only ? "" : " (add ,readonly?)"),
		       -1;
	return 0;
}

/* Everything the run needs, so cleanup is one function. */
struct vm {
	struct vmm_options opt;
	void *kernel, *initrd;
	size_t kernel_len, initrd_len;
	struct vmm_kvm kvm;
	struct vdk_mem *mem;
	struct { /* guest RAM mapped here (not memfd RAM: the map owns that) */
		void *base;
		size_t len;
	} ram[2];
	struct vdk_io_manager io;
	bool io_ok;
	struct vmm_stop stop;
	bool stop_ok;
	struct vmm_serial *serial;
	struct vmm_console console;
	struct vmm_platform platform;
	struct vmm_mmio_manager *mgr;
	struct vmm_pci_bus *pci; /* --transport=pci, else NULL */
	struct vmm_devices *devices;
	int vconsole_fd; /* --virtio-console FILE, opened here; else -1 */
	struct vmm_vcpu vcpus[VMM_MAX_VCPUS];
	unsigned int num_vcpus;
};

/* Serial callbacks: COM1 output to the console, IRQ 4 to the irqchip. */
static void serial_out(void *opaque, uint8_t byte)
{
	vmm_console_write(opaque, byte);
}

static void serial_irq(void *opaque, bool level)
{
	vmm_kvm_irq_line(opaque, VMM_SERIAL_COM1_IRQ, level);
}

/* Transparent huge pages: the unit guest RAM is aligned to, bytes. */
#define RAM_ALIGN (2ull * MIB)

/*
 * Add @size bytes of guest RAM at @gpa. With a vhost-user device the back-end
 * maps guest RAM, so it is a sealed memfd (shmem). Otherwise it is anonymous
 * private memory, 2 MiB-aligned and madvise(MADV_HUGEPAGE)d as QEMU does its
 * RAM: where transparent huge pages are enabled ("always" or "madvise", the
 * kernel defaults), KVM then maps the guest with 2 MiB pages, one nested page
 * fault per 2 MiB instead of per 4 KiB, which is most of a Linux boot's cost
 * under nested virtualisation. Shmem (memfd) gets huge pages only where
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled allows ("advise" or
 * "always"; the default is "never"); it is asked for there too. Without THP
 * both work as before, with 4 KiB pages. The anonymous mapping is
 * MAP_NORESERVE (as Firecracker's): RAM is touched as the guest uses it, so a
 * guest may be given more than the host could commit at once.
 */
static int add_ram(struct vm *vm, unsigned int i, uint64_t gpa, uint64_t size,
		   const char *name)
{
	const struct vdk_mem_region *mr;
	uint8_t *p, *a;
	size_t len;
	int r;

	if (vm->opt.num_vhost_user) {
		r = vdk_mem_add_memfd(vm->mem, gpa, size, name);
		if (r < 0)
			return r;
		mr = vdk_mem_find(vm->mem, gpa);
		if (mr)
			(void)madvise(mr->hva, (size_t)mr->size, MADV_HUGEPAGE);
		return 0;
	}
	if (size > SIZE_MAX - RAM_ALIGN)
		return -ENOMEM;
	len = (size_t)size + RAM_ALIGN;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Keep the 2 MiB-aligned @size bytes inside, unmap the rest. */
	a = (uint8_t *)(((uintptr_t)p + RAM_ALIGN - 1) &
			~(uintptr_t)(RAM_ALIGN - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + len > a + size)
		munmap(a + size, (size_t)(p + len - (a + size)));
	(void)madvise(a, (size_t)size, MADV_HUGEPAGE);
	r = vdk_mem_add_host(vm->mem, gpa, size, a);
	if (r < 0) {
		munmap(a, (size_t)size);
		return r;
	}
	vm->ram[i].base = a;
	vm->ram[i].len = (size_t)size;
	return 0;
}

static int setup_memory(struct vm *vm)
{
	uint64_t low = vm->opt.memory < VMM_BOOT_LOW_RAM_MAX
			       ? vm->opt.memory
			       : VMM_BOOT_LOW_RAM_MAX;
	int r;

	vm->mem = vdk_mem_new(&r);
	if (!vm->mem)
		return vmm_die_setup("out of memory"), r;
	r = add_ram(vm, 0, 0, low, "vdk-vmm-ram-low");
	if (r == 0 && vm->opt.memory > low)
		r = add_ram(vm, 1, VMM_BOOT_HIGH_RAM_GPA, vm->opt.memory - low,
			    "vdk-vmm-ram-high");
	if (r < 0)
		return vmm_die_setup(
			       "cannot allocate %llu MiB of guest RAM: %s",
			       (unsigned long long)(vm->opt.memory / MIB),
			       strerror(-r)),
		       r;
	r = vmm_kvm_add_memory(&vm->kvm, vm->mem);
	if (r < 0)
		return vmm_die_setup("%s", vm->kvm.errmsg), r;
	return 0;
}

/* The guest-physical end of RAM (high RAM starts at 4 GiB). */
static uint64_t vmm_ram_end(const struct vm *vm)
{
	if (vm->opt.memory <= VMM_BOOT_LOW_RAM_MAX)
		return vm->opt.memory;
	return VMM_BOOT_HIGH_RAM_GPA + (vm->opt.memory - VMM_BOOT_LOW_RAM_MAX);
}

/* The virtio-console of --virtio-console, after the other devices. */
static int setup_vconsole(struct vm *vm)
{
	struct vdk_console_config cc = {.output_fd = STDOUT_FILENO};
	bool stdio = vm->opt.vconsole && !strcmp(vm->opt.vconsole, "stdio");
	const char *msg = NULL;
	struct vdk_console *con;
	struct winsize ws;
	int r;

	if (!vm->opt.vconsole)
		return 0;
	if (stdio) {
		/* The terminal's size at start (changes are not followed). */
		if (isatty(STDOUT_FILENO) &&
		    ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col &&
		    ws.ws_row) {
			cc.cols = ws.ws_col;
			cc.rows = ws.ws_row;
		}
	} else {
		vm->vconsole_fd =
			open(vm->opt.vconsole,
			     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (vm->vconsole_fd < 0)
			return vmm_die_setup("--virtio-console %s: %s",
					     vm->opt.vconsole, strerror(errno)),
			       -errno;
		cc.output_fd = vm->vconsole_fd;
	}
	con = vdk_console_new(&cc, &r);
	if (!con)
		return vmm_die_setup("virtio-console: %s", strerror(-r)), r;
	r = vmm_devices_add(vm->devices, "console0", vdk_console_device(con),
			    &msg);
	if (r < 0)
		return vmm_die_setup("virtio-console: %s: %s", msg,
				     strerror(-r)),
		       r;
	if (stdio) {
		r = vmm_devices_feed_stdin(vm->devices, con);
		if (r < 0)
			return vmm_die_setup("virtio-console: stdin: %s",
					     strerror(-r)),
			       r;
	}
	return 0;
}

/* Add @dev to the VM as @id, or report why not as "@what@name: why: error";
 * @dev NULL means its constructor failed with @r, which @fail explains.
 * Return: 0 or -errno (reported). */
static int add_device(struct vm *vm, const char *id, struct vdk_device *dev,
		      int r, const char *fail, const char *what,
		      const char *name)
{
	const char *msg = fail;

	if (dev)
		r = vmm_devices_add(vm->devices, id, dev, &msg);
	if (r < 0)
		vmm_die_setup("%s%s: %s: %s", what, name, msg, strerror(-r));
	return r;
}

static int setup_devices(struct vm *vm)
{
	char id[32];
	int r;

	vm->mgr =
		vmm_mmio_manager_new(VMM_MMIO_BASE, VDK_MMIO_WINDOW_SIZE,
				     VMM_MMIO_IRQ_FIRST, VMM_MMIO_IRQ_LAST, &r);
	if (!vm->mgr)
		return vmm_die_setup("MMIO device manager: %s", strerror(-r)),
		       r;
	vm->devices =
		vmm_devices_new(&vm->kvm, vm->mem, vm->io.mmio, vm->mgr, &r);
	if (!vm->devices)
		return vmm_die_setup("device set: %s", strerror(-r)), r;
	if (vm->opt.pci) {
		vm->pci = vmm_pci_bus_new(&vm->kvm, vm->io.pio, vm->io.mmio,
					  vmm_ram_end(vm), &r);
		if (!vm->pci)
			return vmm_die_setup("PCI host bridge: %s",
					     strerror(-r)),
			       r;
		vmm_devices_use_pci(vm->devices, vm->pci);
	}
	for (size_t i = 0; i < vm->opt.num_disks; i++) {
		const struct vdk_blk_config *d = &vm->opt.disks[i];
		struct vdk_blk *blk = vdk_blk_new(d, &r);

		snprintf(id, sizeof(id), "disk%zu", i);
		r = add_device(vm, id, blk ? vdk_blk_device(blk) : NULL, r,
			       "cannot open the disk image", "disk ", d->path);
		if (r < 0)
			return r;
	}
	if (vm->opt.rng) {
		struct vdk_rng *rng = vdk_rng_new(NULL, &r);

		r = add_device(vm, "rng0", rng ? vdk_rng_device(rng) : NULL, r,
			       "cannot create the virtio-rng device", "rng",
			       "");
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < vm->opt.num_vhost_user; i++) {
		const struct vdk_vhost_user_device_config *o =
			&vm->opt.vhost_user[i];
		struct vdk_vhost_user_device *vu =
			vdk_vhost_user_device_new(o, &r);

		snprintf(id, sizeof(id), "vhost-user%zu", i);
		if (!vu)
			return vmm_die_setup("vhost-user back-end %s: %s",
					     o->socket_path,
					     r == -ERANGE ? "fewer queues than "
							    "num-queues"
					     : r == -EOPNOTSUPP
						     ? "no configuration space "
						       "(VHOST_USER_PROTOCOL_F_"
						       "CONFIG missing)"
						     : strerror(-r)),
			       r;
		r = add_device(vm, id, vdk_vhost_user_device_vdk(vu), 0, NULL,
			       "vhost-user back-end ", o->socket_path);
		if (r < 0)
			return r;
	}
	if (vm->opt.has_net) {
		struct vdk_net *net = vdk_net_new(&vm->opt.net, &r);

		r = add_device(vm, "net0", net ? vdk_net_device(net) : NULL, r,
			       "cannot create the virtio-net device", "--net",
			       "");
		if (r < 0)
			return r;
	}
	return setup_vconsole(vm);
}

static int setup_acpi(struct vm *vm)
{
	struct vmm_acpi_mmio_device devs[VMM_ACPI_MAX_DEVICES];
	size_t n = vmm_mmio_manager_count(vm->mgr);
	struct vmm_acpi_layout layout;
	struct vmm_acpi_pci pci;
	struct vmm_acpi_config cfg = {
		.num_vcpus = vm->opt.cpus,
		.devices = devs,
		.num_devices = n,
		.serial = true,
		.sleep_reg = VMM_PLATFORM_SLEEP_PORT,
		.sleep_reg_mmio = false,
		.cmos_rtc = false,
	};
	void *buf;
	int r;

	if (vm->pci) {
		vmm_pci_bus_acpi(vm->pci, &pci);
		cfg.pci = &pci;
	}
	for (size_t i = 0; i < n && i < VMM_ACPI_MAX_DEVICES; i++) {
		const struct vmm_mmio_device_info *d =
			vmm_mmio_manager_at(vm->mgr, i);

		devs[i] = (struct vmm_acpi_mmio_device){d->base, d->size,
							d->irq, false};
	}
	buf = vdk_mem_translate(vm->mem, VMM_ACPI_DEFAULT_GPA,
				VMM_ACPI_DEFAULT_SIZE);
	if (!buf)
		return vmm_die_setup("ACPI area not in guest RAM"), -EFAULT;
	r = vmm_acpi_build(&cfg, buf, VMM_ACPI_DEFAULT_SIZE,
			   VMM_ACPI_DEFAULT_GPA, &layout);
	if (r < 0)
		return vmm_die_setup("cannot build the ACPI tables: %s",
				     strerror(-r)),
		       r;
	return 0;
}

static int setup_boot(struct vm *vm, struct vmm_boot_entry *entry)
{
	uint64_t low = vm->opt.memory < VMM_BOOT_LOW_RAM_MAX
			       ? vm->opt.memory
			       : VMM_BOOT_LOW_RAM_MAX;
	struct vmm_boot_config bc = {
		.kernel = vm->kernel,
		.kernel_len = vm->kernel_len,
		.initrd = vm->initrd,
		.initrd_len = vm->initrd_len,
		.ram_low = low,
		.ram_high = vm->opt.memory - low,
		.rsdp_gpa = VMM_ACPI_DEFAULT_GPA,
	};
	const char *msg = "";
	size_t size = VMM_BOOT_CMDLINE_MAX;
	char *cmdline = malloc(size);
	int r;

	if (!cmdline)
		return vmm_die_setup("out of memory"), -ENOMEM;
	r = snprintf(cmdline, size, "%s%s%s",
		     vm->pci ? VMM_CMDLINE_BASE_PCI : VMM_CMDLINE_BASE,
		     vm->opt.cmdline[0] ? " " : "", vm->opt.cmdline);
	if (r < 0 || (size_t)r >= size ||
	    (vm->opt.mmio_cmdline &&
	     vmm_mmio_manager_cmdline_append(vm->mgr, cmdline, size) < 0)) {
		free(cmdline);
		return vmm_die_setup("--cmdline: command line too long"),
		       -ENAMETOOLONG;
	}
	bc.cmdline = cmdline;
	r = vmm_boot_load(vm->mem, &bc, entry, &msg);
	free(cmdline);
	if (r < 0)
		return vmm_die_setup("kernel %s: %s", vm->opt.kernel, msg), r;
	return 0;
}

static int setup_vcpus(struct vm *vm, const struct vmm_boot_entry *entry)
{
	int r;

	if (vm->opt.cpus > vm->kvm.max_vcpus)
		return vmm_die_setup("--cpus %u: KVM allows at most %u",
				     vm->opt.cpus, vm->kvm.max_vcpus),
		       -EINVAL;
	for (unsigned int i = 0; i < vm->opt.cpus; i++) {
		r = vmm_vcpu_create(&vm->vcpus[i], &vm->kvm, i, vm->opt.cpus,
				    &vm->io, &vm->stop);
		if (r < 0)
			return vmm_die_setup("cannot create vCPU %u: %s: %s", i,
					     vm->vcpus[i].failed
						     ? vm->vcpus[i].failed
						     : "KVM",
					     strerror(-r)),
			       r;
		vm->num_vcpus = i + 1;
	}
	r = vmm_vcpu_set_boot_state(&vm->vcpus[0], entry);
	if (r < 0)
		return vmm_die_setup("cannot set the boot vCPU's registers: %s",
				     strerror(-r)),
		       r;
	return 0;
}

/* Load and check every input before KVM is opened. */
static int load_inputs(struct vm *vm)
{
	struct vmm_bzimage_info bz;
	int r;

	if (read_file("kernel", vm->opt.kernel, &vm->kernel, &vm->kernel_len))
		return -1;
	switch (vmm_boot_detect(vm->kernel, vm->kernel_len)) {
	case VMM_KERNEL_BZIMAGE:
		r = vmm_bzimage_parse(vm->kernel, vm->kernel_len, &bz);
		if (r == -EPROTONOSUPPORT)
			return vmm_die_setup(
				       "kernel %s: bzImage without a 64-bit "
				       "entry (boot protocol < 2.12 or no "
				       "XLF_KERNEL_64)",
				       vm->opt.kernel),
			       -1;
		if (r < 0)
			return vmm_die_setup("kernel %s: malformed bzImage",
					     vm->opt.kernel),
			       -1;
		break;
	case VMM_KERNEL_PVH:
		break;
	default:
		return vmm_die_setup("kernel %s: neither a bzImage nor an ELF "
				     "image with a PVH entry note "
				     "(XEN_ELFNOTE_PHYS32_ENTRY)",
				     vm->opt.kernel),
		       -1;
	}
	if (vm->opt.initrd &&
	    read_file("initrd", vm->opt.initrd, &vm->initrd, &vm->initrd_len))
		return -1;
	for (size_t i = 0; i < vm->opt.num_disks; i++)
		if (check_disk(&vm->opt.disks[i]) < 0)
			return -1;
	return vmm_options_check_consoles(&vm->opt);
}

/* Set up the whole VM. Return: 0, or non-zero after printing why. */
static int setup(struct vm *vm)
{
	struct vmm_boot_entry entry;
	int r;

	if (load_inputs(vm) < 0)
		return -1;
	r = vmm_kvm_open(&vm->kvm, "/dev/kvm");
	if (r < 0)
		return vmm_die_setup("%s", vm->kvm.errmsg), r;
	if (setup_memory(vm) < 0)
		return -1;
	r = vmm_stop_init(&vm->stop);
	if (r < 0)
		return vmm_die_setup("stop request: %s", strerror(-r)), r;
	vm->stop_ok = true;
	r = vdk_io_manager_init(&vm->io);
	if (r < 0)
		return vmm_die_setup("I/O buses: %s", strerror(-r)), r;
	vm->io_ok = true;
	r = vmm_console_open(&vm->console, vm->opt.console, &vm->stop);
	if (r < 0)
		return vmm_die_setup("--console %s: %s", vm->opt.console,
				     strerror(-r)),
		       r;
	vm->serial = vmm_serial_new(
		&(struct vmm_serial_config){serial_out, &vm->console,
					    serial_irq, &vm->kvm},
		&r);
	if (!vm->serial || (r = vmm_serial_register(vm->serial, vm->io.pio,
						    VMM_SERIAL_COM1_BASE)) < 0)
		return vmm_die_setup("COM1: %s", strerror(-r)), r;
	r = vmm_platform_register(&vm->platform, vm->io.pio, &vm->stop);
	if (r < 0)
		return vmm_die_setup("platform ports: %s", strerror(-r)), r;
	if (setup_devices(vm) < 0)
		return -1;
	if (setup_acpi(vm) < 0 || setup_boot(vm, &entry) < 0)
		return -1;
	/* Both are in guest RAM now: give the copies back (about 8 MiB of
	 * RSS for a distribution kernel and initramfs). */
	free(vm->kernel);
	free(vm->initrd);
	vm->kernel = vm->initrd = NULL;
	vm->kernel_len = vm->initrd_len = 0;
	return setup_vcpus(vm, &entry);
}

static void teardown(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->num_vcpus; i++)
		vmm_vcpu_join(&vm->vcpus[i]);
	vmm_devices_free(vm->devices);
	vmm_pci_bus_free(vm->pci); /* after the functions it routes to */
	if (vm->vconsole_fd >= 0)
		close(vm->vconsole_fd);
	vmm_console_close(&vm->console);
	if (vm->serial) {
		if (vm->io_ok)
			vdk_bus_deregister(vm->io.pio, VMM_SERIAL_COM1_BASE,
					   NULL);
		vmm_serial_free(vm->serial);
	}
	for (unsigned int i = 0; i < vm->num_vcpus; i++)
		vmm_vcpu_destroy(&vm->vcpus[i]);
	vmm_mmio_manager_free(vm->mgr);
	if (vm->io_ok)
		vdk_io_manager_fini(&vm->io);
	if (vm->stop_ok)
		vmm_stop_fini(&vm->stop);
	vmm_kvm_close(&vm->kvm);
	vdk_mem_free(vm->mem);
	for (unsigned int i = 0; i < 2; i++)
		if (vm->ram[i].base)
			munmap(vm->ram[i].base, vm->ram[i].len);
	free(vm->kernel);
	free(vm->initrd);
	vmm_options_fini(&vm->opt);
}

/* Run until the guest stops. Return: the exit status. */
static int run(struct vm *vm)
{
	struct timespec t0, t1;
	enum vmm_stop_reason why;
	uint64_t exits = 0;
	int r;

	vm->stop.vcpus = vm->vcpus;
	vm->stop.num_vcpus = vm->num_vcpus;
	r = vmm_devices_start(vm->devices);
	if (r == 0)
		r = vmm_console_start(&vm->console, vm->serial);
	if (r < 0)
		return vmm_die_setup("cannot start threads: %s", strerror(-r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned int i = 0; i < vm->num_vcpus; i++) {
		r = vmm_vcpu_start(&vm->vcpus[i]);
		if (r < 0) {
			vmm_stop_request(&vm->stop, VMM_STOP_ERROR,
					 "cannot start vCPU %u: %s", i,
					 strerror(-r));
			break;
		}
	}
	why = vmm_stop_wait_timeout(&vm->stop, vm->opt.timeout);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (unsigned int i = 0; i < vm->num_vcpus; i++) {
		vmm_vcpu_join(&vm->vcpus[i]);
		exits += vm->vcpus[i].exits;
	}
	vmm_console_restore(&vm->console);
	if (why != VMM_STOP_POWEROFF)
		fprintf(stderr, "vdk-vmm: %s\n", vm->stop.msg);
	/* Where a guest that stopped responding or triple-faulted was. */
	for (unsigned int i = 0;
	     (why == VMM_STOP_TIMEOUT || why == VMM_STOP_SHUTDOWN) &&
	     i < vm->num_vcpus;
	     i++) {
		char where[512];

		vmm_vcpu_where(&vm->vcpus[i], where, sizeof(where));
		fprintf(stderr, "vdk-vmm: vCPU %u: %s\n", i, where);
	}
	if (getenv("VDK_VMM_STATS")) {
		struct vmm_devices_stats st;

		vmm_devices_stats(vm->devices, &st);
		fprintf(stderr,
			"vdk-vmm: guest ran %.3f ms, %llu exits to userspace\n",
			(double)(t1.tv_sec - t0.tv_sec) * 1e3 +
				(double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
			(unsigned long long)exits);
		fprintf(stderr,
			"vdk-vmm: %llu queue notifications (ioeventfd), "
			"MSI-X: %llu through irqfds, %llu through "
			"KVM_SIGNAL_MSI\n",
			(unsigned long long)st.notifies,
			(unsigned long long)st.msi_irqfd,
			(unsigned long long)st.msi_ioctl);
		if (st.direct_kick || st.direct_call)
			fprintf(stderr,
				"vdk-vmm: direct to vhost-user back-ends: %u "
				"queues' ioeventfds (their notifications are "
				"not counted above), %u queues' irqfds\n",
				st.direct_kick, st.direct_call);
		/* KVM's own counters: the exits handled in the kernel too. */
		for (unsigned int i = 0; i < vm->num_vcpus; i++) {
			char who[16];

			snprintf(who, sizeof(who), "vCPU %u", i);
			vmm_kvm_stats_print(vm->vcpus[i].fd, who, stderr);
		}
		vmm_kvm_stats_print(vm->kvm.vm_fd, "VM", stderr);
	}
	switch (why) {
	case VMM_STOP_POWEROFF:
		return VMM_EXIT_POWEROFF;
	case VMM_STOP_RESET:
		return VMM_EXIT_REBOOT;
	case VMM_STOP_SHUTDOWN:
		return VMM_EXIT_CRASH;
	case VMM_STOP_TIMEOUT:
		return VMM_EXIT_TIMEOUT;
	default:
		return vm->console.signo ? 128 + vm->console.signo
					 : VMM_EXIT_RUNTIME;
	}
}

/* Threads' stacks: 1 MiB instead of glibc's 8 MiB, too small to hold a
 * 2 MiB-aligned transparent huge page, which THP "always" (the kernel's
 * default) would give each stack on first touch: 2 MiB of RSS per vCPU and
 * device thread. */
static void small_thread_stacks(void)
{
	pthread_attr_t a;

	if (pthread_attr_init(&a) != 0)
		return;
	if (pthread_attr_setstacksize(&a, 1u << 20) == 0)
		(void)pthread_setattr_default_np(&a);
	pthread_attr_destroy(&a);
}

int main(int argc, char **argv)
{
	static struct vm vm;
	int status;

	small_thread_stacks();
	vm.kvm.kvm_fd = vm.kvm.vm_fd = -1;
	vm.vconsole_fd = -1;
	switch (vmm_options_parse(argc, argv, &vm.opt)) {
	case 1:
		status = 0;
		break;
	case 0:
		status = setup(&vm) ? VMM_EXIT_SETUP : run(&vm);
		break;
	default:
		status = VMM_EXIT_SETUP;
		break;
	}
	teardown(&vm);
	return status;
}
