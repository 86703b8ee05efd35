/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Serial console host side and signal handling (see console.h).
 */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CTRL_A 0x01

/* The terminal state atexit() restores: the one console that set raw mode.
 * A program-level global (vdk-vmm has one console), never library state. */
static struct vmm_console *raw_console;

static void restore_at_exit(void)
{
	if (raw_console)
		vmm_console_restore(raw_console);
}

static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
}

int vmm_console_open(struct vmm_console *c, const char *spec,
		     struct vmm_stop *stop)
{
	sigset_t set;

	memset(c, 0, sizeof(*c));
	c->out_fd = STDOUT_FILENO;
	c->stop_fd = -1;
	c->stop = stop;
	if (strcmp(spec, "stdio") == 0) {
		c->input = true;
	} else {
		c->out_fd = open(spec, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				 0644);
		if (c->out_fd < 0) {
			c->out_fd = STDOUT_FILENO;
			return -errno;
		}
		c->own_out = true;
	}
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return 0;
}

void vmm_console_write(struct vmm_console *c, uint8_t byte)
{
	for (;;) {
		ssize_t n = write(c->out_fd, &byte, 1);

		if (n == 1 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

/* Feed @len bytes to the UART, waiting (5 ms steps) while its FIFO is full.
 * Return: false if the console is stopping. */
static bool feed(struct vmm_console *c, const uint8_t *buf, size_t len)
{
	struct pollfd stop = {.fd = c->stop_fd, .events = POLLIN};

	while (len) {
		int n = vmm_serial_push_input(c->serial, buf, len);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (poll(&stop, 1, 5) != 0) {
			return false;
		}
	}
	return true;
}

static void *input_thread(void *arg)
{
	struct vmm_console *c = arg;
	struct pollfd fds[2] = {
		{.fd = STDIN_FILENO, .events = POLLIN},
		{.fd = c->stop_fd, .events = POLLIN},
	};
	bool escape = false;

	for (;;) {
		uint8_t in[64], out[128];
		size_t n_out = 0;
		ssize_t n;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (fds[1].revents)
			return NULL;
		n = read(STDIN_FILENO, in, sizeof(in));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL; /* EOF: the guest just gets no input */
		for (ssize_t i = 0; i < n; i++) {
			if (c->raw && escape) {
				escape = false;
				if (in[i] == 'x') {
					c->signo = SIGINT;
					vmm_stop_request(
						c->stop, VMM_STOP_ERROR,
						"quit from the console "
						"(Ctrl-A x)");
					return NULL;
				}
				if (in[i] != CTRL_A)
					out[n_out++] = CTRL_A;
				out[n_out++] = in[i];
			} else if (c->raw && in[i] == CTRL_A) {
				escape = true;
			} else {
				out[n_out++] = in[i];
			}
		}
		if (!feed(c, out, n_out))
			return NULL;
	}
}

static void *signal_thread(void *arg)
{
	struct vmm_console *c = arg;
	sigset_t set;
	int sig;

	signal_set(&set);
	if (sigwait(&set, &sig) == 0) {
		c->signo = sig;
		vmm_stop_request(c->stop, VMM_STOP_ERROR,
				 "stopped by signal %d (%s)", sig,
				 strsignal(sig));
	}
	return NULL;
}

int vmm_console_start(struct vmm_console *c, struct vmm_serial *serial)
{
	struct termios raw;
	int r;

	c->serial = serial;
	r = pthread_create(&c->signal_thread, NULL, signal_thread, c);
	if (r)
		return -r;
	pthread_detach(c->signal_thread); /* ends with the process */
	c->signal_running = true;
	if (!c->input)
		return 0;
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &c->saved) == 0) {
		raw = c->saved;
		/* Input raw (bytes as typed, ^C to the guest); output
		 * processing stays as it was, so host messages keep CR-LF. */
		raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP |
					   INLCR | IGNCR | ICRNL | IXON);
		raw.c_lflag &=
			~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
			c->raw = true;
			if (!raw_console) {
				raw_console = c;
				atexit(restore_at_exit);
			}
		}
	}
	r = pthread_create(&c->input_thread, NULL, input_thread, c);
	if (r)
		return -r;
	c->input_running = true;
	return 0;
}

void vmm_console_restore(struct vmm_console *c)
{
	if (c->raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &c->saved);
		c->raw = false;
	}
}

void vmm_console_close(struct vmm_console *c)
{
	uint64_t one = 1;

	if (c->input_running) {
		if (write(c->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(c->input_thread, NULL);
		c->input_running = false;
	}
	vmm_console_restore(c);
	if (c->own_out && c->out_fd >= 0)
		close(c->out_fd);
	c->own_out = false;
	if (c->stop_fd > 0)
		close(c->stop_fd);
	c->stop_fd = -1;
}
