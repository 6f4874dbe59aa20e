"""Data-parallel ranks on a Ray cluster, for any training job: `workers` ranks (Ray actors with one CPU, or one GPU
each) joined by torch.distributed (gloo on CPU, NCCL on CUDA), each calling the same job with its own `DataParallel`
(engine/parallel.py: its slice of every global batch). Rank 0 runs on the driver's node: it writes the checkpoints into
the run's folder in the engine's format and the run's metric log (one curve), relays its progress to the driver, and
its return value is the result. The job and its data travel through Ray's object store, so the other ranks never read
the driver's disk; a resumed run sends them its last checkpoint.

    result = train_on_ranks(cluster, job, workers=2, run=run, checkpoint_dir=run.run_dir / "checkpoints", resume=True)

A job is a picklable callable: `job(parallel=, log=, progress=, checkpoint_dir=, resume=) -> result` (rank 0's result is
returned; the others' is dropped). The image and text networks' job is runs/parallel.py's, the language models' is
lm/parallel.py's.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from trainyard.cluster.session import Cluster, TaskFailed
from trainyard.cluster.usage import NodeUsage
from trainyard.errors import ConfigError
from trainyard.registry.plan import RunContext
from trainyard.registry.tracking import RunLog
from trainyard.registry.workspace import Workspace

COLLECTIVE_TIMEOUT_S = 300  # a rank that stops answering fails the others' collectives after this, never a silent hang
POLL_S = 0.5
SHIP_TIMEOUT_S = 120  # a driver that takes no shipped checkpoint or metric row for this long is gone: rank 0 fails
SHIPPED_STORE, SHIPPED_CHECKPOINTS = "_store", "_checkpoints"  # queue kinds of a shipping rank 0 (Ray Client driver)


class Rank:
    """One rank of a data-parallel fit (a Ray actor)."""

    def __init__(self, index: int):
        self.index = index

    def address(self) -> tuple[str, int]:
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def train(self, master: tuple[str, int], world: int, job, checkpoints: dict, run: dict, progress=None):
        import torch.distributed as dist

        from trainyard.engine.parallel import DataParallel

        os.environ.update(MASTER_ADDR=master[0], MASTER_PORT=str(master[1]))
        backend = "nccl" if cuda() else "gloo"
        dist.init_process_group(backend, rank=self.index, world_size=world, timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
        try:
            main, ship = self.index == 0, self.index == 0 and run["ship"]
            with tempfile.TemporaryDirectory(prefix=f"trainyard-rank{self.index}-") as tmp:
                folder = run["checkpoint_dir"] if main and not ship else _unpack(checkpoints, Path(tmp))
                store = _ShippedStore(progress) if ship else Workspace.resolve(run["home"], run["db_url"]).store if main else None
                shipper = _Shipper(Path(folder), progress) if ship else None
                try:
                    result = job(parallel=DataParallel(self.index, world), log=RunLog(store, run["run_id"]) if main else None,
                                 progress=_Relay(progress) if main else None, checkpoint_dir=folder, resume=run["resume"])
                finally:
                    if shipper is not None:
                        shipper.close()
        finally:
            dist.destroy_process_group()
        return result if main else None


def train_on_ranks(cluster: Cluster, job, *, workers: int, run: RunContext, checkpoint_dir: Path, resume: bool):
    """Rank 0's result of `job` run by `workers` data-parallel ranks on the cluster (see the module docstring)."""
    if workers > cluster.cpus():
        raise ConfigError(f"--workers {workers} is more than the cluster's {cluster.cpus()} CPUs.", f"use --workers {cluster.cpus()} or fewer, or add nodes.")
    job_ref = cluster.put(job)
    packed = cluster.put(_pack(Path(checkpoint_dir)) if resume else {})
    ranks = cluster.actors(Rank, workers, num_gpus=1 if cuda() else 0)
    from ray.util.queue import Queue

    events = Queue(maxsize=1000, actor_options={"num_cpus": 0})  # rank 0's progress (steps, evaluations), relayed to the CLI by the driver
    usage = NodeUsage(cluster)
    try:
        master = cluster.result(ranks[0].address.remote(), timeout_s=120)
        info = {"home": str(run.ws.home), "db_url": run.ws.db_url, "run_id": run.run_id, "checkpoint_dir": str(checkpoint_dir), "resume": resume,
                "ship": not cluster.driver_node()}  # a Ray Client driver: rank 0 ships its checkpoints and metrics back
        refs = [r.train.remote(master, workers, job_ref, packed, info, events) for r in ranks]
        run.emit("stage", {"message": f"training on {workers} data-parallel workers (Ray)"})
        pending = list(refs)
        while pending:  # every rank's end is waited for; one that fails ends the run with its reason
            for ref in cluster.wait(pending, POLL_S):
                pending.remove(ref)
                cluster.result(ref)
            _relay_to(run, events, checkpoint_dir)
            usage.tick(run)
        _relay_to(run, events, checkpoint_dir)
        return cluster.result(refs[0])
    except TaskFailed as exc:
        raise ConfigError(f"Data-parallel training failed on the cluster: {exc}", "see the Ray logs of the nodes; `trainyard resume RUN` "
                          "continues from the last checkpoint (on the same or a different number of workers).") from None
    finally:
        for r in ranks:
            cluster.kill(r)
        usage.close()
        events.shutdown(force=True)


