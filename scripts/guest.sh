#!/usr/bin/env bash
# guest.sh: prepare the guests hvmm boots (the README quick start runs this).
#
#   scripts/guest.sh [debian|minimal|all]      (default: all)
#
# debian:  Debian's cloud kernel + initramfs with the Hyper-V modules
#          (mkguest.sh, a download, seconds).
# minimal: hvmm's small kernel built from linux-source-6.1 + initramfs
#          (mkkernel.sh; the first build takes several minutes).
# Both are cached under $HVMM_CACHE (default .cache/) and only rebuilt when
# their inputs change.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

which=${1:-all}
[[ $# -le 1 ]] || die "usage: $PROG [debian|minimal|all]"
case $which in
debian) steps=(mkguest.sh) ;;
minimal) steps=(mkkernel.sh) ;;
all) steps=(mkguest.sh mkkernel.sh) ;;
*) die "unknown guest '$which' (usage: $PROG [debian|minimal|all])" ;;
esac

for step in "${steps[@]}"; do
    "$ROOT/scripts/$step"
done
echo "guests are in $CACHE/guest"
