#!/bin/bash
# The minimal kernel with --hv (NCPU vCPUs, default 1): Linux detects
# Hyper-V, uses the reference TSC page as its clocksource and the synthetic
# timer as its clock event device, sleeping works (timer interrupts), all
# CPUs come up, and `poweroff -f` makes hvmm exit 0.
# hv_vmbus negotiates VMBus with hvmm's server: the newest version (5.3), or
# VMBUS_VERSION when VMBUS_MAX is given (--vmbus-max-version).
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files "${GUEST:-minimal}"
NCPU=${NCPU:-1}
VMBUS_VERSION=${VMBUS_VERSION:-5.3}
start_console_vm --hv -k "$KERNEL" -r "$INITRD" -p "$NCPU" -m 512MB \
	${VMBUS_MAX:+--vmbus-max-version "$VMBUS_MAX"}
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-INIT-OK marker (see $OUT/console.log)"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
grep -q 'Hypervisor detected: Microsoft Hyper-V' "$OUT/console.log" ||
	fail "the guest did not detect Hyper-V"
grep -qi 'KVM' <(grep 'Hypervisor detected' "$OUT/console.log") &&
	fail "the guest detected KVM"
# Privileges, never the root partition's (EBX bit 12).
grep -qE 'Hyper-V: privilege flags low 0x[0-9a-f]+, high 0x30,' "$OUT/console.log" ||
	fail "unexpected Hyper-V privilege flags: $(grep 'privilege flags' "$OUT/console.log")"
send 'echo "CS=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"; echo "CE=$(cat /sys/devices/system/clockevents/clockevent0/current_device)"; echo "NPROC=$(nproc)"'
wait_for "$OUT/console.log" '^CS=' 120 "$HVMM_PID" || fail "clocksource query did not answer"
wait_for "$OUT/console.log" '^NPROC=' 60 "$HVMM_PID" || fail "nproc did not answer"
cs=$(grep '^CS=' "$OUT/console.log" | tr -d '\r' | head -1)
ce=$(grep '^CE=' "$OUT/console.log" | tr -d '\r' | head -1)
np=$(grep '^NPROC=' "$OUT/console.log" | tr -d '\r' | head -1)
[ "$cs" = CS=hyperv_clocksource_tsc_page ] || fail "clocksource is ${cs#CS=}"
[ "$ce" = "CE=Hyper-V clockevent" ] || fail "clock event device is ${ce#CE=}"
[ "$np" = "NPROC=$NCPU" ] || fail "guest sees ${np#NPROC=} CPUs, expected $NCPU"
# Time runs: two reads of the clock 2 s apart (sleep rides on the stimer).
send 'a=$(cut -d. -f1 /proc/uptime); sleep 2; b=$(cut -d. -f1 /proc/uptime); echo "UPTIME_DELTA=$((b - a))"'
wait_for "$OUT/console.log" '^UPTIME_DELTA=' 120 "$HVMM_PID" || fail "sleep did not return (timer interrupts?)"
delta=$(sed -n 's/^UPTIME_DELTA=\([0-9]*\).*/\1/p' "$OUT/console.log" | head -1)
# At least the 2 s asked for; the upper bound is loose because each command
# costs seconds of emulated ring 0 on a loaded PVM host.
[ "$delta" -ge 2 ] && [ "$delta" -le 30 ] || fail "2 s of sleep took ${delta}s of guest uptime"
vmbus=$(grep -ao 'hv_vmbus: Vmbus version:[0-9.]*' "$OUT/console.log" | head -1)
[ "$vmbus" = "hv_vmbus: Vmbus version:$VMBUS_VERSION" ] ||
	fail "VMBus: expected version $VMBUS_VERSION, got '${vmbus:-no version}'"
grep -q 'hv_vmbus: Unable to connect' "$OUT/console.log" && fail "hv_vmbus could not connect"
send 'poweroff -f'
wait_exit 120 || fail "hvmm did not exit after poweroff"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS after poweroff, expected 0"
log "ok: $NCPU CPU(s), ${cs#CS=}, ${ce#CE=}, ${vmbus#hv_vmbus: }"
