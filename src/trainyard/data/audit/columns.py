"""Checks on single columns: missing values, constant and id-like columns, types, outliers and impossible values."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from trainyard.data.audit.context import Context, fmt_values, share
from trainyard.data.audit.report import Finding
from trainyard.data.audit.rows import row_keys
from trainyard.data.schema import _HEX, _UUID, as_numeric

# Strings people write instead of leaving a cell empty (load_table already reads the common ones as missing).
NUMERIC_SENTINELS = (-1, -9, -99, -999, -9999, -99999, 999, 9999, 99999, 999999)
# Quantities that cannot be negative, recognised by their column name.
NON_NEGATIVE_NAME = re.compile(
    r"(^|[_\s.-])(age|ages|count|counts|qty|quantity|price|prices|weight|height|length|width|area|distance|duration|tenure|population"
    r"|income|salary|wage|wages|revenue|fare|fee|fees|rooms|children|dependents)"
    r"($|[_\s.-])",
    re.I,
)
AGE_NAME = re.compile(r"(^|[_\s.-])age($|[_\s.-]|_years)", re.I)


ID_NEAR_UNIQUE = 0.5  # an integer column with distinct values on at least this share of rows ...
ID_NEAR_UNIQUE_DISTINCT = 0.99  # ... and on this share of the distinct rows is an identifier of repeated rows ...
ID_MIN_ROWS = 1000  # ... on a table of this many distinct rows (the schema's rule for unique integers)


def check_missing(ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    cols = [c for c in ctx.df.columns if c != ctx.target]
    rates = ctx.missing_rates()[cols]
    t = ctx.settings.missing_threshold
    light = {}
    for name, rate in rates.items():
        if rate == 1:
            out.append(Finding("missing_values", "warning", f"every value is missing ({ctx.n:,} rows)",
                               "an empty column carries no information.", "drop the column, or fix the export that lost its values.",
                               column=name, score=1.0, data={"missing_rate": 1.0}))
        elif rate > t:
            out.append(Finding("missing_values", "warning", f"{share(rate)} of values are missing (threshold {share(t)})",
                               "a mostly-empty column is weak evidence, and imputing it invents most of its values.",
                               "check why it is missing; if missingness itself means something, keep it (trainyard adds a missing-value indicator), otherwise drop it.",
                               column=name, score=float(rate), data={"missing_rate": float(rate), "missing": int(round(rate * ctx.n))}))
        elif rate > 0:
            light[name] = float(rate)
    if light:
        worst = sorted(light.items(), key=lambda kv: -kv[1])
        listed = ", ".join(f"{k} ({share(v)})" for k, v in worst[:8]) + (f" and {len(worst) - 8} more" if len(worst) > 8 else "")
        out.append(Finding("missing_values", "info", f"{len(light)} column(s) have some missing values: {listed}",
                           "models need a value in every cell.",
                           "nothing: trainyard imputes (median / most frequent, fitted on training rows) and adds missing-value indicators.",
                           score=max(light.values()), data={"missing_rate": light}))
    if cols:
        row_rate = _row_missing_share(ctx, [c for c in cols if rates[c] > 0], len(cols))
        bad = int((row_rate > ctx.settings.row_missing_threshold).sum())
        if bad:
            frac = bad / ctx.n
            out.append(Finding("missing_rows", "warning" if frac >= 0.01 else "info",
                               f"{bad:,} rows ({share(frac)}) are missing more than {share(ctx.settings.row_missing_threshold)} of their fields",
                               "mostly-empty rows are often broken records (a failed join, a truncated export).",
                               "look at a few of them; drop them if they are broken.",
                               score=frac, data={"rows": bad, "share": frac, "examples": ctx.df.index[row_rate > ctx.settings.row_missing_threshold][:10].tolist()}))
    if ctx.target is not None:
        missing_y = int(ctx.df[ctx.target].isna().sum())
        if missing_y:
            out.append(Finding("missing_target", "warning", f"{missing_y:,} rows ({share(missing_y / ctx.n)}) have no value in the target",
                               "rows without a label cannot be learned from or evaluated.",
                               "nothing if expected: trainyard drops them before training; otherwise fix the labels.",
                               column=ctx.target, score=missing_y / ctx.n, data={"rows": missing_y}))
    return out


def _row_missing_share(ctx: Context, with_gaps: list[str], n_columns: int) -> np.ndarray:
    """Share of each row's fields that are missing, counted column by column (no rows x columns matrix)."""
    counts = np.zeros(ctx.n, dtype=np.int32)
    for name in with_gaps:
        counts += ctx.df[name].isna().to_numpy()
    return counts / max(n_columns, 1)


