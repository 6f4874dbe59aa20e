"""`monitor`: one call from a model reference and a window of rows to a drift and performance report (a dict).

It composes the pieces: the reference profile stored with the model, the window (prediction log or file),
per-feature and prediction drift, the domain classifier, drift over time, and metrics once labels arrive.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from trainyard.data.images import image_files
from trainyard.data.load import load_table
from trainyard.errors import ArtifactError, ConfigError, DataError, suggest
from trainyard.monitor.domain import domain_check
from trainyard.monitor.performance import attach_labels, performance_report
from trainyard.monitor.report import to_html, to_jsonable
from trainyard.monitor.window import day_buckets, log_window, logged_prediction_columns, parse_since
from trainyard.models.image import ImageClassifier
from trainyard.registry.artifact import load_artifact
from trainyard.runs.image_profile import describe, predictions_frame
from trainyard.registry.workspace import Workspace
from trainyard.data.profile import (
    build_reference,
    count_frame,
    monitored_frame,
    prediction_columns,
    read_reference,
    reference_sample,
)
from trainyard.monitor.drift import (
    LEVELS,
    Thresholds,
    compare_profiles,
    feature_drift,
    layout,
    prediction_drift,
    status_of,
)
import trainyard.kinds  # noqa: F401  (artifact loaders)

MAX_PERIODS = 90


def resolve_monitored(store, ref: str) -> dict:
    """NAME means the version the 'production' alias points at if there is one, else the latest."""
    if "@" not in ref:
        rows = store.list_models(ref)
        for r in rows:
            if "production" in r["aliases"]:
                return r
    return store.resolve_model(ref)


def load_reference(ws: Workspace, row: dict, reference=None):
    """(model, meta, profile, sample): the verified artifact and its stored reference (or one built from `reference`)."""
    directory = ws.home / row["artifact_path"]
    model, meta = load_artifact(directory, row["meta_sha256"])
    meta["version"] = row["version"]
    if reference is not None and isinstance(model, ImageClassifier):
        raise ConfigError("--reference does not apply to an image model: its reference is the training images described when "
                          "it was registered.", "leave out --reference.")
    if reference is not None:
        ref_rows = load_table(reference)
        profile = build_reference(model, ref_rows)
        sample = reference_sample(ref_rows, {n: c["kind"] for n, c in profile["columns"].items()})
        return model, meta, profile, sample
    profile, sample = read_reference(directory)
    if profile is None:
        raise ArtifactError(f"{row['name']}@{row['version']} has no reference profile (it was trained before monitoring existed).",
                            "retrain it with this trainyard, or pass --reference TRAINING_DATA to profile its training data now.")
    return model, meta, profile, sample


def monitor(ref: str, *, data=None, since: str | None = None, last: int | None = None, labels=None, label_col: str | None = None,
            keys: list[str] | None = None, reference=None, time_col: str | None = None, by: str = "D",
            thresholds: Thresholds | None = None, domain: bool = True, workspace: str | os.PathLike | None = None) -> dict:
    """Drift (features, predictions, multivariate) and performance of a window against the model's reference."""
    th = thresholds or Thresholds()
    ws = Workspace.resolve(workspace)
    store = ws.store
    row = resolve_monitored(store, ref)
    model, meta, profile, sample = load_reference(ws, row, reference)
    kinds = {n: c["kind"] for n, c in profile["columns"].items()}
    pred_kinds = {n: c["kind"] for n, c in (profile.get("predictions") or {}).get("columns", {}).items()}
    since_at = parse_since(since)
    window: dict = {"since": since_at.isoformat() if since_at else None, "last": last}
    if isinstance(model, ImageClassifier):
        current, times, preds, meta_df = _window_from_images(model, profile, data, last, window, refused=(since, time_col, labels))
    elif data is not None:
        current, times, preds, meta_df = _window_from_data(model, data, kinds, since, since_at, last, time_col, window)
    else:
        current, times, preds, meta_df = _window_from_log(store, row, model, kinds, pred_kinds, since_at, last, window)
    if len(current) == 0:
        raise DataError("The window has no rows.", "widen --since / --last, or check --data.")
    window["rows"] = len(current)
    if times is not None and times.notna().any():
        window["first"], window["last_seen"] = times.min().isoformat(), times.max().isoformat()

    features = feature_drift(profile, current, th)
    predictions = prediction_drift(profile, preds, th)
    dom = None
    if domain and sample is not None:
        dom = domain_check(sample, monitored_frame(current, kinds), kinds, th)
        if meta_df is not None:  # name the least typical logged rows by their request id
            for r in dom.get("least_typical_rows", []):
                r["request_id"] = str(meta_df["request_id"].iloc[r["row"]])
    timeline = _timeline(profile, current, times, by, th) if times is not None else None

    label_series, label_info = None, None  # image models: late labels are refused above
    if not isinstance(model, ImageClassifier):
        label_series, label_info = attach_labels(store, row["name"], model, current, meta_df, labels, label_col, keys)
    perf = performance_report(model, meta, current, label_series, times, by) if label_series is not None else None
    if label_info:
        perf = (perf or {}) | {"labels": label_info}
    status = status_of(features, predictions, dom)
    if perf and perf.get("status"):
        status = max(status, perf["status"], key=LEVELS.__getitem__)
    return {
        "model": row["name"], "version": row["version"], "family": meta.get("family"), "task": meta.get("task"),
        "target": meta.get("target"), "generated_at": datetime.now(timezone.utc).isoformat(), "status": status,
        "exit_code": LEVELS[status], "window": window, "reference": {"rows": profile.get("n_rows"), "created_at": profile.get("created_at")},
        "thresholds": th.to_dict(), "summary": _summary(features, predictions, dom),
        "features": features, "predictions": predictions, "domain": dom, "timeline": timeline, "performance": perf,
    }


