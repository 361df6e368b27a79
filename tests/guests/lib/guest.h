/*
 * Public interface of the freestanding test-guest framework (tests/guests/).
 *
 * A guest is one C file that defines `guest_name` and `guest_main()`; the
 * framework (lib/) boots it from hvmm's 64-bit Linux-style entry or from
 * QEMU's PVH entry, sets up COM1, its own GDT/TSS/IDT and page tables,
 * calls guest_main() in ring 0 with interrupts disabled, then prints
 * "GUEST-RESULT: N passed, M failed" and powers the VM off.
 *
 * Ring 0 is emulated instruction by instruction on PVM hosts (see
 * docs/pvm-notes.md): keep ring-0 work small and run loops and heavy
 * computation in ring 3 through user_call(). Single vCPU, no interrupts.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include "x86.h"

/* ---- supplied by each guest ------------------------------------------ */
extern const char guest_name[];
/* Return 0; anything else is counted as one more failure. */
int guest_main(const char *cmdline);

/* ---- console (COM1 unless the guest says otherwise, polled) ---------- */
#define COM1_BASE 0x3f8
#define COM3_BASE 0x3e8
/* The console's UART; define it (u16 guest_console_port = COM3_BASE;) to move it. */
extern u16 guest_console_port;
void console_init(void);
void console_putc(char c);
void console_write(const char *s, size_t len);
/* Waits (bounded) until the transmitter is empty. */
void console_flush(void);

/*
 * printf subset: %d %i %u %x %X %p %s %c %%, flags '-' '0' '#', width
 * (digits or *), length modifiers hh h l ll z. No floating point: print
 * fixed-point values with FIX3_FMT/FIX3_ARG. Safe to call from ring 3
 * inside user_call() (the UART is port I/O and IOPL is 3 there).
 */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
int snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* A value in thousandths printed as "<int>.<3 digits>". */
#define FIX3_FMT "%lu.%03lu"
#define FIX3_ARG(v) (unsigned long)((v) / 1000), (unsigned long)((v) % 1000)

/* A large static buffer that is not zeroed at boot (see guest.ld). */
#define GUEST_NOINIT __attribute__((section(".bss.noinit")))

/* ---- strings (also what the compiler may call implicitly) ------------ */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

/* ---- command line ----------------------------------------------------- */
/* The NUL-terminated command line ("" if the loader gave none). */
const char *cmdline_get(void);
/*
 * Finds the first space-separated "key=value" (or bare "key") token and
 * copies the value into buf (truncated, always NUL-terminated). Returns
 * false if the key is absent.
 */
bool cmdline_str(const char *key, char *buf, size_t size);
/* Numeric value: decimal, 0x-hex, or mantissa/exponent like "1e8". */
u64 cmdline_u64(const char *key, u64 def);
/* Parses a number as cmdline_u64 does; returns false on junk. */
bool parse_u64(const char *s, u64 *out);

/* ---- tests ------------------------------------------------------------ */
/*
 * TEST_BEGIN("name") ends the previous test (printing its result) and
 * starts a new one. expect(cond, fmt, ...) records the first failed
 * expectation of the current test as its reason and returns cond; it
 * prints nothing, so it may be used while the console is reconfigured.
 * Results: "TEST <name> PASS" or "TEST <name> FAIL: <reason> (file:line)".
 */
#define TEST_BEGIN(name) test_begin(name)
#define TEST_END() test_end()
#define expect(cond, ...) test_expect(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
void test_begin(const char *name);
void test_end(void);
bool test_expect(bool ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
unsigned test_passed(void);
unsigned test_failed(void);

/* Power off. status 0 = success; QEMU's isa-debug-exit exits (status<<1)|1. */
#define EXIT_PASS  0
#define EXIT_FAIL  1
#define EXIT_FATAL 2
__attribute__((noreturn)) void poweroff(u32 status);
/* Prints GUEST-RESULT (counting `extra_failures`) and powers off. */
__attribute__((noreturn)) void guest_exit(unsigned extra_failures);
/* Fails the current test with `why` (or counts one failure), prints
 * GUEST-RESULT and powers off with EXIT_FATAL. */
__attribute__((noreturn)) void guest_abort(const char *why);

/* ---- ring 3 ----------------------------------------------------------- */
struct user_result {
	bool faulted;    /* an exception ended the call */
	u8 vector;       /* exception vector if faulted */
	u64 error_code;  /* pushed error code, or 0 */
	u64 rip;         /* faulting RIP */
	u64 cr2;         /* CR2 at the fault (meaningful for #PF) */
	u64 value;       /* fn's return value if it returned */
};

typedef u64 (*user_fn)(u64 arg);

/*
 * Runs fn(arg) in ring 3 with IOPL=3 and interrupts disabled, on a private
 * user stack, and comes back to ring 0 when fn returns (via a deliberate
 * ud2 that the #UD handler recognises) or when any exception is raised in
 * ring 3. Returns true if fn returned. Not reentrant; ring 0 only. All guest
 * memory is user-accessible, so fn may use any global or pointer.
 */
bool user_call(user_fn fn, u64 arg, struct user_result *res);
/* Top of the ring-0 stack used while a ring-3 exception is handled. */
u64 user_trap_stack_top(void);

const char *exception_name(unsigned vector);

/* ---- TSC -------------------------------------------------------------- */
/*
 * TSC frequency in kHz, measured once (PIT channel 2, 50 ms gate, as Linux
 * pit_calibrate_tsc) with fallbacks to the Hyper-V frequency MSR, CPUID
 * 0x15/0x16 and the hypervisor leaf 0x40000010. 0 if all fail.
 */
u64 tsc_khz(void);
/* Which source tsc_khz() used: "pit", "hv-msr", "cpuid15", ... or "none". */
const char *tsc_source(void);
/* a * b / c without overflowing for b, c < 2^32 and any a. */
u64 mul_div(u64 a, u64 b, u64 c);
/* Cycles to nanoseconds, and to picoseconds per iteration (0 if unknown). */
u64 tsc_to_ns(u64 cycles);
u64 tsc_to_ps_per(u64 cycles, u64 iters);

#endif
