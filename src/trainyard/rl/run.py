"""Reinforcement learning as a plan of the run driver: the run in the store, the plan's fit, one evaluation on
held-out seeds, a registered policy.

    result = execute(PolicyPlan(RLSettings(env="CartPole-v1", algo="ppo", timesteps=100_000, name="pole")), ws)
    result = execute(PolicyPlan.of_run(run), ws, run_id=run["id"])    # resume: continues from the last checkpoint

With `tune_trials`, `prepare` first searches hyperparameters (trainyard.rl.tune), each trial recorded in the store;
the run's stored settings become the tuned ones, so a resume trains the final policy without searching again.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from trainyard.errors import ConfigError, NotFoundError
from trainyard.registry.artifact import load_artifact
from trainyard.registry.names import safe_stem
from trainyard.registry.plan import Registered, RunContext, RunResult, RunSpec
from trainyard.registry.workspace import Workspace
from trainyard.rl.artifact import policy_files
from trainyard.rl.config import RLSettings
from trainyard.rl.evaluate import evaluate, record_gif
from trainyard.rl.plan import RLPlan, resolve
from trainyard.rl.seeds import SeedPlans
from trainyard.rl.tune import tune

KIND = "rl"
METRIC = "mean_return"


class PolicyPlan:
    """One reinforcement-learning run (see the module docstring). A time limit counts from `started` (a time.time() stamp)."""

    def __init__(self, settings: RLSettings, *, started: float | None = None):
        resolve(settings)  # the environment and the hyperparameters checked before the run exists (exit 2 when wrong)
        self.s = settings
        self.started = time.time() if started is None else started
        self.name = settings.name or safe_stem(settings.env.split(":")[-1].lower(), "policy")

    @classmethod
    def of_run(cls, run: dict, *, started: float | None = None) -> "PolicyPlan":
        """The plan of a killed or interrupted run, from the settings stored in it (same seed)."""
        config = (run.get("config") or {}).get("rl")
        if run["kind"] != KIND or config is None:
            raise NotFoundError(f"Run {run['id']} is not a reinforcement-learning run.", "see `trainyard runs`.")
        if run["status"] == "finished":
            raise ConfigError(f"Run {run['id']} already finished (model version {run['model_version']}).", "start a new run instead.")
        return cls(RLSettings.from_dict({k: v for k, v in config.items() if k != "name"}), started=started)

    def spec(self) -> RunSpec:
        return RunSpec(self.name, KIND, "rl", METRIC, data_source=self.s.env, config={"rl": {**self.s.to_dict(), "name": self.name}})

    def prepare(self, run: RunContext) -> None:
        if self.s.tune_trials:
            self.s = _tune(self.s, run.ws, run.run_id, self.name, self.started, run.emit)
        self.seeds = SeedPlans(self.s, run.run_dir / "checkpoints")
        self.plan = self.seeds.best  # until fit has chosen among several seeds
        stored = run.store.get_run(run.run_id)
        run.store.update_run(run.run_id, config={**(stored.get("config") or {}), "hyperparameters": self.plan.hyperparameters,
                                                 "timesteps": self.plan.timesteps, "defaults": self.plan.defaults_source})
        run.emit("run", {"run_id": run.run_id, "name": self.name, "env": self.s.env, "algo": self.s.algo, "seeds": self.s.seeds,
                         "timesteps": self.plan.timesteps, "defaults": self.plan.defaults_source})

    def fit(self, run: RunContext) -> None:
        s = self.plan.settings
        deadline = self.started + s.time_limit - _evaluation_reserve(self.plan) * self.s.seeds if s.time_limit else None
        self.log = run.log()
        self.fitted = self.seeds.fit(self.log, deadline, run.emit)
        self.plan = self.seeds.best

    def evaluate(self, run: RunContext) -> dict[str, float]:
        s = self.plan.settings
        run.emit("stage", {"message": f"evaluating on {s.eval_episodes} held-out episodes (and a random policy on the same seeds)"})
        self.gif = run.run_dir / "episode.gif"
        self.report = self.plan.evaluate(gif_path=self.gif)
        metrics = _metrics(self.report, self.fitted)
        if self.s.seeds > 1:
            run.emit("stage", {"message": f"evaluating the other {self.s.seeds - 1} seeds on the same episodes (the spread across seeds)"})
            self.report["across_seeds"] = spread = self.seeds.spread(s.eval_episodes, self.report["policy"]["mean"])
            metrics.update({"seeds": float(spread["seeds"]), "best_seed": float(spread["best_seed"]), "seed_mean_return": spread["mean"],
                            "seed_return_sd": spread["sd"], "seed_return_min": spread["min"], "seed_return_max": spread["max"]})
        self.log.metrics(self.fitted.steps, metrics)
        self.log.flush()
        return metrics

    def register(self, run: RunContext, metrics: dict[str, float]) -> Registered:
        s, fitted = self.plan.settings, self.fitted
        meta = {"task": "rl", "env": s.env, "settings": s.to_dict(), "family": s.algo, "steps": fitted.steps,
                "train_seconds": fitted.seconds, "metrics": metrics, "defaults": self.plan.defaults_source,
                "evaluation": {k: v for k, v in self.report.items() if k != "gif"},
                "kept_best": self.plan.kept_best()}
        extra = {"episode.gif": self.gif} if self.report.get("gif") else {}
        with policy_files(self.plan.policy(), meta) as (files, full_meta):
            version = run.register(None, full_meta, task="rl", metric=METRIC, metrics=metrics, family=s.algo,
                                   test_score=metrics[METRIC], extra_files={**files, **extra})
        self.plan.agent.close()
        self.gif_path = str(run.ws.artifacts / self.name / run.run_id / "episode.gif") if extra else None
        return Registered(version, metrics[METRIC], s.algo)

    def result(self, run: RunContext, registered: Registered, metrics: dict[str, float]) -> RunResult:
        f = self.fitted
        return RunResult(run.run_id, self.name, registered.version, KIND, "rl", METRIC, metrics, family=self.plan.settings.algo,
                         evaluation=self.report, steps=f.steps, seconds=f.seconds, timed_out=f.timed_out,
                         details={"cpu_seconds": f.cpu_seconds, "resumed_from": f.resumed_from, "gif": self.gif_path,
                                  "kept_best": self.plan.kept_best()})


TUNE_SHARE = 0.5  # of a time limit, for the search; the final training gets the rest


def _tune(settings: RLSettings, ws, run_id: str, name: str, started: float, emit) -> RLSettings:
    """Search hyperparameters (trainyard.rl.tune), each trial recorded in the store; the run's stored settings become
    the tuned ones, so a resume trains the final policy without searching again."""
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
