"""One Stable-Baselines3 PPO run with the RL Zoo's hyperparameters, then held-out evaluation; prints one JSON line.

Runs in the peer's own venv (/tmp/peer-sb3: stable-baselines3, rl_zoo3 for its hyperparams/ppo.yml only):

    /tmp/peer-sb3/bin/python benchmarks/rl/run_sb3.py --env CartPole-v1 --timesteps 50000 --seed 0 --episodes 50

Evaluation follows trainyard's protocol: episode k reset with seed 1_000_000 + k, deterministic actions, the
VecNormalize observation statistics frozen (as the Zoo's own evaluation does).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def zoo_hyperparameters(env_id: str) -> dict:
    import importlib.util

    import yaml

    package = importlib.util.find_spec("rl_zoo3").submodule_search_locations[0]  # not imported: it pulls in the Hub client
    path = os.path.join(package, "hyperparams", "ppo.yml")
    with open(path) as fh:
        return dict(yaml.load(fh, Loader=yaml.UnsafeLoader)[env_id])  # the Zoo's own file uses !!float tags


def schedule(value):
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress_remaining: progress_remaining * start
    return float(value) if isinstance(value, str) else value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", required=True)
    ap.add_argument("--timesteps", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=50)
    args = ap.parse_args()

    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    torch.set_num_threads(1)
    hp = zoo_hyperparameters(args.env)
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
    model = PPO(policy, env, seed=args.seed, verbose=0, device="cpu", **hp)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=args.timesteps)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    def act(obs):
        if normalize:
            rms, clip = env.obs_rms, env.clip_obs
            obs = np.clip((obs - rms.mean) / np.sqrt(rms.var + env.epsilon), -clip, clip).astype(np.float32)
        return model.predict(obs, deterministic=True)[0]

    returns = []
    single = gym.make(args.env)
    for k in range(args.episodes):
        obs, _ = single.reset(seed=1_000_000 + k)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = single.step(act(obs[None])[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    print(json.dumps({"lib": "sb3", "env": args.env, "seed": args.seed, "steps": int(model.num_timesteps), "wall": wall, "cpu": cpu,
                      "returns": returns}))


if __name__ == "__main__":
    main()
