"""Every setting of a reinforcement-learning run, declared once (frozen dataclasses with defaults and help).

`RLSettings` is what the CLI passes (environment, algorithm, budget, seed, overrides); `PPOConfig` and
`DQNConfig` are the algorithms' hyperparameters. The defaults per environment come from `trainyard.rl.defaults`;
`--hparam key=value` overrides any field by name.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields

from trainyard.errors import ConfigError, suggest
from trainyard.options import setting

ALGOS = ("ppo", "dqn")


@dataclass(frozen=True)
class PPOConfig:
    """Proximal policy optimisation with a clipped objective (Schulman et al. 2017)."""

    n_envs: int = 8  # environments stepped together (a Gymnasium SyncVectorEnv)
    n_steps: int = 2048  # steps per environment per rollout
    batch_size: int = 64  # minibatch size
    n_epochs: int = 10  # passes over each rollout
    lr: float = 3e-4
    lr_schedule: str = "constant"  # constant or linear (to 0 at the last timestep)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    clip_schedule: str = "constant"  # constant or linear
    clip_value: float | None = None  # value clipping around the old estimate (None: off)
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_advantage: bool = True
    normalize_obs: bool = False  # running mean/std of observations (frozen into the saved policy)
    normalize_reward: bool = False  # rewards scaled by the running std of the discounted return
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"  # tanh or relu
    log_std_init: float = 0.0  # continuous actions: initial log standard deviation (of gSDE's noise matrix with use_sde)
    use_sde: bool = False  # continuous actions: generalised state-dependent exploration (gSDE) instead of independent noise
    sde_sample_freq: int = -1  # gSDE: redraw the noise matrices every this many steps (-1: at each rollout's start)
    squash: str = "clip"  # continuous actions: clip the Gaussian sample to the bounds, or tanh-squash it into them


@dataclass(frozen=True)
class DQNConfig:
    """Deep Q-learning (Mnih et al. 2015) with a replay buffer, a target network and double-DQN targets."""

    n_envs: int = 1
    lr: float = 1e-4
    lr_schedule: str = "constant"
    buffer_size: int = 100_000
    learning_starts: int = 1000  # environment steps before the first update
    batch_size: int = 32
    gamma: float = 0.99
    train_freq: int = 4  # environment steps between updates
    gradient_steps: int = 1  # updates each time (-1: as many as the environment steps collected)
    target_update_interval: int = 10_000  # environment steps between target-network copies
    tau: float = 1.0  # 1: hard copy; below 1: Polyak averaging
    exploration_fraction: float = 0.1  # share of the timesteps over which epsilon falls
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    double: bool = True  # the online network picks the next action, the target network values it
    max_grad_norm: float = 10.0
    normalize_obs: bool = False
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"


ALGO_CONFIGS = {"ppo": PPOConfig, "dqn": DQNConfig}


@dataclass(frozen=True)
class RLSettings:
    """A run: which environment and algorithm, how long, and any hyperparameter overrides."""

    env: str = setting("CartPole-v1", "Gymnasium environment id (CartPole-v1) or module:Class.", flag="--env")
    algo: str = setting("ppo", "ppo (default) or dqn.", flag="--algo")
    timesteps: int | None = setting(None, "Environment steps: 100000, 100k, 1M (default: per environment).", flag="--timesteps", kind="str")
    time_limit: float | None = None  # seconds for the whole run; stops at a checkpoint when it runs out
    seed: int = 0
    seeds: int = setting(1, "Train this many seeds (--seed, --seed + 1, ...): the spread across them is reported, the best on "
                            "validation episodes registered.", flag="--seeds")
    name: str | None = None
    hparams: dict = setting(None, "Override a hyperparameter: KEY=VALUE (repeatable; e.g. lr=1e-3, hidden=128,128).", flag="--hparam",
                            kind="list", factory=dict)
    max_episode_steps: int | None = None  # a time limit on episodes (module:Class environments have none otherwise)
    eval_episodes: int = 100
    checkpoint_every: int | None = None  # environment steps between checkpoints (default: about 20 over the run)
    gif: bool = True  # record one episode as a GIF when the environment renders rgb arrays
    keep_best: bool = setting(True, "Score the greedy policy on validation episodes during training and register the best one seen "
                                    "(--last-policy registers the network at the last step).", flag="--keep-best/--last-policy")
    validate_every: int | None = None  # environment steps between those scorings (default: about 20 over the run)
    validate_episodes: int = 10  # validation episodes per scoring (seeds apart from training and the held-out evaluation)
    tune_trials: int | None = None  # search hyperparameters first (trainyard.rl.tune): this many trials at most
    trial_timesteps: int | None = None  # environment steps per trial (default: a quarter of --timesteps, or 25k)
    tune_episodes: int = 20  # validation episodes scoring each trial (seeds apart from training and evaluation)

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ConfigError(f"'{self.algo}' is not a reinforcement-learning algorithm.", suggest(self.algo, ALGOS))
        if self.timesteps is not None and self.timesteps <= 0:
            raise ConfigError(f"--timesteps must be positive, got {self.timesteps}.", "pass e.g. --timesteps 100k.")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"--time-limit must be positive, got {self.time_limit:g}.", "give seconds or a duration: 600, 30m, 1h.")
        if self.tune_trials is not None and self.tune_trials < 1:
            raise ConfigError(f"--max-trials must be at least 1, got {self.tune_trials}.", "pass --max-trials 10, or leave it out to train the defaults.")
        if self.seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, got {self.seeds}.", "pass --seeds 3 to train three seeds, or leave it out for one.")
        if (self.validate_every is not None and self.validate_every < 1) or self.validate_episodes < 1:
            raise ConfigError("validate_every and validate_episodes must be at least 1.", "leave them out for the defaults (about 20 scorings of 10 episodes).")
        if self.eval_episodes < 1:
            raise ConfigError("--episodes must be at least 1.", "pass --episodes 100.")
        known = {f.name for f in fields(ALGO_CONFIGS[self.algo])}
        for key in self.hparams:
            if key not in known:
                raise ConfigError(f"'{key}' is not a {self.algo.upper()} hyperparameter.", suggest(key, sorted(known)))

    @classmethod
    def from_dict(cls, values: dict) -> "RLSettings":
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"Unknown reinforcement-learning setting '{unknown[0]}'.", suggest(unknown[0], [f.name for f in fields(cls)]))
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def algo_config(algo: str, defaults: dict, overrides: dict):
    """The algorithm's config: its dataclass defaults, then the environment's defaults, then the user's overrides."""
    cls = ALGO_CONFIGS[algo]
    values = {**defaults, **overrides}
    types = {f.name: f.type for f in fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"'{key}' is not a {algo.upper()} hyperparameter.", suggest(key, sorted(types)))
        out[key] = tuple(int(v) for v in (value if isinstance(value, (tuple, list)) else (value,))) if key == "hidden" else value
    cfg = cls(**out)
    _check(cfg)
    return cfg


