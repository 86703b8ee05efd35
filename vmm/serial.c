/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 16550A UART (see serial.h). Register semantics from the PC16550D data
 * sheet; bit names from <linux/serial_reg.h>.
 *
 * Every register access runs under the UART's mutex and ends with
 * update_irq(), which recomputes the interrupt output from the state and
 * calls the irq callback if the level changed.
 */
#include "serial.h"

#include <linux/serial_reg.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define IER_MASK	 0x0fu /* bits 7:4 are reserved, read as 0 */
#define MCR_MASK	 0x1fu /* bits 7:5 are reserved, read as 0 */
#define IIR_FIFO_ENABLED 0xc0u /* IIR bits 7:6 when FCR enabled the FIFOs */
#define FCR_TRIGGER_MASK 0xc0u /* receive trigger level, kept for nothing */
#define MSR_LINES_MASK	 0xf0u /* CTS, DSR, RI, DCD */
/* Modem lines of an attached, ready terminal. */
#define MSR_CONNECTED	(UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS)
#define DEFAULT_DIVISOR 12u   /* 115200 / 12 = 9600 baud */
#define DEFAULT_LCR	0x03u /* 8 data bits, no parity, 1 stop bit */

struct vmm_serial {
	pthread_mutex_t lock;
	struct vmm_serial_config cfg;

	uint8_t ier, lcr, mcr, scr;
	uint8_t dll, dlm;
	uint8_t fcr;	    /* FIFO enable and trigger bits as written */
	uint8_t lsr_errors; /* sticky LSR error bits (OE), cleared by LSR read */
	uint8_t msr;	    /* lines (7:4) and deltas (3:0) */
	bool thre_pending;  /* THR-empty interrupt latched */
	bool irq_level;	    /* last level given to the irq callback */

	uint8_t rx[VMM_SERIAL_FIFO_SIZE]; /* ring of received bytes */
	size_t rx_head;			  /* index of the oldest byte */
	size_t rx_count;		  /* bytes in the ring */
};

/* ---- state helpers; all called with s->lock held ----------------------- */

static bool loopback(const struct vmm_serial *s)
{
	return s->mcr & UART_MCR_LOOP;
}

/* MSR bits 7:4 as the current MCR makes them (PC16550D loopback wiring). */
static uint8_t msr_lines(const struct vmm_serial *s)
{
	uint8_t lines = 0;

	if (!loopback(s))
		return MSR_CONNECTED;
	if (s->mcr & UART_MCR_RTS)
		lines |= UART_MSR_CTS;
	if (s->mcr & UART_MCR_DTR)
		lines |= UART_MSR_DSR;
	if (s->mcr & UART_MCR_OUT1)
		lines |= UART_MSR_RI;
	if (s->mcr & UART_MCR_OUT2)
		lines |= UART_MSR_DCD;
	return lines;
}

/* Set MSR lines to @lines, latching the deltas (TERI: RI fell). */
static void msr_set_lines(struct vmm_serial *s, uint8_t lines)
{
	uint8_t old = s->msr & MSR_LINES_MASK;
	uint8_t changed = old ^ lines;
	uint8_t delta = s->msr & UART_MSR_ANY_DELTA;

	if (changed & UART_MSR_CTS)
		delta |= UART_MSR_DCTS;
	if (changed & UART_MSR_DSR)
		delta |= UART_MSR_DDSR;
	if (changed & UART_MSR_DCD)
		delta |= UART_MSR_DDCD;
	if ((old & UART_MSR_RI) && !(lines & UART_MSR_RI))
		delta |= UART_MSR_TERI;
	s->msr = (uint8_t)(lines | delta);
}

/* The interrupt IIR reports now (bits 3:0), by priority. */
static uint8_t iir_id(const struct vmm_serial *s)
{
	if ((s->ier & UART_IER_RLSI) && s->lsr_errors)
		return UART_IIR_RLSI;
	if ((s->ier & UART_IER_RDI) && s->rx_count)
		return UART_IIR_RDI;
	if ((s->ier & UART_IER_THRI) && s->thre_pending)
		return UART_IIR_THRI;
	if ((s->ier & UART_IER_MSI) && (s->msr & UART_MSR_ANY_DELTA))
		return UART_IIR_MSI;
	return UART_IIR_NO_INT;
}

static void update_irq(struct vmm_serial *s)
{
	bool level = iir_id(s) != UART_IIR_NO_INT;

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (s->cfg.irq)
		s->cfg.irq(s->cfg.irq_opaque, level);
}

/* Queue one received byte; a full FIFO is an overrun (byte lost). */
static bool rx_push(struct vmm_serial *s, uint8_t byte)
{
	if (s->rx_count == VMM_SERIAL_FIFO_SIZE) {
		s->lsr_errors |= UART_LSR_OE;
		return false;
	}
	s->rx[(s->rx_head + s->rx_count) % VMM_SERIAL_FIFO_SIZE] = byte;
	s->rx_count++;
	return true;
}

static uint8_t rx_pop(struct vmm_serial *s)
{
	uint8_t byte;

	if (s->rx_count == 0)
		return 0;
	byte = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % VMM_SERIAL_FIFO_SIZE;
	s->rx_count--;
	return byte;
}

static void rx_clear(struct vmm_serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

struct vmm_serial *vmm_serial_new(const struct vmm_serial_config *cfg, int *err)
{
	struct vmm_serial *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		if (err)
			*err = -ENOMEM;
		return NULL;
	}
	ret = -pthread_mutex_init(&s->lock, NULL);
	if (ret) {
		free(s);
		if (err)
			*err = ret;
		return NULL;
	}
	if (cfg)
		s->cfg = *cfg;
	s->dll = DEFAULT_DIVISOR;
	s->lcr = DEFAULT_LCR;
	s->mcr = UART_MCR_OUT2;
	s->msr = MSR_CONNECTED;
	if (err)
		*err = 0;
	return s;
}

