"""Load the model file and predict a batch of checked records: the only code that differs by model format.

    joblib, skops  the scikit-learn pipeline itself, fed a pandas DataFrame (needs the pandas and sklearn layers)
    onnx           the pipeline converted by skl2onnx when it was saved, run by ONNX Runtime (numpy only)

open_model() refuses a model saved with another version of the library that runs it. Each model's predict() takes
records already checked against model_meta.json's features (app.py does that) and returns numpy arrays: the
predictions, and the probabilities per class (None unless the model is a classifier that has them).
model/export.py proves an ONNX model's parity with this same code before it saves the model.
"""

import io
import warnings

import numpy as np


class ModelRefused(RuntimeError):
    """The model cannot be trusted, so the function refuses to start."""


def open_model(data: bytes, meta: dict):
    """The model in data (the bytes of meta["model_file"]), ready to predict."""
    return OnnxModel(data, meta) if meta["format"] == "onnx" else SklearnModel(data, meta)


def check_version(library: str, installed: str, meta: dict) -> None:
    saved = meta["versions"][library]
    if saved != installed:
        raise ModelRefused(
            f"the model was saved with {library} {saved} but this function has {library} {installed}: "
            "retrain it with the layers' pins"
        )


class SklearnModel:
    def __init__(self, data: bytes, meta: dict):
        import pandas as pd
        import sklearn
        from sklearn.exceptions import InconsistentVersionWarning

        check_version("scikit-learn", sklearn.__version__, meta)
        self.data_frame, self.columns = pd.DataFrame, [feature["name"] for feature in meta["features"]]
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            try:
                if meta["format"] == "skops":
                    import skops.io

                    self.pipeline = skops.io.loads(data, trusted=meta["trusted_types"])
                else:
                    import joblib  # a pickle runs code when loaded: load only models you trained yourself

                    self.pipeline = joblib.load(io.BytesIO(data))
            except InconsistentVersionWarning as warning:
                raise ModelRefused(f"{meta['model_file']}: {warning}") from None
        self.probabilities = meta["task"] == "classification" and hasattr(self.pipeline, "predict_proba")

    def predict(self, records: list[dict]) -> tuple[np.ndarray, np.ndarray | None]:
        frame = self.data_frame(records, columns=self.columns)
        return self.pipeline.predict(frame), self.pipeline.predict_proba(frame) if self.probabilities else None


class OnnxModel:
    def __init__(self, data: bytes, meta: dict):
        import onnxruntime

        check_version("onnxruntime", onnxruntime.__version__, meta)
        try:
            self.session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime reports a model it cannot run with many exception types
            raise ModelRefused(f"{meta['model_file']}: ONNX Runtime cannot load it: {error}") from None
        # One input per column (or one matrix of numeric columns), as model/export.py converted the pipeline.
        self.inputs = [
            (i["name"], i["columns"], object if i["dtype"] == "str" else i["dtype"]) for i in meta["onnx_inputs"]
        ]
        self.probabilities = meta["task"] == "classification" and meta["probabilities"]

    def predict(self, records: list[dict]) -> tuple[np.ndarray, np.ndarray | None]:
        feeds = {
            name: np.array([[r[c] for c in columns] for r in records], dtype=dtype)
            for name, columns, dtype in self.inputs
        }
        outputs = self.session.run(None, feeds)
        return outputs[0].ravel(), outputs[1] if self.probabilities else None
