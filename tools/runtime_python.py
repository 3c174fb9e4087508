"""Find the Lambda runtime's Python (python3.13 for the python3.13 runtime) on this machine."""

import shutil
import subprocess
from pathlib import Path


def python_bin_dir(version: str) -> Path | None:
    """The bin folder holding pythonX.Y: pyenv's newest X.Y when pyenv has one, else the one on PATH; or None."""
    if shutil.which("pyenv"):
        prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True)
        if prefix.returncode == 0 and (Path(prefix.stdout.strip()) / "bin" / f"python{version}").exists():
            return Path(prefix.stdout.strip()) / "bin"
    found = shutil.which(f"python{version}")
    return Path(found).parent if found else None
