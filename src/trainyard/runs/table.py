"""The table plan: audit, split, the AutoML search within the budget, the held-out test once, the artifact.

    plan = TablePlan.new(df, source, cfg, started=clock)         # or TablePlan.resumed(df, run_ref, ws, started)
    result = execute(plan, ws, emit=progress, run_id=plan.run_id)
"""

from __future__ import annotations

import importlib
import json
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from trainyard.automl.budget import CpuShare
from trainyard.automl.plan import resume_state, role_overrides, sample_weights, search_plan
from trainyard.automl.runner import runner_for
from trainyard.automl.search import search
from trainyard.automl.selection import refit_on_all_rows
from trainyard.automl.trials import SearchData, Trial
from trainyard.cluster.address import parse_cluster, preflight
from trainyard.config import TrainConfig
from trainyard.data.audit.gate import artifact_files, audit_for_training, check_split
from trainyard.data.audit.target import choose_class_weight
from trainyard.data.load import fingerprint
from trainyard.data.profile import write_reference
from trainyard.data.guards import check_finite_features, check_time_column, check_trial_count
from trainyard.data.schema import check_target, infer_schema
from trainyard.data.screen import Screened, auto_limit, screen_wide
from trainyard.data.split import Splits, split
from trainyard.errors import ConfigError, DataError
from trainyard.evaluation.card import write_model_card
from trainyard.evaluation.core import calibrate_on_validation, evaluation_summary, test_evaluation
from trainyard.evaluation.fairness import check_sensitive
from trainyard.evaluation.holdout import class_labels, encode_labels
from trainyard.evaluation.plots import preload
from trainyard.evaluation.report import EVALUATION_FILE
from trainyard.metrics import get_metric
from trainyard.models.families import choose_families
from trainyard.models.model import TrainyardModel
from trainyard.registry.model_versions import BASELINE_TAG, NOT_BEATEN
from trainyard.registry.plan import Registered, RunContext, RunResult, RunSpec
from trainyard.registry.workspace import Workspace
from trainyard.tasks import DEFAULT_METRIC, check_task_fits_target, infer_task, parse_task


