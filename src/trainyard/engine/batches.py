"""Batches for the loop: a fixed, seeded order per epoch that can start at any position.

The order of epoch `e` is a permutation drawn from (seed, e) alone, so a
checkpoint only needs (epoch, batch position) to put the data stream back
exactly where it was. Two sources:

- `TensorBatches`: tensors already in memory, fed by permuting once per epoch
  and slicing (no DataLoader, no per-row Python: the fastest path for tables).
- `IndexedBatches`: anything addressable by row indices (image files, memory-
  mapped arrays, tokenised texts); each batch is built by `load(indices)` when
  it is needed, optionally one batch ahead in a background thread, so a data
  set never has to fit in memory. Optional length bucketing groups rows of
  similar length (texts) so dynamic padding wastes little.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    if not shuffle:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=gen)


def batch_generator(seed: int, epoch: int, position: int) -> torch.Generator:
    """A generator for randomness inside one batch (augmentation), reproducible on resume."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) * 1_000_033 + int(position))


class TensorBatches:
    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool = True):
        self.tensors = tuple(tensors)
        self.n = len(self.tensors[0])
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def epoch(self, epoch: int, seed: int, start: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        order = epoch_order(self.n, seed, epoch, self.shuffle)
        data = tuple(t[order] for t in self.tensors) if self.shuffle else self.tensors
        for i in range(start, len(self)):
            yield tuple(t[i * self.batch_size:(i + 1) * self.batch_size] for t in data)


class IndexedBatches:
    def __init__(self, n: int, batch_size: int, load: Callable[[np.ndarray, torch.Generator], object], *,
                 shuffle: bool = True, lengths: np.ndarray | None = None, bucket_batches: int = 50, prefetch: bool = True):
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.load = load
        self.shuffle = shuffle
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.bucket_batches = bucket_batches
        self.prefetch = prefetch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def batches_of(self, epoch: int, seed: int) -> list[np.ndarray]:
        """Row indices of every batch of this epoch, in order."""
        order = epoch_order(self.n, seed, epoch, self.shuffle).numpy()
        if self.lengths is None:
            return [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        # length bucketing: sort rows by length inside windows of many batches, then shuffle the batches
        window = self.batch_size * self.bucket_batches
        batches = []
        for w in range(0, self.n, window):
            chunk = order[w:w + window]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        if self.shuffle:
            perm = epoch_order(len(batches), seed + 7919, epoch).numpy()
            batches = [batches[i] for i in perm]
        return batches

    def epoch(self, epoch: int, seed: int, start: int = 0) -> Iterator[object]:
        plan = self.batches_of(epoch, seed)

        def make(i):
            return self.load(np.sort(plan[i]) if self.lengths is None else plan[i], batch_generator(seed, epoch, i))

        if not self.prefetch:
            for i in range(start, len(plan)):
                yield make(i)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(make, start) if start < len(plan) else None
            for i in range(start, len(plan)):
                batch = pending.result()
                pending = pool.submit(make, i + 1) if i + 1 < len(plan) else None
                yield batch
