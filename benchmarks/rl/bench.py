"""trainyard PPO against Stable-Baselines3 PPO with the RL Zoo's hyperparameters: same environment, timesteps,
seeds and machine, runs interleaved; final mean return (held-out seeds, 95% interval) and environment steps per
second (wall and CPU seconds of training only, one torch thread each).

    python benchmarks/rl/bench.py [--seeds 0 1 2] [--episodes 50] [--envs CartPole-v1:50000 Acrobot-v1:50000 ...]

Each run is its own process: trainyard in this interpreter (PYTHONPATH=src), SB3 in its venv (--sb3-python,
default /tmp/peer-sb3/bin/python; make it with `python -m venv /tmp/peer-sb3 && /tmp/peer-sb3/bin/pip install
-c constraints.txt torch==2.13.0 stable-baselines3 gymnasium==1.4.0 box2d pygame pyyaml && /tmp/peer-sb3/bin/pip
install --no-deps rl_zoo3`). The order of the two alternates from run to run. Results are appended as JSON lines
to --out, then summarised: per environment and library, the mean over seeds of the final mean return with the
spread across seeds, the pooled interval over all evaluation episodes, and steps per second.
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
DEFAULT_ENVS = ["CartPole-v1:50000", "Acrobot-v1:50000", "LunarLander-v3:100000", "Pendulum-v1:50000"]


def run_one(lib: str, env: str, steps: int, seed: int, episodes: int, sb3_python: str) -> dict:
    script = HERE / ("run_trainyard.py" if lib == "trainyard" else "run_sb3.py")
    python = sys.executable if lib == "trainyard" else sb3_python
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([python, str(script), "--env", env, "--timesteps", str(steps), "--seed", str(seed), "--episodes", str(episodes)],
                          capture_output=True, text=True, env=env_vars, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} {env} seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(rows: list[dict]) -> list[list]:
    from scipy import stats

    out = []
    for env in dict.fromkeys(r["env"] for r in rows):
        for lib in ("trainyard", "sb3"):
            runs = [r for r in rows if r["env"] == env and r["lib"] == lib]
            if not runs:
                continue
            means = [sum(r["returns"]) / len(r["returns"]) for r in runs]
            pooled = [x for r in runs for x in r["returns"]]
            n, m = len(pooled), sum(pooled) / len(pooled)
            sd = math.sqrt(sum((x - m) ** 2 for x in pooled) / max(n - 1, 1))
            half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
            seed_sd = math.sqrt(sum((x - m) ** 2 for x in means) / max(len(means) - 1, 1))
            steps = sum(r["steps"] for r in runs)
            out.append([env, lib, len(runs), runs[0]["steps"], m, m - half, m + half, seed_sd,
                        steps / sum(r["wall"] for r in runs), steps / sum(r["cpu"] for r in runs)])
    return out


def print_table(summary: list[list]) -> None:
    head = ["env", "library", "seeds", "timesteps", "mean return", "95% CI (pooled episodes)", "sd across seeds", "steps/s wall", "steps/s CPU"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for env, lib, k, steps, m, lo, hi, sd, wall, cpu in summary:
        print(f"| {env} | {lib} | {k} | {steps:,} | {m:.1f} | [{lo:.1f}, {hi:.1f}] | {sd:.1f} | {wall:,.0f} | {cpu:,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--envs", nargs="+", default=DEFAULT_ENVS, help="ENV:TIMESTEPS")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--sb3-python", default="/tmp/peer-sb3/bin/python")
    ap.add_argument("--out", type=Path, default=HERE / "results.jsonl")
    ap.add_argument("--summarize-only", action="store_true")
    args = ap.parse_args()
    if not args.summarize_only:
        print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; load before: {os.getloadavg()}", flush=True)
        k = 0
        for seed in args.seeds:
            for spec in args.envs:
                env, steps = spec.split(":")
                for lib in (("trainyard", "sb3") if k % 2 == 0 else ("sb3", "trainyard")):
                    row = run_one(lib, env, int(steps), seed, args.episodes, args.sb3_python)
                    row["load"] = os.getloadavg()[0]
                    with open(args.out, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    mean = sum(row["returns"]) / len(row["returns"])
                    print(f"{env} seed {seed} {lib}: return {mean:.1f}, {row['steps'] / row['wall']:,.0f} steps/s wall, "
                          f"{row['steps'] / row['cpu']:,.0f} CPU, load {row['load']:.1f}", flush=True)
                k += 1
        print(f"# load after: {os.getloadavg()}")
    rows = [json.loads(line) for line in open(args.out)]
    print_table(summarize(rows))


if __name__ == "__main__":
    main()
