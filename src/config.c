// SPDX-License-Identifier: Apache-2.0
/*
 * The settings engine (config_rules.h): find a setting, check and store its
 * value, split a spec at its commas (",," is a comma inside a value), free
 * the copies. The values come from command lines and management software:
 * every number is range-checked, every string length-checked, and a
 * setting given twice in one spec is refused rather than silently
 * overridden.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_rules.h"

int vdk_config_msg(int err, char *msg, size_t len, const char *name,
		   const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!msg || !len)
		return err;
	n = snprintf(msg, len, "%s: ", name);
	if (n >= 0 && (size_t)n < len) {
		va_start(ap, fmt);
		vsnprintf(msg + n, len - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return err;
}

const struct vdk_config_key *
vdk_config_schema_key(const struct vdk_config_schema *s, size_t index)
{
	return index < s->n ? &s->rules[index].key : NULL;
}

/* The rule named @key, or whose alias is @key; *@alias tells which. */
static const struct vdk_config_rule *find(const struct vdk_config_schema *s,
					  const char *key, bool *alias)
{
	for (size_t i = 0; i < s->n; i++) {
		*alias = false;
		if (!strcmp(s->rules[i].key.name, key))
			return &s->rules[i];
		*alias = true;
		if (s->rules[i].alias && !strcmp(s->rules[i].alias, key))
			return &s->rules[i];
	}
	return NULL;
}

/* A decimal number in [r->min, r->max] (a power of two if r->pow2). */
static int parse_number(const struct vdk_config_rule *r, const char *value,
			uint32_t *out, char *msg, size_t len)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10)
					       : (end = (char *)value, 0);
	if (end == value || *end || errno || v < r->min || v > r->max ||
	    (r->pow2 && (v & (v - 1))))
		return vdk_config_msg(-EINVAL, msg, len, r->key.name,
				      "want %s%u..%u, not '%s'",
				      r->pow2 ? "a power of two " : "", r->min,
				      r->max, value);
	*out = (uint32_t)v;
	return 0;
}

int vdk_config_store_string(const struct vdk_config_rule *r,
			    const char **member, char **copy, const char *value,
			    char *msg, size_t len)
{
	size_t n = strlen(value);
	char *c;

	if (n < r->min)
		return vdk_config_msg(-EINVAL, msg, len, r->key.name, "empty");
	if (n > r->max)
		return vdk_config_msg(-EINVAL, msg, len, r->key.name,
				      "at most %u bytes, not %zu", r->max, n);
	c = strdup(value);
	if (!c)
		return vdk_config_msg(-ENOMEM, msg, len, r->key.name,
				      "out of memory");
	free(*copy);
	*copy = c;
	*member = c;
	return 0;
}

static int set_enum(const struct vdk_config_rule *r, char *field,
		    const char *value, char *msg, size_t len)
{
	for (const struct vdk_config_choice *c = r->choices; c->name; c++) {
		if (!strcmp(c->name, value)) {
			int v = c->value;

			memcpy(field, &v, sizeof(v));
			return 0;
		}
	}
	return vdk_config_msg(-EINVAL, msg, len, r->key.name,
			      "want %s, not '%s'", r->key.value, value);
}

static int set_rule(const struct vdk_config_rule *r, void *cfg,
		    const char *value, char *msg, size_t len)
{
	char *field = (char *)cfg + r->offset;
	uint32_t v = 0;
	int ret;

	if (!r->key.value && value)
		return vdk_config_msg(-EINVAL, msg, len, r->key.name,
				      "takes no value (a flag)");
	if (r->key.value && !value)
		return vdk_config_msg(-EINVAL, msg, len, r->key.name,
				      "needs a value (%s=%s)", r->key.name,
				      r->key.value);
	switch (r->type) {
	case VDK_CONFIG_FLAG:
		*(bool *)field = true;
		return 0;
	case VDK_CONFIG_STRING:
		return vdk_config_store_string(r, (const char **)field,
					       (char **)((char *)cfg + r->copy),
					       value, msg, len);
	case VDK_CONFIG_U16:
	case VDK_CONFIG_U32:
		ret = parse_number(r, value, &v, msg, len);
		if (ret == 0 && r->type == VDK_CONFIG_U16)
			*(uint16_t *)field = (uint16_t)v;
		else if (ret == 0)
			*(uint32_t *)field = v;
		return ret;
	case VDK_CONFIG_ENUM:
		return set_enum(r, field, value, msg, len);
	case VDK_CONFIG_CUSTOM:
		return r->set(cfg, r, value, msg, len);
	}
	return -EINVAL;
}

