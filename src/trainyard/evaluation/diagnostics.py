"""Where the model is wrong: confusion matrix, worst-predicted rows, residuals (regression)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.evaluation.scored import Scored

MAX_POINTS = 2000  # residual points kept for the plot (a fixed random sample beyond this)


def confusion(scored: Scored) -> dict:
    from sklearn.metrics import confusion_matrix

    k = len(scored.classes)
    matrix = confusion_matrix(scored.y, scored.pred, labels=np.arange(k))
    return {"labels": [str(c) for c in scored.classes], "matrix": matrix.tolist(),
            "note": "rows are the true class, columns the predicted class"}


def row_loss(scored: Scored) -> np.ndarray:
    """Per-row loss used to rank rows: -log p(true class), or the absolute error."""
    if scored.task.is_classification:
        return -np.log(np.clip(scored.proba[np.arange(scored.n), scored.y], 1e-15, 1))
    return np.abs(scored.y - scored.pred)


def worst_rows(scored: Scored, X: pd.DataFrame, k: int = 10) -> list[dict]:
    """The k rows the model got most wrong, with their inputs, truth, prediction and loss."""
    loss = row_loss(scored)
    order = np.argsort(-loss, kind="mergesort")[:k]
    rows = []
    for i in order:
        entry = {"row": _jsonable(X.index[i]), "loss": float(loss[i]), "inputs": {str(c): _jsonable(v) for c, v in X.iloc[i].items()}}
        if scored.task.is_classification:
            entry.update(true=str(scored.classes[scored.y[i]]), predicted=str(scored.classes[scored.pred[i]]),
                         p_true=float(scored.proba[i, scored.y[i]]), p_predicted=float(scored.proba[i, scored.pred[i]]))
        else:
            entry.update(true=float(scored.y[i]), predicted=float(scored.pred[i]), residual=float(scored.y[i] - scored.pred[i]))
        rows.append(entry)
    return rows


def residuals(scored: Scored, seed: int = 0) -> dict:
    """Residual summary and a sample of (predicted, residual) points for the plots."""
    resid = scored.y - scored.pred
    keep = np.arange(scored.n)
    if scored.n > MAX_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(scored.n, MAX_POINTS, replace=False))
    q = np.quantile(resid, [0.05, 0.25, 0.5, 0.75, 0.95]) if scored.n else [np.nan] * 5
    return {"mean": float(resid.mean()), "std": float(resid.std()), "quantiles": dict(zip(["5%", "25%", "50%", "75%", "95%"], map(float, q))),
            "predicted": scored.pred[keep].tolist(), "residual": resid[keep].tolist(), "sampled": bool(scored.n > MAX_POINTS)}


def _jsonable(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, (int, float, bool, str)):
        return v
    if pd.isna(v) if not isinstance(v, (list, dict)) else False:
        return None
    return str(v)
