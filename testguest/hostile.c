/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest hostile mode (vdk.hostile=1): the guest breaks the rules on
 * purpose. The VMM must log (rate-limited) and ignore accesses nobody
 * claims, and a misbehaving driver must stop only its device, never the
 * VMM (virtio 1.2 §2.1.2 DEVICE_NEEDS_RESET).
 *
 *   hostile.mmio.past-windows  reads and writes of 1/2/4/8 bytes just past
 *                              the highest virtio-mmio window: reads give
 *                              all zeroes or all ones, writes do not stick
 *   hostile.mmio.hole          the same at HOSTILE_HOLE (not RAM, no device)
 *   hostile.mmio.flood         HOSTILE_FLOOD unclaimed MMIO accesses
 *   hostile.pio                in/out of 1/2/4 bytes and rep ins/outs at
 *                              unclaimed I/O ports; then a flood of them
 *   hostile.rng.bad-addr       a descriptor whose 8 KiB buffer lies outside
 *                              guest RAM: DEVICE_NEEDS_RESET, no used
 *                              element, a configuration change interrupt,
 *                              and a valid request posted afterwards is not
 *                              served ("stopped")
 *   hostile.rng.bad-addr-small the same with 64 bytes; "stopped", or
 *                              "served" (used, and the device goes on:
 *                              QEMU 7.2, see README.md)
 *   hostile.rng.loop           two descriptors that chain to each other
 *                              through next: the same outcome
 *   hostile.rng.*-recovery     reset (status 0), initialise again, 64 bytes
 *   hostile.rng.repeat         HOSTILE_REPEAT rounds of loop + reset, then
 *                              a valid read (the VMM's messages about them
 *                              stay rate-limited)
 *   hostile.others-alive       every virtio-blk disk still reads sector 0
 *                              and shows no DEVICE_NEEDS_RESET
 *
 * The checks reach into the driver's rings (struct vdk_driver_virtq's
 * desc/avail/used) to post chains vdk_driver_virtq_add() would refuse to
 * build; the queue is set up again after each, so the driver's own
 * bookkeeping never sees them. That the guest prints the next line at all
 * shows the VMM kept running; the scripts check that it exits normally.
 */
#include <asm-generic/errno.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "guest.h"

/** Not RAM under either VMM with < 2 GiB of RAM, and no device there. */
#define HOSTILE_HOLE 0x80000000ull
/** Unclaimed I/O ports: COM2 (absent) and a port nothing decodes. */
#define HOSTILE_PORT_A 0x2f8u
#define HOSTILE_PORT_B 0xc000u
/** Unclaimed accesses in each flood. */
#define HOSTILE_FLOOD 1000u
/** A buffer address far outside guest RAM (64 TiB). */
#define HOSTILE_BAD_GPA 0x400000000000ull
/** How long a device gets to react to a broken chain (TSC cycles). */
#define HOSTILE_WAIT_CYCLES 3000000000ull
/** How long a stopped device is watched for a used element it must not
 * produce (TSC cycles). */
#define HOSTILE_QUIET_CYCLES 100000000ull
/** Rounds of break-and-reset in hostile.rng.repeat. */
#define HOSTILE_REPEAT 50u
#define RNG_BYTES      64u

/** Written to unclaimed MMIO; must not read back. */
#define POISON64 0x0123456789abcdefull

static bool absent(uint64_t v, unsigned int bytes)
{
	uint64_t ones = bytes == 8 ? ~0ull : (1ull << (8 * bytes)) - 1;

	return v == 0 || v == ones;
}

static const char *absent_name(uint64_t v)
{
	return v == 0 ? "zeroes" : "all ones";
}

/* ---- unclaimed MMIO and I/O ports ----------------------------------------- */

/* Read @addr at each width, write each width, read again. The guest maps
 * everything below 4 GiB (boot.S); the top GiB uncached. */
