"""The API's OpenAPI document (src/predict/openapi.py, answered at GET /openapi.json): valid OpenAPI 3.1, built at
init from model_meta.json - so any model saved with model/export.py is described with no change - and answered
through every API. That every answer matches it is tests/unit/test_properties.py's job."""

import json

import export
import pandas as pd
import pytest
import train
import train_iris_classifier
from openapi import document
from openapi_spec_validator import validate
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

APIS = ["rest", "http", "function-url"]


@pytest.fixture(scope="module")
def metas(meta, tmp_path_factory) -> dict[str, dict]:
    """model_meta.json of three kinds of model: the house prices (categories only), the iris classifier (numbers,
    labels and probabilities), and an encoder that ignores unknown categories beside a number."""
    iris = train_iris_classifier.train(tmp_path_factory.mktemp("iris"), train.DEFAULT_FORMAT)
    sample = pd.DataFrame({"colour": ["red", "blue", "red", "green"], "size": [1.0, 2.0, 3.0, 4.0]})
    encode = ColumnTransformer(
        [("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"])], remainder="passthrough"
    )
    pipeline = Pipeline([("encode", encode), ("fit", LinearRegression())]).fit(sample, [10.0, 20.0, 30.0, 45.0])
    toy = export.save_model(pipeline, sample, tmp_path_factory.mktemp("toy"), train.DEFAULT_FORMAT, name="toy")
    return {"house prices": meta, "iris classifier": iris, "ignores unknown categories": toy}


@pytest.mark.parametrize(
    ("model", "probabilities"),
    [
        ("house prices", False),
        ("iris classifier", True),
        ("iris classifier", False),  # a classifier without predict_proba
        ("ignores unknown categories", False),
    ],
)
def test_document_is_valid_openapi_for_each_kind_of_model(metas, model, probabilities):
    validate(document(metas[model], probabilities, 1000, 1_000_000))  # raises, naming the problem, when it is not


def test_document_describes_each_feature_the_way_the_handler_checks_it(metas):
    record = document(metas["house prices"], False, 1000, 1_000_000)["components"]["schemas"]["Record"]
    assert record["properties"] == {
        "Property Type": {"enum": ["D", "F", "O", "S", "T"]},
        "Old/New": {"enum": ["N", "Y"]},
        "Duration": {"enum": ["F", "L"]},
    }
    assert record["required"] == ["Property Type", "Old/New", "Duration"]
    assert record["additionalProperties"] is False

    iris = document(metas["iris classifier"], True, 1000, 1_000_000)["components"]["schemas"]
    finite = {"type": "number", "minimum": -1.7976931348623157e308, "maximum": 1.7976931348623157e308}
    assert list(iris["Record"]["properties"]) == [feature["name"] for feature in metas["iris classifier"]["features"]]
    assert list(iris["Record"]["properties"].values()) == [finite] * 4

    toy = document(metas["ignores unknown categories"], False, 1000, 1_000_000)["components"]["schemas"]["Record"]
    assert toy["properties"]["colour"] == {"type": ["string"], "examples": ["blue", "green", "red"]}


def test_document_describes_each_answer_of_the_task(metas):
    house = document(metas["house prices"], False, 1000, 1_000_000)["components"]["schemas"]
    assert house["Prediction"]["properties"] == {"prediction": {"type": "number"}}
    iris = document(metas["iris classifier"], True, 1000, 1_000_000)["components"]["schemas"]
    labels = {"enum": ["setosa", "versicolor", "virginica"]}
    assert iris["Prediction"]["properties"]["prediction"] == labels
    assert iris["Predictions"]["properties"]["predictions"] == {"type": "array", "items": labels}
    assert iris["Prediction"]["properties"]["probabilities"]["required"] == labels["enum"]
    assert iris["Predictions"]["required"] == ["predictions", "probabilities"]


def test_every_status_the_handler_answers_is_documented_with_the_error_body(app):
    paths, responses = app.OPENAPI["paths"], app.OPENAPI["components"]["responses"]
    assert {path: set(operations) for path, operations in paths.items()} == {
        "/predict": {"post"},
        "/": {"get"},
        "/openapi.json": {"get"},
    }
    assert set(paths["/predict"]["post"]["responses"]) == {"200", "400", "413", "415", "500"}
    for status in ("400", "404", "405", "413", "415"):
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert set(responses["405"]["headers"]) == {"Allow"}


def test_limits_in_the_document_are_the_functions(layer, import_app, monkeypatch):
    monkeypatch.setenv("MAX_BATCH_ROWS", "2")
    monkeypatch.setenv("MAX_BODY_BYTES", "100")
    schemas = import_app(layer).OPENAPI["components"]["schemas"]
    assert schemas["Records"]["maxItems"] == 2
    assert schemas["Metadata"]["properties"]["max_body_bytes"] == {"type": "integer", "const": 100}


@pytest.mark.parametrize("api", APIS)
def test_get_openapi_json_answers_the_document_through_every_api(invoke, app, api_event, api):
    response = invoke(api_event(api, "GET", "/openapi.json"))
    assert (response["statusCode"], response["headers"]) == (200, {"Content-Type": "application/json"})
    assert json.loads(response["body"]) == app.OPENAPI
    response = invoke(api_event(api, "POST", "/openapi.json", body="{}"))
    assert (response["statusCode"], response["headers"]["Allow"]) == (405, "GET")
