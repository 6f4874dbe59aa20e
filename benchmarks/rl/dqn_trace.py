"""DQN's training data, trainyard or SB3 (RL Zoo hyperparameters), side by side: a diagnostic, not a benchmark.

    PYTHONPATH=src:/tmp/peer-sb3-pkgs python benchmarks/rl/dqn_trace.py ty|sb3|sb3-fused Acrobot-v1 20000 SEED

    python benchmarks/rl/dqn_trace.py summarize results.jsonl     # the traces' lines gathered in one file: a table

(sb3-fused: SB3 with Adam's fused kernel, as trainyard's; the same algorithm, rounded differently.)

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


def sb3_trace(env_id: str, steps: int, seed: int, greedy, fused: bool = False) -> dict:
    from stable_baselines3.common.callbacks import BaseCallback

    model = zoo_dqn(env_id, seed, fused)
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


def summarize(path: str) -> None:
    """Per library over the traces in a JSONL file: how often the greedy policy was away from failing (above -200)
    at the last step and at the probes of the run's last quarter, and the mean training return (epsilon-greedy)."""
    import numpy as np

    traces = [json.loads(line) for line in open(path)]
    print("| library | seeds | greedy at the end above -200 | greedy probes in the last quarter above -200 | training return 5k-10k | 15k-20k |")
    print("|---|---|---|---|---|---|")
    for lib in dict.fromkeys(t["lib"] for t in traces):
        runs = [t for t in traces if t["lib"] == lib]
        late = [g for t in runs for i, g in enumerate(t["greedy"][:-1]) if (i + 1) * 4 >= 3 * len(t["greedy"])]
        end = sum(t["greedy"][-1] > -200 for t in runs)
        mean = lambda lo, hi: np.mean([np.mean([r for s, r in t["episodes"] if lo < s <= hi]) for t in runs])  # noqa: E731
        print(f"| {lib} | {len(runs)} | {end} of {len(runs)} | {sum(g > -200 for g in late)} of {len(late)} | {mean(5000, 10000):.1f} | "
              f"{mean(15000, 20000):.1f} |")


def main() -> None:
    import gymnasium as gym

    if sys.argv[1] == "summarize":
        return summarize(sys.argv[2])
    lib, env_id, steps, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)
    env = gym.make(env_id)
    greedy = lambda q: round(greedy_return(env, q))  # noqa: E731
    out = trainyard_trace(env_id, steps, seed, greedy) if lib == "ty" else sb3_trace(env_id, steps, seed, greedy, lib == "sb3-fused")
    print(json.dumps({"lib": lib, "env": env_id, "seed": seed, **out, "episodes": [(s, float(r)) for s, r in out["episodes"]]}))


if __name__ == "__main__":
    main()
