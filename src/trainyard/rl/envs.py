"""Environments: a registered Gymnasium id or a user's `module:Class`, checked once, stepped as a vector, replayable.

`EnvInfo.probe(spec, algo)` makes the environment, checks its spaces against what the algorithm supports, and
takes one step, so a wrong id, an unsupported space or an environment that raises stops the run before
training, with the reason (a `ConfigError`: exit code 2).

`Replayable` is the wrapper that makes exact resume possible without pickling an environment: it records how
the current episode began (its seed, or its generator's state just before the reset) and every action since.
Putting an environment back is then a reset from that state and a replay of those actions; a Gymnasium
environment is deterministic given its generator (its API requires that), so the replay lands on the very
state the killed process had.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np

from trainyard.errors import ConfigError, suggest


class EnvError(ConfigError):
    """The environment raised while training or evaluating."""


@dataclass(frozen=True)
class EnvInfo:
    spec: str  # what the user gave
    entry_point: str
    obs_shape: tuple[int, ...]
    obs_low: list  # flattened bounds (float32 values as Python floats)
    obs_high: list
    action_kind: str  # "discrete" or "box"
    n_actions: int | None  # discrete
    action_start: int  # discrete: the first action's value
    action_shape: tuple[int, ...]  # box
    action_low: list | None
    action_high: list | None
    max_episode_steps: int | None
    renders: bool  # "rgb_array" among the render modes

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))

    @property
    def action_dim(self) -> int:
        return self.n_actions if self.action_kind == "discrete" else int(np.prod(self.action_shape))

    def to_dict(self) -> dict:
        return {"obs_shape": list(self.obs_shape), "obs_low": self.obs_low, "obs_high": self.obs_high, "action_kind": self.action_kind,
                "n_actions": self.n_actions, "action_start": self.action_start, "action_shape": list(self.action_shape),
                "action_low": self.action_low, "action_high": self.action_high}

    @classmethod
    def probe(cls, spec: str, algo: str, max_episode_steps: int | None = None) -> "EnvInfo":
        env = make(spec, max_episode_steps)
        try:
            obs_space, act_space = env.observation_space, env.action_space
            if not isinstance(obs_space, gym.spaces.Box):
                raise ConfigError(f"{spec}'s observations are {type(obs_space).__name__}; only Box observations are supported.",
                                  "wrap the environment so it returns arrays (e.g. gymnasium.wrappers.FlattenObservation).")
            if isinstance(act_space, gym.spaces.Discrete):
                kind, n, start, shape, low, high = "discrete", int(act_space.n), int(act_space.start), (), None, None
            elif isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
                kind, n, start, shape = "box", None, 0, tuple(act_space.shape)
                low, high = _floats(act_space.low), _floats(act_space.high)
            else:
                raise ConfigError(f"{spec}'s actions are {act_space}; PPO supports Discrete and 1-D Box actions, DQN Discrete ones.",
                                  "wrap the environment to expose a Discrete or a 1-D Box action space.")
            if algo == "dqn" and kind != "discrete":
                raise ConfigError(f"DQN needs discrete actions, and {spec}'s are continuous ({act_space}).", "use --algo ppo.")
            _first_step(env, spec)
            limit = max_episode_steps or getattr(getattr(env, "spec", None), "max_episode_steps", None)
            renders = "rgb_array" in (env.metadata or {}).get("render_modes", [])
            return cls(spec, _entry_point(spec, env), tuple(obs_space.shape), _floats(obs_space.low), _floats(obs_space.high),
                       kind, n, start, shape, low, high, limit, renders)
        finally:
            _close(env)


def _floats(values) -> list:
    """Bounds as JSON: floats, None where unbounded (JSON has no infinity)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).ravel()]


def _first_step(env, spec: str) -> None:
    try:
        env.reset(seed=0)
        env.action_space.seed(0)
        env.step(env.action_space.sample())
    except Exception as exc:  # a user's environment may raise anything: report it as the reason
        raise ConfigError(f"The environment {spec} raised {type(exc).__name__} on its first reset and step: {exc}",
                          "fix the environment (it must follow the Gymnasium API: reset(seed=...) and step(action)).") from exc


def _entry_point(spec: str, env) -> str:
    entry = getattr(getattr(env, "spec", None), "entry_point", None)
    return entry if isinstance(entry, str) else spec


