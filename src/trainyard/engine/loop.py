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
from dataclasses import asdict
from pathlib import Path

import torch

from trainyard.engine.checkpoint import Checkpoints
from trainyard.engine.config import LoopConfig, LoopResult, LoopState
from trainyard.engine.optim import make_optimizer
from trainyard.engine.pace import StepTimes
from trainyard.engine.parallel import DataParallel, batch_rows, global_batch_norm
from trainyard.engine.runtime import Device, Precision, rng_state, seed_everything, set_rng_state
from trainyard.engine.schedule import Schedule
from trainyard.errors import ConfigError, TrainyardError, suggest


class DivergenceError(TrainyardError):
    """Training kept diverging after every rollback."""


def fit(model: torch.nn.Module, batches, loss_fn: Callable, *, config: LoopConfig = LoopConfig(),
        evaluate: Callable[[torch.nn.Module], dict] | None = None, checkpoint_dir: str | Path,
        resume: bool = False, log=None, progress: Callable[[str, dict], None] | None = None,
        param_groups: list[dict] | None = None, parallel: DataParallel | None = None,
        clock: Callable[[], float] = time.perf_counter) -> LoopResult:
    """Train `model` on `batches` (see engine/batches.py) minimising `loss_fn(model, batch) -> scalar tensor`; with
    `parallel`, as one rank of a data-parallel run (engine/parallel.py). `clock` gives the seconds the time limit and
    re-planning count (the wall clock)."""
    run = _Training(model, batches, loss_fn, config, evaluate, checkpoint_dir, log, progress, param_groups, parallel, clock)
    run.start(resume)
    while not run.state.finished:
        diverged = run.epoch()
        if diverged is not None:
            run.rollback(*diverged)
    return run.finish()


