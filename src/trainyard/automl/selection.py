"""The final model of a search: greedy (Caruana) ensemble selection over the finished trials' validation or
out-of-fold predictions, its members refitted from their recorded settings when needed, and the refit on
train + validation in holdout mode."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.base import clone

from trainyard.automl.plan import training_weights
from trainyard.automl.trials import SearchResult, Trial
from trainyard.models.ensemble import Bag, WeightedEnsemble, caruana, fit_estimator

REFIT_MARGIN = 1.3  # a refit is started when 1.3x its estimated time is left (more rows take longer, a busy machine too)


class FinalModel:
    """Builds the search's result from a `Scheduler` that has finished its trials."""

    def __init__(self, scheduler):
        self.s = scheduler

    def build(self) -> SearchResult:
        """Greedy ensemble selection over the finished trials, refitted on train + validation when time allows."""
        s = self.s
        candidates = self._candidates()
        if not candidates:
            return SearchResult(s.trials, None, "", {}, float("nan"), notes=s.notes)
        seconds = None
        if s.budget.limited:  # keep the selection inside the reserve, whatever the machine's load
            seconds = max(0.25 * s.budget.reserve, s.budget.remaining() + s.budget.reserve * 0.25)
        chosen, score = caruana(
            [s.preds[t.number] for t in candidates], s.score, s.metric.greater_is_better,
            rounds=s.plan.ensemble_rounds, costs=[t.predict_ms_per_row or 0.0 for t in candidates], max_cost=s.plan.max_predict_ms,
            seconds=seconds,
        )
        if not chosen:
            chosen, score = {0: 1}, candidates[0].val_score
        total = sum(chosen.values())
        members = [(candidates[i], count / total) for i, count in sorted(chosen.items())]
        members, score = self._no_worse_than_the_first(members, score)
        ensemble = self._assemble(members)
        used = {t.number for t, _ in members}
        for number in [n for n in s.fitted if n not in used]:
            del s.fitted[number]  # models the final one does not use: freed before a refit holds two of it
        refitted, fit_rows, fit_seconds = False, len(s.y_fit), sum(t.fit_seconds or 0.0 for t, _ in members)
        if not s.bagging and s.plan.refit:
            started = time.perf_counter()
            ensemble, refitted = self._refit(ensemble, [t for t, _ in members])
            if refitted:
                fit_rows, fit_seconds = len(s.data.y_train) + len(s.data.y_val), time.perf_counter() - started
        fitted = dict(refitted=refitted, notes=s.notes, fit_rows=fit_rows, fit_seconds=fit_seconds,
                      balance=bool(s.plan.balance and s.task.is_classification))
        if len(members) == 1:
            best = members[0][0]
            return SearchResult(s.trials, ensemble, best.family, best.params, best.val_score, **fitted)
        trial = s.record(self._ensemble_trial(members, score))
        names = trial.message.split("(", 1)[1].rstrip(")")
        return SearchResult(s.trials, ensemble, f"ensemble({names})", trial.params, score, **fitted)

    def _no_worse_than_the_first(self, members: list[tuple[Trial, float]], score: float):
        """The search's first candidate (the first default trial that finished: LightGBM sized for the data) is the
        final model unless the selection scores strictly better on validation than it did."""
        s = self.s
        first = s.first_candidate()
        if first is None or [t.number for t, _ in members] == [first.number] or s.metric.better(score, first.val_score):
            return members, score
        if s.plan.max_predict_ms is not None and (first.predict_ms_per_row or 0) > s.plan.max_predict_ms:
            return members, score  # the user's latency limit rules it out
        s.notes.append(f"kept the first candidate ({first.family} defaults, validation {s.metric.name} {first.val_score:.5g}): "
                       f"the selection scored {score:.5g}, no better")
        return [(first, 1.0)], first.val_score

    def _candidates(self) -> list[Trial]:
        """The finished trials with predictions, best first (the 15 best; within the latency limit when one is set)."""
        s = self.s
        candidates = [t for t in s.trials if t.status == "ok" and t.number in s.preds]
        candidates.sort(key=lambda t: (-t.val_score if s.metric.greater_is_better else t.val_score, t.number))
        limit = s.plan.max_predict_ms
        if candidates and limit is not None:
            fast = [t for t in candidates if (t.predict_ms_per_row or 0) <= limit]
            if fast:
                candidates = fast
            else:
                s.notes.append(f"no model predicts within {limit} ms per row; using the fastest accurate ones")
                candidates = sorted(candidates, key=lambda t: t.predict_ms_per_row or 0)[:1]
        return candidates[:15]

    def _ensemble_trial(self, members: list[tuple[Trial, float]], score: float) -> Trial:
        """The leaderboard row of a chosen ensemble."""
        s = self.s
        names = "+".join(sorted({t.family for t, _ in members}))
        params = {"members": {str(t.number): round(w, 4) for t, w in members}}
        return Trial(s.next_number(), "ensemble", params, "ok", score,
                     fit_seconds=sum(t.fit_seconds or 0 for t, _ in members),
                     predict_ms_per_row=sum(t.predict_ms_per_row or 0 for t, _ in members),
                     memory_mb=max(t.memory_mb or 0 for t, _ in members),
                     message=f"greedy selection of {len(members)} trials ({names})", extra={"origin": "ensemble", "seed": s.plan.seed})

    def _member(self, trial: Trial):
        """The fitted model of a trial: kept in memory, or refitted from family + params + seed (resumed runs)."""
        if trial.number in self.s.fitted:
            return self.s.fitted[trial.number]
        family = next(f for f in self.s.families if f.name == trial.family)
        estimator = family.make(self.s.task, int(trial.extra.get("seed", self.s.plan.seed)), **trial.params)
        model = Bag(estimator, self.s.plan.bag_folds, self.s.task.value, self.s.n_classes, self.s.plan.seed) if self.s.bagging else estimator
        fit_estimator(model, self.s.prepare(family.prep).X_fit, self.s.y_fit, self.s.w_fit)
        self.s.fitted[trial.number] = model
        return model

    def _assemble(self, members: list[tuple[Trial, float]]) -> WeightedEnsemble:
        kinds = [next(f.prep for f in self.s.families if f.name == t.family) for t, _ in members]
        fitted = [self._member(t) for t, _ in members]
        preps = {k: self.s.prepare(k).prep for k in set(kinds)}
        return WeightedEnsemble.from_fitted(preps, fitted, kinds, [w for _, w in members], self.s.task.value, self.s.n_classes)

    def _refit(self, ensemble: WeightedEnsemble, members: list[Trial]) -> tuple[WeightedEnsemble, bool]:
        """Refit the chosen members on train + validation when the remaining time allows it."""
        grow = (len(self.s.data.y_train) + len(self.s.data.y_val)) / max(len(self.s.data.y_train), 1)
        needed = REFIT_MARGIN * grow * sum(t.fit_seconds or 0 for t in members)
        # the caller's own work after the search (testing, saving) keeps its share of the limit
        if self.s.budget.limited and needed > self.s.plan.time_limit - self.s.budget.elapsed() - self.s.plan.reserve_seconds:
            self.s.notes.append(f"kept the models fitted on the training split: refitting would take about {needed:.0f}s")
            return ensemble, False
        members_spec = []
        for t, (kind, _) in zip(members, ensemble.members):
            family = next(f for f in self.s.families if f.name == t.family)
            members_spec.append((kind, family.make(self.s.task, int(t.extra.get("seed", self.s.plan.seed)), **t.params)))
        refit = WeightedEnsemble(ensemble.preps, members_spec, ensemble.weights, self.s.task.value, self.s.n_classes)
        X = pd.concat([self.s.data.X_train, self.s.data.X_val])
        y = np.concatenate([self.s.data.y_train, self.s.data.y_val])
        w_user = None if self.s.data.w_train is None else np.concatenate([self.s.data.w_train, self.s.data.w_val])
        w = training_weights(y, w_user, self.s.n_classes, self.s.plan.balance and self.s.task.is_classification)
        return refit.fit(X, y, sample_weight=w), True


def refit_on_all_rows(found: SearchResult, X: pd.DataFrame, y: np.ndarray, user_weights: np.ndarray | None,
                      n_classes: int | None, seconds_left: float | None):
    """The search's final model fitted again, with the same members, settings and weights, on `X` (every labelled row:
    the test rows too, once the test is done), or None when it would not end within `seconds_left`. (The estimator,
    or None, and a sentence for the run's events.)"""
    needed = REFIT_MARGIN * len(y) / max(found.fit_rows, 1) * found.fit_seconds
    if seconds_left is not None and needed > seconds_left:
        return None, (f"kept the model fitted on {found.fit_rows:,} rows: refitting it on all {len(y):,} labelled rows would take "
                      f"about {needed:.0f}s, {seconds_left:.0f}s were left")
    started = time.perf_counter()
    model = clone(found.estimator).fit(X, y, sample_weight=training_weights(y, user_weights, n_classes, found.balance))
    return model, (f"refitted the final model on all {len(y):,} labelled rows (test rows included) in {time.perf_counter() - started:.1f}s; "
                   f"the test scores are those of the model fitted on {found.fit_rows:,} rows before it")
