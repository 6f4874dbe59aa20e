"""Fairness per sensitive group: metrics per group with intervals, parity gaps, the four-fifths rule.

Point values come from fairlearn (`MetricFrame`, `demographic_parity_difference`,
`demographic_parity_ratio`, `equalized_odds_difference`); intervals from the
same stratified bootstrap as the headline metrics. Groups smaller than
`min_group` rows are listed but left out of the gaps (their rates are noise).
Numeric sensitive columns with many values are cut into quartiles.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from trainyard.errors import ConfigError, suggest
from trainyard.evaluation.bootstrap import bootstrap_weights, metric_intervals, percentile_interval
from trainyard.evaluation.scored import Scored

BOUNDS = {"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.1, "disparate_impact_ratio": 0.8}
GROUP_METRICS = {"binary": ["accuracy", "recall", "precision", "roc_auc"], "multiclass": ["accuracy", "balanced_accuracy", "f1_macro"],
                 "regression": ["mae", "rmse", "r2"]}
MISSING = "(missing)"


def sensitive_groups(values: pd.Series, max_distinct: int = 12) -> pd.Series:
    """Group labels as strings; numbers with many distinct values become quartile ranges."""
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique() > max_distinct:
        s = pd.qcut(s, 4, duplicates="drop").astype(str)
        return s.where(s != "nan", MISSING)
    return s.astype(object).where(s.notna(), MISSING).astype(str)


def check_sensitive(columns: list[str], available) -> None:
    for c in columns:
        if c not in available:
            raise ConfigError(f"Sensitive column '{c}' is not in the data.", suggest(c, available))


def fairness_report(scored: Scored, groups: pd.Series, column: str, *, min_group: int = 20, n_boot: int = 1000,
                    seed: int = 0, confidence: float = 0.95) -> dict:
    """Everything about one sensitive column."""
    from fairlearn.metrics import MetricFrame, selection_rate

    g = sensitive_groups(groups).to_numpy()
    names = GROUP_METRICS[scored.task.value]
    per_group = []
    for value in sorted(set(g)):
        rows = np.flatnonzero(g == value)
        sub = scored.subset(rows)
        entry = {"group": value, "rows": int(len(rows)), "small": bool(len(rows) < min_group)}
        intervals = metric_intervals(sub, names, n_boot=n_boot, seed=seed, confidence=confidence) if len(rows) >= 2 else []
        entry["metrics"] = {r["metric"]: {"value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]} for r in intervals}
        per_group.append(entry)
    out = {"column": column, "min_group": min_group, "groups": per_group, "flags": []}
    big = np.isin(g, [e["group"] for e in per_group if not e["small"]])
    if big.sum() == 0 or len({e["group"] for e in per_group if not e["small"]}) < 2:
        out["note"] = f"fewer than two groups with at least {min_group} rows: no gaps computed"
        return out
    y, pred, gb = scored.y[big], scored.pred[big], g[big]
    if scored.task.value == "binary":
        frame = MetricFrame(metrics={"selection_rate": selection_rate}, y_true=y, y_pred=pred, sensitive_features=gb)
        for e in per_group:
            if not e["small"]:
                e["selection_rate"] = float(frame.by_group.loc[e["group"], "selection_rate"])
        out["gaps"] = _binary_gaps(y, pred, gb, n_boot=n_boot, seed=seed, confidence=confidence)
        for name, gap in out["gaps"].items():
            bound = BOUNDS[name]
            bad = gap["value"] < bound if name == "disparate_impact_ratio" else gap["value"] > bound
            beyond = gap["ci_high"] < bound if name == "disparate_impact_ratio" else gap["ci_low"] > bound
            gap.update(bound=bound, flagged=bool(bad), clear=bool(bad and beyond))
            if bad:
                out["flags"].append(_flag_text(column, name, gap))
    elif scored.task.value == "regression":
        maes = {e["group"]: e["metrics"]["mae"]["value"] for e in per_group if not e["small"] and "mae" in e["metrics"]}
        worst, best = max(maes, key=maes.get), min(maes, key=maes.get)
        ratio = maes[worst] / maes[best] if maes[best] > 0 else float("inf")
        out["gaps"] = {"mae_ratio": {"value": float(ratio), "worst_group": worst, "best_group": best, "bound": 1.25, "flagged": bool(ratio > 1.25)}}
        if ratio > 1.25:
            out["flags"].append(f"{column}: mean absolute error is {ratio:.2f}x larger for '{worst}' than for '{best}' (bound 1.25x)")
    else:
        out["note"] = "parity gaps are computed for binary tasks; per-group metrics above"
    return out


def _binary_gaps(y, pred, g, *, n_boot, seed, confidence) -> dict:
    """Demographic parity difference and ratio, equalised odds difference: fairlearn's values, bootstrap CIs."""
    from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference

    values = {
        "demographic_parity_difference": float(demographic_parity_difference(y, pred, sensitive_features=g)),
        "equalized_odds_difference": float(equalized_odds_difference(y, pred, sensitive_features=g)),
        "disparate_impact_ratio": float(demographic_parity_ratio(y, pred, sensitive_features=g)),
    }
    levels = np.unique(g)
    strata = np.unique(np.char.add(g.astype(str), np.char.add("|", y.astype(str))), return_inverse=True)[1]
    samples = {k: [] for k in values}
    with warnings.catch_warnings():  # a resample can leave a group without positives: NaN rates are skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        _bootstrap_gaps(samples, pred, y, g, levels, strata, n_boot, seed)
    out = {}
    for k, v in values.items():
        lo, hi = percentile_interval(np.concatenate(samples[k]), confidence)
        out[k] = {"value": v, "ci_low": lo, "ci_high": hi}
    return out


def _bootstrap_gaps(samples, pred, y, g, levels, strata, n_boot, seed) -> None:
    """Append each resample's parity gaps to `samples` (same definitions as fairlearn's, under weights)."""
    pos, yes = (pred == 1).astype(float), y == 1
    for W in bootstrap_weights(len(y), n_boot, seed, strata):
        sr = np.stack([_rate(W, pos, g == v) for v in levels])
        tpr = np.stack([_rate(W, pos, (g == v) & yes) for v in levels])
        fpr = np.stack([_rate(W, pos, (g == v) & ~yes) for v in levels])
        samples["demographic_parity_difference"].append(np.nanmax(sr, 0) - np.nanmin(sr, 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            samples["disparate_impact_ratio"].append(np.nanmin(sr, 0) / np.nanmax(sr, 0))
        samples["equalized_odds_difference"].append(np.maximum(np.nanmax(tpr, 0) - np.nanmin(tpr, 0), np.nanmax(fpr, 0) - np.nanmin(fpr, 0)))


def _rate(W, event, member):
    den = W @ member
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (W @ (event * member)) / den, np.nan)


def _flag_text(column, name, gap) -> str:
    readable = {"demographic_parity_difference": "positive-prediction rates differ between groups by",
                "equalized_odds_difference": "true/false positive rates differ between groups by",
                "disparate_impact_ratio": "the lowest group's positive-prediction rate is this share of the highest's:"}[name]
    rule = "four-fifths rule: at least 0.8" if name == "disparate_impact_ratio" else f"bound {gap['bound']}"
    sure = "the whole interval is out of bounds" if gap.get("clear") else "the interval reaches back inside the bound: more data would tell"
    return f"{column}: {readable} {gap['value']:.3f} (95% CI {gap['ci_low']:.3f} to {gap['ci_high']:.3f}; {rule}; {sure})"
