"""The API's OpenAPI 3.1 document, built once at init from model_meta.json: GET /openapi.json answers it.

It describes exactly what app.py accepts and answers - each feature's type and allowed values, every request form,
every status with its body - so that clients, API gateways and fuzzers (`make fuzz`) can rely on it. A model of your
own saved with model/export.py is described with no change here.
"""

import json
import sys

JSON = "application/json"
ERROR_STATUSES = {
    "400": "A mistake in the request: the message names it (a body that is not JSON, a missing or unknown feature, "
    "a wrong type, a category the model never saw, an empty batch, numbers so far out that they overflow the "
    "model's arithmetic).",
    "404": "No such path.",
    "405": "A method this path does not take; the Allow header names the one it takes.",
    "413": "Too big: more records than max_batch_rows, or a body over max_body_bytes (see GET /).",
    "415": "A Content-Type that is not JSON.",
}


def document(meta: dict, probabilities: bool, max_batch_rows: int, max_body_bytes: int) -> dict:
    """The OpenAPI document of the function with this model (meta: model_meta.json) and these limits.
    probabilities: whether a classifier answers them (it has predict_proba)."""
    features = meta["features"]
    names = [feature["name"] for feature in features]
    rows = {"minItems": 1, "maxItems": max_batch_rows}
    by_class = probabilities_schema(meta["classes"]) if probabilities else None
    schemas = {
        "Record": {
            "description": "One record: every feature of the model, nothing else.",
            "type": "object",
            "properties": {feature["name"]: feature_schema(feature, meta) for feature in features},
            "required": names,
            "additionalProperties": False,
        },
        "Records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}, **rows},
        "Instances": {
            "type": "object",
            "properties": {"instances": {"$ref": "#/components/schemas/Records"}},
            "required": ["instances"],
            "additionalProperties": False,
        },
        "DataframeSplit": {
            "description": "MLflow's form (pandas' to_dict(orient='split')). The columns may come in any order, "
            "each row in the order of the columns; this schema shows the model's order. Other keys (index) are "
            "ignored.",
            "type": "object",
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "properties": {
                        "columns": {"const": names},
                        "data": {
                            "type": "array",
                            "items": {
                                "type": "array",
                                "prefixItems": [feature_schema(feature, meta) for feature in features],
                                "items": False,
                                "minItems": len(names),
                            },
                            **rows,
                        },
                    },
                    "required": ["columns", "data"],
                }
            },
            "required": ["dataframe_split"],
            "additionalProperties": False,
        },
        "Prediction": answer_schema("prediction", prediction_schema(meta), by_class),
        "Predictions": answer_schema(
            "predictions", {"type": "array", "items": prediction_schema(meta)}, by_class, batch=True
        ),
        "Metadata": {
            "type": "object",
            "properties": {
                "model": {
                    "description": "model_meta.json: the model file, task, features, library versions, metrics.",
                    "type": "object",
                    "required": ["name", "task", "features"],
                },
                "max_batch_rows": {"type": "integer", "const": max_batch_rows},
                "max_body_bytes": {"type": "integer", "const": max_body_bytes},
            },
            "required": ["model", "max_batch_rows", "max_body_bytes"],
            "additionalProperties": False,
        },
        "Error": {
            "type": "object",
            "properties": {
                "error": {"type": "string", "description": "What is wrong, in one line."},
                "status": {"type": "integer", "minimum": 400, "maximum": 499, "description": "The HTTP status."},
            },
            "required": ["error", "status"],
            "additionalProperties": False,
        },
        "InternalError": {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "status": {"const": 500},
                "request_id": {"type": "string", "description": "Find the traceback in the function's log by it."},
            },
            "required": ["error", "status", "request_id"],
            "additionalProperties": False,
        },
    }
    responses = {status: error_response(description) for status, description in ERROR_STATUSES.items()}
    responses["405"]["headers"] = {
        "Allow": {"description": "The method this path takes.", "schema": {"type": "string"}}
    }
    responses["500"] = {
        "description": "An internal error (a bug): the traceback is in the function's log, under request_id.",
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/InternalError"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{meta['name']} ({meta['task']})",
            "version": f"model sha256 {meta['sha256'][:12]}",
            "description": f"Predictions of the {meta['task']} model {meta['name']!r} from its features "
            f"{', '.join(map(repr, names))}. Paths are relative to the API's base URL (PredictUrl less "
            '\'predict\'). Every error is a JSON object {"error": "<what is wrong>", "status": <HTTP status>}: '
            "see components.responses for 404 (any other path) and 405 (any other method). Behind API Gateway, "
            "what it does not route gets its own answer instead: other paths, and behind a REST API other methods.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict one record or a batch",
                    "operationId": "predict",
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": f"#/components/schemas/{form}"}
                                        for form in ("Record", "Records", "Instances", "DataframeSplit")
                                    ]
                                },
                                "example": {name: example_value(f) for name, f in zip(names, features, strict=True)},
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": 'One record gets "prediction", any other form "predictions" (in the '
                            "records' order)" + ("; with the probability of each class." if probabilities else "."),
                            "content": {
                                JSON: {
                                    "schema": {
                                        "oneOf": [
                                            {"$ref": "#/components/schemas/Prediction"},
                                            {"$ref": "#/components/schemas/Predictions"},
                                        ]
                                    }
                                }
                            },
                        },
                        **{status: {"$ref": f"#/components/responses/{status}"} for status in ("400", "413", "415")},
                        "500": {"$ref": "#/components/responses/500"},
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "The model's metadata and the request limits",
                    "operationId": "metadata",
                    "responses": {
                        "200": {
                            "description": "model_meta.json and the limits.",
                            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Metadata"}}},
                        },
                        "500": {"$ref": "#/components/responses/500"},
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {JSON: {"schema": {"type": "object"}}},
                        },
                        "500": {"$ref": "#/components/responses/500"},
                    },
                }
            },
        },
        "components": {"schemas": schemas, "responses": responses},
    }


def feature_schema(feature: dict, meta: dict) -> dict:
    """What app.py accepts for a feature: a finite number, or one of the categories (any value of their JSON types
    when the model handles unknown categories)."""
    if feature["kind"] == "number":
        return {"type": "number", "minimum": -sys.float_info.max, "maximum": sys.float_info.max}
    categories = feature["categories"]
    if meta["handles_unknown_categories"]:
        return {"type": sorted({json_type(value) for value in categories}), "examples": categories}
    return {"enum": categories}


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", type(None): "null"}[type(value)]


def example_value(feature: dict):
    return 0 if feature["kind"] == "number" else feature["categories"][0]


def prediction_schema(meta: dict) -> dict:
    """A regressor answers a number, a classifier one of its classes."""
    return {"enum": meta["classes"]} if meta["task"] == "classification" else {"type": "number"}


def answer_schema(key: str, schema: dict, by_class: dict | None, batch: bool = False) -> dict:
    """{key: schema}, plus "probabilities" (one object per record in a batch) when by_class is given."""
    properties = {key: schema}
    if by_class is not None:
        properties["probabilities"] = {"type": "array", "items": by_class} if batch else by_class
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def probabilities_schema(classes: list) -> dict:
    """{class: probability}; JSON object keys are text, so a class 1 is the key "1", as json.dumps writes it."""
    keys = list(json.loads(json.dumps(dict.fromkeys(classes))))
    return {
        "description": "The probability of each class.",
        "type": "object",
        "properties": {key: {"type": "number", "minimum": 0, "maximum": 1} for key in keys},
        "required": keys,
        "additionalProperties": False,
    }


def error_response(description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
