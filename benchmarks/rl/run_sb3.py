"""One Stable-Baselines3 run (PPO or DQN) with the RL Zoo's hyperparameters, then held-out evaluation; prints one JSON line.

Runs where stable-baselines3 and rl_zoo3 (for its hyperparams/*.yml only) are importable, apart from trainyard:

    PYTHONPATH=/tmp/peer-sb3-pkgs python benchmarks/rl/run_sb3.py --algo dqn --env CartPole-v1 --timesteps 50000 --seed 0

As the Zoo does: vectorised environments (DummyVecEnv), VecNormalize where it says `normalize` (its observation
statistics frozen for the evaluation), `lin_X` as linear schedules, its policy_kwargs.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import time

import numpy as np
from runner import VALIDATION_EPISODES, VALIDATION_SEED_BASE, held_out_returns, one_run_args, print_result, validation_every


def zoo_hyperparameters(algo: str, env_id: str) -> dict:
    import yaml

    package = importlib.util.find_spec("rl_zoo3").submodule_search_locations[0]  # not imported: it pulls in the Hub client
    with open(os.path.join(package, "hyperparams", f"{algo}.yml")) as fh:
        return dict(yaml.load(fh, Loader=yaml.UnsafeLoader)[env_id])  # the Zoo's own file uses !!float tags


def schedule(value):
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress_remaining: progress_remaining * start
    return float(value) if isinstance(value, str) else value


def main() -> None:
    args = one_run_args(__doc__.split("\n")[0])

    import torch
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    torch.set_num_threads(1)
    hp = zoo_hyperparameters(args.algo, args.env)
    n_envs, normalize = hp.pop("n_envs", 1), hp.pop("normalize", False)
    hp.pop("n_timesteps", None)
    policy = hp.pop("policy")
    if "policy_kwargs" in hp and isinstance(hp["policy_kwargs"], str):
        hp["policy_kwargs"] = eval(hp["policy_kwargs"], {"dict": dict, "nn": torch.nn})  # the Zoo's own format
    for key in ("learning_rate", "clip_range"):
        if key in hp:
            hp[key] = schedule(hp[key])
    env = make_vec_env(args.env, n_envs=n_envs, seed=args.seed, vec_env_cls=DummyVecEnv)
    if normalize:
        env = VecNormalize(env, gamma=hp.get("gamma", 0.99), **(normalize if isinstance(normalize, dict) else {}))
    model = (PPO if args.algo == "ppo" else DQN)(policy, env, seed=args.seed, verbose=0, device="cpu", **hp)
    stats = {"rms": env.obs_rms if normalize else None}

    def act(obs):
        if normalize:
            rms, clip = stats["rms"], env.clip_obs
            obs = np.clip((obs - rms.mean) / np.sqrt(rms.var + env.epsilon), -clip, clip).astype(np.float32)
        return model.predict(obs, deterministic=True)[0]

    keep = KeepBest(model, act, stats, args.env, validation_every(args.timesteps)) if args.keep_best else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=args.timesteps, callback=keep.callback() if keep else None)
    if keep:
        keep.finish()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    print_result("sb3", args, model.num_timesteps, wall, cpu, held_out_returns(act, args.env, args.episodes))


class KeepBest:
    """trainyard's --keep-best for SB3: the greedy policy scored on the validation episodes every `every` steps and at
    the end; the best one's weights (and observation statistics) put back into the model after learn()."""

    def __init__(self, model, act, stats: dict, env_id: str, every: int):
        self.model, self.act, self.stats, self.env_id, self.every = model, act, stats, env_id, every
        self.last, self.best = 0, None

    def score(self) -> None:
        if self.stats["rms"] is not None:
            self.stats["rms"] = copy.deepcopy(self.model.get_env().obs_rms)  # the statistics as they are now
        returns = held_out_returns(self.act, self.env_id, VALIDATION_EPISODES, seed_base=VALIDATION_SEED_BASE)
        value, self.last = float(np.mean(returns)), self.model.num_timesteps
        if self.best is None or value >= self.best[0]:
            self.best = (value, copy.deepcopy(self.model.policy.state_dict()), self.stats["rms"])

    def callback(self):
        from stable_baselines3.common.callbacks import BaseCallback

        keep = self

        class Scorer(BaseCallback):
            def _on_step(self) -> bool:
                if self.num_timesteps // keep.every > keep.last // keep.every:
                    keep.score()
                return True

        return Scorer()

    def finish(self) -> None:
        if self.last != self.model.num_timesteps:
            self.score()
        self.model.policy.load_state_dict(self.best[1])
        self.stats["rms"] = self.best[2]


if __name__ == "__main__":
    main()
