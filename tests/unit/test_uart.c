/*
 * Unit tests for the 16550A model (src/dev/uart.c), driven through its
 * register interface the way a guest driver would, with a recording fake
 * IRQ line and a real chardev on pipes (host input pipe -> RX, TX -> host
 * output pipe) run by a real event loop. Covers Linux 8250 autoconfig
 * (must say 16550A), the startup THRE test, the divisor latch, THRE
 * interrupt rules, RX trigger levels and timeout indication, RX-full pause
 * without overrun, loopback overrun, IIR priorities, FIFO clearing, 100 KiB
 * through a slow reader without loss, and odd bus accesses.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/chardev.h"
#include "core/evloop.h"
#include "core/iobus.h"
#include "dev/uart.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- fake IRQ line --------------------------------------------------- */

struct fake_irq {
	atomic_int level;
	atomic_int rises;     /* 0 -> 1 transitions */
	atomic_int redundant; /* set() calls that did not change the level */
};

static void fake_irq_set(void *opaque, unsigned gsi, int level)
{
	struct fake_irq *f = opaque;
	assert_int_equal(gsi, UART_COM1_IRQ);
	int old = atomic_exchange(&f->level, level);
	if (old == level)
		atomic_fetch_add(&f->redundant, 1);
	else if (level)
		atomic_fetch_add(&f->rises, 1);
}

/* ---- harness ----------------------------------------------------------- */

struct harness {
	struct evloop *loop;
	struct chardev *cd;
	struct uart *u;
	int in_w;  /* host input: the test writes here */
	int out_r; /* guest output: the test reads here */
	struct fake_irq irq;
};

static int setup(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));
	int in[2], out[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	h->in_w = in[1];
	h->out_r = out[0];
	h->loop = evloop_create();
	assert_non_null(h->loop);
	assert_int_equal(evloop_start(h->loop), 0);
	assert_int_equal(chardev_create_fds(in[0], out[1], h->loop, &h->cd), 0);
	struct irq_line line = { fake_irq_set, &h->irq, UART_COM1_IRQ };
	assert_int_equal(uart_create(&line, h->cd, &h->u), 0);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct harness *h = *state;
	assert_int_equal(atomic_load(&h->irq.redundant), 0);
	uart_destroy(h->u);
	chardev_destroy(h->cd);
	evloop_destroy(h->loop);
	close(h->in_w);
	close(h->out_r);
	free(h);
	return 0;
}

static uint8_t rd(struct harness *h, unsigned off)
{
	return uart_read(h->u, off);
}

static void wr(struct harness *h, unsigned off, uint8_t v)
{
	uart_write(h->u, off, v);
}

/* Wait up to 5 s for IIR to read `want` (IIR reads have side effects only
 * for THRI, which the callers do not wait for). */
static bool wait_iir(struct harness *h, uint8_t want)
{
	for (int i = 0; i < 5000; i++) {
		if (rd(h, UART_IIR) == want)
			return true;
		sleep_ms(1);
	}
	return false;
}

static bool wait_lsr(struct harness *h, uint8_t mask, uint8_t want)
{
	for (int i = 0; i < 5000; i++) {
		if ((rd(h, UART_LSR) & mask) == want)
			return true;
		sleep_ms(1);
	}
	return false;
}

