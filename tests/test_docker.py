"""`sam build --use-container`, `sam local invoke` and `sam local start-api` for real, on the Lambda-like images that
`make lambda-images` builds (tests/lambda_images: no registry is reachable here, hence --skip-pull-image).

One container build of the default project (api=http) serves every test but the REST API's start-api, which runs on a
build made without Docker; the same tests then run on a container build of the default onnx project. Every
`sam local invoke` answer is compared with the Docker-free harness (scripts/invoke_built.py) on the same build. The
module prints the time of each step at its end.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import BIN, generate, run, runtime_python, sam_env
from docker_engine import IMAGES, docker_ready
from ministack import free_port

pytestmark = pytest.mark.docker

BUILD_IMAGE = next(image for image in IMAGES if "/sam/build-" in image)
LAYERS = {"joblib": ("PandasLayer", "SklearnLayer", "ModelLayer"), "onnx": ("OnnxRuntimeLayer", "ModelLayer")}
TUTORIAL_REQUEST = {"Property Type": "S", "Old/New": "Y", "Duration": "L"}
HARNESS_REQUEST_ID = "local-invoke"  # scripts/invoke_built.py's context.aws_request_id
SAM_STOP_TIMEOUT = 30


# --- timing and the Docker check -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def timings(pytestconfig, request):
    """Seconds per step, printed when the module ends (also when a test failed). tests/test_fuzz.py uses it too."""
    steps: dict[str, float] = {}
    start = time.monotonic()
    yield steps
    steps["whole module"] = time.monotonic() - start
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():  # shown in CI's log even when every test passed
            reporter.write_line("")
            reporter.write_line(f"tests/{Path(request.module.__file__).name}, time per step:")
            for step, seconds in steps.items():
                reporter.write_line(f"  {seconds:7.1f} s  {step}")


@contextlib.contextmanager
def timed(timings: dict[str, float], step: str):
    start = time.monotonic()
    try:
        yield
    finally:
        timings[step] = timings.get(step, 0.0) + time.monotonic() - start


@pytest.fixture(scope="module", autouse=True)
def docker_engine(timings):
    """Skips the whole module, saying why, when no Docker engine answers or the images are missing; with
    REQUIRE_DOCKER=1 (CI, after `make lambda-images`) that is a failure instead, so CI cannot pass by skipping."""
    with timed(timings, "docker info + image check"):
        reason = docker_ready()
    if reason and os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(f"REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    if reason:
        pytest.skip(f"Docker tests skipped: {reason}")


# --- helpers ---------------------------------------------------------------------------------------------------------

def last_json_line(text: str, what: str) -> object:
    """The answer: the last line of stdout (log lines the function writes to stdout may come before it)."""
    lines = text.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as error:
        raise AssertionError(f"{what}: the last line of stdout is not JSON ({error}):\n{text}") from None


def harness(project: Path, event: str) -> object:
    """The Docker-free answer: the built function loaded as Lambda loads it, by the runtime's Python."""
    result = run([runtime_python("3.13"), "scripts/invoke_built.py", event], cwd=project)
    return last_json_line(result.stdout, f"scripts/invoke_built.py {event}")


def sam_local_invoke(project: Path, event: str) -> object:
    """`sam local invoke` in the runtime image; the request id is replaced by the harness's, so answers compare."""
    result = run([BIN / "sam", "local", "invoke", "PredictFunction", "--skip-pull-image", "-e", event],
                 cwd=project, env=sam_env(), timeout=600)
    # Known quirk of the local runtime image: after a good answer (exit 0, stdout right) stderr may end with
    # "LAMBDA_RUNTIME Failed to get next invocation" and a traceback. stderr is not checked for that reason.
    request_id = re.search(r"(?:START|END|REPORT) RequestId: ([0-9a-f-]+)", result.stderr)  # any may be missing
    stdout = result.stdout.replace(request_id.group(1), HARNESS_REQUEST_ID) if request_id else result.stdout
    return last_json_line(stdout, f"sam local invoke -e {event} (stderr:\n{result.stderr})")


def status_of(answer: object) -> int | None:
    """A proxy response's statusCode; a direct error object carries it as statusCode or status (maybe in "error")."""
    if isinstance(answer, dict):
        for holder in (answer, answer.get("error")):
            if isinstance(holder, dict):
                for key in ("statusCode", "status"):
                    if isinstance(holder.get(key), int):
                        return holder[key]
    return None


def http(method: str, url: str, body: bytes | None = None, timeout: float = 60) -> tuple[int, str, str]:
    """(status, Content-Type, body text) of one request; 4xx/5xx are answers too."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to the group of the process we started (sam removes its containers on SIGTERM), SIGKILL if stuck."""
    for sig, wait in ((signal.SIGTERM, SAM_STOP_TIMEOUT), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)


