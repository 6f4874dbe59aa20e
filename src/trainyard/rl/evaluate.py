"""Honest evaluation of a policy: mean episodic return over held-out environment seeds, with a 95% interval,
beside a uniformly random policy on the same seeds; a GIF of one episode when the environment renders.

Training seeds its environments with `seed .. seed + n_envs - 1` once, then they run on their own generators;
evaluation resets every episode with its own seed from `EVAL_SEED_BASE` up, a range training never uses;
choices made on returns (tuning, the best of several training seeds) use `VALIDATION_SEED_BASE` up instead.
Episodes run a few at a time so the policy's forward pass is batched.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

from trainyard.rl import envs

EVAL_SEED_BASE = 1_000_000
VALIDATION_SEED_BASE = 2_000_000  # what tuning trials and the choice among training seeds are scored on
BATCH = 20  # episodes run side by side


def summarize(returns: list[float], lengths: list[int] | None = None) -> dict:
    """Mean with a t-interval at 95% (and the spread), from episode returns."""
    from scipy import stats

    r = np.asarray(returns, dtype=np.float64)
    n = len(r)
    mean = float(r.mean())
    sd = float(r.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else float("nan")
    out = {"mean": mean, "std": sd, "ci_low": mean - half, "ci_high": mean + half, "episodes": n,
           "min": float(r.min()), "max": float(r.max())}
    if lengths is not None:
        out["mean_length"] = float(np.mean(lengths))
    return out


def run_episodes(act: Callable[[np.ndarray], np.ndarray], spec: str, episodes: int, *, max_episode_steps: int | None = None,
                 seed_base: int = EVAL_SEED_BASE) -> tuple[list[float], list[int]]:
    """Returns and lengths of `episodes` episodes, episode k reset with seed `seed_base + k`."""
    returns, lengths = [], []
    pool = [envs.make(spec, max_episode_steps) for _ in range(min(BATCH, episodes))]
    try:
        for first in range(0, episodes, len(pool)):
            batch = pool[:min(len(pool), episodes - first)]
            r, n = _batch(act, batch, [seed_base + first + j for j in range(len(batch))])
            returns += r
            lengths += n
    finally:
        for env in pool:
            env.close()
    return returns, lengths


def _batch(act, batch: list, seeds: list[int]) -> tuple[list[float], list[int]]:
    obs = [np.asarray(env.reset(seed=s)[0], dtype=np.float32).ravel() for env, s in zip(batch, seeds)]
    for env, s in zip(batch, seeds):
        env.action_space.seed(s)
    totals, steps, live = [0.0] * len(batch), [0] * len(batch), list(range(len(batch)))
    while live:
        actions = act(np.stack([obs[i] for i in live]))
        still = []
        for i, action in zip(live, actions):
            try:
                o, reward, terminated, truncated, _ = batch[i].step(action)
            except Exception as exc:
                raise envs.EnvError(f"The environment raised {type(exc).__name__} during evaluation: {exc}", "fix the environment.") from exc
            totals[i] += float(reward)
            steps[i] += 1
            obs[i] = np.asarray(o, dtype=np.float32).ravel()
            if not (terminated or truncated):
                still.append(i)
        live = still
    return totals, steps


def random_actions(spec: str, max_episode_steps: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A uniformly random policy (the action space's own sampler, seeded)."""
    space = envs.make(spec, max_episode_steps).action_space
    space.seed(EVAL_SEED_BASE)
    return lambda obs: [space.sample() for _ in range(len(obs))]


def evaluate(act, spec: str, episodes: int, *, max_episode_steps: int | None = None, baseline: bool = True) -> dict:
    """{"policy": summary, "random": summary, "seeds": [first, last]}."""
    returns, lengths = run_episodes(act, spec, episodes, max_episode_steps=max_episode_steps)
    out = {"policy": summarize(returns, lengths), "seeds": [EVAL_SEED_BASE, EVAL_SEED_BASE + episodes - 1], "returns": returns}
    if baseline:
        r, n = run_episodes(random_actions(spec, max_episode_steps), spec, episodes, max_episode_steps=max_episode_steps)
        out["random"] = summarize(r, n)
    return out


def record_gif(act, spec: str, path: Path, *, max_episode_steps: int | None = None, seed: int = EVAL_SEED_BASE,
               max_frames: int = 200, every: int = 2, width: int = 320) -> Path | None:
    """One episode as an animated GIF (every `every`-th frame, at most `max_frames`); None when it cannot render."""
    import os

    from PIL import Image

    for var in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER"):  # pygame renders off-screen: no display, no sound device
        os.environ.setdefault(var, "dummy")
    try:
        env = envs.make(spec, max_episode_steps, render_mode="rgb_array")
        obs, _ = env.reset(seed=seed)
        frames, step, done = [], 0, False
        while not done and len(frames) < max_frames:
            if step % every == 0:
                frame = env.render()
                if frame is None:
                    return None
                image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
                frames.append(image.resize((width, max(1, int(image.height * width / image.width)))))
            obs, _, terminated, truncated, _ = env.step(act(np.asarray(obs, dtype=np.float32).reshape(1, -1))[0])
            done, step = terminated or truncated, step + 1
        env.close()
    except Exception:  # rendering is a nicety: an environment that cannot render gets no GIF
        return None
    if not frames:
        return None
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40 * every, loop=0, optimize=True)
    return path
