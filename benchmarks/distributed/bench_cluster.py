"""Two one-CPU Ray nodes on loopback against one local process, at the same time budget, interleaved.

    python benchmarks/distributed/bench_cluster.py --time-limit 60 --rows 20000 --repeats 2 [--db postgresql://...]
        [--images 3000 --epochs 2]

Prints, per run: trials finished, trials per minute of search, the best validation score, wall and CPU seconds (the
driver and, on the cluster, every process of the two nodes); then the per-trial overhead of the cluster (dispatch
of a task that does nothing, as one-at-a-time round trips and with both CPUs busy) and of the store (a trial row
written), and the data-parallel CNN's training throughput with 1 process against 2 ranks on the two nodes (same global
batch of 64, Fashion-MNIST when installed), from which docs/distributed.md works out where a 64-node cluster stops scaling;
with --corpus-kb, the same for a causal language model pre-trained from scratch (tokens per second, 1 process against
2 ranks, same global batch). State `uptime` with it.

    python benchmarks/distributed/bench_cluster.py --no-table --images 0 --corpus-kb 200 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from rayhelp import RayCluster, free_port  # noqa: E402  (the same two-node loopback cluster the tests start)


def make_data(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=20, n_informative=8, flip_y=0.05, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["y"] = np.where(y == 1, "yes", "no")
    frame.to_csv(path, index=False)


def cluster_cpu(cluster: RayCluster) -> float:
    """CPU seconds so far of every process of the cluster's nodes (raylets, GCS and the workers under them)."""
    import psutil

    total = 0.0
    for pid in cluster.pids():
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def one_run(data: Path, where: str | None, time_limit: float, env: dict, cluster: RayCluster, include: str) -> dict:
    home = Path(tempfile.mkdtemp(prefix="ws-", dir=data.parent))
    cmd = [sys.executable, "-m", "trainyard", "train", str(data), "--target", "y", "--preset", "balanced", "--bag-folds", "0",
           "--time-limit", str(time_limit), "--include", include, "--json", *(["--cluster", where] if where else [])]
    cpu0, before = cluster_cpu(cluster), os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**env, "TRAINYARD_HOME": str(home)}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    cluster_part = cluster_cpu(cluster) - cpu0 if where else 0.0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    result = json.loads(proc.stdout)
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(home).store
    trials = [t for t in store.trials(result["run_id"]) if t["family"] != "ensemble" and t["status"] in ("ok", "failed")]
    run = store.get_run(result["run_id"])
    span = (max(t["created_at"] for t in trials) - run["created_at"]).total_seconds()
    best = max(t["val_score"] for t in trials if t["val_score"] is not None)
    nodes = sorted({t["extra"].get("node", "-") for t in trials})
    fits_cpu = sum(t["extra"].get("cpu_s") or 0.0 for t in trials)  # CPU of the fits on the workers (cluster runs)
    return {"where": "2 nodes" if where else "local", "trials": len(trials), "per_min": 60 * len(trials) / span, "best_val": best,
            "wall_s": wall, "cpu_s": cpu + cluster_part, "driver_cpu_s": cpu, "fits_cpu_s": fits_cpu, "test": result["test"].get("roc_auc"), "nodes": len(nodes)}


def noop(payload):
    """A task that does nothing but say where it ran: what is left of a trial is dispatch."""
    from trainyard.cluster.session import current_node

    return current_node()


def dispatch_overhead(address: str, n: int) -> dict:
    import numpy as np

    from trainyard.cluster.address import parse_cluster
    from trainyard.cluster.session import Cluster

    with Cluster(parse_cluster(address)) as cluster:
        data = cluster.put(np.zeros((20000, 20)))  # a table's worth, in the object store once
        cluster.result(cluster.submit(noop, data))  # warm the workers
        t0 = time.perf_counter()
        for _ in range(n):
            cluster.result(cluster.submit(noop, data))
        serial = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        refs = [cluster.submit(noop, data) for _ in range(n)]
        while refs:
            for ref in cluster.wait(refs, 5.0):
                refs.remove(ref)
                cluster.result(ref)
        pipelined = (time.perf_counter() - t0) / n
    return {"round_trip_ms": 1000 * serial, "pipelined_ms": 1000 * pipelined}


