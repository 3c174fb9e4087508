"""The generated project's own test suite passes in a freshly generated project, for every API and model format."""

import itertools

import pytest

from conftest import generate, run
from test_render import CHOICES


@pytest.mark.parametrize(("api", "model_format"), list(itertools.product(CHOICES["api"], CHOICES["model_format"])))
def test_generated_project_suite_passes(tmp_path, project_venv, api, model_format):
    project = generate(tmp_path, api=api, model_format=model_format)
    result = run([project_venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)
    summary = result.stdout.strip().splitlines()[-1]
    print(summary)
    assert " passed" in summary and "failed" not in summary and "error" not in summary
