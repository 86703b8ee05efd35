/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk logging: the process-wide sink and the burst rate limiter.
 *
 * The sink is the one piece of process-wide state in libvdk (see log.h). It
 * is three values (function, opaque pointer, maximum level) that must be seen
 * together: a message must never reach the new function with the old opaque
 * pointer. They are published through a sequence lock:
 *
 *  - writers (vdk_log_set_sink(), rare) serialise on a spin flag, make the
 *    sequence odd, store the three values, then make it even again;
 *  - readers (every vdk_log() call) copy the three values between two reads
 *    of the sequence and retry if a writer was active or finished meanwhile.
 *
 * Readers never block and never write shared memory. Every shared field is
 * an atomic, so there is no data race in the C11 sense.
 */
#include <vdk/log.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Longest message handed to a sink, including the terminating NUL. */
#define LOG_MSG_MAX 512

/* A consistent copy of the sink configuration. */
struct log_cfg {
	vdk_log_sink_fn *fn;
	void *opaque;
	int max_level;
};

/*
 * The published configuration. fn == NULL means the default stderr sink.
 * Initial state: default sink at VDK_LOG_WARN (errors and warnings).
 */
static struct {
	atomic_uint seq;
	atomic_flag writer;
	_Atomic(vdk_log_sink_fn *) fn;
	_Atomic(void *) opaque;
	atomic_int max_level;
} g_log = {
	.seq = 0,
	.writer = ATOMIC_FLAG_INIT,
	/* fn and opaque start NULL (static storage; clang rejects an explicit
	 * NULL initialiser for an _Atomic pointer member). */
	.max_level = VDK_LOG_WARN,
};

static const char *level_name(enum vdk_log_level level)
{
	switch (level) {
	case VDK_LOG_ERROR:
		return "error";
	case VDK_LOG_WARN:
		return "warn";
	case VDK_LOG_INFO:
		return "info";
	case VDK_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

/* The default sink: one line on stderr, "vdk[module] level: msg". */
static void default_sink(void *opaque, enum vdk_log_level level,
			 const char *module, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "vdk[%s] %s: %s\n", module ? module : "?",
		level_name(level), msg);
}

/*
 * Copy the configuration; retries while a writer is publishing.
 *
 * Ordering (no fences, so ThreadSanitizer understands it): the field loads
 * are acquire, so the second sequence load cannot move before them; the
 * writer's field stores are release, so a reader that sees any new field
 * also sees the odd sequence stored before it, and retries.
 */
static void log_cfg_load(struct log_cfg *cfg)
{
	unsigned int s1, s2;

	do {
		s1 = atomic_load_explicit(&g_log.seq, memory_order_acquire);
		cfg->fn = atomic_load_explicit(&g_log.fn, memory_order_acquire);
		cfg->opaque = atomic_load_explicit(&g_log.opaque,
						   memory_order_acquire);
		cfg->max_level = atomic_load_explicit(&g_log.max_level,
						      memory_order_acquire);
		s2 = atomic_load_explicit(&g_log.seq, memory_order_relaxed);
	} while ((s1 & 1u) || s1 != s2);
}

void vdk_log_set_sink(vdk_log_sink_fn *fn, void *opaque,
		      enum vdk_log_level max_level)
{
	unsigned int s;

	while (atomic_flag_test_and_set_explicit(&g_log.writer,
						 memory_order_acquire))
		; /* another writer is publishing; it takes nanoseconds */

	s = atomic_load_explicit(&g_log.seq, memory_order_relaxed);
	atomic_store_explicit(&g_log.seq, s + 1, memory_order_relaxed);
	/* Release: a reader that sees a new field also sees the odd seq. */
	atomic_store_explicit(&g_log.fn, fn, memory_order_release);
	atomic_store_explicit(&g_log.opaque, opaque, memory_order_release);
	atomic_store_explicit(&g_log.max_level, (int)max_level,
			      memory_order_release);
	/* Release: the fields are visible before the even sequence. */
	atomic_store_explicit(&g_log.seq, s + 2, memory_order_release);

	atomic_flag_clear_explicit(&g_log.writer, memory_order_release);
}

bool vdk_log_enabled(enum vdk_log_level level)
{
	return (int)level <=
	       atomic_load_explicit(&g_log.max_level, memory_order_relaxed);
}

void vdk_log(enum vdk_log_level level, const char *module, const char *fmt, ...)
{
	char msg[LOG_MSG_MAX];
	struct log_cfg cfg;
	va_list ap;
	size_t len;
	int n;

	log_cfg_load(&cfg);
	if ((int)level > cfg.max_level)
		return;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;

	/* Sinks get the text without a trailing newline. */
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';

	if (cfg.fn)
		cfg.fn(cfg.opaque, level, module, msg);
	else
		default_sink(NULL, level, module, msg);
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool vdk_ratelimit_ok(struct vdk_ratelimit *rl)
{
	uint64_t now = monotonic_ns();

	if (rl->window_start_ns == 0 || now < rl->window_start_ns ||
	    now - rl->window_start_ns >= rl->interval_ns) {
		uint32_t missed = rl->missed;

		rl->window_start_ns = now;
		rl->count = 0;
		rl->missed = 0;
		if (missed)
			vdk_log(VDK_LOG_WARN, "ratelimit",
				"%u messages suppressed", missed);
	}

	if (rl->count < rl->burst) {
		rl->count++;
		return true;
	}
	if (rl->missed < UINT32_MAX)
		rl->missed++;
	return false;
}
