"""The MLflow export against tampering and for integer columns (issue 16 items 2 and 17)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import make_mixed_table

LOAD = ("import sys, pandas as pd; sys.path.insert(0, sys.argv[1] + '/code'); import trainyard_mlflow;"
        "m = trainyard_mlflow._load_pyfunc(sys.argv[1] + '/artifact');"
        "print(m.predict(pd.DataFrame([{'tenure': 3.0, 'charges': 50.0, 'plan': 'monthly', 'region': 'north', 'support_calls': 1}]))"
        ".to_json(orient='records'))")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from trainyard import api

    ws = tmp_path_factory.mktemp("trust") / "ws"
    api.train(make_mixed_table(300), target="churn", workspace=ws, include=["linear"], max_trials=1, name="churn")
    return ws


def load(folder, expected: str | None):
    env = {**os.environ, "PYTHONPATH": ""}
    env.pop("TRAINYARD_MODEL_SHA256", None)
    if expected:
        env["TRAINYARD_MODEL_SHA256"] = expected
    return subprocess.run([sys.executable, "-c", LOAD, str(folder)], capture_output=True, text=True, timeout=120, env=env)


def test_loader_checks_the_hash_export_printed(cli, home, tmp_path):
    out = tmp_path / "mlf"
    result = cli("export", "churn", "--format", "mlflow", "-o", str(out), env={"TRAINYARD_HOME": str(home)})
    assert result.code == 0, result.output
    digest = hashlib.sha256((out / "artifact" / "meta.json").read_bytes()).hexdigest()
    assert f"TRAINYARD_MODEL_SHA256={digest}" in result.stdout.replace("\n", "")
    assert load(out, digest).returncode == 0
    # someone rewrites a file and meta.json's hashes to match: the folder checks itself out, the printed hash does not
    meta = json.loads((out / "artifact" / "meta.json").read_text())
    (out / "artifact" / "model.joblib").write_bytes((out / "artifact" / "model.joblib").read_bytes() + b"\0")
    meta["files"]["model.joblib"] = hashlib.sha256((out / "artifact" / "model.joblib").read_bytes()).hexdigest()
    (out / "artifact" / "meta.json").write_text(json.dumps(meta, indent=2))
    refused = load(out, digest)
    assert refused.returncode != 0 and "altered" in refused.stderr


def test_integer_columns_are_long_in_the_signature(home, tmp_path):
    from trainyard.serve.export import export

    out = tmp_path / "mlf"
    export("churn", "mlflow", out, workspace=home)
    line = next(s for s in (out / "MLmodel").read_text().splitlines() if s.strip().startswith("inputs:"))
    inputs = {c["name"]: c["type"] for c in json.loads(json.loads(line.split(":", 1)[1]))}
    assert pd.api.types.is_integer_dtype(make_mixed_table(10)["support_calls"])
    assert inputs["support_calls"] == "long" and inputs["charges"] == "double" and inputs["plan"] == "string"
