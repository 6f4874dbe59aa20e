"""Explanations: permutation importance for any model, per-prediction contributions for tree models.

Permutation importance shuffles one raw input column at a time (the model's
pipeline eats raw rows, so the columns are the user's columns, not encoded
ones) and measures how much the metric drops. Contributions use the boosting
libraries' own SHAP-style output (LightGBM `pred_contrib`, XGBoost
`pred_contribs`) on the encoded features, summed back to the input column each
encoded feature came from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.metrics import Metric, score_pipeline
from trainyard.models.unwrap import tree_parts


def permutation_importance(model, X: pd.DataFrame, y_codes: np.ndarray, metric: Metric, *, n_repeats: int = 5,
                           max_rows: int = 2000, seed: int = 0, seconds: float | None = None) -> list[dict]:
    """Drop in `metric` (positive = the column helps) when each input column is shuffled, largest first.

    `seconds` bounds the work: one scoring pass is timed first, then rows (down to 200) and repeats (down to
    1) are cut so that the shuffles fit; each row says how many repeats and rows it used. When one pass at
    200 rows would still take over three times `seconds`, nothing is computed (an empty list).
    """
    import time

    from sklearn.inspection import permutation_importance as sk_permutation_importance

    sign = 1.0 if metric.greater_is_better else -1.0
    classes = model.classes if model.task.is_classification else None

    def scorer(estimator, X_part, y_part):
        return sign * score_pipeline(estimator, X_part, y_part, model.task, metric, classes)

    X = X[model.features]
    rows = min(len(X), max_rows)
    repeats = n_repeats
    if seconds is not None and rows:
        t0 = time.perf_counter()
        scorer(model.pipeline, X.iloc[:rows], np.asarray(y_codes)[:rows])
        per_pass = max(time.perf_counter() - t0, 1e-4) * len(X.columns)  # one shuffle of every column
        if per_pass > seconds:
            rows = min(rows, max(200, int(rows * seconds / per_pass)))
            per_pass *= rows / min(len(X), max_rows)
        if per_pass > 3 * seconds:  # not even one pass fits: say so rather than blow the time limit
            return []
        repeats = int(min(n_repeats, max(1, seconds // per_pass)))
    result = sk_permutation_importance(model.pipeline, X, y_codes, scoring=scorer, n_repeats=repeats, random_state=seed,
                                       max_samples=min(1.0, rows / max(len(X), 1)), n_jobs=1)
    out = [{"column": c, "importance": float(m), "std": float(s), "repeats": repeats, "rows": rows}
           for c, m, s in zip(X.columns, result.importances_mean, result.importances_std)]
    return sorted(out, key=lambda r: -r["importance"])


def tree_library(model) -> str | None:
    """'lightgbm' or 'xgboost' when every model inside (a plain pipeline, or an AutoML ensemble of boosted
    members, bagged or not) is of that one library, which can explain its own predictions; else None."""
    parts = tree_parts(model)
    if parts is None or len(parts.libraries) != 1:
        return None
    lib = next(iter(parts.libraries))
    return lib if lib in ("lightgbm", "xgboost") else None


def _raw_contributions(lib: str, estimator, Xt) -> np.ndarray:
    if lib == "lightgbm":
        return np.asarray(estimator.predict(Xt, pred_contrib=True))
    import xgboost as xgb

    best = getattr(estimator, "best_iteration", None)
    booster = estimator.get_booster()
    rounds = (0, best + 1) if best is not None else (0, 0)
    return np.asarray(booster.predict(xgb.DMatrix(Xt, enable_categorical=True), pred_contribs=True, iteration_range=rounds))


def contributions(model, X: pd.DataFrame, class_index: np.ndarray | int | None = None) -> pd.DataFrame | None:
    """Per-row contributions to the raw model output (log-odds for classification), by input column, plus 'bias'.

    For each row, the values sum to the model's raw score (of `class_index`, default the predicted class, for
    multiclass). For an ensemble of boosted models (AutoML's output) they sum to the weighted average of the
    members' raw scores: exact for regression; for classification the ensemble averages probabilities, so
    this is the members' log-odds averaged with the ensemble's weights. None unless the model is LightGBM or
    XGBoost throughout.
    """
    lib = tree_library(model)
    if lib is None:
        return None
    parts = tree_parts(model)
    Xt = parts.prep.transform(X)
    raw = sum(w * _raw_contributions(lib, est, Xt) for w, _, est in parts.members)
    n_features = Xt.shape[1]
    if raw.ndim == 2 and raw.shape[1] > n_features + 1:  # LightGBM multiclass: classes side by side
        raw = raw.reshape(len(Xt), -1, n_features + 1)
    if raw.ndim == 3:
        if class_index is None:
            class_index = model.predict_proba_array(X).argmax(axis=1)
        raw = raw[np.arange(len(Xt)), np.broadcast_to(class_index, (len(Xt),))]
    names = [str(c) for c in (Xt.columns if hasattr(Xt, "columns") else range(n_features))]
    source = [input_column(name, model.features) for name in names]
    frame = pd.DataFrame(raw[:, :n_features], columns=names, index=X.index)
    by_input = frame.T.groupby(source, sort=False).sum().T
    by_input["bias"] = raw[:, n_features]
    return by_input


def input_column(feature: str, inputs: list[str]) -> str:
    """The input column an encoded feature came from ('when.month' -> 'when'); the feature itself if none."""
    if feature in inputs:
        return feature
    matches = [c for c in inputs if feature.startswith(c + ".")]
    return max(matches, key=len) if matches else feature


def contribution_summary(contrib: pd.DataFrame, top: int = 15) -> list[dict]:
    """Mean absolute contribution per input column (a global importance), largest first."""
    mean_abs = contrib.drop(columns="bias").abs().mean().sort_values(ascending=False)
    return [{"column": c, "mean_abs_contribution": float(v)} for c, v in mean_abs.head(top).items()]
