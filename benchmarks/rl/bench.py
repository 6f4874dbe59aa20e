"""trainyard's PPO and DQN against Stable-Baselines3's with the RL Zoo's hyperparameters: same environment,
timesteps, seeds and machine, runs interleaved; final mean return (held-out seeds, 95% interval) and environment
steps per second (wall and CPU seconds of training only, one torch thread each).

    python benchmarks/rl/bench.py [--seeds 0 1 2] [--episodes 50] [--runs ppo:CartPole-v1:50000 dqn:Acrobot-v1:30000 ...]

Each run is its own process (run_trainyard.py, run_sb3.py; their command line, evaluation and output are
runner.py's): trainyard in this interpreter with PYTHONPATH=src, SB3 with --sb3-python and PYTHONPATH=--sb3-path
(make it apart from trainyard's packages: `pip install --target /tmp/peer-sb3-pkgs --no-deps stable-baselines3==2.9.2
rl_zoo3==2.9.2`, whose other needs, torch, gymnasium, pyyaml, pandas, matplotlib, trainyard's venv has). The
order of the two alternates from run to run. Results are appended as JSON lines to --out, then summarised: per
algorithm, environment and library, the mean over seeds of the final mean return with the spread across seeds,
the pooled interval over all evaluation episodes, and steps per second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_RUNS = ["ppo:CartPole-v1:50000", "ppo:Acrobot-v1:50000", "ppo:LunarLander-v3:100000", "ppo:Pendulum-v1:50000",
                "dqn:CartPole-v1:50000", "dqn:Acrobot-v1:20000"]


def run_one(lib: str, algo: str, env: str, steps: int, seed: int, args) -> dict:
    script = HERE / ("run_trainyard.py" if lib == "trainyard" else "run_sb3.py")
    python = sys.executable if lib == "trainyard" else args.sb3_python
    path = str(ROOT / "src") if lib == "trainyard" else args.sb3_path
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}
    command = [python, str(script), "--algo", algo, "--env", env, "--timesteps", str(steps), "--seed", str(seed), "--episodes", str(args.episodes)]
    command += ["--keep-best"] if args.keep_best else []
    proc = subprocess.run(command, capture_output=True, text=True, env=env_vars, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} {algo} {env} seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def label(row: dict) -> str:
    return row["lib"] + (" keep-best" if row.get("keep_best") else "")


def summarize(rows: list[dict]) -> list[list]:
    from scipy import stats

    out = []
    for algo, env in dict.fromkeys((r.get("algo", "ppo"), r["env"]) for r in rows):
        for lib in ("trainyard", "sb3", "trainyard keep-best", "sb3 keep-best"):
            runs = [r for r in rows if r.get("algo", "ppo") == algo and r["env"] == env and label(r) == lib]
            if not runs:
                continue
            means = [sum(r["returns"]) / len(r["returns"]) for r in runs]
            pooled = [x for r in runs for x in r["returns"]]
            n, m = len(pooled), sum(pooled) / len(pooled)
            sd = math.sqrt(sum((x - m) ** 2 for x in pooled) / max(n - 1, 1))
            half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
            seed_sd = math.sqrt(sum((x - m) ** 2 for x in means) / max(len(means) - 1, 1))
            steps = sum(r["steps"] for r in runs)
            out.append([algo, env, lib, len(runs), runs[0]["steps"], m, m - half, m + half, seed_sd,
                        steps / sum(r["wall"] for r in runs), steps / sum(r["cpu"] for r in runs)])
    return out


def print_table(summary: list[list]) -> None:
    head = ["algo", "env", "library", "seeds", "timesteps", "mean return", "95% CI (pooled episodes)", "sd across seeds", "steps/s wall", "steps/s CPU"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for algo, env, lib, k, steps, m, lo, hi, sd, wall, cpu in summary:
        print(f"| {algo.upper()} | {env} | {lib} | {k} | {steps:,} | {m:.1f} | [{lo:.1f}, {hi:.1f}] | {sd:.1f} | {wall:,.0f} | {cpu:,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="ALGO:ENV:TIMESTEPS")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--keep-best", action="store_true", help="both libraries keep the best policy seen on validation episodes (runner.py)")
    ap.add_argument("--sb3-python", default=sys.executable)
    ap.add_argument("--sb3-path", default="/tmp/peer-sb3-pkgs", help="PYTHONPATH of the SB3 runs (stable-baselines3, rl_zoo3)")
    ap.add_argument("--out", type=Path, default=HERE / "results.jsonl")
    ap.add_argument("--summarize-only", action="store_true")
    ap.add_argument("--also", nargs="*", type=Path, default=[], help="more JSONL files of results to summarise with --out's")
    args = ap.parse_args()
    if not args.summarize_only:
        print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load before: {os.getloadavg()}", flush=True)
        k = 0
        for seed in args.seeds:
            for spec in args.runs:
                algo, env, steps = spec.split(":")
                for lib in (("trainyard", "sb3") if k % 2 == 0 else ("sb3", "trainyard")):
                    row = run_one(lib, algo, env, int(steps), seed, args)
                    row["load"] = os.getloadavg()[0]
                    with open(args.out, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    mean = sum(row["returns"]) / len(row["returns"])
                    print(f"{algo} {env} seed {seed} {lib}: return {mean:.1f}, {row['steps'] / row['wall']:,.0f} steps/s wall, "
                          f"{row['steps'] / row['cpu']:,.0f} CPU, load {row['load']:.1f}", flush=True)
                k += 1
        print(f"# load after: {os.getloadavg()}")
    rows = [json.loads(line) for out in [args.out, *args.also] for line in open(out)]
    print_table(summarize(rows))


if __name__ == "__main__":
    main()
