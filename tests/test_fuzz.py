"""schemathesis against the running API, led by the API's own OpenAPI document (GET /openapi.json): the generated
project's `make fuzz`, pointed at `sam local start-api` for http and rest (tests/test_deploy.py points it at the rest
and function-url stacks on MiniStack).

Every check schemathesis has is on: no server error, status codes, content types and headers as documented, answers
matching their schemas, schema-breaking requests rejected, schema-valid ones accepted, 405 with Allow for another
method (the generated project's schemathesis.toml says what the API does by design: 413 for too many records, and
which methods reach the function to get a 405: a REST API answers other methods itself). A run is bounded
(FUZZ_EXAMPLES per operation in the fuzzing phase, on top of the coverage phase's fixed cases) and reproducible
(--generation-deterministic).

One thing here only: SAM CLI's local emulator answers 502 to a body that is not UTF-8 (a UnicodeDecodeError of its
own) before the function runs, so against it those bodies are not sent (SAM_LOCAL_HOOKS). The handler's 400 for
them is proven by the generated project's unit and property tests.
"""

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from conftest import sam_env
from test_docker import docker_engine, start_api, timed, timings  # noqa: F401  (fixtures used by this module)

pytestmark = pytest.mark.docker

FUZZ_EXAMPLES = 25  # per operation in the fuzzing phase; about a minute a run here, with the coverage phase
SAM_LOCAL_HOOKS = '''
import schemathesis


@schemathesis.hook
def filter_body(context, body):
    """SAM CLI's emulator fails (502) on a body that is not UTF-8, before the function runs."""
    if isinstance(body, bytes):
        try:
            body.decode()
        except UnicodeDecodeError:
            return False
    return True
'''


def make_fuzz(project: Path, venv: Path, url: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """`make fuzz URL=<url>` in the project, as its README says, with the given venv's schemathesis (-o: never
    remake that venv) and a reproducible, bounded run."""
    command = ["make", "-o", f"{venv}/.installed", "fuzz", f"VENV={venv}", f"URL={url}",
               f"FUZZ_EXAMPLES={FUZZ_EXAMPLES}", "FUZZ_OPTIONS=--generation-deterministic --no-color"]
    return subprocess.run(command, cwd=project, env={**sam_env(), **env}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def assert_fuzzed_every_operation(result: subprocess.CompletedProcess, base_url: str) -> None:
    """schemathesis passed, having tested each operation of the document the API serves (but GET /openapi.json,
    which schemathesis leaves out when it reads the document from there)."""
    assert result.returncode == 0, f"make fuzz failed:\n{result.stdout[-20_000:]}\n{result.stderr[-5000:]}"
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/openapi.json", timeout=60) as response:
        operations = sum(len(methods) for methods in json.load(response)["paths"].values()) - 1
    assert f"{operations} selected / {operations} total" in result.stdout, result.stdout[-5000:]
    assert "No issues found" in result.stdout, result.stdout[-5000:]


@pytest.mark.parametrize("api", ["http", "rest"])
def test_schemathesis_finds_nothing_against_sam_local_start_api(api, built_project, timings, tmp_path, project_venv):  # noqa: F811 (the fixture)
    project = built_project(api=api)
    (tmp_path / "sam_local_hooks.py").write_text(SAM_LOCAL_HOOKS)
    step = f"make fuzz against sam local start-api (api={api})"
    with start_api(project, tmp_path / "start-api.log", timings, step) as url, timed(timings, f"{step}: the run"):
        result = make_fuzz(project, project_venv, url, PYTHONPATH=str(tmp_path), SCHEMATHESIS_HOOKS="sam_local_hooks")
        assert_fuzzed_every_operation(result, url)
