"""Learning-rate schedules as a multiplier of each parameter group's initial rate.

Linear warmup, then constant, cosine decay (to `min_lr_ratio` at the last step), step decay
(x`gamma` every `step_size` steps) or reduce-on-plateau (x`plateau_factor`
after `plateau_patience` evaluations without improvement). Written here rather
than with torch's schedulers because the loop also scales the rate after a
rollback, and one multiplier with a small state is easy to checkpoint.

`replan(step, total)` moves the end of the schedule while the run goes (a
time-limited run that learns its real speed): the decay continues from where it
is at `step` and reaches its floor at the new `total`, with no jump in the rate.
"""

from __future__ import annotations

import math

from trainyard.errors import ConfigError, suggest

KINDS = ("constant", "cosine", "step", "plateau")


class Schedule:
    def __init__(self, kind: str, total_steps: int, warmup: int = 0, *, step_size: int = 1000, gamma: float = 0.1,
                 min_lr_ratio: float = 0.0, plateau_patience: int = 2, plateau_factor: float = 0.5):
        if kind not in KINDS:
            raise ConfigError(f"'{kind}' is not a learning-rate schedule.", suggest(kind, KINDS))
        self.kind, self.total, self.warmup = kind, max(1, total_steps), max(0, warmup)
        self.step_size, self.gamma, self.min_lr_ratio = max(1, step_size), gamma, min_lr_ratio
        self.plateau_patience, self.plateau_factor = plateau_patience, plateau_factor
        self.plateau_scale, self.plateau_bad = 1.0, 0
        self.anchor_step, self.anchor_progress = self.warmup, 0.0  # the decay's progress is linear from here to `total`

    @classmethod
    def from_config(cls, cfg, total_steps: int) -> "Schedule":
        warmup = int(cfg.warmup * total_steps) if 0 < cfg.warmup < 1 else int(cfg.warmup)
        return cls(cfg.schedule, total_steps, warmup, step_size=cfg.step_size, gamma=cfg.gamma, min_lr_ratio=cfg.min_lr_ratio,
                   plateau_patience=cfg.plateau_patience, plateau_factor=cfg.plateau_factor)

    def factor(self, step: int) -> float:
        """The multiplier for optimizer step `step` (0-based)."""
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if self.kind == "cosine":
            progress = self.progress(step)
            return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if self.kind == "step":
            return self.gamma ** ((step - self.warmup) // self.step_size)
        if self.kind == "plateau":
            return self.plateau_scale
        return 1.0

    def progress(self, step: int) -> float:
        """How far the decay after warmup has gone at `step`: 0 at its start, 1 at the last step (`total - 1`)."""
        if step <= self.anchor_step:
            return self.anchor_progress * max(0, step - self.warmup) / max(1, self.anchor_step - self.warmup)
        span = max(1, self.total - 1 - self.anchor_step)
        return min(1.0, self.anchor_progress + (1 - self.anchor_progress) * (step - self.anchor_step) / span)

    def replan(self, step: int, total_steps: int) -> None:
        """End the schedule at `total_steps` instead, continuing the decay from where it is at `step`."""
        if step > self.anchor_step:
            self.anchor_progress, self.anchor_step = self.progress(step), step
        self.total = max(total_steps, self.anchor_step + 1)

    def on_eval(self, improved: bool) -> None:
        if self.kind != "plateau":
            return
        self.plateau_bad = 0 if improved else self.plateau_bad + 1
        if self.plateau_bad >= self.plateau_patience:
            self.plateau_scale *= self.plateau_factor
            self.plateau_bad = 0

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "plateau_bad": self.plateau_bad, "total": self.total, "warmup": self.warmup,
                "anchor_step": self.anchor_step, "anchor_progress": self.anchor_progress}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale, self.plateau_bad = float(state["plateau_scale"]), int(state["plateau_bad"])
        if "anchor_step" in state:  # checkpoints written before re-planning existed hold only the plateau state
            self.total, self.warmup = int(state["total"]), int(state["warmup"])
            self.anchor_step, self.anchor_progress = int(state["anchor_step"]), float(state["anchor_progress"])
