"""Checks between two parts of the data: rows shared by train and test (contamination), and distribution shift."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.data.audit.context import row_hash, share
from trainyard.data.audit.noise import make_estimator
from trainyard.data.audit.report import Finding
from trainyard.data.audit.rows import normalised
from trainyard.data.schema import ColumnSchema, FEATURE_ROLES, Schema, as_datetime, as_numeric, infer_schema

PSI_WARNING = 0.25  # population stability index: > 0.25 is a large shift, 0.1-0.25 a moderate one
PSI_INFO = 0.10
SHIFT_ROWS = 100_000
DOMAIN_ROWS = 5_000  # rows per side for the domain classifier
DOMAIN_WARNING = 0.75  # out-of-fold ROC AUC of telling test rows from training rows: a warning from here ...
DOMAIN_INFO = 0.60  # ... and an info finding from here (a random split scores about 0.5)


def compare_splits(train: pd.DataFrame, test: pd.DataFrame, target: str | None = None, *,
                   columns: list[str] | None = None, roles: dict[str, str] | None = None,
                   expected_shift: str | None = None, seed: int = 0) -> list[Finding]:
    """Findings about a train/test pair: test rows that also occur in train, and columns whose distribution moved.

    `columns` are the features to compare (default: the columns both share, minus the target and identifiers);
    `roles` maps column -> role (default: inferred from `train`). With `expected_shift` (e.g. "split by time"),
    shift findings are info rather than warnings.
    """
    if roles is None:
        schema = infer_schema(train if len(train) <= 50_000 else train.sample(50_000, random_state=seed), target)
        roles = {c.name: c.role for c in schema.columns}
    if columns is None:
        columns = [c for c in train.columns if c in test.columns and c != target and roles.get(c) not in ("id", "ignore", None)]
    out = contamination(train, test, columns, target)
    out += shift(train, test, [c for c in columns if roles.get(c) != "text"], roles, expected_shift, seed)
    out += domain_shift(train, test, [c for c in columns if roles.get(c) in FEATURE_ROLES and roles.get(c) != "text"], roles,
                        expected_shift, seed)
    return out


def contamination(train: pd.DataFrame, test: pd.DataFrame, columns: list[str], target: str | None = None) -> list[Finding]:
    if not columns or len(test) == 0:
        return []

    a, b = _aligned(train, columns), _aligned(test, columns)
    shared = np.isin(row_hash(b), row_hash(a))
    # the same rows written a little differently (a CSV round trip, re-typed text): text lower-cased without
    # punctuation and spaces, numbers rounded to 3 significant digits
    near = np.isin(row_hash(normalised(b)), row_hash(normalised(a))) & ~shared
    n, n_near = int(shared.sum()), int(near.sum())
    if not n + n_near:
        return []
    frac = (n + n_near) / len(test)
    how = f"identical on {len(columns)} feature columns" + (f"; {n_near:,} more once text is normalised and numbers rounded" if n_near else "")
    if not n:
        how = f"on {len(columns)} feature columns once text is lower-cased without punctuation and numbers are rounded to 3 significant digits"
    return [Finding("contamination", "blocking" if frac >= 0.01 else "warning",
                    f"{n + n_near:,} test rows ({share(frac)}) also appear in the training rows ({how})",
                    "a model is tested on examples it has already seen, so its test score overstates how it does on new data.",
                    "remove the shared rows from the test set, or split so identical rows (or the same entity, --group-col) stay on one side.",
                    score=frac, data={"rows": n + n_near, "identical_rows": n, "near_rows": n_near, "share": frac,
                                      "examples": test.index[shared | near][:10].tolist(), "columns": len(columns)})]


def _aligned(frame: pd.DataFrame, columns: list[str], roles: dict[str, str] | None = None) -> pd.DataFrame:
    """The same columns with comparable dtypes (a CSV and a DataFrame may type a column differently); with `roles`,
    numeric and boolean columns are parsed as numbers even when one side holds them as text."""
    out = {}
    for c in columns:
        s = frame[c]
        if roles and roles.get(c) in ("numeric", "boolean") and not pd.api.types.is_numeric_dtype(s):
            out[c] = as_numeric(s)
        elif pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            out[c] = s.astype(float)
        else:
            out[c] = s.astype("string").str.strip()
    return pd.DataFrame(out, index=frame.index)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two histograms of counts."""
    e = (expected + 0.5) / (expected.sum() + 0.5 * len(expected))
    a = (actual + 0.5) / (actual.sum() + 0.5 * len(actual))
    return float(np.sum((a - e) * np.log(a / e)))


