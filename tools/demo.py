"""The README's first command (`make demo`): generate the default project, build it, predict the tutorial request.

Builds without Docker, so it needs only Python and make; the function runs as Lambda would load it
(scripts/invoke_built.py in the generated project).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

from tools.runtime_python import python_bin_dir

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "build" / "demo"
RUNTIME = "3.13"


def main() -> int:
    runtime_bin = python_bin_dir(RUNTIME)
    if runtime_bin is None:
        print(f"error: Python {RUNTIME} (the Lambda runtime's version) is needed on PATH or in pyenv", file=sys.stderr)
        return 1
    project = Path(cookiecutter(str(REPO), no_input=True, output_dir=str(OUTPUT), overwrite_if_exists=True))
    print(f"generated {project}")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), str(runtime_bin), os.environ["PATH"]])}
    print("$ sam build", flush=True)
    if subprocess.run(["sam", "build"], cwd=project, env=env).returncode != 0:
        return 1
    invoke = [f"python{RUNTIME}", "scripts/invoke_built.py", "events/direct.json"]
    print("$", " ".join(invoke), flush=True)
    result = subprocess.run(invoke, cwd=project, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        return 1
    request = json.loads((project / "events" / "direct.json").read_text())
    print(f"\nrequest:  {json.dumps(request)}\nresponse: {result.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
