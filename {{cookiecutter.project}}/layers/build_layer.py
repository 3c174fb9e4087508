"""Build one Lambda layer into <artifacts>/python, or the function into <artifacts>. layers/Makefile runs it:

    python3 layers/build_layer.py --python-version 3.13 --architecture x86_64 pandas   <artifacts>
    python3 layers/build_layer.py --python-version 3.13 --architecture x86_64 sklearn  <artifacts>
    python3 layers/build_layer.py --python-version 3.13 --architecture x86_64 onnxruntime <artifacts>  # onnx
    python3 layers/build_layer.py --python-version 3.13 --architecture x86_64 model    <artifacts>
    python3 layers/build_layer.py --python-version 3.13 --architecture x86_64 function <artifacts>

A package layer installs exactly the pins in layers/<layer>/requirements.txt as Lambda wheels (any host can build
for any target) with pip --require-hashes, checks that every dependency is pinned somewhere and that no package is
pinned twice, removes what cannot be imported at run time, compiles .pyc with the runtime's own Python, and reports
its size. Each requirements.txt is a lock that `make lock` (layers/lock.py) writes from the requirements.in beside it.
The model layer trains the model when needed (with every lock the build reads, model/requirements.txt included where
the project has one: what only training needs) and ships it as the package `trained_model`.
The function is src/predict's code plus the pins of src/predict/requirements.txt, built the same way.
Standard library only: it runs with the host's python3 and inside SAM's build container.
"""

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import distributions
from pathlib import Path

from size_report import LAMBDA_UNZIPPED_LIMIT, describe, tree_size

LAYERS_DIR = Path("layers")
MODEL_DIR = Path("model")
FUNCTION_DIR = Path("src/predict")
TRAINING_PINS = MODEL_DIR / "requirements.txt"  # only in onnx projects: pandas and scikit-learn, never shipped
MODEL_PACKAGE = "trained_model"
# Lambda's python3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to that fits.
MANYLINUX_GLIBC_MINORS = range(17, 35)
WHEEL_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
# Never needed at run time. Shared objects are never touched: stripping vendored libraries breaks numpy.
REMOVED_DIRS = {"tests", "__pycache__"}
REMOVED_SUFFIXES = {".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp", ".pyi"}
# Parts of a package that running a model never loads. onnxruntime's Python binding (onnxruntime_pybind11_state)
# does not link libonnxruntime.so, its C API library for other languages (readelf -d shows no such NEEDED entry);
# tools/, transformers/ and quantization/ convert and tune models offline. tests/test_build.py proves that the
# layer predicts without them, as Lambda lays it out.
UNUSED_AT_RUN_TIME = {"onnxruntime": ("capi/libonnxruntime.so.*", "tools", "transformers", "quantization")}
# pip's report of a download whose sha256 is not in the lock: a heading, then "    name==version from <url> ...:" for
# each such file.
HASH_MISMATCH = "THESE PACKAGES DO NOT MATCH THE HASHES"
MISMATCHED_FILE = re.compile(r"^\s+([\w.-]+)==(\S+) from \S*?([^/\s#]+\.whl)", re.MULTILINE)


class BuildError(Exception):
    """The layer cannot be built; the message says why and what to do."""


def run(command: list, **kwargs) -> None:
    result = subprocess.run([str(part) for part in command], **kwargs)
    if result.returncode != 0:
        raise BuildError(f"command failed ({result.returncode}): {' '.join(map(str, command))}")


def read_pins(path: Path) -> dict[str, str]:
    """{normalised name: version} from a lock: `name==version [; marker] \\` lines, each followed by its --hash
    options (`-r` lines and comments are not pins)."""
    pins = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        requirement = line.split("#", 1)[0].split(" --hash=", 1)[0].split(";", 1)[0].strip()
        if requirement and not requirement.startswith("-"):
            name, separator, pinned = requirement.partition("==")
            if not separator:
                raise BuildError(f"{path}: {requirement!r} is not pinned as name==version: run `make lock`")
            pins[normalise(name)] = pinned.strip()
    return pins


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def requirement_files() -> dict[str, Path]:
    """The pins of each package layer (layers/<layer>/requirements.txt), of the function, and of training alone."""
    files = {path.parent.name: path for path in sorted(LAYERS_DIR.glob("*/requirements.txt"))}
    return {**files, "function": FUNCTION_DIR / "requirements.txt", "training": TRAINING_PINS}


def all_pins() -> dict[str, dict[str, str]]:
    """Every package layer's, the function's and training's pins; fails if a package is pinned twice."""
    files = requirement_files()
    pins = {target: read_pins(path) for target, path in files.items() if path.is_file()}
    owners: dict[str, str] = {}
    for target, target_pins in pins.items():
        for name in target_pins:
            if name in owners:
                raise BuildError(
                    f"{name} is pinned in both {files[owners[name]]} and {files[target]}: "
                    "keep it in one place only (Lambda would load two copies)"
                )
            owners[name] = target
    return pins


