"""One trainyard PPO run with its defaults (after the RL Zoo's), then held-out evaluation; prints one JSON line.

    PYTHONPATH=src python benchmarks/rl/run_trainyard.py --env CartPole-v1 --timesteps 50000 --seed 0 --episodes 50

Times `RLPlan.fit` only (wall and CPU seconds of this process); evaluation: episode k reset with seed
1_000_000 + k, deterministic actions (trainyard.rl.evaluate).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", required=True)
    ap.add_argument("--timesteps", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--algo", default="ppo")
    args = ap.parse_args()

    import torch

    from trainyard.rl.config import RLSettings
    from trainyard.rl.evaluate import run_episodes
    from trainyard.rl.plan import RLPlan

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        # checkpoints: once at the end only, as SB3 writes none during learn()
        plan = RLPlan(RLSettings(env=args.env, algo=args.algo, timesteps=args.timesteps, seed=args.seed,
                                 checkpoint_every=10**12), Path(tmp))
        plan.prepare()  # environments and networks made before the clock starts, as SB3's PPO(...) does
        fit = plan.fit()
        returns, _ = run_episodes(plan.policy().act, args.env, args.episodes)
    print(json.dumps({"lib": "trainyard", "env": args.env, "seed": args.seed, "steps": fit.steps, "wall": fit.seconds,
                      "cpu": fit.cpu_seconds, "returns": returns}))


if __name__ == "__main__":
    main()
