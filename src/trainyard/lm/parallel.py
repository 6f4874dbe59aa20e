"""Data-parallel training of a language model: the job each rank of engine/ranks.py runs, for pre-training, instruction
tuning (full or LoRA), DPO and reward models. The job carries the model and its data in memory (the corpus's training
and held-out tokens as arrays: the shards are memory maps on the driver's disk, which other machines do not see; a
fine-tuning run's tokenised examples), builds the same batches as the single-process plan (the batch order is a function of
(seed, epoch), so every rank agrees on every global batch and takes its slice) and trains with the engine's loop.
Rank 0 returns the trained weights (the adapter's alone with LoRA) and the loop's result.

    job = JOBS[task](setup, loop_config)
    weights, fitted = train_on_ranks(cluster, job, workers=2, run=run, checkpoint_dir=..., resume=...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from trainyard.lm.pretrain import held_out_loss, lm_loss, windows_of
from trainyard.lm.sft import label_tokens
from trainyard.lm.shards import n_windows


@dataclass
class LoopOnRanks:
    """The engine's loop on one rank; every part pickles (it travels through Ray's object store)."""

    model: object
    batches: object
    loss_fn: Callable
    evaluate: Callable
    config: object  # the engine's LoopConfig
    rows: Callable | None = None  # what each row of a batch counts for in the loss (DataParallel.weighted_by); None: one each

    def __call__(self, *, parallel, log, progress, checkpoint_dir, resume):
        from trainyard.engine.loop import fit

        if self.rows is not None:
            parallel = parallel.weighted_by(self.rows)
        fitted = fit(self.model, self.batches, self.loss_fn, config=self.config, evaluate=self.evaluate, checkpoint_dir=checkpoint_dir,
                     resume=resume, log=log, progress=progress, parallel=parallel)
        return trained_weights(self.model), fitted


def pretraining(setup, config) -> LoopOnRanks:
    """The job for a pre-training TaskSetup (lm/pretrain.py's `plan`): its memory-mapped tokens copied into arrays."""
    from trainyard.engine.batches import IndexedBatches

    data = setup.meta["ranks"]
    train, val, context, batch_size = np.array(data["train"]), np.array(data["val"]), data["context"], data["batch_size"]
    batches = IndexedBatches(n_windows(train, context), batch_size, _Windows(train, context))
    evaluate = partial(held_out_loss, tokens=val, idx=np.asarray(data["val_idx"]), context=context, batch_size=batch_size)
    return LoopOnRanks(setup.lm.model, batches, lm_loss, evaluate, config)


def in_memory(setup, config, rows: Callable | None = None) -> LoopOnRanks:
    """The job for a TaskSetup whose batches and evaluation hold their examples in memory: SFT's (lm/finetune.py), DPO's
    (lm/preference.py: the pairs and their reference log-probabilities) and a reward model's (lm/reward.py). DPO's and
    the reward model's losses are means over pairs (a rank's share: its share of the pairs); SFT's is a mean over
    response tokens (a rank's share: its share of those tokens, `rows=label_tokens`)."""
    return LoopOnRanks(setup.lm.model, setup.batches, setup.loss_fn, setup.evaluate, config, rows=rows)


JOBS = {"causal-lm": pretraining, "sft": partial(in_memory, rows=label_tokens), "preference": in_memory, "reward": in_memory}


def runs_on_ranks(settings) -> bool:
    """Whether a language-model run can train data-parallel: every task but RLOO (which samples as it trains)."""
    return settings.task in JOBS and not (settings.task == "preference" and settings.method == "rloo")


class _Windows:
    """IndexedBatches' `load` for pre-training: windows of in-memory tokens."""

    def __init__(self, tokens: np.ndarray, context: int):
        self.tokens, self.context = tokens, context

    def __call__(self, idx, gen=None):
        return windows_of(self.tokens, idx, self.context)


def trained_weights(model) -> dict:
    """The weights training changed (every parameter that takes a gradient: with LoRA, the adapter's) and the buffers,
    on the CPU: what rank 0 hands back to the driver's copy of the model."""
    keep = {k for k, p in model.named_parameters() if p.requires_grad} | {k for k, _ in model.named_buffers()}
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k in keep}
