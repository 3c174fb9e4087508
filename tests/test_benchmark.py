"""The generated project's benchmark runs on the default project; its table goes to the CI log."""

import json
import subprocess
import sys

import pytest

from conftest import sam_env

pytestmark = pytest.mark.build


def test_benchmark_measures_everything_against_the_tutorial_recipe(built_default_project, capsys):
    result = subprocess.run([sys.executable, "scripts/bench.py", "--out", "bench.json"], cwd=built_default_project,
                            env=sam_env(), capture_output=True, text=True, timeout=1800)
    with capsys.disabled():
        print(result.stdout[result.stdout.find("Benchmark of"):], result.stderr[-3000:])
    assert result.returncode == 0
    figures = json.loads((built_default_project / "bench.json").read_text())
    size = figures["size"]
    assert size["total_unzipped_bytes"] == sum(size["unzipped_bytes"].values())
    assert sorted(size["unzipped_bytes"]) == ["ModelLayer", "PandasLayer", "PredictFunction", "SklearnLayer"]
    assert all(0 < size["zipped_bytes"][name] < size["unzipped_bytes"][name] for name in size["unzipped_bytes"])
    # The tutorial's recipe does not fit in Lambda at all; ours must.
    assert size["tutorial_recipe_share_of_limit"] > 1 > size["share_of_limit"]
    cold = figures["cold_start_s"]
    assert set(cold) == {"ours", "tutorial_with_pyc", "tutorial_without_pyc", "floor_python", "floor_model_load"}
    assert cold["floor_python"] < cold["floor_model_load"] < cold["tutorial_without_pyc"]
    assert len(figures["targets"]) == 6 and "Targets" in result.stdout