def check_constant(ctx: Context) -> list[Finding]:
    out = []
    for name in ctx.columns(include_special=True):
        s = ctx.df[name]
        n_valid = int(s.notna().sum())
        if n_valid == 0:
            continue  # reported by check_missing
        nunique = _at_most_two_distinct(s, ctx.sample[name])
        if nunique == 1:
            value = s.dropna().iloc[0]
            value = value.item() if hasattr(value, "item") else value
            if n_valid == ctx.n:
                out.append(Finding("constant", "warning", f"constant: every value is {value!r}",
                                   "a column with one value carries no information.",
                                   "nothing: trainyard ignores it; drop it from the export if it is always constant.",
                                   column=name, score=1.0, data={"value": value}))
            else:
                out.append(Finding("constant", "info", f"one value ({value!r}) or missing: only whether it is filled in carries information",
                                   "such a column is really a yes/no flag; trainyard ignores it as constant.",
                                   f"if being filled in matters, add it as a 0/1 column (e.g. has_{name}).",
                                   column=name, score=0.5, data={"value": value, "missing_rate": 1 - n_valid / ctx.n}))
            continue
        top = _top_share(ctx.sample[name], ctx.settings.near_constant)
        if len(top) and top.iloc[0] >= ctx.settings.near_constant:
            out.append(Finding("near_constant", "info", f"near-constant: {share(top.iloc[0])} of rows are {top.index[0]!r}",
                               "a model can barely learn from a column that almost never changes, and a few odd rows can make it look important.",
                               "keep it if the rare values matter (e.g. a fraud flag); otherwise drop it.",
                               column=name, score=float(top.iloc[0]), data={"top_value": top.index[0], "top_share": float(top.iloc[0])},
                               sampled=ctx.sample_note()))
    return out


def _top_share(sample: pd.Series, threshold: float) -> pd.Series:
    """Value shares (most common first) of the sample, or an empty series when its first rows already show that the
    top value is well under `threshold` (counting 200k distinct numbers costs more than the rest of the check)."""
    probe = sample.iloc[:20_000]
    if len(probe) < len(sample):
        top = probe.value_counts(normalize=True, dropna=False)
        if top.empty or top.iloc[0] < threshold - 0.05:
            return top.iloc[:0]
    return sample.value_counts(normalize=True, dropna=False)


def _at_most_two_distinct(s: pd.Series, sample: pd.Series) -> int:
    """1 when the column holds one distinct value, else 2 (cheap: the sample usually settles it)."""
    probe = sample.dropna().iloc[:1000]
    if len(probe) >= 2 and (probe != probe.iloc[0]).any():
        return 2
    if pd.api.types.is_float_dtype(s):
        return 1 if s.min() == s.max() else 2
    return min(int(s.nunique(dropna=True)), 2)


def id_kind(s: pd.Series, sample: pd.Series | None = None) -> str | None:
    """'uuid', 'hash', 'counter' or 'unique key' when a column looks like an identifier, else None.

    `sample` (random rows of the same column) lets a big column be ruled out cheaply: repeats in the sample are
    repeats in the column.
    """
    if pd.api.types.is_bool_dtype(s):
        return None
    if sample is not None and len(sample) < len(s):
        probe = sample.dropna().iloc[:20_000]
        if len(probe) >= 50 and not probe.is_unique:  # repeats: only UUID- or hash-shaped text can still be an id
            if pd.api.types.is_numeric_dtype(probe):
                return None
            return _text_id_kind(probe.iloc[:2000].astype(str).str.strip())
    values = s.dropna()
    n = len(values)
    if n < 20:
        return None
    if pd.api.types.is_numeric_dtype(values):
        x = values.to_numpy(dtype=float)
        if not np.allclose(x, np.round(x)):
            return None
        monotone = _is_monotone(values)
        unique = values.is_unique if monotone or n >= 50 else False
        if monotone and unique:
            return "counter"
        if unique and n >= 50:
            span = float(values.max() - values.min() + 1)
            if span <= 1.5 * n:  # a shuffled run of consecutive integers: a row number
                return "counter"
        return None
    text = values.sample(min(n, 2000), random_state=0).astype(str).str.strip()
    kind = _text_id_kind(text)
    if kind:
        return kind
    if n >= 50 and values.is_unique and text.str.split().str.len().mean() <= 2:
        return "unique key"
    return None


