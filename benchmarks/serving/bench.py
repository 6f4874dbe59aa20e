"""Serving benchmark: the same LightGBM pipeline on Adult served by trainyard and by `mlflow models serve`.

    python benchmarks/serving/bench.py [--duration 30] [--connections 1,16,64] [--workers 1]
        [--mlflow-python /work/peers/mlflow-venv/bin/python] [--workspace WS] [--no-log-variant] [--no-compile-variant]
        [--wrk-threads 1] [--pin]

1. fetches Adult (scripts/fetch_data.py adult) and trains LightGBM on it (`trainyard train --include lightgbm`:
   AutoML's ensemble of LightGBM models) into a temporary workspace, or uses adult@1 in --workspace;
2. times in-process single-row prediction (fast path with LightGBM's own tree code, with the trees compiled to
   machine code as `trainyard serve` does in the background, and the DataFrame path);
3. exports the same version as an MLflow pyfunc directory ("mlflow-export": trainyard's fast path running inside
   MLflow's server) and, with mlflow_sklearn.py, trains the model an MLflow user would serve: a scikit-learn
   Pipeline (one-hot + LightGBM defaults) saved with mlflow.sklearn ("mlflow-sklearn"); serves both with
   `mlflow models serve --env-manager local` (MLflow in its own virtual environment), and the version with
   `trainyard serve`;
4. starts every server, then loads them with wrk on loopback (one JSON row per request) taking turns at
   each connection count (so machine load hits all alike), and prints requests/s, p50, p99 and errors for
   each, and the throughput ratio against each MLflow model. --no-log-variant adds `trainyard serve --no-log` as a third contender
   (what the prediction log costs), --no-compile-variant `trainyard serve --no-compile` (what compiling the trees
   gives). Load starts once each trainyard server has compiled its trees (`compiled_trees` in /v1/models/adult). For each run it also reports the CPU the server's processes got (in
   cores: on a shared machine, below 1 per worker means it was waiting for a CPU), its CPU time per
   request, and, for trainyard, the p99 of its own request-handling time from /metrics (the bucket bound):
   what the server adds, apart from waiting in the socket backlog and for the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MLFLOW_SERVERS = ("mlflow-export", "mlflow-sklearn")
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

LUA = """wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server at {url} did not become ready")


def wait_compiled(info_url: str, timeout: float = 600) -> dict:
    """Wait until the server has tried to compile its LightGBM trees (`serve --no-compile`: at once); its report."""
    deadline = time.monotonic() + timeout
    while True:
        info = httpx.get(info_url, timeout=5).json()["compiled_trees"]
        if info["state"] not in ("waiting", "compiling") or time.monotonic() > deadline:
            return info
        time.sleep(1)