def store_writes(url: str | None, n: int, base: Path) -> dict:
    from trainyard.registry.workspace import Workspace

    home = Path(tempfile.mkdtemp(prefix="store-", dir=base))
    if url:
        os.environ["TRAINYARD_DB"] = url
    store = Workspace.resolve(home).store
    run_id = store.create_run("bench")
    t0 = time.perf_counter()
    for i in range(n):
        store.add_trial(run_id, i, "lightgbm", status="ok", val_score=0.9, fit_seconds=1.0, params={"num_leaves": 31},
                        extra={"origin": "tuned", "node": "abcd1234"})
    per = (time.perf_counter() - t0) / n
    os.environ.pop("TRAINYARD_DB", None)
    return {"store": "postgresql" if url else "sqlite", "write_ms": 1000 * per, "writes_per_s": 1 / per}


def image_data(path: Path, n: int) -> None:
    """Fashion-MNIST's first n training images when the Debian package is installed (DATA.md), else shapes."""
    import gzip

    import numpy as np

    base = Path("/usr/share/datasets/fashion-mnist")
    if (base / "train-images-idx3-ubyte.gz").exists():
        X = np.frombuffer(gzip.open(base / "train-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
        y = np.frombuffer(gzip.open(base / "train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)[:n]
    else:
        from imagehelp import make_images

        X, y = make_images(n, size=28)
    np.savez(path, x=X, y=y)


def data_parallel(path: Path, where: str | None, workers: int, epochs: int) -> dict:
    """Images per second of training (the global batch's images over rank 0's training seconds)."""
    from trainyard import api

    os.environ["TRAINYARD_HOME"] = tempfile.mkdtemp(prefix="dp-", dir=path.parent)
    if where is None:  # one CPU, as each rank has (Ray sets OMP_NUM_THREADS=1 in its workers)
        import torch

        torch.set_num_threads(1)
    extra = {"cluster": where, "workers": workers} if where else {}
    t0 = time.perf_counter()
    result = api.train(path, task="image-classification", epochs=epochs, batch_size=64, width=16, seed=0, **extra)
    wall = time.perf_counter() - t0
    model = result.model
    return {"where": f"{workers} worker{'s' if workers > 1 else ''}", "images_per_s": model.n_steps_ * 64 / model.train_seconds_,
            "train_s": model.train_seconds_, "wall_s": wall, "accuracy": result.metrics["accuracy"]}


def corpus(path: Path, kb: int) -> None:
    """The first `kb` KB of the Python documentation's reST sources when installed (DATA.md: python3.11-doc), else the
    tests' synthetic sentences; documents separated by blank-line-percent lines."""
    base = Path("/usr/share/doc/python3.11/html/_sources")
    files = sorted(base.rglob("*.txt")) if base.is_dir() else []
    if files:
        docs, size = [], 0
        for f in files:
            docs.append(f.read_text(errors="replace"))
            size += len(docs[-1])
            if size >= kb * 1024:
                break
        text = "\n%\n".join(docs)[:kb * 1024]
    else:
        from lmhelp import documents

        text = "\n%\n".join(documents(4 * kb))[:kb * 1024]
    path.write_text(text)


def lm_data_parallel(path: Path, where: str | None, workers: int, cluster: RayCluster, args) -> dict:
    """Training tokens per second of a causal LM pre-trained from scratch (rank 0's loop seconds), the wall time of the
    whole run, and CPU seconds: this process's and, on the cluster, every process of the two nodes."""
    import resource

    from trainyard import api

    os.environ["TRAINYARD_HOME"] = tempfile.mkdtemp(prefix="lm-", dir=path.parent)
    if where is None:  # one CPU, as each rank has (Ray sets OMP_NUM_THREADS=1 in its workers)
        import torch

        torch.set_num_threads(1)
    extra = {"cluster": where, "workers": workers} if where else {}
    nodes0, self0, t0 = cluster_cpu(cluster), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = api.train(path, task="causal-lm", size=args.lm_size, context=args.lm_context, batch_size=args.lm_batch, epochs=1,
                       separator="\n%\n", vocab_size=2000, seed=0, samples=1, **extra)
    wall, self1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    driver = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    return {"where": f"{workers} worker{'s' if workers > 1 else ''}", "tokens_per_s": result.tokens_per_second, "steps": result.steps,
            "train_s": result.seconds, "wall_s": wall, "driver_cpu_s": driver, "nodes_cpu_s": cluster_cpu(cluster) - nodes0,
            "val_loss": result.metrics["val_loss"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=60)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--db", default=None, help="also time trial writes on this PostgreSQL URL")
    ap.add_argument("--images", type=int, default=3000, help="images for the data-parallel throughput (0: skip)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--include", default="lightgbm,linear,extra_trees,xgboost", help="families of the table search")
    ap.add_argument("--no-table", action="store_true", help="skip the table search and the dispatch/store overheads")
    ap.add_argument("--corpus-kb", type=int, default=0, help="text for the data-parallel language-model throughput (0: skip)")
    ap.add_argument("--lm-size", default="1M")
    ap.add_argument("--lm-context", type=int, default=128)
    ap.add_argument("--lm-batch", type=int, default=16)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tyray-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    cluster = RayCluster(f"127.0.0.1:{free_port()}", base, env, str(Path(sys.executable).parent / "ray"))
    data = base / "data.csv"
    make_data(data, args.rows)
    print(f"load: {os.popen('uptime').read().strip()}")
    try:
        cluster.start_node("head", head=True)
        cluster.start_node("second")
        rows, overhead = [], None
        for _ in range(0 if args.no_table else args.repeats):  # interleaved: local, cluster, local, cluster
            for where in (None, cluster.address):
                rows.append(one_run(data, where, args.time_limit, env, cluster, args.include))
                print(_row(rows[-1]), flush=True)
        if not args.no_table:
            overhead = dispatch_overhead(cluster.address, args.tasks)
        images, dp = base / "images.npz", []
        if args.images:
            image_data(images, args.images)
            for _ in range(args.repeats):  # interleaved: 1 process, 2 ranks on the 2 nodes
                for where, workers in ((None, 1), (cluster.address, 2)):
                    dp.append(data_parallel(images, where, workers, args.epochs))
                    r = dp[-1]
                    print(f"data-parallel CNN {r['where']:<9} {r['images_per_s']:7.1f} images/s  train {r['train_s']:6.1f}s  "
                          f"wall {r['wall_s']:6.1f}s  test accuracy {r['accuracy']:.3f}", flush=True)
        if args.corpus_kb:
            text = base / "corpus.txt"
            corpus(text, args.corpus_kb)
            print(f"\nlanguage model {args.lm_size}, context {args.lm_context}, global batch {args.lm_batch}, 1 epoch of {args.corpus_kb} KB; "
                  "CPU s: this process + every process of the 2 nodes", flush=True)
            for _ in range(args.repeats):  # interleaved: 1 process, 2 ranks on the 2 nodes
                for where, workers in ((None, 1), (cluster.address, 2)):
                    r = lm_data_parallel(text, where, workers, cluster, args)
                    print(f"data-parallel LM  {r['where']:<9} {r['tokens_per_s']:8.0f} tokens/s  steps {r['steps']:4d}  train {r['train_s']:6.1f}s  "
                          f"wall {r['wall_s']:6.1f}s  CPU {r['driver_cpu_s']:6.1f} + {r['nodes_cpu_s']:6.1f}s  val loss {r['val_loss']:.4f}", flush=True)
    finally:
        cluster.stop()
    if overhead is None:
        print(f"load: {os.popen('uptime').read().strip()}")
        shutil.rmtree(base, ignore_errors=True)
        return
    print(f"\ndispatch of a no-op task with a 20000x20 table ref: {overhead['round_trip_ms']:.1f} ms one at a time, "
          f"{overhead['pipelined_ms']:.1f} ms each with {args.tasks} in flight on 2 CPUs")
    for url in (None, args.db) if args.db else (None,):
        w = store_writes(url, 300, base)
        print(f"store: one trial row on {w['store']}: {w['write_ms']:.2f} ms ({w['writes_per_s']:.0f} writes/s)")
    print(f"load: {os.popen('uptime').read().strip()}")
    shutil.rmtree(base, ignore_errors=True)


def _row(r: dict) -> str:
    return (f"{r['where']:<8} trials {r['trials']:>3}  per min {r['per_min']:6.1f}  best val roc_auc {r['best_val']:.4f}  "
            f"test {r['test']:.4f}  wall {r['wall_s']:6.1f}s  cpu {r['cpu_s']:6.1f}s (driver {r['driver_cpu_s']:5.1f}s, fits on workers {r['fits_cpu_s']:5.1f}s)  nodes {r['nodes']}")


if __name__ == "__main__":
    main()
