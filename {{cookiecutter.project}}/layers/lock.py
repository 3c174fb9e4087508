"""Write each requirements.txt from the requirements.in beside it, every pin with the sha256 of its files:

    make lock        # = .venv/bin/python layers/lock.py

Run it after you change a requirements.in; never edit a requirements.txt by hand. The build installs the layers and
the function with pip --require-hashes, so a swapped or corrupted download fails it.

uv (pinned in requirements-dev.in) resolves every requirements.in of the project together, once: for Python 3.12
and later, on every platform (--universal: Lambda's x86_64 and arm64, and your machine), with the hashes of every file
of each pinned version. The packages are then split across the locks so that none is in two (Lambda would load two
copies): each goes to the lock of the .in that names it, or else to the first lock, in the order of `locks()`, whose
packages need it. So scipy, which scikit-learn needs, goes to the scikit-learn layer; numpy, which both layers need,
to the pandas layer (whose .in names it); what only training or your tools need, to model/requirements.txt or
requirements-dev.txt, which starts with a `-r` line for every other lock. Versions already locked stay unless a .in
asks for another one; options after the script go to `uv pip compile`, e.g.
`.venv/bin/python layers/lock.py --upgrade-package scipy`. Standard library and uv only.
"""

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from build_layer import FUNCTION_DIR, LAYERS_DIR, TRAINING_PINS, normalise

# The oldest Lambda runtime the template offers: the locks hold for it and for every later one.
OLDEST_RUNTIME = "3.12"
DEV_LOCK = Path("requirements-dev.txt")
HEADER = "# Written by `make lock` from {source}: do not edit. Change {source}, then run `make lock`.\n"


class LockError(Exception):
    """The locks cannot be written; the message says why."""


@dataclass
class Locked:
    """One package of the resolution: its lines as uv wrote them (name==version, then its hashes) and what needs it."""

    name: str
    lines: list[str]
    needed_by: set[str] = field(default_factory=set)  # packages
    named_in: set[Path] = field(default_factory=set)  # requirements.in files


def locks() -> list[Path]:
    """Every requirements.txt that has a requirements.in, in the order that decides which one gets a package that
    several need: the layers (by name), the function, training (onnx projects), your tools."""
    sources = [
        *sorted(LAYERS_DIR.glob("*/requirements.in")),
        FUNCTION_DIR / "requirements.in",
        TRAINING_PINS.with_suffix(".in"),
        DEV_LOCK.with_suffix(".in"),
    ]
    return [source.with_suffix(".txt") for source in sources if source.is_file()]


def resolve(targets: list[Path], uv_args: list[str]) -> str:
    """uv's one resolution of every target's requirements.in, annotated with what needs each package."""
    with tempfile.TemporaryDirectory() as scratch:
        resolution = Path(scratch) / "resolution.txt"
        # uv keeps the versions in the file it writes to: start it with the current locks' packages.
        previous = [path.read_text() for path in targets if path.is_file()]
        resolution.write_text(
            "".join(line + "\n" for text in previous for line in text.splitlines() if not line.startswith(("#", "-")))
        )
        command = [
            sys.executable, "-m", "uv", "pip", "compile", "--quiet", "--no-python-downloads", "--universal",
            f"--python-version={OLDEST_RUNTIME}", "--generate-hashes", "--no-header", *uv_args,
            *[target.with_suffix(".in") for target in targets], "--output-file", resolution,
        ]  # fmt: skip
        result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
        if result.returncode != 0:
            raise LockError(f"uv pip compile failed:\n{result.stdout}{result.stderr}".rstrip())
        return resolution.read_text()


def parse(resolution: str) -> dict[str, Locked]:
    """uv's output: `name==version [; marker] \\`, its `--hash=` lines, then `# via` lines naming the packages that
    need it and, as `-r <file>`, the requirements.in files that name it."""
    packages: dict[str, Locked] = {}
    current = None
    for line in resolution.splitlines():
        text = line.strip()
        if not text or line.startswith("#"):
            continue
        if not line[0].isspace():
            current = Locked(normalise(re.match(r"[\w.-]+", line).group()), [line])
            packages[current.name] = current
        elif text.startswith("--hash="):
            current.lines.append(line)
        elif text.startswith("#"):
            via = text.removeprefix("#").strip().removeprefix("via").strip()
            if via.startswith("-r "):
                current.named_in.add(Path(via.removeprefix("-r ")))
            elif via and not via.startswith("-"):
                current.needed_by.add(normalise(via))
    return packages


def split(packages: dict[str, Locked], targets: list[Path]) -> dict[Path, list[Locked]]:
    """Each package to one lock: the one whose .in names it, else the first whose packages need it."""
    rank = {target.with_suffix(".in"): index for index, target in enumerate(targets)}
    by_lock: dict[Path, list[Locked]] = {target: [] for target in targets}
    for package in packages.values():
        if len(package.named_in) > 1:
            first, second = sorted(package.named_in, key=rank.__getitem__)[:2]
            raise LockError(
                f"{package.name} is named in both {first} and {second}: name it in one only "
                "(a package in two locks would be installed twice)"
            )
        sources, seen, todo = set(), set(), [package.name]
        while todo:  # every package that needs this one, directly or not, and the .in files that name them
            name = todo.pop()
            if name in seen or name not in packages:
                continue
            seen.add(name)
            sources |= packages[name].named_in
            todo.extend(packages[name].needed_by)
        by_lock[targets[min(rank[source] for source in sources)]].append(package)
    return by_lock


def write(target: Path, packages: list[Locked], targets: list[Path]) -> None:
    lines = [HEADER.format(source=target.with_suffix(".in"))]
    if target == DEV_LOCK:
        lines += [f"-r {other}\n" for other in targets if other != DEV_LOCK]
    lines += [line + "\n" for package in packages for line in package.lines]
    target.write_text("".join(lines))


def main(uv_args: list[str]) -> int:
    targets = locks()
    try:
        by_lock = split(parse(resolve(targets, uv_args)), targets)
    except LockError as error:
        print(f"error: make lock: {error}", file=sys.stderr)
        return 1
    for target, packages in by_lock.items():
        write(target, packages, targets)
        print(f"wrote {target}: {len(packages)} packages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
