"""Sizes of the built function and layers against Lambda's limit, biggest packages first.

    python3 layers/size_report.py .aws-sam/build      # after sam build; exits 1 over the limit

layers/build_layer.py prints the same report for each layer while it builds.
"""

import sys
from pathlib import Path

# Lambda's limit for a function and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 262_144_000


def tree_size(path: Path) -> int:
    """Bytes of every regular file under path (what Lambda counts once unzipped)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def biggest_entries(python_dir: Path, count: int = 5) -> list[tuple[str, int]]:
    """The largest top-level packages (folders or modules) in a layer's python/ folder."""
    if not python_dir.is_dir():
        return []
    sizes = [(p.name, tree_size(p) if p.is_dir() else p.stat().st_size) for p in python_dir.iterdir()]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def mb(size: int) -> str:
    return f"{size / 1e6:7.1f} MB"


def describe(name: str, path: Path) -> str:
    """One line for a built function or layer, with its biggest packages."""
    size = tree_size(path)
    top = ", ".join(f"{entry} {entry_size / 1e6:.1f}" for entry, entry_size in biggest_entries(path / "python"))
    return f"{name:<20} {mb(size)}  {size / LAMBDA_UNZIPPED_LIMIT:6.1%}" + (f"   biggest (MB): {top}" if top else "")


def report(build_dir: Path) -> int:
    """Print every built resource and the total against the limit; return the total in bytes."""
    resources = sorted(p for p in build_dir.iterdir() if p.is_dir())
    for resource in resources:
        print(describe(resource.name, resource))
    total = sum(tree_size(resource) for resource in resources)
    print(
        f"{'function + layers':<20} {mb(total)}  {total / LAMBDA_UNZIPPED_LIMIT:6.1%} "
        f"of Lambda's {LAMBDA_UNZIPPED_LIMIT:,}-byte unzipped limit"
    )
    return total


def main(argv: list[str]) -> int:
    build_dir = Path(argv[0] if argv else ".aws-sam/build")
    if not build_dir.is_dir():
        print(f"error: {build_dir} does not exist: run sam build first", file=sys.stderr)
        return 1
    total = report(build_dir)
    if total > LAMBDA_UNZIPPED_LIMIT:
        print(
            f"error: function + layers are {total:,} bytes, over Lambda's limit of {LAMBDA_UNZIPPED_LIMIT:,} "
            f"by {total - LAMBDA_UNZIPPED_LIMIT:,}: Lambda would refuse to deploy this",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