class TablePlan:
    """A table search as a plan of the run driver; `previous` holds a resumed run's recorded trials."""

    def __init__(self, df: pd.DataFrame, cfg: TrainConfig, *, name: str, source: str | None, started: float,
                 time_limit: float | None, previous: list[dict] | None = None, run_id: str | None = None):
        self.cfg, self.name, self.source, self.started = cfg, name, source, started
        self.cpu_share = CpuShare()  # over the run's own work before the search (schema, audit, split)
        self.time_limit, self.previous, self.run_id = time_limit, previous, run_id
        self.task = parse_task(cfg.task) or infer_task(df[cfg.target])
        check_task_fits_target(self.task, df[cfg.target])
        self.metric = get_metric(cfg.metric or DEFAULT_METRIC[self.task], self.task)
        check_trial_count(cfg.max_trials)
        self.cluster = parse_cluster(cfg.cluster)
        preflight(self.cluster, cfg.workers)  # a bad value or an unreachable cluster is refused before the run exists
        self.data_fingerprint = fingerprint(df)
        self.screened = self._screen(df)
        self.df = df = df if self.screened is None else df[[c for c in df.columns if c in self._kept_columns(df)]]
        self.schema = infer_schema(df, cfg.target, role_overrides(cfg, df))
        check_finite_features(df, self.schema)
        check_time_column(df, cfg.time_col, self.schema)
        if not self.schema.features():
            raise DataError("No usable feature columns: every column is the target, ignored, constant or an identifier.",
                            "check the column roles with `trainyard train ... --debug`, or pass --categorical COL to keep a column.")
        self.families = choose_families(self.task, list(cfg.families), list(cfg.include), list(cfg.exclude))
        check_sensitive(list(cfg.sensitive), df.columns)
        self.audit_report = None
        self.notes: list[str] = []  # warnings the result carries (a model no better than the baseline)

    def _screen(self, df: pd.DataFrame) -> Screened | None:
        """A table wider than the run can look at keeps its columns most associated with the target (data/screen.py)."""
        cfg = self.cfg
        if cfg.max_columns is not None and cfg.max_columns < 1:
            raise ConfigError(f"--max-columns must be at least 1, got {cfg.max_columns}.", "give the number of feature columns to keep, e.g. --max-columns 500.")
        fixed = self._fixed_columns(df)
        candidates = [c for c in df.columns if c not in fixed]
        limit = cfg.max_columns or auto_limit(self.time_limit)
        return screen_wide(df, cfg.target, self.task, candidates, limit, seed=cfg.seed, test_size=cfg.test_size, val_size=cfg.val_size,
                           group_col=cfg.group_col, time_col=cfg.time_col)

    def _fixed_columns(self, df: pd.DataFrame) -> set[str]:
        """Columns a screening never drops: the target, the ones the user gave a role or named in a setting."""
        cfg = self.cfg
        named = {cfg.target, cfg.group_col, cfg.time_col, cfg.weight_col, *cfg.sensitive, *role_overrides(cfg, df)}
        return {c for c in named if c in df.columns}

    def _kept_columns(self, df: pd.DataFrame) -> set[str]:
        return self._fixed_columns(df) | set(self.screened.kept)

    @classmethod
    def new(cls, df: pd.DataFrame, cfg: TrainConfig, *, name: str, source: str | None, started: float) -> "TablePlan":
        check_target(df, cfg.target)
        return cls(df, cfg, name=name, source=source, started=started, time_limit=None if cfg.trial_budget_only else cfg.time_limit)

    @classmethod
    def resumed(cls, df: pd.DataFrame, ref: str, ws: Workspace, *, started: float) -> "TablePlan":
        """Continue an interrupted run from its recorded trials, with its recorded settings and the time it has left."""
        run, cfg, previous, time_left = resume_state(ws.store, ref, fingerprint(df))
        return cls(df, cfg, name=run["name"], source=run["data_source"], started=started, time_limit=time_left,
                   previous=previous, run_id=run["id"])

    def spec(self) -> RunSpec:
        return RunSpec(self.name, "tabular", self.task.value, self.metric.name, data_source=self.source, target=self.cfg.target,
                       data_fingerprint=self.data_fingerprint, config=self.cfg.to_dict())

    def prepare(self, run: RunContext) -> None:
        cfg, store = self.cfg, run.store
        run.emit("run", {"run_id": run.run_id, "task": self.task.value, "metric": self.metric.name,
                         "families": [f.name for f in self.families], **({"resumed": len(self.previous)} if self.previous is not None else {})})
        if self.screened is not None:
            store.add_event(run.run_id, "data", self.screened.note())
            run.emit("note", {"message": self.screened.note()})
        if self.previous is None:
            self.audit_report = audit_for_training(self.df, cfg, self.task, store, run.run_id, run.emit, time_limit=self.time_limit)
        labelled = self.df[self.df[cfg.target].notna()]
        dropped = len(self.df) - len(labelled)
        if dropped and self.previous is None:
            store.add_event(run.run_id, "data", f"dropped {dropped} rows with a missing target")
        features = self.schema.features()
        if self.screened is not None:  # the split the columns were chosen on (training rows only), narrowed to them
            p = self.screened.parts
            self.parts = Splits(p.train[self.df.columns], p.val[self.df.columns], p.test[self.df.columns], p.strategy)
        else:
            self.parts = split(labelled, cfg.target, self.task, test_size=cfg.test_size, val_size=cfg.val_size, seed=cfg.seed,
                               group_col=cfg.group_col, time_col=cfg.time_col, keep_together=features)
        if self.audit_report is not None:
            check_split(self.audit_report, self.parts, features, self.schema, cfg, store, run.run_id)
        self.class_weight = choose_class_weight(cfg.class_weight, self.task, labelled[cfg.target])
        self.classes = class_labels(labelled[cfg.target]) if self.task.is_classification else None
        train, val = self.parts.train, self.parts.val
        self.data = SearchData(train[features], self._labels(train), val[features], self._labels(val), self.classes,
                               self._weights(train), self._weights(val))
        run.emit("stage", {"message": f"split {self.parts.sizes()} ({self.parts.strategy})"})

    def _labels(self, part: pd.DataFrame):
        y = part[self.cfg.target].to_numpy()
        return encode_labels(y, self.classes) if self.classes is not None else part[self.cfg.target].to_numpy(dtype=float)

    def _weights(self, part: pd.DataFrame):
        return sample_weights(part, self.cfg.weight_col) if self.cfg.weight_col else None

    def fit(self, run: RunContext) -> None:
        cfg, store = self.cfg, run.store

        def on_trial(trial: Trial) -> None:
            store.add_trial(run.run_id, trial.number, trial.family, **trial.record())
            run.emit("trial", {"trial": trial})

        spent = time.perf_counter() - self.started
        budget = None if self.time_limit is None else max(self.time_limit - spent, 1.0)
        # Testing costs about what loading and checking the data did (it shrinks to fit, down to a floor); then saving.
        after = None if self.time_limit is None else max(0.8 * spent, 0.15 * self.time_limit) + saving_seconds(self.time_limit)
        plan = search_plan(cfg, self.metric, budget, n_rows=len(self.parts.train) + len(self.parts.val), after_search_s=after or 0.0,
                           class_weight=self.class_weight)
        if cfg.calibrate:  # calibration needs the validation rows unseen: keep the models fitted on the training split
            plan.refit = False
        plan.slowdown = self.cpu_share.slowdown()
        if plan.slowdown > 1.0 and self.time_limit is not None:
            note = (f"this run got {100 / plan.slowdown:.0f}% of a CPU while preparing (the machine is busy): the search's time "
                    f"estimates are {plan.slowdown:.1f}x those of an idle machine")
            store.add_event(run.run_id, "search", note)
            run.emit("note", {"message": note})
        run.emit("plan", {"time_limit": budget, "max_trials": cfg.max_trials, "bag_folds": plan.bag_folds})
        _preload_report_modules(self.families)  # on the core the search leaves idle (small fits use one thread)
        with runner_for(self.cluster, cfg.workers, on_open=lambda nodes: _joined(run, nodes), run=run) as runner:
            found = search(self.data, schema=self.schema, task=self.task, metric=self.metric, families=self.families, plan=plan,
                           on_trial=on_trial, checkpoint_dir=run.run_dir / "trials", previous=self.previous, runner=runner)
        if self.cluster is not None:  # per-node trials and CPU, for the CLI and the run's events
            found.notes.append(node_usage(found.trials))
            run.emit("note", {"message": found.notes[-1]})
        for note in found.notes:
            store.add_event(run.run_id, "search", note)
        if found.estimator is None:
            failures = "; ".join(f"{t.family}: {t.message.splitlines()[0]}" for t in found.trials if t.message)
            raise DataError(f"No model could be trained on this data ({failures}).",
                            "check the audit findings and column roles; rerun with --debug for details.")
        self.found = found
        self._finish_model(run)

    def _finish_model(self, run: RunContext) -> None:
        """The model to test: the search's, calibrated on the validation rows when asked."""
        found, cfg = self.found, self.cfg
        wrap = lambda pipeline: TrainyardModel(pipeline, task=self.task, schema=self.schema, classes=self.classes,  # noqa: E731
                                               family=found.family, metric=self.metric.name)
        # A model that never saw the validation rows: what calibration and the validation diagnostics may use.
        self.trial_model = None if found.refitted else wrap(found.estimator)
        self.calibrated_with, pipeline = None, found.estimator
        if cfg.calibrate and self.task.is_classification and self.trial_model is not None:
            run.emit("stage", {"message": "calibrating probabilities on the validation rows"})
            self.calibrated_with, pipeline = calibrate_on_validation(self.trial_model, self.data.X_val, self.data.y_val, cfg.calibrate, cfg.seed)
        self.model = wrap(pipeline)

    def evaluate(self, run: RunContext) -> dict[str, float]:
        run.emit("stage", {"message": "evaluating the chosen model once on the held-out test set"})
        deadline = None
        if self.time_limit is not None:  # the evaluation ends when saving must start (at least a small slice)
            deadline = self.started + self.time_limit - saving_seconds(self.time_limit)
            deadline = max(deadline, time.perf_counter() + 0.03 * self.time_limit)
        self.report = test_evaluation(self.model, self.trial_model, self.parts, self.cfg, self.metric, self.data, self.found.val_score,
                                      refitted=self.found.refitted, calibrated_with=self.calibrated_with, deadline=deadline)
        self.baseline = {r["metric"]: r["baseline"] for r in self.report["metrics"] if r.get("baseline") is not None}
        self._refit_on_all_rows(run)
        return {r["metric"]: r["value"] for r in self.report["metrics"]}

    def _refit_on_all_rows(self, run: RunContext) -> None:
        """Once tested, the model learns from the test rows too (--no-refit-all keeps the tested one): the same members
        and settings fitted on every labelled row, when the time left allows. A calibrated model keeps its fit."""
        if not self.cfg.refit_all or self.calibrated_with:
            self.refitted_all = False
            return
        run.emit("stage", {"message": "refitting the final model on all labelled rows"})
        seconds_left = None if self.time_limit is None else self.started + self.time_limit - saving_seconds(self.time_limit) - time.perf_counter()
        parts, features = [self.parts.train, self.parts.val, self.parts.test], self.schema.features()
        everything = pd.concat(parts)
        estimator, note = refit_on_all_rows(self.found, everything[features], self._labels(everything), self._weights(everything),
                                            None if self.classes is None else len(self.classes), seconds_left)
        self.refitted_all = estimator is not None
        if estimator is not None:
            self.model = TrainyardModel(estimator, task=self.task, schema=self.schema, classes=self.classes, family=self.found.family,
                                        metric=self.metric.name)
        run.store.add_event(run.run_id, "search", note)
        run.emit("note", {"message": note})

    def register(self, run: RunContext, metrics: dict[str, float]) -> Registered:
        found, report, cfg = self.found, self.report, self.cfg
        self.meta = {
            "task": self.task.value, "target": cfg.target, "metric": self.metric.name, "family": found.family, "params": found.params,
            "classes": None if self.classes is None else self.classes.tolist(), "schema": self.schema.to_dict(),
            "metrics": {"test": metrics, "baseline": self.baseline, "validation": {self.metric.name: found.val_score},
                        "intervals": {r["metric"]: [r["ci_low"], r["ci_high"]] for r in report["metrics"]}},
            "baseline_reference": report["baseline"], "evaluation": evaluation_summary(report),
            "split": {**self.parts.sizes(), "strategy": self.parts.strategy, "seed": cfg.seed, "refit_all_rows": self.refitted_all},
            "class_weight": self.class_weight,
            "data_fingerprint": run.store.get_run(run.run_id)["data_fingerprint"], "config": cfg.to_dict(),
        }
        evaluation_file = run.run_dir / EVALUATION_FILE
        evaluation_file.write_text(report.to_json())
        features = self.schema.features()
        with tempfile.TemporaryDirectory() as tmp:  # the reference profile for `monitor` and the test evaluation, hashed with the model
            files = write_reference(Path(tmp), self.model, pd.concat([self.data.X_train, self.data.X_val]), self.parts.test[features])
            files[EVALUATION_FILE] = evaluation_file
            if self.audit_report is not None:  # the audit, for the model card and the dashboard
                self.meta["audit"], audit_files = artifact_files(self.audit_report, Path(tmp))
                files.update(audit_files)
            version = run.register(self.model, self.meta, task=self.task.value, metric=self.metric.name, metrics=self.meta["metrics"],
                                   family=found.family, test_score=metrics.get(self.metric.name), extra_files=files)
        warning = no_better_than_baseline(report["metrics"], self.metric.name)
        if warning:  # registered (the run is not lost) but never the default `predict NAME` over a better version
            run.store.set_tags(self.name, version, {BASELINE_TAG: NOT_BEATEN})
            run.store.add_event(run.run_id, "warning", warning)
            self.notes.append(warning)
        run.emit("stage", {"message": "writing the model card"})
        self.card = write_model_card(run.ws, self.name, version, report.data, {**self.meta, "name": self.name, "run_id": run.run_id,
                                                                                "version": version})
        return Registered(version, found.val_score, found.family)

    def result(self, run: RunContext, registered: Registered, metrics: dict[str, float]) -> RunResult:
        return RunResult(run.run_id, self.name, registered.version, "tabular", self.task.value, self.metric.name, metrics,
                         model=self.model, family=self.found.family, split=self.meta["split"], baseline=self.baseline,
                         leaderboard=leaderboard_frame(self.found.trials, self.metric), audit=self.audit_report,
                         evaluation=self.report, card_dir=self.card, notes=self.notes)


