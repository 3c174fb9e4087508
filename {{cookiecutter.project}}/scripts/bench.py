"""Benchmark cold start, size, memory, warm latency and build time, side by side with the tutorial's recipe.

    make bench            # = python3 scripts/bench.py --out bench.json

It builds everything it measures in one run: this project (`sam build`, without Docker) and two baselines made with
the runtime's own pip from the same pinned versions: (a) the tutorial's recipe, pandas + scikit-learn + joblib in one
folder with pip's .pyc, and (b) the same without .pyc. The baselines load the model as a joblib file; for an onnx
project that is the same pipeline trained again by model/train.py --format joblib, which also serves this function's
own code with scikit-learn (the "joblib handler") for the warm and memory comparison. Machines are noisy, so it
compares ratios measured side by side (runs interleaved), prints a table with whether each target holds, and writes
the figures as JSON. Memory is the peak resident size of a fresh interpreter (as Lambda's "Max Memory Used"), after
the first answer and after a batch of MAX_BATCH_ROWS records.
Needs `sam` and the runtime's Python (python3.X as in layers/Makefile) on PATH, on a machine of the project's
architecture. Exits 1 only when function + layers are over Lambda's limit.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from invoke_built import CONTEXT, RUNNER

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers"))
from build_layer import BuildError, pip_install_for, read_pins  # noqa: E402
from size_report import LAMBDA_UNZIPPED_LIMIT, tree_size  # noqa: E402

BUILD_DIR = Path(".aws-sam/build")
EVENT_FILE = Path("events/direct.json")
# Every pin of the project: the layers' and, in an onnx project, training's (pandas and scikit-learn).
PINS = [*sorted(Path("layers").glob("*/requirements.txt")), *Path("model").glob("requirements.txt")]
MACHINE_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
MAX_BATCH_ROWS = 1000  # the handler's default (app.py)
# Targets by model format; the rest are the same for every format.
TARGETS = {
    "joblib": {"share_of_limit": 0.60, "cold_vs_tutorial_with_pyc": 1.00},
    "skops": {"share_of_limit": 0.60, "cold_vs_tutorial_with_pyc": 1.00},
    "onnx": {"share_of_limit": 0.40, "cold_vs_tutorial_with_pyc": 0.25, "peak_memory_mb": 128},
}

# Each measured program starts by loading a model: joblib as the tutorial does, skops, or onnx with ONNX Runtime.
# LOAD_MODEL defines load_model(model_file, meta_file).
LOAD_MODEL = """
import json, sys
def load_model(model_file, meta_file):
    if model_file.endswith(".joblib"):
        import joblib
        return joblib.load(model_file)
    if model_file.endswith(".onnx"):
        import onnxruntime
        return onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    import skops.io
    return skops.io.load(model_file, trusted=json.load(open(meta_file))["trusted_types"])
"""
# The tutorial's function: load the model, predict on a one-row DataFrame, no checks.
TUTORIAL = (
    LOAD_MODEL
    + """
sys.path[:0] = json.loads(sys.argv[1])
import pandas as pd
model = load_model(sys.argv[2], sys.argv[3])
print(json.dumps({"prediction": float(model.predict(pd.DataFrame([json.load(open(sys.argv[4]))]))[0])}))
"""
)
LOAD_ONLY = (
    LOAD_MODEL
    + """
sys.path[:0] = json.loads(sys.argv[1])
load_model(sys.argv[2], sys.argv[3])
"""
)
# Warm: the handler against bare model.predict in one process, after a first (cold) call of each.
WARM = (
    LOAD_MODEL
    + CONTEXT
    + """
import contextlib, io, statistics, time
sys.path[:0] = json.loads(sys.argv[1])
event, calls = json.load(open(sys.argv[4])), int(sys.argv[5])
from app import handler
import pandas as pd
model = load_model(sys.argv[2], sys.argv[3])

def median_seconds(call, repeat):
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

