/*
 * cpuid: prints what CPUID reports to the guest in ring 0 and in ring 3,
 * and checks the bits a VMM on a PVM host must hide (CPUID.1:ECX.CX16) when
 * the command line says pvm=1. Ring 0 on PVM goes through KVM's emulator,
 * which answers from the VMM's CPUID table; ring 3 runs natively.
 */
#include "guest.h"

const char guest_name[] = "cpuid";

static u64 leaf1_ecx_user(u64 arg)
{
	u32 a, b, c, d;
	(void)arg;
	cpuid(1, 0, &a, &b, &c, &d);
	return c;
}

int guest_main(const char *cmdline)
{
	u32 a, b, c, d, c7b, c7c, e81d;
	(void)cmdline;
	cpuid(1, 0, &a, &b, &c, &d);
	cpuid(7, 0, &a, &c7b, &c7c, &d);
	cpuid(0x80000001, 0, &a, &b, &d, &e81d);
	u32 l1c;
	cpuid(1, 0, &a, &b, &l1c, &d);
	printf("CPUID ring0 leaf1.ecx=%08x leaf7.ebx=%08x leaf7.ecx=%08x ext1.edx=%08x\n",
	       l1c, c7b, c7c, e81d);
	struct user_result res;
	if (user_call(leaf1_ecx_user, 0, &res))
		printf("CPUID ring3 leaf1.ecx=%08llx\n", (unsigned long long)res.value);
	TEST_BEGIN("cpuid-hypervisor-bit");
	expect(l1c & (1u << 31), "CPUID.1:ECX.hypervisor clear");
	if (cmdline_u64("pvm", 0)) {
		TEST_BEGIN("cpuid-pvm-trim");
		expect(!(l1c & (1u << 13)), "CX16 visible on a PVM host");
	}
	return 0;
}
