"""Bring your own model: the iris classifier goes in through model/export.py and everything else keeps working, as a
pickle (joblib) and converted for ONNX Runtime (onnx)."""

import json
import subprocess

import pytest

from conftest import generate, run, runtime_python, sam_build, sam_env

pytestmark = pytest.mark.build

IRIS = {"sepal length (cm)": 6.3, "sepal width (cm)": 3.3, "petal length (cm)": 6.0, "petal width (cm)": 2.5}


def invoke(project, event: dict, tmp_path) -> subprocess.CompletedProcess:
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    return subprocess.run([runtime_python("3.13"), "scripts/invoke_built.py", event_file], cwd=project,
                          capture_output=True, text=True)


@pytest.fixture(scope="module", params=["joblib", "onnx"])
def classifier_project(request, tmp_path_factory, project_venv):
    """A generated project whose model was replaced by the iris classifier, then built."""
    project = generate(tmp_path_factory.mktemp(f"own-model-{request.param}"), model_format=request.param)
    run([project_venv / "bin" / "python", "model/train_iris_classifier.py"], cwd=project)
    sam_build(project)
    return project


def test_classifier_answers_labels_and_probabilities(classifier_project, tmp_path):
    answer = json.loads(invoke(classifier_project, IRIS, tmp_path).stdout)
    assert answer["prediction"] == "virginica"
    assert set(answer["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert answer["probabilities"]["virginica"] == max(answer["probabilities"].values())
    assert sum(answer["probabilities"].values()) == pytest.approx(1)
    batch = json.loads(invoke(classifier_project, {"instances": [IRIS, IRIS]}, tmp_path).stdout)
    assert batch["predictions"] == ["virginica", "virginica"] and len(batch["probabilities"]) == 2


def test_numeric_feature_sent_as_text_is_a_400_naming_it(classifier_project, tmp_path):
    answer = json.loads(invoke(classifier_project, {**IRIS, "petal width (cm)": "2.5"}, tmp_path).stdout)
    assert answer == {"error": "feature 'petal width (cm)' must be a finite number, got '2.5'", "status": 400}


def test_the_build_did_not_retrain_over_the_exported_model(classifier_project):
    meta = json.loads((classifier_project / "model" / "artifacts" / "model_meta.json").read_text())
    assert meta["name"] == "iris-species" and meta["task"] == "classification"
    built = classifier_project / ".aws-sam" / "build" / "ModelLayer" / "python" / "trained_model"
    assert (built / meta["model_file"]).read_bytes() == (classifier_project / "model" / "artifacts" /
                                                          meta["model_file"]).read_bytes()


def test_model_from_another_library_version_is_refused_at_init(classifier_project, tmp_path):
    model_package = classifier_project / ".aws-sam" / "build" / "ModelLayer" / "python" / "trained_model"
    meta_file = model_package / "model_meta.json"
    meta = json.loads(meta_file.read_text())
    library = "onnxruntime" if meta["format"] == "onnx" else "scikit-learn"
    meta_file.write_text(json.dumps({**meta, "versions": {**meta["versions"], library: "1.5.2"}}))
    try:
        result = invoke(classifier_project, IRIS, tmp_path)
    finally:
        meta_file.write_text(json.dumps(meta))
    assert result.returncode != 0
    assert (f"the model was saved with {library} 1.5.2 but this function has {library} {meta['versions'][library]}: "
            "retrain it with the layers' pins") in result.stderr


def test_a_model_too_big_for_lambda_fails_the_build_before_deploying(tmp_path):
    project = generate(tmp_path)
    artifacts = project / "model" / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "model.joblib").write_bytes(b"\0" * 70_000_000)  # the size counts, not the content
    (artifacts / "model_meta.json").write_text(json.dumps({"model_file": "model.joblib", "trained_by": None}))
    result = subprocess.run(["make", "build-no-docker"], cwd=project, env=sam_env(), capture_output=True, text=True)
    assert result.returncode != 0
    assert "function + layers" in result.stdout and "over Lambda's limit of 262,144,000" in result.stderr
    assert (project / ".aws-sam" / "build" / "ModelLayer").is_dir(), "the build itself ran; the size check stopped it"
