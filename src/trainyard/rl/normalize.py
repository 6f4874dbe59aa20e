"""Running mean and variance (Chan et al.'s parallel update), for observation and reward normalisation."""

from __future__ import annotations

import numpy as np


class RunningMeanStd:
    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = epsilon

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64)
        b_mean, b_var, b_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def state(self) -> dict:
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": float(self.count)}

    def load(self, state: dict) -> None:
        self.mean = np.asarray(state["mean"], dtype=np.float64)
        self.var = np.asarray(state["var"], dtype=np.float64)
        self.count = float(state["count"])


class ObsNormalizer:
    """(obs - mean) / sqrt(var + eps), clipped; statistics updated from the training observations only."""

    def __init__(self, shape: tuple[int, ...], enabled: bool, clip: float = 10.0, epsilon: float = 1e-8):
        self.enabled, self.clip, self.epsilon = enabled, clip, epsilon
        self.rms = RunningMeanStd(shape)

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if not self.enabled:
            return obs
        if update:
            self.rms.update(obs)
        return normalize(obs, self.rms.mean, self.rms.var, self.clip, self.epsilon)


def normalize(obs, mean, var, clip: float, epsilon: float = 1e-8) -> np.ndarray:
    return np.clip((obs - mean) / np.sqrt(var + epsilon), -clip, clip).astype(np.float32)


class RewardScaler:
    """Rewards divided by the running standard deviation of the discounted return (as in VecNormalize)."""

    def __init__(self, n_envs: int, gamma: float, enabled: bool, clip: float = 10.0, epsilon: float = 1e-8):
        self.enabled, self.gamma, self.clip, self.epsilon = enabled, gamma, clip, epsilon
        self.rms = RunningMeanStd(())
        self.returns = np.zeros(n_envs, dtype=np.float64)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        rewards = np.asarray(rewards, dtype=np.float64)
        if not self.enabled:
            return rewards.astype(np.float32)
        self.returns = self.returns * self.gamma + rewards
        self.rms.update(self.returns)
        self.returns[dones] = 0.0
        return np.clip(rewards / np.sqrt(self.rms.var + self.epsilon), -self.clip, self.clip).astype(np.float32)

    def state(self) -> dict:
        return {**self.rms.state(), "returns": self.returns.tolist()}

    def load(self, state: dict) -> None:
        self.rms.load(state)
        self.returns = np.asarray(state["returns"], dtype=np.float64)
