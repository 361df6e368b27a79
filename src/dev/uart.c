/*
 * 16550A UART register model (NS16550A datasheet; the behaviour Linux's
 * drivers/tty/serial/8250/8250_port.c relies on): divisor latch, FIFOs with
 * FCR enable/clear/trigger, IIR priorities (line status > RX data / char
 * timeout > THR empty > modem status), the THRE interrupt rules, loopback
 * (MCR bit 4) and modem status deltas. Contract, interrupt wiring and lock
 * order are in uart.h.
 *
 * Deliberate simplifications: bytes are "transmitted" the moment the
 * chardev accepts them (no baud-rate timing), so THRE/TEMT only stay clear
 * while the host side applies backpressure; the RX character-timeout
 * interrupt is reported at once whenever data sits below the trigger level
 * instead of after four character times; parity/framing errors and break
 * never occur. The 8250 autoconfig probe sees: IER bits 7:4 read as 0, IIR
 * bits 7:6 set with FIFOs on and bits 5:4 clear (no 64-byte FIFO, no EFR),
 * a working scratch register and loopback MSR (MCR 0x1a -> MSR 0x90), and a
 * 16-byte FIFO in loopback: a 16550A.
 */
#include "dev/uart.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "backend/chardev.h"
#include "core/iobus.h"
#include "core/log.h"

struct uart {
	pthread_mutex_t lock;
	struct irq_line irq;
	struct chardev *cd;
	uint16_t base; /* for messages; 0 until registered */

	uint8_t ier, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
	uint8_t tx[UART_FIFO_SIZE];
	unsigned tx_head, tx_count;
	bool thri_pending; /* THRE interrupt latched, not yet acknowledged */
	bool irq_level;    /* last level given to irq_line_set() */
	bool rx_paused;    /* the chardev holds input for us */
};

static const unsigned uart_rx_triggers[4] = { 1, 4, 8, 14 };

static unsigned uart_fifo_cap(const struct uart *u)
{
	return (u->fcr & UART_FCR_FE) ? UART_FIFO_SIZE : 1;
}

static uint8_t uart_iir(const struct uart *u)
{
	uint8_t fifo = (u->fcr & UART_FCR_FE) ? UART_IIR_FIFO_ENABLED : 0;

	if ((u->ier & UART_IER_ELSI) &&
	    (u->lsr & (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)))
		return fifo | UART_IIR_RLSI;
	if ((u->ier & UART_IER_ERBFI) && u->rx_count) {
		if (!(u->fcr & UART_FCR_FE) ||
		    u->rx_count >= uart_rx_triggers[u->fcr >> 6])
			return fifo | UART_IIR_RDI;
		return fifo | UART_IIR_CTI;
	}
	if ((u->ier & UART_IER_ETBEI) && u->thri_pending)
		return fifo | UART_IIR_THRI;
	if ((u->ier & UART_IER_EDSSI) && (u->msr & 0x0f))
		return fifo | UART_IIR_MSI;
	return fifo | UART_IIR_NO_INT;
}