def _text_id_kind(text: pd.Series) -> str | None:
    if text.str.match(_UUID).mean() > 0.9:
        return "uuid"
    if text.str.match(_HEX).mean() > 0.9:
        return "hash"
    return None


def _is_monotone(values: pd.Series) -> bool:
    return bool(len(values) > 1 and (values.is_monotonic_increasing or values.is_monotonic_decreasing))


def _unique_per_distinct_row(ctx: Context, name: str) -> bool:
    """An integer column that repeats only where whole rows repeat: an identifier of a table with duplicated rows
    (a record id or account number unique on 96% of rows because 4% are copies). Judged among distinct rows, with
    the rule schema inference applies to a table without copies: distinct integers on (nearly) every distinct row,
    of at least ID_MIN_ROWS rows or a range no wider than 1.5x their count (a shuffled row number)."""
    s = ctx.df[name]
    if not pd.api.types.is_integer_dtype(s.dtype) or ctx.n < 50:
        return False
    n_unique = ctx.n_unique(name)
    if n_unique < ID_NEAR_UNIQUE * ctx.n or n_unique == ctx.n:  # far from unique, or unique (the other rules judge it)
        return False
    distinct_rows = int(pd.unique(row_keys(ctx)[0]).size)
    if n_unique < ID_NEAR_UNIQUE_DISTINCT * distinct_rows:
        return False
    return distinct_rows >= ID_MIN_ROWS or float(s.max() - s.min() + 1) <= 1.5 * n_unique


def check_id_like(ctx: Context) -> list[Finding]:
    out = []
    for name in ctx.columns(include_special=False):
        if ctx.role(name) in ("text", "datetime"):
            continue
        kind = id_kind(ctx.df[name], ctx.sample[name])
        if kind is None and ctx.role(name) == "id":
            kind = "unique key"  # schema inference called it an identifier (e.g. distinct integers on every row)
        if kind is None and _unique_per_distinct_row(ctx, name):
            kind = "key of repeated rows"
        if kind is None:
            continue
        what = {"uuid": "UUIDs", "hash": "hash-like hex strings", "counter": "a counter or row number (consecutive or ever-increasing integers)",
                "unique key": "a distinct value on every row",
                "key of repeated rows": "a distinct integer on every distinct row (its repeats are copies of whole rows)"}[kind]
        role = ctx.role(name)
        handled = "trainyard ignores it" if role == "id" else f"trainyard currently treats it as {role}: pass --ignore {name}"
        out.append(Finding("id_like", "warning", f"looks like an identifier: {what}",
                           "an identifier says which row it is, not anything about the outcome; a model can only memorise it, "
                           "and a counter can leak the order in which rows were collected.",
                           f"{handled}; keep it only as --group-col if rows of the same entity repeat.",
                           column=name, score=0.5, data={"kind": kind, "role": role}))
    return out


def check_outliers(ctx: Context) -> list[Finding]:
    out = []
    for name in ctx.columns("numeric", include_special=True):
        sample = as_numeric(ctx.sample[name]).dropna()
        if len(sample) < 20 or (sample.iloc[:1000].nunique() <= 2 and sample.nunique() <= 2):
            continue
        values = ctx.numeric(name).dropna()
        out += _impossible_numbers(ctx, name, values, sample)
        out += _extreme_values(ctx, name, values)
    for name in ctx.columns("datetime", include_special=True):
        out += _impossible_dates(ctx, name, ctx.datetimes(name).dropna())
    return out


