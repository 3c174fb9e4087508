"""Shared helpers of the template's tests: generate a project, find the runtime's Python, run sam."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tools.runtime_python import python_bin_dir

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the dev venv: cookiecutter, sam, ruff
DEFAULT_ANSWERS = {name: value[0] if isinstance(value, list) else value
                   for name, value in json.loads((REPO / "cookiecutter.json").read_text()).items()}


def runtime_python(version: str) -> Path:
    """pythonX.Y for the Lambda runtime; skips the test, saying why, when this machine has none."""
    bin_dir = python_bin_dir(version)
    if bin_dir is None:
        pytest.skip(f"no Python {version} here (pyenv or PATH): needed to run the function as Lambda would")
    return bin_dir / f"python{version}"


def sam_env(python_version: str = "3.13", **extra: str) -> dict[str, str]:
    """Environment for sam: the dev venv and the runtime's Python on PATH (sam build checks for pythonX.Y)."""
    paths = [str(BIN)]
    runtime_bin = python_bin_dir(python_version)
    if runtime_bin:
        paths.append(str(runtime_bin))
    return {**os.environ, "PATH": os.pathsep.join([*paths, os.environ["PATH"]]), "SAM_CLI_TELEMETRY": "0",
            **extra}


def run(command: list, cwd: Path, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command; on failure show its whole output in the assertion."""
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def generate(output_dir: Path, **options: str) -> Path:
    """Render the template with these answers (the defaults for the rest); returns the project folder."""
    return Path(cookiecutter(str(REPO), no_input=True, output_dir=str(output_dir), extra_context=options))


def sam_build(project: Path, python_version: str = "3.13", *args: str) -> subprocess.CompletedProcess:
    return run([BIN / "sam", "build", *args], cwd=project, env=sam_env(python_version), timeout=1800)


@pytest.fixture(scope="session")
def built_project(tmp_path_factory):
    """built_project(**answers): the project of these answers (the defaults for the rest), generated and built once
    per session without Docker, shared by every test that asks for the same answers. A test that changes the project
    (a deploy writes samconfig.toml) passes copy_to and gets its own copy of the built project there."""
    built: dict[tuple, Path] = {}

    def built_project(copy_to: Path | None = None, **answers: str) -> Path:
        key = tuple(sorted((name, value) for name, value in answers.items() if value != DEFAULT_ANSWERS[name]))
        if key not in built:
            name = "-".join(value for _, value in key) or "default"
            built[key] = generate(tmp_path_factory.mktemp(f"built-{name}"), **answers)
            sam_build(built[key])
        if copy_to is None:
            return built[key]
        return Path(shutil.copytree(built[key], copy_to / built[key].name, symlinks=True))

    return built_project


@pytest.fixture(scope="session")
def built_default_project(built_project) -> Path:
    """The default project, generated and built once (without Docker) for every test that needs it."""
    return built_project()


@pytest.fixture(scope="session")
def built_onnx_project(built_project) -> Path:
    """The default project with model_format onnx, generated and built once (without Docker)."""
    return built_project(model_format="onnx")


def pytest_addoption(parser):
    parser.addoption("--fast", action="store_true",
                     help="render one combination per choice instead of every combination (CI renders all)")


@pytest.fixture(scope="session")
def project_venv(tmp_path_factory) -> Path:
    """A venv of the runtime's Python made as the generated README says (requirements-dev.txt: the layers' pins and
    the test tools), from a skops and an onnx project together so that it serves every model format (their shared
    pins are the same; test_render checks it). Made once per session."""
    sources = tmp_path_factory.mktemp("venv-source")
    requirements = [arg for model_format in ("skops", "onnx") for arg in
                    ("-r", generate(sources / model_format, model_format=model_format) / "requirements-dev.txt")]
    venv = tmp_path_factory.mktemp("project-venv") / ".venv"
    run([runtime_python("3.13"), "-m", "venv", venv], cwd=sources)
    run([venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
        cwd=sources, timeout=1800)
    return venv
