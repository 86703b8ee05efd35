/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration space of one PCI function (PCI Local Bus 3.0 §6, PCI
 * Express Base 4.0 §7.5), device side: a type 0 header, memory BARs, a
 * capability list and an MSI-X capability with its table and PBA in a BAR.
 *
 * The model owns every byte of the 256-byte configuration space (the
 * extended space of a PCI Express function, offsets 0x100..0xfff, reads 0:
 * no extended capabilities). The driver (guest) reaches it through
 * vdk_pci_config_read()/vdk_pci_config_write() (a host bridge's ECAM window
 * or ports 0xCF8/0xCFC) and reaches the BARs through vdk_pci_bar_read()/
 * vdk_pci_bar_write(), which serve the MSI-X table and PBA themselves and
 * pass every other access to the BAR's owner.
 *
 * What a hostile driver cannot do here:
 * - change a read-only field: each byte has a write mask (vendor/device
 *   ID, class, header type, capability pointers and bodies, MSI-X table
 *   size and location); only the command register's memory, bus master,
 *   SERR and INTx-disable bits, cache line size, latency timer, interrupt
 *   line, BAR address bits and what a capability marks writable change;
 * - build a capability loop: the list is built by vdk_pci_add_cap() in
 *   increasing offsets and its pointers are read-only;
 * - make two BARs of the function decode the same addresses: a BAR moved
 *   onto another (or whose address wraps) stops decoding until moved away
 *   (vdk_pci_bar_region() says -EADDRINUSE) and the map callback removes it;
 * - name an MSI-X vector beyond the table: table and PBA accesses are
 *   bounds-checked, reads outside return 0 and writes are ignored;
 * - access with a bad width: configuration accesses must be 1, 2 or 4
 *   bytes naturally aligned, MSI-X table accesses 4 or 8 bytes aligned
 *   (PCI 3.0 §6.8.2); others read as all-ones and are ignored.
 *
 * Locking: the caller serialises configuration and BAR accesses (one lock
 * per function, e.g. the transport's). The MSI-X and INTx state has its own
 * leaf lock so that vdk_pci_msix_notify() and vdk_pci_set_intx() may be
 * called from any thread; the delivery callbacks run under it and must not
 * call back into the model.
 */
#ifndef VDK_PCI_H
#define VDK_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Bytes of conventional configuration space the model keeps. */
#define VDK_PCI_CONFIG_SIZE 256
/** Bytes of configuration space of a PCI Express function (ECAM). */
#define VDK_PCI_CONFIG_SIZE_EXP 4096
/** BARs of a type 0 header. */
#define VDK_PCI_NUM_BARS 6
/** Largest MSI-X table (PCI 3.0 §6.8.2.3: table size is 11 bits). */
#define VDK_PCI_MSIX_MAX_VECTORS 2048
/** Bytes of one MSI-X table entry. */
#define VDK_PCI_MSIX_ENTRY_SIZE 16

/** BAR flags for vdk_pci_add_bar(). */
#define VDK_PCI_BAR_MEM64    0x1u /**< 64-bit memory BAR (uses 2 slots) */
#define VDK_PCI_BAR_PREFETCH 0x2u /**< prefetchable */

/** struct vdk_pci_id - the identity fields of the type 0 header. */
struct vdk_pci_id {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsystem_vendor_id;
	uint16_t subsystem_id;
	uint8_t revision_id;
	uint32_t class_code;   /**< 24 bits: base class, sub-class, prog-if */
	uint8_t interrupt_pin; /**< 0 none, 1..4 INTA..INTD */
};

/**
 * struct vdk_pci_bar_ops - the owner of a BAR's contents. Accesses reach
 * it with @offset in bytes from the BAR's start, already checked to lie
 * inside the BAR and outside the MSI-X table and PBA.
 */
struct vdk_pci_bar_ops {
	/** Read @len bytes (1..8) at @offset into @data (little-endian);
	 * @data is zeroed before the call. */
	void (*read)(void *opaque, unsigned int bar, uint64_t offset,
		     void *data, size_t len);
	/** Write @len bytes (1..8) of @data at @offset. */
	void (*write)(void *opaque, unsigned int bar, uint64_t offset,
		      const void *data, size_t len);
};

/**
 * Called when BAR @bar starts (@mapped true) or stops decoding the
 * guest-physical range [@addr, @addr + @size): memory decoding switched in
 * the command register, the BAR moved, or it moved onto another BAR. A
 * move is an unmap of the old range followed by a map of the new one.
 * Runs from inside vdk_pci_config_write().
 */
typedef void vdk_pci_bar_map_fn(void *opaque, unsigned int bar, uint64_t addr,
				uint64_t size, bool mapped);

/** Deliver one MSI message: write the 32-bit @data to guest-physical
 * @addr (PCI 3.0 §6.8). Runs under the interrupt lock. */
typedef void vdk_pci_msi_fn(void *opaque, uint64_t addr, uint32_t data);

/** The level of INTx changed (true: asserted). Runs under the interrupt
 * lock. */
typedef void vdk_pci_intx_fn(void *opaque, bool level);

/**
 * Called after the driver changed MSI-X state: entry @vector (address,
 * data or mask bit), or every vector at once (@vector == UINT16_MAX: the
 * enable or function mask bit). A VMM updates its KVM MSI routes here.
 * Runs from inside a config or BAR write, without the interrupt lock.
 */
typedef void vdk_pci_msix_changed_fn(void *opaque, uint16_t vector);

/**
 * Called for a configuration access that touches a capability added with a
 * hook: @cap is the capability's bytes (@cap_len of them, from its ID
 * byte), @offset and @len the accessed bytes relative to it. For a read it
 * runs before the bytes are copied out (it may update them); for a write,
 * after the writable bits were stored. The caller's serialisation applies.
 */
typedef void vdk_pci_cap_fn(void *opaque, uint8_t *cap, uint8_t cap_len,
			    uint8_t offset, size_t len, bool write);

/** struct vdk_pci_config - what vdk_pci_dev_new() needs. */
struct vdk_pci_config {
	struct vdk_pci_id id;
	vdk_pci_bar_map_fn *bar_map; /**< optional */
	vdk_pci_intx_fn *intx;	     /**< optional */
	void *opaque;		     /**< for bar_map and intx */
};

struct vdk_pci_dev;

/**
 * vdk_pci_dev_new() - a function with the header @cfg describes, no BARs
 * and no capabilities.
 * @err: 0, -EINVAL (NULL @cfg, vendor ID 0xffff, interrupt pin above 4,
 *       class code above 24 bits), -ENOMEM; may be NULL.
 * Return: the function (vdk_pci_dev_free()), or NULL.
 */
struct vdk_pci_dev *vdk_pci_dev_new(const struct vdk_pci_config *cfg, int *err);

/** vdk_pci_dev_free() - free @d; NULL is ignored. */
void vdk_pci_dev_free(struct vdk_pci_dev *d);

/**
 * vdk_pci_add_bar() - give the function memory BAR @bar (PCI 3.0 §6.2.5.1).
 * @size:  bytes; a power of two, at least 16 (4096 recommended), at most
 *         2 GiB for a 32-bit BAR.
 * @flags: VDK_PCI_BAR_*; a 64-bit BAR also takes slot @bar + 1.
 * @ops, @opaque: the BAR's contents (not owned); @ops may be NULL for a BAR
 *         that holds only MSI-X structures.
 * The BAR starts at address 0, not decoding.
 * Return: 0; -EINVAL bad size or flags; -ERANGE @bar (or @bar + 1) beyond
 * 5; -EBUSY slot taken.
 */
int vdk_pci_add_bar(struct vdk_pci_dev *d, unsigned int bar, uint64_t size,
		    unsigned int flags, const struct vdk_pci_bar_ops *ops,
		    void *opaque);

/**
 * vdk_pci_add_cap() - append a capability (PCI 3.0 §6.7) to the list.
 * @id:    capability ID (PCI_CAP_ID_*).
 * @body:  the @len bytes after the ID and next-pointer bytes.
 * @len:   bytes of @body; the capability takes @len + 2 bytes rounded up
 *         to 4.
 * @wmask: NULL (read-only capability) or @len bytes: bit set = writable
 *         by the driver.
 * @fn, @opaque: optional access hook (vdk_pci_cap_fn).
 * @offset: set to the capability's offset in configuration space.
 * Capabilities are placed one after the other from 0x40 in the order they
 * are added; the list's pointers are read-only, so it cannot loop.
 * Return: 0; -EINVAL bad arguments; -ENOSPC no room left below 0x100.
 */
int vdk_pci_add_cap(struct vdk_pci_dev *d, uint8_t id, const void *body,
		    uint8_t len, const uint8_t *wmask, vdk_pci_cap_fn *fn,
		    void *opaque, uint8_t *offset);

/**
 * vdk_pci_add_msix() - add an MSI-X capability (PCI 3.0 §6.8.2) with
 * @nvec vectors whose table is at @table_offset and pending bit array at
 * @pba_offset in BAR @bar (which must exist). Every vector starts masked;
 * MSI-X starts disabled.
 * @fn, @opaque:      message delivery (required).
 * @changed:          optional (KVM routing updates), with @opaque.
 * Return: 0; -EINVAL (@nvec 0 or above VDK_PCI_MSIX_MAX_VECTORS, offsets
 * not 8-aligned, table or PBA outside the BAR or overlapping, @fn NULL,
 * no such BAR); -EEXIST already added; -ENOSPC; -ENOMEM.
 */
int vdk_pci_add_msix(struct vdk_pci_dev *d, uint16_t nvec, unsigned int bar,
		     uint32_t table_offset, uint32_t pba_offset,
		     vdk_pci_msi_fn *fn, vdk_pci_msix_changed_fn *changed,
		     void *opaque);

/**
 * vdk_pci_config_read() - configuration read of @len bytes at @offset.
 * @len must be 1, 2 or 4 and @offset a multiple of @len, below
 * VDK_PCI_CONFIG_SIZE_EXP; otherwise @data is all-ones. Offsets 0x100 and
 * above read 0. @data is little-endian.
 */
void vdk_pci_config_read(struct vdk_pci_dev *d, uint32_t offset, void *data,
			 size_t len);

/**
 * vdk_pci_config_write() - configuration write; the same access rules as
 * vdk_pci_config_read() (bad accesses are ignored). Only writable bits
 * change; BAR and command changes call bar_map, MSI-X changes deliver
 * pending messages that became unmasked.
 */
void vdk_pci_config_write(struct vdk_pci_dev *d, uint32_t offset,
			  const void *data, size_t len);

/**
 * vdk_pci_bar_read() / vdk_pci_bar_write() - an access of @len bytes
 * (1..8) at @offset in BAR @bar: the MSI-X table and PBA are served here,
 * the rest goes to the BAR's ops. Accesses that are not inside the BAR,
 * to a BAR that does not exist, or of a width the region does not allow
 * read all-zero and are ignored.
 */
void vdk_pci_bar_read(struct vdk_pci_dev *d, unsigned int bar, uint64_t offset,
		      void *data, size_t len);
void vdk_pci_bar_write(struct vdk_pci_dev *d, unsigned int bar, uint64_t offset,
		       const void *data, size_t len);

/**
 * vdk_pci_bar_region() - where BAR @bar decodes.
 * @addr, @size: set to the BAR's address and size (even when not decoding).
 * Return: 0 decoding; -ENOENT no such BAR; -ENODEV memory decoding is off
 * or the BAR is unassigned (address 0); -EADDRINUSE it overlaps another
 * BAR of the function or wraps past the top of the address space.
 */
int vdk_pci_bar_region(struct vdk_pci_dev *d, unsigned int bar, uint64_t *addr,
		       uint64_t *size);

/**
 * vdk_pci_bar_find() - the BAR that decodes guest-physical @addr.
 * @offset: set to @addr's offset in it.
 * Return: the BAR index, or -ENOENT.
 */
int vdk_pci_bar_find(struct vdk_pci_dev *d, uint64_t addr, uint64_t *offset);

/**
 * vdk_pci_bar_set_addr() - place BAR @bar at @addr as firmware does (a
 * VMM assigning BARs before boot); the same as the driver writing the BAR
 * registers, including the overlap check and bar_map calls.
 * Return: 0; -ENOENT no such BAR; -EINVAL @addr not aligned to the BAR's
 * size or above 4 GiB for a 32-bit BAR.
 */
int vdk_pci_bar_set_addr(struct vdk_pci_dev *d, unsigned int bar,
			 uint64_t addr);

/**
 * vdk_pci_set_command() - set the command register as firmware does
 * (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, say); only writable bits.
 */
void vdk_pci_set_command(struct vdk_pci_dev *d, uint16_t command);

/** vdk_pci_command() - the command register. */
uint16_t vdk_pci_command(struct vdk_pci_dev *d);

/**
 * vdk_pci_msix_notify() - the function signals MSI-X vector @vector: the
 * message is delivered if MSI-X is enabled and neither the function nor
 * the vector is masked, otherwise the vector's pending bit is set and the
 * message goes out when it is unmasked (PCI 3.0 §6.8.3.5). Any thread.
 * Return: 0 delivered; 1 left pending; -ERANGE @vector beyond the table;
 * -ENODEV no MSI-X capability or MSI-X disabled (nothing is recorded: the
 * caller falls back to INTx).
 */
int vdk_pci_msix_notify(struct vdk_pci_dev *d, uint16_t vector);

/** vdk_pci_msix_enabled() - MSI-X enable bit set. Any thread. */
bool vdk_pci_msix_enabled(struct vdk_pci_dev *d);

/**
 * vdk_pci_msix_entry() - the driver's programming of @vector.
 * @addr, @data, @masked: may be NULL. @masked is the vector's own mask bit
 * or'ed with the function mask.
 * Return: 0; -ERANGE; -ENODEV no MSI-X.
 */
int vdk_pci_msix_entry(struct vdk_pci_dev *d, uint16_t vector, uint64_t *addr,
		       uint32_t *data, bool *masked);

/** vdk_pci_msix_pending() - the pending bit of @vector (false if none). */
bool vdk_pci_msix_pending(struct vdk_pci_dev *d, uint16_t vector);

/**
 * vdk_pci_set_intx() - the function's INTx level (its interrupt status
 * bit, PCI 3.0 §6.2.3). The pin is asserted while the level is high, the
 * command register's INTx disable bit is clear and MSI-X is off; the intx
 * callback sees each change of the pin. Any thread.
 */
void vdk_pci_set_intx(struct vdk_pci_dev *d, bool level);

/**
 * vdk_pci_reset() - function-level reset of the header and capability
 * state: command 0 (nothing decodes; bar_map is told), BAR addresses 0,
 * writable capability bytes 0, MSI-X disabled with every vector masked and
 * nothing pending, INTx low.
 */
void vdk_pci_reset(struct vdk_pci_dev *d);

/**
 * vdk_pci_state_size() - bytes of the state vdk_pci_save_state() writes:
 * what the driver can change (configuration space, BAR addresses, MSI-X
 * table and pending bits). Fixed for a function once built.
 */
size_t vdk_pci_state_size(struct vdk_pci_dev *d);

/**
 * vdk_pci_save_state() - write the function's state to @buf (@len must be
 * vdk_pci_state_size()); an opaque little-endian layout for
 * vdk_pci_load_state() of a function built the same way.
 * Return: 0; -EINVAL wrong @len.
 */
int vdk_pci_save_state(struct vdk_pci_dev *d, void *buf, size_t len);

/**
 * vdk_pci_load_state() - load a vdk_pci_save_state() into @d, which must
 * be built the same way (same header, BARs, capabilities). Untrusted
 * input: every read-only byte must equal @d's, BAR addresses must be
 * aligned to their size (32-bit BARs below 4 GiB), reserved MSI-X bits and
 * pending bits beyond the table clear; otherwise nothing changes. Then
 * bar_map hears about the BARs that decode and pending unmasked messages
 * are delivered.
 * Return: 0; -EINVAL malformed or from a different function.
 */
int vdk_pci_load_state(struct vdk_pci_dev *d, const void *buf, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_PCI_H */
