/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CBOR helpers for snapshots (see snapshot.h): the bounded loader every
 * restore path goes through, and the small builders and type-checked getters
 * the device framework, the transports and the devices share.
 *
 * Do not assume a snapshot is sensible: it may be truncated, corrupt or
 * crafted. vdk_snapshot_load() refuses what would make libcbor's builder
 * misbehave before the builder sees it; the getters check every item's type
 * (and range) before reading it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

/* ---- building ----------------------------------------------------------- */

cbor_item_t *vdk_snapshot_uint(uint64_t v)
{
	if (v <= UINT8_MAX)
		return cbor_build_uint8((uint8_t)v);
	if (v <= UINT16_MAX)
		return cbor_build_uint16((uint16_t)v);
	if (v <= UINT32_MAX)
		return cbor_build_uint32((uint32_t)v);
	return cbor_build_uint64(v);
}

bool vdk_snapshot_put(cbor_item_t *map, const char *key, cbor_item_t *val)
{
	cbor_item_t *k;
	bool ok;

	if (!val)
		return false;
	k = cbor_build_string(key);
	ok = k && cbor_map_add(map, (struct cbor_pair){.key = k, .value = val});
	if (k)
		cbor_decref(&k);
	cbor_decref(&val);
	return ok;
}

bool vdk_snapshot_put_uint(cbor_item_t *map, const char *key, uint64_t v)
{
	return vdk_snapshot_put(map, key, vdk_snapshot_uint(v));
}