def saving_seconds(time_limit: float) -> float:
    """Kept at the end of a time-limited run for the artifact, the reference profile and the model card (plots)."""
    return min(2.0 + 0.03 * time_limit, 10.0)


def no_better_than_baseline(rows: list[dict], metric: str) -> str | None:
    """The warning for a model whose test score is no better than the naive baseline's (None when it is better)."""
    main = next((r for r in rows if r["metric"] == metric), None)
    if main is None or main.get("baseline") is None or main.get("value") is None:
        return None
    value, base = main["value"], main["baseline"]
    worse = value <= base if main.get("greater_is_better", True) else value >= base
    if not worse:
        return None
    return (f"This model is no better than the naive baseline on the test rows ({metric} {value:.4g} vs baseline {base:.4g}). "
            f"It is registered, tagged {BASELINE_TAG}={NOT_BEATEN}, and `predict NAME` keeps using the latest version "
            "that beats its baseline; give the search more time (--time-limit) or check the audit findings.")


def _joined(run: RunContext, nodes: list) -> None:
    """Say which cluster the trials run on (the CLI shows it, the run's events keep it)."""
    listed = ", ".join(f"{n.id} ({n.cpus:g} CPU)" for n in nodes)
    run.store.add_event(run.run_id, "cluster", f"trials on Ray: {len(nodes)} nodes: {listed}")
    run.emit("cluster", {"nodes": [{"id": n.id, "cpus": n.cpus, "memory_mb": n.memory_mb, "address": n.address} for n in nodes]})


def node_usage(trials: list[Trial]) -> str:
    """Per Ray node: the fits it ran (a trial, or one fold of a bagged trial) and the CPU seconds they took there."""
    usage: dict[str, list[float]] = {}
    for t in trials:
        for node, cpu in t.extra.get("folds") or ([[t.extra["node"], t.extra.get("cpu_s")]] if t.extra.get("node") else []):
            usage.setdefault(node, []).append(cpu or 0.0)
    return "per node: " + ", ".join(f"{node} {len(cpu)} fits, {sum(cpu):.1f} CPU s" for node, cpu in sorted(usage.items()))


def _preload_report_modules(families) -> None:
    """Import what the evaluation and model card need (matplotlib) in a background thread while the search runs,
    and PyTorch's compiler stack when a family trains with PyTorch: its first optimizer imports torch._dynamo
    (1.5 s quiet, 5 s busy), which would otherwise come out of that trial's time budget."""
    def work():
        try:
            preload()
            if any("torch" in f.requires for f in families):
                importlib.import_module("torch._dynamo")
        except Exception:  # missing or broken: the fit or the report says so when it gets there
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
