#!/bin/bash
# VMBus SCSI (storvsp) with the minimal kernel's hv_storvsc: three --disk
# on one controller — a blank writable file, a read-only file of random
# data, and memdiff: over a copy of that data. The guest reads the random
# disk (checksum must match the host's), copies 1 MiB of it onto the blank
# disk with fsync, cannot write the read-only disk, writes the memdiff disk
# and reads its own write back; after power-off the host finds the copy in
# the blank image and the memdiff base unchanged. A fourth LUN is a DVD
# (`dvd`): Linux's sr driver must find a CD-ROM, read the image whole
# (checksum) and be refused a write. At the end the console's `x` (inspect)
# must show those reads, writes and the flush in the disks' counters and
# the SCSI channel open.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files minimal
BLANK=$OUT/blank.img RAND=$OUT/rand.img BASE=$OUT/base.img ISO=$OUT/dvd.iso
rm -f "$BLANK" && truncate -s 16M "$BLANK"
head -c 2M /dev/urandom >"$RAND"   # read whole through a pipe: ring 0 copies crawl on a loaded PVM host
cp "$RAND" "$BASE"
head -c 1M /dev/urandom >"$ISO"     # any data: 512 sectors of 2048 bytes
iso_want=$(md5sum <"$ISO" | cut -d' ' -f1)
want=$(md5sum <"$RAND" | cut -d' ' -f1)
base_before=$(md5sum <"$BASE" | cut -d' ' -f1)

start_console_vm --hv -k "$KERNEL" -r "$INITRD" -m 512MB \
	--disk "file:$BLANK" --disk "$RAND,ro,lun=1" --disk "memdiff:file:$BASE" \
	--disk "file:$ISO,dvd,lun=3"
wait_for "$OUT/console.log" '^HVMM-INIT-OK' 900 "$HVMM_PID" || fail "no HVMM-INIT-OK marker"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
grep -q 'sd 0:0:0:0: \[sd.\] 32768 512-byte logical blocks' "$OUT/console.log" ||
	fail "the blank disk is not LUN 0 with 32768 blocks"
grep -q 'sd 0:0:0:1: \[sd.\] Write Protect is on' "$OUT/console.log" ||
	fail "the read-only disk is not write-protected at LUN 1"
# Device names by LUN (the order of sdX is not guaranteed).
grep -q 'sr 0:0:0:3: \[sr0\] scsi3-mmc drive' "$OUT/console.log" ||
	fail "LUN 3 was not found as a CD-ROM (sr0)"
