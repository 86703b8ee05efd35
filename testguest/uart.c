/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdk-testguest console: the COM1 16550 UART at I/O port 0x3f8, polled
 * (no interrupts), and a small printf for the report lines.
 */
#include "guest.h"

#define COM1 0x3f8
/* 16550 registers (offsets from COM1). */
#define UART_THR  0 /* transmit holding (DLAB=0) */
#define UART_DLL  0 /* divisor latch low (DLAB=1) */
#define UART_IER  1 /* interrupt enable (DLAB=0) */
#define UART_DLM  1 /* divisor latch high (DLAB=1) */
#define UART_FCR  2 /* FIFO control */
#define UART_LCR  3 /* line control */
#define UART_MCR  4 /* modem control */
#define UART_LSR  5 /* line status */

#define LCR_8N1	  0x03
#define LCR_DLAB  0x80
#define LSR_THRE  0x20 /* transmit holding register empty */
#define MCR_DTR	  0x01
#define MCR_RTS	  0x02
#define FCR_FIFOS 0x07 /* enable, clear RX and TX */

/* Polls of LSR before a byte is written anyway (an absent or stuck UART
 * must not hang the guest). */
#define UART_POLLS 100000

void uart_init(void)
{
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DLL, 1); /* 115200 baud */
	outb(COM1 + UART_DLM, 0);
	outb(COM1 + UART_LCR, LCR_8N1);
	outb(COM1 + UART_FCR, FCR_FIFOS);
	outb(COM1 + UART_MCR, MCR_DTR | MCR_RTS);
}

static void uart_putc(char c)
{
	for (int i = 0; i < UART_POLLS; i++) {
		if (inb(COM1 + UART_LSR) & LSR_THRE)
			break;
		cpu_relax();
	}
	outb(COM1 + UART_THR, (uint8_t)c);
}

/* ---- formatting --------------------------------------------------------- */

/** Where formatted characters go: the UART, or a bounded buffer. */
struct sink {
	char *buf; /* NULL: the UART */
	size_t len, pos;
};

static void put(struct sink *s, char c)
{
	if (!s->buf) {
		if (c == '\n')
			uart_putc('\r');
		uart_putc(c);
		return;
	}
	if (s->pos + 1 < s->len)
		s->buf[s->pos] = c;
	s->pos++;
}

static void put_num(struct sink *s, uint64_t v, unsigned int base, bool neg,
		    unsigned int width, char pad)
{
	char tmp[24];
	unsigned int n = 0;

	do {
		unsigned int d = (unsigned int)(v % base);

		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v && n < sizeof(tmp));
	if (neg && pad == '0')
		put(s, '-');
	for (unsigned int i = n + (neg ? 1 : 0); i < width; i++)
		put(s, pad);
	if (neg && pad != '0')
		put(s, '-');
	while (n)
		put(s, tmp[--n]);
}

static void vformat(struct sink *s, const char *fmt, va_list ap)
{
	for (const char *p = fmt; *p; p++) {
		unsigned int width = 0, longs = 0;
		char pad = ' ';
		uint64_t u;
		int64_t i;

		if (*p != '%') {
			put(s, *p);
			continue;
		}
		p++;
		if (*p == '0') {
			pad = '0';
			p++;
		}
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (unsigned int)(*p++ - '0');
		while (*p == 'l') {
			longs++;
			p++;
		}
		if (*p == 'z') {
			longs = 1;
			p++;
		}
		switch (*p) {
		case 'd':
			i = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
			put_num(s, i < 0 ? 0 - (uint64_t)i : (uint64_t)i, 10,
				i < 0, width, pad);
			break;
		case 'u':
		case 'x':
			u = longs ? va_arg(ap, uint64_t)
				  : va_arg(ap, unsigned int);
			put_num(s, u, *p == 'x' ? 16 : 10, false, width, pad);
			break;
		case 'p':
			put(s, '0');
			put(s, 'x');
			put_num(s, (uintptr_t)va_arg(ap, void *), 16, false,
				width, pad);
			break;
		case 'c':
			put(s, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			size_t n = strlen(str ? str : "(null)");

			for (size_t k = n; k < width; k++)
				put(s, ' ');
			for (const char *c = str ? str : "(null)"; *c; c++)
				put(s, *c);
			break;
		}
		case '%':
			put(s, '%');
			break;
		case '\0':
			return;
		default:
			put(s, '%');
			put(s, *p);
			break;
		}
	}
}

void gprintf(const char *fmt, ...)
{
	struct sink s = {0};
	va_list ap;

	va_start(ap, fmt);
	vformat(&s, fmt, ap);
	va_end(ap);
}

static int vsformat(char *buf, size_t len, const char *fmt, va_list ap)
{
	struct sink s = {.buf = buf, .len = len, .pos = 0};

	vformat(&s, fmt, ap);
	if (len)
		buf[s.pos < len ? s.pos : len - 1] = '\0';
	return (int)s.pos;
}

int gsnprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsformat(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

/* ---- report lines --------------------------------------------------------- */

static unsigned int n_passed, n_failed;

void check(const char *name, bool pass, const char *fmt, ...)
{
	char detail[160];
	va_list ap;

	va_start(ap, fmt);
	vsformat(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (pass)
		n_passed++;
	else
		n_failed++;
	gprintf("VDK-TESTGUEST: %s: %s %s\n", name, pass ? "PASS" : "FAIL",
		detail);
}

void info(const char *fmt, ...)
{
	struct sink s = {0};
	va_list ap;

	gprintf("VDK-TESTGUEST: info: ");
	va_start(ap, fmt);
	vformat(&s, fmt, ap);
	va_end(ap);
	put(&s, '\n');
}

void report_done(void)
{
	gprintf("VDK-TESTGUEST: done %u passed, %u failed\n", n_passed,
		n_failed);
}