@contextlib.contextmanager
def start_api(project: Path, log: Path, timings: dict[str, float], step: str, ready_timeout: float = 180):
    """`sam local start-api` on a free port of 127.0.0.1, in its own process group; yields its base URL once it
    answers GET /, and stops it (that pid's group) however the test ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(
            [BIN / "sam", "local", "start-api", "--skip-pull-image", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project, env=sam_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with timed(timings, f"{step}: start until GET / answers"):
            deadline = time.monotonic() + ready_timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"sam local start-api exited ({process.returncode}):\n{log.read_text()}")
                try:
                    http("GET", url + "/")
                    break
                except OSError:  # not listening yet
                    if time.monotonic() > deadline:
                        raise AssertionError(f"sam local start-api did not answer in {ready_timeout:.0f} s:\n"
                                             f"{log.read_text()}") from None
                    time.sleep(0.3)
        yield url
    finally:
        with timed(timings, f"{step}: stop (SIGTERM to its process group)"):
            stop_process_group(process)


# --- the container build, shared by the module ----------------------------------------------------------------------

class Build(NamedTuple):
    project: Path
    output: str  # sam's whole output
    layers: tuple[str, ...]
    model_format: str


@pytest.fixture(scope="module", params=list(LAYERS))
def container_build(request, tmp_path_factory, timings) -> Build:
    """The default project (joblib, then onnx) built once with `sam build --use-container`."""
    model_format = request.param
    with timed(timings, f"generate the default project ({model_format})"):
        project = generate(tmp_path_factory.mktemp(f"docker-{model_format}"), model_format=model_format)
    # The host's python3.13 stays on PATH on purpose: the test below proves the build did not use it.
    with timed(timings, f"sam build --use-container --skip-pull-image ({model_format}: "
                        f"{len(LAYERS[model_format])} layers + function)"):
        result = run([BIN / "sam", "build", "--use-container", "--skip-pull-image"], cwd=project, env=sam_env(),
                     timeout=1800)
    return Build(project, result.stdout + result.stderr, LAYERS[model_format], model_format)


def test_container_build_builds_every_layer_and_the_function_in_the_build_image(container_build):
    project, output, layers, _ = container_build
    assert "Starting Build inside a container" in output
    for layer in layers:
        assert f"Building layer '{layer}'" in output
        assert f"{layer}: Running CustomMakeBuilder:MakeBuild" in output, f"{layer} was not built by layers/Makefile"
    assert re.search(r"Building codeuri: \S+ runtime: python3\.13 .*functions: PredictFunction", output)
    assert output.count("SAM_CONTAINER_ID:") == len(layers) + 1, "one build container per layer and the function"
    build = project / ".aws-sam" / "build"
    assert sorted(p.name for p in build.iterdir() if p.is_dir()) == sorted([*layers, "PredictFunction"])
    assert (build / "PredictFunction" / "app.py").is_file()
    assert (build / "ModelLayer" / "python" / "trained_model").is_dir()


def test_container_build_compiles_pyc_with_the_build_images_python(container_build):
    project, output, layers, _ = container_build
    probe = run(["docker", "run", "--rm", "--network", "none", BUILD_IMAGE, "python3.13", "-c",
                 "import importlib.util, shutil; print(shutil.which('python3.13'), importlib.util.MAGIC_NUMBER.hex())"],
                cwd=project, timeout=120)
    container_python, magic = probe.stdout.split()
    assert "python3.13 not found" not in output, "a layer was built without its runtime's Python"
    # build_layer.py names the Python that compiled each layer (and trained the model): the container's, not ours.
    assert container_python in output
    assert str(runtime_python("3.13")) not in output
    for layer in layers:
        python_dir = project / ".aws-sam" / "build" / layer / "python"
        pycs = list(python_dir.rglob("*.pyc"))
        assert pycs, f"{layer} has no .pyc"
        assert not list(python_dir.rglob("*.py")), f"{layer} ships a .py beside its .pyc"
        wrong = [p for p in pycs if p.read_bytes()[:4].hex() != magic]
        assert not wrong, f"{layer}: {len(wrong)} .pyc not made by the build image's Python 3.13, e.g. {wrong[:3]}"


# --- sam local invoke: every event, against the Docker-free harness on the same build --------------------------------

@pytest.fixture(scope="module")
def invoked(container_build, timings) -> dict[str, tuple[object, object]]:
    """{event file: (sam local invoke answer, Docker-free harness answer)} for every file in events/.
    Serial on purpose: sam rebuilds one image per set of layer names on every invoke."""
    project = container_build.project
    events = sorted((project / "events").glob("*.json"), key=lambda p: (p.name != "direct.json", p.name))
    answers = {}
    for event in events:
        name = f"events/{event.name}"
        with timed(timings, f"sam local invoke -e {name} ({container_build.model_format})"):
            docker_answer = sam_local_invoke(project, name)
        with timed(timings, f"Docker-free harness, {len(events)} events ({container_build.model_format})"):
            answers[event.name] = (docker_answer, harness(project, name))
    return answers


def test_container_built_artifacts_answer_every_event_identically_in_docker_and_without(invoked):
    """The same container-built artifacts under `sam local invoke` and scripts/invoke_built.py: identical answers
    for every file in events/ (good ones predict, bad ones answer their 4xx JSON, in both)."""
    assert "direct.json" in invoked
    differ = {event: {"sam local invoke": docker_answer, "harness": harness_answer}
              for event, (docker_answer, harness_answer) in invoked.items() if docker_answer != harness_answer}
    assert not differ, json.dumps(differ, indent=1)


def test_sam_local_invoke_predicts_a_price_for_the_tutorial_request(invoked):
    answer, _ = invoked["direct.json"]
    assert isinstance(answer["prediction"], float) and answer["prediction"] > 0, answer


def test_sam_local_invoke_answers_bad_events_with_a_4xx_json_error(invoked):
    bad = {event: answer for event, (answer, _) in invoked.items() if "bad" in event}
    assert bad, "events/ ships no bad-input event (direct-bad-*.json, <api>-bad-*.json)"
    for event, answer in bad.items():
        assert status_of(answer) is not None and 400 <= status_of(answer) < 500, f"{event}: {answer}"
        if isinstance(answer, dict) and "body" in answer:  # a proxy response: its body is a JSON error too
            assert isinstance(json.loads(answer["body"]), dict), f"{event}: {answer}"


# --- sam local start-api: http on the container build (each model format), rest on a build without Docker ----------

def assert_serves_predictions_errors_and_health(project: Path, timings: dict[str, float], step: str, log: Path):
    direct_answer = harness(project, "events/direct.json")
    with start_api(project, log, timings, step) as url, timed(timings, f"{step}: 4 requests"):
        status, content_type, body = http("POST", url + "/predict", json.dumps(TUTORIAL_REQUEST).encode())
        assert (status, content_type) == (200, "application/json"), body
        assert json.loads(body) == direct_answer, "the API's answer differs from the direct invoke's"
        assert json.loads(body)["prediction"] > 0

        status, content_type, body = http("POST", url + "/predict", b'{"Property Type": ')
        assert (status, content_type) == (400, "application/json"), body
        assert isinstance(json.loads(body), dict)

        status, content_type, body = http("POST", url + "/predict", json.dumps({"Property Type": "S"}).encode())
        assert (status, content_type) == (400, "application/json"), body
        assert "Old/New" in body, f"the error does not name the missing feature: {body}"

        status, content_type, body = http("GET", url + "/")
        assert (status, content_type) == (200, "application/json"), body
        assert isinstance(json.loads(body), dict) and "Property Type" in body, f"health lists no features: {body}"


def test_start_api_serves_predictions_errors_and_health_over_http(container_build, timings, tmp_path):
    step = f"sam local start-api (api=http, {container_build.model_format})"
    assert_serves_predictions_errors_and_health(container_build.project, timings, step, tmp_path / "start-api.log")


def test_start_api_serves_the_rest_api_too(built_project, timings, tmp_path):
    """A REST API's events differ from an HTTP API's whatever the model format, so the default format's build
    (without Docker, shared with tests/test_fuzz.py and tests/test_deploy.py) stands for both."""
    with timed(timings, "generate + sam build without Docker (api=rest), or the session's"):
        project = built_project(api="rest")
    assert_serves_predictions_errors_and_health(project, timings, "sam local start-api (api=rest)",
                                                tmp_path / "start-api.log")


# --- the generated project's own `sam local invoke` test ------------------------------------------------------------

def project_local_tests(project: Path, **env: str) -> subprocess.CompletedProcess:
    """The generated project's tests/local, as `pytest` runs them there (its other tests' conftest is not needed)."""
    command = [BIN / "python", "-m", "pytest", "tests/local", "-rs", "-p", "no:cacheprovider", "--noconftest"]
    return subprocess.run(command, check=False, cwd=project, env=sam_env(**env), capture_output=True, text=True,
                          timeout=900)


def test_generated_projects_sam_local_test_passes_on_the_container_build(container_build, timings):
    project = container_build.project
    step = f"generated project's tests/local on the container build ({container_build.model_format})"
    with timed(timings, step):
        result = project_local_tests(project, SAM_SKIP_PULL_IMAGE="1")
    assert result.returncode == 0 and "1 passed" in result.stdout and "skipped" not in result.stdout, result.stdout


def test_generated_projects_sam_local_test_says_why_it_skips(tmp_path, timings):
    project = generate(tmp_path)
    with timed(timings, "generated project's tests/local: the two skips"):
        no_build = project_local_tests(project)
        no_docker = project_local_tests(project, DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    assert "1 skipped" in no_build.stdout and "sam build --use-container" in no_build.stdout, no_build.stdout
    assert "1 skipped" in no_docker.stdout and "docker info" in no_docker.stdout, no_docker.stdout
