"""The Docker engine and the Lambda-like images that `make lambda-images` provides (tests/lambda_images)."""

import os
import signal
import subprocess
import time
from pathlib import Path

PID_FILE = Path(__file__).parent / "lambda_images" / ".dockerd.pid"
IMAGES = ("public.ecr.aws/lambda/python:3.13-x86_64", "public.ecr.aws/sam/build-python3.13:latest-x86_64")


def _docker(*args: str) -> bool:
    try:
        return subprocess.run(["docker", *args], check=False, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker_ready() -> str | None:
    """None when `docker info` answers and both images exist; else why not (for skip messages)."""
    if not _docker("info"):
        return "no Docker engine answers `docker info` (run `make lambda-images`)"
    missing = [image for image in IMAGES if not _docker("image", "inspect", image)]
    return f"missing Docker image(s) {', '.join(missing)} (run `make lambda-images`)" if missing else None


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
