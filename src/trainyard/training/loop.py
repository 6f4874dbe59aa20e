"""The training loop every neural family uses (tabular MLP, CNN, transformer; language models next).

    fit(model, batches, loss_fn, config=LoopConfig(...), evaluate=..., checkpoint_dir=..., resume=True)

One optimizer step = `grad_accum` micro-batches. After each step: log, maybe
evaluate (early stopping, best checkpoint, plateau schedule), maybe checkpoint.
A NaN/inf loss or gradient, or a loss spike, rolls the run back to the last
checkpoint, lowers the learning rate, skips the offending batch and records an
event; after `max_rollbacks` the run stops with a `DivergenceError`.

Exact resume: a checkpoint holds the weights, the optimizer, the schedule, the
RNG states and the data position (epoch, batch), and the batch order of an
epoch depends only on (seed, epoch); so a run killed at any point and resumed
from its last checkpoint replays the same steps and ends bit-identical on CPU.

Time limits: `time_limit` counts the training seconds of the whole run (a
resumed run gets what its checkpoint had left) and stops it cleanly at a
checkpoint. With `replan`, the step count is only a first plan: the loop keeps
measuring its step, evaluation and checkpoint times and moves the schedule's
end to the step that finishes at the deadline (a machine that slows down gets
fewer steps, one that speeds up more), so the budget is used and the learning
rate reaches its floor as the time runs out. The plan is part of the
checkpointed state: a resumed run continues from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from trainyard.errors import ConfigError, TrainyardError, suggest
from trainyard.training.checkpoint import Checkpoints
from trainyard.training.pace import StepTimes
from trainyard.training.runtime import Device, Precision, rng_state, seed_everything, set_rng_state
from trainyard.training.schedule import Schedule


class DivergenceError(TrainyardError):
    """Training kept diverging after every rollback."""


@dataclass(frozen=True)
class LoopConfig:
    epochs: int = 10
    max_steps: int | None = None
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # constant | cosine | step | plateau (each after `warmup`)
    warmup: float = 0.0  # steps, or a fraction of all steps when < 1
    step_size: int = 1000  # step schedule: multiply by gamma every step_size steps
    gamma: float = 0.1
    min_lr_ratio: float = 0.0  # cosine floor
    plateau_patience: int = 2  # plateau schedule: evaluations without improvement before lowering
    plateau_factor: float = 0.5
    clip_norm: float | None = 1.0
    grad_accum: int = 1
    precision: str = "auto"  # auto | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    eval_every: int | None = None  # steps; None = at the end of every epoch
    monitor: str = "val_loss"
    mode: str = "auto"  # min | max | auto (max for accuracy-like names)
    patience: int | None = 5  # early stopping: evaluations without improvement
    restore_best: bool = True
    checkpoint_every: int | None = 200  # steps
    keep_last: int = 2
    spike_factor: float | None = 10.0
    lr_backoff: float = 0.5
    max_rollbacks: int = 3
    time_limit: float | None = None  # seconds of training in the whole run (earlier calls included): then stop cleanly at a checkpoint
    replan: bool = False  # with time_limit: re-plan the total steps from the measured speed so the schedule ends at the deadline

    @classmethod
    def from_dict(cls, values: dict) -> "LoopConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown training setting '{unknown[0]}'.", suggest(unknown[0], known))
        return cls(**values)

    @property
    def maximize(self) -> bool:
        if self.mode == "auto":
            return not any(word in self.monitor for word in ("loss", "error", "rmse", "mae", "perplexity"))
        return self.mode == "max"


@dataclass
class LoopState:
    """Everything about the run's progress that is not a tensor; saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch: int = 0  # batches of this epoch consumed
    lr_scale: float = 1.0  # lowered by each rollback
    loss_ema: float | None = None
    first_loss: float | None = None
    best_score: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    rollbacks: int = 0
    skip: list = field(default_factory=list)  # [epoch, batch] pairs never to be trained on again
    finished: bool = False
    stopped_early: bool = False
    timed_out: bool = False  # stopped by config.time_limit
    total_steps: int | None = None  # the plan: the schedule ends here (moved while the run goes with config.replan)
    seconds: float = 0.0  # training seconds of the whole run up to this checkpoint (earlier calls included)


