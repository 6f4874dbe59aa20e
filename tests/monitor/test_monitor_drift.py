"""Drift detection on planted shifts: found, attributed to the right columns, and silent on a random resplit."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from trainyard.data.binning import Binner, quantile_edges
from trainyard.monitor.domain import domain_check
from trainyard.monitor.drift import Thresholds, feature_drift
from trainyard.data.profile import monitored_frame, profile_frame

KINDS = {"a": "numeric", "b": "numeric", "c": "numeric", "d": "numeric", "plan": "categorical", "region": "categorical"}


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "a": rng.normal(0, 1, n), "b": rng.normal(10, 3, n), "c": rng.exponential(2.0, n), "d": rng.integers(0, 20, n).astype(float),
        "plan": rng.choice(["monthly", "yearly", "two-year"], n, p=[0.5, 0.3, 0.2]),
        "region": rng.choice(["north", "south", "east", "west"], n),
    })
    df.loc[rng.random(n) < 0.05, "b"] = np.nan
    return df


@pytest.fixture(scope="module")
def halves():
    df = table(8000, 0)
    ref = df.sample(frac=0.5, random_state=1)
    return ref, df.drop(ref.index)


@pytest.fixture(scope="module")
def profile(halves):
    return {"columns": profile_frame(halves[0], KINDS)}


def flagged(results) -> dict[str, str]:
    return {r["column"]: r["status"] for r in results if r["status"] != "ok"}


def test_binner_counts_exactly_like_searchsorted():
    rng = np.random.default_rng(3)
    cases = [rng.standard_normal(200_000).astype(np.float32), np.exp(rng.normal(0, 3, 100_000)),
             rng.integers(0, 12, 100_000).astype(float), np.where(rng.random(100_000) < 0.2, np.nan, rng.normal(5, 2, 100_000))]
    for x in cases:
        edges = quantile_edges(x[:20_000])
        counts, missing = Binner(edges).count(x)
        expected = np.bincount(np.searchsorted(edges.astype(x.dtype), x), minlength=len(edges) + 1)
        expected[-1] -= np.isnan(x).sum()
        assert missing == np.isnan(x).sum()
        np.testing.assert_array_equal(counts, expected)


def test_random_resplit_raises_no_alarm(halves, profile):
    assert flagged(feature_drift(profile, halves[1])) == {}
    dom = domain_check(monitored_frame(halves[0], KINDS), monitored_frame(halves[1], KINDS), KINDS, Thresholds())
    assert dom["status"] == "ok" and dom["auc"] < 0.6


def test_small_resplits_stay_quiet():
    """Small windows are noisy; the significance gate keeps them from alarming."""
    alarms = 0
    for seed in range(10):
        df = table(600, 100 + seed)
        ref = df.sample(frac=0.5, random_state=seed)
        alarms += bool(flagged(feature_drift({"columns": profile_frame(ref, KINDS)}, df.drop(ref.index))))
    assert alarms <= 1


def test_mean_shift_is_found_in_that_column_only(halves, profile):
    cur = halves[1].copy()
    cur["b"] = cur["b"] + 0.6 * 3
    results = feature_drift(profile, cur)
    assert flagged(results) == {"b": "drift"}
    b = next(r for r in results if r["column"] == "b")
    assert b["shift_std"] == pytest.approx(0.6, abs=0.1) and "distribution changed" in b["reasons"][0]


def test_new_category_is_named(halves, profile):
    cur = halves[1].copy()
    cur.loc[cur.sample(frac=0.1, random_state=0).index, "plan"] = "weekly"
    results = feature_drift(profile, cur)
    assert flagged(results) == {"plan": "drift"}
    plan = next(r for r in results if r["column"] == "plan")
    assert plan["new_values"] == {"weekly": int((cur["plan"] == "weekly").sum())}
    assert plan["new_share"] == pytest.approx(0.1, abs=0.01)


def test_missing_rate_jump_is_reported_as_such(halves, profile):
    cur = halves[1].copy()
    cur.loc[cur.sample(frac=0.2, random_state=0).index, "d"] = np.nan
    results = feature_drift(profile, cur)
    assert flagged(results) == {"d": "drift"}
    d = next(r for r in results if r["column"] == "d")
    assert d["reasons"] == ["missing 0.0% -> 20.0%"]  # the values that remain are distributed as before


def test_covariate_shift_in_two_columns_only(halves, profile):
    cur = halves[1].copy()
    cur["a"] = cur["a"] * 1.8 + 0.5
    cur["c"] = cur["c"] * 1.5
    assert flagged(feature_drift(profile, cur)) == {"a": "drift", "c": "drift"}


def test_joint_shift_is_caught_by_the_domain_classifier(halves, profile):
    """a and b keep their marginals but become correlated: invisible per feature, visible jointly."""
    cur = halves[1].copy()
    order_a = np.argsort(cur["a"].to_numpy())
    b_sorted = np.sort(cur["b"].fillna(cur["b"].mean()).to_numpy())
    new_b = np.empty(len(cur))
    new_b[order_a] = b_sorted  # b now rises with a
    cur["b"] = np.where(cur["b"].isna(), np.nan, new_b)
    assert flagged(feature_drift(profile, cur)) == {}
    dom = domain_check(monitored_frame(halves[0], KINDS), monitored_frame(cur, KINDS), KINDS, Thresholds())
    assert dom["status"] == "drift" and dom["auc"] > 0.7
    assert set(dom["top_features"][:2]) == {"a", "b"}
    assert len(dom["least_typical_rows"]) == 10 and dom["least_typical_rows"][0]["score"] > 0.8


def test_chunked_counting_equals_one_pass(halves, profile):
    from trainyard.monitor.drift import layout
    from trainyard.data.profile import count_frame

    cur = halves[1]
    whole = count_frame(layout(profile["columns"]), cur)
    chunks = count_frame(layout(profile["columns"]), (cur.iloc[i:i + 700] for i in range(0, len(cur), 700)))
    for name in KINDS:
        assert whole[name]["counts"] == chunks[name]["counts"] and whole[name]["missing"] == chunks[name]["missing"]


def test_threshold_overrides_are_checked():
    from trainyard.errors import ConfigError

    assert Thresholds.parse(["psi_drift=0.3"]).psi_drift == 0.3
    with pytest.raises(ConfigError, match="not a threshold"):
        Thresholds.parse(["psi_drfit=0.3"])


def test_spread_growing_at_the_same_mean_is_drift(halves, profile):
    """A column whose spread grew 1.5x around the same mean is drift, not a warning (issue 16, 14a)."""
    cur = halves[1].copy()
    cur["a"] = cur["a"] * 1.5
    results = feature_drift(profile, cur)
    assert flagged(results) == {"a": "drift"}
    a = next(r for r in results if r["column"] == "a")
    assert a["spread_ratio"] == pytest.approx(1.5, abs=0.1) and re.search(r"spread x1\.[3-6]\d \(interquartile range grew\)", a["reasons"][0])


def test_spread_shrinking_is_drift_too(halves, profile):
    cur = halves[1].copy()
    cur["b"] = 10 + (cur["b"] - 10) / 1.5
    results = feature_drift(profile, cur)
    assert flagged(results) == {"b": "drift"}
    b = next(r for r in results if r["column"] == "b")
    assert b["spread_ratio"] == pytest.approx(1 / 1.5, abs=0.07) and "interquartile range shrank" in b["reasons"][0]
