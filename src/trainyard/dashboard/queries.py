"""Read-only queries the dashboard needs, on the store's reader engine.

The reader engine is autocommit and never takes SQLite's write lock, so a page
load never blocks a training process. Everything here is a plain function of
`(store, ...)` returning dicts, so the pages and the JSON API share it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from trainyard.registry import tables as t
from trainyard.registry.store import Store

RUN_STATUSES = ("running", "finished", "failed", "interrupted")


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; they were written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def rows(store: Store, query) -> list[dict[str, Any]]:
    with store.reader.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def scalar(store: Store, query):
    with store.reader.connect() as conn:
        return conn.execute(query).scalar()


def with_duration(run: dict[str, Any]) -> dict[str, Any]:
    start = utc(run.get("created_at"))
    end = utc(run.get("finished_at")) or (datetime.now(timezone.utc) if run.get("status") == "running" else utc(run.get("updated_at")))
    run["duration_s"] = (end - start).total_seconds() if start and end else None
    return run


# runs ------------------------------------------------------------------------
RUN_LIST_COLUMNS = (t.runs.c.id, t.runs.c.name, t.runs.c.kind, t.runs.c.status, t.runs.c.task, t.runs.c.metric,
                    t.runs.c.best_score, t.runs.c.best_family, t.runs.c.model_version, t.runs.c.created_at,
                    t.runs.c.updated_at, t.runs.c.finished_at)


def runs_page(store: Store, page: int = 1, per_page: int = 50, status: str | None = None,
              name: str | None = None) -> dict[str, Any]:
    """One page of runs, newest first, with the total for the pager (indexed: created_at, status, name)."""
    page, per_page = max(1, page), min(max(1, per_page), 500)
    where = []
    if status:
        where.append(t.runs.c.status == status)
    if name:
        where.append(t.runs.c.name == name)
    query = sa.select(*RUN_LIST_COLUMNS).where(*where).order_by(t.runs.c.created_at.desc())
    found = rows(store, query.limit(per_page).offset((page - 1) * per_page))
    total = scalar(store, sa.select(sa.func.count()).select_from(t.runs).where(*where))
    return {"runs": [with_duration(r) for r in found], "total": total, "page": page, "per_page": per_page,
            "pages": max(1, -(-total // per_page))}


def get_run(store: Store, run_id: str) -> dict[str, Any]:
    """The run row, read without the store's stale-run bookkeeping (which writes); unknown ids raise NotFoundError."""
    found = rows(store, sa.select(t.runs).where(t.runs.c.id == run_id))
    return with_duration(found[0]) if found else store.get_run(run_id)


def run_names(store: Store, limit: int = 500) -> list[str]:
    return list(r["name"] for r in rows(store, sa.select(t.runs.c.name).distinct().order_by(t.runs.c.name).limit(limit)))


def metric_keys(store: Store, run_id: str) -> list[str]:
    q = sa.select(t.metrics.c.key).where(t.metrics.c.run_id == run_id).distinct().order_by(t.metrics.c.key)
    return [r["key"] for r in rows(store, q)]


def metrics_after(store: Store, run_id: str, after_id: int = 0, limit: int = 20000) -> list[dict[str, Any]]:
    q = (sa.select(t.metrics.c.id, t.metrics.c.key, t.metrics.c.step, t.metrics.c.value)
         .where(t.metrics.c.run_id == run_id, t.metrics.c.id > after_id).order_by(t.metrics.c.id).limit(limit))
    return rows(store, q)


def trials_after(store: Store, run_id: str, after_id: int = 0) -> list[dict[str, Any]]:
    """Trials recorded after row `after_id`, in the order they were recorded (on a cluster, not the order of their numbers)."""
    q = sa.select(t.trials).where(t.trials.c.run_id == run_id, t.trials.c.id > after_id).order_by(t.trials.c.id)
    return rows(store, q)


def events_after(store: Store, run_id: str, after_id: int = 0) -> list[dict[str, Any]]:
    q = sa.select(t.events).where(t.events.c.run_id == run_id, t.events.c.id > after_id).order_by(t.events.c.id)
    return rows(store, q)


def runs_with_event(store: Store, kind: str, run_ids: list[str]) -> list[str]:
    q = sa.select(t.events.c.run_id).where(t.events.c.kind == kind, t.events.c.run_id.in_(run_ids)).distinct()
    return [r["run_id"] for r in rows(store, q)] if run_ids else []


