#!/bin/bash
# minimal-hv.sh's checks with 2 vCPUs (SynIC and timers per VP) and
# --vmbus-max-version 4.1 (hv_vmbus settles on 4.1), plus a second VMBus
# SCSI controller with sub-channels: --vmbus-scsi id=scsi1,sub_channels=2
# and a mem: disk on it. hv_storvsc asks for min(2, nCPUs - 1) = 1
# sub-channel (CREATE_SUB_CHANNELS), so the controller's VMBus device must
# list more than one open channel in sysfs, one of them a sub-channel; the
# guest writes 1 MiB from each CPU (taskset), reads it back uncached and
# checks it, and the sub-channel must have carried traffic.
source "$(dirname "$0")/lib.sh"
need_kvm
guest_files "${GUEST:-minimal}"
NCPU=2
VMBUS_VERSION=4.1
# Controller 1's instance GUID (storvsp: the class GUID with the controller
# number at the end, first byte ^ 0x5a).
SCSI1=ba616383-04a1-4d29-b605-72e200000001
start_console_vm --hv -k "$KERNEL" -r "$INITRD" -p "$NCPU" -m 512MB \
	--vmbus-max-version "$VMBUS_VERSION" \
	--vmbus-scsi id=scsi1,sub_channels=2 --disk mem:64M,on=scsi1
wait_for "$OUT/console.log" '^HVMM-INIT-OK' "${BOOT_TIMEOUT:-900}" "$HVMM_PID" ||
	fail "no HVMM-INIT-OK marker (see $OUT/console.log)"
wait_for "$OUT/console.log" 'root@hvmm-guest' 120 "$HVMM_PID" || fail "no shell prompt"
grep -q 'Hypervisor detected: Microsoft Hyper-V' "$OUT/console.log" ||
	fail "the guest did not detect Hyper-V"
grep -qi 'KVM' <(grep 'Hypervisor detected' "$OUT/console.log") &&
	fail "the guest detected KVM"
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
send 'a=$(cut -d. -f1 /proc/uptime); sleep 2; b=$(cut -d. -f1 /proc/uptime); echo "UPTIME_DELTA=$((b - a))"'
wait_for "$OUT/console.log" '^UPTIME_DELTA=' 120 "$HVMM_PID" || fail "sleep did not return (timer interrupts?)"
delta=$(sed -n 's/^UPTIME_DELTA=\([0-9]*\).*/\1/p' "$OUT/console.log" | head -1)
[ "$delta" -ge 2 ] && [ "$delta" -le 30 ] || fail "2 s of sleep took ${delta}s of guest uptime"
vmbus=$(grep -ao 'hv_vmbus: Vmbus version:[0-9.]*' "$OUT/console.log" | head -1)
[ "$vmbus" = "hv_vmbus: Vmbus version:$VMBUS_VERSION" ] ||
	fail "VMBus: expected version $VMBUS_VERSION, got '${vmbus:-no version}'"
grep -q 'hv_vmbus: Unable to connect' "$OUT/console.log" && fail "hv_vmbus could not connect"

# The SCSI controller's VMBus device, by its instance GUID, and its disk.
send "d=\$(grep -l $SCSI1 /sys/bus/vmbus/devices/*/device_id | head -1); d=\${d%/device_id}; echo \"SCSIDEV=\$d\"; echo \"NCHAN=\$(ls \$d/channels | wc -l)\"; echo \"SUBIDS=\$(cat \$d/channels/*/subchannel_id | tr '\\n' ' ')\"; echo \"SCSIDISK=\$(ls \$d/host*/target*/*:*/block)\""
wait_for "$OUT/console.log" '^SCSIDISK=' 600 "$HVMM_PID" || fail "the SCSI controller query did not answer"
dev=$(sed -n 's/^SCSIDEV=//p' "$OUT/console.log" | tr -d '\r' | head -1)
nchan=$(sed -n 's/^NCHAN=\([0-9]*\).*/\1/p' "$OUT/console.log" | head -1)
subids=$(sed -n 's/^SUBIDS=//p' "$OUT/console.log" | tr -d '\r' | head -1)
disk=$(sed -n 's/^SCSIDISK=\(sd[a-z]*\).*/\1/p' "$OUT/console.log" | tr -d '\r' | head -1)
[ -n "$dev" ] && [ "$dev" != /sys/bus/vmbus/devices/ ] || fail "no VMBus device with instance $SCSI1"
[ "${nchan:-0}" -ge 2 ] || fail "the controller has ${nchan:-no} open channel(s), expected more than 1 (ids: $subids)"
[[ " $subids " == *" 1 "* ]] || fail "no sub-channel 1 among the open channels (ids: $subids)"
[ -n "$disk" ] || fail "no disk on controller scsi1"
# Write 1 MiB from each CPU, drop the caches, read back and compare.
send "cat /bin/busybox /bin/busybox | head -c 2097152 >/tmp/pat; taskset 1 dd if=/tmp/pat of=/dev/$disk bs=64k count=16 conv=fsync 2>/dev/null; taskset 2 dd if=/tmp/pat of=/dev/$disk bs=64k skip=16 seek=16 count=16 conv=fsync 2>/dev/null; echo 3 >/proc/sys/vm/drop_caches; echo \"WMD5=\$(md5sum </tmp/pat | cut -d' ' -f1)\"; echo \"RMD5=\$(taskset 2 dd if=/dev/$disk bs=64k count=32 2>/dev/null | md5sum | cut -d' ' -f1)\""
wait_for "$OUT/console.log" '^RMD5=' 900 "$HVMM_PID" || fail "the disk I/O did not finish"
w=$(sed -n 's/^WMD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
r=$(sed -n 's/^RMD5=\([0-9a-f]*\).*/\1/p' "$OUT/console.log" | head -1)
[ -n "$w" ] && [ "$w" = "$r" ] || fail "read back $r from /dev/$disk, wrote $w"
# Traffic per channel: "subchannel_id interrupts events".
send "for c in $dev/channels/*; do echo \"CHAN=\$(cat \$c/subchannel_id) \$(cat \$c/interrupts) \$(cat \$c/events)\"; done; echo CHAN-END"
wait_for "$OUT/console.log" '^CHAN-END' 600 "$HVMM_PID" || fail "the channel statistics did not answer"
grep '^CHAN=[0-9]' "$OUT/console.log" | tr -d '\r' | while read -r l; do log "channel ${l#CHAN=} (sub-channel, interrupts, events)"; done
grep -qE '^CHAN=[1-9][0-9]* ([1-9][0-9]* [0-9]+|[0-9]+ [1-9][0-9]*)' "$OUT/console.log" ||
	fail "the sub-channel carried no traffic: $(grep '^CHAN=' "$OUT/console.log" | tr -d '\r' | tr '\n' ' ')"

send 'poweroff -f'
wait_exit 120 || fail "hvmm did not exit after poweroff"
[ "$STATUS" = 0 ] || fail "hvmm exited with $STATUS after poweroff, expected 0"
log "ok: $NCPU CPU(s), ${cs#CS=}, ${ce#CE=}, ${vmbus#hv_vmbus: }; scsi1: $nchan channels (ids $subids), /dev/$disk 2 MiB written from both CPUs and read back"