def _window_from_images(model, profile: dict, data, last, window: dict, refused: tuple):
    """(per-image description, None, the model's predictions, None) of a folder or file of new images."""
    if data is None:
        raise ConfigError("An image model is monitored on new images, not on the prediction log.", "pass --data FOLDER (or an image file).")
    if any(v is not None for v in refused):
        raise ConfigError("--since, --time-col and --labels do not apply to an image model's monitoring.",
                          "compare a folder of recent images: --data FOLDER, and --last N for the last N files in name order.")
    if "images" not in profile:
        raise ArtifactError("This image model has no image reference (it was trained before image monitoring existed).",
                            "retrain it with this trainyard to monitor its inputs.")
    files = image_files(data)
    files = files[-last:] if last else files
    window["source"] = str(data)
    return describe(model, files, profile["images"]["projection"]), None, predictions_frame(model, files), None


def _window_from_data(model, data, kinds: dict, since, since_at, last, time_col, window: dict):
    """(rows, their times or None, the model's predictions, None) of a file or DataFrame, filtered by --since/--last."""
    current = load_table(data)
    window["source"] = "<DataFrame>" if isinstance(data, pd.DataFrame) else str(data)
    times = None
    if time_col:
        if time_col not in current.columns:
            raise ConfigError(f"--time-col '{time_col}' is not in the data.", suggest(time_col, current.columns))
        times = pd.to_datetime(current[time_col], utc=True, errors="coerce")
        if since_at is not None:
            current, times = current[times >= since_at], times[times >= since_at]
    elif since:
        raise ConfigError("--since with --data needs a time column to filter on.", "add --time-col COLUMN, or drop --since.")
    if last:
        current = current.tail(last)
        times = times.loc[current.index] if times is not None else None
    _check_overlap(current, kinds)
    return current, times, prediction_columns(model, current)[0], None


def _window_from_log(store, row: dict, model, kinds: dict, pred_kinds: dict, since_at, last, window: dict):
    """(rows, their times, the predictions served for them, the log's metadata) of the prediction log's window."""
    window["source"] = "prediction log"
    current, outputs, meta_df = log_window(store, row["name"], since=since_at, last=last)
    _check_overlap(current, kinds)
    served = (meta_df["version"] == row["version"]).to_numpy()
    preds = logged_prediction_columns(outputs, pred_kinds, model.target)[served]
    if preds.shape[1] == 0 or len(preds) == 0 or preds.isna().all().all():
        # outputs not in a known form, or served by other versions: what the monitored version says of these inputs
        preds = prediction_columns(model, current)[0]
    window["versions"] = sorted(int(v) for v in meta_df["version"].dropna().unique())
    return current, meta_df["created_at"], preds, meta_df


def _check_overlap(current: pd.DataFrame, kinds: dict[str, str]) -> None:
    if not any(name in current.columns for name in kinds):
        raise DataError("None of the model's feature columns are in the new rows.",
                        f"the model expects {', '.join(list(kinds)[:10])}; check that the file or log holds the model's inputs.")


def _summary(features: list[dict], predictions: list[dict], dom: dict | None) -> dict:
    drifted = [r["column"] for r in features if r["status"] == "drift"]
    warned = [r["column"] for r in features if r["status"] == "warn"]
    return {
        "features": len(features), "drifted": drifted, "warned": warned,
        "share_drifted": len(drifted) / len(features) if features else 0.0,
        "prediction_status": status_of([], predictions, None) if predictions else None,
        "domain_auc": dom.get("auc") if dom else None,
    }


def _timeline(profile: dict, current: pd.DataFrame, times: pd.Series, by: str, th: Thresholds) -> dict | None:
    """Per-period drift score of every feature (the same tests, one period at a time)."""
    periods = day_buckets(pd.Series(times.to_numpy(), index=current.index), by)
    labels = sorted(p for p in periods.dropna().unique() if p != "NaT")
    if len(labels) < 2:
        return None
    labels = labels[-MAX_PERIODS:]
    lay = layout(profile["columns"])
    out = []
    for p in labels:
        part = current[periods == p]
        results = compare_profiles(profile["columns"], count_frame(lay, part), th)
        out.append({"period": p, "rows": len(part), "status": status_of(results, [], None),
                    "scores": {r["column"]: r.get("score", 0.0) for r in results},
                    "drifted": [r["column"] for r in results if r["status"] == "drift"]})
    return {"by": by, "periods": out}


def write_outputs(report: dict, directory: Path) -> dict[str, Path]:
    """report.json and report.html in `directory`."""
    import json


    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "report.json", "html": directory / "report.html"}
    paths["json"].write_text(json.dumps(to_jsonable(report), indent=2))
    paths["html"].write_text(to_html(report))
    return paths
