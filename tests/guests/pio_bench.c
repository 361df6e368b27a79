/*
 * pio_bench: round-trip cost of port I/O exits. From ring 3 (native code
 * on PVM hosts; port access allowed by IOPL=3 and the TSS I/O bitmap),
 * times `iters` single-byte `out` and `in` instructions on port 0x510
 * (unused on hvmm; QEMU's fw_cfg selector), each bracketed by rdtsc, and
 * reports the median, mean and minimum. A smaller ring-0 run (r0iters,
 * default 1000, 0 to skip) shows what emulated ring-0 code adds. With
 * "mmio=<addr>" it also times 32-bit MMIO writes and reads of that
 * (unbacked) guest-physical address below 4 GiB from ring 3.
 *
 * Output (one line each, integers in ns):
 *   BENCH pio_out_ns=<median> pio_in_ns=<median> pio_out_mean_ns=<mean>
 *     pio_in_mean_ns=<mean> pio_out_min_ns=<min> pio_in_min_ns=<min>
 *     rdtsc_ns=<rdtsc pair cost> port=0x510 iters=<n> tsc_khz=<khz>
 *   BENCH ring0_pio_out_ns=<median> ring0_pio_in_ns=<median> ... iters=<n>
 *   BENCH mmio_write_ns=<median> mmio_read_ns=<median> ... addr=<addr>
 */
#include "guest.h"

const char guest_name[] = "pio_bench";

#define BENCH_PORT 0x510
#define MAX_SAMPLES (1u << 18)
#define WARMUP 64

static u32 out_samples[MAX_SAMPLES] GUEST_NOINIT;
static u32 in_samples[MAX_SAMPLES] GUEST_NOINIT;

struct op_stats {
	u64 total, min, median;
};

struct pio_run {
	bool mmio;   /* time MMIO at addr instead of port I/O on port */
	u64 addr;
	u16 port;
	u64 iters;
	u64 nsamples; /* min(iters, MAX_SAMPLES) */
	struct op_stats out, in;
	u64 rdtsc_min;
};

static inline u32 clamp32(u64 v)
{
	return v > 0xffffffffu ? 0xffffffffu : (u32)v;
}

static u64 mmio_measure(struct pio_run *r)
{
	u64 addr = r->addr, t0, t1;

	for (unsigned i = 0; i < WARMUP; i++) {
		mmio_write32(addr, 0);
		(void)mmio_read32(addr);
	}
	r->out.total = 0;
	for (u64 i = 0; i < r->iters; i++) {
		t0 = rdtsc();
		mmio_write32(addr, 0);
		t1 = rdtsc();
		r->out.total += t1 - t0;
		if (i < MAX_SAMPLES)
			out_samples[i] = clamp32(t1 - t0);
	}
	r->in.total = 0;
	for (u64 i = 0; i < r->iters; i++) {
		t0 = rdtsc();
		(void)mmio_read32(addr);
		t1 = rdtsc();
		r->in.total += t1 - t0;
		if (i < MAX_SAMPLES)
			in_samples[i] = clamp32(t1 - t0);
	}
	return 0;
}

/* Runs in ring 3 or ring 0: the timed loops only. */
static u64 pio_measure(u64 arg)
{
	struct pio_run *r = (struct pio_run *)arg;
	u16 port = r->port;
	u64 t0, t1;

	r->rdtsc_min = ~0ULL;
	for (unsigned i = 0; i < 1000; i++) {
		t0 = rdtsc();
		t1 = rdtsc();
		if (t1 - t0 < r->rdtsc_min)
			r->rdtsc_min = t1 - t0;
	}
	if (r->mmio)
		return mmio_measure(r);
	for (unsigned i = 0; i < WARMUP; i++) {
		outb(port, 0);
		(void)inb(port);
	}
	r->out.total = 0;
	for (u64 i = 0; i < r->iters; i++) {
		t0 = rdtsc();
		outb(port, 0);
		t1 = rdtsc();
		r->out.total += t1 - t0;
		if (i < MAX_SAMPLES)
			out_samples[i] = clamp32(t1 - t0);
	}
	r->in.total = 0;
	for (u64 i = 0; i < r->iters; i++) {
		t0 = rdtsc();
		(void)inb(port);
		t1 = rdtsc();
		r->in.total += t1 - t0;
		if (i < MAX_SAMPLES)
			in_samples[i] = clamp32(t1 - t0);
	}
	return 0;
}

