#!/bin/bash
# Build one Lambda-like image from the cached rootfs: ./image.sh runtime|build (env AWSLAMBDARIC, BUILDERS, PYTHON).
# Skipped when every tag already carries the label "lambda-images.inputs" equal to the hash of its inputs:
# this script, the rootfs stamp, the host's local CA certificates and the image's own inputs.
set -euo pipefail
cd "$(dirname "$0")"
kind=$1 rootfs=.cache/rootfs stage=.cache/$kind key=lambda-images.inputs
cas=/usr/local/share/ca-certificates  # CAs this host added (e.g. a TLS-inspecting proxy's): images trust them too
env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
case $kind in
  runtime)  # what `sam local` starts: SAM adds its runtime interface emulator and the layers (with /bin/sh) on top
    tags="public.ecr.aws/lambda/python:3.13 public.ecr.aws/lambda/python:3.13-x86_64"
    inputs="$AWSLAMBDARIC $(cat bootstrap)"
    env+=(TZ=:/etc/localtime LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime
          PYTHONPATH=/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime)
    setup='mkdir -p /var/task && cp -r /stage/runtime /var/runtime && python3.13 -m compileall -q /var/runtime' ;;
  build)  # what `sam build --use-container` starts: SAM runs `lambda-builders` in it, which may run make and pip
    tags="public.ecr.aws/sam/build-python3.13:latest-x86_64 public.ecr.aws/sam/build-python3.13:latest"
    inputs="$BUILDERS $("$PYTHON" pip_conf.py)"
    env+=(PIP_ROOT_USER_ACTION=ignore)  # builds run as root in a throwaway container
    setup='rm -f /usr/lib/python3*/EXTERNALLY-MANAGED && cp /stage/pip.conf /etc/pip.conf && ln -sf python3 /usr/bin/python
           python3.13 -m pip install -q --no-cache-dir "$BUILDERS"' ;;
  *) echo "usage: $0 runtime|build" >&2; exit 2 ;;
esac
hash=$({ echo "$inputs"; cat "$0" $rootfs/.done; find $cas -type f 2>/dev/null | sort | xargs -r cat; } | sha256sum | cut -c1-16)
label() { docker image inspect -f "{{index .Config.Labels \"$key\"}}" "$1" 2>/dev/null || true; }
current=yes; for tag in $tags; do [ "$(label "$tag")" = "$hash" ] || current=; done
[ -n "$current" ] && { echo "$kind image is up to date: $tags"; exit 0; }

# The rootfs as a base image (re-imported only when the rootfs changed).
publish() {  # docker import stdin as the images "$1" (tags; options ${@:2}), then drop the image they replace
  local first=${1%% *} old tag; old=$(docker image inspect -f '{{.Id}}' $first 2>/dev/null || true)
  docker import "${@:2}" - $first >/dev/null
  for tag in $1; do docker tag $first $tag; done
  [ -z "$old" ] || docker rmi $old >/dev/null 2>&1 || true
}
base=lambda-images/base:trixie rootfs_hash=$(sha256sum <$rootfs/.done | cut -c1-16)
[ "$(label $base)" = "$rootfs_hash" ] || tar -C $rootfs -c . | publish $base -c "LABEL $key=$rootfs_hash"

# Staged inputs, copied into a container that sets the image up; its filesystem becomes the image (one layer).
rm -rf $stage; mkdir -p $stage/ca; if [ -d $cas ]; then cp -r $cas/. $stage/ca/; fi
case $kind in
  runtime) "$PYTHON" -m pip install -qq --target $stage/runtime --implementation cp --python-version 3.13 \
             --platform manylinux_2_17_x86_64 --platform manylinux_2_34_x86_64 --only-binary=:all: "$AWSLAMBDARIC"
           cp bootstrap $stage/runtime/ ;;
  build) "$PYTHON" pip_conf.py >$stage/pip.conf ;;
esac
ctr=lambda-images-$kind-$$
trap 'docker rm -f $ctr >/dev/null 2>&1 || true' EXIT
docker create --name $ctr -e BUILDERS -e PIP_ROOT_USER_ACTION=ignore $base sh -euc "
  cp -r /stage/ca/. /usr/local/share/ca-certificates/ && update-ca-certificates >/dev/null 2>&1  # (it warns about the bundle itself)
  $setup
  rm -rf /stage /root/.cache" >/dev/null
docker cp $stage $ctr:/stage
docker start -a $ctr
changes=(-c "WORKDIR /var/task" -c "LABEL $key=$hash")
for e in "${env[@]}"; do changes+=(-c "ENV $e"); done
docker export $ctr | publish "$tags" "${changes[@]}"
# SAM caches the runtime image plus its emulator as "rapid" images: drop them so that SAM rebuilds them on this one.
if [ $kind = runtime ]; then
  docker images --format '{{.Repository}}:{{.Tag}}' | { grep -E \
    '^(public\.ecr\.aws/lambda/python:3\.13-rapid|samcli/lambda-python:3\.13)' || true; } | xargs -r docker rmi -f >/dev/null
fi
echo "$kind image built: $tags"
