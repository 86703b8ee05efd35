/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small AML (ACPI Machine Language) byte builder, enough for a DSDT that
 * declares devices by name: Scope, Device, Name, integers, strings,
 * packages and resource-template buffers (ACPI 6.4 §20.2, "AML
 * Grammar Definition"; §6.4, "Resource Data Types for ACPI").
 *
 * The builder writes into a caller buffer. Errors are sticky: once a call
 * fails (buffer full, bad name, nesting too deep), every later call is a
 * no-op and vmm_aml_finish() returns the first error, so callers emit a whole
 * table and check once.
 *
 * Objects with a PkgLength (Scope, Device, Package, Buffer) are written
 * with an open/close pair: the open call reserves the longest PkgLength
 * (4 bytes); the close call encodes the real length in as few bytes as
 * possible and moves the contents back over the unused bytes.
 */
#ifndef VDK_AML_H
#define VDK_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Deepest nesting of open PkgLength objects the builder tracks. */
#define VMM_AML_MAX_DEPTH 8
/** Largest value a PkgLength can encode (28 bits; ACPI 6.4 §20.2.4). */
#define VMM_AML_PKGLENGTH_MAX 0x0fffffffu

/** struct vmm_aml_builder - output cursor; fields are private to aml.c. */
struct vmm_aml_builder {
	uint8_t *buf;	    /**< output, host-virtual; not owned */
	size_t cap;	    /**< bytes available at @buf */
	size_t len;	    /**< bytes written */
	int err;	    /**< first error, 0 if none */
	unsigned int depth; /**< open PkgLength objects */
	/** Per open object: offset of its reserved PkgLength, ... */
	size_t open[VMM_AML_MAX_DEPTH];
	/** ... offset where its contents start, ... */
	size_t content[VMM_AML_MAX_DEPTH];
	/** ... and whether vmm_aml_buffer_open() opened it. */
	bool is_buffer[VMM_AML_MAX_DEPTH];
};

/**
 * vmm_aml_init() - start building into @buf.
 * @b:   the builder (caller's storage).
 * @buf: output buffer, host-virtual; not owned; may be NULL if @cap is 0.
 * @cap: bytes available at @buf.
 */
void vmm_aml_init(struct vmm_aml_builder *b, uint8_t *buf, size_t cap);

/**
 * vmm_aml_finish() - end building.
 * Return: the number of bytes written; -ENOSPC if @buf was too small;
 * -EINVAL for a malformed name or value, or if an object is still open
 * (or was closed twice); -E2BIG if an object exceeds VMM_AML_PKGLENGTH_MAX or
 * nesting exceeds VMM_AML_MAX_DEPTH.
 */
int vmm_aml_finish(struct vmm_aml_builder *b);

/**
 * vmm_aml_pkglength_encode() - encode a PkgLength (ACPI 6.4 §20.2.4).
 * @content: bytes that follow the PkgLength in the object.
 * @out:     at least 4 bytes.
 *
 * The encoded value counts the PkgLength bytes themselves plus @content.
 * Return: the number of bytes written to @out (1 to 4), or -E2BIG if the
 * total exceeds VMM_AML_PKGLENGTH_MAX.
 */
int vmm_aml_pkglength_encode(size_t content, uint8_t out[4]);

/** vmm_aml_bytes() - append @n raw bytes (e.g. a resource descriptor). */
void vmm_aml_bytes(struct vmm_aml_builder *b, const void *data, size_t n);

/**
 * vmm_aml_name_string() - append a NameString (ACPI 6.4 §20.2.2).
 * @path: "\" for the root, or an optional "\" followed by 1 to 255 name
 * segments separated by ".", each 1 to 4 characters (padded with "_"); the
 * first character of a segment is A-Z or "_", the others A-Z, 0-9 or "_".
 * Examples: "_SB_", "\_SB_.COM1", "V000". Anything else sets -EINVAL.
 */
void vmm_aml_name_string(struct vmm_aml_builder *b, const char *path);

/**
 * vmm_aml_integer() - append the shortest encoding of @v: ZeroOp, OneOp,
 * BytePrefix, WordPrefix, DWordPrefix or QWordPrefix (ACPI 6.4 §20.2.3).
 */
void vmm_aml_integer(struct vmm_aml_builder *b, uint64_t v);

/**
 * vmm_aml_string() - append a String (StringPrefix, ASCII 0x01-0x7f, NUL).
 * A character outside that range sets -EINVAL.
 */
void vmm_aml_string(struct vmm_aml_builder *b, const char *s);

/**
 * vmm_aml_eisaid() - append the compressed EISA ID of @id as a DWord integer,
 * as ASL's EisaId() does (ACPI 6.4 §19.6.35): three letters A-Z and four
 * hexadecimal digits, e.g. "PNP0501". Anything else sets -EINVAL.
 */
void vmm_aml_eisaid(struct vmm_aml_builder *b, const char *id);

/** vmm_aml_name_begin() - NameOp and @name; the caller appends the value. */
void vmm_aml_name_begin(struct vmm_aml_builder *b, const char *name);

/** vmm_aml_scope_open() - ScopeOp, PkgLength and @path; close with vmm_aml_close. */
void vmm_aml_scope_open(struct vmm_aml_builder *b, const char *path);

/** vmm_aml_device_open() - ExtOpPrefix DeviceOp, PkgLength and @name. */
void vmm_aml_device_open(struct vmm_aml_builder *b, const char *name);

/**
 * vmm_aml_package_open() - PackageOp, PkgLength and NumElements (@count, at
 * most 255); the caller appends @count data objects, then vmm_aml_close().
 */
void vmm_aml_package_open(struct vmm_aml_builder *b, unsigned int count);

/**
 * vmm_aml_buffer_open() - BufferOp and PkgLength; vmm_aml_close() inserts the
 * BufferSize (the number of bytes appended in between) and closes it.
 */
void vmm_aml_buffer_open(struct vmm_aml_builder *b);

/**
 * vmm_aml_close() - close the innermost open Scope, Device or Package
 * (-EINVAL if the innermost open object is a Buffer).
 */
void vmm_aml_close(struct vmm_aml_builder *b);

/**
 * vmm_aml_buffer_close() - close the innermost open Buffer (see above);
 * -EINVAL if the innermost open object is not a Buffer.
 */
void vmm_aml_buffer_close(struct vmm_aml_builder *b);

/* ---- resource descriptors (ACPI 6.4 §6.4), for ResourceTemplate ------- */

/** Memory32Fixed(ReadWrite or ReadOnly, @base, @size): 12 bytes. */
void vmm_aml_res_memory32_fixed(struct vmm_aml_builder *b, bool writeable,
				uint32_t base, uint32_t size);

/**
 * Interrupt(ResourceConsumer, Level or Edge, ActiveHigh, Exclusive) {@gsi}:
 * the Extended Interrupt Descriptor, 9 bytes.
 */
void vmm_aml_res_interrupt(struct vmm_aml_builder *b, bool level, uint32_t gsi);

/** IO(Decode16, @port, @port, @align, @len): fixed range, 8 bytes. */
void vmm_aml_res_io(struct vmm_aml_builder *b, uint16_t port, uint8_t align,
		    uint8_t len);

/** IRQNoFlags() {@irq}: ISA IRQ 0-15 (edge, active high), 3 bytes. */
void vmm_aml_res_irq_noflags(struct vmm_aml_builder *b, unsigned int irq);

/**
 * WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, @min,
 * @max, 0, @max - @min + 1): the bus range a PCI host bridge decodes
 * (ACPI 6.4 §6.4.3.5.3), 16 bytes.
 */
void vmm_aml_res_word_bus(struct vmm_aml_builder *b, uint16_t min,
			  uint16_t max);

/**
 * DWordMemory / QWordMemory(ResourceProducer, PosDecode, MinFixed,
 * MaxFixed, Cacheable or NonCacheable, ReadWrite, 0, @base, @base + @len
 * - 1, 0, @len): a memory window a bridge forwards (ACPI 6.4 §6.4.3.5.1,
 * §6.4.3.5.2), 26 / 46 bytes. @len is not 0.
 */
void vmm_aml_res_dword_memory(struct vmm_aml_builder *b, bool cacheable,
			      uint32_t base, uint32_t len);
void vmm_aml_res_qword_memory(struct vmm_aml_builder *b, bool cacheable,
			      uint64_t base, uint64_t len);

/** End Tag with a zero checksum ("treat as valid"), 2 bytes. */
void vmm_aml_res_end(struct vmm_aml_builder *b);

#endif /* VDK_AML_H */
