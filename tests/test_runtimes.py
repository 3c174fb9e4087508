"""Every python_runtime x architecture the template offers, run under `sam local` on the images that
`make lambda-images` builds (tests/lambda_images; arm64 under qemu's user-mode emulation).

For each pair: the default project generated with that runtime and architecture, given the python3.13 x86_64
project's trained model (as `make model` leaves it), built with `sam build --use-container`, then `sam local
invoke` of a good event and (natively) of a bad one. The answers must equal the python3.13 x86_64 project's, taken
from the Docker-free harness (scripts/invoke_built.py) on a plain `sam build`. python3.13 on x86_64 itself is
tests/test_docker.py's (every event, start-api). python3.12 on arm64 has no images (no faithful Python 3.12 for
arm64 installs here: tests/lambda_images/image.sh), so it is rendered and built without Docker (here) but not run.
The module prints the time of each step at its end.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import BIN, generate, run, runtime_python, sam_env
from docker_engine import docker_ready, lambda_images
from test_docker import harness, sam_local_invoke, status_of, timed

pytestmark = pytest.mark.docker

# (Python version, architecture): every pair the template offers but python3.13 x86_64 (tests/test_docker.py) and
# python3.12 arm64 (no images).
PAIRS = [("3.12", "x86_64"), ("3.14", "x86_64"), ("3.13", "arm64"), ("3.14", "arm64")]
# arm64 pairs are marked `emulated` (minutes each here, mostly their build): `make test` runs python3.13's in a pytest
# of its own beside the rest, `make test-emulated` both.
PAIR_PARAMS = [pytest.param((version, architecture), id=f"python{version}-{architecture}",
                            marks=[pytest.mark.emulated] if architecture == "arm64" else [])
               for version, architecture in PAIRS]
EVENTS = ("events/direct.json", "events/direct-bad-category.json")
ELF_MACHINE = {"x86_64": 62, "arm64": 183}  # ELF e_machine: EM_X86_64, EM_AARCH64
MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}  # platform.machine() inside the runtime image
LAYERS = ("PandasLayer", "SklearnLayer", "ModelLayer")
EMULATED_TIMEOUT = 600  # seconds: the function's timeout for `sam local invoke` under emulation (samconfig.toml)


@pytest.fixture(scope="module")
def timings(pytestconfig):
    """Seconds per step, printed when the module ends (also when a test failed): the README's table cites them."""
    steps: dict[str, float] = {}
    yield steps
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():  # shown in CI's log even when every test passed
            reporter.write_line("")
            reporter.write_line("tests/test_runtimes.py, time per step:")
            for step, seconds in steps.items():
                reporter.write_line(f"  {seconds:7.1f} s  {step}")


@pytest.fixture(scope="module")
def reference_answers(built_default_project, timings) -> dict[str, object]:
    """The python3.13 x86_64 project's answers: the Docker-free harness on the session's plain `sam build`."""
    with timed(timings, "python3.13 x86_64 reference: Docker-free harness, 2 events"):
        return {event: harness(built_default_project, event) for event in EVENTS}


def generate_with_model(directory: Path, trained: Path, **answers: str) -> Path:
    """generate(), then the trained project's model/artifacts copied in. shutil.copy, not copy2: newer than the
    model's inputs, so the build keeps the model rather than train it again."""
    project = generate(directory, **answers)
    shutil.copytree(trained / "model" / "artifacts", project / "model" / "artifacts", copy_function=shutil.copy)
    return project


