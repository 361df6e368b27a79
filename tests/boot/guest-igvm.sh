#!/bin/bash
# The igvmparam test guest (tests/guests/igvmparam.c) built into a NATIVE
# IGVM file by `hvmm-igvm build --elf ... --param NAME@GPA` and booted with
# `hvmm --igvm`: from inside the guest, VP_COUNT must equal -p, MEMORY_MAP
# must match -m, COMMAND_LINE must carry -c, the MADT must list -p local
# APICs, the DEVICE_TREE -p cpu nodes, the RAM and the command line
# (PASS/FAIL lines on COM1). Run for -p 1/2 and two memory sizes; a
# run whose -c disagrees with -p must fail (the guest really checks), resets
# load the file again, and a parameter area outside guest RAM must be a
# one-line loader error.
source "$(dirname "$0")/lib.sh"
need_kvm
TOOL=$BUILD/src/tools/hvmm-igvm
ELF=$BUILD/tests/guests/igvmparam.elf
[ -x "$TOOL" ] && [ -f "$ELF" ] || skip "hvmm-igvm or the igvmparam guest is not built"
PARAMS=(--param cmdline@0x10000 --param vp_count@0x11000 --param memory_map@0x12000
	--param mmio_ranges@0x13000 --param madt@0x14000:2 --param environment_info@0x16000
	--param device_tree@0x18000:4)
"$TOOL" build -o "$OUT/igvmparam.igvm" --elf "$ELF" "${PARAMS[@]}" || fail "hvmm-igvm build failed"
"$TOOL" verify "$OUT/igvmparam.igvm" >/dev/null || fail "the built file does not verify"
rc=0
run() { # want(pass|fail) procs mib [vps]
	local want=$1 p=$2 mib=$3 vps=${4:-$2}
	local log=$OUT/p$p-m$mib-vps$vps.log
	timeout 300 "$HVMM" --igvm "$OUT/igvmparam.igvm" -p "$p" -m "${mib}MB" --com1 stderr \
		-c "vps=$vps mem=$mib igvm=ok" >"$log" 2>&1
	local st=$?
	local res
	res=$(grep -a '^GUEST-RESULT:' "$log" | tail -1)
	if [ "$want" = pass ]; then
		if [ "$st" = 0 ] && echo "$res" | grep -qE 'GUEST-RESULT: 7 passed, 0 failed'; then
			log "ok: -p $p -m ${mib}MB: $res"
		else
			log "FAIL: -p $p -m ${mib}MB (exit $st, '${res:-no result}'); log $log"
			grep -a 'FAIL\|error' "$log" | head -5 >&2
			rc=1
		fi
	elif grep -qa 'TEST vp_count FAIL' "$log"; then
		log "ok: -p $p with vps=$vps fails in the guest as it must"
	else
		log "FAIL: -p $p with vps=$vps was not caught (exit $st); log $log"
		rc=1
	fi
}
run pass 1 64
run pass 2 64
run pass 1 256
run pass 2 200
run fail 2 64 1

# Every reset loads the file again: with the shutdown action `reset` the
# guest's power-off restarts it; three passing runs, then stop it.
"$HVMM" --igvm "$OUT/igvmparam.igvm" -p 2 -m 64MB --com1 stderr --guest-shutdown-action reset \
	-c "vps=2 mem=64 igvm=ok" >"$OUT/reset.log" 2>&1 &
pid=$!
end=$((SECONDS + 120))
while [ "$(grep -ac 'GUEST-RESULT: 7 passed, 0 failed' "$OUT/reset.log")" -lt 3 ] &&
	[ $SECONDS -lt $end ] && kill -0 $pid 2>/dev/null; do sleep 0.5; done
kill $pid 2>/dev/null
wait $pid 2>/dev/null
n=$(grep -ac 'GUEST-RESULT: 7 passed, 0 failed' "$OUT/reset.log")
if [ "$n" -ge 3 ] && ! grep -qa 'failed\|error' <(grep -av 'GUEST-RESULT: 7 passed, 0 failed' "$OUT/reset.log"); then
	log "ok: the file was loaded again at each reset ($n passing boots)"
else
	log "FAIL: reloading at reset: $n passing boots; log $OUT/reset.log"
	rc=1
fi

# A parameter area inserted past the end of RAM: one line naming the header.
"$TOOL" build -o "$OUT/high.igvm" --elf "$ELF" --param vp_count@0x8000000 ||
	fail "hvmm-igvm build (high) failed"
timeout 60 "$HVMM" --igvm "$OUT/high.igvm" -m 64MB --com1 none >"$OUT/high.log" 2>&1
st=$?
if [ "$st" = 2 ] && grep -qE 'IGVM header 3 \(IGVM_VHT_PARAMETER_INSERT\): .*not guest RAM' "$OUT/high.log"; then
	log "ok: $(grep -a 'IGVM header' "$OUT/high.log")"
else
	log "FAIL: out-of-RAM insert: exit $st: $(cat "$OUT/high.log")"
	rc=1
fi
exit $rc
