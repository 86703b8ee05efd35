/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host side of the guest's serial console, and the VMM's signals.
 *
 * Output: every byte the guest transmits on COM1 is written to stdout
 * (--console stdio, the default) or to a file (--console FILE, truncated).
 *
 * Input (stdio only): a thread reads stdin and feeds the UART with
 * vmm_serial_push_input(), waiting while its FIFO is full. When stdin is a
 * terminal it is put in raw mode (no echo, no line editing, no signals from
 * ^C, which then reaches the guest); "Ctrl-A x" quits the VM and
 * "Ctrl-A Ctrl-A" sends one Ctrl-A. The terminal is restored by
 * vmm_console_restore(), by vmm_console_close() and by an atexit()
 * handler, so every normal exit path restores it.
 *
 * Signals: SIGINT, SIGTERM, SIGHUP and SIGQUIT are blocked in every thread
 * (vmm_console_open() blocks them before any thread exists) and taken by a
 * thread with sigwait(), which stops the VM (VMM_STOP_ERROR) and records
 * the signal in @signo; the main thread then exits through its normal
 * cleanup. No terminal state is touched from a signal handler. SIGPIPE is
 * ignored (a closed stdout must not kill the VMM).
 */
#ifndef VDK_CONSOLE_H
#define VDK_CONSOLE_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

#include "serial.h"
#include "vcpu.h"

/** struct vmm_console - fields private to console.c except @signo. */
struct vmm_console {
	int out_fd;	      /**< where guest output goes */
	bool own_out;	      /**< @out_fd is a file we opened */
	bool input;	      /**< read stdin (stdio mode) */
	bool raw;	      /**< stdin's terminal is in raw mode */
	struct termios saved; /**< stdin's terminal settings before raw mode */
	int stop_fd;	      /**< eventfd that stops the input thread */
	bool input_running;
	pthread_t input_thread;
	pthread_t signal_thread;
	bool signal_running;
	struct vmm_serial *serial; /**< not owned */
	struct vmm_stop *stop;	   /**< not owned */
	/** Signal that stopped the VM (or SIGINT for Ctrl-A x), else 0. */
	int signo;
};

/**
 * vmm_console_open() - prepare the console: @spec is "stdio" or a file
 * path for the output. Blocks the signals listed above in the calling
 * thread (call it before creating any thread) and ignores SIGPIPE.
 * @c: caller's storage. @stop: where quit requests go; not owned.
 * Return: 0; -errno of open() for a file, or of eventfd().
 */
int vmm_console_open(struct vmm_console *c, const char *spec,
		     struct vmm_stop *stop);

/**
 * vmm_console_write() - one byte of guest output; retried on EINTR and
 * short writes, dropped if the output is gone (EPIPE, EIO).
 */
void vmm_console_write(struct vmm_console *c, uint8_t byte);

/**
 * vmm_console_start() - raw mode (stdin a terminal), the input thread
 * feeding @serial (stdio mode), and the signal thread.
 * Return: 0 or -errno of pthread_create.
 */
int vmm_console_start(struct vmm_console *c, struct vmm_serial *serial);

/** vmm_console_restore() - put the terminal back as it was; idempotent. */
void vmm_console_restore(struct vmm_console *c);

/** vmm_console_close() - stop the input thread, restore the terminal,
 * close the output file. Safe on a console that was never opened (zeroed
 * storage) and twice. */
void vmm_console_close(struct vmm_console *c);

#endif /* VDK_CONSOLE_H */
