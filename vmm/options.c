/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-vmm's command line (options.h): getopt_long over the long options
 * --help lists, sizes with K/M/G/T suffixes, --disk and --net through the
 * library's description of the devices' settings (<vdk/config.h>), and the
 * range checks that need nothing but the options.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#include <linux/virtio_ids.h>

#include <vdk/config.h>
#include <vdk/devices/net.h>
#include <vdk/spec/vhost_user.h>
#include <vdk/interrupt.h>
#include "vcpu.h"

#include "../tools/options.h"

#ifndef VMM_VERSION
#define VMM_VERSION "unknown"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vdk-vmm --kernel PATH [options]\n"
		"Boot a Linux kernel (bzImage, or ELF with a PVH note) in a "
		"KVM virtual machine.\n\n"
		"  --kernel PATH      kernel image (required)\n"
		"  --initrd PATH      initial ramdisk\n"
		"  --cmdline STR      appended to \"" VMM_CMDLINE_BASE "\"\n"
		"  --memory SIZE      guest RAM, MiB or with a K/M/G/T suffix "
		"(default 512M; 16M..1T)\n"
		"  --cpus N           vCPUs (default 1)\n"
		"  --disk PATH[,SETTING]...\n"
		"                     virtio-blk disk on the image PATH "
		"(repeatable); settings\n"
		"                     (readonly is also ro, direct also "
		"cache=none):\n");
	vdk_tool_settings_help(f, vdk_blk_config_key, 1, "    ", "", NULL);
	fprintf(f,
		"  --rng              virtio-rng device\n"
		"  --vhost-user-blk SOCKET[,num-queues=N]\n"
		"                     virtio-blk served by a vhost-user "
		"back-end at SOCKET (repeatable)\n"
		"  --vhost-user-rng SOCKET\n"
		"                     virtio-rng served by a vhost-user "
		"back-end (repeatable)\n"
		"  --vhost-user "
		"TYPE,SOCKET[,num-queues=N][,config-size=BYTES]\n"
		"                     any vhost-user back-end; TYPE is blk, "
		"rng or a virtio device ID\n"
		"  --net SETTING[,SETTING]...\n"
		"                     virtio-net device on a tap interface or "
		"a loopback, e.g.\n"
		"                     tap=tap0,queue-pairs=2; settings (one of "
		"tap, tap-fd,\n"
		"                     loopback):\n");
	vdk_tool_settings_help(f, vdk_net_config_key, 0, "    ", "", NULL);
	fprintf(f,
		"  --console stdio|FILE  COM1 output (default stdio; on a "
		"terminal Ctrl-A x quits)\n"
		"  --virtio-console stdio|FILE\n"
		"                     virtio-console device, port 0 (Linux: "
		"hvc0, add --cmdline console=hvc0):\n"
		"                     output to stdout or FILE (truncated); "
		"stdio also reads stdin\n"
		"                     (line by line on a terminal; Ctrl-C "
		"stops the VM) and needs\n"
		"                     --console FILE, e.g. --console "
		"/dev/null\n"
		"  --mmio-cmdline     also list virtio-mmio devices on the "
		"kernel command line\n"
		"  --transport mmio|pci\n"
		"                     how every virtio device is attached: "
		"virtio-mmio (default) or\n"
		"                     virtio-pci (modern, MSI-X) on a PCI host "
		"bridge (ECAM, 0xCF8)\n"
		"  --timeout SECONDS  stop a guest still running after "
		"SECONDS (a watchdog; exit 5)\n"
		"  -h, --help, -V, --version\n"
		"Options that take a value may be given once (--disk and "
		"--vhost-user*: repeatable);\nwrite a comma inside a --disk "
		"PATH or a setting's value as ',,'.\n\n"
		"Exit status: 0 guest powered off, 1 setup error, 2 guest "
		"reboot, 3 guest crash (triple fault), 4 VMM error, 5 "
		"--timeout "
		"expired, 128+n signal n.\n");
}

