"""How fast the dashboard's runs page is with many runs (not a test: prints a table).

    python benchmarks/dashboard/bench_runs_page.py [--runs 10000 100000] [--repeat 20] [--browser]

For each workspace size it bulk-inserts runs (and 5 trials each for the first
1,000), starts the real app under uvicorn on loopback, and times over HTTP:
the first page, a deep page, a status filter, a name filter and the JSON API;
next to the store's own `list_runs(50)` + `count_runs()` in-process (the peer:
the same data without HTTP or HTML). With --browser, Chromium's navigation
timing of /runs (request start to the load event) is measured too.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

STATUSES = ("finished", "finished", "finished", "failed", "interrupted")


def build(home: Path, n: int):
    from trainyard.registry import tables as t
    from trainyard.registry.workspace import Workspace

    ws = Workspace.resolve(home)
    store = ws.store
    stamp = datetime.now(timezone.utc)
    batch = []
    with store.tx() as conn:
        for i in range(n):
            batch.append(dict(id=f"r{i:011d}", name=f"model-{i % 40}", kind="tabular", status=STATUSES[i % 5], task="binary",
                              metric="roc_auc", best_score=0.5 + (i % 500) / 1000, best_family="lightgbm",
                              created_at=stamp - timedelta(seconds=i), updated_at=stamp, finished_at=stamp))
            if len(batch) == 5000:
                conn.execute(t.runs.insert(), batch)
                batch = []
        if batch:
            conn.execute(t.runs.insert(), batch)
        trials = [dict(run_id=f"r{i:011d}", number=k, family="lightgbm", status="ok", val_score=0.7, created_at=stamp)
                  for i in range(min(n, 1000)) for k in range(5)]
        conn.execute(t.trials.insert(), trials)
    return ws


def serve(ws):
    import uvicorn

    from trainyard.dashboard.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ws), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def browser_ms(url: str, repeat: int) -> tuple[float, float] | None:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="bench-chrome-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    try:
        samples = []
        for i in range(repeat + 1):
            driver.get(url)
            ms = driver.execute_script("const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.requestStart;")
            if i:
                samples.append(ms)
        samples.sort()
        return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--browser", action="store_true", help="also time /runs in headless Chromium")
    args = parser.parse_args()
    print(f"{'runs':>8} | {'what':<46} | {'median ms':>9} | {'p95 ms':>7}")
    print("-" * 80)
    for n in args.runs:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            ws = build(Path(tmp) / "ws", n)
            print(f"{n:>8} | {'(building the workspace: ' + f'{time.perf_counter() - started:.1f} s)':<46} | {'':>9} | {'':>7}")
            server, base = serve(ws)
            client = httpx.Client(base_url=base, timeout=30)
            store = ws.store
            cases = {
                "store.list_runs(50) + count_runs() in-process": lambda: (store.list_runs(50), store.count_runs()),
                "GET /runs (first page, HTML)": lambda: client.get("/runs").raise_for_status(),
                f"GET /runs?page={n // 100} (deep page)": lambda: client.get(f"/runs?page={n // 100}").raise_for_status(),
                "GET /runs?status=failed": lambda: client.get("/runs?status=failed").raise_for_status(),
                "GET /runs?name=model-7": lambda: client.get("/runs?name=model-7").raise_for_status(),
                "GET /api/runs (JSON)": lambda: client.get("/api/runs").raise_for_status(),
                "GET /runs/<id> (run page)": lambda: client.get("/runs/r00000000005").raise_for_status(),
            }
            for label, fn in cases.items():
                med, p95 = timed(fn, args.repeat)
                print(f"{n:>8} | {label:<46} | {med:>9.1f} | {p95:>7.1f}")
            if args.browser:
                result = browser_ms(base + "/runs", min(args.repeat, 10))
                if result:
                    print(f"{n:>8} | {'Chromium: /runs request start -> load event':<46} | {result[0]:>9.1f} | {result[1]:>7.1f}")
            client.close()
            server.should_exit = True
            time.sleep(0.3)


if __name__ == "__main__":
    main()
