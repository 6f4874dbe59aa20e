"""The prediction log: every request's rows, outputs, model version and ids, written in batches by a
background thread so the request path only appends to a queue.

One log row per predicted row: `request_id` is the request's id for a single-row request and
`<request id>:<row index>` for the rows of a batch (the ids the response returns), so late labels can be
joined on it. If the database falls far behind, the queue (bounded) drops the newest entries and
counts them in `dropped` (shown on /metrics) rather than slowing requests down.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import queue
import sys
import threading
from typing import Any


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "item"):
        return jsonable(value.item())
    return str(value)


def encode(value: Any) -> str:
    """JSON text for the log, as `jsonable` would make it (NaN and infinities -> null, dates ISO 8601, numpy
    scalars as numbers, anything else as its str) but in C: this thread shares the GIL with the event loop."""
    import orjson

    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. an int over 64 bits
        return json.dumps(jsonable(value))


def row_ids(request_id: str, n: int) -> list[str]:
    return [request_id] if n == 1 else [f"{request_id}:{i}" for i in range(n)]


class PredictionLogger:
    def __init__(self, store, *, max_queue: int = 200_000, batch: int = 2000, interval: float = 0.5):
        self.store, self.batch, self.interval = store, batch, interval
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self.submitted = 0  # queue entries (requests) accepted
        self.done = 0  # queue entries written or given up on
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainyard-prediction-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, request_id: str, name: str, version: int, rows: list[dict], outputs: list[dict]) -> None:
        try:
            self.queue.put_nowait((request_id, name, version, rows, outputs))
            self.submitted += 1
        except queue.Full:
            self.dropped += len(rows)

    def _drain(self) -> list[tuple]:
        items = []
        try:
            while len(items) < self.batch:
                items.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        return items

    def _write(self, items: list[tuple]) -> None:
        records = []
        for request_id, name, version, rows, outputs in items:
            for rid, row, out in zip(row_ids(request_id, len(rows)), rows, outputs):
                records.append({"request_id": rid, "model_name": name, "version": version, "inputs": encode(row), "outputs": encode(out)})
        try:
            self.store.log_predictions(records, encoded=True)
            self.written += len(records)
        except Exception as exc:  # a database hiccup must not take the server down
            self.failed += len(records)
            print(f"trainyard serve: could not write {len(records)} prediction log rows: {exc}", file=sys.stderr)
        self.done += len(items)

    def _run(self) -> None:
        # Wake every `interval` seconds and write what has gathered, never once per request: a thread that
        # wakes on every put takes the GIL from the event loop hundreds of times a second, and on a busy
        # machine each hand-back can wait for the scheduler (that was a good part of the server's p99).
        while not self._stop.wait(self.interval):
            while items := self._drain():
                self._write(items)
        while items := self._drain():
            self._write(items)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (tests, shutdown); False on timeout."""
        import time

        target = self.submitted
        deadline = time.monotonic() + timeout
        while self.done < target:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
