#!/bin/bash
# Bad user input: one line on stderr naming the problem, exit status 2, no
# crash. Needs no /dev/kvm: hvmm rejects the input before creating a VM.
source "$(dirname "$0")/lib.sh"
G=$BUILD/tests/guests/hello.elf
rc=0
expect_err() { hvmm_one_error "$@" || rc=1; } # [-s STATUS] regex args...
printf 'garbage' >"$OUT/garbage.bin"
head -c 4096 /dev/urandom >"$OUT/random.bin"
expect_err "unknown option '--bogus'" -k "$G" --bogus
expect_err "invalid --memory '12XB'" -k "$G" -m 12XB
expect_err "invalid --processors '0'" -k "$G" -p 0
expect_err "needs a value" -k
expect_err "no guest to boot" -m 1GB
expect_err "cannot read kernel '/nonexistent'" -k /nonexistent
expect_err "cannot read kernel '/tmp': not a regular file" -k /tmp
expect_err "cannot read initrd" -k "$G" -r /nonexistent
expect_err "invalid --com2" -k "$G" --com2 bogus
expect_err "invalid --com1: .*port" -k "$G" --com1 listen=tcp:127.0.0.1
expect_err "invalid --com3" -k "$G" --com3 file=
expect_err "only one serial port can use 'console'" -k "$G" --com1 console --com2 console
expect_err "invalid --guest-crash-action 'boom'" -k "$G" --guest-crash-action boom
# Backends that cannot be opened: before any VM exists, so no /dev/kvm needed.
expect_err "serial file=/nonexistent/dir/f" -k "$G" --com2 file=/nonexistent/dir/f
expect_err "serial listen=/nonexistent/dir/s" -k "$G" --com2 listen=/nonexistent/dir/s
DISPLAY= WAYLAND_DISPLAY= expect_err "no graphical display" -k "$G" --com2 term,name=T
# Disks are opened before any VM exists, and a bad one stops hvmm.
head -c 1000 /dev/zero >"$OUT/odd.img"
expect_err "cannot open disk '/nonexistent/d.img'" -k "$G" --hv --disk /nonexistent/d.img
expect_err "multiple of 512" -k "$G" --hv --disk "file:$OUT/odd.img"
expect_err "has no disks" -k "$G" --nvme-pci id=nv0
expect_err "LUN 1 is taken" -k "$G" --hv --disk mem:1M,lun=1 --disk mem:1M,lun=1
# VMBus SCSI controllers (--vmbus-scsi) and disk placement with on=.
expect_err "on=zz names no --nvme-pci or --vmbus-scsi controller" -k "$G" --hv --disk mem:1M,on=zz
expect_err "invalid --vmbus-scsi 'sub_channels=2': expected id=NAME" -k "$G" --hv --vmbus-scsi sub_channels=2
expect_err "invalid --vmbus-scsi 'id=s,queues=2'" -k "$G" --hv --vmbus-scsi id=s,queues=2
expect_err "sub_channels must be 0..63" -k "$G" --hv --vmbus-scsi id=s,sub_channels=64
expect_err "--vmbus-scsi id=s given twice" -k "$G" --hv --vmbus-scsi id=s --vmbus-scsi id=s
expect_err "controller id c is both a --vmbus-scsi and an --nvme-pci" -k "$G" --hv --vmbus-scsi id=c --nvme-pci id=c
expect_err "LUN 2 is taken on s" -k "$G" --hv --vmbus-scsi id=s --disk mem:1M,on=s,lun=2 --disk mem:1M,on=s,lun=2
expect_err "lun=64 is out of range" -k "$G" --hv --vmbus-scsi id=s --disk mem:1M,on=s,lun=64
expect_err "lun= goes with a SCSI controller; n is an --nvme-pci" -k "$G" --nvme-pci id=n --disk mem:1M,on=n,lun=1
expect_err "nsid= goes with on=NVME-ID" -k "$G" --hv --vmbus-scsi id=s --disk mem:1M,on=s,nsid=1
expect_err "--vmbus-scsi needs --hv and VMBus" -k "$G" --vmbus-scsi id=s
expect_err "vtl2 \(a controller for VTL2\) is not supported yet" -k "$G" --hv --vmbus-scsi id=s,vtl2
expect_err "invalid --scsi-sub-channels '99'" -k "$G" --hv --scsi-sub-channels 99
# Networking: needs --hv; a missing tap or a taken forward port stops hvmm at start.
expect_err "--nic and --net need --hv" -k "$G" --nic
expect_err "uh: \(a NIC for VTL2\) is not supported yet" -k "$G" --hv --net uh:consomme
expect_err "invalid --net 'consomme:10.0.0.0/33'" -k "$G" --hv --net consomme:10.0.0.0/33
expect_err "tap:hvmm-nope0: no such interface" -k "$G" --hv --net tap:hvmm-nope0
# The hybrid vsock relay needs --hv; VTL2's is parsed and refused.
expect_err "--vmbus-vsock-path needs --hv" -k "$G" --vsock-path "$OUT/v.sock"
expect_err "--vtl2-vsock-path \(vsock for VTL2\) is not supported yet" -k "$G" --hv --vtl2-vsock-path "$OUT/v.sock"
expect_err "--vmbus-vtl2-vsock-path \(vsock for VTL2\) is not supported yet" -k "$G" --hv --vmbus-vtl2-vsock-path "$OUT/v.sock"
expect_err "--vtl2 needs --hv and --igvm" -k "$G" --hv --vtl2
expect_err "--vtl2 needs --hv and --igvm" --igvm "$OUT/garbage.bin" --vtl2
command -v python3 >/dev/null || fail "python3 not found (scripts/install-deps.sh installs it)"
{
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(120)' >"$OUT/port" &
	busy=$!
	for _ in $(seq 150); do [ -s "$OUT/port" ] && break; sleep 0.2; done
	[ -s "$OUT/port" ] || fail "the test's listening socket did not start in 30 s"
	expect_err "cannot forward host port tcp:127.0.0.1:$(cat "$OUT/port"): Address already in use" \
		-k "$G" --hv --net "consomme,hostfwd=tcp:127.0.0.1:$(cat "$OUT/port")-:80"
	kill "$busy"
}
if [ -c /dev/kvm ]; then
	expect_err "neither a bzImage nor" -k "$OUT/garbage.bin" --com1 none
	expect_err "neither a bzImage nor" -k "$OUT/random.bin" --com1 none
	expect_err "initrd: unrecognised data" -k "$G" -r "$OUT/random.bin" --com1 none
	# A vsock path that cannot be bound: one line when the VM is built, exit 1.
	expect_err -s 1 "vsock-path '/nonexistent/dir/s': cannot listen" \
		-k "$G" --hv --com1 none --vsock-path /nonexistent/dir/s
	if [ -f "$CACHE/guest/minimal/vmlinux" ]; then
		expect_err "outside guest RAM" -k "$CACHE/guest/minimal/vmlinux" -m 8MB --com1 none
	fi
fi
[ "$rc" = 0 ] || fail "some bad inputs were not rejected as expected (FAIL lines above)"
grep -q -- '--guest-crash-action' <<<"$("$HVMM" --help)" || fail "--help lacks flags"
"$HVMM" --version | grep -q '^hvmm ' || fail "--version"
log "ok: all bad inputs rejected"
