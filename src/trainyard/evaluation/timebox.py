"""An evaluation that ends by a deadline: the sections every report needs run first and shrink to fit (fewer
bootstrap resamples, never under a floor); the optional ones run only when what is left covers their estimate,
and the report names each one skipped.

`train --time-limit` hands the evaluation the time left before saving; `trainyard evaluate` has no deadline.
"""

from __future__ import annotations

import time

from trainyard.evaluation.bootstrap import metric_intervals
from trainyard.evaluation.scored import Scored

MIN_RESAMPLES = 200  # below this the 2.5% / 97.5% percentiles rest on five resamples each
PILOT_RESAMPLES = 40
BOOTSTRAP_SHARE = 0.2  # of the time left, for the resamples of the main intervals
BOOTSTRAP_CALLS = 3.0  # the main intervals, per class, the threshold's and the slices' together, in units of the main


class TimeBox:
    """The evaluation's deadline (a `time.perf_counter()` value, or None for none) and what it skipped."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.skipped: list[str] = []

    @property
    def limited(self) -> bool:
        return self.deadline is not None

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.perf_counter()

    def allows(self, section: str, needs_s: float) -> bool:
        """True when the time left covers `needs_s`; else the section is recorded as skipped."""
        if self.left() >= needs_s:
            return True
        self.skipped.append(section)
        return False

    def resamples(self, scored: Scored, baseline: Scored | None, wanted: int, seed: int) -> int:
        """How many bootstrap resamples fit: `wanted` without a deadline; else timed on a pilot and scaled so
        every bootstrap of the report takes about a fifth of the time left, rounded down to 100s, at least 200."""
        if not self.limited or wanted <= MIN_RESAMPLES:
            return wanted
        t0 = time.perf_counter()
        metric_intervals(scored, baseline=baseline, n_boot=PILOT_RESAMPLES, seed=seed)
        per_resample = (time.perf_counter() - t0) / PILOT_RESAMPLES
        fits = int(BOOTSTRAP_SHARE * max(self.left(), 0.0) / max(BOOTSTRAP_CALLS * per_resample, 1e-9))
        return int(min(wanted, max(MIN_RESAMPLES, fits // 100 * 100)))

    def note(self) -> str | None:
        if not self.skipped:
            return None
        return (f"Left out to end within the time limit: {', '.join(self.skipped)}. "
                "Run `trainyard evaluate NAME --data FILE` for the full report.")
