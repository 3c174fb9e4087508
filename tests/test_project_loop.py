"""The generated project's own loop: its CI workflow, pre-commit, Makefile, template updates with cruft, `sam init`.

For every option combination (one per choice with --fast): the workflow validates against GitHub's schema and passes
zizmor, its commands are the README's (or the Makefile's), `pre-commit run --all-files` passes with hooks installed
from PyPI only, and `make help` lists the targets. Then `cruft update` brings a template change into a generated
project, and `sam init --location` generates the same tree as cookiecutter.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import BIN, REPO, generate, run, sam_env
from cookiecutter.main import cookiecutter
from test_render import COMBINATIONS, FAST

# Targets a data scientist remembers (issue 10), plus the ones that only some answers have.
MAKE_TARGETS = {"help", "venv", "model", "build", "invoke", "test", "lint", "deploy", "bench"}
API_TARGETS = {"http": {"api", "load", "fuzz"}, "rest": {"api", "load", "fuzz"}, "function-url": {"load", "fuzz"},
               "none": set()}
FULL_SHA = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def option_id(options: dict) -> str:
    return "-".join(options.values())


def pytest_generate_tests(metafunc):
    if "options" in metafunc.fixturenames:
        chosen = FAST if metafunc.config.getoption("--fast") else COMBINATIONS
        metafunc.parametrize("options", chosen, ids=[option_id(c) for c in chosen])
    if "fast_options" in metafunc.fixturenames:
        metafunc.parametrize("fast_options", FAST, ids=[option_id(c) for c in FAST])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Each combination rendered once for all the tests of this module (none of them changes a tracked file)."""
    root = tmp_path_factory.mktemp("loop")
    projects: dict[str, Path] = {}

    def get(options: dict) -> Path:
        key = option_id(options)
        if key not in projects:
            projects[key] = generate(root / key, **options)
        return projects[key]

    return get


@pytest.fixture
def project(rendered, options) -> Path:
    return rendered(options)


def git(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["git", "-c", "init.defaultBranch=main", *args], cwd=project, env={**os.environ, **GIT_IDENTITY})


def git_commit_all(project: Path, message: str) -> None:
    if not (project / ".git").exists():
        git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


# ---------------------------------------------------------------------------------------------------------------------
# The workflow
# ---------------------------------------------------------------------------------------------------------------------
def workflow(project: Path) -> dict:
    return yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())


def run_lines(project: Path) -> list[str]:
    """Every command line of every `run:` step, in order."""
    lines = []
    for job in workflow(project)["jobs"].values():
        for step in job["steps"]:
            lines += [line.strip() for line in step.get("run", "").splitlines() if line.strip()]
    return lines


def readme_commands(project: Path) -> set[str]:
    """The lines of the README's ```bash blocks, without their trailing comments."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (project / "README.md").read_text(), re.MULTILINE | re.DOTALL)
    lines = (re.sub(r"\s+#\s.*$", "", line).strip() for block in blocks for line in block.splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def makefile_recipes(project: Path) -> set[str]:
    """The Makefile's recipe lines, with its `NAME := value` variables expanded."""
    text = (project / "Makefile").read_text()
    variables = dict(re.findall(r"^([A-Z_]+) :?= (.*)$", text, re.MULTILINE))
    recipes = set()
    for line in re.findall(r"^\t(.*)$", text, re.MULTILINE):
        for name, value in variables.items():
            line = line.replace(f"$({name})", value)
        recipes.add(line.lstrip("@-").strip())
    return recipes