static void check_mmio(const char *name, uint64_t addr)
{
	volatile uint8_t *p8 = (volatile uint8_t *)(uintptr_t)addr;
	volatile uint16_t *p16 = (volatile uint16_t *)(uintptr_t)(addr + 8);
	volatile uint32_t *p32 = (volatile uint32_t *)(uintptr_t)(addr + 16);
	volatile uint64_t *p64 = (volatile uint64_t *)(uintptr_t)(addr + 24);
	uint64_t r8, r16, r32, r64, b32, b64;
	bool ok;

	if (addr + 32 > (1ull << 32) || memmap_is_ram(addr, 32)) {
		check(name, false, "0x%lx: RAM or not mapped below 4 GiB",
		      addr);
		return;
	}
	r8 = *p8;
	r16 = *p16;
	r32 = *p32;
	r64 = *p64;
	*p8 = (uint8_t)POISON64;
	*p16 = (uint16_t)POISON64;
	*p32 = (uint32_t)POISON64;
	*p64 = POISON64;
	b32 = *p32;
	b64 = *p64;
	ok = absent(r8, 1) && absent(r16, 2) && absent(r32, 4) &&
	     absent(r64, 8) && absent(b32, 4) && absent(b64, 8) &&
	     b64 != POISON64;
	check(name, ok,
	      "0x%lx: reads %s (0x%lx 0x%lx 0x%lx 0x%lx), after writes 0x%lx "
	      "0x%lx",
	      addr, ok ? absent_name(r64) : "MIXED", r8, r16, r32, r64, b32,
	      b64);
}

static void flood_mmio(uint64_t addr)
{
	volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)addr;
	uint64_t t0 = rdtsc(), cycles;
	uint32_t odd = 0;

	for (uint32_t i = 0; i < HOSTILE_FLOOD; i++) {
		if (i & 1) {
			*p = i;
		} else {
			uint32_t v = *p;

			odd += !absent(v, 4);
		}
	}
	cycles = rdtsc() - t0;
	check("hostile.mmio.flood", odd == 0,
	      "%u accesses at 0x%lx (half reads, %u not zeroes/ones), %lu "
	      "cycles each",
	      HOSTILE_FLOOD, addr, odd, cycles / HOSTILE_FLOOD);
}

static void check_pio(void)
{
	uint16_t words[8];
	uint8_t bytes[16];
	uint16_t *wp = words;
	const uint8_t *bp = bytes;
	uint64_t n = 8, m = sizeof(bytes), t0, cycles;
	uint32_t rb, rw, rl, rb2, odd = 0;
	bool ok;

	rb = inb(HOSTILE_PORT_A);
	rw = inw(HOSTILE_PORT_A);
	rl = inl(HOSTILE_PORT_B);
	outb(HOSTILE_PORT_A, 0x5a);
	outw(HOSTILE_PORT_A, 0x5aa5);
	outl(HOSTILE_PORT_B, 0x12345678);
	rb2 = inb(HOSTILE_PORT_A);
	/* String I/O: one exit with a count (KVM_EXIT_IO count > 1). */
	memset(words, 0x11, sizeof(words));
	__asm__ volatile("rep insw"
			 : "+D"(wp), "+c"(n)
			 : "d"((uint16_t)HOSTILE_PORT_B)
			 : "memory");
	memset(bytes, 0x5a, sizeof(bytes));
	__asm__ volatile("rep outsb"
			 : "+S"(bp), "+c"(m)
			 : "d"((uint16_t)HOSTILE_PORT_B)
			 : "memory");
	for (int i = 0; i < 8; i++)
		odd += words[i] != words[0] || !absent(words[i], 2);
	ok = absent(rb, 1) && absent(rw, 2) && absent(rl, 4) &&
	     absent(rb2, 1) && rb2 != 0x5a && odd == 0;
	check("hostile.pio", ok,
	      "ports 0x%x 0x%x: in 0x%x 0x%x 0x%x, after out 0x%x, rep insw "
	      "0x%x (%u odd)",
	      HOSTILE_PORT_A, HOSTILE_PORT_B, rb, rw, rl, rb2, words[0], odd);

	odd = 0;
	t0 = rdtsc();
	for (uint32_t i = 0; i < HOSTILE_FLOOD; i++) {
		if (i & 1)
			outb(HOSTILE_PORT_B, (uint8_t)i);
		else
			odd += !absent(inb(HOSTILE_PORT_B), 1);
	}
	cycles = rdtsc() - t0;
	check("hostile.pio.flood", odd == 0,
	      "%u accesses at port 0x%x (%u not zeroes/ones), %lu cycles each",
	      HOSTILE_FLOOD, HOSTILE_PORT_B, odd, cycles / HOSTILE_FLOOD);
}

