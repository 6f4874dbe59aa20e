"""`evaluate`: score a model on labelled rows and gather every section of the report.

`evaluate_frame` is the core shared by `trainyard.evaluate(...)`, `trainyard
evaluate` and the end of `trainyard train` (which adds what only training
knows: train and validation scores, and the validation rows for choosing a
calibrator and a threshold).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from trainyard.data.load import load_table
from trainyard.errors import ConfigError, DataError
from trainyard.evaluation import calibration as cal, diagnostics, explain, fairness, overfit, slices
from trainyard.evaluation.bootstrap import metric_intervals, per_class_intervals, point_metrics
from trainyard.evaluation.card import limitations
from trainyard.evaluation.holdout import encode_labels
from trainyard.evaluation.scored import Scored, baseline_reference
from trainyard.evaluation.timebox import TimeBox
from trainyard.metrics import get_metric, score_pipeline
from trainyard.registry.loading import load_with_meta
from trainyard.tasks import DEFAULT_METRIC
from trainyard.evaluation.report import EVALUATION_FILE, EvaluationReport  # noqa: F401  (EVALUATION_FILE: where callers find it)
import trainyard.kinds  # noqa: F401  (artifact loaders: evaluate takes any registered model's ref)


@dataclass
class Options:
    sensitive: list[str] = field(default_factory=list)
    slices: list[str] = field(default_factory=list)
    n_boot: int = 1000
    seed: int = 0
    confidence: float = 0.95
    learning_curve: bool = False
    explain: bool = True
    worst_k: int = 10
    threshold_metric: str = "f1"
    cost_fp: float | None = None
    cost_fn: float | None = None
    min_group: int = 20
    deadline: float | None = None  # a time.perf_counter() value the evaluation ends by (None: no limit); see timebox


@dataclass
class Training:
    """What only the training run knows: scores on its own splits, and whether the saved model was calibrated."""

    train_score: float | None = None
    val_score: float | None = None
    val_note: str = ""
    calibrated_with: str | None = None
    learning_rows: tuple | None = None  # (X, y codes) for learning curves: never the test rows


@dataclass
class Validation:
    """Rows for choosing a calibrator and a threshold, and a model that did not learn from them."""

    model: object
    X: pd.DataFrame
    y: np.ndarray  # original labels


def labelled_rows(model, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    target = model.target
    if target not in frame.columns:
        raise ConfigError(f"The data has no '{target}' column, so the model cannot be evaluated on it.",
                          "evaluate on labelled rows: the table needs the target column the model was trained on.")
    keep = frame[target].notna()
    if not keep.any():
        raise DataError(f"Every value of '{target}' is missing in the evaluation data.", "pass rows with known labels.")
    return frame[keep], int((~keep).sum())


def check_two_classes(model, frame: pd.DataFrame) -> None:
    """A classifier's evaluation data must hold at least two classes: with one, ROC AUC, log loss, permutation
    importance and most intervals are undefined."""
    if not model.task.is_classification or model.target not in frame.columns:
        return
    present = frame[model.target].dropna().astype(str).unique()
    if len(present) == 1:
        raise DataError(f"Every labelled row of the evaluation data has the class {present[0]!r}: with a single class, "
                        "ranking and probability metrics are undefined.",
                        "evaluate on rows of at least two classes (all of the model's classes if you can).")


def evaluate_frame(model, frame: pd.DataFrame, *, meta: dict | None = None, options: Options | None = None,
                   training: Training | None = None, validation: Validation | None = None, dataset: str = "evaluation data", title: str = "") -> EvaluationReport:
    options = options or Options()
    meta = meta or {}
    fairness.check_sensitive(options.sensitive, frame.columns)
    frame, dropped = labelled_rows(model, frame)
    if len(frame) < 2:
        raise DataError(f"Only {len(frame)} labelled row(s) to evaluate on.", "evaluate on at least a few dozen labelled rows.")
    features = model.features
    absent = [c for c in features if c not in frame.columns]
    X = frame.reindex(columns=features)
    y_raw = frame[model.target].to_numpy()
    t0 = time.perf_counter()
    scored = Scored.from_model(model, X, y_raw)
    predict_s = time.perf_counter() - t0
    metric = get_metric(model.metric or DEFAULT_METRIC[model.task], model.task)
    reference = meta.get("baseline_reference")
    if reference is None:
        reference = baseline_reference(model.task, y_raw, model.classes)
        reference["description"] += " - computed from the evaluation rows themselves (the training data's was not recorded), so it flatters the baseline"
    base = scored.baseline(reference)
    box = TimeBox(options.deadline)
    n_boot = box.resamples(scored, base, options.n_boot, options.seed)
    boot = dict(n_boot=n_boot, seed=options.seed, confidence=options.confidence)
    t0 = time.perf_counter()
    rows = metric_intervals(scored, baseline=base, **boot)
    boot_s = time.perf_counter() - t0  # the optional sections below are estimated in these two units
    rows.sort(key=lambda r: r["metric"] != metric.name)
    data = _header(model, meta, options, title=title, dataset=dataset, frame=frame, dropped=dropped, absent=absent, n_boot=n_boot)
    data.update(metric=metric.name, baseline=reference, metrics=rows)
    if model.task.is_classification:
        data["per_class"] = per_class_intervals(scored, **boot)
    data["overfitting"] = _overfitting(metric, rows, training, meta, dataset)
    y_codes = scored.y
    if options.learning_curve:
        lx, ly = training.learning_rows if training is not None and training.learning_rows else (X, y_codes)
        data["learning_curve"] = overfit.learning_curve(model, lx, ly, metric, seed=options.seed)
    if model.task.is_classification:
        data["calibration"] = _calibration(model, scored, training, validation, options, box, predict_s, boot_s)
    data["errors"] = _errors(scored, X, options)
    if options.explain and box.allows("explanations", 3 * predict_s + 0.3):
        data["explanations"] = _explanations(model, X, y_codes, metric, options, data["errors"]["worst_rows"], box)
    if options.sensitive:
        used = [c for c in options.sensitive if c in features]
        data["fairness"] = {"columns": [fairness.fairness_report(scored, frame[c], c, min_group=options.min_group, **boot) for c in options.sensitive],
                            "sensitive_used_as_features": used}
    data["slices"] = _slices(scored, frame, X, metric.name, options, boot, box.allows("worst slices", boot_s + 0.1))
    if box.skipped:
        data["settings"]["skipped_for_time"] = list(box.skipped)
    data["limitations"] = limitations(data) + ([box.note()] if box.skipped else [])
    return EvaluationReport(data)


def _header(model, meta: dict, options: Options, *, title: str, dataset: str, frame: pd.DataFrame, dropped: int, absent: list,
            n_boot: int) -> dict:
    """The report's first keys: what was evaluated, on what, and how the intervals were drawn."""
    return {
        "kind": "evaluation", "title": title or f"Evaluation of {meta.get('name', 'model')}" + (f"@{meta['version']}" if meta.get("version") else ""),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": _model_summary(model, meta),
        "dataset": {"name": dataset, "rows": int(len(frame)), "dropped_missing_target": dropped, "absent_feature_columns": absent},
        "settings": {"n_boot": n_boot, "seed": options.seed, "confidence": options.confidence,
                     "interval": "percentile bootstrap" + (", stratified by class" if model.task.is_classification else ""),
                     **({"n_boot_asked": options.n_boot} if n_boot != options.n_boot else {})},
    }


