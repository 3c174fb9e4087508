"""The model is checked before it is trusted (at init, once); answers equal the pipeline's own; any model saved with
model/export.py works unchanged (a classifier with numeric features, an encoder that ignores unknown categories);
an internal failure answers 500 without a traceback; each request leaves one structured log line."""

import hashlib
import io
import json
from importlib.metadata import version

import pandas as pd
import pytest
import sklearn
import sklearn.base
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import {% if cookiecutter.model_format == "onnx" %}FunctionTransformer, {% endif %}OneHotEncoder

import export
import train
import train_iris_classifier

TUTORIAL = {"Property Type": "S", "Old/New": "Y", "Duration": "L"}
BATCH = [
    TUTORIAL,
    {"Property Type": "T", "Old/New": "N", "Duration": "F"},
    {"Property Type": "O", "Old/New": "N", "Duration": "L"},
]
REQUEST_ID = "11111111-2222-3333-4444-555555555555"
RUNTIME_LIBRARY = {"joblib": "scikit-learn", "skops": "scikit-learn", "onnx": "onnxruntime"}  # what runs the model


def refusal(import_app, layer_python) -> str:
    """The message of the ModelRefused that importing app raises (its class belongs to the module that failed)."""
    with pytest.raises(RuntimeError) as refused:
        import_app(layer_python)
    assert refused.type.__name__ == "ModelRefused"
    return str(refused.value)


def rewrite_meta(layer_python, change) -> dict:
    path = layer_python / "trained_model" / "model_meta.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    return meta


# --- Checked before it is trusted -------------------------------------------------------------------------------


def test_tampered_model_file_is_refused_at_init(layer_copy, meta, import_app):
    model_file = layer_copy / "trained_model" / meta["model_file"]
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(data)
    assert refusal(import_app, layer_copy) == (
        f"{meta['model_file']} does not match the sha256 in model_meta.json: it changed after it was saved; "
        "save it again with model/export.py"
    )


def test_model_saved_with_another_library_version_is_refused_at_init_naming_both_versions(layer_copy, meta, import_app):
    library = RUNTIME_LIBRARY[meta["format"]]
    rewrite_meta(layer_copy, lambda meta: meta["versions"].update({library: "1.0.2"}))
    assert refusal(import_app, layer_copy) == (
        f"the model was saved with {library} 1.0.2 but this function has {library} {version(library)}: "
        "retrain it with the layers' pins"
    )
{%- if cookiecutter.model_format == "onnx" %}


def test_model_onnx_runtime_cannot_load_is_refused_at_init(layer_copy, meta, import_app):
    model_file = layer_copy / "trained_model" / meta["model_file"]
    model_file.write_bytes(b"not an ONNX model")
    rewrite_meta(layer_copy, lambda meta: meta.update(sha256=hashlib.sha256(model_file.read_bytes()).hexdigest()))
    assert refusal(import_app, layer_copy).startswith("model.onnx: ONNX Runtime cannot load it: ")
{%- else %}


def test_model_pickled_by_another_scikit_learn_is_refused_even_when_the_metadata_agrees(
    layer_copy, meta, pipeline, import_app, monkeypatch
):
    """scikit-learn's InconsistentVersionWarning is an error: the file itself says which version wrote it."""
    model_file = layer_copy / "trained_model" / meta["model_file"]
    with monkeypatch.context() as patch:  # what an older scikit-learn writes into each estimator's state
        patch.setattr(sklearn.base, "__version__", "1.0.2")
        export._write_model(pipeline, model_file, meta["format"])
    rewrite_meta(layer_copy, lambda meta: meta.update(sha256=hashlib.sha256(model_file.read_bytes()).hexdigest()))
    message = refusal(import_app, layer_copy)
    assert message.startswith(f"{meta['model_file']}: Trying to unpickle estimator ")
    assert f"from version 1.0.2 when using version {sklearn.__version__}" in message
{%- endif %}


def test_missing_model_file_is_refused_at_init(layer_copy, meta, import_app):
    (layer_copy / "trained_model" / meta["model_file"]).unlink()
    assert refusal(import_app, layer_copy) == (
        f"trained_model/{meta['model_file']}, named in model_meta.json, is missing"
    )


