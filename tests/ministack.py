"""MiniStack, the local AWS emulator, for the deploy tests: its venv, start and stop, and a driver of
`sam deploy --guided` that answers every prompt and fails loudly on any prompt it does not know.

MiniStack runs Python functions with its own interpreter, whatever the function's `Runtime` says, so its venv
is made from the runtime's Python version (pyenv's, or pythonX.Y on PATH). It is cached under REPO/.cache/.

By hand (prints the environment to point sam at it, stops on Ctrl-C):

    .venv/bin/python -m tests.ministack [3.13]
"""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import pexpect

from tools.runtime_python import python_bin_dir

REPO = Path(__file__).resolve().parents[1]

CACHE = REPO / ".cache"  # gitignored; one venv per Python version
# Pinned: MiniStack moves fast and these are the versions the deploy tests were proven with. Changing a pin
# rebuilds the cached venv.
REQUIREMENTS = ("ministack==1.5.33", "aws-sam-translator==1.115.0")
DEFAULT_PORT = 4566  # MiniStack's own default, used when started by hand; the tests take a free port
REGION = "us-east-1"
HEALTH = "/_ministack/health"


class MiniStackError(RuntimeError):
    pass


def venv(python_version: str = "3.13") -> Path:
    """MiniStack's venv for this Python version, made (about 15 s) on first use and then reused. A lock keeps
    two test sessions from making it at the same time."""
    target = CACHE / f"ministack-py{python_version}"
    marker = target / ".installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"ministack-py{python_version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == "\n".join(REQUIREMENTS):
            return target
        bin_dir = python_bin_dir(python_version)
        if bin_dir is None:
            raise MiniStackError(f"no Python {python_version} here (pyenv or PATH): MiniStack runs the "
                                 f"functions with its own interpreter, so it needs the runtime's version")
        shutil.rmtree(target, ignore_errors=True)
        _check([bin_dir / f"python{python_version}", "-m", "venv", target])
        _check([target / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS])
        marker.write_text("\n".join(REQUIREMENTS))
    return target


def _check(command: list) -> None:
    result = subprocess.run([str(c) for c in command], check=False, capture_output=True, text=True,
                            timeout=900)
    if result.returncode:
        raise MiniStackError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is free
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now (tests/test_docker.py uses it too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MiniStack:
    """One MiniStack process on 127.0.0.1, in its own process group and its own temporary folder (where it
    unpacks functions and layers: ministack-lambda-*), both removed by stop(). On a free port unless `port` is
    given (then a taken port is an error: another MiniStack or LocalStack is there)."""

    def __init__(self, python_version: str = "3.13", port: int | None = None):
        self.python_version = python_version
        self.port = port
        self.process: subprocess.Popen | None = None
        self.workdir: Path | None = None
        self.started_in = 0.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.workdir / "ministack.log" if self.workdir else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) pointed at this MiniStack: fake credentials, no profile or AWS config
        of the machine's user, telemetry off."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if not (k.startswith("AWS_") or k == "SAM_CLI_TELEMETRY")}
        return {**env, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "SAM_CLI_TELEMETRY": "0"}

    def start(self, timeout: float = 60) -> Self:
        if self.port is None:
            self.port = free_port()
        elif not _port_is_free(self.port):
            raise MiniStackError(f"port {self.port} on 127.0.0.1 is taken (another MiniStack or LocalStack?)")
        ministack = venv(self.python_version) / "bin" / "ministack"
        self.workdir = Path(tempfile.mkdtemp(prefix="ministack-run-"))
        (self.workdir / "tmp").mkdir()
        env = {**os.environ, "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port),
               "TMPDIR": str(self.workdir / "tmp")}
        started = time.monotonic()
        with open(self.workdir / "ministack.log", "wb") as log:
            self.process = subprocess.Popen([str(ministack)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                log = self.log
                self.stop()
                raise MiniStackError(f"MiniStack exited ({self.process.returncode}) at start:\n{log[-3000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + HEALTH, timeout=2) as response:
                    if response.status == 200:
                        self.started_in = time.monotonic() - started
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        log = self.log
        self.stop()
        raise MiniStackError(f"MiniStack did not answer {HEALTH} within {timeout} s:\n{log[-3000:]}")

    def stop(self) -> None:
        """Stop MiniStack and the function workers it started (its process group), then remove its folder."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass
        if self.process is not None:
            try:  # workers that outlived MiniStack in its process group
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def local_url(url: str, endpoint: str) -> str:
    """A real-AWS API or Function URL (from a stack's outputs) as the emulator serves it, by path:
    https://ID.execute-api.REGION.amazonaws.com/REST → ENDPOINT/_aws/execute-api/ID/REST,
    https://ID.lambda-url.REGION.on.aws/REST → ENDPOINT/_aws/lambda-url/ID/REST."""
    parts = urlsplit(url)
    host_id, _, domain = parts.hostname.partition(".")
    kind = domain.split(".", 1)[0]
    if kind not in ("execute-api", "lambda-url"):
        raise ValueError(f"not an API Gateway or Function URL: {url}")
    return f"{endpoint.rstrip('/')}/_aws/{kind}/{host_id}{parts.path or '/'}"


# --- sam deploy --guided ------------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Every question of `sam deploy --guided` is printed bold, followed by its default in brackets.
GUIDED_PROMPT = re.compile(r"\x1b\[1m(?P<label>[^\x1b\r\n]+)\x1b\[0m \[(?P<default>[^\]\r\n]*)\]: ")
CHANGESET_PROMPT = re.compile(r"Deploy this changeset\? \[(?P<default>y/N|Y/n)\]: ")
YES_NO = ("y/N", "Y/n")
# A line that ends without a newline and looks like a question: an unknown prompt, waiting for us.
LOOKS_LIKE_PROMPT = re.compile(r"[:?\]]\s*$")


class UnknownPrompt(MiniStackError):
    pass


@dataclass
class DeployRun:
    exitstatus: int | None = None
    answers: list[tuple[str, str, str]] = field(default_factory=list)  # (question, its default, our answer)
    parameters: dict[str, str] = field(default_factory=dict)  # each template parameter's prompt default
    transcript: str = ""
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return ANSI.sub("", self.transcript).replace("\r", "")


def _answer(label: str, default: str, stack_name: str, region: str, parameters: dict[str, str],
            confirm_changeset: bool, result: DeployRun) -> str:
    """Our answer to one guided question; raises UnknownPrompt for a question not listed here, and for "Deploy
    this changeset?" after "Confirm changes before deploy" was answered n."""
    def yes_no(answer: str) -> str:
        if default not in YES_NO:
            raise UnknownPrompt(f"{label!r} has default [{default}], expected [y/N] or [Y/n]")
        return answer

    if label == "Stack Name":
        return stack_name
    if label == "AWS Region":
        return region
    if match := re.fullmatch(r"Parameter (\w+)", label):
        result.parameters[match[1]] = default
        return parameters.get(match[1], "")  # "" takes the template's default
    if label == "Confirm changes before deploy":
        return yes_no("y" if confirm_changeset else "n")
    if label == "Deploy this changeset?":
        if not confirm_changeset:
            raise UnknownPrompt("sam asked to confirm the changeset after \"Confirm changes before deploy\" was "
                                "answered n")
        return yes_no("y")
    if label == "Allow SAM CLI IAM role creation":
        return yes_no("y")
    if label == "Disable rollback":
        return yes_no("n")
    if re.fullmatch(r"\w+( Function Url)? has no authentication\. Is this okay\?", label):
        return yes_no("y")
    if label == "Save arguments to configuration file":
        return yes_no("y")
    if label == "SAM configuration file" and default == "samconfig.toml":
        return ""
    if label == "SAM configuration environment" and default == "default":
        return ""
    raise UnknownPrompt(f"unknown guided prompt {label!r} [{default}]")


def guided_deploy(project: Path, stack_name: str, env: dict[str, str], region: str = REGION,
                  parameters: dict[str, str] | None = None, confirm_changeset: bool = False, sam: str = "sam",
                  timeout: float = 900, quiet_limit: float = 20) -> DeployRun:
    """Run `sam deploy --guided` in `project` under a pseudo-terminal, answering every prompt: the stack
    name, the region, each template parameter's default (or `parameters[name]`), "Confirm changes before
    deploy" with `confirm_changeset`, let SAM create the IAM role, keep rollback, accept API events without
    authentication, save everything to samconfig.toml [default], then, when confirm_changeset, deploy the
    changeset. An unknown prompt raises UnknownPrompt (with the transcript) instead of hanging; so does a line
    that looks like a question left unanswered for `quiet_limit` seconds."""
    result = DeployRun()

    def answer(label: str, default: str) -> str:
        return _answer(label, default, stack_name, region, parameters or {}, confirm_changeset, result)

    return _drive([sam, "deploy", "--guided"], project, env, result, timeout, quiet_limit, answer)


def _drive(command: list[str], project: Path, env: dict[str, str], result: DeployRun, timeout: float,
           quiet_limit: float, answer) -> DeployRun:
    transcript = StringIO()
    started = time.monotonic()
    child = pexpect.spawn(command[0], command[1:], cwd=str(project), env=env, encoding="utf-8",
                          codec_errors="replace", dimensions=(50, 200), timeout=quiet_limit)
    child.logfile_read = transcript
    try:
        while True:
            index = child.expect([GUIDED_PROMPT, CHANGESET_PROMPT, pexpect.EOF, pexpect.TIMEOUT])
            if index in (0, 1):
                label = child.match["label"].strip() if index == 0 else "Deploy this changeset?"
                default = child.match["default"]
                reply = answer(label, default)
            elif index == 2:
                break
            else:
                pending = ANSI.sub("", child.before or "").rsplit("\n", 1)[-1]
                if pending.strip() and LOOKS_LIKE_PROMPT.search(pending):
                    raise UnknownPrompt(f"sam is waiting on a prompt this driver does not know: {pending!r}")
                if time.monotonic() - started > timeout:
                    raise MiniStackError(f"{' '.join(command[1:])} still running after {timeout} s")
                continue
            result.answers.append((label, default, reply))
            child.sendline(reply)
    except MiniStackError as error:
        child.terminate(force=True)
        result.transcript = transcript.getvalue()
        raise type(error)(f"{error}\n--- transcript (end) ---\n{result.text[-4000:]}") from None
    finally:
        child.close()
        result.exitstatus = child.exitstatus
        result.transcript = transcript.getvalue()
        result.seconds = time.monotonic() - started
    return result


if __name__ == "__main__":
    with MiniStack(sys.argv[1] if len(sys.argv) > 1 else "3.13", port=DEFAULT_PORT) as running:
        print(f"MiniStack (Python {running.python_version}) on {running.endpoint}, log in {running.workdir}")
        print(f"export AWS_ENDPOINT_URL={running.endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
              f"AWS_DEFAULT_REGION={REGION} SAM_CLI_TELEMETRY=0")
        try:
            running.process.wait()
        except KeyboardInterrupt:
            pass
