"""Batch prediction memory: `trainyard predict` streams a multi-million-row file in bounded memory.

    python benchmarks/serving/bench_batch.py [--rows 10000000] [--whole-rows 1000000] [--chunk-rows 100000]
        [--preset balanced] [--time-limit SECONDS] [--max-trials N]

Trains LightGBM on Adult (`trainyard train --include lightgbm` with the given preset and budget: the
scoring time grows with the number of trees the search keeps, the memory does not), writes Adult rows resampled to --rows into a Parquet file (itself written in
chunks), then scores it with `trainyard predict NAME big.parquet -o scored.parquet` in a child process
and reports its peak resident memory (ru_maxrss) and time. For contrast, the same scoring done by loading
a file whole (pandas read + predict + write, as a naive script would) is measured on --whole-rows rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

WHOLE = """
import sys, pandas as pd
from trainyard import api
m = api.load("adult")
X = pd.read_parquet(sys.argv[1])
pd.concat([X, api.prediction_frame(m, X)], axis=1).to_parquet(sys.argv[2], index=False)
"""


def make_file(data, rows: int, path: Path, chunk: int = 500_000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        part = data.iloc[rng.integers(0, len(data), n)].reset_index(drop=True)
        table = pa.Table.from_pandas(part, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        done += n
    writer.close()


MEASURE = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"


def child(cmd: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one child process (measured by a fresh parent, so peaks do not carry over)."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return seconds, int(proc.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--whole-rows", type=int, default=1_000_000)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--preset", default="balanced")
    ap.add_argument("--time-limit", type=float)
    ap.add_argument("--max-trials", type=int)
    args = ap.parse_args()
    from fetch_data import adult

    import pandas as pd

    from trainyard import api

    work = Path(tempfile.mkdtemp(prefix=f"trainyard-bench-batch-{os.getpid()}-"))
    env = {**os.environ, "TRAINYARD_HOME": str(work / "ws"), "PYTHONPATH": str(ROOT / "src")}
    data = pd.read_csv(adult())
    from trainyard.models.unwrap import tree_parts

    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    result = api.train(data, target="income", workspace=work / "ws", include=["lightgbm"], name="adult", preset=args.preset,
                       time_limit=args.time_limit, max_trials=args.max_trials)
    parts = tree_parts(result.model)
    print(f"model: {result.model.family}, {len(parts.members)} LightGBM models, {sum(m.booster_.num_trees() for _, _, m in parts.members)} trees in all", flush=True)
    features = data.drop(columns="income")
    rows = []
    for label, n, cmd in (
        ("whole file (pandas)", args.whole_rows, lambda src, dst: [sys.executable, "-c", WHOLE, str(src), str(dst)]),
        ("trainyard predict (streaming)", args.whole_rows, lambda src, dst: [sys.executable, "-m", "trainyard", "predict", "adult", str(src), "-o", str(dst), "--chunk-rows", str(args.chunk_rows)]),
        ("trainyard predict (streaming)", args.rows, lambda src, dst: [sys.executable, "-m", "trainyard", "predict", "adult", str(src), "-o", str(dst), "--chunk-rows", str(args.chunk_rows)]),
    ):
        src = work / f"adult-{n}.parquet"
        if not src.exists():
            make_file(features, n, src)
        dst = work / "scored.parquet"
        seconds, peak = child(cmd(src, dst), env)
        out_rows = pd.read_parquet(dst, columns=["income_predicted"]).shape[0]
        assert out_rows == n, (out_rows, n)
        rows.append((label, n, src.stat().st_size / 2**20, seconds, peak))
        print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
        print(f"{label:32s} {n:>12,} rows  file {rows[-1][2]:7.1f} MiB  {seconds:8.1f} s  peak RSS {peak:8.0f} MiB", flush=True)
        dst.unlink()
    print()
    print("| method | rows | input file MiB | seconds | rows/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for label, n, size, seconds, peak in rows:
        print(f"| {label} | {n:,} | {size:.0f} | {seconds:.0f} | {n / seconds:,.0f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
    for leftover in Path(tempfile.gettempdir()).glob(f"trainyard-bench-batch-{os.getpid()}-*"):
        shutil.rmtree(leftover, ignore_errors=True)  # the 10M-row files are ~200 MB
