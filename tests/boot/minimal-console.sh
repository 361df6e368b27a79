#!/bin/bash
# The interactive console (OpenVMM's), driven through a pipe on stdin with
# the minimal kernel: Ctrl-Q opens the hvmm> prompt; `help`, an unknown
# command, `i TEXT` (typed into the guest shell, which computes the answer),
# `p`/`r` (the guest runs nothing while paused, then catches up), `n` (the
# guest kernel reports the NMI), `shutdown` without VMBus (clear refusal),
# `I`/Ctrl-Q back to the guest, `R` (the guest boots a second time) and `q`
# (exit 0).
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files minimal
ctrl_q() { printf '\021' >&"$FIFO_FD"; }
count() { grep -c -- "$1" "$OUT/console.log" 2>/dev/null || true; }

start_console_vm -k "$KERNEL" -r "$INITRD" -m 512MB
wait_for "$OUT/console.log" '^HVMM-INIT-OK' 900 "$HVMM_PID" || fail "no HVMM-INIT-OK marker"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"

ctrl_q
wait_for "$OUT/console.log" 'hvmm> ' 10 "$HVMM_PID" || fail "Ctrl-Q did not open the prompt"
send help
wait_for "$OUT/console.log" 'shutdown \[-r\] \[-f\]' 10 "$HVMM_PID" || fail "help lists no commands"
send frobnicate
wait_for "$OUT/console.log" "unknown command 'frobnicate'" 10 "$HVMM_PID" ||
	fail "unknown command not reported"
send 'i echo INJECTED-$((6*7))'
wait_for "$OUT/console.log" '^INJECTED-42' 60 "$HVMM_PID" || fail "i TEXT did not reach the guest shell"

send p
wait_for "$OUT/console.log" '^paused' 10 "$HVMM_PID" || fail "pause not acknowledged"
send 'i echo WHILE-PAUSED-$((1+1))'
sleep 5
[ "$(count '^WHILE-PAUSED-2')" = 0 ] || fail "the guest ran while paused"
send r
wait_for "$OUT/console.log" '^resumed' 10 "$HVMM_PID" || fail "resume not acknowledged"
wait_for "$OUT/console.log" '^WHILE-PAUSED-2' 60 "$HVMM_PID" || fail "the guest did not catch up after resume"

send n
wait_for "$OUT/console.log" 'NMI sent' 10 "$HVMM_PID" || fail "nmi not acknowledged"
wait_for "$OUT/console.log" 'NMI received for unknown reason' 60 "$HVMM_PID" ||
	fail "the guest kernel did not see the NMI"

send shutdown
wait_for "$OUT/console.log" 'no shutdown integration service' 10 "$HVMM_PID" ||
	fail "shutdown without VMBus was not refused clearly"

# Back to the guest with I, then Ctrl-Q again.
send I
sleep 1
send 'echo BACK-IN-GUEST-$((2+3))'
wait_for "$OUT/console.log" '^BACK-IN-GUEST-5' 60 "$HVMM_PID" || fail "I did not return input to the guest"
ctrl_q
sleep 1
printf '\021' >&"$FIFO_FD"   # Ctrl-Q in command mode returns to the guest too
send 'echo CTRLQ-BACK-$((3+4))'
wait_for "$OUT/console.log" '^CTRLQ-BACK-7' 60 "$HVMM_PID" || fail "Ctrl-Q did not return input to the guest"

ctrl_q
send R
wait_for "$OUT/console.log" 'resetting the VM' 10 "$HVMM_PID" || fail "reset not acknowledged"
end=$((SECONDS + 900))
while [ "$(count '^HVMM-INIT-OK')" -lt 2 ] && [ $SECONDS -lt $end ] && kill -0 "$HVMM_PID" 2>/dev/null; do
	sleep 2
done
[ "$(count '^HVMM-INIT-OK')" -ge 2 ] || fail "the guest did not boot again after R"

send q
wait_exit 60 || fail "hvmm did not exit after q"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS after q, expected 0"
log "ok: prompt, help, i, p/r, n, shutdown refusal, I/Ctrl-Q, R and q"