@dataclass
class LoopResult:
    state: LoopState
    history: list[dict]  # one row per evaluation
    seconds: float  # of this call
    samples: int


def fit(model: torch.nn.Module, batches, loss_fn: Callable, *, config: LoopConfig = LoopConfig(),
        evaluate: Callable[[torch.nn.Module], dict] | None = None, checkpoint_dir: str | Path,
        resume: bool = False, log=None, progress: Callable[[str, dict], None] | None = None,
        param_groups: list[dict] | None = None) -> LoopResult:
    """Train `model` on `batches` (see train/batches.py) minimising `loss_fn(model, batch) -> scalar tensor`."""
    cfg = config
    device = Device.resolve(cfg.device)
    precision = Precision.resolve(cfg.precision, device)
    emit = progress or (lambda kind, info: None)
    if evaluate is None and (cfg.patience or cfg.schedule == "plateau"):
        cfg = LoopConfig(**{**asdict(cfg), "patience": None, "schedule": "cosine" if cfg.schedule == "plateau" else cfg.schedule})
    per_epoch = -(-len(batches) // cfg.grad_accum)
    total_steps = min(cfg.max_steps or 10**12, per_epoch * cfg.epochs)
    model.to(device.torch)
    optimizer = make_optimizer(model, cfg, param_groups)
    schedule = Schedule.from_config(cfg, total_steps)
    ckpts = Checkpoints(checkpoint_dir, keep_last=cfg.keep_last)
    state, history = LoopState(total_steps=total_steps), []
    started, spent_before = time.perf_counter(), 0.0

    def elapsed() -> float:
        """Training seconds of the whole run so far."""
        return spent_before + time.perf_counter() - started

    def snapshot() -> dict:
        state.seconds = elapsed()
        return {"loop": asdict(state), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "rng": rng_state(), "history": history, "config": asdict(cfg)}

    def restore(path: Path) -> None:
        nonlocal state, history
        saved = Checkpoints.load(path, model, device.type)
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        set_rng_state(saved["rng"])
        state, history = LoopState(**saved["loop"]), list(saved["history"])
        if not cfg.replan or state.total_steps is None:  # the configured steps, unless the run re-plans them
            state.total_steps = schedule.total = total_steps

    latest = ckpts.latest() if resume else None
    if latest is not None:
        restore(latest)
        spent_before = state.seconds
        _log_event(log, "resume", f"resumed from step {state.step} (epoch {state.epoch}, batch {state.batch})", {"step": state.step})
    else:
        seed_everything(cfg.seed)
        ckpts.save(0, model, snapshot())
    skip = {tuple(p) for p in state.skip}

    def evaluate_now() -> bool:
        """Evaluate, track the best, feed the plateau schedule; True when early stopping says stop."""
        model.eval()
        with torch.no_grad(), precision.autocast(device):  # not inference_mode: a model may cache tensors during eval that training reuses
            metrics = {k: float(v) for k, v in evaluate(model).items()}
        model.train()
        if cfg.monitor not in metrics:
            raise ConfigError(f"The monitored metric '{cfg.monitor}' is not among the evaluation's metrics.", suggest(cfg.monitor, metrics))
        score = metrics[cfg.monitor]
        improved = state.best_score is None or (score > state.best_score if cfg.maximize else score < state.best_score)
        schedule.on_eval(improved)
        if improved:
            state.best_score, state.best_step, state.bad_evals = score, state.step, 0
        else:
            state.bad_evals += 1
        history.append({"step": state.step, "epoch": state.epoch, **metrics})
        _log_metrics(log, state.step, metrics)
        emit("eval", {"step": state.step, "epoch": state.epoch, "metrics": metrics, "improved": improved})
        return bool(cfg.patience) and state.bad_evals >= cfg.patience

    def rollback(offending: list, reason: str) -> None:
        nonlocal skip
        rollbacks, scale = state.rollbacks + 1, state.lr_scale * cfg.lr_backoff
        bad = sorted({tuple(p) for p in offending} | skip)
        data = {"step": state.step, "epoch": state.epoch, "batches": [list(p) for p in offending], "reason": reason}
        if rollbacks > cfg.max_rollbacks:
            _log_event(log, "diverged", f"training diverged {rollbacks} times ({reason}); stopping", data)
            raise DivergenceError(
                f"Training diverged {rollbacks} times ({reason} at step {state.step}), even after lowering the learning rate to "
                f"{cfg.lr * scale / cfg.lr_backoff:.3g}.", "lower --lr (try 10x smaller), add gradient clipping, or check the data for broken rows.")
        target = ckpts.latest()
        restore(target)
        state.rollbacks, state.lr_scale, state.skip = rollbacks, scale, [list(p) for p in bad]
        skip = set(bad)
        timing.reset()
        ckpts.save(state.step, model, snapshot(), best_step=state.best_step)  # so a resume after this point knows about the rollback
        message = f"{reason} at step {data['step']}: rolled back to step {state.step}, learning rate x{scale:g}, skipping batch {offending[0]}"
        _log_event(log, "rollback", message, {**data, "to_step": state.step, "lr_scale": scale})
        emit("rollback", {"message": message})

    samples, epoch_losses = 0, []
    timing = StepTimes()
    max_total = per_epoch * cfg.epochs
    model.train()
    while not state.finished:
        if state.epoch >= cfg.epochs or state.step >= state.total_steps:
            state.finished = True
            break
        group, positions, diverged = [], [], None
        pos = state.batch
        for batch in batches.epoch(state.epoch, cfg.seed, start=state.batch):
            pos += 1
            if (state.epoch, pos - 1) not in skip:
                group.append(batch)
                positions.append([state.epoch, pos - 1])
            if len(group) < cfg.grad_accum and pos < len(batches):
                continue
            if not group:  # every batch of this last group is skipped
                state.batch = pos
                continue
            # ---- one optimizer step over the accumulated micro-batches ----
            for g in optimizer.param_groups:
                g["lr"] = g["initial_lr"] * schedule.factor(state.step) * state.lr_scale
            losses = []
            for micro in group:
                micro = device.move(micro)
                with precision.autocast(device):
                    loss = loss_fn(model, micro)
                (loss / len(group)).backward()
                losses.append(loss.detach().float())
                samples += _batch_len(micro)
            # one host sync per optimizer step: every micro-batch's loss and the gradient norm come back together
            checks = losses
            if cfg.clip_norm:
                checks = losses + [torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm).float()]
            values = torch.stack(checks).tolist()
            norm = values.pop() if cfg.clip_norm else 0.0
            for i, value in enumerate(values):
                if not math.isfinite(value) or _is_spike(value, state, cfg):
                    diverged = ([positions[i]], "non-finite loss" if not math.isfinite(value) else f"loss spike ({value:.4g})")
                    break
            if diverged is None and not math.isfinite(norm):
                diverged = (positions, "non-finite gradient")
            total = sum(v / len(group) for v in values)
            if diverged is not None:
                optimizer.zero_grad(set_to_none=True)
                break
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.batch = pos
            state.first_loss = total if state.first_loss is None else state.first_loss
            state.loss_ema = total if state.loss_ema is None else 0.9 * state.loss_ema + 0.1 * total
            epoch_losses.append(total)
            lr = optimizer.param_groups[0]["lr"]
            _log_metrics(log, state.step, {"train_loss": total, "lr": lr})
            emit("step", {"step": state.step, "total": state.total_steps, "epoch": state.epoch, "loss": total, "lr": lr})
            timing.mark("step")
            group, positions = [], []
            # ---- end of epoch, evaluation, checkpoints ----
            stop = False
            epoch_end = pos >= len(batches)
            if epoch_end:
                _log_metrics(log, state.step, {"epoch": state.epoch, "epoch_train_loss": sum(epoch_losses) / max(len(epoch_losses), 1)})
                epoch_losses = []
            if evaluate is not None and ((cfg.eval_every and state.step % cfg.eval_every == 0) or (not cfg.eval_every and epoch_end)):
                stop = evaluate_now()
                timing.mark("eval")
            if epoch_end:
                state.epoch, state.batch = state.epoch + 1, 0
            if cfg.replan and cfg.time_limit is not None:
                planned = timing.plan(state.step, cfg.time_limit - elapsed(), eval_every=cfg.eval_every or per_epoch,
                                     checkpoint_every=cfg.checkpoint_every)
                if planned is not None:
                    _replan(state, schedule, min(planned, max_total), log)
            out_of_time = cfg.time_limit is not None and elapsed() >= cfg.time_limit
            if stop or out_of_time or state.step >= state.total_steps or state.epoch >= cfg.epochs:
                state.finished, state.stopped_early, state.timed_out = True, stop, out_of_time and not stop
            best_now = state.best_step == state.step
            if best_now or state.finished or (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0):
                ckpts.save(state.step, model, snapshot(), best_step=state.best_step, best_score=state.best_score)
                timing.mark("checkpoint")
            if state.finished or epoch_end:
                break
        else:
            if diverged is None and not state.finished:  # the epoch ran out inside skipped batches
                state.epoch, state.batch = state.epoch + 1, 0
        if diverged is not None:
            rollback(*diverged)
    if log is not None:
        log.flush()
    best = ckpts.path(state.best_step)
    if cfg.restore_best and best is not None and state.best_step != state.step:
        Checkpoints.load(best, model, device.type)
    model.eval()
    return LoopResult(state, history, time.perf_counter() - started, samples)