class _Training:
    """One call of `fit`: the model, its optimizer, schedule and checkpoints, and the loop's state."""

    def __init__(self, model, batches, loss_fn, cfg: LoopConfig, evaluate, checkpoint_dir, log, progress, param_groups, parallel=None,
                 clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.started, self.spent_before = clock(), 0.0  # setting up (optimizer, first checkpoint) counts too
        self.device = Device.resolve(cfg.device)
        self.precision = Precision.resolve(cfg.precision, self.device)
        if evaluate is None and (cfg.patience or cfg.schedule == "plateau"):
            cfg = LoopConfig(**{**asdict(cfg), "patience": None, "schedule": "cosine" if cfg.schedule == "plateau" else cfg.schedule})
        self.cfg, self.model, self.batches, self.loss_fn, self.evaluate_fn, self.log = cfg, model, batches, loss_fn, evaluate, log
        self.emit = progress or (lambda kind, info: None)
        self.per_epoch = -(-len(batches) // cfg.grad_accum)
        self.max_total = self.per_epoch * cfg.epochs
        self.total_steps = min(cfg.max_steps or 10**12, self.max_total)
        self.parallel = parallel if parallel is not None and parallel.world > 1 else None
        if self.parallel is not None:  # batch statistics of the global batch, not of this rank's slice
            global_batch_norm(model)
        model.to(self.device.torch)
        self.optimizer = make_optimizer(model, cfg, param_groups)
        self.schedule = Schedule.from_config(cfg, self.total_steps)
        self.ckpts = Checkpoints(checkpoint_dir, keep_last=cfg.keep_last)
        self.state, self.history = LoopState(total_steps=self.total_steps), []
        self.samples, self.epoch_losses, self.timing = 0, [], StepTimes(clock=clock)

    def elapsed(self) -> float:
        """Training seconds of the whole run so far (earlier calls included)."""
        return self.spent_before + self.clock() - self.started

    def snapshot(self) -> dict:
        self.state.seconds = self.elapsed()
        return {"loop": asdict(self.state), "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "rng": rng_state(), "history": self.history, "config": asdict(self.cfg)}

    def restore(self, path: Path) -> None:
        saved = Checkpoints.load(path, self.model, self.device.type)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        set_rng_state(saved["rng"])
        self.state, self.history = LoopState(**saved["loop"]), list(saved["history"])
        if not self.cfg.replan or self.state.total_steps is None:  # the configured steps, unless the run re-plans them
            self.state.total_steps = self.schedule.total = self.total_steps

    def start(self, resume: bool) -> None:
        """Continue from the latest checkpoint, or seed everything and checkpoint step 0."""
        latest = self.ckpts.latest() if resume else None
        if latest is not None:
            self.restore(latest)
            self.spent_before = self.state.seconds
            s = self.state
            _log_event(self.log, "resume", f"resumed from step {s.step} (epoch {s.epoch}, batch {s.batch})", {"step": s.step})
        else:
            seed_everything(self.cfg.seed)
            self.ckpts.save(0, self.model, self.snapshot())
        self.skip = {tuple(p) for p in self.state.skip}
        self.model.train()

    def epoch(self) -> tuple[list, str] | None:
        """Train the rest of the current epoch; (offending batches, reason) when a step diverged."""
        state = self.state
        if state.epoch >= self.cfg.epochs or state.step >= state.total_steps:
            state.finished = True
            return None
        for pos, group, positions in self.groups():
            diverged = self.step(group, positions)
            if diverged is not None:
                return diverged
            state.batch = pos
            if self.after_step(pos):  # finished, or the epoch ended
                return None
        if not state.finished:  # the epoch ran out inside skipped batches
            state.epoch, state.batch = state.epoch + 1, 0
        return None

    def groups(self):
        """(position after the group, micro-batches, their [epoch, batch] positions) for each optimizer step left in the
        epoch; batches marked to skip (after a rollback) are left out."""
        epoch, group, positions, pos = self.state.epoch, [], [], self.state.batch
        for batch in self.batches.epoch(epoch, self.cfg.seed, start=self.state.batch):
            pos += 1
            if (epoch, pos - 1) not in self.skip:
                group.append(batch)
                positions.append([epoch, pos - 1])
            if len(group) < self.cfg.grad_accum and pos < len(self.batches):
                continue
            if not group:  # every batch of this last group is skipped
                self.state.batch = pos
                continue
            yield pos, group, positions
            group, positions = [], []

    def step(self, group: list, positions: list) -> tuple[list, str] | None:
        """One optimizer step over the accumulated micro-batches, unless a loss or the gradient diverged."""
        cfg, state, optimizer = self.cfg, self.state, self.optimizer
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * self.schedule.factor(state.step) * state.lr_scale
        losses = []
        for micro in group:
            share = 1.0
            if self.parallel is not None:  # this rank's rows; its mean loss weighted by their share of the batch
                share, micro = self.parallel.weight(micro), self.parallel.shard(micro)
            micro = self.device.move(micro)
            with self.precision.autocast(self.device):
                loss = self.loss_fn(self.model, micro)
            (loss * share / len(group)).backward()
            losses.append(loss.detach().float() * share)
            self.samples += batch_rows(micro)
        if self.parallel is not None:  # the global batch's gradient and losses, the same on every rank
            self.parallel.sum_gradients(self.model)
            losses = list(self.parallel.sum(torch.stack(losses)).unbind())
        # one host sync per optimizer step: every micro-batch's loss and the gradient norm come back together
        if cfg.clip_norm:
            losses.append(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_norm).float())
        values = torch.stack(losses).tolist()
        norm = values.pop() if cfg.clip_norm else 0.0
        diverged = _divergence(values, norm, positions, state, cfg)
        if diverged is not None:
            optimizer.zero_grad(set_to_none=True)
            return diverged
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        total = sum(v / len(group) for v in values)
        state.step += 1
        state.first_loss = total if state.first_loss is None else state.first_loss
        state.loss_ema = total if state.loss_ema is None else 0.9 * state.loss_ema + 0.1 * total
        self.epoch_losses.append(total)
        lr = optimizer.param_groups[0]["lr"]
        _log_metrics(self.log, state.step, {"train_loss": total, "lr": lr})
        self.emit("step", {"step": state.step, "total": state.total_steps, "epoch": state.epoch, "loss": total, "lr": lr})
        self.timing.mark("step")
        return None

    def after_step(self, pos: int) -> bool:
        """End of epoch, evaluation, re-planning, stopping and checkpoints after a step; True when the epoch loop ends."""
        cfg, state = self.cfg, self.state
        stop, epoch_end = False, pos >= len(self.batches)
        elapsed = self.elapsed() if self.parallel is None or cfg.time_limit is None else self.parallel.agree(self.elapsed())
        if epoch_end:
            _log_metrics(self.log, state.step, {"epoch": state.epoch, "epoch_train_loss": sum(self.epoch_losses) / max(len(self.epoch_losses), 1)})
            self.epoch_losses = []
        if self.evaluate_fn is not None and ((cfg.eval_every and state.step % cfg.eval_every == 0) or (not cfg.eval_every and epoch_end)):
            stop = self.evaluate()
            self.timing.mark("eval")
        if epoch_end:
            state.epoch, state.batch = state.epoch + 1, 0
        if cfg.replan and cfg.time_limit is not None:
            planned = self.timing.plan(state.step, cfg.time_limit - elapsed, eval_every=cfg.eval_every or self.per_epoch,
                                       checkpoint_every=cfg.checkpoint_every)
            if planned is not None:
                _replan(state, self.schedule, min(planned, self.max_total), self.log)
        out_of_time = cfg.time_limit is not None and elapsed >= cfg.time_limit
        if stop or out_of_time or state.step >= state.total_steps or state.epoch >= cfg.epochs:
            state.finished, state.stopped_early, state.timed_out = True, stop, out_of_time and not stop
        if state.best_step == state.step or state.finished or (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0):
            self.ckpts.save(state.step, self.model, self.snapshot(), best_step=state.best_step, best_score=state.best_score)
            self.timing.mark("checkpoint")
        return state.finished or epoch_end

    def evaluate(self) -> bool:
        """Evaluate, track the best, feed the plateau schedule; True when early stopping says stop."""
        cfg, state, model = self.cfg, self.state, self.model
        model.eval()
        with torch.no_grad(), self.precision.autocast(self.device):  # not inference_mode: a model may cache tensors that training reuses
            metrics = {k: float(v) for k, v in self.evaluate_fn(model).items()}
        model.train()
        if cfg.monitor not in metrics:
            raise ConfigError(f"The monitored metric '{cfg.monitor}' is not among the evaluation's metrics.", suggest(cfg.monitor, metrics))
        score = metrics[cfg.monitor]
        improved = state.best_score is None or (score > state.best_score if cfg.maximize else score < state.best_score)
        self.schedule.on_eval(improved)
        if improved:
            state.best_score, state.best_step, state.bad_evals = score, state.step, 0
        else:
            state.bad_evals += 1
        self.history.append({"step": state.step, "epoch": state.epoch, **metrics})
        _log_metrics(self.log, state.step, metrics)
        self.emit("eval", {"step": state.step, "epoch": state.epoch, "metrics": metrics, "improved": improved})
        return bool(cfg.patience) and state.bad_evals >= cfg.patience

    def rollback(self, offending: list, reason: str) -> None:
        """Back to the latest checkpoint with a lower learning rate, never to train on the offending batches again."""
        cfg, state = self.cfg, self.state
        rollbacks, scale = state.rollbacks + 1, state.lr_scale * cfg.lr_backoff
        bad = sorted({tuple(p) for p in offending} | self.skip)
        data = {"step": state.step, "epoch": state.epoch, "batches": [list(p) for p in offending], "reason": reason}
        if rollbacks > cfg.max_rollbacks:
            _log_event(self.log, "diverged", f"training diverged {rollbacks} times ({reason}); stopping", data)
            raise DivergenceError(
                f"Training diverged {rollbacks} times ({reason} at step {state.step}), even after lowering the learning rate to "
                f"{cfg.lr * scale / cfg.lr_backoff:.3g}.", "lower --lr (try 10x smaller), add gradient clipping, or check the data for broken rows.")
        self.restore(self.ckpts.latest())
        state = self.state
        state.rollbacks, state.lr_scale, state.skip = rollbacks, scale, [list(p) for p in bad]
        self.skip = set(bad)
        self.timing.reset()
        self.ckpts.save(state.step, self.model, self.snapshot(), best_step=state.best_step)  # a resume after this knows of the rollback
        message = f"{reason} at step {data['step']}: rolled back to step {state.step}, learning rate x{scale:g}, skipping batch {offending[0]}"
        _log_event(self.log, "rollback", message, {**data, "to_step": state.step, "lr_scale": scale})
        self.emit("rollback", {"message": message})

    def finish(self) -> LoopResult:
        """Flush the log, restore the best weights when asked, and hand back the state."""
        if self.log is not None:
            self.log.flush()
        state, best = self.state, self.ckpts.path(self.state.best_step)
        if self.cfg.restore_best and best is not None and state.best_step != state.step:
            Checkpoints.load(best, self.model, self.device.type)
        self.model.eval()
        return LoopResult(state, self.history, self.clock() - self.started, self.samples)


def _divergence(values: list[float], norm: float, positions: list, state: LoopState, cfg: LoopConfig) -> tuple[list, str] | None:
    """(offending batches, reason) when a micro-batch's loss is not finite or spikes, or the gradient is not finite."""
    for i, value in enumerate(values):
        if not math.isfinite(value) or _is_spike(value, state, cfg):
            return [positions[i]], "non-finite loss" if not math.isfinite(value) else f"loss spike ({value:.4g})"
    if not math.isfinite(norm):
        return positions, "non-finite gradient"
    return None


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


def _is_spike(loss: float, state: LoopState, cfg: LoopConfig) -> bool:
    """Far above the recent average and above where training started: a blow-up, not a hard batch."""
    if not cfg.spike_factor or state.loss_ema is None or state.step < 10:
        return False
    return loss > cfg.spike_factor * state.loss_ema and loss > state.first_loss


def _log_metrics(log, step: int, values: dict) -> None:
    if log is not None:
        log.metrics(step, values)


def _log_event(log, kind: str, message: str, data: dict | None = None) -> None:
    if log is not None:
        log.event(kind, message, data)
