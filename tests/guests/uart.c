/*
 * uart: checks COM1 (port 0x3f8) against 16550A behaviour (National
 * PC16550D datasheet): scratch register, divisor latch and the DLAB
 * register bank, IER writable bits, IIR FIFO bits and interrupt identity
 * (none / THR empty / received data), loopback mode (data and modem
 * control lines), LSR THRE/TEMT, DR and overrun.
 *
 * COM1 is also the console, so each test programs the registers, records
 * what it read, restores 115200 8N1 with FIFOs on, and only then lets the
 * result print; expect() itself never touches the UART.
 */
#include "guest.h"

const char guest_name[] = "uart";

#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define LCR_8N1 0x03
#define LCR_DLAB 0x80
#define FCR_DEFAULT 0xc7 /* FIFO on, both cleared, 14-byte trigger */
#define MCR_DEFAULT 0x0b /* DTR, RTS, OUT2 */
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define IIR_ID_MASK 0x0f
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_CTI 0x0c
#define IIR_FIFO 0xc0
#define POLLS 1000

static u8 rd(unsigned reg)
{
	return inb((u16)(COM1_BASE + reg));
}

static void wr(unsigned reg, u8 v)
{
	outb((u16)(COM1_BASE + reg), v);
}

static bool wait_lsr(u8 bits)
{
	for (unsigned i = 0; i < POLLS; i++)
		if ((rd(LSR) & bits) == bits)
			return true;
	return false;
}

static void drain_rx(void)
{
	for (unsigned i = 0; i < 64 && (rd(LSR) & LSR_DR); i++)
		(void)rd(RBR);
}

/* Back to the console configuration (lib/console.c) with empty FIFOs. */
static void restore(void)
{
	wr(IER, 0);
	wr(LCR, LCR_DLAB);
	wr(DLL, 1);
	wr(DLM, 0);
	wr(LCR, LCR_8N1);
	wr(MCR, MCR_LOOP);
	drain_rx();
	wr(FCR, FCR_DEFAULT);
	wr(MCR, MCR_DEFAULT);
	(void)rd(LSR);
	(void)rd(MSR);
}

static void test_scratch(void)
{
	u8 a, b, c;

	TEST_BEGIN("uart_scratch");
	wr(SCR, 0x55);
	a = rd(SCR);
	wr(SCR, 0xaa);
	b = rd(SCR);
	wr(SCR, 0x00);
	c = rd(SCR);
	expect(a == 0x55 && b == 0xaa && c == 0x00,
	       "wrote 55/aa/00, read %02x/%02x/%02x", a, b, c);
}

static void test_divisor(void)
{
	u8 lcr_dlab, dll1, dlm1, dll2, dlm2, lcr_odd, lcr;

	TEST_BEGIN("uart_divisor_latch");
	wr(LCR, LCR_DLAB | LCR_8N1);
	lcr_dlab = rd(LCR);
	wr(DLL, 0x0c); /* 9600 */
	wr(DLM, 0x00);
	dll1 = rd(DLL);
	dlm1 = rd(DLM);
	wr(DLL, 0x34);
	wr(DLM, 0x12);
	dll2 = rd(DLL);
	dlm2 = rd(DLM);
	wr(LCR, 0x1b); /* 8 bits, even parity, DLAB off */
	lcr_odd = rd(LCR);
	restore();
	lcr = rd(LCR);
	expect(lcr_dlab == (LCR_DLAB | LCR_8N1), "LCR read %02x with DLAB", lcr_dlab);
	expect(dll1 == 0x0c && dlm1 == 0x00, "divisor 0x000c read %02x%02x",
	       dlm1, dll1);
	expect(dll2 == 0x34 && dlm2 == 0x12, "divisor 0x1234 read %02x%02x",
	       dlm2, dll2);
	expect(lcr_odd == 0x1b, "LCR 1b read %02x", lcr_odd);
	expect(lcr == LCR_8N1, "LCR 03 read %02x", lcr);
}

