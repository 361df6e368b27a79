#!/bin/bash
# The diagnostics protocol end to end: the minimal kernel with --hv and an
# initramfs carrying this build's hvmm-agent (started by /init on VMBus),
# hvmm's hybrid vsock socket (--vmbus-vsock-path), and hvmm-diag on the host:
#  - `kmsg` prints the guest's boot log (a "Linux version" line);
#  - `run uname -r` prints the guest's kernel release, exit status 0;
#  - `run false` exits with status 1;
#  - `file -p /proc/cpuinfo` has a "processor" line;
#  - `kmsg -f` keeps following; `shell` runs on a pty with our input and
#    exits with the shell's status;
#  - `kmsg -f -r` reconnects across a guest reboot (`reboot -f`) and prints
#    the second boot's log too (HVMM_DIAG_REBOOT=0 skips this ~2 min step);
#  - a missing socket is one clear error line.
# Every hvmm-diag call opens 2-3 hv_sock channels (control + data), which a
# loaded PVM host opens in seconds each; the host-side logic is covered in
# milliseconds by test_diag and test_ttrpc.
source "$(dirname "$0")/lib.sh"
need_kvm
DIAG=$BUILD/src/tools/hvmm-diag
[ -x "$DIAG" ] || fail "build hvmm-diag first ($BUILD)"
agent_initrd "${GUEST:-minimal}" # this build's agent in the guest's initramfs
SOCK=$OUT/vsock.sock
rm -f "$SOCK"

# A missing socket: one line, status 1, before any VM exists.
r=$("$DIAG" "$SOCK" kmsg 2>&1)
rc=$?
[ $rc = 1 ] && [ "$(wc -l <<<"$r")" = 1 ] && grep -q 'no such socket' <<<"$r" ||
	fail "missing socket: status $rc, output: $r"

start_console_vm --hv -k "$KERNEL" -r "$INITRD" -p 1 -m 512MB --vmbus-vsock-path "$SOCK"
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-INIT-OK marker (see $OUT/console.log)"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
# Until the agent listens, a CONNECT waits out the relay's open deadline.
send 'i=0; while ! pidof hvmm-agent >/dev/null && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; sleep 2; echo AGENT-PID=$(pidof hvmm-agent); echo KREL=$(uname -r)'
wait_for "$OUT/console.log" '^KREL=' 120 "$HVMM_PID" || fail "the guest did not answer"
grep -aq '^AGENT-PID=[0-9]' "$OUT/console.log" || fail "hvmm-agent is not running in the guest"
krel=$(sed -n 's/^KREL=\([^[:space:]]*\).*/\1/p' "$OUT/console.log" | head -1)

diag() { timeout 600 "$DIAG" "vsock:$SOCK" "$@"; }

start=$SECONDS
diag kmsg >"$OUT/kmsg.txt" 2>"$OUT/kmsg.err" || fail "kmsg failed: $(cat "$OUT/kmsg.err")"
grep -q '^\[ *[0-9]*\.[0-9]*\] Linux version' "$OUT/kmsg.txt" ||
	fail "kmsg has no 'Linux version' line ($(wc -l <"$OUT/kmsg.txt") lines, see $OUT/kmsg.txt)"
log "kmsg: $(wc -l <"$OUT/kmsg.txt") lines in $((SECONDS - start)) s"

start=$SECONDS
out=$(diag run uname -r </dev/null 2>"$OUT/run.err")
rc=$?
[ $rc = 0 ] || fail "run uname -r: status $rc: $(cat "$OUT/run.err")"
[ -n "$krel" ] && [ "$out" = "$krel" ] || fail "run uname -r printed '$out', the guest says '$krel'"
log "run uname -r: $out (status 0) in $((SECONDS - start)) s"

diag run false </dev/null 2>"$OUT/false.err"
rc=$?
[ $rc = 1 ] || fail "run false: status $rc, expected 1: $(cat "$OUT/false.err")"

diag file -p /proc/cpuinfo >"$OUT/cpuinfo.txt" 2>"$OUT/file.err" ||
	fail "file -p /proc/cpuinfo failed: $(cat "$OUT/file.err")"
grep -q '^processor' "$OUT/cpuinfo.txt" || fail "no processor line in $OUT/cpuinfo.txt"

# kmsg -f keeps following: still running (killed by timeout) with the log.
timeout 60 "$DIAG" "$SOCK" kmsg -f >"$OUT/kmsg-f.txt" 2>"$OUT/kmsg-f.err"
rc=$?
[ $rc = 124 ] || fail "kmsg -f ended by itself (status $rc): $(cat "$OUT/kmsg-f.err")"
grep -q 'Linux version' "$OUT/kmsg-f.txt" || fail "kmsg -f printed no boot log"

# shell: a pty (tty says /dev/pts), our input, its exit status.
printf 'tty; echo SHELL-$((6 * 7))\nexit 3\n' |
	diag shell >"$OUT/shell.txt" 2>"$OUT/shell.err"
rc=$?
[ $rc = 3 ] || fail "shell: status $rc, expected 3: $(cat "$OUT/shell.err")"
grep -q 'SHELL-42' "$OUT/shell.txt" && grep -q '/dev/pts/' "$OUT/shell.txt" ||
	fail "shell: no pty or no output (see $OUT/shell.txt)"

# inspect: hvmm's own tree through the socket (INSPECT, no guest involved):
# the channels the agent's connections use are open; an unknown node fails.
diag inspect vmbus -r >"$OUT/inspect.txt" 2>"$OUT/inspect.err" ||
	fail "inspect vmbus -r failed: $(cat "$OUT/inspect.err")"
grep -q 'state: "open"' "$OUT/inspect.txt" ||
	fail "inspect vmbus -r lists no open channel (see $OUT/inspect.txt)"
diag inspect no/such/node >/dev/null 2>"$OUT/inspect-no.err" &&
	fail "inspect of a missing node succeeded"
grep -q 'no node' "$OUT/inspect-no.err" ||
	fail "inspect of a missing node: $(cat "$OUT/inspect-no.err")"

# kmsg -f -r across a guest reboot: the second boot's log arrives too.
if [ "${HVMM_DIAG_REBOOT:-1}" = 1 ]; then
	"$DIAG" "$SOCK" kmsg -f -r -v >"$OUT/kmsg-r.txt" 2>"$OUT/kmsg-r.err" &
	KPID=$!
	wait_for "$OUT/kmsg-r.txt" 'Linux version' 120 || fail "kmsg -f -r printed no boot log"
	send 'reboot -f'
	end=$((SECONDS + 900))
	while [ "$(grep -c 'Linux version' "$OUT/kmsg-r.txt")" -lt 2 ] && [ $SECONDS -lt $end ]; do
		sleep 2
	done
	kill "$KPID" 2>/dev/null
	wait "$KPID" 2>/dev/null
	[ "$(grep -c 'Linux version' "$OUT/kmsg-r.txt")" -ge 2 ] ||
		fail "kmsg -f -r did not reconnect after the reboot (see $OUT/kmsg-r.err)"
	log "kmsg -r: reconnected after a guest reboot"
fi

kill -0 "$HVMM_PID" 2>/dev/null || fail "hvmm exited"
grep -aE 'hvmm: (error|warning)' "$OUT/console.log" | grep -v 'guest' &&
	fail "hvmm logged errors (see $OUT/console.log)"
log "ok: hvmm-diag kmsg (-f), run (status 0 and 1), file, shell against hvmm-agent; inspect vmbus -r"
