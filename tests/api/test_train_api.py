"""The Python API end to end: train, register, load, predict; artifacts refuse tampering."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine

import trainyard
from trainyard.errors import ArtifactError, ConfigError, DataError, NotFoundError
from trainyard.registry.workspace import Workspace


def test_train_binary_registers_and_predicts_raw_rows(workspace, mixed_table):
    result = trainyard.train(mixed_table, target="churn", time_limit=60, name="churn", include=["linear", "lightgbm"], max_trials=2)
    assert result.task == "binary" and result.metric == "roc_auc"
    assert result.version == 1 and result.name == "churn"
    assert set(result.leaderboard["family"]) == {"linear", "lightgbm"}
    # a learnable target: clearly better than the naive baseline on the untouched test set
    assert result.metrics["roc_auc"] > 0.7 and result.baseline["roc_auc"] == 0.5
    assert result.split["test"] == 120
    # predict takes raw rows, including missing values and an absent optional column
    rows = mixed_table.drop(columns=["churn"]).head(5).copy()
    rows.loc[rows.index[0], "charges"] = np.nan
    labels = result.model.predict(rows.drop(columns=["region"]))
    assert set(labels) <= {"yes", "no"} and len(labels) == 5
    proba = result.model.predict_proba(rows)
    assert list(proba.columns) == ["no", "yes"] and np.allclose(proba.sum(axis=1), 1)
    loaded = trainyard.load("churn")
    assert np.allclose(loaded.predict_proba(rows), proba)
    assert np.array_equal(trainyard.load("churn@1").predict(rows), result.model.predict(rows))
    store = Workspace.resolve().store
    run = store.get_run(result.run_id)
    assert run["status"] == "finished" and run["model_version"] == 1
    assert {t["family"] for t in store.trials(result.run_id)} <= {"linear", "lightgbm", "ensemble"}
    assert len([t for t in store.trials(result.run_id) if t["family"] != "ensemble"]) == 2


def test_multiclass_and_regression(workspace):
    wine = load_wine(as_frame=True).frame
    r = trainyard.train(wine, target="target", name="wine", include=["linear"], max_trials=1)
    assert r.task == "multiclass" and r.metrics["accuracy"] > 0.85
    diabetes = load_diabetes(as_frame=True).frame
    r = trainyard.train(diabetes, target="target", name="diabetes", include=["linear", "lightgbm"], max_trials=2)
    assert r.task == "regression" and r.metric == "rmse"
    assert r.metrics["rmse"] < r.baseline["rmse"]


def test_same_seed_same_predictions(workspace, mixed_table):
    a = trainyard.train(mixed_table, target="churn", name="a", include=["lightgbm"], seed=7, max_trials=2)  # a trial budget, not a clock: reproducible
    b = trainyard.train(mixed_table, target="churn", name="b", include=["lightgbm"], seed=7, max_trials=2)  # a trial budget, not a clock: reproducible
    X = mixed_table.drop(columns=["churn"])
    assert np.array_equal(a.model.predict_proba_array(X), b.model.predict_proba_array(X))


def test_versions_increment_and_refs_resolve(workspace, mixed_table):
    for _ in range(2):
        trainyard.train(mixed_table, target="churn", name="churn", include=["linear"], max_trials=1)
    store = Workspace.resolve().store
    assert [r["version"] for r in store.list_models("churn")] == [2, 1]
    store.set_alias("churn", "production", 1)
    assert store.resolve_model("churn@production")["version"] == 1
    assert store.resolve_model("churn")["version"] == 2
    with pytest.raises(NotFoundError, match="no version 9"):
        trainyard.load("churn@9")
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        trainyard.load("churn@staging")
    with pytest.raises(NotFoundError) as info:
        trainyard.load("chrun")
    assert "'churn'" in info.value.fix


def _artifact_dir(name: str):
    ws = Workspace.resolve()
    return ws.home / ws.store.resolve_model(name)["artifact_path"]


def test_tampered_model_file_is_refused(workspace, mixed_table):
    trainyard.train(mixed_table, target="churn", name="churn", include=["linear"], max_trials=1)
    model_file = _artifact_dir("churn") / "model.joblib"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="altered: model.joblib"):
        trainyard.load("churn")


def test_tampered_metadata_is_refused(workspace, mixed_table):
    trainyard.train(mixed_table, target="churn", name="churn", include=["linear"], max_trials=1)
    meta_file = _artifact_dir("churn") / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["metrics"]["test"]["roc_auc"] = 0.99
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="meta.json does not match"):
        trainyard.load("churn")


def test_missing_artifact_is_reported(workspace, mixed_table):
    import shutil

    trainyard.train(mixed_table, target="churn", name="churn", include=["linear"], max_trials=1)
    shutil.rmtree(_artifact_dir("churn"))
    with pytest.raises(ArtifactError, match="missing or incomplete"):
        trainyard.load("churn")


def test_failed_run_is_recorded_and_workspace_stays_usable(workspace, mixed_table):
    bad = mixed_table.assign(plan=np.nan, region=np.nan, tenure=1.0, charges=2.0, support_calls=3)
    with pytest.raises(DataError, match="No usable feature columns"):
        trainyard.train(bad, target="churn", name="churn")
    ok = trainyard.train(mixed_table, target="churn", name="churn", include=["linear"], max_trials=1)
    assert ok.version == 1


def test_config_errors_name_the_fix(workspace, mixed_table):
    with pytest.raises(ConfigError, match="not a model family") as info:
        trainyard.train(mixed_table, target="churn", include=["lightgbn"])
    assert "lightgbm" in info.value.fix
    with pytest.raises(ConfigError, match="not a preset"):
        trainyard.train(mixed_table, target="churn", preset="quick")
    with pytest.raises(ConfigError, match="does not apply to binary"):
        trainyard.train(mixed_table, target="churn", metric="rmse")
    with pytest.raises(ConfigError, match="not a metric"):
        trainyard.train(mixed_table, target="churn", metric="auc_roc")
    with pytest.raises(ConfigError, match="must be positive"):
        trainyard.train(mixed_table, target="churn", time_limit=-5)
    with pytest.raises(DataError, match="needs exactly 2 classes"):
        trainyard.train(load_wine(as_frame=True).frame, target="target", task="binary")
    with pytest.raises(DataError, match="too few"):
        trainyard.train(mixed_table.head(10), target="churn")


def test_missing_target_rows_are_dropped_not_fatal(workspace, mixed_table):
    df = mixed_table.copy()
    df.loc[df.index[:50], "churn"] = np.nan
    r = trainyard.train(df, target="churn", name="churn", include=["linear"], max_trials=1)
    assert sum(r.split[k] for k in ("train", "val", "test")) == len(df) - 50
    events = Workspace.resolve().store.events(r.run_id)
    assert any("dropped 50 rows" in e["message"] for e in events)


def test_text_and_datetime_columns_train(workspace):
    rng = np.random.default_rng(0)
    n = 400
    words_pos, words_neg = ["great", "love", "excellent", "happy"], ["awful", "hate", "broken", "sad"]
    y = rng.integers(0, 2, n)
    text = [" ".join(rng.choice(words_pos if v else words_neg, 5)) + " the product was here" for v in y]
    df = pd.DataFrame({"review": text, "when": pd.date_range("2021-01-01", periods=n, freq="h").astype(str),
                       "price": rng.normal(10, 2, n), "y": y})
    r = trainyard.train(df, target="y", name="reviews", include=["linear", "lightgbm"], max_trials=2)
    assert r.model.schema.role("review") == "text" and r.model.schema.role("when") == "datetime"
    assert r.metrics["roc_auc"] > 0.95