def _slices(scored: Scored, frame: pd.DataFrame, X: pd.DataFrame, metric: str, options: Options, boot: dict, search: bool) -> dict:
    """The user's slices, and the worst single-column slices when `search` (the time allows it)."""
    user = slices.user_slices(scored, frame, options.slices, metric, **boot) if options.slices else []
    worst = slices.worst_slices(scored, X, list(X.columns), metric, **boot) if search else {"slices": [], "skipped": "time limit"}
    return {"user": user, "worst": worst}


def _model_summary(model, meta: dict) -> dict:
    return {"name": meta.get("name"), "version": meta.get("version"), "family": model.family, "task": model.task.value,
            "target": model.target, "metric": model.metric, "features": model.features,
            "classes": None if model.classes is None else [str(c) for c in model.classes]}


def _overfitting(metric, rows, training: Training | None, meta: dict, dataset: str) -> dict:
    main = next((r for r in rows if r["metric"] == metric.name), None)
    value = None if main is None else main["value"]
    notes = []
    if training is not None:
        scores = {"train": training.train_score, "validation": training.val_score, "test": value}
        notes += [training.val_note] if training.val_note else []
    else:
        recorded = (meta.get("evaluation") or {}).get("split_scores") or {}
        scores = {k: recorded[k] for k in ("train", "validation", "test") if recorded.get(k) is not None}
        if scores:
            notes.append(f"train / validation / test are the scores recorded when the model was trained; the verdict compares training with the {dataset}")
        scores[dataset] = value
    verdict = overfit.overfitting_verdict(metric, {"train": scores.get("train"), "test": value},
                                          None if main is None else (main["ci_low"], main["ci_high"]),
                                          None if main is None else main.get("baseline"), None if main is None else main.get("beats_baseline"))
    verdict.update(scores=scores, notes=notes)
    return verdict


