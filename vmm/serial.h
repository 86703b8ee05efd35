/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 16550A UART for vdk-vmm: the guest's console on COM1 (port 0x3f8, IRQ 4).
 *
 * Registers (offset from the base port; DLAB is LCR bit 7), as in the
 * National Semiconductor PC16550D data sheet and <linux/serial_reg.h>:
 *
 *   0  read: RBR (receive buffer)    write: THR (transmit holding)
 *      with DLAB = 1: DLL (divisor latch, low byte)
 *   1  IER (interrupt enable)        with DLAB = 1: DLM (divisor, high byte)
 *   2  read: IIR (interrupt ident.)  write: FCR (FIFO control)
 *   3  LCR (line control)   4  MCR (modem control)   5  LSR (line status)
 *   6  MSR (modem status)   7  SCR (scratch)
 *
 * Transmission is instantaneous: a THR write hands the byte to the output
 * callback at once, so THR is always empty (LSR THRE and TEMT set) and a
 * THR-empty interrupt is pending after each write until IIR is read or THR
 * is written again. Received bytes come from vmm_serial_push_input() and
 * wait in a VMM_SERIAL_FIFO_SIZE-byte FIFO (used whether or not the guest
 * enabled the FIFOs through FCR).
 *
 * Interrupt priority (IIR, highest first): receiver line status (overrun),
 * received data available, THR empty, modem status; each only if enabled
 * in IER. The interrupt output is a level: asserted while IIR reports a
 * pending interrupt. The irq callback runs when that level changes; a VMM
 * with an edge-triggered IRQ 4 (ISA) raises the line on true and lowers it
 * on false.
 *
 * Loopback (MCR bit 4): THR bytes go to the receive FIFO instead of the
 * output callback (a full FIFO sets LSR OE and drops the byte), and MSR's
 * CTS, DSR, RI, DCD follow MCR's RTS, DTR, OUT1, OUT2. Otherwise the modem
 * lines read as connected (CTS, DSR, DCD set).
 *
 * Any value written to any register is accepted; reserved bits read as 0.
 *
 * Locking: one mutex per UART serialises register accesses (vCPU threads)
 * against vmm_serial_push_input() (the VMM's input thread). The out and irq
 * callbacks run with that mutex held, so they see changes in order; they
 * must not call back into the same UART.
 */
#ifndef VDK_SERIAL_H
#define VDK_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdk/bus.h>

/** COM1's I/O ports and ISA IRQ on a PC. */
#define VMM_SERIAL_COM1_BASE 0x3f8u
#define VMM_SERIAL_COM1_IRQ  4u
/** Ports a UART decodes. */
#define VMM_SERIAL_NUM_REGS 8u
/** Bytes the receive FIFO holds. */
#define VMM_SERIAL_FIFO_SIZE 64u

/** Receives one byte the guest transmitted (not in loopback). */
typedef void vmm_serial_out_fn(void *opaque, uint8_t byte);
/** Called when the interrupt output changes level (true = asserted). */
typedef void vmm_serial_irq_fn(void *opaque, bool level);

/** struct vmm_serial_config - callbacks; each may be NULL (then unused). */
struct vmm_serial_config {
	vmm_serial_out_fn *out; /**< transmitted bytes; NULL drops them */
	void *out_opaque;	/**< passed to @out; not owned */
	vmm_serial_irq_fn *irq; /**< interrupt level changes */
	void *irq_opaque;	/**< passed to @irq; not owned */
};

struct vmm_serial;

/**
 * vmm_serial_new() - create a UART in its reset state: divisor 12
 * (9600 baud), LCR 8N1, MCR OUT2, LSR THRE|TEMT, no interrupt pending.
 * @cfg: callbacks; copied. May be NULL (no callbacks).
 * @err: 0 or -ENOMEM (or the error of pthread_mutex_init); may be NULL.
 * Return: the UART (vmm_serial_free()), or NULL.
 */
struct vmm_serial *vmm_serial_new(const struct vmm_serial_config *cfg,
				  int *err);

/** vmm_serial_free() - free the UART (deregister it from its bus first). */
void vmm_serial_free(struct vmm_serial *s);

/**
 * vmm_serial_read() - a guest read of register @offset (0..7).
 * Return: the register value; 0 for an @offset outside 0..7. Reading has
 * the side effects listed in serial.h (RBR pops the FIFO, IIR acknowledges
 * THR empty, LSR clears OE, MSR clears the delta bits).
 */
uint8_t vmm_serial_read(struct vmm_serial *s, uint64_t offset);

/** vmm_serial_write() - a guest write of @value to register @offset (0..7);
 * other offsets, and writes to LSR and MSR, are ignored. */
void vmm_serial_write(struct vmm_serial *s, uint64_t offset, uint8_t value);

/**
 * Bus ops (opaque: the struct vmm_serial). An access of several bytes is
 * handled as that many byte accesses at consecutive registers, the way an
 * 8-bit ISA device sees a wider I/O instruction.
 */
extern const struct vdk_bus_device_ops vmm_serial_bus_ops;

/**
 * vmm_serial_register() - register @s on @pio for ports [@base, @base + 8).
 * Return: as vdk_bus_register().
 */
int vmm_serial_register(struct vmm_serial *s, struct vdk_bus *pio,
			uint16_t base);

/**
 * vmm_serial_push_input() - queue bytes for the guest to receive.
 * @buf: @len bytes; not retained.
 *
 * Queues as many bytes as the FIFO has room for and raises the received
 * data interrupt if enabled. Bytes that do not fit are not consumed: the
 * caller keeps them and retries once the guest has read some
 * (vmm_serial_rx_space()). In loopback mode the UART is disconnected from
 * the outside and nothing is queued.
 *
 * Return: the number of bytes queued (0..@len, at most
 * VMM_SERIAL_FIFO_SIZE); -EINVAL if @buf is NULL and @len is not 0.
 */
int vmm_serial_push_input(struct vmm_serial *s, const uint8_t *buf, size_t len);

/** vmm_serial_rx_space() - free bytes in the receive FIFO. */
size_t vmm_serial_rx_space(struct vmm_serial *s);

/** vmm_serial_irq_level() - true while the interrupt output is asserted. */
bool vmm_serial_irq_level(struct vmm_serial *s);

#endif /* VDK_SERIAL_H */
