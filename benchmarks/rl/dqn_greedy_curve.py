"""DQN's greedy policy during training, trainyard or SB3 (RL Zoo hyperparameters): a diagnostic, not a benchmark.

    PYTHONPATH=src:/tmp/peer-sb3-pkgs python benchmarks/rl/dqn_greedy_curve.py ty|sb3 Acrobot-v1 20000 SEED

Every tenth of the run the online Q-network acts greedily for 5 episodes (seeds 1,000,000 up) and the mean return
is printed, one line per run. It shows how far a single end-of-run evaluation is from the run's typical policy:
at the benchmark's budgets both libraries' greedy policies swing between failing (-500 on Acrobot) and solving.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from runner import EVAL_SEED_BASE


def greedy_return(env, qnet, episodes: int = 5) -> float:
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED_BASE + k)
        total, done = 0.0, False
        while not done:
            with torch.inference_mode():
                action = int(qnet(torch.as_tensor(obs, dtype=torch.float32)[None]).argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def trainyard_curve(env_id: str, steps: int, seed: int, every: int, probe) -> None:
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    due = [every]

    def progress(kind, info):
        if kind == "step" and info["step"] >= due[0]:
            due[0] += every
            probe(plan.agent.q)

    with tempfile.TemporaryDirectory() as tmp:
        plan = RLPlan(RLSettings(env=env_id, algo="dqn", timesteps=steps, seed=seed, checkpoint_every=10**12), Path(tmp))
        plan.fit(progress=progress)


def zoo_dqn(env_id: str, seed: int, fused: bool = False):
    """SB3's DQN with the RL Zoo's hyperparameters for `env_id`, one environment, seeded (not trained); `fused`:
    Adam's fused kernel, as trainyard's DQN uses (the same arithmetic, rounded differently)."""
    from run_sb3 import zoo_hyperparameters
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env

    hp = zoo_hyperparameters("dqn", env_id)
    hp.pop("n_timesteps")
    policy = hp.pop("policy")
    hp["policy_kwargs"] = eval(hp["policy_kwargs"], {"dict": dict})  # the Zoo's own format
    if fused:
        hp["policy_kwargs"]["optimizer_kwargs"] = {"fused": True}
    return DQN(policy, make_vec_env(env_id, n_envs=1, seed=seed), seed=seed, verbose=0, device="cpu", **hp)


def sb3_curve(env_id: str, steps: int, seed: int, every: int, probe) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    model = zoo_dqn(env_id, seed)

    class Probe(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every == 0:
                probe(self.model.q_net)
            return True

    model.learn(steps, callback=Probe())


def main() -> None:
    lib, env_id, steps, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)
    env, curve = gym.make(env_id), []
    (trainyard_curve if lib == "ty" else sb3_curve)(env_id, steps, seed, steps // 10, lambda q: curve.append(greedy_return(env, q)))
    print(lib, env_id, seed, " ".join(f"{c:.0f}" for c in curve), flush=True)


if __name__ == "__main__":
    main()