def _calibration(model, scored: Scored, training: Training | None, validation: Validation | None, options: Options,
                 box: TimeBox, predict_s: float, boot_s: float) -> dict:
    out = {"reliability": cal.reliability(scored)}
    if training is not None and training.calibrated_with:
        out["applied"] = training.calibrated_with
    needs = 0.0 if validation is None else 3 * predict_s * len(validation.y) / max(scored.n, 1) + 0.5 * boot_s + 0.1
    if validation is not None and box.allows("calibration choice and threshold", needs):
        y_val = encode_labels(np.asarray(validation.y), model.classes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["choice"] = cal.choose_calibration(validation.model, validation.X, y_val, seed=options.seed)
        if model.task.value == "binary":
            val_scored = Scored.from_model(validation.model, validation.X, validation.y)
            tuned = cal.tune_threshold(val_scored, options.threshold_metric, options.cost_fp, options.cost_fn)
            names = ["accuracy", "balanced_accuracy", "precision", "recall", "f1"]
            at_tuned = metric_intervals(scored.with_threshold(tuned["threshold"]), names, n_boot=options.n_boot, seed=options.seed, confidence=options.confidence)
            at_default = point_metrics(scored, names)
            tuned["test"] = [{**r, "at_default": at_default.get(r["metric"])} for r in at_tuned]
            tuned["chosen_on"] = "validation rows, scored by a model that did not learn from them"
            out["threshold"] = tuned
    return out


def _errors(scored: Scored, X: pd.DataFrame, options: Options) -> dict:
    out = {"worst_rows": diagnostics.worst_rows(scored, X, options.worst_k)}
    if scored.task.is_classification:
        out["confusion"] = diagnostics.confusion(scored)
    else:
        out["residuals"] = diagnostics.residuals(scored, seed=options.seed)
    return out


CONTRIBUTION_ROWS = 1000  # rows sampled for the mean |contribution| summary (plus the worst rows, always)


def _explanations(model, X, y_codes, metric, options: Options, worst: list[dict], box: TimeBox) -> dict:
    seconds = 0.4 * box.left() if box.limited else None  # permutation importance: part of what is left
    out = {"permutation_importance": explain.permutation_importance(model, X, y_codes, metric, seed=options.seed, seconds=seconds),
           "permutation_metric": metric.name}
    if not out["permutation_importance"]:
        out["permutation_note"] = (f"skipped: one pass over the columns would take well over the {seconds or 0:.1f}s "
                                   "left of the time limit; run `trainyard evaluate NAME --data FILE` for it")
    # Contributions (TreeSHAP: costly on big ensembles) on the worst rows and a fixed sample of the others.
    rng = np.random.default_rng(options.seed)
    wanted = {row["row"] for row in worst}
    keep = [i for i, r in enumerate(X.index) if r in wanted]
    if len(X) > CONTRIBUTION_ROWS:
        keep = sorted(set(keep) | set(rng.choice(len(X), CONTRIBUTION_ROWS, replace=False).tolist()))
    else:
        keep = list(range(len(X)))
    contrib = explain.contributions(model, X.iloc[keep])
    if contrib is None:
        out["contributions"] = None
        out["contributions_note"] = f"per-prediction contributions need a LightGBM or XGBoost model; this one is '{model.family}'"
        return out
    out["contributions"] = {"library": explain.tree_library(model), "units": "raw model output (log-odds for classification)" if model.task.is_classification else "target units",
                            "mean_abs": explain.contribution_summary(contrib), "rows": len(contrib)}
    positions = {r: i for i, r in enumerate(contrib.index)}
    for row in worst:
        i = positions.get(row["row"])
        if i is not None:
            c = contrib.iloc[i].drop("bias")
            top = c.reindex(c.abs().sort_values(ascending=False).index)[:5]
            row["top_contributions"] = {k: float(v) for k, v in top.items()}
    return out


def evaluate(model_or_ref, data, sensitive=None, *, workspace=None, slices=None, validation=None, learning_curve: bool = False,
             explain: bool = True, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95, threshold_metric: str = "f1",
             cost_fp: float | None = None, cost_fn: float | None = None, min_group: int = 20, _meta: dict | None = None) -> EvaluationReport:
    """Evaluate a model (a TrainyardModel, or NAME / NAME@VERSION from the workspace) on labelled rows.

    `data` is a path or DataFrame holding the model's target column; `sensitive` names columns to report fairness
    by; `slices` are pandas queries or column=value; `validation` (labelled rows the model did not learn from)
    enables the calibrator choice and, for binary tasks, threshold tuning.
    """
    if isinstance(model_or_ref, str):
        model, meta = load_with_meta(model_or_ref, workspace)
    else:
        model, meta = model_or_ref, dict(_meta or {})
    if n_boot < 1:
        raise ConfigError(f"--n-boot {n_boot}: the intervals need at least one bootstrap resample.",
                          "pass a positive count, e.g. --n-boot 1000 (fewer is faster, with rougher intervals).")
    frame = load_table(data)
    check_two_classes(model, frame)
    sensitive = [sensitive] if isinstance(sensitive, str) else list(sensitive or [])
    slices = [slices] if isinstance(slices, str) else list(slices or [])
    options = Options(sensitive=sensitive, slices=slices, n_boot=n_boot, seed=seed, confidence=confidence, learning_curve=learning_curve,
                      explain=explain, threshold_metric=threshold_metric, cost_fp=cost_fp, cost_fn=cost_fn, min_group=min_group)
    val = None
    if validation is not None:
        rows, _ = labelled_rows(model, load_table(validation))
        val = Validation(model, rows.reindex(columns=model.features), rows[model.target].to_numpy())
    name = "evaluation data" if not isinstance(data, (str, bytes)) and not hasattr(data, "__fspath__") else str(data)
    return evaluate_frame(model, frame, meta=meta, options=options, validation=val, dataset=name)




def calibrate_on_validation(model, X_val: pd.DataFrame, y_val_codes: np.ndarray, method: str, seed: int = 0):
    """(method used or None, pipeline): `auto` picks by cross-validated log loss on the validation rows."""
    if method == "auto":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            method = cal.choose_calibration(model, X_val, y_val_codes, seed=seed)["method"]
        if method == "none":
            return None, model.pipeline
    return method, cal.calibrate(model, X_val, y_val_codes, method)


def test_evaluation(model, trial_model, parts, cfg, metric, data, val_score: float | None, *, refitted: bool,
                    calibrated_with: str | None, deadline: float | None = None) -> EvaluationReport:
    """The one evaluation of the final model on the held-out test rows, at the end of `train`.
    `deadline` (a `time.perf_counter()` value) is when it must end, so the run stays inside its time limit."""
    options = Options(sensitive=list(cfg.sensitive), n_boot=cfg.n_boot, seed=cfg.seed, learning_curve=cfg.learning_curve,
                      threshold_metric=cfg.threshold_metric, cost_fp=cfg.cost_fp, cost_fn=cfg.cost_fn,
                      deadline=deadline)
    notes = []
    if refitted:
        notes.append("The final model was refitted on train + validation rows: its validation score is the chosen family's score when "
                     "fitted on training rows only, and the training score is on rows it learned from.")
    if calibrated_with:
        notes.append(f"The saved model is the one fitted on training rows, calibrated ({calibrated_with}) on the validation rows; it was not refitted.")
    train_score = score_pipeline(model.pipeline, data.X_train, data.y_train, model.task, metric, model.classes)
    learning_rows = None
    if cfg.learning_curve:
        learning_rows = (pd.concat([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val]))
    training = Training(train_score=train_score, val_score=val_score, val_note=" ".join(notes), calibrated_with=calibrated_with,
                        learning_rows=learning_rows)
    validation = None
    if model.task.is_classification and trial_model is not None:  # None: refitted on the validation rows too
        validation = Validation(trial_model, data.X_val, parts.val[cfg.target].to_numpy())
    meta = {"baseline_reference": baseline_reference(model.task, parts.train[cfg.target], model.classes), "name": cfg.name}
    return evaluate_frame(model, parts.test, meta=meta, options=options, training=training, validation=validation,
                          dataset="held-out test set", title="Held-out test evaluation")


def evaluation_summary(report: EvaluationReport) -> dict:
    """What meta.json keeps of the test evaluation (the full report is evaluation.json beside it)."""
    d = report.data
    calibration = d.get("calibration") or {}
    return {
        "metric": d["metric"], "rows": d["dataset"]["rows"], "split_scores": d["overfitting"]["scores"],
        "overfitting": d["overfitting"]["verdict"], "ece": (calibration.get("reliability") or {}).get("ece"),
        "calibration_choice": (calibration.get("choice") or {}).get("method"), "calibrated_with": calibration.get("applied"),
        "threshold": {k: v for k, v in (calibration.get("threshold") or {}).items() if k != "test"} or None,
        "fairness_flags": report.flags, "limitations": d.get("limitations", []),
    }
