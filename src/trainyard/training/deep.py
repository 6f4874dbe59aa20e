"""Neural tasks end to end: image and text classification from files to a registered model, and `resume`.

`train_deep` loads the data (image folders, idx, npz; texts in CSV / TSV /
JSONL / Parquet with labels or numeric scores, see data/texts.py), splits
train / validation / test with a seed (identical texts kept in one part), records a run (kind "deep")
whose config holds everything needed to rebuild it, fits the family on the
loop with checkpoints in the run's folder, scores the test part once and
registers the artifact. `resume(run_id)` rebuilds the same split and estimator
and continues from the last checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainyard.data.texts import TEXT_TASKS
from trainyard.data.tokens import TokenRows
from trainyard.errors import ConfigError, DataError, NotFoundError

DEEP_TASKS = {"image-classification": "cnn", "text-classification": "minilm", "text-regression": "minilm"}
MODEL_FLAGS = {"epochs", "batch_size", "lr", "lora", "lora_r", "device", "precision", "image_size", "augment", "max_length",
               "patience", "optimizer", "schedule", "grad_accum", "finetune", "width"}


@dataclass
class DeepResult:
    run_id: str
    name: str
    version: int
    task: str
    family: str
    model: object
    metrics: dict
    history: list
    split: dict
    metric: str = "accuracy"
    notes: list = field(default_factory=list)

    @property
    def test_score(self) -> float:
        return self.metrics[self.metric]


def is_deep(task: str | None, text_col: str | None = None, model: str | None = None) -> bool:
    """Does this call train a neural image/text model (rather than search tabular families)?"""
    return task in DEEP_TASKS or (task is None and (text_col is not None or model is not None))


def train_deep(data, *, task: str | None = None, target: str | None = None, text_col: str | None = None, model: str | None = None,
               name: str | None = None, seed: int = 0, test_size: float | None = None, val_size: float | None = None, workspace=None,
               progress=None, run_id: str | None = None, **params) -> DeepResult:
    """Train an image or text classifier (see the module docstring); `params` go to the family's estimator."""
    from trainyard.models.registry import get_family
    from trainyard.training.tracking import RunLog
    from trainyard.workspace import Workspace

    task = task or ("image-classification" if model in ("cnn", "mobilenetv2") else None)
    if task is not None and task not in DEEP_TASKS:
        raise ConfigError(f"'{task}' is not a neural task.", f"use --task {' or --task '.join(DEEP_TASKS)}.")
    params = {k: v for k, v in params.items() if v is not None}
    test_size, val_size = test_size or 0.2, val_size or 0.1
    family_name, model_arg = _family_for(task, model)
    family = get_family(family_name)
    if not family.available():
        raise ConfigError(f"The '{family_name}' family needs {', '.join(family.requires)}.", "pip install 'trainyard[dl]'.")
    emit = progress or (lambda kind, info: None)
    ws = Workspace.resolve(workspace)
    store = ws.store
    make_kwargs = {"model": model_arg} if model_arg else {}
    emit("stage", {"message": "loading data" if task == "image-classification" else "reading and tokenising the texts"})
    X, y, extra = _load(task, data, target, text_col, _make(family, family_name, task or "text-classification", seed, make_kwargs, params), ws)
    task = extra.get("task", task)
    parts = _split(X, y, extra.pop("test", None), seed=seed, test_size=test_size, val_size=val_size, groups=extra.get("keys"),
                   classify=task != "text-regression")
    notes = extra.get("notes", []) + parts["notes"]
    metric = "rmse" if task == "text-regression" else "accuracy"
    call = {"data": str(Path(data).resolve()), "task": task, "target": target, "text_col": extra.get("text_col"), "model": model,
            "name": name, "seed": seed, "test_size": test_size, "val_size": val_size, **params}
    model_name = name or Path(str(data).rstrip("/")).name.split(".")[0] or "model"
    if run_id is None:
        run_id = store.create_run(model_name, kind="deep", task=task, metric=metric, target=target or "label",
                                  data_source=call["data"], config=call)
        for note in notes:
            store.add_event(run_id, "note", note)
    else:
        store.update_run(run_id, status="running", pid=os.getpid(), error=None)
    emit("run", {"run_id": run_id, "task": task, "family": family_name, "sizes": parts["sizes"]})
    for note in notes:
        emit("note", {"message": note})
    try:
        estimator = _make(family, family_name, task, seed, make_kwargs, params)
        estimator.fit(parts["train"][0], parts["train"][1], eval_set=parts["val"], log=RunLog(store, run_id), progress=emit,
                      checkpoint_dir=ws.run_dir(run_id) / "checkpoints", resume=True)
        emit("stage", {"message": "scoring once on the held-out test set"})
        metrics = _test_metrics(estimator, *parts["test"], regression=task == "text-regression")
        store.log_metrics(run_id, estimator.n_steps_, {f"test_{k}": v for k, v in metrics.items()})
        emit("stage", {"message": "saving and registering the model"})
        registered = _as_registered(estimator, task, extra, target)
        version = _register(ws, registered, model_name, run_id, task, family_name, metrics, estimator, parts["sizes"], call, metric)
        store.update_run(run_id, status="finished", best_score=estimator.best_score_, best_family=family_name, model_version=version)
    except KeyboardInterrupt:
        store.update_run(run_id, status="interrupted", error="interrupted by the user; `trainyard resume " + run_id + "` continues it")
        raise
    except BaseException as exc:
        store.update_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    return DeepResult(run_id, model_name, version, task, family_name, registered, metrics, estimator.history_, parts["sizes"], metric, notes)


