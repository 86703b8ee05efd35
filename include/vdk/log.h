/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk logging: one sink the program sets, and a rate limiter for anything a
 * guest or a frontend can trigger.
 *
 * The library never prints on its own: every message goes through vdk_log()
 * to the sink installed with vdk_log_set_sink() (by default, stderr at
 * VDK_LOG_WARN and above). The sink pointer is the one piece of process-wide
 * state in libvdk; it is set explicitly by the program, never by a
 * constructor.
 *
 * Data-path debug messages use VDK_DLOG(), which compiles to nothing unless
 * the build defines VDK_DATAPATH_DEBUG.
 */
#ifndef VDK_LOG_H
#define VDK_LOG_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libvdk (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

/** Severity of a message; lower is more severe. */
enum vdk_log_level {
	VDK_LOG_ERROR = 0, /**< an operation failed or a device stopped */
	VDK_LOG_WARN = 1,  /**< bad input that was refused or ignored */
	VDK_LOG_INFO = 2,  /**< lifecycle events: device activated, reset */
	VDK_LOG_DEBUG = 3, /**< detail for developers */
};

/**
 * vdk_log_sink_fn - receives one formatted message.
 * @opaque: the pointer given to vdk_log_set_sink().
 * @level:  severity.
 * @module: short name of the emitting module ("virtq", "mmio", ...).
 * @msg:    NUL-terminated text without a trailing newline; valid only for
 *          the duration of the call.
 *
 * May be called concurrently from several threads.
 */
typedef void vdk_log_sink_fn(void *opaque, enum vdk_log_level level,
			     const char *module, const char *msg);

/**
 * vdk_log_set_sink() - route library messages to @fn.
 * @fn:        the sink, or NULL for the default (stderr).
 * @opaque:    passed to @fn unchanged; not owned.
 * @max_level: messages less severe than this are dropped before formatting.
 *
 * Thread-safe (the three values are published atomically as one); meant to
 * be called once at program start.
 */
void vdk_log_set_sink(vdk_log_sink_fn *fn, void *opaque,
		      enum vdk_log_level max_level);

/**
 * vdk_log() - format and emit one message through the sink.
 * @level:  severity.
 * @module: short module name, a string literal.
 * @fmt:    printf format; the result is truncated to 512 bytes.
 */
void vdk_log(enum vdk_log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** vdk_log_enabled() - true if a message at @level would reach the sink. */
bool vdk_log_enabled(enum vdk_log_level level);

/**
 * struct vdk_ratelimit - token-bucket-free burst limiter: at most @burst
 * messages per @interval_ns window. Zero-initialise and set the two limits,
 * or use VDK_RATELIMIT_INIT. Not thread-safe; embed one per object.
 */
struct vdk_ratelimit {
	uint64_t interval_ns;	  /**< window length, nanoseconds */
	uint32_t burst;		  /**< messages allowed per window */
	uint32_t count;		  /**< messages emitted in this window */
	uint32_t missed;	  /**< messages suppressed in this window */
	uint64_t window_start_ns; /**< CLOCK_MONOTONIC start of the window */
};

/** Default limiter: 10 messages per 5 seconds. */
#define VDK_RATELIMIT_INIT                                                     \
	{                                                                      \
		.interval_ns = 5000000000ull, .burst = 10                      \
	}

/**
 * vdk_ratelimit_ok() - account one event and say whether to log it.
 * @rl: the limiter.
 *
 * Return: true if the message may be emitted. When a new window opens after
 * suppressions, the next allowed message is preceded by a "N messages
 * suppressed" note through the sink.
 */
bool vdk_ratelimit_ok(struct vdk_ratelimit *rl);

/* Messages below the sink's level do not use up the limiter's allowance. */
#define VDK_LOG_RL(rl, level, module, ...)                                     \
	do {                                                                   \
		if (vdk_log_enabled(level) && vdk_ratelimit_ok(rl))            \
			vdk_log(level, module, __VA_ARGS__);                   \
	} while (0)

#ifdef VDK_DATAPATH_DEBUG
#define VDK_DLOG(module, ...) vdk_log(VDK_LOG_DEBUG, module, __VA_ARGS__)
#else
#define VDK_DLOG(module, ...)                                                  \
	do {                                                                   \
	} while (0)
#endif

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* VDK_LOG_H */
