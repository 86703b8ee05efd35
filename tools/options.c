// SPDX-License-Identifier: Apache-2.0
/*
 * Command-line conventions shared by every vdk program (options.h).
 */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void vdk_tool_cli_init(struct vdk_tool_cli *c, const char *prog,
		       const struct option *longopts)
{
	memset(c, 0, sizeof(*c));
	c->prog = prog;
	c->longopts = longopts;
	opterr = 0;
}

void vdk_tool_cli_repeatable(struct vdk_tool_cli *c, int opt)
{
	if (opt >= 0 && opt < VDK_TOOL_CLI_MAX_ID)
		c->repeatable[opt] = true;
}

/* Whether option id @opt takes a value. */
static bool takes_value(const struct vdk_tool_cli *c, const char *optstring,
			int opt)
{
	const char *p;

	for (const struct option *o = c->longopts; o && o->name; o++)
		if (!o->flag && o->val == opt)
			return o->has_arg == required_argument;
	if (opt <= 0 || opt >= 0x100 || opt == ':')
		return false;
	p = strchr(optstring, opt);
	return p && p[1] == ':';
}

int vdk_tool_cli_next(struct vdk_tool_cli *c, int argc, char **argv,
		      const char *optstring)
{
	char buf[64];
	int opt;

	if (optstring[0] != ':') {
		snprintf(buf, sizeof(buf), ":%s", optstring);
		optstring = buf;
	}
	opt = getopt_long(argc, argv, optstring, c->longopts, NULL);
	if (opt == '?' || opt == ':') {
		(void)vdk_tool_cli_bad(c, opt, argv);
		return '?';
	}
	if (opt >= 0 && opt < VDK_TOOL_CLI_MAX_ID && !c->repeatable[opt] &&
	    takes_value(c, optstring, opt) && vdk_tool_cli_once(c, opt) < 0)
		return '?';
	return opt;
}

int vdk_tool_cli_error(const struct vdk_tool_cli *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s (see --help)\n", c->prog, buf);
	return -EINVAL;
}

/* The long name of option id @opt, or NULL. */
static const char *long_name(const struct vdk_tool_cli *c, int opt)
{
	for (const struct option *o = c->longopts; o && o->name; o++)
		if (!o->flag && o->val == opt)
			return o->name;
	return NULL;
}

int vdk_tool_cli_once(struct vdk_tool_cli *c, int opt)
{
	const char *name;

	if (opt < 0 || opt >= VDK_TOOL_CLI_MAX_ID)
		return 0;
	if (!c->seen[opt]) {
		c->seen[opt] = true;
		return 0;
	}
	name = long_name(c, opt);
	if (name)
		return vdk_tool_cli_error(c, "--%s given more than once", name);
	return vdk_tool_cli_error(c, "-%c given more than once", opt);
}

int vdk_tool_cli_bad(const struct vdk_tool_cli *c, int opt, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";

	if (opt == ':') {
		if (optopt > 0 && optopt < 0x100 && strncmp(arg, "--", 2))
			return vdk_tool_cli_error(
				c, "missing argument for '-%c'", optopt);
		return vdk_tool_cli_error(c, "missing argument for '%s'", arg);
	}
	/* A long option that takes no value was given one ("--rng=1"). */
	if (optopt && !strncmp(arg, "--", 2) && strchr(arg, '='))
		return vdk_tool_cli_error(c, "option '%s' takes no value", arg);
	if (optopt > 0 && optopt < 0x100 && strncmp(arg, "--", 2))
		return vdk_tool_cli_error(c, "unknown option '-%c'", optopt);
	return vdk_tool_cli_error(c, "unknown option '%s'", arg);
}

bool vdk_tool_cli_has(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc && argv[i]; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strncmp(argv[i], "--", 2) && !strcmp(argv[i] + 2, name))
			return true;
	}
	return false;
}

void vdk_tool_cli_version(const struct vdk_tool_cli *c, const char *version)
{
	printf("%s %s\n", c->prog, version);
}

const char *vdk_tool_setting_name(const char *const *renames, const char *key)
{
	for (size_t i = 0; renames && renames[i] && renames[i + 1]; i += 2)
		if (!strcmp(renames[i], key))
			return renames[i + 1];
	return key;
}

void vdk_tool_settings_help(FILE *out, vdk_config_key_fn *keys, size_t first,
			    const char *indent, const char *prefix,
			    const char *const *renames)
{
	const struct vdk_config_key *k;
	char label[64];
	int n;

	for (size_t i = first; (k = keys(i)); i++) {
		n = snprintf(label, sizeof(label), "%s%s%s%s%s", indent, prefix,
			     vdk_tool_setting_name(renames, k->name),
			     k->value ? "=" : "", k->value ? k->value : "");
		if (n < 0)
			continue;
		if (n < 24)
			fprintf(out, "%-25s%s\n", label, k->help);
		else
			fprintf(out, "%s\n%25s%s\n", label, "", k->help);
	}
}
