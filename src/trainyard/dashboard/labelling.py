"""The labelling page and its JSON API (trainyard.label): one item at a time, answers recorded at once, the model
retrained in the background every K labels (the page never waits for it).

Who labels: the annotator's own token (`trainyard label annotator PROJECT NAME`), offered once as
`/label/NAME?annotator=TOKEN` (it becomes a cookie) or as the X-Annotator-Token header; without one, on a dashboard
the person may open anyway, the annotator is `local`.
"""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, Field

from trainyard.dashboard.templating import page
from trainyard.errors import ConfigError
from trainyard.label import ledger
from trainyard.label.annotators import annotator_of
from trainyard.label.items import image_path
from trainyard.label.project import Project, get_project, list_projects, update_settings
from trainyard.label.settings import QUEUES
from trainyard.label.status import project_status

router = APIRouter()
ANNOTATOR_COOKIE = "trainyard_annotator"
LOCAL = "local"
PAGE_QUEUES = (*QUEUES, ledger.ADJUDICATION)
GUEST_PATHS = ("/label/", "/api/label/", "/static/", "/favicon.ico")  # what an annotator's token opens


class Answer(BaseModel):
    item_id: int
    item_sha256: str = Field(min_length=64, max_length=64)
    label: str | None = Field(None, max_length=200)
    comment: str | None = Field(None, max_length=2000)
    request_id: str = Field(min_length=8, max_length=64)
    queue: str = Field("random", max_length=40)
    skip: bool = False


class QueueChoice(BaseModel):
    queue: str


def annotator_token(request: Request) -> str | None:
    return request.headers.get("x-annotator-token") or request.cookies.get(ANNOTATOR_COOKIE)


def _annotator(request: Request, project: Project) -> str:
    """The annotator a request speaks for: its token's name (the token must be for this project), else `local`."""
    token = annotator_token(request)
    if not token:
        return LOCAL
    found = annotator_of(request.app.state.store, token)
    if found is None or found[0] != project.name:
        raise ConfigError("This annotator token is not valid for this project.",
                          f"ask for a token: trainyard label annotator {project.name} YOUR_NAME, and open the address it prints.")
    return found[1]


def _project(request: Request, name: str) -> Project:
    return get_project(request.app.state.store, name)


def item_view(request: Request, project: Project, item: dict | None, queue: str) -> dict:
    """What the page shows of an item: the text, the row as a card or the image's address, the suggestion."""
    if item is None:
        return {"item": None, "queue": queue}
    view = {"id": item["id"], "key": item["key"], "sha": item["content_sha256"], "position": item["position"],
            "suggestion": item["suggestion"], "confidence": item["confidence"], "given": item["given"], "final": item["final"],
            "suspect": bool(item["suspect"]), "kind": project.kind}
    if project.kind == "text":
        data = dict(item["data"] or {})
        view["text"] = str(data.pop(project.text_col, "") or "")
        view["fields"] = data
    elif project.kind == "image":
        view["image"] = f"/api/label/{project.name}/items/{item['id']}/image"
    else:
        view["fields"] = item["data"]
    if queue in ("review", ledger.ADJUDICATION):
        view["labels"] = [{"annotator": r["annotator"], "label": r["label"]} for r in ledger.item_labels(request.app.state.store, project, item["id"])]
    return {"item": view, "queue": queue}


@router.get("/label")
def projects(request: Request):
    store = request.app.state.store
    rows = [project_status(store, get_project(store, n)) for n in list_projects(store)]
    return page(request, "labelling.html", {"page": "label", "projects": rows})


@router.get("/label/{name}")
def label_page(request: Request, name: str, annotator: str | None = None):
    project = _project(request, name)
    if annotator is not None:  # the annotator's link: keep the token in a cookie, take it out of the address
        found = annotator_of(request.app.state.store, annotator)
        if found is None or found[0] != project.name:
            raise ConfigError("This annotator token is not valid for this project.",
                              f"ask for a token: trainyard label annotator {project.name} YOUR_NAME.")
        response = RedirectResponse(f"/label/{name}", status_code=303)
        response.set_cookie(ANNOTATOR_COOKIE, annotator, httponly=True, samesite="strict")
        return response
    return page(request, "label.html", {"page": "label", "project": project, "queues": PAGE_QUEUES, "who": _annotator(request, project)})


def _retrainer(request: Request):
    return request.app.state.retrainer


@router.get("/api/label/{name}/next")
def next_item(request: Request, name: str, queue: str | None = None) -> dict:
    project = _project(request, name)
    queue = queue or project.settings.queue
    if queue not in PAGE_QUEUES:
        raise ConfigError(f"{queue!r} is not a queue.", f"use one of {', '.join(PAGE_QUEUES)}.")
    _retrainer(request).poke(name)  # the first round (features, the queue's order) starts with the first visit
    item = ledger.claim(request.app.state.store, project, _annotator(request, project), queue)
    return {**item_view(request, project, item, queue), "annotator": _annotator(request, project)}


@router.get("/api/label/{name}/items/{item_id}")
def one_item(request: Request, name: str, item_id: int, queue: str = "random") -> dict:
    project = _project(request, name)
    return item_view(request, project, ledger.get_item(request.app.state.store, project, item_id), queue)


@router.post("/api/label/{name}/answer")
def answer(request: Request, name: str, body: Answer) -> dict:
    project = _project(request, name)
    who = _annotator(request, project)
    row = ledger.record(request.app.state.store, project, body.item_id, body.label, annotator=who, queue=body.queue,
                        item_sha256=body.item_sha256, comment=body.comment, request_id=body.request_id,
                        action="skip" if body.skip else "label")
    started = _retrainer(request).poke(name)
    return {"recorded": row["id"], "retraining": started or _retrainer(request).busy(name)}


@router.post("/api/label/{name}/undo")
def undo(request: Request, name: str) -> dict:
    project = _project(request, name)
    undone = ledger.undo(request.app.state.store, project, _annotator(request, project))
    if undone is None:
        return {"item": None, "undone": None}
    return {**one_item(request, name, undone["item_id"], undone["queue"]), "undone": undone["label"]}


@router.post("/api/label/{name}/retrain")
def retrain(request: Request, name: str) -> dict:
    _project(request, name)
    return {"started": _retrainer(request).poke(name, force=True)}


@router.post("/api/label/{name}/queue")
def choose_queue(request: Request, name: str, body: QueueChoice) -> dict:
    project = _project(request, name)
    if body.queue not in QUEUES:
        raise ConfigError(f"{body.queue!r} is not a project queue.", f"use one of {', '.join(QUEUES)}.")
    from dataclasses import replace

    update_settings(request.app.state.store, project, replace(project.settings, queue=body.queue))
    _retrainer(request).poke(name, force=True)  # the new queue's order
    return {"queue": body.queue}


@router.get("/api/label/{name}/status")
def status(request: Request, name: str) -> dict:
    project = _project(request, name)
    out = project_status(request.app.state.store, project)
    trainer = _retrainer(request)
    return {**out, "retraining": trainer.busy(name), "error": trainer.errors.get(name)}


@router.get("/api/label/{name}/items/{item_id}/image")
def image(request: Request, name: str, item_id: int) -> FileResponse:
    project = _project(request, name)
    view = one_item(request, name, item_id)
    if view["item"] is None or project.kind != "image":
        raise ConfigError(f"Item {item_id} of {name!r} is not an image.", "open the labelling page again.")
    rel = view["item"]["key"]
    path = image_path(project.source, rel)
    return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                        headers={"Cache-Control": "private, max-age=300"})
