"""Training inputs refused before a run starts, so that nothing is trained only to be lost: infinite values in a
feature (every family's imputer refuses them, and evaluation after training did too) and a time column that
holds no times."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.data.schema import Schema, as_datetime, as_numeric
from trainyard.errors import ConfigError, DataError


def check_finite_features(df: pd.DataFrame, schema: Schema) -> None:
    """A DataError naming each numeric feature that holds +/-inf, with counts."""
    bad = []
    for name in schema.features("numeric"):
        values = as_numeric(df[name]).to_numpy(dtype=float)
        count = int(np.isinf(values).sum())
        if count:
            bad.append(f"'{name}' ({count:,} row(s))")
    if bad:
        raise DataError(
            f"Infinite values in feature column(s) {', '.join(bad)}: no model can learn from them.",
            "replace them with finite numbers, or leave the cells empty (missing values are imputed), "
            "or leave the column out with --ignore COL.",
        )


def check_time_column(df: pd.DataFrame, time_col: str | None, schema: Schema) -> None:
    """--time-col must name a column of dates/times or numbers (ordering by category names is no time order)."""
    if not time_col or time_col not in df.columns:
        return  # the split names a missing column itself
    s = df[time_col]
    role = schema.role(time_col)
    if role in ("datetime", "numeric") or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return
    if as_datetime(s.dropna()).notna().mean() >= 0.95 or as_numeric(s.dropna()).notna().mean() >= 0.95:
        return
    raise ConfigError(
        f"--time-col '{time_col}' holds {role} values (e.g. {str(s.dropna().iloc[0])[:40]!r}), not dates or numbers: "
        "sorting them would not put the past before the future.",
        "name a column of dates, times or increasing numbers, or split at random (leave out --time-col).",
    )


def check_trial_count(max_trials: int | None) -> None:
    if max_trials is not None and max_trials < 1:
        raise ConfigError(f"--max-trials {max_trials} allows no trial, so no model could be trained.",
                          "pass --max-trials 1 or more, or leave it out to let the time limit decide.")
