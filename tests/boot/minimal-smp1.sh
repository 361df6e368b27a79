#!/bin/bash
# A kernel (minimal by default; GUEST=debian for the stock Debian cloud
# kernel), NCPU vCPUs and MEM_MB of RAM: boots to /init, runs commands typed
# on the console (stdin is a pipe), reports the configured CPU count and
# memory, and `poweroff -f` makes hvmm exit 0.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files "${GUEST:-minimal}"
NCPU=${NCPU:-1}
MEM_MB=${MEM_MB:-512}
# shellcheck disable=SC2086 # HVMM_EXTRA_ARGS is a word list
start_console_vm -k "$KERNEL" -r "$INITRD" -p "$NCPU" -m "${MEM_MB}MB" ${HVMM_EXTRA_ARGS:-}
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-INIT-OK marker (see $OUT/console.log)"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
send 'echo "NPROC=$(nproc)"; grep MemTotal /proc/meminfo; echo "CONSOLE=$(cat /sys/class/tty/console/active)"'
wait_for "$OUT/console.log" '^NPROC=[0-9]+' 120 "$HVMM_PID" || fail "nproc did not answer"
wait_for "$OUT/console.log" '^CONSOLE=' 60 "$HVMM_PID" || fail "console query did not answer"
nproc=$(sed -n 's/^NPROC=\([0-9]*\).*/\1/p' "$OUT/console.log" | tr -d '\r' | head -1)
memkb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' "$OUT/console.log" | head -1)
[ "$nproc" = "$NCPU" ] || fail "guest sees $nproc CPUs, expected $NCPU"
# MemTotal excludes the kernel image and reserved areas: expect 85-100%.
lo=$((MEM_MB * 1024 * 85 / 100)) hi=$((MEM_MB * 1024))
[ -n "$memkb" ] && [ "$memkb" -ge "$lo" ] && [ "$memkb" -le "$hi" ] ||
	fail "MemTotal ${memkb:-?} kB is not within ${lo}-${hi} kB for -m ${MEM_MB}MB"
grep -q '^CONSOLE=ttyS0' "$OUT/console.log" || fail "console is not ttyS0"
grep -q 'Linux version' "$OUT/console.log" || fail "no kernel banner"
[ "${GUEST:-minimal}" != debian ] || grep -q 'Linux version .*-cloud-amd64' "$OUT/console.log" ||
	fail "not the Debian cloud kernel"
# RTC alarm interrupt (IRQ 8) through rtc-cmos: arm it 1 s ahead, wait.
send 'echo +1 > /sys/class/rtc/rtc0/wakealarm; sleep 3; echo "RTCIRQ=$(grep -c . /sys/class/rtc/rtc0/wakealarm) $(grep rtc0 /proc/interrupts | awk "{s=0; for (i = 2; i <= NF; i++) if (\$i ~ /^[0-9]+\$/) s += \$i; print s}")"'
wait_for "$OUT/console.log" '^RTCIRQ=' 120 "$HVMM_PID" || fail "RTC query did not answer"
rtcline=$(grep '^RTCIRQ=' "$OUT/console.log" | tr -d '\r' | head -1)
# the alarm fired: wakealarm is cleared and rtc0 counted interrupts (any CPU)
echo "$rtcline" | grep -qE '^RTCIRQ=0 [1-9][0-9]*$' || fail "RTC alarm interrupt not seen: $rtcline"
send 'poweroff -f'
wait_exit 120 || fail "hvmm did not exit after poweroff"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS after poweroff, expected 0"
log "ok: $nproc CPU(s), MemTotal $memkb kB, poweroff -> exit 0"
