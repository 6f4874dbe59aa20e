"""The AutoML scheduler: budgets, memory, ensembles, weights, reproducibility, the leaderboard in the store."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, make_classification

import trainyard
from trainyard.errors import DataError
from trainyard.models.ensemble import caruana
from trainyard.registry.workspace import Workspace


def _cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    return data.frame.rename(columns={"target": "y"})


def test_caruana_combines_complementary_members_and_is_deterministic():
    y = np.array([0, 0, 1, 1] * 25)
    a = np.where(np.arange(100) % 4 == 2, 0.3, y * 0.8 + 0.1)  # wrong on some positives
    b = np.where(np.arange(100) % 4 == 0, 0.7, y * 0.8 + 0.1)  # wrong on some negatives
    preds = [np.column_stack([1 - p, p]) for p in (a, b)]
    acc = lambda p: float(np.mean(p.argmax(axis=1) == y))  # noqa: E731
    chosen, score = caruana(preds, acc, greater_is_better=True)
    assert acc(preds[0]) == acc(preds[1]) == 0.75
    assert set(chosen) == {0, 1} and score == 1.0
    assert caruana(preds, acc, True) == (chosen, score)


def test_caruana_respects_a_cost_limit():
    y = np.array([0, 1] * 50)
    p = [np.column_stack([1 - q, q]) for q in (y * 0.6 + 0.2, np.full(100, 0.5), y * 0.9 + 0.05)]
    logloss = lambda pr: float(-np.mean(np.log(pr[np.arange(100), y])))  # noqa: E731
    chosen, _ = caruana(p, logloss, greater_is_better=False, costs=[1.0, 1.0, 50.0], max_cost=10.0)
    assert 2 not in chosen and chosen


def test_train_returns_a_saved_ensemble_and_records_every_trial(workspace):
    df = _cancer()
    result = trainyard.train(df, target="y", max_trials=6, include=["lightgbm", "linear", "decision_tree"], seed=0)
    board = result.leaderboard
    assert {"family", "val_roc_auc", "fit_s", "predict_ms_per_row", "memory_mb", "params"} <= set(board.columns)
    stored = Workspace.resolve().store.trials(result.run_id)
    searched = [r for r in stored if r["family"] != "ensemble"]
    assert len(searched) == 6
    assert all(r["params"] is not None and r["extra"]["seed"] == 0 for r in searched)
    assert {r["extra"]["origin"] for r in searched} == {"default", "tuned"}
    assert result.metrics["roc_auc"] > 0.95
    loaded = trainyard.load(result.name)
    np.testing.assert_allclose(loaded.predict_proba_array(df.drop(columns="y")), result.model.predict_proba_array(df.drop(columns="y")))


def test_same_seed_and_trial_budget_give_the_same_leaderboard_and_predictions(workspace):
    df = _cancer().sample(400, random_state=1)
    families = ["lightgbm", "linear", "decision_tree"]
    runs = [trainyard.train(df, target="y", max_trials=6, seed=3, include=families) for _ in range(2)]
    boards = [r.leaderboard[["trial", "family", "val_roc_auc", "params", "status"]].reset_index(drop=True) for r in runs]
    pd.testing.assert_frame_equal(boards[0], boards[1])
    X = df.drop(columns="y")
    np.testing.assert_array_equal(runs[0].model.predict_proba_array(X), runs[1].model.predict_proba_array(X))
    other = trainyard.train(df, target="y", max_trials=6, seed=4, include=families)
    assert not other.leaderboard["params"].equals(runs[0].leaderboard["params"]) or not np.array_equal(
        other.model.predict_proba_array(X), runs[0].model.predict_proba_array(X))


def test_time_limit_is_respected_and_a_model_exists(workspace):
    # Big enough that fitting every family's defaults unbounded takes minutes on 2 cores.
    X, y = make_classification(n_samples=20000, n_features=20, n_informative=8, random_state=0)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)]).assign(y=y)
    t0 = time.perf_counter()
    result = trainyard.train(df, target="y", time_limit=20)
    wall = time.perf_counter() - t0
    # Generous: test machines are shared and oversubscribed; docs/automl.md reports the measured overrun.
    # a loose bound: timing belongs in benchmarks/automl (issue 18 measures the overrun), this only catches a runaway
    # search; 3x was crossed once (61.7 s) with other test processes on both cores
    assert wall < 20 * 4
    assert result.metrics["roc_auc"] > 0.9
    ok = result.leaderboard[result.leaderboard["status"] == "ok"]
    assert len(ok) >= 2


def test_a_family_over_the_memory_limit_is_skipped_with_a_clear_message(workspace):
    df = _cancer()
    result = trainyard.train(df, target="y", max_trials=3, include=["linear", "random_forest"], memory_limit_mb=70)
    board = result.leaderboard
    forest = board[board["family"] == "random_forest"]
    assert len(forest) == 1 and forest["status"].iloc[0] == "skipped"
    assert "MB by estimate" in forest["message"].iloc[0] and "limit" in forest["message"].iloc[0]
    assert (board[board["family"] == "linear"]["status"] == "ok").all()
    assert "random_forest" not in result.model.family


def test_nothing_fits_in_memory_is_a_user_error(workspace, monkeypatch):
    monkeypatch.setenv("TRAINYARD_MEMORY_LIMIT_MB", "1")
    with pytest.raises(DataError, match="MB by estimate"):
        trainyard.train(_cancer(), target="y", max_trials=3, include=["linear", "lightgbm"])


def test_sample_weights_are_used_and_the_weight_column_is_not_a_feature(workspace):
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.uniform(-2, 2, size=n)
    y = (x > 0).astype(int)
    noisy = (x > 0) & (x < 1.2) & (rng.random(n) < 0.8)  # a band of wrong labels, weighted 0
    df = pd.DataFrame({"x": x, "z": rng.normal(size=n), "w": np.where(noisy, 0.0, 1.0), "y": np.where(noisy, 1 - y, y)})
    clean = pd.DataFrame({"x": np.linspace(-2, 2, 400), "z": 0.0})
    truth = (clean["x"] > 0).astype(int)
    weighted = trainyard.train(df, target="y", max_trials=1, include=["lightgbm"], weight_col="w", metric="accuracy")
    unweighted = trainyard.train(df.drop(columns="w"), target="y", max_trials=1, include=["lightgbm"], metric="accuracy")
    assert "w" not in weighted.model.features
    assert np.mean(weighted.model.predict(clean) == truth) > 0.95
    assert np.mean(unweighted.model.predict(clean) == truth) < 0.9


def test_balanced_accuracy_trains_with_balanced_class_weights(workspace):
    X, y = make_classification(n_samples=3000, n_features=8, weights=[0.95, 0.05], class_sep=0.6, random_state=0)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(y=y)
    plain = trainyard.train(df, target="y", max_trials=1, include=["linear"], metric="balanced_accuracy", class_weight="none")
    balanced = trainyard.train(df, target="y", max_trials=1, include=["linear"], metric="balanced_accuracy")
    assert balanced.metrics["balanced_accuracy"] > plain.metrics["balanced_accuracy"] + 0.05


def test_max_predict_ms_per_row_keeps_slow_models_out_of_the_final_model(workspace):
    df = _cancer()
    result = trainyard.train(df, target="y", max_trials=3, include=["linear", "knn", "random_forest"], max_predict_ms_per_row=1e-9)
    board = result.leaderboard
    fastest = board[board["status"] == "ok"].sort_values("predict_ms_per_row").iloc[0]
    assert result.model.family == fastest["family"]


def test_serving_fast_path_covers_a_bagged_lightgbm_ensemble(workspace, mixed_table):
    from trainyard.models.rowpath import compile_rows

    result = trainyard.train(mixed_table, target="churn", max_trials=3, include=["lightgbm"], seed=0)
    fast = compile_rows(result.model)
    assert fast is not None
    rows = mixed_table.drop(columns="churn").head(40)
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict(orient="records")]
    np.testing.assert_allclose(fast(records), result.model.predict_proba_array(rows), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fast(records[:1]), result.model.predict_proba_array(rows.head(1)), rtol=1e-6, atol=1e-9)
