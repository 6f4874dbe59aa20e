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

from trainyard.cluster.address import ClusterError
from trainyard.cluster.session import Cluster, TaskFailed
from trainyard.cluster.usage import NodeUsage
from trainyard.errors import ConfigError
from trainyard.registry.plan import RunContext
from trainyard.registry.tracking import RunLog
from trainyard.registry.workspace import Workspace

COLLECTIVE_TIMEOUT_S = 300  # a rank that stops answering fails the others' collectives after this, never a silent hang
POLL_S = 0.5
RANK_START_TIMEOUT_S = 300  # the first rank's worker process up (CI once needed > 120 s on a loaded 2-core machine)


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
            main = self.index == 0
            log = RunLog(Workspace.resolve(run["home"], run["db_url"]).store, run["run_id"]) if main else None
            with tempfile.TemporaryDirectory(prefix=f"trainyard-rank{self.index}-") as tmp:
                folder = run["checkpoint_dir"] if main else _unpack(checkpoints, Path(tmp))
                result = job(parallel=DataParallel(self.index, world), log=log, progress=_Relay(progress) if main else None,
                             checkpoint_dir=folder, resume=run["resume"])
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
        master = _first_rank_started(cluster, ranks[0])
        info = {"home": str(run.ws.home), "db_url": run.ws.db_url, "run_id": run.run_id, "checkpoint_dir": str(checkpoint_dir), "resume": resume}
        refs = [r.train.remote(master, workers, job_ref, packed, info, events) for r in ranks]
        run.emit("stage", {"message": f"training on {workers} data-parallel workers (Ray)"})
        pending = list(refs)
        while pending:  # every rank's end is waited for; one that fails ends the run with its reason
            for ref in cluster.wait(pending, POLL_S):
                pending.remove(ref)
                cluster.result(ref)
            _relay_to(run, events)
            usage.tick(run)
        _relay_to(run, events)
        return cluster.result(refs[0])
    except TaskFailed as exc:
        raise ConfigError(f"Data-parallel training failed on the cluster: {exc}", "see the Ray logs of the nodes; `trainyard resume RUN` "
                          "continues from the last checkpoint (on the same or a different number of workers).") from None
    finally:
        for r in ranks:
            cluster.kill(r)
        usage.close()
        events.shutdown(force=True)


def _first_rank_started(cluster: Cluster, rank) -> str:
    """Rank 0's rendezvous address, once its worker process is up (a new Python importing torch: slow on a busy node)."""
    try:
        return cluster.result(rank.address.remote(), timeout_s=RANK_START_TIMEOUT_S)
    except TaskFailed as exc:
        raise ClusterError(f"The first data-parallel worker did not start on the cluster ({exc}).",
                           "check that the cluster has a free CPU for each worker (`ray status`) and that its nodes are not "
                           "overloaded; then `trainyard resume RUN`.") from None


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


def _relay_to(run: RunContext, queue) -> None:
    """Hand rank 0's queued progress to the run's display."""
    try:
        items = queue.get_nowait_batch(queue.qsize())
    except Exception:  # the queue's actor went with its node: no more updates to show
        return
    for kind, info in items:
        run.emit(kind, info)


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
