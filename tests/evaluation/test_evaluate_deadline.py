"""An evaluation with a deadline (the end of `train --time-limit`) shrinks its resamples and leaves out optional
sections by name, instead of running past the limit; without one it computes everything it was asked for."""

from __future__ import annotations

import time

from conftest import make_mixed_table
from test_evaluate_report import fit_model

from trainyard.evaluation.core import Options, evaluate_frame
from trainyard.evaluation.scored import Scored
from trainyard.evaluation.timebox import MIN_RESAMPLES, TimeBox
from trainyard.tasks import Task


def _case():
    df = make_mixed_table(900, seed=5)
    train, test = df.iloc[:600], df.iloc[600:].reset_index(drop=True)
    return fit_model(train, "churn", Task.BINARY), test


def test_a_spent_deadline_keeps_the_metrics_and_names_what_it_left_out():
    model, test = _case()
    report = evaluate_frame(model, test, options=Options(n_boot=1000, deadline=time.perf_counter()))
    settings = report.data["settings"]
    assert settings["n_boot"] == MIN_RESAMPLES and settings["n_boot_asked"] == 1000
    assert {"explanations", "worst slices"} <= set(settings["skipped_for_time"])
    assert "explanations" not in report.data and report.data["slices"]["worst"]["skipped"] == "time limit"
    main = next(r for r in report.data["metrics"] if r["metric"] == "roc_auc")
    assert main["ci_low"] < main["value"] < main["ci_high"]  # the essential numbers are all there
    assert any("Left out to end within the time limit" in line for line in report.data["limitations"])
    assert "Not searched (time limit)" in report.to_markdown()


def test_without_a_deadline_nothing_is_left_out():
    model, test = _case()
    report = evaluate_frame(model, test, options=Options(n_boot=300))
    assert report.data["settings"]["n_boot"] == 300 and "skipped_for_time" not in report.data["settings"]
    assert report.data["explanations"]["permutation_importance"] and "skipped" not in report.data["slices"]["worst"]


def test_resamples_scale_with_the_time_left():
    model, test = _case()
    scored = Scored.from_model(model, test[model.features], test[model.target])
    assert TimeBox(None).resamples(scored, None, 1000, 0) == 1000
    assert TimeBox(time.perf_counter() + 3600).resamples(scored, None, 1000, 0) == 1000
    assert TimeBox(time.perf_counter()).resamples(scored, None, 1000, 0) == MIN_RESAMPLES
