/* libFuzzer harness: the x86 instruction decoder (guest-controlled bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/insn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x86_insn in;
	struct x86_regs r;
	memset(&r, 0x5a, sizeof(r));
	if (x86_insn_decode(data, size, &in) == 0) {
		if (in.len == 0 || in.len > 15 || in.len > size)
			abort();
		if (in.base > 15 || in.index > 15 || in.base < -1 || in.index < -1)
			abort();
		(void)x86_insn_ea(&in, &r, 1, 2);
		if (in.map > 3 || in.vl > 2 || in.vvvv > 31 || in.evex_aaa > 7 ||
		    x86_insn_vreg(&in) > 31 || x86_insn_vrm(&in) > 31 ||
		    (in.enc != X86_ENC_LEGACY && (in.map < 1 || in.rex_w != !!(in.rex & 8))))
			abort();
		if (in.enc != X86_ENC_EVEX && (in.disp8 || in.evex_aaa || in.evex_z ||
					       in.evex_b || in.vvvv > 15 || in.vl > 1))
			abort();
		(void)x86_insn_reg(&in);
		(void)x86_insn_rm_reg(&in);
		x86_insn_evex_disp8n(&in, 64);
		(void)x86_insn_ea(&in, &r, 1, 2);
	}
	return 0;
}
