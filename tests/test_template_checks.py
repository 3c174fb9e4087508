"""template.yaml of every combination passes `sam validate --lint`, cfn-lint with the serverless rules and checkov
with zero findings, except suppressions written next to the resource, each with its reason; every suppression is
still needed; a deliberately broken template makes every checker fail; SAM translates every combination, with the
default parameters and with every option switched on.

checkov reads a SAM template as written: it knows a few checks of the Serverless types but not the resources SAM
generates from them (the API stage, the function URL, ...). So it also scans SAM's translation of each template; a
finding on a generated resource (PredictApiProdStage) counts as suppressed when the SAM resource it comes from
(PredictApi) suppresses that check.

Findings and suppressions are printed at the end of the module (and with each failure).
"""

import copy
import itertools
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from conftest import BIN, REPO, generate, run, sam_env
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

# checkov pins boto3 far below aws-sam-cli's pin, so it lives in a venv of its own, cached under REPO/.cache/ (made
# once, about 25 s). Same version as the generated project's .pre-commit-config.yaml; changing it remakes the venv.
CHECKOV = "checkov==3.3.30"
CHECKOV_VENV = REPO / ".cache" / "checkov"

ANSWERS = json.loads((REPO / "cookiecutter.json").read_text())
AXES = ("python_runtime", "architecture", "api", "model_format")
DEFAULTS = {axis: ANSWERS[axis][0] for axis in AXES}
# skops gives joblib's template.yaml (test_model_format_changes_only_the_layers), so it is no combination of its own;
# onnx (other layers) is checked with each API on the default runtime and architecture.
COMBINATIONS = [dict(zip(AXES, values)) for values in itertools.product(
    ANSWERS["python_runtime"], ANSWERS["architecture"], ANSWERS["api"], [DEFAULTS["model_format"]])]
COMBINATIONS += [{**DEFAULTS, "api": api, "model_format": "onnx"} for api in ANSWERS["api"]]
FAST = [DEFAULTS] + [{**DEFAULTS, axis: value} for axis in AXES for value in ANSWERS[axis][1:] if value != "skops"]
# Every option switched on, by making it the parameter's default: SnapStart, IAM authentication, a concurrency cap,
# alarm e-mails, REST access logs, tracing off. The checkers read defaults, and so does SAM when it translates.
ALL_OPTIONS = {"SnapStart": "PublishedVersions", "Authentication": "AWS_IAM", "ReservedConcurrency": "5",
               "AlarmEmail": "ops@example.com", "ApiAccessLogs": "Enabled", "Tracing": "Disabled"}
REGION = "us-east-1"


def combination_id(options: dict) -> str:
    return "-".join(options[axis] for axis in AXES)


def options_of(combination: str) -> dict:
    return next(options for options in COMBINATIONS if combination_id(options) == combination)


def validated(options: dict) -> bool:
    """Whether `sam validate --lint` runs on this combination: every API and format on the default runtime and
    architecture, and each other runtime and architecture with the default API. It is cfn-lint without the
    serverless rules (at about 4 s a run), and cfn-lint runs on every combination anyway."""
    default_platform = all(options[axis] == DEFAULTS[axis] for axis in ("python_runtime", "architecture"))
    return default_platform or (options["api"], options["model_format"]) == (DEFAULTS["api"], DEFAULTS["model_format"])


def pytest_generate_tests(metafunc):
    chosen = FAST if metafunc.config.getoption("--fast") else COMBINATIONS
    if "combination" in metafunc.fixturenames:
        metafunc.parametrize("combination", [combination_id(c) for c in chosen])
    if "validated_combination" in metafunc.fixturenames:
        metafunc.parametrize("validated_combination", [combination_id(c) for c in chosen if validated(c)])
    if "api" in metafunc.fixturenames:
        metafunc.parametrize("api", ANSWERS["api"])


# --- the checkers ------------------------------------------------------------------------------------------------

