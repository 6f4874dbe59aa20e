"""Counters and a latency histogram in the Prometheus text format (per process; no client library needed)."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self):
        self.requests: dict[tuple, int] = defaultdict(int)  # (model, version, endpoint, status) -> count
        self.rows: dict[tuple, int] = defaultdict(int)  # (model, version) -> rows predicted
        self.hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.hist_sum: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, model: str, version, endpoint: str, status: int, seconds: float, rows: int = 0) -> None:
        with self._lock:
            self.requests[(model, str(version), endpoint, str(status))] += 1
            if rows:
                self.rows[(model, str(version))] += rows
            self.hist[model][bisect.bisect_left(BUCKETS, seconds)] += 1
            self.hist_sum[model] += seconds

    def render(self, slots, logger) -> str:
        lines = [
            "# HELP trainyard_requests_total Prediction requests by model, version, endpoint and HTTP status.",
            "# TYPE trainyard_requests_total counter",
        ]
        with self._lock:
            for (model, version, endpoint, status), n in sorted(self.requests.items()):
                lines.append(f'trainyard_requests_total{{model="{_esc(model)}",version="{version}",endpoint="{endpoint}",status="{status}"}} {n}')
            lines += ["# HELP trainyard_predicted_rows_total Rows predicted.", "# TYPE trainyard_predicted_rows_total counter"]
            for (model, version), n in sorted(self.rows.items()):
                lines.append(f'trainyard_predicted_rows_total{{model="{_esc(model)}",version="{version}"}} {n}')
            lines += ["# HELP trainyard_request_seconds Time spent handling prediction requests.", "# TYPE trainyard_request_seconds histogram"]
            for model, counts in sorted(self.hist.items()):
                total = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts):
                    total += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f'trainyard_request_seconds_bucket{{model="{_esc(model)}",le="{le}"}} {total}')
                lines.append(f'trainyard_request_seconds_sum{{model="{_esc(model)}"}} {self.hist_sum[model]:.6f}')
                lines.append(f'trainyard_request_seconds_count{{model="{_esc(model)}"}} {total}')
        lines += ["# HELP trainyard_model_version The version each served reference points at now.", "# TYPE trainyard_model_version gauge"]
        for slot in slots:
            if slot.current is not None:
                lines.append(f'trainyard_model_version{{model="{_esc(slot.name)}",ref="{_esc(slot.ref)}"}} {slot.current.version}')
        lines += ["# HELP trainyard_model_swaps_total Hot swaps to a new version since start.", "# TYPE trainyard_model_swaps_total counter"]
        for slot in slots:
            lines.append(f'trainyard_model_swaps_total{{model="{_esc(slot.name)}",ref="{_esc(slot.ref)}"}} {slot.swaps}')
        lines += ["# HELP trainyard_model_refresh_failing 1 when the last attempt to follow the alias failed (the old version keeps serving).",
                  "# TYPE trainyard_model_refresh_failing gauge"]
        for slot in slots:
            lines.append(f'trainyard_model_refresh_failing{{model="{_esc(slot.name)}",ref="{_esc(slot.ref)}"}} {int(slot.last_error is not None)}')
        if logger is not None:
            lines += [
                "# HELP trainyard_prediction_log_rows_total Prediction-log rows by outcome.",
                "# TYPE trainyard_prediction_log_rows_total counter",
                f'trainyard_prediction_log_rows_total{{outcome="written"}} {logger.written}',
                f'trainyard_prediction_log_rows_total{{outcome="dropped"}} {logger.dropped}',
                f'trainyard_prediction_log_rows_total{{outcome="failed"}} {logger.failed}',
                "# HELP trainyard_prediction_log_queue Requests waiting to be written to the prediction log.",
                "# TYPE trainyard_prediction_log_queue gauge",
                f"trainyard_prediction_log_queue {logger.queue.qsize()}",
            ]
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
