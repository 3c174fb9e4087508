"""Remove the files the chosen options do not use, and nothing else."""

import json
import shutil
from pathlib import Path

values = json.loads(r"""{{ cookiecutter | tojson }}""")
# Each API's sample events are events/<api>-*.json; keep only the chosen API's.
EVENT_PREFIXES = {"http": "http-api-", "rest": "rest-api-", "function-url": "function-url-", "none": None}

for api, prefix in EVENT_PREFIXES.items():
    if prefix and api != values["api"]:
        for event in Path("events").glob(f"{prefix}*.json"):
            event.unlink()

# The load test (make load) and the fuzzer (make fuzz) need a URL.
if values["api"] == "none":
    Path("scripts/locustfile.py").unlink()
    Path("schemathesis.toml").unlink()

# onnx serves the model with ONNX Runtime alone: pandas and scikit-learn only train it (model/requirements.txt).
if values["model_format"] == "onnx":
    shutil.rmtree("layers/pandas")
    shutil.rmtree("layers/sklearn")
else:
    shutil.rmtree("layers/onnxruntime")
    Path("model/requirements.txt").unlink()
    Path("model/requirements.in").unlink()
