"""kill -9 while a model is registered (issue 16 item 8): `resume` finishes and no temporary folder is left.

The process is stopped exactly at each moment with the TRAINYARD_PAUSE_AT hook (trainyard/registry/pause.py:
it prints "paused at NAME" and sleeps), then killed with SIGKILL: a real crash at a known point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import SRC, make_mixed_table


def start_paused(home, data, moment: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(home), "TRAINYARD_PAUSE_AT": moment}
    return subprocess.Popen([sys.executable, "-m", "trainyard", "train", str(data), "--target", "churn", "--include", "linear",
                             "--max-trials", "1", "--name", "churn", "--json"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_paused(proc: subprocess.Popen, moment: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if f"paused at {moment}" in line:
            return
        if not line and proc.poll() is not None:
            pytest.fail(f"the run ended (code {proc.returncode}) before pausing at {moment}")
    pytest.fail(f"no pause at {moment} within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize("moment, left_behind", [
    ("artifact-writing", ".tmp-"),  # the temporary folder is written, not yet renamed
    ("artifact-renamed", None),  # the artifact is in place, its version not yet recorded
])
def test_resume_after_kill_during_registration(cli, workspace, tmp_path, moment, left_behind):
    data = tmp_path / "churn.csv"
    make_mixed_table(300).to_csv(data, index=False)
    proc = start_paused(workspace, data, moment)
    try:
        wait_paused(proc, moment)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    folder = workspace / "artifacts" / "churn"
    names = [p.name for p in folder.iterdir()]
    assert len(names) == 1 and (left_behind is None or left_behind in names[0]), names  # the state the kill left

    resumed = cli("resume", "last", "--json")
    assert resumed.code == 0, resumed.output
    assert json.loads(resumed.stdout)["version"] == 1
    run_id = json.loads(resumed.stdout)["run_id"]
    assert [p.name for p in folder.iterdir()] == [run_id]  # the artifact, and no temporary folder beside it
    models = json.loads(cli("models", "--json").stdout)
    assert [(m["name"], m["version"]) for m in models] == [("churn", 1)]
    runs = json.loads(cli("runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["finished"]
    scored = cli("predict", "churn", str(data))
    assert scored.code == 0, scored.output


def test_stray_temporaries_are_removed_before_writing(tmp_path):
    from trainyard.registry.artifact import save_artifact, verify_artifact

    target = tmp_path / "m" / "run1"
    stray = tmp_path / "m" / ".run1.tmp-deadbeef"
    stray.mkdir(parents=True)
    (stray / "model.joblib").write_bytes(b"half written")
    other = tmp_path / "m" / ".run2.tmp-deadbeef"  # another run's temporary folder is not touched
    other.mkdir()
    extra = tmp_path / "weights.json"
    extra.write_text("{}")
    save_artifact(None, target, {"kind": "test"}, {"weights.json": extra})
    assert sorted(p.name for p in target.parent.iterdir()) == [".run2.tmp-deadbeef", "run1"]
    assert verify_artifact(target)["kind"] == "test"
