"""Windows of new rows: from the prediction log (since a time, the last N rows) or from a file, and by day.

A prediction-log row holds one request: `inputs` is one row (a dict) or a batch (a list of dicts, or
{"rows": [...]}), and `outputs` the matching dict(s). Each input row becomes one row of the window, with
the request id, the model version, the time and its position in the request.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from trainyard.data.profile import category_key
from trainyard.errors import ConfigError, NotFoundError

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
META_COLUMNS = ["request_id", "version", "created_at", "row_in_request"]


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """'7d', '24h', '30m', '2w' before now, or an ISO date/time (UTC unless it says otherwise)."""
    if not text:
        return None
    now = now or datetime.now(timezone.utc)
    m = _SPAN.match(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2).lower()]: float(m.group(1))})
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ConfigError(f"'{text}' is not a time span or date.", "write e.g. --since 7d, 24h, 30m or 2026-11-01.") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").to_pydatetime()


def _as_rows(value) -> list:
    if value is None:
        return []
    if isinstance(value, dict) and isinstance(value.get("rows"), list):
        return value["rows"]
    if isinstance(value, dict) and isinstance(value.get("predictions"), list):
        return value["predictions"]
    return value if isinstance(value, list) else [value]


def log_window(store, name: str, *, since: datetime | None = None, last: int | None = None,
               version: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(inputs, outputs, meta) of the logged predictions in the window, one row per predicted row."""
    records = store.predictions(name, since=since, limit=last, version=version)
    if not records:
        when = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
        raise NotFoundError(f"No predictions of '{name}' are logged{when}.",
                            "serve the model (`trainyard serve`) so requests are logged, widen --since, or pass --data FILE.")
    inputs, outputs, meta = [], [], []
    for rec in records:
        rows_in, rows_out = _as_rows(rec["inputs"]), _as_rows(rec["outputs"])
        for i, row in enumerate(rows_in):
            inputs.append(row if isinstance(row, dict) else {})
            out = rows_out[i] if i < len(rows_out) else {}
            outputs.append(out if isinstance(out, dict) else {"prediction": out})
            meta.append((rec["request_id"], rec["version"], rec["created_at"], i))
    if last:
        inputs, outputs, meta = inputs[-last:], outputs[-last:], meta[-last:]
    meta_df = pd.DataFrame(meta, columns=META_COLUMNS)
    meta_df["created_at"] = pd.to_datetime(meta_df["created_at"], utc=True)
    return pd.DataFrame(inputs), pd.DataFrame(outputs), meta_df


def logged_prediction_columns(outputs: pd.DataFrame, pred_kinds: dict[str, str], target: str | None) -> pd.DataFrame:
    """The logged outputs in the reference's prediction columns ('predicted', 'proba_<class>'), where present."""
    out = pd.DataFrame(index=outputs.index)
    for key in ("predicted", "prediction", f"{target}_predicted", "label", "value"):
        if key in outputs.columns:
            s = outputs[key]
            out["predicted"] = s.map(lambda v: None if v is None else category_key(v)) if pred_kinds.get("predicted") == "categorical" else pd.to_numeric(s, errors="coerce")
            break
    probs = outputs["probabilities"] if "probabilities" in outputs.columns else None
    for name in pred_kinds:
        if not name.startswith("proba_"):
            continue
        cls = name[len("proba_"):]
        if name in outputs.columns:
            out[name] = pd.to_numeric(outputs[name], errors="coerce")
        elif probs is not None:
            out[name] = probs.map(lambda d: d.get(cls, np.nan) if isinstance(d, dict) else np.nan).astype(float)
    return out


def day_buckets(times: pd.Series, freq: str = "D") -> pd.Series:
    """The period (day by default) of each row, as a string label."""
    t = pd.to_datetime(times, utc=True, errors="coerce")
    return t.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(freq).astype(str)
