"""The model an MLflow user would serve: a scikit-learn Pipeline (one-hot categoricals + LightGBM) saved with mlflow.sklearn.

Run with the MLflow virtual environment's interpreter (it needs mlflow, scikit-learn, lightgbm and pandas, not
trainyard), by bench.py:

    /work/peers/mlflow-venv/bin/python benchmarks/serving/mlflow_sklearn.py ADULT.csv OUT_DIR

The pipeline is what the MLflow and scikit-learn docs show: a ColumnTransformer (OneHotEncoder for text columns,
median imputation for numbers) in front of `lightgbm.LGBMClassifier()` with its defaults (100 trees), saved with a
signature inferred from the training frame and an input example. It is trained on all 32,561 rows; its accuracy is
printed so the reader can see it is a working model, but this script is about serving speed, not its score.
"""

from __future__ import annotations

import sys

import lightgbm
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder


def main(csv: str, out: str) -> None:
    data = pd.read_csv(csv)
    X, y = data.drop(columns="income"), data["income"]
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    numbers = [c for c in X.columns if c not in text]
    prepare = ColumnTransformer([("text", OneHotEncoder(handle_unknown="ignore"), text),
                                 ("numbers", SimpleImputer(strategy="median"), numbers)])
    text_filled = X.assign(**{c: X[c].fillna("missing") for c in text})
    pipe = Pipeline([("prepare", prepare), ("model", lightgbm.LGBMClassifier(verbose=-1))]).fit(text_filled, y)
    print(f"sklearn pipeline: training accuracy {pipe.score(text_filled, y):.4f}", flush=True)
    example = text_filled.head(5)
    # MLflow 3 saves scikit-learn models with skops and refuses types it does not know unless they are named.
    trusted = ["collections.OrderedDict", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier", "numpy.dtype"]
    mlflow.sklearn.save_model(pipe, out, signature=infer_signature(example, pipe.predict(example)), input_example=example,
                              skops_trusted_types=trusted)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
