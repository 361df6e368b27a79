#!/bin/bash
# COM1 on listen=PATH (Unix socket; or listen=tcp:127.0.0.1:PORT with
# TRANSPORT=tcp) with the shell on it: output before the
# client connects is replayed, input reaches the guest, a client can leave and
# another connect, and the guest's reboot reaches --guest-reset-action.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files minimal
if [ "${TRANSPORT:-unix}" = tcp ]; then
	PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
	SOCK=tcp:127.0.0.1:$PORT
else
	SOCK=$OUT/com1.sock
	rm -f "$SOCK"
fi
timeout 900 "$HVMM" -k "$KERNEL" -r "$INITRD" -m 256MB --com1 "listen=$SOCK" \
	-c console=ttyS0 --guest-reset-action exit:5 >"$OUT/hvmm.log" 2>&1 &
pid=$!
sleep 2
python3 "$(dirname "$0")/serial_client.py" "$SOCK" "$OUT/com1.log" \
	--expect 'Linux version' --expect 'HVMM-INIT-OK' --expect 'root@hvmm-guest' \
	--send 'echo SUM=$((40+2))' --expect 'SUM=42' \
	--reconnect --send 'echo AGAIN=$((6*7))' --expect 'AGAIN=42' \
	--send 'reboot -f' --eof || fail "serial session failed (log $OUT/com1.log)"
wait $pid
st=$?
[ "$st" = 5 ] || fail "hvmm exited $st after the guest's reboot, expected 5"
log "ok: listen=$SOCK carried output and input; reboot -> exit 5"
