"""Live CPU use per node while a cluster run goes: a tiny sampler actor on every node (no CPU reserved), asked every
few seconds without blocking the run, every answer waited for with a deadline.

    usage = NodeUsage(cluster)          # one sampler per live node
    usage.tick(run)                     # call often; every SAMPLE_EVERY_S it records and shows what came back
    usage.close()

A sample is the CPUs that the node's Ray worker processes use (the children of its raylet: node-specific even when
several nodes share one machine, as on a loopback test cluster) and the whole machine's CPU percentage. `tick` records
each node's CPUs in use as the run's metric `node_cpu.NODE` (x: seconds since the run's first sample), which the
dashboard's run page draws live, and emits a "nodes" progress event, which the CLI shows as a line per node.
"""

from __future__ import annotations

import os
import time

SAMPLE_EVERY_S = 3.0
ANSWER_DEADLINE_S = 10.0  # a sampler that has not answered by then (its node gone) is marked silent, never waited for


class NodeSampler:
    """On one node (a Ray actor): CPU of the node's Ray workers and of the machine, per psutil (a dependency of Ray)."""

    def __init__(self):
        import psutil

        self.psutil = psutil
        self.raylet = psutil.Process(os.getppid())  # a Ray worker is started by its node's raylet
        self.seen: dict = {}
        psutil.cpu_percent()

    def sample(self) -> dict:
        psutil, busy, alive = self.psutil, 0.0, set()
        for child in self.raylet.children(recursive=True):
            if child.pid == os.getpid():
                continue
            proc = self.seen.setdefault(child.pid, child)  # cpu_percent measures since its previous call on the same object
            try:
                busy += proc.cpu_percent()
                alive.add(child.pid)
            except psutil.Error:
                pass
        self.seen = {pid: p for pid, p in self.seen.items() if pid in alive}
        return {"cpus_busy": round(busy / 100, 3), "machine_pct": psutil.cpu_percent(), "machine_cpus": psutil.cpu_count()}


class NodeUsage:
    def __init__(self, cluster, every_s: float = SAMPLE_EVERY_S):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray, self.every_s = cluster.ray, every_s
        remote = self.ray.remote(NodeSampler)
        self.samplers = {}  # short node id -> (actor, CPUs Ray offers there)
        for n in self.ray.nodes():
            if n.get("Alive"):
                actor = remote.options(num_cpus=0, max_restarts=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
                self.samplers[n["NodeID"][:8]] = (actor, float(n["Resources"].get("CPU", 0)))
        self.pending: dict = {}  # ref -> (node, asked at)
        self.asked, self.started = 0.0, None

    def tick(self, run) -> list[dict]:
        """Collect the answers in (waiting for none), ask again every `every_s`; what came back is recorded in the run's
        metrics and emitted as a "nodes" event. Returns it (one dict per node, `cpus_busy` None for a silent node)."""
        now = time.monotonic()
        came = self._answers(now)
        if came:
            self.started = self.started if self.started is not None else now
            at = int(now - self.started)
            run.store.log_metrics(run.run_id, at, {f"node_cpu.{s['node']}": s["cpus_busy"] for s in came if s["cpus_busy"] is not None})
            run.emit("nodes", {"nodes": came, "seconds": at})
        if now - self.asked >= self.every_s:
            self.asked = now
            busy = {node for node, _ in self.pending.values()}
            for node, (actor, _) in self.samplers.items():
                if node not in busy:
                    self.pending[actor.sample.remote()] = (node, now)
        return came

    def _answers(self, now: float) -> list[dict]:
        if not self.pending:
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
        out = []
        for ref in ready:
            node, _ = self.pending.pop(ref)
            try:
                sample = self.ray.get(ref, timeout=1)
            except Exception:  # the sampler died with its node
                sample = {"cpus_busy": None}
            out.append({"node": node, "cpus": self.samplers[node][1], **sample})
        for ref, (node, asked) in list(self.pending.items()):
            if now - asked > ANSWER_DEADLINE_S:
                del self.pending[ref]
                out.append({"node": node, "cpus": self.samplers[node][1], "cpus_busy": None})
        return sorted(out, key=lambda s: s["node"])

    def close(self) -> None:
        for actor, _ in self.samplers.values():
            try:
                self.ray.kill(actor)
            except Exception:  # already gone with its node
                pass
