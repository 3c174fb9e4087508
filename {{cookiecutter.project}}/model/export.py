"""Save a fitted scikit-learn pipeline the way the predict function expects it: the model file and model_meta.json.

Use it for any model, from train.py or a notebook:

    from export import save_model
    save_model(pipeline, sample=X_train, out_dir="model/artifacts")

model_meta.json records what the function checks before it trusts the model (the file's sha256 and the library
versions it was trained with) and what it validates requests against (features, their kinds and categories).
"""

import hashlib
import json
import platform
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from sklearn.base import is_classifier
from sklearn.preprocessing import OneHotEncoder

MODEL_FORMATS = ("joblib", "skops")


def _encoder_categories(pipeline) -> tuple[dict[str, list], bool]:
    """Categories seen by every OneHotEncoder in the pipeline, by input column, and whether all ignore unknowns."""
    categories: dict[str, list] = {}
    handles_unknown = True
    encoders = [est for _, est in _walk(pipeline) if isinstance(est, OneHotEncoder)]
    for encoder in encoders:
        handles_unknown &= encoder.handle_unknown != "error"
        for column, values in zip(encoder.feature_names_in_, encoder.categories_, strict=True):
            categories[str(column)] = [_plain(v) for v in values]
    return categories, bool(encoders) and handles_unknown


def _walk(estimator, name=""):
    """Yield (name, estimator) for the estimator and everything nested in Pipelines and ColumnTransformers."""
    yield name, estimator
    for attribute in ("steps", "transformers_"):
        for child_name, child, *_ in getattr(estimator, attribute, []):
            yield from _walk(child, child_name)


def _plain(value):
    """A numpy scalar as the plain Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value


def _features(pipeline, sample: pd.DataFrame) -> tuple[list[dict], bool]:
    categories, handles_unknown = _encoder_categories(pipeline)
    features = []
    for column in pipeline.feature_names_in_:
        column = str(column)
        if column in categories:
            features.append({"name": column, "kind": "category", "categories": categories[column]})
        elif pd.api.types.is_numeric_dtype(sample[column]) and not pd.api.types.is_bool_dtype(sample[column]):
            features.append({"name": column, "kind": "number"})
        else:
            seen = sorted({_plain(v) for v in sample[column].dropna().unique()}, key=str)
            features.append({"name": column, "kind": "category", "categories": seen})
    return features, handles_unknown


def _write_model(pipeline, path: Path, model_format: str) -> list[str]:
    """Write the model file; return the types skops must trust to load it (empty for joblib)."""
    if model_format == "skops":
        import skops.io

        skops.io.dump(pipeline, path)
        return sorted(skops.io.get_untrusted_types(file=path))
    import joblib

    joblib.dump(pipeline, path)
    return []


def save_model(
    pipeline,
    sample: pd.DataFrame,
    out_dir,
    model_format: str = "joblib",
    metrics=None,
    name: str = "model",
    trained_by: str | None = None,
) -> dict:
    """Write <out_dir>/model.<format> and <out_dir>/model_meta.json for a pipeline fitted on a DataFrame.

    sample: rows of the training data (the input columns), used to tell numeric from categorical features.
    trained_by: the script that trains it, so `sam build` may retrain it when that script's inputs change;
    leave it out for a model you made yourself, which the build then never overwrites.
    Returns the metadata it wrote.
    """
    if model_format not in MODEL_FORMATS:
        raise ValueError(f"model_format must be one of {MODEL_FORMATS}, not {model_format!r}")
    if not hasattr(pipeline, "feature_names_in_"):
        raise ValueError("fit the pipeline on a pandas DataFrame first, so it knows its input column names")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"model.{model_format}"
    trusted_types = _write_model(pipeline, model_path, model_format)
    features, handles_unknown = _features(pipeline, sample)
    meta = {
        "name": name,
        "model_file": model_path.name,
        "format": model_format,
        "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "task": "classification" if is_classifier(pipeline) else "regression",
        "features": features,
        "handles_unknown_categories": handles_unknown,
        "versions": {
            "python": platform.python_version(),
            **{package: version(package) for package in ("scikit-learn", "pandas", "numpy", model_format)},
        },
        "metrics": metrics or {},
        "trained_by": trained_by,
    }
    if meta["task"] == "classification":
        meta["classes"] = [_plain(c) for c in pipeline.classes_]
    if model_format == "skops":
        meta["trusted_types"] = trusted_types
    (out_dir / "model_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
