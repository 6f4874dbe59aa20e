"""Shared fixtures: a fresh workspace per test, small real-looking tables, and the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """An empty workspace directory, set as TRAINYARD_HOME for the test."""
    home = tmp_path / "ws"
    monkeypatch.setenv("TRAINYARD_HOME", str(home))
    monkeypatch.delenv("TRAINYARD_DB", raising=False)
    return home


def make_mixed_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A churn-like table: numeric and categorical columns, missing values, a learnable binary target."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n).astype(float)
    charges = rng.normal(70, 25, n).round(2)
    plan = rng.choice(["monthly", "yearly", "two-year"], n, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], n)
    support_calls = rng.poisson(2, n)
    logit = -0.04 * tenure + 0.02 * (charges - 70) + np.where(plan == "monthly", 1.2, -0.8) + 0.4 * support_calls - 0.5
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    df = pd.DataFrame({"tenure": tenure, "charges": charges, "plan": plan, "region": region,
                       "support_calls": support_calls, "churn": churn})
    df.loc[rng.random(n) < 0.08, "charges"] = np.nan
    df.loc[rng.random(n) < 0.05, "region"] = np.nan
    return df


@pytest.fixture
def mixed_table() -> pd.DataFrame:
    return make_mixed_table()


@pytest.fixture
def mixed_csv(tmp_path, mixed_table) -> Path:
    path = tmp_path / "churn.csv"
    mixed_table.to_csv(path, index=False)
    return path


@pytest.fixture
def torch_one_thread():
    """Tiny torch models on a shared 2-core machine: one intra-op thread avoids threads spinning against each
    other (a 10x slowdown under load); the results are the same."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(workspace, tmp_path):
    """Run `trainyard ...` in a subprocess (this checkout's src), in tmp_path, on the test's workspace."""

    def run(*args: str, timeout: float = 300, env: dict | None = None) -> CliResult:
        full_env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(workspace), "COLUMNS": "200", **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "trainyard", *map(str, args)], cwd=tmp_path, env=full_env,
                              capture_output=True, text=True, timeout=timeout)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def cli_inproc(workspace, tmp_path, monkeypatch, capsys):
    """Run the CLI's `main` in this process (fast) in tmp_path; returns exit code and output."""
    from trainyard.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


def _pg_bin(name: str) -> str | None:
    import glob
    import shutil

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A real, throwaway PostgreSQL server on a unix socket (skipped only where PostgreSQL is not installed)."""
    import shutil
    import socket
    import tempfile

    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries not installed (.ci/run installs them)")
    base = Path(tempfile.mkdtemp(prefix="trainyard-pg-"))
    base.chmod(0o777)
    data = base / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root without runuser")
        prefix = [runuser, "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "trainyard", "--no-sync"], check=True, capture_output=True)
    opts = f"-k {base} -p {port} -c listen_addresses='' -c fsync=off"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", opts, "-w", "-l", str(base / "log"), "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://trainyard@/postgres?host={base}&port={port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


from rayhelp import ray_cluster  # noqa: E402,F401  (the real two-node Ray cluster of tests/cluster)

