/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest: a freestanding x86-64 guest that drives virtio-mmio
 * devices through vdk's driver side (<vdk/driver.h>) and reports one line
 * per check on the COM1 UART:
 *
 *   VDK-TESTGUEST: <check>: PASS|FAIL <detail>
 *   VDK-TESTGUEST: done N passed, M failed
 *
 * Everything here is single-threaded, runs with interrupts off and
 * identity-mapped memory (virtual address = guest-physical address).
 */
#ifndef VDK_TESTGUEST_GUEST_H
#define VDK_TESTGUEST_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/driver.h>

/* ---- lib.c: what the compiler may call, and small string helpers ---- */

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
/** Whether the @n bytes at @a equal the NUL-terminated @lit's first @n. */
bool mem_eq_str(const void *a, size_t n, const char *lit);

/* ---- uart.c: COM1 16550 output, printf subset ----------------------- */

/** Program COM1 (0x3f8) for 115200 8N1, no interrupts, FIFOs on. */
void uart_init(void);
/**
 * Formatted output to COM1: %s %c %d %u %x %lx %lu %ld %llx %llu %p and
 * %0Nx / %Nd (zero or space padding), %%. '\n' becomes "\r\n".
 */
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** gprintf into @buf (at most @len bytes, always NUL-terminated). */
int gsnprintf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- report (uart.c) ------------------------------------------------- */

