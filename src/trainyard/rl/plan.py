"""`RLPlan`: one reinforcement-learning run as a plan the run driver can hold.

    plan = RLPlan(settings, run_dir / "checkpoints")   # checks the environment and the settings (exit 2 when wrong)
    result = plan.fit(run_log, deadline)               # trains from the latest checkpoint, if any, to the budget
    report = plan.evaluate()                           # held-out seeds, 95% interval, random baseline
    plan.save_artifact(directory, meta)                # the "rl-policy" artifact (safetensors + JSON)

`fit` checkpoints every `checkpoint_every` environment steps, at the end and when the deadline stops it;
because the checkpoint holds every piece of state (see `checkpoint` and `envs.Replayable`), a run killed at
any moment and resumed ends bit-identical to one never interrupted. A NaN loss or an exploding value estimate
rolls back to the last checkpoint with the learning rate halved (an event says so), at most `MAX_ROLLBACKS` times.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from trainyard.errors import ConfigError, TrainyardError
from trainyard.rl.agent import Diverged
from trainyard.rl.artifact import save_policy
from trainyard.rl.best import BestPolicy
from trainyard.rl.checkpoint import RLCheckpoints
from trainyard.rl.config import RLSettings, algo_config
from trainyard.rl.defaults import defaults_for
from trainyard.rl.dqn import DQN
from trainyard.rl.envs import EnvInfo
from trainyard.rl.evaluate import VALIDATION_SEED_BASE, evaluate, record_gif, run_episodes
from trainyard.rl.policy import policy_from_agent
from trainyard.rl.ppo import PPO

MAX_ROLLBACKS = 3
LR_BACKOFF = 0.5
DEFAULT_EPISODE_LIMIT = 1000  # for environments without a time limit of their own (evaluation must end)


class DivergenceError(TrainyardError):
    """Training kept diverging after every rollback."""


@dataclass
class FitResult:
    steps: int
    seconds: float
    cpu_seconds: float
    timed_out: bool
    rollbacks: int
    resumed_from: int | None  # the checkpoint's step when this fit continued a run
    exact_resume: bool | None  # whether the replayed environments matched the checkpoint's observations


@dataclass(frozen=True)
class Resolved:
    """A run's settings checked against its environment: the spaces, the defaults that apply, the algorithm's config."""

    settings: RLSettings
    info: EnvInfo
    config: object  # PPOConfig or DQNConfig
    defaults_source: str
    timesteps: int


def resolve(settings: RLSettings) -> Resolved:
    """Probe the environment and build the algorithm's config: a `ConfigError` (exit 2) for anything that cannot run,
    raised before a run is created when the run's plan calls this first."""
    info = EnvInfo.probe(settings.env, settings.algo, settings.max_episode_steps)
    if info.max_episode_steps is None:
        settings = replace(settings, max_episode_steps=DEFAULT_EPISODE_LIMIT)
        info = EnvInfo.probe(settings.env, settings.algo, settings.max_episode_steps)
    continuous = info.action_kind == "box"
    defaults, source = defaults_for(settings.env, info.entry_point, settings.algo, continuous)
    default_steps = defaults.pop("timesteps")
    config = algo_config(settings.algo, defaults, settings.hparams)
    if getattr(config, "squash", "clip") == "tanh" and None in (info.action_low or []) + (info.action_high or []):
        raise ConfigError(f"squash=tanh needs bounded actions, and {settings.env}'s are unbounded.", "use --hparam squash=clip.")
    if getattr(config, "use_sde", False) and not continuous:
        raise ConfigError(f"use_sde (state-dependent exploration) needs continuous actions, and {settings.env}'s are discrete.",
                          "leave out --hparam use_sde=true.")
    return Resolved(settings, info, config, source, settings.timesteps or default_steps)


