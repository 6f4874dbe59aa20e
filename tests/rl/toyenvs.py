"""Small user environments for the RL tests, given to trainyard as `toyenvs:Class` (this folder is on sys.path)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Walk right to the end of a corridor: position in [0, 1], actions left/right, +1 at the end, -0.01 a step."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 8):
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = int(self.np_random.integers(0, self.length // 2))
        return self._obs(), {}

    def step(self, action):
        self.pos = max(0, self.pos + (1 if int(action) == 1 else -1))
        done = self.pos >= self.length
        return self._obs(), (1.0 if done else -0.01), done, False, {}

    def _obs(self):
        return np.array([min(self.pos, self.length) / self.length], dtype=np.float32)


class DictObservations(Corridor):
    def __init__(self):
        super().__init__()
        self.observation_space = gym.spaces.Dict({"pos": gym.spaces.Box(0.0, 1.0, (1,), np.float32)})


class Exploding(Corridor):
    def step(self, action):
        raise RuntimeError("the simulator crashed")


STEPS = {"n": 0}


class NanOnce(Corridor):
    """Returns a NaN reward once, at the 300th step this process takes: the run must roll back past it."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        STEPS["n"] += 1
        return obs, (float("nan") if STEPS["n"] == 300 else reward), terminated, truncated, info
