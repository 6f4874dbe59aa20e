"""What PPO and DQN share: the vector of environments, the generators, the normaliser, the episode statistics,
and the state that a checkpoint holds (tensors, JSON and arrays) and puts back.

An agent advances in `iterate()` steps (one PPO rollout and update, one DQN collection and its updates); the
plan checkpoints between them. Everything random comes from the torch generator (network initialisation,
action sampling) or from `self.rng` (minibatches, exploration, replay sampling); both are in the checkpoint.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from trainyard.rl import envs
from trainyard.rl.nets import flat_tensors, load_flat, load_optimizer, optimizer_tensors
from trainyard.rl.normalize import ObsNormalizer
from trainyard.rl.spaces import bounds, env_action


class Diverged(Exception):
    """A loss or value estimate that is not finite (or absurdly large): the plan rolls back."""


VALUE_LIMIT = 1e7  # value estimates beyond this are treated as divergence


class Agent:
    algo = ""

    def __init__(self, cfg, info: envs.EnvInfo, total_timesteps: int, seed: int):
        self.cfg, self.info, self.total, self.seed = cfg, info, total_timesteps, seed
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.obs_norm = ObsNormalizer((info.obs_dim,), cfg.normalize_obs)
        self.vec = envs.vector(info.spec, cfg.n_envs, info.max_episode_steps)
        self.steps = 0  # environment steps taken (all environments)
        self.iterations = 0
        self.lr_scale = 1.0  # lowered by each rollback
        self.returns: list[float] = []  # finished training episodes (the latest 100 kept)
        self.lengths: list[int] = []
        self.episodes = 0
        self._bounds = None  # continuous action bounds, as arrays
        obs, _ = self.vec.reset(seed=seed)
        self.obs = self._flat(obs)

    # ---- the algorithm's part -------------------------------------------------------------------------------
    def iterate(self) -> dict:
        raise NotImplementedError

    def modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def optimizer(self) -> torch.optim.Optimizer:
        raise NotImplementedError

    def extra_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {}, {}

    def load_extra(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        pass

    # ---- shared ---------------------------------------------------------------------------------------------
    def _flat(self, obs) -> np.ndarray:
        return np.array(obs, dtype=np.float32).reshape(self.cfg.n_envs, -1)  # a copy: the vector reuses its buffer

    def _lr(self, base: float) -> float:
        progress = min(self.steps / max(self.total, 1), 1.0)
        scale = 1.0 - progress if self.cfg.lr_schedule == "linear" else 1.0
        return base * scale * self.lr_scale

    def _set_lr(self) -> float:
        lr = self._lr(self.cfg.lr)
        for group in self.optimizer().param_groups:
            group["lr"] = lr
        return lr

    def _collect_episodes(self) -> None:
        for env in self.vec.envs:
            for ret, length in env.finished:
                self.returns.append(ret)
                self.lengths.append(length)
                self.episodes += 1
            env.finished.clear()
        del self.returns[:-100], self.lengths[:-100]

    def episode_stats(self) -> dict:
        if not self.returns:
            return {}
        return {"episode_return": float(np.mean(self.returns)), "episode_length": float(np.mean(self.lengths))}

    @staticmethod
    def _check(loss: torch.Tensor, values: torch.Tensor | None = None) -> None:
        if not math.isfinite(float(loss.detach())) or (values is not None and float(values.abs().max()) > VALUE_LIMIT):
            raise Diverged(f"loss {float(loss.detach()):.4g}" + (f", largest value estimate {float(values.abs().max()):.4g}" if values is not None else ""))

    def state(self) -> tuple[dict[str, torch.Tensor], dict, dict[str, np.ndarray]]:
        """(tensors, JSON, arrays): everything needed to continue exactly from here."""
        tensors = {"torch_rng": torch.get_rng_state()}
        for name, module in self.modules().items():
            tensors.update(flat_tensors(name, module))
        opt_tensors, opt_json = optimizer_tensors(self.optimizer())
        tensors.update(opt_tensors)
        starts, arrays = envs.vector_state(self.vec)
        extra, extra_arrays = self.extra_state()
        state = {"algo": self.algo, "steps": self.steps, "iterations": self.iterations, "lr_scale": self.lr_scale,
                 "rng": self.rng.bit_generator.state, "obs_norm": self.obs_norm.rms.state(), "optimizer": opt_json,
                 "env_starts": starts, "returns": self.returns, "lengths": self.lengths, "episodes": self.episodes, **extra}
        return tensors, state, {"obs": self.obs, **arrays, **extra_arrays}

    def load(self, tensors: dict[str, torch.Tensor], state: dict, arrays: dict[str, np.ndarray]) -> bool:
        """Put a checkpoint back; returns whether the replayed environments landed on the saved observations."""
        for name, module in self.modules().items():
            load_flat(name, module, tensors)
        load_optimizer(self.optimizer(), tensors, state["optimizer"])
        torch.set_rng_state(tensors["torch_rng"])
        self.rng.bit_generator.state = state["rng"]
        self.obs_norm.rms.load(state["obs_norm"])
        self.steps, self.iterations, self.lr_scale = state["steps"], state["iterations"], state["lr_scale"]
        self.returns, self.lengths, self.episodes = list(state["returns"]), list(state["lengths"]), state["episodes"]
        self.load_extra(state, arrays)
        replayed = self._flat(envs.restore_vector(self.vec, state["env_starts"], arrays))
        self.obs = arrays["obs"].astype(np.float32)
        return bool(np.array_equal(replayed, self.obs))

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Network actions -> the environment's: discrete offsets, continuous clip or tanh squash into the bounds."""
        if self.info.action_kind == "discrete":
            return actions + self.info.action_start if self.info.action_start else actions
        if self._bounds is None:
            self._bounds = (bounds(self.info.action_low, -np.inf), bounds(self.info.action_high, np.inf))
        return env_action(actions, *self._bounds, getattr(self.cfg, "squash", "clip"))

    def close(self) -> None:
        self.vec.close()

