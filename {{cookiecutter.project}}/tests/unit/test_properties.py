"""Property-based tests (Hypothesis): requests nobody here thought of, by the thousand.

For arbitrary JSON payloads invoked directly, and arbitrary events of a REST API (payload format 1.0), an HTTP API and
a Function URL (2.0) - any method, path, headers, Content-Type, base64 flag and body - the handler answers 200, or a
4xx with exactly {"error": <text>, "status": <the status>}: never a 500, never a traceback. Every answer matches its
schema in the API's OpenAPI document (GET /openapi.json), and the document is the handler's contract: a payload is
answered 200 if and only if it is JSON that the document's request schema accepts (two exceptions, which the document
states: see assert_contract_holds).

1,000 examples per event kind (PROPERTY_EXAMPLES, below). With the CI environment variable set (CI services set
it) Hypothesis loads its own "ci" profile: the same examples on every run (derandomized) and no example database.
Elsewhere each run tries new examples and replays a failure first on the next run (from .hypothesis/).
"""

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

EVENTS = Path(__file__).resolve().parents[2] / "events"
# PROPERTY_EXAMPLES: fewer, for runs that repeat one with the full count (the template's tests run this suite in a
# project of every API choice, and the properties send every API's events whatever the choice).
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "1000"))
# The fixtures (the handler with its model) are not changed by a request, so every example may share them.
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "QUERY"]
PATHS = ["/predict", "/predict/", "/", "/health", "/openapi.json", "//predict", "/Predict", ""]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/vnd.api+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
    ";",
]
TOO_DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, deeper than Python's JSON reader goes

# Any JSON value as json.loads returns it (NaN and infinities too: Python's json module reads them), nested two
# levels deep: deeper adds little here and costs much generation time.
leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = leaves | st.lists(leaves, max_size=3) | st.dictionaries(st.text(max_size=8), leaves, max_size=3)


def feature_values(feature: dict):
    """Mostly values the feature accepts, else any JSON."""
    if feature["kind"] == "number":
        fits = st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    else:
        fits = st.sampled_from(feature["categories"])
    return st.one_of(fits, fits, json_values)


def payloads(meta: dict):
    """Arbitrary JSON, weighted towards each request form the handler takes, right and nearly right."""
    names = [feature["name"] for feature in meta["features"]]
    values = [feature_values(feature) for feature in meta["features"]]
    record = st.fixed_dictionaries(dict(zip(names, values, strict=True))) | st.fixed_dictionaries(
        {}, optional={**dict(zip(names, values, strict=True)), "instances": json_values, "colour": json_values}
    )
    records = st.lists(record | json_values, max_size=3)
    row = st.tuples(*values).map(list) | st.lists(st.one_of(*values), min_size=len(names) - 1, max_size=len(names) + 1)
    columns = st.permutations(names) | st.lists(st.sampled_from(names) | st.text(max_size=8), max_size=len(names) + 1)
    dataframe_split = st.fixed_dictionaries(
        {"columns": columns, "data": st.lists(row, max_size=3)}, optional={"index": json_values}
    )
    return st.one_of(
        record,
        records,
        st.fixed_dictionaries({"instances": records | json_values}),
        st.fixed_dictionaries({"dataframe_split": dataframe_split | json_values}),
        json_values,
    )


def is_json(payload) -> bool:
    """Whether the payload is JSON (the document describes JSON; Python's json module also reads NaN and Infinity)."""
    try:
        json.dumps(payload, allow_nan=False)
    except ValueError:
        return False
    return True


class Contract:
    """The schemas of an OpenAPI 3.1 document (JSON Schema 2020-12 with $refs into the document), as validators."""

    def __init__(self, document: dict):
        self.document = document
        self.registry = Registry().with_resource(
            "urn:openapi", Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.request = self.validator("/paths/~1predict/post/requestBody/content/application~1json/schema")
        self.answers: dict[tuple[str, str, int], Draft202012Validator] = {}

    def validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"urn:openapi#{pointer}"}, registry=self.registry)

    def answer(self, path: str, method: str, status: int) -> Draft202012Validator:
        """The schema of an answer: the operation's own, or for 404 and 405 components.responses'."""
        key = (path, method, status)
        if key not in self.answers:
            operation = self.document["paths"].get(path, {}).get(method.lower(), {"responses": {}})
            response = operation["responses"].get(str(status), {"$ref": f"#/components/responses/{status}"})
            escaped = path.replace("~", "~0").replace("/", "~1")
            pointer = (
                response["$ref"][1:] if "$ref" in response else f"/paths/{escaped}/{method.lower()}/responses/{status}"
            )
            self.answers[key] = self.validator(f"{pointer}/content/application~1json/schema")
        return self.answers[key]


def assert_well_formed(status: int, answer, contract: Contract, path: str = "/predict", method: str = "POST"):
    """200, or a 4xx with exactly {"error": <text>, "status": <status>}; either one as the document describes it."""
    assert status == 200 or 400 <= status < 500, (status, answer)
    if status != 200:
        assert answer == {"error": answer["error"], "status": status}, answer
        assert isinstance(answer["error"], str) and "Traceback" not in answer["error"], answer
    errors = [error.message for error in contract.answer(path, method, status).iter_errors(answer)]
    assert not errors, (status, answer, errors)


