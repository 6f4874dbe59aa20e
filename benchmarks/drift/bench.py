"""Drift report speed and memory: trainyard vs Evidently's DataDriftPreset on the same synthetic table.

    # side by side (each engine in its own process and virtual environment, same data, same seed):
    python benchmarks/drift/bench.py --rows 1000000 --cols 100 --evidently-python /work/peers/evidently/bin/python
    # trainyard alone on a table too large to hold twice, streamed in chunks:
    python benchmarks/drift/bench.py --stream --rows 3000000 --cols 1000

The table: float32 columns, column j ~ Normal(j % 7, 1 + j % 3); the current table shifts the mean of every
20th column by half a standard deviation and multiplies the spread of every 20th column from the 10th on by 1.5
around the same mean, so both engines have real drift of both kinds to find (their verdicts are compared with
the planted columns). Time is wall-clock of the drift computation only (data generation
excluded); memory is the peak resident set size during it, sampled every 5 ms, beside the process's size
just before it (which holds the two tables).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def column(j: int, n: int, current: bool, seed: int = 0, start: int = 0) -> np.ndarray:
    rng = np.random.default_rng([seed, j, int(current), start])
    x = rng.standard_normal(n, dtype=np.float32)
    scale, loc = np.float32(1 + j % 3), np.float32(j % 7)
    if current and j % 20 == 0:
        loc += np.float32(0.5) * scale
    if current and j % 20 == 10:
        scale *= np.float32(1.5)
    x *= scale
    x += loc
    return x


def frame(n: int, cols: int, current: bool, start: int = 0):
    import pandas as pd

    return pd.DataFrame({f"c{j}": column(j, n, current, start=start) for j in range(cols)}, copy=False)


def planted(cols: int) -> list[str]:
    return [f"c{j}" for j in range(cols) if j % 10 == 0]


class PeakRSS:
    """Peak resident set size (MiB), CPU seconds (all threads) and wall seconds of the block."""

    def __enter__(self):
        self.peak = self.before = rss_mib()
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())
        self.cpu, self.wall = time.process_time() - self.cpu0, time.perf_counter() - self.wall0
        return False


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_trainyard(rows: int, cols: int, domain: bool) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from trainyard.monitor.drift import feature_drift
    from trainyard.data.profile import profile_frame

    ref, cur = frame(rows, cols, False), frame(rows, cols, True)
    kinds = {c: "numeric" for c in ref.columns}
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        profile = {"columns": profile_frame(ref, kinds)}
        t1 = time.perf_counter()
        results = feature_drift(profile, cur)
        t2 = time.perf_counter()
    extra = {}
    if domain:  # not part of Evidently's preset: timed on its own, never in the comparison
        from trainyard.monitor.domain import domain_check
        from trainyard.monitor.drift import Thresholds

        with PeakRSS() as dom_mem:
            dom = domain_check(ref, cur, kinds, Thresholds())
        extra = {"domain_s": dom_mem.wall, "domain_auc": dom["auc"], "domain_peak_mib": dom_mem.peak}
    return {"engine": "trainyard", "seconds": t2 - t0, "cpu_s": mem.cpu, "profile_s": t1 - t0, "compare_s": t2 - t1, **extra,
            "rss_before_mib": mem.before, "peak_mib": mem.peak, "drifted": sorted(r["column"] for r in results if r["status"] == "drift")}


def run_evidently(rows: int, cols: int) -> dict:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = frame(rows, cols, False), frame(rows, cols, True)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(cur, ref)
        result = snapshot.dict()
        elapsed = time.perf_counter() - t0
    drifted, method = [], None
    for m in result["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            method = cfg.get("method", "")
            is_distance = any(k in method for k in ("Wasserstein", "distance", "PSI", "Jensen", "Hellinger"))
            value, threshold = float(m["value"]), float(cfg.get("threshold", 0.1))
            if (value >= threshold) if is_distance else (value < threshold):
                drifted.append(cfg["column"])
    return {"engine": "evidently", "seconds": elapsed, "cpu_s": mem.cpu, "rss_before_mib": mem.before, "peak_mib": mem.peak,
            "drifted": sorted(drifted), "method": method}


def _stream(rows: int, cols: int, chunk: int, current: bool, make_counter, seconds: dict):
    """Generate the table chunk by chunk and count each chunk; generation and counting are timed apart."""
    counter = None
    for start in range(0, rows, chunk):
        t = time.perf_counter()
        part = frame(min(chunk, rows - start), cols, current, start=start)
        seconds["generate"] += time.perf_counter() - t
        t = time.perf_counter()
        counter = counter or make_counter(part)
        counter.update(part)
        seconds["drift"] += time.perf_counter() - t
        del part
    return counter


def run_stream(rows: int, cols: int, chunk: int) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from trainyard.monitor.drift import Thresholds, compare_profiles, layout
    from trainyard.data.profile import Counter, layout_of

    kinds = {f"c{j}": "numeric" for j in range(cols)}
    seconds = {"generate": 0.0, "drift": 0.0}
    with PeakRSS() as mem:
        # reference: edges from the first chunk, counts from every row; then the current table on the same layout
        profile = _stream(rows, cols, chunk, False, lambda first: Counter(layout_of(first, kinds)), seconds).result()
        current = _stream(rows, cols, chunk, True, lambda first: Counter(layout(profile)), seconds).result()
        t = time.perf_counter()
        results = compare_profiles(profile, current, Thresholds())
        seconds["drift"] += time.perf_counter() - t
    return {"engine": "trainyard (streamed)", "seconds": seconds["drift"], "cpu_s": mem.cpu, "wall_s": mem.wall, "generate_s": seconds["generate"], "rss_before_mib": mem.before,
            "peak_mib": mem.peak, "drifted": sorted(r["column"] for r in results if r["status"] == "drift")}


def child(engine: str, args) -> dict:
    cmd = [sys.executable if engine == "trainyard" else args.evidently_python, __file__, "--engine", engine,
           "--rows", str(args.rows), "--cols", str(args.cols)] + (["--domain"] if args.domain else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def agreement(drifted: list[str], cols: int) -> str:
    truth = set(planted(cols))
    found = set(drifted)
    return f"{len(found & truth)}/{len(truth)} planted, {len(found - truth)} false"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--cols", type=int, default=100)
    p.add_argument("--engine", choices=["trainyard", "evidently"])
    p.add_argument("--evidently-python", default="/work/peers/evidently/bin/python")
    p.add_argument("--skip-evidently", action="store_true")
    p.add_argument("--domain", action="store_true", help="also time trainyard's domain classifier (not part of Evidently's preset)")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--chunk", type=int, default=100_000)
    args = p.parse_args()
    if args.engine == "trainyard":
        print(json.dumps(run_trainyard(args.rows, args.cols, args.domain)))
        return
    if args.engine == "evidently":
        print(json.dumps(run_evidently(args.rows, args.cols)))
        return
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.rows:,} rows x {args.cols} float32 columns, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; command: python {' '.join(sys.argv)}")
    if args.stream:
        r = run_stream(args.rows, args.cols, args.chunk)
        print("| engine | drift s (wall) | data generation s (wall) | CPU s, all | peak RSS MiB | drifted columns found |")
        print("|---|---|---|---|---|---|")
        print(f"| {r['engine']} | {r['seconds']:.1f} | {r['generate_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_mib']:.0f} | {agreement(r['drifted'], args.cols)} |")
        return
    results = [child("trainyard", args)] + ([] if args.skip_evidently else [child("evidently", args)])
    print("| engine | drift s (wall) | CPU s | RSS before MiB (2 tables) | peak RSS MiB | extra MiB | drifted columns found |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['engine']} | {r['seconds']:.1f} | {r['cpu_s']:.1f} | {r['rss_before_mib']:.0f} | {r['peak_mib']:.0f} | "
              f"{r['peak_mib'] - r['rss_before_mib']:.0f} | {agreement(r['drifted'], args.cols)} |")
    if len(results) == 2:
        ty, ev = results
        print(f"\ntrainyard is {ev['seconds'] / ty['seconds']:.1f}x faster in wall time, {ev['cpu_s'] / ty['cpu_s']:.1f}x in CPU time; extra memory {max(ev['peak_mib'] - ev['rss_before_mib'], 1) / max(ty['peak_mib'] - ty['rss_before_mib'], 1):.1f}x lower "
              f"(peak RSS {ev['peak_mib'] / ty['peak_mib']:.2f}x). Evidently's per-column method: {ev.get('method')}.")
    if results[0].get("domain_s") is not None:
        print(f"trainyard's domain classifier (extra, not in the table: 5,000 rows a side, 5 folds): {results[0]['domain_s']:.1f} s, "
              f"AUC {results[0]['domain_auc']:.3f}, peak RSS {results[0]['domain_peak_mib']:.0f} MiB.")


if __name__ == "__main__":
    main()
