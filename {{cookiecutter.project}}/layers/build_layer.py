"""Build one Lambda layer into <artifacts>/python. layers/Makefile runs it for every layer:

    python3 layers/build_layer.py --python-version 3.13 --architecture x86_64 pandas  <artifacts>
    python3 layers/build_layer.py --python-version 3.13 --architecture x86_64 sklearn <artifacts>
    python3 layers/build_layer.py --python-version 3.13 --architecture x86_64 model   <artifacts>

A package layer installs exactly the pins in layers/<layer>/requirements.txt as Lambda wheels (any host can build
for any target), checks that every dependency is pinned in some layer and that no package is in two layers, removes
what cannot be imported at run time, compiles .pyc with the runtime's own Python, and reports its size.
The model layer trains the model when needed and ships it as the package `trained_model`.
Standard library only: it runs with the host's python3 and inside SAM's build container.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import distributions
from pathlib import Path

from size_report import LAMBDA_UNZIPPED_LIMIT, describe, tree_size

LAYERS_DIR = Path("layers")
MODEL_DIR = Path("model")
MODEL_PACKAGE = "trained_model"
# Lambda's python3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to that fits.
MANYLINUX_GLIBC_MINORS = range(17, 35)
WHEEL_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
# Never needed at run time. Shared objects are never touched: stripping vendored libraries breaks numpy.
REMOVED_DIRS = {"tests", "__pycache__"}
REMOVED_SUFFIXES = {".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp", ".pyi"}


class BuildError(Exception):
    """The layer cannot be built; the message says why and what to do."""


def run(command: list, **kwargs) -> None:
    result = subprocess.run([str(part) for part in command], **kwargs)
    if result.returncode != 0:
        raise BuildError(f"command failed ({result.returncode}): {' '.join(map(str, command))}")


def read_pins(path: Path) -> dict[str, str]:
    """{normalised name: version} from a requirements file of name==version lines."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, separator, pinned = line.partition("==")
            if not separator:
                raise BuildError(f"{path}: {line!r} is not pinned as name==version")
            pins[normalise(name)] = pinned.strip()
    return pins


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def all_pins() -> dict[str, dict[str, str]]:
    """Every package layer's pins; fails if a package is pinned in two layers."""
    pins = {path.parent.name: read_pins(path) for path in sorted(LAYERS_DIR.glob("*/requirements.txt"))}
    owners: dict[str, str] = {}
    for layer, layer_pins in pins.items():
        for name in layer_pins:
            if name in owners:
                raise BuildError(f"{name} is pinned in both layers/{owners[name]} and layers/{layer}: "
                                 "keep it in one layer only (Lambda would load two copies)")
            owners[name] = layer
    return pins


def check_dependencies(site: Path, pins: dict[str, dict[str, str]], python_version: str, architecture: str) -> None:
    """Every dependency of every installed package must be pinned, at a version it accepts, in some layer."""
    # pip's vendored copy of `packaging` evaluates markers and specifiers (no install needed in the build image).
    from pip._vendor.packaging.requirements import Requirement

    pinned = {name: version for layer_pins in pins.values() for name, version in layer_pins.items()}
    environment = {"python_version": python_version, "python_full_version": f"{python_version}.0",
                   "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "platform_machine": WHEEL_ARCH[architecture], "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "extra": ""}
    problems = []
    for dist in distributions(path=[str(site)]):
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            name = normalise(requirement.name)
            if name not in pinned:
                problems.append(f"{dist.name} {dist.version} needs {requirement}, which no layer pins")
            elif not requirement.specifier.contains(pinned[name], prereleases=True):
                problems.append(f"{dist.name} {dist.version} needs {requirement}, but {name}=={pinned[name]} is pinned")
    if problems:
        raise BuildError("missing or conflicting dependencies; fix layers/*/requirements.txt:\n  "
                         + "\n  ".join(problems))


def install_packages(layer: str, site: Path, python_version: str, architecture: str) -> None:
    arch = WHEEL_ARCH[architecture]
    platforms = [f"--platform=manylinux_2_{minor}_{arch}" for minor in MANYLINUX_GLIBC_MINORS]
    run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-compile", "--only-binary=:all:", "--implementation=cp", f"--python-version={python_version}",
         *platforms, "--target", site, "--requirement", LAYERS_DIR / layer / "requirements.txt"])


