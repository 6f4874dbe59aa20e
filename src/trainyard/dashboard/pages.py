"""The HTML pages: runs, a run, models, a model version, compare, data, monitoring, predictions."""

from __future__ import annotations

import mimetypes
from urllib.parse import urlencode
from datetime import datetime, timezone

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.background import BackgroundTask

from trainyard.dashboard import queries as q
from trainyard.dashboard.compare import side_by_side
from trainyard.dashboard.monitoring import summarize, timeline_series
from trainyard.dashboard.reports import card_dirs, find_reports, findings, safe_workspace_file
from trainyard.dashboard.templating import page
from trainyard.errors import ArtifactError, NotFoundError, TrainyardError
from trainyard.registry.artifact import read_meta
from trainyard.tasks import TABULAR_TASKS

router = APIRouter()
REPORT_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; font-src data:"


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=307)


@router.get("/runs")
def runs(request: Request, page_no: int = Query(1, alias="page"), per_page: int = 50, status: str | None = None,
         name: str | None = None):
    store = request.app.state.store
    listing = q.runs_page(store, page_no, per_page, status or None, name or None)
    query_base = _query_base(status=status, name=name, per_page=per_page if per_page != 50 else None)
    response = page(request, "runs.html", {"page": "runs", **listing, "status": status or "", "name": name or "", "query_base": query_base,
                                           "statuses": q.RUN_STATUSES, "names": q.run_names(store)})
    # Runs whose process died are marked interrupted after the page is sent: a page load never waits for a write.
    response.background = BackgroundTask(store.reconcile_stale_runs)
    return response


def _query_base(**params) -> str:
    """'a=1&b=x&' for the pager links (empty values left out)."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return urlencode(kept) + "&" if kept else ""


@router.get("/runs/{run_id}")
def run(request: Request, run_id: str):
    store, ws = request.app.state.store, request.app.state.workspace
    info = q.get_run(store, run_id)
    models = q.models_of_run(store, run_id)
    artifact = _artifact_of(store, models)
    audit = find_reports(ws, "audit", run_id, artifact)
    evaluation = find_reports(ws, "evaluation", run_id, artifact, first=card_dirs(ws, models))
    return page(request, "run.html", {
        "page": "runs", "run": info, "models": models, "higher_better": q.greater_is_better(info.get("metric")),
        "audit": audit, "findings": _audit_findings(store, run_id, audit), "evaluation": evaluation,
    })


def _artifact_of(store, models: list[dict]) -> str | None:
    if not models:
        return None
    return store.resolve_model(f"{models[0]['name']}@{models[0]['version']}")["artifact_path"]


def _audit_findings(store, run_id: str, audit: dict) -> list[dict]:
    """The audit report's findings; without a report file (a run still training, or stopped by the audit), the
    findings the audit recorded with the run's events: the whole report it logs first, else the single findings."""
    found = findings(audit["json"])
    if not found:
        logged = [e["data"] for e in q.events_after(store, run_id) if e["kind"] == "audit" and isinstance(e.get("data"), dict)]
        found = [f for d in logged for f in findings(d)] or [d for d in logged if "severity" in d]
    return found


@router.get("/models")
def models(request: Request):
    store = request.app.state.store
    grouped = q.models_by_name(store)
    return page(request, "models.html", {"page": "models", "grouped": grouped,
                                         "aliases": {name: q.alias_map(store, name) for name in grouped}})


def _version(request: Request, name: str, version: int) -> dict:
    store, ws = request.app.state.store, request.app.state.workspace
    row = store.resolve_model(f"{name}@{version}")
    row["meta_error"] = None
    try:
        row["meta"] = read_meta(ws.home / row["artifact_path"], row["meta_sha256"])
    except ArtifactError as exc:
        row["meta"], row["meta_error"] = {}, f"{exc.problem} {exc.fix}"
    row["evaluation"] = find_reports(ws, "evaluation", row.get("run_id"), row["artifact_path"], first=card_dirs(ws, [row]))
    return row


@router.get("/models/{name}/compare")
def compare(request: Request, name: str, a: int, b: int):
    left, right = _version(request, name, a), _version(request, name, b)
    metric_names = sorted(set(_flat_metrics(left)) | set(_flat_metrics(right)))
    params = sorted(set(left["meta"].get("params") or {}) | set(right["meta"].get("params") or {}))
    return page(request, "compare.html", {
        "page": "models", "name": name, "left": left, "right": right, "metric_names": metric_names,
        "left_metrics": _flat_metrics(left), "right_metrics": _flat_metrics(right), "params": params,
        "higher_better": {m: q.greater_is_better(m.split(" ")[-1]) for m in metric_names},
        "charts": side_by_side(left, right),
    })


