/*
 * Console for the test guests: COM1 (or the port a guest names in
 * guest_console_port, e.g. COM3 for VTL2 payloads, as OpenHCL logs there)
 * as a polled 16550A (115200 8N1, FIFOs on, no interrupts; National
 * PC16550D datasheet register map) and a small printf. Every byte waits for LSR.THRE first; the wait is bounded so a
 * missing or broken UART slows the guest down instead of hanging it.
 */
#include "guest.h"

#define UART_THR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define THRE_SPINS 100000

/* Weak and not const (gcc folds a weak const here): a guest's own definition wins. */
__attribute__((weak)) u16 guest_console_port = COM1_BASE;
#define PORT guest_console_port

void console_init(void)
{
	outb(PORT + UART_IER, 0x00);
	outb(PORT + UART_LCR, 0x80); /* DLAB */
	outb(PORT + UART_DLL, 0x01); /* 115200 */
	outb(PORT + UART_DLM, 0x00);
	outb(PORT + UART_LCR, 0x03); /* 8N1 */
	outb(PORT + UART_FCR, 0xc7); /* FIFO on, cleared, 14-byte trigger */
	outb(PORT + UART_MCR, 0x0b); /* DTR, RTS, OUT2 */
}

static void wait_lsr(u8 bits)
{
	for (unsigned i = 0; i < THRE_SPINS; i++)
		if ((inb(PORT + UART_LSR) & bits) == bits)
			return;
}

void console_putc(char c)
{
	wait_lsr(LSR_THRE);
	outb(PORT + UART_THR, (u8)c);
}

void console_write(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		console_putc(s[i]);
}

void console_flush(void)
{
	wait_lsr(LSR_THRE | LSR_TEMT);
}

struct outbuf {
	char *buf;
	size_t size; /* capacity including the NUL; 0 = count only */
	size_t len;  /* characters produced, even past size */
};

static void emit(struct outbuf *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void emit_pad(struct outbuf *o, char c, int n)
{
	while (n-- > 0)
		emit(o, c);
}

static void emit_number(struct outbuf *o, unsigned long long v, unsigned base,
			bool upper, bool neg, const char *prefix, int width,
			bool zero)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, plen = (int)strlen(prefix) + (neg ? 1 : 0);

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (!zero)
		emit_pad(o, ' ', width - n - plen);
	if (neg)
		emit(o, '-');
	while (*prefix)
		emit(o, *prefix++);
	if (zero)
		emit_pad(o, '0', width - n - plen);
	while (n)
		emit(o, tmp[--n]);
}

static void format(struct outbuf *o, const char *fmt, va_list ap)
{
	while (*fmt) {
		bool zero = false, left = false, alt = false, upper = false;
		int width = 0, lng = 0, shrt = 0, w;
		unsigned long long u;
		long long s;
		size_t start;
		const char *str;

		if (*fmt != '%') {
			emit(o, *fmt++);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '0')
				zero = true;
			else if (*fmt == '-')
				left = true;
			else if (*fmt == '#')
				alt = true;
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			if (width < 0) {
				left = true;
				width = -width;
			}
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (left)
			zero = false;
		for (;; fmt++) {
			if (*fmt == 'l' || *fmt == 'z')
				lng++;
			else if (*fmt == 'h')
				shrt++;
			else
				break;
		}
		w = left ? 0 : width; /* left alignment pads after the switch */
		start = o->len;
		switch (*fmt) {
		case 'd':
		case 'i':
			s = lng ? va_arg(ap, long long) : va_arg(ap, int);
			if (shrt == 1)
				s = (short)s;
			else if (shrt > 1)
				s = (signed char)s;
			u = s < 0 ? 0ULL - (unsigned long long)s : (unsigned long long)s;
			emit_number(o, u, 10, false, s < 0, "", w, zero);
			break;
		case 'u':
		case 'x':
		case 'X':
			u = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			if (shrt == 1)
				u = (unsigned short)u;
			else if (shrt > 1)
				u = (unsigned char)u;
			upper = *fmt == 'X';
			emit_number(o, u, *fmt == 'u' ? 10 : 16, upper, false,
				    alt && *fmt != 'u' ? (upper ? "0X" : "0x") : "",
				    w, zero);
			break;
		case 'p':
			u = (unsigned long long)(u64)va_arg(ap, void *);
			emit_number(o, u, 16, false, false, "0x", 18, true);
			break;
		case 'c':
			emit_pad(o, ' ', w - 1);
			emit(o, (char)va_arg(ap, int));
			break;
		case 's':
			str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			emit_pad(o, ' ', w - (int)strlen(str));
			while (*str)
				emit(o, *str++);
			break;
		case '%':
			emit(o, '%');
			break;
		case '\0':
			return;
		default: /* unknown conversion: show it verbatim */
			emit(o, '%');
			emit(o, *fmt);
			break;
		}
		if (left)
			emit_pad(o, ' ', width - (int)(o->len - start));
		fmt++;
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct outbuf o = { buf, size, 0 };

	format(&o, fmt, ap);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int vprintf(const char *fmt, va_list ap)
{
	char buf[256];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	console_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
