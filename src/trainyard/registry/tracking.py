"""`RunLog`: the loop's metrics and events, written to the workspace store as training goes.

Step metrics are buffered and flushed at most every `flush_seconds` (and on
every event and at the end), so a dashboard sees them within a second while a
fast loop does not pay one database transaction per step.
"""

from __future__ import annotations

import time


class RunLog:
    def __init__(self, store, run_id: str, flush_seconds: float = 1.0):
        self.store = store
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self._buffer: list[tuple[int, dict]] = []
        self._last_flush = time.monotonic()

    def metrics(self, step: int, values: dict) -> None:
        self._buffer.append((step, dict(values)))
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def event(self, kind: str, message: str, data: dict | None = None) -> None:
        self.flush()
        self.store.add_event(self.run_id, kind, message, data)

    def flush(self) -> None:
        if self._buffer:
            self.store.log_metrics_many(self.run_id, self._buffer)
            self._buffer = []
        self._last_flush = time.monotonic()