/** Report one check: "VDK-TESTGUEST: <name>: PASS|FAIL <detail>". */
void check(const char *name, bool pass, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/** Informational line: "VDK-TESTGUEST: info: ...". */
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** The final line: "VDK-TESTGUEST: done N passed, M failed". */
void report_done(void);

/* ---- io.h-ish --------------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/** Time-stamp counter (for rough timings in the report). */
/* PCI configuration mechanism #1 (ports 0xCF8/0xCFC), bus 0, function 0. */
static inline uint32_t pci_cfg_read32(uint32_t slot, uint16_t off)
{
	outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	return inl(0xcfc);
}

static inline void pci_cfg_write32(uint32_t slot, uint16_t off, uint32_t v)
{
	outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	outl(0xcfc, v);
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* ---- discovery (acpi.c, cmdline.c) ----------------------------------- */

#define MAX_DEVICES 32

/** One virtio-mmio window found by discovery. */
struct mmio_window {
	uint64_t base; /**< guest-physical */
	uint64_t size; /**< bytes */
	uint32_t irq;  /**< GSI (unused: the guest polls) */
};

/** ACPI generic address (ACPI 6.4 §5.2.3.2), as found in the FADT. */
struct acpi_gas {
	uint8_t space; /**< 0 system memory, 1 system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
};

/** What the ACPI tables told us. */
struct acpi_info {
	uint64_t rsdp;		   /**< where the RSDP was found, 0 if none */
	bool hw_reduced;	   /**< FADT flag HW_REDUCED_ACPI */
	struct acpi_gas sleep_ctl; /**< FADT SLEEP_CONTROL_REG (or zero) */
	uint32_t pm1a_cnt;	   /**< FADT PM1a control block port, or 0 */
	bool have_s5;		   /**< \_S5 found in the DSDT */
	uint8_t s5_slp_typ;	   /**< its SLP_TYPa */
	size_t num_windows;	   /**< LNRO0005 devices found */
	struct mmio_window windows[MAX_DEVICES];
};

/**
 * acpi_scan() - find the RSDP (at @rsdp_hint if non-zero, else in
 * 0xe0000-0xfffff), then the XSDT (or RSDT), the FADT and DSDT; collect
 * the LNRO0005 windows, \_S5 and the sleep registers into @out.
 * Return: 0; -ENOENT if there is no RSDP; -EINVAL for a bad checksum or
 * a malformed table.
 */
int acpi_scan(uint64_t rsdp_hint, struct acpi_info *out);

/**
 * acpi_poweroff() - enter S5 through the FADT's sleep control register
 * (hardware-reduced ACPI, ACPI 6.4 §4.8.3.7) or PM1a control (fixed
 * hardware, §4.8.3.2.1). Returns only if that did not stop the VM.
 */
void acpi_poweroff(const struct acpi_info *ai);

/**
 * cmdline_devices() - collect "virtio_mmio.device=<size>@<base>:<irq>"
 * entries of @cmdline (the Linux syntax) into @w (at most @max).
 * Return: the number found.
 */
size_t cmdline_devices(const char *cmdline, struct mmio_window *w, size_t max);

/**
 * cmdline_value() - copy the value of "<key>=" in @cmdline (up to the next
 * space) into @buf (@len bytes, NUL-terminated).
 * Return: the value's length; -ENOENT if the key is absent.
 */
int cmdline_value(const char *cmdline, const char *key, char *buf, size_t len);

/* ---- memory (main.c) ---------------------------------------------------- */

/** Bump allocation from a static arena, zeroed, @align a power of two;
 * NULL when the arena is exhausted. Never freed. */
void *arena_alloc(size_t len, size_t align);

/**
 * memmap_is_ram() - whether any byte of [@addr, @addr + @len) lies in a
 * RAM entry (type 1) of the PVH memory map; false if there was no map.
 */
bool memmap_is_ram(uint64_t addr, uint64_t len);

/** Identity translation for the driver (virtual = guest-physical). */
extern const struct vdk_driver_hal guest_hal;

/* ---- devices (blk.c, misc.c) ----------------------------------------- */

/** A probed virtio-mmio device. */
struct guest_dev {
	struct vdk_driver_transport
		*t;	    /**< &mmio.transport or &pci.transport */
	uint32_t device_id; /**< virtio device type */
	struct vdk_driver_mmio mmio;
	struct vdk_driver_pci pci;
	unsigned int pci_slot;	/**< PCI device number (pci only) */
	struct mmio_window win; /**< virtio-mmio only */
	unsigned int index;	/**< order of discovery, for the report */
};

/**
 * struct gq - one driver virtqueue with its memory from the arena.
 */
struct gq {
	struct vdk_driver_virtq q;
	void *ring;
	struct vdk_driver_virtq_slot *slots;
	void *indirect; /**< indirect tables, if INDIRECT_DESC was offered */
	uint16_t size;
};

/**
 * gq_setup() - allocate (first time only) and configure queue @index with
 * up to @want entries (clamped to the device's maximum).
 * Return: 0 or the driver's -errno.
 */
int gq_setup(struct gq *g, struct guest_dev *d, uint16_t index, uint16_t want,
	     uint64_t features);

/**
 * gq_submit_wait() - add one chain, notify, poll the used ring (bounded).
 * Return: bytes the device wrote; -ETIMEDOUT; the driver's -errno.
 */
int gq_submit_wait(struct gq *g, const struct vdk_driver_buf *rd, uint16_t n_rd,
		   const struct vdk_driver_buf *wr, uint16_t n_wr);

/**
 * simple_init() - initialise @d with VERSION_1 and EVENT_IDX offered and
 * queues 0..@nq-1 of up to 8 entries in @qs (virtio 1.2 §3.1.1).
 * Return: 0 or the driver's -errno (FAILED is then set).
 */
int simple_init(struct guest_dev *d, struct gq *qs, uint16_t nq);

/** Drive a virtio-blk device through every blk check. */
void blk_run(struct guest_dev *d, const char *expect_serial);
/**
 * blk_read0_again() - read sector 0 of a disk blk_run() initialised, and
 * compare it with the host's pattern (*@host_pattern).
 * Return: the VIRTIO_BLK_S_* status; -ENODEV if blk_run() did not
 * initialise @d; -ETIMEDOUT or -EIO from the queue.
 */
int blk_read0_again(struct guest_dev *d, bool *host_pattern);
/** virtio-rng: 64 bytes, not all zero. */
void rng_run(struct guest_dev *d);
/**
 * rng_fill() - fill @len bytes of @buf from the virtio-rng requestq @g,
 * one request at a time (at most 16 requests).
 * Return: bytes received; the queue's -errno if none; *@requests: how
 * many requests were made.
 */
int rng_fill(struct gq *g, uint8_t *buf, uint32_t len, int *requests);
/** virtio-console: one line through port 0. */
void console_run(struct guest_dev *d);

/* ---- hostile mode (hostile.c) -------------------------------------------- */

/**
 * hostile_run() - with vdk.hostile=1: accesses to unclaimed MMIO and I/O
 * ports, a flood of them, then broken descriptor chains on the first
 * virtio-rng device (which must report DEVICE_NEEDS_RESET, recover after a
 * reset) while the other devices keep working. @win / @nwin: every window
 * discovery found; @devs / @ndev: the probed devices.
 */
void hostile_run(const struct mmio_window *win, size_t nwin,
		 struct guest_dev *devs, unsigned int ndev);

/** The sector the guest writes its pattern to (the host checks it). */
#define TESTGUEST_WRITE_SECTOR 8u
/** First bytes of the host-written sector 0. */
#define TESTGUEST_HOST_MAGIC "VDK-TESTDISK-0001"
/** First bytes of the guest-written sector. */
#define TESTGUEST_GUEST_MAGIC "VDK-GUEST-WROTE-"

#endif /* VDK_TESTGUEST_GUEST_H */