def test_missing_model_meta_is_refused_at_init(layer_copy, import_app):
    (layer_copy / "trained_model" / "model_meta.json").unlink()
    assert refusal(import_app, layer_copy) == (
        "trained_model/model_meta.json is missing: save the model with model/export.py"
    )


def test_missing_model_layer_is_refused_at_init(tmp_path, import_app):
    assert refusal(import_app, tmp_path) == (
        "no Python package 'trained_model': attach the model layer (sam build makes it)"
    )


# --- Golden predictions -----------------------------------------------------------------------------------------


def test_tutorial_request_and_a_small_batch_give_the_pipelines_own_numbers(invoke, pipeline):
    one = invoke(TUTORIAL)
    batch = invoke(BATCH)
    assert one == {"prediction": pipeline.predict(pd.DataFrame([TUTORIAL]))[0].item()}
    assert batch == {"predictions": pipeline.predict(pd.DataFrame(BATCH)).tolist()}
    assert 50_000 < one["prediction"] < 1_000_000  # a house price in pounds
    assert all(type(value) is float for value in [one["prediction"], *batch["predictions"]])  # plain JSON numbers


# --- Any model saved with export.py -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris(tmp_path_factory, model_layer, import_app, load_pipeline):
    """The handler with model/train_iris_classifier.py's classifier: four numeric features, three labels."""
    layer = model_layer(
        tmp_path_factory.mktemp("iris"), lambda package: train_iris_classifier.train(package, train.DEFAULT_FORMAT)
    )
    return import_app(layer), load_pipeline(layer)


IRIS = {"sepal length (cm)": 5.9, "sepal width (cm)": 3.0, "petal length (cm)": 5.1, "petal width (cm)": 1.8}
IRIS_SMALL = {"sepal length (cm)": 5, "sepal width (cm)": 3.4, "petal length (cm)": 1.5, "petal width (cm)": 0.2}


def test_classifier_answers_labels_and_probabilities_per_class(iris, context):
    app, pipeline = iris

    def expected(records):  # the pipeline's own labels and probabilities, by class
        frame = pd.DataFrame(records)
        classes = [str(label) for label in pipeline.classes_]
        probabilities = [dict(zip(classes, row, strict=True)) for row in pipeline.predict_proba(frame)]
        return pipeline.predict(frame).tolist(), probabilities

    labels, probabilities = expected([IRIS])
    assert app.handler(IRIS, context) == {"prediction": labels[0], "probabilities": probabilities[0]}
    labels, probabilities = expected([IRIS, IRIS_SMALL])
    assert app.handler([IRIS, IRIS_SMALL], context) == {"predictions": labels, "probabilities": probabilities}
    assert labels == ["virginica", "setosa"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("5.1", "'5.1'"),
        (True, "true"),
        (None, "null"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        ([5.1], "[5.1]"),
        ({"cm": 5.1}, '{"cm": 5.1}'),
        pytest.param(10**400, str(10**400)[:80] + "... (401 characters)", id="int beyond a float, cut"),
    ],
)
def test_numeric_feature_rejects_strings_booleans_and_nan_naming_the_feature(iris, context, value, shown):
    app, _ = iris
    assert app.handler({**IRIS, "petal width (cm)": value}, context) == {
        "error": f"feature 'petal width (cm)' must be a finite number, got {shown}",
        "status": 400,
    }


def test_numeric_feature_rejects_nan_sent_through_an_api(iris, context, api_event):
    app, _ = iris
    body = json.dumps(IRIS).replace("1.8", "NaN")
    response = app.handler(api_event("http", body=body), context)
    assert (response["statusCode"], json.loads(response["body"])) == (
        400,
        {"error": "feature 'petal width (cm)' must be a finite number, got NaN", "status": 400},
    )


