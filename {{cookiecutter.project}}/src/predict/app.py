"""Predict with the model of the model layer (the Python package `trained_model`).

Requests: the event itself when invoked directly, or the body of POST /predict through the API. Any of
    {"Property Type": "S", "Old/New": "Y", "Duration": "L"}           one record -> {"prediction": ...}
    [{...}, {...}]   or   {"instances": [{...}, {...}]}               records    -> {"predictions": [...]}
    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}     MLflow's form -> {"predictions": [...]}
A classifier answers class labels, plus "probabilities" ({class: probability} per record) when it has
predict_proba. GET / (or /health) answers the model's metadata, GET /openapi.json the API's OpenAPI document
(openapi.py). A bad request gets {"error": "<what is wrong>", "status": <4xx>}; through an API that is also the HTTP
status.

At init, once: the model file's sha256, and the version of the library that runs it (scikit-learn, or ONNX Runtime
for an onnx model), must match model_meta.json, or the function refuses to start (ModelRefused). Requests are checked
against the features in model_meta.json, so a model of your own saved with model/export.py needs no change here.
model_formats.py holds the little that differs by model format: loading the file and predicting checked records.
"""

import base64
import hashlib
import json
import os
import sys
import time
from importlib.resources import files

import numpy as np
from aws_lambda_powertools import Logger
from model_formats import ModelRefused, open_model
from openapi import document

MAX_BATCH_ROWS = int(os.environ.get("MAX_BATCH_ROWS", "1000"))
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", "1000000"))
INTERNAL_ERROR = "internal error: the log has the details under this request_id"
SHOWN_CHARACTERS = 80  # of a bad value, in its error message
OVERFLOW = "numbers this far out overflow the model's arithmetic: send numbers closer to those it was trained on"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "predict"))


