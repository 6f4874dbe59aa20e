"""Fairness flags on a deliberately biased table; calibration, threshold tuning and overfitting verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

import trainyard
from trainyard.evaluation import calibration as cal
from trainyard.evaluation.fairness import fairness_report
from trainyard.metrics import METRICS
from trainyard.evaluation.overfit import overfitting_verdict
from trainyard.evaluation.scored import Scored
from trainyard.tasks import Task


def biased_table(n=2000, seed=0):
    """Historical approvals that favoured group 'a': the label depends on the group, not only on merit."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    skill = rng.normal(0, 1, n)
    logit = 1.2 * skill + np.where(group == "a", 1.0, -1.5)
    approved = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"skill": skill, "group": group, "noise": rng.normal(size=n), "approved": approved})


def test_model_trained_on_a_biased_table_is_flagged(workspace):
    df = biased_table()
    result = trainyard.train(df, "approved", name="loans", preset="fast", include=["linear"], sensitive=["group"], n_boot=300)
    (col,) = result.evaluation["fairness"]["columns"]
    gaps = col["gaps"]
    assert gaps["disparate_impact_ratio"]["value"] < 0.8 and gaps["disparate_impact_ratio"]["flagged"]
    assert gaps["disparate_impact_ratio"]["ci_high"] < 0.8 and gaps["disparate_impact_ratio"]["clear"]
    assert gaps["demographic_parity_difference"]["value"] > 0.1 and gaps["demographic_parity_difference"]["flagged"]
    assert any("four-fifths" in f for f in col["flags"])
    assert result.evaluation.flags and any("Fairness flag" in line for line in result.evaluation["limitations"])
    assert "FLAGGED" in (result.card_dir / "model_card.html").read_text()


def test_fair_predictions_are_not_flagged():
    rng = np.random.default_rng(1)
    n = 4000
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < 0.85, y, 1 - y)  # same error rates whatever the group
    proba = np.c_[1 - pred, pred].astype(float)
    groups = pd.Series(rng.choice(["x", "y", "z"], n))
    out = fairness_report(Scored(Task.BINARY, y, pred, proba, np.array(["n", "p"])), groups, "g", n_boot=200)
    assert out["flags"] == []
    assert out["gaps"]["disparate_impact_ratio"]["value"] > 0.9


def test_small_groups_are_listed_but_left_out_of_the_gaps():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    pred = y.copy()
    pred[:5] = 1  # the tiny group would look extreme
    groups = pd.Series(["tiny"] * 5 + ["big1"] * 150 + ["big2"] * 145)
    out = fairness_report(Scored(Task.BINARY, y, pred, np.c_[1 - pred, pred].astype(float), np.array([0, 1])), groups, "g", n_boot=100)
    tiny = next(g for g in out["groups"] if g["group"] == "tiny")
    assert tiny["small"] and "selection_rate" not in tiny


def test_numeric_sensitive_columns_are_cut_into_quartiles():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    age = pd.Series(rng.integers(18, 90, 400))
    out = fairness_report(Scored(Task.BINARY, y, y, np.c_[1 - y, y].astype(float), np.array([0, 1])), age, "age", n_boot=50)
    assert len(out["groups"]) == 4 and sum(g["rows"] for g in out["groups"]) == 400


class _Frozen(ClassifierMixin, BaseEstimator):
    """A fitted 'pipeline' that returns given probabilities for rows identified by an 'i' column."""

    def __init__(self, proba=None):
        self.proba = proba

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        return self.proba[X["i"].to_numpy()]

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def test_calibrator_chosen_on_validation_fixes_overconfidence():
    from types import SimpleNamespace

    rng = np.random.default_rng(4)
    n = 1500
    true_p = rng.uniform(0.2, 0.8, n)
    y = (rng.random(n) < true_p).astype(int)
    squashed = 1 / (1 + np.exp(-15 * (true_p - 0.5)))  # overconfident: pushed towards 0 and 1
    proba = np.c_[1 - squashed, squashed]
    model = SimpleNamespace(pipeline=_Frozen(proba).fit(None, None), classes=np.array([0, 1]), predict_proba_array=lambda X: proba[X["i"].to_numpy()])
    X = pd.DataFrame({"i": np.arange(n)})
    choice = cal.choose_calibration(model, X, y)
    assert choice["method"] != "none"
    assert choice["val_log_loss"][choice["method"]] < choice["val_log_loss"]["none"]
    before = cal.reliability(Scored(Task.BINARY, y, proba.argmax(1), proba, np.array([0, 1])))["ece"]
    calibrated = cal.calibrate(model, X, y, choice["method"]).predict_proba(X)
    after = cal.reliability(Scored(Task.BINARY, y, calibrated.argmax(1), calibrated, np.array([0, 1])))["ece"]
    assert after < before / 2


def test_threshold_tuning_matches_brute_force():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.35 * y + rng.random(400) * 0.65, 0, 1).round(2)
    scored = Scored(Task.BINARY, y, (p >= 0.5).astype(int), np.c_[1 - p, p], np.array([0, 1]))
    candidates = np.r_[np.unique(p), 1.01]

    def f1_at(t):
        return METRICS["f1"](y, (p >= t).astype(int))

    def cost_at(t):
        pred = p >= t
        return 1.0 * (pred & (y == 0)).sum() + 5.0 * (~pred & (y == 1)).sum()

    tuned = cal.tune_threshold(scored, "f1")
    assert tuned["value"] == pytest.approx(max(f1_at(t) for t in candidates))
    assert f1_at(tuned["threshold"]) == pytest.approx(tuned["value"])
    assert tuned["value_at_0.5"] == pytest.approx(f1_at(0.5))
    by_cost = cal.tune_threshold(scored, cost_fp=1.0, cost_fn=5.0)
    assert by_cost["cost"] == pytest.approx(min(cost_at(t) for t in candidates))
    assert cost_at(by_cost["threshold"]) == pytest.approx(by_cost["cost"])
    assert by_cost["threshold"] < tuned["threshold"] + 1e-9 or by_cost["cost"] <= by_cost["cost_at_0.5"]


def test_overfitting_verdicts():
    auc, rmse = METRICS["roc_auc"], METRICS["rmse"]
    assert overfitting_verdict(auc, {"train": 0.99, "test": 0.70}, (0.65, 0.75), 0.5, True)["verdict"] == "strong overfitting"
    assert overfitting_verdict(auc, {"train": 0.90, "test": 0.80}, (0.75, 0.85), 0.5, True)["verdict"] == "some overfitting"  # 0.1 of 0.4
    assert overfitting_verdict(auc, {"train": 0.86, "test": 0.80}, (0.75, 0.85), 0.5, True)["verdict"] == "small gap"  # 0.06 of 0.36
    assert overfitting_verdict(auc, {"train": 0.81, "test": 0.80}, (0.75, 0.85), 0.5, True)["verdict"] == "no sign of overfitting"
    assert overfitting_verdict(auc, {"train": 0.9, "test": 0.52}, (0.45, 0.6), 0.5, False)["verdict"] == "no better than baseline"
    # Lower-is-better metric: a test error far above the training error is overfitting.
    assert overfitting_verdict(rmse, {"train": 1.0, "test": 4.0}, (3.5, 4.5), 5.0, True)["verdict"] == "strong overfitting"
    assert overfitting_verdict(rmse, {"train": 3.9, "test": 4.0}, (3.5, 4.5), 5.0, True)["verdict"] == "no sign of overfitting"