def run_status(store: Store, run_id: str) -> dict[str, Any] | None:
    q = sa.select(t.runs.c.status, t.runs.c.best_score, t.runs.c.best_family, t.runs.c.model_version,
                  t.runs.c.error, t.runs.c.created_at, t.runs.c.updated_at, t.runs.c.finished_at).where(t.runs.c.id == run_id)
    found = rows(store, q)
    return with_duration(found[0]) if found else None


def models_of_run(store: Store, run_id: str) -> list[dict[str, Any]]:
    return rows(store, sa.select(t.models.c.name, t.models.c.version).where(t.models.c.run_id == run_id))


def greater_is_better(metric: str | None) -> bool:
    """The metric's direction from trainyard's metric table; unknown metrics: higher is better unless a loss/error/perplexity."""
    from trainyard.metrics import METRICS

    if metric in METRICS:
        return bool(METRICS[metric].greater_is_better)
    name = (metric or "").lower()
    return not any(word in name for word in ("loss", "error", "rmse", "mae", "mse", "mape", "perplexity"))


def leaderboard(trials: list[dict[str, Any]], higher_better: bool) -> list[dict[str, Any]]:
    """Trials ranked by validation score (failed and unscored last)."""
    scored = [r for r in trials if r.get("val_score") is not None]
    rest = [r for r in trials if r.get("val_score") is None]
    scored.sort(key=lambda r: r["val_score"], reverse=higher_better)
    return scored + rest


# models ------------------------------------------------------------------------
def models_by_name(store: Store) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in store.list_models():
        grouped.setdefault(r["name"], []).append(r)
    return grouped


def alias_map(store: Store, name: str) -> dict[str, int]:
    return {r["alias"]: r["version"] for r in rows(store, sa.select(t.aliases).where(t.aliases.c.name == name))}


# predictions ---------------------------------------------------------------------
def prediction_filters(model: str | None, version: int | None, request_id: str | None, since: datetime | None,
                       until: datetime | None) -> list:
    where = []
    if model:
        where.append(t.predictions.c.model_name == model)
    if version:
        where.append(t.predictions.c.version == version)
    if request_id:
        where.append(t.predictions.c.request_id == request_id)
    if since:
        where.append(t.predictions.c.created_at >= since)
    if until:
        where.append(t.predictions.c.created_at < until)
    return where


def predictions_page(store: Store, *, page: int = 1, per_page: int = 50, model: str | None = None,
                     version: int | None = None, request_id: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> dict[str, Any]:
    """A page of the prediction log, newest first, each row with its late label when one arrived."""
    page, per_page = max(1, page), min(max(1, per_page), 500)
    where = prediction_filters(model, version, request_id, since, until)
    label = (sa.select(t.labels.c.label).where(t.labels.c.model_name == t.predictions.c.model_name,
                                                t.labels.c.request_id == t.predictions.c.request_id)
             .order_by(t.labels.c.id.desc()).limit(1).scalar_subquery())
    q = (sa.select(t.predictions, label.label("label")).where(*where)
         .order_by(t.predictions.c.created_at.desc(), t.predictions.c.id.desc())
         .limit(per_page).offset((page - 1) * per_page))
    total = scalar(store, sa.select(sa.func.count()).select_from(t.predictions).where(*where))
    return {"rows": rows(store, q), "total": total, "page": page, "per_page": per_page, "pages": max(1, -(-total // per_page))}


def predicted_models(store: Store) -> list[str]:
    q = sa.select(t.predictions.c.model_name).distinct().order_by(t.predictions.c.model_name)
    return [r["model_name"] for r in rows(store, q)]


def recent_predictions(store: Store, model: str, limit: int = 50000) -> list[dict[str, Any]]:
    """The latest `limit` logged predictions of a model with their labels (oldest first), for monitoring."""
    q = (sa.select(t.predictions.c.request_id, t.predictions.c.version, t.predictions.c.inputs, t.predictions.c.outputs,
                   t.predictions.c.created_at)
         .where(t.predictions.c.model_name == model).order_by(t.predictions.c.created_at.desc()).limit(limit))
    found = rows(store, q)[::-1]
    labels = {r["request_id"]: r["label"] for r in rows(store, sa.select(t.labels.c.request_id, t.labels.c.label)
                                                             .where(t.labels.c.model_name == model).order_by(t.labels.c.id))}
    for r in found:
        r["created_at"] = utc(r["created_at"])
        r["label"] = labels.get(r["request_id"])
    return found
