#!/bin/bash
# KVP and the console's forced shutdown, with the minimal kernel, --hv and
# the initramfs that carries Debian's hv_kvp_daemon (initrd-tools.img):
# init starts the daemon, hv_utils negotiates KVP with hvmm, hvmm
# enumerates the guest's pools and the console's `kvp` prints what the
# guest reported (its host name and kernel release, which the test knows
# independently). Then `shutdown -f` at the console: the guest gets the
# forced power-off request, powers off by itself and hvmm exits 0.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files minimal-tools
ctrl_q() { printf '\021' >&"$FIFO_FD"; }
start_console_vm --hv -k "$KERNEL" -r "$INITRD" -p 1 -m 512MB
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-INIT-OK marker (see $OUT/console.log)"
wait_for "$OUT/console.log" 'init: hv_kvp_daemon started' 120 "$HVMM_PID" ||
	fail "init did not start hv_kvp_daemon (no /dev/vmbus/hv_kvp?)"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
send 'echo "KREL=$(uname -r)"'
wait_for "$OUT/console.log" '^KREL=' 60 "$HVMM_PID" || fail "the guest shell does not answer"
krel=$(sed -n 's/^KREL=\(.*\)$/\1/p' "$OUT/console.log" | tr -d '\r' | head -1)
# The guest answers KVP once the daemon registered (hv_utils looks again
# about a minute after the host's first request); ask until items appear.
end=$((SECONDS + 300))
found=
while [ $SECONDS -lt $end ] && kill -0 "$HVMM_PID" 2>/dev/null; do
	ctrl_q
	sleep 1
	send kvp
	sleep 2
	send I
	if grep -aq 'FullyQualifiedDomainName=hvmm-guest' "$OUT/console.log"; then
		found=1
		break
	fi
	sleep 10
done
[ -n "$found" ] || fail "kvp never showed the guest's host name (see $OUT/console.log)"
grep -aq "OSBuildNumber=$krel" "$OUT/console.log" ||
	grep -aq "OSVersion=$krel" "$OUT/console.log" ||
	fail "kvp does not show the guest's kernel release $krel"
ctrl_q
sleep 1
send 'shutdown -f'
wait_for "$OUT/console.log" 'forced shutdown request sent to the guest' 10 "$HVMM_PID" ||
	fail "the console did not send the forced shutdown"
wait_exit 300 || fail "hvmm did not exit after the forced shutdown request"
grep -aq 'Shutdown request received - forced shutdown initiated\|Shutdown request received' "$OUT/console.log" ||
	fail "the guest did not receive the shutdown request"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS after the shutdown request, expected 0"
log "ok: hv_kvp_daemon's items reached the console's kvp; shutdown -f powered the guest off"
