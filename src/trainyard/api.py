"""The facade: `train`, `load`, `predict`. It composes the modules below and holds no logic of its own."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from trainyard.config import build_config
from trainyard.data.audit.gate import artifact_files, audit_for_training, check_split
from trainyard.data.audit.target import choose_class_weight
from trainyard.data.load import fingerprint, load_table, source_name
from trainyard.data.schema import check_target, infer_schema
from trainyard.data.split import split
from trainyard.errors import ConfigError, DataError
from trainyard.evaluation.holdout import class_labels, encode_labels
from trainyard.evaluation.report import EvaluationReport
from trainyard.evaluation.card import write_model_card
from trainyard.evaluation.core import EVALUATION_FILE, calibrate_on_validation, evaluation_summary, test_evaluation
from trainyard.evaluation.fairness import check_sensitive
from trainyard.evaluation.metrics import get_metric
from trainyard.models.model import TrainyardModel
from trainyard.models.registry import choose_families
from trainyard.monitor.profile import write_reference
import trainyard.kinds  # noqa: F401  (artifact loaders)
from trainyard.registry.artifact import load_artifact, save_artifact
from trainyard.tasks import DEFAULT_METRIC, check_task_fits_target, infer_task, parse_task
from trainyard.training.plan import resume_state, role_overrides, sample_weights, search_plan
from trainyard.training.search import SearchData, Trial, search
from trainyard.workspace import Workspace

Progress = Callable[[str, dict], None]


@dataclass
class TrainResult:
    run_id: str
    name: str
    version: int
    model: TrainyardModel
    leaderboard: pd.DataFrame
    metrics: dict[str, float]
    baseline: dict[str, float]
    metric: str
    task: str
    split: dict
    audit: object = None  # the data audit's AuditReport (findings, plots)
    evaluation: EvaluationReport | None = None  # the held-out test evaluation (metrics with intervals, ...)
    card_dir: Path | None = None  # where the model card was written

    @property
    def test_score(self) -> float:
        return self.metrics[self.metric]


def train(
    data,
    target: str | None = None,
    *,
    time_limit: float | None = None,
    name: str | None = None,
    preset: str = "balanced",
    workspace: str | os.PathLike | None = None,
    progress: Progress | None = None,
    resume: str | None = None,
    clock_started: float | None = None,
    **settings,
) -> TrainResult:
    """Train on a table (path or DataFrame), pick the best family on validation, test it once, register it.

    With task="image-classification" or "text-classification" (or text_col=...), the neural path trains instead
    (trainyard.training.deep.train_deep: images or texts in, a registered CNN / fine-tuned encoder out).
    With task="causal-lm", "sft" or "preference", a language model trains (trainyard.lm.train.train_language_model;
    the other keywords are LMSettings fields: base=, size=, context=, lora=, ...) and an LMResult comes back.

    `resume="RUN_ID"` (or "last") continues a run that was killed, from the trials it recorded, with its
    recorded settings and the rest of its time budget. With `max_trials` and no `time_limit`, only the
    trial count limits the search (so the same seed gives the same leaderboard). The time limit counts from
    `clock_started` (a `time.time()` stamp; the CLI passes its process's start) or from this call.
    """
    started = time.perf_counter() - (max(time.time() - clock_started, 0.0) if clock_started else 0.0)
    from trainyard.lm.train import TASKS as LM_TASKS
    from trainyard.training.deep import is_deep

    if settings.get("task") in LM_TASKS:
        from trainyard.lm.train import LMSettings, train_language_model

        lm = LMSettings.from_dict({k: v for k, v in {"name": name, "time_limit": time_limit, **settings}.items() if v is not None})
        return train_language_model(data, lm, workspace=workspace, progress=progress)

    if is_deep(settings.get("task"), settings.get("text_col"), settings.get("model")):
        from trainyard.training.deep import train_deep

        return train_deep(data, target=target, name=name, workspace=workspace, progress=progress, **settings)
    if target is None and not resume:
        raise ConfigError("No target column given.", "name the column to predict with --target COLUMN (target='COLUMN' in Python).")
    emit = progress or (lambda kind, info: None)
    unlimited = time_limit is None and settings.get("max_trials") is not None
    cfg = build_config(target, preset, time_limit=time_limit, name=name, trial_budget_only=unlimited, **settings)
    ws = Workspace.resolve(workspace)
    emit("stage", {"message": "loading data"})
    df = load_table(data)
    if resume:
        return _resume(df, resume, ws, emit, started)
    check_target(df, target)
    task = parse_task(cfg.task) or infer_task(df[target])
    check_task_fits_target(task, df[target])
    metric = get_metric(cfg.metric or DEFAULT_METRIC[task], task)
    schema = infer_schema(df, target, role_overrides(cfg, df))
    if not schema.features():
        raise DataError("No usable feature columns: every column is the target, ignored, constant or an identifier.",
                        "check the column roles with `trainyard train ... --debug`, or pass --categorical COL to keep a column.")
    families = choose_families(task, list(cfg.families), list(cfg.include), list(cfg.exclude))
    check_sensitive(list(cfg.sensitive), df.columns)
    model_name = cfg.name or _default_name(data)
    store = ws.store
    run_id = store.create_run(
        model_name, task=task.value, metric=metric.name, target=target,
        data_source=source_name(data),
        data_fingerprint=fingerprint(df), config=cfg.to_dict(),
    )
    emit("run", {"run_id": run_id, "task": task.value, "metric": metric.name, "families": [f.name for f in families]})
    with store.running(run_id):
        report = audit_for_training(df, cfg, task, store, run_id, emit)
        return _train_run(df, cfg, ws, run_id, model_name, task, metric, schema, families, emit,
                          time_limit=None if unlimited else cfg.time_limit, started=started, audit_report=report)


def _resume(df, ref: str, ws: Workspace, emit, started: float) -> TrainResult:
    """Continue an interrupted run from its recorded trials, with its recorded settings."""
    run, cfg, previous, time_left = resume_state(ws.store, ref, fingerprint(df))
    task = parse_task(run["task"])
    metric = get_metric(run["metric"], task)
    schema = infer_schema(df, cfg.target, role_overrides(cfg, df))
    families = choose_families(task, list(cfg.families), list(cfg.include), list(cfg.exclude))
    ws.store.update_run(run["id"], status="running", pid=os.getpid(), error=None, finished_at=None)
    ws.store.add_event(run["id"], "resume", f"resumed with {len(previous)} recorded trials")
    emit("run", {"run_id": run["id"], "task": task.value, "metric": metric.name, "families": [f.name for f in families],
                 "resumed": len(previous)})
    with ws.store.running(run["id"]):
        return _train_run(df, cfg, ws, run["id"], run["name"], task, metric, schema, families, emit,
                          time_limit=time_left, previous=previous, started=started)


def _train_run(df, cfg, ws, run_id, model_name, task, metric, schema, families, emit, *, time_limit, started, previous=None,
               audit_report=None) -> TrainResult:
    store = ws.store
    labelled = df[df[cfg.target].notna()]
    dropped = len(df) - len(labelled)
    if dropped and not previous:
        store.add_event(run_id, "data", f"dropped {dropped} rows with a missing target")
    features = schema.features()
    parts = split(labelled, cfg.target, task, test_size=cfg.test_size, val_size=cfg.val_size, seed=cfg.seed,
                  group_col=cfg.group_col, time_col=cfg.time_col, keep_together=features)
    if audit_report is not None:
        check_split(audit_report, parts, features, schema, cfg, store, run_id)
    class_weight = choose_class_weight(cfg.class_weight, task, labelled[cfg.target])
    classes = class_labels(labelled[cfg.target]) if task.is_classification else None
    y_of = (lambda part: encode_labels(part[cfg.target].to_numpy(), classes)) if classes is not None else (lambda part: part[cfg.target].to_numpy(dtype=float))
    w_of = (lambda part: sample_weights(part, cfg.weight_col)) if cfg.weight_col else (lambda part: None)
    data = SearchData(parts.train[features], y_of(parts.train), parts.val[features], y_of(parts.val), classes,
                      w_of(parts.train), w_of(parts.val))
    emit("stage", {"message": f"split {parts.sizes()} ({parts.strategy})"})

    def on_trial(trial: Trial) -> None:
        store.add_trial(run_id, trial.number, trial.family, **trial.record())
        emit("trial", {"trial": trial})

    spent = time.perf_counter() - started
    budget = None if time_limit is None else max(time_limit - spent, 1.0)
    # Testing, profiling and saving afterwards cost about what loading and checking the data did.
    plan = search_plan(cfg, metric, budget, n_rows=len(parts.train) + len(parts.val), after_search_s=0.8 * spent,
                       class_weight=class_weight)
    if cfg.calibrate:  # calibration needs the validation rows unseen: keep the models fitted on the training split
        plan.refit = False
    emit("plan", {"time_limit": budget, "max_trials": cfg.max_trials, "bag_folds": plan.bag_folds})
    _preload_report_modules()  # on the core the search leaves idle (small fits use one thread)
    result = search(data, schema=schema, task=task, metric=metric, families=families, plan=plan, on_trial=on_trial,
                    checkpoint_dir=ws.run_dir(run_id) / "trials", previous=previous)
    trials = result.trials
    for note in result.notes:
        store.add_event(run_id, "search", note)
    if result.estimator is None:
        failures = "; ".join(f"{t.family}: {t.message.splitlines()[0]}" for t in trials if t.message)
        raise DataError(f"No model could be trained on this data ({failures}).", "check the audit findings and column roles; rerun with --debug for details.")
    pipeline = result.estimator
    best = SimpleNamespace(family=result.family, params=result.params, val_score=result.val_score)
    # A model that never saw the validation rows: what calibration and the validation diagnostics may use.
    trial_model = None if result.refitted else TrainyardModel(pipeline, task=task, schema=schema, classes=classes, family=best.family, metric=metric.name)
    calibrated_with = None
    if cfg.calibrate and task.is_classification and trial_model is not None:
        emit("stage", {"message": "calibrating probabilities on the validation rows"})
        calibrated_with, pipeline = calibrate_on_validation(trial_model, data.X_val, data.y_val, cfg.calibrate, cfg.seed)
    model = TrainyardModel(pipeline, task=task, schema=schema, classes=classes, family=best.family, metric=metric.name)
    emit("stage", {"message": "evaluating the chosen model once on the held-out test set"})
    explain_seconds = None
    if time_limit is not None:  # permutation importance gets what is left of the limit (a little, when nothing is)
        explain_seconds = max(0.03 * time_limit, 0.4 * (time_limit - (time.perf_counter() - started)))
    report = test_evaluation(model, trial_model, parts, cfg, metric, data, best.val_score, refitted=result.refitted,
                             calibrated_with=calibrated_with, explain_seconds=explain_seconds)
    test_metrics = {r["metric"]: r["value"] for r in report["metrics"]}
    baseline = {r["metric"]: r["baseline"] for r in report["metrics"] if r.get("baseline") is not None}
    leaderboard = leaderboard_frame(trials, metric)
    meta = {
        "name": model_name, "task": task.value, "target": cfg.target, "metric": metric.name, "family": best.family,
        "params": best.params, "classes": None if classes is None else classes.tolist(), "schema": schema.to_dict(),
        "metrics": {"test": test_metrics, "baseline": baseline, "validation": {metric.name: best.val_score},
                    "intervals": {r["metric"]: [r["ci_low"], r["ci_high"]] for r in report["metrics"]}},
        "baseline_reference": report["baseline"], "evaluation": evaluation_summary(report),
        "split": {**parts.sizes(), "strategy": parts.strategy, "seed": cfg.seed},
        "class_weight": class_weight,
        "run_id": run_id, "data_fingerprint": store.get_run(run_id)["data_fingerprint"], "config": cfg.to_dict(),
    }
    evaluation_file = ws.run_dir(run_id) / "evaluation.json"
    evaluation_file.write_text(report.to_json())
    emit("stage", {"message": "saving and registering the model"})
    artifact_dir = ws.artifacts / model_name / run_id
    with tempfile.TemporaryDirectory() as tmp:  # the reference profile for `monitor` and the test evaluation, hashed with the model
        extra_files = write_reference(Path(tmp), model, pd.concat([data.X_train, data.X_val]), parts.test[features])
        extra_files[EVALUATION_FILE] = evaluation_file
        if audit_report is not None:  # the audit, for the model card and the dashboard
            meta["audit"], audit_files = artifact_files(audit_report, Path(tmp))
            extra_files = {**extra_files, **audit_files}
        digest = save_artifact(model, artifact_dir, meta, extra_files=extra_files)
    version = store.register_model(
        model_name, artifact_path=str(artifact_dir.relative_to(ws.home)), meta_sha256=digest, run_id=run_id,
        task=task.value, metric=metric.name, test_score=test_metrics.get(metric.name), metrics=meta["metrics"], family=best.family,
    )
    store.update_run(run_id, status="finished", best_score=best.val_score, best_family=best.family, model_version=version)
    emit("stage", {"message": "writing the model card"})
    card = write_model_card(ws, model_name, version, report.data, {**meta, "version": version})
    return TrainResult(run_id, model_name, version, model, leaderboard, test_metrics, baseline, metric.name, task.value, meta["split"],
                       audit=audit_report, evaluation=report, card_dir=card)


def _preload_report_modules() -> None:
    """Import what the evaluation and model card need (matplotlib) in a background thread while the search runs."""
    import threading

    def work():
        try:
            from trainyard.evaluation.plots import preload

            preload()
        except Exception:  # matplotlib missing or broken: the report says so when it gets there
            pass

    threading.Thread(target=work, name="trainyard-preload", daemon=True).start()


def leaderboard_frame(trials: list[Trial], metric) -> pd.DataFrame:
    rows = [{"trial": t.number, "family": t.family, f"val_{metric.name}": t.val_score, "fit_s": t.fit_seconds,
             "predict_ms_per_row": t.predict_ms_per_row, "memory_mb": t.memory_mb, "status": t.status,
             "params": json.dumps(t.params, sort_keys=True, default=str),
             "message": (t.message or "").splitlines()[0] if t.message else ""} for t in trials]
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    board = board.sort_values(f"val_{metric.name}", ascending=not metric.greater_is_better, na_position="last").reset_index(drop=True)
    board.index = board.index + 1
    return board


def load(ref: str, workspace: str | os.PathLike | None = None) -> TrainyardModel:
    """The model NAME (latest version), NAME@VERSION or NAME@ALIAS, after verifying its files' hashes."""
    model, _ = load_with_meta(ref, workspace)
    return model


def load_with_meta(ref: str, workspace: str | os.PathLike | None = None) -> tuple[TrainyardModel, dict]:
    ws = Workspace.resolve(workspace)
    row = ws.store.resolve_model(ref)
    model, meta = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
    meta["version"] = row["version"]
    return model, meta


def predict(ref: str, data, workspace: str | os.PathLike | None = None) -> pd.DataFrame:
    """Predictions (and class probabilities) for every row of `data`, as a DataFrame."""
    model = load(ref, workspace)
    X = load_table(data)
    return prediction_frame(model, X)


def prediction_frame(model: TrainyardModel, X: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=X.index)
    column = f"{model.target}_predicted" if model.target else "prediction"
    if model.task.is_classification:
        proba = model.predict_proba_array(X)
        out[column] = model.classes[proba.argmax(axis=1)]
        for i, c in enumerate(model.classes):
            out[f"proba_{c}"] = proba[:, i]
    else:
        out[column] = model.predict(X)
    return out


def _default_name(data) -> str:
    if isinstance(data, pd.DataFrame):
        return "model"
    stem = Path(os.fspath(data)).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "model"
