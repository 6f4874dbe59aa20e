"""`trainyard monitor` end to end on a real trained model: reference stored at training, reports, exit codes,
the prediction log with windows and late labels, and `trainyard retrain` with and without --promote-if-better."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import make_mixed_table

from trainyard.api import load, train
from trainyard.registry.artifact import verify_artifact
from trainyard.registry.store import now
from trainyard.registry.workspace import Workspace


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A workspace with churn@1 (LightGBM) trained on a mixed table."""
    home = tmp_path_factory.mktemp("monitor-ws")
    train(make_mixed_table(1500, 0), target="churn", name="churn", preset="fast", time_limit=20, max_trials=1,
                    include=["linear"], workspace=home)
    return home


@pytest.fixture
def run(cli, home):
    return lambda *args: cli(*args, env={"TRAINYARD_HOME": str(home)})


def write(tmp_path, name: str, df: pd.DataFrame):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def shifted(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["charges"] = out["charges"] + 25
    out.loc[out.index[: len(out) // 8], "plan"] = "weekly"
    return out


def test_training_stores_a_small_hashed_reference(home):
    row = Workspace.resolve(home).store.resolve_model("churn")
    directory = home / row["artifact_path"]
    meta = verify_artifact(directory, row["meta_sha256"])
    assert {"reference/profile.json", "reference/sample.parquet"} <= set(meta["files"])
    profile = json.loads((directory / "reference/profile.json").read_text())
    assert set(profile["columns"]) == {"tenure", "charges", "plan", "region", "support_calls"}
    assert profile["columns"]["plan"]["kind"] == "categorical" and profile["columns"]["charges"]["kind"] == "numeric"
    assert set(profile["predictions"]["columns"]) == {"predicted", "proba_yes"}
    assert (directory / "reference/profile.json").stat().st_size < 50_000


def test_monitor_file_exit_codes_and_reports(run, tmp_path):
    same = write(tmp_path, "same.csv", make_mixed_table(800, 1))
    ok = run("monitor", "churn", "--data", same)
    assert ok.code == 0, ok.output
    assert "Status: OK" in ok.stdout

    drifted = write(tmp_path, "drifted.csv", shifted(make_mixed_table(800, 1)))
    res = run("monitor", "churn", "--data", drifted, "-o", tmp_path / "out")
    assert res.code == 2, res.output
    assert "DRIFT" in res.stdout and "weekly" in res.stdout
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert {r["column"] for r in report["features"] if r["status"] == "drift"} == {"charges", "plan"}
    assert report["exit_code"] == 2 and report["performance"]["labelled_rows"] == 800  # the file has the target column
    page = (tmp_path / "out/report.html").read_text()
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page

    # the same shift below every drift threshold but above the warn ones: exit code 1
    soft = ["--threshold", "psi_drift=50", "--threshold", "ks_drift=1", "--threshold", "js_drift=1", "--threshold", "new_drift=1",
            "--threshold", "domain_auc_drift=1", "--no-domain"]
    warn = run("monitor", "churn", "--data", drifted, *soft)
    assert warn.code == 1, warn.output


def test_monitor_json_and_user_errors(run, tmp_path):
    same = write(tmp_path, "same.csv", make_mixed_table(300, 2))
    res = run("monitor", "churn", "--data", same, "--json", "--no-domain")
    report = json.loads(res.stdout)
    assert res.code == report["exit_code"] == 0 and report["domain"] is None
    bad = run("monitor", "chrun", "--data", same)
    assert bad.code == 2 and "did you mean 'churn'" in bad.stderr and "Traceback" not in bad.output
    since = run("monitor", "churn", "--data", same, "--since", "7d")
    assert since.code == 2 and "--time-col" in since.stderr
    nolog = run("monitor", "churn", "--since", "7d")
    assert nolog.code == 2 and "No predictions of 'churn' are logged" in nolog.stderr


def test_prediction_log_window_timeline_and_late_labels(home, run, tmp_path):
    store = Workspace.resolve(home).store
    model = load("churn", workspace=home)
    rows = make_mixed_table(600, 3)
    late = shifted(rows.iloc[300:])  # the second half of the window drifts
    stream = pd.concat([rows.iloc[:300], late])
    proba = model.predict_proba_array(stream.drop(columns="churn"))
    start = (now() - timedelta(days=3)).replace(hour=1, minute=0, second=0, microsecond=0)  # each day's 200 rows (200 minutes) stay inside one UTC day
    log, ids = [], []
    for i, (rec, p) in enumerate(zip(stream.drop(columns="churn").to_dict("records"), proba)):
        rid = uuid.uuid4().hex
        ids.append(rid)
        log.append({"request_id": rid, "model_name": "churn", "version": 1, "created_at": start + timedelta(days=i // 200, minutes=i),
                    "inputs": {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()},
                    "outputs": {"prediction": str(model.classes[p.argmax()]), "probabilities": {str(c): float(q) for c, q in zip(model.classes, p)}}})
    store.log_predictions(log)
    old = [{"request_id": "old", "model_name": "churn", "version": 1, "created_at": now() - timedelta(days=30), "inputs": log[0]["inputs"], "outputs": {}}]
    store.log_predictions(old)
    labels = write(tmp_path, "outcomes.csv", pd.DataFrame({"request_id": ids, "label": stream["churn"].to_numpy()}))

    res = run("monitor", "churn", "--since", "7d", "--labels", labels, "--json", "--no-domain")
    report = json.loads(res.stdout)
    assert report["window"]["rows"] == 600 and report["window"]["source"] == "prediction log"
    assert res.code == 2 and {"charges", "plan"} <= set(report["summary"]["drifted"])
    periods = report["timeline"]["periods"]
    assert [p["rows"] for p in periods] == [200, 200, 200]
    assert periods[0]["status"] == "ok" and periods[2]["status"] == "drift"  # drift over time: the first day is clean
    perf = report["performance"]
    assert perf["labelled_rows"] == 600 and perf["labels"]["stored"] == 600 and len(perf["by_period"]) == 3
    assert len(store.labels("churn")) == 600

    # labels are remembered: a later run without --labels still scores; --last narrows the window
    again = json.loads(run("monitor", "churn", "--last", "200", "--json", "--no-domain").stdout)
    assert again["window"]["rows"] == 200 and again["performance"]["labelled_rows"] == 200


def test_monitor_reads_what_the_real_server_logged(tmp_path):
    """Rows posted to the HTTP server are logged by it and monitored from its log; labels join on its request ids."""
    import httpx
    from servehelp import running_server

    from trainyard.monitor.check import monitor
    from trainyard.serve.app import ServeSettings

    home = tmp_path / "ws"
    train(make_mixed_table(800, 0), target="churn", name="churn", preset="fast", time_limit=20, max_trials=1, include=["linear"], workspace=home)
    rows = make_mixed_table(400, 4)
    rng = np.random.default_rng(0)
    rows.loc[rng.random(400) < 0.8, "plan"] = "monthly"  # the mix of plans moves
    rows.loc[rng.random(400) < 0.4, "region"] = None  # and region goes missing far more often
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in rows.drop(columns="churn").to_dict("records")]
    with running_server(ServeSettings(refs=["churn"], workspace=str(home), poll_interval=0.5)) as (url, app):
        with httpx.Client(base_url=url, timeout=60) as client:
            ids = []
            for i in range(0, 400, 50):
                r = client.post("/v1/models/churn/predict", json={"rows": records[i:i + 50]})
                assert r.status_code == 200, r.text
                ids += [p["id"] for p in r.json()["predictions"]]
        assert app.state.trainyard.logger.flush(30)
    labels = pd.DataFrame({"request_id": ids, "label": rows["churn"].to_numpy()})
    report = monitor("churn", since="1h", labels=labels, workspace=home)
    assert report["window"]["rows"] == 400 and report["window"]["versions"] == [1]
    status = {r["column"]: r["status"] for r in report["features"]}
    assert status["plan"] == "drift" and status["region"] == "drift" and status["tenure"] == status["support_calls"] == "ok"
    region = next(r for r in report["features"] if r["column"] == "region")
    assert any(reason.startswith("missing") for reason in region["reasons"])
    assert report["predictions"] and report["performance"]["labelled_rows"] == 400
    assert report["domain"]["auc"] > 0.6 and {r["request_id"] for r in report["domain"]["least_typical_rows"]} <= set(ids)
