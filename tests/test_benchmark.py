"""The generated project's benchmark runs on the default project and on the onnx one; their tables go to the CI log."""

import json
import subprocess
import sys

import pytest

from conftest import sam_env

pytestmark = pytest.mark.build

LAYERS = {"joblib": ["ModelLayer", "PandasLayer", "PredictFunction", "SklearnLayer"],
          "onnx": ["ModelLayer", "OnnxRuntimeLayer", "PredictFunction"]}


@pytest.mark.parametrize("model_format", ["joblib", "onnx"])
def test_benchmark_measures_everything_against_the_tutorial_recipe(request, model_format, capsys):
    project = request.getfixturevalue("built_default_project" if model_format == "joblib" else "built_onnx_project")
    # Fewer fresh interpreters and warm calls than `make bench` (7 and 200): CI proves the script and its figures'
    # sense; the README's figures come from `make bench`.
    command = [sys.executable, "scripts/bench.py", "--runs", "3", "--calls", "50", "--out", "bench.json"]
    result = subprocess.run(command, cwd=project, env=sam_env(), capture_output=True, text=True, timeout=1800)
    with capsys.disabled():
        print(result.stdout[result.stdout.find("Benchmark of"):], result.stderr[-3000:])
    assert result.returncode == 0
    figures = json.loads((project / "bench.json").read_text())
    assert figures["model_format"] == model_format and figures["runs"] == 3
    size = figures["size"]
    assert size["total_unzipped_bytes"] == sum(size["unzipped_bytes"].values())
    assert sorted(size["unzipped_bytes"]) == LAYERS[model_format]
    assert all(0 < size["zipped_bytes"][name] < size["unzipped_bytes"][name] for name in size["unzipped_bytes"])
    # The tutorial's recipe does not fit in Lambda at all; ours must.
    assert size["tutorial_recipe_share_of_limit"] > 1 > size["share_of_limit"]
    cold = figures["cold_start_s"]
    assert set(cold) == {"ours", "tutorial_with_pyc", "tutorial_without_pyc", "floor_python", "floor_model_load"}
    assert cold["floor_python"] < cold["floor_model_load"] < cold["tutorial_without_pyc"]
    memory = figures["memory_mb"]["ours"]
    assert 0 < memory["after_first_answer_mb"] <= memory["after_1000_rows_mb"] < figures["memory_size_mb"]
    names = [name for name, *_ in figures["targets"]]
    assert len(names) == (7 if model_format == "joblib" else 10) and "Targets" in result.stdout
    if model_format == "onnx":  # this same function serving the same pipeline as joblib, side by side
        assert set(figures["warm"]["joblib_handler"]) == {"handler_one_row_s", "predict_one_row_s",
                                                          "handler_1000_rows_s", "predict_1000_rows_s"}
        assert figures["memory_mb"]["joblib handler"]["after_first_answer_mb"] > 0
