"""Does `trainyard train --time-limit T` end within T? The whole command, as a user runs it (process start,
imports, audit, search, test evaluation, model card, saving), on real tables, quiet and beside busy processes.

    python scripts/fetch_data.py adult
    python benchmarks/automl/budget.py                                  # limits 20 and 60, quiet
    python benchmarks/automl/budget.py --limits 20,60 --busy 0,2        # and beside 2 busy-looping processes

Prints, per table, limit and number of busy processes: wall seconds, wall / limit, CPU seconds of the command,
the test score, how many bootstrap resamples the evaluation kept and what it left out for time, and the load
average (1 min) before each run. The goal (issue 18): wall / limit <= 1.05 quiet, <= 1.15 at load 4.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn import datasets

ROOT = Path(__file__).resolve().parents[2]
TRAINYARD = Path(sys.executable).with_name("trainyard")


def tables(tmp: Path) -> dict[str, tuple[Path, str]]:
    out = {}
    adult = ROOT / ".data" / "adult.csv"
    if adult.exists():
        out["adult"] = (adult, "income")
    for name, loader, target in [("breast_cancer", datasets.load_breast_cancer, "malignant"),
                                 ("digits", datasets.load_digits, "digit"), ("diabetes", datasets.load_diabetes, "progression")]:
        bunch = loader(as_frame=True)
        df = bunch.frame.rename(columns={"target": target})
        path = tmp / f"{name}.csv"
        df.to_csv(path, index=False)
        out[name] = (path, target)
    return out


def busy_loop() -> None:
    while True:
        pass


def run_one(path: Path, target: str, limit: int, workdir: Path) -> dict:
    env = {**os.environ, "TRAINYARD_HOME": str(workdir / "ws")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([str(TRAINYARD), "train", str(path), "--target", target, "--name", "bench", "--time-limit", str(limit), "--json"],
                          capture_output=True, text=True, env=env, cwd=workdir)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    row = {"wall_s": round(wall, 1), "ratio": round(wall / limit, 3), "cpu_s": round(cpu, 1), "rc": proc.returncode}
    if proc.returncode != 0:
        row["error"] = (proc.stderr or proc.stdout)[-300:]
        return row
    result = json.loads(proc.stdout)
    row["score"] = round(result["test"][result["metric"]], 4)
    row["metric"] = result["metric"]
    runs = sorted((workdir / "ws" / "runs").glob("*/evaluation.json"), key=lambda p: p.stat().st_mtime)
    settings = json.loads(runs[-1].read_text())["settings"] if runs else {}
    row["n_boot"] = settings.get("n_boot")
    row["left_out"] = ", ".join(settings.get("skipped_for_time", [])) or "-"
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limits", default="20,60")
    ap.add_argument("--busy", default="0", help="numbers of busy-looping processes beside the run, e.g. 0,2")
    ap.add_argument("--tables", default="", help="comma-separated subset of adult,breast_cancer,digits,diabetes")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        found = tables(Path(tmp))
        wanted = [t for t in args.tables.split(",") if t] or list(found)
        for busy in [int(b) for b in args.busy.split(",")]:
            hogs = [mp.Process(target=busy_loop, daemon=True) for _ in range(busy)]
            for h in hogs:
                h.start()
            try:
                for limit in [int(x) for x in args.limits.split(",")]:
                    for name in wanted:
                        path, target = found[name]
                        load = os.getloadavg()[0]
                        work = Path(tempfile.mkdtemp(dir=tmp))
                        row = {"table": name, "limit": limit, "busy": busy, "load": round(load, 1), **run_one(path, target, limit, work)}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
            finally:
                for h in hogs:
                    h.terminate()
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False))
    print(f"\nworst wall / limit: {frame['ratio'].max():.3f}; mean {frame['ratio'].mean():.3f}")


if __name__ == "__main__":
    main()
