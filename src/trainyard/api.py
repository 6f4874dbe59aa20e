"""The facade: `train`, `load`, `predict`. It composes the layers below and holds no logic of its own."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pandas as pd

import trainyard.kinds  # noqa: F401  (artifact loaders of every kind)
from trainyard.config import TrainConfig, build_config
from trainyard.data.conform import check_rows
from trainyard.data.load import load_table
from trainyard.errors import ConfigError
from trainyard.lm.settings import LMSettings
from trainyard.models.model import TrainyardModel, prediction_frame
from trainyard.rag.settings import EmbeddingSettings
from trainyard.registry import loading as registry_loading
from trainyard.registry.plan import RunResult
from trainyard.registry.workspace import Workspace
from trainyard.rl.config import RLSettings
from trainyard.runs import dispatch
from trainyard.runs.settings import NeuralSettings, kind_of
from trainyard.runs.table import leaderboard_frame  # noqa: F401  (part of the Python API)

Progress = Callable[[str, dict], None]


def train(
    data,
    target: str | None = None,
    *,
    time_limit: float | None = None,
    name: str | None = None,
    preset: str = "balanced",
    workspace: str | os.PathLike | None = None,
    progress: Progress | None = None,
    resume: str | None = None,
    clock_started: float | None = None,
    **settings,
) -> RunResult:
    """Train on a table (path or DataFrame), pick the best family on validation, test it once, register it.

    The keywords are the settings of the kind of run the task asks for, turned into that kind's config object here,
    once: TrainConfig fields for tables (metric=, include=, max_trials=, ...); with task="image-classification",
    "text-classification" or "text-regression" (or text_col=...), a neural run (NeuralSettings: model=, epochs=, lr=,
    ...); with task="causal-lm", "sft", "preference" or "reward", a language model (LMSettings: base=, size=, context=,
    lora=, ...). Every kind returns a RunResult.

    `resume="RUN_ID"` (or "last") continues a table run that was killed, from the trials it recorded, with its
    recorded settings and the rest of its time budget. With `max_trials` and no `time_limit`, only the
    trial count limits the search (so the same seed gives the same leaderboard). The time limit counts from
    `clock_started` (a `time.time()` stamp; the CLI passes its process's start) or from this call.
    """
    kind = kind_of(settings.get("task"), settings.get("text_col"), settings.get("model"))
    if kind == "rl":
        config = RLSettings.from_dict({k: v for k, v in {"name": name, "time_limit": time_limit, **settings}.items()
                                       if k != "task" and v is not None})
    elif kind == "embedding":
        config = EmbeddingSettings(**{k: v for k, v in {"name": name, **settings}.items() if k != "task" and v is not None})
    elif kind == "language-model":
        config = LMSettings.from_dict({k: v for k, v in {"name": name, "time_limit": time_limit, **settings}.items() if v is not None})
    elif kind == "deep":
        limit = {} if time_limit is None else {"time_limit": time_limit, "replan": settings.get("max_steps") is None}
        config = NeuralSettings.from_dict({"data": str(data), "target": target, "name": name, **settings, **limit})
    elif not resume:
        if target is None:
            raise ConfigError("No target column given.", "name the column to predict with --target COLUMN (target='COLUMN' in Python).")
        only_trials = time_limit is None and settings.get("max_trials") is not None
        config = build_config(target, preset, time_limit=time_limit, name=name, trial_budget_only=only_trials, **settings)
    else:
        config = None
    return run(data, config, resume=resume, workspace=workspace, progress=progress, clock_started=clock_started)


def run(data, settings: TrainConfig | NeuralSettings | LMSettings | EmbeddingSettings | RLSettings | None, *, resume: str | None = None,
        workspace: str | os.PathLike | None = None, progress: Progress | None = None, clock_started: float | None = None) -> RunResult:
    """Run the plan a config object asks for: a table search (TrainConfig; or, with `resume`, the run it continues), an
    image or text network (NeuralSettings), a language model (LMSettings)."""
    started = time.perf_counter() - (max(time.time() - clock_started, 0.0) if clock_started else 0.0)
    ws = Workspace.resolve(workspace)
    if resume:
        return dispatch.resume_table(data, resume, workspace=ws, progress=progress, started=started)
    if isinstance(settings, RLSettings):
        return dispatch.train_policy(settings, workspace=ws, progress=progress, started=clock_started)
    if isinstance(settings, EmbeddingSettings):
        return dispatch.train_encoder(data, settings, workspace=ws, progress=progress)
    if isinstance(settings, LMSettings):
        return dispatch.train_language_model(data, settings, workspace=ws, progress=progress, started=started)
    if isinstance(settings, NeuralSettings):
        return dispatch.train_neural(settings, workspace=ws, progress=progress)
    return dispatch.train_table(data, settings, workspace=ws, progress=progress, started=started)


def resume(run_id: str, *, workspace: str | os.PathLike | None = None, progress: Progress | None = None,
           clock_started: float | None = None, workers: int | None = None) -> RunResult:
    """Continue a killed or interrupted run of any kind (see `trainyard.runs.dispatch.resume`); `workers`: a
    data-parallel image run's new number of ranks."""
    started = time.perf_counter() - (max(time.time() - clock_started, 0.0) if clock_started else 0.0)
    return dispatch.resume(run_id, workspace=workspace, progress=progress, started=started, workers=workers)


def load(ref: str, workspace: str | os.PathLike | None = None) -> TrainyardModel:
    """The model NAME (latest version), NAME@VERSION or NAME@ALIAS, after verifying its files' hashes."""
    model, _ = load_with_meta(ref, workspace)
    return model


def load_with_meta(ref: str, workspace: str | os.PathLike | None = None) -> tuple[TrainyardModel, dict]:
    """(model, meta.json with its "version"): the model of any registered kind, after its hashes are checked."""
    return registry_loading.load_with_meta(ref, workspace)


def predict(ref: str, data, workspace: str | os.PathLike | None = None) -> pd.DataFrame:
    """Predictions (and class probabilities) for every row of `data`, as a DataFrame. Text in a numeric column or an
    infinite value raises a DataError naming the column and row."""
    model = load(ref, workspace)
    X, _ = check_rows(load_table(data), model.schema)
    return prediction_frame(model, X)