def test_health_shows_a_classifiers_features_and_classes(iris, context, api_event):
    app, _ = iris
    model = json.loads(app.handler(api_event("function-url", "GET", "/"), context)["body"])["model"]
    assert model["features"] == [{"name": name, "kind": "number"} for name in IRIS]
    assert model["classes"] == ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def ignores_unknown(tmp_path_factory, model_layer, import_app, load_pipeline):
    """A pipeline whose encoder ignores unknown categories, with a numeric feature beside the category."""
    sample = pd.DataFrame({"colour": ["red", "blue", "red", "green"], "size": [1.0, 2.0, 3.0, 4.0]})
    encode = ColumnTransformer(
        [("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"])], remainder="passthrough"
    )
    pipeline = Pipeline([("encode", encode), ("fit", LinearRegression())]).fit(sample, [10.0, 20.0, 30.0, 45.0])
    layer = model_layer(
        tmp_path_factory.mktemp("toy"),
        lambda package: export.save_model(pipeline, sample, package, train.DEFAULT_FORMAT, name="toy"),
    )
    return import_app(layer), load_pipeline(layer)


def test_unseen_category_is_predicted_when_the_encoder_ignores_unknowns(ignores_unknown, context):
    app, pipeline = ignores_unknown
    record = {"colour": "purple", "size": 2.5}
    assert app.META["handles_unknown_categories"] is True
    assert app.handler(record, context) == {"prediction": pipeline.predict(pd.DataFrame([record]))[0].item()}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"colour": 3, "size": 2.5}, "feature 'colour' must be one of 'blue', 'green', 'red', got 3"),
        ({"colour": None, "size": 2.5}, "feature 'colour' must be one of 'blue', 'green', 'red', got null"),
        ({"colour": "red", "size": "2.5"}, "feature 'size' must be a finite number, got '2.5'"),
        ({"colour": "red"}, "missing feature(s) 'size'; the model's features are 'colour', 'size'"),
    ],
)
def test_wrong_types_are_still_rejected_when_the_encoder_ignores_unknowns(ignores_unknown, context, record, message):
    app, _ = ignores_unknown
    assert app.handler(record, context) == {"error": message, "status": 400}


{%- if cookiecutter.model_format == "onnx" %}


# --- ONNX: converted and proven equal when saved, or refused --------------------------------------------------------


def test_saved_onnx_model_records_its_parity_with_scikit_learn(meta):
    parity = meta["parity"]
    assert parity["rows"] > 2000 and parity["tolerance"] == export.RELATIVE_TOLERANCE
    assert 0 <= parity["max_relative_error"] <= export.RELATIVE_TOLERANCE
    assert meta["versions"]["onnxruntime"] == version("onnxruntime") and meta["model_file"] == "model.onnx"


def test_pipeline_skl2onnx_cannot_convert_is_refused_naming_the_step_and_nothing_is_written(tmp_path):
    sample = pd.DataFrame({"area": [50.0, 80.0, 120.0, 200.0]})
    doubled = FunctionTransformer(lambda frame: frame * 2)  # a Python function: ONNX cannot hold it
    pipeline = Pipeline([("double", doubled), ("fit", LinearRegression())]).fit(sample, [1.0, 2.0, 3.0, 5.0])
    with pytest.raises(export.ModelNotConvertible) as refused:
        export.save_model(pipeline, sample, tmp_path / "out", "onnx")
    message = str(refused.value)
    assert message.startswith("skl2onnx cannot convert step 'double' (FunctionTransformer) (")
    assert message.endswith("save it with model_format 'joblib' or 'skops', which serve any scikit-learn pipeline")
    assert "\n" not in message and not (tmp_path / "out").exists()


def test_converted_model_that_answers_differently_is_refused_naming_the_worst_row_and_nothing_is_lost(
    tmp_path, monkeypatch
):
    """A conversion that goes wrong (here: skl2onnx handed another fit of the same pipeline, as a converter bug
    would) is caught by the parity check, and the model already in out_dir stays as it was."""
    sample = pd.DataFrame({"colour": ["red", "blue", "red", "green"], "size": [1.0, 2.0, 3.0, 4.0]})
    encode = ColumnTransformer([("colour", OneHotEncoder(), ["colour"])], remainder="passthrough")
    pipeline = Pipeline([("encode", encode), ("fit", LinearRegression())]).fit(sample, [10.0, 20.0, 30.0, 45.0])
    other_fit = sklearn.base.clone(pipeline).fit(sample, [10.0, 20.0, 30.0, 40.0])
    convert = export._convert
    monkeypatch.setattr(export, "_convert", lambda _, inputs, probabilities: convert(other_fit, inputs, probabilities))
    (tmp_path / "model_meta.json").write_text("the previous model's metadata")
    with pytest.raises(export.ModelNotConvertible) as refused:
        export.save_model(pipeline, sample, tmp_path, "onnx")
    assert str(refused.value) == (
        "ONNX Runtime answers row 3 ({'colour': 'green', 'size': 4.0}) with 40 where scikit-learn answers 45: "
        "relative error 0.11 > 1e-05; save it with model_format 'joblib' or 'skops', which serve it exactly"
    )
    assert (tmp_path / "model_meta.json").read_text() == "the previous model's metadata"
    assert not (tmp_path / "model.onnx").exists()