static void uart_update_irq(struct uart *u)
{
	bool level = !(uart_iir(u) & UART_IIR_NO_INT);
	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

/* The guest has room again: let the chardev hand us more input. */
static void uart_maybe_resume_rx(struct uart *u)
{
	if (u->rx_paused && !(u->mcr & UART_MCR_LOOP) &&
	    u->rx_count <= uart_fifo_cap(u) / 2) {
		u->rx_paused = false;
		if (u->cd)
			chardev_resume_input(u->cd);
	}
}

static void uart_rx_clear(struct uart *u)
{
	u->rx_head = u->rx_count = 0;
	u->lsr &= (uint8_t)~(UART_LSR_DR | UART_LSR_FIFOE);
	uart_maybe_resume_rx(u);
}

static void uart_tx_clear(struct uart *u)
{
	bool had = u->tx_count != 0;
	u->tx_head = u->tx_count = 0;
	u->lsr |= UART_LSR_THRE | UART_LSR_TEMT;
	if (had && (u->ier & UART_IER_ETBEI))
		u->thri_pending = true;
}

static void uart_rx_push(struct uart *u, uint8_t b)
{
	unsigned cap = uart_fifo_cap(u);
	if (u->rx_count < cap) {
		u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = b;
		u->rx_count++;
	} else {
		/* Only loopback can get here (host input pauses instead). */
		u->lsr |= UART_LSR_OE;
		if (cap == 1) /* 16450 mode: the new byte overwrites RBR */
			u->rx[u->rx_head] = b;
	}
	u->lsr |= UART_LSR_DR;
}

/* Move TX FIFO bytes to the chardev; THRE once the FIFO is empty. */
static void uart_tx_flush(struct uart *u)
{
	while (u->tx_count) {
		unsigned chunk = UART_FIFO_SIZE - u->tx_head;
		if (chunk > u->tx_count)
			chunk = u->tx_count;
		size_t n = u->cd ? chardev_write(u->cd, &u->tx[u->tx_head], chunk)
				 : chunk;
		u->tx_head = (u->tx_head + (unsigned)n) % UART_FIFO_SIZE;
		u->tx_count -= (unsigned)n;
		if (n < chunk)
			return; /* no room: the chardev calls uart_cd_room() */
	}
	u->tx_head = 0;
	if (!(u->lsr & UART_LSR_THRE) && (u->ier & UART_IER_ETBEI))
		u->thri_pending = true;
	u->lsr |= UART_LSR_THRE | UART_LSR_TEMT;
}

/* Modem status inputs: constant (DCD, DSR, CTS on) or looped-back MCR. */
static void uart_update_msr(struct uart *u)
{
	uint8_t st;
	if (u->mcr & UART_MCR_LOOP) {
		st = ((u->mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
		     ((u->mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
		     ((u->mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) |
		     ((u->mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0);
	} else {
		st = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	}
	uint8_t changed = (u->msr ^ st) & 0xf0;
	uint8_t delta = 0;
	if (changed & UART_MSR_CTS)
		delta |= UART_MSR_DCTS;
	if (changed & UART_MSR_DSR)
		delta |= UART_MSR_DDSR;
	if ((u->msr & UART_MSR_RI) && !(st & UART_MSR_RI))
		delta |= UART_MSR_TERI; /* trailing edge only */
	if (changed & UART_MSR_DCD)
		delta |= UART_MSR_DDCD;
	u->msr = st | (u->msr & 0x0f) | delta;
}

static void uart_write_thr(struct uart *u, uint8_t val)
{
	u->thri_pending = false;
	if (u->mcr & UART_MCR_LOOP) {
		/* Looped straight into the receiver; the line stays idle. */
		uart_rx_push(u, val);
		if (!u->tx_count && (u->ier & UART_IER_ETBEI))
			u->thri_pending = true;
		return;
	}
	if (u->tx_count == uart_fifo_cap(u)) {
		log_guest("uart %#x: guest wrote THR while the transmitter "
			  "was full (LSR.THRE clear); byte dropped",
			  u->base);
		return;
	}
	u->tx[(u->tx_head + u->tx_count) % UART_FIFO_SIZE] = val;
	u->tx_count++;
	u->lsr &= (uint8_t)~(UART_LSR_THRE | UART_LSR_TEMT);
	uart_tx_flush(u);
}

static void uart_write_fcr(struct uart *u, uint8_t val)
{
	bool was_on = u->fcr & UART_FCR_FE;
	if (!(val & UART_FCR_FE)) {
		/* FIFOs off (16450 mode); other bits are not programmed. */
		if (was_on) {
			uart_rx_clear(u);
			uart_tx_clear(u);
		}
		u->fcr &= (uint8_t)~UART_FCR_FE;
		return;
	}
	if (!was_on) {
		uart_rx_clear(u);
		uart_tx_clear(u);
	}
	/* Bit 5 (64-byte FIFO, 16750 only) is not implemented: reads 0. */
	u->fcr = val & (UART_FCR_FE | UART_FCR_DMA | UART_FCR_TRIGGER_MASK);
	if (val & UART_FCR_CLEAR_RCVR)
		uart_rx_clear(u);
	if (val & UART_FCR_CLEAR_XMIT)
		uart_tx_clear(u);
}

static void uart_write_ier(struct uart *u, uint8_t val)
{
	uint8_t old = u->ier;
	u->ier = val & 0x0f;
	/*
	 * Enabling ETBEI while THR is empty raises THRI at once (Linux's
	 * THRE test in serial8250_do_startup and Windows' serial.sys depend on
	 * it; QEMU and Bochs do the same on the 0->1 edge).
	 */
	if ((old ^ u->ier) & UART_IER_ETBEI)
		u->thri_pending = (u->ier & UART_IER_ETBEI) &&
				  (u->lsr & UART_LSR_THRE);
}

void uart_write(struct uart *u, unsigned off, uint8_t val)
{
	pthread_mutex_lock(&u->lock);
	bool dlab = u->lcr & UART_LCR_DLAB;
	switch (off) {
	case UART_THR:
		if (dlab)
			u->dll = val;
		else
			uart_write_thr(u, val);
		break;
	case UART_IER:
		if (dlab)
			u->dlm = val;
		else
			uart_write_ier(u, val);
		break;
	case UART_FCR:
		uart_write_fcr(u, val);
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR: {
		bool was_loop = u->mcr & UART_MCR_LOOP;
		u->mcr = val & 0x1f;
		uart_update_msr(u);
		if (was_loop && !(u->mcr & UART_MCR_LOOP))
			uart_maybe_resume_rx(u);
		break;
	}
	case UART_SCR:
		u->scr = val;
		break;
	default:
		/* LSR and MSR writes are factory test modes: ignored. */
		break;
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

uint8_t uart_read(struct uart *u, unsigned off)
{
	uint8_t val = 0xff;
	pthread_mutex_lock(&u->lock);
	bool dlab = u->lcr & UART_LCR_DLAB;
	switch (off) {
	case UART_RBR:
		if (dlab) {
			val = u->dll;
			break;
		}
		val = u->rx[u->rx_head];
		if (u->rx_count) {
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
		}
		if (!u->rx_count)
			u->lsr &= (uint8_t)~UART_LSR_DR;
		uart_maybe_resume_rx(u);
		break;
	case UART_IER:
		val = dlab ? u->dlm : u->ier;
		break;
	case UART_IIR:
		val = uart_iir(u);
		/* Reading IIR acknowledges THRI when it is the reported source. */
		if ((val & UART_IIR_ID_MASK) == UART_IIR_THRI)
			u->thri_pending = false;
		break;
	case UART_LCR:
		val = u->lcr;
		break;
	case UART_MCR:
		val = u->mcr;
		break;
	case UART_LSR:
		val = u->lsr;
		u->lsr &= (uint8_t)~(UART_LSR_OE | UART_LSR_PE | UART_LSR_FE |
				     UART_LSR_BI | UART_LSR_FIFOE);
		break;
	case UART_MSR:
		val = u->msr;
		u->msr &= 0xf0;
		break;
	case UART_SCR:
		val = u->scr;
		break;
	default:
		break;
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return val;
}

/* ---- chardev callbacks (event loop thread) -------------------------- */

static size_t uart_cd_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct uart *u = opaque;
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	/* In loopback the receiver is cut off from the line: hold input. */
	if (!(u->mcr & UART_MCR_LOOP)) {
		unsigned cap = uart_fifo_cap(u);
		while (n < len && u->rx_count < cap)
			uart_rx_push(u, buf[n++]);
	}
	if (n < len)
		u->rx_paused = true;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

static void uart_cd_room(void *opaque)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	uart_tx_flush(u);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static const struct chardev_ops uart_cd_ops = {
	.input = uart_cd_input,
	.room = uart_cd_room,
};

/* ---- life cycle and bus glue ---------------------------------------- */

void uart_reset(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	u->ier = 0;
	u->fcr = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->lsr = UART_LSR_THRE | UART_LSR_TEMT;
	u->msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	u->scr = 0;
	u->dll = 0x0c; /* 9600 baud from the 1.8432 MHz clock */
	u->dlm = 0;
	u->tx_head = u->tx_count = 0;
	u->thri_pending = false;
	uart_rx_clear(u);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

int uart_create(const struct irq_line *irq, struct chardev *cd,
		struct uart **out)
{
	struct uart *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	int rc = pthread_mutex_init(&u->lock, NULL);
	if (rc) {
		free(u);
		return -rc;
	}
	if (irq)
		u->irq = *irq;
	u->cd = cd;
	uart_reset(u);
	if (cd)
		chardev_set_ops(cd, &uart_cd_ops, u);
	*out = u;
	return 0;
}

void uart_destroy(struct uart *u)
{
	if (!u)
		return;
	if (u->cd)
		chardev_set_ops(u->cd, NULL, NULL);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static void uart_io_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	uint8_t *d = data;
	for (unsigned i = 0; i < size; i++)
		d[i] = off < UART_NREGS && i < UART_NREGS - off
			       ? uart_read(opaque, (unsigned)off + i)
			       : 0xff;
}

static void uart_io_write(void *opaque, uint64_t off, const void *data,
			  unsigned size)
{
	const uint8_t *d = data;
	for (unsigned i = 0; i < size; i++)
		if (off < UART_NREGS && i < UART_NREGS - off)
			uart_write(opaque, (unsigned)off + i, d[i]);
}

static const struct io_ops uart_io_ops = {
	.read = uart_io_read,
	.write = uart_io_write,
};

int uart_register(struct uart *u, struct iobus *pio, uint16_t base)
{
	u->base = base;
	return iobus_register(pio, base, UART_NREGS, &uart_io_ops, u, "uart");
}
