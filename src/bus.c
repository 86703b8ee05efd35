/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bus manager (see <vdk/bus.h>): port-I/O and MMIO dispatch with the
 * semantics of rust-vmm vm-device's Bus / IoManager.
 *
 * A bus is an array of {range, device} sorted by range base, with no two
 * ranges overlapping. Dispatch binary-searches for the last range whose base
 * is <= the address, then checks that the whole access lies in that range:
 *
 *   no range holds addr                      -> -ENOENT (DeviceNotFound)
 *   range holds addr but not addr + len - 1  -> -ERANGE (InvalidAccessLength)
 *
 * The array is guarded by a reader-preferring pthread rwlock held shared
 * across the device call, so deregistration waits for in-flight accesses
 * and a vCPU never waits on another vCPU.
 */
#include <vdk/bus.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Port I/O addresses are 16 bits: ranges end at or below this. */
#define PIO_SPACE_END 0x10000ull

struct bus_entry {
	uint64_t base;
	uint64_t size;
	struct vdk_bus_device dev;
};

struct vdk_bus {
	enum vdk_bus_kind kind;
	pthread_rwlock_t lock;
	struct bus_entry *entries; /* sorted by base; guarded by lock */
	size_t n;		   /* entries in use */
	size_t cap;		   /* entries allocated */
};

struct vdk_bus *vdk_bus_new(enum vdk_bus_kind kind, int *err)
{
	pthread_rwlockattr_t attr;
	struct vdk_bus *bus;
	int ret = -ENOMEM;

	if (kind != VDK_BUS_PIO && kind != VDK_BUS_MMIO) {
		ret = -EINVAL;
		goto fail;
	}
	bus = calloc(1, sizeof(*bus));
	if (!bus)
		goto fail;
	bus->kind = kind;

	/*
	 * Reader-preferring: a vCPU that dispatches while another vCPU is
	 * inside a device never queues behind a waiting registration.
	 */
	if (pthread_rwlockattr_init(&attr) != 0)
		goto fail_free;
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_READER_NP);
	ret = -pthread_rwlock_init(&bus->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (ret)
		goto fail_free;

	if (err)
		*err = 0;
	return bus;

fail_free:
	free(bus);
fail:
	if (err)
		*err = ret ? ret : -ENOMEM;
	return NULL;
}

void vdk_bus_free(struct vdk_bus *bus)
{
	if (!bus)
		return;
	pthread_rwlock_destroy(&bus->lock);
	free(bus->entries);
	free(bus);
}

