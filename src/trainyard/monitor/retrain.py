"""Retraining: a challenger trained on fresh data with the champion's recorded spec, compared on the same holdout.

The champion's meta.json records its task, target, metric, family, hyperparameters, column roles and split
settings. The challenger is that family with those hyperparameters, its preprocessing fitted on the fresh
training rows (column roles kept, category lists and ranges re-learnt). Both are scored once on the same
fresh holdout; the challenger is registered either way (with its own reference profile), and the alias moves
only when the user asked for it and the challenger wins by the margin. The run and the reason are recorded.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from trainyard.data.load import fingerprint, load_table, source_name
from trainyard.data.profile import write_reference
from trainyard.data.schema import check_target, infer_schema
from trainyard.data.split import split
from trainyard.errors import ConfigError, DataError
from trainyard.evaluation.holdout import baseline_metrics, encode_labels, holdout_metrics
from trainyard.metrics import get_metric
from trainyard.models.families import get_family
from trainyard.models.model import TrainyardModel
from trainyard.monitor.check import load_reference
from trainyard.registry.artifact import load_artifact, save_artifact
from trainyard.registry.store import parse_ref
from trainyard.registry.workspace import Workspace
from trainyard.tasks import Task
import trainyard.kinds  # noqa: F401  (artifact loaders)


def champion_row(store, ref: str, alias: str) -> dict:
    """NAME means the version holding `alias`, else the latest; NAME@X is that version or alias."""
    name, selector = parse_ref(ref)
    if selector is None:
        for r in store.list_models(name):
            if alias in r["aliases"]:
                return r
    return store.resolve_model(ref)


def fresh_schema(df: pd.DataFrame, champion: TrainyardModel):
    """The champion's column roles on the fresh data (ranges and categories re-learnt); other columns ignored."""
    features = champion.features
    absent = [c for c in features if c not in df.columns]
    if absent:
        raise DataError(f"The fresh data lacks the champion's feature column(s) {', '.join(absent[:10])}.",
                        "retrain on a table with the same columns as the training data.")
    roles = {c.name: c.role for c in champion.schema.columns if c.name in features}
    roles |= {c: "ignore" for c in df.columns if c not in features and c != champion.target}
    return infer_schema(df, champion.target, roles)


def build_challenger(meta: dict, champion: TrainyardModel, schema, seed: int):
    """The champion's family and hyperparameters, unfitted; its own pipeline cloned when the family is not registered."""
    from sklearn.base import clone


    try:
        return get_family(meta["family"]).build(schema, champion.task, meta.get("params") or {}, seed=seed)
    except (ConfigError, KeyError, TypeError):
        return clone(champion.pipeline)


