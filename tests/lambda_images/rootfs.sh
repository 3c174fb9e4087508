#!/bin/bash
# A Debian trixie root filesystem with Python 3.13 (the default Lambda runtime) and make, debootstrapped into $1.
set -euo pipefail
mkdir -p "$(dirname "$1")"
out=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # debootstrap changes directory: use an absolute path
# The machine's own Debian mirror, as apt knows it (either sources format); never a hard-coded host.
mirror() { apt-get indextargets --format '$(LABEL) $(REPO_URI)' 'Created-By: Packages' | awk '$1 == "Debian" {print $2; exit}'; }
url=$(mirror)
[ -n "$url" ] || { apt-get update -qq; url=$(mirror); }
rm -rf "$out.tmp"
# debootstrap's hundreds of progress lines go to a log, shown only when it fails.
debootstrap --variant=minbase --include=python3.13,python3-pip,ca-certificates,make trixie "$out.tmp" "$url" \
  >"$out.log" 2>&1 || { tail -30 "$out.log" >&2; exit 1; }
rm -rf "$out.tmp"/var/cache/apt/archives/*.deb "$out.tmp"/var/lib/apt/lists/*
echo "trixie from $url on $(date -u +%FT%TZ)" >"$out.tmp/.done"   # also an input of the images' hash
rm -rf "$out" && mv "$out.tmp" "$out"
