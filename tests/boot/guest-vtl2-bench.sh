#!/bin/bash
# --vtl2 benchmark payload, cheap mode: tests/guests/vtl2_bench.c (the
# payload bench/vtl.sh times hvmm's VTL switches with) built by `hvmm-igvm
# build --vsm --relocatable` with a COMMAND_LINE area, run with small
# batches (hvmm -c "vb_n=100 vb_batches=3"): VTL0 writes an unclaimed port
# from ring 3 and ring 0, writes a port VTL2 intercepts (VTL2's asm handler
# reads the message in its VP assist page, SetVpRegisters VTL0's RIP and
# VtlReturns) from ring 3, ring 0 and with RDTSC in the handler, and
# VtlCalls from ring 0. Passes when every loop ended with VTL0's write to
# the end port (GUEST-RESULT 8 passed), the VTL-BENCH line carries every
# figure, all positive, and an intercepted write costs more than a bare
# exit. Fails if a switch, the intercept or SetVpRegisters breaks (VTL0
# faults, loops forever or the entry is not the end port).
source "$(dirname "$0")/lib.sh"
need_kvm
TOOL=$BUILD/src/tools/hvmm-igvm
ELF=$BUILD/tests/guests/vtl2_bench.elf
[ -x "$TOOL" ] && [ -f "$ELF" ] || skip "hvmm-igvm or the vtl2_bench guest is not built"
"$TOOL" build -o "$OUT/vtl2_bench.igvm" --elf "$ELF" --vsm --relocatable --param cmdline@0x10000 ||
	fail "hvmm-igvm build --vsm --relocatable failed"
log_file=$OUT/p1.log
timeout 300 "$HVMM" --igvm "$OUT/vtl2_bench.igvm" --hv --vtl2 -p 1 -m 64MB --com1 none \
	--com3 stderr -c "vb_n=100 vb_batches=3" >"$log_file" 2>&1
st=$?
res=$(grep -a '^GUEST-RESULT:' "$log_file" | tail -1)
line=$(grep -a '^VTL-BENCH ' "$log_file" | tail -1)
val() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
bad=
for k in bare_ns bare_r0_ns intercept_ns intercept_r0_ns vtlcall_ns handler_ns setvp_ns \
	instr_intercept_ns r0_insn_ps; do
	v=$(val "$k")
	[ -n "$v" ] && [ "$v" -gt 0 ] || bad="$bad $k='$v'"
done
[ "$(val n)" = 100 ] && [ "$(val batches)" = 3 ] || bad="$bad n/batches not from -c"
[ -z "$bad" ] && [ "$(val intercept_ns)" -gt "$(val bare_ns)" ] ||
	bad="$bad intercept_ns<=bare_ns"
if [ "$st" = 0 ] && echo "$res" | grep -qE 'GUEST-RESULT: 8 passed, 0 failed' && [ -z "$bad" ]; then
	log "ok: $res; $line"
else
	log "FAIL: exit $st, '${res:-no result}',${bad:- }; log $log_file"
	grep -a 'FAIL\|error\|warning' "$log_file" | head -5 >&2
	exit 1
fi