def test_workflow_validates_against_the_github_schema(project):
    run([BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", ".github/workflows/ci.yml"],
        cwd=project)


def test_workflow_passes_zizmor(project):
    # Offline: no GitHub API here. The pedantic persona's findings count too, and zizmor also audits
    # .pre-commit-config.yaml. A relaxation would go to zizmor.yml with its reason.
    result = run([BIN / "zizmor", "--offline", "--persona", "pedantic", "--no-progress",
                  "--collect=workflows,pre-commit", "--", "."], cwd=project)
    assert "No findings to report" in result.stdout, result.stdout


def test_workflow_commands_are_the_readme_commands(project):
    documented = readme_commands(project) | makefile_recipes(project)
    missing = [line for line in run_lines(project) if line not in documented]
    assert not missing, ("ci.yml runs commands that neither README.md (```bash blocks) nor the Makefile has:\n  "
                         + "\n  ".join(missing))
    for line in run_lines(project):
        if line.startswith("make "):
            assert line in readme_commands(project), f"`{line}` in ci.yml is not one of the README's commands"


def test_workflow_runs_the_pull_request_checks_and_deploys_only_when_asked(project, options):
    flow = workflow(project)
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    assert {"pull_request", "push"} <= set(triggers) and triggers["push"]["branches"] == ["main"]
    assert flow["permissions"] == {}
    lines = run_lines(project)
    for command in ["make test", "sam validate --lint", "make lint", "sam build --use-container",
                    "python3 layers/size_report.py .aws-sam/build"]:
        assert command in lines
    assert any(line.startswith("for event in events/*.json;") and "sam local invoke" in line for line in lines)

    test_job, deploy = flow["jobs"]["test"], flow["jobs"]["deploy"]
    arm = options["architecture"] == "arm64"
    assert test_job["runs-on"] == deploy["runs-on"] == ("ubuntu-24.04-arm" if arm else "ubuntu-24.04")
    assert flow["env"]["PYTHON_VERSION"] == options["python_runtime"].removeprefix("python")
    # Deploy: after the tests, on main only, opt-in, with OIDC (a role, no keys), then the deployed-stack tests.
    assert deploy["needs"] == "test"
    assert "refs/heads/main" in deploy["if"] and "vars.DEPLOY_TO_AWS == 'true'" in deploy["if"]
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    credentials = [s for s in deploy["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials")]
    assert len(credentials) == 1
    assert credentials[0]["with"]["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials[0]["with"])
    deploy_lines = [line for s in deploy["steps"] for line in s.get("run", "").splitlines()]
    assert "sam deploy --no-confirm-changeset --no-fail-on-empty-changeset" in deploy_lines
    assert any("tests/deployed" in line for line in deploy_lines)
    for job in flow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert FULL_SHA.match(step["uses"]), f"{step['uses']} is not pinned by commit"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


# ---------------------------------------------------------------------------------------------------------------------
# pre-commit and make
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pre_commit_home(request, tmp_path_factory) -> Path:
    """Hook environments, made once and shared by every combination; kept between runs in pytest's cache folder."""
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    return Path(cache.mkdir("pre-commit")) if cache else tmp_path_factory.mktemp("pre-commit")


def test_pre_commit_hooks_install_from_pypi_at_pinned_versions(project):
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "hook repositories on GitHub cannot be cloned"
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert {"ruff-check", "ruff-format", "cfn-lint"} <= set(hooks)
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["additional_dependencies"] and all(
            re.fullmatch(r"[\w.-]+==[\w.]+", requirement) for requirement in hook["additional_dependencies"])
    # One ruff for the editor, the venv and the hooks.
    dev_pins = dict(re.findall(r"^([\w.-]+)==(\S+)", (project / "requirements-dev.txt").read_text(), re.MULTILINE))
    for hook_id in ("ruff-check", "ruff-format"):
        assert hooks[hook_id]["additional_dependencies"] == [f"ruff=={dev_pins['ruff']}"]


def test_pre_commit_passes_on_a_fresh_project(project, pre_commit_home):
    git(project, "init", "-q")
    git(project, "add", "-A")
    result = subprocess.run([BIN / "pre-commit", "run", "--all-files", "--show-diff-on-failure", "--color", "never"],
                            check=False, cwd=project, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PRE_COMMIT_HOME": str(pre_commit_home)})
    assert result.returncode == 0, f"pre-commit failed:\n{result.stdout}\n{result.stderr}"
    assert not git(project, "diff", "--stat").stdout, "a hook changed a generated file"


def test_make_help_lists_the_targets(project, options):
    listed = run(["make", "help"], cwd=project).stdout
    targets = {line.split("\t")[0] for line in listed.splitlines() if "\t" in line}
    assert targets >= MAKE_TARGETS | API_TARGETS[options["api"]], listed
    if options["api"] not in ("http", "rest"):
        assert "api" not in targets, "`make api` in a project without an API Gateway API"
    if options["api"] == "none":
        assert not targets & {"load", "fuzz"}, "`make load` or `make fuzz` in a project without a URL"
    for line in run_lines(project):
        if line.startswith("make "):
            assert line.split()[1] in targets, f"ci.yml runs `{line}`, which make help does not list"


# ---------------------------------------------------------------------------------------------------------------------
# Template updates with cruft
# ---------------------------------------------------------------------------------------------------------------------
UPDATED_FILE = "{{cookiecutter.project}}/docs/UPGRADING.md"
UPDATED_TEXT = "# Upgrading {{ cookiecutter.project }}\n\nA file the template gained after the project was made.\n"
IGNORE_LINE = "# added by a later template version\n*.log\n"


def template_repo(path: Path) -> Path:
    """A git copy of the template as it is in this work tree: tracked files and untracked ones not ignored."""
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO).stdout
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, path / name)
    git_commit_all(path, "template v1")
    return path


def cruft(*args, cwd: Path) -> subprocess.CompletedProcess:
    return run([BIN / "cruft", *args], cwd=cwd, env={**os.environ, **GIT_IDENTITY})


@pytest.mark.parametrize("how", ["cruft-create", "cookiecutter-then-cruft-link"])
def test_cruft_update_brings_a_template_change_into_a_project(tmp_path, how):
    template = template_repo(tmp_path / "template")
    answers = {"api": "rest", "model_format": "skops"}
    if how == "cruft-create":
        cruft("create", "--no-input", "--output-dir", tmp_path / "out", "--extra-context", json.dumps(answers),
              template, cwd=tmp_path)
        project = tmp_path / "out" / "house-price-predictor"
    else:  # a project made by cookiecutter or `sam init`, linked afterwards with the same answers
        run([BIN / "cookiecutter", "--no-input", "-o", tmp_path / "out", template,
             *[f"{key}={value}" for key, value in answers.items()]], cwd=tmp_path)
        project = tmp_path / "out" / "house-price-predictor"
        cruft("link", "--no-input", "--extra-context", json.dumps(answers), "--project-dir", project, template,
              cwd=tmp_path)
    cruft_state = json.loads((project / ".cruft.json").read_text())
    assert cruft_state["context"]["cookiecutter"]["api"] == "rest"
    # The team works on its project...
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Our notes\nRetrain every month.\n")
    git_commit_all(project, "project as generated, plus our notes")
    # ...while the template moves on.
    (template / UPDATED_FILE).parent.mkdir(parents=True)
    (template / UPDATED_FILE).write_text(UPDATED_TEXT)
    gitignore = template / "{{cookiecutter.project}}" / ".gitignore"
    gitignore.write_text(gitignore.read_text() + IGNORE_LINE)
    git_commit_all(template, "template v2")
    new_commit = git(template, "rev-parse", "HEAD").stdout.strip()

    stale = subprocess.run([BIN / "cruft", "check"], check=False, cwd=project, capture_output=True, text=True)
    assert stale.returncode != 0, "cruft check should see that the template has moved on"
    cruft("update", "--skip-apply-ask", "--project-dir", project, cwd=tmp_path)

    assert (project / "docs" / "UPGRADING.md").read_text() == UPDATED_TEXT.replace(
        "{{ cookiecutter.project }}", "house-price-predictor")
    assert (project / ".gitignore").read_text().endswith(IGNORE_LINE)
    assert "## Our notes" in readme.read_text(), "the update lost the team's own change"
    assert not list(project.rglob("*.rej")), "a hunk did not apply"
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new_commit
    cruft("check", cwd=project)
    # The update rendered both versions with the recorded answers and the hooks: same files as a fresh project.
    fresh = Path(cookiecutter(str(template), no_input=True, output_dir=str(tmp_path / "fresh"), extra_context=answers))
    assert set(tree(project)) - {".cruft.json"} == set(tree(fresh))


# ---------------------------------------------------------------------------------------------------------------------
# sam init
# ---------------------------------------------------------------------------------------------------------------------
def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (but .git) and its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def test_sam_init_generates_the_same_tree_as_cookiecutter(tmp_path, fast_options):
    # `sam init --location` runs cookiecutter (and the template's hooks) itself; --extra-context carries the answers.
    run([BIN / "sam", "init", "--location", REPO, "--no-input", "--output-dir", tmp_path / "sam",
         "--extra-context", json.dumps(fast_options)], cwd=tmp_path, env=sam_env())
    by_sam = tree(tmp_path / "sam" / "house-price-predictor")
    by_cookiecutter = tree(generate(tmp_path / "cookiecutter", **fast_options))
    assert sorted(by_sam) == sorted(by_cookiecutter)
    differing = [name for name in by_sam if by_sam[name] != by_cookiecutter[name]]
    assert not differing, f"sam init and cookiecutter wrote different {differing}"


def test_sam_init_runs_the_template_hooks(tmp_path):
    # The pre_gen hook refuses a timeout above API Gateway's cap, as it does under cookiecutter: nothing is written.
    result = subprocess.run([BIN / "sam", "init", "--location", REPO, "--no-input", "--output-dir", tmp_path / "sam",
                             "--extra-context", json.dumps({"api": "rest", "timeout": "60"})],
                            check=False, cwd=tmp_path, env=sam_env(), capture_output=True, text=True)
    assert result.returncode != 0
    assert "timeout '60' must be a whole number of seconds from 1 to 28" in result.stdout + result.stderr
    assert not (tmp_path / "sam").exists() or not any((tmp_path / "sam").iterdir()), "a refused project was left"