class BadRequest(Exception):
    """A mistake in the request, answered with its 4xx status and this message."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def load_model(package: str = "trained_model") -> tuple[dict, object]:
    """model_meta.json and the model, once the file's sha256 and the library's version match the metadata."""
    try:
        folder = files(package)
    except ModuleNotFoundError:
        raise ModelRefused(f"no Python package {package!r}: attach the model layer (sam build makes it)") from None
    if not (folder / "model_meta.json").is_file():
        raise ModelRefused(f"{package}/model_meta.json is missing: save the model with model/export.py")
    meta = json.loads((folder / "model_meta.json").read_text())
    model_file = folder / meta["model_file"]
    if not model_file.is_file():
        raise ModelRefused(f"{package}/{meta['model_file']}, named in model_meta.json, is missing")
    data = model_file.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ModelRefused(
            f"{meta['model_file']} does not match the sha256 in model_meta.json: it changed after "
            "it was saved; save it again with model/export.py"
        )
    return meta, open_model(data, meta)


META, MODEL = load_model()
FEATURES = {feature["name"]: feature for feature in META["features"]}
# The Python types each categorical feature's values may have, and the values it accepts, for batch_fits.
CATEGORY_TYPES = {name: set(map(type, f["categories"])) for name, f in FEATURES.items() if f["kind"] == "category"}
CATEGORY_VALUES = {name: set(f["categories"]) for name, f in FEATURES.items() if f["kind"] == "category"}
OPENAPI = document(META, MODEL.probabilities, MAX_BATCH_ROWS, MAX_BODY_BYTES)
# Each path and the one method it takes.
ROUTES = {"/predict": "POST", "/": "GET", "/health": "GET", "/openapi.json": "GET"}


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    """One invocation: a proxy response through an API, the answer itself when invoked directly."""
    started = time.perf_counter()
    through_api = isinstance(event, dict) and "requestContext" in event
    headers = {"Content-Type": "application/json"}
    try:
        status, answer = 200, (route(event) if through_api else predict(event))
    except BadRequest as error:
        status, answer = error.status, {"error": str(error), "status": error.status}
        headers.update(error.headers)
    except Exception:
        logger.exception("internal error")  # the traceback goes to the log, never to the caller
        status, answer = 500, {"error": INTERNAL_ERROR, "status": 500, "request_id": context.aws_request_id}
    outcome = "ok" if status == 200 else "rejected" if status < 500 else "failed"
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info("answered", outcome=outcome, status=status, latency_ms=latency_ms, error=answer.get("error"))
    if not through_api:
        return answer
    return {"statusCode": status, "headers": headers, "body": json.dumps(answer)}


def route(event: dict) -> dict:
    """POST /predict, GET / (or /health) and GET /openapi.json; REST APIs send payload format 1.0, HTTP APIs and
    Function URLs 2.0. A 405 names the method the path takes in the Allow header, as HTTP asks."""
    if "httpMethod" in event:
        method, path = event["httpMethod"], event["path"]
    else:
        method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    path = path.rstrip("/") or "/"
    if path not in ROUTES:
        raise BadRequest(404, f"no route {path}: use POST /predict, or GET / for the model's metadata")
    if method != ROUTES[path]:
        raise BadRequest(405, f"{method} is not allowed on {path}: use {ROUTES[path]}", {"Allow": ROUTES[path]})
    if path == "/predict":
        return predict(read_body(event))
    if path == "/openapi.json":
        return OPENAPI
    return {"model": META, "max_batch_rows": MAX_BATCH_ROWS, "max_body_bytes": MAX_BODY_BYTES}


def read_body(event: dict):
    """The request's JSON body, parsed."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise BadRequest(415, f"Content-Type {content_type} is not JSON: send Content-Type: application/json")
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True)
        except ValueError:  # binascii.Error, or text that is not even ASCII
            raise BadRequest(400, "the body is marked base64-encoded but is not valid base64") from None
    body = body.encode() if isinstance(body, str) else body
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the body has {len(body)} bytes, more than MAX_BODY_BYTES={MAX_BODY_BYTES}")
    if not body.strip():
        raise BadRequest(400, "the body is empty: send a JSON record of features")
    try:
        return json.loads(body)
    except ValueError as error:
        raise BadRequest(400, f"the body is not JSON: {error}") from None
    except RecursionError:
        raise BadRequest(400, "the body nests lists or objects too deeply to read") from None


def predict(payload) -> dict:
    """Check every record against the model's features, then predict them all at once."""
    records, single = to_records(payload)
    if not records:
        raise BadRequest(400, "empty batch: send at least one record")
    if len(records) > MAX_BATCH_ROWS:
        raise BadRequest(413, f"{len(records)} records, more than MAX_BATCH_ROWS={MAX_BATCH_ROWS}: split the batch")
    logger.append_keys(rows=len(records))
    if not batch_fits(records):
        for number, record in enumerate(records, 1):
            check(record, "" if single else f"record {number}: ")
    try:  # numpy raises overflow where it happens; plain() checks what ONNX Runtime (not numpy) answers
        with np.errstate(over="raise"):
            predictions, probabilities = MODEL.predict(records)
    except FloatingPointError:
        raise BadRequest(400, OVERFLOW) from None
    answer = {"predictions": plain(predictions, single)}
    if probabilities is not None:
        by_class = plain(probabilities, single)
        answer["probabilities"] = [dict(zip(META["classes"], row, strict=True)) for row in by_class]
    if not single:
        return answer
    one = {"prediction": answer["predictions"][0]}
    if probabilities is not None:
        one["probabilities"] = answer["probabilities"][0]
    return one


