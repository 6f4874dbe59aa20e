"""The run driver for reinforcement learning: a run in the store, the plan's fit, one evaluation, a registered policy.

    result = train_policy(RLSettings(env="CartPole-v1", algo="ppo", timesteps=100_000), name="pole")
    result = resume_policy(run_id)        # after a kill: continues from the last checkpoint, ends bit-identical

This is the only module of `trainyard.rl` that knows the store and the workspace (the way `lm/train.py` does
today); the shared run driver can replace it by calling the plan's `fit`, `evaluate` and `save_artifact`.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainyard.errors import ConfigError, NotFoundError
from trainyard.rl.config import RLSettings
from trainyard.rl.plan import RLPlan

KIND = "rl"
METRIC = "mean_return"


@dataclass
class RLResult:
    run_id: str
    name: str
    version: int
    metrics: dict
    evaluation: dict
    steps: int
    seconds: float
    cpu_seconds: float
    timed_out: bool
    resumed_from: int | None
    gif: str | None


def train_policy(settings: RLSettings, *, workspace: str | os.PathLike | None = None, progress: Callable[[str, dict], None] | None = None,
                 run_id: str | None = None, clock_started: float | None = None) -> RLResult:
    """Train, evaluate on held-out seeds and register (see the module docstring). A time limit counts from
    `clock_started` (a time.time() stamp; the CLI passes its process's start) or from this call."""
    from trainyard.workspace import Workspace

    started = clock_started or time.time()
    emit = progress or (lambda kind, info: None)
    ws = Workspace.resolve(workspace)
    ws.ensure()
    store = ws.store
    name = settings.name or _default_name(settings.env)
    if run_id is None:
        run_id = store.create_run(name, kind=KIND, task="rl", metric=METRIC, data_source=settings.env,
                                  config={"rl": {**settings.to_dict(), "name": name}})
    with store.running(run_id):
        if settings.tune_trials:
            settings = _tune(settings, ws, run_id, name, started, emit)
        plan = RLPlan(settings, ws.run_dir(run_id) / "checkpoints")
        run = store.get_run(run_id)
        store.update_run(run_id, config={**(run.get("config") or {}), "hyperparameters": plan.hyperparameters,
                                         "timesteps": plan.timesteps, "defaults": plan.defaults_source})
        emit("run", {"run_id": run_id, "name": name, "env": settings.env, "algo": settings.algo, "timesteps": plan.timesteps,
                     "defaults": plan.defaults_source})
        return _run(plan, ws, run_id, name, started, emit)


def resume_policy(run_id: str, *, workspace: str | os.PathLike | None = None, progress=None, clock_started: float | None = None) -> RLResult:
    """Continue a killed or interrupted run from its last checkpoint (same settings, same seed)."""
    from trainyard.workspace import Workspace

    ws = Workspace.resolve(workspace)
    run = ws.store.get_run(run_id)
    config = (run.get("config") or {}).get("rl")
    if run["kind"] != KIND or config is None:
        raise NotFoundError(f"Run {run_id} is not a reinforcement-learning run.", "see `trainyard runs`.")
    if run["status"] == "finished":
        raise ConfigError(f"Run {run_id} already finished (model version {run['model_version']}).", "start a new run instead.")
    ws.store.update_run(run["id"], status="running", error=None, pid=os.getpid())
    return train_policy(RLSettings.from_dict(config), workspace=ws.home, progress=progress, run_id=run["id"], clock_started=clock_started)


TUNE_SHARE = 0.5  # of a time limit, for the search; the final training gets the rest


def _tune(settings: RLSettings, ws, run_id: str, name: str, started: float, emit) -> RLSettings:
    """Search hyperparameters (trainyard.rl.tune), each trial recorded in the store; the run's stored settings become
    the tuned ones, so a resume trains the final policy without searching again."""
    from dataclasses import replace

    from trainyard.rl.tune import tune

    store = ws.store
    offset = len(store.trials(run_id))  # a resumed run that was killed while searching searches again, numbered on

    def record(trial: dict) -> None:
        store.add_trial(run_id, offset + trial.pop("number"), trial.pop("family"), **trial)

    deadline = started + settings.time_limit * TUNE_SHARE if settings.time_limit else None
    result = tune(settings, ws.run_dir(run_id) / "trials", max_trials=settings.tune_trials, deadline=deadline, record=record, emit=emit)
    tuned = replace(settings, hparams={**settings.hparams, **result.best_params}, tune_trials=None)
    run = store.get_run(run_id)
    store.update_run(run_id, config={**(run.get("config") or {}), "rl": {**tuned.to_dict(), "name": name},
                                     "tuning": {"trials": result.trials, "best_params": result.best_params, "best_val_return": result.best_score}})
    store.add_event(run_id, "tuned", f"{result.trials} trials; best validation return {result.best_score:.4g} with "
                    f"{result.best_params or 'the defaults'}", {"best_params": result.best_params})
    return tuned


def _run(plan: RLPlan, ws, run_id: str, name: str, started: float, emit) -> RLResult:
    from trainyard.training.tracking import RunLog

    s = plan.settings
    log = RunLog(ws.store, run_id)
    deadline = started + s.time_limit - _evaluation_reserve(plan) if s.time_limit else None
    fit = plan.fit(log, deadline, emit)
    emit("stage", {"message": f"evaluating on {s.eval_episodes} held-out episodes (and a random policy on the same seeds)"})
    with tempfile.TemporaryDirectory(dir=ws.home, prefix=".rl-eval-") as tmp:
        gif = Path(tmp) / "episode.gif"
        report = plan.evaluate(gif_path=gif)
        metrics = _metrics(report, fit)
        log.metrics(fit.steps, metrics)
        log.flush()
        meta = {"name": name, "run_id": run_id, "task": "rl", "env": s.env, "settings": s.to_dict(), "family": s.algo,
                "steps": fit.steps, "train_seconds": fit.seconds, "metrics": metrics,
                "evaluation": {k: v for k, v in report.items() if k != "gif"}, "defaults": plan.defaults_source}
        extra = {"episode.gif": gif} if report.get("gif") else {}
        emit("stage", {"message": "registering the policy"})
        artifact_dir = ws.artifacts / name / run_id
        digest = plan.save_artifact(artifact_dir, meta, extra)
    version = ws.store.register_model(name, artifact_path=str(artifact_dir.relative_to(ws.home)), meta_sha256=digest, run_id=run_id,
                                      task="rl", metric=METRIC, test_score=metrics[METRIC], metrics=metrics, family=s.algo)
    ws.store.update_run(run_id, status="finished", best_score=metrics[METRIC], best_family=s.algo, model_version=version)
    plan.agent.close()
    gif_path = str(artifact_dir / "episode.gif") if extra else None
    return RLResult(run_id, name, version, metrics, report, fit.steps, fit.seconds, fit.cpu_seconds, fit.timed_out, fit.resumed_from, gif_path)


def _metrics(report: dict, fit) -> dict:
    p, r = report["policy"], report["random"]
    return {METRIC: p["mean"], "return_ci_low": p["ci_low"], "return_ci_high": p["ci_high"], "return_std": p["std"],
            "eval_episodes": float(p["episodes"]), "random_mean_return": r["mean"], "random_ci_low": r["ci_low"],
            "random_ci_high": r["ci_high"], "train_steps": float(fit.steps), "train_seconds": fit.seconds,
            "train_cpu_seconds": fit.cpu_seconds, "env_steps_per_second": (fit.steps - (fit.resumed_from or 0)) / max(fit.seconds, 1e-9)}


def _evaluation_reserve(plan: RLPlan) -> float:
    """Seconds kept back from a time limit for the final evaluation: ~50 us per evaluation step, plus set-up."""
    return 5.0 + 2 * plan.settings.eval_episodes * (plan.info.max_episode_steps or 1000) * 5e-5


def evaluate_version(ref: str, episodes: int = 100, *, workspace: str | os.PathLike | None = None, gif: Path | None = None) -> dict:
    """`trainyard evaluate NAME --episodes N`: the registered policy on N held-out episodes beside a random policy."""
    from trainyard.registry.artifact import load_artifact
    from trainyard.rl.evaluate import evaluate, record_gif
    from trainyard.workspace import Workspace

    ws = Workspace.resolve(workspace)
    row = ws.store.resolve_model(ref)
    policy, meta = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
    if meta.get("kind") != "rl-policy":
        raise ConfigError(f"'{ref}' is not a reinforcement-learning policy.", "pass a policy trained with --task rl.")
    limit = (meta.get("settings") or {}).get("max_episode_steps")
    report = evaluate(policy.act, meta["env"], episodes, max_episode_steps=limit)
    if gif is not None:
        report["gif"] = record_gif(policy.act, meta["env"], gif, max_episode_steps=limit)
    return {**report, "name": row["name"], "version": row["version"], "env": meta["env"], "algo": meta["algo"]}


def _default_name(env: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", env.split(":")[-1]).strip("-").lower() or "policy"
