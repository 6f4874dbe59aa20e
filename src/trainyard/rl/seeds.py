"""Several training seeds in one run (`--seeds N`): the spread across seeds, and the best one registered.

    seeds = SeedPlans(settings, run_dir / "checkpoints")   # one RLPlan per seed: seed, seed + 1, ..., seed + N - 1
    fit = seeds.fit(run_log, deadline, emit)                # each trained in turn, then scored on validation episodes
    seeds.best                                              # the RLPlan with the highest validation return
    spread = seeds.spread(episodes)                         # every seed on the held-out episodes: mean, sd, min, max

Each seed has its own checkpoints (`checkpoints/seed-S/`), so a killed run resumes every seed exactly where it
stopped (a finished seed only reloads). The choice among seeds uses validation episodes (seeds 2,000,000 up),
never the held-out evaluation episodes that judge the registered policy, so its reported return is not picked
with the same episodes that measure it. With a time limit, each seed left gets an equal share of what remains.
One seed (the default) is exactly a single RLPlan with the run's checkpoint folder, as before.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from trainyard.rl.config import RLSettings
from trainyard.rl.evaluate import run_episodes
from trainyard.rl.plan import FitResult, RLPlan


@dataclass
class SeedResult:
    seed: int
    steps: int
    validation_return: float
    mean_return: float | None = None  # on the held-out evaluation episodes (`spread`)


class SeedLog:
    """A run log for one seed of several: steps offset past the earlier seeds', so the run's curves run on."""

    def __init__(self, log, offset: int, seed: int):
        self.log, self.offset, self.seed = log, offset, seed

    def metrics(self, step: int, values: dict) -> None:
        self.log.metrics(self.offset + step, {**values, "seed": float(self.seed)})

    def event(self, kind: str, message: str, data: dict | None = None) -> None:
        self.log.event(kind, f"seed {self.seed}: {message}", {**(data or {}), "seed": self.seed})

    def flush(self) -> None:
        self.log.flush()


class SeedPlans:
    def __init__(self, settings: RLSettings, checkpoint_dir: Path):
        n = settings.seeds
        if n == 1:
            self.plans = [RLPlan(settings, checkpoint_dir)]
        else:
            self.plans = [RLPlan(replace(settings, seed=settings.seed + k, seeds=1), checkpoint_dir / f"seed-{settings.seed + k}")
                          for k in range(n)]
        self.best = self.plans[0]
        self.results: list[SeedResult] = []

    def fit(self, run_log=None, deadline: float | None = None, emit=None) -> FitResult:
        """Train every seed (one: as a single plan); several are then scored on validation episodes, the best kept."""
        emit = emit or (lambda kind, info: None)
        if len(self.plans) == 1:
            return self.best.fit(run_log, deadline, emit)
        fits, n = [], len(self.plans)
        for k, plan in enumerate(self.plans):
            seed, offset = plan.settings.seed, k * plan.timesteps
            share = None if deadline is None else time.time() + (deadline - time.time()) / (n - k)
            emit("stage", {"message": f"training seed {seed} ({k + 1} of {n})"})
            log = SeedLog(run_log, offset, seed) if run_log is not None else None
            fit = plan.fit(log, share, _offset_progress(emit, offset, plan.timesteps * n))
            score = plan.validation_return(plan.settings.tune_episodes)
            plan.agent.close()
            self.results.append(SeedResult(seed, fit.steps, score))
            fits.append(fit)
            if log is not None:
                log.event("seed", f"{fit.steps:,} steps, validation return {score:.4g}", {"steps": fit.steps, "validation_return": score})
        self.best = self.plans[max(range(n), key=lambda i: self.results[i].validation_return)]
        return _combined(fits)

    def spread(self, episodes: int, best_mean: float) -> dict:
        """Every seed's mean return on the held-out episodes (the best's is `best_mean`, from its full evaluation)."""
        for plan, result in zip(self.plans, self.results):
            if plan is self.best:
                result.mean_return = best_mean
            else:
                returns, _ = run_episodes(plan.policy().act, plan.info.spec, episodes, max_episode_steps=plan.settings.max_episode_steps)
                result.mean_return = float(sum(returns) / len(returns))
        means = [r.mean_return for r in self.results]
        return {"seeds": len(means), "best_seed": self.best.settings.seed, "mean": statistics.fmean(means),
                "sd": statistics.stdev(means) if len(means) > 1 else 0.0, "min": min(means), "max": max(means),
                "per_seed": [vars(r) for r in self.results]}


def _offset_progress(emit, offset: int, total: int):
    def progress(kind: str, info: dict) -> None:
        emit(kind, {**info, "step": offset + info["step"], "total": total} if kind == "step" else info)

    return progress


def _combined(fits: list[FitResult]) -> FitResult:
    """The seeds' fits as one: steps and seconds added up (the run's work), any time-out, all resumes exact."""
    resumed = [f.resumed_from for f in fits if f.resumed_from is not None]
    exact = [f.exact_resume for f in fits if f.exact_resume is not None]
    return FitResult(sum(f.steps for f in fits), sum(f.seconds for f in fits), sum(f.cpu_seconds for f in fits),
                     any(f.timed_out for f in fits), sum(f.rollbacks for f in fits), sum(resumed) if resumed else None,
                     all(exact) if exact else None)
