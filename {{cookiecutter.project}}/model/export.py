"""Save a fitted scikit-learn pipeline the way the predict function expects it: the model file and model_meta.json.

Use it for any model, from train.py or a notebook:

    from export import save_model
    save_model(pipeline, sample=X_train, out_dir="model/artifacts")

model_meta.json records what the function checks before it trusts the model (the file's sha256 and the library
versions it was trained with) and what it validates requests against (features, their kinds and categories).

model_format="onnx" converts the pipeline with skl2onnx here, at save time, and runs the converted model with ONNX
Runtime on the sample (and on events/direct*.json): it is saved only if it answers as scikit-learn does. A pipeline
that does not convert, or answers differently, is refused with ModelNotConvertible; nothing is written then.
"""

import hashlib
import importlib.util
import json
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.preprocessing import OneHotEncoder

MODEL_FORMATS = ("joblib", "skops", "onnx")
# The libraries that save each format, recorded in model_meta.json; the function checks the one it runs the model with.
FORMAT_LIBRARIES = {"joblib": ("joblib",), "skops": ("skops",), "onnx": ("skl2onnx", "onnx", "onnxruntime")}
# ONNX Runtime must answer as scikit-learn does on every checked row: regressors within this relative error,
# classifiers with the same label and probabilities within PROBABILITY_TOLERANCE.
RELATIVE_TOLERANCE = 1e-5
PROBABILITY_TOLERANCE = 1e-4
PARITY_ROWS = 10_000  # at most this many rows of the sample are checked (plus the shipped events)
EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
# The function's own code for each format: parity is proven with exactly what will run on Lambda.
MODEL_FORMATS_MODULE = Path(__file__).resolve().parents[1] / "src" / "predict" / "model_formats.py"


class ModelNotConvertible(ValueError):
    """The pipeline cannot be served as ONNX: it does not convert, or ONNX Runtime answers differently."""


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


def _input_layouts(features: list[dict]) -> list[list[dict]]:
    """The ways to feed the converted model, best first. Each input names its tensor, the features it holds and their
    dtype. One input per column (skl2onnx feeds each to a ColumnTransformer by name); for all-numeric features also
    one [rows, features] matrix (pipelines that start with a plain estimator take only that). Numbers go as float64
    first, which keeps them exact; float32 only where skl2onnx offers nothing else, and then only if parity holds."""
    categorical = {}
    for feature in features:
        if feature["kind"] == "category":
            kinds = {type(category) for category in feature["categories"]}
            if kinds not in ({str}, {int}):
                raise ModelNotConvertible(
                    f"feature {feature['name']!r} has categories of types {sorted(k.__name__ for k in kinds)}: an ONNX "
                    "tensor holds one type; save it with model_format 'joblib' or 'skops'"
                )
            categorical[feature["name"]] = "str" if kinds == {str} else "int64"
    layouts = []
    for number_dtype in ("float64", "float32"):
        layouts.append(
            [
                {"name": f["name"], "columns": [f["name"]], "dtype": categorical.get(f["name"], number_dtype)}
                for f in features
            ]
        )
        if not categorical:
            layouts.append([{"name": "features", "columns": [f["name"] for f in features], "dtype": number_dtype}])
    return layouts


