#!/bin/bash
# NVMe on PCI with the minimal kernel's built-in nvme driver (no --hv): one
# controller with three namespaces — a blank file, a read-only file of
# random data, and mem:. The guest finds the PCI function and nvme0n1-3,
# reads the random namespace (checksum must match the host's), copies 1 MiB
# of it to the blank one with fsync (flush), cannot write the read-only one,
# and after power-off the host finds the copy in the blank image.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files minimal
BLANK=$OUT/blank.img RAND=$OUT/rand.img
rm -f "$BLANK" && truncate -s 16M "$BLANK"
head -c 8M /dev/urandom >"$RAND"
want=$(md5sum <"$RAND" | cut -d' ' -f1)

start_console_vm -k "$KERNEL" -r "$INITRD" -m 512MB --nvme-pci id=nv0 \
	--disk "file:$BLANK,on=nv0" --disk "$RAND,ro,on=nv0,nsid=2" --disk mem:4M,on=nv0
wait_for "$OUT/console.log" '^HVMM-INIT-OK' 900 "$HVMM_PID" || fail "no HVMM-INIT-OK marker"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
grep -q 'pci 0000:00:01.0: \[1414:b111\] type 00 class 0x010802' "$OUT/console.log" ||
	fail "the NVMe PCI function was not enumerated"
send 'echo "NS=$(ls /sys/block | grep -c nvme0n) S1=$(cat /sys/block/nvme0n1/size) S3=$(cat /sys/block/nvme0n3/size) RO2=$(cat /sys/block/nvme0n2/ro)"'
wait_for "$OUT/console.log" '^NS=' 120 "$HVMM_PID" || fail "namespace query did not answer"
line=$(grep '^NS=' "$OUT/console.log" | tr -d '\r' | head -1)
[ "$line" = "NS=3 S1=32768 S3=8192 RO2=1" ] || fail "namespaces: '$line'"
send "dd if=/dev/nvme0n2 bs=64k 2>/dev/null | md5sum | sed 's/^/RMD5=/'"
wait_for "$OUT/console.log" '^RMD5=' 300 "$HVMM_PID" || fail "reading the random namespace did not finish"
got=$(sed -n 's/^RMD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
[ "$got" = "$want" ] || fail "the guest read $got, the host has $want"
send "dd if=/dev/nvme0n2 of=/dev/nvme0n1 bs=64k count=16 seek=16 conv=fsync 2>/dev/null; echo COPY=\$?"
wait_for "$OUT/console.log" '^COPY=' 300 "$HVMM_PID" || fail "the copy did not finish"
grep -q '^COPY=0' "$OUT/console.log" || fail "the copy failed"
send "dd if=/dev/zero of=/dev/nvme0n2 bs=512 count=1 conv=fsync 2>&1 | tail -1 | sed 's/^/ROW=/'"
wait_for "$OUT/console.log" '^ROW=' 120 "$HVMM_PID" || fail "the read-only write did not return"
# Refused at open (EROFS) or at the first write (nothing written): the
# host image is checked unchanged below either way.
grep -qE '^ROW=(.*Read-only|0\+0 records out)' "$OUT/console.log" ||
	fail "a write to the read-only namespace was not refused: $(grep '^ROW=' "$OUT/console.log")"
send 'poweroff -f'
wait_exit 120 || fail "hvmm did not exit after poweroff"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS"
copy=$(dd if="$BLANK" bs=64k skip=16 count=16 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$copy" = "$(head -c 1M "$RAND" | md5sum | cut -d' ' -f1)" ] || fail "the copy is not in the image"
[ "$(md5sum <"$RAND" | cut -d' ' -f1)" = "$want" ] || fail "the read-only image changed"
log "ok: PCI function, 3 namespaces, reads match, 1 MiB written and found, ro refused"
