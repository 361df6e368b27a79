#!/bin/bash
# The minimal kernel and initrd packed into a NATIVE IGVM file by
# `hvmm-igvm build --kernel --initrd --cmdline` and booted with
# `hvmm --igvm`: the file carries the layout of hvmm's direct boot, the
# loader fills its COMMAND_LINE (the build's text, then hvmm's console= and
# -c) and MEMORY_MAP (turned into e820 by the file's stub). The guest must
# reach the shell, see both parts of the command line and the -m RAM, and
# run one command.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files "${GUEST:-minimal}"
TOOL=$BUILD/src/tools/hvmm-igvm
[ -x "$TOOL" ] || fail "$TOOL not built"
"$TOOL" build -o "$OUT/linux.igvm" --kernel "$KERNEL" --initrd "$INITRD" \
	--cmdline "igvm_built=1" || fail "hvmm-igvm build --kernel failed"
"$TOOL" verify "$OUT/linux.igvm" >/dev/null || fail "the built file does not verify"
trap stop_vm EXIT
start_console_vm --igvm "$OUT/linux.igvm" -m 512MB -c igvm_host=1
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" || fail "no HVMM-INIT-OK marker"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
send 'echo CMDLINE=$(cat /proc/cmdline); echo MEMK=$(sed -n "s/^MemTotal: *\([0-9]*\).*/\1/p" /proc/meminfo); echo SUM-$((40+2))'
wait_for "$OUT/console.log" '^SUM-42' 120 "$HVMM_PID" || fail "the command did not run"
line=$(grep -a '^CMDLINE=' "$OUT/console.log" | tail -1 | tr -d '\r')
case "$line" in
*igvm_built=1*igvm_host=1*) log "ok: $line" ;;
*) fail "the kernel command line lacks the build's or the host's part: $line" ;;
esac
memk=$(grep -a '^MEMK=' "$OUT/console.log" | tail -1 | tr -dc '0-9')
# 512 MiB of RAM less the kernel's own reservations: more than 400 MiB, at most 512.
[ -n "$memk" ] && [ "$memk" -gt 409600 ] && [ "$memk" -le 524288 ] ||
	fail "MemTotal ${memk:-?} kB does not match -m 512MB (the e820 from MEMORY_MAP)"
log "ok: MemTotal $memk kB"
send 'poweroff -f'
wait_exit 120 || fail "the VM did not power off"
[ "$STATUS" = 0 ] || fail "hvmm exited $STATUS"
log "ok: booted from IGVM, powered off"