def _initial_types(inputs: list[dict]) -> list[tuple]:
    """skl2onnx's description of the inputs: (name, tensor type of shape [rows, columns])."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType, StringTensorType

    tensor_types = {
        "float64": DoubleTensorType,
        "float32": FloatTensorType,
        "int64": Int64TensorType,
        "str": StringTensorType,
    }
    return [(i["name"], tensor_types[i["dtype"]]([None, len(i["columns"])])) for i in inputs]


def _convert(pipeline, inputs: list[dict], probabilities: bool) -> bytes:
    """The pipeline converted by skl2onnx for these inputs, as the bytes of an ONNX file."""
    from skl2onnx import convert_sklearn

    # Probabilities as a [rows, classes] tensor, not a list of dicts (skl2onnx's default "zipmap").
    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    options = {id(estimator): {"zipmap": False}} if probabilities else None
    model = convert_sklearn(pipeline, initial_types=_initial_types(inputs), options=options)
    # skl2onnx may rename inputs ("Old/New" becomes "Old_New"); they keep the order given.
    for given, converted in zip(inputs, model.graph.input, strict=True):
        given["name"] = converted.name
    return model.SerializeToString()


def _failing_step(pipeline, inputs: list[dict]) -> str:
    """Name the first step of a Pipeline that skl2onnx cannot convert: the shortest head of it that fails."""
    from skl2onnx import convert_sklearn

    for end, (name, step) in enumerate(getattr(pipeline, "steps", [])[:-1], 1):
        try:
            convert_sklearn(pipeline[:end], initial_types=_initial_types(inputs))
        except Exception:
            return f"step {name!r} ({type(step).__name__})"
    if hasattr(pipeline, "steps"):
        return f"step {pipeline.steps[-1][0]!r} ({type(pipeline[-1]).__name__})"
    return type(pipeline).__name__


def _parity_rows(sample: pd.DataFrame, features: list[dict]) -> pd.DataFrame:
    """The rows ONNX Runtime must answer like scikit-learn: the sample's first PARITY_ROWS, and every record of the
    shipped events/direct*.json that the model accepts (its features, known categories: the good requests)."""
    names = [f["name"] for f in features]

    def accepted(record) -> bool:
        return (
            isinstance(record, dict)
            and sorted(record) == sorted(names)
            and all(
                record[f["name"]] in f["categories"]
                if f["kind"] == "category"
                else type(record[f["name"]]) in (int, float)
                for f in features
            )
        )

    records = []
    for path in sorted(EVENTS_DIR.glob("direct*.json")):
        payload = json.loads(path.read_text())
        records += [r for r in (payload if isinstance(payload, list) else [payload]) if accepted(r)]
    rows = sample[names].head(PARITY_ROWS)
    return pd.concat([rows, pd.DataFrame(records, columns=names)], ignore_index=True) if records else rows


def _run_onnx(data: bytes, meta: dict, rows: pd.DataFrame) -> tuple:
    """(predictions, probabilities) of the converted model, run by the function's own OnnxModel."""
    spec = importlib.util.spec_from_file_location("model_formats", MODEL_FORMATS_MODULE)
    model_formats = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_formats)
    try:
        return model_formats.OnnxModel(data, meta).predict(rows.to_dict("records"))
    except model_formats.ModelRefused as refused:
        raise ModelNotConvertible(f"skl2onnx converts it into a model that {refused}") from None


def _check_parity(pipeline, data: bytes, meta: dict, rows: pd.DataFrame) -> dict:
    """Refuse the model unless ONNX Runtime answers every row as scikit-learn does; the worst deviation otherwise."""
    outputs = _run_onnx(data, meta, rows)
    refuse = "; save it with model_format 'joblib' or 'skops', which serve it exactly"
    if meta["task"] == "regression":
        expected, answered = pipeline.predict(rows).astype(float).ravel(), outputs[0].astype(float).ravel()
        errors = np.abs(answered - expected) / np.maximum(np.abs(expected), np.finfo(float).tiny)
        worst = int(np.argmax(errors))
        if not errors[worst] <= RELATIVE_TOLERANCE:
            raise ModelNotConvertible(
                f"ONNX Runtime answers row {worst} ({rows.iloc[worst].to_dict()}) with {answered[worst]:.9g} where "
                f"scikit-learn answers {expected[worst]:.9g}: relative error {errors[worst]:.2g} > {RELATIVE_TOLERANCE}"
                + refuse
            )
        return {"rows": len(rows), "max_relative_error": float(errors[worst]), "tolerance": RELATIVE_TOLERANCE}
    labels = pipeline.predict(rows)
    differ = np.flatnonzero(outputs[0] != labels)
    if differ.size:
        row = int(differ[0])
        raise ModelNotConvertible(
            f"ONNX Runtime labels row {row} ({rows.iloc[row].to_dict()}) {outputs[0].tolist()[row]!r} where "
            f"scikit-learn says {labels.tolist()[row]!r}" + refuse
        )
    parity = {"rows": len(rows), "labels_equal": True}
    if meta["probabilities"]:
        deviation = np.abs(outputs[1] - pipeline.predict_proba(rows)).max(axis=1)
        row = int(np.argmax(deviation))
        if not deviation[row] <= PROBABILITY_TOLERANCE:
            raise ModelNotConvertible(
                f"ONNX Runtime's probabilities for row {row} ({rows.iloc[row].to_dict()}) differ from "
                f"scikit-learn's by {deviation[row]:.2g} > {PROBABILITY_TOLERANCE}" + refuse
            )
        parity.update(max_probability_error=float(deviation[row]), tolerance=PROBABILITY_TOLERANCE)
    return parity


