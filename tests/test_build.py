"""`sam build` without Docker: the layers and the function, deduplicated, slimmed, compiled, and working (three
layers for joblib and skops, two for onnx)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import BIN, REPO, generate, run, runtime_python, sam_build, sam_env
from test_render import CHOICES
from tools import lock_template

pytestmark = pytest.mark.build

LAYERS = ("PandasLayer", "SklearnLayer", "ModelLayer")
TUTORIAL_REQUEST = {"Property Type": "S", "Old/New": "Y", "Duration": "L"}
EM_AARCH64 = 183  # ELF e_machine of arm64 shared objects
# Reads the model straight from the built ModelLayer and predicts with it, bypassing the handler.
DIRECT_PREDICT = """
import json, sys
from importlib.resources import files
sys.path[:0] = json.loads(sys.argv[1])
import joblib, pandas as pd
meta = json.loads((files("trained_model") / "model_meta.json").read_text())
model = joblib.load(files("trained_model") / meta["model_file"])
print(json.dumps(float(model.predict(pd.DataFrame([json.loads(sys.argv[2])]))[0])))
"""


def layer_dirs(project: Path) -> dict[str, Path]:
    return {layer: project / ".aws-sam" / "build" / layer / "python" for layer in LAYERS}


def top_level(python_dir: Path) -> set[str]:
    return {p.name for p in python_dir.iterdir() if p.name != "__pycache__"}


def test_three_layers_and_the_function_are_built(built_default_project):
    build = built_default_project / ".aws-sam" / "build"
    assert sorted(p.name for p in build.iterdir() if p.is_dir()) == sorted([*LAYERS, "PredictFunction"])
    assert (build / "PredictFunction" / "app.py").is_file()
    assert (layer_dirs(built_default_project)["PandasLayer"] / "numpy").is_dir()
    assert (layer_dirs(built_default_project)["SklearnLayer"] / "sklearn").is_dir()
    assert (layer_dirs(built_default_project)["ModelLayer"] / "trained_model" / "model_meta.json").is_file()


def test_no_package_is_in_two_layers(built_default_project):
    seen: dict[str, str] = {}
    for layer, python_dir in layer_dirs(built_default_project).items():
        for name in top_level(python_dir):
            assert name not in seen, f"{name} is in both {seen[name]} and {layer}"
            seen[name] = layer
    assert "numpy" in seen and seen["numpy"] == "PandasLayer"


def test_layers_are_slimmed_but_keep_shared_objects(built_default_project):
    for python_dir in layer_dirs(built_default_project).values():
        assert not [p for p in python_dir.rglob("tests") if p.is_dir()]
        assert not [p for p in python_dir.rglob("*") if p.suffix in {".pyx", ".pxd", ".h", ".pyi"}]
    shared_objects = list(layer_dirs(built_default_project)["PandasLayer"].glob("numpy.libs/*.so*"))
    assert shared_objects, "numpy's vendored OpenBLAS is missing"


def test_every_module_is_a_pyc_for_the_runtime(built_default_project):
    for python_dir in layer_dirs(built_default_project).values():
        assert not list(python_dir.rglob("*.py")), "a .py was shipped beside its .pyc"
        assert not list(python_dir.rglob("__pycache__")), "a __pycache__ (of some Python) was shipped"
        assert list(python_dir.rglob("*.pyc"))
    # Made by Python 3.13 (its magic number), hash-based and unchecked (flags == 1): used as is on a read-only /opt.
    python = runtime_python("3.13")
    magic = run([python, "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"], cwd=REPO).stdout
    function = built_default_project / ".aws-sam" / "build" / "PredictFunction"
    assert (function / "app.py").is_file(), "your own code keeps its source"
    assert not list(function.glob("aws_lambda_powertools/**/*.py")) and not (function / "bin").exists()
    for pyc in [*layer_dirs(built_default_project)["SklearnLayer"].glob("sklearn/*.pyc"),
                function / "__pycache__" / "app.cpython-313.pyc", function / "aws_lambda_powertools" / "__init__.pyc",
                layer_dirs(built_default_project)["ModelLayer"] / "trained_model" / "__init__.pyc"]:
        header = pyc.read_bytes()[:8]
        assert header[:4].hex() == magic.strip() and int.from_bytes(header[4:8], "little") == 1, pyc


def test_function_predicts_when_loaded_as_lambda_does(built_default_project):
    python = runtime_python("3.13")
    answer = run([python, "scripts/invoke_built.py", "events/direct.json"], cwd=built_default_project)
    prediction = json.loads(answer.stdout)["prediction"]
    build = built_default_project / ".aws-sam" / "build"
    paths = [str(build / "PredictFunction"), *(str(p) for p in layer_dirs(built_default_project).values())]
    direct = run([python, "-I", "-S", "-B", "-c", DIRECT_PREDICT, json.dumps(paths), json.dumps(TUTORIAL_REQUEST)],
                 cwd=built_default_project)
    assert prediction == json.loads(direct.stdout)
    assert 50_000 < prediction < 1_000_000


def test_size_report_is_under_the_limit(built_default_project):
    report = run([sys.executable, "layers/size_report.py", ".aws-sam/build"], cwd=built_default_project).stdout
    print(report)
    assert "function + layers" in report and "of Lambda's 262,144,000-byte unzipped limit" in report


def test_size_report_fails_over_the_limit(built_default_project, tmp_path):
    big_layer = tmp_path / "build" / "BigModelLayer" / "python" / "trained_model"
    big_layer.mkdir(parents=True)
    with (big_layer / "model.joblib").open("wb") as sparse:  # no disk used, but st_size counts
        sparse.truncate(262_144_001)
    result = subprocess.run([sys.executable, "layers/size_report.py", tmp_path / "build"],
                            cwd=built_default_project, capture_output=True, text=True)
    assert result.returncode == 1
    assert "over Lambda's limit of 262,144,000 by 1" in result.stderr


def build_layer(project: Path, layer: str, out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "layers/build_layer.py", "--python-version", "3.13", "--architecture", "x86_64",
               layer, out]
    return subprocess.run(command, cwd=project, capture_output=True, text=True)


def test_a_dependency_pinned_in_no_layer_fails_the_build(tmp_path):
    project = generate(tmp_path)
    pins = project / "layers" / "sklearn" / "requirements.txt"
    pins.write_text(pins.read_text().replace(lock_template.lock_entry(pins.read_text(), "cloudpickle"), ""))
    result = build_layer(project, "sklearn", tmp_path / "out")
    assert result.returncode == 1
    assert "joblib 1.6.0 needs cloudpickle" in result.stderr and "which nothing pins" in result.stderr


def test_a_package_pinned_in_two_layers_fails_the_build(tmp_path):
    project = generate(tmp_path)
    pins = project / "layers" / "sklearn" / "requirements.txt"
    pins.write_text(pins.read_text() + "numpy==2.4.6\n")
    result = build_layer(project, "sklearn", tmp_path / "out")
    assert result.returncode == 1
    assert ("numpy is pinned in both layers/pandas/requirements.txt and layers/sklearn/requirements.txt"
            in result.stderr)


def test_model_layer_retrains_on_new_data_but_never_overwrites_your_own_model(built_default_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(built_default_project, project, ignore=shutil.ignore_patterns(".aws-sam"))
    artifacts = project / "model" / "artifacts"
    assert build_layer(project, "model", tmp_path / "unchanged").stdout.count("training the model") == 0
    (project / "model" / "data" / "price_paid_records.csv").touch()
    assert "training the model" in build_layer(project, "model", tmp_path / "retrained").stdout
    meta = json.loads((artifacts / "model_meta.json").read_text())
    (artifacts / "model_meta.json").write_text(json.dumps({**meta, "trained_by": None}))
    (project / "model" / "data" / "price_paid_records.csv").touch()
    assert "training the model" not in build_layer(project, "model", tmp_path / "own").stdout


def test_arm64_layers_hold_arm64_wheels(tmp_path):
    project = generate(tmp_path, architecture="arm64")
    sam_build(project)
    for python_dir in layer_dirs(project).values():
        for wheel in python_dir.glob("*.dist-info/WHEEL"):
            tags = [line for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
            assert all(t.endswith("-any") or "aarch64" in t for t in tags), f"{wheel}: {tags}"
    numpy_core = next(layer_dirs(project)["PandasLayer"].glob("numpy/_core/_multiarray_umath*.so"))
    assert int.from_bytes(numpy_core.read_bytes()[18:20], "little") == EM_AARCH64


def test_plain_sam_build_works_without_the_runtimes_python(tmp_path):
    """No python3.13 on PATH (a pyenv shim of an unselected Python does not count): the build still succeeds, says
    clearly that it ships no .pyc, and the function still predicts."""
    project = generate(tmp_path)
    env = sam_env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not Path(p, "python3.13").is_file()
                                  or "shims" in p)
    result = run([BIN / "sam", "build"], cwd=project, env=env)
    assert "WARNING: python3.13 not found on PATH, so this ships without .pyc" in result.stdout + result.stderr
    assert not list((project / ".aws-sam" / "build" / "SklearnLayer").rglob("*.pyc"))
    answer = run([runtime_python("3.13"), "scripts/invoke_built.py", "events/direct.json"], cwd=project)
    assert json.loads(answer.stdout)["prediction"] > 0


# --- model_format onnx: ONNX Runtime and the model, no pandas or scikit-learn ---------------------------------------

ONNX_LAYERS = ("OnnxRuntimeLayer", "ModelLayer")


def test_onnx_project_builds_two_layers_without_pandas_or_scikit_learn(built_onnx_project):
    build = built_onnx_project / ".aws-sam" / "build"
    assert sorted(p.name for p in build.iterdir() if p.is_dir()) == sorted([*ONNX_LAYERS, "PredictFunction"])
    runtime = build / "OnnxRuntimeLayer" / "python"
    assert top_level(runtime) >= {"onnxruntime", "numpy", "numpy.libs"}
    assert not top_level(runtime) & {"pandas", "sklearn", "scipy", "skl2onnx", "onnx", "joblib"}
    # What the build removes from the wheel (build_layer.UNUSED_AT_RUN_TIME): the prediction below runs without it.
    assert not list(runtime.glob("onnxruntime/capi/libonnxruntime.so*"))
    assert not [name for name in ("tools", "transformers", "quantization") if (runtime / "onnxruntime" / name).exists()]
    assert list(runtime.glob("onnxruntime/capi/onnxruntime_pybind11_state*.so"))
    assert not list(runtime.rglob("*.py")) and list(runtime.rglob("*.pyc"))
    model = build / "ModelLayer" / "python" / "trained_model"
    assert sorted(p.name for p in model.iterdir() if p.is_file()) == ["__init__.pyc", "model.onnx", "model_meta.json"]


def test_onnx_function_answers_every_direct_event_like_the_joblib_one_within_parity(
    built_onnx_project, built_default_project
):
    """The same pipeline, served by ONNX Runtime from its two layers (loaded as Lambda loads them: nothing else on
    sys.path), answers as the joblib project's scikit-learn does: within 1e-5, the same 4xx messages."""
    python = runtime_python("3.13")
    for event in sorted(p.name for p in (built_default_project / "events").glob("direct*.json")):
        onnx = json.loads(run([python, "scripts/invoke_built.py", f"events/{event}"], cwd=built_onnx_project).stdout)
        joblib = json.loads(run([python, "scripts/invoke_built.py", f"events/{event}"],
                                cwd=built_default_project).stdout)
        if "error" in joblib:
            assert onnx == joblib, event
        else:
            assert onnx.keys() == joblib.keys(), event
            got, expected = (answer.get("predictions") or [answer["prediction"]] for answer in (onnx, joblib))
            assert got == pytest.approx(expected, rel=1e-5), event
    meta = json.loads((built_onnx_project / "model" / "artifacts" / "model_meta.json").read_text())
    assert meta["format"] == "onnx" and meta["parity"]["max_relative_error"] <= 1e-5


