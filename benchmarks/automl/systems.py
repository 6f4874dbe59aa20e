"""One AutoML system on one split, run inside that system's own virtual environment.

    <venv>/bin/python benchmarks/automl/systems.py --system flaml --train T.parquet --test S.parquet \
        --target y --task binary --metric roc_auc --budget 60 --out DIR

Needs only pandas, numpy and the system itself. Writes DIR/predictions.npy (class probabilities in sorted
label order, or regression values) and DIR/result.json (fit seconds, single-row latency). Scores are
computed by bench.py, in one place, for every system alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

METRIC_NAMES = {  # our metric name -> each system's name for it
    "autogluon": {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "root_mean_squared_error"},
    "flaml": {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "rmse"},
    "h2o": {"roc_auc": "AUC", "log_loss": "logloss", "rmse": "RMSE"},
}


def as_categories(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or str(out[c].dtype) in ("string", "str", "bool"):
            out[c] = out[c].astype("category")
    return out


def run_trainyard(train, test, a):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from trainyard import api  # imported before the clock starts, as every other system's library is

    t0 = time.perf_counter()
    result = api.train(train, target=a.target, time_limit=a.budget, metric=a.metric, name="bench", workspace=a.work,
                             seed=a.seed, preset=a.preset)
    fit = time.perf_counter() - t0
    model = result.model

    def predict(X):
        if a.task == "regression":
            return model.predict(X)
        proba = model.predict_proba_array(X)
        order = np.argsort([str(c) for c in model.classes])
        return proba[:, order]

    info = {"best": result.model.family}
    fast = model.rows_fn()  # the few-rows path `trainyard serve` uses, when the model allows it
    if fast is not None:
        rows = test.drop(columns=[a.target]).head(60).to_dict(orient="records")
        rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in rows]
        times = []
        for r in rows:
            t0 = time.perf_counter()
            fast([r])
            times.append((time.perf_counter() - t0) * 1000)
        info["served_row_ms"] = float(np.median(times[10:]))
    return fit, predict, info


def run_autogluon(train, test, a):
    from autogluon.tabular import TabularPredictor

    problem = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[a.task]
    t0 = time.perf_counter()
    predictor = TabularPredictor(label=a.target, problem_type=problem, eval_metric=METRIC_NAMES["autogluon"][a.metric],
                                 path=str(Path(a.work) / "ag"), verbosity=0).fit(train, time_limit=a.budget, presets="medium_quality")
    fit = time.perf_counter() - t0

    def predict(X):
        if a.task == "regression":
            return predictor.predict(X).to_numpy(dtype=float)
        proba = predictor.predict_proba(X)
        return proba[sorted(proba.columns, key=str)].to_numpy(dtype=float)

    return fit, predict, {"best": str(predictor.model_best)}


def run_flaml(train, test, a):
    from flaml import AutoML

    X, y = train.drop(columns=[a.target]), train[a.target]
    automl = AutoML()
    t0 = time.perf_counter()
    automl.fit(X, y, task="regression" if a.task == "regression" else "classification", time_budget=a.budget,
               metric=METRIC_NAMES["flaml"][a.metric], seed=a.seed, verbose=0, n_jobs=os.cpu_count(),
               log_file_name=str(Path(a.work) / "flaml.log"))
    fit = time.perf_counter() - t0

    def predict(X):
        if a.task == "regression":
            return np.asarray(automl.predict(X), dtype=float)
        proba = automl.predict_proba(X)
        order = np.argsort([str(c) for c in automl.classes_])
        return np.asarray(proba)[:, order]

    return fit, predict, {"best": str(automl.best_estimator)}


def run_h2o(train, test, a):
    import h2o
    from h2o.automl import H2OAutoML

    h2o.init(nthreads=os.cpu_count(), max_mem_size="6G", verbose=False)
    h2o.no_progress()
    frame = h2o.H2OFrame(train)
    if a.task != "regression":
        frame[a.target] = frame[a.target].asfactor()
    t0 = time.perf_counter()
    aml = H2OAutoML(max_runtime_secs=int(a.budget), seed=a.seed, sort_metric=METRIC_NAMES["h2o"][a.metric], verbosity=None)
    aml.train(y=a.target, training_frame=frame)
    fit = time.perf_counter() - t0

    types = {c: t for c, t in frame.types.items() if c != a.target}

    def predict(X):  # parse new rows with the training frame's column types, or H2O may guess differently
        out = aml.leader.predict(h2o.H2OFrame(X, column_types={c: types[c] for c in X.columns})).as_data_frame()
        if a.task == "regression":
            return out["predict"].to_numpy(dtype=float)
        cols = sorted([c for c in out.columns if c != "predict"], key=str)
        return out[cols].to_numpy(dtype=float)

    return fit, predict, {"best": str(aml.leader.model_id)}


def run_lightgbm(train, test, a):
    import lightgbm as lgb

    X, y = as_categories(train.drop(columns=[a.target])), train[a.target]
    categories = {c: X[c].cat.categories for c in X.columns if str(X[c].dtype) == "category"}
    cls = lgb.LGBMRegressor if a.task == "regression" else lgb.LGBMClassifier
    model = cls(random_state=a.seed, verbose=-1)  # its defaults otherwise
    t0 = time.perf_counter()
    model.fit(X, y)
    fit = time.perf_counter() - t0

    def predict(Xn):
        Xn = Xn.copy()
        for c, cats in categories.items():
            Xn[c] = pd.Categorical(Xn[c], categories=cats)
        if a.task == "regression":
            return model.predict(Xn)
        order = np.argsort([str(c) for c in model.classes_])
        return model.predict_proba(Xn)[:, order]

    return fit, predict, {"best": "LGBM defaults"}


RUNNERS = {"trainyard": run_trainyard, "autogluon": run_autogluon, "flaml": run_flaml, "h2o": run_h2o, "lightgbm": run_lightgbm}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--system", required=True, choices=sorted(RUNNERS))
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--task", required=True, choices=["binary", "multiclass", "regression"])
    p.add_argument("--metric", required=True)
    p.add_argument("--budget", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="balanced")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = pd.read_parquet(a.train), pd.read_parquet(a.test)
    X_test = test.drop(columns=[a.target])
    with tempfile.TemporaryDirectory() as work:
        a.work = work
        fit, predict, info = RUNNERS[a.system](train, test, a)
        t0 = time.perf_counter()
        preds = np.asarray(predict(X_test), dtype=float)
        batch_ms = (time.perf_counter() - t0) * 1000 / len(X_test)
        latencies = []
        for i in range(60):  # single rows, as a service would get them; the first calls warm up
            row = X_test.iloc[[i % len(X_test)]]
            t0 = time.perf_counter()
            predict(row)
            latencies.append((time.perf_counter() - t0) * 1000)
        np.save(out / "predictions.npy", preds)
        (out / "result.json").write_text(json.dumps({
            "fit_seconds": fit, "batch_ms_per_row": batch_ms, "single_row_ms": float(np.median(latencies[10:])), **info}))


if __name__ == "__main__":
    main()
