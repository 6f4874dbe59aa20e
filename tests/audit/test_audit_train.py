"""The audit from the command line and as the first step of training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_mixed_table

import trainyard
from trainyard.data.split import split
from trainyard.errors import DataError
from trainyard.registry.artifact import read_meta
from trainyard.tasks import Task
from trainyard.registry.workspace import Workspace


@pytest.fixture
def leaky_csv(tmp_path):
    df = make_mixed_table(600)
    df["churn_flag"] = (df["churn"] == "yes").astype(int)
    path = tmp_path / "leaky.csv"
    df.to_csv(path, index=False)
    return path


def test_cli_audit_clean_table_exits_0_and_writes_json_and_html(cli_inproc, mixed_csv, tmp_path):
    r = cli_inproc("audit", mixed_csv, "--target", "churn", "-o", tmp_path / "out")
    assert r.code == 0, r.output
    assert "0 blocking" in r.stdout and "why it matters" in r.stdout
    report = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert report["summary"]["blocking"] == 0 and report["summary"]["rows"] == 600
    assert (tmp_path / "out" / "audit.html").read_text().startswith("<!doctype html>")


def test_cli_audit_blocking_finding_exits_1(cli_inproc, leaky_csv, tmp_path):
    r = cli_inproc("audit", leaky_csv, "--target", "churn", "-o", tmp_path / "out")
    assert r.code == 1
    assert "blocking" in r.stdout and "churn_flag" in r.stdout
    r = cli_inproc("audit", leaky_csv, "--target", "churn", "-o", tmp_path / "out", "--json", "--fail-on", "never")
    assert r.code == 0
    out = json.loads(r.stdout)
    assert out["findings"][0]["check"] == "leakage" and out["findings"][0]["column"] == "churn_flag"
    assert out["files"]["html"].endswith("audit.html")


def test_cli_audit_fail_on_warning_and_user_errors(cli_inproc, mixed_csv, tmp_path):
    df = make_mixed_table(300)
    df = pd.concat([df, df.iloc[:30]])
    path = tmp_path / "dups.csv"
    df.to_csv(path, index=False)
    assert cli_inproc("audit", path, "--target", "churn", "--no-label-noise").code == 0
    assert cli_inproc("audit", path, "--target", "churn", "--no-label-noise", "--fail-on", "warning").code == 1
    r = cli_inproc("audit", mixed_csv, "--target", "chrun")
    assert r.code == 2 and "did you mean 'churn'" in r.stderr and "Traceback" not in r.output
    r = cli_inproc("audit", tmp_path / "nope.csv", "--target", "churn")
    assert r.code == 2 and "not found" in r.stderr.lower()
    r = cli_inproc("audit", mixed_csv, "--target", "churn", "--sensitive", "sex")
    assert r.code == 2 and "--sensitive" in r.stderr


BROKEN_FILES = {  # name -> (content, message the user sees)
    "empty.csv": (b"", "empty"),
    "garbage.csv": (bytes(range(256)) * 8, "binary"),
    "commas.tsv": (b"a,b,y\n1,2,0\n3,4,1\n5,6,0\n", "separated by commas"),
    "semicolons.tsv": (b"a;b;y\n1;2;0\n3;4;1\n", "separated by semicolons"),
    "no_target.csv": (b"a,b,churned\n1,2,0\n3,4,1\n", "not in the data"),
    "one_column.csv": (b"y\n1\n0\n1\n0\n", "only one column"),
    "null_target.csv": (b"a,b,y\n1,2,\n3,4,\n5,6,\n", "every value is missing"),
    "header_only.csv": (b"a,b,y\n", "no rows"),
    "ragged.csv": (b"a,b,y\n1,2,0\n3,4,1,9,9\n", "Line 3 of 'ragged.csv' has 5 fields"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
def test_cli_audit_broken_files_get_a_clear_error_and_exit_2(cli_inproc, tmp_path, name):
    content, message = BROKEN_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    r = cli_inproc("audit", path, "--target", "y", "-o", tmp_path / "out", "--no-label-noise")
    assert r.code == 2, r.output
    assert message.lower() in r.stderr.lower() and "fix" in r.stderr.lower(), r.stderr
    assert "Traceback" not in r.output and not (tmp_path / "out" / "audit.json").exists()


def test_cli_audit_with_test_table_reports_contamination(cli_inproc, tmp_path):
    df = make_mixed_table(600)
    df.iloc[:450].to_csv(tmp_path / "train.csv", index=False)
    pd.concat([df.iloc[450:], df.iloc[:40]]).to_csv(tmp_path / "test.csv", index=False)
    r = cli_inproc("audit", tmp_path / "train.csv", "--target", "churn", "--test", tmp_path / "test.csv", "--json", "--no-label-noise")
    assert r.code == 1
    found = [f for f in json.loads(r.stdout)["findings"] if f["check"] == "contamination"]
    assert found[0]["data"]["rows"] == 40 and found[0]["severity"] == "blocking"


def test_train_stops_on_blocking_findings_unless_forced(workspace, leaky_csv):
    with pytest.raises(DataError, match=r"blocking problem.*churn_flag") as info:
        trainyard.train(leaky_csv, target="churn", include=["linear"], name="leaky", max_trials=1)
    assert "--force" in info.value.fix and "--ignore" in info.value.fix
    store = Workspace.resolve().store
    failed = store.list_runs()[0]
    assert failed["status"] == "failed" and "blocking" in failed["error"]
    result = trainyard.train(leaky_csv, target="churn", include=["linear"], name="leaky", force=True, max_trials=1)
    assert result.audit.blocking[0].column == "churn_flag"
    events = [e for e in store.events(result.run_id) if e["kind"] == "audit"]
    assert any("--force" in e["message"] for e in events)
    assert any(e["data"] and e["data"].get("check") == "leakage" for e in events)
    row = store.resolve_model("leaky")
    meta = read_meta(workspace / row["artifact_path"])
    assert meta["audit"]["summary"]["blocking"] == 1
    assert meta["audit"]["findings"][0]["column"] == "churn_flag"
    assert {"audit.json", "audit.html"} <= set(meta["files"])
    # --ignore removes the leak: the audit no longer blocks
    ok = trainyard.train(leaky_csv, target="churn", include=["linear"], name="leaky", ignore=["churn_flag"], max_trials=1)
    assert ok.audit.blocking == []


def test_cli_train_prints_audit_and_blocks(cli_inproc, leaky_csv):
    r = cli_inproc("train", leaky_csv, "--target", "churn", "--include", "linear", "--max-trials", "1")
    assert r.code == 2 and "blocking" in r.stderr and "--force" in r.stderr and "Traceback" not in r.output
    r = cli_inproc("train", leaky_csv, "--target", "churn", "--include", "linear", "--force", "--max-trials", "1")
    assert r.code == 0, r.output
    assert "Audit:" in r.stdout and "churn_flag" in r.stdout


def test_imbalanced_classes_train_with_class_weights(workspace):
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=(n, 3))
    y = np.where(x[:, 0] + 0.5 * rng.normal(size=n) > 1.9, "rare", "common")
    df = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=y)
    assert (df["y"] == "rare").mean() < 0.1
    result = trainyard.train(df, target="y", include=["linear", "lightgbm"], name="imb", max_trials=2)
    trials = [t for t in Workspace.resolve().store.trials(result.run_id) if t["family"] != "ensemble"]
    # class weights reach every family as balanced sample weights (recorded with each trial)
    assert trials and all(t["extra"]["class_weight"] == "balanced" for t in trials)
    assert result.audit.by_check("class_imbalance")[0].severity == "warning"
    off = trainyard.train(df, target="y", include=["linear"], name="imb", class_weight="none", max_trials=1)
    assert "class_weight" not in Workspace.resolve().store.trials(off.run_id)[0]["extra"]
    assert result.metrics["recall"] > off.metrics["recall"]  # the rare class is found more often


def test_split_keeps_identical_rows_on_one_side():
    df = make_mixed_table(400)
    df = pd.concat([df, df.iloc[:60], df.iloc[:60]], ignore_index=True)
    features = [c for c in df.columns if c != "churn"]
    parts = split(df, "churn", Task.BINARY, keep_together=features)
    key = lambda part: set(pd.util.hash_pandas_object(part[features], index=False))  # noqa: E731
    assert not key(parts.train) & key(parts.test) and not key(parts.val) & key(parts.test) and not key(parts.train) & key(parts.val)
    assert sum(parts.sizes().values()) == len(df) and "kept in the split" in parts.strategy
    assert abs(len(parts.test) / len(df) - 0.2) < 0.05