/* Nonblocking read of whatever guest output reached the host. */
static size_t host_out_avail(struct harness *h, uint8_t *buf, size_t len)
{
	int fl = fcntl(h->out_r, F_GETFL);
	fcntl(h->out_r, F_SETFL, fl | O_NONBLOCK);
	ssize_t n = read(h->out_r, buf, len);
	fcntl(h->out_r, F_SETFL, fl);
	return n > 0 ? (size_t)n : 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_reset_state(void **state)
{
	struct harness *h = *state;
	assert_int_equal(rd(h, UART_IER), 0);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_NO_INT);
	assert_int_equal(rd(h, UART_LCR), 0);
	assert_int_equal(rd(h, UART_MCR), 0);
	assert_int_equal(rd(h, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(rd(h, UART_MSR),
			 UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
	assert_int_equal(rd(h, UART_SCR), 0);
	assert_int_equal(atomic_load(&h->irq.level), 0);
	/* Offsets past the eight registers. */
	assert_int_equal(uart_read(h->u, 8), 0xff);
	uart_write(h->u, 200, 0x12);
}

/* drivers/tty/serial/8250/8250_port.c size_fifo(). */
static int linux_size_fifo(struct harness *h)
{
	uint8_t old_lcr = rd(h, UART_LCR);
	wr(h, UART_LCR, 0);
	uint8_t old_fcr = rd(h, UART_IIR); /* sic: the driver reads IIR */
	uint8_t old_mcr = rd(h, UART_MCR);
	wr(h, UART_FCR, UART_FCR_FE | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
	wr(h, UART_MCR, UART_MCR_LOOP);
	wr(h, UART_LCR, UART_LCR_DLAB);
	uint8_t old_dll = rd(h, UART_DLL), old_dlm = rd(h, UART_DLM);
	wr(h, UART_DLL, 1);
	wr(h, UART_DLM, 0);
	wr(h, UART_LCR, 0x03);
	for (int count = 0; count < 256; count++)
		wr(h, UART_THR, (uint8_t)count);
	int count;
	for (count = 0; (rd(h, UART_LSR) & UART_LSR_DR) && count < 256; count++)
		assert_int_equal(rd(h, UART_RBR), count);
	wr(h, UART_FCR, old_fcr);
	wr(h, UART_MCR, old_mcr);
	wr(h, UART_LCR, UART_LCR_DLAB);
	wr(h, UART_DLL, old_dll);
	wr(h, UART_DLM, old_dlm);
	wr(h, UART_LCR, old_lcr);
	return count;
}

/* autoconfig() + autoconfig_16550a() with every variant probe enabled. */
static const char *linux_autoconfig(struct harness *h)
{
	uint8_t scratch = rd(h, UART_IER);
	wr(h, UART_IER, 0);
	uint8_t scratch2 = rd(h, UART_IER) & 0x0f;
	wr(h, UART_IER, 0x0f);
	uint8_t scratch3 = rd(h, UART_IER) & 0x0f;
	wr(h, UART_IER, scratch);
	if (scratch2 != 0 || scratch3 != 0x0f)
		return "nothing (IER test)";

	uint8_t save_mcr = rd(h, UART_MCR), save_lcr = rd(h, UART_LCR);
	wr(h, UART_MCR, UART_MCR_LOOP | 0x0a);
	uint8_t status1 = rd(h, UART_MSR) & 0xf0;
	wr(h, UART_MCR, save_mcr);
	if (status1 != (UART_MSR_DCD | UART_MSR_CTS))
		return "nothing (loopback test)";

	wr(h, UART_LCR, 0xbf);
	wr(h, 2 /* EFR */, 0);
	wr(h, UART_LCR, 0);
	wr(h, UART_FCR, UART_FCR_FE);
	switch (rd(h, UART_IIR) >> 6) {
	case 0: return "8250/16450";
	case 1: return "unknown";
	case 2: return "16550";
	}

	/* autoconfig_16550a */
	wr(h, UART_LCR, 0x80);
	if (rd(h, 2 /* EFR */) == 0)
		return "16650 (EFRv1)";
	wr(h, UART_LCR, 0xbf);
	if (rd(h, 2 /* EFR */) == 0)
		return "EFRv2 UART";
	wr(h, UART_LCR, 0);
	status1 = rd(h, UART_MCR);
	wr(h, UART_LCR, 0xe0);
	uint8_t status2 = rd(h, 0x02 /* EXCR1 */);
	if (!((status2 ^ status1) & UART_MCR_LOOP)) {
		wr(h, UART_LCR, 0);
		wr(h, UART_MCR, status1 ^ UART_MCR_LOOP);
		wr(h, UART_LCR, 0xe0);
		status2 = rd(h, 0x02);
		wr(h, UART_LCR, 0);
		wr(h, UART_MCR, status1);
		if ((status2 ^ status1) & UART_MCR_LOOP)
			return "NS16550A";
	}
	wr(h, UART_LCR, 0);
	wr(h, UART_FCR, UART_FCR_FE | 0x20);
	status1 = rd(h, UART_IIR) & 0xe0;
	wr(h, UART_FCR, UART_FCR_FE);
	wr(h, UART_LCR, 0x80);
	wr(h, UART_FCR, UART_FCR_FE | 0x20);
	status2 = rd(h, UART_IIR) & 0xe0;
	wr(h, UART_FCR, UART_FCR_FE);
	wr(h, UART_LCR, 0);
	if (status1 == 0xc0 && status2 == 0xe0)
		return "16750";
	uint8_t iersave = rd(h, UART_IER);
	wr(h, UART_IER, iersave & ~0x40);
	if (rd(h, UART_IER) & 0x40)
		return "XScale?";
	wr(h, UART_IER, iersave | 0x40);
	if (rd(h, UART_IER) & 0x40)
		return "XScale";
	wr(h, UART_IER, iersave);
	const char *type = "16550A";
	if (linux_size_fifo(h) == 64)
		type = "U6_16550A";

	wr(h, UART_LCR, save_lcr);
	wr(h, UART_MCR, save_mcr);
	/* serial8250_clear_fifos() + read RX + IER = 0 */
	wr(h, UART_FCR, UART_FCR_FE);
	wr(h, UART_FCR, UART_FCR_FE | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
	wr(h, UART_FCR, 0);
	rd(h, UART_RBR);
	wr(h, UART_IER, 0);
	return type;
}

static void test_linux_autoconfig(void **state)
{
	struct harness *h = *state;

	/* Scratch register. */
	wr(h, UART_SCR, 0x55);
	assert_int_equal(rd(h, UART_SCR), 0x55);
	wr(h, UART_SCR, 0xaa);
	assert_int_equal(rd(h, UART_SCR), 0xaa);

	assert_string_equal(linux_autoconfig(h), "16550A");
	assert_int_equal(linux_size_fifo(h), 16);

	/* serial8250_do_startup() THRE test: THRI re-asserts on IER 0->1. */
	wr(h, UART_IER, UART_IER_ETBEI);
	uint8_t iir1 = rd(h, UART_IIR);
	wr(h, UART_IER, 0);
	wr(h, UART_IER, UART_IER_ETBEI);
	uint8_t iir = rd(h, UART_IIR);
	wr(h, UART_IER, 0);
	assert_int_equal(iir1 & 0x0f, UART_IIR_THRI);
	assert_int_equal(iir & 0x0f, UART_IIR_THRI);

	/* Loopback bytes never reach the host. */
	sleep_ms(20);
	uint8_t buf[16];
	assert_int_equal(host_out_avail(h, buf, sizeof(buf)), 0);
	assert_int_equal(rd(h, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
}

static void test_divisor_latch(void **state)
{
	struct harness *h = *state;
	wr(h, UART_IER, 0x05);
	wr(h, UART_LCR, UART_LCR_DLAB | 0x03);
	assert_int_equal(rd(h, UART_DLL), 0x0c); /* reset: 9600 baud */
	wr(h, UART_DLL, 0x01);
	wr(h, UART_DLM, 0x02);
	assert_int_equal(rd(h, UART_DLL), 0x01);
	assert_int_equal(rd(h, UART_DLM), 0x02);
	assert_int_equal(rd(h, UART_LCR), UART_LCR_DLAB | 0x03);
	wr(h, UART_LCR, 0x03);
	/* With DLAB clear the same offsets are RBR/THR and IER again. */
	assert_int_equal(rd(h, UART_IER), 0x05);
	wr(h, UART_IER, 0xff); /* bits 7:4 do not exist */
	assert_int_equal(rd(h, UART_IER), 0x0f);
	wr(h, UART_IER, 0);
	wr(h, UART_LCR, UART_LCR_DLAB);
	assert_int_equal(rd(h, UART_DLL), 0x01);
	assert_int_equal(rd(h, UART_DLM), 0x02);
	/* Writing THR's offset with DLAB set does not transmit. */
	wr(h, UART_DLL, 0x41);
	wr(h, UART_LCR, 0);
	sleep_ms(20);
	uint8_t b;
	assert_int_equal(host_out_avail(h, &b, 1), 0);
}

static void test_thre_interrupt(void **state)
{
	struct harness *h = *state;
	wr(h, UART_FCR, UART_FCR_FE);

	/* ETBEI 0->1 with THR empty: THRI at once. */
	wr(h, UART_IER, UART_IER_ETBEI);
	assert_int_equal(atomic_load(&h->irq.level), 1);
	assert_int_equal(atomic_load(&h->irq.rises), 1);
	/* LSR reads do not acknowledge it, the IIR read that reports it does. */
	assert_int_equal(rd(h, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_THRI);
	assert_int_equal(atomic_load(&h->irq.level), 0);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_NO_INT);

	/* Writing ETBEI again while set does not re-raise; 0 then 1 does. */
	wr(h, UART_IER, UART_IER_ETBEI);
	assert_int_equal(atomic_load(&h->irq.level), 0);
	wr(h, UART_IER, 0);
	wr(h, UART_IER, UART_IER_ETBEI);
	assert_int_equal(atomic_load(&h->irq.level), 1);
	assert_int_equal(atomic_load(&h->irq.rises), 2);

	/* A THR write acknowledges THRI; the FIFO empties into the chardev
	 * at once and raises it again: a new edge. */
	rd(h, UART_IIR);
	assert_int_equal(atomic_load(&h->irq.level), 0);
	wr(h, UART_THR, 'A');
	assert_int_equal(atomic_load(&h->irq.level), 1);
	assert_int_equal(atomic_load(&h->irq.rises), 3);
	uint8_t b = 0;
	assert_int_equal(read(h->out_r, &b, 1), 1);
	assert_int_equal(b, 'A');

	/* Disabling ETBEI drops the pending THRI and the line. */
	wr(h, UART_IER, 0);
	assert_int_equal(atomic_load(&h->irq.level), 0);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_NO_INT);
}

static void test_rx_trigger_levels(void **state)
{
	struct harness *h = *state;
	static const unsigned trig[4] = { 1, 4, 8, 14 };
	uint8_t seq = 0;

	wr(h, UART_IER, UART_IER_ERBFI);
	for (unsigned t = 0; t < 4; t++) {
		wr(h, UART_FCR, (uint8_t)(UART_FCR_FE | UART_FCR_CLEAR_RCVR |
					  (t << 6)));
		uint8_t bytes[16];
		for (unsigned i = 0; i < trig[t]; i++)
			bytes[i] = seq++;
		if (trig[t] > 1) {
			/* Below the trigger: the timeout indication. */
			assert_int_equal(write(h->in_w, bytes, trig[t] - 1),
					 (ssize_t)trig[t] - 1);
			assert_true(wait_iir(h, UART_IIR_FIFO_ENABLED |
							UART_IIR_CTI));
			assert_int_equal(atomic_load(&h->irq.level), 1);
			sleep_ms(10); /* all of them in */
			assert_int_equal(rd(h, UART_IIR),
					 UART_IIR_FIFO_ENABLED | UART_IIR_CTI);
		}
		assert_int_equal(write(h->in_w, &bytes[trig[t] - 1], 1), 1);
		assert_true(wait_iir(h, UART_IIR_FIFO_ENABLED | UART_IIR_RDI));
		for (unsigned i = 0; i < trig[t]; i++) {
			assert_true(rd(h, UART_LSR) & UART_LSR_DR);
			assert_int_equal(rd(h, UART_RBR), bytes[i]);
		}
		assert_int_equal(rd(h, UART_LSR) & UART_LSR_DR, 0);
		assert_int_equal(rd(h, UART_IIR),
				 UART_IIR_FIFO_ENABLED | UART_IIR_NO_INT);
		assert_int_equal(atomic_load(&h->irq.level), 0);
	}

	/* 16450 mode: no FIFO bits in IIR, one byte is "data available". */
	wr(h, UART_FCR, 0);
	assert_int_equal(write(h->in_w, "z", 1), 1);
	assert_true(wait_iir(h, UART_IIR_RDI));
	assert_int_equal(rd(h, UART_RBR), 'z');
	assert_int_equal(rd(h, UART_IIR), UART_IIR_NO_INT);
}

static void test_rx_full_pauses_without_overrun(void **state)
{
	struct harness *h = *state;
	enum { N = 5000 };
	static uint8_t data[N];
	for (int i = 0; i < N; i++)
		data[i] = (uint8_t)(i * 13 + (i >> 8));

	wr(h, UART_FCR, 0xc7); /* FIFO on, clear both, trigger 14 */
	wr(h, UART_IER, UART_IER_ERBFI | UART_IER_ELSI);
	assert_int_equal(write(h->in_w, data, N), N);
	/* The FIFO fills; the rest must wait in the chardev, not overrun. */
	sleep_ms(100);
	uint8_t lsr = rd(h, UART_LSR);
	assert_true(lsr & UART_LSR_DR);
	assert_int_equal(lsr & UART_LSR_OE, 0);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_RDI);

	/* The guest reads in bursts, like the 8250 driver's rx loop. */
	size_t got = 0;
	for (int idle = 0; got < N && idle < 5000;) {
		lsr = rd(h, UART_LSR);
		assert_int_equal(lsr & UART_LSR_OE, 0);
		if (!(lsr & UART_LSR_DR)) {
			idle++;
			sleep_ms(1);
			continue;
		}
		uint8_t b = rd(h, UART_RBR);
		assert_int_equal(b, data[got]);
		got++;
	}
	assert_int_equal(got, N);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_NO_INT);
}

static void test_loopback_iir_priorities(void **state)
{
	struct harness *h = *state;
	wr(h, UART_FCR, UART_FCR_FE | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
	wr(h, UART_MCR, UART_MCR_LOOP);
	wr(h, UART_IER, 0x0f);

	/* 17 bytes into a 16-byte FIFO: the last one overruns. */
	for (int i = 0; i < 17; i++)
		wr(h, UART_THR, (uint8_t)i);
	assert_int_equal(atomic_load(&h->irq.level), 1);
	/* Line status beats received data beats THRE beats modem status. */
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_RLSI);
	assert_int_equal(rd(h, UART_LSR), UART_LSR_DR | UART_LSR_OE |
						 UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(rd(h, UART_LSR) & UART_LSR_OE, 0); /* read clears */
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_RDI);
	for (int i = 0; i < 16; i++)
		assert_int_equal(rd(h, UART_RBR), i);
	assert_int_equal(rd(h, UART_LSR) & UART_LSR_DR, 0);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_THRI);
	/* That read acknowledged THRI; the loopback MSR change is left. */
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_MSI);
	assert_int_equal(atomic_load(&h->irq.level), 1);
	/* Entering loopback dropped CTS, DSR and DCD: three deltas. */
	assert_int_equal(rd(h, UART_MSR),
			 UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_NO_INT);
	assert_int_equal(atomic_load(&h->irq.level), 0);

	/* MCR outputs loop back to the modem inputs. */
	wr(h, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_RTS |
				UART_MCR_OUT1 | UART_MCR_OUT2);
	assert_int_equal(rd(h, UART_MSR) & 0xf0, 0xf0);
	wr(h, UART_MCR, UART_MCR_LOOP);
	/* RI falling edge: TERI. */
	assert_true(rd(h, UART_MSR) & UART_MSR_TERI);
	wr(h, UART_MCR, 0);
	assert_int_equal(rd(h, UART_MSR) & 0xf0,
			 UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
	wr(h, UART_IER, 0);

	/* Host input is held while in loopback, delivered after. */
	wr(h, UART_MCR, UART_MCR_LOOP);
	assert_int_equal(write(h->in_w, "hold", 4), 4);
	sleep_ms(30);
	assert_int_equal(rd(h, UART_LSR) & UART_LSR_DR, 0);
	wr(h, UART_MCR, 0);
	assert_true(wait_lsr(h, UART_LSR_DR, UART_LSR_DR));
	sleep_ms(10);
	char s[5] = "";
	for (int i = 0; i < 4; i++)
		s[i] = (char)rd(h, UART_RBR);
	assert_string_equal(s, "hold");
}

/* Write THR bytes until the chardev stops taking them. */
static void fill_until_backpressure(struct harness *h)
{
	for (int i = 0; i < 100000; i++) {
		if (rd(h, UART_LSR) & UART_LSR_THRE) {
			for (int k = 0; k < 16; k++)
				wr(h, UART_THR, 'x');
			continue;
		}
		sleep_ms(5);
		if (!(rd(h, UART_LSR) & UART_LSR_THRE))
			return;
	}
	fail_msg("the chardev never applied backpressure");
}

static void test_fifo_clear_and_disable(void **state)
{
	struct harness *h = *state;
	wr(h, UART_FCR, UART_FCR_FE);
	/* RX clear. */
	wr(h, UART_MCR, UART_MCR_LOOP);
	wr(h, UART_THR, 1);
	wr(h, UART_THR, 2);
	assert_true(rd(h, UART_LSR) & UART_LSR_DR);
	wr(h, UART_FCR, UART_FCR_FE | UART_FCR_CLEAR_RCVR);
	assert_int_equal(rd(h, UART_LSR) & UART_LSR_DR, 0);
	wr(h, UART_MCR, 0);

	/* TX clear while the host is not reading: THRE comes back. */
	fill_until_backpressure(h);
	assert_int_equal(rd(h, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), 0);
	wr(h, UART_IER, UART_IER_ETBEI); /* THR not empty: no THRI yet */
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_NO_INT);
	wr(h, UART_FCR, UART_FCR_FE | UART_FCR_CLEAR_XMIT);
	assert_int_equal(rd(h, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT),
			 UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_FIFO_ENABLED | UART_IIR_THRI);

	/* Turning the FIFOs off: IIR loses bits 7:6, 1-byte holding regs. */
	wr(h, UART_FCR, 0);
	assert_int_equal(rd(h, UART_IIR), UART_IIR_NO_INT);
	wr(h, UART_IER, 0);
}

/*
 * 100 KiB of guest output through a reader that takes 256 bytes a
 * millisecond, driven the way the 8250 driver does it: wait for the THRE
 * interrupt, read IIR, write up to 16 bytes. The vCPU (this thread) must
 * never block, must see backpressure, and every byte must arrive in order.
 */
struct slow_reader {
	int fd;
	struct chardev *cd;
	uint8_t *buf;
	size_t want, got;
};

static void *slow_reader_thread(void *arg)
{
	struct slow_reader *r = arg;
	/* Start only once the chardev is full, however fast the writer is. */
	for (int i = 0; i < 30000 && chardev_room(r->cd) != 0; i++)
		sleep_ms(1);
	while (r->got < r->want) {
		size_t n = r->want - r->got < 256 ? r->want - r->got : 256;
		ssize_t k = read(r->fd, r->buf + r->got, n);
		if (k <= 0)
			break;
		r->got += (size_t)k;
		sleep_ms(1);
	}
	return NULL;
}

static void test_tx_slow_reader_no_loss(void **state)
{
	struct harness *h = *state;
	const size_t total = 100 * 1024;
	uint8_t *data = malloc(total);
	for (size_t i = 0; i < total; i++)
		data[i] = (uint8_t)(i ^ (i >> 8) ^ (i >> 16));
	/* A small pipe, so the 64 KiB ring is what absorbs the burst. */
	assert_true(fcntl(h->out_r, F_SETPIPE_SZ, 4096) >= 4096);
	struct slow_reader r = { h->out_r, h->cd, malloc(total), total, 0 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, slow_reader_thread, &r), 0);

	wr(h, UART_FCR, UART_FCR_FE | UART_FCR_CLEAR_XMIT);
	wr(h, UART_IER, UART_IER_ETBEI);
	size_t sent = 0;
	unsigned waits = 0;
	uint64_t worst = 0;
	uint64_t deadline = now_us() + 30u * 1000000u;
	while (sent < total && now_us() < deadline) {
		if (!atomic_load(&h->irq.level)) {
			waits++;
			sched_yield();
			continue;
		}
		uint8_t iir = rd(h, UART_IIR);
		if ((iir & UART_IIR_ID_MASK) != UART_IIR_THRI)
			continue;
		assert_true(rd(h, UART_LSR) & UART_LSR_THRE);
		for (int k = 0; k < 16 && sent < total; k++) {
			uint64_t t0 = now_us();
			wr(h, UART_THR, data[sent++]);
			uint64_t dt = now_us() - t0;
			if (dt > worst)
				worst = dt;
		}
	}
	assert_int_equal(sent, total);
	pthread_join(t, NULL);
	assert_int_equal(r.got, total);
	assert_memory_equal(r.buf, data, total);
	/* The reader was slower than the guest: it had to wait for THRE. */
	assert_true(waits > 0);
	/* No THR write blocked (generous bound for a loaded machine). */
	assert_true(worst < 100000);
	assert_int_equal(chardev_dropped(h->cd), 0);
	wr(h, UART_IER, 0);
	free(data);
	free(r.buf);
}

static void test_odd_accesses(void **state)
{
	struct harness *h = *state;
	struct iobus bus = { 0 };
	assert_int_equal(uart_register(h->u, &bus, UART_COM1_BASE), 0);
	assert_int_equal(uart_register(h->u, &bus, UART_COM1_BASE + 4), -EEXIST);

	uint8_t buf[8];
	wr(h, UART_LCR, 0x03);
	wr(h, UART_MCR, 0x0b);
	/* A 16-bit read at LCR reads LCR and MCR, like the ISA bus would. */
	assert_true(iobus_read(&bus, UART_COM1_BASE + UART_LCR, buf, 2));
	assert_int_equal(buf[0], 0x03);
	assert_int_equal(buf[1], 0x0b);
	/* A 32-bit write at MCR covers MCR, LSR, MSR (ignored) and SCR. */
	uint8_t w[4] = { 0x0b, 0x00, 0x00, 0x5a };
	assert_true(iobus_write(&bus, UART_COM1_BASE + UART_MCR, w, 4));
	assert_int_equal(rd(h, UART_SCR), 0x5a);
	assert_int_equal(rd(h, UART_MCR), 0x0b);
	/* Crossing the end of the range is not ours. */
	assert_false(iobus_read(&bus, UART_COM1_BASE + 6, buf, 4));
	/* The callbacks themselves with hostile offsets and sizes. */
	const struct io_ops *ops = bus.ranges[0].ops;
	void *op = bus.ranges[0].opaque;
	memset(buf, 0, sizeof(buf));
	ops->read(op, 6, buf, 8);
	assert_int_equal(buf[1], 0x5a);
	for (int i = 2; i < 8; i++)
		assert_int_equal(buf[i], 0xff);
	ops->read(op, UINT64_MAX, buf, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(buf[i], 0xff);
	ops->read(op, 1000, buf, 1);
	assert_int_equal(buf[0], 0xff);
	ops->write(op, UINT64_MAX, w, 4);
	ops->write(op, 9, w, 2);
	ops->write(op, 7, w, 8); /* only SCR is inside */
	assert_int_equal(rd(h, UART_SCR), 0x0b);
	ops->read(op, 0, buf, 0);
	wr(h, UART_MCR, 0);
}

static void test_null_chardev(void **state)
{
	(void)state;
	struct fake_irq f = { 0 };
	struct irq_line line = { fake_irq_set, &f, UART_COM1_IRQ };
	struct uart *u;
	assert_int_equal(uart_create(&line, NULL, &u), 0);
	uart_write(u, UART_FCR, UART_FCR_FE);
	uart_write(u, UART_IER, UART_IER_ETBEI | UART_IER_ERBFI);
	for (int i = 0; i < 100; i++)
		uart_write(u, UART_THR, 'n');
	assert_int_equal(uart_read(u, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(uart_read(u, UART_IIR),
			 UART_IIR_FIFO_ENABLED | UART_IIR_THRI);
	uart_reset(u);
	assert_int_equal(atomic_load(&f.level), 0);
	assert_int_equal(uart_read(u, UART_IER), 0);
	uart_destroy(u);
	assert_int_equal(atomic_load(&f.redundant), 0);
}

/*
 * A VM reset destroys and recreates the UART on the same chardev while the
 * host keeps typing and reading. Rebuild it many times under traffic: no
 * callback may reach a freed UART (run under ASan/TSan to see it).
 */
struct typist {
	int fd;
	atomic_bool stop;
};

static void *typist_thread(void *arg)
{
	struct typist *t = arg;
	char buf[64];
	memset(buf, 'k', sizeof(buf));
	while (!atomic_load(&t->stop)) {
		if (write(t->fd, buf, sizeof(buf)) < 0 && errno != EAGAIN)
			break;
		sched_yield();
	}
	return NULL;
}

static void *drain_thread(void *arg)
{
	struct typist *t = arg;
	char buf[4096];
	while (!atomic_load(&t->stop))
		if (read(t->fd, buf, sizeof(buf)) <= 0)
			sched_yield();
	return NULL;
}

static void test_recreate_under_traffic(void **state)
{
	struct harness *h = *state;
	fcntl(h->in_w, F_SETFL, O_NONBLOCK);
	fcntl(h->out_r, F_SETFL, O_NONBLOCK);
	struct typist in = { h->in_w, false }, out = { h->out_r, false };
	pthread_t ti, to;
	assert_int_equal(pthread_create(&ti, NULL, typist_thread, &in), 0);
	assert_int_equal(pthread_create(&to, NULL, drain_thread, &out), 0);
	struct irq_line line = { fake_irq_set, &h->irq, UART_COM1_IRQ };
	for (int round = 0; round < 200; round++) {
		wr(h, UART_FCR, UART_FCR_FE);
		wr(h, UART_IER, UART_IER_ERBFI | UART_IER_ETBEI);
		for (int i = 0; i < 64; i++) {
			if (rd(h, UART_LSR) & UART_LSR_THRE)
				wr(h, UART_THR, 'o');
			if (rd(h, UART_LSR) & UART_LSR_DR)
				assert_int_equal(rd(h, UART_RBR), 'k');
		}
		uart_destroy(h->u);
		atomic_store(&h->irq.level, 0); /* the new UART starts low */
		assert_int_equal(uart_create(&line, h->cd, &h->u), 0);
	}
	atomic_store(&in.stop, true);
	atomic_store(&out.stop, true);
	pthread_join(ti, NULL);
	pthread_join(to, NULL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_reset_state),
		T(test_linux_autoconfig),
		T(test_divisor_latch),
		T(test_thre_interrupt),
		T(test_rx_trigger_levels),
		T(test_rx_full_pauses_without_overrun),
		T(test_loopback_iir_priorities),
		T(test_fifo_clear_and_disable),
		T(test_tx_slow_reader_no_loss),
		T(test_odd_accesses),
		T(test_recreate_under_traffic),
		cmocka_unit_test(test_null_chardev),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
