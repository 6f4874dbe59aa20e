"""Every built-in model family, imported so that it registers itself, and the lookups over them.

One module per group: linear (logistic/ridge, elastic net), neighbors (k-NN), trees (decision tree, random
forest, extra trees), boosting (LightGBM, XGBoost, CatBoost), and the neural ones (mlp for tables, image, text);
the neural modules import PyTorch only when a model is built or fitted.
"""

from __future__ import annotations

from trainyard.errors import ConfigError, suggest
from trainyard.models.registry import FAMILIES, Family
from trainyard.tasks import Task
from trainyard.models import boosting, image, linear, mlp, neighbors, text, trees  # noqa: F401  (register on import)
from trainyard.models.trees import CodedTrees, NumericForest  # noqa: F401  (old pickles' import path)


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ConfigError(f"'{name}' is not a model family.", suggest(name, FAMILIES) + " See `trainyard families`.")
    return FAMILIES[name]


def all_families() -> dict[str, Family]:
    return dict(FAMILIES)


def choose_families(task: Task, preset_families: list[str], include: list[str] | None, exclude: list[str] | None) -> list[Family]:
    """The families to try, in order: --include replaces the preset's list, --exclude removes from it. A family whose
    defaults are sized for the data (LightGBM) goes first: it is the candidate every search starts from, and the one
    the final model must beat on validation."""
    for name in [*(include or []), *(exclude or [])]:
        get_family(name)  # a misspelt name is an error with suggestions
    # A preset may name families from optional modules (the PyTorch MLP): those not registered are left out.
    names = list(include) if include else [n for n in preset_families if n in all_families()]
    names = [n for n in names if n not in set(exclude or [])]
    chosen = [FAMILIES[n] for n in names if task in FAMILIES[n].tasks and FAMILIES[n].available()]
    chosen.sort(key=lambda f: f.sized is None)  # stable: the rest keep their order
    if not chosen:
        raise ConfigError(
            f"No model family left to train for a {task.value} task.",
            "check --include/--exclude, and that the families' packages are installed (`trainyard families`).",
        )
    return chosen
