/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal: the engine behind every device type's settings (<vdk/config.h>).
 * A device type describes its settings as a table of rules (name, syntax,
 * help, and where and how the value is stored in its config struct); the
 * engine finds a setting by name, checks and stores its value, splits a
 * spec, and frees the strings it copied. Not installed.
 */
#ifndef VDK_CONFIG_RULES_H
#define VDK_CONFIG_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/config.h>

/** How a setting's value is stored in the config struct. */
enum vdk_config_type {
	VDK_CONFIG_FLAG,   /**< bool at @offset, set to true */
	VDK_CONFIG_STRING, /**< const char * at @offset: a copy, kept at
			    *   @copy (char *) and freed by fini; length in
			    *   [@min, @max] bytes */
	VDK_CONFIG_U16,	   /**< uint16_t at @offset, in [@min, @max] */
	VDK_CONFIG_U32,	   /**< uint32_t at @offset, in [@min, @max] */
	VDK_CONFIG_ENUM,   /**< int-sized enum at @offset, one of @choices */
	VDK_CONFIG_CUSTOM, /**< @set stores it */
};

/** One accepted value of a VDK_CONFIG_ENUM setting. */
struct vdk_config_choice {
	const char *name; /**< "io_uring" */
	int value;	  /**< VDK_BLK_IO_ASYNC */
};

struct vdk_config_rule;

/**
 * typedef vdk_config_set_fn - store @value (NULL for a flag) of setting @r
 * in @cfg. Return: 0, or -EINVAL / -ENOMEM with @msg written
 * (vdk_config_msg()).
 */
typedef int vdk_config_set_fn(void *cfg, const struct vdk_config_rule *r,
			      const char *value, char *msg, size_t len);

/** One setting of a device type. */
struct vdk_config_rule {
	struct vdk_config_key key; /**< what vdk_<type>_config_key() lists */
	/** Another spelling, not listed: "ro" for readonly; with
	 * @alias_value, the whole field "cache=none" for direct. */
	const char *alias;
	const char *alias_value;
	enum vdk_config_type type;
	size_t offset; /**< of the member in the config struct */
	/** VDK_CONFIG_STRING (and a CUSTOM setting that stores a string
	 * with vdk_config_store_string()): of the char * copy that fini
	 * frees, never 0; 0 for other settings. */
	size_t copy;
	uint32_t min, max;
	bool pow2;				 /**< numbers: a power of two */
	const struct vdk_config_choice *choices; /**< {NULL}-terminated */
	vdk_config_set_fn *set;			 /**< VDK_CONFIG_CUSTOM */
};

/** A device type's settings: @n rules (at most 64); the first field of a
 * spec is the value of rule @positional - 1 (0: none). */
struct vdk_config_schema {
	const struct vdk_config_rule *rules;
	size_t n;
	size_t positional;
};

/** vdk_config_schema_key() - the public part of rule @index, or NULL. */
const struct vdk_config_key *
vdk_config_schema_key(const struct vdk_config_schema *s, size_t index);

/** vdk_config_schema_set() - one setting by name or alias (see
 * vdk_blk_config_set()). */
int vdk_config_schema_set(const struct vdk_config_schema *s, void *cfg,
			  const char *key, const char *value, char *msg,
			  size_t len);

/** vdk_config_schema_parse() - a comma-separated spec (see
 * vdk_blk_config_parse()). */
int vdk_config_schema_parse(const struct vdk_config_schema *s, void *cfg,
			    const char *spec, char *msg, size_t len);

/** vdk_config_schema_fini() - free the copies of the rules with a @copy
 * and clear the members that pointed to them. */
void vdk_config_schema_fini(const struct vdk_config_schema *s, void *cfg);

/**
 * vdk_config_store_string() - the STRING rule's work, for custom setters:
 * check @value's length against @r's min/max, copy it into *@copy (freeing
 * the old copy) and point *@member at it.
 * Return: 0, -EINVAL or -ENOMEM (@msg written).
 */
int vdk_config_store_string(const struct vdk_config_rule *r,
			    const char **member, char **copy, const char *value,
			    char *msg, size_t len);

/**
 * vdk_config_msg() - write "NAME: <message>" to @msg (@len bytes; @msg may
 * be NULL).
 * Return: @err, so that setters can `return vdk_config_msg(...)`.
 */
int vdk_config_msg(int err, char *msg, size_t len, const char *name,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif /* VDK_CONFIG_RULES_H */
