"""Invoke the built function the way Lambda loads it, without Docker.

    python3.13 scripts/invoke_built.py events/direct.json

Run it with the runtime's Python after `sam build`. It sees only what Lambda would: the standard library, the
function's folder and each built layer's python/ folder (as Lambda mounts them under /opt/python) - not the
packages of the Python running it - and writes no __pycache__, as /opt is read-only on Lambda.
Prints the handler's answer as JSON on stdout, the function's logs on stderr.
"""

import json
import subprocess
import sys
from pathlib import Path

BUILD_DIR = Path(".aws-sam/build")
FUNCTION = "PredictFunction"

# Runs in a fresh interpreter: -I ignores PYTHONPATH and user packages, -S skips site-packages, -B writes no .pyc.
# What the handler and Powertools read of Lambda's context object.
CONTEXT = """
class Context:
    aws_request_id = "local-invoke"
    function_name = "PredictFunction"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:PredictFunction"
    memory_limit_in_mb = 1024
    def get_remaining_time_in_millis(self):
        return 20_000
"""
RUNNER = (
    CONTEXT
    + """
import contextlib, json, sys
sys.path[:0] = json.loads(sys.argv[1])
with contextlib.redirect_stdout(sys.stderr):  # the function's logs go to stderr, as sam local invoke shows them
    from app import handler
    answer = handler(json.load(open(sys.argv[2])), Context())
print(json.dumps(answer))
"""
)


def lambda_sys_path(build_dir: Path) -> list[str]:
    """The function's folder first, then every built layer's python/ folder, as on Lambda."""
    function_dir = build_dir / FUNCTION
    if not function_dir.is_dir():
        raise SystemExit(f"error: {function_dir} does not exist: run sam build first")
    layers = sorted(p / "python" for p in build_dir.iterdir() if (p / "python").is_dir())
    return [str(function_dir.resolve()), *(str(p.resolve()) for p in layers)]


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    event = Path(argv[0])
    build_dir = Path(argv[1]) if len(argv) == 2 else BUILD_DIR
    paths = lambda_sys_path(build_dir)
    return subprocess.run([sys.executable, "-I", "-S", "-B", "-c", RUNNER, json.dumps(paths), str(event)]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