static void test_dlab_bank(void)
{
	u8 dlm, ier, dll, ier_after;

	TEST_BEGIN("uart_dlab_bank");
	wr(LCR, LCR_DLAB | LCR_8N1);
	wr(DLL, 0x01);
	wr(DLM, 0x00);
	wr(LCR, LCR_8N1);
	wr(IER, 0x05); /* must not land in DLM */
	wr(LCR, LCR_DLAB | LCR_8N1);
	dlm = rd(DLM);
	dll = rd(DLL);
	wr(LCR, LCR_8N1);
	ier = rd(IER);
	wr(IER, 0);
	ier_after = rd(IER);
	restore();
	expect(dlm == 0x00 && dll == 0x01, "divisor %02x%02x after IER write",
	       dlm, dll);
	expect(ier == 0x05, "IER read %02x, want 05", ier);
	expect(ier_after == 0x00, "IER read %02x after clearing", ier_after);
}

static void test_ier(void)
{
	u8 all, none;

	TEST_BEGIN("uart_ier_bits");
	wr(IER, 0xff);
	all = rd(IER);
	wr(IER, 0x00);
	none = rd(IER);
	(void)rd(IIR); /* drop the THR-empty interrupt that enabling raised */
	restore();
	expect(all == 0x0f, "IER read %02x after writing ff, want 0f", all);
	expect(none == 0x00, "IER read %02x after writing 00", none);
}

static void test_fifo_iir(void)
{
	u8 on, off, back, idle;

	TEST_BEGIN("uart_fifo_iir");
	wr(FCR, 0x07);
	on = rd(IIR);
	wr(FCR, 0x00);
	off = rd(IIR);
	wr(FCR, FCR_DEFAULT);
	back = rd(IIR);
	wr(IER, 0);
	idle = rd(IIR);
	restore();
	expect((on & IIR_FIFO) == IIR_FIFO, "IIR %02x with FIFO on", on);
	expect((off & IIR_FIFO) == 0, "IIR %02x with FIFO off", off);
	expect((back & IIR_FIFO) == IIR_FIFO, "IIR %02x with FIFO on again", back);
	expect((idle & IIR_ID_MASK) == IIR_NONE, "IIR %02x with IER=0, want x1",
	       idle);
}

static void test_loopback_echo(void)
{
	bool got;
	u8 v = 0, lsr_after;

	TEST_BEGIN("uart_loopback_echo");
	wr(MCR, MCR_LOOP);
	drain_rx();
	wr(THR, 0xa5);
	got = wait_lsr(LSR_DR);
	if (got)
		v = rd(RBR);
	lsr_after = rd(LSR);
	restore();
	expect(got, "LSR.DR never set after a loopback write");
	expect(v == 0xa5, "read %02x, want a5", v);
	expect(!(lsr_after & LSR_DR), "LSR.DR still set (%02x) after reading",
	       lsr_after);
}

static void test_loopback_fifo(void)
{
	u8 got[8];
	unsigned n = 0;
	u8 lsr_after;

	TEST_BEGIN("uart_loopback_fifo");
	wr(MCR, MCR_LOOP);
	drain_rx();
	for (unsigned i = 0; i < 8; i++) {
		wait_lsr(LSR_THRE);
		wr(THR, (u8)(0x30 + i));
	}
	while (n < 8 && wait_lsr(LSR_DR))
		got[n++] = rd(RBR);
	lsr_after = rd(LSR);
	restore();
	expect(n == 8, "received %u of 8 bytes", n);
	for (unsigned i = 0; i < n; i++)
		expect(got[i] == 0x30 + i, "byte %u: %02x, want %02x", i, got[i],
		       0x30 + i);
	expect(!(lsr_after & LSR_DR), "LSR.DR still set (%02x)", lsr_after);
}