def test_onnx_model_from_another_onnxruntime_is_refused_at_init(built_onnx_project, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(built_onnx_project / ".aws-sam" / "build", build)
    meta_file = build / "ModelLayer" / "python" / "trained_model" / "model_meta.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "versions": {**meta["versions"], "onnxruntime": "1.20.0"}}))
    result = subprocess.run([runtime_python("3.13"), "scripts/invoke_built.py", "events/direct.json", build],
                            cwd=built_onnx_project, capture_output=True, text=True)
    assert result.returncode != 0
    assert ("ModelRefused: the model was saved with onnxruntime 1.20.0 but this function has onnxruntime "
            f"{meta['versions']['onnxruntime']}: retrain it with the layers' pins") in result.stderr


# --- Hash-locked dependencies: `make lock` (uv) writes the locks, pip --require-hashes installs them -----------------

SHIPPED_LOCKS = ("layers/*/requirements.txt", "src/predict/requirements.txt")  # what Lambda runs


def hashes(lock: str) -> dict[str, tuple[str, set[str]]]:
    """{name: (version, sha256 digests)} of a lock."""
    return {match[1]: (match[2], set(re.findall(r"--hash=sha256:(\w+)", match[0])))
            for match in re.finditer(r"^([\w.-]+)==([^\s;]+).*?(?=^\S|\Z)", lock, re.MULTILINE | re.DOTALL)}


@pytest.fixture(scope="module")
def uv(tmp_path_factory) -> Path:
    """A venv with the uv that requirements-dev.txt locks: what `make lock` uses from .venv."""
    return lock_template.uv_venv(tmp_path_factory.mktemp("uv") / ".venv")


@pytest.fixture(scope="module")
def relocked(tmp_path_factory, uv) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """{model format: (a fresh project's locks, the same after its `make lock`)}. uv reads PyPI."""
    return lock_template.locked_projects(tmp_path_factory.mktemp("relocked"), uv)


def test_make_lock_in_a_fresh_project_of_each_format_changes_nothing(relocked):
    for model_format, (generated, locked) in relocked.items():
        assert locked.keys() == generated.keys()
        for path, text in locked.items():
            assert text == generated[path], f"make lock changed {path} of a {model_format} project"
    # The template holds each format's locks once: what `python -m tools.lock_template` would write.
    merged = lock_template.template_locks({model_format: locked for model_format, (_, locked) in relocked.items()})
    for path, text in merged.items():
        assert text == (lock_template.TEMPLATE / path).read_text(), f"{path}: run `python -m tools.lock_template`"


def test_each_package_is_locked_once_with_the_layer_that_names_it_or_first_needs_it(relocked):
    for model_format, (_, locks) in relocked.items():
        owner: dict[str, str] = {}
        for path, text in locks.items():
            for name, (_, digests) in hashes(text).items():
                assert digests, f"{name} in {path} has no hash"
                assert name not in owner, f"{model_format}: {name} is locked in {owner[name]} and {path}"
                owner[name] = path
        runtime_layer = "onnxruntime" if model_format == "onnx" else "pandas"
        assert owner["numpy"] == f"layers/{runtime_layer}/requirements.txt", model_format
        assert owner["typing-extensions"] == "src/predict/requirements.txt"
        assert owner["uv"] == owner["pytest"] == "requirements-dev.txt"
        if model_format == "onnx":
            assert owner["scikit-learn"] == owner["skl2onnx"] == "model/requirements.txt"
        else:
            assert owner["scipy"] == owner["joblib"] == "layers/sklearn/requirements.txt"


def test_make_lock_refuses_a_package_named_in_two_requirements_in(tmp_path, uv):
    project = generate(tmp_path)
    (project / "layers/sklearn/requirements.in").write_text(
        (project / "layers/sklearn/requirements.in").read_text() + "numpy\n")
    before = lock_template.lock_files(project)
    result = lock_template.make_lock(project, uv)
    assert result.returncode != 0
    assert ("error: make lock: numpy is named in both layers/pandas/requirements.in and "
            "layers/sklearn/requirements.in: name it in one only") in result.stderr
    assert lock_template.lock_files(project) == before


def pip_would_install(requirements: Path, architecture: str, python_version: str, target: Path) -> list[dict]:
    """pip's report of the files it would install for Lambda from requirements, as layers/build_layer.py asks:
    --require-hashes, Lambda's manylinux platforms, no download beyond the wheels' metadata."""
    platforms = [f"--platform=manylinux_2_{minor}_{architecture}" for minor in range(17, 35)]
    result = run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
                  "--disable-pip-version-check", "--ignore-installed", "--require-hashes", "--no-deps",
                  "--only-binary=:all:", "--implementation=cp", f"--python-version={python_version}", *platforms,
                  "--target", target, "--requirement", requirements], cwd=REPO)
    return json.loads(result.stdout)["install"]


