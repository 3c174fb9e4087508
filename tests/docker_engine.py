"""The Docker engine and the Lambda-like images that `make lambda-images` provides (tests/lambda_images)."""

import os
import signal
import subprocess
import time
from pathlib import Path

PID_FILE = Path(__file__).parent / "lambda_images" / ".dockerd.pid"
ARM64_EMULATION = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")  # registered by `make lambda-images` (host.sh)


def lambda_images(python_version: str, architecture: str) -> tuple[str, str]:
    """The runtime image `sam local` starts and the build image `sam build --use-container` starts, by SAM's names."""
    return (f"public.ecr.aws/lambda/python:{python_version}-{architecture}",
            f"public.ecr.aws/sam/build-python{python_version}:latest-{architecture}")


IMAGES = lambda_images("3.13", "x86_64")


def _docker(*args: str) -> bool:
    try:
        return subprocess.run(["docker", *args], check=False, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker_ready(images: tuple[str, ...] = IMAGES) -> str | None:
    """None when `docker info` answers, the images exist and, for arm64 ones, this host runs arm64 programs; else
    why not (for skip messages)."""
    if not _docker("info"):
        return "no Docker engine answers `docker info` (run `make lambda-images`)"
    missing = [image for image in images if not _docker("image", "inspect", image)]
    if missing:
        return f"missing Docker image(s) {', '.join(missing)} (run `make lambda-images`, which says why it made none)"
    emulated = any(image.endswith("-arm64") for image in images)
    if emulated and not (ARM64_EMULATION.is_file() and ARM64_EMULATION.read_text().startswith("enabled")):
        return "this host does not run arm64 programs: qemu-aarch64 is not registered (run `make lambda-images`)"
    if emulated and _dockerd_has_userland_proxy():
        return ("the dockerd that `make lambda-images` started has its userland proxy, with which `sam local` gives up "
                "before an emulated container listens (restart it: make -C tests/lambda_images stop && make lambda-images)")
    return None


def _dockerd_has_userland_proxy() -> bool:
    """True when the dockerd of the pid file (host.sh's) runs without --userland-proxy=false; False otherwise,
    including for a daemon host.sh did not start."""
    try:
        pid = int(PID_FILE.read_text())
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return False
    return _is_dockerd(pid) and b"--userland-proxy=false" not in arguments


def _is_dockerd(pid: int) -> bool:
    """True while pid is a live (not zombie) dockerd: a stale pid file must not kill a stranger."""
    try:
        name, state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
    except (OSError, ValueError):
        return False
    return name.endswith("(dockerd") and state.split()[0] != "Z"


def stop_dockerd(timeout: float = 30) -> None:
    """Stop the dockerd that `make lambda-images` started (the pid in its pid file), and nothing else."""
    try:
        pid = int(PID_FILE.read_text())
    except (OSError, ValueError):
        return
    if _is_dockerd(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_dockerd(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    PID_FILE.unlink(missing_ok=True)
