"""`sam deploy --guided` end to end on MiniStack, the local AWS emulator: no AWS account, no Docker.

For each API choice, and for the onnx model format behind a Function URL: generate, `sam build` (no Docker),
`sam deploy --guided` with every prompt answered by a script (tests/ministack.py; n to "Confirm changes before deploy"), the answers saved in samconfig.toml, a
plain `sam deploy` with no terminal that asks nothing, the tutorial request through the deployed stack gives
the local prediction, a bad request gets a 4xx with its reason, the generated project's own tests/deployed
pass against the stack, and `sam delete --no-prompts` removes it. On rest only, where every redeploy has a
changeset, the guided deploy again answered y, after which a plain `sam deploy` stops at "Deploy this
changeset?". Over HTTP (rest, function-url), `make load` (locust) gets every answer the build gives locally; a
stand-in API on 127.0.0.1 proves it fails on a wrong answer and on no answer.

How each choice is called once deployed:
- rest, function-url: over HTTP, at the URL in the stack's outputs (rewritten to MiniStack's path form).
- http: through the Lambda API (`sam remote invoke` with the HTTP API event of events/). MiniStack ignores
  the OpenAPI Body of AWS::ApiGatewayV2::Api, which is how SAM's AWS::Serverless::HttpApi defines its routes,
  so the stack deploys but every request gets 404; the template is not bent to the emulator.
"""

import http.server
import json
import os
import shlex
import subprocess
import threading
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import BIN, run, runtime_python, sam_env
from ministack import DeployRun, MiniStack, UnknownPrompt, guided_deploy, local_url
from test_fuzz import assert_fuzzed_every_operation, make_fuzz

from tools.runtime_python import python_bin_dir

pytestmark = pytest.mark.deploy

PYTHON = "3.13"  # the default runtime: MiniStack runs functions with its own Python, so it is this version
REGION = "us-east-1"
OVER_HTTP = {"rest": True, "function-url": True, "http": False}  # False: through the Lambda API (see above)
API_EVENTS = {"http": "http-api", "rest": "rest-api", "function-url": "function-url"}
# Each stack deployed: (api, model_format). The onnx one runs every test that takes any stack.
DEPLOYMENTS = {api: (api, "joblib") for api in OVER_HTTP} | {"onnx-function-url": ("function-url", "onnx")}
TUTORIAL_REQUEST = {"Property Type": "S", "Old/New": "Y", "Duration": "L"}
BAD_REQUEST = {"Property Type": "S", "Old/New": "Y"}  # Duration missing
# Answers to the guided parameter questions, where not the default. MiniStack throttles a REST API as API Gateway
# does, and the default 50 requests/s is about what it serves here under the load test: 429s would come and go
# with the machine's speed.
STACK_PARAMETERS = {"rest": {"ApiThrottlingRateLimit": "10000", "ApiThrottlingBurstLimit": "10000"}}
# CI's `make load`: smaller than its default 16 users and 3,000 requests (138 s here), which on 2 CPUs measure
# MiniStack (per user a worker with its own copy of the layers, and its cold start) more than the stack.
LOAD = {"USERS": 4, "REQUESTS": 400, "RUN_TIME": "5m"}


class Timings:
    """Collects each choice's timings and prints them at the end of pytest's report."""

    def __init__(self):
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter):
        if self.lines:
            terminalreporter.section("deploy timings on MiniStack")
            for line in self.lines:
                terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def timings(request) -> Timings:
    plugin = Timings()
    request.config.pluginmanager.register(plugin, "deploy-timings")
    return plugin


@pytest.fixture(scope="module")
def ministack():
    if python_bin_dir(PYTHON) is None:
        pytest.skip(f"no Python {PYTHON} here (pyenv or PATH): MiniStack runs the function with its own "
                    f"interpreter, which must be the runtime's version")
    with MiniStack(PYTHON) as running:
        yield running