def test_classifier_converts_with_its_labels_and_probabilities(iris):
    app, _ = iris
    assert app.META["parity"]["labels_equal"] is True
    assert app.META["parity"]["max_probability_error"] <= export.PROBABILITY_TOLERANCE
{%- endif %}


# --- Limits from the environment --------------------------------------------------------------------------------


def test_limits_come_from_the_environment(layer, import_app, context, api_event, monkeypatch):
    monkeypatch.setenv("MAX_BATCH_ROWS", "2")
    monkeypatch.setenv("MAX_BODY_BYTES", "100")
    app = import_app(layer)
    assert app.handler([TUTORIAL] * 3, context) == {
        "error": "3 records, more than MAX_BATCH_ROWS=2: split the batch",
        "status": 413,
    }
    assert len(app.handler([TUTORIAL] * 2, context)["predictions"]) == 2
    body = json.dumps([TUTORIAL] * 2)
    response = app.handler(api_event("rest", body=body), context)
    assert json.loads(response["body"]) == {
        "error": f"the body has {len(body)} bytes, more than MAX_BODY_BYTES=100",
        "status": 413,
    }


# --- Failures and logs ------------------------------------------------------------------------------------------


@pytest.fixture
def logs(app):
    """The handler's log lines, parsed: powertools writes one JSON object per line."""
    handler = app.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)


class BrokenModel:
    def predict(self, records):
        raise RuntimeError("disk on fire")


# A model answering NaN is not here: that comes from numbers it overflows on, a 400 (tests/unit/test_properties.py).
@pytest.mark.parametrize("api", [None, "rest", "http", "function-url"])
def test_internal_failure_answers_500_with_the_request_id_and_logs_the_traceback(
    app, invoke, api_event, logs, monkeypatch, api
):
    monkeypatch.setattr(app, "MODEL", BrokenModel())
    event = TUTORIAL if api is None else api_event(api, body=json.dumps(TUTORIAL))
    response = invoke(event)
    answer = {
        "error": "internal error: the log has the details under this request_id",
        "status": 500,
        "request_id": REQUEST_ID,
    }
    if api is None:
        assert response == answer
    else:
        assert (response["statusCode"], json.loads(response["body"])) == (500, answer)
    error, answered = logs()
    assert error["level"] == "ERROR" and "Traceback" in error["exception"]
    assert "disk on fire" in error["exception"]
    assert (answered["outcome"], answered["status"], answered["function_request_id"]) == ("failed", 500, REQUEST_ID)


def test_each_request_logs_rows_latency_and_outcome_with_the_request_id_never_the_payload(invoke, logs):
    invoke(BATCH)
    invoke({**TUTORIAL, "Duration": "U"})
    ok, rejected = logs()
    assert {key: ok[key] for key in ("message", "outcome", "status", "rows", "function_request_id")} == {
        "message": "answered",
        "outcome": "ok",
        "status": 200,
        "rows": 3,
        "function_request_id": REQUEST_ID,
    }
    assert isinstance(ok["cold_start"], bool) and ok["latency_ms"] >= 0
    assert not {"Property Type", "Old/New", "Duration", "event"} & set(ok)
    assert "Property Type" not in json.dumps(ok)
    assert (rejected["outcome"], rejected["status"], rejected["error"]) == (
        "rejected",
        400,
        "feature 'Duration' must be one of 'F', 'L', got 'U'",
    )
