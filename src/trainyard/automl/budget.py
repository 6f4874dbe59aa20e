"""Time and memory budgets for the search.

`Budget` knows the deadline and how long each family really takes compared
with its prior estimate, so the scheduler can decide before a fit whether it
will finish in time. `memory_limit_mb` is what a fit may use; `PeakMemory`
measures what it did use (resident set size, sampled).
"""

from __future__ import annotations

import os
import threading
import time


class Budget:
    """A wall-clock deadline (or none: `time_limit=None` means only the trial count limits the search)."""

    def __init__(self, time_limit: float | None, reserve: float = 0.0, started: float | None = None, slowdown: float = 1.0):
        self.time_limit = time_limit
        self.reserve = reserve
        self.slowdown = max(1.0, slowdown)  # how much slower than the priors' idle machine this run measured it was before the search
        self.started = time.monotonic() if started is None else started
        self.ratios: dict[str, float] = {}  # family -> measured seconds / prior seconds

    @property
    def limited(self) -> bool:
        return self.time_limit is not None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        """Seconds left for search trials (the reserve is kept for ensembling, refitting and saving)."""
        if self.time_limit is None:
            return float("inf")
        return self.time_limit - self.reserve - self.elapsed()

    def learn(self, family: str, prior_seconds: float, measured_seconds: float) -> None:
        if prior_seconds > 0 and measured_seconds > 0:
            old = self.ratios.get(family)
            ratio = measured_seconds / prior_seconds
            self.ratios[family] = ratio if old is None else 0.5 * (old + ratio)

    def expected(self, family: str, prior_seconds: float) -> float:
        """Prior seconds scaled by what this machine showed for the family, or, for a family not fitted yet, by the
        slowest ratio seen so far or the slowdown measured before the search (a busy machine slows everything; better
        to skip than to overrun)."""
        if family in self.ratios:
            return prior_seconds * self.ratios[family]
        return prior_seconds * max([self.slowdown, *self.ratios.values()])


class CpuShare:
    """The share of a CPU this process gets, measured over a window of its own work: CPU seconds over wall seconds.
    A quiet machine gives about 1; at load 4 on 2 cores about 0.5 (the search's estimates assume 1)."""

    MIN_WALL_S = 0.5  # a shorter window says nothing
    QUIET = 0.8  # at or above this share the machine counts as idle (file and database waits lower it a little)

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def share(self) -> float | None:
        """CPU seconds per wall second since the window opened (at most 1: several threads count as one CPU), or None
        when the window is too short."""
        wall = time.perf_counter() - self.wall
        if wall < self.MIN_WALL_S:
            return None
        return min(1.0, (time.process_time() - self.cpu) / wall)

    def slowdown(self) -> float:
        """How much longer than on an idle machine a fit may take now: 1 / share, or 1 when the share looks idle."""
        share = self.share()
        return 1.0 if share is None or share >= self.QUIET else 1.0 / max(share, 0.1)


def available_memory_mb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**20


def memory_limit_mb(setting: float | None = None) -> float:
    """The memory a single fit may use: the setting, $TRAINYARD_MEMORY_LIMIT_MB, or 80% of what is free now."""
    if setting:
        return float(setting)
    env = os.environ.get("TRAINYARD_MEMORY_LIMIT_MB")
    if env:
        return float(env)
    return 0.8 * available_memory_mb()


class PeakMemory:
    """Context manager: the peak increase of this process's resident memory (MB), sampled every 20 ms."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak_mb = 0.0

    def __enter__(self):
        import psutil

        self._proc = psutil.Process()
        self._start = self._proc.memory_info().rss
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.peak_mb = (self._peak - self._start) / 2**20
        return False
