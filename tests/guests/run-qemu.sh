#!/bin/bash
# Boot one test guest under QEMU through its PVH entry and report whether it
# passed. The guest's serial output goes to stdout as it runs.
#
# usage: run-qemu.sh <guest.elf> [guest command line...]
# env:   QEMU (default qemu-system-x86_64), QEMU_MACHINE (default microvm),
#        QEMU_TIMEOUT in seconds (default 300), QEMU_EXTRA (more options)
# exit:  0 passed, 1 a test failed, 2 fatal guest exception,
#        3 no result (timeout, QEMU error, guest hung)
set -u -o pipefail

if [ $# -lt 1 ]; then
	echo "usage: $0 <guest.elf> [command line]" >&2
	exit 3
fi
elf=$1
shift
qemu=${QEMU:-qemu-system-x86_64}
machine=${QEMU_MACHINE:-microvm,x-option-roms=off,pit=on,rtc=on,isa-serial=on}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# shellcheck disable=SC2086 # QEMU_EXTRA is a list of options
timeout "${QEMU_TIMEOUT:-300}" "$qemu" -enable-kvm -cpu host,-arch-capabilities \
	-M "$machine" -nodefaults -no-user-config -nographic -serial stdio \
	-device isa-debug-exit,iobase=0xf4,iosize=4 ${QEMU_EXTRA:-} \
	-kernel "$elf" -append "$*" | tee "$log"
rc=${PIPESTATUS[0]}

# isa-debug-exit: QEMU exits with (value << 1) | 1; the guest writes 0/1/2.
case $rc in
1) status=0 ;;
3) status=1 ;;
5) status=2 ;;
*) echo "run-qemu: no guest result (QEMU exit status $rc)" >&2; exit 3 ;;
esac
if ! grep -q '^GUEST-RESULT: ' "$log"; then
	echo "run-qemu: guest printed no GUEST-RESULT line" >&2
	exit 3
fi
exit $status
