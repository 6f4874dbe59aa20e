"""Export: ONNX graphs that reproduce the model under onnxruntime, and MLflow pyfunc directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_mixed_table

from trainyard.serve.export import ExportError

MLFLOW_PYTHON = os.environ.get("TRAINYARD_MLFLOW_PYTHON", "/work/peers/mlflow-venv/bin/python")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from trainyard import api

    home = tmp_path_factory.mktemp("export") / "ws"
    df = make_mixed_table(500)
    api.train(df, target="churn", workspace=home, include=["lightgbm"], name="churn")
    api.train(df, target="plan", workspace=home, include=["lightgbm"], name="plan")  # multiclass, with a boolean feature
    api.train(df.dropna(subset=["charges"]), target="charges", workspace=home, include=["lightgbm"], name="charges")
    api.train(df, target="churn", workspace=home, include=["lightgbm"], preset="fast", max_trials=1, name="single")  # one model, no bagging
    api.train(df, target="churn", workspace=home, include=["linear"], name="lin")
    return home


@pytest.mark.parametrize("name", ["churn", "plan", "charges", "single"])
def test_onnx_export_reproduces_the_model(home, tmp_path, name):
    import onnxruntime as ort

    from trainyard import api
    from trainyard.serve.export import _tree_plan, export, onnx_inputs

    from trainyard.models.unwrap import tree_parts

    info = export(name, "onnx", tmp_path / "out", workspace=home)
    assert info["verification"]["share_within_tolerance"] == 1.0
    # AutoML saved an ensemble of (bagged) LightGBM models: the graph sums all of them
    members = len(tree_parts(api.load(name, home)).members)
    assert info["lightgbm_models"] == members and (members == 1 if name == "single" else members > 1)
    assert json.loads((tmp_path / "out" / "trainyard-onnx.json").read_text())["task"] == info["task"]
    model = api.load(name, home)
    rows = make_mixed_table(200, seed=9).drop(columns=[{"single": "churn"}.get(name, name)])
    rows = rows[(rows.tenure <= 71)]
    sess = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"))
    plan, _ = _tree_plan(model)
    assert sorted(i.name for i in sess.get_inputs()) == sorted(c for c, _, _ in plan)
    out = sess.run(None, onnx_inputs(rows, plan))
    if model.task.is_classification:
        np.testing.assert_allclose(out[1], model.predict_proba_array(rows), atol=1e-4)
    else:
        np.testing.assert_allclose(out[0].ravel(), model.predict(rows), rtol=1e-4, atol=1e-4)


def test_onnx_refuses_unsupported_family_and_leaves_no_folder(home, cli, tmp_path):
    from trainyard.serve.export import export

    with pytest.raises(ExportError, match=r"ensemble\(linear\).*not gradient-boosting.*--include lightgbm"):
        export("lin", "onnx", tmp_path / "o", workspace=home)
    assert not (tmp_path / "o").exists()
    r = cli("export", "lin", "--format", "onnx", "-o", "o2", env={"TRAINYARD_HOME": str(home)})
    assert r.code == 2 and "--format mlflow" in r.output and "Traceback" not in r.output


def test_mlflow_directory_loads_through_its_own_loader(home, tmp_path):
    from trainyard.serve.export import export

    out = tmp_path / "mlf"
    export("churn@1", "mlflow", out, workspace=home)
    mlmodel = (out / "MLmodel").read_text()
    assert 'loader_module: "trainyard_mlflow"' in mlmodel and 'data: "artifact"' in mlmodel and 'code: "code"' in mlmodel
    assert (out / "artifact" / "meta.json").is_file() and (out / "code" / "trainyard" / "registry" / "artifact.py").is_file()
    assert "lightgbm==" in (out / "requirements.txt").read_text()
    # What mlflow.pyfunc.load_model does: put code/ first on sys.path, import the loader, call _load_pyfunc(data).
    script = (
        "import sys, json, pandas as pd; sys.path.insert(0, sys.argv[1] + '/code'); import trainyard_mlflow, trainyard;"
        "assert trainyard.__file__.startswith(sys.argv[1]), trainyard.__file__;"
        "m = trainyard_mlflow._load_pyfunc(sys.argv[1] + '/artifact');"
        "print(m.predict(pd.DataFrame([{'tenure': 3.0, 'plan': 'monthly', 'support_calls': 1.0}])).to_json(orient='records'))"
    )
    res = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)[0]
    from trainyard import api

    expected = api.load("churn@1", home).predict_proba(pd.DataFrame([{"tenure": 3.0, "plan": "monthly", "support_calls": 1.0}]))
    assert got["proba_yes"] == pytest.approx(float(expected["yes"].iloc[0]))
    # a tampered copy is refused by the loader too
    (out / "artifact" / "model.joblib").write_bytes(b"x")
    res = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert res.returncode != 0 and "altered" in res.stderr


@pytest.mark.skipif(not Path(MLFLOW_PYTHON).exists(), reason="MLflow lives in its own environment (set TRAINYARD_MLFLOW_PYTHON)")
def test_real_mlflow_pyfunc_load_model(home, tmp_path):
    from trainyard.serve.export import export

    out = tmp_path / "mlf"
    export("plan", "mlflow", out, workspace=home)
    script = ("import sys, mlflow.pyfunc, pandas as pd; m = mlflow.pyfunc.load_model(sys.argv[1]);"
              "print(m.predict(pd.DataFrame([{'tenure': 3.0, 'charges': 50.0, 'region': 'north', 'support_calls': 1, 'churn': 'yes'}])).to_json(orient='records'))")
    res = subprocess.run([MLFLOW_PYTHON, "-c", script, str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])[0]
    assert got["prediction"] in ("monthly", "yearly", "two-year")
    assert sum(v for k, v in got.items() if k.startswith("proba_")) == pytest.approx(1.0)


def test_onnx_export_of_rare_and_unseen_categories_as_documented(cli, workspace, tmp_path):
    """Issue 16 item 15: a LightGBM model on a categorical column with a long tail of rare values (which the model
    groups into one '__rare__' code) and missing values: `trainyard export NAME --format onnx`, as the docs write it,
    gives a graph that scores rare, unseen and missing values exactly as the model does."""
    import onnxruntime as ort

    from trainyard import api
    from trainyard.serve.export import _tree_plan, onnx_inputs

    rng = np.random.default_rng(4)
    n = 1500
    city = np.where(rng.random(n) < 0.7, rng.choice(["a", "b", "c"], n), np.array([f"town{i}" for i in rng.integers(0, 300, n)]))
    x = rng.normal(0, 1, n)
    rare = ~np.isin(city, ["a", "b", "c"])
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-(2 * x + 2.5 * rare - 1))), "yes", "no")
    df = pd.DataFrame({"city": city, "x": x, "y": y})
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    df.loc[rng.random(n) < 0.05, "city"] = np.nan
    df.to_csv(tmp_path / "towns.csv", index=False)
    assert cli("train", "towns.csv", "--target", "y", "--include", "lightgbm", "--time-limit", "30", "--name", "towns").code == 0
    r = cli("export", "towns", "--format", "onnx", "-o", "towns-onnx")
    assert r.code == 0, r.output
    model = api.load("towns", workspace)
    plan, _ = _tree_plan(model)
    assert any(kind == "categorical" and "__rare__" in cats for _, kind, cats in plan)  # the case this test is about
    rows = pd.DataFrame({"city": ["a", "b", "town7", "town299", "never-seen", None, "c", "town1"],
                         "x": [0.1, np.nan, -0.3, 1.2, 0.4, 0.0, np.nan, -2.0]})
    sess = ort.InferenceSession(str(tmp_path / "towns-onnx" / "model.onnx"))
    got = sess.run(None, onnx_inputs(rows, plan))[1]
    np.testing.assert_allclose(got, model.predict_proba_array(rows), atol=1e-5)
    assert abs(got[2, 1] - got[0, 1]) > 0.05  # rare towns really score apart from 'a' (the code path is exercised)