def resume(run_id: str, *, workspace=None, progress=None) -> DeepResult:
    """Continue a killed or interrupted neural run from its last checkpoint (same data split, same settings)."""
    from trainyard.workspace import Workspace

    ws = Workspace.resolve(workspace)
    run = ws.store.get_run(run_id)
    if run["kind"] != "deep":
        raise ConfigError(f"Run {run['id']} is a {run['kind']} run; `trainyard resume` continues image and text (neural) runs.",
                          f"continue a table run with `trainyard train DATA --resume {run['id']}`.")
    if run["status"] == "finished":
        raise ConfigError(f"Run {run['id']} already finished (model {run['name']}@{run['model_version']}).", "nothing to resume; see `trainyard runs`.")
    if run["status"] == "running":
        raise ConfigError(f"Run {run['id']} is still running (process {run['pid']}).", "wait for it, or stop it first (Ctrl-C or kill).")
    call = dict(run["config"])
    if not Path(call["data"]).exists():
        raise NotFoundError(f"The run's data {call['data']} is gone.", "put the data back at that path to resume.")
    return train_deep(call.pop("data"), workspace=ws.home, progress=progress, run_id=run["id"], **call)


def _make(family, family_name: str, task: str, seed: int, make_kwargs: dict, params: dict):
    try:
        return family.make(task, seed, **make_kwargs, **params)
    except TypeError as exc:
        raise ConfigError(f"The {family_name} model does not take that option ({exc}).", "see `trainyard train --help`: options marked [neural] differ by model.") from None


def _family_for(task: str, model: str | None) -> tuple[str, str | None]:
    if task == "image-classification":
        choice = model or "cnn"
        if choice not in ("cnn", "mobilenetv2"):
            raise ConfigError(f"'{choice}' is not an image model.", "use --model cnn (a small ResNet from scratch) or --model mobilenetv2 (pretrained).")
        return choice, None
    if model in (None, "minilm"):  # text classification or regression
        return "minilm", None
    return "minilm", model  # a local Hugging Face model folder, fine-tuned the same way


def _load(task: str, data, target, text_col, estimator, ws):
    if task == "image-classification":
        from trainyard.data.images import load_images

        train = load_images(data)
        extra = {}
        test_file = _idx_test_file(Path(data))
        if test_file is not None:  # idx folders come with their own test set (t10k-*)
            test = load_images(test_file)
            extra["test"] = (test.X, test.y)
        return train.X, np.asarray(train.y), extra
    from trainyard.data.texts import load_texts

    table = load_texts(data, target, text_col, task, tokenizer=estimator._tokenizer(), max_length=estimator.max_length,
                       cache_dir=ws.home / "cache" / "text-tokens")
    return table.texts, table.y, {"text_col": table.text_col, "frame": table.frame, "task": table.task, "notes": table.notes,
                                  "keys": table.keys}


def _idx_test_file(path: Path) -> Path | None:
    if path.is_dir():
        found = sorted(path.glob("t10k-images-idx3*"))
        return found[0] if found else None
    return None


