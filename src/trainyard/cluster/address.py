"""The --cluster value: parsed and checked before a run is created, so a bad value or an unreachable cluster is
refused (exit 2) without touching the workspace, and without importing Ray.

    ray://HOST:PORT   a Ray Client server (the head's port 10001 by default)
    HOST:PORT         the head's GCS address (`ray start --head --port PORT`); the driver joins from a cluster machine
    auto              the cluster `ray start` last started on this machine (or $RAY_ADDRESS)
    local:N           a Ray started and stopped by trainyard in this process, with N CPUs
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from trainyard.errors import ConfigError, TrainyardError

PROBE_TIMEOUT_S = 5.0  # a TCP connect to the cluster's port; Ray's own connect gets CONNECT_TIMEOUT_S after it
CONNECT_TIMEOUT_S = 30.0  # Ray's own connect; a Ray Client server starts a process per driver, slow on a busy head
TIMEOUT_VARIABLE = "TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S"
FORMS = "ray://HOST:PORT, HOST:PORT, auto or local:N"
RAY_ADDRESS_FILE = Path("/tmp/ray/ray_current_cluster")  # where `ray start --head` writes its address (default temp dir)


class ClusterError(TrainyardError):
    """The cluster cannot be used: not installed, unreachable, gone mid-run."""


@dataclass(frozen=True)
class ClusterAddress:
    text: str
    kind: str  # client, gcs, auto, local
    host: str | None = None
    port: int | None = None
    cpus: int | None = None  # local:N

    def ray_address(self) -> str:
        """The address ray.init takes."""
        if self.kind == "client":
            return f"ray://{self.host}:{self.port}"
        if self.kind == "gcs":
            return f"{self.host}:{self.port}"
        return self.kind  # "auto" or "local"


def parse_cluster(text: str | None) -> ClusterAddress | None:
    """The cluster a --cluster value names (None: no cluster, the run stays in this process)."""
    if text is None:
        return None
    value = str(text).strip()
    if value == "auto":
        return ClusterAddress(value, "auto")
    if value.startswith("local"):
        match = re.fullmatch(r"local:(\d+)", value)
        if not match or int(match.group(1)) < 1:
            raise ConfigError(f"--cluster {value!r}: a local Ray needs a number of CPUs, at least 1.", "e.g. --cluster local:2.")
        return ClusterAddress(value, "local", cpus=int(match.group(1)))
    client = value.startswith("ray://")
    rest = value[len("ray://"):] if client else value
    match = re.fullmatch(r"\[?([A-Za-z0-9.\-:]+?)\]?:(\d{1,5})", rest)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(f"--cluster {value!r} is not a cluster address.",
                          f"give one of {FORMS} (e.g. --cluster ray://head:10001, --cluster 10.0.0.5:6379, --cluster local:2).")
    return ClusterAddress(value, "client" if client else "gcs", match.group(1), int(match.group(2)))


def check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}.", "e.g. --workers 2 (with --cluster).")


def connect_timeout() -> float:
    """Seconds Ray's connect may take: CONNECT_TIMEOUT_S, or $TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return CONNECT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ConfigError(f"{TIMEOUT_VARIABLE}={text!r} is not a number of seconds in (0, 3600].", f"e.g. {TIMEOUT_VARIABLE}=120.")
    return value


def require_ray():
    """Ray's module, or the error that says how to install it."""
    if importlib.util.find_spec("ray") is None:
        raise ClusterError("--cluster needs Ray, which is not installed.", "pip install 'trainyard[ray]' (on the driver and every node).")
    import ray

    return ray


def preflight(address: ClusterAddress | None, workers: int | None = None, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Refuse a cluster that cannot be used before any run is created: Ray missing, or nothing listening."""
    check_workers(workers)
    if address is None:
        if workers is not None:
            raise ConfigError("--workers needs --cluster.", f"add --cluster ({FORMS}), e.g. --cluster local:{workers}.")
        return
    if importlib.util.find_spec("ray") is None:
        require_ray()
    if address.kind == "local":
        return
    connect_timeout()  # a bad $TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S is refused before the run exists
    host, port = (address.host, address.port) if address.kind != "auto" else _auto_address()
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterError(f"No Ray cluster answers at {host}:{port} (--cluster {address.text}; {exc.strerror or exc} within {timeout_s:.0f}s).",
                           "start it (`ray start --head --port PORT`), check the host and port and the firewall, "
                           "or use --cluster local:N for a Ray on this machine.") from None


def _auto_address() -> tuple[str, int]:
    """--cluster auto: $RAY_ADDRESS, or the address `ray start --head` wrote on this machine."""
    text = os.environ.get("RAY_ADDRESS") or (RAY_ADDRESS_FILE.read_text().strip() if RAY_ADDRESS_FILE.exists() else "")
    if not text:
        raise ClusterError("--cluster auto found no Ray cluster started on this machine.",
                           "start one with `ray start --head`, set RAY_ADDRESS, or give the address: --cluster HOST:PORT.")
    found = parse_cluster(text.removeprefix("ray://") if text.startswith("ray://") else text)
    if found is None or found.host is None:
        raise ClusterError(f"RAY_ADDRESS / {RAY_ADDRESS_FILE} holds {text!r}, not HOST:PORT.", "set RAY_ADDRESS=HOST:PORT.")
    return found.host, found.port