int vmm_die_setup(const char *fmt, ...)
{
	va_list ap;

	fputs("vdk-vmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return VMM_EXIT_SETUP;
}

/* Parse SIZE: a number of MiB, or with a K, M, G or T suffix. */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v, mul = MIB;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = MIB;
		end++;
		break;
	case 'g':
	case 'G':
		mul = GIB;
		end++;
		break;
	case 't':
	case 'T':
		mul = 1ull << 40;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end || __builtin_mul_overflow(v, mul, &v))
		return -ERANGE;
	*out = v;
	return 0;
}

/* Parse "SOCKET[,num-queues=N][,config-size=BYTES]" for @device_id; with
 * @generic, "TYPE," comes first. */
static int parse_vhost_user(const char *arg, bool generic, uint32_t device_id,
			    struct vdk_vhost_user_device_config *v)
{
	char *copy = strdup(arg), *save = NULL, *tok, *end;
	unsigned long n;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	memset(v, 0, sizeof(*v));
	v->device_id = device_id;
	if (arg[0] == ',') {
		free(copy);
		return -EINVAL;
	}
	tok = strtok_r(copy, ",", &save);
	if (tok && generic) {
		if (!strcmp(tok, "blk")) {
			v->device_id = VIRTIO_ID_BLOCK;
		} else if (!strcmp(tok, "rng")) {
			v->device_id = VIRTIO_ID_RNG;
		} else {
			errno = 0;
			n = strtoul(tok, &end, 10);
			if (errno || *end || n == 0 || n > 0xffff)
				r = -EINVAL;
			v->device_id = (uint32_t)n;
		}
		tok = strtok_r(NULL, ",", &save);
	}
	if (!tok) {
		free(copy);
		return -EINVAL;
	}
	v->socket_path = strdup(tok);
	while (r == 0 && (tok = strtok_r(NULL, ",", &save))) {
		const char *val = strchr(tok, '=');

		errno = 0;
		n = val ? strtoul(val + 1, &end, 10) : 0;
		if (!val || errno || *end || !val[1] || val[1] == '-')
			r = -EINVAL;
		else if (!strncmp(tok, "num-queues=", 11) && n >= 1 &&
			 n <= VDK_DEVICE_MAX_QUEUES)
			v->num_queues = (uint16_t)n;
		else if (generic && !strncmp(tok, "config-size=", 12) &&
			 n <= VHOST_USER_MAX_CONFIG_SIZE)
			v->config_size = (uint32_t)n;
		else
			r = -EINVAL;
	}
	free(copy);
	if (r == 0 && !v->socket_path)
		r = -ENOMEM;
	return r;
}

/* --disk PATH[,SETTING]...: the blk device's settings (<vdk/config.h>). */
static int parse_disk(const char *arg, struct vdk_blk_config *d)
{
	char msg[VDK_CONFIG_MSG_LEN];

	if (vdk_blk_config_parse(d, arg, msg, sizeof(msg)) < 0)
		return vmm_die_setup("--disk %s: %s (see --help)", arg, msg),
		       -1;
	return 0;
}

/* --net SETTING[,SETTING]...: the net device's settings, complete. */
static int parse_net(const char *arg, struct vmm_options *o)
{
	char msg[VDK_CONFIG_MSG_LEN];

	o->has_net = true;
	if (vdk_net_config_parse(&o->net, arg, msg, sizeof(msg)) < 0 ||
	    vdk_net_config_check(&o->net, msg, sizeof(msg)) < 0)
		return vmm_die_setup("bad --net %s: %s (see --help)", arg, msg),
		       -1;
	return 0;
}

