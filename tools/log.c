// SPDX-License-Identifier: Apache-2.0
/*
 * The programs' log lines (log.h): stderr with timestamps, or syslog.
 */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static const char *log_prog = "vdk";
static char log_device[64];
static bool log_opened;
static enum vdk_tool_log_target log_target = VDK_TOOL_LOG_STDERR;

int vdk_tool_log_parse(const char *arg, enum vdk_tool_log_target *out)
{
	if (!strcmp(arg, "stderr"))
		*out = VDK_TOOL_LOG_STDERR;
	else if (!strcmp(arg, "syslog") || !strcmp(arg, "journald"))
		*out = VDK_TOOL_LOG_SYSLOG;
	else
		return -EINVAL;
	return 0;
}

void vdk_tool_log_open(const char *prog, enum vdk_tool_log_target target)
{
	log_prog = prog;
	log_target = target;
	log_opened = true;
	if (target == VDK_TOOL_LOG_SYSLOG)
		openlog(prog, LOG_PID, LOG_DAEMON);
}

void vdk_tool_log_set_prog(const char *prog)
{
	log_prog = prog;
}

void vdk_tool_log_set_device(const char *name)
{
	snprintf(log_device, sizeof(log_device), "%s", name ? name : "");
}

static const char *level_name(int level)
{
	switch (level) {
	case VDK_LOG_ERROR:
		return "error: ";
	case VDK_LOG_WARN:
		return "warning: ";
	case VDK_LOG_INFO:
		return "info: ";
	case VDK_LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

static int syslog_priority(int level)
{
	switch (level) {
	case VDK_LOG_ERROR:
		return LOG_ERR;
	case VDK_LOG_WARN:
		return LOG_WARNING;
	case VDK_LOG_INFO:
		return LOG_INFO;
	case VDK_LOG_DEBUG:
		return LOG_DEBUG;
	default:
		return LOG_NOTICE;
	}
}

void vdk_tool_log_write(int level, const char *module, const char *msg)
{
	const char *sep = module ? ": " : "";
	char stamp[40] = "";
	struct timespec ts;
	struct tm tm;

	if (!module)
		module = "";
	if (log_opened && log_target == VDK_TOOL_LOG_SYSLOG) {
		syslog(syslog_priority(level), "%s%s%s%s%s%s",
		       log_device[0] ? "[" : "", log_device,
		       log_device[0] ? "] " : "", module, sep, msg);
		return;
	}
	if (log_opened && clock_gettime(CLOCK_REALTIME, &ts) == 0 &&
	    gmtime_r(&ts.tv_sec, &tm)) {
		size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S",
				    &tm);

		snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ ",
			 ts.tv_nsec / 1000000);
	}
	fprintf(stderr, "%s%s%s%s%s: %s%s%s%s\n", stamp, log_prog,
		log_device[0] ? "[" : "", log_device, log_device[0] ? "]" : "",
		level_name(level), module, sep, msg);
}
