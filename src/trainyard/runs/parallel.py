"""Data-parallel training of an image or text network on a Ray cluster: the estimator's fit as the job of
engine/ranks.py's ranks (each on its slice of every global batch; rank 0 writes the checkpoints and the metric log and
hands the fitted estimator back). The data travels through Ray's object store as arrays, never as paths on the
driver's disk.

    estimator = fit_data_parallel(cluster, estimator, train, val, workers=2, run=run, checkpoint_dir=..., resume=True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainyard.cluster.session import Cluster
from trainyard.data.tokens import TokenRows, starts_of
from trainyard.engine.ranks import train_on_ranks
from trainyard.errors import ConfigError
from trainyard.registry.plan import RunContext


class EstimatorFit:
    """One rank's fit of a neural estimator (its `fit` takes `parallel=`): the job each rank runs."""

    def __init__(self, estimator, data: tuple):
        self.estimator, self.data = estimator, data

    def __call__(self, *, parallel, log, progress, checkpoint_dir, resume):
        X, y, X_val, y_val = self.data
        self.estimator.fit(X, y, eval_set=(X_val, y_val), log=log, progress=progress, checkpoint_dir=checkpoint_dir, resume=resume,
                           parallel=parallel)
        return self.estimator


def fit_data_parallel(cluster: Cluster, estimator, train: tuple, val: tuple, *, workers: int, run: RunContext, checkpoint_dir: Path,
                      resume: bool):
    """The estimator fitted by `workers` ranks on the cluster (rank 0's copy)."""
    job = EstimatorFit(estimator, (_array(train[0]), np.asarray(train[1]), _array(val[0]), np.asarray(val[1])))
    return train_on_ranks(cluster, job, workers=workers, run=run, checkpoint_dir=checkpoint_dir, resume=resume)


def _array(X):
    """Inputs for the object store, in memory (paths or memory maps would make every node read the driver's disk):
    image arrays, or tokenised texts."""
    if isinstance(X, TokenRows):  # only these rows' tokens, copied out of the (memory-mapped) token store
        total = int(X.lengths.sum())
        at = np.repeat(X.starts - starts_of(X.lengths), X.lengths) + np.arange(total)
        return TokenRows(np.asarray(X.ids[at]), starts_of(X.lengths), X.lengths)
    if isinstance(X, (list, tuple)):
        raise ConfigError("Data-parallel training takes images as idx or .npz arrays, not a folder of files.",
                          "convert the folder to an .npz (X, y) once, or train without --workers.")
    return np.asarray(X)