void vmm_serial_free(struct vmm_serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- register access ---------------------------------------------------- */

static uint8_t read_locked(struct vmm_serial *s, uint64_t offset)
{
	bool dlab = s->lcr & UART_LCR_DLAB;
	uint8_t v, id;

	switch (offset) {
	case UART_RX: /* == UART_DLL */
		if (dlab)
			return s->dll;
		return rx_pop(s);
	case UART_IER: /* == UART_DLM */
		return dlab ? s->dlm : s->ier;
	case UART_IIR:
		id = iir_id(s);
		/* Reading IIR while it reports THR empty acknowledges it. */
		if (id == UART_IIR_THRI)
			s->thre_pending = false;
		if (s->fcr & UART_FCR_ENABLE_FIFO)
			id |= IIR_FIFO_ENABLED;
		return id;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		/* THR empties at once, so THRE and TEMT are always set. */
		v = UART_LSR_THRE | UART_LSR_TEMT | s->lsr_errors;
		if (s->rx_count)
			v |= UART_LSR_DR;
		s->lsr_errors = 0; /* reading LSR clears the error bits */
		return v;
	case UART_MSR:
		v = s->msr;
		s->msr &= MSR_LINES_MASK; /* reading MSR clears the deltas */
		return v;
	case UART_SCR:
		return s->scr;
	default:
		return 0;
	}
}

static void transmit(struct vmm_serial *s, uint8_t byte)
{
	if (loopback(s))
		rx_push(s, byte);
	else if (s->cfg.out)
		s->cfg.out(s->cfg.out_opaque, byte);
	/* THR is empty again at once: latch the THR-empty interrupt. */
	s->thre_pending = true;
}

static void write_locked(struct vmm_serial *s, uint64_t offset, uint8_t value)
{
	bool dlab = s->lcr & UART_LCR_DLAB;
	uint8_t old;

	switch (offset) {
	case UART_TX: /* == UART_DLL */
		if (dlab)
			s->dll = value;
		else
			transmit(s, value);
		break;
	case UART_IER: /* == UART_DLM */
		if (dlab) {
			s->dlm = value;
			break;
		}
		old = s->ier;
		s->ier = value & IER_MASK;
		/* Enabling the THR-empty interrupt with THR empty fires it. */
		if (!(old & UART_IER_THRI) && (s->ier & UART_IER_THRI))
			s->thre_pending = true;
		break;
	case UART_FCR:
		if (value & UART_FCR_CLEAR_RCVR)
			rx_clear(s);
		/* UART_FCR_CLEAR_XMIT: nothing waits to be transmitted. */
		s->fcr = value & (UART_FCR_ENABLE_FIFO | FCR_TRIGGER_MASK);
		break;
	case UART_LCR:
		s->lcr = value;
		break;
	case UART_MCR:
		s->mcr = value & MCR_MASK;
		msr_set_lines(s, msr_lines(s));
		break;
	case UART_SCR:
		s->scr = value;
		break;
	default:
		/* LSR and MSR are read-only (factory test writes ignored). */
		break;
	}
}

uint8_t vmm_serial_read(struct vmm_serial *s, uint64_t offset)
{
	uint8_t v;

	pthread_mutex_lock(&s->lock);
	v = read_locked(s, offset);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return v;
}

void vmm_serial_write(struct vmm_serial *s, uint64_t offset, uint8_t value)
{
	pthread_mutex_lock(&s->lock);
	write_locked(s, offset, value);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

/* True if byte @i of an access at @offset is a register (no wrap). */
static bool in_regs(uint64_t offset, size_t i)
{
	return i < VMM_SERIAL_NUM_REGS && offset < VMM_SERIAL_NUM_REGS - i;
}

static void bus_read(void *opaque, uint64_t base, uint64_t offset, void *data,
		     size_t len)
{
	uint8_t *out = data;

	(void)base;
	for (size_t i = 0; i < len; i++)
		out[i] = in_regs(offset, i)
				 ? vmm_serial_read(opaque, offset + i)
				 : 0;
}

static void bus_write(void *opaque, uint64_t base, uint64_t offset,
		      const void *data, size_t len)
{
	const uint8_t *in = data;

	(void)base;
	for (size_t i = 0; i < len && in_regs(offset, i); i++)
		vmm_serial_write(opaque, offset + i, in[i]);
}

const struct vdk_bus_device_ops vmm_serial_bus_ops = {
	.read = bus_read,
	.write = bus_write,
};

int vmm_serial_register(struct vmm_serial *s, struct vdk_bus *pio,
			uint16_t base)
{
	struct vdk_bus_range r = {.base = base, .size = VMM_SERIAL_NUM_REGS};
	struct vdk_bus_device dev = {.ops = &vmm_serial_bus_ops, .opaque = s};

	if (!s || !pio)
		return -EINVAL;
	return vdk_bus_register(pio, r, dev);
}

/* ---- the VMM side -------------------------------------------------------- */

int vmm_serial_push_input(struct vmm_serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	if (!buf && len)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	/* In loopback the receiver hears only the transmitter. */
	if (!loopback(s)) {
		while (n < len && s->rx_count < VMM_SERIAL_FIFO_SIZE)
			rx_push(s, buf[n++]);
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return (int)n;
}

size_t vmm_serial_rx_space(struct vmm_serial *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = VMM_SERIAL_FIFO_SIZE - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

bool vmm_serial_irq_level(struct vmm_serial *s)
{
	bool level;

	pthread_mutex_lock(&s->lock);
	level = s->irq_level;
	pthread_mutex_unlock(&s->lock);
	return level;
}
