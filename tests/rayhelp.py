"""A real two-node Ray cluster on loopback, as CI runs it: `ray start --head` and a second `ray start --address`, one
CPU each, each with its own temp dir; stopped at the end by the process ids it started (never a machine-wide
`ray stop`, which would end other people's Ray too)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayCluster:
    address: str
    base: Path
    env: dict
    ray: str
    nodes: dict = field(default_factory=dict)  # name -> temp dir
    client_port: int | None = None  # the head's Ray Client server (ray://127.0.0.1:PORT)

    def start_node(self, name: str, head: bool = False) -> None:
        temp = self.base / name
        ports = ["--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port", str(free_port()),
                 "--runtime-env-agent-port", str(free_port())]
        if head:
            self.client_port = free_port()
        where = (["--head", "--port", self.address.split(":")[1], "--ray-client-server-port", str(self.client_port),
                  "--dashboard-port", str(free_port()), "--include-dashboard", "false"] if head else ["--address", self.address])
        proc = subprocess.run([self.ray, "start", *where, "--num-cpus", "1", "--temp-dir", str(temp), "--node-ip-address", "127.0.0.1",
                               "--disable-usage-stats", *ports], capture_output=True, text=True, env=self.env, timeout=120)
        assert proc.returncode == 0, f"ray start {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        self.nodes[name] = temp

    def pids(self, name: str | None = None, program: str = "") -> list[int]:
        """Processes this cluster started (their command lines name its temp dirs), of one node or all."""
        import psutil

        marks = [str(self.nodes[name])] if name else [str(self.base)]
        out = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if any(m in line for m in marks) and program in line:
                out.append(proc.info["pid"])
        return out

    def kill_raylet(self, name: str) -> int:
        pid = self.pids(name, program="raylet/raylet")[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(2)


def kill_after_checkpoint(args: list[str], workspace: Path, cwd: Path, pattern: str, env: dict | None = None, timeout_s: float = 420) -> str:
    """Run `trainyard ARGS` in a subprocess, SIGKILL it once its run's checkpoint folder has a file matching `pattern`
    (a checkpoint after step 0), and return the run's id: a driver killed mid-run."""
    from trainyard.registry.workspace import Workspace

    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(workspace)}
    errors = Path(cwd) / "killed-run.stderr"
    with errors.open("w") as err:  # a file, not a pipe: a pipe nobody reads would block the run once full
        proc = subprocess.Popen([sys.executable, "-m", "trainyard", *args], env=full_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    ws = Workspace.resolve(workspace)
    deadline, run_id = time.monotonic() + timeout_s, None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            runs = ws.store.list_runs()
            if runs and list((ws.run_dir(runs[0]["id"]) / "checkpoints").glob(pattern)):
                run_id = runs[0]["id"]
                break
            time.sleep(0.3)
        ended = proc.poll() is not None
        assert run_id is not None and not ended, "no checkpoint after step 0 before the run ended: " + (errors.read_text()[-2000:] if ended else "")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return run_id


@pytest.fixture(scope="session")
def ray_cluster():
    """The head and one more node, one CPU each; workers import this checkout (PYTHONPATH)."""
    pytest.importorskip("ray")
    base = Path(tempfile.mkdtemp(prefix="tyray-"))  # short: Ray's unix sockets live under it
    # A throwaway cluster without token auth (RAY_AUTH_MODE unset would turn it on if ~/.ray/auth_token exists)
    env = {**os.environ, "PYTHONPATH": str(SRC), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    cluster = RayCluster(f"127.0.0.1:{free_port()}", base, env, str(Path(sys.executable).parent / "ray"))
    try:
        cluster.start_node("head", head=True)
        cluster.start_node("second")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
