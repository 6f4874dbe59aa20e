"""How fast a training run goes, for `--time-limit` re-planning (see engine/loop.py).

`StepTimes` keeps the recent training steps' durations (the median of the last
few: a machine that slows down or speeds up shows within a few steps), the last
evaluation's and the last checkpoint's, and from them the step count that ends
the run at its deadline.
"""

from __future__ import annotations

import time


class StepTimes:
    """Where the time of a run goes, for re-planning: recent training steps (median of the last few: a slower
    or faster machine shows within a few steps), the last evaluation and the last checkpoint."""

    def __init__(self, window: int = 9, clock=time.perf_counter):
        self.window, self.clock = window, clock
        self.reset()

    def reset(self) -> None:
        self.steps: list[float] = []
        self.eval = self.checkpoint = 0.0
        self.last = self.clock()

    def mark(self, kind: str) -> None:
        """The previous mark until now was one `kind` (a step: everything since the last mark, data loading included)."""
        now = self.clock()
        if kind == "step":
            self.steps = (self.steps + [now - self.last])[-self.window - 1:]
        else:
            setattr(self, kind, now - self.last)
        self.last = now

    def plan(self, step: int, seconds_left: float, *, eval_every: int, checkpoint_every: int | None) -> int | None:
        """The total steps that end the run at its deadline, or None while too few steps are measured.
        Evaluations and checkpoints are spread over the steps between them."""
        measured = self.steps[1:]  # a call's first step warms up
        if len(measured) < 3:
            return None
        per_step = sorted(measured)[len(measured) // 2]
        per_step += self.eval / eval_every + (self.checkpoint / checkpoint_every if checkpoint_every else 0.0)
        return step + max(int(seconds_left / per_step), 0)
