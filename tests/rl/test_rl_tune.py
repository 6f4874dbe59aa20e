"""The time-budgeted search: trials recorded in the store like the tabular ones, the best settings trained and registered."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("optuna")



def test_tuning_records_each_trial_and_trains_the_best(cli_inproc, workspace, torch_one_thread):
    from trainyard.registry.workspace import Workspace

    res = cli_inproc("train", "--task", "rl", "--env", "toyenvs:Corridor", "--timesteps", "3000", "--max-trials", "3",
                     "--hparam", "n_envs=2", "--hparam", "n_steps=64", "--name", "walk", "--json")
    assert res.code == 0, res.output
    out = json.loads(res.stdout)
    store = Workspace.resolve(workspace).store
    trials = store.trials(out["run_id"])
    assert [t["number"] for t in trials] == [0, 1, 2] and all(t["status"] == "ok" and t["val_score"] is not None for t in trials)
    assert trials[0]["params"] == {} and set(trials[1]["params"]) >= {"lr", "gamma", "batch_size"}  # defaults first, then TPE
    assert "n_steps" not in trials[1]["params"]  # the user's own choice is not searched
    run = store.get_run(out["run_id"])
    best = max(trials, key=lambda t: t["val_score"])
    assert run["config"]["tuning"]["best_params"] == best["params"]
    assert run["config"]["rl"]["tune_trials"] is None and run["config"]["rl"]["hparams"]["n_steps"] == 64
    assert any(e["kind"] == "tuned" for e in store.events(out["run_id"]))
    assert out["version"] == 1
