/*
 * hello: the smallest test guest. Prints a greeting and the command line
 * and passes one trivial test; a smoke test for the boot path, console and
 * power-off of a VMM.
 */
#include "guest.h"

const char guest_name[] = "hello";

int guest_main(const char *cmdline)
{
	char buf[32];

	printf("hello from the test guest\n");
	printf("cmdline: %s\n", cmdline);

	TEST_BEGIN("hello");
	expect(cpu_cpl() == 0, "guest_main runs at CPL %u", cpu_cpl());
	expect(snprintf(buf, sizeof(buf), "%d %05u %x %s", -7, 42u, 0xbeefu, "ok") == 16,
	       "snprintf length");
	expect(!strcmp(buf, "-7 00042 beef ok"), "snprintf gave \"%s\"", buf);
	return 0;
}
