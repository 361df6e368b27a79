#!/bin/bash
# COM1 on file= carries the whole boot log; boots the uncompressed ELF
# vmlinux (the other path of the loader); the guest powers itself off.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files minimal
VMLINUX=$CACHE/guest/minimal/vmlinux
[ -f "$VMLINUX" ] || fail "no $VMLINUX"
timeout 900 "$HVMM" -k "$VMLINUX" -r "$INITRD" -m 256MB --com1 "file=$OUT/com1.log" \
	-c console=ttyS0 -c hvmm.autorun=poweroff >"$OUT/hvmm.log" 2>&1
st=$?
[ "$st" = 0 ] || fail "hvmm exited $st (log $OUT/hvmm.log)"
grep -q 'Linux version' "$OUT/com1.log" || fail "no kernel banner in the file"
grep -q '^HVMM-INIT-OK' "$OUT/com1.log" || fail "no /init marker in the file"
grep -q '^HVMM-AUTORUN-DONE' "$OUT/com1.log" || fail "no autorun marker"
log "ok: $(wc -c <"$OUT/com1.log") bytes of console output in the file"
