/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI configuration space of one function: type 0 header, memory BARs,
 * a capability list and MSI-X (PCI Local Bus 3.0 §6, §6.8.2).
 *
 * Do not assume that anything the driver writes is sensible. Every byte of
 * configuration space has a write mask; the BAR registers and the status
 * register are computed on each read from the model's state rather than
 * stored, so no write can put them in a state the model did not choose.
 * The capability list is laid out once, in increasing offsets, with
 * read-only pointers: a loop cannot be built.
 *
 * Locking: see <vdk/pci.h>. irq_lock guards the MSI-X table, PBA and
 * enable/mask mirrors and the INTx state; the configuration bytes and BAR
 * state are the caller's to serialise.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include <vdk/log.h>
#include <vdk/pci.h>

#define MOD "pci"

/* First byte after the type 0 header: capabilities start here. */
#define CAP_START 0x40
#define MAX_CAPS  48

/* Command register bits the driver may change. I/O decoding stays off:
 * the model has no I/O BARs. */
#define COMMAND_WMASK                                                          \
	(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |        \
	 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)

struct bar {
	uint64_t size; /* 0: no BAR in this slot */
	unsigned int flags;
	bool upper; /* the upper half of the 64-bit BAR in the slot below */
	uint64_t addr;
	const struct vdk_pci_bar_ops *ops;
	void *opaque;
	/* what bar_map was last told */
	bool mapped;
	uint64_t mapped_addr;
};

struct cap {
	uint8_t off;
	uint8_t len; /* bytes from the ID byte, rounded up to 4 */
	vdk_pci_cap_fn *fn;
	void *opaque;
};

struct vdk_pci_dev {
	uint8_t cfg[VDK_PCI_CONFIG_SIZE];
	uint8_t wmask[VDK_PCI_CONFIG_SIZE];
	struct bar bars[VDK_PCI_NUM_BARS];
	struct cap caps[MAX_CAPS];
	unsigned int ncaps;
	unsigned int next_free; /* offset of the next capability */
	vdk_pci_bar_map_fn *bar_map;
	vdk_pci_intx_fn *intx_fn;
	void *opaque;
	struct vdk_ratelimit rl;

	/* MSI-X: fixed once added */
	uint8_t msix_cap; /* 0: none */
	uint16_t nvec;
	unsigned int msix_bar;
	uint32_t table_off, pba_off;
	vdk_pci_msi_fn *msi_fn;
	vdk_pci_msix_changed_fn *changed_fn;
	void *msix_opaque;

	/* under irq_lock */
	pthread_mutex_t irq_lock;
	uint32_t *table; /* nvec * 4 dwords */
	uint64_t *pba;	 /* (nvec + 63) / 64 */
	bool msix_enabled;
	bool msix_maskall;
	bool intx_disable;
	bool intx_level;
	bool intx_pin;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- construction ----------------------------------------------------- */

struct vdk_pci_dev *vdk_pci_dev_new(const struct vdk_pci_config *cfg, int *err)
{
	struct vdk_pci_dev *d = NULL;
	struct vdk_ratelimit rl = VDK_RATELIMIT_INIT;
	int r = -EINVAL;

	if (!cfg || cfg->id.vendor_id == 0xffff || cfg->id.interrupt_pin > 4 ||
	    cfg->id.class_code > 0xffffff)
		goto out;
	r = -ENOMEM;
	d = calloc(1, sizeof(*d));
	if (!d)
		goto out;
	put16(d->cfg + PCI_VENDOR_ID, cfg->id.vendor_id);
	put16(d->cfg + PCI_DEVICE_ID, cfg->id.device_id);
	d->cfg[PCI_REVISION_ID] = cfg->id.revision_id;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)cfg->id.class_code;
	put16(d->cfg + PCI_CLASS_DEVICE, (uint16_t)(cfg->id.class_code >> 8));
	d->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	put16(d->cfg + PCI_SUBSYSTEM_VENDOR_ID, cfg->id.subsystem_vendor_id);
	put16(d->cfg + PCI_SUBSYSTEM_ID, cfg->id.subsystem_id);
	d->cfg[PCI_INTERRUPT_PIN] = cfg->id.interrupt_pin;
	put16(d->wmask + PCI_COMMAND, COMMAND_WMASK);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_LATENCY_TIMER] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	d->next_free = CAP_START;
	d->bar_map = cfg->bar_map;
	d->intx_fn = cfg->intx;
	d->opaque = cfg->opaque;
	d->rl = rl;
	pthread_mutex_init(&d->irq_lock, NULL);
	r = 0;
