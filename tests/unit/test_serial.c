/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for vmm/serial.c: reset values, the divisor latch, THR output,
 * LSR THRE/DR, interrupts raised and cleared for THR empty and received
 * data, IIR priorities, the scratch register, FCR, receive FIFO overflow
 * (backpressure for input, overrun in loopback), loopback wiring (the
 * Linux 8250 probe), bus dispatch, a hostile register fuzz, and an input
 * thread racing a reader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "serial.h"

#include <linux/serial_reg.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* What the callbacks saw. */
struct rec {
	uint8_t out[256];
	size_t nout;
	bool level;
	int changes;
};

static void rec_out(void *opaque, uint8_t byte)
{
	struct rec *r = opaque;

	if (r->nout < sizeof(r->out))
		r->out[r->nout] = byte;
	r->nout++;
}

static void rec_irq(void *opaque, bool level)
{
	struct rec *r = opaque;

	/* Called only on a change of level. */
	assert_true(level != r->level);
	r->level = level;
	r->changes++;
}

static struct vmm_serial *uart(struct rec *r)
{
	struct vmm_serial_config c = {rec_out, r, rec_irq, r};
	int err = -1;
	struct vmm_serial *s;

	memset(r, 0, sizeof(*r));
	s = vmm_serial_new(&c, &err);
	assert_non_null(s);
	assert_int_equal(err, 0);
	return s;
}

#define RD(s, reg)    vmm_serial_read(s, reg)
#define WR(s, reg, v) vmm_serial_write(s, reg, v)

static void test_reset_state(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	assert_int_equal(RD(s, UART_IER), 0);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_NO_INT);
	assert_int_equal(RD(s, UART_LCR), 0x03);
	assert_int_equal(RD(s, UART_MCR), UART_MCR_OUT2);
	assert_int_equal(RD(s, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(RD(s, UART_MSR),
			 UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
	assert_int_equal(RD(s, UART_SCR), 0);
	assert_int_equal(RD(s, UART_RX), 0); /* empty FIFO reads 0 */
	WR(s, UART_LCR, UART_LCR_DLAB | 0x03);
	assert_int_equal(RD(s, UART_DLL), 12);
	assert_int_equal(RD(s, UART_DLM), 0);
	assert_false(vmm_serial_irq_level(s));
	assert_int_equal(r.changes, 0);
	assert_int_equal(r.nout, 0);
	vmm_serial_free(s);

	/* No callbacks at all is fine. */
	s = vmm_serial_new(NULL, NULL);
	assert_non_null(s);
	WR(s, UART_IER, UART_IER_THRI);
	WR(s, UART_TX, 'x');
	assert_true(vmm_serial_irq_level(s));
	vmm_serial_free(s);
	vmm_serial_free(NULL);
}

static void test_divisor_latch(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	WR(s, UART_LCR, UART_LCR_DLAB | 0x03);
	WR(s, UART_DLL, 0x01); /* 115200 baud */
	WR(s, UART_DLM, 0x02);
	assert_int_equal(RD(s, UART_DLL), 0x01);
	assert_int_equal(RD(s, UART_DLM), 0x02);
	/* DLAB set: no byte went out, IER untouched, no interrupt. */
	assert_int_equal(r.nout, 0);
	WR(s, UART_LCR, 0x03);
	assert_int_equal(RD(s, UART_IER), 0);
	assert_int_equal(RD(s, UART_LCR), 0x03);
	/* DLAB clear: offsets 0 and 1 are THR and IER again. */
	WR(s, UART_TX, 'A');
	WR(s, UART_IER, UART_IER_RDI);
	assert_int_equal(r.nout, 1);
	assert_int_equal(r.out[0], 'A');
	assert_int_equal(RD(s, UART_IER), UART_IER_RDI);
	WR(s, UART_LCR, UART_LCR_DLAB);
	assert_int_equal(RD(s, UART_DLL), 0x01);
	assert_int_equal(RD(s, UART_DLM), 0x02);
	/* Reading DLL with DLAB set does not pop received data. */
	assert_int_equal(vmm_serial_push_input(s, (const uint8_t *)"z", 1), 1);
	assert_int_equal(RD(s, UART_DLL), 0x01);
	WR(s, UART_LCR, 0);
	assert_int_equal(RD(s, UART_RX), 'z');
	vmm_serial_free(s);
}

static void test_thr_output_and_lsr(void **state)
{
	static const char msg[] = "hello, vdk\n";
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	for (size_t i = 0; i < sizeof(msg) - 1; i++) {
		WR(s, UART_TX, (uint8_t)msg[i]);
		/* Transmission is instant: THR and shifter always empty. */
		assert_int_equal(RD(s, UART_LSR) &
					 (UART_LSR_THRE | UART_LSR_TEMT),
				 UART_LSR_THRE | UART_LSR_TEMT);
	}
	assert_int_equal(r.nout, sizeof(msg) - 1);
	assert_memory_equal(r.out, msg, sizeof(msg) - 1);
	/* THRI disabled: no interrupt however many bytes went out. */
	assert_int_equal(r.changes, 0);
	vmm_serial_free(s);
}

static void test_thre_interrupt(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	/* Enabling THRI with THR empty raises it at once. */
	WR(s, UART_IER, UART_IER_THRI);
	assert_true(r.level);
	assert_int_equal(r.changes, 1);
	/* Reading IIR reports and acknowledges it. */
	assert_int_equal(RD(s, UART_IIR), UART_IIR_THRI);
	assert_false(r.level);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_NO_INT);
	/* Each THR write latches it again. */
	WR(s, UART_TX, 'a');
	assert_true(r.level);
	/* A second write while pending: no extra edge. */
	WR(s, UART_TX, 'b');
	assert_int_equal(r.changes, 3);
	/* Disabling THRI lowers the line but the latch stays... */
	WR(s, UART_IER, 0);
	assert_false(r.level);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_NO_INT);
	/* ...and re-enabling (0 -> 1) raises it (Linux's THRE probe). */
	WR(s, UART_IER, UART_IER_THRI);
	assert_true(r.level);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_THRI);
	assert_false(r.level);
	/* Writing IER again with THRI still set does not re-raise it. */
	WR(s, UART_IER, UART_IER_THRI);
	assert_false(r.level);
	vmm_serial_free(s);
}

