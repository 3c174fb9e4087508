"""The deployed stack, wherever it runs. After `sam deploy`:

    STACK_NAME=<your stack> .venv/bin/python -m pytest tests/deployed

It reads the stack's outputs (`sam list stack-outputs`), then sends the request of events/direct.json and a bad
request to the deployed URL, and the events in events/ through the Lambda API (`sam remote invoke`, as
`sam local invoke` does locally), and checks every answer. It calls the SAM CLI from this folder, so it uses your AWS
credentials and the region saved in samconfig.toml, as `sam deploy` does. Without STACK_NAME it skips.

On an AWS emulator (MiniStack, LocalStack) set AWS_ENDPOINT_URL as well: the URL in the outputs is then called by
path on the emulator (<endpoint>/_aws/execute-api/<api id>/..., <endpoint>/_aws/lambda-url/<url id>/...).
"""

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

PROJECT = Path(__file__).resolve().parents[2]
EVENTS = PROJECT / "events"
API = "{{ cookiecutter.api }}"  # how the function is called: http, rest, function-url or none
API_EVENTS = {"http": "http-api", "rest": "rest-api", "function-url": "function-url"}.get(API)  # events/<this>-*.json
STACK_NAME = os.environ.get("STACK_NAME", "")
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "")

if not STACK_NAME:
    pytest.skip(
        "no deployed stack to test: after `sam deploy`, run STACK_NAME=<stack name> "
        ".venv/bin/python -m pytest tests/deployed",
        allow_module_level=True,
    )


def sam(*args: str) -> str:
    if shutil.which("sam") is None:
        pytest.fail("the SAM CLI (`sam`) is not on PATH: it reads the stack and invokes the function", pytrace=False)
    result = subprocess.run(["sam", *args], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"sam {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    listed = json.loads(sam("list", "stack-outputs", "--stack-name", STACK_NAME, "--output", "json"))
    return {output["OutputKey"]: output["OutputValue"] for output in listed}


@pytest.fixture(scope="module")
def base_url(outputs) -> str:
    """The deployed API's base URL, ending with "/" (PredictUrl less its "predict")."""
    if "PredictUrl" not in outputs:
        pytest.skip("the stack has no URL (api=none): the function is tested through the Lambda API only")
    url = outputs["PredictUrl"].removesuffix("predict")
    return emulated(url) if ENDPOINT else url


def emulated(url: str) -> str:
    """https://ID.execute-api.REGION.amazonaws.com/PATH -> ENDPOINT/_aws/execute-api/ID/PATH, and the same for a
    Function URL (ID.lambda-url.REGION.on.aws -> ENDPOINT/_aws/lambda-url/ID/PATH)."""
    parts = urlsplit(url)
    url_id, _, domain = parts.hostname.partition(".")
    return f"{ENDPOINT.rstrip('/')}/_aws/{domain.split('.')[0]}/{url_id}{parts.path or '/'}"


def request(url: str, body: bytes | None = None) -> tuple[int, dict]:
    """POST body as JSON (GET without a body); the status and the JSON answer."""
    sent = urllib.request.Request(
        url,
        data=body,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(sent, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        pytest.fail(f"{url} answered {status} with a body that is not JSON: {text[:500]!r}", pytrace=False)


def invoke(event_file: Path | None = None, event: object = None) -> dict:
    """Invoke PredictFunction through the Lambda API with an event; its answer (the payload)."""
    source = ["--event-file", str(event_file)] if event_file else ["--event", json.dumps(event)]
    response = json.loads(
        sam("remote", "invoke", "PredictFunction", "--stack-name", STACK_NAME, *source, "--output", "json")
    )
    payload = json.loads(response["Payload"])
    assert "FunctionError" not in response, f"the function failed: {payload}"
    return payload


def good_request() -> dict:
    return json.loads((EVENTS / "direct.json").read_text())


def bad_request() -> dict:
    return {**good_request(), "not a feature": 1}  # an unknown feature: a mistake for any model


def assert_prediction(answer: dict) -> None:
    assert isinstance(answer, dict) and "prediction" in answer, answer
    assert isinstance(answer["prediction"], (int, float, str)) and not isinstance(answer["prediction"], bool), answer


def assert_rejected(status: int, answer: dict) -> None:
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer.get("error"), str) and answer["error"], answer


def test_outputs_name_the_function_and_its_url(outputs):
    assert outputs["PredictFunctionArn"].startswith("arn:aws"), outputs
    if API == "none":
        assert "PredictUrl" not in outputs, outputs
    else:
        assert outputs["PredictUrl"].startswith("https://"), outputs


def test_predict_over_http(base_url):
    status, answer = request(base_url + "predict", json.dumps(good_request()).encode())
    assert status == 200, (status, answer)
    assert_prediction(answer)


def test_bad_request_over_http_is_a_4xx_with_its_reason(base_url):
    status, answer = request(base_url + "predict", json.dumps(bad_request()).encode())
    assert_rejected(status, answer)
    assert "not a feature" in answer["error"], answer


def test_model_metadata_over_http(base_url):
    status, answer = request(base_url)
    assert status == 200, (status, answer)
    assert "model" in answer, answer


def test_direct_invocation_predicts():
    assert_prediction(invoke(EVENTS / "direct.json"))


def test_direct_invocation_rejects_a_bad_request():
    answer = invoke(event=bad_request())
    assert_rejected(answer.get("status", 0), answer)


@pytest.mark.skipif(API_EVENTS is None, reason="the stack has no API (api=none): no API event to send")
def test_api_event_through_the_lambda_api_predicts():
    response = invoke(EVENTS / f"{API_EVENTS}-predict.json")
    assert response["statusCode"] == 200, response
    assert_prediction(json.loads(response["body"]))


@pytest.mark.skipif(API_EVENTS is None, reason="the stack has no API (api=none): no API event to send")
def test_bad_api_event_through_the_lambda_api_is_a_4xx():
    response = invoke(EVENTS / f"{API_EVENTS}-bad-body.json")
    assert_rejected(response["statusCode"], json.loads(response["body"]))
