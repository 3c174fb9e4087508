"""The unit tests' fixtures: the real model, trained on the shipped data once per session, and the handler imported
with it the way Lambda imports it (the model layer's python/ folder on sys.path, holding the package trained_model).

No Docker, no AWS: `python -m pytest tests/unit` in a venv made from requirements-dev.txt.
"""

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
# app.py is imported from the function's folder, train.py and export.py from model/, as their own scripts do.
sys.path[:0] = [str(PROJECT / "src" / "predict"), str(PROJECT / "model")]

import train  # noqa: E402  (model/train.py, after sys.path has model/)


class LambdaContext:
    """The attributes of Lambda's context object that the handler and its logger read."""

    function_name = "PredictFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:PredictFunction"
    aws_request_id = "11111111-2222-3333-4444-555555555555"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 20_000


def import_app(layer_python: Path):
    """Import src/predict/app.py afresh, as a cold start does, with the trained_model package in layer_python.

    Returns the new module; whatever its initialisation raises (ModelRefused) propagates to the caller.
    sys.path and sys.modules are left as they were, so each call gets its own module and model.
    """
    saved = {name: sys.modules.pop(name, None) for name in ("app", "trained_model")}
    sys.path.insert(0, str(layer_python))
    importlib.invalidate_caches()
    try:
        return importlib.import_module("app")
    finally:
        sys.path.remove(str(layer_python))
        for name, module in saved.items():
            sys.modules.pop(name, None)
            if module is not None:
                sys.modules[name] = module


def model_layer(root: Path, train_into) -> Path:
    """A model layer's python/ folder under root: the package trained_model as the build makes it."""
    package = root / "python" / "trained_model"
    train_into(package)
    (package / "__init__.py").write_text('"""The model and model_meta.json."""\n')
    return root / "python"


@pytest.fixture(scope="session")
def layer(tmp_path_factory) -> Path:
    """The house-price model, trained by model/train.py on model/data in this project's model format."""
    return model_layer(
        tmp_path_factory.mktemp("model-layer"),
        lambda package: train.train(train.DEFAULT_DATA, package, train.DEFAULT_FORMAT),
    )


@pytest.fixture(scope="session")
def meta(layer) -> dict:
    return json.loads((layer / "trained_model" / "model_meta.json").read_text())


@pytest.fixture(scope="session")
def app(layer):
    """The handler's module, initialised with the trained model."""
    return import_app(layer)


class OnnxPipeline:
    """An ONNX model run straight by ONNX Runtime, answering DataFrames as the scikit-learn pipeline does."""

    def __init__(self, path: Path, meta: dict):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = meta["onnx_inputs"]
        self.classes_ = meta.get("classes")

    def run(self, frame):
        feeds = {}
        for given in self.inputs:  # as model/export.py describes them in model_meta.json
            dtype = object if given["dtype"] == "str" else given["dtype"]
            feeds[given["name"]] = frame[given["columns"]].to_numpy().astype(dtype)
        return self.session.run(None, feeds)

    def predict(self, frame):
        return self.run(frame)[0].ravel()

    def predict_proba(self, frame):
        return self.run(frame)[1]


def load_pipeline(layer: Path):
    """The model read straight from the model file, bypassing the handler: the reference for golden answers."""
    package = layer / "trained_model"
    meta = json.loads((package / "model_meta.json").read_text())
    if meta["format"] == "onnx":
        return OnnxPipeline(package / meta["model_file"], meta)
    if meta["format"] == "skops":
        import skops.io

        return skops.io.load(package / meta["model_file"], trusted=meta["trusted_types"])
    import joblib

    return joblib.load(package / meta["model_file"])


@pytest.fixture(scope="session")
def pipeline(layer):
    return load_pipeline(layer)


@pytest.fixture
def layer_copy(layer, tmp_path) -> Path:
    """A copy of the model layer's python/ folder that a test may break."""
    return Path(shutil.copytree(layer, tmp_path / "python"))


def api_event(
    api: str,
    method: str = "POST",
    path: str = "/predict",
    body: str | None = None,
    content_type: str | None = "application/json",
    base64_encoded: bool = False,
) -> dict:
    """An event as each API sends it: "rest" (REST API, payload format 1.0), "http" (HTTP API, 2.0) or
    "function-url" (2.0, every path). The body goes as it is: encode it first when base64_encoded."""
    if api == "rest":  # format 1.0 keeps the client's header case
        return {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": {"Content-Type": content_type} if content_type else None,
            "requestContext": {"stage": "Prod", "path": f"/Prod{path}", "httpMethod": method},
            "body": body,
            "isBase64Encoded": base64_encoded,
        }
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}" if api == "http" else "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": content_type} if content_type else {},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "isBase64Encoded": base64_encoded,
    }
    if body is not None:  # format 2.0 leaves the body out when there is none
        event["body"] = body
    return event


@pytest.fixture
def invoke(app):
    """Call the handler with an event, as Lambda does; returns what it returns."""
    return lambda event: app.handler(event, LambdaContext())


# The helpers above, as fixtures for the test modules (which do not import conftest).
@pytest.fixture(scope="session", name="api_event")
def api_event_fixture():
    return api_event


@pytest.fixture(scope="session", name="import_app")
def import_app_fixture():
    return import_app


@pytest.fixture(scope="session", name="model_layer")
def model_layer_fixture():
    return model_layer


@pytest.fixture(scope="session", name="load_pipeline")
def load_pipeline_fixture():
    return load_pipeline


@pytest.fixture
def context():
    return LambdaContext()
