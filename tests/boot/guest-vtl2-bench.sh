#!/bin/bash
# --vtl2 benchmark payload, cheap mode: tests/guests/vtl2_bench.c (the
# payload bench/vtl.sh times hvmm's VTL switches with) built by `hvmm-igvm
# build --vsm --relocatable` with a COMMAND_LINE area, run with small
# batches (hvmm -c "vb_n=100 vb_batches=3"): VTL0 writes an unclaimed port
# from ring 3 and ring 0, writes a port VTL2 intercepts (VTL2's asm handler
# reads the message in its VP assist page, SetVpRegisters VTL0's RIP and
# VtlReturns) from ring 3, ring 0 and with RDTSC in the handler, the same
# with VTL2's register page (the next RIP written into the page, no
# SetVpRegisters; hvmm's page shows VTL0 valid at the last intercept), and
# VtlCalls from ring 0. Passes when every loop ended with VTL0's write to
# the end port (GUEST-RESULT 10 passed), the VTL-BENCH line carries every
# figure, all positive, and an intercepted write costs more than a bare
# exit. Fails if a switch, the intercept or SetVpRegisters breaks (VTL0
# faults, loops forever or the entry is not the end port).
source "$(dirname "$0")/lib.sh"
need_kvm
vtl2_guest_build vtl2_bench --relocatable --param cmdline@0x10000
vtl2_guest_run p1 -p 1 -c "vb_n=100 vb_batches=3"
line=$(grep -a '^VTL-BENCH ' "$LOG" | tail -1)
val() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
DETAIL=
for k in bare_ns bare_r0_ns intercept_ns intercept_r0_ns vtlcall_ns handler_ns setvp_ns \
	instr_intercept_ns r0_insn_ps intercept_rp_ns intercept_rp_r0_ns; do
	v=$(val "$k")
	[ -n "$v" ] && [ "$v" -gt 0 ] || DETAIL="$DETAIL $k='$v'"
done
[ "$(val n)" = 100 ] && [ "$(val batches)" = 3 ] || DETAIL="$DETAIL n/batches not from -c"
[ -z "$DETAIL" ] && [ "$(val intercept_ns)" -gt "$(val bare_ns)" ] ||
	DETAIL="$DETAIL intercept_ns<=bare_ns"
checks() { [ -z "$DETAIL" ]; }
vtl2_guest_verdict "" 10 checks "$line"