def to_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(url: str, body: str, connections: int, duration: int, workdir: Path, threads: int = 1, pin: list[str] = ()) -> dict:
    script = workdir / "post.lua"
    script.write_text(LUA.format(body=body))
    out = subprocess.run([*pin, "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    kinds = dict(zip(("connect", "read", "write", "timeout"), (int(x) for x in sock.groups()))) if sock else {}
    detail = ", ".join(f"{k} {v}" for k, v in ({"non-2xx": non2xx, **kinds}).items() if v)
    return {"rps": rps, "requests": total, "p50_ms": p50, "p99_ms": p99, "errors": non2xx + sum(kinds.values()), "error_kinds": detail}


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (a server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def server_side_p99_ms(metrics_url: str, before: dict | None = None) -> tuple[dict, float | None]:
    """trainyard's own request-time histogram (/metrics, from request received to response built): the
    cumulative bucket counts now, and the p99 bucket bound of the requests since `before`."""
    text = httpx.get(metrics_url, timeout=30).text
    counts: dict[float, int] = {}
    for le, n in re.findall(r'trainyard_request_seconds_bucket\{[^}]*le="([^"]+)"\} (\d+)', text):
        key = float("inf") if le == "+Inf" else float(le)
        counts[key] = counts.get(key, 0) + int(n)
    if before is None:
        return counts, None
    delta = {k: counts[k] - before.get(k, 0) for k in sorted(counts)}
    total = delta.get(float("inf"), 0)
    if not total:
        return counts, None
    p99 = next(k for k, n in delta.items() if n >= 0.99 * total)
    return counts, p99 * 1e3


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def in_process(served, row: dict, n: int = 5000) -> dict:
    """Median and p99 microseconds of ServedModel.outputs on one validated row: fast path (LightGBM's code, then
    the trees compiled to machine code) vs DataFrame path."""
    import statistics

    from trainyard.serve.compiling import compile_served

    rows = served.validator.validate_rows([row])
    out = {}
    for label, fast in (("fast path", served.fast), ("compiled trees", served.fast), ("DataFrame path", None)):
        if label == "compiled trees":
            compilation = compile_served("bench", served.fast)
            compilation.wait()
            print(f"compiled trees in process: {compilation.info()}", flush=True)
        saved, served.fast = served.fast, fast
        times = []
        for _ in range(n if fast else max(200, n // 10)):
            t = time.perf_counter()
            served.outputs(rows)
            times.append((time.perf_counter() - t) * 1e6)
        served.fast = saved
        times.sort()
        out[label] = {"median_us": statistics.median(times), "p99_us": times[int(len(times) * 0.99)]}
    return out


def load_one(name: str, url: str, body: str, pid: int, c: int, args, work: Path) -> dict:
    """One wrk run against one server, with the CPU its processes got and (trainyard) its own handler p99."""
    metrics_url = url.split("/v1/")[0] + "/metrics" if name.startswith("trainyard") else None
    before = server_side_p99_ms(metrics_url)[0] if metrics_url else None
    cpu0, t0 = group_cpu_seconds(pid), time.perf_counter()
    r = run_wrk(url, body, c, args.duration, work, args.wrk_threads, ["taskset", "-c", "1"] if args.pin else [])
    cpu, wall = group_cpu_seconds(pid) - cpu0, time.perf_counter() - t0
    r["server_cpu_share"] = cpu / wall  # cores' worth of CPU the server got while loaded
    r["server_cpu_ms_per_request"] = 1e3 * cpu / max(r["requests"], 1)
    r["server_side_p99_ms"] = server_side_p99_ms(metrics_url, before)[1] if metrics_url else None
    inside = f"  handler p99 <= {r['server_side_p99_ms']:g} ms" if r["server_side_p99_ms"] is not None else ""
    print(f"  {name:18s} c={c:<3d} {r['rps']:9.1f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']} {r['error_kinds']}"
          f"  server CPU {r['server_cpu_share']:.2f} cores, {r['server_cpu_ms_per_request']:.2f} ms/request{inside}", flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--connections", default="1,16,64")
    ap.add_argument("--workers", type=int, default=1, help="worker processes for both servers")
    ap.add_argument("--mlflow-python", default=os.environ.get("TRAINYARD_MLFLOW_PYTHON", "/work/peers/mlflow-venv/bin/python"))
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--workspace", type=Path, help="use adult@1 from this workspace instead of training (it is not deleted)")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of the whole sweep (servers taking turns in each)")
    ap.add_argument("--wrk-threads", type=int, default=1,
                    help="wrk's threads (1: on a 2-core machine a second wrk thread takes the core the server needs)")
    ap.add_argument("--pin", action="store_true",
                    help="servers on CPU 0, wrk on CPU 1 (taskset): as if the load came from another machine")
    ap.add_argument("--no-log-variant", action="store_true", help="also serve with --no-log")
    ap.add_argument("--no-compile-variant", action="store_true", help="also serve with --no-compile (LightGBM's own tree code)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    from fetch_data import adult

    import pandas as pd

    from trainyard import api
    from trainyard.serve.export import export
    from trainyard.serve.runtime import load_served
    from trainyard.serve.validate import ValidationPolicy
    from trainyard.registry.workspace import Workspace

    from trainyard.models.unwrap import tree_parts

    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), f"| wrk threads: {args.wrk_threads}{' | pinned: servers CPU 0, wrk CPU 1' if args.pin else ''}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="trainyard-bench-serving-"))
    home = args.workspace or work / "ws"
    data = pd.read_csv(adult())
    if not args.workspace:
        print(f"training LightGBM on Adult ({len(data):,} rows) ...", flush=True)
        api.train(data, target="income", workspace=home, include=["lightgbm"], name="adult")
    row = {k: v for k, v in data.drop(columns="income").iloc[0].to_dict().items() if not (isinstance(v, float) and v != v)}
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    served = load_served(Workspace.resolve(home), "adult", 1, ValidationPolicy())
    timing = in_process(served, row)

    export("adult@1", "mlflow", work / "mlflow-export", workspace=home)
    results = {}
    mlflow_bin = Path(args.mlflow_python).parent
    trainyard_cmd = (["trainyard" if shutil.which("trainyard") else sys.executable] + ([] if shutil.which("trainyard") else ["-m", "trainyard"])
                     + ["serve", "adult@1", "--port", "{port}", "--workers", str(args.workers)])
    trainyard_env = {**os.environ, "TRAINYARD_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    body = json.dumps({"rows": [row]})
    servers = {"trainyard": (trainyard_cmd, trainyard_env, "/v1/models/adult/predict", "/ready", body)}
    if args.no_log_variant:
        servers["trainyard --no-log"] = (trainyard_cmd + ["--no-log"], trainyard_env, "/v1/models/adult/predict", "/ready", body)
    if args.no_compile_variant:
        servers["trainyard --no-compile"] = (trainyard_cmd + ["--no-compile"], trainyard_env, "/v1/models/adult/predict", "/ready", body)
    mlflow_env = {**os.environ, "PATH": f"{mlflow_bin}:{os.environ['PATH']}", "PYTHONPATH": "", "MLFLOW_TRACKING_URI": f"file://{work}/mlruns"}
    subprocess.run([args.mlflow_python, str(HERE / "mlflow_sklearn.py"), str(adult()), str(work / "mlflow-sklearn")], env=mlflow_env, check=True)
    mlflow_body = json.dumps({"dataframe_records": [row]})
    for name in MLFLOW_SERVERS:
        servers[name] = ([str(mlflow_bin / "mlflow"), "models", "serve", "-m", str(work / name), "--env-manager", "local",
                          "-h", "127.0.0.1", "-p", "{port}", "-w", str(args.workers)], mlflow_env, "/invocations", "/ping", mlflow_body)
    procs, urls = {}, {}
    try:
        for name, (cmd, env, path, ready, body) in servers.items():
            port = free_port()
            pin = ["taskset", "-c", "0"] if args.pin else []
            procs[name] = start(pin + [c.replace("{port}", str(port)) for c in cmd], env, work / f"{name.replace(' ', '')}.log")
            wait_ready(f"http://127.0.0.1:{port}{ready}")
            if name.startswith("trainyard"):
                print(f"{name}: compiled trees {wait_compiled(f'http://127.0.0.1:{port}/v1/models/adult')}", flush=True)
            urls[name] = f"http://127.0.0.1:{port}{path}"
            check = httpx.post(urls[name], content=body, headers={"content-type": "application/json"}, timeout=30)
            assert check.status_code == 200, (name, check.status_code, check.text[:500])
            print(f"{name}: {check.text[:160]}", flush=True)
        for rnd in range(args.repeats):
            for c in [int(x) for x in args.connections.split(",")]:
                for name, (_, _, _, _, body) in servers.items():
                    results[(name, c, rnd)] = load_one(name, urls[name], body, procs[name].pid, c, args, work)
    finally:
        for proc in procs.values():
            stop(proc)
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)

    print()
    parts = tree_parts(served.model)
    trees = sum(m.booster_.num_trees() for _, _, m in parts.members) if parts else "?"
    print(f"In-process single-row predict (Adult, {served.model.family}, {len(parts.members) if parts else '?'} LightGBM models, {trees} trees in all):")
    for label, t in timing.items():
        print(f"  {label:15s} median {t['median_us']:8.1f} us   p99 {t['p99_us']:8.1f} us")
    print()
    conns = [int(x) for x in args.connections.split(",")]
    print("| round | connections | server | req/s | p50 ms | p99 ms | errors | vs mlflow-export | vs mlflow-sklearn | server CPU (cores) | CPU ms/request | handler p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for rnd, c, name in ((rnd, c, name) for rnd in range(args.repeats) for c in conns for name in servers):
        r = results[(name, c, rnd)]
        ratios = " | ".join(f"{r['rps'] / results[(m, c, rnd)]['rps']:.1f}x" for m in MLFLOW_SERVERS)
        inside = f"<= {r['server_side_p99_ms']:g}" if r["server_side_p99_ms"] is not None else "-"
        print(f"| {rnd + 1} | {c} | {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']}{' (' + r['error_kinds'] + ')' if r['error_kinds'] else ''} "
              f"| {ratios} | {r['server_cpu_share']:.2f} | {r['server_cpu_ms_per_request']:.2f} | {inside} |")
    if args.json:
        args.json.write_text(json.dumps({"timing": timing, "wrk": {f"{k[0]}@{k[1]}#{k[2] + 1}": v for k, v in results.items()}}, indent=2))
    if not args.workspace:
        shutil.rmtree(work / "ws", ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
