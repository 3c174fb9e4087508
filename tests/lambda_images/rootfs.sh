#!/bin/bash
# A minimal Debian root filesystem as a tarball: ./rootfs.sh SUITE ARCH OUT.tar PACKAGE...
# (e.g. trixie arm64 .cache/x.tar python3.13 python3-pip ca-certificates make). mmdebstrap unpacks with the host's
# tools and runs only the packages' own setup inside, under qemu for arm64; QEMU_CPU comes from the caller.
set -euo pipefail
suite=$1 arch=$2 out=$3; shift 3
# The machine's own Debian mirror, as apt knows it (either sources format); never a hard-coded host.
mirror() { apt-get indextargets --format '$(LABEL) $(REPO_URI)' 'Created-By: Packages' | awk '$1 == "Debian" {print $2; exit}'; }
url=$(mirror)
[ -n "$url" ] || { apt-get update -qq; url=$(mirror); }
# mmdebstrap's progress goes to a log, shown only when it fails. The archive reached may be a dated copy whose
# Release files' Valid-Until has passed (their signatures are still checked), as debootstrap never minded.
log=$out.log
mmdebstrap --mode=root --format=tar --variant=minbase --arch="$arch" --include="$(IFS=,; echo "$*")" \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  "$suite" "$out.tmp" "$url" >"$log" 2>&1 || { tail -30 "$log" >&2; rm -f "$out.tmp"; exit 1; }
mv "$out.tmp" "$out"
