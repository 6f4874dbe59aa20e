"""LightGBM trees compiled to machine code (lleaves) for serving: same numbers as LightGBM, checked before use,
compiled in a child process while the server already answers."""

from __future__ import annotations

import httpx
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from servehelp import running_server, train_churn

from trainyard.models.compiled import LightGBMMember, compile_in_child
from trainyard.serve.app import ServeSettings
from trainyard.tasks import Task


def _table(n=600, seed=0):
    """Two numbers with missing values and one categorical column given to LightGBM as codes."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.uniform(0, 10, size=n), rng.integers(0, 6, size=n).astype(float)])
    X[rng.random(n) < 0.1, 0] = np.nan
    X[rng.random(n) < 0.05, 2] = np.nan
    score = X[:, 1] - 5 + np.where(np.isin(X[:, 2], [1, 4]), 2.0, -1.0) + np.nan_to_num(X[:, 0])
    return X, score


def _booster(task: Task, seed=0):
    X, score = _table(seed=seed)
    y = {Task.BINARY: (score > 0).astype(int), Task.MULTICLASS: np.digitize(score, [-1.5, 1.5]), Task.REGRESSION: score}[task]
    params = {"objective": {Task.BINARY: "binary", Task.MULTICLASS: "multiclass", Task.REGRESSION: "regression"}[task],
              "num_leaves": 15, "verbose": -1, "seed": seed, "min_data_per_group": 5, "cat_smooth": 1.0}
    if task is Task.MULTICLASS:
        params["num_class"] = 3
    data = lgb.Dataset(X, y, categorical_feature=[2], free_raw_data=False)
    return lgb.train(params, data, num_boost_round=40), X


@pytest.mark.parametrize("task", [Task.BINARY, Task.MULTICLASS, Task.REGRESSION])
def test_a_compiled_member_gives_lightgbms_numbers(task):
    booster, X = _booster(task)
    member = LightGBMMember(booster, task)
    before = member(X[:50])
    code, probe = compile_in_child(member.model_text())
    assert probe.shape[1] == 3 and np.isnan(probe).any()  # the probe rows reach the missing-value branches
    assert member.use(code, probe) <= 1e-9
    assert member.compiled is not None
    after = member(X[:50])
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-12)
    single = np.concatenate([member(X[i:i + 1]) for i in range(20)])  # one row at a time, as a server asks
    np.testing.assert_allclose(single, before[:20], rtol=0, atol=1e-12)
    if task is not Task.REGRESSION:
        assert after.shape == (50, 2 if task is Task.BINARY else 3)


def test_machine_code_from_another_model_is_refused_and_lightgbm_stays():
    first, _ = _booster(Task.BINARY, seed=0)
    second, X = _booster(Task.BINARY, seed=1)
    code, _ = compile_in_child(LightGBMMember(first, Task.BINARY).model_text())
    member = LightGBMMember(second, Task.BINARY)
    _, probe = compile_in_child(member.model_text())
    with pytest.raises(ValueError, match="differ from LightGBM"):
        member.use(code, probe)
    assert member.compiled is None
    np.testing.assert_allclose(member(X[:5])[:, 1], second.predict(X[:5]), atol=1e-12)


def test_bad_model_text_fails_in_the_child_with_its_reason():
    with pytest.raises(RuntimeError, match="LightGBMError"):  # the child's last line of stderr: LightGBM refused the text
        compile_in_child("this is not a LightGBM model")


def test_the_server_answers_at_once_then_switches_to_compiled_trees_with_the_same_numbers(tmp_path):
    from conftest import make_mixed_table

    from trainyard import api

    home = tmp_path / "ws"
    train_churn(home, ("lightgbm",))
    X = make_mixed_table(600, seed=0).drop(columns="churn").head(30)
    rows = [{k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))} for r in X.to_dict("records")]
    expected = api.load("churn@1", home).predict_proba(X)["yes"].to_numpy()
    settings = ServeSettings(refs=["churn"], workspace=str(home), poll_interval=0, log_predictions=False)
    with running_server(settings) as (url, app), httpx.Client(base_url=url, timeout=30) as client:
        compilation = app.state.trainyard.slots["churn"].current.compilation
        assert compilation is not None and compilation.info()["lightgbm_members"] >= 1
        assert compilation.wait(timeout=240)
        info = client.get("/v1/models/churn").json()["compiled_trees"]
        assert info["state"] == "done" and info["compiled"] == info["lightgbm_members"], info
        got = [client.post("/v1/models/churn/predict", json={"rows": [row]}).json()["predictions"][0]["probabilities"]["yes"]
               for row in rows]
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_no_compile_keeps_lightgbm(tmp_path):
    home = tmp_path / "ws"
    train_churn(home, ("lightgbm",))
    settings = ServeSettings(refs=["churn"], workspace=str(home), poll_interval=0, log_predictions=False, compile_trees=False)
    with running_server(settings) as (url, app), httpx.Client(base_url=url, timeout=30) as client:
        assert app.state.trainyard.slots["churn"].current.compilation is None
        assert client.get("/v1/models/churn").json()["compiled_trees"] == {"state": "off"}
        assert pd.notna(client.post("/v1/models/churn/predict", json={"rows": [{"tenure": 3, "charges": 50.5, "plan": "monthly",
                                                                              "region": "north", "support_calls": 1}]}).json()["predictions"][0]["prediction"])


def test_stopping_kills_the_compiler_and_keeps_lightgbm():
    from trainyard.serve.compiling import TreeCompilation

    booster, X = _booster(Task.MULTICLASS)
    members = [LightGBMMember(booster, Task.MULTICLASS), LightGBMMember(booster, Task.MULTICLASS)]
    compilation = TreeCompilation("test", members).start()
    compilation.stop()
    assert compilation.wait(timeout=120)
    assert compilation.info()["state"] == "stopped" and compilation.compiled == 0
    assert compilation._child is None or compilation._child.poll() is not None  # no compiler left running
    assert all(m.compiled is None for m in members)
    np.testing.assert_allclose(members[0](X[:5]), booster.predict(X[:5]), atol=1e-12)
