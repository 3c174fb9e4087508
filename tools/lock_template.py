"""Lock the template: `make lock` in a fresh project of each model format, written back into the template.

    .venv/bin/python -m tools.lock_template    # after changing a requirements.in of {{cookiecutter.project}}

A generated project's requirements.txt files must be exactly what its `make lock` writes (tests/test_build.py
checks it for every format). The formats lock mostly the same packages, so the template keeps each lock
once and puts what only some formats have (skops's packages in the scikit-learn layer, the onnx project's `-r`
lines in requirements-dev.txt) inside `{%- if cookiecutter.model_format ... %}`.
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "{{cookiecutter.project}}"
MODEL_FORMATS = json.loads((REPO / "cookiecutter.json").read_text())["model_format"]


def generate(output_dir: Path, model_format: str) -> Path:
    return Path(cookiecutter(str(REPO), no_input=True, output_dir=str(output_dir),
                             extra_context={"model_format": model_format}))


def lock_files(project: Path) -> dict[str, str]:
    """{path in the project: text} of every requirements.txt that has a requirements.in beside it."""
    locks = sorted(project.rglob("requirements*.txt"))
    return {str(path.relative_to(project)): path.read_text()
            for path in locks if path.with_suffix(".in").is_file()}


def lock_entry(lock: str, name: str) -> str:
    """A package's lines in a lock: `name==version \\` and its hashes."""
    return re.search(rf"^{re.escape(name)}==.*?(?=^\S|\Z)", lock, re.MULTILINE | re.DOTALL).group()


def uv_venv(venv: Path) -> Path:
    """A venv holding only uv, at the version and hashes that requirements-dev.txt locks: what `make lock`
    needs from .venv."""
    requirements = venv.parent / "uv-requirements.txt"
    requirements.parent.mkdir(parents=True, exist_ok=True)
    requirements.write_text(lock_entry((TEMPLATE / "requirements-dev.txt").read_text(), "uv"))
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--require-hashes", "-r", requirements], check=True)
    return venv


def make_lock(project: Path, venv: Path) -> subprocess.CompletedProcess:
    """`make lock` with venv as .venv, taken as up to date (-o: make leaves it as it is)."""
    return subprocess.run(["make", "lock", f"VENV={venv}", "-o", f"{venv}/.installed"], check=False,
                          cwd=project, capture_output=True, text=True, timeout=600)


def units(text: str) -> list[str]:
    """A lock's lines, each package's hash lines kept with its name==version line."""
    found: list[str] = []
    for line in text.splitlines(keepends=True):
        if line[0].isspace():
            found[-1] += line
        else:
            found.append(line)
    return found


def condition(formats: list[str], among: list[str]) -> str:
    if len(formats) == 1:
        return f'cookiecutter.model_format == "{formats[0]}"'
    others = [name for name in among if name not in formats]
    if len(others) == 1:
        return f'cookiecutter.model_format != "{others[0]}"'
    return f"cookiecutter.model_format in {json.dumps(formats)}"


def merge(variants: dict[str, str]) -> str:
    """One Jinja text that renders, for each model format, exactly its variant of a lock."""
    merged: list[str] = []
    for text in variants.values():  # every unit once, each variant's order kept
        position = 0
        for unit in units(text):
            if unit in merged:
                position = merged.index(unit) + 1
            else:
                merged.insert(position, unit)
                position += 1
    among = list(variants)
    # A tag's "{%-" eats the newline before it: each tag takes the previous line's newline and gives it back.
    parts, previous = [], None
    for unit in [*merged, None]:  # None: the end, which closes the last condition
        formats = [name for name, text in variants.items() if unit in units(text)]
        test = None if unit is None or formats == among else condition(formats, among)
        if test != previous:
            if previous is not None:
                parts[-1] = parts[-1].removesuffix("\n")
                parts.append("\n{%- endif %}\n")
            if test is not None:
                parts[-1] = parts[-1].removesuffix("\n")
                parts.append(f"\n{{%- if {test} %}}\n")
        parts.append(unit or "")
        previous = test
    return "".join(parts)


def locked_projects(work: Path, venv: Path) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """{model format: (its locks as generated, its locks after `make lock` with uv from venv)}."""
    result = {}
    for name in MODEL_FORMATS:
        project = generate(work / name, name)
        generated = lock_files(project)
        locked = make_lock(project, venv)
        if locked.returncode != 0:
            raise SystemExit(f"error: make lock in a {name} project:\n{locked.stdout}{locked.stderr}")
        result[name] = (generated, lock_files(project))
    return result


def template_locks(locked: dict[str, dict[str, str]]) -> dict[str, str]:
    """{path in the template: its text} from every format's locks."""
    paths = sorted({path for locks in locked.values() for path in locks})
    return {path: merge({name: locks[path] for name, locks in locked.items() if path in locks})
            for path in paths}


def main() -> int:
    with tempfile.TemporaryDirectory() as work:
        projects = locked_projects(Path(work), uv_venv(Path(work) / "uv" / ".venv"))
    for path, text in template_locks({name: after for name, (_, after) in projects.items()}).items():
        target = TEMPLATE / path
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
            print(f"wrote {target.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