send 'for l in 0 1 2 3; do echo "LUN$l=$(ls /sys/bus/scsi/devices/0:0:0:$l/block)"; done'
wait_for "$OUT/console.log" '^LUN3=' 120 "$HVMM_PID" || fail "the LUNs were not listed"
grep -q '^LUN2=sd' "$OUT/console.log" || fail "three disk LUNs not found"
grep -q '^LUN3=sr0' "$OUT/console.log" || fail "LUN 3 is not sr0: $(grep '^LUN3=' "$OUT/console.log")"
b=$(sed -n 's/^LUN0=\(sd[a-z]*\).*/\1/p' "$OUT/console.log" | tr -d '\r' | head -1)
r=$(sed -n 's/^LUN1=\(sd[a-z]*\).*/\1/p' "$OUT/console.log" | tr -d '\r' | head -1)
m=$(sed -n 's/^LUN2=\(sd[a-z]*\).*/\1/p' "$OUT/console.log" | tr -d '\r' | head -1)
send "dd if=/dev/$r bs=64k 2>/dev/null | md5sum | sed 's/^/RMD5=/'"
wait_for "$OUT/console.log" '^RMD5=' 300 "$HVMM_PID" || fail "reading the random disk did not finish"
got=$(sed -n 's/^RMD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
[ "$got" = "$want" ] || fail "the guest read $got from the random disk, the host has $want"
send "dd if=/dev/$r of=/dev/$b bs=64k count=16 seek=16 conv=fsync 2>/dev/null; echo COPY=\$?"
wait_for "$OUT/console.log" '^COPY=' 300 "$HVMM_PID" || fail "the copy did not finish"
grep -q '^COPY=0' "$OUT/console.log" || fail "the copy failed: $(grep '^COPY=' "$OUT/console.log")"
send "dd if=/dev/zero of=/dev/$r bs=512 count=1 conv=fsync 2>&1 | tail -1 | sed 's/^/ROW=/'"
wait_for "$OUT/console.log" '^ROW=' 120 "$HVMM_PID" || fail "the read-only write did not return"
grep -q '^ROW=.*Read-only' "$OUT/console.log" ||
	fail "a write to the read-only disk was not refused: $(grep '^ROW=' "$OUT/console.log")"
send "printf MEMDIFF-WRITE-OK | dd of=/dev/$m bs=512 seek=8 conv=fsync 2>/dev/null; echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/$m bs=512 skip=8 count=1 2>/dev/null | head -c 15 | sed 's/^/MDREAD=/'; echo"
wait_for "$OUT/console.log" '^MDREAD=' 120 "$HVMM_PID" || fail "memdiff read-back did not return"
grep -q '^MDREAD=MEMDIFF-WRITE-O' "$OUT/console.log" || fail "memdiff did not keep the guest's write"
send "dd if=/dev/sr0 bs=2048 2>/dev/null | md5sum | sed 's/^/DVDMD5=/'"
wait_for "$OUT/console.log" '^DVDMD5=' 300 "$HVMM_PID" || fail "reading the DVD did not finish"
got=$(sed -n 's/^DVDMD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
[ "$got" = "$iso_want" ] || fail "the guest read $got from the DVD, the host has $iso_want"
send "dd if=/dev/zero of=/dev/sr0 bs=2048 count=1 2>&1 | tail -1 | sed 's/^/DVDW=/'"
wait_for "$OUT/console.log" '^DVDW=' 120 "$HVMM_PID" || fail "the DVD write did not return"
grep -q '^DVDW=.*Read-only' "$OUT/console.log" ||
	fail "a write to the DVD was not refused: $(grep '^DVDW=' "$OUT/console.log")"
# The console's inspect tree (x) reports what the guest did above.
ctrl_q() { printf '\021' >&"$FIFO_FD"; }
xq() { # xq ARGS...: the console's answer to `x ARGS` (waits for its closing brace or error)
	local from=$(($(stat -c %s "$OUT/console.log") + 1)) i
	send "x $*"
	for i in $(seq 60); do
		tail -c +"$from" "$OUT/console.log" | tr -d '\r' | grep -qE '^\}$|^x: ' && break
		sleep 1
	done
	tail -c +"$from" "$OUT/console.log" | tr -d '\r'
}
num() { sed -n "s/^ *$1: \([0-9]*\),\$/\1/p" | head -1; }
ctrl_q
wait_for "$OUT/console.log" 'hvmm> ' 10 "$HVMM_PID" || fail "Ctrl-Q did not open the prompt"
x=$(xq)
grep -q '^    processors: 1,$' <<<"$x" && grep -q '^    storage: {...},$' <<<"$x" &&
	grep -q '^    vmbus: {...},$' <<<"$x" || fail "x: the root is not as expected: $x"
x=$(xq storage/scsi/default/1)
grep -q 'read_only: true' <<<"$x" ||
	fail "x: LUN 1 is not read-only: $x"
[ "$(num bytes_read <<<"$x")" -ge 2097152 ] && [ "$(num writes <<<"$x")" = 0 ] ||
	fail "x: LUN 1 should show >= 2 MiB read and no writes: $x"
x=$(xq storage/scsi/default/0)
[ "$(num bytes_written <<<"$x")" -ge 1048576 ] && [ "$(num flushes <<<"$x")" -ge 1 ] ||
	fail "x: LUN 0 should show the 1 MiB copy and its flush: $x"
x=$(xq -r vmbus/channels)
grep -q 'class: "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"' <<<"$x" &&
	grep -q 'state: "open"' <<<"$x" && grep -q 'write_index: ' <<<"$x" ||
	fail "x: the SCSI channel is not listed open: $x"
x=$(xq nosuch/node)
grep -q "^x: no node 'nosuch/node'" <<<"$x" || fail "x: an unknown path is not reported: $x"
send I
sleep 1
send 'poweroff -f'
wait_exit 120 || fail "hvmm did not exit after poweroff"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS"
copy=$(dd if="$BLANK" bs=64k skip=16 count=16 2>/dev/null | md5sum | cut -d' ' -f1)
src=$(head -c 1M "$RAND" | md5sum | cut -d' ' -f1)
[ "$copy" = "$src" ] || fail "the blank image does not hold the copied megabyte"
[ "$(md5sum <"$BASE" | cut -d' ' -f1)" = "$base_before" ] || fail "the memdiff base changed"
[ "$(md5sum <"$RAND" | cut -d' ' -f1)" = "$want" ] || fail "the read-only image changed"
[ "$(md5sum <"$ISO" | cut -d' ' -f1)" = "$iso_want" ] || fail "the DVD image changed"
log "ok: 3 LUNs, reads match, 1 MiB written and found in the image, ro refused, memdiff base intact; DVD read whole, write refused"