class _Relay:
    """Rank 0's progress callback: every evaluation, and a step at most every half second, into the driver's queue."""

    def __init__(self, queue, every_s: float = 0.5):
        self.queue, self.every_s, self.last = queue, every_s, 0.0

    def __call__(self, kind: str, info: dict) -> None:
        now = time.monotonic()
        if kind == "step" and now - self.last < self.every_s:
            return
        self.last = now
        try:
            self.queue.put_nowait((kind, info))
        except Exception:  # full: the display skips an update, training does not wait for it
            pass


def _relay_to(run: RunContext, queue, checkpoint_dir: Path) -> None:
    """Hand rank 0's queued progress to the run's display; a shipping rank 0's (Ray Client driver) metric rows and events
    go into the run's store and its checkpoints into the run's folder, in the order it wrote them."""
    try:
        items = queue.get_nowait_batch(queue.qsize())
    except Exception:  # the queue's actor went with its node: no more updates to show
        return
    for kind, info in items:
        if kind == SHIPPED_STORE:
            method, args = info
            getattr(run.ws.store, method)(run.run_id, *args)
        elif kind == SHIPPED_CHECKPOINTS:
            from trainyard.engine.checkpoint import place  # torch, deferred like _pack's

            place(checkpoint_dir, *info)
        else:
            run.emit(kind, info)


class _ShippedStore:
    """Rank 0's store when the driver is a Ray Client: its RunLog's writes go to the driver, which writes them into the
    run's store (SQLite on the driver's disk included). Waits at most SHIP_TIMEOUT_S for room in the queue."""

    def __init__(self, queue):
        self.queue = queue

    def log_metrics_many(self, run_id: str, rows: list) -> None:
        self.queue.put((SHIPPED_STORE, ("log_metrics_many", (rows,))), timeout=SHIP_TIMEOUT_S)

    def add_event(self, run_id: str, kind: str, message: str, data: dict | None = None) -> None:
        self.queue.put((SHIPPED_STORE, ("add_event", (kind, message, data))), timeout=SHIP_TIMEOUT_S)


class _Shipper:
    """Rank 0's checkpoint folder (on its own node), watched: every step directory it saves (renamed into place whole) and
    every change of best.json is sent to the driver, which mirrors them into the run's folder (checkpoint.place). A last
    sweep on close ships the final checkpoint."""

    def __init__(self, folder: Path, queue, every_s: float = POLL_S):
        import threading

        from trainyard.engine.checkpoint import BEST  # torch, deferred like _pack's

        self.best_file = folder / BEST
        self.folder, self.queue, self.every_s = folder, queue, every_s
        self.sent: dict[str, int] = {}  # step directory -> its mtime when shipped (a step saved again after a rollback is sent again)
        self.best: bytes | None = self.best_file.read_bytes() if self.best_file.exists() else None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="trainyard-ship", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.wait(self.every_s):
            self.sweep()

    def sweep(self) -> None:
        steps: dict[str, dict[str, bytes]] = {}
        present = sorted(p.name for p in self.folder.glob("step-*"))
        for name in present:
            try:
                stamp = (self.folder / name).stat().st_mtime_ns
                if self.sent.get(name) != stamp:
                    steps[name] = {f.name: f.read_bytes() for f in (self.folder / name).iterdir()}
                    self.sent[name] = stamp
            except FileNotFoundError:  # pruned while being read: no longer wanted
                continue
        best = self.best_file.read_bytes() if self.best_file.exists() else None
        new_best, self.best = (best if best != self.best else None), best
        if steps or new_best is not None:
            self.queue.put((SHIPPED_CHECKPOINTS, (steps, new_best, present)), timeout=SHIP_TIMEOUT_S)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=SHIP_TIMEOUT_S)
        self.sweep()


def _pack(folder: Path) -> dict:
    """The latest and best checkpoints of a run's folder as {relative path: bytes}, for ranks on other machines."""
    from trainyard.engine.checkpoint import BEST, Checkpoints

    if not folder.exists():
        return {}
    ckpts = Checkpoints(folder)
    keep = {ckpts.latest(), ckpts.path((ckpts.best_info() or {}).get("step"))} - {None}
    files = {f.relative_to(folder).as_posix(): f.read_bytes() for d in keep for f in d.iterdir()}
    if (folder / BEST).exists():
        files[BEST] = (folder / BEST).read_bytes()
    return files


def _unpack(files: dict, folder: Path) -> Path:
    for name, blob in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(blob)
    return folder


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()