def _onnx_model(pipeline, sample: pd.DataFrame, features: list[dict], probabilities: bool) -> tuple[bytes, dict]:
    """The ONNX file's bytes and what model_meta.json records of it (its inputs, the parity proven), for the first
    input layout that converts, loads and answers as scikit-learn does. Otherwise the clearest refusal: a parity
    failure (it converted, but answers differently) before a model ONNX Runtime cannot load, before a conversion
    failure."""
    meta = {
        "model_file": "model.onnx",
        "task": "classification" if is_classifier(pipeline) else "regression",
        "probabilities": probabilities,
        "versions": {"onnxruntime": version("onnxruntime")},
    }
    rows, refusals, failed_conversion = _parity_rows(sample, features), [], None
    layouts = _input_layouts(features)
    for inputs in layouts:
        try:
            data = _convert(pipeline, inputs, probabilities)
        except Exception as error:  # skl2onnx raises many kinds; each means "this pipeline does not convert"
            failed_conversion = failed_conversion or error
            continue
        try:
            parity = _check_parity(pipeline, data, {**meta, "onnx_inputs": inputs}, rows)
        except ModelNotConvertible as refusal:
            refusals.append(refusal)
            continue
        return data, {"onnx_inputs": inputs, "parity": parity}
    if refusals:
        raise min(refusals, key=lambda refusal: str(refusal).startswith("skl2onnx converts it"))
    reason = " ".join(str(failed_conversion).split())[:300]
    raise ModelNotConvertible(
        f"skl2onnx cannot convert {_failing_step(pipeline, layouts[0])} ({reason}); "
        "save it with model_format 'joblib' or 'skops', which serve any scikit-learn pipeline"
    )


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
    features, handles_unknown = _features(pipeline, sample)
    probabilities = is_classifier(pipeline) and hasattr(pipeline, "predict_proba")
    if model_format == "onnx":  # converted and proven before anything is written
        onnx_data, onnx_meta = _onnx_model(pipeline, sample, features, probabilities)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"model.{model_format}"
    if model_format == "onnx":
        model_path.write_bytes(onnx_data)
        trusted_types = []
    else:
        trusted_types = _write_model(pipeline, model_path, model_format)
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
            **{package: version(package) for package in ("scikit-learn", "pandas", "numpy")},
            **{package: version(package) for package in FORMAT_LIBRARIES[model_format]},
        },
        "metrics": metrics or {},
        "trained_by": trained_by,
    }
    if meta["task"] == "classification":
        meta["classes"] = [_plain(c) for c in pipeline.classes_]
        meta["probabilities"] = probabilities
    if model_format == "skops":
        meta["trusted_types"] = trusted_types
    if model_format == "onnx":
        meta.update(onnx_meta)
    (out_dir / "model_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
