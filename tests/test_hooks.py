"""Bad answers stop generation with one clear line and leave nothing behind; good edge values pass."""

import subprocess

import pytest

from conftest import BIN, REPO, generate

BAD_ANSWERS = [
    ({"project": "Bad_Name"}, "project 'Bad_Name' must start with a letter"),
    ({"project": "9lives"}, "project '9lives' must start with a letter"),
    ({"project_name": "Prix & Co"}, "project 'prix-&-co' must start with a letter"),
    ({"timeout": "29"}, "timeout '29' must be a whole number of seconds from 1 to 28 with api=http"),
    ({"timeout": "29", "api": "rest"}, "from 1 to 28 with api=rest"),
    ({"timeout": "0", "api": "none"}, "timeout '0' must be a whole number of seconds from 1 to 900"),
    ({"timeout": "ten"}, "timeout 'ten' must be a whole number"),
    ({"memory_size": "64"}, "memory_size '64' must be a whole number of MB from 128 to 10240"),
    ({"memory_size": "20000"}, "memory_size '20000'"),
    ({"aws_region": "mars-north-1x"}, "aws_region 'mars-north-1x' is not an AWS region name"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=[str(a) for a, _ in BAD_ANSWERS])
def test_bad_answer_is_refused_and_leaves_nothing(tmp_path, answers, message):
    command = [BIN / "cookiecutter", "--no-input", "-o", tmp_path, REPO,
               *[f"{key}={value}" for key, value in answers.items()]]
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == [], "a refused generation left files behind"


@pytest.mark.parametrize("answers", [
    {"timeout": "28"},
    {"timeout": "300", "api": "function-url"},
    {"timeout": "900", "api": "none"},
    {"memory_size": "128"},
    {"memory_size": "10240"},
    {"aws_region": "eu-west-2"},
    {"project_name": "Churn Model", "project": "churn-model-2"},
])
def test_edge_values_are_accepted(tmp_path, answers):
    project = generate(tmp_path, **answers)
    assert (project / "template.yaml").is_file()