def column_psi(train: pd.Series, test: pd.Series, role: str) -> float:
    if role in ("numeric", "boolean", "datetime"):
        conv = as_datetime if role == "datetime" else as_numeric
        a, b = conv(train), conv(test)
        if role == "datetime":
            a = (a - pd.Timestamp("1970-01-01")).dt.total_seconds()
            b = (b - pd.Timestamp("1970-01-01")).dt.total_seconds()
        a, b = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(fa) == 0 or len(fb) == 0:
            return 0.0
        edges = np.unique(np.quantile(fa, np.linspace(0, 1, 11)[1:-1]))
        ha = np.bincount(np.searchsorted(edges, fa, side="right"), minlength=len(edges) + 1)
        hb = np.bincount(np.searchsorted(edges, fb, side="right"), minlength=len(edges) + 1)
        ha = np.append(ha, (~np.isfinite(a)).sum())
        hb = np.append(hb, (~np.isfinite(b)).sum())
        return psi(ha.astype(float), hb.astype(float))
    a = train.astype("string").fillna("<missing>")
    b = test.astype("string").fillna("<missing>")
    top = a.value_counts().index[:30]
    ca = a.where(a.isin(top), "<other>").value_counts()
    cb = b.where(b.isin(top), "<other>").value_counts()
    keys = sorted(set(ca.index) | set(cb.index))
    return psi(ca.reindex(keys, fill_value=0).to_numpy(float), cb.reindex(keys, fill_value=0).to_numpy(float))


def shift(train: pd.DataFrame, test: pd.DataFrame, columns: list[str], roles: dict[str, str],
          expected_shift: str | None = None, seed: int = 0) -> list[Finding]:
    if len(train) > SHIFT_ROWS:
        train = train.sample(SHIFT_ROWS, random_state=seed)
    if len(test) > SHIFT_ROWS:
        test = test.sample(SHIFT_ROWS, random_state=seed)
    if len(test) < 20 or len(train) < 20:
        return []
    out = []
    for c in columns:
        value = column_psi(train[c], test[c], roles.get(c, "categorical"))
        if value < PSI_INFO:
            continue
        severity = "warning" if value >= PSI_WARNING and not expected_shift else "info"
        size = "large" if value >= PSI_WARNING else "moderate"
        out.append(Finding("shift", severity, f"{size} train/test distribution shift (PSI {value:.2f})"
                           + (f", expected: {expected_shift}" if expected_shift else ""),
                           "a model is tested (and later used) on data unlike what it learned from; scores move with the shift.",
                           "check whether the split is representative; if the world changed, train on recent data and monitor this column.",
                           column=c, score=value, data={"psi": value},
                           sampled=f"{SHIFT_ROWS:,}-row samples" if max(len(train), len(test)) >= SHIFT_ROWS else None))
    return out


def domain_shift(train: pd.DataFrame, test: pd.DataFrame, columns: list[str], roles: dict[str, str],
                 expected_shift: str | None = None, seed: int = 0) -> list[Finding]:
    """Can a model tell test rows from training rows? A small LightGBM trained to do it, scored out of fold (ROC AUC):
    it sees shifts in how columns go together that per-column PSI misses. Fixed-size samples of each side."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from trainyard.data.prepare import make_preprocessor

    if not columns or min(len(train), len(test)) < 50:
        return []
    a = train.sample(min(len(train), DOMAIN_ROWS), random_state=seed)[columns]
    b = test.sample(min(len(test), DOMAIN_ROWS), random_state=seed)[columns]
    frame = pd.concat([_aligned(a, columns, roles), _aligned(b, columns, roles)], ignore_index=True)
    side = np.r_[np.zeros(len(a), dtype=int), np.ones(len(b), dtype=int)]
    schema = Schema(None, [ColumnSchema(c, roles[c], str(frame[c].dtype), 0.0, 0) for c in columns])
    X = make_preprocessor(schema, "tree").fit_transform(frame)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=seed)
    proba = cross_val_predict(make_estimator(seed), X, side, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(side, proba))
    if auc < DOMAIN_INFO:
        return []
    model = make_estimator(seed)
    if "importance_type" in model.get_params():
        model.set_params(importance_type="gain")  # split counts favour columns expanded into several features (dates)
    model.fit(X, side)
    gains = pd.Series(getattr(model, "feature_importances_", np.zeros(X.shape[1])), index=X.columns, dtype=float)
    by_column = gains.groupby(lambda f: next((c for c in columns if f == c or f.startswith(f"{c}.")), f)).sum()
    top = [c for c in by_column.sort_values(ascending=False).index[:3] if by_column[c] > 0]
    severity = "warning" if auc >= DOMAIN_WARNING and not expected_shift else "info"
    sampled = f"{len(a):,} training and {len(b):,} test rows" if max(len(train), len(test)) > DOMAIN_ROWS else None
    return [Finding("domain_shift", severity,
                    f"test rows can be told apart from training rows (a model does it with ROC AUC {auc:.2f}, out of fold)"
                    + (f"; most telling columns: {', '.join(top)}" if top else "") + (f", expected: {expected_shift}" if expected_shift else ""),
                    "the test set (and later, live data) is not like what the model learns from, even where each column "
                    "alone looks similar; test scores will not carry over.",
                    "check how the split was made (a random split scores about 0.5); if the data changed over time, train on "
                    "recent rows and monitor the listed columns.",
                    score=auc, data={"auc": auc, "top_columns": top}, sampled=sampled)]