static void test_receive(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	assert_int_equal(vmm_serial_push_input(s, (const uint8_t *)"abc", 3),
			 3);
	assert_true(RD(s, UART_LSR) & UART_LSR_DR);
	assert_false(r.level); /* RDI not enabled */
	WR(s, UART_IER, UART_IER_RDI);
	assert_true(r.level);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_RDI);
	/* Reading IIR does not acknowledge received data. */
	assert_true(r.level);
	assert_int_equal(RD(s, UART_RX), 'a');
	assert_int_equal(RD(s, UART_RX), 'b');
	assert_true(r.level);
	assert_int_equal(RD(s, UART_RX), 'c');
	/* Drained: DR clear, line low. */
	assert_false(r.level);
	assert_false(RD(s, UART_LSR) & UART_LSR_DR);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_NO_INT);
	assert_int_equal(RD(s, UART_RX), 0);
	/* New input raises it again. */
	assert_int_equal(vmm_serial_push_input(s, (const uint8_t *)"d", 1), 1);
	assert_true(r.level);
	assert_int_equal(r.changes, 3);
	assert_int_equal(vmm_serial_push_input(s, NULL, 1), -EINVAL);
	assert_int_equal(vmm_serial_push_input(s, NULL, 0), 0);
	vmm_serial_free(s);
}

