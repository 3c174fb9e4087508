#!/bin/bash
# Build one Lambda-like image under the name SAM looks for: ./image.sh runtime|build VERSION-ARCH
# (env AWSLAMBDARIC, BUILDERS, PYTHON). E.g. `./image.sh runtime 3.13-arm64` makes public.ecr.aws/lambda/python:3.13-arm64
# (what `sam local` starts) and `./image.sh build 3.13-arm64` public.ecr.aws/sam/build-python3.13:latest-arm64 (what
# `sam build --use-container` starts).
# Skipped when every tag already carries the label "lambda-images.inputs" equal to the hash of its inputs: this
# script, its Dockerfile, rootfs.sh, the host's local CA certificates, the Python it copies in (3.12) and its own
# inputs. Its Debian base is bootstrapped only when that base image is missing or its recipe changed.
set -euo pipefail
cd "$(dirname "$0")"
kind=$1 pair=$2 version=${2%-*} arch=${2#*-} key=lambda-images.inputs
cas=/usr/local/share/ca-certificates  # CAs this host added (e.g. a TLS-inspecting proxy's): images trust them too
mkdir -p .cache
skip() { [ "$kind" = build ] || echo "$*"; exit 0; }  # why a pair gets no images, said once

# Where each runtime's Python comes from. Debian's trixie has python3.13 and forky python3.14. No Debian suite has
# python3.12: its images copy this machine's own CPython 3.12 (pyenv's, built for this host) into /var/lang, where
# Lambda keeps its Python, over trixie's libraries; there is none for arm64.
lang= lang_id=
case $version in
  3.13) suite=trixie packages=python3.13 ;;
  3.14) suite=forky packages=python3.14 ;;
  3.12) suite=trixie packages=python3.13
        if [ "$arch" = arm64 ]; then
          skip "python3.12 arm64: no images. No faithful Python 3.12 for arm64 installs here: no Debian suite has" \
               "python3.12 and this machine's (pyenv's) is built for $(uname -m). Such projects are rendered and" \
               "built (sam build), not run."
        fi
        bin=$(cd ../.. && "$PYTHON" -c 'from tools.runtime_python import python_bin_dir; print(python_bin_dir("3.12") or "")')
        [ -n "$bin" ] || skip "python3.12 x86_64: no images: no Python 3.12 on this machine (pyenv or PATH)"
        lang=$(cd "$bin/.." && pwd) lang_id="$lang $("$bin/python3.12" -VV)" ;;
  *) echo "usage: $0 runtime|build 3.12-x86_64|3.13-x86_64|3.13-arm64|3.14-x86_64|3.14-arm64" >&2; exit 2 ;;
esac
packages+=" python3-pip ca-certificates make"
case $arch in
  x86_64) debian_arch=amd64 ;;
  arm64) debian_arch=arm64
         if [ "$(head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null)" != enabled ]; then
           skip "python$version arm64: no images: this host cannot run arm64 programs (qemu-aarch64 is not" \
                "registered with binfmt_misc; see host.sh's message above)"
         fi
         # qemu's default CPU emulates pointer authentication, which every Debian arm64 function uses, ~25x slower
         # than a Neoverse N1: Graviton2, the CPU that runs Lambda's arm64. For the bootstrap and in every image.
         export QEMU_CPU=neoverse-n1 ;;
  *) echo "usage: $0 runtime|build VERSION-x86_64|VERSION-arm64" >&2; exit 2 ;;
esac
platform=linux/${debian_arch}

label() { docker image inspect -f "{{index .Config.Labels \"$1\"}}" "$2" 2>/dev/null || true; }
build() {  # build CONTEXT TAG...: docker build for $platform; its output goes to CONTEXT.log, shown on failure
  local context=$1 old tag_args=(); old=$(docker image inspect -f '{{.Id}}' "$2" 2>/dev/null || true)
  for tag in "${@:2}"; do tag_args+=(-t "$tag"); done
  # The classic builder, as SAM uses it: BuildKit is not in every Docker engine this runs on.
  DOCKER_BUILDKIT=0 docker build --force-rm --platform $platform "${tag_args[@]}" "$context" >"$context.log" 2>&1 ||
    { tail -30 "$context.log" >&2; exit 1; }
  # Drop the image these tags named before (it fails, harmlessly, while other images are built on it).
  [ -z "$old" ] || [ "$old" = "$(docker image inspect -f '{{.Id}}' "$2")" ] || docker rmi "$old" >/dev/null 2>&1 || true
}

# The Debian base: the rootfs as an image of its own, made once per recipe. Two pairs may share one: a lock.
base=lambda-images/base:$suite-$debian_arch base_dir=.cache/base-$suite-$debian_arch
base_dockerfile="FROM scratch
ADD rootfs.tar /"
[ $arch = x86_64 ] || base_dockerfile+=$'\n'"ENV QEMU_CPU=$QEMU_CPU"
base_hash=$({ echo "$base_dockerfile $packages"; cat rootfs.sh; } | sha256sum | cut -c1-16)