int vmm_options_parse(int argc, char **argv, struct vmm_options *o)
{
	enum {
		O_KERNEL = 256,
		O_INITRD,
		O_CMDLINE,
		O_MEMORY,
		O_CPUS,
		O_DISK,
		O_RNG,
		O_VU_BLK,
		O_VU_RNG,
		O_VU,
		O_CONSOLE,
		O_VCONSOLE,
		O_MMIO_CMDLINE,
		O_NET,
		O_TRANSPORT,
		O_TIMEOUT,
	};
	static const struct option longopts[] = {
		{"kernel", required_argument, NULL, O_KERNEL},
		{"initrd", required_argument, NULL, O_INITRD},
		{"cmdline", required_argument, NULL, O_CMDLINE},
		{"memory", required_argument, NULL, O_MEMORY},
		{"cpus", required_argument, NULL, O_CPUS},
		{"disk", required_argument, NULL, O_DISK},
		{"rng", no_argument, NULL, O_RNG},
		{"vhost-user-blk", required_argument, NULL, O_VU_BLK},
		{"vhost-user-rng", required_argument, NULL, O_VU_RNG},
		{"vhost-user", required_argument, NULL, O_VU},
		{"net", required_argument, NULL, O_NET},
		{"console", required_argument, NULL, O_CONSOLE},
		{"virtio-console", required_argument, NULL, O_VCONSOLE},
		{"mmio-cmdline", no_argument, NULL, O_MMIO_CMDLINE},
		{"transport", required_argument, NULL, O_TRANSPORT},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct vdk_tool_cli cli;
	char *end;
	int c;

	o->memory = VMM_MEM_DEFAULT;
	o->cpus = 1;
	o->console = "stdio";
	o->cmdline = "";
	vdk_tool_cli_init(&cli, "vdk-vmm", longopts);
	vdk_tool_cli_repeatable(&cli, O_DISK);
	vdk_tool_cli_repeatable(&cli, O_VU_BLK);
	vdk_tool_cli_repeatable(&cli, O_VU_RNG);
	vdk_tool_cli_repeatable(&cli, O_VU);
	while ((c = vdk_tool_cli_next(&cli, argc, argv, "hV")) != -1) {
		switch (c) {
		case O_KERNEL:
			o->kernel = optarg;
			break;
		case O_INITRD:
			o->initrd = optarg;
			break;
		case O_CMDLINE:
			o->cmdline = optarg;
			break;
		case O_CONSOLE:
			o->console = optarg;
			break;
		case O_VCONSOLE:
			o->vconsole = optarg;
			break;
		case O_RNG:
			o->rng = true;
			break;
		case O_NET:
			if (parse_net(optarg, o) < 0)
				return -1;
			break;
		case O_MMIO_CMDLINE:
			o->mmio_cmdline = true;
			break;
		case O_TRANSPORT:
			if (!strcmp(optarg, "pci")) {
				o->pci = true;
			} else if (!strcmp(optarg, "mmio")) {
				o->pci = false;
			} else {
				vmm_die_setup("--transport %s: mmio or pci",
					      optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("vdk-vmm " VMM_VERSION "\n");
			return 1;
		case O_MEMORY:
			if (parse_size(optarg, &o->memory) < 0) {
				vmm_die_setup(
					"--memory %s: not a size (e.g. 512M, "
					"2G)",
					optarg);
				return -1;
			}
			break;
		case O_CPUS:
			errno = 0;
			o->cpus = (unsigned int)strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || o->cpus == 0 ||
			    o->cpus > VMM_MAX_VCPUS) {
				vmm_die_setup("--cpus %s: must be 1..%u",
					      optarg, VMM_MAX_VCPUS);
				return -1;
			}
			break;
		case O_TIMEOUT: {
			unsigned long t;

			errno = 0;
			t = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-' ||
			    t == 0 || t > 86400) {
				vmm_die_setup("--timeout %s: must be 1..86400 "
					      "seconds",
					      optarg);
				return -1;
			}
			o->timeout = (unsigned int)t;
			break;
		}
		case O_DISK:
			if (o->num_disks == VMM_MAX_DISKS) {
				vmm_die_setup("at most %u --disk options",
					      VMM_MAX_DISKS);
				return -1;
			}
			if (parse_disk(optarg, &o->disks[o->num_disks++]) < 0)
				return -1;
			break;
		case O_VU_BLK:
		case O_VU_RNG:
		case O_VU: {
			const char *name = c == O_VU_BLK   ? "--vhost-user-blk"
					   : c == O_VU_RNG ? "--vhost-user-rng"
							   : "--vhost-user";
			const char *form =
				c == O_VU_BLK ? "SOCKET[,num-queues=N]"
				: c == O_VU_RNG
					? "SOCKET"
					: "TYPE,SOCKET[,num-queues=N]"
					  "[,config-size=BYTES] (TYPE: blk, "
					  "rng or a virtio device ID)";

			if (o->num_vhost_user == VMM_MAX_VHOST_USER) {
				vmm_die_setup("at most %u vhost-user devices",
					      VMM_MAX_VHOST_USER);
				return -1;
			}
			if (parse_vhost_user(
				    optarg, c == O_VU,
				    c == O_VU_RNG ? VIRTIO_ID_RNG
						  : VIRTIO_ID_BLOCK,
				    &o->vhost_user[o->num_vhost_user++]) < 0 ||
			    (c == O_VU_RNG && strchr(optarg, ','))) {
				vmm_die_setup("%s %s: expected %s", name,
					      optarg, form);
				return -1;
			}
			break;
		}
		default:
			return -1; /* reported by vdk_tool_cli_next() */
		}
	}
	if (optind < argc) {
		vmm_die_setup("unexpected argument: %s (see --help)",
			      argv[optind]);
		return -1;
	}
	if (!o->kernel) {
		vmm_die_setup("--kernel PATH is required (see --help)");
		return -1;
	}
	if (o->memory < VMM_MEM_MIN || o->memory > VMM_MEM_MAX ||
	    o->memory % MIB) {
		vmm_die_setup("--memory: %llu bytes is %s (allowed: 16M to 1T, "
			      "a whole number of MiB)",
			      (unsigned long long)o->memory,
			      o->memory < VMM_MEM_MIN	? "too small"
			      : o->memory > VMM_MEM_MAX ? "too large"
							: "not a whole MiB");
		return -1;
	}
	return 0;
}

/* --virtio-console: one device per stdin/stdout, one writer per file. */
static int check_vconsole(const struct vmm_options *o)
{
	if (!o->vconsole)
		return 0;
	if (o->vconsole[0] == '\0')
		return vmm_die_setup(
			       "--virtio-console: expected stdio or a file "
			       "name"),
		       -1;
	if (!strcmp(o->vconsole, "stdio") && !strcmp(o->console, "stdio"))
		return vmm_die_setup(
			       "--virtio-console stdio: stdin and stdout "
			       "already belong to COM1 (--console stdio, the "
			       "default); send COM1 elsewhere with --console "
			       "FILE (e.g. /dev/null)"),
		       -1;
	if (!strcmp(o->vconsole, o->console))
		return vmm_die_setup("--virtio-console %s: also the --console "
				     "file; give each its own",
				     o->vconsole),
		       -1;
	return 0;
}

int vmm_options_check_consoles(const struct vmm_options *o)
{
	if (strcmp(o->console, "stdio") && o->console[0] == '\0')
		return vmm_die_setup("--console: expected stdio or a file "
				     "name"),
		       -1;
	return check_vconsole(o);
}

void vmm_options_fini(struct vmm_options *o)
{
	for (size_t i = 0; i < o->num_disks; i++)
		vdk_blk_config_fini(&o->disks[i]);
	vdk_net_config_fini(&o->net);
	for (size_t i = 0; i < o->num_vhost_user; i++)
		free((char *)o->vhost_user[i].socket_path);
}
