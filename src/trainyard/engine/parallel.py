"""Data parallelism for the training loop (one axis, like the device and the precision): each of `world` ranks
takes its slice of every global batch, gradients are summed across ranks after being weighted by each slice's share
of the batch (so they equal the gradient of the whole batch), batch normalisation uses the statistics of the whole
global batch, and every rank applies the same update. Rank 0 alone writes the checkpoints and the metric log.

    fit(model, batches, loss_fn, ..., parallel=DataParallel(rank, world))   # torch.distributed already initialised

With the same global batch and seed, N ranks follow the single-process run up to floating-point rounding
(tests/runs/test_data_parallel.py states the tolerance). On CPU the collectives are gloo's; on CUDA, NCCL's.
"""

from __future__ import annotations

import torch


class DataParallel:
    """`rows`, when given, weighs each row of a batch (a function: batch -> one count per row), for a loss that is a
    mean over something other than rows: a language model's loss over its response tokens weighs every row by its
    count of labelled tokens, so the ranks' weighted losses sum to the mean over the whole global batch's tokens."""

    def __init__(self, rank: int, world: int, rows=None):
        self.rank, self.world, self.rows = rank, world, rows

    def weighted_by(self, rows) -> "DataParallel":
        """The same rank, its share of a batch counted by `rows(batch)` (see the class docstring)."""
        return DataParallel(self.rank, self.world, rows)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def bounds(self, n: int) -> tuple[int, int]:
        """This rank's rows [lo, hi) of a global batch of n rows. A batch with fewer rows than ranks (an epoch's last) is
        taken whole by every rank, each weighted 1/world: no rank is left with no rows (a transformer cannot run on an
        empty batch, and every rank must join the same collectives)."""
        if n < self.world:
            return 0, n
        return n * self.rank // self.world, n * (self.rank + 1) // self.world

    def shard(self, batch):
        """This rank's slice of a batch: a tensor, or a tuple/list/dict of tensors with rows first; a list that holds no
        tensors is rows of Python objects (a preference batch's pairs of token lists) and is sliced as rows."""
        if isinstance(batch, torch.Tensor) or (isinstance(batch, list) and batch and not _holds_tensor(batch[0])):
            lo, hi = self.bounds(len(batch))
            return batch[lo:hi]
        if isinstance(batch, dict):
            return {k: self.shard(v) for k, v in batch.items()}
        return type(batch)(self.shard(b) for b in batch)

    def weight(self, batch) -> float:
        """This rank's share of the global batch: its loss (a mean over its rows) is scaled by it before backward."""
        n = batch_rows(batch)
        if n < self.world:
            return 1.0 / self.world
        lo, hi = self.bounds(n)
        if self.rows is None:
            return (hi - lo) / max(n, 1)
        counts = torch.as_tensor(self.rows(batch), dtype=torch.float64)
        return float(counts[lo:hi].sum() / counts.sum().clamp(min=1))

    def sum_gradients(self, model: torch.nn.Module) -> None:
        import torch.distributed as dist

        for p in model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(values)
        return values

    def agree(self, value: float) -> float:
        """Rank 0's value on every rank (the clock: every rank must stop at the same step)."""
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64)
        dist.broadcast(t, 0)
        return float(t.item())


class _SumAcrossRanks(torch.autograd.Function):
    """all_reduce(SUM) with a gradient: the gradient of a sum over ranks is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx, x):
        import torch.distributed as dist

        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        out = grad.clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm(torch.nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch across ranks (torch's SyncBatchNorm needs
    a GPU; this works on CPU with gloo): the mean, then the variance about it (two passes, as precise as one
    process's), each summed across ranks with a gradient, so the gradient is the global batch's too."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        c = x.shape[1]
        totals = _SumAcrossRanks.apply(torch.cat([x.sum((0, 2, 3)), torch.full((1,), x.numel() / c, dtype=x.dtype, device=x.device)]))
        n = totals[c]
        mean = totals[:c] / n
        centred = x - mean[None, :, None, None]
        var = _SumAcrossRanks.apply((centred * centred).sum((0, 2, 3))) / n
        with torch.no_grad():
            m = self.momentum if self.momentum is not None else 0.1
            self.running_mean.mul_(1 - m).add_(m * mean.detach())
            self.running_var.mul_(1 - m).add_(m * var.detach() * n / max(float(n) - 1, 1.0))
            self.num_batches_tracked.add_(1)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None] if self.affine else y


def global_batch_norm(module: torch.nn.Module) -> torch.nn.Module:
    """Every BatchNorm2d of `module` as a GlobalBatchNorm with the same parameters and statistics (in place)."""
    for name, child in module.named_children():
        if type(child) is torch.nn.BatchNorm2d:
            synced = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            synced.load_state_dict(child.state_dict())
            setattr(module, name, synced)
        else:
            global_batch_norm(child)
    return module


def _holds_tensor(x) -> bool:
    """Whether `x` is a tensor or a dict/tuple/list holding one (a sequence is judged by its first item)."""
    if isinstance(x, torch.Tensor):
        return True
    if isinstance(x, dict):
        return any(_holds_tensor(v) for v in x.values())
    return isinstance(x, (list, tuple)) and len(x) > 0 and _holds_tensor(x[0])


def batch_rows(batch) -> int:
    """Rows of a batch: a tensor, or a tuple/list/dict of tensors with rows first."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    if isinstance(batch, dict):
        return batch_rows(next(iter(batch.values())))
    return batch_rows(batch[0])