def checkov_bin() -> Path:
    marker = CHECKOV_VENV / ".installed"
    checkov = CHECKOV_VENV / "bin" / "checkov"
    if not (marker.is_file() and marker.read_text() == CHECKOV and checkov.exists()):
        shutil.rmtree(CHECKOV_VENV, ignore_errors=True)
        CHECKOV_VENV.parent.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "venv", CHECKOV_VENV], cwd=REPO)
        run([CHECKOV_VENV / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", CHECKOV], cwd=REPO)
        marker.write_text(CHECKOV)
    return checkov


def sam_validate_lint(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sam"), "validate", "--lint"], cwd=project, env=sam_env(),
                          check=False, capture_output=True, text=True, timeout=300)


def cfn_lint(templates: list[Path]) -> dict[Path, list[str]]:
    """cfn-lint with the serverless rules (cfn-lint-serverless) over these templates: findings per template, each
    'RULE resource: message (line N)'."""
    result = subprocess.run([str(BIN / "cfn-lint"), "--format", "json", "--append-rules", "cfn_lint_serverless.rules",
                             "--", *map(str, templates)], check=False, capture_output=True, text=True, timeout=600)
    try:
        matches = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"cfn-lint crashed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    findings = {template: [] for template in templates}
    for match in matches:
        path = match["Location"]["Path"]
        resource = path[1] if len(path) > 1 and path[0] == "Resources" else "/".join(map(str, path))
        findings[Path(match["Filename"])].append(
            f"{match['Rule']['Id']} {resource}: {match['Message']} (line {match['Location']['Start']['LineNumber']})")
    return findings


def checkov(directory: Path) -> dict[Path, dict[str, list]]:
    """checkov (CloudFormation framework) over every template under `directory`: per file, its 'failed' checks as
    (check, resource) and its 'skipped' ones as (check, resource, comment)."""
    result = subprocess.run([str(checkov_bin()), "--framework", "cloudformation", "--skip-download", "--output", "json",
                             "--directory", str(directory)], check=False,
                            capture_output=True, text=True, timeout=900)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov crashed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    assert report["summary"]["parsing_errors"] == 0, report["results"]["parsing_errors"]
    by_file: dict[Path, dict[str, list]] = defaultdict(lambda: {"failed": [], "skipped": []})
    for check in report["results"]["failed_checks"]:
        by_file[directory / check["file_path"].lstrip("/")]["failed"].append(
            (check["check_id"], check["resource"].rsplit(".", 1)[-1]))
    for check in report["results"]["skipped_checks"]:
        by_file[directory / check["file_path"].lstrip("/")]["skipped"].append(
            (check["check_id"], check["resource"].rsplit(".", 1)[-1], check["check_result"].get("suppress_comment")))
    return by_file


# --- templates: parse, strip suppressions, translate -------------------------------------------------------------

def load(template: Path) -> dict:
    """The template as data; CloudFormation's short tags (!Ref) become their long form."""
    return json.loads(json.dumps(cfn_yaml.load(str(template))))


def skip_comment(template: dict, check: str, resource: str) -> str | None:
    skips = template["Resources"][resource].get("Metadata", {}).get("checkov", {}).get("skip", [])
    return next((s.get("comment") for s in skips if s["id"] == check), None)


def suppressions(template: dict) -> dict[str, set[tuple[str, str]]]:
    """The suppressions written in the resources' Metadata: {'cfn-lint': {(rule, resource)}, 'checkov': {...}}."""
    found = {"cfn-lint": set(), "checkov": set()}
    for name, resource in template["Resources"].items():
        metadata = resource.get("Metadata", {})
        for rule in metadata.get("cfn-lint", {}).get("config", {}).get("ignore_checks", []):
            found["cfn-lint"].add((rule, name))
        for skip in metadata.get("checkov", {}).get("skip", []):
            found["checkov"].add((skip["id"], name))
    return found


def cfn_lint_reasons(text: str) -> dict[str, str]:
    """The one-line comment written above each `- RULE` of a cfn-lint ignore_checks list."""
    return {rule: reason for reason, rule in re.findall(r"^ +# (.+)\n +- ([EWI]S?\d{4})$", text, flags=re.MULTILINE)}


def without_suppressions(template: dict) -> dict:
    stripped = copy.deepcopy(template)
    for resource in stripped["Resources"].values():
        metadata = resource.get("Metadata", {})
        metadata.pop("cfn-lint", None)
        metadata.pop("checkov", None)
        if "Metadata" in resource and not metadata:
            del resource["Metadata"]
    return stripped


def translate(template: dict, parameters: dict | None = None) -> dict:
    """SAM's translation to plain CloudFormation, as the AWS::Serverless transform does it at deploy time (local
    CodeUri and ContentUri become S3 URIs, as `sam package` makes them)."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://artifacts-bucket/{properties[key]}"
    # No managed policy for SAM to look up: the function has its own role.
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated = translator.translate(template, parameter_values=dict(parameters or {}), get_managed_policy_map=dict)
    translator.metrics.publish()  # to nowhere (a dummy publisher); unpublished metrics are warned about
    return translated


def source_resource(name: str, sam_resources: list[str]) -> str:
    """The SAM resource a translated resource comes from: SAM names what it generates after it
    (PredictApiProdStage from PredictApi)."""
    sources = [s for s in sam_resources if name.startswith(s)]
    return max(sources, key=len) if sources else name


def with_defaults(text: str, defaults: dict[str, str]) -> str:
    """template.yaml with these parameters' defaults changed (those the template has)."""
    for name, value in defaults.items():
        text = re.sub(rf"(^  {name}:\n(?:    .*\n)*?    Default: ).*$", lambda m, value=value: m[1] + json.dumps(value),
                      text,
                      count=1, flags=re.MULTILINE)
    return text


# --- everything rendered and checked once ------------------------------------------------------------------------

ALL = "+all-options"


@pytest.fixture(scope="module")
def checked(tmp_path_factory, request):
    """Render every combination (and, for the same template, skops for joblib) and a copy of each with every option
    on (KEY+all-options), then run cfn-lint and checkov once over all of them: as written, as SAM translates them,
    and with their suppressions removed."""
    root = tmp_path_factory.mktemp("template-checks")
    chosen = FAST if request.config.getoption("--fast") else COMBINATIONS
    projects, templates = {}, {}
    for options in chosen:
        key = combination_id(options)
        formats = ["joblib", "skops"] if options["model_format"] == "joblib" else [options["model_format"]]
        rendered = {fmt: generate(root / "render" / key / fmt, **{**options, "model_format": fmt}) for fmt in formats}
        project = projects[key] = rendered[options["model_format"]]
        templates[key] = {fmt: (p / "template.yaml").read_text() for fmt, p in rendered.items()}
        all_options = projects[key + ALL] = root / "render" / (key + ALL) / project.name
        shutil.copytree(project, all_options)
        (all_options / "template.yaml").write_text(with_defaults(templates[key][options["model_format"]], ALL_OPTIONS))

    scan, stripped = root / "scan", root / "stripped"
    for key, project in projects.items():
        data = load(project / "template.yaml")
        bare = without_suppressions(data)
        (scan / key).mkdir(parents=True)
        (stripped / key).mkdir(parents=True)
        shutil.copy(project / "template.yaml", scan / key / "template.yaml")
        (scan / key / "translated.json").write_text(json.dumps(translate(data), indent=1))
        (stripped / key / "template.json").write_text(json.dumps(bare, indent=1))
        (stripped / key / "translated.json").write_text(json.dumps(translate(bare), indent=1))

    # Two at a time (this machine has two cores): the four batch runs, then `sam validate --lint` of the validated()
    # combinations (and of every option on, for the default runtime and architecture).
    validate = [key for key in projects if validated(options_of(key.removesuffix(ALL))) and (
        not key.endswith(ALL) or key.startswith(f"{DEFAULTS['python_runtime']}-{DEFAULTS['architecture']}-"))]
    checkov_bin()  # made once here, not by two threads at a time
    with ThreadPoolExecutor(max_workers=2) as pool:
        lint = pool.submit(cfn_lint, [scan / key / "template.yaml" for key in projects])
        lint_bare = pool.submit(cfn_lint, [stripped / key / "template.json" for key in projects])
        scanned, scanned_bare = pool.submit(checkov, scan), pool.submit(checkov, stripped)
        lint_results = dict(zip(validate, pool.map(lambda key: sam_validate_lint(projects[key]), validate)))
    lint, lint_bare, scanned, scanned_bare = (f.result() for f in (lint, lint_bare, scanned, scanned_bare))
    results = {}
    for key, project in projects.items():
        data = load(project / "template.yaml")
        sam_resources = list(data["Resources"])
        declared = suppressions(data)
        reasons = cfn_lint_reasons((project / "template.yaml").read_text())
        skipped = scanned[scan / key / "template.yaml"]["skipped"]
        translated_failed = [(check, source_resource(resource, sam_resources))
                             for check, resource in scanned[scan / key / "translated.json"]["failed"]]
        results[key] = {
            "project": project,
            "sam validate --lint": lint_results.get(key),
            "templates": templates.get(key),
            "cfn-lint": lint[scan / key / "template.yaml"],
            "checkov": scanned[scan / key / "template.yaml"]["failed"]
            + [f for f in translated_failed if f not in declared["checkov"]],
            # (tool, rule, resource, reason) of every suppression that took effect
            "suppressed": sorted(
                {("cfn-lint", rule, resource, reasons.get(rule)) for rule, resource in declared["cfn-lint"]}
                | {("checkov", check, resource, comment) for check, resource, comment in skipped}
                | {("checkov", check, resource, skip_comment(data, check, resource))
                   for check, resource in translated_failed if (check, resource) in declared["checkov"]}),
            "declared": declared,
            # what each checker finds once the suppressions are removed
            "unsuppressed": {
                "cfn-lint": {(line.split()[0], line.split()[1].rstrip(":"))
                             for line in lint_bare[stripped / key / "template.json"]},
                "checkov": set(scanned_bare[stripped / key / "template.json"]["failed"])
                | {(check, source_resource(resource, sam_resources))
                   for check, resource in scanned_bare[stripped / key / "translated.json"]["failed"]},
            },
        }
    yield results
    report(request.config, results)


def report(config, results: dict) -> None:
    """What the checkers saw, printed once after the module's tests."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        _report(reporter.write_line, results)


def _report(write, results: dict) -> None:
    write("")
    write(f"template checks: {len(results)} templates, with the default parameters and with every option on "
          f"(sam validate --lint, cfn-lint + serverless rules, checkov)")
    for key, result in results.items():
        if result["cfn-lint"] or result["checkov"]:
            write(f"  {key}: FINDINGS cfn-lint {result['cfn-lint']} checkov {result['checkov']}")
    suppressed = sorted({s for result in results.values() for s in result["suppressed"]})
    write("  suppressed, each where the resource exists (tool, rule, resource: reason):")
    for tool, rule, resource, reason in suppressed:
        write(f"    {tool:8} {rule:11} {resource:19} {reason}")


def show(result: dict) -> str:
    return (f"cfn-lint findings: {result['cfn-lint']}\ncheckov findings: {result['checkov']}\n"
            f"suppressed: {result['suppressed']}")


# --- the tests ---------------------------------------------------------------------------------------------------

def test_model_format_changes_only_the_layers(checked, combination):
    """skops gives joblib's template.yaml exactly; onnx differs only in which layers it declares and attaches."""
    templates = checked[combination]["templates"]
    assert len(set(templates.values())) == 1, f"template.yaml differs between joblib and skops: {list(templates)}"
    onnx_key = combination_id({**options_of(combination), "model_format": "onnx"})
    if onnx_key != combination and onnx_key in checked:
        joblib_template, onnx_template = (load(checked[key]["project"] / "template.yaml") for key in (combination, onnx_key))
        for template, layers in ((joblib_template, ["PandasLayer", "SklearnLayer"]),
                                 (onnx_template, ["OnnxRuntimeLayer"])):
            function = template["Resources"]["PredictFunction"]["Properties"]
            assert [layer["Ref"] for layer in function.pop("Layers")] == [*layers, "ModelLayer"]
            for layer in layers:
                assert template["Resources"].pop(layer)["Type"] == "AWS::Serverless::LayerVersion"
        assert joblib_template == onnx_template


def test_sam_validate_lint_passes(checked, validated_combination):
    result = checked[validated_combination]["sam validate --lint"]
    print(result.stdout, result.stderr)
    assert result.returncode == 0, f"sam validate --lint:\n{result.stdout}\n{result.stderr}"


def test_cfn_lint_serverless_rules_find_nothing(checked, combination):
    result = checked[combination]
    print(show(result))
    assert result["cfn-lint"] == [], show(result)


def test_checkov_finds_nothing(checked, combination):
    result = checked[combination]
    print(show(result))
    assert result["checkov"] == [], show(result)


def test_every_suppression_is_needed_and_has_a_reason(checked, combination):
    result = checked[combination]
    for tool, rule, resource, reason in result["suppressed"]:
        assert reason and len(reason) > 20, f"{tool} suppression {rule} on {resource}: give its reason on one line"
    # Without its suppressions, each checker finds exactly what they suppress, with the default parameters or with
    # every option on (a REST access log group exists only then): none is stale, none hides more.
    for tool in ("cfn-lint", "checkov"):
        found = result["unsuppressed"][tool] | checked[combination + ALL]["unsuppressed"][tool]
        assert found == result["declared"][tool], (
            f"{tool}: findings without suppressions {sorted(found)} != suppressions {sorted(result['declared'][tool])}")


def test_every_option_switched_on_still_passes(checked, combination):
    """SnapStart, IAM authentication, a concurrency cap, alarm e-mails, REST access logs, tracing off: all at once.
    (`sam validate --lint` is cfn-lint without the serverless rules: it runs here for the default runtime and
    architecture; the cfn-lint run covers every combination.)"""
    result = checked[combination + ALL]
    template = (result["project"] / "template.yaml").read_text()
    assert "Default: \"PublishedVersions\"" in template  # SnapStart on
    print(show(result))
    assert result["cfn-lint"] == [] and result["checkov"] == [], show(result)
    if lint_result := result["sam validate --lint"]:
        print(lint_result.stdout, lint_result.stderr)
        assert lint_result.returncode == 0, f"sam validate --lint:\n{lint_result.stdout}\n{lint_result.stderr}"


def test_the_template_keeps_its_promises(checked, combination):
    """What the checkers do not check: the issue's rules, read from the template itself."""
    broken = promises_broken(load(checked[combination]["project"] / "template.yaml"), options_of(combination)["api"])
    assert not broken, "\n".join(broken)


def promises_broken(template: dict, api: str) -> list[str]:
    broken = []
    parameters, resources = template["Parameters"], template["Resources"]
    broken += [f"parameter {name} has no default (sam deploy --guided would stop at it)"
               for name, parameter in parameters.items() if "Default" not in parameter]
    timeout = parameters["Timeout"]
    if api in ("http", "rest") and not (int(timeout["Default"]) <= int(timeout["MaxValue"]) <= 28):
        broken.append(f"Timeout default {timeout['Default']} / max {timeout['MaxValue']}: API Gateway gives up at 29 s")
    for name, resource in resources.items():
        for policy in resource.get("Properties", {}).get("Policies", []):
            for statement in policy.get("PolicyDocument", {}).get("Statement", []):
                for key in ("Action", "Resource", "NotAction", "NotResource"):
                    values = statement.get(key, [])
                    for value in values if isinstance(values, list) else [values]:
                        if isinstance(value, str) and "*" in value:
                            broken.append(f"{name}: '{value}' in {key}: no wildcards in what the template writes")
                        if key == "Action" and name == "PredictFunctionRole" and not str(value).startswith("logs:"):
                            broken.append(f"{name}: {value}: the function's role only writes logs")
    function = resources["PredictFunction"]["Properties"]
    if function.get("LoggingConfig") != {"LogFormat": "JSON", "LogGroup": {"Ref": "PredictLogGroup"}}:
        broken.append(f"PredictFunction LoggingConfig {function.get('LoggingConfig')}: JSON into PredictLogGroup")
    log_group = resources["PredictLogGroup"]["Properties"]
    if log_group["LogGroupName"] != {"Fn::Sub": "/aws/lambda/" + function["FunctionName"]["Fn::Sub"]}:
        broken.append(f"PredictLogGroup {log_group['LogGroupName']} is not /aws/lambda/<function name>")
    if log_group.get("RetentionInDays") != {"Ref": "LogRetentionInDays"} or parameters["LogRetentionInDays"][
            "Default"] != 30:
        broken.append("PredictLogGroup: retention is the LogRetentionInDays parameter, 30 days by default")
    alarms = {name for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    wanted = {"FunctionErrorsAlarm", "FunctionThrottlesAlarm"} | ({"Api5xxAlarm"} if api in ("http", "rest") else set())
    if alarms != wanted:
        broken.append(f"alarms {sorted(alarms)}, wanted {sorted(wanted)}")
    if resources.get("AlarmTopic", {}).get("Condition") != "HasAlarmEmail":
        broken.append("AlarmTopic must exist only when AlarmEmail is given")
    if api != "none" and parameters.get("Authentication", {}).get("AllowedValues") != ["NONE", "AWS_IAM"]:
        broken.append("the Authentication parameter offers NONE (default) and AWS_IAM")
    return broken


@pytest.mark.parametrize("values", ["defaults", "all-options"])
def test_sam_translates_it(checked, api, values):
    """The AWS::Serverless transform accepts the template (cfn-lint reads SAM without translating it), and what
    it makes follows the parameters."""
    project = checked[combination_id({**DEFAULTS, "api": api})]["project"]
    parameters = {} if values == "defaults" else {k: v for k, v in ALL_OPTIONS.items()
                                                   if k in load(project / "template.yaml")["Parameters"]}
    resources = translate(load(project / "template.yaml"), parameters)["Resources"]
    roles = [name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    assert roles == ["PredictFunctionRole"], f"only the function's own role, not one SAM makes: {roles}"
    function = resources["PredictFunction"]["Properties"]
    assert ("TracingConfig" in function) == (values == "defaults")
    assert [r["Properties"]["Name"] for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"] == ["live"]
    public = {name: r for name, r in resources.items()
              if r["Type"] == "AWS::Lambda::Permission" and r["Properties"].get("Principal") == "*"}
    if api == "function-url":
        # A parameter AuthType makes SAM leave out the permissions a public URL needs: the template has them.
        assert resources["PredictFunctionUrl"]["Properties"]["AuthType"] == {"Ref": "Authentication"}
        assert {r["Properties"]["Action"] for r in public.values()} == {"lambda:InvokeFunctionUrl",
                                                                        "lambda:InvokeFunction"}
        assert all(r.get("Condition") == "PublicUrl" for r in public.values())
    else:
        assert not public
    if api in ("http", "rest"):
        body = next(r["Properties"]["Body"] for r in resources.values()
                    if r["Type"] in ("AWS::ApiGatewayV2::Api", "AWS::ApiGateway::RestApi"))
        for path, methods in body["paths"].items():
            for method, operation in methods.items():
                assert "x-amazon-apigateway-integration" in operation, f"{method} {path} has no integration"
                assert operation["security"] == {"Fn::If": ["UseIam", [{"AWS_IAM": []}], []]}


def test_the_canary_fails_every_checker(tmp_path):
    """A broken copy of the default template (a 60 s timeout behind the HTTP API, a '*' action in the function's
    role) must fail each checker: proof that they run and read the template."""
    project = generate(tmp_path / "canary", **DEFAULTS)
    template = project / "template.yaml"
    text = template.read_text()
    assert DEFAULTS["api"] == "http" and "    Default: 20\n" in text and "- logs:PutLogEvents\n" in text
    text = text.replace("    Default: 20\n", "    Default: 60\n", 1)
    text = re.sub(r"( +)- logs:PutLogEvents\n", lambda m: f'{m[0]}{m[1]}- "*"\n', text, count=1)
    template.write_text(text)

    lint_result = sam_validate_lint(project)
    print(lint_result.stdout, lint_result.stderr)
    assert lint_result.returncode != 0 and "E2015" in lint_result.stdout + lint_result.stderr, "sam validate --lint"
    linted = cfn_lint([template])[template]
    print(linted)
    assert any(line.startswith("WS1003 PredictFunctionRole") for line in linted), linted
    (tmp_path / "scan").mkdir()
    shutil.copy(template, tmp_path / "scan" / "template.yaml")
    failed = checkov(tmp_path / "scan")[tmp_path / "scan" / "template.yaml"]["failed"]
    print(failed)
    assert ("CKV_AWS_63", "PredictFunctionRole") in failed, failed
    broken = promises_broken(load(template), "http")
    print(broken)
    assert any("Timeout" in b for b in broken) and any("'*' in Action" in b for b in broken), broken