/* ---- a misbehaving driver ---------------------------------------------------- */

static uint16_t used_idx(const struct gq *g)
{
	return *(const volatile uint16_t *)&g->q.used->idx;
}

/*
 * Put @descs[0..@n-1] at descriptor indexes @first.. and make the chain
 * starting at @head available, then notify, bypassing the driver's checks. x86 keeps
 * stores in order (TSO); the compiler barrier keeps the compiler from
 * publishing the index before the descriptors and ring entry, the fence
 * orders them before the notification (virtio 1.2 §2.7.13).
 */
static void post_raw(struct gq *g, uint16_t first,
		     const struct vring_desc *descs, uint16_t n, uint16_t head)
{
	struct vdk_driver_transport *t = g->q.t;
	volatile struct vring_avail *avail = g->q.avail;
	uint16_t idx = avail->idx;

	for (uint16_t i = 0; i < n; i++)
		g->q.desc[first + i] = descs[i];
	avail->ring[idx & (g->size - 1)] = head;
	__asm__ volatile("" ::: "memory");
	avail->idx = (uint16_t)(idx + 1);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	t->ops->notify(t->ctx, g->q.index);
}

/* Wait until the device sets DEVICE_NEEDS_RESET or uses a buffer. */
static uint64_t wait_reaction(struct gq *g, uint16_t used0, uint8_t *status)
{
	struct vdk_driver_transport *t = g->q.t;
	uint64_t t0 = rdtsc(), dt;

	for (;;) {
		*status = t->ops->get_status(t->ctx);
		dt = rdtsc() - t0;
		if ((*status & VIRTIO_CONFIG_S_NEEDS_RESET) ||
		    used_idx(g) != used0 || dt > HOSTILE_WAIT_CYCLES)
			return dt;
		cpu_relax();
	}
}

/* Reset, initialise again and read RNG_BYTES: the device recovered. */
static void check_recovery(const char *name, struct guest_dev *d, struct gq *g,
			   uint8_t *buf)
{
	int ret, got = -1, requests = 0;
	uint8_t status;

	ret = vdk_driver_reset(d->t);
	status = d->t->ops->get_status(d->t->ctx);
	if (ret == 0)
		ret = simple_init(d, g, 1);
	if (ret == 0) {
		memset(buf, 0, RNG_BYTES);
		got = rng_fill(g, buf, RNG_BYTES, &requests);
	}
	check(name, ret == 0 && got == (int)RNG_BYTES,
	      "status after reset 0x%x, init %d, %d bytes in %d requests",
	      status, ret, got, requests);
}

/* Wait (bounded) until the used index moves past @from. */
static uint16_t wait_used(const struct gq *g, uint16_t from, uint64_t cycles)
{
	uint64_t t0 = rdtsc();

	while (used_idx(g) == from && rdtsc() - t0 < cycles)
		cpu_relax();
	return used_idx(g);
}

/*
 * Post the broken chain @bad (head 0, @n descriptors), then a valid
 * request (descriptor @n) once the device reacted. Outcome "stopped":
 * DEVICE_NEEDS_RESET, a configuration change interrupt, no used element
 * for either (virtio 1.2 §2.1.2). With @may_serve, outcome "served" also
 * passes: the device returned the broken chain as used (id 0, length
 * within it), kept going and served the valid request too.
 */