def _replan(state: LoopState, schedule: Schedule, total: int, log) -> None:
    """Move the schedule's end to `total` steps (ignoring changes under 1% of the steps left: timing noise)."""
    total = max(total, state.step)
    if total == state.total_steps or abs(total - state.total_steps) < 0.01 * max(state.total_steps - state.step, 0):
        return
    if abs(total - state.total_steps) >= 0.1 * state.total_steps:
        _log_event(log, "replan", f"re-planned at step {state.step}: {state.total_steps} -> {total} steps to end at the time limit",
                   {"step": state.step, "from": state.total_steps, "to": total})
    schedule.replan(state.step, total)
    state.total_steps = total


def make_optimizer(model: torch.nn.Module, cfg: LoopConfig, param_groups: list[dict] | None = None) -> torch.optim.Optimizer:
    """AdamW or SGD; weight decay on matrices only (not on biases and norms), as in nanoGPT."""
    if param_groups is None:
        params = [p for p in model.parameters() if p.requires_grad]
        param_groups = [{"params": [p for p in params if p.dim() >= 2]},
                        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    groups = []
    for g in param_groups:
        if not g["params"]:
            continue
        g = {"weight_decay": cfg.weight_decay, **g}
        g["initial_lr"] = g.pop("lr", cfg.lr)
        g["lr"] = g["initial_lr"]
        groups.append(g)
    if cfg.optimizer == "adamw":
        # the fused kernel: one pass over the weights instead of a dozen (10x less optimizer time on CPU for MiniLM)
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=_can_fuse(groups) or None)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ConfigError(f"'{cfg.optimizer}' is not an optimizer.", suggest(cfg.optimizer, ["adamw", "sgd"]))


def _can_fuse(groups: list[dict]) -> bool:
    """torch's fused AdamW takes floating-point weights on one CPU or CUDA device."""
    params = [p for g in groups for p in g["params"]]
    return bool(params) and len({p.device for p in params}) == 1 and params[0].device.type in ("cpu", "cuda") \
        and all(p.is_floating_point() for p in params)


def _is_spike(loss: float, state: LoopState, cfg: LoopConfig) -> bool:
    """Far above the recent average and above where training started: a blow-up, not a hard batch."""
    if not cfg.spike_factor or state.loss_ema is None or state.step < 10:
        return False
    return loss > cfg.spike_factor * state.loss_ema and loss > state.first_loss


def _batch_len(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return len(batch)
    if isinstance(batch, dict):
        return _batch_len(next(iter(batch.values())))
    return _batch_len(batch[0])


def _log_metrics(log, step: int, values: dict) -> None:
    if log is not None:
        log.metrics(step, values)


def _log_event(log, kind: str, message: str, data: dict | None = None) -> None:
    if log is not None:
        log.event(kind, message, data)
