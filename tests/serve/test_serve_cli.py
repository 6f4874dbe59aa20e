"""`trainyard serve` as users run it (a subprocess on a free loopback port), fuzzed with schemathesis."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from servehelp import free_port, train_churn

SRC = Path(__file__).resolve().parents[2] / "src"
GOOD = {"tenure": 3, "plan": "monthly", "support_calls": 1}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("servecli") / "ws"
    train_churn(home, ("lightgbm",))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(home)}
    log = open(home.parent / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", "serve", "churn", "--port", str(port), "--workers", "2"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((home.parent / "server.log").read_text())
        time.sleep(0.2)
    yield url, home
    proc.terminate()
    proc.wait(timeout=30)


def test_cli_server_with_two_workers_answers(served):
    url, _ = served
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(20):
            r = client.post("/v1/models/churn/predict", json={"rows": [GOOD]})
            assert r.status_code == 200 and r.json()["predictions"][0]["prediction"] in ("yes", "no")
        assert client.post("/v1/models/churn/predict", json={"rows": [{**GOOD, "plan": "weekly"}]}).status_code == 422
    assert "trainyard_requests_total" in httpx.get(f"{url}/metrics").text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("st", path=os.path.dirname(sys.executable)) is None, reason="schemathesis is not installed")
def test_schemathesis_finds_no_server_errors(served, tmp_path):
    url, _ = served
    st = shutil.which("st", path=os.path.dirname(sys.executable))
    # Every check runs. One is told one thing: a CSV body's columns cannot be written in JSON Schema, so text that
    # fits the declared schema (a string) may still lack the model's columns, and 422 naming them is the right answer.
    (tmp_path / "schemathesis.toml").write_text(
        '[[operations]]\ninclude-path-regex = "/predict/csv$"\n'
        '[operations.checks.positive_data_acceptance]\nexpected-statuses = ["2xx", "422"]\n')
    # one worker: hypothesis describes filter lambdas with ast.parse, which CPython 3.11 breaks when threads race
    res = subprocess.run([st, "run", f"{url}/openapi.json", "--checks", "all", "--max-examples", "25",
                          "--generation-deterministic", "--workers", "1", "--no-color"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "POST /v1/models/churn/predict" in res.stdout
