#!/bin/bash
# The utility devices with the minimal kernel and --hv: the guest's hv_utils
# binds the shutdown, heartbeat and time-sync channels hvmm offers (seen in
# /sys/bus/vmbus/devices/*/{class_id,driver}), negotiates them (its log's
# "... IC version" lines), hvmm sees the heartbeat, and SIGTERM to hvmm
# asks the guest to power off through the shutdown service: the guest logs
# the request, powers off by itself and hvmm exits 0.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files "${GUEST:-minimal}"
start_console_vm --hv -k "$KERNEL" -r "$INITRD" -p 1 -m 512MB
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-INIT-OK marker (see $OUT/console.log)"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
# class_id and bound driver of every VMBus device, one line each.
send 'for d in /sys/bus/vmbus/devices/*; do echo "VMBUSDEV $(cat $d/class_id) $(basename $(readlink $d/driver 2>/dev/null) 2>/dev/null)"; done; echo VMBUSDEV-END'
wait_for "$OUT/console.log" '^VMBUSDEV-END' 120 "$HVMM_PID" || fail "listing VMBus devices did not answer"
for class in 0e0b6031-5213-4934-818b-38d90ced39db:shutdown \
	     57164f39-9115-4e78-ab55-382f3bd5422d:heartbeat \
	     9527e630-d0ae-497b-adce-e80ab0175caf:timesync; do
	guid=${class%%:*}
	line=$(tr -d '\r' <"$OUT/console.log" | grep "^VMBUSDEV {$guid}" | head -1)
	[ -n "$line" ] || fail "no VMBus device of class ${class#*:} ($guid)"
	[ "${line##* }" = hv_utils ] || fail "${class#*:} device not bound to hv_utils: '$line'"
done
for ic in Shutdown Heartbeat TimeSync; do
	grep -aqE "$ic IC version [0-9]+\.[0-9]+" "$OUT/console.log" ||
		fail "the guest did not negotiate the $ic service"
done
wait_for "$OUT/console.log" 'guest heartbeat: alive' 60 "$HVMM_PID" ||
	fail "hvmm never saw the guest's heartbeat"
# hvmm is the child of start_console_vm's subshell.
pid=$(pgrep -P "$HVMM_PID" -x hvmm) || fail "hvmm's pid not found"
kill -TERM "$pid"
wait_exit 300 || fail "hvmm did not exit after SIGTERM"
grep -aq 'Shutdown request received - graceful shutdown initiated' "$OUT/console.log" ||
	fail "the guest did not receive the shutdown request"
grep -aq 'the guest accepted the shutdown request' "$OUT/console.log" ||
	fail "hvmm did not see the guest accept the shutdown request"
grep -aq 'did not shut down within' "$OUT/console.log" &&
	fail "hvmm had to stop the guest (it did not power off by itself)"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS after the shutdown request, expected 0"
log "ok: hv_utils bound shutdown, heartbeat and time sync; SIGTERM powered the guest off"