class RLPlan:
    def __init__(self, settings: RLSettings, checkpoint_dir: Path):
        r = resolve(settings)
        self.settings, self.info, self.config, self.defaults_source, self.timesteps = r.settings, r.info, r.config, r.defaults_source, r.timesteps
        self.checkpoints = RLCheckpoints(checkpoint_dir)
        self.checkpoint_every = settings.checkpoint_every or max(self.timesteps // 20, 1)
        every = settings.validate_every or max(self.timesteps // 20, 1)
        self.best = BestPolicy(every, settings.validate_episodes) if settings.keep_best else None
        self.agent = None
        self.rollbacks = 0

    @property
    def hyperparameters(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.config).items()}

    def prepare(self):
        """Make the agent (its environments, networks, optimizer) if not made yet; `fit` calls it."""
        if self.agent is None:
            self.agent = (PPO if self.settings.algo == "ppo" else DQN)(self.config, self.info, self.timesteps, self.settings.seed)
        return self.agent

    def fit(self, run_log=None, deadline: float | None = None, progress: Callable[[str, dict], None] | None = None) -> FitResult:
        """Train to `timesteps` (or until `deadline`, a time.time() stamp), continuing from the latest checkpoint."""
        import torch

        torch.set_num_threads(1)
        emit = progress or (lambda kind, info: None)
        started, cpu0 = time.perf_counter(), time.process_time()
        agent = self.prepare()
        resumed, exact = self._restore(run_log)
        next_ckpt = (agent.steps // self.checkpoint_every + 1) * self.checkpoint_every
        timed_out, iter_seconds = False, 0.0
        while agent.steps < self.timesteps:
            if deadline is not None and time.time() + iter_seconds > deadline:
                timed_out = True
                break
            t0 = time.perf_counter()
            try:
                metrics = agent.iterate()
            except Diverged as exc:
                self._rollback(str(exc), run_log, emit)
                continue
            iter_seconds = max(iter_seconds * 0.8, time.perf_counter() - t0)
            if self.best is not None and self.best.due(agent.steps):
                metrics["validation_return"] = self._score_current()
            metrics["steps_per_second"] = (agent.steps - (resumed or 0)) / max(time.perf_counter() - started, 1e-9)
            metrics = {k: float(v) for k, v in metrics.items()}
            if run_log is not None:
                run_log.metrics(agent.steps, metrics)
            emit("step", {"step": agent.steps, "total": self.timesteps, "metrics": metrics, "episodes": agent.episodes})
            if agent.steps >= next_ckpt:
                self.save_checkpoint()
                next_ckpt = (agent.steps // self.checkpoint_every + 1) * self.checkpoint_every
        if self.best is not None and not self.best.scored(agent.steps):
            self._score_current()
        self.save_checkpoint()
        if run_log is not None:
            if self.best is not None:
                self._log_choice(run_log)
            if timed_out:
                run_log.event("time-limit", f"stopped by the time limit at step {agent.steps:,} of {self.timesteps:,}", {"step": agent.steps})
            run_log.flush()
        return FitResult(agent.steps, time.perf_counter() - started, time.process_time() - cpu0, timed_out, self.rollbacks, resumed, exact)

    def save_checkpoint(self) -> Path:
        tensors, state, arrays = self.agent.state()
        if self.best is not None:
            best_tensors, state["best"] = self.best.state()
            tensors = {**tensors, **best_tensors}
        return self.checkpoints.save(self.agent.steps, tensors, {**state, "rollbacks": self.rollbacks}, arrays)

    def _load(self, path: Path) -> tuple[dict, bool]:
        tensors, state, arrays = RLCheckpoints.load(path)
        exact = self.agent.load(tensors, state, arrays)
        if self.best is not None:
            self.best.load(tensors, state.get("best"))
        return state, exact

    def _score_current(self) -> float:
        """The current greedy policy's validation return; kept by `best` when it is the best so far. Making the policy's
        network draws from torch's generator (its initial weights, then overwritten): the generator's state is put back,
        so training goes on exactly as it would without the scoring (`--last-policy` trains the same networks)."""
        import torch

        with torch.random.fork_rng(devices=[]):
            current = policy_from_agent(self.agent, self.info, self.hyperparameters)
        returns = self._validation_returns(current, self.best.episodes)
        score = float(np.mean(returns))
        self.best.offer(self.agent.steps, score, current.tensors, float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0)
        return score

    def _validation_returns(self, policy, episodes: int) -> list[float]:
        returns, _ = run_episodes(policy.act, self.info.spec, episodes, max_episode_steps=self.settings.max_episode_steps,
                                  seed_base=VALIDATION_SEED_BASE)
        return returns

    def kept_best(self) -> dict | None:
        """What the choice of the registered policy was (`BestPolicy.report`), or None with --last-policy."""
        return self.best.report(self.agent.steps) if self.best is not None else None

    def _log_choice(self, run_log) -> None:
        report = self.kept_best()
        run_log.event("kept-best", report["summary"], report)

    def _restore(self, run_log) -> tuple[int | None, bool | None]:
        latest = self.checkpoints.latest()
        if latest is None:
            self.save_checkpoint()  # step 0: a rollback always has somewhere to go back to
            return None, None
        state, exact = self._load(latest)
        self.rollbacks = state.get("rollbacks", 0)
        if run_log is not None:
            note = "" if exact else " (the environment did not replay to the same observations: it is not deterministic, so the rest will differ from an uninterrupted run)"
            run_log.event("resumed", f"resumed from the checkpoint at step {self.agent.steps:,}{note}", {"step": self.agent.steps, "exact": exact})
        return self.agent.steps, exact

    def _rollback(self, reason: str, run_log, emit) -> None:
        agent = self.agent
        failed_at = agent.steps
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            if run_log is not None:
                run_log.event("diverged", f"training diverged {self.rollbacks} times ({reason}); stopping", {"step": failed_at})
            raise DivergenceError(f"Training diverged {self.rollbacks} times ({reason} at step {failed_at:,}), even after lowering "
                                  f"the learning rate to {agent.lr_scale:g}x.", "lower --hparam lr, or turn on normalize_obs / normalize_reward.")
        state, _ = self._load(self.checkpoints.latest())
        agent.lr_scale = state["lr_scale"] * LR_BACKOFF
        self.save_checkpoint()  # so a resume after this point knows about the lower learning rate
        message = (f"{reason} at step {failed_at:,}: rolled back to the checkpoint at step {agent.steps:,} and lowered the "
                   f"learning rate to {agent.lr_scale:g}x")
        if run_log is not None:
            run_log.event("rollback", message, {"step": failed_at, "to_step": agent.steps, "lr_scale": agent.lr_scale})
        emit("rollback", {"message": message})

    # ---- after training --------------------------------------------------------------------------------------
    def policy(self, meta: dict | None = None):
        """The trained policy as saved (`RLPolicy`): with `keep_best`, the best one seen on validation episodes when it beat
        the last network by more than the noise (`BestPolicy.prefer_last`), else the last network."""
        kept = self.best.tensors if self.best is not None and not self.best.prefer_last() else None
        return policy_from_agent(self.agent, self.info, self.hyperparameters, meta, tensors=kept)

    def evaluate(self, episodes: int | None = None, gif_path: Path | None = None) -> dict:
        policy = self.policy()
        report = evaluate(policy.act, self.info.spec, episodes or self.settings.eval_episodes, max_episode_steps=self.settings.max_episode_steps)
        if gif_path is not None and self.settings.gif and self.info.renders:
            report["gif"] = record_gif(policy.act, self.info.spec, gif_path, max_episode_steps=self.settings.max_episode_steps)
        return report

    def validation_return(self, episodes: int) -> float:
        """Mean return over `episodes` validation episodes (seeds from VALIDATION_SEED_BASE up, apart from training's
        and the held-out evaluation's): what tuning trials and the choice among training seeds compare."""
        return float(np.mean(self._validation_returns(self.policy(), episodes)))

    def save_artifact(self, directory: Path, meta: dict, extra_files: dict[str, Path] | None = None) -> str:
        return save_policy(self.policy(), directory, meta, extra_files)