def _split(X, y, test, *, seed: int, test_size: float, val_size: float, groups=None, classify: bool = True) -> dict:
    from trainyard.data.split import split_indices

    train_idx, val_idx, test_idx, notes = split_indices(y, seed=seed, test_size=test_size, val_size=val_size, groups=groups,
                                                        classify=classify, has_test=test is not None)
    if test is None:
        test = (_take(X, test_idx), y[test_idx])
    return {"train": (_take(X, train_idx), y[train_idx]), "val": (_take(X, val_idx), y[val_idx]), "test": test, "notes": notes,
            "sizes": {"train": len(train_idx), "val": len(val_idx), "test": len(test[1])}}


def _take(X, rows):
    if isinstance(X, TokenRows):
        return X.take(rows)
    if isinstance(X, list):
        return [X[i] for i in rows]
    return IndexView(X, rows) if isinstance(X, np.memmap) else X[rows]


class IndexView:
    """Rows `rows` of a (memory-mapped) array without copying them: indexing reads only what is asked."""

    def __init__(self, base, rows):
        self.base, self.rows = base, np.asarray(rows)
        self.shape = (len(self.rows), *base.shape[1:])
        self.dtype = base.dtype
        self.ndim = base.ndim

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item):
        from trainyard.data.images import take_rows

        return take_rows(self.base, np.atleast_1d(self.rows[item])) if not isinstance(item, int) else self.base[self.rows[item]]


def _test_metrics(estimator, X, y, regression: bool = False) -> dict:
    from trainyard.evaluation.metrics import score_all
    from trainyard.tasks import Task

    if regression:
        return score_all(Task.REGRESSION, np.asarray(y, dtype=float), estimator.predict(X))
    proba = estimator.predict_proba(X)
    codes = np.searchsorted(estimator.classes_, np.asarray(y))
    known = (codes < len(estimator.classes_)) & (estimator.classes_[np.minimum(codes, len(estimator.classes_) - 1)] == np.asarray(y))
    if not known.all():
        raise DataError("The test set has labels the model never saw in training.", "make sure every class has examples in the training data.")
    task = Task.BINARY if len(estimator.classes_) == 2 else Task.MULTICLASS
    return score_all(task, codes, proba.argmax(axis=1), proba, np.arange(len(estimator.classes_)))


def _as_registered(estimator, task: str, extra: dict, target):
    """Text models become a TrainyardModel (raw rows in, labels or scores out, like any table model); image models stay themselves."""
    if task not in TEXT_TASKS:
        return estimator
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from trainyard.data.schema import infer_schema
    from trainyard.models.model import TrainyardModel
    from trainyard.tasks import Task

    text_col = extra["text_col"]
    schema = infer_schema(extra["frame"], target, {text_col: "text"})
    pipeline = Pipeline([("text", FunctionTransformer(_text_column, kw_args={"column": text_col})), ("model", estimator)])
    if task == "text-regression":
        return TrainyardModel(pipeline, task=Task.REGRESSION, schema=schema, family="minilm", metric="rmse")
    kind = Task.BINARY if len(estimator.classes_) == 2 else Task.MULTICLASS
    return TrainyardModel(pipeline, task=kind, schema=schema, classes=estimator.classes_, family="minilm", metric="accuracy")


def _text_column(X, column: str):
    if column not in X.columns:
        raise DataError(f"The rows have no '{column}' column: the text this model reads.",
                        f"name the column holding the texts '{column}' (the rows have {', '.join(map(str, X.columns[:8])) or 'no columns'}).")
    return X[column].fillna("").astype(str).tolist()


def _register(ws, model, name, run_id, task, family, metrics, estimator, sizes, call, metric="accuracy") -> int:
    from trainyard.registry.artifact import save_artifact

    meta = {"name": name, "task": task, "family": family, "metric": metric, "classes": [str(c) for c in getattr(estimator, "classes_", [])],
            "metrics": {"test": metrics, "validation": {"best": estimator.best_score_}}, "split": sizes, "run_id": run_id,
            "params": estimator.settings(), "config": call, "training": {"steps": estimator.n_steps_, "rollbacks": estimator.rollbacks_,
                                                                             "samples_per_second": estimator.samples_per_second_}}
    directory = ws.artifacts / name / run_id
    digest = save_artifact(model, directory, meta)
    return ws.store.register_model(name, artifact_path=str(directory.relative_to(ws.home)), meta_sha256=digest, run_id=run_id,
                                   task=task, metric=metric, test_score=metrics.get(metric), metrics=meta["metrics"], family=family)