def slim(site: Path) -> dict[str, int]:
    """Remove tests, caches, Cython sources, C headers and type stubs: nothing Lambda imports.
    Returns the bytes removed by kind, for the build log."""
    removed = {"test suites": 0, "sources, headers, stubs": 0}
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name in REMOVED_DIRS and not path.parent.name.endswith(".dist-info"):
            removed["test suites"] += tree_size(path)
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in REMOVED_SUFFIXES:
            removed["sources, headers, stubs"] += path.stat().st_size
            path.unlink()
    return removed


def runtime_python(python_version: str) -> str | None:
    """The runtime's own Python (pythonX.Y on PATH), or None; in SAM's build container it is always there."""
    return shutil.which(f"python{python_version}")


def compile_pyc(site: Path, python_version: str) -> None:
    """Replace every .py with a .pyc made by the runtime's Python. Lambda's /opt is read-only, so modules shipped
    without .pyc are compiled again at every cold start; the .py beside them would only add size (~36 MB here;
    tracebacks in library code then show file and line, not the source text). unchecked-hash: the .pyc is used
    as is, whatever the file times become in the zip."""
    python = runtime_python(python_version)
    if python is None:
        print(f"WARNING: python{python_version} not found on PATH, so this layer ships without .pyc and every cold "
              f"start compiles its modules (seconds slower). Install Python {python_version} or build with "
              "`sam build --use-container`.", flush=True)
        return
    run([python, "-m", "compileall", "-q", "-b", "-j", "0", "--invalidation-mode", "unchecked-hash", site],
        stdout=subprocess.DEVNULL)
    replaced = [source for source in site.rglob("*.py") if source.with_suffix(".pyc").is_file()]
    print(f"replaced {sum(source.stat().st_size for source in replaced) / 1e6:.1f} MB of .py with .pyc "
          f"compiled by {python}", flush=True)
    for source in replaced:
        source.unlink()


def build_package_layer(layer: str, artifacts: Path, python_version: str, architecture: str) -> Path:
    pins = all_pins()
    if layer not in pins:
        raise BuildError(f"no layers/{layer}/requirements.txt")
    site = artifacts / "python"
    if site.exists():
        shutil.rmtree(site)
    install_packages(layer, site, python_version, architecture)
    check_dependencies(site, pins, python_version, architecture)
    removed = slim(site)
    print("removed " + ", ".join(f"{kind} {size / 1e6:.1f} MB" for kind, size in removed.items()), flush=True)
    return site


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
    inputs = [*MODEL_DIR.glob("*.py"), *(MODEL_DIR / "data").glob("*"), *LAYERS_DIR.glob("*/requirements.txt")]
    built = min(meta_path.stat().st_mtime, model_path.stat().st_mtime)
    return any(path.stat().st_mtime > built for path in inputs)


def train(out_dir: Path, python_version: str) -> None:
    """Run model/train.py with exactly the layers' pins, installed for the runtime's Python when there is one."""
    python = runtime_python(python_version) or sys.executable
    requirements = sorted(LAYERS_DIR.glob("*/requirements.txt"))
    with tempfile.TemporaryDirectory() as packages:
        print(f"training the model with {python} and the layers' pins", flush=True)
        run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
             "--target", packages, *[arg for path in requirements for arg in ("--requirement", path)]])
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
    parser.add_argument("layer", help="pandas, sklearn (a folder in layers/ with requirements.txt) or model")
    parser.add_argument("artifacts", type=Path, help="where sam build wants the layer (ARTIFACTS_DIR)")
    args = parser.parse_args(argv)
    try:
        if args.layer == "model":
            site = build_model_layer(args.artifacts, args.python_version)
        else:
            site = build_package_layer(args.layer, args.artifacts, args.python_version, args.architecture)
        compile_pyc(site, args.python_version)
    except BuildError as error:
        print(f"error: building the {args.layer} layer: {error}", file=sys.stderr)
        return 1
    print(describe(f"{args.layer} layer", args.artifacts), flush=True)
    if tree_size(args.artifacts) > LAMBDA_UNZIPPED_LIMIT:
        print(f"error: the {args.layer} layer alone is over Lambda's {LAMBDA_UNZIPPED_LIMIT:,}-byte limit",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
