"""The contract between the run driver (trainyard.runs.driver) and each kind of training: a `Plan`.

A plan knows its data and its model; the driver owns the run's row, its status and its registration. Plans live
with what they train (runs/table.py, runs/neural.py, lm/train.py, rl/); this module is low in the layers so
that each of them can implement it without importing the driver.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trainyard.registry.artifact import save_artifact
from trainyard.registry.pause import pause_at
from trainyard.registry.tracking import RunLog
from trainyard.registry.workspace import Workspace

Progress = Callable[[str, dict], None]


def quiet(kind: str, info: dict) -> None:
    """The progress callback of a run nobody watches."""


@dataclass(frozen=True)
class RunSpec:
    """What the store records when a run starts; `config` holds everything a plan needs to rebuild itself (resume)."""

    name: str
    kind: str  # tabular, deep, language-model, ...
    task: str
    metric: str
    data_source: str | None = None
    target: str | None = None
    data_fingerprint: str | None = None
    config: dict = field(default_factory=dict)


@dataclass
class RunContext:
    """What a plan works with: the workspace, its run, the run's folder, the metric log and the progress callback."""

    ws: Workspace
    run_id: str
    name: str
    emit: Progress
    resumed: bool = False

    @property
    def store(self):
        return self.ws.store

    @property
    def run_dir(self) -> Path:
        return self.ws.run_dir(self.run_id)

    def log(self) -> RunLog:
        return RunLog(self.store, self.run_id)

    def register(self, model, meta: dict, *, task: str, metric: str, metrics: dict, family: str | None,
                 test_score: float | None, extra_files: dict[str, Path] | None = None) -> int:
        """Write the artifact (hashes of every file, atomic rename), then record its version in one transaction.

        Resuming a run killed between the two: a version already recorded for this run is returned as it is; an
        artifact folder in place but never recorded is an orphan of the killed attempt and is written anew."""
        directory = self.ws.artifacts / self.name / self.run_id
        recorded = [v for v in self.store.list_models(self.name) if v.get("run_id") == self.run_id]
        if recorded:
            return int(recorded[0]["version"])
        if directory.exists():
            shutil.rmtree(directory)
        digest = save_artifact(model, directory, {"name": self.name, "run_id": self.run_id, **meta}, extra_files=extra_files)
        pause_at("artifact-renamed")
        return self.store.register_model(self.name, artifact_path=str(directory.relative_to(self.ws.home)), meta_sha256=digest,
                                         run_id=self.run_id, task=task, metric=metric, test_score=test_score, metrics=metrics,
                                         family=family)


@dataclass
class Registered:
    """What `plan.register` returns: the version, and the run's best validation score and family for `trainyard runs`."""

    version: int
    best_score: float | None = None
    best_family: str | None = None


@dataclass
class RunResult:
    """One result type for every kind of run; the fields a kind does not produce stay empty."""

    run_id: str
    name: str
    version: int
    kind: str
    task: str
    metric: str
    metrics: dict[str, float]
    model: Any = None
    family: str | None = None
    split: dict | None = None
    baseline: dict = field(default_factory=dict)
    leaderboard: Any = None  # table search: a DataFrame of the trials
    audit: Any = None  # table search: the data audit's AuditReport
    evaluation: Any = None  # table search: the held-out EvaluationReport
    card_dir: Path | None = None
    history: list = field(default_factory=list)  # neural runs: the loop's per-evaluation history
    notes: list = field(default_factory=list)
    samples: list = field(default_factory=list)  # language models: generations before and after training
    steps: int | None = None
    seconds: float | None = None
    tokens_per_second: float | None = None
    timed_out: bool = False
    details: dict = field(default_factory=dict)  # what one kind adds (reinforcement learning: CPU seconds, resumed step, GIF)

    @property
    def test_score(self) -> float | None:
        return self.metrics.get(self.metric)


class Plan(Protocol):
    """One kind of training, as the driver runs it."""

    def spec(self) -> RunSpec: ...

    def prepare(self, run: RunContext) -> None:
        """Load, check and split the data (the run exists: failures here are recorded)."""

    def fit(self, run: RunContext) -> None:
        """Train, with checkpoints or trial records in the run's folder so that `resume` can continue."""

    def evaluate(self, run: RunContext) -> dict[str, float]:
        """Score the fitted model once on held-out data."""

    def register(self, run: RunContext, metrics: dict[str, float]) -> Registered: ...

    def result(self, run: RunContext, registered: Registered, metrics: dict[str, float]) -> RunResult: ...
