"""Every file in events/ through the handler, with the exact answer it gives (`sam local invoke -e` shows the same).
A new event file needs its answer in expected() below."""

import json
from pathlib import Path

import pandas as pd
import pytest

EVENTS = Path(__file__).resolve().parents[2] / "events"
TUTORIAL = {"Property Type": "S", "Old/New": "Y", "Duration": "L"}
BATCH = [
    TUTORIAL,
    {"Property Type": "D", "Old/New": "N", "Duration": "F"},
    {"Property Type": "F", "Old/New": "N", "Duration": "L"},
]
API_PREFIXES = ["rest-api", "http-api", "function-url"]


def rejected(message: str) -> tuple[int, dict]:
    return 400, {"error": message, "status": 400}


def expected(name: str, pipeline, meta: dict) -> tuple[int, dict]:
    """(status, answer) for events/<name>; the predictions are the pipeline's own, called without the handler."""
    tutorial = pipeline.predict(pd.DataFrame([TUTORIAL])).tolist()[0]
    batch = pipeline.predict(pd.DataFrame(BATCH)).tolist()
    features, property_types = "'Property Type', 'Old/New', 'Duration'", "'D', 'F', 'O', 'S', 'T'"
    answers = {
        "direct.json": (200, {"prediction": tutorial}),
        "direct-batch.json": (200, {"predictions": batch}),
        "direct-dataframe-split.json": (200, {"predictions": batch}),
        "direct-bad-category.json": rejected(f"feature 'Property Type' must be one of {property_types}, got 'Castle'"),
        "direct-bad-missing-feature.json": rejected(
            f"missing feature(s) 'Duration'; the model's features are {features}"
        ),
    }
    for api in API_PREFIXES:
        answers[f"{api}-predict.json"] = (200, {"prediction": tutorial})
        answers[f"{api}-health.json"] = (200, {"model": meta, "max_batch_rows": 1000, "max_body_bytes": 1_000_000})
        answers[f"{api}-bad-body.json"] = rejected("the body is not JSON: Expecting value: line 1 column 1 (char 0)")
    if name not in answers:
        pytest.fail(f"events/{name} has no expected answer: add it to expected() in tests/unit/test_events.py")
    return answers[name]


@pytest.mark.parametrize("name", sorted(path.name for path in EVENTS.glob("*.json")))
def test_every_event_gets_its_exact_answer(invoke, pipeline, meta, name):
    event = json.loads((EVENTS / name).read_text())
    status, answer = expected(name, pipeline, meta)
    response = invoke(event)
    if name.startswith("direct"):  # invoked directly: the answer itself, errors included
        assert response == answer
    else:  # through the API: a proxy response
        assert {**response, "body": json.loads(response["body"])} == {
            "statusCode": status,
            "headers": {"Content-Type": "application/json"},
            "body": answer,
        }


def test_events_hold_the_tutorial_request_and_the_batch():
    assert json.loads((EVENTS / "direct.json").read_text()) == TUTORIAL
    assert json.loads((EVENTS / "direct-batch.json").read_text()) == BATCH
    split = json.loads((EVENTS / "direct-dataframe-split.json").read_text())["dataframe_split"]
    assert [dict(zip(split["columns"], row, strict=True)) for row in split["data"]] == BATCH
    for path in EVENTS.glob("*-predict.json"):  # the chosen API's
        assert json.loads(json.loads(path.read_text())["body"]) == TUTORIAL, path.name