@pytest.fixture(scope="module", params=PAIR_PARAMS)
def pair_build(request, tmp_path_factory, timings, built_default_project) -> tuple[str, str, Path]:
    """The default project of one pair, built with `sam build --use-container`; (version, architecture, project).
    Its model is the python3.13 x86_64 project's, as `make model` leaves it in model/artifacts: a model is data, the
    same on every pair, so the answers differ only if the runtime does (training inside the build container is
    tests/test_docker.py's, and under emulation it would cost minutes).
    A pair whose images are missing skips, saying why; with REQUIRE_DOCKER=1 (CI) that is a failure instead."""
    version, architecture = request.param
    reason = docker_ready(lambda_images(version, architecture))
    if reason and os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(f"REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    if reason:
        pytest.skip(f"python{version} {architecture}: {reason}")
    pair = f"python{version} {architecture}"
    with timed(timings, f"{pair}: generate"):
        project = generate_with_model(tmp_path_factory.mktemp(f"runtime-{version}-{architecture}"),
                                      built_default_project, python_runtime=f"python{version}",
                                      architecture=architecture)
    with timed(timings, f"{pair}: sam build --use-container --skip-pull-image"):
        built = run([BIN / "sam", "build", "--use-container", "--skip-pull-image"], cwd=project,
                    env=sam_env(version), timeout=3600)
    assert "training the model" not in built.stdout + built.stderr, "the build trained the model again"
    if architecture == "arm64":  # emulated: a cold start takes many times its 20 s timeout on Lambda's CPU
        config = project / "samconfig.toml"
        section = "[default.local_invoke.parameters]\n"
        assert section in config.read_text(), f"{config} has no {section}"
        config.write_text(config.read_text().replace(
            section, f'{section}parameter_overrides = "Timeout={EMULATED_TIMEOUT}"\n'))
    return version, architecture, project


def shared_objects(project: Path) -> list[Path]:
    build = project / ".aws-sam" / "build"
    return [p for p in build.rglob("*.so*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"]


def test_container_build_ships_the_pairs_shared_objects_and_pyc(pair_build):
    """Every shared object in the layers and the function is for the pair's architecture; every .pyc was compiled by
    the build image's Python, the runtime's version."""
    version, architecture, project = pair_build
    objects = shared_objects(project)
    assert any("numpy" in str(p) for p in objects), "numpy's shared objects are missing"
    wrong = [p for p in objects if int.from_bytes(p.read_bytes()[18:20], "little") != ELF_MACHINE[architecture]]
    assert not wrong, f"{len(wrong)} shared objects are not {architecture}, e.g. {wrong[:3]}"
    build_image = lambda_images(version, architecture)[1]
    magic = run(["docker", "run", "--rm", "--network", "none", build_image, "python3", "-c",
                 "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"], cwd=project, timeout=300)
    for layer in LAYERS:
        pycs = list((project / ".aws-sam" / "build" / layer / "python").rglob("*.pyc"))
        assert pycs, f"{layer} has no .pyc"
        wrong = [p for p in pycs if p.read_bytes()[:4].hex() != magic.stdout.strip()]
        assert not wrong, f"{layer}: {len(wrong)} .pyc not made by Python {version}, e.g. {wrong[:3]}"


def test_runtime_image_runs_the_layers_numpy_on_the_pairs_machine(pair_build, timings):
    """The runtime image (what `sam local` starts) runs the pair's machine code: on arm64, numpy from the built layer
    imports and computes under emulation."""
    version, architecture, project = pair_build
    probe = ("import platform, sys; sys.path[:0] = ['/build/PandasLayer/python']; import numpy; "
             "print(platform.machine(), '%d.%d' % sys.version_info[:2], numpy.linalg.solve([[2, 1], [1, 3]], [3, 5]))")
    with timed(timings, f"python{version} {architecture}: runtime image imports numpy from the layer"):
        result = run(["docker", "run", "--rm", "--network", "none", "-v",
                      f"{project / '.aws-sam' / 'build'}:/build:ro", "--entrypoint", "python3",
                      lambda_images(version, architecture)[0], "-c", probe], cwd=project, timeout=300)
    assert result.stdout.split() == [MACHINE[architecture], version, "[0.8", "1.4]"], result.stdout


def test_sam_local_invoke_answers_as_the_python313_x86_64_project(pair_build, reference_answers, timings):
    """The same prediction for the tutorial request and, natively, the same 4xx error for a category the model
    never saw. Emulated pairs invoke the tutorial request only: each invoke costs about a minute under emulation,
    and the checking that makes the 4xx is the same pure Python on every architecture."""
    version, architecture, project = pair_build
    events = EVENTS if architecture == "x86_64" else EVENTS[:1]
    answers = {}
    for event in events:
        with timed(timings, f"python{version} {architecture}: sam local invoke -e {event}"):
            answers[event] = sam_local_invoke(project, event)
    good = answers[EVENTS[0]]
    assert isinstance(good.get("prediction"), float) and good["prediction"] > 0, good
    if EVENTS[1] in answers:
        assert 400 <= (status_of(answers[EVENTS[1]]) or 0) < 500, answers[EVENTS[1]]
    expected = {event: reference_answers[event] for event in events}
    assert answers == expected, json.dumps({"this pair": answers, "python3.13 x86_64": expected}, indent=1)


def test_python312_arm64_is_built_without_docker(tmp_path, timings, built_default_project):
    """python3.12 on arm64 has no images, so it is built but not run: `sam build` with this machine's python3.12
    compiling the .pyc, and every shared object aarch64 (the model, as for the other pairs, is the default one's)."""
    python = runtime_python("3.12")
    with timed(timings, "python3.12 arm64: generate + sam build (no Docker)"):
        project = generate_with_model(tmp_path, built_default_project, python_runtime="python3.12",
                                      architecture="arm64")
        built = run([BIN / "sam", "build"], cwd=project, env=sam_env("3.12"), timeout=1800)
    assert "training the model" not in built.stdout + built.stderr, "the build trained the model again"
    objects = shared_objects(project)
    assert objects and all(int.from_bytes(p.read_bytes()[18:20], "little") == ELF_MACHINE["arm64"] for p in objects)
    magic = run([python, "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"], cwd=project)
    pycs = list((project / ".aws-sam" / "build" / "SklearnLayer" / "python").rglob("*.pyc"))
    assert pycs and all(p.read_bytes()[:4].hex() == magic.stdout.strip() for p in pycs)


# --- `make build` without the runtime's Python --------------------------------------------------------------------

def path_without_python(version: str) -> str:
    """sam_env's PATH less every folder whose pythonX.Y runs (a pyenv shim of an unselected Python does not)."""
    folders = sam_env()["PATH"].split(os.pathsep)
    return os.pathsep.join(f for f in folders if not (Path(f, f"python{version}").is_file() and "shims" not in f))


@pytest.mark.parametrize(("version", "python_on_path", "docker_answers", "chosen"), [
    ("3.14", False, True, "sam build --use-container"),
    ("3.14", False, False, "sam build"),
    ("3.13", True, True, "sam build"),
], ids=["no-python-docker", "no-python-no-docker", "python-here"])
def test_make_build_chooses_the_container_build_when_the_runtimes_python_is_missing(
        version, python_on_path, docker_answers, chosen, tmp_path):
    """The generated project's `make build` (make -n: the command it would run, chosen for real)."""
    reason = docker_ready(())
    if reason and os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(f"REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)
    project = generate(tmp_path, python_runtime=f"python{version}")
    env = sam_env(version)
    if not python_on_path:
        env["PATH"] = path_without_python(version)
    if not docker_answers:
        env["DOCKER_HOST"] = f"unix://{tmp_path}/no-docker.sock"
    # --no-print-directory: under `make test` MAKELEVEL is set, and make would print "Entering directory" first.
    result = run(["make", "--no-print-directory", "-n", "build"], cwd=project, env=env)
    assert result.stdout.splitlines()[0] == chosen, result.stdout
