"""Did the restructure ("The house in order") change speed? Two source trees, same machine, interleaved rounds.

    git worktree add /tmp/before 6fb6ab1          # the tree before the change
    python benchmarks/structure/before_after.py --before /tmp/before/src --after src --rounds 5

Three figures, each measured in a fresh subprocess per tree and round (the trees alternate: before, after, before, ...),
median reported with CPU seconds beside wall seconds:
- `trainyard --help` start-up (wall of the whole process);
- single-row predict latency of an AutoML model (breast_cancer, LightGBM + linear, 4 trials, same seed), median of
  300 one-row `model.predict` calls after 20 warm-up calls;
- the CNN training loop (benchmarks/training/bench.py's trainyard and bare-loop contenders on 1,024 Fashion-MNIST
  images, one thread), as the ratio trainyard/bare within each tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREDICT = r"""
import json, os, sys, time, resource
import numpy as np, pandas as pd
from sklearn.datasets import load_breast_cancer
import trainyard
d = load_breast_cancer(as_frame=True)
df = d.frame.rename(columns={"target": "y"})
r = trainyard.train(df, target="y", name="bc", max_trials=4, include=["lightgbm", "linear"], seed=0)
X = df.drop(columns=["y"])
for i in range(20):
    r.model.predict(X.iloc[[i]])
times = []
for i in range(300):
    row = X.iloc[[i % len(X)]]
    t0 = time.perf_counter(); r.model.predict(row); times.append(time.perf_counter() - t0)
print(json.dumps({"ms": 1000 * float(np.median(times))}))
"""


def run(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, stdout)."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system), proc.stdout


def env_for(src: str, home: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(Path(src).resolve()), "TRAINYARD_HOME": home, "OMP_NUM_THREADS": "1"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="src folder of the tree before the change")
    ap.add_argument("--after", required=True, help="src folder of the tree after the change")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cnn", action="store_true", help="also run the CNN loop comparison (slow)")
    args = ap.parse_args()
    trees = {"before": args.before, "after": args.after}
    out: dict[str, dict[str, list]] = {t: {"help_wall": [], "help_cpu": [], "predict_ms": [], "cnn_ratio": []} for t in trees}
    for r in range(args.rounds):
        for tree, src in trees.items():
            with tempfile.TemporaryDirectory() as home:
                env = env_for(src, home)
                wall, cpu, _ = run([sys.executable, "-m", "trainyard", "--help"], env)
                out[tree]["help_wall"].append(wall)
                out[tree]["help_cpu"].append(cpu)
                _, _, stdout = run([sys.executable, "-c", PREDICT], env)
                out[tree]["predict_ms"].append(json.loads(stdout.strip().splitlines()[-1])["ms"])
                if args.cnn:
                    bench = Path(src).parent / "benchmarks" / "training" / "bench.py"
                    _, _, stdout = run([sys.executable, str(bench), "--part", "cnn", "--images", "1024", "--rounds", "1",
                                        "--accuracy-epochs", "0", "--threads", "1", "--only", "trainyard (defaults,bare loop (trainyard"], env)
                    out[tree]["cnn_ratio"].append(stdout)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"{'figure':<34} {'before':>10} {'after':>10} {'after/before':>13}")
    for key, label in (("help_wall", "trainyard --help wall s"), ("help_cpu", "trainyard --help CPU s"),
                       ("predict_ms", "single-row predict ms (median)")):
        b, a = statistics.median(out["before"][key]), statistics.median(out["after"][key])
        print(f"{label:<34} {b:>10.4f} {a:>10.4f} {a / b:>13.3f}")
    if args.cnn:
        for tree in trees:
            print(f"--- CNN loop, {tree} tree (benchmarks/training/bench.py output, last round)")
            print(out[tree]["cnn_ratio"][-1][-1500:])


if __name__ == "__main__":
    main()