def retrain(ref: str, data, *, promote_if_better: bool = False, margin: float = 0.0, alias: str = "production",
            seed: int | None = None, workspace: str | os.PathLike | None = None, progress: Callable[[str], None] | None = None) -> dict:
    say = progress or (lambda msg: None)
    ws = Workspace.resolve(workspace)
    store = ws.store
    row = champion_row(store, ref, alias)
    champion, meta, _, _ = _load(ws, row)
    name, target = row["name"], meta["target"]
    task = Task(meta["task"])
    metric = get_metric(meta["metric"], task)
    cfg = meta.get("config") or {}
    seed = cfg.get("seed", 0) if seed is None else seed
    df = load_table(data)
    check_target(df, target)
    labelled = df[df[target].notna()]
    schema = fresh_schema(labelled, champion)
    features = champion.features
    run_id = store.create_run(
        name, kind="retrain", task=task.value, metric=metric.name, target=target,
        data_source=source_name(data), data_fingerprint=fingerprint(df),
        config={**cfg, "retrain_of": row["version"], "margin": margin, "alias": alias, "promote_if_better": promote_if_better},
    )
    try:
        parts = split(labelled, target, task, test_size=cfg.get("test_size", 0.2), val_size=cfg.get("val_size", 0.2), seed=seed,
                      group_col=cfg.get("group_col"), time_col=cfg.get("time_col"))
        train_rows = pd.concat([parts.train, parts.val])
        classes = champion.classes
        y = encode_labels(train_rows[target].to_numpy(), classes) if classes is not None else train_rows[target].to_numpy(dtype=float)
        say(f"training the challenger ({meta['family']}, the champion's hyperparameters) on {len(train_rows)} fresh rows")
        pipeline = build_challenger(meta, champion, schema, seed).fit(train_rows[features], y)
        challenger = TrainyardModel(pipeline, task=task, schema=schema, classes=classes, family=meta["family"], metric=metric.name)
        hold_X, hold_y = parts.test[features], parts.test[target]
        say(f"scoring champion @{row['version']} and challenger on the same {len(hold_X)} fresh holdout rows")
        champ_metrics, chall_metrics = holdout_metrics(champion, hold_X, hold_y), holdout_metrics(challenger, hold_X, hold_y)
        champ, chall = champ_metrics.get(metric.name), chall_metrics.get(metric.name)
        if champ is None or chall is None:
            raise DataError(f"{metric.name} cannot be computed on the fresh holdout ({len(hold_X)} rows).", "retrain on more fresh rows.")
        gain = (chall - champ) if metric.greater_is_better else (champ - chall)
        wins = gain > 0 and gain >= margin
        version = _register(ws, store, run_id, name, challenger, meta, schema, parts, train_rows, target, metric, chall_metrics, row["version"])
        promoted = bool(promote_if_better and wins)
        if promoted:
            store.set_alias(name, alias, version)
            reason = f"the challenger beats the champion by {gain:.4f} {metric.name} (margin {margin}); '{alias}' now points at @{version}."
        elif wins:
            reason = (f"the challenger beats the champion by {gain:.4f} {metric.name} (margin {margin}) but --promote-if-better was not given; "
                      f"promote it with `trainyard retrain ... --promote-if-better` or by moving '{alias}' to @{version}.")
        else:
            reason = (f"the challenger does not beat the champion by the margin ({gain:+.4f} {metric.name}, margin {margin}); "
                      f"'{alias}' stays where it was.")
        decision = {"champion": row["version"], "challenger": version, "metric": metric.name, "champion_score": champ,
                    "challenger_score": chall, "gain": gain, "margin": margin, "wins": wins, "promoted": promoted, "alias": alias}
        store.add_event(run_id, "retrain", reason, data=decision)
        store.update_run(run_id, status="finished", best_score=chall, best_family=meta["family"], model_version=version)
    except BaseException as exc:
        store.update_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    return {
        "name": name, "run_id": run_id, "metric": metric.name, "greater_is_better": metric.greater_is_better,
        "holdout_rows": len(hold_X), "train_rows": len(train_rows), "alias": alias, "margin": margin, "gain": gain,
        "wins": wins, "promoted": promoted, "reason": reason,
        "champion": {"version": row["version"], "score": champ, "holdout": champ_metrics},
        "challenger": {"version": version, "score": chall, "holdout": chall_metrics},
    }


def _load(ws, row):
    try:
        return load_reference(ws, row)
    except Exception:  # a champion without a reference profile can still be retrained

        model, meta = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
        return model, meta, None, None


def _register(ws, store, run_id, name, challenger, meta, schema, parts, train_rows, target, metric, holdout, champion_version) -> int:
    features = challenger.features
    baseline = baseline_metrics(challenger.task, train_rows[target], parts.test[target], challenger.classes)
    new_meta = {
        **{k: meta.get(k) for k in ("task", "target", "metric", "family", "params", "classes")},
        "name": name, "schema": schema.to_dict(), "run_id": run_id, "config": meta.get("config"),
        "metrics": {"test": holdout, "baseline": baseline}, "split": {**parts.sizes(), "strategy": parts.strategy},
        "data_fingerprint": store.get_run(run_id)["data_fingerprint"], "challenger_of": champion_version,
    }
    directory = ws.artifacts / name / run_id
    with tempfile.TemporaryDirectory() as tmp:
        reference = write_reference(Path(tmp), challenger, train_rows[features], parts.test[features])
        digest = save_artifact(challenger, directory, new_meta, extra_files=reference)
    return store.register_model(name, artifact_path=str(directory.relative_to(ws.home)), meta_sha256=digest, run_id=run_id,
                                task=challenger.task.value, metric=metric.name, test_score=holdout.get(metric.name),
                                metrics=new_meta["metrics"], family=meta["family"], tags={"challenger_of": str(champion_version)})

