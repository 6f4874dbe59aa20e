"""The model server over real HTTP: prediction, validation, safety, hot swap and the prediction log."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from servehelp import running_server, train_churn

from trainyard.errors import ArtifactError, ConfigError
from trainyard.serve.app import ServeSettings
from trainyard.serve.security import check_bind, is_loopback
from trainyard.registry.workspace import Workspace

GOOD = {"tenure": 3, "charges": 50.5, "plan": "monthly", "region": "north", "support_calls": 1}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A workspace with churn@1 (LightGBM) and churn@2 (linear), production -> 1."""
    home = tmp_path_factory.mktemp("serve") / "ws"
    train_churn(home, ("lightgbm",))
    train_churn(home, ("linear",), seed=1)
    Workspace.resolve(home).store.set_alias("churn", "production", 1)
    return home


@pytest.fixture(scope="module")
def server(home):
    with running_server(ServeSettings(refs=["churn@production"], workspace=str(home), poll_interval=0.1)) as (url, app):
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, app


def test_single_row_prediction_matches_the_loaded_model(server, home):
    from trainyard import api

    client, _ = server
    r = client.post("/v1/models/churn/predict", json={"rows": [GOOD]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 1 and body["model"] == "churn"
    assert r.headers["x-request-id"] == body["request_id"] == body["predictions"][0]["id"]
    pred = body["predictions"][0]
    model = api.load("churn@1", home)
    expected = model.predict_proba(pd.DataFrame([GOOD]))
    assert pred["probabilities"]["yes"] == pytest.approx(float(expected["yes"].iloc[0]), abs=1e-9)
    assert pred["prediction"] == model.predict(pd.DataFrame([GOOD]))[0]
    assert sum(pred["probabilities"].values()) == pytest.approx(1.0)


def test_batch_and_client_request_id(server):
    client, _ = server
    rows = [GOOD, {**GOOD, "tenure": 60, "plan": "two-year"}, {**GOOD, "support_calls": 6}]
    r = client.post("/v1/models/churn/predict", json={"rows": rows}, headers={"X-Request-ID": "order-42"})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [p["id"] for p in preds] == ["order-42:0", "order-42:1", "order-42:2"]
    assert len({round(p["probabilities"]["yes"], 6) for p in preds}) == 3


def test_big_batch_goes_through_the_dataframe_path_with_the_same_numbers(server, home):
    from trainyard import api
    from conftest import make_mixed_table

    client, _ = server
    X = make_mixed_table(600, seed=0).drop(columns="churn").head(200)  # rows from the training table: inside the seen ranges
    rows = [{k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))} for r in X.to_dict("records")]
    r = client.post("/v1/models/churn/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    got = np.array([p["probabilities"]["yes"] for p in r.json()["predictions"]])
    expected = api.load("churn@1", home).predict_proba(X)["yes"].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_csv_body_and_upload(server):
    client, _ = server
    csv = b"tenure,charges,plan,region,support_calls\n3,50.5,monthly,north,1\n10,,yearly,,2\n"
    r = client.post("/v1/models/churn/predict/csv", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2
    r = client.post("/v1/models/churn/predict/csv?format=csv", files={"file": ("rows.csv", csv, "text/csv")})
    assert r.status_code == 200, r.text
    lines = r.text.strip().splitlines()
    assert lines[0] == "id,prediction,proba_no,proba_yes" and len(lines) == 3
    as_field = client.post("/v1/models/churn/predict/csv", files={"file": (None, csv)})  # a multipart field with no file name
    assert as_field.status_code == 200 and len(as_field.json()["predictions"]) == 2, as_field.text
    png = client.post("/v1/models/churn/predict/csv", files={"file": ("x.png", b"\x89PNG\r\n\x1a\n\x00", "image/png")})
    assert png.status_code == 422 and "not readable CSV" in png.json()["message"]
    bad = client.post("/v1/models/churn/predict/csv", content=b"tenure,plan,support_calls\nabc,monthly,1\n", headers={"content-type": "text/csv"})
    assert bad.status_code == 422 and "tenure" in bad.json()["message"]


@pytest.mark.parametrize("row, column, words", [
    ({**GOOD, "colour": "red"}, "colour", "unknown column"),
    ({**GOOD, "tenure": "three"}, "tenure", "expected a finite number"),
    ({k: v for k, v in GOOD.items() if k != "plan"}, "plan", "missing required column"),
    ({**GOOD, "tenure": 500}, "tenure", "outside the range seen in training"),
    ({**GOOD, "plan": "weekly"}, "plan", "unknown category"),
    ({**GOOD, "tenure": None}, "tenure", "never missing in training"),
])
def test_invalid_rows_get_422_naming_column_and_problem(server, row, column, words):
    client, _ = server
    r = client.post("/v1/models/churn/predict", json={"rows": [GOOD, row]})
    assert r.status_code == 422
    body = r.json()
    problem = body["detail"][0]
    assert problem["row"] == 1 and problem["column"] == column
    assert words in problem["problem"] and f"'{column}'" in body["message"]


def test_optional_columns_may_be_absent_or_null(server):
    client, _ = server
    # charges and region had missing values in training: absent or null means missing (imputed as in training)
    row = {k: v for k, v in GOOD.items() if k not in ("charges", "region")}
    assert client.post("/v1/models/churn/predict", json={"rows": [row]}).status_code == 200
    assert client.post("/v1/models/churn/predict", json={"rows": [{**GOOD, "region": None}]}).status_code == 200
    # the target and other known non-feature columns are accepted and ignored
    assert client.post("/v1/models/churn/predict", json={"rows": [{**GOOD, "churn": "yes"}]}).status_code == 200


def test_malformed_bodies_are_4xx_not_5xx(server):
    client, _ = server
    for body in (b"not json", b"{}", b'{"rows": []}', b'{"rows": [5]}', b'{"rows": {"a": 1}}', b'[]', b'{"rows": [{}], "x": 1}'):
        r = client.post("/v1/models/churn/predict", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert r.json()["message"]
    assert client.post("/v1/models/chrun/predict", json={"rows": [GOOD]}).status_code == 404


def test_health_ready_models_metrics_and_openapi(server):
    import gc

    client, _ = server
    assert gc.get_freeze_count() > 10_000  # the loaded model is kept out of full garbage collections (p99 stalls)
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ready"
    info = client.get("/v1/models").json()["models"][0]
    assert info["version"] == 1 and info["classes"] == ["no", "yes"] and info["ref"] == "churn@production"
    features = {f["name"]: f for f in info["features"]}
    assert features["tenure"]["required"] and not features["charges"]["required"]
    assert info["metrics"]["test"]["roc_auc"] > 0.5 and info["fast_path"] is True
    client.post("/v1/models/churn/predict", json={"rows": [GOOD]})
    text = client.get("/metrics").text
    assert 'trainyard_requests_total{model="churn",version="1",endpoint="predict",status="200"}' in text
    assert "trainyard_request_seconds_bucket" in text and 'trainyard_model_version{model="churn",ref="churn@production"} 1' in text
    doc = client.get("/openapi.json").json()
    ref = doc["paths"]["/v1/models/churn/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    row = doc["components"]["schemas"][ref.rsplit("/", 1)[1].replace("Request", "")]
    assert row["properties"]["plan"]["enum"] == sorted(row["properties"]["plan"]["enum"], key=["monthly", "yearly", "two-year"].index)
    assert row["properties"]["tenure"]["maximum"] == 71.0 and "tenure" in row["required"] and "charges" not in row["required"]
    assert row["additionalProperties"] is False


def test_body_and_batch_limits(home):
    settings = ServeSettings(refs=["churn@1"], workspace=str(home), max_body_bytes=2000, max_batch=5, log_predictions=False)
    with running_server(settings) as (url, _):
        r = httpx.post(f"{url}/v1/models/churn/predict", json={"rows": [GOOD] * 30})
        assert r.status_code == 413
        r = httpx.post(f"{url}/v1/models/churn/predict", json={"rows": [GOOD] * 6})
        assert r.status_code == 422 and "at most 5" in r.json()["message"]

        def chunks():  # no Content-Length: the limit is enforced while streaming
            for _ in range(30):
                yield b'{"rows": [' + b" " * 100

        r = httpx.post(f"{url}/v1/models/churn/predict", content=chunks())
        assert r.status_code == 413


def test_bind_rule():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.com")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "x" * 32)
    with pytest.raises(ConfigError, match="without a token"):
        check_bind("0.0.0.0", None)


def test_cli_refuses_public_bind_without_token(cli, home):
    res = cli("serve", "churn", "--host", "0.0.0.0", env={"TRAINYARD_HOME": str(home)})
    assert res.code == 2 and "without a token" in res.output and "--token-file" in res.output


def test_bearer_token_required_when_configured(home, tmp_path):
    token = "s3cret-token-0123456789abcdef"
    (tmp_path / "t.txt").write_text(token + "\n")
    settings = ServeSettings(refs=["churn@1"], workspace=str(home), token_file=str(tmp_path / "t.txt"), log_predictions=False)
    with running_server(settings) as (url, _):
        assert httpx.post(f"{url}/v1/models/churn/predict", json={"rows": [GOOD]}).status_code == 401
        wrong = {"Authorization": "Bearer nope-nope-nope-nope"}
        assert httpx.post(f"{url}/v1/models/churn/predict", json={"rows": [GOOD]}, headers=wrong).status_code == 401
        assert httpx.get(f"{url}/openapi.json").status_code == 401
        ok = {"Authorization": f"Bearer {token}"}
        assert httpx.post(f"{url}/v1/models/churn/predict", json={"rows": [GOOD]}, headers=ok).status_code == 200
        assert httpx.get(f"{url}/health").status_code == 200 and httpx.get(f"{url}/ready").status_code == 200


def test_tampered_artifact_refused(tmp_path):
    home = tmp_path / "ws"
    train_churn(home, ("linear",))
    ws = Workspace.resolve(home)
    model_file = next((ws.home / ws.store.get_model("churn", 1)["artifact_path"]).glob("model.joblib"))
    data = bytearray(model_file.read_bytes())
    data[-10] ^= 0xFF
    model_file.write_bytes(bytes(data))
    from trainyard.serve.app import create_app

    with pytest.raises(ArtifactError, match="altered"):
        create_app(ServeSettings(refs=["churn"], workspace=str(home)))


def test_hot_swap_under_load_has_zero_failures_and_refuses_a_tampered_version(home):
    store = Workspace.resolve(home).store
    store.set_alias("churn", "staging", 1)
    settings = ServeSettings(refs=["churn@staging"], workspace=str(home), poll_interval=0.05, log_predictions=False)
    with running_server(settings) as (url, app):
        seen, failures, stop = [], [], threading.Event()

        def hammer():
            with httpx.Client(base_url=url, timeout=30) as c:
                while not stop.is_set():
                    r = c.post("/v1/models/churn/predict", json={"rows": [GOOD]})
                    (seen if r.status_code == 200 else failures).append(r.json().get("version") if r.status_code == 200 else r.text)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(seen) < 20 and time.monotonic() < deadline:  # requests are flowing on version 1
            time.sleep(0.02)
        store.set_alias("churn", "staging", 2)
        deadline = time.monotonic() + 20
        while (not seen or seen[-1] != 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        assert failures == []
        assert 1 in seen and seen[-1] == 2
        first_two = seen.index(2)
        assert all(v == 2 for v in seen[first_two + 8:])  # once swapped, it stays swapped (a few in-flight may finish on 1)
        slot = app.state.trainyard.slots["churn"]
        assert slot.swaps == 1

        # a tampered new version is refused; the old one keeps serving and /ready says why
        v2 = store.get_model("churn", 2)
        copy = home / "artifacts" / "churn" / "tampered"
        shutil.copytree(home / v2["artifact_path"], copy)
        (copy / "model.joblib").write_bytes(b"not a model")
        v3 = store.register_model("churn", artifact_path=str(copy.relative_to(home)), meta_sha256=v2["meta_sha256"], run_id=v2["run_id"])
        store.set_alias("churn", "staging", v3)
        deadline = time.monotonic() + 10
        while slot.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "altered" in (slot.last_error or "")
        r = httpx.post(f"{url}/v1/models/churn/predict", json={"rows": [GOOD]})
        assert r.status_code == 200 and r.json()["version"] == 2
        assert "altered" in httpx.get(f"{url}/ready").json()["problems"]["churn@staging"]
        store.delete_model_version("churn", v3, force=True)
        shutil.rmtree(copy)


def test_prediction_log_rows_written(server, home):
    client, app = server
    r = client.post("/v1/models/churn/predict", json={"rows": [GOOD, {**GOOD, "tenure": 9}]}, headers={"X-Request-ID": "log-test-1"})
    assert r.status_code == 200
    assert app.state.trainyard.logger.flush(10)
    store = Workspace.resolve(home).store
    rows = {p["request_id"]: p for p in store.list_predictions("churn", limit=100) if p["request_id"].startswith("log-test-1")}
    assert set(rows) == {"log-test-1:0", "log-test-1:1"}
    assert rows["log-test-1:1"]["inputs"]["tenure"] == 9 and rows["log-test-1:1"]["version"] == 1
    assert rows["log-test-1:0"]["outputs"]["probabilities"]["yes"] == pytest.approx(r.json()["predictions"][0]["probabilities"]["yes"])


def test_boolean_in_a_numeric_column_is_refused(server):
    client, _ = server
    r = client.post("/v1/models/churn/predict", json={"rows": [{**GOOD, "support_calls": False}]})
    assert r.status_code == 422 and r.json()["detail"][0]["column"] == "support_calls"


def test_multipart_upload_without_the_file_field_is_422(server):
    client, _ = server
    for kwargs in ({"data": {"rows": "tenure\n3\n"}}, {"files": {"upload": ("a.csv", b"tenure\n3\n", "text/csv")}},
                   {"content": b"--b--\r\n", "headers": {"content-type": "multipart/form-data; boundary=b"}},
                   {"content": b"no boundary", "headers": {"content-type": "multipart/form-data"}}):
        r = client.post("/v1/models/churn/predict/csv", **kwargs)
        assert r.status_code == 422, (kwargs, r.status_code, r.text)
        assert r.json()["message"]

