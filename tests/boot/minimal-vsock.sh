#!/bin/bash
# The hybrid vsock relay (--vmbus-vsock-path) with the minimal kernel, --hv
# and the tools initramfs (Debian's socat): the guest runs
# `socat VSOCK-LISTEN:5000,fork PIPE` (an echo server over hv_sock), and the
# host (tests/boot/vsock_client.py) checks
#  - CONNECT 5000 -> OK, 1 MiB and then 16 MiB of random bytes echoed
#    intact (each way through the guest); the rates are logged;
#  - a guest connect to host port 6000 reaches a listener on PATH_6000 and
#    delivers a file whose MD5 the guest prints;
#  - 64 connections at once, each echoing 1 KiB;
#  - a garbage request is refused while another connection is relayed;
#  - CONNECT to a port nobody listens on is closed without OK, and a guest
#    connect to a host port nobody listens on fails.
source "$(dirname "$0")/lib.sh"
# About 12 minutes on a quiet PVM host (boot, then ~100 KiB/s each way
# through the guest's emulated ring 0), ~30 on a loaded one.
need_kvm
command -v python3 >/dev/null || fail "python3 is needed (scripts/install-deps.sh)"
guest_files minimal-tools
SOCK=$OUT/vsock.sock
CLIENT="python3 $ROOT/tests/boot/vsock_client.py"
rm -f "$SOCK" "$SOCK"_*
start_console_vm --hv -k "$KERNEL" -r "$INITRD" -p 1 -m 512MB --vmbus-vsock-path "$SOCK"
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-INIT-OK marker (see $OUT/console.log)"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
[ -S "$SOCK" ] || fail "hvmm did not create the socket $SOCK"
mode=$(stat -c %a "$SOCK")
[ "$mode" = 600 ] || fail "the socket's mode is $mode, expected 600"
send 'socat VSOCK-LISTEN:5000,fork,backlog=128 PIPE & sleep 3; echo VSOCK-LISTENER-UP'
wait_for "$OUT/console.log" '^VSOCK-LISTENER-UP' 120 "$HVMM_PID" ||
	fail "the guest's socat listener did not start"
# socat may need a while to listen on a loaded host: CONNECT until it answers.
r=$($CLIENT ready "$SOCK" 5000 300) || fail "$r"
log "$r"

# Host to guest and back: 1 MiB, then 16 MiB (about 4 minutes at the
# ~70 KiB/s a loaded PVM host gives; seconds on hardware KVM).
r=$($CLIENT echo "$SOCK" 5000 1048576) || fail "1 MiB echo: $r"
log "$r"
r=$($CLIENT echo "$SOCK" 5000 16777216) || fail "16 MiB echo: $r"
log "$r"

# Guest to host: a listener on PATH_6000 receives a file from the guest.
LIB=/lib/x86_64-linux-gnu/libc.so.6
$CLIENT listen "${SOCK}_6000" "$OUT/g2h.bin" 600 >"$OUT/listen.log" 2>&1 &
LPID=$!
wait_for "$OUT/listen.log" '^LISTENING' 30 || fail "host listener did not start"
send "socat -u OPEN:$LIB VSOCK-CONNECT:2:6000; echo G2H-RC=\$?; md5sum $LIB | sed 's/^/G2H-MD5=/'"
wait_for "$OUT/console.log" '^G2H-MD5=' 600 "$HVMM_PID" || fail "the guest's send did not finish"
wait "$LPID" || fail "host listener: $(cat "$OUT/listen.log")"
log "$(tail -1 "$OUT/listen.log")"
grep -aq '^G2H-RC=0' "$OUT/console.log" || fail "the guest's socat failed (see $OUT/console.log)"
gmd5=$(sed -n 's/^G2H-MD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
hmd5=$(md5sum <"$OUT/g2h.bin" | cut -d' ' -f1)
[ -n "$gmd5" ] && [ "$gmd5" = "$hmd5" ] ||
	fail "guest -> host file differs: guest md5 $gmd5, host received $hmd5 ($(stat -c %s "$OUT/g2h.bin") bytes)"

# 64 connections at once.
r=$($CLIENT many "$SOCK" 5000 64 1024) || fail "64 connections: $r"
log "$r"

# Garbage instead of CONNECT, while another connection works.
r=$($CLIENT garbage "$SOCK" 5000) || fail "garbage: $r"
log "$r"

# No listener on either side.
r=$($CLIENT refused "$SOCK" 5999 90) || fail "no guest listener: $r"
log "$r"
send 'socat -u - VSOCK-CONNECT:2:6001 </dev/null; echo NOHOST-RC=$?'
wait_for "$OUT/console.log" '^NOHOST-RC=' 120 "$HVMM_PID" || fail "the guest's connect did not end"
grep -aq '^NOHOST-RC=0' "$OUT/console.log" &&
	fail "a guest connect to a host port without listener succeeded"

# The relay still serves after all that.
r=$($CLIENT echo "$SOCK" 5000 65536) || fail "echo after the rest: $r"
kill -0 "$HVMM_PID" 2>/dev/null || fail "hvmm exited"
grep -aE 'hvmm: (error|warning)' "$OUT/console.log" | grep -v 'guest' &&
	fail "hvmm logged errors (see $OUT/console.log)"
log "ok: vsock relay: host->guest echo, guest->host PATH_6000, 64 at once, garbage refused"
