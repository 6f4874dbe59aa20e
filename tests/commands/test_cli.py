"""The CLI as a user meets it: real subprocesses, real workspace, exit codes and messages."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SRC, make_mixed_table


def test_help_is_fast_because_heavy_imports_are_lazy():
    code = "import sys, trainyard.cli; heavy = [m for m in ('pandas', 'sklearn', 'lightgbm', 'torch', 'sqlalchemy') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_train_output_fits_an_80_column_terminal(cli, mixed_csv):
    """Issue 16 item 21: no line wider than the terminal, the trial header under the audit, parameters as
    name=value rather than raw JSON, and a skipped trial's reason on its own line."""
    r = cli("train", mixed_csv, "--target", "churn", "--name", "narrow", "--include", "linear,lightgbm,knn", "--time-limit", "30",
            "--max-trials", "4", env={"COLUMNS": "80"})
    assert r.code == 0, r.output
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("trial  family"))
    assert header > next(i for i, line in enumerate(lines) if line.startswith("Audit:"))
    board = lines[next(i for i, line in enumerate(lines) if line.startswith("Leaderboard")):]
    assert not any('{"' in line for line in board)
    assert any(re.search(r"\b(C|n_neighbors|learning_rate|num_leaves|colsample_bytree)=[\d.]+", line) for line in board)


def test_train_models_runs_predict(cli, mixed_csv, tmp_path):
    r = cli("train", mixed_csv, "--target", "churn", "--name", "churn", "--include", "linear,lightgbm", "--time-limit", "60", "--max-trials", "2")
    assert r.code == 0, r.output
    assert "Leaderboard" in r.stdout and "Held-out test set" in r.stdout and "Registered churn@1" in r.stdout
    models = cli("models", "--json")
    rows = json.loads(models.stdout)
    assert [(m["name"], m["version"]) for m in rows] == [("churn", 1)]
    assert rows[0]["metric"] == "roc_auc" and 0.5 < rows[0]["test_score"] <= 1
    runs = json.loads(cli("runs", "--json").stdout)
    assert runs[0]["status"] == "finished" and runs[0]["model_version"] == 1
    new = make_mixed_table(50, seed=9).drop(columns=["churn"])
    new.to_csv(tmp_path / "new.csv", index=False)
    r = cli("predict", "churn@1", "new.csv", "-o", "scored.csv")
    assert r.code == 0, r.output
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert len(scored) == 50 and set(scored["churn_predicted"]) <= {"yes", "no"}
    assert np.allclose(scored["proba_yes"] + scored["proba_no"], 1)


def test_train_json_output(cli_inproc, mixed_csv):
    r = cli_inproc("train", mixed_csv, "--target", "churn", "--include", "linear", "--max-trials", "1", "--json")
    assert r.code == 0, r.output
    out = json.loads(r.stdout)
    assert out["version"] == 1 and out["task"] == "binary" and "roc_auc" in out["test"]
    assert out["leaderboard"][0]["family"] == "linear"


BROKEN = [
    (["train", "nope.csv", "--target", "churn"], "File not found"),
    (["train", "churn.csv", "--target", "chrun"], "did you mean 'churn'"),
    (["train", "churn.csv"], "No target column given"),
    (["train", "churn.csv", "--target", "churn", "--include", "xgbost"], "not a model family"),
    (["train", "churn.csv", "--target", "churn", "--preset", "turbo"], "not a preset"),
    (["train", "churn.csv", "--target", "churn", "--metric", "r2"], "does not apply to binary"),
    (["train", "churn.csv", "--target", "churn", "--task", "clustering"], "not a task"),
    (["train", "churn.csv", "--target", "churn", "--time-limit", "0"], "must be positive"),
    (["train", "churn.csv", "--target", "churn", "--ignore", "nosuch"], "not in the data"),
    (["train", "empty.csv", "--target", "churn"], "is empty"),
    (["train", "onecls.csv", "--target", "churn"], "single value"),
    (["train", "nolabels.csv", "--target", "churn"], "every value is missing"),
    (["train", "notes.docx", "--target", "churn"], "Cannot tell the format"),
    (["train", "garbage.parquet", "--target", "churn"], "Cannot read"),
    (["predict", "ghost", "churn.csv"], "No model named 'ghost'"),
    (["predict", "churn@4", "churn.csv"], "No model named 'churn'"),
    (["runs-typo"], "No such command"),
]


@pytest.mark.parametrize("args, words", BROKEN, ids=[" ".join(a[:3]) for a, _ in BROKEN])
def test_broken_inputs_exit_2_with_one_clear_message(cli_inproc, tmp_path, mixed_table, args, words):
    mixed_table.to_csv(tmp_path / "churn.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    mixed_table.assign(churn="yes").to_csv(tmp_path / "onecls.csv", index=False)
    mixed_table.assign(churn=np.nan).to_csv(tmp_path / "nolabels.csv", index=False)
    (tmp_path / "notes.docx").write_text("x")
    (tmp_path / "garbage.parquet").write_text("not a parquet file")
    r = cli_inproc(*args)
    assert r.code == 2, r.output
    assert words in r.output
    assert "Traceback" not in r.output


def test_debug_shows_the_traceback(cli):
    r = cli("--debug", "train", "nope.csv", "--target", "y")
    assert r.code == 2 and "Traceback" in r.output


def test_two_trainings_at_once_on_one_workspace_both_land(workspace, tmp_path, mixed_table):
    mixed_table.to_csv(tmp_path / "churn.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(workspace)}
    cmd = [sys.executable, "-m", "trainyard", "train", "churn.csv", "--target", "churn", "--name", "churn", "--include", "linear,lightgbm", "--max-trials", "2", "--json"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    versions = sorted(json.loads(o)["version"] for o, _ in outs)
    assert versions == [1, 2]
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(workspace).store
    runs = store.list_runs()
    assert len(runs) == 2 and {r["status"] for r in runs} == {"finished"}
    assert {r["version"] for r in store.list_models("churn")} == {1, 2}


@pytest.mark.slow
def test_killed_run_is_marked_interrupted_and_workspace_stays_consistent(workspace, tmp_path):
    big = make_mixed_table(40000, seed=1)
    big.to_csv(tmp_path / "big.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(workspace)}
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", "train", "big.csv", "--target", "churn", "--name", "big"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(workspace).store
    deadline = time.time() + 120
    while time.time() < deadline and not store.list_runs():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0]["status"] == "interrupted"
    assert store.list_models() == []
    # the workspace keeps working after the kill
    small = make_mixed_table(300)
    small.to_csv(tmp_path / "small.csv", index=False)
    done = subprocess.run([sys.executable, "-m", "trainyard", "train", "small.csv", "--target", "churn", "--name", "big", "--include", "linear", "--max-trials", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert store.resolve_model("big")["version"] == 1