static void test_input_backpressure(void **state)
{
	uint8_t in[100];
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	assert_int_equal(vmm_serial_rx_space(s), VMM_SERIAL_FIFO_SIZE);
	/* Only what fits is taken; the rest stays with the caller. */
	assert_int_equal(vmm_serial_push_input(s, in, sizeof(in)),
			 VMM_SERIAL_FIFO_SIZE);
	assert_int_equal(vmm_serial_rx_space(s), 0);
	assert_int_equal(vmm_serial_push_input(s, in + 64, 36), 0);
	/* Backpressure is not an overrun: no OE. */
	assert_int_equal(RD(s, UART_LSR) & UART_LSR_OE, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(RD(s, UART_RX), i);
	assert_int_equal(vmm_serial_rx_space(s), 10);
	assert_int_equal(vmm_serial_push_input(s, in + 64, 36), 10);
	/* Order kept across the ring's wrap. */
	for (int i = 10; i < 74; i++)
		assert_int_equal(RD(s, UART_RX), i);
	assert_false(RD(s, UART_LSR) & UART_LSR_DR);
	vmm_serial_free(s);
}

static void test_loopback(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	/* Linux 8250 autoconfig: MCR = LOOP | OUT2 | RTS, MSR & 0xf0 == 0x90. */
	WR(s, UART_MCR, UART_MCR_LOOP | 0x0a);
	assert_int_equal(RD(s, UART_MSR) & 0xf0, 0x90);
	WR(s, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1);
	assert_int_equal(RD(s, UART_MSR),
			 UART_MSR_DSR | UART_MSR_RI | UART_MSR_DCTS |
				 UART_MSR_DDSR | UART_MSR_DDCD);
	/* RI falling sets TERI; deltas clear on read. */
	WR(s, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR);
	assert_int_equal(RD(s, UART_MSR), UART_MSR_DSR | UART_MSR_TERI);
	assert_int_equal(RD(s, UART_MSR), UART_MSR_DSR);

	/* Transmitted bytes come back instead of going out. */
	WR(s, UART_TX, 'L');
	WR(s, UART_TX, 'B');
	assert_int_equal(r.nout, 0);
	assert_true(RD(s, UART_LSR) & UART_LSR_DR);
	assert_int_equal(RD(s, UART_RX), 'L');
	assert_int_equal(RD(s, UART_RX), 'B');
	/* The outside is disconnected. */
	assert_int_equal(vmm_serial_push_input(s, (const uint8_t *)"x", 1), 0);
	assert_false(RD(s, UART_LSR) & UART_LSR_DR);

	/* A full FIFO overruns: the byte is lost, OE set until LSR is read. */
	for (int i = 0; i < (int)VMM_SERIAL_FIFO_SIZE + 5; i++)
		WR(s, UART_TX, (uint8_t)i);
	assert_int_equal(RD(s, UART_LSR), UART_LSR_OE | UART_LSR_DR |
						  UART_LSR_THRE |
						  UART_LSR_TEMT);
	assert_int_equal(RD(s, UART_LSR) & UART_LSR_OE, 0);
	for (int i = 0; i < (int)VMM_SERIAL_FIFO_SIZE; i++)
		assert_int_equal(RD(s, UART_RX), i);
	assert_false(RD(s, UART_LSR) & UART_LSR_DR);

	/* Back to normal: lines connected, output flows. */
	WR(s, UART_MCR, UART_MCR_OUT2);
	assert_int_equal(RD(s, UART_MSR) & 0xf0,
			 UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
	WR(s, UART_TX, '!');
	assert_int_equal(r.nout, 1);
	assert_int_equal(r.out[0], '!');
	vmm_serial_free(s);
}

static void test_iir_priorities(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	/* Build every condition at once (loopback gives overrun and deltas). */
	WR(s, UART_MCR, UART_MCR_LOOP);
	for (int i = 0; i < (int)VMM_SERIAL_FIFO_SIZE + 1; i++)
		WR(s, UART_TX, (uint8_t)i);
	WR(s, UART_MCR, UART_MCR_OUT2); /* leaving loopback changes lines */
	assert_false(r.level);		/* nothing enabled yet */
	WR(s, UART_IER, 0xff);		/* reserved bits ignored */
	assert_int_equal(RD(s, UART_IER), 0x0f);
	assert_true(r.level);

	/* 1. receiver line status, until LSR is read */
	assert_int_equal(RD(s, UART_IIR), UART_IIR_RLSI);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_RLSI);
	RD(s, UART_LSR);
	/* 2. received data, until the FIFO is drained */
	assert_int_equal(RD(s, UART_IIR), UART_IIR_RDI);
	for (int i = 0; i < (int)VMM_SERIAL_FIFO_SIZE; i++)
		RD(s, UART_RX);
	/* 3. THR empty, acknowledged by this very IIR read */
	assert_int_equal(RD(s, UART_IIR), UART_IIR_THRI);
	/* 4. modem status, until MSR is read */
	assert_int_equal(RD(s, UART_IIR), UART_IIR_MSI);
	assert_true(r.level);
	assert_true(RD(s, UART_MSR) & UART_MSR_ANY_DELTA);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_NO_INT);
	assert_false(r.level);

	/* FCR: FIFO-enabled bits in IIR, and clearing the receive FIFO. */
	WR(s, UART_FCR, UART_FCR_ENABLE_FIFO);
	assert_int_equal(RD(s, UART_IIR), 0xc0 | UART_IIR_NO_INT);
	assert_int_equal(vmm_serial_push_input(s, (const uint8_t *)"qq", 2), 2);
	assert_int_equal(RD(s, UART_IIR), 0xc0 | UART_IIR_RDI);
	WR(s, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
	assert_false(RD(s, UART_LSR) & UART_LSR_DR);
	assert_false(r.level);
	WR(s, UART_FCR, 0);
	assert_int_equal(RD(s, UART_IIR), UART_IIR_NO_INT);
	vmm_serial_free(s);
}

static void test_scratch(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);

	(void)state;
	for (unsigned int v = 0; v < 256; v++) {
		WR(s, UART_SCR, (uint8_t)v);
		assert_int_equal(RD(s, UART_SCR), v);
	}
	/* LSR and MSR ignore writes. */
	WR(s, UART_LSR, 0);
	WR(s, UART_MSR, 0);
	assert_int_equal(RD(s, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(RD(s, UART_MSR) & 0xf0, 0xb0);
	/* Out-of-range offsets: reads 0, writes ignored. */
	WR(s, 8, 0xff);
	WR(s, UINT64_MAX, 0xff);
	assert_int_equal(RD(s, 8), 0);
	assert_int_equal(RD(s, UINT64_MAX), 0);
	assert_int_equal(r.nout, 0);
	vmm_serial_free(s);
}

static void test_bus(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);
	struct vdk_bus *pio = vdk_bus_new(VDK_BUS_PIO, NULL);
	uint8_t b[2] = {0};

	(void)state;
	assert_non_null(pio);
	assert_int_equal(vmm_serial_register(s, pio, VMM_SERIAL_COM1_BASE), 0);
	assert_int_equal(vmm_serial_register(s, pio, VMM_SERIAL_COM1_BASE),
			 -EEXIST);
	assert_int_equal(vmm_serial_register(s, NULL, 0x2f8), -EINVAL);
	b[0] = 'P';
	assert_int_equal(vdk_bus_write(pio, 0x3f8, b, 1), 0);
	assert_int_equal(r.nout, 1);
	assert_int_equal(r.out[0], 'P');
	/* A 16-bit access is two byte accesses: MSR (ignored) and SCR. */
	b[0] = 0x11;
	b[1] = 0x22;
	assert_int_equal(vdk_bus_write(pio, 0x3fe, b, 2), 0);
	memset(b, 0, sizeof(b));
	assert_int_equal(vdk_bus_read(pio, 0x3fe, b, 2), 0);
	assert_int_equal(b[0], 0xb0);
	assert_int_equal(b[1], 0x22);
	assert_int_equal(vdk_bus_read(pio, 0x3ff, b, 2), -ERANGE);
	/* Direct bus-op calls past register 7 stay in bounds. */
	uint8_t wide[16];

	memset(wide, 0xee, sizeof(wide));
	vmm_serial_bus_ops.read(s, 0x3f8, 6, wide, sizeof(wide));
	assert_int_equal(wide[1], 0x22);
	assert_int_equal(wide[2], 0);
	assert_int_equal(wide[15], 0);
	vmm_serial_bus_ops.write(s, 0x3f8, 7, wide, sizeof(wide));
	assert_int_equal(RD(s, UART_SCR), 0xb0);
	/* An offset that would wrap back into the registers: nothing. */
	memset(wide, 0xee, sizeof(wide));
	vmm_serial_bus_ops.read(s, 0x3f8, UINT64_MAX - 1, wide, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(wide[i], 0);
	vmm_serial_bus_ops.write(s, 0x3f8, UINT64_MAX - 1, wide, 10);
	assert_int_equal(RD(s, UART_SCR), 0xb0);
	assert_int_equal(r.nout, 1);
	vdk_bus_free(pio);
	vmm_serial_free(s);
}

/* Random accesses to every register: invariants hold, nothing breaks. */
static void test_hostile(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);
	uint32_t x = 12345;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		x = x * 1103515245u + 12345u;
		uint8_t reg = (uint8_t)((x >> 8) % 10); /* 8, 9: out of range */
		uint8_t val = (uint8_t)(x >> 16);

		if (x & 0x80000000u) {
			WR(s, reg, val);
		} else if (reg == 9) {
			uint8_t in[8] = {val};

			assert_true(vmm_serial_push_input(s, in, val % 9) >= 0);
		} else {
			uint8_t v = RD(s, reg);

			if (reg >= 8)
				assert_int_equal(v, 0);
		}
		/* The callback's view matches the UART's. */
		assert_int_equal(vmm_serial_irq_level(s), r.level);
		assert_true(vmm_serial_rx_space(s) <= VMM_SERIAL_FIFO_SIZE);
	}
	WR(s, UART_LCR, 0);
	assert_int_equal(RD(s, UART_IER) & 0xf0, 0);
	assert_int_equal(RD(s, UART_MCR) & 0xe0, 0);
	assert_true(RD(s, UART_LSR) & UART_LSR_THRE);
	vmm_serial_free(s);
}

