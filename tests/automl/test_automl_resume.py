"""Resume: a run killed with SIGKILL mid-search continues from its recorded trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import SRC, make_mixed_table
from trainyard.registry.workspace import Workspace


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_from_recorded_trials(cli, workspace, tmp_path):
    data = tmp_path / "churn.csv"
    make_mixed_table(2000, seed=1).to_csv(data, index=False)
    env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(workspace)}
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", "train", data.name, "--target", "churn", "--time-limit", "40",
                             "--preset", "fast", "--seed", "0"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = None
    before = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.3)
        if store is None and (workspace / "trainyard.db").exists():
            store = Workspace.resolve(workspace).store
        if store is not None:
            runs = store.list_runs()
            if runs:
                before = [t for t in store.trials(runs[0]["id"]) if t["status"] == "ok"]
                if before:  # killed as soon as a trial is recorded (on a loaded machine a second may never come)
                    break
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_id = store.list_runs()[0]["id"]
    recorded = store.trials(run_id)
    best_before = max(t["val_score"] for t in recorded if t["status"] == "ok")
    assert store.get_run(run_id)["status"] == "interrupted"

    assert store.get_run(run_id)["data_source"] == str(data.resolve())  # absolute: `trainyard resume` works from anywhere
    res = cli("resume", run_id, timeout=300)
    assert res.code == 0, res.output
    assert f"Run {run_id}" in res.output and "resuming from" in res.output
    run = store.get_run(run_id)
    assert run["status"] == "finished" and run["model_version"] == 1
    assert run["best_score"] >= best_before
    after = store.trials(run_id)
    old = {t["number"]: t for t in recorded}
    for t in after:
        if t["number"] in old:
            assert t["params"] == old[t["number"]]["params"] and t["val_score"] == old[t["number"]]["val_score"]
    new = [t for t in after if t["number"] not in old]
    assert new and min(t["number"] for t in new) > max(old)
    defaults = [t["family"] for t in after if (t["extra"] or {}).get("origin") == "default"]
    assert len(defaults) == len(set(defaults))  # no family's defaults fitted twice
    assert any(e["kind"] == "resume" for e in store.events(run_id))
    assert len(store.list_runs()) == 1


def test_resuming_a_finished_run_is_refused(cli, mixed_csv):
    res = cli("train", mixed_csv, "--target", "churn", "--max-trials", "1", "--include", "linear")
    assert res.code == 0, res.output
    res = cli("train", mixed_csv, "--target", "churn", "--resume", "last")
    assert res.code == 2 and "already finished" in res.output and "Traceback" not in res.output


def test_resuming_an_unknown_run_is_refused(cli, mixed_csv):
    res = cli("train", mixed_csv, "--target", "churn", "--resume", "nope")
    assert res.code == 2 and "No run 'nope'" in res.output