static void test_loopback_modem(void)
{
	u8 all, none, dtr_only;

	TEST_BEGIN("uart_loopback_modem");
	wr(MCR, MCR_LOOP | 0x0f); /* DTR RTS OUT1 OUT2 -> DSR CTS RI DCD */
	all = rd(MSR);
	wr(MCR, MCR_LOOP | 0x01);
	dtr_only = rd(MSR);
	wr(MCR, MCR_LOOP);
	none = rd(MSR);
	restore();
	expect((all & 0xf0) == 0xf0, "MSR %02x with all outputs on", all);
	expect((dtr_only & 0xf0) == 0x20, "MSR %02x with DTR only, want 2x",
	       dtr_only);
	expect((none & 0xf0) == 0x00, "MSR %02x with all outputs off", none);
}

static void test_lsr_thre_temt(void)
{
	bool ready, empty;
	u8 idle;

	TEST_BEGIN("uart_lsr_thre_temt");
	idle = rd(LSR);
	wr(MCR, MCR_LOOP);
	drain_rx();
	for (unsigned i = 0; i < 4; i++)
		wr(THR, (u8)('a' + i));
	ready = wait_lsr(LSR_THRE);
	empty = wait_lsr(LSR_THRE | LSR_TEMT);
	restore();
	expect((idle & (LSR_THRE | LSR_TEMT)) == (LSR_THRE | LSR_TEMT),
	       "idle LSR %02x, want THRE|TEMT", idle);
	expect(ready, "THRE never set after writes");
	expect(empty, "TEMT never set after writes");
}

static void test_overrun(void)
{
	u8 seen = 0, lsr = 0, after, v;

	TEST_BEGIN("uart_overrun");
	wr(FCR, 0x00); /* 16450 mode: one-byte receive buffer */
	wr(MCR, MCR_LOOP);
	drain_rx();
	wr(THR, 0x11);
	wait_lsr(LSR_DR);
	wait_lsr(LSR_THRE | LSR_TEMT);
	wr(THR, 0x22);
	/* Reading LSR clears OE: remember every bit seen until TEMT. */
	for (unsigned i = 0; i < POLLS && !(lsr & LSR_TEMT); i++) {
		lsr = rd(LSR);
		seen |= lsr;
	}
	after = rd(LSR);
	v = rd(RBR);
	restore();
	expect(seen & LSR_OE, "LSR %02x: no overrun after two unread bytes", seen);
	expect(!(after & LSR_OE), "LSR %02x: OE not cleared by reading LSR", after);
	expect(v == 0x22, "RBR %02x after overrun, want the newer byte 22", v);
}

static void test_iir_thri(void)
{
	u8 first, second;

	TEST_BEGIN("uart_iir_thri");
	wr(IER, 0x02); /* ETBEI with THR empty raises THRI */
	first = rd(IIR);
	second = rd(IIR); /* reading IIR cleared it */
	restore();
	expect((first & IIR_ID_MASK) == IIR_THRI, "IIR %02x, want x2", first);
	expect((second & IIR_ID_MASK) == IIR_NONE, "IIR %02x after read, want x1",
	       second);
}

static void test_iir_rdi(void)
{
	u8 with_data, after;
	bool got;

	TEST_BEGIN("uart_iir_rdi");
	wr(FCR, 0x00);
	wr(MCR, MCR_LOOP);
	drain_rx();
	wr(IER, 0x01);
	wr(THR, 0x5a);
	got = wait_lsr(LSR_DR);
	with_data = rd(IIR);
	(void)rd(RBR);
	after = rd(IIR);
	restore();
	expect(got, "LSR.DR never set after a loopback write");
	expect((with_data & IIR_ID_MASK) == IIR_RDI ||
		       (with_data & IIR_ID_MASK) == IIR_CTI,
	       "IIR %02x with data, want x4 (or xc)", with_data);
	expect((after & IIR_ID_MASK) == IIR_NONE, "IIR %02x after RBR read", after);
}

int guest_main(const char *cmdline)
{
	(void)cmdline;
	console_flush();
	test_scratch();
	test_divisor();
	test_dlab_bank();
	test_ier();
	test_fifo_iir();
	test_loopback_echo();
	test_loopback_fifo();
	test_loopback_modem();
	test_lsr_thre_temt();
	test_overrun();
	test_iir_thri();
	test_iir_rdi();
	return 0;
}
