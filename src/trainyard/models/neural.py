"""What every neural estimator shares: the loop settings, the run hooks, and pickling with safetensors.

A neural family is a scikit-learn estimator: its constructor takes its own
hyperparameters (architecture, batch size, ...) and one `loop` argument, a
`trainyard.engine.config.LoopConfig` (optimizer, learning rate, epochs, early
stopping, device, precision, ...; None: the family's tuned `LOOP_DEFAULTS`).
`fit(X, y, eval_set=..., log=, progress=, checkpoint_dir=, resume=)` trains with `trainyard.engine.loop.fit`, and
learned state ends in `_`. `run` is how a caller connects a fit to the
workspace: `log` (a RunLog), `progress` (a callback for the CLI),
`checkpoint_dir` and `resume`. Without a `checkpoint_dir` the checkpoints go
to a temporary directory removed after fit. `build(cls, seed, settings)` makes
one from the flat settings the CLI and the family registry speak (`epochs=3,
lr=1e-3, width=16, loop={"checkpoint_every": 50}`): the estimator's own go to
its constructor, the loop's into its LoopConfig.

Pickling (joblib, the artifact format) stores the torch module's weights as
safetensors bytes and rebuilds the module from the learned attributes, so an
artifact never pickles torch objects.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from sklearn.base import BaseEstimator
from trainyard.engine.config import LoopConfig

# the loop settings the neural estimators took as their own arguments before `loop` (old pickles carry them)
OLD_LOOP_PARAMS = ("epochs", "lr", "optimizer", "weight_decay", "schedule", "warmup", "patience", "grad_accum", "clip_norm",
                   "device", "precision")


def holdout_rows(n: int, fraction: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): a seeded random `fraction` held out for early stopping when no eval_set is given."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(n * fraction))
    return order[n_val:], order[:n_val]


@dataclass(frozen=True)
class RunHooks:
    """How a fit connects to a run: its metric log (a RunLog), a progress callback, the checkpoint folder (None: a
    temporary one, removed after the fit) and whether to continue from the latest checkpoint there."""

    log: object = None
    progress: object = None
    checkpoint_dir: object = None
    resume: bool = False
    parallel: object = None  # an engine.parallel.DataParallel: this fit is one rank of a data-parallel run


class NeuralEstimator(BaseEstimator):
    """Base of the neural families; subclasses define __init__ (their own settings, `loop`), fit and _make_module."""

    LOOP_DEFAULTS: dict = {}  # this family's tuned loop settings, where they differ from LoopConfig's defaults

    def _store_params(self, values: dict) -> None:
        """__init__ stores its keyword arguments unchanged (the scikit-learn contract): `self._store_params(locals())`."""
        for name, value in values.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _loop_defaults(self) -> dict:
        return dict(self.LOOP_DEFAULTS)

    def default_loop(self, **changes):
        """This family's LoopConfig (its LOOP_DEFAULTS) with `changes`: `MLP(loop=MLP().default_loop(epochs=5))`."""
        return LoopConfig.from_dict({**self._loop_defaults(), **changes})

    def loop_config(self, monitor: str = "val_loss", time_limit: float | None = None):
        """The LoopConfig a fit runs with: `loop` (or the defaults), seeded with random_state, monitoring `monitor`
        (and, for AutoML's budgeted fits, stopping cleanly after `time_limit` seconds)."""
        loop = self.loop if self.loop is not None else self.default_loop()
        loop = replace(loop, seed=int(self.random_state or 0), monitor=monitor)
        return loop if time_limit is None else replace(loop, time_limit=time_limit)

    @classmethod
    def build(cls, seed: int, settings: dict):
        """An estimator from flat settings: its constructor's own, LoopConfig fields (and a `loop` dict of more) into `loop`."""
        own = set(cls._get_param_names())
        settings = dict(settings)
        loop = {k: settings.pop(k) for k in [k for k in settings if k not in own and k in {f.name for f in fields(LoopConfig)}]}
        extra = settings.pop("loop", None)
        loop.update(asdict(extra) if isinstance(extra, LoopConfig) else extra or {})
        estimator = cls(random_state=seed, **settings)
        return estimator.set_params(loop=estimator.default_loop(**loop)) if loop else estimator

    def settings(self) -> dict:
        """get_params with the loop's settings as a plain dict (what an artifact's meta.json records)."""
        params = self.get_params()
        params["loop"] = asdict(self.loop_config())
        return params

    @contextmanager
    def _checkpoint_dir(self, checkpoint_dir):
        if checkpoint_dir is not None:
            yield checkpoint_dir
            return
        with tempfile.TemporaryDirectory(prefix="trainyard-ckpt-") as tmp:
            yield tmp

    def _train(self, batches, loss_fn, evaluate, hooks: "RunHooks", *, monitor: str = "val_loss", time_limit: float | None = None):
        from trainyard.engine.loop import fit

        loop = self.loop_config(monitor, time_limit)
        with self._checkpoint_dir(hooks.checkpoint_dir) as directory:
            result = fit(self.module_, batches, loss_fn, config=loop, evaluate=evaluate, checkpoint_dir=directory,
                         resume=hooks.resume, log=hooks.log, progress=hooks.progress, parallel=hooks.parallel)
        self.history_ = result.history
        self.n_steps_ = result.state.step
        self.rollbacks_ = result.state.rollbacks
        self.best_score_ = result.state.best_score
        self.train_seconds_ = result.seconds
        self.samples_per_second_ = result.samples / max(result.seconds, 1e-9)
        return result

    def _device(self):
        import torch

        return next(self.module_.parameters()).device if hasattr(self, "module_") else torch.device("cpu")

    def _run_batches(self, fn, n: int, batch_size: int | None = None) -> np.ndarray:
        """fn(start, stop) -> tensor, over [0, n) in batches, in eval mode without gradients; concatenated as NumPy."""
        import torch

        self.module_.eval()
        size = batch_size or max(self.batch_size or 0, 256)
        outs = []
        with torch.inference_mode():
            for start in range(0, n, size):
                outs.append(fn(start, min(n, start + size)).float().cpu())
        return torch.cat(outs).numpy() if outs else np.zeros((0,))

    # pickling: weights as safetensors bytes, the module rebuilt from learned attributes
    def __getstate__(self):
        state = dict(self.__dict__)
        module = state.pop("module_", None)
        if module is not None:
            from safetensors.torch import save

            weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            state["_weights_safetensors"] = save(_unshare(weights))
        return state

    def __setstate__(self, state):
        blob = state.pop("_weights_safetensors", None)
        old = {k: state.pop(k) for k in OLD_LOOP_PARAMS if k in state}
        self.__dict__.update(state)
        if old:  # pickled when the loop settings were the estimator's own arguments (and `loop` a dict of more)
            old = {k: v for k, v in old.items() if v is not None or k in ("patience", "clip_norm")}
            self.loop = self.default_loop(**{**old, **(state.get("loop") or {})})
        if blob is not None:
            from safetensors.torch import load

            self.module_ = self._make_module()
            self.module_.load_state_dict(load(blob))
            self.module_.eval()

    def _make_module(self):
        raise NotImplementedError


def _unshare(tensors: dict) -> dict:
    """safetensors refuses tensors sharing memory (tied weights): give each its own copy."""
    seen, out = set(), {}
    for k, v in tensors.items():
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    return out
