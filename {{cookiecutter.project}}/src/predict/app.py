"""Predict with the model shipped in the model layer (minimal first version)."""

import json
from importlib.resources import files

import joblib
import pandas as pd

MODEL_FILES = files("trained_model")
META = json.loads((MODEL_FILES / "model_meta.json").read_text())
MODEL = joblib.load(MODEL_FILES / META["model_file"])


def handler(event, context):
    body = event.get("body")
    record = json.loads(body) if isinstance(body, str) else event
    prediction = MODEL.predict(pd.DataFrame([record]))[0]
    return {"prediction": float(prediction)}
