"""Document indexes behind HTTP: `POST /v1/search` and `POST /v1/ask` (server-sent events with citations).

    POST /v1/search {"query": "rotate API keys", "k": 5, "mode": "hybrid", "path": "ops/*"}
    POST /v1/ask    {"question": "How do I rotate the API keys?", "k": 5, "stream": true}

`/v1/ask` streams `event: passages` (the retrieved passages with their ids), then `data: {"text": ...}`
pieces, then `event: done` with the whole answer, its citations and whether it was answered, then
`data: [DONE]`; with "stream": false it returns the same as one JSON object. Bodies are validated (422 on
a malformed one); every query is written to the workspace's prediction log under the index's name
(inputs: the query and its options; outputs: the passage ids, the best cosine, answered or not), where
`trainyard monitor` and the dashboard read it. The serving app (`trainyard.serve.app`) hands the
references that name indexes to `add_indexes`.
"""

import json  # (no `from __future__ import annotations`: FastAPI must see the request models, defined in a function, as classes)
import time
import uuid
from collections.abc import Callable

from trainyard.errors import ConfigError
from trainyard.rag.answer import stream_ask
from trainyard.rag.index import INDEX_KIND, MODES
from trainyard.rag.retrieve import open_retriever
from trainyard.registry.artifact import read_meta


def is_rag_index(ws, ref: str) -> bool:
    row = ws.store.resolve_model(ref)
    return read_meta(ws.home / row["artifact_path"]).get("kind") == INDEX_KIND


def add_indexes(app, ws, refs: list[str], *, observe: Callable | None = None, log: bool = True, generator=None) -> dict:
    """Load each index with its encoder (hashes and encoder checked) and add the routes; returns {name: Retriever}.
    `observe(name, version, endpoint, status, seconds)` feeds the server's metrics; `generator` (optional) writes answers."""
    retrievers = {}
    for ref in refs:
        r = open_retriever(ref, workspace=ws.home)
        if r.name in retrievers:
            raise ConfigError(f"Index '{r.name}' is given twice.", "serve one reference per index name.")
        retrievers[r.name] = r
    if retrievers:
        add_routes(app, retrievers, store=ws.store if log else None, observe=observe, generator=generator)
    return retrievers


def add_routes(app, retrievers: dict, *, store=None, observe: Callable | None = None, generator=None) -> None:
    import threading

    from fastapi import HTTPException
    from fastapi.responses import JSONResponse, StreamingResponse

    lock = threading.Lock()  # one encoder pass at a time: it already uses every core given to torch

    SearchRequest, AskRequest = _request_models()

    def pick(name: str | None):
        if name is None and len(retrievers) == 1:
            name = next(iter(retrievers))
        if name not in retrievers:
            raise HTTPException(404, f"no index '{name}' is served here; served: {sorted(retrievers)}")
        return retrievers[name]

    def record(r, endpoint: str, inputs: dict, outputs: dict, started: float) -> str:
        rid = uuid.uuid4().hex
        if store is not None:
            store.log_predictions([{"request_id": rid, "model_name": r.name, "version": r.version,
                                    "inputs": {"endpoint": endpoint, **inputs}, "outputs": outputs}])
        if observe is not None:
            observe(r.name, r.version, endpoint, 200, time.perf_counter() - started)
        return rid

    @app.post("/v1/search", summary="Passages of a document index that best match a query")
    def search(req: SearchRequest):
        r, started = pick(req.index), time.perf_counter()
        with lock:
            vector = r.embed([req.query])[0] if req.mode != "bm25" else None
            hits = r.search(req.query, k=req.k, mode=req.mode, path=req.path, vector=vector)
            best = r.best_cosine(vector, req.path) if vector is not None else None
        rid = record(r, "search", req.model_dump(exclude={"index"}), {"ids": [h.chunk.id for h in hits], "best_cosine": best}, started)
        return JSONResponse({"index": r.name, "version": r.version, "request_id": rid, "results": [h.to_dict() for h in hits]})

    def answer_events(r, req: AskRequest):
        with lock:
            yield from stream_ask(r, req.question, k=req.k, mode=req.mode, path=req.path, threshold=req.threshold, generator=generator)

    def logged(r, req: AskRequest, answer, started: float) -> dict:
        out = answer.to_dict()
        out["request_id"] = record(r, "ask", req.model_dump(exclude={"index", "stream"}),
                                   {"ids": [h.chunk.id for h in answer.passages], "best_cosine": answer.best_cosine,
                                    "answered": answer.answered, "citations": answer.citations}, started)
        return {"index": r.name, "version": r.version, **out}

    @app.post("/v1/ask", summary="Answer a question from a document index, with citations (server-sent events by default)")
    def ask(req: AskRequest):
        r, started = pick(req.index), time.perf_counter()
        if not req.stream:
            answer = next(payload for kind, payload in answer_events(r, req) if kind == "done")
            return JSONResponse(logged(r, req, answer, started))

        def events():
            for kind, payload in answer_events(r, req):
                if kind == "passages":
                    yield f"event: passages\ndata: {json.dumps([h.to_dict() for h in payload])}\n\n"
                elif kind == "text":
                    yield f"data: {json.dumps({'text': payload})}\n\n"
                else:
                    yield f"event: done\ndata: {json.dumps(logged(r, req, payload, started))}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/v1/indexes", summary="Served document indexes")
    def indexes():
        return {"indexes": [{"name": n, "version": r.version, "chunks": len(r.index), "encoder": r.index.meta["encoder"],
                             "calibration": r.index.meta.get("calibration")} for n, r in retrievers.items()]}


def _request_models():
    """The request bodies (pydantic, imported only when serving): bounds checked, 422 otherwise."""
    from pydantic import BaseModel, Field

    class SearchRequest(BaseModel):
        query: str = Field(..., min_length=1, max_length=4000)
        index: str | None = Field(None, description="Which index (needed only when several are served).")
        k: int = Field(5, ge=1, le=100)
        mode: str = Field("hybrid", pattern="^(" + "|".join(MODES) + ")$")
        path: str | None = Field(None, max_length=500, description="Only documents whose path matches this glob.")

    class AskRequest(BaseModel):
        question: str = Field(..., min_length=1, max_length=4000)
        index: str | None = None
        k: int = Field(5, ge=1, le=20)
        mode: str = Field("hybrid", pattern="^(" + "|".join(MODES) + ")$")
        path: str | None = Field(None, max_length=500)
        threshold: float | None = Field(None, ge=-1, le=1, description="No-answer threshold (default: the index's calibrated one).")
        stream: bool = True

    return SearchRequest, AskRequest
