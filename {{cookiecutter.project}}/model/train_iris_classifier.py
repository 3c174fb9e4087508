"""A second example model: a classifier, trained on the iris flowers dataset that ships inside scikit-learn.

    .venv/bin/python model/train_iris_classifier.py     # then: sam build, and invoke with events of iris measurements

It replaces the model in model/artifacts (`make model` brings the house-price model back) and shows the path for
any model of your own: fit a Pipeline on a DataFrame, then call export.save_model. The function needs no change:
it validates requests and shapes answers from model_meta.json (four numeric features here; class labels and
probabilities in the answers).
"""

import argparse
import sys
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from export import MODEL_FORMATS, ModelNotConvertible, save_model

DEFAULT_OUT = Path(__file__).parent / "artifacts"
DEFAULT_FORMAT = "{{ cookiecutter.model_format }}"


def train(out_dir: Path, model_format: str) -> dict:
    iris = load_iris(as_frame=True)
    features = iris.frame[iris.feature_names]
    species = iris.target.map(dict(enumerate(iris.target_names)))  # labels, not numbers, in the answers
    x_train, x_test, y_train, y_test = train_test_split(
        features, species, test_size=0.25, random_state=0, stratify=species
    )
    pipeline = Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression(max_iter=1000))])
    pipeline.fit(x_train, y_train)
    metrics = {
        "rows_train": len(x_train),
        "rows_test": len(x_test),
        "accuracy": round(float(pipeline.score(x_test, y_test)), 4),
    }
    return save_model(pipeline, x_train, out_dir, model_format, metrics, name="iris-species")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the model and model_meta.json")
    parser.add_argument("--format", choices=MODEL_FORMATS, default=DEFAULT_FORMAT, help="model file format")
    args = parser.parse_args(argv)
    try:
        meta = train(args.out, args.format)
    except ModelNotConvertible as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"trained on {meta['metrics']['rows_train']} rows: accuracy {meta['metrics']['accuracy']}; "
        f"wrote {args.out / meta['model_file']} and model_meta.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
