"""Shared pieces of the dashboard tests: a populated workspace (built once per process), a real server on loopback, a headless Chromium."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np

from conftest import SRC, make_mixed_table

CHROMIUM = os.environ.get("TRAINYARD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TRAINYARD_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_BUILT: dict = {}


def populate(home: Path) -> dict:
    """A copy of the dashboard tests' workspace in `home` (built once per process; each module gets its own copy).

    Two versions of 'churn' (real training, fairness by region), a finished and a running run, a drifting
    prediction log with labels, an image-classification run (CNN) and a language-model run (tiny GPT-2).
    """
    import sqlite3

    if "home" not in _BUILT:
        root = Path(tempfile.mkdtemp(prefix="trainyard-dash-"))
        atexit.register(shutil.rmtree, root, True)
        _BUILT["info"] = build_workspace(root / "ws")
        _BUILT["home"] = root / "ws"
    shutil.copytree(_BUILT["home"], home, ignore=shutil.ignore_patterns("trainyard.db*"))
    with sqlite3.connect(_BUILT["home"] / "trainyard.db") as src, sqlite3.connect(home / "trainyard.db") as dst:
        src.backup(dst)  # consistent whatever the WAL holds
    src.close()
    dst.close()
    return dict(_BUILT["info"])


def build_workspace(home: Path) -> dict:
    import trainyard
    from trainyard.registry import tables as t
    from trainyard.registry.workspace import Workspace

    df = make_mixed_table(400)
    common = dict(target="churn", name="churn", workspace=home, time_limit=15, preset="fast", sensitive=["region"])
    first = trainyard.train(df, include=["linear"], **common)
    second = trainyard.train(df, include=["lightgbm"], seed=1, **common)
    store = Workspace.resolve(home).store
    running = store.create_run("mlp-demo", kind="deep", task="binary", metric="log_loss")
    for step in range(5):
        store.log_metrics(running, step, {"train_loss": 1.0 / (step + 1), "val_loss": 1.2 / (step + 1)})
    store.add_event(running, "checkpoint", "saved step 4")
    live = make_mixed_table(240, seed=5).drop(columns="churn")
    live.loc[160:, "charges"] += 40.0  # charges drift on the last two days; the other features stay as in training
    start = datetime.now(timezone.utc) - timedelta(days=6)
    if (start + timedelta(hours=3)).date() != start.date():  # late in the UTC day: a day's rows (and labels, +2 h) stay on one date
        start -= timedelta(hours=3)
    rows, labels = [], []
    for k, raw in enumerate(live.to_dict(orient="records")):
        day, i = divmod(k, 40)
        inputs = {key: (None if isinstance(v, float) and np.isnan(v) else v) for key, v in raw.items()}
        request_id = uuid.uuid4().hex
        predicted = "yes" if inputs["plan"] == "monthly" else "no"
        p_yes = 0.8 if predicted == "yes" else 0.3
        rows.append(dict(request_id=request_id, model_name="churn", version=second.version, inputs=inputs,
                         outputs={"prediction": predicted, "probabilities": {"no": 1 - p_yes, "yes": p_yes}},
                         created_at=start + timedelta(days=day, minutes=i)))
        if i % 2 == 0:
            labels.append(dict(model_name="churn", request_id=request_id, label=predicted if i % 4 else "no",
                               created_at=start + timedelta(days=day, hours=2)))
    store.log_predictions(rows)  # the serving prediction log's format
    with store.tx() as conn:
        conn.execute(t.labels.insert(), labels)
    return {"finished": first.run_id, "second": second.run_id, "running": running, "versions": (first.version, second.version),
            "requests": [r["request_id"] for r in rows], **deep_runs(home)}


def deep_runs(home: Path) -> dict:
    """A small CNN on synthetic images and a tiny language model: the run and model pages of the neural paths."""
    import torch

    from lmhelp import documents
    from imagehelp import make_images
    from trainyard.lm.settings import LMSettings
    from trainyard.runs.dispatch import train_language_model
    from trainyard.api import train as train_deep

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X, y = make_images(160)
        np.savez(home / "shapes.npz", x=X, y=y)
        image = train_deep(home / "shapes.npz", task="image-classification", epochs=2, width=8, batch_size=32, lr=0.01,
                           name="shapes", workspace=home)
        corpus = home / "corpus"
        corpus.mkdir()
        docs = documents(120)
        for i in range(2):
            (corpus / f"part{i}.txt").write_text("\n%\n".join(docs[i * 60:(i + 1) * 60]))
        lm = train_language_model(corpus, LMSettings(name="corpus", size="tiny", context=32, batch_size=8, vocab_size=400, separator="\n%\n",
                                                     samples=0, max_steps=30, epochs=100, eval_every=10, lr=3e-3), workspace=home)
    finally:
        torch.set_num_threads(threads)
    return {"image_run": image.run_id, "lm_run": lm.run_id}


class UiServer:
    """`trainyard ui` as a subprocess on a free loopback port (the real command, the real server)."""

    def __init__(self, home: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(home)}
        self.proc = subprocess.Popen([sys.executable, "-m", "trainyard", "ui", "--port", str(self.port), *args],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("trainyard ui exited: " + self.proc.stdout.read())
            try:
                if httpx.get(self.url + "/favicon.ico", timeout=1).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("trainyard ui did not start within 30 s")

    def stop(self) -> str:
        """Stop the server; whatever it started that outlived it (its session) is killed too, never waited on forever."""
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # the server, or a child of it holding the output pipe, still running
            out = None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if out is None:
            out, _ = self.proc.communicate(timeout=10)
        return out or ""


class ThreadServer:
    """The app under uvicorn in a thread on a free loopback port, for HTTP-level tests with custom settings."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def chromium_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} is not installed (apt-get install chromium chromium-driver; .ci/run does it in CI)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def chrome(user_data_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-default-apps", "--disable-extensions", "--window-size=1400,1000", f"--user-data-dir={user_data_dir}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
