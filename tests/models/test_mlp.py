"""The tabular MLP family: a scikit-learn estimator on the loop, in `trainyard train --include mlp`."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from trainyard.models.mlp import MLP  # noqa: E402
from trainyard.registry.tracking import RunLog  # noqa: E402
from trainyard.registry.workspace import Workspace  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    color = pd.Categorical(rng.choice(["red", "green", "blue"], n), categories=["blue", "green", "red"])
    x1 = rng.normal(size=n)
    x2 = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
    X = pd.DataFrame({"x1": x1, "x2": x2, "color": color})
    logit = 2 * x1 + np.where(color == "red", 2.0, -1.0) + np.nan_to_num(x2)
    return X, (logit > 0).astype(int), 3 * x1 + np.where(color == "red", 5.0, 0.0)


def test_mlp_classifies_with_embeddings_and_pickles_with_safetensors():
    X, y, _ = _frame()
    model = MLP(task="binary", epochs=30, hidden=(32,), lr=0.01, batch_size=64).fit(X[:300], y[:300])
    accuracy = (model.predict(X[300:]) == y[300:]).mean()
    assert accuracy > 0.85
    assert model.cardinalities_ == [4] and model.missing_cols_ == [1]
    assert model.predict_proba(X[:5]).shape == (5, 2)
    state = model.__getstate__()
    assert "module_" not in state and state["_weights_safetensors"][:8]  # weights travel as safetensors bytes
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.predict_proba(X), model.predict_proba(X))
    unseen = X[:3].copy()
    unseen["color"] = pd.Categorical(["purple", None, "red"], categories=["blue", "green", "red"])
    assert model.predict(unseen).shape == (3,)  # unknown and missing categories share the 0 embedding


def test_mlp_regression_and_metrics_reach_the_store(workspace):
    X, _, target = _frame(500)
    store = Workspace.resolve().store
    run_id = store.create_run("mlp-test", kind="deep")
    model = MLP(task="regression", epochs=25, hidden=(64,), lr=0.01, batch_size=64)
    model.fit(X[:400], target[:400], log=RunLog(store, run_id))
    rmse = float(np.sqrt(np.mean((model.predict(X[400:]) - target[400:]) ** 2)))
    assert rmse < 0.5 * np.std(target)
    keys = {row["key"] for row in store.metric_history(run_id)}
    assert {"train_loss", "lr", "val_loss", "val_rmse", "epoch_train_loss"} <= keys
    losses = [row["value"] for row in store.metric_history(run_id, "train_loss")]
    assert len(losses) == model.n_steps_ and np.mean(losses[-5:]) < np.mean(losses[:5])


def test_train_include_mlp_registers_a_model(workspace, mixed_table):
    import trainyard

    result = trainyard.train(mixed_table, target="churn", include=["mlp"], time_limit=120, name="churn-mlp")
    assert result.model.family == "mlp"
    assert result.metrics["roc_auc"] > 0.7
    loaded = trainyard.load("churn-mlp")
    assert np.allclose(loaded.predict_proba_array(mixed_table.head(20)), result.model.predict_proba_array(mixed_table.head(20)))


def test_cli_train_include_mlp(cli, mixed_csv):
    out = cli("train", mixed_csv, "--target", "churn", "--include", "mlp", "--time-limit", "120", env={"OMP_NUM_THREADS": "1"})
    assert out.code == 0, out.output
    assert "mlp" in out.stdout and "Registered" in out.stdout


def test_mlp_stops_within_its_time_budget_with_a_whole_model():
    """AutoML gives the MLP a time budget like boosting and forests: the loop stops cleanly when it runs out."""
    import time

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20000, 20)), columns=[f"f{i}" for i in range(20)])
    y = (X["f0"] + X["f1"] > 0).astype(int).to_numpy()
    model = MLP(task="binary", epochs=500, batch_size=64, patience=None, time_budget_s=2.0)
    assert "time_budget_s" in model.get_params()
    t0 = time.perf_counter()
    model.fit(X, y)
    assert time.perf_counter() - t0 < 30  # 500 epochs would take many minutes
    assert model.stopped_by_time_
    assert (model.predict(X.head(500)) == y[:500]).mean() > 0.8
