"""Requests through every event shape the handler understands: invoked directly, and through a REST API (payload
format 1.0), an HTTP API and a Function URL (2.0), whatever API this project chose. Good requests in every payload
form give the pipeline's own predictions; bad ones get their exact status and a message naming the problem."""

import base64
import json
from dataclasses import dataclass

import pandas as pd
import pytest

SHAPES = ["direct", "rest", "http", "function-url"]
APIS = SHAPES[1:]
TUTORIAL = {"Property Type": "S", "Old/New": "Y", "Duration": "L"}
DETACHED = {"Property Type": "D", "Old/New": "N", "Duration": "F"}
FLAT = {"Property Type": "F", "Old/New": "N", "Duration": "L"}


@dataclass
class Http:
    """A request only an API can make: method, path, raw body (already base64 when is_base64_encoded), headers."""

    method: str = "POST"
    path: str = "/predict"
    body: str | None = None
    content_type: str | None = "application/json"
    is_base64_encoded: bool = False


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@pytest.fixture
def send(invoke, api_event):
    """Send a payload (or an Http request) the way `shape` carries it; returns (status, answer)."""

    def send(shape: str, request) -> tuple[int, dict]:
        if shape == "direct":
            answer = invoke(request)
            return answer.get("status", 200), answer
        http = request if isinstance(request, Http) else Http(body=json.dumps(request))
        response = invoke(
            api_event(shape, http.method, http.path, http.body, http.content_type, http.is_base64_encoded)
        )
        assert set(response) == {"statusCode", "headers", "body"}
        expected_headers = {"Content-Type": "application/json"}
        if response["statusCode"] == 405:  # it names the one method the path takes, as HTTP asks
            expected_headers["Allow"] = "POST" if http.path.rstrip("/") == "/predict" else "GET"
        assert response["headers"] == expected_headers
        return response["statusCode"], json.loads(response["body"])

    return send


def predicted(pipeline, records: list[dict]) -> list[float]:
    """What the pipeline answers when called directly (no handler)."""
    return pipeline.predict(pd.DataFrame(records)).tolist()


# Every payload form: (payload, the records it holds, whether it is answered as one record).
FORMS = {
    "one record": (TUTORIAL, [TUTORIAL], True),
    "list of records": ([TUTORIAL, DETACHED, FLAT], [TUTORIAL, DETACHED, FLAT], False),
    "list of one record": ([TUTORIAL], [TUTORIAL], False),
    "instances": ({"instances": [DETACHED, TUTORIAL]}, [DETACHED, TUTORIAL], False),
    "dataframe_split": (
        {
            "dataframe_split": {
                "columns": ["Duration", "Old/New", "Property Type"],
                "data": [["L", "Y", "S"], ["F", "N", "D"]],
            }
        },
        [TUTORIAL, DETACHED],
        False,
    ),
    "keys in another order": ({"Duration": "L", "Property Type": "S", "Old/New": "Y"}, [TUTORIAL], True),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("form", FORMS)
def test_every_payload_form_predicts_what_the_pipeline_predicts(send, pipeline, shape, form):
    payload, records, single = FORMS[form]
    expected = predicted(pipeline, records)
    assert send(shape, payload) == (200, {"prediction": expected[0]} if single else {"predictions": expected})


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("name", "request_"),
    [
        ("base64 body", Http(body=b64(json.dumps(TUTORIAL)), is_base64_encoded=True)),
        (
            "charset in the content type",
            Http(body=json.dumps(TUTORIAL), content_type="application/json; charset=utf-8"),
        ),
        ("no content type", Http(body=json.dumps(TUTORIAL), content_type=None)),
        ("+json content type", Http(body=json.dumps(TUTORIAL), content_type="application/vnd.api+json")),
        ("trailing slash", Http(path="/predict/", body=json.dumps(TUTORIAL))),
        (
            "UTF-8 bytes, base64",
            Http(body=b64(json.dumps(TUTORIAL, ensure_ascii=False).encode()), is_base64_encoded=True),
        ),
    ],
)
def test_api_request_variants_predict(send, pipeline, api, name, request_):
    assert send(api, request_) == (200, {"prediction": predicted(pipeline, [TUTORIAL])[0]})


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("path", ["/", "/health"])
def test_get_root_or_health_answers_the_models_metadata_without_predicting(send, meta, api, path):
    assert send(api, Http(method="GET", path=path)) == (
        200,
        {"model": meta, "max_batch_rows": 1000, "max_body_bytes": 1_000_000},
    )


