#!/bin/bash
# Host prerequisites: Debian packages (installed only when missing) and a Docker daemon (started only when none
# answers). The pid of a daemon started here goes to .dockerd.pid so that tests stop only that one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docker info >/dev/null 2>&1 && up=1 || up=
missing=
command -v debootstrap >/dev/null || missing+=" debootstrap"
[ -n "$up" ] || command -v dockerd >/dev/null || missing+=" docker.io"
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
[ -n "$up" ] && exit 0
mkdir -p "$here/.cache"
# overlay2 is ~3x faster than vfs; bridge and iptables stay on (build containers need the network,
# sam local needs published ports).
setsid dockerd --storage-driver=overlay2 >"$here/.cache/dockerd.log" 2>&1 </dev/null &
echo $! >"$here/.dockerd.pid"
for _ in $(seq 120); do docker info >/dev/null 2>&1 && exit 0; sleep 0.5; done
echo "dockerd did not answer within 60 s; see $here/.cache/dockerd.log" >&2
exit 1
