#!/bin/bash
# The console's `v PORT` (a terminal window on a guest vsock port) with the
# minimal kernel, --hv (no --vmbus-vsock-path: the console's connections are
# in-process) and an initramfs with hvmm-agent, whose data port 2 greets
# every connection with its 8-byte id. A stand-in terminal program gets what
# hvmm passes a real one (-T TITLE -e socat STDIO,rawer UNIX-CONNECT:SOCK)
# and saves what arrives through the socket. Checked: the window on port 2
# receives exactly the 8-byte greeting; a window on a port nobody listens
# on is told so; a bad port is refused at the prompt; x shows the vsock node.
source "$(dirname "$0")/lib.sh"
need_kvm
command -v socat >/dev/null || fail "socat is needed (scripts/install-deps.sh)"
agent_initrd
export DISPLAY=${DISPLAY:-:hvmm-test} # the term machinery wants a display
start_console_vm --hv -k "$KERNEL" -r "$INITRD" -p 1 -m 512MB
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-INIT-OK marker"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
send 'i=0; while ! pidof hvmm-agent >/dev/null && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; sleep 2; echo AGENT-PID=$(pidof hvmm-agent)'
wait_for "$OUT/console.log" '^AGENT-PID=' 120 "$HVMM_PID" || fail "the guest did not answer"
grep -aq '^AGENT-PID=[0-9]' "$OUT/console.log" || fail "hvmm-agent is not running in the guest"
cat >"$OUT/faketerm" <<EOF
#!/bin/sh
title= sock=
while [ \$# -gt 0 ]; do
	case \$1 in -T) title=\$2; shift;; UNIX-CONNECT:*) sock=\${1#UNIX-CONNECT:};; esac
	shift
done
exec socat -u UNIX-CONNECT:"\$sock" CREATE:"$OUT/vterm-\$(echo "\$title" | tr ' ' _).out"
EOF
chmod +x "$OUT/faketerm"
ctrl_q() { printf '\021' >&"$FIFO_FD"; }
ctrl_q
wait_for "$OUT/console.log" 'hvmm> ' 10 "$HVMM_PID" || fail "Ctrl-Q did not open the prompt"
send "v 2 $OUT/faketerm"
wait_for "$OUT/console.log" 'opening a terminal on guest vsock port 2' 10 "$HVMM_PID" ||
	fail "v 2: $(grep -a '^v: \|v 2' "$OUT/console.log" | tail -2)"
for i in $(seq 120); do
	[ "$(stat -c %s "$OUT/vterm-vsock_2.out" 2>/dev/null || echo 0)" -ge 8 ] && break
	sleep 1
done
[ "$(stat -c %s "$OUT/vterm-vsock_2.out" 2>/dev/null || echo 0)" = 8 ] ||
	fail "v 2: the window did not get the agent's 8-byte connection id"
pkill -f "CREATE:$OUT/vterm-vsock_2.out" # close the window: the session ends
send "v 4444 $OUT/faketerm"
wait_for "$OUT/vterm-vsock_4444.out" 'nothing listens on guest vsock port 4444' 90 "$HVMM_PID" ||
	fail "v 4444: the window was not told that nothing listens"
send "v 99999999999 $OUT/faketerm"
wait_for "$OUT/console.log" 'usage: v PORT' 10 "$HVMM_PID" || fail "v: a bad port was not refused"
send 'x vsock'
wait_for "$OUT/console.log" '^ *connections: [0-9]*,' 10 "$HVMM_PID" || fail "x vsock did not answer"
send I
sleep 1
send 'poweroff -f'
wait_exit 120 || fail "hvmm did not exit after poweroff"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS"
log "ok: v PORT relayed the guest's greeting to a terminal window, and reported a port nobody listens on"
