/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The command-line conventions every vdk program follows, in one place so
 * that vdk-vhost-user-blk, vdk-vhost-user-rng, vdk-blkbench and vdk-vmm
 * behave alike:
 *   - --version / -V prints "PROG VERSION" and exits 0;
 *   - a mistake is one line on stderr, "PROG: <what> (see --help)", exit 1
 *     (an unknown option never prints the whole usage);
 *   - an option that takes one value may be given once: a second one is an
 *     error, not a silent override;
 *   - --print-capabilities (backend programs, vhost-user spec "Backend
 *     program conventions") ignores every other option, even unknown ones;
 *   - a device's settings (<vdk/config.h>) are the same everywhere: in a
 *     comma-separated spec (--disk=IMAGE,serial=ID, a comma inside a value
 *     written ",,"), as long options (--serial=ID) and in --help.
 * Nothing here exits; the caller decides.
 */
#ifndef VDK_TOOLS_OPTIONS_H
#define VDK_TOOLS_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <vdk/config.h>

/** Option ids vdk_tool_cli_once() tracks: short options and long-only ids
 * below this bound (programs number theirs from 0x100). */
#define VDK_TOOL_CLI_MAX_ID 0x200

/** The parsing state of one program's command line. */
struct vdk_tool_cli {
	const char *prog;	       /**< program name, for messages */
	const struct option *longopts; /**< the getopt_long() table */
	bool seen[VDK_TOOL_CLI_MAX_ID];
	bool repeatable[VDK_TOOL_CLI_MAX_ID];
};

/**
 * vdk_tool_cli_init() - start parsing: remember @prog and @longopts (both
 * must outlive @c) and set getopt's opterr to 0, so that errors are
 * reported by vdk_tool_cli_bad() in one line. Pass getopt_long() an
 * optstring starting with ':' so that a missing argument is told apart.
 */
void vdk_tool_cli_init(struct vdk_tool_cli *c, const char *prog,
		       const struct option *longopts);

/**
 * vdk_tool_cli_repeatable() - allow option @opt to take a value more than
 * once (vdk-vmm's --disk); by default only options without a value
 * (flags, -v) may repeat.
 */
void vdk_tool_cli_repeatable(struct vdk_tool_cli *c, int opt);

/**
 * vdk_tool_cli_next() - getopt_long() with the conventions above: the next
 * option's id; an unknown option, a missing argument or a second value for
 * a single-value option (one whose long entry has required_argument, or a
 * short one followed by ':' in @optstring) is reported in one line.
 * @optstring: as getopt_long()'s; a leading ':' is added if missing.
 *
 * Return: the option id (optarg set), -1 at the end of the options, or '?'
 * after printing an error.
 */
int vdk_tool_cli_next(struct vdk_tool_cli *c, int argc, char **argv,
		      const char *optstring);

/**
 * vdk_tool_cli_error() - print "PROG: <message> (see --help)" to stderr.
 * Return: -EINVAL, so that callers can `return vdk_tool_cli_error(...)`.
 */
int vdk_tool_cli_error(const struct vdk_tool_cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/**
 * vdk_tool_cli_once() - note that option @opt (a getopt_long() result) was
 * given; a second time is an error: "PROG: --NAME given more than once".
 * Ids at or above VDK_TOOL_CLI_MAX_ID are not tracked.
 * Return: 0, or -EINVAL after printing the message.
 */
int vdk_tool_cli_once(struct vdk_tool_cli *c, int opt);

/**
 * vdk_tool_cli_bad() - report getopt_long()'s '?' (unknown option) or ':'
 * (missing argument) result @opt for @argv in one line, e.g.
 * "PROG: unknown option '--bogus' (see --help)". Call it right after
 * getopt_long() returned, while optind and optopt are still its.
 * Return: -EINVAL.
 */
int vdk_tool_cli_bad(const struct vdk_tool_cli *c, int opt, char **argv);

/**
 * vdk_tool_cli_has() - whether @argv holds the long option --@name exactly
 * (before a "--" that ends the options). Used for --print-capabilities,
 * which must win over every other option, valid or not.
 */
bool vdk_tool_cli_has(int argc, char **argv, const char *name);

/** vdk_tool_cli_version() - print "PROG VERSION" to stdout. */
void vdk_tool_cli_version(const struct vdk_tool_cli *c, const char *version);

/**
 * vdk_tool_setting_name() - the name a program gives device setting @key
 * (<vdk/config.h>): the entry after @key in @renames, a {setting, name,
 * ..., NULL} list (vdk-vhost-user-blk: {"readonly", "read-only", ...}),
 * else @key itself. @renames may be NULL.
 */
const char *vdk_tool_setting_name(const char *const *renames, const char *key);

/**
 * vdk_tool_settings_help() - print one line per device setting @keys lists
 * from index @first on: @indent, @prefix ("--" for options), the name
 * (vdk_tool_setting_name()), "=VALUE" unless it is a flag, then its help
 * at column 25 (on the next line if the name reaches that column).
 */
void vdk_tool_settings_help(FILE *out, vdk_config_key_fn *keys, size_t first,
			    const char *indent, const char *prefix,
			    const char *const *renames);

#endif /* VDK_TOOLS_OPTIONS_H */