out:
	if (err)
		*err = r;
	return d;
}

void vdk_pci_dev_free(struct vdk_pci_dev *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->irq_lock);
	free(d->table);
	free(d->pba);
	free(d);
}

int vdk_pci_add_bar(struct vdk_pci_dev *d, unsigned int bar, uint64_t size,
		    unsigned int flags, const struct vdk_pci_bar_ops *ops,
		    void *opaque)
{
	bool is64 = flags & VDK_PCI_BAR_MEM64;

	if (!d || (flags & ~(VDK_PCI_BAR_MEM64 | VDK_PCI_BAR_PREFETCH)) ||
	    size < 16 || (size & (size - 1)) ||
	    (!is64 && size > (1ull << 31)) || (is64 && size > (1ull << 63)))
		return -EINVAL;
	if (bar >= VDK_PCI_NUM_BARS || (is64 && bar + 1 >= VDK_PCI_NUM_BARS))
		return -ERANGE;
	if (d->bars[bar].size || d->bars[bar].upper ||
	    (is64 && (d->bars[bar + 1].size || d->bars[bar + 1].upper)))
		return -EBUSY;
	d->bars[bar] = (struct bar){
		.size = size, .flags = flags, .ops = ops, .opaque = opaque};
	if (is64)
		d->bars[bar + 1].upper = true;
	return 0;
}

int vdk_pci_add_cap(struct vdk_pci_dev *d, uint8_t id, const void *body,
		    uint8_t len, const uint8_t *wmask, vdk_pci_cap_fn *fn,
		    void *opaque, uint8_t *offset)
{
	unsigned int total, off;

	if (!d || (len && !body) || len > VDK_PCI_CONFIG_SIZE - CAP_START - 2)
		return -EINVAL;
	total = ((unsigned int)len + 2 + 3) & ~3u;
	off = d->next_free;
	if (d->ncaps >= MAX_CAPS || off + total > VDK_PCI_CONFIG_SIZE)
		return -ENOSPC;
	d->cfg[off] = id;
	d->cfg[off + 1] = 0; /* end of list */
	if (len)
		memcpy(d->cfg + off + 2, body, len);
	if (wmask)
		memcpy(d->wmask + off + 2, wmask, len);
	/* Link: the pointers only ever point forward, to a capability that
	 * exists, and the driver cannot write them. */
	if (d->ncaps == 0)
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	else
		d->cfg[d->caps[d->ncaps - 1].off + 1] = (uint8_t)off;
	d->caps[d->ncaps++] = (struct cap){.off = (uint8_t)off,
					   .len = (uint8_t)total,
					   .fn = fn,
					   .opaque = opaque};
	d->next_free = off + total;
	if (offset)
		*offset = (uint8_t)off;
	return 0;
}

