/* libFuzzer harness: every host decompressor on arbitrary input. */
#include <stdint.h>
#include <stdlib.h>

#include "x86/decompress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum decomp_format f = (enum decomp_format)(data[0] % 6);
	if (f == DECOMP_NONE)
		f = decomp_detect(data + 1, size - 1);
	uint8_t *out = NULL;
	size_t outlen, used;
	if (decomp_stream(f, data + 1, size - 1, 8u << 20, &out, &outlen, &used) == 0) {
		if (used > size - 1)
			abort(); /* consumed more than it was given */
		free(out);
	}
	return 0;
}
