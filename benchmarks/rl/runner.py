"""What the two sides of the RL benchmark share: the command line of one run, the held-out evaluation and the
JSON line a run prints (one protocol for trainyard and Stable-Baselines3, not two copies).

A run script (run_trainyard.py, run_sb3.py) parses `one_run_args()`, trains with one torch thread, times the
training only, then evaluates with `held_out_returns`: episode k reset with seed 1_000_000 + k, deterministic
actions, the environment's own time limit. With `--keep-best` both keep the best policy seen during training on
the same validation episodes (`VALIDATION_EPISODES` episodes reset with seeds 2_000_000 + k, scored every
`validation_every(timesteps)` steps and at the end, a tie going to the later one) and are evaluated with it:
trainyard's `--keep-best` (its default), SB3's through a callback doing the same (as the RL Zoo's EvalCallback
keeps `best_model.zip`, a plain maximum); the scorings are inside the timed training on both sides. Only the
standard library, NumPy and Gymnasium are imported here, so the SB3 side can run in an interpreter without trainyard.
"""

from __future__ import annotations

import argparse
import json
from typing import Callable

import numpy as np

EVAL_SEED_BASE = 1_000_000
VALIDATION_SEED_BASE = 2_000_000
VALIDATION_EPISODES = 10
ALGOS = ("ppo", "dqn")


def one_run_args(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--algo", choices=ALGOS, default="ppo")
    ap.add_argument("--env", required=True)
    ap.add_argument("--timesteps", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--keep-best", action="store_true", help="evaluate the best policy seen on validation episodes, not the last")
    return ap.parse_args()


def validation_every(timesteps: int) -> int:
    return max(timesteps // 20, 1)  # trainyard's default: about 20 scorings over the run


def held_out_returns(act: Callable[[np.ndarray], np.ndarray], env_id: str, episodes: int, seed_base: int = EVAL_SEED_BASE) -> list[float]:
    """Returns of `episodes` episodes of `act` (a batch of one observation -> a batch of one action)."""
    import gymnasium as gym

    env = gym.make(env_id)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed_base + k)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(np.asarray(obs, dtype=np.float32)[None])[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def print_result(lib: str, args: argparse.Namespace, steps: int, wall: float, cpu: float, returns: list[float]) -> None:
    print(json.dumps({"lib": lib, "algo": args.algo, "env": args.env, "seed": args.seed, "steps": int(steps), "wall": wall,
                      "cpu": cpu, "keep_best": bool(args.keep_best), "returns": returns}))