def _check(cfg) -> None:
    for name in ("lr_schedule", "clip_schedule"):
        if getattr(cfg, name, "constant") not in ("constant", "linear"):
            raise ConfigError(f"{name} must be constant or linear, got '{getattr(cfg, name)}'.", f"pass --hparam {name}=linear.")
    if cfg.activation not in ("tanh", "relu"):
        raise ConfigError(f"activation must be tanh or relu, got '{cfg.activation}'.", "pass --hparam activation=tanh.")
    if getattr(cfg, "squash", "clip") not in ("clip", "tanh"):
        raise ConfigError(f"squash must be clip or tanh, got '{cfg.squash}'.", "pass --hparam squash=tanh.")
    if cfg.n_envs < 1 or cfg.batch_size < 1 or not cfg.hidden:
        raise ConfigError("n_envs, batch_size and hidden must be positive.", "check the --hparam values.")


def parse_hparams(items: list[str] | None) -> dict:
    """['lr=1e-3', 'hidden=64,64', 'double=false'] -> {'lr': 0.001, 'hidden': (64, 64), 'double': False}."""
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"'{item}' is not KEY=VALUE.", "pass e.g. --hparam lr=1e-3 --hparam hidden=128,128.")
        out[key.strip().replace("-", "_")] = _value(text.strip())
    return out


def _value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if "," in text:
        return tuple(_value(t) for t in text.split(",") if t.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_steps(text: str | int | None) -> int | None:
    """'100k' -> 100000, '1.5M' -> 1500000, '1e5' -> 100000."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kKmM]?)\s*", str(text))
    if not match:
        raise ConfigError(f"'{text}' is not a number of timesteps.", "give a count: 100000, 100k, 1.5M or 1e5.")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(round(float(match.group(1)) * scale))