def assert_contract_holds(payload, status: int, answer: dict, contract: Contract, names: list[str]):
    """200 exactly for the payloads the request schema accepts, with the two exceptions the document states: numbers
    so far out that they overflow the model's arithmetic get a 400, and dataframe_split's columns may come in any
    order (the schema shows the model's)."""
    valid = is_json(payload) and contract.request.is_valid(payload)
    if valid and status == 400 and "overflow the model's arithmetic" in answer["error"]:
        return
    if valid or status != 200:
        assert (status == 200) == valid, (status, payload)
        return
    split = payload["dataframe_split"]
    assert sorted(split["columns"]) == sorted(names), (status, payload)
    order = [split["columns"].index(name) for name in names]
    in_models_order = {"columns": names, "data": [[row[i] for i in order] for row in split["data"]]}
    assert contract.request.is_valid({"dataframe_split": in_models_order}), payload


@pytest.fixture(scope="module")
def iris(tmp_path_factory, model_layer, import_app):
    """The handler with model/train_iris_classifier.py's classifier: four numeric features, three labels."""
    import train
    import train_iris_classifier

    layer = model_layer(
        tmp_path_factory.mktemp("iris"), lambda package: train_iris_classifier.train(package, train.DEFAULT_FORMAT)
    )
    return import_app(layer)


@pytest.mark.parametrize("model", ["house prices", "iris classifier"])
def test_any_payload_invoked_directly_gets_an_answer_or_a_4xx_and_200_exactly_when_the_schema_accepts_it(
    request, context, model
):
    app = request.getfixturevalue("app" if model == "house prices" else "iris")
    contract = Contract(app.OPENAPI)

    @SETTINGS
    @given(payloads(app.META))
    def direct(payload):
        answer = app.handler(payload, context)
        status = answer.get("status", 200) if isinstance(answer, dict) else None
        assert_well_formed(status, answer, contract)
        assert_contract_holds(payload, status, answer, contract, list(app.FEATURES))

    direct()


def bodies(meta: dict):
    """(body, isBase64Encoded) as an API hands them over: none, any text, a payload's JSON, or base64 of any bytes."""
    text = st.text() | payloads(meta).map(json.dumps)
    encoded = (st.binary() | text.map(str.encode)).map(lambda data: base64.b64encode(data).decode())
    return st.tuples(st.none() | text, st.just(False)) | st.tuples(encoded | st.text(), st.just(True))


def headers():
    names = st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE", "Accept"]) | st.text(max_size=8)
    return st.dictionaries(names, st.sampled_from(CONTENT_TYPES) | st.text(max_size=8), max_size=3)


@pytest.mark.parametrize("api", ["rest", "http", "function-url"])
def test_any_api_event_gets_an_answer_or_a_4xx_as_the_document_describes(app, context, api_event, api):
    contract = Contract(app.OPENAPI)

    @SETTINGS
    @given(
        method=st.sampled_from(METHODS) | st.text(max_size=8),
        path=st.sampled_from(PATHS) | st.text(max_size=12).map("/".__add__) | st.text(max_size=12),
        headers=headers() | st.none(),
        body=bodies(app.META),
    )
    @example(method="POST", path="/predict", headers=None, body=(TOO_DEEP, False))
    @example(method="POST", path="/predict", headers=None, body=("é", True))  # base64 must be ASCII
    def through_api(method, path, headers, body):
        event = api_event(api, method, path, body[0], None, body[1])
        event["headers"] = headers if api == "rest" else headers or {}  # format 1.0 sends null for none
        response = app.handler(event, context)
        assert set(response) == {"statusCode", "headers", "body"}
        status, answer = response["statusCode"], json.loads(response["body"])
        route = path.rstrip("/") or "/"
        expected_headers = {"Content-Type": "application/json"}
        if status == 405:  # it names the one method the path takes, as HTTP asks
            expected_headers["Allow"] = app.ROUTES[route]
        assert response["headers"] == expected_headers
        assert_well_formed(status, answer, contract, "/" if route == "/health" else route, method)

    through_api()


# --- Examples ------------------------------------------------------------------------------------------------------


def test_sample_events_fit_the_request_schema_exactly_when_they_are_good(app):
    request = Contract(app.OPENAPI).request
    for path in sorted(EVENTS.glob("direct*.json")):
        assert request.is_valid(json.loads(path.read_text())) == ("bad" not in path.name), path.name


# What the properties found, pinned.


def test_a_body_nested_too_deeply_to_read_is_a_400(app, context, api_event):
    response = app.handler(api_event("http", body=TOO_DEEP), context)
    assert (response["statusCode"], json.loads(response["body"])) == (
        400,
        {"error": "the body nests lists or objects too deeply to read", "status": 400},
    )


def test_numbers_that_overflow_the_models_arithmetic_are_a_400(iris, context):
    record = {name: 1e308 for name in iris.FEATURES}  # finite, but the scaler's division overflows
    assert iris.handler(record, context) == {"error": iris.OVERFLOW, "status": 400}


def test_an_answer_that_is_not_finite_is_a_400_naming_the_record(iris, context, monkeypatch):
    class Answers:  # as ONNX Runtime answers when its arithmetic overflows: NaN, no numpy error
        def predict(self, records):
            return np.array(["setosa", "setosa"]), np.array([[0.2, 0.3, 0.5], [np.nan, np.nan, np.nan]])

    monkeypatch.setattr(iris, "MODEL", Answers())
    record = {name: 5.0 for name in iris.FEATURES}
    assert iris.handler([record, record], context) == {"error": f"record 2: {iris.OVERFLOW}", "status": 400}