# This image: its tags, environment and setup, and the hash of all its inputs.
env="PATH=/var/lang/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
[ -z "$lang" ] || env+=" LD_LIBRARY_PATH=/var/lang/lib"  # as on Lambda: libpython3.12 is in /var/lang/lib
# Every image's python3 is the runtime's Python, with the standard library's compiled modules working.
setup="update-ca-certificates >/dev/null 2>&1 && python3 -c 'import sys, ssl, sqlite3, ctypes, lzma, bz2, zlib, decimal; \
assert sys.version.startswith(\"$version.\"), sys.version'"
case $kind in
  runtime)  # SAM adds its runtime interface emulator and the layers (with /bin/sh) on top
    tags="public.ecr.aws/lambda/python:$version-$arch"
    inputs="$AWSLAMBDARIC $(cat bootstrap)"
    env+=" TZ=:/etc/localtime LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime"
    env+=" PYTHONPATH=/opt/python/lib/python$version/site-packages:/opt/python:/var/runtime"
    copy="COPY runtime/ /var/runtime/"
    setup+=" && python3 -m compileall -q /var/runtime && mkdir -p /var/task" ;;
  build)  # SAM runs `lambda-builders` in it, which may run make and pip
    tags="public.ecr.aws/sam/build-python$version:latest-$arch"
    inputs="$("$PYTHON" pip_conf.py)"
    env+=" PIP_ROOT_USER_ACTION=ignore"  # builds run as root in a throwaway container
    copy="COPY pip.conf /etc/pip.conf"
    setup+=" && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED && ln -sf \"\$(command -v python3)\" /usr/local/bin/python"
    [ -z "$lang" ] || setup+=" && python3 -m ensurepip >/dev/null"
    setup+=" && python3 -m pip install -q --no-cache-dir \"$BUILDERS\" && rm -rf /root/.cache" ;;
  *) echo "usage: $0 runtime|build VERSION-ARCH" >&2; exit 2 ;;
esac
dockerfile="FROM $base
ENV $env
COPY ca/ /usr/local/share/ca-certificates/
$([ -z "$lang" ] || echo "COPY lang/ /var/lang/")
$copy
RUN $setup
WORKDIR /var/task"
hash=$({ echo "$dockerfile $base_hash $inputs $lang_id"; cat "$0"; find $cas -type f 2>/dev/null | sort | xargs -r cat; } |
       sha256sum | cut -c1-16)
current=yes; for tag in $tags; do [ "$(label $key "$tag")" = "$hash" ] || current=; done
[ -n "$current" ] && { echo "$kind image is up to date: $tags"; exit 0; }

exec 9>"$base_dir.lock"; flock 9
if [ "$(label lambda-images.base "$base")" != "$base_hash" ]; then
  echo "bootstrapping Debian $suite $debian_arch for $base (under qemu for arm64: minutes)"
  rm -rf "$base_dir"; mkdir -p "$base_dir"
  ./rootfs.sh $suite $debian_arch "$base_dir/rootfs.tar" $packages
  printf '%s\nLABEL lambda-images.base=%s\n' "$base_dockerfile" "$base_hash" >"$base_dir/Dockerfile"
  build "$base_dir" "$base"
  rm -rf "$base_dir"
fi
exec 9>&-

# The build context: what the Dockerfile copies in.
context=.cache/$kind-$pair
rm -rf $context; mkdir -p $context/ca; if [ -d $cas ]; then cp -r $cas/. $context/ca/; fi
if [ -n "$lang" ]; then  # the interpreter and standard library only: no tests, static library or installed packages
  mkdir -p $context/lang/bin $context/lang/lib/python3.12/site-packages
  cp -a "$lang/bin/python3.12" $context/lang/bin/ && ln -s python3.12 $context/lang/bin/python3
  tar -C "$lang/lib" -c --exclude=python3.12/test --exclude='python3.12/config-*' --exclude=python3.12/site-packages \
    --exclude='*.a' --exclude=pkgconfig . | tar -C $context/lang/lib -x
fi
case $kind in
  runtime) "$PYTHON" -m pip install -qq --target $context/runtime --implementation cp --python-version $version \
             --platform manylinux_2_17_${arch/arm64/aarch64} --platform manylinux_2_34_${arch/arm64/aarch64} \
             --only-binary=:all: "$AWSLAMBDARIC"
           cp bootstrap $context/runtime/ ;;
  build) "$PYTHON" pip_conf.py >$context/pip.conf ;;
esac
printf '%s\nLABEL %s=%s\n' "$dockerfile" "$key" "$hash" >$context/Dockerfile
build $context $tags
rm -rf $context
# SAM caches the runtime image plus its emulator as "rapid" images: drop them so that SAM rebuilds them on this one.
if [ $kind = runtime ]; then
  docker images --format '{{.Repository}}:{{.Tag}}' | { grep -E \
    "^(public\.ecr\.aws/lambda/python:${version/./\\.}-rapid-$arch|samcli/lambda-python:${version/./\\.}-$arch-)" ||
    true; } | xargs -r docker rmi -f >/dev/null
fi
echo "$kind image built in ${SECONDS} s: $tags"
