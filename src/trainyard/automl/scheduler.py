"""The AutoML scheduler: spend the budget where it buys accuracy.

1. Each family's tuned defaults, in the preset's order (fast, strong families
   first), so a good model exists within seconds.
2. Optuna (TPE, seeded) on the best-ranked families, round robin, while time
   and the trial count allow.
3. Greedy ensemble selection (Caruana) over the validation (or out-of-fold)
   predictions of every finished trial; the result is one `WeightedEnsemble`.

Scoring is on the validation split, or, when `bag_folds` >= 2, on out-of-fold
predictions of k-fold bagged models over train + validation. Before every fit
the scheduler estimates its memory (skip when over the limit) and time (skip a
fit that cannot finish; boosting and forests get a time budget and stop cleanly
with fewer trees). Each finished trial is handed to `on_trial` (the store) and
its predictions saved under `checkpoint_dir`, so a killed run resumes from the
recorded trials (`previous`).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trainyard.automl.budget import Budget
from trainyard.automl.plan import training_weights
from trainyard.automl.replay import TrialPredictions, replay
from trainyard.automl.runner import FitOutcome, Job, LocalRunner, wrap_model
from trainyard.automl.selection import FinalModel
from trainyard.automl.trials import SearchData, SearchPlan, SearchResult, Trial
from trainyard.data.prepare import make_preprocessor
from trainyard.data.schema import Schema
from trainyard.metrics import Metric, score_predictions
from trainyard.models.registry import Family
from trainyard.tasks import Task


@dataclass
class _Prepared:
    prep: object
    X_fit: object
    X_eval: object
    ms_per_row: float


class Scheduler:
    def __init__(self, data: SearchData, *, schema: Schema, task: Task, metric: Metric, families: list[Family],
                 plan: SearchPlan, on_trial: Callable[[Trial], None] | None = None,
                 checkpoint_dir: Path | None = None, previous: list[dict] | None = None, runner=None):
        self.data, self.schema, self.task, self.metric, self.families, self.plan = data, schema, task, metric, families, plan
        self.on_trial = on_trial or (lambda trial: None)
        self.n_classes = len(data.classes) if task.is_classification else None
        self.bagging = plan.bag_folds >= 2
        if self.bagging:
            self.X_fit = pd.concat([data.X_train, data.X_val])
            self.y_fit = np.concatenate([data.y_train, data.y_val])
            self.w_user = None if data.w_train is None else np.concatenate([data.w_train, data.w_val])
            self.X_eval, self.y_eval, self.w_eval = None, self.y_fit, self.w_user
        else:
            self.X_fit, self.y_fit, self.w_user = data.X_train, data.y_train, data.w_train
            self.X_eval, self.y_eval, self.w_eval = data.X_val, data.y_val, data.w_val
        self.w_fit = self._training_weights()
        reserve = max(plan.reserve_fraction * plan.time_limit, plan.reserve_seconds) if plan.time_limit else 0.0
        self.budget = Budget(plan.time_limit, reserve=min(reserve, 0.5 * plan.time_limit) if plan.time_limit else 0.0,
                             slowdown=plan.slowdown)
        self.runner = runner or LocalRunner()  # where fits run: here, or a ClusterRunner's Ray tasks
        self.mem_limit = self.runner.memory_limit_mb(plan.memory_limit_mb)
        self.in_flight: dict[int, Job] = {}  # trial number -> a fit submitted and not yet finished
        self.trials: list[Trial] = []
        self.preds: dict[int, np.ndarray] = {}
        self.fitted: dict[int, object] = {}
        self.prepared: dict[str, _Prepared] = {}
        self.studies: dict[str, object] = {}
        self.out_of_time: set[str] = set()
        self.notes: list[str] = []
        self.attempted_here = 0  # fits started by this process (a resumed run's recorded trials do not count)
        self.saved = TrialPredictions(checkpoint_dir)
        replay(self, previous or [])

    # public -------------------------------------------------------------------
    def run(self) -> SearchResult:
        done = {t.family for t in self.trials if t.extra.get("origin") == "default"}
        for family in self.families:
            if family.name in done:
                continue
            if self._stop():
                break
            self._run(family, {}, origin="default")
        self.runner.settle(self)
        self._tune()
        self.runner.settle(self)
        return FinalModel(self).build()

    # the phases -----------------------------------------------------------------
    def _tune(self) -> None:
        try:
            import optuna
        except ImportError:
            self.notes.append("hyperparameter search skipped: install optuna (pip install 'trainyard[search]')")
            return
        while not self._stop():
            ranked = [f for f in self._ranked() if f.space is not None and f.name not in self.out_of_time
                      and not self._converged(f.name)][: self.plan.tune_top]
            if not ranked:
                return
            asked = []  # one trial per family: each family has its own study, so a round's fits may run at once
            for family in ranked:
                if self._stop():
                    break
                study = self._study(family)
                ask = study.ask()
                try:
                    params = family.space(ask, self.task)
                except Exception as exc:  # a broken search space is a bug in the family: record, move on
                    study.tell(ask, state=optuna.trial.TrialState.FAIL)
                    self.out_of_time.add(family.name)
                    self.notes.append(f"{family.name}: search space failed ({exc})")
                    continue
                asked.append((family, study, ask, self._run(family, params, origin="tuned", ask=ask)))
            self.runner.settle(self)
            for family, study, ask, job in asked:  # told in trial order, whatever order the results came in
                self._tell(family, study, ask, job.trial if isinstance(job, Job) else job)
            if self._stop():
                return

    def _tell(self, family: Family, study, ask, trial: Trial | None) -> None:
        import optuna

        if trial is None or trial.status == "skipped":  # no time, or no memory, for this family any more
            self.out_of_time.add(family.name)
            study.tell(ask, state=optuna.trial.TrialState.FAIL)
        elif trial.status == "ok":
            study.tell(ask, trial.val_score)
        else:
            study.tell(ask, state=optuna.trial.TrialState.FAIL)

    # one trial ------------------------------------------------------------------
    def _run(self, family: Family, params: dict, origin: str, ask=None) -> Job | Trial | None:
        """One trial: admitted by its memory and time estimates, then handed to the runner (fitted here at once, or on
        the cluster); a skipped trial is recorded (None: no time left to tune)."""
        full = {**family.defaults, **params}
        extra = {"origin": origin, "seed": self.plan.seed, "bag_folds": self.plan.bag_folds, "eval_rows": len(self.y_eval)}
        if self.plan.balance and self.task.is_classification:
            extra["class_weight"] = "balanced"  # as sample weights, so every family (and bag fold) gets the same
        if ask is not None:
            from optuna.distributions import distribution_to_json

            extra["optuna"] = {"params": dict(ask.params), "distributions": {k: distribution_to_json(d) for k, d in ask.distributions.items()}}
        admitted = self._admit(family, full, extra, origin)
        if not isinstance(admitted, tuple):
            return admitted
        estimator, budget_s, prior_seconds, expected, memory_mb = admitted
        started = time.perf_counter()
        self.prepare(family.prep)
        job = Job(self.next_number(), family.name, full, extra, wrap_model(estimator, self, budget_s), family.prep, prior_seconds,
                  expected, memory_mb, budget_s, started=started)
        self.attempted_here += 1
        self.in_flight[job.number] = job
        self.runner.submit(self, job)
        return job

    def finish(self, job: Job, outcome: FitOutcome | str) -> Trial:
        """Record a fit that returned (the runner calls this the moment it does): failed with the reason, or scored."""
        self.in_flight.pop(job.number, None)
        if isinstance(outcome, str):
            job.trial = self.record(Trial(job.number, job.family, job.params, "failed", fit_seconds=job.seconds, extra=job.extra,
                                          message=outcome))
            return job.trial
        self.budget.learn(job.family, job.prior_seconds, job.seconds)
        score = self.score(outcome.preds)
        if outcome.node:  # on a cluster: where it ran and the CPU it used there
            job.extra.update(node=outcome.node, cpu_s=round(outcome.cpu_seconds, 3), **({"folds": outcome.folds} if outcome.folds else {}))
        if not np.isfinite(score):
            job.trial = self.record(Trial(job.number, job.family, job.params, "failed", fit_seconds=outcome.fit_seconds, extra=job.extra,
                                          message=f"validation {self.metric.name} is {score}"))
            return job.trial
        job.extra.update(_growth(outcome.model.estimators_[0] if self.bagging else outcome.model, job.params))
        trial = Trial(job.number, job.family, job.params, "ok", score, outcome.fit_seconds,
                      outcome.predict_ms + self.prepared[job.prep].ms_per_row, outcome.peak_mb, extra=job.extra)
        self.preds[job.number] = outcome.preds
        self.fitted[job.number] = outcome.model
        self.saved.save(job.number, outcome.preds)
        self._prune_fitted()
        job.trial = self.record(trial)
        return job.trial

    def _admit(self, family: Family, full: dict, extra: dict, origin: str):
        """(estimator, its time budget or None, prior and expected seconds, memory) when the fit may start; else the skipped trial
        (recorded), or None for a tuned trial that no longer fits in the time left."""
        prior = family.footprint(int(self.fit_rows()), len(self.schema.features()), self.n_classes or 1, full)
        if prior.memory_mb > self.mem_limit:
            return self.record(Trial(self.next_number(), family.name, full, "skipped", extra=extra,
                                     message=f"needs about {prior.memory_mb:.0f} MB by estimate, over the {self.mem_limit:.0f} MB limit "
                                             f"({self.runner.memory_source}); not fitted"))
        estimator = family.make(self.task, self.plan.seed, **full)
        interruptible = "time_budget_s" in estimator.get_params()
        prior_seconds = prior.seconds * (self.plan.bag_folds if self.bagging else 1)
        expected = self.budget.expected(family.name, prior_seconds)
        remaining = self.budget.remaining()
        too_late = remaining < max(0.5, 0.03 * (self.plan.time_limit or 0))
        # The first fit of a process always runs (a fresh run must end with a model, a resumed one must add to
        # what it recorded), however little time the clock shows; interruptible fits get a small slice.
        first = self.attempted_here == 0
        if first and self.budget.limited and interruptible:
            remaining = max(remaining, min(max(2.0, 0.05 * self.plan.time_limit), 0.5 * self.plan.time_limit))
        # A fit that cannot stop early must fit in what is left with a margin; one that can needs a useful slice.
        short = 1.5 * expected > remaining if not interruptible else remaining < min(0.3 * expected, 5.0)
        if self.budget.limited and not first and (too_late or short):
            self.out_of_time.add(family.name)
            if origin != "default":
                return None
            return self.record(Trial(self.next_number(), family.name, full, "skipped", extra=extra,
                                     message=f"needs ~{expected:.1f}s, {max(remaining, 0):.1f}s left"))
        budget_s = None
        if self.budget.limited and interruptible:
            # Defaults share what is left with the families still to try; a tuned trial gets a few times its expected time.
            left = max(1, sum(1 for f in self.families if f.name not in {t.family for t in self.trials}))
            cap = 2 * remaining / left if origin == "default" else max(3 * expected, 0.25 * remaining)
            if origin == "default" and not any(t.status == "ok" for t in self.trials):
                cap = max(cap, 0.4 * remaining)  # the preset's first (strongest) family: room to converge
            budget_s = min(remaining, cap)
        estimator = self._sized(family, full, budget_s, origin) or estimator
        return estimator, budget_s, prior_seconds, expected, prior.memory_mb

    def _sized(self, family: Family, full: dict, budget_s: float | None, origin: str):
        """A default trial's parameters sized for the data and for the prior seconds one fit (one bag fold) may take
        on this machine (`full` is updated, so the trial records them); a new estimator when they changed."""
        if origin != "default" or family.sized is None:
            return None
        seconds = None
        if budget_s is not None:
            seconds = budget_s / (self.plan.bag_folds if self.bagging else 1) / self.budget.expected(family.name, 1.0)
        sized = family.default_params(int(self.fit_rows()), len(self.schema.features()), self.n_classes or 1, seconds)
        if all(full.get(k) == v for k, v in sized.items()):
            return None
        full.update(sized)
        return family.make(self.task, self.plan.seed, **full)

    def record(self, trial: Trial) -> Trial:
        self.trials.append(trial)
        self.trials.sort(key=lambda t: t.number)  # results from a cluster arrive in any order
        self.on_trial(trial)
        return trial

    # helpers ----------------------------------------------------------------------
    def _stop(self) -> bool:
        attempted = len(self.in_flight) + sum(1 for t in self.trials if t.status in ("ok", "failed") and t.family != "ensemble")
        if self.plan.max_trials is not None and attempted >= self.plan.max_trials:
            return True
        return self.attempted_here > 0 and self.budget.remaining() <= 0

    def score(self, preds: np.ndarray) -> float:
        return score_predictions(self.metric, self.task, self.y_eval, preds, self.n_classes, self.w_eval)

    def fit_rows(self) -> float:
        """Rows each fit sees: train (+ validation) rows, less one fold when bagging."""
        return len(self.y_fit) * ((self.plan.bag_folds - 1) / self.plan.bag_folds if self.bagging else 1)

    def next_number(self) -> int:
        return max([t.number for t in self.trials] + list(self.in_flight) + [self._previous_max], default=-1) + 1

    def _training_weights(self) -> np.ndarray | None:
        return training_weights(self.y_fit, self.w_user, self.n_classes, self.plan.balance and self.task.is_classification)

    def prepare(self, kind: str) -> _Prepared:
        if kind not in self.prepared:
            prep = make_preprocessor(self.schema, kind, self.task)
            # fit_transform with the target: a target encoder (high-cardinality categoricals, linear kind) needs the
            # labels and cross-fits the training rows, so no row is encoded with its own label
            X_fit = prep.fit_transform(self.X_fit, self.y_fit)
            sample = self.X_fit.head(1000)
            t0 = time.perf_counter()
            prep.transform(sample)
            ms = (time.perf_counter() - t0) * 1000 / max(len(sample), 1)
            X_eval = None if self.X_eval is None else prep.transform(self.X_eval)
            self.prepared[kind] = _Prepared(prep, X_fit, X_eval, ms)
        return self.prepared[kind]

    def prepared_data(self, kind: str) -> tuple:
        """What a fit of this preprocessing kind needs: (X_fit, y_fit, w_fit, X_eval)."""
        prepared = self.prepare(kind)
        return prepared.X_fit, self.y_fit, self.w_fit, prepared.X_eval

    def _ranked(self) -> list[Family]:
        """Families by their best validation score so far (too-slow predictors last when a latency limit is set)."""
        best: dict[str, float] = {}
        for t in self.trials:
            if t.status != "ok" or t.family == "ensemble":
                continue
            s = t.val_score if self.metric.greater_is_better else -t.val_score
            if self.plan.max_predict_ms is not None and (t.predict_ms_per_row or 0) > self.plan.max_predict_ms:
                s -= 1e6
            best[t.family] = max(best.get(t.family, -np.inf), s)
        order = sorted(best, key=lambda name: -best[name])
        by_name = {f.name: f for f in self.families}
        return [by_name[n] for n in order if n in by_name]

    def _converged(self, family: str) -> bool:
        """No improvement of the family's best score in its last `patience` tuned trials."""
        best, since = None, 0
        for t in self.trials:
            if t.family != family or t.status != "ok":
                continue
            if best is None or self.metric.better(t.val_score, best):
                best, since = t.val_score, 0
            elif t.extra.get("origin") == "tuned":
                since += 1
        return since >= self.plan.patience

    def _study(self, family: Family):
        if family.name not in self.studies:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            seed = (self.plan.seed * 1000003 + zlib.crc32(family.name.encode())) % 2**31
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True)
            study = optuna.create_study(direction="maximize" if self.metric.greater_is_better else "minimize", sampler=sampler)
            for t in self.trials:  # resumed: teach the study what was already tried
                optuna_info = t.extra.get("optuna")
                if t.family == family.name and optuna_info and t.status == "ok":
                    from optuna.distributions import json_to_distribution

                    dists = {k: json_to_distribution(v) for k, v in optuna_info["distributions"].items()}
                    study.add_trial(optuna.trial.create_trial(params=optuna_info["params"], distributions=dists, value=t.val_score))
            self.studies[family.name] = study
        return self.studies[family.name]

    def first_candidate(self) -> Trial | None:
        """The first default trial that finished with predictions: what the final model must beat on validation."""
        return next((t for t in self.trials if t.extra.get("origin") == "default" and t.status == "ok" and t.number in self.preds), None)

    def _prune_fitted(self) -> None:
        """Keep the best `keep_fitted` fitted models in memory (and always the first candidate, the fallback)."""
        if len(self.fitted) <= self.plan.keep_fitted:
            return
        first = self.first_candidate()
        by_score = sorted((t for t in self.trials if t.number in self.fitted and t is not first),
                          key=lambda t: (-t.val_score if self.metric.greater_is_better else t.val_score, t.number))
        for t in by_score[self.plan.keep_fitted:]:
            self.fitted.pop(t.number, None)



def _growth(inner, params: dict) -> dict:
    """What the trial's extra records about how far a time-budgeted model grew."""
    out = {}
    grown = getattr(inner, "n_estimators_", None)
    if getattr(inner, "stopped_by_time_", False) or ("n_estimators" in params and grown is not None and grown < params["n_estimators"]):
        out["stopped_by_time"] = True
    if isinstance(getattr(inner, "n_iter_", None), (int, np.integer)):
        out["n_iter"] = int(inner.n_iter_)
    return out

