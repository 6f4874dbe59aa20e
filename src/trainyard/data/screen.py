"""Wide tables: keep the columns most associated with the target, judged on the training rows only.

A table with many more columns than a run can look at in its budget (60 rows x 10,000 columns) is split first,
then every candidate column is scored on the training rows alone (the validation and test rows never choose a
column, so the test score stays honest): numbers by a univariate F-test against the target (ANOVA across classes,
or correlation for regression), other columns by a chi-square test of their categories against the classes
(or ANOVA of the target across their categories). The `limit` columns with the smallest p-values are kept;
the run says how many it dropped and how to keep more (`--max-columns`). The split made here is the run's split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainyard.data.split import Splits, split
from trainyard.tasks import Task

ROW_KEY = "__trainyard_row_key__"


@dataclass
class Screened:
    kept: list[str]  # candidate columns kept, best first
    candidates: int  # how many there were
    parts: Splits  # the run's split, on every column of the table (the caller narrows it)
    test: str  # how the columns were scored

    def note(self, option: str = "--max-columns") -> str:
        dropped = self.candidates - len(self.kept)
        return (f"wide table: kept the {len(self.kept):,} of {self.candidates:,} feature columns most associated with the target "
                f"on the training rows ({self.test}); {dropped:,} left out. Pass {option} N to keep more (the run needs more time).")


def auto_limit(time_limit: float | None) -> int:
    """How many columns a run of this budget can audit and search: about 25 per second, 100 to 2,000."""
    return 2000 if time_limit is None else int(np.clip(25 * time_limit, 100, 2000))


def screen_wide(df: pd.DataFrame, target: str, task: Task, candidates: list[str], limit: int, *, seed: int, test_size: float,
                val_size: float, group_col: str | None, time_col: str | None) -> Screened | None:
    """None when the candidates fit under `limit`; else the split and the kept columns (see the module's doc)."""
    if len(candidates) <= limit:
        return None
    labelled = df[df[target].notna()]
    keys = labelled[[c for c in (target, group_col, time_col) if c]].copy()
    keys[ROW_KEY] = _row_keys(labelled, candidates)  # identical rows stay on one side, as the normal split keeps them
    parts = split(keys, target, task, test_size=test_size, val_size=val_size, seed=seed, group_col=group_col,
                  time_col=time_col, keep_together=[ROW_KEY])
    parts = Splits(*(labelled.loc[p.index] for p in (parts.train, parts.val, parts.test)), parts.strategy)
    p_values = column_p_values(parts.train, target, task, candidates)
    order = np.argsort(p_values, kind="stable")
    test = "F-test for numbers, chi-square for categories" if task.is_classification else "F-test (correlation) for numbers, ANOVA for categories"
    return Screened([candidates[i] for i in order[:limit]], len(candidates), parts, test)


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One hash per row over `columns`: numbers hashed as one float block (fast at any width), other columns by pandas."""
    dtypes = frame.dtypes
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(dtypes[c]) and not pd.api.types.is_bool_dtype(dtypes[c])]
    block = np.ascontiguousarray(frame[numeric].to_numpy(dtype=float)) if numeric else np.empty((len(frame), 0))
    keys = np.array([hash(row.tobytes()) for row in block], dtype=np.int64)
    numeric_set = set(numeric)
    others = [c for c in columns if c not in numeric_set]
    if others:
        keys = keys ^ pd.util.hash_pandas_object(frame[others], index=False).to_numpy().astype(np.int64)
    return keys


def column_p_values(train: pd.DataFrame, target: str, task: Task, columns: list[str]) -> np.ndarray:
    """A p-value per column for "no association with the target" (1.0 where a test cannot be made)."""
    from sklearn.feature_selection import f_classif, f_regression

    y = train[target]
    out = np.ones(len(columns))
    dtypes = train.dtypes
    numeric = [i for i, c in enumerate(columns) if pd.api.types.is_numeric_dtype(dtypes[c])]
    if numeric:
        X = train[[columns[i] for i in numeric]].to_numpy(dtype=float)
        X = np.where(np.isfinite(X), X, np.nan)
        medians = np.nanmedian(np.where(np.isnan(X).all(axis=0), 0.0, X), axis=0) if len(X) else np.zeros(X.shape[1])
        X = np.where(np.isnan(X), medians, X)
        with np.errstate(divide="ignore", invalid="ignore"):
            if task.is_classification:
                _, p = f_classif(X, pd.factorize(y)[0])
            else:
                _, p = f_regression(X, y.to_numpy(dtype=float))
        out[numeric] = np.nan_to_num(p, nan=1.0)
    numeric_set = set(numeric)
    for i, c in enumerate(columns):
        if i not in numeric_set:
            out[i] = _category_p_value(train[c], y, task)
    return out


def _category_p_value(values: pd.Series, y: pd.Series, task: Task) -> float:
    from scipy import stats

    codes = values.astype("string").fillna("<missing>")
    try:
        if task.is_classification:
            table = pd.crosstab(codes, y)
            return float(stats.chi2_contingency(table)[1]) if min(table.shape) > 1 else 1.0
        groups = [g.to_numpy(dtype=float) for _, g in y.groupby(codes.to_numpy()) if len(g) > 1]
        return float(stats.f_oneway(*groups).pvalue) if len(groups) > 1 else 1.0
    except ValueError:
        return 1.0
