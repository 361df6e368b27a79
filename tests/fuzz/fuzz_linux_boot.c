/*
 * libFuzzer harness: the Linux loader on arbitrary kernel and initrd files
 * (bzImage header, ELF program headers, compressed payloads, cpio walking).
 * Input: u32 kernel length, kernel bytes, initrd bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/linux_boot.h"

#define RAM (32u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static struct gmem mem;
	if (!ram) {
		ram = calloc(1, RAM);
		gmem_init_fake(&mem, ram, RAM);
	}
	if (size < 4)
		return 0;
	uint32_t klen;
	memcpy(&klen, data, 4);
	data += 4;
	size -= 4;
	if (klen > size)
		klen = (uint32_t)size;
	struct linux_boot_config cfg = {
		.kernel = data, .kernel_len = klen,
		.initrd = data + klen, .initrd_len = size - klen,
		.cmdline = "console=ttyS0", .rsdp_gpa = 0xe0000,
	};
	struct linux_boot_info info;
	char err[256];
	linux_boot_load(&mem, &cfg, &info, err, sizeof(err));
	return 0;
}
