/*
 * 16550A UART model (NS16550A / TI TL16C550 datasheet register set): RBR,
 * THR, IER, IIR, FCR, LCR, MCR, LSR, MSR, SCR and the DLL/DLM divisor latch,
 * 16-byte RX and TX FIFOs. The model is separate from its bus glue:
 * uart_read()/uart_write() take a register offset 0-7, uart_register() puts
 * the eight registers on a port I/O bus (COM1 = 0x3f8, IRQ 4).
 *
 * Host side: a struct chardev (backend/chardev.h). Guest output goes through
 * chardev_write(), which never blocks; when the chardev has no room the
 * bytes stay in the TX FIFO and LSR.THRE/TEMT stay clear until the chardev
 * calls back with room, so a slow host reader throttles the guest and
 * nothing is lost. Host input fills the RX FIFO; when it is full the
 * chardev is paused and resumed once the guest has read it half empty.
 * A NULL chardev (serial `none`) is tolerated: output is discarded and
 * there is no input.
 *
 * Interrupts: the model computes the level of its INTR pin (1 while an
 * enabled condition is pending: IIR bit 0 clear) and calls irq_line_set()
 * only when the level changes, always with the UART lock held so the
 * 0/1 calls reach the line in order. ISA serial IRQs are edge triggered on
 * the PIC/IOAPIC: the VM should forward the level unchanged with
 * KVM_IRQ_LINE (the in-kernel IOAPIC and PIC latch an interrupt on each
 * 0->1 transition, exactly like the ISA bus sees the 8250's INTR pin). A VM
 * that instead pulses (1 then 0) on set(1) and ignores set(0) also works,
 * because set(1) is only ever called on a rising edge. There is no OUT2
 * gating of the IRQ (like QEMU).
 *
 * Threads and locks: register accesses come from vCPU threads, RX pushes
 * and TX room notifications from the event loop thread. Each UART has one
 * mutex. Lock order: uart lock -> chardev lock -> evloop lock, and the irq
 * line's set() is called with the uart lock held (it must not call back
 * into the UART). The chardev calls the UART's callbacks with no chardev
 * lock held. Nothing blocks on I/O under the uart lock.
 */
#ifndef HVMM_DEV_UART_H
#define HVMM_DEV_UART_H

#include <stdint.h>

#include "core/irq.h"

struct chardev;
struct iobus;
struct uart;

/* Legacy PC COM ports. */
#define UART_COM1_BASE 0x3f8
#define UART_COM2_BASE 0x2f8
#define UART_COM3_BASE 0x3e8
#define UART_COM4_BASE 0x2e8
#define UART_COM1_IRQ 4 /* also COM3 */
#define UART_COM2_IRQ 3 /* also COM4 */

#define UART_NREGS 8

/* Register offsets (DLAB = LCR bit 7 selects DLL/DLM at 0/1). */
#define UART_RBR 0 /* read, DLAB=0 */
#define UART_THR 0 /* write, DLAB=0 */
#define UART_DLL 0 /* DLAB=1 */
#define UART_IER 1 /* DLAB=0 */
#define UART_DLM 1 /* DLAB=1 */
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_ERBFI 0x01 /* received data available */
#define UART_IER_ETBEI 0x02 /* transmitter holding register empty */
#define UART_IER_ELSI 0x04  /* receiver line status */
#define UART_IER_EDSSI 0x08 /* modem status */

#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI 0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_CTI 0x0c /* character timeout */
#define UART_IIR_ID_MASK 0x0f
#define UART_IIR_FIFO_ENABLED 0xc0

#define UART_FCR_FE 0x01 /* FIFO enable */
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_CLEAR_XMIT 0x04
#define UART_FCR_DMA 0x08
#define UART_FCR_TRIGGER_MASK 0xc0

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_PE 0x04
#define UART_LSR_FE 0x08
#define UART_LSR_BI 0x10
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_LSR_FIFOE 0x80

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

#define UART_FIFO_SIZE 16

/*
 * Create a UART in its reset state, wired to irq (copied) and attached to
 * cd (may be NULL; the UART registers itself as cd's device). 0 or -errno.
 */
int uart_create(const struct irq_line *irq, struct chardev *cd,
		struct uart **out);

/*
 * Detach from the chardev (waiting for a running callback) and free. Tear
 * down in this order: stop the vCPUs, uart_destroy(), chardev_destroy(),
 * evloop_destroy(). Must not be called with the uart lock held (i.e. from
 * the irq line's set()).
 */
void uart_destroy(struct uart *u);

/* Power-on / bus reset: registers to their reset values, FIFOs emptied. */
void uart_reset(struct uart *u);

/* One register access at offset 0-7 (others read 0xff / are ignored). */
uint8_t uart_read(struct uart *u, unsigned off);
void uart_write(struct uart *u, unsigned off, uint8_t val);

/*
 * Register the eight ports at base on a port I/O bus. Accesses wider than
 * a byte act like the ISA bus splitting them: one byte access per port.
 * Returns iobus_register()'s result.
 */
int uart_register(struct uart *u, struct iobus *pio, uint16_t base);

#endif
