"""The registry of model families: a dict and a decorator.

A family is a function that builds an unfitted scikit-learn estimator for a
task from keyword hyperparameters, plus what the search needs to know about it:
which preprocessing it eats, its tuned defaults, its Optuna search space, a
rough prior of its fit time and memory (used before it has been fitted once),
and which packages it requires. `trainyard families` lists them.

Built-in families live in one module per group (models/linear.py, neighbors.py,
trees.py, boosting.py, mlp.py, image.py, text.py); models/families.py imports them all and answers
lookups. A new family only needs `@register` in a module that families.py imports.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

from sklearn.pipeline import Pipeline

from trainyard.data.prepare import make_preprocessor
from trainyard.data.schema import Schema
from trainyard.tasks import TABULAR_TASKS, Task

ALL_TASKS = TABULAR_TASKS  # families serve tables unless they say otherwise


@dataclass(frozen=True)
class Family:
    name: str
    make: Callable[..., object]  # make(task, seed, **params) -> unfitted estimator
    prep: str  # "linear", "tree", or "raw" (neural families that eat images/texts as they are)
    defaults: dict = field(default_factory=dict)
    space: Callable | None = None  # space(optuna_trial, task) -> params
    tasks: frozenset = ALL_TASKS
    requires: tuple[str, ...] = ()
    description: str = ""
    estimate: Callable | None = None  # estimate(n_rows, n_features, n_classes, params) -> Estimate
    sized: Callable | None = None  # sized(n_rows, n_features, n_classes, seconds) -> the defaults this data and time call for

    def footprint(self, n_rows: int, n_features: int, n_classes: int, params: dict | None = None) -> "Estimate":
        """Prior fit seconds (one core) and peak memory (MB) for fitting on this much data."""
        if self.estimate is None:
            return Estimate(seconds=1e-6 * n_rows * n_features, memory_mb=3 * n_rows * n_features * 8 / 1e6 + 50)
        return self.estimate(n_rows, n_features, n_classes, {**self.defaults, **(params or {})})

    def default_params(self, n_rows: int, n_features: int, n_classes: int, seconds: float | None = None) -> dict:
        """The defaults, sized for this data and for the `seconds` one fit may take (None: no clock)."""
        if self.sized is None:
            return dict(self.defaults)
        return {**self.defaults, **self.sized(n_rows, n_features, n_classes, seconds)}

    def available(self) -> bool:
        return all(importlib.util.find_spec(mod) is not None for mod in self.requires)

    def build(self, schema: Schema, task: Task, params: dict | None = None, seed: int = 0) -> Pipeline:
        """Preprocessing fitted on whatever `fit` gets + this family's estimator, as one Pipeline."""
        estimator = self.make(task, seed, **{**self.defaults, **(params or {})})
        if self.prep == "raw":
            return estimator
        return Pipeline([("prep", make_preprocessor(schema, self.prep, task)), ("model", estimator)])


@dataclass(frozen=True)
class Estimate:
    seconds: float
    memory_mb: float


FAMILIES: dict[str, Family] = {}


def register(name: str, *, prep: str, defaults: dict | None = None, space: Callable | None = None,
             tasks=ALL_TASKS, requires: tuple[str, ...] = (), description: str = "", estimate: Callable | None = None,
             sized: Callable | None = None):
    """Register `make(task, seed, **params)` as the family `name`."""

    def decorator(make):
        FAMILIES[name] = Family(name, make, prep, dict(defaults or {}), space, frozenset(tasks), tuple(requires), description, estimate,
                                sized)
        return make

    return decorator
