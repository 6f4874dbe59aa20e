"""The neural plan: image and text classification (and text regression) from files to a registered model.

`NeuralPlan` (a plan of runs/driver.py) loads the data (image folders, idx, npz; texts in CSV / TSV /
JSONL / Parquet with labels or numeric scores, see data/texts.py), splits
train / validation / test with a seed (identical texts kept in one part), records a run (kind "deep")
whose config holds everything needed to rebuild it, fits the family on the
loop with checkpoints in the run's folder, scores the test part once and
registers the artifact. `resumable_neural_run(run)` rebuilds the same split and
estimator, and the driver continues from the last checkpoint.
"""

from __future__ import annotations


import tempfile
from pathlib import Path

import numpy as np

from trainyard.cluster.address import parse_cluster, preflight
from trainyard.cluster.session import Cluster
from trainyard.data.images import load_images, take_rows
from trainyard.data.schema import infer_schema
from trainyard.data.split import split_indices
from trainyard.data.texts import TEXT_TASKS, load_texts
from trainyard.data.tokens import TokenRows
from trainyard.errors import ConfigError, DataError, NotFoundError
from trainyard.evaluation.images import pixel_baseline
from trainyard.metrics import score_all
from trainyard.models.families import get_family
from trainyard.models.model import TrainyardModel
from trainyard.registry.names import safe_stem
from trainyard.registry.plan import Registered, RunContext, RunResult, RunSpec
from trainyard.runs.image_profile import write_image_reference
from trainyard.runs.parallel import fit_data_parallel
from trainyard.runs.settings import DEEP_TASKS, NeuralSettings
from trainyard.tasks import Task