def check_dependencies(site: Path, pins: dict[str, dict[str, str]], python_version: str, architecture: str) -> None:
    """Every dependency of every installed package must be pinned, at a version it accepts, in some layer or the
    function (training's pins do not count: they never reach Lambda)."""
    # pip's vendored copy of `packaging` evaluates markers and specifiers (no install needed in the build image).
    from pip._vendor.packaging.requirements import Requirement

    shipped = [target_pins for target, target_pins in pins.items() if target != "training"]
    pinned = {name: version for target_pins in shipped for name, version in target_pins.items()}
    environment = {
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": WHEEL_ARCH[architecture],
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    problems = []
    for dist in distributions(path=[str(site)]):
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            name = normalise(requirement.name)
            if name not in pinned:
                problems.append(f"{dist.name} {dist.version} needs {requirement}, which nothing pins")
            elif not requirement.specifier.contains(pinned[name], prereleases=True):
                problems.append(f"{dist.name} {dist.version} needs {requirement}, but {name}=={pinned[name]} is pinned")
    if problems:
        raise BuildError(
            "missing or conflicting dependencies; fix the requirements.in files, then run `make lock`:\n  "
            + "\n  ".join(problems)
        )


def install_packages(requirements: Path, site: Path, python_version: str, architecture: str) -> None:
    """pip installs the lock's wheels for Lambda; a file whose sha256 the lock does not list fails with one line."""
    arch = WHEEL_ARCH[architecture]
    platforms = [f"--platform=manylinux_2_{minor}_{arch}" for minor in MANYLINUX_GLIBC_MINORS]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--require-hashes",
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--implementation=cp",
        f"--python-version={python_version}",
        *platforms,
        "--target",
        site,
        "--requirement",
        requirements,
    ]
    result = subprocess.run([str(part) for part in command], stderr=subprocess.PIPE, text=True)
    if HASH_MISMATCH in result.stderr:
        mismatches = MISMATCHED_FILE.findall(result.stderr)
        files = ", ".join(f"{name}=={version} ({file})" for name, version, file in mismatches)
        raise BuildError(
            f"{files or result.stderr.strip()}: the download's sha256 is not one that {requirements} lists, so it is "
            "not the file that was locked (a swapped or corrupted download, or a lock edited by hand: run `make lock`)"
        )
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise BuildError(f"pip could not install {requirements} (its message is above)")


def slim(site: Path) -> dict[str, int]:
    """Remove tests, caches, Cython sources, C headers and type stubs, and UNUSED_AT_RUN_TIME: nothing Lambda
    imports. Returns the bytes removed by kind, for the build log."""
    removed = {"test suites": 0, "sources, headers, stubs": 0, "parts never loaded at run time": 0}
    for package, patterns in UNUSED_AT_RUN_TIME.items():
        for path in [path for pattern in patterns for path in (site / package).glob(pattern)]:
            if path.is_dir():
                removed["parts never loaded at run time"] += tree_size(path)
                shutil.rmtree(path)
            else:
                removed["parts never loaded at run time"] += path.stat().st_size
                path.unlink()
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name in REMOVED_DIRS and not path.parent.name.endswith(".dist-info"):
            removed["test suites"] += tree_size(path)
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in REMOVED_SUFFIXES:
            removed["sources, headers, stubs"] += path.stat().st_size
            path.unlink()
    return removed


@functools.cache
def warn_no_runtime_python(python_version: str) -> None:
    print(
        f"WARNING: python{python_version} not found on PATH, so this ships without .pyc and every cold start "
        f"compiles its modules (seconds slower). Install Python {python_version} or build with "
        "`sam build --use-container`.",
        flush=True,
    )


@functools.cache
def runtime_python(python_version: str) -> str | None:
    """The runtime's own Python: the first pythonX.Y on PATH that runs (a pyenv shim of a Python that is not
    selected does not), or None. In SAM's build container it is always there."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / f"python{python_version}"
        if candidate.is_file() and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return str(candidate)
    return None


def compile_pyc(site: Path, python_version: str, keep_sources: bool = False) -> None:
    """Compile .pyc with the runtime's Python and, unless keep_sources, replace each .py with its .pyc.
    Lambda's /opt and /var/task are read-only, so modules shipped without .pyc are compiled again at every cold
    start; library .py beside them would only add size (~36 MB here; tracebacks in library code then show file and
    line, not the source text). Your own code keeps its source. unchecked-hash: the .pyc is used as is, whatever
    the file times become in the zip."""
    python = runtime_python(python_version)
    if python is None:
        warn_no_runtime_python(python_version)
        return
    legacy = [] if keep_sources else ["-b"]  # -b: x.pyc beside x.py, which then goes
    run(
        [python, "-m", "compileall", "-q", *legacy, "-j", "0", "--invalidation-mode", "unchecked-hash", site],
        stdout=subprocess.DEVNULL,
    )
    if keep_sources:
        return
    replaced = [source for source in site.rglob("*.py") if source.with_suffix(".pyc").is_file()]
    print(
        f"replaced {sum(source.stat().st_size for source in replaced) / 1e6:.1f} MB of .py with .pyc "
        f"compiled by {python}",
        flush=True,
    )
    for source in replaced:
        source.unlink()


def build_packages(target: str, site: Path, python_version: str, architecture: str) -> None:
    """Install the target's pins into site, check them, slim them and compile them."""
    pins, requirements = all_pins(), requirement_files().get(target, LAYERS_DIR / target / "requirements.txt")
    if target not in pins:
        raise BuildError(f"no {requirements}")
    if site.exists():
        shutil.rmtree(site)
    install_packages(requirements, site, python_version, architecture)
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: nothing runs them on Lambda
    check_dependencies(site, pins, python_version, architecture)
    removed = slim(site)
    print("removed " + ", ".join(f"{kind} {size / 1e6:.1f} MB" for kind, size in removed.items()), flush=True)
    compile_pyc(site, python_version)


