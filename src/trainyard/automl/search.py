"""The entry point of the AutoML search: defaults first, Optuna on the best families, ensemble selection,
resume (the scheduling itself is `trainyard.automl.scheduler.Scheduler`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


from trainyard.automl.scheduler import Scheduler
from trainyard.automl.trials import SearchData, SearchPlan, SearchResult, Trial
from trainyard.data.schema import Schema
from trainyard.metrics import Metric
from trainyard.models.registry import Family
from trainyard.tasks import Task


def search(data: SearchData, *, schema: Schema, task: Task, metric: Metric, families: list[Family], plan: SearchPlan,
           on_trial: Callable[[Trial], None] | None = None, checkpoint_dir: Path | None = None,
           previous: list[dict] | None = None, runner=None) -> SearchResult:
    """Fit candidates within the plan's budget, score them on validation, ensemble; returns a `SearchResult`.
    `runner`: where fits run (default here, one after another; a `ClusterRunner` for Ray tasks)."""
    return Scheduler(data, schema=schema, task=task, metric=metric, families=families, plan=plan, on_trial=on_trial,
                     checkpoint_dir=checkpoint_dir, previous=previous, runner=runner).run()
