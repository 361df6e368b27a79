#!/bin/bash
# The freestanding test guests under hvmm: each must print
# "GUEST-RESULT: N passed, 0 failed" with N > 0 and power off (exit 0).
source "$(dirname "$0")/lib.sh"
need_kvm
G=$BUILD/tests/guests
rc=0
run_guest() { # name args...
	local name=$1
	shift
	local log=$OUT/$name.log
	timeout 300 "$HVMM" -k "$G/$name.elf" -m 64MB --com1 stderr "$@" >"$log" 2>&1
	local st=$?
	local res
	res=$(grep -a '^GUEST-RESULT:' "$log" | tail -1)
	if [ "$st" != 0 ] || ! echo "$res" | grep -qE 'GUEST-RESULT: [1-9][0-9]* passed, 0 failed'; then
		log "FAIL: $name (exit $st, '${res:-no result}'); log $log"
		grep -a 'FAIL\|FATAL\|error' "$log" | head -5 >&2
		rc=1
	else
		log "ok: $name: $res"
	fi
}
run_guest hello
run_guest uart
run_guest ring3 -c r3iters=10000000 -c r0iters=2000
run_guest pio_bench -c iters=2000 -c r0iters=200
run_guest hello -p 2
run_guest emul
# Hyper-V (--hv): CPUID, synthetic MSRs, hypercall statuses, SynIC timers.
run_guest hvcall --hv -c iters=500 -c vmbusiters=50
# NVMe: the ring-3 polling driver against a small pattern disk, briefly.
NVME_IMG=$OUT/nvme-bench.img
python3 - "$NVME_IMG" $((16 << 20)) <<'EOF'
import array, sys
path, size, tag = sys.argv[1], int(sys.argv[2]), 0xA5A5000000000000
with open(path, 'wb') as f:
    for o in range(0, size, 1 << 20):
        f.write(array.array('Q', range(tag | o, tag | (o + (1 << 20)), 8)).tobytes())
EOF
run_guest nvme_bench --nvme-pci id=nv0 --disk "file:$NVME_IMG,on=nv0" -c ios=2000 -c secs=2
rm -f "$NVME_IMG"
# On PVM hosts hvmm must hide CX16 from the guest (SLUB's cmpxchg16b).
if [ -e /sys/module/kvm_pvm ]; then run_guest cpuid -c pvm=1; else run_guest cpuid; fi
exit $rc