/* ---- an input thread against a vCPU-like reader ------------------------ */

#define STREAM_LEN 20000

static void *pusher(void *arg)
{
	struct vmm_serial *s = arg;
	uint8_t chunk[7];
	size_t sent = 0;

	while (sent < STREAM_LEN) {
		size_t n = STREAM_LEN - sent < sizeof(chunk) ? STREAM_LEN - sent
							     : sizeof(chunk);

		for (size_t i = 0; i < n; i++)
			chunk[i] = (uint8_t)((sent + i) * 31);
		int got = vmm_serial_push_input(s, chunk, n);

		/* No cmocka asserts off the test's thread: report instead. */
		if (got < 0 || (size_t)got > n)
			return (void *)1;
		if (got == 0)
			sched_yield(); /* FIFO full: let the reader run */
		sent += (size_t)got;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct rec r;
	struct vmm_serial *s = uart(&r);
	pthread_t t;
	size_t got = 0;
	void *ret = (void *)1;

	(void)state;
	WR(s, UART_IER, UART_IER_RDI);
	assert_int_equal(pthread_create(&t, NULL, pusher, s), 0);
	while (got < STREAM_LEN) {
		if (!(RD(s, UART_LSR) & UART_LSR_DR)) {
			sched_yield();
			continue;
		}
		assert_int_equal(RD(s, UART_RX), (uint8_t)(got * 31));
		got++;
	}
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_null(ret);
	assert_false(RD(s, UART_LSR) & UART_LSR_DR);
	assert_false(vmm_serial_irq_level(s));
	vmm_serial_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reset_state),
		cmocka_unit_test(test_divisor_latch),
		cmocka_unit_test(test_thr_output_and_lsr),
		cmocka_unit_test(test_thre_interrupt),
		cmocka_unit_test(test_receive),
		cmocka_unit_test(test_input_backpressure),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_iir_priorities),
		cmocka_unit_test(test_scratch),
		cmocka_unit_test(test_bus),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
