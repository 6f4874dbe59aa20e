"""Per-feature and prediction drift: compare counts of a window with the reference profile, with thresholds.

A column is flagged only when the change is both large (an effect size past its threshold) and unlikely to
be chance (p-value under `alpha` divided by the number of columns tested, Bonferroni): large samples make
every tiny change "significant", small samples make noise look large, and the pair of conditions keeps
both from raising false alarms. Levels are ok < warn < drift; exit codes 0 / 1 / 2 follow them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from trainyard.data.profile import count_frame
from trainyard.errors import ConfigError, suggest
from trainyard.monitor import stats

LEVELS = {"ok": 0, "warn": 1, "drift": 2}


@dataclass(frozen=True)
class Thresholds:
    psi_warn: float = 0.1
    psi_drift: float = 0.2
    ks_warn: float = 0.05
    ks_drift: float = 0.1
    js_warn: float = 0.05
    js_drift: float = 0.1
    spread_warn: float = 1.2  # interquartile range grown or shrunk by this factor (either way), whatever the mean
    spread_drift: float = 1.4
    missing_warn: float = 0.02  # absolute change in the share of missing values
    missing_drift: float = 0.05
    new_warn: float = 0.01  # share of rows with a category the reference never had
    new_drift: float = 0.05
    domain_auc_warn: float = 0.6
    domain_auc_drift: float = 0.7
    alpha: float = 0.05  # family-wise: divided by the number of columns tested

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, items: list[str] | None) -> "Thresholds":
        """From 'name=value' strings (the CLI's --threshold)."""
        known = {f.name for f in fields(cls)}
        values = {}
        for item in items or []:
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in known:
                raise ConfigError(f"'{item}' is not a threshold setting.", "write NAME=VALUE; " + suggest(key, sorted(known)))
            try:
                values[key] = float(value)
            except ValueError:
                raise ConfigError(f"Threshold {key} must be a number, got '{value}'.", f"e.g. --threshold {key}=0.2.") from None
        return cls(**values)


def worst(levels) -> str:
    return max(levels, key=LEVELS.__getitem__, default="ok")


def layout(columns: dict[str, dict]) -> dict[str, dict]:
    return {n: {k: c[k] for k in ("kind", "edges", "categories") if k in c} for n, c in columns.items()}


def compare_profiles(reference: dict[str, dict], current: dict[str, dict], th: Thresholds, n_tests: int | None = None) -> list[dict]:
    """One result per column, worst first."""
    alpha = th.alpha / max(n_tests or len(reference), 1)
    out = [compare_column(name, reference[name], current[name], th, alpha) for name in reference if name in current]
    return sorted(out, key=lambda r: (-LEVELS.get(r["status"], -1), -(r.get("score") or 0.0)))


def compare_column(name: str, ref: dict, cur: dict, th: Thresholds, alpha: float) -> dict:
    kind = ref["kind"]
    n_r, n_c = ref["n"], cur["n"]
    out: dict = {"column": name, "kind": kind, "n_reference": n_r, "n_current": n_c,
                 "missing_reference": ref["missing"] / n_r if n_r else None,
                 "missing_current": cur["missing"] / n_c if n_c else None}
    if n_c == 0 or n_r == 0:
        return out | {"status": "ok", "score": 0.0, "reasons": ["no rows in the window"]}
    findings: list[tuple[str, str]] = []
    if kind == "categorical":
        _categorical(ref, cur, th, alpha, out, findings)
    else:
        _numeric(ref, cur, th, alpha, out, findings)
    k_r, k_c = ref["missing"], cur["missing"]
    change = k_c / n_c - k_r / n_r
    p_missing = stats.proportion_pvalue(k_r, n_r, k_c, n_c)
    out["missing_p_value"] = p_missing
    if p_missing < alpha and abs(change) >= th.missing_warn:
        level = "drift" if abs(change) >= th.missing_drift else "warn"
        findings.append((level, f"missing {k_r / n_r:.1%} -> {k_c / n_c:.1%}"))
    out["status"] = worst(level for level, _ in findings)
    out["reasons"] = [reason for _, reason in findings]
    return out


def _level(effects: list[tuple[float, float, float, float]], alpha: float) -> str:
    """Worst level over (value, warn threshold, drift threshold, p-value) tuples."""
    level = "ok"
    for value, warn, drift, p in effects:
        if p < alpha and value >= drift:
            return "drift"
        if p < alpha and value >= warn:
            level = "warn"
    return level


def _numeric(ref: dict, cur: dict, th: Thresholds, alpha: float, out: dict, findings: list) -> None:
    rc, cc = np.asarray(ref["counts"], float), np.asarray(cur["counts"], float)
    if cc.sum() == 0:
        out.update(score=0.0)
        return
    groups = stats.equal_mass_groups(rc)
    r_psi, c_psi = stats.grouped(rc, groups), stats.grouped(cc, groups)
    value_psi = stats.psi(r_psi, c_psi)
    p_psi = stats.chi2_pvalue(r_psi, c_psi)
    d, p_ks = stats.ks(rc, cc)
    mean_r, std_r = stats.moments(ref)
    mean_c, std_c = stats.moments(cur)
    shift = (mean_c - mean_r) / std_r if std_r else None
    edges = np.asarray(ref["edges"], float)
    iqr_ratio, p_spread = stats.spread_ratio(rc, cc, edges)
    spread = max(iqr_ratio, 1 / iqr_ratio)
    upper = [edges[min(np.flatnonzero(groups == g).max(), len(edges) - 1)] for g in np.unique(groups)]
    out["histogram"] = {"labels": [f"<= {u:.4g}" for u in upper[:-1]] + [f"> {upper[-2]:.4g}" if len(upper) > 1 else "all"],
                        "reference": (r_psi / r_psi.sum()).tolist(), "current": (c_psi / c_psi.sum()).tolist()}
    out.update(psi=value_psi, psi_p_value=p_psi, ks=d, ks_p_value=p_ks, p_value=min(p_ks, p_psi), mean_reference=mean_r,
               mean_current=mean_c, std_reference=std_r, std_current=std_c, shift_std=shift,
               spread_ratio=iqr_ratio, spread_p_value=p_spread,
               score=max(value_psi / th.psi_drift, d / th.ks_drift, spread / th.spread_drift))
    level = _level([(d, th.ks_warn, th.ks_drift, p_ks), (value_psi, th.psi_warn, th.psi_drift, p_psi),
                    (spread, th.spread_warn, th.spread_drift, p_spread)], alpha)
    if level != "ok":
        moved = f", mean {mean_r:.4g} -> {mean_c:.4g}" + (f" ({shift:+.2f} sd)" if shift is not None else "")
        if spread >= th.spread_warn and p_spread < alpha:
            moved += f", spread x{spread:.2f} (interquartile range {'grew' if iqr_ratio > 1 else 'shrank'})"
        findings.append((level, f"distribution changed: KS {d:.3f}, PSI {value_psi:.3f}{moved}"))


def _categorical(ref: dict, cur: dict, th: Thresholds, alpha: float, out: dict, findings: list) -> None:
    rc = np.append(np.asarray(ref["counts"], float), ref["unseen"])
    cc = np.append(np.asarray(cur["counts"], float), cur["unseen"])
    if cc.sum() == 0:
        out.update(score=0.0)
        return
    value_psi, js, p = stats.psi(rc, cc), stats.js_distance(rc, cc), stats.chi2_pvalue(rc, cc)
    n_r, n_c = rc.sum(), cc.sum()
    cats = list(ref["categories"]) + ["(new)" if ref["unseen"] == 0 else "(other)"]
    shown = np.argsort(-(rc / n_r + cc / n_c))[:12]
    out["histogram"] = {"labels": [cats[i] for i in shown], "reference": (rc[shown] / n_r).tolist(), "current": (cc[shown] / n_c).tolist()}
    out.update(psi=value_psi, js=js, chi2_p_value=p, p_value=p, score=max(value_psi / th.psi_drift, js / th.js_drift))
    level = _level([(js, th.js_warn, th.js_drift, p), (value_psi, th.psi_warn, th.psi_drift, p)], alpha)
    if level != "ok":
        change = cc / n_c - rc / n_r
        top = np.argsort(-np.abs(change))[:3]
        moved = ", ".join(f"{cats[i]} {rc[i] / n_r:.1%} -> {cc[i] / n_c:.1%}" for i in top if change[i] != 0)
        findings.append((level, f"category shares changed: JS {js:.3f}, PSI {value_psi:.3f} ({moved})"))
    complete = ref["unseen"] == 0
    if complete and cur["unseen"]:
        share = cur["unseen"] / n_c
        # chance that every one of these rows fell in the window if the values were as likely in the reference
        p_new = float(np.exp(cur["unseen"] * np.log(n_c / (n_r + n_c))))
        out.update(new_share=share, new_values=cur["unseen_values"])
        examples = ", ".join(f"{k!r} ({v})" for k, v in list(cur["unseen_values"].items())[:5])
        level = _level([(share, th.new_warn, th.new_drift, p_new)], alpha)
        if level != "ok":
            findings.append((level, f"new categories in {share:.1%} of rows: {examples}"))
        out["score"] = max(out["score"], share / th.new_drift)


def feature_drift(profile: dict, current, th: Thresholds = Thresholds()) -> list[dict]:
    """Per-feature drift of a DataFrame (or iterable of chunks) against a profile's feature columns."""
    counted = count_frame(layout(profile["columns"]), current)
    return compare_profiles(profile["columns"], counted, th)


def prediction_drift(profile: dict, predictions, th: Thresholds = Thresholds()) -> list[dict]:
    ref = (profile.get("predictions") or {}).get("columns") or {}
    ref = {n: c for n, c in ref.items() if n in predictions.columns}
    if not ref or predictions is None or len(predictions) == 0:
        return []
    return compare_profiles(ref, count_frame(layout(ref), predictions), th)


def status_of(features: list[dict], predictions: list[dict], domain: dict | None) -> str:
    return worst([r["status"] for r in features + predictions] + ([domain["status"]] if domain else []))
