"""Resume of a killed search: each finished trial's predictions saved next to the run, and the trials a run
recorded taken back (leaderboard rows, predictions, speed) before the search goes on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainyard.automl.trials import Trial


class TrialPredictions:
    """Validation (or out-of-fold) predictions of each trial as `trial-N.npy` under the run's folder."""

    def __init__(self, directory: Path | None):
        self.directory = Path(directory) if directory else None

    def path(self, number: int) -> Path | None:
        return None if self.directory is None else self.directory / f"trial-{number}.npy"

    def save(self, number: int, preds: np.ndarray) -> None:
        path = self.path(number)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}.npy")
        np.save(tmp, preds)
        os.replace(tmp, path)


def replay(scheduler, previous: list[dict]) -> None:
    """Take back the trials a killed run recorded: leaderboard rows, predictions, Optuna history, speed."""
    s = scheduler
    known = {f.name: f for f in s.families}
    s._previous_max = max((row["number"] for row in previous), default=-1)
    for row in sorted(previous, key=lambda r: r["number"]):
        extra = dict(row.get("extra") or {})
        if row["family"] == "ensemble" or extra.get("origin") == "ensemble":
            continue
        trial = Trial(row["number"], row["family"], dict(row.get("params") or {}), row["status"], row.get("val_score"),
                      row.get("fit_seconds"), row.get("predict_ms_per_row"), row.get("memory_mb"), row.get("message") or "",
                      {**extra, "resumed": True})
        s.trials.append(trial)
        path = s.saved.path(trial.number)
        same_setup = extra.get("bag_folds", 0) == s.plan.bag_folds and extra.get("eval_rows") == len(s.y_eval)
        if trial.status == "ok" and trial.family in known and same_setup and path is not None and path.exists():
            s.preds[trial.number] = np.load(path)
        if trial.status == "ok" and trial.family in known and trial.fit_seconds:
            prior = known[trial.family].footprint(int(s.fit_rows()), len(s.schema.features()), s.n_classes or 1, trial.params)
            s.budget.learn(trial.family, prior.seconds * (s.plan.bag_folds if s.bagging else 1), trial.fit_seconds)