@router.get("/models/{name}/{version}")
def model_version(request: Request, name: str, version: int):
    store = request.app.state.store
    row = _version(request, name, version)
    versions = [r["version"] for r in store.list_models(name)]
    return page(request, "model.html", {"page": "models", "m": row, "versions": versions,
                                        "aliases": q.alias_map(store, name)})


def _flat_metrics(row: dict) -> dict[str, float]:
    """{'test roc_auc': 0.9, 'baseline roc_auc': 0.5, 'validation roc_auc': ...} from the row's metrics."""
    out: dict[str, float] = {}
    for part, values in (row.get("metrics") or {}).items():
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[f"{part} {key}"] = value
        elif isinstance(values, (int, float)):
            out[part] = values
    return out


@router.get("/data")
def data(request: Request, run_id: str | None = None):
    store, ws = request.app.state.store, request.app.state.workspace
    recent = q.runs_page(store, 1, 100)["runs"]
    audited = set(q.runs_with_event(store, "audit", [r["id"] for r in recent]))
    with_audit = [r for r in recent if r["id"] in audited or _has_audit(_run_audit(store, ws, r["id"]))]
    chosen = run_id or (with_audit[0]["id"] if with_audit else None)
    audit = _run_audit(store, ws, chosen) if chosen else None
    return page(request, "data.html", {"page": "data", "runs": with_audit, "run_id": chosen, "audit": audit,
                                       "findings": _audit_findings(store, chosen, audit) if audit else []})


def _run_audit(store, ws, run_id: str) -> dict:
    return find_reports(ws, "audit", run_id, _artifact_of(store, q.models_of_run(store, run_id)))


def _has_audit(found: dict) -> bool:
    return bool(found["json_path"] or found["html"])


@router.get("/monitoring")
def monitoring(request: Request, model: str | None = None, last: int = 20000, domain: bool = False):
    """Drift against the training reference (trainyard.monitor) when the model has one; else the log on its own."""
    store, ws = request.app.state.store, request.app.state.workspace
    names = q.predicted_models(store)
    chosen = model or (names[0] if names else None)
    report = summary = note = None
    if chosen:
        try:
            from trainyard.monitor.check import monitor

            report = monitor(chosen, last=max(100, min(last, 200000)), domain=domain, workspace=ws.home)
        except TrainyardError as exc:
            note = f"{exc.problem} {exc.fix}"
            task = None
            try:
                task = store.resolve_model(chosen).get("task")
            except NotFoundError:
                pass
            summary = summarize(q.recent_predictions(store, chosen, limit=last), task)
    return page(request, "monitoring.html", {"page": "monitoring", "names": names, "model": chosen, "report": report,
                                             "timeline": timeline_series(report) if report else None,
                                             "summary": summary, "note": note, "last": last, "domain": domain})


def _parse_day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@router.get("/predictions")
def predictions(request: Request, model: str | None = None, version: str | None = None, request_id: str | None = None,
                since: str | None = None, until: str | None = None, page_no: int = Query(1, alias="page")):
    store = request.app.state.store
    version_no = int(version) if version and version.isdigit() else None
    listing = q.predictions_page(store, page=page_no, model=model or None, version=version_no, request_id=request_id or None,
                                 since=_parse_day(since), until=_parse_day(until))
    registered = store.list_models()
    filters = {"model": model or "", "version": version or "", "request_id": request_id or "", "since": since or "", "until": until or ""}
    return page(request, "predictions.html", {"page": "predictions", **listing, "filters": filters, "query_base": _query_base(**filters),
                                              "names": sorted(set(q.predicted_models(store)) | {r["name"] for r in registered}),
                                              "refs": [f"{r['name']}@{r['version']}" for r in registered if r.get("task") in TABULAR_TASKS],
                                              "other_refs": [f"{r['name']}@{r['version']}" for r in registered if r.get("task") not in TABULAR_TASKS]})


@router.get("/files/{rel:path}")
def workspace_file(request: Request, rel: str):
    """A report file (HTML, JSON, image) from the workspace's runs/ or artifacts/ folder; nothing else."""
    path = safe_workspace_file(request.app.state.workspace, rel)
    if path is None or path.suffix not in (".html", ".htm", ".json", ".png", ".svg", ".csv", ".md", ".txt"):
        raise NotFoundError(f"No report file '{rel}' in this workspace.", "open reports from a run or model page.")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Content-Security-Policy": REPORT_CSP})