@dataclass
class Stack:
    api: str
    project: Path
    name: str
    env: dict[str, str]
    local_prediction: float
    predict_url: str = ""  # on MiniStack; "" when proven through the Lambda API
    guided: DeployRun | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def sam(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        """sam in the project, against MiniStack, with standard input closed: any prompt fails."""
        return subprocess.run([str(BIN / "sam"), *args], cwd=self.project, env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def outputs(self) -> dict[str, str]:
        listed = self.sam("list", "stack-outputs", "--stack-name", self.name, "--output", "json")
        assert listed.returncode == 0, listed.stderr
        return {output["OutputKey"]: output["OutputValue"] for output in json.loads(listed.stdout)}

    def post(self, record: dict) -> tuple[int, dict]:
        """POST a record to the deployed API, or send the API's event through the Lambda API (http): the HTTP
        status and the JSON answer."""
        if self.predict_url:
            request = urllib.request.Request(self.predict_url, data=json.dumps(record).encode(),
                                             method="POST", headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read() or b"null")
        event = json.loads((self.project / "events" / f"{API_EVENTS[self.api]}-predict.json").read_text())
        event["body"] = json.dumps(record)
        invoked = self.sam("remote", "invoke", "PredictFunction", "--stack-name", self.name,
                           "--event", json.dumps(event), "--output", "json")
        assert invoked.returncode == 0, invoked.stderr
        response = json.loads(invoked.stdout)
        payload = json.loads(response["Payload"])
        assert "FunctionError" not in response, payload
        return payload["statusCode"], json.loads(payload["body"])


@pytest.fixture(scope="module", params=list(DEPLOYMENTS))
def stack(request, ministack, timings, tmp_path_factory, built_project) -> Stack:
    """One API choice (and model format) generated, built without Docker (a copy of the session's build of the same
    answers: a deploy writes samconfig.toml), and deployed to MiniStack with `sam deploy --guided`; deleted with
    `sam delete --no-prompts` after its tests."""
    api, model_format = DEPLOYMENTS[request.param]
    started = time.monotonic()
    project = built_project(copy_to=tmp_path_factory.mktemp(f"deploy-{request.param}"), api=api,
                            model_format=model_format)
    build_seconds = time.monotonic() - started
    # The handler's answer is the last line (its JSON log lines come before it, on stdout as on Lambda).
    local = run([runtime_python(PYTHON), "scripts/invoke_built.py", "events/direct.json"], cwd=project)
    deployed = Stack(api=api, project=project, name=f"deploy-test-{request.param}",
                     env=ministack.env(sam_env(PYTHON)),
                     local_prediction=json.loads(local.stdout.splitlines()[-1])["prediction"])
    deployed.timings["build (or copy of this session's build)"] = build_seconds
    deployed.guided = guided_deploy(project, deployed.name, deployed.env, region=REGION,
                                    parameters=STACK_PARAMETERS.get(api), confirm_changeset=False,
                                    sam=str(BIN / "sam"))
    deployed.timings["guided deploy"] = deployed.guided.seconds
    assert deployed.guided.exitstatus == 0, f"sam deploy --guided failed:\n{deployed.guided.text[-4000:]}"
    if OVER_HTTP[api]:
        url = local_url(deployed.outputs()["PredictUrl"], ministack.endpoint)  # a Function URL is the base
        deployed.predict_url = url if url.endswith("/predict") else url.rstrip("/") + "/predict"
    yield deployed
    started = time.monotonic()
    deleted = deployed.sam("delete", "--no-prompts")
    deployed.timings["delete"] = time.monotonic() - started
    timings.lines.append(f"{request.param} (proven {'over HTTP' if OVER_HTTP[api] else 'through the Lambda API'}): " +
                         ", ".join(f"{step} {seconds:.2f} s" for step, seconds in deployed.timings.items()))
    assert deleted.returncode == 0, f"sam delete failed:\n{deleted.stdout}\n{deleted.stderr}"
    gone = deployed.sam("list", "stack-outputs", "--stack-name", deployed.name)
    assert gone.returncode != 0, f"{deployed.name} is still there after sam delete:\n{gone.stdout}"


def template_parameters(project: Path) -> set[str]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !Ref, !Sub...: not needed here
    return set(yaml.load((project / "template.yaml").read_text(), Loader=Loader).get("Parameters") or {})


def test_guided_deploy_answers_every_prompt(stack):
    questions = [question for question, _, _ in stack.guided.answers]
    assert questions[:2] == ["Stack Name", "AWS Region"], questions
    assert set(stack.guided.parameters) == template_parameters(stack.project), "a parameter was not asked"
    for question in ("Confirm changes before deploy", "Allow SAM CLI IAM role creation", "Disable rollback",
                     "Save arguments to configuration file", "SAM configuration file",
                     "SAM configuration environment"):
        assert question in questions, f"{question!r} was not asked: {questions}"
    assert "Deploy this changeset?" not in questions  # answered n to "Confirm changes before deploy"
    assert f"Successfully created/updated stack - {stack.name} in {REGION}" in stack.guided.text


def test_answers_are_saved_in_samconfig(stack):
    config = tomllib.loads((stack.project / "samconfig.toml").read_text())["default"]
    saved = {**config.get("global", {}).get("parameters", {}), **config["deploy"]["parameters"]}
    assert saved["stack_name"] == stack.name
    assert saved["region"] == REGION
    assert "CAPABILITY_IAM" in saved["capabilities"]
    assert saved["confirm_changeset"] is False  # the answer n, which SAM does not write: the preset must say it
    overrides = dict(item.split("=", 1) for item in shlex.split(saved["parameter_overrides"]))
    # Every parameter, at the default it was offered or at our answer.
    assert overrides == {**stack.guided.parameters, **STACK_PARAMETERS.get(stack.api, {})}


def test_plain_sam_deploy_asks_nothing(stack):
    # `sam deploy` as the README says, after the guided one answered n to "Confirm changes before deploy", with
    # no terminal: samconfig.toml answers everything, and any question fails it. A rest redeploy always has a
    # change (the API's deployment, AlwaysDeploy), so there it proves the n was kept.
    started = time.monotonic()
    deployed = stack.sam("deploy")
    stack.timings["plain deploy"] = time.monotonic() - started
    output = deployed.stdout + deployed.stderr
    assert deployed.returncode == 0, f"sam deploy failed:\n{output[-4000:]}"
    assert f"Stack name                   : {stack.name}" in output
    updated = f"Successfully created/updated stack - {stack.name} in {REGION}"
    unchanged = f"No changes to deploy. Stack {stack.name} is up to date"
    assert updated in output if stack.api == "rest" else updated in output or unchanged in output, output[-2000:]


@pytest.mark.parametrize("stack", ["rest"], indirect=True)  # a rest redeploy always has a changeset to confirm
def test_answering_y_makes_sam_deploy_ask(stack):
    guided = guided_deploy(stack.project, stack.name, stack.env, region=REGION,
                           parameters=STACK_PARAMETERS.get(stack.api), confirm_changeset=True, sam=str(BIN / "sam"))
    stack.timings["guided deploy, y"] = guided.seconds
    assert guided.exitstatus == 0, f"sam deploy --guided failed:\n{guided.text[-4000:]}"
    assert ("Deploy this changeset?", "y/N", "y") in guided.answers, guided.answers
    saved = tomllib.loads((stack.project / "samconfig.toml").read_text())["default"]["deploy"]["parameters"]
    assert saved["confirm_changeset"] is True
    started = time.monotonic()
    asked = stack.sam("deploy")  # no terminal: the question cannot be answered, so sam stops there
    stack.timings["plain deploy, stopped"] = time.monotonic() - started
    assert asked.returncode != 0, asked.stdout[-2000:]
    assert asked.stdout.rstrip().endswith("Deploy this changeset? [y/N]:"), asked.stdout[-2000:]
    assert "Successfully created/updated stack" not in asked.stdout


def test_deployed_prediction_is_the_local_one(stack):
    started = time.monotonic()
    status, answer = stack.post(TUTORIAL_REQUEST)
    stack.timings["first request"] = time.monotonic() - started
    assert status == 200, (status, answer)
    assert answer["prediction"] == pytest.approx(stack.local_prediction, rel=1e-9), stack.local_prediction
    started = time.monotonic()
    status, again = stack.post(TUTORIAL_REQUEST)
    stack.timings["warm request"] = time.monotonic() - started
    assert (status, again) == (200, answer)


def test_bad_request_is_a_4xx_with_its_reason(stack):
    status, answer = stack.post(BAD_REQUEST)
    assert 400 <= status < 500, (status, answer)
    assert "Duration" in answer["error"], answer


def test_generated_deployed_tests_pass_against_the_stack(stack, project_venv):
    command = [project_venv / "bin" / "python", "-m", "pytest", "tests/deployed", "-p", "no:cacheprovider"]
    if not OVER_HTTP[stack.api]:
        command += ["-k", "not over_http"]  # MiniStack serves no HttpApi route (see the module's docstring)
    result = run(command, cwd=stack.project, env={**stack.env, "STACK_NAME": stack.name})
    assert "skipped" not in result.stdout.strip().splitlines()[-1], result.stdout


def make_load(project: Path, url: str, venv: Path, env: dict[str, str], **load) -> subprocess.CompletedProcess:
    """`make load` as the README says, in a venv made already (-o: make does not remake it)."""
    variables = [f"{name}={value}" for name, value in load.items()]
    return subprocess.run(["make", "load", f"URL={url}", f"VENV={venv}", *variables, "-o", f"{venv}/.installed"],
                          check=False, cwd=project, env=env, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("stack", [api for api, over_http in OVER_HTTP.items() if over_http], indirect=True)
def test_make_load_gets_the_local_answers(stack, project_venv, timings):
    started = time.monotonic()
    result = make_load(stack.project, stack.predict_url, project_venv, stack.env, **LOAD)
    stack.timings["make load"] = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = next(line for line in result.stdout.splitlines() if " requests/s; latency " in line)
    timings.lines.append(f"{stack.api} make load ({LOAD['USERS']} users, {stack.timings['make load']:.1f} s): "
                         f"{summary}")
    assert summary.startswith(f"{LOAD['REQUESTS']} of {LOAD['REQUESTS']} requests, 0 unexpected answers"), summary
    for kind in ("single record", "batch of 100 rows", "bad request"):  # the mix, in locust's table
        assert f"POST     {kind} " in result.stderr, result.stderr[-3000:]
    assert (stack.project / "load-report.html").stat().st_size > 10_000


class WrongApi(http.server.BaseHTTPRequestHandler):
    """A stand-in for the deployed API on 127.0.0.1: the built model's metadata, then 200 and a wrong prediction
    for any record, and no answer at all (the connection closed) for any list of them."""

    def do_GET(self):
        self.answer({"model": self.server.model})

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if body.startswith(b"["):
            self.close_connection = True
            return
        self.answer({"prediction": -1.0})

    def answer(self, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("stack", ["rest"], indirect=True)  # any project built with the load test
def test_make_load_fails_on_a_wrong_answer_and_on_no_answer(stack, project_venv):
    meta = next(stack.project.glob(".aws-sam/build/*/python/trained_model/model_meta.json"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WrongApi)
    server.model = json.loads(meta.read_text())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/predict"
        result = make_load(stack.project, url, project_venv, stack.env, USERS=2, REQUESTS=100, RUN_TIME="2m")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode != 0, result.stdout
    assert "single record: the answer differs from the built function's here" in result.stderr, result.stderr
    assert "bad request: status 200, expected 400" in result.stderr, result.stderr
    assert "batch of 100 rows: status 0, expected 200" in result.stderr, result.stderr


@pytest.mark.parametrize("stack", ["rest", "function-url"], indirect=True)  # MiniStack serves no HttpApi route
def test_make_fuzz_finds_nothing_on_the_deployed_api(stack, project_venv):
    started = time.monotonic()
    result = make_fuzz(stack.project, project_venv, stack.predict_url)
    stack.timings["make fuzz"] = time.monotonic() - started
    assert_fuzzed_every_operation(result, stack.predict_url.removesuffix("predict"))


# A stand-in for sam: asks for the stack name, then one question the driver does not know.
FAKE_SAM = """#!/bin/sh
printf '\\t\\033[1mStack Name\\033[0m [sam-app]: '; read answer
printf '%s' "$QUESTION"; read answer
"""


@pytest.mark.parametrize("question", [
    "\t\x1b[1mCreate managed ECR repositories for all functions?\x1b[0m [Y/n]: ",  # a guided question
    "Enter MFA code for arn:aws:iam::123456789012:mfa/someone: ",  # any other question, however it is printed
], ids=["guided-question", "other-question"])
def test_the_driver_fails_loudly_on_a_prompt_it_does_not_know(tmp_path, question):
    fake_sam = tmp_path / "sam"
    fake_sam.write_text(FAKE_SAM)
    fake_sam.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(UnknownPrompt, match=r"Create managed ECR|Enter MFA code"):
        guided_deploy(tmp_path, "a-stack", {**os.environ, "QUESTION": question}, sam=str(fake_sam),
                      quiet_limit=1)
    assert time.monotonic() - started < 30  # not the 900 s a hang would take
