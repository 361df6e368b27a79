#!/bin/bash
# A file system end to end on both storage paths, with the minimal kernel:
# --hv, one VMBus SCSI disk (hv_storvsc: /dev/sda) and one NVMe namespace
# (/dev/nvme0n1). The guest partitions each (busybox fdisk), makes ext4 on
# the partition (Debian's mkfs.ext4, from initrd-tools.img), mounts it,
# writes a file (busybox and mke2fs, ~2.5 MB) and prints its checksum, unmounts (sync)
# and powers off. The host then reads each image's partition table, pulls
# the file out of the ext4 partition with debugfs and compares checksums:
# what the guest wrote and flushed is on the host's disk.
source "$(dirname "$0")/lib.sh"
need_kvm
need_cmd() { command -v "$1" >/dev/null || fail "$1 not found (apt-get install $2)"; }
need_cmd debugfs e2fsprogs
guest_files "${GUEST:-minimal-tools}"
SCSI=$OUT/scsi.img NVME=$OUT/nvme.img
rm -f "$SCSI" "$NVME" && truncate -s 64M "$SCSI" && truncate -s 64M "$NVME"

start_console_vm --hv -k "$KERNEL" -r "$INITRD" -m 512MB --nvme-pci id=nv0 \
	--disk "file:$SCSI" --disk "file:$NVME,on=nv0"
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" || fail "no HVMM-INIT-OK marker"
wait_for "$OUT/console.log" 'root@hvmm-guest' 180 "$HVMM_PID" || fail "no shell prompt"
n=0
for dev in sda:sda1 nvme0n1:nvme0n1p1; do
	disk=${dev%%:*} part=${dev#*:}
	n=$((n + 1))
	send "printf 'o\nn\np\n1\n\n\nw\n' | fdisk /dev/$disk >/dev/null 2>&1; sleep 1; ls /dev/$part && echo PART$n-OK"
	wait_for "$OUT/console.log" "^PART$n-OK" 120 "$HVMM_PID" || fail "partitioning /dev/$disk failed"
	send "/usr/sbin/mkfs.ext4 -q /dev/$part && echo MKFS$n-OK"
	wait_for "$OUT/console.log" "^MKFS$n-OK" 300 "$HVMM_PID" || fail "mkfs.ext4 on /dev/$part failed"
	send "mkdir -p /mnt/$n && mount -t ext4 /dev/$part /mnt/$n && cat /bin/busybox /usr/sbin/mke2fs >/mnt/$n/data.bin && md5sum /mnt/$n/data.bin | sed 's/^/SUM$n=/' && umount /mnt/$n && echo UMOUNT$n-OK"
	wait_for "$OUT/console.log" "^UMOUNT$n-OK" 300 "$HVMM_PID" || fail "writing ext4 on /dev/$part failed"
done
send 'sync; poweroff -f'
wait_exit 120 || fail "hvmm did not exit after poweroff"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS"

n=0
for img in "$SCSI" "$NVME"; do
	n=$((n + 1))
	# The file is the image's busybox and mke2fs, which are the host's.
	want=$(cat /bin/busybox "$(realpath /usr/sbin/mke2fs)" | md5sum | cut -d' ' -f1)
	said=$(tr -d '\r' <"$OUT/console.log" | sed -n "s/^SUM$n=\([0-9a-f]\{32\}\) .*/\1/p" | head -1)
	[ "$said" = "$want" ] || fail "the guest read back ${said:-nothing} from disk $n, expected $want"
	# First MBR entry: type at 450, start LBA at 454, sectors at 458.
	read -r type start count < <(python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(512)
assert b[510:512] == b"\x55\xaa", "no MBR"
t, s, c = b[450], *struct.unpack_from("<II", b, 454)
print(t, s, c)' "$img") || fail "no partition table in $img"
	[ "$type" = 131 ] || fail "partition 1 of $img has type $type, not Linux (0x83)"
	dd if="$img" of="$OUT/part$n.img" bs=512 skip="$start" count="$count" 2>/dev/null
	rm -f "$OUT/data$n.bin"
	debugfs -R "dump /data.bin $OUT/data$n.bin" "$OUT/part$n.img" >/dev/null 2>&1
	[ -s "$OUT/data$n.bin" ] || fail "no /data.bin in the ext4 partition of $img"
	got=$(md5sum <"$OUT/data$n.bin" | cut -d' ' -f1)
	[ "$got" = "$want" ] || fail "$img: /data.bin has md5 $got, the guest wrote $want"
	e2fsck -fn "$OUT/part$n.img" >"$OUT/fsck$n.log" 2>&1 || fail "e2fsck finds errors in $img (see $OUT/fsck$n.log)"
done
log "ok: partitioned, mkfs.ext4, a 2.5 MB file written on storvsc and NVMe; the host finds both files intact"
