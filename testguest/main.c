/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest main: read hvm_start_info, find the virtio-mmio devices
 * (ACPI DSDT and/or the command line), drive each one through vdk's
 * driver side, report, power off.
 *
 * Command line options (all optional):
 *   virtio_mmio.device=4K@0xADDR:IRQ  extra windows (see cmdline.c)
 *   vdk.serial=<id>     expected GET_ID of the writable virtio-blk disk
 *   vdk.expect=blk:2,rng:1,console:1  devices that must be found
 *   vdk.hostile=1       after the device checks, the hostile checks
 *                       (hostile.c)
 *
 * Memory: the driver's rings and buffers come from a static arena (bump
 * allocation, never freed); the guest runs identity-mapped, so a pointer
 * is its own guest-physical address.
 */
#include <asm-generic/errno.h>
#include <linux/virtio_ids.h>

#include "guest.h"

/* struct hvm_start_info (Xen public/arch-x86/hvm/start_info.h). */
#define HVM_START_MAGIC 0x336ec578u
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* 1: RAM */
	uint32_t reserved;
};

#define CMDLINE_MAX  1024
#define ARENA_SIZE   (1u << 20)
#define MEMMAP_SHOWN 16
#define MEMMAP_KEPT  32

extern char __image_start[], __image_end[];

static uint8_t arena[ARENA_SIZE] __attribute__((aligned(4096)));
static size_t arena_used;
static char cmdline[CMDLINE_MAX];
static struct acpi_info acpi;
static struct guest_dev devs[MAX_DEVICES];
/* RAM entries of the PVH memory map, for memmap_is_ram(). */
static struct {
	uint64_t addr, size;
} ram[MEMMAP_KEPT];
static size_t num_ram;

void *arena_alloc(size_t len, size_t align)
{
	size_t start = (arena_used + align - 1) & ~(align - 1);
	void *p;

	if (start > ARENA_SIZE || len > ARENA_SIZE - start)
		return NULL;
	p = arena + start;
	arena_used = start + len;
	memset(p, 0, len);
	return p;
}

static uint64_t identity_virt_to_phys(void *opaque, const void *addr,
				      size_t len)
{
	uint64_t a = (uintptr_t)addr, end;

	(void)opaque;
	/* Everything the guest owns lies in its image below 4 GiB. */
	if (__builtin_add_overflow(a, (uint64_t)len, &end) ||
	    end > (1ull << 32))
		return VDK_DRIVER_BAD_GPA;
	return a;
}

const struct vdk_driver_hal guest_hal = {
	.opaque = NULL,
	.virt_to_phys = identity_virt_to_phys,
};

/* ---- start info ------------------------------------------------------- */

static void read_cmdline(uint64_t paddr)
{
	const volatile char *src = (const volatile char *)(uintptr_t)paddr;
	size_t i;

	cmdline[0] = '\0';
	if (!paddr || paddr >= (1ull << 32) - CMDLINE_MAX)
		return;
	for (i = 0; i + 1 < CMDLINE_MAX && src[i]; i++)
		cmdline[i] = src[i];
	cmdline[i] = '\0';
}

/* Is the guest image inside a RAM entry of the memory map? */
static bool check_memmap(const struct hvm_start_info *si)
{
	const struct hvm_memmap_table_entry *e;
	uint64_t lo = (uintptr_t)__image_start, hi = (uintptr_t)__image_end;
	uint32_t n = si->memmap_entries;
	bool covered = false;

	if (si->version < 1 || !si->memmap_paddr || n == 0 || n > 128 ||
	    si->memmap_paddr >= (1ull << 32) - n * sizeof(*e))
		return false;
	e = (const struct hvm_memmap_table_entry *)(uintptr_t)si->memmap_paddr;
	for (uint32_t i = 0; i < n; i++) {
		struct hvm_memmap_table_entry c = e[i];

		if (i < MEMMAP_SHOWN)
			info("memmap %u: 0x%lx-0x%lx type %u", i, c.addr,
			     c.addr + c.size, c.type);
		if (c.type == 1 && c.addr <= lo && hi - c.addr <= c.size)
			covered = true;
		if (c.type == 1 && num_ram < MEMMAP_KEPT) {
			ram[num_ram].addr = c.addr;
			ram[num_ram++].size = c.size;
		}
	}
	return covered;
}

bool memmap_is_ram(uint64_t addr, uint64_t len)
{
	for (size_t i = 0; i < num_ram; i++) {
		/* Overlap of [addr, addr + len) and the entry, without
		 * computing either end (no overflow). */
		if (addr >= ram[i].addr ? addr - ram[i].addr < ram[i].size
					: ram[i].addr - addr < len)
			return true;
	}
	return false;
}

