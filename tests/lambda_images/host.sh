#!/bin/bash
# Host prerequisites: Debian packages (installed only when missing), qemu registered for arm64 programs, and a Docker
# daemon (started only when none answers). The pid of a daemon started here goes to .dockerd.pid so that tests stop
# only that one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docker info >/dev/null 2>&1 && up=1 || up=
missing=
command -v mmdebstrap >/dev/null || missing+=" mmdebstrap"
command -v arch-test >/dev/null || missing+=" arch-test"  # mmdebstrap's check that arm64 programs run
command -v qemu-aarch64-static >/dev/null || missing+=" qemu-user-static"
[ -n "$up" ] || command -v dockerd >/dev/null || missing+=" docker.io"
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# arm64 images run under qemu's user-mode emulation, registered with the kernel's binfmt_misc (flag F: the kernel
# keeps the interpreter open, so it works inside containers too). Without it the arm64 images are skipped, saying so.
binfmt=/proc/sys/fs/binfmt_misc
conf=/usr/lib/binfmt.d/qemu-aarch64.conf  # qemu-user-static's registration line
register_arm64() {
  [ -e $binfmt/register ] || mount -t binfmt_misc binfmt_misc $binfmt 2>/dev/null || return 1
  [ -e $binfmt/qemu-aarch64 ] || cat $conf >$binfmt/register 2>/dev/null || return 1
  [ "$(head -1 $binfmt/qemu-aarch64)" = enabled ]
}
register_arm64 || echo "WARNING: this host cannot run arm64 programs: registering $conf with binfmt_misc failed" \
  "(it needs root and a kernel with binfmt_misc, outside an unprivileged container). The arm64 images are skipped." >&2

[ -n "$up" ] && exit 0
mkdir -p "$here/.cache"
# overlay2 is ~3x faster than vfs; bridge and iptables stay on (build containers need the network,
# sam local needs published ports). Without the userland proxy a published port refuses connections until the
# container listens, so SAM waits for its runtime interface emulator; the proxy accepts at once, and SAM gives up
# after ~0.4 s, before an emulated arm64 emulator listens (~1.3 s here): "No response from invoke container".
setsid dockerd --storage-driver=overlay2 --userland-proxy=false >"$here/.cache/dockerd.log" 2>&1 </dev/null &
echo $! >"$here/.dockerd.pid"
for _ in $(seq 120); do docker info >/dev/null 2>&1 && exit 0; sleep 0.5; done
echo "dockerd did not answer within 60 s; see $here/.cache/dockerd.log" >&2
exit 1