def build_function(artifacts: Path, python_version: str, architecture: str) -> None:
    """The function's packages (sourceless, like the layers), then its own code, which keeps its source."""
    build_packages("function", artifacts, python_version, architecture)
    for source in FUNCTION_DIR.glob("*.py"):
        shutil.copy2(source, artifacts / source.name)
    compile_pyc(artifacts, python_version, keep_sources=True)


def model_needs_training(artifacts_dir: Path) -> bool:
    """Train when there is no model yet, or when a model made by train.py is older than train.py's inputs.
    A model you exported yourself (save_model from a notebook) is never overwritten."""
    meta_path = artifacts_dir / "model_meta.json"
    if not meta_path.exists():
        return True
    meta = json.loads(meta_path.read_text())
    model_path = artifacts_dir / meta.get("model_file", "")
    if not model_path.is_file():
        return True
    if meta.get("trained_by") != "model/train.py":
        return False
    inputs = [
        *MODEL_DIR.glob("*.py"),
        *MODEL_DIR.glob("*.txt"),
        *(MODEL_DIR / "data").glob("*"),
        *LAYERS_DIR.glob("*/requirements.txt"),
    ]
    built = min(meta_path.stat().st_mtime, model_path.stat().st_mtime)
    return any(path.stat().st_mtime > built for path in inputs)


def pip_install_for(python: str, target: Path | str, *args) -> None:
    """pip install wheels for `python` itself (this machine, not Lambda) into target: the training environment,
    and the benchmark's baselines."""
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"]
    run([*command, "--target", target, *args])


def train(out_dir: Path, python_version: str) -> None:
    """Run model/train.py with exactly the versions Lambda runs: every lock the build reads (the layers', the
    function's and training's, which together hold every dependency), hash-checked, installed for the runtime's
    Python when there is one."""
    python = runtime_python(python_version) or sys.executable
    requirements = [path for path in requirement_files().values() if path.is_file()]
    with tempfile.TemporaryDirectory() as packages:
        print(f"training the model with {python} and the layers' pins", flush=True)
        pip_install_for(python, packages, *[arg for path in requirements for arg in ("--requirement", path)])
        run([python, MODEL_DIR / "train.py", "--out", out_dir], env={**os.environ, "PYTHONPATH": packages})


def build_model_layer(artifacts: Path, python_version: str) -> Path:
    artifacts_dir = MODEL_DIR / "artifacts"
    if model_needs_training(artifacts_dir):
        # Container builds mount the project read-only: train into a scratch folder there.
        if not os.access(MODEL_DIR, os.W_OK):
            artifacts_dir = Path(tempfile.mkdtemp(prefix="model-artifacts-"))
        train(artifacts_dir, python_version)
    package = artifacts / "python" / MODEL_PACKAGE
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""The model and model_meta.json, read with importlib.resources."""\n')
    meta = json.loads((artifacts_dir / "model_meta.json").read_text())
    for name in ("model_meta.json", meta["model_file"]):
        shutil.copy2(artifacts_dir / name, package / name)
    return package.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python-version", required=True, help="the Lambda runtime's Python, e.g. 3.13")
    parser.add_argument("--architecture", required=True, choices=sorted(WHEEL_ARCH))
    parser.add_argument(
        "target", help="a folder in layers/ with requirements.txt (pandas, sklearn, onnxruntime), model or function"
    )
    parser.add_argument("artifacts", type=Path, help="where sam build wants it (ARTIFACTS_DIR)")
    args = parser.parse_args(argv)
    name = "the function" if args.target == "function" else f"the {args.target} layer"
    try:
        if args.target == "model":
            compile_pyc(build_model_layer(args.artifacts, args.python_version), args.python_version)
        elif args.target == "function":
            build_function(args.artifacts, args.python_version, args.architecture)
        else:
            build_packages(args.target, args.artifacts / "python", args.python_version, args.architecture)
    except BuildError as error:
        print(f"error: building {name}: {error}", file=sys.stderr)
        return 1
    print(describe(name, args.artifacts), flush=True)
    if tree_size(args.artifacts) > LAMBDA_UNZIPPED_LIMIT:
        print(f"error: {name} alone is over Lambda's {LAMBDA_UNZIPPED_LIMIT:,}-byte limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
