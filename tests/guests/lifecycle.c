/*
 * lifecycle: ends the VM the way the command line asks, to test a VMM's
 * --guest-*-action handling. do=reset writes 0x06 to the reset control
 * register (port 0xCF9), do=kbdreset pulses reset through the i8042 (0xFE to
 * port 0x64), do=triple loads an empty IDT and raises #UD (a triple fault),
 * anything else returns normally (ACPI S5 power-off by the framework).
 */
#include "guest.h"

const char guest_name[] = "lifecycle";

int guest_main(const char *cmdline)
{
	char what[16] = "poweroff";
	(void)cmdline;
	cmdline_str("do", what, sizeof(what));
	printf("lifecycle: do=%s\n", what);
	console_flush();
	if (!strcmp(what, "reset")) {
		outb(0xcf9, 0x06);
	} else if (!strcmp(what, "kbdreset")) {
		outb(0x64, 0xfe);
	} else if (!strcmp(what, "triple")) {
		static const struct {
			u16 limit;
			u64 base;
		} __attribute__((packed)) empty_idt = { 0, 0 };
		__asm__ volatile("lidt %0\n\tud2" : : "m"(empty_idt));
	} else {
		TEST_BEGIN("poweroff");
		expect(true, "returning to power off");
		return 0;
	}
	/* Only reached if the VMM ignored the request. */
	TEST_BEGIN(what);
	expect(false, "still running after do=%s", what);
	return 0;
}
