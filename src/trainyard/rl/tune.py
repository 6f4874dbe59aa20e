"""Time-budgeted hyperparameter search for a reinforcement-learning run (Optuna's TPE sampler, ask and tell).

Trial 0 is the defaults; each later trial samples overrides from `SPACES`, trains for `trial_timesteps` and is
scored by its mean return over `tune_episodes` validation episodes, reset with seeds from 2,000,000 up: neither
the training seeds nor the held-out evaluation seeds (1,000,000 up) that judge the final policy. Every trial is
handed to `record` as it finishes (the run driver writes it to the store's trials table, like the tabular search);
a trial that diverges is recorded as failed. The search stops after `max_trials`, or when the next trial would
not finish before `deadline`. The best overrides (the defaults' empty set when nothing beat them) are returned.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from trainyard.errors import TrainyardError
from trainyard.rl.config import RLSettings

# (kind, low/choices, high) per hyperparameter; after the RL Zoo's own search spaces, narrowed for short trials.
SPACES = {
    "ppo": {"lr": ("log", 1e-4, 3e-3), "n_steps": ("cat", [32, 64, 128, 256, 512]), "batch_size": ("cat", [32, 64, 128, 256]),
            "n_epochs": ("cat", [4, 10, 20]), "gamma": ("cat", [0.95, 0.98, 0.99, 0.995, 0.999]),
            "gae_lambda": ("cat", [0.8, 0.9, 0.95, 0.98]), "clip_range": ("cat", [0.1, 0.2, 0.3]), "ent_coef": ("log", 1e-8, 1e-2)},
    "dqn": {"lr": ("log", 1e-4, 3e-3), "batch_size": ("cat", [32, 64, 128]), "train_freq": ("cat", [1, 4, 16, 64]),
            "gradient_steps": ("cat", [1, 4, 16]), "gamma": ("cat", [0.95, 0.98, 0.99, 0.995]),
            "exploration_fraction": ("uniform", 0.05, 0.3), "exploration_final_eps": ("uniform", 0.01, 0.1),
            "target_update_interval": ("cat", [10, 100, 500, 1000])},
}


@dataclass
class TuneResult:
    best_params: dict
    best_score: float
    trials: int


def tune(settings: RLSettings, work_dir: Path, *, max_trials: int, deadline: float | None,
         record: Callable[[dict], None], emit: Callable[[str, dict], None]) -> TuneResult:
    import optuna

    from trainyard.rl.plan import RLPlan

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed))
    space = {k: v for k, v in SPACES[settings.algo].items() if k not in settings.hparams}  # the user's choices stay fixed
    best_params, best_score, spent = {}, float("-inf"), []
    for number in range(max_trials):
        if deadline is not None and spent and time.time() + max(spent) > deadline:
            break
        trial = study.ask() if number else None
        params = _suggest(trial, space) if trial else {}
        emit("stage", {"message": f"tuning: trial {number + 1} of {max_trials} {params or '(the defaults)'}"})
        started = time.perf_counter()
        trial_settings = replace(settings, hparams={**settings.hparams, **params}, timesteps=_trial_steps(settings),
                                 checkpoint_every=10**12, tune_trials=None, gif=False)
        status, score, message = "ok", None, ""
        try:
            plan = RLPlan(trial_settings, work_dir / f"trial-{number}")
            fit = plan.fit(deadline=deadline)
            score = plan.validation_return(settings.tune_episodes)
            plan.agent.close()
        except TrainyardError as exc:  # divergence, an invalid combination: a failed trial, not a failed run
            status, message = "failed", exc.problem
        finally:
            shutil.rmtree(work_dir / f"trial-{number}", ignore_errors=True)
        seconds = time.perf_counter() - started
        spent.append(seconds)
        if trial is not None:
            study.tell(trial, score, state=None if score is not None else optuna.trial.TrialState.FAIL)
        record({"number": number, "family": settings.algo, "params": params, "status": status, "val_score": score,
                "fit_seconds": seconds, "message": message, "extra": {"origin": "default" if number == 0 else "tpe",
                                                                      "steps": fit.steps if status == "ok" else None}})
        if score is not None and score > best_score:
            best_params, best_score = params, score
    return TuneResult(best_params, best_score, len(spent))


def _suggest(trial, space: dict) -> dict:
    out = {}
    for name, (kind, *args) in space.items():
        if kind == "log":
            out[name] = trial.suggest_float(name, args[0], args[1], log=True)
        elif kind == "uniform":
            out[name] = trial.suggest_float(name, args[0], args[1])
        else:
            out[name] = trial.suggest_categorical(name, args[0])
    return out


def _trial_steps(settings: RLSettings) -> int:
    return settings.trial_timesteps or max((settings.timesteps or 100_000) // 4, 1000)
