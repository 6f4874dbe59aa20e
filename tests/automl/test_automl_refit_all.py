"""Refit on all data (issue 18, item 3): once the test is scored, the final model is fitted again, same members and
settings, on every labelled row, test rows included; the reported test scores stay those of the tested model.

The table's last 20% in time (the test rows of a --time-col split) follow y = 10x + 50, the rest y = 10x: only a model
that learned from the test rows predicts them higher."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trainyard import api
from trainyard.automl.selection import refit_on_all_rows
from trainyard.automl.trials import SearchResult
from trainyard.registry.workspace import Workspace

SETTINGS = dict(target="y", time_col="t", include=["linear", "lightgbm"], max_trials=3, seed=0, preset="fast")


@pytest.fixture
def shifted(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    x = rng.uniform(0, 1, n)
    y = 10 * x + rng.normal(0, 0.1, n)
    y[int(0.8 * n):] += 50
    return pd.DataFrame({"t": np.arange(n), "x": x, "y": y})


def _test_rows(result, df):
    return df.iloc[-result.split["test"]:]


def test_the_saved_model_learned_from_the_test_rows_and_the_scores_are_the_tested_models(workspace, shifted):
    kept = api.train(shifted, name="kept", refit_all=False, **SETTINGS)
    refitted = api.train(shifted, name="refitted", **SETTINGS)
    assert kept.metrics == refitted.metrics  # the same search, the same tested model, the same scores
    assert not kept.split["refit_all_rows"] and refitted.split["refit_all_rows"]
    test = _test_rows(refitted, shifted)
    lifted = refitted.model.predict(test) - kept.model.predict(test)
    assert lifted.mean() > 5, lifted.mean()  # 20% of its rows 50 higher: about +10 where it learned them
    store = Workspace.resolve().store
    notes = lambda run_id: [e["message"] for e in store.events(run_id) if e["message"].startswith("refitted the final model on all")]  # noqa: E731
    assert notes(refitted.run_id) and notes(refitted.run_id)[0].startswith(f"refitted the final model on all {len(shifted):,} labelled rows")
    assert not notes(kept.run_id)
    card = (refitted.card_dir / "model_card.md").read_text()
    assert "refitted on every labelled row (the test rows included)" in card
    assert "refitted on every labelled row" not in (kept.card_dir / "model_card.md").read_text()


def test_the_cli_flag_keeps_the_tested_model(cli, tmp_path, shifted):
    path = tmp_path / "shifted.csv"
    shifted.to_csv(path, index=False)
    out = cli("train", path, "--target", "y", "--time-col", "t", "--include", "linear", "--max-trials", "1", "--preset", "fast",
              "--no-refit-all", "--json")
    assert out.code == 0, out.output
    assert json.loads(out.stdout)["split"]["refit_all_rows"] is False


def test_a_refit_that_would_not_end_in_time_is_not_started(shifted):
    from sklearn.linear_model import LinearRegression

    X, y = shifted[["x"]], shifted["y"].to_numpy()
    fitted = LinearRegression().fit(X.iloc[:100], y[:100])
    found = SearchResult([], fitted, "linear", {}, 0.0, fit_rows=100, fit_seconds=2.0)
    model, note = refit_on_all_rows(found, X, y, None, None, seconds_left=10.0)  # 6 times the rows: about 16 s needed
    assert model is None and "would take about 16s, 10s were left" in note
    model, note = refit_on_all_rows(found, X, y, None, None, seconds_left=30.0)
    assert model is not fitted and model.coef_[0] != pytest.approx(fitted.coef_[0]) and note.startswith("refitted the final model on all 600")
