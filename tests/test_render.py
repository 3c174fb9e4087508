"""Every supported combination of answers renders a complete, clean project."""

import itertools
import json
import re

import pytest

from conftest import BIN, REPO, generate, run

CHOICES = {key: value for key, value in json.loads((REPO / "cookiecutter.json").read_text()).items()
           if isinstance(value, list) and not key.startswith("_")}
COMBINATIONS = [dict(zip(CHOICES, values)) for values in itertools.product(*CHOICES.values())]
DEFAULTS = {key: values[0] for key, values in CHOICES.items()}
# One combination per non-default choice: what `pytest --fast` renders.
FAST = [DEFAULTS] + [{**DEFAULTS, key: value} for key, values in CHOICES.items() for value in values[1:]]

# Files every project has, whatever the answers.
COMMON_FILES = {
    ".cookiecutter.json",
    ".github/workflows/ci.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "requirements-dev.txt",
    "samconfig.toml",
    "template.yaml",
    "events/direct.json",
    "events/direct-bad-category.json",
    "events/direct-bad-missing-feature.json",
    "events/direct-batch.json",
    "events/direct-dataframe-split.json",
    "layers/Makefile",
    "layers/build_layer.py",
    "layers/size_report.py",
    "layers/pandas/requirements.txt",
    "layers/sklearn/requirements.txt",
    "model/export.py",
    "model/train.py",
    "model/train_iris_classifier.py",
    "model/data/make_sample_data.py",
    "model/data/price_paid_records.csv",
    "scripts/bench.py",
    "scripts/invoke_built.py",
    "src/predict/app.py",
    "src/predict/requirements.txt",
    "tests/deployed/test_stack.py",
    "tests/local/test_sam_local.py",
    "tests/unit/conftest.py",
    "tests/unit/test_events.py",
    "tests/unit/test_model.py",
    "tests/unit/test_requests.py",
}
# The chosen API's sample events; the post-generation hook removes the other APIs'.
API_EVENT_PREFIX = {"http": "http-api", "rest": "rest-api", "function-url": "function-url", "none": None}
API_EVENTS = ("predict", "health", "bad-body")
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#")


def combinations(config):
    return FAST if config.getoption("--fast") else COMBINATIONS


def pytest_generate_tests(metafunc):
    if "options" in metafunc.fixturenames:
        chosen = combinations(metafunc.config)
        metafunc.parametrize("options", chosen, ids=["-".join(c.values()) for c in chosen])


@pytest.fixture
def project(tmp_path, options):
    return generate(tmp_path, **options)


def project_files(project):
    return {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}


def test_file_tree(project, options):
    prefix = API_EVENT_PREFIX[options["api"]]
    api_events = {f"events/{prefix}-{name}.json" for name in API_EVENTS} if prefix else set()
    assert project_files(project) == COMMON_FILES | api_events


def test_no_leftover_jinja(project):
    for path in project.rglob("*"):
        if path.is_file() and path.suffix != ".csv":
            text = path.read_text()
            match = LEFTOVER_JINJA.search(text)
            assert not match, f"{path.relative_to(project)}: unrendered Jinja near {text[match.start():][:60]!r}"


def test_answers_reach_the_project(project, options):
    template = (project / "template.yaml").read_text()
    assert f"Runtime: {options['python_runtime']}" in template
    assert f"BuildArchitecture: {options['architecture']}" in template
    makefile = (project / "layers" / "Makefile").read_text()
    assert f"PYTHON_VERSION := {options['python_runtime'].removeprefix('python')}" in makefile
    assert f"ARCHITECTURE := {options['architecture']}" in makefile
    sklearn_pins = (project / "layers" / "sklearn" / "requirements.txt").read_text()
    assert ("skops==" in sklearn_pins) == (options["model_format"] == "skops")
    assert f'DEFAULT_FORMAT = "{options["model_format"]}"' in (project / "model" / "train.py").read_text()


def test_python_compiles_and_passes_ruff(project):
    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    run([BIN / "ruff", "check", "--no-cache", "."], cwd=project)
