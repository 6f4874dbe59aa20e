"""`trainyard retrain`: a challenger trained on shifted data wins on the shifted holdout; promoted only with the flag."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from conftest import make_mixed_table

from trainyard.api import train
from trainyard.registry.workspace import Workspace


def new_world(n: int, seed: int) -> pd.DataFrame:
    """The same columns, but churn now follows region and support calls, not plan and tenure (concept drift)."""
    df = make_mixed_table(n, seed)
    rng = np.random.default_rng(seed + 99)
    logit = np.where(df["region"] == "north", 2.0, -1.0) + 0.8 * (df["support_calls"] - 2) - 0.5
    df["churn"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return df


def test_retrain_challenger_wins_and_is_promoted_only_with_the_flag(workspace, cli, tmp_path):
    train(make_mixed_table(1200, 0), target="churn", name="churn", preset="fast", time_limit=20, max_trials=1,
                    include=["linear"], workspace=workspace)
    store = Workspace.resolve(workspace).store
    store.set_alias("churn", "production", 1)
    fresh = tmp_path / "fresh.csv"
    new_world(1500, 5).to_csv(fresh, index=False)

    res = cli("retrain", "churn", "--data", fresh, "--margin", "0.05")
    assert res.code == 0, res.output
    assert "not promoted" in res.stdout and "--promote-if-better was not given" in res.stdout
    assert store.resolve_model("churn@production")["version"] == 1
    assert store.resolve_model("churn@2")["tags"] == {"challenger_of": "1"}

    res = cli("retrain", "churn", "--data", fresh, "--margin", "0.05", "--promote-if-better", "--json")
    assert res.code == 0, res.output


    out = json.loads(res.stdout)
    assert out["champion"]["version"] == 1 and out["challenger"]["version"] == 3
    assert out["challenger"]["score"] >= out["champion"]["score"] + 0.05  # wins on the same fresh holdout
    assert out["promoted"] and store.resolve_model("churn@production")["version"] == 3
    events = store.events(out["run_id"])
    assert events[-1]["kind"] == "retrain" and events[-1]["data"]["promoted"] is True and "now points at @3" in events[-1]["message"]
    run = store.get_run(out["run_id"])
    assert run["kind"] == "retrain" and run["status"] == "finished" and run["model_version"] == 3

    # the champion is now @3; a challenger that cannot beat it by a huge margin leaves the alias alone, even with the flag
    res = cli("retrain", "churn", "--data", fresh, "--margin", "0.5", "--promote-if-better", "--json")
    out = json.loads(res.stdout)
    assert out["champion"]["version"] == 3 and not out["promoted"] and "does not beat the champion" in out["reason"]
    assert store.resolve_model("churn@production")["version"] == 3
    # the promoted challenger carries its own reference profile: monitoring it on its own world is quiet
    from trainyard.monitor.check import monitor

    assert monitor("churn", data=new_world(600, 8), workspace=workspace, domain=False)["summary"]["drifted"] == []
    # while the old champion, scored on the new world's labels, has lost its edge: performance drift
    perf = monitor("churn@1", data=new_world(600, 8), workspace=workspace, domain=False)["performance"]
    assert perf["status"] == "drift" and perf["degradation"] > 0.1 and perf["z"] > 2.33


def test_retrain_refuses_data_without_the_features(workspace, cli, tmp_path):
    train(make_mixed_table(300, 0), target="churn", name="churn", preset="fast", time_limit=20, max_trials=1,
                    include=["linear"], workspace=workspace)
    bad = tmp_path / "bad.csv"
    make_mixed_table(300, 1).drop(columns=["plan"]).to_csv(bad, index=False)
    res = cli("retrain", "churn", "--data", bad)
    assert res.code == 2 and "lacks the champion's feature column(s) plan" in res.stderr
