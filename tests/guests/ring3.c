/*
 * ring3: ring-3 execution and the cost of guest ring 0. Times the same
 * `dec; jnz` loop in ring 3 (native on PVM hosts; default 1e8 iterations,
 * "r3iters=") and in ring 0 (instruction-emulated on PVM hosts; default
 * 1e5, "r0iters="), and checks that exceptions raised in ring 3 reach the
 * ring-0 handlers and that the guest carries on afterwards.
 *
 * Output: "BENCH ring3_loop_ns=<ns/iter> ring0_loop_ns=<ns/iter>
 * ring3_iters=<n> ring0_iters=<n> tsc_khz=<khz> tsc_source=<src>", with the
 * per-iteration values printed to three decimals.
 */
#include "guest.h"

const char guest_name[] = "ring3";

#define UNMAPPED_ADDR 0x100001234ULL /* above the 4 GiB identity map */
#define NONCANONICAL_ADDR 0x8000000000000000ULL

struct loop_arg {
	u64 iters;
	u64 cycles;
};

static u64 spin_timed(u64 arg)
{
	struct loop_arg *a = (struct loop_arg *)arg;
	u64 n = a->iters, t0 = rdtsc();

	if (n)
		__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n));
	a->cycles = rdtsc() - t0;
	return cpu_cpl();
}

static u64 user_state(u64 arg)
{
	u64 *rflags = (u64 *)arg;

	__asm__ volatile("pushfq; popq %0" : "=r"(*rflags));
	/* Port I/O from ring 3 must not fault (IOPL=3 and the TSS bitmap). */
	return (u64)cpu_cpl() << 32 | inb(COM1_BASE + 5);
}

static u64 user_read(u64 addr)
{
	return *(volatile u64 *)addr;
}

static u64 user_write(u64 addr)
{
	*(volatile u64 *)addr = 1;
	return 0;
}

static u64 user_hlt(u64 arg)
{
	(void)arg;
	__asm__ volatile("hlt");
	return 0;
}

static u64 user_ud2(u64 arg)
{
	(void)arg;
	__asm__ volatile("ud2");
	return 0;
}

static u64 user_div0(u64 arg)
{
	u64 a = 1, d = 0;

	__asm__ volatile("divq %2" : "+a"(a), "+d"(d) : "r"(arg));
	return a;
}

static u64 user_sum(u64 n)
{
	u64 s = 0;

	for (u64 i = 1; i <= n; i++)
		s += i;
	return s;
}

static void expect_fault(const char *what, user_fn fn, u64 arg, u8 vector,
			 u64 err_mask, u64 err_val, bool check_cr2)
{
	struct user_result r;
	bool returned = user_call(fn, arg, &r);

	expect(!returned, "%s returned %#lx instead of faulting", what, r.value);
	expect(r.vector == vector, "%s: vector %u (%s), want %u", what,
	       r.vector, exception_name(r.vector), vector);
	expect((r.error_code & err_mask) == err_val,
	       "%s: error code %#lx, want %#lx under mask %#lx", what,
	       r.error_code, err_val, err_mask);
	if (check_cr2)
		expect(r.cr2 == arg, "%s: cr2 %#lx, want %#lx", what, r.cr2, arg);
	expect(r.rip >= 0x100000 && r.rip < 0x200000, "%s: rip %#lx", what,
	       r.rip);
}

static void bench(void)
{
	struct loop_arg r3 = { cmdline_u64("r3iters", 100000000), 0 };
	struct loop_arg r0 = { cmdline_u64("r0iters", 100000), 0 };
	struct user_result res;
	u64 khz = tsc_khz(), ps3, ps0;

	TEST_BEGIN("ring3_loop");
	expect(user_call(spin_timed, (u64)&r3, &res), "ring-3 loop faulted: %s",
	       exception_name(res.vector));
	expect(res.value == 3, "loop ran at CPL %lu", res.value);
	expect(spin_timed((u64)&r0) == 0, "ring-0 loop not at CPL 0");
	expect(khz, "no TSC frequency");

	ps3 = tsc_to_ps_per(r3.cycles, r3.iters);
	ps0 = tsc_to_ps_per(r0.cycles, r0.iters);
	printf("BENCH ring3_loop_ns=" FIX3_FMT " ring0_loop_ns=" FIX3_FMT
	       " ring3_iters=%lu ring0_iters=%lu ring3_cycles=%lu "
	       "ring0_cycles=%lu tsc_khz=%lu tsc_source=%s\n",
	       FIX3_ARG(ps3), FIX3_ARG(ps0), r3.iters, r0.iters, r3.cycles,
	       r0.cycles, khz, tsc_source());
}

int guest_main(const char *cmdline)
{
	struct user_result r;
	u64 v, rflags = 0;

	(void)cmdline;
	TEST_BEGIN("ring3_enter");
	expect(user_call(user_state, (u64)&rflags, &r), "faulted: %s at %#lx",
	       exception_name(r.vector), r.rip);
	expect(r.value >> 32 == 3, "CPL %lu in ring 3", r.value >> 32);
	expect(cpu_cpl() == 0, "back at CPL %u", cpu_cpl());
	/* Informational: PVM shows the host's RFLAGS (IOPL 0, IF 1) in ring 3. */
	printf("INFO ring3 rflags=%#lx\n", rflags);

	bench();

	TEST_BEGIN("ring3_pf_read");
	expect_fault("read above 4 GiB", user_read, UNMAPPED_ADDR, 14, 0x7, 0x4,
		     true);
	TEST_BEGIN("ring3_pf_write");
	expect_fault("write above 4 GiB", user_write, UNMAPPED_ADDR, 14, 0x7,
		     0x6, true);
	TEST_BEGIN("ring3_gp_noncanonical");
	expect_fault("non-canonical read", user_read, NONCANONICAL_ADDR, 13,
		     ~0ULL, 0, false);
	TEST_BEGIN("ring3_gp_hlt");
	expect_fault("hlt", user_hlt, 0, 13, ~0ULL, 0, false);
	TEST_BEGIN("ring3_ud");
	expect_fault("ud2", user_ud2, 0, 6, ~0ULL, 0, false);
	TEST_BEGIN("ring3_de");
	expect_fault("divide by zero", user_div0, 0, 0, ~0ULL, 0, false);

	TEST_BEGIN("ring3_recover");
	expect(user_call(user_sum, 1000, &r), "faulted: vector %u", r.vector);
	expect(r.value == 500500, "sum %lu", r.value);
	expect(cpu_cpl() == 0, "back at CPL %u", cpu_cpl());

	TEST_BEGIN("ring0_fixup");
	expect(!read64_safe(NONCANONICAL_ADDR, &v), "non-canonical read worked");
	expect(ex_vector == 13, "vector %d, want 13", ex_vector);
	expect(read64_safe((u64)&guest_name, &v) && ex_vector == -1,
	       "plain read faulted (vector %d)", ex_vector);
	return 0;
}
