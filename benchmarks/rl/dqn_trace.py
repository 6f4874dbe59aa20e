"""DQN's training data, trainyard or SB3 (RL Zoo hyperparameters), side by side: a diagnostic, not a benchmark.

    PYTHONPATH=src:/tmp/peer-sb3-pkgs python benchmarks/rl/dqn_trace.py ty|sb3 Acrobot-v1 20000 SEED

Prints, for one run, epsilon at a few steps, the steps at which the target network was copied (the first few), the
number of updates made, and every training episode as "end step:return"; then the greedy return (5 episodes,
seeds 1,000,000 up) every twentieth of the run. Run it for both libraries on the same seed and compare the lines: where
the two runs' data part shows what differs.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch
from dqn_greedy_curve import greedy_return, zoo_dqn

PROBES = (0, 1000, 2400, 5000, 10000)


def trainyard_trace(env_id: str, steps: int, seed: int, greedy) -> dict:
    from trainyard.rl.config import RLSettings
    from trainyard.rl.dqn import DQN
    from trainyard.rl.plan import RLPlan

    out = {"eps": {}, "copies": [], "episodes": [], "greedy": []}
    copy = DQN._update_target

    def traced_copy(agent):
        if len(out["copies"]) < 5:
            out["copies"].append(agent.steps)
        copy(agent)

    DQN._update_target = traced_copy
    every, seen = steps // 20, [0]

    def progress(kind, info):
        agent = plan.agent
        new = agent.episodes - seen[0]
        seen[0] = agent.episodes
        out["episodes"] += [(agent.steps, r) for r in agent.returns[len(agent.returns) - new:]] if new else []
        for p in PROBES:
            if p not in out["eps"] and agent.steps >= p:
                out["eps"][p] = (agent.steps, round(agent.epsilon(), 4))
        if agent.steps % every == 0:
            out["greedy"].append(greedy(agent.q))

    with tempfile.TemporaryDirectory() as tmp:
        plan = RLPlan(RLSettings(env=env_id, algo="dqn", timesteps=steps, seed=seed, checkpoint_every=10**12), Path(tmp))
        plan.fit(progress=progress)
        out["updates"] = plan.agent.updates
    return out


def sb3_trace(env_id: str, steps: int, seed: int, greedy) -> dict:
    from stable_baselines3.common.callbacks import BaseCallback

    model = zoo_dqn(env_id, seed)
    out = {"eps": {}, "copies": [], "episodes": [], "greedy": []}
    every = steps // 20

    class Trace(BaseCallback):
        def _on_step(self) -> bool:
            t = self.num_timesteps
            for p in PROBES:  # the rate the action at step t (after t steps) was chosen with
                if p not in out["eps"] and t - 1 >= p:
                    out["eps"][p] = (t - 1, round(self.model.exploration_rate, 4))
            for info in self.locals["infos"]:
                if "episode" in info:
                    out["episodes"].append((t, info["episode"]["r"]))
            if t % every == 0:
                out["greedy"].append(greedy(self.model.q_net))
            return True

    model.learn(steps, callback=Trace())
    out["updates"] = model._n_updates
    return out


def main() -> None:
    import gymnasium as gym

    lib, env_id, steps, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)
    env = gym.make(env_id)
    out = (trainyard_trace if lib == "ty" else sb3_trace)(env_id, steps, seed, lambda q: round(greedy_return(env, q)))
    print(json.dumps({"lib": lib, "env": env_id, "seed": seed, **out, "episodes": [(s, float(r)) for s, r in out["episodes"]]}))


if __name__ == "__main__":
    main()
