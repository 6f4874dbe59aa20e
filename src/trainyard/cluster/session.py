"""A run's connection to Ray: opened when the work starts, shut down when it ends (an idle Ray slows everything
else on a small machine), and every wait on it bounded by a deadline.

    with Cluster(parse_cluster("10.0.0.5:6379")) as cluster:
        data = cluster.put(table)
        ref = cluster.submit(fit_one, data, num_cpus=1, memory_mb=400)
        done = cluster.wait(refs, timeout_s=5)
        value = cluster.result(ref)          # raises TaskFailed with the reason
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from trainyard.cluster.address import TIMEOUT_VARIABLE, ClusterAddress, ClusterError, connect_timeout, preflight, require_ray

TASK_RETRIES = 2  # a task whose worker or node dies is run again this many times (elsewhere when it can)


class TaskFailed(Exception):
    """A task ended without a result: its own error, or its worker or node lost more times than retried."""


@dataclass(frozen=True)
class Node:
    id: str  # the first 8 hex digits of Ray's node id (what the CLI and dashboard show)
    address: str
    cpus: float
    memory_mb: float


class Cluster:
    def __init__(self, address: ClusterAddress, *, connect_timeout_s: float | None = None):
        self.address = address
        self.connect_timeout_s = connect_timeout() if connect_timeout_s is None else connect_timeout_s
        self.ray = None
        self._tmp = None
        self._env: dict = {}  # environment variables set for a local Ray, put back on close

    def __enter__(self) -> "Cluster":
        try:
            self.open()
        except BaseException:  # a local Ray half started, its token in the environment: put everything back
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    def open(self) -> None:
        preflight(self.address)
        ray = require_ray()
        if ray.is_initialized():
            raise ClusterError("Ray is already initialised in this process.", "call ray.shutdown() before a run with --cluster.")
        logging.getLogger("ray").setLevel(logging.ERROR)  # its connect-time chatter is not the user's business
        kwargs = {"log_to_driver": False, "configure_logging": False}
        if self.address.kind == "local":  # address="local": never join a cluster `ray start` left running
            self._tmp = tempfile.mkdtemp(prefix="trainyard-ray-")
            kwargs.update(num_cpus=self.address.cpus, include_dashboard=False, _temp_dir=self._tmp)
            self._env = _own_auth_token(self._tmp)
        attempt = _Connect(ray, self.address.ray_address(), kwargs)
        if self.address.kind == "local":  # in this thread: the processes it starts die with the thread that started them
            attempt.run()
        else:  # joining: bounded by the connect timeout (Ray itself may retry for minutes)
            _wait_for_an_earlier_attempt(self.connect_timeout_s)
            _remember(attempt)
            threading.Thread(target=attempt.run, daemon=True, name="trainyard-ray-connect").start()
        outcome = attempt.wait(self.connect_timeout_s)
        if outcome is None:
            raise ClusterError(f"Ray at {self.address.text} did not answer within {self.connect_timeout_s:.0f}s.",
                               "check that the head node is up (`ray status` on it) and that this machine can reach every node; "
                               f"on a busy head give Ray longer: {TIMEOUT_VARIABLE}=SECONDS.")
        if isinstance(outcome, BaseException):
            raise ClusterError(f"Could not join the Ray cluster at {self.address.text}: {_first_line(outcome)}",
                               "check the address and that the driver runs the same Ray and Python versions as the cluster.")
        self.ray = ray
        _cluster_messages_to_stderr()

    def close(self) -> None:
        if self.ray is not None and self.ray.is_initialized():
            self.ray.shutdown()
        self.ray = None
        if self._env:
            for name, value in self._env.items():
                os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
            _reload_auth()
        self._env = {}
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # the cluster ------------------------------------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        """The nodes alive now."""
        return [Node(n["NodeID"][:8], n.get("NodeManagerAddress", ""), float(n["Resources"].get("CPU", 0)),
                     float(n["Resources"].get("memory", 0)) / 2**20) for n in self.ray.nodes() if n.get("Alive")]

    def cpus(self) -> int:
        return int(sum(n.cpus for n in self.nodes()))

    def largest_memory_mb(self) -> float:
        """The most memory one task can be given (Ray's memory resource of the largest node)."""
        return max((n.memory_mb for n in self.nodes()), default=0.0)

    # tasks ----------------------------------------------------------------------------------------------------------
    def put(self, value):
        """Into the object store, once: workers on other machines read it from there, never from the driver's disk."""
        return self.ray.put(value)

    def submit(self, function, *args, num_cpus: float = 1, memory_mb: float | None = None, retries: int = TASK_RETRIES, name: str = ""):
        options = {"num_cpus": num_cpus, "max_retries": retries, "retry_exceptions": False, "name": name or function.__name__}
        if memory_mb:
            options["memory"] = int(memory_mb * 2**20)
        return self.ray.remote(function).options(**options).remote(*args)

    def wait(self, refs: list, timeout_s: float) -> list:
        """The refs among `refs` that finished within `timeout_s` (maybe none)."""
        if not refs:
            return []
        done, _ = self.ray.wait(list(refs), num_returns=1, timeout=timeout_s)
        if done:  # take every other one already finished too
            more, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
            done = list({id(r): r for r in [*done, *more]}.values())
        return done

    def result(self, ref, timeout_s: float = 60.0):
        """A finished task's value; TaskFailed with the reason when it raised or its worker/node was lost."""
        from ray.exceptions import GetTimeoutError, RayError, RayTaskError

        try:
            return self.ray.get(ref, timeout=timeout_s)
        except RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise TaskFailed(f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"[:500]) from None
        except GetTimeoutError:
            raise TaskFailed(f"no result within {timeout_s:.0f}s") from None
        except RayError as exc:  # worker crashed, node died, object lost: after the retries
            raise TaskFailed(f"{type(exc).__name__} after {TASK_RETRIES} retries: {str(exc).splitlines()[0][:300]}") from None

    def actors(self, cls, count: int, *, num_cpus: float = 1, num_gpus: float = 0) -> list:
        """`count` actors of `cls` (constructed with their index), the first on the driver's own node (it writes what the
        driver reads: checkpoints in the run's folder), the others spread over the cluster."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = self.ray.get_runtime_context().get_node_id()
        if not here:
            raise ClusterError("Data-parallel training needs the driver on a node of the cluster; a Ray Client (ray://) driver is not.",
                               "run trainyard on a cluster machine with --cluster HOST:PORT or --cluster auto.")
        remote = self.ray.remote(cls)
        out = []
        for index in range(count):
            where = NodeAffinitySchedulingStrategy(here, soft=False) if index == 0 else "SPREAD"
            out.append(remote.options(num_cpus=num_cpus, num_gpus=num_gpus, scheduling_strategy=where, max_restarts=0).remote(index))
        return out

    def kill(self, actor) -> None:
        try:
            self.ray.kill(actor)
        except Exception:  # already gone with its node
            pass

    def cancel(self, ref) -> None:
        try:
            self.ray.cancel(ref, force=True)
        except Exception:  # already finished or its node gone: nothing left to stop
            pass


def current_node() -> str:
    """Inside a task: the node it runs on (8 hex digits), or "" outside Ray."""
    import sys

    if "ray" not in sys.modules:
        return ""
    import ray

    if not ray.is_initialized():
        return ""
    return ray.get_runtime_context().get_node_id()[:8]


def _cluster_messages_to_stderr() -> None:
    """Ray prints the cluster's error messages (a node lost, ...) to stdout, into `--json` output: send them to stderr.
    (ray 2.60's driver-side printer; pinned in constraints.txt.)"""
    from ray._private import worker

    printer = worker.print_to_stdstream
    if getattr(printer, "to_stderr", False):
        return

    def to_stderr(data, ignore_prefix: bool):
        printer({**data, "is_err": True}, ignore_prefix)

    to_stderr.to_stderr = True
    worker.print_to_stdstream = to_stderr


def _own_auth_token(folder: str) -> dict:
    """A local Ray with token auth whose token is a file in the run's own temp dir: Ray would otherwise write one to
    ~/.ray/auth_token, which turns token auth on for every `ray start` the user runs afterwards. Returns what to put back."""
    names = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    if any(os.environ.get(n) for n in names):  # the user's own choice
        return {}
    before = {n: os.environ.get(n) for n in names}
    token = Path(folder) / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    _reload_auth()
    return before


def _reload_auth() -> None:
    """Make an already imported Ray read the auth settings of the environment again (ray 2.60)."""
    import sys

    if "ray" in sys.modules:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def _first_line(exc: BaseException) -> str:
    """An exception's first line for a message (its type when it has no text)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class _Connect:
    """One ray.init. When the caller stops waiting, the attempt is abandoned: if it connects after all it disconnects
    again at once, so a late connection never leaves Ray initialised under the next run of this process."""

    def __init__(self, ray, address: str, kwargs: dict):
        self.ray, self.address, self.kwargs = ray, address, kwargs
        self.outcome = None  # True, or the exception ray.init raised
        self.abandoned = False
        self.done = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            self.ray.init(address=self.address, **self.kwargs)
            result = True
        except BaseException as exc:  # handed to the waiting thread, which raises it as a ClusterError
            result = exc
        with self._lock:
            self.outcome = result
            if self.abandoned:  # connected late, or failed half way (Ray's client mode left switched on): undo it
                _quietly_shut_down(self.ray)
        self.done.set()

    def wait(self, timeout_s: float):
        """The outcome, or None (and the attempt abandoned) when there is none within `timeout_s`."""
        self.done.wait(timeout_s)
        with self._lock:
            if self.outcome is None:
                self.abandoned = True
            return self.outcome


_pending: _Connect | None = None  # this process's latest connection attempt


def _remember(attempt: _Connect) -> None:
    global _pending
    _pending = attempt


def _wait_for_an_earlier_attempt(timeout_s: float) -> None:
    """An abandoned attempt still running holds Ray's connection state: wait for it to end before a new one."""
    earlier = _pending
    if earlier is not None and not earlier.done.wait(timeout_s):
        raise ClusterError(f"An earlier attempt of this process to reach Ray at {earlier.address} is still running "
                           f"after {timeout_s:.0f}s more.", "wait until Ray gives up on it, or start the run in a new process.")


def _quietly_shut_down(ray) -> None:
    try:
        ray.shutdown()
    except Exception:  # a connection that is half gone already: nothing left to undo
        pass