int vdk_snapshot_serialize(const cbor_item_t *item, uint8_t **buf, size_t *len)
{
	unsigned char *out = NULL;
	size_t cap = 0, n;

	*buf = NULL;
	*len = 0;
	n = cbor_serialize_alloc(item, &out, &cap);
	if (n == 0) {
		free(out);
		return -ENOMEM;
	}
	*buf = out;
	*len = n;
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

bool vdk_snapshot_str_eq(const cbor_item_t *item, const char *s)
{
	size_t n = strlen(s);

	return item && cbor_isa_string(item) && cbor_string_is_definite(item) &&
	       cbor_string_length(item) == n &&
	       memcmp(cbor_string_handle(item), s, n) == 0;
}

const cbor_item_t *vdk_snapshot_map_get(const cbor_item_t *map, const char *key)
{
	struct cbor_pair *p;
	size_t n;

	if (!map || !cbor_isa_map(map))
		return NULL;
	p = cbor_map_handle(map);
	n = cbor_map_size(map);
	for (size_t i = 0; i < n; i++)
		if (vdk_snapshot_str_eq(p[i].key, key))
			return p[i].value;
	return NULL;
}

int vdk_snapshot_map_split(const cbor_item_t *map, const char *const keys[],
			   size_t n, const cbor_item_t *vals[])
{
	struct cbor_pair *pairs;
	size_t size, i, k;

	for (k = 0; k < n; k++)
		vals[k] = NULL;
	if (!map || !cbor_isa_map(map))
		return -EINVAL;
	size = cbor_map_size(map);
	pairs = cbor_map_handle(map);
	for (i = 0; i < size; i++) {
		if (!pairs[i].key || !pairs[i].value)
			return -EINVAL;
		for (k = 0; k < n; k++)
			if (vdk_snapshot_str_eq(pairs[i].key, keys[k]))
				break;
		if (k == n || vals[k])
			return -EINVAL;
		vals[k] = pairs[i].value;
	}
	return 0;
}

bool vdk_snapshot_uint_value(const cbor_item_t *item, uint64_t max,
			     uint64_t *out)
{
	if (!item || !cbor_isa_uint(item) || cbor_get_int(item) > max)
		return false;
	*out = cbor_get_int(item);
	return true;
}

bool vdk_snapshot_get_uint(const cbor_item_t *map, const char *key,
			   uint64_t max, uint64_t *out)
{
	return vdk_snapshot_uint_value(vdk_snapshot_map_get(map, key), max,
				       out);
}

bool vdk_snapshot_get_bool(const cbor_item_t *map, const char *key, bool *out)
{
	const cbor_item_t *v = vdk_snapshot_map_get(map, key);

	/* libcbor 0.8's cbor_is_bool() asserts on a float item: check that
	 * the item is a simple value (not a float) first. */
	if (!v || !cbor_isa_float_ctrl(v) || !cbor_float_ctrl_is_ctrl(v) ||
	    !cbor_is_bool(v))
		return false;
	*out = cbor_get_bool(v);
	return true;
}

/* ---- bounded loading ---------------------------------------------------- */

/*
 * Before cbor_load() builds items, walk the encoding with the streaming
 * decoder and refuse what would make the builder misbehave: a definite array
 * or map that claims more elements than there are bytes left (libcbor
 * allocates the claimed size up front), nesting deeper than
 * VDK_SNAPSHOT_MAX_DEPTH, truncation and trailing bytes.
 */
#define SCAN_INDEF UINT64_MAX

struct scan {
	size_t remaining; /* bytes from the current head on */
	uint64_t open[VDK_SNAPSHOT_MAX_DEPTH]; /* items each open container
						  awaits */
	unsigned depth;
	bool done;
	bool bad;
};

/* One complete item: count it in its container, closing finished ones. */
static void scan_item(struct scan *s)
{
	while (s->depth > 0) {
		uint64_t *top = &s->open[s->depth - 1];

		if (*top == SCAN_INDEF || --*top > 0)
			return;
		s->depth--; /* the container is complete: an item itself */
	}
	s->done = true;
}

static void scan_push(struct scan *s, uint64_t items)
{
	if (s->depth == VDK_SNAPSHOT_MAX_DEPTH) {
		s->bad = true;
		return;
	}
	if (items == 0) {
		scan_item(s);
		return;
	}
	s->open[s->depth++] = items;
}

static void scan_leaf(void *ctx)
{
	scan_item(ctx);
}
static void scan_u8(void *ctx, uint8_t v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_u16(void *ctx, uint16_t v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_u32(void *ctx, uint32_t v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_u64(void *ctx, uint64_t v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_string(void *ctx, cbor_data data, size_t len)
{
	(void)data;
	(void)len;
	scan_item(ctx);
}
static void scan_float(void *ctx, float v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_double(void *ctx, double v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_bool(void *ctx, bool v)
{
	(void)v;
	scan_item(ctx);
}
static void scan_tag(void *ctx, uint64_t v)
{
	/* A tag qualifies the item that follows; that item is counted. */
	(void)ctx;
	(void)v;
}
static void scan_array(void *ctx, size_t n)
{
	struct scan *s = ctx;

	/* Every element takes at least one byte after this head. */
	if (n >= s->remaining)
		s->bad = true;
	else
		scan_push(s, n);
}
static void scan_map(void *ctx, size_t n)
{
	struct scan *s = ctx;

	if (n >= s->remaining / 2 + 1)
		s->bad = true;
	else
		scan_push(s, 2 * (uint64_t)n);
}
static void scan_indef(void *ctx)
{
	scan_push(ctx, SCAN_INDEF);
}
static void scan_break(void *ctx)
{
	struct scan *s = ctx;

	if (s->depth == 0 || s->open[s->depth - 1] != SCAN_INDEF) {
		s->bad = true;
		return;
	}
	s->depth--;
	scan_item(s);
}

static const struct cbor_callbacks scan_callbacks = {
	.uint8 = scan_u8,
	.uint16 = scan_u16,
	.uint32 = scan_u32,
	.uint64 = scan_u64,
	.negint8 = scan_u8,
	.negint16 = scan_u16,
	.negint32 = scan_u32,
	.negint64 = scan_u64,
	.byte_string_start = scan_indef,
	.byte_string = scan_string,
	.string = scan_string,
	.string_start = scan_indef,
	.indef_array_start = scan_indef,
	.array_start = scan_array,
	.indef_map_start = scan_indef,
	.map_start = scan_map,
	.tag = scan_tag,
	.float2 = scan_float,
	.float4 = scan_float,
	.float8 = scan_double,
	.undefined = scan_leaf,
	.null = scan_leaf,
	.boolean = scan_bool,
	.indef_break = scan_break,
};

/* True if @buf holds exactly one well-bounded CBOR item. */
static bool scan_ok(const uint8_t *buf, size_t len)
{
	struct scan s = {0};
	size_t off = 0;

	while (!s.done && !s.bad) {
		struct cbor_decoder_result r;

		if (off >= len)
			return false; /* truncated */
		s.remaining = len - off;
		r = cbor_stream_decode(buf + off, len - off, &scan_callbacks,
				       &s);
		if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
			return false;
		off += r.read;
	}
	return !s.bad && off == len;
}

int vdk_snapshot_load(const uint8_t *buf, size_t len, cbor_item_t **out)
{
	struct cbor_load_result res;
	cbor_item_t *item;

	*out = NULL;
	if (!buf || len == 0 || !scan_ok(buf, len))
		return -EINVAL;
	item = cbor_load(buf, len, &res);
	if (!item)
		return res.error.code == CBOR_ERR_MEMERROR ? -ENOMEM : -EINVAL;
	if (res.read != len) {
		/* cannot happen after scan_ok(); kept as a second line */
		cbor_decref(&item);
		return -EINVAL;
	}
	*out = item;
	return 0;
}