/* Index of the first entry whose base is >= @addr (n if none). */
static size_t bus_lower_bound(const struct vdk_bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (bus->entries[mid].base < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The entry whose range holds @addr, or NULL. Caller holds the lock. */
static const struct bus_entry *bus_lookup(const struct vdk_bus *bus,
					  uint64_t addr)
{
	const struct bus_entry *e = bus->entries;
	size_t n = bus->n;

	if (n == 0)
		return NULL;
	/*
	 * Narrow the window [e, e + n) around the last entry whose base is
	 * <= addr (or the first entry if none is): if e[half] qualifies the
	 * answer is at or after it, otherwise it is before it; both halves
	 * fit in the n - half entries kept.
	 */
	while (n > 1) {
		size_t half = n / 2;

		if (e[half].base <= addr)
			e += half;
		n -= half;
	}
	/* addr below e->base wraps to a huge offset and fails. */
	return addr - e->base < e->size ? e : NULL;
}

int vdk_bus_register(struct vdk_bus *bus, struct vdk_bus_range range,
		     struct vdk_bus_device dev)
{
	uint64_t last;
	size_t pos;
	int ret = 0;

	/*
	 * As vm-device's BusRange: the last byte, base + size - 1, must not
	 * wrap; a range may end at the very top of the address space.
	 */
	if (range.size == 0 || !dev.ops ||
	    __builtin_add_overflow(range.base, range.size - 1, &last))
		return -EINVAL;
	if (bus->kind == VDK_BUS_PIO && last >= PIO_SPACE_END)
		return -EINVAL;

	pthread_rwlock_wrlock(&bus->lock);
	pos = bus_lower_bound(bus, range.base);
	/* The previous range must end at or before base... */
	if (pos > 0) {
		const struct bus_entry *prev = &bus->entries[pos - 1];

		if (range.base - prev->base < prev->size) {
			ret = -EEXIST;
			goto out;
		}
	}
	/* ...and the next one start after our last byte. */
	if (pos < bus->n && bus->entries[pos].base <= last) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->n == bus->cap) {
		size_t cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_entry *e;

		e = reallocarray(bus->entries, cap, sizeof(*e));
		if (!e) {
			ret = -ENOMEM;
			goto out;
		}
		bus->entries = e;
		bus->cap = cap;
	}
	memmove(&bus->entries[pos + 1], &bus->entries[pos],
		(bus->n - pos) * sizeof(bus->entries[0]));
	bus->entries[pos] = (struct bus_entry){
		.base = range.base,
		.size = range.size,
		.dev = dev,
	};
	bus->n++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int vdk_bus_deregister(struct vdk_bus *bus, uint64_t base,
		       struct vdk_bus_device *removed)
{
	int ret = -ENOENT;
	size_t pos;

	pthread_rwlock_wrlock(&bus->lock);
	pos = bus_lower_bound(bus, base);
	if (pos < bus->n && bus->entries[pos].base == base) {
		if (removed)
			*removed = bus->entries[pos].dev;
		memmove(&bus->entries[pos], &bus->entries[pos + 1],
			(bus->n - pos - 1) * sizeof(bus->entries[0]));
		bus->n--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

/*
 * Find the range for [addr, addr + len) and call the device with the lock
 * held shared. A read (@write false) fills @data (zeroes when the device
 * has no read callback); a write (@write true) passes @data to the device.
 * The direction is explicit rather than told by which of two pointers is
 * NULL, so that no path can hand a NULL to memset() (GCC 12 at -O3 proves
 * the NULL one reachable once both wrappers are inlined: -Werror=nonnull).
 */
static int bus_access(struct vdk_bus *bus, uint64_t addr, void *data,
		      size_t len, bool write)
{
	const struct bus_entry *e;
	const struct vdk_bus_device_ops *ops;
	uint64_t off;
	int ret = 0;

	if (len == 0)
		return -EINVAL;

	pthread_rwlock_rdlock(&bus->lock);
	e = bus_lookup(bus, addr);
	if (!e) {
		ret = -ENOENT;
		goto out;
	}
	off = addr - e->base;
	/* off < size, so size - off cannot wrap; this also refuses wrap. */
	if ((uint64_t)len > e->size - off) {
		ret = -ERANGE;
		goto out;
	}
	ops = e->dev.ops;
	if (write) {
		if (ops->write)
			ops->write(e->dev.opaque, e->base, off, data, len);
	} else if (ops->read) {
		ops->read(e->dev.opaque, e->base, off, data, len);
	} else {
		memset(data, 0, len);
	}
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int vdk_bus_read(struct vdk_bus *bus, uint64_t addr, void *data, size_t len)
{
	return bus_access(bus, addr, data, len, false);
}

int vdk_bus_write(struct vdk_bus *bus, uint64_t addr, const void *data,
		  size_t len)
{
	/* The device's write callback takes a const pointer; bus_access()
	 * only reads through @data when @write is true. */
	return bus_access(bus, addr, (void *)data, len, true);
}

size_t vdk_bus_num_devices(struct vdk_bus *bus)
{
	size_t n;

	pthread_rwlock_rdlock(&bus->lock);
	n = bus->n;
	pthread_rwlock_unlock(&bus->lock);
	return n;
}

/* ---- I/O manager ------------------------------------------------------ */

int vdk_io_manager_init(struct vdk_io_manager *mgr)
{
	int err;

	mgr->pio = vdk_bus_new(VDK_BUS_PIO, &err);
	if (!mgr->pio)
		goto fail;
	mgr->mmio = vdk_bus_new(VDK_BUS_MMIO, &err);
	if (!mgr->mmio)
		goto fail;
	return 0;
fail:
	vdk_bus_free(mgr->pio);
	mgr->pio = NULL;
	mgr->mmio = NULL;
	return err;
}

void vdk_io_manager_fini(struct vdk_io_manager *mgr)
{
	vdk_bus_free(mgr->pio);
	vdk_bus_free(mgr->mmio);
	mgr->pio = NULL;
	mgr->mmio = NULL;
}

/* The bus a resource lives on, or NULL for IRQs and unknown kinds. */
static struct vdk_bus *resource_bus(struct vdk_io_manager *mgr,
				    const struct vdk_resource *res)
{
	switch (res->kind) {
	case VDK_RESOURCE_PIO_RANGE:
		return mgr->pio;
	case VDK_RESOURCE_MMIO_RANGE:
		return mgr->mmio;
	case VDK_RESOURCE_LEGACY_IRQ:
		break;
	}
	return NULL;
}

static bool resource_known(const struct vdk_resource *res)
{
	return res->kind == VDK_RESOURCE_PIO_RANGE ||
	       res->kind == VDK_RESOURCE_MMIO_RANGE ||
	       res->kind == VDK_RESOURCE_LEGACY_IRQ;
}

int vdk_io_manager_register_resources(struct vdk_io_manager *mgr,
				      const struct vdk_resource *res, size_t n,
				      struct vdk_bus_device dev)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < n; i++) {
		struct vdk_bus *bus = resource_bus(mgr, &res[i]);

		if (!resource_known(&res[i])) {
			ret = -EINVAL;
			break;
		}
		if (!bus)
			continue; /* IRQ: not the bus manager's business */
		ret = vdk_bus_register(bus, res[i].range, dev);
		if (ret)
			break;
	}
	if (ret == 0)
		return 0;

	/* Roll back the ranges this call registered (entries 0..i-1). */
	while (i-- > 0) {
		struct vdk_bus *bus = resource_bus(mgr, &res[i]);

		if (bus)
			vdk_bus_deregister(bus, res[i].range.base, NULL);
	}
	return ret;
}

size_t vdk_io_manager_deregister_resources(struct vdk_io_manager *mgr,
					   const struct vdk_resource *res,
					   size_t n)
{
	size_t removed = 0;

	for (size_t i = 0; i < n; i++) {
		struct vdk_bus *bus = resource_bus(mgr, &res[i]);

		if (bus &&
		    vdk_bus_deregister(bus, res[i].range.base, NULL) == 0)
			removed++;
	}
	return removed;
}
