"""One trainyard run (PPO or DQN) with its defaults (after the RL Zoo's), then held-out evaluation; prints one JSON line.

    PYTHONPATH=src python benchmarks/rl/run_trainyard.py --algo ppo --env CartPole-v1 --timesteps 50000 --seed 0 --episodes 50

Times `RLPlan.fit` only (wall and CPU seconds of this process), environments and networks made before the clock
starts, as SB3's constructor makes them; checkpoints once at the end (SB3 writes none during learn()).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from runner import held_out_returns, one_run_args, print_result


def main() -> None:
    args = one_run_args(__doc__.split("\n")[0])

    import torch

    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        plan = RLPlan(RLSettings(env=args.env, algo=args.algo, timesteps=args.timesteps, seed=args.seed, checkpoint_every=10**12,
                                  keep_best=args.keep_best), Path(tmp))
        plan.prepare()
        fit = plan.fit()
        returns = held_out_returns(plan.policy().act, args.env, args.episodes)
    print_result("trainyard", args, fit.steps, fit.seconds, fit.cpu_seconds, returns)


if __name__ == "__main__":
    main()