def to_records(payload) -> tuple[list, bool]:
    """The payload's records, and whether it was one record (answered with "prediction", not "predictions")."""
    if isinstance(payload, list):
        return payload, False
    if not isinstance(payload, dict):
        raise BadRequest(
            400,
            'expected a JSON object of features, a list of them, {"instances": [...]} or '
            '{"dataframe_split": ...}, got ' + show(payload),
        )
    if payload.keys() == {"instances"}:
        if not isinstance(payload["instances"], list):
            raise BadRequest(400, '"instances" must be a list of records')
        return payload["instances"], False
    if payload.keys() == {"dataframe_split"}:
        split = payload["dataframe_split"]
        columns, data = (split.get("columns"), split.get("data")) if isinstance(split, dict) else (None, None)
        if not (
            isinstance(columns, list)
            and all(isinstance(column, str) for column in columns)
            and isinstance(data, list)
            and all(isinstance(row, list) for row in data)
        ):
            raise BadRequest(400, '"dataframe_split" must be {"columns": [names], "data": [[values], ...]}')
        for number, row in enumerate(data, 1):
            if len(row) != len(columns):
                raise BadRequest(400, f"dataframe_split: row {number} has {len(row)} values for {len(columns)} columns")
        return [dict(zip(columns, row, strict=True)) for row in data], False
    return [payload], True


def batch_fits(records: list) -> bool:
    """True when every record surely fits the model, checked a column at a time (fast for big batches).
    False does not mean a mistake: check() then looks at each record and names the first problem."""
    if not all(type(record) is dict and record.keys() == FEATURES.keys() for record in records):
        return False
    for name, feature in FEATURES.items():
        values = [record[name] for record in records]
        if feature["kind"] == "number":
            if not (set(map(type, values)) <= {int, float} and all(abs(v) <= sys.float_info.max for v in values)):
                return False
        elif not set(map(type, values)) <= CATEGORY_TYPES[name] or (
            not set(values) <= CATEGORY_VALUES[name] and not META["handles_unknown_categories"]
        ):
            return False
    return True


def check(record, where: str) -> None:
    """Raise BadRequest naming the first feature of the record that does not fit the model."""
    if not isinstance(record, dict):
        raise BadRequest(400, f"{where}expected a JSON object of features, got {show(record)}")
    missing = [name for name in FEATURES if name not in record]
    unknown = [name for name in record if name not in FEATURES]
    if missing or unknown:
        problems = [f"missing feature(s) {names(missing)}"] if missing else []
        problems += [f"unknown feature(s) {names(unknown)}"] if unknown else []
        raise BadRequest(400, f"{where}{' and '.join(problems)}; the model's features are {names(FEATURES)}")
    for name, value in record.items():
        if FEATURES[name]["kind"] == "number":
            if not (kind(value) == "number" and abs(value) <= sys.float_info.max):  # no NaN, infinity or overflow
                raise BadRequest(400, f"{where}feature {name!r} must be a finite number, got {show(value)}")
            continue
        # A category: of the categories' type, and one of them unless the pipeline ignores unknown categories.
        categories = FEATURES[name]["categories"]
        if kind(value) not in map(kind, categories) or (
            value not in categories and not META["handles_unknown_categories"]
        ):
            raise BadRequest(400, f"{where}feature {name!r} must be one of {names(categories)}, got {show(value)}")


def kind(value) -> str:
    """The JSON kind of a request value: "number" for an int or a float (not a bool), else its type's name."""
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def names(values) -> str:
    return ", ".join(map(show, values))


def show(value) -> str:
    """A request value as the message shows it: 'text' in quotes, anything else as JSON; cut at SHOWN_CHARACTERS,
    since a bad value can be megabytes long (a direct invoke takes up to 6 MB) and the answer would echo it whole."""
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[:SHOWN_CHARACTERS]}... ({len(text):,} characters)"


def plain(answers, single: bool) -> list:
    """The model's numpy answers (one row per record) as the plain Python values JSON holds. NaN or infinity for
    checked, finite features means numbers too far out for the model's arithmetic: a 400 naming the record."""
    finite = np.isfinite(answers.reshape(len(answers), -1)).all(axis=1) if answers.dtype.kind == "f" else [True]
    if not all(finite):
        raise BadRequest(400, ("" if single else f"record {list(finite).index(False) + 1}: ") + OVERFLOW)
    return answers.tolist()