class NeuralPlan:
    """An image or text network as a plan of the run driver (see the module docstring)."""

    def __init__(self, settings: NeuralSettings):
        s = self.settings = settings
        task = s.task or ("image-classification" if s.model in ("cnn", "mobilenetv2") else None)
        if task is not None and task not in DEEP_TASKS:
            raise ConfigError(f"'{task}' is not a neural task.", f"use --task {' or --task '.join(DEEP_TASKS)}.")
        self.task = task
        self.params = s.estimator_settings()
        self.test_size, self.val_size = s.test_size or 0.2, s.val_size or 0.1
        self.family_name, model_arg = _family_for(task, s.model)
        self.family = get_family(self.family_name)
        if not self.family.available():
            raise ConfigError(f"The '{self.family_name}' family needs {', '.join(self.family.requires)}.", "pip install 'trainyard[dl]'.")
        self.make_kwargs = {"model": model_arg} if model_arg else {}
        self.metric = "rmse" if task == "text-regression" else "accuracy"
        self.name = s.name or safe_stem(Path(str(s.data).rstrip("/")).name.split(".")[0], "model")
        self.cluster = parse_cluster(s.cluster)
        preflight(self.cluster, s.workers)

    def spec(self) -> RunSpec:
        data = str(Path(self.settings.data).resolve())
        return RunSpec(self.name, "deep", self.task or "text-classification", self.metric, data_source=data,
                       target=self.settings.target or "label", config={**self.settings.to_dict(), "data": data})

    def prepare(self, run: RunContext) -> None:
        s = self.settings
        run.emit("stage", {"message": "loading data" if self.task == "image-classification" else "reading and tokenising the texts"})
        X, y, self.extra = _load(self.task, s.data, s.target, s.text_col, self._estimator(self.task or "text-classification"), run.ws)
        self.task = self.extra.get("task", self.task)
        self.metric = "rmse" if self.task == "text-regression" else "accuracy"
        self.parts = _split(X, y, self.extra.pop("test", None), seed=s.seed, test_size=self.test_size, val_size=self.val_size,
                            groups=self.extra.get("keys"), classify=self.task != "text-regression")
        self.notes = self.extra.get("notes", []) + self.parts["notes"]
        if not run.resumed:
            run.store.update_run(run.run_id, task=self.task, metric=self.metric,
                                 config={**run.store.get_run(run.run_id)["config"], "text_col": self.extra.get("text_col")})
            for note in self.notes:
                run.store.add_event(run.run_id, "note", note)
        run.emit("run", {"run_id": run.run_id, "task": self.task, "family": self.family_name, "sizes": self.parts["sizes"]})
        for note in self.notes:
            run.emit("note", {"message": note})

    def _estimator(self, task: str):
        try:
            return self.family.make(task, self.settings.seed, **self.make_kwargs, **self.params)
        except TypeError as exc:
            raise ConfigError(f"The {self.family_name} model does not take that option ({exc}).",
                              "see `trainyard train --help`: options marked [neural] differ by model.") from None

    def fit(self, run: RunContext) -> None:
        self.estimator = self._estimator(self.task)
        if self.cluster is not None:
            self._fit_on_cluster(run)
            return
        self.estimator.fit(self.parts["train"][0], self.parts["train"][1], eval_set=self.parts["val"], log=run.log(), progress=run.emit,
                           checkpoint_dir=run.run_dir / "checkpoints", resume=True)

    def _fit_on_cluster(self, run: RunContext) -> None:
        with Cluster(self.cluster) as cluster:
            workers = self.settings.workers or cluster.cpus()
            nodes = cluster.nodes()
            run.store.add_event(run.run_id, "cluster", f"data-parallel on {workers} worker{'s' if workers != 1 else ''}; Ray nodes: " + ", ".join(n.id for n in nodes))
            self.estimator = fit_data_parallel(cluster, self.estimator, self.parts["train"], self.parts["val"], workers=workers, run=run,
                                               checkpoint_dir=run.run_dir / "checkpoints", resume=True)

    def evaluate(self, run: RunContext) -> dict[str, float]:
        run.emit("stage", {"message": "scoring once on the held-out test set"})
        metrics = _test_metrics(self.estimator, *self.parts["test"], regression=self.task == "text-regression")
        if self.task == "image-classification":  # the simple baseline it has to beat, said out loud when it does not
            metrics["pixel_baseline_accuracy"] = pixel_baseline(*self.parts["train"], *self.parts["test"])
            if metrics["accuracy"] < metrics["pixel_baseline_accuracy"]:
                note = (f"The {self.family_name} model ({metrics['accuracy']:.3f} test accuracy) loses to a logistic regression on "
                        f"16x16 grey pixels ({metrics['pixel_baseline_accuracy']:.3f}): train longer (--epochs) or try --model mobilenetv2.")
                self.notes.append(note)
                run.store.add_event(run.run_id, "note", note)
                run.emit("note", {"message": note})
        run.store.log_metrics(run.run_id, self.estimator.n_steps_, {f"test_{k}": v for k, v in metrics.items()})
        return metrics

    def register(self, run: RunContext, metrics: dict[str, float]) -> Registered:
        est = self.estimator
        self.registered = _as_registered(est, self.task, self.extra, self.settings.target)
        meta = {"task": self.task, "family": self.family_name, "metric": self.metric, "classes": [str(c) for c in getattr(est, "classes_", [])],
                "metrics": {"test": metrics, "validation": {"best": est.best_score_}}, "split": self.parts["sizes"],
                "params": est.settings(), "config": run.store.get_run(run.run_id)["config"],
                "training": {"steps": est.n_steps_, "rollbacks": est.rollbacks_, "samples_per_second": est.samples_per_second_}}
        with tempfile.TemporaryDirectory() as tmp:  # images: the reference `monitor` compares new images with
            files = None
            if self.task == "image-classification":
                run.emit("stage", {"message": "describing the training images for monitoring"})
                files = write_image_reference(Path(tmp), est, self.parts["train"][0], self.parts["test"][0], seed=self.settings.seed)
            version = run.register(self.registered, meta, task=self.task, metric=self.metric, metrics=meta["metrics"],
                                   family=self.family_name, test_score=metrics.get(self.metric), extra_files=files)
        return Registered(version, est.best_score_, self.family_name)

    def result(self, run: RunContext, registered: Registered, metrics: dict[str, float]) -> RunResult:
        return RunResult(run.run_id, self.name, registered.version, "deep", self.task, self.metric, metrics, model=self.registered,
                         family=self.family_name, split=self.parts["sizes"], history=self.estimator.history_, notes=self.notes)


def resumable_neural_run(run: dict, workers: int | None = None) -> NeuralPlan:
    """The plan of a killed or interrupted neural run, rebuilt from its recorded settings (same split, same estimator);
    a data-parallel run may continue on another number of `workers` (a checkpoint holds one model state, not one per rank)."""
    if run["status"] == "finished":
        raise ConfigError(f"Run {run['id']} already finished (model {run['name']}@{run['model_version']}).", "nothing to resume; see `trainyard runs`.")
    if run["status"] == "running":
        raise ConfigError(f"Run {run['id']} is still running (process {run['pid']}).", "wait for it, or stop it first (Ctrl-C or kill).")
    settings = NeuralSettings.from_dict({**run["config"], **({"workers": workers} if workers is not None else {})})
    if not Path(settings.data).exists():
        raise NotFoundError(f"The run's data {settings.data} is gone.", "put the data back at that path to resume.")
    return NeuralPlan(settings)


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
        train = load_images(data)
        extra = {}
        test_file = _idx_test_file(Path(data))
        if test_file is not None:  # idx folders come with their own test set (t10k-*)
            test = load_images(test_file)
            extra["test"] = (test.X, test.y)
        return train.X, np.asarray(train.y), extra
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
        return take_rows(self.base, np.atleast_1d(self.rows[item])) if not isinstance(item, int) else self.base[self.rows[item]]


def _test_metrics(estimator, X, y, regression: bool = False) -> dict:
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
