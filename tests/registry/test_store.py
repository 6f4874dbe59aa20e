"""The store on SQLite and on a real PostgreSQL server: same behaviour, transactional versions."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

import trainyard
from trainyard.errors import ConfigError
from trainyard.registry.store import Store, parse_ref
from trainyard.registry.workspace import Workspace


def test_parse_ref():
    assert parse_ref("churn") == ("churn", None)
    assert parse_ref("churn@3") == ("churn", "3")
    assert parse_ref("churn@production") == ("churn", "production")
    with pytest.raises(ConfigError):
        parse_ref("@3")


def _exercise(store: Store) -> None:
    run = store.create_run("m", task="binary", metric="roc_auc", config={"a": [1, 2]})
    store.add_trial(run, 0, "linear", params={"C": 1.0}, status="ok", val_score=0.8)
    store.log_metrics(run, 1, {"loss": 0.5, "acc": 0.7})
    store.add_event(run, "data", "hello")
    store.update_run(run, status="finished", best_score=0.8)
    assert store.get_run(run)["config"] == {"a": [1, 2]}
    assert store.get_run("last")["id"] == run
    assert store.trials(run)[0]["params"] == {"C": 1.0}
    assert {m["key"] for m in store.metric_history(run)} == {"loss", "acc"}
    # versions allocated inside transactions stay unique under concurrent writers
    versions: list[int] = []
    lock = threading.Lock()

    def register():
        v = store.register_model("m", artifact_path="x", meta_sha256="0" * 64, run_id=run)
        with lock:
            versions.append(v)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions) == list(range(1, 9))
    store.set_alias("m", "production", 3)
    store.set_alias("m", "production", 5)
    assert store.resolve_model("m@production")["version"] == 5
    _exercise_prediction_log(store)


def _exercise_prediction_log(store: Store) -> None:
    """The server's pre-encoded rows (JSON text handed to the driver as they are) read back like ordinary ones."""
    before = datetime.now(timezone.utc)
    store.log_predictions([{"request_id": "r1", "model_name": "p", "version": 2, "inputs": '{"age": 27, "city": "Nice"}',
                            "outputs": '{"prediction": "yes", "proba_yes": 0.75}'},
                           {"request_id": "r2", "model_name": "p", "version": 2, "inputs": '{"age": null}', "outputs": "{}"}],
                          encoded=True)
    store.log_predictions([{"request_id": "r3", "model_name": "p", "version": 2, "inputs": {"age": 30}, "outputs": {"prediction": "no"}}])
    rows = {r["request_id"]: r for r in store.list_predictions("p")}
    assert rows["r1"]["inputs"] == {"age": 27, "city": "Nice"} and rows["r1"]["outputs"]["proba_yes"] == 0.75
    assert rows["r2"]["inputs"] == {"age": None} and rows["r3"]["inputs"] == {"age": 30}
    stamps = [r["created_at"] for r in rows.values()]
    assert all(abs((s.replace(tzinfo=s.tzinfo or timezone.utc) - before).total_seconds()) < 60 for s in stamps), stamps
    assert {r["request_id"] for r in store.predictions("p", since=before - timedelta(seconds=1))} == {"r1", "r2", "r3"}
    assert store.list_models("m")[0]["version"] == 8


def test_store_on_sqlite(tmp_path):
    _exercise(Store(f"sqlite:///{tmp_path / 'db.sqlite'}"))


def test_store_on_postgresql(postgres_url):
    _exercise(Store(postgres_url))


def test_training_into_a_postgresql_workspace(postgres_url, tmp_path, monkeypatch, mixed_table):
    monkeypatch.setenv("TRAINYARD_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("TRAINYARD_DB", postgres_url)
    r = trainyard.train(mixed_table, target="churn", name="pg", include=["linear"], max_trials=1)
    assert Workspace.resolve().store.resolve_model("pg")["run_id"] == r.run_id
    assert trainyard.load(f"pg@{r.version}").predict(mixed_table.head(3)).shape == (3,)
