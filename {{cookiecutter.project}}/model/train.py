"""Train the house-price pipeline and save it with export.save_model.

    python model/train.py                         # the shipped sample, model/data/price_paid_records.csv
    python model/train.py --data pp-2023.csv      # or Kaggle's price_paid_records.csv, or HM Land Registry's files

Accepts both formats of the Price Paid data: Kaggle's "UK Housing Prices Paid" (a header row, 11 columns) and
HM Land Registry's own files (pp-complete.csv, pp-<year>.csv, monthly: no header, 16 columns).
Training is reproducible: same data, same pins (layers/*/requirements.txt), same model.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from export import MODEL_FORMATS, ModelNotConvertible, save_model

HERE = Path(__file__).parent
DEFAULT_DATA = HERE / "data" / "price_paid_records.csv"
DEFAULT_OUT = HERE / "artifacts"
DEFAULT_FORMAT = "{{ cookiecutter.model_format }}"

TARGET = "Price"
FEATURES = ["Property Type", "Old/New", "Duration"]
# HM Land Registry's own files have no header; these are their 16 columns, named as in Kaggle's file where shared.
LAND_REGISTRY_COLUMNS = [
    "Transaction unique identifier",
    "Price",
    "Date of Transfer",
    "Postcode",
    "Property Type",
    "Old/New",
    "Duration",
    "PAON",
    "SAON",
    "Street",
    "Locality",
    "Town/City",
    "District",
    "County",
    "PPDCategory Type",
    "Record Status - monthly file only",
]


class DataError(Exception):
    """The data file cannot be used; the message says why."""


def read_price_paid(path: Path) -> pd.DataFrame:
    """Read either format of the Price Paid data into a DataFrame with the target and feature columns."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        first = pd.read_csv(path, header=None, nrows=1, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a CSV file ({error})") from None
    if TARGET in first.iloc[0].tolist():
        frame = pd.read_csv(path, usecols=lambda c: c in [TARGET, *FEATURES], dtype=str)
    elif first.shape[1] == len(LAND_REGISTRY_COLUMNS):
        frame = pd.read_csv(path, header=None, names=LAND_REGISTRY_COLUMNS, usecols=[TARGET, *FEATURES], dtype=str)
    else:
        raise DataError(
            f"{path}: expected Kaggle's price_paid_records.csv (a header row naming {TARGET!r}) or an HM Land "
            f"Registry Price Paid file (no header, {len(LAND_REGISTRY_COLUMNS)} columns); "
            f"found {first.shape[1]} columns and no header"
        )
    missing = [c for c in [TARGET, *FEATURES] if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    frame[TARGET] = pd.to_numeric(frame[TARGET], errors="coerce")
    frame = frame.dropna()
    if len(frame) < 10:
        raise DataError(f"{path}: only {len(frame)} usable rows (a price and all of {FEATURES}); need at least 10")
    return frame


def build_pipeline() -> Pipeline:
    """The tutorial's pipeline: one-hot encode the categorical columns, then a regressor."""
    encode = ColumnTransformer([("categories", OneHotEncoder(handle_unknown="error"), FEATURES)])
    regressor = RandomForestRegressor(n_estimators=50, min_samples_leaf=5, random_state=0, n_jobs=1)
    return Pipeline([("encode", encode), ("regress", regressor)])


def train(data: Path, out_dir: Path, model_format: str) -> dict:
    frame = read_price_paid(data)
    x_train, x_test, y_train, y_test = train_test_split(frame[FEATURES], frame[TARGET], test_size=0.2, random_state=0)
    pipeline = build_pipeline().fit(x_train, y_train)
    predicted = pipeline.predict(x_test)
    metrics = {
        "rows_train": len(x_train),
        "rows_test": len(x_test),
        "mae": round(float(mean_absolute_error(y_test, predicted)), 2),
        "r2": round(float(r2_score(y_test, predicted)), 4),
    }
    return save_model(
        pipeline, x_train, out_dir, model_format, metrics, name="house-price", trained_by="model/train.py"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Price Paid CSV (either format)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the model and model_meta.json")
    parser.add_argument("--format", choices=MODEL_FORMATS, default=DEFAULT_FORMAT, help="model file format")
    args = parser.parse_args(argv)
    try:
        meta = train(args.data, args.out, args.format)
    except (DataError, ModelNotConvertible) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"trained on {meta['metrics']['rows_train']} rows: MAE {meta['metrics']['mae']:,.0f}, "
        f"R² {meta['metrics']['r2']}; wrote {args.out / meta['model_file']} and model_meta.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