# (name, request, status, fragment of the message). A request is a payload (sent directly and as the body of
# POST /predict through every API) or an Http request (through every API only).
BAD_REQUESTS = [
    (
        "missing feature",
        {"Property Type": "S", "Old/New": "Y"},
        400,
        "missing feature(s) 'Duration'; the model's features are 'Property Type', 'Old/New', 'Duration'",
    ),
    ("no features", {}, 400, "missing feature(s) 'Property Type', 'Old/New', 'Duration'"),
    ("unknown feature", {**TUTORIAL, "Colour": "red"}, 400, "unknown feature(s) 'Colour'"),
    (
        "misspelt feature",
        {"Property type": "S", "Old/New": "Y", "Duration": "L"},
        400,
        "missing feature(s) 'Property Type' and unknown feature(s) 'Property type'",
    ),
    (
        "unseen category",
        {**TUTORIAL, "Property Type": "Castle"},
        400,
        "feature 'Property Type' must be one of 'D', 'F', 'O', 'S', 'T', got 'Castle'",
    ),
    (
        "category in the wrong case",
        {**TUTORIAL, "Old/New": "y"},
        400,
        "feature 'Old/New' must be one of 'N', 'Y', got 'y'",
    ),
    ("unknown duration U", {**TUTORIAL, "Duration": "U"}, 400, "feature 'Duration' must be one of 'F', 'L', got 'U'"),
    ("number for a category", {**TUTORIAL, "Duration": 1}, 400, "feature 'Duration' must be one of 'F', 'L', got 1"),
    ("null for a category", {**TUTORIAL, "Old/New": None}, 400, "feature 'Old/New' must be one of 'N', 'Y', got null"),
    (
        "boolean for a category",
        {**TUTORIAL, "Old/New": True},
        400,
        "feature 'Old/New' must be one of 'N', 'Y', got true",
    ),
    (
        "list for a category",
        {**TUTORIAL, "Property Type": ["S"]},
        400,
        "feature 'Property Type' must be one of 'D', 'F', 'O', 'S', 'T', got [\"S\"]",
    ),
    (
        "huge unseen category",
        {**TUTORIAL, "Property Type": "X" * 500_000},
        400,
        "got '" + "X" * 79 + "... (500,002 characters)",
    ),
    ("empty list", [], 400, "empty batch: send at least one record"),
    ("empty instances", {"instances": []}, 400, "empty batch"),
    ("empty dataframe_split", {"dataframe_split": {"columns": list(TUTORIAL), "data": []}}, 400, "empty batch"),
    ("too many rows", [TUTORIAL] * 1001, 413, "1001 records, more than MAX_BATCH_ROWS=1000: split the batch"),
    (
        "bad second record",
        [TUTORIAL, {**TUTORIAL, "Property Type": "X"}],
        400,
        "record 2: feature 'Property Type' must be one of 'D', 'F', 'O', 'S', 'T', got 'X'",
    ),
    ("record that is not an object", [TUTORIAL, "S"], 400, "record 2: expected a JSON object of features, got 'S'"),
    ("list of lists", [["S", "Y", "L"]], 400, 'record 1: expected a JSON object of features, got ["S", "Y", "L"]'),
    ("string payload", "S", 400, "expected a JSON object of features, a list of them"),
    (
        "number payload",
        42,
        400,
        'expected a JSON object of features, a list of them, {"instances": [...]} or {"dataframe_split": ...}, got 42',
    ),
    (
        "null payload",
        None,
        400,
        'expected a JSON object of features, a list of them, {"instances": [...]} or '
        '{"dataframe_split": ...}, got null',
    ),
    ("instances not a list", {"instances": TUTORIAL}, 400, '"instances" must be a list of records'),
    (
        "dataframe_split without data",
        {"dataframe_split": {"columns": list(TUTORIAL)}},
        400,
        '"dataframe_split" must be {"columns": [names], "data": [[values], ...]}',
    ),
    (
        "dataframe_split row too short",
        {"dataframe_split": {"columns": list(TUTORIAL), "data": [["S", "Y"]]}},
        400,
        "dataframe_split: row 1 has 2 values for 3 columns",
    ),
    (
        "dataframe_split unknown column",
        {"dataframe_split": {"columns": ["Property Type", "Old/New", "Tenure"], "data": [["S", "Y", "L"]]}},
        400,
        "record 1: missing feature(s) 'Duration' and unknown feature(s) 'Tenure'",
    ),
    ("body not JSON", Http(body="Property Type=S&Old/New=Y&Duration=L"), 400, "the body is not JSON"),
    ("truncated JSON", Http(body='{"Property Type": "S"'), 400, "the body is not JSON"),
    ("NaN body", Http(body="NaN"), 400, "expected a JSON object of features, a list of them"),
    ("empty body", Http(body=None), 400, "the body is empty: send a JSON record of features"),
    ("blank body", Http(body="  \n"), 400, "the body is empty"),
    (
        "bad base64",
        Http(body="not base64!", is_base64_encoded=True),
        400,
        "the body is marked base64-encoded but is not valid base64",
    ),
    ("base64 of something not JSON", Http(body=b64("S,Y,L"), is_base64_encoded=True), 400, "the body is not JSON"),
    (
        "body not UTF-8",
        Http(body=b64(b'{"Property Type": "\x80"}'), is_base64_encoded=True),
        400,
        "the body is not JSON",
    ),
    (
        "plain-text content type",
        Http(body=json.dumps(TUTORIAL), content_type="text/plain"),
        415,
        "Content-Type text/plain is not JSON: send Content-Type: application/json",
    ),
    (
        "form content type (curl -d without -H)",
        Http(body=json.dumps(TUTORIAL), content_type="application/x-www-form-urlencoded"),
        415,
        "Content-Type application/x-www-form-urlencoded is not JSON",
    ),
    (
        "body over the size limit",
        Http(body=json.dumps([TUTORIAL] * 20_000)),
        413,
        "bytes, more than MAX_BODY_BYTES=1000000",
    ),
    ("GET /predict", Http(method="GET"), 405, "GET is not allowed on /predict: use POST"),
    ("PUT /predict", Http(method="PUT", body=json.dumps(TUTORIAL)), 405, "PUT is not allowed on /predict: use POST"),
    ("POST /", Http(path="/", body=json.dumps(TUTORIAL)), 405, "POST is not allowed on /: use GET"),
    ("DELETE /health", Http(method="DELETE", path="/health"), 405, "DELETE is not allowed on /health: use GET"),
    (
        "unknown route",
        Http(path="/predictions", body=json.dumps(TUTORIAL)),
        404,
        "no route /predictions: use POST /predict, or GET / for the model's metadata",
    ),
]
CASES = [
    pytest.param(shape, request, status, message, id=f"{name}-{shape}")
    for name, request, status, message in BAD_REQUESTS
    for shape in (APIS if isinstance(request, Http) else SHAPES)
]


@pytest.mark.parametrize(("shape", "request_", "status", "message"), CASES)
def test_bad_request_gets_its_status_and_a_message_naming_the_problem(send, shape, request_, status, message):
    answer_status, answer = send(shape, request_)
    assert (answer_status, answer["status"]) == (status, status)
    assert message in answer["error"]
    assert set(answer) == {"error", "status"}
