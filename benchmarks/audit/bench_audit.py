"""Benchmark: `trainyard.audit` on a 1,000,000 x 50 mixed table and on 100,000 rows of it.

    python benchmarks/audit/bench_audit.py [--rows 1000000] [--small 100000] [--no-label-noise]

After a warm-up audit (imports), the two sizes are audited alternately `--repeats` times; per size it prints the
fastest wall time and its CPU time (user + system), the peak process RSS growth during the audit (psutil, sampled
every 50 ms), the process's peak RSS (Python, libraries and the tables included) and, from one extra run under
tracemalloc (left off in the timed runs because it slows allocation-heavy code), the peak traced allocation, each
next to the table's in-memory size (pandas `memory_usage(deep=True)`); then the time of each check. The table is built in memory the way
`load_table` returns a CSV under pandas 3 (float64/int64 numbers, pyarrow-backed strings); it has planted
problems (a leak, duplicates, a mixed-type column, an id, missing values) so every check does real work.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
import tracemalloc

import numpy as np
import pandas as pd


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(20):
        cols[f"num_{i}"] = rng.normal(i, 1 + i, n)
    for i in range(5):
        cols[f"count_{i}"] = rng.poisson(3 + i, n)
    for i in range(5):
        x = rng.lognormal(3, 1, n)
        x[rng.random(n) < 0.05] = np.nan
        cols[f"amount_{i}"] = x
    words = np.array([f"cat_{k}" for k in range(40)])
    for i in range(12):
        cols[f"cat_{i}"] = words[rng.integers(0, 10 + 2 * i, n)]
    cols["city"] = np.array(["NY", "ny ", "Boston", "Chicago", "LA"])[rng.integers(0, 5, n)]
    cols["zip"] = np.char.add("Z", rng.integers(0, 5000, n).astype(str))
    cols["flag"] = rng.random(n) < 0.3
    cols["date"] = (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D")).strftime("%Y-%m-%d")
    mixed = rng.integers(0, 100, n).astype(str).astype(object)
    mixed[rng.random(n) < 0.02] = "n/a"
    mixed[rng.random(n) < 0.01] = "twelve"
    cols["mixed"] = mixed
    cols["id"] = np.arange(n)
    logit = 0.3 * cols["num_0"] - 0.1 * cols["num_3"] + 0.4 * (cols["count_0"] - 3) + np.where(cols["cat_0"] == "cat_1", 1.0, 0.0)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    cols["leak"] = np.where(y, "closed", "open")
    cols["target"] = np.where(y, "yes", "no")
    df = pd.DataFrame(cols)
    dup = rng.choice(n, n // 100, replace=False)
    df.iloc[dup[: len(dup) // 2]] = df.iloc[dup[len(dup) // 2 :]].to_numpy()
    for c in ("cat_0", "city", "zip", "date", "mixed", "leak", "target"):
        df[c] = df[c].astype("str")
    return df


def run(df: pd.DataFrame, label_noise: bool, traced: bool = False) -> dict:
    """One audit: wall and CPU time and peak RSS growth (sampled every 50 ms); with `traced`, tracemalloc's peak too
    (tracemalloc slows allocation-heavy code, so timed runs leave it off)."""
    import threading

    import psutil

    from trainyard import audit

    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    peak_rss = [rss0]
    stop = threading.Event()

    def sample_rss():
        while not stop.is_set():
            peak_rss[0] = max(peak_rss[0], proc.memory_info().rss)
            stop.wait(0.05)

    watcher = threading.Thread(target=sample_rss, daemon=True)
    watcher.start()
    if traced:
        tracemalloc.start()
    cpu0 = sum(proc.cpu_times()[:2])
    t0 = time.perf_counter()
    report = audit(df, target="target", label_noise=label_noise)
    wall = time.perf_counter() - t0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
    if traced:
        tracemalloc.stop()
    stop.set()
    watcher.join()
    return {"wall": wall, "cpu": cpu, "traced_peak": traced_peak, "rss_growth": peak_rss[0] - rss0, "rss_peak": peak_rss[0], "report": report}


def main() -> None:
    import psutil

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per size, alternating sizes; the fastest is reported")
    ap.add_argument("--no-label-noise", action="store_true")
    args = ap.parse_args()
    print(f"# trainyard audit benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, pandas {pd.__version__}, label noise {'off' if args.no_label_noise else 'on'}")
    load0 = " ".join(f"{x:.1f}" for x in os.getloadavg())
    big = make_table(args.rows)
    tables = {n: (big if n == len(big) else big.iloc[:n].copy()) for n in (args.small, args.rows)}
    run(big.iloc[:5000].copy(), not args.no_label_noise)  # warm-up: imports (LightGBM, scikit-learn, cleanlab) are not the audit's cost
    timed: dict[int, list[dict]] = {n: [] for n in tables}
    for _ in range(args.repeats):  # alternate the sizes so load from other processes hits both alike
        for n, df in tables.items():
            timed[n].append(run(df, not args.no_label_noise))
    traced = {n: run(df, not args.no_label_noise, traced=True) for n, df in tables.items()}
    print()
    print(f"load average before/after: {load0} / {' '.join(f'{x:.1f}' for x in os.getloadavg())} (other processes share the CPUs: "
          "wall time is inflated by them, CPU time much less)")
    print("| rows | columns | table MiB | wall s (fastest of %d) | CPU s (user+sys) | RSS growth MiB (x table) | process peak RSS MiB, both tables held (x table) "
          "| traced peak MiB (x table) | blocking / warning / info |" % args.repeats)
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    mib = 1024 ** 2
    best = {}
    for n, df in tables.items():
        size = df.memory_usage(deep=True).sum()
        r = best[n] = min(timed[n], key=lambda x: x["wall"])
        t = traced[n]
        growth = max(x["rss_growth"] for x in timed[n] + [t])
        peak = max(x["rss_peak"] for x in timed[n] + [t])
        s = r["report"].summary()
        print(f"| {n:,} | {df.shape[1]} | {size / mib:,.0f} | {r['wall']:.1f} | {r['cpu']:.1f} | {growth / mib:,.0f} ({growth / size:.2f}x) | "
              f"{peak / mib:,.0f} ({peak / size:.2f}x) | {t['traced_peak'] / mib:,.0f} ({t['traced_peak'] / size:.2f}x) | "
              f"{s['blocking']} / {s['warning']} / {s['info']} |")
    (n0, r0), (n1, r1) = best.items()
    print(f"\n{n1 // n0}x the rows took {r1['wall'] / r0['wall']:.1f}x the wall time and {r1['cpu'] / r0['cpu']:.1f}x the CPU time.")
    print("\nseconds per check, fastest timed run (small, big):")
    for k in r1["report"].timings:
        print(f"  {k:16s} {r0['report'].timings.get(k, 0):7.2f} {r1['report'].timings[k]:7.2f}")
    print("\nfindings on the big table:")
    for f in r1["report"].findings:
        print(f"  {f.severity:8s} {f.check:22s} {f.column or '-':10s} {f.what[:90]}")
        if f.sampled:
            print(f"  {'':8s} {'':22s} {'':10s} sampled: {f.sampled[:100]}")


if __name__ == "__main__":
    main()
