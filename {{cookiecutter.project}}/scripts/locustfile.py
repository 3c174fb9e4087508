"""A bounded load test of the deployed API with locust: `make load URL=<PredictUrl>`.

USERS (16) users send REQUESTS (3000) requests, then it stops by itself (or at RUN_TIME, whichever comes first):
single records, batches of 100 rows and bad requests. Every answer must be the one the function built in
.aws-sam/build gives on this machine: the same status, and for a 200 the same predictions. It prints requests per
second and p50/p95/p99 latency, writes locust's HTML report (load-report.html), and exits 1 if any answer differs
or any request fails to get one.

Deploy the build you test: the deployed model (GET / answers its sha256) must be the one in .aws-sam/build.
Without make: .venv/bin/locust -f scripts/locustfile.py --headless --host <URL> --users 16 --requests 3000
"""

import json
import math
import random
import subprocess
import sys
import urllib.request
from pathlib import Path

import gevent
from invoke_built import BUILD_DIR, CONTEXT, lambda_sys_path
from locust import HttpUser, constant, events, task

SINGLE_RECORDS = 50  # distinct requests of each kind, answered once here before the test
BATCHES = 10
BATCH_ROWS = 100
# The built function, in a fresh interpreter that sees only what Lambda would (as scripts/invoke_built.py runs it),
# answers a list of events read from stdin.
ANSWER_EACH = (
    CONTEXT
    + """
import contextlib, json, sys
sys.path[:0] = json.loads(sys.argv[1])
with contextlib.redirect_stdout(sys.stderr):  # the function's logs
    from app import handler
    answers = [handler(event, Context()) for event in json.load(sys.stdin)]
print(json.dumps(answers))
"""
)


class Request:
    """A request body and the answer the built function gives it: the status through the API, and the JSON."""

    def __init__(self, payload, answer: dict):
        self.body = json.dumps(payload)
        self.status = answer["status"] if "error" in answer else 200
        self.answer = answer


def local_answers(payloads: list) -> list[dict]:
    paths = json.dumps(lambda_sys_path(BUILD_DIR))
    command = [sys.executable, "-I", "-S", "-B", "-c", ANSWER_EACH, paths]
    ran = subprocess.run(command, input=json.dumps(payloads), capture_output=True, text=True)
    if ran.returncode:
        raise SystemExit(f"error: the built function failed here:\n{ran.stderr[-3000:]}")
    return json.loads(ran.stdout)


def records(features: list[dict], count: int, rng: random.Random) -> list[dict]:
    """Valid records: each category drawn from the model's categories, each number from 0 to 100 (any finite
    number is a valid request: the deployed answer is compared with the local one, not judged)."""

    def value(feature: dict):
        return rng.choice(feature["categories"]) if feature["kind"] == "category" else round(rng.uniform(0, 100), 2)

    return [{feature["name"]: value(feature) for feature in features} for _ in range(count)]


def bad_requests(record: dict, batch: list[dict]) -> list:
    first = next(iter(record))
    without_first = {name: value for name, value in record.items() if name != first}
    return [without_first, {**record, "not a feature": 1}, [*batch[:49], without_first, *batch[50:]], "a text"]


def same(deployed, local) -> bool:
    """Equal JSON, numbers to 1e-9 relative: the same model may round its last digit otherwise on another CPU."""
    if isinstance(local, dict):
        return (
            isinstance(deployed, dict)
            and deployed.keys() == local.keys()
            and all(same(deployed[key], local[key]) for key in local)
        )
    if isinstance(local, list):
        return (
            isinstance(deployed, list)
            and len(deployed) == len(local)
            and all(same(one, other) for one, other in zip(deployed, local, strict=True))
        )
    if isinstance(local, float):
        return isinstance(deployed, (int, float)) and math.isclose(deployed, local, rel_tol=1e-9, abs_tol=1e-12)
    return deployed == local


def answer_of(response):
    try:
        return response.json()
    except ValueError:
        return response.text  # not JSON: differs from any answer of the function


class Traffic:
    """The requests the users send, by kind, and how many are left to send (set by prepare)."""

    singles: list[Request] = []
    batches: list[Request] = []
    bad: list[Request] = []
    left = 0


