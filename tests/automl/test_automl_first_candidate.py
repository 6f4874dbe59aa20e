"""Never worse than the simple default (issue 18, item 1): every search starts with LightGBM sized for the data, and the
final model is that candidate unless something scores better on validation. Checked on scikit-learn's real tables by
scoring the final model's own predictions on the validation rows (refit off, so those rows stay unseen)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.model_selection import train_test_split

import trainyard.automl.selection as selection
from trainyard.automl.search import search
from trainyard.automl.trials import SearchData, SearchPlan
from trainyard.config import build_config
from trainyard.data.schema import infer_schema
from trainyard.metrics import get_metric, score_predictions
from trainyard.models.families import choose_families, get_family
from trainyard.tasks import Task

FAMILIES = ["linear", "knn", "decision_tree", "extra_trees", "lightgbm"]  # LightGBM last here: the search still starts with it
TABLES = {"breast_cancer": (load_breast_cancer, Task.BINARY, "log_loss"), "wine": (load_wine, Task.MULTICLASS, "log_loss"),
          "diabetes": (load_diabetes, Task.REGRESSION, "rmse")}


def _searched(name: str, max_trials: int = 8, bag_folds: int = 0):
    loader, task, metric_name = TABLES[name]
    X, y = loader(return_X_y=True, as_frame=True)
    df = X.assign(y=y)
    stratify = y if task.is_classification else None
    train, val = train_test_split(df, test_size=0.3, random_state=0, stratify=stratify)
    schema = infer_schema(df, "y", {})
    features = schema.features()
    classes = np.unique(y) if task.is_classification else None
    as_y = (lambda part: np.searchsorted(classes, part["y"].to_numpy())) if task.is_classification else (lambda part: part["y"].to_numpy(float))
    data = SearchData(train[features], as_y(train), val[features], as_y(val), classes)
    cfg = build_config("y", "balanced", max_trials=max_trials, tune_top=2, include=FAMILIES)
    plan = SearchPlan(cfg, time_limit=None, bag_folds=bag_folds, refit=False)
    metric = get_metric(metric_name, task)
    families = choose_families(task, list(cfg.families), list(cfg.include), [])
    return search(data, schema=schema, task=task, metric=metric, families=families, plan=plan), data, task, metric


def _validation_score(result, data: SearchData, task: Task, metric) -> float:
    """The final model's validation score from its own predictions (not the score the search reports)."""
    est = result.estimator
    preds = est.predict_proba(data.X_val) if task.is_classification else est.predict(data.X_val)
    return score_predictions(metric, task, data.y_val, np.asarray(preds, dtype=float), len(data.classes) if task.is_classification else None)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_final_model_is_never_worse_on_validation_than_the_first_candidate(name):
    result, data, task, metric = _searched(name)
    first = result.trials[0]
    assert (first.family, first.extra["origin"], first.status) == ("lightgbm", "default", "ok")
    assert first.params["min_child_samples"] == min(20, max(5, len(data.y_train) // 100))  # sized for the rows
    final = _validation_score(result, data, task, metric)
    assert final == pytest.approx(result.val_score, rel=1e-9, abs=1e-12)  # the score the search reports is the model's
    assert not metric.better(first.val_score, final), (result.family, final, first.val_score)
    assert len([t for t in result.trials if t.status == "ok" and t.family != "ensemble"]) >= 6  # several rivals ran


def test_bagged_search_is_never_worse_out_of_fold_than_the_first_candidate():
    result, _, _, metric = _searched("wine", max_trials=6, bag_folds=3)
    first = result.trials[0]
    assert first.family == "lightgbm" and first.extra["bag_folds"] == 3
    assert not metric.better(first.val_score, result.val_score)


def test_a_selection_that_scores_worse_than_the_first_candidate_does_not_win(monkeypatch):
    """Whatever the ensemble selection returns, the final model falls back to the first candidate when it is no better."""
    worst = {}

    def picks_the_worst(preds, score, greater_is_better, **kwargs):
        scores = [score(p) for p in preds]
        i = int(np.argmin(scores) if greater_is_better else np.argmax(scores))
        worst["score"] = scores[i]
        return {i: 1}, scores[i]

    monkeypatch.setattr(selection, "caruana", picks_the_worst)
    result, data, task, metric = _searched("breast_cancer", max_trials=5)
    first = result.trials[0]
    assert metric.better(first.val_score, worst["score"])  # the selection really was worse
    assert result.family == "lightgbm" and result.params == first.params
    assert _validation_score(result, data, task, metric) == pytest.approx(first.val_score, rel=1e-9)
    assert any("kept the first candidate" in note for note in result.notes)


def test_lightgbm_defaults_are_sized_for_rows_classes_and_time():
    lgbm = get_family("lightgbm")
    assert lgbm.default_params(100_000, 20, 2) == {**lgbm.defaults, "min_child_samples": 20}  # no clock: the defaults
    assert lgbm.default_params(300, 20, 2)["min_child_samples"] == 5  # small tables: smaller leaves
    roomy = lgbm.default_params(50_000, 30, 3, seconds=60.0)
    assert roomy["learning_rate"] == lgbm.defaults["learning_rate"]
    # 26 classes on 50k rows in 15 s or 8 s: a tree per class per round leaves too few rounds for the default rate
    tight = lgbm.default_params(50_000, 30, 26, seconds=15.0)
    tighter = lgbm.default_params(50_000, 30, 26, seconds=8.0)
    assert lgbm.defaults["learning_rate"] < tight["learning_rate"] < tighter["learning_rate"] < 0.3
    assert lgbm.default_params(50_000, 30, 26, seconds=1.0)["learning_rate"] == 0.3  # never above


def test_lightgbm_goes_first_whatever_order_the_families_are_given_in():
    names = [f.name for f in choose_families(Task.BINARY, ["linear", "knn", "lightgbm", "decision_tree"], None, None)]
    assert names == ["lightgbm", "linear", "knn", "decision_tree"]
    assert [f.name for f in choose_families(Task.BINARY, [], ["knn", "linear"], None)] == ["knn", "linear"]
    assert pd.Series(names).is_unique
