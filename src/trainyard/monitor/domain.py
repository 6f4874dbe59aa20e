"""Multivariate drift with a domain classifier: can LightGBM tell reference rows from current rows?

Per-feature tests miss changes in how columns move together (two columns whose correlation flips while each
keeps its distribution). A classifier trained to separate a reference sample from a current sample sees
them: its cross-validated ROC AUC is ~0.5 when the two are alike and grows with the shift. Its out-of-fold
scores say which current rows look least like the training data, and its split gains say which features
give them away.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.monitor import stats

MAX_ROWS = 5000  # per side
MIN_ROWS = 50
TOP_ROWS = 10


def _encode(ref: pd.DataFrame, cur: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    both = pd.concat([ref, cur], ignore_index=True)
    out = {}
    for name, kind in kinds.items():
        s = both[name]
        if kind == "categorical":
            values = s.astype(object).where(s.notna(), None)
            cats = sorted({str(v) for v in values.dropna()})
            out[name] = pd.Categorical(values.map(lambda v: None if v is None else str(v)), categories=cats)
        else:
            out[name] = pd.to_numeric(s, errors="coerce").astype(float)
    return pd.DataFrame(out)


def domain_check(ref: pd.DataFrame, cur: pd.DataFrame, kinds: dict[str, str], th, *, seed: int = 0,
                 max_rows: int = MAX_ROWS, folds: int = 5) -> dict:
    """Cross-validated AUC of reference-vs-current, the features that separate them and the least typical rows.

    `ref` and `cur` are monitored frames (`profile.monitored_frame`): floats and strings, columns as in `kinds`.
    """
    from lightgbm import LGBMClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    kinds = {n: k for n, k in kinds.items() if n in ref.columns and n in cur.columns}
    n = min(len(ref), len(cur), max_rows)
    if n < MIN_ROWS or not kinds:
        return {"status": "ok", "skipped": f"needs at least {MIN_ROWS} rows on each side (has {min(len(ref), len(cur))})"}
    ref_s = ref.sample(n, random_state=seed) if len(ref) > n else ref
    cur_s = cur.sample(n, random_state=seed) if len(cur) > n else cur
    X = _encode(ref_s[list(kinds)], cur_s[list(kinds)], kinds)
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    params = dict(n_estimators=100, learning_rate=0.1, num_leaves=15, min_child_samples=20, subsample=0.8, subsample_freq=1,
                  colsample_bytree=0.8, verbose=-1, n_jobs=1, random_state=seed)
    oof = np.zeros(len(y))
    gains = np.zeros(X.shape[1])
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        clf = LGBMClassifier(**params, importance_type="gain").fit(X.iloc[train], y[train])
        oof[test] = clf.predict_proba(X.iloc[test])[:, 1]
        gains += clf.feature_importances_
    auc = float(roc_auc_score(y, oof))
    p_value = stats.domain_auc_pvalue(auc, n, n)
    level = "ok"
    if p_value < th.alpha:
        level = "drift" if auc >= th.domain_auc_drift else "warn" if auc >= th.domain_auc_warn else "ok"
    share = gains / gains.sum() if gains.sum() > 0 else gains
    importance = sorted(({"column": c, "importance": float(v)} for c, v in zip(X.columns, share)), key=lambda r: -r["importance"])
    cur_scores = oof[n:]
    order = np.argsort(-cur_scores)[:TOP_ROWS]
    rows = [{"row": _label(cur_s.index[i]), "score": float(cur_scores[i]),
             "values": {c: _plain(cur_s.iloc[i][c]) for c in [r["column"] for r in importance[:5]]}} for i in order]
    return {
        "status": level, "auc": auc, "p_value": p_value, "rows_per_side": n, "folds": folds,
        "importance": importance, "top_features": [r["column"] for r in importance[:3] if r["importance"] > 0],
        "share_unlike_reference": float(np.mean(cur_scores > 0.8)), "least_typical_rows": rows,
    }


def _label(index_value):
    return index_value.item() if hasattr(index_value, "item") else index_value


def _plain(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v