/* ---- devices -------------------------------------------------------------- */

static const char *type_name(uint32_t id)
{
	switch (id) {
	case VIRTIO_ID_BLOCK:
		return "blk";
	case VIRTIO_ID_RNG:
		return "rng";
	case VIRTIO_ID_CONSOLE:
		return "console";
	default:
		return "other";
	}
}

static size_t add_windows(struct mmio_window *all, size_t n,
			  const struct mmio_window *w, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		bool dup = false;

		for (size_t j = 0; j < n; j++)
			dup |= all[j].base == w[i].base;
		if (!dup && n < MAX_DEVICES)
			all[n++] = w[i];
	}
	return n;
}

/* "blk:2,rng:1": how many devices of type @name are expected; -1 if the
 * option does not mention it. */
static int expected(const char *name)
{
	char v[128];
	size_t nlen = strlen(name);

	if (cmdline_value(cmdline, "vdk.expect", v, sizeof(v)) < 0)
		return -1;
	for (const char *p = v; *p;) {
		const char *item = p;

		while (*p && *p != ',')
			p++;
		if ((size_t)(p - item) > nlen + 1 &&
		    memcmp(item, name, nlen) == 0 && item[nlen] == ':') {
			int n = 0;

			for (const char *d = item + nlen + 1; d < p; d++) {
				if (*d < '0' || *d > '9' || n > 1000)
					return -1;
				n = n * 10 + (*d - '0');
			}
			return n;
		}
		if (*p == ',')
			p++;
	}
	return -1;
}

static unsigned int probe_all(const struct mmio_window *w, size_t n,
			      unsigned int counts[4])
{
	unsigned int found = 0;

	for (size_t i = 0; i < n; i++) {
		struct guest_dev *d = &devs[found];
		int ret;

		ret = vdk_driver_mmio_init(&d->mmio, w[i].base,
					   &vdk_driver_mmio_volatile, NULL);
		if (ret == -ENODEV)
			continue; /* a transport with nothing plugged in */
		if (ret < 0) {
			check("probe", false, "window 0x%lx: %s (%d)",
			      w[i].base,
			      ret == -EPROTONOSUPPORT
				      ? "legacy virtio-mmio (version 1); "
					"QEMU: -global "
					"virtio-mmio.force-legacy=false"
				      : "no virtio-mmio device",
			      ret);
			continue;
		}
		d->win = w[i];
		d->t = &d->mmio.transport;
		d->device_id = d->mmio.device_id;
		d->index = found++;
		info("device %u at 0x%lx irq %u: %s (id %u, vendor 0x%x)",
		     d->index, w[i].base, w[i].irq,
		     type_name(d->mmio.device_id), d->mmio.device_id,
		     d->mmio.vendor_id);
		switch (d->mmio.device_id) {
		case VIRTIO_ID_BLOCK:
			counts[0]++;
			break;
		case VIRTIO_ID_RNG:
			counts[1]++;
			break;
		case VIRTIO_ID_CONSOLE:
			counts[2]++;
			break;
		default:
			counts[3]++;
			break;
		}
	}
	return found;
}

/* ---- virtio-pci: bus 0 through ports 0xCF8/0xCFC ------------------------ */

static uint32_t cf8_read32(void *opaque, uint16_t off)
{
	return pci_cfg_read32((uint32_t)(uintptr_t)opaque, off);
}

static void cf8_write32(void *opaque, uint16_t off, uint32_t v)
{
	pci_cfg_write32((uint32_t)(uintptr_t)opaque, off, v);
}

static const struct vdk_driver_pci_cfg_access cf8_access = {
	.read32 = cf8_read32, .write32 = cf8_write32};

/* Every virtio function on bus 0, its BARs as the firmware (the VMM)
 * placed them. */
static unsigned int probe_pci(unsigned int found, unsigned int counts[4])
{
	for (uint32_t slot = 0; slot < 32 && found < MAX_DEVICES; slot++) {
		void *op = (void *)(uintptr_t)slot;
		uint32_t id = cf8_read32(op, 0);
		struct guest_dev *d = &devs[found];
		int ret;

		if ((id & 0xffff) != 0x1af4)
			continue;
		ret = vdk_driver_pci_init(&d->pci, &cf8_access, op,
					  &vdk_driver_mmio_volatile, NULL,
					  NULL);
		if (ret < 0) {
			check("probe", false, "pci 00:%02x.0 (%04x:%04x): %d",
			      slot, id & 0xffff, id >> 16, ret);
			continue;
		}
		d->t = &d->pci.transport;
		d->device_id = d->pci.device_type;
		d->pci_slot = slot;
		d->index = found++;
		info("device %u at pci 00:%02x.0 bar 0x%lx: %s (id %u, "
		     "%u MSI-X vectors)",
		     d->index, slot, d->pci.common, type_name(d->device_id),
		     d->device_id, d->pci.msix_vectors);
		switch (d->device_id) {
		case VIRTIO_ID_BLOCK:
			counts[0]++;
			break;
		case VIRTIO_ID_RNG:
			counts[1]++;
			break;
		case VIRTIO_ID_CONSOLE:
			counts[2]++;
			break;
		default:
			counts[3]++;
			break;
		}
	}
	return found;
}

