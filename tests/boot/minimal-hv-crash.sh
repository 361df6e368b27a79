#!/bin/bash
# The minimal kernel with --hv panics (init exits, hvmm.autorun=panic):
# Linux reports the panic through the Hyper-V crash MSRs, hvmm logs P0-P4
# and the panic text, and --guest-crash-action exit:7 ends hvmm with 7 (the
# guest's own reboot after panic=-1 must not win over the crash).
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files minimal
start_console_vm --hv -k "$KERNEL" -r "$INITRD" -m 512MB -c hvmm.autorun=panic \
	--guest-crash-action exit:7
wait_for "$OUT/console.log" '^HVMM-AUTORUN-PANIC' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-AUTORUN-PANIC marker (see $OUT/console.log)"
wait_exit 120 || fail "hvmm did not exit after the guest panic"
[ "$STATUS" = 7 ] || fail "hvmm exited with $STATUS, expected 7 (--guest-crash-action exit:7)"
grep -q 'hvmm: error: guest crash reported through the Hyper-V crash MSRs: P0=' "$OUT/console.log" ||
	fail "hvmm did not report the crash MSRs"
# The kmsg page (CRASH_CTL bit 62): hvmm prints the panic text from it.
grep -q 'hvmm: error: guest crash message: .*Kernel panic - not syncing: Attempted to kill init' \
	"$OUT/console.log" || fail "hvmm did not print the panic text from the crash message page"
grep -q 'guest crash: exiting with status 7' "$OUT/console.log" ||
	fail "hvmm did not apply --guest-crash-action"
log "ok: panic reported via the crash MSRs, exit 7"
