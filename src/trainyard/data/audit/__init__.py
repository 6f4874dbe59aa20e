"""The data audit: find the garbage before it becomes a garbage model.

    report = audit(df, target="churn", sensitive=["sex"])
    report.blocking; report.to_html()

Each check is a function `check(ctx) -> list[Finding]` in CHECKS; heavy checks
(leakage, label noise, near duplicates) work on samples and say so in their
findings. `compare_splits(train, test)` checks a train/test pair.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from trainyard.data.audit.columns import check_constant, check_id_like, check_missing, check_outliers
from trainyard.data.audit.context import Context, Settings, build_context
from trainyard.data.audit.noise import check_label_noise, check_poisoning
from trainyard.data.audit.relative import check_leakage_relative
from trainyard.data.audit.report import AuditReport, Finding, SEVERITIES
from trainyard.data.audit.rows import check_duplicates, check_near_duplicates
from trainyard.data.audit.splits import compare_splits
from trainyard.data.audit.types import check_types
from trainyard.data.load import load_table
from trainyard.errors import ConfigError, DataError, suggest
from trainyard.tasks import infer_task, parse_task
from trainyard.data.audit.target import (
    association,
    check_class_balance,
    check_sensitive,
    class_weight_for,
)

__all__ = ["audit", "compare_splits", "AuditReport", "Finding", "Settings", "CHECKS", "SEVERITIES", "class_weight_for"]

# In the order they run: what blocks training and costs little first, the model-based checks last (a time-bounded
# audit skips from the end, and says which it skipped).
CHECKS = {
    "missing": check_missing,
    "constant": check_constant,
    "id_like": check_id_like,
    "class_balance": check_class_balance,
    "leakage": check_leakage_relative,
    "duplicates": check_duplicates,
    "types": check_types,
    "sensitive": check_sensitive,
    "outliers": check_outliers,
    "near_duplicates": check_near_duplicates,
    "label_noise": check_label_noise,
    "poisoning": check_poisoning,
}
HEAVY = {"near_duplicates", "label_noise", "poisoning"}  # skipped once half of a time-bounded audit's seconds are spent


def audit(
    data,
    target: str | None = None,
    sensitive=(),
    time_col: str | None = None,
    group_col: str | None = None,
    *,
    task: str | None = None,
    roles: dict[str, str] | None = None,
    test=None,
    split_col: str | None = None,
    checks=None,
    settings: Settings | None = None,
    **options,
) -> AuditReport:
    """Audit a table (a DataFrame or a path) and return ranked findings.

    `sensitive` names columns whose groups are counted and compared; `time_col` / `group_col` are left out of the
    feature checks (and shape the shift findings); `test` (a table) is checked against `data` for shared rows and
    shift; `split_col` names a column that says which split each row belongs to (rows marked train/training, or
    else the most common value, are compared with each other value); `checks` limits which checks run (names in CHECKS); `options` override Settings fields
    (e.g. missing_threshold=0.3, label_noise=False).
    """
    df = load_table(data)
    settings = _settings(settings, options)
    sensitive = [sensitive] if isinstance(sensitive, str) else list(sensitive or ())
    _check_columns(df, target, sensitive, time_col, group_col, split_col)
    _check_target_column(df, target)
    roles = {**(roles or {}), **({split_col: "ignore"} if split_col else {})} or None
    names = list(CHECKS) if checks is None else list(checks)
    for name in names:
        if name not in CHECKS:
            raise ConfigError(f"'{name}' is not an audit check.", suggest(name, CHECKS))
    started = time.perf_counter()
    inferred_task, notes = _target_task(df, target, task)
    ctx = build_context(df, target, inferred_task, sensitive, time_col, group_col, settings, roles)
    timings = {"setup": time.perf_counter() - started}
    findings = notes + _run_checks(ctx, names, timings, settings.max_seconds)
    if test is not None:
        t0 = time.perf_counter()
        test_df = load_table(test)
        roles_map = {c.name: c.role for c in ctx.schema.columns}
        features = [c for c in ctx.columns() if c in test_df.columns and roles_map[c] not in ("id", "ignore")]
        findings += compare_splits(df, test_df, target, columns=features, roles=roles_map,
                                   expected_shift=f"split by time on '{time_col}'" if time_col else None, seed=settings.seed)
        timings["splits"] = time.perf_counter() - t0
    if split_col is not None:
        t0 = time.perf_counter()
        findings += _compare_split_column(ctx, split_col, settings.seed)
        timings["splits"] = timings.get("splits", 0) + time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    return AuditReport(len(df), df.shape[1], target, inferred_task.value if inferred_task else None, findings,
                       columns=_profile(ctx), plots=_plots(ctx), timings={k: round(v, 3) for k, v in timings.items()},
                       settings={"sensitive": sensitive, "time_col": time_col, "group_col": group_col,
                                 "checks": names, "sampled_rows": len(ctx.sample), **settings.__dict__})


def _settings(settings: Settings | None, options: dict) -> Settings:
    """The audit's settings with the caller's overrides (names checked)."""
    settings = settings or Settings()
    unknown = set(options) - set(Settings.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"Unknown audit option(s): {', '.join(sorted(unknown))}.", suggest(sorted(unknown)[0], Settings.__dataclass_fields__))
    for k, v in options.items():
        setattr(settings, k, v)
    return settings


def _check_target_column(df: pd.DataFrame, target: str | None) -> None:
    if target is not None and df[target].notna().sum() == 0:
        raise DataError(f"Target column '{target}' is empty (every value is missing).",
                        "pick the column that holds the outcome (`trainyard audit DATA` without --target audits the columns alone).")
    if target is not None and df.shape[1] == 1:
        raise DataError(f"The table has only one column, the target '{target}': there are no features to audit.",
                        "check the file's delimiter, or pass the table that holds the feature columns too.")


def _target_task(df: pd.DataFrame, target: str | None, task: str | None) -> tuple[object, list[Finding]]:
    """The task the target implies (None when it cannot be told) and findings about the target itself."""
    inferred_task, notes = None, []
    if target is None:
        return None, notes
    try:
        labelled = df[target].dropna()
        inferred_task = parse_task(task) or (infer_task(df[target]) if labelled.nunique() >= 2 else None)
    except DataError as exc:
        notes.append(Finding("target", "warning", exc.problem, "the task cannot be inferred, so target checks are skipped.", exc.fix, column=target))
    if df[target].notna().sum() and df[target].nunique(dropna=True) < 2:
        notes.append(Finding("target", "blocking", f"the target has a single value ({df[target].dropna().iloc[0]!r})",
                             "there is nothing to learn.", "check the target column, or add rows of the other class(es).", column=target))
    return inferred_task, notes


def _run_checks(ctx, names: list[str], timings: dict, max_seconds: float | None = None) -> list[Finding]:
    """Each check's findings; a check that breaks is reported as such, never hiding the others. With `max_seconds`,
    heavy checks are skipped once half of it is spent and every check once all of it is, in one finding that names them."""
    findings, skipped, started = [], [], time.perf_counter()
    for name in sorted(names, key=list(CHECKS).index):
        spent = time.perf_counter() - started
        if max_seconds is not None and (spent > max_seconds or (name in HEAVY and spent > max_seconds / 2)):
            skipped.append(name)
            continue
        t0 = time.perf_counter()
        try:
            findings += CHECKS[name](ctx)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("TRAINYARD_DEBUG") == "1":
                raise
            findings.append(Finding("check_error", "info", f"the {name} check could not run: {type(exc).__name__}: {exc}"[:300],
                                    "this part of the audit is missing.", "rerun with TRAINYARD_DEBUG=1 for the traceback and please report it."))
        timings[name] = time.perf_counter() - t0
    if skipped:
        findings.append(Finding("skipped_checks", "info", f"the audit's {max_seconds:.1f}s share of the run's time was spent; not run: {', '.join(skipped)}",
                                "problems those checks look for (e.g. mislabelled rows) may be present.",
                                "run `trainyard audit DATA --target COL` for the whole audit, or give the run more --time-limit.",
                                data={"checks": skipped, "max_seconds": max_seconds}))
    return findings


def _check_columns(df: pd.DataFrame, target, sensitive, time_col, group_col, split_col=None) -> None:
    if target is not None and target not in df.columns:
        raise DataError(f"Target column '{target}' is not in the data.", suggest(target, df.columns))
    for flag, cols in (("--sensitive", sensitive), ("--time-col", [time_col] if time_col else []), ("--group-col", [group_col] if group_col else []),
                       ("--split-col", [split_col] if split_col else [])):
        for c in cols:
            if c not in df.columns:
                raise ConfigError(f"Column '{c}' (given with {flag}) is not in the data.", suggest(c, df.columns))
            if c == target:
                raise ConfigError(f"'{c}' is the target; it cannot also be given with {flag}.", f"pass another column to {flag}.")


TRAIN_NAMES = {"train", "training", "fit", "learn"}


def _compare_split_column(ctx: Context, split_col: str, seed: int) -> list[Finding]:
    marks = ctx.df[split_col].astype("string").str.strip().str.lower()
    values = marks.value_counts()
    if len(values) < 2:
        return []
    train_value = next((v for v in values.index if v in TRAIN_NAMES), values.index[0])
    roles = {c.name: c.role for c in ctx.schema.columns}
    features = [c for c in ctx.columns() if c != split_col and roles[c] not in ("id", "ignore")]
    train = ctx.df[(marks == train_value).to_numpy()]
    out = []
    for other in values.index:
        if other == train_value:
            continue
        found = compare_splits(train, ctx.df[(marks == other).to_numpy()], ctx.target, columns=features, roles=roles,
                               expected_shift=f"split by time on '{ctx.time_col}'" if ctx.time_col else None, seed=seed)
        for f in found:
            f.what = f"'{other}' vs '{train_value}' rows: {f.what}"
            f.data["split"] = {"train": train_value, "other": other, "column": split_col}
        out += found
    return out


def _profile(ctx: Context) -> list[dict]:
    missing = ctx.missing_rates()
    return [{"name": c.name, "role": c.role, "dtype": c.dtype, "missing_rate": float(missing[c.name]), "distinct": c.n_unique,
             "reason": c.reason} for c in ctx.schema.columns]


def _plots(ctx: Context) -> dict:
    plots: dict = {"missing": {c: float(r) for c, r in ctx.missing_rates().items() if r > 0}}
    if ctx.target is not None and ctx.task is not None:
        y = ctx.df[ctx.target].dropna()
        if ctx.task.is_classification:
            plots["class_balance"] = {str(k): int(v) for k, v in y.astype(str).value_counts().head(30).items()}
        else:
            plots["target"] = _histogram(pd.to_numeric(ctx.sample[ctx.target], errors="coerce").dropna())
        scores = ctx.cache.get("association") or {}
        plots["association"] = {"measure": "balanced accuracy" if ctx.task.is_classification else "R^2",
                                "scores": {k: v["score"] for k, v in sorted(scores.items(), key=lambda kv: -kv[1]["score"])}}
    dists = {}
    for c in ctx.schema.columns[:40]:
        s = ctx.sample[c.name]
        if c.role == "numeric":
            dists[c.name] = _histogram(pd.to_numeric(s, errors="coerce").dropna() if not pd.api.types.is_numeric_dtype(s) else s.dropna())
        elif c.role in ("categorical", "boolean", "target") and not (c.role == "target" and ctx.task is not None and not ctx.task.is_classification):
            vc = s.astype("string").fillna("<missing>").value_counts().head(12)
            dists[c.name] = {"kind": "categorical", "labels": [str(k) for k in vc.index], "counts": [int(v) for v in vc]}
    plots["distributions"] = dists
    return plots


def _histogram(values: pd.Series, bins: int = 20) -> dict:
    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"kind": "numeric", "edges": [], "counts": []}
    lo, hi = np.percentile(x, [0.5, 99.5]) if len(x) > 200 else (x.min(), x.max())
    if hi <= lo:
        lo, hi = x.min(), x.max() + 1e-9
    counts, edges = np.histogram(np.clip(x, lo, hi), bins=bins, range=(lo, hi))
    return {"kind": "numeric", "edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