int vdk_pci_add_msix(struct vdk_pci_dev *d, uint16_t nvec, unsigned int bar,
		     uint32_t table_offset, uint32_t pba_offset,
		     vdk_pci_msi_fn *fn, vdk_pci_msix_changed_fn *changed,
		     void *opaque)
{
	uint8_t body[10] = {0}, wmask[10] = {0};
	uint64_t tsize, psize, bsize;
	int r;

	if (!d || !fn || nvec == 0 || nvec > VDK_PCI_MSIX_MAX_VECTORS ||
	    bar >= VDK_PCI_NUM_BARS || !d->bars[bar].size ||
	    (table_offset & 7) || (pba_offset & 7))
		return -EINVAL;
	if (d->msix_cap)
		return -EEXIST;
	tsize = (uint64_t)nvec * VDK_PCI_MSIX_ENTRY_SIZE;
	psize = ((uint64_t)nvec + 63) / 64 * 8;
	bsize = d->bars[bar].size;
	if ((uint64_t)table_offset + tsize > bsize ||
	    (uint64_t)pba_offset + psize > bsize ||
	    ((uint64_t)table_offset < pba_offset + psize &&
	     (uint64_t)pba_offset < table_offset + tsize))
		return -EINVAL;
	d->table = calloc(nvec, VDK_PCI_MSIX_ENTRY_SIZE);
	d->pba = calloc((nvec + 63) / 64, sizeof(uint64_t));
	if (!d->table || !d->pba) {
		free(d->table);
		free(d->pba);
		d->table = NULL;
		d->pba = NULL;
		return -ENOMEM;
	}
	for (uint16_t v = 0; v < nvec; v++)
		d->table[v * 4 + 3] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	/* Message Control (table size - 1, read-only; enable and function
	 * mask writable), Table Offset/BIR, PBA Offset/BIR. Offsets in
	 * @body are from byte 2 of the capability. */
	put16(body, (uint16_t)(nvec - 1));
	put16(wmask, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	put32(body + 2, table_offset | bar);
	put32(body + 6, pba_offset | bar);
	r = vdk_pci_add_cap(d, PCI_CAP_ID_MSIX, body, sizeof(body), wmask, NULL,
			    NULL, &d->msix_cap);
	if (r < 0) {
		free(d->table);
		free(d->pba);
		d->table = NULL;
		d->pba = NULL;
		return r;
	}
	d->nvec = nvec;
	d->msix_bar = bar;
	d->table_off = table_offset;
	d->pba_off = pba_offset;
	d->msi_fn = fn;
	d->changed_fn = changed;
	d->msix_opaque = opaque;
	return 0;
}

/* ---- BARs --------------------------------------------------------------- */

/* The register value of BAR slot @i as the driver reads it. */
static uint32_t bar_reg(const struct vdk_pci_dev *d, unsigned int i)
{
	const struct bar *b = &d->bars[i];
	uint32_t v;

	if (b->upper)
		return (uint32_t)(d->bars[i - 1].addr >> 32);
	if (!b->size)
		return 0;
	v = (uint32_t)b->addr & PCI_BASE_ADDRESS_MEM_MASK;
	if (b->flags & VDK_PCI_BAR_MEM64)
		v |= PCI_BASE_ADDRESS_MEM_TYPE_64;
	if (b->flags & VDK_PCI_BAR_PREFETCH)
		v |= PCI_BASE_ADDRESS_MEM_PREFETCH;
	return v;
}

/* The driver wrote @v to BAR slot @i: keep the address bits the BAR's size
 * leaves writable (so all-ones reads back as the size, §6.2.5.1). */
static void bar_reg_write(struct vdk_pci_dev *d, unsigned int i, uint32_t v)
{
	struct bar *b = &d->bars[i];

	if (b->upper) {
		b = &d->bars[i - 1];
		b->addr = ((b->addr & 0xffffffffull) | ((uint64_t)v << 32)) &
			  ~(b->size - 1);
		return;
	}
	if (!b->size)
		return;
	b->addr = ((b->addr & ~0xffffffffull) |
		   (v & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK)) &
		  ~(b->size - 1);
}

/* Where BAR @i would decode, ignoring the other BARs. */
static bool bar_candidate(const struct vdk_pci_dev *d, unsigned int i,
			  uint64_t *end)
{
	const struct bar *b = &d->bars[i];

	if (!b->size || !(get16(d->cfg + PCI_COMMAND) & PCI_COMMAND_MEMORY) ||
	    b->addr == 0)
		return false;
	/* A range that wraps (a half-sized BAR, all-ones) never decodes. */
	if (__builtin_add_overflow(b->addr, b->size, end))
		return false;
	return true;
}

static int bar_state(const struct vdk_pci_dev *d, unsigned int i)
{
	const struct bar *b = &d->bars[i];
	uint64_t end, oend;

	if (i >= VDK_PCI_NUM_BARS || !b->size)
		return -ENOENT;
	if (!(get16(d->cfg + PCI_COMMAND) & PCI_COMMAND_MEMORY) || !b->addr)
		return -ENODEV;
	if (!bar_candidate(d, i, &end))
		return -EADDRINUSE;
	for (unsigned int j = 0; j < VDK_PCI_NUM_BARS; j++) {
		if (j == i || !bar_candidate(d, j, &oend))
			continue;
		if (b->addr < oend && d->bars[j].addr < end)
			return -EADDRINUSE; /* a BAR moved onto another */
	}
	return 0;
}

/* Tell bar_map what changed: every unmap first, then every map, so that a
 * BAR moving onto the range another just left never overlaps it. */
static void update_mappings(struct vdk_pci_dev *d)
{
	bool want[VDK_PCI_NUM_BARS];

	for (unsigned int i = 0; i < VDK_PCI_NUM_BARS; i++) {
		struct bar *b = &d->bars[i];

		want[i] = b->size && bar_state(d, i) == 0;
		if (b->mapped && (!want[i] || b->mapped_addr != b->addr)) {
			b->mapped = false;
			if (d->bar_map)
				d->bar_map(d->opaque, i, b->mapped_addr,
					   b->size, false);
		}
	}
	for (unsigned int i = 0; i < VDK_PCI_NUM_BARS; i++) {
		struct bar *b = &d->bars[i];

		if (want[i] && !b->mapped) {
			b->mapped = true;
			b->mapped_addr = b->addr;
			if (d->bar_map)
				d->bar_map(d->opaque, i, b->addr, b->size,
					   true);
		}
	}
}

int vdk_pci_bar_region(struct vdk_pci_dev *d, unsigned int bar, uint64_t *addr,
		       uint64_t *size)
{
	int r;

	if (!d || bar >= VDK_PCI_NUM_BARS || !d->bars[bar].size)
		return -ENOENT;
	r = bar_state(d, bar);
	if (addr)
		*addr = d->bars[bar].addr;
	if (size)
		*size = d->bars[bar].size;
	return r;
}

int vdk_pci_bar_find(struct vdk_pci_dev *d, uint64_t addr, uint64_t *offset)
{
	for (unsigned int i = 0; d && i < VDK_PCI_NUM_BARS; i++) {
		const struct bar *b = &d->bars[i];

		if (b->mapped && addr >= b->mapped_addr &&
		    addr - b->mapped_addr < b->size) {
			if (offset)
				*offset = addr - b->mapped_addr;
			return (int)i;
		}
	}
	return -ENOENT;
}

int vdk_pci_bar_set_addr(struct vdk_pci_dev *d, unsigned int bar, uint64_t addr)
{
	struct bar *b;

	if (!d || bar >= VDK_PCI_NUM_BARS || !d->bars[bar].size)
		return -ENOENT;
	b = &d->bars[bar];
	if ((addr & (b->size - 1)) ||
	    (!(b->flags & VDK_PCI_BAR_MEM64) && addr > UINT32_MAX))
		return -EINVAL;
	b->addr = addr;
	update_mappings(d);
	return 0;
}

/* ---- interrupts (irq_lock) ---------------------------------------------- */

static void intx_update_locked(struct vdk_pci_dev *d)
{
	bool pin = d->intx_level && !d->intx_disable && !d->msix_enabled;

	if (pin == d->intx_pin)
		return;
	d->intx_pin = pin;
	if (d->intx_fn)
		d->intx_fn(d->opaque, pin);
}

static bool vector_masked_locked(const struct vdk_pci_dev *d, uint16_t v)
{
	return d->msix_maskall ||
	       (d->table[v * 4 + 3] & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static void deliver_locked(struct vdk_pci_dev *d, uint16_t v)
{
	uint64_t addr = d->table[v * 4] | (uint64_t)d->table[v * 4 + 1] << 32;

	d->msi_fn(d->msix_opaque, addr, d->table[v * 4 + 2]);
}

/* Send what became unmasked (§6.8.3.5: a pending message goes out once
 * its vector is unmasked, and its pending bit clears). */
static void flush_pending_locked(struct vdk_pci_dev *d, uint16_t first,
				 uint16_t last)
{
	if (!d->msix_enabled || d->msix_maskall)
		return;
	for (uint32_t v = first; v <= last; v++) {
		uint64_t bit = 1ull << (v % 64);

		if (!(d->pba[v / 64] & bit) ||
		    vector_masked_locked(d, (uint16_t)v))
			continue;
		d->pba[v / 64] &= ~bit;
		deliver_locked(d, (uint16_t)v);
	}
}

int vdk_pci_msix_notify(struct vdk_pci_dev *d, uint16_t vector)
{
	int r;

	if (!d || !d->msix_cap)
		return -ENODEV;
	if (vector >= d->nvec)
		return -ERANGE;
	pthread_mutex_lock(&d->irq_lock);
	if (!d->msix_enabled) {
		r = -ENODEV;
	} else if (vector_masked_locked(d, vector)) {
		d->pba[vector / 64] |= 1ull << (vector % 64);
		r = 1;
	} else {
		deliver_locked(d, vector);
		r = 0;
	}
	pthread_mutex_unlock(&d->irq_lock);
	return r;
}

bool vdk_pci_msix_enabled(struct vdk_pci_dev *d)
{
	bool e;

	if (!d || !d->msix_cap)
		return false;
	pthread_mutex_lock(&d->irq_lock);
	e = d->msix_enabled;
	pthread_mutex_unlock(&d->irq_lock);
	return e;
}

int vdk_pci_msix_entry(struct vdk_pci_dev *d, uint16_t vector, uint64_t *addr,
		       uint32_t *data, bool *masked)
{
	if (!d || !d->msix_cap)
		return -ENODEV;
	if (vector >= d->nvec)
		return -ERANGE;
	pthread_mutex_lock(&d->irq_lock);
	if (addr)
		*addr = d->table[vector * 4] |
			(uint64_t)d->table[vector * 4 + 1] << 32;
	if (data)
		*data = d->table[vector * 4 + 2];
	if (masked)
		*masked = vector_masked_locked(d, vector);
	pthread_mutex_unlock(&d->irq_lock);
	return 0;
}

bool vdk_pci_msix_pending(struct vdk_pci_dev *d, uint16_t vector)
{
	bool p;

	if (!d || !d->msix_cap || vector >= d->nvec)
		return false;
	pthread_mutex_lock(&d->irq_lock);
	p = d->pba[vector / 64] & (1ull << (vector % 64));
	pthread_mutex_unlock(&d->irq_lock);
	return p;
}

void vdk_pci_set_intx(struct vdk_pci_dev *d, bool level)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->irq_lock);
	d->intx_level = level;
	intx_update_locked(d);
	pthread_mutex_unlock(&d->irq_lock);
}

/* The driver changed the command register or MSI-X control. */
static void irq_controls_changed(struct vdk_pci_dev *d)
{
	uint16_t ctl = d->msix_cap ? get16(d->cfg + d->msix_cap + 2) : 0;
	bool msix_changed;

	pthread_mutex_lock(&d->irq_lock);
	msix_changed = d->msix_enabled != !!(ctl & PCI_MSIX_FLAGS_ENABLE) ||
		       d->msix_maskall != !!(ctl & PCI_MSIX_FLAGS_MASKALL);
	d->msix_enabled = ctl & PCI_MSIX_FLAGS_ENABLE;
	d->msix_maskall = ctl & PCI_MSIX_FLAGS_MASKALL;
	d->intx_disable =
		get16(d->cfg + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
	if (msix_changed)
		flush_pending_locked(d, 0, (uint16_t)(d->nvec - 1));
	intx_update_locked(d);
	pthread_mutex_unlock(&d->irq_lock);
	if (msix_changed && d->changed_fn)
		d->changed_fn(d->msix_opaque, UINT16_MAX);
}

/* ---- configuration space ------------------------------------------------ */

static bool cfg_access_ok(uint32_t offset, size_t len)
{
	return (len == 1 || len == 2 || len == 4) &&
	       (offset & (len - 1)) == 0 && offset < VDK_PCI_CONFIG_SIZE_EXP;
}

/* The capability holding byte @off, or NULL. */
static struct cap *cap_at(struct vdk_pci_dev *d, uint32_t off)
{
	for (unsigned int i = 0; i < d->ncaps; i++)
		if (off >= d->caps[i].off &&
		    off < (uint32_t)d->caps[i].off + d->caps[i].len)
			return &d->caps[i];
	return NULL;
}

/* Run a capability's hook for an access of @len bytes at @offset (which
 * lies in one dword, so in at most one capability). */
static void cap_hook(struct vdk_pci_dev *d, uint32_t offset, size_t len,
		     bool write)
{
	struct cap *c = cap_at(d, offset);

	if (!c || !c->fn)
		return;
	if (offset + len > (uint32_t)c->off + c->len)
		len = c->off + c->len - offset;
	c->fn(c->opaque, d->cfg + c->off, c->len, (uint8_t)(offset - c->off),
	      len, write);
}

void vdk_pci_config_read(struct vdk_pci_dev *d, uint32_t offset, void *data,
			 size_t len)
{
	uint8_t dw[4];
	uint32_t base = offset & ~3u;

	if (!d || !data)
		return;
	if (!cfg_access_ok(offset, len)) {
		memset(data, 0xff, len);
		VDK_LOG_RL(&d->rl, VDK_LOG_WARN, MOD,
			   "bad config read of %zu bytes at %#x", len, offset);
		return;
	}
	if (offset >= VDK_PCI_CONFIG_SIZE) {
		memset(data, 0, len); /* no extended capabilities */
		return;
	}
	cap_hook(d, offset, len, false);
	memcpy(dw, d->cfg + base, 4);
	if (base >= PCI_BASE_ADDRESS_0 && base <= PCI_BASE_ADDRESS_5) {
		put32(dw, bar_reg(d, (base - PCI_BASE_ADDRESS_0) / 4));
	} else if (base == PCI_COMMAND) {
		uint16_t st = d->ncaps ? PCI_STATUS_CAP_LIST : 0;

		pthread_mutex_lock(&d->irq_lock);
		if (d->intx_level)
			st |= PCI_STATUS_INTERRUPT;
		pthread_mutex_unlock(&d->irq_lock);
		put16(dw + 2, st);
	}
	memcpy(data, dw + (offset - base), len);
}

void vdk_pci_config_write(struct vdk_pci_dev *d, uint32_t offset,
			  const void *data, size_t len)
{
	const uint8_t *in = data;
	uint32_t base = offset & ~3u;
	bool msix = false;

	if (!d || !data)
		return;
	if (!cfg_access_ok(offset, len)) {
		VDK_LOG_RL(&d->rl, VDK_LOG_WARN, MOD,
			   "bad config write of %zu bytes at %#x ignored", len,
			   offset);
		return;
	}
	if (offset >= VDK_PCI_CONFIG_SIZE)
		return;
	if (base >= PCI_BASE_ADDRESS_0 && base <= PCI_BASE_ADDRESS_5) {
		unsigned int i = (base - PCI_BASE_ADDRESS_0) / 4;
		uint8_t dw[4];
		uint32_t v;

		put32(dw, bar_reg(d, i));
		memcpy(dw + (offset - base), in, len);
		v = dw[0] | dw[1] << 8 | dw[2] << 16 | (uint32_t)dw[3] << 24;
		bar_reg_write(d, i, v);
		update_mappings(d);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		uint8_t m = d->wmask[offset + i];

		d->cfg[offset + i] =
			(uint8_t)((d->cfg[offset + i] & ~m) | (in[i] & m));
	}
	if (d->msix_cap && offset < (uint32_t)d->msix_cap + 4 &&
	    offset + len > (uint32_t)d->msix_cap + 2)
		msix = true;
	if (base == PCI_COMMAND) {
		update_mappings(d);
		irq_controls_changed(d);
	} else if (msix) {
		irq_controls_changed(d);
	}
	cap_hook(d, offset, len, true);
}

void vdk_pci_set_command(struct vdk_pci_dev *d, uint16_t command)
{
	if (!d)
		return;
	put16(d->cfg + PCI_COMMAND, command & COMMAND_WMASK);
	update_mappings(d);
	irq_controls_changed(d);
}

uint16_t vdk_pci_command(struct vdk_pci_dev *d)
{
	return d ? get16(d->cfg + PCI_COMMAND) : 0;
}

/* ---- BAR accesses -------------------------------------------------------- */

/* Whether [@off, @off + @len) touches [@start, @start + @size); *@inside
 * says if it lies wholly within. */
static bool touches(uint64_t off, size_t len, uint64_t start, uint64_t size,
		    bool *inside)
{
	*inside = off >= start && off + len <= start + size;
	return off < start + size && off + len > start;
}

static void msix_table_write(struct vdk_pci_dev *d, uint64_t off, uint32_t v)
{
	uint16_t vec = (uint16_t)(off / VDK_PCI_MSIX_ENTRY_SIZE);
	unsigned int word = (unsigned int)(off % VDK_PCI_MSIX_ENTRY_SIZE) / 4;

	pthread_mutex_lock(&d->irq_lock);
	if (word == 3) /* only the mask bit of Vector Control is defined */
		v &= PCI_MSIX_ENTRY_CTRL_MASKBIT;
	d->table[vec * 4 + word] = v;
	if (word == 3)
		flush_pending_locked(d, vec, vec);
	pthread_mutex_unlock(&d->irq_lock);
	if (d->changed_fn)
		d->changed_fn(d->msix_opaque, vec);
}

/* Return: true if the MSI-X structures took the access. */
static bool msix_access(struct vdk_pci_dev *d, unsigned int bar,
			uint64_t offset, void *data, size_t len, bool write)
{
	uint64_t tsize, psize;
	bool in_table, in_pba, inside;
	uint8_t buf[8] = {0};

	if (!d->msix_cap || bar != d->msix_bar)
		return false;
	tsize = (uint64_t)d->nvec * VDK_PCI_MSIX_ENTRY_SIZE;
	psize = ((uint64_t)d->nvec + 63) / 64 * 8;
	in_table = touches(offset, len, d->table_off, tsize, &inside);
	if (!in_table) {
		in_pba = touches(offset, len, d->pba_off, psize, &inside);
		if (!in_pba)
			return false;
	}
	/* §6.8.2: DWORD or aligned QWORD accesses only. */
	if (!inside || (len != 4 && len != 8) || (offset & (len - 1))) {
		VDK_LOG_RL(&d->rl, VDK_LOG_WARN, MOD,
			   "bad %zu-byte MSI-X %s access at %#llx ignored", len,
			   in_table ? "table" : "PBA",
			   (unsigned long long)offset);
		return true;
	}
	if (!in_table) {
		uint64_t o = offset - d->pba_off;

		if (write)
			return true; /* the PBA is read-only */
		pthread_mutex_lock(&d->irq_lock);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(d->pba[(o + i) / 8] >>
					   (8 * ((o + i) % 8)));
		pthread_mutex_unlock(&d->irq_lock);
		memcpy(data, buf, len);
		return true;
	}
	offset -= d->table_off;
	for (size_t i = 0; i < len; i += 4) {
		uint32_t v;

		if (write) {
			memcpy(&v, (uint8_t *)data + i, 4);
			msix_table_write(d, offset + i, le32toh(v));
		} else {
			pthread_mutex_lock(&d->irq_lock);
			v = htole32(d->table[(offset + i) / 4]);
			pthread_mutex_unlock(&d->irq_lock);
			memcpy((uint8_t *)data + i, &v, 4);
		}
	}
	return true;
}

static bool bar_access_ok(struct vdk_pci_dev *d, unsigned int bar,
			  uint64_t offset, size_t len)
{
	if (bar >= VDK_PCI_NUM_BARS || !d->bars[bar].size || len == 0 ||
	    len > 8 || offset >= d->bars[bar].size ||
	    len > d->bars[bar].size - offset) {
		VDK_LOG_RL(&d->rl, VDK_LOG_WARN, MOD,
			   "%zu-byte access at %#llx outside BAR %u ignored",
			   len, (unsigned long long)offset, bar);
		return false;
	}
	return true;
}

void vdk_pci_bar_read(struct vdk_pci_dev *d, unsigned int bar, uint64_t offset,
		      void *data, size_t len)
{
	if (!d || !data || len == 0)
		return;
	memset(data, 0, len);
	if (!bar_access_ok(d, bar, offset, len) ||
	    msix_access(d, bar, offset, data, len, false))
		return;
	if (d->bars[bar].ops && d->bars[bar].ops->read)
		d->bars[bar].ops->read(d->bars[bar].opaque, bar, offset, data,
				       len);
}

void vdk_pci_bar_write(struct vdk_pci_dev *d, unsigned int bar, uint64_t offset,
		       const void *data, size_t len)
{
	uint8_t buf[8];

	if (!d || !data || !bar_access_ok(d, bar, offset, len))
		return;
	memcpy(buf, data, len);
	if (msix_access(d, bar, offset, buf, len, true))
		return;
	if (d->bars[bar].ops && d->bars[bar].ops->write)
		d->bars[bar].ops->write(d->bars[bar].opaque, bar, offset, data,
					len);
}

/* ---- reset ---------------------------------------------------------------- */

void vdk_pci_reset(struct vdk_pci_dev *d)
{
	if (!d)
		return;
	for (unsigned int i = CAP_START; i < VDK_PCI_CONFIG_SIZE; i++)
		d->cfg[i] &= (uint8_t)~d->wmask[i];
	put16(d->cfg + PCI_COMMAND, 0);
	d->cfg[PCI_CACHE_LINE_SIZE] = 0;
	d->cfg[PCI_LATENCY_TIMER] = 0;
	d->cfg[PCI_INTERRUPT_LINE] = 0;
	for (unsigned int i = 0; i < VDK_PCI_NUM_BARS; i++)
		d->bars[i].addr = 0;
	update_mappings(d);
	pthread_mutex_lock(&d->irq_lock);
	for (uint16_t v = 0; v < d->nvec; v++) {
		memset(&d->table[v * 4], 0, VDK_PCI_MSIX_ENTRY_SIZE);
		d->table[v * 4 + 3] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	}
	if (d->pba)
		memset(d->pba, 0, (d->nvec + 63) / 64 * sizeof(uint64_t));
	d->intx_level = false;
	pthread_mutex_unlock(&d->irq_lock);
	irq_controls_changed(d);
	if (d->msix_cap && d->changed_fn)
		d->changed_fn(d->msix_opaque, UINT16_MAX);
}

/* ---- state ----------------------------------------------------------------- */

/* Layout: cfg[256], then 6 BAR addresses (u64), then the MSI-X table
 * (nvec * 16 bytes) and PBA ((nvec + 63) / 64 u64), all little-endian. */
size_t vdk_pci_state_size(struct vdk_pci_dev *d)
{
	if (!d)
		return 0;
	return VDK_PCI_CONFIG_SIZE + VDK_PCI_NUM_BARS * 8 +
	       (size_t)d->nvec * VDK_PCI_MSIX_ENTRY_SIZE +
	       ((size_t)d->nvec + 63) / 64 * 8;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

int vdk_pci_save_state(struct vdk_pci_dev *d, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (!d || !buf || len != vdk_pci_state_size(d))
		return -EINVAL;
	memcpy(p, d->cfg, VDK_PCI_CONFIG_SIZE);
	p += VDK_PCI_CONFIG_SIZE;
	for (unsigned int i = 0; i < VDK_PCI_NUM_BARS; i++, p += 8)
		put64(p, d->bars[i].addr);
	pthread_mutex_lock(&d->irq_lock);
	for (uint32_t w = 0; w < (uint32_t)d->nvec * 4; w++, p += 4)
		put32(p, d->table[w]);
	for (uint32_t w = 0; w < ((uint32_t)d->nvec + 63) / 64; w++, p += 8)
		put64(p, d->pba[w]);
	pthread_mutex_unlock(&d->irq_lock);
	return 0;
}

int vdk_pci_load_state(struct vdk_pci_dev *d, const void *buf, size_t len)
{
	const uint8_t *p = buf, *bars, *tbl, *pba;
	uint32_t npba;

	if (!d || !buf || len != vdk_pci_state_size(d))
		return -EINVAL;
	bars = p + VDK_PCI_CONFIG_SIZE;
	tbl = bars + VDK_PCI_NUM_BARS * 8;
	pba = tbl + (size_t)d->nvec * VDK_PCI_MSIX_ENTRY_SIZE;
	npba = ((uint32_t)d->nvec + 63) / 64;
	/* Check everything before changing anything. */
	for (unsigned int i = 0; i < VDK_PCI_CONFIG_SIZE; i++)
		if ((p[i] & ~d->wmask[i]) != (d->cfg[i] & ~d->wmask[i]) &&
		    !(i >= PCI_BASE_ADDRESS_0 && i < PCI_BASE_ADDRESS_5 + 4) &&
		    !(i >= PCI_STATUS && i < PCI_STATUS + 2))
			return -EINVAL;
	for (unsigned int i = 0; i < VDK_PCI_NUM_BARS; i++) {
		const struct bar *b = &d->bars[i];
		uint64_t a = get64(bars + 8 * i);

		if ((!b->size && a) || (b->size && (a & (b->size - 1))) ||
		    (b->size && !(b->flags & VDK_PCI_BAR_MEM64) &&
		     a > UINT32_MAX))
			return -EINVAL;
	}
	for (uint32_t v = 0; v < d->nvec; v++)
		if (get32(tbl + 16 * v + 12) & ~PCI_MSIX_ENTRY_CTRL_MASKBIT)
			return -EINVAL;
	if (npba && (d->nvec % 64) &&
	    (get64(pba + 8 * (npba - 1)) >> (d->nvec % 64)))
		return -EINVAL;

	for (unsigned int i = 0; i < VDK_PCI_CONFIG_SIZE; i++)
		if (!(i >= PCI_BASE_ADDRESS_0 && i < PCI_BASE_ADDRESS_5 + 4) &&
		    !(i >= PCI_STATUS && i < PCI_STATUS + 2))
			d->cfg[i] = p[i];
	for (unsigned int i = 0; i < VDK_PCI_NUM_BARS; i++)
		d->bars[i].addr = get64(bars + 8 * i);
	pthread_mutex_lock(&d->irq_lock);
	for (uint32_t w = 0; w < (uint32_t)d->nvec * 4; w++)
		d->table[w] = get32(tbl + 4 * w);
	for (uint32_t w = 0; w < npba; w++)
		d->pba[w] = get64(pba + 8 * w);
	/* Force irq_controls_changed() to look at everything again. */
	if (d->msix_cap)
		d->msix_enabled = !d->msix_enabled;
	pthread_mutex_unlock(&d->irq_lock);
	update_mappings(d);
	irq_controls_changed(d);
	return 0;
}
