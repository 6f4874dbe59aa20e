"""JSON endpoints: the runs list, the live stream of a run, promote/roll back, try a model, monitoring data."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from trainyard.dashboard import queries as q
from trainyard.dashboard.monitoring import summarize
from trainyard.errors import ConfigError, DataError
from trainyard.registry.artifact import read_meta

router = APIRouter(prefix="/api")
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0


def _default(o: Any):
    if isinstance(o, datetime):
        return q.utc(o).isoformat()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=_default)}\n\n"


@router.get("/runs")
def runs(request: Request, page: int = 1, per_page: int = 50, status: str | None = None, name: str | None = None) -> dict:
    listing = q.runs_page(request.app.state.store, page, per_page, status, name)
    return json.loads(json.dumps(listing, default=_default))


@router.get("/runs/{run_id}/stream")
async def run_stream(request: Request, run_id: str, after: int = 0) -> StreamingResponse:
    """Server-sent events: the run's metrics, trials, events and status as they are written; ends when the run does."""
    store = request.app.state.store
    q.get_run(store, run_id)  # 404 for an unknown run

    async def events():
        last_metric, last_trial, last_event, last_status = after, 0, 0, None
        quiet = 0.0
        yield "retry: 2000\n\n"
        while True:
            metrics = await asyncio.to_thread(q.metrics_after, store, run_id, last_metric)
            trials = await asyncio.to_thread(q.trials_after, store, run_id, last_trial)
            logged = await asyncio.to_thread(q.events_after, store, run_id, last_event)
            status = await asyncio.to_thread(q.run_status, store, run_id)
            if metrics:
                last_metric = metrics[-1]["id"]
                yield sse("metrics", metrics)
            if trials:
                last_trial = trials[-1]["id"]
                yield sse("trials", trials)
            if logged:
                last_event = logged[-1]["id"]
                yield sse("events", logged)
            if status is None:
                yield sse("end", {"reason": "the run was deleted"})
                return
            summary = (status["status"], status["best_score"], status["model_version"])
            if summary != last_status or metrics or trials:
                last_status = summary
                yield sse("run", status)
                quiet = 0.0
            if status["status"] != "running" and not metrics and not trials and not logged:
                yield sse("end", {"status": status["status"]})
                return
            if len(metrics) >= 20000:
                continue  # a backlog: send the rest at once
            await asyncio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield ": heartbeat\n\n"
                await asyncio.to_thread(store.reconcile_stale_runs)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class AliasChange(BaseModel):
    alias: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)


@router.post("/models/{name}/aliases")
def set_alias(request: Request, name: str, change: AliasChange) -> dict:
    """Point NAME@ALIAS at a version (promote, or roll back to an older one)."""
    store = request.app.state.store
    previous = store.set_alias(name, change.alias, change.version)  # 404 for an unknown model or version
    return {"name": name, "alias": change.alias, "version": change.version, "previous": previous}


class PredictRequest(BaseModel):
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


def _coerce(row: dict[str, Any], schema: dict) -> dict[str, Any]:
    """Form values arrive as strings: turn them into what the training schema says (empty -> missing)."""
    roles = {c["name"]: c["role"] for c in schema.get("columns", [])}
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, str) and value.strip() == "":
            value = None
        elif isinstance(value, str) and roles.get(key) == "numeric":
            try:
                value = float(value)
            except ValueError:
                raise DataError(f"'{value}' is not a number (column '{key}').", "enter a number or leave it empty.") from None
        elif isinstance(value, str) and roles.get(key) == "boolean" and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        out[key] = value
    return out


@router.get("/models/{ref}/schema")
def schema(request: Request, ref: str) -> dict:
    """The input columns of a version (from its hash-checked meta.json), for the try-it form."""
    from trainyard.data.schema import FEATURE_ROLES

    store, ws = request.app.state.store, request.app.state.workspace
    row = store.resolve_model(ref)
    meta = read_meta(ws.home / row["artifact_path"], row["meta_sha256"])
    columns = [c for c in (meta.get("schema") or {}).get("columns", []) if c.get("role") in FEATURE_ROLES]
    return {"model": f"{row['name']}@{row['version']}", "task": meta.get("task"), "target": meta.get("target"),
            "classes": meta.get("classes"), "columns": columns}


@router.post("/models/{ref}/predict")
def predict(request: Request, ref: str, body: PredictRequest) -> dict:
    """Score rows with a registered model (hash-verified on load; cached per version). Not logged as traffic."""
    import pandas as pd

    from trainyard import api

    store = request.app.state.store
    row = store.resolve_model(ref)
    key = (row["name"], row["version"], row["meta_sha256"])
    cache = request.app.state.model_cache
    if key not in cache:
        cache.clear()  # keep one model in memory
        cache[key] = api.load_with_meta(f"{row['name']}@{row['version']}", request.app.state.workspace.home)
    model, meta = cache[key]
    rows = [_coerce(r, meta.get("schema") or {}) for r in body.rows]
    missing = [c for c in model.features if all(c not in r for r in rows)]
    if len(missing) == len(model.features):
        raise ConfigError("None of the model's input columns were given.", "fill in at least one field: " + ", ".join(model.features[:10]))
    frame = pd.DataFrame(rows).reindex(columns=model.features)
    scored = api.prediction_frame(model, frame)
    return {"model": f"{row['name']}@{row['version']}",
            "predictions": json.loads(scored.to_json(orient="records"))}


@router.get("/monitoring/{model}")
def monitoring(request: Request, model: str) -> dict:
    store = request.app.state.store
    task = store.resolve_model(model).get("task")
    return json.loads(json.dumps(summarize(q.recent_predictions(store, model), task), default=_default))
