/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal: CBOR helpers shared by the snapshot code of the device framework
 * (src/device.c), the transports (src/transport/mmio_snapshot.c) and the
 * devices (src/devices/). Not installed; not part of the public API.
 *
 * A snapshot handed to a restore function is untrusted input. Load it with
 * vdk_snapshot_load(), never with cbor_load() directly, and read it only
 * through the type-checking getters below.
 */
#ifndef VDK_SNAPSHOT_H
#define VDK_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#ifndef VDK_HIDDEN
#define VDK_HIDDEN __attribute__((visibility("hidden")))
#endif

/** Deepest nesting of arrays and maps vdk_snapshot_load() accepts. */
#define VDK_SNAPSHOT_MAX_DEPTH 32

/**
 * vdk_snapshot_load() - decode one untrusted CBOR item.
 * @buf: @len bytes (host memory) holding exactly one CBOR data item.
 * @out: set to the item (the caller owns one reference and releases it with
 *       cbor_decref()), or to NULL on failure.
 *
 * Before cbor_load() builds anything, the encoding is walked with the
 * streaming decoder and refused if a definite array or map declares more
 * elements than bytes remain (libcbor 0.8 allocates the declared size up
 * front, so five bytes could ask for gigabytes), if arrays and maps nest
 * deeper than VDK_SNAPSHOT_MAX_DEPTH, if it is truncated or malformed, or if
 * bytes follow the item (RFC 8949 §3, §5.3).
 *
 * Return: 0; -EINVAL if @buf is NULL, @len is 0 or the bytes are not one
 * well-bounded CBOR item; -ENOMEM if decoding ran out of memory.
 */
VDK_HIDDEN int vdk_snapshot_load(const uint8_t *buf, size_t len,
				 cbor_item_t **out);

/**
 * vdk_snapshot_serialize() - encode @item into a new buffer.
 * @buf: set to a malloc()ed buffer the caller frees, or NULL on failure.
 * @len: set to the bytes in *@buf, or 0 on failure.
 *
 * Return: 0; -ENOMEM.
 */
VDK_HIDDEN int vdk_snapshot_serialize(const cbor_item_t *item, uint8_t **buf,
				      size_t *len);

/**
 * vdk_snapshot_uint() - build an unsigned integer in its shortest encoding
 * (RFC 8949 §4.2.1). Return: a new item (one reference), or NULL.
 */
VDK_HIDDEN cbor_item_t *vdk_snapshot_uint(uint64_t v);

/**
 * vdk_snapshot_put() - add "@key": @val to the map @map.
 * @val: consumed: the caller's reference is released whatever happens. May
 *       be NULL (a failed build), which makes the call fail.
 *
 * Return: true if the pair was added; false on allocation failure, a NULL
 * @val or a full definite map.
 */
VDK_HIDDEN bool vdk_snapshot_put(cbor_item_t *map, const char *key,
				 cbor_item_t *val);

/** vdk_snapshot_put_uint() - vdk_snapshot_put() of vdk_snapshot_uint(@v). */
VDK_HIDDEN bool vdk_snapshot_put_uint(cbor_item_t *map, const char *key,
				      uint64_t v);

/**
 * vdk_snapshot_str_eq() - true if @item is a definite text string equal to
 * the NUL-terminated @s. @item may be NULL (false).
 */
VDK_HIDDEN bool vdk_snapshot_str_eq(const cbor_item_t *item, const char *s);

/**
 * vdk_snapshot_map_get() - the value of the first pair of @map whose key is
 * the text string @key, or NULL if there is none or @map (may be NULL) is
 * not a map. The result is borrowed from @map.
 */
VDK_HIDDEN const cbor_item_t *vdk_snapshot_map_get(const cbor_item_t *map,
						   const char *key);

/**
 * vdk_snapshot_map_split() - sort the pairs of @map by key, strictly.
 * @keys: the @n keys allowed.
 * @vals: @n slots; vals[i] is set to the value (borrowed from @map) of key
 *        keys[i], or NULL if @map lacks it.
 *
 * Return: 0; -EINVAL if @map is not a map or has a pair with a missing or
 * non-string key, a key not in @keys or a key twice.
 */
VDK_HIDDEN int vdk_snapshot_map_split(const cbor_item_t *map,
				      const char *const keys[], size_t n,
				      const cbor_item_t *vals[]);

/**
 * vdk_snapshot_uint_value() - read an unsigned integer item.
 * @item: may be NULL.
 * @max:  the largest value accepted.
 * @out:  set to the value on success; untouched otherwise.
 *
 * Return: true if @item is an unsigned integer <= @max.
 */
VDK_HIDDEN bool vdk_snapshot_uint_value(const cbor_item_t *item, uint64_t max,
					uint64_t *out);

/** vdk_snapshot_get_uint() - vdk_snapshot_uint_value() of the value of
 * @key in @map (vdk_snapshot_map_get()). */
VDK_HIDDEN bool vdk_snapshot_get_uint(const cbor_item_t *map, const char *key,
				      uint64_t max, uint64_t *out);

/** vdk_snapshot_get_bool() - true, setting *@out, if @key of @map is a
 * boolean; false (and *@out untouched) otherwise. */
VDK_HIDDEN bool vdk_snapshot_get_bool(const cbor_item_t *map, const char *key,
				      bool *out);

/**
 * VDK_SNAPSHOT_BYTES_OPS() - define the byte-level snapshot/restore ops of
 * struct vdk_device_ops, @prefix##_snapshot and @prefix##_restore, over a
 * device's CBOR item functions @prefix##_snapshot_item(void *dev,
 * cbor_item_t **out) and @prefix##_restore_item(void *dev, const
 * cbor_item_t *item): the bytes are the item's encoding; bytes that are not
 * one well-bounded CBOR item are refused with -EINVAL.
 */
#define VDK_SNAPSHOT_BYTES_OPS(prefix)                                         \
	static int prefix##_snapshot(void *dev, uint8_t **buf, size_t *len)    \
	{                                                                      \
		cbor_item_t *item = NULL;                                      \
		int r = prefix##_snapshot_item(dev, &item);                    \
                                                                               \
		if (r == 0) {                                                  \
			r = vdk_snapshot_serialize(item, buf, len);            \
			cbor_decref(&item);                                    \
		}                                                              \
		return r;                                                      \
	}                                                                      \
	static int prefix##_restore(void *dev, const uint8_t *buf, size_t len) \
	{                                                                      \
		cbor_item_t *item;                                             \
		int r = vdk_snapshot_load(buf, len, &item);                    \
                                                                               \
		if (r < 0)                                                     \
			return r == -ENOMEM ? r : -EINVAL;                     \
		r = prefix##_restore_item(dev, item);                          \
		cbor_decref(&item);                                            \
		return r;                                                      \
	}

#endif /* VDK_SNAPSHOT_H */