def test_every_shipped_lock_has_the_hash_of_a_wheel_for_each_architecture_and_runtime(tmp_path):
    """The layers' and the function's locks of every format (joblib's are skops's less skops), read as pip reads
    them for Lambda: for x86_64 and aarch64 and each runtime offered, each package resolves to a wheel of that
    architecture (or a pure-Python one) whose sha256 the lock lists."""
    locked: dict[str, tuple[str, set[str]]] = {}
    for model_format in ("skops", "onnx"):
        project = generate(tmp_path / model_format, model_format=model_format)
        for lock in [path for pattern in SHIPPED_LOCKS for path in sorted(project.glob(pattern))]:
            for name, pin in hashes(lock.read_text()).items():
                assert locked.setdefault(name, pin) == pin, f"{name} is locked differently in the formats"
    requirements = tmp_path / "shipped.txt"
    requirements.write_text("".join(f"{name}=={version} " + " ".join(f"--hash=sha256:{digest}" for digest in digests)
                                    + "\n" for name, (version, digests) in locked.items()))
    targets = [(architecture, runtime.removeprefix("python")) for architecture in ("x86_64", "aarch64")
               for runtime in CHOICES["python_runtime"]]
    with ThreadPoolExecutor(len(targets)) as pool:
        reports = pool.map(lambda target: pip_would_install(requirements, *target, tmp_path / "site"), targets)
    for (architecture, python_version), report in zip(targets, reports, strict=True):
        files = {item["metadata"]["name"].lower().replace("_", "-"): item["download_info"] for item in report}
        assert files.keys() == locked.keys(), (architecture, python_version)
        for name, download in files.items():
            wheel = download["url"].rsplit("/", 1)[1].split("#")[0]
            assert download["archive_info"]["hashes"]["sha256"] in locked[name][1], (wheel, "not in the lock")
            assert wheel.endswith("-none-any.whl") or f"_{architecture}." in wheel, wheel


def test_a_wheel_whose_sha256_is_not_in_the_lock_fails_the_build_in_one_line_naming_it(tmp_path):
    project = generate(tmp_path)
    lock = project / "src" / "predict" / "requirements.txt"
    entry = lock_template.lock_entry(lock.read_text(), "typing-extensions")
    version = hashes(entry)["typing-extensions"][0]
    tampered = re.sub(r"sha256:\w{64}", f"sha256:{hashlib.sha256(b'another file').hexdigest()}", entry)
    lock.write_text(lock.read_text().replace(entry, tampered))
    result = build_layer(project, "function", tmp_path / "out")
    assert result.returncode == 1
    wheel = f"typing_extensions-{version}-py3-none-any.whl"
    message = (f"error: building the function: typing-extensions=={version} ({wheel}): the download's sha256 is not "
               "one that src/predict/requirements.txt lists, so it is not the file that was locked (a swapped or "
               "corrupted download, or a lock edited by hand: run `make lock`)")
    assert result.stderr.splitlines() == [message]