@events.init_command_line_parser.add_listener
def add_options(parser):
    parser.add_argument("--requests", type=int, default=3000, help="Stop after this many requests")


@events.init.add_listener
def prepare(environment, **_):
    """Check the deployed model is the built one, then answer every request of the test here."""
    options = environment.parsed_options
    if not options.host:
        raise SystemExit("error: give the deployed API's URL: make load URL=<PredictUrl from sam list stack-outputs>")
    environment.host = options.host.rstrip("/").removesuffix("/predict")  # PredictUrl, or a Function URL
    model_layer = next(path for path in map(Path, lambda_sys_path(BUILD_DIR)) if (path / "trained_model").is_dir())
    built = json.loads((model_layer / "trained_model" / "model_meta.json").read_text())
    try:
        with urllib.request.urlopen(environment.host + "/", timeout=60) as response:
            deployed = json.loads(response.read())["model"]
    except OSError as error:
        raise SystemExit(f"error: GET {environment.host}/ (the model's metadata) failed: {error}") from None
    if deployed["sha256"] != built["sha256"]:
        raise SystemExit(
            f"error: the deployed model (sha256 {deployed['sha256'][:12]}) is not the one in {BUILD_DIR} "
            f"({built['sha256'][:12]}): deploy this build, or build what is deployed"
        )
    rng = random.Random(0)
    singles = records(built["features"], SINGLE_RECORDS, rng)
    batches = [records(built["features"], BATCH_ROWS, rng) for _ in range(BATCHES)]
    bad = bad_requests(singles[0], batches[0])
    answers = iter(local_answers([*singles, *batches, *bad]))
    Traffic.singles = [Request(payload, next(answers)) for payload in singles]
    Traffic.batches = [Request(payload, next(answers)) for payload in batches]
    Traffic.bad = [Request(payload, next(answers)) for payload in bad]
    if any(request.status != 200 for request in Traffic.singles + Traffic.batches):
        raise SystemExit("error: the built function refused a valid request here: run scripts/invoke_built.py")
    if not all(400 <= request.status < 500 for request in Traffic.bad):
        raise SystemExit("error: the built function accepted a request meant to be bad")
    Traffic.left = options.requests


@events.test_start.add_listener
def stop_after_the_last_answer(environment, **_):
    def wait_then_quit():
        while environment.runner.stats.total.num_requests < environment.parsed_options.requests:
            gevent.sleep(0.1)
        environment.runner.quit()

    gevent.spawn(wait_then_quit)


@events.quitting.add_listener
def print_summary(environment, **_):
    total = environment.runner.stats.total
    if not total.num_requests:
        return
    p50, p95, p99 = (total.get_response_time_percentile(p) for p in (0.5, 0.95, 0.99))
    print(
        f"\n{total.num_requests} of {environment.parsed_options.requests} requests, {total.num_failures} unexpected "
        f"answers or transport errors: {total.total_rps:.1f} requests/s; latency p50 {p50} ms, p95 {p95} ms, "
        f"p99 {p99} ms"
    )
    if environment.parsed_options.html_file:
        print(f"report: {environment.parsed_options.html_file}")


class ApiUser(HttpUser):
    wait_time = constant(0)  # each user sends its next request as soon as it has an answer

    @task(6)
    def single_record(self):
        self.send("single record", random.choice(Traffic.singles))

    @task(3)
    def batch(self):
        self.send(f"batch of {BATCH_ROWS} rows", random.choice(Traffic.batches))

    @task(1)
    def bad_request(self):
        self.send("bad request", random.choice(Traffic.bad))

    def send(self, name: str, request: Request):
        if Traffic.left == 0:
            self.stop()
            return
        Traffic.left -= 1
        json_body = {"Content-Type": "application/json"}
        with self.client.post("/predict", data=request.body, headers=json_body, name=name, catch_response=True) as got:
            if got.status_code != request.status:
                answer = got.text[:200] if got.status_code else got.error  # status 0: no answer (a transport error)
                got.failure(f"status {got.status_code}, expected {request.status}: {answer}")
            elif not same(answer_of(got), request.answer):
                got.failure("the answer differs from the built function's here")
            else:
                got.success()  # locust counts any 4xx as a failure unless told
