"""Drift statistics computed from counts alone (reference profile vs a window counted on the same layout).

Numeric: population stability index over ~10 reference-equal-mass groups plus a missing bin, and the
Kolmogorov-Smirnov distance between the two distribution functions at the reference percentiles (the
exact KS distance evaluated on the percentile grid, so never larger than the exact one). Categorical: PSI,
Jensen-Shannon distance (base 2, in [0, 1]) and a chi-square test over categories + unseen + missing.
Missing rates: a two-proportion z-test.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as st
from scipy.spatial.distance import jensenshannon

PSI_GROUPS = 10
EPS = 1e-4


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    p = np.maximum(ref / max(ref.sum(), 1), EPS)
    q = np.maximum(cur / max(cur.sum(), 1), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def chi2_pvalue(ref: np.ndarray, cur: np.ndarray) -> float:
    table = np.vstack([ref, cur]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(st.chi2_contingency(table, correction=False).pvalue)


def equal_mass_groups(ref_counts: np.ndarray, groups: int = PSI_GROUPS) -> np.ndarray:
    """Group index (0, 1, ... without gaps) of every bin so that each group holds about 1/groups of the reference."""
    total = max(ref_counts.sum(), 1)
    middle = (np.cumsum(ref_counts) - ref_counts / 2) / total
    return np.unique(np.minimum((middle * groups).astype(int), groups - 1), return_inverse=True)[1]


def grouped(counts: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.bincount(groups, weights=counts, minlength=groups.max() + 1)


def ks(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """(distance, p-value) between the distribution functions of two binned samples."""
    n, m = ref.sum(), cur.sum()
    if n == 0 or m == 0:
        return 0.0, 1.0
    d = float(np.max(np.abs(np.cumsum(ref) / n - np.cumsum(cur) / m)))
    n_eff = n * m / (n + m)
    return d, float(st.kstwobign.sf(d * np.sqrt(n_eff)))


def js_distance(ref: np.ndarray, cur: np.ndarray) -> float:
    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    value = float(jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2))
    return 0.0 if np.isnan(value) else value


def proportion_pvalue(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided two-proportion z-test."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k2 / n2 - k1 / n1) / se
    return float(2 * st.norm.sf(abs(z)))


def moments(col: dict) -> tuple[float | None, float | None]:
    """(mean, std) of a numeric column's non-missing values from its sums."""
    k = col["n"] - col["missing"]
    if k <= 0 or col.get("sum") is None:
        return None, None
    mean = col["sum"] / k
    var = max(col["sumsq"] / k - mean * mean, 0.0)
    return mean, float(np.sqrt(var))


def _quartiles(counts: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """First and third quartiles interpolated in the cumulative counts at the bin edges (clamped to them)."""
    cum = np.cumsum(counts)[: len(edges)] / counts.sum()
    return float(np.interp(0.25, cum, edges)), float(np.interp(0.75, cum, edges))


def spread_ratio(rc: np.ndarray, cc: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """How much the spread changed, robustly: the current interquartile range over the reference's, and the p-value of the share of values inside the reference's central
    half moving (a two-proportion test on counts; a pure shift moves it too, but leaves the ratio near 1).
    (1.0, 1.0) when undefined (too few edges, a constant column)."""
    if len(edges) < 4 or rc.sum() == 0 or cc.sum() == 0:
        return 1.0, 1.0
    r25, r75 = _quartiles(rc, edges)
    c25, c75 = _quartiles(cc, edges)
    if r75 <= r25 or c75 <= c25:
        return 1.0, 1.0
    ratio = (c75 - c25) / (r75 - r25)
    cum = np.cumsum(rc)[: len(edges)] / rc.sum()
    lo, hi = int(np.argmin(np.abs(cum - 0.25))), int(np.argmin(np.abs(cum - 0.75)))
    inside_r, inside_c = int(rc[lo + 1: hi + 1].sum()), int(cc[lo + 1: hi + 1].sum())
    p = proportion_pvalue(inside_r, int(rc.sum()), inside_c, int(cc.sum()))
    return float(ratio), p


def domain_auc_pvalue(auc: float, n_ref: int, n_cur: int) -> float:
    """One-sided p-value of an AUC this high if both samples came from one distribution (Mann-Whitney normal approximation)."""
    if n_ref == 0 or n_cur == 0:
        return 1.0
    se = np.sqrt((n_ref + n_cur + 1) / (12 * n_ref * n_cur))
    return float(st.norm.sf((auc - 0.5) / se))
