#!/bin/bash
# Guest power-off, reset (0xCF9 and i8042) and triple fault reach the
# --guest-shutdown/reset/crash-action handlers with the right exit status.
source "$(dirname "$0")/lib.sh"
need_kvm
G=$BUILD/tests/guests/lifecycle.elf
check() { # do expected-status extra-args...
	local what=$1 want=$2
	shift 2
	timeout 120 "$HVMM" -k "$G" -m 16MB --com1 stderr -c "do=$what" "$@" \
		>"$OUT/$what.log" 2>&1
	local st=$?
	[ "$st" = "$want" ] || fail "do=$what $*: exit $st, expected $want (log $OUT/$what.log)"
	log "ok: do=$what $* -> $st"
}
check poweroff 0
check poweroff 3 --guest-shutdown-action exit:3
check reset 5 --guest-reset-action exit:5
check kbdreset 6 --guest-reset-action exit:6
check triple 9 --guest-crash-action exit:9
check triple 1
grep -q 'triple fault' "$OUT/triple.log" || fail "no triple-fault report"
grep -q 'rip=' "$OUT/triple.log" || fail "triple fault without registers"
# reset: the VM is rebuilt and runs again (power-off ends the second run)
timeout 120 "$HVMM" -k "$G" -m 16MB --com1 stderr -c do=reset \
	--guest-shutdown-action exit:4 >"$OUT/reset-loop.log" 2>&1 &
pid=$!
wait_for "$OUT/reset-loop.log" 'resetting the VM' 60 || fail "no reset"
kill $pid 2>/dev/null
wait $pid 2>/dev/null
n=$(grep -c 'lifecycle: do=reset' "$OUT/reset-loop.log")
[ "$n" -ge 2 ] || fail "guest did not run again after reset ($n runs)"
log "ok: reset rebuilt the VM ($n runs)"
