"""The generated project's own test suite passes in a freshly generated project, for every API and every model format.

Each API with the default model format, and each model format with the default API: what the unit tests do differs
by API (its events) or by format (its model), never by the two together, and each run costs about half a minute.
"""

import os

import pytest
from conftest import generate, run
from test_render import CHOICES, DEFAULTS

COMBINATIONS = sorted({(api, DEFAULTS["model_format"]) for api in CHOICES["api"]}
                      | {(DEFAULTS["api"], model_format) for model_format in CHOICES["model_format"]})


@pytest.mark.parametrize(("api", "model_format"), COMBINATIONS)
def test_generated_project_suite_passes(tmp_path, project_venv, api, model_format):
    project = generate(tmp_path, api=api, model_format=model_format)
    # The property tests (tests/unit/test_properties.py) send every API's events whatever the project's API: their
    # full 1,000 examples per event kind run once per engine (scikit-learn with joblib, ONNX Runtime with onnx, with
    # the default API); the other projects run 100 (skops loads the same scikit-learn model as joblib).
    full = api == DEFAULTS["api"] and model_format in ("joblib", "onnx")
    env = None if full else {**os.environ, "PROPERTY_EXAMPLES": "100"}
    result = run([project_venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env)
    summary = result.stdout.strip().splitlines()[-1]
    print(summary)
    assert " passed" in summary and "failed" not in summary and "error" not in summary