def _impossible_numbers(ctx: Context, name: str, values: pd.Series, sample: pd.Series) -> list[Finding]:
    out = []
    if AGE_NAME.search(name):
        bad = values[(values < 0) | (values > 120)]
        if 0 < len(bad) <= 0.05 * len(values):  # more than a few: a transformed column (standardised, in days), not errors
            out.append(Finding("impossible_values", "warning", f"{len(bad):,} ages outside 0-120, such as {fmt_values(bad.unique()[:5].tolist())}",
                               "impossible values are data errors; a model takes them at face value.",
                               "fix or blank them at the source.", column=name, score=len(bad) / ctx.n,
                               data={"rows": len(bad), "examples": bad.unique()[:10].tolist()}))
            return out
    if NON_NEGATIVE_NAME.search(name):
        neg = values[values < 0]
        if 0 < len(neg) <= 0.05 * len(values):
            out.append(Finding("impossible_values", "warning", f"{len(neg):,} negative values in a quantity that cannot be negative, such as {fmt_values(neg.unique()[:5].tolist())}",
                               "negative counts, prices or durations are data errors or codes for 'missing'.",
                               "fix them at the source, or blank them so trainyard imputes them.", column=name, score=len(neg) / ctx.n,
                               data={"rows": len(neg), "examples": neg.unique()[:10].tolist()}))
    in_sample = sample.isin(NUMERIC_SENTINELS)
    for sentinel in sample[in_sample].unique():
        c = int((values == sentinel).sum())
        if c < max(3, 0.001 * len(values)):
            continue
        rest = sample[sample != sentinel]
        if rest.empty:
            continue
        lo, hi = rest.quantile(0.001), rest.quantile(0.999)
        span = max(hi - lo, 1e-12)
        if sentinel < lo - 0.5 * span or sentinel > hi + 0.5 * span or (sentinel < 0 <= rest.min()):
            out.append(Finding("sentinel_values", "warning", f"{c:,} rows hold {sentinel}, far outside the other values ({rest.min():g} to {rest.max():g}): a code for 'missing'?",
                               "a placeholder number is taken as a real, extreme measurement.",
                               "replace the code with an empty cell so trainyard imputes it (and adds a missing indicator).",
                               column=name, score=c / ctx.n, data={"value": sentinel, "rows": c}))
    return out


def _extreme_values(ctx: Context, name: str, values: pd.Series) -> list[Finding]:
    z = ctx.robust_z(name, values)  # median and spread from the row sample, distances for every row
    extreme = values[z > 20]
    far = int((z > 6).sum())
    if len(extreme):
        return [Finding("outliers", "warning",
                        f"{len(extreme):,} extreme values far beyond the rest (more than 20 robust standard deviations), such as {fmt_values(extreme.unique()[:5].tolist())}",
                        "values this far out are usually entry errors or unit mistakes; they distort scaling and linear models.",
                        "check them; fix or blank the errors (tree models are robust to the rest).",
                        column=name, score=len(extreme) / ctx.n, data={"extreme_rows": len(extreme), "far_rows": far, "examples": extreme.unique()[:10].tolist(),
                                                                       "median": float(values.median())}, sampled=_spread_note(ctx))]
    if far:
        return [Finding("outliers", "info", f"{far:,} values ({share(far / ctx.n)}) lie more than 6 robust standard deviations from the median",
                        "outliers pull linear models and scaling; trees are robust to them.",
                        "nothing unless they are errors: trainyard scales with the training rows only.",
                        column=name, score=far / ctx.n, data={"far_rows": far}, sampled=_spread_note(ctx))]
    return []


def _spread_note(ctx: Context) -> str | None:
    return f"median and spread from a random sample of {len(ctx.sample):,} of {ctx.n:,} rows; every row counted" if ctx.sampled else None


def _impossible_dates(ctx: Context, name: str, dates: pd.Series) -> list[Finding]:
    if dates.empty:
        return []
    out = []
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    future = dates[dates > now + pd.Timedelta(days=1)]
    if len(future):
        out.append(Finding("impossible_values", "warning", f"{len(future):,} dates in the future (latest {future.max()})",
                           "a record cannot describe something that has not happened yet; these are entry errors or placeholders like 2099-12-31.",
                           "fix or blank them.", column=name, score=len(future) / ctx.n,
                           data={"rows": len(future), "examples": [str(d) for d in future.unique()[:5]]}))
    old = dates[dates < pd.Timestamp("1900-01-01")]
    if len(old):
        out.append(Finding("impossible_values", "warning", f"{len(old):,} dates before 1900 (earliest {old.min()})",
                           "dates this old are usually placeholders (0001-01-01) or entry errors.",
                           "fix or blank them.", column=name, score=len(old) / ctx.n, data={"rows": len(old)}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        epoch = int((dates == pd.Timestamp("1970-01-01")).sum())
    if epoch >= max(3, 0.001 * len(dates)) and dates.nunique() > 10:
        out.append(Finding("sentinel_values", "warning", f"{epoch:,} rows hold 1970-01-01, the zero of Unix time: a code for 'missing'?",
                           "a zero timestamp is a placeholder, not a date.", "blank them at the source.", column=name,
                           score=epoch / ctx.n, data={"rows": epoch}))
    return out
