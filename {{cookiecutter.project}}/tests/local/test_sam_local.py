"""The built function in Lambda's runtime image: `sam local invoke PredictFunction -e events/direct.json`.

Run `sam build --use-container` (or `sam build`) first; the test uses what is in .aws-sam/build. It needs the SAM CLI
and a Docker engine, and skips, saying which is missing, when it has not got them (`pytest -rs` prints why).
Offline? With the runtime image already pulled it does not pull again.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
BUILD = PROJECT / ".aws-sam" / "build"
RUNTIME_IMAGE = "public.ecr.aws/lambda/python:{{ cookiecutter.__python_version }}-{{ cookiecutter.architecture }}"


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def why_it_cannot_run() -> str | None:
    if shutil.which("sam") is None:
        return "the SAM CLI (`sam`) is not on PATH"
    if shutil.which("docker") is None:
        return "Docker is not installed (`docker` is not on PATH)"
    try:
        info = docker("info")
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 60 s"
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines()
        return "no Docker engine answers `docker info`" + (f": {lines[-1]}" if lines else "")
    if not (BUILD / "PredictFunction").is_dir():
        return f"nothing built in {BUILD}: run `sam build --use-container` (or `sam build`) first"
    return None


@pytest.fixture(scope="module")
def sam_local():
    reason = why_it_cannot_run()
    if reason:
        pytest.skip(f"sam local invoke not tested: {reason}")


def test_sam_local_invoke_predicts_the_tutorial_request(sam_local):
    command = ["sam", "local", "invoke", "PredictFunction", "--event", "events/direct.json"]
    if docker("image", "inspect", RUNTIME_IMAGE).returncode == 0:
        command.append("--skip-pull-image")  # already here: do not pull it again (faster, and works offline)
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{' '.join(command)} did not answer JSON:\n{result.stdout}\n{result.stderr}")
    assert isinstance(answer.get("prediction"), float) and answer["prediction"] > 0, answer
