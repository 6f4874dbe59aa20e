"""Budgets corrected by the CPU a run actually gets (issue 18, item 2): the run measures its share of a CPU before
the search, and the search's estimates for families not fitted yet are scaled by it, so on a busy machine the first
LightGBM is sized for the seconds it will really have instead of an idle machine's."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from trainyard.automl.budget import Budget, CpuShare
from trainyard.automl.search import search
from trainyard.automl.trials import SearchData, SearchPlan
from trainyard.config import build_config
from trainyard.data.schema import infer_schema
from trainyard.metrics import get_metric
from trainyard.models.families import choose_families
from trainyard.tasks import Task


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_a_competitor_on_the_same_cpu_halves_the_share_it_measures():
    """A real busy process pinned to this process's CPU: the window sees at most about half a CPU."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(burner.pid, {cpu})
        os.sched_setaffinity(0, {cpu})
        time.sleep(0.2)
        window = CpuShare()
        _spin(1.5)
        share = window.share()
    finally:
        burner.kill()
        burner.wait()
        os.sched_setaffinity(0, before)
    assert share is not None and share < 0.75, share
    assert 1.3 < 1 / share and window.slowdown() == pytest.approx(1 / max(share, 0.1), rel=0.05)


def test_a_short_window_or_an_idle_looking_share_changes_nothing():
    window = CpuShare()
    assert window.share() is None and window.slowdown() == 1.0  # too short to say anything
    window.wall -= 10
    window.cpu -= 9  # 90% of a CPU: a quiet machine with a little waiting on files
    assert window.slowdown() == 1.0
    window.cpu += 6  # 3 CPU seconds in 10: 30%
    assert window.slowdown() == pytest.approx(1 / 0.3, rel=0.02)


def test_families_not_fitted_yet_are_expected_slower_on_a_slow_machine():
    budget = Budget(60, slowdown=2.5)
    assert budget.expected("lightgbm", 4.0) == pytest.approx(10.0)
    budget.learn("lightgbm", 4.0, 6.0)  # its own measurement replaces the guess
    assert budget.expected("lightgbm", 4.0) == pytest.approx(6.0)
    assert budget.expected("xgboost", 4.0) == pytest.approx(10.0)  # the slowdown still bounds the others
    assert Budget(60, slowdown=0.5).expected("lightgbm", 4.0) == pytest.approx(4.0)  # never faster than the priors


def _first_trial(slowdown: float):
    X, y = load_digits(return_X_y=True, as_frame=True)
    df = X.assign(y=y)
    train, val = train_test_split(df, test_size=0.3, random_state=0, stratify=y)
    schema = infer_schema(df, "y", {})
    features = schema.features()
    classes = np.unique(y)
    data = SearchData(train[features], np.searchsorted(classes, train["y"]), val[features], np.searchsorted(classes, val["y"]), classes)
    cfg = build_config("y", "balanced", max_trials=1, include=["lightgbm", "linear"])
    plan = SearchPlan(cfg, time_limit=4, refit=False, slowdown=slowdown)
    families = choose_families(Task.MULTICLASS, list(cfg.families), list(cfg.include), [])
    result = search(data, schema=schema, task=Task.MULTICLASS, metric=get_metric("log_loss", Task.MULTICLASS), families=families, plan=plan)
    return result.trials[0]


def test_the_first_lightgbm_is_sized_for_the_cpu_the_run_gets():
    """Digits at 4 s: an idle machine affords LightGBM's default rate; a machine giving a quarter of a CPU affords about
    half the rounds, so the rate rises to reach a fitted model in them."""
    idle, busy = _first_trial(1.0), _first_trial(4.0)
    assert idle.family == busy.family == "lightgbm"
    assert idle.params.get("learning_rate", 0.1) == pytest.approx(0.1)
    assert busy.params["learning_rate"] > 0.15, busy.params
