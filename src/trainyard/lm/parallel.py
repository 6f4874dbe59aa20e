"""Data-parallel pre-training of a causal language model: the job each rank of engine/ranks.py runs. It carries the
model and the corpus's training and held-out tokens as in-memory arrays (the shards are memory maps on the driver's
disk, which other machines do not see), builds the same windows and batches as the single-process plan (the batch
order is a function of (seed, epoch), so every rank agrees on every global batch and takes its slice), and trains with
the engine's loop. Rank 0 returns the trained weights and the loop's result.

    job = CausalLMRanks.of(setup, settings, loop_config)
    weights, fitted = train_on_ranks(cluster, job, workers=2, run=run, checkpoint_dir=..., resume=...)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainyard.lm.pretrain import held_out_loss, lm_loss, windows_of
from trainyard.lm.shards import n_windows


@dataclass
class CausalLMRanks:
    model: object
    train: np.ndarray
    val: np.ndarray
    val_idx: np.ndarray
    context: int
    batch_size: int
    config: object  # the engine's LoopConfig

    @classmethod
    def of(cls, setup, config) -> "CausalLMRanks":
        """The job for a pre-training TaskSetup (lm/pretrain.py's `plan`) and the loop's config."""
        data = setup.meta["ranks"]
        return cls(setup.lm.model, np.array(data["train"]), np.array(data["val"]), np.asarray(data["val_idx"]), data["context"],
                   data["batch_size"], config)

    def __call__(self, *, parallel, log, progress, checkpoint_dir, resume):
        from trainyard.engine.batches import IndexedBatches
        from trainyard.engine.loop import fit

        train, context = self.train, self.context
        batches = IndexedBatches(n_windows(train, context), self.batch_size, lambda idx, gen: windows_of(train, idx, context))
        fitted = fit(self.model, batches, lm_loss, config=self.config, evaluate=self._evaluate, checkpoint_dir=checkpoint_dir,
                     resume=resume, log=log, progress=progress, parallel=parallel)
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}, fitted

    def _evaluate(self, model) -> dict:
        return held_out_loss(model, self.val, self.val_idx, self.context, self.batch_size)
