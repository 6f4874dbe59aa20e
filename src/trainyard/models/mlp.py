"""Tabular MLP: numbers standardised (with missing-value indicators), categories through embeddings.

It eats the "tree" preprocessing's output (numeric columns with NaN, pandas
categoricals), so `trainyard train data.csv --target y --include mlp` needs no
extra preprocessing step. Batches are slices of tensors held in memory.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from trainyard.models.inputs import check_features, check_target
from trainyard.models.neural import NeuralEstimator, RunHooks, holdout_rows
from trainyard.models.registry import register
from trainyard.tasks import Task


def _net(n_numeric: int, cardinalities: list[int], hidden: tuple, dropout: float, n_out: int):
    import torch
    from torch import nn

    class TabularNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings = nn.ModuleList(nn.Embedding(c, min(32, (c + 1) // 2 + 1)) for c in cardinalities)
            width = n_numeric + sum(e.embedding_dim for e in self.embeddings)
            layers = []
            for h in hidden:
                layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(dropout)]
                width = h
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(width, n_out)

        def forward(self, x_num, x_cat):
            parts = [x_num] + [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
            return self.head(self.body(torch.cat(parts, dim=1)))

    return TabularNet()


class MLP(NeuralEstimator):
    """Tabular MLP; `task` "regression" makes it a regressor, anything else a classifier (labels of any type)."""

    LOOP_DEFAULTS = {"epochs": 40, "lr": 2e-3, "weight_decay": 1e-4, "patience": 6}

    def __init__(self, task: str = "binary", hidden: tuple = (256, 128), dropout: float = 0.1, batch_size: int = 256,
                 validation_fraction: float = 0.1, random_state: int = 0, loop=None, time_budget_s: float | None = None):
        self._store_params(locals())

    @property
    def _regression(self) -> bool:
        return Task(self.task) is Task.REGRESSION

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing numbers: the training mean plus a missing-value indicator
        if self._regression:
            tags.estimator_type, tags.regressor_tags = "regressor", RegressorTags()
        else:
            tags.estimator_type, tags.classifier_tags = "classifier", ClassifierTags()
        return tags

    # encoding ---------------------------------------------------------------
    def _fit_encoding(self, X: pd.DataFrame) -> None:
        self.cat_cols_ = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        self.num_cols_ = [c for c in X.columns if c not in self.cat_cols_]
        num = X[self.num_cols_].to_numpy(dtype=np.float64) if self.num_cols_ else np.zeros((len(X), 0))
        self.num_mean_ = np.nan_to_num(np.nanmean(num, axis=0)) if len(num) else np.zeros(num.shape[1])
        std = np.nanstd(num, axis=0) if len(num) else np.ones(num.shape[1])
        self.num_std_ = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        self.missing_cols_ = [i for i in range(num.shape[1]) if np.isnan(num[:, i]).any()]
        self.cardinalities_ = [len(X[c].cat.categories) + 1 for c in self.cat_cols_]

    def _encode(self, X: pd.DataFrame):
        import torch

        X = pd.DataFrame(X)
        num = X[self.num_cols_].to_numpy(dtype=np.float64) if self.num_cols_ else np.zeros((len(X), 0))
        missing = np.isnan(num[:, self.missing_cols_]).astype(np.float32)
        num = np.clip(np.nan_to_num((num - self.num_mean_) / self.num_std_), -10, 10)
        x_num = torch.from_numpy(np.hstack([num.astype(np.float32), missing]))
        codes = [np.asarray(X[c].cat.codes, dtype=np.int64) + 1 if isinstance(X[c].dtype, pd.CategoricalDtype) else np.zeros(len(X), np.int64)
                 for c in self.cat_cols_]
        x_cat = torch.from_numpy(np.stack(codes, axis=1) if codes else np.zeros((len(X), 0), np.int64))
        return x_num, x_cat

    def _make_module(self):
        n_out = 1 if self._regression else len(self.classes_)
        return _net(len(self.num_cols_) + len(self.missing_cols_), self.cardinalities_, tuple(self.hidden), self.dropout, n_out)

    # fit / predict ----------------------------------------------------------
    def fit(self, X, y, eval_set=None, *, log=None, progress=None, checkpoint_dir=None, resume: bool = False):
        started = time.perf_counter()  # AutoML's time budget counts from here: importing PyTorch and encoding are part of it
        from trainyard.engine.runtime import torch_threads

        with torch_threads(1):
            return self._fit(X, y, eval_set, started, RunHooks(log, progress, checkpoint_dir, resume))

    def _fit(self, X, y, eval_set, started: float, hooks: RunHooks):
        import torch
        import torch.nn.functional as F

        X = pd.DataFrame(check_features(self, X, reset=True, allow_nan=True, min_samples=2))
        y = check_target(self, X, y, regression=self._regression)
        if eval_set is None:
            train_idx, val_idx = holdout_rows(len(X), self.validation_fraction, self.random_state)
            eval_set = (X.iloc[val_idx], y[val_idx])
            X, y = X.iloc[train_idx], y[train_idx]
        X_val, y_val = pd.DataFrame(eval_set[0]), np.asarray(eval_set[1])
        self._fit_encoding(X)
        regression = self._regression
        if regression:
            self.y_mean_, self.y_std_ = float(np.mean(y)), float(np.std(y) or 1.0)
            target = lambda v: torch.tensor((np.asarray(v, float) - self.y_mean_) / self.y_std_, dtype=torch.float32)  # noqa: E731
        else:
            self.classes_ = np.unique(np.concatenate([y, y_val]))
            if len(self.classes_) < 2:
                raise ValueError("only one class in the training rows")
            target = lambda v: torch.from_numpy(np.searchsorted(self.classes_, np.asarray(v)).astype(np.int64))  # noqa: E731
        torch.manual_seed(int(self.random_state or 0))
        self.module_ = self._make_module()
        train = (*self._encode(X), target(y))
        val = (*self._encode(X_val), target(y_val))

        def loss_fn(model, batch):
            x_num, x_cat, t = batch
            out = model(x_num, x_cat)
            return F.mse_loss(out.squeeze(1), t) if regression else F.cross_entropy(out, t)

        def evaluate(model):
            device = next(model.parameters()).device
            out = model(val[0].to(device), val[1].to(device)).float()
            t = val[2].to(device)
            if regression:
                mse = F.mse_loss(out.squeeze(1), t)
                return {"val_loss": mse.item(), "val_rmse": (mse.sqrt() * self.y_std_).item()}
            return {"val_loss": F.cross_entropy(out, t).item(), "val_accuracy": (out.argmax(1) == t).float().mean().item()}

        from trainyard.engine.batches import TensorBatches

        # AutoML's budget: the loop stops cleanly (a whole model, fewer epochs) when what is left of it is spent
        loop_seconds = None
        if self.time_budget_s:
            loop_seconds = max(float(self.time_budget_s) - (time.perf_counter() - started), 0.1 * float(self.time_budget_s))
        result = self._train(TensorBatches(train, self.batch_size), loss_fn, evaluate, hooks, time_limit=loop_seconds)
        self.stopped_by_time_ = bool(result.state.timed_out)
        return self

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self)
        if hasattr(self, "n_features_in_"):  # pickled before the inputs were recorded: it reads its columns by name, unchecked
            X = check_features(self, X, reset=False, allow_nan=True)
        from trainyard.engine.runtime import torch_threads

        x_num, x_cat = self._encode(pd.DataFrame(X))
        device = self._device()
        with torch_threads(1):
            return self._run_batches(lambda a, b: self.module_(x_num[a:b].to(device), x_cat[a:b].to(device)), len(x_num))

    @available_if(lambda self: not self._regression)
    def predict_proba(self, X) -> np.ndarray:
        import torch

        return torch.softmax(torch.from_numpy(self._forward(X)).double(), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        out = self._forward(X)
        if self._regression:
            return out[:, 0] * self.y_std_ + self.y_mean_
        return self.classes_[out.argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """R² for a regressor, accuracy for a classifier (scikit-learn's convention)."""
        metric = r2_score if self._regression else accuracy_score
        return float(metric(y, self.predict(X), sample_weight=sample_weight))


@register("mlp", prep="tree", requires=("torch", "safetensors"),
          defaults={"hidden": (256, 128), "dropout": 0.1, "epochs": 40, "lr": 2e-3, "batch_size": 256},
          description="PyTorch MLP with embeddings for categoricals, on trainyard's training loop")
def make_mlp(task: Task, seed: int, **params):
    return MLP.build(seed, {"task": task.value, **params})