def make(spec: str, max_episode_steps: int | None = None, render_mode: str | None = None):
    """A Gymnasium environment from a registered id or `module:Class`, with a time limit when given."""
    env_class = _user_class(spec)
    try:
        if env_class is None:
            return gym.make(spec, max_episode_steps=max_episode_steps, render_mode=render_mode, disable_env_checker=True)
        env = env_class(render_mode=render_mode) if render_mode else env_class()
        if not isinstance(env, gym.Env):
            raise ConfigError(f"{spec} is not a gymnasium.Env (it made a {type(env).__name__}).", "subclass gymnasium.Env.")
        return gym.wrappers.TimeLimit(env, max_episode_steps) if max_episode_steps else env
    except gym.error.DependencyNotInstalled as exc:
        raise ConfigError(f"{spec} needs a library that is not installed: {exc}", "install it (e.g. pip install 'gymnasium[box2d]').") from exc
    except gym.error.Error as exc:
        names = [k for k in gym.registry if "/" not in k]
        raise ConfigError(f"'{spec}' is not a Gymnasium environment ({exc}).", suggest(spec, names)) from exc
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"The environment {spec} raised {type(exc).__name__} when made: {exc}", "fix the environment's constructor.") from exc


def _user_class(spec: str):
    """The class named by `module:Class`, or None for a registered id (Gymnasium's own `module:EnvId` included)."""
    if ":" not in spec:
        return None
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"Cannot import module '{module_name}' for environment {spec}: {type(exc).__name__}: {exc}",
                          "check the module is importable (installed, or on PYTHONPATH).") from exc
    obj = getattr(module, attr, None)
    if obj is None:
        if attr in gym.registry:  # importing the module registered it: a Gymnasium "module:EnvId"
            return None
        raise ConfigError(f"Module '{module_name}' has no '{attr}'.", suggest(attr, [n for n in dir(module) if not n.startswith("_")]))
    if not callable(obj):
        raise ConfigError(f"{spec} is not a class or factory.", "give module:Class where Class is a gymnasium.Env subclass.")
    return obj


def _close(env) -> None:
    try:
        env.close()
    except Exception:
        pass


def vector(spec: str, n: int, max_episode_steps: int | None = None):
    """n environments in a Gymnasium SyncVectorEnv that resets a finished one in the same step (the final
    observation in info["final_obs"]); each wrapped in `Replayable`."""
    fns = [_replayable_factory(spec, max_episode_steps) for _ in range(n)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, copy=False)


def _replayable_factory(spec: str, max_episode_steps: int | None) -> Callable:
    return lambda: Replayable(make(spec, max_episode_steps))


class Replayable(gym.Wrapper):
    """Records the current episode's start and actions (see the module docstring) and finished episodes' returns."""

    def __init__(self, env):
        super().__init__(env)
        self.start: dict = {}
        self.actions: list = []
        self.episode_return = 0.0
        self.episode_length = 0
        self.finished: list[tuple[float, int]] = []

    def reset(self, *, seed=None, options=None):
        self.start = {"seed": int(seed)} if seed is not None else {"rng": self.env.unwrapped.np_random.bit_generator.state}
        self.actions, self.episode_return, self.episode_length = [], 0.0, 0
        try:
            return self.env.reset(seed=seed, options=options)
        except Exception as exc:
            raise EnvError(f"The environment raised {type(exc).__name__} on reset: {exc}", "fix the environment.") from exc

    def step(self, action):
        self.actions.append(np.array(action, copy=True))
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        except Exception as exc:
            raise EnvError(f"The environment raised {type(exc).__name__} on step: {exc}", "fix the environment.") from exc
        self.episode_return += float(reward)
        self.episode_length += 1
        if terminated or truncated:
            self.finished.append((self.episode_return, self.episode_length))
        return obs, reward, terminated, truncated, info

    def replay(self, start: dict, actions: np.ndarray):
        """Put the environment where a recorded episode was: reset as it began, then take its actions again."""
        if "seed" in start:
            obs, _ = self.reset(seed=start["seed"])
        else:
            state = start["rng"]
            generator = np.random.Generator(getattr(np.random, state["bit_generator"])())
            generator.bit_generator.state = state
            self.env.unwrapped.np_random = generator
            obs, _ = self.reset()
        for action in actions:
            obs, *_ = self.step(action)
        self.finished.clear()
        return obs


def vector_state(vec) -> tuple[list[dict], dict[str, np.ndarray]]:
    """JSON-able episode starts and the actions since (one array per environment) of a `vector(...)`."""
    starts = [env.start for env in vec.envs]
    arrays = {f"env{i}_actions": (np.stack(env.actions) if env.actions else np.zeros((0, *vec.single_action_space.shape),
                                                                                       dtype=vec.single_action_space.dtype))
              for i, env in enumerate(vec.envs)}
    return starts, arrays


def restore_vector(vec, starts: list[dict], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Replay each environment of `vec` to its recorded state; returns the batched current observations."""
    return np.stack([env.replay(start, arrays[f"env{i}_actions"]) for i, (env, start) in enumerate(zip(vec.envs, starts))])