static void check_expected(const unsigned int counts[4])
{
	static const char *const names[3] = {"blk", "rng", "console"};

	for (int i = 0; i < 3; i++) {
		int want = expected(names[i]);

		if (want >= 0)
			check("devices", counts[i] == (unsigned int)want,
			      "%s: found %u, expected %d", names[i], counts[i],
			      want);
	}
}

static void run_devices(unsigned int n, const char *serial)
{
	for (unsigned int i = 0; i < n; i++) {
		switch (devs[i].device_id) {
		case VIRTIO_ID_BLOCK:
			blk_run(&devs[i], serial);
			break;
		case VIRTIO_ID_RNG:
			rng_run(&devs[i]);
			break;
		case VIRTIO_ID_CONSOLE:
			console_run(&devs[i]);
			break;
		default:
			break;
		}
	}
}

/* ---- entry ------------------------------------------------------------------ */

#define ISA_DEBUG_EXIT_PORT 0xf4

void guest_main(uint32_t start_info_paddr);

void guest_main(uint32_t start_info_paddr)
{
	struct mmio_window windows[MAX_DEVICES], from_cmdline[MAX_DEVICES];
	unsigned int counts[4] = {0}, found, npci;
	struct hvm_start_info si = {0};
	size_t n_acpi = 0, n_cmd, n;
	char serial[32] = "", hostile[8] = "";
	uint64_t t0 = rdtsc();
	int ret;

	uart_init();
	gprintf("\nVDK-TESTGUEST: start (start_info at 0x%x)\n",
		start_info_paddr);

	if (start_info_paddr)
		si = *(const struct hvm_start_info *)(uintptr_t)
			     start_info_paddr;
	check("pvh-start-info", si.magic == HVM_START_MAGIC,
	      "magic 0x%x version %u", si.magic, si.version);
	if (si.magic == HVM_START_MAGIC) {
		read_cmdline(si.cmdline_paddr);
		check("memmap", check_memmap(&si),
		      "%u entries; image 0x%lx-0x%lx", si.memmap_entries,
		      (uint64_t)(uintptr_t)__image_start,
		      (uint64_t)(uintptr_t)__image_end);
	}
	info("cmdline \"%s\"", cmdline);
	cmdline_value(cmdline, "vdk.serial", serial, sizeof(serial));
	cmdline_value(cmdline, "vdk.hostile", hostile, sizeof(hostile));

	ret = acpi_scan(si.magic == HVM_START_MAGIC ? si.rsdp_paddr : 0, &acpi);
	if (ret == 0) {
		n_acpi = acpi.num_windows;
		info("acpi: rsdp 0x%lx (hint 0x%lx), %s, sleep ctl %u:0x%lx, "
		     "pm1a_cnt 0x%x, _S5 %s %u, %zu LNRO0005",
		     acpi.rsdp, si.rsdp_paddr,
		     acpi.hw_reduced ? "hw-reduced" : "fixed hw",
		     acpi.sleep_ctl.space, acpi.sleep_ctl.address,
		     acpi.pm1a_cnt, acpi.have_s5 ? "yes" : "no",
		     acpi.s5_slp_typ, n_acpi);
	} else {
		info("acpi: none (%d)", ret);
	}
	n_cmd = cmdline_devices(cmdline, from_cmdline, MAX_DEVICES);
	n = add_windows(windows, 0, acpi.windows, n_acpi);
	n = add_windows(windows, n, from_cmdline, n_cmd);
	found = probe_all(windows, n, counts);
	npci = probe_pci(found, counts) - found;
	found += npci;
	check("discovery", found > 0,
	      "%zu windows (acpi %zu, cmdline %zu), %u pci", n, n_acpi, n_cmd,
	      npci);

	check_expected(counts);
	run_devices(found, serial);
	if (hostile[0] == '1' && hostile[1] == '\0')
		hostile_run(windows, n, devs, found);

	info("tsc cycles from entry to done: %lu", rdtsc() - t0);
	report_done();

	acpi_poweroff(&acpi);
	/* Still here: QEMU's isa-debug-exit, if present, exits (status 1). */
	outb(ISA_DEBUG_EXIT_PORT, 0);
	gprintf("VDK-TESTGUEST: poweroff failed, halting\n");
}