int vdk_config_schema_set(const struct vdk_config_schema *s, void *cfg,
			  const char *key, const char *value, char *msg,
			  size_t len)
{
	const struct vdk_config_rule *r;
	bool alias;

	if (msg && len)
		msg[0] = '\0';
	if (!cfg || !key)
		return vdk_config_msg(-EINVAL, msg, len, "setting",
				      "no config or no name");
	r = find(s, key, &alias);
	if (!r)
		return vdk_config_msg(-EINVAL, msg, len, key,
				      "unknown setting");
	if (alias && r->alias_value) {
		/* "cache=none" means "direct"; "cache=other" means nothing */
		if (!value || strcmp(value, r->alias_value))
			return vdk_config_msg(-EINVAL, msg, len, key,
					      "want %s=%s", key,
					      r->alias_value);
		value = NULL;
	}
	return set_rule(r, cfg, value, msg, len);
}

/*
 * Split the next comma-separated field off *@cur, in place: ",," is one
 * comma inside the field; a single ',' ends it. *@cur becomes NULL after
 * the last field. Return: the field (may be empty), or NULL at the end.
 */
static char *next_field(char **cur)
{
	char *field = *cur, *r, *w;

	if (!field)
		return NULL;
	for (r = w = field; *r; r++, w++) {
		if (*r == ',') {
			if (r[1] != ',')
				break;
			r++;
		}
		*w = *r;
	}
	*cur = *r ? r + 1 : NULL;
	*w = '\0';
	return field;
}

int vdk_config_schema_parse(const struct vdk_config_schema *s, void *cfg,
			    const char *spec, char *msg, size_t len)
{
	uint64_t seen = 0;
	char *copy, *cur, *field, *value;
	const struct vdk_config_rule *r;
	bool first = true, alias;
	int ret = 0;

	if (msg && len)
		msg[0] = '\0';
	if (!cfg || !spec || !*spec)
		return vdk_config_msg(-EINVAL, msg, len, "spec", "empty");
	if (s->n > 64) /* @seen has a bit per setting */
		return vdk_config_msg(-EINVAL, msg, len, "spec",
				      "too many settings to parse");
	copy = strdup(spec);
	if (!copy)
		return vdk_config_msg(-ENOMEM, msg, len, "spec",
				      "out of memory");
	cur = copy;
	while (ret == 0 && (field = next_field(&cur))) {
		bool positional = first && s->positional;

		first = false;
		if (positional) {
			/* The first field is the value, even with a '='. */
			r = &s->rules[s->positional - 1];
			value = field;
		} else if (!*field) {
			ret = vdk_config_msg(-EINVAL, msg, len, "spec",
					     "empty setting (a lone ',')");
			break;
		} else {
			value = strchr(field, '=');
			if (value)
				*value++ = '\0';
			r = find(s, field, &alias);
		}
		if (r && (seen & (1ull << (r - s->rules)))) {
			ret = vdk_config_msg(-EINVAL, msg, len, r->key.name,
					     "given twice");
			break;
		}
		if (r)
			seen |= 1ull << (r - s->rules);
		ret = positional ? set_rule(r, cfg, value, msg, len)
				 : vdk_config_schema_set(s, cfg, field, value,
							 msg, len);
	}
	free(copy);
	return ret;
}

void vdk_config_schema_fini(const struct vdk_config_schema *s, void *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < s->n; i++) {
		const struct vdk_config_rule *r = &s->rules[i];
		const char **member;
		char **copy;

		if (!r->copy)
			continue;
		member = (const char **)((char *)cfg + r->offset);
		copy = (char **)((char *)cfg + r->copy);
		if (*member == *copy)
			*member = NULL;
		free(*copy);
		*copy = NULL;
	}
}