static void check_broken_chain(const char *name, struct guest_dev *d,
			       struct gq *g, uint8_t *buf,
			       const struct vring_desc *bad, uint16_t n,
			       bool may_serve)
{
	struct vdk_driver_transport *t = d->t;
	struct vring_desc good = {
		.addr = (uintptr_t)buf, .len = 16, .flags = VRING_DESC_F_WRITE};
	uint16_t used0 = used_idx(g), used1, used2;
	struct vring_used_elem e = {0};
	uint32_t isr;
	uint64_t dt;
	uint8_t status;
	bool stopped;

	t->ops->ack_interrupt(t->ctx); /* forget older causes */
	post_raw(g, 0, bad, n, 0);
	dt = wait_reaction(g, used0, &status);
	used1 = used_idx(g);
	isr = t->ops->ack_interrupt(t->ctx);
	stopped = (status & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
	if (used1 != used0)
		e = *(volatile struct vring_used_elem *)&g->q.used
			     ->ring[used0 & (g->size - 1)];

	/* A stopped device serves nothing, valid or not. */
	post_raw(g, n, &good, 1, n);
	used2 = wait_used(g, used1,
			  stopped ? HOSTILE_QUIET_CYCLES : HOSTILE_WAIT_CYCLES);

	if (stopped || !may_serve || used1 == used0)
		check(name,
		      stopped && used1 == used0 && used2 == used0 &&
			      (isr & VDK_DRIVER_INT_CONFIG),
		      "%s after %lu cycles, status 0x%x, used idx %u->%u->%u, "
		      "InterruptStatus 0x%x",
		      stopped ? "stopped: DEVICE_NEEDS_RESET"
			      : "NO DEVICE_NEEDS_RESET",
		      dt, status, used0, used1, used2, isr);
	else
		check(name,
		      used1 == (uint16_t)(used0 + 1) && e.id == 0 &&
			      e.len <= bad[0].len &&
			      used2 == (uint16_t)(used1 + 1),
		      "served: used id %u len %u after %lu cycles, status "
		      "0x%x, a valid request after it: used idx %u->%u",
		      e.id, e.len, dt, status, used1, used2);
}

/*
 * HOSTILE_REPEAT rounds of: post @bad, wait for DEVICE_NEEDS_RESET, reset,
 * initialise again; then a valid read. The device's messages about it
 * must stay rate-limited (the scripts count them).
 */
static void check_repeat(struct guest_dev *d, struct gq *g, uint8_t *buf,
			 const struct vring_desc *bad, uint16_t n)
{
	struct vdk_driver_transport *t = d->t;
	unsigned int stopped = 0, rounds = 0;
	int ret = 0, got = -1, requests = 0;
	uint64_t t0 = rdtsc();
	uint8_t status;

	for (; rounds < HOSTILE_REPEAT && ret == 0; rounds++) {
		post_raw(g, 0, bad, n, 0);
		wait_reaction(g, used_idx(g), &status);
		stopped += (status & VIRTIO_CONFIG_S_NEEDS_RESET) != 0;
		ret = simple_init(d, g, 1); /* resets first */
	}
	t->ops->ack_interrupt(t->ctx);
	if (ret == 0)
		got = rng_fill(g, buf, RNG_BYTES, &requests);
	check("hostile.rng.repeat",
	      stopped == HOSTILE_REPEAT && got == (int)RNG_BYTES,
	      "%u rounds of broken chain + reset: %u stopped, init %d, then "
	      "%d bytes; %lu cycles per round",
	      rounds, stopped, ret, got, (rdtsc() - t0) / HOSTILE_REPEAT);
}

static void hostile_rng(struct guest_dev *d)
{
	static struct gq g;
	uint8_t *buf = arena_alloc(RNG_BYTES, 16);
	int ret, got, requests;
	struct vring_desc loop[2];
	/* Two pages: more than QEMU's one-page bounce buffer (see README). */
	struct vring_desc bad = {
		.addr = HOSTILE_BAD_GPA,
		.len = 8192,
		.flags = VRING_DESC_F_WRITE,
	};

	ret = buf ? simple_init(d, &g, 1) : -ENOMEM;
	got = ret == 0 ? rng_fill(&g, buf, RNG_BYTES, &requests) : ret;
	check("hostile.rng.before", got == (int)RNG_BYTES,
	      "device %u: init %d, %d bytes", d->index, ret, got);
	if (got != (int)RNG_BYTES)
		return;

	check_broken_chain("hostile.rng.bad-addr", d, &g, buf, &bad, 1, false);
	check_recovery("hostile.rng.bad-addr-recovery", d, &g, buf);

	/* 64 bytes outside RAM: vdk stops; QEMU 7.2 serves it through its
	 * bounce buffer (the bytes go nowhere). Either is safe. */
	bad.len = RNG_BYTES;
	check_broken_chain("hostile.rng.bad-addr-small", d, &g, buf, &bad, 1,
			   true);
	check_recovery("hostile.rng.bad-addr-small-recovery", d, &g, buf);

	/* 0 -> 1 -> 0 -> ...: valid buffers, no end (virtio 1.2 §2.7.5.2:
	 * a chain must not loop). */
	loop[0] = (struct vring_desc){.addr = (uintptr_t)buf,
				      .len = 16,
				      .flags = VRING_DESC_F_WRITE |
					       VRING_DESC_F_NEXT,
				      .next = 1};
	loop[1] = (struct vring_desc){.addr = (uintptr_t)(buf + 16),
				      .len = 16,
				      .flags = VRING_DESC_F_WRITE |
					       VRING_DESC_F_NEXT,
				      .next = 0};
	check_broken_chain("hostile.rng.loop", d, &g, buf, loop, 2, false);
	check_recovery("hostile.rng.loop-recovery", d, &g, buf);
	check_repeat(d, &g, buf, loop, 2);
}

/* ---- the other devices ----------------------------------------------------- */

static void check_others(struct guest_dev *devs, unsigned int ndev)
{
	unsigned int disks = 0, good = 0;

	for (unsigned int i = 0; i < ndev; i++) {
		struct vdk_driver_transport *t = devs[i].t;
		bool pattern;
		int s;

		if (devs[i].device_id != VIRTIO_ID_BLOCK)
			continue;
		disks++;
		s = blk_read0_again(&devs[i], &pattern);
		if (s == 0 && pattern && !vdk_driver_needs_reset(t))
			good++;
		else
			info("hostile: disk %u: status %d, pattern %d, "
			     "device status 0x%x",
			     i, s, pattern, t->ops->get_status(t->ctx));
	}
	check("hostile.others-alive", disks > 0 && good == disks,
	      "%u of %u virtio-blk disks read sector 0 after the rng broke",
	      good, disks);
}

/* ---- PCI (vdk-vmm --transport=pci) ------------------------------------------ */

/*
 * hostile.pci.absent     every slot without a function reads all-ones
 * hostile.pci.read-only  all-ones written over each virtio function's
 *                        identity (vendor/device, class, header type,
 *                        capability pointer) changes nothing
 * hostile.pci.cfg-window the VIRTIO_PCI_CAP_PCI_CFG window pointed at a BAR
 *                        that does not exist, past the BAR, with a bad
 *                        length: reads give 0
 * hostile.pci.bar-sizing BAR 0 sized (all-ones, decoding off) and put
 *                        back: the size is the BAR's, the device still
 *                        works (hostile.others-alive)
 */
static void hostile_pci(struct guest_dev *devs, unsigned int ndev)
{
	unsigned int absent = 0, bad = 0, ro_bad = 0, win_bad = 0, npci = 0;
	unsigned int size_bad = 0;
	uint32_t used = 0;

	for (unsigned int i = 0; i < ndev; i++)
		if (devs[i].t == &devs[i].pci.transport)
			used |= 1u << devs[i].pci_slot;
	for (uint32_t slot = 0; slot < 32; slot++) {
		if (used & (1u << slot))
			continue;
		absent++;
		for (uint16_t off = 0; off < 64; off += 4)
			bad += pci_cfg_read32(slot, off) != 0xffffffffu;
		pci_cfg_write32(slot, 4, 0xffffffffu);
	}
	check("hostile.pci.absent", bad == 0, "%u empty slots, %u odd dwords",
	      absent, bad);

	for (unsigned int i = 0; i < ndev; i++) {
		struct guest_dev *d = &devs[i];
		uint32_t slot = d->pci_slot, before[4], cap = 0;

		if (d->t != &d->pci.transport)
			continue;
		npci++;
		before[0] = pci_cfg_read32(slot, 0x00);
		before[1] = pci_cfg_read32(slot, 0x08);
		before[2] = pci_cfg_read32(slot, 0x0c) & 0x00ff0000u;
		before[3] = pci_cfg_read32(slot, 0x34);
		pci_cfg_write32(slot, 0x00, 0xffffffffu);
		pci_cfg_write32(slot, 0x08, 0xffffffffu);
		pci_cfg_write32(slot, 0x34, 0xffffffffu);
		ro_bad += pci_cfg_read32(slot, 0x00) != before[0];
		ro_bad += pci_cfg_read32(slot, 0x08) != before[1];
		ro_bad +=
			(pci_cfg_read32(slot, 0x0c) & 0x00ff0000u) != before[2];
		ro_bad += pci_cfg_read32(slot, 0x34) != before[3];

		/* Find the PCI_CFG capability (type 5), bounded walk. */
		uint8_t p = (uint8_t)before[3];
		for (unsigned int hops = 0; p && hops < 48; hops++) {
			uint32_t dw = pci_cfg_read32(slot, p);

			if ((dw & 0xff) == 0x09 && (dw >> 24) == 5) {
				cap = p;
				break;
			}
			p = (uint8_t)(dw >> 8);
		}
		if (!cap) {
			win_bad++;
			continue;
		}
		const uint32_t tries[3][3] = {
			{5, 0, 4},	  /* no BAR 5 */
			{0, 0x100000, 4}, /* past BAR 0 */
			{0, 0x14, 3},	  /* bad length */
		};
		for (unsigned int k = 0; k < 3; k++) {
			pci_cfg_write32(slot, (uint16_t)(cap + 4), tries[k][0]);
			pci_cfg_write32(slot, (uint16_t)(cap + 8), tries[k][1]);
			pci_cfg_write32(slot, (uint16_t)(cap + 12),
					tries[k][2]);
			win_bad +=
				pci_cfg_read32(slot, (uint16_t)(cap + 16)) != 0;
			pci_cfg_write32(slot, (uint16_t)(cap + 16),
					0xffffffffu);
		}

		/* Size BAR 0 (64-bit) with decoding off, put it back. */
		uint32_t cmd = pci_cfg_read32(slot, 4) & 0xffff;
		uint32_t lo = pci_cfg_read32(slot, 0x10);
		uint32_t hi = pci_cfg_read32(slot, 0x14);
		pci_cfg_write32(slot, 4, cmd & ~2u);
		pci_cfg_write32(slot, 0x10, 0xffffffffu);
		pci_cfg_write32(slot, 0x14, 0xffffffffu);
		uint64_t mask = (uint64_t)pci_cfg_read32(slot, 0x14) << 32 |
				(pci_cfg_read32(slot, 0x10) & ~0xfu);
		pci_cfg_write32(slot, 0x10, lo);
		pci_cfg_write32(slot, 0x14, hi);
		pci_cfg_write32(slot, 4, cmd);
		size_bad += ~mask + 1 != d->pci.bar_size[0];
	}
	check("hostile.pci.read-only", npci && ro_bad == 0,
	      "%u functions, %u changed fields", npci, ro_bad);
	check("hostile.pci.cfg-window", npci && win_bad == 0,
	      "%u functions, %u odd window reads", npci, win_bad);
	check("hostile.pci.bar-sizing", npci && size_bad == 0,
	      "%u functions, %u BARs sized wrong", npci, size_bad);
}

/* ---- entry ------------------------------------------------------------------- */

void hostile_run(const struct mmio_window *win, size_t nwin,
		 struct guest_dev *devs, unsigned int ndev)
{
	uint64_t past = 0;
	struct guest_dev *rng = NULL;

	info("hostile: unclaimed MMIO, I/O ports, broken descriptor chains");
	for (size_t i = 0; i < nwin; i++) {
		if (win[i].base + win[i].size > past)
			past = win[i].base + win[i].size;
	}
	if (past)
		check_mmio("hostile.mmio.past-windows", past);
	check_mmio("hostile.mmio.hole", HOSTILE_HOLE);
	flood_mmio(past ? past : HOSTILE_HOLE);
	/* After the MMIO checks: vdk-vmm rate-limits its unclaimed-access
	 * messages per vCPU, MMIO and port I/O together. */
	check_pio();
	for (unsigned int i = 0; i < ndev; i++) {
		if (devs[i].t == &devs[i].pci.transport) {
			hostile_pci(devs, ndev);
			break;
		}
	}

	for (unsigned int i = 0; i < ndev && !rng; i++) {
		if (devs[i].device_id == VIRTIO_ID_RNG)
			rng = &devs[i];
	}
	if (!rng) {
		check("hostile.rng.before", false, "no virtio-rng device");
		return;
	}
	hostile_rng(rng);
	check_others(devs, ndev);
}
