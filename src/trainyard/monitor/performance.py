"""Performance once labels arrive: join late labels to the window's rows and score the model, overall and by day.

Labels come from a file (`--labels outcomes.csv`), from the target column of `--data`, or from the store's
`labels` table (earlier `--labels` runs, or anything that called `Store.add_labels`). A labels file is joined
by `request_id` (prediction-log windows; add `row_in_request` for batched requests) or else by key columns
present in both (`--key`, default: every shared column). Request-id labels are recorded in the store so the
next run sees them too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.data.load import load_table
from trainyard.data.profile import category_key
from trainyard.errors import ConfigError, DataError, suggest
from trainyard.evaluation.holdout import encode_labels, holdout_metrics
from trainyard.metrics import METRICS
from trainyard.monitor.window import day_buckets

MIN_ROWS_PER_PERIOD = 20
PERF_WARN = 0.05  # relative degradation of the model's metric vs its test score
PERF_DRIFT = 0.10
Z_GATE = 2.33  # one-sided 1 %


def attach_labels(store, name: str, model, current: pd.DataFrame, meta_df: pd.DataFrame | None, labels, label_col: str | None,
                  keys: list[str] | None) -> tuple[pd.Series | None, dict | None]:
    """(labels aligned to `current`'s index or None, what was joined)."""
    target = model.target
    out = pd.Series(np.nan, index=current.index, dtype=object)
    info: dict = {}
    if meta_df is not None:  # labels recorded earlier for these requests
        known = store.labels(name, meta_df["request_id"].astype(str).unique().tolist())
        if known:
            by_request = {r["request_id"]: r["label"] for r in known}
            out[:] = meta_df["request_id"].astype(str).map(by_request).to_numpy()
            info["from_store"] = int(out.notna().sum())
    elif target and target in current.columns:
        out = current[target].astype(object)
        info["from_data"] = int(out.notna().sum())
    if labels is not None:
        table = load_table(labels)
        col = _label_column(table, label_col, target)
        joined = _join(current, meta_df, table, col, keys, target)
        info.update(file=str(labels) if not isinstance(labels, pd.DataFrame) else "<DataFrame>", label_column=col,
                    joined=int(joined.notna().sum()), file_rows=len(table))
        out = joined.where(joined.notna(), out)
        if meta_df is not None and joined.notna().any():
            per_request = pd.DataFrame({"request_id": meta_df["request_id"].astype(str).to_numpy(), "label": joined.to_numpy()}).dropna()
            per_request = per_request.drop_duplicates("request_id", keep="last")
            info["stored"] = store.add_labels(name, [{"request_id": r, "label": _plain(v)} for r, v in zip(per_request["request_id"], per_request["label"])])
    if out.notna().sum() == 0:
        return None, info or None
    return out, info


def _label_column(table: pd.DataFrame, label_col: str | None, target: str | None) -> str:
    for c in [label_col, "label", target]:
        if c and c in table.columns:
            return c

    raise ConfigError("The labels file has no label column" + (f" '{label_col}'" if label_col else " ('label' or the target name)") + ".",
                      "name it with --label-col; " + suggest(label_col or "label", table.columns))


def _join(current: pd.DataFrame, meta_df: pd.DataFrame | None, table: pd.DataFrame, col: str, keys: list[str] | None, target) -> pd.Series:
    if not keys and meta_df is not None and "request_id" in table.columns:
        on = ["request_id"] + (["row_in_request"] if "row_in_request" in table.columns else [])
        left = meta_df[on].copy()
    else:
        on = keys or [c for c in table.columns if c in current.columns and c not in (col, target, "request_id")]
        if not on:
            raise DataError("Cannot join the labels: they share no request_id or key column with the new rows.",
                            "add a request_id column (from the prediction log) or name key columns with --key.")
        missing = [k for k in on if k not in table.columns or k not in current.columns]
        if missing:
            raise DataError(f"Key column(s) {', '.join(missing)} are not in both the labels and the new rows.", "check --key.")
        left = current[on].copy()
    left = left.reset_index(drop=True)
    right = table[on + [col]].drop_duplicates(on, keep="last").copy()
    for k in on:  # compare keys by their text form: 1 and "1" and 1.0 match
        left[k] = left[k].map(category_key)
        right[k] = right[k].map(category_key)
    merged = left.merge(right, on=on, how="left")
    return pd.Series(merged[col].to_numpy(), index=current.index, dtype=object)


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _model_labels(model, y: pd.Series) -> tuple[pd.Series, int]:
    """Labels in the model's own class values (text forms matched); unknown labels dropped and counted."""
    if not model.task.is_classification:
        y = pd.to_numeric(y, errors="coerce")
        return y, 0
    by_key = {category_key(c): c for c in model.classes}
    mapped = y.map(lambda v: by_key.get(category_key(v)))
    return mapped, int((mapped.isna() & y.notna()).sum())


def performance_report(model, meta: dict, current: pd.DataFrame, labels: pd.Series, times: pd.Series | None, by: str = "D") -> dict:
    y, unknown = _model_labels(model, labels)
    mask = y.notna().to_numpy()
    X = current[mask]
    y = y[mask]
    metric = meta.get("metric") or model.metric
    test = (meta.get("metrics") or {}).get("test") or {}
    out: dict = {"metric": metric, "labelled_rows": int(mask.sum()), "unknown_labels": unknown, "test": test}
    if len(y) == 0:
        return out | {"status": None}
    out["overall"] = _score(model, X, y)
    if times is not None:
        periods = day_buckets(pd.Series(np.asarray(times), index=current.index), by)[mask]
        rows = []
        for p in sorted(periods.dropna().unique()):
            part = (periods == p).to_numpy()
            if part.sum() >= MIN_ROWS_PER_PERIOD:
                rows.append({"period": p, "rows": int(part.sum()), "metrics": _score(model, X[part], y[part])})
        out["by_period"] = rows
    now, ref = out["overall"].get(metric), test.get(metric)
    out["status"] = None
    if now is not None and ref:
        higher = METRICS[metric].greater_is_better
        degradation = (ref - now) / abs(ref) if higher else (now - ref) / abs(ref)
        # both scores are estimates: the drop must also exceed their combined noise (one-sided z >= Z_GATE)
        se_now = _bootstrap_se(model, X, y, metric)
        n_test = (meta.get("split") or {}).get("test") or len(y)
        se = float(np.hypot(se_now, se_now * np.sqrt(len(y) / max(n_test, 1)))) if se_now is not None else 0.0
        z = (abs(ref) * degradation) / se if se > 0 else float("inf")
        out.update(degradation=degradation, standard_error=se, z=z)
        level = "drift" if degradation >= PERF_DRIFT else "warn" if degradation >= PERF_WARN else "ok"
        out["status"] = level if z >= Z_GATE else "ok"
    return out


def _bootstrap_se(model, X: pd.DataFrame, y: pd.Series, metric: str, rounds: int = 100, seed: int = 0) -> float | None:
    """Standard error of the metric on these rows, by resampling them (the model is run once)."""
    fn = METRICS[metric]
    if model.task.is_classification:
        codes, proba = encode_labels(np.asarray(y), model.classes), model.predict_proba_array(X)
        pred, classes = proba.argmax(axis=1), np.arange(len(model.classes))
        score = lambda i: fn(codes[i], pred[i], proba[i], classes)  # noqa: E731
    else:
        truth, pred = y.to_numpy(dtype=float), model.predict(X)
        score = lambda i: fn(truth[i], pred[i])  # noqa: E731
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        try:
            values.append(score(rng.integers(0, len(y), len(y))))
        except ValueError:  # a resample with one class: no AUC
            continue
    return float(np.std(values)) if len(values) >= 10 else None


def _score(model, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Every reported metric; one that a window cannot support (AUC with one class present) is left out."""
    return holdout_metrics(model, X, y)
