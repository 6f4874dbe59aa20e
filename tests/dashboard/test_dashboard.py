"""The dashboard over HTTP (a real uvicorn server on loopback): pages, the live stream, promote, auth, reports."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from dashboard_helpers import ThreadServer, populate


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from trainyard.dashboard.app import create_app
    from trainyard.registry.workspace import Workspace

    home = tmp_path_factory.mktemp("dash-http") / "ws"
    info = populate(home)
    ws = Workspace.resolve(home)
    server = ThreadServer(create_app(ws))
    yield {"home": home, "ws": ws, "store": ws.store, "url": server.url, **info}
    server.stop()


def get(env, path: str, timeout: float = 20, **kw) -> httpx.Response:
    return httpx.get(env["url"] + path, timeout=timeout, **kw)


def post_json(env, path: str, body, **kw) -> httpx.Response:
    return httpx.post(env["url"] + path, json=body, timeout=20, **kw)


def test_runs_page_paginates_and_filters(env):
    from trainyard.registry import tables as t

    stamp = datetime.now(timezone.utc)
    rows = [dict(id=f"bulk{i:08d}", name="bulk", kind="tabular", status="failed" if i % 10 == 0 else "finished",
                 best_score=i / 200, created_at=stamp - timedelta(minutes=i), updated_at=stamp) for i in range(120)]
    with env["store"].tx() as conn:
        conn.execute(t.runs.insert(), rows)
    first = get(env, "/runs?name=bulk")
    assert first.status_code == 200
    assert first.text.count('<tr>\n  <td><a href="/runs/') == 50
    assert "bulk00000000" in first.text and "page 1 of 3" in first.text
    last = get(env, "/runs?name=bulk&page=3")
    assert last.text.count('<a href="/runs/bulk') == 20 and "bulk00000119" in last.text
    failed = get(env, "/api/runs?name=bulk&status=failed&per_page=100").json()
    assert failed["total"] == 12 and {r["status"] for r in failed["runs"]} == {"failed"}
    everything = get(env, "/runs").text
    assert env["running"] in everything and "running" in everything


def read_stream(env, path: str, until: str = "end", timeout: float = 20) -> list[tuple[str, object]]:
    events, name = [], None
    with httpx.stream("GET", env["url"] + path, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if name == until:
                    break
    return events


def test_stream_sends_the_finished_runs_trials_and_ends(env):
    events = read_stream(env, f"/api/runs/{env['second']}/stream")
    kinds = [k for k, _ in events]
    assert kinds[-1] == "end" and "trials" in kinds and "run" in kinds
    trials = [t for k, data in events if k == "trials" for t in data]
    assert trials and trials[0]["family"] == "lightgbm" and trials[0]["val_score"] is not None
    assert events[-1][1]["status"] == "finished"


def test_stream_follows_a_running_run_from_where_the_client_is(env):
    store = env["store"]
    run_id = store.create_run("stream-me", kind="deep")
    store.log_metrics(run_id, 0, {"loss": 1.0})

    def writer():
        time.sleep(0.7)
        store.log_metrics(run_id, 1, {"loss": 0.5})
        time.sleep(0.7)
        store.update_run(run_id, status="finished")

    thread = threading.Thread(target=writer)
    thread.start()
    events = read_stream(env, f"/api/runs/{run_id}/stream")
    thread.join()
    points = [(m["step"], m["value"]) for k, data in events if k == "metrics" for m in data]
    assert points == [(0, 1.0), (1, 0.5)]
    statuses = [d["status"] for k, d in events if k == "run"]
    assert statuses[0] == "running" and statuses[-1] == "finished"
    # resuming after the first point sends only what came later
    first_id = [m["id"] for k, data in events if k == "metrics" for m in data][0]
    again = read_stream(env, f"/api/runs/{run_id}/stream?after={first_id}")
    assert [(m["step"]) for k, data in again if k == "metrics" for m in data] == [1]


def test_unknown_run_is_a_clear_404(env):
    page = get(env, "/runs/nope")
    assert page.status_code == 404 and "No run &#39;nope&#39;" in page.text
    assert get(env, "/api/runs/nope/stream").json()["error"].startswith("No run 'nope'")


def test_promote_and_roll_back_through_the_api(env):
    store = env["store"]
    ok = post_json(env, "/api/models/churn/aliases", {"alias": "staging", "version": 2})
    assert ok.status_code == 200 and ok.json() == {"name": "churn", "alias": "staging", "version": 2, "previous": None}
    assert store.resolve_model("churn@staging")["version"] == 2
    back = post_json(env, "/api/models/churn/aliases", {"alias": "staging", "version": 1})
    assert back.json()["previous"] == 2 and store.resolve_model("churn@staging")["version"] == 1
    missing = post_json(env, "/api/models/churn/aliases", {"alias": "staging", "version": 9})
    assert missing.status_code == 404 and "has no version 9" in missing.json()["error"]
    bad = post_json(env, "/api/models/churn/aliases", {"alias": "latest", "version": 1})
    assert bad.status_code == 400 and "cannot be an alias" in bad.json()["error"]
    page = get(env, "/models").text
    assert "staging &rarr; <strong class=\"alias-version\">v1</strong>" in page


def test_writes_from_other_sites_are_refused(env):
    cross = post_json(env, "/api/models/churn/aliases", {"alias": "production", "version": 1}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    form = httpx.post(env["url"] + "/api/models/churn/aliases", data={"alias": "production", "version": "1"}, timeout=10)
    assert form.status_code == 415
    rebound = get(env, "/runs", headers={"Host": "evil.example:8080"})
    assert rebound.status_code == 403
    with pytest.raises(Exception):
        env["store"].resolve_model("churn@production")


def test_token_is_required_when_configured(env):
    from trainyard.dashboard.app import create_app

    token = "s3cret-token-for-tests-0123456789"
    server = ThreadServer(create_app(env["ws"], token=token, loopback_only=False))
    try:
        base = server.url
        assert httpx.get(base + "/runs", timeout=10).status_code == 401
        assert httpx.get(base + "/static/app.js", timeout=10).status_code == 401
        assert httpx.get(base + "/runs", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
        assert httpx.get(base + "/runs", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
        landing = httpx.get(base + f"/models?token={token}", timeout=10)
        assert landing.status_code == 303 and landing.headers["location"] == "/models"
        assert "HttpOnly" in landing.headers["set-cookie"]
        with httpx.Client(base_url=base, timeout=10) as browser:
            assert browser.get(f"/runs?token={token}", follow_redirects=True).status_code == 200
            assert browser.get("/models").status_code == 200  # the cookie carries it from now on
    finally:
        server.stop()


def test_pages_render_what_the_store_holds(env):
    models = get(env, "/models/churn/2").text
    assert "lightgbm" in models and "roc_auc" in models and env["second"] in models
    compare = get(env, "/models/churn/compare?a=1&b=2").text
    assert "v1 vs v2" in compare and "linear" in compare and "lightgbm" in compare and "test roc_auc" in compare
    assert "different data" not in compare  # same table, same fingerprint
    run = get(env, f"/runs/{env['finished']}").text
    assert "churn@1" in run
    assert f"/files/artifacts/churn/{env['finished']}/audit.html" in run  # the audit training ran, from the artifact
    preds = get(env, "/predictions?model=churn&page=2").text
    assert "page 2 of 5" in preds and preds.count("<td><code>") == 50
    assert get(env, "/", follow_redirects=True).url.path == "/runs"


def test_audit_report_files_are_shown_and_nothing_outside_is_served(env):
    home, run_id = env["home"], env["finished"]
    folder = home / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    report = {"findings": [{"severity": "warning", "column": "charges", "what": "8% missing values",
                            "why": "models must impute them", "fix": "nothing: imputed in the pipeline"}]}
    (folder / "audit.json").write_text(json.dumps(report))
    (folder / "audit.html").write_text("<html><body><h1>Audit</h1></body></html>")
    run = get(env, f"/runs/{run_id}").text
    assert "8% missing values" in run and f"/files/runs/{run_id}/audit.html" in run
    data = get(env, f"/data?run_id={run_id}").text
    assert "charges" in data and "imputed in the pipeline" in data
    served = get(env, f"/files/runs/{run_id}/audit.html")
    assert served.status_code == 200 and "<h1>Audit</h1>" in served.text
    assert "default-src 'none'" in served.headers["content-security-policy"]
    # a run the audit stopped has no artifact: its findings come from the events the audit recorded
    stopped = env["store"].create_run("leaky")
    env["store"].update_run(stopped, status="failed", error="DataError: the data audit found 1 blocking problem")
    env["store"].add_event(stopped, "audit", "blocking: [leak] predicts the target alone",
                           data={"severity": "blocking", "column": "leak", "what": "predicts the target alone",
                                 "why": "it is not known at prediction time", "fix": "drop it with --ignore leak"})
    stopped_page = get(env, f"/runs/{stopped}").text
    assert "predicts the target alone" in stopped_page and "drop it with --ignore leak" in stopped_page
    assert stopped in get(env, "/data").text
    # a run still training has no report file yet: the whole report it logged first is shown (info findings too)
    training = env["store"].create_run("audited")
    env["store"].add_event(training, "audit", "data audit: 0 blocking, 1 warning, 1 info", data={"summary": {"warning": 1, "info": 1}, "findings": [
        {"severity": "warning", "column": "charges", "what": "8% missing", "why": "imputed", "fix": "nothing"},
        {"severity": "info", "column": "plan", "what": "three categories", "why": "", "fix": ""}]})
    env["store"].add_event(training, "audit", "warning: [charges] 8% missing", data={"severity": "warning", "column": "charges", "what": "8% missing"})
    training_page = get(env, f"/runs/{training}").text
    assert "three categories" in training_page and training_page.count("<td>8% missing</td>") == 1
    # the model card the evaluation writes for a version, outside the artifact
    cards = home / "reports" / "churn" / "v2"
    cards.mkdir(parents=True, exist_ok=True)
    (cards / "model_card.html").write_text("<html><body><h1>Model card churn v2</h1></body></html>")
    assert "/files/reports/churn/v2/model_card.html" in get(env, "/models/churn/2").text
    assert "/files/reports/churn/v2/model_card.html" in get(env, f"/runs/{env['second']}").text
    assert "Model card churn v2" in get(env, "/files/reports/churn/v2/model_card.html").text
    assert get(env, "/files/../trainyard.db").status_code == 404
    assert get(env, "/files/runs/%2e%2e/%2e%2e/trainyard.db").status_code == 404
    assert get(env, "/files/trainyard.db").status_code == 404


def test_try_a_model_coerces_form_values_and_explains_bad_ones(env):
    schema = get(env, "/api/models/churn@2/schema").json()
    assert {c["name"] for c in schema["columns"]} == {"tenure", "charges", "plan", "region", "support_calls"}
    out = post_json(env, "/api/models/churn@2/predict", {"rows": [{"tenure": "3", "charges": "", "plan": "monthly"}]})
    assert out.status_code == 200, out.text
    pred = out.json()["predictions"][0]
    assert pred["churn_predicted"] in ("yes", "no") and abs(pred["proba_yes"] + pred["proba_no"] - 1) < 1e-6
    bad = post_json(env, "/api/models/churn@2/predict", {"rows": [{"tenure": "three"}]})
    assert bad.status_code == 400 and "'three' is not a number" in bad.json()["error"]
    empty = post_json(env, "/api/models/churn@2/predict", {"rows": [{"colour": "red"}]})
    assert empty.status_code == 400 and "None of the model's input columns" in empty.json()["error"]


def test_reading_never_waits_for_a_writer(env):
    """A training process holding the write lock must not stall the dashboard."""
    from trainyard.registry.store import Store

    db = env["home"] / "trainyard.db"
    conn = sqlite3.connect(db, timeout=1, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO events (run_id, kind, message, created_at) VALUES (?, 'log', 'held', ?)",
                 (env["running"], datetime.now(timezone.utc).isoformat()))
    try:
        for path in ("/runs", f"/runs/{env['running']}", "/models", "/monitoring", "/predictions"):
            # the SQLite busy timeout is 60 s: a page that waited for the lock would time out here
            assert get(env, path, timeout=30).status_code == 200
        opened = Store(f"sqlite:///{db}")  # opening the workspace (as `trainyard runs` or the monitor does) does not wait either
        assert opened.count_runs() > 0
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_monitoring_page_reports_drift_against_the_training_reference(env):
    page = get(env, "/monitoring?model=churn").text
    assert 'data-column="charges" data-status="drift"' in page
    assert 'data-column="tenure" data-status="ok"' in page and 'data-column="plan" data-status="ok"' in page
    assert "240 logged rows" in page and "held-out test set" in page
    data = json.loads(page.split('<script type="application/json" id="monitoring-data">')[1].split("</script>")[0])
    assert len(data["periods"]) == 6 and data["rows"] == [40] * 6
    assert [("charges" in d) for d in data["drifted"]] == [False] * 4 + [True] * 2
    assert min(data["scores"]["charges"][4:]) > 2 * max(data["scores"]["charges"][:4])
    assert data["metric"] == "roc_auc" and len(data["performance"]) == 6


def test_monitoring_summary_flags_the_drifting_feature():
    from trainyard.dashboard.monitoring import summarize

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    import numpy as np

    rng = np.random.default_rng(1)
    rows = []
    for day in range(4):
        for i in range(300):
            rows.append({"request_id": uuid.uuid4().hex, "created_at": start + timedelta(days=day, minutes=i),
                         "inputs": {"stable": float(rng.normal()), "moving": float(rng.normal(3 * (day == 3))),
                                    "colour": str(rng.choice(["red", "blue"] if day < 3 else ["green"]))},
                         "outputs": {"y_predicted": "a"}, "label": "a" if i % 3 else ("b" if day else None)})
    s = summarize(rows, task="binary")
    assert s["volume"] == [300, 300, 300, 300] and len(s["buckets"]) == 4
    assert s["drift"]["moving"][-1] > 0.25 and s["drift"]["colour"][-1] > 0.25
    assert all(v < 0.1 for v in s["drift"]["stable"][1:]) and max(s["drift"]["moving"][:3]) < 0.1
    perf = s["performance"]
    assert perf["metric"] == "accuracy" and perf["values"][0] == 1.0 and abs(perf["values"][1] - 2 / 3) < 0.01


def test_ui_command_errors_are_one_line(cli, tmp_path):
    missing = cli("ui", "--token-file", tmp_path / "nope.txt", "--port", "18999")
    assert missing.code == 2 and "Cannot read the token file" in missing.stderr and "Traceback" not in missing.output
    short = tmp_path / "short.txt"
    short.write_text("abc\n")
    weak = cli("ui", "--token-file", short, "--port", "18999")
    assert weak.code == 2 and "too short" in weak.stderr
    bad_port = cli("ui", "--port", "70000")
    assert bad_port.code == 2 and "not a port number" in bad_port.stderr
    assert "ui" in cli("--help").stdout


def compare_data(page: str) -> dict:
    return json.loads(page.split('<script type="application/json" id="compare-data">')[1].split("</script>")[0])


def test_compare_charts_come_from_the_stored_evaluations(env):
    home = env["home"]
    cards = {v: json.loads((home / "reports" / "churn" / f"v{v}" / "model_card.json").read_text()) for v in (1, 2)}
    page = get(env, "/models/churn/compare?a=1&b=2").text
    data = compare_data(page)
    assert data["labels"] == ["v1", "v2"] and data["evaluated"] == ["v1", "v2"]
    # metrics with their bootstrap intervals, one chart for scores in [0, 1]
    unit = data["metrics"][0]
    assert unit["key"] == "unit" and "roc_auc" in unit["categories"] and "brier" in unit["categories"]
    for v in (1, 2):
        auc = next(r for r in cards[v]["metrics"] if r["metric"] == "roc_auc")
        i = unit["categories"].index("roc_auc")
        series = unit["series"][f"v{v}"]
        assert (series["value"][i], series["low"][i], series["high"][i]) == (auc["value"], auc["ci_low"], auc["ci_high"])
        # calibration: the non-empty bins of the reliability curve and the ECE
        rel = cards[v]["calibration"]["reliability"]
        curve = data["calibration"][f"v{v}"]
        assert curve["ece"] == rel["ece"] and curve["rows"] == [c for c in rel["count"] if c]
        assert curve["predicted"] == [p for p in rel["mean_predicted"] if p is not None]
        assert f"{rel['ece']:.4f}" in page
    # fairness by region: every group of either version, one chart per group metric
    (region,) = data["fairness"]
    assert region["column"] == "region" and region["missing"] == []
    assert {"east", "north", "south", "west"} <= set(region["groups"])
    assert [c["metric"] for c in region["charts"]] == ["accuracy", "recall", "precision", "roc_auc"]
    east = next(g for g in cards[2]["fairness"]["columns"][0]["groups"] if g["group"] == "east")
    acc = region["charts"][0]
    assert acc["series"]["v2"]["value"][acc["categories"].index("east")] == east["metrics"]["accuracy"]["value"]
    assert "demographic_parity_difference" in region["gap_names"] and 'data-source="fairness"' in page
    # feature importance: permutation importance, largest first, whiskers at +-1 std
    imp = data["importance"]
    assert set(imp["categories"]) == {"tenure", "charges", "plan", "region", "support_calls"}
    top = cards[1]["explanations"]["permutation_importance"][0]
    i = imp["categories"].index(top["column"])
    assert imp["series"]["v1"]["value"][i] == top["importance"]
    assert abs(imp["series"]["v1"]["high"][i] - imp["series"]["v1"]["low"][i] - 2 * top["std"]) < 1e-12
    assert '<script src="/static/compare.js" defer></script>' in page


def test_side_by_side_says_what_one_version_lacks():
    from trainyard.dashboard.compare import side_by_side

    evaluated = {"metrics": [{"metric": "rmse", "value": 12.5, "ci_low": 11.0, "ci_high": 14.0},
                             {"metric": "r2", "value": 0.8, "ci_low": 0.7, "ci_high": 0.9}],
                 "fairness": {"columns": [{"column": "sex", "groups": [{"group": "f", "rows": 30, "metrics": {"mae": {"value": 3.0}}},
                                                                       {"group": "m", "rows": 5, "small": True, "metrics": {"mae": {"value": 9.0}}}],
                                           "flags": ["sex: too different"], "gaps": {"mae_ratio": {"value": 3.0, "bound": 1.25, "flagged": True}}}]}}
    data = side_by_side({"version": 3, "evaluation": {"json": evaluated}, "meta": {}},
                        {"version": 4, "evaluation": {"json": None}, "meta": {"feature_importance": {"x": 0.5, "y": 0.25}}})
    assert data["evaluated"] == ["v3"]
    assert [c["key"] for c in data["metrics"]] == ["unit", "rmse"]  # rmse is not on the 0..1 scale
    assert data["metrics"][1]["series"] == {"v3": {"value": [12.5], "low": [11.0], "high": [14.0]},
                                            "v4": {"value": [None], "low": [None], "high": [None]}}
    assert data["calibration"] is None  # a regression: no reliability curve
    (sex,) = data["fairness"]
    assert sex["missing"] == ["v4"] and sex["small"] == ["m"] and sex["flags"] == {"v3": ["sex: too different"]}
    assert data["importance"]["categories"] == ["x", "y"] and data["importance"]["series"]["v4"]["low"] == [None, None]
    same = side_by_side({"version": 2, "evaluation": {}, "meta": {}}, {"version": 2, "evaluation": {}, "meta": {}})
    assert same["labels"] == ["v2", "v2 (again)"] and same["metrics"] == [] and same["importance"] is None


def test_neural_and_language_model_pages(env):
    lm_run = get(env, f"/runs/{env['lm_run']}").text
    assert "perplexity (lower is better)" in lm_run and 'data-higher-better="false"' in lm_run
    assert "no search trials" in lm_run
    lm_model = get(env, "/models/corpus/1").text
    assert "val_perplexity" in lm_model and "unigram_perplexity" in lm_model and "No metrics recorded" not in lm_model
    image_run = get(env, f"/runs/{env['image_run']}").text
    assert "image-classification" in image_run and "accuracy (higher is better)" in image_run
    image_model = get(env, "/models/shapes/1").text
    assert 'id="metrics-table"' in image_model and "held-out test" in image_model
    preds = get(env, "/predictions").text
    options = preds.split('id="try-model">')[1].split("</select>")[0]
    assert "churn@2" in options and "corpus@1" not in options and "shapes@1" not in options
    assert "corpus@1" in preds.split('id="try-other"')[1]
    # two language-model versions side by side: registry metrics only, nothing claimed that was not measured
    lm_compare = get(env, "/models/corpus/compare?a=1&b=1").text
    assert "val_perplexity" in lm_compare and "Neither version has a stored test evaluation" in lm_compare
    assert "test rows (split seed)" not in lm_compare and "same data" not in lm_compare  # no split, no fingerprint recorded
    assert 'class="num better"' not in lm_compare and 'class="num worse"' not in lm_compare  # equal values are not coloured
