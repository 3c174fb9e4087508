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
    "requirements-dev.in",
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
    "layers/lock.py",
    "layers/size_report.py",
    "model/export.py",
    "model/train.py",
    "model/train_iris_classifier.py",
    "model/data/make_sample_data.py",
    "model/data/price_paid_records.csv",
    "scripts/bench.py",
    "scripts/invoke_built.py",
    "src/predict/app.py",
    "src/predict/model_formats.py",
    "src/predict/openapi.py",
    "src/predict/requirements.in",
    "src/predict/requirements.txt",
    "tests/deployed/test_stack.py",
    "tests/local/test_sam_local.py",
    "tests/unit/conftest.py",
    "tests/unit/test_events.py",
    "tests/unit/test_model.py",
    "tests/unit/test_openapi.py",
    "tests/unit/test_properties.py",
    "tests/unit/test_requests.py",
}
# The chosen API's sample events; the post-generation hook removes the other APIs'.
API_EVENT_PREFIX = {"http": "http-api", "rest": "rest-api", "function-url": "function-url", "none": None}
API_EVENTS = ("predict", "health", "bad-body")
# The pins of each model format: its layers' (and, for onnx, what only training needs), each a requirements.in and
# the lock that `make lock` writes from it.
FORMAT_FILES = {
    model_format: {f"{folder}/requirements.{suffix}" for folder in folders for suffix in ("in", "txt")}
    for model_format, folders in {
        "joblib": ("layers/pandas", "layers/sklearn"),
        "skops": ("layers/pandas", "layers/sklearn"),
        "onnx": ("layers/onnxruntime", "model"),
    }.items()
}
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
    over_http = {"scripts/locustfile.py", "schemathesis.toml"} if prefix else set()  # make load and make fuzz need a URL
    assert project_files(project) == COMMON_FILES | api_events | over_http | FORMAT_FILES[options["model_format"]]


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
    pinned = "".join(path.read_text() for path in project.glob("*/*/requirements.txt"))
    assert ("skops==" in pinned) == (options["model_format"] == "skops")
    assert ("onnxruntime==" in pinned) == (options["model_format"] == "onnx")
    assert f'DEFAULT_FORMAT = "{options["model_format"]}"' in (project / "model" / "train.py").read_text()
    layers = re.findall(r"^  (\w+Layer):$", template, re.MULTILINE)
    attached = re.findall(r"^        - !Ref (\w+Layer)$", template, re.MULTILINE)
    expected = ["OnnxRuntimeLayer"] if options["model_format"] == "onnx" else ["PandasLayer", "SklearnLayer"]
    assert layers == attached == [*expected, "ModelLayer"]
    for layer in expected:
        assert f"build-{layer}:" in makefile


def pins(path) -> dict[str, str]:
    """{name: version} of a lock that `make lock` wrote: `name==version \\` lines, each followed by its hashes."""
    return dict(re.findall(r"^([\w.-]+)==([^\s;]+)", path.read_text(), re.MULTILINE))


def test_an_onnx_project_trains_with_the_same_pins_as_the_layers_of_a_joblib_one(tmp_path):
    """The template writes the pandas and scikit-learn pins twice (the layers of joblib and skops projects; an onnx
    project's model/requirements.txt, as it only trains with them): they must agree, numpy included."""
    joblib = generate(tmp_path / "joblib", model_format="joblib")
    onnx = generate(tmp_path / "onnx", model_format="onnx")
    joblib_pins = {**pins(joblib / "layers/pandas/requirements.txt"), **pins(joblib / "layers/sklearn/requirements.txt")}
    onnx_pins = {**pins(onnx / "layers/onnxruntime/requirements.txt"), **pins(onnx / "model/requirements.txt")}
    shared = joblib_pins.keys() & onnx_pins.keys()
    assert {"numpy", "pandas", "scikit-learn", "scipy", "joblib"} <= shared
    assert {name: joblib_pins[name] for name in shared} == {name: onnx_pins[name] for name in shared}


def test_python_compiles_and_passes_ruff(project):
    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    run([BIN / "ruff", "check", "--no-cache", "."], cwd=project)
