"""`--seeds N`: N training seeds in one run, the spread across them on the held-out episodes, the best on
validation episodes registered."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

pytest.importorskip("gymnasium")

HERE = str(Path(__file__).parent)
ENV = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), HERE]), "OMP_NUM_THREADS": "1"}


def test_three_seeds_report_their_spread_and_register_the_best_on_validation(cli, workspace):
    res = cli("train", "--task", "rl", "--env", "toyenvs:Corridor", "--algo", "ppo", "--timesteps", "1500", "--seeds", "3", "--seed", "5",
              "--name", "walker", "--hparam", "n_envs=2", "--hparam", "n_steps=64", "--hparam", "batch_size=64", "--json", env=ENV)
    assert res.code == 0, res.output
    out = json.loads(res.stdout)
    spread = out["evaluation"]["across_seeds"]
    per_seed = spread["per_seed"]
    assert [r["seed"] for r in per_seed] == [5, 6, 7] and all(r["steps"] == 1536 for r in per_seed)
    best = max(per_seed, key=lambda r: r["validation_return"])
    assert spread["best_seed"] == best["seed"] and out["metrics"]["best_seed"] == best["seed"]
    assert out["metrics"]["mean_return"] == best["mean_return"]  # the registered policy is the chosen seed's
    means = [r["mean_return"] for r in per_seed]
    assert spread["sd"] == pytest.approx(statistics.stdev(means)) and spread["mean"] == pytest.approx(statistics.fmean(means))
    assert out["metrics"]["seed_return_min"] == min(means) and out["steps"] == 3 * 1536

    from trainyard.registry.workspace import Workspace

    ws = Workspace.resolve(workspace)
    run = ws.store.get_run(out["run_id"])
    assert sorted(p.name for p in (ws.run_dir(run["id"]) / "checkpoints").iterdir()) == ["seed-5", "seed-6", "seed-7"]
    row = ws.store.resolve_model("walker@1")
    meta = json.loads((ws.home / row["artifact_path"] / "meta.json").read_text())
    assert meta["settings"]["seed"] == best["seed"] and meta["evaluation"]["across_seeds"]["per_seed"] == per_seed
    events = [e for e in ws.store.events(run["id"]) if e["kind"] == "seed"]
    assert [e["data"]["seed"] for e in events] == [5, 6, 7]
    table = cli("train", "--task", "rl", "--env", "toyenvs:Corridor", "--timesteps", "300", "--seeds", "2", "--name", "w2",
                "--hparam", "n_envs=2", "--hparam", "n_steps=64", "--hparam", "batch_size=64", env=ENV)
    assert table.code == 0 and "2 training seeds: held-out mean return" in " ".join(table.output.split()), table.output
