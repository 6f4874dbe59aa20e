"""Two model versions side by side, from what their evaluations stored.

The evaluation (trainyard.evaluation) keeps, for the held-out test set, every
metric with its bootstrap interval, the reliability curve and ECE, metrics per
sensitive group, and permutation importance. `side_by_side` lines those up for
two versions so the compare page can chart them (categories shared, values
missing where one version has none); it recomputes nothing.
"""

from __future__ import annotations

from typing import Any


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _interval(entry: dict | None) -> tuple[float | None, float | None, float | None]:
    entry = entry or {}
    return _num(entry.get("value")), _num(entry.get("ci_low")), _num(entry.get("ci_high"))


def _spread(value: float | None, std: float | None) -> tuple[float | None, float | None, float | None]:
    if value is None or std is None:
        return value, None, None
    return value, value - std, value + std


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _bars(categories: list[str], per_version: dict[str, dict[str, tuple]]) -> dict[str, Any]:
    """{'categories': [...], 'series': {version: {'value': [...], 'low': [...], 'high': [...]}}} (None where absent)."""
    series = {}
    for label, values in per_version.items():
        rows = [values.get(c, (None, None, None)) for c in categories]
        series[label] = {"value": [r[0] for r in rows], "low": [r[1] for r in rows], "high": [r[2] for r in rows]}
    return {"categories": categories, "series": series}


def _union(lists) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            seen.setdefault(name, None)
    return list(seen)


def metric_charts(evals: dict[str, dict]) -> list[dict[str, Any]]:
    """Test metrics with intervals, one chart for scores within [0, 1] and one per metric on another scale."""
    per = {label: {r["metric"]: _interval(r) for r in _list(e.get("metrics")) if isinstance(r, dict) and "metric" in r}
           for label, e in evals.items()}
    names = _union(per[label].keys() for label in per)

    def unit(name: str) -> bool:
        points = [v for label in per for v in per[label].get(name, ()) if v is not None]
        return bool(points) and all(0.0 <= v <= 1.0 for v in points)

    charts = []
    bounded = [n for n in names if unit(n)]
    if bounded:
        charts.append({"title": "held-out test metrics (0 to 1) with 95% intervals", "key": "unit", **_bars(bounded, per)})
    charts += [{"title": f"held-out test {n} with 95% interval", "key": n, **_bars([n], per)} for n in names if n not in bounded]
    return charts


def calibration(evals: dict[str, dict]) -> dict[str, Any] | None:
    """Per version: the reliability curve's non-empty bins (mean predicted, observed, rows) and the ECE."""
    out = {}
    for label, e in evals.items():
        rel = _dict(_dict(e.get("calibration")).get("reliability"))
        if not rel:
            continue
        points = [(p, o, c) for p, o, c in zip(rel.get("mean_predicted") or [], rel.get("observed") or [], rel.get("count") or [])
                  if p is not None and o is not None]
        out[label] = {"predicted": [p for p, _, _ in points], "observed": [o for _, o, _ in points], "rows": [c for _, _, c in points],
                      "ece": _num(rel.get("ece")), "max_error": _num(rel.get("max_calibration_error")), "kind": rel.get("kind"),
                      "applied": _dict(e.get("calibration")).get("applied")}
    return out or None


def fairness(evals: dict[str, dict]) -> list[dict[str, Any]]:
    """Per sensitive column: each group metric as a chart of groups x versions, plus group sizes and parity gaps."""
    columns: dict[str, dict[str, dict]] = {}
    for label, e in evals.items():
        for col in (_dict(e.get("fairness")).get("columns") or []):
            if isinstance(col, dict) and col.get("column"):
                columns.setdefault(col["column"], {})[label] = col
    return [_fairness_column(column, by_version, evals) for column, by_version in columns.items()]


def _fairness_column(column: str, by_version: dict[str, dict], evals: dict[str, dict]) -> dict[str, Any]:
    """One sensitive column across versions: a chart per group metric, group sizes, parity gaps, flags and notes."""
    groups = _union([g["group"] for g in col.get("groups", [])] for col in by_version.values())
    metric_names = _union(list(g.get("metrics", {})) for col in by_version.values() for g in col.get("groups", []))
    charts = []
    for metric in metric_names:
        per = {label: {g["group"]: _interval(g.get("metrics", {}).get(metric)) for g in col.get("groups", [])}
               for label, col in by_version.items()}
        charts.append({"title": f"{metric} by {column}", "key": f"{column}-{metric}", "metric": metric, **_bars(groups, per)})
    rows = {label: {g["group"]: g.get("rows") for g in col.get("groups", [])} for label, col in by_version.items()}
    small = {g["group"] for col in by_version.values() for g in col.get("groups", []) if g.get("small")}
    gaps = {label: col.get("gaps") or {} for label, col in by_version.items()}
    return {"column": column, "groups": groups, "rows": rows, "small": sorted(small), "charts": charts,
            "gap_names": _union(list(g) for g in gaps.values()), "gaps": gaps,
            "flags": {label: col.get("flags") or [] for label, col in by_version.items()},
            "notes": {label: col.get("note") for label, col in by_version.items() if col.get("note")},
            "missing": [label for label in evals if label not in by_version]}


def importance(evals: dict[str, dict], meta: dict[str, dict], top: int = 20) -> dict[str, Any] | None:
    """Permutation importance (drop in the metric when a column is shuffled, +- its std over repeats), top columns."""
    per, metric = {}, None
    for label, e in evals.items():
        explanations = _dict(e.get("explanations"))
        rows = explanations.get("permutation_importance")
        if rows:
            metric = metric or explanations.get("permutation_metric")
            per[label] = {r["column"]: _spread(_num(r.get("importance")), _num(r.get("std")))
                          for r in rows if isinstance(r, dict) and "column" in r}
        else:  # an artifact that records importances in its metadata instead
            recorded = (meta.get(label) or {}).get("feature_importance")
            if isinstance(recorded, dict) and recorded:
                per[label] = {str(k): (_num(v), None, None) for k, v in recorded.items()}
    if not per:
        return None
    names = _union(per[label].keys() for label in per)
    names.sort(key=lambda n: -max(abs(per[label].get(n, (0,))[0] or 0) for label in per))
    return {"title": f"permutation importance (drop in {metric or 'the metric'} when the column is shuffled; whiskers +-1 std)",
            "key": "importance", "metric": metric, **_bars(names[:top], per)}


def side_by_side(left: dict, right: dict) -> dict[str, Any]:
    """Chart data for two version rows (each with 'version', 'evaluation' (found reports) and 'meta')."""
    labels = (f"v{left['version']}", f"v{right['version']}" + (" (again)" if right["version"] == left["version"] else ""))
    evals = {label: (row.get("evaluation") or {}).get("json") or {} for label, row in zip(labels, (left, right))}
    evals = {label: e for label, e in evals.items() if isinstance(e, dict)}
    meta = {label: row.get("meta") or {} for label, row in zip(labels, (left, right))}
    return {"labels": list(labels), "evaluated": [label for label in labels if _list(evals.get(label, {}).get("metrics"))],
            "metrics": metric_charts(evals), "calibration": calibration(evals), "fairness": fairness(evals),
            "importance": importance(evals, meta)}