static void sift_down(u32 *a, u64 root, u64 n)
{
	for (;;) {
		u64 child = 2 * root + 1;
		u32 t;

		if (child >= n)
			return;
		if (child + 1 < n && a[child + 1] > a[child])
			child++;
		if (a[root] >= a[child])
			return;
		t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

static void heap_sort(u32 *a, u64 n)
{
	for (u64 i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (u64 end = n; end-- > 1;) {
		u32 t = a[0];

		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

/* Ring 3 only (sorting in emulated ring 0 would take seconds). */
static u64 pio_stats(u64 arg)
{
	struct pio_run *r = (struct pio_run *)arg;

	r->nsamples = r->iters < MAX_SAMPLES ? r->iters : MAX_SAMPLES;
	heap_sort(out_samples, r->nsamples);
	heap_sort(in_samples, r->nsamples);
	r->out.min = out_samples[0];
	r->in.min = in_samples[0];
	r->out.median = out_samples[r->nsamples / 2];
	r->in.median = in_samples[r->nsamples / 2];
	return 0;
}

static bool run(struct pio_run *r, bool ring0)
{
	struct user_result res = { .faulted = false };

	if (ring0)
		pio_measure((u64)r);
	else if (!expect(user_call(pio_measure, (u64)r, &res),
			 "ring-3 %s faulted: %s at %#lx",
			 r->mmio ? "MMIO" : "port I/O",
			 exception_name(res.vector), res.rip))
		return false;
	return expect(user_call(pio_stats, (u64)r, &res), "stats faulted: %s",
		      exception_name(res.vector));
}

int guest_main(const char *cmdline)
{
	struct pio_run r3 = { .port = BENCH_PORT,
			      .iters = cmdline_u64("iters", 20000) };
	struct pio_run r0 = { .port = BENCH_PORT,
			      .iters = cmdline_u64("r0iters", 1000) };
	struct pio_run mm = { .mmio = true, .addr = cmdline_u64("mmio", 0),
			      .iters = r3.iters };
	u64 khz = tsc_khz();

	(void)cmdline;
	TEST_BEGIN("pio_bench");
	expect(khz, "no TSC frequency: nanoseconds will read 0");
	if (!r3.iters || !run(&r3, false))
		return 0;
	printf("BENCH pio_out_ns=%lu pio_in_ns=%lu pio_out_mean_ns=%lu "
	       "pio_in_mean_ns=%lu pio_out_min_ns=%lu pio_in_min_ns=%lu "
	       "rdtsc_ns=%lu port=%#x iters=%lu tsc_khz=%lu\n",
	       tsc_to_ns(r3.out.median), tsc_to_ns(r3.in.median),
	       tsc_to_ns(r3.out.total / r3.iters), tsc_to_ns(r3.in.total / r3.iters),
	       tsc_to_ns(r3.out.min), tsc_to_ns(r3.in.min),
	       tsc_to_ns(r3.rdtsc_min), BENCH_PORT, r3.iters, khz);
	if (r0.iters && run(&r0, true))
		printf("BENCH ring0_pio_out_ns=%lu ring0_pio_in_ns=%lu "
		       "ring0_pio_out_mean_ns=%lu ring0_pio_in_mean_ns=%lu "
		       "ring0_rdtsc_ns=%lu port=%#x iters=%lu\n",
		       tsc_to_ns(r0.out.median), tsc_to_ns(r0.in.median),
		       tsc_to_ns(r0.out.total / r0.iters),
		       tsc_to_ns(r0.in.total / r0.iters), tsc_to_ns(r0.rdtsc_min),
		       BENCH_PORT, r0.iters);
	if (!mm.addr)
		return 0;
	if (!expect(mm.addr < (4ULL << 30) - 4, "mmio=%#lx is outside the 4 GiB map",
		    mm.addr))
		return 0;
	if (run(&mm, false))
		printf("BENCH mmio_write_ns=%lu mmio_read_ns=%lu "
		       "mmio_write_mean_ns=%lu mmio_read_mean_ns=%lu "
		       "mmio_write_min_ns=%lu mmio_read_min_ns=%lu addr=%#lx "
		       "iters=%lu\n",
		       tsc_to_ns(mm.out.median), tsc_to_ns(mm.in.median),
		       tsc_to_ns(mm.out.total / mm.iters),
		       tsc_to_ns(mm.in.total / mm.iters), tsc_to_ns(mm.out.min),
		       tsc_to_ns(mm.in.min), mm.addr, mm.iters);
	return 0;
}