batch = [event] * 1000
with contextlib.redirect_stdout(io.StringIO()):  # the handler's logs: their cost counts, their text does not
    answer = handler(batch, Context())
    if len(answer.get("predictions", [])) != len(batch):
        raise SystemExit(f"the handler did not answer a batch of {len(batch)}: {answer}")
    figures = {
        "handler_one_row_s": median_seconds(lambda: handler(event, Context()), calls),
        "predict_one_row_s": median_seconds(lambda: model.predict(pd.DataFrame([event])), calls),
        "handler_1000_rows_s": median_seconds(lambda: handler(batch, Context()), max(calls // 20, 5)),
        "predict_1000_rows_s": median_seconds(lambda: model.predict(pd.DataFrame(batch)), max(calls // 20, 5)),
    }
print(json.dumps(figures))
"""
)
# Memory: the peak resident size (ru_maxrss, in kB on Linux) after the first answer, then after a full batch.
MEMORY = (
    CONTEXT
    + """
import contextlib, io, json, resource, sys
sys.path[:0] = json.loads(sys.argv[1])
event, rows = json.load(open(sys.argv[2])), int(sys.argv[3])
peak_mb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with contextlib.redirect_stdout(io.StringIO()):
    from app import handler
    handler(event, Context())
    first = peak_mb()
    answer = handler([event] * rows, Context())
if len(answer.get("predictions", [])) != rows:
    raise SystemExit(f"the handler did not answer a batch of {rows}: {answer}")
print(json.dumps({"after_first_answer_mb": first, f"after_{rows}_rows_mb": peak_mb()}))
"""
)


def runtime_python() -> str:
    version = re.search(r"^PYTHON_VERSION := (\S+)", Path("layers/Makefile").read_text(), re.MULTILINE)[1]
    python = shutil.which(f"python{version}")
    if python is None:
        raise SystemExit(f"error: python{version} (the runtime's Python) is not on PATH")
    return python


def timed(command: list, env: dict | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(map(str, command))[:200]} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def build_times(pip_cache: Path) -> dict:
    """`sam build` of everything (SAM's cache off), first with an empty pip cache, then with the one it filled.
    The cache's size after the first build tells whether the index let pip cache anything (else both download)."""
    pip_cache.mkdir()
    env = {**os.environ, "PIP_CACHE_DIR": str(pip_cache), "SAM_CLI_TELEMETRY": "0"}
    cold = timed(["sam", "build", "--no-cached"], env)
    cached = tree_size(pip_cache)
    return {
        "sam_build_cold_pip_cache_s": cold,
        "sam_build_warm_pip_cache_s": timed(["sam", "build", "--no-cached"], env),
        "pip_cache_mb_after_cold_build": cached / 1e6,
    }


def make_baselines(python: str, work: Path, model_file: Path) -> tuple[Path, Path]:
    """(a) the tutorial's recipe with pip's .pyc, (b) the same folder without them."""
    with_pyc, without_pyc = work / "tutorial-with-pyc", work / "tutorial-without-pyc"
    # The locks' versions without their hashes: pip takes no hashes from constraints, and the recipe names no pins.
    pins = {name: version for path in PINS for name, version in read_pins(path).items()}
    constraints = work / "constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
    packages = ["pandas", "scikit-learn", "joblib", *(["skops"] if model_file.suffix == ".skops" else [])]
    try:
        pip_install_for(python, with_pyc, *packages, "--constraint", constraints)
    except BuildError as error:
        raise SystemExit(f"error: installing the tutorial's recipe: {error}") from None
    shutil.copytree(with_pyc, without_pyc, ignore=shutil.ignore_patterns("__pycache__"))
    return with_pyc, without_pyc


def joblib_model_layer(python: str, work: Path, tutorial: Path) -> Path:
    """For an onnx project: the same pipeline, trained again by model/train.py as a joblib file with the tutorial's
    packages, laid out as a model layer's python/ folder (the package trained_model)."""
    package = work / "joblib-model" / "python" / "trained_model"
    timed([python, "model/train.py", "--format", "joblib", "--out", package], {**os.environ, "PYTHONPATH": tutorial})
    (package / "__init__.py").write_text("")
    return package.parent


def lambda_paths(work: Path) -> list[str]:
    """sys.path as on Lambda: the function's folder, then /opt/python, where Lambda extracts every layer."""
    opt = work / "opt"
    for layer in sorted(p for p in BUILD_DIR.iterdir() if (p / "python").is_dir()):
        shutil.copytree(layer, opt, dirs_exist_ok=True)
    return [str((BUILD_DIR / "PredictFunction").resolve()), str(opt / "python")]


def cold_starts(
    python: str,
    paths: list[str],
    baselines: tuple[Path, Path],
    tutorial_model: tuple[Path, Path],
    our_model: tuple[Path, Path],
    runs: int,
) -> dict:
    """Median seconds of a fresh interpreter answering the first request, each variant interleaved with the rest.
    -B stands for Lambda's read-only /opt: no variant can write a .pyc and profit from it on the next run.
    The models are (model file, model_meta.json) pairs."""
    isolated = [python, "-I", "-S", "-B", "-c"]
    ours = json.dumps(paths)
    variants = {
        "ours": [*isolated, RUNNER, ours, EVENT_FILE],
        "tutorial_with_pyc": [*isolated, TUTORIAL, json.dumps([str(baselines[0])]), *tutorial_model, EVENT_FILE],
        "tutorial_without_pyc": [*isolated, TUTORIAL, json.dumps([str(baselines[1])]), *tutorial_model, EVENT_FILE],
        "floor_python": [*isolated, "pass"],
        "floor_model_load": [*isolated, LOAD_ONLY, ours, *our_model],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, command in variants.items():
            times[name].append(timed(command))
    return {name: statistics.median(values) for name, values in times.items()}


def last_json_line(command: list, what: str) -> dict:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: {what} failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def warm_latency(python: str, paths: list[str], model_file: Path, meta_file: Path, calls: int) -> dict:
    """The handler (on paths) against bare model.predict of the tutorial's joblib model, in one process."""
    command = [python, "-I", "-S", "-B", "-c", WARM, json.dumps(paths), model_file, meta_file, EVENT_FILE, str(calls)]
    return last_json_line(command, "warm benchmark")


def peak_memory(python: str, paths: list[str]) -> dict:
    command = [python, "-I", "-S", "-B", "-c", MEMORY, json.dumps(paths), EVENT_FILE, str(MAX_BATCH_ROWS)]
    return last_json_line(command, "memory benchmark")


def memory_size_mb() -> int:
    """The function's default MemorySize in template.yaml."""
    return int(
        re.search(r"^  MemorySize:\n(?:    .*\n)*?    Default: (\d+)", Path("template.yaml").read_text(), re.MULTILINE)[
            1
        ]
    )


def zipped_size(folder: Path, work: Path) -> int:
    archive = work / f"{folder.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder))
    size = archive.stat().st_size
    archive.unlink()
    return size


def sizes(work: Path, tutorial: Path) -> dict:
    folders = sorted(p for p in BUILD_DIR.iterdir() if p.is_dir())
    unzipped = {p.name: tree_size(p) for p in folders}
    total = sum(unzipped.values())
    return {
        "unzipped_bytes": unzipped,
        "zipped_bytes": {p.name: zipped_size(p, work) for p in folders},
        "total_unzipped_bytes": total,
        "share_of_limit": total / LAMBDA_UNZIPPED_LIMIT,
        "tutorial_recipe_unzipped_bytes": tree_size(tutorial),
        "tutorial_recipe_share_of_limit": tree_size(tutorial) / LAMBDA_UNZIPPED_LIMIT,
    }


def targets(figures: dict) -> list[tuple[str, float, str, bool]]:
    cold, warm, size, memory = figures["cold_start_s"], figures["warm"], figures["size"], figures["memory_mb"]
    target = TARGETS[figures["model_format"]]
    ratios = [
        ("function + layers / Lambda's limit", size["share_of_limit"], f"<= {target['share_of_limit']:.2f}"),
        (
            "cold start / tutorial with .pyc",
            cold["ours"] / cold["tutorial_with_pyc"],
            f"<= {target['cold_vs_tutorial_with_pyc']:.2f}",
        ),
        ("cold start / tutorial without .pyc", cold["ours"] / cold["tutorial_without_pyc"], "<= 0.30"),
        ("warm one row: handler / bare predict", warm["handler_one_row_s"] / warm["predict_one_row_s"], "<= 1.20"),
        ("1000 rows/s: handler / bare predict", warm["predict_1000_rows_s"] / warm["handler_1000_rows_s"], ">= 0.90"),
        ("MemorySize / peak memory (MB/MB)", figures["memory_size_mb"] / max(memory["ours"].values()), ">= 2.00"),
        ("sam build, warm pip cache (s)", figures["build"]["sam_build_warm_pip_cache_s"], "<= 60"),
    ]
    if "joblib_handler" in warm:  # onnx: against this same function serving the joblib model
        joblib = warm["joblib_handler"]
        ratios += [
            (
                "warm one row: handler / joblib handler",
                warm["handler_one_row_s"] / joblib["handler_one_row_s"],
                "<= 1.00",
            ),
            (
                "1000 rows/s: handler / joblib handler",
                joblib["handler_1000_rows_s"] / warm["handler_1000_rows_s"],
                ">= 1.00",
            ),
            (
                "peak memory after the first answer (MB)",
                memory["ours"]["after_first_answer_mb"],
                f"<= {target['peak_memory_mb']}",
            ),
        ]
    return [
        (name, value, bound, value <= float(bound[3:]) if bound.startswith("<=") else value >= float(bound[3:]))
        for name, value, bound in ratios
    ]


def print_report(figures: dict) -> None:
    mb = 1e6
    print(
        f"\nBenchmark of {Path.cwd().name} (model_format {figures['model_format']}), {figures['date']}, "
        f"Python {figures['python']}, {figures['machine']}"
    )
    print("\nSize (MB)            unzipped   zipped")
    for name, size in figures["size"]["unzipped_bytes"].items():
        print(f"  {name:<18} {size / mb:9.1f} {figures['size']['zipped_bytes'][name] / mb:8.1f}")
    print(
        f"  {'total':<18} {figures['size']['total_unzipped_bytes'] / mb:9.1f}   "
        f"{figures['size']['share_of_limit']:.1%} of {LAMBDA_UNZIPPED_LIMIT:,} bytes"
    )
    print(
        f"  {'tutorial recipe':<18} {figures['size']['tutorial_recipe_unzipped_bytes'] / mb:9.1f}   "
        f"{figures['size']['tutorial_recipe_share_of_limit']:.1%}"
    )
    print(f"\nCold start, median of {figures['runs']} fresh interpreters (s)")
    for name, seconds in figures["cold_start_s"].items():
        print(f"  {name:<22} {seconds:7.3f}")
    print("\nWarm (ms)")
    for name, seconds in figures["warm"].items():
        if name == "joblib_handler":
            for joblib_name, joblib_seconds in seconds.items():
                print(f"  joblib handler: {joblib_name:<22} {joblib_seconds * 1000:9.3f}")
        else:
            print(f"  {name:<22} {seconds * 1000:9.3f}")
    print(f"\nPeak memory (MB; MemorySize {figures['memory_size_mb']} MB)")
    for variant, peaks in figures["memory_mb"].items():
        print("  " + variant + ": " + ", ".join(f"{name} {mb:.0f}" for name, mb in peaks.items()))
    print("\nBuild")
    for name, value in figures["build"].items():
        print(f"  {name:<30} {value:7.1f}")
    print("\nTargets")
    for name, value, bound, holds in figures["targets"]:
        print(f"  {'holds ' if holds else 'MISSED'} {name:<40} {value:8.3f}  (target {bound})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per cold-start variant")
    parser.add_argument("--calls", type=int, default=200, help="warm calls per one-row measurement")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="where to write the figures")
    args = parser.parse_args(argv)
    architecture = re.search(r"^ARCHITECTURE := (\S+)", Path("layers/Makefile").read_text(), re.MULTILINE)[1]
    if MACHINE_ARCH.get(platform.machine()) != architecture:
        raise SystemExit(f"error: the layers are for {architecture}; run the benchmark on a {architecture} machine")
    python = runtime_python()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        build = build_times(work / "pip-cache")
        meta_file = BUILD_DIR / "ModelLayer" / "python" / "trained_model" / "model_meta.json"
        meta = json.loads(meta_file.read_text())
        model_format, model_file = meta["format"], meta_file.with_name(meta["model_file"])
        baselines = make_baselines(python, work, model_file)
        paths = lambda_paths(work)
        memory = {"ours": peak_memory(python, paths)}
        tutorial_model = (model_file, meta_file)  # what the tutorial's recipe loads: this model, if not onnx
        if model_format == "onnx":
            joblib_layer = joblib_model_layer(python, work, baselines[0])
            tutorial_model = (
                joblib_layer / "trained_model" / "model.joblib",
                joblib_layer / "trained_model" / "model_meta.json",
            )
            joblib_paths = [paths[0], str(joblib_layer), str(baselines[0])]  # this function, serving that model
            memory["joblib handler"] = peak_memory(python, joblib_paths)
        warm = warm_latency(python, [*paths, str(baselines[0])], *tutorial_model, args.calls)
        if model_format == "onnx":
            warm["joblib_handler"] = warm_latency(python, joblib_paths, *tutorial_model, args.calls)
        figures = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "model_format": model_format,
            "python": python,
            "runs": args.runs,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "build": build,
            "size": sizes(work, baselines[0]),
            "cold_start_s": cold_starts(python, paths, baselines, tutorial_model, (model_file, meta_file), args.runs),
            "warm": warm,
            "memory_mb": memory,
            "memory_size_mb": memory_size_mb(),
        }
    figures["targets"] = targets(figures)
    print_report(figures)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 1 if figures["size"]["total_unzipped_bytes"] > LAMBDA_UNZIPPED_LIMIT else 0


if __name__ == "__main__":
    sys.exit(main())
