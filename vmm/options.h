/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-vmm's command line: the options (--kernel, --memory, --disk, ...),
 * their parsing and the checks that need nothing but the options, --help
 * and --version, and the exit statuses the program documents (see the top
 * of main.c). Messages go to stderr as "vdk-vmm: <message>"; nothing here
 * exits the process, the caller decides.
 */
#ifndef VDK_VMM_OPTIONS_H
#define VDK_VMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/devices/blk.h>
#include <vdk/devices/net.h>
#include <vdk/vhost_user_frontend.h>

/** Exit statuses of vdk-vmm (listed by --help and at the top of main.c). */
enum {
	VMM_EXIT_POWEROFF = 0, /**< the guest powered off (ACPI S5) */
	VMM_EXIT_SETUP = 1,    /**< an error before the guest started */
	VMM_EXIT_REBOOT = 2,   /**< the guest asked for a reboot */
	VMM_EXIT_CRASH = 3,    /**< triple fault or crash */
	VMM_EXIT_RUNTIME = 4,  /**< a VMM or KVM error while the guest ran */
	VMM_EXIT_TIMEOUT = 5,  /**< --timeout expired with the guest running */
};

#define MIB (1ull << 20)
#define GIB (1ull << 30)
/** Guest RAM limits: a kernel needs room to decompress; 1 TiB is far more
 * than any test needs and keeps every address well inside 40 bits. */
#define VMM_MEM_MIN	(16 * MIB)
#define VMM_MEM_MAX	(1024 * GIB)
#define VMM_MEM_DEFAULT (512 * MIB)
/** Always on the command line, before the user's --cmdline. */
#define VMM_CMDLINE_BASE "console=ttyS0 panic=-1 pci=off"
/** The same for --transport=pci (PCI stays on). */
#define VMM_CMDLINE_BASE_PCI "console=ttyS0 panic=-1"
#define VMM_MAX_DISKS	     16u
#define VMM_MAX_VHOST_USER   8u

/** Everything the command line says; strings other than the disks' point
 * into argv. */
struct vmm_options {
	const char *kernel, *initrd, *cmdline, *console;
	const char *vconsole; /**< --virtio-console, or NULL */

	uint64_t memory; /**< bytes, a whole number of MiB */
	unsigned int cpus;
	unsigned int timeout; /**< --timeout seconds, 0: none */
	bool rng, mmio_cmdline;
	bool pci; /**< --transport=pci (virtio-pci), else virtio-mmio */
	size_t num_disks;
	/** --disk PATH[,SETTING]...: strings owned by the config
	 * (vdk_blk_config_fini() in vmm_options_fini()) */
	struct vdk_blk_config disks[VMM_MAX_DISKS];
	/** --net given: @net holds its settings (checked complete); the
	 * interface name is owned by @net (vdk_net_config_fini()) */
	bool has_net;
	struct vdk_net_config net;
	size_t num_vhost_user;
	/** --vhost-user-blk, --vhost-user-rng or --vhost-user: socket_path
	 * strdup'd; num_queues 0: what the back-end says; config_size 0: the
	 * device type's default */
	struct vdk_vhost_user_device_config vhost_user[VMM_MAX_VHOST_USER];
};

/**
 * vmm_die_setup() - print "vdk-vmm: <message>" and a newline to stderr.
 * Return: VMM_EXIT_SETUP, so that callers can `return vmm_die_setup(...)`.
 */
int vmm_die_setup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * vmm_options_parse() - parse the command line into @o (caller's storage,
 * zeroed; defaults are filled in here). --help and --version print to
 * stdout. Every other message is printed here.
 * Return: 0 to run the VM; 1 to exit with status 0 (--help, --version);
 * -1 to exit with VMM_EXIT_SETUP (an unknown, malformed or missing option,
 * a value out of range, or out of memory copying a --disk or --net
 * string). Call
 * vmm_options_fini() whatever it returns.
 */
int vmm_options_parse(int argc, char **argv, struct vmm_options *o);

/**
 * vmm_options_check_consoles() - check that --console and
 * --virtio-console name something and that no two devices share stdin,
 * stdout or an output file.
 * Return: 0, or -1 after printing why.
 */
int vmm_options_check_consoles(const struct vmm_options *o);

/** vmm_options_fini() - free the copies vmm_options_parse() made. */
void vmm_options_fini(struct vmm_options *o);

#endif /* VDK_VMM_OPTIONS_H */
